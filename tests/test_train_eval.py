import dataclasses
import json
import os
import re
import runpy
import shutil
import subprocess
import tarfile
import sys
import types

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import evaluate as evaluate_mod
from mobilenet_v1 import cli, load_model, train
from mobilenet_v1.config import ConfigError, Given, load_config, to_dict
from mobilenet_v1.data import CIFAR100_FOLDER, CIFAR_EVAL_FOLDER, BadSampleWarning, DataError, write_cifar_bin
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.schedules import schedule

from conftest import class_images, jpeg_bytes, smooth_image

ROOT = os.path.join(os.path.dirname(__file__), "..")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05"]


def run_script(monkeypatch, name, *args) -> int:
    """``python NAME ARGS``, a seed entry point at the repository's root, run as __main__ in this process (a
    Python start that imports torch costs seconds; the script hands its arguments to cli.main): its exit status."""
    monkeypatch.setattr(sys, "argv", [name, *args])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts src/ in front
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(os.path.join(ROOT, name), run_name="__main__")
    return ended.value.code


def test_short_training_run_loss_falls_and_checkpoints(cifar_dir, tmp_path, capsys):
    # 8 epochs: the criterion reads single-batch losses, and over 6 it held for only some seeds.
    out = tmp_path / "run"
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=8", "--save_checkpoint_epochs=2",
                               "--keep_checkpoint_max=2", "--class_num=4", f"--save_checkpoint_path={out}"])
    result = train.run(cfg)
    log = capsys.readouterr().out
    losses = [float(line.split("loss is ")[1]) for line in log.splitlines() if line.startswith("epoch: ")]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.6 * np.mean(losses[:2])
    assert "epoch: 8 step: 12, loss is " in log and "Epoch time: " in log and ", per step time: " in log
    names = sorted(n for n in os.listdir(out) if n.endswith((".ckpt", ".yaml")))  # tests/test_tracking.py: the rest
    assert names == ["config.yaml", "mobilenetv1-6_12.ckpt", "mobilenetv1-8_12.ckpt"]
    assert result["checkpoint"] == str(out / "mobilenetv1-8_12.ckpt")
    ck = ckpt_io.load_file(result["checkpoint"])
    assert {"model", "optimizer", "scaler", "epoch", "step", "config", "rng"} <= set(ck)
    assert ck["epoch"] == 8 and ck["step"] == 96 and ck["config"]["class_num"] == 4


def test_half_precision_asked_for_on_the_cpu_is_said_to_be_slower(cifar_dir, tmp_path, capsys, one_thread):
    """fp16 and bf16 run on the CPU far slower than fp32 (a step 67x and 2.3x on the development CPU, AMX and
    AVX-512 FP16 units notwithstanding: benchmarks/RESULTS.md); a run asked for one there says so, and auto (fp32
    there) nothing."""
    base = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4", "--save_checkpoint=False",
                    "--batch_size=64"]
    train.run(load_config(base + ["--precision=bf16"]))
    assert ("note: precision bf16 on the CPU: a training step took 2.3x the time of fp32's on the 2-core development "
            "CPU, which has AMX and AVX-512 FP16 units (benchmarks/RESULTS.md); fp32 is auto's choice on the CPU") \
        in capsys.readouterr().out
    train.run(load_config(base))
    assert "on the CPU: a training step took" not in capsys.readouterr().out



def test_a_notebooks_own_torch_settings_neither_break_nor_change_train_eval_and_predict(cifar_dir, tmp_path,
                                                                                       one_thread):
    """A notebook's torch.autocast around train.run trained in bf16, its backward too, while the checkpoint said
    fp32; eval and predict's probabilities changed under it alike; torch.set_grad_enabled(False) (or
    inference_mode) left over failed the run on "element 0 of tensors does not require grad", and
    torch.set_default_dtype(torch.float64) every command on a float64 model (helper-359). The library runs as
    its options say, bit for bit as outside them, and the caller's settings are theirs again after it."""
    from mobilenet_v1 import load_predictor

    base = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4", "--eval_interval=0"]
    ref = train.run(load_config(base + [f"--save_checkpoint_path={tmp_path / 'ref'}"]))["checkpoint"]
    ev = load_config([f"--dataset_path={cifar_dir}", f"--checkpoint_path={ref}", "--device_target=CPU",
                      "--num_workers=0"])
    images = [smooth_image(40, 48, seed=i) for i in range(3)]  # (H, W, C) uint8 arrays
    before_eval = evaluate_mod.run(ev, per_image=True)["images"]
    predictor = load_predictor(ref)
    before_top = predictor.top_k(images, k=4)
    torch.set_default_dtype(torch.float64)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            got = train.run(load_config(base + [f"--save_checkpoint_path={tmp_path / 'nb'}"]))["checkpoint"]
            in_eval = evaluate_mod.run(ev, per_image=True)["images"]
            in_top = predictor.top_k(images, k=4)
            model = load_model(ref)
            assert torch.get_default_dtype() == torch.float64 and torch.is_autocast_enabled("cpu")
            assert not torch.is_grad_enabled()
    finally:
        torch.set_default_dtype(torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(ckpt_io.load_file(ref)["model"].values(),
                                                  ckpt_io.load_file(got)["model"].values()))
    assert in_eval == before_eval and len(in_eval) > 10
    assert in_top == before_top and len(in_top) == 3 and len(in_top[0]["top_k"]) == 4
    assert next(model.parameters()).dtype == torch.float32
    # cli.main from Python: its streams' escaping of names that are not UTF-8 is the command's, not kept after it
    errors = (sys.stdout.errors, sys.stderr.errors)
    assert cli.main(["info", ref]) == 0
    assert (sys.stdout.errors, sys.stderr.errors) == errors != ("mobilenet_v1.escape",) * 2


def test_predict_runs_its_model_without_gradients(tmp_path):
    """Predictor.top_k's forward recorded an autograd graph: runtime.library_defaults' inference_mode(False) turns
    gradients on inside top_k's no_grad (c10::InferenceMode(false)), 1.6x predict's time on the CPU and every
    activation of the batch held (peak memory 3.9 GB against 1.1 GB for a folder at batch 32, width 1.0)."""
    from mobilenet_v1 import load_predictor

    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 32}}, ckpt)
    predictor = load_predictor(ckpt)
    seen = []
    predictor.model.register_forward_hook(lambda m, i, out: seen.append(
        (torch.is_grad_enabled(), out.requires_grad, i[0].is_contiguous(memory_format=torch.channels_last))))
    predictor.top_k([np.zeros((40, 48, 3), np.uint8)], k=2)
    # Its batches channels_last, as eval's (helper-379: NCHW took 43 ms an image at width 1.0 where channels_last
    # took 27 on the CPU)
    assert seen == [(False, False, True)]


def test_eval_says_when_auto_evaluates_in_another_precision_than_float32(cifar_dir, tmp_path, capsys, monkeypatch):
    """On a GPU --precision auto evaluates in bf16, where timm's validate.py, torchvision's references and predict
    evaluate in float32: only --json said so, and its figures were set beside theirs (helper-355). The GPU's choice
    stands in for itself here; the note goes where auto chose another precision, not where one was asked for."""
    model = MobileNetV1(class_num=10, width_mult=0.25).eval()
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    chose = evaluate_mod.resolve_precision
    monkeypatch.setattr(evaluate_mod, "resolve_precision", lambda p, d: "bf16" if p == "auto" else chose(p, d))
    base = ["eval", "--checkpoint_path", ckpt, "--dataset_path", str(cifar_dir), "--num_workers", "0", "--json"]
    for options, said in (([], True), (["--precision", "fp32"], False), (["--precision", "bf16"], False)):
        assert cli.main(base + options) == 0
        out, err = capsys.readouterr()
        assert json.loads(out.strip().splitlines()[-1])["precision"] == ("fp32" if "fp32" in options else "bf16")
        assert ("note: precision bf16 (--precision auto on a GPU); --precision fp32 for the figures of timm's "
                "validate.py, torchvision's references and predict, which evaluate in float32" in err) == said, options


def test_checkpoint_save_load_identical_logits(tmp_path):
    model = MobileNetV1(class_num=6, width_mult=0.5).eval()
    model.network[4][1].running_mean.uniform_(-1, 1)  # buffers travel too
    path = tmp_path / "m.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 6, "width_mult": 0.5}}, str(path))
    loaded = load_model(str(path))
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert not loaded.training
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_load_model_of_a_run_folder_is_its_newest_checkpoint(tmp_path):
    """The rule of eval --checkpoint_path DIR and convert DIR: the newest mobilenetv1-E_S.ckpt by number
    (epoch 10 after epoch 9), not the best one; a distributed run's folder: the newest in its ckpt_0/."""
    (tmp_path / "run").mkdir()
    models = {}
    for seed, name in enumerate((ckpt_io.checkpoint_name(9, 5), ckpt_io.checkpoint_name(10, 5), ckpt_io.BEST_NAME)):
        torch.manual_seed(seed)
        models[name] = MobileNetV1(class_num=4, width_mult=0.25).eval()
        ckpt_io.atomic_save({"model": models[name].state_dict()}, str(tmp_path / "run" / name))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model(str(tmp_path / "run"))(x), models["mobilenetv1-10_5.ckpt"](x))
        # A distributed run's save_checkpoint_path holds its checkpoints in ckpt_0/.
        (tmp_path / "dist").mkdir()
        os.rename(tmp_path / "run", tmp_path / "dist" / ckpt_io.DISTRIBUTED_SUBFOLDER)
        assert torch.equal(load_model(str(tmp_path / "dist"))(x), models["mobilenetv1-10_5.ckpt"](x))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ckpt_io.CheckpointError, match=r"checkpoint folder .*empty: holds no numbered checkpoint "
                                                      r"\(mobilenetv1-EPOCH_STEP\.ckpt\)$"):
        load_model(str(tmp_path / "empty"))
    ckpt_io.atomic_save({"model": models["mobilenetv1-10_5.ckpt"].state_dict()},
                        str(tmp_path / "empty" / ckpt_io.BEST_NAME))
    with pytest.raises(ckpt_io.CheckpointError, match=r"its best one is .*mobilenetv1-best\.ckpt: pass that file"):
        load_model(str(tmp_path / "empty"))


def test_eval_of_an_unlistable_run_folder_is_a_checkpoint_error(tmp_path, monkeypatch):
    """Rank 0 turns an OSError of listing the folder into the error it hands the other ranks (raised
    past the broadcast, it left them waiting for a choice that never came); the listing lets it through
    (glob said "no checkpoints" of an unreadable folder)."""
    (tmp_path / "run").mkdir()
    listdir = os.listdir

    def unreadable(folder):  # as for a user without read permission there (root reads anything)
        if str(folder) == str(tmp_path / "run"):
            raise PermissionError(13, "Permission denied", folder)
        return listdir(folder)

    monkeypatch.setattr(os, "listdir", unreadable)
    with pytest.raises(ckpt_io.CheckpointError, match=r"checkpoint_path .*run: cannot list it: Permission denied"):
        evaluate_mod.run(load_config([f"--checkpoint_path={tmp_path / 'run'}", f"--dataset_path={tmp_path}"]))


def test_load_refuses_wrong_shapes_and_names(tmp_path):
    state = MobileNetV1(class_num=6, width_mult=0.5).state_dict()
    state["network.3.0.weight"] = torch.zeros(5, 1, 3, 3)
    with pytest.raises(ckpt_io.CheckpointError, match=r"network\.3\.0\.weight"):
        ckpt_io.load_weights(MobileNetV1(class_num=6, width_mult=0.5), state, "x.ckpt")
    del state["network.3.0.weight"]
    with pytest.raises(ckpt_io.CheckpointError, match=r"missing 1: network\.3\.0\.weight"):
        ckpt_io.load_weights(MobileNetV1(class_num=6, width_mult=0.5), state, "x.ckpt")
    garbage = tmp_path / "g.ckpt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt_io.CheckpointError, match=r"g\.ckpt"):
        ckpt_io.load_file(str(garbage))


KNOWN_LABELS = {3: 7, 1: 5, 2: 3, 9: 6, 5: 2}  # label: images; 23 in all, no full batch of 16 twice


def known_answer_case(tmp_path):
    """The eval options of a model whose logits are its bias (it always ranks classes 3, 1, 4, 0, 2,
    ...) over 23 blank images labelled as :data:`KNOWN_LABELS`."""
    model = MobileNetV1(class_num=10, width_mult=0.25)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([5.0, 8, 4, 9, 7, 0, 1, 2, 3, -1]))
    path = tmp_path / "known.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict()}, str(path))
    labels = np.concatenate([[label] * n for label, n in KNOWN_LABELS.items()])
    data = tmp_path / "d" / CIFAR_EVAL_FOLDER
    data.mkdir(parents=True)
    write_cifar_bin(str(data / "test_batch.bin"), np.zeros((23, 3, 32, 32), np.uint8), labels)
    return SMALL + [f"--dataset_path={tmp_path / 'd'}", f"--checkpoint_path={path}"]


def test_eval_on_a_case_with_a_known_answer(tmp_path):
    """Top-1 is the share of label 3 and top-5 the share of labels {3, 1, 4, 0, 2}."""
    args = known_answer_case(tmp_path)
    res = evaluate_mod.run(load_config(args))
    assert res["total"] == 23
    assert res["top_1_accuracy"] == pytest.approx(7 / 23) and res["top_5_accuracy"] == pytest.approx(15 / 23)
    # The seed's count (last partial batch dropped) stays reachable: 16 samples.
    res = evaluate_mod.run(load_config(args + ["--eval_drop_last=True"]))
    assert res["total"] == 16


def test_accuracy_is_the_hits_over_the_images_one_image_included():
    """One image ranked right is a top-1 of 1.0, not a half; no image is 0.0, not a ZeroDivisionError."""
    assert evaluate_mod.accuracy({"total": 1, "top_1_correct": 1, "top_5_correct": 1}) == \
        {"top_1_accuracy": 1.0, "top_5_accuracy": 1.0}
    assert evaluate_mod.accuracy({"total": 8, "top_1_correct": 2, "top_5_correct": 6}) == \
        {"top_1_accuracy": 0.25, "top_5_accuracy": 0.75}
    assert evaluate_mod.accuracy({"total": 0, "top_1_correct": 0, "top_5_correct": 0}) == \
        {"top_1_accuracy": 0.0, "top_5_accuracy": 0.0}


def test_eval_names_the_format_says_a_top5_of_few_classes_and_a_batch_that_drops_every_image(tmp_path, capsys):
    """--json names the file's format and precision beside it; a model of 5 classes or fewer gets a top-5 of
    1.0 whatever it does, said on stderr (not for 10); an eval_drop_last batch larger than the split drops
    every image, said as such rather than as a data set without images."""
    args = known_answer_case(tmp_path)
    assert cli.main(["eval", *args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert (json.loads(out)["format"], json.loads(out)["precision"]) == ("checkpoint", "fp32")
    assert "top-5 is 1.0 whatever" not in err
    few = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt_io.atomic_save({"model": few.state_dict()}, str(tmp_path / "few.ckpt"))
    data = tmp_path / "four" / CIFAR_EVAL_FOLDER
    data.mkdir(parents=True)
    write_cifar_bin(str(data / "test_batch.bin"), np.zeros((6, 3, 32, 32), np.uint8), np.arange(6) % 4)
    few_args = SMALL + [f"--dataset_path={tmp_path / 'four'}", f"--checkpoint_path={tmp_path / 'few.ckpt'}"]
    assert cli.main(["eval", *few_args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["top_5_accuracy"] == 1.0  # the seed's figure, kept
    assert f"note: top-5 is 1.0 whatever the model does: {tmp_path / 'few.ckpt'} has 4 outputs" in err
    assert cli.main(["eval", *few_args, "--eval_drop_last=True"]) == 1
    assert ("no evaluation samples: eval_drop_last leaves out the last partial batch, and the 6 images of the eval "
            "split are fewer than one batch of 16: a smaller --eval_batch_size, or --eval_drop_last False"
            in capsys.readouterr().err)


def test_an_evaluation_of_no_image_is_not_a_best_checkpoint(cifar_dir, tmp_path, capsys, one_thread):
    """--eval_drop_last with an eval batch larger than the eval split:
    nothing is evaluated. That used to count as top-1 0 and, at the first evaluation, as the best so far
    (mobilenetv1-best.ckpt of no measurement); now it is said and left out."""
    out = tmp_path / "run"
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--eval_interval=1",
                                   "--eval_drop_last=True", "--eval_batch_size=64", "--class_num=4",
                                   f"--save_checkpoint_path={out}"]))
    assert ("eval: epoch 1: no image evaluated: eval_drop_last drops the last partial batch, which here is all"
            in capsys.readouterr().out)
    assert not (out / ckpt_io.BEST_NAME).exists()
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
              if '"kind": "epoch"' in line]
    assert len(epochs) == 1 and "top_1" not in epochs[0]


