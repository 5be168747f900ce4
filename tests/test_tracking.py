"""The run folder: log.txt, metrics.jsonl, TensorBoard files, progress output, the best checkpoint, plots."""
import errno
import glob
import json
import math
import os
import re
import shutil
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import class_images
from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, plot, runtime, tracking, train
from mobilenet_v1 import evaluate as evaluate_mod
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, DataWarning, write_cifar_bin
from mobilenet_v1.engine import EpochResult
from mobilenet_v1.schedules import schedule
from mobilenet_v1.tracking import METRICS_FILE, RunLogger, read_metrics

SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]
TAGS = {"train/loss", "train/lr", "train/images_per_s", "train/grad_norm", "epoch/mean_loss", "epoch/images_per_s",
        "eval/top_1", "eval/top_5"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The conftest CIFAR set (2 x 96 train, 40 eval, 4 classes), built once for this module."""
    root = tmp_path_factory.mktemp("cifar")
    (root / CIFAR_TRAIN_FOLDER).mkdir()
    (root / CIFAR_EVAL_FOLDER).mkdir()
    rng = np.random.default_rng(0)
    for k in (1, 2):
        y = rng.integers(0, 4, 96)
        write_cifar_bin(str(root / CIFAR_TRAIN_FOLDER / f"data_batch_{k}.bin"), class_images(y, k), y)
    y = np.arange(40) % 4
    write_cifar_bin(str(root / CIFAR_EVAL_FOLDER / "test_batch.bin"), class_images(y, 9), y)
    return root


@pytest.fixture(scope="module")
def short_run(data_dir, tmp_path_factory):
    """Four epochs of 12 steps, evaluated every epoch, a record every 5 steps; stdout captured."""
    out = tmp_path_factory.mktemp("runs") / "short"
    args = SMALL + [f"--dataset_path={data_dir}", "--epoch_size=4", "--eval_interval=1", "--log_interval=5",
                    "--save_checkpoint_epochs=1", "--keep_checkpoint_max=2", f"--save_checkpoint_path={out}"]
    cfg = load_config(args)
    capture = tmp_path_factory.mktemp("stdout") / "stdout.txt"
    saved = sys.stdout
    with open(capture, "w", encoding="utf-8") as f:
        sys.stdout = f  # a file: not a terminal, so plain progress lines
        try:
            train.run(cfg)
        finally:
            sys.stdout = saved
    return {"dir": out, "cfg": cfg, "args": args, "stdout": capture.read_text()}


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures plot draws (the PNG is still written), kept to read their axes back."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kept = []

    class Kept(Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kept.append(self)

    monkeypatch.setattr(plot, "_matplotlib", lambda: (Kept, FigureCanvasAgg))
    return kept


def test_run_folder_holds_every_file(short_run):
    names = sorted(os.listdir(short_run["dir"]))
    events = glob.glob(str(short_run["dir"] / "events.out.tfevents.*"))
    assert len(events) == 1
    assert sorted(set(names) - {os.path.basename(events[0])}) == [
        "config.yaml", "log.txt", "metrics.jsonl", "mobilenetv1-3_12.ckpt", "mobilenetv1-4_12.ckpt",
        "mobilenetv1-best.ckpt"]  # pruning to 2 kept the best checkpoint


def test_the_git_revision_is_this_checkouts_and_unknown_for_a_copy_inside_another_repository(tmp_path):
    """An installed copy (site-packages) inside a user's repository (a project's .venv) named that project's
    commit as this tool's in every log.txt's first line (helper-328): "unknown" there; a checkout's commit here."""
    import shutil
    import subprocess

    from mobilenet_v1 import git_revision

    if shutil.which("git") is None or git_revision() == "unknown":
        pytest.skip("needs git and a checkout")
    project = tmp_path / "project"
    shutil.copytree(os.path.dirname(runtime.__file__), project / ".venv" / "mobilenet_v1")
    # A strict editable install's links (build/__editable__.*/mobilenet_v1 -> the checkout's files): followed.
    (tmp_path / "editable").mkdir()
    os.symlink(os.path.dirname(runtime.__file__), tmp_path / "editable" / "mobilenet_v1")
    for argv in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty",
                                  "-m", "theirs"]):
        subprocess.run(["git", *argv], cwd=project, check=True)
    code = "from mobilenet_v1 import git_revision; print(git_revision())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(project / ".venv")})
    assert out.stdout.strip() == "unknown", out.stderr[-2000:]
    linked = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "editable")})
    assert linked.stdout.strip() == git_revision(), linked.stderr[-2000:]
    assert len(git_revision()) >= 7  # this checkout's


def test_log_txt_is_the_printed_output_with_header_and_seed_lines(short_run):
    log = (short_run["dir"] / "log.txt").read_text()
    assert log == short_run["stdout"]
    first = log.splitlines()[0]
    assert first.startswith("mobilenet-v1 ") and "(git " in first and f"torch {torch.__version__}" in first
    assert "device cpu" in first
    assert re.search(r", started 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$", first), first  # when, where read
    assert "\nconfiguration:\n" in log and "eval_interval: 1\n" in log and "log_interval: 5\n" in log
    assert "epoch: 4 step: 12, loss is " in log and "Epoch time: " in log
    assert "epoch 1/4 step 5/12: loss " in log and " images/s, " in log and " left in epoch" in log
    assert "epoch 1/4 step 12/12" not in log  # the seed's epoch line stands for the last step


def test_metrics_jsonl_parses_and_matches_the_log(short_run):
    lines = (short_run["dir"] / METRICS_FILE).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["kind"] == "start" and records[0]["step"] == 0
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    # Every 5th global step and every epoch's last one.
    assert [r["step"] for r in steps] == sorted({s for s in range(1, 49) if s % 5 == 0 or s % 12 == 0})
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    log = (short_run["dir"] / "log.txt").read_text()
    seed_losses = [line.split("loss is ")[1] for line in log.splitlines() if line.startswith("epoch: ")]
    assert [train.float32_repr(r["loss"]) for r in epochs] == seed_losses
    by_step = {r["step"]: r for r in steps}
    for r in epochs:
        assert by_step[r["step"]]["loss"] == r["loss"]  # the epoch-end step record is the same step
        assert 0 < r["mean_loss"] and r["images_per_s"] > 0 and 0 <= r["top_1"] <= r["top_5"] <= 1
        assert r["eval_images"] == 40
    progress = {int(line.split(" step ")[1].split("/")[0]) + 12 * (int(line.split("/")[0][6:]) - 1):
                line.split("loss ")[1].split(",")[0] for line in log.splitlines() if " left in epoch" in line}
    assert progress and all(f"{by_step[s]['loss']:.4f}" == text for s, text in progress.items())
    # Each record's lr is the schedule's value at that step.
    cfg = short_run["cfg"]
    lr = schedule(cfg, 12)
    assert [r["lr"] for r in steps] == pytest.approx([float(lr[r["step"] - 1]) for r in steps], rel=1e-6)
    # Each record's gradient norm is its step's: finite, and not one value repeated.
    norms = [r["grad_norm"] for r in steps]
    assert all(math.isfinite(n) and n > 0 for n in norms) and len(set(norms)) == len(norms)
    assert read_metrics(str(short_run["dir"])) == {"steps": steps, "epochs": epochs}


def test_tensorboard_files_hold_the_scalars(short_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(short_run["dir"]))
    acc.Reload()
    assert TAGS <= set(acc.Tags()["scalars"])
    history = read_metrics(str(short_run["dir"]))
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in history["steps"]]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in history["steps"]], rel=1e-6)
    top1 = acc.Scalars("eval/top_1")
    assert [(e.step, e.value) for e in top1] == [(r["step"], pytest.approx(r["top_1"])) for r in history["epochs"]]


def test_a_run_folder_whose_path_is_not_utf8_trains_without_tensorboard_files(data_dir, tmp_path, capsys):
    """TensorBoard's writer takes UTF-8 paths only: a run folder named in Latin-1 (runs/caf\xe9) failed to start,
    with "'utf-8' codec can't encode character '\\udce9'", and left its config.yaml and metrics.jsonl behind
    (helper-354). It trains, with its other records, and says the event files are off."""
    out = os.path.join(str(tmp_path), os.fsdecode(b"caf\xe9"))
    train.run(load_config(SMALL + [f"--dataset_path={data_dir}", "--epoch_size=1", f"--save_checkpoint_path={out}"]))
    said = capsys.readouterr().out
    assert f"TensorBoard files are off: the run folder's path is not UTF-8 ({os.fsencode(out)!r})" in said
    names = os.listdir(out)
    assert "metrics.jsonl" in names and any(n.endswith(".ckpt") for n in names)
    assert not [n for n in names if n.startswith("events.out.tfevents")]


