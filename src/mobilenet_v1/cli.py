"""The ``mobilenet-v1`` command: one sub-command per task.

``train``, ``eval``, ``lr-schedule`` and ``data-stats`` (the keys it reads) take the seed's configuration keys
as ``--key=value`` or ``--key value`` (``--config_path F`` for a YAML file); the other sub-commands have their
own flags.
"""
import argparse
import contextlib
import errno
import io
import math
import os
import re
import shutil
import sys
import textwrap
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

USAGE = """usage: mobilenet-v1 COMMAND [options]

commands:
  train          train on CIFAR-10/100 binaries or an ImageNet-style folder ([--config_path F]
                 [--key=value ...])
  eval           top-1/top-5 of a checkpoint, .onnx, .pte, .pt2 or .tflite file
                 (--checkpoint_path CKPT --dataset_path PATH [--json] [--per_class]
                 [--confusion_csv F] [--per_image F] [--image_size 128,160,...: a row a size]
                 [--litert_kernels reference])
  info           parameters and multiply-adds ([--width_mult A] [--image_size R] [--class_num K]
                 [--padding P] [--json]); or what a model file holds: network, data, training,
                 weights, input (FILE [--json])
  data-stats     a data set's classes, images per class and pixel mean and std, as
                 --mean/--std take them (--dataset_path PATH [--dataset D] [--image_size N]
                 [--images N] [--json])
  lr-schedule    write the per-step learning rate of a configuration ([--config_path F]
                 [--key=value ...] [--steps_per_epoch N] [--out lr.csv])
  convert        rewrite a checkpoint: MindSpore .ckpt, our .pt, .safetensors (SRC DST
                 [--format F])
  average        the mean of several checkpoints' weights (RUN_DIR|CKPT... --out F
                 [--last N | --best N])
  recalibrate-bn measure a checkpoint's BatchNorm statistics anew, say at another image size (CKPT
                 --dataset_path PATH --out F [--image_size N])
  plot           loss, lr, top-1 and gradient-norm curves of run folders, overlaid (RUN_DIR
                 [RUN_DIR ...] [--out curves.png])
  export         checkpoint -> ONNX (checked in ONNX Runtime), ExecuTorch .pte, .pt2 program or
                 .tflite (--ckpt_file C [--file_name N] [--file_format ONNX|PTE|PT2|TFLITE])
  quantize       ONNX -> INT8 ONNX, .pt2 -> INT8 ExecuTorch .pte, or .tflite -> INT8 .tflite,
                 calibrated on training images (--onnx F | --program F.pt2 | --tflite F.tflite,
                 --calib_data PATH --out G)
  predict        top-k classes of image files or folders of them (IMAGE|FOLDER...
                 --ckpt_file C|F.onnx|F.pte|F.pt2|F.tflite [--top_k 5] [--json]
                 [--out F.csv|F.json])
  benchmark      how fast model files run here, timed in turns in one process (FILE...
                 [--batch_size N] [--threads T] [--memory] [--json]); or networks made here
                 (--width_mult 0.25,0.5 --image_size 128,160)

'mobilenet-v1 COMMAND --help' describes one command; 'mobilenet-v1 --version' says which
version runs."""


def spellings(name: str) -> Tuple[str, ...]:
    """``--per_image`` and ``--per-image``: a command's own options take dashes as the configuration's keys do
    (``--lr-max``); ``lr-schedule --steps-per-epoch`` was "unknown key 'steps_per_epoch'"."""
    dashed = "--" + name[2:].replace("_", "-") if name.startswith("--") else name
    return (name,) if dashed == name else (name, dashed)


def underscored_options(argv: List[str]) -> List[str]:
    """``--ckpt-file F`` as ``--ckpt_file F``: the argparse commands' options in the spelling train, eval,
    lr-schedule and data-stats take (:func:`spellings`), timm's; export said "unrecognized arguments:
    --file-format ONNX" and predict "the following arguments are required: --ckpt_file" of a --ckpt-file given.
    Values (after ``--`` or an option's ``=``) are kept as they are."""
    out = []
    for i, a in enumerate(argv):
        if a == "--":
            return out + argv[i:]
        head, eq, value = a.partition("=")
        if head.startswith("--") and len(head) > 2 and "-" in head[2:] and head[2:3].isalpha():
            a = "--" + head[2:].replace("-", "_") + eq + value
        out.append(a)
    return out


def pop_flag(argv: List[str], flag: str) -> bool:
    from .config import OptionError, switch_given_a_word

    names = spellings(flag)
    for token, after in zip(argv, argv[1:] + [""]):
        if token == "--":
            break
        head, eq, value = token.partition("=")
        word = value if eq else after
        if head in names and switch_given_a_word(head, word):
            # eval --json True: the word was left over, "unexpected argument 'True': options are --key=value or
            # --key value", and --json=True was "unknown key 'json'"
            raise OptionError(switch_given_a_word(head, word))
    present = any(a in names for a in argv)
    argv[:] = [a for a in argv if a not in names]
    return present


def pop_option(argv: List[str], name: str) -> Optional[str]:
    """Remove ``--name value`` / ``--name=value`` from ``argv`` (either :func:`spellings`); return the value
    (the last one)."""
    from .config import OptionError

    names = spellings(name)
    value, out, i = None, [], 0
    while i < len(argv):
        a = argv[i]
        if a in names:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                # As a configuration key's (config.parse_overrides): the command's one-line error, status 1; it
                # was "mobilenet-v1: option --out needs a value" (no command named, a SystemExit to a Python
                # caller), and `--confusion_csv --per_class` took "--per_class" for the file.
                raise OptionError(f"option {name} needs a value")
            value = argv[i + 1]
            i += 2
            continue
        if a.split("=", 1)[0] in names and "=" in a:
            value = a.split("=", 1)[1]
        else:
            out.append(a)
        i += 1
    argv[:] = out
    return value


