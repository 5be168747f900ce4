"""Shipping a model: ONNX export, INT8 quantization, evaluating ONNX files, and predict."""
import csv
import json
import os
import re
import runpy
import shutil
import sys

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, evaluate, recalibrate, train
from mobilenet_v1 import transforms as T
from mobilenet_v1.config import load_config
from mobilenet_v1.data import (CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, BadSampleWarning, DataOptions, build_loader,
                              load_cifar, write_cifar_bin)
from mobilenet_v1.demo import write_demo_data
from mobilenet_v1.export import export_checkpoint
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import OnnxModel, is_onnx_file, x86_without_vnni
from mobilenet_v1.predict import class_names, imagenet_classes, load_predictor
from mobilenet_v1.quantize import calibration_loader, compare_top1

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")

ROOT = os.path.join(os.path.dirname(__file__), "..")


def randomise_batchnorm(model: MobileNetV1, seed: int) -> MobileNetV1:
    """BatchNorm far from its initial values (scales and shifts drawn, statistics measured on random images of
    the sizes the tests use, as recalibrate-bn measures them) and a classifier drawn, scaled to logits of up to
    4 on those images, so that folding BN at export and any numeric slip would show, with logits that follow
    the input. (With statistics drawn at random, ReLU6 left the network's logits the same for every image, so
    a wrong channel order, normalisation, padding or layout passed every comparison of a file with the model.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.momentum = None  # a cumulative average of the batches below
        model.fc.weight.normal_(0, 1, generator=g)
        batches = [torch.randn(8, 3, size, size, generator=g) for size in (32, 40, 48)]
        model.train()
        for batch in batches:
            model(batch)
        model.eval()
        model.fc.weight.mul_(4 / max(model(batch).abs().max() for batch in batches))
        for batch in batches:  # the logits follow the input: a dead network cannot come back unnoticed
            logits = model(batch)
            assert (logits - logits[0]).abs().max() > 0.2 * logits.abs().max(), logits
    return model


def sensitive_model() -> MobileNetV1:
    """A model float32 rounding moves by about 0.1 on logits of about 1 (measured: PyTorch's float32 logits
    0.14 from its float64 ones on export's check batches at 64x64): BatchNorm scales of about 30 keep
    every layer's rounding growing, as a diverged run's do."""
    torch.manual_seed(0)
    model = MobileNetV1(class_num=10, width_mult=0.25).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.fill_(0.01)
                m.weight.normal_(0, 3.0, generator=g)
                m.bias.fill_(3.0)
    return model


def test_a_model_float32_rounding_moves_is_exported_when_the_file_is_as_near_its_float64_logits(tmp_path,
                                                                                                monkeypatch, capsys):
    ckpt = tmp_path / "s.ckpt"
    ckpt_io.atomic_save({"model": sensitive_model().state_dict(), "config": {"dataset": "cifar10", "image_size": 64},
                         "classes": None}, str(ckpt))
    assert cli.main(["export", "--ckpt_file", str(ckpt), "--file_name", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    # PyTorch's own float32 answer is off by more than --atol: ONNX Runtime's sums in another order differ
    # from it by as much, and the file is as near the exact logits as PyTorch is.
    far = re.search(r"float32 rounding moves this model's logits by (\S+) \(PyTorch's float32 against its "
                    r"float64\), the file's by (\S+) \(limit (\S+),", out)
    assert far, out
    torch_far, file_far, limit = (float(v) for v in far.groups())
    assert torch_far > 1e-2 and file_far <= limit == pytest.approx(1e-4 + 4 * torch_far, rel=1e-2)
    assert OnnxModel(str(tmp_path / "s.onnx")).metadata["image_size"] == 64

    # A --atol given is the limit as given.
    before = (tmp_path / "s.onnx").read_bytes()
    assert cli.main(["export", "--ckpt_file", str(ckpt), "--file_name", str(tmp_path / "s"), "--atol", "1e-4"]) == 1
    err = capsys.readouterr().err
    assert "(more than 0.0001)" in err and "from the model's float64 ones, the file's " in err
    assert (tmp_path / "s.onnx").read_bytes() == before

    # Without one, a file wrong by more than rounding is still refused, and the one before it kept.
    real = OnnxModel._run
    monkeypatch.setattr(OnnxModel, "_run", lambda self, x: real(self, x) + 1.0)
    assert cli.main(["export", "--ckpt_file", str(ckpt), "--file_name", str(tmp_path / "s")]) == 1
    err = capsys.readouterr().err
    assert "from the model's float64 ones" in err and "not a faithful export, not written" in err
    assert (tmp_path / "s.onnx").read_bytes() == before


def test_export_matches_pytorch_for_batch_1_and_7(tmp_path):
    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=3)
    ckpt = tmp_path / "m.ckpt"
    # 48x48: stride-2 layers see even sizes (SAME pads 0 before, 1 after) and an odd one (1 and 1).
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 48},
                         "classes": None}, str(ckpt))
    result = export_checkpoint(str(ckpt), str(tmp_path / "m"), batch_size=7)
    assert result["path"] == str(tmp_path / "m.onnx")
    assert (result["height"], result["width"]) == (48, 48)  # the training image_size by default
    assert sorted(result["max_abs_diff"]) == [1, 7]

    import onnx

    graph = onnx.load(result["path"]).graph
    ops = [n.op_type for n in graph.node]
    assert "BatchNormalization" not in ops and ops.count("Conv") == 27  # BN folded before export
    session = OnnxModel(result["path"])
    assert session.fixed_batch is None and session.image_hw == (48, 48)
    assert session.metadata["dataset"] == "cifar10" and session.metadata["image_size"] == 48
    assert "trained_image_size" not in session.metadata  # exported at the size it was trained at
    g = torch.Generator().manual_seed(0)
    for n in (1, 7):
        x = torch.randn(n, 3, 48, 48, generator=g)
        with torch.no_grad():
            expected = model(x)
        got = session(x)
        assert got.shape == (n, 10)
        assert expected.abs().max() > 1.0  # a comparison of real logits, not of near-zeros
        assert (got - expected).abs().max().item() <= 1e-4


def test_static_batch_export_and_its_batches(tmp_path, capsys):
    model = randomise_batchnorm(MobileNetV1(class_num=5, width_mult=0.25, padding="symmetric"), seed=4)
    ckpt = tmp_path / "s.ckpt"
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 5, "width_mult": 0.25,
                                                                       "padding": "symmetric"}}, str(ckpt))
    assert cli.main(["export", "--ckpt_file", str(ckpt), "--file_name", str(tmp_path / "s"), "--height", "40",
                     "--width", "56", "--batch_size", "3", "--static_batch"]) == 0
    assert f"MB, input (3, 3, 40, 56), batch fixed) from {ckpt}" in capsys.readouterr().out
    result = export_checkpoint(str(ckpt), str(tmp_path / "s.onnx"), height=40, width=56, batch_size=3,
                               dynamic_batch=False)
    session = OnnxModel(result["path"])
    assert session.fixed_batch == 3 and session.image_hw == (40, 56)
    assert "image_size" not in session.metadata  # no square size to resize to; the graph says 40x56
    x = torch.randn(5, 3, 40, 56)  # not a multiple of 3: the wrapper pads the last piece
    with torch.no_grad():
        assert (session(x) - model(x)).abs().max().item() <= 1e-4


def saved_checkpoint(tmp_path, model) -> str:
    """``model`` saved as a CIFAR-10 checkpoint trained at 32x32, ``tmp_path``/m.ckpt: its path."""
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    return ckpt


def named_classes_checkpoint(tmp_path, padding: str = "same"):
    """A 10-class CIFAR-style model at 40x40 (BatchNorm randomised: logits that follow the input), its classes
    named c0..c9, saved as ``m.ckpt``: the model and the file's path. ``padding``: the network's (recorded
    where it is not the default)."""
    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25, padding=padding), seed=5)
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 40},
                         "classes": [f"c{i}" for i in range(10)],
                         **({"model_args": {"padding": padding}} if padding != "same" else {})}, ckpt)
    return model, ckpt


def predicted_and_evaluated_as_the_checkpoint(ckpt: str, files, cifar_dir, tmp_path, capsys,
                                              tolerance: float = 1e-5) -> str:
    """Checks that predict gives each exported file (of a 10-class model at 40x40 whose class 3 is "c3")
    the checkpoint's top 3 and probabilities (within ``tolerance``) on an image, and eval its counts, each
    image's top-1 prediction and probability on ``cifar_dir``, naming the file and its format. Returns the
    image's path."""
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(torch.randint(0, 256, (30, 40, 3), dtype=torch.uint8).numpy()).save(image)
    from_ckpt = load_predictor(ckpt).top_k([str(image)], 3)[0]["top_k"]
    for model_file in files:
        predictor = load_predictor(model_file)
        assert predictor.image_size == 40 and predictor.names[3] == "c3"
        got = predictor.top_k([str(image)], 3)[0]["top_k"]
        assert [t["index"] for t in got] == [t["index"] for t in from_ckpt], model_file
        assert all(abs(a["probability"] - b["probability"]) < tolerance for a, b in zip(got, from_ckpt))
    formats = {".ckpt": "checkpoint", ".onnx": "ONNX", ".pt2": "PT2", ".pte": "PTE", ".tflite": "TFLITE"}
    for model_file in [ckpt, *files]:  # eval: the same counts, and each image the same top-1 prediction
        capsys.readouterr()
        rows = tmp_path / "per_image.csv"
        assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", model_file, "--json",
                         "--per_image", str(rows)]) == 0
        counted = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        with open(rows, newline="") as f:
            images = [(r["image"], r["top1"], float(r["top1_probability"])) for r in csv.DictReader(f)]
        rows.unlink()  # the callers check what their exports left in tmp_path
        if model_file == ckpt:
            want, want_images = counted, images
        assert (counted["total"], counted["top_1_accuracy"], counted["top_5_accuracy"]) == \
            (want["total"], want["top_1_accuracy"], want["top_5_accuracy"]), model_file
        # Which file was evaluated, in what format: the name of one need not say (eval reads files by content).
        assert (counted["ckpt"], counted["format"], counted["precision"]) == \
            (model_file, formats[os.path.splitext(model_file)[1]], "fp32")
        assert [r[:2] for r in images] == [r[:2] for r in want_images], model_file
        assert max(abs(a[2] - b[2]) for a, b in zip(images, want_images)) < tolerance, model_file
    return str(image)


