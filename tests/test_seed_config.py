"""The seed's own three-document YAML files (tests/fixtures/seed/) load unchanged."""
import os

import pytest
import torch

from mobilenet_v1 import cli
from mobilenet_v1.config import ASCEND, ASCEND_REFUSAL, SEED_IGNORED_KEYS, ConfigError, load_config, read_yaml
from mobilenet_v1.engine import resolve_device

SEED = os.path.join(os.path.dirname(__file__), "fixtures", "seed")
FILES = ("default_config.yaml", "default_config_imagenet.yaml", "default_config_gpu_imagenet.yaml")
# The keys of the seed's files with no meaning here, in file order (what the one line lists).
IGNORED = ["enable_modelarts", "data_url", "train_url", "checkpoint_url", "data_path", "output_path", "load_path",
           "checkpoint_file", "enable_profiling", "parameter_server", "device_id", "result_dir", "label_dir",
           "dataset_name", "result_path"]


def seed_file(name: str) -> str:
    return os.path.join(SEED, name)


@pytest.mark.parametrize("name", FILES)
def test_seed_files_are_three_documents(name):
    import yaml

    with open(seed_file(name)) as f:
        docs = list(yaml.safe_load_all(f))
    assert len(docs) == 3
    values, helps, choices = docs
    assert set(choices) == {"device_target", "file_format", "dataset_name"}
    assert set(values) >= set(IGNORED) and all(isinstance(h, str) for h in helps.values())


@pytest.mark.parametrize("name,expect", [
    ("default_config.yaml", dict(dataset="cifar10", class_num=10, batch_size=32, warmup_epochs=5,
                                 lr_decay_mode="poly", lr_init=0.01, lr_max=0.1, lr_end=0.00001, device_num=1,
                                 device_target="Ascend", use_label_smooth=False)),
    ("default_config_imagenet.yaml", dict(dataset="imagenet2012", class_num=1001, batch_size=256, warmup_epochs=0,
                                          lr_decay_mode="linear", lr_init=0.0, lr_max=0.8, lr_end=0.0, device_num=1,
                                          device_target="Ascend", use_label_smooth=True, label_smooth_factor=0.1)),
    ("default_config_gpu_imagenet.yaml", dict(dataset="imagenet2012", class_num=1001, batch_size=256,
                                              lr_decay_mode="linear", lr_max=0.8, device_num=4, device_target="GPU",
                                              use_label_smooth=True)),
])
def test_seed_files_load_unchanged(name, expect, capsys):
    cfg = load_config(["--config_path", seed_file(name)])
    for key, value in expect.items():
        assert getattr(cfg, key) == value, key
    # The seed's common values (SPEC.md section 5).
    assert (cfg.loss_scale, cfg.momentum, cfg.weight_decay, cfg.epoch_size, cfg.pretrain_epoch_size) == \
        (1024, 0.9, 0.0001, 90, 0)
    assert (cfg.save_checkpoint, cfg.save_checkpoint_epochs, cfg.keep_checkpoint_max, cfg.save_checkpoint_path) == \
        (True, 5, 10, "./")
    assert (cfg.file_name, cfg.file_format, cfg.width, cfg.height) == ("mobilenetv1", "MINDIR", 224, 224)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ignored seed keys with no meaning here: " + ", ".join(IGNORED)]
    if cfg.device_target == "Ascend":  # the file loads; a run of it is told what to set instead
        with pytest.raises(ValueError, match=r"^device_target Ascend: this toolkit runs on CUDA GPUs and CPUs; "
                                             r"pass --device_target GPU, CPU or auto .* or set one of them in a "
                                             r"configuration file that says Ascend \(the seed's do\)$"):
            resolve_device(cfg.device_target)


