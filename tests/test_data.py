import dataclasses
import hashlib
import io
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import py2_pickle
from mobilenet_v1 import transforms as T
from mobilenet_v1.checkpoint import CheckpointError, check_given
from mobilenet_v1.data import (CIFAR_TRAIN_FOLDER, CifarLoader, DataError, DataOptions, DataWarning, Holdout,
                               ImageFolderDataset, ShardSampler, build_loader, cifar_files, find_images, image_split,
                               load_cifar, is_image_name, read_cifar_bin, read_cifar_file, write_cifar_bin)


def test_cifar_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    labels = np.array([0, 9, 3, 3, 7])
    path = tmp_path / "data_batch_1.bin"
    write_cifar_bin(str(path), images, labels)
    assert path.stat().st_size == 5 * 3073
    raw = path.read_bytes()
    # record layout: label byte, then 1024 red, 1024 green, 1024 blue bytes, row-major
    assert raw[3073] == 9 and raw[3073 + 1 + 1024] == images[1, 1, 0, 0] and raw[1 + 33] == images[0, 0, 1, 1]
    x, y = read_cifar_bin(str(path))
    assert np.array_equal(x, images) and np.array_equal(y, labels)


def test_cifar_refuses_bad_size_and_bad_label(tmp_path):
    bad = tmp_path / "data_batch_1.bin"
    bad.write_bytes(b"\x00" * (3073 * 2 + 5))
    with pytest.raises(DataError, match=r"data_batch_1\.bin.*3073"):
        read_cifar_bin(str(bad))
    labels = tmp_path / "data_batch_2.bin"
    rec = bytearray(3073 * 3)
    rec[3073] = 12
    labels.write_bytes(bytes(rec))
    with pytest.raises(DataError, match=r"data_batch_2\.bin: record 1 has label 12"):
        read_cifar_bin(str(labels))


def test_cifar_folder_layouts(cifar_dir):
    x, y = load_cifar(str(cifar_dir), train=True)
    assert x.shape == (192, 3, 32, 32) and y.shape == (192,)
    x2, _ = load_cifar(str(cifar_dir / "cifar-10-batches-bin"), train=True)
    assert torch.equal(x, x2)
    xe, _ = load_cifar(str(cifar_dir / "cifar-10-verify-bin"), train=False)
    assert xe.shape[0] == 40
    with pytest.raises(DataError, match="no CIFAR-10"):
        load_cifar(str(cifar_dir.parent), train=True)
    # The seed's two folders, one given where the other split is read: the folder that holds both is named.
    for given, train, beside in (("cifar-10-batches-bin", False, "cifar-10-verify-bin"),
                                 ("cifar-10-verify-bin", True, "cifar-10-batches-bin")):
        with pytest.raises(DataError, match=rf"found; {cifar_dir / beside} beside it holds them: pass the folder "
                                            rf"that holds both, {cifar_dir}$"):
            cifar_files(str(cifar_dir / given), train)
    # The official archive unpacks both splits into cifar-10-batches-bin: its parent gives evaluation's too.
    official = cifar_dir.parent / "official"
    shutil.copytree(cifar_dir / "cifar-10-batches-bin", official / "cifar-10-batches-bin")
    shutil.copy(cifar_dir / "cifar-10-verify-bin" / "test_batch.bin", official / "cifar-10-batches-bin")
    assert cifar_files(str(official), False) == [str(official / "cifar-10-batches-bin" / "test_batch.bin")]
    assert [os.path.basename(f) for f in cifar_files(str(official), True)] == ["data_batch_1.bin", "data_batch_2.bin"]


def test_cifar_files_of_other_names_never_take_the_other_splits_files(tmp_path):
    """Without test_batch.bin, evaluation used to read every .bin file, the training batches included."""
    images, labels = np.zeros((2, 3, 32, 32), np.uint8), np.zeros(2, np.int64)
    for name in ("data_batch_1.bin", "data_batch_2.bin", "my_test.bin"):
        write_cifar_bin(str(tmp_path / name), images, labels)
    assert [os.path.basename(f) for f in cifar_files(str(tmp_path), True)] == ["data_batch_1.bin", "data_batch_2.bin"]
    with pytest.warns(DataWarning, match="no test_batch.bin; reading every other .bin file there for evaluation: "
                                         "my_test.bin"):
        assert [os.path.basename(f) for f in cifar_files(str(tmp_path), False)] == ["my_test.bin"]
    # CIFAR-10's records under CIFAR-100's split names (train.bin, test.bin): each file read for its own split
    # (both were read for both, the test images trained on and the training ones evaluated).
    other = tmp_path / "as100"
    other.mkdir()
    for name in ("train.bin", "test.bin"):
        write_cifar_bin(str(other / name), images, labels)
    for train, name in ((True, "train.bin"), (False, "test.bin")):
        with pytest.warns(DataWarning, match=f"reading every other .bin file there for .*: {name}$"):
            assert [os.path.basename(f) for f in cifar_files(str(other), train)] == [name]
    # One of the two alone: the other split's file by its name, said so where the split is asked for (helper-289).
    (other / "test.bin").unlink()
    with pytest.raises(DataError, match=r"no CIFAR-10 .bin files \(test_batch.bin\) found; train.bin there is taken "
                                        r"for the training split's file, by its name \(CIFAR-100's\), and not read for "
                                        r"evaluation$"):
        cifar_files(str(other), False)


def test_a_cifar_path_that_holds_no_bin_files_says_what_it_is_and_what_to_pass(cifar_dir, tmp_path):
    """A .bin file, the archive as downloaded, the Python version or an archive not unpacked were each
    "is not a folder" or "no CIFAR-10 .bin files found", saying neither what the path was nor what to pass."""
    batches = cifar_dir / CIFAR_TRAIN_FOLDER
    with pytest.raises(DataError, match=rf"data_batch_1\.bin' is one \.bin file: pass the folder that holds it, "
                                        rf"{batches} \(its data_batch_\*\.bin and test_batch\.bin"):
        load_cifar(str(batches / "data_batch_1.bin"), True)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(b"\x1f\x8b")
    with pytest.raises(DataError, match=r"is an archive, which is not read as it is: unpack it \(tar -xf .* and "
                                        rf"pass the folder it unpacks to \({tmp_path / CIFAR_TRAIN_FOLDER} for"):
        load_cifar(str(archive), True)
    with pytest.raises(DataError, match=r"holds cifar-10-binary.tar.gz, not unpacked: tar -xf"):
        load_cifar(str(tmp_path), False)
    with pytest.raises(DataError, match=r"'.*nowhere' does not exist$"):
        load_cifar(str(tmp_path / "nowhere"), True)
    # The Python versions (pickles) without the split read, or the other CIFAR's: the folder that holds one,
    # and one itself.
    py = tmp_path / "py" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    (py / "data_batch_1").write_bytes(b"\x80")
    for root in (py.parent, py):
        with pytest.raises(DataError, match=r"no CIFAR-10 .bin files \(test_batch.bin\) found: its Python version "
                                            r"\(pickles, cifar-10-batches-py\) is there, without this split's "
                                            r"\(data_batch_1 ... and test_batch\)"):
            load_cifar(str(root), False)
        with pytest.raises(DataError, match=r"no CIFAR-100 train.bin .*: it holds CIFAR-10's Python version "
                                            r"\(pickles, cifar-10-batches-py\): --dataset cifar10"):
            load_cifar(str(root), True, "cifar100")
    with pytest.raises(DataError, match=r"data_batch_1' is one file of CIFAR's Python version: pass the folder "
                                        rf"that holds it, {py} \(its data_batch_1 ... and test_batch are"):
        load_cifar(str(py / "data_batch_1"), True)
    hundred = tmp_path / "cifar-100-python"
    hundred.mkdir()
    for name in ("train", "test", "meta"):
        (hundred / name).write_bytes(b"\x80")
    for root in (tmp_path, hundred):
        with pytest.raises(DataError, match=r"no CIFAR-10 .bin files.*: it holds CIFAR-100's Python version "
                                            r"\(pickles, cifar-100-python\): --dataset cifar100"):
            load_cifar(str(root), True)
    # The official archive's folder without its test_batch.bin: the sub-folder looked in is named, since
    # "no CIFAR-10 .bin files" of a folder holding five reads as the wrong folder given.
    official = tmp_path / "official"
    shutil.copytree(batches, official / CIFAR_TRAIN_FOLDER)
    with pytest.raises(DataError, match=rf"no CIFAR-10 .bin files \(test_batch.bin\) found \(nor in "
                                        rf"{official / CIFAR_TRAIN_FOLDER}\)$"):
        load_cifar(str(official), False)


def write_cifar_py(folder, files, names_file, names_key, names, cifar100=False):
    """CIFAR's Python version in ``folder``: ``files`` maps a file name to (images, labels), written as Python
    2 pickled them (CIFAR-100's with coarse labels beside the fine ones), and ``names`` as its names pickle."""
    folder.mkdir(parents=True)
    for name, (x, y) in files.items():
        content = {"batch_label": f"{name} of the test", "data": x.reshape(len(x), -1),
                   "filenames": [f"img_{i}.png" for i in range(len(y))]}
        if cifar100:
            content.update(fine_labels=[int(v) for v in y], coarse_labels=[int(v) % 20 for v in y])
        else:
            content["labels"] = [int(v) for v in y]
        (folder / name).write_bytes(py2_pickle(content))
    (folder / names_file).write_bytes(py2_pickle({names_key: names, "num_vis": 3072}))


def test_cifars_python_version_reads_as_the_binary_one(cifar_dir, tmp_path, capsys):
    """torchvision's CIFAR10 and CIFAR100 download the Python version (pickles, cifar-10-batches-py), which
    was refused: the same images and labels as the binary version's, its names and record names, through
    every command; a pickle naming any other global than numpy's array rebuilding is refused unrun."""
    from mobilenet_v1 import cli
    from mobilenet_v1.data import cifar_class_names, cifar_record_names, other_cifar

    batches = cifar_dir / CIFAR_TRAIN_FOLDER
    split = {f"data_batch_{k}": read_cifar_bin(str(batches / f"data_batch_{k}.bin")) for k in (1, 2)}
    split["test_batch"] = read_cifar_bin(str(cifar_dir / "cifar-10-verify-bin" / "test_batch.bin"))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    py = tmp_path / "tv" / "cifar-10-batches-py"  # torchvision's root holds it
    write_cifar_py(py, split, "batches.meta", "label_names", names)
    for root in (py.parent, py):
        for train in (True, False):
            with warnings.catch_warnings():  # none: numpy 2.4 warns of an align of 0 (the files') with a dtype
                warnings.simplefilter("error")
                x, y = load_cifar(str(root), train)
            x0, y0 = load_cifar(str(cifar_dir), train)
            assert torch.equal(x, x0) and torch.equal(y, y0) and x.dtype == torch.uint8 and y.dtype == torch.int64
        assert cifar_class_names(str(root), False) == names
        assert cifar_record_names(str(root), True)[95:97] == ["data_batch_1#95", "data_batch_2#0"]
    stats = []
    (batches / "batches.meta.txt").write_text("\n".join(names) + "\n")  # the binary version's names
    for root in (cifar_dir, py.parent):
        assert cli.main(["data-stats", "--dataset=cifar10", f"--dataset_path={root}", "--json"]) == 0
        stats.append(json.loads(capsys.readouterr().out))
        stats[-1].pop("dataset_path")
    assert stats[0] == stats[1] and stats[0]["images"] == 2 * 96
    # CIFAR-100's: train, test and meta in cifar-100-python, fine labels read.
    fine = np.arange(30) % 7 * 14
    hundred = tmp_path / "c100" / "cifar-100-python"
    write_cifar_py(hundred, {"train": (split["test_batch"][0][:30], fine), "test": (split["test_batch"][0][:5],
                                                                                  fine[:5])},
                   "meta", "fine_label_names", [f"c{i}" for i in range(100)], cifar100=True)
    x, y = load_cifar(str(hundred.parent), True, "cifar100")
    assert torch.equal(y, torch.from_numpy(fine)) and torch.equal(x, torch.from_numpy(split["test_batch"][0][:30]))
    assert cifar_class_names(str(hundred), False, "cifar100")[:2] == ["c0", "c1"]
    # Each named as the other's where the other is asked for (a CIFAR-100 model given CIFAR-10's, ...).
    assert other_cifar(str(py.parent), "cifar100") == "cifar10" and other_cifar(str(hundred), "cifar10") == "cifar100"
    with pytest.raises(DataError, match=rf"CIFAR-10 file {hundred / 'train'}: no 'labels' in it: a CIFAR-100 file\? "
                                        r"\(--dataset cifar100\)"):
        read_cifar_file(str(hundred / "train"))
    # A crafted pickle is refused, its call not made; a damaged one named.
    marker = tmp_path / "ran"
    (py / "data_batch_1").write_bytes(pickle.dumps(Crafted(str(marker)), protocol=2))
    with pytest.raises(DataError, match=rf"CIFAR file {py / 'data_batch_1'}: not a file of CIFAR's Python version "
                                        r"\(UnpicklingError: it names (posix|nt|os)\.mkdir, which a CIFAR file does "
                                        r"not hold\)"):
        load_cifar(str(py), True)
    assert not marker.exists()
    one = {"labels": [1], "data": split["test_batch"][0][:1].reshape(1, -1)}
    (py / "data_batch_1").write_bytes(py2_pickle(one)[:-40])
    with pytest.raises(DataError, match=rf"CIFAR file {py / 'data_batch_1'}: not a file of CIFAR's Python version"):
        load_cifar(str(py), True)
    # Labels that are not whole numbers (floats, text, truth values) refused, not cut to the ones below them.
    for labels in ([1.5], ["1"], [True]):
        (py / "data_batch_1").write_bytes(pickle.dumps({**one, "labels": labels}, protocol=2))
        with pytest.raises(DataError, match=rf"CIFAR-10 file {py / 'data_batch_1'}: its 'labels' are not whole "
                                            r"numbers \((float64|<U1|bool)\)"):
            load_cifar(str(py), True)


