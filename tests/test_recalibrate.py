"""mobilenet-v1 recalibrate-bn: BatchNorm statistics measured anew, at the size the model will run at."""
import copy
import hashlib
import json
import re

import pytest
import torch
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, mindspore_io
from mobilenet_v1.config import Config
from mobilenet_v1.data import BadSampleWarning
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
    """Each BatchNorm's running mean and variance are the mean over the batches of each batch's own,
    weighted by its images (measured here by a copy that takes each batch's statistics whole, momentum
    1); weights, momenta and eval mode are as before; a batch of one image is passed over."""
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
                    stats[i].append((x.shape[0], probe[i].running_mean.clone(), probe[i].running_var.clone()))
    for i, seen in stats.items():
        mean = sum(n * m for n, m, _ in seen) / 12
        var = sum(n * v for n, _, v in seen) / 12
        assert torch.allclose(net[i].running_mean, mean, atol=1e-6)
        assert torch.allclose(net[i].running_var, var, atol=1e-6)
        # Not the plain mean of the batches': the batch of 3 weighs less than those of 5 and 4.
        assert not torch.allclose(net[i].running_var, torch.stack([v for _, _, v in seen]).mean(0), atol=1e-4)
    for k, v in weights.items():
        assert torch.equal(net.state_dict()[k], v), k
    assert not net.training and net[1].momentum == 0.1 and net[4].momentum == 0.01
    with pytest.raises(ValueError, match="no batch of two images or more"):
        recalibrate(small_net(), [(torch.randn(1, 3, 9, 9), None)], torch.device("cpu"))
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        recalibrate(nn.Conv2d(3, 2, 1), batches, torch.device("cpu"))


def test_num_batches_tracked_counts_the_measured_batches_not_the_training_ones():
    """A trained model's BatchNorm layers have counted thousands of batches; after recalibrate-bn each
    counts the batches its statistics were measured on (a batch of one image passed over)."""
    net = small_net()
    for bn in (net[1], net[4]):
        bn.num_batches_tracked.fill_(5000)
    batches = [(torch.randn(n, 3, 9, 9), None) for n in (5, 1, 3)]
    recalibrate(net, batches, torch.device("cpu"))
    assert [int(bn.num_batches_tracked) for bn in (net[1], net[4])] == [2, 2]


def save(path, image_size=32, config=True) -> str:
    torch.manual_seed(3)
    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = {"format": ckpt_io.FORMAT, "model": model.state_dict(), "classes": ["a", "b", "c", "d"],
            "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "same"},
            "averaged": {"sources": ["x.ckpt", "y.ckpt"], "weights": ["trained", "trained"]}}  # average's record
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
    said, err = capsys.readouterr()
    assert "warning: BatchNorm statistics from only 96 images" in err  # under FEW_IMAGES (100)
    # 97 images in batches of 16: the last batch, of one image, is passed over.
    assert f"wrote {out}: PyTorch checkpoint" in said
    assert "the BatchNorm statistics of its 27 layers measured on 96 training images" in said
    assert "at image_size 24 (trained at 32)" in said
    before, after = ckpt_io.load_file(src), ckpt_io.load_file(out)
    assert after["config"]["image_size"] == 24 and after["config"]["lr_max"] == 0.1
    assert after["config"]["bn_recalibration"]["images"] == 96
    assert after["config"]["bn_recalibration"]["trained_at"] == 32
    assert after["classes"] == ["a", "b", "c", "d"] and after["averaged"] == before["averaged"]  # the weights' record
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
    bare = save(tmp_path / "bare.pt", config=False)  # as a MindSpore .ckpt: no size recorded, which eval says
    capsys.readouterr()
    assert trained_size(Config(image_size=32), ckpt_io.load_file(bare), bare, given={"image_size"}).image_size == 32
    assert trained_size(Config(), ckpt_io.load_file(bare), bare, given=set()).image_size == Config().image_size
    assert capsys.readouterr().err == (f"note: {bare} records no image size (as a MindSpore .ckpt): evaluating at "
                                       f"image_size {Config().image_size}; give the size it was trained at with "
                                       f"--image_size\n")
    assert load_predictor(out).image_size == 24
    # Recalibrated again, at its recorded size by default: the size it was trained at stays 32.
    again = str(tmp_path / "again.pt")
    assert cli.main(["recalibrate-bn", out, "--dataset_path", str(cifar_dir), "--images", "112", "--batch_size", "16",
                     "--out", again]) == 0
    said, err = capsys.readouterr()
    assert "at image_size 24 (trained at 32)" in said and "measured on 112 training images" in said
    assert "warning" not in err
    assert ckpt_io.load_file(again)["config"]["bn_recalibration"]["trained_at"] == 32


