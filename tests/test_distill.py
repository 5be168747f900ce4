"""--teacher: knowledge distillation from a trained checkpoint (losses.Distiller)."""
import dataclasses
import os
import re
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, info, load_model, train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.data import DataOptions, build_loader
from mobilenet_v1.losses import Distiller
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteError

CPU = torch.device("cpu")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]


class Fixed(nn.Module):
    """A teacher that answers with given logits, and counts its calls and the batches it saw."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.seen = logits, []

    def forward(self, x):
        self.seen.append(x)
        return self.logits


def test_the_loss_blends_the_task_loss_with_the_temperature_scaled_divergence():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5) * 3, torch.randn(6, 5) * 3
    task = torch.tensor(1.7)
    x = torch.randn(6, 3, 8, 8)
    for alpha, t in ((0.5, 1.0), (0.9, 4.0), (1.0, 2.0)):
        fixed = Fixed(teacher)
        d = Distiller(fixed, alpha, t)
        p_t, log_p_s = F.softmax(teacher / t, dim=1), F.log_softmax(student / t, dim=1)
        kl = (p_t * (p_t.log() - log_p_s)).sum(dim=1).mean() * t * t
        got = d(task, student, d.logits(x))
        torch.testing.assert_close(got, (1 - alpha) * task + alpha * kl)
        assert fixed.seen[0] is x and not fixed.training  # the student's batch; evaluation mode
    assert float(Distiller(Fixed(teacher)).divergence(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    pure = Distiller(Fixed(teacher), alpha=1.0)(torch.tensor(float("nan")), student, teacher)
    assert torch.isfinite(pure)  # the task loss takes no part with alpha 1, not even as 0 x NaN
    with pytest.raises(ValueError, match=r"distill_alpha must be in \(0, 1\]"):
        Distiller(Fixed(teacher), 0.0)


def test_the_teacher_line_warns_near_chance_and_of_outputs_that_are_not_finite():
    line = train.teacher_line({"top_1": 0.9, "top_5": 1.0, "eval_images": 10, "nonfinite_outputs": 3}, 4)
    assert line == ("teacher: top-1 0.9000 top-5 1.0000 on the eval split (10 images)\nwarning: the teacher's outputs "
                    "are not finite for 3 of those images")
    assert "little better than chance (1/10)" in train.teacher_line({"top_1": 0.19, "top_5": 0.5, "eval_images": 9}, 10)
    assert "warning" not in train.teacher_line({"top_1": 0.2, "top_5": 0.5, "eval_images": 9}, 10)


def test_gradient_steps_move_the_student_toward_the_teacher():
    torch.manual_seed(1)
    x = torch.randn(64, 10)
    teacher_net = nn.Linear(10, 3)
    student = nn.Linear(10, 3)
    d = Distiller(teacher_net, alpha=1.0, temperature=2.0)
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    with torch.no_grad():
        before = float(d.divergence(student(x), teacher_net(x)))
    for _ in range(50):
        opt.zero_grad()
        d(torch.zeros(()), student(x), d.logits(x)).backward()
        opt.step()
    with torch.no_grad():
        assert float(d.divergence(student(x), teacher_net(x))) < 0.2 * before
    assert not any(p.requires_grad for p in teacher_net.parameters())  # the teacher never trains


def divergence_on(run_ckpt, teacher_ckpt, cifar_dir):
    """T=1 KL(teacher || student) over the eval images."""
    student, teacher = load_model(run_ckpt), load_model(teacher_ckpt)
    opts = DataOptions("cifar10", str(cifar_dir), 40, 32, seed=1, num_workers=0, channels_last=False)
    d = Distiller(teacher)
    with torch.no_grad():
        return sum(float(d.divergence(student(x), teacher(x))) for x, _ in build_loader(opts, train=False, device=CPU))


def test_a_distilled_student_follows_its_teacher_and_bad_teachers_are_refused(cifar_dir, tmp_path, capsys,
                                                                               one_thread):
    common = SMALL + [f"--dataset_path={cifar_dir}"]
    teacher = train.run(load_config(common + ["--epoch_size=3", "--width_mult=0.5",
                                              f"--save_checkpoint_path={tmp_path / 'teacher'}"]))["checkpoint"]
    before = {k: v.clone() for k, v in ckpt_io.load_file(teacher)["model"].items()}
    student = common + ["--epoch_size=5", "--seed=5"]
    plain = train.run(load_config(student + [f"--save_checkpoint_path={tmp_path / 'plain'}"]))["checkpoint"]
    capsys.readouterr()
    taught = train.run(load_config(student + [f"--teacher={tmp_path / 'teacher'}", "--distill_alpha=1.0",
                                              "--distill_temperature=2", f"--save_checkpoint_path={tmp_path / 'kd'}",
                                              "--eval_interval=5"]))
    out = capsys.readouterr().out
    said = re.search(r"^teacher: top-1 (\S+) top-5 \S+ on the eval split \(40 images\)$", out, re.M)
    opts = DataOptions("cifar10", str(cifar_dir), 40, 32, seed=1, num_workers=0, channels_last=False)
    with torch.no_grad():
        right = sum(int((load_model(teacher)(x).argmax(1) == y).sum()) for x, y in build_loader(opts, False, CPU))
    assert said and said.group(1) == f"{right / 40:.4f}"  # the teacher's own top-1, before the first step
    assert (f"teacher: {teacher} (width_mult 0.5); the loss is 0 x the task loss + 1 x T^2 KL(teacher || student) "
            f"at T 2") in out
    kd, ce = divergence_on(taught["checkpoint"], teacher, cifar_dir), divergence_on(plain, teacher, cifar_dir)
    assert kd < 0.7 * ce, (kd, ce)
    for k, v in ckpt_io.load_file(teacher)["model"].items():
        assert torch.equal(v, before[k]), k  # not even its BatchNorm statistics moved
    # Under progressive resizing it is fed the smaller sizes too, and the run says so.
    _, about, _ = train.checkpoint_teacher(load_config(student + ["--image_size_start=16"]), teacher, None)
    assert about == "width_mult 0.5, trained at image_size 32, here fed 16 to 32 (progressive resizing)"
    # A teacher of other outputs, and distillation keys without a teacher, are refused by name.
    other = tmp_path / "five.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(5, 0.25).state_dict()}, str(other))
    with pytest.raises(ConfigError, match=f"teacher {other}: it has 5 outputs, this run's class_num is 4"):
        train.run(load_config(student + [f"--teacher={other}", f"--save_checkpoint_path={tmp_path / 'x'}"]))
    with pytest.raises(ConfigError, match="option --distill_alpha: distill_alpha 0.7 is knowledge distillation's; "
                                          "no teacher is set"):
        load_config(["--distill_alpha=0.7"])
    with pytest.raises(ckpt_io.CheckpointError, match="no such"):
        train.run(load_config(student + [f"--teacher={tmp_path / 'missing.ckpt'}",
                                         f"--save_checkpoint_path={tmp_path / 'y'}"]))
    # A teacher among the checkpoints of the student's own folder: a fresh run would move it aside, a run write
    # over its name, and a resume read another file as the teacher. Refused, nothing moved.
    own = tmp_path / "own"
    shutil.copytree(tmp_path / "teacher", own)
    kept = ckpt_io.training_files(str(own))
    with pytest.raises(ConfigError, match=re.escape(f"teacher {own / os.path.basename(teacher)}: a checkpoint of "
                                                    f"save_checkpoint_path {own}, where this run moves")):
        train.run(load_config(student + [f"--teacher={own}", f"--save_checkpoint_path={own}"]))
    assert ckpt_io.training_files(str(own)) == kept and not (own / "earlier-run-1").exists()
    # A resume names a teacher whose file is not the one the run distilled from, though --teacher is the same.
    resumed = student + [f"--teacher={tmp_path / 'teacher'}", "--distill_alpha=1.0", "--distill_temperature=2",
                         f"--save_checkpoint_path={tmp_path / 'kd'}", "--eval_interval=5", "--resume=auto"]
    assert ckpt_io.load_file(taught["checkpoint"])["teacher_file"]["path"] == teacher
    capsys.readouterr()
    assert cli.main(["info", taught["checkpoint"]]) == 0  # info names the file and its digest
    assert re.search(rf"^  teacher: +{re.escape(str(tmp_path / 'teacher'))} \({re.escape(teacher)}, sha256 "
                     rf"[0-9a-f]{{12}}\), distill_alpha 1, distill_temperature 2$", capsys.readouterr().out, re.M)
    named = info.describe(taught["checkpoint"])  # a teacher named by its file: the path is not said twice
    named["training"]["teacher"]["teacher"] = teacher
    assert re.search(rf"^  teacher: +{re.escape(teacher)} \(sha256 [0-9a-f]{{12}}\), ",
                     "\n".join(info.describe_lines(named)), re.M)
    train.run(load_config(resumed))
    out = capsys.readouterr().out
    assert "resume: continuing from" in out and "is not what" not in out
    state = ckpt_io.load_file(teacher)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    ckpt_io.atomic_save(state, teacher)  # written over: the same path, other weights
    train.run(load_config(resumed))
    assert re.search(rf"^resume: teacher {re.escape(str(tmp_path / 'teacher'))} is not what \S+'s run distilled "
                     rf"from: {re.escape(teacher)} has other contents \(sha256 [0-9a-f]{{12}} then, [0-9a-f]{{12}} "
                     rf"now\); the loss follows this one from here$", capsys.readouterr().out, re.M)


class Answers(nn.Module):
    """A network of another kind than ours that scores class 2 whatever it sees."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.1)
        self.bias = nn.Parameter(torch.full((classes,), -4.0).index_fill(0, torch.tensor([2]), 4.0))

    def forward(self, x):
        return self.drop(self.norm(self.conv(x))).mean((1, 2, 3))[:, None] * 0.0 + self.bias


