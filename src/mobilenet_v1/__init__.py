"""MobileNetV1 image classifiers on PyTorch: the MindSpore model zoo's MobileNetV1, and more."""
__version__ = "0.1.0"

__all__ = ["MobileNetV1", "mobilenet_v1", "load_model", "load_predictor", "STAGE_ENDS", "__version__"]

# Where each name is: imported when first asked for, so that `import mobilenet_v1` (and the command line's
# start, inside whose error and Ctrl-C handling torch is then imported) costs nothing. load_predictor
# (predict.py) brings the data and deployment modules with it.
_WHERE = {"MobileNetV1": "model", "mobilenet_v1": "model", "STAGE_ENDS": "model", "load_model": "api",
          "load_predictor": "predict"}


def git_revision() -> str:
    """The commit of the checkout this package runs from, or "unknown" (without torch: --version says it where
    torch itself is broken). An installed copy (site-packages) inside another repository, a project's .venv, is
    no file of it, and that project's commit was named as this tool's; a strict editable install's links are
    followed to the checkout's files."""
    import os
    import subprocess

    here = os.path.dirname(os.path.realpath(__file__))
    try:
        ours = subprocess.run(["git", "ls-files", "--error-unmatch", "--", "__init__.py"], cwd=here,
                              capture_output=True, text=True, timeout=5)
        if ours.returncode != 0:
            return "unknown"
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def __getattr__(name: str):
    import importlib
    import importlib.util

    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # a module of the package: mobilenet_v1.checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
