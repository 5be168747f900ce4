"""TensorFlow checkpoints of TF-slim's MobileNetV1, read without TensorFlow.

TF-slim's releases (``mobilenet_v1_1.0_224.tgz`` ... ``mobilenet_v1_0.25_128.tgz``, the 16 widths and sizes
of the paper, and their ``_quant`` versions) hold a checkpoint in TensorFlow's second format: a prefix
(``mobilenet_v1_1.0_224.ckpt``) naming an index, ``PREFIX.index``, and the tensors' bytes,
``PREFIX.data-00000-of-00001``. The index is a sorted string table as LevelDB writes it (blocks of
prefix-compressed keys, each followed by a compression byte, none or Snappy (TensorFlow before 1.2 compressed
a sharded save's), and a masked CRC-32C; an index block; a 48-byte footer ending in a magic number); its
values are ``BundleEntryProto`` messages (dtype, shape, shard, offset, size, CRC-32C of the bytes), its empty
key the ``BundleHeaderProto`` (shard count, byte order). Both are read here from the protobuf wire format,
field by field; every block's and every tensor's CRC is checked, so a damaged file is refused, not loaded wrong.

TF-slim's network is this one: the same 27 layers with ReLU6, TensorFlow's SAME padding (this toolkit's
default), BatchNorm of eps 0.001 (ours: 1e-5, the difference folded into the running variance, which gives
the same normalisation), inputs scaled to [-1, 1] (folded into the first convolution as timm's 0.5 mean
and std are), and 1001 outputs whose first is "background": dropped, leaving ImageNet's 1000 classes in
their sorted-synset order, which is this toolkit's (an image folder's sorted class folders)."""

import math
import os
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch

from .checkpoint import FORMAT, CheckpointError, tf_index

TABLE_MAGIC = 0xDB4775248B80FB57  # the last 8 bytes of a LevelDB-format table (TensorFlow's index)
FOOTER_SIZE = 48  # two block handles (padded to 40 bytes) and the magic
SCOPE = "MobilenetV1/"
TF_EPS, OUR_EPS = 1e-3, 1e-5  # TF-slim's mobilenet_v1_arg_scope batch_norm_epsilon; our BatchNorm's
EMA_SUFFIX = "/ExponentialMovingAverage"
# TensorFlow's DataType numbers (types.proto) of the dtypes a checkpoint of numbers holds.
TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
             10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
DATA_NAME = re.compile(r"^(.*)\.data-\d{5}-of-\d{5}$")
# TF-slim's release names: width and the image size the weights were trained and evaluated at.
RELEASE_NAME = re.compile(r"^mobilenet_v1_(\d+(?:\.\d+)?)_(\d+)(?:_quant)?\.ckpt$")
# The variables a network's weights are (and their moving averages); an optimiser's slots (.../RMSProp,
# .../Momentum) and quantization ranges are left unread: their bytes are most of a training checkpoint's.
NETWORK_VARIABLE = re.compile(r"/(weights|depthwise_weights|biases|gamma|beta|moving_mean|moving_variance)"
                              r"(/ExponentialMovingAverage)?$")


# ------------------------------------------------------------------------------------------------ CRC-32C

