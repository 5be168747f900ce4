"""What a user's slip meets: an output that would destroy an input, a model evaluated on another data
set, our warnings, running out of memory. Each is refused or said in one line, with nothing lost."""
import contextlib
import errno
import hashlib
import json
import importlib
import os
import stat
import re
import shutil
import subprocess
import sys
import tarfile
import warnings

import pytest
import torch
from PIL import Image

from conftest import jpeg_bytes, smooth_image
from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, export, onnx_io
from mobilenet_v1.config import ConfigError
from mobilenet_v1.data import BadSampleWarning
from mobilenet_v1.model import MobileNetV1

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def save(path, class_num=4, dataset="cifar10", classes=None) -> str:
    torch.manual_seed(0)
    model = MobileNetV1(class_num=class_num, width_mult=0.25)
    ckpt = {"format": ckpt_io.FORMAT, "model": model.state_dict(),
            "model_args": {"class_num": class_num, "width_mult": 0.25, "padding": "same"},
            "config": {"dataset": dataset, "image_size": 32}}
    if classes:
        ckpt["classes"] = list(classes)
    torch.save(ckpt, str(path))
    return str(path)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_no_command_writes_over_what_it_reads(tmp_path, cifar_dir, capsys):
    ckpt = save(tmp_path / "m.ckpt")
    os.symlink(ckpt, tmp_path / "link.ckpt")
    config = tmp_path / "c.yaml"
    config.write_text("epoch_size: 2\n")
    names = tmp_path / "names.csv"  # predict --labels: one class name a line (was written over with the results)
    names.write_text("cat\ndog\nfox\nowl\n")
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image)
    shot = tmp_path / "shot.csv"  # an image named .csv, given itself (not in a folder): was written over
    shutil.copy(image, shot)
    before = digest(ckpt), config.read_text(), names.read_text(), digest(shot)
    data = ["--dataset_path", str(cifar_dir), "--checkpoint_path", ckpt]
    cases = [
        (["convert", ckpt, str(tmp_path / "link.ckpt")], f"DST {tmp_path / 'link.ckpt'}: is the file this command "
                                                        f"reads (as {ckpt})"),
        (["convert", ckpt, ckpt], f"DST {ckpt}: is the file this command reads; write to another file"),
        (["eval", *data, "--confusion_csv", ckpt], f"--confusion_csv {ckpt}: is the file this command reads"),
        (["eval", *data, "--confusion_csv", str(tmp_path / "other.pt")], "other.pt: name it .csv"),
        (["eval", *data, "--confusion_csv", str(config)], "c.yaml: name it .csv"),
        (["eval", *data, "--confusion_csv", str(cifar_dir / "cm.csv")], f"is inside {cifar_dir}, the data this "
                                                                       f"command reads"),
        (["lr-schedule", "--config_path", str(config), "--out", str(config)], "is the file this command reads"),
        (["lr-schedule", "--config_path", str(config), "--out", str(tmp_path / "lr.txt")], "lr.txt: name it .csv"),
        (["predict", str(image), "--ckpt_file", ckpt, "--labels", str(names), "--out", str(names)],
         f"--out {names}: is the file this command reads"),
        (["predict", str(image), str(shot), "--ckpt_file", ckpt, "--out", str(tmp_path / "." / "shot.csv")],
         "shot.csv: is the file this command reads"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 1, argv
        assert message in capsys.readouterr().err, argv
    assert (digest(ckpt), config.read_text(), names.read_text(), digest(shot)) == before
    assert not (tmp_path / "other.pt").exists()
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "metrics.jsonl")]) == 1
    assert "metrics.jsonl: name it .png" in capsys.readouterr().err
    # What may be written still is, atomically.
    assert cli.main(["lr-schedule", "--config_path", str(config), "--steps_per_epoch", "3",
                     "--out", str(tmp_path / "lr.csv")]) == 0
    assert len((tmp_path / "lr.csv").read_text().splitlines()) == 1 + 2 * 3


