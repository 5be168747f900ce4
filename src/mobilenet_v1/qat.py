"""Quantization-aware training (QAT): the forward pass of the INT8 file ``export`` writes, simulated.

A model built with ``qat=True`` computes what ONNX Runtime's QDQ INT8 graph of it computes (the graph
:mod:`quantize` makes, with the ranges learned here instead of calibrated ones), in float arithmetic
(Jacob et al. 2018; Krishnamoorthi 2018):

- BatchNorm is folded into each conv with its running statistics, which stay as the pre-trained model
  left them (frozen BatchNorm: the folded weights trained are the ones deployed; gamma and beta train);
- the folded weights are rounded to int8, symmetric, one scale per output channel (``amax / 127``; with
  ``reduce_range``, 7 bits, ``amax / 64``: ONNX Runtime's integer kernels on x86 CPUs without VNNI
  saturate on full-range weights), widened where a channel's bias would not stay within the middle half of
  int32's range (:func:`bias_fitting_scales`); each bias to int32 at the scale of its input times its weights';
- the input, every layer's ReLU6 output and the pooled features are rounded to uint8 with one scale and
  zero point each, from ranges that follow a moving average of each training batch's minimum and maximum
  (a batch with a non-finite value moves none), until they are ``frozen`` (``train --qat_range_epochs``);
- the logits stay float.

The convs run on the integer levels (the products and their sums exact below 2**24, as in integer
kernels, and on a GPU whether or not its convs use TF32), then scaled; the classifier in float32.

Rounding passes gradients straight through (zero where a value was clipped to the range), so the
weights learn to sit well on the int8 grid. The same rules as ONNX Runtime's quantizer make the scales,
so the exported file's integer kernels and this model agree up to the rounding of ties: a value exactly
between two levels, which two float computations in another order can round to either side (and
PyTorch's rounding multiplies by the inverse scale where ONNX Runtime divides).

This file imports only torch.
"""
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

ACT_QMIN, ACT_QMAX = 0, 255  # uint8 activations
W_QMAX = 127  # int8 weights, symmetric: [-127, 127]
W_QMAX_REDUCED = 64  # 7-bit weights ([-64, 64], ONNX Runtime's reduce_range), for x86 CPUs without VNNI
INT32_MAX = 2 ** 31 - 1
# The moving average's weight on each new batch's range (PyTorch's MovingAverageMinMaxObserver's).
RANGE_MOMENTUM = 0.01


def activation_points(layers: int) -> int:
    """Quantized activations of a network of ``layers`` conv layers: the input, each layer's output and
    the pooled features."""
    return layers + 2