def test_a_damaged_file_of_cifars_python_version_is_named_not_left_out(cifar_dir, tmp_path):
    """An empty or damaged data_batch_N, test_batch, train or test of the Python version was not a pickle, so
    not one of the split's files: training went on a batch short without a word (or said data_batch_3 missing,
    though it was there), and a damaged test file read as a folder without the split. Each is named now."""
    x, y = read_cifar_bin(str(cifar_dir / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"))
    py = tmp_path / "cifar-10-batches-py"
    write_cifar_py(py, {f"data_batch_{k}": (x, y) for k in (1, 2, 3)} | {"test_batch": (x, y)}, "batches.meta",
                   "label_names", [str(i) for i in range(10)])
    assert len(load_cifar(str(py), True)[1]) == 3 * len(y)
    for name, damage, what in (("data_batch_3", b"", "empty \\(0 bytes\\)"),
                               ("data_batch_2", b"PK\x03\x04", "not a pickle, as the files of CIFAR's Python version "
                                                                 "are \\(damaged, or another file\\)"),
                               ("test_batch", b"", "empty")):
        kept = (py / name).read_bytes()
        (py / name).write_bytes(damage)
        with pytest.raises(DataError, match=rf"^CIFAR-10 file {py / name}: {what}"):
            load_cifar(str(tmp_path), name != "test_batch")
        (py / name).write_bytes(kept)
    hundred = tmp_path / "c100" / "cifar-100-python"
    write_cifar_py(hundred, {"train": (x, y), "test": (x, y)}, "meta", "fine_label_names",
                   [f"c{i}" for i in range(100)], cifar100=True)
    (hundred / "test").write_bytes(b"")
    with pytest.raises(DataError, match=rf"^CIFAR-100 file {hundred / 'test'}: empty"):
        load_cifar(str(hundred.parent), False, "cifar100")
    # A folder whose files of those names are none of them pickles is not the Python version's: no data there.
    (hundred / "train").write_bytes(b"")
    with pytest.raises(DataError, match="no CIFAR-100 test.bin"):
        load_cifar(str(hundred.parent), False, "cifar100")


class Crafted:
    """A pickle that calls a function when loaded: os.mkdir(path)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_pickle_making_numpy_arrays_of_objects_from_its_bytes_is_refused(tmp_path):
    """The allowed numpy names built arrays of dtype object whose items were pointers read from the file:
    numpy.ndarray called over its bytes, or a dtype('O') whose state (BUILD) cleared the flags that make numpy
    refuse raw bytes for objects. Reading the labels crashed the process (a segfault, no message), a pointer of
    the file's followed. Those, _frombuffer of objects and a dtype of numbers given fields are refused as files
    that are not CIFAR's, nothing followed."""
    def labels_made_by(ops: bytes) -> bytes:  # a CIFAR-10 file of one image whose 'labels' pickle opcodes make
        return py2_pickle({"data": np.zeros((1, 3072), np.uint8)})[:-2] + b"U\x06labels" + ops + b"u."

    pointers = b"C\x08AAAAAAAA"  # 8 bytes (SHORT_BINBYTES) read as a pointer
    objects = b"cnumpy\ndtype\nU\x02O8\x89\x88\x87R"  # dtype('O8', False, True)
    payloads = {
        "ndarray": b"cnumpy\nndarray\n(K\x01\x85U\x01O" + pointers + b"tR",  # numpy.ndarray((1,), 'O', buffer)
        "flags": (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x01\x85"
                  + objects + b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + pointers + b"tb"),
        "frombuffer": b"cnumpy.core.numeric\n_frombuffer\n(" + pointers + objects + b"K\x01\x85U\x01CtR",
        "fields": (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x01\x85"
                   b"cnumpy\ndtype\nU\x02u8\x89\x88\x87R(K\x03U\x01|N(U\x01atq\x00}U\x01a(U\x01xK\x00tsK\x08K\x01"
                   b"K\x00tb\x89" + pointers + b"tb"),  # a dtype of numbers given fields that are not dtypes
    }
    for name, ops in payloads.items():
        (tmp_path / name).write_bytes(labels_made_by(ops))
    code = ("import sys; from mobilenet_v1.data import DataError, read_cifar_file\n"
            "for path in sys.argv[1:]:\n    try:\n        read_cifar_file(path)\n        print('read', path)\n"
            "    except DataError as e:\n        print('refused:', e)\n")
    done = subprocess.run([sys.executable, "-c", code, *(str(tmp_path / name) for name in payloads)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "src")})
    assert done.returncode == 0, done  # -11: a segfault
    said = done.stdout.splitlines()
    assert len(said) == len(payloads), done
    for line, name in zip(said, payloads):
        assert line.startswith(f"refused: CIFAR file {tmp_path / name}: not a file of CIFAR's Python version "
                               f"(UnpicklingError: "), line


def test_a_gap_in_the_training_batches_numbers_is_warned_of(cifar_dir):
    """data_batch_3.bin of the five lost: training went on with four fifths of the data, said nowhere."""
    batches = cifar_dir / CIFAR_TRAIN_FOLDER
    shutil.copy(batches / "data_batch_2.bin", batches / "data_batch_4.bin")
    with pytest.warns(DataWarning, match=r"data_batch_3.bin missing \(found data_batch_1.bin, data_batch_2.bin, "
                                         r"data_batch_4.bin\); training reads the 3 there"):
        assert len(load_cifar(str(cifar_dir), True)[1]) == 3 * 96
    (batches / "data_batch_4.bin").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1 and 2 only, or the evaluation split: nothing to say
        load_cifar(str(cifar_dir), True)
        load_cifar(str(cifar_dir), False)
    # The official data set's files (10,000 records each) without the last ones: 1 and 2 of its 5 said (files of
    # that size, made sparse: only their sizes are looked at).
    official = cifar_dir / "official"
    official.mkdir()
    for k in (1, 2):
        with open(official / f"data_batch_{k}.bin", "wb") as f:
            f.truncate(10_000 * 3073)
    with pytest.warns(DataWarning, match=r"data_batch_3.bin, data_batch_4.bin, data_batch_5.bin missing \(found "
                                         r"data_batch_1.bin, data_batch_2.bin\); training reads the 2 there"):
        cifar_files(str(official), True)
    # A copy's name the pattern takes (data_batch_*.bin) is read, and said: its images were counted twice, unsaid.
    shutil.copy(batches / "data_batch_1.bin", batches / "data_batch_1 (1).bin")
    with pytest.warns(DataWarning, match=r"data_batch_1 \(1\).bin read as training data too, beside "
                                         r"data_batch_1.bin, data_batch_2.bin \(a copy's name\?"):
        assert len(load_cifar(str(cifar_dir), True)[1]) == 3 * 96


def test_cifar_loader_batches_drop_last_and_shuffle_by_seed(cifar_dir):
    opts = DataOptions("cifar10", str(cifar_dir), batch_size=50, image_size=64, seed=1, num_workers=0,
                       channels_last=False)
    loader = build_loader(opts, train=True, device=torch.device("cpu"))
    assert len(loader) == 3  # 192 // 50, last partial batch dropped
    batches = list(loader)
    assert all(x.shape == (50, 3, 64, 64) and x.dtype == torch.float32 for x, _ in batches)
    again = [y for _, y in build_loader(opts, train=True, device=torch.device("cpu"))]
    assert all(torch.equal(a, b) for a, b in zip(again, [y for _, y in batches]))
    loader.set_epoch(1)
    assert not torch.equal(next(iter(loader))[1], batches[0][1])
    ev = build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False)
    assert sum(y.numel() for _, y in ev) == 40  # every eval sample counted


@pytest.mark.parametrize("kind", ["cifar", "cpu", "gpu"])
def test_the_seeds_eval_count_is_the_same_images_whatever_the_process_count(cifar_dir, image_folder, kind):
    """eval_drop_last (the seed's count) over 2 or 3 shards evaluates the images one process evaluates, each
    once: each shard dropped its own last partial batch, so the count changed with the processes (helper-109:
    352, 320, 288 of 359 images for 1, 2, 3)."""
    dataset, path, batch = ("cifar10", cifar_dir, 16) if kind == "cifar" else ("imagenet2012", image_folder, 4)
    opts = DataOptions(dataset, str(path), batch_size=batch, image_size=32, seed=1, num_workers=0,
                       channels_last=False, pipeline="gpu" if kind == "gpu" else "cpu")
    cpu = torch.device("cpu")
    one = build_loader(opts, train=False, device=cpu, drop_last=True)
    expected = [name for _, name in one.sample_names()][:len(one) * batch]
    labels = torch.cat([y for _, y in one])
    assert len(expected) == len(labels) == (32 if kind == "cifar" else 4)
    for shards in (2, 3):
        loaders = [build_loader(opts, train=False, device=cpu, drop_last=True, num_shards=shards, shard_id=k)
                   for k in range(shards)]
        names = [name for loader in loaders for _, name in loader.sample_names()]
        assert sorted(names) == sorted(expected)
        assert sum(y.numel() for loader in loaders for _, y in loader) == len(expected)
    # A split smaller than one batch: one process evaluates nothing, and so do the shards (helper-113).
    whole = dataclasses.replace(opts, batch_size=64)
    assert sum(len(build_loader(whole, train=False, device=cpu, drop_last=True, num_shards=shards, shard_id=k))
               for shards in (1, 2) for k in range(shards)) == 0


def test_cifar_eval_transform_is_resize_and_normalize(cifar_dir):
    images, labels = load_cifar(str(cifar_dir), train=False)
    loader = CifarLoader(images, labels, 8, train=False, image_size=32, device=torch.device("cpu"), seed=1,
                         drop_last=False)
    x, y = next(iter(loader))
    mean = torch.tensor(T.CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(T.CIFAR_STD).view(1, 3, 1, 1)
    expect = (images[:8].float() / 255 - mean) / std
    torch.testing.assert_close(x, expect, rtol=1e-5, atol=1e-5)
    assert torch.equal(y, labels[:8])


def test_crop_at_is_the_shifted_window_of_the_zero_padded_image():
    x = torch.arange(3 * 1 * 6 * 6, dtype=torch.uint8).view(3, 1, 6, 6) + 1
    dy, dx = torch.tensor([0, 4, 2]), torch.tensor([3, 0, 4])
    out = T.crop_at(x, 2, dy, dx)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(3):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 6, dx[i]:dx[i] + 6])


def test_seeded_uniform_depends_on_the_seed_alone_and_flips_about_half():
    seeds = torch.arange(4000, dtype=torch.int64) * 7919 + 11
    u = T.seeded_uniform(seeds, 3)
    assert u.shape == (4000, 3) and float(u.min()) >= 0.0 and float(u.max()) < 1.0
    torch.testing.assert_close(T.seeded_uniform(seeds[1234:1300].flip(0), 3), u[1234:1300].flip(0), rtol=0, atol=0)
    assert 0.45 < (u[:, 2] < 0.5).float().mean().item() < 0.55
    assert abs(torch.corrcoef(u.T)[0, 1].item()) < 0.05  # the columns are not the same numbers
    x = torch.arange(4).view(1, 1, 1, 4).repeat(4000, 1, 1, 1)
    out = T.flip_where(x, u[:, 2] < 0.5)
    assert torch.equal(out[:, 0, 0, 0] == 3, u[:, 2] < 0.5)


def test_shard_sampler_disjoint_and_covering():
    shards = [ShardSampler(103, shuffle=True, seed=1, num_shards=3, shard_id=r, even=False) for r in range(3)]
    parts = [[i for i, _ in s] for s in shards]
    assert sorted(sum(parts, [])) == list(range(103))
    even = [ShardSampler(103, shuffle=True, seed=1, num_shards=3, shard_id=r, even=True) for r in range(3)]
    assert all(len(list(s)) == 34 == len(s) for s in even)


def test_repeated_augmentation_draws_each_image_r_times_with_seeds_of_its_own():
    """aug_repeats R: an epoch keeps its N positions, N / R images R times each, the copies in a row; with
    R shards one copy goes to each at the same place of its shard (the same step); each copy keeps its
    own position's augmentation seed, and the seeds are those the pipelines' seeds() give."""
    one = ShardSampler(99, shuffle=True, seed=4, repeats=3)
    one.set_epoch(2)
    order = [i for i, _ in one]
    assert len(order) == len(one) == 99 and len(set(order)) == 33
    assert all(order[3 * k] == order[3 * k + 1] == order[3 * k + 2] for k in range(33))
    assert [s for _, s in one] == one.seeds().tolist() and len({s for _, s in one}) == 99
    plain = ShardSampler(99, shuffle=True, seed=4)
    plain.set_epoch(2)
    assert order[::3] == [i for i, _ in plain][:33]  # the permutation's first N / R, each R times
    shards = [ShardSampler(99, shuffle=True, seed=4, num_shards=3, shard_id=r, repeats=3) for r in range(3)]
    for s in shards:
        s.set_epoch(2)
    parts = [[i for i, _ in s] for s in shards]
    assert parts[0] == parts[1] == parts[2] == order[::3]  # each image once per shard, at the same step
    assert sorted(s for sh in shards for _, s in sh) == sorted(s for _, s in one)  # the same seeds, spread
    uneven = ShardSampler(100, shuffle=True, seed=4, repeats=3)
    assert len(list(uneven)) == 100 and len({i for i, _ in uneven}) == 34  # the last image's third copy cut
    with pytest.raises(ValueError, match="repeats is for training"):
        ShardSampler(10, shuffle=False, seed=1, even=False, repeats=2)


def test_aug_repeats_puts_differently_augmented_copies_in_a_batch_in_both_data_sets(cifar_dir, image_folder):
    """The loaders of both data sets with --aug_repeats 2: rows 2k and 2k+1 of a training batch are one
    image (one label) augmented twice, differently; evaluation is left as it is."""
    from mobilenet_v1.config import load_config
    from mobilenet_v1.train import data_options

    for dataset, path in (("cifar10", cifar_dir), ("imagenet2012", image_folder)):
        cfg = load_config([f"--dataset={dataset}", f"--dataset_path={path}", "--batch_size=6", "--image_size=32",
                           "--num_workers=0", "--aug_repeats=2", "--class_num=4"])
        with build_loader(data_options(cfg), True, torch.device("cpu")) as loader:
            loader.set_epoch(1)
            x, y = next(iter(loader))
        assert torch.equal(y[0::2], y[1::2]) and len(set(y[0::2].tolist())) > 1
        assert all(not torch.equal(x[2 * k], x[2 * k + 1]) for k in range(3))
        with build_loader(data_options(cfg, train=False), False, torch.device("cpu"),
                          drop_last=False) as loader:
            assert loader.sampler.repeats == 1 and sum(len(y) for _, y in loader) == loader.num_samples


@pytest.mark.parametrize("repeats", [192, 193, 2 ** 63, 10 ** 20])
def test_aug_repeats_above_the_training_samples_is_refused_naming_it(repeats, cifar_dir):
    """aug_repeats of the training samples or more made every epoch copies of one image (192 of 192 too), and
    from int64's limit on a traceback at the first epoch (the index tensor took aug_repeats entries); 192
    samples take 191: two images an epoch."""
    from mobilenet_v1.config import ConfigError, load_config
    from mobilenet_v1.train import data_options

    base = [f"--dataset_path={cifar_dir}", "--batch_size=16", "--image_size=32", "--num_workers=0", "--class_num=4"]
    if repeats > 2 ** 31 - 1:  # past any count: refused with the options, before the data is read
        with pytest.raises(ConfigError, match=f"aug_repeats {repeats} is above 2,147,483,647"):
            load_config(base + [f"--aug_repeats={repeats}"])
        return
    cfg = load_config(base + [f"--aug_repeats={repeats}"])
    with pytest.raises(ConfigError, match=f"^aug_repeats {repeats} is not below the 192 training samples: every "
                                          f"epoch would train on copies of one"):
        build_loader(data_options(cfg), True, torch.device("cpu"))
    with build_loader(data_options(load_config(base + ["--aug_repeats=191"])), True,
                      torch.device("cpu")) as loader:
        loader.set_epoch(0)
        assert len({i for i, _ in loader.sampler}) == 2


@pytest.mark.parametrize("seed", [1, 920_000, 1_000_000, 2_000_000, 2**32 - 1])
def test_shard_sampler_seeds_as_int64_for_every_accepted_seed(seed, cifar_dir):
    """The CIFAR path takes its per-sample seeds as one int64 tensor, the folder pipelines one Python int
    at a time: the same numbers wherever they fit in int64, the same modulo 2**64 beyond, for every run
    seed the configuration takes (up to 2**32 - 1). Run seeds over about 1.84 million used to stop the
    CIFAR path with an OverflowError."""
    sampler = ShardSampler(50, shuffle=True, seed=seed, num_shards=3, shard_id=2)
    sampler.set_epoch(5)
    yielded = [s for _, s in sampler]
    wrapped = [(s + 2**63) % 2**64 - 2**63 for s in yielded]
    assert sampler.seeds().dtype == torch.int64 and sampler.seeds().tolist() == wrapped
    assert (wrapped == yielded) == (seed <= 920_000)
    loader = CifarLoader(*load_cifar(str(cifar_dir), True), batch_size=8, train=True, image_size=32,
                         device=torch.device("cpu"), seed=seed)
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 32, 32) and torch.isfinite(x).all()


