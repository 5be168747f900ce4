"""Data-parallel training through real torchrun processes on the CPU (gloo), and the seed's scripts.

torchrun launches are the slow part (each process imports torch): the tests share launches where
one run can answer several questions, and torchrun itself and its workers are forked from a process that
imported torch and the package once (tests/forked_worker.py), as they run but for those imports. The seed's
scripts (test_scripts_...) start theirs as a user's launch does, each a Python process of its own.
"""
import hashlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
import torch

from conftest import class_images, jpeg_bytes, smooth_image
from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, distributed, evaluate, runtime, train
from mobilenet_v1 import transforms as T
from mobilenet_v1.config import load_config
from mobilenet_v1.data import (CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, BadSamples, CifarLoader, build_loader,
                               sample_seed, write_cifar_bin)
from mobilenet_v1.tracking import read_metrics

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TINY = ["--width_mult=0.25", "--image_size=32", "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0",
        "--lr_decay_mode=linear", "--lr_max=0.05", "--precision=fp32"]
REPLICAS = re.compile(r"replicas: sha256 of weights and buffers per rank (.*) \((identical)\)")


WORKER = os.path.join(ROOT, "tests", "forked_worker.py")
FORK_SERVER = {}  # "path": the socket of this module's fork server (fork_server)


def child_env(**extra):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.path.join(ROOT, "tests"),
               OMP_NUM_THREADS="1", PYTHON=sys.executable)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "EXTRA_ARGS", "DEVICE_NUM",
                "FORK_SERVER"):
        env.pop(key, None)
    if "path" in FORK_SERVER:
        env["FORK_SERVER"] = FORK_SERVER["path"]
    env.update(extra)
    return env


@pytest.fixture(scope="module", autouse=True)
def fork_server(tmp_path_factory):
    """torchrun's workers forked from one process that imported torch and the package (tests/forked_worker.py):
    each would spend seconds importing them. The seed's scripts (test_scripts_...) start theirs as they are."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="fork")  # a short path: a socket's is limited to 107 bytes
    path = os.path.join(folder, "server")
    server = subprocess.Popen([sys.executable, "-u", WORKER, "--serve", path], cwd=ROOT, env=child_env(),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == "ready\n", "the fork server did not start"
        FORK_SERVER["path"] = path
        yield path
    finally:
        FORK_SERVER.clear()
        server.terminate()  # it kills the workers still running, then itself
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()
        if os.path.exists(path):
            os.remove(path)
        os.rmdir(folder)


def torchrun_argv(*args):
    """``python -m torch.distributed.run ARGS`` with each worker started through tests/forked_worker.py:
    its options (all --name=value here), then the stand-in, then what it runs (``-m MODULE`` or a script).
    torchrun itself is started through the stand-in too: a process of its own, forked by the server (which
    imported torch), its exit status and signals passed on as a worker's; its import of torch took seconds
    a launch."""
    at = next(i for i, a in enumerate(args) if a == "-m" or not a.startswith("-"))
    return [sys.executable, WORKER, "-m", "torch.distributed.run", *args[:at], WORKER, *args[at:]]


def torchrun(*args, cwd=ROOT, timeout=120):
    return subprocess.run(torchrun_argv(*args), cwd=cwd, env=child_env(), capture_output=True, text=True,
                          timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_digests(log: str):
    """Per-rank digests from the run's ``replicas:`` line (there must be exactly one: rank 0's)."""
    lines = [m for m in REPLICAS.finditer(log)]
    assert len(lines) == 1, log[-3000:]
    return dict(item.split(":") for item in lines[0].group(1).split())


def run_files(folder):
    """A run folder's files, TensorBoard event files as "tfevents": only rank 0 writes, so one of each."""
    return sorted("tfevents" if n.startswith("events.out.tfevents.") else n for n in os.listdir(folder))


def checkpoint_digest(path) -> str:
    return distributed.state_digest(ckpt_io.model_state(ckpt_io.load_file(str(path))))


@pytest.fixture
def odd_cifar(tmp_path):
    """CIFAR-10 binaries with odd counts: 195 training records (one left out of 2 even shards) and 41
    evaluation records (shards of 21 and 20)."""
    root = tmp_path / "odd"
    (root / CIFAR_TRAIN_FOLDER).mkdir(parents=True)
    (root / CIFAR_EVAL_FOLDER).mkdir()
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 195)
    write_cifar_bin(str(root / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"), class_images(y, 1), y)
    y = rng.integers(0, 4, 41)
    write_cifar_bin(str(root / CIFAR_EVAL_FOLDER / "test_batch.bin"), class_images(y, 2), y)
    return root


# ---------------------------------------------------------------------------------------------------
# in one process

def test_what_rank_0_alone_does_reaches_every_rank_and_so_does_its_failure(monkeypatch):
    """Context.from_rank0: rank 0 alone works and keeps its result, the others get what it shares; where
    its work fails, rank 0 raises its own error and the others one that names it, having all taken part
    in the same broadcast. In one process: the work, as it is."""
    sent, done = [], []

    def context(rank: int):
        ctx = distributed.Context(rank=rank, world_size=2, backend="gloo")
        monkeypatch.setattr(ctx, "broadcast_object", lambda obj: sent.append(obj) or (obj if rank == 0 else rank_0))
        return ctx

    def work():
        done.append(1)
        return "/run/mobilenetv1-2_6.ckpt", {"weights": 1}

    def failing():
        done.append(1)
        raise ckpt_io.CheckpointError("cannot write checkpoint X: No space left on device")

    first = lambda found: found[0]  # noqa: E731
    rank_0 = None

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a Ctrl-C in rank 0's work: the others are told, then it goes on
        context(0).from_rank0(interrupted, "could not choose")
    assert sent.pop() == (None, "KeyboardInterrupt: ", None)
    assert context(0).from_rank0(work, "could not choose", share=first) == work()
    assert sent == [("/run/mobilenetv1-2_6.ckpt", None, None)] and len(done) == 2
    with pytest.raises(ckpt_io.CheckpointError, match="^cannot write checkpoint X: No space left on device$"):
        context(0).from_rank0(failing, "could not save a checkpoint")
    assert sent[1:] == [(None, "cannot write checkpoint X: No space left on device", None)] and len(done) == 3
    sent.clear()
    done.clear()
    rank_0 = ("/run/mobilenetv1-2_6.ckpt", None, None)
    assert context(1).from_rank0(work, "could not choose", share=first) == "/run/mobilenetv1-2_6.ckpt"
    rank_0 = (None, "cannot write checkpoint X: No space left on device", None)
    with pytest.raises(distributed.DistributedError,
                       match="^rank 0 could not save a checkpoint: cannot write checkpoint X: No space left") as told:
        context(1).from_rank0(failing, "could not save a checkpoint")
    assert len(sent) == 2 and not done  # rank 1 takes part in the broadcast, and does none of the work
    assert not hasattr(told.value, "unwritten")
    # A file rank 0 could not write travels with its message, in the same broadcast: every rank knows it.
    def unwritable():
        error = ckpt_io.CheckpointError("cannot write checkpoint X: No space left on device")
        error.unwritten, error.reason = "X", "No space left on device"
        raise error

    with pytest.raises(ckpt_io.CheckpointError):
        context(0).from_rank0(unwritable, "could not save a checkpoint")
    assert sent[-1] == (None, "cannot write checkpoint X: No space left on device", ("X", "No space left on device"))
    rank_0 = sent[-1]
    with pytest.raises(distributed.DistributedError) as told:
        context(1).from_rank0(unwritable, "could not save a checkpoint")
    assert (told.value.unwritten, told.value.reason) == ("X", "No space left on device")
    sent.clear()
    alone = distributed.Context()
    assert alone.from_rank0(work, "could not choose", share=first) == work()
    with pytest.raises(ckpt_io.CheckpointError):
        alone.from_rank0(failing, "could not save a checkpoint")
    assert not sent  # nothing broadcast


def test_an_error_every_rank_raises_is_said_once_naming_the_ranks_of_each_message(monkeypatch, capsys):
    """Context.alike: an error every rank raises at one point (the job's unreadable files past the limit, shards
    that make no batch, options that differ) ends the job with one line per distinct message, said by each
    machine's local rank 0 (here one machine's), naming the ranks it came from; the other ranks say nothing. Each
    process printed it (3 lines on 3 ranks)."""
    said = ["dataset_path /a: 13 training samples a process make no full batch"] * 2 + \
        ["dataset_path /b: 13 training samples a process make no full batch"]
    monkeypatch.setenv("WORLD_SIZE", "3")
    for rank in (0, 1, 2):
        ctx = distributed.Context(rank=rank, world_size=3, backend="gloo")
        monkeypatch.setattr(ctx, "gather_objects", lambda obj: said)
        error = ctx.alike(ValueError(said[rank]))
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))

        def fails(argv, error=error):
            raise error

        monkeypatch.setitem(cli.COMMANDS, "train", fails)
        assert cli.main(["train"]) == 1
        assert capsys.readouterr().err == ("" if rank else
                                           f"mobilenet-v1 train (ranks 0-1): error: {said[0]}\n"
                                           f"mobilenet-v1 train (rank 2): error: {said[2]}\n"), rank
    monkeypatch.setenv("LOCAL_RANK", "0")
    ctx = distributed.Context(rank=0, world_size=3, backend="gloo")
    monkeypatch.setattr(ctx, "gather_objects", lambda obj: [obj] * 3)
    error = ctx.alike(ValueError("8 image files could not be read, more than max_bad_samples 5"))
    assert runtime.job_error_lines("eval", error) == [
        "mobilenet-v1 eval (all 3 ranks): error: 8 image files could not be read, more than max_bad_samples 5"]
    assert runtime.ranks_text([0, 2, 3, 4, 7], 8) == "ranks 0, 2-4, 7"
    assert runtime.ranks_text([0], 1) == "rank 0"  # torchrun --nproc_per_node=1: not "all 1 ranks"
    alone = ValueError("no batch")
    assert distributed.Context().alike(alone) is alone and runtime.job_error_lines("train", alone) is None


def test_the_file_rank_0_chooses_is_read_under_each_machines_own_path(monkeypatch):
    """Context.file_from_rank0: the file rank 0 chose under its base (a run folder, --resume, a checkpoint named)
    reaches the other ranks under their own base, a path of theirs to the same storage (eval and train's
    resume loaded rank 0's path, which another machine may not have: "no such file")."""
    shared = []

    def context(rank: int):
        ctx = distributed.Context(rank=rank, world_size=2, backend="gloo")
        monkeypatch.setattr(ctx, "broadcast_object", lambda obj: shared.append(obj) or (obj if rank == 0 else sent))
        return ctx

    cases = [(["/mnt/a/run"], "/mnt/a/run/ckpt_0/mobilenetv1-2_6.ckpt", ["/data/run"],
              "/data/run/ckpt_0/mobilenetv1-2_6.ckpt"),
             (["runs/x/", "/mnt/a/m.ckpt"], "/mnt/a/m.ckpt", ["/b/x", "/b/m.ckpt"], "/b/m.ckpt"),  # a file: itself
             (["/mnt/a/run"], "/elsewhere/m.ckpt", ["/data/run"], "/elsewhere/m.ckpt"),  # under none: as it is
             (["", "run"], "run/m.ckpt", ["", "/data/run"], "/data/run/m.ckpt"),  # "": no base, not the working folder
             (["/mnt/a/run"], "", ["/data/run"], "")]  # none chosen
    for bases, chosen, theirs, expected in cases:
        found = (chosen, {"step": 6})
        assert context(0).file_from_rank0(lambda: found, "could not choose", bases, lambda f: f[0]) is found
        sent = shared.pop()
        assert context(1).file_from_rank0(lambda: found, "could not choose", theirs, lambda f: f[0]) == expected
    assert context(0).file_from_rank0(lambda: "run/m.ckpt", "could not choose", ["run"]) == "run/m.ckpt"
    sent = shared.pop()
    assert context(1).file_from_rank0(lambda: "run/m.ckpt", "could not choose", ["/data/run/"]) == "/data/run/m.ckpt"


