"""mobilenet-v1 recalibrate-bn: BatchNorm statistics measured anew, at the size the model will run at."""
import copy
import hashlib
import re

import pytest
import torch
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, mindspore_io
from mobilenet_v1.config import Config
from mobilenet_v1.evaluate import trained_size
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.predict import load_predictor
from mobilenet_v1.quantize import calibration_loader
from mobilenet_v1.recalibrate import recalibrate


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1),
                        nn.BatchNorm2d(2, momentum=0.01))
    with torch.no_grad():
        for bn in (net[1], net[4]):
            bn.running_mean.normal_()
            bn.running_var.uniform_(2, 3)
    return net


def test_the_statistics_become_the_mean_of_every_batchs_and_nothing_else_changes():
    """Each BatchNorm's running mean and variance are the mean over the batches of each batch's own
    (measured here by a copy that takes each batch's statistics whole, momentum 1); weights, momenta and
    eval mode are as before; a batch of one image is passed over."""
    net = small_net().eval()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(n, 3, 9, 9, generator=g) * 2 + 1, None) for n in (5, 3, 1, 4)]
    assert recalibrate(net, batches, torch.device("cpu")) == 12
    probe = copy.deepcopy(small_net())
    for bn in (probe[1], probe[4]):
        bn.momentum = 1.0
    stats = {1: [], 4: []}
    probe.train()
    with torch.no_grad():
        for x, _ in batches:
            if x.shape[0] > 1:
                probe(x)
                for i in stats:
                    stats[i].append((probe[i].running_mean.clone(), probe[i].running_var.clone()))
    for i, seen in stats.items():
        assert torch.allclose(net[i].running_mean, torch.stack([m for m, _ in seen]).mean(0), atol=1e-6)
        assert torch.allclose(net[i].running_var, torch.stack([v for _, v in seen]).mean(0), atol=1e-6)
    for k, v in weights.items():
        assert torch.equal(net.state_dict()[k], v), k
    assert not net.training and net[1].momentum == 0.1 and net[4].momentum == 0.01
    with pytest.raises(ValueError, match="no batch of two images or more"):
        recalibrate(small_net(), [(torch.randn(1, 3, 9, 9), None)], torch.device("cpu"))
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        recalibrate(nn.Conv2d(3, 2, 1), batches, torch.device("cpu"))


def save(path, image_size=32, config=True) -> str:
    torch.manual_seed(3)
    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = {"format": ckpt_io.FORMAT, "model": model.state_dict(), "classes": ["a", "b", "c", "d"],
            "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "same"}}
    if config:
        ckpt["config"] = {"dataset": "cifar10", "image_size": image_size, "lr_max": 0.1}
    torch.save(ckpt, str(path))
    return str(path)


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_the_command_measures_at_the_new_size_and_records_it_for_eval_and_predict(tmp_path, cifar_dir, capsys):
    src = save(tmp_path / "m.pt", image_size=32)
    out = str(tmp_path / "m24.pt")
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(cifar_dir), "--image_size", "24",
                     "--images", "97", "--batch_size", "16", "--out", out]) == 0
    said = capsys.readouterr().out
    # 97 images in batches of 16: the last batch, of one image, is passed over.
    assert f"wrote {out}: PyTorch checkpoint" in said
    assert "the BatchNorm statistics of its 27 layers measured on 96 training images" in said
    assert "at image_size 24 (trained at 32)" in said
    before, after = ckpt_io.load_file(src), ckpt_io.load_file(out)
    assert after["config"]["image_size"] == 24 and after["config"]["lr_max"] == 0.1
    assert after["config"]["bn_recalibration"]["images"] == 96
    assert after["config"]["bn_recalibration"]["trained_at"] == 32
    assert after["classes"] == ["a", "b", "c", "d"]
    # The statistics are those of the same training images at 24x24, the weights the source's.
    reference = MobileNetV1(class_num=4, width_mult=0.25)
    reference.load_state_dict(before["model"])
    recalibrate(reference, calibration_loader("cifar10", str(cifar_dir), 24, 97, 1, 16), torch.device("cpu"))
    for name, value in after["model"].items():
        if "running" in name:
            assert torch.allclose(value, reference.state_dict()[name], atol=1e-6), name
            assert not torch.allclose(value, before["model"][name]), name
        elif "num_batches" not in name:
            assert torch.equal(value, before["model"][name]), name
    # eval and predict take the new size; an explicit --image_size still wins, with a note naming why.
    assert trained_size(Config(), after, out, given=set()).image_size == 24
    assert "has its BatchNorm statistics measured at (recalibrate-bn)" in capsys.readouterr().err
    assert trained_size(Config(image_size=32), after, out, given={"image_size"}).image_size == 32
    assert load_predictor(out).image_size == 24


def test_bad_requests_are_refused_and_the_source_is_left_whole(tmp_path, cifar_dir, capsys):
    src = save(tmp_path / "m.pt")
    before = digest(src)
    data = ["--dataset_path", str(cifar_dir)]
    cases = [
        (["--out", src], f"--out {src} is the checkpoint read"),
        (["--out", str(tmp_path / "o.pt"), "--dataset", "imagenet2012"],
         "--dataset imagenet2012: .*m.pt was trained on cifar10"),
        (["--out", str(tmp_path / "o.pt"), "--images", "1"], "--images 1: must be at least 2"),
        (["--out", str(tmp_path / "o.pt"), "--image_size", "0"], "--image_size 0: must be at least 1"),
        (["--out", str(tmp_path / "o.bin")], "cannot tell the format from the extension .bin"),
    ]
    for extra, message in cases:
        assert cli.main(["recalibrate-bn", src, *data, *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("mobilenet-v1 recalibrate-bn: error: ")
        assert re.search(message, err), err
    assert digest(src) == before and not (tmp_path / "o.pt").exists()
    # A MindSpore file records neither the data set nor the size: both are asked for by name.
    bare = save(tmp_path / "bare.pt", config=False)
    mindspore_io.convert(bare, str(tmp_path / "bare.ckpt"))
    assert cli.main(["recalibrate-bn", str(tmp_path / "bare.ckpt"), *data, "--out", str(tmp_path / "o.pt")]) == 1
    assert "does not record its data set: pass --dataset cifar10|imagenet2012" in capsys.readouterr().err
    assert cli.main(["recalibrate-bn", str(tmp_path / "bare.ckpt"), *data, "--dataset", "cifar10",
                     "--out", str(tmp_path / "o.pt")]) == 1
    assert "does not record the image size it was trained at: pass --image_size N" in capsys.readouterr().err
    # Written as a MindSpore file, the new size cannot be recorded: the command says what to pass instead.
    assert cli.main(["recalibrate-bn", src, *data, "--image_size", "24", "--images", "32",
                     "--out", str(tmp_path / "o.ckpt")]) == 0
    assert "pass --image_size 24 to eval, export and predict" in capsys.readouterr().err
