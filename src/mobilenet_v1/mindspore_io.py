"""Interchange with MindSpore: the seed's ``.ckpt`` (protobuf) and ``.safetensors`` files, read and written.

Every place that accepts a checkpoint goes through :func:`read_any` (``checkpoint.load_file`` calls it),
which tells the format from the file's first bytes, not its name: our own training checkpoints end in
``.ckpt`` like MindSpore's but are zip archives.

- PyTorch (ours): a zip archive, ``PK\\x03\\x04`` (or a legacy pickle, ``\\x80``).
- safetensors: an 8-byte little-endian header length, then the JSON header ``{...``.
- MindSpore ``.ckpt``: serialized ``Checkpoint`` messages (``mindspore_checkpoint.proto``), which start
  with the tag of field 1 (``0x0a``), a length, and the tag of ``Value.tag`` (``0x0a`` again).

Names: the seed's BatchNorm fields ``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` are our
``weight``, ``bias``, ``running_mean``, ``running_var``; conv and fc names are the same on both sides.
``num_batches_tracked`` has no MindSpore counterpart: dropped on export, and on import set to the file's
``global_step`` (0 when it has none). A seed training checkpoint also holds ``moments.<name>`` (the
Momentum optimiser's buffers, which are PyTorch SGD's ``momentum_buffer``: both update
``v = momentum * v + grad; p -= lr * v``), ``global_step``, ``learning_rate`` and ``momentum``.

timm's MobileNetV1 (``mobilenetv1_100``, ``mobilenetv1_125``: a bare state dict in a ``.pth``/``.bin``
or a ``.safetensors``, as its model hub holds them) is read too (:func:`from_timm_state`): the same 27
layers with ReLU6 and PyTorch's symmetric padding, under other names.
"""
import binascii
import json
import math
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import checkpoint as ckpt_io
from .checkpoint import CheckpointError
from .config import crop_pct_problem, normalisation_text

MOMENTS_PREFIX = "moments."
# Optimiser and loop state a MindSpore training checkpoint may hold beside the network's parameters.
# global_step is used (continuing a run); the others have no use here and are listed as ignored.
TRAINING_STATE = ("global_step", "learning_rate", "momentum", "scale_sense", "loss_scale", "epoch_num",
                  "step_num", "current_iterator_step", "last_overflow_iterator_step")

_BN_TO_SEED = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_FROM_SEED = {v: k for k, v in _BN_TO_SEED.items()}
_OUR_BN = re.compile(r"^(network\.\d+\.1)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
_SEED_BN = re.compile(r"^(network\.\d+\.1)\.(gamma|beta|moving_mean|moving_variance)$")

# MindSpore's tensor_type names (str(mindspore.dtype)).
MS_DTYPES: Dict[str, torch.dtype] = {
    "Float32": torch.float32, "Float16": torch.float16, "BFloat16": torch.bfloat16, "Float64": torch.float64,
    "Int8": torch.int8, "Int16": torch.int16, "Int32": torch.int32, "Int64": torch.int64,
    "UInt8": torch.uint8, "UInt16": torch.uint16, "UInt32": torch.uint32, "UInt64": torch.uint64,
    "Bool": torch.bool,
}
_TORCH_TO_MS = {v: k for k, v in MS_DTYPES.items()}

FORMAT_NAMES = {"torch": "PyTorch checkpoint", "mindspore": "MindSpore checkpoint", "safetensors": "safetensors",
                "tensorflow": "TensorFlow checkpoint"}
# Output formats of `convert`, by file extension.
OUTPUT_FORMATS = {".ckpt": "ckpt", ".pt": "pt", ".pth": "pt", ".safetensors": "safetensors"}
# safetensors metadata (JSON strings): how to rebuild the model exactly, and what the training run
# recorded that deployment needs (the configuration's dataset and image_size pick the input
# normalisation and size; classes name the outputs). A MindSpore .ckpt has no place for them.
_MODEL_ARGS_KEY = "mobilenet_v1.model_args"
_CONFIG_KEY = "mobilenet_v1.config"
_CLASSES_KEY = "mobilenet_v1.classes"
_HELD_OUT_KEY = "mobilenet_v1.held_out"  # the images a run held out with val_split (data.held_out_record)
_AVERAGED_KEY = "mobilenet_v1.averaged"  # mobilenet-v1 average's record: the files, which weights of each
_TAKEN_AVERAGE_KEY = "mobilenet_v1.taken_average"  # convert's record: the weights are a run's moving average
# checkpoint.TRAINED_BY as a .pt records it: "mindspore" for a seed run's weights that record no settings, else "".
# Written always: the file is in MindSpore's names whoever trained the weights, so the names cannot say it.
_TRAINED_BY_KEY = "mobilenet_v1.trained_by"
# What a model file records beside its weights, which convert and recalibrate-bn carry over: predict and
# export read the first three (image size, normalisation, class names, held-out images), info all of them.
# taken_average: the weights are the moving average (--ema_decay) of the checkpoint convert read, whose
# "weights: ema" export writes and info shows, as for that checkpoint.
RECORDED_KEYS = ("config", "classes", "held_out", "averaged", "taken_average")


# ----------------------------------------------------------------------------------------------- names

def to_seed_name(name: str) -> Optional[str]:
    """Our parameter name as the seed's network calls it; None for ``num_batches_tracked`` (no counterpart)."""
    m = _OUR_BN.match(name)
    if not m:
        return name
    if m.group(2) == "num_batches_tracked":
        return None
    return f"{m.group(1)}.{_BN_TO_SEED[m.group(2)]}"


def from_seed_name(name: str) -> str:
    """The seed's parameter name as ours; names already ours (and conv/fc names) are returned unchanged."""
    m = _SEED_BN.match(name)
    return f"{m.group(1)}.{_BN_FROM_SEED[m.group(2)]}" if m else name


# -------------------------------------------------------------------------------------- the schema

def _file_descriptor():
    """``mindspore_checkpoint.proto`` as a FileDescriptorProto (kept in step with the file by a test)."""
    from google.protobuf import descriptor_pb2

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="mobilenet_v1/mindspore_checkpoint.proto", syntax="proto2")
    tensor = fdp.message_type.add(name="TensorProto")
    # proto2 repeated scalars are unpacked unless declared packed; MindSpore's are not, and neither are ours.
    tensor.field.add(name="dims", number=1, label=F.LABEL_REPEATED, type=F.TYPE_INT64)
    tensor.field.add(name="tensor_type", number=2, label=F.LABEL_REQUIRED, type=F.TYPE_STRING)
    tensor.field.add(name="tensor_content", number=3, label=F.LABEL_REQUIRED, type=F.TYPE_BYTES)
    maptensor = fdp.message_type.add(name="MapTensorProto")
    maptensor.field.add(name="tensor", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                        type_name=".TensorProto")
    ckpt = fdp.message_type.add(name="Checkpoint")
    value = ckpt.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    value.field.add(name="tag", number=1, label=F.LABEL_REQUIRED, type=F.TYPE_STRING)
    value.field.add(name="tensor", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                    type_name=".TensorProto", oneof_index=0)
    value.field.add(name="maptensor", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                    type_name=".MapTensorProto", oneof_index=0)
    ckpt.field.add(name="value", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                   type_name=".Checkpoint.Value")
    return fdp


