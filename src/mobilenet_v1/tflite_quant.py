"""INT8 TensorFlow Lite files: a float ``.tflite`` of ``export --file_format TFLITE`` quantized as TensorFlow
Lite's full-integer post-training quantization quantizes (``quantize --tflite``).

Weights int8, symmetric, per output channel (``CONV_2D``'s filters along axis 0, ``DEPTHWISE_CONV_2D``'s along
3; ``FULLY_CONNECTED``'s one scale, as its int8 kernels take it), biases int32 at the input's scale times
the weight's; activations int8, asymmetric, one scale a tensor, their ranges the largest values the network
reaches on calibration images (a ReLU6 output from 0, so its zero point is -128 and its padding, real 0,
exact). The float input is quantized by ``QUANTIZE`` (behind the image input's ``CAST``/``MUL``/``ADD``
where the file has one) and the logits come back as float by ``DEQUANTIZE`` (followed by the float file's
``SOFTMAX`` where it has one): the file takes and gives what the float one does, and runs int8 in between,
as TensorFlow Lite for Microcontrollers and integer accelerators run MobileNets; with ``int8_io`` it takes
and gives the int8 levels themselves, neither op there (:func:`build_int8_graph`). Each operator carries the
version its int8 types need.

The same builder writes a quantization-aware model's file (``export --file_format TFLITE`` of a ``train --qat``
checkpoint, :func:`learned`): its own scales, zero points, weight levels and biases instead of calibrated
ones, and its classifier in float from int8 weights, as the model computes it."""

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .tflite_io import (CONV_2D, DEPTHWISE_CONV_2D, DEQUANTIZE, FULLY_CONNECTED, INT8, INT32, MEAN,
                        NO_ACTIVATION, PAD, QUANTIZE, RELU6, SAME, VALID, Quantization, _Graph, _same_size,
                        image_input, image_input_note, in_file_channels, padded, softmax_output,
                        write_flatbuffer)

# The operator versions of int8 kernels (TensorFlow Lite's op_version.cc): per-channel CONV_2D and
# DEPTHWISE_CONV_2D 3, int8 FULLY_CONNECTED 4, MEAN and PAD 2, QUANTIZE to int8 2, DEQUANTIZE from int8 2.
VERSIONS = {CONV_2D: 3, DEPTHWISE_CONV_2D: 3, FULLY_CONNECTED: 4, MEAN: 2, PAD: 2, QUANTIZE: 2, DEQUANTIZE: 2}
PER_CHANNEL_DEQUANTIZE = 5  # DEQUANTIZE of an int8 tensor with a scale per channel


def folded_model(deployed) -> Tuple[nn.Module, Optional[str]]:
    """The folded MobileNetV1 a float ``.tflite`` of ours holds (:class:`tflite_io.TfliteModel`), its weights
    read from LiteRT's tensors by name, and the file's pixel format (None for a float input)."""
    from .export import fold_batchnorm
    from .model import MobileNetV1
    from .onnx_io import PIXEL_FORMATS

    meta = deployed.metadata
    missing = [k for k in ("class_num", "width_mult") if not isinstance(meta.get(k), (int, float))]
    if missing:  # a file of another tool's: no network this module can rebuild
        raise ValueError(f"{deployed.path}: its metadata records no {' and no '.join(missing)}: not a float file of "
                         f"mobilenet-v1 export, whose network --tflite quantizes")
    model = fold_batchnorm(MobileNetV1(class_num=int(meta["class_num"]), width_mult=float(meta["width_mult"]),
                                       padding=str(meta.get("padding") or "same")))
    interpreter = deployed.interpreter
    tensors = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}

    def get(name: str) -> torch.Tensor:
        if name not in tensors:
            raise ValueError(f"{deployed.path}: no tensor {name!r}: not a float file of mobilenet-v1 export")
        return torch.from_numpy(np.array(interpreter.get_tensor(tensors[name]), dtype=np.float32))

    pixel_format = deployed.pixel_format if deployed.image_input else None
    with torch.no_grad():
        for layer, block in enumerate(model.network):
            conv = block[0]
            w = get(f"layer{layer}_weights")
            if conv.groups > 1:  # (1, kh, kw, C) as (C, 1, kh, kw)
                weight = w[0].permute(2, 0, 1).unsqueeze(1)
            else:  # OHWI as OIHW; the first layer's in the file's channels: R, G, B where they are
                weight = w.permute(0, 3, 1, 2)
                if layer == 0 and pixel_format:
                    weight = weight[:, list(PIXEL_FORMATS[pixel_format][0])]
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{deployed.path}: layer {layer}'s weights have shape {tuple(w.shape)}, not the "
                                 f"recorded network's: not a float file of mobilenet-v1 export")
            conv.weight.copy_(weight)
            conv.bias.copy_(get(f"layer{layer}_bias"))
        model.fc.weight.copy_(get("fc_weights"))
        model.fc.bias.copy_(get("fc_bias"))
    return model.eval(), pixel_format


