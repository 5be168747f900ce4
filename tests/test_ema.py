"""The weight average (``--ema_decay``): its arithmetic, its place in training, checkpoints and resume,
and which weights eval, export, convert, predict and load_model take."""
import json
import math
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from conftest import write_cifar_dir
from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, evaluate, info, load_model, train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.ema import WeightAverage, decay_at
from mobilenet_v1.engine import few_outputs_note
from mobilenet_v1.tracking import read_metrics

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")

SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_the_average_follows_tensorflows_formula_with_its_warm_up():
    model = tiny()
    average = WeightAverage(model, tiny(), decay=0.9)
    w0 = model[0].weight.detach().clone()
    assert torch.equal(average.module[0].weight, w0)  # starts as a copy of the model
    expected = w0.clone()
    expected_mean = model[1].running_mean.clone()
    for n in range(30):
        with torch.no_grad():
            model[0].weight.add_(1.0)
            model[1].running_mean.add_(0.5)
        model[1].num_batches_tracked += 1
        average.update()
        d = min(0.9, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * model[0].weight.detach()
        expected_mean = d * expected_mean + (1 - d) * model[1].running_mean
    assert decay_at(0.9, 0) == 0.1 and decay_at(0.9, 1000) == 0.9
    torch.testing.assert_close(average.module[0].weight, expected, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(average.module[1].running_mean, expected_mean, rtol=1e-6, atol=1e-5)
    # The average trails the weights, which moved by 30 in all.
    assert 20 < float((average.module[0].weight - w0).mean()) < 29
    state = average.state_dict()
    assert state["updates"] == 30 and state["decay"] == 0.9
    assert int(state["model"]["1.num_batches_tracked"]) == 30  # counters are the model's, not averaged
    assert not average.module.training and not any(p.requires_grad for p in average.module.parameters())


def test_ema_decay_out_of_range_is_refused_naming_the_option():
    for bad in ("1", "-0.1", "1.5"):
        with pytest.raises(ConfigError, match="ema_decay"):
            load_config([f"--ema_decay={bad}"])


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """Six epochs of the small model with a weight average, evaluated after the 3rd and the 6th (where
    the average and the trained weights score differently). Trained once for the module: its tests read
    the run folder, its data and its checkpoint, and write only into their own folders."""
    root = tmp_path_factory.mktemp("ema")
    cifar_dir, out = write_cifar_dir(root / "cifar"), root / "run"
    cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=6", "--eval_interval=3",
                               "--ema_decay=0.95", "--save_checkpoint_epochs=1", f"--save_checkpoint_path={out}"])
    result = train.run(cfg)
    return cifar_dir, out, result