def test_a_run_folder_not_ascii_trains_under_an_ascii_locale(data_dir, tmp_path):
    """Under LC_ALL=C with PYTHONUTF8=0 os.fsdecode holds runs/résultat as surrogates, which TensorBoard's writer
    refused ("'utf-8' codec can't encode characters ...: surrogates not allowed"): the run ended at its start,
    leaving config.yaml and metrics.jsonl. It trains, its event files off, saying so."""
    import subprocess

    out = os.path.join(str(tmp_path), "résultat 猫")
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))}
    env.update(LC_ALL="C", PYTHONUTF8="0", PYTHONPATH=src, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "mobilenet_v1", "train", *SMALL, f"--dataset_path={data_dir}",
                           "--epoch_size=1", "--save_checkpoint_path=" + out], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    assert b"TensorBoard files are off: the run folder's path is not ASCII" in done.stdout
    assert any(n.endswith(".ckpt") for n in os.listdir(out)) and "log.txt" in os.listdir(out)


def test_best_checkpoint_is_the_highest_recorded_top1(short_run):
    epochs = read_metrics(str(short_run["dir"]))["epochs"]
    tops = [r["top_1"] for r in epochs]
    best_epoch = epochs[tops.index(max(tops))]["epoch"]  # the first epoch reaching the maximum
    best = ckpt_io.load_file(str(short_run["dir"] / ckpt_io.BEST_NAME))
    assert best["epoch"] == best_epoch and best["metrics"]["top_1"] == max(tops)
    again = evaluate_mod.run(load_config(short_run["args"] +
                                         [f"--checkpoint_path={short_run['dir'] / ckpt_io.BEST_NAME}"]))
    assert again["top_1_accuracy"] == pytest.approx(max(tops))
    log = (short_run["dir"] / "log.txt").read_text()
    assert f"eval: epoch {best_epoch} top-1 {max(tops):.4f}" in log
    # A run folder passed to eval still stands for its newest numbered checkpoint, not the best one.
    assert ckpt_io.resolve_checkpoint_path(str(short_run["dir"])).endswith("mobilenetv1-4_12.ckpt")


def test_lr_schedule_numbers_the_steps_as_metrics_and_tensorboard_do(short_run, data_dir, tmp_path, capsys):
    """lr-schedule counted the steps from 0 where metrics.jsonl and TensorBoard count them from 1: overlaid on a
    run's records by step, its curve stood one step ahead. Row N is now the rate the run's records give step N.
    Without --steps_per_epoch, the --dataset_path given is counted as train counts it (it was taken and not read:
    the full CIFAR-10's 50,000 images made the table, 3,125 steps an epoch)."""
    tables = []
    for steps in (["--steps_per_epoch", "12"], []):
        assert cli.main(["lr-schedule", *short_run["args"], *steps]) == 0
        out, err = capsys.readouterr()
        assert ("steps per epoch 12: 192 training images of " in err) == (not steps)
        tables.append(out)
    assert tables[0] == tables[1]
    # A config file's dataset_path alike where it is there (configs/demo.yaml's); one that is not here (the seed's
    # /cache/data) gives the full data set's steps, said.
    config = tmp_path / "c.yaml"
    args = [a for a in short_run["args"] if not a.startswith("--dataset_path")]
    for path, said, rows in ((data_dir, "steps per epoch 12: 192 training images of ", 4 * 12),
                             (tmp_path / "nowhere", " is not here: the steps of the full cifar10 data set", 4 * 3125),
                             ("''", f"note: dataset_path (config file {config}) is empty: the steps of the full",
                              4 * 3125)):
        config.write_text(f"dataset_path: {path}\n")
        assert cli.main(["lr-schedule", "--config_path", str(config), *args]) == 0
        out, err = capsys.readouterr()
        assert said in err and len(out.splitlines()) == rows + 1
    rows = [line.split(",") for line in tables[0].splitlines()[1:]]
    table = {int(step): (int(epoch), float(lr)) for step, epoch, lr in rows}
    assert sorted(table) == list(range(1, 4 * 12 + 1))
    history = read_metrics(str(short_run["dir"]))
    records = history["steps"] + [r for r in history["epochs"] if r["kind"] == "epoch"]
    assert len(records) > 8 and len({r["lr"] for r in records}) > 8  # a schedule that moves every step
    for r in records:
        assert table[r["step"]][1] == r["lr"], r
        assert table[r["step"]][0] == math.ceil(r["step"] / 12)  # the epoch the step is in, from 1


