"""--mean/--std: a run's own per-channel normalisation, recorded with it and followed by everything that reads
its files (eval, export, predict, quantize, a distilling student's teacher), named where it cannot be kept."""
import json

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, evaluate, quantize, train
from mobilenet_v1.config import ConfigError, load_config, normalisation
from mobilenet_v1.data import DataOptions, build_loader
from mobilenet_v1.losses import Renormalised
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import OnnxModel
from mobilenet_v1.predict import load_predictor
from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD

from conftest import class_images

OWN = ["--mean=0.5", "--std=0.25,0.25,0.25"]
OWN_NORM = ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_mean_and_std_read_as_three_values_on_the_0_1_scale_and_the_data_sets_own_are_the_default(tmp_path):
    cfg = load_config(OWN)
    assert (cfg.mean, cfg.std) == ("0.5,0.5,0.5", "0.25,0.25,0.25") and cfg.normalisation == OWN_NORM
    assert load_config([]).normalisation == (CIFAR_MEAN, CIFAR_STD)
    assert load_config(["--dataset=imagenet2012"]).normalisation == (IMAGENET_MEAN, IMAGENET_STD)
    assert load_config(["--dataset=imagenet2012", "--mean", "0.1 0.2 0.3"]).normalisation == \
        ((0.1, 0.2, 0.3), IMAGENET_STD)
    # The data set's own values given are the default, one spelling (a resume or eval then sees no change).
    assert load_config(["--mean=0.4914,0.4822,0.4465"]).mean == ""
    assert load_config(["--dataset=imagenet2012", "--mean=0.4914,0.4822,0.4465"]).mean == "0.4914,0.4822,0.4465"
    path = tmp_path / "c.yaml"
    path.write_text("mean: [0.25, 0.5, 0.75]\nstd: 0.2\n")
    assert load_config([f"--config_path={path}"]).normalisation == ((0.25, 0.5, 0.75), (0.2, 0.2, 0.2))
    with pytest.raises(ConfigError, match=r"option --mean: mean 123.675, 116.28, 103.53: each value must be in "
                                          r"\[0, 1\], on the \[0, 1\] pixel scale \(the 0-255 scale\? divide by 255\)"):
        load_config(["--mean=123.675,116.28,103.53"])
    with pytest.raises(ConfigError, match=r"option --std: std must be three numbers \(R,G,B\) or one for every "
                                          r"channel, got '0.2,0.2'"):
        load_config(["--std=0.2,0.2"])
    with pytest.raises(ConfigError, match=r"option --std: std 0.2, 0, 0.2: each value must be in \(0, 1\]"):
        load_config(["--std=0.2,0,0.2"])
    path.write_text("mean: [0.5, nan, 0.5]\n")
    with pytest.raises(ConfigError, match=rf"config file {path}: mean must be three numbers"):
        load_config([f"--config_path={path}"])


def test_every_pipeline_normalises_by_the_run_s_values(cifar_dir, image_folder):
    """CIFAR's on-device loader, and an image folder's CPU and GPU-code pipelines: the same pixels, another
    affine map per channel."""
    for dataset, root, pipelines in (("cifar10", cifar_dir, ("cpu",)), ("imagenet2012", image_folder, ("cpu", "gpu"))):
        for pipeline in pipelines:
            batches = {}
            for norm in (None, OWN_NORM):
                opts = DataOptions(dataset, str(root), batch_size=8, image_size=32, seed=1, num_workers=0,
                                   channels_last=False, pipeline=pipeline, norm=norm)
                with build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False) as loader:
                    batches[norm] = torch.cat([x for x, _ in loader])
            (mean, std), (own_mean, own_std) = normalisation(dataset), OWN_NORM
            pixels = batches[None] * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
            expected = (pixels - torch.tensor(own_mean).view(1, 3, 1, 1)) / torch.tensor(own_std).view(1, 3, 1, 1)
            assert torch.allclose(batches[OWN_NORM], expected, atol=1e-5), (dataset, pipeline)
            assert not torch.allclose(batches[OWN_NORM], batches[None], atol=0.1)


