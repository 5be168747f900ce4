"""--freeze_layers: fine-tuning with the first layers kept as they are (weights and BatchNorm statistics)."""
import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, mindspore_io, train
from mobilenet_v1.config import LAYERS, ConfigError, load_config
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.model import ARCH, MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteGuard

CPU = torch.device("cpu")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]


def snapshot(module: nn.Module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("padding", ["same", "symmetric"])
def test_frozen_layers_keep_weights_and_statistics_through_training_steps(padding, one_thread):
    torch.manual_seed(0)
    model = MobileNetV1(class_num=5, width_mult=0.25, padding=padding).freeze(10)
    model.train()
    assert [m.training for m in model.network] == [False] * 10 + [True] * (LAYERS - 10)
    assert model.training and model.fc.training
    assert all(not p.requires_grad for p in model.network[:10].parameters())
    assert all(p.requires_grad for p in model.network[10:].parameters())
    before = snapshot(model)
    optimizer = make_optimizer(model, 0.1, 0.9, 1e-4, CPU)
    # Only the trained parameters are the optimiser's (weight decay groups included).
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(
        [p for p in model.parameters() if p.requires_grad])
    scaler = make_scaler("fp32", CPU, 1.0)
    batches = [(torch.randn(4, 3, 32, 32), torch.randint(0, 5, (4,))) for _ in range(3)]
    train_one_epoch(model, batches, nn.CrossEntropyLoss(), optimizer, scaler, [0.1] * 3, CPU, "fp32",
                    guard=NonFiniteGuard(model, optimizer, CPU))
    after = snapshot(model)
    for k in before:
        layer = int(k.split(".")[1]) if k.startswith("network.") else LAYERS
        same = torch.equal(before[k], after[k])
        if layer < 10:
            assert same, k  # weights, running statistics and their counters
        elif k.endswith(("weight", "running_mean")):
            assert not same, k
    # eval() and train() again: the frozen layers never leave evaluation mode; freeze(0) lets them go.
    model.eval().train()
    assert not any(m.training for m in model.network[:10]) and model.network[10].training
    model.freeze(0)
    assert all(m.training for m in model.network) and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match=r"freeze_layers must be in \[0, 27\], got 28"):
        model.freeze(28)


def test_freezing_every_layer_trains_the_classifier_only(one_thread):
    torch.manual_seed(1)
    model = MobileNetV1(class_num=3, width_mult=0.25).freeze(LAYERS)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    loss = model(x).sum()
    loss.backward()
    assert [n for n, p in model.named_parameters() if p.grad is not None] == ["fc.weight", "fc.bias"]
    # A linear probe's features are the evaluation ones: the same in train and eval mode.
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), model.eval().forward_features(x))


def test_layers_constant_matches_the_architecture():
    assert LAYERS == len(ARCH)
    with pytest.raises(ConfigError, match=r"option --freeze_layers: freeze_layers must be in \[0, 27\]"):
        load_config(["--freeze_layers=28"])
    assert load_config(["--freeze_layers=27"]).freeze_layers == LAYERS  # a linear probe: the classifier alone