def test_image_folder_decodes_gray_cmyk_and_png_to_rgb(image_folder):
    samples, classes = find_images(str(image_folder / "train"))
    assert classes == ["n01", "n02"] and len(samples) == 15
    ds = ImageFolderDataset(samples, train=True, image_size=48)
    names = {p.split("/")[-1]: i for i, (p, _) in enumerate(samples)}
    for name in ("gray.JPEG", "cmyk.JPEG", "png_named.JPEG", "img_0.JPEG"):
        img, label = ds[(names[name], 7)]
        assert img.shape == (3, 48, 48) and img.dtype == torch.uint8
        if name != "img_0.JPEG":
            assert label == 0  # the odd files sit in class folder n01
    gray, _ = ds[(names["gray.JPEG"], 7)]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "PPM"])  # PIL writes a grayscale PPM as PGM (P5)
def test_16_bit_images_decode_to_their_top_8_bits(fmt):
    """torchvision decodes a 16-bit PNG to uint16 and PIL's convert("RGB") clips a 16-bit TIFF at 255:
    both come out as uint8 RGB holding the top 8 bits, as an 8-bit copy of the picture would."""
    import io

    from PIL import Image

    ramp = np.linspace(0, 65535, 32 * 48).reshape(32, 48).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format=fmt)
    img = T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8), f"ramp.{fmt}")
    assert img.dtype == torch.uint8 and img.shape == (3, 32, 48)
    expected = torch.from_numpy((ramp >> 8).astype(np.uint8))
    assert all(torch.equal(img[c], expected) for c in range(3))
    assert is_image_name(f"ramp.{'pgm' if fmt == 'PPM' else fmt.lower()}")  # a folder's file (helper-111: .pgm was not)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "PPM"])
def test_dark_16_bit_images_decode_to_their_top_8_bits_too(fmt):
    """A 16-bit image whose values all lie below 256 (a dark picture) is as dark in 8 bits: PIL reads a
    16-bit PGM as mode "I", which was shifted only where some value passed 255 (256 times too bright)."""
    import io

    from PIL import Image

    dark = (np.arange(32 * 48).reshape(32, 48) % 200 + 50).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(dark).save(buf, format=fmt)
    img = T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8), f"dark.{fmt}")
    assert img.shape == (3, 32, 48) and int(img.max()) == 0  # 249 >> 8


def test_a_float_tiff_on_the_0_1_scale_decodes_as_its_picture_not_black():
    """A 32-bit float grayscale TIFF (PIL mode F) of values 0 to 1: convert("RGB") clipped it to black, and
    predict gave it a confident class (helper-242). It decodes as the 8-bit picture of those values; one on the
    0-255 scale as PIL converts it."""
    import io

    from PIL import Image

    ramp = np.linspace(0, 1, 32 * 48).reshape(32, 48).astype(np.float32)
    for values, expected in ((ramp, np.rint(ramp * 255)), (ramp * 200 + 2, np.rint(ramp * 200 + 2))):
        buf = io.BytesIO()
        Image.fromarray(values).save(buf, format="TIFF")  # float32: mode F
        img = T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8), "ramp.tif")
        assert img.shape == (3, 32, 48) and all(
            np.abs(img[c].numpy().astype(int) - expected).max() <= 1 for c in range(3))


def test_a_huge_or_sparse_file_named_as_an_image_is_unreadable_without_being_read(tmp_path):
    """A 50 GB sparse z.jpg (or a video, a disk image named as a picture) was read whole into memory, copied, and
    ended the command in "out of memory ... a smaller batch_size", naming no file (helper-361). One larger than any
    image within the pixel limit holds, or large and starting as no image format, is an unreadable file, named;
    a large one that starts as an image is read."""
    from mobilenet_v1.data import SNIFF_FILE_BYTES, file_bytes

    limit = T.pixel_limit()
    huge, blank, large = tmp_path / "z.jpg", tmp_path / "blank.jpg", tmp_path / "large.bmp"
    with open(huge, "wb") as f:  # sparse: no disk taken
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(8 * limit + SNIFF_FILE_BYTES + 1)
    with open(blank, "wb") as f:
        f.truncate(SNIFF_FILE_BYTES + 1)
    with open(large, "wb") as f:
        f.write(b"BM")
        f.truncate(SNIFF_FILE_BYTES + 1)
    with pytest.raises(OSError, match=r"more than any image of up to [\d,]+ pixels holds") as e:
        file_bytes(str(huge))
    assert e.value.filename == str(huge)
    with pytest.raises(OSError, match=r"[\d,]+ bytes that start as no image format") as e:
        file_bytes(str(blank))
    assert e.value.filename == str(blank)
    assert len(file_bytes(str(large))) == SNIFF_FILE_BYTES + 1


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_class_folders_that_are_one_folder_through_a_link_are_said(tmp_path):
    """train/fox -> cat: each class folder was walked as a class of its own, and cat's images trained under two
    labels without a word (helper-361). Said, as are a class folder inside another; folders linked to distinct
    places (the data on another disk) are not."""
    from mobilenet_v1.data import find_images

    root = tmp_path / "train"
    for name in ("cat", "dog", "elsewhere/owl"):
        (root / name).mkdir(parents=True)
        (root / name / "a.bmp").write_bytes(_bmp(np.full((8, 8, 3), 90, np.uint8)))
    os.symlink(root / "cat", root / "fox")
    os.symlink(root / "dog", root / "dog2")
    os.symlink(tmp_path / "train" / "elsewhere" / "owl", root / "owl")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        find_images(str(root))
    linked = [str(w.message) for w in said if "symbolic links" in str(w.message)]
    assert len(linked) == 1 and ("class folders cat and fox are one folder; dog and dog2 are one folder; owl is "
                                 "inside elsewhere (through symbolic links)") in linked[0], linked
    os.remove(root / "fox")
    os.remove(root / "dog2")
    os.remove(root / "owl")
    shutil.rmtree(root / "elsewhere")
    (tmp_path / "disk" / "owl").mkdir(parents=True)
    (tmp_path / "disk" / "owl" / "a.bmp").write_bytes(_bmp(np.full((8, 8, 3), 90, np.uint8)))
    os.symlink(tmp_path / "disk" / "owl", root / "owl")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        find_images(str(root))
    assert not [w for w in said if "symbolic links" in str(w.message)]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_listing_many_class_folders_looks_up_the_folders_above_them_once(tmp_path, monkeypatch):
    """Each class folder's path was resolved (realpath: an lstat a folder of the path, twice) and every folder above
    it stat'ed, for each class: 16 calls a class here, 350,000 for ImageNet-21k's 21,841 classes (a round trip
    each on NFS) to list 109,205 files (helper-412). Those above are looked up once; a class folder that is a link
    still has its own (here: owl/back, a link to the folder above owl, is a loop, and stray.png is not read)."""
    from mobilenet_v1.data import find_images

    root = tmp_path / "train"
    classes = [f"n{i:08d}" for i in range(40)]
    for name in classes:
        (root / name).mkdir(parents=True)
        (root / name / "a.png").write_bytes(b"png")
    (tmp_path / "disk" / "owl").mkdir(parents=True)
    (tmp_path / "disk" / "owl" / "b.png").write_bytes(b"png")
    (tmp_path / "disk" / "stray.png").write_bytes(b"png")
    os.symlink("..", tmp_path / "disk" / "owl" / "back")
    os.symlink(tmp_path / "disk" / "owl", root / "owl")
    calls = {"stat": 0, "lstat": 0}
    for name in calls:
        def counted(*args, _real=getattr(os, name), _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(os, name, counted)
    samples, found = find_images(str(root))
    monkeypatch.undo()
    assert found == classes + ["owl"]
    assert [os.path.relpath(p, root) for p, _ in samples] == [f"{c}/a.png" for c in classes] + ["owl/b.png"]
    depth = len(root.resolve().parts)
    # A stat a folder walked, an lstat or two a class (is it a link?), the folders above root a few times over
    assert calls["stat"] + calls["lstat"] <= 4 * len(classes) + 8 * depth, calls


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_a_named_pipe_named_as_an_image_is_an_unreadable_file_not_a_hang(tmp_path, pipeline):
    """open() of a named pipe waits for a writer: a FIFO called x.jpg in a class folder (or a link to one,
    or to /dev/zero, which never ends) stopped the loader for good. It is skipped, named, as unreadable."""
    import threading

    root = tmp_path / "folder"
    (root / "a").mkdir(parents=True)
    for i in range(2):
        (root / "a" / f"ok{i}.bmp").write_bytes(_bmp(np.full((20, 20, 3), 90, np.uint8)))
    pipe = root / "a" / "pipe.jpg"
    os.mkfifo(pipe)
    opts = DataOptions("imagenet2012", str(root), batch_size=4, image_size=16, seed=1, num_workers=0,
                       channels_last=False, max_bad_samples=5, pipeline=pipeline)
    done = []

    def read_all():
        with build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False) as loader:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                sizes = [len(y) for _, y in loader]
            done.append((sizes, dict(loader.bad_samples.files)))
            done.append([str(w.message) for w in said if "pipe.jpg" in str(w.message)])

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(30)
    hung = reader.is_alive()
    if hung:  # let the reader go: a writer opens the pipe and closes it
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert not hung
    assert done[0] == ([2], {str(pipe): f"{pipe}: a named pipe, not a regular file: not read"})
    assert len(done[1]) == 1 and "a named pipe, not a regular file" in done[1][0]


def _one_worker_loader(tmp_path):
    """An evaluation loader of 8 small images with one (persistent) worker."""
    root = tmp_path / "folder"
    (root / "a").mkdir(parents=True)
    for i in range(8):
        (root / "a" / f"{i}.bmp").write_bytes(_bmp(np.full((20, 20, 3), 10 * i, np.uint8)))
    opts = DataOptions("imagenet2012", str(root), batch_size=2, image_size=16, seed=1, num_workers=1,
                       channels_last=False)
    return build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False)


def test_closing_a_loader_ends_a_worker_that_is_stopped(tmp_path, monkeypatch):
    """A worker stopped (SIGSTOP, a read stalled for good) takes PyTorch's SIGTERM only once continued: a run stopped
    by SIGTERM during an evaluation saved its checkpoint and then waited for that worker at the interpreter's exit
    for ever (helper-373). Closing the loader kills it."""
    import signal

    loader = _one_worker_loader(tmp_path)
    assert len([y for _, y in loader]) == 4  # a pass: its persistent worker waits for the next
    worker = loader.loader._iterator._workers[0]
    os.kill(worker.pid, signal.SIGSTOP)
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.5)  # PyTorch's waits, 5 s each
    try:
        start = time.monotonic()
        loader.close()
        assert not worker.is_alive() and time.monotonic() - start < 30
    finally:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)


def test_an_exit_at_once_kills_the_workers_of_the_loaders_still_open(tmp_path):
    """The stop watchdog's exit (os._exit: a run stopped while its pass waited on a stopped worker, helper-390)
    closes no loader: a worker stopped (SIGSTOP) took no other signal and stayed, orphaned, for ever.
    kill_open_loader_workers, which that exit calls, ends it."""
    import signal

    from mobilenet_v1.data import kill_open_loader_workers

    loader = _one_worker_loader(tmp_path)
    assert len([y for _, y in loader]) == 4  # its persistent worker waits for the next pass
    worker = loader.loader._iterator._workers[0]
    try:
        os.kill(worker.pid, signal.SIGSTOP)
        # PyTorch's SIGCHLD handler raises for a worker killed (the process ends at once after this, in use)
        before = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            kill_open_loader_workers()
            worker.join(10)
        finally:
            signal.signal(signal.SIGCHLD, before)
        assert worker.exitcode == -signal.SIGKILL
    finally:
        if worker.is_alive():
            os.kill(worker.pid, signal.SIGKILL)
        loader.close()


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_a_link_to_nothing_in_a_class_folder_is_named_as_one(tmp_path, pipeline):
    """A link whose target is gone (a moved data set) is an unreadable file, said as predict says such a link:
    "a link to nothing", with its target, not the bare "No such file or directory" of the link's own name."""
    root = tmp_path / "folder"
    (root / "a").mkdir(parents=True)
    for i in range(2):
        (root / "a" / f"ok{i}.bmp").write_bytes(_bmp(np.full((20, 20, 3), 90, np.uint8)))
    link = root / "a" / "gone.jpg"
    link.symlink_to(tmp_path / "moved" / "gone.jpg")
    relative = root / "a" / "relative.jpg"  # a relative target, through a second link: named where it ends
    relative.symlink_to("gone.jpg")
    under_file = root / "a" / "under_file.jpg"  # a target under a file (ENOTDIR)
    under_file.symlink_to(root / "a" / "ok0.bmp" / "x.jpg")
    opts = DataOptions("imagenet2012", str(root), batch_size=4, image_size=16, seed=1, num_workers=0,
                       channels_last=False, max_bad_samples=5, pipeline=pipeline)
    with build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False) as loader:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert sum(len(y) for _, y in loader) == 2
        gone = os.path.realpath(tmp_path / "moved" / "gone.jpg")
        assert loader.bad_samples.files == {
            str(link): f"{link}: a link to nothing ({gone} does not exist)",
            str(relative): f"{relative}: a link to nothing ({gone} does not exist)",
            str(under_file): f"{under_file}: a link to nothing ({root / 'a' / 'ok0.bmp' / 'x.jpg'} does not exist)"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="file leases (fcntl F_SETLEASE) are Linux's")
def test_a_regular_file_is_read_as_a_plain_open_reads_it_a_lease_on_it_and_tiered_storage_too(tmp_path, monkeypatch):
    """What keeps a named pipe from hanging the loader must not change how a regular file is read: opened
    without waiting, a file another process holds a lease on (Samba's oplocks, an NFS server's delegations)
    failed at once with EAGAIN, an unreadable sample, where open() waits for the holder to let go; and a file
    is read blocking (tiered storage answers a non-blocking read of offline bytes with EAGAIN)."""
    from mobilenet_v1 import data

    path = tmp_path / "x.bmp"
    body = _bmp(np.full((20, 20, 3), 90, np.uint8))
    path.write_bytes(body)
    holder = subprocess.Popen([sys.executable, "-c", f"""
import fcntl, os, signal, sys, time
fd = os.open({str(path)!r}, os.O_RDWR)
def release(*_):
    time.sleep(0.3)
    fcntl.fcntl(fd, 1024, fcntl.F_UNLCK)  # F_SETLEASE
signal.signal(signal.SIGIO, release)
try:
    fcntl.fcntl(fd, 1024, fcntl.F_WRLCK)
except OSError as e:
    print("no lease", e, flush=True)
    sys.exit()
print("held", flush=True)
time.sleep(20)
"""], stdout=subprocess.PIPE, text=True)
    try:
        said = holder.stdout.readline()
        if not said.startswith("held"):
            pytest.skip(f"no file lease here: {said.strip()}")
        assert data.file_bytes(str(path)) == body  # was BlockingIOError, at once
    finally:
        holder.kill()
        holder.wait()
    blocking = []

    class Watched(io.FileIO):
        def read(self, *size):
            blocking.append(os.get_blocking(self.fileno()))
            return super().read(*size)

    monkeypatch.setattr(data, "open", lambda fd, mode: Watched(fd, "rb"), raising=False)
    assert data.file_bytes(str(path)) == body and blocking == [True]