class ActivationRanges(nn.Module):
    """The learned (minimum, maximum) of each quantized activation, and how many training batches
    observed them. ``ranges[0]`` is the input's, ``ranges[k + 1]`` layer k's output, ``ranges[-1]`` the
    pooled features'. A model before the first observation (``observed`` 0) rounds its weights only
    (:func:`forward`). A batch with a non-finite value leaves a range as it was. ``frozen`` (set by
    ``train`` from the epoch, not saved): training batches round with the ranges and move none, nor count."""

    def __init__(self, points: int, reduce_range: bool = False):
        super().__init__()
        self.frozen = False
        self.reduce_range = reduce_range
        self.weight_qmax = W_QMAX_REDUCED if reduce_range else W_QMAX
        self.register_buffer("ranges", torch.zeros(points, 2))
        self.register_buffer("observed", torch.zeros((), dtype=torch.long))
        self._read: Optional[Tuple[torch.Tensor, int, bool]] = None  # (observed, its version, > 0), see was_observed

    def was_observed(self) -> bool:
        """Whether the ranges were observed (``observed`` > 0): true in training without a read; in
        evaluation ``observed`` is read back once, then again only once written (its version counter, which
        every in-place write moves: training, ``load_state_dict``, the step guard's restore) or replaced
        (``.to``). A teacher's or an evaluation's forward passes then wait for no GPU work. (A collective
        writing into it, as torch.distributed's broadcast of rank 0's buffers, moves no version; but it brings
        a rank the count its own training batches and restores, which do, have kept in step.)"""
        if self.training:
            return True
        t, read = self.observed, getattr(self, "_read", None)  # (a model pickled whole before it had none)
        if read is None or read[0] is not t or read[1] != t._version:
            read = self._read = (t, t._version, bool(int(t)))
        return read[2]

    def qparams(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Scale (float32) and zero point (int32) of activation ``i``, by ONNX Runtime's rule for uint8:
        the range widened to hold 0, ``scale = (max - min) / 255``, ``zero_point = round(-min / scale)``."""
        lo = self.ranges[i, 0].double().clamp(max=0)
        hi = self.ranges[i, 1].double().clamp(min=0)
        scale = (hi - lo) / (ACT_QMAX - ACT_QMIN)
        degenerate = scale.float() < torch.finfo(torch.float32).tiny
        scale = torch.where(degenerate, torch.ones_like(scale), scale)
        zero_point = torch.where(degenerate, torch.zeros_like(lo), torch.round(ACT_QMIN - lo / scale))
        return scale.float().reshape(1), zero_point.to(torch.int32).reshape(1)

    def forward(self, i: int, x: torch.Tensor, levels: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """``x`` rounded to the uint8 grid of activation ``i``, and that grid's scale (for the layer that
        takes it); in training, the range follows ``x`` first. ``levels``: the rounded values divided by the
        scale instead (the integer levels less the zero point, with the gradients of that division)."""
        if self.training and not self.frozen:
            with torch.no_grad():
                lo, hi = torch.aminmax(_in_memory_order(x.detach().float()))
                new = torch.stack((lo, hi))
                moved = torch.where(self.observed == 0, new, self.ranges[i] + RANGE_MOMENTUM * (new - self.ranges[i]))
                self.ranges[i] = torch.where(torch.isfinite(new).all(), moved, self.ranges[i])
        scale, zero_point = self.qparams(i)
        return _RoundToGrid.apply(x, scale, zero_point.float(), ACT_QMIN, ACT_QMAX, levels), scale


class _RoundToGrid(torch.autograd.Function):
    """``torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)`` with tensor parameters,
    computed as its kernels compute it (``round(x * (1 / scale)) + zero_point``, clamped to the range,
    less the zero point, times the scale; gradients straight through where the level was inside the range)
    but without its check of the zero point against the range, which reads the zero point back with
    ``.item()`` at every call: on a GPU a wait for all the work queued, once an activation, 29 times a
    step (the zero points here are ``qparams``', always inside the range). A NaN stays NaN (torch's
    kernels turn it into an end of the range), so the step guard sees it. Otherwise the same numbers as
    torch's op, but for the sign of a zero, and for a clipped value's gradient where the gradient arriving
    is not finite: 0 here, NaN in torch's (its backward multiplies by the mask).

    ``levels``: the result before the product with the scale, whose gradients are those of the rounded
    value divided by the scale: the integer levels a layer's conv takes (:func:`_forward`), without
    computing the rounded values and dividing them again."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor, qmin: int,
                qmax: int, levels: bool = False) -> torch.Tensor:
        # The level less the zero point, clamped to the range less the zero point: the same integers as
        # clamping the level (exact in float32 below 2**24; beyond that both are an end of the range).
        steps = torch.round(x * (1.0 / scale))
        grid = steps.clamp(qmin - zero_point, qmax - zero_point)
        inside = grid == steps  # (NaN: not inside)
        del steps
        ctx.save_for_backward(inside, scale)
        ctx.levels = levels
        return grid if levels else grid.mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        inside, scale = ctx.saved_tensors
        if ctx.levels:
            grad = grad / scale
        return torch.where(inside, grad, 0.0), None, None, None, None, None  # (not grad * inside: a float copy)