def test_a_file_one_rank_cannot_load_stops_every_rank_naming_it(monkeypatch, tmp_path):
    """Context.on_every_rank: every rank loads (its own copy of rank 0's chosen file) and all agree on the outcome;
    where one rank fails, every rank raises alike one error naming that rank and why (the others raised nothing
    and waited for it at the next collective, ending on "another process of this job ended"). Train's resume
    loads rank 0's choice on rank 1 through it: a copy missing there is named so on every rank."""
    def context(rank: int, outcomes):
        """Rank ``rank`` of 2, the other's outcome as in ``outcomes`` (None: loaded); then (alike) one message."""
        ctx = distributed.Context(rank=rank, world_size=2, backend="gloo")
        gathers = []

        def gather(obj):
            gathers.append(obj)
            return [obj if r == rank else o for r, o in enumerate(outcomes)] if len(gathers) == 1 else [obj] * 2

        monkeypatch.setattr(ctx, "gather_objects", gather)
        return ctx

    def failing():
        raise ckpt_io.CheckpointError("checkpoint run/a.ckpt: no such file")

    said = "rank 1 cannot load it: checkpoint run/a.ckpt: no such file"
    assert context(0, [None, None]).on_every_rank(lambda: 7, "cannot load it") == 7
    for rank, work in ((0, lambda: 7), (1, failing)):  # the rank whose copy loads stops too, told why
        with pytest.raises(distributed.DistributedError, match=f"^{said}$") as raised:
            context(rank, [None, "checkpoint run/a.ckpt: no such file"]).on_every_rank(work, "cannot load it")
        assert runtime.job_error_lines("eval", raised.value) == [f"mobilenet-v1 eval (all 2 ranks): error: {said}"]

    # Ranks that fail for one reason are named together, each reason once: a job of 8 whose other machine lacks
    # the file says so in one clause, not 4.
    ctx = distributed.Context(rank=0, world_size=4, backend="gloo")
    monkeypatch.setattr(ctx, "gather_objects", lambda obj: [obj, "no such file", "no such file", "damaged"])
    with pytest.raises(distributed.DistributedError,
                       match="^ranks 1-2 cannot load it: no such file; rank 3 cannot load it: damaged$"):
        ctx.on_every_rank(lambda: 7, "cannot load it")
    monkeypatch.setattr(ctx, "gather_objects", lambda obj: ["no such file"] * 4)
    with pytest.raises(distributed.DistributedError, match="^all 4 ranks cannot load it: no such file$"):
        ctx.on_every_rank(lambda: 7, "cannot load it")

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # this rank's own, once the others are told
        context(1, [None, None]).on_every_rank(interrupted, "cannot load it")
    with pytest.raises(ckpt_io.CheckpointError, match="^checkpoint run/a.ckpt: no such file$"):
        distributed.Context().on_every_rank(failing, "cannot load it")  # one process: its own error, as it is

    cfg = load_config(TINY + ["--class_num=4", f"--resume={tmp_path / 'run'}"])
    model = train.build_model(cfg)
    ctx = context(1, [None, None])
    monkeypatch.setattr(ctx, "broadcast_object", lambda obj: ((0, "mobilenetv1-1_3.ckpt"), None, None))
    with pytest.raises(distributed.DistributedError) as raised:
        train.find_resume(cfg, model, torch.optim.SGD(model.parameters(), lr=0.1), 3, str(tmp_path / "run"), ctx)
    assert str(raised.value) == (f"rank 1 cannot resume from the checkpoint rank 0 chose: checkpoint "
                                 f"{tmp_path / 'run' / 'mobilenetv1-1_3.ckpt'}: no such file")


def test_the_configuration_as_run_holds_the_processes_torchrun_started(monkeypatch, capsys):
    """Context.apply: under torchrun device_num is the number of processes and run_distribute True (config.yaml and
    the checkpoints record the run as it ran), a device_num given otherwise said; describe: the images of a step;
    eval_drop_last's count said where processes share it. In one process sync_bn has nothing to synchronise with,
    and says so."""
    monkeypatch.delenv("RANK", raising=False)
    job = distributed.Context(rank=0, world_size=2, backend="gloo")
    for given, said in ((1, ""), (2, ""), (4, "device_num 4: torchrun started 2 processes; using 2\n")):
        cfg = job.apply(load_config(TINY + [f"--device_num={given}"]))
        assert (cfg.device_num, cfg.run_distribute, capsys.readouterr().out) == (2, True, said)
    assert job.describe(8) == "distributed: 2 processes (gloo), batch_size 8 per process = 16 per step; rank 0 " \
                              "prints and saves"
    assert job.describe(8, 4) == ("distributed: 2 processes (gloo), batch_size 8 per process = 16 per batch, x "
                                  "grad_accum_steps 4 = 64 per step; rank 0 prints and saves")
    job.note_eval_drop_last(True)
    assert capsys.readouterr().out == ("eval_drop_last: the images of one process's full batches (the seed's count), "
                                       "shared by the 2 processes\n")
    alone = distributed.Context()
    alone.note_eval_drop_last(True)
    job.note_eval_drop_last(False)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(3))
    assert alone.wrap(model, torch.device("cpu"), sync_bn=True) is model
    assert capsys.readouterr().out == "sync_bn: a single process has nothing to synchronise with; plain BatchNorm\n"