def cmd_train(argv: List[str]) -> int:
    from . import train
    return train.main(argv)


def cmd_eval(argv: List[str]) -> int:
    from . import evaluate
    return evaluate.main(argv)


def cmd_info(argv: List[str]) -> int:
    from .config import CommandParser, whole_number
    from .info import count_macs, count_params, counted_width, peak_activations
    from .model import layer_specs
    from .runtime import json_text

    p = CommandParser(prog="mobilenet-v1 info", description="Parameters and multiply-adds of a "
                      "MobileNetV1; with FILE, what a model file holds.")
    p.add_argument("file", nargs="?", metavar="FILE",
                   help="a checkpoint (or a run folder: its newest), MindSpore .ckpt, .safetensors, .onnx, .pte, "
                        ".pt2 or .tflite file: its network, data, training, weights and input")
    p.add_argument("--width_mult", type=float, default=None, help="the paper's alpha (default 1.0)")
    p.add_argument("--image_size", type=whole_number, default=None,
                   help="input resolution (default 224; with FILE, the size it records)")
    p.add_argument("--class_num", type=whole_number, default=None, help="classifier outputs (default 1000)")
    p.add_argument("--padding", choices=("same", "symmetric"), default=None,
                   help="the network's padding (default same); symmetric (timm's) pads each stride-2 layer's input "
                        "into a copy first, which raises the activations' peak")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.file is not None and a.padding is not None:
        p.error("--padding is for a network without FILE (a file's padding is its own)")
    if a.file is not None:
        return _info_file(p, a)
    a.width_mult = 1.0 if a.width_mult is None else a.width_mult
    a.image_size = 224 if a.image_size is None else a.image_size
    a.class_num = 1000 if a.class_num is None else a.class_num
    if not counted_width(a.width_mult):
        p.error(f"--width_mult {a.width_mult:g}: must be a number in (0, 1e6]")
    for option, value in (("--image_size", a.image_size), ("--class_num", a.class_num)):
        if value < 1:
            p.error(f"{option} {value}: must be at least 1")
    counts = count_params(a.width_mult, a.class_num)  # from the layer table: no model is built
    macs = count_macs(a.width_mult, a.image_size, a.class_num)
    layers = layer_specs(a.width_mult)
    peak, where = peak_activations(a.width_mult, a.image_size, a.class_num, a.padding or "same")
    out = {"width_mult": a.width_mult, "image_size": a.image_size, "class_num": a.class_num,
           "padding": a.padding or "same", "params": counts["params"], "macs": macs, "layers": len(layers),
           "feature_channels": layers[-1][2],
           "peak_activations": peak, "peak_at": where}
    if a.json:
        print(json_text(out))
    else:
        print(f"MobileNetV1 width_mult {a.width_mult:g}, {a.image_size}x{a.image_size}, {a.class_num} classes"
              + (f", padding {a.padding}" if a.padding else ""))
        print(f"  parameters:     {out['params']:,}")
        print(f"  multiply-adds:  {macs:,} ({macs / 1e6:.1f} M)")
        print(f"  layers:         {out['layers']} conv + 1 fc, {out['feature_channels']} features")
        print(f"  activations:    {peak:,} values at most at once for one image ({where}: its input and output), "
              f"{peak / 1024:,.1f} KiB in int8, {4 * peak / 1024:,.1f} KiB in float32: the floor of a tensor arena "
              f"(an INT8 .tflite's with --int8_io True; TensorFlow Lite for Microcontrollers adds its bookkeeping)")
    return 0


def _info_file(p: argparse.ArgumentParser, a: argparse.Namespace) -> int:
    from .checkpoint import CheckpointError
    from .info import describe, describe_lines
    from .runtime import json_text

    given = [f"--{k}" for k in ("width_mult", "class_num") if getattr(a, k) is not None]
    if given:
        p.error(f"{' and '.join(given)}: with FILE the network is the file's")
    if a.image_size is not None and a.image_size < 1:
        p.error("--image_size must be at least 1")
    try:
        d = describe(a.file, a.image_size)
    except (CheckpointError, ValueError) as e:
        print(f"mobilenet-v1 info: error: {e}", file=sys.stderr)
        return 1
    print(json_text(d) if a.json else "\n".join(describe_lines(d)))  # names not UTF-8: escaping_output
    return 0


