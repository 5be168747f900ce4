"""Never lose a run: kills, exact resume, untrusted files, bad data, non-finite steps, storage faults.

The issue's tests (a)-(g) are marked in each test's name. The kill tests fork their training processes
from one helper process that imported torch once (``Zygote``): a run starts in a fraction of a second
rather than the seconds of a fresh interpreter, so twenty kills fit the time budget.
"""
import dataclasses
import errno
import json
import math
import os
import random
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, train
from mobilenet_v1.config import load_config
from mobilenet_v1.data import (CIFAR_TRAIN_FOLDER, BadSampleWarning, DataError, DataOptions, build_loader)
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteError, NonFiniteGuard, init_momentum_buffers
from mobilenet_v1.tracking import read_metrics
from mobilenet_v1 import transforms as T

from conftest import jpeg_bytes, smooth_image

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ---------------------------------------------------------------------------------------------------
# helpers

_ZYGOTE = r'''
import json, os, sys
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)  # no OpenMP pool exists before fork: forking is safe
import mobilenet_v1.cli, mobilenet_v1.train
import torch._dynamo  # what each run would import itself: torch's optimizers import it when built
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        rc = 1
        try:
            rc = mobilenet_v1.cli.main(["train"] + job["argv"])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                      "exitcode": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
'''


class Zygote:
    """A process that imported torch and the package once and forks one training run per request."""

    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE, SRC], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = None

    def start(self, argv, log) -> int:
        self.proc.stdin.write(json.dumps({"argv": [str(a) for a in argv], "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        self.pid = int(self.proc.stdout.readline())
        return self.pid

    def wait(self):
        """(signal that ended the run or 0, exit code or None)"""
        status = json.loads(self.proc.stdout.readline())
        self.pid = None
        return status["signal"], status["exitcode"]

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)
        return self.wait()

    def run(self, argv, log):
        self.start(argv, log)
        return self.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_args(cifar_dir, out, *extra):
    return SMALL + [f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={out}", *extra]


def as_restarted(monkeypatch) -> None:
    """This process stands for a worker that torchrun restarted once (TORCHELASTIC_RESTART_COUNT=1)."""
    restarted = train.distributed.Context(restarted=1)
    monkeypatch.setattr(train.distributed, "setup", lambda *a, **k: restarted)


def fresh_model_and_optimizer(cfg):
    """What ``train.run`` builds before it resumes: the reference checkpoints are validated against."""
    model = train.build_model(cfg).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, 0.1, cfg.momentum, cfg.weight_decay, torch.device("cpu"))
    init_momentum_buffers(optimizer)
    return model, optimizer


def make_read_only(path) -> bool:
    """Make a folder read-only for this process: permissions, or for root (whom permissions do not stop)
    the immutable attribute. False if neither holds."""
    os.chmod(path, 0o555)
    probe = os.path.join(path, ".probe")
    try:
        open(probe, "w").close()
    except OSError:
        return True
    os.unlink(probe)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        return False
    try:
        open(probe, "w").close()
    except OSError:
        return True
    os.unlink(probe)
    return False


def make_writable(path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    os.chmod(path, 0o755)


def snapshot(model, optimizer):
    # num_batches_tracked counts forward passes, skipped ones included (unused with a fixed momentum).
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    # Every tensor of the optimiser's state: SGD's momentum, RMSprop's and AdamW's averages and step counts.
    moments = [v.clone() for g in optimizer.param_groups for p in g["params"]
               for _, v in sorted(optimizer.state[p].items()) if isinstance(v, torch.Tensor)]
    return state, moments


def same(a, b) -> bool:
    return all(torch.equal(a[0][k], b[0][k]) for k in a[0]) and all(torch.equal(x, y) for x, y in zip(a[1], b[1]))


# ---------------------------------------------------------------------------------------------------
# (a) SIGKILL at 10 random moments

def test_a_sigkill_at_10_random_moments_leaves_a_newest_checkpoint_that_loads(cifar_dir, tmp_path):
    out = tmp_path / "run"
    argv = run_args(cifar_dir, out, "--epoch_size=60", "--save_checkpoint_steps=2", "--keep_checkpoint_max=3",
                    "--resume=auto")
    cfg = load_config(argv)
    model, optimizer = fresh_model_and_optimizer(cfg)
    spe = 12

    def validate(ckpt, path):
        return ckpt_io.validate_training_checkpoint(ckpt, path, model, optimizer, spe)

    rng = random.Random(20)
    log = tmp_path / "train.log"
    kills = []
    with Zygote() as z:
        for k in range(10):  # 3 of them inside a checkpoint's save
            before = {p for _, p in ckpt_io.list_checkpoints(str(out))} if out.exists() else set()
            z.start(argv, log)
            in_save = k % 3 == 2
            if in_save:
                # Kill as soon as a new checkpoint's temporary file shows: inside torch.save, the fsync or
                # the rename.
                def saving():
                    return {p for p in (ckpt_io.partial_files(str(out)) if out.exists() else ())
                            if os.path.basename(p).startswith("." + ckpt_io.CKPT_PREFIX)}
                old = saving()
                deadline = time.time() + 20
                while time.time() < deadline and not saving() - old:
                    time.sleep(0.0005)
            else:
                # The first kill may land in the start; the others come a random moment after the run saved a
                # checkpoint of its own, so that it moves on however slow the machine is (a fixed moment
                # on a loaded machine could fall before the first save every time).
                deadline = time.time() + 30
                while k and time.time() < deadline and not (
                        out.exists() and {p for _, p in ckpt_io.list_checkpoints(str(out))} - before):
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.1, 1.2) if not k else rng.uniform(0.0, 0.6))
            sig, code = z.kill()
            assert sig == signal.SIGKILL, f"run {k} ended by itself with exit code {code}:\n{log.read_text()[-3000:]}"
            named = ckpt_io.list_checkpoints(str(out)) if out.exists() else []
            partial = ckpt_io.partial_files(str(out)) if out.exists() else []
            # Every file under a checkpoint name is complete and valid, so the newest one is.
            steps = [validate(ckpt_io.load_file(p), p) for _, p in named]
            path, _, position, passed = ckpt_io.find_resume_checkpoint(str(out), validate)
            assert passed == []
            assert path == (named[-1][1] if named else None)
            assert all(not os.path.basename(p).startswith(".") for _, p in named)
            kills.append({"in_save": in_save, "partial": [os.path.basename(p) for p in partial],
                          "newest": position, "count": len(steps)})
        print("kills (newest checkpoint as (epochs done, steps into the next)):", *kills, sep="\n  ")
        positions = [r["newest"][0] * spe + r["newest"][1] for r in kills if r["newest"]]
        assert positions and positions == sorted(positions) and positions[-1] >= 12  # the run moved on across kills
        assert [r for r in kills if any(n.startswith("." + ckpt_io.CKPT_PREFIX) for n in r["partial"])], \
            f"no kill landed inside a checkpoint save: {kills}"
        # After the last kill, a run left alone continues from the newest checkpoint to its end.
        finish = kills[-1]["newest"][0] + 1
        assert z.run(argv + [f"--epoch_size={finish}"], log) == (0, 0)
    text = log.read_text()
    assert text.count("resume: continuing from") >= 1 and "resume: passed over" not in text
    assert not ckpt_io.partial_files(str(out))  # what interrupted saves left was cleared, never used
    assert ckpt_io.list_checkpoints(str(out))[-1][1] == str(out / f"mobilenetv1-{finish}_12.ckpt")


# ---------------------------------------------------------------------------------------------------
# (b) N steps straight == K steps + kill + resume to N, bit for bit

def test_b_kill_and_resume_gives_bitwise_identical_weights_and_optimizer(cifar_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # With a weight average, TrivialAugment, batch augmentations, clipping, dropout and a teacher: they
    # too must continue exactly.
    teacher = tmp_path / "teacher.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(4, 0.5).state_dict()}, str(teacher))
    extra = ["--epoch_size=3", "--save_checkpoint_steps=5", "--resume=auto", "--ema_decay=0.9",
             "--mixup_alpha=0.2", "--cutmix_alpha=1.0", "--mixup_off_epoch=2", "--random_erase=0.25",
             "--random_erase_mode=pixel",
             "--clip_grad_norm=1.0", "--auto_augment=ta_wide", "--drop_rate=0.2", f"--teacher={teacher}",
             "--distill_alpha=0.3"]
    with Zygote() as z:
        assert z.run(run_args(cifar_dir, straight, *extra), tmp_path / "straight.log") == (0, 0)
        z.start(run_args(cifar_dir, killed, *extra), tmp_path / "killed.log")
        deadline = time.time() + 60
        # Kill once a mid-epoch checkpoint of epoch 2 exists (global step 15 = epoch 2, step 3).
        while time.time() < deadline and not any(e >= 2 for e, _ in ckpt_io.list_checkpoints(str(killed))):
            time.sleep(0.002)
        assert z.kill()[0] == signal.SIGKILL
        newest = ckpt_io.list_checkpoints(str(killed))[-1][1]
        assert z.run(run_args(cifar_dir, killed, *extra), tmp_path / "resumed.log") == (0, 0)
    log = (tmp_path / "resumed.log").read_text()
    assert f"resume: continuing from {newest} after epoch " in log and " steps of epoch " in log
    assert "epoch 3: Mixup and CutMix off from here (mixup_off_epoch 2)" in (tmp_path / "straight.log").read_text()
    a = ckpt_io.load_file(str(straight / "mobilenetv1-3_12.ckpt"))
    b = ckpt_io.load_file(str(killed / "mobilenetv1-3_12.ckpt"))
    assert a["step"] == b["step"] == 36
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) == len(list(train.build_model(load_config(SMALL)).parameters()))
    for k in sa:
        assert torch.equal(sa[k]["momentum_buffer"], sb[k]["momentum_buffer"]), k
    assert [g["lr"] for g in a["optimizer"]["param_groups"]] == [g["lr"] for g in b["optimizer"]["param_groups"]]
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    assert a["ema"]["updates"] == b["ema"]["updates"] == 36
    assert a["ema"]["model"].keys() == a["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["ema"]["model"][k], b["ema"]["model"][k]), k
    assert not torch.equal(a["ema"]["model"]["fc.weight"], a["model"]["fc.weight"])


def signal_self_at(monkeypatch, step: int, signum: int, children: bool = False) -> None:
    """The run's process (and with ``children`` its loader workers first, as a scheduler signals every
    process of a job) gets ``signum`` during global step ``step`` of this process's training loop."""
    import multiprocessing

    as_is, done = train.train_one_epoch, [0]

    def wrapped(*args, on_step, **kwargs):
        def hook(i, loss, lr):
            done[0] += 1
            if done[0] == step:
                workers = multiprocessing.active_children() if children else []
                assert len(workers) == children
                for worker in workers:
                    os.kill(worker.pid, signum)
                time.sleep(0.2 if children else 0)  # the workers' turn before the run's
                os.kill(os.getpid(), signum)
            on_step(i, loss, lr)
        return as_is(*args, on_step=hook, **kwargs)

    monkeypatch.setattr(train, "train_one_epoch", wrapped)


def test_sigterm_stops_after_the_step_with_a_checkpoint_that_resumes_exactly(cifar_dir, tmp_path, monkeypatch,
                                                                             capsys, one_thread):
    """SIGTERM (a preemption) during step 7 of 12: the run saves after step 7 and exits 143; resumed, it
    ends with the weights and optimiser state of a run never stopped. SIGINT during an epoch's last step
    saves the epoch's end and leaves out its evaluation; exit 130. The handlers are gone afterwards."""
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    extra = ["--epoch_size=2", "--ema_decay=0.9", "--resume=auto"]
    assert cli.main(["train", *run_args(cifar_dir, straight, *extra)]) == 0
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as m:
        signal_self_at(m, 7, signal.SIGTERM)
        assert cli.main(["train", *run_args(cifar_dir, stopped, *extra)]) == 128 + signal.SIGTERM
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == handlers
    middle = stopped / "mobilenetv1-1_7.ckpt"
    out = capsys.readouterr()
    assert "SIGTERM received: stopping after the step under way, with a checkpoint there" in out.err
    assert f"stopped by SIGTERM after step 7 of epoch 1: checkpoint {middle}; --resume auto continues" in out.out
    assert [p for _, p in ckpt_io.list_checkpoints(str(stopped))] == [str(middle)]
    assert cli.main(["train", *run_args(cifar_dir, stopped, *extra)]) == 0
    # The seed's line names the epoch's last step (12), not the 5 steps run since the resume; the epoch's
    # mean loss is over all 12 too, as the run never stopped logged it.
    assert "epoch: 1 step: 12, loss is " in capsys.readouterr().out
    means = [[r["mean_loss"] for r in read_metrics(str(run))["epochs"]] for run in (straight, stopped)]
    assert means[1] == pytest.approx(means[0], rel=1e-6) and len(means[0]) == 2
    a = ckpt_io.load_file(str(straight / "mobilenetv1-2_12.ckpt"))
    b = ckpt_io.load_file(str(stopped / "mobilenetv1-2_12.ckpt"))
    for part in ("model",):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), k
    for k in a["ema"]["model"]:
        assert torch.equal(a["ema"]["model"][k], b["ema"]["model"][k]), k
    for pid in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][pid]["momentum_buffer"], b["optimizer"]["state"][pid]["momentum_buffer"])

    at_end = tmp_path / "at_end"
    with monkeypatch.context() as m:
        signal_self_at(m, 12, signal.SIGINT)
        assert cli.main(["train", *run_args(cifar_dir, at_end, "--epoch_size=2", "--eval_interval=1")]) == 130
    out = capsys.readouterr().out
    assert (f"stopped by SIGINT after the end of epoch 1 (its evaluation left out): checkpoint "
            f"{at_end / 'mobilenetv1-1_12.ckpt'}") in out and "eval: epoch" not in out
    # At the last epoch's end: trained in full, but not evaluated, which the exit status and log say.
    with monkeypatch.context() as m:
        signal_self_at(m, 12, signal.SIGTERM)
        assert cli.main(["train", *run_args(cifar_dir, at_end, "--epoch_size=2", "--eval_interval=1",
                                            "--resume=auto")]) == 143
    last = at_end / "mobilenetv1-2_12.ckpt"
    out = capsys.readouterr().out
    assert (f"stopped by SIGTERM after the end of epoch 2 (its evaluation left out): training is complete, in "
            f"checkpoint {last}; --resume auto makes its evaluation, which the best checkpoint and keep_best_max "
            f"judge") in out
    assert "resume: epoch 1's evaluation was left out when the run stopped: it comes first\neval: epoch 1 " in out
    assert ckpt_io.load_file(str(at_end / ckpt_io.BEST_NAME))["epoch"] == 1
    assert cli.main(["train", *run_args(cifar_dir, at_end, "--epoch_size=2", "--eval_interval=1",
                                        "--resume=auto")]) == 0
    out = capsys.readouterr().out
    assert "resume: epoch 2's evaluation was left out when the run stopped: it comes first" in out
    assert "eval: epoch 2 top-1" in out and "training:" not in out
    tops = [r["top_1"] for r in read_metrics(str(at_end))["epochs"]]
    best = ckpt_io.load_file(str(at_end / ckpt_io.BEST_NAME))
    assert len(tops) == 2 and best["metrics"]["top_1"] == max(tops) and best["epoch"] == 1 + (tops[1] > tops[0])
    assert cli.main(["train", *run_args(cifar_dir, at_end, "--epoch_size=2", "--eval_interval=1",
                                        "--resume=auto")]) == 0
    assert "training is complete (2 epochs); nothing to do" in capsys.readouterr().out


def signal_at_first_eval_batch(monkeypatch, children: bool = False) -> list:
    """The run's process (and with ``children`` its loader workers first, as a scheduler signals every
    process of a job) gets SIGTERM once the first evaluation batch of the run has arrived; returns the
    list of the evaluation batches' sizes, filled as they arrive."""
    import multiprocessing

    as_is, seen = train.evaluate, []

    def signalled(model, loader, *args, **kwargs):
        def batches():
            for x, y in loader:
                seen.append(y.shape[0])
                if len(seen) == 1:
                    workers = multiprocessing.active_children() if children else []
                    assert bool(workers) == children  # the training and the evaluation loaders' workers
                    for worker in workers:
                        os.kill(worker.pid, signal.SIGTERM)
                    time.sleep(0.3 if children else 0)  # the workers' turn before the run's
                    os.kill(os.getpid(), signal.SIGTERM)
                yield x, y
        return as_is(model, batches(), *args, **kwargs)

    monkeypatch.setattr(train, "evaluate", signalled)
    return seen


def test_a_signal_during_an_evaluation_ends_it_there_and_saves_the_epochs_end(cifar_dir, tmp_path, monkeypatch,
                                                                               capsys, one_thread):
    """SIGTERM while an epoch's evaluation runs (ImageNet's takes minutes, past the watchdog's grace, which
    ended the process before the epoch's checkpoint): the evaluation ends after the batch under way, the
    weight average's does not start, the epoch's end is saved (save_checkpoint_epochs 5 notwithstanding)
    and nothing of the evaluation is kept or printed; exit 143. Resumed, the run makes that evaluation
    first: the best checkpoint, keep_best_max, --patience and the records then hold what a run never
    stopped holds (a resume that skipped it took a later, worse epoch for the best)."""
    straight, run = tmp_path / "straight", tmp_path / "run"
    extra = ["--epoch_size=2", "--eval_interval=1", "--ema_decay=0.9", "--keep_best_max=2", "--patience=3"]
    assert cli.main(["train", *run_args(cifar_dir, straight, *extra)]) == 0
    capsys.readouterr()
    with monkeypatch.context() as m:
        seen = signal_at_first_eval_batch(m)
        assert cli.main(["train", *run_args(cifar_dir, run, *extra)]) == 128 + signal.SIGTERM
    out = capsys.readouterr().out
    assert seen == [16]  # of 40 images: left after its first batch, the average's evaluation not started
    end = run / "mobilenetv1-1_12.ckpt"
    assert [p for _, p in ckpt_io.list_checkpoints(str(run))] == [str(end)] and not (run / ckpt_io.BEST_NAME).exists()
    assert (f"stopped by SIGTERM after the end of epoch 1 (its evaluation left out): checkpoint {end}; --resume auto "
            f"continues from there, that evaluation first") in out
    assert "eval: epoch" not in out
    assert all("top_1" not in record for record in read_metrics(str(run))["epochs"])

    assert cli.main(["train", *run_args(cifar_dir, run, *extra, "--resume=auto")]) == 0
    out = capsys.readouterr().out
    assert "resume: epoch 1's evaluation was left out when the run stopped: it comes first\neval: epoch 1 top-1 " in out
    epochs = [read_metrics(str(folder))["epochs"] for folder in (straight, run)]
    assert [(r["epoch"], r["top_1"], r["top_5"], r["raw_top_1"]) for r in epochs[1]] == \
        [(r["epoch"], r["top_1"], r["top_5"], r["raw_top_1"]) for r in epochs[0]] and len(epochs[0]) == 2
    for name in (ckpt_io.BEST_NAME, ckpt_io.top_name(1), ckpt_io.top_name(2), "mobilenetv1-2_12.ckpt"):
        a, b = (ckpt_io.load_file(str(folder / name)) for folder in (straight, run))
        assert (a["epoch"], a.get("metrics")) == (b["epoch"], b.get("metrics")), name
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name
    # Judged once: a second resume counts epoch 1's evaluation from the records, not again.
    assert cli.main(["train", *run_args(cifar_dir, run, *extra[1:], "--epoch_size=3", "--resume=auto")]) == 0
    out = capsys.readouterr().out
    assert "comes first" not in out and "eval: epoch 3 top-1" in out and "eval: epoch 1" not in out


def test_a_best_checkpoint_that_cannot_be_written_still_saves_the_epoch_trained(cifar_dir, tmp_path, capsys,
                                                                                  one_thread):
    """The best checkpoint (or a best epoch's copy) is written as the evaluation judges it, before the epoch's own
    checkpoint: where it could not be written (a folder in its place, a full disk), the run stopped there and the
    epoch trained was lost (helper-256). The epoch's end is now saved first, marked as before its evaluation (as a
    signal's is, save_checkpoint_epochs notwithstanding), and --resume auto makes that evaluation and its copies:
    the run then ends as one never stopped. A resume that still cannot write the copy says that nothing was
    trained and the checkpoint still owes the evaluation."""
    straight, run = tmp_path / "straight", tmp_path / "run"
    extra = ["--epoch_size=2", "--eval_interval=1", "--keep_best_max=2", "--save_checkpoint_epochs=5"]
    assert cli.main(["train", *run_args(cifar_dir, straight, *extra)]) == 0
    (run / ckpt_io.BEST_NAME).mkdir(parents=True)
    capsys.readouterr()
    assert cli.main(["train", *run_args(cifar_dir, run, *extra)]) == 1
    end = run / "mobilenetv1-1_12.ckpt"
    assert (f"cannot write checkpoint {run / ckpt_io.BEST_NAME}: Is a directory; training stopped after epoch 1, "
            f"saved as {end} before its evaluation: free space or make the folder writable, then --resume auto "
            f"continues from it, that evaluation (and its copy) first") in capsys.readouterr().err
    assert [p for _, p in ckpt_io.list_checkpoints(str(run))] == [str(end)]
    assert ckpt_io.load_file(str(end))[train.EVALUATION_LEFT_OUT] is True
    assert [("top_1" in r, r["epoch"]) for r in read_metrics(str(run))["epochs"]] == [(False, 1)]
    assert cli.main(["train", *run_args(cifar_dir, run, *extra, "--resume=auto")]) == 1
    assert (f"cannot write checkpoint {run / ckpt_io.BEST_NAME}: Is a directory; nothing was trained: {end} still "
            f"owes epoch 1's evaluation") in capsys.readouterr().err
    assert [p for _, p in ckpt_io.list_checkpoints(str(run))] == [str(end)]
    (run / ckpt_io.BEST_NAME).rmdir()
    assert cli.main(["train", *run_args(cifar_dir, run, *extra, "--resume=auto")]) == 0
    assert "resume: epoch 1's evaluation was left out when the run stopped: it comes first" in capsys.readouterr().out
    epochs = [read_metrics(str(folder))["epochs"] for folder in (straight, run)]
    assert [(r["epoch"], r["top_1"]) for r in epochs[1] if "top_1" in r] == \
        [(r["epoch"], r["top_1"]) for r in epochs[0]] and len(epochs[0]) == 2
    for name in (ckpt_io.BEST_NAME, ckpt_io.top_name(1), ckpt_io.top_name(2), "mobilenetv1-2_12.ckpt"):
        a, b = (ckpt_io.load_file(str(folder / name)) for folder in (straight, run))
        assert (a["epoch"], a.get("metrics")) == (b["epoch"], b.get("metrics")), name
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"]), name


def test_a_first_checkpoint_that_cannot_be_written_says_there_is_none_to_continue_from(cifar_dir, tmp_path,
                                                                                      monkeypatch, capsys, one_thread):
    """The error of a checkpoint that could not be written said "--resume auto, which continues from that one"
    where its "newest" was none: said as it is, the run starts from the beginning (helper-256); or, resumed from
    another folder's checkpoint, the same command continues from that one (helper-260)."""
    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    first = tmp_path / "first"
    assert cli.main(["train", *run_args(cifar_dir, first, "--epoch_size=1")]) == 0
    monkeypatch.setattr(torch, "save", full)
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 1
    err = capsys.readouterr().err
    assert (f"The earlier checkpoints in {run} are intact (newest: none); free space or make the folder writable, "
            f"then run again (there is no checkpoint to continue from: it starts from the beginning)") in err
    assert "continues from that one" not in err
    resumed = first / "mobilenetv1-1_12.ckpt"
    assert cli.main(["train", *run_args(cifar_dir, tmp_path / "other", "--epoch_size=2", f"--resume={resumed}")]) == 1
    assert (f"intact (newest: none); free space or make the folder writable, then run the same command again, which "
            f"continues from {resumed}") in capsys.readouterr().err