def activation_ranges(model: nn.Module, batches: Iterator[Tuple[torch.Tensor, torch.Tensor]]) -> Dict[str, Any]:
    """The ranges TensorFlow Lite's calibration measures on ``batches`` (normalised float NCHW): the input's
    lowest and highest value, each layer's highest output (ReLU6's lowest is 0), the pooled features' highest,
    the logits' lowest and highest; and how many images gave them."""
    outputs: List[float] = [0.0] * len(model.network)
    hooks = [block.register_forward_hook(lambda m, i, o, k=k: outputs.__setitem__(k, max(outputs[k],
                                                                                        float(o.max()))))
             for k, block in enumerate(model.network)]
    low = high = pooled = 0.0
    logit_low = logit_high = 0.0
    images = 0
    try:
        with torch.no_grad():
            for x, _ in batches:
                x = x.to("cpu", torch.float32)
                low, high = min(low, float(x.min())), max(high, float(x.max()))
                features = model.forward_features(x).mean(dim=(2, 3))
                logits = model.fc(features)
                pooled = max(pooled, float(features.max()))
                logit_low, logit_high = min(logit_low, float(logits.min())), max(logit_high, float(logits.max()))
                images += x.shape[0]
    finally:
        for h in hooks:
            h.remove()
    return {"input": (low, high), "layers": outputs, "pooled": pooled, "logits": (logit_low, logit_high),
            "images": images}


