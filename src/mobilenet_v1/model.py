"""MobileNetV1 (Howard et al. 2017, arXiv 1704.04861) as the MindSpore model zoo builds it.

This file imports only torch (and qat.py, which imports only torch). Parameter names mirror the seed's
(``network.{k}.0.weight`` for the conv of layer k, ``network.{k}.1.*`` for its BatchNorm, ``fc.*``) so that
checkpoint interchange is a rename of BatchNorm fields only.
"""
import copy
import math
import operator
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import qat as qat_sim

# (kind, out_channels at width 1.0, stride). "conv" is the full 3x3 stem, "dw" a 3x3 depthwise conv,
# "pw" a 1x1 pointwise conv. 27 layers, paper Table 1.
ARCH: Tuple[Tuple[str, int, int], ...] = (
    ("conv", 32, 2),
    ("dw", 32, 1), ("pw", 64, 1),
    ("dw", 64, 2), ("pw", 128, 1),
    ("dw", 128, 1), ("pw", 128, 1),
    ("dw", 128, 2), ("pw", 256, 1),
    ("dw", 256, 1), ("pw", 256, 1),
    ("dw", 256, 2), ("pw", 512, 1),
    ("dw", 512, 1), ("pw", 512, 1),
    ("dw", 512, 1), ("pw", 512, 1),
    ("dw", 512, 1), ("pw", 512, 1),
    ("dw", 512, 1), ("pw", 512, 1),
    ("dw", 512, 1), ("pw", 512, 1),
    ("dw", 512, 2), ("pw", 1024, 1),
    ("dw", 1024, 1), ("pw", 1024, 1),
)

PADDINGS = ("same", "symmetric")

# The last layer at each resolution, strides 2, 4, 8, 16 and 32: the five feature levels timm's
# ``features_only`` models give (SSD-MobileNetV1 takes the last two: 512 and 1,024 channels at width 1).
STAGE_ENDS: Tuple[int, ...] = (2, 6, 10, 22, 26)


