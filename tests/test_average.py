"""mobilenet-v1 average: the mean of several checkpoints' weights, checked before anything is written."""
import hashlib
import os
import re
import shutil
import types

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import api, cli, export, info, load_model, mindspore_io
from mobilenet_v1.averaging import average
from mobilenet_v1.model import MobileNetV1


def random_model(seed: int, width_mult: float = 0.25, class_num: int = 4, steps: int = 0) -> MobileNetV1:
    """A model whose every float tensor is random (BatchNorm statistics included)."""
    torch.manual_seed(seed)
    model = MobileNetV1(class_num=class_num, width_mult=width_mult)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_()
            else:
                t.fill_(steps)
    return model


def save(path, model: MobileNetV1, classes=("a", "b", "c", "d"), image_size: int = 32, ema: MobileNetV1 = None,
         **config):
    ckpt = {"format": ckpt_io.FORMAT, "model": model.state_dict(), "classes": classes and list(classes),
            "model_args": {"class_num": model.class_num, "width_mult": model.width_mult, "padding": "same"},
            "config": {"image_size": image_size, "dataset": "imagenet2012", **config}}
    if ema is not None:
        ckpt["ema"] = {"model": ema.state_dict(), "decay": 0.99}
    torch.save(ckpt, str(path))
    return str(path)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_the_mean_of_a_run_folders_last_checkpoints_in_every_format(tmp_path):
    """A run folder gives its numbered checkpoints oldest first (not its best); --last N the newest N.
    Every float tensor is the float64 mean stored as float32, counters and recorded facts the newest's;
    .safetensors and MindSpore's .ckpt hold the same numbers."""
    run = tmp_path / "run"
    run.mkdir()
    models = [random_model(s, steps=10 * s) for s in range(4)]
    for epoch, m in enumerate(models, 1):
        save(run / f"mobilenetv1-{epoch}_7.ckpt", m, seed=epoch)
    save(run / ckpt_io.BEST_NAME, random_model(99))  # never averaged by the folder
    out = average([str(run)], str(tmp_path / "avg.pt"), last=3)
    assert [os.path.basename(f) for f in out["sources"]] == ["mobilenetv1-2_7.ckpt", "mobilenetv1-3_7.ckpt",
                                                             "mobilenetv1-4_7.ckpt"]
    saved = ckpt_io.load_file(str(tmp_path / "avg.pt"))
    assert saved["config"]["seed"] == 4 and saved["classes"] == ["a", "b", "c", "d"]
    assert "optimizer" not in saved  # a model, not a point to resume from
    states = [m.state_dict() for m in models[1:]]
    for name, value in saved["model"].items():
        if value.is_floating_point():
            want = (sum(s[name].double() for s in states) / 3).float()
            assert value.dtype == torch.float32 and torch.equal(value, want), name
        else:
            assert int(value) == 30, name
    loaded = load_model(str(tmp_path / "avg.pt"))
    x = torch.randn(2, 3, 32, 32)
    reference = MobileNetV1(class_num=4, width_mult=0.25).eval()
    reference.load_state_dict(saved["model"])
    assert torch.equal(loaded(x), reference(x))
    for fmt in ("safetensors", "ckpt"):
        average([str(run)], str(tmp_path / f"avg.{fmt}"), last=3)
        other = ckpt_io.load_file(str(tmp_path / f"avg.{fmt}"))
        for name, value in saved["model"].items():
            if value.is_floating_point():
                assert torch.equal(other["model"][name].float(), value), (fmt, name)


def test_files_of_any_format_average_under_our_names_and_ema_is_taken_by_default(tmp_path):
    """A MindSpore file beside ours averages by tensor (names mapped); a run's weight average is what is
    averaged unless use_ema is False."""
    a, b, b_ema = random_model(1), random_model(2), random_model(3)
    save(tmp_path / "a.pt", a)
    save(tmp_path / "b.pt", b, ema=b_ema)
    mindspore_io.convert(str(tmp_path / "a.pt"), str(tmp_path / "a.ckpt"))
    w = "network.5.0.weight"
    out = average([str(tmp_path / "a.ckpt"), str(tmp_path / "b.pt")], str(tmp_path / "m.pt"))
    assert out["ema"] == 1
    got = ckpt_io.load_file(str(tmp_path / "m.pt"))["model"][w]
    assert torch.equal(got, ((a.state_dict()[w].double() + b_ema.state_dict()[w].double()) / 2).float())
    average([str(tmp_path / "a.ckpt"), str(tmp_path / "b.pt")], str(tmp_path / "t.pt"), use_ema=False)
    got = ckpt_io.load_file(str(tmp_path / "t.pt"))["model"][w]
    assert torch.equal(got, ((a.state_dict()[w].double() + b.state_dict()[w].double()) / 2).float())


def test_a_copy_of_a_source_in_another_format_is_said_to_count_twice(tmp_path, capsys):
    """A checkpoint and convert's MindSpore rewrite of it are other files holding one model's weights: averaged
    beside a third, that model weighs twice in the mean, which was taken without a word."""
    a = save(tmp_path / "a.pt", random_model(1))
    b = save(tmp_path / "b.pt", random_model(2))
    assert cli.main(["convert", a, str(tmp_path / "a.ckpt")]) == 0
    capsys.readouterr()
    assert cli.main(["average", a, b, str(tmp_path / "a.ckpt"), "--out", str(tmp_path / "m.pt")]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"mobilenet-v1 average: warning: {tmp_path / 'a.ckpt'} holds the weights {a} holds (a copy, or another "
        f"format of it): the mean counts them twice")
    assert cli.main(["average", a, b, "--out", str(tmp_path / "n.pt")]) == 0
    assert "warning" not in capsys.readouterr().err
    copy = str(shutil.copy(a, tmp_path / "c.pt"))  # each alike file is named with the first that held them
    assert average([b, a, str(tmp_path / "a.ckpt"), copy], str(tmp_path / "o.pt"))["alike"] == [
        (str(tmp_path / "a.ckpt"), a), (copy, a)]