def test_patience_stops_a_run_whose_top1_stopped_improving_and_a_resume_counts_on(cifar_dir, tmp_path, capsys,
                                                                                   monkeypatch, one_thread):
    """--patience 2 with top-1 0.5, 0.6, 0.6, 0.55 (a tie is no improvement): the run stops after epoch 4 of
    6, saving it though save_checkpoint_epochs would not, its best checkpoint epoch 2's. A resume counts on
    from the records: with the same patience there is nothing to do, with 3 it trains on to the end."""
    from mobilenet_v1.tracking import read_metrics

    scores = [0.5, 0.6, 0.6, 0.55]
    monkeypatch.setattr(train, "judged_accuracy", lambda *a, **k: {"top_1": scores.pop(0), "top_5": 1.0,
                                                                     "eval_images": 40})
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=6", "--eval_interval=1", "--class_num=4",
                    "--save_checkpoint_epochs=3", f"--save_checkpoint_path={out}"]
    result = train.run(load_config(args + ["--patience=2"]))
    assert result["stopped_early"] == 4 and not scores and result["checkpoint"].endswith("mobilenetv1-4_12.ckpt")
    assert (f"early stopping after epoch 4 of 6: top-1 has not improved on 0.6000 (epoch 2) in 2 evaluations "
            f"(patience 2): checkpoint {result['checkpoint']}, the best (epoch 2, top-1 0.6000) "
            f"{out / ckpt_io.BEST_NAME}"
            ) in capsys.readouterr().out
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["epoch"] == 2
    assert [r["epoch"] for r in read_metrics(str(out))["epochs"]] == [1, 2, 3, 4]
    ranked = {1: 0.5, 2: 0.6, 3: 0.6, 4: 0.55}
    assert train.Evaluations.before(2, 0, str(out), 4) == train.Evaluations(2, best=0.6, best_epoch=2, since=2,
                                                                         best_saved=0.6, best_saved_epoch=2,
                                                                         ranked=ranked, last_epoch=4)
    assert train.Evaluations.before(2, 0, str(out), 2) == train.Evaluations(2, best=0.6, best_epoch=2, since=0,
                                                                         best_saved=0.6, best_saved_epoch=2,
                                                                         ranked={1: 0.5, 2: 0.6}, last_epoch=2)

    # Nothing to do, and nothing in the folder touched: not the later checkpoint (a resume from epoch 3 would
    # move it aside), not the records.
    folder = sorted(os.listdir(out))
    for resume in ("auto", str(out / "mobilenetv1-3_12.ckpt")):
        result = train.run(load_config(args + ["--patience=1" if "3_12" in resume else "--patience=2",
                                               f"--resume={resume}"]))
        assert result["stopped_early"] == 0 and result["epoch_seconds"] == [] and sorted(os.listdir(out)) == folder
        assert result["checkpoint"] == (result["resumed_from"] if resume == "auto" else resume)
    assert [r["epoch"] for r in read_metrics(str(out))["epochs"]] == [1, 2, 3, 4]
    said = capsys.readouterr().out
    assert ("resume: --patience 2 is used up by the evaluations up to epoch 4: top-1 has not improved on 0.6000 "
            "(epoch 2) in 2 evaluations (patience 2); nothing to do (--patience above 2, or 0, trains on)") in said
    assert "used up by the evaluations up to epoch 3: top-1 has not improved on 0.6000 (epoch 2) in 1 evaluation " \
        in said
    # Patience that runs out at the last epoch stops nothing: the run ends there anyway.
    scores[:] = [0.55, 0.6]
    result = train.run(load_config(args + ["--patience=4", "--resume=auto"]))
    assert result["stopped_early"] == 0 and not scores and len(result["epoch_seconds"]) == 2
    assert "early stopping" not in capsys.readouterr().out
    assert [r["epoch"] for r in read_metrics(str(out))["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["epoch"] == 2
    train.run(load_config(args + ["--patience=2", "--resume=auto"]))  # complete, whatever the patience
    assert "resume: training is complete (6 epochs); nothing to do" in capsys.readouterr().out
    # Complete at an earlier checkpoint (epoch_size 3): nothing to do there either, and nothing touched.
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = train.run(load_config(args + ["--epoch_size=3", f"--resume={out / 'mobilenetv1-3_12.ckpt'}"]))
    assert result["epoch_seconds"] == [] and {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert [r["epoch"] for r in read_metrics(str(out))["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert "resume: training is complete (3 epochs); nothing to do" in capsys.readouterr().out
    # Resumed from a checkpoint elsewhere, the folder's records are another run's: the count starts afresh.
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(out / "mobilenetv1-4_12.ckpt", tmp_path / "elsewhere")
    scores[:] = [0.1, 0.1]
    elsewhere = tmp_path / "elsewhere" / "mobilenetv1-4_12.ckpt"
    result = train.run(load_config(args + ["--patience=2", f"--resume={elsewhere}"]))
    assert result["stopped_early"] == 0 and not scores and len(result["epoch_seconds"]) == 2
    # An evaluation of non-finite outputs is no improvement, whatever its count.
    # Nor is it a best checkpoint; an evaluation after a best checkpoint moved aside is, whatever its top-1.
    evaluations = train.Evaluations(2)
    assert evaluations.judge(1, {"top_1": 0.5}) and not evaluations.judge(2, {"top_1": 0.9, "nonfinite_outputs": 3})
    assert (evaluations.best, evaluations.best_epoch, evaluations.since) == (0.5, 1, 1)
    assert not evaluations.judge(3, {"top_1": 0.5}) and evaluations.exhausted
    evaluations.keep_only(False, [1, 2])
    assert evaluations.ranked == {1: 0.5} and evaluations.judge(4, {"top_1": 0.1})
    assert (evaluations.best, evaluations.best_saved, evaluations.since) == (0.5, 0.1, 3)
    with pytest.raises(ConfigError, match="option --patience: patience 2 is a setting of evaluation's .* eval_interval "
                                          "is 0"):
        load_config(["--patience=2"])
    # --patience_min_delta: a gain of no more than it is none for the count (the best checkpoint takes it).
    scores[:] = [0.5, 0.6]
    result = train.run(load_config(args + ["--patience=1", "--patience_min_delta=0.15", "--epoch_size=3",
                                           f"--save_checkpoint_path={tmp_path / 'delta'}"]))
    assert result["stopped_early"] == 2 and not scores
    assert ckpt_io.load_file(str(tmp_path / "delta" / ckpt_io.BEST_NAME))["epoch"] == 2
    # The line names the best checkpoint's own epoch: it took the gain the count did not (a README audit found
    # "not improved on 0.5000 (epoch 1)" followed by "the best" file with no word that it was epoch 2's).
    assert ("early stopping after epoch 2 of 3: top-1 has not improved on 0.5000 (epoch 1) by more than 0.15 in 1 "
            f"evaluation (patience 1): checkpoint {tmp_path / 'delta' / ckpt_io.checkpoint_name(2, 12)}, the best "
            f"(epoch 2, top-1 0.6000) {tmp_path / 'delta' / ckpt_io.BEST_NAME}") in capsys.readouterr().out
    # A resume judges the history by its own rule: 0.5, 0.6 is no gain with 0.15, one with 0.05.
    delta = args + ["--patience=1", "--epoch_size=3", "--resume=auto", f"--save_checkpoint_path={tmp_path / 'delta'}"]
    assert train.run(load_config(delta + ["--patience_min_delta=0.15"]))["epoch_seconds"] == []
    assert ("--patience 1 is used up by the evaluations up to epoch 2: top-1 has not improved on 0.5000 (epoch 1) by "
            "more than 0.15 in 1 evaluation") in capsys.readouterr().out
    scores[:] = [0.6]
    assert len(train.run(load_config(delta + ["--patience_min_delta=0.05"]))["epoch_seconds"]) == 1 and not scores
    with pytest.raises(ConfigError, match="option --patience_min_delta: patience_min_delta 0.01 is a setting of early "
                                          "stopping's; patience is 0"):
        load_config(["--eval_interval=1", "--patience_min_delta=0.01"])
    with pytest.raises(ConfigError, match=r"patience_min_delta must be in \[0, 1\)"):
        load_config(["--eval_interval=1", "--patience=2", "--patience_min_delta=1"])
    with pytest.raises(ConfigError, match="option --patience: patience must be >= 0"):
        load_config(["--patience=-1", "--eval_interval=1"])


def test_a_gain_of_exactly_patience_min_delta_is_no_improvement():
    """--patience_min_delta D: better is more than D above the last top-1 that counted as better (README). Top-1s
    are ratios of counts, whose float difference can round above D: 8 of 10 images after 7 (0.8 - 0.7 > 0.1 in
    floats) used to restart the count with D 0.1, while 6 after 5 did not; any gain of an image more than D does."""
    for before, after in ((0.7, 0.8), (0.5, 0.6), (7 / 20, 9 / 20)):
        evaluations = train.Evaluations(patience=1, min_delta=0.1)
        evaluations.judge(1, {"top_1": before})
        assert evaluations.judge(2, {"top_1": after})  # the best checkpoint follows every gain
        assert (evaluations.best, evaluations.best_epoch, evaluations.since) == (before, 1, 1), (before, after)
        assert evaluations.exhausted
    evaluations = train.Evaluations(patience=1, min_delta=0.1)
    evaluations.judge(1, {"top_1": 0.7})
    evaluations.judge(2, {"top_1": 0.9})  # 2 images more than 0.1 above, of 10
    assert (evaluations.best, evaluations.since) == (0.9, 0)
    evaluations = train.Evaluations(patience=1)  # no D: a tie is none, one image of a million is a gain
    evaluations.judge(1, {"top_1": 0.7})
    assert evaluations.judge(2, {"top_1": 0.7 + 1e-6}) and evaluations.since == 0
    evaluations.judge(3, {"top_1": 0.7 + 1e-6})
    assert evaluations.since == 1


def test_a_resume_judges_its_evaluations_against_its_history(cifar_dir, tmp_path, capsys, monkeypatch, one_thread):
    """Without --patience as with it: a resume's best checkpoint and keep_best_max's ranking go on from its
    history's records; an evaluation of non-finite outputs is neither, whatever its count. A resume sent
    back past the best checkpoint (moved aside) saves the next evaluation as the best, and an early stop
    before that one names no best file."""
    import re

    scores = [0.5, 0.6, 0.6]
    monkeypatch.setattr(train, "judged_accuracy", lambda *a, **k: {
        "top_1": abs(scores[0]), "top_5": 1.0, "eval_images": 40, **({"nonfinite_outputs": 2} if scores.pop(0) < 0
                                                                     else {})})
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--eval_interval=1", "--class_num=4", "--keep_best_max=2",
                    "--save_checkpoint_epochs=1", "--keep_checkpoint_max=10", f"--save_checkpoint_path={out}"]
    train.run(load_config(args + ["--epoch_size=3"]))
    assert re.findall(r"eval: epoch (\d+) .*, best so far", capsys.readouterr().out) == ["1", "2"]
    scores[:] = [-0.9, 0.55, 0.7]  # epoch 4 non-finite
    train.run(load_config(args + ["--epoch_size=6", "--resume=auto"]))
    assert re.findall(r"eval: epoch (\d+) .*, best so far", capsys.readouterr().out) == ["6"]
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["epoch"] == 6
    assert sorted(e for e, _ in ckpt_io.list_top(str(out))) == [2, 6]  # a tie: the earlier epoch
    scores[:] = [-0.9]
    result = train.run(load_config(args + ["--epoch_size=6", "--patience=1",
                                           f"--resume={out / ckpt_io.checkpoint_name(2, 12)}"]))
    said = capsys.readouterr().out
    assert result["stopped_early"] == 3 and not (out / ckpt_io.BEST_NAME).exists()
    assert ("early stopping after epoch 3 of 6: top-1 has not improved on 0.6000 (epoch 2) in 1 evaluation "
            f"(patience 1): checkpoint {out / ckpt_io.checkpoint_name(3, 12)}; --resume auto") in said
    assert (f"resume: {out / ckpt_io.checkpoint_name(2, 12)} was trained with patience 0; continuing with this run's "
            f"patience 1: its evaluations so far count towards this run's patience\n") in said
    scores[:] = [0.1]
    moved = tmp_path / "moved"  # the data moved: said, and the run goes on
    shutil.copytree(cifar_dir, moved)
    train.run(load_config(args + ["--epoch_size=4", "--resume=auto", f"--dataset_path={moved}"]))
    said = capsys.readouterr().out
    assert (f"resume: {out / ckpt_io.checkpoint_name(3, 12)} was trained with dataset_path '{cifar_dir}'; continuing "
            f"with this run's dataset_path '{moved}': the epochs from here read it\n") in said
    (tmp_path / "link").symlink_to(cifar_dir)  # a link to the same folder is the same folder
    assert train.data_change({"config": {"dataset_path": str(cifar_dir)}}, "c.ckpt",
                             load_config([f"--dataset_path={tmp_path / 'link'}"]), 3, 0) == ""
    inside = {"config": {"dataset_path": "data/a"}}  # inside an epoch; a path spelled otherwise is the same
    assert train.data_change(inside, "c.ckpt", load_config(["--dataset_path=data//a/"]), 1, 3) == ""
    assert train.data_change(inside, "c.ckpt", load_config(["--dataset_path=b"]), 1, 3).endswith(
        "dataset_path 'b': the rest of epoch 2 takes the samples its order had left after step 3 from this folder "
        "by their numbers (the same ones only if it holds the same data)")
    # A run that never evaluated has no earlier top-1 measured otherwise (helper-291: said it had).
    never = {"config": {"eval_interval": 0, "image_size": 32, "dataset": "cifar10"}}
    assert train.evaluation_change(never, "c.ckpt", load_config(["--eval_interval=1", "--eval_image_size=40"])) == ""
    assert "were measured otherwise" in train.evaluation_change(
        {"config": {**never["config"], "eval_interval": 1}}, "c.ckpt",
        load_config(["--eval_interval=1", "--eval_image_size=40"]))
    # Nor one saved before its first evaluation (epoch 1 of an evaluation every 2; helper-294).
    assert train.evaluation_change({"config": {**never["config"], "eval_interval": 2}, "epoch": 1}, "c.ckpt",
                                   load_config(["--eval_interval=1", "--eval_image_size=40"])) == ""
    # ... but one whose last epoch it was evaluated (the run's end: epoch 1 of 1; helper-296), and one whose
    # records say it evaluated (an earlier interval of a resumed run), or say it did not, are told as they were.
    last = {"config": {**never["config"], "eval_interval": 2, "epoch_size": 1}, "epoch": 1}
    assert "were measured otherwise" in train.evaluation_change(
        last, "c.ckpt", load_config(["--eval_interval=1", "--eval_image_size=40"]))
    records = tmp_path / "records"
    records.mkdir()
    (records / "metrics.jsonl").write_text('{"kind": "start", "step": 0}\n{"kind": "epoch", "epoch": 1, "step": 12, '
                                           '"loss": 1.0, "top_1": 0.5}\n')
    at_two = {"config": {**never["config"], "eval_interval": 3, "epoch_size": 4}, "epoch": 2}
    assert "were measured otherwise" in train.evaluation_change(
        at_two, "c.ckpt", load_config(["--eval_interval=1", "--eval_image_size=40"]), str(records))
    (records / "metrics.jsonl").write_text('{"kind": "start", "step": 0}\n{"kind": "epoch", "epoch": 1, "step": 12, '
                                           '"loss": 1.0}\n')
    assert train.evaluation_change({**at_two, "config": {**at_two["config"], "eval_interval": 1}}, "c.ckpt",
                                   load_config(["--eval_interval=1", "--eval_image_size=40"]), str(records)) == ""
    # Relative paths are compared from where each run started (helper-291): the same folder from another place is
    # the same (it was said changed), another folder of the same name from another place is another (unsaid).
    (tmp_path / "a" / "sub").mkdir(parents=True)
    shutil.copytree(cifar_dir, tmp_path / "a" / "data")
    shutil.copytree(cifar_dir, tmp_path / "b" / "data")
    with monkeypatch.context() as m:
        m.chdir(tmp_path / "a")
        state = train.training_state(MobileNetV1(class_num=4, width_mult=0.25), torch.optim.SGD([torch.zeros(1)], 0.1),
                                     torch.amp.GradScaler("cpu", enabled=False), 1, 12,
                                     load_config(["--dataset_path=data"]), None)
        m.chdir(tmp_path / "a" / "sub")
        assert train.data_change(state, "c.ckpt", load_config(["--dataset_path=../data"]), 1, 0) == ""
        m.chdir(tmp_path / "b")
        assert train.data_change(state, "c.ckpt", load_config(["--dataset_path=data"]), 1, 0) == (
            f"resume: c.ckpt was trained with dataset_path '{tmp_path / 'a' / 'data'}'; continuing with this run's "
            f"dataset_path '{tmp_path / 'b' / 'data'}': the epochs from here read it")
        # WebDataset shards by a relative pattern: the same shards from another folder are the same (helper-296).
        for k in range(2):
            with tarfile.open(tmp_path / "a" / f"s-{k}.tar", "w"):
                pass
        m.chdir(tmp_path / "a")
        shards = train.training_state(MobileNetV1(class_num=4, width_mult=0.25), torch.optim.SGD([torch.zeros(1)], 0.1),
                                      torch.amp.GradScaler("cpu", enabled=False), 1, 12,
                                      load_config(["--dataset=imagenet2012", "--dataset_path=s-{0..1}.tar"]), None)
        assert ckpt_io.data_there(shards[ckpt_io.DATASET_FOLDER])
        m.chdir(tmp_path / "a" / "sub")
        assert train.data_change(shards, "c.ckpt", load_config(["--dataset=imagenet2012",
                                                                "--dataset_path=../s-{0..1}.tar"]), 1, 0) == ""
        assert not ckpt_io.data_there(str(tmp_path / "a" / "s-{0..2}.tar"))
        m.chdir(tmp_path / "b")
        # A checkpoint copied to another machine, whose folder is not there: compared as written, as before.
        copied = {**state, ckpt_io.DATASET_FOLDER: str(tmp_path / "gone" / "data")}
        assert train.data_change(copied, "c.ckpt", load_config(["--dataset_path=data"]), 1, 0) == ""
    assert re.findall(r"eval: epoch (\d+) .*, best so far", said) == ["4"]
    assert "was trained with patience 1; continuing with this run's patience 0: the run does not stop early\n" in said
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["epoch"] == 4


def test_a_best_checkpoint_saved_after_a_resume_moved_a_better_one_aside_is_judged_by_its_own_top1(
        cifar_dir, tmp_path, capsys, monkeypatch, one_thread):
    """A resume sent back past the best checkpoint (epoch 3's 0.6, moved aside) saves its own best (0.3 at
    epoch 4), below the records' best (epoch 1's 0.5). A further resume judges the next evaluation against that
    file, as the run never stopped there does: 0.4 is the new best. It used to be judged against epoch 1's 0.5
    of the records, and the best checkpoint stayed at epoch 4."""
    import re

    scores = [0.5, 0.1, 0.6]
    monkeypatch.setattr(train, "judged_accuracy", lambda *a, **k: {"top_1": scores.pop(0), "top_5": 1.0,
                                                                     "eval_images": 40})
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--eval_interval=1", "--class_num=4", "--batch_size=64",
                    "--save_checkpoint_epochs=1", f"--save_checkpoint_path={out}"]
    train.run(load_config(args + ["--epoch_size=3"]))
    scores[:] = [0.2, 0.3]
    train.run(load_config(args + ["--epoch_size=4", f"--resume={out / ckpt_io.checkpoint_name(2, 3)}"]))
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["epoch"] == 4
    capsys.readouterr()
    scores[:] = [0.4]
    train.run(load_config(args + ["--epoch_size=5", "--resume=auto"]))
    assert re.findall(r"eval: epoch (\d+) .*, best so far", capsys.readouterr().out) == ["5"] and not scores
    assert ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))["metrics"]["top_1"] == 0.4


def test_a_run_resumed_from_the_best_checkpoint_keeps_that_file_before_a_new_best_takes_its_name(
        cifar_dir, tmp_path, capsys, monkeypatch, one_thread):
    """--resume DIR/mobilenetv1-best.ckpt (epoch 1's, top-1 0.5): the run's better evaluation (epoch 3's 0.7) used
    to overwrite the very file it resumed from, mid-run. The file is kept, unchanged, in earlier-run-1 before the
    new best takes its name; the name holds the new best."""
    scores = [0.5, 0.1]
    monkeypatch.setattr(train, "judged_accuracy", lambda *a, **k: {"top_1": scores.pop(0), "top_5": 1.0,
                                                                     "eval_images": 40})
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--eval_interval=1", "--class_num=4", "--batch_size=64",
                    "--save_checkpoint_epochs=1", f"--save_checkpoint_path={out}"]
    train.run(load_config(args + ["--epoch_size=2"]))
    best = out / ckpt_io.BEST_NAME
    before = best.read_bytes()
    assert ckpt_io.load_file(str(best))["epoch"] == 1
    capsys.readouterr()
    scores[:] = [0.4, 0.7, 0.8]
    train.run(load_config(args + ["--epoch_size=4", f"--resume={best}"]))
    kept = out / "earlier-run-2" / ckpt_io.BEST_NAME  # earlier-run-1: epoch 2's checkpoint, after the resume point
    assert kept.read_bytes() == before and not scores
    assert sorted(os.listdir(kept.parent)) == [ckpt_io.BEST_NAME]
    assert ckpt_io.load_file(str(best))["epoch"] == 4
    said = capsys.readouterr().out
    assert (f"checkpoint: {best}, which this run continues from, is kept as it was in {kept}; the new one takes "
            f"its name\n") in said and said.count("is kept as it was") == 1
    # The run's log.txt, which outlives the terminal, says so too (print0: stdout and the log files).
    assert f"is kept as it was in {kept}" in (out / "log.txt").read_text()