def test_header_claiming_a_decompression_bomb_is_an_unreadable_file(tmp_path):
    """PIL refuses a header of over ~179 million pixels with DecompressionBombError, which is not an
    OSError: it must become a DecodeError naming the file, so the loaders skip it like other bad files."""
    import struct

    header = (b"BM" + struct.pack("<IHHI", 62, 0, 0, 62)
              + struct.pack("<IiiHHIIiiII", 40, 20000, 20000, 1, 1, 0, 0, 0, 0, 0, 0) + b"\0" * 8)
    with pytest.raises(T.DecodeError, match="huge.bmp: not a readable image"):
        T.decode_rgb(torch.frombuffer(bytearray(header), dtype=torch.uint8), "huge.bmp")
    root = tmp_path / "folder"
    (root / "a").mkdir(parents=True)
    (root / "a" / "huge.bmp").write_bytes(header)
    for i in range(2):
        (root / "a" / f"ok{i}.bmp").write_bytes(_bmp(np.full((20, 20, 3), 90, np.uint8)))
    loader = build_loader(DataOptions("imagenet2012", str(root), batch_size=4, image_size=16, seed=1,
                                      num_workers=0, channels_last=False, max_bad_samples=5),
                          train=False, device=torch.device("cpu"), drop_last=False)
    with pytest.warns(UserWarning, match="huge.bmp"):
        batches = list(loader)
    assert [len(y) for _, y in batches] == [2] and len(loader.bad_samples) == 1



def test_a_file_cut_short_in_its_headers_is_named_by_the_format_it_starts_as():
    """A JPEG or PNG cut inside its headers was "no image format recognised", as a text file is: the file
    is one, damaged; its first bytes say which."""
    for fmt, n, kind in (("JPEG", 20, "JPEG"), ("PNG", 14, "PNG"), ("GIF", 14, "GIF"), ("WEBP", 14, "WebP")):
        buf = io.BytesIO()
        Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(buf, format=fmt)
        with pytest.raises(T.DecodeError, match=rf"^x: not a readable image \(a {kind} by its first bytes, cut short "
                                                rf"or damaged in its headers\)$"):
            T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()[:n]), dtype=torch.uint8), "x")
    with pytest.raises(T.DecodeError, match=r"^x: not a readable image \(no image format recognised\)$"):
        T.decode_rgb(torch.frombuffer(bytearray(b"a text file, not an image"), dtype=torch.uint8), "x")

@pytest.mark.parametrize("fmt", ["JPEG", "GIF", "WEBP"])
def test_a_file_torchvision_decodes_is_held_to_the_pixel_limit_a_png_is(tmp_path, monkeypatch, fmt):
    """torchvision's decoders have no decompression-bomb limit and make the whole image first: a JPEG whose
    frame header was damaged to claim 60000x60000 took 11.5 GB and was "predicted" (and nvJPEG would have
    made it on the GPU), where a PNG of that size was an unreadable file. With the limit lowered to 2,000
    pixels, a 60x60 image is refused in every format, by the CPU pipeline's decode and the GPU pipeline's
    workers alike; a 40x40 one (1,600) is decoded. A GIF of two such frames, which torchvision makes both of
    (a 499-byte GIF of twenty 1x1 frames on an 8000x8000 screen took 4.7 GB), is PIL's to decode."""
    from mobilenet_v1.data import BAD, DECODED, ENCODED, EncodedImageDataset

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses twice this: 2,000
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # PIL's note past 1,000 (pytest restores it)
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    for side in (60, 40):
        for f in (fmt, "PNG"):
            buf = io.BytesIO()
            Image.fromarray(np.full((side, side, 3), 90, np.uint8)).save(buf, format=f)
            (root / "a" / f"{side}.{f.lower()}").write_bytes(buf.getvalue())
            data = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
            if side == 60:
                with pytest.raises(T.DecodeError, match=f"{side}.{f.lower()}: not a readable image .*decompression"):
                    T.decode_rgb(data, f"{side}.{f.lower()}")
            else:
                assert T.decode_rgb(data, f"{side}.{f.lower()}").shape == (3, side, side)
    if fmt == "GIF":  # torchvision's decoder makes every frame, two of 40x40 3,200 pixels: PIL makes the first
        buf = io.BytesIO()
        frames = [Image.fromarray(np.full((40, 40, 3), v, np.uint8)) for v in (90, 160)]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
        tv = T.torchvision_ops()
        monkeypatch.setattr(tv, "decode_image", lambda *a, **k: pytest.fail("torchvision decoded every frame"))
        img = T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8), "anim.gif")
        assert img.shape == (3, 40, 40) and img.eq(90).all()
    if fmt == "JPEG":
        samples, _ = find_images(str(root))
        kinds = {os.path.basename(p): EncodedImageDataset(samples)[(i, 1)][0] for i, (p, _) in enumerate(samples)}
        assert kinds == {"60.jpeg": BAD, "60.png": BAD, "40.jpeg": ENCODED, "40.png": DECODED}


def _bmp(arr: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="BMP")
    return buf.getvalue()


def test_find_images_skips_hidden_entries_and_symlink_loops(tmp_path):
    """Hidden folders (.ipynb_checkpoints, .git) would become a class and shift every label; macOS ._*
    files are not images; a link back up a class folder listed its images again and again, and two
    links to the folder itself made the walk run forever."""
    root = tmp_path / "train"
    for cls in ("cat", "dog"):
        (root / cls / "sub").mkdir(parents=True)
        (root / cls / "a.png").write_bytes(b"png")
        (root / cls / "sub" / "b.png").write_bytes(b"png")
    (root / ".ipynb_checkpoints").mkdir()
    (root / "cat" / ".git").mkdir()
    (root / "cat" / ".git" / "c.png").write_bytes(b"png")
    (root / "cat" / "._a.png").write_bytes(b"AppleDouble")
    # What unzip of a macOS zip (__MACOSX), a Synology share (@eaDir: each image's thumbnails, trained on where the
    # image was held out) and a disk's root (lost+found) leave: __MACOSX was class 0, every label shifted.
    (root / "__MACOSX" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "cat" / "._a.png").write_bytes(b"AppleDouble")
    (root / "lost+found").mkdir()
    (root / "cat" / "@eaDir" / "a.png").mkdir(parents=True)
    (root / "cat" / "@eaDir" / "a.png" / "SYNOFILE_THUMB_M.png").write_bytes(b"png")
    os.symlink("..", root / "cat" / "parent")
    os.symlink(".", root / "dog" / "self1")
    os.symlink(".", root / "dog" / "self2")
    samples, classes = find_images(str(root))
    assert classes == ["cat", "dog"]
    # cat/parent is the root folder, a loop: not read (it listed dog's images as cats)
    assert [(os.path.relpath(p, root), y) for p, y in samples] == [
        ("cat/a.png", 0), ("cat/sub/b.png", 0), ("dog/a.png", 1), ("dog/sub/b.png", 1)]
    os.symlink(os.path.abspath(os.sep), root / "dog" / "sub" / "everything")  # the whole disk: not walked
    assert find_images(str(root))[0] == samples


def test_a_cifar_folder_that_cannot_be_listed_is_named_as_such(cifar_dir, monkeypatch):
    """glob returns nothing for a folder it cannot list (chmod 000): the error said no .bin files were there."""
    real = os.listdir
    folder = str(cifar_dir / CIFAR_TRAIN_FOLDER)

    def listdir(path="."):
        if os.fspath(path) == folder:
            raise PermissionError(13, "Permission denied", folder)
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)
    with pytest.raises(DataError, match=r"cannot be listed \(Permission denied\)"):
        cifar_files(str(cifar_dir), train=True)