def test_a_run_s_normalisation_is_followed_by_eval_export_predict_and_quantize(cifar_dir, tmp_path, capsys,
                                                                               monkeypatch):
    cfg = load_config([f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--image_size=32", "--batch_size=32",
                       "--epoch_size=1", "--warmup_epochs=0", "--device_target=CPU", "--num_workers=0",
                       f"--save_checkpoint_path={tmp_path / 'run'}", *OWN])
    seen = []  # the normalisation of each loader that train, eval and quantize build
    for module in (train, evaluate, quantize):
        real = module.build_loader
        monkeypatch.setattr(module, "build_loader",
                            lambda opts, real=real, **kw: seen.append(opts.norm) or real(opts, **kw))
    path = train.run(cfg)["checkpoint"]
    assert seen == [OWN_NORM]
    recorded = ckpt_io.load_file(path)["config"]
    assert (recorded["mean"], recorded["std"]) == ("0.5,0.5,0.5", "0.25,0.25,0.25")
    capsys.readouterr()

    base = ["eval", f"--dataset_path={cifar_dir}", "--device_target=CPU", "--num_workers=0",
            f"--checkpoint_path={path}"]
    assert cli.main(base + ["--json"]) == 0
    err = capsys.readouterr().err
    assert f"mean 0.5,0.5,0.5: what {path}'s run normalised its inputs by (--mean to evaluate with another)" in err
    assert f"std 0.25,0.25,0.25: what {path}'s run normalised its inputs by" in err
    assert cli.main(base + ["--mean=0.4914,0.4822,0.4465"]) == 0  # told otherwise: its own mean, the run's std
    assert seen[1:] == [OWN_NORM, (CIFAR_MEAN, OWN_NORM[1])]

    # An exported file records it, and one that takes pixels normalises them by it.
    assert cli.main(["export", "--ckpt_file", path, "--file_name", str(tmp_path / "float")]) == 0
    assert cli.main(["export", "--ckpt_file", path, "--file_name", str(tmp_path / "pixels"),
                     "--image_input", "True"]) == 0
    meta = OnnxModel(str(tmp_path / "float.onnx")).metadata
    assert (meta["mean"], meta["std"]) == ([0.5] * 3, [0.25] * 3)
    model = train.model_from_checkpoint(ckpt_io.load_file(path), path)[0].eval()
    pixels = torch.from_numpy(class_images(np.arange(4), 7))  # (4, 3, 32, 32) uint8
    with torch.no_grad():
        expected = model((pixels.float() / 255 - 0.5) / 0.25)
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / "pixels.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels.permute(0, 2, 3, 1).contiguous().numpy()})[0]
    assert np.allclose(got, expected.numpy(), atol=1e-4)

    # predict, from the checkpoint and from either file: the probabilities of those inputs.
    from PIL import Image
    image = tmp_path / "one.png"
    Image.fromarray(pixels[0].permute(1, 2, 0).numpy()).save(image)
    want = torch.softmax(expected[0], 0).max().item()
    for source in (path, str(tmp_path / "float.onnx"), str(tmp_path / "pixels.onnx")):
        predictor = load_predictor(source)
        assert predictor.normalisation == OWN_NORM
        assert predictor.top_k([str(image)], 1)[0]["top_k"][0]["probability"] == pytest.approx(want, abs=1e-5)
    capsys.readouterr()
    assert cli.main(["predict", str(image), "--ckpt_file", path, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["mean"], got["std"]) == ([0.5] * 3, [0.25] * 3)

    # INT8 calibration (and its comparison) read the calibration images as the model's run did.
    del seen[:]
    assert cli.main(["quantize", "--onnx", str(tmp_path / "float.onnx"), "--calib_data", str(cifar_dir),
                     "--calib_images", "16", "--out", str(tmp_path / "int8.onnx")]) == 0
    assert seen == [OWN_NORM, OWN_NORM]
    assert OnnxModel(str(tmp_path / "int8.onnx")).metadata["mean"] == [0.5] * 3

    capsys.readouterr()
    assert cli.main(["info", path]) == 0
    assert ("normalisation:  mean [0.5, 0.5, 0.5], std [0.25, 0.25, 0.25] of 0-1 RGB values (its run's --mean/--std)"
            in capsys.readouterr().out)
    # A MindSpore checkpoint has no place for it: said. An average with a model of other inputs: refused.
    assert cli.main(["convert", path, str(tmp_path / "seed.ckpt")]) == 0
    assert ("was trained on inputs normalised by mean 0.5,0.5,0.5, std 0.25,0.25,0.25 (its run's --mean/--std); the "
            "seed's pipeline normalises by cifar10's constants: give it these" in capsys.readouterr().err)
    other = str(tmp_path / "other.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10"}}, other)
    assert cli.main(["average", path, other, "--out", str(tmp_path / "mean.pt")]) != 0
    assert (f"checkpoint {other} was trained on inputs normalised by mean 0.4914,0.4822,0.4465, std 0.2023,0.1994,"
            f"0.201, {path} on mean 0.5,0.5,0.5, std 0.25,0.25,0.25: the mean would mix models of other inputs"
            in capsys.readouterr().err)
    # A resume that normalises otherwise is named with the keys that changed.
    line = train.recipe_change(ckpt_io.load_file(path), path, load_config([]))
    assert ("was trained with image_size 32, mean '0.5,0.5,0.5', std '0.25,0.25,0.25'; continuing with this run's "
            "image_size 224, mean '0.4914,0.4822,0.4465', std '0.2023,0.1994,0.201'") in line
    assert train.recipe_change(ckpt_io.load_file(path), path, load_config(["--image_size=32", *OWN])) == ""