def test_the_run_evaluates_every_eval_interval_epochs_and_after_the_last():
    """eval_interval 2 over 5 epochs: after epochs 2 and 4, and after 5, the last, which no interval reaches;
    eval_interval 0: never."""
    every_two = types.SimpleNamespace(eval_interval=2, epoch_size=5)
    assert [e for e in range(1, 6) if train.evaluates_after(every_two, e)] == [2, 4, 5]
    assert not any(train.evaluates_after(types.SimpleNamespace(eval_interval=0, epoch_size=5), e) for e in range(1, 6))


def test_a_resume_names_another_patience_min_delta_only_where_both_runs_stop_early():
    """patience_min_delta means something only with --patience: another one is named where the
    checkpoint's run and this one both stop early, with the evaluation settings' line apart."""
    def said(was, now):
        ckpt = {"config": dataclasses.asdict(load_config(SMALL + ["--eval_interval=1"] + was))}
        return train.evaluation_change(ckpt, "a.ckpt", load_config(SMALL + ["--eval_interval=1"] + now))

    assert said(["--patience=3", "--patience_min_delta=0.01"], ["--patience=3", "--patience_min_delta=0.02"]) == (
        "resume: a.ckpt was trained with patience_min_delta 0.01; continuing with this run's patience_min_delta 0.02: "
        "its evaluations so far count towards this run's patience")
    assert said(["--patience_min_delta=0"], ["--patience=2", "--patience_min_delta=0.02"]) == (
        "resume: a.ckpt was trained with patience 0; continuing with this run's patience 2: its evaluations so far "
        "count towards this run's patience")
    assert said(["--patience=2", "--patience_min_delta=0.02"], ["--patience=2", "--patience_min_delta=0.02"]) == ""
    never = {"config": dataclasses.asdict(load_config(SMALL + ["--eval_interval=0"]))}  # evaluated nothing to count
    assert train.evaluation_change(never, "a.ckpt", load_config(SMALL + ["--eval_interval=1", "--patience=3"])) == ""
    both = said(["--image_size=32", "--patience=2"], ["--image_size=40", "--patience=4"]).split("\n")
    assert len(both) == 2 and "evaluation image size 32" in both[0] and "patience 2;" in both[1]


def test_compile_mode_reaches_torch_compile_and_needs_compile(cifar_dir, tmp_path, monkeypatch, one_thread):
    """--compile_mode is the mode train hands torch.compile (recorded here in place of compiling, which
    takes minutes on this CPU); without --compile True it is refused, as it would be ignored."""
    modes = []

    def fake_compile(model, **kw):
        modes.append(kw.get("mode"))
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    args = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4", "--compile=True"]
    train.run(load_config(args + [f"--save_checkpoint_path={tmp_path / 'a'}"]))
    train.run(load_config(args + ["--compile_mode=reduce-overhead", f"--save_checkpoint_path={tmp_path / 'b'}"]))
    assert modes == ["default", "reduce-overhead"]
    with pytest.raises(ConfigError, match="option --compile_mode: compile_mode max-autotune is torch.compile's; "
                                          "compile is False"):
        load_config(["--compile_mode=max-autotune"])
    with pytest.raises(ConfigError, match="compile_mode='fast' is not one of"):
        load_config(["--compile=True", "--compile_mode=fast"])


def test_a_rank_waiting_for_the_others_evaluation_holds_off_the_watchdog():
    """Distributed, a rank whose shard is done waits in the all-reduce for ranks still evaluating; a signal
    then must not be taken for a dead peer's silence: the rank holds (not only when it heard a signal)."""
    seen = []

    class Stopper:
        holding = True  # held by an evaluation before (the weight average's is the second)

        def heard(self):
            return False

        def release(self):
            seen.append("released")
            self.holding = False

        def hold(self):
            self.holding = True

    class Dist:
        enabled = True

        def all_reduce_counts(self, counts, device):
            seen.append(stopper.holding)
            return counts

        def check_bad_samples(self, loader):
            pass

    stopper = Stopper()
    model = MobileNetV1(class_num=4, width_mult=0.25)
    batches = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))]
    accuracy = train.evaluate_accuracy(model, batches, torch.device("cpu"), "fp32", Dist(), stopper)
    assert seen == ["released", True] and accuracy["eval_images"] == 2


def test_per_class_figures_and_confusion_matrix_on_a_case_with_a_known_answer(tmp_path, capsys):
    """The model answers 3 for every image: each label's images all land in column 3, class 3 is
    right on its 7 images but only 7 of its 23 predictions, the others are taken for 3."""
    args = known_answer_case(tmp_path)
    res = evaluate_mod.run(load_config(args), confusion=True)
    expected = torch.zeros(10, 10, dtype=torch.long)
    for label, n in KNOWN_LABELS.items():
        expected[label, 3] = n
    assert torch.equal(res["confusion"], expected) and res["classes"] == [str(i) for i in range(10)]
    rows = evaluate_mod.per_class(res["confusion"], res["classes"])
    assert [r["class"] for r in rows] == ["1", "2", "3", "5", "9"]  # the classes with images or predictions
    three = rows[2]
    assert (three["images"], three["top_1"], three["taken_for"]) == (7, 1.0, None)
    assert three["precision"] == pytest.approx(7 / 23)
    assert rows[0] == {"class": "1", "index": 1, "images": 5, "top_1": 0.0, "precision": None,
                       "taken_for": {"class": "3", "images": 5}}

    csv_path = tmp_path / "cm.csv"
    assert evaluate_mod.main(args + ["--per_class", "--json", "--confusion_csv", str(csv_path)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["per_class"] == rows and out["top_1_accuracy"] == pytest.approx(7 / 23)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "label \\ top-1 prediction,0,1,2,3,4,5,6,7,8,9"
    assert [[int(v) for v in line.split(",")[1:]] for line in lines[1:]] == expected.tolist()
    assert evaluate_mod.main(args + ["--per_class"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("result: ") and table[1].startswith("per class, worst top-1 first")
    body = [line.split() for line in table[3:]]
    assert [b[0] for b in body] == ["1", "2", "5", "9", "3"]  # top-1 0 first (by index), then class 3
    assert body[-1] == ["3", "7", "1.0000", "0.3043", "-"] and body[0][-2:] == ["3", "(5)"]
    # A folder that does not exist is made, as every command's output's (it was refused: "is not a folder";
    # helper-329); no file name is refused before anything is evaluated.
    assert evaluate_mod.main(args + ["--confusion_csv", str(tmp_path / "nowhere" / "cm.csv")]) == 0
    assert (tmp_path / "nowhere" / "cm.csv").read_text().splitlines() == lines
    with pytest.raises(ValueError, match=r"--confusion_csv '': needs a file name"):
        evaluate_mod.main(args + ["--confusion_csv="])
    # The seed's 1001-output ImageNet layout: the output no label uses is named as such.
    assert evaluate_mod.class_labels([f"n{i:08d}" for i in range(1000)], 1001)[-1] == "(no class)"


def test_the_confusion_matrix_leaves_out_labels_past_the_outputs_and_matches_the_hits():
    """Batch by batch on the device: its diagonal is the top-1 hits; a label the model has no output
    for (a data set of more classes) counts in the total, not in the matrix."""
    from mobilenet_v1.engine import evaluate

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    batches = [(torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 5])), (torch.randn(3, 6), torch.tensor([3, 3, 1]))]
    res = evaluate(model, batches, torch.device("cpu"), confusion_classes=4)
    first = [int(model(x).argmax(1)[i]) for x, _ in batches for i in range(len(x))]
    expected = torch.zeros(4, 4, dtype=torch.long)
    for label, pred in zip([0, 1, 2, 3, 5, 3, 3, 1], first):
        if label < 4:
            expected[label, pred] += 1
    assert torch.equal(res["confusion"], expected) and res["total"] == 8
    assert int(expected.trace()) == res["top_1_correct"] and int(expected.sum()) == 7
    with pytest.raises(ValueError, match="the model has 4 outputs, not confusion_classes 3"):
        evaluate(model, batches, torch.device("cpu"), confusion_classes=3)



def test_a_confusion_matrix_of_many_classes_is_counted_sparse_with_the_same_figures(monkeypatch):
    """Past DENSE_CONFUSION_CLASSES outputs (ImageNet-21k's 21,841: 477 million cells, 3.8 GB dense, twice that
    summed) each image's pair is kept and counted into a sparse matrix (helper-360): its per-class figures, ties
    of the class an image is taken for included, its CSV and its images without a top-1 are the dense one's."""
    from mobilenet_v1 import engine

    gen = torch.Generator().manual_seed(3)
    c = 6
    x = torch.randint(0, 4, (300, c), generator=gen).float()  # small integers: many ties in the rankings
    x[::37, 2] = float("nan")  # no top-1 for these
    y = torch.randint(0, c + 1, (300,), generator=gen)  # label c: past the outputs, in no cell
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 300, 64)]
    dense = engine.evaluate(torch.nn.Identity(), batches, torch.device("cpu"), confusion_classes=c)
    monkeypatch.setattr(engine, "DENSE_CONFUSION_CLASSES", 2)
    sparse = engine.evaluate(torch.nn.Identity(), batches, torch.device("cpu"), confusion_classes=c)
    assert sparse["confusion"].is_sparse and not dense["confusion"].is_sparse
    assert torch.equal(sparse["confusion"].to_dense(), dense["confusion"]) and int(dense["confusion"].sum()) > 200
    assert torch.equal(sparse["unpredicted"], dense["unpredicted"]) and int(dense["unpredicted"].sum()) > 0
    names = [f"c{i}" for i in range(c)]
    rows = evaluate_mod.per_class(dense["confusion"], names, dense["unpredicted"])
    assert evaluate_mod.per_class(sparse["confusion"], names, sparse["unpredicted"]) == rows and len(rows) == c
    assert (evaluate_mod.confusion_csv(sparse["confusion"], names, sparse["unpredicted"])
            == evaluate_mod.confusion_csv(dense["confusion"], names, dense["unpredicted"]))

def test_evaluations_count_the_images_whose_outputs_are_not_finite(capsys):
    """A row of NaN or infinite logits (NaN weights, fp16 overflow) counts in nonfinite, summed on the
    device like the hits; train's evaluation reports it (absent when none) and says what it means."""
    from mobilenet_v1.engine import evaluate, nonfinite_note

    x = torch.randn(6, 4)
    x[1, 2], x[4, 0] = float("nan"), float("inf")
    batches = [(x[:3], torch.zeros(3, dtype=torch.long)), (x[3:], torch.zeros(3, dtype=torch.long))]
    assert evaluate(torch.nn.Identity(), batches, torch.device("cpu"))["nonfinite"] == 2
    got = train.evaluate_accuracy(torch.nn.Identity(), batches, torch.device("cpu"), "fp32")
    assert got["nonfinite_outputs"] == 2 and got["eval_images"] == 6
    assert "nonfinite_outputs" not in train.evaluate_accuracy(torch.nn.Identity(), [(x[:1], torch.zeros(1).long())],
                                                              torch.device("cpu"), "fp32")
    assert "for 2 of 6 images" in nonfinite_note("m", 2, 6, "fp32") and "damaged" in nonfinite_note("m", 2, 6, "bf16")
    # With a weight average, the average is judged and the trained weights' count kept beside it (and the
    # other way round): neither is lost.
    finite = torch.nn.Module()
    finite.forward = lambda t: torch.nan_to_num(t, nan=0.0, posinf=0.0)
    both = train.judged_accuracy(torch.nn.Identity(), finite, batches, torch.device("cpu"), "fp32")
    assert both["raw_nonfinite_outputs"] == 2 and "nonfinite_outputs" not in both
    both = train.judged_accuracy(finite, torch.nn.Identity(), batches, torch.device("cpu"), "fp32")
    assert both["nonfinite_outputs"] == 2 and "raw_nonfinite_outputs" not in both
    assert "--precision bf16 or fp32" in nonfinite_note("m", 2, 6, "fp16")


def test_the_note_on_outputs_that_are_not_finite_counts_one_image_in_the_singular():
    """An evaluation of one image said "for 1 of 1 images"."""
    from mobilenet_v1.engine import nonfinite_note

    assert "(NaN or infinite) for 1 of 1 image, whose hits" in nonfinite_note("m", 1, 1, "fp32")
    assert "(NaN or infinite) for 1 of 2 images, whose hits" in nonfinite_note("m", 1, 2, "fp32")


def test_tied_outputs_rank_the_lower_class_first_in_every_path(tmp_path, capsys):
    """A model whose 100 outputs all tie (an INT8 file's outputs take few levels and tie often): eval's counts,
    its per-class and per-image figures, predict's top-k whatever k, and quantize's agreement all rank the lower
    class first. topk ranked ties as its kernel happened to: on the CPU, class 65 first with k 5 (eval's, whose
    top-1 then disagreed with predict --top_k 1's class 0 and quantize's argmax)."""
    import csv
    from PIL import Image
    from mobilenet_v1.predict import load_predictor
    from mobilenet_v1.quantize import compare_top1

    model = MobileNetV1(class_num=100, width_mult=0.25).eval()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    path = tmp_path / "tied.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict()}, str(path))
    labels = np.array([0] * 3 + [65] * 4 + [3] * 2 + [70])
    data = tmp_path / "d" / CIFAR100_FOLDER
    data.mkdir(parents=True)
    for name in ("train.bin", "test.bin"):
        write_cifar_bin(str(data / name), class_images(labels, 1), labels, coarse=np.zeros(10, np.int64))
    args = ["eval", *SMALL, "--dataset=cifar100", f"--dataset_path={tmp_path / 'd'}", f"--checkpoint_path={path}"]
    assert cli.main(args + ["--per_class", "--json", f"--per_image={tmp_path / 'i.csv'}"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["top_1_accuracy"], got["top_5_accuracy"]) == (0.3, 0.5)  # class 0 first; classes 0-4 the top 5
    assert sum(round(r["images"] * r["top_1"]) for r in got["per_class"]) == 3
    with open(tmp_path / "i.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["top1"] for r in rows} == {"0"} and sum(int(r["correct"]) for r in rows) == 3
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (90, 140, 30)).save(image)
    predictor = load_predictor(str(path))
    for k in (1, 5):
        assert [t["index"] for t in predictor.top_k([str(image)], k)[0]["top_k"]] == list(range(k))
    batches = [(torch.zeros(10, 3, 32, 32), torch.from_numpy(labels))]
    assert compare_top1(model, model, batches) == {"images": 10, "reference_top1": 0.3, "candidate_top1": 0.3,
                                                   "agreement": 1.0}


def test_an_image_whose_outputs_are_not_finite_is_a_miss_in_every_count():
    """NaN outputs rank no class: topk ranked NaN first, so an all-NaN row's top 5 were classes 8, 6, 7, 5, 9 (on
    the CPU) and half of a 10-class data set's images counted as top-5 hits. Such an image is a miss in eval's
    counts, has no top-1 (-1) in its per-image row, is in no cell of the confusion matrix but counted among its
    class's images (--per_class left it out, its class's top-1 too high; the CSV's rows add up to the images with
    a column of them), and neither a hit nor an agreement in quantize's comparison."""
    from mobilenet_v1.engine import evaluate
    from mobilenet_v1.quantize import compare_top1

    x = torch.full((4, 10), float("nan"))
    x[1] = torch.arange(10.0)
    x[1, 9] = float("nan")  # one NaN among numbers: its class 8 would be first after the NaN
    y = torch.tensor([8, 8, 0, 5])
    res = evaluate(torch.nn.Identity(), [(x, y)], torch.device("cpu"), confusion_classes=10, per_sample=True)
    assert (res["top_1_correct"], res["top_5_correct"], res["nonfinite"], res["total"]) == (0, 0, 4, 4)
    assert res["samples"]["top1"].tolist() == [-1] * 4 and int(res["confusion"].sum()) == 0
    assert res["unpredicted"].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 2, 0]
    from mobilenet_v1 import evaluate as evaluate_module

    names = [f"c{i}" for i in range(10)]
    rows = {r["class"]: r for r in evaluate_module.per_class(res["confusion"], names, res["unpredicted"])}
    assert (rows["c8"]["images"], rows["c8"]["top_1"], rows["c0"]["images"]) == (2, 0.0, 1)
    table = evaluate_module.confusion_csv(res["confusion"], names, res["unpredicted"]).splitlines()
    assert table[0].endswith(",(outputs not finite)") and table[9] == "c8,0,0,0,0,0,0,0,0,0,0,2"
    finite = evaluate(torch.nn.Identity(), [(torch.eye(10)[:2], torch.tensor([0, 1]))], torch.device("cpu"),
                      confusion_classes=10)
    assert "(outputs not finite)" not in evaluate_module.confusion_csv(finite["confusion"], names,
                                                                       finite["unpredicted"])
    assert compare_top1(torch.nn.Identity(), torch.nn.Identity(), [(x, y)]) == {
        "images": 4, "reference_top1": 0.0, "candidate_top1": 0.0, "agreement": 0.0}