def save_program(module: nn.Module, path, size: int = 32, dynamic: bool = True, sample_inputs: bool = False,
                 sizes: bool = True):
    from torch.export import Dim

    shapes = ({0: Dim("n", min=1, max=4096), **({2: Dim("h", min=8, max=512), 3: Dim("w", min=8, max=512)}
                                                 if sizes else {})},)
    program = torch.export.export(module, (torch.randn(2, 3, size, size),),
                                  dynamic_shapes=shapes if dynamic else None)
    if not sample_inputs:
        program.example_inputs = None  # pickled otherwise, which the tool does not load
    torch.export.save(program, str(path))
    return str(path)


class NotFinite(Answers):
    def forward(self, x):
        return super().forward(x) * float("nan")


class FiniteOnZeros(Answers):
    """Finite on the check's batches of zeros, not finite on the run's images (as a larger network in fp16
    on real photos can be)."""

    def forward(self, x):
        return super().forward(x) + torch.log(1.0 - x.abs().amax((1, 2, 3)))[:, None]


def zipped(path):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "a zip archive, not a program")
    return str(path)


def test_a_torch_export_program_of_another_network_teaches_and_one_that_cannot_is_refused(cifar_dir, tmp_path,
                                                                                          capsys, one_thread):
    """--teacher FILE.pt2: a network of any kind saved with torch.export (timm's, say: the tool never
    imports it) teaches on the run's device, under its precision; one that cannot take the run's batches
    or answers other classes is refused before training, naming the file and the way out."""
    common = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=3", "--distill_alpha=1.0"]
    teacher = save_program(Answers().eval(), tmp_path / "answers.pt2")
    run = train.run(load_config(common + [f"--teacher={teacher}", f"--save_checkpoint_path={tmp_path / 'kd'}",
                                          "--eval_interval=3"]))
    out = capsys.readouterr().out
    assert (f"teacher: {teacher} (a torch.export program; its input taken to be normalised as this run's are, by "
            f"mean 0.4914,0.4822,0.4465, std 0.2023,0.1994,0.201); the loss is 0 x the task loss + 1 x") in out
    # Before training, what it scores on the eval split: class 2 for all, right for a quarter of them.
    assert ("teacher: top-1 0.2500 top-5 1.0000 on the eval split (40 images)\nwarning: the teacher scores little "
            "better than chance (1/4)") in out
    student = load_model(run["checkpoint"])
    opts = DataOptions("cifar10", str(cifar_dir), 40, 32, seed=1, num_workers=0, channels_last=False)
    with torch.no_grad():
        answers = torch.cat([student(x).argmax(1) for x, _ in build_loader(opts, train=False, device=CPU)])
    assert (answers == 2).float().mean() > 0.9  # it learned the teacher's answer, not the labels
    refusals = (
        (save_program(Answers().eval(), tmp_path / "at48.pt2", size=48, dynamic=False),
         "takes 48x48 inputs only, this run's batches are 32x32 (image_size): export it at that size, or with a "
         "dynamic height and width"),
        (save_program(Answers().eval(), tmp_path / "batch2.pt2", dynamic=False),
         "takes batches of 2 only; a run's batches can be smaller (unreadable files left out): export it with a "
         "dynamic batch"),
        (save_program(Answers().train(), tmp_path / "training.pt2"),
         "was exported in training mode (batch_norm, dropout act on each batch"),
        (save_program(NotFinite().eval(), tmp_path / "nan_on_zeros.pt2"),
         "its outputs for a batch of zeros are not finite in fp32"),
        (save_program(Answers(5).eval(), tmp_path / "five.pt2"),
         "answers a batch of 16 image(s) with shape (16, 5), this run needs (16, 4)"),
        (zipped(tmp_path / "notes.pt2"), "not a torch.export program"),
        (save_program(Answers().eval(), tmp_path / "pickles.pt2", sample_inputs=True), "holds pickled data"),
    )
    fixed = save_program(Answers().eval(), tmp_path / "at32.pt2", sizes=False)
    for path, message in refusals:
        with pytest.raises((ConfigError, ckpt_io.CheckpointError)) as raised:
            train.run(load_config(common + [f"--teacher={path}", f"--save_checkpoint_path={tmp_path / 'no'}"]))
        assert str(raised.value).startswith(f"teacher {path}" if "pickled" not in message else f"program {path}")
        assert message in str(raised.value)
    assert "example_inputs is None" in str(raised.value)
    # Progressive resizing feeds a teacher smaller images first: one of a fixed size is refused.
    with pytest.raises(ConfigError, match="takes 32x32 inputs only, and progressive resizing feeds it 16x16 and up"):
        train.run(load_config(common + [f"--teacher={tmp_path / 'at32.pt2'}", "--image_size_start=16",
                                        f"--save_checkpoint_path={tmp_path / 'no'}"]))
    # One that takes the training batches but not the evaluations' (another size): trains, not evaluated.
    train.run(load_config(common + [f"--teacher={fixed}", "--epoch_size=1", "--eval_interval=1",
                                    "--eval_image_size=40", f"--save_checkpoint_path={tmp_path / 'at32'}"]))
    out = capsys.readouterr().out
    assert "teacher: not evaluated on the eval split, whose batches of 16 at image_size 40 it does not take" in out
    assert "eval: epoch 1 top-1" in out
    # One that passes the check but is not finite on the images: the stop names it.
    nan = save_program(FiniteOnZeros().eval(), tmp_path / "nan.pt2")
    with pytest.raises(NonFiniteError, match=f"The teacher's outputs are part of the loss: {nan} may be what is not"):
        train.run(load_config(common + [f"--teacher={nan}", "--max_nonfinite_steps=2",
                                        f"--save_checkpoint_path={tmp_path / 'nan'}"]))
    assert not list((tmp_path / "no").rglob("*.ckpt"))