def test_what_cannot_be_averaged_is_refused_before_anything_is_written(tmp_path, capsys):
    a = save(tmp_path / "a.pt", random_model(1))
    b = save(tmp_path / "b.pt", random_model(2))
    before = digest(b)
    (tmp_path / "sub").mkdir()
    cases = [
        ([a, save(tmp_path / "wide.pt", random_model(3, width_mult=0.5))], "is a MobileNetV1 of width_mult 0.5, "
         "4 classes, padding same, .*a.pt one of width_mult 0.25, 4 classes, padding same: only models of one shape"),
        ([a, save(tmp_path / "five.pt", random_model(3, class_num=5), classes="abcde")], "5 classes"),
        ([a, save(tmp_path / "other.pt", random_model(3), classes="wxyz")], "other.pt was trained on other classes"),
        ([a], r"averaging needs two checkpoints or more, got 1"),
        ([a, str(tmp_path / "a.pt")], "a.pt is named twice: each is averaged once"),
        # The same file spelt another way (through "sub/.." here) is the same file: not averaged twice.
        ([a, b, str(tmp_path / "sub" / ".." / "a.pt")], r"sub/\.\./a\.pt is named twice \(also as .*a\.pt\)"),
        ([a, str(tmp_path / "missing.pt")], "missing.pt: no such file"),
        ([str(tmp_path / "missing")], "missing: no such file or run folder"),  # not "needs two, got 1"
    ]
    nan = random_model(4)
    with torch.no_grad():
        nan.fc.weight[0, 0] = float("nan")
    cases.append(([a, save(tmp_path / "nan.pt", nan)], "nan.pt: tensor fc.weight holds NaN or infinite values"))
    # Models that take their images otherwise: the mean would record the last file's way, so an order would
    # decide how it is evaluated (a copy recalibrated at 48, a crop_pct of 0.8 against the default's).
    cases.append(([a, save(tmp_path / "at48.pt", random_model(2), image_size=48)],
                  r"at48.pt records image_size 48, .*a.pt image_size 32: the mean would be of models that take"))
    cases.append(([save(tmp_path / "crop875.pt", random_model(1), crop_pct=0.875),
                   save(tmp_path / "crop80.pt", random_model(2), crop_pct=0.8)],
                  r"crop80.pt records crop_pct 0.8, .*crop875.pt crop_pct 0.875: .*average files of one crop_pct"))
    cases.append(([a, save(tmp_path / "plain.pt", random_model(2), antialias=False)],
                  r"plain.pt records antialias False, .*a.pt antialias True"))  # a.pt: from before the key
    for paths, message in cases:
        with pytest.raises((ValueError, ckpt_io.CheckpointError), match=message):
            average(paths, str(tmp_path / "out.pt"))
        assert not os.path.exists(tmp_path / "out.pt")
    # The output may not be a source: the file stays as it was, and the command says so with status 1.
    assert cli.main(["average", a, b, "--out", b]) == 1
    assert "--out " + b + ": is the file this command reads; write to another file" in capsys.readouterr().err
    assert digest(b) == before
    with pytest.raises(ValueError, match=re.escape("--last must be >= 0 (0: all), got -1")):
        average([a, b], str(tmp_path / "out.pt"), last=-1)
    with pytest.raises(ValueError, match=re.escape("--best must be >= 0 (0: off: the numbered checkpoints), got -1")):
        average([a, b], str(tmp_path / "out.pt"), best=-1)  # 0 was said to be "all"