def test_use_ema_false_for_a_file_holding_only_a_moving_average_is_named_as_not_used(tmp_path, cifar_dir, capsys):
    """A file convert wrote from a run's weight average holds that average alone: recalibrate-bn --use_ema False
    recalibrated it without a word, where eval, convert and predict name such a --use_ema False as not used."""
    torch.manual_seed(5)
    trained, average = MobileNetV1(class_num=4, width_mult=0.25), MobileNetV1(class_num=4, width_mult=0.25)
    run_file = str(tmp_path / "run.pt")
    torch.save({**ckpt_io.load_file(save(tmp_path / "m.pt")), "model": trained.state_dict(),
                "ema": {"model": average.state_dict(), "decay": 0.9, "updates": 5}}, run_file)
    taken = str(tmp_path / "taken.pt")
    mindspore_io.convert(run_file, taken)
    capsys.readouterr()
    args = ["recalibrate-bn", taken, "--dataset_path", str(cifar_dir), "--images", "32", "--batch_size", "16"]
    assert cli.main(args + ["--use_ema", "False", "--out", str(tmp_path / "r.pt")]) == 0
    said = capsys.readouterr().out
    assert (f"weights: not used here: --use_ema False (convert wrote this file's only weights from the exponential "
            f"moving average of {run_file}; it holds no trained weights)") in said
    assert torch.equal(ckpt_io.load_file(str(tmp_path / "r.pt"))["model"]["fc.weight"], average.fc.weight)
    assert cli.main(args + ["--out", str(tmp_path / "d.pt")]) == 0  # the default asks for the average: nothing said
    assert "not used here" not in capsys.readouterr().out


