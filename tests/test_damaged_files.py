"""Damaged input files, each refused in one line that names the file and says what is wrong, with exit status 1:
bytes changed inside a zip archive (a checkpoint, a .pt2 program) that torch would read as other weights, a
folder where a CIFAR .bin file is expected, a config file cut to nothing."""
import os
import re
import struct
import zipfile
from typing import Dict

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.data import CIFAR100_FOLDER, CIFAR_TRAIN_FOLDER, DataError, load_cifar
from mobilenet_v1.model import MobileNetV1


def flipped(data: bytes, at: int, n: int = 4) -> bytes:
    return data[:at] + bytes(b ^ 0xFF for b in data[at:at + n]) + data[at + n:]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A checkpoint and its .pt2 program, whole, and each with bytes changed in the middle of its largest
    tensor and in the name its first entry's own header repeats (the zip directory at the end intact); and a
    checkpoint saved without CRC-32s (torch's ``compute_crc32`` off), whole."""
    from torch.utils.serialization import config as serialization

    root = tmp_path_factory.mktemp("damaged")
    torch.manual_seed(0)  # a module fixture is made before conftest's seeded: whatever ran before would choose these
    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    whole = {"pt": str(root / "whole.ckpt"), "pt2": str(root / "whole.pt2")}
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 32}},
                        whole["pt"])
    program = torch.export.export(model, (torch.zeros(1, 3, 32, 32),))
    program.example_inputs = None  # as export --file_format PT2 leaves them out (pickled, they are refused)
    torch.export.save(program, whole["pt2"])
    files = {}
    for kind, path in whole.items():
        data = open(path, "rb").read()
        with zipfile.ZipFile(path) as z:
            largest = max(z.infolist(), key=lambda i: i.file_size)
            at = data.index(z.read(largest)) + largest.file_size // 2
            first = z.infolist()[0]
        assert first.header_offset == 0
        ext = os.path.splitext(path)[1]
        name_at = 30 + len(first.filename) // 2  # in the local header, after its 30 fixed bytes
        for damage, changed in (("tensor", flipped(data, at)), ("name", flipped(data, name_at, 1))):
            files[kind, damage] = str(root / f"{damage}{ext}")
            with open(files[kind, damage], "wb") as f:
                f.write(changed)
    before = serialization.save.compute_crc32
    serialization.save.compute_crc32 = False
    try:
        torch.save({"model": model.state_dict()}, str(root / "no_crc.pt"))
    finally:
        serialization.save.compute_crc32 = before
    return files, whole, str(root / "no_crc.pt")


@pytest.mark.parametrize("kind", ["pt", "pt2"])
@pytest.mark.parametrize("damage", ["tensor", "name"])
def test_bytes_changed_in_a_zip_checkpoint_or_program_are_refused_naming_the_file(damaged, kind, damage, capsys):
    """torch reads neither a zip entry's CRC-32 nor the name its header repeats: a checkpoint or .pt2 whose
    bytes changed inside a tensor loaded as other weights, exit status 0 (one whose header name changed was a
    UnicodeDecodeError without the file's name); now each command that reads it refuses it, naming the file
    and the entry. The whole files, and one saved without CRC-32s, still load."""
    files, whole, no_crc = damaged
    path = files[kind, damage]
    what = ("does not match the CRC-32 its zip directory records: bytes changed since it was written"
            if damage == "tensor" else "the name in its header is not the directory's")
    image = os.path.join(os.path.dirname(path), "x.png")
    if not os.path.exists(image):
        from PIL import Image
        Image.new("RGB", (32, 32), (90, 120, 30)).save(image)
    for argv in (["info", path], ["predict", image, "--ckpt_file", path, "--device_target", "CPU"]):
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and path in err[0] and what in err[0], (argv, err)
    if kind == "pt":  # the reader every command of checkpoints shares (--pre_trained, --resume, --teacher ...)
        with pytest.raises(ckpt_io.CheckpointError, match=f"^checkpoint {path}: damaged: entry .*{what}"):
            ckpt_io.load_file(path)
        assert ckpt_io.load_file(whole["pt"])["model"].keys() == ckpt_io.load_file(no_crc)["model"].keys()
    else:
        from mobilenet_v1.onnx_io import ProgramModel
        assert ProgramModel(whole["pt2"]).class_num == 4