def test_ranks_given_other_values_are_told_each_key_and_paths_of_their_own_pass(monkeypatch, tmp_path):
    """Context.check_same names each key whose value differs from rank 0's, a key one rank alone has too, with
    both values and the rank, the first 6 of them; check_options leaves out what may differ by machine (paths,
    loader workers); file_digest stands for a file that cannot be read with why, not an error of that rank alone
    (the others waited for it in the comparison's collective)."""
    def context(rank, everyone):
        ctx = distributed.Context(rank=rank, world_size=len(everyone), backend="gloo")
        monkeypatch.setattr(ctx, "gather_objects", lambda obj: [obj] * len(everyone) if isinstance(obj, str) else
                            [obj if r == rank else theirs for r, theirs in enumerate(everyone)])
        return ctx

    advice = "every machine must run the same command on the same data (its paths may differ)"
    with pytest.raises(distributed.DistributedError) as raised:
        context(0, [{"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}, {"a": 5, "b": 2}]).check_same({"a": 1, "b": 2}, "data")
    assert str(raised.value) == ("the processes of this job were given different data: b 2 on rank 0, 3 on rank 1; "
                                 f"c None on rank 0, 4 on rank 1; a 1 on rank 0, 5 on rank 2; {advice}")
    mine = {f"k{i}": 0 for i in range(7)}
    for count, more in ((6, ""), (7, " ...")):
        theirs = {**mine, **{f"k{i}": 1 for i in range(count)}}
        with pytest.raises(distributed.DistributedError) as raised:
            context(1, [mine, theirs]).check_same(theirs, "options", "the same command")
        listed = "; ".join(f"k{i} 0 on rank 0, 1 on rank 1" for i in range(6))
        assert str(raised.value) == f"the processes of this job were given different options: {listed}{more}; " \
                                    "the same command"
    context(1, [mine, mine]).check_same(mine, "options")  # alike: nothing said

    # What rank 1 sends (gathered from a job of one view), then rank 0's comparison with its own.
    sent = []
    probe = distributed.Context(rank=1, world_size=2, backend="gloo")
    monkeypatch.setattr(probe, "gather_objects", lambda obj: sent.append(obj) or [obj, obj])
    machine = ["--dataset_path={}/data", "--save_checkpoint_path={}/run", "--pre_trained={}/m.ckpt",
               "--checkpoint_path={}/run"]
    probe.check_options(load_config(TINY + [a.format("/b") for a in machine] + ["--num_workers=8"]))
    rank0 = distributed.Context(rank=0, world_size=2, backend="gloo")
    monkeypatch.setattr(rank0, "gather_objects", lambda obj: [obj] * 2 if isinstance(obj, str) else [obj, sent[-1]])
    rank0.check_options(load_config(TINY + [a.format("/a") for a in machine]))
    with pytest.raises(distributed.DistributedError, match="different options: lr_max 0.1 on rank 0, 0.05 on rank 1;"):
        rank0.check_options(load_config(TINY + [a.format("/b") for a in machine] + ["--lr_max=0.1"]))
    # A file's path may differ, not whether one is given: rank 1's --pre_trained alone was overwritten by rank 0's
    # initial weights without a word, --resume on one machine alone hung the job or moved its checkpoints aside.
    probe.check_options(load_config(TINY + [a.format("/b") for a in machine] + ["--resume=/b/run/x.ckpt"]))
    rank0.check_options(load_config(TINY + [a.format("/a") for a in machine] + ["--resume=/a/x.ckpt"]))
    probe.check_options(load_config(TINY + [a.format("/b") for a in machine[:2]] + ["--num_workers=8",
                                                                                      "--resume=auto"]))
    with pytest.raises(distributed.DistributedError) as raised:
        rank0.check_options(load_config(TINY + [a.format("/a") for a in machine]))
    assert ("different options: checkpoint_path" not in str(raised.value)
            and "pre_trained '(a file)' on rank 0, '(none)' on rank 1; resume '(none)' on rank 0, 'auto' on rank 1;"
            in str(raised.value)), str(raised.value)

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"\x08\x07model")
    assert distributed.file_digest(str(onnx)) == hashlib.sha256(b"\x08\x07model").hexdigest()[:16]
    assert distributed.file_digest(str(tmp_path / "gone.onnx")) == "cannot read it: No such file or directory"


def test_replicas_that_differ_are_warned_of_naming_each_ranks_digest(monkeypatch, capsys):
    """Context.check_replicas: rank 0 prints every rank's digest of the weights and buffers, and a warning where
    they differ (a broken job: the checkpoint holds rank 0's)."""
    monkeypatch.delenv("RANK", raising=False)
    model = train.build_model(load_config(TINY + ["--class_num=4"]))
    mine = distributed.state_digest(model.state_dict())
    ctx = distributed.Context(rank=0, world_size=2, backend="gloo")
    for theirs, said in ((mine, f"replicas: sha256 of the average per rank 0:{mine[:16]} 1:{mine[:16]} (identical)"),
                         ("f" * 64, f"WARNING replicas differ: sha256 of the average per rank 0:{mine[:16]} "
                                    f"1:{'f' * 16}; the checkpoint holds rank 0's")):
        monkeypatch.setattr(distributed.dist, "all_gather_object",
                            lambda gathered, obj: gathered.__setitem__(slice(None), [obj, theirs]))
        assert ctx.check_replicas(model, "the average") == [mine, theirs]
        assert capsys.readouterr().out == said + "\n"


def test_a_resume_that_turns_sync_bn_off_on_as_many_processes_says_what_it_changes():
    """A sync_bn job resumed on as many processes at the same batch without --sync_bn (or the other way) normalises
    over each process's batch where it normalised over the global one: said, with the option to resume with, as
    for another process count (it said nothing). The same options say nothing."""
    import dataclasses

    cfg = dataclasses.replace(load_config(TINY + ["--batch_size=8"]), device_num=2)
    ckpt = {"config": {"device_num": 2, "batch_size": 8, "sync_bn": True, "grad_accum_steps": 1}}
    line = train.processes_change(ckpt, "a.ckpt", cfg, 0, 4)
    assert line == ("resume: a.ckpt was written 4 steps into epoch 1 by a run of 2 processes at batch_size 8, this run "
                    "has 2 at 8: BatchNorm's training statistics are over 8 images a batch (each process's own batch) "
                    "where that run's were over 16 (the global batch, sync_bn), so it does not go on as that run would "
                    "have (resume it on 2 processes at batch_size 8 with --sync_bn True for that)"), line
    assert train.processes_change(ckpt, "a.ckpt", dataclasses.replace(cfg, sync_bn=True), 0, 4) == ""
    # On one process sync_bn changes nothing: a run of one recorded with it resumed without is said nothing of.
    one = {"config": {"device_num": 1, "batch_size": 8, "sync_bn": True}}
    assert train.processes_change(one, "a.ckpt", dataclasses.replace(cfg, device_num=1), 0, 4) == ""
    # At another process count the same global batch still gets other random-erasing boxes and dropout masks
    # (drawn per rank): not float rounding, and said so.
    two = {"config": {"device_num": 2, "batch_size": 8, "sync_bn": True, "grad_accum_steps": 1}}
    single = dataclasses.replace(cfg, device_num=1, batch_size=16, sync_bn=True, random_erase=0.25, drop_rate=0.2)
    line = train.processes_change(two, "a.ckpt", single, 0, 4)
    assert "(float rounding); random erasing and dropout draw per process, so this run draws otherwise than that " \
           "run of 2 processes would have" in line, line
    assert "draw" not in train.processes_change(two, "a.ckpt", dataclasses.replace(single, random_erase=0.0,
                                                                                      drop_rate=0.0), 0, 4)


def test_sync_bn_on_the_cpu_keeps_each_batchnorms_weights_statistics_and_mode():
    """convert_sync_batchnorm (sync_bn where torch's SyncBatchNorm refuses CPU tensors) replaces each BatchNorm2d
    by one sharing its parameters and buffers: the weights and statistics a pre-trained or resumed model loaded
    before DDP wraps it stay, and so does each layer's mode (a frozen layer's evaluation mode)."""
    model = train.build_model(load_config(TINY + ["--class_num=4"]))
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    torch.manual_seed(0)
    with torch.no_grad():
        for m in norms:
            for t in (m.weight, m.bias, m.running_mean):
                t.normal_()
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(7)
    norms[0].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synced = distributed.convert_sync_batchnorm(model)
    converted = [m for m in synced.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(converted) == len(norms) and all(type(m) is distributed.SyncBatchNorm2d for m in converted)
    after = synced.state_dict()
    assert list(after) == list(before) and all(torch.equal(after[k], v) for k, v in before.items())
    assert [m.training for m in converted] == [False] + [True] * (len(norms) - 1)


def test_the_jobs_unreadable_files_are_one_list_in_one_order_on_every_rank(monkeypatch):
    """Context.check_bad_samples: each rank's unreadable files join every rank's list, which is checked against the
    job's limit: past it, every rank stops with the same list, in one order though each rank met its own files
    first, so that the job says it once (two ranks' lists in two orders were two messages)."""
    shards = [{"/d/n01/b.JPEG": "/d/n01/b.JPEG: cut short", "/d/n02/c.JPEG": "/d/n02/c.JPEG: empty"},
              {"/d/n01/a.JPEG": "/d/n01/a.JPEG: empty"}]
    monkeypatch.setattr(distributed.dist, "all_gather_object", lambda gathered, obj: gathered.__setitem__(
        slice(None), [obj] * 2 if isinstance(obj, str) else shards))
    listing = ("\n  /d/n01/a.JPEG: empty (read by rank 1)\n  /d/n01/b.JPEG: cut short (read by rank 0)"
               "\n  /d/n02/c.JPEG: empty (read by rank 0)")
    for rank in (0, 1):
        ctx = distributed.Context(rank=rank, world_size=2, backend="gloo")
        for limit in (3, 2):
            loader = types.SimpleNamespace(bad_samples=BadSamples(1000, limit))
            loader.bad_samples.files.update(shards[rank])
            ctx.defer_bad_samples(loader)
            if limit == 3:
                ctx.check_bad_samples(loader)  # 3 files in the job: not past its limit
                assert len(loader.bad_samples) == 3
                continue
            with pytest.raises(ValueError) as raised:
                ctx.check_bad_samples(loader)
            assert str(raised.value) == ("3 image files could not be read, more than max_bad_samples 2; fix or remove "
                                         f"them, or raise --max_bad_samples:{listing}"), rank
            assert runtime.job_error_lines("train", raised.value) == [
                f"mobilenet-v1 train (all 2 ranks): error: {raised.value}"]


def test_run_distribute_without_torchrun_says_how_to_launch(cifar_dir, monkeypatch, capsys):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert cli.main(["train", f"--dataset_path={cifar_dir}", "--run_distribute=True"] + TINY) == 1
    err = capsys.readouterr().err
    assert "run_distribute is True but this process was not started by torchrun" in err
    assert "torchrun --standalone --nproc_per_node=NUM_PROCESSES -m mobilenet_v1 train" in err
    with pytest.raises(distributed.DistributedError, match=r"-m mobilenet_v1 eval \[--key=value \.\.\.\] on one "
                                                           r"machine .* --rdzv_id=JOB -m mobilenet_v1 eval \[--key"):
        distributed.setup(load_config(TINY + ["--run_distribute=True"]), "eval")
    for key, value in (("WORLD_SIZE", "2"), ("RANK", "1")):  # one alone (another launcher's): not torchrun's job
        monkeypatch.setenv(key, value)
        assert not distributed.setup(load_config(TINY)).enabled
        monkeypatch.delenv(key)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(distributed.DistributedError, match="LOCAL_RANK, MASTER_ADDR, MASTER_PORT are not"):
        distributed.setup(load_config(TINY))
    # More processes on a machine than it has GPUs: the one past them is told so (LOCAL_RANK counts from 0).
    for key, value in (("RANK", "2"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "2"), ("MASTER_ADDR", "127.0.0.1"),
                       ("MASTER_PORT", "29500")):
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(distributed.DistributedError, match=r"^LOCAL_RANK 2: this machine shows 2 GPUs; start at most"):
        distributed.setup(load_config(TINY[:2] + ["--device_target=GPU"]))


def test_a_sample_is_augmented_alike_in_any_number_of_shards():
    """Batch k of one process at batch 2B holds exactly the samples of batch k of 2 shards at batch B,
    each cropped and flipped the same (the augmentation follows the sample's global position)."""
    n, b = 50, 4
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 32, 32).clone()
    images[:, :, :4, :7] = 255  # a corner mark that crops and flips move
    labels = torch.arange(n)
    cpu = torch.device("cpu")
    make = lambda batch, shards, shard: CifarLoader(images, labels, batch, True, 32, cpu, seed=5,  # noqa: E731
                                                    num_shards=shards, shard_id=shard)
    whole, parts = make(2 * b, 1, 0), [make(b, 2, r) for r in (0, 1)]
    for loader in [whole] + parts:
        loader.set_epoch(3)
    assert len(whole) == len(parts[0]) == len(parts[1]) == n // (2 * b)
    for (xw, yw), (x0, y0), (x1, y1) in zip(whole, *parts):
        got = {int(y): x for x, y in zip(torch.cat([x0, x1]), torch.cat([y0, y1]))}
        assert sorted(got) == sorted(yw.tolist())
        for x, y in zip(xw, yw):
            assert torch.equal(x, got[int(y)])
    # The seeds are those every pipeline uses: sample_seed of the sample's global position.
    sampler = parts[1].sampler
    assert sampler.seeds().tolist() == [seed for _, seed in sampler]
    assert sampler.seeds()[2] == sample_seed(5, 3, 2 * 2 + 1)
    u = T.seeded_uniform(torch.arange(20_000), 3)
    assert u.min() >= 0 and u.max() < 1 and abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float(torch.corrcoef(u.T)[0, 1])) < 0.03


# ---------------------------------------------------------------------------------------------------
# torchrun, CPU, gloo

def test_two_ranks_shards_sync_bn_and_eval(odd_cifar, tmp_path, capsys):
    """One 2-process launch: the shards are disjoint and cover the data, reshuffled per epoch; with
    sync_bn, 2 x batch 8 takes the same steps as 1 process x batch 16; a sync_bn training run; the
    2-process eval counts every sample once and gives the single-process top-1."""
    spec = {"train": TINY + [f"--dataset_path={odd_cifar}", "--class_num=4", "--batch_size=8", "--epoch_size=1",
                             "--lr_max=0.01", "--sync_bn=True", "--ema_decay=0.9", "--eval_interval=1",
                             "--log_interval=5", f"--save_checkpoint_path={tmp_path / 'two'}"],
            "eval": TINY + [f"--dataset_path={odd_cifar}", "--batch_size=8"],
            "steps": 6, "out": str(tmp_path / "worker.json")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    r = torchrun("--standalone", "--nproc_per_node=2", os.path.join(ROOT, "tests", "dist_worker.py"),
                 str(tmp_path / "spec.json"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = json.loads((tmp_path / "worker.json").read_text())

    s0, s1 = out["shards"]
    for key in ("train_epoch0", "train_epoch1"):
        a, b = s0[key], s1[key]
        assert len(a) == len(b) == 97 and not set(a) & set(b)
        assert len(set(a) | set(b)) == 194 and set(a) | set(b) <= set(range(195))
    assert s0["train_epoch0"] != s0["train_epoch1"]  # reshuffled every epoch
    assert sorted(s0["eval"] + s1["eval"]) == list(range(41)) and len(s0["eval"]) == 21
    assert len(s0["eval_labels"]) + len(s1["eval_labels"]) == 41  # no padding duplicates

    diffs, moved = out["synced"]
    assert len(diffs) == 6 and max(diffs) < 1e-5, diffs
    assert moved > 1e-2  # the weights did move: agreeing to 1e-5 says something
    # Without sync_bn each rank normalises by its own 8 samples: one step already differs.
    assert out["unsynced"][0][0] > 1e-3, out["unsynced"]
    # Accumulating two batches a step (DDP all-reduces the second's only) is the same arithmetic too.
    diff, moved, syncs = out["accumulated"]
    assert diff < 1e-5 and moved > 1e-2 and syncs == 3, out["accumulated"]  # one all-reduce a step

    ckpt = out["checkpoint"]
    assert ckpt == str(tmp_path / "two" / "ckpt_0" / "mobilenetv1-1_12.ckpt")
    assert sorted(os.listdir(tmp_path / "two")) == ["ckpt_0"]
    assert run_files(tmp_path / "two" / "ckpt_0") == ["config.yaml", "log.txt", "metrics.jsonl",
                                                      "mobilenetv1-1_12.ckpt", "mobilenetv1-best.ckpt", "tfevents"]
    digests = replica_digests(r.stdout)
    assert digests["0"] == digests["1"] and checkpoint_digest(ckpt).startswith(digests["0"])
    # The weight average, kept beside SyncBatchNorm's model on each rank, took all 12 steps.
    saved = ckpt_io.load_file(ckpt)
    average = saved["ema"]
    assert average["updates"] == 12 and average["model"].keys() == saved["model"].keys()
    assert not torch.equal(average["model"]["fc.weight"], saved["model"]["fc.weight"])

    # The run's save_checkpoint_path stands for the newest checkpoint and the metrics in its ckpt_0/.
    capsys.readouterr()
    single = evaluate.run(load_config(spec["eval"] + [f"--checkpoint_path={tmp_path / 'two'}"]), per_image=True)
    assert "weights: the exponential moving average of the trained weights" in capsys.readouterr().err
    assert single["ckpt"] == ckpt
    epochs = read_metrics(str(tmp_path / "two"))["epochs"]
    assert [r["epoch"] for r in epochs] == [1]
    # Evaluated during training on both ranks: the average (top_1, what eval takes) and the trained weights.
    assert epochs[0]["top_1"] == single["top_1_accuracy"] and "raw_top_1" in epochs[0]
    # images_per_s is the job's: 12 steps x 8 images x 2 ranks in epoch_seconds (rank 0's 96 before).
    assert abs(epochs[0]["images_per_s"] * epochs[0]["epoch_seconds"] - 192) < 2, epochs
    # The logged losses are the job's: each logged step's is the mean of the two ranks' (which differ),
    # the epoch's mean is over both ranks' steps.
    own = out["losses"]
    assert len(own[0]) == len(own[1]) == 12 and own[0] != own[1]
    history = read_metrics(str(tmp_path / "two"))
    logged = {r["step"]: r["loss"] for r in history["steps"]}
    assert sorted(logged) == [5, 10, 12]
    for step, loss in logged.items():
        assert loss == pytest.approx((own[0][step - 1] + own[1][step - 1]) / 2, rel=1e-6), step
        assert loss != pytest.approx(own[0][step - 1], rel=1e-6)
    assert epochs[0]["mean_loss"] == pytest.approx(sum(own[0] + own[1]) / 24, rel=1e-6)
    assert epochs[0]["loss"] == pytest.approx(logged[12], rel=1e-6)
    assert out["eval"]["total"] == single["total"] == 41
    assert out["eval"]["top_1_accuracy"] == single["top_1_accuracy"]
    assert out["eval"]["top_5_accuracy"] == single["top_5_accuracy"]
    # eval --per_image's rows: both ranks' shards gathered in the split's order, as one process gives them.
    assert [r[:4] for r in out["eval"]["images"]] == [list(r[:4]) for r in single["images"]]
    assert [r[1] for r in single["images"]] == [f"test_batch.bin#{k}" for k in range(41)]
    assert [p for r in out["eval"]["images"] for p in r[4:]] == \
        pytest.approx([p for r in single["images"] for p in r[4:]], abs=1e-5)


def test_quantization_aware_training_on_two_ranks(odd_cifar, tmp_path, capsys):
    """A quantization-aware run on 2 processes: DDP gives every rank rank 0's activation ranges before each
    forward pass, so the replicas end identical, ranges included, and the checkpoint's ranges count every
    step's batch once; the 2-process evaluation gives the single process's top-1 of the checkpoint; and
    export writes its INT8 file (which it checks rounds as the model does). The conv weights' gradients have
    the weights' own strides: DDP warned at every such run while they did not."""
    common = TINY + [f"--dataset_path={odd_cifar}", "--class_num=4", "--batch_size=8", "--epoch_size=1"]
    float_run = train.run(load_config(common + [f"--save_checkpoint_path={tmp_path / 'float'}"]))
    capsys.readouterr()
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *common, "--qat=True",
                 f"--pre_trained={float_run['checkpoint']}", "--lr_max=0.005", "--eval_interval=1",
                 f"--save_checkpoint_path={tmp_path / 'qat'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Grad strides do not match" not in r.stderr, r.stderr[-3000:]
    digests = replica_digests(r.stdout)
    ckpt = str(tmp_path / "qat" / "ckpt_0" / "mobilenetv1-1_12.ckpt")
    assert digests["0"] == digests["1"] and checkpoint_digest(ckpt).startswith(digests["0"])
    state = ckpt_io.load_file(ckpt)["model"]
    assert int(state["quant.observed"]) == 12  # 12 steps, rank 0's batch counted once each
    ranges = state["quant.ranges"]
    assert torch.isfinite(ranges).all() and (ranges[:, 1] > ranges[:, 0]).all()
    single = evaluate.run(load_config(TINY + [f"--dataset_path={odd_cifar}", "--batch_size=8",
                                              f"--checkpoint_path={ckpt}"]))
    assert read_metrics(str(tmp_path / "qat"))["epochs"][0]["top_1"] == single["top_1_accuracy"]
    from mobilenet_v1.export import export_checkpoint

    assert os.path.isfile(export_checkpoint(ckpt, str(tmp_path / "int8.onnx"))["path"])


def test_two_single_node_launches_form_a_two_node_job(cifar_dir, tmp_path):
    port = free_port()
    args = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}",
            "--rdzv_id=test-two-nodes", "--rdzv_conf=join_timeout=60", "-m", "mobilenet_v1", "train",
            f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--epoch_size=1", "--ema_decay=0.9",
            f"--save_checkpoint_path={tmp_path / 'run'}"] + TINY
    nodes = [subprocess.Popen(torchrun_argv(*args), cwd=ROOT, env=child_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [p.communicate(timeout=120)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(log[-2000:] for log in logs)
    log = "\n".join(logs)
    assert "distributed: 2 processes (gloo), batch_size 16 per process = 32 per step" in log
    assert log.count("epoch: 1 step: 6, loss is ") == 1  # 192 samples / 2 ranks / 16; only rank 0 prints
    digests = replica_digests(log)
    assert sorted(digests) == ["0", "1"] and len(set(digests.values())) == 1
    # Without sync_bn each rank averages its own BatchNorm statistics; the epoch's end gives them rank 0's.
    assert re.search(r"replicas: sha256 of the weight average per rank 0:\w+ 1:\w+ \(identical\)", log), log[-3000:]
    ckpt = tmp_path / "run" / "ckpt_0" / "mobilenetv1-1_6.ckpt"
    assert checkpoint_digest(ckpt).startswith(digests["0"])
    # Machines given other options, or other data behind their paths, are refused at the start on every rank,
    # naming what differs (helper-114: they trained on apart, hung in a collective or ended in gloo's
    # "collective mismatch"). Paths may differ: the same data elsewhere is the same data.
    fewer = tmp_path / "fewer"  # the first of the two training files
    shutil.copytree(cifar_dir, fewer, ignore=shutil.ignore_patterns("data_batch_2.bin"))
    # c10d numbers the nodes by their launchers' process ids: either node may be rank 0 (forked launchers start
    # at nearly one moment), and the refusal names each value by its rank, in rank order.
    for extra, said in ((["--lr_max=0.2"], ("options: lr_max ", "0.05", "0.2")),
                        ([f"--dataset_path={fewer}"], ("data: training images ", "192", "96"))):
        port = free_port()
        node = [a.replace(str(args[3]), f"--rdzv_endpoint=127.0.0.1:{port}") for a in args]
        nodes = [subprocess.Popen(torchrun_argv(*node, *(extra if k else [])), cwd=ROOT, env=child_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for k in range(2)]
        logs = [p.communicate(timeout=120)[0] for p in nodes]
        what, a, b = said
        either = [f"were given different {what}{x} on rank 0, {y} on rank 1" for x, y in ((a, b), (b, a))]
        assert all(p.returncode != 0 and any(e in log for e in either) for p, log in zip(nodes, logs)), \
            "\n".join(log[-2000:] for log in logs)
        assert len({e for e in either for log in logs if e in log}) == 1  # the job's one refusal, said alike


def test_the_data_a_jobs_ranks_compare_holds_its_images_labels(cifar_dir, tmp_path):
    """An image moved to another class on one machine kept each split's count and class names, the two things the
    ranks compared: that machine trained it under another label without a word (helper-318). The labels in order
    are compared too; the same data elsewhere is still the same data. A CIFAR record relabelled and a JPEG moved
    to another class folder stand for it."""
    relabelled = tmp_path / "relabelled"
    shutil.copytree(cifar_dir, relabelled)
    batch = relabelled / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"
    raw = bytearray(batch.read_bytes())
    raw[0] = (raw[0] + 1) % 4  # record 0's label: another of the 4 classes
    batch.write_bytes(bytes(raw))
    folders = tmp_path / "folders"
    for c in "abc":
        (folders / "train" / c).mkdir(parents=True)
        for i in range(3):
            (folders / "train" / c / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, seed=i)))
    moved = tmp_path / "moved"
    shutil.copytree(folders, moved)
    os.rename(moved / "train" / "a" / "0.jpg", moved / "train" / "b" / "9.jpg")

    def seen(path, *extra):
        cfg = load_config(TINY + ["--batch_size=4", f"--dataset_path={path}", *extra])
        with build_loader(train.data_options(cfg), train=True,
                          device=torch.device("cpu")) as loader:
            return train.data_seen(loader, None)

    for same, other, extra in ((cifar_dir, relabelled, ()), (folders, moved, ("--dataset=imagenet2012",))):
        ours, theirs = seen(same, *extra), seen(other, *extra)
        assert [k for k in ours if ours[k] != theirs[k]] == ["training images' labels"], (ours, theirs)
        copy = tmp_path / f"copy_{os.path.basename(same)}"
        shutil.copytree(same, copy)
        assert seen(copy, *extra) == ours


def test_ranks_given_different_data_are_told_the_classes_and_images_that_differ(cifar_dir, tmp_path):
    """The refusal of a job whose machines read different data names where they differ: a class, its counts on
    the two ranks and the images one holds alone (under the split's folder, or CIFAR records). It named counts and
    digests: which of a million files a machine lacked was the user's to find (helper-383). Two threads stand
    for the two ranks (their collectives exchange through a barrier); the same data elsewhere is still alike."""
    import threading

    folders = tmp_path / "folders"
    for c in "abc":
        (folders / "train" / c).mkdir(parents=True)
        for i in range(3):
            (folders / "train" / c / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, seed=i)))
    moved, copy = tmp_path / "moved", tmp_path / "copy"
    shutil.copytree(folders, moved)
    shutil.copytree(folders, copy)
    os.rename(moved / "train" / "a" / "0.jpg", moved / "train" / "b" / "9.jpg")
    relabelled = tmp_path / "relabelled"
    shutil.copytree(cifar_dir, relabelled)
    batch = relabelled / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"
    raw = bytearray(batch.read_bytes())
    label = raw[0]
    raw[0] = (label + 1) % 4
    batch.write_bytes(bytes(raw))

    def job(paths, *extra):
        slots, barrier, said = [None, None], threading.Barrier(2, timeout=60), [None, None]

        def gather(rank, obj):
            slots[rank] = obj
            barrier.wait()
            everyone = list(slots)
            barrier.wait()
            return everyone

        def rank_of(rank):
            ctx = distributed.Context(rank=rank, world_size=2, backend="gloo")
            ctx.gather_objects = lambda obj: gather(rank, obj)
            cfg = load_config(TINY + ["--batch_size=4", f"--dataset_path={paths[rank]}", *extra])
            with build_loader(train.data_options(cfg), train=True, device=torch.device("cpu")) as loader:
                try:
                    train.check_same_data(ctx, loader, None)
                except distributed.DistributedError as error:
                    said[rank] = str(error)

        threads = [threading.Thread(target=rank_of, args=(r,)) for r in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert said[0] == said[1]  # the job's one refusal, alike
        return said[0]

    said = job((folders, moved), "--dataset=imagenet2012")
    assert said.startswith("the processes of this job were given different data: training images' labels ")
    assert said.endswith("(its paths may differ); where they differ: training class a: 3 images on rank 0, 2 on "
                         "rank 1 (a/0.jpg on rank 0 alone); training class b: 3 images on rank 0, 4 on rank 1 "
                         "(b/9.jpg on rank 1 alone)"), said
    said = job((relabelled, cifar_dir))
    name = "data_batch_1.bin#0"
    for was, rank in ((label, 1), ((label + 1) % 4, 0)):  # rank 0 reads the relabelled record
        assert re.search(rf"training label {was}: \d+ images on rank 0, \d+ on rank 1 \({re.escape(name)} on rank "
                         rf"{rank} alone\)", said), said
    assert job((folders, copy), "--dataset=imagenet2012") is None
    # the split itself given with a trailing separator (a shell's completion), the machines mounting it apart: the
    # class that differs is named, not the first three with every image "alone" by its whole path
    said = job((f"{folders / 'train'}{os.sep}", f"{moved / 'train'}{os.sep}"), "--dataset=imagenet2012")
    assert said.endswith("where they differ: training class a: 3 images on rank 0, 2 on rank 1 (a/0.jpg on rank 0 "
                         "alone); training class b: 3 images on rank 0, 4 on rank 1 (b/9.jpg on rank 1 alone)"), said
    # the same records, a names file on rank 0 alone: no record is said to be one rank's alone
    named = tmp_path / "named"
    shutil.copytree(cifar_dir, named)
    (named / CIFAR_TRAIN_FOLDER / "batches.meta.txt").write_text("\n".join("wxyz") + "\n")
    said = job((named, cifar_dir))
    assert "alone" not in said and "label 0 'w' on rank 0, unnamed on rank 1" in said, said


def test_a_sigterm_to_one_rank_stops_every_rank_after_the_same_step_with_a_checkpoint(cifar_dir, tmp_path):
    """Rank 1 alone gets SIGTERM during step 3 (a preempted node): the ranks' agreement started after
    step 3 is read after step 4, both stop there, rank 0 saves there, both exit 128 + 15, and --resume
    auto goes on from that checkpoint to the end."""
    opts = [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=4", "--epoch_size=2",
            "--log_interval=0", f"--save_checkpoint_path={tmp_path / 'run'}"] + TINY
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2",
                                     os.path.join(ROOT, "tests", "fault_worker.py"), *opts), cwd=ROOT,
                       env=child_env(SIGTERM_AT_STEP="3"), capture_output=True, text=True, timeout=180)
    # Both exit 143; the one that leaves second may get torchrun's own SIGTERM in its last lines, after
    # its stop and save (-15).
    assert r.returncode != 0 and r.stderr.count("exitcode  : 143") + r.stderr.count("exitcode  : -15") == 2 and \
        "exitcode  : 143" in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    # said by the rank that got it (helper-383: the bare line did not say which)
    assert "SIGTERM received (rank 1): stopping after the step under way" in r.stderr
    assert "replicas differ" not in r.stdout  # BatchNorm statistics given rank 0's, as at an epoch's end
    ckpt = tmp_path / "run" / "ckpt_0" / "mobilenetv1-1_4.ckpt"  # 192 samples / 2 ranks / 4 = 24 steps an epoch
    assert f"stopped by SIGTERM after step 4 of epoch 1: checkpoint {ckpt}; --resume auto" in r.stdout
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(tmp_path / "run" / "ckpt_0"))] == [ckpt.name]
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", "--resume=auto", *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"resume: continuing from {ckpt} after epoch 0 and 4 of the 24 steps of epoch 1" in r.stdout
    assert r.stdout.count("epoch: 2 step: 24, loss is ") == 1


