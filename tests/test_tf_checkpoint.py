"""TF-slim's MobileNetV1 checkpoints (TensorFlow's second format: PREFIX.index, PREFIX.data-00000-of-00001), read
without TensorFlow. The files here are written by a writer of the format's own (LevelDB's table layout, the
bundle protos' wire format), from a network of ours made TF-slim's: eps 0.001, 1001 outputs, inputs in [-1, 1]."""

import json
import os

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, load_model
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.tf_checkpoint import TABLE_MAGIC, crc32c, masked


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:  # length-delimited
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def block(entries) -> bytes:
    """A table block of (key, value), keys sharing prefixes with the one before, one restart point."""
    out, previous = bytearray(), b""
    for key, value in entries:
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + (0).to_bytes(4, "little") + (1).to_bytes(4, "little")


def snappy(raw: bytes) -> bytes:
    """``raw`` compressed in Snappy's raw format: its length, literals and copies of 4 or more bytes seen before
    (1-byte offsets where they fit, else 2-byte ones)."""
    out, seen, start, i = bytearray(varint(len(raw))), {}, 0, 0

    def literal(b: bytes) -> None:
        n = len(b) - 1
        out.extend((bytes([n << 2]) if n < 60 else bytes([60 << 2, n]) if n < 256
                    else bytes([61 << 2]) + n.to_bytes(2, "little")) + b)

    while i + 4 <= len(raw):
        j = seen.get(raw[i:i + 4])
        seen[raw[i:i + 4]] = i
        if j is None or i - j > 0xFFFF:
            i += 1
            continue
        if start < i:
            literal(raw[start:i])
        n = 4
        while i + n < len(raw) and n < 64 and raw[j + n] == raw[i + n]:
            n += 1
        offset = i - j
        out.extend(bytes([1 | (n - 4) << 2 | offset >> 8 << 5, offset & 0xFF]) if n <= 11 and offset < 2048
                   else bytes([2 | (n - 1) << 2]) + offset.to_bytes(2, "little"))
        i = start = i + n
    if start < len(raw):
        literal(raw[start:])
    return bytes(out)