def test_a_missing_loss_leaves_the_loss_panel_on_its_log_scale(tmp_path, figures):
    """One null loss (a skipped non-finite step's, read as NaN) switched the loss panel to a linear axis: NaN is no
    positive number. It is a gap in the curve, on a log axis as on a linear one; the scale is the other values'."""
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"kind": "step", "step": s, "epoch": s / 4, "loss": loss, "lr": 0.1}
            for s, loss in ((1, 2.3), (2, None), (3, 0.9), (4, 0.4))]
    rows.append({"kind": "epoch", "step": 4, "epoch": 1, "mean_loss": 1.2, "lr": 0.1})
    (run / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    plot.plot_runs([str(run)], str(tmp_path / "curves.png"))
    assert figures[-1].axes[0].get_yscale() == "log"
    from matplotlib.figure import Figure

    nothing = Figure().subplots()  # no value to place: the axis stays linear
    nothing.plot([1], [math.nan])
    plot._log_scale(nothing)
    assert nothing.get_yscale() == "linear"


def test_plot_writes_a_png_of_the_expected_size(short_run, tmp_path, capsys, figures):
    other = tmp_path / "other"
    other.mkdir()
    # A second run by hand: an older history superseded by a restart (start record at step 0).
    rows = [{"kind": "start", "epoch": 0, "step": 0}, {"kind": "epoch", "epoch": 1, "step": 10, "loss": 9.0,
            "mean_loss": 9.0, "lr": 1.0, "top_1": 0.01}, {"kind": "start", "epoch": 0, "step": 0}]
    rows += [{"kind": "step", "step": 10 * e, "epoch": e, "loss": 2.0 / e, "lr": 0.1 / e} for e in (1, 2, 3)]
    rows += [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 2.0 / e, "mean_loss": 2.2 / e, "lr": 0.1 / e,
              "top_1": 0.3 * e} for e in (1, 2, 3)]
    (other / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r["mean_loss"] for r in read_metrics(str(other))["epochs"]] == pytest.approx([2.2, 1.1, 2.2 / 3])
    out = tmp_path / "curves.png"
    # train's records hold the gradient norm: a fourth panel
    assert cli.main(["plot", str(short_run["dir"]), str(other), "--out", str(out)]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (2400, 540)
        pixels = np.asarray(img.convert("RGB"))
    assert (pixels < 250).any(axis=2).mean() > 0.02  # something is drawn, not a blank canvas
    printed = capsys.readouterr().out
    assert "short: 4 epochs" in printed and "other: 3 epochs" in printed and "best top-1 90.00%" in printed
    assert printed.endswith(f"wrote {out} (2400x540 pixels)\n")
    assert cli.main(["plot", str(other), "--out", str(tmp_path / "small.png"), "--dpi", "100"]) == 0
    with Image.open(tmp_path / "small.png") as img:
        assert img.size == (1200, 360)  # no gradient norms: three panels
    # The norm of a skipped non-finite step (null) is left out; the run's clip_grad_norm is drawn beside.
    clipped = tmp_path / "clipped"
    clipped.mkdir()
    rows = [{"kind": "step", "step": s, "epoch": s / 4, "loss": 1.0, "lr": 0.1, "grad_norm": g}
            for s, g in ((1, 8.0), (2, None), (3, 0.5), (4, 0.25))]
    (clipped / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (clipped / ckpt_io.RUN_CONFIG).write_text("clip_grad_norm: 2.0\n")
    result = plot.plot_runs([str(other), str(clipped)], str(tmp_path / "norms.png"))
    assert (result["width"], result["runs"]["clipped"]["grad_norms"], result["runs"]["other"]["grad_norms"]) == \
        (2400, 3, 0)
    assert result["runs"]["clipped"]["clip_grad_norm"] == 2.0 and result["runs"]["other"]["clip_grad_norm"] == 0
    loss, lr, top1, norm = figures[-1].axes
    # Every panel spans the longest run (other's 3 epochs, drawn first), and 30% more for the names.
    assert [ax.get_xlim() for ax in (loss, lr, top1, norm)] == [pytest.approx((0, 3 * 1.3))] * 4
    # Each curve ends in its run's name (loss: other's alone, clipped has no epoch means); top-1's with its value.
    assert ([t.get_text() for t in loss.texts], [t.get_text() for t in lr.texts]) == (["other"], ["other", "clipped"])
    assert [t.get_text() for t in top1.texts] == ["other 90.0%"]
    # Losses and norms, all positive, on log axes: labelled at every minor tick within a decade (losses 0.67 to
    # 2.2), at 2 and 5 only over more (norms 0.25 to 8, the 2.0 threshold between).
    assert (loss.get_yscale(), lr.get_yscale(), top1.get_yscale(), norm.get_yscale()) == ("log", "linear", "linear",
                                                                                          "log")
    assert [[ax.yaxis.get_minor_formatter()(v, 0) for v in (0.2, 0.3, 0.5, 3.0, 1.2, 14.0)] for ax in (loss, norm)] == \
        [["0.2", "0.3", "0.5", "3", "1.2", "14"], ["0.2", "", "0.5", "", "", ""]]  # 1.2: left blank (helper-243)
    assert cli.main(["plot", str(clipped), "--out", str(tmp_path / "clipped.png")]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == "clipped: 0 epochs, 4 logged steps, 0 evaluations, " \
                                                       "clip_grad_norm 2"
    # A zero (a step that had no gradient) has no place on a log axis; names a line apart are moved apart about
    # where they were, in their order (display units: 5 and 0 with a gap of 10 go to 10 and 0, all less 5/3).
    from matplotlib.figure import Figure

    zero = Figure().subplots()
    zero.plot([1, 2], [0.0, 1.0])
    plot._log_scale(zero)
    assert zero.get_yscale() == "linear"
    assert plot._spread([5.0, 0.0, 100.0], gap=10.0) == pytest.approx([10 - 5 / 3, -5 / 3, 100 - 5 / 3])
    with Image.open(tmp_path / "norms.png") as img:
        rgb = np.asarray(img.convert("RGB")).astype(int)
    orange = (np.abs(rgb - [255, 127, 14]).sum(axis=2) < 60)  # matplotlib's C1: the second run's colour
    assert orange[:, 1800:].sum() > 600 and orange[:, :1800].sum() > 200  # its norms, and its loss and lr
    (clipped / ckpt_io.RUN_CONFIG).write_text("clip_grad_norm: [\n")  # not YAML: no threshold, still a picture
    assert plot.plot_runs([str(clipped)], str(tmp_path / "norms.png"))["runs"]["clipped"]["clip_grad_norm"] == 0


def test_plot_of_a_run_given_twice_labels_the_curves_apart(tmp_path, capsys):
    """`plot r1 r1` (say, a shell glob that named it twice) labelled both curves alike, with the full path
    (parents were added in vain to tell them apart), and printed one line for the two. A name that collides
    takes #2; different folders of the same name keep their parents."""
    run = tmp_path / "r1"
    run.mkdir()
    rows = [{"kind": "step", "step": s, "epoch": s / 4, "loss": 1.0 / s, "lr": 0.1} for s in (1, 2, 3, 4)]
    (run / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert plot.run_names([str(run), str(run) + os.sep]) == ["r1", "r1 #2"]
    a, b = str(tmp_path / "a" / "r1"), str(tmp_path / "b" / "r1")
    assert plot.run_names([a, b, a]) == ["a/r1", "b/r1", "a/r1 #2"]
    assert cli.main(["plot", str(run), str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == ["r1: 0 epochs, 4 logged steps, 0 evaluations",
                                                        "r1 #2: 0 epochs, 4 logged steps, 0 evaluations"]


def test_plot_of_a_run_folder_whose_name_is_not_utf8_draws_it(tmp_path, capsys):
    """A run folder whose name is not UTF-8 (TensorBoard's files are off there, train says so; its curves are
    plot's to draw): matplotlib's text layout refused the name's escaped byte with a traceback, and so a title.
    Shown as predict shows such a name (runtime.shown_name: the byte escaped)."""
    run = os.path.join(os.fsencode(tmp_path), b"bad\xff")
    os.mkdir(run)
    rows = [{"kind": "step", "step": s, "epoch": s / 4, "loss": 1.0 / s, "lr": 0.1} for s in (1, 2, 3, 4)]
    with open(os.path.join(run, os.fsencode(METRICS_FILE)), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "p.png"
    assert cli.main(["plot", os.fsdecode(run), "--out", str(out), "--title", "t\udcff"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "bad\\xff: 0 epochs, 4 logged steps, 0 evaluations"
    assert out.stat().st_size > 0


def test_plot_errors_name_the_file(tmp_path, capsys, monkeypatch):
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert f"{tmp_path / METRICS_FILE}: no such file" in capsys.readouterr().err
    (tmp_path / METRICS_FILE).write_text('{"kind": "start", "step": 0}\nnot json\n{"kind": "step"}\n')
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert "line 2: not JSON" in capsys.readouterr().err
    (tmp_path / METRICS_FILE).write_text('{"kind": "step", "step": 1, "epoch": 1, "loss": 1, "lr": 1}\n')
    # The run's metrics.jsonl stands for its folder; another file is named as not a run folder.
    assert cli.main(["plot", str(tmp_path / METRICS_FILE), "--out", str(tmp_path / "m.png")]) == 0
    assert f"{tmp_path.name}: 0 epochs, 1 logged step, 0 evaluations" in capsys.readouterr().out  # not "1 logged steps"
    assert cli.main(["plot", str(tmp_path / "m.png"), "--out", str(tmp_path / "n.png")]) == 1
    assert f"{tmp_path / 'm.png'}: a file; give the run folder" in capsys.readouterr().err
    # An --out that is a folder (said as a temporary file's rename, after drawing) or a training checkpoint
    # named .png (written over) is refused before anything is drawn (helper-118).
    (tmp_path / "dir.png").mkdir()
    torch.save({key: {} for key in ckpt_io.TRAINING_KEYS}, str(tmp_path / "ck.png"))
    before = (tmp_path / "ck.png").read_bytes()
    for out, message in (("dir.png", "is a folder; name the file to write"), ("ck.png", "is a training checkpoint")):
        assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / out)]) == 1
        assert f"--out {tmp_path / out}: {message}" in capsys.readouterr().err
    assert (tmp_path / "ck.png").read_bytes() == before and os.listdir(tmp_path / "dir.png") == []
    for dpi, said in (("9", "--dpi must be from 10 to 1200, got 9"),  # argparse's exit, before anything is drawn
                      ("100000", "--dpi must be from 10 to 1200, got 100000"),  # the canvas ran out of memory
                      ("99999999999999999999", "argument --dpi: 99999999999999999999 is past 2,147,483,647")):
        with pytest.raises(SystemExit):  # (the last: a traceback of matplotlib's)
            cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png"), "--dpi", dpi])
        assert said in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if matplotlib were not installed
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert "pip install 'mobilenet-v1[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


def test_a_plot_that_fails_to_write_leaves_the_earlier_picture_whole(tmp_path, capsys, monkeypatch):
    """The PNG is written beside its name and renamed over it once whole: a full disk in the middle of the
    write leaves the picture of an earlier plot as it was, and no partial file."""
    from matplotlib.figure import Figure

    rows = [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 2.0 / e, "mean_loss": 2.2 / e, "lr": 0.1 / e}
            for e in (1, 2)]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "curves.png"
    assert cli.main(["plot", str(tmp_path), "--out", str(out), "--dpi", "20"]) == 0
    before = out.read_bytes()

    def full_disk(self, f, **kw):
        f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    capsys.readouterr()
    assert cli.main(["plot", str(tmp_path), "--out", str(out), "--dpi", "20"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([METRICS_FILE, "curves.png"])


def test_plot_names_the_line_of_a_record_without_a_drawn_key(tmp_path, capsys):
    """A hand-edited metrics.jsonl whose epoch record lacks mean_loss: an error naming the file, the line
    and the key (not a KeyError); a superseded record is not drawn, so it needs nothing."""
    metrics = tmp_path / METRICS_FILE
    epoch = {"kind": "epoch", "epoch": 1, "step": 10, "loss": 2.0, "mean_loss": 2.1, "lr": 0.1}
    old = {k: v for k, v in epoch.items() if k != "mean_loss"}  # superseded by the restart below
    rows = [{"kind": "start", "step": 0}, old, {"kind": "start", "step": 0}, epoch,
            {k: v for k, v in dict(epoch, epoch=2, step=20).items() if k != "mean_loss"}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mobilenet-v1 plot: error: ") and "Traceback" not in err
    assert f"{metrics} line 5: the epoch record lacks 'mean_loss' (a number is needed)" in err, err
    rows[-1] = dict(rows[-1], mean_loss="2.1")
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert 'line 5: the epoch record has "2.1" as \'mean_loss\'' in capsys.readouterr().err
    rows[-1] = dict(rows[-1], mean_loss=True)  # JSON's true is no number (Python counts it as 1)
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    assert "line 5: the epoch record has true as 'mean_loss'" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 0
    assert ": 1 epoch, 0 logged steps" in capsys.readouterr().out and (tmp_path / "c.png").exists()


def test_plots_best_is_the_best_checkpoints_rule(tmp_path, capsys, figures):
    """The star and the best top-1 said are the best checkpoint's epoch: an evaluation of non-finite outputs
    (train never takes it for the best) is drawn but not starred, and a tie is the earlier epoch. Epoch 2's
    0.9 of non-finite outputs used to be called the best."""
    rows = [{"kind": "start", "epoch": 0, "step": 0}]
    rows += [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 1.0, "mean_loss": 1.0, "lr": 0.1, "top_1": t,
              "top_5": 1.0, **({"nonfinite_outputs": 3} if e == 2 else {})} for e, t in ((1, 0.5), (2, 0.9), (3, 0.6))]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["plot", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 0
    assert "3 evaluations, best top-1 60.00%" in capsys.readouterr().out
    assert train.Evaluations.before(0, 0, str(tmp_path), 3).best_saved == 0.6  # train's own judgement
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(dict(r, nonfinite_outputs=1)) + "\n" for r in rows))
    drawn = plot.plot_runs([str(tmp_path)], str(tmp_path / "c.png"))["runs"][tmp_path.name]
    assert drawn["evaluations"] == 3 and drawn["best_top_1"] is None  # none to star
    # A tie: the star at epoch 1, the first to reach 0.6, whose checkpoint train keeps.
    rows = rows[:1] + [dict(r, top_1=t) for r, t in zip(rows[1:], (0.6, 0.5, 0.6))]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert train.Evaluations.before(0, 0, str(tmp_path), 3).best_epoch == 1
    assert plot.plot_runs([str(tmp_path)], str(tmp_path / "c.png"))["runs"][tmp_path.name]["best_top_1"] == 0.6
    stars = [line for line in figures[-1].axes[2].get_lines() if line.get_marker() == "*"]
    assert [list(line.get_xdata()) for line in stars] == [[1]]


def test_training_without_tensorboard_says_so_once(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    out = tmp_path / "notb"
    train.run(load_config(SMALL + [f"--dataset_path={data_dir}", "--epoch_size=1", f"--save_checkpoint_path={out}"]))
    printed = capsys.readouterr().out
    assert printed.count("TensorBoard files are off") == 1 and ("pip install 'mobilenet-v1[tensorboard]' (from a "
                                                                "checkout: pip install -e '.[tensorboard]')") in printed
    assert not glob.glob(str(out / "events.out.tfevents.*"))
    assert len(read_metrics(str(out))["epochs"]) == 1 and (out / "log.txt").is_file()


class CountingLoss:
    """Stands for a loss tensor on an accelerator: counts how often it is read back to the host."""

    def __init__(self, value: float):
        self.value, self.reads = value, 0

    def __float__(self) -> float:
        self.reads += 1
        return self.value


def test_loss_is_read_back_only_when_a_record_is_due(tmp_path, capsys):
    logger = RunLogger(str(tmp_path), epochs=2, steps_per_epoch=10, log_interval=4, progress=False,
                       tensorboard=False)
    losses = []
    for epoch in (1, 2):
        logger.begin_epoch(epoch)
        for i in range(10):
            losses.append(CountingLoss(1.0 / (len(losses) + 1)))
            logger.log_step(i, losses[-1], 0.1, 8)
        logger.log_epoch(epoch, EpochResult(losses[-1].value, 0.5, 10, 1.0, 80), 0.1)
    logger.close()
    due = [s for s in range(1, 21) if s % 4 == 0 or s % 10 == 0]
    assert [i + 1 for i, loss in enumerate(losses) if loss.reads] == due
    assert all(loss.reads <= 1 for loss in losses)
    assert [r["step"] for r in read_metrics(str(tmp_path))["steps"]] == due


def test_progress_bar_on_a_terminal_and_lines_in_the_log(tmp_path, capsys):
    logger = RunLogger(str(tmp_path), epochs=3, steps_per_epoch=6, log_interval=2, progress=True,
                       tensorboard=False)
    logger.begin_epoch(1)
    for i in range(6):
        logger.log_step(i, torch.tensor(2.0 - 0.1 * i), 0.05, 16)
    logger.log_epoch(1, EpochResult(1.5, 1.75, 6, 0.1, 96), 0.05)
    logger.close()
    shown = capsys.readouterr().out
    assert "epoch 1/3" in shown and "4/6" in shown and "img/s" in shown and "loss 1.7000, lr 0.05" in shown
    assert "left in epoch" not in shown  # the plain lines are the bar's job on a terminal
    log = (tmp_path / "log.txt").read_text()
    assert "epoch 1/3 step 2/6: loss 1.9000" in log and "epoch 1/3 step 4/6: loss 1.7000" in log
    assert "\r" not in log


def test_the_progress_bar_keeps_its_numbers_on_an_80_column_terminal(monkeypatch):
    """At 80 columns an ImageNet epoch's bar shows its loss, lr and images/s: the numbers come before the bar
    and the times, which a narrower line cuts first (tqdm's own line put steps/s first and lost lr and
    images/s at 80 columns)."""
    import io

    logger = RunLogger(None, epochs=200, steps_per_epoch=5004, log_interval=100, progress=True,
                       tensorboard=False)
    shown = io.StringIO()
    monkeypatch.setattr(sys, "stdout", shown)
    logger.begin_epoch(120)
    bar = logger._bar
    bar.dynamic_ncols, bar.ncols, bar.mininterval = False, 80, 0  # a terminal of 80 columns, each step drawn
    bar.start_t -= 3700  # an hour into the epoch (its times' widest), at over 1,000 images/s
    logger._t0 -= 600
    for i in range(2500):
        logger.log_step(i, torch.tensor(2.3456), 0.01234, 256)
    logger.close()
    lines = [line for line in shown.getvalue().split("\r") if "|" in line]
    assert lines, shown.getvalue()
    last = lines[-1].rstrip()
    assert len(last) <= 80 and last.startswith("epoch 120/200 2500/5004, loss 2.3456, lr 0.01234, ")
    assert " img/s |" in last and re.search(r"\| 1:0\d:\d\d<", last), last


def rendered(output):
    """The lines a terminal shows for ``output``: a carriage return goes back to the line's start, what follows
    writing over what is there."""
    shown = []
    for line in output.split("\n"):
        cells, column = [], 0
        for i, piece in enumerate(line.split("\r")):
            column = 0 if i else column
            for char in piece:
                cells[column:column + 1] = [char]
                column += 1
        shown.append("".join(cells).rstrip())
    return shown


def test_a_line_written_during_an_epoch_stands_apart_from_the_progress_bar(monkeypatch):
    """A warning or message written while the bar is drawn (an unreadable image skipped, a stop signal said)
    takes a line of its own, the bar drawn again below it: it was written after the bar's numbers, on its
    line. print's text and its line break, written apart, stay one line; what has no line break yet is written
    when the bar goes. The streams are given back as they were."""
    import io

    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)  # a terminal shows both
    logger = RunLogger(None, epochs=2, steps_per_epoch=6, log_interval=2, progress=True, tensorboard=False)
    logger.begin_epoch(1)
    logger._bar.mininterval = 0
    assert sys.stdout is not terminal and sys.stderr is not terminal
    for i in range(3):
        logger.log_step(i, torch.tensor(1.5), 0.1, 8)
    # As Python shows a warning (pytest records them instead): its text written to stderr.
    sys.stderr.write(warnings.formatwarning("skipped unreadable image file a.jpg", DataWarning, "data.py", 1, ""))
    print("stop requested: the run ends after this step", file=sys.stderr, flush=True)
    # A loader worker forked during the epoch holds these streams and a copy of the bar: its line erases the
    # terminal's, and no copy is drawn again (a persistent worker's was epoch 1's bar; helper-374).
    wrapper, pid = sys.stderr, sys.stderr._pid
    wrapper._pid = -1  # as in another process
    before = len(terminal.getvalue())
    wrapper.write("a worker's line\n")
    assert terminal.getvalue()[before:] == "\r\x1b[Ka worker's line\n"
    wrapper._pid = pid
    print("no line break yet", end="", flush=True)
    logger.log_step(3, torch.tensor(1.5), 0.1, 8)
    logger.close()
    assert sys.stdout is terminal and sys.stderr is terminal
    lines = rendered(terminal.getvalue())
    assert "data.py:1: DataWarning: skipped unreadable image file a.jpg" in lines, lines
    assert "stop requested: the run ends after this step" in lines, lines
    assert lines[-1] == "no line break yet", lines


def test_a_first_run_that_cannot_open_its_records_leaves_no_log_txt(tmp_path, monkeypatch):
    """The records of a new run folder cannot be opened: the log.txt begun with its preamble is taken back, not
    left holding a header of a run that never started (an earlier run's log.txt is cut back to its own length)."""
    real = tracking._open_for_append

    def read_only(path):
        if os.path.basename(path) == tracking.METRICS_FILE:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path)

    monkeypatch.setattr(tracking, "_open_for_append", read_only)
    for earlier in (None, "earlier run\n"):
        run = tmp_path / f"r{earlier is None}"
        if earlier is not None:
            run.mkdir()
            (run / tracking.LOG_FILE).write_text(earlier)
        with pytest.raises(ckpt_io.CheckpointError, match="metrics.jsonl: Permission denied"):
            tracking.RunLogger(str(run), epochs=1, steps_per_epoch=2, log_interval=1, preamble="header\n")
        if earlier is None:
            assert not (run / tracking.LOG_FILE).exists()
        else:
            assert (run / tracking.LOG_FILE).read_text() == earlier


def test_a_removed_record_file_is_said_once_and_files_left_in_place_are_not_reopened(tmp_path, capsys):
    """log.txt and metrics.jsonl written in place are kept open without a word; removed (rm -rf of the folder)
    they are said once and written anew, the later epochs' records in the new files."""
    run = tmp_path / "run"
    logger = RunLogger(str(run), epochs=4, steps_per_epoch=2, log_interval=1, preamble="header\n", tensorboard=False)
    for epoch in (1, 2):
        logger.begin_epoch(epoch)
        logger.log_epoch(epoch, EpochResult(1.0, 1.0, 2, 0.1, 8), 0.1)
        runtime.print0(f"said after epoch {epoch}")
    assert "was removed" not in capsys.readouterr().err
    shutil.rmtree(run)
    for epoch in (3, 4):
        logger.begin_epoch(epoch)
        logger.log_epoch(epoch, EpochResult(1.0, 1.0, 2, 0.1, 8), 0.1)
        runtime.print0(f"said after epoch {epoch}")
    logger.close()
    err = capsys.readouterr().err
    assert err.count(f"warning: {run / 'log.txt'} was removed while the run wrote it") == 1
    assert err.count(f"warning: {run / 'metrics.jsonl'} was removed while the run wrote it") == 1
    epochs = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r["kind"] == "epoch"]
    assert epochs == [3, 4] and (run / "log.txt").read_text() == "said after epoch 3\nsaid after epoch 4\n"


def test_other_ranks_write_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    logger = RunLogger(str(tmp_path / "r1"), epochs=1, steps_per_epoch=2, log_interval=1, preamble="header\n")
    logger.begin_epoch(1)
    logger.log_step(0, torch.tensor(1.0), 0.1, 4)
    logger.log_epoch(1, EpochResult(1.0, 1.0, 2, 0.1, 8), 0.1, {"top_1": 0.5, "top_5": 1.0})
    logger.close()
    assert not (tmp_path / "r1").exists() and capsys.readouterr().out == ""


def test_a_resume_says_it_judges_without_a_damaged_metrics_file(tmp_path, capsys):
    """A metrics.jsonl damaged before its last line: the resume judges without its evaluations (its --patience
    counts from none, it used to without a word) and a warning names the file and line; an absent file (the
    seed's way to go on, a checkpoint copied into a folder) is said by nothing."""
    rows = [{"kind": "start", "epoch": 0, "step": 0}]
    rows += [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 1.0, "mean_loss": 1.0, "lr": 0.1,
              "top_1": t} for e, t in ((1, 0.6), (2, 0.5), (3, 0.5))]
    lines = [json.dumps(r) + "\n" for r in rows]
    (tmp_path / METRICS_FILE).write_text("".join(lines))
    assert train.Evaluations.before(2, 0, str(tmp_path), 3).exhausted
    assert capsys.readouterr().err == ""
    (tmp_path / METRICS_FILE).write_text("".join(lines[:2] + ['{"kind": "ep\n'] + lines[2:]))
    evaluations = train.Evaluations.before(2, 0, str(tmp_path), 3)
    assert (evaluations.since, evaluations.best_saved, evaluations.exhausted) == (0, -float("inf"), False)
    err = capsys.readouterr().err
    assert f"warning: {tmp_path / METRICS_FILE} line 3: not JSON" in err
    assert "up to epoch 3 are left out: the best checkpoint, keep_best_max and --patience judge" in err
    (tmp_path / METRICS_FILE).unlink()
    assert train.Evaluations.before(2, 0, str(tmp_path), 3).since == 0 and capsys.readouterr().err == ""


def test_a_resume_after_a_cut_short_line_starts_its_log_txt_header_on_a_line_of_its_own(tmp_path):
    """log.txt cut mid-line (a full disk gave up on it, a killed run) had the resumed run's header glued onto the
    fragment ("... loss 1.2, lmobilenet-v1 0.1.0 ..."), where README says a resume appends after the cut line, as
    metrics.jsonl's is: the fragment stays, ended, and the header starts a line (a whole file is left as it is)."""
    (tmp_path / "log.txt").write_text("header of the first run\nepoch 3/4 step 6/12: loss 1.2, l")
    RunLogger(str(tmp_path), epochs=4, steps_per_epoch=12, start_epoch=2, preamble="resumed header\n",
              tensorboard=False).close()
    assert (tmp_path / "log.txt").read_text().splitlines() == [
        "header of the first run", "epoch 3/4 step 6/12: loss 1.2, l", "resumed header"]
    RunLogger(str(tmp_path), epochs=4, steps_per_epoch=12, start_epoch=2, preamble="again\n",
              tensorboard=False).close()
    assert (tmp_path / "log.txt").read_text().endswith("l\nresumed header\nagain\n")  # no empty line
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "log.txt").write_text("")
    RunLogger(str(tmp_path / "empty"), epochs=1, steps_per_epoch=1, preamble="first\n", tensorboard=False).close()
    assert (tmp_path / "empty" / "log.txt").read_text() == "first\n"


def test_continuation_keeps_history_and_best(tmp_path):
    """A restart after epoch 2 (pretrain_epoch_size=2) supersedes what a crashed run logged after it."""
    rows = [{"kind": "start", "epoch": 0, "step": 0}]
    rows += [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 1.0, "mean_loss": 1.0, "lr": 0.1,
              "top_1": t} for e, t in ((1, 0.6), (2, 0.7), (3, 0.9))]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"kind": "ep')
    evaluations = train.Evaluations.before(0, 0, str(tmp_path), 2)
    assert evaluations.best_saved == 0.7  # epoch 3's 0.9 came after the checkpoint this run continues from
    evaluations.keep_only(True, [])
    assert not evaluations.judge(3, {"top_1": 0.65}) and evaluations.judge(4, {"top_1": 0.75})
    # The best file records a better top-1 than the records hold (a full disk cut metrics.jsonl short and
    # the run saved better ones since): a resume does not replace it with a worse one.
    evaluations = train.Evaluations.before(0, 0, str(tmp_path), 2)
    evaluations.keep_only(True, [], best_top_1=0.8, best_epoch=5)
    assert (evaluations.best_saved, evaluations.best_saved_epoch) == (0.8, 5)  # the early stop's line names it
    assert not evaluations.judge(3, {"top_1": 0.75}) and evaluations.judge(4, {"top_1": 0.85})
    logger = RunLogger(str(tmp_path), epochs=4, steps_per_epoch=10, start_epoch=2, tensorboard=False)
    logger.close()
    history = read_metrics(str(tmp_path))
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]  # partial line cut, epoch 3 superseded
    fresh = RunLogger(str(tmp_path), epochs=4, steps_per_epoch=10, tensorboard=False)
    assert read_metrics(str(tmp_path)) == {"steps": [], "epochs": []}
    fresh.close()
    assert runtime._log_files == []  # closed loggers stop copying print0 into their log.txt