def _in_memory_order(x: torch.Tensor) -> torch.Tensor:
    """``x``'s elements in one dimension, a view where ``x`` is contiguous or channels_last (a layer's output
    in training). ``torch.aminmax`` of a whole channels_last tensor copies it to contiguous first: on this
    2-core CPU the copy took 16 times the reduction (107 ms against 6 ms, 32x64x112x112)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        x = x.permute(0, 2, 3, 1)
    return x.reshape(-1)


def weight_scales(w: torch.Tensor, qmax: int = W_QMAX) -> torch.Tensor:
    """Per output channel, ONNX Runtime's symmetric int8 scale: ``max |w| / qmax`` (127, or 64 for 7-bit
    weights; 1 for an all-zero channel)."""
    amax = w.detach().abs().reshape(w.shape[0], -1).amax(1).double()
    scale = (2 * amax / (2 * qmax)).float()
    return torch.where(scale < torch.finfo(torch.float32).tiny, torch.ones_like(scale), scale)


def bias_fitting_scales(w_scale: torch.Tensor, bias: torch.Tensor, input_scale: torch.Tensor) -> torch.Tensor:
    """``w_scale`` (float32, one an output channel, or one for all) widened where ``bias`` at ``input_scale`` x
    ``w_scale`` would not stay within the middle half of int32's range: there ``2 |bias| / (input_scale x
    INT32_MAX)`` (the largest |bias| where one scale serves all), its level then about 2**30 (TensorFlow Lite's
    converter's rule). Such a channel is a dead one (BatchNorm's gamma all but 0: weights near 0, a bias that is
    its value): its weights round to few levels or none and its bias keeps its value, where one clipped to
    int32's range lost it; and integer kernels, whose int32 sums add at most fan_in x 255 x 127 to the bias's
    level, cannot wrap around (a bias clipped to 2**31 - 1 did, wherever a positive sum was added to it)."""
    wanted = 2 * bias.detach().double().abs() / (input_scale.detach().double().reshape(-1) * INT32_MAX)
    if w_scale.numel() == 1:
        wanted = wanted.amax().reshape(w_scale.shape)
    return torch.maximum(w_scale, wanted.float())


def quantize_weight(w: torch.Tensor, qmax: int = W_QMAX,
                    scale: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``w`` rounded to int8 in [-qmax, qmax] per output channel (gradients straight through), and its scales:
    ``scale`` where given, else :func:`weight_scales`."""
    if scale is None:
        scale = weight_scales(w, qmax)
    # A float zero point: torch checks an int32 one against [-qmax, qmax] with two .item() calls, which on a GPU
    # wait for all the work queued (two host waits a layer a step); a zero point of 0.0 rounds to the same values.
    zero = torch.zeros(w.shape[0], device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, -qmax, qmax), scale


def quantize_bias(b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``b`` rounded to int32 at ``scale`` (input scale x weight scales, a float32 product), clipped to
    int32's range, as ONNX Runtime stores a float32 bias; gradients pass straight through. (The weight scales
    of :func:`bias_fitting_scales` leave nothing to clip.)"""
    q = torch.round(b.detach().double() / scale.double()).clamp(-INT32_MAX - 1, INT32_MAX)
    # Dequantized as DequantizeLinear does: the level in float32 (2**31 - 1 becomes 2**31) times the scale.
    return (q.float() * scale) + (b - b.detach())  # the rounded value exactly; the gradient of b


class Roundings(NamedTuple):
    """What a quantization-aware model's INT8 file holds, as the model rounds it (:func:`deployed_roundings`)."""

    points: List[Tuple[float, int]]  # each activation's (scale, uint8 zero point): the input, each layer's, pooled
    weights: List[torch.Tensor]  # each layer's folded weights, then the classifier's, on their int8 grids
    scales: List[torch.Tensor]  # their per-output-channel scales (bias_fitting_scales)
    biases: List[torch.Tensor]  # their biases as the model adds them (quantize_bias)


def deployed_roundings(model: nn.Module) -> Roundings:
    """The roundings of a quantization-aware ``model`` (in evaluation) that its INT8 files must hold: the ONNX and
    TensorFlow Lite writers take them from here, and their checks compare the files with them."""
    q = model.quant
    points = [(float(s), int(z)) for s, z in (q.qparams(i) for i in range(q.ranges.shape[0]))]
    weights, scales, biases = [], [], []
    with torch.no_grad():
        layers = [folded(conv, bn) for conv, bn, _ in model.network] + [(model.fc.weight, model.fc.bias)]
        # Their inputs: activation k for layer k, the pooled features (the last) for the classifier.
        inputs = list(range(len(model.network))) + [len(points) - 1]
        for k, (weight, bias) in zip(inputs, layers):
            x_scale = q.qparams(k)[0]
            scales.append(bias_fitting_scales(weight_scales(weight, q.weight_qmax), bias, x_scale))
            weights.append(quantize_weight(weight, q.weight_qmax, scales[-1])[0])
            biases.append(quantize_bias(bias, x_scale * scales[-1]))
    return Roundings(points, weights, scales, biases)


def folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``conv`` followed by ``bn`` at its running statistics: the arithmetic of
    ``torch.nn.utils.fusion.fuse_conv_bn_weights`` (``export``'s folding), so the exported weights are
    these to the bit. Differentiable in the conv's weight and BatchNorm's gamma and beta."""
    rsqrt = torch.rsqrt(bn.running_var + bn.eps)
    weight = _ScaleChannels.apply(conv.weight, (bn.weight * rsqrt).reshape(-1, 1, 1, 1))
    bias = (torch.zeros_like(bn.running_mean) - bn.running_mean) * rsqrt * bn.weight + bn.bias
    return weight, bias


class _ScaleChannels(torch.autograd.Function):
    """``weight * factor`` (one factor an output channel), whose gradient for ``weight`` has ``weight``'s own
    strides. Autograd's product gives it the strides elementwise operations choose, which differ from a
    channels_last weight's in its dimensions of size 1 (a depthwise conv's input channel, a pointwise conv's
    kernel): DDP, which lays out its buckets by the weights' strides, then warned at every quantization-aware
    run ("Grad strides do not match bucket view strides ... may impair performance") and copied the
    gradients into its buckets by another path."""

    @staticmethod
    def forward(ctx, weight: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight, factor)
        return weight * factor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        weight, factor = ctx.saved_tensors
        grad_weight = grad_factor = None
        if ctx.needs_input_grad[0]:
            grad_weight = torch.mul(grad, factor, out=torch.empty_like(weight))
        if ctx.needs_input_grad[1]:
            grad_factor = (grad * weight).sum_to_size(factor.shape)
        return grad_weight, grad_factor


def _on_grid(t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``t / scale`` rounded to integers (``t`` a rounded tensor: its integer levels, zero point taken
    off), with the gradients of ``t / scale``."""
    v = t / scale
    return torch.round(v).detach() + (v - v.detach())


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits of a MobileNetV1 built with ``qat=True`` (see the module's docstring)."""
    with torch.autocast(x.device.type, enabled=False):  # float32 whatever the precision around it
        return _forward(model, x.float())


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    q = model.quant
    # Ranges never observed (a model not trained yet) round nothing but the weights.
    observed = q.was_observed()

    def rounded(i: int, t: torch.Tensor, levels: bool = False) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        return q(i, t, levels) if observed else (t, None)

    # Each conv's input as its integer levels (less the zero point), the pooled features' as values.
    last = len(model.network) - 1
    x, x_scale = rounded(0, x, levels=True)
    for k, (conv, bn, _) in enumerate(model.network):
        weight, bias = folded(conv, bn)
        w_scale = bias_fitting_scales(weight_scales(weight, q.weight_qmax), bias, x_scale) if observed else None
        weight, w_scale = quantize_weight(weight, q.weight_qmax, w_scale)
        if observed:
            # On the integer levels, as integer kernels compute: the products and their sums (below 2**24)
            # are exact in float32, and in TF32, which cuDNN convs use by default on a GPU; then scaled once.
            scale = x_scale * w_scale
            # (conv._conv_forward: the layer's own conv, SAME-padded or not, with these weights)
            y = conv._conv_forward(x, _on_grid(weight, w_scale.reshape(-1, 1, 1, 1)), None)
            y = y * scale.reshape(1, -1, 1, 1) + quantize_bias(bias, scale).reshape(1, -1, 1, 1)
        else:
            y = conv._conv_forward(x, weight, bias)
        x, x_scale = rounded(k + 1, F.relu6(y), levels=k < last)
    x, x_scale = rounded(len(model.network) + 1, x.mean(dim=(2, 3)))
    if model.drop_rate:
        x = F.dropout(x, model.drop_rate, model.training)
    bias = model.fc.bias
    w_scale = bias_fitting_scales(weight_scales(model.fc.weight, q.weight_qmax), bias, x_scale) if observed else None
    weight, w_scale = quantize_weight(model.fc.weight, q.weight_qmax, w_scale)
    if observed:
        bias = quantize_bias(bias, x_scale * w_scale)
    if q.training and not q.frozen:
        with torch.no_grad():
            q.observed += 1
    return F.linear(x, weight, bias)