def test_info_of_a_mean_recalibrated_says_its_statistics_are_its_own(tmp_path, cifar_dir, capsys):
    """The README's way after `average`: recalibrate-bn of the mean measures its mean weights' own statistics.
    info said of that file that its statistics were the mean of its sources' and to run recalibrate-bn of it,
    which it was (its record of the average stays, for the weights): a user told so recalibrated for ever."""
    src = save(tmp_path / "avg.pt", image_size=32)  # as average writes it: the sources recorded, no measurement
    out = str(tmp_path / "avg_bn.pt")
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(cifar_dir), "--image_size", "24", "--images", "112",
                     "--batch_size", "16", "--out", out]) == 0
    capsys.readouterr()
    assert cli.main(["info", out]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "weights: the mean of 2 checkpoints' trained weights (mobilenet-v1 average): x.ckpt, y.ckpt" in text
    assert "BatchNorm: statistics measured anew (recalibrate-bn) at 24 on 112 images, trained at 32 resume:" in text
    assert "sources' statistics" not in text and "recalibrate-bn of this file" not in text
    assert cli.main(["info", out, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bn_recalibration"] == {"image_size": 24, "images": 112,
                                                                       "trained_at": 32, "source": "avg.pt"}


def test_statistics_that_are_not_finite_are_measured_anew_and_named_elsewhere(tmp_path, cifar_dir, capsys):
    """A file whose BatchNorm statistics alone overflowed (an fp16 run's variance) was refused as damaged by
    recalibrate-bn, the command that measures them anew: it measures them as the others, and says so; eval and
    export name the command where they refuse such a file. Weights that are not finite are still refused."""
    src = save(tmp_path / "m.pt")
    ckpt = torch.load(src, weights_only=True)
    for name in ("network.3.1.running_var", "network.7.1.running_mean"):
        ckpt["model"][name][0] = float("inf") if "var" in name else float("nan")
    torch.save(ckpt, str(tmp_path / "overflowed.pt"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"tensor network.3.1.running_var holds NaN or infinite values "
                                                      r"\(a BatchNorm statistic: `mobilenet-v1 recalibrate-bn` "
                                                      r"measures them anew"):
        load_predictor(str(tmp_path / "overflowed.pt"))
    for name, out in (("m.pt", "a.pt"), ("overflowed.pt", "b.pt")):
        assert cli.main(["recalibrate-bn", str(tmp_path / name), "--dataset_path", str(cifar_dir), "--images", "112",
                         "--batch_size", "16", "--out", str(tmp_path / out)]) == 0
    said = capsys.readouterr().out
    assert (f"2 of {tmp_path / 'overflowed.pt'}'s BatchNorm statistics held NaN or infinite values "
            f"(network.3.1.running_var, network.7.1.running_mean): measured anew here as the others") in said
    measured, again = ckpt_io.load_file(str(tmp_path / "a.pt")), ckpt_io.load_file(str(tmp_path / "b.pt"))
    assert all(torch.equal(measured["model"][k], v) for k, v in again["model"].items())
    # A MindSpore file's are named as it spells them, as eval and info name its tensors.
    mindspore_io.write_mindspore_ckpt(str(tmp_path / "ms.ckpt"), mindspore_io.to_seed_state({"model": ckpt["model"]}))
    assert cli.main(["recalibrate-bn", str(tmp_path / "ms.ckpt"), "--dataset_path", str(cifar_dir), "--dataset",
                     "cifar10", "--image_size", "32", "--images", "112", "--batch_size", "16",
                     "--out", str(tmp_path / "ms.pt")]) == 0
    assert "(network.3.1.moving_variance, network.7.1.moving_mean): measured anew" in capsys.readouterr().out
    ckpt["model"]["network.3.0.weight"][0] = float("nan")
    torch.save(ckpt, str(tmp_path / "diverged.pt"))
    assert cli.main(["recalibrate-bn", str(tmp_path / "diverged.pt"), "--dataset_path", str(cifar_dir),
                     "--out", str(tmp_path / "c.pt")]) == 1
    assert "tensor network.3.0.weight holds NaN or infinite values\n" in capsys.readouterr().err


def test_an_image_folders_held_out_share_stays_out_and_another_folder_is_named(tmp_path, capsys):
    """The share of each class the run held out is left out on the folder it trained on; on a copy the
    command says none is, and --val_split holds out the files of the same names there."""
    import shutil

    import numpy as np
    from conftest import class_folders_of_photos
    from mobilenet_v1.data import held_out_record

    root = class_folders_of_photos(tmp_path / "photos")  # one image of each class's five held out at 0.2
    src = save(tmp_path / "m.pt")
    ckpt = ckpt_io.load_file(src)
    ckpt["config"] = {"dataset": "imagenet2012", "image_size": 32, "crop_pct": 1.0, "antialias": False}
    ckpt["held_out"] = held_out_record(str(root), 0.2)  # one image of each class's five
    torch.save(ckpt, src)
    assert np.isclose(ckpt["held_out"]["val_split"], 0.2)
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(root), "--batch_size", "4",
                     "--out", str(tmp_path / "o.pt")]) == 0
    out = capsys.readouterr().out
    assert "measured on 16 training images" in out and "(val_split 0.2) was left out" in out
    config = ckpt_io.load_file(str(tmp_path / "o.pt"))["config"]
    assert config["crop_pct"] == 1.0 and config["antialias"] is False  # the run's crop and resize, kept
    shutil.copytree(root, tmp_path / "copy")
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(tmp_path / "copy"), "--batch_size", "4",
                     "--out", str(tmp_path / "o.pt")]) == 0
    said = capsys.readouterr()
    assert "measured on 20 training images" in said.out
    assert "held out val_split 0.2 of another folder, so none is held out of" in said.err
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(tmp_path / "copy"), "--batch_size", "4",
                     "--val_split", "0.2", "--out", str(tmp_path / "o.pt")]) == 0
    assert "measured on 16 training images" in capsys.readouterr().out
    # A smaller share of the run's own folder: its statistics see images an eval of the folder scores (helper-261).
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(root), "--batch_size", "4", "--val_split", "0",
                     "--out", str(tmp_path / "o.pt")]) == 0
    said = capsys.readouterr()
    assert "measured on 20 training images" in said.out
    assert (f"note: --val_split 0: {src}'s run held out val_split 0.2 of each class of {root} to evaluate on, so the "
            f"statistics measured can include some of those images") in said.err