def test_a_program_teaches_only_under_the_name_eval_and_predict_run_one_by(tmp_path, capsys, one_thread):
    """train --teacher took a torch.export program under any name (.bin, or .pte: ExecuTorch's), which eval and
    predict refuse, asking for .pt2 (torch.export.load unpickles some entries: a crafted file named otherwise is
    not sent there): one rule for all three, the same refusal, train's naming --teacher first (it began with the
    path, where the other teacher errors name the option)."""
    from mobilenet_v1.onnx_io import is_deployed_file

    program = save_program(Answers().eval(), tmp_path / "answers.pt2")

    def distil(path):
        cfg = load_config(SMALL + [f"--teacher={path}", f"--save_checkpoint_path={tmp_path / 'run'}"])
        return train.build_distiller(cfg, None, CPU, torch.contiguous_format, str(tmp_path / "run"))

    assert is_deployed_file(program) and isinstance(distil(program), Distiller)
    for name in ("answers.bin", "answers.pte"):
        other = shutil.copy(program, str(tmp_path / name))
        assert not is_deployed_file(other)  # eval and predict read it as a checkpoint, which refuses it
        with pytest.raises(ckpt_io.CheckpointError) as as_checkpoint:
            ckpt_io.load_file(other)
        assert "from a file named .pt2 only" in str(as_checkpoint.value) and "rename it" in str(as_checkpoint.value)
        with pytest.raises(ckpt_io.CheckpointError) as as_teacher:
            distil(other)
        assert str(as_teacher.value) == f"--teacher {str(as_checkpoint.value)}"
        assert str(as_teacher.value).startswith(f"--teacher {other}: a torch.export program")
        assert "train --teacher" in str(as_teacher.value)


