"""torch.hub's entry points, as torchvision's and timm's repositories give them:

    model = torch.hub.load("path/to/checkout", "mobilenet_v1", source="local", width_mult=0.75, class_num=10)
    model = torch.hub.load("path/to/checkout", "load_model", "runs/demo", source="local")

(with ``source="github"`` and the repository's name, torch downloads the code; no weights come with it:
``load_model`` reads them from a file, ``pretrained=True`` is refused). The package is taken from this
checkout's ``src``, ahead of an installed copy (that directory stays on ``sys.path``); where ``mobilenet_v1``
is imported already in the process, that copy is the one used, whichever it is."""
import os
import sys

dependencies = ["torch", "torchvision", "numpy", "yaml"]

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)

from mobilenet_v1 import load_model, load_predictor, mobilenet_v1  # noqa: E402  (torch.hub's entry points)

__all__ = ["mobilenet_v1", "load_model", "load_predictor"]