def test_pt2_export_is_the_model_as_a_torch_export_program(tmp_path, cifar_dir, capsys):
    """--file_format PT2: the folded network as a torch.export program (.pt2) with our metadata inside,
    loaded back by torch.export.load and equal to the model for any batch; with --image_input it takes
    uint8 pixels (N, H, W, 3). predict runs either program as it runs the checkpoint (so does eval, through
    the same loader). A quantization-aware checkpoint is refused (its forms are the INT8 ONNX and TFLite files), and a
    command that needs a checkpoint names a .pt2 for what it is rather than as a damaged checkpoint."""
    from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, Normalize

    model, ckpt = named_classes_checkpoint(tmp_path)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format", "pt2",
                     "--batch_size", "3"]) == 0
    assert "torch.export.load vs PyTorch, largest logit difference: batch 1:" in capsys.readouterr().out
    extra = {"mobilenet_v1.json": ""}
    program = torch.export.load(str(tmp_path / "m.pt2"), extra_files=extra)
    meta = json.loads(extra["mobilenet_v1.json"])
    assert (meta["dataset"], meta["image_size"], meta["classes"][3]) == ("cifar10", 40, "c3")
    assert not any("batch_norm" in str(node.target) for node in program.graph.nodes)  # folded
    x = torch.randn(5, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = model(x)
        assert want.abs().max() > 1.0 and (program.module()(x) - want).abs().max() <= 1e-4

    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "pixels"), "--file_format", "PT2",
                     "--image_input", "True"]) == 0
    pixels = torch.randint(0, 256, (4, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = torch.export.load(str(tmp_path / "pixels.pt2")).module()(pixels.permute(0, 2, 3, 1).contiguous())
        want = model(Normalize(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"))(pixels))
    assert (got - want).abs().max() <= 1e-4

    qat = MobileNetV1(class_num=10, width_mult=0.25, qat=True)
    ckpt_io.atomic_save({"model": qat.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25, "qat": True},
                         "config": {"dataset": "cifar10", "image_size": 40}}, str(tmp_path / "qat.ckpt"))
    capsys.readouterr()
    assert cli.main(["export", "--ckpt_file", str(tmp_path / "qat.ckpt"), "--file_name", str(tmp_path / "q"),
                     "--file_format", "PT2"]) == 1
    assert "is a quantization-aware checkpoint, whose deployable forms are its INT8 ONNX file" in \
        capsys.readouterr().err
    image = predicted_and_evaluated_as_the_checkpoint(ckpt, [str(tmp_path / n) for n in ("m.pt2", "pixels.pt2")],
                                                      cifar_dir, tmp_path, capsys)
    assert cli.main(["convert", str(tmp_path / "m.pt2"), str(tmp_path / "m.safetensors")]) == 1
    assert "m.pt2: a torch.export program (export --file_format PT2), not a checkpoint" in capsys.readouterr().err
    # torch.export.load unpickles, with code, the entries marked use_pickle (and sample inputs, which our files
    # leave out): a program holding one is refused unread, and one named as a checkpoint is read as one.
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.pt2") as z:
        entries = {name: z.read(name) for name in z.namelist()}
    assert all(not data for name, data in entries.items() if "sample_inputs" in name)  # no pickled batch
    config = next(name for name in entries if name.endswith("_weights_config.json"))
    entries[config] = entries[config].replace(b'"use_pickle": false', b'"use_pickle": true', 1)
    evil = tmp_path / "evil"
    evil.mkdir()
    with zipfile.ZipFile(evil / "m.pt2", "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    assert cli.main(["predict", str(image), "--ckpt_file", str(evil / "m.pt2")]) == 1
    assert "holds pickled data" in capsys.readouterr().err
    shutil.copy(tmp_path / "m.pt2", evil / "m.ckpt")
    assert cli.main(["predict", str(image), "--ckpt_file", str(evil / "m.ckpt")]) == 1
    err = capsys.readouterr().err
    assert "a torch.export program (export --file_format PT2), not a checkpoint" in err
    assert "from a file named .pt2 only" in err and "rename it" in err  # what to do, without a contradiction
    (evil / "cut.pt2").write_bytes((tmp_path / "m.pt2").read_bytes()[:20000])  # a copy cut short
    for argv in (["predict", str(image), "--ckpt_file", str(evil / "cut.pt2")], ["info", str(evil / "cut.pt2")]):
        assert cli.main(argv) == 1
        assert f"{evil / 'cut.pt2'}: not a readable torch.export program (truncated or damaged: " in \
            capsys.readouterr().err, argv
    shutil.rmtree(evil)
    assert sorted(os.listdir(tmp_path)) == ["cifar", "digit.png", "m.ckpt", "m.pt2", "pixels.pt2", "qat.ckpt"]


def test_mindspore_formats_are_refused_with_a_way_out(tmp_path, capsys, monkeypatch):
    for fmt in ("MINDIR", "AIR", "mindir"):
        rc = cli.main(["export", "--ckpt_file", str(tmp_path / "none.ckpt"), "--file_name",
                       str(tmp_path / "out"), "--file_format", fmt])
        err = capsys.readouterr().err
        assert rc == 1
        assert f"--file_format {fmt.upper()}" in err and "MindSpore" in err
        assert "mobilenet-v1 convert" in err and "--file_format ONNX" in err
    assert os.listdir(tmp_path) == []
    # The seed's file sets MINDIR: named as the file's, not as an option nobody typed; a value of no format too.
    seed = os.path.join(ROOT, "tests", "fixtures", "seed", "default_config.yaml")
    assert cli.main(["export", "--config_path", seed, "--ckpt_file", str(tmp_path / "none.ckpt")]) == 1
    assert (f"\nmobilenet-v1 export: error: file_format MINDIR (config file {seed}): MINDIR files are MindSpore's own "
            f"format") in capsys.readouterr().err
    # One config file is read, as train reads one: argparse kept the last, the first dropped without a word.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "--config_path", seed, "--config_path=x.yaml", "--ckpt_file", "x.ckpt"])
    assert exit_.value.code == 2
    assert f"option --config_path is given 2 times ({seed}, x.yaml): one file is read" in capsys.readouterr().err
    (tmp_path / "png.yaml").write_text("file_format: PNG\n")
    assert cli.main(["export", "--config_path", str(tmp_path / "png.yaml"), "--ckpt_file", "x.ckpt"]) == 1
    assert capsys.readouterr().err.startswith(f"mobilenet-v1 export: error: file_format 'PNG' (config file "
                                              f"{tmp_path / 'png.yaml'}): expected ONNX, PTE")
    # The seed's entry point at the repository root says the same (run as __main__ in this process: a Python
    # start that imports torch costs seconds).
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["export.py", "--ckpt_file", "x.ckpt", "--file_name", "x", "--file_format", "AIR"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts src/ in front
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(os.path.join(ROOT, "export.py"), run_name="__main__")
    assert ended.value.code == 1 and "mobilenet-v1 convert" in capsys.readouterr().err


def test_a_mindspore_format_of_a_quantization_aware_checkpoint_says_what_works(tmp_path, capsys):
    """The MINDIR/AIR advice sent a quantization-aware checkpoint to convert, which refuses it: named, the error
    says it has no MindSpore form and what export writes of it instead, as a command that pastes (a folder name
    with a space was two arguments)."""
    run = tmp_path / "my run"
    run.mkdir()
    ckpt = str(run / "mobilenetv1-1_3.ckpt")
    torch.save({"format": ckpt_io.FORMAT, "model": MobileNetV1(4, 0.25, qat=True).state_dict(),
                "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "same", "qat": True}}, ckpt)
    for given in (ckpt, str(run)):  # a run folder: its newest
        assert cli.main(["export", "--ckpt_file", given, "--file_name", str(tmp_path / "out"),
                         "--file_format", "MINDIR"]) == 1
        assert capsys.readouterr().err == (
            f"mobilenet-v1 export: error: --file_format MINDIR: checkpoint {ckpt} is quantization-aware (train --qat "
            f"True), and MindSpore's MINDIR of it cannot be made: 'mobilenet-v1 convert', the way to MindSpore, "
            f"writes float models only and refuses it; its INT8 form is the ONNX file `mobilenet-v1 export "
            f"--ckpt_file '{ckpt}' --file_format ONNX` writes (a float MINDIR: convert the float checkpoint it was "
            f"fine-tuned from, its --pre_trained)\n")
    assert cli.main(["convert", ckpt, str(tmp_path / "m.ckpt")]) == 1  # as the message says
    assert "is quantization-aware" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["my run"]


def test_class_names_for_each_layout(tmp_path, capsys):
    seed_layout = class_names(1001, None, None, False)
    assert seed_layout[0] == "tench (n01440764)" and seed_layout[999] == "toilet tissue (n15075141)"
    assert seed_layout[1000] is None  # the seed's unused logit
    tf_slim = class_names(1001, None, None, True)
    assert tf_slim[0] == "background" and tf_slim[1] == "tench (n01440764)"
    assert class_names(1000, None, None, False)[1] == "goldfish (n01443537)"
    assert class_names(1001, None, None, False, "imagenet2012")[0] == "tench (n01440764)"
    # A CIFAR run of --class_num 1001 was named by ImageNet's classes (helper-259): its outputs' numbers.
    for dataset in ("cifar10", "cifar100"):
        assert class_names(1001, None, None, False, dataset) == [str(i) for i in range(1001)]
    cifar = str(tmp_path / "cifar1001.ckpt")  # predict and a .tflite's labels file take the run's data set
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=1001, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, cifar)
    assert load_predictor(cifar).names[:2] == ["0", "1"]
    from mobilenet_v1.tflite_io import file_labels
    assert file_labels({"class_num": 1001, "dataset": "cifar10"})[:2] == ["0", "1"]
    assert file_labels({"class_num": 1001})[0] == "tench (n01440764)"  # none recorded: the seed's layout
    recorded = class_names(3, ["n01443537", "cats", "dogs"], None, False)
    assert recorded == ["goldfish (n01443537)", "cats", "dogs"]
    # A run's recorded names are its outputs': a background in front would name every output by the class before
    # it (a 1001-output run of 3 folders, or of ImageNet's 1000, took the flag without a word).
    for count, names in ((1001, ["apple", "bird", "cat"]), (1001, [w for w, _ in imagenet_classes()])):
        with pytest.raises(ValueError, match=r"^--background_class: the model file records its class names by "
                                             r"output \((apple, bird, cat|n01440764, .*\.\.\.)\), output 0 its first"):
            class_names(count, names, None, True)
    assert class_names(10, None, "cifar10", False)[3] == "cat"
    assert class_names(4, None, None, False) == ["0", "1", "2", "3"]
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    assert class_names(3, ["a", "b", "c"], str(labels), False) == ["red", "green", "blue"]
    assert capsys.readouterr().err == ""  # names of one's own: nothing said
    # The model's own names in another order (a labels file written by hand): as given, with a warning.
    labels.write_text("dogs\ncats\nbirds\n")
    assert class_names(3, ["birds", "cats", "dogs"], str(labels), False) == ["dogs", "cats", "birds"]
    assert capsys.readouterr().err == (
        f"predict: warning: --labels {labels} holds the class names the model file records, in another order "
        f"(recorded, by output: birds, cats, dogs); output k is named by line k of it as given: leave it out to "
        f"use the recorded names\n")
    class_names(3, ["birds", "cats", "dogs"], ["birds", "cats", "dogs"], False)
    assert capsys.readouterr().err == ""
    labels.write_text("red\ngreen\nblue\n")
    with pytest.raises(ValueError, match=r"labels\.txt: 3 names.*4 outputs"):
        class_names(4, None, str(labels), False)
    labels.write_bytes(b"\xef\xbb\xbfrouge\nvert\nbleu\n")  # UTF-8 with the mark Notepad writes first
    assert class_names(3, None, str(labels), False) == ["rouge", "vert", "bleu"]
    labels.write_bytes(b"\xef\xbb\xbf" + b"x\n" * 5000 + b"z\xe9ro\nun\ndeux\n")  # Latin-1 past a reader's chunk
    with pytest.raises(ValueError, match=r"--labels .*labels\.txt: not UTF-8 text \(byte 10004 is b'\\xe9', line "
                                         r"5001\)"):
        class_names(5003, None, str(labels), False)
    for text, where in (("red\n\nblue\n\n\n", r"\(line 2 is empty\)"), ("a\n \nb\n\t\nc", r"\(line 2, 4 are empty\)"),
                        ("\n\n", r"\(it is empty\)")):  # empty lines at the end are no names, nor an error
        labels.write_text(text)
        with pytest.raises(ValueError, match=r"labels\.txt: expected one non-empty class name per line, in label "
                                             r"order " + where):
            class_names(2, None, str(labels), False)
    # A run with class_num above its folders' count (training notes it): the extra outputs are no label.
    assert class_names(5, ["a", "b", "c"], None, False) == ["a", "b", "c", None, None]
    with pytest.raises(ValueError, match=r"the class names the file records: 4 names.*3 outputs"):
        class_names(3, ["a", "b", "c", "d"], None, False)


def test_predict_background_class_names_a_1001_output_models_outputs_as_tf_slims_layout(tmp_path, capsys):
    """predict --background_class of a 1001-output ImageNet model that records no names: output 0 is
    "background" and output k + 1 ImageNet's class k (TF-slim's layout), where without the flag output k is class
    k and output 1000 no class (the seed's layout)."""
    from PIL import Image

    path = str(tmp_path / "m1001.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=1001, width_mult=0.25).state_dict(),
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    image = tmp_path / "i.png"
    Image.fromarray(torch.randint(0, 256, (32, 32, 3), dtype=torch.uint8,
                                  generator=torch.Generator().manual_seed(0)).numpy()).save(image)
    labels = {}
    for layout, flag in (("seed", []), ("tf_slim", ["--background_class"])):
        assert cli.main(["predict", str(image), "--ckpt_file", path, "--top_k", "1001", "--device_target", "CPU",
                         "--json", *flag]) == 0
        top = json.loads(capsys.readouterr().out)["predictions"][0]["top_k"]
        labels[layout] = {t["index"]: t["label"] for t in top}
    assert len(labels["seed"]) == 1000 and 1000 not in labels["seed"] and len(labels["tf_slim"]) == 1001
    assert labels["tf_slim"][0] == "background" and labels["seed"][0] == "tench (n01440764)"
    assert all(labels["tf_slim"][k + 1] == labels["seed"][k] for k in range(1000))
    # With the background in front, 999 names given are one short of the 1001 outputs: refused, not padded with
    # the seed layout's unused last output.
    with pytest.raises(ValueError, match=r"^labels: 999 names \(and background\), but the model has 1001 outputs$"):
        class_names(1001, None, [f"n{k}" for k in range(999)], True)
    # Names given replace those the file records: the flag then places them after the background.
    assert class_names(4, ["a", "b", "c", "d"], ["x", "y", "z"], True) == ["background", "x", "y", "z"]


# ---------------------------------------------------------------------------------------------------
# a model trained here, on scikit-learn's handwritten digits

DIGITS_SIZE = 48


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A small model trained on the digits (the demo's data set), exported and quantized with the
    commands. About 96% top-1: right on most images but not sure of all of them, so INT8 rounding has
    low-margin predictions to flip (digits are not mirror-symmetric: no flips). Width 0.5, as the demo:
    at 0.25 the per-channel scales and int32 biases weigh too much for a file under a third."""
    root = tmp_path_factory.mktemp("digits")
    data = str(root / "data")
    write_demo_data(data)
    args = [f"--dataset_path={data}", "--class_num=10", "--width_mult=0.5", f"--image_size={DIGITS_SIZE}",
            "--batch_size=32", "--epoch_size=8", "--warmup_epochs=1", "--lr_decay_mode=cosine", "--lr_max=0.1",
            "--random_flip=False", "--device_target=CPU", "--num_workers=0", f"--save_checkpoint_path={root / 'run'}",
            "--save_checkpoint_epochs=8"]
    result = train.run(load_config(args))
    fp32, int8 = str(root / "digits.onnx"), str(root / "digits_int8.onnx")
    assert cli.main(["export", "--ckpt_file", result["checkpoint"], "--file_name", str(root / "digits")]) == 0
    # The INT8 file is run on this CPU: without VNNI, ONNX Runtime's u8 x s8 products saturate with
    # full-range weights (top-1 0.92 against 0.98 fp32 here), which is what --reduce_range is for.
    reduce = ["--reduce_range"] if x86_without_vnni() else []
    assert cli.main(["quantize", "--onnx", fp32, "--calib_data", data, "--out", int8, "--calib_images", "256",
                     *reduce]) == 0
    return {"args": args, "data": data, "ckpt": result["checkpoint"], "fp32": fp32, "int8": int8}


def eval_split(data: str):
    opts = DataOptions(dataset="cifar10", dataset_path=data, batch_size=64, image_size=DIGITS_SIZE, seed=1,
                       num_workers=0, channels_last=False, flip=False, pipeline="cpu")
    return build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False)


def test_eval_at_several_image_sizes_gives_each_what_eval_at_that_size_gives(digits_run, capsys, monkeypatch):
    """--image_size 32,64: a row a size, in the order given, each the figures of --image_size N alone; the
    per-class figures (of one size) and a configuration's eval_image_size are refused, as are other lists."""
    path = digits_run["ckpt"]
    base = ["eval", f"--dataset_path={digits_run['data']}", f"--checkpoint_path={path}", "--num_workers=0"]
    alone = {}
    for size in (32, 64):
        assert cli.main(base + [f"--image_size={size}", "--json"]) == 0
        alone[size] = json.loads(capsys.readouterr().out)
    assert cli.main(base + ["--image_size", "32,64,32", "--json"]) == 0  # a size given twice is evaluated once
    swept = capsys.readouterr()
    said, swept = swept.err, json.loads(swept.out)
    assert swept["ckpt"] == path and [r["image_size"] for r in swept["sizes"]] == [32, 64]
    # The model records 48: said once for the two other sizes, not once each.
    assert said.count(f"is the size {path} was trained at; evaluating at each size asked") == 1, said
    for row in swept["sizes"]:
        one = alone[row["image_size"]]
        assert (row["top_1_accuracy"], row["top_5_accuracy"], row["total"]) == \
            (one["top_1_accuracy"], one["top_5_accuracy"], one["total"]) and row["total"] == 359
    assert len({(r["top_1_accuracy"], r["top_5_accuracy"]) for r in swept["sizes"]}) == 2  # the sizes told apart
    # The table, a row as each size ends (the figures of a stand-in evaluation: the format alone). A note is
    # said as it is written, while its size is being evaluated; the next size's same note not at all.
    canned = iter([{"ckpt": path, "top_1_accuracy": 0.5, "top_5_accuracy": 0.75, "total": 359, "nonfinite": 0},
                   {"ckpt": path, "top_1_accuracy": 0.125, "top_5_accuracy": 1.0, "total": 359, "nonfinite": 0}])
    heard = []

    def stand_in(cfg, dist, given, kept):
        print("a note", file=sys.stderr)
        sys.stderr.write(f"evaluating at {cfg.image_size} as asked")
        sys.stderr.write("\n")
        heard.append(capsys.readouterr())  # what the user has seen while the size is still evaluating
        return next(canned)

    monkeypatch.setattr(evaluate, "_run", stand_in)
    assert cli.main(base + ["--image_size=32,64"]) == 0
    assert [h.err for h in heard] == ["a note\nevaluating at each size asked\n", ""]
    assert "".join([h.out for h in heard] + [capsys.readouterr().out]).splitlines() == [
        path, "image_size   top-1   top-5   images", "        32  0.5000  0.7500      359",
        "        64  0.1250  1.0000      359"]
    monkeypatch.undo()
    for extra, said in ((["--image_size=32,x"], r"option --image_size: '32,x': several sizes are whole numbers"),
                        (["--image_size=32,48", "--per_class"], r"--per_class, --confusion_csv and --per_image are "
                                                                 r"figures of one image size; --image_size gives 2"),
                        (["--image_size=32,48", "--eval_image_size=40"], r"option --eval_image_size: --image_size "
                                                                         r"gives the sizes to evaluate at")):
        assert cli.main(base + extra) == 1
        assert re.search(said, capsys.readouterr().err), extra
    # An exported file of one size: refused before any size is evaluated.
    onnx = ["eval", f"--dataset_path={digits_run['data']}", f"--checkpoint_path={digits_run['fp32']}"]
    assert cli.main(onnx + ["--image_size=48,32"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and f"--image_size 48,32: {digits_run['fp32']} takes 48x48 inputs only" in out.err


def test_eval_at_several_sizes_ends_1_where_a_size_met_outputs_that_are_not_finite(tmp_path, capsys, monkeypatch):
    """As eval at one size does: a size whose outputs were not all finite measured nothing, which the exit
    status says (0 where every size's were). The evaluations are stand-ins: the figures of each size."""
    ckpt = str(tmp_path / "m.ckpt")

    def evaluations(nonfinite):
        return iter([{"ckpt": ckpt, "top_1_accuracy": 0.5, "top_5_accuracy": 0.75, "total": 4, "nonfinite": 0,
                      "format": "checkpoint", "precision": "fp32"},
                     {"ckpt": ckpt, "top_1_accuracy": 0.25, "top_5_accuracy": 0.5, "total": 4, "nonfinite": nonfinite,
                      "format": "checkpoint", "precision": "fp32"}])

    base = [f"--checkpoint_path={ckpt}", f"--dataset_path={tmp_path}", "--device_target=CPU", "--image_size=32,48",
            "--device_id=2", "--enable_profiling=False"]  # the seed's keys: said once, not once a size
    for nonfinite, status in ((0, 0), (1, 1)):
        canned = evaluations(nonfinite)
        monkeypatch.setattr(evaluate, "_run", lambda cfg, dist, given, kept: next(canned))
        assert evaluate.main(base + ["--json"]) == status
        out = capsys.readouterr()
        rows = json.loads(out.out)["sizes"]
        assert [r.get("nonfinite_outputs", 0) for r in rows] == [0, nonfinite]
        assert out.err.count("note: --device_id 2 does not choose the GPU") == 1
        assert out.err.count("ignored seed keys with no meaning here: device_id, enable_profiling\n") == 1
        assert out.err.count("eval: not used here: --device_id, --enable_profiling") == 1


def test_int8_is_small_and_as_accurate_as_fp32(digits_run):
    fp32, int8 = digits_run["fp32"], digits_run["int8"]
    assert os.path.getsize(int8) < os.path.getsize(fp32) / 3
    recorded = OnnxModel(int8).metadata["quantization"]
    assert "per-channel" in recorded and ("7-bit range" in recorded) == x86_without_vnni()

    evaluated = {}

    def top1(path: str) -> float:
        cfg = load_config(digits_run["args"] + [f"--checkpoint_path={path}"])
        evaluated[path] = evaluate.run(cfg)
        return evaluated[path]["top_1_accuracy"]

    acc_ckpt, acc_fp32, acc_int8 = top1(digits_run["ckpt"]), top1(fp32), top1(int8)
    # eval names what it ran: an INT8 file is no fp32 one, whatever its name says.
    assert [(evaluated[p]["format"], evaluated[p]["precision"]) for p in (digits_run["ckpt"], fp32, int8)] == \
        [("checkpoint", "fp32"), ("ONNX", "fp32"), ("ONNX", recorded)]
    assert acc_fp32 > 0.9  # a trained model: the comparison below means something
    assert abs(acc_fp32 - acc_ckpt) <= 1 / 359 + 1e-9  # the fp32 file is the checkpoint (ties aside)
    assert abs(acc_int8 - acc_fp32) <= 0.01
    both = compare_top1(OnnxModel(fp32), OnnxModel(int8), eval_split(digits_run["data"]))
    assert both["images"] == 359
    assert both["reference_top1"] == pytest.approx(acc_fp32) and both["candidate_top1"] == pytest.approx(acc_int8)
    assert both["agreement"] >= 0.99


def test_int8_executorch_program_from_a_pt2_is_small_and_as_accurate_as_fp32(digits_run, tmp_path, capsys):
    """quantize --program: the .pt2 program of the trained model, with a BGR image input, into an INT8
    ExecuTorch program for XNNPACK, quantized behind its normalisation: under a third of the float
    program's size, eval's top-1 within a point of the checkpoint's, and it takes the pixels. The options
    that mean nothing for it are refused."""
    from mobilenet_v1.onnx_io import ExecutorchModel

    pt2, pte = str(tmp_path / "bgr.pt2"), str(tmp_path / "bgr_int8.pte")
    assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", pt2, "--file_format", "PT2",
                     "--image_input", "True", "--pixel_format", "BGR"]) == 0
    assert cli.main(["quantize", "--program", pt2, "--calib_data", digits_run["data"], "--out", pte,
                     "--calib_images", "256"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {pte}" in out and "activation ranges from 256 training images" in out
    assert os.path.getsize(pte) < os.path.getsize(pt2) / 3
    int8 = ExecutorchModel(pte)
    assert int8.image_input and int8.pixel_format == "BGR" and int8.fixed_batch == 1
    assert "XNNPACK quantizer" in int8.metadata["quantization"] and "per-channel" in int8.metadata["quantization"]

    # eval's top-1 of it (the pixels its batches were made from, in BGR) against the checkpoint's, on the
    # same batches (eval of a .pte: tests/test_executorch.py).
    both = compare_top1(load_predictor(digits_run["ckpt"]).model, int8, eval_split(digits_run["data"]))
    assert both["images"] == 359 and both["agreement"] >= 0.98
    assert both["reference_top1"] > 0.9 and abs(both["candidate_top1"] - both["reference_top1"]) <= 0.01

    text = tmp_path / "text.pt2"
    text.write_text("not a program")
    for source, extra, out_name, message in (
            (pt2, ["--reduce_range"], pte, "--reduce_range: is for ONNX Runtime's"),
            (pt2, [], str(tmp_path / "x.onnx"), "name it .pte"),
            (str(text), [], str(tmp_path / "x.pte"), "text.pt2: not a torch.export program")):
        assert cli.main(["quantize", "--program", source, "--calib_data", digits_run["data"], "--out", out_name,
                         *extra]) == 1
        assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["bgr.pt2", "bgr_int8.pte", "text.pt2"]


def test_an_image_input_file_takes_pixels_and_computes_what_the_float_file_does(digits_run, tmp_path, capsys):
    """export --image_input True: the file's input is uint8 RGB pixels (N, H, W, 3), normalised inside,
    and on pixels its logits are the float file's on the same images normalised as our loaders do them;
    eval and predict, which hand ONNX files normalised batches, get the pixels back exactly. quantize
    keeps the image input in front of the INT8 graph it calibrates, which is the float file's INT8 graph."""
    import numpy as np
    import onnxruntime as ort

    from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, Normalize

    stem = str(tmp_path / "digits_image")
    assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", stem, "--image_input", "True"]) == 0
    assert f"input uint8 RGB image (N, {DIGITS_SIZE}, {DIGITS_SIZE}, 3), normalised inside" in capsys.readouterr().out
    pixels = torch.randint(0, 256, (6, 3, DIGITS_SIZE, DIGITS_SIZE), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(5))
    x = Normalize(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"))(pixels)
    nhwc = pixels.permute(0, 2, 3, 1).contiguous().numpy()

    def logits(path, feed):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session, session.run(None, {session.get_inputs()[0].name: feed})[0]

    image_session, got = logits(stem + ".onnx", nhwc)
    _, want = logits(digits_run["fp32"], x.numpy())
    spec = image_session.get_inputs()[0]
    assert (spec.name, spec.type, spec.shape) == ("image", "tensor(uint8)", ["batch", DIGITS_SIZE, DIGITS_SIZE, 3])
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    model = OnnxModel(stem + ".onnx")
    assert model.image_input and model.image_hw == (DIGITS_SIZE, DIGITS_SIZE)
    assert np.array_equal(model.pixels(x).numpy(), nhwc)  # what eval and predict feed it: the pixels, exactly
    assert evaluate.run(load_config(digits_run["args"] + [f"--checkpoint_path={stem}.onnx"]))["top_1_accuracy"] == \
        evaluate.run(load_config(digits_run["args"] + [f"--checkpoint_path={digits_run['fp32']}"]))["top_1_accuracy"]

    int8 = str(tmp_path / "digits_image_int8.onnx")
    reduce = ["--reduce_range"] if x86_without_vnni() else []  # as digits_run's INT8 file
    assert cli.main(["quantize", "--onnx", stem + ".onnx", "--calib_data", digits_run["data"], "--out", int8,
                     "--calib_images", "256", *reduce]) == 0
    int8_session, got = logits(int8, nhwc)
    _, want = logits(digits_run["int8"], x.numpy())
    assert int8_session.get_inputs()[0].type == "tensor(uint8)"
    assert "normalised inside" in OnnxModel(int8).metadata["input"] and OnnxModel(int8).metadata["quantization"]
    assert np.abs(got - want).mean() <= 1e-3 * np.abs(want).mean()  # the same INT8 graph behind the pixels


def test_an_image_input_takes_bgr_and_four_channel_pixels_as_the_rgb_file_takes_its_own(digits_run, tmp_path, capsys):
    """--pixel_format BGR (OpenCV's frames), RGBA and BGRA (Android's and Apple's bitmaps): fed the same
    images in its own layout, each file gives the RGB file's logits exactly (the same graph behind one
    Gather), whatever the alpha holds; eval (through DeployedModel.pixels) gets the RGB file's top-1, and
    quantize keeps the format in front of the INT8 graph. A .pt2 program takes them the same way."""
    import numpy as np
    import onnxruntime as ort

    def run(path, feed):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return session.get_inputs()[0], session.run(None, {session.get_inputs()[0].name: feed})[0]

    rgb_stem = str(tmp_path / "rgb")
    assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", rgb_stem,
                     "--image_input", "True"]) == 0
    rgb = torch.randint(0, 256, (5, DIGITS_SIZE, DIGITS_SIZE, 3), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(7))
    alpha = torch.randint(0, 256, (5, DIGITS_SIZE, DIGITS_SIZE, 1), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(8))
    _, want = run(rgb_stem + ".onnx", rgb.numpy())
    layouts = {"BGR": rgb.flip(-1), "RGBA": torch.cat([rgb, alpha], -1), "BGRA": torch.cat([rgb.flip(-1), alpha], -1)}
    top1 = evaluate.run(load_config(digits_run["args"] + [f"--checkpoint_path={rgb_stem}.onnx"]))["top_1_accuracy"]
    for fmt, pixels in layouts.items():
        stem = str(tmp_path / fmt.lower())
        capsys.readouterr()
        assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", stem, "--image_input", "True",
                         "--pixel_format", fmt.lower()]) == 0
        assert f"input uint8 {fmt} image (N, {DIGITS_SIZE}, {DIGITS_SIZE}, {len(fmt)})" in capsys.readouterr().out
        spec, got = run(stem + ".onnx", pixels.contiguous().numpy())
        assert spec.shape == ["batch", DIGITS_SIZE, DIGITS_SIZE, len(fmt)] and np.array_equal(got, want), fmt
        model = OnnxModel(stem + ".onnx")
        assert (model.pixel_format, model.metadata["pixel_format"]) == (fmt, fmt)
        assert fmt in model.metadata["input"]
        assert evaluate.run(load_config(digits_run["args"] + [f"--checkpoint_path={stem}.onnx"]))[
            "top_1_accuracy"] == top1, fmt
    # quantize: the INT8 graph behind a BGRA input, which takes BGRA pixels (the INT8 RGB file's logits).
    reduce = ["--reduce_range"] if x86_without_vnni() else []
    for fmt in ("RGB", "BGRA"):
        assert cli.main(["quantize", "--onnx", str(tmp_path / f"{fmt.lower()}.onnx"), "--calib_data",
                         digits_run["data"], "--out", str(tmp_path / f"{fmt.lower()}_int8.onnx"),
                         "--calib_images", "64", *reduce]) == 0
    spec, got = run(str(tmp_path / "bgra_int8.onnx"), layouts["BGRA"].contiguous().numpy())
    _, want_int8 = run(str(tmp_path / "rgb_int8.onnx"), rgb.numpy())
    assert spec.shape[-1] == 4 and OnnxModel(str(tmp_path / "bgra_int8.onnx")).pixel_format == "BGRA"
    assert np.array_equal(got, want_int8)
    # A .pt2 program with a BGR input.
    assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", str(tmp_path / "bgr"),
                     "--file_format", "PT2", "--image_input", "True", "--pixel_format", "BGR"]) == 0
    with torch.no_grad():
        got = torch.export.load(str(tmp_path / "bgr.pt2")).module()(layouts["BGR"].contiguous())
    assert (got - torch.from_numpy(want)).abs().max() <= 1e-4
    # Refused: a pixel format without an image input, and one that does not exist.
    capsys.readouterr()
    assert cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--file_name", str(tmp_path / "x"),
                     "--pixel_format", "BGR"]) == 1
    assert "--pixel_format BGR: is the image input's (--image_input True)" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(SystemExit):
        cli.main(["export", "--ckpt_file", digits_run["ckpt"], "--image_input", "True", "--pixel_format", "ARGB"])


def test_quantize_names_a_truncated_program_as_cut_short_and_writes_nothing(tmp_path, cifar_dir, capsys):
    """A .pt2 copied in part is a program cut short, not "not a torch.export program" (which sent its user to
    export one first), as eval says of it; nothing is written."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    pt2 = export_checkpoint(ckpt, str(tmp_path / "m"), file_format="PT2")["path"]
    cut = tmp_path / "cut.pt2"
    with open(pt2, "rb") as f:
        cut.write_bytes(f.read()[: os.path.getsize(pt2) // 2])
    out = tmp_path / "cut_int8.pte"
    assert cli.main(["quantize", "--program", str(cut), "--calib_data", str(cifar_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{cut}: not a readable torch.export program (truncated or damaged: cut short" in err, err
    assert "export it again" in err and not out.exists()


def test_eval_reads_onnx_by_content_and_checks_its_input_size(digits_run, tmp_path):
    renamed = tmp_path / "model.bin"
    shutil.copy(digits_run["fp32"], renamed)
    assert is_onnx_file(str(renamed)) and not is_onnx_file(digits_run["ckpt"])
    cfg = load_config(digits_run["args"] + [f"--checkpoint_path={renamed}"])
    assert evaluate.run(cfg)["total"] == 359
    cfg = load_config(digits_run["args"] + [f"--checkpoint_path={renamed}", "--image_size=64"])
    with pytest.raises(ValueError, match=rf"takes {DIGITS_SIZE}x{DIGITS_SIZE} inputs.*--image_size {DIGITS_SIZE}"):
        evaluate.run(cfg)


def test_a_recorded_size_that_is_no_size_counts_as_none_and_bad_metadata_names_the_file(digits_run, tmp_path,
                                                                                         capsys):
    """A checkpoint's recorded image_size that is not a positive int (hand-edited, foreign) is taken as not
    recorded by every command alike: predict's default 224, eval its configuration's size without a note,
    recalibrate-bn asks for --image_size (predict had fed -1 to the resize, and taken "48" and 40.0 as sizes,
    where eval ignored them). An ONNX entry that does not decode is refused naming the file and the entry."""
    import onnx

    from mobilenet_v1.checkpoint import recorded_image_size

    base = ckpt_io.load_file(digits_run["ckpt"])
    cfg = load_config(digits_run["args"])
    for recorded in ("48", -1, 0, 40.0, True, None):
        odd = str(tmp_path / "odd.ckpt")
        ckpt_io.atomic_save({**base, "config": {**base["config"], "image_size": recorded}}, odd)
        assert recorded_image_size(ckpt_io.load_file(odd)["config"]) is None
        assert load_predictor(odd).image_size == 224, recorded
        assert evaluate.trained_size(cfg, ckpt_io.load_file(odd), odd, set()) is cfg
        with pytest.raises(ValueError, match=f"{odd} does not record the image size.*--image_size"):
            recalibrate.run(odd, str(tmp_path / "r.ckpt"), digits_run["data"])
    # eval says so where the file records a value (five of the six: not None), predict and recalibrate-bn not
    assert capsys.readouterr().err.count("which is no image size; evaluating at") == 5
    ckpt_io.atomic_save({**base, "config": ["not", "a", "configuration"]}, odd)
    assert ckpt_io.load_file(odd)["config"] == {} and load_predictor(odd, dataset="cifar10").image_size == 224
    assert recorded_image_size({"image_size": DIGITS_SIZE}) == DIGITS_SIZE

    for entry, value, kind in (("image_size", "1.5", "a positive integer"), ("image_size", "-3", "a positive integer"),
                               ("width_mult", "wide", "a positive number"), ("width_mult", "inf", "a positive number"),
                               ("mean", "[0.5, 0.5", "a JSON list of three finite numbers"),
                               ("std", "[0.2, 0, 0.2]", "a JSON list of three positive numbers"),
                               # (were read as False and as bilinear: resized otherwise than the run, unsaid)
                               ("antialias", "maybe", "True or False"),
                               ("interpolation", "lanczos", "bilinear or bicubic")):
        proto = onnx.load(digits_run["fp32"])
        for prop in proto.metadata_props:
            if prop.key == entry:
                prop.value = value
        if entry not in {prop.key for prop in proto.metadata_props}:  # (a CIFAR run's file records no antialias)
            proto.metadata_props.add(key=entry, value=value)
        bad = str(tmp_path / f"bad_{entry}.onnx")
        onnx.save(proto, bad)
        assert cli.main(["predict", digits_run["fp32"], "--ckpt_file", bad]) == 1
        assert f"ONNX file {bad}: its metadata entry {entry} {value!r} is not {kind}" in capsys.readouterr().err


def test_info_says_what_a_checkpoint_and_its_exported_files_hold(digits_run, tmp_path, capsys):
    """info FILE: a run folder's newest checkpoint (network, size, data, how far trained, resumable), one
    with a weight average, an evaluation and recalibrated BatchNorm but no optimizer state, and the run's
    fp32 and INT8 ONNX files (input, batch, weights, multiply-adds at the size they take); options that do
    not fit the file and files that are no model are refused naming them."""
    from mobilenet_v1.info import count_macs

    run = os.path.dirname(digits_run["ckpt"])
    assert cli.main(["info", run, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    model = MobileNetV1(class_num=10, width_mult=0.5)
    macs = count_macs(0.5, DIGITS_SIZE, 10)
    assert got["file"] == digits_run["ckpt"] and got["newest_in"] == run and got["format"].startswith("mobilenet-v1")
    assert (got["width_mult"], got["class_num"], got["image_size"], got["dataset"]) == (0.5, 10, DIGITS_SIZE, "cifar10")
    assert got["params"] == sum(p.numel() for p in model.parameters()) and got["macs"] == macs
    assert got["training"]["epoch"] == got["training"]["epochs"] == 8 and got["training"]["steps_per_epoch"] == 44
    assert got["training"]["step"] == 8 * 44 and got["resumable"] is True
    assert got["weight_average"] is None and got["evaluated"] is None and got["quantization_aware"] is False

    base = ckpt_io.load_file(digits_run["ckpt"])
    # A checkpoint of the first versions records no steps_per_epoch: train --resume continues it with its own
    # count, and info read it as no training state, sending it to --pre_trained (helper-326).
    first = str(tmp_path / "first.ckpt")
    torch.save({k: v for k, v in base.items() if k not in ("steps_per_epoch", "step_in_epoch")}, first)
    assert cli.main(["info", first, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["resumable"] is True and got["training"]["steps_per_epoch"] == 44
    other = str(tmp_path / "other.ckpt")
    ckpt_io.atomic_save({**{k: v for k, v in base.items() if k != "optimizer"},
                         "ema": {"model": base["model"], "decay": 0.999, "updates": 352},
                         "metrics": {"top_1": 0.75, "top_5": 0.97, "eval_images": 359},
                         "config": {**base["config"], "image_size": 40,
                                    "bn_recalibration": {"images": 300, "image_size": 40, "trained_at": 48}}}, other)
    assert cli.main(["info", other]) == 0
    text = capsys.readouterr().out
    assert f"multiply-adds:  {count_macs(0.5, 40, 10):,}" in text and "top-1 0.7500, top-5 0.9700 (359 images)" in text
    assert "(ema_decay 0.999, updates 352)" in text
    assert "anew (recalibrate-bn) at 40 on 300 images, trained at 48" in text
    assert "resume:         no training state: weights only" in text
    # A run whose rates lr_base_size scaled says the rate it trained at (it said the configured one alone).
    for rule, scaled in (("linear", "0.05"), ("sqrt", "0.0707107")):  # a step of 32 images, lr_base_size 64
        ckpt_io.atomic_save({**base, "config": {**base["config"], "lr_base_size": 64, "lr_base_scale": rule}}, other)
        assert cli.main(["info", other]) == 0
        assert f"lr_max 0.1 (scaled to {scaled}: lr_base_size 64)" in capsys.readouterr().out

    for path, weights in ((digits_run["fp32"], "fp32"), (digits_run["int8"], "INT8")):
        assert cli.main(["info", path, "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["kind"] == "ONNX file" and got["input"] == f"float (N, 3, {DIGITS_SIZE}, {DIGITS_SIZE})"
        assert got["batch"] is None and got["weights"].startswith(weights) and got["macs"] == macs
        assert got["bytes"] == os.path.getsize(path) and got["metadata"]["dataset"] == "cifar10"
    assert cli.main(["info", digits_run["fp32"], "--image_size", "96"]) == 1
    assert f"--image_size 96: {digits_run['fp32']} takes {DIGITS_SIZE}x{DIGITS_SIZE} inputs only" in \
        capsys.readouterr().err
    # A graph whose output is not (N, K) logits has no class count to say (helper-118: "8 classes" of an 8x8 map).
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    add = helper.make_graph([helper.make_node("Add", ["input", "one"], ["output"])], "add", [image],
                            [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])],
                            [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    onnx.save(helper.make_model(add, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "add.onnx"))
    assert cli.main(["info", str(tmp_path / "add.onnx")]) == 0
    assert "output:         not known" in capsys.readouterr().out
    # eval, predict and quantize refuse it (tracebacks, or "top-1 1100.00%" from quantize's check).
    from PIL import Image

    Image.new("RGB", (8, 8), (90, 120, 30)).save(tmp_path / "one.png")
    for command in (["eval", "--checkpoint_path", str(tmp_path / "add.onnx"), "--dataset_path", digits_run["data"]],
                    ["predict", str(tmp_path / "one.png"), "--ckpt_file", str(tmp_path / "add.onnx")],
                    ["quantize", "--onnx", str(tmp_path / "add.onnx"), "--calib_data", digits_run["data"], "--out",
                     str(tmp_path / "add_int8.onnx"), "--dataset", "cifar10"]):
        assert cli.main(command) == 1
        assert (f"ONNX file {tmp_path / 'add.onnx'}: its output has 4 dimensions, not a classifier's (N, classes)"
                in capsys.readouterr().err), command[0]
    assert not (tmp_path / "add_int8.onnx").exists()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all")
    assert cli.main(["info", str(junk)]) == 1
    assert f"checkpoint {junk}: neither a PyTorch checkpoint" in capsys.readouterr().err
    assert cli.main(["info", str(tmp_path / "missing.ckpt")]) == 1
    assert "missing.ckpt: no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["info", run, "--width_mult", "0.25"])
    assert "--width_mult: with FILE the network is the file's" in capsys.readouterr().err


def test_info_on_hand_edited_checkpoints_leaves_out_what_is_not_a_value_and_claims_no_resume(digits_run, tmp_path,
                                                                                            capsys):
    """A foreign or hand-edited checkpoint's entries that are not what mobilenet-v1 writes there (tensors,
    bytes, strings for counts, a partial evaluation) are left out of info's description, in text and in
    strict JSON, where they gave tracebacks; a file whose format or position is not ours is not said to
    resume."""
    base = ckpt_io.load_file(digits_run["ckpt"])
    config = base["config"]
    edits = {"classes": 5, "moments": torch.zeros(3), "step": torch.tensor(352),
             "ema": {"model": base["model"], "decay": torch.tensor(0.999)},
             "config": {**config, "lr_max": b"0.1", "bn_recalibration": {"trained_at": torch.tensor(3)}},
             "nonfinite": {"total": torch.tensor(3)}, "metrics": {"top_5": 0.99, "top_1": "high"}}

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    odd = str(tmp_path / "odd.ckpt")
    for key, value in edits.items():
        torch.save({**base, key: value}, odd)
        assert cli.main(["info", odd]) == 0, key
        text = capsys.readouterr().out
        assert cli.main(["info", odd, "--json"]) == 0, key
        got = json.loads(capsys.readouterr().out, parse_constant=refuse)
        assert got["width_mult"] == 0.5 and "tensor" not in text and "None" not in text, (key, text)
    assert got["evaluated"] == {"top_5": 0.99} and "top-5 0.9900" in text and "top-1" not in text
    for key, value in (("format", "other"), ("epoch", "8")):
        torch.save({**base, key: value}, odd)
        assert cli.main(["info", odd, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["resumable"] is False, key
    with pytest.raises(ckpt_io.CheckpointError, match="format 'other'"):  # what --resume says of it
        ckpt_io.validate_training_checkpoint({**base, "format": "other"}, odd,
                                             MobileNetV1(class_num=10, width_mult=0.5),
                                             torch.optim.SGD(MobileNetV1(class_num=10, width_mult=0.5).parameters(),
                                                             lr=0.1, momentum=0.9), 44)


def test_predict_gives_the_trained_classes(digits_run, tmp_path, capsys):
    from PIL import Image

    images, labels = load_cifar(digits_run["data"], train=False)
    paths = []
    for i in range(20):
        path = tmp_path / f"digit_{i}.png"
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(path)
        paths.append(str(path))
    expected = labels[:20]
    # What the evaluation pipeline predicts for the same images.
    model = load_predictor(digits_run["ckpt"]).model
    x, _ = next(iter(eval_split(digits_run["data"])))
    with torch.no_grad():
        eval_pred = model(x[:20]).argmax(1)

    for source in (digits_run["ckpt"], digits_run["int8"]):
        assert cli.main(["predict", *paths, "--ckpt_file", source, "--top_k", "3", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["dataset"] == "cifar10" and out["image_size"] == DIGITS_SIZE
        got = torch.tensor([p["top_k"][0]["index"] for p in out["predictions"]])
        assert [p["image"] for p in out["predictions"]] == paths
        assert (got == expected).float().mean() >= 0.9
        if source == digits_run["ckpt"]:
            assert torch.equal(got, eval_pred)  # a 32x32 file goes through exactly the eval transform
        for p in out["predictions"]:
            probs = [t["probability"] for t in p["top_k"]]
            assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
            assert p["top_k"][0]["label"] == str(p["top_k"][0]["index"])

    # A photo-sized, non-square copy of a digit is centre-cropped and shrunk to the model's view of it.
    big = tmp_path / "big.jpg"
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).resize((128, 96)).save(big, quality=95)
    assert cli.main(["predict", str(big), "--ckpt_file", digits_run["fp32"]]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == str(big) and len(text) == 6
    # An exported file holds the weights chosen at export: --use_ema is named as not used, not ignored.
    assert cli.main(["predict", str(big), "--ckpt_file", digits_run["fp32"], "--use_ema", "False"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines() == text and "predict: not used here: --use_ema" in out.err
    assert cli.main(["predict", str(tmp_path / "missing.png"), "--ckpt_file", digits_run["ckpt"]]) == 1
    assert "missing.png: no such file" in capsys.readouterr().err
    # An ONNX file runs in ONNX Runtime on the CPU: asking for the GPU is an error that says so.
    assert cli.main(["predict", str(big), "--ckpt_file", digits_run["fp32"], "--device_target", "GPU"]) == 1
    assert "is an exported file, which runs on the CPU here" in capsys.readouterr().err
    for bad in (["--batch_size", "0"], ["--num_workers", "-2"]):
        with pytest.raises(SystemExit):
            cli.main(["predict", str(big), "--ckpt_file", digits_run["ckpt"], *bad])
        assert bad[0] in capsys.readouterr().err
    with pytest.raises(ValueError, match="--crop_pct 0.5: .* CIFAR-10's evaluation transform"):
        load_predictor(digits_run["ckpt"], crop_pct=0.5)  # a CIFAR-10 model's transform has no crop


def test_predict_from_a_model_with_nan_weights_says_so_and_writes_strict_json(digits_run, tmp_path, capsys):
    """An exported file whose weights hold NaN (a foreign or damaged one: checkpoints with NaN are refused
    at loading) gives NaN for every class: predict names the model and the images on stderr and exits 1,
    and its JSON (stdout and --out) has null for those probabilities, not Python's NaN token, which strict
    parsers refuse."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from PIL import Image

    proto = onnx.load(digits_run["fp32"])
    bias = next(t for t in proto.graph.initializer if t.name == "fc.bias")
    bias.CopyFrom(numpy_helper.from_array(np.full(10, np.nan, np.float32), "fc.bias"))
    bad = str(tmp_path / "nan.onnx")
    onnx.save(proto, bad)
    image = str(tmp_path / "x.png")
    Image.new("RGB", (40, 40), (90, 140, 30)).save(image)

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    out = str(tmp_path / "p.json")
    for extra in (["--json"], ["--out", out]):
        assert cli.main(["predict", image, "--ckpt_file", bad, "--top_k", "2", *extra]) == 1
        captured = capsys.readouterr()
        assert f"{bad} gives outputs that are not finite (NaN or infinite) for 1 of 1 image(s), {image}" in \
            captured.err
        text = captured.out if extra == ["--json"] else open(out).read()
        got = json.loads(text, parse_constant=refuse)["predictions"][0]
        assert [t["probability"] for t in got["top_k"]] == [None, None] and got["nonfinite"] is True
    assert load_predictor(bad).top_k([image], 2)[0]["nonfinite"] is True  # the API says so too
    assert cli.main(["predict", image, "--ckpt_file", digits_run["fp32"], "--json"]) == 0  # the file before
    captured = capsys.readouterr()
    assert "not finite" not in captured.err and "nonfinite" not in captured.out
    # eval counts the images whose outputs are not finite (its top-1 would otherwise pass for a measurement)
    args = [a for a in digits_run["args"] if not a.startswith("--save_checkpoint")]
    assert cli.main(["eval", *args, f"--checkpoint_path={bad}", "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out, parse_constant=refuse)["nonfinite_outputs"] == 359
    assert f"warning: {bad} gave outputs that are not finite (NaN or infinite) for 359 of 359 images" in captured.err
    assert cli.main(["eval", *args, f"--checkpoint_path={digits_run['fp32']}", "--json"]) == 0
    assert "nonfinite_outputs" not in capsys.readouterr().out


def test_predict_over_folders_writes_a_results_file_and_skips_unreadable_files(digits_run, tmp_path, capsys):
    """A folder stands for its image files (recursively, sorted; other files and hidden ones left out).
    A corrupt image is listed with its error and the exit status is 1, but every other image is still
    predicted, alike to naming the files one by one."""
    from PIL import Image

    images, _ = load_cifar(digits_run["data"], train=False)
    folder = tmp_path / "photos"
    (folder / "b").mkdir(parents=True)
    (folder / ".cache").mkdir()
    names = ["a1.png", "a0.png", "b/c.png", "b/d.jpg"]
    for i, name in enumerate(names):
        Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(folder / name, quality=95)
    (folder / "notes.txt").write_text("not an image")
    (folder / "b" / "text.png").write_text("no image format at all")  # PIL's message named its buffer's address
    (folder / ".hidden.png").write_bytes(b"")
    (folder / ".cache" / "x.png").write_bytes(b"")
    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    elsewhere = tmp_path / "elsewhere"  # reached through a link, as training's folder walk does
    elsewhere.mkdir()
    Image.fromarray(images[4].permute(1, 2, 0).numpy()).save(elsewhere / "e.png")
    (folder / "link").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(folder, target_is_directory=True)  # read once, not forever
    expected_order = [str(folder / n) for n in ("a0.png", "a1.png", "b/broken.jpg", "b/c.png", "b/d.jpg",
                                                "b/text.png", "link/e.png")]

    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--top_k", "2", "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [p["image"] for p in out["predictions"]] == expected_order
    broken, text = out["predictions"][2], out["predictions"][5]
    # PIL's own message held its buffer's address: a results file would differ from run to run.
    assert text["error"] == f"{folder / 'b' / 'text.png'}: not a readable image (no image format recognised)"
    assert "top_k" not in broken and broken["error"].startswith(f"{folder / 'b' / 'broken.jpg'}: not a readable image")
    assert "2 of 7 image file(s) could not be read or decoded (the others were predicted)" in captured.err
    assert cli.main(["predict", str(folder / "b" / "text.png"), "--ckpt_file", digits_run["ckpt"]]) == 1
    assert "1 of 1 image file(s) could not be read or decoded: " in capsys.readouterr().err  # no "others"
    assert captured.err.count("broken.jpg") == 1  # named once
    # Loader workers reading the files, in batches of 2 (an error inside a batch, one at a batch's end),
    # give the same list: order, errors, classes (probabilities to float rounding of another batch size).
    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--top_k", "2", "--json",
                     "--num_workers", "2", "--batch_size", "2", "--device_target", "CPU"]) == 1
    workers = json.loads(capsys.readouterr().out)["predictions"]
    assert [{k: v for k, v in p.items() if k != "top_k"} for p in workers] == \
        [{k: v for k, v in p.items() if k != "top_k"} for p in out["predictions"]]
    for a, b in zip(workers, out["predictions"]):
        assert [t["index"] for t in a.get("top_k", [])] == [t["index"] for t in b.get("top_k", [])]
        assert [t["probability"] for t in a.get("top_k", [])] == \
            pytest.approx([t["probability"] for t in b.get("top_k", [])], abs=1e-5)
    one_by_one = [str(folder / n) for n in ("a0.png", "a1.png", "b/c.png", "b/d.jpg", "link/e.png")]
    # A file named twice (here also inside the folder) is predicted once.
    assert cli.main(["predict", *one_by_one, one_by_one[0], "--ckpt_file", digits_run["ckpt"], "--top_k", "2",
                     "--json"]) == 0
    single = json.loads(capsys.readouterr().out)["predictions"]
    assert [p["image"] for p in single] == one_by_one
    assert [p for p in out["predictions"] if "top_k" in p] == single

    csv_path = tmp_path / "results.csv"
    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--top_k", "2",
                     "--out", str(csv_path)]) == 1
    assert "5 image(s) predicted" in capsys.readouterr().out
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "image,label_1,probability_1,index_1,label_2,probability_2,index_2,error"
    cells = [r.split(",") for r in rows[1:]]
    assert [c[0] for c in cells] == expected_order
    for c, p in zip([c for c in cells if not c[-1]], single):
        assert [int(c[3]), int(c[6])] == [t["index"] for t in p["top_k"]]
        assert float(c[2]) == pytest.approx(p["top_k"][0]["probability"], abs=1e-6)
    assert cells[2][1:7] == [""] * 6 and cells[2][-1] and cells[5][-1]
    json_path = tmp_path / "results.json"
    assert cli.main(["predict", *one_by_one, "--ckpt_file", digits_run["ckpt"], "--top_k", "2",
                     "--out", str(json_path)]) == 0
    assert json.loads(json_path.read_text())["predictions"] == single
    capsys.readouterr()
    # A file name that is not UTF-8 (Latin-1 "café"): the CSV holds its bytes as the folder has them.
    latin = tmp_path / "latin"
    latin.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    os.link(folder / "a0.png", latin / name)
    assert cli.main(["predict", str(latin), "--ckpt_file", digits_run["ckpt"], "--out", str(csv_path)]) == 0
    assert csv_path.read_bytes().splitlines()[1].startswith(os.fsencode(str(latin / name)) + b",")
    # Files of one folder linked to each other are files of their own, a row each, as training counts them
    # (helper-111: the link's row stood for both); a path spelt two ways is still one file.
    (latin / "link.png").symlink_to(latin / name)
    capsys.readouterr()
    assert cli.main(["predict", str(latin), os.path.join(str(latin), "..", latin.name, "link.png"), "--ckpt_file",
                     digits_run["ckpt"], "--json"]) == 0
    assert [p["image"] for p in json.loads(capsys.readouterr().out)["predictions"]] == \
        [str(latin / name), str(latin / "link.png")]
    # Every file unreadable: the same columns, an error each.
    assert cli.main(["predict", str(folder / "b" / "broken.jpg"), "--ckpt_file", digits_run["ckpt"], "--top_k", "2",
                     "--out", str(csv_path)]) == 1
    assert csv_path.read_text().splitlines()[0] == rows[0]
    capsys.readouterr()
    # Refused before anything runs: another extension, --json beside --out, a folder for a file, a
    # folder that is not there, one without images.
    with pytest.raises(SystemExit) as exit_:
        cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--out", str(csv_path), "--json"])
    assert exit_.value.code == 2 and "give one of the two" in capsys.readouterr().err
    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--out", str(tmp_path / "r.txt")]) == 1
    assert "r.txt: name it .csv or .json" in capsys.readouterr().err
    (tmp_path / "dir.csv").mkdir()
    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--out", str(tmp_path / "dir.csv")]) == 1
    assert "is a folder" in capsys.readouterr().err
    # Into the folder of images it reads, or over a training checkpoint named .csv (helper-119: written).
    shutil.copy(digits_run["ckpt"], tmp_path / "ckpt.csv")
    for out, message in ((folder / "r.csv", f"is inside {folder}, the data this command reads"),
                         (tmp_path / "ckpt.csv", "is a training checkpoint")):
        assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--out", str(out)]) == 1
        assert message in capsys.readouterr().err
    assert not (folder / "r.csv").exists() and open(tmp_path / "ckpt.csv", "rb").read() == \
        open(digits_run["ckpt"], "rb").read()
    # A folder not there yet is made, as every command's output's (it was "nowhere is not a folder"; helper-329).
    assert cli.main(["predict", str(folder), "--ckpt_file", digits_run["ckpt"], "--out",
                     str(tmp_path / "nowhere" / "r.csv")]) == 1  # 1: the folder's unreadable images, listed
    capsys.readouterr()
    assert (tmp_path / "nowhere" / "r.csv").read_text().startswith("image,")
    (tmp_path / "empty").mkdir()
    assert cli.main(["predict", str(tmp_path / "empty"), "--ckpt_file", digits_run["ckpt"]]) == 1
    assert "empty: no image files" in capsys.readouterr().err