def test_an_output_folder_that_cannot_be_written_is_said_before_the_work(tmp_path, monkeypatch, capsys):
    """A folder the user cannot write in (read-only, immutable) was said after the work (an export lowered,
    a quantization calibrated), as a hidden temporary file's OSError (helper-119): every command's output
    check (checkpoint.check_output) tries the folder first and names it, and the temporary file's error, if
    it still comes, names the file asked for. (As root a read-only mode writes anyway: the try is made to fail.)"""
    ckpt = save(tmp_path / "m.ckpt")
    (tmp_path / "ro").mkdir()

    def refused(folder):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ckpt_io, "check_writable", refused)
    lr_csv = str(tmp_path / "ro" / "lr.csv")
    for argv, option in ((["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "ro" / "x")], "--file_name"),
                         (["lr-schedule", "--steps_per_epoch", "3", "--out", lr_csv], "--out")):
        assert cli.main(argv) == 1
        out = tmp_path / "ro" / ("x.onnx" if argv[0] == "export" else "lr.csv")
        assert f"{option} {out}: cannot write in {tmp_path / 'ro'}: Permission denied" in capsys.readouterr().err
    assert os.listdir(tmp_path / "ro") == []
    monkeypatch.setattr(ckpt_io.tempfile, "mkstemp", lambda **k: refused(None))
    with pytest.raises(PermissionError, match=f"cannot write {tmp_path / 'ro' / 'a.ckpt'} in {tmp_path / 'ro'}"):
        ckpt_io.atomic_save({"w": torch.zeros(1)}, str(tmp_path / "ro" / "a.ckpt"))


def test_no_command_writes_over_a_training_checkpoint(tmp_path, cifar_dir, capsys):
    """convert, average and recalibrate-bn wrote their weights over any file named: a run's resumable
    checkpoint, named by a slip, was lost. A file of weights alone may still be replaced."""
    ckpt = save(tmp_path / "m.ckpt")
    other = save(tmp_path / "n.ckpt")
    run = tmp_path / "run"
    run.mkdir()
    state = torch.load(ckpt, weights_only=True)
    state.update(optimizer={"state": {}, "param_groups": []}, scaler=None, epoch=2, step=8, rng=ckpt_io.rng_state())
    resumable = str(run / "mobilenetv1-2_4.ckpt")
    torch.save(state, resumable)
    before = digest(resumable)
    said = f"{resumable}: is a training checkpoint (a run's weights, optimizer and progress, which train --resume " \
           f"continues from), not overwritten; write to another file, or remove it first"
    for argv, option in ((["convert", ckpt, resumable, "--format", "pt"], "DST"),
                         (["average", ckpt, other, "--out", resumable], "--out"),
                         (["recalibrate-bn", ckpt, "--dataset_path", str(cifar_dir), "--out", resumable], "--out")):
        assert cli.main(argv) == 1, argv
        assert f"{option} {said}" in capsys.readouterr().err, argv
    assert digest(resumable) == before and ckpt_io.holds_training_state(resumable)
    # A new file under a run's checkpoint name in the run's folder: eval, info and average --last of the folder
    # would take it (a copy of epoch 2's weights named epoch 9) for the run's newest. Elsewhere it is a name.
    for argv, name in ((["convert", ckpt, str(run / "mobilenetv1-9_4.ckpt")], "DST"),
                       (["average", ckpt, other, "--out", str(run / ckpt_io.BEST_NAME)], "--out"),
                       (["recalibrate-bn", ckpt, "--dataset_path", str(cifar_dir), "--out",
                         str(run / "mobilenetv1-top-3.ckpt")], "--out")):
        assert cli.main(argv) == 1, argv
        assert f"{name} {argv[-1]}: a run's checkpoint name in {run}, which holds a run" in capsys.readouterr().err
    assert os.listdir(run) == ["mobilenetv1-2_4.ckpt"]
    # So too beside a distributed run's ckpt_0/, which eval, info and a resume of the folder read.
    (tmp_path / "job" / ckpt_io.DISTRIBUTED_SUBFOLDER).mkdir(parents=True)
    shutil.copy(resumable, tmp_path / "job" / ckpt_io.DISTRIBUTED_SUBFOLDER)
    assert cli.main(["convert", ckpt, str(tmp_path / "job" / "mobilenetv1-9_4.ckpt")]) == 1
    assert f"a run's checkpoint name in {tmp_path / 'job'}, which holds a run" in capsys.readouterr().err
    assert cli.main(["convert", ckpt, str(tmp_path / "mobilenetv1-9_4.ckpt")]) == 0
    weights = tmp_path / "weights.pt"
    assert cli.main(["convert", ckpt, str(weights)]) == 0 and cli.main(["convert", ckpt, str(weights)]) == 0
    assert not ckpt_io.holds_training_state(str(weights)) and not ckpt_io.holds_training_state(ckpt)


def test_an_output_beside_the_data_folder_is_not_inside_it_under_a_longer_name(tmp_path):
    """The data folder's path is a prefix of data.csv's and of data2/'s: neither is inside it."""
    data = tmp_path / "data"
    (data / "cat").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    for beside in (tmp_path / "data.csv", tmp_path / "data2" / "out.csv"):
        ckpt_io.check_output("--per_image", str(beside), inside=[str(data)])
    with pytest.raises(ValueError, match=r"is inside .*data, the data this command reads"):
        ckpt_io.check_output("--per_image", str(data / "cat" / "out.csv"), inside=[str(data)])


def test_eval_writes_no_table_over_its_labels_file(tmp_path, capsys):
    """--eval_labels is often a CSV beside the data set (Kaggle's LOC_val_solution.csv): --per_image or
    --confusion_csv naming it wrote the results over the labels."""
    ckpt = save(tmp_path / "m.ckpt", class_num=2, dataset="imagenet2012")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(jpeg_bytes(smooth_image(40, 40, 1)))
    labels = tmp_path / "LOC_val_solution.csv"
    labels.write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01 1 2 3 4\n")
    before = labels.read_text()
    for option in ("--per_image", "--confusion_csv"):
        assert cli.main(["eval", "--dataset", "imagenet2012", "--dataset_path", str(tmp_path / "val"),
                         "--checkpoint_path", ckpt, "--eval_labels", str(labels), option, str(labels)]) == 1
        assert f"{option} {labels}: is the file this command reads; write to another file" in capsys.readouterr().err
    assert labels.read_text() == before


def test_an_output_named_as_a_folder_or_too_long_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    """`convert SRC new/ --format pt` (a folder not there yet) and a name past 255 bytes were said at the end, after
    the work, as the rename of a hidden temporary file: "[Errno 20] Not a directory: '..XXXX.tmp' -> 'new/'"
    (helper-329). Refused at the start, naming the option; nothing is written."""
    ckpt, other = save(tmp_path / "m.ckpt"), save(tmp_path / "n.ckpt")
    long = "c" * 253 + ".pt"
    for argv, said in ((["convert", ckpt, str(tmp_path / "new") + os.sep, "--format", "pt"], "names a folder"),
                       (["average", ckpt, other, "--out", str(tmp_path / "new") + os.sep, "--format", "pt"],
                        "names a folder"),
                       (["convert", ckpt, str(tmp_path / long)], "its name is 256 bytes, above the 255 a file system "
                                                                 "takes"),
                       # A ~ quoted (a script's '~/x.pt'): ./~ was made, and "wrote ~/x.pt" said of it.
                       (["convert", ckpt, "~/x.pt"], "~/x.pt: starts with ~, which only a shell expands, and only "
                                                     "where it is not quoted: give ")):
        monkeypatch.chdir(tmp_path)
        assert cli.main(argv) == 1, argv
        assert said in capsys.readouterr().err, argv
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt", "n.ckpt"]
    assert cli.main(["convert", ckpt, "~x.pt"]) == 0  # a file's name that starts with ~ is one
    assert os.path.isfile(tmp_path / "~x.pt")



def test_a_quoted_home_path_read_is_named_with_the_path_a_shell_would_give(tmp_path, monkeypatch, capsys):
    """`--labels=~/names.txt` (no shell expands a ~ after `=`) or '~/cat.jpg' quoted in a script: the files
    read by --checkpoint_path, --config_path and --dataset_path said "it starts with ~ ... give /home/me/...",
    but predict's images and --labels, --eval_labels, quantize's --calib_data and plot's run folders said only
    "no such file", of a file that is there, in the home folder (helper-406)."""
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    (home / "data").mkdir()
    (home / "cat.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, 1)))
    (home / "names.txt").write_text("a\nb\nc\nd\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    ckpt = save(tmp_path / "m.ckpt", dataset="imagenet2012")
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(jpeg_bytes(smooth_image(40, 40, 2)))
    for argv, named, there in (
            (["predict", "~/cat.jpg", "--ckpt_file", ckpt], "image ~/cat.jpg: no such file or folder", "cat.jpg"),
            (["predict", str(home / "cat.jpg"), "--ckpt_file", ckpt, "--labels=~/names.txt"], "--labels ~/names.txt: ",
             "names.txt"),
            (["eval", "--dataset", "imagenet2012", "--dataset_path", "val", "--checkpoint_path", ckpt,
              "--eval_labels=~/names.txt"], "--eval_labels ~/names.txt: no such file", "names.txt"),
            (["quantize", "--onnx", "m.onnx", "--calib_data=~/data", "--out", "q.onnx"],
             "--calib_data ~/data: not a folder", "data"),
            (["plot", "~/run"], "~/run is not a run folder of mobilenet-v1 train", "run")):
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert named in err and "it starts with ~, which only a shell expands" in err, err
        assert f"give {home / there}" in err, err
    assert not os.path.exists(tmp_path / "~")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_an_output_that_is_a_named_pipe_or_a_link_to_one_is_refused_and_left_as_it_is(tmp_path, capsys):
    """The write renames a temporary file over the name: root's `convert CKPT /dev/null --format pt` replaced
    /dev/null by a regular file of the checkpoint's bytes (helper-361), and a named pipe a reader waits on was
    taken away, exit status 0. Any name that is no regular file (a device, a pipe, a socket; through a link too)
    is refused before the work, naming what it is; a regular file is still written over."""
    ckpt = save(tmp_path / "m.ckpt")
    os.mkfifo(tmp_path / "pipe.pt")
    os.symlink(tmp_path / "pipe.pt", tmp_path / "link.pt")
    for name, said in (("pipe.pt", "is a named pipe, not a regular file"),
                       ("link.pt", f"is a named pipe (a link to {tmp_path / 'pipe.pt'}), not a regular file")):
        assert cli.main(["convert", ckpt, str(tmp_path / name), "--format", "pt"]) == 1, name
        err = capsys.readouterr().err
        assert f"{tmp_path / name}: {said}, which the write would replace with one" in err, err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe.pt").st_mode) and os.path.islink(tmp_path / "link.pt")
    assert sorted(os.listdir(tmp_path)) == ["link.pt", "m.ckpt", "pipe.pt"]
    (tmp_path / "old.pt").write_bytes(b"old")
    assert cli.main(["convert", ckpt, str(tmp_path / "old.pt"), "--format", "pt"]) == 0
    assert (tmp_path / "old.pt").stat().st_size > 1000
    # /dev/stdout (-> /proc/self/fd/1) redirected to a regular file: the link itself was replaced (helper-364)
    if os.path.isdir(f"/proc/{os.getpid()}/fd"):
        with open(tmp_path / "redirect.pt", "wb") as f:
            os.symlink(f"/proc/{os.getpid()}/fd/{f.fileno()}", tmp_path / "stdout.pt")
            for name in ("stdout.pt", f"/proc/{os.getpid()}/fd/{f.fileno()}", f"/dev/fd/{f.fileno()}"):
                assert cli.main(["convert", ckpt, str(tmp_path / name), "--format", "pt"]) == 1, name
                assert ": is a link to a process's open file (a standard stream?)" in capsys.readouterr().err
        assert os.path.islink(tmp_path / "stdout.pt") and (tmp_path / "redirect.pt").stat().st_size == 0

def test_a_write_that_fails_leaves_the_file_as_it_was_and_names_it(tmp_path, monkeypatch, capsys):
    """A full disk met once the bytes are written (at the flush or fsync of any writer: torch.save's,
    safetensors', MindSpore's, a CSV's) leaves the file of that name as it was and no temporary file, and the
    error names the option and the file and says what to do: it said only "[Errno 28] No space left on device", then
    "[Errno 28] No space left on device: 'w.pt'" (the file, but not the option, nor a way out)."""
    ckpt = save(tmp_path / "m.ckpt")
    out = tmp_path / "out"
    out.mkdir()

    def full(fd):
        raise OSError(28, "No space left on device")

    for name, argv in (("w.pt", ["convert", ckpt]), ("w.safetensors", ["convert", ckpt]),
                       ("w.ckpt", ["convert", ckpt]), ("lr.csv", ["lr-schedule", "--steps_per_epoch", "3", "--out"])):
        dst = out / name
        dst.write_bytes(b"kept")
        with monkeypatch.context() as m:
            m.setattr(os, "fsync", full)
            assert cli.main(argv + [str(dst)]) == 1, name
        option = "--out" if argv[0] == "lr-schedule" else "DST"
        assert capsys.readouterr().err == (
            f"mobilenet-v1 {argv[0]}: error: {option} {dst}: cannot write it: No space left on device; free space or "
            f"make the folder writable, then run the command again (any earlier file of that name is left as it "
            f"was)\n"), name
        assert dst.read_bytes() == b"kept" and not [n for n in os.listdir(out) if n.startswith(".")], name


def test_an_output_unwritten_for_want_of_room_or_permission_names_the_option_and_what_to_do(tmp_path, monkeypatch,
                                                                                           capsys):
    """A file-size limit (EFBIG), a quota, a read-only or unwritable folder met while the output is written: one line
    with the option, the file and what to do; an error of the same kind reading a file stays as it was."""
    out = tmp_path / "lr.csv"
    for code, advice in ((errno.EFBIG, "raise this process's file-size limit (ulimit -f, or the scheduler's)"),
                         (errno.EDQUOT, "free space or make the folder writable"),
                         (errno.EACCES, "free space or make the folder writable")):
        def refused(fd, code=code):
            raise OSError(code, os.strerror(code))

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", refused)
            assert cli.main(["lr-schedule", "--steps_per_epoch", "2", "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"mobilenet-v1 lr-schedule: error: --out {out}: cannot write it: {os.strerror(code)}; "
                              f"{advice}, then run the command again"), err
        assert not out.exists() and err.count("\n") == 1
    from mobilenet_v1.runtime import error_line

    read = OSError(errno.EACCES, os.strerror(errno.EACCES), str(out))
    assert error_line("eval", read) == f"mobilenet-v1 eval: error: [Errno 13] Permission denied: '{out}'"


def test_the_demo_writes_no_digits_over_a_data_set_of_its_own(tmp_path, capsys):
    """python -m mobilenet_v1.demo --out naming a CIFAR-10 folder wrote the digits over its data_batch_1.bin
    (and the seed's test_batch.bin), leaving a data set of both; its own files it rewrites, atomically."""
    from mobilenet_v1 import demo
    from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_RECORD, CIFAR_TRAIN_FOLDER

    # A data set's training file, or its evaluation file alone, is refused, and nothing is written beside it.
    cases = (("cifar", CIFAR_TRAIN_FOLDER, "data_batch_1.bin", CIFAR_EVAL_FOLDER, 1438),
             ("verify", CIFAR_EVAL_FOLDER, "test_batch.bin", CIFAR_TRAIN_FOLDER, 359))
    for name, folder, file, other, records in cases:
        real = tmp_path / name / folder / file
        real.parent.mkdir(parents=True)
        real.write_bytes(bytes(3 * CIFAR_RECORD))
        assert demo.main(["--out", str(tmp_path / name)]) == 1
        assert f"{real} holds {3 * CIFAR_RECORD} bytes, not the demo's {records} records" in capsys.readouterr().err
        assert real.read_bytes() == bytes(3 * CIFAR_RECORD) and not (tmp_path / name / other).exists()
    digits = tmp_path / "digits"
    assert demo.main(["--out", str(digits)]) == 0 and demo.main(["--out", str(digits)]) == 0
    assert [sorted(os.listdir(digits / f)) for f in (CIFAR_TRAIN_FOLDER, CIFAR_EVAL_FOLDER)] == \
        [["data_batch_1.bin"], ["test_batch.bin"]]
    assert os.path.getsize(digits / CIFAR_EVAL_FOLDER / "test_batch.bin") == 359 * CIFAR_RECORD
    # An --out that is a file is said in one line.
    (tmp_path / "a_file").write_text("not a folder")
    assert demo.main(["--out", str(tmp_path / "a_file")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m mobilenet_v1.demo: error: ") and f"{tmp_path / 'a_file'}" in err


def test_the_demos_output_gone_or_on_a_full_disk_is_said_as_the_commands(tmp_path):
    """`python -m mobilenet_v1.demo | head -0` said "error: [Errno 32] Broken pipe", status 1, of digits written
    whole, and `> /dev/full` "error: [Errno 28] No space left on device", as if they were what did not fit: as
    mobilenet-v1's commands, a reader gone ends it quietly (141) and a full disk is named as standard output's."""
    from mobilenet_v1.data import CIFAR_EVAL_FOLDER

    pytest.importorskip("sklearn")
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    digits = tmp_path / "digits"
    read, write = os.pipe()
    os.close(read)  # gone before the first line
    try:
        p = subprocess.run([sys.executable, "-m", "mobilenet_v1.demo", "--out", str(digits)], stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(write)
    assert (p.returncode, p.stderr) == (141, ""), p.stderr
    assert os.path.getsize(digits / CIFAR_EVAL_FOLDER / "test_batch.bin") > 0
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "mobilenet_v1.demo", "--out", str(digits)], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert (p.returncode, p.stderr) == (1, "python -m mobilenet_v1.demo: error: [Errno 28] No space left on "
                                           "device: 'standard output'\n"), p.stderr


def test_the_demo_with_its_output_closed_says_so_as_the_commands(tmp_path):
    """`python -m mobilenet_v1.demo >&-` ended in an AttributeError's traceback ('NoneType' object has no attribute
    'flush': Python's sys.stdout of a closed descriptor 1 is None) once its output was flushed where its errors are
    caught; as mobilenet-v1's commands (`info >&-`), it says it could not write standard output, status 1."""
    from mobilenet_v1.data import CIFAR_EVAL_FOLDER

    pytest.importorskip("sklearn")
    digits = tmp_path / "digits"
    p = subprocess.run([sys.executable, "-m", "mobilenet_v1.demo", "--out", str(digits)], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=lambda: os.close(1),
                       env=dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1"))
    assert (p.returncode, p.stderr) == (1, "python -m mobilenet_v1.demo: error: [Errno 9] Bad file descriptor: "
                                           "'standard output'\n"), p.stderr
    assert os.path.getsize(digits / CIFAR_EVAL_FOLDER / "test_batch.bin") > 0


def test_a_reader_of_the_output_that_went_away_is_no_error(tmp_path):
    """`mobilenet-v1 info F | head -2` printed "error: [Errno 32] Broken pipe" and exited 1: a reader that took
    what it wanted is no fault of the command, which ends quietly, as cat does (141: as SIGPIPE ends one)."""
    ckpt = save(tmp_path / "m.pt")
    read, write = os.pipe()
    os.close(read)  # gone before the first line: every write meets a closed pipe
    try:
        p = subprocess.run([sys.executable, "-m", "mobilenet_v1", "info", ckpt], stdout=write, stderr=subprocess.PIPE,
                           text=True, timeout=120, env=dict(os.environ, PYTHONPATH=SRC))
    finally:
        os.close(write)
    assert (p.returncode, p.stderr) == (141, ""), p.stderr
    # The usage and train's and eval's keys alike (`mobilenet-v1 --help | head -1` ended in a traceback).
    for args in (["--help"], ["eval", "--help"]):
        read, write = os.pipe()
        os.close(read)
        try:
            p = subprocess.run([sys.executable, "-m", "mobilenet_v1", *args], stdout=write, stderr=subprocess.PIPE,
                               text=True, timeout=120, env=dict(os.environ, PYTHONPATH=SRC))
        finally:
            os.close(write)
        assert (p.returncode, p.stderr) == (141, ""), (args, p.stderr)


def test_a_package_of_an_extra_not_installed_is_named_with_the_extra(tmp_path, cifar_dir, monkeypatch, capsys):
    """Without the onnx extra, eval, info and predict of an .onnx file ended in a ModuleNotFoundError's
    traceback (helper-117); the one line names the package and the extra that installs it. A module that
    no extra installs missing is a fault: its traceback."""
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"not read: the runtime is missing")
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg_bytes(smooth_image(32, 32, 1)))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: its import raises
    hint = ("the onnxruntime package is not installed, which ONNX files (export, quantize, and eval, predict, info "
            "and benchmark of .onnx) needs: pip install 'mobilenet-v1[onnx]' (from a checkout: pip install -e "
            "'.[onnx]')")
    for command, args in (("eval", ["--checkpoint_path", str(onnx_file), "--dataset_path", str(cifar_dir)]),
                          ("info", [str(onnx_file)]), ("predict", [str(image), "--ckpt_file", str(onnx_file)])):
        assert cli.main([command, *args]) == 1
        err = capsys.readouterr().err
        assert err == f"mobilenet-v1 {command}: error: {hint}\n", err
    # Refused before the work (helper-288): export made the ONNX file (seconds of torch.onnx at 224) and then
    # found its check's runtime missing; benchmark of networks made every earlier format's files first; a Python
    # caller of load_predictor got "No module named 'onnxruntime'", no extra named.
    ckpt = save(tmp_path / "m.ckpt")

    def made(*args, **kwargs):
        raise AssertionError("exported before the missing package was said")

    monkeypatch.setattr(export, "to_onnx", made)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err == f"mobilenet-v1 export: error: {hint}\n"
    monkeypatch.setattr(export, "export_checkpoint", made)
    assert cli.main(["benchmark", "--width_mult", "0.25", "--image_size", "32", "--formats", "pytorch,tflite,onnx",
                     "--class_num", "10"]) == 1
    assert capsys.readouterr().err == f"mobilenet-v1 benchmark: error: {hint}\n"
    from mobilenet_v1 import load_predictor

    with pytest.raises(ModuleNotFoundError, match=re.escape(hint)):
        load_predictor(str(onnx_file))
    assert sorted(os.listdir(tmp_path)) == ["a.jpg", "cifar", "m.ckpt", "m.onnx"]

    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    from mobilenet_v1 import demo

    assert demo.main(["--out", str(tmp_path / "digits")]) == 1
    assert "the scikit-learn package is not installed, which the demo's digits needs: pip install " \
           "'mobilenet-v1[demo]'" in capsys.readouterr().err
    assert not (tmp_path / "digits").exists()

    def bug(argv):
        importlib.import_module("mobilenet_v1.no_such_module")

    monkeypatch.setitem(cli.COMMANDS, "info", bug)
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        cli.main(["info"])


def test_eval_refuses_a_checkpoint_of_another_data_set_or_of_fewer_outputs(tmp_path, cifar_dir, capsys):
    """A 3-output model scored against labels 0..3 (its top-5 of 3 outputs), or a CIFAR-10 model fed an
    image folder's normalisation, gave numbers that meant nothing; ONNX files were refused already."""
    three = save(tmp_path / "three.pt", class_num=3)
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", three]) == 1
    assert (f"{three} has 3 outputs, and dataset_path {cifar_dir} has 4 classes (labelled by its .bin files): not "
            f"the data set the model was trained for") in capsys.readouterr().err
    folder_model = save(tmp_path / "f.pt", dataset="imagenet2012")
    assert cli.main(["eval", "--dataset", "cifar10", "--dataset_path", str(cifar_dir), "--checkpoint_path",
                     folder_model]) == 1
    assert (f"--dataset cifar10: {folder_model} was trained on imagenet2012 (the file records it), "
            f"whose inputs are read and normalised differently: pass --dataset imagenet2012") in capsys.readouterr().err
    # Set by a config file (the seed's for another data set), not by an option: the file is named.
    cifar_config = os.path.join(os.path.dirname(__file__), "..", "configs", "cifar10.yaml")
    assert cli.main(["eval", "--config_path", cifar_config, "--dataset_path", str(cifar_dir), "--checkpoint_path",
                     folder_model]) == 1
    assert (f"dataset cifar10 (config file {cifar_config}): {folder_model} was trained on imagenet2012 (the file "
            f"records it), whose inputs are read and normalised differently: use a config file for imagenet2012, "
            f"or pass --dataset imagenet2012") in capsys.readouterr().err
    # Without --dataset, the file's, with its options and checks (an image folder's crop_pct, a mean given
    # as CIFAR's constants kept as given): the CIFAR folder is then read as an image folder, and has none.
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", folder_model, "--crop_pct", "0.9",
                     "--mean", "0.4914,0.4822,0.4465"]) == 1
    err = capsys.readouterr().err
    assert f"dataset imagenet2012: what {folder_model} was trained on (the file records it)" in err
    assert f"mean 0.4914,0.4822,0.4465: as given, where {folder_model}'s run normalised its inputs by" in err
    assert "no image files in its class sub-folders" in err and "Traceback" not in err
    odd = save(tmp_path / "odd.pt", dataset="svhn")  # none of ours: named as such, not as a --dataset to pass
    image = tmp_path / "one.png"
    Image.new("RGB", (8, 8), (200, 10, 30)).save(image)
    for argv in (["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", odd], ["predict", str(image),
                 "--ckpt_file", odd], ["export", "--ckpt_file", odd, "--file_name", str(tmp_path / "odd")]):
        assert cli.main(argv) == 1, argv
        assert (f"{odd} records the data set 'svhn', none of cifar10, cifar100, imagenet2012 (not a file this tool "
                f"wrote, or one edited since)") in capsys.readouterr().err, argv
    assert not (tmp_path / "odd.onnx").exists()
    four = save(tmp_path / "four.pt")
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", four]) == 0
    # One refusal for every command that reads a model file: an ONNX file's recorded data set too.
    pytest.importorskip("onnxruntime")
    # A name of another format's: refused, not written as four.tflite.onnx.
    assert cli.main(["export", "--ckpt_file", four, "--file_name", str(tmp_path / "four.tflite")]) == 1
    assert (f"--file_name {tmp_path / 'four.tflite'}: is a name for a TFLITE file, and this export writes ONNX "
            f"({tmp_path / 'four.tflite'}.onnx): pass --file_format TFLITE, or another name") in capsys.readouterr().err
    assert not list(tmp_path.glob("four.tflite*"))
    assert cli.main(["export", "--ckpt_file", four, "--file_name", str(tmp_path / "four")]) == 0
    onnx = str(tmp_path / "four.onnx")
    capsys.readouterr()
    image = tmp_path / "digit.png"
    Image.new("RGB", (8, 8), (200, 10, 30)).save(image)
    for model in (onnx, four):
        for argv in (["eval", "--dataset", "imagenet2012", "--dataset_path", str(cifar_dir), "--checkpoint_path", model],
                     ["quantize", "--onnx", model, "--dataset", "imagenet2012", "--calib_data", str(cifar_dir),
                      "--out", str(tmp_path / "q.onnx")],
                     # predict took another data set's transform and printed what the model made of it
                     ["predict", str(image), "--ckpt_file", model, "--dataset", "imagenet2012"]):
            if model == four and argv[0] == "quantize":
                continue  # quantize reads ONNX files only
            assert cli.main(argv) == 1, argv
            assert (f"--dataset imagenet2012: {model} was trained on cifar10 (the file records it), whose inputs are "
                    f"read and normalised differently: pass --dataset cifar10") in capsys.readouterr().err, argv


def test_export_refuses_a_file_name_of_an_image_or_another_non_model_file(tmp_path, capsys):
    """--file_name is a base name, the format's extension appended: "bad.jpg" was written as bad.jpg.onnx and
    export exited 0. A name ending in an image's, a table's, a configuration's or a checkpoint's extension is
    refused in one line naming the option and what export writes; nothing is written."""
    four = save(tmp_path / "four.pt")
    for name, file_format, ext in (("bad.jpg", "ONNX", ".onnx"), ("shot.PNG", "ONNX", ".onnx"),
                                   ("out.csv", "TFLITE", ".tflite"), ("m.pt", "PT2", ".pt2"),
                                   ("w.safetensors", "PTE", ".pte"), ("c.yaml", "ONNX", ".onnx")):
        given = str(tmp_path / name)
        stem, suffix = os.path.splitext(given)
        assert cli.main(["export", "--ckpt_file", four, "--file_name", given, "--file_format", file_format]) == 1
        err = capsys.readouterr().err
        assert (f"--file_name {given}: ends in {suffix.lower()}, not a model file's extension; export writes "
                f"{given}{ext} (its extension follows --file_format: .onnx, .pt2, .pte, .tflite): pass --file_name "
                f"{stem}, or another name") in err, name
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["four.pt"]


def test_our_warnings_are_one_line_and_a_one_class_folder_is_refused_for_training(image_folder, tmp_path, capsys):
    """A skipped unreadable file is said as 'mobilenet-v1 eval: warning: ...', not with Python's file,
    line number and source line (a process of its own: pytest records warnings rather than print them);
    a caller that records warnings still gets them."""
    (image_folder / "validation_preprocess" / "n01" / "empty.JPEG").write_bytes(b"")
    model = save(tmp_path / "m.pt", class_num=2, dataset="imagenet2012", classes=["n01", "n02"])
    argv = ["eval", "--dataset", "imagenet2012", "--dataset_path", str(image_folder), "--checkpoint_path", model,
            "--num_workers", "0", "--device_target", "CPU", "--max_bad_samples", "1"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "mobilenet_v1", *argv], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "mobilenet-v1 eval: warning: skipped unreadable image file" in r.stderr and "empty.JPEG" in r.stderr
    assert ".py:" not in r.stderr and "BadSampleWarning" not in r.stderr
    formatted = warnings.formatwarning
    with pytest.warns(BadSampleWarning, match="empty.JPEG"):
        assert cli.main(argv) == 0
    assert warnings.formatwarning is formatted  # a Python caller's format is its own again after the command
    # A folder of one class: training says a classifier needs two, where it used to advise --class_num 1.
    one = tmp_path / "one" / "train" / "a"
    one.mkdir(parents=True)
    for i in range(3):
        (one / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, seed=i)))
    assert cli.main(["train", "--dataset", "imagenet2012", "--dataset_path", str(tmp_path / "one"), "--class_num",
                     "2", "--image_size", "32", "--num_workers", "0", "--device_target", "CPU",
                     "--save_checkpoint_path", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "has 1 class folder in " in err and "a classifier needs two classes or more" in err
    assert "its one class folder" not in err  # a folder of images: nothing to pass instead
    # The class folders one level down (a macOS zip's folder unzipped, its __MACOSX beside it left out): the folder
    # to pass is named, as an archive's wrapping folder is.
    wrap = tmp_path / "zip"
    for cls in ("cat", "dog"):
        (wrap / "photos" / cls).mkdir(parents=True)
        (wrap / "photos" / cls / "0.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, seed=5)))
    (wrap / "__MACOSX" / "photos" / "cat").mkdir(parents=True)
    assert cli.main(["train", "--dataset", "imagenet2012", "--dataset_path", str(wrap), "--class_num", "2",
                     "--image_size", "32", "--num_workers", "0", "--device_target", "CPU",
                     "--save_checkpoint_path", str(tmp_path / "run")]) == 1
    assert (f"it has 1 class folder; a classifier needs two classes or more; its one class folder photos/ holds 2 "
            f"folders of images (cat, dog) and no image of its own: if those are the classes, pass "
            f"{wrap / 'photos'}\n") in capsys.readouterr().err
    # One class archive alone (a folder of class archives): no folder to look into (helper-294: a traceback's line).
    lone = tmp_path / "lone"
    lone.mkdir()
    with tarfile.open(lone / "cat.tar", "w") as tf:
        tf.add(str(wrap / "photos" / "cat" / "0.jpg"), arcname="0.jpg")
    assert cli.main(["train", "--dataset", "imagenet2012", "--dataset_path", str(lone), "--class_num", "2",
                     "--image_size", "32", "--num_workers", "0", "--device_target", "CPU",
                     "--save_checkpoint_path", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.endswith("it has 1 class folder; a classifier needs two classes or more\n")


def test_a_stale_rank_alone_silences_nothing(monkeypatch, capsys):
    """RANK without WORLD_SIZE (a stale shell's, a scheduler's) is no torchrun job: the one process reports (eval,
    predict and train printed nothing and exited 0; train wrote no log.txt)."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "1")
    from mobilenet_v1 import runtime

    runtime.print0("said")
    assert capsys.readouterr().out == "said\n"
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's rank 1: silent
    runtime.print0("said")
    assert capsys.readouterr().out == ""


def test_a_launcher_setting_world_size_alone_breaks_nothing(monkeypatch, capsys):
    """WORLD_SIZE without RANK (or empty) is no torchrun job: the command runs, its errors say no rank."""
    for value in ("2", ""):
        monkeypatch.setenv("WORLD_SIZE", value)
        monkeypatch.delenv("RANK", raising=False)
        assert cli.main(["info", "--width_mult", "0.25", "--json"]) == 0
        assert cli.main(["convert", "nowhere.pt", "x.pt"]) == 1
        assert "mobilenet-v1 convert: error: checkpoint nowhere.pt: no such file" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node=1: the one process has no rank to name
    monkeypatch.setenv("RANK", "0")
    assert cli.main(["convert", "nowhere.pt", "x.pt"]) == 1
    assert "mobilenet-v1 convert: error: checkpoint nowhere.pt: no such file" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.main(["convert", "nowhere.pt", "x.pt"]) == 1
    assert "mobilenet-v1 convert (rank 1): error: checkpoint nowhere.pt: no such file" in capsys.readouterr().err
    # An option every process refuses alike is said once a machine (16 GPUs printed it 16 times): by local rank
    # 0; the others exit 1 without a word. An error of one process's own (its file) each says.
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cli.main(["train", "--lr", "0.1"]) == 1 and capsys.readouterr().err == ""
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cli.main(["train", "--lr", "0.1"]) == 1
    # named as the job's (every process refuses it), not as this process's own
    assert capsys.readouterr().err.startswith("mobilenet-v1 train (all 2 ranks): error: option --lr: unknown key "
                                              "'lr'")
    assert cli.main(["eval", "--confusion_csv", "x.txt"]) == 1  # an output's name: the command line's too
    assert capsys.readouterr().err == ("mobilenet-v1 eval (all 2 ranks): error: --confusion_csv x.txt: name it .csv "
                                       "(it is written as such, over any file of that name)\n")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert cli.main(["convert", "nowhere.pt", "x.pt"]) == 1
    assert "mobilenet-v1 convert (rank 1): error: checkpoint nowhere.pt: no such file" in capsys.readouterr().err

    def teacher_fails_here(argv):  # a ConfigError of this process's own (its GPU), not of the options
        raise ConfigError("teacher t.pt2: it cannot run on this device")

    monkeypatch.setitem(cli.COMMANDS, "train", teacher_fails_here)
    assert cli.main(["train"]) == 1
    assert capsys.readouterr().err == ("mobilenet-v1 train (rank 1): error: teacher t.pt2: it cannot run on this "
                                       "device\n")


def test_train_without_its_data_says_so_before_printing_its_configuration(capsys, tmp_path):
    """`mobilenet-v1 train` without --dataset_path (or with one not there) printed its header and the configuration's
    110 lines, the refusal under them; now the refusal alone, and nothing made."""
    for extra, said in (([], "dataset_path is not set: pass --dataset_path PATH"),
                        (["--dataset_path", str(tmp_path / "none")], f"dataset_path '{tmp_path / 'none'}' does not "
                                                                      "exist")):
        run = tmp_path / "run"
        assert cli.main(["train", "--save_checkpoint_path", str(run), *extra]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == f"mobilenet-v1 train: error: {said}\n", (out[:300], err)
        assert not run.exists()


def test_train_refuses_a_pre_trained_or_teacher_it_cannot_read_before_printing_its_configuration(capsys, tmp_path,
                                                                                                 cifar_dir):
    """`train --pre_trained <(cat x.ckpt)` printed the header and the configuration's 110 lines, the refusal of the
    pipe under them, where a missing dataset_path is refused alone: so are the files it starts from."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    config = tmp_path / "c.yaml"
    config.write_text(f"pre_trained: {tmp_path / 'none.ckpt'}\n")
    run = tmp_path / "run"
    base = ["train", "--dataset_path", str(cifar_dir), "--save_checkpoint_path", str(run)]
    for extra, said in ((["--pre_trained", str(pipe)], f"--pre_trained {pipe}: a named pipe, not a regular file: "
                                                       "give a file or run folder"),
                        (["--teacher", str(tmp_path)], f"--teacher {tmp_path}: the folder holds no numbered "
                                                       "checkpoint"),
                        (["--config_path", str(config)], f"pre_trained {tmp_path / 'none.ckpt'} (from config file "
                                                         f"{config}): no such file or run folder; pass --pre_trained")):
        assert cli.main([*base, *extra]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"mobilenet-v1 train: error: {said}"), (out[:300], err)
        assert not run.exists()


def test_torchruns_numbers_set_empty_are_unset_and_set_wrong_are_named(monkeypatch, capsys, tmp_path):
    """A script's `RANK=$X` of an unset X leaves RANK empty: no torchrun job, as if unset (int("") was an error
    that named no variable); a value no launcher sets is refused naming its variable, before the command works."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(name, "")
    assert cli.main(["train", "--dataset_path", str(tmp_path / "none"), "--device_id", "1"]) == 1
    err = capsys.readouterr().err
    assert "--device_id 1 does not choose the GPU" in err and "(rank" not in err  # said by the one process
    assert err.endswith(f"mobilenet-v1 train: error: dataset_path '{tmp_path / 'none'}' does not exist\n")
    for name, value in (("RANK", "abc"), ("WORLD_SIZE", "0"), ("LOCAL_RANK", "-1"), ("LOCAL_WORLD_SIZE", "2.5")):
        monkeypatch.setenv(name, value)
        assert cli.main(["convert", "nowhere.pt", str(tmp_path / "x.pt")]) == 1
        err = capsys.readouterr().err
        assert f"the environment variable {name}={value!r} is not a whole number" in err, err
        assert f"unset {name}" in err and "nowhere.pt" not in err
        monkeypatch.setenv(name, "")


def test_torchruns_numbers_set_to_blanks_are_unset_too(monkeypatch, capsys):
    """RANK=" " (a script's quoted "$X " of an unset X) reads as unset, as an empty one does: not refused."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(name, " ")
    assert cli.main(["info", "--width_mult", "0.25", "--json"]) == 0
    assert "environment variable" not in capsys.readouterr().err


def test_a_file_descriptor_shortage_is_one_line_naming_the_limit_and_what_to_do(monkeypatch):
    """The DataLoader's RuntimeError (no errno) and an EMFILE OSError were a traceback and a bare
    "[Errno 24] Too many open files"; the number to raise the limit to is above it, and up to the hard limit, which
    a user cannot raise."""
    import resource

    from mobilenet_v1.runtime import error_line

    loader = RuntimeError("Too many open files. Communication with the workers is no longer possible. Please "
                          "increase the limit using `ulimit -n` in the shell ...")
    for e in (loader, OSError(errno.EMFILE, "Too many open files")):
        line = error_line("train", e)
        assert line is not None and "limit of open files (ulimit -n) is" in line and "--num_workers" in line
    for limits, said in (((20000, resource.RLIM_INFINITY), "is 20000; raise it (ulimit -n 40000), or lower"),
                         ((1024, 2048), "is 1024 (hard limit 2048); raise it (ulimit -n 2048), or lower"),
                         ((1024, 1024), "is 1024, its hard limit too (only root or the container's settings")):
        monkeypatch.setattr(resource, "getrlimit", lambda which, limits=limits: limits)
        assert said in error_line("train", loader)
    assert error_line("train", RuntimeError("something else")) is None  # a fault of the code: its traceback
    # the file being opened is named, where the error names one
    assert error_line("train", OSError(errno.EMFILE, "Too many open files", "/data/cat/1.jpg")).startswith(
        "mobilenet-v1 train: error: too many open files (/data/cat/1.jpg): this process's limit")

def test_the_soft_limit_of_open_files_is_raised_to_at_most_65536_and_never_lowered(monkeypatch):
    """A hard limit of 2^20 or 'infinity' (containerd's) raises the soft one to 65,536, not to it: every child
    inherits it; a soft limit already at or above that, or unlimited, is left as it is."""
    import resource

    from mobilenet_v1 import cli

    inf = resource.RLIM_INFINITY
    for limits, wanted in (((1024, 1 << 20), (1 << 16, 1 << 20)), ((1024, inf), (1 << 16, inf)),
                           ((1024, 4096), (4096, 4096)), ((1 << 17, 1 << 20), None), ((inf, inf), None)):
        set_to = []
        monkeypatch.setattr(resource, "getrlimit", lambda which, limits=limits: limits)
        monkeypatch.setattr(resource, "setrlimit", lambda which, value: set_to.append(tuple(value)))
        cli.raise_open_files_limit()
        assert set_to == ([wanted] if wanted else []), limits


def test_the_command_line_raises_its_soft_limit_of_open_files_to_the_hard_one():
    code = ("import resource, sys; soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, hard), hard)); "
            "from mobilenet_v1 import cli; sys.argv = ['mobilenet-v1', '--help']; "
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try: cli.main()\n"
            "    except SystemExit: pass\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(hard, 1 << 16) or hard <= 64)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("True")


def test_the_command_lines_usage_and_version_print_without_importing_torch():
    """`mobilenet-v1 --help`, `--version` and `eval --help` import no torch (2-4 s of a 2-core CPU's start, and
    --version is to answer where torch itself is broken); the open-files limit is still raised first."""
    code = ("import sys, contextlib, io; from mobilenet_v1 import cli\n"
            "for argv in (['--help'], ['--version'], ['eval', '--help'], ['train', '--help']):\n"
            "    sys.argv = ['mobilenet-v1', *argv]\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert cli.main() == 0, argv\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_help_followed_by_a_command_is_that_commands_help(capsys):
    """`mobilenet-v1 help train` printed the general usage, not train's keys, as `git help commit` and `pip help
    install` would; an unknown name is refused as an unknown command."""
    for name in ("train", "info"):
        helped = []
        for argv in (["help", name], [name, "--help"]):
            try:
                status = cli.main(argv)
            except SystemExit as e:  # argparse's --help
                status = e.code
            out = capsys.readouterr().out
            helped.append((status, out))
        assert helped[0] == helped[1] and helped[0][0] == 0, name
        assert f"mobilenet-v1 {name}" in helped[0][1].splitlines()[0], helped[0][1][:200]
    assert cli.main(["help", "trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_running_out_of_memory_is_one_line_and_other_errors_still_surface(monkeypatch, capsys):
    def oom(argv):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate 3840000000000 bytes")

    monkeypatch.setitem(cli.COMMANDS, "info", oom)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mobilenet-v1 info: error: out of memory ([enforce fail")
    assert "a smaller batch_size or image_size needs less" in err

    said = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.56 GiB "
            "is free. Including non-PyTorch memory, this process has 77.54 GiB memory in use. Of the allocated memory "
            "75.92 GiB is allocated by PyTorch")

    def cuda_oom(argv):  # CUDA's message says where the memory went, in one long line: the error line keeps 200
        raise torch.OutOfMemoryError(said)

    monkeypatch.setitem(cli.COMMANDS, "info", cuda_oom)
    assert cli.main(["info"]) == 1
    assert capsys.readouterr().err == ("mobilenet-v1 info: error: out of memory (CUDA out of memory. Tried to allocate "
                                       "2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.56 GiB is free. "
                                       "Including non-PyTorch memory, this process has 77.54 GiB memory in use. Of "
                                       "the alloca); a smaller batch_size or image_size needs less\n")

    def peer_gone(argv):  # a torchrun job's rank 0 after rank 1 was killed (kill -9) in a step's collective
        raise RuntimeError("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error "
                           "[127.0.0.1]:36738: Connection reset by peer. This is typically caused by a remote worker "
                           "hanging or bugs in the application. GLHF!")

    monkeypatch.setitem(cli.COMMANDS, "train", peer_gone)
    assert cli.main(["train"]) == 1  # was a traceback of 34 lines
    assert capsys.readouterr().err == (
        "mobilenet-v1 train: error: another process of this job ended or cannot be reached (gloo: Connection reset "
        "by peer); nothing was saved after the newest checkpoint, from which the same command with --resume auto "
        "continues\n")
    monkeypatch.setitem(cli.COMMANDS, "eval", peer_gone)  # eval saves nothing: it says what happened only
    assert cli.main(["eval"]) == 1
    assert capsys.readouterr().err == ("mobilenet-v1 eval: error: another process of this job ended or cannot be "
                                       "reached (gloo: Connection reset by peer)\n")

    def store_gone(argv):  # the rendezvous store's message names no backend: torch.distributed's error type says it
        raise torch.distributed.DistNetworkError("failed to recv, got 0 bytes: Connection reset by peer")

    monkeypatch.setitem(cli.COMMANDS, "eval", store_gone)
    assert cli.main(["eval"]) == 1
    assert capsys.readouterr().err == ("mobilenet-v1 eval: error: another process of this job ended or cannot be "
                                       "reached (torch.distributed: Connection reset by peer)\n")

    def bug(argv):
        raise RuntimeError("a bug of ours")

    monkeypatch.setitem(cli.COMMANDS, "info", bug)
    with pytest.raises(RuntimeError, match="a bug of ours"):  # a traceback to report, not a message
        cli.main(["info"])


def test_the_advice_on_memory_names_a_width_or_class_num_that_makes_the_network_large(monkeypatch, capsys, tmp_path):
    """Running out of memory said "a smaller batch_size or image_size" even where width_mult 1e4 (3e14 weights)
    or a million classes was the cause: each is named where above its usual size, weighed against the batch."""
    from mobilenet_v1 import model, runtime, train

    said = ("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate "
            "1255836267978752 bytes")

    def oom(*args, **kwargs):
        raise RuntimeError(said)

    monkeypatch.setattr(train, "_run", oom)
    argv = ["train", "--device_target=CPU", "--num_workers=0", f"--save_checkpoint_path={tmp_path / 'run'}"]
    plain = "; a smaller batch_size or image_size needs less"
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == f"mobilenet-v1 train: error: out of memory ({said}){plain}\n"
    assert cli.main(argv + ["--width_mult=10000"]) == 1
    assert capsys.readouterr().err.endswith(f"{plain}, as does a smaller width_mult (10000 here: 3.1e+14 weights, "
                                            f"3.2 million at 1)\n")
    assert cli.main(argv + ["--class_num=1000000", "--batch_size=16"]) == 1
    assert capsys.readouterr().err.endswith(
        f"{plain}, as does a smaller class_num (1,000,000 here: the classifier's 1.0 billion weights, with their "
        f"gradients and optimiser state, take more than the other layers and a batch's activations)\n")
    # ImageNet-21k's 21,841 classes (22 million weights) at 224 in batches of 256: the activations are what is large.
    for width, classes, batch, size, named in ((1.0, 21841, 256, 224, ""), (1.0, 100000, 128, 32, "class_num"),
                                               (1.25, 1001, 256, 224, "width_mult (1.25 here")):
        try:
            with runtime.network_sized(width, classes, batch, size):
                oom()
        except RuntimeError as e:
            advice = runtime.memory_advice(e)
        assert advice.startswith(plain[2:]) and (named in advice if named else advice == plain[2:])
    # benchmark --width_mult builds each network (of 1000 classes): the same advice.
    monkeypatch.setattr(model, "MobileNetV1", oom)
    assert cli.main(["benchmark", "--width_mult", "10000", "--image_size", "32"]) == 1
    assert capsys.readouterr().err.endswith(f"{plain}, as does a smaller width_mult (10000 here: 3.1e+14 weights, "
                                            f"4.2 million at 1)\n")


def test_an_export_that_differs_by_rounding_of_large_logits_points_to_atol(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    model = save(tmp_path / "m.pt")
    monkeypatch.setattr(export, "max_difference", lambda *a, **k: ({1: 0.0067, 2: 0.005}, 377.0))
    monkeypatch.setattr(export, "float64_distances", lambda *a, **k: (1e-5, 0.0067))
    with pytest.raises(export.ExportError, match=r"differ from PyTorch's by 0.0067 \(more than 0.0001\); the logits "
                                                 r"reach 377, so that is 1.8e-05 of them, float32 rounding \(--atol "
                                                 r"0.01 accepts it\); PyTorch's own float32 logits are 1e-05 from the "
                                                 r"model's float64 ones, the file's 0.0067 \(more than 4x that plus "
                                                 r"0.0001\); not a faithful export, not written"):
        export.export_checkpoint(model, str(tmp_path / "m"))
    # A difference beyond rounding is not waved through.
    monkeypatch.setattr(export, "max_difference", lambda *a, **k: ({1: 0.5, 2: 0.5}, 377.0))
    monkeypatch.setattr(export, "float64_distances", lambda *a, **k: (1e-5, 0.5))
    with pytest.raises(export.ExportError) as e:
        export.export_checkpoint(model, str(tmp_path / "m"))
    assert "--atol" not in str(e.value) and "0.0013 of them" in str(e.value)
    assert not (tmp_path / "m.onnx").exists()


def test_quantize_names_its_own_option_for_a_missing_folder(tmp_path, capsys):
    assert cli.main(["quantize", "--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(tmp_path / "nowhere"),
                     "--out", str(tmp_path / "q.onnx")]) == 1
    assert f"--calib_data {tmp_path / 'nowhere'}: not a folder" in capsys.readouterr().err
    # Each source given empty is named: --tflite "" and --program "" were taken as not given (a traceback).
    (tmp_path / "data").mkdir()
    for option in ("--onnx", "--program", "--tflite"):
        assert cli.main(["quantize", option, "", "--calib_data", str(tmp_path / "data"), "--out",
                         str(tmp_path / "q.x")]) == 1
        said = capsys.readouterr().err.splitlines()[-1]
        assert said == f"mobilenet-v1 quantize: error: {option} is empty: give a file"
    # A file of another kind than its option's is pointed to the option that takes it (--onnx x.tflite was told
    # to export an ONNX file first); one of no kind, to the export that writes the option's.
    (tmp_path / "f.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(32))  # TensorFlow Lite's identifier
    (tmp_path / "f.onnx").write_bytes(b"\x08\x08")
    (tmp_path / "f.pt2").write_bytes(b"PK")
    (tmp_path / "f.bin").write_bytes(b"nothing")
    for option, file, said in (("--onnx", "f.tflite", ": it is the file --tflite takes (quantize --tflite "),
                               ("--onnx", "f.pt2", ": it is the file --program takes (quantize --program "),
                               ("--tflite", "f.onnx", ": it is the file --onnx takes (quantize --onnx "),
                               ("--program", "f.tflite", ": it is the file --tflite takes (quantize --tflite "),
                               ("--tflite", "f.bin", " (export a checkpoint with 'mobilenet-v1 export --ckpt_file C "
                                                     "--file_name N --file_format TFLITE' first)")):
        assert cli.main(["quantize", option, str(tmp_path / file), "--calib_data", str(tmp_path / "data"), "--out",
                         str(tmp_path / "q.x")]) == 1
        err = capsys.readouterr().err
        assert f"error: {option} {tmp_path / file}: not a" in err and said in err, (option, file, err)


@pytest.mark.parametrize("argv, said", [
    # NumPy's seeding past int64: "Overflow when unpacking long long", no option named; -1 was taken
    (["recalibrate-bn", "m.pt", "--out", "o.pt", "--dataset_path", "d", "--seed", "100000000000000000000"],
     "argument --seed: seed must be in [0, 2**32 - 1], got 100000000000000000000"),
    (["quantize", "--onnx", "m.onnx", "--calib_data", "d", "--out", "q.onnx", "--seed", "-1"],
     "argument --seed: seed must be in [0, 2**32 - 1], got -1"),
    # torch's storage size overflowed (a traceback), or tens of GB asked for
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--image_size", "2147483647"],
     "argument --image_size: 2147483647 is above 65536 pixels a side"),
    (["recalibrate-bn", "m.pt", "--out", "o.pt", "--dataset_path", "d", "--image_size", "70000"],
     "argument --image_size: 70000 is above 65536 pixels a side"),
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--batch_size", "-2147483648"],
     "argument --batch_size: -2147483648 is past -2,147,483,647"),
    # the commands' own --num_workers and --max_bad_samples: the configuration's rules (config.num_workers_problem)
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--num_workers", "2000"],
     "argument --num_workers: num_workers 2000 is above 1,024 loader processes"),
    (["quantize", "--onnx", "m.onnx", "--calib_data", "d", "--out", "q.onnx", "--max_bad_samples",
      "99999999999999999999"], "argument --max_bad_samples: 99999999999999999999 is past 2,147,483,647"),
], ids=["recalibrate seed", "quantize seed", "predict size", "recalibrate size", "negative", "workers", "bad samples"])
def test_a_commands_own_numbers_out_of_their_range_are_refused_naming_the_option(argv, said, capsys):
    with pytest.raises(SystemExit):  # argparse's, before anything is read
        cli.main(argv)
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--batch_size", "1e300"],
     "argument --batch_size: 100000... (301 digits) is past 2,147,483,647"),
    (["train", "--batch_size", "-1e300"], "batch_size must be at least 1, got -100000... (301 digits)"),
    (["train", "--epoch_size", "1e30"], "epoch_size 100000... (31 digits) is above 2,147,483,647"),
], ids=["predict", "train negative", "train"])
def test_a_number_of_hundreds_of_digits_is_refused_in_a_short_line(argv, said, capsys):
    """1e300 reads as a whole number (a float with no fraction), and the refusal printed all 301 digits of it."""
    try:
        code = cli.main(argv)
    except SystemExit as exit:  # argparse's own (predict's); train's options are the configuration's
        code = exit.code
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()[-1]) < 200, err
    from mobilenet_v1.config import long_numbers_cut

    path = "dataset_path /data/1234567890123456789012345/x: does not exist"  # a path's part is left whole
    assert long_numbers_cut(path) == path


def test_a_commands_own_numbers_at_the_ends_of_their_range_are_taken():
    """--seed 0 and 2**32 - 1, --image_size 65,536 and --batch_size -(2**31 - 1) are inside their ranges (the
    refusals one past them are the test above's)."""
    import argparse

    from mobilenet_v1.config import image_size_number, seed_number, whole_number

    assert seed_number("0") == 0 and seed_number(str(2 ** 32 - 1)) == 2 ** 32 - 1
    assert image_size_number("65536") == 65536 and whole_number(str(-(2 ** 31 - 1))) == -(2 ** 31 - 1)
    for number, text in ((seed_number, "-1"), (seed_number, str(2 ** 32)), (image_size_number, "65537")):
        with pytest.raises(argparse.ArgumentTypeError):
            number(text)


def test_a_commands_own_whole_numbers_are_read_as_the_configurations_are():
    """``--image_size 97.0`` and ``1e3`` are whole numbers for predict and export as they are for train (whose
    options go through the configuration's reading): predict refused them, "not a whole number"; a fraction, inf
    and nan are still refused, naming the value."""
    import argparse

    from mobilenet_v1.config import OptionError, coerce, image_size_number, whole_number

    assert image_size_number("97.0") == 97 == coerce("image_size", "97.0", "--image_size")
    assert whole_number("1e3") == 1000 == coerce("batch_size", "1e3", "--batch_size")
    for text in ("97.5", "inf", "-inf", "nan", "1e", ""):
        with pytest.raises(argparse.ArgumentTypeError, match=f"not a whole number: {text!r}"):
            whole_number(text)
        with pytest.raises(OptionError):
            coerce("image_size", text, "--image_size")


def test_another_tools_option_name_is_answered_with_the_option_here(capsys):
    """timm's --model, the ONNX exporters' -o/--opset, --img-size given to an argparse command: the error says what
    does it here, in argparse's "unrecognized" and in its "required" errors alike; every name of the table is one
    the command refuses (not an option of its, nor short for one)."""
    from mobilenet_v1.config import FOREIGN_OPTIONS

    for command, names in FOREIGN_OPTIONS.items():
        for name, ours in names.items():
            with pytest.raises(SystemExit) as exit:
                cli.main([command, name, "x"])
            assert exit.value.code == 2
            err = capsys.readouterr().err
            assert err.rstrip().endswith(f"({name} is another tool's option; here: {ours})"), (command, name, err)
    with pytest.raises(SystemExit):
        cli.main(["export", "--img-size", "224"])  # timm's dashes: the name as read
    assert capsys.readouterr().err.rstrip().endswith("(--img_size is another tool's option; here: --width and "
                                                     "--height (default: the size the checkpoint records))")
    with pytest.raises(SystemExit):  # beside another error, after it
        cli.main(["predict", "a.jpg", "--top_k", "0", "--model", "m.pt"])
    assert capsys.readouterr().err.rstrip().endswith("(--model is another tool's option; here: --ckpt_file)")
    with pytest.raises(SystemExit):  # after --, a file named so
        cli.main(["export", "--", "-o"])
    assert "another tool's option" not in capsys.readouterr().err


def test_a_path_that_starts_with_a_dash_is_told_how_to_give_it(tmp_path, monkeypatch, capsys):
    """`predict -x.jpg`, `info -m.ckpt` or `--out -o.csv`: argparse takes the path for an option and said only
    "required: IMAGE", "unrecognized arguments: -m.ckpt" or "expected one argument" (helper-406). The error says
    how to name it (./-x.jpg, after --), and that way reads it; a mistyped option or a negative number gets no
    such hint."""
    ckpt = save(tmp_path / "m.ckpt")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-x.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, 1)))
    shutil.copy(ckpt, tmp_path / "-m.ckpt")
    image_hint = "(-x.jpg starts with a dash, which reads as an option: name it ./-x.jpg, or put it after --)"
    for argv, said, hint in (
            (["predict", "--ckpt_file", ckpt, "-x.jpg"], "required: IMAGE", image_hint),
            (["predict", "--ckpt_file", ckpt, "./-x.jpg", "-x.jpg"], "unrecognized arguments: -x.jpg", image_hint),
            (["info", "-m.ckpt"], "-m.ckpt", "(-m.ckpt starts with a dash, which reads as an option: name it "
                                             "./-m.ckpt, or put it after --)"),
            (["predict", "--ckpt_file", ckpt, "--out", "-o.csv", "./-x.jpg"], "argument --out: expected one argument",
             "(-o.csv starts with a dash, which reads as an option: give --out ./-o.csv)")):
        with pytest.raises(SystemExit) as exit:
            cli.main(argv)
        assert exit.value.code == 2, argv
        err = capsys.readouterr().err
        assert said in err and err.rstrip().endswith(hint), (argv, err)
    for argv, said in ((["predict", "--ckpt_file", ckpt, "--bogus", "./-x.jpg"], "unrecognized arguments: --bogus"),
                       (["predict", "--ckpt_file", ckpt, "--top_k", "-1", "./-x.jpg"], "--top_k must be at least 1")):
        with pytest.raises(SystemExit):
            cli.main(argv)
        err = capsys.readouterr().err
        assert said in err and "starts with a dash" not in err, (argv, err)
    # As the hints name them, the paths read and write
    assert cli.main(["predict", "--ckpt_file", ckpt, "--out", "./-o.csv", "./-x.jpg"]) == 0
    assert (tmp_path / "-o.csv").read_text().splitlines()[1].startswith("./-x.jpg,")
    assert cli.main(["info", "--", "-m.ckpt"]) == 0


def test_an_option_suggested_names_its_path_as_a_shell_reads_it(tmp_path, monkeypatch, capsys):
    """`lr-schedule "my run"` answered "--config_path my run/config.yaml ..., train --config_path my run/config.yaml
    --resume auto continues it": pasted, the shell split the path at its space (helper-406). The paths of the
    options suggested are quoted as a shell reads them (runtime.shell_path), as the commands suggested at a run's
    end are; so is a refused resume's --pre_trained."""
    import shlex

    run = tmp_path / "my run"
    run.mkdir()
    (run / "config.yaml").write_text("epoch_size: 3\n")
    (tmp_path / "my conf.yaml").write_text("epoch_size: 3\n")
    monkeypatch.chdir(tmp_path)

    def suggested(err, before, after):
        return shlex.split(err.partition(before)[2].partition(after)[0])

    for argv in (["lr-schedule", "my run"], ["eval", "my run"], ["train", "my conf.yaml"],
                 ["lr-schedule", "--config_path", "my run"]):
        try:
            code = cli.main(argv)
        except SystemExit as exit:
            code = exit.code
        assert code not in (0, None), argv
        err = capsys.readouterr().err
        if argv[1] == "my run":
            assert suggested(err, "train ", " continues it") == ["--config_path", "my run/config.yaml", "--resume",
                                                                 "auto"], err
            assert suggested(err, "eval --checkpoint_path ", " its newest") == ["my run"], err
        elif argv[1] == "my conf.yaml":
            assert suggested(err, "read with ", ")") == ["--config_path", "my conf.yaml"], err
        else:
            assert suggested(err, "a folder, not a YAML file: ", " is its run") == ["--config_path",
                                                                                   "my run/config.yaml"], err
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ckpt = {"format": ckpt_io.FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": {},
            "config": {"freeze_layers": 3}, "epoch": 1, "step": 4, "rng": ckpt_io.rng_state()}
    with pytest.raises(ckpt_io.CheckpointError) as e:
        ckpt_io.validate_training_checkpoint(ckpt, "my run/x.ckpt", model, optimizer, 4, freeze_layers=0)
    assert suggested(str(e.value), "; ", " without --resume") == ["--pre_trained", "my run/x.ckpt"], str(e.value)
    # average's refusal of a MindSpore .ckpt (no padding recorded) beside a symmetric one: the convert it suggests
    seed_file = str(run / "seed.ckpt")
    assert cli.main(["convert", save(tmp_path / "m.pt"), seed_file]) == 0
    symmetric = ckpt_io.load_file(save(tmp_path / "sym.pt"))
    symmetric["model_args"]["padding"] = "symmetric"
    torch.save(symmetric, str(tmp_path / "sym.pt"))
    capsys.readouterr()
    assert cli.main(["average", seed_file, str(tmp_path / "sym.pt"), "--out", str(tmp_path / "mean.pt")]) == 1
    err = capsys.readouterr().err
    assert suggested(err, "`mobilenet-v1 convert ", "` writes") == [seed_file, "OUT", "--padding", "symmetric"], err


def test_a_dash_leading_value_with_a_space_read_as_given_gets_no_dash_hint(tmp_path, monkeypatch, capsys):
    """argparse reads a token with a space as a value, dash or not: `--out "-my out.csv"` is --out's. Another error
    of the same command (no --ckpt_file) was told "-my out.csv starts with a dash, which reads as an option: give
    --out './-my out.csv'", which it did not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-my cat.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, 1)))
    for argv in (["predict", "--out", "-my out.csv", "x.jpg"], ["predict", "-my cat.jpg"]):
        with pytest.raises(SystemExit) as exit:
            cli.main(argv)
        assert exit.value.code == 2
        err = capsys.readouterr().err
        assert "required: --ckpt_file" in err and "starts with a dash" not in err, (argv, err)


@pytest.mark.parametrize("argv", [["benchmark", "--seconds", "-1e-3"], ["export", "--atol", "-1e-3"],
                                  ["info", "--width_mult", "-1e0"], ["benchmark", "--width_mult", "-0.25,0.5"]])
def test_a_negative_number_in_exponent_form_is_told_as_a_value_not_as_a_path(argv, capsys):
    """argparse reads `-1e-3` or `-0.25,0.5` (no pattern of its negative numbers) as an option: the hint said to give
    it as a path, `--seconds ./-1e-3`, which is no number; `--seconds=-1e-3` reaches the option's own check."""
    option, value = argv[1:]
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected one argument" in err, err
    assert err.rstrip().endswith(f"({value} starts with a dash, which reads as an option: give {option}={value})")
    try:  # as the hint gives it, the value is read: refused (or not) for what it is, not for its dash
        cli.main([argv[0], f"{option}={value}"])
    except SystemExit:
        pass
    assert "expected one argument" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, switch, word", [
    (["export", "--static_batch", "True", "--ckpt_file", "m.pt"], "--static_batch", "True"),
    (["predict", "--background_class", "False", "a.jpg", "--ckpt_file", "m.pt"], "--background_class", "False"),
    (["quantize", "--per_tensor", "true", "--onnx", "m.onnx"], "--per_tensor", "true"),
    (["info", "m.pt", "--json", "FALSE"], "--json", "FALSE"),
])
def test_a_switch_given_a_true_or_false_says_it_takes_no_value(argv, switch, word, capsys):
    """train's keys take True or False (the seed's way), the commands' switches nothing: the word was
    "unrecognized arguments: True" (export), or an image predict looked for ("image False: no such file")."""
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mobilenet-v1 {argv[0]}: error: {switch} {word}: {switch} is a switch, taking no value: give {switch} alone "
        f"for True, leave it out for False")
    with pytest.raises(SystemExit):  # one token: argparse's own words, and the same way out
        cli.main([argv[0], f"{switch}={word}", *argv[3:]])
    assert capsys.readouterr().err.rstrip().endswith(
        f"ignored explicit argument {word!r} ({switch} is a switch: give {switch} alone for True, leave it out for "
        f"False)")
    assert cli.main(["predict", "--ckpt_file", "m.pt", "--", "--background_class", "False"]) == 1  # files named so
    assert "is a switch" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["export", "--static", "True", "--ckpt_file", "m.pt"], "--static True: --static is a switch"),  # argparse's prefix
    (["eval", "--json", "True", "--checkpoint_path", "m.pt"], "--json True: --json is a switch"),
    (["eval", "--per_class=false", "--checkpoint_path", "m.pt"], "--per_class false: --per_class is a switch"),
    (["data-stats", "--json", "TRUE", "--dataset_path", "d"], "--json TRUE: --json is a switch"),
])
def test_every_commands_switches_say_they_take_no_value(argv, said, capsys):
    """eval's and data-stats' switches (read by pop_flag, not argparse) left the word over ("unexpected argument
    'True': options are --key=value or --key value", as if that were the way), and argparse took a switch's prefix
    (--static for --static_batch) past the check."""
    with contextlib.suppress(SystemExit):
        assert cli.main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.endswith(f"{said}, taking no value: give {said.split(':')[0].split()[0]} alone for True, leave it "
                        f"out for False"), err