def cmd_lr_schedule(argv: List[str]) -> int:
    import numpy as np

    from .config import is_cifar, load_config_and_given, set_in_config_file
    from .schedules import global_batch, schedule, schedule_notes

    if pop_flag(argv, "--help") or pop_flag(argv, "-h"):
        width = max(min(shutil.get_terminal_size().columns - 2, 98), 40)

        def fill(text: str, indent: int = 0, first: str = "") -> str:
            return textwrap.fill(text, width, initial_indent=first, subsequent_indent=" " * indent,
                                 break_long_words=False, break_on_hyphens=False)

        print(fill("usage: mobilenet-v1 lr-schedule [--config_path F] [--key=value ...] [--steps_per_epoch N] "
                   "[--out lr.csv]", 6) + "\n")
        print(fill("Writes step,epoch,lr for every global step (stdout without --out), the steps counted from 1 as "
                   "metrics.jsonl and TensorBoard count them: row N is the rate step N trains at. With "
                   "lr_base_size, the rates are scaled to the global batch batch_size x device_num x "
                   "grad_accum_steps.") + "\n\noptions:")
        for flag, text in (
                ("--config_path F", "a configuration file, as train reads it"),
                ("--key=value", "any of train's keys ('mobilenet-v1 train --help')"),
                ("--steps_per_epoch N", "optimiser steps an epoch (at least 1); default: those of the dataset_path "
                                        "given (an option, or a config file's where it is there), counted as train "
                                        "counts them, else the full data set's: 50,000 CIFAR-10 or CIFAR-100, or "
                                        "1,281,167 ImageNet images over batch_size x device_num, over "
                                        "grad_accum_steps"),
                ("--out F.csv", "write the table to this file (default: stdout)")):
            print(fill(text, 24, f"  {flag:<21} "))
        return 0
    from .checkpoint import check_output

    out = pop_option(argv, "--out")
    spe = pop_option(argv, "--steps_per_epoch")
    config_path = pop_option(list(argv), "--config_path")
    cfg, given = load_config_and_given(argv, own=("--steps_per_epoch", "--out"))
    if out:
        check_output("--out", out, [config_path or ""], suffix=".csv")
    if cfg.device_num > 1 and set_in_config_file(given, "device_num"):
        # A file's device_num is a plan for torchrun; `train` in one process replaces it by 1 (distributed.apply),
        # and with it the steps per epoch and lr_base_size's global batch: this table is not that run's.
        print(f"note: device_num {cfg.device_num} ({given.origin['device_num']}): the schedule of {cfg.device_num} "
              f"processes (torchrun --nproc_per_node={cfg.device_num}); train in one process runs with device_num 1: "
              f"add --device_num 1 for its schedule", file=sys.stderr)
    origin = given.origin.get("dataset_path", "")
    if spe is None and (origin.startswith("option") or origin and os.path.exists(cfg.dataset_path)):
        # The folder named: its steps, as train counts them (it was taken and not read, the table the full data
        # set's); a config file's too where it is there (configs/demo.yaml's data/digits: 44 steps, not 1,562).
        steps = data_steps(cfg, given)
    elif spe is None:
        if origin:  # a machine's path (the seed's files name /cache/data/...): the full data set's, said
            where = f"{cfg.dataset_path} ({origin}) is not here" if cfg.dataset_path else f"({origin}) is empty"
            print(f"note: dataset_path {where}: the steps of the full {cfg.dataset} data set; --dataset_path PATH or "
                  f"--steps_per_epoch N for yours", file=sys.stderr)
        images = 50_000 if is_cifar(cfg.dataset) else 1_281_167
        steps = images // (cfg.batch_size * cfg.device_num) // cfg.grad_accum_steps
        if steps == 0:
            raise SystemExit(f"mobilenet-v1 lr-schedule: error: the full {cfg.dataset} data set's {images:,} images "
                             f"make no step of batch_size {cfg.batch_size} x device_num {cfg.device_num} x "
                             f"grad_accum_steps {cfg.grad_accum_steps}: pass --steps_per_epoch N for your data set's")
    else:
        from .config import whole_number

        try:  # as the commands' whole-number options read one: "2.0" and "1e3" too
            steps = whole_number(spe)
        except (argparse.ArgumentTypeError, OverflowError):
            steps = 0
        if steps < 1:
            raise SystemExit(f"mobilenet-v1 lr-schedule: error: --steps_per_epoch must be a whole number >= 1, got "
                             f"{spe!r}")
    total = cfg.epoch_size * steps
    # The first and last steps' rates, for the notes said before the table (the limit on the steps checked).
    ends = np.concatenate([schedule(cfg, steps, stop=1), schedule(cfg, steps, start=total - 1)])
    for note in schedule_notes(cfg, ends, global_batch(cfg)):
        print(note, file=sys.stderr)
    if out:
        from .checkpoint import atomic_write
        from .runtime import plural
        # A SIGTERM (`timeout`, a scheduler) unwinds the write as Ctrl-C does: its hidden temporary file, gigabytes
        # at 200 million steps, was left behind, and nothing removes it later.
        with unwound_by_sigterm(), atomic_write(out, "w", encoding="utf-8") as f:
            peak = write_lr_rows(f, cfg, steps)
        print(f"wrote {plural(total, 'step')} ({plural(cfg.epoch_size, 'epoch')} x {steps}) of lr_decay_mode "
              f"{cfg.lr_decay_mode} to {out}: first {float(ends[0]):.6g}, max {peak:.6g}, last {float(ends[-1]):.6g}")
    else:
        write_lr_rows(sys.stdout, cfg, steps)
    return 0


def data_steps(cfg: Any, given: Any) -> int:
    """The optimiser steps of an epoch of ``cfg``'s training split, as ``train`` counts them (one process of
    ``device_num``'s, every image read as a listing, none decoded): for lr-schedule's table of a given folder."""
    import torch

    from .data import build_loader
    from .train import data_options, epoch_steps

    cpu = torch.device("cpu")
    with build_loader(data_options(cfg, given=given), train=True, device=cpu, drop_last=True,
                      num_shards=cfg.device_num, shard_id=0) as loader:
        steps = epoch_steps(cfg, loader, cfg.device_num > 1)
        images = loader.num_samples
    print(f"steps per epoch {steps:,}: {images:,} training images{' a process' if cfg.device_num > 1 else ''} of "
          f"{cfg.dataset_path} over batch_size {cfg.batch_size}"
          + (f" x grad_accum_steps {cfg.grad_accum_steps}" if cfg.grad_accum_steps > 1 else ""), file=sys.stderr)
    return steps