def test_a_teacher_of_other_inputs_is_handed_each_batch_in_its_own_normalisation(tmp_path):
    teacher = MobileNetV1(class_num=4, width_mult=0.25).eval()
    path = str(tmp_path / "teacher.ckpt")
    ckpt_io.atomic_save({"model": teacher.state_dict(), "config": {"dataset": "cifar10"}}, path)
    pixels = torch.from_numpy(class_images(np.arange(4), 3)).float() / 255
    for student, mine in ((OWN, OWN_NORM), ([], None)):
        cfg = load_config(["--class_num=4", "--width_mult=0.25", "--image_size=32", f"--teacher={path}", *student])
        distill = train.build_distiller(cfg, None, torch.device("cpu"), torch.contiguous_format)
        assert isinstance(distill.teacher, Renormalised) == (mine is not None)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in cfg.normalisation)
        seed_mean, seed_std = (torch.tensor(v).view(1, 3, 1, 1) for v in (CIFAR_MEAN, CIFAR_STD))
        with torch.no_grad():
            want = teacher((pixels - seed_mean) / seed_std)  # what it was trained to take
            assert torch.allclose(distill.logits((pixels - mean) / std), want, atol=1e-4)


def test_data_stats_gives_the_pixels_mean_and_std_and_the_images_per_class(cifar_dir, image_folder, capsys):
    from mobilenet_v1.data import load_cifar

    base = ["data-stats", f"--dataset_path={cifar_dir}", "--image_size=32", "--num_workers=0"]
    assert cli.main(base + ["--images=0", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    x, y = load_cifar(str(cifar_dir), True)
    pixels = x.double() / 255
    mean, std = pixels.mean(dim=(0, 2, 3)), pixels.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False)
    assert stats["mean"] == [round(float(v), 4) for v in mean] and stats["std"] == [round(float(v), 4) for v in std]
    assert stats["classes"] == {str(k): int(n) for k, n in enumerate(torch.bincount(y))}
    assert (stats["images"], stats["measured"]) == (192, 192)
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    suggested = out.split("to train with them: ")[1].split()
    assert load_config(suggested).normalisation == (tuple(stats["mean"]), tuple(stats["std"]))
    # An image folder's classes by name; a sample of its images; a class 4 times another's is pointed out.
    folder = ["data-stats", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--image_size=32",
              "--num_workers=0"]
    assert cli.main(folder + ["--images=5", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["classes"] == {"n01": 9, "n02": 6} and stats["measured"] == 5 and stats["images"] == 15
    (image_folder / "train" / "n02" / "img_0.JPEG").rename(image_folder / "n02_img_0.JPEG")
    for i in range(1, 5):
        (image_folder / "train" / "n02" / f"img_{i}.JPEG").unlink()
    assert cli.main(folder) == 0
    assert ("images per class: 1 (n02) to 9 (n01), 9.0 to 1: --class_balance 0.5 (or 1) draws the rare classes more "
            "often") in capsys.readouterr().out
    assert cli.main(folder + ["--lr_max=3"]) != 0
    assert "--lr_max: not used by data-stats, which reads --config_path, --dataset" in capsys.readouterr().err