def test_another_tools_option_given_with_its_value_after_an_equals_sign_is_answered_once(capsys):
    """--model=m.pt (one token) is answered as --model m.pt is; where several such names are given, the first is
    answered, once; convert's --weights is argparse's short for --weights_only, no other tool's name there."""
    with pytest.raises(SystemExit) as exit:
        cli.main(["export", "--model=m.pt"])
    assert exit.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith("(--model is another tool's option; here: --ckpt_file)")
    with pytest.raises(SystemExit):
        cli.main(["predict", "a.jpg", "--model", "m.pt", "-o", "out.csv"])
    err = capsys.readouterr().err
    assert err.rstrip().endswith("(--model is another tool's option; here: --ckpt_file)")
    assert err.count("another tool's option") == 1
    with pytest.raises(SystemExit):
        cli.main(["convert", "--weights", "w.pt"])
    assert "another tool's option" not in capsys.readouterr().err


def test_the_readme_shows_every_command_and_only_options_its_command_takes(capsys):
    """README.md's command lines (code blocks and inline, continued lines joined): every command of the CLI
    is shown, and each --option written after ``mobilenet-v1 CMD`` is one that CMD's --help names (train,
    eval and lr-schedule: also any configuration key), so that a renamed option cannot leave it wrong."""
    import re

    from mobilenet_v1.config import Config

    text = re.sub(r"\\\n\s*", " ", open(os.path.join(SRC, "..", "README.md"), encoding="utf-8").read())
    shown = {}
    for match in re.finditer(r"(?:mobilenet-v1|-m mobilenet_v1) ([a-z][a-z-]+)((?: +[^ `|;#\n]+)*)", text):
        shown.setdefault(match.group(1), set()).update(re.findall(r"(?<![\w-])--([a-zA-Z][\w-]*)", match.group(2)))
    assert set(cli.COMMANDS) <= set(shown), set(cli.COMMANDS) - set(shown)
    keys = set(Config.__dataclass_fields__) | {"config_path"}
    for name in cli.COMMANDS:
        capsys.readouterr()
        try:
            assert cli.main([name, "--help"]) == 0
        except SystemExit as e:  # argparse's --help
            assert e.code == 0
        helped = capsys.readouterr()
        # The options the help lists (a line of their own) or its usage names, not those its prose mentions.
        usage = re.match(r"usage:.*?(?:\n\n|\Z)", helped.out + helped.err, re.S)
        listed = re.findall(r"^ {2,4}(?:-\w, )?--([a-zA-Z][\w-]*)", helped.out + helped.err, re.M)
        known = set(listed) | set(re.findall(r"--([a-zA-Z][\w-]*)", usage.group(0) if usage else "")) | {"help"}
        if name in ("train", "eval", "lr-schedule"):
            known |= keys
        assert shown[name] <= known, f"README: mobilenet-v1 {name} with {sorted(shown[name] - known)}"
    assert len(shown["train"]) > 30 and {"ckpt_file", "top_k"} <= shown["predict"]  # the lines were found