def test_eval_per_image_names_each_evaluated_image_with_its_label_and_prediction(tmp_path, capsys):
    """--per_image F.csv over a folder with an unreadable file, through both pipelines: a row per image that
    was evaluated, in the split's order, with the probabilities predict gives that file and the counts
    eval gives; with eval_drop_last, the dropped images' rows are left out too."""
    import csv

    from mobilenet_v1.predict import load_predictor

    torch.manual_seed(5)
    model = MobileNetV1(class_num=2, width_mult=0.25)
    with torch.no_grad():  # BatchNorm's statistics of such images, so that each image gets its own figures
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
        model.train()(torch.stack([torch.from_numpy(smooth_image(32, 32, 100 + i)).permute(2, 0, 1).float() / 255
                                   for i in range(16)]).sub(0.45).div(0.25))
        model.fc.weight.normal_(0, 1)
    path = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["ant", "bee"],
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    folder = tmp_path / "data" / "validation_preprocess"
    files = []
    for c, name in enumerate(("ant", "bee")):
        (folder / name).mkdir(parents=True)
        for i in range(5):
            f = folder / name / f"{i}{chr(13) if i == 4 else ''}.jpg"  # a carriage return in a name: one field still
            f.write_bytes(jpeg_bytes(smooth_image(40 + 8 * i, 56, 10 * c + i)))
            files.append((str(f), c))
    (folder / "bee" / "2b.jpg").write_bytes(b"not a jpeg")  # unreadable, between bee/2 and bee/3
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={tmp_path / 'data'}", f"--checkpoint_path={path}",
            "--num_workers=0", "--batch_size=4", "--json", "--max_bad_samples=5"]
    predictor = load_predictor(path)
    rows = {}
    for pipeline in ("cpu", "gpu"):
        out = tmp_path / f"{pipeline}.csv"
        with pytest.warns(BadSampleWarning, match=r"bee/2b\.jpg"):  # skipped, and said
            assert cli.main(base + [f"--data_pipeline={pipeline}", "--per_image", str(out)]) == 0
        counted = json.loads(capsys.readouterr().out)
        with open(out, newline="", encoding="utf-8") as f:
            rows[pipeline] = list(csv.DictReader(f))
        got = rows[pipeline]
        assert [(r["image"], int(r["label"])) for r in got] == files and counted["total"] == 10
        assert {r["label_name"] for r in got} == {"ant", "bee"}
        assert sum(int(r["correct"]) for r in got) / 10 == counted["top_1_accuracy"]
        assert all(int(r["correct"]) == (r["top1"] == r["label"]) for r in got)
        assert all(r["top1_name"] == ("ant", "bee")[int(r["top1"])] for r in got)
        assert {r["model"] for r in got} == {path}  # the file that predicted, as --json's ckpt: two models' rows apart
        for r in got:  # two classes: the label's probability is the top-1's, or what it leaves
            p1, pl = float(r["top1_probability"]), float(r["label_probability"])
            assert p1 >= 0.5 and pl == pytest.approx(p1 if r["correct"] == "1" else 1 - p1, abs=2e-6), r
    probabilities = [float(r["top1_probability"]) for r in rows["cpu"]]
    assert len({round(p, 6) for p in probabilities}) > 5  # rows told apart by their figures
    assert {r["correct"] for r in rows["cpu"]} == {"0", "1"}  # right and wrong rows both checked above
    for row in rows["cpu"]:  # each row is its own file's: predict's probability for that file
        top = predictor.top_k([row["image"]], 1)[0]["top_k"][0]
        assert (top["index"], top["probability"]) == (int(row["top1"]), pytest.approx(float(row["top1_probability"]),
                                                                                      abs=2e-4)), row["image"]
    for a, b in zip(rows["cpu"], rows["gpu"]):  # the two pipelines within rounding
        assert abs(float(a["label_probability"]) - float(b["label_probability"])) < 0.02, (a, b)
    # eval_drop_last: batches of 4 positions (11 files), the last partial one (bee/2b, bee/3, bee/4) dropped.
    out = tmp_path / "dropped.csv"
    assert cli.main(base + ["--eval_drop_last=True", "--per_image", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 8
    with open(out, newline="", encoding="utf-8") as f:
        assert [r["image"] for r in csv.DictReader(f)] == [name for name, _ in files[:8]]
    for extra, said in ((["--per_image", str(tmp_path / "x.txt")], "--per_image"),
                        (["--per_image", str(tmp_path / "same.csv"), "--confusion_csv", str(tmp_path / "same.csv")],
                         "name the same file"),
                        (["--per_image", str(tmp_path / "y.csv"), "--image_size=32,48"], "--per_image are figures of "
                                                                                           "one image size")):
        assert cli.main(base + extra) == 1
        assert said in capsys.readouterr().err, extra


def test_outputs_past_the_class_folders_are_not_named_as_a_class_folder_named_by_a_number(tmp_path, capsys):
    """A run on folders 001, 10, 9 with class_num 11: outputs 3 to 10 are no class, and were named by their
    index, so output 9 was "9" as the folder 9 (output 2) is: the confusion CSV had two columns "9" (csv's
    DictReader took the second), and images taken for output 9 were "most often taken for 9", the class."""
    import csv

    model = MobileNetV1(class_num=11, width_mult=0.25).eval()
    with torch.no_grad():  # every image's top-1 is output 9, which no folder is
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[9] = 5.0
    path = str(tmp_path / "m.ckpt")
    classes = ["001", "10", "9"]
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": classes,
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    folder = tmp_path / "data" / "validation_preprocess"
    for c, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        (folder / name / "0.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, c)))
    matrix, images = tmp_path / "cm.csv", tmp_path / "images.csv"
    assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={tmp_path / 'data'}",
                     f"--checkpoint_path={path}", "--num_workers=0", "--per_class", "--json",
                     f"--confusion_csv={matrix}", f"--per_image={images}"]) == 0
    rows = json.loads(capsys.readouterr().out)["per_class"]
    named = {r["index"]: r["class"] for r in rows}
    assert [named[i] for i in range(3)] == classes and named[9] not in classes
    assert {r["taken_for"]["class"] for r in rows if r["taken_for"]} == {named[9]}
    with open(matrix, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    header = table[0][1:]
    assert len(header) == 11 and len(set(header)) == 11 and header[:3] == classes
    assert [r[0] for r in table[1:]] == header and [int(r[1 + 2]) for r in table[1:4]] == [0, 0, 0]
    with open(images, newline="", encoding="utf-8") as f:
        assert {(r["top1"], r["top1_name"]) for r in csv.DictReader(f)} == {("9", named[9])}


def test_csv_text_quotes_what_it_must_and_reads_back_whole():
    """runtime.csv_text: what the csv module writes for ordinary rows, byte for byte; a field with a carriage
    return quoted too; every field read back as written."""
    import csv
    import io

    from mobilenet_v1.runtime import csv_text

    ordinary = [["a,b", 'say "x"', "two\nlines", None, 3, 0.5, "", " pad "], ["plain"], [""], [None, None]]
    written = io.StringIO()
    csv.writer(written, lineterminator="\n").writerows(ordinary)
    assert csv_text(ordinary) == written.getvalue()
    odd = [["cr\rname", "crlf\r\n", 'q"\r', "\udcff\udc80"]]
    assert list(csv.reader(io.StringIO(csv_text(ordinary + odd), newline=""))) == \
        [["" if v is None else str(v) for v in row] for row in ordinary + odd]


def test_json_text_writes_each_float_that_is_not_finite_as_null():
    """runtime.json_text: JSON has no NaN or Infinity; a skipped step's loss (an fp16 overflow's inf), NaN
    probabilities, in dicts, lists and tuples, are null, which strict readers take (Python's tokens they refuse)."""
    from mobilenet_v1.runtime import json_text

    value = {"loss": float("inf"), "top": [(0.5, float("nan")), (float("-inf"), 2)], "name": "NaN", "ok": 1e308}
    assert json_text(value) == '{"loss": null, "top": [[0.5, null], [null, 2]], "name": "NaN", "ok": 1e+308}'


def test_eval_of_an_image_folder_uses_the_class_list_the_model_was_trained_on(tmp_path):
    """An evaluation folder holding some of the training classes keeps their training labels: the
    model below always answers "cat", the third of its classes, and the folder holds only cats. A folder
    of a class the model never saw is an error naming it."""
    model = MobileNetV1(class_num=3, width_mult=0.25)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([0.0, 1.0, 5.0]))
    path = tmp_path / "cats.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["ant", "bee", "cat"]}, str(path))
    folder = tmp_path / "data" / "validation_preprocess"
    (folder / "cat").mkdir(parents=True)
    for i in range(4):
        (folder / "cat" / f"{i}.png").write_bytes(jpeg_bytes(smooth_image(40, 40, i), fmt="PNG"))
    args = SMALL + ["--dataset=imagenet2012", f"--dataset_path={tmp_path / 'data'}", f"--checkpoint_path={path}"]
    res = evaluate_mod.run(load_config(args), confusion=True)
    assert res["total"] == 4 and res["top_1_accuracy"] == 1.0  # labelled 2, not 0 (its place in the folder)
    assert res["classes"] == ["ant", "bee", "cat"] and res["confusion"].tolist() == [[0] * 3, [0] * 3, [0, 0, 4]]
    (folder / "dog").mkdir()
    (folder / "dog" / "0.png").write_bytes(jpeg_bytes(smooth_image(40, 40, 9), fmt="PNG"))
    with pytest.raises(DataError, match=r"class folder\(s\) dog are not among the 3 classes"):
        evaluate_mod.run(load_config(args))


def test_eval_takes_the_image_size_the_checkpoint_was_trained_at_unless_told(tmp_path, capsys, monkeypatch):
    """The demo model (trained at 64) scored 16% under eval's default 224 without a word; the ONNX path
    already refused. A size left at its default becomes the trained one; a size asked for is kept."""
    from mobilenet_v1 import cli

    model = MobileNetV1(class_num=10, width_mult=0.25)
    path = tmp_path / "m.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"image_size": 40}}, str(path))
    data = tmp_path / "d" / CIFAR_EVAL_FOLDER
    data.mkdir(parents=True)
    write_cifar_bin(str(data / "test_batch.bin"), np.zeros((3, 3, 32, 32), np.uint8), np.zeros(3, np.int64))
    sizes = []
    real = evaluate_mod.build_loader
    monkeypatch.setattr(evaluate_mod, "build_loader", lambda opts, **kw: sizes.append(opts.image_size) or real(opts, **kw))
    base = ["eval", f"--dataset_path={tmp_path / 'd'}", f"--checkpoint_path={path}", "--device_target=CPU"]
    assert cli.main(base) == 0
    err = capsys.readouterr().err
    assert "image_size 40: the size" in err and "not used here" not in err
    assert cli.main(base + ["--image_size=48"]) == 0
    assert f"note: image_size 40 is the size {path} was trained at; evaluating at 48 as asked" \
        in capsys.readouterr().err
    assert sizes == [40, 48]
    # Options evaluation ignores are named (a config file shared with training may hold them silently).
    assert cli.main(base + ["--lr_max=0.3", "--width_mult=0.5", "--seed=3", "--epoch_size=2"]) == 0
    err = capsys.readouterr().err
    assert "eval: not used here: --lr_max, --seed, --epoch_size (training's or export's)" in err
    assert f"note: --width_mult 0.5 given; {path} has width_mult 0.25, which eval uses" in err
    # An ONNX file fixes its precision, layout, device and weights too; a checkpoint takes those options.
    assert evaluate_mod.unused_options_note(["--precision=bf16", "--use_ema=False", "--dataset_path=d"]) == ""
    assert evaluate_mod.unused_options_note(["--precision=bf16", "--use_ema=False", "--device_num=2"], onnx=True) == (
        "eval: not used here: --precision, --use_ema (an ONNX, .pte, .pt2 or .tflite file runs on the CPU, as "
        "exported or quantized); "
        "--device_num (training's or export's)")


def test_eval_says_the_files_class_num_width_and_padding_over_those_given(tmp_path, capsys):
    """eval --class_num 7 (--width_mult 0.5, --padding symmetric) on a checkpoint of other values ran the file's
    network under a note that named the option alone, and named it as much where it agreed with the file: now
    one given on the command line that differs is named beside the file's value, in one line; one that agrees,
    or one a config file gives (the seed's carry class_num), is not named."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    path = tmp_path / "m.ckpt"
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "model": model.state_dict(),
                         "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "same"},
                         "config": {"dataset": "cifar10", "image_size": 32}}, str(path))
    data = tmp_path / "d" / CIFAR_EVAL_FOLDER
    data.mkdir(parents=True)
    write_cifar_bin(str(data / "test_batch.bin"), np.zeros((4, 3, 32, 32), np.uint8), np.arange(4))
    base = ["eval", f"--dataset_path={tmp_path / 'd'}", f"--checkpoint_path={path}", "--device_target=CPU"]

    def said(*extra):
        assert cli.main(base + list(extra)) == 0
        return [line for line in capsys.readouterr().err.splitlines() if "given" in line or "not used" in line]

    assert said("--class_num", "7") == [f"note: --class_num 7 given; {path} has 4 classes, which eval uses"]
    assert said("--width_mult=0.5", "--padding=symmetric", "--class_num=4") == [
        f"note: --width_mult 0.5, --padding symmetric given; {path} has width_mult 0.25 and padding same, which eval "
        f"uses"]
    assert said("--class_num=4", "--width_mult=0.25", "--padding=same") == []
    config = tmp_path / "shared.yaml"
    config.write_text("class_num: 7\nwidth_mult: 0.5\n")
    assert said(f"--config_path={config}") == []
    # An exported file that records neither (a graph of another toolkit's): its own network, said so.
    typed = Given({"width_mult": "option --width_mult", "class_num": "option --class_num"})
    note = evaluate_mod.model_options_note(load_config(["--width_mult=0.5", "--class_num=4"]), typed,
                                           {"class_num": 4, "width_mult": None, "padding": None}, "m.onnx")
    assert note == "note: --width_mult 0.5 given; m.onnx records no width_mult: its own network is what eval runs"


def test_pre_trained_with_another_head_is_fine_tuned(cifar_dir, tmp_path, capsys):
    src = MobileNetV1(class_num=1001, width_mult=0.25, padding="symmetric")
    path = tmp_path / "imagenet.ckpt"
    ckpt_io.atomic_save({"model": src.state_dict(), "model_args": {"padding": "symmetric"}}, str(path))
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4",
                               f"--pre_trained={path}", f"--save_checkpoint_path={tmp_path / 'ft'}"])
    train.run(cfg)
    out = capsys.readouterr().out
    assert "left out fc.weight, fc.bias" in out
    # Its padding is not this run's: said, with the option that keeps to it.
    assert (f"pre_trained: note: {path} was trained with padding symmetric, this run pads same (--padding "
            f"symmetric keeps to its)") in out
    tuned = load_model(str(tmp_path / "ft" / "mobilenetv1-1_12.ckpt"))
    assert tuned.fc.out_features == 4
    # A file of another width: named by its width (not by every layer's shape), before anything is trained.
    wide = tmp_path / "wide.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.5).state_dict(),
                         "model_args": {"width_mult": 0.5}}, str(wide))
    with pytest.raises(ckpt_io.CheckpointError, match=f"pre_trained {wide}: a MobileNetV1 of width_mult 0.5, this "
                                                      r"run's is 0.25 \(--width_mult 0.5 fine-tunes it"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4",
                                       f"--pre_trained={wide}", f"--save_checkpoint_path={tmp_path / 'w' / 'run'}"]))
    assert not (tmp_path / "w" / "run").exists()  # no empty run folder is left behind (its parent, made too, is)
    # A width recorded as another number whose channels round alike (convert's, for a MindSpore file) fits.
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(),
                         "model_args": {"width_mult": 0.251}}, str(wide))
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4",
                                   f"--pre_trained={wide}", f"--save_checkpoint_path={tmp_path / 'w2'}"]))
    assert f"pre_trained: loaded {wide}" in capsys.readouterr().out
    # A one-epoch trial of a configuration with a warm-up epoch warms up throughout, as the seed does
    # (it used to stop with an error), and says so.
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--warmup_epochs=1",
                               "--lr_init=0.01", "--class_num=4", f"--save_checkpoint_path={tmp_path / 'warm'}"])
    train.run(cfg)
    last = 0.01 + (0.05 - 0.01) * 11 / 12
    assert (f"warmup_epochs 1 >= epoch_size 1: every step is a warm-up step (the rate climbs from 0.01 to "
            f"{float(np.float32(last)):.6g}, short of lr_max 0.05)") in capsys.readouterr().out
    groups = ckpt_io.load_file(str(tmp_path / "warm" / "mobilenetv1-1_12.ckpt"))["optimizer"]["param_groups"]
    assert groups[0]["lr"] == pytest.approx(last)


def three_class_photos(data, per_class: int):
    """A flat folder of class folders ant, bee, cat, each with ``per_class`` small JPEGs."""
    for c, name in enumerate(("ant", "bee", "cat")):
        (data / name).mkdir(parents=True)
        for i in range(per_class):
            (data / name / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(36, 44, 10 * c + i)))
    return data


def test_a_class_folder_whose_name_is_not_utf8_trains_and_keeps_its_bytes(tmp_path, capsys):
    """A class folder named in Latin-1 (caf\\xe9, from an old archive): training stopped before its first step on
    "'utf-8' codec can't encode character '\\udce9'" (the digest of the class names that the processes of a job
    compare); the run records the name as the folder has it, eval's confusion CSV holds its bytes, and eval's
    per-class table, info and predict print it escaped (a UTF-8 stdout refused it: each ended in an error)."""
    data = tmp_path / "photos"
    latin = os.path.join(os.fsencode(data), b"caf\xe9")
    os.makedirs(latin)
    (data / "tea").mkdir()
    for i in range(2):
        for folder in (latin, os.fsencode(data / "tea")):
            with open(os.path.join(folder, f"{i}.jpg".encode()), "wb") as f:
                f.write(jpeg_bytes(smooth_image(36, 44, i)))
    run_dir = tmp_path / "run"
    train.run(load_config(SMALL + ["--dataset=imagenet2012", f"--dataset_path={data}", "--class_num=2",
                                   "--batch_size=4", "--epoch_size=1", f"--save_checkpoint_path={run_dir}"]))
    capsys.readouterr()
    ckpt = ckpt_io.load_file(str(run_dir / "mobilenetv1-1_1.ckpt"))
    assert ckpt["classes"] == [os.fsdecode(b"caf\xe9"), "tea"]
    matrix = tmp_path / "cm.csv"
    assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={data}", f"--checkpoint_path={run_dir}",
                     "--num_workers=0", f"--confusion_csv={matrix}"]) == 0
    assert matrix.read_bytes().splitlines()[0] == b"label \\ top-1 prediction,caf\xe9,tea"
    # Printed, the name has its byte escaped, as predict prints a file's: a UTF-8 stdout (strict, as capsys's is)
    # refused the per-class table and info's description, which were lost to the error.
    capsys.readouterr()
    assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={data}", f"--checkpoint_path={run_dir}",
                     "--num_workers=0", "--per_class"]) == 0
    assert "\ncaf\\xe9 " in capsys.readouterr().out
    assert cli.main(["info", str(run_dir)]) == 0
    assert "caf\\xe9, tea" in capsys.readouterr().out
    assert cli.main(["predict", str(data / "tea" / "0.jpg"), "--ckpt_file", str(run_dir), "--top_k", "2"]) == 0
    assert "  caf\\xe9  [0]" in capsys.readouterr().out
    # data-stats names a class 4 or more times another's: it ended in that error too (the printing is escaped
    # for every command now, not in each that was found to print a name).
    for i in range(2, 8):
        (data / "tea" / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(36, 44, i)))
    assert cli.main(["data-stats", "--dataset=imagenet2012", f"--dataset_path={data}", "--image_size=32"]) == 0
    assert "caf\\xe9" in capsys.readouterr().out


def test_a_run_of_one_step_an_epoch_says_its_counts_in_the_singular(tmp_path, capsys):
    """6 images at batch_size 4 make one step an epoch: the training line said "1 steps per epoch", and a warm-up
    as long as that one step said its rate "climbs from 0.01 to 0.01"."""
    from mobilenet_v1.runtime import plural

    data = three_class_photos(tmp_path / "photos", 2)
    train.run(load_config(SMALL + [f"--dataset_path={data}", "--dataset=imagenet2012", "--class_num=3",
                                   "--batch_size=4", "--epoch_size=1", "--warmup_epochs=1", "--lr_init=0.01",
                                   "--save_checkpoint=False"]))
    out = capsys.readouterr().out
    assert "training: 6 samples, 1 step per epoch, epoch 1, precision" in out  # was "epochs 1..1"
    assert ("warmup_epochs 1 >= epoch_size 1: every step is a warm-up step (the rate stays at 0.01, short of lr_max "
            "0.05), as in the seed's schedule") in out
    # The helper those lines and the others of a count that can be 1 go through.
    assert [plural(1, "step"), plural(0, "step"), plural(2, "process", "processes"), plural(1, "process", "processes"),
            plural(1251, "image", spec=",")] == ["1 step", "0 steps", "2 processes", "1 process", "1,251 images"]
    ckpt = {"steps_per_epoch": 1, "samples_per_step": 4, "epoch": 1, "step": 1}
    assert train.steps_change(ckpt, "f.ckpt", 2, 2, [0.1, 0.1, 0.1, 0.1], 2).startswith(
        "resume: f.ckpt was written at 1 step per epoch of 4 samples, this run makes 2 of 2:")


def test_pre_trained_of_other_classes_of_the_same_count_is_said(tmp_path, capsys):
    """A classifier of the same class count is kept: where the file names other classes (or these in
    another order), its outputs now stand for this data set's, which a note says; the same names, none."""
    data = three_class_photos(tmp_path / "photos", 4)
    path = tmp_path / "other.ckpt"
    for named, said in ((["dog", "eel", "fox"], "the classes dog, eel, fox, this data set's are ant, bee, cat"),
                        (["bee", "ant", "cat"], "this data set's classes in another order (bee, ant, cat)"),
                        (["ant", "bee", "cat"], None)):
        ckpt_io.atomic_save({"model": MobileNetV1(class_num=3, width_mult=0.25).state_dict(), "classes": named,
                             "model_args": {"class_num": 3, "width_mult": 0.25}}, str(path))
        train.run(load_config(SMALL + [f"--dataset_path={data}", "--dataset=imagenet2012", "--class_num=3",
                                       "--batch_size=4", "--epoch_size=1", f"--pre_trained={path}",
                                       f"--save_checkpoint_path={tmp_path / 'ft'}"]))
        out = capsys.readouterr().out
        note = (f"pre_trained: note: {path} was trained on {said}: its classifier is kept (the same count), its "
                f"output k now trained as this data set's k-th class")
        assert (note in out) if said else ("pre_trained: note:" not in out), out


def test_own_folder_with_val_split_trains_on_the_rest_and_eval_takes_the_held_out_share(tmp_path, capsys):
    """A flat folder of class folders: --val_split holds out round(share x n) of each class (here 2 of
    6), evaluation during training reads those, training the others; eval of the run (its checkpoint,
    and an ONNX file exported from it), told nothing, takes the run's val_split (else it would count the
    training images), but not for another folder; --val_split 0 counts all; a resume must keep the
    share; INT8 calibration leaves the held-out images out."""
    from mobilenet_v1 import cli

    data = three_class_photos(tmp_path / "photos", 6)
    run_dir = tmp_path / "run"
    args = SMALL + ["--dataset=imagenet2012", f"--dataset_path={data}", "--batch_size=4", "--epoch_size=1",
                    "--eval_interval=1", f"--save_checkpoint_path={run_dir}"]
    with pytest.raises(ConfigError, match=rf"class_num 2 is too small for dataset_path {data}: it has 3 class "
                                          rf"folders; pass --class_num 3"):
        train.run(load_config(args + ["--class_num=2"]))
    assert not run_dir.exists()  # refused before anything was written
    # ImageNet's preset rate, at a batch of 4, diverged at chance without a word.
    train.run(load_config([a for a in args if a != "--lr_max=0.05"] + ["--class_num=3", "--save_checkpoint=False"]))
    assert ("note: lr_max 0.8 is the seed's ImageNet rate, for a global batch of 1,024 (its GPU file: 4 x 256); this "
            "run's is 4: --lr_base_size 1024 scales the rates to it (lr_max 0.00313), or give --lr_max") \
        in capsys.readouterr().out
    train.run(load_config(args + ["--val_split=0.34"]))  # class_num 1001 from the imagenet2012 preset
    out = capsys.readouterr().out
    assert "\nnote: class_num 1001: dataset_path" in out and "(--class_num 3 fits it)" in out
    assert "training: 12 samples, 3 steps per epoch" in out and "(6 images)" in out
    assert "evaluation reads the training images" not in out and "the seed's ImageNet rate" not in out
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={data}", f"--checkpoint_path={run_dir}",
            "--device_target=CPU", "--num_workers=0", "--json"]
    assert cli.main(base) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["total"] == 6
    assert "val_split 0.34: evaluating on the share of each class" in captured.err
    assert cli.main(base + ["--val_split=0"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["total"] == 18
    said = (f"note: val_split {{}}: {run_dir / 'mobilenetv1-1_3.ckpt'}'s run held out val_split 0.34 of each class of "
            f"{data} and trained on the rest, so {{}} (--val_split 0.34: the held-out images alone)")
    assert said.format(0, "every image is evaluated, those it trained on included, which raise its figures") \
        in captured.err
    # Another share: the shares nest, so a larger one holds training images, a smaller one is part of the held-out.
    for share, total, what in (("0.5", 9, "this split holds images it trained on too, which raise its figures"),
                               ("0.2", 3, "this split is a part of the images it held out")):
        assert cli.main(base + [f"--val_split={share}"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out.splitlines()[-1])["total"] == total and said.format(share, what) in captured.err
    onnx = tmp_path / "own.onnx"
    assert cli.main(["export", "--ckpt_file", str(run_dir), "--file_name", str(onnx)]) == 0
    capsys.readouterr()
    # info of the file says what its run held out, as of its checkpoint: eval of that folder takes it (helper-261).
    for described in (str(run_dir), str(onnx)):
        assert cli.main(["info", described]) == 0
        assert re.search(rf"^  held out: +val_split 0\.34 of each class of {re.escape(os.path.realpath(data))}: its "
                         rf"run's evaluation images", capsys.readouterr().out, re.M), described
    onnx_args = [a if not a.startswith("--checkpoint_path") else f"--checkpoint_path={onnx}" for a in base]
    assert cli.main(onnx_args + ["--image_size=32"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["total"] == 6 and "val_split 0.34: evaluating" in captured.err
    int8 = tmp_path / "own_int8.onnx"
    assert cli.main(["quantize", "--onnx", str(onnx), "--calib_data", str(data), "--calib_images", "18",
                     "--out", str(int8), "--num_workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "(val_split 0.34) is left out" in captured.err and "from 12 training images" in captured.out
    copy = tmp_path / "copy"  # another folder: evaluated whole, with a word
    shutil.copytree(data, copy)
    assert cli.main([a.replace(str(data), str(copy)) for a in base]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["total"] == 18 and "so none is held out of" in captured.err
    # Resuming without the share would train on the images held out so far: refused, naming it.
    with pytest.raises(ckpt_io.CheckpointError, match=r"held out val_split 0\.34 of each class .* this run 0: "
                                                      r"pass --val_split 0\.34"):
        train.run(load_config(args + ["--epoch_size=2", f"--resume={run_dir / 'mobilenetv1-1_3.ckpt'}"]))
    # Fine-tuned from it with a larger share held out: that share holds images it trained on, said.
    start = str(run_dir / "mobilenetv1-1_3.ckpt")
    train.run(load_config(args + ["--val_split=0.5", f"--pre_trained={start}",
                                  f"--save_checkpoint_path={tmp_path / 'tuned'}"]))
    assert (f"pre_trained: note: {start} trained on this folder's images but the val_split 0.34 its run held out; this "
            f"run's evaluation share, val_split 0.5, can hold images it trained on (in classes large enough to hold "
            f"out more), and its top-1 then reads high (--val_split 0.34 or less evaluates on images it never "
            f"saw)\n") in capsys.readouterr().out
    source = ckpt_io.load_file(start)
    for share, said in ((0.34, False), (0.2, False), (0.5, True)):
        cfg = load_config(args + [f"--val_split={share}"])
        assert bool(train.seen_evaluation_images(source, "s.ckpt", cfg)) == said, share
    whole = {"config": {**source["config"], "val_split": 0.0}}  # it trained on every image
    assert train.seen_evaluation_images(whole, "w.ckpt", load_config(args + ["--val_split=0.1"])).endswith(
        "w.ckpt trained on this folder's images (its run held none out); this run's evaluation share, val_split 0.1, "
        "can hold images it trained on (in classes large enough to hold out more), and its top-1 then reads high "
        "(evaluate on images it never saw: an evaluation folder of their own)")
    assert not train.seen_evaluation_images(whole, "w.ckpt", load_config(
        [a.replace(str(data), str(copy)) for a in args] + ["--val_split=0.1"]))  # another folder
    # Its run given the folder relatively, this one from elsewhere by another spelling: the same (helper-296).
    relative = {"config": {**whole["config"], "dataset_path": os.path.relpath(data, tmp_path)},
                ckpt_io.DATASET_FOLDER: str(data)}
    (tmp_path / "away").mkdir()
    here = os.getcwd()
    os.chdir(tmp_path / "away")
    try:
        assert train.seen_evaluation_images(relative, "w.ckpt", load_config(
            [a.replace(str(data), os.path.join("..", os.path.relpath(data, tmp_path))) for a in args]
            + ["--val_split=0.1"]))
    finally:
        os.chdir(here)
    train.run(load_config(args + ["--class_num=3"]))  # without a split: said, not silent
    assert "has no evaluation folder, so evaluation reads the training images" in capsys.readouterr().out
    # ... and by eval of that run on that folder (any share of it: every image trained), but not of a copy.
    whole_said = (f"note: {run_dir / 'mobilenetv1-1_4.ckpt'}'s run trained on every image of {{}} (it held none "
                  f"out: train --val_split holds a share of each class out to evaluate on), so this evaluation counts "
                  f"images it trained on, which raise its figures")
    for extra in ([], ["--val_split=0.5"]):
        assert cli.main(base + extra) == 0
        assert whole_said.format(data) in capsys.readouterr().err
    assert cli.main([a.replace(str(data), str(copy)) for a in base]) == 0
    assert "trained on every image" not in capsys.readouterr().err
    # A run given the folder by a relative path, evaluated from another folder by another spelling of it: the same
    # folder, said (helper-294: eval resolved the recorded relative path from its own folder, and said nothing).
    relative = ckpt_io.load_file(str(run_dir / "mobilenetv1-1_4.ckpt"))
    assert relative[ckpt_io.DATASET_FOLDER] == str(data)
    relative["config"]["dataset_path"] = os.path.relpath(data, tmp_path)  # as if given so in tmp_path
    ckpt_io.atomic_save(relative, str(tmp_path / "relative.ckpt"))
    (tmp_path / "elsewhere").mkdir()
    here = os.getcwd()
    os.chdir(tmp_path / "elsewhere")
    try:
        assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={os.path.join('..', 'photos')}",
                         f"--checkpoint_path={tmp_path / 'relative.ckpt'}", "--device_target=CPU",
                         "--num_workers=0"]) == 0
    finally:
        os.chdir(here)
    assert "run trained on every image of ../photos" in capsys.readouterr().err


def test_a_run_trained_smaller_evaluates_and_records_its_eval_image_size(tmp_path, capsys, monkeypatch):
    """eval_image_size (torchvision's --val-crop-size): a run trains on 32x32 crops and its evaluations take
    40x40 images; the checkpoint records both, and eval, export, predict, info and recalibrate-bn take 40 by
    default (an eval --image_size, or a config file's image_size without eval_image_size, another); its
    best checkpoint's top-1 is the one eval measures at 40."""
    from mobilenet_v1.onnx_io import OnnxModel
    from mobilenet_v1.predict import load_predictor

    data = three_class_photos(tmp_path / "photos", 4)
    run_dir = tmp_path / "run"
    args = SMALL + ["--dataset=imagenet2012", f"--dataset_path={data}", "--class_num=3", "--batch_size=4",
                    "--epoch_size=1", "--eval_interval=1", "--val_split=0.25", f"--save_checkpoint_path={run_dir}"]
    with pytest.raises(ConfigError, match="eval_image_size must be >= 0"):
        load_config(args + ["--eval_image_size=-1"])
    made = []
    real_build = train.build_loader
    monkeypatch.setattr(train, "build_loader", lambda opts, train, **kw: made.append((train, opts.image_size))
                        or real_build(opts, train, **kw))
    train.run(load_config(args + ["--eval_image_size=40"]))
    assert made == [(True, 32), (False, 40)]
    assert "(3 images at image_size 40)" in capsys.readouterr().out
    best = ckpt_io.load_file(str(run_dir / ckpt_io.BEST_NAME))
    assert (best["config"]["image_size"], best["config"]["eval_image_size"]) == (32, 40)
    # info names the share held out, which eval of the folder evaluates again (it said nothing of it).
    assert cli.main(["info", str(run_dir / ckpt_io.BEST_NAME), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["held_out"] == {"val_split": 0.25, "folder": os.path.realpath(data)}
    assert cli.main(["info", str(run_dir / ckpt_io.BEST_NAME)]) == 0
    assert (f"val_split 0.25 of each class of {os.path.realpath(data)}: its run's evaluation images, which eval of "
            f"that folder evaluates again") in capsys.readouterr().out

    sizes = []
    real_eval = evaluate_mod.build_loader
    monkeypatch.setattr(evaluate_mod, "build_loader", lambda opts, **kw: sizes.append(opts.image_size)
                        or real_eval(opts, **kw))
    best_path = run_dir / ckpt_io.BEST_NAME
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={data}", f"--checkpoint_path={best_path}",
            "--device_target=CPU", "--num_workers=0", "--json"]
    assert cli.main(base) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.splitlines()[-1])["top_1_accuracy"] == best["metrics"]["top_1"]
    assert f"image_size 40: the size {best_path} records for evaluation (eval_image_size; trained at 32)" \
        in captured.err
    assert cli.main(base + ["--image_size=32"]) == 0
    assert "evaluating at 32 as asked" in capsys.readouterr().err
    # The run's own configuration file evaluates where the run did; its image_size alone, at that.
    config = run_dir / "config.yaml"
    assert cli.main(base + [f"--config_path={config}"]) == 0
    assert "image_size" not in capsys.readouterr().err  # where the run evaluated: nothing to say
    assert cli.main(base + [f"--config_path={config}", "--image_size=36"]) == 0
    own = tmp_path / "own.yaml"
    own.write_text("dataset: imagenet2012\nimage_size: 32\n")
    assert cli.main(base + [f"--config_path={own}"]) == 0
    assert sizes == [40, 32, 40, 36, 32]
    capsys.readouterr()

    assert cli.main(["export", "--ckpt_file", str(run_dir), "--file_name", str(tmp_path / "m")]) == 0
    assert "as asked" not in capsys.readouterr().err
    exported = OnnxModel(str(tmp_path / "m.onnx"))
    assert exported.image_hw == (40, 40) and exported.metadata["trained_image_size"] == 32
    assert cli.main(["export", "--ckpt_file", str(run_dir), "--file_name", str(tmp_path / "m32"), "--height", "32",
                     "--width", "32"]) == 0
    err = capsys.readouterr().err  # at its training size: its statistics' own, nothing to recalibrate
    assert "records for evaluation (eval_image_size; trained at 32); " in err and "recalibrate-bn" not in err
    assert "trained_image_size" not in OnnxModel(str(tmp_path / "m32.onnx")).metadata
    at32 = [a if not a.startswith("--checkpoint_path") else f"--checkpoint_path={tmp_path / 'm32.onnx'}" for a in base]
    assert cli.main(at32 + [f"--config_path={config}"]) == 1
    assert f"m32.onnx takes 32x32 inputs but eval_image_size is 40 (config file {config}): pass --image_size 32" \
        in capsys.readouterr().err
    # --eval_image_size wins over --image_size: the way out it names is that option (helper-119).
    assert cli.main(at32 + ["--image_size=32", "--eval_image_size=40"]) == 1
    assert "but eval_image_size is 40 (option --eval_image_size): pass --eval_image_size 32" in capsys.readouterr().err
    assert cli.main(at32 + [f"--config_path={config}", "--image_size=32"]) == 0
    capsys.readouterr()
    assert load_predictor(str(run_dir)).image_size == 40
    assert cli.main(["info", str(run_dir), "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert (held["image_size"], held["trained_image_size"], held["macs_image_size"]) == (40, 32, [40, 40])
    assert cli.main(["info", str(run_dir)]) == 0
    assert "image_size 40 (its run's evaluations, eval_image_size; trained at 32)" in capsys.readouterr().out
    # recalibrate-bn measures the statistics at the size the run evaluated at; that is the size from then on.
    out = tmp_path / "bn40.pt"
    assert cli.main(["recalibrate-bn", str(run_dir), "--dataset_path", str(data), "--out", str(out),
                     "--num_workers", "0"]) == 0
    assert "at image_size 40 (trained at 32)" in capsys.readouterr().out
    assert cli.main(["info", str(out), "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert held["image_size"] == 40 and "trained_image_size" not in held
    assert (held["bn_recalibration"]["image_size"], held["bn_recalibration"]["trained_at"]) == (40, 32)
    assert cli.main(["export", "--ckpt_file", str(out), "--file_name", str(tmp_path / "bn32"), "--height", "32",
                     "--width", "32"]) == 0
    assert (f"image_size 40 is the size {out} has its BatchNorm statistics measured at (recalibrate-bn); "
            in capsys.readouterr().err)
    # A resume that evaluates at another size says that the earlier top-1 figures were measured otherwise.
    train.run(load_config(args + ["--eval_image_size=48", "--epoch_size=2", "--resume=auto"]))
    assert ("was evaluated with evaluation image size 40; continuing with this run's evaluation image size 48: the "
            "top-1 of its earlier evaluations") in capsys.readouterr().out


def test_a_recorded_image_size_is_a_positive_whole_number_and_said_by_where_it_comes_from():
    """A hand-edited or foreign record's true, 0 or text under a size's key is no size; eval_image_size is the
    size to run at where it is one, said as the evaluation's only beside a training size it differs from."""
    assert ckpt_io.recorded_image_size({"image_size": True}) is None
    assert ckpt_io.recorded_image_size({"image_size": 0}) is None
    assert ckpt_io.recorded_image_size({"image_size": "32"}) is None
    assert ckpt_io.recorded_image_size({"eval_image_size": True, "image_size": 32}) == 32
    assert ckpt_io.recorded_image_size({"eval_image_size": 40, "image_size": 32}) == 40
    assert ckpt_io.image_size_said({"eval_image_size": 40, "image_size": 32}) == (
        "records for evaluation (eval_image_size; trained at 32)")
    assert ckpt_io.image_size_said({"eval_image_size": 40}) == "was trained at"
    assert ckpt_io.image_size_said({"image_size": 32, "bn_recalibration": {"images": 8}}) == (
        "has its BatchNorm statistics measured at (recalibrate-bn)")
    # Progressive resizing: a checkpoint of its first epochs was not trained at image_size yet (helper-371).
    assert ckpt_io.image_size_said({"image_size": 96, "image_size_start": 48}) == (
        "records as its run's training size (progressive resizing from 48 up)")
    assert ckpt_io.image_size_said({"image_size": 96, "image_size_start": 0}) == "was trained at"


def test_progressive_resizing_sizes_grow_to_image_size_in_steps_of_16_and_then_stay():
    from mobilenet_v1.schedules import training_size

    sizes = [training_size(224, 160, 0.75, e, 20) for e in range(20)]
    assert sizes == [160] * 4 + [176] * 3 + [192] * 4 + [208] * 3 + [224] * 6
    assert [training_size(224, 100, 1.0, e, 5) for e in range(5)] == [100, 128, 160, 192, 224]  # ends at 224
    assert {training_size(64, 32, 0.1, e, 8) for e in range(8)} == {64}  # a ramp of one epoch or less: none
    assert {training_size(224, 0, 0.75, e, 20) for e in range(20)} == {224}
    with pytest.raises(ConfigError, match="image_size_start must be 0 .off. or from 16 up to below image_size 64"):
        load_config(["--image_size=64", "--image_size_start=64"])
    with pytest.raises(ConfigError, match=r"image_size_ramp must be in \(0, 1\]"):
        load_config(["--image_size_start=32", "--image_size_ramp=0"])
    with pytest.raises(ConfigError, match="image_size_ramp 0.5 is progressive resizing's; image_size_start is 0"):
        load_config(["--image_size_ramp=0.5"])
    with pytest.raises(ConfigError, match="image_size_ramp 0.1 of epoch_size 8 is 0.8 epoch.s.: every epoch would"):
        load_config(["--image_size_start=32", "--image_size_ramp=0.1", "--epoch_size=8"])
    # A ramp of exactly one epoch: that epoch is the ramp's last, at image_size, so image_size_start is never used.
    with pytest.raises(ConfigError, match="image_size_ramp 0.125 of epoch_size 8 is 1 epoch.s.: every epoch would"):
        load_config(["--image_size_start=32", "--image_size_ramp=0.125", "--epoch_size=8"])
    assert load_config(["--image_size_start=32", "--image_size_ramp=0.25", "--epoch_size=8"]).image_size_start == 32
    with pytest.raises(ConfigError, match="option --image_size_start: quantization-aware training fine-tunes"):
        load_config(["--image_size_start=32", "--qat=True"])


def test_progressive_resizing_compiles_a_graph_per_size_and_makes_room_for_them(cifar_dir, tmp_path, monkeypatch):
    """Eleven sizes (16 to 176) are more graphs than Dynamo keeps for a function by default (8): past the
    limit the last sizes, the final one among them, would train uncompiled. (The last epoch alone runs.)"""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **options: compiled.append(options) or model)
    # (Dynamo's own patch: pytest's monkeypatch finds no attribute in the config module's __dict__ and undoes
    # by deleting it, which hides the key from every later torch.compile in the process: "does not exist".)
    with torch._dynamo.config.patch(recompile_limit=8):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--image_size=176",
                                       "--image_size_start=16", "--image_size_ramp=1.0", "--epoch_size=12",
                                       "--pretrain_epoch_size=11", "--compile=True", "--save_checkpoint=False"]))
        assert compiled == [{"mode": "default", "dynamic": False}]
        assert torch._dynamo.config.recompile_limit == 11 + 8
    assert torch._dynamo.config.recompile_limit == 8


@pytest.mark.parametrize("data,pipeline,workers", [("cifar", "auto", 0), ("photos", "cpu", 2), ("photos", "gpu", 0)])
def test_progressive_resizing_trains_each_epoch_at_its_size_and_evaluates_at_the_full_one(
        data, pipeline, workers, tmp_path, cifar_dir, capsys, monkeypatch):
    """image_size_start 32 to image_size 64 over 4 epochs: the model is fed 32, 32, 48, 64 in training in
    every pipeline (the CPU one's persistent workers told through the sampler's items) and 64 in its
    evaluations; the run says the sizes."""
    seen = []
    real = MobileNetV1.forward
    monkeypatch.setattr(MobileNetV1, "forward", lambda self, x: seen.append((self.training, x.shape[-1])) or
                        real(self, x))
    root = cifar_dir if data == "cifar" else three_class_photos(tmp_path / "photos", 4)
    dataset = ["--dataset=cifar10", "--class_num=4"] if data == "cifar" else ["--dataset=imagenet2012",
                                                                             "--class_num=3", "--val_split=0.25"]
    args = SMALL + dataset + [f"--dataset_path={root}", "--image_size=64", "--image_size_start=32",
                              "--image_size_ramp=1.0", "--epoch_size=4", "--eval_interval=4",
                              f"--batch_size={32 if data == 'cifar' else 4}",
                              f"--data_pipeline={pipeline}", f"--num_workers={workers}",
                              f"--save_checkpoint_path={tmp_path / 'run'}"]
    train.run(load_config(args))
    out = capsys.readouterr().out
    assert "progressive resizing: training image_size 32 (epochs 1-2), 48 (epoch 3), 64 (epoch 4)" in out
    assert ("note: progressive resizing with CIFAR-10" in out) == (data == "cifar")
    assert [line for line in out.splitlines() if "training at image_size" in line] == [
        f"epoch {e}: training at image_size {size}" for e, size in ((1, 32), (3, 48), (4, 64))]
    trained = [size for training, size in seen if training]
    per_epoch = len(trained) // 4
    assert trained == [32] * 2 * per_epoch + [48] * per_epoch + [64] * per_epoch and per_epoch >= 2
    assert {size for training, size in seen if not training} == {64}
    assert cli.main(["info", str(tmp_path / "run"), "--json"]) == 0
    held = json.loads(capsys.readouterr().out)["training"]
    assert (held["image_size_start"], held["image_size_ramp"]) == (32, 1.0)
    assert cli.main(["info", str(tmp_path / "run")]) == 0
    assert "progressive resizing from image_size 32 over 1 of the epochs" in capsys.readouterr().out


def test_a_resume_that_moves_the_resizing_ramp_says_the_size_its_next_epoch_trains_at(cifar_dir, tmp_path, capsys):
    """4 epochs of 32 to 64 resumed after the second as 8 stretch the ramp: epoch 3 trains at 32, not at the
    64 that run's would have, below the 48 of its epoch 2. The resume says so; resumed as it was, it says
    nothing and trains on at the sizes of the uninterrupted run."""
    args = SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--image_size=64", "--image_size_start=32",
                    "--save_checkpoint_epochs=1", f"--save_checkpoint_path={tmp_path / 'run'}"]
    four = load_config(args + ["--epoch_size=4"])
    ckpt = {"config": to_dict(four)}
    line = train.resizing_change(ckpt, "a.ckpt", load_config(args + ["--epoch_size=8"]), 2)
    assert line == ("resume: progressive resizing's sizes differ from those of a.ckpt's run: epoch_size 4 -> 8; "
                    "epoch 3 trains at image_size 32, where that run's would train at 64 (its epoch 2 trained at 48)")
    assert train.resizing_change(ckpt, "a.ckpt", four, 2) == ""  # the same schedule
    assert train.resizing_change(ckpt, "a.ckpt", load_config(args + ["--epoch_size=5"]), 3) == ""  # 64 either way
    plain = load_config(SMALL + ["--image_size=64", "--epoch_size=8"])
    assert train.resizing_change({"config": to_dict(plain)}, "p.ckpt", plain, 2) == ""  # neither run resizes
    assert train.resizing_change(ckpt, "a.ckpt", plain, 1).endswith(  # switched off in the ramp
        "epoch 2 trains at image_size 64, where that run's would train at 48 (its epoch 1 trained at 32)")
    # In a run (its last epoch alone trained, at 32): 4 epochs instead of 2 over a whole ramp, resumed at its end.
    ramp = SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--image_size_start=16", "--image_size_ramp=1.0",
                    "--batch_size=96", f"--save_checkpoint_path={tmp_path / 'ramp'}"]
    train.run(load_config(ramp + ["--epoch_size=2", "--pretrain_epoch_size=1"]))
    capsys.readouterr()
    train.run(load_config(ramp + ["--epoch_size=4", "--resume=auto"]))
    out = capsys.readouterr().out
    assert ", epochs 3..4, precision" in out  # several epochs: their range
    assert ("epoch_size 2 -> 4; epoch 3 trains at image_size 16, where that run's would train at 32 (its epoch 2 "
            "trained at 32)") in out
    assert "epoch 3: training at image_size 16" in out and "epoch 4: training at image_size 32" in out


def test_class_num_below_the_labels_of_cifar_binaries_is_refused(cifar_dir, tmp_path):
    """CIFAR's files lacking some of the format's classes (a subset: this one's labels stop at 3) were told the
    highest label plus one, which the other split, or later data of the format, could outgrow; the format's
    count comes first now, the labels' own second."""
    with pytest.raises(ConfigError, match=r"class_num 3 is too small .* labels 0\.\.3 in its \.bin files; "
                                          r"pass --class_num 10 \(CIFAR-10's classes\), or 4 for its labels alone$"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=3",
                                       f"--save_checkpoint_path={tmp_path / 'c'}"]))
    assert not (tmp_path / "c").exists()
    # CIFAR-100 without label 99 in its training file: CIFAR-100's 100 is told, not the 99 of its labels.
    cfg = load_config([*SMALL, "--dataset=cifar100", f"--dataset_path={cifar_dir}", "--class_num=10"])
    loader = types.SimpleNamespace(num_classes=99, classes=None, labels_in="its .bin files")
    with pytest.raises(ConfigError, match=r"labels 0\.\.98 in its \.bin files; pass --class_num 100 \(CIFAR-100's "
                                          r"classes\), or 99 for its labels alone$"):
        train.check_class_num(cfg, loader, evaluates=False)


def test_a_training_split_whose_images_are_all_of_one_class_is_refused(tmp_path):
    """An empty class folder beside one class of images, or CIFAR files whose records all hold label 2, trained
    without a word, every evaluation scoring 1.0 whatever the model did (helper-380), where one class folder, or
    labels of 0 alone, were refused: it is the classes that hold images that are counted."""
    from conftest import class_folders_of_photos

    photos = class_folders_of_photos(tmp_path / "photos", classes=("a",), per_class=6)
    (photos / "b").mkdir()
    with pytest.raises(ConfigError, match=r"dataset_path .*photos: it has 2 class folders, of which only a holds "
                                          r"images; a classifier needs images of two classes or more$"):
        train.run(load_config(["--dataset=imagenet2012", f"--dataset_path={photos}", "--class_num=2",
                               "--val_split=0.2", "--image_size=32", "--batch_size=2", "--epoch_size=1",
                               f"--save_checkpoint_path={tmp_path / 'f'}"]))
    assert not (tmp_path / "f").exists()
    cifar = tmp_path / "cifar"
    (cifar / "cifar-10-batches-bin").mkdir(parents=True)
    (cifar / CIFAR_EVAL_FOLDER).mkdir()
    y = np.full(8, 2)
    write_cifar_bin(str(cifar / "cifar-10-batches-bin" / "data_batch_1.bin"), class_images(y, 1), y)
    write_cifar_bin(str(cifar / CIFAR_EVAL_FOLDER / "test_batch.bin"), class_images(y, 2), y)
    with pytest.raises(ConfigError, match=r"it has labels 0\.\.2 in its \.bin files, of which only label 2 holds "
                                          r"images; a classifier needs images of two classes or more$"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar}", f"--save_checkpoint_path={tmp_path / 'c'}"]))
    assert not (tmp_path / "c").exists()


def test_cifar_class_num_past_the_formats_classes_gets_the_note_image_folders_get(cifar_dir, capsys):
    """train --dataset cifar10 --class_num 100 trained 90 outputs no label reaches without a word, where an
    image folder far below class_num gets a note; the format's own count (a subset's too) gets none."""
    def note(class_num, dataset="cifar10"):
        cfg = load_config([*SMALL, f"--dataset={dataset}", f"--dataset_path={cifar_dir}",
                           f"--class_num={class_num}"])
        with train.build_loader(train.data_options(cfg), train=True,
                                device=torch.device("cpu"), drop_last=True) as loader:
            train.check_class_num(cfg, loader, evaluates=False)
        return capsys.readouterr().out

    assert note(100) == (f"note: class_num 100: dataset_path {cifar_dir} has labels 0..3 in its .bin files, of "
                         f"CIFAR-10's 10 classes; the outputs past 10 are never a label (--class_num 10 fits it)\n")
    assert note(10) == "" and note(4) == ""  # the format's count, or its labels': as the files may be a subset
    assert note(11) != ""  # no background class, as ImageNet's 1001st, is allowed for


def test_pretrain_epoch_size_continues_the_schedule(cifar_dir, tmp_path, capsys):
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=4", "--pretrain_epoch_size=3",
                               "--class_num=4", f"--save_checkpoint_path={tmp_path / 'c'}"])
    train.run(cfg)
    log = capsys.readouterr().out
    assert ", epoch 4, precision" in log and "epoch: 4 step: 12" in log and "epoch: 1 " not in log