def test_photos_of_a_format_not_read_are_said_not_left_out_silently(tmp_path, capsys):
    """A phone's HEIC and a camera's raw files among a class's JPEGs are not read: counted and said, once for the
    data set (a folder of iPhone photos half HEIC trained on the other half without a word), and by predict."""
    from mobilenet_v1.data import labelled_images
    from mobilenet_v1.predict import image_files

    root = tmp_path / "train"
    for cls in ("cat", "dog"):
        (root / cls / "sub").mkdir(parents=True)
        (root / cls / "a.png").write_bytes(b"png")
        (root / cls / "sub" / "IMG_1.HEIC").write_bytes(b"heic")
    (root / "cat" / "b.dng").write_bytes(b"raw")
    (root / "cat" / "._c.heic").write_bytes(b"AppleDouble")  # not a photo
    (root / "dog" / "notes.txt").write_bytes(b"text")  # no photo: not counted
    (root / "dog" / "a.CR2").write_bytes(b"raw")  # a camera's RAW+JPEG pair: the image of it is read, not counted
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples, classes = find_images(str(root))
    assert [(os.path.relpath(p, root), y) for p, y in samples] == [("cat/a.png", 0), ("dog/a.png", 1)]
    assert [str(w.message) for w in caught if issubclass(w.category, DataWarning)] == [
        f"image folder {root}: 3 photos of a format not read here (2 .heic, 1 .dng) left out; convert them to JPEG "
        f"or PNG to use them"]
    assert image_files([str(root / "cat")]) == [str(root / "cat" / "a.png")]
    assert capsys.readouterr().err == (f"predict: warning: folder {root / 'cat'}: 2 photos of a format not read here "
                                       f"(1 .dng, 1 .heic) left out; convert them to JPEG or PNG to use them\n")
    with pytest.raises(ValueError, match=r"sub: no image files .* in it; it: 1 photo of a format not read here "
                                         r"\(1 \.heic\) left out"):
        image_files([str(root / "dog" / "sub")])
    labels = tmp_path / "val.txt"  # a flat folder labelled by a file: said too
    labels.write_text("a.png 0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert labelled_images(str(root / "cat"), str(labels))[0] == [(str(root / "cat" / "a.png"), 0)]
    assert [str(w.message) for w in caught] == [
        f"image folder {root / 'cat'}: 2 photos of a format not read here (1 .dng, 1 .heic) left out; convert them "
        f"to JPEG or PNG to use them"]
    for photo in ("dog/sub/IMG_1.HEIC", "cat/sub/IMG_1.HEIC", "cat/b.dng"):
        (root / photo).unlink()
    with warnings.catch_warnings(record=True) as caught:  # none left: no word
        warnings.simplefilter("always")
        assert find_images(str(root))[0] == samples
    assert [str(w.message) for w in caught] == []


def test_a_file_system_without_inode_numbers_still_lists_its_class_folders(tmp_path, monkeypatch):
    """Where os.stat gives every folder st_ino 0 (Python: "if non-zero, uniquely identifies the file"; some
    Windows network drives), the folders above a class folder, kept out of its walk as loops, must not
    keep the class folder itself out: each flat class folder read as before, not "no image files"."""
    from mobilenet_v1 import data

    root = tmp_path / "root"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        (root / cls / "a.bmp").write_bytes(_bmp(np.full((20, 20, 3), 90, np.uint8)))
    real = os.stat

    def no_inode(path, *args, **kwargs):
        st = real(path, *args, **kwargs)
        return os.stat_result((st.st_mode, 0) + tuple(st)[2:])

    monkeypatch.setattr(data.os, "stat", no_inode)
    samples, classes = find_images(str(root))
    assert classes == ["cat", "dog"] and [(os.path.relpath(p, root), y) for p, y in samples] == [
        (os.path.join("cat", "a.bmp"), 0), (os.path.join("dog", "a.bmp"), 1)]


def test_find_images_with_a_class_list_keeps_its_labels(tmp_path):
    root = tmp_path / "val"
    for cls in ("dog", "ant"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.png").write_bytes(b"png")
    samples, classes = find_images(str(root), ["ant", "bee", "cat", "dog"])
    assert classes == ["ant", "bee", "cat", "dog"]
    assert [(os.path.basename(os.path.dirname(p)), y) for p, y in samples] == [("ant", 0), ("dog", 3)]
    assert [y for _, y in find_images(str(root))[0]] == [0, 1]  # its own sorted folders otherwise
    with pytest.raises(DataError, match=r"class folder\(s\) ant, dog are not among the 2 classes"):
        find_images(str(root), ["cat", "emu"])
    with pytest.raises(DataError, match=r"; dog is Dog in another case \(class names are case-sensitive\)$"):
        find_images(str(root), ["ant", "Dog"])
    # A class copied through macOS (café with a combining accent, NFD) against the trained café (NFC): they
    # print alike, so the message says what differs (helper-111).
    (root / "cafe\u0301").mkdir()
    (root / "cafe\u0301" / "x.png").write_bytes(b"png")
    with pytest.raises(DataError, match="caf\u00e9 written in other Unicode code points \\(NFD against NFC"):
        find_images(str(root), ["ant", "caf\u00e9", "dog"])
    # Both forms in the training split itself, and Dog beside dog: a class each, as before, said (helper-287).
    for name in ("caf\u00e9", "Dog"):
        (root / name).mkdir()
        (root / name / "x.png").write_bytes(b"png")
    with pytest.warns(DataWarning, match=r"class folders 'Dog' and 'dog' are one name in other cases; "
                                         r"'cafe\\u0301' and 'caf\\xe9' are one name in other Unicode code points "
                                         r"\(NFD against NFC: a copy through macOS\?\): each is a class of its own"):
        assert len(find_images(str(root))[1]) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a model's classes given: each folder is one of them or refused
        find_images(str(root), ["ant", "cafe\u0301", "caf\u00e9", "Dog", "dog"])
    pair = tmp_path / "pair"  # a pair differing both ways: Café composed, café decomposed (helper-294: "cases")
    for name in ("Caf\u00e9", "cafe\u0301"):
        (pair / name).mkdir(parents=True)
        (pair / name / "x.png").write_bytes(b"png")
    with pytest.warns(DataWarning, match=r"'Caf\\xe9' and 'cafe\\u0301' are one name in other Unicode code points "
                                         r"\(NFD against NFC: a copy through macOS\?\) and in other cases"):
        find_images(str(pair))
    cased = tmp_path / "cased"  # both decomposed, in two cases: case alone (helper-296: code points said too)
    for name in ("cafe\u0301", "CAFE\u0301"):
        (cased / name).mkdir(parents=True)
        (cased / name / "x.png").write_bytes(b"png")
    with pytest.warns(DataWarning, match=r"'CAFE\\u0301' and 'cafe\\u0301' are one name in other cases: each"):
        find_images(str(cased))
    (root / "Caf\u00e9").mkdir()  # both ways at once: both said
    (root / "Caf\u00e9" / "x.png").write_bytes(b"png")
    with pytest.warns(DataWarning, match=r"'Caf\\xe9' and 'cafe\\u0301' and 'caf\\xe9' are one name in other Unicode "
                                         r"code points \(NFD against NFC: a copy through macOS\?\) and in other cases"):
        find_images(str(root))


def class_tree(root, sizes):
    """Class folders ``c0, c1, ...`` of ``sizes[i]`` empty .png files each (names only matter here)."""
    for c, n in enumerate(sizes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(n):
            (root / f"c{c}" / f"img{i:03d}.png").write_bytes(b"png")


def test_a_folder_that_cannot_be_listed_is_named(tmp_path, monkeypatch):
    """os.walk leaves out a folder it cannot list (no permission), which took a class's images away without a
    word (helper-111); it is named in a warning. (Simulated: root may list anything.)"""
    class_tree(tmp_path / "data", [2, 1])
    real = os.scandir

    def scandir(path="."):
        if os.path.basename(os.fspath(path)) == "c1":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(DataWarning, match=r"folder .*c1: cannot be listed \(Permission denied\): the images in it "
                                         r"are not read"):
        samples, classes = find_images(str(tmp_path / "data"))
    assert classes == ["c0", "c1"] and len(samples) == 2


def test_class_archives_and_broken_links_beside_class_folders_are_named(tmp_path):
    """ImageNet's training folder of one tar a class, partly extracted (a loop of tar xf interrupted): the class
    folders are read, and the classes still in their archives were left out without a word (the labels of the
    others numbered without them); the archives are named in a warning, as is a class folder linked to a folder
    that is not there. A folder without them says nothing."""
    import tarfile

    class_tree(tmp_path / "train", [2, 1])
    with tarfile.open(tmp_path / "train" / "c2.tar", "w") as tf:
        tf.add(str(tmp_path / "train" / "c0" / "img000.png"), arcname="img000.png")
    with pytest.warns(DataWarning, match=r"train': its 2 class folder\(s\) are read, not the 1 .tar file\(s\) beside "
                                         r"them \(c2.tar\): class archives half extracted\?"):
        samples, classes = find_images(str(tmp_path / "train"))
    assert classes == ["c0", "c1"] and len(samples) == 3
    os.rename(tmp_path / "train" / "c2.tar", tmp_path / "train" / "c1.tar")  # kept beside its extracted folder
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert find_images(str(tmp_path / "train"))[1] == ["c0", "c1"]
    os.remove(tmp_path / "train" / "c1.tar")
    # A class folder that is a link to a folder no longer there (a disk not mounted): named, not left out silently.
    (tmp_path / "train" / "c15").symlink_to(tmp_path / "unmounted" / "c15", target_is_directory=True)
    with pytest.warns(DataWarning, match=r"train': c15 is a link to nothing \(a class folder on a disk not "
                                         r"mounted\?\): not read as a class"):
        assert find_images(str(tmp_path / "train"))[1] == ["c0", "c1"]
    os.remove(tmp_path / "train" / "c15")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert find_images(str(tmp_path / "train"))[1] == ["c0", "c1"]


def test_val_split_holds_out_a_share_of_each_class_chosen_by_file_name(tmp_path):
    """Each class gives round(share x n) of its images (at least one, never all: a class of one image
    stays in training); the two parts are disjoint and cover the folder; the choice follows the file
    names, so a copy of the folder elsewhere holds out the same files, and a file added to a class
    moves at most one of the others."""
    sizes = [1, 2, 10, 25, 40]
    class_tree(tmp_path / "a", sizes)
    share = 0.2
    held, rest = (find_images(str(tmp_path / "a"), holdout=Holdout(share, ev))[0] for ev in (True, False))
    all_files, _ = find_images(str(tmp_path / "a"))
    assert sorted([*held, *rest]) == sorted(all_files) and not set(held) & set(rest)
    assert [sum(y == c for _, y in held) for c in range(len(sizes))] == [0, 1, 2, 5, 8]
    assert [s for s in held if s[1] == 4] != [s for s in all_files if s[1] == 4][:8]  # not a class's first files
    class_tree(tmp_path / "b", sizes)
    moved = find_images(str(tmp_path / "b"), holdout=Holdout(share, True))[0]
    assert [os.path.relpath(p, tmp_path / "b") for p, _ in moved] == [os.path.relpath(p, tmp_path / "a") for p, _ in held]
    (tmp_path / "a" / "c3" / "img999.png").write_bytes(b"png")  # 26 images: still 5 held out
    after = {p for p, _ in find_images(str(tmp_path / "a"), holdout=Holdout(share, True))[0]}
    before = {p for p, y in held if y == 3}
    assert len({p for p in after if "/c3/" in p} ^ before) <= 2  # one in, one out at most
    # A name that is not UTF-8 (Latin-1, from an old archive) is listed, and held out or not, like any other.
    with open(os.path.join(os.fsencode(tmp_path / "a" / "c1"), b"caf\xe9.png"), "wb") as f:
        f.write(b"png")
    held, rest = (find_images(str(tmp_path / "a"), holdout=Holdout(0.5, ev))[0] for ev in (True, False))
    assert sorted([*held, *rest]) == sorted(find_images(str(tmp_path / "a"))[0]) and not set(held) & set(rest)
    assert any(os.fsencode(p).endswith(b"caf\xe9.png") for p, _ in [*held, *rest])
    # Classes of one image each hold none out: said as the reason, not only "no image files" (helper-360)
    class_tree(tmp_path / "ones", [1, 1, 1])
    with pytest.raises(DataError, match=r"held out by val_split \(a class of one image keeps it for training, and "
                                        r"each class here has one at most"):
        find_images(str(tmp_path / "ones"), holdout=Holdout(0.5, True))


def test_val_split_holds_out_the_files_whose_names_hash_lowest(tmp_path):
    """The rule a run's recorded val_split is found again by (eval, recalibrate-bn and quantize of its
    checkpoint recompute the held-out files): of each class, the round(share x n) files whose path under
    the folder has the lowest 8-byte BLAKE2b digest. Computed here with hashlib, apart from the code."""
    import hashlib

    sizes = [10, 7]
    class_tree(tmp_path / "a", sizes)
    samples = find_images(str(tmp_path / "a"), holdout=Holdout(0.3, True))[0]
    held = {os.path.relpath(p, tmp_path / "a") for p, _ in samples}
    expected = set()
    for c, n in enumerate(sizes):
        names = [f"c{c}/img{i:03d}.png" for i in range(n)]
        lowest = sorted(names, key=lambda name: hashlib.blake2b(name.encode(), digest_size=8).digest())
        expected |= {name.replace("/", os.sep) for name in lowest[:round(0.3 * n)]}  # 3 and 2
    assert held == expected


def test_image_split_finds_val_folders_and_refuses_what_would_mislead(tmp_path):
    """The seed's validation_preprocess/, then torchvision's val/ and validation/; a train/ folder with
    no evaluation folder is an error (it used to be read as one class named "train") that points to
    --val_split; val_split beside an evaluation folder is an error too."""
    root = tmp_path / "data"
    class_tree(root / "train", [3, 3])
    with pytest.raises(DataError, match=r"has a train/ folder but no evaluation split .*--val_split \(e\.g\. 0\.1"):
        image_split(str(root), train=False)
    assert image_split(str(root), train=True) == (str(root / "train"), None)
    assert image_split(str(root), train=False, val_split=0.25) == (str(root / "train"), Holdout(0.25, True))
    assert image_split(str(root), train=True, val_split=0.25) == (str(root / "train"), Holdout(0.25, False))
    class_tree(root / "validation", [1])
    assert image_split(str(root), train=False) == (str(root / "validation"), None)
    class_tree(root / "val", [1])
    assert image_split(str(root), train=False) == (str(root / "val"), None)  # val/ before validation/
    with pytest.raises(DataError, match=r"val_split 0\.25: dataset_path .* has an evaluation folder .*val\)"):
        image_split(str(root), train=False, val_split=0.25)
    class_tree(root / "test", [2])  # ImageNet's own layout: its test images are read by no command
    class_tree(root / "valid", [1])  # another split (Roboflow's name): its images are in class folders
    (root / "runs" / "demo").mkdir(parents=True)
    (root / "runs" / "demo" / "curves.png").write_bytes(b"png")  # a run folder's plot, one level down
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_split(str(root), train=True)
    # A class folder named train (trains, buses, cars) beside the others: train/ is the training split, so
    # the others would be left out; said, naming them.
    vehicles = tmp_path / "vehicles"
    class_tree(vehicles, [1, 1])
    class_tree(vehicles / "train", [2])
    with pytest.warns(DataWarning, match=r"train/ is read as its training split .* the image files in c0/, c1/ "
                                         r"beside it are not read; a class folder named train\?"):
        assert image_split(str(vehicles), train=True) == (str(vehicles / "train"), None)
    # The seed README's tree, ilsvrc/ beside validation_preprocess/: training would read both as two
    # classes, the evaluation images among them; refused, naming the folder to rename.
    seed_tree = tmp_path / "seed"
    class_tree(seed_tree / "ilsvrc", [2, 2])
    class_tree(seed_tree / "validation_preprocess", [1, 1])
    with pytest.raises(DataError, match=r"seed: it has an evaluation folder \(validation_preprocess/\) but no train/ "
                                        r"folder, .*; rename ilsvrc/ to train/"):
        image_split(str(seed_tree), train=True)
    assert image_split(str(seed_tree), train=False) == (str(seed_tree / "validation_preprocess"), None)
    # Train/ and Val/ (the splits' names in another case, which Linux keeps apart) would be two classes of a
    # folder that is itself a split (helper-111): refused, naming them; a class named Train among others stays.
    cased = tmp_path / "cased"
    class_tree(cased / "Train", [1, 1])
    class_tree(cased / "Val", [1, 1])
    for train in (True, False):
        with pytest.raises(DataError, match=r"cased: its Train/, Val/ are named as splits in another case, "
                                            r"and would be read as 2 classes; .* rename them train and"):
            image_split(str(cased), train=train)
    class_tree(cased / "Bus", [1])
    assert image_split(str(cased), train=True) == (str(cased), None)
    flat = tmp_path / "flat"  # a folder that is itself a split: both read it whole, as before
    class_tree(flat, [2])
    assert image_split(str(flat), train=False) == image_split(str(flat), train=True) == (str(flat), None)
    opts = DataOptions(dataset="imagenet2012", dataset_path=str(flat), batch_size=1, image_size=8, seed=0,
                       num_workers=0, channels_last=False, val_split=0.5)
    loaders = [build_loader(opts, train=t, device=torch.device("cpu"), drop_last=False) for t in (True, False)]
    assert [l.num_samples for l in loaders] == [1, 1] and [l.num_classes for l in loaders] == [1, 1]


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_val_split_loaders_read_the_held_out_files_and_train_on_the_others(tmp_path, pipeline):
    """Both pipelines, a P/train/ layout: evaluation reads exactly the files held out (by name), training
    exactly the others, and calibration-style reads of the training split (split="train") too."""
    root = tmp_path / "data"
    class_tree(root / "train", [5, 9])
    opts = DataOptions(dataset="imagenet2012", dataset_path=str(root), batch_size=2, image_size=8, seed=0,
                       num_workers=0, channels_last=False, pipeline=pipeline, val_split=0.3)
    cpu = torch.device("cpu")
    files = lambda loader: {p for p, _ in loader.loader.dataset.samples}  # noqa: E731
    train_files = files(build_loader(opts, train=True, device=cpu))
    eval_files = files(build_loader(opts, train=False, device=cpu, drop_last=False))
    calib_files = files(build_loader(opts, train=False, device=cpu, split="train", shuffle=True))
    held = {p for p, _ in find_images(str(root / "train"), holdout=Holdout(0.3, True))[0]}
    assert eval_files == held and len(held) == 2 + 3  # round(1.5) = 2 (even), round(2.7) = 3
    assert train_files == calib_files == {p for p, _ in find_images(str(root / "train"))[0]} - held


def test_an_odd_crop_margin_is_split_as_the_seed_splits_it_without_antialias_and_as_torchvision_with():
    """MindSpore's CenterCrop starts at half the margin rounded down, torchvision's (timm's) at half rounded
    to even: a 334x500 photo resized to 256x383 keeps columns 79..302 in the seed and 80..303 there. With
    antialias False (the seed's resize) the crop is the seed's, with True torchvision's, in both pipelines."""
    from torchvision.transforms.v2 import functional as TF

    img = torch.randint(0, 256, (3, 74, 78), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert T.eval_resize_size(32) == 37  # 74x78 -> 37x39: a margin of 7 across, 3.5 rounded to 4 or down to 3
    for antialias, left in ((False, 3), (True, 4)):
        resized = T.resize(img, [37, 39], antialias)
        want = resized[:, 2:34, left:left + 32]
        for got in (T.resize_center_crop(img, 32, antialias=antialias),
                    T.batch_resize_center_crop([img, img.flip(-1)], 32, antialias=antialias)[0]):
            assert torch.equal(got, want), antialias
    assert torch.equal(T.resize_center_crop(img, 32), TF.center_crop(TF.resize(img, [37]), [32, 32]))
    # the longer side truncated as torchvision's Resize truncates it: 30x50 -> 37x61 (61.67), not 37x62
    for hw in ((30, 50), (50, 30)):
        other = torch.randint(0, 256, (3, *hw), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        assert torch.equal(T.resize_center_crop(other, 32), TF.center_crop(TF.resize(other, [37]), [32, 32])), hw
    # A crop larger than the resized image (a crop_pct over 1, which only a hand-edited file records) is padded
    # as torchvision pads it, not cut short.
    assert torch.equal(T.resize_center_crop(img, 32, crop_pct=1.2, antialias=False),
                       TF.center_crop(TF.resize(img, [27], antialias=False), [32, 32]))


def test_eval_transform_of_a_long_thin_image_resizes_only_the_window_it_keeps(monkeypatch):
    """Shorter side to 256 first would turn a 1x100000 banner into 256x25,600,000 (20 GB); only the
    centre window the crop keeps is resized, and the crop is the full path's up to its rounding."""

    from torchvision.transforms.v2 import functional as TF

    from conftest import smooth_image

    for (h, w), size in [((20, 400), 224), ((400, 20), 32), ((3, 300), 224), ((31, 249), 32), ((1, 50), 224)]:
        img = torch.from_numpy(smooth_image(h, w, 3)).permute(2, 0, 1).contiguous()
        full = TF.center_crop(TF.resize(img, [T.eval_resize_size(size)], antialias=True), [size, size]).float()
        got = T.resize_center_crop(img, size).float()
        assert got.shape == full.shape == (3, size, size)
        assert (got - full).abs().max() <= 6 and (got - full).abs().mean() < 2, (h, w, size)
    sizes = []
    resize = TF.resize

    def recording_resize(img, out, **kw):
        result = resize(img, out, **kw)
        sizes.append(result.numel())
        return result

    monkeypatch.setattr(T.torchvision_ops(), "resize", recording_resize)
    banner = torch.full((3, 1, 100_000), 77, dtype=torch.uint8)
    assert torch.equal(T.resize_center_crop(banner, 224), torch.full((3, 224, 224), 77, dtype=torch.uint8))
    assert sizes and max(sizes) <= 3 * 256 * 1024  # the 224 crop of a 256 x 768 window, not 256 x 25.6 M


def test_eval_transform_of_a_batch_resizes_each_size_once_with_the_values_of_image_by_image(monkeypatch):
    """The GPU pipeline's evaluation batch: images of one size are resized in one call (a group too large
    for one is split), a banner is resized by its window as alone, and every crop equals the image's own."""

    from torchvision.transforms.v2 import functional as TF

    from conftest import smooth_image

    shapes = [(40, 52), (52, 40), (40, 52), (17, 300), (40, 52), (52, 40), (33, 33), (17, 300), (40, 52)]
    images = [torch.from_numpy(smooth_image(h, w, k)).permute(2, 0, 1).contiguous()
              for k, (h, w) in enumerate(shapes)]
    for crop_pct in (1.0, T.CROP_PCT):  # the seed's last: `alone` below
        alone = torch.stack([T.resize_center_crop(img, 24, crop_pct) for img in images])
        assert torch.equal(T.batch_resize_center_crop(images, 24, crop_pct), alone)
    calls = []
    resize = TF.resize

    def recording_resize(img, out, **kw):
        calls.append(tuple(img.shape))
        return resize(img, out, **kw)

    monkeypatch.setattr(T.torchvision_ops(), "resize", recording_resize)
    T.batch_resize_center_crop(images, 24)
    # One call a size, the banners' windows together: (N, 3, H, W) with N 4, 2, 2 and 1 (33x33).
    assert sorted(c[0] for c in calls) == [1, 2, 2, 4] and len({c[-2:] for c in calls}) == 4
    calls.clear()
    monkeypatch.setattr(T, "GROUP_PIXELS", 3 * 40 * 52)  # three 40x52 images a call, one banner
    assert torch.equal(T.batch_resize_center_crop(images, 24), alone)
    assert sorted(c[0] for c in calls if c[-2:] == (40, 52)) == [1, 3]
    assert sorted(c[0] for c in calls if c[-2:] == (52, 40)) == [2]
    assert sorted(c[0] for c in calls if c[-2] == 17) == [1, 1]


def test_exif_orientation_is_read_from_the_headers_and_turns_the_photo_upright():
    """jpeg_frame reads the EXIF orientation (either byte order; 0 without a tag, -1 for a block it cannot
    read), and decode_rgb(exif=True) turns the stored pixels as the tag says, the standard's eight ways."""
    from conftest import exif_jpeg, jpeg_bytes, smooth_image

    arr = smooth_image(30, 40, 3)
    stored = T.decode_rgb(torch.frombuffer(bytearray(jpeg_bytes(arr)), dtype=torch.uint8))
    upright = {1: stored, 2: stored.flip(-1), 3: stored.flip(-2, -1), 4: stored.flip(-2),
               5: stored.transpose(-2, -1), 6: torch.rot90(stored, -1, (-2, -1)),
               7: stored.transpose(-2, -1).flip(-2, -1), 8: torch.rot90(stored, 1, (-2, -1))}
    for order in (b"II", b"MM"):
        for k, want in upright.items():
            raw = exif_jpeg(arr, k, order)
            assert T.jpeg_frame(raw).orientation == k and T.jpeg_frame(raw)[:4] == T.jpeg_frame(jpeg_bytes(arr))[:4]
            data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
            assert torch.equal(T.decode_rgb(data, exif=True), want), (order, k)
            assert torch.equal(T.decode_rgb(data), stored)
            assert torch.equal(T._decode_with_pil(data, "x", exif=True), want), (order, k)  # the fallback too
    assert T.jpeg_frame(jpeg_bytes(arr)).orientation == 0
    assert T.exif_orientation(b"II*\0\x08\0\0\0\0\0") == 0  # a directory without the tag
    assert T.exif_orientation(b"XX*\0\x08\0\0\0") == T.exif_orientation(b"II*\0\xff\0\0\0") == -1
    assert T.jpeg_frame(exif_jpeg(arr, 9)).orientation == -1  # no such orientation
    # torchvision reads the first APP1 block whatever it holds, and libjpeg skips stray bytes between
    # blocks: where either could hide an orientation, "cannot tell" (-1), and the GPU pipeline decodes
    # such a file on the CPU as the CPU pipeline does.
    turned = exif_jpeg(arr, 6)
    at = turned.index(b"Exif")
    assert T.jpeg_frame(turned[:at + 5] + b"\xff" + turned[at + 6:]).orientation == -1  # not "Exif\0\0"
    xmp = b"\xff\xe1\x00\x0chttp://x\x00\x00"  # an APP1 block before the EXIF one
    assert T.jpeg_frame(turned[:2] + xmp + turned[2:]).orientation == -1
    def stray_after_frame(raw: bytes) -> bytes:
        end = raw.index(b"\xff\xc0") + 2 + int.from_bytes(raw[raw.index(b"\xff\xc0") + 2:][:2], "big")
        return raw[:end] + b"\x00\x00" + raw[end:]

    plain = jpeg_bytes(arr)
    assert T.jpeg_frame(stray_after_frame(turned)).orientation == 6  # its block came before the stray bytes
    assert T.jpeg_frame(stray_after_frame(plain))[:4] == T.jpeg_frame(plain)[:4]
    assert T.jpeg_frame(stray_after_frame(plain)).orientation == -1  # a block could follow them
    assert T.jpeg_frame(plain[:plain.index(b"\xff\xda")]).orientation == -1  # cut before its first scan
    # A tag PIL cannot write back (a ColorMap in ASCII) made ImageOps.exif_transpose raise struct.error;
    # the fallback turns the image all the same.
    import struct

    entries = [(0x0112, 3, 1, struct.pack(">H", 6) + b"\0\0"), (0x0140, 2, 4, b"abc\0")]
    block = (b"Exif\0\0MM" + struct.pack(">HIH", 42, 8, 2)
             + b"".join(struct.pack(">HHI", t, kind, n) + v for t, kind, n, v in entries) + b"\0\0\0\0")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", exif=block)
    data = torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)
    assert torch.equal(T._decode_with_pil(data, "x", exif=True), T.decode_rgb(data, exif=True))
    assert T.decode_rgb(data, exif=True).shape == (3, 40, 30)
    # An EXIF block PIL cannot read (SyntaxError: not TIFF data; struct.error: cut short) in a PNG, which
    # PIL decodes: no orientation, the pixels as stored, no error.
    for unreadable in (b"Exif\0\0XXXXXXXX", b"Exif\0\0II*\0\xfdo"):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", exif=unreadable)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's own word on the damaged block
            got = T.decode_rgb(torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8), exif=True)
        assert torch.equal(got, torch.from_numpy(arr).permute(2, 0, 1))


def test_png_of_every_kind_decodes_as_torchvision_does_and_a_damaged_one_is_refused_not_fatal(tmp_path):
    """PNG goes to PIL: torchvision 0.29's decoder ends the process on a damaged PNG. The pixels are
    torchvision's for each kind of PNG (a file it can read), and a damaged file is a DecodeError, in a
    process of its own here, so that a crash fails this test rather than the whole run."""
    import struct
    import zlib

    from torchvision.io import ImageReadMode, decode_image

    from conftest import smooth_image

    arr = smooth_image(30, 40, 2)
    rgb = Image.fromarray(arr)

    def png(im, **kw) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="PNG", **kw)
        return buf.getvalue()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    wide = (arr.astype(np.uint16) * 257 + 3).astype(">u2")  # 16-bit RGB, which PIL cannot write
    rows = b"".join(b"\0" + wide[y].tobytes() for y in range(wide.shape[0]))
    rgb16 = (T.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 30, 16, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    paletted = rgb.convert("P")
    exif = rgb.getexif()
    exif[0x0112] = 6
    kinds = {"RGB": png(rgb), "RGBA": png(rgb.convert("RGBA")), "L": png(rgb.convert("L")),
             "LA": png(rgb.convert("LA")), "P": png(paletted), "P with tRNS": png(paletted, transparency=0),
             "1-bit": png(rgb.convert("1")), "interlaced": png(rgb, interlace=1), "RGB 16-bit": rgb16,
             "L 16-bit": png(Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257 + 7)),
             "EXIF 6": png(rgb, exif=exif)}
    for kind, raw in kinds.items():
        data = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
        for turn in (False, True):
            want = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=turn)
            want = (want.to(torch.int32) >> 8).to(torch.uint8) if want.dtype != torch.uint8 else want
            assert torch.equal(T.decode_rgb(data, exif=turn), want), (kind, turn)
    damaged = bytearray(kinds["RGB"])
    start = damaged.index(b"IDAT") + 4
    damaged[start + 10:start + 13] = b"\xff\x00\xff"
    (tmp_path / "damaged.png").write_bytes(damaged)
    code = ("import torch; from mobilenet_v1 import transforms as T\n"
            f"data = torch.frombuffer(bytearray(open({str(tmp_path / 'damaged.png')!r}, 'rb').read()), dtype=torch.uint8)\n"
            "try:\n    T.decode_rgb(data, 'damaged.png')\nexcept T.DecodeError as e:\n    print('refused:', e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0 and done.stdout.startswith("refused: damaged.png: not a readable image"), done


@pytest.mark.parametrize("dataset,pipeline", [("cifar10", "cpu"), ("imagenet2012", "cpu"), ("imagenet2012", "gpu")])
def test_every_loader_gives_the_memory_format_asked_for(dataset, pipeline, cifar_dir, image_folder):
    """channels_last or NCHW as ``channels_last`` says, in training and evaluation: CIFAR's batched crop and flip
    left a channels_last batch with channels_last False, so an NCHW model ran its convs channels_last (and
    DDP warned of its weights' gradients)."""
    root = cifar_dir if dataset == "cifar10" else image_folder
    for channels_last in (False, True):
        opts = DataOptions(dataset, str(root), batch_size=4, image_size=32, seed=1, num_workers=0,
                           channels_last=channels_last, pipeline=pipeline)
        for train in (True, False):
            with build_loader(opts, train=train, device=torch.device("cpu"), drop_last=train) as loader:
                x, _ = next(iter(loader))
            layout = torch.channels_last if channels_last else torch.contiguous_format
            assert x.is_contiguous(memory_format=layout), (channels_last, train, x.stride())


def test_image_folder_loader_end_to_end(image_folder):
    opts = DataOptions("imagenet2012", str(image_folder), batch_size=4, image_size=32, seed=1, num_workers=0,
                       channels_last=True)
    train = build_loader(opts, train=True, device=torch.device("cpu"))
    assert len(train) == 3 and train.classes == ["n01", "n02"]
    x, y = next(iter(train))
    assert x.shape == (4, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)
    ev = build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False)
    assert sum(y.numel() for _, y in ev) == 6


def test_random_resized_crop_box_within_seed_ranges():
    import random

    rng = random.Random(0)
    for _ in range(300):
        top, left, h, w = T.random_resized_crop_box(375, 500, rng)
        assert 0 <= top and top + h <= 375 and 0 <= left and left + w <= 500
        area = h * w / (375 * 500)
        assert 0.08 * 0.97 <= area <= 1.0
        assert 0.75 * 0.97 <= w / h <= 1.333 * 1.03


def test_random_resized_crop_draws_as_torchvisions_algorithm():
    """The seed's RandomResizedCrop is Szegedy et al.'s as torchvision writes it: the aspect ratio log-uniform
    in the range, up to ten tries, a box that spans a whole side accepted, and after ten failures the largest
    centred box whose ratio is clamped into the range (w = width, h = round(w / 0.75) for a tall image)."""
    import statistics

    # log-uniform: log(w/h) centred on 0 (a ratio uniform in (0.75, 1.333) would centre it on 0.029); a scale
    # of at most 0.5 never fails a try on a square image, so no retry skews the draws
    logs = [math.log(w / h) for (_, _, h, w), _ in (T.crop_and_flip(1000, 1000, s, (0.08, 0.5)) for s in range(2000))]
    assert abs(statistics.mean(logs)) < 0.012 and 0.45 < sum(x < 0 for x in logs) / len(logs) < 0.55
    # a 375x500 photo fails about one try in four (h > 375): ten tries leave none to the whole-image fallback
    assert not any(T.crop_and_flip(375, 500, s)[0] == (0, 0, 375, 500) for s in range(400))
    # every try fails on a 1000x10 strip (and its transpose): the fallback's box, centred
    for seed in range(3):
        assert T.crop_and_flip(1000, 10, seed)[0] == (493, 0, 13, 10)
        assert T.crop_and_flip(10, 1000, seed)[0] == (0, 493, 10, 13)
    # ratios above a 1-pixel-wide image's (--crop_ratio_min 3): the fallback's box was 0 high (the CPU pipeline's
    # traceback, the GPU pipeline's black image; helper-290); at least a pixel now, inside the image
    for height, width, ratio in ((1, 1, (3.0, 4.0)), (5, 1, (3.0, 4.0)), (1, 5, (0.1, 0.2)), (1, 1, (0.1, 0.2))):
        for seed in range(20):
            top, left, h, w = T.crop_and_flip(height, width, seed, T.RRC_SCALE, ratio)[0]
            assert 1 <= h and 1 <= w and 0 <= top and top + h <= height and 0 <= left and left + w <= width
    # a box as high as the image but narrower (0 < h <= height) is a try that succeeded, not a fallback
    boxes = [T.crop_and_flip(8, 8, s)[0] for s in range(400)]
    assert any(h == 8 and w < 8 for _, _, h, w in boxes) and any(w == 8 and h < 8 for _, _, h, w in boxes)


def gradient_folder(root):
    """An image folder of 2 classes x 2 JPEGs of 160x120, horizontal gradients (so another crop box
    gives other pixels) under ``root/train``."""
    for c in range(2):
        (root / "train" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            gradient = np.broadcast_to(np.arange(160, dtype=np.uint8)[None, :, None], (120, 160, 3)) + 40 * i + c
            Image.fromarray(np.ascontiguousarray(gradient)).save(root / "train" / f"c{c}" / f"{i}.jpg")


def test_crop_scale_min_bounds_every_training_crop_of_both_pipelines(tmp_path):
    """train --crop_scale_min reaches the crop draws of the CPU pipeline's dataset and of the GPU
    pipeline's workers and feeding process: every box keeps at least that share of the image's area,
    and the draws of a seed are the two pipelines' same box; the seed's 0.08 draws smaller ones."""
    from mobilenet_v1.config import load_config
    from mobilenet_v1.data import BatchedImageLoader, EncodedImageDataset, ImageFolderLoader
    from mobilenet_v1.train import data_options

    gradient_folder(tmp_path)
    cfg = load_config(["--dataset=imagenet2012", f"--dataset_path={tmp_path}", "--crop_scale_min=0.5",
                       "--num_workers=0", "--batch_size=2"])
    opts = data_options(cfg)
    cpu = build_loader(opts, train=True, device=torch.device("cpu"))
    gpu = build_loader(dataclasses.replace(opts, pipeline="gpu"), train=True, device=torch.device("cpu"))
    assert isinstance(cpu, ImageFolderLoader) and isinstance(gpu, BatchedImageLoader)
    workers = gpu.loader.dataset
    assert isinstance(workers, EncodedImageDataset)
    areas = []
    for seed in range(400):
        box, flip = T.crop_and_flip(120, 160, seed, cpu.dataset.crop_scale)
        assert workers._draw((120, 160), seed) == (((120, 160), box, flip))
        assert T.crop_and_flip(120, 160, seed, gpu.crop_scale) == (box, flip)  # the feeding process's draw
        areas.append(box[2] * box[3] / (120 * 160))
    assert min(areas) >= 0.5 * 0.97 and max(areas) <= 1.0
    seed_areas = [b[2] * b[3] / (120 * 160) for b, _ in (T.crop_and_flip(120, 160, s) for s in range(400))]
    assert min(seed_areas) < 0.3  # the default (the seed's 0.08) does draw crops the option rules out
    # the CPU pipeline's workers crop with it (the images are gradients, so another box differs)
    path, _ = cpu.dataset.samples[0]
    img = T.decode_rgb(torch.from_numpy(np.fromfile(path, np.uint8)), path)
    seed = next(s for s in range(400) if T.crop_and_flip(120, 160, s)[0] != T.crop_and_flip(120, 160, s, (0.5, 1.0))[0])
    got, _ = cpu.dataset[(0, seed)]
    assert torch.equal(got, T.random_resized_crop(img, 224, seed, scale=(0.5, 1.0)))


def test_crop_ratio_bounds_every_training_crop_of_both_pipelines(tmp_path):
    """train --crop_ratio_min/--crop_ratio_max (timm's --ratio) reach the crop draws of the CPU pipeline's
    dataset and of the GPU pipeline's workers and feeding process: with 1 and 1.2 every box's aspect ratio
    lies within them (up to the rounding of a side to whole pixels), the two pipelines draw the same box
    for a seed, and the seed's 3/4..4/3 draws boxes outside. Refused crossed, or for CIFAR-10."""
    from mobilenet_v1.config import ConfigError, load_config
    from mobilenet_v1.train import data_options

    gradient_folder(tmp_path)
    cfg = load_config(["--dataset=imagenet2012", f"--dataset_path={tmp_path}", "--crop_ratio_min=1.0",
                       "--crop_ratio_max=1.2", "--num_workers=0", "--batch_size=2"])
    opts = data_options(cfg)
    cpu = build_loader(opts, train=True, device=torch.device("cpu"))
    gpu = build_loader(dataclasses.replace(opts, pipeline="gpu"), train=True, device=torch.device("cpu"))
    assert cpu.dataset.crop_ratio == gpu.crop_ratio == gpu.loader.dataset.crop_ratio == (1.0, 1.2)

    def ratios(crop_ratio):
        out = []
        for seed in range(300):
            (top, left, h, w), _ = T.crop_and_flip(120, 160, seed, T.RRC_SCALE, crop_ratio)
            out.append((w / h, h))
        return out

    for seed in range(300):
        box, flip = T.crop_and_flip(120, 160, seed, cpu.dataset.crop_scale, cpu.dataset.crop_ratio)
        assert gpu.loader.dataset._draw((120, 160), seed) == ((120, 160), box, flip)
        assert T.crop_and_flip(120, 160, seed, gpu.crop_scale, gpu.crop_ratio) == (box, flip)
    # a side rounds to whole pixels: a ratio can leave the range by up to one pixel's share
    assert all(1.0 - 1.5 / h <= r <= 1.2 + 1.5 / h for r, h in ratios((1.0, 1.2)))
    assert min(r for r, _ in ratios(T.RRC_RATIO)) < 0.9 and max(r for r, _ in ratios(T.RRC_RATIO)) > 1.25
    path, _ = cpu.dataset.samples[0]
    img = T.decode_rgb(torch.from_numpy(np.fromfile(path, np.uint8)), path)
    got, _ = cpu.dataset[(0, 7)]
    assert torch.equal(got, T.random_resized_crop(img, 224, 7, ratio=(1.0, 1.2)))
    with pytest.raises(ConfigError, match=r"0 < crop_ratio_min <= crop_ratio_max .* got 1.5 and 1.2"):
        load_config(["--dataset=imagenet2012", "--crop_ratio_min=1.5", "--crop_ratio_max=1.2"])
    with pytest.raises(ConfigError, match="crop_ratio_max 2 is for image folders' training crops"):
        load_config(["--crop_ratio_max=2"])


def test_missing_folder_is_named():
    with pytest.raises(DataError, match="nope"):
        find_images("/nonexistent/nope")


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_an_image_folders_batches_are_the_same_whatever_the_number_of_workers(image_folder, pipeline, one_thread):
    """The README's promise (a sample's crop, flip and augmentation from the seed, the epoch and its position):
    0, 1 or 2 loader workers give the same batches bit for bit, with repeated augmentation, class-balanced draws,
    an augmentation policy and a vertical flip, across a resumed epoch and a change of image size (the
    persistent workers are told it through the sampler's items)."""
    def passes(workers):
        opts = DataOptions("imagenet2012", str(image_folder), batch_size=3, image_size=32, seed=5,
                           num_workers=workers, channels_last=False, pipeline=pipeline, auto_augment="ta_wide",
                           vflip=0.5, aug_repeats=2, class_balance=1.0)
        with build_loader(opts, train=True, device=torch.device("cpu")) as loader:
            loader.set_epoch(1)
            batches = list(loader)
            loader.set_image_size(24)
            loader.set_epoch(2, start_batch=1)
            return batches + list(loader)
    alone = passes(0)
    assert len(alone) == 5 + 4 and alone[-1][0].shape[-1] == 24  # 15 images: 5 batches, less the first
    for workers in (1, 2):
        got = passes(workers)
        assert len(got) == len(alone)
        for (x, y), (x0, y0) in zip(got, alone):
            assert torch.equal(x, x0) and torch.equal(y, y0), (pipeline, workers)


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_closing_a_loader_ends_its_workers_and_a_script_that_leaves_one_open_still_exits(image_folder, pipeline):
    opts = DataOptions("imagenet2012", str(image_folder), batch_size=4, image_size=32, seed=1, num_workers=2,
                       channels_last=False, pipeline=pipeline)
    with build_loader(opts, train=True, device=torch.device("cpu")) as loader:
        first = next(iter(loader))
        workers = list(loader.loader._iterator._workers)
        assert [w.is_alive() for w in workers] == [True, True]
    # Shut down, not killed: a worker PyTorch had to terminate would have exit code -15 (or still run).
    assert [w.exitcode for w in workers] == [0, 0]
    loader.set_epoch(0)
    again = next(iter(loader))  # the next pass starts workers of its own, with the same batches
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    loader.close()
    # A script that closes a loader, starts a pass again and leaves it at its end: multiprocessing's exit
    # waited for ever for workers that served on after its SIGTERM (a scheduler's, as they take it) before
    # loaders were closed at exit. PyTorch's time-outs raised to 300 s: workers not told to end (their
    # queues already stopped) would take it twice, closed or not. The exit handlers run in either order: one
    # script imports multiprocessing's queues before torch (it hung when only multiprocessing's finalizer
    # closed the loaders: that ran after PyTorch had set its exit flag), the other torch first.
    head = "import multiprocessing.queues\n" if pipeline == "cpu" else ""
    script = (head + "import sys, torch\nfrom torch.utils.data import _utils\n"
              "from mobilenet_v1.data import DataOptions, build_loader\n_utils.MP_STATUS_CHECK_INTERVAL = 300\n"
              f"opts = DataOptions('imagenet2012', {str(image_folder)!r}, batch_size=4, image_size=32, seed=1, "
              f"num_workers=2, channels_last=False, pipeline={pipeline!r})\n"
              "loader = build_loader(opts, train=True, device=torch.device('cpu'))\n"
              "next(iter(loader))\nloader.close()\nbatches = iter(loader)\n"
              "images, labels = next(batches)\nprint(tuple(images.shape))\nimport time\n"
              "print(time.time(), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "(4, 3, 32, 32)\n", done
    # The pass's thread, waiting for a batch, is stopped while the workers still serve: stopped after they had
    # closed, it waited out PyTorch's queue time-out, and the exit handler (run twice) waited 10 s each time.
    exit_took = time.time() - float(done.stderr.split()[-1])
    assert exit_took < 15, exit_took


def test_class_balance_draws_classes_by_count_to_one_less_its_power_alike_in_every_shard(tmp_path, image_folder,
                                                                                        capsys):
    """--class_balance p: an epoch's N positions drawn with replacement, a class in proportion to its image
    count ** (1 - p), from the seed and epoch alone (the shards split one draw, a resumed epoch is the
    same: tests/test_resilience.py); evaluation and p 0 keep the permutation."""
    from mobilenet_v1 import cli
    from mobilenet_v1.config import ConfigError, load_config
    from mobilenet_v1.data import balance_line

    labels = np.repeat([0, 1, 2], [160, 32, 8])  # 80%, 16%, 4%
    for power, expected in ((1.0, [1 / 3] * 3), (0.5, np.sqrt([160, 32, 8]) / np.sqrt([160, 32, 8]).sum())):
        sampler = ShardSampler(200, shuffle=True, seed=3, labels=labels, class_balance=power)
        drawn = []
        for epoch in range(30):
            sampler.set_epoch(epoch)
            drawn += [i for i, _ in sampler]
        shares = np.bincount(labels[drawn], minlength=3) / len(drawn)
        assert np.allclose(shares, expected, atol=0.03), (power, shares)
        assert len(set(drawn[:200])) < 200  # with replacement: the rare class's images come again
        sampler.set_epoch(4)
        again = ShardSampler(200, shuffle=True, seed=3, labels=labels, class_balance=power)
        again.set_epoch(4)
        shards = [ShardSampler(200, shuffle=True, seed=3, num_shards=2, shard_id=r, labels=labels,
                               class_balance=power) for r in range(2)]
        for s in shards:
            s.set_epoch(4)
        order = [i for i, _ in sampler]
        assert order == [i for i, _ in again] and [i for i, _ in shards[1]] == order[1::2]
    plain = ShardSampler(200, shuffle=True, seed=3, labels=labels, class_balance=0.0)
    evaluation = ShardSampler(200, shuffle=False, seed=3, even=False, labels=labels, class_balance=1.0)
    assert sorted(i for i, _ in plain) == list(range(200)) and [i for i, _ in evaluation] == list(range(200))
    assert balance_line(labels, 1.0) == ("class_balance 1: an epoch's 200 draws (with replacement) take every class "
                                         "alike: the 3 classes' expected shares 33.33% to 33.33% of the draws, "
                                         "against 4.00% to 80.00% of the images")
    assert "each taken 3 times" in balance_line(labels, 1.0, 3) and "shares stay" in balance_line([0, 1], 0.5)
    # With aug_repeats: runs of 3 copies, the draws still balanced.
    repeated = ShardSampler(200, shuffle=True, seed=3, repeats=3, labels=labels, class_balance=1.0)
    drawn = []
    for epoch in range(30):
        repeated.set_epoch(epoch)
        order = [i for i, _ in repeated]
        assert all(order[3 * k] == order[3 * k + 1] == order[3 * k + 2] for k in range(66))
        drawn += order
    assert np.allclose(np.bincount(labels[drawn], minlength=3) / len(drawn), 1 / 3, atol=0.04)
    # A run says so (the folder: 9 images of n01, 6 of n02), and info names it; 0 to 1 only.
    from mobilenet_v1 import train
    args = [f"--dataset_path={image_folder}", "--dataset=imagenet2012", "--class_num=2", "--batch_size=5",
            "--image_size=32", "--width_mult=0.25", "--epoch_size=1", "--warmup_epochs=0", "--num_workers=0",
            "--device_target=CPU", "--class_balance=1", f"--save_checkpoint_path={tmp_path / 'run'}"]
    run = train.run(load_config(args))["checkpoint"]
    assert ("class_balance 1: an epoch's 15 draws (with replacement) take every class alike: the 2 classes' expected "
            "shares 50.00% to 50.00% of the draws, against 40.00% to 60.00% of the images") in capsys.readouterr().out
    assert cli.main(["info", run]) == 0 and "class_balance 1" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"option --class_balance: class_balance must be in \[0, 1\]"):
        load_config(["--class_balance=1.5"])


@pytest.mark.parametrize("pipeline", ["cifar", "cpu", "gpu"])
def test_class_balance_reaches_each_loader_whose_labels_then_come_out_alike(tmp_path, pipeline):
    """Each loader (CIFAR's, the CPU pipeline's, the GPU pipeline's code on the CPU) draws by the labels of
    its own samples: over 20 epochs of a 20 / 4 / 2 image set, the labels it yields are a third each, and
    one epoch's draws are not the next one's."""
    from conftest import class_images

    counts = (20, 4, 2)
    labels = np.repeat(np.arange(3), counts)
    if pipeline == "cifar":
        (tmp_path / "cifar-10-batches-bin").mkdir()
        write_cifar_bin(str(tmp_path / "cifar-10-batches-bin" / "data_batch_1.bin"), class_images(labels, 1), labels)
        opts = DataOptions("cifar10", str(tmp_path), 13, 32, seed=2, num_workers=0, channels_last=False,
                           class_balance=1.0)
    else:
        for c, n in enumerate(counts):
            (tmp_path / "train" / f"c{c}").mkdir(parents=True)
            for i in range(n):
                image = Image.fromarray(np.full((12, 16, 3), 40 * c + i, np.uint8))
                image.save(tmp_path / "train" / f"c{c}" / f"{i}.png")
        opts = DataOptions("imagenet2012", str(tmp_path), 13, 16, seed=2, num_workers=0, channels_last=False,
                           pipeline=pipeline, class_balance=1.0)
    loader = build_loader(opts, train=True, device=torch.device("cpu"))
    assert loader.sampler.class_balance == 1.0
    yielded = []
    for epoch in range(20):
        loader.set_epoch(epoch)
        yielded.append(torch.cat([y for _, y in loader]).tolist())
    shares = np.bincount(sum(yielded, []), minlength=3) / (20 * 26)
    assert np.allclose(shares, 1 / 3, atol=0.07), shares  # without balancing: 0.77, 0.15, 0.08
    assert yielded[0] != yielded[1]


def test_a_folder_linked_twice_in_a_class_is_read_under_one_name_whatever_the_listing_order(tmp_path, monkeypatch):
    """cat/best a link to cat/2023: its images are read once, under the name that sorts first. Which name was
    kept followed the file system's listing order, so val_split (which hashes the names) could hold out other
    images on another copy of the folder."""
    from mobilenet_v1 import data

    year = tmp_path / "cat" / "2023"
    year.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (8, 8)).save(year / f"{i}.jpg")
    (tmp_path / "cat" / "best").symlink_to("2023")
    plain = os.scandir

    class Reversed:
        """os.scandir's entries in reverse order, as another file system may list them."""
        def __init__(self, path):
            with plain(path) as inner:
                self.entries = iter(list(inner)[::-1])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.entries)

    expected = [str(year / f"{i}.jpg") for i in range(3)]
    assert data.image_files_under(str(tmp_path / "cat")) == expected
    monkeypatch.setattr(os, "scandir", Reversed)
    assert data.image_files_under(str(tmp_path / "cat")) == expected