def test_a_failed_check_leaves_an_earlier_file_untouched(tmp_path, capsys):
    """The ONNX file is checked under a temporary name and renamed only once it passes."""
    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=5)
    ckpt = saved_checkpoint(tmp_path, model)
    keep = tmp_path / "keep.onnx"
    keep.write_bytes(b"an earlier, good export")
    # Logits of order 1-10 through 27 layers: float rounding alone is far above 1e-12.
    rc = cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "keep"), "--atol", "1e-12"])
    assert rc == 1
    assert keep.read_bytes() == b"an earlier, good export"
    assert sorted(os.listdir(tmp_path)) == ["keep.onnx", "m.ckpt"]  # no temporary file left behind
    err = capsys.readouterr().err
    assert "not a faithful export" in err and "keep.onnx is left as it was" in err


def test_a_failed_export_leaves_no_folder_or_temporary_file_it_made(tmp_path, monkeypatch, capsys):
    """A failure once the export began writing (its check over the limit; the runtime that checks it failing)
    into a folder it made: the folder stayed behind, empty. Nothing it made stays; a file of that name already
    there is left as it was."""
    from mobilenet_v1 import export

    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    old = tmp_path / "old"
    old.mkdir()
    (old / "m.onnx").write_bytes(b"an earlier export")
    with monkeypatch.context() as m:
        m.setattr(export, "max_difference", lambda *a, **k: ({1: 0.5, 2: 0.5}, 3.0))
        m.setattr(export, "float64_distances", lambda *a, **k: (1e-5, 0.5))
        for folder in (tmp_path / "new" / "sub", old):
            assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(folder / "m")]) == 1
            assert "not a faithful export, not written" in capsys.readouterr().err

    def broken(path):
        raise RuntimeError("the runtime crashed")

    monkeypatch.setattr(export, "OnnxModel", broken)
    with pytest.raises(RuntimeError, match="the runtime crashed"):
        export_checkpoint(ckpt, str(tmp_path / "new" / "m"))
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt", "old"]
    assert os.listdir(old) == ["m.onnx"] and (old / "m.onnx").read_bytes() == b"an earlier export"