def test_a_checkpoint_rank_0_cannot_write_stops_every_rank_with_the_reason(cifar_dir, tmp_path):
    """Rank 0's disk is full at the second epoch's end: every rank stops there, each naming why (the
    others waited at their next collective for rank 0 until torchrun ended them), and the first
    epoch's checkpoint stays whole. So too where rank 0 cannot open the run's records."""
    run = tmp_path / "run" / "ckpt_0"
    opts = [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--epoch_size=3",
            "--save_checkpoint_epochs=1", "--log_interval=0", f"--save_checkpoint_path={tmp_path / 'run'}"] + TINY
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2",
                                     os.path.join(ROOT, "tests", "fault_worker.py"), *opts), cwd=ROOT,
                       env=child_env(SAVE_FAILS="mobilenetv1-2_6.ckpt"), capture_output=True, text=True, timeout=120)
    why = (f"cannot write checkpoint {run / 'mobilenetv1-2_6.ckpt'}: No space left on device; training stopped at "
           f"the end of epoch 2. The earlier checkpoints in {run} are intact (newest: {run / 'mobilenetv1-1_6.ckpt'})")
    assert r.returncode != 0 and f"mobilenet-v1 train (rank 0): error: {why}" in r.stderr, r.stderr[-3000:]
    assert f"mobilenet-v1 train (rank 1): error: rank 0 could not save a checkpoint: {why}" in r.stderr
    # Rank 1's own error line is its stop; whether it exits 1 before torchrun, seeing rank 0's exit, sends
    # it SIGTERM (-15) is a race (a loaded machine lost it once).
    assert "exitcode  : 1" in r.stderr, r.stderr[-3000:]
    assert "epoch: 3 step:" not in r.stdout
    assert [os.path.basename(p) for _, p in ckpt_io.list_checkpoints(str(run))] == ["mobilenetv1-1_6.ckpt"]
    assert ckpt_io.load_file(str(run / "mobilenetv1-1_6.ckpt"))["step"] == 6 and not ckpt_io.partial_files(str(run))
    KEPT_APART = ("--epoch_size", "--save_checkpoint_epochs")  # given anew below
    # The best checkpoint rank 0 cannot write: every rank still saves the epoch trained (a collective, rank 0's
    # file and reason said by each), then stops.
    best = tmp_path / "best"
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2",
                                     os.path.join(ROOT, "tests", "fault_worker.py"),
                                     *(o for o in opts[:-1] if not o.startswith(KEPT_APART)),
                                     "--epoch_size=2",
                                     "--eval_interval=1", "--save_checkpoint_epochs=5",
                                     f"--save_checkpoint_path={best}"), cwd=ROOT,
                       env=child_env(SAVE_FAILS=ckpt_io.BEST_NAME), capture_output=True, text=True, timeout=120)
    end = best / "ckpt_0" / "mobilenetv1-1_6.ckpt"
    why = (f"cannot write checkpoint {best / 'ckpt_0' / ckpt_io.BEST_NAME}: No space left on device; training stopped "
           f"after epoch 1, saved as {end} before its evaluation")
    assert r.returncode != 0 and f"mobilenet-v1 train (all 2 ranks): error: {why}" in r.stderr, r.stderr[-3000:]
    assert [p for _, p in ckpt_io.list_checkpoints(str(best / "ckpt_0"))] == [str(end)]
    # An error of rank 0 alone there that is no write's (its listing of the best epochs' copies): it stops as it
    # came, the others told by torchrun; a collective of the copy's failure alone had rank 0 wait in it for ever
    # while the others went on to the next (helper-260).
    listed = tmp_path / "listed"
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2",
                                     os.path.join(ROOT, "tests", "fault_worker.py"),
                                     *(o for o in opts[:-1] if not o.startswith(KEPT_APART)),
                                     "--epoch_size=2", "--eval_interval=1", "--keep_best_max=1",
                                     f"--save_checkpoint_path={listed}"), cwd=ROOT,
                       env=child_env(TOP_LIST_FAILS="1"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "mobilenet-v1 train (rank 0): error: [Errno 13] Permission denied" in r.stderr, \
        r.stderr[-3000:]
    # Where rank 0 cannot open the run's records at the start, the others stop there too.
    other = tmp_path / "other"
    (other / "ckpt_0" / "metrics.jsonl").mkdir(parents=True)
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts[:-1],
                 f"--save_checkpoint_path={other}")
    why = (f"save_checkpoint_path {other / 'ckpt_0'}: cannot write the run's records there "
           f"({other / 'ckpt_0' / 'metrics.jsonl'}: Is a directory)")
    assert r.returncode != 0 and f"mobilenet-v1 train (rank 0): error: {why}" in r.stderr, r.stderr[-3000:]
    assert f"mobilenet-v1 train (rank 1): error: rank 0 could not open the run's records: {why}" in r.stderr