def test_seed_invocations_train_then_eval(cifar_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "seedrun"
    assert run_script(monkeypatch, "train.py", "--dataset", "cifar10", "--dataset_path", str(cifar_dir),
                      "--device_target", "CPU", "--epoch_size=1", "--class_num=4", *SMALL,
                      f"--save_checkpoint_path={out}") == 0, capsys.readouterr().err
    assert "epoch: 1 step: 12, loss is" in capsys.readouterr().out
    ck = out / "mobilenetv1-1_12.ckpt"
    assert run_script(monkeypatch, "eval.py", "--dataset", "cifar10", "--dataset_path", str(cifar_dir),
                      "--checkpoint_path", str(ck), "--device_target=CPU", "--image_size=32") == 0, \
        capsys.readouterr().err
    printed = capsys.readouterr().out
    assert printed.startswith("result: {'top_5_accuracy': ") and f"ckpt={ck}" in printed
    # The package's own command, in this process (`python -m mobilenet_v1` runs under torchrun in test_distributed).
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", str(out), "--device_target=CPU",
                     "--image_size=32", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)  # stdout holds the JSON object alone
    assert result["total"] == 40 and result["ckpt"] == str(ck)  # a folder: its newest


def test_seed_entry_points_outlive_a_reader_of_their_output_that_went_away(cifar_dir, tmp_path):
    """`python train.py ... | head -1` (the seed's command, "the same" as `mobilenet-v1 train`) ended in
    "mobilenet-v1 train: error: [Errno 32] Broken pipe", status 1, before the run's first checkpoint, and
    `python eval.py --help | head -1` in a BrokenPipeError's traceback: the scripts handed their arguments to
    cli.main as a Python caller does. Run as the command line is, train goes on and eval's help ends as cat does."""
    def gone_reader(script, *args):
        read, write = os.pipe()
        os.close(read)  # gone before the first line: every write meets a closed pipe
        try:
            return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], stdout=write,
                                  stderr=subprocess.PIPE, text=True, timeout=300,
                                  env=dict(os.environ, OMP_NUM_THREADS="1"))
        finally:
            os.close(write)

    p = gone_reader("eval.py", "--help")
    assert (p.returncode, p.stderr) == (141, ""), p.stderr
    out = tmp_path / "run"
    p = gone_reader("train.py", "--dataset_path", str(cifar_dir), "--epoch_size=1", "--class_num=4", *SMALL,
                    f"--save_checkpoint_path={out}")
    assert p.returncode == 0 and "Broken pipe" not in p.stderr, p.stderr
    assert (out / "mobilenetv1-1_12.ckpt").is_file()


