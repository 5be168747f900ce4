"""--mean/--std: a run's own per-channel normalisation, recorded with it and followed by everything that reads
its files (eval, export, predict, quantize, a distilling student's teacher), named where it cannot be kept."""
import json
import warnings

import numpy as np
import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, evaluate, quantize, train
from mobilenet_v1.config import ConfigError, load_config, normalisation
from mobilenet_v1.data import BadSampleWarning, DataOptions, build_loader
from mobilenet_v1.losses import Renormalised
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import OnnxModel
from mobilenet_v1.predict import load_predictor
from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD

from conftest import class_images

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")

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
    for bad in ("0.5,", ",0.5", "0.5,,0.5", "1_0", "0.5 0.5"):  # an item short is no one value
        with pytest.raises(ConfigError, match="mean must be three numbers"):
            load_config([f"--mean={bad}"])
    assert load_config(["--mean=[0.5, 0.4, 0.3]"]).mean == "0.5,0.4,0.3"
    with pytest.raises(ConfigError, match=r"unexpected argument '0.456'.* \(several values in one: --mean "
                                          r"0.485,0.456,...\)"):
        load_config(["--mean", "0.485", "0.456", "0.406"])  # timm's spelling
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
    start = str(tmp_path / "start.ckpt")  # weights to start from, of a run with CIFAR's constants
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=10, width_mult=0.25).state_dict(),
                         "config": {"dataset": "cifar10"}}, start)
    cfg = load_config([f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--image_size=32", "--batch_size=32",
                       "--epoch_size=1", "--warmup_epochs=0", "--device_target=CPU", "--num_workers=0",
                       f"--save_checkpoint_path={tmp_path / 'run'}", f"--pre_trained={start}", *OWN])
    seen = []  # the normalisation of each loader that train, eval and quantize build
    for module in (train, evaluate, quantize):
        real = module.build_loader
        monkeypatch.setattr(module, "build_loader",
                            lambda opts, real=real, **kw: seen.append(opts.norm) or real(opts, **kw))
    path = train.run(cfg)["checkpoint"]
    assert seen == [OWN_NORM]
    recorded = ckpt_io.load_file(path)["config"]
    assert (recorded["mean"], recorded["std"]) == ("0.5,0.5,0.5", "0.25,0.25,0.25")
    assert (f"pre_trained: note: {start} was trained on inputs normalised by mean 0.4914,0.4822,0.4465, std 0.2023,"
            f"0.1994,0.201, this run normalises by mean 0.5,0.5,0.5, std 0.25,0.25,0.25 (--mean and --std keep to "
            f"its)") in capsys.readouterr().out

    base = ["eval", f"--dataset_path={cifar_dir}", "--device_target=CPU", "--num_workers=0",
            f"--checkpoint_path={path}"]
    assert cli.main(base + ["--json"]) == 0
    err = capsys.readouterr().err
    assert f"mean 0.5,0.5,0.5: what {path}'s run normalised its inputs by (--mean to evaluate with another)" in err
    assert f"std 0.25,0.25,0.25: what {path}'s run normalised its inputs by" in err
    assert cli.main(base + ["--mean=0.4914,0.4822,0.4465"]) == 0  # told otherwise: its own mean, the run's std
    assert seen[1:] == [OWN_NORM, (CIFAR_MEAN, OWN_NORM[1])]
    assert f"mean 0.4914,0.4822,0.4465: as given, where {path}'s run normalised its inputs by 0.5,0.5,0.5" in \
        capsys.readouterr().err

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
    # eval of either file follows it; one that takes pixels always takes its own (a Python caller's too).
    del seen[:]
    eval_file = ["eval", f"--dataset_path={cifar_dir}", "--num_workers=0"]
    assert cli.main(eval_file + [f"--checkpoint_path={tmp_path / 'float.onnx'}"]) == 0
    assert cli.main(eval_file + [f"--checkpoint_path={tmp_path / 'pixels.onnx'}", "--mean=0.4914,0.4822,0.4465"]) == 0
    assert (f"mean 0.4914,0.4822,0.4465 is not used: {tmp_path / 'pixels.onnx'} takes uint8 pixels and normalises them "
            f"by its own mean 0.5,0.5,0.5") in capsys.readouterr().err
    evaluate.run(load_config(eval_file[1:] + [f"--checkpoint_path={tmp_path / 'pixels.onnx'}", "--image_size=32"]))
    assert seen == [OWN_NORM] * 3

    # predict, from the checkpoint and from either file: the probabilities of those inputs; --mean, --std
    # for a file that records none (a MindSpore .ckpt's: convert, below), not for one that takes pixels.
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
    capsys.readouterr()
    with pytest.raises(ValueError, match="takes uint8 pixels and normalises them itself"):
        load_predictor(str(tmp_path / "pixels.onnx"), mean="0.4")
    assert "as given" not in capsys.readouterr().err  # refused, not said to be used

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
    seed = str(tmp_path / "seed.ckpt")
    predictor = load_predictor(seed, dataset="cifar10", image_size=32, mean="0.5", std="0.25")
    assert predictor.normalisation == OWN_NORM
    assert predictor.top_k([str(image)], 1)[0]["top_k"][0]["probability"] == pytest.approx(want, abs=1e-5)
    assert cli.main(["export", "--ckpt_file", seed, "--file_name", str(tmp_path / "again"), "--dataset", "cifar10",
                     "--height", "32", "--width", "32", "--mean", "0.5", "--std", "0.25"]) == 0
    assert OnnxModel(str(tmp_path / "again.onnx")).metadata["mean"] == [0.5] * 3
    assert "as given" not in capsys.readouterr().err  # a file that records none: nothing to differ from
    # A file of ours exported with another mean than its run's: done, and said as eval says it.
    assert cli.main(["export", "--ckpt_file", path, "--file_name", str(tmp_path / "told"), "--mean", "0.4"]) == 0
    assert OnnxModel(str(tmp_path / "told.onnx")).metadata["mean"] == [0.4] * 3
    assert f"mean 0.4,0.4,0.4: as given, where {path}'s run normalised its inputs by 0.5,0.5,0.5" in \
        capsys.readouterr().err
    # predict says it too, for std as for mean; values equal to the record's are nothing to say.
    assert load_predictor(path, std="0.3", mean="0.5").normalisation == ((0.5,) * 3, (0.3,) * 3)
    err = capsys.readouterr().err
    assert err.count("as given") == 1
    assert f"std 0.3,0.3,0.3: as given, where {path}'s run normalised its inputs by 0.25,0.25,0.25" in err
    del seen[:]  # recalibrate-bn: measured as the run normalised, or as told for a file that records nothing
    for source, told in ((path, []), (seed, ["--dataset", "cifar10", "--image_size", "32", "--mean", "0.5",
                                             "--std", "0.25"])):
        out = str(tmp_path / f"recalibrated_{len(seen)}.pt")
        assert cli.main(["recalibrate-bn", source, "--out", out, "--dataset_path", str(cifar_dir), "--images", "16",
                         "--num_workers", "0", *told]) == 0
        assert ckpt_io.trained_normalisation(ckpt_io.load_file(out)["config"], "", out) == OWN_NORM
    assert seen == [OWN_NORM, OWN_NORM]
    capsys.readouterr()
    assert cli.main(["recalibrate-bn", path, "--out", str(tmp_path / "told.pt"), "--dataset_path", str(cifar_dir),
                     "--images", "16", "--num_workers", "0", "--mean", "0.4"]) == 0
    assert f"mean 0.4,0.4,0.4: as given, where {path}'s run normalised its inputs by 0.5,0.5,0.5" in \
        capsys.readouterr().err
    other = str(tmp_path / "other.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10"}}, other)
    capsys.readouterr()
    for files, said in (([path, other], f"checkpoint {other} was trained on inputs normalised by mean 0.4914,0.4822,"
                                        f"0.4465, std 0.2023,0.1994,0.201, {path} on mean 0.5,0.5,0.5, std 0.25,0.25,"
                                        f"0.25: the mean would mix models of other inputs"),
                        ([seed, path], f"checkpoint {seed} records no normalisation (a MindSpore .ckpt's run used its "
                                       f"data set's constants), {path} was trained on inputs normalised by mean 0.5,"
                                       f"0.5,0.5, std 0.25,0.25,0.25 (its run's --mean/--std)")):
        assert cli.main(["average", *files, "--out", str(tmp_path / "mean.pt")]) != 0
        assert said in capsys.readouterr().err
    # A resume that normalises otherwise is named with the keys that changed.
    line = train.recipe_change(ckpt_io.load_file(path), path, load_config([]))
    assert ("was trained with image_size 32, mean '0.5,0.5,0.5', std '0.25,0.25,0.25'; continuing with this run's "
            "image_size 224, mean '0.4914,0.4822,0.4465', std '0.2023,0.1994,0.201'") in line
    assert train.recipe_change(ckpt_io.load_file(path), path, load_config(["--image_size=32", *OWN])) == ""