def test_a_killed_worker_restarts_and_resumes_to_the_same_weights(cifar_dir, tmp_path):
    """torchrun --max-restarts 1: rank 1 is SIGKILLed mid-epoch on the first attempt; the restarted job
    resumes by itself from the newest complete checkpoint in ckpt_0/ (no --resume given) and ends with
    the full number of epochs and exactly the weights of a job that was never interrupted."""
    opts = [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--epoch_size=5",
            "--save_checkpoint_steps=3", "--keep_checkpoint_max=20", "--log_interval=0", "--ema_decay=0.9"] + TINY
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = child_env(FAULT_AFTER=str(killed / "ckpt_0" / "mobilenetv1-2_3.ckpt"))  # epoch 2, step 3 of 6
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2", "--max-restarts=1",
                                     os.path.join(ROOT, "tests", "fault_worker.py"), f"--save_checkpoint_path={killed}",
                                     *opts), cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # Rank 1 died of SIGKILL; torchrun names the first failure it sees, which on a loaded machine can be rank 0
    # stopping on the lost peer a moment later (seen once, 2026-12-04).
    assert ("failed (exitcode: -9) local_rank: 1" in r.stderr or "failed (exitcode: 1) local_rank: 0" in r.stderr
            and "train (rank 0): error: another process of this job ended" in r.stderr), r.stderr[-3000:]
    log = r.stdout
    assert log.count("torchrun restart 1: continuing from the newest complete checkpoint") == 1
    resumed = re.search(r"resume: continuing from (\S+) after epoch (\d+)(?: and (\d+) of the 6 steps)?", log)
    assert resumed, log[-3000:]
    # Lost at most the steps since the newest checkpoint: the one the kill waited for, or a later one.
    done = int(resumed.group(2)) * 6 + int(resumed.group(3) or 0)
    assert done >= 1 * 6 + 3 and os.path.dirname(resumed.group(1)) == str(killed / "ckpt_0")
    assert log.count("epoch: 5 step: 6, loss is ") == 1

    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train",
                 f"--save_checkpoint_path={whole}", *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    final = "mobilenetv1-5_6.ckpt"
    a, b = ckpt_io.load_file(str(killed / "ckpt_0" / final)), ckpt_io.load_file(str(whole / "ckpt_0" / final))
    assert a["epoch"] == b["epoch"] == 5 and a["step"] == b["step"] == 30
    assert checkpoint_digest(killed / "ckpt_0" / final) == checkpoint_digest(whole / "ckpt_0" / final)
    assert ckpt_io.partial_files(str(killed / "ckpt_0")) == []
    # The replicas lines (the weights' and the weight average's digests) are those of the job never interrupted.
    replicas = [re.findall(r"replicas: sha256 of .*", text) for text in (log, r.stdout)]
    assert len(replicas[0]) == 2 and replicas[0] == replicas[1], replicas
    # Each epoch's mean loss is the job's over all its steps, the resumed epoch's as the whole job's: the
    # checkpoint kept each rank's sum so far, which each rank takes back (the same float32 additions: exact).
    means = [[r["mean_loss"] for r in read_metrics(str(run))["epochs"]] for run in (killed, whole)]
    assert len(means[0]) == 5 and means[0] == means[1]


def test_a_batch_emptied_by_unreadable_files_on_one_rank_does_not_stall_the_others(tmp_path):
    """2 ranks, batch 2 each, an image folder where half the files are unreadable: in some steps one rank
    is left with fewer than 2 images while the other has 2. That rank cannot train on its batch but must
    still take part in the gradient all-reduce: it runs a stand-in batch and every rank skips the step
    (before, the other rank waited forever). The run ends, replicas identical, nothing counted as a
    non-finite step."""
    root = tmp_path / "folder"
    for cls in ("n01", "n02"):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(4):
            (root / "train" / cls / f"good_{i}.JPEG").write_bytes(jpeg_bytes(smooth_image(40, 48, 10 * i + len(cls))))
            (root / "train" / cls / f"empty_{i}.JPEG").write_bytes(b"")
    opts = TINY + [f"--dataset_path={root}", "--dataset=imagenet2012", "--class_num=2", "--batch_size=2",
                   "--epoch_size=2", "--max_bad_samples=100", "--seed=3", "--log_interval=0"]
    cfg = load_config(opts)
    sizes = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for rank in (0, 1):
            loader = build_loader(train.data_options(cfg), True, torch.device("cpu"), True,
                                  num_shards=2, shard_id=rank)
            for epoch in (0, 1):
                loader.set_epoch(epoch)
                sizes[rank, epoch] = [int(y.numel()) for _, y in loader]
    uneven = [(e, k) for e in (0, 1) for k in range(len(sizes[0, e]))
              if min(sizes[0, e][k], sizes[1, e][k]) < 2 <= max(sizes[0, e][k], sizes[1, e][k])]
    assert uneven, sizes  # the case this test is about happens in this data set

    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train",
                 f"--save_checkpoint_path={tmp_path / 'run'}", *opts, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # The seed's line counts the steps that trained: those where both ranks had 2 images.
    trained = [int(m) for m in re.findall(r"^epoch: \d step: (\d+), loss is ", r.stdout, re.M)]
    assert trained == [sum(min(a, b) >= 2 for a, b in zip(sizes[0, e], sizes[1, e])) for e in (0, 1)], sizes
    assert "non-finite" not in r.stdout
    digests = replica_digests(r.stdout)
    assert digests["0"] == digests["1"]
    # The run's log.txt (rank 0's) names every unreadable file, those of rank 1's shard too (helper-109).
    log = (tmp_path / "run" / "ckpt_0" / "log.txt").read_text()
    assert all(str(root / "train" / cls / f"empty_{i}.JPEG") in log for cls in ("n01", "n02") for i in range(4))
    assert "(in the shard of rank 1)" in log
    # max_bad_samples is the job's limit: the 8 unreadable files are more than 5, though neither rank's
    # shard holds more than 5 (each process used to check its own and let the job through). Every rank
    # stops on the same list, together (none left waiting in a collective for one that stopped alone).
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "eval", "--dataset=imagenet2012",
                 f"--dataset_path={root / 'train'}", f"--checkpoint_path={tmp_path / 'run'}", "--device_target=CPU",
                 "--num_workers=0", "--batch_size=2", "--max_bad_samples=5", timeout=120)
    assert r.returncode != 0
    assert "8 image files could not be read, more than max_bad_samples 5" in r.stderr, r.stderr[-3000:]
    assert "Connection closed" not in r.stderr and "top_1" not in r.stdout
    # Training alike: at a checkpoint inside the epoch (step 2: 8 files read, more than 2 of them
    # unreadable), before it is written; without one, at the epoch's end.
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train",
                 f"--save_checkpoint_path={tmp_path / 'limited'}", *opts, "--max_bad_samples=2",
                 "--save_checkpoint_steps=2", timeout=150)
    assert r.returncode != 0 and "Connection closed" not in r.stderr
    assert re.search(r"\d image files could not be read, more than max_bad_samples 2", r.stderr), r.stderr[-3000:]
    assert not list((tmp_path / "limited").rglob("*.ckpt")) and "epoch: 1 step:" not in r.stdout
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train",
                 f"--save_checkpoint_path={tmp_path / 'limited_epoch'}", *opts, "--max_bad_samples=5", timeout=150)
    assert r.returncode != 0 and "Connection closed" not in r.stderr
    assert "8 image files could not be read, more than max_bad_samples 5" in r.stderr, r.stderr[-3000:]
    assert "epoch: 1 step:" not in r.stdout  # stopped before the epoch's lines, on every rank
    # Past the limit in an epoch's evaluation, every rank stops there together, and the epoch trained is saved
    # first, its evaluation left out (the resume makes it first: test_resilience.py, one process).
    both = tmp_path / "with_val"
    for split, files in (("train", [f"good_{i}" for i in range(4)]), ("validation_preprocess", ["good_0", "empty_0"])):
        for cls in ("n01", "n02"):
            (both / split / cls).mkdir(parents=True)
            for name in files:
                shutil.copy(root / "train" / cls / f"{name}.JPEG", both / split / cls)
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, f"--dataset_path={both}",
                 f"--save_checkpoint_path={tmp_path / 'eval_limit'}", "--max_bad_samples=1", "--eval_interval=1",
                 "--save_checkpoint_epochs=5", timeout=150)
    assert r.returncode != 0 and "Connection closed" not in r.stderr
    saved = list((tmp_path / "eval_limit" / "ckpt_0").glob("mobilenetv1-1_*.ckpt"))
    assert len(saved) == 1 and ckpt_io.load_file(str(saved[0]))["evaluation_left_out"] is True, r.stderr[-3000:]
    # Said once for the job, by rank 0 (each rank said it: twice).
    assert r.stderr.count(f"the state at the end of epoch 1 (before its evaluation) is saved as {saved[0]}") == 1
    assert "mobilenet-v1 train (all 2 ranks): error: " in r.stderr, r.stderr[-3000:]


