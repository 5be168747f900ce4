"""Parameter and multiply-add counts of MobileNetV1, from the layer table (no forward pass needed)."""
import math
from typing import Dict

from .model import layer_specs


def count_macs(width_mult: float = 1.0, image_size: int = 224, class_num: int = 1000) -> int:
    """Multiply-adds of one forward pass: convs and the FC layer (BatchNorm, ReLU and pooling excluded,
    as in the paper's Table 1)."""
    size, macs = image_size, 0
    in_ch = 3
    for kind, cin, cout, stride in layer_specs(width_mult):
        size = math.ceil(size / stride)  # SAME and padding=1 give the same output size
        kernel = 1 if kind == "pw" else 3
        per_out = (1 if kind == "dw" else cin) * kernel * kernel
        macs += size * size * cout * per_out
        in_ch = cout
    return macs + in_ch * class_num


def count_params(width_mult: float = 1.0, class_num: int = 1000) -> Dict[str, int]:
    """Trainable parameters (conv and FC weights, FC bias, BN gamma and beta) and BN running buffers."""
    params = buffers = 0
    in_ch = 3
    for kind, cin, cout, _ in layer_specs(width_mult):
        kernel = 1 if kind == "pw" else 3
        params += cout * (1 if kind == "dw" else cin) * kernel * kernel + 2 * cout
        buffers += 2 * cout
        in_ch = cout
    params += in_ch * class_num + class_num
    return {"params": params, "bn_buffers": buffers}