def test_bad_requests_are_refused_and_the_source_is_left_whole(tmp_path, cifar_dir, capsys):
    src = save(tmp_path / "m.pt")
    before = digest(src)
    data = ["--dataset_path", str(cifar_dir)]
    cases = [
        (["--out", src], f"--out {src}: is the file this command reads"),
        (["--out", str(tmp_path / "o.pt"), "--dataset", "imagenet2012"],
         "--dataset imagenet2012: .*m.pt was trained on cifar10"),
        (["--out", str(tmp_path / "o.bin")], "cannot tell the format from the extension .bin"),
        # each option its own reason (both were given both: helper-307)
        (["--out", str(tmp_path / "o.pt"), "--crop_pct", "0.5"],
         r"--crop_pct: a CIFAR-10 model's data set has no use for it \(its evaluation resizes the whole 32x32 "
         r"image\)$"),
        (["--out", str(tmp_path / "o.pt"), "--val_split", "0.1"],
         r"--val_split: a CIFAR-10 model's data set has no use for it \(its evaluation images are a file of their "
         r"own\)$"),
        (["--out", str(tmp_path)], f"--out {tmp_path}: is a folder"),
        (["--out", str(cifar_dir)], "is a folder"),
        (["--out", str(cifar_dir / "cifar-10-batches-bin" / "data_batch_1.bin"), "--format", "pt"],
         f"is inside {cifar_dir}, the data this command reads"),
    ]
    for extra, message in cases:
        assert cli.main(["recalibrate-bn", src, *data, *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("mobilenet-v1 recalibrate-bn: error: ")
        assert re.search(message, err), err
    # Numbers out of their range: argparse's refusal, status 2, as every command's own options' (and as
    # --image_size 70000 here)
    for extra, message in ((["--images", "1"], "--images 1: must be at least 2"),
                           (["--image_size", "0"], "--image_size 0: must be at least 1"),
                           (["--val_split", "1"], "--val_split 1: must be in [0, 1)")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["recalibrate-bn", src, *data, "--out", str(tmp_path / "o.pt"), *extra])
        assert exit_.value.code == 2
        assert f"mobilenet-v1 recalibrate-bn: error: {message}" in capsys.readouterr().err
    assert digest(src) == before and not (tmp_path / "o.pt").exists()
    # A MindSpore file records neither the data set nor the size: both are asked for by name.
    bare = save(tmp_path / "bare.pt", config=False)
    mindspore_io.convert(bare, str(tmp_path / "bare.ckpt"))
    assert cli.main(["recalibrate-bn", str(tmp_path / "bare.ckpt"), *data, "--out", str(tmp_path / "o.pt")]) == 1
    assert "does not record its data set: pass --dataset cifar10|cifar100|imagenet2012" in capsys.readouterr().err
    assert cli.main(["recalibrate-bn", str(tmp_path / "bare.ckpt"), *data, "--dataset", "cifar10",
                     "--out", str(tmp_path / "o.pt")]) == 1
    assert "does not record the image size it was trained at: pass --image_size N" in capsys.readouterr().err
    # Written as a MindSpore file, the new size cannot be recorded: the command says what to pass instead.
    assert cli.main(["recalibrate-bn", src, *data, "--image_size", "24", "--images", "32",
                     "--out", str(tmp_path / "o.ckpt")]) == 0
    assert (f"a MindSpore .ckpt holds only tensors: the source's record of the checkpoints it is the mean of, class "
            f"names and training configuration (image size, normalisation) are not kept in {tmp_path / 'o.ckpt'} (the "
            f"image size 24 among them: pass --image_size 24 to eval, export and predict)") in capsys.readouterr().err


def test_calibrating_commands_skip_unreadable_files_as_asked_and_name_unsorted_images(tmp_path, capsys):
    """recalibrate-bn and quantize read training images as training does: an unreadable file stops them
    past --max_bad_samples (0 of so few images by default), which they take as training does; a folder of
    images not sorted into class folders is named with what to do (they need no labels), not sent to
    eval's --eval_labels."""
    pytest.importorskip("onnxruntime")
    from conftest import jpeg_bytes, smooth_image

    src = save(tmp_path / "m.pt")
    ckpt = ckpt_io.load_file(src)
    ckpt["config"] = {"dataset": "imagenet2012", "image_size": 32}
    torch.save(ckpt, src)
    assert cli.main(["export", "--ckpt_file", src, "--file_name", str(tmp_path / "m")]) == 0
    sorted_, flat = tmp_path / "sorted" / "any", tmp_path / "flat"
    for folder in (sorted_, flat):
        folder.mkdir(parents=True)
        for i in range(6):
            (folder / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 48, seed=i)))
        (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff")
    # (each names the folder as its messages name the data: quantize by its --calib_data)
    commands = {"recalibrate-bn": (["recalibrate-bn", src, "--out", str(tmp_path / "o.pt"), "--dataset_path"],
                                   "dataset_path"),
                "quantize": (["quantize", "--onnx", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "q.onnx"),
                              "--calib_data"], "--calib_data")}
    capsys.readouterr()
    for name, (argv, option) in commands.items():
        with pytest.warns(BadSampleWarning, match="max_bad_samples 0"):  # named as it is met, then the stop
            assert cli.main(argv + [str(sorted_.parent)]) == 1
        assert "1 image file could not be read, more than max_bad_samples 0" in capsys.readouterr().err, name
        with pytest.warns(BadSampleWarning, match=f"skipped unreadable image file {sorted_ / 'cut.jpg'}"):
            assert cli.main(argv + [str(sorted_.parent), "--max_bad_samples", "1"]) == 0, name
        said = capsys.readouterr()
        assert "6 training images" in said.out
        if name == "quantize":  # 300 asked, 6 there: so few ranges clip what other images reach
            assert f"note: {sorted_.parent} gave 6 training images of the 300 asked (--calib_images): all it " \
                   f"has" in said.err
            assert "warning: activation ranges from only 6 images: what other images reach beyond them is " \
                   "clipped" in said.err
        assert cli.main(argv + [str(flat), "--max_bad_samples", "1"]) == 1
        assert (f"error: {option} {flat}: its images are not sorted into class folders, and the training split is "
                f"read as training reads it: move them into one sub-folder of it, of any name (their labels are "
                f"not used)") in capsys.readouterr().err, name
        with pytest.raises(SystemExit, match="2"):  # argparse's usage error
            cli.main(argv + [str(flat), "--max_bad_samples", "-2"])
        assert "--max_bad_samples: max_bad_samples must be >= 0, or -1 for 0.1% of the data set, got -2" in \
            capsys.readouterr().err