def test_an_evaluation_size_refused_is_named_as_eval_image_size(tmp_path):
    """Two files trained at 32, one of whose runs evaluated at 48 (eval_image_size): refused, as the mean would
    record one size of the two, but named as what the file records. The error said "b.pt records image_size 48"
    of a file whose image_size is 32."""
    a = save(tmp_path / "a.pt", random_model(1))
    b = save(tmp_path / "b.pt", random_model(2), eval_image_size=48)
    with pytest.raises(ckpt_io.CheckpointError, match=r"b.pt records eval_image_size 48 \(trained at image_size 32\), "
                                                      r".*a.pt image_size 32: the mean would be of models that take"):
        average([a, b], str(tmp_path / "out.pt"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"a.pt records image_size 32, .*b.pt eval_image_size 48 "
                                                      r"\(trained at image_size 32\): the mean would be"):
        average([b, a], str(tmp_path / "out.pt"))
    assert not os.path.exists(tmp_path / "out.pt")


def test_the_command_names_what_it_averaged(tmp_path, capsys):
    a = save(tmp_path / "a.pt", random_model(1))
    b = save(tmp_path / "b.pt", random_model(2), ema=random_model(3))
    assert cli.main(["average", a, b, "--out", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'm.safetensors'}: safetensors, ")
    assert "the mean of 2 checkpoints: a.pt, b.pt" in out
    assert "1 of them holds a weight average (--ema_decay)" in out
    assert cli.main(["average", a, b, "--last", "3", "--out", str(tmp_path / "m.pt")]) == 0
    assert "note: --last 3: there are 2 checkpoints, all of them averaged" in capsys.readouterr().err
    assert cli.main(["average", a, b, "--last", "2", "--out", str(tmp_path / "m.pt")]) == 0
    assert "note: --last" not in capsys.readouterr().err  # as many as there are: nothing to say
    assert cli.main(["info", str(tmp_path / "m.pt")]) == 0  # the file says what it is the mean of
    mean = (f"weights:        the mean of 2 checkpoints' trained weights and weight averages (mobilenet-v1 average): "
            f"{a}, {b}")
    assert mean in capsys.readouterr().out
    assert load_model(str(tmp_path / "m.safetensors")).width_mult == 0.25
    # CIFAR checkpoints of one run whose names file renamed the classes (the labels are the files' numbers):
    # averaged, the last names recorded and the change named. Image folders' names are their labels: refused.
    renamed = []
    for n, names in (("r1", "abcd"), ("r2", "ABCD")):
        ckpt = ckpt_io.load_torch_file(save(tmp_path / f"{n}.pt", random_model(len(renamed)), classes=names))
        ckpt["config"]["dataset"] = "cifar10"
        torch.save(ckpt, str(tmp_path / f"{n}.pt"))
        renamed.append(str(tmp_path / f"{n}.pt"))
    capsys.readouterr()
    assert cli.main(["average", *renamed, "--out", str(tmp_path / "r.pt")]) == 0
    assert ckpt_io.load_file(str(tmp_path / "r.pt"))["classes"] == ["A", "B", "C", "D"]
    assert (f"note: {renamed[1]} names its CIFAR classes otherwise than {renamed[0]} (its names file changed; the "
            f"labels are the files' numbers): {tmp_path / 'r.pt'} records the last names") in capsys.readouterr().err
    # Another folder's CIFAR-format data: other classes, refused; a file recorded with its names file's every
    # name (before runs kept their outputs' only) is compared and recorded by the names of its 4 outputs.
    ckpt = ckpt_io.load_torch_file(renamed[1])
    torch.save({**ckpt, "config": {**ckpt["config"], "dataset_path": str(tmp_path / "own")}}, str(tmp_path / "o.pt"))
    assert cli.main(["average", renamed[0], str(tmp_path / "o.pt"), "--out", str(tmp_path / "x.pt")]) == 1
    assert "(their recorded class names differ): the mean would mix them" in capsys.readouterr().err
    torch.save({**ckpt, "classes": list("ABCDEFGHIJ")}, str(tmp_path / "ten.pt"))
    assert cli.main(["average", str(tmp_path / "ten.pt"), renamed[1], "--out", str(tmp_path / "t.pt")]) == 0
    assert "names its CIFAR classes otherwise" not in capsys.readouterr().err
    assert cli.main(["average", renamed[1], str(tmp_path / "ten.pt"), "--out", str(tmp_path / "t.pt")]) == 0
    assert ckpt_io.load_file(str(tmp_path / "t.pt"))["classes"] == ["A", "B", "C", "D"]
    # A .safetensors keeps the record as metadata; convert carries it from one format to the other.
    converted = str(tmp_path / "back.pt")
    assert cli.main(["convert", str(tmp_path / "m.pt"), str(tmp_path / "c.safetensors")]) == 0
    assert cli.main(["convert", str(tmp_path / "c.safetensors"), converted]) == 0
    for made in (str(tmp_path / "m.safetensors"), str(tmp_path / "c.safetensors"), converted):
        capsys.readouterr()
        assert cli.main(["info", made]) == 0
        assert mean in capsys.readouterr().out, made
    # Into a MindSpore .ckpt: the note names what the sources recorded and the file cannot keep, only that.
    c, d = (save(tmp_path / f"{n}.pt", random_model(k), classes=None) for n, k in (("c", 4), ("d", 5)))
    for sources, lost in (((a, b), "class names, training configuration (image size, normalisation) and record of "
                                   "the checkpoints it is the mean of are"),
                          ((c, d), "training configuration (image size, normalisation) and record of the checkpoints "
                                   "it is the mean of are")):
        assert cli.main(["average", *sources, "--out", str(tmp_path / "m.ckpt")]) == 0
        assert f"the source's {lost} not kept in {tmp_path / 'm.ckpt'}" in capsys.readouterr().err


def test_recorded_facts_survive_a_last_file_without_them_and_a_lost_padding_is_warned_of(tmp_path, capsys):
    """A MindSpore .ckpt named last records no configuration nor classes: those of the files before it
    are kept (export and eval would fall back to 224x224 otherwise). A model of symmetric padding
    written in MindSpore's format gets convert's warning."""
    a = save(tmp_path / "a.pt", random_model(1), image_size=40)
    save(tmp_path / "b.pt", random_model(2))
    mindspore_io.convert(str(tmp_path / "b.pt"), str(tmp_path / "b.ckpt"))
    average([a, str(tmp_path / "b.ckpt")], str(tmp_path / "m.pt"))
    saved = ckpt_io.load_file(str(tmp_path / "m.pt"))
    assert saved["config"]["image_size"] == 40 and saved["classes"] == ["a", "b", "c", "d"]
    symmetric = []
    for seed in (3, 4):
        model = random_model(seed)
        path = tmp_path / f"s{seed}.pt"
        torch.save({"model": model.state_dict(), "model_args": {"class_num": 4, "width_mult": 0.25,
                                                                "padding": "symmetric"}}, str(path))
        symmetric.append(str(path))
    assert cli.main(["average", *symmetric, "--out", str(tmp_path / "s.ckpt")]) == 0
    err = capsys.readouterr().err
    assert "mobilenet-v1 average: warning: the mean of " in err and "MindSpore's network pads SAME" in err
    assert average(symmetric, str(tmp_path / "s.pt"))["warning"] == ""  # ours keeps the padding
    assert load_model(str(tmp_path / "s.pt")).padding == "symmetric"


def test_keep_best_max_keeps_the_best_epochs_and_average_best_takes_them(cifar_dir, tmp_path, capsys, one_thread):
    """train --keep_best_max 2 keeps the two best evaluated epochs (by the top-1 metrics.jsonl records) as
    mobilenetv1-top-E.ckpt, whatever keep_checkpoint_max removes, each recording its figures; a resume
    from an earlier epoch moves the later ones aside; average --best 2 is the mean of those two files."""
    from mobilenet_v1 import train
    from mobilenet_v1.config import ConfigError, load_config
    from mobilenet_v1.tracking import read_metrics

    run = tmp_path / "run"
    args = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
            "--warmup_epochs=0", "--lr_max=0.05", f"--dataset_path={cifar_dir}", "--class_num=4",
            "--eval_interval=1", "--keep_checkpoint_max=1", "--save_checkpoint_epochs=1",
            f"--save_checkpoint_path={run}"]
    train.run(load_config(args + ["--epoch_size=5", "--keep_best_max=2"]))
    # 1 is raised to 2 (a resume falls back to the one before a damaged newest), and said.
    assert "note: keep_checkpoint_max 1: 2 are kept, the newest and the one before it" in capsys.readouterr().out
    tops = {r["epoch"]: r["top_1"] for r in read_metrics(str(run))["epochs"]}
    want = sorted(tops, key=lambda e: (-tops[e], e))[:2]
    assert sorted(e for e, _ in ckpt_io.list_top(str(run))) == sorted(want) and len(tops) == 5
    for e, path in ckpt_io.list_top(str(run)):
        saved = ckpt_io.load_file(path)
        assert saved["epoch"] == e and saved["metrics"]["top_1"] == tops[e]
    assert len(ckpt_io.list_checkpoints(str(run))) == 2  # the numbered ones pruned, to 2
    out = tmp_path / "best2.pt"
    assert cli.main(["average", str(run), "--best", "2", "--out", str(out)]) == 0
    ranked = sorted(ckpt_io.list_top(str(run)), key=lambda item: (-tops[item[0]], item[0]))
    assert f"the mean of 2 checkpoints: {', '.join(os.path.basename(p) for _, p in ranked)}" in capsys.readouterr().out
    by_hand = tmp_path / "by_hand.pt"
    average([p for _, p in ranked], str(by_hand))
    a, b = ckpt_io.load_file(str(out))["model"], ckpt_io.load_file(str(by_hand))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="--last and --best choose a run folder's checkpoints two ways"):
        average([str(run)], str(tmp_path / "x.pt"), last=2, best=2)
    assert cli.main(["average", str(run), "--best", "3", "--out", str(tmp_path / "best3.pt")]) == 0
    assert f"note: --best 3: the run folder {run} kept 2 best epochs' checkpoints, all of them averaged" in \
        capsys.readouterr().err
    # Two folders, one of which kept fewer: the note names that one alone, with its own count (it was worked
    # out from the total, which a folder with more than N hid).
    other = tmp_path / "other"
    shutil.copytree(run, other)
    os.remove(ranked[1][1].replace(str(run), str(other)))
    assert cli.main(["average", str(run), str(other), "--best", "2", "--out", str(tmp_path / "two.pt")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "note: --best" in line]
    assert notes == [f"mobilenet-v1 average: note: --best 2: the run folder {other} kept 1 best epochs' checkpoint, "
                     f"all of them averaged (train --keep_best_max N keeps N)"]
    # Resumed from the earlier of the two (a training checkpoint too): the later one belongs to a history that
    # no longer holds, and moves aside with the numbered checkpoints after it.
    first = min(want)
    train.run(load_config(args + ["--epoch_size=5", "--keep_best_max=2",
                                  f"--resume={run / f'mobilenetv1-top-{first}.ckpt'}"]))
    moved = os.listdir(run / "earlier-run-1")
    assert sorted(n for n in moved if "-top-" in n) == [f"mobilenetv1-top-{e}.ckpt" for e in sorted(want) if e > first]
    assert (run / f"mobilenetv1-top-{first}.ckpt").exists()
    with pytest.raises(ConfigError, match="keep_best_max .* eval_interval is 0"):
        load_config(["--keep_best_max=2"])
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(ckpt_io.CheckpointError, match="holds no mobilenetv1-top-E.ckpt file"):
        average([str(empty)], str(tmp_path / "y.pt"), best=2)


def test_keep_best_keeps_the_earlier_epoch_of_a_tie_and_leaves_the_files_it_cannot_rank(tmp_path):
    """keep_best_max 1 with epochs 1 and 2 both at top-1 0.5: epoch 1 holds the place, epoch 2 is not saved;
    a later, better epoch 3 takes it and epoch 1's file goes, while epoch 7's, which this run never ranked
    (a file of another history), stays."""
    from mobilenet_v1 import train

    saved = []
    writer = types.SimpleNamespace(folder=str(tmp_path), writes=True, source="", numbered=True,
                                   save=lambda epoch, step, name, extra: saved.append((epoch, name)))
    for epoch in (1, 7):
        (tmp_path / ckpt_io.top_name(epoch)).write_bytes(b"a checkpoint")
    train.keep_best(writer, {1: 0.5, 2: 0.5}, 2, {"top_1": 0.5}, 1)
    assert saved == [] and sorted(p.name for p in tmp_path.iterdir()) == [ckpt_io.top_name(1), ckpt_io.top_name(7)]
    # The file the run continues from stays while the run has no numbered checkpoint of its own (helper-293: a run
    # resumed from a top-E file and killed before one lost the point it started from, --resume auto starting over).
    writer.source, writer.numbered = os.path.realpath(tmp_path / ckpt_io.top_name(1)), False
    train.keep_best(writer, {1: 0.5, 2: 0.5, 3: 0.75}, 3, {"top_1": 0.75}, 1)
    assert saved == [(3, ckpt_io.top_name(3))] and (tmp_path / ckpt_io.top_name(1)).exists()
    assert writer.owed == str(tmp_path / ckpt_io.top_name(1))  # for the first numbered save to remove
    writer.numbered = True
    train.keep_best(writer, {1: 0.5, 2: 0.5, 3: 0.75}, 3, {"top_1": 0.75}, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt_io.top_name(7)]


def test_an_evaluation_whose_outputs_are_not_finite_is_neither_ranked_nor_an_improvement():
    """Epoch 2's top-1 0.9 came with non-finite outputs (a broken model): no best checkpoint, no place among
    keep_best_max's epochs, and one more evaluation without improvement for --patience."""
    from mobilenet_v1 import train

    evaluations = train.Evaluations(patience=2)
    assert evaluations.judge(1, {"top_1": 0.25}) is True
    assert evaluations.judge(2, {"top_1": 0.9, "nonfinite_outputs": 3}) is False
    assert evaluations.ranked == {1: 0.25} and (evaluations.best, evaluations.best_saved, evaluations.since) == \
        (0.25, 0.25, 1)


def test_best_takes_the_highest_top_1_first_the_earlier_epoch_of_a_tie(tmp_path):
    """average --best N: of more best epochs' files than N, the N of highest recorded top-1, best first
    (a tie: the earlier epoch first); --use_ema False ranks by the trained weights' top-1 where recorded."""
    from mobilenet_v1.averaging import best_of

    model = random_model(0)
    tops = {1: (0.5, None), 2: (0.7, 0.4), 3: (0.6, 0.9), 4: (0.7, None)}  # epoch: (top_1, raw_top_1)
    for epoch, (top_1, raw) in tops.items():
        metrics = {"top_1": top_1, **({"raw_top_1": raw} if raw is not None else {})}
        torch.save({"format": ckpt_io.FORMAT, "model": model.state_dict(), "epoch": epoch, "metrics": metrics},
                   str(tmp_path / ckpt_io.top_name(epoch)))

    def named(*epochs):
        return [str(tmp_path / ckpt_io.top_name(e)) for e in epochs]

    assert best_of(str(tmp_path), 2) == named(2, 4)
    assert best_of(str(tmp_path), 3) == named(2, 4, 3)
    assert best_of(str(tmp_path), 2, use_ema=False) == named(3, 4)  # raw 0.9, then 0.7 (no raw), 0.6 ...


def test_best_notes_a_run_folder_only_where_it_kept_fewer_than_n(tmp_path, capsys):
    """--best N of a folder that kept N best epochs' files is said by nothing; of folders that kept fewer, each is
    named with how many it kept (one: "1 best epochs' checkpoint")."""
    runs = []
    for r, epochs in enumerate(((1, 2), (3,), (4,))):
        run = tmp_path / f"run{r}"
        run.mkdir()
        for e in epochs:
            path = save(run / ckpt_io.top_name(e), random_model(10 * r + e))
            ckpt = ckpt_io.load_file(path)
            torch.save({**ckpt, "epoch": e, "metrics": {"top_1": 0.5 + e / 100}}, path)
        runs.append(str(run))
    assert average([runs[0]], str(tmp_path / "a.pt"), best=2)["best_short"] == []
    assert cli.main(["average", runs[0], "--best", "2", "--out", str(tmp_path / "b.pt")]) == 0
    assert "note" not in capsys.readouterr().err
    assert cli.main(["average", runs[1], runs[2], "--best", "2", "--out", str(tmp_path / "c.pt")]) == 0
    err = capsys.readouterr().err
    for run in runs[1:]:
        assert (f"mobilenet-v1 average: note: --best 2: the run folder {run} kept 1 best epochs' checkpoint, all of "
                f"them averaged") in err


def test_a_recalibration_all_files_record_alike_is_kept_and_any_other_mix_is_said(tmp_path, capsys):
    """recalibrate-bn's record (bn_recalibration) was dropped from every mean, so info said the mean was trained
    at the size its statistics were measured at. Recorded alike by every file (but the file each was measured
    for), it is kept; recorded by some only, or otherwise, none is, and a warning says why."""
    def measured(name, seed, **record):
        bn = {"images": 96, "image_size": 40, "dataset_path": "/data", "seed": 1, "source": f"{name}.ckpt",
              "trained_at": 32, **record}
        return save(tmp_path / f"{name}.pt", random_model(seed), image_size=40, bn_recalibration=bn)

    a, b = measured("a", 1), measured("b", 2)
    out = str(tmp_path / "avg.pt")
    assert cli.main(["average", a, b, "--out", out]) == 0
    assert "warning" not in capsys.readouterr().err
    assert ckpt_io.load_file(out)["config"]["bn_recalibration"] == {"images": 96, "image_size": 40,
                                                                    "dataset_path": "/data", "seed": 1,
                                                                    "trained_at": 32}
    assert cli.main(["info", out]) == 0
    # the mean of the statistics, not its mean weights' own (helper-384: "measured anew" read as done)
    assert ("BatchNorm: the mean of its sources' statistics, each measured anew (recalibrate-bn) at 40 on 96 images, "
            "trained at 32; not its mean weights' own: recalibrate-bn of this file measures those"
            in " ".join(capsys.readouterr().out.split()))
    assert cli.main(["info", a]) == 0
    assert "statistics measured anew (recalibrate-bn) at 40 on 96 images, trained at 32\n" in capsys.readouterr().out
    plain = save(tmp_path / "plain.pt", random_model(3), image_size=40)
    for paths, said in (([a, plain], f"{a} records BatchNorm statistics measured anew by recalibrate-bn at 40, "
                                     f"{plain} no such measurement: the mean mixes statistics of both kinds "
                                     f"(recalibrate-bn the mean to measure them); {out} records none"),
                        ([a, measured("c", 3, trained_at=48)],
                         f"{tmp_path / 'c.pt'} and {a} had their BatchNorm statistics measured otherwise by "
                         f"recalibrate-bn (trained_at 48 vs 32): the mean's statistics are of no one measurement "
                         f"(recalibrate-bn the mean to measure them); {out} records none")):
        assert cli.main(["average", *paths, "--out", out]) == 0
        assert f"mobilenet-v1 average: warning: {said}\n" in capsys.readouterr().err, paths
        assert "bn_recalibration" not in ckpt_io.load_file(out)["config"], paths
        os.remove(out)


def test_a_run_folder_without_numbered_checkpoints_says_what_it_holds_and_what_to_do(tmp_path, capsys):
    """A folder holding only mobilenetv1-best.ckpt was said to hold no mobilenetv1-*.ckpt file, which that
    one is: the error names the folder, says it holds the best checkpoint alone, and what to do with it."""
    run = tmp_path / "run"
    run.mkdir()
    best = save(run / ckpt_io.BEST_NAME, random_model(1))
    out = str(tmp_path / "avg.pt")
    assert cli.main(["average", str(run), "--out", out]) == 1
    assert capsys.readouterr().err == (
        f"mobilenet-v1 average: error: checkpoint folder {run}: holds no numbered checkpoint "
        f"(mobilenetv1-EPOCH_STEP.ckpt) to average, only mobilenetv1-best.ckpt: one checkpoint alone is no average; "
        f"use {best} as it is, or name it beside other checkpoint files to average it with them\n")
    # Named beside another file, it averages.
    assert cli.main(["average", best, save(tmp_path / "b.pt", random_model(2)), "--out", out]) == 0
    os.remove(out)
    # Best epochs' files kept (--keep_best_max): --best takes them.
    for epoch in (2, 3):
        save(run / ckpt_io.top_name(epoch), random_model(epoch))
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^checkpoint folder {re.escape(str(run))}: holds no numbered "
                                                      rf"checkpoint .*, but 2 best epochs' checkpoints "
                                                      rf"\(mobilenetv1-top-E\.ckpt\): --best 2 averages them$"):
        average([str(run)], out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^checkpoint folder {re.escape(str(empty))}: holds no "
                                                      rf"numbered checkpoint \(mobilenetv1-EPOCH_STEP\.ckpt\) to "
                                                      rf"average$"):
        average([str(empty)], out)
    assert not os.path.exists(out)