def test_a_signal_to_the_evaluations_loader_workers_too_still_saves_the_epochs_end(image_folder, tmp_path,
                                                                                    monkeypatch, one_thread):
    """A scheduler signals every process of the job: the evaluation's persistent loader worker leaves
    too. The weight average's evaluation started that loader again and failed on the dead worker, with
    no checkpoint; an evaluation asked to stop before its first batch now does not start its loader."""
    seen = signal_at_first_eval_batch(monkeypatch, children=True)
    run = tmp_path / "run"
    args = ["train", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=2", "--num_workers=1", "--data_pipeline=cpu", "--device_target=CPU",
            "--epoch_size=2", "--warmup_epochs=0", "--eval_interval=1", "--ema_decay=0.9",
            f"--save_checkpoint_path={run}"]
    assert cli.main(args) == 128 + signal.SIGTERM
    assert seen == [2] and [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == [
        "mobilenetv1-1_7.ckpt"]


def test_sigterm_to_the_loader_workers_too_still_stops_with_a_checkpoint(image_folder, tmp_path, monkeypatch, capsys,
                                                                         one_thread):
    """A scheduler signals every process of the job: torch's handler would end a loader worker on
    SIGTERM and the run would fail on the lost worker; the workers go on serving and the run stops
    after its step, with a checkpoint there, also where that step was still waiting for its batch."""
    args = ["train", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=4", "--num_workers=1", "--data_pipeline=cpu", "--device_target=CPU",
            "--epoch_size=2", "--warmup_epochs=0", f"--save_checkpoint_path={tmp_path / 'run'}"]
    with monkeypatch.context() as m:
        signal_self_at(m, 2, signal.SIGTERM, children=True)
        assert cli.main(args) == 143
    assert f"stopped by SIGTERM after step 2 of epoch 1: checkpoint {tmp_path / 'run' / 'mobilenetv1-1_2.ckpt'}" in \
        capsys.readouterr().out
    # A data-bound run (0.4 s a sample here) waits for its next batch when the signal comes: the worker,
    # which left at once before ("DataLoader worker exited unexpectedly", no checkpoint), makes it.
    import multiprocessing
    import threading

    from mobilenet_v1 import data

    read = data.ImageFolderDataset.__getitem__

    def slowly(self, item):
        time.sleep(0.4)
        return read(self, item)

    as_is = train.train_one_epoch

    def signalled_while_waiting(*a, on_step, **k):
        def hook(i, loss, lr):
            if i == 0:  # the worker is making batch 2 (1.6 s), which the run waits for from now on
                workers = multiprocessing.active_children()
                assert workers
                threading.Timer(0.2, lambda: [os.kill(p, signal.SIGTERM)
                                              for p in [w.pid for w in workers] + [os.getpid()]]).start()
            on_step(i, loss, lr)
        return as_is(*a, on_step=hook, **k)

    monkeypatch.setattr(data.ImageFolderDataset, "__getitem__", slowly)
    monkeypatch.setattr(train, "train_one_epoch", signalled_while_waiting)
    assert cli.main(args[:-1] + [f"--save_checkpoint_path={tmp_path / 'slow'}"]) == 143
    assert f"stopped by SIGTERM after step 2 of epoch 1: checkpoint {tmp_path / 'slow' / 'mobilenetv1-1_2.ckpt'}" in \
        capsys.readouterr().out


_LEFT_WAIT = r"""
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stalls, stopping
stopping.GRACE_SECONDS = 1.0  # a wait is left after 0.5 s


def never():  # a loader whose worker gives no batch
    while True:
        time.sleep(3600)
        yield


mode = sys.argv[2]
with stopping.StopRequest() as stop:
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    start = time.monotonic()
    try:
        if mode == "training":
            with stop.batch_wait():
                next(stalls.watched(never(), "the loader"))
        elif mode == "evaluation":  # a watched wait outside batch_wait: the grace ends the process
            next(stalls.watched(never(), "the loader"))
        else:  # "step": inside batch_wait but in no watched wait (a step's work): never left
            with stop.batch_wait():
                time.sleep(3600)
    except stopping.WaitAbandoned as e:
        print(f"left after {time.monotonic() - start:.1f} s:", signal.Signals(e.signum).name, stop.agreed,
              stop.abandoned, stop.should_stop(), flush=True)
"""


@pytest.mark.parametrize("mode", ["training", "evaluation", "step"])
def test_only_a_training_loops_wait_for_a_batch_is_left_after_a_signal(mode):
    """A signal while the main thread waits for a batch that never comes: inside StopRequest.batch_wait (a training
    loop's wait for its next step's batches) the wait is left half way through the grace, WaitAbandoned raised there
    and the stop agreed on; a watched wait outside it (an evaluation's) or a wait inside it that is no wait for a
    batch (a step's own work) is not left, and the grace ends the process as before."""
    r = subprocess.run([sys.executable, "-c", _LEFT_WAIT, SRC, mode], capture_output=True, text=True, timeout=60)
    if mode == "training":
        left = re.fullmatch(r"left after (\d+\.\d) s: SIGTERM 15 True True\n", r.stdout)
        assert r.returncode == 0 and left, (r.stdout, r.stderr[-2000:])
        assert 0.5 <= float(left.group(1)) < 5, r.stdout  # from 0.2 s, the signal: 0.5 s after it, once awake
        assert "no batch from the training loader for 0.5 s after it: leaving that wait" in r.stderr
    else:
        assert (r.returncode, r.stdout) == (143, ""), r.stderr
        assert "leaving that wait" not in r.stderr and "no training step completed for 1 s" in r.stderr


_STUCK_WORKER = r"""
import os, signal, sys, threading
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from mobilenet_v1 import cli, data, stopping, train
stopping.GRACE_SECONDS = 2.0  # the wait is left after 1 s
mode, pid_file, args = sys.argv[2], sys.argv[3], sys.argv[4:]
read, served = data.ImageFolderDataset.__getitem__, [0]
last = {"mid-epoch": 8, "epoch-start": 14, "resumed": 0}[mode]  # batches of 2: 4 of them, epoch 1's 7, none


def stuck(self, item):  # in the loader's worker: after `last` samples it gives no more
    served[0] += 1
    if served[0] > last:
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        if mode == "mid-epoch":  # a read that never returns (its batches made before still reach the run)
            threading.Event().wait()
        # Stopped (SIGSTOP) at epoch 2's first sample, which the run waits for by now (workers read no epoch ahead)
        os.kill(os.getppid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGSTOP)
    return read(self, item)


data.ImageFolderDataset.__getitem__ = stuck
as_is = train.train_one_epoch


def signalled(*a, on_step, **k):
    def hook(i, loss, lr):
        on_step(i, loss, lr)
        if mode == "mid-epoch" and i == 3:  # step 4 done: the run waits for batch 5, which never comes
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    return as_is(*a, on_step=hook, **k)


train.train_one_epoch = signalled
sys.exit(cli.main(args))
"""


@pytest.mark.parametrize("mode", ["mid-epoch", "epoch-start"])
def test_sigterm_while_the_loader_gives_no_batch_saves_the_steps_taken_and_resumes_exactly(image_folder, tmp_path,
                                                                                            mode, one_thread):
    """SIGTERM while the run waits for a batch its loader worker never makes (stopped, or in a read of a hung
    network disk): no step completes, and the watchdog ended the process after its grace, the steps since the newest
    checkpoint lost. Half way through the grace the wait is now left and the run stops after its last step, as after
    any step: saved there, the stopped worker killed, exit 143; --resume auto then ends as a run never stopped. At an
    epoch's first batch, the end of the epoch before is saved (save_checkpoint_epochs 5 had not saved it)."""
    args = ["train", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=2", "--num_workers=1", "--data_pipeline=cpu", "--device_target=CPU",
            "--epoch_size=2", "--warmup_epochs=0", "--save_checkpoint_epochs=5", "--ema_decay=0.9"]
    straight, run = tmp_path / "straight", tmp_path / "run"
    assert cli.main([*args, f"--save_checkpoint_path={straight}"]) == 0
    pid_file = tmp_path / "worker.pid"
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-c", _STUCK_WORKER, SRC, mode, str(pid_file), *args,
                        f"--save_checkpoint_path={run}"], capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert r.returncode == 143, r.stderr[-3000:]
    saved, at = ("mobilenetv1-1_4.ckpt", "step 4 of epoch 1") if mode == "mid-epoch" else \
        ("mobilenetv1-1_7.ckpt", "the end of epoch 1")
    assert (f"stopped by SIGTERM after {at}: checkpoint {run / saved}; --resume auto continues from there"
            in r.stdout), r.stdout[-2000:] + r.stderr[-2000:]
    assert "SIGTERM: no batch from the training loader for 1 s after it: leaving that wait" in r.stderr
    assert "no training step completed" not in r.stderr
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == [saved]
    worker = int(pid_file.read_text())
    for _ in range(100):  # killed, then reaped by init once its parent exited
        if not os.path.exists(f"/proc/{worker}") or open(f"/proc/{worker}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail(f"the stopped loader worker {worker} outlived the run")
    assert took < 60, took
    assert cli.main([*args, f"--save_checkpoint_path={run}", "--resume=auto"]) == 0
    a, b = (ckpt_io.load_file(str(folder / "mobilenetv1-2_7.ckpt")) for folder in (straight, run))
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
        assert torch.equal(a["ema"]["model"][k], b["ema"]["model"][k]), k
    for pid in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][pid]["momentum_buffer"],
                           b["optimizer"]["state"][pid]["momentum_buffer"])


def test_a_stop_before_a_resumed_runs_first_step_says_the_file_it_started_from_is_still_the_one(image_folder,
                                                                                                tmp_path, one_thread):
    """A signal while a run resumed from another folder's checkpoint waits for its first batch (a stopped worker):
    nothing is trained or saved, and the run says so, naming the file it started from; --resume auto in its own
    folder would find no checkpoint and start from the beginning."""
    args = ["train", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=2", "--num_workers=1", "--data_pipeline=cpu", "--device_target=CPU",
            "--epoch_size=2", "--warmup_epochs=0"]
    first, run = tmp_path / "first", tmp_path / "run"
    assert cli.main([*args, f"--save_checkpoint_path={first}", "--save_checkpoint_epochs=1",
                     "--keep_checkpoint_max=5"]) == 0
    start = first / "mobilenetv1-1_7.ckpt"
    r = subprocess.run([sys.executable, "-c", _STUCK_WORKER, SRC, "resumed", str(tmp_path / "worker.pid"), *args,
                        f"--save_checkpoint_path={run}", f"--resume={start}"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 143, r.stderr[-3000:]
    assert (f"stopped by SIGTERM after the end of epoch 1: nothing was trained since {start}, so nothing was saved; "
            f"the same command continues from it" in r.stdout), r.stdout[-2000:]
    assert ckpt_io.list_checkpoints(str(run)) == []


_WORKER = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
stopping.ignore_in_worker(0)
os.kill(os.getpid(), signal.SIGINT)  # the terminal's Ctrl-C reaches the loader workers too
os.kill(os.getpid(), signal.SIGTERM)  # a scheduler's, sent to every process of the job
time.sleep(0.2)
print("serving", flush=True)
os.kill(os.getpid(), signal.SIGTERM)  # multiprocessing's exit terminating its daemonic children
time.sleep(20)
print("still there", flush=True)
'''


def test_a_loader_worker_serves_on_after_ctrl_c_and_a_first_sigterm_and_ends_quietly_at_the_second():
    # Ended by the second SIGTERM: a worker that outlived it would say "still there" after its sleep.
    r = subprocess.run([sys.executable, "-c", _WORKER, SRC], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "serving\n", "")


_BLOCKED = r'''
import datetime, os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
import torch, torch.distributed as dist
from mobilenet_v1 import stopping
rank, store = int(sys.argv[2]), sys.argv[3]
dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=60))
if rank == 1:
    time.sleep(60)  # never joins the all-reduce below: a peer that hangs or died
stopping.GRACE_SECONDS = 1.0
with stopping.StopRequest():
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    dist.all_reduce(torch.ones(1))  # blocks in C: the Python handler cannot run
'''


def test_a_process_blocked_on_a_dead_peer_exits_after_the_grace_period(tmp_path):
    """The Python handler waits for the interpreter, which a process blocked in a collective never gets
    back to: the watchdog hears of the signal at once and exits after the grace period (here 1 s)."""
    store = str(tmp_path / "store")
    peer = subprocess.Popen([sys.executable, "-c", _BLOCKED, SRC, "1", store])
    try:
        start = time.time()
        r = subprocess.run([sys.executable, "-c", _BLOCKED, SRC, "0", store], capture_output=True, text=True,
                           timeout=50)
        took = time.time() - start
    finally:
        peer.kill()
        peer.wait()
    assert r.returncode == 143, r.stderr[-2000:]
    assert "SIGTERM received: stopping after the step under way" in r.stderr
    assert "no training step completed for 1 s after it; exiting now" in r.stderr
    assert took < 30, took  # not the collective's 60 s timeout


def test_the_grace_period_grows_with_the_longest_training_step_and_not_with_an_evaluation(monkeypatch):
    """Steps of 5 s make the watchdog's grace 15 s (three times the longest, above GRACE_SECONDS' 10); the 100 s
    an evaluation takes between two steps (after agree_now) is no step's time: the grace stays 15 s, where taking
    it for a step made it 300 s, five minutes a blocked process lingered after a preemption's signal."""
    import types

    from mobilenet_v1 import stopping

    now = [0.0]
    monkeypatch.setattr(stopping, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    stop = stopping.StopRequest()
    for step, at in enumerate((1.0, 6.0, 11.0), 1):
        now[0] = at
        assert not stop.should_stop()
    assert stop.grace() == 15.0
    stop.agree_now()  # the epoch's end: an evaluation follows
    now[0] = 111.0
    assert not stop.should_stop()
    now[0] = 113.0
    assert not stop.should_stop()
    assert stop.grace() == 15.0


_SUSPENDED = r"""
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
stopping.GRACE_SECONDS = 3.0
with stopping.StopRequest() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    print("signalled", flush=True)
    time.sleep(6.0)  # the step under way: 1.5 s of its own after the signal, besides the 4.5 s it is stopped for
    print("stops after its step:", stop.should_stop(), stop.agreed, flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX job control")
def test_a_process_stopped_after_a_signal_is_not_taken_for_a_blocked_one():
    """A SIGTERM, then the process stopped (Ctrl-Z, SLURM's suspend, a frozen container) longer than the grace
    and continued: the step under way ends and the run stops after it. The monotonic clock ran on while it was
    stopped, and the watchdog exited at the continue, without the checkpoint (helper-362)."""
    p = subprocess.Popen([sys.executable, "-c", _SUSPENDED, SRC], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "signalled\n"
        time.sleep(0.5)  # the watchdog has heard of the signal
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(4.5)
        os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert (p.returncode, out) == (0, f"stops after its step: True {int(signal.SIGTERM)}\n"), err[-2000:]


_LATE = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
stopping.GRACE_SECONDS = 1.0
signal.signal(signal.SIGINT, stopping.quit_on_interrupt)  # the command line's
with stopping.StopRequest() as stop:
    if sys.argv[2] == "late":
        time.sleep(1.5)  # a step (or an evaluation) longer than the grace, before any signal
        os.kill(os.getpid(), signal.SIGTERM)
    else:  # Ctrl-C, then a scheduler's SIGTERM during the same step
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # the step under way ends well within the grace after the signal
    print("stops after its step:", stop.should_stop(), stop.agreed, flush=True)
'''