def test_a_batch_an_unreadable_file_shortened_is_filled_from_the_next_not_passed_over(tmp_path, capsys):
    """--images 4 in batches of 2 with an unreadable file among the first drawn: the loader gives a batch of
    one and the image that tops the sample up as another; each was passed over as a batch of one (2 images
    measured of the 4 asked, 8 readable there). They make one batch of 2 now: the statistics are those of the
    4 images in batches of 2."""
    from conftest import jpeg_bytes, smooth_image

    folder = tmp_path / "photos" / "any"
    folder.mkdir(parents=True)
    for i in range(8):
        (folder / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 48, seed=i)))
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff")
    src = save(tmp_path / "m.pt")
    ckpt = ckpt_io.load_file(src)
    ckpt["config"] = {"dataset": "imagenet2012", "image_size": 32}
    torch.save(ckpt, src)
    data = str(tmp_path / "photos")
    with pytest.warns(BadSampleWarning, match="cut.jpg"):  # seed 2 draws it among the first 4
        batches = [x for x, _ in calibration_loader("imagenet2012", data, 32, 4, 2, 2, num_workers=0,
                                                    max_bad_samples=1)]
    assert [x.shape[0] for x in batches] == [2, 1, 1]
    with pytest.warns(BadSampleWarning, match="cut.jpg"):
        assert cli.main(["recalibrate-bn", src, "--dataset_path", data, "--images", "4", "--batch_size", "2",
                         "--seed", "2", "--num_workers", "0", "--max_bad_samples", "1",
                         "--out", str(tmp_path / "o.pt")]) == 0
    assert "measured on 4 training images" in capsys.readouterr().out
    written = ckpt_io.load_file(str(tmp_path / "o.pt"))
    assert written["config"]["bn_recalibration"]["images"] == 4
    reference = MobileNetV1(class_num=4, width_mult=0.25)
    reference.load_state_dict(ckpt["model"])
    images = torch.cat(batches)
    assert recalibrate(reference, [(images[:2], None), (images[2:], None)], torch.device("cpu")) == 4
    for name, value in reference.state_dict().items():
        assert torch.allclose(written["model"][name].float(), value.float(), atol=1e-6), name