def test_training_evaluates_and_saves_the_average_and_eval_takes_it(ema_run, capsys):
    cifar_dir, out, result = ema_run
    ck = ckpt_io.load_file(result["checkpoint"])
    assert ck["ema"]["updates"] == 72 and ck["ema"]["decay"] == 0.95
    assert ck["ema"]["model"].keys() == ck["model"].keys()
    assert not torch.equal(ck["ema"]["model"]["fc.weight"], ck["model"]["fc.weight"])
    last = read_metrics(str(out))["epochs"][-1]
    assert {"top_1", "top_5", "raw_top_1", "raw_top_5"} <= set(last)
    # eval of the checkpoint: the average by default, what training reported as top_1; the trained
    # weights with --use_ema False, what it reported as raw_top_1.
    base = SMALL + [f"--dataset_path={cifar_dir}", f"--checkpoint_path={result['checkpoint']}"]
    averaged = evaluate.run(load_config(base))
    trained = evaluate.run(load_config(base + ["--use_ema=False"]))
    assert averaged["top_1_accuracy"] == pytest.approx(last["top_1"])
    assert trained["top_1_accuracy"] == pytest.approx(last["raw_top_1"])
    printed = capsys.readouterr().err  # stdout is the result's
    assert "weights: the exponential moving average of the trained weights (ema_decay 0.95, 72 updates)" in printed
    # 4 classes: every one is in any image's top 5. Said once a run (two evaluations here), as eval says it,
    # beside the first evaluation's line, which keeps the seed's format; not of 6 outputs.
    log = (out / "log.txt").read_text()
    note = ("note: top-5 is 1.0 whatever the model does: this run's model has 4 outputs, every one of them among "
            "any image's top 5 (top-1 is the figure to read)")
    assert log.count(note) == 1 and log.count("eval: epoch ") == 2
    assert re.search(r"^eval: epoch 3 top-1 [0-9.]+ top-5 1\.0000 \(40 images; weight average; .*\n" + re.escape(note),
                     log, re.M)
    assert few_outputs_note("this run's model", 6) == ""
    assert "weights: the trained weights (--use_ema False" in printed
    assert cli.main(["eval", *base, "--json"]) == 0  # one JSON object on stdout, the note beside it
    assert json.loads(capsys.readouterr().out)["top_1_accuracy"] == pytest.approx(last["top_1"])
    # The best checkpoint is chosen by the average's top-1.
    best = ckpt_io.load_file(str(out / ckpt_io.BEST_NAME))
    tops = [r["top_1"] for r in read_metrics(str(out))["epochs"] if "top_1" in r]
    assert best["metrics"]["top_1"] == max(tops) and "raw_top_1" in best["metrics"]