def test_a_run_folder_with_one_best_epochs_file_and_no_numbered_ones_names_both(tmp_path, capsys):
    """--keep_best_max 1 leaves one best epoch's file beside mobilenetv1-best.ckpt: the folder was said to hold
    "only mobilenetv1-best.ckpt". Both files are named (the best epoch's alone where that is all)."""
    run = tmp_path / "run"
    run.mkdir()
    save(run / ckpt_io.top_name(3), random_model(3))
    for best in (False, True):
        if best:
            save(run / ckpt_io.BEST_NAME, random_model(3))
        kept = "mobilenetv1-top-3.ckpt" + (" and mobilenetv1-best.ckpt" if best else "")
        assert cli.main(["average", str(run), "--out", str(tmp_path / "avg.pt")]) == 1
        assert capsys.readouterr().err == (
            f"mobilenet-v1 average: error: checkpoint folder {run}: holds no numbered checkpoint "
            f"(mobilenetv1-EPOCH_STEP.ckpt) to average, only {kept} (one best epoch's file is no --best average): "
            f"name the checkpoint files to average instead of the folder\n"), best
    assert not (tmp_path / "avg.pt").exists()


def test_a_resume_ranks_only_the_best_epochs_whose_files_are_there(cifar_dir, tmp_path, one_thread):
    """keep_best_max 1, epochs 1-3 (top-1 0.25, 0.25, 0.725), then a resume from epoch 2's numbered
    checkpoint with a rate that spoils epoch 3: epoch 3's best-epoch file moves aside with the superseded
    history, epoch 1's (the earlier of the tie) was removed when epoch 3 beat it, and epoch 2 never had
    one, so no earlier epoch may hold the place: the replayed epoch 3 is kept, however it scores."""
    from mobilenet_v1 import train
    from mobilenet_v1.config import load_config

    run = tmp_path / "run"
    args = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
            "--warmup_epochs=0", "--lr_max=0.1", f"--dataset_path={cifar_dir}", "--class_num=4",
            "--eval_interval=1", "--keep_best_max=1", "--save_checkpoint_epochs=1", f"--save_checkpoint_path={run}"]
    train.run(load_config(args + ["--epoch_size=3"]))
    assert [e for e, _ in ckpt_io.list_top(str(run))] == [3]  # 0.25, 0.25, then 0.725 (epoch 1's file removed)
    train.run(load_config(args + ["--epoch_size=3", "--lr_max=5", "--lr_end=5",
                                  f"--resume={run / 'mobilenetv1-2_12.ckpt'}"]))
    assert [e for e, _ in ckpt_io.list_top(str(run))] == [3]
    assert (run / "earlier-run-1" / "mobilenetv1-top-3.ckpt").exists()
    with pytest.raises(ValueError, match="--best 2 picks a run folder's best epochs' checkpoints"):
        average([str(run / "mobilenetv1-2_12.ckpt"), str(run / "mobilenetv1-3_12.ckpt")], str(tmp_path / "z.pt"),
                best=2)