def test_folder_samples_are_held_as_arrays_and_round_trip_every_name(tmp_path):
    """An image folder's samples are a FileSamples (paths in one byte buffer, labels an int64 array), never a list
    of (str, int) tuples, whose items' reference counts, written as each loader worker reads them, copied the whole
    list into every worker over an epoch (pytorch/pytorch#13246: 273 MB a worker at ImageNet's 1.28M images).
    Every path comes back as the listing gave it, a file name that is not UTF-8 (Latin-1) included."""
    from mobilenet_v1.archive import PathTable
    from mobilenet_v1.data import EncodedImageDataset, FileSamples

    odd = b"caf\xe9 \xff.png"  # not UTF-8: os.listdir gives it as surrogates
    root = tmp_path / "split"
    for cls, names in (("ant", [b"a.png", odd]), ("bee", [b"b.png"])):
        os.makedirs(os.path.join(os.fsencode(root), cls.encode()))
        for name in names:
            with open(os.path.join(os.fsencode(root), cls.encode(), name), "wb") as f:
                f.write(b"png")
    samples, classes = find_images(str(root))
    assert isinstance(samples, FileSamples) and classes == ["ant", "bee"]
    assert [os.fsencode(os.path.basename(p)) for p, _ in samples] == [b"a.png", odd, b"b.png"]
    assert [y for _, y in samples] == [0, 0, 1] and samples.labels.dtype == np.int64
    for path, _ in samples:
        assert os.path.isfile(path)  # the very file: its bytes went in and came back
    assert samples[-1] == samples[2] and samples[1][0] == os.path.join(str(root), "ant", os.fsdecode(odd))
    assert list(samples[1:]) == list(samples)[1:] and samples.subset([2, 0]) == [samples[2], samples[0]]
    assert pickle.loads(pickle.dumps(samples)) == samples  # as a spawned worker would get it

    table = PathTable(["", "/x/é.JPEG", os.fsdecode(odd)])
    assert list(table) == ["", "/x/é.JPEG", os.fsdecode(odd)] and table[-1] == os.fsdecode(odd)
    assert list(table.take([2, 0, 2])) == [os.fsdecode(odd), "", os.fsdecode(odd)] and len(PathTable()) == 0
    with pytest.raises(IndexError):
        table[3]
    with pytest.raises(IndexError):
        table.take([-4])  # not wrapped around to the last (whose start is 0: every string as one)
    # Any str round-trips, whatever the file system's encoding: a PAX member's UTF-8 name under an ASCII locale.
    wide = ["t.tar/ant/\u65e5\u672c.png", "\ud800", os.fsdecode(odd)]
    assert list(PathTable(wide)) == wide and PathTable(wide)[0] == wide[0]
    # An archive's samples hold their members' names so too.
    from mobilenet_v1.archive import ArchiveImages
    packed = ArchiveImages(["s.tar"], [0, 0, 0], ["ant/a.png", "ant/" + os.fsdecode(odd), "bee/b.png"], [0, 512, 1024],
                           [3, 3, 3], [0, 0, 1])
    assert isinstance(packed.names, PathTable) and isinstance(packed.subset([2, 1]).names, PathTable)
    assert [(str(m), m.offset, y) for m, y in packed.subset([2, 1])] == [("bee/b.png", 1024, 1),
                                                                        ("ant/" + os.fsdecode(odd), 512, 0)]

    # The data sets hold them as they are, and make a given list such a store too (not a list of their own).
    as_list = list(samples)
    for ds in (ImageFolderDataset(samples, train=False, image_size=8), ImageFolderDataset(as_list, False, 8),
               EncodedImageDataset(samples), EncodedImageDataset(as_list)):
        assert isinstance(ds.samples, FileSamples) and not isinstance(ds.samples, list), type(ds.samples)
        assert isinstance(ds.samples.paths, PathTable) and isinstance(ds.samples.paths.blob, bytes)
        assert ds.samples == as_list
    loader = build_loader(DataOptions("imagenet2012", str(root), batch_size=2, image_size=8, seed=1,
                                      num_workers=0, channels_last=False), train=True, device=torch.device("cpu"))
    assert isinstance(loader.samples, FileSamples) and loader.dataset.samples is loader.samples
    assert np.array_equal(np.asarray(loader.sampler.all_labels()), [0, 0, 1])