def test_a_teacher_of_other_inputs_is_handed_each_batch_in_its_own_normalisation(tmp_path):
    """A checkpoint of a run with CIFAR's constants, and a .pt2 program exported from one of its own: each
    computes, from a batch of this run's normalisation, what it computes from the same images in its own."""
    from mobilenet_v1.export import export_checkpoint

    torch.manual_seed(0)
    teacher = MobileNetV1(class_num=4, width_mult=0.25)
    for bn in teacher.modules():  # BatchNorm statistics of its own inputs: outputs that tell images apart
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.momentum = None
    with torch.no_grad():
        teacher.train()(torch.randn(16, 3, 32, 32))
        teacher.eval().fc.weight.mul_(100)  # logits of some size
    path, own = str(tmp_path / "teacher.ckpt"), str(tmp_path / "own.ckpt")
    ckpt_io.atomic_save({"model": teacher.state_dict(), "config": {"dataset": "cifar10", "image_size": 32}}, path)
    ckpt_io.atomic_save({"model": teacher.state_dict(), "config": {"dataset": "cifar10", "image_size": 32,
                                                                   "mean": "0.2,0.3,0.4", "std": "0.4,0.35,0.3"}},
                        own)
    program = export_checkpoint(own, str(tmp_path / "own"), file_format="PT2", atol=0.01)["path"]
    pixels = torch.from_numpy(class_images(np.arange(4), 3)).float() / 255
    for source, norm in ((path, (CIFAR_MEAN, CIFAR_STD)), (program, ((0.2, 0.3, 0.4), (0.4, 0.35, 0.3)))):
        with torch.no_grad():
            want = teacher((pixels - torch.tensor(norm[0]).view(1, 3, 1, 1)) / torch.tensor(norm[1]).view(1, 3, 1, 1))
        for student in (OWN, []):
            cfg = load_config(["--class_num=4", "--width_mult=0.25", "--image_size=32", f"--teacher={source}",
                               *student])
            distill = train.build_distiller(cfg, None, torch.device("cpu"), torch.contiguous_format,
                                            str(tmp_path / "run"))
            assert isinstance(distill.teacher, Renormalised) == (cfg.normalisation != norm)
            mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in cfg.normalisation)
            with torch.no_grad():
                got = distill.logits((pixels - mean) / std)
            assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max())), (source, student)
    assert (want[0] - want[1]).abs().max() > 1  # (which another input would change)