def test_last_refuses_to_leave_a_named_source_out_entirely(tmp_path):
    """--last N takes the newest N of all the checkpoints named: a file or run folder named before them, which
    would be left out unread and unchecked, is refused by name before anything is written; one whose newest
    checkpoints are among the N is averaged."""
    run = tmp_path / "run"
    run.mkdir()
    for epoch in range(1, 4):
        save(run / f"mobilenetv1-{epoch}_7.ckpt", random_model(epoch))
    other = save(tmp_path / "other.pt", random_model(9))
    narrow = tmp_path / "narrow"  # another width: never read, so never refused for it
    narrow.mkdir()
    save(narrow / "mobilenetv1-1_7.ckpt", random_model(5, width_mult=0.5))
    for paths in ([other, str(run)], [str(narrow), str(run)]):
        with pytest.raises(ValueError, match=f"--last 2 .* leaves out {paths[0]} entirely"):
            average(paths, str(tmp_path / "out.pt"), last=2)
    with pytest.raises(ValueError, match=f"--last 3 .* leaves out {other} entirely"):  # the folder's 3 are the newest 3
        average([other, str(run)], str(tmp_path / "out.pt"), last=3)
    assert not os.path.exists(tmp_path / "out.pt")
    out = average([str(run), other], str(tmp_path / "out.pt"), last=2)  # the folder's newest and the file
    assert [os.path.basename(f) for f in out["sources"]] == ["mobilenetv1-3_7.ckpt", "other.pt"]


def test_a_file_written_from_a_runs_moving_average_is_recorded_as_one(tmp_path, capsys):
    """convert writes a run's weight average as a file's only weights and records so (taken_average), which export
    and predict go on saying: the mean of such files is recorded as one of weight averages (info's weights row),
    not of trained weights; --use_ema has no choice in them, so the note about it is not said of them."""
    a = save(tmp_path / "a.pt", random_model(1), ema=random_model(2))
    b = save(tmp_path / "b.pt", random_model(3), ema=random_model(4))
    for src in (a, b):
        mindspore_io.convert(src, src.replace(".pt", "_ema.safetensors"))
    taken = [str(tmp_path / "a_ema.safetensors"), str(tmp_path / "b_ema.safetensors")]
    assert cli.main(["average", *taken, "--out", str(tmp_path / "m.pt")]) == 0
    assert "hold a weight average" not in capsys.readouterr().out
    assert ckpt_io.load_file(str(tmp_path / "m.pt"))["averaged"]["weights"] == ["ema", "ema"]
    assert cli.main(["info", str(tmp_path / "m.pt")]) == 0
    assert "the mean of 2 checkpoints' weight averages (mobilenet-v1 average)" in capsys.readouterr().out
    # Beside a file that holds its trained weights and their average: each as it was taken.
    average([taken[0], b], str(tmp_path / "t.pt"), use_ema=False)
    assert ckpt_io.load_file(str(tmp_path / "t.pt"))["averaged"]["weights"] == ["ema", "trained"]


def test_use_ema_false_for_a_file_holding_only_a_moving_average_is_named_as_not_used(tmp_path, capsys):
    """average --use_ema False asks for the trained weights; a file convert wrote from a run's weight average holds
    none, and its average was what the mean took, without a word (eval, convert, predict and train --pre_trained
    name such a --use_ema False as not used). A file holding both gives its trained weights, unnamed."""
    a = save(tmp_path / "a.pt", random_model(1), ema=random_model(2))
    b = save(tmp_path / "b.pt", random_model(3), ema=random_model(4))
    taken = str(tmp_path / "a_ema.pt")
    mindspore_io.convert(a, taken)
    capsys.readouterr()
    assert cli.main(["average", taken, b, "--use_ema", "False", "--out", str(tmp_path / "m.pt")]) == 0
    err = capsys.readouterr().err
    assert err == (f"mobilenet-v1 average: {taken}: weights: not used here: --use_ema False (convert wrote this file's "
                   f"only weights from the exponential moving average of {a}; it holds no trained weights): that "
                   f"average is what was averaged from it\n")
    mean = ckpt_io.load_file(str(tmp_path / "m.pt"))
    assert mean["averaged"]["weights"] == ["ema", "trained"]
    want = (random_model(2).state_dict()["fc.bias"].double() + random_model(3).state_dict()["fc.bias"].double()) / 2
    assert torch.equal(mean["model"]["fc.bias"], want.float())
    # By default the average is what is asked for: nothing to say.
    assert cli.main(["average", taken, b, "--out", str(tmp_path / "d.pt")]) == 0
    assert "not used here" not in capsys.readouterr().err