def test_cli_errors_are_clear_and_nonzero(tmp_path, capsys):
    # In this process: the command's own exit status and stderr (test_seed_invocations runs python -m).
    assert cli.main(["train", "--no_such_key=1"]) != 0
    assert "unknown key 'no_such_key'" in capsys.readouterr().err
    assert cli.main(["eval", "--checkpoint_path", str(tmp_path / "missing.ckpt"), "--dataset_path", str(tmp_path),
                     "--device_target=CPU"]) != 0
    assert "missing.ckpt" in capsys.readouterr().err
    assert cli.main(["train", "--dataset_path", str(tmp_path), "--device_target=CPU",
                     f"--save_checkpoint_path={tmp_path / 'out'}"]) != 0
    assert "no CIFAR-10 .bin files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written for a run that could not start


def test_info_and_lr_schedule_commands(tmp_path, capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 4_231_976 and abs(info["macs"] - 569e6) / 569e6 < 0.01
    assert (info["layers"], info["feature_channels"]) == (27, 1024)
    # The most values one operator holds at once: layer 2, the pointwise 32 -> 64 at 112x112, input and output.
    assert (info["peak_activations"], info["peak_at"]) == (112 * 112 * (32 + 64), "layer 2")
    assert cli.main(["info", "--width_mult", "0.5", "--image_size", "160", "--json"]) == 0
    half = json.loads(capsys.readouterr().out)
    assert half["macs"] < 149e6 * 0.6 and (half["layers"], half["feature_channels"]) == (27, 512)
    # Without --json, for a reader: the paper's 1.32 M parameters and 76 M multiply-adds of 0.5 MobileNet-160.
    assert cli.main(["info", "--width_mult", "0.5", "--image_size", "160"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "MobileNetV1 width_mult 0.5, 160x160, 1000 classes", "  parameters:     1,331,592",
        "  multiply-adds:  76,524,800 (76.5 M)", "  layers:         27 conv + 1 fc, 512 features",
        "  activations:    307,200 values at most at once for one image (layer 2: its input and output), 300.0 KiB "
        "in int8, 1,200.0 KiB in float32: the floor of a tensor arena (an INT8 .tflite's with --int8_io True; "
        "TensorFlow Lite for Microcontrollers adds its bookkeeping)"]
    assert cli.main(["info", "--width_mult", "1e6", "--json"]) == 0  # counted from the table: nothing built
    assert json.loads(capsys.readouterr().out)["params"] > 1e15
    with pytest.raises(SystemExit):
        cli.main(["info", "--width_mult", "1e308"])  # its channel counts overflowed into a traceback
    assert "--width_mult 1e+308: must be a number in (0, 1e6]" in capsys.readouterr().err
    for width in ("0", "-0.5"):  # no network has a width of none or below
        with pytest.raises(SystemExit):
            cli.main(["info", "--width_mult", width])
        assert f"--width_mult {float(width):g}: must be a number in (0, 1e6]" in capsys.readouterr().err
    for option, value in (("--image_size", "-3"), ("--class_num", "0")):  # said together, neither named
        with pytest.raises(SystemExit):
            cli.main(["info", option, value])
        assert f"{option} {value}: must be at least 1" in capsys.readouterr().err
    # A whole number written as the keys take one ("2.0", "1e1"), as every other whole-number option reads it.
    assert cli.main(["lr-schedule", "--steps_per_epoch", "1e1", "--epoch_size=2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("20,2,")
    for steps in ("0", "-5", "abc", "2.5", "nan"):  # 0 said "steps_per_epoch and total_epochs must be >= 1, got 0, 90"
        with pytest.raises(SystemExit, match=f"^mobilenet-v1 lr-schedule: error: --steps_per_epoch must be a whole "
                                             f"number >= 1, got '{steps}'$"):
            cli.main(["lr-schedule", "--steps_per_epoch", steps])
    with pytest.raises(SystemExit, match=r"50,000 images make no step of batch_size 100000 .* pass --steps_per_epoch"):
        cli.main(["lr-schedule", "--batch_size=100000"])
    # An epoch's steps: CIFAR's 50,000 images over batch_size x device_num x grad_accum_steps, 50,000 / (1000 x 2 x 5).
    assert cli.main(["lr-schedule", "--batch_size=1000", "--device_num=2", "--grad_accum_steps=5",
                     "--epoch_size=2"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.rsplit(",", 1)[0] for row in rows] == ["step,epoch"] + [f"{s},{1 + (s > 5)}" for s in range(1, 11)]
    out = tmp_path / "lr.csv"
    assert cli.main(["lr-schedule", "--config_path", os.path.join(ROOT, "configs", "cifar10.yaml"), "--epoch_size=5",
                     "--warmup_epochs=1", "--steps_per_epoch", "2", "--out", str(out)]) == 0
    rows = out.read_text().splitlines()
    assert rows[0] == "step,epoch,lr" and len(rows) == 11
    assert [float(r.split(",")[2]) for r in rows[1:3]] == pytest.approx([0.01, 0.055])


def test_info_of_a_file_counts_multiply_adds_at_the_size_asked_else_at_the_one_it_records(tmp_path, capsys):
    """info FILE --image_size N: the network's multiply-adds at N, not at the size the file records (without
    the option, at that one), each as PyTorch's FLOP counter counts them (2 FLOPs a multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = MobileNetV1(class_num=10, width_mult=0.25)
    path = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25},
                         "config": {"dataset": "cifar10", "image_size": 32}}, path)
    for extra, size in (([], 32), (["--image_size", "48"], 48)):
        assert cli.main(["info", path, "--json", *extra]) == 0
        got = json.loads(capsys.readouterr().out)
        with FlopCounterMode(display=False) as counter:
            model.eval()(torch.zeros(1, 3, size, size))
        assert (got["image_size"], got["macs_image_size"]) == (32, [size, size])
        assert got["macs"] == counter.get_total_flops() // 2, size
    # The network is the file's: --width_mult or --class_num beside it is refused, as is a size of none.
    for extra, said in ((["--class_num", "4", "--width_mult", "0.25"], "--width_mult and --class_num: with FILE the "
                         "network is the file's"), (["--image_size", "0"], "--image_size must be at least 1")):
        with pytest.raises(SystemExit):
            cli.main(["info", path, *extra])
        assert said in capsys.readouterr().err, extra


def lr_table(cfg, steps_per_epoch):
    """lr-schedule's table as it was made whole before it was written a part at a time (its steps from 1)."""
    lr = schedule(cfg, steps_per_epoch)
    return "step,epoch,lr\n" + "".join(f"{i + 1},{i // steps_per_epoch + 1},{repr(float(v))}\n"
                                        for i, v in enumerate(lr))


def test_lr_schedule_writes_its_table_a_part_at_a_time_byte_for_byte(tmp_path, monkeypatch, capsys):
    """The table, made whole as text before it was written, filled the memory near its 200,000,000 steps; it is
    written LR_ROWS_AT_ONCE rows at a time, byte for byte the table made whole, the parts ending inside epochs."""
    monkeypatch.setattr(cli, "LR_ROWS_AT_ONCE", 5)
    for epochs, keys in ((4, ["--lr_decay_mode=poly", "--warmup_epochs=1"]),
                         (4, ["--lr_decay_mode=cosine", "--warmup_epochs=2"]),
                         (4, ["--lr_decay_mode=exponential", "--lr_decay_rate=0.5", "--lr_per_epoch=True"]),
                         (2, ["--lr_decay_mode=linear"])):  # 6 steps: a last part of one row
        argv = [f"--epoch_size={epochs}", *keys]
        expected = lr_table(load_config(argv), 3)
        cfg = load_config(argv)
        assert schedule(cfg, 3, start=4, stop=9).tolist() == schedule(cfg, 3)[4:9].tolist()
        assert cli.main(["lr-schedule", *argv, "--steps_per_epoch", "3"]) == 0
        assert capsys.readouterr().out == expected
        out = tmp_path / "lr.csv"
        assert cli.main(["lr-schedule", *argv, "--steps_per_epoch", "3", "--out", str(out)]) == 0
        assert out.read_bytes() == expected.encode()
        rates = [float(row.split(",")[2]) for row in expected.splitlines()[1:]]
        mode = load_config(argv).lr_decay_mode
        assert capsys.readouterr().out == (f"wrote {3 * epochs} steps ({epochs} epochs x 3) of lr_decay_mode {mode} to "
                                           f"{out}: first {rates[0]:.6g}, max {max(rates):.6g}, last {rates[-1]:.6g}\n")


def test_lr_schedule_memory_does_not_grow_with_the_steps(tmp_path):
    """Near its 200,000,000-step limit the table, made whole as text first, ran out of memory: its memory
    is now that of a part of it, four times the steps taking no more."""
    import tracemalloc

    peaks = {}
    for steps in (8_192, 32_768):  # 2 and 8 parts of 4,096 rows
        out = tmp_path / f"lr{steps}.csv"
        tracemalloc.start()
        try:
            assert cli.main(["lr-schedule", "--epoch_size=1", "--steps_per_epoch", str(steps), "--out", str(out)]) == 0
            peaks[steps] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    small, big = peaks.values()
    assert big < 1.5 * small and big < os.path.getsize(out), peaks


def test_lr_schedule_takes_its_own_options_with_dashes_as_the_keys(tmp_path, capsys):
    """`lr-schedule --steps-per-epoch 2` said "unknown key 'steps_per_epoch'" (the option its help names), where
    `--lr-max` is taken; and `--config-path F --out F` wrote the table over the file it read."""
    assert cli.main(["lr-schedule", "--steps-per-epoch", "2", "--epoch-size=1", "--warmup_epochs=0"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["1,1,0.10000000149011612", "2,1,0.02500000037252903"]
    assert cli.main(["lr-schedule", "--steps-per-epoch=3", "--epoch_size=1", "--warmup_epochs=0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    config = tmp_path / "c.csv"
    config.write_text("lr_max: 0.5\n")
    assert cli.main(["lr-schedule", "--config-path", str(config), "--steps_per_epoch=1", "--out", str(config)]) == 1
    assert f"--out {config}: is the file this command reads" in capsys.readouterr().err
    assert config.read_text() == "lr_max: 0.5\n"
    # Every command's own options alike (cli.pop_option, cli.pop_flag): eval's too.
    argv = ["--per-class", "--per-image=a.csv", "--confusion-csv", "b.csv", "--lr-max=0.1"]
    assert cli.pop_flag(argv, "--per_class") and cli.pop_option(argv, "--per_image") == "a.csv"
    assert cli.pop_option(argv, "--confusion_csv") == "b.csv" and argv == ["--lr-max=0.1"]
    # The last value given wins, as a key's does; a value may hold '=' (a sweep's file name); a value left off is said.
    argv = ["--out", "a.csv", "--json", "--out", "b.csv"]
    assert cli.pop_option(argv, "--out") == "b.csv" and argv == ["--json"]
    assert cli.pop_option(["--out=runs/lr=0.1.csv"], "--out") == "runs/lr=0.1.csv"
    assert cli.main(["lr-schedule", "--epoch_size=1", "--steps_per_epoch"]) == 1
    assert capsys.readouterr().err == "mobilenet-v1 lr-schedule: error: option --steps_per_epoch needs a value\n"
    for flag in ("--help", "-h"):
        assert cli.main(["lr-schedule", flag]) == 0
        assert capsys.readouterr().out.startswith("usage: mobilenet-v1 lr-schedule [--config_path F]"), flag


def test_an_eval_split_labelled_past_class_num_is_refused_before_training(cifar_dir, tmp_path, capsys):
    """CIFAR's test file is labelled apart from its training files: labels 0..3 to train on, 0..7 to evaluate on,
    with class_num 4, trained and reported top-1 on images no output could match (eval refuses that split)."""
    y = np.arange(40) % 8
    write_cifar_bin(str(cifar_dir / CIFAR_EVAL_FOLDER / "test_batch.bin"), np.zeros((40, 3, 32, 32), np.uint8), y)
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=1",
                     "--eval_interval=1", f"--save_checkpoint_path={run}"]) == 1
    assert capsys.readouterr().err.endswith(
        f"class_num 4 is too small for dataset_path {cifar_dir}'s evaluation split: it has labels 0..7 in its .bin "
        f"files, where training's are 0..3; pass --class_num 10 (CIFAR-10's classes), or 8 for its labels alone\n")
    assert not run.exists()  # refused before anything was written
    # CIFAR-100's coarse labels asked for (20 classes): the fine ones are what is read, said with the refusal.
    cfg = load_config([*SMALL, "--dataset=cifar100", f"--dataset_path={cifar_dir}", "--class_num=20"])
    loader = types.SimpleNamespace(num_classes=100, classes=None, labels_in="its .bin files")
    with pytest.raises(ConfigError, match=r"pass --class_num 100 \(CIFAR-100's fine labels are read, not its 20 "
                                          r"coarse ones\)$"):
        train.check_class_num(cfg, loader, evaluates=False)


def test_a_small_folder_is_told_the_batch_that_fits_and_an_empty_class_folder_is_named(
        image_folder, cifar_dir, tmp_path, capsys):
    """Fine-tuning on a small folder with the ImageNet preset (batch_size 256) said only that the images make
    no full batch; an empty class folder became a class without a word (an output that nothing trains)."""
    run = tmp_path / "run"
    assert cli.main(["train", *SMALL, f"--dataset_path={cifar_dir}", "--class_num=4", "--batch_size=200",
                     f"--save_checkpoint_path={run}"]) == 1
    assert capsys.readouterr().err.endswith(
        f"dataset_path {cifar_dir}: 192 training samples make no full batch of batch_size 200; --batch_size 192 or "
        f"less trains (a batch and a learning rate for a small folder: README, Fine-tuning)\n")
    (image_folder / "train" / "n03").mkdir()
    (image_folder / "train" / "n03" / "notes.txt").write_text("no image")
    cfg = load_config([*SMALL, "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=3",
                       "--batch_size=4"])
    with train.build_loader(train.data_options(cfg), train=True,
                            device=torch.device("cpu"), drop_last=True) as loader:
        train.check_class_num(cfg, loader, evaluates=False)
    assert capsys.readouterr().out == (
        f"note: dataset_path {image_folder}: class folder n03 holds no image file (.jpg, .jpeg, .png, .bmp, .gif, "
        f".webp, .tif, .tiff, .ppm, .pgm); the model has an output for it "
        f"that nothing trains (remove the folder to leave it out)\n")
    # A class_num that counts only the folders with images: the refusal names the empty one, whose removal fits it.
    cfg = load_config([*SMALL, "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2",
                       "--batch_size=4"])
    with train.build_loader(train.data_options(cfg), train=True,
                            device=torch.device("cpu"), drop_last=True) as loader:
        with pytest.raises(ConfigError, match=r"it has 3 class folders in .* \(of them, n03 holds no image file: with "
                                              r"it removed, --class_num 2 fits\); pass --class_num 3$"):
            train.check_class_num(cfg, loader, evaluates=False)


def test_info_says_the_precision_auto_trained_in_and_one_step_into_an_epoch(cifar_dir, tmp_path, capsys):
    """precision auto is fp32 on a CPU (bf16 on a GPU): info says which the saving session took, where the
    recorded configuration says only "auto"; a save one step into an epoch is "1 step", not "1 steps"."""
    run = tmp_path / "run"
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=1", "--batch_size=96",
                                   "--precision=auto", "--save_checkpoint_steps=1", f"--save_checkpoint_path={run}"]))
    capsys.readouterr()
    first = str(run / "mobilenetv1-1_1.ckpt")
    assert cli.main(["info", first]) == 0
    text = capsys.readouterr().out
    assert "training:       1 step into epoch 1 of 1, step 1 (2 steps an epoch)" in text
    assert "precision auto (fp32 where it was saved)" in text
    assert cli.main(["info", first, "--json"]) == 0
    held = json.loads(capsys.readouterr().out)["training"]
    assert (held["precision"], held["precision_used"]) == ("auto", "fp32")
    # the intra-op threads it trained with, which a resume compares (threads_change)
    assert ckpt_io.load_file(first)["cpu_threads"] == torch.get_num_threads()


def test_the_readmes_python_evaluation_follows_the_file_as_the_eval_command_does(cifar_dir, tmp_path, capsys,
                                                                                  one_thread):
    """README's notebook recipe evaluated with evaluate.run(load_config([...])), said to take "the options as on the
    command line": without the keys given, every value was taken as it is, so a run trained at image_size 32 with
    --mean 0.3 was scored at 224 with CIFAR's mean (the size noted, the mean not at all), where eval follows the
    file. The recipe passes load_config_and_given's keys, as eval does."""
    from mobilenet_v1.config import load_config_and_given

    result = train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--class_num=4",
                                            "--mean=0.3", f"--save_checkpoint_path={tmp_path / 'run'}"]))
    options = [f"--dataset_path={cifar_dir}", "--num_workers=0", "--device_target=CPU",
               f"--checkpoint_path={result['checkpoint']}"]
    capsys.readouterr()
    followed = evaluate_mod.run(*load_config_and_given(options))
    said = capsys.readouterr().err
    assert "image_size 32: the size" in said and "mean 0.3,0.3,0.3: what" in said
    assert followed == evaluate_mod.run(load_config(options + ["--image_size=32", "--mean=0.3"]))
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    recipe = readme[readme.index("# Training and evaluating from Python"):]
    recipe = recipe[:recipe.index("```")]
    assert "evaluate.run(*load_config_and_given([" in recipe and "evaluate.run(load_config(" not in recipe
    # A CIFAR-100 file, with options that name no data set: refused under the default (cifar10); the recipe passes
    # eval's dataset_of, which takes the file's, with its presets (100 classes), and scores as the command does.
    assert "dataset_of=evaluate.recorded_dataset))" in recipe
    folder = tmp_path / "c100" / CIFAR100_FOLDER
    folder.mkdir(parents=True)
    fine = np.array([0, 1, 2, 3, 97, 99] * 4)
    write_cifar_bin(str(folder / "test.bin"), class_images(fine, 2), fine, coarse=fine % 20)
    hundred = str(tmp_path / "c100.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=100, width_mult=0.25).state_dict(),
                         "model_args": {"class_num": 100, "width_mult": 0.25},
                         "config": {"dataset": "cifar100", "image_size": 32}}, hundred)
    options = [f"--dataset_path={tmp_path / 'c100'}", "--num_workers=0", "--device_target=CPU",
               f"--checkpoint_path={hundred}"]
    with pytest.raises(ckpt_io.CheckpointError, match=f"{hundred} was trained on cifar100 .* pass --dataset cifar100"):
        evaluate_mod.run(*load_config_and_given(options))
    scores = evaluate_mod.run(*load_config_and_given(options, dataset_of=evaluate_mod.recorded_dataset))
    capsys.readouterr()
    assert cli.main(["eval", *options, "--json"]) == 0
    command = json.loads(capsys.readouterr().out)
    assert scores["total"] == command["total"] == 24
    assert (scores["top_1_accuracy"], scores["top_5_accuracy"]) == (command["top_1_accuracy"],
                                                                    command["top_5_accuracy"])


