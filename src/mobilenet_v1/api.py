"""Loading a trained model from a file: ``mobilenet_v1.load_model(path)``."""
from typing import Any, Dict, Tuple

import torch

from . import checkpoint as ckpt_io
from .model import ARCH, MobileNetV1, scale_channels


def infer_model_args(state: Dict[str, torch.Tensor], source: str) -> Dict[str, Any]:
    """class_num and width_mult read off the tensor shapes of a MobileNetV1 state dict."""
    try:
        class_num = int(state["fc.weight"].shape[0])
        last = int(state["fc.weight"].shape[1])
    except KeyError:
        raise ckpt_io.CheckpointError(f"checkpoint {source}: no fc.weight, not a MobileNetV1 state dict") from None
    for alpha in (1.0, 0.75, 0.5, 0.25):
        if scale_channels(ARCH[-1][1], alpha) == last:
            return {"class_num": class_num, "width_mult": alpha}
    # Any other alpha: the last layer's 1024 * alpha, as close as the rounding allows.
    return {"class_num": class_num, "width_mult": last / ARCH[-1][1]}


def model_from_checkpoint(ckpt: Dict[str, Any], source: str, **overrides) -> Tuple[MobileNetV1, Dict[str, Any]]:
    state = ckpt_io.model_state(ckpt)
    args = {"padding": "same"}
    args.update(infer_model_args(state, source))
    args.update(ckpt.get("model_args") or {})
    args.update({k: v for k, v in overrides.items() if v is not None})
    model = MobileNetV1(**args)
    ckpt_io.load_weights(model, state, source, naming=ckpt.get("naming", "ours"))
    return model.eval(), args


def load_model(path: str, **overrides) -> MobileNetV1:
    """An eval-mode model on the CPU from a checkpoint file (ours, a MindSpore ``.ckpt`` or a
    ``.safetensors``); ``overrides`` (``padding``, ...) win over what the file records."""
    model, _ = model_from_checkpoint(ckpt_io.load_file(path), path, **overrides)
    return model
