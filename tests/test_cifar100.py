"""--dataset cifar100: CIFAR-100's binary files (a coarse and a fine label byte a record) read as CIFAR-10's
are, their fine labels the classes, through training, eval, export and predict."""
import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.data import (CIFAR100_FOLDER, DataError, DataOptions, build_loader, load_cifar, read_cifar_bin,
                               write_cifar_bin)
from mobilenet_v1.onnx_io import OnnxModel
from mobilenet_v1.predict import CIFAR100_CLASSES
from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD

from conftest import class_images

FINE = np.array([0, 1, 2, 3, 97, 99])  # class_images marks 0-3 visibly; 97 and 99 reach the end of the range


@pytest.fixture
def cifar100_dir(tmp_path):
    """CIFAR-100's layout: cifar-100-binary/train.bin (96 records) and test.bin (24), fine labels of FINE."""
    folder = tmp_path / "c100" / CIFAR100_FOLDER
    folder.mkdir(parents=True)
    for name, n, seed in (("train.bin", 96, 1), ("test.bin", 24, 2)):
        fine = FINE[np.arange(n) % len(FINE)]
        coarse = (fine * 7 + 3) % 20  # not the labels: a reader taking the first byte would be caught
        write_cifar_bin(str(folder / name), class_images(fine, seed), fine, coarse=coarse)
    return tmp_path / "c100"


def test_cifar100_files_give_their_fine_labels_and_a_mix_up_of_formats_is_named(cifar100_dir, cifar_dir, tmp_path):
    fine = FINE[np.arange(96) % len(FINE)]
    for root in (cifar100_dir, cifar100_dir / CIFAR100_FOLDER):  # the folder that holds it, or itself
        x, y = load_cifar(str(root), True, "cifar100")
        assert torch.equal(y, torch.from_numpy(fine)) and torch.equal(x, torch.from_numpy(class_images(fine, 1)))
        assert len(load_cifar(str(root), False, "cifar100")[1]) == 24
    opts = DataOptions("cifar100", str(cifar100_dir), 8, 32, seed=1, num_workers=0, channels_last=False)
    loader = build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False)
    assert loader.num_classes == 100 and sum(len(y) for _, y in loader) == 24
    # CIFAR-10's files as CIFAR-100's, and a CIFAR-100 file as CIFAR-10's: each named for what it is.
    for root in (cifar_dir, cifar_dir / "cifar-10-batches-bin"):  # the folder that holds its folders, or one
        with pytest.raises(DataError, match=r"no CIFAR-100 train.bin .*: it holds CIFAR-10's \(data_batch_\*.bin, "
                                            r"test_batch.bin\): --dataset cifar10"):
            load_cifar(str(root), True, "cifar100")
    for root in (cifar100_dir, cifar100_dir / CIFAR100_FOLDER):
        with pytest.raises(DataError, match=r"no CIFAR-10 .bin files: it holds CIFAR-100's binary version "
                                            r"\(train.bin, test.bin\): --dataset cifar100"):
            load_cifar(str(root), True)
    with pytest.raises(DataError, match=r"CIFAR-10 file .*train.bin: 295104 bytes is not a whole number of "
                                        r"3073-byte records .*: a CIFAR-100 file\? \(--dataset cifar100\)"):
        read_cifar_bin(str(cifar100_dir / CIFAR100_FOLDER / "train.bin"))
    (tmp_path / "empty.bin").touch()  # not "0 bytes is not a whole number of records"
    with pytest.raises(DataError, match=r"^CIFAR-10 file .*empty\.bin: empty \(0 bytes\)$"):
        read_cifar_bin(str(tmp_path / "empty.bin"))
    # CIFAR-10 records in files named as CIFAR-100's are still read as other .bin files are (with a warning).
    ten = tmp_path / "ten"
    ten.mkdir()
    write_cifar_bin(str(ten / "train.bin"), class_images(np.arange(4), 1), np.arange(4))
    with pytest.warns(UserWarning, match="no data_batch_"):
        assert len(load_cifar(str(ten), True)[1]) == 4
    bad = tmp_path / "bad.bin"
    write_cifar_bin(str(bad), class_images(np.array([5, 100]), 3), np.array([5, 100]), coarse=np.array([1, 1]))
    with pytest.raises(DataError, match=r"CIFAR-100 file .*bad.bin: record 1 has fine label 100, outside 0..99 "
                                        r"\(1 such record\)$"):
        read_cifar_bin(str(bad), "cifar100")