def test_a_resume_with_another_loss_scale_starts_fp16s_scale_there_and_says_so(cifar_dir, tmp_path, capsys,
                                                                               one_thread):
    """--loss_scale 64 given to a resume was kept out by the file's dynamic scale (1024 halved on overflow only,
    grown every 2,000 steps) while config.yaml said 64 (helper-291): the scale starts again at the value given,
    named. (fp16 on a CPU is slow: two short epochs.)"""
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--precision=fp16", "--batch_size=64",
                    f"--save_checkpoint_path={out}"]
    train.run(load_config(args + ["--epoch_size=1"]))
    saved = ckpt_io.load_file(str(out / ckpt_io.checkpoint_name(1, 3)))["scaler"]["scale"]
    assert saved > 64
    capsys.readouterr()
    train.run(load_config(args + ["--epoch_size=2", "--resume=auto", "--loss_scale=64"]))
    said = capsys.readouterr().out
    assert (f"resume: {out / ckpt_io.checkpoint_name(1, 3)} was trained with loss_scale 1024; continuing with this "
            f"run's loss_scale 64: fp16's dynamic loss scale starts again at 64 (it had come to {saved:g})\n") in said
    assert "model, optimizer, schedule, data order and random state continue" in said  # not the loss scale
    assert ckpt_io.load_file(str(out / ckpt_io.checkpoint_name(2, 3)))["scaler"]["scale"] <= 64
    train.run(load_config(args + ["--epoch_size=3", "--resume=auto", "--loss_scale=64"]))  # the same: it goes on
    assert "model, optimizer, loss scale, schedule, data order and random state continue" in capsys.readouterr().out
    # Another precision (precision auto resolves by device: a GPU run's bf16 is fp32 on a CPU): named, and the
    # resume's line no longer says the loss scale continues where the file's is dropped (helper-304).
    capsys.readouterr()
    train.run(load_config([a for a in args if a != "--precision=fp16"] + ["--epoch_size=4", "--resume=auto"]))
    said = capsys.readouterr().out
    assert (f"resume: {out / ckpt_io.checkpoint_name(3, 3)} was trained with precision 'fp16'; continuing with this "
            f"run's precision 'fp32': the file's fp16 loss scale is not used\n") in said
    assert "model, optimizer, schedule, data order and random state continue" in said
    assert train.precision_change({"precision_used": "bf16"}, "a.ckpt", "fp16", 256.0) == (
        "resume: a.ckpt was trained with precision 'bf16'; continuing with this run's precision 'fp16': fp16's "
        "dynamic loss scale starts at loss_scale 256")
    assert train.precision_change({"precision_used": "fp32"}, "a.ckpt", "fp32", 1024.0) == ""
    assert train.precision_change({}, "a.ckpt", "fp16", 1024.0) == ""  # a file from before the key