def test_refilled_regroups_short_batches_in_order_and_keeps_every_image():
    """A short batch is topped up from the next ones, in the loader's order: a whole batch that comes while
    images are held joins them rather than passing ahead, and what is left over after a batch is made is kept
    for the next (the last batch: what remains)."""
    from mobilenet_v1.recalibrate import refilled

    images = torch.arange(8.0).view(8, 1, 1, 1)
    batches = [(images[:1], None), (images[1:3], None), (images[3:6], None), (images[6:8], None)]
    got = [x for x, _ in refilled(batches, 2)]
    assert [x.flatten().tolist() for x in got] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    got = [x for x, _ in refilled([(images[:3], None), (images[3:4], None)], 2)]
    assert [x.flatten().tolist() for x in got] == [[0.0, 1.0], [2.0, 3.0]]
    got = [x for x, _ in refilled([(images[:2], None), (images[2:5], None)], 2)]  # whole ones pass as they are
    assert [x.flatten().tolist() for x in got] == [[0.0, 1.0], [2.0, 3.0], [4.0]]


def test_predict_says_it_assumes_224_for_a_file_that_records_no_image_size(tmp_path, capsys):
    # eval says "records no image size (as a MindSpore .ckpt)"; predict ran such a file at 224 without a word
    # (a model trained at 48, converted to MindSpore's .ckpt and back, answered with other classes).
    bare = save(tmp_path / "bare.pt", config=False)
    capsys.readouterr()
    assert load_predictor(bare).image_size == 224
    err = capsys.readouterr().err
    assert f"predict: note: {bare} records no image size (as a MindSpore .ckpt): predicting at image_size 224" in err
    assert load_predictor(bare, image_size=48).image_size == 48  # given: nothing assumed, no such note
    assert "records no image size" not in capsys.readouterr().err
    # export too: the file it writes would record 224 as its own size for every later eval and predict
    out = str(tmp_path / "bare")
    assert cli.main(["export", "--ckpt_file", bare, "--file_name", out, "--file_format", "PT2", "--dataset",
                     "imagenet2012"]) == 0
    assert (f"export: note: {bare} records no image size (as a MindSpore .ckpt): {out}.pt2 takes 224x224 and "
            f"records that size for eval and predict") in capsys.readouterr().err
    assert cli.main(["export", "--ckpt_file", bare, "--file_name", out, "--file_format", "PT2", "--dataset",
                     "imagenet2012", "--width", "48", "--height", "48"]) == 0
    assert "records no image size" not in capsys.readouterr().err


def test_recalibrating_on_a_folder_of_other_classes_is_noted(tmp_path, image_folder, capsys):
    # quantize notes calibration folders whose classes are not the model's; recalibrate-bn measured a model of
    # classes 10, 2, A, b on a folder of x, y, z without a word.
    torch.manual_seed(3)
    src = str(tmp_path / "m.pt")
    torch.save({"format": ckpt_io.FORMAT, "model": MobileNetV1(class_num=2, width_mult=0.25).state_dict(),
                "classes": ["cat", "dog"], "model_args": {"class_num": 2, "width_mult": 0.25, "padding": "same"},
                "config": {"dataset": "imagenet2012", "image_size": 32}}, src)
    out = str(tmp_path / "r.pt")
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(image_folder), "--out", out, "--num_workers", "0",
                     "--batch_size", "4"]) == 0
    err = capsys.readouterr().err
    train_split = image_folder / "train"
    assert (f"class folder(s) n01, n02 of {train_split} are not among the 2 classes of {src} (cat, dog): its "
            f"BatchNorm statistics are measured on images of another data set than the one it classifies") in err
    # quantize: its note, and no eval command offered, which would refuse the file on that folder
    assert cli.main(["export", "--ckpt_file", src, "--file_name", str(tmp_path / "m")]) == 0
    quantize = ["quantize", "--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(image_folder), "--out",
                str(tmp_path / "q.onnx"), "--calib_images", "8", "--num_workers", "0"]
    capsys.readouterr()
    assert cli.main(quantize) == 0
    said = capsys.readouterr()
    assert f"note: class folder(s) n01, n02 of {train_split} are not among the model's 2 classes" in said.err
    assert "Evaluation accuracy" not in said.out and "the two agree on" in said.out
    ckpt = ckpt_io.load_file(src)
    ckpt["classes"] = ["n01", "n02"]
    torch.save(ckpt, src)
    assert cli.main(["recalibrate-bn", src, "--dataset_path", str(image_folder), "--out", out, "--num_workers", "0",
                     "--batch_size", "4"]) == 0
    assert "not among" not in capsys.readouterr().err
    assert cli.main(["export", "--ckpt_file", src, "--file_name", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert cli.main(quantize) == 0
    said = capsys.readouterr()
    assert "not among" not in said.err and "Evaluation accuracy: `mobilenet-v1 eval --checkpoint_path" in said.out