def test_a_misspelt_run_folder_is_named_as_missing_with_best_too(tmp_path, capsys):
    """--best takes run folders: one that does not exist (a typo) is named as missing, as without --best, not
    answered with "give the run folder" (which the user did) or with another folder's error."""
    run = tmp_path / "run"
    run.mkdir()  # a folder without best epochs' files: its own error would come first
    typo = str(tmp_path / "rnu")
    for paths in ([typo], [str(run), typo]):
        assert cli.main(["average", *paths, "--best", "2", "--out", str(tmp_path / "out.pt")]) == 1
        err = capsys.readouterr().err
        assert err == f"mobilenet-v1 average: error: checkpoint {typo}: no such file or run folder\n", paths
    assert not os.path.exists(tmp_path / "out.pt")


def test_a_format_the_commands_would_not_read_under_the_name_is_refused_and_the_file_kept(tmp_path, capsys):
    """--format under the extension of a file read by its extension (.safetensors, .onnx, .pte, .pt2, .tflite): the
    written file would be unreadable, over whatever had the name (an exported model). Refused before the
    work; a .ckpt or .pt is read by what it holds, and a name of no kind takes any format."""
    a = save(tmp_path / "a.pt", random_model(1))
    b = save(tmp_path / "b.pt", random_model(2))
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"an exported model")
    tflite = tmp_path / "model.tflite"  # an exported TensorFlow Lite model: not written over
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3 an exported model")
    for name, fmt in ((exported, "pt"), (tmp_path / "m.safetensors", "pt"), (tmp_path / "m.pte", "ckpt"),
                      (tmp_path / "m.pt2", "safetensors"), (tflite, "ckpt")):
        assert cli.main(["average", a, b, "--out", str(name), "--format", fmt]) == 1, name
        err = capsys.readouterr().err
        assert f"--format {fmt} under the extension {name.suffix}" in err
        # A checkpoint named .pte or .pt2 is told by its bytes and reads (load_model, info): not said to be unread.
        assert ("which the commands read as" in err) == (name.suffix in (".onnx", ".safetensors")), err
    assert exported.read_bytes() == b"an exported model"
    assert tflite.read_bytes() == b"\x1c\x00\x00\x00TFL3 an exported model"
    assert sorted(os.listdir(tmp_path)) == ["a.pt", "b.pt", "model.onnx", "model.tflite"]
    for name, fmt in (("m.safetensors", "safetensors"), ("m.bin", "pt"), ("m.pt", "safetensors")):
        assert cli.main(["average", a, b, "--out", str(tmp_path / name), "--format", fmt]) == 0, name
        assert load_model(str(tmp_path / name)).width_mult == 0.25


def test_the_mean_of_mindspore_files_without_buffers_records_their_weights_as_unknown(tmp_path, capsys):
    """A MindSpore .ckpt without Momentum buffers may hold a run's moving average (convert of an --ema_decay run
    writes that): info says its weights are not recorded, but the mean of such files was recorded, and shown, as
    one of trained weights. Files with their buffers hold trained weights, as before."""
    a = save(tmp_path / "a.pt", random_model(1), classes=None, ema=random_model(2))
    b = save(tmp_path / "b.pt", random_model(3), classes=None)
    mindspore_io.convert(a, str(tmp_path / "a.ckpt"))  # its moving average, no buffers and no record
    mindspore_io.convert(b, str(tmp_path / "b.ckpt"))  # its trained weights (a file of weights: no buffers either)
    assert cli.main(["average", str(tmp_path / "a.ckpt"), str(tmp_path / "b.ckpt"),
                     "--out", str(tmp_path / "m.pt")]) == 0
    assert ckpt_io.load_file(str(tmp_path / "m.pt"))["averaged"]["weights"] == ["unrecorded", "unrecorded"]
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "m.pt")]) == 0
    text = capsys.readouterr().out
    assert "the mean of 2 checkpoints' weights of no record (MindSpore files without Momentum buffers" in text
    assert "trained weights" not in text
    assert cli.main(["average", str(tmp_path / "a.ckpt"), b, "--out", str(tmp_path / "n.pt")]) == 0
    assert ckpt_io.load_file(str(tmp_path / "n.pt"))["averaged"]["weights"] == ["unrecorded", "trained"]


def test_a_run_resumed_from_a_best_epochs_file_removes_it_at_its_first_numbered_save(cifar_dir, tmp_path,
                                                                                   monkeypatch, one_thread):
    """keep_best_max 1, resumed from mobilenetv1-top-1.ckpt: the file stays while the run continues from it alone,
    and goes at the run's first numbered save, which may come after its last evaluation (helper-294: the run
    ended with two best epochs' files, one more than keep_best_max)."""
    from mobilenet_v1 import train
    from mobilenet_v1.config import load_config

    scores = [0.5, 0.25]
    monkeypatch.setattr(train, "judged_accuracy", lambda *a, **k: {"top_1": scores.pop(0), "top_5": 1.0,
                                                                     "eval_images": 40})
    run = tmp_path / "run"
    args = ["--width_mult=0.25", "--image_size=32", "--batch_size=64", "--device_target=CPU", "--num_workers=0",
            "--warmup_epochs=0", "--lr_max=0.05", f"--dataset_path={cifar_dir}", "--class_num=4", "--eval_interval=1",
            "--keep_best_max=1", f"--save_checkpoint_path={run}"]
    train.run(load_config(args + ["--epoch_size=2", "--save_checkpoint_epochs=1"]))
    assert [e for e, _ in ckpt_io.list_top(str(run))] == [1]
    for name in os.listdir(run):  # the numbered files gone: the best epoch's is what the run continues from
        if ckpt_io.is_run_checkpoint_name(name) and "-top-" not in name and name != ckpt_io.BEST_NAME:
            os.remove(run / name)
    # epochs 2 (0.3) and 3 (0.75, which takes the place) again; the numbered save comes after the last, at 3
    scores[:] = [0.3, 0.75]
    train.run(load_config(args + ["--epoch_size=3", "--save_checkpoint_epochs=3",
                                  f"--resume={run / ckpt_io.top_name(1)}"]))
    assert not scores and [e for e, _ in ckpt_io.list_top(str(run))] == [3]