def test_a_cpu_resume_at_another_thread_count_says_it_does_not_go_on_bit_for_bit():
    """The CPU kernels split their sums by intra-op thread: a run resumed at another count rounds otherwise
    and drifts apart from the one it continues (helper-341: BatchNorm's gradients 1.6% apart after one step
    at 1 against 2 threads). The checkpoint records the count and a resume at another names it."""
    cpu, now = torch.device("cpu"), torch.get_num_threads()
    assert train.threads_change({"cpu_threads": now}, "a.ckpt", cpu) == ""
    assert train.threads_change({}, "a.ckpt", cpu) == ""  # a file from before the key, or a GPU run's
    assert train.threads_change({"cpu_threads": now + 1}, "a.ckpt", torch.device("meta")) == ""
    said = train.threads_change({"cpu_threads": now + 1}, "a.ckpt", cpu)
    assert said.startswith(f"resume: a.ckpt was trained with {now + 1} CPU threads, this run has {now} ")
    assert said.endswith(f"OMP_NUM_THREADS={now + 1} to continue it exactly")


def test_a_resume_in_another_data_pipeline_says_it_does_not_go_on_as_that_run_would_have(image_folder, tmp_path,
                                                                                          capsys, one_thread):
    """The two image pipelines draw the same crop boxes and flips but their bilinear crops' pixels differ by a
    few levels, so a run's weights differ with the pipeline; a resume in the other one (given, or data_pipeline
    auto on another device) said that data and random state continue, naming nothing (helper-411, a run
    resumed inside an epoch). The checkpoint records the pipeline and a resume in the other names it."""
    out = tmp_path / "run"
    args = [*SMALL, "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--class_num=2", "--batch_size=4",
            f"--save_checkpoint_path={out}", "--save_checkpoint_epochs=1"]
    assert cli.main(["train", *args, "--epoch_size=1", "--data_pipeline=cpu"]) == 0
    first = out / ckpt_io.checkpoint_name(1, 3)
    assert ckpt_io.load_file(str(first))["data_pipeline_used"] == "cpu"
    capsys.readouterr()
    assert cli.main(["train", *args, "--epoch_size=2", "--data_pipeline=gpu", "--resume=auto"]) == 0
    said = capsys.readouterr().out
    assert (f"resume: {first} was trained with data_pipeline 'cpu'; continuing with this run's data_pipeline 'gpu': "
            "the two pipelines' bilinear training crops differ by a few pixel levels, so it does not go on as that "
            "run would have; --data_pipeline cpu to continue it as it was\n") in said
    assert ckpt_io.load_file(str(out / ckpt_io.checkpoint_name(2, 3)))["data_pipeline_used"] == "gpu"
    cpu, cfg = torch.device("cpu"), load_config(args)
    assert train.pipeline_change({"data_pipeline_used": "cpu"}, "a.ckpt", cfg, cpu) == ""  # auto: cpu here
    assert train.pipeline_change({"data_pipeline_used": "gpu"}, "a.ckpt", cfg, cpu).startswith(
        "resume: a.ckpt was trained with data_pipeline 'gpu'; continuing with this run's data_pipeline 'cpu'")
    assert train.pipeline_change({"config": {"data_pipeline": "gpu"}}, "a.ckpt", cfg, cpu) != ""  # an older file's
    assert train.pipeline_change({"config": {"data_pipeline": "auto"}}, "a.ckpt", cfg, cpu) == ""  # unknown
    bicubic = dataclasses.replace(cfg, interpolation="bicubic")  # the same pixels in both
    assert train.pipeline_change({"data_pipeline_used": "gpu"}, "a.ckpt", bicubic, cpu) == ""
    cifar = load_config(SMALL)  # CIFAR-10 has no pipeline to choose
    assert train.pipeline_change({"data_pipeline_used": "gpu"}, "a.ckpt", cifar, cpu) == ""


def test_a_run_folder_inside_a_split_it_reads_is_refused_before_anything_is_written(image_folder, tmp_path, capsys):
    """A run folder inside the folder of class folders it trains on became a class of its own at the next read:
    the run could be neither resumed nor evaluated on that data (helper-329). Refused before anything is
    written, the split folder itself too (its earlier-run-N/ would be classes); inside a class folder, in a hidden
    folder and beside the splits (P/runs beside P/train) it is read by none, and taken. A quoted ~ is refused
    too (a folder named ~ was made here)."""
    for split, run in (("train", image_folder / "train" / "run"),
                       ("validation_preprocess", image_folder / "validation_preprocess")):
        assert cli.main(["train", *SMALL, "--dataset=imagenet2012", f"--dataset_path={image_folder}",
                         "--class_num=2", "--eval_interval=1", "--batch_size=4", "--epoch_size=1",
                         f"--save_checkpoint_path={run}"]) == 1
        where = "is" if run.name == split else "is inside"
        assert (f"save_checkpoint_path {run} {where} {image_folder / split}, the folder the run reads its images "
                f"from") in capsys.readouterr().err
        assert not (run / "config.yaml").exists()
    loader = types.SimpleNamespace(root=str(image_folder / "train"), classes=["n01", "n02"])
    for taken in (image_folder / "runs" / "a", image_folder / "train2", image_folder / "train" / "n01" / "run",
                  image_folder / "train" / ".runs" / "a"):
        assert train.run_in_data(str(taken), str(taken), loader, None) == "", taken
    assert cli.main(["train", *SMALL, f"--dataset_path={image_folder}", "--save_checkpoint_path=~/runs/x"]) == 1
    assert "save_checkpoint_path ~/runs/x: starts with ~, which only a shell expands" in capsys.readouterr().err


def test_ranked_puts_nan_below_every_number_and_ties_to_the_lower_index():
    """engine.ranked, which eval, predict and quantize rank outputs by: a NaN output ranks below every finite
    one (torch.sort alone puts it first), a tie to the lower index."""
    from mobilenet_v1.engine import ranked

    nan = float("nan")
    logits = torch.tensor([[1.0, nan, 3.0, 2.0, -5.0], [nan, 0.5, 0.5, nan, 0.7]])
    assert ranked(logits, 5).tolist() == [[2, 3, 0, 4, 1], [4, 1, 2, 0, 3]]
    assert ranked(logits, 1).tolist() == [[2], [4]]


def test_eval_builds_a_file_that_records_no_padding_with_the_padding_given(tmp_path, capsys, cifar_dir, monkeypatch):
    # A symmetric run converted to MindSpore's .ckpt (convert warns that MindSpore pads SAME) lost its padding:
    # eval said "--padding symmetric given; m.ckpt has padding same, which eval uses", and nothing ran it as trained.
    from mobilenet_v1 import mindspore_io
    torch.manual_seed(0)
    model = MobileNetV1(class_num=4, width_mult=0.25, padding="symmetric").eval()
    path = str(tmp_path / "m.ckpt")
    mindspore_io.write_mindspore_ckpt(path, mindspore_io.to_seed_state({"model": model.state_dict()}))
    ckpt = ckpt_io.load_file(path)
    assert "padding" not in (ckpt.get("model_args") or {})
    typed = Given({"padding": "option --padding"})
    note = evaluate_mod.model_options_note(load_config(["--padding=symmetric"]), typed,
                                           {"class_num": 4, "width_mult": 0.25, "padding": None}, path, ("padding",))
    assert note == (f"note: --padding symmetric given; {path} records no padding (a MindSpore .ckpt's network pads "
                    f"SAME): eval builds it with padding symmetric as asked")
    from mobilenet_v1.api import model_from_checkpoint
    built, args = model_from_checkpoint(ckpt, path, padding="symmetric")
    x = torch.randn(1, 3, 40, 40)
    assert args["padding"] == "symmetric" and torch.allclose(built(x), model(x), atol=1e-5)
    # The command: the typed --padding reaches the network built for a file that records none, not for one that
    # records its own (whose padding eval keeps, and says so).
    built_with = []
    real = evaluate_mod.model_from_checkpoint
    monkeypatch.setattr(evaluate_mod, "model_from_checkpoint",
                        lambda *a, **k: built_with.append(k.get("padding")) or real(*a, **k))
    ten = MobileNetV1(class_num=10, width_mult=0.25, padding="symmetric").eval()
    mindspore_io.write_mindspore_ckpt(path, mindspore_io.to_seed_state({"model": ten.state_dict()}))
    recorded = str(tmp_path / "m.pt")
    torch.save({"format": ckpt_io.FORMAT, "model": ten.state_dict(),
                "model_args": {"class_num": 10, "width_mult": 0.25, "padding": "same"}}, recorded)
    base = [f"--dataset_path={cifar_dir}", "--device_target=CPU", "--num_workers=0", "--image_size=32", "--json"]
    for ckpt_path, extra, padding in ((path, ["--padding=symmetric"], "symmetric"), (path, [], None),
                                      (recorded, ["--padding=symmetric"], None)):
        assert evaluate_mod.main([f"--checkpoint_path={ckpt_path}", *base, *extra]) == 0
        assert built_with[-1] == padding, (ckpt_path, extra)
    assert f"--padding symmetric given; {recorded} has padding same, which eval uses" in capsys.readouterr().err
    assert cli.main(["info", path]) == 0 and cli.main(["info", recorded]) == 0  # info: presumed, not read
    shown = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("model:")]
    assert shown == ["model:          MobileNetV1 width_mult 0.25, 10 classes, padding same (not recorded: MindSpore's "
                     "network pads SAME; --padding builds it otherwise in eval, predict, export, convert and "
                     "recalibrate-bn)",
                     "model:          MobileNetV1 width_mult 0.25, 10 classes, padding same"]


def test_the_gpu_pipeline_names_an_empty_class_folder_too(image_folder, capsys):
    """The note and the class_num hint read the loader's samples, which the GPU pipeline's loader (the default with
    CUDA) held in no `dataset`: both were left out there, silently."""
    (image_folder / "train" / "n03").mkdir()
    for class_num in (3, 2):
        cfg = load_config([*SMALL, "--dataset=imagenet2012", f"--dataset_path={image_folder}",
                           f"--class_num={class_num}", "--batch_size=4", "--data_pipeline=gpu"])
        with train.build_loader(train.data_options(cfg), train=True,
                                device=torch.device("cpu"), drop_last=True) as loader:
            if class_num == 3:
                train.check_class_num(cfg, loader, evaluates=False)
                assert "class folder n03 holds no image file" in capsys.readouterr().out
            else:
                with pytest.raises(ConfigError, match=r"\(of them, n03 holds no image file"):
                    train.check_class_num(cfg, loader, evaluates=False)