def run_script(name, *args, cwd, extra="", shell="bash", **env):
    return subprocess.run([shell, os.path.join(ROOT, "scripts", name), *map(str, args)], cwd=cwd,
                          env=child_env(EXTRA_ARGS=extra, **env), capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("text, message", [
    ("on: 1\n", "line 1: key 'on' is not a name (YAML reads it as bool)"),
    ("batchsize: 8\n", "unknown key 'batchsize' (did you mean batch_size?)")])
def test_the_distributed_script_says_a_refused_config_file_in_one_line(tmp_path, text, message):
    """run_distribute_train.sh reads the file's device_num before torchrun starts (no DEVICE_NUM): a file the run
    refuses was said with load_config's Python traceback, then "cannot be read"; now in the run's one line."""
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    (tmp_path / "data").mkdir()
    r = run_script("run_distribute_train.sh", "cifar10", config, tmp_path / "data", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: config file {config}: {message}"), r.stderr
    assert not (tmp_path / "train_parallel").exists()


def test_the_distributed_script_names_the_seed_files_ignored_keys_once(tmp_path):
    """run_distribute_train.sh with the seed's file: the script's own reading of its device_num named the keys
    with no meaning here, and the run's rank 0 named them again (twice a run, once outside log.txt). torchrun
    is a stand-in here that runs rank 0 alone (the others say nothing: config.say_ignored), stopped at once by
    a refused option after the line (a real 2-process launch costs 10 s)."""
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nif [ "$1 $2" = "-m torch.distributed.run" ]; then\n'
                      f'    shift 4  # -m torch.distributed.run --standalone --nproc_per_node=N\n'
                      f'    RANK=0 exec "{sys.executable}" "$@"\nfi\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    (tmp_path / "data").mkdir()
    r = run_script("run_distribute_train.sh", "cifar10", os.path.join(ROOT, "tests", "fixtures", "seed",
                                                                      "default_config.yaml"), tmp_path / "data",
                   cwd=tmp_path, extra="--device_target=CPU --batch_size=0", PYTHON=str(python))
    assert r.returncode == 1 and "batch_size must be at least 1, got 0" in r.stdout, r.stdout + r.stderr
    assert (r.stdout + r.stderr).count("ignored seed keys with no meaning here: enable_modelarts, ") == 1
    assert "ignored seed keys with no meaning here" in (tmp_path / "train_parallel" / "log.txt").read_text()


def test_scripts_train_distributed_standalone_and_eval_on_the_demo_data(tmp_path):
    from mobilenet_v1.demo import write_demo_data

    data = tmp_path / "digits"
    write_demo_data(str(data))  # 1,438 training and 359 evaluation digits
    work = tmp_path / "work"
    work.mkdir()
    tiny = " ".join(TINY + ["--epoch_size=1", "--batch_size=32"])

    # The seed's GPU script starts its file's device_num processes: so does this one, DEVICE_NUM unset.
    config = tmp_path / "cifar10_2.yaml"
    config.write_text(open(os.path.join(ROOT, "configs", "cifar10.yaml")).read().replace("device_num: 1",
                                                                                          "device_num: 2"))
    r = run_script("run_distribute_train.sh", "cifar10", config, data, cwd=work, extra=tiny)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"start training with 2 processes (device_num 2 of {config}) in " in r.stdout
    log = (work / "train_parallel" / "log.txt").read_text()
    assert log.count("epoch: 1 step: 22, loss is ") == 1  # 1,438 // 2 // 32; rank 0 alone prints
    assert "distributed: 2 processes (gloo)" in log
    assert sorted(os.listdir(work / "train_parallel")) == ["ckpt_0", "log", "log.txt"]  # rank 1 wrote nothing
    assert (work / "train_parallel" / "log").read_text() == log  # the seed's name for it
    assert run_files(work / "train_parallel" / "ckpt_0") == ["config.yaml", "log.txt", "metrics.jsonl",
                                                             "mobilenetv1-1_22.ckpt", "tfevents"]
    digests = replica_digests(log)  # both ranks end with bitwise-identical weights and buffers
    assert sorted(digests) == ["0", "1"] and digests["0"] == digests["1"]
    parallel_ckpt = work / "train_parallel" / "ckpt_0" / "mobilenetv1-1_22.ckpt"
    assert checkpoint_digest(parallel_ckpt).startswith(digests["0"])

    r = run_script("run_standalone_train.sh", "cifar10", data, parallel_ckpt, cwd=work, extra=tiny)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (work / "train" / "log.txt").read_text()
    assert f"pre_trained: loaded {parallel_ckpt}" in log and log.count("epoch: 1 step: 44, loss is ") == 1
    assert "epoch: 1 step: 44, loss is " in (work / "train" / "console.log").read_text() == \
        (work / "train" / "log").read_text()
    assert (work / "train" / "mobilenetv1-1_44.ckpt").is_file()

    r = run_script("run_eval.sh", "cifar10", data, work / "train", cwd=work, extra=tiny)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    line = (work / "eval" / "log").read_text().strip().splitlines()[-1]  # the seed's name; log.txt too
    assert line.startswith("result: {'top_5_accuracy': ") and line.endswith(f"ckpt={work / 'train'}/mobilenetv1-1_44.ckpt")

    rank_table = tmp_path / "hccl_8p.json"  # the seed's Ascend script's second argument
    rank_table.write_text('{"version": "1.0", "server_count": "1"}')
    ascend = tmp_path / "default_config.yaml"
    ascend.write_text("device_target: Ascend\nbatch_size: 4\n")
    refusals = [
        ("run_standalone_train.sh", ["cifar10"], "Usage: bash run_standalone_train.sh [cifar10|imagenet2012] "
                                                 "[DATASET_PATH] [PRETRAINED_CKPT_PATH](optional)"),
        ("run_standalone_train.sh", ["mnist", data], "neither cifar10 nor imagenet2012"),
        ("run_standalone_train.sh", ["cifar10", tmp_path / "nope"], "is not a directory"),
        ("run_standalone_train.sh", ["cifar10", data, tmp_path / "nope.ckpt"], "is not a file"),
        ("run_distribute_train.sh", ["cifar10", data], "Usage: bash run_distribute_train.sh [cifar10|imagenet2012] "
                                                       "[CONFIG_PATH] [DATASET_PATH] [PRETRAINED_CKPT_PATH](optional)"),
        ("run_distribute_train.sh", ["cifar10", tmp_path / "no.yaml", data], "CONFIG_PATH="),
        ("run_distribute_train.sh", ["cifar10", rank_table, data], "is a JSON file, a rank table"),
        # the seed's own CIFAR-10 file: refused once, before torchrun starts (each process said it after, with
        # torchrun's traceback; helper-387)
        ("run_distribute_train.sh", ["cifar10", ascend, data], "device_target Ascend: this toolkit runs on CUDA"),
        ("run_eval.sh", ["cifar10", data], "Usage: bash run_eval.sh [cifar10|imagenet2012] [DATASET_PATH] "
                                           "[CHECKPOINT_PATH]"),
        ("run_eval.sh", ["cifar10", data, tmp_path / "nope.ckpt"], "does not exist"),
        ("run_eval.sh", ["imagenet", data, parallel_ckpt], "neither cifar10 nor imagenet2012"),
    ]
    log_before = (work / "train_parallel" / "log.txt").read_text()
    # `sh script.sh`, as the seed's README runs them (dash here), goes on in bash: the same refusals.
    for (name, args, message), shell in itertools.product(refusals, ("bash", "sh")):
        r = run_script(name, *args, cwd=work, shell=shell)
        assert r.returncode != 0 and message in r.stderr, (name, args, shell, r.stderr)
        assert "Usage: bash " + name in r.stderr
    assert (work / "train_parallel" / "log.txt").read_text() == log_before  # refused before the run's work folder


def stand_in_python(folder):
    """A PYTHON for the scripts that runs their torch check (-c) and otherwise says where it ran and with what,
    and fails with status 3."""
    (folder / "bin").mkdir()
    python = folder / "bin" / "python"
    python.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then exec "{sys.executable}" "$@"; fi\n'
                      f'echo "ran in $PWD: $*"\nexit 3\n')
    python.chmod(0o755)
    return python


def test_scripts_run_a_relative_python_from_where_they_were_started(tmp_path):
    """PYTHON given relative (PYTHON=bin/python), as the scripts' paths may be: they ran it after changing into
    their work folder (./eval/, ./train/, ./train_parallel/), where it is not: "No such file or directory",
    status 127 (run_distribute_train.sh's torch check ran it before the change, and passed). The scripts end
    with the stand-in's status."""
    stand_in_python(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "run").mkdir()
    config = os.path.join(ROOT, "configs", "cifar10.yaml")
    for name, args, folder in (("run_eval.sh", ["data", "run"], "eval"),
                               ("run_standalone_train.sh", ["data"], "train"),
                               ("run_distribute_train.sh", [config, "data"], "train_parallel")):
        r = run_script(name, "cifar10", *args, cwd=tmp_path, PYTHON=os.path.join("bin", "python"), DEVICE_NUM="2")
        assert r.returncode == 3, (name, r.stdout + r.stderr)
        assert f"ran in {tmp_path / folder}: -m " in r.stdout, (name, r.stdout + r.stderr)


def test_scripts_find_the_repository_with_a_cdpath_in_the_environment(tmp_path):
    """An exported CDPATH (here "."), the script started by a path relative to it: common.sh's cd to the
    repository printed the folder it found, and REPO_ROOT held it twice, on two lines: the configuration
    configs/cifar10.yaml under that was no such file."""
    (tmp_path / "repo").symlink_to(ROOT)
    (tmp_path / "data").mkdir()
    (tmp_path / "run").mkdir()
    r = subprocess.run(["bash", os.path.join("repo", "scripts", "run_eval.sh"), "cifar10", "data", "run"],
                       cwd=tmp_path, env=child_env(CDPATH=".", PYTHON=str(stand_in_python(tmp_path))),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f" --config_path={tmp_path / 'repo' / 'configs' / 'cifar10.yaml'} " in r.stdout, r.stdout + r.stderr


def test_scripts_pass_extra_args_as_words_not_file_patterns(tmp_path):
    """EXTRA_ARGS is split at white space, line breaks included; a word that reads as a file pattern
    ([0.5,0.5,0.5] matches a file named 5) reached the command as the file it matched in the work folder."""
    stand_in_python(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "5").write_text("")
    r = run_script("run_eval.sh", "cifar10", "data", "run", cwd=tmp_path, PYTHON=str(tmp_path / "bin" / "python"),
                   extra="--mean  [0.5,0.5,0.5]\t--batch_size\n8")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith(" --mean [0.5,0.5,0.5] --batch_size 8"), r.stdout + r.stderr


def test_scripts_read_quotes_in_extra_args_as_a_shell_does(tmp_path):
    """EXTRA_ARGS="--teacher '/data/my teacher.ckpt'": split at white space alone, the path reached the command as
    two words with the quotes in them ("'/data/my", "teacher.ckpt'"), so no path with a space could be passed
    (helper-406). Words are split as a shell splits them, quotes and backslashes read, nothing expanded; an
    unclosed quote is refused before anything runs."""
    python = stand_in_python(tmp_path)
    python.write_text(python.read_text().replace('echo "ran in $PWD: $*"',
                                                 'for a in "$@"; do printf "<%s>" "$a"; done; echo'))
    (tmp_path / "data").mkdir()
    (tmp_path / "run").mkdir()
    extra = "--teacher '/data/my teacher.ckpt' --labels \"it's here\" --x a\\ b --mean [0.5] --y $HOME ~/z"
    r = run_script("run_eval.sh", "cifar10", "data", "run", cwd=tmp_path, PYTHON=str(python), extra=extra)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("<--teacher></data/my teacher.ckpt><--labels><it's here><--x><a b>"
                                      "<--mean><[0.5]><--y><$HOME><~/z>"), r.stdout + r.stderr
    r = run_script("run_eval.sh", "cifar10", "data", "run", cwd=tmp_path, PYTHON=str(python),
                   extra="--teacher '/data/my teacher.ckpt")
    assert r.returncode == 1 and "<-m>" not in r.stdout, r.stdout + r.stderr
    assert r.stderr.startswith("error: EXTRA_ARGS cannot be split into words: No closing quotation"), r.stderr


def test_two_ranks_evaluate_the_checkpoint_rank_0_chose_in_a_folder(odd_cifar, tmp_path):
    """eval --checkpoint_path FOLDER on 2 ranks while training goes on there: a checkpoint that lands
    after rank 0 took the newest, but before rank 1 looked, must not be evaluated on rank 1's shard
    (the summed counts would mix two models); rank 0 chooses and every rank loads that file."""
    run = tmp_path / "run"
    run.mkdir()
    torch.manual_seed(0)
    cfg = load_config(TINY + ["--class_num=4"])
    older = train.build_model(cfg)
    ckpt_io.atomic_save({"model": older.state_dict(), "model_args": train.model_args(cfg)},
                        str(run / "mobilenetv1-1_12.ckpt"))
    newer = train.build_model(cfg)
    with torch.no_grad():  # predicts class 1 for every image (the untrained older one: 3)
        newer.fc.weight.zero_()
        newer.fc.bias.copy_(torch.tensor([0.0, 100.0, 0.0, 0.0]))
    ckpt_io.atomic_save({"model": newer.state_dict(), "model_args": train.model_args(cfg)},
                        str(tmp_path / "newer.ckpt"))
    opts = TINY + [f"--dataset_path={odd_cifar}", "--batch_size=8", f"--checkpoint_path={run}", "--json"]
    single = evaluate.run(load_config(opts[:-1]), confusion=True)
    assert single["ckpt"] == str(run / "mobilenetv1-1_12.ckpt")
    env = child_env(MARK=str(tmp_path / "mark"), FOLDER=str(run), NEWER=str(tmp_path / "newer.ckpt"),
                    NEWER_NAME="mobilenetv1-2_12.ckpt")
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2",
                                     os.path.join(ROOT, "tests", "eval_worker.py"), *opts, "--per_class"), cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (run / "mobilenetv1-2_12.ckpt").is_file()  # it did land during the evaluation
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ckpt"] == single["ckpt"] and result["total"] == 41
    assert result["top_1_accuracy"] == single["top_1_accuracy"]
    assert result["top_5_accuracy"] == single["top_5_accuracy"]
    # The confusion matrices of the two shards add up to the one of the whole set.
    assert result["per_class"] == evaluate.per_class(single["confusion"], single["classes"])
    assert sum(r["images"] for r in result["per_class"]) == 41
    # checkpoint_path may differ by machine (the same storage mounted elsewhere): each rank here works in a
    # folder of its own, given the run folder under a name of its own. Rank 1 evaluated rank 0's path, which
    # its machine has not ("checkpoint run0/ckpt_0/mobilenetv1-1_12.ckpt: no such file"); it takes the file
    # rank 0 chose under its own path. Other weights there (another file of that name on its disk) are refused
    # on every rank, where their summed counts mixed two models' without a word.
    for rank in (0, 1):
        (tmp_path / f"disk{rank}" / f"run{rank}" / "ckpt_0").mkdir(parents=True)
        shutil.copyfile(run / "mobilenetv1-1_12.ckpt",
                        tmp_path / f"disk{rank}" / f"run{rank}" / "ckpt_0" / "mobilenetv1-1_12.ckpt")
    own_disk = tmp_path / "own_disk.py"
    own_disk.write_text("import os, sys\n"
                        "from mobilenet_v1 import cli\n"
                        "rank = os.environ['RANK']\n"
                        "os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'disk' + rank))\n"
                        "sys.exit(cli.main(['eval', *sys.argv[1:], '--checkpoint_path=run' + rank]))\n")
    opts = TINY + [f"--dataset_path={odd_cifar}", "--batch_size=8", "--json"]
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_disk), *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["ckpt"] == os.path.join("run0", "ckpt_0", "mobilenetv1-1_12.ckpt") and result["total"] == 41
    assert result["top_1_accuracy"] == single["top_1_accuracy"]
    shutil.copyfile(tmp_path / "newer.ckpt", tmp_path / "disk1" / "run1" / "ckpt_0" / "mobilenetv1-1_12.ckpt")
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_disk), *opts)
    assert r.returncode != 0 and not r.stdout.strip(), r.stdout[-3000:] + r.stderr[-3000:]
    for rank in (0, 1):
        chosen = os.path.join(f"run{rank}", "ckpt_0", "mobilenetv1-1_12.ckpt")
        assert (f"eval (rank {rank}): error: the processes of this job were given different checkpoints at "
                f"{chosen}: weights ") in r.stderr, r.stderr[-3000:]
    # Rank 1's copy cut short (or missing): it alone raised, and rank 0 waited for it at the next collective, then
    # said only "another process of this job ended". Every rank stops at the load, the job says which and why.
    damaged = tmp_path / "disk1" / "run1" / "ckpt_0" / "mobilenetv1-1_12.ckpt"
    damaged.write_bytes((run / "mobilenetv1-1_12.ckpt").read_bytes()[:1000])
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_disk), *opts)
    assert r.returncode != 0 and not r.stdout.strip(), r.stdout[-3000:] + r.stderr[-3000:]
    assert (f"mobilenet-v1 eval (all 2 ranks): error: rank 1 cannot load the checkpoint to evaluate: checkpoint "
            f"{os.path.join('run1', 'ckpt_0', 'mobilenetv1-1_12.ckpt')}: cannot be read as a PyTorch checkpoint (cut "
            f"short") in r.stderr and "another process" not in r.stderr, r.stderr[-3000:]
    # Rank 1's copy another kind of file (bytes that read as ONNX): it took the exported file's branch and rank 0
    # the checkpoint's, their collectives crossed. Rank 0's reading of the file decides the branch for every rank.
    damaged.write_bytes(b"\x08\x07" + bytes(100))
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_disk), *opts)
    assert r.returncode != 0 and not r.stdout.strip(), r.stdout[-3000:] + r.stderr[-3000:]
    assert (f"mobilenet-v1 eval (all 2 ranks): error: rank 1 cannot load the checkpoint to evaluate: checkpoint "
            f"{os.path.join('run1', 'ckpt_0', 'mobilenetv1-1_12.ckpt')}: ") in r.stderr, r.stderr[-3000:]


