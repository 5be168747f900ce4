"""TensorFlow Lite files (``.tflite``) of a MobileNetV1: written here, op by op, and run in LiteRT.

A ``.tflite`` file is a FlatBuffer of TensorFlow Lite's schema (``tensorflow/lite/schema/schema.fbs``): a
model of buffers, operator codes and a subgraph of tensors and operators. The network needs five of its
builtin operators, in the layout they take (NHWC): ``CONV_2D`` (filters OHWI) and ``DEPTHWISE_CONV_2D``
(filters 1HWC), each with its folded BatchNorm as a bias and ReLU6 fused; ``PAD`` before a stride-2
convolution of ``padding symmetric`` (TensorFlow Lite's ``SAME`` is TensorFlow's, this toolkit's default,
which needs none); ``MEAN`` over height and width; ``FULLY_CONNECTED``; and with ``export --softmax True``
``SOFTMAX`` after it (:func:`softmax_output`). They are written with the
``flatbuffers`` package's builder, slot by slot, so no converter (TensorFlow, ai-edge-torch) is needed; the
file is then run in LiteRT (``ai-edge-litert``, TensorFlow Lite's runtime) and checked against PyTorch.

The input is NHWC, as TensorFlow Lite's image models take it: normalised float32 (N, H, W, 3) RGB, or with
an image input uint8 (N, H, W, C) pixels in RGB, BGR, RGBA or BGRA, which ``CAST``, ``MUL`` and ``ADD``
normalise channel by channel, the first convolution's filter taking the channels in the file's order (an
alpha channel's weights zero): the same normalised values, the same zero padding. (An INT8 file of
``quantize --tflite --int8_io True`` takes the normalised values' int8 levels: :mod:`tflite_quant`.) The
file's own metadata
(the data set, normalisation, class names ... as an ONNX file's) is a JSON object in a ``Metadata`` entry
named :data:`METADATA_NAME`, which LiteRT ignores and :func:`read_metadata` reads."""

import contextlib
import json
import mmap
import os
import struct
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .checkpoint import CheckpointError
# PROBABILITIES: the output of a file with a softmax (export --softmax True), and what its metadata's "output" says.
from .onnx_io import PIXEL_FORMATS, PROBABILITIES, DeployedModel, image_input_note, standard_error_taken
from .runtime import install_hint

IDENTIFIER = b"TFL3"
METADATA_NAME = "mobilenet_v1_json"
# TensorFlow Lite Support's metadata (Android's Task Library, ML Kit), the labels file it names, and the oldest
# metadata parser that reads the fields written.
SUPPORT_METADATA_NAME, LABELS_FILE, SUPPORT_PARSER_VERSION = "TFLITE_METADATA", "labels.txt", "1.0.0"
SIGNATURE_KEY = "serving_default"
SCHEMA_VERSION = 3
# Schema numbers: tensor types, builtin operators, the BuiltinOptions union's members, and enums.
FLOAT32, FLOAT16, INT32, UINT8, INT8 = 0, 1, 2, 3, 9
CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MUL, PAD, MEAN, ADD, CAST = 3, 4, 9, 18, 34, 40, 0, 53
QUANTIZE, DEQUANTIZE, SOFTMAX = 114, 6, 25
FLOAT16_DEQUANTIZE = 3  # DEQUANTIZE's version for a float16 input
OPTIONS = {CONV_2D: 1, DEPTHWISE_CONV_2D: 2, FULLY_CONNECTED: 8, SOFTMAX: 9, ADD: 11, MUL: 21, PAD: 22, MEAN: 27,
           CAST: 37, QUANTIZE: 0, DEQUANTIZE: 0}  # 0: no options table
SAME, VALID = 0, 1
NO_ACTIVATION, RELU6 = 0, 3


def flatbuffers_module():
    """The ``flatbuffers`` package, or a :class:`CheckpointError` saying how to install it."""
    try:
        import flatbuffers
    except ImportError as e:
        raise CheckpointError(f"the flatbuffers package is not installed ({e}), which .tflite files need: "
                              f"{install_hint('tflite')}") from None
    return flatbuffers