def test_data_stats_gives_the_pixels_mean_and_std_and_the_images_per_class(cifar_dir, image_folder, capsys):
    from mobilenet_v1.data import load_cifar

    base = ["data-stats", f"--dataset_path={cifar_dir}", "--image_size=32", "--num_workers=0"]
    assert cli.main(base + ["--images=0", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    x, y = load_cifar(str(cifar_dir), True)
    pixels = x.double() / 255
    mean, std = pixels.mean(dim=(0, 2, 3)), pixels.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False)
    assert stats["mean"] == [round(float(v), 4) for v in mean] and stats["std"] == [round(float(v), 4) for v in std]
    assert stats["classes"] == {str(k): int(n) for k, n in enumerate(torch.bincount(y, minlength=10))}
    assert (stats["images"], stats["measured"]) == (192, 192)
    assert cli.main(base) == 0
    out = capsys.readouterr().out
    assert "its training split holds 192 images in 4 classes (6 of its 10 labels have none: class 4, class 5, " \
        "class 6, class 7, class 8 ...)" in out
    suggested = out.split("to train with them: ")[1].split()
    assert load_config(suggested).normalisation == (tuple(stats["mean"]), tuple(stats["std"]))
    # An image folder's classes by name; a sample of its images; a class 4 times another's is pointed out.
    folder = ["data-stats", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--image_size=32",
              "--num_workers=0"]
    assert cli.main(folder + ["--images=5", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["classes"] == {"n01": 9, "n02": 6} and stats["measured"] == 5 and stats["images"] == 15
    assert cli.main(folder + ["--images=5", "--json", "--seed=2"]) == 0  # another random sample
    assert json.loads(capsys.readouterr().out)["mean"] != stats["mean"]
    (image_folder / "train" / "n02" / "img_0.JPEG").rename(image_folder / "n02_img_0.JPEG")
    for i in range(1, 5):
        (image_folder / "train" / "n02" / f"img_{i}.JPEG").unlink()
    assert cli.main(folder) == 0
    assert ("images per class: 1 (n02) to 9 (n01), 9.0 to 1: --class_balance 0.5 (or 1) draws the rare classes more "
            "often") in capsys.readouterr().out
    assert cli.main(folder + ["--lr_max=3"]) != 0
    assert "--lr_max: not used by data-stats, which reads --config_path, --dataset" in capsys.readouterr().err
    assert cli.main(folder + ["--images=1e1", "--json"]) == 0  # a whole number as the keys take one
    assert json.loads(capsys.readouterr().out)["measured"] == 10
    assert cli.main(folder + ["--images=-1"]) != 0  # no sample size (0 is every image)
    assert "--images must be >= 0 (0: every image), got -1" in capsys.readouterr().err
    # An unreadable file is counted and left out, with no limit to stop at (not "max_bad_samples 4611686018427387904").
    (image_folder / "train" / "n01" / "img_0.JPEG").write_bytes(b"not an image")
    with pytest.warns(BadSampleWarning, match=r"img_0\.JPEG.* \(1 so far, no limit here\)$"):
        assert cli.main(folder + ["--images=0"]) == 0
    assert "(1 unreadable file left out)" in capsys.readouterr().out
    with pytest.warns(BadSampleWarning):  # n01's 9 and the one left in n02: all but the unreadable one measured
        assert cli.main(folder + ["--images=0", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["images"], stats["readable"], stats["measured"], stats["unreadable"]) == (10, 9, 9, 1)
    assert stats["classes"] == {"n01": 8, "n02": 1}  # every image decoded: the readable ones by class
    # A class folder of unreadable files alone is a class that nothing trains: counted as one without images
    # (it was "1 (n02) to 9 (n01)", the files counted).
    (image_folder / "train" / "n02" / "img_5.JPEG").write_bytes(b"not an image either")
    with pytest.warns(BadSampleWarning):
        assert cli.main(folder + ["--images=0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("its training split holds 10 image files, 8 of them readable, in 1 class (1 of its 2 "
                           "labels has no readable image: n02)")
    assert out[1] == "  readable images per class: 8 each"
    with warnings.catch_warnings():  # a sample: the files counted, as its decoded images cannot tell
        warnings.simplefilter("ignore", BadSampleWarning)
        assert cli.main(folder + ["--images=3", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["readable"] is None and stats["classes"] == {"n01": 9, "n02": 1}


def test_data_stats_points_out_a_class_four_times_another_and_not_less():
    """--class_balance is suggested from a largest class 4 times the smallest (the module's rule: at 4 too),
    not below it; labels without images are counted apart."""
    from mobilenet_v1 import datastats

    stats = {"dataset": "imagenet2012", "dataset_path": "d", "image_size": 32, "images": 10, "measured": 10,
             "unreadable": 0, "classes": {"a": 8, "b": 2, "c": 0}, "mean": [0.5] * 3, "std": [0.25] * 3}
    out = datastats.lines(stats)
    assert out[0] == ("d (imagenet2012): its training split holds 10 images in 2 classes (1 of its 3 labels has "
                      "none: c)")  # named: an empty class folder is a class all the same
    assert out[1] == ("  images per class: 2 (b) to 8 (a), 4.0 to 1: --class_balance 0.5 (or 1) draws the rare "
                      "classes more often")
    stats["classes"] = {"a": 7, "b": 2, "c": 0}
    assert datastats.lines(stats)[1] == "  images per class: 2 (b) to 7 (a)"
    # Up to five empty labels are all named; a sixth and more are "...".
    stats["classes"] = {"a": 7, **{str(k): 0 for k in range(1, 6)}}
    assert datastats.lines(stats)[0].endswith("(5 of its 6 labels have none: class 1, class 2, class 3, class 4, "
                                              "class 5)")
    stats["classes"]["6"] = 0
    assert datastats.lines(stats)[0].endswith("(6 of its 7 labels have none: class 1, class 2, class 3, class 4, "
                                              "class 5 ...)")


def test_data_stats_of_cifar100_counts_its_100_labels_whichever_its_files_hold(tmp_path, capsys):
    """CIFAR-100's files whose fine labels are 0 to 3 only: its training split has 100 labels all the same, 96
    of them without images (said, as train's class_num 100 counts them), not 4 labels of 4."""
    from mobilenet_v1.data import CIFAR100_FOLDER, write_cifar_bin

    folder = tmp_path / "c100" / CIFAR100_FOLDER
    folder.mkdir(parents=True)
    fine = np.arange(24) % 4
    for name, seed in (("train.bin", 1), ("test.bin", 2)):
        write_cifar_bin(str(folder / name), class_images(fine, seed), fine, coarse=fine)
    base = ["data-stats", "--dataset=cifar100", f"--dataset_path={tmp_path / 'c100'}", "--image_size=32",
            "--num_workers=0"]
    assert cli.main(base + ["--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["classes"] == {str(k): 6 if k < 4 else 0 for k in range(100)}
    assert cli.main(base) == 0
    assert "holds 24 images in 4 classes (96 of its 100 labels have none: class 4, class 5, class 6, class 7, " \
        "class 8 ...)" in capsys.readouterr().out


def test_data_stats_decodes_only_the_images_of_its_sample(image_folder, capsys, monkeypatch):
    """--images 3 with batches of 8 decoded 8 images (the rest of the batch; loader workers read batches ahead
    too): only the sample's are decoded now, the figures those of the same 3 images."""
    from mobilenet_v1 import transforms as T

    decoded = []
    real = T.decode_rgb
    monkeypatch.setattr(T, "decode_rgb", lambda data, path, *a, **k: decoded.append(path) or real(data, path, *a, **k))
    base = ["data-stats", "--dataset=imagenet2012", f"--dataset_path={image_folder}", "--image_size=32",
            "--num_workers=0", "--json"]
    assert cli.main(base + ["--images=3", "--batch_size=8"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["measured"] == 3 and len(decoded) == 3
    assert cli.main(base + ["--images=3", "--batch_size=2"]) == 0  # the same sample in other batches
    assert json.loads(capsys.readouterr().out)["mean"] == stats["mean"] and decoded[3:] == decoded[:3]
    assert cli.main(base + ["--images=100", "--batch_size=8"]) == 0  # more than the split holds: all of it, once
    assert json.loads(capsys.readouterr().out)["measured"] == 15 and len(decoded) == 6 + 15


def test_data_stats_starts_no_more_loader_workers_than_its_sample_has_batches(image_folder, monkeypatch):
    """--images 5 in batches of 8 is one batch: one loader worker, not none (nor 4 idle); 9 images are two
    batches; --images 0 (every image) keeps num_workers as given."""
    from mobilenet_v1 import datastats

    class Stop(Exception):
        pass

    started = []

    def capture(opts, *args, **kwargs):
        started.append(opts.num_workers)
        raise Stop

    monkeypatch.setattr(datastats, "build_loader", capture)
    cfg = load_config(["--dataset=imagenet2012", f"--dataset_path={image_folder}", "--image_size=32",
                       "--num_workers=4", "--batch_size=8"])
    for images, workers in ((5, 1), (8, 1), (9, 2), (100, 4), (0, 4)):
        with pytest.raises(Stop):
            datastats.measure(cfg, images)
        assert started[-1] == workers, images


def test_data_stats_of_one_colour_images_gives_a_std_of_0_not_nan(tmp_path):
    """Seven 40x40 images of one grey (22 of 255): the variance, the mean of the squares less the square of the
    mean, rounds to -9e-19 there; its square root is 0, not NaN (which --std refuses)."""
    from PIL import Image

    from mobilenet_v1 import datastats

    for split in ("train", "validation_preprocess"):
        folder = tmp_path / split / "n01"
        folder.mkdir(parents=True)
        for i in range(7):
            Image.new("RGB", (40, 40), (22, 22, 22)).save(folder / f"img_{i}.png")
    cfg = load_config(["--dataset=imagenet2012", f"--dataset_path={tmp_path}", "--image_size=40", "--num_workers=0",
                       "--batch_size=7"])
    stats = datastats.measure(cfg, 0)
    assert stats["measured"] == 7 and stats["mean"] == [round(22 / 255, 4)] * 3
    assert stats["std"] == [0.0, 0.0, 0.0]