_MESSAGES: Dict[str, Any] = {}


def message_class(name: str):
    """The message class ``Checkpoint``, ``TensorProto`` or ``MapTensorProto``, built once per process in a
    private descriptor pool (so it never clashes with MindSpore's own classes if both are imported)."""
    if not _MESSAGES:
        from google.protobuf import descriptor_pool, message_factory

        pool = descriptor_pool.DescriptorPool()
        pool.AddSerializedFile(_file_descriptor().SerializeToString())
        for full in ("Checkpoint", "TensorProto", "MapTensorProto"):
            desc = pool.FindMessageTypeByName(full)
            if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
                _MESSAGES[full] = message_factory.GetMessageClass(desc)
            else:
                _MESSAGES[full] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return _MESSAGES[name]


# --------------------------------------------------------------------------------- format detection

def detect_format(path: str) -> str:
    """``torch``, ``safetensors``, ``mindspore``, ``tensorflow``, ``empty`` or ``unknown``, from the file's first
    bytes (a TensorFlow checkpoint's index by its last, its data file by its name beside the index)."""
    from .tf_checkpoint import bundle_prefix

    if bundle_prefix(path) is not None and os.path.isfile(path):
        return "tensorflow"
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return "empty"
    # safetensors first: its 8-byte header length may begin with any byte, 0x80 (a pickle's) included.
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len < 100 * 2 ** 20:  # a header claiming more than the file is a truncated file
            return "safetensors"
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return "torch"  # zip (torch.save), legacy pickle (PROTO and its version)
    if head[0] == 0x0A:
        # Checkpoint.value (field 1, length-delimited): a varint length, then Value.tag (field 1 again).
        i = 1
        while i < len(head) and head[i] & 0x80:
            i += 1
        if i + 1 < len(head) and head[i + 1] == 0x0A:
            return "mindspore"
    return "unknown"


# ------------------------------------------------------------------------------------ MindSpore .ckpt

def _tensor_from_bytes(tag: str, dims: List[int], ttype: str, content: bytes, source: str) -> torch.Tensor:
    dtype = MS_DTYPES.get(ttype)
    if dtype is None:
        raise CheckpointError(f"checkpoint {source}: tensor {tag} has tensor_type {ttype!r}, not one of "
                              f"{sorted(MS_DTYPES)}")
    if any(d < 0 for d in dims):
        raise CheckpointError(f"checkpoint {source}: tensor {tag} has a negative dimension in {list(dims)}")
    item = torch.empty((), dtype=dtype).element_size()
    shape = tuple(dims)
    if shape == (0,) and len(content) == item:
        shape = ()  # MindSpore writes a scalar as dims [0] with one element
    expected = math.prod(shape) * item
    if len(content) != expected:
        raise CheckpointError(f"checkpoint {source}: tensor {tag} holds {len(content)} bytes, but shape "
                              f"{shape} of {ttype} needs {expected}; the file is damaged")
    if expected == 0:
        if math.prod(d for d in shape if d) * item >= 2 ** 63:  # torch.empty((0, 2**62, 2**62)): a traceback
            raise CheckpointError(f"checkpoint {source}: tensor {tag} has shape {shape}, past any tensor's size; "
                                  f"the file is damaged")
        return torch.empty(shape, dtype=dtype)
    # A copy into a bytearray: the tensor owns writable memory, not the protobuf's bytes.
    return torch.frombuffer(bytearray(content), dtype=dtype).reshape(shape)


def _strip_crc(data: bytes, source: str) -> bytes:
    """MindSpore's ``save_checkpoint(crc_check=True)`` appends ``b"crc_num"`` and a 10-byte big-endian
    CRC-32 of everything before it; check and remove it."""
    if len(data) >= 17 and data[-17:-10] == b"crc_num":
        want = int.from_bytes(data[-10:], "big")
        body = data[:-17]
        if binascii.crc32(body) != want:
            raise CheckpointError(f"checkpoint {source}: CRC check failed, the file is damaged")
        return body
    return data