def stale_and_live_temporaries(folder) -> list:
    """In ``folder``: what a killed export left (a temporary file with its work folder), one of another file
    of export's kinds, and names export does not take for its own (training's, no random part, a folder, a
    link); and a temporary file a live export holds (its lock, taken through a file of this process's own).
    Returns the open file holding the lock."""
    import fcntl

    (folder / ".m.onnx.k3j_x9a1.tmp").write_bytes(b"half a file")
    (folder / ".m.onnx.k3j_x9a1.tmp.d").mkdir()
    (folder / ".m.onnx.k3j_x9a1.tmp.d" / "prepared.onnx").write_bytes(b"")
    (folder / ".x.pte.aaaabbbb.tmp").write_bytes(b"")
    (folder / ".x.ONNX.ccccdddd.tmp").write_bytes(b"")  # export --file_name x.ONNX keeps the name
    for name in (".mobilenetv1-1_2.ckpt.abcd1234.tmp", ".m.onnx.tmp", "m.onnx.abcd1234.tmp"):
        (folder / name).write_bytes(b"not export's")
    (folder / ".y.onnx.abcd1234.tmp").mkdir()
    os.symlink(folder / "missing", folder / ".z.onnx.abcd1234.tmp")
    (folder / ".m.onnx.live1234.tmp").write_bytes(b"being written")
    live = open(folder / ".m.onnx.live1234.tmp", "rb")
    fcntl.flock(live.fileno(), fcntl.LOCK_EX)
    return live


LEFT_ALONE = [".m.onnx.live1234.tmp", ".m.onnx.tmp", ".mobilenetv1-1_2.ckpt.abcd1234.tmp", ".y.onnx.abcd1234.tmp",
              ".z.onnx.abcd1234.tmp", "m.onnx.abcd1234.tmp"]


def test_export_removes_what_a_killed_export_left_and_nothing_a_live_one_writes(tmp_path, capsys):
    """A kill -9 inside an export leaves its hidden temporary file (and the work folder of a quantization-aware
    one): the next export into the folder removes those of its kinds whose writer ended (their lock free), and
    says so; one a live process writes stays, as does any other name."""
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    out = tmp_path / "out"
    out.mkdir()
    live = stale_and_live_temporaries(out)
    try:
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(out / "m")]) == 0
        err = capsys.readouterr().err
        assert (f"note: removed 3 temporary files that an interrupted export or quantize left in {out} (never a "
                f"finished file): .m.onnx.k3j_x9a1.tmp, .x.ONNX.ccccdddd.tmp, .x.pte.aaaabbbb.tmp") in err, err
        assert sorted(os.listdir(out)) == sorted(LEFT_ALONE + ["m.onnx"])
    finally:
        live.close()


def test_a_killed_exports_file_this_user_may_not_remove_is_left_and_the_export_goes_on(tmp_path, monkeypatch,
                                                                                        capsys):
    """What another user's killed export left in a shared folder with the sticky bit (/tmp), writable by all but
    not removable by this user (EPERM): the export into the folder failed on it, "Operation not permitted" of
    a file it had not asked to write; it is left, unsaid, and the export writes its own file."""
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    out = tmp_path / "shared"
    out.mkdir()
    theirs = out / ".m.onnx.k3j_x9a1.tmp"
    theirs.write_bytes(b"half a file")
    unlink = os.unlink

    def sticky(path, *args, **kwargs):  # the kernel's answer to a file of another user in a sticky folder
        if os.fspath(path) == str(theirs):
            raise PermissionError(1, "Operation not permitted", os.fspath(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", sticky)
    assert ckpt_io.remove_partial_files(str(out), ckpt_io.DEPLOYED_PARTIALS, held=False) == []
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(out / "mine")]) == 0
    assert "removed" not in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [theirs.name, "mine.onnx"] and theirs.read_bytes() == b"half a file"
    with pytest.raises(PermissionError):  # a run's own folder (held): said, as before (train: cannot write there)
        ckpt_io.remove_partial_files(str(out), ckpt_io.DEPLOYED_PARTIALS, held=True)


def test_a_failed_quantize_leaves_no_file_and_removes_what_a_killed_one_left(cifar_dir, tmp_path, monkeypatch,
                                                                            capsys):
    """The INT8 file is compared with the float one under its temporary name: a comparison that failed (an
    image unreadable on its second reading) had already put it over an earlier file of that name, and the
    calibration's errors left an empty folder made for it. What a killed export or quantize left goes first."""
    from mobilenet_v1 import quantize
    from mobilenet_v1.data import DataError

    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    fp32 = export_checkpoint(ckpt, str(tmp_path / "m"))["path"]
    out = tmp_path / "int8"
    out.mkdir()
    (out / "m.onnx").write_bytes(b"an earlier INT8 file")
    live = stale_and_live_temporaries(out)

    def unreadable(*args, **kwargs):
        raise DataError(f"dataset_path {cifar_dir}: an image could not be read")

    monkeypatch.setattr(quantize, "compare_top1", unreadable)
    try:
        for dst in (out / "m.onnx", tmp_path / "new" / "q.onnx"):
            assert cli.main(["quantize", "--onnx", fp32, "--calib_data", str(cifar_dir), "--out", str(dst),
                             "--calib_images", "8", "--num_workers", "0"]) == 1
            assert capsys.readouterr().err.endswith(f"error: --calib_data {cifar_dir}: an image could not be read\n")
            assert (out / "m.onnx").read_bytes() == b"an earlier INT8 file"
        assert sorted(os.listdir(out)) == sorted(LEFT_ALONE + ["m.onnx"])
    finally:
        live.close()
    assert sorted(os.listdir(tmp_path)) == ["cifar", "int8", "m.ckpt", "m.onnx"]


def test_export_sizes_below_1_are_refused_naming_the_option(tmp_path, capsys):
    """0 or a negative size is a mistake, not a request for the default (batch 1, the training size)."""
    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    for flags, named in ((["--batch_size", "0"], "--batch_size 0"), (["--height", "0"], "--height 0"),
                         (["--width", "-3"], "--width -3"), (["--batch_size=-1", "--height=0"], "--height 0")):
        rc = cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), *flags])
        err = capsys.readouterr().err
        assert rc == 1, flags
        assert err.startswith("mobilenet-v1 export: error: ") and named in err and "at least 1" in err, err
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_export_at_another_size_says_so_and_records_it_and_outputs_are_checked_first(tmp_path, capsys):
    """Exported at 40 a model trained at 32: said on stderr, the metadata's image_size is the file's (an app
    resizes to it) with trained_image_size beside it. A --file_name that ends in a separator (it wrote a
    hidden ".onnx" in the folder) or names a folder as the file, and a quantize --out that is not .onnx (a
    typo wrote INT8 ONNX over a checkpoint) are refused before anything is written; a foreign file with a
    grey input is refused when loaded."""
    import onnx
    from onnx import TensorProto, helper

    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m40"), "--height", "40",
                     "--width", "40"]) == 0
    assert f"image_size 32 is the size {ckpt} was trained at; {tmp_path / 'm40.onnx'} takes 40x40" \
        in capsys.readouterr().err
    meta = OnnxModel(str(tmp_path / "m40.onnx")).metadata
    assert (meta["image_size"], meta["trained_image_size"]) == (40, 32)
    # Another shape than a square: for an app, not for eval or recalibrate-bn (which take squares), said so.
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m32x40"), "--height", "32",
                     "--width", "40"]) == 0
    said = capsys.readouterr().err
    assert "takes 32x40 as asked; eval, predict, quantize and recalibrate-bn take square sizes only" in said
    assert "recalibrate-bn` measures" not in said
    with pytest.raises(ValueError, match=r"^--image_size 32: .*m32x40\.onnx takes 32x40 inputs only$"):
        OnnxModel(str(tmp_path / "m32x40.onnx")).check_size(32)  # its height alone is not its size
    (tmp_path / "out").mkdir()
    (tmp_path / "taken.onnx").mkdir()
    # The name suggested is in the folder that is in the way (not in a "taken" folder that does not exist).
    for name, shown, folder in ((str(tmp_path / "out") + os.sep, str(tmp_path / "out") + os.sep, tmp_path / "out"),
                                (os.path.join(str(tmp_path / "out"), "."), os.path.join(str(tmp_path / "out"), "."),
                                 os.path.join(str(tmp_path / "out"), ".")),
                                (str(tmp_path / "taken"), f"{tmp_path / 'taken'} ({tmp_path / 'taken.onnx'})",
                                 tmp_path / "taken.onnx"),
                                (str(tmp_path / "taken.onnx"), str(tmp_path / "taken.onnx"), tmp_path / "taken.onnx")):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", name]) == 1
        assert (f"--file_name {shown}: is a folder; name the file to write (say "
                f"{os.path.join(str(folder), 'mobilenetv1')})") in capsys.readouterr().err
    assert os.listdir(tmp_path / "out") == [] and os.listdir(tmp_path / "taken.onnx") == []
    # A folder named as the stem is no obstacle: the file is out.pt2 beside it (helper-120: refused).
    # A run's config.yaml as --config_path: its batch_size is training's and its width and height the
    # defaults 224, which the file took "as asked" (helper-119); the file takes the trained size, batch 1.
    from mobilenet_v1.config import dump_yaml

    run_config = tmp_path / "config.yaml"
    run_config.write_text(dump_yaml(load_config(["--image_size=32", "--batch_size=9"])))
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "out"), "--file_format", "PT2",
                     "--config_path", str(run_config)]) == 0
    assert (f"{run_config} is a run's configuration: its batch_size 9, width 224, height 224 are not export's, not "
            f"taken") in capsys.readouterr().err
    assert os.path.isfile(tmp_path / "out.pt2") and os.listdir(tmp_path / "out") == []
    from mobilenet_v1.onnx_io import ProgramModel

    assert ProgramModel(str(tmp_path / "out.pt2")).input_shape[1:] == [3, 32, 32]
    # ... one an earlier version wrote too, which holds fewer keys (one added since was enough to take its 224 as
    # asked; helper-326): its first version's 43 keys, here the newest's first 43.
    text = run_config.read_text().splitlines(keepends=True)
    run_config.write_text("".join(text[:43]))
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "older"), "--file_format", "PT2",
                     "--config_path", str(run_config)]) == 0
    assert "is a run's configuration" in capsys.readouterr().err
    assert ProgramModel(str(tmp_path / "older.pt2")).input_shape[1:] == [3, 32, 32]
    before = open(ckpt, "rb").read()
    assert cli.main(["quantize", "--onnx", str(tmp_path / "m40.onnx"), "--calib_data", str(tmp_path / "out"),
                     "--out", ckpt]) == 1
    assert f"--out {ckpt}: name it .onnx" in capsys.readouterr().err and open(ckpt, "rb").read() == before
    assert cli.main(["convert", str(tmp_path / "m40.onnx"), str(tmp_path / "back.pt")]) == 1
    assert "m40.onnx: an ONNX model (what export writes), not a checkpoint" in capsys.readouterr().err
    grey = helper.make_model(helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["logits"])], "grey",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1])]),
        opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(grey, str(tmp_path / "grey.onnx"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"grey\.onnx: its input has 1 colour channel\(s\), where "
                                                      r"\(N, 3, H, W\) RGB images are expected"):
        OnnxModel(str(tmp_path / "grey.onnx"))


def test_a_run_config_given_to_export_names_the_size_the_file_takes(tmp_path, capsys):
    """A run that trained at 32 and evaluated at 48 (eval_image_size), exported with its config.yaml: the file
    takes 48, the size its checkpoint records for evaluation, as README says; the note said it took "the size its
    checkpoint was trained at", 32, which it did not."""
    from mobilenet_v1.config import dump_yaml
    from mobilenet_v1.onnx_io import ProgramModel

    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(),
                         "config": {"dataset": "cifar10", "image_size": 32, "eval_image_size": 48}}, ckpt)
    run_config = tmp_path / "config.yaml"
    run_config.write_text(dump_yaml(load_config(["--image_size=32", "--eval_image_size=48"])))
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "out"), "--file_format", "PT2",
                     "--config_path", str(run_config)]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert ("not taken (the file takes the size its checkpoint records for evaluation: eval_image_size where its "
            "run set one, else the one it was trained or recalibrated at;") in said
    assert "was trained at;" not in said
    assert ProgramModel(str(tmp_path / "out.pt2")).input_shape[1:] == [3, 48, 48]


def test_export_atol_must_be_finite_and_not_negative(tmp_path, capsys):
    """A negative or NaN --atol fails every export and infinity checks nothing: refused by the parser (exit 2)
    before the checkpoint is read or anything written; so is a --qat_rtol that is no share (0, 1, NaN)."""
    from mobilenet_v1.export import ExportError

    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    for flags in (["--atol", "-0.5"], ["--atol=-1e-4"], ["--atol", "nan"], ["--atol", "inf"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), *flags])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, flags
        assert "mobilenet-v1 export: error: --atol must be a finite number >= 0" in err, err
    for flags in (["--qat_rtol", "0"], ["--qat_rtol", "1"], ["--qat_rtol", "nan"]):  # a share of the mean logit
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), *flags])
        assert exit_info.value.code == 2, flags
        assert "error: --qat_rtol must be a share of the mean logit above 0 and below 1" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["m.ckpt"]
    # A float checkpoint's file is checked within --atol: --qat_rtol is said not to be used.
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--qat_rtol", "0.02"]) == 0
    assert "--qat_rtol 0.02 is not used" in capsys.readouterr().err
    os.remove(tmp_path / "m.onnx")
    for atol in (-1e-4, float("nan"), float("inf")):  # from Python, as from the command line
        with pytest.raises(ExportError, match=rf"^atol {re.escape(f'{atol:g}')}: must be a finite number >= 0$"):
            export_checkpoint(str(tmp_path / "missing.ckpt"), str(tmp_path / "m"), atol=atol)
    # One too large to make failed in torch.randn with a traceback (a config file's width: 99999999999999999999999).
    for size, said in (({"height": 10 ** 23}, f"--height {10 ** 23}: at most 65,536 (no device holds an image "
                                               f"larger)"),
                       ({"batch_size": 2 ** 20 + 1}, f"--batch_size {2 ** 20 + 1}: at most 1,048,576 (no device "
                                                     f"holds a batch of more images)")):
        with pytest.raises(ExportError, match=rf"^{re.escape(said)}$"):
            export_checkpoint(ckpt, str(tmp_path / "m"), **size)
    # A size given as text ("32") failed in a comparison, naming neither the option nor the value.
    for size, said in (({"height": "32"}, "--height '32'"), ({"batch_size": 2.0}, "--batch_size 2.0"),
                       ({"width": True}, "--width True")):
        with pytest.raises(ExportError, match=rf"^{re.escape(said)}: must be a whole number$"):
            export_checkpoint(ckpt, str(tmp_path / "m"), **size)
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_loading_and_exporting_leave_the_callers_random_state_as_it_was(tmp_path):
    """load_model built the network's initial weights (then overwritten) and export traced a batch drawn from
    torch's global generator: a caller's seeded run drew other numbers after loading a model than without."""
    import mobilenet_v1

    ckpt = saved_checkpoint(tmp_path, MobileNetV1(class_num=4, width_mult=0.25))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    mobilenet_v1.load_model(ckpt)
    load_predictor(ckpt)
    export_checkpoint(ckpt, str(tmp_path / "m"))
    export_checkpoint(ckpt, str(tmp_path / "p"), file_format="PT2", image_input=True)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_file_name_ending_in_the_formats_extension_in_capitals_is_written_as_named(tmp_path):
    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    assert export_checkpoint(ckpt, str(tmp_path / "M.ONNX"))["path"] == str(tmp_path / "M.ONNX")
    assert sorted(os.listdir(tmp_path)) == ["M.ONNX", "m.ckpt"]


def test_export_config_file_values_are_read_as_their_keys_are(tmp_path, monkeypatch, capsys):
    """A config file's export keys: `file_name: 0123` (YAML's octal 83) failed with an AttributeError traceback
    (an int has no .lower), `width: 32.7` exported at 32 without a word, and an empty --config_path (a variable
    unset) exported from the flags alone."""
    from mobilenet_v1 import export

    seen = {}

    def stop(ckpt_file, file_name, height, width, batch_size, **kwargs):
        seen.update(ckpt_file=ckpt_file, file_name=file_name, height=height, width=width, batch_size=batch_size)
        asked.update(dataset=kwargs.get("dataset"), dataset_from=kwargs.get("dataset_from"))
        raise export.ExportError("stopped before exporting")

    asked = {}

    monkeypatch.setattr(export, "export_checkpoint", stop)
    f = tmp_path / "e.yaml"
    f.write_text("ckpt_file: 2024\nfile_name: 0123\nwidth: 40\nheight: 32\nbatch_size: 2\n")
    assert cli.main(["export", "--config_path", str(f)]) == 1
    assert seen == {"ckpt_file": "2024", "file_name": "0123", "height": 32, "width": 40, "batch_size": 2}
    assert asked == {"dataset": None, "dataset_from": ""}
    # Its dataset (the seed's files name theirs): the normalisation a file records where the checkpoint does not
    # say (a MindSpore .ckpt); it was guessed from the class count. --dataset still wins.
    f.write_text("ckpt_file: m.ckpt\ndataset: imagenet2012\n")
    assert cli.main(["export", "--config_path", str(f)]) == 1
    assert asked == {"dataset": "imagenet2012", "dataset_from": f"config file {f}"}
    assert cli.main(["export", "--config_path", str(f), "--dataset", "cifar10"]) == 1
    assert asked == {"dataset": "cifar10", "dataset_from": ""}
    f.write_text("ckpt_file: m.ckpt\ndataset: mnist\n")
    assert cli.main(["export", "--config_path", str(f)]) == 1
    assert (f"mobilenet-v1 export: error: dataset 'mnist' (config file {f}): expected one of cifar10, cifar100, "
            f"imagenet2012") in capsys.readouterr().err
    seen.clear()
    for text, said in (("width: 32.7\n", "width must be int, got 32.7"),
                       ("batch_size: true\n", "batch_size must be int, got True"),
                       ("file_name: [a, b]\n", "file_name must be str, got ['a', 'b']"),
                       ("file_fromat: TFLITE\n", "unknown key 'file_fromat'"),  # a typo went unused
                       ("---\n---\nfile_fromat: [ONNX]\n", "unknown key 'file_fromat'")):  # as train refuses it
        f.write_text("ckpt_file: m.ckpt\n" + text)
        assert cli.main(["export", "--config_path", str(f)]) == 1
        assert f"mobilenet-v1 export: error: config file {f}: {said}" in capsys.readouterr().err
    for empty in (["--config_path="], ["--config_path", " "]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["export", "--ckpt_file", "m.ckpt", *empty])
        assert exit_info.value.code == 2
        assert "--config_path is empty: give a YAML file" in capsys.readouterr().err
    assert seen == {}