def test_ignored_keys_are_seed_keys_only(tmp_path, capsys, monkeypatch):
    assert set(IGNORED) <= set(SEED_IGNORED_KEYS)
    f = tmp_path / "mine.yaml"
    f.write_text(open(seed_file("default_config.yaml")).read().replace("enable_profiling: False",
                                                                        "enable_profiling: False\nbn_wd: 1"))
    with pytest.raises(ConfigError, match=r"mine\.yaml: unknown key 'bn_wd'"):
        load_config(["--config_path", str(f)])
    # The seed's scripts pass some of them as flags too.
    cfg = load_config(["--config_path", seed_file("default_config.yaml"), "--enable_modelarts=False",
                       "--device_id", "3", "--device_target", "CPU"])
    assert cfg.device_target == "CPU"
    # The seed's --device_id chose the card; here the first visible one is taken, which is said.
    assert "note: --device_id 3 does not choose the GPU here" in capsys.readouterr().err
    load_config(["--config_path", seed_file("default_config.yaml"), "--device_id", "0"])
    assert "--device_id" not in capsys.readouterr().err
    # Under torchrun each process takes the GPU of its LOCAL_RANK: CUDA_VISIBLE_DEVICES=3 would leave one for all.
    monkeypatch.setenv("WORLD_SIZE", "2")
    load_config(["--config_path", seed_file("default_config.yaml"), "--device_id", "3"])
    err = capsys.readouterr().err
    assert "each process takes the visible one of its LOCAL_RANK" in err and "CUDA_VISIBLE_DEVICES=3" not in err