def _crc_table() -> List[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli's polynomial, reflected
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


_CRC_ARRAY = np.array(_CRC_TABLE, dtype=np.uint32)
CRC_LANES = 4096  # past 64 bytes a lane, data is checked 4,096 lanes at once (NumPy), not a byte at a time


def _zero_bytes_operator(n: int) -> List[List[int]]:
    """The CRC register after ``n`` zero bytes, as four tables (one a byte of the register before, XORed): the
    register's update is linear over GF(2), so lanes' CRCs fold into one with it."""
    reg = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))
    for _ in range(n):
        reg = _CRC_ARRAY[reg & 0xFF] ^ (reg >> np.uint32(8))
    cols = [int(v) for v in reg]
    tables = []
    for j in range(4):
        tab = []
        for v in range(256):
            out = 0
            for bit in range(8):
                if v >> bit & 1:
                    out ^= cols[8 * j + bit]
            tab.append(out)
        tables.append(tab)
    return tables


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, continuing ``crc``: what LevelDB and TensorFlow check their bytes with.
    A byte at a time in Python took 0.2 s a MB (a 1 GB tensor, a sparse file's: minutes before it was refused);
    longer data is split into :data:`CRC_LANES` lanes run side by side, folded in order."""
    table = _CRC_TABLE
    crc ^= 0xFFFFFFFF
    view = memoryview(data).cast("B")
    n = len(view) // CRC_LANES
    if n >= 64:
        block = np.frombuffer(view[:n * CRC_LANES], dtype=np.uint8).reshape(CRC_LANES, n)
        lanes = np.zeros(CRC_LANES, dtype=np.uint32)
        for i in range(n):
            lanes = _CRC_ARRAY[(lanes ^ block[:, i]) & 0xFF] ^ (lanes >> np.uint32(8))
        m0, m1, m2, m3 = _zero_bytes_operator(n)
        for lane in lanes.tolist():
            crc = m0[crc & 0xFF] ^ m1[crc >> 8 & 0xFF] ^ m2[crc >> 16 & 0xFF] ^ m3[crc >> 24] ^ lane
        view = view[n * CRC_LANES:]
    for b in bytes(view):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    """LevelDB's mask of a stored CRC (a CRC of bytes that hold CRCs is then no CRC of its own)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------ wire format, table

def _varint(buf: bytes, pos: int, source: str) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CheckpointError(f"checkpoint {source}: a number in its index runs past its end (damaged?)")
        b = buf[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return value, pos


def _fields(buf: bytes, source: str) -> Iterator[Tuple[int, Any]]:
    """A protobuf message's (field number, value): varints as numbers, fixed ones as numbers, length-delimited
    ones as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos, source)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, source)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos, source)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise CheckpointError(f"checkpoint {source}: its index holds a message of wire type {wire} (damaged?)")
        if pos > len(buf):
            raise CheckpointError(f"checkpoint {source}: a message in its index runs past its end (damaged?)")
        yield number, value


def _block(data: bytes, handle: bytes, source: str) -> bytes:
    """The block a handle (offset and size, varints) names, its trailer's compression byte and CRC checked."""
    offset, pos = _varint(handle, 0, source)
    size, _ = _varint(handle, pos, source)
    if offset + size + 5 > len(data):
        raise CheckpointError(f"checkpoint {source}: a block of its index runs past the file's end (cut short?)")
    block, kind = data[offset:offset + size], data[offset + size]
    stored = int.from_bytes(data[offset + size + 1:offset + size + 5], "little")
    if stored not in (masked(crc32c(bytes([kind]), crc32c(block))), crc32c(bytes([kind]), crc32c(block))):
        raise CheckpointError(f"checkpoint {source}: a block of its index fails its CRC-32C check (damaged)")
    if kind == 1:  # Snappy: TensorFlow reads it (format.cc); before 1.2 it wrote a merged (sharded) save's so
        return _unsnappy(block, source)
    if kind != 0:
        raise CheckpointError(f"checkpoint {source}: a block of its index is of compression type {kind}, neither "
                              f"none (0) nor Snappy (1), the two a table holds (damaged?)")
    return block


def _unsnappy(data: bytes, source: str) -> bytes:
    """A block compressed by Snappy (its raw format: the length, then literals and copies of earlier bytes)."""
    size, pos = _varint(data, 0, source)
    out = bytearray()
    while pos < len(data):
        tag, pos = data[pos], pos + 1
        if tag & 3 == 0:  # a literal of (tag >> 2) + 1 bytes, or of a length in the next 1 to 4 bytes
            n = tag >> 2
            if n >= 60:
                n, pos = int.from_bytes(data[pos:pos + n - 59], "little"), pos + n - 59
            n += 1
            if pos + n > len(data):
                raise CheckpointError(f"checkpoint {source}: a compressed block of its index runs past its end "
                                      f"(damaged)")
            out += data[pos:pos + n]
            pos += n
            continue
        if tag & 3 == 1:  # 4 to 11 bytes from up to 2047 back
            n, offset, pos = (tag >> 2 & 7) + 4, (tag >> 5) << 8 | (data[pos] if pos < len(data) else 0), pos + 1
        else:  # 1 to 64 bytes from an offset in the next 2 (or 4) bytes
            width = 2 if tag & 3 == 2 else 4
            n, offset, pos = (tag >> 2) + 1, int.from_bytes(data[pos:pos + width], "little"), pos + width
        if not 0 < offset <= len(out) or pos > len(data):
            raise CheckpointError(f"checkpoint {source}: a compressed block of its index copies bytes it does not "
                                  f"hold (damaged)")
        for _ in range(n):  # byte by byte: a copy may overlap what it writes
            out.append(out[-offset])
    if len(out) != size:
        raise CheckpointError(f"checkpoint {source}: a compressed block of its index holds {len(out)} bytes, not "
                              f"the {size} it records (damaged)")
    return bytes(out)


def _entries(block: bytes, source: str) -> Iterator[Tuple[bytes, bytes]]:
    """A block's (key, value) pairs: each key the previous one's first ``shared`` bytes and its own."""
    if len(block) < 4:
        raise CheckpointError(f"checkpoint {source}: a block of its index is too short (damaged)")
    restarts = int.from_bytes(block[-4:], "little")
    end = len(block) - 4 - 4 * restarts
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos, source)
        own, pos = _varint(block, pos, source)
        size, pos = _varint(block, pos, source)
        if shared > len(key) or pos + own + size > end:
            raise CheckpointError(f"checkpoint {source}: an entry of its index runs past its block (damaged)")
        key = key[:shared] + block[pos:pos + own]
        yield key, block[pos + own:pos + own + size]
        pos += own + size


def is_table(path: str) -> bool:
    """Whether ``path`` is a file ending in a LevelDB-format table's footer (a TensorFlow checkpoint's index)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() < FOOTER_SIZE:
                return False
            f.seek(-8, os.SEEK_END)
            return int.from_bytes(f.read(8), "little") == TABLE_MAGIC
    except OSError:
        return False


def read_table(path: str) -> Dict[bytes, bytes]:
    """Every key and value of the table in ``path``."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < FOOTER_SIZE or int.from_bytes(data[-8:], "little") != TABLE_MAGIC:
        raise CheckpointError(f"checkpoint {path}: not a TensorFlow checkpoint index (no table footer at its end: "
                              f"cut short?)")
    footer = data[-FOOTER_SIZE:]
    _, pos = _varint(footer, 0, path)  # the metaindex block's handle: nothing TensorFlow's index uses
    _, pos = _varint(footer, pos, path)
    index = _block(data, footer[pos:], path)
    out: Dict[bytes, bytes] = {}
    for _, handle in _entries(index, path):
        out.update(_entries(_block(data, handle, path), path))
    return out


# ------------------------------------------------------------------------------------------------ bundle

def bundle_prefix(path: str) -> Optional[str]:
    """The checkpoint prefix ``path`` names: itself where ``PREFIX.index`` is beside it and it is no file
    (TensorFlow's own way, ``model.ckpt``), or the index or a data file named; None for anything else."""
    path = os.fspath(path)
    if path.endswith(".index") and is_table(path):
        return path[:-len(".index")]
    data = DATA_NAME.match(path)
    if data and os.path.isfile(path) and os.path.isfile(data.group(1) + ".index"):
        return data.group(1)
    if tf_index(path) != path:  # TensorFlow's own way: the prefix, no file
        return path
    return None


def _shape(buf: bytes, source: str) -> List[int]:
    dims = []
    for number, value in _fields(buf, source):
        if number == 2:
            dims.append(next((v for n, v in _fields(value, source) if n == 1), 0))
        elif number == 3 and value:
            raise CheckpointError(f"checkpoint {source}: a tensor of unknown rank")
    return dims


# More data files than any saver writes (one a device or variable partition): a header recording more is damaged,
# and naming each of 2**40 files (info's size of a checkpoint) ran for ever, its memory growing past 18 GB.
MAX_SHARDS = 1 << 16


def _shard_count(header: Dict[int, Any], index: str) -> int:
    shards = header.get(1, 1) or 1
    if shards > MAX_SHARDS:
        raise CheckpointError(f"checkpoint {index}: its header records {shards} data files, more than any "
                              f"TensorFlow save writes ({MAX_SHARDS}); the index is damaged")
    return shards


def data_files(prefix: str) -> List[str]:
    """The data files the checkpoint ``prefix``'s index names (``PREFIX.data-K-of-N``; an earlier save of another
    shard count may have left others of its name beside them)."""
    index = prefix + ".index"
    shards = _shard_count(dict(_fields(read_table(index).get(b"", b""), index)), index)
    return [f"{prefix}.data-{k:05d}-of-{shards:05d}" for k in range(shards)]


def read_bundle(prefix: str, wanted: Callable[[str], bool] = lambda name: True) -> Dict[str, torch.Tensor]:
    """The tensors of numbers in the checkpoint ``prefix`` (``PREFIX.index`` and its data files) whose names are
    ``wanted``, by name."""
    index = prefix + ".index"
    table = read_table(index)
    header = dict(_fields(table.pop(b"", b""), index))
    if header.get(2, 0) != 0:
        raise CheckpointError(f"checkpoint {index}: written big-endian, which is not read here")
    shards = _shard_count(header, index)
    files: Dict[int, Any] = {}
    out: Dict[str, torch.Tensor] = {}
    try:
        for key, value in table.items():
            name = key.decode("utf-8", "replace")
            if not wanted(name):
                continue
            entry: Dict[int, Any] = {}
            slices = False
            for number, v in _fields(value, index):
                slices = slices or number == 7
                entry[number] = v
            if slices:
                raise CheckpointError(f"checkpoint {index}: {name} is a partitioned variable (saved in slices), "
                                      f"which is not read here")
            dtype = TF_DTYPES.get(entry.get(1, 0))
            if dtype is None:
                continue  # strings and others no network weight is: left out
            shape = _shape(entry.get(2, b""), index)
            shard, offset, size = entry.get(3, 0), entry.get(4, 0), entry.get(5, 0)
            if size != math.prod(shape) * np.dtype(dtype).itemsize:  # exact: np.prod wrapped (2**32, 2**32) to 0
                raise CheckpointError(f"checkpoint {index}: {name} of shape {shape} records {size} bytes (damaged?)")
            if math.prod(d for d in shape if d) * np.dtype(dtype).itemsize >= 2 ** 63:  # (0, 2**62, 2**62)
                raise CheckpointError(f"checkpoint {index}: {name} has shape {shape}, past any array's size (damaged?)")
            if shard not in files:
                data = f"{prefix}.data-{shard:05d}-of-{shards:05d}"
                if not os.path.isfile(data):
                    raise CheckpointError(f"checkpoint {prefix}: its data file {data} is missing (the index and its "
                                          f"data files go together)")
                files[shard] = open(data, "rb")
            f = files[shard]
            if offset + size > os.fstat(f.fileno()).st_size:  # before reading: f.read(size) allocates size first
                raise CheckpointError(f"checkpoint {f.name}: {name} runs past the file's end (cut short?)")
            f.seek(offset)
            raw = f.read(size)
            if len(raw) != size:
                raise CheckpointError(f"checkpoint {f.name}: {name} runs past the file's end (cut short?)")
            if 6 in entry and entry[6] not in (masked(crc32c(raw)), crc32c(raw)):
                raise CheckpointError(f"checkpoint {f.name}: {name} fails its CRC-32C check (damaged)")
            out[name] = torch.from_numpy(np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(
                dtype).reshape(shape).copy())
    finally:
        for f in files.values():
            f.close()
    return out


# ------------------------------------------------------------------------------------------ TF-slim names

def _layer_names() -> List[Tuple[str, int, str]]:
    """(TF-slim scope, our layer, its weights' name) of the 27 layers in order."""
    names = [("Conv2d_0", 0, "weights")]
    for i in range(1, 14):
        names += [(f"Conv2d_{i}_depthwise", 2 * i - 1, "depthwise_weights"),
                  (f"Conv2d_{i}_pointwise", 2 * i, "weights")]
    return names


def from_tf_slim(raw: Dict[str, torch.Tensor], source: str, suffix: str = "") -> Dict[str, torch.Tensor]:
    """Our state dict of TF-slim's tensors (those of ``suffix`` appended to each name: its moving averages'),
    as the module docstring says: transposed, eps and input scaling folded, the background output dropped."""
    from .mindspore_io import TIMM_MEAN, TIMM_STD, fold_normalisation
    from .transforms import IMAGENET_MEAN, IMAGENET_STD

    def get(name: str, required: bool = True) -> Optional[torch.Tensor]:
        t = raw.get(SCOPE + name + suffix)
        if t is None and required:
            raise CheckpointError(f"checkpoint {source}: no {SCOPE}{name}{suffix}: not TF-slim's MobileNetV1 (or "
                                  f"not all of it)")
        return t

    state: Dict[str, torch.Tensor] = {}
    for scope, layer, weights in _layer_names():
        w = get(f"{scope}/{weights}").float()
        if w.dim() != 4:
            raise CheckpointError(f"checkpoint {source}: {SCOPE}{scope}/{weights} has shape {list(w.shape)}, not 4-D")
        # HWIO as ours OIHW; a depthwise HW(C)(multiplier 1) as (C)(1)HW.
        state[f"network.{layer}.0.weight"] = (w.permute(2, 3, 0, 1) if weights == "depthwise_weights"
                                              else w.permute(3, 2, 0, 1)).contiguous()
        mean, var = get(f"{scope}/BatchNorm/moving_mean").float(), get(f"{scope}/BatchNorm/moving_variance").float()
        gamma, beta = get(f"{scope}/BatchNorm/gamma", False), get(f"{scope}/BatchNorm/beta", False)
        bn = f"network.{layer}.1."
        state[bn + "weight"] = gamma.float() if gamma is not None else torch.ones_like(mean)  # scale=False: 1
        state[bn + "bias"] = beta.float() if beta is not None else torch.zeros_like(mean)
        state[bn + "running_mean"] = mean
        state[bn + "running_var"] = var + (TF_EPS - OUR_EPS)  # var + eps as TF-slim's BatchNorm divides by
        state[bn + "num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    w, b = get("Logits/Conv2d_1c_1x1/weights").float(), get("Logits/Conv2d_1c_1x1/biases").float()
    w = w.reshape(w.shape[-2], w.shape[-1]).t()  # (1, 1, features, classes) as (classes, features)
    if w.shape[0] == 1001:  # output 0 is "background": no class of ImageNet's
        w, b = w[1:], b[1:]
    state["fc.weight"], state["fc.bias"] = w.contiguous(), b.contiguous()
    fold_normalisation(state, TIMM_MEAN, TIMM_STD, IMAGENET_MEAN, IMAGENET_STD)
    return state


def read_tf_checkpoint(prefix: str) -> Dict[str, Any]:
    """A checkpoint dict of ours from TF-slim's checkpoint at ``prefix``: ``model``, and ``ema`` where it holds
    moving averages (``.../ExponentialMovingAverage``, of a run with ``--moving_average_decay``): each variable's
    average where it has one, else itself, as TF-slim's evaluation restores them."""
    raw = read_bundle(prefix, lambda name: name == "global_step" or bool(NETWORK_VARIABLE.search(name)))
    shown = prefix + ".index"
    if not any(name.startswith(SCOPE) for name in raw):
        raise CheckpointError(f"checkpoint {shown}: a TensorFlow checkpoint without {SCOPE.rstrip('/')}'s variables "
                              f"(it holds {', '.join(sorted(raw)[:4])}{' ...' if len(raw) > 4 else ''}): not TF-slim's "
                              f"MobileNetV1")
    model = from_tf_slim(raw, shown)
    classes = model["fc.weight"].shape[0]
    dropped = classes + 1 == raw[SCOPE + "Logits/Conv2d_1c_1x1/biases"].shape[0]
    ckpt: Dict[str, Any] = {
        "format": FORMAT, "model": model, "model_args": {"padding": "same"},
        "config": {"dataset": "imagenet2012", "interpolation": "bilinear", "antialias": False},
        "imported": ("TF-slim's MobileNetV1 checkpoint (TensorFlow): layers as they are (SAME padding); BatchNorm's "
                     "eps 0.001 folded into the running variances; its first convolution rescaled from inputs in "
                     "[-1, 1] (mean and std 0.5) to ImageNet's normalisation, this toolkit's"
                     + ("; its output 0, background, dropped: ImageNet's 1000 classes remain" if dropped else ""))}
    averages = {name[:-len(EMA_SUFFIX)]: t for name, t in raw.items() if name.endswith(EMA_SUFFIX)}
    if averages:  # each variable's average where it has one, else itself: what TF-slim's evaluation restores
        ckpt["ema"] = {"model": from_tf_slim({**raw, **averages}, shown), "decay": None, "updates": None}
    named = RELEASE_NAME.match(os.path.basename(prefix))  # mobilenet_v1_0.5_160.ckpt: trained at 160
    if named and int(named.group(2)) > 0:
        ckpt["config"]["image_size"] = int(named.group(2))
    step = raw.get("global_step")
    if step is not None and step.numel() == 1:
        ckpt["imported"] += f"; trained {int(step.reshape(-1)[0]):,} steps"
    return ckpt
