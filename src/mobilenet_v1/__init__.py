"""MobileNetV1 image classifiers on PyTorch: the MindSpore model zoo's MobileNetV1, and more."""
__version__ = "0.1.0"

from .model import STAGE_ENDS, MobileNetV1, mobilenet_v1  # noqa: E402
from .api import load_model  # noqa: E402

__all__ = ["MobileNetV1", "mobilenet_v1", "load_model", "STAGE_ENDS", "__version__"]