def test_no_command_or_an_unknown_one_shows_the_usage_with_a_shells_status_2(capsys):
    """No command is a slip (status 2, as argparse's); --help, -h and help ask for the usage (0); an unknown
    command is named on stderr, the usage after it, status 2."""
    assert cli.main([]) == 2
    usage = capsys.readouterr().out
    assert usage.startswith("usage: mobilenet-v1 COMMAND [options]\n") and "\n  lr-schedule " in usage
    for flag in ("--help", "-h", "help"):
        assert cli.main([flag]) == 0
        assert capsys.readouterr().out == usage, flag
    assert cli.main(["trian", "--epoch_size=1"]) == 2
    said = capsys.readouterr()
    assert said.out == "" and said.err == f"mobilenet-v1: unknown command 'trian'\n\n{usage}"
    # --version, as pip's and python's (it was an unknown command, the version in a training log alone)
    from mobilenet_v1 import __version__

    for flag in ("--version", "-V"):
        assert cli.main([flag]) == 0
        assert capsys.readouterr().out.startswith(f"mobilenet-v1 {__version__} (git "), flag


NO_CHECKPOINT = "the folder holds no numbered checkpoint (mobilenetv1-EPOCH_STEP.ckpt)"
TRAIN = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--epoch_size=1", "--dataset_path={data}", "--save_checkpoint_path={tmp}/run"]