def test_fine_tuning_with_frozen_layers_and_a_resume_that_would_change_them(cifar_dir, tmp_path, capsys, one_thread):
    common = SMALL + [f"--dataset_path={cifar_dir}"]
    base = train.run(load_config(common + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'base'}"]))
    source = ckpt_io.load_file(base["checkpoint"])["model"]
    out = tmp_path / "probe"
    # The base run's folder: its newest checkpoint, as eval and --teacher take a folder.
    result = train.run(load_config(common + ["--epoch_size=1", f"--pre_trained={tmp_path / 'base'}",
                                             f"--freeze_layers={LAYERS}", "--ema_decay=0.9",
                                             f"--save_checkpoint_path={out}"]))
    text = capsys.readouterr().out
    assert "freeze_layers 27: network.0 to network.26 keep their weights (" in text
    assert "BatchNorm statistics measured at" not in text  # the size they were measured at
    assert f"pre_trained: loaded {base['checkpoint']}" in text
    ckpt = ckpt_io.load_file(result["checkpoint"])
    for k, v in ckpt["model"].items():
        if k.startswith("network."):
            assert torch.equal(v, source[k]), k  # running statistics too: the layers ran in eval mode
            assert torch.equal(ckpt["ema"]["model"][k], source[k]), k
    assert not torch.equal(ckpt["model"]["fc.weight"], source["fc.weight"])
    assert len(ckpt["optimizer"]["state"]) == 2  # fc.weight and fc.bias
    # Continuing with every layer trained would give the optimiser other parameters: refused, named.
    with pytest.raises(ckpt_io.CheckpointError, match=r"its run trained with freeze_layers 27, this run 0, so the optimiser "
                                                      r"trains other parameters \(pass --freeze_layers 27"):
        train.run(load_config(common + ["--epoch_size=2", f"--resume={result['checkpoint']}",
                                        f"--save_checkpoint_path={tmp_path / 'other'}"]))
    # The next stage starts from its weights instead, every layer training, with the classifier it learnt.
    stage_2 = common + [f"--pre_trained={result['checkpoint']}", f"--save_checkpoint_path={tmp_path / 'stage2'}",
                        "--resume=auto"]  # nothing to resume at first: the run starts from pre_trained
    stage = train.run(load_config(stage_2 + ["--epoch_size=1"]))
    moved = ckpt_io.load_file(stage["checkpoint"])["model"]
    assert not torch.equal(moved["network.0.0.weight"], source["network.0.0.weight"])
    out = capsys.readouterr().out
    assert "left out" not in out and f"pre_trained: loaded {result['checkpoint']}" in out
    # Resumed, it takes nothing from pre_trained: said once, not "loaded" then "ignored".
    train.run(load_config(stage_2 + ["--epoch_size=2"]))
    out = capsys.readouterr().out
    assert "pre_trained: loaded" not in out and f"; pre_trained {result['checkpoint']} is not used" in out
    # Resumed again without --pre_trained (the checkpoint holds all): its checkpoints still name where it started.
    again = train.run(load_config([a for a in stage_2 if not a.startswith("--pre_trained")] + ["--epoch_size=3"]))
    assert ckpt_io.load_file(again["checkpoint"])["config"]["pre_trained"] == result["checkpoint"]
    # info says where each stage started from (a file of a run started afresh says nothing of it).
    for path, row in ((result["checkpoint"], f"started from:   {tmp_path / 'base'} (pre_trained), its first 27 "
                                             f"layers frozen (freeze_layers)"),
                      (stage["checkpoint"], f"started from:   {result['checkpoint']} (pre_trained)\n")):
        assert cli.main(["info", path]) == 0
        assert row in capsys.readouterr().out
    assert cli.main(["info", base["checkpoint"]]) == 0 and "started from" not in capsys.readouterr().out
    # At another size the frozen layers keep statistics measured at 32: said, with the way to measure them anew.
    train.run(load_config(common + ["--epoch_size=1", "--image_size=40", f"--pre_trained={base['checkpoint']}",
                                    "--freeze_layers=3", f"--save_checkpoint_path={tmp_path / 'at40'}"]))
    assert (f"pre_trained: note: {base['checkpoint']} has its BatchNorm statistics measured at image_size 32; this "
            f"run trains at 40 with them frozen (freeze_layers: network.0 to network.2's): `mobilenet-v1 "
            f"recalibrate-bn {base['checkpoint']} --image_size 40 --dataset_path {cifar_dir} --out FILE` measures them "
            f"at this run's size first (then --pre_trained FILE)") in capsys.readouterr().out


def test_frozen_random_weights_are_named_even_under_resume_auto_with_nothing_to_resume(cifar_dir, tmp_path, capsys,
                                                                                        one_thread):
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--freeze_layers=1",
                                   "--resume=auto", f"--save_checkpoint_path={tmp_path / 'r'}"]))
    out = capsys.readouterr().out
    assert "freeze_layers 1: network.0 keeps its weights (" in out
    assert ("freeze_layers 1: no pre_trained (and nothing resumed): the frozen layers keep their random initial "
            "weights") in out
    assert cli.main(["info", str(tmp_path / "r")]) == 0  # which info said nothing of without a pre_trained
    assert "its first 1 layers (freeze_layers), at their random initial weights: no pre_trained" in \
        capsys.readouterr().out
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=2", "--freeze_layers=1",
                                   "--resume=auto", f"--save_checkpoint_path={tmp_path / 'r'}"]))
    assert "random initial weights" not in capsys.readouterr().out  # resumed: its own trained state