def test_load_model_convert_and_export_take_the_average_unless_told(ema_run, tmp_path, capsys):
    cifar_dir, out, result = ema_run
    path = result["checkpoint"]
    ck = ckpt_io.load_file(path)
    x = torch.randn(2, 3, 32, 32)

    def same(model, state):
        return all(torch.equal(model.state_dict()[k], v) for k, v in state.items())

    assert same(load_model(path), ck["ema"]["model"])
    assert same(load_model(str(out)), ck["ema"]["model"])  # the run folder: its newest checkpoint, the last
    assert same(load_model(path, use_ema=False), ck["model"])
    with pytest.raises(TypeError, match="use_ema must be True or False, got 'False'"):  # a string, true
        load_model(path, use_ema="False")
    from mobilenet_v1.predict import load_predictor

    with pytest.raises(TypeError, match="use_ema must be True, False or None, got 'False'"):
        load_predictor(path, use_ema="False")
    # 0 and NumPy's False were equal to False, let through, and then not False: the average taken (helper-316).
    for false in (0, np.False_):
        with pytest.raises(TypeError, match=f"use_ema must be True, False or None, got {false!r}"):
            load_predictor(path, use_ema=false)
    # top_k leaves torch's global random stream where it was (its DataLoader drew its workers' seed there).
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    predictor = load_predictor(path)
    torch.manual_seed(3)
    expected = torch.rand(2)
    for workers in (0, 1):
        torch.manual_seed(3)
        predictor.top_k([str(image)], 2, num_workers=workers)
        assert torch.equal(torch.rand(2), expected), workers
    # ... of an exported file too (it was taken there and named as not used), and train.run's result given for the
    # file is named as such (os.fspath's "not dict" named neither; helper-248).
    with pytest.raises(TypeError, match="use_ema must be True, False or None, got 'False'"):
        load_predictor(str(tmp_path / "nowhere.onnx"), use_ema="False")
    for load in (load_model, load_predictor):
        with pytest.raises(TypeError, match=rf"^{load.__name__}: the model file is a path .*got dict \(train.run's "
                                            rf"result\? its 'checkpoint' is the file: "):
            load({"checkpoint": path, "top_1": 0.5})
    assert cli.main(["convert", path, str(tmp_path / "avg.pt")]) == 0
    assert cli.main(["convert", path, str(tmp_path / "raw.pt"), "--use_ema", "False"]) == 0
    assert "weights: the exponential moving average" in capsys.readouterr().out
    assert same(load_model(str(tmp_path / "avg.pt")), ck["ema"]["model"])
    assert same(load_model(str(tmp_path / "raw.pt")), ck["model"])
    assert "ema" not in ckpt_io.load_file(str(tmp_path / "avg.pt"))
    # The file says its weights are the average (info said "trained" of it), and so does one written from it.
    assert cli.main(["convert", str(tmp_path / "avg.pt"), str(tmp_path / "avg.safetensors")]) == 0
    # recalibrate-bn's file of the average alike (its BatchNorm statistics measured again).
    assert cli.main(["recalibrate-bn", path, "--dataset_path", str(cifar_dir), "--out", str(tmp_path / "rb.pt")]) == 0
    capsys.readouterr()
    for name, row in (("avg.pt", f"the exponential moving average of a run's weights (ema_decay {ck['ema']['decay']}, "
                                 f"updates {ck['ema']['updates']}), taken from {path} (convert)"),
                      ("avg.safetensors", f"taken from {path} (convert)"), ("raw.pt", "weights:        trained\n"),
                      ("rb.pt", f"taken from {path} (recalibrate-bn)")):
        assert cli.main(["info", str(tmp_path / name)]) == 0
        assert row in capsys.readouterr().out, name
    # predict says which weights it ran (stderr; "weights" in its JSON).
    Image.fromarray(torch.randint(0, 255, (32, 32, 3), dtype=torch.uint8).numpy()).save(tmp_path / "x.png")
    for flag, weights in (("True", "ema"), ("False", "trained")):
        capsys.readouterr()
        assert cli.main(["predict", str(tmp_path / "x.png"), "--ckpt_file", path, "--json", "--use_ema", flag]) == 0
        printed = capsys.readouterr()
        assert json.loads(printed.out)["weights"] == weights and "weights: the " in printed.err
    for name, weights in (("avg.pt", "ema"), ("raw.pt", ""), ("rb.pt", "ema")):  # the files taken from the average
        assert cli.main(["predict", str(tmp_path / "x.png"), "--ckpt_file", str(tmp_path / name), "--json"]) == 0
        assert json.loads(capsys.readouterr().out).get("weights", "") == weights, name
    # A damaged average is named as such, and the trained weights beside it still load.
    damaged = dict(ck, ema=dict(ck["ema"], model=dict(ck["ema"]["model"], **{"fc.bias": ck["model"]["fc.bias"] * float("nan")})))
    ckpt_io.atomic_save(damaged, str(tmp_path / "damaged.ckpt"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"fc.bias holds NaN .*\(in its weight average, 'ema'; --use_ema False"):
        load_model(str(tmp_path / "damaged.ckpt"))
    assert same(load_model(str(tmp_path / "damaged.ckpt"), use_ema=False), ck["model"])
    # train --pre_trained says it as eval does (it gave the tensor's name only: helper-304), and with
    # --use_ema False starts from the trained weights (one step: the file loaded is what is asked here).
    fine_tune = SMALL + [f"--dataset_path={cifar_dir}", f"--pre_trained={tmp_path / 'damaged.ckpt'}",
                         "--save_checkpoint=False", "--epoch_size=1"]
    with pytest.raises(ckpt_io.CheckpointError, match=r"fc.bias holds NaN .*\(in its weight average, 'ema'; --use_ema"):
        train.run(load_config(fine_tune))
    assert math.isfinite(train.run(load_config(fine_tune + ["--use_ema=False"]))["last_loss"])
    with pytest.raises(SystemExit):
        cli.main(["convert", path, str(tmp_path / "x.pt"), "--use_ema", "maybe"])
    assert "--use_ema: invalid True or False value: 'maybe'" in capsys.readouterr().err

    pytest.importorskip("onnxruntime")
    from mobilenet_v1.onnx_io import OnnxModel

    assert cli.main(["export", "--ckpt_file", path, "--file_name", str(tmp_path / "avg")]) == 0
    onnx_model = OnnxModel(str(tmp_path / "avg.onnx"))
    assert onnx_model.metadata["weights"] == "ema"
    for name in ("avg.pt", "raw.pt"):  # from the files convert wrote: the average's record goes on
        assert cli.main(["export", "--ckpt_file", str(tmp_path / name), "--file_name", str(tmp_path / "c")]) == 0
        assert OnnxModel(str(tmp_path / "c.onnx")).metadata.get("weights") == ("ema" if name == "avg.pt" else None)
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "avg.onnx")]) == 0
    described = capsys.readouterr().out  # the numbers' precision, and which weights: a row each
    assert "  precision:      fp32\n" in described and described.count("  weights:") == 1 and \
        "  weights:        ema\n" in described
    with torch.no_grad():
        expected, raw = load_model(path)(x), load_model(path, use_ema=False)(x)
    got = onnx_model(x)
    assert (got - expected).abs().max() < 1e-4 < (got - raw).abs().max()