MISSING_PATHS = [  # (command line, what names the path, what is not there, whether an empty folder is refused)
    (["eval", "--dataset_path={data}", "--checkpoint_path", "{path}"], "--checkpoint_path", "file or run folder", True),
    (["export", "--ckpt_file", "{path}", "--file_name", "{tmp}/out"], "--ckpt_file", "file or run folder", True),
    (["predict", "{tmp}/cat.png", "--ckpt_file", "{path}"], "--ckpt_file", "file or run folder", True),
    (["info", "{path}"], "model file", "file or run folder", True),
    (["benchmark", "{path}"], "model file", "file or run folder", True),
    (["convert", "{path}", "{tmp}/out.pt"], "checkpoint", "file or run folder", True),
    (["recalibrate-bn", "{path}", "--dataset_path", "{data}", "--out", "{tmp}/out.pt"], "checkpoint",
     "file or run folder", True),
    (["quantize", "--onnx", "{path}", "--calib_data", "{data}", "--out", "{tmp}/q.onnx"], "--onnx", "file", False),
    (["quantize", "--program", "{path}", "--calib_data", "{data}", "--out", "{tmp}/q.pte"], "--program", "file",
     False),
    (["train", *TRAIN, "--teacher={path}"], "--teacher", "file or run folder", True),
    (["train", *TRAIN, "--pre_trained={path}"], "--pre_trained", "file or run folder", True),
    (["train", *TRAIN, "--resume={path}"], "--resume", "file or run folder", False),  # a folder: the test below
    (["train", "--config_path", "{path}"], "--config_path", "file", False),
    (["export", "--config_path", "{path}", "--ckpt_file", "{tmp}/m.pt"], "--config_path", "file", False),
    (["lr-schedule", "--config_path", "{path}"], "--config_path", "file", False),
]


