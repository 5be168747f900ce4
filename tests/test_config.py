import contextlib
import dataclasses
import os
import re

import pytest
import yaml

from mobilenet_v1 import cli
from mobilenet_v1.config import (TF_SLIM_NAMES, TIMM_NAMES, TORCHVISION_NAMES, Config, ConfigError, load_config,
                                 load_config_and_given, parse_overrides, validate)

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_defaults_are_the_seeds_cifar10_values():
    cfg = load_config([])
    assert (cfg.class_num, cfg.batch_size, cfg.epoch_size, cfg.warmup_epochs) == (10, 32, 90, 5)
    assert (cfg.lr_decay_mode, cfg.lr_init, cfg.lr_max, cfg.lr_end) == ("poly", 0.01, 0.1, 0.00001)
    assert (cfg.save_checkpoint_epochs, cfg.keep_checkpoint_max, cfg.loss_scale) == (5, 10, 1024)


def test_imagenet_dataset_starts_from_the_seeds_imagenet_values():
    cfg = load_config(["--dataset", "imagenet2012"])
    assert (cfg.class_num, cfg.batch_size, cfg.warmup_epochs, cfg.lr_decay_mode) == (1001, 256, 0, "linear")
    assert (cfg.lr_max, cfg.use_label_smooth, cfg.label_smooth_factor) == (0.8, True, 0.1)