def test_static_batch_calibration_uses_whole_batches_and_says_how_many(cifar_dir, tmp_path, capsys, monkeypatch):
    """A graph exported with a static batch takes only whole batches: --calib_images is rounded up to them
    (a note says so), calibration and the fp32/INT8 comparison see the same images, and the counts printed
    and recorded are those used. A dynamic batch takes the count as asked."""
    import onnx

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    ckpt = saved_checkpoint(tmp_path, model)
    static = export_checkpoint(ckpt, str(tmp_path / "static"), batch_size=10, dynamic_batch=False)["path"]
    dynamic = export_checkpoint(ckpt, str(tmp_path / "dynamic"))["path"]

    def quantize(onnx_path, images, *flags):
        out = str(tmp_path / f"int8_{images}_{os.path.basename(onnx_path)}")
        rc = cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(cifar_dir), "--out", out,
                       "--calib_images", str(images), "--num_workers", "0", *flags])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        recorded = {p.key: p.value for p in onnx.load(out).metadata_props}["quantization"]
        return captured.out, captured.err, recorded

    monkeypatch.setattr("mobilenet_v1.quantize.x86_without_vnni", lambda: False)  # the no-VNNI note: below
    out, err, recorded = quantize(static, 15)
    assert f"{static} takes batches of exactly 10 images" in err
    assert "calibrating on 20 images, --calib_images 15 rounded up to 2 whole batches" in err
    assert "activation ranges from 20 training images" in out and "on those 20 images:" in out
    assert recorded.endswith("min/max over 20 images")
    # The data set (192 training images) holds 19 whole batches: all of them, for both steps.
    out, err, recorded = quantize(static, 245)
    assert "rounded up to 25 whole batches" in err
    assert (f"{cifar_dir} gave 190 training images of the 250 of --calib_images 245 in whole batches: all it has in "
            f"whole batches") in err
    assert "activation ranges from 190 training images" in out and "on those 190 images:" in out
    assert recorded.endswith("min/max over 190 images")
    # Fewer training images than one batch: none to calibrate on, said as such (ONNX Runtime's words were
    # "No data is collected."), and nothing written.
    few_dir = tmp_path / "few"
    shutil.copytree(cifar_dir / CIFAR_EVAL_FOLDER, few_dir / CIFAR_EVAL_FOLDER)
    (few_dir / CIFAR_TRAIN_FOLDER).mkdir()
    x, y = load_cifar(str(cifar_dir), True)
    write_cifar_bin(str(few_dir / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"), x[:6].numpy(), y[:6].numpy())
    short = str(tmp_path / "short.onnx")
    assert cli.main(["quantize", "--onnx", static, "--calib_data", str(few_dir), "--out", short,
                     "--num_workers", "0"]) == 1
    assert capsys.readouterr().err.endswith(
        f"error: --calib_data {few_dir}: no calibration images were read: its training split has fewer readable "
        f"images than one batch of the 10 {static} takes exactly (exported with --static_batch); export it with a "
        f"smaller --batch_size, or calibrate on more images\n")
    assert not os.path.exists(short)
    out, err, recorded = quantize(dynamic, 15)
    few = "mobilenet-v1 quantize: warning: activation ranges from only {} images: what other images reach"
    assert err.startswith(few.format(15)) and err.count("\n") == 1  # so few: said, and nothing else
    assert "activation ranges from 15 training images" in out and "on those 15 images:" in out
    assert recorded.endswith("min/max over 15 images")
    monkeypatch.setattr("mobilenet_v1.quantize.x86_without_vnni", lambda: True)
    out, err, recorded = quantize(dynamic, 16)
    assert "this x86 CPU has no VNNI" in err and "wants --reduce_range" in err and "7-bit" not in recorded
    out, err, recorded = quantize(dynamic, 17, "--reduce_range")
    assert err.startswith(few.format(17)) and err.count("\n") == 1
    assert "int8 weights (7-bit range), uint8 activations" in recorded
    # eval and predict of a full-range INT8 file on such a CPU say so; of a 7-bit one, or an fp32 one, not.
    monkeypatch.setattr("mobilenet_v1.onnx_io.x86_without_vnni", lambda: True)
    for name, noted in (("int8_16_dynamic.onnx", True), ("int8_17_dynamic.onnx", False), (dynamic, False)):
        path = str(tmp_path / name)
        result = evaluate.run(load_config([f"--dataset_path={cifar_dir}", f"--checkpoint_path={path}",
                                           "--image_size=32", "--class_num=4", "--num_workers=0"]))
        assert result["total"] == 40
        load_predictor(path)
        err = capsys.readouterr().err
        assert err.count("has no VNNI: ONNX Runtime's integer kernels saturate") == (2 if noted else 0), (name, err)
        assert ("quantize --reduce_range" in err) == noted


def test_quantize_names_an_output_with_spaces_as_one_argument_of_its_eval_command(cifar_dir, tmp_path, capsys,
                                                                                  exported_once):
    """The eval command quantize prints for the INT8 file is pasted into a shell: a name with spaces (and
    non-ASCII letters) is quoted, so the command reads the file written."""
    import shlex

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    ckpt = saved_checkpoint(tmp_path, model)
    fp32 = export_checkpoint(ckpt, str(tmp_path / "my model"))["path"]
    out = str(tmp_path / "my model é int8.onnx")
    assert cli.main(["quantize", "--onnx", fp32, "--calib_data", str(cifar_dir), "--out", out, "--calib_images", "8",
                     "--num_workers", "0"]) == 0
    said = capsys.readouterr().out
    command = re.search(r"`(mobilenet-v1 eval [^`]*)`", said)
    assert command, said
    argv = shlex.split(command.group(1))
    assert argv[argv.index("--checkpoint_path") + 1] == out and os.path.isfile(out)


def test_quantize_warns_of_an_int8_file_that_often_picks_another_class(cifar_dir, tmp_path, capsys, monkeypatch,
                                                                        exported_once):
    """--per_tensor's one weight scale a tensor can round most channels of a depthwise layer to 0 (top-1 7.7%
    against 77%, exit 0 without a word: helper-385). Agreement under 90% on 50 images or more is warned of, naming
    per-channel scales where --per_tensor was given; on fewer, chance could explain it, and nothing is said. The
    agreement is set here (a random network's classes tell nothing)."""
    from mobilenet_v1 import quantize

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    fp32 = export_checkpoint(saved_checkpoint(tmp_path, model), str(tmp_path / "m"))["path"]
    for images, agreement, options, said in (
            (64, 0.5, ["--per_tensor"], "agrees with the fp32 one on only 50.00% of 64 calibration images: one "
                                        "weight scale a tensor (--per_tensor) rounds to 0 most channels"),
            (64, 0.5, [], "agrees with the fp32 one on only 50.00% of 64 calibration images: check it with eval"),
            (64, 0.95, ["--per_tensor"], None), (40, 0.5, ["--per_tensor"], None)):
        monkeypatch.setattr(quantize, "compare_top1", lambda *a, **k: {"images": images, "reference_top1": 0.77,
                                                                        "candidate_top1": 0.08,
                                                                        "agreement": agreement})
        assert cli.main(["quantize", "--onnx", fp32, "--calib_data", str(cifar_dir), "--out",
                         str(tmp_path / "q.onnx"), "--calib_images", "8", "--num_workers", "0", *options]) == 0
        err = capsys.readouterr().err
        assert (said in err) if said else ("agrees with the fp32 one" not in err), (images, agreement, err)


def test_quantize_file_leaves_out_the_batches_a_static_batch_graph_cannot_take(tmp_path):
    """quantize_file takes batches from any caller: for a graph exported with a static batch of 2, a batch of 3
    among them is left out (ONNX Runtime refuses it), and the count recorded is that of the images used."""
    import onnx

    from mobilenet_v1.quantize import quantize_file

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    ckpt = saved_checkpoint(tmp_path, model)
    static = export_checkpoint(ckpt, str(tmp_path / "static"), batch_size=2, dynamic_batch=False)["path"]
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(n, 3, 32, 32, generator=g), torch.zeros(n, dtype=torch.long)) for n in (2, 3, 2)]
    result = quantize_file(static, str(tmp_path / "int8.onnx"), batches)
    assert result["calib_images"] == 4
    recorded = {p.key: p.value for p in onnx.load(str(tmp_path / "int8.onnx")).metadata_props}["quantization"]
    assert recorded.endswith("min/max over 4 images")


def test_quantize_makes_onnx_runtimes_scratch_copies_in_its_work_folder(tmp_path, monkeypatch):
    """ONNX Runtime's quantizer copies the model into temporary folders of its own (pre.quant.*, ort.quant.*, the
    calibration graph among them): made in TMPDIR, those a kill -9 (the out-of-memory killer, in calibration)
    left stayed there for good, where no later command looks. They are made in the work folder beside the
    output's temporary file, which the next export or quantize into that folder removes; TMPDIR is left as it was,
    and so is tempfile's setting."""
    import tempfile

    from mobilenet_v1.quantize import quantize_file

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    fp32 = export_checkpoint(saved_checkpoint(tmp_path, model), str(tmp_path / "m"))["path"]
    system_tmp = tmp_path / "system_tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    made = []
    real = tempfile.mkdtemp

    def recorded(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", recorded)
    out = tmp_path / "q" / "int8.onnx"
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(2, 3, 32, 32, generator=g), torch.zeros(2, dtype=torch.long))]
    quantize_file(fp32, str(out), batches)
    assert made, "ONNX Runtime made no temporary folder: the test no longer sees what it checks"
    for path in made:
        work = os.path.dirname(path)
        assert work.endswith(".tmp.d") and os.path.dirname(work) == str(out.parent), made
    assert os.listdir(system_tmp) == [] and tempfile.tempdir == str(system_tmp)
    assert sorted(os.listdir(out.parent)) == ["int8.onnx"]