def test_a_folder_named_as_a_cifar_file_is_said_to_be_a_folder(cifar_dir, tmp_path, capsys):
    """A folder where a .bin file is expected was "4096 bytes is not a whole number of 3073-byte records"
    (CIFAR-10), or "no CIFAR-100 train.bin"."""
    batch = cifar_dir / CIFAR_TRAIN_FOLDER / "data_batch_2.bin"
    batch.unlink()
    batch.mkdir()
    with pytest.raises(DataError, match=f"^CIFAR-10 file {batch}: a folder, not a file$"):
        load_cifar(str(cifar_dir), train=True)
    assert cli.main(["data-stats", "--dataset_path", str(cifar_dir), "--dataset", "cifar10"]) == 1
    said = capsys.readouterr().err.strip()
    assert said == f"mobilenet-v1 data-stats: error: CIFAR-10 file {batch}: a folder, not a file", said
    hundred = tmp_path / "c100" / CIFAR100_FOLDER / "train.bin"
    hundred.mkdir(parents=True)
    with pytest.raises(DataError, match=f"^CIFAR-100 file {hundred}: a folder, not a file$"):
        load_cifar(str(tmp_path / "c100"), train=True, dataset="cifar100")


@pytest.mark.parametrize("text, what", [
    ("", "the file is empty"), ("# the demo's settings\n\n---\n", "nothing but comments, blank lines or nulls")])
def test_a_config_file_that_sets_nothing_is_refused_not_read_as_the_defaults(tmp_path, capsys, text, what):
    """A config file cut to nothing (or one of comments only) gave every key its default without a word: a
    train --config_path of it trained another model (224 px, width 1.0, the default epochs), export took its
    defaults."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    said = f"config file {path}: sets no key ({what}); give a YAML file of key: value lines"
    with pytest.raises(ConfigError, match=f"^{re.escape(said)}$"):
        load_config([f"--config_path={path}"])
    for command in (["lr-schedule", "--out", str(tmp_path / "lr.csv")],
                    ["export", "--ckpt_file", str(tmp_path / "none.ckpt"), "--file_name", str(tmp_path / "x")]):
        assert cli.main([*command, "--config_path", str(path)]) == 1
        assert capsys.readouterr().err.strip() == f"mobilenet-v1 {command[0]}: error: {said}", command
    assert sorted(os.listdir(tmp_path)) == ["run.yaml"]


def test_a_legacy_format_checkpoint_ending_in_bytes_like_a_zip_end_record_loads(tmp_path):
    """A checkpoint in torch's legacy format (before 1.6; ``_use_new_zipfile_serialization=False``) ends in its
    last tensor's raw bytes; where those hold what reads as a zip directory's end record (a 4-byte signature in the
    last 64 KiB, which weights can hold by chance), ``zipfile.is_zipfile`` took the file for an archive and the
    CRC-32 check refused it whole ("damaged: a zip archive that cannot be read"). As torch does, the check now
    tells a zip by its first bytes."""
    end_record = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 3, 0)
    tail = torch.frombuffer(bytearray(bytes(range(64)) + end_record), dtype=torch.uint8)
    path = str(tmp_path / "legacy.pth")
    torch.save({"model": {"tail": tail}}, path, _use_new_zipfile_serialization=False)
    assert zipfile.is_zipfile(path)  # the look-alike
    assert torch.equal(ckpt_io.load_file(path)["model"]["tail"], tail)
    assert not ckpt_io.cut_short(path) and ckpt_io.zip_damage(path) == ""


def end_records(data: bytes) -> Dict[str, int]:
    """Where a zip's zip64 end record and its locator start (torch.save writes both)."""
    return {"zip64 end": data.rindex(b"PK\x06\x06"), "locator": data.rindex(b"PK\x06\x07")}


@pytest.mark.parametrize("where", ["a name in the directory", "the directory's offset", "the count of disks"])
def test_a_checkpoint_whose_zip_directory_changed_is_refused_naming_it(damaged, tmp_path, capsys, where):
    """Bytes changed in the zip directory at a checkpoint's end: a name no longer UTF-8, the directory's offset
    past int64, the count of disks the archive spans. The CRC-32 check met them as a UnicodeDecodeError or a
    ValueError (and the cut-short check a BadZipFile), a traceback without the file's name; now each command
    refuses the file in one line naming it, and an output of that name is judged without a traceback."""
    _, whole, _ = damaged
    data = open(whole["pt"], "rb").read()
    with zipfile.ZipFile(whole["pt"]) as z:
        first = z.start_dir + 46  # the first directory entry's name, after its 46 fixed bytes
    ends = end_records(data)
    at = {"a name in the directory": first + 3, "the directory's offset": ends["zip64 end"] + 55,
          "the count of disks": ends["locator"] + 16}[where]
    path = str(tmp_path / "changed.ckpt")
    with open(path, "wb") as f:
        f.write(data[:at] + b"\xff" + data[at + 1:])
    with pytest.raises(ckpt_io.CheckpointError, match=f"^checkpoint {re.escape(path)}: "):
        ckpt_io.load_file(path)
    assert cli.main(["info", path]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path in err[0], err
    try:
        ckpt_io.check_output("DST", path)
    except ValueError as e:  # refused as a training checkpoint: said, not a traceback
        assert str(e).startswith(f"DST {path}: "), e