def test_the_seed_keys_notes_are_said_by_rank_0_alone(capsys, monkeypatch):
    """Under torchrun the --device_id note and the ignored seed keys' line are rank 0's: every other process
    reads the same command line and printed them again (one line a GPU)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["--config_path", seed_file("default_config.yaml"), "--device_id", "3", "--enable_modelarts=False"]
    monkeypatch.setenv("RANK", "1")
    load_config(args)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    load_config(args)
    err = capsys.readouterr().err
    assert "--device_id 3 does not choose the GPUs" in err and "ignored seed keys with no meaning here" in err


def test_values_outside_the_files_choices_are_refused(tmp_path):
    path = seed_file("default_config_gpu_imagenet.yaml")
    _, choices = read_yaml(path)
    assert choices["device_target"] == ["Ascend", "GPU", "CPU"]
    with pytest.raises(ConfigError, match=r"device_target='TPU' is not one of"):
        load_config(["--config_path", path, "--device_target=TPU"])
    # The third document narrows what we would accept.
    f = tmp_path / "ascend_only.yaml"
    f.write_text(open(path).read().replace("device_target: ['Ascend', 'GPU', 'CPU']", "device_target: ['Ascend']"))
    with pytest.raises(ConfigError, match=r"ascend_only\.yaml: device_target='GPU' is not one of \['Ascend', "
                                          r"'auto'\] \(the allowed values of config file .*ascend_only\.yaml\)$"):
        load_config(["--config_path", str(f)])
    # A default the allowed values leave out names the file that does; allowed values of no key are refused.
    f.write_text(open(path).read() + "nesterov: [True]\n")
    with pytest.raises(ConfigError, match=r"^the default of nesterov: nesterov=False is not one of \[True\] \(the "
                                          r"allowed values of config file .*ascend_only\.yaml\)$"):
        load_config(["--config_path", str(f)])
    f.write_text(open(path).read() + "foo_bar: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"^config file .*ascend_only\.yaml: unknown key 'foo_bar'"):
        load_config(["--config_path", str(f)])
    # A key with no meaning here still obeys the file's choices, named as the option given where it was (the
    # file, which set another value, was named).
    with pytest.raises(ConfigError, match=r"^option --dataset_name: dataset_name='mnist' is not one of \['cifar10', "
                                          r"'imagenet2012'\] \(the allowed values of config file "):
        load_config(["--config_path", path, "--dataset_name=mnist"])
    # One config file is read: a second was dropped without a word.
    with pytest.raises(ConfigError, match=r"^option --config_path is given 2 times \(.*\): one file is read"):
        load_config(["--config_path", path, "--config_path", str(f)])
    # export takes file_format in any case (`onnx`): train and eval refused the file it had read.
    (tmp_path / "lower.yaml").write_text("file_format: onnx\n")
    assert load_config(["--config_path", str(tmp_path / "lower.yaml")]).file_format == "ONNX"
    # A file whose own value breaks its choices.
    f = tmp_path / "bad.yaml"
    f.write_text(open(path).read().replace("file_format: 'MINDIR'", "file_format: 'PNG'"))
    with pytest.raises(ConfigError, match=r"bad\.yaml: file_format='PNG' is not one of \['ONNX', 'PT2', 'PTE', "
                                          r"'TFLITE', 'AIR', 'MINDIR'\]$"):
        load_config(["--config_path", str(f)])
    # Our own addition to a seed key's choices stays accepted.
    assert load_config(["--config_path", path, "--device_target=auto"]).device_target == "auto"
    # export's formats beyond the seed's: an ExecuTorch program (and a .tflite, with a seed file) was refused as a
    # configuration's file_format.
    for fmt in ("PT2", "PTE", "TFLITE"):
        assert load_config(["--config_path", path, f"--file_format={fmt}"]).file_format == fmt
        assert load_config([f"--file_format={fmt}"]).file_format == fmt


def test_train_names_the_export_keys_typed_on_its_command_line(monkeypatch, capsys):
    """train takes the seed's export keys (its files carry them) and uses none: --file_name, --ckpt_file or
    --file_format typed on train's command line passed without a word. They join the line of the seed's keys with
    no meaning here; the same keys in a seed file, which holds them by design, are not named."""
    from mobilenet_v1 import train

    seen = []
    monkeypatch.setattr(train, "run", lambda cfg, given: seen.append(cfg) or {"stopped": ""})
    assert cli.main(["train", "--file_name", "net", "--enable_modelarts=False", "--ckpt_file=x.ckpt",
                     "--file_format", "PTE", "--epoch_size=2"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ignored seed keys with no meaning here: enable_modelarts, file_name, ckpt_file, file_format"]
    assert (seen[0].file_name, seen[0].ckpt_file, seen[0].file_format) == ("net", "x.ckpt", "PTE")  # still recorded
    assert cli.main(["train", "--config_path", seed_file("default_config.yaml"), "--device_target=CPU"]) == 0
    assert capsys.readouterr().err.strip().splitlines() == ["ignored seed keys with no meaning here: "
                                                            + ", ".join(IGNORED)]
    assert cli.main(["train", "--epoch_size=2"]) == 0 and "ignored" not in capsys.readouterr().err


def test_lr_schedule_from_a_seed_file_keeps_stdout_a_table(capsys):
    rc = cli.main(["lr-schedule", "--config_path", seed_file("default_config_gpu_imagenet.yaml"), "--epoch_size=2",
                   "--steps_per_epoch", "3"])
    out, err = capsys.readouterr()
    assert rc == 0 and out.splitlines()[0] == "step,epoch,lr" and len(out.splitlines()) == 7
    assert err.startswith("ignored seed keys with no meaning here: enable_modelarts, ")


def test_lr_schedule_says_a_config_files_device_num_is_not_a_one_process_runs(tmp_path, capsys):
    """configs/imagenet2012_gpu.yaml plans 4 GPUs (device_num 4); `train` in one process trains with 1 (and a
    quarter of the steps per epoch), so the table of `lr-schedule` from that file does not overlay a one-GPU
    run's records (README: its one-GPU recipe, --grad_accum_steps 4): said, with the option that gives that
    run's table. Given on the command line, device_num is the user's plan: nothing said."""
    config = os.path.join(os.path.dirname(__file__), os.pardir, "configs", "imagenet2012_gpu.yaml")
    out = str(tmp_path / "lr.csv")
    assert cli.main(["lr-schedule", "--config_path", config, "--grad_accum_steps", "4", "--out", out]) == 0
    err = capsys.readouterr().err
    assert (f"note: device_num 4 (config file {config}): the schedule of 4 processes (torchrun "
            f"--nproc_per_node=4); train in one process runs with device_num 1: add --device_num 1 for its schedule"
            in err)
    rows = sum(1 for _ in open(out)) - 1
    assert cli.main(["lr-schedule", "--config_path", config, "--grad_accum_steps", "4", "--device_num", "1",
                     "--out", out]) == 0
    assert "note: device_num" not in capsys.readouterr().err
    # One process's epoch: 1,281,167 // 256 // 4 = 1251 steps, four times the file's plan's 312.
    assert (rows, sum(1 for _ in open(out)) - 1) == (90 * 312, 90 * 1251)
    assert cli.main(["lr-schedule", "--config_path", config, "--device_num", "4", "--epoch_size", "1",
                     "--out", out]) == 0
    assert "note: device_num" not in capsys.readouterr().err


def test_lr_schedule_scales_the_seed_gpu_rate_to_another_device_count(capsys):
    """The seed's GPU file: lr_max 0.8 for 4 x 256. Said to be meant for 1,024 images, on 8 GPUs it peaks
    at 1.6, and the note on stderr says why; stdout stays the table."""
    rc = cli.main(["lr-schedule", "--config_path", seed_file("default_config_gpu_imagenet.yaml"), "--epoch_size=2",
                   "--steps_per_epoch", "3", "--lr_base_size=1024", "--device_num=8"])
    out, err = capsys.readouterr()
    rates = [float(line.split(",")[2]) for line in out.splitlines()[1:]]
    assert rc == 0 and rates[0] == pytest.approx(1.6) and rates[3] == pytest.approx(1.6 / 2)
    assert ("lr_base_size 1024: the rates are meant for a global batch of 1024; this run's is 2048, so they are "
            "scaled x2 (linear): lr_max 0.8 -> 1.6") in err


def test_export_takes_the_seed_exports_device_flags(tmp_path, monkeypatch, capsys):
    """The seed's export.py takes every key of its configuration as a flag; off Ascend (its files' device) its
    users pass --device_target GPU or CPU, and --device_id: export refused them (unrecognized arguments)."""
    from mobilenet_v1 import export

    seen = {}

    def stop(ckpt_file, file_name, height, width, batch_size, **kwargs):
        seen.update(ckpt_file=ckpt_file, file_name=file_name, file_format=kwargs["file_format"])
        raise export.ExportError("stopped before exporting")

    monkeypatch.setattr(export, "export_checkpoint", stop)
    ckpt, name = str(tmp_path / "mobilenetv1-90_625.ckpt"), str(tmp_path / "mobilenetv1")
    for device in ("GPU", "CPU"):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", name, "--file_format", "ONNX",
                         "--device_target", device]) == 1
        assert seen == {"ckpt_file": ckpt, "file_name": name, "file_format": "ONNX"}
        assert "stopped before exporting" in capsys.readouterr().err
        seen.clear()
    assert cli.main(["export", f"--ckpt_file={ckpt}", "--file_format=ONNX", "--device_target=GPU",
                     "--device_id=1"]) == 1
    err = capsys.readouterr().err
    assert "ignored seed keys with no meaning here: device_id" in err and "stopped before exporting" in err
    seen.clear()
    # Ascend too (the seed's default there): taken and not used, as the others, since export runs on the CPU alone
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_format", "ONNX", "--device_target", "Ascend"]) == 1
    assert seen["ckpt_file"] == ckpt and "stopped before exporting" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "benchmark", "recalibrate-bn"])
def test_every_device_target_option_refuses_ascend_in_trains_line(command, tmp_path, capsys):
    """The seed's device (its configuration files'), typed by a user coming from it: every command's own
    --device_target refused it as argparse's "invalid choice" after its usage block; now in the one line train
    and eval say, exit status 2 as argparse's errors. Another value is still argparse's refusal."""
    operands = {"predict": ["x.png", "--ckpt_file", "m.ckpt"], "benchmark": ["m.ckpt"],
                "recalibrate-bn": ["m.ckpt", "--dataset_path", str(tmp_path), "--image_size", "32", "--out",
                                   str(tmp_path / "out.ckpt")]}[command]
    for spelling in (["--device_target", "Ascend"], ["--device_target=Ascend"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, *operands, *spelling])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err == f"mobilenet-v1 {command}: error: {ASCEND}\n"
    assert cli.main(["train", "--device_target", "Ascend", f"--dataset_path={tmp_path}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"mobilenet-v1 train: error: {ASCEND_REFUSAL}"
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, *operands, "--device_target", "TPU"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "usage:" in err
    assert "argument --device_target: invalid choice: 'TPU'" in err and "Ascend" not in err


def test_export_takes_the_seed_exports_class_num_and_checks_it(tmp_path, monkeypatch, capsys):
    """The seed's export.py takes --class_num (its network's outputs, into which it loads the file): export
    refused the flag (unrecognized arguments). Now the checkpoint's own count passes without a word, another
    is refused in one line naming the option, the value and the file's count, before anything is exported."""
    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1 import export
    from mobilenet_v1.model import MobileNetV1

    model = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt = str(tmp_path / "m.ckpt")
    torch.save({"format": ckpt_io.FORMAT, "model": model.state_dict(),
                "model_args": {"class_num": 4, "width_mult": 0.25, "padding": "same"},
                "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)

    def stop(*args, **kwargs):
        raise export.ExportError("stopped before exporting")

    monkeypatch.setattr(export, "to_onnx", stop)
    name = str(tmp_path / "mobilenetv1")
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", name, "--class_num", "10"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"mobilenet-v1 export: error: --class_num 10: {ckpt} has 4 classes (its classifier's "
                           f"outputs); give --class_num 4 or leave it out")
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", name, "--class_num=4"]) == 1
    err = capsys.readouterr().err
    assert "stopped before exporting" in err and "class_num" not in err
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_export_names_the_seed_files_keys_it_does_not_use_in_one_line(monkeypatch, capsys):
    """train and eval name the seed's keys with no meaning here (enable_modelarts, ...) in one line; export read
    the seed's file for its own keys and said nothing of the rest. The line is train's, the keys export takes
    (ckpt_file, file_name, file_format, width, height) not in it; a --device_id given joins it, once."""
    from mobilenet_v1 import export

    seen = {}

    def stop(ckpt_file, file_name, height, width, batch_size, **kwargs):
        seen.update(ckpt_file=ckpt_file, file_name=file_name, height=height, width=width)
        raise export.ExportError("stopped before exporting")

    monkeypatch.setattr(export, "export_checkpoint", stop)
    for extra in ([], ["--device_id", "1"]):
        assert cli.main(["export", "--config_path", seed_file("default_config_gpu_imagenet.yaml"),
                         "--file_format", "ONNX", *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err == ["ignored seed keys with no meaning here: " + ", ".join(IGNORED),
                       "mobilenet-v1 export: error: stopped before exporting"]
        assert seen == {"ckpt_file": "/cache/data/mobilenetv1-90_1251.ckpt", "file_name": "mobilenetv1",
                        "height": 224, "width": 224}


def test_a_run_of_ours_continued_the_seeds_way_keeps_its_momentum(cifar_dir, tmp_path, capsys, one_thread):
    """The seed's way to go on, --pre_trained the epoch's checkpoint with --pretrain_epoch_size that epoch: from
    a MindSpore file (or one convert wrote of ours) the Momentum buffers went into SGD's state, from our own
    training checkpoint they were dropped without a word, and the run went elsewhere than one not stopped. Without a
    --pre_trained the same option trained the schedule's tail from random weights, without a word either."""
    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1 import train

    def run(out, *extra):
        cfg = load_config(["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU",
                           "--num_workers=0", "--class_num=4", "--epoch_size=3", "--save_checkpoint_epochs=1",
                           f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={tmp_path / out}", *extra])
        return ckpt_io.load_file(train.run(cfg)["checkpoint"])["model"]

    straight = run("straight")
    capsys.readouterr()
    went_on = run("went_on", f"--pre_trained={tmp_path / 'straight' / 'mobilenetv1-2_12.ckpt'}",
                  "--pretrain_epoch_size=2")
    out = capsys.readouterr().out
    assert "momentum buffers of 83 parameters restored (its global_step 24); continuing at epoch 3" in out
    assert ", epoch 3, precision" in out and "random initial weights" not in out
    for name, tensor in straight.items():
        assert torch.equal(went_on[name], tensor), name
    run("from_nothing", "--pretrain_epoch_size=2")
    assert ("warning: pretrain_epoch_size 2: no pre_trained (and nothing resumed): the run starts at epoch 3 of the "
            "schedule from random initial weights") in capsys.readouterr().out


@pytest.mark.skipif(os.path.exists("/cache/data"), reason="the seed's ModelArts folder is there")
def test_a_dataset_path_from_a_seed_file_that_is_not_there_names_the_file(tmp_path, monkeypatch, capsys):
    """The seed's files name dataset_path /cache/data (its ModelArts folder): train, eval and data-stats said
    "dataset_path '/cache/data' does not exist" as if it had been typed; now the file is named, and the option
    that gives another. A path given on the command line is said as before."""
    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1.model import MobileNetV1

    monkeypatch.chdir(tmp_path)  # save_checkpoint_path "./": nothing may be written there
    path = seed_file("default_config.yaml")
    ckpt = tmp_path / "m.ckpt"
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=10, width_mult=0.25).state_dict(),
                         "model_args": {"class_num": 10, "width_mult": 0.25}}, str(ckpt))
    for command, extra in (("train", ["--device_target=CPU"]), ("data-stats", []),
                           ("eval", ["--device_target=CPU", f"--checkpoint_path={ckpt}"])):
        assert cli.main([command, "--config_path", path, *extra]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"mobilenet-v1 {command}: error: dataset_path '/cache/data' (from config file {path}) does not exist: "
            f"pass --dataset_path")
    missing = tmp_path / "nowhere"
    assert cli.main(["train", "--config_path", path, "--device_target=CPU", f"--dataset_path={missing}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"mobilenet-v1 train: error: dataset_path '{missing}' does not exist")
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"]
    # The checkpoints they name (./mobilenetv1-90_625.ckpt to evaluate, /cache/data/... to export) likewise.
    data = tmp_path / "cifar"
    data.mkdir()
    for argv, key, value in ((["eval", "--device_target=CPU", f"--dataset_path={data}"], "checkpoint_path",
                              "./mobilenetv1-90_625.ckpt"),
                             (["export", "--file_name", str(tmp_path / "e"), "--file_format", "ONNX"], "ckpt_file",
                              "/cache/data/mobilenetv1-90_625.ckpt")):
        assert cli.main([*argv, "--config_path", path]) == 1
        assert capsys.readouterr().err.strip().splitlines()[-1] == (
            f"mobilenet-v1 {argv[0]}: error: {key} {value} (from config file {path}): no such file or run folder; "
            f"pass --{key}")
    assert cli.main(["eval", "--device_target=CPU", f"--dataset_path={data}", "--checkpoint_path=x.ckpt"]) == 1
    assert capsys.readouterr().err.strip().endswith("error: --checkpoint_path x.ckpt: no such file or run folder")