def test_a_checkpoint_a_running_train_prunes_while_it_is_read_has_the_folder_listed_again(tmp_path, monkeypatch):
    """A running train removes its oldest checkpoint as it saves one (keep_checkpoint_max): average of its folder
    ended naming a file it had itself just listed ("no such file"). The folder is listed again and the mean taken
    of what it then holds; a folder pruned at every listing is named after a few; a file named that is not there
    is still "no such file" at once (helper-320)."""
    from mobilenet_v1 import averaging

    run = tmp_path / "run"
    run.mkdir()
    for epoch in (1, 2, 3):
        save(run / f"mobilenetv1-{epoch}_7.ckpt", random_model(epoch))
    read, saves = averaging.read_any, []

    def pruning(path):  # the train saves its next epoch and prunes the oldest, as the average reads the folder
        if len(saves) < prunes:
            epoch = 4 + len(saves)
            saves.append(save(run / f"mobilenetv1-{epoch}_7.ckpt", random_model(epoch)))
            for _, older in ckpt_io.list_checkpoints(str(run))[:-2]:  # keep_checkpoint_max 2
                os.remove(older)
        return read(path)

    monkeypatch.setattr(averaging, "read_any", pruning)
    prunes = 1
    out = average([str(run)], str(tmp_path / "avg.pt"), last=2)
    assert [os.path.basename(f) for f in out["sources"]] == ["mobilenetv1-3_7.ckpt", "mobilenetv1-4_7.ckpt"]
    prunes = 1 + 4 * (ckpt_io.PRUNED_RETRIES + 1)
    with pytest.raises(ckpt_io.CheckpointError, match=r"removed while the average was taken .*; listed again 3 times, "
                                                      r"the run removed one each time"):
        average([str(run)], str(tmp_path / "avg2.pt"), last=2)
    assert not os.path.exists(tmp_path / "avg2.pt")
    monkeypatch.setattr(averaging, "read_any", read)
    named = run / "mobilenetv1-9_7.ckpt"
    with pytest.raises(ckpt_io.CheckpointError, match=r"no such file"):
        average([str(named), ckpt_io.list_checkpoints(str(run))[-1][1]], str(tmp_path / "avg3.pt"))


# Commands reading a run folder that a train running there keeps rotating (keep_checkpoint_max): the newest they
# chose may be pruned before they read it (helper-351). Simulated: the read saves the train's next checkpoint and
# prunes to two, as a train saving every few steps does between the reader's look and its read.

def busy_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for epoch in (1, 2):
        save(run / f"mobilenetv1-{epoch}_7.ckpt", random_model(epoch))
    return run


def train_saves_twice(run):
    """The train running in ``run`` saves two checkpoints and prunes to two: the newest a reader chose is gone."""
    newest = ckpt_io.list_checkpoints(str(run))[-1][0]
    for epoch in (newest + 1, newest + 2):
        save(run / f"mobilenetv1-{epoch}_7.ckpt", random_model(epoch))
    for _, older in ckpt_io.list_checkpoints(str(run))[:-2]:
        os.remove(older)


def pruning_once(monkeypatch, module, name, run):
    read, done = getattr(module, name), []

    def pruning(path, *args, **kwargs):
        if not done:
            done.append(path)
            train_saves_twice(run)
        return read(path, *args, **kwargs)

    monkeypatch.setattr(module, name, pruning)
    return done


def test_info_of_a_busy_run_folder_describes_its_newest_after_a_prune(tmp_path, monkeypatch):
    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    out = info.describe(str(run))
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"
    assert os.path.basename(out["file"]) == "mobilenetv1-4_7.ckpt" and out["newest_in"] == str(run)


def test_info_of_a_checkpoint_pruned_while_its_model_is_built_names_the_prune(tmp_path, monkeypatch):
    """info read the file's format again after loading it and building its model, the widest window: a bare
    "[Errno 2] No such file or directory" where a train was saving every few steps."""
    run = busy_run(tmp_path)
    named = str(run / "mobilenetv1-2_7.ckpt")
    build = api.model_from_checkpoint

    def building(ckpt, path, *args, **kwargs):
        train_saves_twice(run)
        return build(ckpt, path, *args, **kwargs)

    monkeypatch.setattr(api, "model_from_checkpoint", building)
    out = info.describe(named)  # read whole before the prune: described, as eval would have evaluated it
    assert out["file"] == named


def stopped_after_load(monkeypatch, module):
    """``module``'s model_from_checkpoint stops the command after its file is read: the paths it was given."""
    captured = []

    def stop_after_load(ckpt, path, *args, **kwargs):
        captured.append(path)
        raise RuntimeError("stop here")

    monkeypatch.setattr(module, "model_from_checkpoint", stop_after_load)
    return captured


def test_export_of_a_busy_run_folder_exports_its_newest_after_a_prune(tmp_path, monkeypatch):
    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    captured = stopped_after_load(monkeypatch, export)
    with pytest.raises(RuntimeError, match="stop here"):
        export.export_checkpoint(str(run), str(tmp_path / "m"))
    assert done and os.path.basename(captured[0]) == "mobilenetv1-4_7.ckpt"


def test_convert_of_a_busy_run_folder_converts_its_newest_after_a_prune(tmp_path, monkeypatch):
    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, mindspore_io, "read_any", run)
    out = mindspore_io.convert(str(run), str(tmp_path / "c.pt"))
    assert done and os.path.basename(out["source"]) == "mobilenetv1-4_7.ckpt"


def test_eval_of_a_busy_run_folder_evaluates_its_newest_after_a_prune(tmp_path, monkeypatch, image_folder):
    """eval chose the folder's newest, then read it: pruned meanwhile, it ended "removed while it was being read"
    where info, export and convert chose the newest again (a process of its own; torchrun's ranks evaluate the
    file rank 0 chose, read by each)."""
    from mobilenet_v1 import evaluate

    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    captured = stopped_after_load(monkeypatch, evaluate)
    with pytest.raises(RuntimeError, match="stop here"):
        evaluate.main(["--checkpoint_path", str(run), "--dataset", "imagenet2012", "--dataset_path",
                       str(image_folder), "--device_target", "CPU", "--num_workers", "0"])
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"
    assert os.path.basename(captured[0]) == "mobilenetv1-4_7.ckpt"


def test_a_named_checkpoint_that_is_pruned_is_still_an_error(tmp_path, monkeypatch):
    run = busy_run(tmp_path)
    pruning_once(monkeypatch, ckpt_io, "load_file", run)
    with pytest.raises(ckpt_io.CheckpointError, match="no such file|removed while it was being read"):
        info.describe(str(run / "mobilenetv1-2_7.ckpt"))


def test_a_file_gone_while_read_is_said_as_removed_not_a_bare_errno(tmp_path):
    """read_newest: a read that meets the file gone (FileNotFoundError, "[Errno 2]") names it as pruned while read,
    for a file named and, after its retries, for a run folder whose newest goes each time; another error passes."""
    run = busy_run(tmp_path)

    def gone(path):
        os.remove(path)
        raise FileNotFoundError(2, "No such file or directory", path)

    named = str(run / "mobilenetv1-2_7.ckpt")
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^checkpoint {named}: removed while it was being read"):
        ckpt_io.read_newest(named, gone)
    tries = []

    def always_gone(path):
        tries.append(path)
        train_saves_twice(run)
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(ckpt_io.CheckpointError, match="removed while it was being read"):
        ckpt_io.read_newest(str(run), always_gone)
    assert len(tries) == ckpt_io.PRUNED_RETRIES + 1 and len(set(tries)) == len(tries)

    def elsewhere(path):  # a file of another name missing: not this one's prune
        raise FileNotFoundError(2, "No such file or directory", "other.bin")

    with pytest.raises(FileNotFoundError):
        ckpt_io.read_newest(str(run), elsewhere)