def test_bn_momentum_reaches_every_batchnorm_and_a_mindspore_reading_is_said(cifar_dir, tmp_path, capsys, one_thread):
    """--bn_momentum M: every BatchNorm's running statistics take M of a training batch's (1: the batch's
    own), sync_bn's layers too; outside (0, 1] refused; 0.9, MindSpore's reading of the seed's default,
    trains as given and is said with its counterpart; a resume that changes it names it."""
    import dataclasses

    from mobilenet_v1.distributed import convert_sync_batchnorm

    model = train.build_model(load_config(SMALL + ["--bn_momentum=1", "--freeze_layers=2"]))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == LAYERS and {m.momentum for m in norms} == {1.0}
    seen = []
    trained = norms[2]  # the first layer that trains (two frozen)
    trained.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    model.train()(torch.randn(8, 3, 32, 32))
    assert torch.allclose(trained.running_mean, seen[0].mean(dim=(0, 2, 3)), atol=1e-6)
    synced = convert_sync_batchnorm(train.build_model(load_config(SMALL + ["--bn_momentum=0.01"])))
    assert {m.momentum for m in synced.modules() if isinstance(m, nn.BatchNorm2d)} == {0.01}
    assert {m.momentum for m in train.build_model(load_config(SMALL)).modules()
            if isinstance(m, nn.BatchNorm2d)} == {0.1}  # the seed's
    for bad in ("0", "1.5", "-0.1"):
        with pytest.raises(ConfigError, match=r"option --bn_momentum: bn_momentum must be in \(0, 1\]"):
            load_config(SMALL + [f"--bn_momentum={bad}"])
    cfg = load_config(SMALL + ["--bn_momentum=0.9"])
    assert "MindSpore's and TensorFlow's momentum or decay 0.9 is --bn_momentum 0.1 here" in train.bn_momentum_note(cfg)
    assert train.bn_momentum_note(load_config(SMALL + ["--bn_momentum=0.5"])) == ""
    assert "0.51 is --bn_momentum 0.49 here" in train.bn_momentum_note(load_config(SMALL + ["--bn_momentum=0.51"]))
    assert train.bn_momentum_note(load_config(SMALL + ["--bn_momentum=1"])).endswith("(PyTorch's convention)")
    for other, said in (("--qat=True --pre_trained=m.ckpt", "qat is True"),
                        (f"--freeze_layers={LAYERS}", f"freeze_layers {LAYERS} freezes every BatchNorm")):
        with pytest.raises(ConfigError, match=rf"option --bn_momentum: bn_momentum 0.01 is how BatchNorm's running "
                                              rf"statistics update; {said}"):
            load_config(SMALL + ["--bn_momentum=0.01", *other.split()])
    line = train.recipe_change({"config": dataclasses.asdict(load_config(SMALL))}, "a.ckpt", cfg)
    assert "bn_momentum 0.1; continuing with this run's bn_momentum 0.9" in line
    capsys.readouterr()
    train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--bn_momentum=0.9",
                                   "--lr_per_epoch=True", f"--save_checkpoint_path={tmp_path / 'run'}"]))
    assert "bn_momentum 0.9: each training batch's statistics make 90% of BatchNorm's" in capsys.readouterr().out
    from mobilenet_v1 import cli

    assert cli.main(["info", str(tmp_path / "run")]) == 0  # the run's own, in its recipe
    recipe = [line for line in capsys.readouterr().out.splitlines() if "recipe:" in line][0]
    assert ", bn_momentum 0.9" in recipe and ", lr_per_epoch True, " in recipe  # the rate set once an epoch