def test_the_grace_runs_from_the_signal_and_the_run_stops_for_the_first_signal_heard():
    """A SIGTERM that comes 1.5 s into a step, with a grace of 1 s: the step that ends 0.5 s after it is the run's
    last, saved (the grace counts from the signal, not from the step before it: the watchdog exited at once,
    unsaved). Ctrl-C and then a SIGTERM during one step: the run stops for the first, SIGINT (exit status 130)."""
    started = {mode: subprocess.Popen([sys.executable, "-c", _LATE, SRC, mode], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for mode in ("late", "two")}
    for mode, agreed in (("late", signal.SIGTERM), ("two", signal.SIGINT)):
        out, err = started[mode].communicate(timeout=60)
        said = (started[mode].returncode, out)
        assert said == (0, f"stops after its step: True {int(agreed)}\n"), (mode, err[-2000:])


_BLOCKED_STEP = r'''
import os, signal, sys, threading, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import runtime, stopping
runtime.add_log_file(sys.argv[2])  # a run's log.txt, which takes its stderr too (as train.run sets it)
sys.stderr = runtime.CopiedToLogs(sys.stderr)
stopping.GRACE_SECONDS = 1.0
with stopping.StopRequest():
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    time.sleep(30)  # a step that never completes
'''


def test_a_run_the_watchdog_ends_says_so_in_its_log_txt(tmp_path):
    """A run whose step never completes after a SIGTERM is ended by the watchdog: its log.txt says so, as
    stderr does. It ended with "stopping after the step under way, with a checkpoint there", which that
    exit never saved: the line went to stderr's descriptor alone, which log.txt does not copy."""
    log = tmp_path / "log.txt"
    r = subprocess.run([sys.executable, "-c", _BLOCKED_STEP, SRC, str(log)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 143, r.stderr[-2000:]
    line = ("SIGTERM: no training step completed for 1 s after it; exiting now (the checkpoints written before "
            "are whole)")
    assert r.stderr.endswith(line + "\n")
    assert log.read_text() == ("SIGTERM received: stopping after the step under way, with a checkpoint there\n"
                               + line + "\n")


_TWICE = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
if sys.argv[2] == "cli":  # the command's handler, with a stand-in for the run (stopped for a signal)
    import atexit
    from mobilenet_v1 import cli

    def stand_in(rest):
        print("during", signal.getsignal(signal.SIGINT) is stopping.quit_on_interrupt, flush=True)
        stopping._heard = True
        return 0

    cli.COMMANDS["train"] = stand_in
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's; under pytest-xdist it is ignored
    atexit.register(os.kill, os.getpid(), signal.SIGINT)  # at exit, after the hook the command registers
    sys.argv = ["mobilenet-v1", "train"]
    cli.main()
    print("after", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    sys.exit(0)
elif sys.argv[2].startswith("python"):  # train.run's StopRequest under a Python caller (a script, a notebook)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stopping.GRACE_SECONDS = 1.0
    try:
        with stopping.StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            if sys.argv[2] == "python_closing":  # the second Ctrl-C while the block ends (in its __exit__)
                join = stop._watchdog.join
                stop._watchdog.join = lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.3), join())
            elif sys.argv[2] == "python_twice":
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)
            else:  # a step that does not end (a first step compiling, in Python): the grace runs out
                end = time.monotonic() + 20
                while time.monotonic() < end:
                    pass
        print("ended", signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.set_wakeup_fd(-1))
    except KeyboardInterrupt:
        print("KeyboardInterrupt", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    print("alive", flush=True)
    sys.exit(0)
else:
    signal.signal(signal.SIGINT, stopping.quit_on_interrupt)
    with stopping.StopRequest() as stop:
        if sys.argv[2] == "signalled":
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        elif sys.argv[2] == "inside":  # Ctrl-C twice in the run: the watchdog's exit
            print("buffered")  # a pipe's stdout is block-buffered: written out only by a flush
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
print("handler", signal.getsignal(signal.SIGINT) is stopping.quit_on_interrupt, flush=True)
try:
    os.kill(os.getpid(), signal.SIGINT)  # after the run's block, as while the command closes and exits
    time.sleep(5)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
'''


def test_a_second_ctrl_c_after_the_run_stops_the_command_at_once_without_a_traceback():
    """Ctrl-C, then Ctrl-C again just after the run saved its checkpoint (while the command closes its
    loaders, or in the interpreter's exit): the process ends at once, 130, with one line, no traceback;
    in the run, the watchdog ends it, after what it printed.
    Without a first signal it is Python's KeyboardInterrupt. `mobilenet-v1 train` installs the handler for
    the command and the interpreter's exit, and puts Python's back in between (a host that ran it).
    Under a Python caller (Python's own handler in place: train.run in a notebook, whose kernel a process
    exit killed; helper-120), a second Ctrl-C, or a first one the step does not end within the grace, is a
    KeyboardInterrupt out of the run, Python's handler back in place."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered, as a pipe's is
    started = {mode: subprocess.Popen([sys.executable, "-c", _TWICE, SRC, mode], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env)
               for mode in ("signalled", "quiet", "cli", "inside", "python_twice", "python_grace", "python_closing")}
    runs = {}
    for mode, p in started.items():  # side by side: each process's time is importing torch
        out, err = p.communicate(timeout=60)
        runs[mode] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    r = runs["signalled"]
    assert r.returncode == 130 and r.stdout == "handler True\n", (r.stdout, r.stderr[-2000:])
    assert r.stderr.endswith("SIGINT again: stopping now\n") and "Traceback" not in r.stderr, r.stderr
    r = runs["quiet"]
    assert r.returncode == 0 and r.stdout == "handler True\nKeyboardInterrupt\n", (r.stdout, r.stderr[-2000:])
    r = runs["cli"]
    assert r.stdout == "during True\nafter True\n" and r.returncode == 130, (r.stdout, r.stderr)
    assert r.stderr.endswith("SIGINT again: stopping now\n") and "Traceback" not in r.stderr, r.stderr
    r = runs["inside"]  # the run's own second Ctrl-C: what it printed reaches the pipe first
    assert r.returncode == 130 and r.stdout == "buffered\n", (r.stdout, r.stderr[-2000:])
    assert r.stderr.endswith("SIGINT received: stopping after the step under way, with a checkpoint there (Ctrl-C "
                             "again to stop at once)\nSIGINT again: stopping now\n"), r.stderr
    for mode in ("python_twice", "python_grace"):
        r = runs[mode]
        assert (r.returncode, r.stdout) == (0, "KeyboardInterrupt True\nalive\n"), (mode, r.stdout, r.stderr[-2000:])
    assert runs["python_twice"].stderr.endswith("(Ctrl-C again to stop at once)\n"), runs["python_twice"].stderr
    assert runs["python_grace"].stderr.endswith(
        "(Ctrl-C again to stop at once)\nSIGINT: no training step completed for 1 s after it; raising KeyboardInterrupt "
        "(the checkpoints written before are whole)\n"), runs["python_grace"].stderr
    # A Ctrl-C while the block ends is recorded, the handlers put back (helper-121: left in place for good).
    r = runs["python_closing"]
    assert (r.returncode, r.stdout) == (0, "ended True -1\nalive\n"), (r.returncode, r.stdout, r.stderr[-2000:])


_BEFORE_THE_LOOP = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import cli

def stand_in(rest):  # a Ctrl-C while the command loads its data or evaluates (no training loop to stop)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
    return 0

cli.COMMANDS[sys.argv[2]] = stand_in
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's; under pytest-xdist it is ignored
sys.argv = ["mobilenet-v1", sys.argv[2]]
sys.exit(cli.main())
'''


_WHILE_TORCH_IMPORTS_NUMPY = r'''
import importlib.abc, signal, sys
sys.path.insert(0, sys.argv[1])

class CtrlC(importlib.abc.MetaPathFinder):  # a Ctrl-C while numpy is first imported (by torch, before)
    def find_spec(self, name, path, target=None):
        if name == "numpy.lib":
            sys.meta_path.remove(self)
            raise KeyboardInterrupt
        return None

assert "numpy" not in sys.modules and "torch" not in sys.modules
sys.meta_path.insert(0, CtrlC())
from mobilenet_v1 import cli
signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's; under pytest-xdist it is ignored
sys.argv = ["mobilenet-v1", "info", "--width_mult", "0.25", "--image_size", "32"]
sys.exit(cli.main())
'''


def test_a_ctrl_c_while_the_command_imports_numpy_ends_it():
    """torch imports numpy from C++ and clears any error of that import: a Ctrl-C in that moment of a command's
    start was lost, and the command ran to its end (a convert over the file the user meant to keep, exit 0).
    Now the command ends in its one line, by the signal."""
    p = subprocess.run([sys.executable, "-c", _WHILE_TORCH_IMPORTS_NUMPY, SRC], capture_output=True, text=True,
                       timeout=120)
    assert (p.returncode, p.stdout, p.stderr) == (-signal.SIGINT, "", "mobilenet-v1 info: interrupted (Ctrl-C)\n"), \
        (p.returncode, p.stdout[-500:], p.stderr[-2000:])


def test_a_ctrl_c_before_the_training_loop_or_in_eval_ends_the_command_in_one_line(monkeypatch):
    """Ctrl-C while train loaded its data (before its loop, where it stops at a step) or while eval or predict
    ran printed Python's traceback and exited 1: now one line, and the process ends by the signal (the shell's
    $? 130), as a shell loop, make or xargs needs to stop on it (an exit of 130 would let them go on: bash's
    loop went on, by hand; not run here, where whether bash or its child handles the signal first is a race)."""
    started = {name: subprocess.Popen([sys.executable, "-c", _BEFORE_THE_LOOP, SRC, name], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name in ("train", "eval")}
    for name, p in started.items():
        out, err = p.communicate(timeout=60)
        assert (p.returncode, out, err) == (-signal.SIGINT, "", f"mobilenet-v1 {name}: interrupted (Ctrl-C)\n"), \
            (name, err)
    # Where the signal cannot end the process (blocked in its mask), its status says it: 128 + 2, as a shell's.
    blocked = subprocess.run([sys.executable, "-c", "import signal, sys; sys.path.insert(0, sys.argv[1]); "
                              "from mobilenet_v1 import cli; signal.pthread_sigmask(signal.SIG_BLOCK, "
                              "{signal.SIGINT}); sys.exit(cli.end_by_signal(signal.SIGINT))", SRC],
                             capture_output=True, timeout=60)
    assert blocked.returncode == 130, blocked.stderr

    def interrupted(rest):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "info", interrupted)
    with pytest.raises(KeyboardInterrupt):  # a Python caller's Ctrl-C is its own to handle
        cli.main(["info"])


_STALLED = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
os.set_blocking(1, False)
try:
    while True:  # stdout: a pipe no one reads, full
        os.write(1, b"x" * 65536)
except BlockingIOError:
    pass
os.set_blocking(1, True)
print("buffered")  # held in the stream's buffer: its flush would block for ever
if sys.argv[2] == "run":  # Ctrl-C twice in the run: the watchdog's exit (the command line's handler: a Python
    signal.signal(signal.SIGINT, stopping.quit_on_interrupt)  # caller's second Ctrl-C raises KeyboardInterrupt)
    with stopping.StopRequest():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
else:  # after a run stopped for a signal: the command's handler
    stopping._heard = True
    signal.signal(signal.SIGINT, stopping.quit_on_interrupt)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
'''


def test_an_exit_at_once_is_not_held_by_a_stdout_no_one_reads():
    """A second Ctrl-C ends the process within seconds, with its line on stderr, though stdout is a full pipe
    that its buffered lines can never be flushed to (the flush is given two seconds in a thread of its own)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    read, write = os.pipe()
    try:
        started = {mode: subprocess.Popen([sys.executable, "-c", _STALLED, SRC, mode], stdout=write,
                                          stderr=subprocess.PIPE, text=True, env=env) for mode in ("run", "after")}
        for mode, p in started.items():
            try:
                _, err = p.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                raise AssertionError(f"{mode}: still running 60 s after the second Ctrl-C") from None
            assert p.returncode == 130 and err.endswith("SIGINT again: stopping now\n"), (mode, p.returncode, err)
    finally:
        os.close(read)
        os.close(write)


_NO_THREAD = r'''
import os, sys, threading
sys.path.insert(0, sys.argv[1])
from mobilenet_v1 import stopping
print("buffered")
if sys.argv[2] == "no thread":  # as in the interpreter's exit on Python 3.12 and later
    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    threading.Thread.start = refuse
else:  # started with stderr closed: fd 2 is the next file opened
    log = open(sys.argv[3], "w")
stopping.exit_now(130, "SIGINT again: stopping now")
'''


def test_a_run_whose_output_reader_went_away_still_stops_on_ctrl_c_with_a_checkpoint(cifar_dir, tmp_path):
    """`train ... 2>&1 | tee console.log` (our scripts) and Ctrl-C from the terminal, which ends tee too:
    the run's next lines meet a closed pipe. It goes on, stops after the step under way, saves there and
    exits 130, its log.txt whole, where it stopped at the next line with BrokenPipeError (exit 1)."""
    run = tmp_path / "run"
    # stdout buffered, as a user's is: its flush meets the closed pipe too (PYTHONUNBUFFERED hid that path).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "PYTHONPATH": SRC}
    p = subprocess.Popen([sys.executable, "-m", "mobilenet_v1", "train", *run_args(cifar_dir, run, "--epoch_size=50",
                                                                                 "--log_interval=1")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    p.stdout.readline()
    p.stdout.close()  # the reader is gone
    log, deadline = run / "log.txt", time.monotonic() + 60
    while not (log.is_file() and "epoch 1/50 step 3/12" in log.read_text()) and p.poll() is None:
        assert time.monotonic() < deadline, "the run did not reach step 3"
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    saved = [os.path.basename(path) for _, path in ckpt_io.list_checkpoints(str(run))]
    assert len(saved) == 1 and "stopped by SIGINT after step" in log.read_text() and saved[0] in log.read_text()


def test_train_started_with_its_output_closed_still_says_its_error():
    """`train ... >&-` (Python's sys.stdout is then None): the error line on stderr, no traceback."""
    p = subprocess.run([sys.executable, "-m", "mobilenet_v1", "train", "--dataset_path=/no/such/folder"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=SRC), preexec_fn=lambda: os.close(1))
    assert p.returncode == 1 and "mobilenet-v1 train: error: " in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_an_exit_at_once_without_threads_or_without_stderr(tmp_path):
    """Where no thread can start, exit_now flushes and says its line in the calling thread; with stderr
    closed, the line is not written into whatever file took descriptor 2."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    r = subprocess.run([sys.executable, "-c", _NO_THREAD, SRC, "no thread"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (130, "buffered\n", "SIGINT again: stopping now\n"), r
    log = tmp_path / "log.txt"
    r = subprocess.run(f'"{sys.executable}" -c "$SCRIPT" "{SRC}" closed "{log}" 2>&-', shell=True, timeout=60,
                       capture_output=True, text=True, env={**env, "SCRIPT": _NO_THREAD})
    assert (r.returncode, r.stdout) == (130, "buffered\n"), r
    assert log.read_text() == ""


@pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "pthread_sigmask"), reason="POSIX fork and masks")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_while_a_loader_worker_starts_neither_ends_it_nor_counts_twice_for_the_run(signum):
    """A signal to the whole process group (a terminal's Ctrl-C, a scheduler's SIGTERM) while a loader worker
    starts, before its worker_init_fn (helper-386): SIGTERM met PyTorch's worker handler, which ends a worker its
    parent did not signal, and the run failed ("a data loader worker process ... ended unexpectedly") rather than
    stop; SIGINT ran the run's handler in the worker, whose inherited wakeup fd told the run of a second Ctrl-C
    ("SIGINT again: stopping now", no checkpoint). Forked under workers_starting, the worker takes it only once
    its handlers are in place. The fork here does what PyTorch's worker loop does: its handlers, then ours."""
    import socket

    from torch.utils.data._utils import signal_handling

    from mobilenet_v1 import stopping

    read, write = socket.socketpair()
    read.setblocking(False)
    write.setblocking(False)
    before_fd = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
    before = signal.signal(signum, lambda *a: None)  # the run's handler (StopRequest's records only)
    try:
        with stopping.workers_starting():
            pid = os.fork()
            if pid == 0:
                try:
                    signal_handling._set_worker_signal_handlers()  # PyTorch's worker loop starts with them
                    os.kill(os.getpid(), signum)  # the signal, in the window before the worker_init_fn
                    stopping.ignore_in_worker(0)
                    time.sleep(0.2)
                    os._exit(7)
                except BaseException:
                    os._exit(3)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, status  # served on, not ended
        try:
            told = read.recv(64)
        except BlockingIOError:
            told = b""
        # nothing told the run of the signal it did not get (SIGCHLD, the child's end, may be there: PyTorch's
        # handler of it, installed by an earlier loader of this process, is a Python one)
        assert signum not in told, list(told)
    finally:
        signal.signal(signum, before)
        signal.set_wakeup_fd(before_fd)
        read.close()
        write.close()


def test_loaders_resume_inside_an_epoch_with_the_same_batches(cifar_dir, image_folder, one_thread):
    """Starting an epoch at batch k gives exactly the batches k.. of a whole pass, in every loader, also
    with repeated augmentation and with class-balanced draws."""
    cases = [DataOptions("cifar10", str(cifar_dir), 16, 32, seed=3, num_workers=0, channels_last=False)]
    for pipeline in ("cpu", "gpu"):  # the GPU pipeline's code runs with the CPU as its device here
        cases.append(DataOptions("imagenet2012", str(image_folder), 3, 32, seed=3, num_workers=0,
                                 channels_last=False, pipeline=pipeline))
    cases += ([dataclasses.replace(opts, aug_repeats=3) for opts in cases]  # the copies' order too
              + [dataclasses.replace(opts, class_balance=1.0) for opts in cases])  # and draws with replacement
    for opts in cases:
        loader = build_loader(opts, train=True, device=torch.device("cpu"))
        loader.set_epoch(2)
        whole = list(loader)
        loader.set_epoch(2, start_batch=3)
        tail = list(loader)
        assert len(whole) == len(loader) and len(tail) == len(loader) - 3, opts
        for (x1, y1), (x2, y2) in zip(whole[3:], tail):
            assert torch.equal(x1, x2) and torch.equal(y1, y2)
        loader.set_epoch(3)  # the next epoch starts at its beginning again
        assert len(list(loader)) == len(whole)


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
@pytest.mark.parametrize("workers", [0, 1])
def test_an_image_folders_loaders_leave_the_global_generator_as_it_was(image_folder, pipeline, workers, one_thread):
    """A DataLoader draws its workers' base seed when an iteration starts; from torch's global generator, that
    drew once more in a run resumed inside an epoch (its checkpoint's generator state was saved after the
    epoch's draw), so its later checkpoints' rng["torch"] differed from a run's never stopped."""
    opts = DataOptions("imagenet2012", str(image_folder), 3, 32, seed=3, num_workers=workers, channels_last=False,
                       pipeline=pipeline)
    for train_split in (True, False):
        with build_loader(opts, train=train_split, device=torch.device("cpu"), drop_last=train_split) as loader:
            before = torch.get_rng_state()
            for epoch in (1, 2):
                loader.set_epoch(epoch)
                assert len(list(loader)) == len(loader)
            assert torch.equal(torch.get_rng_state(), before), (pipeline, workers, train_split)


# ---------------------------------------------------------------------------------------------------
# (c) untrusted files

class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_c_pickle_payload_is_refused_without_running(cifar_dir, tmp_path, capsys, one_thread):
    import pickle

    marker = tmp_path / "PWNED"
    state = MobileNetV1(class_num=4, width_mult=0.25).state_dict()
    zipped = tmp_path / "zipped.ckpt"
    torch.save({"model": state, "epoch": _Payload(marker)}, str(zipped))
    raw = tmp_path / "raw.ckpt"
    raw.write_bytes(pickle.dumps({"model": _Payload(marker)}))
    for path in (zipped, raw):
        with pytest.raises(ckpt_io.CheckpointError, match=str(path.name)):
            ckpt_io.load_file(str(path))
    # Through every way a file comes in: eval, pre_trained, resume PATH, and resume auto (passed over).
    run = tmp_path / "run"
    assert cli.main(["eval", f"--checkpoint_path={zipped}", f"--dataset_path={cifar_dir}", "--device_target=CPU",
                     "--image_size=32"]) == 1
    assert cli.main(["train", *run_args(cifar_dir, run, f"--pre_trained={zipped}", "--epoch_size=1")]) == 1
    assert cli.main(["train", *run_args(cifar_dir, run, f"--resume={raw}", "--epoch_size=1")]) == 1
    err = capsys.readouterr().err
    assert err.count("zipped.ckpt: cannot be read") == 2 and "raw.ckpt: cannot be read" in err
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2")]) == 0
    (run / "mobilenetv1-3_12.ckpt").write_bytes(zipped.read_bytes())  # planted as the newest
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")]) == 0
    out = capsys.readouterr().out
    assert "resume: passed over checkpoint" in out and "mobilenetv1-3_12.ckpt: cannot be read" in out
    assert f"continuing from {run / 'mobilenetv1-2_12.ckpt'}" in out and "training is complete" in out
    assert not marker.exists()


def test_resume_inside_an_epoch_of_data_that_changed_size_is_refused(cifar_dir, tmp_path, capsys, one_thread):
    """8 training records added after a kill keep 12 steps an epoch of 16 (192 -> 200 samples): the resumed
    epoch's order permuted 200 where the checkpoint's permuted 192, and --resume auto continued from inside it,
    saying "data order ... continue from there". The point inside the epoch is passed over for the epoch's end."""
    from mobilenet_v1.data import write_cifar_bin

    from conftest import class_images

    run = tmp_path / "run"
    argv = run_args(cifar_dir, run, "--epoch_size=2", "--save_checkpoint_epochs=1", "--save_checkpoint_steps=15",
                    "--resume=auto")
    assert cli.main(["train", *argv]) == 0
    inside = run / "mobilenetv1-2_3.ckpt"  # global step 15: 3 steps into epoch 2
    (run / "mobilenetv1-2_12.ckpt").unlink()  # the run killed after its step 15
    capsys.readouterr()
    labels = torch.arange(8).numpy() % 4
    write_cifar_bin(str(cifar_dir / CIFAR_TRAIN_FOLDER / "data_batch_3.bin"), class_images(labels, 3), labels)
    assert inside.exists()
    assert cli.main(["train", *argv]) == 0
    out = capsys.readouterr().out
    assert (f"passed over checkpoint {inside}: cannot continue this run: saved after 3 steps into epoch 2 of a run "
            f"over 192 training samples, this run's data holds 200") in out
    assert f"continuing from {run / 'mobilenetv1-1_12.ckpt'}" in out and "training: 200 samples, 12 steps" in out


def test_validation_names_what_is_wrong(cifar_dir, tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    train.run(load_config(run_args(cifar_dir, run, "--epoch_size=2", "--save_checkpoint_epochs=1")))
    cfg = load_config(SMALL)
    model, optimizer = fresh_model_and_optimizer(cfg)
    good = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 12) == (2, 0)

    def problem(mutate, spe=12, **given):
        ck = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
        mutate(ck)
        with pytest.raises(ckpt_io.CheckpointError) as e:
            ckpt_io.validate_training_checkpoint(ck, "x.ckpt", model, optimizer, spe, **given)
        assert "x.ckpt" in str(e.value)
        return str(e.value)

    assert "wrong dtype 1: fc.weight" in problem(lambda c: c["model"].update({"fc.weight": c["model"]["fc.weight"].double()}))
    assert "NaN or infinite values in 1: network.3.1.running_var" in problem(
        lambda c: c["model"]["network.3.1.running_var"].fill_(float("inf")))
    assert "momentum_buffer of parameter 0 holds NaN" in problem(
        lambda c: c["optimizer"]["state"][0]["momentum_buffer"].fill_(float("nan")))
    assert "missing 1: fc.bias" in problem(lambda c: c["model"].pop("fc.bias"))
    # A tensor the model has no place for (load_state_dict would raise its own traceback after the check).
    assert "model: unexpected 1: extra.weight" in problem(lambda c: c["model"].update({"extra.weight": torch.zeros(2)}))
    # The buffers of 1-dimensional parameters (BatchNorm's gamma and beta, the FC bias) are checked as the weights'.
    def spoil_bias_buffer(c, fill):
        pid = c["optimizer"]["param_groups"][1]["params"][-1]
        c["optimizer"]["state"][pid]["momentum_buffer"] = fill(c["optimizer"]["state"][pid]["momentum_buffer"])
        return pid
    bias_id = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))["optimizer"]["param_groups"][1]["params"][-1]
    assert f"momentum_buffer of parameter {bias_id} holds NaN" in problem(
        lambda c: spoil_bias_buffer(c, lambda b: b.fill_(float("nan"))))
    assert f"momentum_buffer of parameter {bias_id} is torch.float32 (3,)" in problem(
        lambda c: spoil_bias_buffer(c, lambda b: torch.zeros(3)))
    assert "not a training checkpoint (no optimizer)" in problem(lambda c: c.pop("optimizer"))
    # A position, loss scale or buffer no run writes. All 12 steps of epoch 2 done is epoch 2's end, which train
    # saves as epoch 2 and step 0 of epoch 3.
    assert "position: step_in_epoch 12 is not below steps_per_epoch 12" in problem(
        lambda c: c.update({"epoch": 1, "step": 24, "step_in_epoch": 12}))
    for scale in (0.0, -1024.0):  # GradScaler multiplies the loss by it: every gradient 0 or turned round
        assert f"scaler: loss scale {scale!r} is not a positive finite number" in problem(
            lambda c: c.update({"scaler": {"scale": scale}}))
    scaled = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    scaled["scaler"] = {"scale": 1024.0}
    assert ckpt_io.validate_training_checkpoint(scaled, "g", model, optimizer, 12) == (2, 0)
    def double_buffer(c):
        state = c["optimizer"]["state"][0]
        state["momentum_buffer"] = state["momentum_buffer"].double()

    assert "optimizer: momentum_buffer of parameter 0 is torch.float64" in problem(double_buffer)

    def old_file(c):  # from before samples_per_step, 3 steps into epoch 2: its config's 8 x 5 are one process's 40
        c.update({"epoch": 1, "step": 15, "step_in_epoch": 3, "config": {"batch_size": 8, "grad_accum_steps": 5}})
        c.pop("samples_per_step", None)

    old = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    old_file(old)
    # 80 samples a step are two such processes and continue it; 48 is no count of them.
    assert (ckpt_io.validate_training_checkpoint(old, "g", model, optimizer, 12, samples_per_step=80)
            == ckpt_io.validate_training_checkpoint(old, "g", model, optimizer, 12, samples_per_step=40) == (1, 3))
    assert "of a run whose steps took 40 samples a process" in problem(old_file, samples_per_step=48)
    # Another count of steps per epoch (a bad file removed from a small folder, another batch size or
    # process count): an epoch's end continues there, a point inside an epoch does not, and what does is said.
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 6) == (2, 0)
    inside = problem(lambda c: c.update({"epoch": 1, "step": 15, "step_in_epoch": 3}), spe=6)
    assert ("saved after 3 of the 12 steps of epoch 2, this run makes 6 steps an epoch" in inside
            and "resume from an epoch's end" in inside and "--pre_trained x.ckpt starts a new run" in inside)
    # Which of them, where the file records its samples a step (helper-241: a process count changed, unnamed).
    def inside_of(c):
        c.update({"epoch": 1, "step": 15, "step_in_epoch": 3})
        return c["samples_per_step"]

    ck = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    theirs = inside_of(ck)
    assert (f"(its steps took {theirs} samples, this run's take {2 * theirs}: another batch_size, grad_accum_steps "
            f"or device count)") in problem(inside_of, spe=6, samples_per_step=2 * theirs)
    assert f"(the same {theirs} samples a step: the data set holds another number of samples)" in problem(
        inside_of, spe=6, samples_per_step=theirs)
    # Another seed orders an epoch's samples otherwise: from inside one it would skip or repeat some.
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 12, seed=7) == (2, 0)
    reordered = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    reordered.update({"epoch": 1, "step": 15, "step_in_epoch": 3})
    assert ckpt_io.validate_training_checkpoint(reordered, "g", model, optimizer, 12, seed=1) == (1, 3)
    with pytest.raises(ckpt_io.CheckpointError, match=r"saved after 3 steps into epoch 2 of a run with seed 1, "
                                                      r"this run has seed 7, .* pass --seed 1, or resume from an "
                                                      r"epoch.s end"):
        ckpt_io.validate_training_checkpoint(reordered, "x.ckpt", model, optimizer, 12, seed=7)
    # So does another aug_repeats (a file from before the key ran with 1).
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 12, aug_repeats=3) == (2, 0)
    assert ckpt_io.validate_training_checkpoint(reordered, "g", model, optimizer, 12, aug_repeats=1) == (1, 3)
    with pytest.raises(ckpt_io.CheckpointError, match=r"saved after 3 steps into epoch 2 of a run with aug_repeats 1, "
                                                      r"this run has aug_repeats 3, .* pass --aug_repeats 1, or resume"):
        ckpt_io.validate_training_checkpoint(reordered, "x.ckpt", model, optimizer, 12, aug_repeats=3)
    reordered.pop("config")  # a file that records no configuration ran with 1: named, not a KeyError
    with pytest.raises(ckpt_io.CheckpointError, match=r"of a run with aug_repeats 1, this run has aug_repeats 3"):
        ckpt_io.validate_training_checkpoint(reordered, "x.ckpt", model, optimizer, 12, aug_repeats=3)
    # And class_balance (0 before the key): its draws are another order.
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 12, class_balance=0.5) == (2, 0)
    with pytest.raises(ckpt_io.CheckpointError, match=r"of a run with class_balance 0, this run has class_balance "
                                                      r"0.5, .* pass --class_balance 0, or resume"):
        ckpt_io.validate_training_checkpoint(reordered, "x.ckpt", model, optimizer, 12, class_balance=0.5)
    reordered["config"] = {"seed": 2, "class_balance": 1 / 3}  # every difference named, each value exactly
    with pytest.raises(ckpt_io.CheckpointError, match=r"of a run with seed 2, class_balance 0.3333333333333333, this "
                                                      r"run has seed 1, class_balance 0.5, .* pass --seed 2 "
                                                      r"--class_balance 0.3333333333333333, or resume"):
        ckpt_io.validate_training_checkpoint(reordered, "x.ckpt", model, optimizer, 12, seed=1, class_balance=0.5)
    # Another count of training samples at the same steps per epoch (files added to the folder or removed, a version
    # that read other files as images): the epoch's order permutes another number of them, so from inside an epoch
    # it would skip or repeat some. The run records its count; an epoch's end continues at any count.
    assert good[ckpt_io.TRAIN_SAMPLES] == 192  # cifar_dir's two training files of 96
    counted = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    counted.update({"epoch": 1, "step": 15, "step_in_epoch": 3})
    assert ckpt_io.validate_training_checkpoint(counted, "g", model, optimizer, 12, train_samples=192) == (1, 3)
    assert ckpt_io.validate_training_checkpoint(good, "g", model, optimizer, 12, train_samples=200) == (2, 0)
    with pytest.raises(ckpt_io.CheckpointError, match=r"x.ckpt: .*saved after 3 steps into epoch 2 of a run over 192 "
                                                      r"training samples, this run's data holds 200 .* skip or repeat "
                                                      r"some; resume from an epoch.s end"):
        ckpt_io.validate_training_checkpoint(counted, "x.ckpt", model, optimizer, 12, train_samples=200)
    counted.pop(ckpt_io.TRAIN_SAMPLES)  # a file from before the key does not say: continued as before
    assert ckpt_io.validate_training_checkpoint(counted, "g", model, optimizer, 12, train_samples=200) == (1, 3)
    assert "step 5 is not epoch 2 x 12 + 0" in problem(lambda c: c.update({"step": 5}))
    assert "step 24 is not epoch 2 x 12 + 0 + step_offset 3" in problem(lambda c: c.update({"step_offset": 3}))
    assert "step_offset '3' are not counts" in problem(lambda c: c.update({"step_offset": "3"}))
    assert "loss scale" in problem(lambda c: c.update({"scaler": {"scale": float("nan")}}))
    # An image folder that gained, lost or renamed a class folder would relabel the data mid-run.
    with_classes = lambda c: c.update({"classes": ["n01", "n02"]})  # noqa: E731
    ck = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    with_classes(ck)
    assert ckpt_io.validate_training_checkpoint(ck, "g", model, optimizer, 12, ["n01", "n02"]) == (2, 0)
    with pytest.raises(ckpt_io.CheckpointError, match=r"trained on 2 classes, the data set now names 3 "
                                                      r"\(new: n00\): the labels would change"):
        ckpt_io.validate_training_checkpoint(ck, "x.ckpt", model, optimizer, 12, ["n00", "n01", "n02"])
    with pytest.raises(ckpt_io.CheckpointError, match=r"now names 2 in another order"):
        ckpt_io.validate_training_checkpoint(ck, "x.ckpt", model, optimizer, 12, ["n02", "n01"])
    # Newest first, damaged ones passed over with the reason; none valid is an error, not a fresh start.
    newest = run / "mobilenetv1-2_12.ckpt"
    newest.write_bytes(newest.read_bytes()[:4096])
    capsys.readouterr()
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--save_checkpoint_epochs=1",
                                        "--resume=auto")]) == 0
    out = capsys.readouterr().out
    assert (f"passed over checkpoint {newest}: cannot be read as a PyTorch checkpoint (cut short: a zip archive "
            f"without the directory at its end, 4,096 bytes; copied or written in part?)") in out
    assert f"continuing from {run / 'mobilenetv1-1_12.ckpt'}" in out and "epoch: 2 step: 12" in out
    # Another padding: the same tensors, another network. Refused, not continued in silence.
    with pytest.raises(ckpt_io.CheckpointError, match=r"its run trained with padding same, this run with padding "
                                                      r"symmetric \(pass --padding same"):
        train.run(load_config(run_args(cifar_dir, run, "--epoch_size=2", "--padding=symmetric",
                                       f"--resume={run / 'mobilenetv1-1_12.ckpt'}")))
    # Another width: every layer's shape differs; one line says which width continues it.
    with pytest.raises(ckpt_io.CheckpointError, match=r"its run trained a network of width_mult 0.25, this run one "
                                                      r"of width_mult 0.5 \(pass --width_mult 0.25 to continue it\)$"):
        train.run(load_config(run_args(cifar_dir, run, "--epoch_size=2", "--width_mult=0.5",
                                       f"--resume={run / 'mobilenetv1-1_12.ckpt'}")))
    # Another class count: said as the option (it was the classifier's and its momentum's shapes; helper-291).
    with pytest.raises(ckpt_io.CheckpointError, match=r"its run trained a network of class_num 4, this run one of "
                                                      r"class_num 10 \(pass --class_num 4 to continue it;"):
        train.run(load_config(run_args(cifar_dir, run, "--epoch_size=2", "--class_num=10",
                                       f"--resume={run / 'mobilenetv1-1_12.ckpt'}")))
    # ... unless the data's classes changed too (a class folder added): the class list's check names the cause, as
    # before (helper-294: "pass --class_num 3", which the data then refused).
    photos = tmp_path / "photos"
    for cls in ("a", "b", "c"):
        (photos / cls).mkdir(parents=True)
        for i in range(2):
            (photos / cls / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(32, 32, seed=i)))
    folder_run = ["--dataset=imagenet2012", f"--dataset_path={photos}", "--batch_size=2"]
    train.run(load_config(run_args(cifar_dir, tmp_path / "frun", *folder_run, "--class_num=3", "--epoch_size=1")))
    shutil.copytree(photos / "a", photos / "d")
    with pytest.raises(ckpt_io.CheckpointError, match=r"cannot continue this run: trained on 3 classes, the data set "
                                                      r"now names 4 \(new: d\)"):  # the cause first, then shapes
        train.run(load_config(run_args(cifar_dir, tmp_path / "frun", *folder_run, "--class_num=4", "--epoch_size=2",
                                       f"--resume={tmp_path / 'frun' / 'mobilenetv1-1_3.ckpt'}")))
    # Another data set: CIFAR's labels and an image folder's are alike to the network; it went on, on other images.
    other = load_config(run_args(cifar_dir, run, "--dataset=imagenet2012", "--dataset_path=photos", "--class_num=4",
                                 f"--resume={run / 'mobilenetv1-1_12.ckpt'}"))
    with pytest.raises(ckpt_io.CheckpointError, match=rf"its run trained on dataset cifar10 "
                                                      rf"\({re.escape(str(cifar_dir))}\), "
                                                      r"this run on dataset imagenet2012 \(photos\): another data set "
                                                      r"\(pass --dataset cifar10 and its dataset_path to continue it;"):
        train.find_resume(other, *fresh_model_and_optimizer(other), 12, str(run))
    for _, p in ckpt_io.list_checkpoints(str(run)):
        open(p, "wb").close()
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")]) == 1
    assert "none of the 2 checkpoints" in capsys.readouterr().err


def test_a_fresh_run_moves_an_earlier_runs_checkpoints_aside_intact(cifar_dir, tmp_path, capsys, one_thread):
    """A new run (no --resume) in a folder with a longer run's checkpoints overwrote mobilenetv1-1_12,
    then pruned it as the oldest by name: it kept nothing of its own, and eval of the folder took the
    earlier run's epoch 3. Those files now move to earlier-run-1/, byte for byte."""
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_epochs=1")]) == 0
    earlier = {n: (run / n).read_bytes() for n in os.listdir(run) if n.endswith(".ckpt")}
    assert sorted(earlier) == ["mobilenetv1-1_12.ckpt", "mobilenetv1-2_12.ckpt", "mobilenetv1-3_12.ckpt"]
    capsys.readouterr()
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1", "--keep_checkpoint_max=2")]) == 0
    assert f"moved them to {run / 'earlier-run-1'}" in capsys.readouterr().out
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == ["mobilenetv1-1_12.ckpt"]
    assert {n: (run / "earlier-run-1" / n).read_bytes() for n in os.listdir(run / "earlier-run-1")} == earlier
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(run / "mobilenetv1-1_12.ckpt")
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 0  # and again: the next number
    assert sorted(os.listdir(run / "earlier-run-2")) == ["mobilenetv1-1_12.ckpt"]


def test_a_fresh_run_of_one_process_sets_a_distributed_runs_folder_aside(cifar_dir, tmp_path, capsys, one_thread):
    """A torchrun job writes into save_checkpoint_path/ckpt_0/, a run of one process into the folder itself;
    a fresh run of one process in a torchrun job's folder left ckpt_0/ where it was, which --resume auto under
    torchrun then continued, newer run or not. It now moves ckpt_0/ whole into earlier-run-N/. A folder left
    holding both (by an earlier version) is refused by name, not taken for either run. And device_num 2 in
    one process says it trains in one, and records 1."""
    run, dist_run = tmp_path / "run", tmp_path / "run" / "ckpt_0"
    assert cli.main(["train", *run_args(cifar_dir, dist_run, "--epoch_size=1")]) == 0  # stands for a torchrun job's
    earlier = {n: (dist_run / n).read_bytes() for n in os.listdir(dist_run)}
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(dist_run / "mobilenetv1-1_12.ckpt")
    # A run of one process training in ckpt_0/ itself (given as its folder) is not moved from under it.
    holder = ckpt_io.RunLock(str(dist_run))
    try:
        assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 1
    finally:
        holder.release()
    assert f"save_checkpoint_path {dist_run}: another run is training there" in capsys.readouterr().err
    assert {n: (dist_run / n).read_bytes() for n in os.listdir(dist_run)} == earlier
    assert not ckpt_io.list_checkpoints(str(run)) and not (run / "earlier-run-1").exists()
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1", "--device_num=2")]) == 0
    out = capsys.readouterr().out
    assert 'device_num 2: this is one process (torchrun starts more: README, "Several GPUs, several machines"); ' \
           'training in 1' in out
    assert (f"save_checkpoint_path {run} held an earlier distributed run in ckpt_0/, which eval, info and --resume "
            f"auto would take for this one's: moved that folder to {run / 'earlier-run-1'}") in out
    assert not dist_run.exists()
    assert {n: (run / "earlier-run-1" / n).read_bytes() for n in os.listdir(run / "earlier-run-1")} == earlier
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(run / "mobilenetv1-1_12.ckpt")
    assert "device_num: 1" in (run / ckpt_io.RUN_CONFIG).read_text()
    assert ckpt_io.move_other_layout_aside(str(run), str(run)) == ""  # nothing of the other layout left
    # Two runs in one folder, as an earlier version could leave them: named, not chosen between.
    dist_run.mkdir()
    shutil.copy(run / "mobilenetv1-1_12.ckpt", dist_run / "mobilenetv1-2_6.ckpt")
    with pytest.raises(ckpt_io.CheckpointError, match=rf"checkpoint folder {re.escape(str(run))}: holds the "
                                                      r"checkpoints of two runs, one of one process \(newest "
                                                      r"mobilenetv1-1_12.ckpt\) and a distributed one in ckpt_0/ "
                                                      r"\(newest mobilenetv1-2_6.ckpt\); name a checkpoint file, or "
                                                      rf"{re.escape(str(dist_run))} for the distributed run, or move "
                                                      r"one run's files into a folder of their own$"):
        ckpt_io.resolve_checkpoint_path(str(run))
    # A torchrun job's fresh start (out_dir ckpt_0/) sets the run of one process aside, its records with it.
    (run / "events.out.tfevents.1.host.1.0").write_bytes(b"")  # TensorBoard's, as the run itself may write one
    aside = ckpt_io.move_other_layout_aside(str(run), str(dist_run))
    assert aside == str(run / "earlier-run-2")
    moved = sorted(os.listdir(aside))
    assert [n for n in moved if not n.startswith("events.out.tfevents.")] == [
        "config.yaml", "log.txt", "metrics.jsonl", "mobilenetv1-1_12.ckpt"]
    assert "events.out.tfevents.1.host.1.0" in moved and not any(n.startswith("events.") for n in os.listdir(run))
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(dist_run / "mobilenetv1-2_6.ckpt")
    # A run continued from a checkpoint of the other layout's folder (--resume FILE) goes on in that folder, as
    # --resume auto does: it wrote its own beside that run's, a folder of two runs that eval and info refuse
    # (helper-246). Nothing moves; a torchrun restart of the job reads the folder again.
    other = tmp_path / "other"
    assert cli.main(["train", *run_args(cifar_dir, other / "ckpt_0", "--epoch_size=1")]) == 0
    capsys.readouterr()
    source = other / "ckpt_0" / "mobilenetv1-1_12.ckpt"
    assert cli.main(["train", *run_args(cifar_dir, other, "--epoch_size=2", f"--resume={source}")]) == 0
    out = capsys.readouterr().out
    assert "moved" not in out and f"resume: the checkpoints of this run are in {other / 'ckpt_0'}" in out
    assert source.is_file() and not ckpt_io.list_checkpoints(str(other))
    assert ckpt_io.resolve_checkpoint_path(str(other)) == str(other / "ckpt_0" / "mobilenetv1-2_12.ckpt")


def test_a_second_run_into_a_folder_in_use_is_refused_with_nothing_changed(cifar_dir, tmp_path, capsys, one_thread):
    """Two trains into one folder both exited 0, the second's checkpoints in place of the first's and their
    records interleaved. The folder is held by the run in it (a lock its process ends with, a kill -9 too)."""
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 0
    assert not (run / ckpt_io.RUN_LOCK).exists()  # the lock file goes with the run
    before = {n: (run / n).read_bytes() for n in os.listdir(run)}
    holder = ckpt_io.RunLock(str(run))  # another run's, in the same process: flock locks differ per open file
    capsys.readouterr()
    for extra in ([], ["--resume=auto", "--epoch_size=2"]):
        assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1", *extra)]) == 1
        err = capsys.readouterr().err
        assert re.search(rf"error: save_checkpoint_path {re.escape(str(run))}: another run is training there "
                         rf"\(process {os.getpid()} on \S+, since 20\d\d-\d\d-\d\d [\d:]+ [+-]\d{{4}}\); nothing was "
                         rf"trained or changed: let it end or stop it, or give another folder$", err.strip()), err
        assert {n: (run / n).read_bytes() for n in os.listdir(run) if n != ckpt_io.RUN_LOCK} == before
    holder.release()
    # A holder killed outright leaves its file, which locks nothing: the next run takes the folder.
    # Its forked loader workers, which outlive it a few seconds, hold no copy of the lock.
    code = (f"import os, sys, time; sys.path.insert(0, {SRC!r}); from mobilenet_v1.checkpoint import RunLock; "
            f"RunLock({str(run)!r}); child = os.fork()\nif child == 0: os.close(1); os.close(2); time.sleep(60); "
            f"os._exit(0)\n"
            f"print(child, flush=True); os.kill(os.getpid(), 9)")
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9 and (run / ckpt_io.RUN_LOCK).exists(), killed.stderr
    worker = int(killed.stdout)
    try:
        assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")]) == 0
    finally:
        os.kill(worker, signal.SIGKILL)
    assert ", epoch 2, precision" in capsys.readouterr().out and not (run / ckpt_io.RUN_LOCK).exists()


def test_a_second_train_run_while_one_is_under_way_in_the_process_is_refused(cifar_dir, tmp_path, monkeypatch,
                                                                             one_thread):
    """Two train.run at once in one process (a sweep's thread pool, a web service) share its global random
    generators, which each run seeds and draws from, and the output print0 copies into each run's log.txt: both
    finished, each with other weights than the same run alone, each log.txt holding the other's lines, and
    sys.stderr left as a run's copy of it. The second is refused, naming the thread of the first; the first goes
    on, alone."""
    import threading

    from mobilenet_v1 import tracking

    alone = train.run(load_config(run_args(cifar_dir, tmp_path / "alone", "--epoch_size=1")))
    stderr = sys.stderr
    under_way, tried, first = threading.Event(), threading.Event(), {}
    log_step = tracking.RunLogger.log_step

    def waiting(self, *args, **kwargs):  # the first run, at its first step, waits for the second's try
        under_way.set()
        assert tried.wait(300)
        return log_step(self, *args, **kwargs)

    def train_first():
        try:
            first["result"] = train.run(load_config(run_args(cifar_dir, tmp_path / "first", "--epoch_size=1")))
        finally:
            under_way.set()

    monkeypatch.setattr(tracking.RunLogger, "log_step", waiting)
    thread = threading.Thread(target=train_first, name="sweep-1")
    thread.start()
    try:
        assert under_way.wait(300)
        monkeypatch.setattr(tracking.RunLogger, "log_step", log_step)
        pid = os.fork()  # a process forked meanwhile (a sweep's pool) is free to train
        if pid == 0:
            code = 1
            try:
                code = 0 if train._UNDER_WAY.acquire(blocking=False) else 1
            finally:
                os._exit(code)  # never back into pytest
        assert os.waitpid(pid, 0)[1] == 0
        with pytest.raises(RuntimeError, match=r"^train.run: another run is under way in this process \(thread "
                                               r"sweep-1\): .* one after another, or each in a process of its own"):
            train.run(load_config(run_args(cifar_dir, tmp_path / "second", "--epoch_size=1")))
    finally:
        tried.set()
        thread.join()
    assert not (tmp_path / "second").exists() and sys.stderr is stderr
    assert str(tmp_path / "second") not in (tmp_path / "first" / "log.txt").read_text()
    trained, expected = (ckpt_io.load_file(r["checkpoint"])["model"] for r in (first["result"], alone))
    assert all(torch.equal(trained[k], expected[k]) for k in expected)
    # That run over, the next one trains.
    after = train.run(load_config(run_args(cifar_dir, tmp_path / "next", "--epoch_size=1")))
    assert os.path.isfile(after["checkpoint"])


def writing(out):
    """A process in the middle of atomic_output's write of ``out`` (its work folder made), and its temporary file."""
    code = (f"import sys, time; sys.path.insert(0, {SRC!r}); from mobilenet_v1 import checkpoint as c\n"
            f"with c.atomic_output({str(out)!r}) as tmp, c.work_folder(tmp) as work:\n"
            f"    open(tmp, 'wb').write(b'half'); print(tmp, flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return writer, writer.stdout.readline().strip()


def test_a_temporary_file_is_removed_once_its_writer_is_killed_and_never_while_it_lives(tmp_path):
    """atomic_output's temporary file (and the work folder beside it) is locked while its process writes it: the
    next export or quantize into the folder (remove_partial_files without a run's lock) leaves it while that
    process lives, and removes both once a kill -9 ended it. A folder it made stays while the file is in it."""
    out = tmp_path / "new" / "m.onnx"
    writer, tmp = writing(out)
    try:
        assert os.path.dirname(tmp) == str(out.parent) and os.path.isdir(tmp + ".d"), tmp
        for held in (False, True):
            assert ckpt_io.remove_partial_files(str(out.parent), ckpt_io.DEPLOYED_PARTIALS, held=held) == []
        assert sorted(os.listdir(out.parent)) == [os.path.basename(tmp), os.path.basename(tmp) + ".d"]
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert ckpt_io.remove_partial_files(str(out.parent), ckpt_io.DEPLOYED_PARTIALS, held=False) == [tmp]
    assert os.listdir(out.parent) == []


def test_a_file_named_up_to_the_file_systems_limit_is_written_and_a_killed_writers_file_removed(tmp_path):
    """The temporary file's name is the file's with 14 bytes more: an output named with 240 bytes or more (legal
    up to 255) could not be written by any command ("File name too long", said of the file asked for). Its
    shortened name keeps the extension the partial files' patterns look for; the next write of the file removes
    what a killed one left."""
    for name in ("é" * 125 + ".onnx", "x" * 255):
        out = tmp_path / name
        assert len(os.fsencode(name)) == 255
        writer, tmp = writing(out)
        try:
            assert os.path.isfile(tmp) and os.path.isdir(tmp + ".d"), tmp
        finally:
            writer.kill()
            writer.wait()
        if name.endswith(".onnx"):
            assert ckpt_io.partial_files(str(tmp_path), ckpt_io.DEPLOYED_PARTIALS) == [tmp]
        ckpt_io.atomic_save_text("whole", str(out))
        assert os.listdir(tmp_path) == [name] and out.read_text() == "whole"
        out.unlink()


def test_a_run_continued_from_another_folder_or_a_later_epoch_keeps_the_folders_earlier_run_apart(
        cifar_dir, tmp_path, capsys, one_thread):
    """--resume FILE of another folder into a folder holding another run: that run's checkpoints before
    FILE's point stayed (so --resume auto could later take one, and its best stood as this run's best),
    and its metrics of those epochs read as this run's. They now move aside whole and its records are
    dropped, as for a fresh run; so for a fresh run that starts at a later epoch (pretrain_epoch_size) from
    another folder's weights."""
    a, y = tmp_path / "a", tmp_path / "y"
    assert cli.main(["train", *run_args(cifar_dir, a, "--epoch_size=1")]) == 0
    other = ["--epoch_size=2", "--save_checkpoint_epochs=1", "--eval_interval=1"]
    assert cli.main(["train", *run_args(cifar_dir, y, *other, "--seed=7")]) == 0
    capsys.readouterr()
    start = a / "mobilenetv1-1_12.ckpt"
    assert cli.main(["train", *run_args(cifar_dir, y, "--epoch_size=2", f"--resume={start}")]) == 0
    out = capsys.readouterr().out
    assert f"resume: save_checkpoint_path {y} held the checkpoints of another run than that of {start}" in out
    assert sorted(os.listdir(y / "earlier-run-1")) == ["mobilenetv1-1_12.ckpt", "mobilenetv1-2_12.ckpt",
                                                       ckpt_io.BEST_NAME]
    assert [p for _, p in ckpt_io.list_checkpoints(str(y))] == [str(y / "mobilenetv1-2_12.ckpt")]
    assert [r["epoch"] for r in read_metrics(str(y))["epochs"]] == [2]  # not the other run's epoch 1
    assert cli.main(["train", *run_args(cifar_dir, y, *other)]) == 0  # a run of its own again, then
    assert cli.main(["train", *run_args(cifar_dir, y, "--epoch_size=2", f"--pre_trained={start}",
                                        "--pretrain_epoch_size=1")]) == 0
    assert [r["epoch"] for r in read_metrics(str(y))["epochs"]] == [2]
    assert all("top_1" not in r for r in read_metrics(str(y))["epochs"])
    # The seed's way to go on in the same folder (pre_trained its own checkpoint): its history stays.
    assert cli.main(["train", *run_args(cifar_dir, y, "--epoch_size=3", f"--pre_trained={y / 'mobilenetv1-2_12.ckpt'}",
                                        "--pretrain_epoch_size=2")]) == 0
    assert [r["epoch"] for r in read_metrics(str(y))["epochs"]] == [2, 3]


def test_a_run_from_its_own_folders_checkpoint_continues_there_and_never_moves_that_file_aside(
        cifar_dir, tmp_path, capsys, one_thread):
    """The seed's way to go on in the same folder (--pre_trained one of its checkpoints, --pretrain_epoch_size
    its epochs) kept the folder's records as its history but moved its checkpoints aside as for a fresh run,
    the pre_trained file among them: the path its checkpoints and config.yaml record then named nothing, and
    the same command run again (a restart) stopped at a missing file. It now continues as a resume does: only
    what came after that epoch moves aside. A run that would move the file aside (pretrain_epoch_size 0,
    below the file's epoch, or a file of a torchrun job's ckpt_0/ beside a run of one process) is refused
    before anything moves."""
    y = tmp_path / "y"
    assert cli.main(["train", *run_args(cifar_dir, y, "--epoch_size=3", "--save_checkpoint_epochs=1",
                                        "--keep_checkpoint_max=5")]) == 0
    start = y / "mobilenetv1-2_12.ckpt"
    before = {name: (y / name).read_bytes() for name in os.listdir(y) if (y / name).is_file()}
    capsys.readouterr()
    for at in ("0", "1"):
        assert cli.main(["train", *run_args(cifar_dir, y, "--epoch_size=4", f"--pre_trained={start}",
                                            f"--pretrain_epoch_size={at}")]) == 1
        err = capsys.readouterr().err
        assert f"pre_trained {start}: a checkpoint of save_checkpoint_path {y} that this run would move aside" in err
        assert ("--pretrain_epoch_size N, the epochs it was saved after" in err) == (at == "0")
        assert {name: (y / name).read_bytes() for name in os.listdir(y) if (y / name).is_file()} == before
    args = run_args(cifar_dir, y, "--epoch_size=4", "--keep_checkpoint_max=5", f"--pre_trained={start}",
                    "--pretrain_epoch_size=2")
    assert cli.main(["train", *args]) == 0
    assert f"pre_trained: mobilenetv1-3_12.ckpt in {y} came after {start}, from training that this run supersedes: " \
           f"moved to {y / 'earlier-run-1'}" in capsys.readouterr().out
    assert os.listdir(y / "earlier-run-1") == ["mobilenetv1-3_12.ckpt"]
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(y))] == \
        ["mobilenetv1-1_12.ckpt", "mobilenetv1-2_12.ckpt", "mobilenetv1-4_12.ckpt"]
    assert (y / "mobilenetv1-2_12.ckpt").read_bytes() == before["mobilenetv1-2_12.ckpt"]
    assert [r["epoch"] for r in read_metrics(str(y))["epochs"]] == [1, 2, 3, 4]
    os.unlink(y / "mobilenetv1-4_12.ckpt")  # killed in epoch 4: the same command again finds its file
    assert cli.main(["train", *args]) == 0
    # A checkpoint of a torchrun job's ckpt_0/, which a run of one process in the folder above moves aside whole.
    z = tmp_path / "z"
    (z / ckpt_io.DISTRIBUTED_SUBFOLDER).mkdir(parents=True)
    shutil.copy(start, z / ckpt_io.DISTRIBUTED_SUBFOLDER / start.name)
    capsys.readouterr()
    assert cli.main(["train", *run_args(cifar_dir, z, "--epoch_size=4", "--pretrain_epoch_size=2",
                                        f"--pre_trained={z / ckpt_io.DISTRIBUTED_SUBFOLDER / start.name}")]) == 1
    assert f"(it is of the earlier run in {z / ckpt_io.DISTRIBUTED_SUBFOLDER}, which a run of one process moves " \
           f"aside)" in capsys.readouterr().err
    assert os.listdir(z) == [ckpt_io.DISTRIBUTED_SUBFOLDER]


@pytest.mark.parametrize("given", ["file", "folder"])
def test_a_restarted_job_given_resume_continues_from_its_own_newer_checkpoint(cifar_dir, tmp_path, capsys,
                                                                              monkeypatch, one_thread, given):
    """torchrun --max-restarts runs the same command line again: with --resume FILE (or another run's
    folder) the restarted job went back there and lost the epochs it had saved since. It now takes its
    own newer checkpoint; a first attempt (no restart) takes what it was given, and (FILE) that file
    still wins over an older checkpoint of the run's folder."""
    first, run = tmp_path / "first", tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, first, "--epoch_size=1")]) == 0
    start = str(first / "mobilenetv1-1_12.ckpt")
    args = run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_epochs=1", "--keep_checkpoint_max=5",
                    f"--resume={start if given == 'file' else first}")
    assert train.run(load_config(args))["resumed_from"] == start
    os.unlink(run / "mobilenetv1-3_12.ckpt")  # killed in epoch 3
    assert train.run(load_config(args))["resumed_from"] == start  # no restart: as asked
    os.unlink(run / "mobilenetv1-3_12.ckpt")
    as_restarted(monkeypatch)
    capsys.readouterr()
    assert train.run(load_config(args))["resumed_from"] == str(run / "mobilenetv1-2_12.ckpt")
    assert "torchrun restart 1: run/mobilenetv1-2_12.ckpt, saved by this job" in capsys.readouterr().out.replace(
        str(tmp_path) + os.sep, "")
    if given == "folder":
        return
    for name in ("mobilenetv1-2_12.ckpt", "mobilenetv1-3_12.ckpt"):
        os.unlink(run / name)  # only a checkpoint before FILE's is left
    os.rename(first / "mobilenetv1-1_12.ckpt", tmp_path / "start.ckpt")
    older = cli.main(["train", *run_args(cifar_dir, first, "--epoch_size=1", "--save_checkpoint_steps=6",
                                         "--keep_checkpoint_max=5")])
    assert older == 0 and (first / "mobilenetv1-1_6.ckpt").is_file()
    os.replace(first / "mobilenetv1-1_6.ckpt", run / "mobilenetv1-1_6.ckpt")
    back = run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_epochs=1", "--keep_checkpoint_max=5",
                    f"--resume={tmp_path / 'start.ckpt'}")
    assert train.run(load_config(back))["resumed_from"] == str(tmp_path / "start.ckpt")


def test_a_run_sent_back_moves_what_came_after_aside_and_a_restart_keeps_to_its_own(cifar_dir, tmp_path, capsys,
                                                                                  monkeypatch, one_thread):
    """A 3-epoch run, then sent back to its epoch 1 in the same folder. Epochs 2 and 3 and the best
    checkpoint (epoch 3's) belong to the training it discards: they move, byte for byte, into
    earlier-run-1/ (the run would overwrite them under the same names, and a best left there would
    stay the best of a history without its epoch). The run dies after saving its own epoch 2; torchrun's
    restart, repeating --resume FILE, goes on from that epoch 2, not from the old epoch 3."""
    run = tmp_path / "run"
    args = run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_epochs=1", "--keep_checkpoint_max=5",
                    "--eval_interval=1")
    assert cli.main(["train", *args]) == 0
    superseded = ckpt_io.load_file(str(run / "mobilenetv1-3_12.ckpt"))
    superseded["metrics"] = {"top_1": 1.0, "top_5": 1.0}  # unbeatable: left in place, it would stay the best
    ckpt_io.atomic_save(superseded, str(run / ckpt_io.BEST_NAME))
    later = ["mobilenetv1-2_12.ckpt", "mobilenetv1-3_12.ckpt", ckpt_io.BEST_NAME]
    before = {name: (run / name).read_bytes() for name in later}
    save = train.CheckpointWriter.save

    def save_then_die(self, epoch, in_epoch, name="", extra=None):
        path = save(self, epoch, in_epoch, name, extra)
        if epoch == 2 and not name:
            raise RuntimeError("killed after saving epoch 2")
        return path

    monkeypatch.setattr(train.CheckpointWriter, "save", save_then_die)
    back = args + [f"--resume={run / 'mobilenetv1-1_12.ckpt'}"]
    capsys.readouterr()
    with pytest.raises(RuntimeError, match="killed after saving epoch 2"):
        train.run(load_config(back))
    assert f"from training that this run supersedes: moved to {run / 'earlier-run-1'}" in capsys.readouterr().out
    assert {name: (run / "earlier-run-1" / name).read_bytes() for name in later} == before
    own = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    assert own["step"] == 24 and not (run / "mobilenetv1-3_12.ckpt").exists()
    best = ckpt_io.load_file(str(run / ckpt_io.BEST_NAME))  # epoch 2's evaluation: the only one since
    assert best["step"] == 24 and best["metrics"]["top_1"] < 1.0

    monkeypatch.setattr(train.CheckpointWriter, "save", save)
    as_restarted(monkeypatch)
    assert train.run(load_config(back))["resumed_from"] == str(run / "mobilenetv1-2_12.ckpt")
    assert not (run / "earlier-run-2").exists()  # nothing came after the point it resumed from
    assert ckpt_io.load_file(str(run / "mobilenetv1-3_12.ckpt"))["step"] == 36


def test_what_a_resume_point_supersedes(tmp_path):
    """After 5 of the 10 steps of epoch 2: the checkpoints named after that point and a best saved
    later (as a share of epochs, whatever its steps per epoch) move aside; the rest stays."""
    model = {"w": torch.zeros(1)}
    for name in ("mobilenetv1-1_10.ckpt", "mobilenetv1-2_5.ckpt", "mobilenetv1-2_10.ckpt", "mobilenetv1-3_4.ckpt"):
        ckpt_io.atomic_save({"model": model}, str(tmp_path / name))
    best = str(tmp_path / ckpt_io.BEST_NAME)
    at_point = {"epoch": 1, "step_in_epoch": 5, "steps_per_epoch": 10}
    ckpt_io.atomic_save({"model": model, **at_point}, best)  # saved at that very point
    aside, names = ckpt_io.move_superseded(str(tmp_path), 1, 5, 10)
    assert aside == str(tmp_path / "earlier-run-1") and names == ["mobilenetv1-2_10.ckpt", "mobilenetv1-3_4.ckpt"]
    assert sorted(os.listdir(tmp_path / "earlier-run-1")) == names and os.path.isfile(best)
    for saved, moved in (({"epoch": 1, "step_in_epoch": 6, "steps_per_epoch": 10}, True),
                         ({"epoch": 1, "step_in_epoch": 4, "steps_per_epoch": 8}, False),  # 1.5 epochs too
                         ({"epoch": 1, "step_in_epoch": 5, "steps_per_epoch": 8}, True),
                         ({"epoch": 2, "steps_per_epoch": 4}, True), ({"epoch": 1}, False),
                         ({"step": 12}, False), ({}, False)):
        ckpt_io.atomic_save({"model": model, **saved}, best)
        aside, names = ckpt_io.move_superseded(str(tmp_path), 1, 5, 10)
        assert (names == [ckpt_io.BEST_NAME]) == moved and os.path.isfile(best) != moved, saved
        if moved:
            os.replace(os.path.join(aside, ckpt_io.BEST_NAME), best)
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(tmp_path))] == [
        "mobilenetv1-1_10.ckpt", "mobilenetv1-2_5.ckpt"]
    # From the end of epoch 2 at 10 steps (the resumed run may make another number): what is named after
    # epoch 2 came after it, whatever its number; epoch 2's own files came before it or are it.
    for name in ("mobilenetv1-2_10.ckpt", "mobilenetv1-3_4.ckpt", "mobilenetv1-3_20.ckpt"):
        ckpt_io.atomic_save({"model": model}, str(tmp_path / name))
    aside, names = ckpt_io.move_superseded(str(tmp_path), 2, 0, 10)
    assert names == ["mobilenetv1-3_4.ckpt", "mobilenetv1-3_20.ckpt"]
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(tmp_path))] == [
        "mobilenetv1-1_10.ckpt", "mobilenetv1-2_5.ckpt", "mobilenetv1-2_10.ckpt"]


def test_the_best_epochs_checkpoints_up_to_a_resume_point_stay(tmp_path):
    """mobilenetv1-top-E.ckpt holds the state at epoch E's end: a resume from epoch 2's end, or from inside
    epoch 3, keeps top-2 (of the history it continues) and moves top-3 aside."""
    for e in (1, 2, 3):
        (tmp_path / ckpt_io.top_name(e)).write_bytes(b"")
    assert ckpt_io.superseded_files(str(tmp_path), 2, 0, 10) == ["mobilenetv1-top-3.ckpt"]
    assert ckpt_io.superseded_files(str(tmp_path), 2, 5, 10) == ["mobilenetv1-top-3.ckpt"]
    assert ckpt_io.superseded_files(str(tmp_path), 1, 5, 10) == ["mobilenetv1-top-2.ckpt", "mobilenetv1-top-3.ckpt"]


def test_pruning_keeps_the_newest_two_even_at_keep_checkpoint_max_1_and_the_spare(tmp_path):
    """keep_checkpoint_max 1 is allowed, and pruning still keeps two: the file being written next replaces
    none of them until it is whole."""
    names = ["mobilenetv1-1_10.ckpt", "mobilenetv1-2_10.ckpt", "mobilenetv1-3_4.ckpt", "mobilenetv1-3_8.ckpt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = ckpt_io.prune_checkpoints(str(tmp_path), 1, spare=str(tmp_path / "mobilenetv1-2_10.ckpt"))
    assert [os.path.basename(p) for p in removed] == ["mobilenetv1-1_10.ckpt"]
    assert sorted(os.listdir(tmp_path)) == names[1:]


def test_pruning_keeps_exactly_the_newest_keep_checkpoint_max_by_epoch_then_step_as_a_number(tmp_path):
    """keep_checkpoint_max 3 of six saves: the three newest stay, ordered by epoch and then by the step in the name
    as a number (3_10 is after 3_8), the others are removed, oldest first."""
    names = ["mobilenetv1-1_10.ckpt", "mobilenetv1-2_10.ckpt", "mobilenetv1-3_4.ckpt", "mobilenetv1-3_8.ckpt",
             "mobilenetv1-3_10.ckpt", "mobilenetv1-10_10.ckpt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = ckpt_io.prune_checkpoints(str(tmp_path), 3)
    assert [os.path.basename(p) for p in removed] == names[:3]
    assert sorted(os.listdir(tmp_path)) == sorted(names[3:])


def test_a_folder_with_checkpoints_of_its_own_stands_for_itself_beside_an_empty_ckpt_0(tmp_path):
    """A distributed run stopped before its first save leaves an empty ckpt_0/: a run of one process in the same
    folder since is still that folder's run; without checkpoints of its own the folder stands for its ckpt_0/."""
    (tmp_path / "ckpt_0").mkdir()
    (tmp_path / "mobilenetv1-1_10.ckpt").write_bytes(b"")
    assert ckpt_io.run_folder(str(tmp_path)) == str(tmp_path)
    os.unlink(tmp_path / "mobilenetv1-1_10.ckpt")
    assert ckpt_io.run_folder(str(tmp_path)) == str(tmp_path / "ckpt_0")


def test_a_refused_resume_leaves_the_runs_config_yaml(cifar_dir, tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 0
    before = (run / "config.yaml").read_text()
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--width_mult=0.5", "--resume=auto")]) == 1
    err = capsys.readouterr().err  # not "none of the 1 checkpoints"; the reason in the error itself (stdout held it)
    assert f"resume auto: the one checkpoint in {run} cannot continue this run: checkpoint " in err
    assert "width_mult 0.25, this run one of width_mult 0.5" in err and "or move it away to start afresh" in err
    assert (run / "config.yaml").read_text() == before


def test_a_resume_on_another_number_of_processes_says_what_it_changes(cifar_dir, tmp_path, capsys, one_thread):
    """A checkpoint of 2 processes of 16 resumed inside its epoch by 1 process of 32: the same global batch, so
    the same steps and data order, and it went on without a word; yet BatchNorm's statistics, a process's batch
    without sync_bn, now take 32 images where that job's took 16. The resume says so (from the device_num the
    file's configuration records: a 2-process job's records 2); with sync_bn the statistics were the global
    batch's already, and it says that they stay."""
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--batch_size=32", "--epoch_size=1",
                                        "--save_checkpoint_steps=3")]) == 0  # 6 steps an epoch
    ckpt = ckpt_io.load_file(str(run / "mobilenetv1-1_3.ckpt"))
    assert ckpt["config"]["device_num"] == 1 and ckpt["samples_per_step"] == 32
    for sync_bn, said in ((False, "BatchNorm's training statistics are over 32 images a batch (the one process's "
                                  "batch) where that run's were over 16 (each process's own batch), so it does not "
                                  "go on as that run would have (resume it on 2 processes at batch_size 16 for "
                                  "that)"),
                          (True, "BatchNorm's training statistics are over 32 images a batch as that run's were (the "
                                 "global batch, sync_bn; the one process's batch here)")):
        job = tmp_path / f"job_{sync_bn}.ckpt"
        ckpt_io.atomic_save({**ckpt, "config": {**ckpt["config"], "device_num": 2, "batch_size": 16,
                                                "sync_bn": sync_bn}}, str(job))
        capsys.readouterr()
        assert cli.main(["train", *run_args(cifar_dir, tmp_path / f"resumed_{sync_bn}", "--batch_size=32",
                                            "--epoch_size=1", f"--resume={job}")]) == 0
        out = capsys.readouterr().out
        assert (f"resume: {job} was written 3 steps into epoch 1 by a run of 2 processes at batch_size 16, this run "
                f"has 1 at 32: {said}") in out, out
    capsys.readouterr()
    assert cli.main(["train", *run_args(cifar_dir, tmp_path / "same", "--batch_size=32", "--epoch_size=1",
                                        f"--resume={run / 'mobilenetv1-1_3.ckpt'}")]) == 0
    assert "processes at batch_size" not in capsys.readouterr().out  # the same count: nothing to say


def test_a_resume_inside_an_epoch_at_another_batch_size_of_the_same_steps_says_what_it_changes(cifar_dir, tmp_path,
                                                                                                capsys, one_thread):
    """batch_size 8 x grad_accum_steps 2 resumed inside its epoch as 16 x 1: the same steps, samples a step and
    data order, so it goes on; yet BatchNorm's statistics now take 16 images a batch where that run's took 8,
    and it went on without a word (as a resume on another number of processes used to)."""
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--batch_size=8", "--grad_accum_steps=2", "--epoch_size=1",
                                        "--save_checkpoint_steps=3")]) == 0  # 6 steps an epoch
    capsys.readouterr()
    source = run / "mobilenetv1-1_3.ckpt"
    assert cli.main(["train", *run_args(cifar_dir, tmp_path / "resumed", "--batch_size=16", "--epoch_size=1",
                                        f"--resume={source}")]) == 0
    out = capsys.readouterr().out
    assert (f"resume: {source} was written 3 steps into epoch 1 by a run of 1 process at batch_size 8, this run has "
            f"1 at 16: BatchNorm's training statistics are over 16 images a batch (the one process's batch) where "
            f"that run's were over 8 (the one process's batch), so it does not go on as that run would have (resume "
            f"it on 1 process at batch_size 8 and grad_accum_steps 2 for that)") in out, out


def test_an_epoch_end_resumes_at_another_number_of_steps_per_epoch(cifar_dir, tmp_path, capsys, monkeypatch,
                                                                    one_thread):
    """Twice the batch (say, twice the GPUs): from an epoch's end the schedule goes on from the next
    epoch's start in the new count and the global step counts on (records, TensorBoard, saves every N
    steps). The pruning spared that epoch's end among saves inside epochs; those saved after it, of the
    old count, are passed over and moved aside. A further resume at the new count keeps counting."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    # 12 steps an epoch; a save every 5 global steps, the newest two kept; a record every 5 steps.
    common = ["--save_checkpoint_epochs=1", "--save_checkpoint_steps=5", "--keep_checkpoint_max=2",
              "--log_interval=5"]
    save = train.CheckpointWriter.save

    def save_then_die(self, epoch, in_epoch, name="", extra=None):
        path = save(self, epoch, in_epoch, name, extra)
        if (epoch, in_epoch) == (2, 6):
            raise RuntimeError("killed after saving step 6 of epoch 3")
        return path

    monkeypatch.setattr(train.CheckpointWriter, "save", save_then_die)
    with pytest.raises(RuntimeError, match="killed after saving"):
        train.run(load_config(run_args(cifar_dir, run, "--epoch_size=3", *common)))
    monkeypatch.setattr(train.CheckpointWriter, "save", save)
    names = [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))]
    assert names == ["mobilenetv1-2_12.ckpt", "mobilenetv1-3_1.ckpt", "mobilenetv1-3_6.ckpt"]  # 2_12 spared
    assert ckpt_io.load_file(str(run / "mobilenetv1-3_6.ckpt"))["epoch_end"] == "mobilenetv1-2_12.ckpt"
    time.sleep(1.01 - time.time() % 1.0)  # TensorBoard's files in name order: see test_tracking
    capsys.readouterr()
    args = run_args(cifar_dir, run, "--epoch_size=4", "--batch_size=32", *common, "--resume=auto")
    result = train.run(load_config(args))
    out = capsys.readouterr().out
    assert "passed over checkpoint " + str(run / "mobilenetv1-3_6.ckpt") in out and "resume from an epoch's end" in out
    assert result["resumed_from"] == str(run / "mobilenetv1-2_12.ckpt") and result["steps_per_epoch"] == 6
    assert ("was written at 12 steps per epoch of 16 samples, this run makes 6 of 32: the schedule continues at "
            in out and "from the start of epoch 3 (step 13 of this run's), the global step from 25" in out)
    # A longer schedule too: its rate is named at the global step.
    assert "epoch_size 3 -> 4; step 25 trains at" in out
    assert sorted(os.listdir(run / "earlier-run-1")) == ["mobilenetv1-3_1.ckpt", "mobilenetv1-3_6.ckpt"]
    # Epochs 3 and 4 are global steps 25 to 36: saves at 25 (3_1), 30 (3_6, the end), 35 (4_5), 36 (4_6).
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == [
        "mobilenetv1-4_5.ckpt", "mobilenetv1-4_6.ckpt"]
    inside = ckpt_io.load_file(str(run / "mobilenetv1-4_5.ckpt"))
    assert (inside["step"], inside["step_in_epoch"], inside["epoch_end"]) == (35, 5, "mobilenetv1-3_6.ckpt")
    last = ckpt_io.load_file(str(run / "mobilenetv1-4_6.ckpt"))
    assert (last["epoch"], last["step"], last["step_offset"], last["steps_per_epoch"]) == (4, 36, 12, 6)
    history = read_metrics(str(run))
    assert [r["step"] for r in history["steps"]] == [5, 10, 12, 15, 20, 24, 25, 30, 35, 36]
    assert [r["epoch"] for r in history["steps"]][6:] == pytest.approx([13 / 6, 3, 23 / 6, 4], abs=1e-6)
    assert [(r["epoch"], r["step"]) for r in history["epochs"]] == [(1, 12), (2, 24), (3, 30), (4, 36)]
    # The rates are the new schedule's at the same epochs: its steps 18 and 24 end epochs 3 and 4.
    lr = train.schedule(load_config(args), 6, 32)
    assert [r["lr"] for r in history["epochs"][2:]] == pytest.approx([float(lr[17]), float(lr[23])], rel=1e-6)
    events = EventAccumulator(str(run))
    events.Reload()  # the killed run's steps after 24 hidden, its earlier ones kept
    assert [e.step for e in events.Scalars("train/loss")] == [5, 10, 12, 15, 20, 24, 25, 30, 35, 36]
    # At the new count the offset carries on: one more epoch is global steps 37 to 42.
    train.run(load_config(args[:-1] + ["--epoch_size=5", "--resume=auto"]))
    further = ckpt_io.load_file(str(run / "mobilenetv1-5_6.ckpt"))
    assert (further["step"], further["step_offset"]) == (42, 12)
    assert [r["step"] for r in read_metrics(str(run))["epochs"]] == [12, 24, 30, 36, 42]


def test_a_resume_inside_an_epoch_still_spares_the_epochs_end(cifar_dir, tmp_path, monkeypatch, one_thread):
    """Saves every 5 steps, the newest two kept: a run killed inside epoch 3 and resumed there (the same
    count) keeps sparing epoch 2's end, which the checkpoint it resumed from names, through later saves."""
    run = tmp_path / "run"
    args = run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_epochs=1", "--save_checkpoint_steps=5",
                    "--keep_checkpoint_max=2", "--log_interval=0")
    save = train.CheckpointWriter.save

    def dies_after(point):
        def save_then_die(self, epoch, in_epoch, name="", extra=None):
            path = save(self, epoch, in_epoch, name, extra)
            if (epoch, in_epoch) == point:
                raise RuntimeError("killed")
            return path
        return save_then_die

    for point, resume in (((2, 1), []), ((2, 11), ["--resume=auto"])):
        monkeypatch.setattr(train.CheckpointWriter, "save", dies_after(point))
        with pytest.raises(RuntimeError, match="killed"):
            train.run(load_config(args + resume))
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == [
        "mobilenetv1-2_12.ckpt", "mobilenetv1-3_6.ckpt", "mobilenetv1-3_11.ckpt"]


def test_a_distributed_runs_checkpoints_continue_in_one_process_in_its_ckpt_0(cifar_dir, tmp_path, capsys,
                                                                             one_thread):
    """--resume auto in one process with a distributed run's save_checkpoint_path (checkpoints in its
    ckpt_0/, none beside it) continues that run there rather than start over beside it."""
    run = tmp_path / "run"
    train.run(load_config(run_args(cifar_dir, run / "ckpt_0", "--epoch_size=1", "--save_checkpoint_epochs=1")))
    capsys.readouterr()
    result = train.run(load_config(run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")))
    out = capsys.readouterr().out
    assert f"the checkpoints of this run are in {run / 'ckpt_0'}, written by a distributed run" in out
    assert result["resumed_from"] == str(run / "ckpt_0" / "mobilenetv1-1_12.ckpt")
    assert result["checkpoint"] == str(run / "ckpt_0" / "mobilenetv1-2_12.ckpt")
    assert sorted(os.listdir(run)) == ["ckpt_0"]
    # A run started afresh beside it and killed before its first checkpoint (its config.yaml is there)
    # is relaunched with --resume auto: it starts again in its own folder, not in the other run's, which
    # it sets aside whole, as a fresh run does (eval and info of the folder then take this run's).
    (run / ckpt_io.RUN_CONFIG).write_text((run / "ckpt_0" / ckpt_io.RUN_CONFIG).read_text())
    capsys.readouterr()
    assert train.run(load_config(run_args(cifar_dir, run, "--epoch_size=1", "--resume=auto")))["resumed_from"] == ""
    out = capsys.readouterr().out
    assert f"no checkpoint in {run} yet, starting from the beginning" in out
    assert f"moved that folder to {run / 'earlier-run-1'}" in out
    assert (run / "mobilenetv1-1_12.ckpt").is_file() and (run / "earlier-run-1" / "mobilenetv1-2_12.ckpt").is_file()
    # A folder whose only checkpoint is a best one (killed before its first numbered save): --resume auto
    # starts again, and says why the earlier run's file moves aside (it said "no --resume").
    best_only = tmp_path / "best_only"
    best_only.mkdir()
    shutil.copy(run / "mobilenetv1-1_12.ckpt", best_only / ckpt_io.BEST_NAME)
    capsys.readouterr()
    result = train.run(load_config(run_args(cifar_dir, best_only, "--epoch_size=1", "--resume=auto")))
    assert result["resumed_from"] == ""
    out = capsys.readouterr().out
    assert (f"held the checkpoints of an earlier run, which this one does not continue (--resume auto found no "
            f"checkpoint of it to continue from): moved them to {best_only / 'earlier-run-1'}") in out


def test_checkpoint_names_sort_by_step_number(tmp_path):
    for name in ("mobilenetv1-3_12.ckpt", "mobilenetv1-3_4.ckpt", "mobilenetv1-10_2.ckpt", "mobilenetv1-3_10.ckpt",
                 ".mobilenetv1-3_6.ckpt.abc.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(tmp_path))] == [
        "mobilenetv1-3_4.ckpt", "mobilenetv1-3_10.ckpt", "mobilenetv1-3_12.ckpt", "mobilenetv1-10_2.ckpt"]
    assert [os.path.basename(p) for p in ckpt_io.remove_partial_files(str(tmp_path))] == [".mobilenetv1-3_6.ckpt.abc.tmp"]


# ---------------------------------------------------------------------------------------------------
# (d) bad data

def add_bad_files(root):
    good = jpeg_bytes(smooth_image(64, 64, 5))
    folder = root / "train" / "n02"
    (folder / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    (folder / "empty.JPEG").write_bytes(b"")
    (folder / "text.JPEG").write_text("this is not an image\n")
    return {"truncated.JPEG", "empty.JPEG", "text.JPEG"}


# Worker processes decode (or read) the files: the count is kept in the main process all the same.
@pytest.mark.parametrize("pipeline,workers,device", [("cpu", 2, "cpu"), ("gpu", 0, "cpu")] + (
    [("gpu", 2, "cuda"), ("cpu", 2, "cuda")] if torch.cuda.is_available() else []))
def test_d_unreadable_images_are_skipped_counted_and_past_the_limit_stop(image_folder, tmp_path, capsys, pipeline,
                                                                         workers, device, one_thread):
    bad = add_bad_files(image_folder)
    # The eval loader sees every file once: the batches hold every readable file, none repeated.
    opts = DataOptions("imagenet2012", str(image_folder / "train"), 4, 32, seed=1, num_workers=workers,
                       channels_last=False, pipeline=pipeline, max_bad_samples=3)
    # Closed at the block's end: left open, its persistent workers were shut down by a garbage collection
    # in a later test, which then waited 20 s for them.
    with build_loader(opts, train=False, device=torch.device(device), drop_last=False) as loader, \
            pytest.warns(BadSampleWarning) as caught:
        total = sum(y.numel() for _, y in loader)
    assert total == 15 and len(loader.bad_samples) == 3
    assert {os.path.basename(p) for p in loader.bad_samples.files} == bad
    assert all(any(name in str(w.message) for w in caught) for name in bad)

    args = ["--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=3", f"--device_target={'GPU' if device == 'cuda' else 'CPU'}",
            f"--num_workers={workers}",
            f"--data_pipeline={pipeline}", "--epoch_size=2", f"--save_checkpoint_path={tmp_path / 'run'}"]
    with pytest.warns(BadSampleWarning):
        result = train.run(load_config(args + ["--max_bad_samples=3"]))
    assert result["bad_samples"] == 3 and os.path.exists(result["checkpoint"])
    assert "skipped 3 unreadable image file(s) so far (max_bad_samples 3)" in capsys.readouterr().out
    with pytest.warns(BadSampleWarning), pytest.raises(DataError) as e:
        train.run(load_config(args + ["--max_bad_samples=2"]))
    assert "3 image files could not be read, more than max_bad_samples 2" in str(e.value)
    assert all(name in str(e.value) for name in bad)
    # The default, 0.1% of 18 files, tolerates none: the first bad file stops the run.
    with pytest.warns(BadSampleWarning), pytest.raises(DataError, match=r"max_bad_samples 0 \(0.1% of 18 files\)"):
        train.run(load_config(args))


def test_d_a_run_stopped_by_the_limit_saves_where_it_stopped_and_goes_on_from_there(image_folder, tmp_path,
                                                                                     capsys, one_thread):
    """A small folder's run (the limit 0) stopped at its one bad file with nothing saved since the last epoch's
    end of save_checkpoint_epochs (a helper's fine-tuning lost its epoch 1 this way). The state after the steps
    done is saved first, and --resume auto with the limit raised ends where a run with that limit ends."""
    good = jpeg_bytes(smooth_image(64, 64, 5))
    (image_folder / "train" / "n02" / "truncated.JPEG").write_bytes(good[: len(good) // 2])
    args = ["--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=3", "--device_target=CPU", "--num_workers=0", "--epoch_size=2",
            "--save_checkpoint_epochs=5", "--seed=2", "--lr_max=0.05", "--warmup_epochs=0"]
    run = tmp_path / "run"
    with pytest.warns(BadSampleWarning):
        assert cli.main(["train", *args, f"--save_checkpoint_path={run}"]) == 1
    err = capsys.readouterr().err
    saved = [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))]
    assert len(saved) == 1 and "1 image file could not be read, more than max_bad_samples 0" in err, err
    epoch, step = (int(n) for n in saved[0][len("mobilenetv1-"):-len(".ckpt")].split("_"))
    at = f"after step {step} of epoch {epoch}" if step < 6 else f"at the end of epoch {epoch}"
    assert (f"the state {at} is saved as {run / saved[0]}: with the files fixed or --max_bad_samples raised, "
            f"--resume auto continues from it") in err
    with pytest.warns(BadSampleWarning):
        resumed = train.run(load_config(args + [f"--save_checkpoint_path={run}", "--resume=auto",
                                                "--max_bad_samples=1"]))
        whole = train.run(load_config(args + [f"--save_checkpoint_path={tmp_path / 'whole'}", "--max_bad_samples=1"]))
    assert resumed["resumed_from"] == str(run / saved[0])
    for name, value in ckpt_io.model_state(ckpt_io.load_file(whole["checkpoint"])).items():
        assert torch.equal(value, ckpt_io.model_state(ckpt_io.load_file(resumed["checkpoint"]))[name]), name


def test_a_data_error_at_an_epochs_first_batch_saves_its_evaluated_end_owing_nothing():
    """The limit passed at epoch 2's first batch: epoch 1 ended and was evaluated before it, so its end is saved
    owing no evaluation (it said "(before its evaluation)", marked the file so, "that evaluation first"); passed in
    an epoch's leftover batches, after all its steps, the end is saved before its evaluation, which it owes."""
    from mobilenet_v1 import distributed

    class Writer:
        steps_per_epoch, saved = 7, []

        def save(self, epoch, done, extra=None):
            self.saved.append((epoch, done, extra))
            return f"run/{ckpt_io.checkpoint_name(epoch, 7)}"

    cfg = load_config(["--eval_interval=1", "--epoch_size=3"])
    then = "with the files fixed or --max_bad_samples raised, --resume auto continues from it"
    for done, said, extra in ((0, f"at the end of epoch 1 is saved as run/mobilenetv1-1_7.ckpt: {then}", None),
                              (7, f"at the end of epoch 2 (before its evaluation) is saved as run/mobilenetv1-2_7.ckpt"
                                  f": {then}, that evaluation first", {train.EVALUATION_LEFT_OUT: True})):
        error, writer = DataError("unreadable"), Writer()
        error.steps_done, writer.saved = done, []
        got = train.saved_before_data_error(error, writer, 1, (0, 0), "", None, cfg, distributed.Context(),
                                            torch.device("cpu"))
        assert str(got) == f"unreadable\nthe state {said}"
        assert writer.saved == [(1 + done // 7, 0, extra)]


def test_d_an_unreadable_evaluation_file_saves_the_epoch_before_the_run_stops(image_folder, tmp_path, capsys,
                                                                              one_thread):
    """A bad file in the eval split stopped the run at its first evaluation with nothing saved (helper-111: every
    epoch since the last checkpoint lost). The epoch's end is saved first, its evaluation left out, with its
    record; --resume auto with the limit raised evaluates it first and ends where a run with that limit ends."""
    (image_folder / "validation_preprocess" / "n01" / "empty.JPEG").write_bytes(b"")
    args = ["--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--image_size=32",
            "--width_mult=0.25", "--batch_size=3", "--device_target=CPU", "--num_workers=0", "--epoch_size=2",
            "--save_checkpoint_epochs=5", "--eval_interval=1", "--seed=2", "--lr_max=0.05", "--warmup_epochs=0"]
    run = tmp_path / "run"
    with pytest.warns(BadSampleWarning):
        assert cli.main(["train", *args, f"--save_checkpoint_path={run}"]) == 1
    err = capsys.readouterr().err
    saved = [p for _, p in ckpt_io.list_checkpoints(str(run))]
    assert len(saved) == 1 and os.path.basename(saved[0]).startswith("mobilenetv1-1_"), saved
    assert ckpt_io.load_file(saved[0])["evaluation_left_out"] is True
    assert (f"the state at the end of epoch 1 (before its evaluation) is saved as {saved[0]}: with the files fixed "
            f"or --max_bad_samples raised, --resume auto continues from it, that evaluation first") in err, err
    # Resumed with the file still there: the owed evaluation stops it again, saying the checkpoint still owes it.
    with pytest.warns(BadSampleWarning), pytest.raises(DataError, match=rf"{saved[0]} still owes epoch 1's "
                                                                          r"evaluation: with the files fixed"):
        train.run(load_config(args + [f"--save_checkpoint_path={run}", "--resume=auto"]))
    with pytest.warns(BadSampleWarning):
        resumed = train.run(load_config(args + [f"--save_checkpoint_path={run}", "--resume=auto",
                                                "--max_bad_samples=1"]))
        whole = train.run(load_config(args + [f"--save_checkpoint_path={tmp_path / 'whole'}", "--max_bad_samples=1"]))
    assert resumed["resumed_from"] == saved[0]
    for name, value in ckpt_io.model_state(ckpt_io.load_file(whole["checkpoint"])).items():
        assert torch.equal(value, ckpt_io.model_state(ckpt_io.load_file(resumed["checkpoint"]))[name]), name
    records = [read_metrics(str(folder))["epochs"] for folder in (tmp_path / "whole", run)]
    assert [(r["epoch"], r["mean_loss"], r["top_1"]) for r in records[1]] == \
        [(r["epoch"], r["mean_loss"], r["top_1"]) for r in records[0]] and len(records[0]) == 2


def test_d_the_limit_passed_in_an_epochs_leftover_batches_counts_every_step_done(one_thread):
    """With grad_accum_steps 2, the 5th of 5 batches is read after the epoch's 2 steps and trained on by none:
    the limit passed there said no step (nothing was saved), where every step of the epoch had trained."""
    class StopsAt(Batches):
        def __iter__(self):
            yield from self.batches[:-1]
            raise DataError("1 image file could not be read, more than max_bad_samples 0")

    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
    ok = (torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    args = (torch.nn.CrossEntropyLoss(), optimizer, make_scaler("fp32", torch.device("cpu"), 1.0), [0.01] * 2,
            torch.device("cpu"), "fp32")
    for batches, done in (([ok] * 5, 2), ([ok] * 3, 1)):  # in the leftover batch; while reading step 2's
        with pytest.raises(DataError) as e:
            train_one_epoch(model, StopsAt(batches), *args, accumulate=2)
        assert e.value.steps_done == done


def test_d_an_epochs_end_saved_for_the_limit_before_its_evaluation_says_so(tmp_path):
    """The limit passed in an epoch's leftover batches saves the epoch's end before its evaluation: the
    checkpoint records that the evaluation was left out (a resume makes it first), as a signal's does; not
    where the run does not evaluate after that epoch, nor inside an epoch."""
    saved = []

    class Writer:
        steps_per_epoch = 12

        def save(self, epoch, in_epoch, extra=None):
            saved.append((epoch, in_epoch, extra))
            return str(tmp_path / f"saved-{len(saved)}")

    error = DataError("2 image files could not be read, more than max_bad_samples 1")
    tally = train.LossTally(torch.device("cpu"))
    for interval, done, want in ((1, 12, {"evaluation_left_out": True}), (2, 12, None), (1, 5, "epoch_loss")):
        error.steps_done = done
        cfg = load_config(["--dataset_path=x", f"--eval_interval={interval}", "--epoch_size=4"])
        said = train.saved_before_data_error(error, Writer(), 0, (0, 0), "", tally, cfg,
                                             train.distributed.Context(), torch.device("cpu"))
        epoch, in_epoch, extra = saved[-1]
        assert (epoch, in_epoch) == ((1, 0) if done == 12 else (0, 5)) and "is saved as" in str(said)
        assert (sorted(extra) == [want] if isinstance(want, str) else extra == want), (interval, done)


def test_d_damaged_cifar_file_is_refused_at_start(cifar_dir, tmp_path, capsys):
    f = cifar_dir / CIFAR_TRAIN_FOLDER / "data_batch_2.bin"
    f.write_bytes(f.read_bytes()[:-100])
    assert cli.main(["train", *run_args(cifar_dir, tmp_path / "run", "--epoch_size=1")]) == 1
    assert "data_batch_2.bin" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_truncated_jpeg_is_seen_before_the_gpu_decoder():
    data = jpeg_bytes(smooth_image(40, 50, 2))
    assert T.jpeg_frame(data).complete and T.jpeg_frame(data + b"\0" * 64).complete
    assert not any(T.jpeg_frame(data[:n]).complete for n in (len(data) - 1, len(data) - 2, len(data) // 2, 100))


# ---------------------------------------------------------------------------------------------------
# (e) non-finite steps are skipped: weights, momentum and BatchNorm statistics stay as they were

class Batches:
    """A fixed list of batches with the loader's face."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision,fused,poison,opt", [
    ("fp16", None, "overflow", "momentum"), ("fp32", True, "nan", "momentum"), ("fp32", False, "nan", "momentum"),
    ("bf16", True, "inf", "momentum"),
    # AdamW fused as on CUDA (skipped through found_inf: its step counts must not move) and on its own;
    # RMSprop has no fused kernel: the guard skips its step
    ("fp32", True, "nan", "adamw"), ("fp16", True, "overflow", "adamw"), ("fp32", False, "inf", "rmsprop"),
    ("fp16", None, "overflow", "rmsprop"),
    # LARS and LAMB skip through found_inf on every device (their step counts and buffers must not move)
    ("fp32", None, "nan", "lars"), ("fp32", None, "inf", "lamb"), ("fp16", None, "overflow", "lamb")])
def test_e_non_finite_step_is_skipped_and_weights_stay_finite(device, precision, fused, poison, opt, one_thread):
    device = torch.device(device)
    torch.manual_seed(0)
    model = MobileNetV1(class_num=4, width_mult=0.25).to(device)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, device, opt, fused=fused)
    scaler = make_scaler(precision, device, 1024.0)
    guard = NonFiniteGuard(model, optimizer, device, max_in_a_row=3)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 32, 32, generator=g).to(device), torch.randint(0, 4, (8,), generator=g).to(device))
               for _ in range(4)]
    x, y = batches[1]
    # fp16 overflow: values past 65504 become inf inside the fp16 convolution.
    bad_x = {"overflow": x * 1e6, "nan": x.clone().fill_(float("nan")), "inf": x * float("inf")}[poison]
    batches[1] = (bad_x, y)
    states = []
    scales = []
    train_one_epoch(model, Batches(batches), torch.nn.CrossEntropyLoss(), optimizer, scaler, [0.05] * 4, device,
                    precision, on_step=lambda i, loss, lr: (states.append(snapshot(model, optimizer)),
                                                            scales.append(scaler.get_scale())), guard=guard)
    assert guard.sync() == {"in_a_row": 0, "total": 1, "longest": 1}
    assert same(states[0], states[1])  # step 2 skipped: weights, BN statistics and momentum unchanged
    assert not same(states[1], states[2]) and not same(states[2], states[3])
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())
    if precision == "fp16":
        assert scales[1] == scales[0] / 2  # the scaler lowered its scale for the overflow


def test_guard_stops_after_max_in_a_row_and_counts(one_thread):
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"), max_in_a_row=3, hint="Look at the teacher.")
    nan = (torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
    ok = (torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    args = (torch.nn.CrossEntropyLoss(), optimizer, make_scaler("fp32", torch.device("cpu"), 1.0), [0.01] * 8,
            torch.device("cpu"), "fp32")
    train_one_epoch(model, Batches([nan, nan, ok, nan, nan]), *args, guard=guard)  # two in a row: fine
    assert guard.sync() == {"in_a_row": 2, "total": 4, "longest": 2}
    with pytest.raises(NonFiniteError, match=r"3 training steps in a row had a non-finite loss or gradient .* steps "
                                             r"were skipped in all\. Look at the teacher\.$"):
        train_one_epoch(model, Batches([nan, ok]), *args, guard=guard)


def test_guard_that_stops_at_one_step_says_it_in_the_singular(one_thread):
    """max_nonfinite_steps 1: the stop said "1 training steps in a row ... 1 steps were skipped in all"."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"), max_in_a_row=1)
    nan = (torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
    with pytest.raises(NonFiniteError, match=r"^1 training step in a row had a non-finite loss or gradient "
                                             r"\(max_nonfinite_steps 1\); .* 1 step was skipped in all\.$"):
        train_one_epoch(model, Batches([nan]), torch.nn.CrossEntropyLoss(), optimizer,
                        make_scaler("fp32", torch.device("cpu"), 1.0), [0.01], torch.device("cpu"), "fp32",
                        guard=guard)


@pytest.mark.parametrize("opt,fused", [("momentum", True), ("momentum", False), ("lars", None)])
def test_an_update_that_overflows_the_weights_stops_at_once(opt, fused, one_thread):
    """lr 1e30: every loss and gradient finite until the update makes the weights infinite. The guard used to
    see only the NaN losses after it, skip them and say the weights were those from before them."""
    torch.manual_seed(0)
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 1e30, 0.9, 1e-4, torch.device("cpu"), opt, fused=fused)
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"), max_in_a_row=10)
    guard.last_good = lambda: "run/mobilenetv1-1_4.ckpt"
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(6)]
    losses = []
    with pytest.raises(NonFiniteError, match=r"^the weights became NaN or infinite at an optimiser step whose loss "
                                             r"and gradients were finite \(step 2 since .*lower lr_max.* The last "
                                             r"good checkpoint: run/mobilenetv1-1_4\.ckpt\.$"):
        train_one_epoch(model, Batches(batches), torch.nn.CrossEntropyLoss(), optimizer,
                        make_scaler("fp32", torch.device("cpu"), 1.0), [1e30] * 6, torch.device("cpu"), "fp32",
                        on_step=lambda i, loss, lr: losses.append(float(loss)), guard=guard)
    # Stopped inside the step that broke them (on the CPU the flag is read at once), none skipped before it.
    assert len(losses) == 1 and math.isfinite(losses[0]) and guard.seen["total"] == 0


def test_only_an_update_that_overflows_is_blamed_and_fp16_overflow_at_a_finite_loss_blames_the_loss_scale(
        one_thread):
    """fp16 from loss_scale 1e30: every loss finite, every scaled gradient past 65504; the run stopped saying
    "lower lr_max". Inputs that overflow the forward pass (a non-finite loss) still get that, and so do NaN
    weights from before any step (every step skipped): no update made them."""
    def stopped(batches, scale, precision="fp16", nan_weights=False):
        torch.manual_seed(0)
        model = MobileNetV1(class_num=4, width_mult=0.25)
        if nan_weights:
            with torch.no_grad():
                model.network[0][0].weight.fill_(float("nan"))
        optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
        guard = NonFiniteGuard(model, optimizer, torch.device("cpu"), max_in_a_row=3)
        losses = []
        with pytest.raises(NonFiniteError, match=r"^3 training steps in a row had a non-finite loss or gradient") as e:
            train_one_epoch(model, Batches(batches), torch.nn.CrossEntropyLoss(), optimizer,
                            make_scaler(precision, torch.device("cpu"), scale), [0.05] * 4, torch.device("cpu"),
                            precision, on_step=lambda i, loss, lr: losses.append(float(loss)), guard=guard)
        return str(e.value), losses

    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(4)]
    message, losses = stopped(batches, 1e30)
    assert all(map(math.isfinite, losses))
    # 1e30, halved after each of the three: the third ran at 2.5e29 (the message said the first's as "now")
    assert re.search(r"overflowed once scaled by the loss scale .*the last of them ran at 2\.5e\+29\): the loss scale "
                     r"is far too high\. Lower loss_scale \(the seed's is 1024\)", message) and "lr_max" not in message
    message, losses = stopped([(x * 1e6, y) for x, y in batches], 1024.0)  # past 65504 in the forward pass
    assert "lower lr_max, check the data" in message and "loss scale" not in message
    message, _ = stopped(batches, 1.0, "fp32", nan_weights=True)
    assert "lower lr_max, check the data" in message and "weights became" not in message


def test_a_run_whose_update_overflows_stops_naming_the_last_good_checkpoint(cifar_dir, tmp_path, capsys, one_thread):
    """Warming up from 0 to lr_max 1e30: step 1 (lr 0) is saved; the next update makes the weights infinite.
    The run used to train on with them until a checkpoint refused to be written."""
    run = tmp_path / "run"
    args = run_args(cifar_dir, run, "--epoch_size=1", "--warmup_epochs=1", "--lr_init=0", "--lr_max=1e30",
                    "--save_checkpoint_steps=1")
    assert cli.main(["train", *args]) == 1
    err = capsys.readouterr().err
    assert "the weights became NaN or infinite at an optimiser step whose loss and gradients were finite" in err
    # Step 2's update (lr 8e28) leaves them huge but finite, and is saved; step 3's overflows them.
    names = [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))]
    assert names == ["mobilenetv1-1_1.ckpt", "mobilenetv1-1_2.ckpt"]
    assert "(step 3 since this run started or resumed)" in err
    assert f"The last good checkpoint: {run / 'mobilenetv1-1_2.ckpt'}." in err
    kept = ckpt_io.load_file(str(run / "mobilenetv1-1_2.ckpt"))
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())


def test_an_epochs_mean_loss_leaves_out_the_skipped_steps_not_finite_loss(one_thread):
    """Counted as 0, a skipped step's NaN loss lowered the epoch's mean (half the steps skipped: half the loss)."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.01, 0.9, 1e-4, torch.device("cpu"))
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"))
    nan = (torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
    ok = (torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    args = (torch.nn.CrossEntropyLoss(), optimizer, make_scaler("fp32", torch.device("cpu"), 1.0), [0.01] * 4,
            torch.device("cpu"), "fp32")
    losses = []
    result = train_one_epoch(model, Batches([ok, nan, ok, nan]), *args, guard=guard,
                             on_step=lambda i, loss, lr: losses.append(float(loss)))
    assert math.isnan(losses[1]) and math.isnan(losses[3]) and result.steps == 4 and result.mean_steps == 2
    assert result.mean_loss == pytest.approx((losses[0] + losses[2]) / 2, rel=1e-6)
    result = train_one_epoch(model, Batches([nan, nan]), *args, guard=guard)
    assert math.isnan(result.mean_loss) and result.mean_steps == 0  # no loss to average: not 0


def test_a_resume_with_a_lower_limit_is_not_stopped_by_a_streak_that_ended_before(one_thread):
    """A checkpoint of a run that skipped 6 steps in a row and recovered, resumed with max_nonfinite_steps 5:
    the resumed run trains on; a streak still in progress at the checkpoint goes on counting."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"), max_in_a_row=5)
    guard.load_state_dict({"in_a_row": 0, "total": 6, "longest": 6})
    nan = (torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
    ok = (torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    args = (torch.nn.CrossEntropyLoss(), optimizer, make_scaler("fp32", torch.device("cpu"), 1.0), [0.01] * 8,
            torch.device("cpu"), "fp32")
    train_one_epoch(model, Batches([ok, nan]), *args, guard=guard)
    assert guard.sync() == {"in_a_row": 1, "total": 7, "longest": 1}
    guard.load_state_dict({"in_a_row": 4, "total": 6, "longest": 6})
    with pytest.raises(NonFiniteError, match=r"^5 training steps in a row"):
        train_one_epoch(model, Batches([nan, ok]), *args, guard=guard)


def test_a_step_skipped_on_purpose_is_not_counted_even_when_not_finite_and_has_no_gradient_norm(one_thread):
    """``skip`` (a stand-in batch, engine.train_one_epoch): the step changes nothing and is not counted against
    max_nonfinite_steps, even where the stand-in's own loss is NaN; its gradient norm is NaN, not the norm of
    the stand-in's gradients."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = make_optimizer(model, 0.1, 0.9, 0.0, cpu)
    guard = NonFiniteGuard(model, optimizer, cpu, max_in_a_row=1)  # one counted step would stop it
    scaler = make_scaler("fp32", cpu, 1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for value in (1.0, float("nan")):  # a stand-in of finite values, then one of NaN
        guard.begin()
        loss = model(torch.full((4, 3), value)).sum()
        loss.backward()
        guard.step(loss, scaler, skip=True)
        assert math.isnan(float(guard.grad_norm()))
        optimizer.zero_grad()
    assert guard.sync() == {"in_a_row": 0, "total": 0, "longest": 0}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_fused_sgd_whose_first_step_is_skipped_then_steps_from_zero_momentum(one_thread):
    """SGD's fused kernel skips a step through found_inf; at a first step it would leave freshly allocated
    momentum buffers unwritten, which the next step reads. The guard gives SGD zero buffers before any step,
    so the first good step after a skipped one is a plain first step: buffer = gradient."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2, bias=False)
    start = model.weight.detach().clone()
    optimizer = make_optimizer(model, 0.5, 0.9, 0.0, cpu, fused=True)
    guard = NonFiniteGuard(model, optimizer, cpu)
    assert torch.equal(optimizer.state[model.weight]["momentum_buffer"], torch.zeros(2, 3))
    scaler = make_scaler("fp32", cpu, 1.0)
    for value in (float("nan"), 1.0):
        loss = model(torch.full((1, 3), value)).sum()
        loss.backward()
        guard.step(loss, scaler)
        optimizer.zero_grad()
    assert guard.sync() == {"in_a_row": 0, "total": 1, "longest": 1}
    # d(sum(W x))/dW is 1 everywhere for x of ones: W - lr * 1
    assert torch.allclose(model.weight.detach(), start - 0.5)


def test_non_finite_losses_after_one_loss_scale_overflow_are_not_blamed_on_the_loss_scale(one_thread):
    """A streak whose first step overflowed the fp16 gradients at a finite loss and whose others had a NaN
    loss is not the loss scale's doing: only a streak of such overflows as long as the limit is."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = MobileNetV1(class_num=4, width_mult=0.25)
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, cpu)
    guard = NonFiniteGuard(model, optimizer, cpu, max_in_a_row=3)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 4, (8,), generator=g)
    batches = [(x, y)] + [(torch.full_like(x, float("nan")), y)] * 2
    losses = []
    with pytest.raises(NonFiniteError, match=r"^3 training steps in a row") as e:
        train_one_epoch(model, Batches(batches), torch.nn.CrossEntropyLoss(), optimizer,
                        make_scaler("fp16", cpu, 1e30), [0.05] * 3, cpu, "fp16", guard=guard,
                        on_step=lambda i, loss, lr: losses.append(float(loss)))
    assert math.isfinite(losses[0]) and math.isnan(losses[1])  # the first an overflow at a finite loss
    assert "lower lr_max, check the data" in str(e.value) and "loss scale" not in str(e.value)


def test_distributed_epoch_without_guard_is_refused_before_any_step(one_thread, monkeypatch):
    """Without the guard a rank whose batch lost its samples would skip alone and leave the others
    waiting in DDP's all-reduce: refused at once with a message, not a hang."""
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)
    model = MobileNetV1(class_num=4, width_mult=0.25)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = make_optimizer(model, 0.05, 0.9, 1e-4, torch.device("cpu"))
    batch = (torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="a distributed run needs guard"):
        train_one_epoch(model, Batches([batch]), torch.nn.CrossEntropyLoss(), optimizer,
                        make_scaler("fp32", torch.device("cpu"), 1.0), [0.01], torch.device("cpu"), "fp32")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------------------------------------------
# (f) a NaN-producing batch sequence stops the run; the last good checkpoint stays

class NaNFrom:
    """Wraps the run's loader: from global step ``first`` on, every batch is NaN."""

    def __init__(self, loader, first):
        self.loader, self.first, self.epoch, self.start = loader, first, 0, 0

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __len__(self):
        return len(self.loader)

    def set_epoch(self, epoch, start_batch=0):
        self.epoch, self.start = epoch, start_batch
        self.loader.set_epoch(epoch, start_batch)

    def __iter__(self):
        for b, (x, y) in enumerate(self.loader, self.start):
            yield (x.clone().fill_(float("nan")) if self.epoch * len(self) + b >= self.first else x), y


@pytest.mark.parametrize("device", DEVICES)
def test_f_nan_batches_stop_the_run_and_keep_the_last_good_checkpoint(cifar_dir, tmp_path, monkeypatch, capsys,
                                                                      device, one_thread):
    real = train.build_loader
    monkeypatch.setattr(train, "build_loader", lambda *a, **k: NaNFrom(real(*a, **k), first=20))
    run = tmp_path / "run"
    args = run_args(cifar_dir, run, "--epoch_size=4", "--save_checkpoint_steps=6",
                    f"--device_target={'GPU' if device == 'cuda' else 'CPU'}")
    assert cli.main(["train", *args]) == 1
    err = capsys.readouterr().err
    assert "10 training steps in a row had a non-finite loss or gradient (max_nonfinite_steps 10)" in err
    names = [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))]
    # Global step 24 (2_12) came 4 NaN steps in: its weights are still those after step 20.
    assert names == ["mobilenetv1-1_6.ckpt", "mobilenetv1-1_12.ckpt", "mobilenetv1-2_6.ckpt", "mobilenetv1-2_12.ckpt"]
    last = ckpt_io.load_file(str(run / "mobilenetv1-2_12.ckpt"))
    assert last["nonfinite"] == {"in_a_row": 4, "total": 4, "longest": 4}
    # metrics.jsonl is strict JSON (NaN written as null, which jq and JavaScript read), and read back as NaN.
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line, parse_constant=refuse) for line in lines]
    assert any(r.get("grad_norm", 0) is None for r in records)
    steps = read_metrics(str(run))["steps"]
    assert any(math.isnan(r["grad_norm"]) for r in steps) and all(r["grad_norm"] is not None for r in steps)
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    assert not ckpt_io.partial_files(str(run))
    # Resuming with clean data from the last good checkpoint finishes the run.
    monkeypatch.setattr(train, "build_loader", real)
    assert cli.main(["train", *args, "--resume=auto"]) == 0
    assert os.path.exists(run / "mobilenetv1-4_12.ckpt")


def test_checkpoint_with_non_finite_weights_is_never_written(cifar_dir, tmp_path, one_thread):
    cfg = load_config(run_args(cifar_dir, tmp_path / "run", "--epoch_size=1"))
    model, optimizer = fresh_model_and_optimizer(cfg)
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"))
    writer = train.CheckpointWriter(cfg, model, optimizer, make_scaler("fp32", torch.device("cpu"), 1.0), guard,
                                    12, None)
    writer.save(0, 5)
    with torch.no_grad():
        model.network[3][0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"refusing to write checkpoint .*mobilenetv1-1_6\.ckpt: "
                                             r"network\.3\.0\.weight.*newest checkpoint .*mobilenetv1-1_5\.ckpt"):
        writer.save(0, 6)
    assert sorted(os.listdir(tmp_path / "run")) == ["mobilenetv1-1_5.ckpt"]


# ---------------------------------------------------------------------------------------------------
# (g) storage faults: read-only folder, full disk

def test_g_read_only_checkpoint_folder_fails_cleanly(cifar_dir, tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 0
    before = {n: (run / n).read_bytes() for n in os.listdir(run)}
    if not make_read_only(run):
        make_writable(run)
        pytest.skip("cannot make a folder read-only on this machine")
    try:
        rc = cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")])
    finally:
        make_writable(run)
    err = capsys.readouterr().err
    assert rc == 1 and f"save_checkpoint_path {run}: cannot write there" in err
    assert {n: (run / n).read_bytes() for n in os.listdir(run)} == before


def test_g_a_file_in_the_checkpoint_folders_place_is_named(cifar_dir, tmp_path, capsys, one_thread):
    """A file where the run folder should be (or above it) is named as such, not as "File exists"."""
    (tmp_path / "notes.txt").write_text("mine")
    for path in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "run"):
        assert cli.main(["train", *run_args(cifar_dir, path, "--epoch_size=1", "--resume=auto")]) == 1
        assert (f"save_checkpoint_path {path}: cannot write there ({tmp_path / 'notes.txt'} is a file, not a folder)"
                in capsys.readouterr().err)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_g_folder_turning_read_only_mid_run_stops_with_earlier_checkpoints_intact(cifar_dir, tmp_path, monkeypatch,
                                                                               capsys, one_thread):
    run = tmp_path / "run"
    real = train.build_loader
    state = {"ro": None}

    class ReadOnlyAt(NaNFrom):  # at global step 15 the folder stops taking writes
        def __iter__(self):
            for b, (x, y) in enumerate(self.loader, self.start):
                if self.epoch * len(self) + b == 15 and state["ro"] is None:
                    state["ro"] = make_read_only(run)
                yield x, y

    monkeypatch.setattr(train, "build_loader", lambda *a, **k: ReadOnlyAt(real(*a, **k), 0))
    try:
        rc = cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_steps=6")])
    finally:
        make_writable(run)
    if not state["ro"]:
        pytest.skip("cannot make a folder read-only on this machine")
    err = capsys.readouterr().err
    assert rc == 1 and f"cannot write checkpoint {run / 'mobilenetv1-2_6.ckpt'}" in err
    assert f"earlier checkpoints in {run} are intact (newest: {run / 'mobilenetv1-1_12.ckpt'})" in err
    assert "--resume auto" in err
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    names = sorted(n for n in os.listdir(run) if n.endswith((".ckpt", ".yaml")))  # beside log.txt, metrics
    assert names == ["config.yaml", "mobilenetv1-1_12.ckpt", "mobilenetv1-1_6.ckpt"]
    assert ckpt_io.load_file(str(run / "mobilenetv1-1_12.ckpt"))["step"] == 12


def test_g_full_disk_under_the_real_torch_save_is_an_oserror_naming_the_file(tmp_path, monkeypatch):
    """When the disk fills during torch.save, PyTorch raises a RuntimeError about stream positions
    (the OSError is only its context): atomic_save turns it back into ENOSPC naming the file, which
    the commands report cleanly; the file already there stays as it was."""
    real_open = open

    class FillsUp:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 200_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    path = tmp_path / "model.ckpt"
    ckpt_io.atomic_save({"w": torch.zeros(10)}, str(path))
    before = path.read_bytes()
    monkeypatch.setattr(ckpt_io, "open", lambda *a, **k: FillsUp(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError) as e:
        ckpt_io.atomic_save({"w": torch.zeros(200_000)}, str(path))
    assert e.value.errno == errno.ENOSPC and str(path) in str(e.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.ckpt"]


def test_written_files_get_the_users_usual_mode(tmp_path):
    """mkstemp makes temporary files 0600; a checkpoint or an exported file renamed from one stayed
    private, unlike every other file the user makes (log.txt: 0644 under umask 022)."""
    old = os.umask(0o022)
    try:
        ckpt_io.atomic_save({"w": torch.zeros(2)}, str(tmp_path / "a.ckpt"))
        ckpt_io.atomic_save_text("x: 1\n", str(tmp_path / "config.yaml"))
        os.umask(0o027)
        ckpt_io.atomic_save({"w": torch.zeros(2)}, str(tmp_path / "b.ckpt"))
    finally:
        os.umask(old)
    modes = {n: os.stat(tmp_path / n).st_mode & 0o777 for n in ("a.ckpt", "config.yaml", "b.ckpt")}
    assert modes == {"a.ckpt": 0o644, "config.yaml": 0o644, "b.ckpt": 0o640}


def test_a_file_its_caller_writes_in_place_is_synced_before_it_takes_its_name(tmp_path, monkeypatch):
    """atomic_output's callers (export's writers, keep_aside's copy) write the temporary file themselves and close
    it unsynced: its own fsync before the rename keeps a crash from leaving an empty file under the name."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with ckpt_io.atomic_output(str(tmp_path / "m.onnx")) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"model")
    inode = os.stat(tmp_path / "m.onnx").st_ino
    renamed = events.index(("replace", inode))
    assert ("fsync", inode) in events[:renamed]


def test_a_ctrl_c_inside_a_checkpoints_write_is_the_ctrl_c_and_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    """A Python caller's second Ctrl-C can land inside torch.save (train.run raises it there: the stopping
    tests), whose writer then fails on stream positions: that was reported as "writing failed ... free
    space or make the folder writable" (helper-120's notebook case). It is the KeyboardInterrupt, the
    file as it was, no temporary file left."""
    path = str(tmp_path / "a.ckpt")
    ckpt_io.atomic_save({"w": torch.zeros(2)}, path)
    before = open(path, "rb").read()
    real_save = torch.save

    class CutShort:  # the file torch.save writes, interrupted after 2,000 bytes
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 2000:
                raise KeyboardInterrupt
            return self.f.write(data)

        def flush(self):
            self.f.flush()

    monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: real_save(obj, CutShort(f), *a, **k))
    with pytest.raises(KeyboardInterrupt):
        ckpt_io.atomic_save({"w": torch.ones(10000)}, path)
    assert open(path, "rb").read() == before and os.listdir(tmp_path) == ["a.ckpt"]


def test_g_full_disk_stops_with_a_clear_error_and_earlier_checkpoints_intact(cifar_dir, tmp_path, monkeypatch,
                                                                            capsys, one_thread):
    run = tmp_path / "run"
    real_save = torch.save
    calls = []

    def save_until_disk_full(obj, f, *a, **k):
        calls.append(1)
        if len(calls) >= 3:
            f.write(b"\x00" * 1000)  # part of the file made it to disk, then the device filled up
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_until_disk_full)
    rc = cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=3", "--save_checkpoint_steps=6")])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot write checkpoint" in err and "No space left on device" in err
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    assert sorted(n for n in os.listdir(run) if n.endswith((".ckpt", ".yaml"))) == [
        "config.yaml", "mobilenetv1-1_12.ckpt", "mobilenetv1-1_6.ckpt"]
    monkeypatch.setattr(torch, "save", real_save)
    for _, p in ckpt_io.list_checkpoints(str(run)):
        assert ckpt_io.load_file(p)["format"] == ckpt_io.FORMAT


def test_a_full_disk_under_torch_compile_is_one_line_naming_its_folders(cifar_dir, tmp_path, monkeypatch, capsys,
                                                                          one_thread):
    """--compile True with a full (or read-only) kernel cache or TMPDIR: Inductor's error, an InductorError whose
    one line ("OSError: [Errno 28] No space left on device") names no folder, ended the run as a bare "Traceback"
    and Dynamo's debugging advice, and log.txt said "stopped by InductorError"; a compiler run that could not
    write its temporary file says so only inside the compiler's output (CppCompileError)."""
    from torch._inductor.exc import CppCompileError, InductorError

    from mobilenet_v1.runtime import error_line

    def inductor_failed(inner: Exception) -> InductorError:
        try:
            try:
                raise inner
            except Exception as e:  # as Inductor raises it: from the error met inside it
                raise InductorError(e, None) from e
        except InductorError as e:
            return e

    class FullDiskCompiled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            raise inductor_failed(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    cache = tmp_path / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))
    monkeypatch.setattr(torch, "compile", lambda model, **kw: FullDiskCompiled(model))
    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1", "--compile=True")]) == 1
    err = capsys.readouterr().err
    said = (f"mobilenet-v1 train: error: torch.compile (--compile) could not write its files: No space left on "
            f"device (its kernel cache {cache}, temporary files in ")
    assert said in err and "TORCHINDUCTOR_CACHE_DIR and TMPDIR" in err and "--resume auto" in err, err
    assert "Traceback" not in err and said in (run / "log.txt").read_text()
    # the C++ compiler's temporary file in a full TMPDIR: said only in its output
    output = "cpp_prefix.h:1508:2: fatal error: error closing /tmp/ccmgbXyU.s: No space left on device"
    line = error_line("benchmark", inductor_failed(CppCompileError(["g++", "-x", "c++-header"], output)))
    assert line is not None and "could not write its files: No space left on device" in line
    assert "--resume" not in line
    read_only = inductor_failed(OSError(errno.EROFS, os.strerror(errno.EROFS), str(cache / "x.py")))
    assert f"Read-only file system ({cache / 'x.py'})" in error_line("train", read_only)
    # over the file-size limit: raising it is the way out, not room (runtime.room_advice, as train's checkpoints)
    too_large = error_line("train", inductor_failed(OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(cache / "y"))))
    assert "raise this process's file-size limit" in too_large and "free space" not in too_large, too_large
    # a compile that failed for any other reason is a fault whose traceback says it, as before
    assert error_line("train", inductor_failed(CppCompileError(["g++"], "error: 'x' was not declared"))) is None
    assert error_line("train", inductor_failed(ValueError("bad graph"))) is None


def test_a_checkpoint_over_the_file_size_limit_says_to_raise_the_limit_not_to_free_space(cifar_dir, tmp_path,
                                                                                            monkeypatch, capsys,
                                                                                            one_thread):
    """A checkpoint larger than this process may write (`ulimit -f`, a scheduler's file-size limit: EFBIG, "File
    too large") stopped the run with "free space or make the folder writable": neither changes the limit, and
    the same command failed again on a disk with room. The advice names the limit; a full disk's stays as it was."""
    def too_large(obj, f, *a, **k):
        f.write(b"\x00" * 1000)  # part of the file, then the limit
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    run = tmp_path / "run"
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=1")]) == 0
    monkeypatch.setattr(torch, "save", too_large)
    assert cli.main(["train", *run_args(cifar_dir, run, "--epoch_size=2", "--resume=auto")]) == 1
    err = capsys.readouterr().err
    assert (f"cannot write checkpoint {run / 'mobilenetv1-2_12.ckpt'}: File too large; training stopped at the end "
            f"of epoch 2. The earlier checkpoints in {run} are intact (newest: {run / 'mobilenetv1-1_12.ckpt'}); "
            f"raise this process's file-size limit (ulimit -f, or the scheduler's)") in err, err
    assert "free space" not in err and not [n for n in os.listdir(run) if n.endswith(".tmp")]
    assert ckpt_io.room_advice(os.strerror(errno.ENOSPC)) == "free space or make the folder writable"


def test_a_compiler_that_cannot_be_run_under_torch_compile_is_not_said_as_a_disk_problem(tmp_path):
    """A C++ compiler (CXX) or Triton's ptxas without its execute bit, or on a noexec mount: Inductor's error is
    the PermissionError of the program's start, and compile_files_unwritten said "could not write its files:
    Permission denied (.../g++) ...; free space there", a disk problem; it is the error's own line, as before."""
    import subprocess

    from torch._inductor.exc import InductorError

    from mobilenet_v1.runtime import compile_files_unwritten, error_line

    compiler = tmp_path / "g++"
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o644)

    def inductor_failed(run) -> InductorError:
        try:
            try:
                run()
            except Exception as e:  # as Inductor raises it: from the error met inside it
                raise InductorError(e, None) from e
        except InductorError as e:
            return e

    not_run = inductor_failed(lambda: subprocess.check_output([str(compiler), "--version"]))
    assert isinstance(not_run.__cause__, PermissionError)
    assert compile_files_unwritten(not_run) == "" and error_line("train", not_run) is None
    # the same in one of Inductor's compile workers (Triton's kernels on CUDA): its traceback comes back as text
    from torch._inductor.compile_worker.subproc_pool import SubprocException

    try:
        subprocess.check_output([str(compiler)])
    except PermissionError:
        import traceback

        in_worker = inductor_failed(lambda: (_ for _ in ()).throw(SubprocException(traceback.format_exc())))
    assert "Permission denied" in str(in_worker) and compile_files_unwritten(in_worker) == ""

    def unwritable():  # a file it could not write still is one
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "cache" / "x.py"))

    assert "could not write its files: Permission denied" in compile_files_unwritten(inductor_failed(unwritable))


def test_a_full_shared_memory_at_the_loaders_start_is_said_as_such_without_pytorchs_noise(tmp_path, monkeypatch,
                                                                                             capsys, one_thread):
    """Loader workers (--num_workers above 0) need shared memory (/dev/shm) for their queues' semaphores; found full
    (a container's 64 MB taken by what killed runs left), train, eval, recalibrate-bn and predict ended with "error:
    [Errno 28] No space left on device", as if the run's disk were full, followed by "Exception ignored in:
    <function _MultiProcessingDataLoaderIter.__del__ ...>" and a traceback of PyTorch's own AttributeError."""
    import gc
    import multiprocessing.synchronize

    from conftest import class_folders_of_photos

    data = class_folders_of_photos(tmp_path / "photos")
    run = tmp_path / "run"
    args = SMALL[:] + ["--dataset=imagenet2012", f"--dataset_path={data}", "--batch_size=4", "--epoch_size=1"]
    assert cli.main(["train", *args, f"--save_checkpoint_path={run}"]) == 0
    ckpt = ckpt_io.list_checkpoints(str(run))[-1][1]

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", full)
    said = ("error: shared memory (/dev/shm) is full: the data loader's 2 worker processes (--num_workers) need room "
            "there for their queues; free it")
    capsys.readouterr()
    assert cli.main(["train", *args, "--num_workers=2", f"--save_checkpoint_path={tmp_path / 'again'}"]) == 1
    assert f"mobilenet-v1 train: {said}" in capsys.readouterr().err
    assert cli.main(["predict", str(data / "a"), "--ckpt_file", ckpt, "--num_workers", "2"]) == 1
    err = capsys.readouterr().err
    assert f"mobilenet-v1 predict: {said}" in err and "--num_workers 0 reads the data in this process" in err
    gc.collect()
    assert not [u for u in unraisable if "DataLoaderIter" in repr(u.object)], unraisable
    # a full disk that names its file, or a loader without workers, is not taken for it
    from torch.utils.data import DataLoader

    from mobilenet_v1.data import SharedMemoryFull, workers_named

    for workers, error in ((2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/x.jpg")),
                           (0, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))):
        with pytest.raises(OSError) as raised:
            with workers_named(DataLoader([1], num_workers=workers)):
                raise error
        assert raised.value is error and not isinstance(raised.value, SharedMemoryFull)


def test_shared_memory_full_after_a_worker_started_ends_it_without_pytorchs_noise(monkeypatch):
    """/dev/shm with room for the first worker's queue but not the second's: the iterator had started a worker, so
    workers_named left it unmarked, and its __del__ then printed "Exception ignored in: ... __del__" with an
    AttributeError (its workers' status is set only at the end of its construction), the worker alive till then."""
    import gc
    import multiprocessing

    from torch.utils.data import DataLoader

    from mobilenet_v1.data import SharedMemoryFull, workers_named

    fork = multiprocessing.get_context("fork")
    made = []

    class SecondQueueFails(type(fork)):
        def Queue(self, *a, **k):  # the results' queue, worker 0's, then worker 1's: that one finds /dev/shm full
            made.append(1)
            if len(made) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return fork.Queue(*a, **k)

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    loader = DataLoader(list(range(4)), num_workers=2, multiprocessing_context=SecondQueueFails())
    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(SharedMemoryFull):
        with workers_named(loader):
            iter(loader)
    gc.collect()
    assert len(made) == 3
    assert not [u for u in unraisable if "DataLoaderIter" in repr(u.object)], unraisable
    assert {p.pid for p in multiprocessing.active_children()} <= before  # the worker it started is ended


def test_a_ctrl_c_before_the_temporary_file_is_made_leaves_no_folder_made_for_it(tmp_path, monkeypatch):
    """atomic_output makes the folders a file needs, then its locked temporary file: a Ctrl-C between the two
    left the folders (only an OSError took them away again)."""
    def interrupted(folder, prefix):
        assert os.path.isdir(folder)  # made by then
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_io, "_locked_temporary", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with ckpt_io.atomic_output(str(tmp_path / "a" / "b" / "m.onnx")):
            pass
    assert os.listdir(tmp_path) == []


def test_a_resume_inside_the_first_epoch_names_no_epoch_end(cifar_dir, tmp_path, one_thread):
    """A checkpoint saved inside the first epoch has no epoch's end before it (``epoch_end`` ""): the run resumed
    from it named the end of an epoch 0 (a file that never exists) in the checkpoints it saved, as the one the
    pruning spares, where the run never stopped names none."""
    run = tmp_path / "run"
    common = ("--batch_size=32", "--epoch_size=1", "--save_checkpoint_steps=2", "--keep_checkpoint_max=9")
    assert cli.main(["train", *run_args(cifar_dir, run, *common)]) == 0  # 6 steps: saves at 2, 4, 6
    twin = ckpt_io.load_file(str(run / "mobilenetv1-1_4.ckpt"))["epoch_end"]
    assert twin == ""
    resumed = tmp_path / "resumed"
    assert cli.main(["train", *run_args(cifar_dir, resumed, *common),
                     f"--resume={run / 'mobilenetv1-1_2.ckpt'}"]) == 0
    assert ckpt_io.load_file(str(resumed / "mobilenetv1-1_4.ckpt"))["epoch_end"] == twin
    assert ckpt_io.load_file(str(resumed / "mobilenetv1-1_6.ckpt"))["epoch_end"] == "mobilenetv1-1_6.ckpt"


def test_a_resume_where_fewer_gpus_are_visible_takes_the_random_states_of_those_there_are(monkeypatch):
    """A checkpoint holds one CUDA random state a visible GPU (torch.cuda.get_rng_state_all): saved on an
    8-GPU machine and resumed with CUDA_VISIBLE_DEVICES=0, set_rng_state_all indexed the GPUs past the one
    there (IndexError, a traceback; helper-311). Each visible GPU takes its own; a file of fewer leaves the
    rest as they are. (CUDA pretended: this machine has none.)"""
    set_states = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: set_states.append((int(state[0]), device)))
    states = [torch.full((8,), k, dtype=torch.uint8) for k in range(8)]
    ckpt_io.set_rng_state({"cuda": states})
    assert set_states == [(0, 0), (1, 1)]
    set_states.clear()
    ckpt_io.set_rng_state({"cuda": states[:1]})
    assert set_states == [(0, 0)]


def _record_syncs(monkeypatch):
    """os.fsync and os.replace, recorded in order: ("file", inode) / ("dir", inode) / ("replace", dst)."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        events.append(("replace", os.fspath(dst)))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_atomic_output_syncs_the_file_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A file written through atomic_output (export's, quantize's, convert's) is on disk before it takes its name,
    and the rename itself is made durable by a sync of the folder: a power cut right after never leaves the name on
    an empty or partial file, nor the old file back."""
    events = _record_syncs(monkeypatch)
    path = tmp_path / "m.onnx"
    with ckpt_io.atomic_output(str(path)) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x" * 1000)
    assert path.read_bytes() == b"x" * 1000
    at = events.index(("replace", str(path)))
    assert ("file", path.stat().st_ino) in events[:at]
    assert ("dir", tmp_path.stat().st_ino) in events[at + 1:]


def test_atomic_save_syncs_the_checkpoint_before_its_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = _record_syncs(monkeypatch)
    path = tmp_path / "mobilenetv1-1_5.ckpt"
    ckpt_io.atomic_save({"epoch": 1}, str(path))
    at = events.index(("replace", str(path)))
    assert ("file", path.stat().st_ino) in events[:at]
    assert ("dir", tmp_path.stat().st_ino) in events[at + 1:]


def test_a_damaged_best_checkpoint_is_replaced_by_the_next_evaluation_of_a_resumed_run(cifar_dir, tmp_path, capsys,
                                                                                       one_thread):
    """A mobilenetv1-best.ckpt that no longer loads (a user's copy gone wrong, a bad block) was kept by every later
    resume unless an evaluation beat the records' best: eval of it failed for good. It counts as none."""
    run = tmp_path / "run"
    args = [*SMALL, "--eval_interval=1", "--save_checkpoint_epochs=1", f"--dataset_path={cifar_dir}",
            f"--save_checkpoint_path={run}"]
    assert cli.main(["train", *args, "--epoch_size=1"]) == 0
    best = run / ckpt_io.BEST_NAME
    best.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert cli.main(["train", *args, "--epoch_size=2", "--resume=auto"]) == 0
    assert f"warning: {best} cannot be read" in capsys.readouterr().err
    saved = ckpt_io.load_file(str(best))
    assert saved["epoch"] == 2 and "top_1" in saved["metrics"]


def test_the_best_checkpoints_record_is_read_as_a_number_and_an_epoch_or_as_none(tmp_path, capsys):
    """What a resume takes from mobilenetv1-best.ckpt: none where there is no file; its top-1 and epoch where they
    are a number and an epoch from 1 (a hand-edited true, or an epoch of 0 or less, counts as none recorded)."""
    best = tmp_path / ckpt_io.BEST_NAME
    assert train.best_recorded(str(tmp_path)) == (False, None, 0)
    state = MobileNetV1(class_num=4, width_mult=0.25).state_dict()
    for epoch, top_1, read in ((3, 0.5, (True, 0.5, 3)), (True, True, (True, None, 0)), (0, 1, (True, 1.0, 0)),
                               (-2, "0.5", (True, None, 0))):
        ckpt_io.atomic_save({"model": state, "epoch": epoch, "metrics": {"top_1": top_1}}, str(best))
        assert train.best_recorded(str(tmp_path)) == read, (epoch, top_1)
    assert capsys.readouterr().err == ""


def test_a_full_disk_at_the_runs_config_yaml_names_that_file(cifar_dir, tmp_path, capsys, monkeypatch, one_thread):
    """The folder is writable; config.yaml is what did not fit (a file size limit, a quota): it is named."""
    run = tmp_path / "run"
    real = ckpt_io.atomic_save_text

    def too_large(text, path, *a, **k):
        if os.path.basename(path) == ckpt_io.RUN_CONFIG:
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), path)
        return real(text, path, *a, **k)

    monkeypatch.setattr(ckpt_io, "atomic_save_text", too_large)
    args = [*SMALL, "--eval_interval=1", "--save_checkpoint_epochs=1", f"--dataset_path={cifar_dir}",
            f"--save_checkpoint_path={run}", "--epoch_size=1"]
    assert cli.main(["train", *args]) == 1
    assert f"cannot write there ({run / ckpt_io.RUN_CONFIG}: File too large)" in capsys.readouterr().err


# What Windows lacks or refuses, simulated on Linux (helper-353): the commands must not depend on it.

def test_the_commands_import_without_the_posix_only_os_functions(tmp_path):
    """Windows' os has no register_at_fork (train, and eval and data-stats through it, failed at import), and no
    fchmod or set_blocking before Python 3.13 and 3.12."""
    code = ("import os, torch, torch.utils.data, torchvision\n"
            "for name in ('register_at_fork', 'fchmod', 'set_blocking'):\n"
            "    os.__dict__.pop(name, None)\n"
            "import mobilenet_v1.train, mobilenet_v1.evaluate, mobilenet_v1.datastats, mobilenet_v1.stopping\n"
            "from mobilenet_v1 import checkpoint\n"
            "checkpoint.atomic_save_text('a', os.path.join(os.environ['OUT'], 'a.txt'))\n")
    folder = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC, "OUT": folder},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert os.listdir(folder) == ["a.txt"]  # its mode set by os.chmod, as fchmod set it: not mkstemp's private 0600
    assert stat.S_IMODE(os.stat(os.path.join(folder, "a.txt")).st_mode) == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_atomic_write_renames_and_removes_no_open_file_where_the_system_refuses_that(tmp_path, monkeypatch):
    """Windows refuses to rename or remove a file a handle holds open (WinError 32): every checkpoint, --out file
    and export failed there, and a failed write left its temporary file behind."""
    replace, unlink = os.replace, os.unlink

    def held(path) -> bool:
        return os.path.realpath(path) in {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}

    def refusing_replace(src, dst):
        if held(src):
            raise PermissionError(13, "[WinError 32] used by another process", src)
        return replace(src, dst)

    def refusing_unlink(path, *args, **kwargs):
        if held(path):
            raise PermissionError(13, "[WinError 32] used by another process", path)
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(ckpt_io, "RENAME_NEEDS_CLOSE", True)
    monkeypatch.delattr(os, "fchmod", raising=False)  # none on Windows before Python 3.13
    monkeypatch.setattr(os, "replace", refusing_replace)
    monkeypatch.setattr(os, "unlink", refusing_unlink)
    target = tmp_path / "out.csv"
    ckpt_io.atomic_save_text("image,label\n", str(target))
    assert target.read_text(encoding="utf-8") == "image,label\n" and os.listdir(tmp_path) == ["out.csv"]
    with pytest.raises(RuntimeError, match="failed midway"):
        with ckpt_io.atomic_output(str(tmp_path / "never.pt")) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("failed midway")
    assert os.listdir(tmp_path) == ["out.csv"]  # its temporary file removed


def test_a_save_waits_a_moment_for_a_reader_that_holds_the_old_file_open(tmp_path, monkeypatch):
    """Windows refuses to replace a file another handle holds open: an eval reading the run's best checkpoint
    while the run saved a new one ended the run."""
    import threading

    target = tmp_path / "best.ckpt"
    target.write_bytes(b"old")
    reader = open(target, "rb")
    replace = os.replace

    def refusing(src, dst):
        if not reader.closed:
            raise PermissionError(13, "[WinError 5] Access is denied", dst)
        return replace(src, dst)

    monkeypatch.setattr(ckpt_io, "RENAME_NEEDS_CLOSE", True)
    monkeypatch.setattr(os, "replace", refusing)
    threading.Timer(0.3, reader.close).start()
    ckpt_io.atomic_save_text("new", str(target))
    assert target.read_text() == "new"


def test_a_stop_request_hears_a_signal_where_select_takes_sockets_only(monkeypatch):
    """Windows' select takes sockets only: the watchdog thread of a pipe died at once, and with it the 'stopping
    after the step' message, the second Ctrl-C and the grace period's end."""
    from mobilenet_v1 import stopping

    real = select.select

    def sockets_only(r, w, x, *timeout):
        for f in list(r) + list(w) + list(x):
            fd = f if isinstance(f, int) else f.fileno()
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise OSError(10038, "[WinError 10038] not a socket")
        return real(r, w, x, *timeout)

    monkeypatch.setattr(select, "select", sockets_only)
    with stopping.StopRequest() as stop:
        signal.raise_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not stop.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stop._watchdog.is_alive()
        assert stop.received == signal.SIGTERM


def test_ctrl_c_on_windows_gives_the_status_of_a_process_it_ended(monkeypatch):
    """os.kill on Windows is TerminateProcess with the signal's number as the status: 2 for Ctrl-C, argparse's
    usage error's. The status 130 is returned instead, without os.kill."""
    monkeypatch.setattr(cli.sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", lambda *a: pytest.fail("os.kill called"))
    before = signal.getsignal(signal.SIGINT)
    try:
        assert cli.end_by_signal(signal.SIGINT) == 130
    finally:
        signal.signal(signal.SIGINT, before)


# Standard streams that cannot be written: full, closed, a terminal gone (helper-354).

def _command(*args):
    return [sys.executable, "-m", "mobilenet_v1", *args]


_ENV = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")


def test_a_run_whose_standard_output_fills_up_goes_on_and_says_so(cifar_dir, tmp_path):
    """`train ... > train.out` on a disk that fills up (here /dev/full): the run goes on, log.txt keeping its
    lines and a warning, where it stopped at its next line with ENOSPC and saved nothing more."""
    run = tmp_path / "run"
    with open("/dev/full", "w") as full:
        p = subprocess.run(_command("train", *run_args(cifar_dir, run, "--epoch_size=1")), stdout=full,
                           stderr=subprocess.PIPE, text=True, env=_ENV, timeout=300)
    assert p.returncode == 0, p.stderr
    log = (run / "log.txt").read_text()
    assert log.count("warning: cannot write standard output (No space left on device): its lines are given up "
                     "(log.txt keeps them); training goes on") == 1
    assert any(name.endswith(".ckpt") for name in os.listdir(run))


def test_output_closed_or_full_is_an_error_not_a_silent_success():
    """`info >&-` printed nothing and exited 0, `lr-schedule >&-` ended in a traceback, and `--help > /dev/full`
    in a traceback (ours) or exit 0 (argparse's): each says it could not write standard output, and exits 1."""
    p = subprocess.run(_command("lr-schedule", "--epoch_size", "1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, env=_ENV, timeout=120, preexec_fn=lambda: os.close(1))
    assert p.returncode == 1 and "Bad file descriptor" in p.stderr and "Traceback" not in p.stderr, p
    # A user's shell buffers stdout into a file until the end, where the error came (helper-358); unbuffered
    # (PYTHONUNBUFFERED, Docker images'), at the first line.
    buffered = {k: v for k, v in _ENV.items() if k != "PYTHONUNBUFFERED"}
    unbuffered = {**_ENV, "PYTHONUNBUFFERED": "1"}
    for env, args in ((buffered, ["--help"]), (buffered, ["info"]), (unbuffered, ["info", "--help"])):
        with open("/dev/full", "w") as full:
            p = subprocess.run(_command(*args), stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
        assert p.returncode == 1 and "No space left on device" in p.stderr, (args, p)
        assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, (args, p.stderr)
        assert "standard output" in p.stderr, (args, p.stderr)


def test_standard_error_closed_keeps_notes_out_of_standard_output():
    """`lr-schedule 2>&-`: Python's print(file=None) printed its notes on stdout, before the table's header."""
    p = subprocess.run(_command("lr-schedule", "--epoch_size", "1", "--steps_per_epoch", "2"), stdout=subprocess.PIPE,
                       text=True, env=_ENV, timeout=120, preexec_fn=lambda: os.close(2))
    assert p.returncode == 0 and p.stdout.splitlines()[0] == "step,epoch,lr", p.stdout


def test_a_terminal_closed_stops_a_run_with_a_checkpoint_and_nohup_keeps_it_running(cifar_dir, tmp_path):
    """SIGHUP (the terminal closed, an ssh session lost) stops a run as SIGTERM does: a checkpoint at the step
    under way and 129, where it killed the run with everything since its last checkpoint. Under nohup (SIGHUP
    ignored) the run is not stopped."""
    from mobilenet_v1 import stopping

    run = tmp_path / "run"
    p = subprocess.Popen(_command("train", *run_args(cifar_dir, run, "--epoch_size=50", "--log_interval=1")),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_ENV,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        log, deadline = run / "log.txt", time.monotonic() + 120
        while not (log.is_file() and "epoch 1/50 step 3/" in log.read_text()) and p.poll() is None:
            assert time.monotonic() < deadline, "the run did not reach step 3"
            time.sleep(0.05)
        p.send_signal(signal.SIGHUP)
        assert p.wait(timeout=120) == 128 + signal.SIGHUP
    finally:
        if p.poll() is None:
            p.kill()
    assert "stopped by SIGHUP after step" in log.read_text()
    assert any(name.endswith(".ckpt") for name in os.listdir(run))
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup's
    try:
        with stopping.StopRequest() as stop:
            signal.raise_signal(signal.SIGHUP)
            time.sleep(0.3)
            assert not stop.received
    finally:
        signal.signal(signal.SIGHUP, before)


# The stop watchdog's grace (mutation sample 6, helper-356).

_STEPS_AFTER_SIGNAL = r'''
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
import torch.distributed as dist
from mobilenet_v1 import stopping
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=0, world_size=1)
stopping.GRACE_SECONDS = 3.0
with stopping.StopRequest(distributed=True) as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(2.0)  # a step under way when the signal came; the ranks agree on it only after the next one
    first = stop.should_stop()
    time.sleep(2.0)  # the next step: it ends 4 s after the signal, 2 s after the step before
    print("stops after step 2:", first, stop.should_stop(), stop.agreed, flush=True)
dist.destroy_process_group()
'''


def test_a_distributed_rank_that_keeps_completing_steps_after_a_signal_is_not_ended_by_the_watchdog(tmp_path):
    """The ranks of a distributed run agree on a signal a step or two after it (the all-reduce of the step before
    is read after the next one): a rank that goes on completing steps meanwhile is not blocked on a dead peer, and
    the watchdog's grace counts from its last step, not from the signal. With a grace of 3 s and steps of 2 s,
    the rank stops after step 2 with its checkpoint (exit 0), 4 s after the signal; counting from the signal
    alone (stopping.py's ``max(self._last_step, self._signalled_at)`` as ``self._signalled_at``) the watchdog
    exited it unsaved with 143 at 3 s, leaving the other ranks waiting in the next all-reduce (helper-356)."""
    r = subprocess.run([sys.executable, "-c", _STEPS_AFTER_SIGNAL, SRC, str(tmp_path / "store")],
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, f"stops after step 2: False True {int(signal.SIGTERM)}\n"), r.stderr[-2000:]


def test_the_grace_is_ten_seconds_while_the_steps_are_short(monkeypatch):
    """README: a process that "completes no step for 10 s after the signal (or three times its longest step, if
    longer)" is ended by the watchdog. Steps of 2 s (three times: 6 s) leave the grace at 10 s; with stopping.py's
    GRACE_SECONDS at 5 it was 6 s, and a run whose step under way needed 7 s more after a preemption's signal was
    ended by the watchdog, unsaved (helper-356)."""
    import types

    from mobilenet_v1 import stopping

    now = [0.0]
    monkeypatch.setattr(stopping, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    stop = stopping.StopRequest()
    assert stop.grace() == 10.0  # before any step
    for step, at in enumerate((2.0, 4.0, 6.0), 1):
        now[0] = at
        assert not stop.should_stop()
    assert stop.grace() == 10.0


def test_loss_tally_mean_of_an_imagenet_epoch_keeps_its_digits():
    # 5,005 steps (ImageNet at a batch of 256): summed in float32 the mean moved by about 5e-6 (its 6th decimal).
    g = torch.Generator().manual_seed(0)
    losses = (6.8 + 0.3 * torch.randn(5005, generator=g, dtype=torch.float64)).float()
    tally = train.LossTally(torch.device("cpu"))
    for v in losses:
        tally.add(v)
    exact = float(losses.double().sum()) / 5005
    assert tally.steps == 5005 and abs(float(tally.sum) / tally.steps - exact) < 1e-9


def test_a_signal_heard_by_one_process_of_a_job_is_said_with_its_rank(capsys, monkeypatch):
    """Under torchrun each process that gets the signal says so: a bare "SIGTERM received" line of several processes
    (or machines) did not say which one was signalled (helper-383)."""
    import signal
    import time

    from mobilenet_v1 import stopping

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with stopping.StopRequest() as stop:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # heard here, not the test process's end
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if stop.received:
                break
            time.sleep(0.05)
        time.sleep(0.3)  # the watchdog's line
    assert "SIGTERM received (rank 1): stopping after the step under way" in capsys.readouterr().err