@pytest.mark.parametrize("argv, named, gone, folder", MISSING_PATHS,
                         ids=[f"{argv[0]} {named}" for argv, named, _, _ in MISSING_PATHS])
def test_a_path_given_that_is_not_there_is_named_by_its_option(argv, named, gone, folder, cifar_dir, tmp_path,
                                                                capsys):
    """Said "checkpoint X: no such file" (the reader's words, also of an .onnx given to benchmark), "config file X:
    No such file or directory", or "checkpoint folder X: holds no numbered checkpoint": not which option was
    given it. Refused in one line before anything is loaded, named as --teacher and --pre_trained are."""
    (tmp_path / "cat.png").write_bytes(b"an image to predict")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, what in ((tmp_path / "missing.model", f"no such {gone}"), (empty, NO_CHECKPOINT))[:1 + folder]:
        args = [a.format(path=path, tmp=tmp_path, data=cifar_dir) for a in argv]
        assert cli.main(args) == 1, args
        assert capsys.readouterr().err.splitlines()[-1] == f"mobilenet-v1 {argv[0]}: error: {named} {path}: {what}"
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob("out*")) and not list(tmp_path.glob("q.*"))


@pytest.mark.parametrize("argv, named, kinds", [(a, n, k) for a, n, k, _ in MISSING_PATHS if n != "--config_path"],
                         ids=[f"{a[0]} {n}" for a, n, _, _ in MISSING_PATHS if n != "--config_path"])
def test_a_device_given_as_a_model_file_is_named_for_what_it_is(argv, named, kinds, cifar_dir, tmp_path, capsys):
    """/dev/null given as a checkpoint (or --onnx, --resume) was "no such file", which it plainly is not."""
    (tmp_path / "cat.png").write_bytes(b"an image to predict")
    args = [a.format(path=os.devnull, tmp=tmp_path, data=cifar_dir) for a in argv]
    assert cli.main(args) == 1, args
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mobilenet-v1 {argv[0]}: error: {named} {os.devnull}: a device, not a regular file: give a {kinds}")
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob("out*")) and not list(tmp_path.glob("q.*"))


def test_the_readers_name_a_device_or_a_pipe_for_what_it_is(tmp_path):
    """The readers behind the options (a Python caller's load): not "no such file" either."""
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    for read, path, said in ((ckpt_io.load_torch_file, os.devnull, "checkpoint"),
                             (ckpt_io.load_file, os.devnull, "checkpoint"),
                             (onnx_io.OnnxModel, str(fifo), "ONNX file"),
                             (onnx_io.ProgramModel, str(fifo), "program")):
        with pytest.raises(ckpt_io.CheckpointError) as raised:
            read(path)
        kind = "a device" if path == os.devnull else "a named pipe"
        assert str(raised.value) == f"{said} {path}: {kind}, not a regular file"