LR_ROWS_AT_ONCE = 4096  # lr-schedule's rows made and written at a time: its memory, whatever the steps


def write_lr_rows(f, cfg, steps_per_epoch: int) -> float:
    """lr-schedule's table of the schedule ``cfg`` trains with at ``steps_per_epoch``, written to the text file
    ``f`` :data:`LR_ROWS_AT_ONCE` rows at a time (its 200 million steps at most, as text, filled the memory):
    ``step,epoch,lr``, a row a step. The steps count from 1, as metrics.jsonl and TensorBoard count them:
    row ``step`` N holds the rate step N trains at, the ``lr`` those records give step N. Returns the
    largest rate."""
    from .schedules import schedule

    f.write("step,epoch,lr\n")
    total, peak = cfg.epoch_size * steps_per_epoch, -math.inf
    for start in range(0, total, LR_ROWS_AT_ONCE):
        lr = schedule(cfg, steps_per_epoch, start=start, stop=start + LR_ROWS_AT_ONCE)
        peak = max(peak, float(lr.max()))
        f.write("".join(f"{i + 1},{i // steps_per_epoch + 1},{repr(float(v))}\n"
                        for i, v in enumerate(lr.tolist(), start)))
    return peak


# What convert and average call the format they wrote.
WRITTEN = {"ckpt": "MindSpore checkpoint", "pt": "PyTorch checkpoint", "safetensors": "safetensors"}


def add_writer_options(p: argparse.ArgumentParser, ema_use: str) -> None:
    """convert's and average's --format and --use_ema (``ema_use``: what True and False do)."""
    from .config import bool_option

    p.add_argument("--format", choices=("ckpt", "pt", "safetensors"), default=None,
                   help="output format, overriding DST's extension (.ckpt: MindSpore; .pt/.pth: ours); refused "
                        "under a name read as another format or an exported file's (.safetensors, .onnx, .pte, "
                        ".pt2, .tflite)")
    p.add_argument("--use_ema", type=bool_option, default=True, metavar="True|False",
                   help=ema_use)


def cmd_convert(argv: List[str]) -> int:
    from .api import add_padding_option
    from .config import CommandParser
    from .mindspore_io import FORMAT_NAMES, convert, dropped_note

    p = CommandParser(
        prog="mobilenet-v1 convert",
        description="Rewrite a MobileNetV1 checkpoint in another format. SRC may be ours (PyTorch), a MindSpore "
                    ".ckpt, a .safetensors (told apart by content), timm's MobileNetV1 weights or TF-slim's TensorFlow "
                    "checkpoint (its prefix or .index). DST's format comes from its extension: "
                    ".ckpt is written as a MindSpore checkpoint (what a MindSpore deployment loads), .pt/.pth as "
                    "ours, .safetensors with MindSpore's names.")
    p.add_argument("src", metavar="SRC", help="checkpoint to read (or a run folder: its newest)")
    p.add_argument("dst", metavar="DST", help="file to write (atomically)")
    add_writer_options(p, "a checkpoint of a run with --ema_decay: write its weight average (True, the default) "
                          "or its trained weights")
    p.add_argument("--weights_only", action="store_true",
                   help="write the weights alone, without a training checkpoint's SGD momentum buffers (the seed's "
                        "moments.*) and global_step, which a continued run reads (a file to deploy is half the size)")
    add_padding_option(p, writes=True)
    a = p.parse_args(argv)
    out = convert(a.src, a.dst, a.format, a.use_ema, weights_only=a.weights_only, padding=a.padding)
    if out["padding_note"]:
        print(f"mobilenet-v1 convert: {out['padding_note']}", file=sys.stderr)
    written = WRITTEN[out["format"]]
    extra = (", momentum buffers" if out["moments"] else "") + (
        f", global_step {out['global_step']}" if out["global_step"] is not None else "")
    print(f"wrote {a.dst}: {written}, {out['tensors']} tensors (MobileNetV1 width_mult {out['width_mult']:g}, "
          f"{out['class_num']} classes{extra}) from {FORMAT_NAMES.get(out['source_format'], '?')} {out['source']}")
    if out["weights"]:
        print(out["weights"])
    if out["imported"]:
        print(out["imported"])
    if out["warning"]:
        print(f"mobilenet-v1 convert: warning: {out['warning']}", file=sys.stderr)
    if out["ignored"]:
        print(f"mobilenet-v1 convert: note: {', '.join(out['ignored'])} in {out['source']} (the MindSpore run's "
              f"optimiser settings or other entries that are not state) {'are' if len(out['ignored']) > 1 else 'is'} "
              f"not kept in {a.dst}: a run here takes its learning rate and momentum from its configuration",
              file=sys.stderr)
    if out["dropped"]:
        print(dropped_note("convert", out["dropped"], a.dst), file=sys.stderr)
    if out["optimizer_note"]:
        print(f"mobilenet-v1 convert: note: {out['source']}: {out['optimizer_note']}", file=sys.stderr)
    return 0


