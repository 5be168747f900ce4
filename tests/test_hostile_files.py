"""Crafted model and data files: each refused in one line naming the file, without reading or allocating what its
headers claim (helper 404's findings)."""
import os
import tarfile
import zipfile

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import data
from mobilenet_v1.archive import ArchiveMember
from mobilenet_v1.tf_checkpoint import TABLE_MAGIC, crc32c, masked

from test_tf_checkpoint import block, field, varint


def _bundle(prefix, name, shape, offset, size, shards=1, data_bytes=b""):
    with open(f"{prefix}.data-00000-of-{shards:05d}", "wb") as f:
        f.write(data_bytes)
    s = b"".join(field(2, varint(1 << 3) + varint(d)) for d in shape)
    entry = (varint(1 << 3) + varint(1) + field(2, s) + varint(4 << 3) + varint(offset) + varint(5 << 3) + varint(size)
             + varint(6 << 3 | 5) + (0).to_bytes(4, "little"))
    table = bytearray()

    def put(contents):
        handle = varint(len(table)) + varint(len(contents))
        table.extend(contents + b"\0" + masked(crc32c(b"\0", crc32c(contents))).to_bytes(4, "little"))
        return handle

    dh = put(block([(b"", varint(1 << 3) + varint(shards)), (name.encode(), entry)]))
    mh = put(block([]))
    ih = put(block([(name.encode(), dh)]))
    with open(f"{prefix}.index", "wb") as f:
        f.write(bytes(table) + (mh + ih).ljust(40, b"\0") + TABLE_MAGIC.to_bytes(8, "little"))


def test_a_tf_index_claiming_2_to_the_40_data_files_is_refused_not_listed(tmp_path):
    from mobilenet_v1.info import describe

    prefix = str(tmp_path / "m.ckpt")
    _bundle(prefix, "MobilenetV1/Conv2d_0/weights", [4], 0, 16, shards=2 ** 40)
    with pytest.raises(ckpt_io.CheckpointError, match=r"records 1099511627776 data files"):
        describe(prefix + ".index")  # named each of its 2**40 data files: 18 GB and counting


def test_a_tf_tensor_claiming_32_tb_is_refused_before_it_is_read(tmp_path):
    prefix = str(tmp_path / "m.ckpt")
    _bundle(prefix, "MobilenetV1/Conv2d_0/weights", [2 ** 43], 0, 2 ** 45, data_bytes=bytes(16))
    with pytest.raises(ckpt_io.CheckpointError, match=r"m.ckpt.data-00000-of-00001: .* runs past the file's end"):
        ckpt_io.load_file(prefix + ".index")  # was "out of memory (MemoryError); a smaller batch_size ..."


def test_crc32c_lanes_agree_with_a_byte_at_a_time():
    from mobilenet_v1 import tf_checkpoint as tfc

    def slow(d, crc=0):
        crc ^= 0xFFFFFFFF
        for b in d:
            crc = tfc._CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
        return crc ^ 0xFFFFFFFF

    rng = np.random.default_rng(0)
    assert crc32c(b"123456789") == 0xE3069283
    for size in (0, 5, tfc.CRC_LANES * 64 - 1, tfc.CRC_LANES * 64, tfc.CRC_LANES * 65 + 3):
        d = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c(d) == slow(d) and crc32c(d, 99) == slow(d, 99)


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_pickled_os_system_is_named_and_weights_only_false_not_suggested(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"a": _System()}}, str(path))
    with pytest.raises(ckpt_io.CheckpointError) as e:
        ckpt_io.load_file(str(path))
    assert "pickled Python objects" in str(e.value) and "system" in str(e.value)
    assert "will likely succeed" not in str(e.value)


def test_a_zip_bomb_checkpoint_is_refused_unread(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.zeros(4)}}, str(good))
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        zi = zipfile.ZipInfo("good/data/99")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with zout.open(zi, "w") as f:
            for _ in range(5):
                f.write(bytes(16 << 20))  # 80 MB inflated, 80 KB stored
    with pytest.raises(ckpt_io.CheckpointError, match=r"bomb.pt: not read: its entry good/data/99 inflates"):
        ckpt_io.load_file(str(bomb))


def test_an_archive_member_of_zeros_is_held_to_a_files_limits(tmp_path):
    path = tmp_path / "a.tar"
    size = data.SNIFF_FILE_BYTES + 1
    with open(path, "wb") as f:
        ti = tarfile.TarInfo("a/big.png")
        ti.size = size
        f.write(ti.tobuf(format=tarfile.GNU_FORMAT))
        f.seek(size, 1)  # sparse
        f.write(bytes(1024 + (-size) % 512))
    member = ArchiveMember("a.tar/a/big.png", str(path), 512, size)
    with pytest.raises(OSError, match=r"start as no image format"):
        data.file_bytes(member)


def test_a_foreign_position_nested_deep_is_said_briefly(tmp_path):
    deep = []
    for _ in range(100000):
        deep = [deep]
    problems, position = ckpt_io.state_problems({"epoch": deep, "step": "x" * (1 << 20)})
    assert position is None and max(len(p) for p in problems) < 1000


def test_cifar_files_past_the_memory_available_are_refused_unread(tmp_path, monkeypatch):
    root = tmp_path / "cifar"
    root.mkdir()
    for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        with open(root / name, "wb") as f:
            f.truncate(data.CIFAR_RECORD * 1000)
    monkeypatch.setattr(data, "available_memory", lambda: 1 << 20)
    with pytest.raises(data.DataError, match=r"more than the 1,048,576 bytes available"):
        data.load_cifar(str(root), True)