@pytest.mark.parametrize("name", ["cifar10.yaml", "imagenet2012.yaml", "imagenet2012_gpu.yaml", "imagenet2012_rmsprop.yaml",
                                  "demo.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(["--config_path", os.path.join(ROOT, "configs", name)])
    assert isinstance(cfg, Config)


def test_file_then_command_line_override_both_spellings(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 64\nlr_max: 0.5\n")
    cfg = load_config([f"--config_path={f}", "--lr_max=0.2", "--epoch_size", "3", "--save_checkpoint", "False"])
    assert (cfg.batch_size, cfg.lr_max, cfg.epoch_size, cfg.save_checkpoint) == (64, 0.2, 3, False)


def test_the_keys_set_remember_where_from_through_copies(tmp_path):
    import copy
    import pickle

    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 64\neval_image_size: 32\n")
    _, given = load_config_and_given(["--config_path", str(f), "--epoch_size=3"])
    assert given == {"batch_size", "eval_image_size", "epoch_size"}
    assert given.origin == {"batch_size": f"config file {f}", "eval_image_size": f"config file {f}",
                            "epoch_size": "option --epoch_size"}
    for kept in (copy.copy(given), copy.deepcopy(given), pickle.loads(pickle.dumps(given))):
        assert kept == given and kept.origin == given.origin
    given.discard("eval_image_size")
    assert given == {"batch_size", "epoch_size"} and set(given.origin) == given


def test_unknown_keys_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'bn_wd'"):
        load_config(["--bn_wd=1"])
    f = tmp_path / "c.yaml"
    f.write_text("batch_sise: 64\n")
    with pytest.raises(ConfigError, match=r"c\.yaml.*batch_sise"):
        load_config(["--config_path", str(f)])
    # The seed README's own spellings point to this toolkit's keys.
    with pytest.raises(ConfigError, match=r"unknown key 'platform' \(a name from the seed's README: here it is "
                                          r"--device_target\)"):
        load_config(["--platform", "GPU"])
    f.write_text("pretrain_ckpt: m.ckpt\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'pretrain_ckpt' \(.*--checkpoint_path in eval"):
        load_config(["--config_path", str(f)])
    # timm's train.py names point to ours; a flag without a value that is no key is an unknown key, not
    # one that "needs a value".
    fields = {f.name for f in dataclasses.fields(Config)}
    for names in (TIMM_NAMES, TORCHVISION_NAMES):  # torchvision's reference scripts' names too
        assert not set(names) & fields and {re.split(r"[ ,]", v)[0] for v in names.values()} <= fields
    with pytest.raises(ConfigError, match=r"^option --epochs: unknown key 'epochs' \(timm's name: here it is "
                                          r"epoch_size\)$"):
        load_config(["--epochs", "5"])
    with pytest.raises(ConfigError, match=r"^option --model-ema: unknown key 'model_ema' \(timm's name: here it is "
                                          r"ema_decay\)$"):
        load_config(["--model-ema", "--batch_size", "8"])
    with pytest.raises(ConfigError, match=r"unknown key 'checkpoint_hist' \(timm's name: here it is keep_best_max "):
        load_config(["--checkpoint-hist", "10"])  # the best ones, as timm keeps (it said keep_checkpoint_max)
    with pytest.raises(ConfigError, match=r"^option --label[-_]smoothing: unknown key 'label_smoothing' \(torchvision's "
                                          r"reference scripts' name: here it is label_smooth_factor, .*1 - e on the "
                                          r"true class and e / \(class_num - 1\) on each other"):
        load_config(["--label-smoothing", "0.1"])
    # The crop options' timm names, which the README pairs with them: the key, not its second value, is what is wrong.
    with pytest.raises(ConfigError, match=r"^option --scale: unknown key 'scale' \(timm's name: here it is "
                                          r"crop_scale_min \(timm's --scale S 1 is --crop_scale_min S"):
        load_config(["--scale", "0.35", "1"])
    with pytest.raises(ConfigError, match=r"^option --ratio: unknown key 'ratio' \(timm's name: here it is "
                                          r"crop_ratio_min and crop_ratio_max \(timm's --ratio R1 R2 is "
                                          r"--crop_ratio_min R1 --crop_ratio_max R2\)\)$"):
        load_config(["--ratio", "0.5", "2"])
    with pytest.raises(ConfigError, match=r"^option --foo: unknown key 'foo'$"):
        load_config(["--foo"])
    # timm's --input-size takes three values: the key is what is wrong, not the second of them.
    with pytest.raises(ConfigError, match=r"^option --input-size: unknown key 'input_size' \(timm's name: here it is "
                                          r"image_size\)$"):
        load_config(["--batch_size", "8", "--input-size", "3", "224", "224"])
    with pytest.raises(ConfigError, match=r"^unexpected argument '224': options are --key=value or --key value$"):
        load_config(["--image_size", "3", "224"])
    # A configuration file, or a run folder, given as it is (another tool's positional config): --config_path named.
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match=r"^unexpected argument '[^']*run': options are --key=value or --key value$"):
        load_config([str(tmp_path / "run")])  # no config.yaml in it: no run folder
    (tmp_path / "run" / "config.yaml").write_text("lr_max: 0.1\n")
    (tmp_path / "mine.YML").write_text("lr_max: 0.1\n")
    with pytest.raises(ConfigError) as refused:
        load_config([str(tmp_path / "run")])
    run = tmp_path / "run"
    assert str(refused.value).endswith(f" (a run folder: --config_path {run / 'config.yaml'} reads its configuration, "
                                       f"eval --checkpoint_path {run} its newest checkpoint, train --config_path "
                                       f"{run / 'config.yaml'} --resume auto continues it)")
    with pytest.raises(ConfigError) as refused:
        load_config(["--lr_max", "0.2", str(tmp_path / "mine.YML")])
    assert str(refused.value).endswith(f" (a configuration file is read with --config_path {tmp_path / 'mine.YML'})")


def test_a_configuration_file_that_is_not_there_is_not_offered_to_config_path(tmp_path):
    """An argument that names a .yaml file no one wrote (a typo) gets no advice to read it with --config_path."""
    with pytest.raises(ConfigError, match=r"^unexpected argument '[^']*none\.yaml': options are --key=value or "
                                          r"--key value$"):
        load_config([str(tmp_path / "none.yaml")])


def test_a_value_holding_an_equals_sign_is_kept_whole_and_bools_take_every_spelling():
    """--dataset_path=/data/lr=0.1 (a folder named by a sweep's setting) is that path, not its last part; a key of
    True or False reads true/yes/on/1 and false/no/off/0 in any case."""
    assert load_config(["--dataset_path=/data/lr=0.1"]).dataset_path == "/data/lr=0.1"
    assert load_config(["--dataset_path", "/data/a=b"]).dataset_path == "/data/a=b"
    for spelling, value in (("True", True), ("yes", True), ("ON", True), ("1", True), ("false", False),
                            ("No", False), ("off", False), ("0", False)):
        assert load_config([f"--nesterov={spelling}"]).nesterov is value, spelling


def test_an_empty_key_in_a_config_file_says_so(tmp_path):
    """`dataset:` with nothing after it (YAML's null) was refused as "dataset=''"; a key of a string that may be
    empty (pre_trained: no file) takes it as empty."""
    f = tmp_path / "c.yaml"
    f.write_text("dataset:\nbatch_size: 8\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: dataset is empty \(a YAML null: `dataset:` with "
                                          r"nothing after it\); leave the key out for its default, or give one of "
                                          r"\['cifar10', 'cifar100', 'imagenet2012'\]$"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size:\n")
    with pytest.raises(ConfigError, match=r"batch_size is empty .* or give a value \(int\)$"):
        load_config(["--config_path", str(f)])
    f.write_text("pre_trained:\nauto_augment:\n")
    cfg = load_config(["--config_path", str(f)])
    assert cfg.pre_trained == "" and cfg.auto_augment == ""


def test_a_key_given_twice_or_values_after_a_document_break_are_refused(tmp_path):
    """`batch_size: 16` then `batch_size: 32` trained with 32, and values in a second YAML document (read as the
    seed's help texts) were left unused, both without a word."""
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 16\nlr_max: 0.1\nbatch_size: 32\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: batch_size is set twice, on lines 1 and 3: keep "
                                          r"one$"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16\n---\nlr_max: 0.1\n")
    with pytest.raises(ConfigError, match=r"its second YAML document \(after `---`\) is read as the seed's help "
                                          r"texts .* it gives lr_max a value: put every value in the first"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16\n---\nsave_checkpoint_path: 007\n")  # a value there, whatever its key takes
    with pytest.raises(ConfigError, match=r"it gives save_checkpoint_path a value"):
        load_config(["--config_path", str(f)])
    # The seed's allowed values with its help texts deleted (`---` too): they are no values to move to the first
    f.write_text("batch_size: 16\n---\ndevice_target: [GPU, CPU]\n")
    with pytest.raises(ConfigError, match=r"its second YAML document \(after `---`\) gives device_target lists, as "
                                          r"the seed's allowed values do, .*: put an empty document \(a `---` line\) "
                                          r"before the allowed values$"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16\n---\n1: [a, b]\n")  # a key that is no text: said, not a traceback
    with pytest.raises(ConfigError, match=r"its second YAML document \(after `---`\) gives 1 lists"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16\n---\n---\ndevice_target: [GPU, CPU]\n")  # as it says
    assert load_config(["--config_path", str(f)]).batch_size == 16
    f.write_text("batch_size: 16\n---\nbatch_size: the number of images a step\n")  # the seed's form
    assert load_config(["--config_path", str(f)]).batch_size == 16
    # YAML's merge key is no key given twice: what it merges, the mapping's own keys override.
    f.write_text("shared: &s {batch_size: 8, lr_max: 0.1}\nrun: {<<: *s, lr_max: 0.2}\n")
    assert yaml.safe_load(f.read_text())["run"] == {"batch_size": 8, "lr_max": 0.2}
    from mobilenet_v1.config import read_yaml
    assert read_yaml(str(f))[0]["run"] == {"batch_size": 8, "lr_max": 0.2}
    # Keys a merge brings in are read as written as the mapping's own are: `resume: no` was the checkpoint False.
    f.write_text("base: &b {resume: no}\nmore: &m {<<: *b, save_checkpoint_path: 007}\n<<: [*m]\nbatch_size: 8\n")
    values = read_yaml(str(f))[0]
    assert (values["resume"], values["save_checkpoint_path"], values["batch_size"]) == ("no", "007", 8)


def test_the_seeds_documents_keep_their_places_and_values_past_the_first_are_refused(tmp_path):
    """A seed file whose help texts were deleted, its `---` lines kept, had its allowed values read as help texts
    and was refused for giving them values; a value in the third document (read as the allowed values) or in a
    fourth, as `--- batch_size: 64` added at a seed file's end, was left unused without a word."""
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 16\n---\n# help texts deleted\n---\ndevice_target: ['GPU', 'CPU']\n")
    assert load_config(["--config_path", str(f)]).batch_size == 16
    # its allowed values still apply (they were read as help texts)
    with pytest.raises(ConfigError, match=r"^option --device_target: device_target='Ascend' is not one of \['GPU', "
                                          r"'CPU', 'auto'\] \(the allowed values of config file .*c\.yaml\)$"):
        load_config(["--config_path", str(f), "--device_target", "Ascend"])
    f.write_text("batch_size: 16\n---\nbatch_size: images a step\n---\ndevice_target: [GPU]\n---\nbatch_size: 64\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: a YAML document after the seed's three \(values, "
                                          r"help texts, allowed values\) gives batch_size, which nothing reads: put "
                                          r"every value in the first document$"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16\n---\n{}\n---\nlr_max: 0.5\n")
    with pytest.raises(ConfigError, match=r"its third YAML document \(after the second `---`\) is read as the seed's "
                                          r"allowed values \(a list a key\), and it gives lr_max a value"):
        load_config(["--config_path", str(f)])


def test_text_keys_take_yaml_scalars_as_written_and_an_empty_config_path_is_refused(tmp_path):
    """YAML 1.1 reads `007` as 7, `0123` as octal 83, `1.10` as 1.1 and `no` as False: a run folder, file or
    checkpoint named so was another (`resume: no` looked for the checkpoint "False"), and a list became the
    text "['a', 'b']". An empty --config_path (`--config_path=$CONFIG`, CONFIG unset) trained on the defaults."""
    f = tmp_path / "c.yaml"
    f.write_text("save_checkpoint_path: 007\nfile_name: 0123\ndataset_path: 1.10\nresume: no\nauto_augment:\n"
                 "mean: 0.5\nbatch_size: 0x10\nsave_checkpoint: no\nlr_max: 1e-3\n")
    cfg = load_config(["--config_path", str(f)])
    assert (cfg.save_checkpoint_path, cfg.file_name, cfg.dataset_path, cfg.resume) == ("007", "0123", "1.10", "no")
    assert (cfg.auto_augment, cfg.mean, cfg.batch_size, cfg.save_checkpoint, cfg.lr_max) == \
        ("", "0.5,0.5,0.5", 16, False, 0.001)
    f.write_text("auto_augment: off\n")
    with pytest.raises(ConfigError, match=r"auto_augment='off' is not one of"):
        load_config(["--config_path", str(f)])
    f.write_text("dataset_path: [a, b]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: dataset_path must be str, got \['a', 'b'\]$"):
        load_config(["--config_path", str(f)])
    for empty in (["--config_path="], ["--config_path", ""], [f"--config_path={f}", "--config_path= "]):
        with pytest.raises(ConfigError, match=r"^option --config_path is empty: give a YAML file$"):
            load_config(empty)


def test_a_number_in_a_config_file_reads_as_the_same_digits_on_the_command_line(tmp_path):
    """YAML 1.1 read `epoch_size: 010` as octal 8, `seed: 0123` as 83 and `1:30` as 90 (base 60), where the
    command line reads 10 and 123 and refuses 1:30: one file, two runs (helper-324). Hexadecimal says what it is,
    and is kept."""
    f = tmp_path / "c.yaml"
    f.write_text("epoch_size: 010\nseed: 0123\nlr_max: 010\nbatch_size: 0x10\neval_interval: 0\n")
    cfg = load_config(["--config_path", str(f)])
    assert (cfg.epoch_size, cfg.seed, cfg.lr_max, cfg.batch_size, cfg.eval_interval) == (10, 123, 10.0, 16, 0)
    assert load_config(["--epoch_size", "010", "--seed", "0123"]).epoch_size == 10
    for key in ("epoch_size", "lr_max"):
        f.write_text(f"{key}: 1:30\n")
        with pytest.raises(ConfigError, match=rf"c\.yaml: {key} must be (int|float), got '1:30'$"):
            load_config(["--config_path", str(f)])


def test_a_whole_number_is_read_exactly():
    """--seed 99999999999999999999 was read through a float and refused as "got 100000000000000000000"."""
    with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\*\*32 - 1\], got 99999999999999999999$"):
        load_config(["--seed", "99999999999999999999"])
    assert load_config(["--seed", "4294967295", "--batch_size", " 16 "]).seed == 2 ** 32 - 1
    assert load_config(["--batch_size", "1e3"]).batch_size == 1000
    # Digit groups, as the seed's argparse int() and YAML 1.1 read them, exactly too (they went through a float).
    with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\*\*32 - 1\], got 1000000000000000000001$"):
        load_config(["--seed", "1_000_000_000_000_000_000_001"])
    assert load_config(["--seed", "4_294_967_295"]).seed == 2 ** 32 - 1


def test_num_workers_below_minus_one_is_refused_by_every_command(tmp_path, capsys):
    """-1 means the default; -2 and -3 were taken for it too (a typo trained, evaluated or measured as -1)."""
    assert load_config(["--num_workers=-1"]).num_workers == -1
    for bad in ("-2", "-3"):
        with pytest.raises(ConfigError, match=rf"^option --num_workers: num_workers must be >= 0, or -1 for the "
                                              rf"default \(min\(8, CPU count\)\), got {bad}$"):
            load_config([f"--num_workers={bad}"])
    (tmp_path / "model.onnx").write_bytes(b"")
    for argv in (["recalibrate-bn", str(tmp_path / "no.ckpt"), "--dataset_path", str(tmp_path), "--out",
                  str(tmp_path / "out.pt"), "--num_workers", "-2"],
                 ["quantize", "--onnx", str(tmp_path / "model.onnx"), "--calib_data", str(tmp_path), "--out",
                  str(tmp_path / "q.onnx"), "--num_workers", "-3"],
                 ["predict", "x.jpg", "--ckpt_file", "x.ckpt", "--num_workers", "-2"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2, argv
        assert ("error: argument --num_workers: num_workers must be >= 0, or -1 for the default (min(8, CPU count)), "
                f"got {argv[-1]}\n") in capsys.readouterr().err


def test_num_workers_for_cifar_is_said_to_start_no_loader_processes(tmp_path, capsys):
    """CIFAR is held whole in memory and cropped in batches: its loader starts no workers, and --num_workers 2
    was taken without a word (helper-386). An image folder's, the default and 0 say nothing."""
    config = tmp_path / "c.yaml"
    config.write_text("num_workers: 4\n")
    for argv, origin, count, name in ((["--num_workers=2"], "option --num_workers", 2, "CIFAR-10"),
                                      ([f"--config_path={config}", "--dataset=cifar100"], f"config file {config}", 4,
                                       "CIFAR-100")):
        assert load_config(argv).num_workers == count
        said = capsys.readouterr().err
        assert said == (f"note: {origin}: num_workers {count} starts no loader processes for {name}, held whole in "
                        f"memory and cropped in batches; it is image folders' key\n"), said
    for argv in (["--num_workers=2", "--dataset=imagenet2012"], ["--num_workers=0"], []):
        load_config(argv)
        assert capsys.readouterr().err == "", argv


def test_bad_values_name_the_option():
    with pytest.raises(ConfigError, match="batch_size must be int"):
        load_config(["--batch_size=3.5"])
    # timm's --val-split validation (a split's name) is pointed to what this key is (helper-238).
    with pytest.raises(ConfigError, match=r"val_split must be float, got 'validation'; a share of each class held "
                                          r"out to evaluate on \(0\.1\), not a split's name"):
        load_config(["--val_split=validation"])
    # From Python, a number among the options or one string for all of them (helper-248: AttributeError, or an
    # error about '-' read a character at a time).
    with pytest.raises(TypeError, match=r"the options are strings, as on the command line .*got 0\.25 \(float\)"):
        load_config(["--width_mult", 0.25])
    with pytest.raises(TypeError, match=r"the options are a list of strings.*got a str: '--epoch_size 3'"):
        load_config("--epoch_size 3")
    with pytest.raises(ConfigError, match="lr_decay_mode"):
        load_config(["--lr_decay_mode=exp"])
    with pytest.raises(ConfigError, match="save_checkpoint"):
        load_config(["--save_checkpoint=maybe"])
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--epoch_size"])
    # A negative rate climbs the loss; one class is no classification (the loss needs two).
    for key in ("lr_init", "lr_max", "lr_end"):
        with pytest.raises(ConfigError, match=f"option --{key}: {key} must be >= 0, got -0.1"):
            load_config([f"--{key}=-0.1"])
    with pytest.raises(ConfigError, match=r"option --class_num: class_num must be at least 2 \(a classifier"):
        load_config(["--class_num=1"])


def test_a_config_file_that_is_not_text_is_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"config file .*c\.yaml: not UTF-8 text \(byte 0"):
        load_config(["--config_path", str(f)])


def test_a_config_value_of_billions_of_aliased_items_is_refused_at_once(tmp_path, capsys):
    """YAML aliases of aliases (a billion laughs): a few hundred bytes load cheaply as shared lists, but the error
    message that named the value expanded them: 351 MB printed and 1.6 GB from 369 bytes, a MemoryError after 36 s
    from 455 (helper-357). A value of over 10,000 items, aliases counted, is refused naming the key; a seed
    config's keys and a short list are not."""
    import time

    levels = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    # 9**6 items: a bomb all the same, whose expansion stays small enough should the check be lost (seconds)
    levels += [f"&a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 6)]
    bomb = tmp_path / "mean.yaml"
    bomb.write_text(f"mean: [{', '.join(levels)}]\n", encoding="utf-8")
    assert bomb.stat().st_size < 600
    began = time.monotonic()
    assert cli.main(["train", "--config_path", str(bomb)]) == 1
    err = capsys.readouterr().err
    assert time.monotonic() - began < 10 and len(err) < 2000
    assert f"config file {bomb}: mean holds over 10,000 items (YAML aliases" in err
    near = tmp_path / "near.yaml"  # 9,999 items counted (the list and its 9,998 entries): not refused for its size
    near.write_text("crop_pct: [" + ", ".join(["0.5"] * 9998) + "]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(["--config_path", str(near)])
    assert "holds over" not in str(e.value)


def test_exponential_decay_keys():
    """lr_decay_rate / lr_decay_epochs: checked, and refused where the schedule would ignore them."""
    cfg = load_config(["--lr_decay_mode=exponential", "--lr_decay_rate=0.973", "--lr_decay_epochs=2.4"])
    assert (cfg.lr_decay_rate, cfg.lr_decay_epochs) == (0.973, 2.4)
    for bad, match in (("--lr_decay_rate=0", r"option --lr_decay_rate: lr_decay_rate must be in \(0, 1\]"),
                       ("--lr_decay_rate=1.5", "lr_decay_rate must be in"),
                       ("--lr_decay_epochs=0", "option --lr_decay_epochs: lr_decay_epochs must be positive")):
        with pytest.raises(ConfigError, match=match):
            load_config(["--lr_decay_mode=exponential", bad])
    with pytest.raises(ConfigError, match="lr_decay_rate 0.9 is lr_decay_mode exponential's; lr_decay_mode poly"):
        load_config(["--lr_decay_rate=0.9"])
    with pytest.raises(ConfigError, match="lr_decay_epochs 3 is .* lr_decay_mode linear does not use it"):
        load_config(["--dataset=imagenet2012", "--lr_decay_epochs=3"])


def test_keys_nothing_reads_and_values_from_the_file_are_named(tmp_path):
    """label_smooth_factor without smoothing and loss_scale without fp16 would be ignored: refused, as
    every key the configuration leaves unused; a data set or empty run folder named in the file is
    blamed on the file, not on an option no one gave."""
    with pytest.raises(ConfigError, match=r"option --label_smooth_factor: .* use_label_smooth is False"):
        load_config(["--label_smooth_factor=0.3"])
    assert load_config(["--label_smooth_factor=0.3", "--use_label_smooth=True"]).label_smooth_factor == 0.3
    with pytest.raises(ConfigError, match=r"option --loss_scale: .* precision bf16 scales no loss"):
        load_config(["--loss_scale=128", "--precision=bf16"])
    assert load_config(["--loss_scale=128", "--precision=fp16"]).loss_scale == 128
    f = tmp_path / "c.yaml"
    f.write_text("dataset: imagenet\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: dataset='imagenet' is not one of"):
        load_config(["--config_path", str(f)])
    with pytest.raises(ConfigError, match=r"^option --dataset: dataset='x' is not one of"):
        load_config(["--config_path", str(f), "--dataset=x"])
    f.write_text("save_checkpoint_path: null\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: save_checkpoint_path is empty"):
        load_config(["--config_path", str(f)])


def test_train_and_eval_check_a_config_built_in_python_and_training_refuses_a_batch_of_one(cifar_dir, tmp_path):
    """train.run and evaluate.run take the Config a Python caller built or changed: its values got none of
    load_config's checks (a batch_size 0 was a ZeroDivisionError, an lr_max "0.1" a TypeError, a keep_best_max
    without evaluations ran; helper-120). A training batch of one image made every step a skipped stand-in:
    a run trained nothing and ended 0 (eval takes batches of one). keep_best_max with save_checkpoint False
    would keep nothing."""
    from mobilenet_v1 import evaluate, train

    base = load_config([f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--device_target=CPU", "--num_workers=0",
                        f"--save_checkpoint_path={tmp_path / 'run'}", "--epoch_size=1"])
    for change, message in (({"batch_size": 0}, "Config.batch_size: batch_size must be at least 1, got 0"),
                            ({"lr_max": "0.1"}, "Config.lr_max: lr_max must be a float, got '0.1' (str)"),
                            ({"image_size": 32.0}, "Config.image_size: image_size must be an int, got 32.0"),
                            ({"qat": 1}, "Config.qat: qat must be a bool, got 1 (int)"),
                            # the command line's --mean 2,2,2 and --std 0 are refused; from Python they reached the
                            # loader, refused there under the bare name (a std of 0 divides by zero)
                            ({"mean": "2,2,2"}, "Config.mean: mean 2, 2, 2: each value must be in [0, 1]"),
                            ({"std": "0"}, "Config.std: std 0, 0, 0: each value must be in (0, 1]"),
                            ({"keep_best_max": 2}, "Config.keep_best_max: keep_best_max 2 is a setting of evaluation's"),
                            ({"batch_size": 1}, "batch_size 1: training takes at least 2 images a batch in each "
                                                "process")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            train.run(dataclasses.replace(base, **change))
    with pytest.raises(ConfigError, match=re.escape("Config.eval_batch_size: eval_batch_size must be >= 0")):
        evaluate.run(dataclasses.replace(base, eval_batch_size=-1, checkpoint_path=str(tmp_path / "none.ckpt")))
    with pytest.raises(ConfigError, match=re.escape("Config.mean: mean must be three numbers (R,G,B) or one")):
        evaluate.run(dataclasses.replace(base, mean="0.5,0.5", checkpoint_path=str(tmp_path / "none.ckpt")))
    assert not os.path.exists(tmp_path / "run")
    validate(dataclasses.replace(base, lr_max=1))  # an int where a float is: as the command line takes it
    with pytest.raises(ConfigError, match=r"^option --keep_best_max: keep_best_max 2 is a setting of the checkpoints "
                                          r"written; save_checkpoint is False, so none is written"):
        load_config(["--save_checkpoint=False", "--eval_interval=1", "--keep_best_max=2"])
    # Mid-epoch saves of a run that writes no checkpoint: a preemptible job's safety net that was not there.
    with pytest.raises(ConfigError, match=r"^option --save_checkpoint_steps: save_checkpoint_steps 100 is a setting of "
                                          r"the checkpoints written; save_checkpoint is False, so none is written"):
        load_config(["--save_checkpoint=False", "--save_checkpoint_steps=100"])


def test_a_python_callers_numpy_values_are_recorded_as_plain_ones(tmp_path):
    """validate takes NumPy's float64 for a float and its str_ for a str (subclasses), and train.run went on to
    stop with YAML's "cannot represent an object" traceback at its first line (the configuration it prints and
    writes to config.yaml); the checkpoint's record of them would not have read back with weights_only."""
    import io

    import numpy as np
    import torch

    from mobilenet_v1.config import dump_yaml, to_dict

    cfg = dataclasses.replace(load_config([]), lr_max=np.float64(0.05), dataset_path=np.str_("data/yes"))
    validate(cfg)
    recorded = to_dict(cfg)
    assert (type(recorded["lr_max"]), type(recorded["dataset_path"])) == (float, str)
    f = tmp_path / "config.yaml"
    f.write_text(dump_yaml(cfg))
    assert load_config(["--config_path", str(f)]) == cfg
    buffer = io.BytesIO()
    torch.save({"config": recorded}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["config"] == recorded


def test_out_of_range_values_name_where_they_came_from(tmp_path):
    """A value given on the command line is blamed on the option, one from the file on the file; floats
    must be finite (a NaN lr_max used to train 10 steps before stopping), loss_scale positive (a
    negative one wrote checkpoints that --resume then refused) and seed what numpy can take."""
    f = tmp_path / "c.yaml"
    f.write_text("batch_size: 0\nepoch_size: 3\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: batch_size must be at least 1, got 0$"):
        load_config(["--config_path", str(f)])
    with pytest.raises(ConfigError, match=r"^option --epoch_size: epoch_size must be at least 1, got 0$"):
        load_config(["--config_path", str(f), "--batch_size=4", "--epoch_size=0"])
    for option, message in [("--lr_max=nan", "lr_max must be a finite number, got nan"),
                            ("--width_mult=inf", "width_mult must be a finite number, got inf"),
                            ("--loss_scale=-5", "loss_scale must be positive, got -5.0"),
                            # GradScaler holds its scale in float32: 1e39 was inf there, every step overflowed
                            ("--loss_scale=1e39", r"loss_scale 1e\+39 is above float32's largest number"),
                            ("--eval_batch_size=-4", "eval_batch_size must be >= 0"),
                            ("--aug_repeats=0", "aug_repeats must be at least 1, got 0"),
                            ("--pretrain_epoch_size=-1", "pretrain_epoch_size must be in"),
                            # nothing left to train: the schedule would start past its end
                            ("--pretrain_epoch_size=90", r"pretrain_epoch_size must be in \[0, epoch_size\), got 90 "
                                                         r"with epoch_size 90"),
                            # no share of the loss for the teacher: a distillation that distils nothing
                            ("--distill_alpha=0", r"distill_alpha must be in \(0, 1\]"),
                            # numpy's seeding refused it with a traceback once the data was loaded
                            ("--seed=-3", r"seed must be in \[0, 2\*\*32 - 1\], got -3"),
                            ("--seed=4294967296", "seed must be in"),
                            ("--val_split=1", r"val_split must be in \[0, 1\) \(0: none\), got 1.0"),
                            ("--crop_scale_min=0", r"crop_scale_min must be in \(0, 1\] \(the smallest"),
                            ("--crop_scale_min=1.5", "crop_scale_min must be in"),
                            # CIFAR-10's training crop is the seed's padded 32x32 crop: it would be ignored
                            ("--crop_scale_min=0.3", "crop_scale_min 0.3 is for image folders' training crops; "
                                                     "CIFAR-10's is the seed's"),
                            # whole numbers past any use (1e30 is one): torch asked for that many loader processes
                            # (a hang), islice's limit was said without the key
                            ("--num_workers=1e30", r"num_workers 100000... \(31 digits\) is above 1,024 "),
                            ("--batch_size=2000000", "batch_size 2000000 is above 1,048,576 images a batch"),
                            ("--eval_batch_size=1e30", r"eval_batch_size 100000... \(31 digits\) is above"),
                            ("--max_bad_samples=3e9", r"max_bad_samples 3000000000 is above 2,147,483,647 \(2\*\*31"),
                            ("--epoch_size=1e12", "epoch_size 1000000000000 is above 2,147,483,647"),
                            # CIFAR-10 decodes nothing: its own path (on the GPU with CUDA) whatever was asked
                            ("--data_pipeline=gpu", "data_pipeline gpu is for image folders' decoding; CIFAR-10's"),
                            # CIFAR-10 has its test batch: a share of it would be held out of nothing
                            ("--val_split=0.1", "val_split 0.1 holds out images of an image folder")]:
        with pytest.raises(ConfigError, match=f"^option {option.split('=')[0]}: {message}"):
            load_config([option])


@pytest.mark.parametrize("args, message", [
    # int64 overflows in torch (a traceback), or an out-of-memory error naming batch_size and image_size
    (["--class_num=99999999999999999999"], r"class_num 99999999999999999999 is above 10,000,000: no labelled"),
    (["--image_size=65537"], r"image_size 65537 is above 65536 pixels a side"),
    (["--eval_image_size=3037000500"], r"eval_image_size 3037000500 is above 65536 pixels a side"),
    (["--width_mult=1e300"], r"width_mult must be in \(0, 1e\+06\] \(the paper's alpha: 0.25 to 1\), got 1e\+300"),
    # SGD's, RMSprop's and LARS's momentum: the updates grew without end, or trained on as the seed's would not
    (["--momentum=1.5"], r"momentum must be below 1 \(the share of the last update each step keeps; .*got 1.5"),
    (["--momentum=1"], r"momentum must be below 1 .*got 1$"),
    (["--opt=rmsprop", "--momentum=1"], r"momentum must be below 1"),
    # past float32, which the optimisers hold them in: a traceback in the first step, or no update at all
    (["--weight_decay=1e39"], r"weight_decay 1e\+39 is above float32's largest number, 3.40282e\+38"),
    (["--opt=adamw", "--opt_eps=1e300"], r"opt_eps 1e\+300 is above float32's largest number"),
    (["--lr_max=1e39"], r"lr_max 1e\+39 is above float32's largest number"),
])
def test_values_past_any_use_are_refused_naming_the_key(args, message, tmp_path):
    """Each was taken, and failed deep in the run: a traceback (class_num, image_size and width_mult past int64
    in torch, weight_decay past float32 in the optimiser's step), an out-of-memory error that named batch_size
    and image_size, or training that went on with updates growing without end (momentum 1 or more)."""
    key = args[-1].split("=")[0]
    with pytest.raises(ConfigError, match=f"^option {key}: {message}"):
        load_config(args)
    f = tmp_path / "c.yaml"  # from a file alike, blamed on it
    f.write_text("".join(f"{a[2:].split('=')[0]}: {a.split('=')[1]}\n" for a in args))
    with pytest.raises(ConfigError, match=f"^config file .*c\\.yaml: {message}"):
        load_config(["--config_path", str(f)])


def test_sizes_and_rates_within_range_still_load():
    cfg = load_config(["--class_num=10000000", "--image_size=65536", "--width_mult=1e6", "--momentum=0.999",
                       "--weight_decay=3e38", "--color_jitter=10"])
    assert (cfg.class_num, cfg.image_size, cfg.width_mult, cfg.momentum) == (10 ** 7, 65536, 1e6, 0.999)
    # One aspect ratio for every training crop (square crops): the bounds may meet.
    cfg = load_config(["--dataset=imagenet2012", "--crop_ratio_min=1", "--crop_ratio_max=1"])
    assert (cfg.crop_ratio_min, cfg.crop_ratio_max) == (1.0, 1.0)


def test_a_yaml_int_is_read_exactly_as_the_command_line_reads_it(tmp_path):
    """A YAML int went through a float: 2**53 + 1 became 2**53, and 99999999999999999999 was told as 1e20. (Both
    are past any count of a run now, refused naming the number as it was written.)"""
    f = tmp_path / "c.yaml"
    for key, value in (("save_checkpoint_steps", "9007199254740993"), ("epoch_size", "99999999999999999999")):
        f.write_text(f"{key}: {value}\n")
        for args in (["--config_path", str(f)], [f"--{key}={value}"]):
            with pytest.raises(ConfigError, match=f"{key} {value} is above 2,147,483,647"):
                load_config(args)
    f.write_text("save_checkpoint_steps: 2147483647\n")  # the largest taken, exactly
    assert load_config(["--config_path", str(f)]).save_checkpoint_steps == 2 ** 31 - 1


def test_a_yaml_int_beyond_any_float_for_a_float_key_is_refused_naming_it(tmp_path):
    """float() of a YAML int of over 308 digits raised OverflowError, a traceback."""
    f = tmp_path / "c.yaml"
    f.write_text("lr_max: 1" + "0" * 400 + "\n")
    with pytest.raises(ConfigError, match=rf"^config file {re.escape(str(f))}: lr_max 100000000000\.\.\. \(401 "
                                          r"digits\) is beyond any float$"):
        load_config(["--config_path", str(f)])


def test_seed_three_document_file_validates_choices(tmp_path):
    f = tmp_path / "seed.yaml"
    f.write_text("dataset: cifar10\nlr_decay_mode: poly\n---\nlr_decay_mode: 'schedule'\n---\n"
                 "lr_decay_mode: ['poly', 'steps']\n")
    assert load_config(["--config_path", str(f)]).lr_decay_mode == "poly"
    with pytest.raises(ConfigError, match="cosine"):
        load_config(["--config_path", str(f), "--lr_decay_mode", "cosine"])


def test_a_config_file_shared_with_export_may_name_any_format_export_writes(tmp_path):
    """train and eval read a file that also holds export's keys: its file_format may be any that export takes
    (TFLITE was refused by train and eval while export wrote it); an unknown one is still refused."""
    from mobilenet_v1.export import FORMATS, MINDSPORE_FORMATS

    f = tmp_path / "shared.yaml"
    for fmt in FORMATS + MINDSPORE_FORMATS:
        f.write_text(f"dataset: cifar10\nfile_format: {fmt}\n")
        assert load_config(["--config_path", str(f)]).file_format == fmt
    f.write_text("file_format: TFLITE2\n")
    with pytest.raises(ConfigError, match=r"file_format='TFLITE2' is not one of .*'TFLITE'"):
        load_config(["--config_path", str(f)])


def test_every_key_has_a_help_line_and_help_lists_them(capsys, monkeypatch):
    from mobilenet_v1 import cli
    from mobilenet_v1.config import KEY_HELP

    assert list(KEY_HELP) == [f.name for f in dataclasses.fields(Config)]
    monkeypatch.setenv("COLUMNS", "1000")  # a line a key
    assert cli.main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--per_class" in out and "--confusion_csv F" in out
    assert "  --crop_pct (0.875)  image folders' evaluation: centre crop's share of the resized shorter side" in out
    # train -h as --help; a key of a few values names them (padding: the seed's SAME or PyTorch's symmetric).
    assert cli.main(["train", "-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mobilenet-v1 train ") and "  --padding ('same')  " in out
    assert next(line for line in out.splitlines() if line.startswith("  --padding ")).endswith(
        "; one of ['same', 'symmetric']")
    # The defaults shown are CIFAR-10's: --dataset's own were not said; Ascend was listed as a choice, refused.
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  --")}
    assert lines["--class_num"].endswith("; default with --dataset cifar100: 100, imagenet2012: 1001")
    assert lines["--lr_decay_mode"].endswith("; default with --dataset imagenet2012: 'linear'")
    assert "default with" not in lines["--label_smooth_factor"]  # ImageNet's is CIFAR-10's
    assert lines["--device_target"].endswith("; one of ['auto', 'CPU', 'GPU']")
    # Wrapped at the terminal's width (COLUMNS) as argparse wraps the other commands' help, the words unchanged.
    monkeypatch.setenv("COLUMNS", "60")
    for command in ("train", "eval"):
        assert cli.main([command, "--help"]) == 0
        narrow = capsys.readouterr().out
        monkeypatch.setenv("COLUMNS", "1000")
        assert cli.main([command, "--help"]) == 0
        wide = capsys.readouterr().out
        monkeypatch.setenv("COLUMNS", "60")
        assert narrow.split() == wide.split() and len(narrow.splitlines()) > 2 * len(wide.splitlines())
        assert all(len(line) <= 58 or " " not in line.strip() for line in narrow.splitlines()), narrow
        assert "[--config_path F]" in narrow  # an option and its value on one line, as argparse keeps them
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.main(["eval", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--checkpoint_path CKPT|RUN_DIR|" in out  # outside brackets too, where they fit
    # eval takes these from the model file where they are not given: training's default shown was not eval's.
    said = " ".join(out.split())
    assert "--image_size (224) input resolution; eval: default the size the file records" in said
    assert "--class_num (10)" in said and "eval: the model file's (a value given is checked against it)" in said
    assert cli.main(["train", "--help"]) == 0
    assert "eval: default the size the file records" not in capsys.readouterr().out
    # Every command's help, and the list of commands, within 100 columns (lr-schedule's was one 558-column line).
    for argv in ([], *([c] for c in cli.COMMANDS)):
        with contextlib.suppress(SystemExit):
            assert cli.main([*argv, "--help"]) == 0
        out = capsys.readouterr().out
        assert out and max(map(len, out.splitlines())) <= 100, (argv, max(out.splitlines(), key=len))


def test_train_run_leaves_cudnn_autotuning_as_it_found_it(monkeypatch):
    """train.run turns cuDNN's autotuning on for a GPU run (fixed shapes); it stayed on after the run, for the
    rest of a notebook's session (other shapes, another model). Restored however the run ends."""
    import torch

    from mobilenet_v1 import train

    def gpu_run(*args, **kwargs):
        torch.backends.cudnn.benchmark = True  # as _run does on a GPU
        raise RuntimeError("ended")

    monkeypatch.setattr(train, "_run", gpu_run)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with pytest.raises(RuntimeError, match="^ended$"):
        train.run(load_config(["--save_checkpoint=False", "--device_target=CPU"]))
    assert torch.backends.cudnn.benchmark is False


def test_a_tab_in_a_config_file_is_named_as_one(tmp_path):
    """PyYAML refuses a tab after a key's colon or in an indent with "found character '\\t' that cannot start any
    token", which a reader who cannot see the tab does not take for one; the error says so, and where."""
    f = tmp_path / "c.yaml"
    f.write_text("batch_size:\t16\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.yaml: not valid YAML \(a tab: YAML takes spaces, in "
                                          r"indents and after the colon\): (.|\n)*line 1, column 12"):
        load_config(["--config_path", str(f)])
    f.write_text("batch_size: 16 # a comment\n")  # no tab: no word of one
    assert load_config(["--config_path", str(f)]).batch_size == 16


def test_a_misspelt_key_is_answered_with_the_closest_and_a_typed_seed_path_key_is_refused(tmp_path):
    """--batchsize and a file's lr_mx named the key meant; --data-path (torchvision's, and a ModelArts key of the
    seed's) was taken as a seed key with no meaning here: a note, and the run read the configuration's data."""
    with pytest.raises(ConfigError, match=r"unknown key 'batchsize' \(did you mean batch_size\?\)$"):
        load_config(["--batchsize", "8"])
    f = tmp_path / "c.yaml"
    f.write_text("lr_mx: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'lr_mx' \(did you mean lr_max\?\)$"):
        load_config(["--config_path", str(f)])
    f.write_text("dataset_path: /somewhere\n")
    for option, meant in (("--data-path", "--dataset_path"), ("--output_path", "--save_checkpoint_path"),
                          ("--checkpoint_file_path", "--checkpoint_path")):
        with pytest.raises(ConfigError, match=rf"^option --{option[2:].replace('-', '_')}: .*{meant}"):
            load_config(["--config_path", str(f), option, "/elsewhere"])
    f.write_text("data_path: /cache/data\noutput_path: /cache/train\n")  # a seed file's: still taken, unused
    assert load_config(["--config_path", str(f)]).dataset_path == ""


def test_tf_slims_names_point_to_the_keys_that_do_the_same(tmp_path):
    """The README gives --ema_decay as TF-slim's --moving_average_decay and exponential as its staircase decay
    (--num_epochs_per_decay, --learning_rate_decay_factor): those flags, and the rest of the recipe's, were refused
    as unknown without a word of the key here, where timm's and torchvision's point to theirs."""
    fields = {f.name for f in dataclasses.fields(Config)}
    assert not set(TF_SLIM_NAMES) & fields and {re.split(r"[ ,]", v)[0] for v in TF_SLIM_NAMES.values()} <= fields
    assert not set(TF_SLIM_NAMES) & (set(TIMM_NAMES) | set(TORCHVISION_NAMES))  # each said once, as one tool's
    with pytest.raises(ConfigError, match=r"^option --moving_average_decay: unknown key 'moving_average_decay' "
                                          r"\(TF-slim's name: here it is ema_decay \(warmed up as TensorFlow's "
                                          r"ExponentialMovingAverage with num_updates\)\)$"):
        load_config(["--moving_average_decay", "0.9999"])
    f = tmp_path / "slim.yaml"
    f.write_text("num_epochs_per_decay: 2.5\n")
    with pytest.raises(ConfigError, match=r"slim\.yaml: unknown key 'num_epochs_per_decay' \(TF-slim's name: here it "
                                          r"is lr_decay_epochs, with lr_decay_mode exponential\)$"):
        load_config(["--config_path", str(f)])
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rate_decay_factor' \(TF-slim's name: here it is "
                                          r"lr_decay_rate"):
        load_config(["--learning-rate-decay-factor", "0.94"])
    # Its size and length flags: a bare "unknown key" before.
    with pytest.raises(ConfigError, match=r"^option --train_image_size: unknown key 'train_image_size' \(TF-slim's "
                                          r"name: here it is image_size\)$"):
        load_config(["--train_image_size", "160"])
    with pytest.raises(ConfigError, match=r"^option --max_number_of_steps: unknown key 'max_number_of_steps' "
                                          r"\(TF-slim's name: here it is epoch_size, counted in epochs, not steps: "
                                          r"its steps divided by the steps per epoch"):
        load_config(["--max_number_of_steps", "100000"])


def test_no_key_of_another_meaning_is_offered_for_an_unknown_one():
    """difflib's closest key was another concept: --device (torchvision's and timm's cpu/cuda) got device_num,
    --dataset_dir the data set's name, --drop_path (timm's stochastic depth) dropout's drop_rate,
    --lr_decay_step the decay's rate, --checkpoint the save_checkpoint switch."""
    said = {}
    for key in ("device", "dataset_dir", "drop_path", "lr_decay_step", "checkpoint", "pretrain", "grad_accum"):
        with pytest.raises(ConfigError) as e:
            load_config([f"--{key}", "1"])
        said[key] = str(e.value)
    assert "here it is device_target" in said["device"] and "checkpoint_path" in said["checkpoint"]
    for key in ("dataset_dir", "drop_path", "lr_decay_step"):
        assert said[key].endswith(f"unknown key {key!r}"), said[key]
    assert said["pretrain"].endswith("(did you mean pre_trained?)")
    assert said["grad_accum"].endswith("(did you mean grad_accum_steps?)")


@pytest.mark.parametrize("key, reads_as", [("on", "bool"), ("yes", "bool"), ("true", "bool"), ("1", "int"),
                                           ("1.5", "float"), ("~", "null"), ("2026-01-01", "timestamp")])
def test_a_key_yaml_reads_as_no_name_is_refused_naming_its_line(tmp_path, key, reads_as):
    """`on: 1` (YAML 1.1's True), `1: 2` or `~: x` as a key stopped every command with a TypeError traceback."""
    f = tmp_path / "c.yaml"
    f.write_text(f"lr_max: 0.1\n{key}: 1\n")
    with pytest.raises(ConfigError, match=rf"^config file .*c\.yaml: line 2: key '{re.escape(key)}' is not a name "
                                          rf"\(YAML reads it as {reads_as}\)"):
        load_config(["--config_path", str(f)])
    f.write_text(f"lr_max: 0.1\n---\n---\n{key}: [a]\n")  # in the seed's allowed values too
    with pytest.raises(ConfigError, match=r"line 4: key .* is not a name"):
        load_config(["--config_path", str(f)])
    f.write_text(f"'{key}': 1\n")  # quoted: a name, unknown
    with pytest.raises(ConfigError, match=r"unknown key"):
        load_config(["--config_path", str(f)])


def test_config_file_mistakes_are_said_in_a_line(tmp_path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("config_path: other.yaml\n")  # said "unknown key 'config_path' (did you mean config_path?)"
    with pytest.raises(ConfigError, match=r"config_path names a config file on the command line; a file cannot "
                                          r"name another"):
        load_config(["--config_path", str(f)])
    f.write_text("LR_MAX: 0.2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'LR_MAX' \(did you mean lr_max\? keys are lower case\)$"):
        load_config(["--config_path", str(f)])
    with pytest.raises(ConfigError, match=r"unknown key 'Batch_Size' \(did you mean batch_size\?"):
        load_config(["--Batch_Size", "8"])
    f.write_text("lr_max: " + "[" * 3000 + "]" * 3000 + "\n")  # a RecursionError traceback
    with pytest.raises(ConfigError, match=r"c\.yaml: nested too deep"):
        load_config(["--config_path", str(f)])
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match=r"^config file .*run: a folder, not a YAML file$"):
        load_config(["--config_path", str(run)])
    (run / "config.yaml").write_text("lr_max: 0.2\n")
    with pytest.raises(ConfigError, match=r"a folder, not a YAML file: --config_path .*config\.yaml is its run's"):
        load_config(["--config_path", str(run)])
    monkeypatch.setenv("HOME", str(run))  # --config_path=~/config.yaml: no shell expands a ~ after `=`
    with pytest.raises(ConfigError, match=r"--config_path ~/config\.yaml: no such file \(it starts with ~, which "
                                          r"only a shell expands.*: give .*config\.yaml\)$"):
        load_config(["--config_path=~/config.yaml"])
    monkeypatch.chdir(tmp_path)  # `--config_path -` for standard input, as other tools take it: the path said
    with pytest.raises(ConfigError, match=r"^--config_path -: no such file \(standard input is read with "
                                          r"--config_path /dev/stdin\)$"):
        load_config(["--config_path", "-"])


def test_a_refused_run_leaves_no_empty_folder_above_its_own(cifar_dir, tmp_path, monkeypatch, one_thread):
    """save_checkpoint_path runs/new/a, with runs/ not there, refused after its folder was made (no full batch):
    runs/new/a went, runs/new and runs/ stayed, empty."""
    from mobilenet_v1 import train

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"no full batch"):
        train.run(load_config(["--dataset_path", str(cifar_dir), "--image_size", "32", "--width_mult", "0.25",
                               "--batch_size", "1000", "--save_checkpoint_path", "runs/new/a"]))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("key", ["pre_trained", "teacher"])
def test_a_missing_file_a_config_file_names_is_said_as_the_files(cifar_dir, tmp_path, key, one_thread):
    """`pre_trained: x.ckpt` in a config file was refused as "--pre_trained x.ckpt", an option nobody typed."""
    from mobilenet_v1 import train

    f = tmp_path / "c.yaml"
    f.write_text(f"{key}: {tmp_path / 'none.ckpt'}\n")
    argv = ["--config_path", str(f), "--dataset_path", str(cifar_dir), "--image_size", "32", "--width_mult", "0.25",
            "--save_checkpoint_path", str(tmp_path / "run")]
    from mobilenet_v1.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=rf"^{key} .*none\.ckpt \(from config file .*c\.yaml\): no such file or "
                                          rf"run folder; pass --{key}$"):
        train.run(*load_config_and_given(argv))
    (tmp_path / "empty").mkdir()  # a folder without checkpoints, named as the file's too
    f.write_text(f"{key}: {tmp_path / 'empty'}\n")
    with pytest.raises(CheckpointError, match=rf"^{key} .*empty \(from config file .*c\.yaml\): the folder holds no "):
        train.run(*load_config_and_given(argv))


def test_exports_sizes_from_a_config_file_are_said_as_the_files(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text(f"ckpt_file: {tmp_path / 'none.ckpt'}\nwidth: -5\n")
    assert cli.main(["export", "--config_path", str(f)]) != 0
    assert re.search(r"error: width -5 \(config file .*c\.yaml\): must be at least 1$", capsys.readouterr().err.strip())


def test_a_relative_dataset_path_of_a_config_file_says_where_it_was_looked_for(cifar_dir, tmp_path, monkeypatch,
                                                                              capsys):
    """Read from the folder the command runs in (the seed's way, configs/demo.yaml's data/digits), not the file's:
    a file's `../cifar` written from its own folder was said "does not exist", without where it was looked for."""
    (tmp_path / "configs").mkdir()
    f = tmp_path / "configs" / "c.yaml"
    f.write_text("dataset_path: ../cifar\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["data-stats", "--config_path", "configs/c.yaml"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"mobilenet-v1 data-stats: error: dataset_path '../cifar' (from config file configs/c.yaml) does not exist: "
        f"pass --dataset_path (a relative path is read from the folder the command runs in, {os.getcwd()}, not the "
        f"config file's; beside the file it is cifar)")


def test_eval_and_data_stats_take_a_file_shared_with_training_whose_training_keys_they_do_not_read(cifar_dir, tmp_path,
                                                                                                   one_thread):
    """`qat: True` (its --pre_trained typed to train) or `opt_eps` (its --opt adamw typed to train) in a file shared
    with training stopped eval and data-stats, which read neither, with train's advice; train still refuses them."""
    from mobilenet_v1 import datastats, evaluate

    for text, refusal in (("qat: true\n", r"qat fine-tunes a trained model"), ("opt_eps: 0.001\n", r"opt_eps 0\.001")):
        f = tmp_path / "c.yaml"
        f.write_text(f"dataset_path: {cifar_dir}\nimage_size: 32\n{text}")
        with pytest.raises(ConfigError, match=refusal):
            load_config(["--config_path", str(f)])
        load_config_and_given(["--config_path", str(f)], reads=evaluate.EVAL_READS)
        load_config_and_given(["--config_path", str(f)], reads=datastats.DATA_KEYS)
        validate(load_config_and_given(["--config_path", str(f)], reads=evaluate.EVAL_READS)[0], evaluate.EVAL_READS)
    # `qat: true` beside eval's own --precision bf16 or --compile True: the combination is training's to refuse.
    f.write_text(f"dataset_path: {cifar_dir}\nimage_size: 32\nqat: true\n")
    for option, refusal in (("--precision=bf16", r"precision bf16 with qat"),
                            ("--compile=True", r"compile True with qat")):
        with pytest.raises(ConfigError, match=refusal):
            load_config(["--config_path", str(f), "--pre_trained=x.ckpt", option])
        load_config_and_given(["--config_path", str(f), option], reads=evaluate.EVAL_READS)
    # A run that ramps its size from 48 to 64, its file given to eval at 32: image_size_start is training's.
    f.write_text(f"dataset_path: {cifar_dir}\nimage_size: 64\nimage_size_start: 48\n")
    with pytest.raises(ConfigError, match=r"image_size_start must be 0 \(off\) or from 16 up to below image_size 32"):
        load_config(["--config_path", str(f), "--image_size=32"])
    cfg, _ = load_config_and_given(["--config_path", str(f), "--image_size=32"], reads=evaluate.EVAL_READS)
    assert cfg.image_size == 32
    f.write_text(f"dataset_path: {cifar_dir}\nimage_size_start: 8\n")  # no run's at all: still refused
    with pytest.raises(ConfigError, match=r"image_size_start must be 0 \(off\) or from 16"):
        load_config_and_given(["--config_path", str(f)], reads=evaluate.EVAL_READS)
    f.write_text(f"dataset_path: {cifar_dir}\ncrop_pct: 0.9\n")  # a key eval reads: still refused with CIFAR
    with pytest.raises(ConfigError, match=r"crop_pct 0\.9 is for image folders' evaluation"):
        load_config_and_given(["--config_path", str(f)], reads=evaluate.EVAL_READS)


def test_timm_short_batch_size_option_names_the_key(capsys):
    """The README's timm table maps `-b 256` to `--batch_size 256`: given to train, it is refused naming
    --batch_size (it said only "options are --key=value or --key value"), as timm's long names are; -j too."""
    with pytest.raises(ConfigError, match=r"^unexpected argument '-b': options are --key=value or --key value "
                                          r"\(timm's and torchvision's -b: here it is --batch_size\)$"):
        load_config(["-b", "256"])
    with pytest.raises(ConfigError, match=r"\(timm's and torchvision's -j: here it is --num_workers\)$"):
        load_config(["--epoch_size", "2", "-j", "4"])
    assert cli.main(["train", "-b", "8"]) != 0
    assert "here it is --batch_size" in capsys.readouterr().err


def test_timm_rmsproptf_is_refused_pointing_at_rmsprop():
    """The README's timm table: `--opt rmsproptf` is none here, `--opt rmsprop` being PyTorch's RMSprop; the
    refusal says so (it listed the choices alone)."""
    with pytest.raises(ConfigError, match=r"opt='rmsproptf' is not one of .*; timm's rmsproptf \(TensorFlow's "
                                          r"RMSProp\) is not offered: opt rmsprop is PyTorch's RMSprop"):
        load_config(["--opt", "rmsproptf"])
    with pytest.raises(ConfigError, match="not offered: opt rmsprop"):
        load_config(["--opt", "RMSpropTF"])  # timm's class name, as a user may spell it
    assert load_config(["--opt", "rmsprop"]).opt == "rmsprop"


@pytest.mark.parametrize("flag,key", [("--bce-loss", "bce_loss"), ("--channels-last", "channels_last"),
                                      ("--warmup-prefix", "warmup_prefix")])
def test_timm_switch_without_a_value_says_true(flag, key):
    """timm's --bce-loss, --channels-last and --warmup-prefix are switches; the README's table gives them as
    `--bce_loss True` and so on here. Given bare, the refusal says that form (it said "needs a value" alone); a
    key that is no switch keeps the plain message."""
    with pytest.raises(ConfigError, match=rf"^option {flag} needs a value: --{key} True$"):
        load_config([flag, "--epoch_size", "2"])
    with pytest.raises(ConfigError, match=r"^option --epoch_size needs a value$"):
        parse_overrides(["--epoch_size"])