def test_a_run_whose_earlier_steps_are_not_the_folders_drops_the_folders_records_before_it(tmp_path):
    """A folder holding another run's epochs 1 to 3, and a run started at epoch 3 whose earlier steps are not
    this folder's (history false: resumed from another folder's checkpoint, or pretrain_epoch_size): none of the
    folder's records stays in its history (patience and plot would count another run's epochs as its own), where
    a continuation of the folder's own run keeps those up to its checkpoint."""
    rows = [{"kind": "start", "epoch": 0, "step": 0}]
    rows += [{"kind": "epoch", "epoch": e, "step": 10 * e, "loss": 1.0, "mean_loss": 1.0, "lr": 0.1, "top_1": 0.5}
             for e in (1, 2, 3)]
    (tmp_path / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    RunLogger(str(tmp_path), epochs=6, steps_per_epoch=10, start_epoch=3, tensorboard=False).close()
    assert [r["epoch"] for r in read_metrics(str(tmp_path))["epochs"]] == [1, 2, 3]
    RunLogger(str(tmp_path), epochs=6, steps_per_epoch=10, start_epoch=3, tensorboard=False, history=False).close()
    assert read_metrics(str(tmp_path)) == {"steps": [], "epochs": []}


def test_images_per_s_of_a_step_record_counts_the_images_since_the_record_before(tmp_path, monkeypatch):
    """8 images a step, one step a second, a record every 2 steps: 16 images in 2 s, 8 images/s in each
    record, not the epoch's images so far over the 2 s since the record before."""
    import types

    now = [0.0]
    monkeypatch.setattr(tracking, "time", types.SimpleNamespace(perf_counter=lambda: now[0], time=time.time))
    logger = RunLogger(str(tmp_path), epochs=1, steps_per_epoch=4, log_interval=2, progress=False, tensorboard=False)
    logger.begin_epoch(1)
    for i in range(4):
        now[0] = i + 1.0
        logger.log_step(i, torch.tensor(1.0), 0.1, 8)
    logger.close()
    steps = read_metrics(str(tmp_path))["steps"]
    assert [(r["step"], r["images_per_s"]) for r in steps] == [(2, 8.0), (4, 8.0)]


def test_an_owed_evaluation_of_a_checkpoint_from_another_folder_stays_in_the_records(tmp_path, capsys):
    """A run resumed from another folder's checkpoint that owes its epoch 3's evaluation (a signal left it
    out) makes it first: that eval record has no epoch record to join in this folder (history false). It
    stays on its own: --patience counts it on a later resume and plot draws it. It used to be dropped:
    the count started at epoch 4, whose line then said "not improved on ... (epoch 4)" beside the best
    checkpoint of epoch 3."""
    logger = RunLogger(str(tmp_path), epochs=6, steps_per_epoch=10, start_epoch=3, tensorboard=False, history=False)
    logger.log_evaluation(3, {"top_1": 0.5, "top_5": 1.0, "eval_images": 40})
    logger.begin_epoch(4)
    logger.log_step(9, torch.tensor(1.0), 0.1, 4)
    logger.log_epoch(4, EpochResult(1.0, 1.0, 10, 0.1, 40), 0.1, {"top_1": 0.4, "top_5": 1.0, "eval_images": 40})
    logger.close()
    epochs = read_metrics(str(tmp_path))["epochs"]
    assert [(r["kind"], r["epoch"], r["top_1"]) for r in epochs] == [("eval", 3, 0.5), ("epoch", 4, 0.4)]
    evaluations = train.Evaluations.before(1, 0, str(tmp_path), 4)
    assert (evaluations.best_epoch, evaluations.since, evaluations.exhausted) == (3, 1, True)
    drawn = plot.plot_runs([str(tmp_path)], str(tmp_path / "c.png"))["runs"][tmp_path.name]
    assert (drawn["epochs"], drawn["evaluations"], drawn["best_top_1"]) == (1, 2, 0.5)
    metrics = tmp_path / METRICS_FILE  # stopped before epoch 4's first logged step: nothing to draw curves of
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(ValueError, match="holds no step or epoch records yet"):
        plot.plot_runs([str(tmp_path)], str(tmp_path / "c.png"))


def test_continuation_keeps_the_checkpoints_own_step_in_tensorboard(tmp_path):
    """A run resumed after epoch 1 (step 10) hides what a crashed run logged after step 10 from TensorBoard,
    and keeps epoch 1's evaluation, logged at step 10 itself."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = RunLogger(str(tmp_path), epochs=2, steps_per_epoch=10, log_interval=5, progress=False)
    for epoch in (1, 2):  # the crashed run got through epoch 2 before its checkpoint was lost
        first.begin_epoch(epoch)
        for i in range(10):
            first.log_step(i, torch.tensor(float(epoch)), 0.1, 8)
        first.log_epoch(epoch, EpochResult(1.0, 1.0, 10, 1.0, 80), 0.1, {"top_1": 0.5 * epoch, "top_5": 1.0})
    first.close()
    # TensorBoard reads event files in name order: the second they were made in, then a counter of this
    # process's writers, which sorts "10" before "9". In another second they sort as they were made.
    time.sleep(1.01 - time.time() % 1.0)
    again = RunLogger(str(tmp_path), epochs=2, steps_per_epoch=10, start_epoch=1, log_interval=5, progress=False)
    again.begin_epoch(2)
    for i in range(10):
        again.log_step(i, torch.tensor(3.0), 0.1, 8)
    again.log_epoch(2, EpochResult(3.0, 3.0, 10, 1.0, 80), 0.1, {"top_1": 0.9, "top_5": 1.0})
    again.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("eval/top_1")] == [(10, 0.5), (20, pytest.approx(0.9))]
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(5, 1.0), (10, 1.0), (15, 3.0), (20, 3.0)]


def test_a_logger_that_cannot_open_its_files_leaves_nothing_registered(tmp_path):
    (tmp_path / "file").touch()  # a run folder under a file: named as the records' folder, not a bare OSError
    with pytest.raises(ckpt_io.CheckpointError, match=f"save_checkpoint_path {tmp_path / 'file' / 'run'}: cannot "
                                                      f"write the run's records there"):
        RunLogger(str(tmp_path / "file" / "run"), epochs=1, steps_per_epoch=10)
    (tmp_path / METRICS_FILE).mkdir()  # metrics.jsonl cannot be opened
    with pytest.raises(ckpt_io.CheckpointError, match=f"save_checkpoint_path {tmp_path}: cannot write the run's "
                                                      f"records there \\({tmp_path / METRICS_FILE}: Is a "
                                                      f"directory\\); nothing was trained"):
        RunLogger(str(tmp_path), epochs=1, steps_per_epoch=10, tensorboard=False)
    assert runtime._log_files == []  # print0 no longer copies into that folder's log.txt
    runtime.print0("after the failed start")
    assert not (tmp_path / "log.txt").exists()  # a preamble without the line of why it stopped: taken back


def test_a_disk_full_at_the_start_is_one_error_without_the_writer_threads_traceback(tmp_path, monkeypatch):
    """A disk with a few kilobytes left when a run starts: its TensorBoard file's first record fails in the
    writer's thread, whose traceback was printed besides the start's one error, and an empty events file
    stayed. The thread's error is the error's alone now, and the file goes."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(RecordWriter, "write", write)
    unhandled = []
    monkeypatch.setattr(threading, "excepthook", lambda args: unhandled.append(args.exc_type))
    hook = threading.excepthook
    with pytest.raises(ckpt_io.CheckpointError, match=f"save_checkpoint_path {tmp_path}: cannot write the run's "
                                                      f"records there \\(No space left on device\\); nothing was"):
        RunLogger(str(tmp_path), epochs=1, steps_per_epoch=10)
    assert not unhandled and threading.excepthook is hook and runtime._log_files == []
    assert sorted(os.listdir(tmp_path)) == [METRICS_FILE]  # log.txt's preamble, of a run never started: taken back


class FillsUp:
    """A file on a disk that fills up after ``room`` more characters: the write that meets the end writes
    what fits, then raises ENOSPC, as every later one does."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    @property
    def name(self) -> str:
        return self.f.name

    def write(self, text: str) -> int:
        fits = text[:max(self.room, 0)]
        self.room -= len(text)
        self.f.write(fits)
        self.f.flush()
        if len(fits) < len(text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return len(text)

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def test_a_full_disk_ends_the_runs_records_not_the_run(data_dir, tmp_path, capsys, monkeypatch):
    """log.txt, metrics.jsonl and the TensorBoard files meet a full disk in the first epoch: each is
    given up with one warning naming it, training goes on to its checkpoints (the disk had room again
    by then), and a resume carries on the records past the cut-off line."""
    run = tmp_path / "run"
    monkeypatch.setattr(runtime, "add_log_file",
                        lambda path: runtime._log_files.append(FillsUp(open(path, "a", encoding="utf-8"), 3000))
                        or runtime._log_files[-1])
    monkeypatch.setattr(tracking, "_open_for_append", lambda path, real=tracking._open_for_append:
                        FillsUp(real(path), 400))
    from tensorboard.summary.writer.record_writer import RecordWriter

    written = []

    def write(self, data, real=RecordWriter.write):  # in the writer's own thread
        written.append(1)
        if len(written) > 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(RecordWriter, "write", write)
    unhandled = []  # what the process's thread hook (a traceback, outside pytest) is given
    monkeypatch.setattr(threading, "excepthook", lambda args: unhandled.append(args.exc_type))
    hook = threading.excepthook
    args = SMALL + [f"--dataset_path={data_dir}", "--epoch_size=2", "--log_interval=2", "--save_checkpoint_epochs=1",
                    f"--save_checkpoint_path={run}"]
    train.run(load_config(args))
    out, err = capsys.readouterr()
    then = "end here; training goes on, and stops with a clear error at the next checkpoint if that cannot be written"
    for path, what in ((run / "log.txt", "its lines"), (run / METRICS_FILE, "its records"),
                       (f"the TensorBoard files in {run}", "their scalars")):
        assert err.count(f"warning: cannot write {path} (No space left on device): {what} {then}") == 1, err
    assert err.count("warning: cannot write") == 3 and len(written) == 7  # each given up at its first failure
    assert not unhandled and threading.excepthook is hook  # the writer thread's error: the warning alone
    assert "epoch: 2 step: 12, loss is" in out  # the run printed on to its end
    log = (run / "log.txt").read_text()
    printed = "".join(line for line in log.splitlines(keepends=True) if not line.startswith("warning: cannot write"))
    assert len(log) == 3000 and printed[printed.index("epoch 1/2 step 2/12"):] in out  # what fitted, as printed
    assert f"warning: cannot write {run / METRICS_FILE} (No space" in log  # given up before log.txt was
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == ["mobilenetv1-1_12.ckpt",
                                                                                      "mobilenetv1-2_12.ckpt"]
    monkeypatch.undo()
    train.run(load_config(args[:-3] + ["--epoch_size=3", "--resume=auto", f"--save_checkpoint_path={run}"]))
    records = read_metrics(str(run))  # the partial line the disk cut off is gone
    assert [r["epoch"] for r in records["epochs"]] == [3] and records["steps"][-1]["step"] == 36


def test_log_txt_holds_the_runs_warnings_and_the_error_that_stopped_it(tmp_path, capsys, monkeypatch):
    """What a run says on stderr is in its log.txt too, where stdout's lines are: a warning from before the
    folder existed, one from the run (a file it could not remove) and the error line the command ends
    with, as the terminal showed it; one who finds a run stopped reads in its folder why."""
    data = tmp_path / "cifar"
    data.mkdir()
    y = np.arange(64) % 4
    write_cifar_bin(str(data / "batch_a.bin"), class_images(y, 1), y)  # not data_batch_*.bin: a DataWarning
    run = tmp_path / "run"
    real = ckpt_io.atomic_save

    def atomic_save(state, path):
        if os.path.basename(path) == "mobilenetv1-3_4.ckpt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(state, path)

    def prune_checkpoints(*args):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(ckpt_io, "atomic_save", atomic_save)
    monkeypatch.setattr(ckpt_io, "prune_checkpoints", prune_checkpoints)
    # Shown as outside pytest, which records warnings instead: on sys.stderr, as the command formats them.
    monkeypatch.setattr(warnings, "_showwarnmsg_impl", lambda msg: sys.stderr.write(warnings._formatwarnmsg(msg)))
    args = SMALL + [f"--dataset_path={data}", "--epoch_size=3", "--save_checkpoint_epochs=1",
                    f"--save_checkpoint_path={run}"]
    assert cli.main(["train"] + args) == 1
    out, err = capsys.readouterr()
    log = (run / "log.txt").read_text()
    warned = err.splitlines()
    assert warned[0].startswith(f"mobilenet-v1 train: warning: dataset_path {str(data)!r}: no data_batch_*.bin")
    assert warned[1].startswith(f"warning: could not remove an old checkpoint in {run}: [Errno 13]")
    assert warned[-1].startswith("mobilenet-v1 train: error: cannot write checkpoint ") and "No space left" in err
    for line in warned:  # each of stderr's lines in the log, in its place among stdout's
        assert line in log.splitlines(), line
    assert log.index(warned[0]) < log.index("epoch: 1 step: 4") < log.index(warned[1]) < log.index(warned[-1])
    assert log.endswith(warned[-1] + "\n") and warned[-1] not in out
    assert "epoch: 1 step: 4, loss is" in out and "epoch: 1 step: 4" in log
    # An error after the records opened and before the epochs' loop (a teacher's evaluation there, say): the log
    # is closed and ends with it too, and no later run in this process writes into it.
    def fails(cfg):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(train, "training_sizes", fails)
    early = tmp_path / "early"
    assert cli.main(["train"] + args[:-1] + [f"--save_checkpoint_path={early}", "--epoch_size=1"]) == 1
    assert (early / "log.txt").read_text().endswith("mobilenet-v1 train: error: [Errno 5] Input/output error\n")
    # A run started with stderr closed (`2>&-`): what it writes there still reaches its log.txt, and nothing fails.
    kept = runtime.capture_output()
    try:
        closed = runtime.CopiedToLogs(None)
        assert closed.write("warning: w\n") == 11 and closed.flush() is None and kept.getvalue() == "warning: w\n"
    finally:
        runtime.remove_log_file(kept)
    assert runtime._log_files == []
    # A run that ends well ends its log with no error line, though its caller handles an exception of its own
    # (sys.exc_info() in a finally would hand the logger that one).
    monkeypatch.undo()
    other = tmp_path / "other"
    try:
        raise KeyError("the caller's")
    except KeyError:
        with pytest.warns(DataWarning, match="no data_batch"):  # pytest's to record again, after the undo
            train.run(load_config(args[:-1] + [f"--save_checkpoint_path={other}", "--epoch_size=1"]))
    assert "error" not in (other / "log.txt").read_text().splitlines()[-1]
    assert "KeyError" not in (other / "log.txt").read_text()


def test_interval_keys_are_checked():
    with pytest.raises(ConfigError, match="eval_interval must be >= 0"):
        load_config(["--eval_interval=-1"])
    with pytest.raises(ConfigError, match="log_interval must be >= 0"):
        load_config(["--log_interval=-2"])
    assert load_config([]).eval_interval == 0 and load_config([]).log_interval == 50


def test_resume_from_a_mid_epoch_checkpoint_keeps_the_steps_it_holds(data_dir, tmp_path):
    """A run resumed from mobilenetv1-2_4.ckpt (global step 16) supersedes the records after step 16,
    not those of steps 13..16, which the checkpoint holds and the resumed run does not repeat."""
    run = tmp_path / "run"
    args = SMALL + [f"--dataset_path={data_dir}", "--epoch_size=2", "--log_interval=2", "--save_checkpoint_steps=4",
                    "--keep_checkpoint_max=20", f"--save_checkpoint_path={run}"]
    train.run(load_config(args))
    full = read_metrics(str(run))
    assert [r["step"] for r in full["steps"]] == list(range(2, 25, 2))
    for name in ("mobilenetv1-2_8.ckpt", "mobilenetv1-2_12.ckpt"):  # as if killed after step 16
        os.unlink(run / name)
    result = train.run(load_config(args + ["--resume=auto"]))
    assert result["resumed_from"] == str(run / "mobilenetv1-2_4.ckpt")
    resumed = read_metrics(str(run))
    assert [r["step"] for r in resumed["steps"]] == list(range(2, 25, 2))  # 14 and 16 were lost before
    assert resumed["steps"][:8] == full["steps"][:8]
    assert [r["epoch"] for r in resumed["epochs"]] == [1, 2]
    starts = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines() if '"start"' in line]
    assert [(s["epoch"], s["step"]) for s in starts] == [(0, 0), (1, 16)]


def test_time_left_in_a_resumed_epoch_counts_only_the_steps_run(tmp_path, capsys, monkeypatch):
    """An epoch resumed after 6 of its 10 steps, at 1 s a step: 2 steps run leave 2 s, not the 0.5 s
    (2 s over 8 steps) of counting the 6 steps the checkpoint held as run in no time."""
    clock = iter(range(100))
    monkeypatch.setattr("mobilenet_v1.tracking.time.perf_counter", lambda: float(next(clock)))
    logger = RunLogger(str(tmp_path), epochs=2, steps_per_epoch=10, start_epoch=0, log_interval=2,
                       progress=False, tensorboard=False, start_in_epoch=6)
    logger.begin_epoch(1, 6)
    for i in (6, 7):
        logger.log_step(i, torch.tensor(1.0), 0.1, 8)
    logger.close()
    assert "epoch 1/2 step 8/10: loss 1.0000, lr 0.1, 8.0 images/s, 0:00:02 left in epoch, 0:00:12 in run" \
        in capsys.readouterr().out


def test_a_continuation_at_another_batch_size_keeps_its_history_and_counts_steps_on(data_dir, tmp_path):
    """The seed's way to go on (--pre_trained the folder's own mobilenetv1-2_12.ckpt, --pretrain_epoch_size 2) at
    another batch size (6 steps an epoch, not 12): the global step counts on from the file's 24, as a resume's
    does. It started at 2 x 6 = 12: epoch 2's record (its top-1 too) and steps 13..24 were read as superseded,
    the new steps 15 and 18 took their numbers, and mobilenetv1-3_6.ckpt recorded step 18, after the 24 before."""
    run = tmp_path / "run"
    args = SMALL + [f"--dataset_path={data_dir}", "--log_interval=5", "--eval_interval=1",
                    f"--save_checkpoint_path={run}"]
    train.run(load_config(args + ["--epoch_size=2"]))
    train.run(load_config(args + ["--epoch_size=3", "--batch_size=32", f"--pre_trained={run / 'mobilenetv1-2_12.ckpt'}",
                                  "--pretrain_epoch_size=2"]))
    history = read_metrics(str(run))
    assert [(r["epoch"], r["step"]) for r in history["epochs"]] == [(1, 12), (2, 24), (3, 30)]
    assert all("top_1" in r for r in history["epochs"])
    assert [r["step"] for r in history["steps"]] == [5, 10, 12, 15, 20, 24, 25, 30]
    assert [r["epoch"] for r in history["steps"]][-2:] == [pytest.approx(2 + 1 / 6), 3.0]
    saved = ckpt_io.load_file(str(run / "mobilenetv1-3_6.ckpt"))
    assert (saved["step"], saved["step_offset"]) == (30, 12)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal sized by ioctl")
def test_a_terminal_of_no_columns_gets_the_plain_lines_not_a_bar():
    """A pty left at 0 columns (script, some ssh -t and CI runners): tqdm drew nothing there, and the plain
    lines went to log.txt alone, so the terminal showed nothing between epochs (helper-243). A sized one gets
    the bar; a pipe neither."""
    import fcntl
    import pty
    import struct
    import termios

    try:
        main, other = pty.openpty()
    except OSError as e:  # a container without /dev/ptmx
        pytest.skip(f"no pseudo-terminal here: {e}")
    try:
        with os.fdopen(other, "w", closefd=False) as stream:
            # 0 rows with the columns set (`stty cols 80` in such a pty): tqdm draws no bar there either
            for rows, columns, drawn in ((0, 0, False), (24, 80, True), (0, 80, False)):
                fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
                assert tracking.redrawable(stream) is drawn, columns
    finally:
        os.close(main)
        os.close(other)
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        assert not tracking.redrawable(pipe)
    os.close(read)


def test_time_left_past_an_hour_reads_hours_minutes_and_seconds(tmp_path, capsys, monkeypatch):
    """At 1000 s a step, 8 steps left in the epoch are 2:13:20 (not 133 minutes after the hour), and the
    run's 18 steps left 5:00:00."""
    clock = iter(range(0, 100000, 1000))
    monkeypatch.setattr("mobilenet_v1.tracking.time.perf_counter", lambda: float(next(clock)))
    logger = RunLogger(str(tmp_path), epochs=2, steps_per_epoch=10, start_epoch=0, log_interval=2,
                       progress=False, tensorboard=False)
    logger.begin_epoch(1)
    for i in (0, 1):
        logger.log_step(i, torch.tensor(1.0), 0.1, 8)
    logger.close()
    assert "epoch 1/2 step 2/10: loss 1.0000, lr 0.1, 0.0 images/s, 2:13:20 left in epoch, 5:00:00 in run" \
        in capsys.readouterr().out