def cmd_average(argv: List[str]) -> int:
    from .averaging import average, counts_problem
    from .config import CommandParser, whole_number
    from .mindspore_io import dropped_note

    p = CommandParser(
        prog="mobilenet-v1 average",
        description="Write one model whose weights (and BatchNorm statistics) are the mean of several "
                    "checkpoints' (timm's avg_checkpoints.py): say the last checkpoints of a run. Every file is "
                    "checked before anything is written.")
    p.add_argument("src", metavar="SRC", nargs="+",
                   help="checkpoint files (any format convert reads), or run folders: their numbered checkpoints")
    p.add_argument("--out", required=True, metavar="DST", help="file to write (atomically); not one of the sources")
    p.add_argument("--last", type=whole_number, default=0, metavar="N",
                   help="only the last N of the checkpoints (0: all)")
    p.add_argument("--best", type=whole_number, default=0, metavar="N",
                   help="a run folder's N best evaluated epochs (train --keep_best_max), by their top-1 (0, the "
                        "default: its numbered checkpoints instead)")
    add_writer_options(p, "checkpoints of a run with --ema_decay: average their weight averages (True, the "
                          "default) or their trained weights")
    a = p.parse_args(argv)
    if counts_problem(a.last, a.best):  # as the other commands' numbers out of range: argparse's, status 2
        p.error(counts_problem(a.last, a.best))
    out = average(a.src, a.out, a.format, a.use_ema, a.last, a.best)
    written = WRITTEN[out["format"]]
    names = ", ".join(os.path.basename(f) for f in out["sources"])
    print(f"wrote {a.out}: {written}, {out['tensors']} tensors (MobileNetV1 width_mult {out['width_mult']:g}, "
          f"{out['class_num']} classes), the mean of {len(out['sources'])} checkpoints: {names}")
    if out["ema"]:
        print(f"{out['ema']} of them {'holds' if out['ema'] == 1 else 'hold'} a weight average (--ema_decay): that "
              f"is what was averaged from them (--use_ema False for their trained weights)")
    for file, note in out["no_trained"]:  # checkpoint.weights_note's line, as eval, predict and benchmark say it
        print(f"mobilenet-v1 average: {file}: {note}: that average is what was averaged from it", file=sys.stderr)
    if a.last > len(out["sources"]):
        print(f"mobilenet-v1 average: note: --last {a.last}: there are {len(out['sources'])} checkpoints, all of "
              f"them averaged", file=sys.stderr)
    for folder, kept in out["best_short"]:
        print(f"mobilenet-v1 average: note: --best {a.best}: the run folder {folder} kept {kept} best epochs' "
              f"checkpoint{'s' if kept != 1 else ''}, all of them averaged (train --keep_best_max N keeps N)",
              file=sys.stderr)
    if out["warning"]:
        print(f"mobilenet-v1 average: warning: {out['warning']}", file=sys.stderr)
    if out["recalibration_warning"]:
        print(f"mobilenet-v1 average: warning: {out['recalibration_warning']}", file=sys.stderr)
    for file, earlier in out["alike"]:
        print(f"mobilenet-v1 average: warning: {file} holds the weights {earlier} holds (a copy, or another format "
              f"of it): the mean counts them twice", file=sys.stderr)
    if out["renamed"]:
        print(f"mobilenet-v1 average: note: {out['renamed'][1]} names its CIFAR classes otherwise than "
              f"{out['renamed'][0]} (its names file changed; the labels are the files' numbers): {a.out} records the "
              f"last names", file=sys.stderr)
    if out["dropped"]:
        print(dropped_note("average", out["dropped"], a.out), file=sys.stderr)
    return 0


def cmd_plot(argv: List[str]) -> int:
    from . import plot

    return plot.main(argv)


def cmd_export(argv: List[str]) -> int:
    from . import export
    return export.main(argv)


def cmd_quantize(argv: List[str]) -> int:
    from . import quantize
    return quantize.main(argv)


def cmd_recalibrate_bn(argv: List[str]) -> int:
    from . import recalibrate
    return recalibrate.main(argv)


def cmd_predict(argv: List[str]) -> int:
    from . import predict
    return predict.main(argv)


def cmd_data_stats(argv: List[str]) -> int:
    from . import datastats
    return datastats.main(argv)


def cmd_benchmark(argv: List[str]) -> int:
    from . import benchmark
    return benchmark.main(argv)


COMMANDS: Dict[str, Callable[[List[str]], int]] = {
    "train": cmd_train,
    "eval": cmd_eval,
    "info": cmd_info,
    "data-stats": cmd_data_stats,
    "lr-schedule": cmd_lr_schedule,
    "convert": cmd_convert,
    "average": cmd_average,
    "recalibrate-bn": cmd_recalibrate_bn,
    "plot": cmd_plot,
    "export": cmd_export,
    "quantize": cmd_quantize,
    "predict": cmd_predict,
    "benchmark": cmd_benchmark,
}


# The keys whose value eval takes from the model file it reads where they are not given (evaluate.py's
# deployed_model_and_data, trained_size, check_dataset): their defaults in `eval --help` are not eval's.
EVAL_FOLLOWS: Dict[str, str] = {
    "dataset": "default the data set the file records",
    "class_num": "the model file's (a value given is checked against it)",
    "width_mult": "the model file's",
    "padding": "the model file's (a MindSpore .ckpt records none: same)",
    "image_size": "default the size the file records (recalibrate-bn's, else its run's eval_image_size, else its "
                  "image_size; an exported file's: its input's)",
    "crop_pct": "default the file's run's",
    "exif_orientation": "default the file's run's",
    "antialias": "default the file's run's (a MindSpore .ckpt: False)",
    "interpolation": "default the file's run's",
    "mean": "default what the file records",
    "std": "default what the file records",
    "val_split": "default the share the file's run held out, on the folder it trained on",
}