def test_a_foreign_onnx_file_whose_output_is_not_n_by_classes_is_refused(tmp_path):
    """An ONNX file taking (N, 3, H, W) whose output is (N,) (one score an image, no classes) is no classifier:
    eval, predict and quantize would index class scores that are not there."""
    import onnx
    from onnx import TensorProto, helper

    from mobilenet_v1.checkpoint import CheckpointError

    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2, 3], keepdims=0)], "foreign",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])])
    path = str(tmp_path / "foreign.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(CheckpointError, match=r"its output has 1 dimensions, not a classifier's \(N, classes\)"):
        OnnxModel(path).check_classifier()


def test_an_onnx_file_whose_name_is_not_utf8_loads(tmp_path):
    """ONNX Runtime takes a path as UTF-8 text: a name os.fsdecode holds as surrogates (bytes that are not UTF-8;
    any name not ASCII under LC_ALL=C with PYTHONUTF8=0, export's own included) was refused, "ONNX Runtime cannot
    load it (TypeError: __init__(): incompatible constructor arguments ...)"."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)], "pool",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    path = os.path.join(str(tmp_path), os.fsdecode(b"caf\xe9.onnx"))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    OnnxModel(path).check_classifier()


def test_write_metadata_replaces_a_keys_earlier_value_and_keeps_the_others():
    import onnx

    from mobilenet_v1.onnx_io import read_metadata, write_metadata

    proto = onnx.ModelProto()
    write_metadata(proto, {"dataset": "cifar10", "classes": ["cat", "dog"], "crop_pct": None})
    write_metadata(proto, {"dataset": "imagenet2012", "image_size": 224})
    assert [(p.key, p.value) for p in proto.metadata_props] == [
        ("classes", '["cat", "dog"]'), ("dataset", "imagenet2012"), ("image_size", "224")]
    assert read_metadata({p.key: p.value for p in proto.metadata_props}) == {
        "dataset": "imagenet2012", "image_size": 224, "classes": ["cat", "dog"]}


def test_metadata_of_a_size_or_width_of_0_or_a_true_or_number_among_values_or_names_is_refused_naming_the_entry():
    """A size, class count or width of 0 is none (predict resized to 0 pixels, info counted 0 classes), JSON's
    true among mean's or std's values is no number (Python reads it as 1), and a number among the class names is
    no name: each refused, naming its entry, as a negative size is; the smallest values that are sizes and channel
    values still read."""
    from mobilenet_v1.onnx_io import read_metadata

    for entry, value, kind in (("image_size", "0", "a positive integer"), ("class_num", "0", "a positive integer"),
                               ("trained_image_size", "0", "a positive integer"),
                               ("width_mult", "0", "a positive number"), ("crop_pct", "0.0", "a positive number"),
                               ("mean", "[true, 0.5, 0.5]", "a JSON list of three finite numbers"),
                               ("std", "[0.2, true, 0.2]", "a JSON list of three positive numbers"),
                               ("classes", '["cat", 7]', "a JSON list of names")):
        with pytest.raises(ValueError, match=f"^its metadata entry {entry} {re.escape(repr(value))} is not {kind}$"):
            read_metadata({entry: value})
    assert read_metadata({"image_size": "1", "class_num": "1", "width_mult": "0.25", "mean": "[0, 0.5, 1]",
                          "std": "[1, 1, 1]"}) == {"image_size": 1, "class_num": 1, "width_mult": 0.25,
                                                   "mean": [0, 0.5, 1], "std": [1, 1, 1]}


def test_compare_top1_counts_each_models_hits_and_their_agreement_apart():
    """Labels all 0; the reference answers 0, 1, 2, 3 and the candidate 0, 1, 2, 0 (in two batches): top-1
    1/4 and 2/4, and the two agree on 3 of the 4 images."""
    def answering(classes):
        return lambda x: torch.nn.functional.one_hot(torch.tensor(classes)[x[:, 0].long()], 4).float()

    batches = [(torch.tensor([[0.0], [1.0]]), torch.zeros(2, dtype=torch.long)),
               (torch.tensor([[2.0], [3.0]]), torch.zeros(2, dtype=torch.long))]
    got = compare_top1(answering([0, 1, 2, 3]), answering([0, 1, 2, 0]), batches)
    assert got == {"images": 4, "reference_top1": 0.25, "candidate_top1": 0.5, "agreement": 0.75}
    # An image whose outputs are not finite in both models has no top-1 in either: no hit, and no agreement
    # (the two "agreeing" on no class would lift the share of an INT8 file that broke where the float one did).
    def broken_on_last(classes):
        answer = answering(classes)
        return lambda x: torch.where(x[:, :1] == 3.0, float("nan"), answer(x))

    got = compare_top1(broken_on_last([0, 1, 2, 3]), broken_on_last([0, 1, 2, 0]), batches)
    assert got == {"images": 4, "reference_top1": 0.25, "candidate_top1": 0.25, "agreement": 0.75}


def test_x86_without_vnni_reads_the_cpu_flags(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx2\n")
    assert x86_without_vnni(str(info))
    for vnni in ("avx512_vnni", "avx_vnni"):
        info.write_text(f"processor\t: 0\nflags\t\t: fpu avx2 avx512f {vnni} avx512bw\n")
        assert not x86_without_vnni(str(info))
    info.write_text("processor\t: 0\n")  # no flags line: cannot tell
    assert not x86_without_vnni(str(info)) and not x86_without_vnni(str(tmp_path / "missing"))
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    info.write_text("flags\t\t: fpu avx2\n")
    assert not x86_without_vnni(str(info))


def test_calibration_decodes_only_its_sample_and_tops_up_for_unreadable_files(image_folder, monkeypatch):
    """--calib_images 5 with batches of 4 decoded 8 images (the rest of the last batch; loader workers read
    batches ahead too): only the sample's are decoded now, and they are the images a whole pass begins with.
    An unreadable file among them is made up for by the next image of the order, as the whole pass did."""
    decoded = []
    real = T.decode_rgb
    monkeypatch.setattr(T, "decode_rgb", lambda data, path, *a, **k: decoded.append(path) or real(data, path, *a, **k))

    def sample(count, static=False):
        decoded.clear()
        return torch.cat([x for x, _ in calibration_loader("imagenet2012", str(image_folder), 32, count, seed=3,
                                                           batch_size=4, num_workers=0, static_batch=static,
                                                           max_bad_samples=1)])

    whole = sample(100)
    assert whole.shape[0] == 15 and len(decoded) == 15
    order = list(decoded)
    assert torch.equal(sample(5), whole[:5]) and decoded == order[:5]
    assert torch.equal(sample(8, static=True), whole[:8]) and decoded == order[:8]
    # The 3rd image of the order cut short: the 6th is read in its place.
    cut = order[2]
    with open(cut, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 cut short")
    with pytest.warns(BadSampleWarning, match=os.path.basename(cut)):
        topped = sample(5)
    assert torch.equal(topped, torch.cat([whole[:2], whole[3:6]]))  # the 3rd left out, the 6th read instead
    assert decoded == order[:6]  # nothing past it


def test_a_calibration_whose_every_file_is_unreadable_writes_no_file(image_folder, tmp_path, capsys):
    """Every training file unreadable (--max_bad_samples allowing them): the loader's batches are empty, which
    ONNX Runtime calibrates on without a word, and an INT8 file of ranges from 0 images was written (exit 0)."""
    pytest.importorskip("onnxruntime")
    for f in (image_folder / "train").rglob("*.JPEG"):
        f.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=2, width_mult=0.25).state_dict(),
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, ckpt)
    export_checkpoint(ckpt, str(tmp_path / "m"), height=32, width=32)
    out = str(tmp_path / "q.onnx")
    with pytest.warns(BadSampleWarning):
        code = cli.main(["quantize", "--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(image_folder),
                         "--out", out, "--max_bad_samples", "100", "--num_workers", "0"])
    assert code == 1 and capsys.readouterr().err.endswith(
        f"error: --calib_data {image_folder}: no calibration images were read\n")
    assert not os.path.exists(out)


def test_one_unreadable_calibration_file_stops_quantize_under_the_default_limit_as_the_readme_says(
        image_folder, tmp_path, capsys):
    """An unreadable training image is made up for by the next one only within --max_bad_samples, whose
    default (training's 0.1% of the files) allows none in a small folder: there quantize stops naming the file
    and the option, and an INT8 file already at --out is left as it was; the README says so (it said every
    unreadable image was replaced). With the limit raised, the file is written."""
    pytest.importorskip("onnxruntime")
    bad = image_folder / "train" / "n02" / "cut.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=2, width_mult=0.25).state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, ckpt)
    export_checkpoint(ckpt, str(tmp_path / "m"), height=32, width=32)
    out = tmp_path / "q.onnx"
    out.write_bytes(b"an earlier INT8 file")
    base = ["quantize", "--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(image_folder), "--out", str(out),
            "--calib_images", "16", "--num_workers", "0"]
    with pytest.warns(BadSampleWarning, match="cut.JPEG"):
        assert cli.main(base) == 1
    err = capsys.readouterr().err
    assert "more than max_bad_samples 0" in err and "raise --max_bad_samples" in err and str(bad) in err, err
    assert out.read_bytes() == b"an earlier INT8 file"
    with pytest.warns(BadSampleWarning, match="cut.JPEG"):
        assert cli.main(base + ["--max_bad_samples", "1"]) == 0
    assert "activation ranges from 15 training images" in capsys.readouterr().out
    readme = " ".join(open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read().split())
    assert ("an unreadable one is replaced by the next image drawn within `--max_bad_samples`, whose default -1 is "
            "training's 0.1% of the files, so none under 1,000 images: there one stops quantize") in readme


def test_static_batch_calibration_regroups_batches_shortened_by_unreadable_files(image_folder):
    """A loader batch that lost an unreadable file held 3 images, which a graph exported with a static
    batch of 4 refuses (the fp32/INT8 comparison failed in ONNX Runtime; calibration skipped it): the
    readable images are regrouped into whole batches."""
    (image_folder / "train" / "n02" / "cut.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut short")  # 16 files, 15 readable

    def batches():
        return list(calibration_loader("imagenet2012", str(image_folder), 32, 12, seed=3, batch_size=4,
                                       num_workers=0, static_batch=True, max_bad_samples=1))

    with pytest.warns(BadSampleWarning, match="cut.JPEG"):
        first = batches()
    assert [x.shape[0] for x, _ in first] == [4, 4, 4] and [y.shape[0] for _, y in first] == [4, 4, 4]
    images = torch.cat([x for x, _ in first]).flatten(1)
    assert torch.unique(images, dim=0).shape[0] == 12  # twelve different images, none repeated
    with pytest.warns(BadSampleWarning):
        again = batches()
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))  # calibration and comparison agree


def test_export_of_a_file_without_its_data_set_says_what_it_guessed_and_takes_dataset(tmp_path, capsys):
    """A MindSpore .ckpt records no training configuration: the normalisation written into the ONNX file
    is guessed from the class count, the guess is named on stderr with the option that changes it, and
    --dataset changes it. A checkpoint that records its data set needs no guess and refuses another."""
    from mobilenet_v1 import mindspore_io
    from mobilenet_v1.transforms import CIFAR_MEAN, IMAGENET_MEAN

    def bare(class_num):
        path = str(tmp_path / f"bare{class_num}.ckpt")
        state = randomise_batchnorm(MobileNetV1(class_num=class_num, width_mult=0.25), seed=7).state_dict()
        mindspore_io.write_mindspore_ckpt(path, mindspore_io.to_seed_state({"model": state}))
        return path, state

    def export(ckpt, name, *flags):
        rc = cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--height", "32",
                       "--width", "32", *flags])
        captured = capsys.readouterr()
        return rc, captured.err, str(tmp_path / f"{name}.onnx")

    (ten, ten_state), (five, _) = bare(10), bare(5)
    rc, err, path = export(ten, "guessed")
    assert rc == 0
    assert f"note: {ten} does not record the data set it was trained on" in err
    assert "records cifar10's input normalisation, guessed from its 10 classes" in err
    assert "export again with --dataset imagenet2012" in err
    meta = OnnxModel(path).metadata
    assert meta["dataset"] == "cifar10" and meta["mean"] == pytest.approx(list(CIFAR_MEAN))
    rc, err, path = export(five, "guessed5")
    assert rc == 0 and "imagenet2012's input normalisation, guessed from its 5 classes" in err
    assert "--dataset cifar10" in err and OnnxModel(path).metadata["dataset"] == "imagenet2012"

    rc, err, path = export(ten, "told", "--dataset", "imagenet2012")
    assert rc == 0 and err == ""
    meta = OnnxModel(path).metadata
    assert meta["dataset"] == "imagenet2012" and meta["mean"] == pytest.approx(list(IMAGENET_MEAN))

    recorded = str(tmp_path / "recorded.ckpt")  # ten's weights: exported_once has their graph
    ckpt_io.atomic_save({"model": ten_state, "config": {"dataset": "cifar10", "image_size": 32}}, recorded)
    rc, err, _ = export(recorded, "recorded")
    assert rc == 0 and err == ""
    rc, err, path = export(recorded, "mislabelled", "--dataset", "imagenet2012")
    assert rc == 1 and not os.path.exists(path)
    assert f"--dataset imagenet2012: {recorded} was trained on cifar10" in err


def loader_options(monkeypatch, key: str) -> list:
    """The value of ``DataOptions.<key>`` of each loader that eval and quantize build from here on, in order."""
    from mobilenet_v1 import quantize

    seen = []
    for module in (evaluate, quantize):
        real = module.build_loader
        monkeypatch.setattr(module, "build_loader",
                            lambda opts, real=real, **kw: seen.append(getattr(opts, key)) or real(opts, **kw))
    return seen


def test_quantize_leaves_out_the_share_its_run_held_out_or_the_one_val_split_says(tmp_path, capsys):
    """Calibrated on the folder the run trained on, the share each class held out to evaluate on stays out; on a
    copy (or a .tar of it) quantize said "--val_split 0.2 holds out files of the same names", an option it did
    not take (helper-257): it does now, as eval and recalibrate-bn do, and its suggested eval holds them out too."""
    import numpy as np
    from conftest import class_folders_of_photos
    from mobilenet_v1.data import held_out_record

    root = class_folders_of_photos(tmp_path / "photos")  # one image of each class's five held out at 0.2
    path = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=4, width_mult=0.25).state_dict(), "classes": list("abcd"),
                         "config": {"dataset": "imagenet2012", "image_size": 32},
                         "held_out": held_out_record(str(root), 0.2)}, path)  # one image of each class's five
    export_checkpoint(path, str(tmp_path / "m"))
    onnx_path, out = str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx")
    base = ["quantize", "--onnx", onnx_path, "--out", out]
    assert cli.main(base + ["--calib_data", str(root)]) == 0
    said = capsys.readouterr()
    assert "from 16 training images" in said.out and "(val_split 0.2) is left out" in said.err
    shutil.copytree(root, tmp_path / "copy")
    copy = str(tmp_path / "copy")
    assert cli.main(base + ["--calib_data", copy]) == 0
    said = capsys.readouterr()
    assert "from 20 training images" in said.out
    assert "held out val_split 0.2 of another folder, so none is held out of" in said.err
    assert cli.main(base + ["--calib_data", copy, "--val_split", "0.2"]) == 0
    said = capsys.readouterr()
    assert "from 16 training images" in said.out and "the share of each class --val_split 0.2 holds out" in said.err
    assert f"--dataset_path {copy} --val_split 0.2`" in said.out
    assert cli.main(base + ["--calib_data", copy, "--val_split", "0"]) == 0  # every image, as asked
    said = capsys.readouterr()
    assert "from 20 training images" in said.out and "held out val_split" not in said.err
    # A smaller share of the run's own folder: the ranges see images that an eval of the folder scores (helper-261).
    assert cli.main(base + ["--calib_data", str(root), "--val_split", "0"]) == 0
    said = capsys.readouterr()
    assert "from 20 training images" in said.out
    assert (f"note: --val_split 0: {onnx_path}'s run held out val_split 0.2 of each class of {root} to evaluate on, so "
            f"the activation ranges measured can include some of those images, which an eval of that folder scores "
            f"(--val_split 0.2 leaves them out)") in said.err
    assert said.out.rstrip().endswith(f"--dataset_path {root}` (its figure counts images the ranges were measured on: "
                                      f"quantize without --val_split for a clean one)")
    for bad, message in (("1", r"--val_split 1: must be in \[0, 1\)"), ("-0.1", r"--val_split -0.1: must be")):
        with pytest.raises(SystemExit):
            cli.main(base + ["--calib_data", copy, "--val_split", bad])
        assert re.search(message, capsys.readouterr().err)
    assert np.isclose(ckpt_io.load_file(path)["held_out"]["val_split"], 0.2)
    cifar = str(tmp_path / "cifar.ckpt")  # CIFAR's evaluation images are a file of their own: refused, as
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=10, width_mult=0.25).state_dict(),  # recalibrate-bn does
                         "config": {"dataset": "cifar10", "image_size": 32}}, cifar)
    export_checkpoint(cifar, str(tmp_path / "cifar"))
    from conftest import write_cifar_dir  # its own data: a folder of photos is refused for a CIFAR model first

    binaries = str(write_cifar_dir(tmp_path / "cifar_data"))
    assert cli.main(["quantize", "--onnx", str(tmp_path / "cifar.onnx"), "--out", out, "--calib_data", binaries,
                     "--val_split", "0.2"]) == 1
    assert "--val_split: a CIFAR-10 model's data set has no use for it" in capsys.readouterr().err


def test_crop_pct_follows_the_model_through_eval_export_predict_and_quantize(image_folder, tmp_path, capsys,
                                                                              monkeypatch):
    """A run's evaluation crop (crop_pct, recorded in its configuration) is what eval, an exported ONNX
    file (its metadata), predict and INT8 calibration use unless told otherwise; eval says so."""
    from mobilenet_v1.config import ConfigError

    path = str(tmp_path / "wide.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=2, width_mult=0.25).state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32, "crop_pct": 1.0}}, path)
    crops = loader_options(monkeypatch, "crop_pct")
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--device_target=CPU",
            "--num_workers=0"]
    assert cli.main(base + [f"--checkpoint_path={path}"]) == 0
    assert f"crop_pct 1: the evaluation crop of {path}'s run" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={path}", "--crop_pct=0.95"]) == 0
    # Another crop asked: said, as another image size is (it was unsaid, the figure not the run's own crop's).
    err = capsys.readouterr().err
    assert f"note: crop_pct 1: the evaluation crop of {path}'s run; evaluating with crop_pct 0.95 as asked\n" in err
    assert cli.main(base + [f"--checkpoint_path={path}", "--crop_pct=0.95", "--image_size=32,40"]) == 0
    assert capsys.readouterr().err.count("evaluating with crop_pct 0.95 as asked") == 1

    onnx_path = str(tmp_path / "wide.onnx")
    export_checkpoint(path, str(tmp_path / "wide"))
    assert OnnxModel(onnx_path).metadata["crop_pct"] == 1.0
    capsys.readouterr()
    assert cli.main(base + [f"--checkpoint_path={onnx_path}"]) == 0  # at the graph's size, as a checkpoint's
    assert f"image_size 32: the size {onnx_path} takes" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={onnx_path}", "--image_size=48"]) == 1
    assert f"{onnx_path} takes 32x32 inputs but image_size is 48" in capsys.readouterr().err
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(image_folder), "--calib_images", "4",
                     "--out", str(tmp_path / "wide_int8.onnx")]) == 0
    assert crops == [1.0, 0.95, 0.95, 0.95, 1.0, 1.0, 1.0]  # 2 sizes at 0.95; quantize: calibration, comparison
    assert OnnxModel(str(tmp_path / "wide_int8.onnx")).metadata["crop_pct"] == 1.0
    # Calibration images of some of the classes keep the model's labels (n02 is 1, as eval labels it), for
    # the comparison's top-1; a folder that is not the data set's is named as the option gives it.
    some = tmp_path / "some"
    shutil.copytree(image_folder / "train" / "n02", some / "train" / "n02")
    labels = [y for _, y in calibration_loader("imagenet2012", str(some), 32, 4, seed=1, num_workers=0,
                                                classes=["n01", "n02"])]
    assert torch.cat(labels).tolist() == [1, 1, 1, 1]
    # A folder the model never saw still calibrates (the ranges need no labels); the top-1 is said to mean nothing.
    shutil.copytree(image_folder / "train" / "n01", some / "train" / "misc")
    capsys.readouterr()
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(some), "--calib_images", "4",
                     "--out", str(tmp_path / "some_int8.onnx")]) == 0
    assert "class folder(s) misc of " in capsys.readouterr().err and (tmp_path / "some_int8.onnx").exists()
    held = image_folder / "validation_preprocess"  # the images an evaluation reads: said, not refused
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(held), "--calib_images", "4",
                     "--out", str(tmp_path / "held_int8.onnx")]) == 0
    said = capsys.readouterr()
    assert f"--calib_data {held} is named as an evaluation split (validation_preprocess/)" in said.err
    # The evaluation it then offers reads those same images: said beside it, not offered as a clean figure.
    assert f"--dataset_path {held} (its figure counts the images the ranges were measured on: calibrate on the " \
        "training split for a clean one)`" not in said.out
    assert f"--dataset_path {held}` (its figure counts the images the ranges were measured on: calibrate on the " \
        "training split for a clean one)" in said.out, said.out
    (tmp_path / "none").mkdir()
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(tmp_path / "none"),
                     "--out", str(tmp_path / "never.onnx")]) == 1
    assert f"--calib_data {tmp_path / 'none'}" in capsys.readouterr().err

    assert load_predictor(path).crop_pct == load_predictor(onnx_path).crop_pct == 1.0
    assert load_predictor(path, crop_pct=0.5).crop_pct == 0.5
    with pytest.raises(ValueError, match="--dataset cifar10: .* was trained on imagenet2012"):
        load_predictor(path, dataset="cifar10", crop_pct=0.5)  # another data set's transform is refused
    capsys.readouterr()
    image = str(image_folder / "validation_preprocess" / "n01" / "img_0.JPEG")
    assert cli.main(["predict", image, "--ckpt_file", path, "--json", "--crop_pct", "0.8"]) == 0
    assert json.loads(capsys.readouterr().out)["crop_pct"] == 0.8

    assert load_config(["--dataset=imagenet2012", "--crop_pct=1"]).crop_pct == 1.0
    for bad, message in ((["--dataset=imagenet2012", "--crop_pct=0"], r"option --crop_pct: crop_pct must be in \(0, 1\]"),
                         (["--crop_pct=0.9"], "crop_pct 0.9 is for image folders' evaluation; CIFAR-10's")):
        with pytest.raises(ConfigError, match=message):
            load_config(bad)


@pytest.mark.parametrize("crop", [float("nan"), 1.5, 0, True])
def test_a_recorded_crop_pct_out_of_range_is_read_as_none_by_every_command(image_folder, tmp_path, capsys, monkeypatch,
                                                                           crop):
    """A hand-edited crop_pct outside (0, 1] in a checkpoint's configuration is not recorded for eval, predict,
    export and recalibrate-bn alike (checkpoint.recorded_reading, as info reads it): each takes the default
    0.875. A NaN was a ValueError traceback in eval and recalibrate-bn, and an "image file could not be read"
    for every image in predict; export wrote a file its own check then refused."""
    path = str(tmp_path / "odd.ckpt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=2, width_mult=0.25).state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32, "crop_pct": crop}}, path)
    assert "crop_pct" not in ckpt_io.recorded_reading(ckpt_io.load_file(path))
    crops = loader_options(monkeypatch, "crop_pct")
    assert cli.main(["eval", f"--dataset_path={image_folder}", "--device_target=CPU", "--num_workers=0",
                     f"--checkpoint_path={path}"]) == 0
    assert crops == [T.CROP_PCT] and "the evaluation crop of" not in capsys.readouterr().err
    assert load_predictor(path).crop_pct == T.CROP_PCT
    image = str(image_folder / "validation_preprocess" / "n01" / "img_0.JPEG")
    assert cli.main(["predict", image, "--ckpt_file", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["crop_pct"] == T.CROP_PCT
    export_checkpoint(path, str(tmp_path / "odd"))
    assert OnnxModel(str(tmp_path / "odd.onnx")).metadata["crop_pct"] == T.CROP_PCT
    recalibrate.run(path, str(tmp_path / "bn.pt"), str(image_folder), images=4, batch_size=2, num_workers=0,
                    device_target="CPU")
    assert ckpt_io.load_file(str(tmp_path / "bn.pt"))["config"]["crop_pct"] == T.CROP_PCT


def test_exif_orientation_follows_the_model_through_eval_export_predict_and_quantize(tmp_path, capsys, monkeypatch):
    """A run that read its photos upright (exif_orientation, in its configuration) has eval, an exported
    file (its metadata), predict and INT8 calibration read them so too, unless told otherwise: predict
    then gives a photo with an orientation tag the probabilities of its upright pixels, else those of
    its stored pixels."""
    from PIL import Image

    from mobilenet_v1.config import ConfigError
    from mobilenet_v1.transforms import decode_rgb

    from conftest import exif_jpeg, smooth_image

    folder = tmp_path / "photos"
    for cls in ("n01", "n02"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            (folder / cls / f"{i}.jpg").write_bytes(exif_jpeg(smooth_image(40, 56, 3 * i + len(cls)), 6))
    photo = folder / "n01" / "0.jpg"
    data = torch.frombuffer(bytearray(photo.read_bytes()), dtype=torch.uint8)
    for name, exif in (("upright.png", True), ("stored.png", False)):  # lossless: the same pixels decoded
        Image.fromarray(decode_rgb(data, exif=exif).permute(1, 2, 0).numpy()).save(tmp_path / name)
    path = str(tmp_path / "upright.ckpt")
    model = MobileNetV1(class_num=2, width_mult=0.25)
    # Untrained, but with BatchNorm statistics of its own inputs: outputs that tell images apart.
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32, "exif_orientation": True}}, path)
    seen = loader_options(monkeypatch, "exif_orientation")
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={folder}", "--device_target=CPU", "--num_workers=0"]
    assert cli.main(base + [f"--checkpoint_path={path}"]) == 0
    assert f"exif_orientation True: how photos were read in {path}'s run" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={path}", "--exif_orientation=False"]) == 0
    assert (f"note: exif_orientation True: how photos were read in {path}'s run; evaluating with exif_orientation "
            f"False as asked\n") in capsys.readouterr().err  # followed no longer, said as asked

    onnx_path = str(tmp_path / "upright.onnx")
    export_checkpoint(path, str(tmp_path / "upright"))
    assert OnnxModel(onnx_path).metadata["exif_orientation"] is True
    from mobilenet_v1.onnx_io import read_metadata

    assert read_metadata({"exif_orientation": "true"})["exif_orientation"] is True  # a .pt2's JSON
    assert read_metadata({"exif_orientation": "False"})["exif_orientation"] is False
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(folder), "--calib_images", "4",
                     "--out", str(tmp_path / "upright_int8.onnx")]) == 0
    assert seen == [True, False, True, True]  # quantize: the calibration pass and the comparison

    def probabilities(model, *images, **kw):
        return [r["top_k"] for r in load_predictor(model, **kw).top_k([str(i) for i in images], 2)]

    for model in (path, onnx_path):
        got, upright, stored = probabilities(model, photo, tmp_path / "upright.png", tmp_path / "stored.png")
        assert got == upright and got != stored
        got, stored = probabilities(model, photo, tmp_path / "stored.png", exif_orientation=False)
        assert got == stored
    capsys.readouterr()
    assert cli.main(["predict", str(photo), "--ckpt_file", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exif_orientation"] is True

    assert load_config(["--dataset=imagenet2012", "--exif_orientation=True"]).exif_orientation is True
    with pytest.raises(ConfigError, match="exif_orientation True is for image folders' photos; CIFAR-10's"):
        load_config(["--exif_orientation=True"])


def test_antialias_follows_the_model_through_eval_export_predict_and_quantize(tmp_path, capsys, monkeypatch):
    """How a run resized its photos (antialias, in its configuration; False for a MindSpore checkpoint, which
    records nothing and was trained with MindSpore's plain bilinear resize) is how eval, an exported file
    (its metadata), predict and INT8 calibration resize them, unless told otherwise; eval says so. A
    checkpoint of ours from before the key resized antialiased, the default then."""
    from conftest import without_top5_note
    from PIL import Image

    from mobilenet_v1 import mindspore_io
    from mobilenet_v1.config import ConfigError

    folder = tmp_path / "photos"
    gen = torch.Generator().manual_seed(1)
    for cls in ("n01", "n02"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):  # noise, lossless: an antialiased downscale averages it, a plain one samples it
            noise = torch.randint(0, 256, (90, 120, 3), dtype=torch.uint8, generator=gen)
            Image.fromarray(noise.numpy()).save(folder / cls / f"{i}.png")
    photo = str(folder / "n01" / "0.png")
    model = MobileNetV1(class_num=2, width_mult=0.25)
    for bn in model.modules():  # BatchNorm statistics of its own inputs: outputs that tell images apart
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = None
    with torch.no_grad():
        model.train()(torch.randn(16, 3, 32, 32, generator=gen))
    plain = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32, "antialias": False}}, plain)
    before_key = str(tmp_path / "before_key.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, before_key)
    seed_file = str(tmp_path / "mobilenetv1-90_1251.ckpt")
    mindspore_io.write_mindspore_ckpt(seed_file, mindspore_io.to_seed_state({"model": model.state_dict()}))

    seen = loader_options(monkeypatch, "antialias")
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={folder}", "--device_target=CPU", "--num_workers=0",
            "--image_size=32"]
    assert cli.main(base + [f"--checkpoint_path={plain}"]) == 0
    assert f"antialias False: how photos were resized in {plain}'s run" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={seed_file}"]) == 0
    assert (f"antialias False: MindSpore's plain bilinear resize, as the seed trains (a MindSpore file records "
            f"none of its run's settings), taken for {seed_file}'s run" in capsys.readouterr().err)
    assert cli.main(base + [f"--checkpoint_path={seed_file}", "--antialias=True"]) == 0
    assert "'s run; evaluating with antialias True as asked\n" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={before_key}"]) == 0
    assert "antialias" not in without_top5_note(capsys.readouterr().err)
    assert seen == [False, False, True, True]

    assert ckpt_io.trained_antialias(ckpt_io.load_file(seed_file)) is False
    assert ckpt_io.trained_antialias(ckpt_io.load_file(before_key)) is True
    # The seed's weights in our names (convert, average: a .pt) still resize as the seed does, and eval says
    # why; in MindSpore's names again, too. An average with a run of ours that records its settings takes
    # those (the last file's configuration).
    from mobilenet_v1.averaging import average

    seed_pt, seed_mean, mixed = (str(tmp_path / name) for name in ("seed.pt", "seed_mean.pt", "mixed.pt"))
    mindspore_io.convert(seed_file, seed_pt)
    mindspore_io.convert(seed_pt, str(tmp_path / "again.safetensors"))
    average([seed_file, seed_pt], seed_mean)
    average([seed_file, plain], mixed)
    for path, want in ((seed_pt, False), (str(tmp_path / "again.safetensors"), False), (seed_mean, False),
                       (mixed, False)):
        assert ckpt_io.trained_antialias(ckpt_io.load_file(path)) is want, path
    assert ckpt_io.TRAINED_BY not in ckpt_io.load_file(mixed)
    average([seed_file, before_key], str(tmp_path / "mixed_true.pt"))  # a MindSpore file records no resize
    assert ckpt_io.trained_antialias(ckpt_io.load_file(str(tmp_path / "mixed_true.pt"))) is True
    assert cli.main(base + [f"--checkpoint_path={seed_pt}"]) == 0
    assert (f"antialias False: MindSpore's plain bilinear resize, as the seed trains (a MindSpore file records "
            f"none of its run's settings), taken for {seed_pt}'s run" in capsys.readouterr().err)
    assert seen[-1] is False
    # info says how each reads its photos, as it says it of an exported file.
    full = str(tmp_path / "full.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {
        "dataset": "imagenet2012", "image_size": 32, "crop_pct": 0.95, "antialias": False, "interpolation": "bicubic",
        "exif_orientation": True}}, full)
    for path, want in ((seed_pt, {"antialias": False}), (before_key, {"antialias": True}),
                       (full, {"crop_pct": 0.95, "antialias": False, "interpolation": "bicubic",
                               "exif_orientation": True})):
        assert cli.main(["info", path, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["image_reading"] == want, path
    assert cli.main(["info", seed_file]) == 0
    assert ("images:         antialias False (MindSpore's plain bilinear, as the seed resized), which eval, predict "
            "and export follow") in capsys.readouterr().out
    onnx_path = str(tmp_path / "seed.onnx")
    export_checkpoint(seed_file, str(tmp_path / "seed"), dataset="imagenet2012", height=32, width=32)
    assert OnnxModel(onnx_path).metadata["antialias"] is False
    seen.clear()
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(folder), "--calib_images", "4",
                     "--out", str(tmp_path / "seed_int8.onnx")]) == 0
    assert seen == [False, False]  # the calibration pass and the comparison
    assert OnnxModel(str(tmp_path / "seed_int8.onnx")).metadata["antialias"] is False

    def probabilities(model, **kw):
        predictor = load_predictor(model, image_size=32, **kw)  # (a MindSpore file does not say: 224, enlarged)
        return predictor.antialias, predictor.top_k([photo], 2)[0]["top_k"]

    for model in (plain, seed_file, onnx_path):
        (sampled, got), (averaged, other) = probabilities(model), probabilities(model, antialias=True)
        assert sampled is False and averaged is True and got != other, model
    assert probabilities(before_key) == probabilities(plain, antialias=True)
    capsys.readouterr()
    assert cli.main(["predict", photo, "--ckpt_file", plain, "--json", "--image_size=32"]) == 0
    assert json.loads(capsys.readouterr().out)["antialias"] is False
    with pytest.raises(ValueError, match="--antialias False: .* CIFAR-10's evaluation transform"):
        load_predictor(seed_file, dataset="cifar10", antialias=False)

    assert load_config(["--dataset=imagenet2012", "--antialias=False"]).antialias is False
    with pytest.raises(ConfigError, match="antialias False is for image folders' resizes; CIFAR-10's"):
        load_config(["--antialias=False"])


def test_bicubic_interpolation_is_timms_resize_and_follows_the_model(tmp_path, capsys, monkeypatch):
    """--interpolation bicubic resizes as timm's evaluation transform does (PIL's bicubic Resize of the
    shorter side, then the centre crop: within two levels, where bilinear is further off), the same on any
    device (computed in float32, rounded between its passes as PIL rounds), both
    pipelines alike (training crops too), and, recorded in the run's configuration, is how eval, an
    exported file, predict and INT8 calibration resize; a file from before the key: bilinear."""
    import numpy as np
    from PIL import Image

    from conftest import smooth_image

    from mobilenet_v1.config import ConfigError

    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for c, cls in enumerate(("n01", "n02")):
        (folder / cls).mkdir(parents=True)
        for i in range(3):  # with detail (noise, lossless) that the two interpolations resize apart
            noisy = smooth_image(90 + 10 * i, 120, 7 * c + i) + rng.integers(-40, 40, (90 + 10 * i, 120, 3))
            Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / cls / f"{i}.png")
    photo = folder / "n01" / "0.png"
    # Sharp edges too: a bicubic resize overshoots them, and rounding only at the end (torchvision's
    # uint8 bicubic on CUDA) would put the output up to 20 levels off PIL's, which rounds between passes.
    edges = (rng.random((94, 126, 3)) > 0.5).repeat(4, 0).repeat(4, 1).astype(np.uint8) * 255
    for array in (np.array(Image.open(photo).convert("RGB")), edges):
        img = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        ours = {m: T.resize_center_crop(img, 96, 0.95, interpolation=m).int() for m in T.INTERPOLATIONS}
        pil, side = Image.fromarray(array), T.eval_resize_size(96, 0.95)
        w, h = pil.size
        pil = pil.resize((int(side * w / h), side) if w >= h else (side, int(side * h / w)), Image.BICUBIC)
        left, top = round((pil.size[0] - 96) / 2), round((pil.size[1] - 96) / 2)  # as Resize, CenterCrop
        timm = torch.from_numpy(np.array(pil.crop((left, top, left + 96, top + 96)))).permute(2, 0, 1).int()
        bicubic, bilinear = ((ours[m] - timm).abs() for m in ("bicubic", "bilinear"))
        assert int(bicubic.max()) <= 2 and float(bicubic.float().mean()) < 0.05 < 0.5 < float(bilinear.float().mean())

    for training in (True, False):  # the GPU pipeline's code (on the CPU) gives the CPU pipeline's batches
        batches = []
        for pipeline in ("cpu", "gpu"):
            opts = DataOptions("imagenet2012", str(folder), 3, 32, seed=2, num_workers=0, channels_last=False,
                               pipeline=pipeline, interpolation="bicubic")
            batches.append(next(iter(build_loader(opts, training, torch.device("cpu")))))
        assert torch.equal(batches[0][0], batches[1][0]) and torch.equal(batches[0][1], batches[1][1])

    model = MobileNetV1(class_num=2, width_mult=0.25)
    path = str(tmp_path / "bicubic.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32, "interpolation": "bicubic"}}, path)
    before_key = str(tmp_path / "before_key.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"],
                         "config": {"dataset": "imagenet2012", "image_size": 32}}, before_key)
    seen = loader_options(monkeypatch, "interpolation")
    base = ["eval", "--dataset=imagenet2012", f"--dataset_path={folder}", "--device_target=CPU", "--num_workers=0"]
    assert cli.main(base + [f"--checkpoint_path={path}"]) == 0
    assert f"interpolation bicubic: how photos were resized in {path}'s run" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={path}", "--interpolation=bilinear"]) == 0
    assert "'s run; evaluating with interpolation bilinear as asked\n" in capsys.readouterr().err
    assert cli.main(base + [f"--checkpoint_path={before_key}"]) == 0
    assert "how photos were resized in" not in capsys.readouterr().err
    onnx_path = str(tmp_path / "bicubic.onnx")
    export_checkpoint(path, str(tmp_path / "bicubic"))
    assert OnnxModel(onnx_path).metadata["interpolation"] == "bicubic"
    assert cli.main(base + [f"--checkpoint_path={onnx_path}"]) == 0
    assert cli.main(["quantize", "--onnx", onnx_path, "--calib_data", str(folder), "--calib_images", "3",
                     "--out", str(tmp_path / "bicubic_int8.onnx")]) == 0
    assert seen == ["bicubic", "bilinear", "bilinear", "bicubic", "bicubic", "bicubic"]
    assert OnnxModel(str(tmp_path / "bicubic_int8.onnx")).metadata["interpolation"] == "bicubic"
    for source in (path, onnx_path):
        assert load_predictor(source).interpolation == "bicubic"
        assert load_predictor(source, interpolation="bilinear").interpolation == "bilinear"
    assert load_predictor(before_key).interpolation == "bilinear"
    capsys.readouterr()
    assert cli.main(["predict", str(photo), "--ckpt_file", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interpolation"] == "bicubic"
    unrecorded = str(tmp_path / "unrecorded.ckpt")  # a file that does not say its data set
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"image_size": 32}}, unrecorded)
    with pytest.raises(ValueError, match="--interpolation bicubic: .* CIFAR-10's evaluation transform"):
        load_predictor(unrecorded, dataset="cifar10", interpolation="bicubic")
    with pytest.raises(ConfigError, match="interpolation bicubic is for image folders' resizes; CIFAR-10's"):
        load_config(["--interpolation=bicubic"])
    with pytest.raises(ConfigError, match=r"interpolation='nearest' is not one of \['bilinear', 'bicubic'\]"):
        load_config(["--dataset=imagenet2012", "--interpolation=nearest"])


def test_the_python_api_gives_images_in_memory_the_transform_their_files_get(cifar_dir, tmp_path, capsys):
    """load_predictor's preprocess and top_k take a PIL image or a uint8 tensor as they take a file: the
    pixels the file decodes to, turned by EXIF where the run was, get the run's evaluation transform (a 32x32
    CIFAR image exactly eval's batch); a damaged file is reported, a wrong tensor refused by its place."""
    import mobilenet_v1
    from PIL import Image
    from torchvision.io import decode_jpeg

    from conftest import exif_jpeg, smooth_image

    assert mobilenet_v1.load_predictor is load_predictor
    _, ckpt = named_classes_checkpoint(tmp_path)
    cifar = load_predictor(ckpt)
    opts = DataOptions("cifar10", str(cifar_dir), batch_size=40, image_size=40, seed=1, num_workers=0,
                       channels_last=False)
    with build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False) as loader:
        evaluated = next(iter(loader))[0]
    pixels = load_cifar(str(cifar_dir), train=False)[0]  # (40, 3, 32, 32) uint8, as the file holds them
    assert pixels.dtype == torch.uint8 and pixels.shape == (40, 3, 32, 32)
    assert torch.allclose(cifar.preprocess(pixels), evaluated, atol=1e-6)

    # An ImageNet-style run that read photos upright: a JPEG stored sideways with EXIF orientation 6.
    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=6)
    photo_ckpt = str(tmp_path / "photo.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {
        "dataset": "imagenet2012", "image_size": 48, "exif_orientation": True, "mean": "0.5", "std": "0.25"}},
        photo_ckpt)
    photo = load_predictor(photo_ckpt)
    raw = exif_jpeg(smooth_image(60, 90, seed=2), 6)
    path = tmp_path / "sideways.jpg"
    path.write_bytes(raw)
    stored = decode_jpeg(torch.frombuffer(bytearray(raw), dtype=torch.uint8))  # as stored: (3, 60, 90)
    upright = stored.transpose(1, 2).flip(2)  # 90 degrees clockwise, as a viewer shows it
    from_file = photo.preprocess(path)
    assert from_file.shape == (1, 3, 48, 48)
    assert torch.equal(photo.preprocess(Image.open(path)), from_file)  # a PIL image keeps its EXIF block
    assert torch.equal(photo.preprocess(upright), from_file)
    assert not torch.allclose(photo.preprocess(stored), from_file, atol=0.1)
    assert abs(from_file.mean().item() - ((upright.float() / 255 - 0.5) / 0.25).mean().item()) < 0.05  # its own norm
    gray = upright[:1]
    assert torch.equal(photo.preprocess(gray), photo.preprocess(gray.repeat(3, 1, 1)))
    assert torch.equal(photo.preprocess(Image.fromarray(gray[0].numpy())), photo.preprocess(gray))
    rgba = torch.cat([upright, torch.full_like(upright[:1], 7)])
    assert torch.equal(photo.preprocess(rgba), from_file)
    # Lossless files with the same tag: a TIFF turned once (Pillow turns it as it loads), a WebP as stored
    # (torchvision's decoder keeps its pixels as stored); a PIL image of either as its file.
    import io
    tag = Image.Exif()
    tag[0x0112] = 6
    pixels = torch.from_numpy(smooth_image(60, 90, seed=4)).permute(2, 0, 1)
    for fmt, want in (("TIFF", pixels.transpose(1, 2).flip(2)), ("WEBP", pixels)):
        buf = io.BytesIO()
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(buf, format=fmt, exif=tag, lossless=True)
        (tmp_path / f"tagged.{fmt.lower()}").write_bytes(buf.getvalue())
        expected = photo.preprocess(want)
        assert torch.equal(photo.preprocess(tmp_path / f"tagged.{fmt.lower()}"), expected), fmt
        assert torch.equal(photo.preprocess(Image.open(io.BytesIO(buf.getvalue()))), expected), fmt
    # A run that read its photos as stored: a PIL image is not turned either.
    plain_ckpt = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 48}},
                        plain_ckpt)
    plain = load_predictor(plain_ckpt)
    assert torch.equal(plain.preprocess(Image.open(path)), plain.preprocess(stored))
    assert torch.equal(plain.preprocess(path), plain.preprocess(stored))

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(raw[:40])
    got = photo.top_k([str(path), Image.open(path), upright, str(broken)], 3)
    assert [r["image"] for r in got] == [str(path), 1, 2, str(broken)]
    assert got[0]["top_k"] == got[1]["top_k"] == got[2]["top_k"] and "error" in got[3] and "top_k" not in got[3]
    with torch.no_grad():
        probs = torch.softmax(photo.model(from_file), dim=1)[0]
    assert [t["index"] for t in got[0]["top_k"]] == probs.topk(3).indices.tolist()
    # (the image in a batch of three against alone: float32 sums in another order)
    assert [t["probability"] for t in got[0]["top_k"]] == pytest.approx(probs.topk(3).values.tolist(), abs=1e-5)
    with pytest.raises(ValueError, match=r"broken\.jpg"):
        photo.preprocess([path, broken])
    closed = Image.open(path)
    closed.close()
    got = photo.top_k([path, closed], 1)  # reported, as an unreadable file is; the others still predicted
    assert "top_k" in got[0] and got[1]["image"] == 1 and got[1]["error"].startswith("images[1]: not readable as RGB")
    with pytest.raises(ValueError, match=r"images\[0\]: not readable as RGB pixels"):
        photo.preprocess(closed)
    with pytest.raises(ValueError, match="preprocess: no images"):
        photo.preprocess([])
    for bad, said in ((upright.float() / 255, r"images\[1\]: .*float32.*uint8"),
                      (upright[0], r"images\[1\]: .*\(90, 60\)"), (upright[:2], r"images\[1\]: .*\(2, 90, 60\)"),
                      (upright[:, :0], r"images\[1\]: .*\(3, 0, 60\)"), (3, r"images\[1\]: .*int"),
                      (upright.permute(1, 2, 0).numpy() / 255.0, r"images\[1\]: a NumPy array of float64; give uint8"),
                      (upright.numpy()[:2].transpose(1, 2, 0), r"images\[1\]: a NumPy array of shape \(90, 60, 2\)")):
        with pytest.raises(ValueError, match=said):
            photo.top_k([path, bad])
    import numpy as np

    # NumPy's images, (H, W, C) as numpy.asarray of a PIL image gives (and a batch of them, (N, H, W, C)), were
    # refused; gray (H, W) too. A dict's keys were taken for paths.
    hwc = upright.permute(1, 2, 0).numpy()
    assert torch.equal(photo.preprocess(hwc), photo.preprocess(upright))
    assert torch.equal(photo.preprocess(np.stack([hwc, hwc[::-1]])), photo.preprocess([upright, upright.flip(1)]))
    assert torch.equal(photo.preprocess(hwc[..., 0]), photo.preprocess(upright[:1]))
    assert photo.top_k([hwc], 2)[0]["top_k"] == photo.top_k([upright], 2)[0]["top_k"]
    with pytest.raises(ValueError, match=r"^images: a dict; give .* \(a dict's values: list\(d.values\(\)\)\)"):
        photo.top_k({str(path): 1})
    # What a Python caller may get wrong is refused by name before anything runs, as the command line refuses
    # it (an interpolation was reported as every image's error; crop_pct 0 and image_size 0 fell back to the
    # defaults); a folder stands for its images, as on the command line; names may be given as a list.
    for bad, said in (({"interpolation": "nearest"}, r"^interpolation 'nearest' is not one of \['bilinear', "),
                      ({"crop_pct": 1.5}, r"^crop_pct must be in \(0, 1\] .* got 1\.5$"),
                      ({"crop_pct": 0}, r"^crop_pct must be in \(0, 1\]"),
                      ({"image_size": 0}, r"^image_size must be a whole number of pixels, at least 1, got 0$"),
                      ({"image_size": 48.5}, r"^image_size must be .* got 48\.5$")):
        with pytest.raises(ValueError, match=said):
            load_predictor(plain_ckpt, **bad)
    for bad, said in ((5, r"^images: of type int; give a file's path"), (None, r"^images: of type NoneType"),
                      (raw, r"^images: the bytes of a file\? give its path")):
        with pytest.raises(ValueError, match=said):
            photo.top_k(bad)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"^k must be a whole number of classes, at least 1, got "):
            photo.top_k([path], k)
    for size in (0, 2.5, True):  # (0 was DataLoader's own error, naming no option of ours)
        with pytest.raises(ValueError, match=r"^batch_size must be a whole number of images, at least 1, got "):
            photo.top_k([path], 1, batch_size=size)
    # numpy's numbers are numbers
    assert len(photo.top_k([path], np.int64(2))[0]["top_k"]) == 2
    assert load_predictor(plain_ckpt, image_size=np.int64(40), crop_pct=np.float32(0.5)).image_size == 40
    capsys.readouterr()
    assert load_predictor(photo_ckpt, image_size=64).image_size == 64  # as eval says it: a size not its own
    assert capsys.readouterr().err == (f"predict: note: image_size 48 is the size {photo_ckpt} was trained at; "
                                       f"predicting at 64 as asked\n")
    folder = tmp_path / "photos"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "one.jpg").write_bytes(raw)
    (folder / "two.jpg").write_bytes(raw)
    got = load_predictor(photo_ckpt, labels=[f"class {i}" for i in range(10)]).top_k(folder, 2)
    assert [r["image"] for r in got] == [str(folder / "two.jpg"), str(folder / "a" / "one.jpg")]  # as predict's
    assert got[0]["top_k"] == got[1]["top_k"] and got[0]["top_k"][0]["label"].startswith("class ")
    with pytest.raises(ValueError, match=r"^labels: 3 names, but the model has 10 outputs$"):
        load_predictor(photo_ckpt, labels=["a", "b", "c"])