def test_read_metrics_reads_a_null_written_for_a_non_finite_value_as_nan(tmp_path):
    """metrics.jsonl is strict JSON: a NaN loss or gradient norm is written as null, and read back as NaN
    (a number the plots and summaries can test), never as None."""
    (tmp_path / METRICS_FILE).write_text(
        '{"kind": "start", "step": 0}\n'
        '{"kind": "step", "step": 1, "epoch": 0.5, "loss": null, "lr": 0.1, "grad_norm": null}\n'
        '{"kind": "epoch", "step": 2, "epoch": 1, "loss": 1.5, "mean_loss": null}\n')
    history = read_metrics(str(tmp_path), required={"step": ["loss"], "epoch": ["mean_loss"]}, exact=True)
    step, epoch = history["steps"][0], history["epochs"][0]
    assert math.isnan(step["loss"]) and math.isnan(step["grad_norm"]) and math.isnan(epoch["mean_loss"])
    assert epoch["loss"] == 1.5


def test_eval_tags_name_each_figure_by_its_own_tag():
    """TensorBoard's eval scalars: top-1 and top-5, and with an average's evaluation the raw weights' own pair,
    each under its own tag (raw_top_5 is not raw_top_1 again)."""
    assert tracking.eval_tags(None) == {} and tracking.eval_tags({}) == {}
    assert tracking.eval_tags({"top_1": 0.5, "top_5": 0.9}) == {"eval/top_1": 0.5, "eval/top_5": 0.9}
    assert tracking.eval_tags({"top_1": 0.5, "top_5": 0.9, "raw_top_1": 0.4, "raw_top_5": 0.8}) == {
        "eval/top_1": 0.5, "eval/top_5": 0.9, "eval/raw_top_1": 0.4, "eval/raw_top_5": 0.8}