def test_a_missing_teacher_or_pre_trained_file_is_named_with_its_option(cifar_dir, tmp_path, capsys, one_thread):
    """Said "checkpoint X: no such file", which named neither option: a run with both would leave the user to
    guess which of the two was mistyped."""
    missing = tmp_path / "missing.ckpt"
    for option in ("teacher", "pre_trained"):
        argv = ["train", *SMALL, f"--dataset_path={cifar_dir}", f"--{option}={missing}",
                f"--save_checkpoint_path={tmp_path / option}"]
        assert cli.main(argv) == 1, option
        assert capsys.readouterr().err.endswith(f"error: --{option} {missing}: no such file or run folder\n"), option


def test_a_program_of_ours_trained_at_another_size_is_named_as_its_checkpoint_is(tmp_path, capsys, one_thread):
    """A teacher trained at another size than the run's image_size is named in the log: a .pt2 that export wrote at
    another size (--height/--width) records the one it trained at (trained_image_size), which went unsaid."""
    from mobilenet_v1.export import export_checkpoint

    path = str(tmp_path / "teacher.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(4, 0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, path)
    program = export_checkpoint(path, str(tmp_path / "at48"), height=48, width=48, file_format="PT2",
                                atol=0.01)["path"]
    for teacher in (path, program):
        cfg = load_config(SMALL + ["--image_size=48", f"--teacher={teacher}",
                                   f"--save_checkpoint_path={tmp_path / 'run'}"])
        train.build_distiller(cfg, None, CPU, torch.contiguous_format, str(tmp_path / "run"))
        assert "trained at image_size 32, here fed 48" in capsys.readouterr().out, teacher
    # One exported at the size it trained at says nothing of sizes.
    same = export_checkpoint(path, str(tmp_path / "at32"), file_format="PT2", atol=0.01)["path"]
    train.build_distiller(load_config(SMALL + [f"--teacher={same}", f"--save_checkpoint_path={tmp_path / 'run'}"]),
                          None, CPU, torch.contiguous_format, str(tmp_path / "run"))
    assert "trained at image_size" not in capsys.readouterr().out


def test_another_networks_weights_as_a_teacher_are_named_with_the_way_such_a_one_teaches(cifar_dir, tmp_path):
    """A state dict of another network (timm's resnet18) given to --teacher was "checkpoint F does not fit this model
    (missing ...)", naming neither the option nor the way another network teaches (a .pt2 program)."""
    other = torch.nn.Module()
    other.conv1, other.bn1, other.fc = torch.nn.Conv2d(3, 8, 7), torch.nn.BatchNorm2d(8), torch.nn.Linear(8, 10)
    torch.save(other.state_dict(), tmp_path / "resnet.bin")
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", f"--teacher={tmp_path / 'resnet.bin'}"])
    with pytest.raises(ConfigError, match=rf"^teacher checkpoint {re.escape(str(tmp_path / 'resnet.bin'))} does not "
                                          rf"fit this model .*; a teacher of another network than MobileNetV1 is given "
                                          rf"as a torch.export .pt2 program"):
        train.build_distiller(cfg, None, torch.device("cpu"), torch.contiguous_format, str(tmp_path / "out"))


def test_an_onnx_or_executorch_teacher_is_refused_saying_what_teaches(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07junk")  # an ONNX ModelProto's first bytes: ir_version 7
    pte = tmp_path / "model.pte"
    pte.write_bytes(b"\0\0\0\0ET12" + b"\0" * 8)  # an ExecuTorch flatbuffer's identifier
    for path, kind in ((onnx, "an ONNX model"), (pte, "an ExecuTorch program")):
        with pytest.raises(ConfigError, match=rf"^teacher {re.escape(str(path))}: {kind}, which does not teach: a "
                                              rf"teacher is a checkpoint .* or a torch.export \.pt2 program \(export "
                                              rf"--file_format PT2 writes one"):
            train.build_distiller(load_config(SMALL + [f"--teacher={path}", f"--save_checkpoint_path={tmp_path}"]),
                                  None, CPU, torch.contiguous_format, str(tmp_path))


@pytest.mark.parametrize("value", ["1e20", "1e4", "0", "-2"])
def test_an_out_of_range_temperature_is_refused_before_training(value, tmp_path):
    """T 1e20 made every loss NaN (T^2 is inf in float32, the KL 0); from 1e4 the float32 KL is rounding noise."""
    with pytest.raises(ConfigError, match=r"^option --distill_temperature: distill_temperature must be in \(0, 1000\]"):
        load_config([f"--teacher={tmp_path}", f"--distill_temperature={value}"])
    f = tmp_path / "c.yaml"
    f.write_text("teacher: t\ndistill_temperature: .inf\n")  # YAML's infinity: not a finite number
    with pytest.raises(ConfigError, match=r"distill_temperature must be a finite number, got inf"):
        load_config(["--config_path", str(f)])
    with pytest.raises(ValueError, match=r"distill_temperature must be in \(0, 1000\]"):
        Distiller(Fixed(torch.zeros(2, 4)), 0.5, float(value))
    for t in (float("nan"), float("inf")):  # a Python caller's: no configuration check on the way
        with pytest.raises(ValueError, match=r"distill_temperature must be in \(0, 1000\]"):
            Distiller(Fixed(torch.zeros(2, 4)), 0.5, t)
    d = Distiller(Fixed(torch.zeros(2, 4)), 1.0, 1000.0)  # the largest allowed: still a finite loss
    assert torch.isfinite(d(torch.tensor(1.0), torch.randn(2, 4) * 5, torch.randn(2, 4) * 5))


def test_a_sigterm_during_the_teachers_evaluation_stops_the_run_saying_so_in_its_log(cifar_dir, tmp_path):
    """The teacher's evaluation before the first step (minutes on a large split) ran outside the stop handlers: a
    SIGTERM there ended the process by its default action, log.txt saying nothing of it (helper-380). Now it is
    heard as during training: the run stops after its first step, with a checkpoint, and log.txt says why."""
    import subprocess
    import sys

    teacher = tmp_path / "teacher.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(4, 0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, str(teacher))
    script = (
        "import os, signal, sys, time\n"
        "from mobilenet_v1 import cli, train\n"
        "evaluate = train.evaluate_accuracy\n"
        "def signalled(*args, **kwargs):\n"
        "    train.evaluate_accuracy = evaluate\n"  # the first evaluation alone: the teacher's
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    stop = kwargs.get('stopper') or (args[5] if len(args) > 5 else None)\n"
        "    for _ in range(30):\n"  # a long evaluation (a large split): 15 s, past the 10 s grace
        "        if stop is not None and stop.heard():\n"
        "            break\n"
        "        time.sleep(0.5)\n"
        "    return evaluate(*args, **kwargs)\n"
        "train.evaluate_accuracy = signalled\n"
        "sys.exit(cli.main(['train'] + sys.argv[1:]))\n")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", script, *SMALL, f"--dataset_path={cifar_dir}", "--epoch_size=2",
                           "--eval_interval=2", f"--teacher={teacher}", f"--save_checkpoint_path={out}"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    log = (out / "log.txt").read_text() if (out / "log.txt").exists() else ""
    assert done.returncode != 0 and "SIGTERM received: stopping after the step under way" in log, \
        (done.returncode, done.stderr[-2000:], log[-2000:])
    assert "no training step completed" not in done.stderr, done.stderr[-2000:]
    # its evaluation ended at the batch under way, as the epochs' do (a long one outlasted the 10 s grace: the
    # watchdog ended the run there, without the checkpoint the SIGTERM line promised)
    assert "teacher: its evaluation on the eval split was left at the stop request" in log, log[-2000:]
    assert "teacher: top-1" not in log and list(out.glob("*.ckpt")), log[-2000:]


def test_a_teacher_trained_on_the_images_it_is_scored_on_is_said_with_its_top1(tmp_path, capsys, one_thread):
    """A teacher trained on all of an image folder, scored before training on a share of that same folder:
    its "teacher: top-1" read high without a word, where a --pre_trained of that file is said (helper-426)."""
    from test_train_eval import three_class_photos

    data = three_class_photos(tmp_path / "photos", 3)
    args = SMALL[:-1] + ["--class_num=3", "--dataset=imagenet2012", f"--dataset_path={data}", "--batch_size=4",
                         "--epoch_size=1", "--eval_interval=1"]
    teacher = train.run(load_config(args + [f"--save_checkpoint_path={tmp_path / 't'}"]))["checkpoint"]
    capsys.readouterr()
    train.run(load_config(args + ["--val_split=0.34", f"--teacher={teacher}", "--save_checkpoint=False"]))
    out = capsys.readouterr().out
    assert re.search(rf"^teacher: top-1 \S+ top-5 \S+ on the eval split \(3 images\)(\nwarning: .*)?\nteacher: note: "
                     rf"{re.escape(teacher)} trained on this folder's images \(its run held none out\); this run's "
                     rf"evaluation share, val_split 0\.34, can hold images it trained on .* \(evaluate on images it "
                     rf"never saw: an evaluation folder of their own\)$", out, re.M), out


def test_a_resume_that_adds_or_drops_the_teacher_names_that_not_a_change_of_its_weights():
    """A resume adding a teacher to a run that had none named "distill_alpha 0.5" among the changed keys, a
    value that weighed nothing then: it says the teacher is added, at which weights (helper-426)."""
    plain = load_config(SMALL)
    taught = load_config(SMALL + ["--teacher=t.ckpt", "--distill_alpha=0.7", "--distill_temperature=2"])
    line = train.recipe_change({"config": dataclasses.asdict(plain)}, "a.ckpt", taught)
    assert line == ("resume: a.ckpt was trained with teacher ''; continuing with this run's teacher 't.ckpt' (a "
                    "teacher added: distillation from here, at distill_alpha 0.7 and distill_temperature 2)")
    assert train.recipe_change({"config": dataclasses.asdict(taught)}, "a.ckpt", plain).endswith(
        "continuing with this run's teacher '' (no teacher: distillation ends here)")
    # Both with a teacher: a change of its weights is one.
    other = load_config(SMALL + ["--teacher=t.ckpt", "--distill_alpha=0.3", "--distill_temperature=2"])
    assert train.recipe_change({"config": dataclasses.asdict(taught)}, "a.ckpt", other) == (
        "resume: a.ckpt was trained with distill_alpha 0.7; continuing with this run's distill_alpha 0.3")


def test_a_teacher_of_other_classes_is_refused_saying_what_to_do(tmp_path):
    """The refusals of a teacher of other classes said what was wrong, not what to do (helper-426)."""
    other = tmp_path / "five.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(5, 0.25).state_dict()}, str(other))
    with pytest.raises(ConfigError) as raised:
        train.checkpoint_teacher(load_config(SMALL), str(other), None)
    assert str(raised.value) == (
        f"teacher {other}: it has 5 outputs, this run's class_num is 4; a teacher must score the same classes: distil "
        f"from one trained on this data set's classes (train --pre_trained {other} on this data set fine-tunes one: "
        f"then --teacher that run's checkpoint)")
    with pytest.raises(ConfigError, match=r"^teacher t\.ckpt: it was trained on the classes .*: its outputs would "
                                          r"mean other labels; distil from one trained on this data set's classes "
                                          r"\(train --pre_trained t\.ckpt on this data set fine-tunes one"):
        train.check_teacher_classes("t.ckpt", ["ant", "bee"], ["cat", "dog"])
    with pytest.raises(ConfigError, match=r"other labels; export one trained on this data set's classes$"):
        train.check_teacher_classes("t.pt2", ["ant", "bee"], ["cat", "dog"], program=True)