def test_an_eval_split_smaller_than_a_batch_under_eval_drop_last_is_said_once_with_the_way_out(odd_cifar, tmp_path):
    """eval_drop_last with a batch larger than the eval split (41 images, batch 64) evaluates nothing: on 2 ranks
    as in one process, one line for the job that names the split's images and what to change (each rank said
    only "no evaluation samples", its shard of one process's full batches being empty)."""
    torch.manual_seed(0)
    cfg = load_config(TINY + ["--class_num=4"])
    ckpt_io.atomic_save({"model": train.build_model(cfg).state_dict(), "model_args": train.model_args(cfg)},
                        str(tmp_path / "model.ckpt"))
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "eval", *TINY,
                 f"--dataset_path={odd_cifar}", "--batch_size=64", "--eval_drop_last=True",
                 f"--checkpoint_path={tmp_path / 'model.ckpt'}")
    why = (f"dataset_path {odd_cifar}: no evaluation samples: eval_drop_last leaves out the last partial batch, and "
           f"the 41 images of the eval split are fewer than one batch of 64: a smaller --eval_batch_size, or "
           f"--eval_drop_last False")
    assert r.returncode != 0 and f"mobilenet-v1 eval (all 2 ranks): error: {why}" in r.stderr, r.stderr[-3000:]
    assert r.stderr.count("no evaluation samples") == 1, r.stderr[-3000:]


def test_ranks_given_other_teachers_are_refused_before_training(cifar_dir, tmp_path):
    """--teacher may differ by machine (a path of its own to the same file); another file behind it, whose
    targets the ranks' losses would follow apart, is refused on every rank before a step (it trained)."""
    cfg = load_config(TINY + ["--class_num=4"])
    for rank in (0, 1):
        torch.manual_seed(rank)
        ckpt_io.atomic_save({"model": train.build_model(cfg).state_dict(), "model_args": train.model_args(cfg)},
                            str(tmp_path / f"teacher{rank}.ckpt"))
    own_teacher = tmp_path / "own_teacher.py"
    own_teacher.write_text("import os, sys\n"
                           "from mobilenet_v1 import cli\n"
                           "here = os.path.dirname(os.path.abspath(__file__))\n"
                           "teacher = os.path.join(here, 'teacher' + os.environ['RANK'] + '.ckpt')\n"
                           "sys.exit(cli.main(['train', *sys.argv[1:], '--teacher=' + teacher]))\n")
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_teacher), *TINY, f"--dataset_path={cifar_dir}",
                 "--class_num=4", "--batch_size=16", "--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'run'}")
    assert r.returncode != 0, r.stdout[-3000:] + r.stderr[-3000:]
    for rank in (0, 1):
        assert (f"train (rank {rank}): error: the processes of this job were given different teacher files at "
                f"{tmp_path / f'teacher{rank}.ckpt'}: sha256 ") in r.stderr, r.stderr[-3000:]
    assert "epoch: 1 step: 6" not in r.stdout and not os.path.exists(tmp_path / "run" / "ckpt_0" / "config.yaml")
    # Rank 1's teacher missing: it alone raised, rank 0 said only "another process of this job ended".
    (tmp_path / "teacher1.ckpt").unlink()
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_teacher), *TINY, f"--dataset_path={cifar_dir}",
                 "--class_num=4", "--batch_size=16", "--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'run'}")
    assert r.returncode != 0 and "another process" not in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    assert (f"mobilenet-v1 train (all 2 ranks): error: rank 1 cannot load the teacher: --teacher "
            f"{tmp_path / 'teacher1.ckpt'}: no such file or run folder") in r.stderr, r.stderr[-3000:]


