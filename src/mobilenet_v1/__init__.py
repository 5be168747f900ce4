"""MobileNetV1 image classifiers on PyTorch: the MindSpore model zoo's MobileNetV1, and more."""
__version__ = "0.1.0"

from .model import STAGE_ENDS, MobileNetV1, mobilenet_v1  # noqa: E402
from .api import load_model  # noqa: E402

__all__ = ["MobileNetV1", "mobilenet_v1", "load_model", "load_predictor", "STAGE_ENDS", "__version__"]


def __getattr__(name: str):
    # load_predictor (predict.py) brings the data and deployment modules with it: imported when asked for.
    if name == "load_predictor":
        from .predict import load_predictor

        return load_predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