def _asymmetric(low: float, high: float) -> Quantization:
    """int8 of [low, high] widened to hold 0 (which must be exact: padding), one scale."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max(high - low, 1e-8) / 255.0
    zero = int(np.clip(round(-128 - low / scale), -128, 127))
    return Quantization([scale], [zero])


def _weights(w: np.ndarray, axis: Optional[int], bias: np.ndarray, input_scale: float,
             scales: Optional[np.ndarray] = None) -> Tuple[np.ndarray, List[float], np.ndarray]:
    """Symmetric int8 of ``w``, a scale per index of ``axis`` (None: one for all), and ``bias`` as int32 at
    ``input_scale`` times those scales. A scale is widened where the bias would not stay within the middle half
    of int32's range (the converter's rule, :func:`qat.bias_fitting_scales`: a dead channel's bias, at its
    near-0 weights' scale, overflowed int32 and wrapped around to the other sign). ``scales``: given (a
    quantization-aware model's), not measured; the bias then rounded as the model rounds it, at the float32
    product of the scales (:func:`qat.quantize_bias`)."""
    from .qat import INT32_MAX, bias_fitting_scales

    given = scales is not None
    if not given:
        if axis is None:
            scales = np.array([max(float(np.abs(w).max()), 1e-12) / 127.0])
        else:
            moved = np.moveaxis(w, axis, 0)
            scales = np.maximum(np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1), 1e-12) / 127.0
        scales = bias_fitting_scales(torch.from_numpy(scales), torch.from_numpy(bias),
                                     torch.tensor([input_scale], dtype=torch.float64)).numpy()
    scales = np.asarray(scales, np.float64).reshape(-1)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.reshape(shape)), -127, 127)
    product = input_scale * scales
    if given:
        product = (np.float32(input_scale) * scales.astype(np.float32)).astype(np.float64)
    levels = np.clip(np.round(bias / product), -INT32_MAX, INT32_MAX).astype(np.int64)
    return q.astype(np.int8), [float(s) for s in scales], levels


def calibrated(ranges: Dict[str, Any]) -> Dict[str, Any]:
    """The quantization of each activation by ``ranges`` (:func:`activation_ranges`), as
    :func:`build_int8_graph` takes it: ``input``, ``layers`` (one each), ``pooled`` and ``logits``."""
    return {"input": _asymmetric(*ranges["input"]),
            "layers": [Quantization([max(r, 1e-8) / 255.0], [-128]) for r in ranges["layers"]],
            "pooled": Quantization([max(ranges["pooled"], 1e-8) / 255.0], [-128]),
            "logits": _asymmetric(*ranges["logits"])}


def learned(model: nn.Module, rounded=None) -> Tuple[nn.Module, Dict[str, Any]]:
    """A quantization-aware ``model``'s network folded (float, evaluation mode) and its quantization as it
    learned it, as :func:`build_int8_graph` takes them: each activation's scale and zero point (its uint8 zero
    point less 128: the same grid in int8), the weight scales of each layer and of the classifier
    (:func:`qat.bias_fitting_scales`), and no ``logits``: the model's classifier computes in float, from its
    rounded pooled features, weights and bias. The weights are the model's rounded ones
    (:func:`qat.quantize_weight`), whose levels the file's division gives back exactly (a division in float64
    rounded a weight at a tie of float32 to the other level). ``rounded``: the model's
    :func:`qat.deployed_roundings`, where the caller has them."""
    from .export import fold_batchnorm
    from .qat import deployed_roundings

    rounded = rounded or deployed_roundings(model)
    grid = [Quantization([scale], [zero - 128]) for scale, zero in rounded.points]
    network = fold_batchnorm(model.without_quant()).eval()
    with torch.no_grad():
        for target, weight in zip([block[0] for block in network.network] + [network.fc], rounded.weights):
            target.weight.copy_(weight)
    scales = [s.double().cpu().numpy() for s in rounded.scales]
    return network, {"input": grid[0], "layers": grid[1:-1], "pooled": grid[-1], "logits": None, "weights": scales}


def build_int8_graph(model: nn.Module, quant: Dict[str, Any], height: int, width: int, batch: int,
                     mean, std, pixel_format: Optional[str] = None, int8_io: bool = False) -> _Graph:
    """The full-integer subgraph of ``model`` (folded, evaluation mode) with the activations quantized as
    ``quant`` says (:func:`calibrated`, or :func:`learned` with its weight scales), for batches of ``batch``;
    float input (or the image input's pixels, normalised in float as the float file does) and float logits.
    Where ``quant`` has no ``logits`` range, the classifier runs in float: the pooled features and its int8
    weights dequantized (``DEQUANTIZE``), its bias as the quantization-aware model rounds it.

    ``int8_io``: no ``QUANTIZE`` in front nor ``DEQUANTIZE`` behind; the input (``input``) is the normalised
    values' int8 levels at ``quant``'s input scale and zero point, which the caller quantizes, and the output
    (``logits``) the logits' int8 levels, as TensorFlow Lite's converter writes a file with int8 inference input
    and output types for microcontrollers: integer arithmetic only. Not with a pixel input (normalised in float)
    nor a float classifier (no logits range)."""
    from .onnx_io import PIXEL_FORMATS

    if int8_io and (pixel_format or quant["logits"] is None):
        raise ValueError("an int8 input and output need a float input's file and a calibrated logits range")
    g = _Graph()
    channels = PIXEL_FORMATS[pixel_format][1] if pixel_format else 3
    in_q = quant["input"]
    weight_scales = quant.get("weights") or [None] * (len(model.network) + 1)
    if int8_io:
        first_input = x = g.tensor("input", [batch, height, width, channels], INT8, quant=in_q)
    else:
        first_input, x = image_input(g, batch, height, width, mean, std, pixel_format)
        q = g.tensor("input_int8", [batch, height, width, channels], INT8, quant=in_q)
        g.op(QUANTIZE, [x], [q], version=VERSIONS[QUANTIZE])
        x = q
    x_q = in_q
    h, w = height, width
    padding = getattr(model, "padding", "same")
    for layer, block in enumerate(model.network):
        conv = block[0]
        weight = conv.weight.detach().to(torch.float32).cpu().numpy()
        bias = conv.bias.detach().to(torch.float32).cpu().numpy()
        stride, depthwise = conv.stride[0], conv.groups > 1
        if layer == 0:
            weight = in_file_channels(weight, pixel_format)
        pad = VALID if padding == "symmetric" and stride > 1 else SAME
        if pad == VALID:
            x = padded(g, layer, x, [batch, h, w, weight.shape[0] if depthwise else weight.shape[1]], x_q,
                       VERSIONS[PAD])
        h, w = _same_size(h, stride), _same_size(w, stride)
        out_q = quant["layers"][layer]
        out = g.tensor(f"layer{layer}", [batch, h, w, weight.shape[0]], INT8, quant=out_q)
        if depthwise:
            filt, scales, levels = _weights(weight[:, 0].transpose(1, 2, 0)[None], 3, bias, x_q.scales[0],
                                            weight_scales[layer])
            shape = [1, *weight.shape[2:], weight.shape[0]]
        else:
            filt, scales, levels = _weights(weight.transpose(0, 2, 3, 1), 0, bias, x_q.scales[0], weight_scales[layer])
            shape = [weight.shape[0], *weight.shape[2:], weight.shape[1]]
        f = g.tensor(f"layer{layer}_weights", shape, INT8, filt,
                     quant=Quantization(scales, [0] * len(scales), 3 if depthwise else 0))
        bias_scales = [x_q.scales[0] * s for s in scales]
        b = g.tensor(f"layer{layer}_bias", [len(bias)], INT32, levels,
                     quant=Quantization(bias_scales, [0] * len(bias_scales)))
        if depthwise:
            g.op(DEPTHWISE_CONV_2D, [x, f, b], [out], version=VERSIONS[DEPTHWISE_CONV_2D], padding=pad,
                 stride_w=stride, stride_h=stride, depth_multiplier=1, fused_activation_function=RELU6)
        else:
            g.op(CONV_2D, [x, f, b], [out], version=VERSIONS[CONV_2D], padding=pad, stride_w=stride, stride_h=stride,
                 fused_activation_function=RELU6)
        x, x_q = out, out_q
    features = model.fc.in_features
    pooled_q = quant["pooled"]
    pooled = g.tensor("pooled", [batch, features], INT8, quant=pooled_q)
    g.op(MEAN, [x, g.tensor("pool_axes", [2], INT32, np.array([1, 2]))], [pooled], version=VERSIONS[MEAN],
         keep_dims=0)
    fc_w = model.fc.weight.detach().to(torch.float32).cpu().numpy()
    fc_b = model.fc.bias.detach().to(torch.float32).cpu().numpy()
    if quant["logits"] is None:
        logits = g.tensor("logits", [batch, fc_w.shape[0]])
        _float_classifier(g, pooled, logits, fc_w, fc_b, pooled_q.scales[0], weight_scales[-1])
        g.inputs, g.outputs = [first_input], [logits]
        return g
    wq, (w_scale,), fc_levels = _weights(fc_w, None, fc_b, pooled_q.scales[0])
    logits_q = quant["logits"]
    logits_int8 = g.tensor("logits" if int8_io else "logits_int8", [batch, fc_w.shape[0]], INT8, quant=logits_q)
    bias_scale = pooled_q.scales[0] * w_scale
    g.op(FULLY_CONNECTED, [pooled, g.tensor("fc_weights", fc_w.shape, INT8, wq, quant=Quantization([w_scale], [0])),
                           g.tensor("fc_bias", fc_b.shape, INT32, fc_levels, quant=Quantization([bias_scale], [0]))],
         [logits_int8], version=VERSIONS[FULLY_CONNECTED], fused_activation_function=NO_ACTIVATION)
    if int8_io:
        g.inputs, g.outputs = [first_input], [logits_int8]
        return g
    logits = g.tensor("logits", [batch, fc_w.shape[0]])
    g.op(DEQUANTIZE, [logits_int8], [logits], version=VERSIONS[DEQUANTIZE])
    g.inputs, g.outputs = [first_input], [logits]
    return g


def _float_classifier(g: _Graph, pooled: int, logits: int, weight: np.ndarray, bias: np.ndarray, input_scale: float,
                      scales: np.ndarray) -> None:
    """``logits`` = ``pooled`` (int8) through the classifier in float, as a quantization-aware model computes it:
    the features dequantized, the weights int8 per output channel at ``scales``, dequantized, and the bias its
    int32 level at ``input_scale`` times those scales, in float32 (:func:`qat.quantize_bias`)."""
    from .qat import quantize_bias

    features = g.tensor("pooled_float", g.tensors[pooled][1])
    g.op(DEQUANTIZE, [pooled], [features], version=VERSIONS[DEQUANTIZE])
    levels, scales_list, _ = _weights(weight, 0, bias, input_scale, scales)
    stored = g.tensor("fc_weights", list(weight.shape), INT8, levels,
                      quant=Quantization(scales_list, [0] * len(scales_list), 0))
    dequantized = g.tensor("fc_weights_float", list(weight.shape))
    g.op(DEQUANTIZE, [stored], [dequantized], version=PER_CHANNEL_DEQUANTIZE)
    rounded = quantize_bias(torch.from_numpy(bias), torch.tensor([input_scale], dtype=torch.float32) *
                            torch.from_numpy(np.asarray(scales, np.float32)))
    b = g.tensor("fc_bias", [len(bias)], data=rounded.numpy())
    g.op(FULLY_CONNECTED, [features, dequantized, b], [logits], fused_activation_function=NO_ACTIVATION)


def quantize_tflite(src: str, dst: str, batches: Iterator[Tuple[torch.Tensor, torch.Tensor]],
                    check: Optional[Callable[[str], Any]] = None, int8_io: bool = False) -> Dict[str, Any]:
    """The float ``.tflite`` ``src`` (``export --file_format TFLITE``) as a full-integer INT8 ``.tflite``
    ``dst`` (module docstring), its activation ranges measured on ``batches``; its metadata kept, a
    ``quantization`` entry added. Returns what :func:`quantize.quantize_file` returns, ``check`` as there.
    ``int8_io``: its input and output int8 (:func:`build_int8_graph`), a softmax's output too (at 1/256)."""
    import os

    from . import checkpoint as ckpt_io
    from .quantize import NoCalibrationImages
    from .runtime import plural
    from .tflite_io import load_tflite

    fp32 = load_tflite(src)
    fp32.check_classifier()
    removed = ckpt_io.remove_deployed_partials(dst)
    model, pixel_format = folded_model(fp32)
    ranges = activation_ranges(model, batches)
    if ranges["images"] == 0:
        raise NoCalibrationImages()
    meta = dict(fp32.metadata)
    meta["quantization"] = (f"INT8 full-integer (TensorFlow Lite), per-channel int8 weights, int8 activations"
                            f"{', int8 input and output' if int8_io else ''}, ranges observed over "
                            f"{plural(ranges['images'], 'image')}")
    if pixel_format:
        meta.update(input=image_input_note(pixel_format), pixel_format=pixel_format)
    n, (h, w) = fp32.fixed_batch or 1, fp32.image_hw
    g = build_int8_graph(model, calibrated(ranges), h, w, n, meta["mean"], meta["std"], pixel_format, int8_io)
    if fp32.probabilities:  # the float file's softmax, after the logits' DEQUANTIZE (float) or their int8 levels
        softmax_output(g)
    data = write_flatbuffer(g, {k: v for k, v in meta.items() if v is not None}, "MobileNetV1 of mobilenet-v1 "
                                                                                  "quantize, INT8")
    with ckpt_io.atomic_output(dst) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
        result = {"path": dst, "bytes": len(data), "fp32_bytes": os.path.getsize(src),
                  "calib_images": ranges["images"], "removed": removed}
        if check is not None:
            result["check"] = check(tmp)
    return result