def test_loader_workers_freeze_what_they_inherit_out_of_the_garbage_collector(tmp_path):
    """Both pipelines' workers start with data.start_worker, which freezes the objects they inherit out of the
    cyclic garbage collector: a full collection writes to every container's header, the parent's included,
    and copied about 80 MB of its pages into each worker (benchmarks/worker_memory.py)."""
    import gc

    from mobilenet_v1 import data
    for cls in ("ant", "bee"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 90, 40, 200)).save(tmp_path / cls / f"{i}.png")
    opts = DataOptions("imagenet2012", str(tmp_path), batch_size=2, image_size=8, seed=1, num_workers=1,
                       channels_last=False)
    for pipeline in ("cpu", "gpu"):
        loader = build_loader(dataclasses.replace(opts, pipeline=pipeline), train=True, device=torch.device("cpu"))
        try:
            assert loader.loader.worker_init_fn is data.start_worker, pipeline
        finally:
            loader.close()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker's start, as the DataLoader forks it
        try:
            os.close(read)
            data.start_worker(0)
            os.write(write, str(gc.get_freeze_count()).encode())
        finally:
            os._exit(0)
    os.close(write)
    frozen = int(os.read(read, 64) or b"0")
    os.close(read)
    os.waitpid(pid, 0)
    assert frozen > 1000 and gc.get_freeze_count() == 0  # the worker's, not this process's