def scale_channels(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels of a layer at width multiplier ``width_mult`` (the paper's alpha).

    Rounded to the nearest multiple of ``divisor`` (never below ``divisor``, never more than 10% under
    the exact product), the convention of torchvision's and timm's MobileNets. Every layer's count is a
    multiple of 32 at alpha 1, so alpha 0.25, 0.5, 0.75 and 1.0 give the paper's counts exactly.
    """
    exact = channels * width_mult
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * exact:
        rounded += divisor
    return rounded


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow/MindSpore ``SAME`` padding of one spatial dimension: (before, after).

    The total is ``max((ceil(size / stride) - 1) * stride + kernel - size, 0)``; the smaller half goes
    before. A stride-2 3x3 conv on an even size pads (0, 1), which PyTorch's ``padding=1`` cannot express.
    """
    # Integer arithmetic only: on torch.export's and torch.compile's symbolic sizes, ceil of a true division
    # is a float expression whose simplification did not end (an export with dynamic height and width).
    total = ((size + stride - 1) // stride - 1) * stride + kernel - size
    if kernel > stride:  # then never negative: stride * ceil(size / stride) >= size
        return total // 2, total - total // 2
    total = max(total, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """A bias-free conv with SAME padding computed from the input's size at each call."""

    def _pads(self, x: torch.Tensor) -> Tuple[int, int, int, int]:
        """SAME padding of ``x`` for this conv: (top, bottom, left, right)."""
        top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        return top, bottom, left, right

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        # nn.Conv2d.forward's conv with the given weight and bias (quantization-aware training passes
        # rounded ones), SAME-padded.
        top, bottom, left, right = self._pads(x)
        # Symbolic sizes (torch.export or torch.compile with dynamic height and width): one path for all, the
        # pad, since comparing the halves would be a guard on each size's parity that a range cannot meet.
        if type(top) is type(left) is int and top == bottom and left == right:
            # Symmetric: let the conv pad, which costs no extra copy of the input.
            return F.conv2d(x, weight, bias, self.stride, (top, left), self.dilation, self.groups)
        x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, weight, bias, self.stride, 0, self.dilation, self.groups)

    def forward_flipped(self, x: torch.Tensor) -> torch.Tensor:
        """The same conv on an input flipped in height and width: returns the output, flipped likewise.

        Flipping an image turns the SAME pad of a stride-2 conv on an even size, (0, 1), into (1, 0),
        which ``padding=1`` gives with no copy of the input: its extra pad row and column are never read.
        The kernel is flipped instead of the data (9 weights a channel, a tiny copy).
        """
        kh, kw = self.kernel_size
        sh, sw = self.stride
        top, bottom, left, right = self._pads(x)
        # Flipped, the larger half goes before; a symmetric pad of that size gives the same output size.
        pad_h, pad_w = max(top, bottom), max(left, right)
        out_h = (x.shape[-2] + 2 * pad_h - kh) // sh + 1
        out_w = (x.shape[-1] + 2 * pad_w - kw) // sw + 1
        weight = self.weight if kh == kw == 1 else self.weight.flip(-2, -1)
        if (out_h, out_w) != (math.ceil(x.shape[-2] / sh), math.ceil(x.shape[-1] / sw)):
            x = F.pad(x, (right, left, bottom, top))
            pad_h = pad_w = 0
        return F.conv2d(x, weight, self.bias, self.stride, (pad_h, pad_w), self.dilation, self.groups)


def depthwise_taps(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """The depthwise ``conv`` (groups = channels, no bias) of ``x`` written as a sum of its kernel taps:
    each tap a strided slice of the padded input times one weight per channel.

    The same numbers as the conv up to float rounding. Eagerly it is slower (a kernel per tap); for
    ``torch.compile``, whose Inductor hands convs to cuDNN whole but fuses element-wise work, the taps
    become one generated kernel that can take the BatchNorm and ReLU6 around them too, forward and
    backward, instead of a conv between separate passes over memory. Under autocast the conv's inputs
    are cast as the conv's would be. (SAME or the conv's own symmetric padding.)
    """
    if isinstance(conv, Conv2dSame):
        top, bottom, left, right = conv._pads(x)
    else:
        top = bottom = conv.padding[0]
        left = right = conv.padding[1]
    weight = conv.weight
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
        x, weight = x.to(dtype), weight.to(dtype)
    x = F.pad(x, (left, right, top, bottom))
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    out_h = (x.shape[-2] - kh) // sh + 1
    out_w = (x.shape[-1] - kw) // sw + 1
    taps = weight.reshape(1, -1, kh, kw)
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = x[:, :, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw] * taps[:, :, i:i + 1, j:j + 1]
            out = tap if out is None else out + tap
    return out


class _ReLU6InPlace(torch.autograd.Function):
    """ReLU6 in place whose backward reads its output: PyTorch's ``hardtanh_`` keeps a copy of its input
    for the backward, a clone of every activation of the network at each training step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.mark_dirty(x)
        x.clamp_(0.0, 6.0)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        # 0 < y < 6 exactly where 0 < x < 6: the output gives the same mask as the input.
        return torch.ops.aten.hardtanh_backward(grad, y, 0.0, 6.0)


class ReLU6(nn.ReLU6):
    """``nn.ReLU6(inplace=True)`` that trains without copying its input (:class:`_ReLU6InPlace`).

    Compiled or without gradients it is the plain in-place ReLU6, which compilers fuse. Exported or traced
    it is ``hardtanh(0, 6)``: ONNX's ``Clip`` as before, and an op ExecuTorch's XNNPACK quantizer keeps on
    its input's int8 scale; ``relu6_``, which it does not know, ran in float between a dequantize and a
    quantize after every conv of an INT8 ``.pte`` (with the two other causes of the commit that changed
    it, 1.2x to 1.9x the latency of timm's network on the 2-core development CPU; benchmarks/RESULTS.md).
    """

    def __init__(self):
        super().__init__(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad and torch.is_grad_enabled() and _eager():
            return _ReLU6InPlace.apply(x)
        if not _not_exporting():
            return F.hardtanh(x, 0.0, 6.0)
        return F.relu6(x, inplace=True)


def _exporting() -> bool:
    """Inside torch.export (strict or not). Not ``torch.compiler.is_exporting()`` as it is: Dynamo up to torch
    2.11 replaces a call of it by a constant True, under torch.compile too (pytorch/pytorch#176347, fixed by
    #176499 after 2.11's branch cut; 2.13 has the fix), which sent a compiled training step down the padded
    path and left the depthwise taps out. The flag it returns (private, in torch since 2.6, set by strict
    export since 2.8) is read instead, which Dynamo reads as it is: False under torch.compile."""
    flag = getattr(torch.compiler, "_is_exporting_flag", None)
    return torch.compiler.is_exporting() if flag is None else bool(flag)


def _not_exporting() -> bool:
    """Not inside torch.export or a TorchScript trace (torch.compile is fine)."""
    return not (_exporting() or torch.jit.is_tracing() or torch.jit.is_scripting())


def _eager() -> bool:
    """Not inside torch.compile, torch.export or a TorchScript trace."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting())


def _is_index(k) -> bool:
    """An integer (Python's, numpy's, a 0-d integer tensor), not a float or bool."""
    try:
        operator.index(k)
    except TypeError:
        return False
    return not isinstance(k, bool)


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int, stride: int, groups: int, padding: str) -> nn.Sequential:
    if padding == "same":
        conv = Conv2dSame(in_ch, out_ch, kernel, stride, groups=groups, bias=False)
    else:
        conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
    # eps and momentum are MindSpore's defaults (its momentum 0.9 is PyTorch's 0.1).
    return nn.Sequential(conv, nn.BatchNorm2d(out_ch, eps=1e-5, momentum=0.1), ReLU6())


class MobileNetV1(nn.Module):
    """27 ``conv -> BN -> ReLU6`` layers, global average pool, one fully connected layer.

    Args:
        class_num: outputs of the classifier (the seed uses 10 for CIFAR-10, 1001 for ImageNet).
        width_mult: the paper's alpha; channels are scaled by :func:`scale_channels`.
        padding: ``"same"`` (TensorFlow/MindSpore, the seed's; weights trained by the seed need it) or
            ``"symmetric"`` (PyTorch's ``padding=1``).
        features_only: ``forward`` returns the list of the 27 layer outputs instead of logits (the seed's),
            or those of ``out_indices``.
        out_indices: with ``features_only``, the layers (0 to 26, or from the end: -1 is the last) whose
            outputs ``forward`` returns, in layer order, computing no layer after the last of them;
            :data:`STAGE_ENDS` gives timm's five levels. ``feature_info`` describes them.
        drop_rate: dropout on the pooled features before the classifier, in training only (timm's
            ``drop_rate``; torchvision's MobileNetV2/V3 use 0.2); 0, the seed's: none.
        qat: quantization-aware: the forward pass simulates the INT8 model ``export`` writes, with
            BatchNorm folded at its frozen running statistics (:mod:`qat`); the activation ranges it
            learns are the buffers ``quant.ranges`` and ``quant.observed``.
        qat_reduce_range: with ``qat``, 7-bit weights (ONNX Runtime's ``reduce_range``, for x86 CPUs
            without VNNI).
    """

    def __init__(self, class_num: int = 1001, width_mult: float = 1.0, padding: str = "same",
                 features_only: bool = False, in_chans: int = 3, drop_rate: float = 0.0,
                 out_indices: Optional[Sequence[int]] = None, qat: bool = False,
                 qat_reduce_range: bool = False):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
            raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")
        if not _is_index(class_num) or class_num < 1:
            raise ValueError(f"class_num must be a whole number, at least 1, got {class_num!r}")
        if isinstance(drop_rate, bool) or not isinstance(drop_rate, (int, float)) or not 0 <= drop_rate < 1:
            raise ValueError(f"drop_rate must be a number in [0, 1), got {drop_rate!r}")
        flags = {"features_only": features_only, "qat": qat, "qat_reduce_range": qat_reduce_range}
        wrong = [f"{k}={v!r}" for k, v in flags.items() if not isinstance(v, bool)]
        if wrong:  # "False" is true: a backbone (or a quantization-aware model) against the caller's word
            raise ValueError(f"{', '.join(wrong)}: must be True or False")
        if qat_reduce_range and not qat:
            raise ValueError("qat_reduce_range sets the weight grid of qat: pass qat=True")
        if qat and features_only:
            raise ValueError("qat simulates the INT8 classifier export writes; it has no features_only form")
        if out_indices is not None and not features_only:
            raise ValueError("out_indices chooses the layers features_only returns: pass features_only=True")
        if _is_index(out_indices) or isinstance(out_indices, (str, bytes)):
            raise ValueError(f"out_indices must be a sequence of layer indices, such as (22, 26), got {out_indices!r}")
        layers_out = list(range(len(ARCH)) if out_indices is None else out_indices)
        bad = [k for k in layers_out if not (_is_index(k) and -len(ARCH) <= k < len(ARCH))]
        if bad or not layers_out:
            raise ValueError(f"out_indices must name layers of the {len(ARCH)} (0 to {len(ARCH) - 1}, or -{len(ARCH)} "
                             f"to -1 from the end), got {list(layers_out)}")
        self.out_indices = sorted({operator.index(k) % len(ARCH) for k in layers_out})
        self.class_num = class_num
        self.width_mult = width_mult
        self.padding = padding
        self.features_only = features_only
        self.drop_rate = drop_rate
        self.frozen_layers = 0  # see freeze()
        # Training steps with SAME padding run in the flipped frame (forward_features); False: the
        # padded path always (a benchmark's baseline).
        self.flip_same = True
        # Compiled, the depthwise convs run as sums of their taps (depthwise_taps). An experiment, off
        # until a GPU measures it (benchmarks/train_throughput.py --taps).
        self.depthwise_taps = False
        layers: List[nn.Module] = []
        # timm's description of the features forward_intermediates returns: module, channels, stride.
        self.feature_info = []
        reduction = 1
        for k, (kind, in_ch, out_ch, stride) in enumerate(layer_specs(width_mult, in_chans)):
            kernel = 1 if kind == "pw" else 3
            groups = in_ch if kind == "dw" else 1
            layers.append(conv_bn_relu(in_ch, out_ch, kernel, stride, groups, padding))
            reduction *= stride
            if k in self.out_indices:
                self.feature_info.append({"module": f"network.{k}", "num_chs": out_ch, "reduction": reduction})
        self.network = nn.Sequential(*layers)
        in_ch = out_ch
        self.num_features = in_ch
        self.fc = nn.Linear(in_ch, class_num)
        self.quant = (qat_sim.ActivationRanges(qat_sim.activation_points(len(layers)), qat_reduce_range) if qat
                      else None)
        self.reset_parameters()

    def get_classifier(self) -> nn.Module:
        """The classifier, ``fc`` (timm's name for it)."""
        return self.fc

    def reset_classifier(self, class_num: Optional[int] = None, global_pool: Optional[str] = None, *,
                         num_classes: Optional[int] = None) -> None:
        """A new classifier of ``class_num`` outputs, initialised as the seed's (to fine-tune for other classes,
        as timm's ``reset_classifier``); 0: none, the model gives the pooled features. timm's arguments are
        taken: ``num_classes`` for ``class_num``, and ``global_pool`` "avg" (the only pooling here)."""
        if num_classes is not None:
            if class_num is not None:
                raise ValueError("give class_num or num_classes (timm's name for it), not both")
            class_num = num_classes
        if class_num is None:
            raise TypeError("reset_classifier: give the number of classes (0: no classifier, the pooled features)")
        if global_pool not in (None, "avg"):
            raise ValueError(f"global_pool {global_pool!r}: this model pools by average only ('avg', timm's default)")
        if not _is_index(class_num) or class_num < 0:
            raise ValueError(f"class_num must be a whole number, at least 0, got {class_num!r}")
        old = self.fc if isinstance(self.fc, nn.Linear) else None
        where = {"device": old.weight.device, "dtype": old.weight.dtype} if old is not None else {}
        if class_num:
            self.fc = nn.Linear(self.num_features, class_num, **where)
            nn.init.trunc_normal_(self.fc.weight, mean=0.0, std=0.01, a=-0.02, b=0.02)
            nn.init.zeros_(self.fc.bias)
        else:
            self.fc = nn.Identity()
        self.class_num = class_num

    def reset_parameters(self) -> None:
        """The seed's initialisation: Xavier-uniform convs, truncated-normal(0.01) FC weight, BN 1/0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()
        nn.init.trunc_normal_(self.fc.weight, mean=0.0, std=0.01, a=-0.02, b=0.02)
        nn.init.zeros_(self.fc.bias)

    def freeze(self, layers: int) -> "MobileNetV1":
        """Keep the first ``layers`` of the 27 layers (``network.0`` to ``network.{layers - 1}``) as they
        are, for fine-tuning: their weights get no gradients, and their BatchNorm layers normalise with
        their running statistics and update none, in training too (as timm's ``freeze`` with
        FrozenBatchNorm2d does). 27: only the classifier trains (a linear probe); 0: every layer trains.
        Backpropagation then stops at the first layer that trains. Returns the model."""
        if not 0 <= layers <= len(self.network):
            raise ValueError(f"freeze_layers must be in [0, {len(self.network)}], got {layers}")
        self.frozen_layers = layers
        for k, layer in enumerate(self.network):
            layer.requires_grad_(k >= layers)
        return self.train(self.training)

    def train(self, mode: bool = True) -> "MobileNetV1":
        """``nn.Module.train``, but the frozen layers (:meth:`freeze`) stay in evaluation mode."""
        super().train(mode)
        for layer in self.network[:getattr(self, "frozen_layers", 0)]:
            layer.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 27 layers: (N, 3, H, W) -> (N, C, H/32, W/32).

        A training step with SAME padding runs the layers on the input flipped in height and width
        (:meth:`Conv2dSame.forward_flipped`) and flips the small final map back: BatchNorm, ReLU6 and
        the 1x1 convs do not care, and the 3x3 convs then need no padded copy of their inputs, forward
        or backward, eagerly and under torch.compile (whose Inductor cannot fold an uneven pad into a
        cuDNN conv either). Same result up to float rounding; evaluation mode (with gradients too: Grad-CAM
        and saliency maps), torch.export and TorchScript traces take the direct path.
        Forward hooks on the 27 ``network[k]`` blocks therefore fire in evaluation mode only; hooks on the
        BatchNorm and ReLU6 modules fire in both (and see flipped maps in a training step).
        """
        # The taps experiment runs in the direct frame (its pads are element-wise work Inductor fuses).
        if self.depthwise_taps and torch.compiler.is_compiling() and not _exporting():
            for conv, bn, act in self.network:
                x = act(bn(depthwise_taps(x, conv) if conv.groups > 1 else conv(x)))
            return x
        if self.padding != "same" or not (self.flip_same and self.training and torch.is_grad_enabled()
                                          and _not_exporting()):
            return self.network(x)
        x = x.flip(-2, -1)
        for conv, bn, act in self.network:
            x = act(bn(conv.forward_flipped(x)))
        return x.flip(-2, -1)

    def forward_intermediates(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The outputs of the layers ``out_indices`` names (by default every one of the 27), in order."""
        outs = []
        for k, layer in enumerate(self.network[:self.out_indices[-1] + 1]):
            x = layer(x)
            if k in self.out_indices:
                outs.append(x)
        return outs

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool over H and W, then (in training, with ``drop_rate``) dropout and the
        classifier (both skipped with ``pre_logits``)."""
        x = x.mean(dim=(2, 3))
        if pre_logits:
            return x
        if self.drop_rate:
            x = F.dropout(x, self.drop_rate, self.training)
        return self.fc(x)

    def without_quant(self) -> "MobileNetV1":
        """A copy of a ``qat`` model that computes in float, with the same weights and BatchNorm (what
        ``export`` folds and then quantizes with the learned ranges)."""
        plain = copy.deepcopy(self)
        plain.quant = None
        return plain

    def __prepare_scriptable__(self):
        """torch.jit.script calls this first: refused here with the way out, rather than failing deep inside
        SAME padding's size arithmetic with a TorchScript type error."""
        raise RuntimeError("torch.jit.script is not supported (TorchScript is deprecated): use torch.export.export "
                           "(dynamic height and width: a torch.export.Dim each, from 33) or torch.jit.trace")

    def forward(self, x: torch.Tensor):
        if self.quant is not None:
            if _exporting():  # its ranges are read back as it runs: torch.export failed on a data-dependent guard
                raise RuntimeError("a quantization-aware model (qat) has no torch.export form: `mobilenet-v1 export` "
                                   "writes its INT8 file, and model.without_quant() is its float network")
            return qat_sim.forward(self, x)
        if self.features_only:
            return self.forward_intermediates(x)
        return self.forward_head(self.forward_features(x))


def mobilenet_v1(class_num: Optional[int] = None, features_only: bool = False, **kwargs) -> MobileNetV1:
    """The seed's factory: ``mobilenet_v1(class_num=1001)`` (its default); ``num_classes``, timm's name, is
    taken for it, and timm's ``pretrained=False``. No weights come with the package: ``pretrained=True`` is
    refused, naming :func:`load_model`, which reads them from a file."""
    if kwargs.pop("pretrained", False):
        raise ValueError("pretrained: no weights come with mobilenet_v1 and none are downloaded; read them from a "
                         "file with mobilenet_v1.load_model(path) (a checkpoint, a MindSpore .ckpt, timm's "
                         "model.safetensors)")
    if "num_classes" in kwargs:
        if class_num is not None:
            raise ValueError("give class_num or num_classes (timm's name for it), not both")
        class_num = kwargs.pop("num_classes")
    return MobileNetV1(class_num=1001 if class_num is None else class_num, features_only=features_only, **kwargs)


def layer_specs(width_mult: float = 1.0, in_chans: int = 3) -> Sequence[Tuple[str, int, int, int]]:
    """(kind, in_channels, out_channels, stride) of each layer at ``width_mult``, without building it."""
    specs, in_ch = [], in_chans
    for kind, channels, stride in ARCH:
        out_ch = in_ch if kind == "dw" else scale_channels(channels, width_mult)
        specs.append((kind, in_ch, out_ch, stride))
        in_ch = out_ch
    return specs