def _help(name: str, rest: List[str], argv: List[str]) -> Optional[int]:
    """The usage (no command, or ``--help``), an unknown command's refusal, or train's and eval's ``--help``
    (their keys); None for a command to run."""
    if not argv or name in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    if name in ("--version", "-V"):  # as pip's and python's: the version and where it runs from
        from . import __version__, git_revision  # not torch: said where torch itself is broken

        print(f"mobilenet-v1 {__version__} (git {git_revision()}) from {os.path.dirname(os.path.abspath(__file__))}")
        return 0
    if name not in COMMANDS:
        print(f"mobilenet-v1: unknown command {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    if name in ("train", "eval") and ("--help" in rest or "-h" in rest):
        from .config import Config, CHOICES, DATASET_PRESETS, KEY_HELP
        import dataclasses
        # Wrapped as argparse wraps the other commands' help: at the terminal's width, or COLUMNS, or 80 columns
        # where there is neither (a pipe, a file).
        width = max(shutil.get_terminal_size().columns - 2, 40)

        def wrapped(text: str, indent: int, usage: bool = False) -> str:
            # A usage line's option and its value stay on one line ("[--config_path F]"), as argparse keeps them.
            # (an option outside brackets too, "--dataset_path PATH", where the two fit on a line)
            kept = (re.sub(r"\[[^\]]*\]|--\w+ [^\s\[-]\S*", lambda m: m.group(0).replace(" ", "\0")
                           if m.group(0).startswith("[") or len(m.group(0)) <= width - indent else m.group(0), text)
                    if usage else text)
            return textwrap.fill(kept, width, subsequent_indent=" " * indent, break_long_words=False,
                                 break_on_hyphens=False).replace("\0", " ")

        if name == "eval":
            print(wrapped("usage: mobilenet-v1 eval --checkpoint_path CKPT|RUN_DIR|F.onnx|F.pte|F.pt2|F.tflite "
                          "--dataset_path PATH [--json] [--per_class] [--confusion_csv F] [--per_image F] "
                          "[--config_path F] [--key=value ...]", 6, usage=True) + "\n")
            for flag, text in (
                    ("--json", "print one JSON object"),
                    ("--per_class", "each class's images, top-1, precision and most frequent confusion"),
                    ("--confusion_csv F", "write the confusion matrix (rows: labels, columns: predictions)"),
                    ("--per_image F.csv", "write a row per image: file, label, top-1 prediction, their probabilities"),
                    ("--image_size A,B,...", "evaluate at each size in turn, a row each (one size: the key below)"),
                    ("--litert_kernels reference", "a .tflite on LiteRT's reference kernels, whose arithmetic "
                     "TensorFlow Lite for Microcontrollers' kernels follow (default: XNNPACK's)")):
                print(wrapped(f"  {flag}{' ' * (21 - len(flag)) if len(flag) <= 20 else '  '}{text}", 23))
            print("\n" + wrapped("the configuration's keys (those of training take no effect here; given as options, "
                                 "they are named on stderr):", 0))
        else:
            print(wrapped("usage: mobilenet-v1 train [--config_path F] [--key=value | --key value ...]", 6, usage=True)
                  + "\n\nkeys (default):")
        for f in dataclasses.fields(Config):
            # Ascend is a seed file's, refused where it is used
            extra = f"; one of {[c for c in CHOICES[f.name] if c != 'Ascend']}" if f.name in CHOICES else ""
            presets = [f"{name}: {values[f.name]!r}" for name, values in DATASET_PRESETS.items()
                       if values.get(f.name, f.default) != f.default]
            if presets:  # the defaults shown are CIFAR-10's
                extra += f"; default with --dataset {', '.join(presets)}"
            if name == "eval" and f.name in EVAL_FOLLOWS:  # not the default shown: the model file's record
                extra += f"; eval: {EVAL_FOLLOWS[f.name]}"
            print(wrapped(f"  --{f.name} ({f.default!r})  {KEY_HELP[f.name]}{extra}", 6))
        return 0
    return None


class ClosedOutput(io.TextIOBase):
    """sys.stdout of a process started with it closed (`>&-`), where Python makes it None and print() then prints
    nothing, and the command ended with 0, its output lost: a write is an error that names it (train's
    ReaderMayLeave gives it up and runs on)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def fileno(self) -> int:
        return 1


OPEN_FILES_WANTED = 1 << 16  # what raise_open_files_limit asks for: loader workers' batches, with room to spare


def raise_open_files_limit() -> None:
    """Raise this process's soft limit of open files (``ulimit -n``) to its hard limit, as a user may: the
    DataLoader's workers pass each batch's tensors to the main process as file descriptors (torch's
    ``file_descriptor`` sharing), and a low soft limit (a container's 1024, or less) ends a run with
    ``--num_workers`` part way through an epoch or its evaluation."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # At most OPEN_FILES_WANTED: a hard limit of 2^30 (containerd's "infinity") made the soft one that high,
        # inherited by every child, and a child that closes each descriptor up to it (no close_range) stalls.
        wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):  # no such limit here (Windows), or not ours to change
        pass


def standard_streams_opened() -> None:
    """Descriptors 0-2 closed at the start (`>&-`, `2>&-`, a daemon's) each take os.devnull, so that no file the
    command opens later (a run's lock file, a checkpoint's temporary file, an export's) becomes descriptor 1 or 2,
    into which native libraries write their messages; Python's sys.stderr None (print(file=None) prints on stdout:
    notes and warnings inside eval --json's object, before lr-schedule's header) writes to nothing, and its
    sys.stdout None is :class:`ClosedOutput`."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = ClosedOutput()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv_given = argv
    if argv is None:  # the command line's own process: not a Python caller's, whose limits are its own
        raise_open_files_limit()  # here, not in runtime, which imports torch: the usage and --version print without it
        standard_streams_opened()
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "help":  # `mobilenet-v1 help train`, as git's and pip's: train's --help
        argv = [argv[1], "--help"]
    name, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        try:
            status = _help(name, rest, argv)
        except BrokenPipeError:
            raise
        except OSError as e:  # the usage or the version not written (`--help > /dev/full`): said, not a traceback
            if argv_given is not None:
                raise
            return _output_failed("", e)
        if status is None:
            status = _command(name, rest, argv_given)
        if argv_given is None and sys.stdout is not None:  # None: started with stdout closed
            try:
                # here, where a reader gone is caught, not in the interpreter's exit; so is a full disk, whose
                # error a stdout that is not a terminal held back until here, its lines buffered
                sys.stdout.flush()
            except BrokenPipeError:
                raise
            except OSError as e:
                return _output_failed(name if name in COMMANDS else "", e)
        return status
    except BrokenPipeError:  # `info F | head`: the reader took what it wanted and went; said by nothing, as cat
        if argv_given is not None:
            raise
        return output_reader_gone()
    except KeyboardInterrupt:  # a Ctrl-C outside a training loop (which stops at its step): loading, evaluating
        if argv_given is not None:  # a Python caller's to handle
            raise
        runtime = sys.modules.get("mobilenet_v1.runtime")  # not imported here: torch may be half imported
        print(f"mobilenet-v1 {name}{runtime.rank_label() if runtime else ''}: interrupted (Ctrl-C)", file=sys.stderr)
        # Ended by the signal, as Python ends on a KeyboardInterrupt it does not catch: a shell loop (`for ...;
        # do mobilenet-v1 eval ...; done`), make or xargs stops on a child SIGINT ended, not on an exit of 130.
        import signal

        return end_by_signal(signal.SIGINT)


def _output_failed(name: str, error: OSError) -> int:
    """Standard output that could not be written (a full disk, a file over its size limit): said once, on stderr,
    what it still holds dropped (not tried again, in a traceback, at the interpreter's exit); the status 1."""
    from .runtime import discard_output

    discard_output(sys.stdout)
    print(f"mobilenet-v1{' ' + name if name else ''}: error: cannot write standard output: "
          f"{error.strerror or error}", file=sys.stderr)
    return 1


def output_reader_gone() -> int:
    """After a BrokenPipeError on stdout (`info F | head`: the reader took what it wanted and went): what
    stdout still holds goes nowhere, not to an error at the interpreter's exit; the exit status of a process
    SIGPIPE ended, as cat's. The benchmark scripts end so too (benchmarks/common.run_script)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


_FLUSH_SECONDS = 2.0  # what end_by_signal gives the output streams' buffered lines (stopping.FLUSH_SECONDS)


def end_by_signal(signum: int) -> int:
    """End the process by ``signum``'s default action, its output flushed first, as a process the signal
    ended outright (Ctrl-C; benchmark's SIGTERM once its files are removed); the status ``128 + signum``
    where the signal cannot end it."""
    import signal
    import threading

    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass

    # The same signal again (a second Ctrl-C, a scheduler's repeated SIGTERM) while the output flushes ends the
    # process outright, not in a traceback of our own handler's.
    signal.signal(signum, signal.SIG_DFL)
    # A reader of the output that stopped reading (a pager left unscrolled) holds a flush for ever, and with it
    # the end the signal asked for (`timeout`'s SIGTERM ended nothing): the flush is given a moment, as
    # stopping.exit_now gives it, in a thread of its own; where none can start (the interpreter's exit), here.
    flusher = threading.Thread(target=flush, name="end-flush", daemon=True)
    try:
        flusher.start()
    except RuntimeError:
        flush()
    else:
        flusher.join(_FLUSH_SECONDS)
    if sys.platform == "win32":
        # os.kill there is TerminateProcess with the signal's number as the exit status (2 for Ctrl-C: argparse's
        # usage error's), and no signal ends a process by a default action: the status is returned instead.
        return 128 + signum
    os.kill(os.getpid(), signum)
    return 128 + signum


def interrupted_by(error: BaseException) -> Optional[BaseException]:
    """The Ctrl-C or SIGTERM (:class:`_Terminated`) that ``error`` was raised from or while handling, if any: an
    import the signal interrupted (ONNX Runtime's, LiteRT's) raises ImportError("initialization failed") from it,
    which was a traceback, or said that the package was not installed."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (KeyboardInterrupt, _Terminated)):
            return error
        error = error.__cause__ or error.__context__
    return None


class _Terminated(BaseException):
    """A SIGTERM (or SIGHUP), raised where the main thread is so that the blocks it is in unwind."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def unwound_by_sigterm():
    """A SIGTERM inside the block (``timeout``, a scheduler) unwinds it, so that what it made (benchmark's
    files, lr-schedule's temporary table, a write's hidden temporary file) is removed as on Ctrl-C, then ends the
    process by that signal, as it would have; so does a SIGHUP (the terminal closed) where it would end the
    process outright (not under nohup, which ignores it): it left them as a kill -9 does."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise _Terminated(signum)

    before = {signal.SIGTERM: signal.signal(signal.SIGTERM, raise_terminated)}
    hangup = getattr(signal, "SIGHUP", None)  # none on Windows
    if hangup is not None and signal.getsignal(hangup) is signal.SIG_DFL:
        before[hangup] = signal.signal(hangup, raise_terminated)
    try:
        yield
    except _Terminated as e:
        raise SystemExit(end_by_signal(e.signum))
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def escaping_output() -> List[Tuple[Any, str]]:
    """stdout and stderr made to print a name that is not UTF-8 (a Latin-1 class folder's or file's) with its
    bytes escaped, as :func:`predict.shown_name` does, rather than fail: a UTF-8 locale's stdout is strict (the C
    locale's is not), and a command that printed such a name (eval --per_class, info, predict, data-stats'
    classes) ended in an error, its output lost."""
    from .runtime import escape_errors

    escaping = escape_errors()  # log.txt's too
    before = []  # (stream, its errors before): a Python caller's streams get theirs back (_command)
    for stream in (sys.stdout, sys.stderr):
        try:
            errors = stream.errors
            stream.reconfigure(errors=escaping)
            before.append((stream, errors))
        except (AttributeError, ValueError, OSError):  # not a text stream of io's (a caller's own object)
            pass
    return before


def _command(name: str, rest: List[str], argv_given: Optional[Sequence[str]]) -> int:
    """:func:`main`'s command ``name`` with its arguments ``rest``: its errors as one line each, its warnings
    our one-line format, a train from the command line with Ctrl-C and output readers of its own."""
    import warnings

    escaped = escaping_output()
    from .data import BadSampleWarning, DataWarning
    from .runtime import error_line, rank_label

    formatted = warnings.formatwarning

    def one_line(message, category, filename, lineno, line=None):
        # Our own warnings are for the user: one line, without the source line Python would print. (The
        # format, not the showing: warnings.catch_warnings(record=True) still records them.)
        if issubclass(category, (DataWarning, BadSampleWarning)):
            return f"mobilenet-v1 {name}{rank_label()}: warning: {message}\n"
        return formatted(message, category, filename, lineno, line)

    warnings.formatwarning = one_line
    from .transforms import quiet_torchvision_notice

    quiet_torchvision_notice()
    import signal
    interrupt = None
    # The command line's own process (not a Python caller), with Ctrl-C as Python's: quiet after a stopped run,
    # through the command's end and the interpreter's exit; an ignored SIGINT (`cmd &`) stays ignored.
    if argv_given is None and name == "train" and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        import atexit
        from .stopping import quiet_at_exit, quit_on_interrupt

        interrupt = signal.signal(signal.SIGINT, quit_on_interrupt)
        atexit.register(quiet_at_exit)
    streams = sys.stdout, sys.stderr
    if argv_given is None and name == "train":  # a run outlives a reader of its output that goes away
        from .runtime import ReaderMayLeave

        sys.stdout, sys.stderr = (None if s is None else ReaderMayLeave(s, what)  # None: closed
                                  for s, what in zip(streams, ("standard output", "standard error")))
    elif argv_given is None and sys.stdout is not None:  # its errors name it (a full disk is not the --out file's)
        from .runtime import NamedOutput

        sys.stdout = NamedOutput(sys.stdout)
    if name in COMMANDS and name not in ("train", "eval", "lr-schedule", "data-stats"):  # those read dashes already
        rest = underscored_options(rest)
    try:
        from .runtime import check_launcher_env, library_defaults

        check_launcher_env()
        with library_defaults():  # a Python caller's torch.set_default_dtype(torch.float64) not the command's
            return COMMANDS[name](rest)
    except Exception as e:  # error_line tells the input's and the machine's from a fault of the code
        signalled = interrupted_by(e)
        if isinstance(signalled, _Terminated):
            return end_by_signal(signalled.signum)
        if signalled is not None:  # main says it
            raise signalled from None
        line = error_line(name, e)
        # A fault of the code: its traceback; a reader of the command line's output gone: main's (no error).
        if line is None or (isinstance(e, BrokenPipeError) and argv_given is None):
            raise
        from .config import OptionError
        from .runtime import job_error_lines, launcher_number, ranks_text

        job = job_error_lines(name, e)
        if job is not None:  # raised alike by every rank of the job: said once a machine, by its local rank 0
            for text in job:
                print(text, file=sys.stderr)
            return 1
        # Options refused alike by every process of a torchrun job (the same command line): said once a machine,
        # by its local rank 0, not once a GPU. (Other errors, a teacher that fails on one GPU, each process says.)
        if isinstance(e, OptionError) and rank_label():
            if launcher_number("LOCAL_RANK") != 0:
                return 1
            # named as the job's, not as local rank 0's own: "(all 16 ranks)", as job_error_lines says them
            world = launcher_number("WORLD_SIZE")
            line = line.replace(rank_label(), f" ({ranks_text(range(world), world)})", 1)
        print(line, file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = formatted
        sys.stdout, sys.stderr = streams
        if interrupt is not None:  # a host that ran the module (runpy) gets its Ctrl-C back
            signal.signal(signal.SIGINT, interrupt)
        if argv_given is not None:  # a Python caller's print() of a lone surrogate raises again, as before the call
            for stream, errors in escaped:
                try:
                    stream.flush()
                    stream.reconfigure(errors=errors)
                except (ValueError, OSError):
                    pass