def test_resume_of_a_folder_without_checkpoints_starts_only_in_the_runs_own_folder(cifar_dir, tmp_path, capsys):
    """--resume of a folder that holds no checkpoint starts the run from the beginning only where the folder is
    the run's own (relaunched before its first save: one command for every launch); another folder (the data
    set's, the one above the run folders, a slip) gains no checkpoint from this run, which started afresh there
    and wrote into save_checkpoint_path as if nothing had been asked: refused, nothing written."""
    other = tmp_path / "other"
    other.mkdir()
    args = [a.format(data=cifar_dir, tmp=tmp_path) for a in TRAIN]
    assert cli.main(["train", *args, f"--resume={other}"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mobilenet-v1 train: error: --resume {other}: no checkpoint in {other}, which is not this run's folder "
        f"(save_checkpoint_path {tmp_path / 'run'}): name a run folder or a checkpoint to continue, or --resume auto "
        f"(or no --resume) to start in {tmp_path / 'run'}")
    assert not (tmp_path / "run").exists() and os.listdir(other) == []
    # A folder that holds a checkpoint not numbered (a release's), or run folders: said, with the one to pass.
    (other / "mobilenetv1.ckpt").write_bytes(b"")
    assert cli.main(["train", *args, f"--resume={other}"]) == 1
    assert (f"--resume {other}: no checkpoint in {other}, which is not this run's folder (save_checkpoint_path "
            f"{tmp_path / 'run'}); it holds {other / 'mobilenetv1.ckpt'}: pass that; or name a run folder"
            ) in capsys.readouterr().err
    (other / "mobilenetv1.ckpt").unlink()
    (other / "a").mkdir()
    (other / "a" / "mobilenetv1-1_2.ckpt").write_bytes(b"")
    assert cli.main(["train", *args, f"--resume={other}"]) == 1
    assert (f"--resume {other}: no checkpoint in {other}, which is not this run's folder (save_checkpoint_path "
            f"{tmp_path / 'run'}); its run folder {other / 'a'} holds them: pass that; or name a run folder"
            ) in capsys.readouterr().err
    shutil.rmtree(other / "a")
    # The run's own folder named before any checkpoint is there: it starts, and saves there.
    own = tmp_path / "run"
    own.mkdir()
    assert cli.main(["train", *args, f"--resume={own}"]) == 0
    assert f"resume {own}: no checkpoint in {own} yet, starting from the beginning" in capsys.readouterr().out
    assert ckpt_io.checkpoint_files_in(str(own))


def test_a_run_folder_given_is_named_by_its_option_in_each_of_its_faults(tmp_path):
    """A distributed run's folder whose ckpt_0/ holds no checkpoint, and a link to nothing, named by the option
    with what is there; without an option, the reader after it is left to name a missing path."""
    (tmp_path / "run" / ckpt_io.DISTRIBUTED_SUBFOLDER).mkdir(parents=True)
    with pytest.raises(ckpt_io.CheckpointError) as raised:
        ckpt_io.resolve_checkpoint_path(str(tmp_path / "run"), "--ckpt_file")
    assert str(raised.value) == (f"--ckpt_file {tmp_path / 'run'}: its ckpt_0/ holds no numbered checkpoint "
                                 f"(mobilenetv1-EPOCH_STEP.ckpt)")
    os.symlink(tmp_path / "gone.ckpt", tmp_path / "link.ckpt")
    with pytest.raises(ckpt_io.CheckpointError) as raised:
        ckpt_io.resolve_checkpoint_path(tmp_path / "link.ckpt", "--teacher")
    assert str(raised.value) == f"--teacher {tmp_path / 'link.ckpt'}: a link to nothing"
    assert ckpt_io.resolve_checkpoint_path(tmp_path / "gone.ckpt") == str(tmp_path / "gone.ckpt")


def test_an_image_folder_that_is_not_there_is_named_as_dataset_path(tmp_path, capsys):
    """Said "image folder X does not exist", where CIFAR's binaries were named as dataset_path: which of the
    paths given was missing went unsaid."""
    missing = tmp_path / "photos"
    for argv in (["data-stats", "--dataset", "imagenet2012"], ["train", "--dataset=imagenet2012", "--val_split=0.1",
                                                                f"--save_checkpoint_path={tmp_path / 'run'}"]):
        assert cli.main([*argv, "--dataset_path", str(missing)]) == 1, argv
        assert capsys.readouterr().err.splitlines()[-1] == (f"mobilenet-v1 {argv[0]}: error: dataset_path "
                                                            f"'{missing}' does not exist"), argv
    assert not (tmp_path / "run").exists()


def test_a_sigterm_to_lr_schedule_leaves_no_partial_file(tmp_path):
    """`timeout` (a scheduler) ends a long `lr-schedule --out` with SIGTERM: its hidden temporary file (gigabytes
    at the most steps it takes) was left beside the table, and no later command removed it. It goes, as on
    Ctrl-C, and the process still ends by the signal."""
    import signal
    import subprocess
    import time

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    proc = subprocess.Popen([sys.executable, "-m", "mobilenet_v1", "lr-schedule", "--dataset", "cifar10",
                             "--epoch_size", "100", "--steps_per_epoch", "1000000", "--out", str(tmp_path / "lr.csv")],
                            env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".lr.csv.*.tmp")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert list(tmp_path.glob(".lr.csv.*.tmp")), proc.communicate()[1]
    time.sleep(0.5)  # writing rows now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == [], err


_SIGTERM_IN_A_WRITE = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import torch
from mobilenet_v1 import cli

real_save = torch.save


SIGNAL = getattr(signal, os.environ.get("SIGNAL", "SIGTERM"))
signal.signal(SIGNAL, signal.SIG_DFL)  # as a shell starts a command (a SIGHUP nohup ignores is not ours to take)


class Signalled:  # the file torch.save writes: `timeout`'s SIGTERM once 2,000 bytes of it are written
    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, data):
        self.written += len(data)
        if self.written > 2000:
            os.kill(os.getpid(), SIGNAL)
            time.sleep(30)
        return self.f.write(data)

    def flush(self):
        self.f.flush()