def write_bundle(prefix, tensors, compress: bool = False, shapes=None):
    """TensorFlow's checkpoint of ``tensors`` (name: a float32 or int64 array, DT_FLOAT or DT_INT64): its data
    file and its index, a table of one data block, an empty metaindex block, an index block and the footer;
    with ``compress``, its blocks Snappy-compressed (a merged save's before TensorFlow 1.2). ``shapes``: the
    shape the index records of a tensor named there, in place of its array's (a damaged file's)."""
    data, entries = bytearray(), []
    for name in sorted(tensors):
        tf_dtype = 9 if tensors[name].dtype == np.int64 else 1
        raw = np.ascontiguousarray(tensors[name]).astype("<i8" if tf_dtype == 9 else "<f4").tobytes()
        recorded = (shapes or {}).get(name, tensors[name].shape)
        shape = b"".join(field(2, varint(1 << 3) + varint(d)) for d in recorded)
        entry = (varint(1 << 3) + varint(tf_dtype) + field(2, shape) + varint(4 << 3) + varint(len(data))
                 + varint(5 << 3) + varint(len(raw)) + varint(6 << 3 | 5) + masked(crc32c(raw)).to_bytes(4, "little"))
        entries.append((name.encode(), entry))
        data += raw
    with open(f"{prefix}.data-00000-of-00001", "wb") as f:
        f.write(bytes(data))
    table = bytearray()

    def put(contents: bytes) -> bytes:  # a block and its trailer; returns its handle
        kind = b"\1" if compress else b"\0"
        contents = snappy(contents) if compress else contents
        handle = varint(len(table)) + varint(len(contents))
        table.extend(contents + kind + masked(crc32c(kind, crc32c(contents))).to_bytes(4, "little"))
        return handle

    header = varint(1 << 3) + varint(1)  # BundleHeaderProto: num_shards 1, little-endian
    data_handle = put(block([(b"", header)] + entries))
    meta_handle = put(block([]))
    index_handle = put(block([(entries[-1][0], data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + TABLE_MAGIC.to_bytes(8, "little")
    with open(f"{prefix}.index", "wb") as f:
        f.write(bytes(table) + footer)


def slim_tensors(net: MobileNetV1, scale: bool = True) -> dict:
    """TF-slim's variables of ``net`` (1001 outputs, its BatchNorms of eps 0.001 as TF-slim's): HWIO kernels,
    depthwise ones (3, 3, C, 1), the logits a 1x1 convolution."""
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    out = {}
    for layer in range(27):
        if layer == 0:
            scope, kind = "Conv2d_0", "weights"
        else:
            scope = f"Conv2d_{(layer + 1) // 2}_{'depthwise' if layer % 2 else 'pointwise'}"
            kind = "depthwise_weights" if layer % 2 else "weights"
        w = state[f"network.{layer}.0.weight"]
        out[f"MobilenetV1/{scope}/{kind}"] = w.transpose(2, 3, 0, 1) if layer % 2 else w.transpose(2, 3, 1, 0)
        bn = f"network.{layer}.1."
        for theirs, ours in (("moving_mean", "running_mean"), ("moving_variance", "running_var"), ("beta", "bias"),
                             ("gamma", "weight")):
            if theirs != "gamma" or scale:
                out[f"MobilenetV1/{scope}/BatchNorm/{theirs}"] = state[bn + ours]
    out["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] = state["fc.weight"].T.reshape(1, 1, *state["fc.weight"].T.shape)
    out["MobilenetV1/Logits/Conv2d_1c_1x1/biases"] = state["fc.bias"]
    return out


def slim_net(seed: int, scale: bool = True) -> MobileNetV1:
    """A network as TF-slim's computes (SAME padding, BatchNorm eps 0.001, 1001 outputs), of random weights."""
    torch.manual_seed(seed)
    net = MobileNetV1(class_num=1001, width_mult=0.25).eval()
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_(0, 0.5)
            if name.endswith(".weight") and ".1." in name and not scale:
                t.fill_(1.0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-3
    return net


def test_tf_slim_checkpoint_loads_as_the_same_network_its_background_output_dropped(tmp_path, capsys):
    """A TF-slim checkpoint (the paper's MobileNetV1 at every width: SAME padding, eps 0.001, 1001 outputs of
    which 0 is background, inputs in [-1, 1]) gives TF-slim's outputs: the layers after the first exactly
    (eps folded into the running variance), the first up to the image's edge (the input scaling folded in),
    ImageNet's 1000 classes (background dropped); as a prefix, its index or its data file, everywhere a
    checkpoint is read; its moving averages as the weight average; optimiser slots and others unread."""
    net = slim_net(0)
    tensors = slim_tensors(net)
    averaged = slim_net(1)
    for name, t in slim_tensors(averaged).items():
        tensors[name + "/ExponentialMovingAverage"] = t
        tensors[name + "/RMSProp"] = np.full_like(t, np.nan)  # an optimiser's slot: never read
    tensors["global_step"] = np.array(906808, dtype=np.int64)
    prefix = tmp_path / "mobilenet_v1_0.25_128.ckpt"
    write_bundle(prefix, tensors)
    x = torch.rand(2, 3, 48, 48)
    imagenet = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1)
    for use_ema, reference in ((False, net), (True, averaged)):
        model = load_model(str(prefix), use_ema=use_ema).eval()
        assert (model.class_num, model.width_mult, model.padding) == (1000, 0.25, "same")
        with torch.no_grad():
            got, want = model.network[0](imagenet), reference.network[0](x * 2 - 1)
            assert torch.allclose(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-4)
            features = reference.network[0](x * 2 - 1)
            theirs = reference.fc(reference.network[1:](features).mean((2, 3)))
            ours = model.fc(model.network[1:](features).mean((2, 3)))
        assert torch.allclose(ours, theirs[:, 1:], rtol=1e-4, atol=1e-4)
    # its size, the index's and the data file's together whichever name is given (the index's alone was said)
    size = os.path.getsize(f"{prefix}.index") + os.path.getsize(f"{prefix}.data-00000-of-00001")
    # a data file of an earlier save of another shard count, beside: not this checkpoint's (its index names its own)
    open(f"{prefix}.data-00001-of-00002", "wb").write(b"\0" * 1000)
    for given in (prefix, f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        assert cli.main(["info", str(given), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["bytes"] == size, given
        assert cli.main(["info", str(given)]) == 0
        text = capsys.readouterr().out
        assert "TF-slim's MobileNetV1 (TensorFlow checkpoint)" in text and "1,000 classes, padding same" in text
        assert "the newest checkpoint in" not in text  # said of a prefix as of a run folder
        assert "data:           imagenet2012, image_size 128" in text  # as the release's name says
        assert "its output 0, background, dropped: ImageNet's 1000 classes remain; trained 906,808 steps" in text
    assert cli.main(["convert", str(prefix), str(tmp_path / "ours.pt")]) == 0
    capsys.readouterr()
    saved = ckpt_io.load_file(str(tmp_path / "ours.pt"))
    assert torch.equal(saved["model"]["fc.weight"], load_model(str(prefix)).fc.weight)
    assert saved["config"]["dataset"] == "imagenet2012"
    # The folder the release unpacks to, given for a run folder, names the checkpoint to pass by its prefix (it
    # said only that it holds no numbered checkpoint); an exported file beside it is not named (export, convert,
    # --pre_trained and --teacher refuse it).
    (tmp_path / "ours.pt").unlink()
    (tmp_path / "mobilenet_v1_0.25_128.tflite").write_bytes(b"")
    assert cli.main(["info", str(tmp_path)]) == 1
    assert capsys.readouterr().err.endswith(f"holds no numbered checkpoint (mobilenetv1-EPOCH_STEP.ckpt); it holds "
                                            f"{prefix}: pass that\n")


def test_tf_slim_checkpoint_without_gamma_and_damaged_ones(tmp_path):
    """TF-slim's BatchNorm without scale (no gamma) is a scale of 1; a byte changed in the data file or the index
    fails its CRC-32C check, a missing data file and another network's checkpoint are named."""
    net = slim_net(2, scale=False)
    tensors = slim_tensors(net, scale=False)
    prefix = tmp_path / "m.ckpt"
    write_bundle(prefix, tensors)
    model = load_model(str(prefix), use_ema=False)
    assert torch.equal(model.network[5][1].weight, torch.ones_like(model.network[5][1].weight))
    data = tmp_path / "m.ckpt.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[100] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(ckpt_io.CheckpointError, match=r"m.ckpt.data-00000-of-00001: MobilenetV1/\S+ fails its "
                                                      r"CRC-32C check \(damaged\)"):
        load_model(str(prefix))
    write_bundle(prefix, tensors)
    index = tmp_path / "m.ckpt.index"
    raw = bytearray(index.read_bytes())
    raw[30] ^= 1
    index.write_bytes(bytes(raw))
    with pytest.raises(ckpt_io.CheckpointError, match=r"m.ckpt.index: a block of its index fails its CRC-32C check"):
        load_model(str(prefix))
    write_bundle(prefix, tensors)
    data.unlink()
    with pytest.raises(ckpt_io.CheckpointError, match=r"its data file .*m.ckpt.data-00000-of-00001 is missing"):
        load_model(str(prefix))
    # The other way round, and an index cut short, are named as TensorFlow's files: both were "neither a PyTorch
    # checkpoint (zip), a safetensors file nor a MindSpore checkpoint".
    write_bundle(prefix, tensors)
    index.unlink()
    with pytest.raises(ckpt_io.CheckpointError, match=r"m.ckpt.data-00000-of-00001: a TensorFlow checkpoint's data "
                                                      r"file without its index m.ckpt.index beside it"):
        load_model(str(data))
    write_bundle(prefix, tensors)
    index.write_bytes(index.read_bytes()[:-20])
    for given in (prefix, index):
        with pytest.raises(ckpt_io.CheckpointError, match=r"m.ckpt.index: not a TensorFlow checkpoint index "
                                                          r"\(no table footer at its end: cut short\?\)$"):
            load_model(str(given))
    write_bundle(tmp_path / "other.ckpt", {"resnet_v1_50/conv1/weights": np.zeros((7, 7, 3, 64), np.float32)})
    with pytest.raises(ckpt_io.CheckpointError, match=r"a TensorFlow checkpoint without MobilenetV1's variables \(it "
                                                      r"holds resnet_v1_50/conv1/weights\): not TF-slim's MobileNetV1"):
        load_model(str(tmp_path / "other.ckpt"))


def test_a_tf_checkpoint_recording_a_shape_past_any_arrays_size_is_named_as_damaged(tmp_path):
    """An index recording shape (2**32, 2**32) with 0 bytes passed the size check (NumPy's int64 product wrapped
    to 0), then failed in a bare "cannot reshape array of size 0"; (0, 2**62, 2**62) in NumPy's "array is too
    big" (helper-357). Both are named with the file."""
    tensors = slim_tensors(slim_net(2))
    name = next(n for n in sorted(tensors) if n.endswith("Conv2d_0/weights"))
    for shape in ((2 ** 32, 2 ** 32), (0, 2 ** 62, 2 ** 62)):
        prefix = tmp_path / "m.ckpt"
        write_bundle(prefix, {**tensors, name: np.zeros((0,), np.float32)}, shapes={name: shape})
        with pytest.raises(ckpt_io.CheckpointError, match=rf"m\.ckpt\.index: {name} (of shape \[4294967296, "
                                                          rf"4294967296\] records 0 bytes|has shape \[0, "
                                                          rf"4611686018427387904, 4611686018427387904\], past any)"):
            load_model(str(prefix))


def test_an_output_named_as_a_tf_checkpoints_weights_file_is_refused_as_an_input(tmp_path, capsys):
    """A TensorFlow checkpoint read is its index and its data file: convert, average and recalibrate-bn compared
    their output with the index alone, and wrote over the data file named as the output, the input lost."""
    prefix = tmp_path / "model.ckpt"
    write_bundle(prefix, slim_tensors(slim_net(4)))
    write_bundle(tmp_path / "other.ckpt", slim_tensors(slim_net(5)))
    data = f"{prefix}.data-00000-of-00001"
    kept = open(data, "rb").read()
    for argv in (["convert", str(prefix), data, "--format", "pt"],
                 ["convert", f"{prefix}.index", data, "--format", "pt"],
                 ["average", f"{prefix}.index", str(tmp_path / "other.ckpt.index"), "--out", data, "--format", "pt"],
                 ["recalibrate-bn", str(prefix), "--out", data, "--format", "pt", "--dataset_path", str(tmp_path),
                  "--image_size", "32"]):
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"{data}: is the file this command reads (a file of the TensorFlow checkpoint " in err, (argv, err)
        assert open(data, "rb").read() == kept
    assert cli.main(["convert", data, f"{prefix}.index", "--format", "pt"]) == 1  # named by its data file
    assert "is the file this command reads (a file of the TensorFlow checkpoint " in capsys.readouterr().err
    # average takes the prefixes, as convert and eval do ("no such file or run folder")
    assert cli.main(["average", str(prefix), str(tmp_path / "other.ckpt"), "--out", str(tmp_path / "mean.pt")]) == 0
    capsys.readouterr()
    mean = (load_model(str(prefix)).fc.weight.double() + load_model(str(tmp_path / "other.ckpt")).fc.weight) / 2
    assert torch.allclose(load_model(str(tmp_path / "mean.pt")).fc.weight, mean.float())


def test_tf_checkpoint_whose_index_is_snappy_compressed_reads_the_same(tmp_path):
    """TensorFlow before 1.2 wrote a sharded save's index Snappy-compressed (format.cc reads either): the same
    weights load from it; a compressed block that copies bytes it does not hold is refused."""
    tensors = slim_tensors(slim_net(3))
    write_bundle(tmp_path / "plain.ckpt", tensors)
    write_bundle(tmp_path / "snappy.ckpt", tensors, compress=True)
    index = (tmp_path / "snappy.ckpt.index").read_bytes()
    assert len(index) < 0.7 * len((tmp_path / "plain.ckpt.index").read_bytes())  # copies and literals both
    plain, compressed = load_model(str(tmp_path / "plain.ckpt")), load_model(str(tmp_path / "snappy.ckpt"))
    for (name, a), (_, b) in zip(plain.state_dict().items(), compressed.state_dict().items()):
        assert torch.equal(a, b), name
    from mobilenet_v1.tf_checkpoint import _unsnappy

    assert _unsnappy(snappy(b"x" + b"ab" * 40 + bytes(range(200))), "s") == b"x" + b"ab" * 40 + bytes(range(200))
    with pytest.raises(ckpt_io.CheckpointError, match=r"s: a compressed block of its index copies bytes it does not "
                                                      r"hold \(damaged\)"):
        _unsnappy(varint(8) + bytes([0 << 2]) + b"a" + bytes([2 | 6 << 2]) + (2).to_bytes(2, "little"), "s")


def test_crc32c_and_its_mask_are_leveldbs_not_only_consistent_with_this_files_writer():
    """The table's checksums are checked against TensorFlow's own: CRC-32C's check value (of "123456789",
    0xE3069283) and RFC 3720's vectors, and LevelDB's mask (rotate right by 15, add 0xA282EAD8) with its unmask
    undoing it. (The files the tests build use this module's functions: a wrong rotation there read them and
    refused every real checkpoint.)"""
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA and crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283  # continued over pieces
    assert masked(0xE3069283) == 0xC78AB0E5
    for crc in (0, 1, 0xE3069283, 0xFFFFFFFF, 0x12345678):
        rot = (masked(crc) - 0xA282EAD8) & 0xFFFFFFFF
        assert ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF == crc


def test_an_index_message_cut_short_is_a_checkpoint_error_naming_the_file():
    """A number whose last byte is missing (0x80 says one more follows) and a field that claims more bytes than
    are left: the damaged file's error, not an IndexError nor a field read short."""
    from mobilenet_v1.tf_checkpoint import _fields

    assert list(_fields(varint(1 << 3) + varint(300) + field(2, b"ab"), "m.index")) == [(1, 300), (2, b"ab")]
    for damaged in (varint(1 << 3) + b"\x80", b"\x80", varint(2 << 3 | 2) + varint(5) + b"ab"):
        with pytest.raises(ckpt_io.CheckpointError, match=r"^checkpoint m\.index: .* runs past its end"):
            list(_fields(damaged, "m.index"))