def test_a_mindspore_file_of_another_width_is_refused_by_its_width(cifar_dir, tmp_path, capsys):
    """A MindSpore .ckpt records no width: read off its shapes, it is named as a file of ours is (not each of its
    tensors' shapes), with the way to fine-tune it or learn from it."""
    seed_file = str(tmp_path / "seed.ckpt")
    wide = MobileNetV1(4, 0.5).state_dict()
    mindspore_io.write_mindspore_ckpt(seed_file, mindspore_io.to_seed_state({"model": wide}))
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^pre_trained {seed_file}: a MobileNetV1 of width_mult 0.5, "
                                                      rf"this run's is 0.25 \(--width_mult 0.5 fine-tunes it; a "
                                                      rf"model of another width learns from it with --teacher\)$"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", f"--pre_trained={seed_file}",
                                       f"--save_checkpoint_path={tmp_path / 'run'}"]))
    # timm's weights record no width either (mobilenetv1_125 is 1.25): its names mapped, each a MobileNetV1's, it is
    # named by its width too, not by a list of shapes.
    from test_mindspore_io import timm_names

    timm_file = str(tmp_path / "model.safetensors")
    ours = MobileNetV1(4, 0.5, padding="symmetric").state_dict()
    save_file({theirs + k[len(prefix):]: t.contiguous() for theirs, prefix in timm_names() for k, t in ours.items()
               if k.startswith(prefix + ".")}, timm_file)
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^pre_trained {timm_file}: a MobileNetV1 of width_mult 0.5, "
                                                      rf"this run's is 0.25 \(--width_mult 0.5 fine-tunes it"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", f"--pre_trained={timm_file}",
                                       "--padding=symmetric", f"--save_checkpoint_path={tmp_path / 'run3'}"]))
    # timm's backbone (num_classes=0: no classifier) fine-tunes as a file of another class count does, its
    # classifier fresh (it was refused as missing fc.weight and fc.bias); half a classifier is still refused.
    narrow = MobileNetV1(4, 0.25, padding="symmetric").state_dict()
    backbone = {theirs + k[len(prefix):]: t.contiguous() for theirs, prefix in timm_names()[:-1]
                for k, t in narrow.items() if k.startswith(prefix + ".")}
    save_file(backbone, str(tmp_path / "backbone.safetensors"))
    config = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--padding=symmetric",
                                  f"--pre_trained={tmp_path / 'backbone.safetensors'}", "--lr_max=0",
                                  f"--save_checkpoint_path={tmp_path / 'run4'}"])
    capsys.readouterr()
    trained = ckpt_io.load_file(train.run(config)["checkpoint"])["model"]
    # lr_max 0 (the schedule's floor, lr_end, moves them by 1e-4): the file's weights, not a fresh network's
    assert torch.allclose(trained["network.5.0.weight"], narrow["network.5.0.weight"], atol=1e-3)
    assert (f"pre_trained: loaded {tmp_path / 'backbone.safetensors'}; it holds no classifier (a backbone's "
            f"weights), which starts fresh\n") in capsys.readouterr().out
    # A file of ours that records its classifier (model_args) and lost it is no backbone's: refused.
    headless = str(tmp_path / "headless.pt")
    torch.save({"format": ckpt_io.FORMAT, "model": {k: v for k, v in narrow.items() if not k.startswith("fc.")},
                "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "symmetric"}}, headless)
    with pytest.raises(ckpt_io.CheckpointError, match=r"headless.pt records a classifier of 4 classes \(model_args\) "
                                                      r"and holds none \(fc.weight, fc.bias\): damaged\?"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--padding=symmetric",
                                       f"--pre_trained={headless}", f"--save_checkpoint_path={tmp_path / 'run6'}"]))
    save_file({**backbone, "classifier.weight": narrow["fc.weight"]}, str(tmp_path / "half.safetensors"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"does not fit this model \(missing 1: fc.bias \(4,\)\)"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", "--padding=symmetric",
                                       f"--pre_trained={tmp_path / 'half.safetensors'}",
                                       f"--save_checkpoint_path={tmp_path / 'run5'}"]))
    # A file of another network that records no width is no MobileNetV1 of some width: its tensors are named.
    other = str(tmp_path / "other.pt")
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(4, 512), "fc.bias": torch.zeros(4)},
               other)
    with pytest.raises(ckpt_io.CheckpointError) as refused:
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1", f"--pre_trained={other}",
                                       f"--save_checkpoint_path={tmp_path / 'run2'}"]))
    said = str(refused.value)
    assert "a MobileNetV1 of width_mult" not in said and "unexpected 1: conv.weight (8, 3, 3, 3)" in said


def test_the_recalibrate_bn_command_of_the_frozen_size_note_keeps_the_runs_held_out_share_out(tmp_path, capsys,
                                                                                              one_thread):
    # The note's command, run as given, measured the frozen layers' statistics on every image of the folder,
    # the share this run then evaluates on (val_split) among them: that share must stay out of it.
    import shlex

    from conftest import class_folders_of_photos
    photos = class_folders_of_photos(tmp_path / "photos", per_class=6)
    common = SMALL[:2] + ["--batch_size=8", "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0",
                          "--lr_max=0.01", "--dataset=imagenet2012", f"--dataset_path={photos}", "--class_num=4",
                          "--epoch_size=1"]
    base = train.run(load_config(common + [f"--save_checkpoint_path={tmp_path / 'base'}"]))
    capsys.readouterr()
    train.run(load_config([a for a in common if a != "--image_size=32"] + [
        "--image_size=40", "--val_split=0.2", f"--pre_trained={base['checkpoint']}", "--freeze_layers=3",
        f"--save_checkpoint_path={tmp_path / 'at40'}"]))
    out = capsys.readouterr().out
    command = out.split("`mobilenet-v1 ")[1].split("`")[0]
    assert f"--dataset_path {photos} --val_split 0.2 --out FILE" in command
    assert cli.main(shlex.split(command.replace("FILE", str(tmp_path / "at40.pt"))) + ["--images=100"]) == 0
    out = capsys.readouterr().out
    assert "the share of each class held out to evaluate on (val_split 0.2) was left out" in out
    assert "on 20 training images" in out  # 4 classes of 6 images, one of each held out (of 24 without it)