def test_val_splits_relative_names_are_relpaths_own(tmp_path, monkeypatch):
    """held_out hashes each file's path relative to the split, its folder's part worked out once a folder
    (os.path.relpath per file was most of val_split's choice at ImageNet's size): the same names as relpath
    gives, whatever the form of the paths, and so the same files held out."""
    from mobilenet_v1 import data
    monkeypatch.chdir(tmp_path)
    odd = os.fsdecode(b"caf\xe9.png")
    roots = ["split", "split/", "./split", str(tmp_path / "split"), "other/../split", "split/a/deep"]
    files = ["split/a/x.png", "split/a/deep/y.png", "./split/b/" + odd, str(tmp_path / "split" / "b" / "z.png"),
             "split//a//w.png", "split/../split/a/v.png", "split/top.png",
             "./split", "split/a", "other"]  # the root itself, a folder above one, beside it: never an image, exact
    for root in roots:
        folders: dict = {}
        for f in files:
            assert data._relative(f, root, folders) == os.path.relpath(f, root).replace(os.sep, "/"), (f, root)
    many = [f"split/c{i % 7}/sub{i % 3}/img{i}.png" for i in range(300)]
    chosen = data.held_out(many, "split", 0.2)
    assert len(chosen) == 60
    keys = {f: hashlib.blake2b(os.fsencode(os.path.relpath(f, "split")), digest_size=8).digest() for f in many}
    assert chosen == set(sorted(many, key=lambda f: (keys[f], f))[:60])


def test_cifar_training_crop_takes_every_offset_of_the_4_pixel_padding_and_flips_half():
    """The seed's CIFAR-10 train transform: RandomCrop 32 with 4 pixels of zero padding (offsets 0 to 8 in each
    direction, each as likely) and a horizontal flip at p 0.5. Each pixel holds its own column and row (+1; the
    padding is 0), so the batch shows each sample's crop offset and flip."""
    n = 576
    cols = torch.arange(1, 33, dtype=torch.uint8).view(1, 32).expand(32, 32)
    image = torch.stack([cols, cols.t(), torch.zeros(32, 32, dtype=torch.uint8)])
    loader = CifarLoader(image.expand(n, 3, 32, 32).contiguous(), torch.arange(n) % 10, batch_size=96, train=True,
                         image_size=32, device=torch.device("cpu"), seed=1)
    loader.normalize = lambda x: x  # the pixels as they are
    loader.set_epoch(0)
    x = torch.cat([b for b, _ in loader]).long()
    assert x.shape == (n, 3, 32, 32)
    step = x[:, 0, 16, 17] - x[:, 0, 16, 16]  # +1 left to right as read, -1 flipped
    assert set(step.tolist()) == {1, -1}
    flipped = step == -1
    # the centre pixel (16, 16) of the 40x40 padded image's window at (dy, dx) is original (12 + dy, 12 + dx)
    dx = torch.where(flipped, x[:, 0, 16, 15], x[:, 0, 16, 16]) - 13
    dy = x[:, 1, 16, 16] - 13
    assert set(dx.tolist()) == set(range(9)) == set(dy.tolist())
    assert 0.4 < flipped.float().mean().item() < 0.6
    for d in (dx, dy):
        counts = torch.bincount(d, minlength=9).float() / n
        assert float(counts.min()) > 0.5 / 9 and float(counts.max()) < 1.5 / 9


def test_an_evaluation_shards_length_is_the_samples_it_yields():
    """Evaluation's uneven shards (every image once over the ranks, the seed's count under ``keep``): ``len`` is what
    the loaders make their batch count of, so one short leaves a last batch (an image, where the split is a
    multiple of the batch plus one) out of every evaluation without a word."""
    for size in (1, 7, 101, 103):
        for shards in (1, 2, 3, 4):
            for keep in (None, size - size % 2):
                parts = [ShardSampler(size, shuffle=False, seed=1, num_shards=shards, shard_id=r, even=False, keep=keep)
                         for r in range(shards)]
                assert [len(p) for p in parts] == [len(list(p)) for p in parts], (size, shards, keep)
                assert sum(len(p) for p in parts) == (size if keep is None else keep)


def test_a_folder_of_the_other_kind_names_the_dataset_that_reads_it(cifar_dir, tmp_path, monkeypatch):
    """--dataset's default is cifar10: a timm or torchvision user's first run on a folder of class folders said
    "no CIFAR-10 .bin files found", and --dataset imagenet2012 on CIFAR's binaries "no image files in its class
    sub-folders", neither naming the --dataset that reads the folder. A dataset_path written ~/data in a
    config file (no shell expands it there) was "does not exist" alone."""
    photos = tmp_path / "photos"
    for split in ("train", "val"):
        (photos / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(photos / split / "cat" / "0.jpg")
    for root in (photos, photos / "train"):
        with pytest.raises(DataError, match=r"no CIFAR-10 .bin files .*: it holds folders of images \(an "
                                            r"ImageNet-style folder\): --dataset imagenet2012$"):
            load_cifar(str(root), True)
    with pytest.raises(DataError, match=r"no image files in its class sub-folders; it holds CIFAR-10's files: "
                                        r"--dataset cifar10$"):
        find_images(str(cifar_dir))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match=rf"does not exist \(it starts with ~, which only a shell expands.*give "
                                        rf"{tmp_path / 'photos'}\)$"):  # no ./~/photos to offer: nothing to read there
        load_cifar("~/photos", True)
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match=rf"^--checkpoint_path ~/run: no such file or run folder \(it starts "
                                              rf"with ~, .*give {tmp_path / 'run'}\)$"):
        check_given("~/run", "--checkpoint_path")
    # Not under the home folder either: no path to give in its place (it would not be there).
    with pytest.raises(CheckpointError, match=rf"^--checkpoint_path ~/gone: no such file or run folder \(it starts "
                                              rf"with ~, .*; {tmp_path / 'gone'}, what a shell makes of it, is not "
                                              rf"there either\)$"):
        check_given("~/gone", "--checkpoint_path")
    with pytest.raises(DataError, match=r"has no class sub-folders; it holds CIFAR-10's files: --dataset cifar10$"):
        find_images(str(cifar_dir / CIFAR_TRAIN_FOLDER))  # the seed's folder of .bin files itself


def test_cifar_resize_rounds_to_the_nearest_uint8_as_the_seeds_resize():
    """batch_resize_uint8 (the CIFAR loaders' resize to image_size, predict's of a CIFAR model's photo) rounds the
    bilinear values to the nearest integer: a step from 0 to 1 doubled in size is 0, 0, 1, 1 (0.25 and 0.75 in
    between), not 0, 0, 0, 1 as a cast would truncate it; 255 stays 255."""
    x = torch.tensor([[0, 1], [0, 1]], dtype=torch.uint8).expand(1, 3, 2, 2)
    out = T.batch_resize_uint8(x, 4)
    assert out.dtype == torch.uint8 and out.shape == (1, 3, 4, 4)
    assert out[0, 0].tolist() == [[0, 0, 1, 1]] * 4
    bright = torch.tensor([[250, 255], [255, 255]], dtype=torch.uint8).expand(1, 3, 2, 2)
    up = T.batch_resize_uint8(bright, 4)[0, 0]
    assert up[0].tolist() == [250, 251, 254, 255] and up[-1].tolist() == [255] * 4


@pytest.mark.parametrize("channels_last", [False, True])
def test_cifar_batches_resized_to_float_and_normalised_from_uint8_are_those_of_the_uint8_route(channels_last):
    """CIFAR's loader keeps its resize's rounded values in float32 for Normalize, and Normalize reads uint8 inside
    its addcmul (helper-379: 416 -> 623 images/s at 224 on the CPU): the batches are those of the resize back to
    uint8 and a float copy before the addcmul, bit for bit, in the layout asked; at 32 the batch passes as it is."""
    x = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    norm = T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD, torch.device("cpu"), channels_last)
    for size in (32, 64, 224):
        got = norm(T.batch_resize_uint8(x, size, torch.float32))
        resized = T.batch_resize_uint8(x, size)
        assert resized.dtype == torch.uint8
        want = torch.addcmul(norm.shift, resized.contiguous().float(), norm.scale)
        assert got.dtype == torch.float32 and torch.equal(got, want), size
        assert got.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def test_a_samples_flip_is_the_draw_after_its_crop_box_below_one_half():
    """crop_and_flip draws a sample's box, then its flip, from one generator seeded by the sample's seed alone:
    flipped where that next draw is below 0.5 (torchvision's RandomHorizontalFlip, rand < p). Both pipelines
    and a resumed epoch take these draws, so which samples are flipped is fixed by their seeds."""
    import random

    flips = []
    for seed in range(200):
        rng = random.Random(seed)
        box = T.random_resized_crop_box(375, 500, rng)
        flips.append(rng.random() < 0.5)
        assert T.crop_and_flip(375, 500, seed) == (box, flips[-1]), seed
    assert 80 < sum(flips) < 120


def test_an_image_model_on_cifar_binaries_is_told_they_are_cifar_files(cifar_dir):
    # eval of a model trained on class folders (4 classes) given a folder of CIFAR-10's binaries read its two
    # split folders as classes and said only that cifar-10-batches-bin and cifar-10-verify-bin are not among them.
    with pytest.raises(DataError, match=r"are not among the 4 classes .*; it holds CIFAR-10's files, not class "
                                        r"folders of images$"):
        find_images(str(cifar_dir), ["10", "2", "A", "b"])


def test_a_jpeg_of_thousands_of_repeated_scans_is_an_unreadable_file_not_minutes_of_decoding():
    """libjpeg makes a pass over the whole image for each scan and only warns at one that repeats another: a
    331 KB 4096x4096 JPEG of 5,000 repeated scans took 83 s to decode. Such a file is refused by its count."""

    buf = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    start = data.rfind(b"\xff\xda")  # the last scan, repeated up to the end-of-image marker
    last = data[start:data.rfind(b"\xff\xd9")]
    hostile = data[:start] + last * (T.MAX_JPEG_SCANS + 1) + data[start + len(last):]
    began = time.monotonic()
    with pytest.raises(T.DecodeError, match=r"holds 1\d\d scans, past the 100"):
        T.decode_rgb(torch.frombuffer(bytearray(hostile), dtype=torch.uint8), "x.jpg")
    assert time.monotonic() - began < 1
    assert T.decode_rgb(torch.frombuffer(bytearray(data), dtype=torch.uint8), "ok.jpg").shape == (3, 64, 64)


def test_a_one_pixel_image_decodes_without_torch_s_not_writable_warning(tmp_path):
    """A 1x1 image's transposed planes are contiguous already: np.ascontiguousarray kept PIL's read-only bytes and
    torch.from_numpy printed its UserWarning (with a source line) in train, eval, predict and data-stats."""
    import warnings

    from PIL import Image

    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = T.decode_rgb(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), str(path))
    assert img.flatten().tolist() == [10, 20, 30]