def test_load_predictor_refuses_what_it_would_misread_and_takes_a_path_object(tmp_path):
    """A Python caller's switch given as text ("False" is true: antialias "False" resized with antialiasing),
    a device_target the command line has no choice for ("cpu" was taken as auto, the GPU where there is one)
    an empty list of class names (every output named None: no top-k at all) and a data set none of the three
    (taken as CIFAR's for a file that records none) are refused by name; a
    pathlib.Path names a model file as its text does (a file's Path raised AttributeError); a whole model pickled
    is named as such."""
    import pathlib

    import mobilenet_v1

    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=6)
    path = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    image = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for bad, said in (({"antialias": "False"}, r"^antialias must be True, False or None, got 'False'$"),
                      ({"exif_orientation": "False"}, r"^exif_orientation must be True, False or None, got 'False'$"),
                      ({"background_class": "False"}, r"^background_class must be True, False or None, got 'False'$"),
                      ({"device_target": "cpu"}, r"^device_target must be CPU, GPU or auto, got 'cpu'$"),
                      ({"device_target": "Ascend"}, r"^device_target Ascend: this toolkit runs on CUDA GPUs and "
                                                    r"CPUs; pass --device_target GPU, CPU or auto \(the GPU where "
                                                    r"there is one\)$"),
                      ({"labels": []}, r"^labels: a list of class names must hold non-empty text only, got \[\]$")):
        with pytest.raises(ValueError, match=said):
            load_predictor(path, **bad)
    # A whole number was a file descriptor to open(): labels=4 (a class count) read the caller's open file as
    # the names and closed it.
    with open(tmp_path / "notes.txt", "w+") as mine:
        with pytest.raises(TypeError, match=rf"^labels must be a file's path, imagenet, cifar10, cifar100 or a "
                                            rf"list of class names, got {mine.fileno()}$"):
            load_predictor(path, labels=mine.fileno())
        mine.write("still open")
    names = tmp_path / "names.txt"
    names.write_text("".join(f"class {i}\n" for i in range(10)))
    assert load_predictor(path, labels=names).names[0] == "class 0"
    assert load_predictor(path, antialias=False).antialias is False
    # A file that records no data set takes the caller's: a name that is none of the three ("imagenet") was read
    # as CIFAR's shrink to 32x32 under ImageNet's normalisation, without a word.
    bare = str(tmp_path / "bare.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict()}, bare)
    for name in ("imagenet", "CIFAR10", ""):
        with pytest.raises(ValueError, match=rf"^dataset must be one of cifar10, cifar100, imagenet2012, got "
                                             rf"{name!r}$"):
            load_predictor(bare, dataset=name)
    assert load_predictor(bare, dataset="imagenet2012").dataset == "imagenet2012"
    from_path = load_predictor(pathlib.Path(path))
    assert from_path.source == path
    assert from_path.top_k(image, 2) == load_predictor(path).top_k(image, 2)
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(ckpt_io.CheckpointError, match="model.onnx"):
        mobilenet_v1.load_model(fake)
    # A whole model pickled (torch.save(model)) is named as such, with the way out; torch's own first line, cut
    # before its options and holding terminal escapes, was all the error said.
    whole = tmp_path / "whole.pt"
    torch.save(model, whole)
    with pytest.raises(ckpt_io.CheckpointError) as refused:
        mobilenet_v1.load_model(whole)
    assert str(refused.value) == (f"checkpoint {whole}: cannot be read as a PyTorch checkpoint (it holds pickled "
                                  f"Python objects, not only tensors (the first: mobilenet_v1.model.MobileNetV1), "
                                  f"which are not unpickled here, as that can run code the file holds: a whole model "
                                  f"saved with torch.save(model), or objects beside the tensors (a script's args, "
                                  f"NumPy values)? save tensors only, e.g. torch.save(model.state_dict(), path))")


def test_top_k_ranks_only_the_outputs_that_are_classes():
    """Outputs 3 and 4 are no class (a model trained with class_num above its folders' count; the seed's
    1001st logit): top_k never names them, even asked for every output, though their logits are the largest,
    and the probabilities are the softmax over the three classes alone."""
    import math

    from mobilenet_v1.predict import Predictor

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[1.0, 3.0, 2.0, 9.0, 8.0]]).expand(x.shape[0], -1)

    predictor = Predictor(model=Fixed(), source="fixed", dataset="cifar10", image_size=32,
                          names=["a", "b", "c", None, None])
    [result] = predictor.top_k(torch.zeros(3, 32, 32, dtype=torch.uint8), k=5)
    z = math.exp(1) + math.exp(2) + math.exp(3)
    assert [(t["label"], t["index"]) for t in result["top_k"]] == [("b", 1), ("c", 2), ("a", 0)]
    assert [t["probability"] for t in result["top_k"]] == pytest.approx([math.exp(3) / z, math.exp(2) / z,
                                                                         math.exp(1) / z])


def test_image_files_lists_a_file_named_twice_once_however_its_path_is_spelt(tmp_path):
    from PIL import Image

    from mobilenet_v1.predict import image_files

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    spelt = [str(tmp_path / "a.png"), os.path.join(str(tmp_path), ".", "a.png"), str(tmp_path)]
    assert image_files(spelt) == [str(tmp_path / "a.png")]


def test_labels_given_for_fewer_outputs_than_the_model_has_are_refused_beside_recorded_names():
    """Only the names a model records may be fewer than its outputs (trained with class_num above its folders'
    count); a labels list or file given for it must name every output."""
    with pytest.raises(ValueError, match=r"^labels: 3 names, but the model has 5 outputs$"):
        class_names(5, ["a", "b", "c"], ["x", "y", "z"], False)


def test_a_cifar_models_photo_is_cropped_to_its_centre_square():
    """A CIFAR model's photo is centre-cropped to a square before it is shrunk to 32x32: a 32x64 image gives
    its middle 32 columns (a 32x32 image passes through unchanged), a 64x32 one its middle 32 rows."""
    from mobilenet_v1.predict import eval_image

    g = torch.Generator().manual_seed(0)
    middle = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=g)
    wide = torch.zeros(3, 32, 64, dtype=torch.uint8)
    wide[:, :, 16:48] = middle
    tall = torch.full((3, 64, 32), 255, dtype=torch.uint8)
    tall[:, 16:48, :] = middle
    assert torch.equal(eval_image(wide, "cifar10", 32), middle)
    assert torch.equal(eval_image(tall, "cifar10", 32), middle)