def test_a_cifar100_run_trains_100_classes_and_its_files_say_cifar100(cifar100_dir, cifar_dir, tmp_path, capsys):
    cfg = load_config(["--dataset=cifar100", f"--dataset_path={cifar100_dir}", "--width_mult=0.25", "--image_size=32",
                       "--batch_size=16", "--epoch_size=1", "--warmup_epochs=0", "--device_target=CPU",
                       "--num_workers=0", "--eval_interval=1", f"--save_checkpoint_path={tmp_path / 'run'}"])
    assert cfg.class_num == 100 and cfg.lr_max == load_config([]).lr_max  # CIFAR-10's recipe, 100 outputs
    run = train.run(cfg)
    assert run["checkpoint"] and "top-1" in capsys.readouterr().out
    # eval takes the data set the file records, as predict and export do; another one given is refused.
    assert cli.main(["eval", f"--dataset_path={cifar100_dir}", "--device_target=CPU", "--num_workers=0",
                     f"--checkpoint_path={run['checkpoint']}", "--json"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["total"] == 24
    assert f"dataset cifar100: what {run['checkpoint']} was trained on (the file records it)" in said.err
    # A subset whose labels stop below 99 is CIFAR-100 still: its own model is not said to be another's (helper-360)
    sub = tmp_path / "sub" / CIFAR100_FOLDER
    sub.mkdir(parents=True)
    for name in ("train.bin", "test.bin"):
        write_cifar_bin(str(sub / name), class_images(np.arange(4), 3), np.arange(4), coarse=np.arange(4))
    assert cli.main(["eval", f"--dataset_path={sub.parent}", "--device_target=CPU", "--num_workers=0",
                     f"--checkpoint_path={run['checkpoint']}"]) == 0
    assert "is it the model of this data set" not in capsys.readouterr().err
    assert cli.main(["eval", "--dataset=cifar10", f"--dataset_path={cifar100_dir}", "--device_target=CPU",
                     "--num_workers=0", f"--checkpoint_path={run['checkpoint']}"]) != 0
    assert ("was trained on cifar100 (the file records it), whose classes are others: pass --dataset cifar100"
            in capsys.readouterr().err)
    # CIFAR-10's files for it, --dataset given or not: named as such. The data set's own message said "it holds
    # CIFAR-10's: --dataset cifar10", which the check above then refused: the two sent the user back and forth.
    wrong = (f"holds CIFAR-10's files, not CIFAR-100's, which {run['checkpoint']} was trained on (the file "
             f"records it), whose classes are others: give it CIFAR-100's")
    for given in ([], ["--dataset=cifar10"], ["--dataset=cifar100"]):
        assert cli.main(["eval", *given, f"--dataset_path={cifar_dir}", "--device_target=CPU", "--num_workers=0",
                         f"--checkpoint_path={run['checkpoint']}"]) != 0
        assert f"dataset_path {cifar_dir}: {wrong}" in capsys.readouterr().err, given
    assert cli.main(["recalibrate-bn", run["checkpoint"], "--dataset_path", str(cifar_dir), "--out",
                     str(tmp_path / "r.pt")]) != 0
    assert f"--dataset_path {cifar_dir}: {wrong}" in capsys.readouterr().err
    assert not (tmp_path / "r.pt").exists()
    onnx = str(tmp_path / "model")
    assert cli.main(["export", "--ckpt_file", run["checkpoint"], "--file_name", onnx]) == 0
    meta = OnnxModel(onnx + ".onnx").metadata
    assert meta["dataset"] == "cifar100" and meta["mean"] == list(CIFAR_MEAN) and meta["std"] == list(CIFAR_STD)
    capsys.readouterr()
    assert cli.main(["quantize", "--onnx", onnx + ".onnx", "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "q.onnx")]) != 0
    assert f"--calib_data {cifar_dir}: {wrong.replace(run['checkpoint'], onnx + '.onnx')}" in capsys.readouterr().err
    image = tmp_path / "one.png"
    from PIL import Image
    Image.fromarray(class_images(np.array([2]), 5)[0].transpose(1, 2, 0)).save(image)
    assert cli.main(["predict", str(image), "--ckpt_file", onnx + ".onnx", "--labels", "cifar100", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["dataset"] == "cifar100"
    assert all(t["label"] == CIFAR100_CLASSES[t["index"]] for t in got["predictions"][0]["top_k"])
    assert len(CIFAR100_CLASSES) == len(set(CIFAR100_CLASSES)) == 100 and CIFAR100_CLASSES[99] == "worm"
    # A MindSpore .ckpt records no data set: predict says what it guessed from the 100 classes, and the way out.
    bare = str(tmp_path / "bare.ckpt")
    assert cli.main(["convert", run["checkpoint"], bare]) == 0
    capsys.readouterr()
    assert cli.main(["predict", str(image), "--ckpt_file", bare, "--image_size", "32"]) == 0
    assert (f"predict: note: {bare} does not record the data set it was trained on: images are read and normalised "
            f"as imagenet2012's are, guessed from its 100 classes; if it was trained otherwise, predict with "
            f"--dataset cifar100") in capsys.readouterr().err
    # CIFAR's keys and refusals hold for it too.
    with pytest.raises(ConfigError, match=r"val_split 0.1 holds out images of an image folder .*CIFAR-100 evaluates "
                                          r"on its test\.bin \(the Python version's test\)"):  # both versions named
        load_config(["--dataset=cifar100", "--val_split=0.1"])
    with pytest.raises(ConfigError, match="crop_pct 0.9 is for image folders' evaluation; CIFAR-100's resizes"):
        load_config(["--dataset=cifar100", "--crop_pct=0.9"])


def test_the_names_file_beside_the_bin_files_names_the_classes_from_training_to_predict(cifar_dir, cifar100_dir,
                                                                                         tmp_path, capsys):
    """The binary archives' names files (batches.meta.txt, fine_label_names.txt) name a run's classes: its
    checkpoints record them, so eval's per-class figures, export's metadata and predict show names, not
    numbers. The seed's evaluation folder (a copy of test_batch.bin) is named from cifar-10-batches-bin
    beside it. A file that does not fit the labels is named in a warning and left unused."""
    from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, DataWarning, cifar_class_names
    from mobilenet_v1.predict import CIFAR10_CLASSES
    meta = cifar_dir / CIFAR_TRAIN_FOLDER / "batches.meta.txt"
    assert cifar_class_names(str(cifar_dir), True) is None  # none shipped: numbers, as before
    meta.write_text("\n".join(CIFAR10_CLASSES) + "\n\n")  # as the archive has it: a blank line at the end
    assert cifar_class_names(str(cifar_dir), True) == list(CIFAR10_CLASSES)
    assert cifar_class_names(str(cifar_dir / CIFAR_EVAL_FOLDER), False) == list(CIFAR10_CLASSES)
    names100 = [f"fine{i}" for i in range(100)]
    (cifar100_dir / CIFAR100_FOLDER / "fine_label_names.txt").write_text("\n".join(names100) + "\n")
    assert cifar_class_names(str(cifar100_dir), False, "cifar100") == names100
    labels = torch.tensor([0, 3, 1])  # labels up to 3: four names at least
    for text, problem in (("a\nb\nc\n", "3 names, where the labels need 4 to 10"),
                          ("a\nb\n\nc\nd\n", "line 3 is empty"), ("a\nb\na\nd\n", "'a' is named twice")):
        meta.write_text(text)
        with pytest.warns(DataWarning, match=rf"{meta}: {problem}; the classes are left unnamed"):
            assert cifar_class_names(str(cifar_dir), True, labels=labels) is None
    meta.write_bytes(b"\xef\xbb\xbfcat\r\ndog\r\nbird \r\nfish\r\n")  # data of one's own: BOM, CRLF and all
    assert cifar_class_names(str(cifar_dir), True, labels=labels) == ["cat", "dog", "bird", "fish"]
    # A bad file is said once, though both splits' loaders read it (the eval split's from beside its folder).
    meta.write_text("a\nb\na\nd\n")
    options = DataOptions("cifar10", str(cifar_dir), 8, 32, seed=0, num_workers=0, channels_last=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for train_split in (True, False):
            assert build_loader(options, train=train_split, device=torch.device("cpu")).classes is None
    assert [str(w.message) for w in seen if w.category is DataWarning] == [
        f"{meta}: 'a' is named twice; the classes are left unnamed (their numbers)"]
    # Only the seed's verify folder borrows cifar-10-batches-bin's names: not a folder of one's own beside it.
    own = cifar_dir / "own"
    own.mkdir()
    shutil.copy(cifar_dir / CIFAR_EVAL_FOLDER / "test_batch.bin", own)
    assert cifar_class_names(str(own), False, labels=labels) is None

    meta.write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    args = [f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--image_size=32", "--batch_size=32",
            "--epoch_size=1", "--warmup_epochs=0", "--device_target=CPU", "--num_workers=0"]
    # Too few outputs is refused in the words of CIFAR's labels, which are not class folders.
    with pytest.raises(ConfigError, match=r"class_num 3 is too small for dataset_path .*: it has labels 0..3 in its "
                                          r"\.bin files; pass --class_num 10 \(CIFAR-10's named classes\), or 4 for "
                                          r"its labels alone$"):
        train.run(load_config(args + ["--class_num=3", f"--save_checkpoint_path={tmp_path / 'few'}"]))
    run = train.run(load_config(args + [f"--save_checkpoint_path={tmp_path / 'run'}"]))
    assert ckpt_io.load_torch_file(run["checkpoint"])["classes"] == list(CIFAR10_CLASSES)
    # A model of 4 outputs records the names of its 4 (predict refuses a list longer than the outputs).
    four = train.run(load_config(args + ["--class_num=4", f"--save_checkpoint_path={tmp_path / 'four'}"]))
    assert ckpt_io.load_torch_file(four["checkpoint"])["classes"] == list(CIFAR10_CLASSES[:4])
    # A resume: other names are only other names (the labels are the files' numbers), and data without a
    # names file keeps the recorded ones.
    meta.write_text("\n".join(n.upper() for n in CIFAR10_CLASSES) + "\n")
    capsys.readouterr()
    again = train.run(load_config(args + ["--epoch_size=2", "--resume=auto",
                                          f"--save_checkpoint_path={tmp_path / 'run'}"]))
    assert (f"resume: {run['checkpoint']} recorded the class names airplane, automobile, bird, cat, deer ..., the data "
            f"set's names file says AIRPLANE, AUTOMOBILE, BIRD, CAT, DEER ...: its checkpoints record those from "
            f"here") in capsys.readouterr().out
    assert ckpt_io.load_torch_file(again["checkpoint"])["classes"] == [n.upper() for n in CIFAR10_CLASSES]
    # A checkpoint that recorded a names file's every name (before runs recorded those of their outputs only)
    # keeps those of its outputs.
    assert train.resumed_names(list(CIFAR10_CLASSES), None, "a.ckpt", 4) == (list(CIFAR10_CLASSES[:4]), "")
    meta.unlink()
    last = train.run(load_config(args + ["--epoch_size=3", "--resume=auto",
                                         f"--save_checkpoint_path={tmp_path / 'run'}"]))
    assert ckpt_io.load_torch_file(last["checkpoint"])["classes"] == [n.upper() for n in CIFAR10_CLASSES]
    # eval names the classes from what the checkpoint records; where the data's names file differs, it says so.
    evaluate = ["eval", f"--dataset_path={cifar_dir}", "--device_target=CPU", "--num_workers=0", "--per_class",
                "--json"]
    capsys.readouterr()
    assert cli.main(evaluate + [f"--checkpoint_path={run['checkpoint']}"]) == 0
    rows = json.loads(capsys.readouterr().out)["per_class"]
    assert [r["class"] for r in rows] == [CIFAR10_CLASSES[r["index"]] for r in rows] and len(rows) >= 4
    (cifar_dir / CIFAR_EVAL_FOLDER / "batches.meta.txt").write_text("\n".join(n.upper() for n in CIFAR10_CLASSES))
    assert cli.main(evaluate + [f"--checkpoint_path={four['checkpoint']}"]) == 0
    said = capsys.readouterr()
    assert [r["class"] for r in json.loads(said.out)["per_class"]] == list(CIFAR10_CLASSES[:4])
    assert (f"note: {four['checkpoint']} records the class names airplane, automobile, bird, cat, {cifar_dir}'s names "
            f"file says AIRPLANE, AUTOMOBILE, BIRD, CAT, DEER ...: the figures name the model's") in said.err
    onnx = str(tmp_path / "model")
    assert cli.main(["export", "--ckpt_file", run["checkpoint"], "--file_name", onnx]) == 0
    assert OnnxModel(onnx + ".onnx").metadata["classes"] == list(CIFAR10_CLASSES)
    image = tmp_path / "one.png"
    from PIL import Image
    Image.fromarray(class_images(np.array([2]), 5)[0].transpose(1, 2, 0)).save(image)
    capsys.readouterr()
    for model in (run["checkpoint"], onnx + ".onnx"):
        assert cli.main(["predict", str(image), "--ckpt_file", model, "--top_k", "10", "--json"]) == 0
        top = json.loads(capsys.readouterr().out)["predictions"][0]["top_k"]
        assert sorted(t["label"] for t in top) == sorted(CIFAR10_CLASSES)
        assert all(t["label"] == CIFAR10_CLASSES[t["index"]] for t in top)