def test_a_machine_given_a_missing_data_path_or_resume_alone_is_named_on_every_rank(cifar_dir, tmp_path):
    """Rank 1's data path missing: it alone said why, rank 0 that a process had ended (and, training, that
    --resume auto would continue from a checkpoint there was none of). --resume auto on rank 1 alone: rank 0 started
    afresh, moving the run's checkpoints aside, while rank 1 waited to be told which to resume from (a hang, or a
    traceback)."""
    own = tmp_path / "own.py"
    own.write_text("import os, sys\n"
                   "from mobilenet_v1 import cli\n"
                   "extra = sys.argv[1:] if os.environ['RANK'] == '1' else []\n"
                   "sys.exit(cli.main([*os.environ['ARGS'].split(), *extra]))\n")
    cfg = load_config(TINY + ["--class_num=4"])
    ckpt_io.atomic_save({"model": train.build_model(cfg).state_dict(), "model_args": train.model_args(cfg)},
                        str(tmp_path / "model.ckpt"))
    args = [*TINY, f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16"]
    for command in (["train", "--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'run'}"],
                    ["eval", f"--checkpoint_path={tmp_path / 'model.ckpt'}"]):
        r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2", str(own),
                                         f"--dataset_path={tmp_path / 'nowhere'}"),
                           cwd=ROOT, env=dict(child_env(), ARGS=" ".join(command[:1] + args + command[1:])),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and "another process" not in r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
        assert (f"mobilenet-v1 {command[0]} (all 2 ranks): error: rank 1 cannot read the data: dataset_path "
                f"'{tmp_path / 'nowhere'}' does not exist") in r.stderr, r.stderr[-3000:]
    env = dict(child_env(), ARGS=" ".join(["train", *args, "--epoch_size=1", f"--save_checkpoint_path={tmp_path}/run"]))
    r = subprocess.run(torchrun_argv("--standalone", "--nproc_per_node=2", str(own), "--resume=auto"),
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "different options: resume '(none)' on rank 0, 'auto' on rank 1;" in r.stderr, \
        r.stdout[-3000:] + r.stderr[-3000:]
    assert "epoch: 1 step:" not in r.stdout


def test_a_continuation_whose_ranks_read_the_file_from_other_places_counts_steps_alike(cifar_dir, tmp_path):
    """--pre_trained F --pretrain_epoch_size 2 at another batch size continues the run folder's step count from the
    file's where F is in rank 0's run folder; rank 1 reads a copy elsewhere (pre_trained may differ by machine).
    Each rank counted from its own view (rank 0 from the file's step, rank 1 from the schedule's position), so
    their logging all-reduces fell at other steps, crossing the gradients' (a hang or a collective mismatch)."""
    opts = [*TINY, f"--dataset_path={cifar_dir}", "--class_num=4", f"--save_checkpoint_path={tmp_path / 'run'}"]
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, "--batch_size=16",
                 "--epoch_size=2", "--eval_interval=0")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    source = tmp_path / "run" / "ckpt_0" / "mobilenetv1-2_6.ckpt"
    shutil.copyfile(source, tmp_path / "copy.ckpt")
    own_copy = tmp_path / "own_copy.py"
    own_copy.write_text("import os, sys\n"
                        "from mobilenet_v1 import cli\n"
                        f"path = {str(source)!r} if os.environ['RANK'] == '0' else {str(tmp_path / 'copy.ckpt')!r}\n"
                        "sys.exit(cli.main(['train', *sys.argv[1:], '--pre_trained=' + path]))\n")
    r = torchrun("--standalone", "--nproc_per_node=2", str(own_copy), *opts, "--batch_size=8", "--epoch_size=3",
                 "--pretrain_epoch_size=2", "--log_interval=5", "--eval_interval=0", timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    last = ckpt_io.load_file(str(tmp_path / "run" / "ckpt_0" / "mobilenetv1-3_12.ckpt"))
    assert last["step"] == 12 + 12  # on from the file's 12 steps (2 epochs of 6), then an epoch of 12


def test_an_error_every_rank_raises_is_said_once_for_the_job(cifar_dir, tmp_path):
    """3 processes whose shards (64 samples) make no batch of 80 all stop at that point: one line says it for
    the two ranks whose message is alike, one for rank 2, whose machine has the data at a path of its own (each
    process printed its line: 3 alike lines where the job has one problem)."""
    shutil.copytree(cifar_dir, tmp_path / "elsewhere")
    own_data = tmp_path / "own_data.py"
    own_data.write_text("import os, sys\n"
                        "from mobilenet_v1 import cli\n"
                        f"path = {str(tmp_path / 'elsewhere')!r} if os.environ['RANK'] == '2' else {str(cifar_dir)!r}\n"
                        "sys.exit(cli.main(['train', *sys.argv[1:], '--dataset_path=' + path]))\n")
    r = torchrun("--standalone", "--nproc_per_node=3", str(own_data), *TINY, "--class_num=4", "--batch_size=80",
                 f"--save_checkpoint_path={tmp_path / 'run'}")
    assert r.returncode != 0 and r.stderr.count("training samples a process make no full batch") == 2, \
        r.stderr[-3000:]
    assert (f"mobilenet-v1 train (ranks 0-1): error: dataset_path {cifar_dir}: 64 training samples a process make "
            f"no full batch of batch_size 80; --batch_size 64 or less trains") in r.stderr, r.stderr[-3000:]
    assert (f"mobilenet-v1 train (rank 2): error: dataset_path {tmp_path / 'elsewhere'}: 64 training samples a "
            f"process make no full batch") in r.stderr


def test_resume_naming_the_run_folder_goes_on_in_the_layout_its_checkpoints_are_in(cifar_dir, tmp_path):
    """--resume naming save_checkpoint_path itself continues as --resume auto does, in the folder of the layout
    its checkpoints are in (a distributed run's ckpt_0/ here, continued by one process): it wrote its own beside
    them, a folder of two runs that eval and info refuse (helper-241)."""
    run = tmp_path / "run"
    opts = TINY + [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--log_interval=0"]
    train.run(load_config(opts + ["--epoch_size=1", f"--save_checkpoint_path={run / 'ckpt_0'}"]))
    train.run(load_config(opts + ["--epoch_size=2", f"--save_checkpoint_path={run}", f"--resume={run}"]))
    assert ckpt_io.list_checkpoints(str(run)) == []
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(run / "ckpt_0" / "mobilenetv1-2_12.ckpt")
    # A checkpoint file of either folder names the run as its folder does; one elsewhere, or no --resume, does not.
    for resume, own in ((run / "ckpt_0" / "mobilenetv1-2_12.ckpt", True), (run / "ckpt_0", True), (run, True),
                        (cifar_dir, False), ("", False)):
        cfg = load_config(opts + [f"--save_checkpoint_path={run}", f"--resume={resume}"])
        assert train.resumes_own_folder(cfg) is own, resume


def test_a_run_of_one_process_continues_on_two_in_its_own_folder(cifar_dir, tmp_path, capsys):
    """One process, 12 steps an epoch, then torchrun with 2 (6 steps an epoch) and --resume auto: the
    job finds the run's checkpoints in save_checkpoint_path itself (a distributed run's own would be in
    ckpt_0/), continues there from the epoch's end at the new count, and counts the global step on."""
    run = tmp_path / "run"
    opts = TINY + [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--save_checkpoint_epochs=1",
                   f"--save_checkpoint_path={run}", "--log_interval=0"]
    train.run(load_config(opts + ["--epoch_size=2"]))
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, "--epoch_size=3",
                 "--resume=auto")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"the checkpoints of this run are in {run}, written by one process: it continues there" in r.stdout
    assert f"continuing from {run / 'mobilenetv1-2_12.ckpt'} after epoch 2" in r.stdout
    assert "this run makes 6 of 32" in r.stdout
    assert not (run / "ckpt_0").exists()
    last = ckpt_io.load_file(str(run / "mobilenetv1-3_6.ckpt"))
    assert (last["step"], last["step_offset"], last["samples_per_step"]) == (30, 12, 32)
    assert [rec["step"] for rec in read_metrics(str(run))["epochs"]] == [12, 24, 30]
    capsys.readouterr()
    assert cli.main(["info", str(run)]) == 0  # the job's batch, beside the batch_size of each process
    assert "batch_size 16 (32 images a step: processes x batch_size x grad_accum_steps)" in capsys.readouterr().out
    # One run a folder, in either layout: a torchrun job (which writes into ckpt_0/) and a run of one process
    # (into the folder itself) both trained into it at once, each exiting 0.
    holder = ckpt_io.RunLock(str(run))
    try:
        r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, "--epoch_size=1")
    finally:
        holder.release()
    assert r.returncode != 0 and f"save_checkpoint_path {run}: another run is training there" in r.stderr, r.stderr
    assert not (run / "ckpt_0").exists()
    (run / "ckpt_0").mkdir()  # a run of one process given ckpt_0/ itself as its folder holds that one
    holder = ckpt_io.RunLock(str(run / "ckpt_0"))
    try:
        r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, "--epoch_size=1")
    finally:
        holder.release()
    assert r.returncode != 0 and f"{run / 'ckpt_0'}: another run is training there" in r.stderr, r.stderr
    assert os.listdir(run / "ckpt_0") == []
    (run / "ckpt_0").rmdir()
    # A fresh torchrun job sets the run of one process aside: eval, info and --resume auto took its checkpoints.
    kept = {n: (run / n).read_bytes() for n in os.listdir(run) if n.endswith(".ckpt")}
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", *opts, "--epoch_size=1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (f"save_checkpoint_path {run} held an earlier run of one process, which eval, info and --resume auto "
            f"would take for this one's: moved its checkpoints and records to {run / 'earlier-run-1'}") in r.stdout
    assert {n: (run / "earlier-run-1" / n).read_bytes() for n in kept} == kept
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(run / "ckpt_0" / "mobilenetv1-1_6.ckpt")
    # Every rank resumes from the same file: a rank that finds another run's checkpoint under the chosen name
    # (machines reading the run folder from disks of their own) stops the job before it trains, on every rank
    # (helper-114: it ended with "replicas differ"). Rank 1's reading is made to differ here.
    other = tmp_path / "other_disk.py"
    other.write_text("import os, sys\n"
                     "from mobilenet_v1 import checkpoint as ckpt_io, cli\n"
                     "load = ckpt_io.load_file\n"
                     "def another(path, *args, **kwargs):\n"
                     "    ckpt = load(path, *args, **kwargs)\n"
                     "    ckpt['model']['fc.bias'] = ckpt['model']['fc.bias'] + 1\n"
                     "    return ckpt\n"
                     "if os.environ['RANK'] == '1':\n"
                     "    ckpt_io.load_file = another\n"
                     "sys.exit(cli.main())\n")
    r = torchrun("--standalone", "--nproc_per_node=2", str(other), "train", *opts, "--epoch_size=2", "--resume=auto")
    chosen = run / "ckpt_0" / "mobilenetv1-1_6.ckpt"
    assert r.returncode != 0 and r.stderr.count(f"were given different checkpoints at {chosen}: weights") == 1, \
        r.stderr[-3000:]  # every rank refuses it, rank 0 says it for the job (each rank said it: twice)
    assert "mobilenet-v1 train (all 2 ranks): error: the processes of this job were given different" in r.stderr
    assert ckpt_io.resolve_checkpoint_path(str(run)) == str(chosen)  # nothing trained, nothing moved


def test_each_rank_reads_the_shard_of_its_global_rank_not_its_local_one():
    """On two machines of two processes each, rank 3 (local rank 1 on the second machine) reads shard 3 of 4:
    by its local rank it read shard 1, which rank 1 reads too, and shard 3 went unread."""
    assert distributed.Context(rank=3, world_size=4, local_rank=1, backend="gloo").shard() == \
        {"num_shards": 4, "shard_id": 3}
    assert distributed.Context().shard() == {"num_shards": 1, "shard_id": 0}


def test_two_ranks_gather_a_sparse_confusion_matrix(odd_cifar, tmp_path):
    """Past DENSE_CONFUSION_CLASSES outputs each rank's confusion matrix is sparse and the ranks' cells are
    gathered (not summed densely): the per-class table and the CSV are the single process's dense ones."""
    torch.manual_seed(0)
    cfg = load_config(TINY + ["--class_num=4"])
    ckpt_io.atomic_save({"model": train.build_model(cfg).state_dict(), "model_args": train.model_args(cfg)},
                        str(tmp_path / "m.ckpt"))
    opts = TINY + [f"--dataset_path={odd_cifar}", "--batch_size=8", f"--checkpoint_path={tmp_path / 'm.ckpt'}"]
    single = evaluate.run(load_config(opts), confusion=True)
    assert not single["confusion"].is_sparse
    r = torchrun("--standalone", "--nproc_per_node=2", os.path.join(ROOT, "tests", "sparse_eval_worker.py"), *opts,
                 "--json", "--per_class", f"--confusion_csv={tmp_path / 'cm.csv'}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["total"] == 41
    assert result["per_class"] == evaluate.per_class(single["confusion"], single["classes"], single["unpredicted"])
    assert (tmp_path / "cm.csv").read_text() == evaluate.confusion_csv(single["confusion"], single["classes"],
                                                                        single["unpredicted"])


def test_resume_auto_where_one_machines_run_folder_holds_a_run_and_the_others_none_is_refused(cifar_dir, tmp_path):
    """Two machines given run folders of their own (local disks): one holds a run's checkpoint, the other none.
    With c10d rendezvous either may be rank 0; where it was the empty one, --resume auto started the job afresh
    beside the other's run without a word (helper-383). Either way the job is refused on every rank."""
    run = tmp_path / "run"
    opts = [f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=16", "--epoch_size=1", "--log_interval=0"]
    r = torchrun("--standalone", "--nproc_per_node=2", "-m", "mobilenet_v1", "train", f"--save_checkpoint_path={run}",
                 *opts, *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    port = free_port()
    nodes = [subprocess.Popen(torchrun_argv("--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=static",
                                            "--master_addr=127.0.0.1", f"--master_port={port}", f"--node_rank={k}",
                                            "-m", "mobilenet_v1", "train", "--resume=auto", "--epoch_size=2",
                                            f"--save_checkpoint_path={tmp_path / 'empty' if k == 0 else run}",
                                            *opts[:-2], "--log_interval=0", *TINY),
                              cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k in range(2)]
    logs = [p.communicate(timeout=120)[0] for p in nodes]
    said = ("the processes of this job were given different run folders to resume from: newest checkpoint in the run "
            "folder 'none' on rank 0, 'mobilenetv1-1_6.ckpt' on rank 1")
    assert all(p.returncode != 0 and said in log for p, log in zip(nodes, logs)), "\n".join(l[-2000:] for l in logs)
    assert not os.path.exists(tmp_path / "empty" / "ckpt_0" / "mobilenetv1-2_6.ckpt")