def test_an_image_in_memory_after_a_folder_keeps_its_place_among_the_images_given(tmp_path):
    """A folder given before an in-memory image stands for its files in the results, but the image's
    "image" (and the error naming a wrong one) is still its place among the images given, as documented:
    it was its place after the folder's files (images[3] of a list of two)."""
    from PIL import Image

    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=6)
    path = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 30), (60 * i, 90, 30)).save(folder / f"{i}.png")
    pixels = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    closed = Image.new("RGB", (20, 20))
    closed.close()
    predictor = load_predictor(path)
    got = predictor.top_k([folder, pixels, closed], 1)
    assert [r["image"] for r in got] == [str(folder / f"{i}.png") for i in range(3)] + [1, 2]
    assert got[4]["error"].startswith("images[2]: not readable as RGB pixels")
    alone = predictor.top_k(pixels, 1)[0]["top_k"][0]  # (to float rounding of another batch)
    assert got[3]["top_k"][0]["index"] == alone["index"]
    assert got[3]["top_k"][0]["probability"] == pytest.approx(alone["probability"], abs=1e-5)
    with pytest.raises(ValueError, match=r"^images\[1\]: a tensor of float32"):
        predictor.top_k([str(folder), pixels.float()])


def test_predict_prints_a_file_name_that_is_not_utf8_where_stdout_is_strict(tmp_path, capsys):
    """A UTF-8 locale's stdout (en_US.UTF-8; capsys's too) refuses the undecodable bytes of a Latin-1 file
    name, where the C locale's writes them: the text output lost every result to "error: 'utf-8' codec
    can't encode". The name is printed with those bytes escaped; the others as they are."""
    from PIL import Image

    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=6)
    path = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    folder = tmp_path / "latin"
    folder.mkdir()
    for name in (os.fsdecode(b"caf\xe9.png"), "th\u00e9.png"):
        Image.new("RGB", (40, 30), (60, 90, 30)).save(folder / name)
    assert cli.main(["predict", str(folder), "--ckpt_file", path, "--top_k", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0::2] == [f"{folder}/caf\\xe9.png", f"{folder}/th\u00e9.png"] and len(lines) == 4


def test_predict_prints_control_characters_of_names_escaped_not_to_the_terminal(tmp_path, capsys):
    """A file named a\x1b]0;T\x07\x1b[2Jb.png (an archive's, a scraper's) retitled the terminal and cleared the
    screen, hiding the lines before it; a label holding them (a --labels file's) and an unreadable file's error
    line did the same (helper-357). Printed escaped, as a name's undecodable bytes are; the results file keeps
    the name as the folder has it."""
    from PIL import Image

    _, ckpt = named_classes_checkpoint(tmp_path)
    folder = tmp_path / "odd"
    folder.mkdir()
    hostile = "a\x1b]0;T\x07\x1b[2Jb.png"
    Image.new("RGB", (40, 40), (60, 90, 30)).save(folder / hostile)
    (folder / "bad\rname.png").write_bytes(b"not an image")
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"c{i}\x1b[31m\n" for i in range(10)), encoding="utf-8")
    assert cli.main(["predict", str(folder), "--ckpt_file", ckpt, "--top_k", "1", "--labels", str(labels),
                     "--device_target", "CPU"]) == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\x07" not in out and "\r" not in err
    assert f"{folder}/a\\x1b]0;T\\x07\\x1b[2Jb.png" in out.splitlines()
    assert re.search(r"^ +\d+\.\d+%  c\d\\x1b\[31m  \[\d\]$", out.splitlines()[1])
    assert f"{folder}/bad\\rname.png" in err
    results = tmp_path / "r.csv"
    assert cli.main(["predict", str(folder), "--ckpt_file", ckpt, "--out", str(results), "--device_target", "CPU"]) \
        == 1
    with open(results, newline="", encoding="utf-8") as f:
        assert str(folder / hostile) in {row["image"] for row in csv.DictReader(f)}


def test_predict_names_a_compressed_tar_and_predicts_past_paths_that_give_no_image(tmp_path, capsys):
    """A .tar.gz was read as an image ("not a readable image"); a path that is not there stopped the whole run,
    the other files unpredicted. Each such path (not there, a link to nothing, a folder without images, a
    compressed tar) is now reported in its place, as a file that cannot be decoded is, the others predicted,
    exit status 1; where no path gives an image, predict stops before loading the model."""
    import tarfile

    from PIL import Image

    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=6)
    path = str(tmp_path / "plain.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "imagenet2012", "image_size": 32}}, path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.new("RGB", (40, 30), (60 * i, 90, 30)).save(photos / f"{i}.png")
    packed = str(tmp_path / "photos.tar.gz")
    with tarfile.open(packed, "w:gz") as tf:
        tf.add(str(photos), arcname="photos")
    empty, dangling, missing = tmp_path / "empty", tmp_path / "dangling.png", str(tmp_path / "missing.jpg")
    empty.mkdir()
    (empty / "notes.txt").write_text("no image")
    dangling.symlink_to(tmp_path / "nowhere.png")
    given = [str(photos / "0.png"), missing, packed, str(empty), str(dangling), str(photos / "1.png")]
    assert cli.main(["predict", *given, "--ckpt_file", path, "--top_k", "1", "--json"]) == 1
    captured = capsys.readouterr()
    got = json.loads(captured.out)["predictions"]
    assert [p["image"] for p in got] == given
    assert [("top_k" in p, "error" in p) for p in got] == [(True, False)] + [(False, True)] * 4 + [(True, False)]
    assert got[1]["error"] == f"image {missing}: no such file or folder"
    assert got[2]["error"].startswith(f"{packed} is a compressed tar archive: predict reads image files, folders of "
                                      f"them and uncompressed .tar archives") and "decompress it" in got[2]["error"]
    assert got[3]["error"].startswith(f"folder {empty}: no image files (.jpg")
    assert got[4]["error"] == f"image {dangling}: a link to nothing"
    assert "4 of 6 image file(s) could not be read or decoded (the others were predicted)" in captured.err
    # Alone: said as it is, not "not a readable image".
    assert cli.main(["predict", packed, "--ckpt_file", path]) == 1
    err = capsys.readouterr().err
    assert "compressed tar archive" in err and "not a readable image" not in err
    assert cli.main(["predict", missing, str(empty), "--ckpt_file", path]) == 1
    assert capsys.readouterr().err == (f"mobilenet-v1 predict: error: image {missing}: no such file or folder; "
                                       f"{got[3]['error']}\n")
    # From Python alike: in its result, not raised.
    results = load_predictor(path).top_k([packed, empty, photos / "1.png"], 1)
    assert [r.get("error") for r in results] == [got[2]["error"], got[3]["error"], None]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX's")
def test_predict_says_a_named_pipe_given_is_one_as_eval_does(tmp_path, capsys):
    """A named pipe given (<(cat x.jpg) is one, behind a /dev/fd link) was "no such file or folder" or "a link to
    nothing": it is there. It is read as eval reads one: not at all (open() would wait for a writer), said so."""
    ckpt = saved_checkpoint(tmp_path, MobileNetV1(class_num=10, width_mult=0.25))
    os.mkfifo(tmp_path / "x.png")
    os.symlink(tmp_path / "x.png", tmp_path / "fd")
    for given in ("x.png", "fd"):
        assert cli.main(["predict", str(tmp_path / given), "--ckpt_file", ckpt, "--num_workers", "0"]) == 1
        assert (f"could not be read or decoded: {tmp_path / given}: a named pipe, not a regular file: not read"
                in capsys.readouterr().err)


def test_static_batch_regrouping_keeps_the_images_left_over_after_each_batch():
    """A static-batch graph's calibration batches are the loader's regrouped into batches of exactly its size, in
    order: the images a batch leaves over start the next; only those left at the very end are dropped."""
    from mobilenet_v1.quantize import _whole_batches_of

    x, y = torch.arange(7.0).view(7, 1), torch.arange(7)
    got = list(_whole_batches_of([(x[:3], y[:3]), (x[3:6], y[3:6]), (x[6:], y[6:])], 2))
    assert [b.tolist() for _, b in got] == [[0, 1], [2, 3], [4, 5]]
    assert all(torch.equal(a.flatten().long(), b) for a, b in got)


def test_labels_given_as_a_json_list_are_read_and_a_csv_of_index_and_name_is_refused(tmp_path):
    """predict --labels read a pretty-printed JSON list a line a name ('"dog",', ']') and a CSV of index and name
    as names ('0,cat'), without a word where the count fitted the model's outputs (helper-344)."""
    from mobilenet_v1.predict import class_names, read_labels_file

    def write(name, text):
        (tmp_path / name).write_text(text, encoding="utf-8")
        return str(tmp_path / name)

    assert read_labels_file(write("l.json", '["cat", "dog"]')) == ["cat", "dog"]
    assert class_names(2, None, write("p.json", '[\n  "cat",\n  "dog"\n]\n'), False) == ["cat", "dog"]
    with pytest.raises(ValueError, match="a JSON dict, not a list of class names"):
        read_labels_file(write("d.json", '{"0": "cat", "1": "dog"}'))
    for text in ("0,cat\n1,dog\n", "index,name\n0,cat\n1,dog\n", "0\tcat\n1\tdog\n"):
        with pytest.raises(ValueError, match=r"l\.csv: its lines start with an index"):
            class_names(2, None, write("l.csv", text), False)
    names = "n01440764 tench, Tinca tinca\n7up, a soda\n3d printer\n"  # names with commas and digits: names
    assert read_labels_file(write("l.txt", names)) == ["n01440764 tench, Tinca tinca", "7up, a soda", "3d printer"]
    # A built-in list's name in another spelling is no file: pointed to the built-in one.
    for given, builtin in (("Imagenet", "imagenet"), ("ImageNet2012", "imagenet"), ("CIFAR-10", "cifar10"),
                           ("cifar_100", "cifar100")):
        with pytest.raises(ValueError, match=rf"^--labels {given}: No such file or directory \(the built-in list is "
                                             rf"--labels {builtin}\)$"):
            class_names(10, None, given, False)
    with pytest.raises(ValueError, match=r"^--labels imagenet\.txt: No such file or directory$"):
        read_labels_file("imagenet.txt")
    if os.path.exists("/dev/zero"):  # a link to it (or to any endless stream) read until memory ran out (helper-361)
        os.symlink("/dev/zero", tmp_path / "zero.txt")
        with pytest.raises(ValueError, match=r"zero\.txt: more than 67,108,864 bytes, not a file of class names$"):
            read_labels_file(str(tmp_path / "zero.txt"))


def test_predict_starts_loader_workers_only_on_a_gpu_for_more_than_one_batch():
    """--num_workers -1 (the default): training's count of workers where the model runs on a GPU and the images
    fill more than one batch; none on the CPU, nor for one batch (8 images in batches of 8); a count given is
    kept."""
    from mobilenet_v1.data import default_workers
    from mobilenet_v1.predict import predict_workers

    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert predict_workers(-1, 9, 8, gpu) == default_workers(-1) > 0
    assert predict_workers(-1, 8, 8, gpu) == 0 and predict_workers(-1, 1, 8, gpu) == 0
    assert predict_workers(-1, 100, 8, cpu) == 0
    assert predict_workers(3, 1, 8, cpu) == 3 and predict_workers(0, 100, 8, gpu) == 0


def test_predicts_loader_workers_start_as_every_loaders_do(tmp_path, monkeypatch):
    """predict's workers took none of data.start_worker (Ctrl-C left to the main process, a first SIGTERM served
    through, the inherited objects frozen out of their garbage collection): each worker runs it now."""
    import signal

    from PIL import Image

    from mobilenet_v1 import predict as predict_mod

    _, ckpt = named_classes_checkpoint(tmp_path)
    for k in range(3):
        Image.fromarray(torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()).save(tmp_path / f"{k}.png")
    real = predict_mod.start_worker

    def started(worker_id=0):
        real(worker_id)
        (tmp_path / f"worker-{worker_id}").write_text(str(signal.getsignal(signal.SIGINT) is signal.SIG_IGN))

    monkeypatch.setattr(predict_mod, "start_worker", started)
    rows = load_predictor(ckpt).top_k([str(tmp_path / f"{k}.png") for k in range(3)], 2, num_workers=2,
                                          batch_size=1)
    assert len(rows) == 3 and not [r for r in rows if "error" in r]
    assert sorted(p.name for p in tmp_path.glob("worker-*")) == ["worker-0", "worker-1"]
    assert {p.read_text() for p in tmp_path.glob("worker-*")} == {"True"}


def test_predicts_loader_workers_end_when_a_worker_fails(tmp_path, monkeypatch):
    """A worker's error (a decoder raising what no unreadable file does) ended top_k with the DataLoader's error,
    whose traceback kept the loader's workers alive into the interpreter's exit, where multiprocessing sent them one
    SIGTERM, which they serve on, and waited for ever: predict never exited (helper-373). They end with top_k."""
    import multiprocessing

    from PIL import Image

    _, ckpt = named_classes_checkpoint(tmp_path)
    for k in range(6):
        Image.fromarray(torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()).save(tmp_path / f"{k}.png")
    real = T.decode_rgb

    def failing(data, name="<bytes>", exif=False):  # in the workers, which fork with it
        if name.endswith("4.png"):
            raise ZeroDivisionError("a decoder's own fault")
        return real(data, name, exif)

    monkeypatch.setattr(T, "decode_rgb", failing)
    predictor = load_predictor(ckpt)
    with pytest.raises(ZeroDivisionError, match="a decoder's own fault"):
        predictor.top_k([str(tmp_path / f"{k}.png") for k in range(6)], 2, num_workers=2, batch_size=1)
    assert multiprocessing.active_children() == []


def test_a_labels_file_with_an_empty_line_names_that_line_counted_from_1(tmp_path):
    """--labels: one name per line; an empty one among them is named by its line as an editor numbers it (the
    empty lines at the end are left off; a byte-order mark and CRLF endings are read as the text they frame)."""
    from mobilenet_v1.predict import read_labels_file

    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"\xef\xbb\xbfcat\r\n\r\ndog\r\n\r\n")
    with pytest.raises(ValueError, match=r"expected one non-empty class name per line, in label order \(line 2 is "
                                         r"empty\)$"):
        read_labels_file(str(labels))
    labels.write_text("cat\ndog\n\n\n")
    assert read_labels_file(str(labels)) == ["cat", "dog"]


def test_a_file_that_records_no_padding_is_built_as_padding_says_by_predict_export_convert_and_recalibrate(
        tmp_path, capsys, cifar_dir, exported_once):
    """A symmetric run's weights written as a MindSpore .ckpt (convert warns: MindSpore pads SAME) record no
    padding. eval took --padding for such a file; predict, export, convert and recalibrate-bn had no such option,
    and convert, average and recalibrate-bn wrote the SAME they presumed as if the file had said it, after which
    nothing could build the network as it was trained."""
    from PIL import Image

    from mobilenet_v1 import mindspore_io

    (tmp_path / "run").mkdir()
    _, original = named_classes_checkpoint(tmp_path / "run", "symmetric")
    seed_file = str(tmp_path / "sym.ckpt")
    assert cli.main(["convert", original, seed_file]) == 0
    assert "pads SAME" in capsys.readouterr().err and mindspore_io.detect_format(seed_file) == "mindspore"
    image = tmp_path / "photo.png"
    Image.fromarray(torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()).save(image)

    said = []  # each predict's stderr

    def probabilities(path, *options):
        assert cli.main(["predict", str(image), "--ckpt_file", path, "--json", "--device_target", "CPU",
                         "--dataset", "cifar10", "--image_size", "40", *options]) == 0
        out, err = capsys.readouterr()
        said.append(err)
        out = json.loads(out)
        return [t["index"] for t in out["predictions"][0]["top_k"]], [t["probability"] for t in
                                                                        out["predictions"][0]["top_k"]]

    def same(got, tolerance=1e-5):
        return got[0] == trained[0] and got[1] == pytest.approx(trained[1], abs=tolerance)

    trained = probabilities(original)
    assert not same(probabilities(seed_file))  # built SAME: another network's outputs
    assert same(probabilities(seed_file, "--padding", "symmetric"))
    assert (f"predict: note: --padding symmetric given; {seed_file} records no padding (a MindSpore .ckpt's network "
            f"pads SAME): predict builds it with padding symmetric as asked") in said[-1]
    # Convert: a presumed padding is not written as the file's; a given one is, and a recorded one wins.
    for name, options, recorded in (("plain.pt", [], None), ("sym.pt", ["--padding", "symmetric"], "symmetric")):
        assert cli.main(["convert", seed_file, str(tmp_path / name), *options]) == 0
        err = capsys.readouterr().err
        assert ("convert builds it with padding symmetric as asked" in err) == bool(options)
        assert (ckpt_io.load_file(str(tmp_path / name))["model_args"].get("padding")) == recorded, name
    assert same(probabilities(str(tmp_path / "sym.pt")))
    # A MindSpore .ckpt written has no place for it: said, with what to do (helper-358).
    assert cli.main(["convert", seed_file, str(tmp_path / "again.ckpt"), "--padding", "symmetric"]) == 0
    assert (f"{tmp_path / 'again.ckpt'}, a MindSpore .ckpt, has no place to record it: pass --padding symmetric "
            f"again where it is read") in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path / "sym.pt"), str(tmp_path / "again.pt"), "--padding", "same"]) == 0
    assert (f"mobilenet-v1 convert: not used here: --padding same ({tmp_path / 'sym.pt'} has padding symmetric, "
            f"which convert uses)") in capsys.readouterr().err
    assert ckpt_io.load_file(str(tmp_path / "again.pt"))["model_args"]["padding"] == "symmetric"
    assert same(probabilities(str(tmp_path / "sym.pt"), "--padding", "same"))
    assert f"predict: not used here: --padding same ({tmp_path / 'sym.pt'} has padding symmetric" in said[-1]
    # Average: a file that records none beside one that records symmetric is refused, saying how to record it.
    capsys.readouterr()
    assert cli.main(["average", seed_file, str(tmp_path / "sym.pt"), "--out", str(tmp_path / "mixed.pt")]) == 1
    assert (f"({seed_file} records no padding: SAME is presumed; `mobilenet-v1 convert {seed_file} OUT --padding "
            f"symmetric` writes it with padding symmetric recorded)") in capsys.readouterr().err
    # Files that all record none give one that records none.
    assert cli.main(["average", seed_file, str(tmp_path / "plain.pt"), "--out", str(tmp_path / "mean.pt")]) == 0
    assert "padding" not in ckpt_io.load_file(str(tmp_path / "mean.pt"))["model_args"]
    # Export: the ONNX file computes the symmetric network and records its padding.
    capsys.readouterr()
    assert cli.main(["export", "--ckpt_file", seed_file, "--file_name", str(tmp_path / "sym"), "--dataset",
                     "cifar10", "--height", "40", "--width", "40", "--padding", "symmetric"]) == 0
    assert "export builds it with padding symmetric as asked" in capsys.readouterr().err
    assert OnnxModel(str(tmp_path / "sym.onnx")).metadata["padding"] == "symmetric"
    assert same(probabilities(str(tmp_path / "sym.onnx")), 1e-4)
    assert same(probabilities(str(tmp_path / "sym.onnx"), "--padding", "same"), 1e-4)
    assert (f"not used here: --padding same ({tmp_path / 'sym.onnx'} is an exported file, its network built, padding "
            f"symmetric when it was exported)") in said[-1]
    # recalibrate-bn measures the statistics through the network given, and records its padding.
    measured = {}
    for name, options in (("re_plain.pt", []), ("re_sym.pt", ["--padding", "symmetric"])):
        assert cli.main(["recalibrate-bn", seed_file, "--out", str(tmp_path / name), "--dataset_path",
                         str(cifar_dir), "--dataset", "cifar10", "--image_size", "32", "--images", "16",
                         "--num_workers", "0", "--device_target", "CPU", *options]) == 0
        measured[name] = ckpt_io.load_file(str(tmp_path / name))
    assert "padding" not in measured["re_plain.pt"]["model_args"]
    assert measured["re_sym.pt"]["model_args"]["padding"] == "symmetric"
    direct = str(tmp_path / "re_direct.pt")
    assert cli.main(["recalibrate-bn", original, "--out", direct, "--dataset_path", str(cifar_dir), "--image_size",
                     "32", "--images", "16", "--num_workers", "0", "--device_target", "CPU"]) == 0
    want = ckpt_io.load_file(direct)["model"]
    statistics = [k for k in want if k.endswith(("running_mean", "running_var"))]
    assert len(statistics) == 54
    assert all(torch.allclose(measured["re_sym.pt"]["model"][k], want[k], rtol=1e-4, atol=1e-5) for k in statistics)
    assert not torch.allclose(measured["re_plain.pt"]["model"][statistics[0]], want[statistics[0]], atol=1e-3)


def test_calibration_runs_onnx_runtime_a_few_images_at_a_time_and_a_static_batch_whole():
    """ONNX Runtime's calibration session takes about 84 MB an image of a run at width 1.0, 224 px: batches of 16 made
    quantize peak at 2.2 GB, 1.2 GB in runs of 4 (helper-382; the INT8 file byte for byte the same). A graph of a
    static batch gets its batches whole, partial ones left out; every image is counted once."""
    from mobilenet_v1 import quantize

    batches = [(torch.zeros(16, 3, 8, 8), torch.zeros(16)), (torch.ones(6, 3, 8, 8), torch.zeros(6))]
    reader = quantize._reader(iter(batches), "input", None)
    runs = []
    while True:
        run = reader.get_next()
        if run is None:
            break
        runs.append(run["input"].shape[0])
    assert runs == [4, 4, 4, 4, 4, 2] and reader.images == 22
    reader = quantize._reader(iter(batches), "input", 16)
    assert reader.get_next()["input"].shape == (16, 3, 8, 8) and reader.get_next() is None and reader.images == 16


def test_onnx_runtime_sessions_plan_no_second_block_of_the_first_runs_size():
    """ONNX Runtime's memory pattern planned a second block the size of the first run's at the second: eval of an
    ONNX file in batches of 64 at 224 px held 1.64 GB where 1.23 GB did (helper-382), the same top-1 either way."""
    from mobilenet_v1.onnx_io import session_options

    assert session_options().enable_mem_pattern is False
    assert session_options(threads=2, reference=True).enable_mem_pattern is False