def test_a_frozen_layers_statistics_keep_the_size_they_were_measured_at_through_the_next_stage(cifar_dir, tmp_path,
                                                                                                capsys, one_thread):
    # A linear probe at 40 from a file of 32 keeps that file's statistics, measured at 32: a next stage from the
    # probe's checkpoint that froze them again was told nothing at 40 and, at 32, that they were measured at 40.
    common = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=1"]
    base = train.run(load_config(common + [f"--save_checkpoint_path={tmp_path / 'base'}"]))
    probe = train.run(load_config([a for a in common if a != "--image_size=32"] + [
        "--image_size=40", f"--pre_trained={base['checkpoint']}", f"--freeze_layers={LAYERS}",
        f"--save_checkpoint_path={tmp_path / 'probe'}"]))["checkpoint"]
    assert ckpt_io.load_file(probe)[ckpt_io.BN_LAYER_SIZES] == [32] * LAYERS
    capsys.readouterr()

    def note(source: str, size: int, frozen: int, name: str):
        result = train.run(load_config([a for a in common if a != "--image_size=32"] + [
            f"--image_size={size}", f"--pre_trained={source}", f"--freeze_layers={frozen}",
            f"--save_checkpoint_path={tmp_path / name}"]))
        said = [line for line in capsys.readouterr().out.splitlines() if "BatchNorm statistics measured" in line]
        return (said or [""])[0], result["checkpoint"]

    said, _ = note(probe, 40, LAYERS, "again40")
    assert f"{probe} has its BatchNorm statistics measured at image_size 32; this run trains at 40" in said
    said, at32 = note(probe, 32, LAYERS, "at32")
    assert said == "" and ckpt_io.BN_LAYER_SIZES not in ckpt_io.load_file(at32)  # of 32, as the run's: all alike
    said, half = note(probe, 48, 13, "half48")
    assert f"{probe} has its BatchNorm statistics measured at image_size 32; this run trains at 48" in said
    half = ckpt_io.load_file(half)
    assert half[ckpt_io.BN_LAYER_SIZES] == [32] * 13 + [48] * (LAYERS - 13)  # those that trained measured theirs
    assert ckpt_io.layer_statistics_sizes(half) == half[ckpt_io.BN_LAYER_SIZES]
    assert ckpt_io.statistics_size(half) is None  # not of one size
    said, _ = note(str(tmp_path / "half48"), 48, 20, "mixed")
    assert ("has its BatchNorm statistics measured at several image sizes (network.0 to network.12 at 32, "
            "network.13 to network.19 at 48); this run trains at 48 with them frozen") in said


def test_info_shows_the_sizes_a_frozen_layers_run_s_statistics_were_measured_at(tmp_path, capsys):
    """info of a --freeze_layers run's checkpoint whose frozen layers kept statistics of another size said nothing
    of its bn_statistics_sizes record, where it says a QAT file's bn_statistics_size (helper-426)."""
    from mobilenet_v1.config import to_dict

    config = to_dict(load_config(SMALL + ["--image_size=48", "--freeze_layers=13", "--pre_trained=base.ckpt"]))
    path = tmp_path / "probe.ckpt"
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "model": MobileNetV1(4, 0.25).state_dict(), "config": config,
                         ckpt_io.BN_LAYER_SIZES: [32] * 13 + [48] * (LAYERS - 13)}, str(path))
    assert cli.main(["info", str(path)]) == 0
    assert ("  BN statistics:  measured at network.0 to network.12 at 32, network.13 to network.26 at 48: the layers "
            "its run froze kept those of the file it started from\n") in capsys.readouterr().out
    assert cli.main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bn_statistics_sizes"] == [32] * 13 + [48] * (LAYERS - 13)
    # All of its own size (a record of another file's, hand-copied): nothing to say.
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "model": MobileNetV1(4, 0.25).state_dict(), "config": config,
                         ckpt_io.BN_LAYER_SIZES: [48] * LAYERS}, str(path))
    assert cli.main(["info", str(path)]) == 0
    assert "BN statistics" not in capsys.readouterr().out