def read_mindspore_ckpt(path: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """The tensors of a MindSpore ``.ckpt`` by name (in file order), and the names of entries that are not
    numeric tensors (strings saved with ``append_dict``)."""
    from google.protobuf.message import DecodeError

    with open(path, "rb") as f:
        data = _strip_crc(f.read(), path)
    msg = message_class("Checkpoint")()
    try:
        msg.ParseFromString(data)
    except DecodeError as e:
        raise CheckpointError(f"checkpoint {path}: not a complete MindSpore checkpoint ({e}); the file is "
                              f"truncated or damaged") from None
    # A parameter over 512 MB is written as several Values with the same tag and the full dims.
    parts: Dict[str, Tuple[List[int], str, List[bytes]]] = {}
    skipped: List[str] = []
    for number, value in enumerate(msg.value, 1):
        if not isinstance(value.tag, str):  # protobuf hands a name that is not UTF-8 back as bytes
            raise CheckpointError(f"checkpoint {path}: the name of entry {number} is not UTF-8 text "
                                  f"({value.tag[:40]!r}); the file is damaged")
        kind = value.WhichOneof("value")
        if kind != "tensor":
            raise CheckpointError(f"checkpoint {path}: entry {value.tag} is a {kind or 'value without data'}, "
                                  f"not a tensor: not a MobileNetV1 checkpoint")
        t = value.tensor
        if t.tensor_type == "str":
            skipped.append(value.tag)
            continue
        if value.tag in parts:
            dims, ttype, chunks = parts[value.tag]
            if list(t.dims) != dims or t.tensor_type != ttype:
                raise CheckpointError(f"checkpoint {path}: tensor {value.tag} appears twice with different "
                                      f"shapes or types")
            chunks.append(t.tensor_content)
        else:
            parts[value.tag] = (list(t.dims), t.tensor_type, [t.tensor_content])
    if not parts:
        raise CheckpointError(f"checkpoint {path}: a MindSpore checkpoint with no tensors")
    tensors = {tag: _tensor_from_bytes(tag, dims, ttype, b"".join(chunks), path)
               for tag, (dims, ttype, chunks) in parts.items()}
    return tensors, skipped


def _tensor_bytes(t: torch.Tensor) -> bytes:
    # Raw little-endian C-order bytes (every machine this runs on is little-endian).
    return t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def mindspore_bytes(tensors: Dict[str, torch.Tensor]) -> bytes:
    """A MindSpore ``.ckpt`` file's bytes: one serialized ``Checkpoint`` per tensor, back to back, as
    MindSpore writes them."""
    Checkpoint = message_class("Checkpoint")
    out = []
    for name, t in tensors.items():
        if t.dtype not in _TORCH_TO_MS:
            raise ValueError(f"tensor {name}: dtype {t.dtype} has no MindSpore tensor_type")
        msg = Checkpoint()
        value = msg.value.add()
        value.tag = name
        value.tensor.dims.extend(list(t.shape) if t.dim() else [0])
        value.tensor.tensor_type = _TORCH_TO_MS[t.dtype]
        value.tensor.tensor_content = _tensor_bytes(t)
        out.append(msg.SerializeToString())
    return b"".join(out)


def write_mindspore_ckpt(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    data = mindspore_bytes(tensors)
    with ckpt_io.atomic_write(path) as f:
        f.write(data)


# ------------------------------------------------------------------------------------------ safetensors

def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """The tensors and the metadata of a ``.safetensors`` file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as e:
        raise CheckpointError(f"checkpoint {path}: not a complete safetensors file ({e}); the file is "
                              f"truncated or damaged") from None
    if not tensors:
        raise CheckpointError(f"checkpoint {path}: a safetensors file with no tensors")
    return tensors, meta


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str]) -> None:
    from safetensors.torch import save

    # clone(): safetensors refuses tensors that share storage (views of one buffer).
    data = save({k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}, metadata=metadata)
    with ckpt_io.atomic_write(path) as f:
        f.write(data)


# ------------------------------------------------------------------------------------- one entry point

def _rank(name: str) -> int:
    """How many dimensions our parameter ``name`` (ours or the seed's) has: conv weights 4, fc.weight 2, else 1."""
    return 4 if re.match(r"^network\.\d+\.0\.weight$", name) else 2 if name == "fc.weight" else 1


def _squeeze_trailing_ones(name: str, t: torch.Tensor) -> torch.Tensor:
    """A tensor saved with extra trailing dimensions of 1 (Ascend GE's 4-D form: fc.weight (n, in, 1, 1)), as
    MindSpore's load_param_into_net takes it (serialization._special_process_par): reshaped to the parameter's."""
    rank = _rank(name)
    if t.dim() > rank and all(d == 1 for d in t.shape[rank:]):
        return t.reshape(t.shape[:rank])
    return t


def from_seed_state(raw: Dict[str, torch.Tensor], source: str, fmt: str,
                    ignored: Iterable[str] = ()) -> Dict[str, Any]:
    """A checkpoint dict of ours from the entries of a MindSpore file: ``model`` (our names), and when the
    file has them ``moments`` (our names) and ``global_step``; ``ignored`` lists the entries not used."""
    model: Dict[str, torch.Tensor] = {}
    moments: Dict[str, torch.Tensor] = {}
    ignored = list(ignored)
    global_step: Optional[int] = None
    renamed = False
    for name, t in raw.items():
        if name.startswith(MOMENTS_PREFIX):
            moments[from_seed_name(name[len(MOMENTS_PREFIX):])] = _squeeze_trailing_ones(name[len(MOMENTS_PREFIX):], t)
        elif name in TRAINING_STATE:
            if name == "global_step" and t.numel() >= 1:
                global_step = int(t.reshape(-1)[0])
            else:
                ignored.append(name)
        elif t.dim() == 0 and not name.endswith(".num_batches_tracked"):
            ignored.append(name)  # a number save_checkpoint's append_dict added (lr, best_acc): no parameter is one
        else:
            ours = from_seed_name(name)
            renamed = renamed or ours != name
            model[ours] = _squeeze_trailing_ones(ours, t)
    if not model:
        raise CheckpointError(f"checkpoint {source}: holds no network parameters, only "
                              f"{', '.join(list(raw)[:8])}")
    for name in list(model):
        m = _OUR_BN.match(name)
        if m and m.group(1) + ".num_batches_tracked" not in model:
            model[m.group(1) + ".num_batches_tracked"] = torch.tensor(global_step or 0, dtype=torch.long)
    out: Dict[str, Any] = {"format": fmt, "model": model, "naming": "mindspore" if renamed else "ours",
                           "ignored": ignored}
    if moments:
        out["moments"] = moments
    if global_step is not None:
        out["global_step"] = global_step
    return out


def to_seed_state(ckpt: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The entries of a MindSpore file (seed names) for a checkpoint dict of ours: the network, and
    ``moments.*`` and ``global_step`` when the dict has them."""
    out: Dict[str, torch.Tensor] = {}
    for name, t in ckpt_io.model_state(ckpt).items():
        seed = to_seed_name(name)
        if seed is not None:
            out[seed] = t
    for name, t in (ckpt.get("moments") or {}).items():
        out[MOMENTS_PREFIX + to_seed_name(name)] = t
    if ckpt.get("global_step") is not None:
        out["global_step"] = torch.tensor([int(ckpt["global_step"])], dtype=torch.int32)  # MindSpore's own
    return out


def _json_entry(meta: Dict[str, str], key: str, path: str) -> Any:
    try:
        return json.loads(meta[key])
    except ValueError:
        raise CheckpointError(f"checkpoint {path}: metadata {key} is not JSON") from None


def recorded_metadata(meta: Dict[str, str], path: str) -> Dict[str, Any]:
    """``model_args`` and the :data:`RECORDED_KEYS` of a checkpoint dict, from the metadata that
    :func:`write_checkpoint` writes into a ``.safetensors`` (absent from MindSpore's own files)."""
    out: Dict[str, Any] = {}
    if _MODEL_ARGS_KEY in meta:
        stored = _json_entry(meta, _MODEL_ARGS_KEY, path)
        if not isinstance(stored, dict):
            raise CheckpointError(f"checkpoint {path}: metadata {_MODEL_ARGS_KEY} is not a JSON object")
        model_args = {k: stored[k] for k in ("class_num", "width_mult", "padding") if k in stored}
        if model_args:
            out["model_args"] = model_args
    if _CONFIG_KEY in meta:
        config = _json_entry(meta, _CONFIG_KEY, path)
        if not isinstance(config, dict):
            raise CheckpointError(f"checkpoint {path}: metadata {_CONFIG_KEY} is not a JSON object")
        out["config"] = config
    if _CLASSES_KEY in meta:
        classes = _json_entry(meta, _CLASSES_KEY, path)
        if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
            raise CheckpointError(f"checkpoint {path}: metadata {_CLASSES_KEY} is not a JSON list of names")
        out["classes"] = classes
    if _HELD_OUT_KEY in meta:
        held = _json_entry(meta, _HELD_OUT_KEY, path)
        if not isinstance(held, dict):
            raise CheckpointError(f"checkpoint {path}: metadata {_HELD_OUT_KEY} is not a JSON object")
        out["held_out"] = held
    if _AVERAGED_KEY in meta:
        averaged = _json_entry(meta, _AVERAGED_KEY, path)
        if not isinstance(averaged, dict):
            raise CheckpointError(f"checkpoint {path}: metadata {_AVERAGED_KEY} is not a JSON object")
        out["averaged"] = averaged
    if _TAKEN_AVERAGE_KEY in meta:
        taken = _json_entry(meta, _TAKEN_AVERAGE_KEY, path)
        if not isinstance(taken, dict):
            raise CheckpointError(f"checkpoint {path}: metadata {_TAKEN_AVERAGE_KEY} is not a JSON object")
        out["taken_average"] = taken
    if _TRAINED_BY_KEY in meta:
        trained_by = _json_entry(meta, _TRAINED_BY_KEY, path)
        if not isinstance(trained_by, str):
            raise CheckpointError(f"checkpoint {path}: metadata {_TRAINED_BY_KEY} is not a JSON string")
        out[ckpt_io.TRAINED_BY] = trained_by
    return out


def read_any(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """A checkpoint dict with ``model`` (our names) from any supported file: ours, a MindSpore ``.ckpt``, a
    ``.safetensors``, timm's weights or train.py checkpoint (:func:`timm_checkpoint`) or TF-slim's TensorFlow
    checkpoint (its prefix or ``.index``: :func:`tf_checkpoint.read_tf_checkpoint`); MindSpore files add
    ``moments`` and ``global_step`` when they hold them."""
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path}: a folder, not a file")
    path = ckpt_io.tf_index(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: {ckpt_io.not_a_file(path)}")
    try:
        fmt = detect_format(path)
    except FileNotFoundError:  # gone since the look: a running train pruned it
        raise ckpt_io.removed_while_read(path) from None
    if fmt == "tensorflow":
        from .tf_checkpoint import bundle_prefix, read_tf_checkpoint

        ckpt = read_tf_checkpoint(bundle_prefix(path))
        if map_location not in (None, "cpu"):
            ckpt["model"] = {k: v.to(map_location) for k, v in ckpt["model"].items()}
        return ckpt
    if fmt == "torch":
        return timm_checkpoint(ckpt_io.load_torch_file(path, map_location), path)
    if fmt == "empty":
        raise CheckpointError(f"checkpoint {path}: the file is empty")
    if fmt == "unknown":
        from .onnx_io import is_onnx_file

        if is_onnx_file(path):
            raise CheckpointError(f"checkpoint {path}: an ONNX model (what export writes), not a checkpoint: its "
                                  f"weights are folded and cannot be trained or converted; eval, predict and "
                                  f"quantize take it")
        if ckpt_io.is_executorch_program(path):
            raise CheckpointError(f"{path}: an ExecuTorch program (export --file_format PTE), not a checkpoint: eval "
                                  f"and predict run it; this needs the checkpoint it was exported from")
        from .tflite_io import is_tflite_file

        if is_tflite_file(path):
            raise CheckpointError(f"{path}: a TensorFlow Lite model (export --file_format TFLITE), not a checkpoint: "
                                  f"eval, predict and quantize --tflite run it; this needs the checkpoint it was "
                                  f"exported from")
        with open(path, "rb") as f:
            head = f.read(8)
        from .tf_checkpoint import DATA_NAME

        data = DATA_NAME.match(path)
        if data:  # read through its index only, which names its tensors (bundle_prefix: a data file with one)
            raise CheckpointError(f"checkpoint {path}: a TensorFlow checkpoint's data file without its index "
                                  f"{os.path.basename(data.group(1))}.index beside it (the index and its data files "
                                  f"go together)")
        if path.endswith(".index"):
            raise CheckpointError(f"checkpoint {path}: not a TensorFlow checkpoint index (no table footer at its end: "
                                  f"cut short?)")
        if path.lower().endswith(".pte"):
            raise CheckpointError(f"checkpoint {path}: named .pte but not an ExecuTorch program (its bytes 4 to 7 "
                                  f"are not ET and two digits), nor a checkpoint; it starts with {head!r}")
        if path.lower().endswith(".tflite"):
            raise CheckpointError(f"checkpoint {path}: named .tflite but not a TensorFlow Lite model (its bytes 4 to "
                                  f"7 are not TFL3), nor a checkpoint; it starts with {head!r}")
        encrypted = ("; a MindSpore checkpoint saved encrypted (save_checkpoint's enc_key) is read by MindSpore only: "
                     "load it there with dec_key and save it again without" if path.lower().endswith(".ckpt") else "")
        raise CheckpointError(f"checkpoint {path}: neither a PyTorch checkpoint (zip), a safetensors file nor "
                              f"a MindSpore checkpoint (protobuf); it starts with {head!r}{encrypted}")
    recorded: Dict[str, Any] = {}
    if fmt == "mindspore":
        raw, skipped = read_mindspore_ckpt(path)
    else:
        raw, meta = read_safetensors(path)
        skipped = []
        recorded = recorded_metadata(meta, path)
    ckpt = from_seed_state(raw, path, fmt, skipped)
    ckpt.update(recorded)
    ckpt = timm_checkpoint(ckpt, path)
    if map_location not in (None, "cpu"):
        ckpt["model"] = {k: v.to(map_location) for k, v in ckpt["model"].items()}
    return ckpt


# ------------------------------------------------------------------------------------------------ timm

# timm's mobilenetv1_* (its EfficientNet builder): conv_stem and bn1, then blocks.<stage>.<block>, each a
# depthwise conv_dw/bn1 and a pointwise conv_pw/bn2, in layer order, then classifier.
_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.(conv_dw|bn1|conv_pw|bn2)\.(.+)$")
_TIMM_STEM = re.compile(r"^(conv_stem|bn1)\.(.+)$")
# The normalisation timm's MobileNetV1 weights were trained with (their pretrained_cfg: the ra4 recipe).
TIMM_MEAN, TIMM_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
OUR_BN_EPS = 1e-5  # our BatchNorm's eps (model.conv_bn_relu), timm's default too


def is_timm_state(state: Dict[str, Any]) -> bool:
    return "conv_stem.weight" in state and any(k.startswith("blocks.") for k in state)


def from_timm_state(state: Dict[str, torch.Tensor], source: str) -> Dict[str, torch.Tensor]:
    """timm's names as ours: the stem is layer 0, block k (in stage, then block order) layers 2k + 1
    (depthwise) and 2k + 2 (pointwise), the classifier ``fc``. A name of no layer here is an error."""
    blocks = sorted({(int(m.group(1)), int(m.group(2))) for m in map(_TIMM_BLOCK.match, state) if m})
    first = {sb: 1 + 2 * i for i, sb in enumerate(blocks)}
    out: Dict[str, torch.Tensor] = {}
    unknown = []
    for name, t in state.items():
        block, stem = _TIMM_BLOCK.match(name), _TIMM_STEM.match(name)
        if block:
            layer = first[(int(block.group(1)), int(block.group(2)))] + (block.group(3) in ("conv_pw", "bn2"))
            out[f"network.{layer}.{0 if block.group(3).startswith('conv') else 1}.{block.group(4)}"] = t
        elif stem:
            out[f"network.0.{0 if stem.group(1) == 'conv_stem' else 1}.{stem.group(2)}"] = t
        elif name.startswith("classifier."):
            out["fc." + name[len("classifier."):]] = t
        else:
            unknown.append(name)
    if unknown:
        raise CheckpointError(f"checkpoint {source}: timm's names of no MobileNetV1 layer: {', '.join(unknown[:6])}"
                              f"{' ...' if len(unknown) > 6 else ''}: another of timm's networks (its "
                              f"mobilenetv1_*h models end in a head convolution, MobileNetV2 and EfficientNet "
                              f"have other blocks)")
    return out


def fold_normalisation(state: Dict[str, torch.Tensor], mean_from: Iterable[float], std_from: Iterable[float],
                       mean_to: Iterable[float], std_to: Iterable[float]) -> None:
    """Make a model trained on inputs normalised by (``mean_from``, ``std_from``) give the same outputs on
    inputs normalised by (``mean_to``, ``std_to``), in place: such an input is ``a x + b`` of the other
    (``a = std_to / std_from``, ``b = (mean_to - mean_from) / std_from``, per channel), so the first
    convolution's weights take ``a`` and its BatchNorm's running mean loses what ``b`` adds to each
    output. Exact but at the image's edge, where the convolution's zero padding stands for another
    colour (random timm weights through our ImageNet normalisation: logits of 0.2 within 2e-4,
    ``benchmarks/timm_weights.py``; the first layer's interior exact, ``tests/test_mindspore_io.py``)."""
    weight = state["network.0.0.weight"]
    f32 = dict(dtype=torch.float32, device=weight.device)
    mean_from, std_from = torch.tensor(list(mean_from), **f32), torch.tensor(list(std_from), **f32)
    mean_to, std_to = torch.tensor(list(mean_to), **f32), torch.tensor(list(std_to), **f32)
    a, b = (std_to / std_from).view(1, 3, 1, 1), ((mean_to - mean_from) / std_from).view(1, 3, 1, 1)
    shift = (weight.float() * b).sum(dim=(1, 2, 3))
    state["network.0.0.weight"] = (weight.float() * a).to(weight.dtype)
    mean = state["network.0.1.running_mean"]
    state["network.0.1.running_mean"] = (mean.float() - shift).to(mean.dtype)


# timm train.py's --dataset prefixes of data sets read otherwise than by its image folder reader (torchvision's
# ImageFolder sorts its classes as this toolkit does; the others are labelled by their own data).
TIMM_OTHER_READERS = ("torch", "hfds", "hfids", "tfds", "wds")


def timm_checkpoint(ckpt: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``ckpt`` as it is, or, where its ``model`` has timm's names, our checkpoint of those weights:
    padding symmetric (timm's), normalisation folded from timm's mean and std (0.5; a train.py run's own
    --mean and --std where its args give them) into our ImageNet one (:func:`fold_normalisation`), recorded
    as an ImageNet model resized bicubic (as timm trains and evaluates its weights: eval and predict follow
    it; a train.py run's --interpolation, --crop-pct and --input-size or --img-size where given; its --bn-eps
    folded into the running variances), with ``imported`` saying so. A train.py checkpoint's weight average
    (--model-ema) is converted alike and kept as ours (``ema``). Names prefixed as a parallel or compiled
    model's are read as the model's (``module.``: timm's clean_state_dict strips it too)."""
    state = ckpt_io.model_state(ckpt) if isinstance(ckpt.get("model"), dict) else {}
    if not is_timm_state(state):
        return ckpt
    from .transforms import IMAGENET_MEAN, IMAGENET_STD

    run = ckpt.get("trained_by_timm")  # a train.py checkpoint's (checkpoint.foreign_training_checkpoint)
    args = run["args"] if isinstance(run, dict) else {}
    mean, std = _timm_channels(args.get("mean"), TIMM_MEAN), _timm_channels(args.get("std"), TIMM_STD)
    if min(std) <= 0:
        raise CheckpointError(f"checkpoint {source}: its train.py args give std {_channels_words(std)}, not positive: "
                              f"no normalisation the weights could have been trained with")
    bn_eps = args.get("bn_eps") if isinstance(args.get("bn_eps"), float) else OUR_BN_EPS
    if not bn_eps > 0:
        raise CheckpointError(f"checkpoint {source}: its train.py args give bn_eps {bn_eps:g}, not positive")

    def ours(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        state = from_timm_state(state, source)
        if "network.0.0.weight" not in state or "network.0.1.running_mean" not in state:
            raise CheckpointError(f"checkpoint {source}: timm's names without conv_stem and bn1 statistics")
        fold_normalisation(state, mean, std, IMAGENET_MEAN, IMAGENET_STD)
        if bn_eps != OUR_BN_EPS:  # var + eps as its BatchNorm divides by (timm's models take train.py's --bn-eps)
            for name in [n for n in state if n.endswith(".running_var")]:
                state[name] = state[name] + (bn_eps - OUR_BN_EPS)
        return state

    interpolation = args.get("interpolation") if args.get("interpolation") in ("bilinear", "bicubic") else "bicubic"
    config: Dict[str, Any] = {"dataset": "imagenet2012", "interpolation": interpolation}
    size = (args.get("input_size") or [None])[-1] or args.get("img_size")  # timm's resolve_data_config's order
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        config["image_size"] = size
    if args.get("crop_pct") is not None and not crop_pct_problem(args["crop_pct"]):
        config["crop_pct"] = float(args["crop_pct"])  # train.py's --crop-pct: its evaluation's centre crop
    dataset = args.get("dataset") if isinstance(args.get("dataset"), str) else ""
    if isinstance(run, dict) and dataset.lower().split("/")[0] not in TIMM_OTHER_READERS and not args.get("class_map"):
        # A folder (or tar) read by timm's own reader, which numbers its classes in natural order; eval, a teacher
        # and pre_trained put its outputs in this toolkit's sorted order of them (checkpoint.in_sorted_order).
        config[ckpt_io.CLASS_ORDER] = "natural"
    normalised = (f"timm's input normalisation (mean {_channels_words(mean)}, std {_channels_words(std)})"
                  if (mean, std) != (TIMM_MEAN, TIMM_STD) else "timm's input normalisation (mean and std 0.5)")
    what = "timm's MobileNetV1 weights"
    if isinstance(run, dict):
        facts = [f"{k} {run[k]}" for k in ("arch", "epoch", "metric") if isinstance(run.get(k), (str, int, float))]
        what = f"timm's train.py checkpoint ({', '.join(facts)}): its MobileNetV1 weights" if facts else \
            "timm's train.py checkpoint: its MobileNetV1 weights"
    out = {"format": ckpt_io.FORMAT, "model": ours(state), "model_args": {"padding": "symmetric"},
           "config": config,
           "imported": (f"{what} (ReLU6, padding symmetric); its first convolution rescaled from {normalised} "
                        f"to ImageNet's, this toolkit's" + (f"; its BatchNorm's eps {bn_eps:g} (train.py's --bn-eps) "
                                                           f"folded into the running variances"
                                                           if bn_eps != OUR_BN_EPS else ""))}
    if ckpt_io.ema_state(ckpt) is not None:
        out["ema"] = {**ckpt["ema"], "model": ours(ckpt_io.ema_state(ckpt))}
    return out


def _timm_channels(value: Any, default: Tuple[float, ...]) -> Tuple[float, ...]:
    """timm's --mean or --std as train.py's args hold it (None, or one value or three) as three values."""
    if isinstance(value, (list, tuple)) and len(value) in (1, 3) and \
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return tuple(float(v) for v in (value * 3 if len(value) == 1 else value))
    return default


def _channels_words(values: Tuple[float, ...]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else ",".join(f"{v:g}" for v in values)


# ------------------------------------------------------------------------------------- momentum buffers

def nonfinite_moments(moments: Dict[str, torch.Tensor]) -> List[str]:
    """The names of the buffers in ``moments`` that hold NaN or infinite values."""
    return [n for n, t in moments.items() if isinstance(t, torch.Tensor) and t.is_floating_point()
            and not bool(torch.isfinite(t).all())]


def nonfinite_moments_left_out(bad: Sequence[str]) -> str:
    """convert's note on buffers :func:`nonfinite_moments` found (a MindSpore file's, or ours turned into its
    moments): not written, as a continued run refuses them."""
    return (f"its momentum buffers hold NaN or infinite values (moments.{', moments.'.join(bad[:4])}"
            f"{' ...' if len(bad) > 4 else ''}), which a continued run refuses, and are left out")


# What a file's momentum buffers that cannot be continued leave: its weights, read without them.
MOMENTS_REMEDY = "--pretrain_epoch_size 0 starts from its weights with fresh buffers"


def moments_misfit(model: nn.Module, moments: Dict[str, torch.Tensor], skip: Iterable[str] = ()) -> str:
    """How ``moments`` do not fit ``model``'s parameters (names missing or unexpected, shapes), in the file's
    own names (``moments.network.3.1.gamma``); "" where they fit."""
    params = dict(ckpt_io.unwrap(model).named_parameters())
    skip = set(skip)
    wanted = [n for n in params if n not in skip]

    def named(names: Sequence[str]) -> str:
        return ", ".join(f"{MOMENTS_PREFIX}{to_seed_name(n)}" for n in names[:8]) + (" ..." if len(names) > 8 else "")

    missing = [n for n in wanted if n not in moments]
    unexpected = [n for n in moments if n not in params]
    wrong = [f"{MOMENTS_PREFIX}{to_seed_name(n)}: file {tuple(moments[n].shape)} vs model {tuple(params[n].shape)}"
             for n in wanted if n in moments and moments[n].shape != params[n].shape]
    problems = []
    if missing:
        problems.append(f"missing {named(missing)}")
    if unexpected:
        problems.append(f"unexpected {named(unexpected)}")
    if wrong:
        problems.append(f"wrong shape: {'; '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}")
    return "; ".join(problems)


def check_moments(model: nn.Module, moments: Dict[str, torch.Tensor], source: str,
                  skip: Iterable[str] = (), finite: bool = True, remedy: str = MOMENTS_REMEDY) -> List[str]:
    """The parameter names whose buffers ``moments`` provides, after checking every name and shape and, with
    ``finite``, that none holds NaN or infinite values (a run continuing them would step to NaN at once).
    ``remedy``: what the error says the file's weights can still do."""
    skip = set(skip)
    wanted = [n for n, _ in ckpt_io.unwrap(model).named_parameters() if n not in skip]
    misfit = moments_misfit(model, moments, skip)
    if misfit:
        raise CheckpointError(f"checkpoint {source}: momentum buffers do not fit this model ({misfit}); {remedy}")
    bad = nonfinite_moments({n: moments[n] for n in wanted}) if finite else []
    if bad:
        raise CheckpointError(f"checkpoint {source}: momentum buffers hold NaN or infinite values (moments."
                              f"{', moments.'.join(bad[:8])}{' ...' if len(bad) > 8 else ''}): a run continuing them "
                              f"would step its weights to NaN; {remedy}")
    return wanted


def load_momentum(optimizer: torch.optim.Optimizer, model: nn.Module, moments: Dict[str, torch.Tensor],
                  source: str, skip: Iterable[str] = ()) -> int:
    """Put MindSpore Momentum buffers into an SGD optimizer's state (all checked first, so nothing is
    half-loaded); returns how many. ``skip``: parameters left out (a classifier of another class count).
    Parameters the optimizer does not hold (frozen: ``--freeze_layers``) get none: torch's optimizers
    refuse to save state for a parameter outside their groups."""
    params = dict(ckpt_io.unwrap(model).named_parameters())
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    names = [n for n in check_moments(model, moments, source, skip) if id(params[n]) in held]
    for name in names:
        p = params[name]
        # empty_like keeps the parameter's device, dtype and memory format (channels_last), which the
        # fused and foreach SGD kernels expect of their buffers.
        optimizer.state[p]["momentum_buffer"] = torch.empty_like(p).copy_(moments[name])
    return len(names)


def training_moments(ckpt: Dict[str, Any], model: nn.Module, state: Dict[str, torch.Tensor],
                     trained_weights: bool) -> Tuple[Dict[str, Any], str]:
    """A training checkpoint of ours as a seed training checkpoint holds its optimiser: SGD's momentum buffers
    under the parameters' names (``moments``: MindSpore Momentum's, the same update), zeros where SGD holds none
    yet (a frozen layer's, as MindSpore starts them), and the optimiser steps taken (``global_step``), which
    ``--pre_trained`` with ``--pretrain_epoch_size`` continues (convert writes them; train takes them from the file
    itself). Given with the trained weights only (``trained_weights``): a weight average has no buffers of its own.
    ``model``: the file's network, whose parameters training's own grouping (:func:`engine.param_groups`) orders
    as the optimiser held them.
    Returns them and, where the file's optimiser state is left out, a note that says why ("" otherwise)."""
    from .engine import param_groups

    optimizer, config = ckpt.get("optimizer"), ckpt.get("config")
    if not isinstance(optimizer, dict) or not isinstance(config, dict):
        return {}, ""  # no training state: a file of weights
    out: Dict[str, Any] = {}
    step = ckpt.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
        out["global_step"] = step
    opt = config.get("opt", "momentum")
    if opt != "momentum":
        return out, f"its {opt} optimiser's state has no MindSpore Momentum counterpart and is left out"
    if not trained_weights:
        return out, ("the momentum buffers of its trained weights are left out beside their weight average "
                     "(--use_ema False takes the trained weights, and them)")
    groups, saved = optimizer.get("param_groups"), optimizer.get("state")
    ids = [i for g in groups or [] if isinstance(g, dict) for i in g.get("params") or []]
    # The parameters that trained (the frozen layers' left out), in the order training gave the optimiser them.
    frozen = config.get("freeze_layers") if isinstance(config.get("freeze_layers"), int) else 0
    names = {id(p): n for n, p in ckpt_io.unwrap(model).named_parameters()}
    ckpt_io.unwrap(model).freeze(frozen)
    try:
        order = [names[id(p)] for group in param_groups(ckpt_io.unwrap(model), 0.0) for p in group["params"]]
    finally:
        ckpt_io.unwrap(model).freeze(0)
    params = {n: state[n] for n in names.values()}
    if not isinstance(saved, dict) or len(ids) != len(order):
        return out, (f"its optimiser state ({len(ids)} parameters) does not match the model's {len(order)} that "
                     f"train, and is left out")
    moments = {n: torch.zeros_like(t) for n, t in params.items()}
    found = 0
    for name, i in zip(order, ids):
        buffer = (saved.get(i) or {}).get("momentum_buffer")
        if isinstance(buffer, torch.Tensor):
            if buffer.shape != params[name].shape:
                return out, (f"its momentum buffer of {name} is {tuple(buffer.shape)}, the parameter "
                             f"{tuple(params[name].shape)}: left out")
            moments[name] = buffer.detach().to(device="cpu", dtype=params[name].dtype)
            found += 1
    bad = nonfinite_moments(moments)
    if bad:  # what --resume refuses of the file itself: a run continuing them would step to NaN at once
        return out, nonfinite_moments_left_out(bad)
    if found:
        out["moments"] = moments
    return out, ""


# ------------------------------------------------------------------------------------------------ convert

# Names that --format may not take another format under. .safetensors and .onnx are read by their extension,
# not by what they hold (torch.load, and the commands; a .ckpt, .pt or a name of no kind is told by its bytes):
# another format written under one would be a file no command reads. .pte, .pt2 and .tflite are the names of
# exported files: a checkpoint under one still reads (it is told by its bytes), but is taken for an exported model
# by whoever sees its name, and written over one of that name.
READ_BY_EXTENSION = {".safetensors": "a safetensors file", ".onnx": "an ONNX file"}
EXPORTED_EXTENSIONS = {".pte": "an ExecuTorch program (export --file_format PTE)",
                       ".pt2": "a torch.export program (export --file_format PT2)",
                       ".tflite": "a TensorFlow Lite model (export --file_format TFLITE)"}


def output_format(dst: str, fmt: Optional[str] = None) -> str:
    if fmt and fmt not in ("ckpt", "pt", "safetensors"):
        raise ValueError(f"--format {fmt!r}: expected ckpt, pt or safetensors")
    ext = os.path.splitext(dst)[1].lower()
    if fmt and ext in READ_BY_EXTENSION and OUTPUT_FORMATS.get(ext) != fmt:
        raise ValueError(f"{dst}: --format {fmt} under the extension {ext}, which the commands read as "
                         f"{READ_BY_EXTENSION[ext]}: name it .{fmt}")
    if fmt and ext in EXPORTED_EXTENSIONS:
        raise ValueError(f"{dst}: --format {fmt} under the extension {ext}, the name of "
                         f"{EXPORTED_EXTENSIONS[ext]}, not of a checkpoint: name it .{fmt}")
    if fmt:
        return fmt
    if ext not in OUTPUT_FORMATS and (ext in READ_BY_EXTENSION or ext in EXPORTED_EXTENSIONS):
        # --format is refused under these names (above): advising it sent the user to a second refusal.
        what = READ_BY_EXTENSION.get(ext) or EXPORTED_EXTENSIONS[ext]
        raise ValueError(f"{dst}: the extension {ext} is the name of {what}, not of a checkpoint: name it .ckpt "
                         f"(MindSpore), .pt (PyTorch) or .safetensors")
    if ext not in OUTPUT_FORMATS:
        raise ValueError(f"{dst}: cannot tell the format from the extension {ext or '(none)'}; name it .ckpt "
                         f"(MindSpore), .pt (PyTorch) or .safetensors, or pass --format ckpt|pt|safetensors")
    return OUTPUT_FORMATS[ext]


def average_taken(ckpt: Dict[str, Any], src: str, use_ema: bool, by: str) -> Dict[str, Any]:
    """``{"taken_average": ...}`` for a file command ``by`` writes from ``src``'s weight average (``ckpt``
    holds one and ``use_ema``), which becomes the written file's only weights: info, export and predict say
    so. Empty otherwise (a file that records one already carries it among :data:`RECORDED_KEYS`)."""
    if ckpt_io.which_weights(ckpt, use_ema) != "ema":
        return {}
    return {"taken_average": {"source": src, "ema_decay": ckpt["ema"].get("decay"),
                              "updates": ckpt["ema"].get("updates"), "by": by}}


def model_args_written(args: Dict[str, Any], ckpt: Dict[str, Any], built: Optional[str]) -> Dict[str, Any]:
    """``args`` as a file written from ``ckpt`` records them: without the padding where ``ckpt`` records none and
    no ``--padding`` gave one (``built`` None: SAME was presumed, not read; recorded as the file's, eval --padding
    and info's "not recorded" would miss it)."""
    if built is None and "padding" not in (ckpt.get("model_args") or {}):
        return {k: v for k, v in args.items() if k != "padding"}
    return dict(args)


def write_checkpoint(dst: str, fmt: str, state: Dict[str, torch.Tensor], args: Dict[str, Any],
                     recorded: Dict[str, Any], extra: Optional[Dict[str, Any]] = None,
                     seed_trained: bool = False) -> int:
    """Write a model's weights ``state`` (our names) atomically as ``dst`` in ``fmt`` (:func:`output_format`),
    with its ``model_args`` and what its run ``recorded`` (:data:`RECORDED_KEYS`: a ``.pt``
    keeps them as they are, a ``.safetensors`` as JSON metadata, a MindSpore ``.ckpt`` has no place for
    them) and ``extra`` (a MindSpore file's ``moments`` and ``global_step``). ``seed_trained``: the weights are
    a seed run's that record no settings (:func:`checkpoint.seed_trained`), which a ``.pt`` and a
    ``.safetensors`` say (:data:`checkpoint.TRAINED_BY`), as MindSpore's names no longer tell it. Returns the
    tensors written."""
    extra = extra or {}
    if fmt == "pt":
        said = {ckpt_io.TRAINED_BY: "mindspore"} if seed_trained else {}
        ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "model": state, "model_args": args, **recorded, **said,
                             **extra}, dst)
        return len(state) + len(extra.get("moments", {}))
    entries = to_seed_state({"model": state, **extra})
    if fmt == "ckpt":
        write_mindspore_ckpt(dst, entries)
    else:
        meta = {"format": "ms", _MODEL_ARGS_KEY: json.dumps(args),
                _TRAINED_BY_KEY: json.dumps("mindspore" if seed_trained else "")}
        if "config" in recorded:
            # default=str: a value JSON cannot hold is kept readable rather than failing the convert.
            meta[_CONFIG_KEY] = json.dumps(recorded["config"], default=str)
        if "classes" in recorded:
            meta[_CLASSES_KEY] = json.dumps(list(recorded["classes"]))
        if "held_out" in recorded:
            meta[_HELD_OUT_KEY] = json.dumps(recorded["held_out"])
        if "averaged" in recorded:
            meta[_AVERAGED_KEY] = json.dumps(recorded["averaged"])
        if "taken_average" in recorded:
            meta[_TAKEN_AVERAGE_KEY] = json.dumps(recorded["taken_average"], default=str)
        write_safetensors(dst, entries, meta)
    return len(entries)


def dropped_note(command: str, dropped: List[str], dst: str) -> str:
    """The note that a MindSpore .ckpt written by ``command`` lacks what its source recorded (``dropped``:
    keys of :data:`RECORDED_KEYS`)."""
    what = {"config": "training configuration (image size, normalisation)", "classes": "class names",
            "held_out": "record of the images its run held out (val_split)",
            "averaged": "record of the checkpoints it is the mean of",
            "taken_average": "record that its weights are a run's moving average",
            ckpt_io.CLASS_ORDER: "record that timm's train.py numbered its folder's classes in natural order (eval of "
                                 "it on that folder labels them in sorted order: other classes)"}
    names = [what[k] for k in dropped]
    lost = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    return (f"mobilenet-v1 {command}: note: a MindSpore .ckpt holds only tensors: the source's {lost} "
            f"{'are' if len(dropped) > 1 else 'is'} not kept in {dst}")


def mindspore_warning(what: str, fmt: str, padding: str, config: Any = None, width_mult: Any = None) -> str:
    """A warning for writing a model in MindSpore's names (``fmt`` ckpt or safetensors) that MindSpore's
    network and the seed's pipeline would not run as it was trained: ``padding`` other than SAME (which they
    and our reader take for SAME), inputs normalised by its run's own mean and std (its ``config``), where
    the seed's pipeline normalises by its data set's constants, or (a ``.ckpt``) a ``width_mult`` other than 1,
    which the seed's network has no option for; "" otherwise."""
    if fmt == "pt":
        return ""
    problems = []
    if fmt == "ckpt" and isinstance(width_mult, (int, float)) and width_mult != 1:
        problems.append(f"has width_mult {width_mult:g}, which the seed's MobileNetV1 lacks (its layers are width "
                        f"1's, whose shapes MindSpore's load_param_into_net holds these to): build its network at "
                        f"this width")
    if padding != "same":
        problems.append(f"was trained with padding {padding!r}; MindSpore's network pads SAME")
    config = config if isinstance(config, dict) else {}
    if config.get("mean") or config.get("std"):
        dataset = str(config.get("dataset") or "")
        norm = ckpt_io.trained_normalisation(config, dataset, what)
        problems.append(f"was trained on inputs normalised by {normalisation_text(norm)} (its run's --mean/--std); "
                        f"the seed's pipeline normalises by {dataset or 'its data set'}'s "
                        f"constants: give it these")
    if not problems:
        return ""
    return f"{what} " + "; it ".join(problems) + ", or it will not reproduce this model's outputs there"


def convert(src: str, dst: str, fmt: Optional[str] = None, use_ema: bool = True,
            weights_only: bool = False, padding: Optional[str] = None) -> Dict[str, Any]:
    """Write ``src`` (any supported file, or a run folder: its newest checkpoint, ``source`` in the
    result) as ``dst`` in ``fmt`` (by default from ``dst``'s extension):
    ``ckpt`` a MindSpore checkpoint, ``pt`` a PyTorch one of ours, ``safetensors`` MindSpore's names.
    A training checkpoint with a weight average gives that average unless ``use_ema`` is False
    (``weights`` in the result says which: :func:`checkpoint.weights_note`).

    The source is checked as a MobileNetV1 (every name and shape) before anything is written, the
    tensors are written as they are in the file (no dtype change), and the write is atomic. The
    training configuration and class names the source records go into a ``.pt`` as they are and into a
    ``.safetensors`` as JSON metadata; a MindSpore ``.ckpt`` has no place for them (``dropped``). A training
    file's momentum buffers and step count go along (:func:`training_moments`), unless ``weights_only``.
    A source that records no padding (a MindSpore ``.ckpt``) gives a file that records none either (SAME presumed,
    as of the source), or ``padding`` where given (``padding_note`` in the result: :func:`api.padding_option`)."""
    from .api import model_from_checkpoint, padding_option, refuse_quantization_aware

    fmt = output_format(dst, fmt)
    ckpt_io.check_output("DST", dst, [ckpt_io.resolve_checkpoint_path(src, "checkpoint")])

    def read(file: str) -> Tuple[str, Dict[str, Any]]:
        # Read before the write, not after: a running train may prune src meanwhile (the output written, an error
        # said after it; helper-285). A missing src is read_any's to name.
        return detect_format(file) if os.path.isfile(file) else "unknown", read_any(file)

    # A run folder: its newest, as eval takes it; where a train running there pruned the one chosen, its newest then.
    src, (source_format, ckpt) = ckpt_io.read_newest(src, read, "checkpoint")
    ckpt_io.check_output("DST", dst, [src])
    built, padding_note = padding_option(ckpt, padding, src, "convert",
                                         dst if fmt == "ckpt" else "")
    model, args = model_from_checkpoint(ckpt, src, use_ema, padding=built)
    refuse_quantization_aware(model, src, "convert writes float models; its INT8 form is the ONNX file "
                                          "'mobilenet-v1 export' writes")
    if ckpt.get("moments") and not weights_only:
        check_moments(model, ckpt["moments"], src, finite=False,
                      remedy="convert --weights_only writes its weights without them")
    state, weights = ckpt_io.weights_to_use(ckpt, use_ema), ckpt_io.weights_note(ckpt, use_ema)
    extra = {k: ckpt[k] for k in ("moments", "global_step") if ckpt.get(k) is not None and not weights_only}
    optimizer_note = ""
    bad = nonfinite_moments(extra.get("moments") or {})
    if bad:  # as of a training checkpoint of ours (training_moments): no file that continues them to NaN
        del extra["moments"]
        optimizer_note = nonfinite_moments_left_out(bad)
    if not extra and not weights_only and not bad:  # ours: its SGD buffers as the seed's moments
        extra, optimizer_note = training_moments(ckpt, model, state, ckpt_io.which_weights(ckpt, use_ema) != "ema")
    args = {"class_num": args["class_num"], "width_mult": args["width_mult"], "padding": args["padding"]}
    written = model_args_written(args, ckpt, built)
    # What predict and export read beside the weights: without it they fall back to 224x224 and
    # ImageNet normalisation, silently wrong for a model trained otherwise.
    recorded = {k: ckpt[k] for k in RECORDED_KEYS if ckpt.get(k) is not None}
    recorded.update(average_taken(ckpt, src, use_ema, "convert"))
    count = write_checkpoint(dst, fmt, state, written, recorded, extra, seed_trained=ckpt_io.seed_trained(ckpt))
    warning = mindspore_warning(src, fmt, args["padding"], ckpt.get("config"), args["width_mult"])
    return {"source": src, "format": fmt, "tensors": count, "class_num": args["class_num"], "width_mult": args["width_mult"],
            "source_format": source_format, "moments": "moments" in extra,
            "global_step": extra.get("global_step"), "warning": warning, "weights": weights,
            "imported": ckpt.get("imported", ""), "ignored": list(ckpt.get("ignored") or []),
            "dropped": sorted(recorded) + ([ckpt_io.CLASS_ORDER] if (ckpt.get("config") or {}).get(ckpt_io.CLASS_ORDER)
                                           else []) if fmt == "ckpt" else [], "optimizer_note": optimizer_note,
            "padding_note": padding_note}