torch.save = lambda obj, f, *a, **k: real_save(obj, Signalled(f), *a, **k)
sys.argv = ["mobilenet-v1", *sys.argv[2:]]
sys.exit(cli.main())
'''


def test_a_sigterm_inside_a_commands_write_leaves_the_earlier_file_and_no_partial_one(tmp_path):
    """`timeout` (a scheduler) ending convert, average, recalibrate-bn, eval --per_image, predict --out or plot
    with SIGTERM while it wrote killed it outright: the hidden temporary file (a checkpoint's size) stayed beside
    the file asked for, and no later command removed it (only export and quantize clean up after a kill). It goes,
    as on Ctrl-C, the earlier file stays whole and the process still ends by the signal, without a traceback
    (the signal lands inside torch.save's writer, which reports what its file raised as stream positions)."""
    import signal

    src, dst = save(tmp_path / "m.ckpt"), str(tmp_path / "m.pt")
    assert cli.main(["convert", src, dst]) == 0
    before = {name: digest(tmp_path / name) for name in os.listdir(tmp_path)}
    for name in ("SIGTERM", "SIGHUP"):  # the terminal closed: its file stayed, as after a kill -9
        r = subprocess.run([sys.executable, "-c", _SIGTERM_IN_A_WRITE, SRC, "convert", src, dst], capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1", SIGNAL=name))
        assert (r.returncode, r.stdout, r.stderr) == (-getattr(signal, name), "", ""), r.stderr
        assert {name: digest(tmp_path / name) for name in os.listdir(tmp_path)} == before


_SIGTERM_WITH_A_STALLED_READER = r"""
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import checkpoint

os.set_blocking(1, False)  # a reader of stdout that stopped reading (a pager left unscrolled): the pipe full
try:
    while True:
        os.write(1, b"x" * 512)
except BlockingIOError:
    pass
try:
    while True:
        os.write(1, b"x")
except BlockingIOError:
    pass
os.set_blocking(1, True)
sys.stdout.write("a line of the command's, in stdout's buffer\n")


def again():  # the signal repeated (a scheduler's, a second Ctrl-C) while the output flushes
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


with checkpoint.atomic_output(sys.argv[2]) as tmp:
    with open(tmp, "w") as f:
        f.write("partial")
    threading.Thread(target=again, daemon=True).start()
    os.kill(os.getpid(), signal.SIGTERM)
"""


def test_a_sigterm_inside_a_write_ends_the_command_while_its_output_reader_has_stopped(tmp_path):
    """The SIGTERM that unwinds a command's write ended the process only after its buffered output was flushed,
    and a reader that stopped reading (`timeout 1h mobilenet-v1 predict --out F | less`, left unscrolled) held
    that flush for ever: `timeout` ended nothing, where the signal's default action had ended it at once. The
    flush is given a moment; the process ends by the signal, without its temporary file, and the signal again
    meanwhile ends it outright (it raised our handler's exception, in a traceback)."""
    import signal

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as a pipe's is
    with open(tmp_path / "stderr", "w") as err:
        p = subprocess.Popen([sys.executable, "-c", _SIGTERM_WITH_A_STALLED_READER, SRC, str(tmp_path / "out.csv")],
                             stdout=subprocess.PIPE, stderr=err, env=dict(env, OMP_NUM_THREADS="1"))
        try:
            assert p.wait(timeout=30) == -signal.SIGTERM
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
    assert (tmp_path / "stderr").read_text() == ""
    assert os.listdir(tmp_path) == ["stderr"]


def test_the_temporary_file_a_killed_write_left_goes_with_the_next_write_of_that_file(tmp_path):
    """A kill -9 of convert (average, predict --out, ...) mid-write left its hidden temporary file, which no
    later command removed. The next write of the same file removes it; one whose writer still holds its lock (a
    write in progress), and another file's, stay."""
    import fcntl

    src, dst = save(tmp_path / "m.ckpt"), tmp_path / "m.pt"
    dead, live, other = (tmp_path / ".m.pt.abcd_123.tmp", tmp_path / ".m.pt.zz99zz99.tmp",
                         tmp_path / ".n.pt.abcd_123.tmp")
    for leftover in (dead, live, other):
        leftover.write_bytes(b"\0" * 100)
    with open(live, "rb+") as held:  # another open file: its lock stands for a live writer's
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert cli.main(["convert", src, str(dst)]) == 0
    assert sorted(os.listdir(tmp_path)) == sorted(["m.ckpt", "m.pt", live.name, other.name])


def test_a_suggested_commands_paths_paste_into_a_shell_as_one_argument_each():
    """Paths in the commands messages suggest (recalibrate-bn's after a frozen run, export's for a quantization-aware
    checkpoint, quantize's eval): one with a space was two arguments, one starting with a dash an option."""
    import shlex

    from mobilenet_v1.runtime import shell_path

    for path in ("run é/m.ckpt", "-run/m.ckpt", "lr=0.1/it's.ckpt", "/abs/-x.ckpt", "plain.ckpt"):
        line = f"mobilenet-v1 recalibrate-bn {shell_path(path)} --dataset_path {shell_path(path)} --out F"
        words = shlex.split(line)
        assert len(words) == 7 and os.path.normpath(words[2]) == os.path.normpath(path), (path, words)
        assert not words[2].startswith("-") and not words[4].startswith("-")
    assert shell_path("plain.ckpt") == "plain.ckpt" and shell_path("/abs/-x.ckpt") == "/abs/-x.ckpt"


_IMPORT_INTERRUPTED = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import cli


def export(argv):  # ONNX Runtime's import, a signal landing in it: ImportError("initialization failed") from it
    try:
        raise cli._Terminated(signal.SIGTERM) if os.environ["SIGNAL"] == "SIGTERM" else KeyboardInterrupt()
    except BaseException as e:
        raise ImportError("initialization failed") from e


cli.COMMANDS["export"] = export
sys.argv = ["mobilenet-v1", "export"]
sys.exit(cli.main())
"""


def test_a_signal_inside_an_import_ends_the_command_as_the_signal_does(tmp_path):
    """Ctrl-C or SIGTERM while export imported ONNX Runtime (or LiteRT) came back as the import's ImportError: a
    traceback, or "LiteRT is not installed"; it ends the command as the signal does elsewhere."""
    import signal

    for name, said in (("SIGINT", "mobilenet-v1 export: interrupted (Ctrl-C)\n"), ("SIGTERM", "")):
        r = subprocess.run([sys.executable, "-c", _IMPORT_INTERRUPTED, SRC], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, SIGNAL=name))
        assert (r.returncode, r.stderr) == (-getattr(signal, name), said), (name, r.stderr)


def test_the_argparse_commands_take_dashed_option_names_as_train_and_eval_do(capsys):
    """export --ckpt-file said "unrecognized arguments" and predict --ckpt-file "the following arguments are
    required: --ckpt_file" where train, eval, lr-schedule and data-stats take timm's dashes (helper-344)."""
    assert cli.underscored_options(["--ckpt-file", "my-run", "--file-format=ONNX", "-o", "x", "--", "--a-b"]) == [
        "--ckpt_file", "my-run", "--file_format=ONNX", "-o", "x", "--", "--a-b"]
    assert cli.underscored_options(["--mean=0.5", "--top-k=3", "--1-x"]) == ["--mean=0.5", "--top_k=3", "--1-x"]
    assert cli.main(["info", "--width-mult", "0.25", "--image-size", "32", "--class-num", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["width_mult"], out["image_size"], out["class_num"]) == (0.25, 32, 4)


def test_a_parent_of_run_folders_given_for_one_names_the_runs_in_it(tmp_path):
    """info runs, export --ckpt_file runs: "the folder holds no numbered checkpoint" with runs/a, runs/b there."""
    for run in ("a", "b"):
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "mobilenetv1-1_6.ckpt").write_bytes(b"x")
    (tmp_path / "runs" / "c" / "ckpt_0").mkdir(parents=True)  # a distributed run's layout
    (tmp_path / "runs" / "c" / "ckpt_0" / "mobilenetv1-2_6.ckpt").write_bytes(b"x")
    (tmp_path / "runs" / "logs").mkdir()
    with pytest.raises(ckpt_io.CheckpointError, match=r"its run folders .*runs/a, .*runs/b, .*runs/c hold them: "
                                                      r"pass one$"):
        ckpt_io.resolve_checkpoint_path(str(tmp_path / "runs"), "--ckpt_file")
    with pytest.raises(ckpt_io.CheckpointError) as e:
        ckpt_io.resolve_checkpoint_path(str(tmp_path / "runs" / "logs"), "--ckpt_file")
    assert str(e.value).endswith("the folder holds no numbered checkpoint (mobilenetv1-EPOCH_STEP.ckpt)")


def test_a_cifar_model_given_a_folder_of_photos_is_asked_for_its_binaries_not_sent_round(tmp_path):
    """quantize, recalibrate-bn, eval of a CIFAR model on a photo folder said "--dataset imagenet2012", which the
    model's recorded data set then refused: "pass --dataset cifar10" (helper-344)."""
    from conftest import class_folders_of_photos, write_cifar_dir

    photos = class_folders_of_photos(tmp_path / "photos", classes=("a", "b"), per_class=1)
    with pytest.raises(ckpt_io.CheckpointError, match="not CIFAR-10's binaries, which m.onnx was trained on") as e:
        ckpt_io.trained_dataset("m.onnx", "cifar10", None, data=("--calib_data", str(photos)))
    assert "imagenet2012" not in str(e.value)
    cifar = write_cifar_dir(tmp_path / "cifar")
    assert ckpt_io.trained_dataset("m.onnx", "cifar10", None, data=("--calib_data", str(cifar))) == "cifar10"
    assert ckpt_io.trained_dataset("m.onnx", "imagenet2012", None, data=("--calib_data", str(photos))) == "imagenet2012"


def test_a_warning_made_an_error_by_pythonwarnings_is_one_line_and_a_photo_still_decodes(tmp_path, capsys):
    """Under PYTHONWARNINGS=error (python -W error) a warning of ours ended a command with a traceback (data-stats
    of a folder with class folders Cat and cat), and torchvision 0.29's notice that its decoders move to TorchCodec
    ended every command that reads a photo (from a loader worker, predict and data-stats alike)."""
    import warnings

    import torch

    from conftest import jpeg_bytes, smooth_image
    from mobilenet_v1 import transforms

    for c in ("Cat", "dog"):
        (tmp_path / "photos" / c).mkdir(parents=True)
        (tmp_path / "photos" / c / "0.jpg").write_bytes(jpeg_bytes(smooth_image(40, 48, seed=1)))
    stats = ["data-stats", "--dataset", "imagenet2012", "--dataset_path", str(tmp_path / "photos"), "--image_size",
             "32", "--num_workers", "0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as PYTHONWARNINGS=error sets it, before the command starts
        assert cli.main(stats) == 0
        data = torch.frombuffer(bytearray(jpeg_bytes(smooth_image(40, 48, seed=1))), dtype=torch.uint8)
        assert transforms.decode_rgb(data, "x.jpg").shape == (3, 40, 48)
        (tmp_path / "photos" / "Dog").mkdir()  # one name in two cases: warned of
        capsys.readouterr()
        assert cli.main(stats) == 1
    err = capsys.readouterr().err
    assert "mobilenet-v1 data-stats: error: image folder" in err and "(DataWarning, a warning made an error" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command, option, name, said", [
    ("plot", "--out", "c.jpg", "name it .png"),  # was argparse's usage and status 2
    ("predict", "--out", "r.txt", "name it .csv or .json"),  # was too
    ("lr-schedule", "--out", "lr.txt", "name it .csv"),
    ("quantize", "--out", "q.jpg", "name it .onnx"),
    ("eval", "--confusion_csv", "cm.txt", "name it .csv"),
])
def test_every_commands_output_of_another_kind_is_refused_in_one_line_with_status_1(
        command, option, name, said, tmp_path, cifar_dir, capsys):
    ckpt = save(tmp_path / "m.ckpt")
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(image)
    (tmp_path / "m.onnx").write_bytes(b"")
    out = str(tmp_path / name)
    argv = {"plot": [str(tmp_path)], "predict": [str(image), "--ckpt_file", ckpt], "lr-schedule": [],
            "quantize": ["--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(cifar_dir)],
            "eval": ["--checkpoint_path", ckpt, "--dataset_path", str(cifar_dir)]}[command]
    assert cli.main([command, *argv, option, out]) == 1
    err = capsys.readouterr().err
    assert err == f"mobilenet-v1 {command}: error: {option} {out}: {said} (it is written as such, over any file of " \
                  f"that name)\n"
    assert not os.path.exists(out)


@pytest.mark.parametrize("argv, option", [
    (["lr-schedule", "--epoch_size", "1", "--out"], "--out"),
    (["lr-schedule", "--steps_per_epoch", "--epoch_size", "1"], "--steps_per_epoch"),
    (["data-stats", "--dataset_path", "d", "--images"], "--images"),
    (["eval", "--checkpoint_path", "m.pt", "--dataset_path", "d", "--per_image"], "--per_image"),
    (["eval", "--checkpoint_path", "m.pt", "--dataset_path", "d", "--confusion_csv", "--per_class"],
     "--confusion_csv"),  # "--per_class" was taken for the file's name
    (["eval", "--checkpoint_path", "m.pt", "--dataset_path", "d", "--image_size"], "--image_size"),
])
def test_a_commands_own_option_without_its_value_is_said_as_a_keys_is(argv, option, capsys):
    """train's `--dataset_path` without a value: "mobilenet-v1 train: error: option --dataset_path needs a value",
    status 1. The commands' own options (cli.pop_option) said "mobilenet-v1: option --out needs a value", naming
    no command, and raised SystemExit out of cli.main to a Python caller."""
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == f"mobilenet-v1 {argv[0]}: error: option {option} needs a value\n"
    assert cli.main(["train", "--dataset_path"]) == 1
    assert capsys.readouterr().err == "mobilenet-v1 train: error: option --dataset_path needs a value\n"


@pytest.mark.parametrize("argv, said", [
    (["average", "a.pt", "b.pt", "--out", "o.pt", "--last", "-1"], "--last must be >= 0 (0: all), got -1"),
    (["average", "a.pt", "b.pt", "--out", "o.pt", "--best", "-2"], "--best must be >= 0"),
    (["recalibrate-bn", "m.pt", "--dataset_path", "d", "--out", "o.pt", "--image_size", "0"],
     "--image_size 0: must be at least 1"),
    (["recalibrate-bn", "m.pt", "--dataset_path", "d", "--out", "o.pt", "--batch_size", "1"],
     "--batch_size 1: must be at least 2"),
    # the others' alike, before and after
    (["recalibrate-bn", "m.pt", "--dataset_path", "d", "--out", "o.pt", "--image_size", "70000"],
     "argument --image_size: 70000 is above 65536 pixels a side"),
    (["info", "--image_size", "0"], "--image_size 0: must be at least 1"),
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--top_k", "0"], "--top_k must be at least 1"),
])
def test_a_commands_own_number_out_of_its_range_is_argparses_refusal_in_every_command(argv, said, capsys):
    """average --last -1 and recalibrate-bn --image_size 0 were refused when the work began (status 1), where
    every other command's number out of its range, recalibrate-bn's --image_size 70000 too, is argparse's
    refusal (status 2), before any file is read: here the files named are not there."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: mobilenet-v1 {argv[0]}") and f"mobilenet-v1 {argv[0]}: error: {said}" in err


@pytest.mark.parametrize("argv, said", [
    (["info", "--width_mult", "0.5", "--iamge_size=64"],
     "unrecognized arguments: --iamge_size=64 (did you mean --image_size?)"),
    (["average", "a.pt", "b.pt", "--out", "o.pt", "--lsat", "2"], "--lsat 2 (did you mean --last?)"),
    (["quantize", "--onnx", "m.onnx", "--calib_data", "d", "--out", "q.onnx", "--calib-imgaes=3"],
     "--calib_imgaes=3 (did you mean --calib_images?)"),  # a dashed spelling is read as the underscored one
    (["export", "--ckpt_file", "m.pt", "--file_nmae", "x"], "(did you mean --file_name?)"),
    (["convert", "m.pt", "o.pt", "--formt", "pt"], "(did you mean --format?)"),
])
def test_a_misspelt_option_of_an_argparse_command_is_answered_with_the_option_as_a_keys_is(argv, said, capsys):
    """train --epoch_sise 1: "unknown key 'epoch_sise' (did you mean epoch_size?)"; the argparse commands said only
    "unrecognized arguments: --iamge_size 64". An option unlike any of the command's gets no guess."""
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert said in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["info", "--bogus"])
    assert capsys.readouterr().err.endswith("mobilenet-v1 info: error: unrecognized arguments: --bogus\n")


@pytest.mark.parametrize("argv, said", [
    (["predict", "x.jpg", "--ckpt_file", "m.pt", "--mean", "0.5", "0.4", "0.3"],
     "unrecognized arguments: 0.4 0.3 (several values in one: --mean 0.5,0.4,0.3)\n"),
    (["export", "--ckpt_file", "m.pt", "--std", "0.2", "0.25", "0.3"], "(several values in one: --std 0.2,0.25,0.3)"),
    (["recalibrate-bn", "m.pt", "--dataset_path", "d", "--out", "o.pt", "--mean=0.5", "0.4", "0.3"],
     "(several values in one: --mean 0.5,0.4,0.3)"),
    (["predict", "x.jpg", "--ckpt-file", "m.pt", "--std", ".2", "1e-1"], "(several values in one: --std .2,1e-1)"),
])
def test_timms_spelling_of_mean_and_std_is_answered_with_the_comma_form_in_the_argparse_commands(argv, said, capsys):
    """train's and eval's --mean 0.5 0.4 0.3 (timm's spelling) is answered with --mean 0.5,0.4,0.3, as README says of
    the key; predict, export and recalibrate-bn, which take --mean/--std too, said only "unrecognized arguments:
    0.4 0.3". A stray word after another option gets no such hint."""
    with pytest.raises(SystemExit):
        cli.main(argv)
    err = capsys.readouterr().err
    assert err.startswith(f"usage: mobilenet-v1 {argv[0]}") and said in err, err
    with pytest.raises(SystemExit):
        cli.main(["predict", "x.jpg", "--ckpt_file", "m.pt", "--top_k", "2", "3"])
    assert "several values" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--setps_per_epoch", "5"], "option --setps_per_epoch: unknown key 'setps_per_epoch' (did you mean "
                                 "--steps_per_epoch?)"),
    (["--steps-per-epch=5"], "option --steps_per_epch: unknown key 'steps_per_epch' (did you mean --steps_per_epoch?)"),
    (["--setps_per_epoch"], "option --setps_per_epoch: unknown key 'setps_per_epoch' (did you mean "
                            "--steps_per_epoch?)"),  # no value after it: refused as it is read
    (["--ot", "lr.csv"], "option --ot: unknown key 'ot' (did you mean --out?)"),
    (["--lr_mx", "0.1"], "option --lr_mx: unknown key 'lr_mx' (did you mean lr_max?)"),  # a key: as train says it
    (["--stepz", "3"], "option --stepz: unknown key 'stepz'\n"),  # like none: no guess
])
def test_lr_schedule_answers_its_own_options_misspelt_with_did_you_mean(argv, said, tmp_path, capsys):
    """lr-schedule --setps_per_epoch 5 said "unknown key 'setps_per_epoch'" alone, where a key misspelt gets
    "did you mean": its own options (--steps_per_epoch, --out), which are no keys, are suggested as options."""
    assert cli.main(["lr-schedule", *argv]) == 1
    out, err = capsys.readouterr()
    assert f"mobilenet-v1 lr-schedule: error: {said}" in err and out == ""



@pytest.mark.parametrize("argv, said", [
    (["--jsn"], "option --jsn: unknown key 'jsn' (did you mean --json?)"),
    (["--confusion_cvs", "c.csv"], "option --confusion_cvs: unknown key 'confusion_cvs' (did you mean "
                                   "--confusion_csv?)"),
    (["--image_size", "32,64", "--per_imag", "p.csv"], "option --per_imag: unknown key 'per_imag' (did you mean "
                                                       "--per_image?)"),  # a sweep's too
])
def test_eval_answers_its_own_options_misspelt_with_did_you_mean(argv, said, capsys):
    """eval --jsn said "unknown key 'jsn'" alone: its own options (--json, --per_image, ...) are suggested."""
    assert cli.main(["eval", "--checkpoint_path", "m.pt", *argv]) == 1
    assert f"mobilenet-v1 eval: error: {said}\n" in capsys.readouterr().err

@pytest.mark.parametrize("argv, said", [
    (["--dataset_pth", "d"], "--dataset_pth: not used by data-stats (did you mean --dataset_path?)\n"),
    (["--dataset_path", "d", "--imgaes", "5"], "--imgaes: not used by data-stats (did you mean --images?)\n"),
    (["--dataset_pth", "d", "--imgs", "5"],
     "--dataset_pth, --imgs: not used by data-stats (did you mean --dataset_path, --images?)\n"),
    (["--dataset_path", "d", "--jsno"], "option --jsno: unknown key 'jsno' (did you mean --json?)\n"),
    # Like none of its options (a key it does not read, a word): the list of those it reads, as before.
    (["--dataset_path", "d", "--lr_max", "1"], "--lr_max: not used by data-stats, which reads --config_path, "
                                                "--dataset, --dataset_path, --image_size,"),
    (["--dataset_pth", "d", "--lr_max", "1"], "--dataset_pth, --lr_max: not used by data-stats, which reads "
                                               "--config_path,"),
])
def test_data_stats_answers_a_misspelt_option_with_the_one_it_reads_as(argv, said, capsys):
    """data-stats --dataset_pth d answered with all 15 options it reads; an option that reads as one of them
    misspelt is named alone, as train's and lr-schedule's are, and the list is kept for one like none."""
    assert cli.main(["data-stats", *argv]) == 1
    err = capsys.readouterr().err
    assert f"mobilenet-v1 data-stats: error: {said}" in err and len(err.splitlines()) == 1
    assert ("which reads" in said) == ("which reads" in err)