def test_benchmark_of_a_busy_run_folder_times_its_newest_after_a_prune(tmp_path, monkeypatch, capsys, one_thread):
    """benchmark chose the folder's newest, read it and built its model, then took the file's size by its name:
    beside a train saving every step it ended with a bare "[Errno 2]" of the file it had chosen, most times (and
    --memory loaded the file timed again, minutes later). Now a prune before the read has the newest chosen
    again, the size is the file's that was read, and --memory measures the folder's newest by the folder."""
    import json

    from mobilenet_v1 import benchmark

    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    measured = []
    monkeypatch.setattr(benchmark, "memory_footprint", lambda path, *a, **k: measured.append(path) or None)
    timing = ["--seconds", "0.05", "--rounds", "1", "--warmup", "1", "--json"]
    assert cli.main(["benchmark", str(run), *timing, "--memory"]) == 0, capsys.readouterr().err
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"
    assert os.path.basename(row["file"]) == "mobilenetv1-4_7.ckpt" and row["bytes"] > 10_000
    assert measured == [str(run)]
    build, pruned = benchmark.model_from_checkpoint, []

    def building(ckpt, path, *args, **kwargs):  # read whole: pruned while its model is built
        if not pruned:
            pruned.append(path)
            train_saves_twice(run)
        return build(ckpt, path, *args, **kwargs)

    monkeypatch.setattr(benchmark, "model_from_checkpoint", building)
    assert cli.main(["benchmark", str(run), *timing]) == 0, capsys.readouterr().err
    row = json.loads(capsys.readouterr().out)["results"][0]
    assert row["file"] == pruned[0] and not os.path.exists(row["file"]) and row["bytes"] > 10_000


def test_predict_load_model_and_recalibrate_of_a_busy_run_folder_read_its_newest_after_a_prune(tmp_path, monkeypatch,
                                                                                                capsys, one_thread):
    """predict --ckpt_file RUN, load_model(RUN) and recalibrate-bn RUN chose the folder's newest and read it once:
    pruned meanwhile by a train running there, they ended "checkpoint RUN/mobilenetv1-2_7.ckpt: no such file", a
    file the user never named, where eval, info, export, convert and average choose the newest again."""
    import numpy as np
    from PIL import Image

    from mobilenet_v1 import recalibrate

    image = tmp_path / "x.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(image)
    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    assert cli.main(["predict", str(image), "--ckpt_file", str(run), "--json"]) == 0, capsys.readouterr().err
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"
    assert os.path.basename(json_out(capsys)["model"]) == "mobilenetv1-4_7.ckpt"
    done.clear()
    model = load_model(str(run))
    assert done and os.path.basename(done[0]) == "mobilenetv1-4_7.ckpt"
    newest = ckpt_io.list_checkpoints(str(run))[-1][1]
    assert os.path.basename(newest) == "mobilenetv1-6_7.ckpt"
    assert torch.equal(model.state_dict()["fc.weight"], random_model(6).state_dict()["fc.weight"])
    done = pruning_once(monkeypatch, recalibrate, "read_any", run)
    captured = stopped_after_load(monkeypatch, api)
    with pytest.raises(RuntimeError, match="stop here"):
        recalibrate.run(str(run), str(tmp_path / "r.ckpt"), str(tmp_path / "data"))
    assert done and os.path.basename(done[0]) == "mobilenetv1-6_7.ckpt"
    assert os.path.basename(captured[0]) == "mobilenetv1-8_7.ckpt"


def json_out(capsys):
    import json

    return json.loads(capsys.readouterr().out)


def test_train_from_a_busy_run_folder_takes_its_newest_after_a_prune(tmp_path, monkeypatch, cifar_dir, one_thread):
    """train --pre_trained RUN and --teacher RUN (one process) chose the folder's newest and read it once (the
    teacher's file read a second time for its sha256, after its model was built): pruned meanwhile by the train
    running there, the run ended "checkpoint RUN/mobilenetv1-2_7.ckpt: no such file" or "--teacher
    RUN/mobilenetv1-2_7.ckpt: no such file or run folder". Now the newest is chosen again."""
    from mobilenet_v1 import train
    from mobilenet_v1.config import load_config

    small = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
             "--class_num=4", f"--dataset_path={cifar_dir}", "--epoch_size=1", "--eval_interval=0"]
    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    taken = []

    def stop(cfg, model, source, pre_trained, *args):
        taken.append(pre_trained)
        raise RuntimeError("stop here")

    monkeypatch.setattr(train, "_take_pre_trained", stop)
    with pytest.raises(RuntimeError, match="stop here"):
        train.run(load_config(small + [f"--pre_trained={run}", f"--save_checkpoint_path={tmp_path / 'a'}"]))
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"
    assert os.path.basename(taken[0]) == "mobilenetv1-4_7.ckpt"
    hash_of, hashed = ckpt_io.file_sha256, []

    def pruned_before_hashed(path):  # the teacher read and built: its file pruned before it is hashed
        if not hashed:
            train_saves_twice(run)
        hashed.append(path)
        return hash_of(path)

    monkeypatch.setattr(ckpt_io, "file_sha256", pruned_before_hashed)
    cfg = load_config(small + [f"--teacher={run}", f"--save_checkpoint_path={tmp_path / 'b'}"])
    distiller = train.build_distiller(cfg, None, torch.device("cpu"), torch.contiguous_format, str(tmp_path / "b"))
    assert [os.path.basename(p) for p in hashed] == ["mobilenetv1-4_7.ckpt", "mobilenetv1-6_7.ckpt"]
    assert distiller.source["path"] == hashed[-1] and distiller.source["sha256"] == hash_of(hashed[-1])


def test_eval_of_a_busy_run_folder_takes_the_data_set_its_newest_records_after_a_prune(tmp_path, monkeypatch):
    """eval without --dataset reads the one the file records, first of all: where the newest it chose for that was
    pruned before it was read, it took none, so cifar10's configuration, and then refused the newest it read after
    all: "--dataset cifar10: RUN/mobilenetv1-3_2.ckpt was trained on imagenet2012 ... pass --dataset imagenet2012",
    an option the user never gave."""
    from mobilenet_v1 import evaluate

    run = busy_run(tmp_path)
    done = pruning_once(monkeypatch, ckpt_io, "load_file", run)
    assert evaluate.recorded_dataset({"checkpoint_path": str(run)}) == "imagenet2012"
    assert done and os.path.basename(done[0]) == "mobilenetv1-2_7.ckpt"


def test_an_eval_sweep_of_a_busy_run_folder_evaluates_the_file_its_first_size_read_at_every_size(tmp_path, monkeypatch,
                                                                                                  capsys, one_thread):
    """eval --image_size 32,48 of a run folder evaluates the file its first size chose at every size: the later
    sizes read that file again by its name, and where a train running there had pruned it meanwhile (minutes of
    evaluation a size) the sweep ended after its first row, "--checkpoint_path RUN/mobilenetv1-2_7.ckpt: no such
    file or run folder". Now each later size evaluates the checkpoint as the first size read it."""
    from conftest import class_folders_of_photos

    from mobilenet_v1 import evaluate

    data = class_folders_of_photos(tmp_path / "data" / "validation_preprocess").parent
    run = busy_run(tmp_path)
    evaluated, loads = evaluate._run, []
    read = ckpt_io.load_file

    def reading(path, *args, **kwargs):
        loads.append(os.path.basename(path))
        return read(path, *args, **kwargs)

    def pruned_after(*args, **kwargs):  # each size's evaluation: the train saves twice meanwhile
        result = evaluated(*args, **kwargs)
        train_saves_twice(run)
        return result

    monkeypatch.setattr(ckpt_io, "load_file", reading)
    monkeypatch.setattr(evaluate, "_run", pruned_after)
    args = ["eval", "--checkpoint_path", str(run), "--dataset_path", str(data), "--device_target", "CPU",
            "--num_workers", "0", "--image_size", "32,48,64", "--json"]
    assert cli.main(args) == 0, capsys.readouterr().err
    out = json_out(capsys)
    assert os.path.basename(out["ckpt"]) == "mobilenetv1-2_7.ckpt" and not os.path.exists(out["ckpt"])
    assert [r["image_size"] for r in out["sizes"]] == [32, 48, 64] and all(r["total"] == 20 for r in out["sizes"])
    assert set(loads) == {"mobilenetv1-2_7.ckpt"}  # each size's look for its data set, then the first size's read