def litert_interpreter():
    """LiteRT's ``Interpreter`` class, or a :class:`CheckpointError` saying how to install it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise CheckpointError(f"LiteRT (the ai-edge-litert package) is not installed ({e}), which runs .tflite "
                              f"files: {install_hint('tflite')}") from None
    return Interpreter


@contextlib.contextmanager
def _native_log(lines: List[str]):
    """What LiteRT writes to the standard error inside the block (:func:`onnx_io.standard_error_taken`), taken
    into ``lines`` (the reasons behind a failed load): its note that it made an XNNPACK delegate is dropped,
    anything else written on to the standard error once the block ends (nowhere with it closed), unless the
    block failed (it is then the error's)."""
    taken: List[str] = []
    failed = False
    try:
        with standard_error_taken(taken):
            yield
    except BaseException:
        failed = True
        raise
    finally:
        lines.extend(line.strip() for line in taken[0].splitlines()
                     if line.strip() and not line.startswith("INFO: Created TensorFlow Lite XNNPACK delegate"))
        if lines and not failed and sys.stderr is not None:
            print("\n".join(lines), file=sys.stderr)


def is_tflite_file(path: str) -> bool:
    """Whether ``path`` is a file whose FlatBuffer identifier (bytes 4 to 7) is TensorFlow Lite's."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == IDENTIFIER


# ------------------------------------------------------------------------------------------------ writing

class _Graph:
    """The tensors, buffers and operators of a subgraph, as the builder writes them afterwards."""

    def __init__(self):
        self.buffers: List[bytes] = [b""]  # buffer 0: the empty one tensors without data point to
        # name, shape, type, buffer, quantization (scales, zero points, the axis of per-channel ones) or None
        self.tensors: List[Tuple[str, List[int], int, int, Optional[Quantization]]] = []
        self.ops: List[Tuple[int, List[int], List[int], Dict[str, float]]] = []  # builtin, inputs, outputs, options
        self.codes: List[int] = []
        self.versions: Dict[int, int] = {}  # an operator's version, where it is not 1 (what its types need)

    def tensor(self, name: str, shape: Sequence[int], kind: int = FLOAT32, data: Optional[np.ndarray] = None,
               quant: Optional["Quantization"] = None) -> int:
        buffer = 0
        if data is not None:
            dtype = {FLOAT32: "<f4", FLOAT16: "<f2", INT32: "<i4", INT8: "i1", UINT8: "u1"}[kind]
            self.buffers.append(np.ascontiguousarray(data, dtype=dtype).tobytes())
            buffer = len(self.buffers) - 1
        self.tensors.append((name, [int(d) for d in shape], kind, buffer, quant))
        return len(self.tensors) - 1

    def op(self, builtin: int, inputs: List[int], outputs: List[int], version: int = 1, **options: float) -> None:
        if builtin not in self.codes:
            self.codes.append(builtin)
        self.versions[builtin] = max(version, self.versions.get(builtin, 1))
        self.ops.append((builtin, inputs, outputs, options))


class Quantization(NamedTuple):
    """A tensor's quantization: ``real = scale * (q - zero_point)``, one pair or one per index of ``axis``."""

    scales: Sequence[float]
    zero_points: Sequence[int]
    axis: int = 0


# Each options table's fields by slot (schema.fbs), each a 4-byte int but padding and activation (1 byte) and
# softmax's beta (a float).
_OPTION_SLOTS = {
    CONV_2D: ["padding", "stride_w", "stride_h", "fused_activation_function"],
    DEPTHWISE_CONV_2D: ["padding", "stride_w", "stride_h", "depth_multiplier", "fused_activation_function"],
    FULLY_CONNECTED: ["fused_activation_function"], ADD: ["fused_activation_function"],
    MUL: ["fused_activation_function"], PAD: [], MEAN: ["keep_dims"], CAST: ["in_data_type", "out_data_type"],
    SOFTMAX: ["beta"]}
_BYTE_FIELDS = {"padding", "fused_activation_function", "keep_dims", "in_data_type", "out_data_type"}
_FLOAT_FIELDS = {"beta"}


def _same_size(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


def image_input(g: _Graph, batch: int, height: int, width: int, mean: Sequence[float], std: Sequence[float],
                pixel_format: Optional[str]) -> Tuple[int, int]:
    """The graph's input tensor, and the normalised float (N, H, W, C) tensor the network starts from: the input
    itself, or with ``pixel_format`` the uint8 pixels ``CAST``, ``MUL`` and ``ADD`` normalise channel by channel
    (``pixel / (255 std) - mean / std``; an alpha channel scaled by 0)."""
    channels = PIXEL_FORMATS[pixel_format][1] if pixel_format else 3
    x = g.tensor("input", [batch, height, width, channels], UINT8 if pixel_format else FLOAT32)
    if not pixel_format:
        return x, x
    scale, shift = np.zeros(channels, np.float32), np.zeros(channels, np.float32)
    for c, k in enumerate(PIXEL_FORMATS[pixel_format][0]):  # k: the input channel of R, G and B
        scale[k], shift[k] = 1.0 / (255.0 * std[c]), -mean[c] / std[c]
    cast = g.tensor("pixels_float", [batch, height, width, channels])
    g.op(CAST, [x], [cast], in_data_type=UINT8, out_data_type=FLOAT32)
    scaled = g.tensor("pixels_scaled", [batch, height, width, channels])
    g.op(MUL, [cast, g.tensor("scale", [channels], data=scale)], [scaled], fused_activation_function=NO_ACTIVATION)
    normalised = g.tensor("normalised", [batch, height, width, channels])
    g.op(ADD, [scaled, g.tensor("shift", [channels], data=shift)], [normalised],
         fused_activation_function=NO_ACTIVATION)
    return x, normalised


def in_file_channels(weight: np.ndarray, pixel_format: Optional[str]) -> np.ndarray:
    """The first convolution's (O, 3, kh, kw) weights over the file's input channels: R, G and B where
    ``pixel_format`` has them, an alpha channel's weights 0 (as they are for a float input)."""
    if not pixel_format:
        return weight
    full = np.zeros((weight.shape[0], PIXEL_FORMATS[pixel_format][1], *weight.shape[2:]), weight.dtype)
    for c, k in enumerate(PIXEL_FORMATS[pixel_format][0]):
        full[:, k] = weight[:, c]
    return full


def padded(g: _Graph, layer: int, x: int, shape: Sequence[int], quant: Optional[Quantization] = None,
           version: int = 1) -> int:
    """``x`` (of NHWC ``shape``) padded by 1 on each side of height and width (PyTorch's ``padding=1``, before
    a stride-2 convolution of ``padding symmetric``, which then runs VALID); a quantized tensor keeps its
    ``quant`` (its zero point, real 0, is what pads)."""
    n, h, w, c = shape
    out = g.tensor(f"layer{layer}_padded", [n, h + 2, w + 2, c], INT8 if quant else FLOAT32, quant=quant)
    g.op(PAD, [x, g.tensor(f"layer{layer}_pads", [4, 2], INT32, np.array([[0, 0], [1, 1], [1, 1], [0, 0]]))], [out],
         version=version)
    return out


def build_graph(model: nn.Module, height: int, width: int, batch: int, mean: Sequence[float], std: Sequence[float],
                pixel_format: Optional[str] = None, float16: bool = False) -> _Graph:
    """The subgraph of ``model`` (a MobileNetV1 with its BatchNorms folded, in evaluation mode) for batches of
    ``batch`` (N, ``height``, ``width``, C); with ``pixel_format`` a uint8 image input of that format normalised
    by ``mean`` and ``std`` (on the [0, 1] scale). ``float16``: the weights and biases stored as float16, each
    turned into float32 by a ``DEQUANTIZE`` (TensorFlow Lite's float16 quantization: half the file; CPUs
    compute in float32, GPU delegates in float16 as stored)."""
    g = _Graph()

    def constant(name: str, shape: Sequence[int], data: np.ndarray) -> int:
        if not float16:
            return g.tensor(name, shape, data=data)
        stored = g.tensor(name + "_float16", shape, FLOAT16, np.asarray(data, np.float32).astype(np.float16))
        out = g.tensor(name, shape)
        g.op(DEQUANTIZE, [stored], [out], version=FLOAT16_DEQUANTIZE)
        return out

    padding = getattr(model, "padding", "same")
    first_input, x = image_input(g, batch, height, width, mean, std, pixel_format)
    h, w = height, width
    for layer, block in enumerate(model.network):
        conv = block[0]
        weight = conv.weight.detach().to(torch.float32).cpu().numpy()  # (O, I/groups, kh, kw)
        bias = conv.bias.detach().to(torch.float32).cpu().numpy() if conv.bias is not None else \
            np.zeros(weight.shape[0], np.float32)
        stride = conv.stride[0]
        depthwise = conv.groups > 1
        if layer == 0:
            weight = in_file_channels(weight, pixel_format)
        pad = VALID if padding == "symmetric" and stride > 1 else SAME
        if pad == VALID:
            x = padded(g, layer, x, [batch, h, w, weight.shape[0] if depthwise else weight.shape[1]])
        h, w = _same_size(h, stride), _same_size(w, stride)
        out = g.tensor(f"layer{layer}", [batch, h, w, weight.shape[0]])
        b = constant(f"layer{layer}_bias", [weight.shape[0]], bias)
        if depthwise:
            filt = constant(f"layer{layer}_weights", [1, *weight.shape[2:], weight.shape[0]],
                            weight[:, 0].transpose(1, 2, 0)[None])
            g.op(DEPTHWISE_CONV_2D, [x, filt, b], [out], padding=pad, stride_w=stride, stride_h=stride,
                 depth_multiplier=1, fused_activation_function=RELU6)
        else:
            filt = constant(f"layer{layer}_weights", [weight.shape[0], *weight.shape[2:], weight.shape[1]],
                            weight.transpose(0, 2, 3, 1))
            g.op(CONV_2D, [x, filt, b], [out], padding=pad, stride_w=stride, stride_h=stride,
                 fused_activation_function=RELU6)
        x = out
    features = model.fc.in_features
    pooled = g.tensor("pooled", [batch, features])
    g.op(MEAN, [x, g.tensor("pool_axes", [2], INT32, np.array([1, 2]))], [pooled], keep_dims=0)
    fc_w = model.fc.weight.detach().to(torch.float32).cpu().numpy()
    fc_b = model.fc.bias.detach().to(torch.float32).cpu().numpy()
    logits = g.tensor("logits", [batch, fc_w.shape[0]])
    g.op(FULLY_CONNECTED, [pooled, constant("fc_weights", fc_w.shape, fc_w), constant("fc_bias", fc_b.shape, fc_b)],
         [logits], fused_activation_function=NO_ACTIVATION)
    g.inputs, g.outputs = [first_input], [logits]
    return g


def softmax_output(g: _Graph) -> None:
    """``g``'s logits followed by ``SOFTMAX``, whose probabilities (:data:`PROBABILITIES`) become its output:
    the file of ``export --softmax True``, for apps that show or threshold its scores as confidences (Android's
    Task Library and ML Kit hand them the output as it is). Int8 logits (an int8 output) get TensorFlow Lite's int8
    softmax, whose probabilities are levels of 1/256."""
    logits = g.outputs[0]
    _, shape, kind, _, _ = g.tensors[logits]
    if kind == INT8:  # TensorFlow Lite's int8 softmax (version 2): its output at scale 1/256, zero point -128
        probabilities = g.tensor(PROBABILITIES, shape, INT8, quant=Quantization([1 / 256], [-128]))
        g.op(SOFTMAX, [logits], [probabilities], version=2, beta=1.0)
    else:
        probabilities = g.tensor(PROBABILITIES, shape)
        g.op(SOFTMAX, [logits], [probabilities], beta=1.0)
    g.outputs = [probabilities]


def _floats(b, values: Sequence[float]) -> int:
    """A FlatBuffers vector of float32 ``values`` in the builder ``b``."""
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependFloat32(float(v))
    return b.EndVector()


def _offsets(b, items: Sequence[int]) -> int:
    """A FlatBuffers vector of the tables (or strings) ``items`` already in the builder ``b``."""
    b.StartVector(4, len(items), 4)
    for item in reversed(items):
        b.PrependUOffsetTRelative(item)
    return b.EndVector()


_PREPEND = {"offset": "PrependUOffsetTRelativeSlot", "int8": "PrependInt8Slot", "uint8": "PrependUint8Slot",
            "int32": "PrependInt32Slot", "uint32": "PrependUint32Slot", "float32": "PrependFloat32Slot"}


def _table(b, fields: Sequence[Tuple[str, int, Any]], size: Optional[int] = None) -> int:
    """A FlatBuffers table in the builder ``b`` of ``fields``, (kind, slot, value) with kind one of
    :data:`_PREPEND`'s, written in the order given (a value already in the builder where it is an offset); its
    vtable ``size`` slots (default: up to the last slot given). A field whose value is None is left out."""
    given = [f for f in fields if f[2] is not None]
    b.StartObject(size if size is not None else max((slot for _, slot, _ in given), default=-1) + 1)
    for kind, slot, value in given:
        getattr(b, _PREPEND[kind])(slot, value, 0)
    return b.EndObject()


def file_labels(metadata: Dict[str, Any]) -> List[str]:
    """The class names of a file's outputs as ``predict`` names them (:func:`predict.class_names`: the names it
    records, an ImageNet synset id with its English name; the built-in ImageNet list for 1000 or 1001 outputs of
    an ImageNet model or one that records no data set; else
    the output's number), for the labels file of its :func:`support_metadata`; the seed's unused 1001st output
    is "(no class)". [] for a file that records no class count."""
    from .predict import class_names, shown_name

    count, recorded = metadata.get("class_num"), metadata.get("classes")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return []
    recorded = recorded if isinstance(recorded, list) and all(isinstance(n, str) for n in recorded) else None
    try:
        dataset = metadata.get("dataset") if isinstance(metadata.get("dataset"), str) else None
        names = class_names(count, recorded, None, False, dataset)
    except ValueError:  # names that do not fit the outputs: none written
        return []
    # A folder's name that is not UTF-8 (its bytes as surrogates) as predict prints it, caf\xe9: the labels file and
    # the C++ header are UTF-8 text, which could not hold it (export failed on zipfile's encoding).
    # Outputs no class uses (a class_num above the folders' count) as eval's confusion CSV names them
    # (evaluate.class_labels): "(no class)" where there is one, else each with its index, not one name repeated.
    # A line each: a line break in a name is a space; its other spaces stay (collapsed, " a" and "a", "x  y" and
    # "x y" were one label twice, two classes an app could not tell apart).
    several = sum(n is None for n in names) > 1
    return [(f"(no class {i})" if several else "(no class)") if n is None else shown_name(" ".join(n.splitlines()))
            for i, n in enumerate(names)]


def support_metadata(g: _Graph, metadata: Dict[str, Any], labels: Sequence[str]) -> Optional[bytes]:
    """The ``TFLITE_METADATA`` of the file of ``g`` (TensorFlow Lite Support's ``metadata_schema.fbs``, identifier
    ``M001``), which Android's Task Library (``ImageClassifier``) and ML Kit read to feed and name an image
    classifier: the input an RGB image of the file's size, normalised by ``metadata``'s mean and std on the
    0-255 scale (``NormalizationOptions``) where it takes floats, taken as it is where it takes uint8 pixels; the
    output one score per class (the logits, or the probabilities of a file with a softmax, every one returned:
    ``ScoreThresholdingOptions`` at the lowest float), named by the labels file ``labels.txt``
    (``TENSOR_AXIS_LABELS``) where ``labels`` has one name per output. None where those runtimes could not feed
    the file: no recorded normalisation, a batch other than 1, pixels in another order than RGB (the Task
    Library gives RGB), or an int8 input (it feeds uint8 pixels or floats)."""
    mean, std = metadata.get("mean"), metadata.get("std")
    pixels = g.tensors[g.inputs[0]][2] == UINT8
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == 3):
        return None
    if g.tensors[g.inputs[0]][1][0] != 1:  # ImageClassifier takes one image a call (1 x height x width x 3)
        return None
    if pixels and metadata.get("pixel_format", "RGB") != "RGB":
        return None
    if g.tensors[g.inputs[0]][2] == INT8:  # their image input is uint8 pixels or floats, not int8 levels
        return None
    fb = flatbuffers_module()
    b = fb.Builder(1024)

    def floats(values: Sequence[float]) -> int:
        return _floats(b, values)

    def table(fields: Sequence[Tuple[str, int, Any]]) -> int:
        return _table(b, fields)

    def vector(items: Sequence[int]) -> int:
        return _offsets(b, items)

    _, height, width, _ = g.tensors[g.inputs[0]][1]
    # The input: ImageProperties (ContentProperties' member 2: color_space RGB 1, default_size), and for floats
    # NormalizationOptions (ProcessUnitOptions' member 1) and Stats (the normalised values' range).
    size = table([("uint32", 0, width), ("uint32", 1, height)])
    image = table([("int8", 0, 1), ("offset", 1, size)])
    content = table([("int8", 0, 2), ("offset", 1, image)])
    units = stats = None
    if not pixels:
        norm = table([("offset", 0, floats([m * 255 for m in mean])), ("offset", 1, floats([s * 255 for s in std]))])
        units = vector([table([("int8", 0, 1), ("offset", 1, norm)])])
        stats = table([("offset", 0, floats([(1 - m) / s for m, s in zip(mean, std)])),
                       ("offset", 1, floats([-m / s for m, s in zip(mean, std)]))])
    fields = [("offset", 0, b.CreateString("image")), ("offset", 3, content),
              ("offset", 1, b.CreateString(f"{'uint8 RGB pixels' if pixels else 'RGB, normalised'} "
                                           f"({height}x{width})"))]
    fields += [("offset", 4, units), ("offset", 5, stats)] if units is not None else []
    inp = table(fields)
    # The output: FeatureProperties (member 1, an empty table), the labels file where every output has a name.
    feature = table([("int8", 0, 1), ("offset", 1, table([]))])
    # Logits are of either sign: a threshold of the lowest float (ScoreThresholdingOptions, member 3) keeps the
    # Task Library from dropping the negative ones, which its default threshold did (probabilities: every one).
    lowest = table([("float32", 0, -3.4028234663852886e38)])
    everything = vector([table([("int8", 0, 3), ("offset", 1, lowest)])])
    probabilities = metadata.get("output") == PROBABILITIES
    scores = ("one probability a class (the softmax of the logits)" if probabilities else
              "one score a class: the logits (softmax gives probabilities)")
    out_fields = [("offset", 0, b.CreateString(PROBABILITIES if probabilities else "logits")),
                  ("offset", 3, feature), ("offset", 4, everything), ("offset", 1, b.CreateString(scores))]
    classes = g.tensors[g.outputs[0]][1][-1]
    if len(labels) == classes:
        label_file = table([("offset", 0, b.CreateString(LABELS_FILE)), ("int8", 2, 2),
                            ("offset", 1, b.CreateString("the class of each output, in order"))])
        out_fields.append(("offset", 6, vector([label_file])))
    out = table(out_fields)
    subgraph = table([("offset", 2, vector([inp])), ("offset", 3, vector([out]))])
    model = table([("offset", 0, b.CreateString(f"MobileNetV1 {metadata.get('width_mult', '')}".strip())),
                   ("offset", 1, b.CreateString("image classifier of mobilenet-v1 (export, quantize)")),
                   ("offset", 3, vector([subgraph])), ("offset", 7, b.CreateString(SUPPORT_PARSER_VERSION))])
    b.Finish(model, file_identifier=b"M001")
    return bytes(b.Output())


def with_labels(data: bytes, labels: Sequence[str]) -> bytes:
    """``data`` (a ``.tflite``) with ``labels`` as :data:`LABELS_FILE` in a zip archive after it, where
    TensorFlow Lite Support's metadata finds the files it names (LiteRT reads the model before it)."""
    import io
    import zipfile

    buf = io.BytesIO(data)
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a") as z:  # dated 1980-01-01: the same model, the same bytes
        z.writestr(zipfile.ZipInfo(LABELS_FILE, (1980, 1, 1, 0, 0, 0)), "\n".join(labels) + "\n")
    return buf.getvalue()


def write_flatbuffer(g: _Graph, metadata: Dict[str, Any], description: str) -> bytes:
    """The ``.tflite`` file of ``g``, with ``metadata`` as :data:`METADATA_NAME`'s JSON and, where those
    runtimes can feed it, the ``TFLITE_METADATA`` of Android's Task Library and ML Kit (:func:`support_metadata`)
    with its labels file (:func:`with_labels`)."""
    labels = file_labels(metadata)
    support = support_metadata(g, metadata, labels)
    fb = flatbuffers_module()
    b = fb.Builder(1024)
    b.ForceDefaults(True)  # every field given is written, a default value too (FLOAT32, padding SAME: 0)

    def ints(values: Sequence[int]) -> int:
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependInt32(int(v))
        return b.EndVector()

    def offsets(values: Sequence[int]) -> int:
        return _offsets(b, values)

    def data_vector(data: bytes) -> int:  # force_align 16: the runtime may map the file and read it in place
        b.StartVector(1, len(data), 16)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        return b.EndVector()

    buffers = g.buffers + [json.dumps(metadata).encode()] + ([support] if support else [])
    made_buffers = []
    for data in buffers:
        made_buffers.append(_table(b, [("offset", 0, data_vector(data) if data else None)], size=1))
    def floats(values: Sequence[float]) -> int:
        return _floats(b, values)

    def longs(values: Sequence[int]) -> int:
        b.StartVector(8, len(values), 8)
        for v in reversed(values):
            b.PrependInt64(int(v))
        return b.EndVector()

    tensors = []
    for name, shape, kind, buffer, quant in g.tensors:
        q = None
        if quant is not None:  # QuantizationParameters: scale (2), zero_point (3), quantized_dimension (6)
            scale_off, zero_off = floats(quant.scales), longs(quant.zero_points)
            q = _table(b, [("offset", 2, scale_off), ("offset", 3, zero_off), ("int32", 6, quant.axis)])
        name_off, shape_off = b.CreateString(name), ints(shape)
        tensors.append(_table(b, [("offset", 0, shape_off), ("int8", 1, kind), ("uint32", 2, buffer),
                                  ("offset", 3, name_off), ("offset", 4, q)], size=5))
    operators = []
    for builtin, inputs, outputs, options in g.ops:
        opts = None
        if OPTIONS[builtin]:
            fields = _OPTION_SLOTS[builtin]
            opts = _table(b, [("int8" if name in _BYTE_FIELDS else "float32" if name in _FLOAT_FIELDS else "int32",
                               slot, options.get(name)) for slot, name in enumerate(fields)], size=len(fields))
        ins, outs = ints(inputs), ints(outputs)
        operators.append(_table(b, [("uint32", 0, g.codes.index(builtin)), ("offset", 1, ins), ("offset", 2, outs),
                                    ("uint8", 3, OPTIONS[builtin] if opts is not None else None),
                                    ("offset", 4, opts)], size=5))
    t_vec, o_vec = offsets(tensors), offsets(operators)
    in_vec, out_vec, sg_name = ints(g.inputs), ints(g.outputs), b.CreateString("main")
    subgraph = _table(b, [("offset", 0, t_vec), ("offset", 1, in_vec), ("offset", 2, out_vec), ("offset", 3, o_vec),
                          ("offset", 4, sg_name)])
    # deprecated_builtin_code (below 127), then builtin_code
    codes = [_table(b, [("int8", 0, builtin), ("int32", 2, g.versions.get(builtin, 1)), ("int32", 3, builtin)])
             for builtin in g.codes]
    meta_entries = []
    for index, name in enumerate([METADATA_NAME] + ([SUPPORT_METADATA_NAME] if support else [])):
        meta_name = b.CreateString(name)
        meta_entries.append(_table(b, [("offset", 0, meta_name), ("uint32", 1, len(g.buffers) + index)]))
    # The signature Android's runSignature and LiteRT's get_signature_runner name: serving_default, as
    # TensorFlow's converter writes it (SignatureDef: inputs 0, outputs 1, signature_key 2, subgraph_index 4;
    # TensorMap: name 0, tensor_index 1).
    maps = []
    for indices in (g.inputs, g.outputs):
        entries = []
        for index in indices:
            name = b.CreateString(g.tensors[index][0])
            entries.append(_table(b, [("offset", 0, name), ("uint32", 1, index)]))
        maps.append(offsets(entries))
    key = b.CreateString(SIGNATURE_KEY)
    signature = _table(b, [("offset", 0, maps[0]), ("offset", 1, maps[1]), ("offset", 2, key), ("uint32", 4, 0)])
    codes_vec, sg_vec, buf_vec = offsets(codes), offsets([subgraph]), offsets(made_buffers)
    meta_vec, desc, sig_vec = offsets(meta_entries), b.CreateString(description), offsets([signature])
    model = _table(b, [("uint32", 0, SCHEMA_VERSION), ("offset", 1, codes_vec), ("offset", 2, sg_vec),
                       ("offset", 3, desc), ("offset", 4, buf_vec), ("offset", 6, meta_vec), ("offset", 7, sig_vec)])
    b.Finish(model, file_identifier=IDENTIFIER)
    data = bytes(b.Output())
    return with_labels(data, labels) if support and labels else data


def to_tflite(model: nn.Module, height: int, width: int, batch: int, meta: Dict[str, Any],
              pixel_format: Optional[str] = None, float16: bool = False) -> bytes:
    """The ``.tflite`` file of ``model`` (folded, evaluation mode) with ``meta`` (entries that are not None);
    ``float16``: its weights stored as float16 (:func:`build_graph`); ``meta``'s ``output`` "probabilities": a
    softmax after the logits (:func:`softmax_output`)."""
    g = build_graph(model, height, width, batch, meta["mean"], meta["std"], pixel_format, float16)
    if meta.get("output") == PROBABILITIES:
        softmax_output(g)
    if pixel_format:
        meta = dict(meta, input=image_input_note(pixel_format), pixel_format=pixel_format)
    written = {k: v for k, v in meta.items() if v is not None}
    return write_flatbuffer(g, written, "MobileNetV1 of mobilenet-v1 export")


# ------------------------------------------------------------------------------------------------ reading

def metadata_entries(path: str) -> Dict[str, bytes]:
    """The ``Metadata`` entries of the ``.tflite`` file ``path``, name to buffer ({} where it holds none or its
    tables do not read)."""
    fb = flatbuffers_module()
    from flatbuffers import table

    with open(path, "rb") as f:
        try:  # the file's pages, not a copy: benchmark --memory counted the file twice more in a .tflite's peak
            buf: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file
            return {}
        except OSError:  # one that cannot be mapped (a pipe): read
            return _metadata_entries(f.read(), fb, table)
    try:
        return _metadata_entries(buf, fb, table)
    finally:
        with contextlib.suppress(BufferError):  # a view of it still held: closed when that goes
            buf.close()


def _metadata_entries(buf: Any, fb: Any, table: Any) -> Dict[str, bytes]:
    """:func:`metadata_entries` of the file's bytes ``buf``."""
    out: Dict[str, bytes] = {}
    try:
        model = table.Table(buf, fb.encode.Get(fb.packer.uoffset, buf, 0))

        def vector(t, slot: int) -> List[int]:
            o = t.Offset(4 + 2 * slot)
            if not o:
                return []
            start = t.Vector(o)
            return [start + 4 * i for i in range(t.VectorLen(o))]

        def field(t, slot: int) -> int:
            return t.Offset(4 + 2 * slot)

        buffers = vector(model, 4)
        for at in vector(model, 6):
            entry = table.Table(buf, model.Indirect(at))
            name = entry.String(field(entry, 0) + entry.Pos) if field(entry, 0) else b""
            if not field(entry, 1):
                continue
            index = entry.Get(fb.number_types.Uint32Flags, field(entry, 1) + entry.Pos)
            if index >= len(buffers):
                continue
            buffer = table.Table(buf, model.Indirect(buffers[index]))
            o = field(buffer, 0)
            start, length = (buffer.Vector(o), buffer.VectorLen(o)) if o else (0, 0)
            out[name.decode("utf-8", "replace")] = bytes(buf[start:start + length])
    except (IndexError, ValueError, struct.error):
        return {}
    return out


def read_metadata(path: str) -> str:
    """The JSON text of :data:`METADATA_NAME` in the ``.tflite`` file ``path`` ("" where it holds none)."""
    try:
        return metadata_entries(path).get(METADATA_NAME, b"").decode("utf-8")
    except UnicodeDecodeError:
        return ""


def activation_peak(path: str) -> Optional[Tuple[int, str]]:
    """The most activation bytes one operator of the ``.tflite`` ``path`` reads and writes at once (its inputs and
    outputs that follow from the file's input: not its weights and biases, nor what a ``DEQUANTIZE`` makes of
    them), and which (``operator 3, CONV_2D``: its place and name); the floor of TensorFlow Lite for
    Microcontrollers' tensor arena for a chain such as ours (:func:`info.peak_activations` for a network's). None
    where LiteRT's schema reader or the file's tables fail."""
    try:
        from ai_edge_litert import schema_py_generated as schema

        with open(path, "rb") as f:
            model = schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
        graph = model.subgraphs[0]
        sizes = {FLOAT32: 4, FLOAT16: 2, INT32: 4, UINT8: 1, INT8: 1}
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

        def size(index: int) -> int:
            tensor = graph.tensors[index]
            return int(np.prod([int(d) for d in tensor.shape])) * sizes.get(tensor.type, 4)

        live = {int(i) for i in graph.inputs}  # the tensors that follow from the input, in operator order
        peak, where = 0, ""
        for k, op in enumerate(graph.operators):
            if not any(int(i) in live for i in op.inputs):
                continue  # a constant's (DEQUANTIZE of float16 or int8 weights)
            live.update(int(i) for i in op.outputs)
            held = sum(size(int(i)) for i in list(op.inputs) + list(op.outputs) if int(i) in live)
            if held > peak:
                code = model.operatorCodes[op.opcodeIndex]
                peak, where = held, f"operator {k}, {names.get(max(code.builtinCode, code.deprecatedBuiltinCode), '?')}"
        return peak, where
    except Exception:  # a foreign or damaged file's tables: no figure rather than no info
        return None


def c_string(text: str) -> str:
    """``text`` as a C and C++ string literal of its UTF-8 bytes, whatever the compiler's character sets:
    printable ASCII as it is (``"`` and ``\\`` escaped, ``?`` too: no trigraph), every other byte a three-digit
    octal escape (a hex escape would take the digits after it; JSON's ``\\ud83d\\udc1f`` for a character past
    U+FFFF is no character to a C++ compiler). A name that is not UTF-8 (a folder's bytes, surrogate-escaped) is
    its bytes (c_array's come escaped already, as predict prints them: :func:`file_labels`)."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate of no file name
        data = text.encode("utf-8", "backslashreplace")
    return '"' + "".join("\\" + chr(b) if chr(b) in '"\\?' else chr(b) if 32 <= b < 127 else f"\\{b:03o}"
                         for b in data) + '"'


def c_array(path: str, name: str = "mobilenet_v1") -> str:
    """The ``.tflite`` file ``path`` as a C++ header for TensorFlow Lite for Microcontrollers, what ``xxd -i``
    gives with what it leaves to the user: the bytes as ``alignas(16) const unsigned char NAME_model[]`` (the
    interpreter reads the model in place, 16-byte aligned) and ``NAME_model_len``; the input's size and, for
    int8 input and output (``--int8_io True``), their scales and zero points; the normalisation the app applies
    first; the activation peak (:func:`activation_peak`, the tensor arena's floor); the class names. ``name``:
    the identifiers' prefix."""
    model = load_tflite(path)
    n, h, w, c = (model.input_shape if model.image_input else
                  [model.input_shape[0], model.input_shape[2], model.input_shape[3], model.input_shape[1]])
    with open(path, "rb") as f:
        data = f.read()
    upper = name.upper()
    meta = model.metadata
    shown = os.path.basename(path)
    if not shown.isprintable():  # a line break ended the comment, the rest of the name read as code
        shown = c_string(shown)
    lines = [f"// {shown} of mobilenet-v1 as a C++ array, for TensorFlow Lite for Microcontrollers:",
             f"// tflite::GetModel({name}_model). Include it in one source file.",
             f"#ifndef {upper}_MODEL_H_", f"#define {upper}_MODEL_H_", "",
             f"#define {upper}_INPUT_BATCH {n}", f"#define {upper}_INPUT_HEIGHT {h}",
             f"#define {upper}_INPUT_WIDTH {w}", f"#define {upper}_INPUT_CHANNELS {c}"]
    if model.class_num:
        lines.append(f"#define {upper}_CLASSES {model.class_num}")
    for side, q in zip(("INPUT", "OUTPUT"), model.levels()):
        if q:  # the file's float32 scale, printed so that it reads back to the same float
            lines += [f"#define {upper}_{side}_SCALE {np.float32(q['scale']).item():.9g}f",
                      f"#define {upper}_{side}_ZERO_POINT ({q['zero_point']})"]
    peak = activation_peak(path)
    if peak:
        lines.append(f"#define {upper}_ACTIVATION_BYTES {peak[0]}  // the tensor arena's floor ({peak[1]})")
    if model.image_input:
        lines += ["", f"// The file takes uint8 {model.pixel_format} pixels and normalises them itself."]
    elif isinstance(meta.get("mean"), list) and isinstance(meta.get("std"), list):
        lines += ["", "// The input's normalisation, on RGB values in [0, 1]: x = (value - mean) / std"
                  + (",\n// then its int8 level: x / scale rounded half to even, plus the zero point, within "
                     "[-128, 127]" if model.int8_io else "") + ".",
                  f"static const float {name}_mean[3] = {{{', '.join(f'{float(v):.9g}f' for v in meta['mean'])}}};",
                  f"static const float {name}_std[3] = {{{', '.join(f'{float(v):.9g}f' for v in meta['std'])}}};"]
    labels = file_labels(meta)
    if labels:
        quoted = ", ".join(c_string(label) for label in labels)
        lines += ["", f"static const char* const {name}_labels[] = {{{quoted}}};"]
    lines += ["", f"alignas(16) const unsigned char {name}_model[] = {{"]
    for start in range(0, len(data), 12):
        lines.append("  " + ", ".join(f"0x{b:02x}" for b in data[start:start + 12]) + ",")
    lines += ["};", f"const unsigned int {name}_model_len = {len(data)};", "", f"#endif  // {upper}_MODEL_H_", ""]
    return "\n".join(lines)


def task_library_labels(path: str) -> Optional[int]:
    """How many class names the ``.tflite`` ``path`` gives Android's Task Library (its ``labels.txt``), 0 for
    TensorFlow Lite Support metadata without them; None where it carries no such metadata (:func:`support_metadata`)."""
    import zipfile

    data = metadata_entries(path).get(SUPPORT_METADATA_NAME, b"")
    if data[4:8] != b"M001":
        return None
    try:
        with zipfile.ZipFile(path) as z:
            return len(z.read(LABELS_FILE).decode("utf-8").splitlines())
    except (zipfile.BadZipFile, KeyError, OSError, UnicodeDecodeError):
        return 0


class TfliteModel(DeployedModel):
    """A ``.tflite`` file of ``export --file_format TFLITE``, run in LiteRT on the CPU
    (:class:`onnx_io.DeployedModel`): its input NHWC (a float batch is handed over transposed, as int8 levels
    where the file takes them: :meth:`fed`), its batch fixed, its metadata the JSON of :data:`METADATA_NAME`.
    ``name``: the file its errors name."""

    kind = "TensorFlow Lite file"

    def __init__(self, path: str, threads: int = 0, name: Optional[str] = None, reference: bool = False):
        super().__init__()
        shown = self._named_file(path, name, is_tflite_file, "not a .tflite file (its bytes 4 to 7 are not TFL3)")
        interpreter_class = litert_interpreter()
        # reference: LiteRT's reference kernels, whose arithmetic TensorFlow Lite for Microcontrollers' kernels
        # follow, in place of XNNPACK's (which round some int8 sums otherwise).
        self.reference = reference
        kernels = {}
        if reference:
            from ai_edge_litert.interpreter import OpResolverType

            kernels = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF}
        said: List[str] = []
        try:
            with _native_log(said):
                self.interpreter = interpreter_class(model_path=path, num_threads=threads or None, **kernels)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            reason = "; ".join(said) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise CheckpointError(f"TensorFlow Lite file {shown}: LiteRT cannot load it ({reason})") from None
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or len(outputs) != 1:
            raise CheckpointError(f"TensorFlow Lite file {shown}: expected one (N, H, W, C) input and one "
                                  f"output: not a classifier of mobilenet-v1 export")
        spec = inputs[0]
        if spec["dtype"] not in (np.float32, np.uint8, np.int8):
            raise CheckpointError(f"TensorFlow Lite file {shown}: its input is neither float32, uint8 nor int8 "
                                  f"({np.dtype(spec['dtype']).name}): not a classifier of mobilenet-v1 export")
        self.metadata = self._json_metadata(read_metadata(path), shown, f"metadata {METADATA_NAME}")
        n, h, w, c = (int(d) for d in spec["shape"])
        self.image_input = spec["dtype"] == np.uint8
        self.input_shape = [n, h, w, c] if self.image_input else [n, c, h, w]
        self.path = path
        self._input, self._output = spec["index"], outputs[0]["index"]
        # An int8 input and output (quantize --tflite --int8_io True): the normalised values quantized here, at
        # the input's scale and zero point, as an app does, and the output's levels read back as reals.
        self.int8_io = spec["dtype"] == np.int8
        self._in_q, self._out_q = spec["quantization"], outputs[0]["quantization"]
        self._out_int8 = outputs[0]["dtype"] == np.int8
        shape = outputs[0]["shape"]
        self.output_dims = len(shape)
        self._class_num = int(shape[-1]) if len(shape) == 2 else None
        self._check_image_input()

    def input_text(self, batch: Optional[int] = None, hw: Optional[Tuple[int, int]] = None) -> str:
        """As :meth:`DeployedModel.input_text` says it, a float input in the layout the file takes: NHWC."""
        if self.image_input:
            return super().input_text(batch, hw)
        n = batch if batch is not None else self.fixed_batch or "N"
        h, w = hw if hw is not None else self.image_hw or ("?", "?")
        return f"{'int8' if self.int8_io else 'float'} ({n}, {h}, {w}, 3) NHWC"

    def levels(self) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
        """An int8 input's and an int8 output's ``scale`` (as the file stores it) and ``zero_point`` (None for
        floats)."""
        def given(int8: bool, q: Tuple[float, int]) -> Optional[Dict[str, Any]]:
            return {"scale": float(q[0]), "zero_point": int(q[1])} if int8 else None

        return given(self.int8_io, self._in_q), given(self._out_int8, self._out_q)

    def fed(self, batch: torch.Tensor) -> np.ndarray:
        """``batch`` (pixels, or the normalised float NCHW batch) as the file takes it: NHWC, and for an int8 input
        the values' levels as LiteRT's ``QUANTIZE`` (XNNPACK's) makes them from floats: times the float32 inverse
        of the scale, in float32, rounded half to even, plus the zero point. (TensorFlow Lite's reference kernel
        divides and rounds halves away from zero: another level for about 2 values in a million.)"""
        x = batch.numpy()
        if not self.image_input:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        if self.int8_io:
            scale, zero = self._in_q
            v = x.astype(np.float32) * (np.float32(1) / np.float32(scale))
            x = np.clip(np.rint(v) + zero, -128, 127).astype(np.int8)
        return x

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.invoke(self.fed(batch))

    def invoke(self, x: np.ndarray) -> torch.Tensor:
        """The file run on ``x``, an input as it takes it (:meth:`fed`); an int8 output read back as reals."""
        self.interpreter.set_tensor(self._input, x)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output).copy()
        if self._out_int8:
            scale, zero = self._out_q
            out = ((out.astype(np.float32) - zero) * np.float32(scale)).astype(np.float32)
        return torch.from_numpy(out)



def load_tflite(path: str, threads: int = 0, name: Optional[str] = None, reference: bool = False):
    """The ``.tflite`` file ``path`` as a :class:`onnx_io.DeployedModel` run in LiteRT (``reference``: on its
    reference kernels, :class:`TfliteModel`)."""
    return TfliteModel(path, threads, name, reference)