def test_pre_trained_takes_the_average_unless_told(ema_run, tmp_path, capsys):
    cifar_dir, _, result = ema_run
    ck = ckpt_io.load_file(result["checkpoint"])
    for use_ema, expected in (("True", ck["ema"]["model"]), ("False", ck["model"])):
        # A learning rate of 0: the weights stay those loaded (BatchNorm statistics still move).
        cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={tmp_path / use_ema}",
                                   f"--pre_trained={result['checkpoint']}", f"--use_ema={use_ema}",
                                   "--epoch_size=1", "--lr_max=0", "--lr_end=0"])
        tuned = ckpt_io.load_file(train.run(cfg)["checkpoint"])["model"]
        assert torch.equal(tuned["fc.weight"], expected["fc.weight"]), use_ema
    log = capsys.readouterr().out
    assert "pre_trained: weights: the exponential moving average" in log
    assert "pre_trained: weights: the trained weights (--use_ema False" in log


def test_train_names_a_use_ema_it_has_no_file_to_read_it_for(ema_run, tmp_path, capsys):
    """train reads --use_ema for the file --pre_trained (or --teacher) names; without one it was taken and ignored
    without a word (helper-258), where every other key a run leaves unused is named. A config file shared with
    eval holds it without a word."""
    cifar_dir, _, result = ema_run
    base = ["train", *SMALL, f"--dataset_path={cifar_dir}", "--epoch_size=1", "--save_checkpoint=False"]
    said = ("note: --use_ema False: train reads it where it takes a file's weights (--pre_trained, --teacher), and "
            "this run takes none")
    capsys.readouterr()
    assert cli.main(base + ["--use_ema=False"]) == 0
    assert said in capsys.readouterr().err
    assert cli.main(base + ["--use_ema=False", f"--pre_trained={result['checkpoint']}"]) == 0
    assert "train reads it where" not in capsys.readouterr().err
    shared = tmp_path / "shared.yaml"
    shared.write_text("use_ema: false\n")
    assert cli.main(base + [f"--config_path={shared}"]) == 0
    assert "train reads it where" not in capsys.readouterr().err