def test_plots_clip_threshold_is_a_positive_number_only(tmp_path):
    """The clip_grad_norm line beside the gradient norms: a hand-edited config.yaml's true (a YAML bool, which
    Python counts as 1) or a negative or text value draws none; a number above 0 is the threshold."""
    for text, threshold in (("true", 0.0), ("false", 0.0), ("-1.0", 0.0), ("'2.0'", 0.0), ("0", 0.0), ("2", 2.0),
                            ("0.5", 0.5)):
        (tmp_path / ckpt_io.RUN_CONFIG).write_text(f"clip_grad_norm: {text}\n")
        assert plot.clip_threshold(str(tmp_path)) == threshold, text


def test_a_run_folder_deleted_between_epochs_is_said_and_its_records_written_anew(cifar_dir, tmp_path, capsys,
                                                                                  monkeypatch, one_thread):
    """rm -rf of the run's folder while it trains: the checkpoints came back (their writes make the folder), but
    log.txt and metrics.jsonl went on into the removed files, without a word, and the run ended with status 0."""
    run = tmp_path / "run"
    real = train.train_one_epoch
    calls = [0]

    def deleting(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            shutil.rmtree(run)
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", deleting)
    args = [*SMALL, "--eval_interval=1", "--save_checkpoint_epochs=1", f"--dataset_path={cifar_dir}",
            f"--save_checkpoint_path={run}", "--epoch_size=3"]
    assert cli.main(["train", *args]) == 0
    err = capsys.readouterr().err
    assert f"warning: {run / 'metrics.jsonl'} was removed while the run wrote it" in err
    assert f"warning: {run / 'log.txt'} was removed while the run wrote it" in err
    epochs = [r["epoch"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if r["kind"] == "epoch"]
    assert epochs == [2, 3] and "eval: epoch 3" in (run / "log.txt").read_text()


def test_records_that_cannot_be_opened_are_named_and_leave_log_txt_as_it_was(cifar_dir, tmp_path, capsys,
                                                                           monkeypatch, one_thread):
    """A read-only metrics.jsonl (chmod 444; simulated, root may write anything) at a resume: the error said
    "cannot write the run's records there (Permission denied)", naming no file, and log.txt kept the refused run's
    header and configuration with no line of why it stopped."""
    run = tmp_path / "run"
    args = [*SMALL, "--eval_interval=1", "--save_checkpoint_epochs=1", f"--dataset_path={cifar_dir}",
            f"--save_checkpoint_path={run}"]
    assert cli.main(["train", *args, "--epoch_size=1"]) == 0
    log = (run / "log.txt").read_bytes()
    real = tracking._open_for_append

    def read_only(path):
        if os.path.basename(path) == "metrics.jsonl":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return real(path)

    monkeypatch.setattr(tracking, "_open_for_append", read_only)
    capsys.readouterr()
    assert cli.main(["train", *args, "--epoch_size=2", "--resume=auto"]) == 1
    said = capsys.readouterr().err
    assert f"cannot write the run's records there ({run / 'metrics.jsonl'}: Permission denied)" in said
    assert (run / "log.txt").read_bytes() == log


def test_log_file_takes_a_name_that_is_not_utf8(tmp_path):
    """A warning naming an unreadable file in a Latin-1 folder (caf\\xe9), copied into log.txt, raised
    UnicodeEncodeError there and stopped the run (helper-365); so did a resume's preamble in a run folder so named.
    log.txt escapes its bytes as stdout does."""
    from mobilenet_v1 import runtime

    path = tmp_path / "log.txt"
    f = runtime.add_log_file(str(path))
    try:
        runtime.log0("skipped unreadable image file data/caf\udce9/x.jpg")
        runtime.CopiedToLogs(None).write("warning: runs/r\udce9 \u00d7\n")
    finally:
        runtime.remove_log_file(f)
    assert path.read_text(encoding="utf-8") == ("skipped unreadable image file data/caf\\xe9/x.jpg\n"
                                                "warning: runs/r\\xe9 \u00d7\n")


def test_tqdm_disabled_on_a_terminal_prints_plain_lines(tmp_path, monkeypatch, capsys):
    """TQDM_DISABLE=1 on a terminal (a container's, `docker run -t`) turned tqdm's bar off, and with it every
    step's line on stdout: an epoch said nothing until its end (helper-365). Plain lines then, as in a file."""
    import torch

    from mobilenet_v1 import tracking

    import tqdm

    class Disabled(tqdm.tqdm):  # as TQDM_DISABLE=1 makes every bar (tqdm reads it once, at its import)
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    monkeypatch.setattr(tqdm, "tqdm", Disabled)
    monkeypatch.setattr(tracking, "redrawable", lambda stream: True)
    logger = tracking.RunLogger(None, epochs=1, steps_per_epoch=4, log_interval=2, tensorboard=False)
    assert logger.progress
    logger.begin_epoch(1)
    for i in range(4):
        logger.log_step(i, torch.tensor(1.5), 0.1, 8)
    logger.close()
    assert "epoch 1/1 step 2/4: loss 1.5000" in capsys.readouterr().out