def test_resume_starts_an_average_or_drops_one_and_says_so(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = SMALL + [f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={out}", "--save_checkpoint_epochs=1"]
    train.run(load_config(base + ["--epoch_size=1"]))  # no average
    capsys.readouterr()
    result = train.run(load_config(base + ["--epoch_size=2", "--resume=auto", "--ema_decay=0.9"]))
    log = capsys.readouterr().out
    assert "holds no weight average (its run had no ema_decay); the average starts here from its weights" in log
    ck = ckpt_io.load_file(result["checkpoint"])
    assert ck["ema"]["updates"] == 12  # the steps of epoch 2 only
    train.run(load_config(base + ["--epoch_size=3", "--resume=auto", "--ema_decay=0.5"]))
    assert "was kept with ema_decay 0.9; it continues with this run's 0.5" in capsys.readouterr().out
    result = train.run(load_config(base + ["--epoch_size=4", "--resume=auto"]))
    log = capsys.readouterr().out
    assert "ema_decay is 0: the weight average in" in log and "is not continued" in log
    assert "ema" not in ckpt_io.load_file(result["checkpoint"])


def test_a_checkpoint_whose_average_is_damaged_is_passed_over(cifar_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = SMALL + [f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={out}", "--save_checkpoint_epochs=1",
                    "--ema_decay=0.9"]
    train.run(load_config(args + ["--epoch_size=2"]))
    newest = ckpt_io.list_checkpoints(str(out))[-1][1]
    ck = ckpt_io.load_file(newest)
    ck["ema"]["model"]["fc.bias"][0] = float("nan")
    ckpt_io.atomic_save(ck, newest)
    capsys.readouterr()
    train.run(load_config(args + ["--epoch_size=3", "--resume=auto"]))
    log = capsys.readouterr().out
    assert "resume: passed over checkpoint " + newest in log and "ema: NaN or infinite values in 1: fc.bias" in log
    assert "resume: continuing from " + str(out / "mobilenetv1-1_12.ckpt") in log
    assert ckpt_io.load_file(str(out / "mobilenetv1-3_12.ckpt"))["ema"]["updates"] == 36
    # A run that drops the average (ema_decay 0) does not refuse a checkpoint for it.
    capsys.readouterr()
    train.run(load_config(args[:-1] + ["--epoch_size=3", f"--resume={out / 'earlier-run-1' / 'mobilenetv1-2_12.ckpt'}",
                                       f"--save_checkpoint_path={tmp_path / 'dropped'}"]))
    assert "the weight average in" in capsys.readouterr().out


def test_info_does_not_call_a_mindspore_file_of_the_average_trained_weights(ema_run, tmp_path, capsys):
    """convert writes a checkpoint's weight average to a MindSpore .ckpt without a record of it (the format holds
    only tensors): info said "weights: trained" of it. Its trained weights go with their Momentum buffers,
    which a seed run's files hold too: those are trained."""
    _, out, result = ema_run
    path = result["checkpoint"]
    assert cli.main(["convert", path, str(tmp_path / "avg.ckpt")]) == 0
    assert cli.main(["convert", path, str(tmp_path / "raw.ckpt"), "--use_ema", "False"]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "avg.ckpt")]) == 0
    text = capsys.readouterr().out
    assert "weights:        not recorded: a MindSpore .ckpt without Momentum buffers" in text
    assert "weights:        trained" not in text
    assert cli.main(["info", str(tmp_path / "raw.ckpt")]) == 0
    assert "weights:        trained\n" in capsys.readouterr().out


def test_info_of_diverged_trained_weights_beside_a_finite_average_does_not_offer_resume(cifar_dir, tmp_path, capsys):
    """Trained weights with a NaN beside a finite weight average: eval and export take the average, but train
    --resume refuses the file. info said it held the training state --resume continues from."""
    args = SMALL + [f"--dataset_path={cifar_dir}", "--ema_decay=0.9"]
    result = train.run(load_config(args + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'run'}"]))
    run = tmp_path / "diverged"
    run.mkdir()
    path = str(run / "mobilenetv1-1_12.ckpt")
    ck = ckpt_io.load_file(result["checkpoint"])
    ck["model"]["fc.weight"][0, 0] = float("nan")
    torch.save(ck, path)  # as a hand-edited or foreign file would be (atomic_save writes no such file)
    capsys.readouterr()
    assert cli.main(["info", path]) == 0
    text = capsys.readouterr().out
    assert ("resume:         no: its trained weights hold NaN or infinite values, which train --resume refuses "
            "(train --pre_trained FILE starts from its weight average)") in text
    assert "weights:        trained, which hold NaN or infinite values, and their exponential moving average" in text
    assert cli.main(["info", path, "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (described["resumable"], described["nonfinite_tensors"]) == (False, ["trained weights"])
    # What info now says is what train --resume does.
    assert cli.main(["train", *args, "--epoch_size=2", f"--save_checkpoint_path={tmp_path / 'resumed'}",
                     f"--resume={path}"]) == 1
    assert "model: NaN or infinite values in 1: fc.weight" in capsys.readouterr().err
    assert "repair:" not in text and "nonfinite_statistics_only" not in described
    # Its BatchNorm statistics alone not finite (an fp16 run's variance): the command that measures them anew is
    # named, with the trained weights it repairs (the average is what it takes by default).
    ck = ckpt_io.load_file(result["checkpoint"])
    ck["model"]["network.3.1.running_var"][0] = float("inf")
    torch.save(ck, path)
    assert cli.main(["info", path]) == 0
    text = capsys.readouterr().out
    assert ("repair:         its trained weights' NaN or infinite values are BatchNorm statistics alone (an fp16 "
            "run's variance, say): mobilenet-v1 recalibrate-bn FILE --use_ema False --dataset_path DATA --out NEW "
            "measures them anew") in text
    assert cli.main(["info", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["nonfinite_statistics_only"] is True
    # The file it came from: resumable, nothing said of non-finite values.
    assert cli.main(["info", result["checkpoint"], "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["resumable"] is True and "nonfinite_tensors" not in described


def test_info_checks_the_optimizer_state_as_a_resume_does():
    """info's non-finite check of the optimizer state skips its 0-dim tensors (step counters), as
    checkpoint.check_optimizer_state does for train --resume: a NaN step alone kept info from offering a
    resume that would run. Its per-parameter tensors, and the trained weights' scalars too, are checked."""
    nan = float("nan")
    weights = {"fc.weight": torch.zeros(2, 2)}
    state = {"state": {0: {"step": torch.tensor(nan), "momentum_buffer": torch.zeros(2, 2)}}}
    assert info._nonfinite_parts({"model": weights, "optimizer": state}) == []
    state["state"][0]["momentum_buffer"][1, 1] = nan
    assert info._nonfinite_parts({"model": weights, "optimizer": state}) == ["optimizer state"]
    scalar = {"fc.weight": torch.zeros(2, 2), "bn.scale": torch.tensor(float("inf"))}
    assert info._nonfinite_parts({"model": scalar}) == ["trained weights"]


def test_use_ema_false_for_a_file_holding_only_a_moving_average_is_named_as_not_used(ema_run, tmp_path, capsys):
    """convert writes a run's weight average as a file's only weights: eval, convert and predict of that file with
    --use_ema False took the average without a word, where the user asked for the trained weights it does not
    hold (an exported file's --use_ema is named as not used)."""
    cifar_dir, _, result = ema_run
    avg = str(tmp_path / "avg.pt")
    assert cli.main(["convert", result["checkpoint"], avg]) == 0
    capsys.readouterr()
    said = f"weights: not used here: --use_ema False (convert wrote this file's only weights from the exponential " \
           f"moving average of {result['checkpoint']}; it holds no trained weights)"
    evaluate.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", f"--checkpoint_path={avg}", "--use_ema=False"]))
    assert said in capsys.readouterr().err
    evaluate.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", f"--checkpoint_path={avg}"]))
    assert "weights:" not in capsys.readouterr().err  # the default: nothing to choose, nothing said
    assert cli.main(["convert", avg, str(tmp_path / "again.pt"), "--use_ema", "False"]) == 0
    assert said in capsys.readouterr().out
    from mobilenet_v1.predict import load_predictor
    load_predictor(avg, use_ema=False)
    assert said in capsys.readouterr().err
    # average's mean of weight averages alike (helper-244: --use_ema False took it silently).
    mean = str(tmp_path / "mean.pt")
    assert cli.main(["average", result["checkpoint"], avg, "--out", mean]) == 0
    capsys.readouterr()
    evaluate.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", f"--checkpoint_path={mean}", "--use_ema=False"]))
    assert ("weights: not used here: --use_ema False (average wrote this file's only weights as the mean of 2 "
            "checkpoints' exponential moving averages; it holds no trained weights)") in capsys.readouterr().err
    assert load_predictor(mean).weights == "ema"
