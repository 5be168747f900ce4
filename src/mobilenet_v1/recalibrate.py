"""``mobilenet-v1 recalibrate-bn``: a checkpoint's BatchNorm statistics measured anew on training images.

A BatchNorm layer normalises by the running mean and variance its training inputs had. Two things make
those wrong for the model one ships:

- **Another image size.** A MobileNet trained at 224 and run at 160 or 128 on a phone (the paper's
  resolution multiplier) sees features of other statistics: the demo model, trained at 64 and
  evaluated at 48, falls from 0.98 to 0.36 top-1, and is at 0.79 with its statistics measured at 48
  (Touvron et al. 2019, "Fixing the train-test resolution discrepancy", show the discrepancy and fine-tune
  BatchNorm and the classifier at the test size; this only measures the statistics).
- **An average of weights** (``mobilenet-v1 average``): the mean of several checkpoints' statistics is
  not the statistics of the mean of their weights (Izmailov et al. 2018 recompute them for SWA).

Here every BatchNorm's running mean and variance are set to the mean over a sample of training images
of each batch's, weighted by the batch's images, in fp32, with the weights untouched. The images go
through the evaluation transforms at the new size, the input the model will see, drawn at random
(``--seed``) as ``quantize`` draws its calibration images; the share of an image folder that its run
held out (``val_split``) stays out where it is the folder the run trained on (``--val_split`` holds it
out of a copy). The result records the new image size, so ``eval``, ``export`` and ``predict`` take it.
"""
import os
import sys
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import checkpoint as ckpt_io
from .config import (DATASETS, CommandParser, add_device_target_option, add_max_bad_samples_option,
                     add_normalisation_options, add_num_workers_option, cifar_name, image_size_number, is_cifar,
                     normalisation_keys, seed_number, whole_number)
from .data import foreign_class_folders, held_out_for, held_out_read_note
from .mindspore_io import (RECORDED_KEYS, average_taken, dropped_note, mindspore_warning, model_args_written,
                           output_format, read_any, write_checkpoint)
from .transforms import CROP_PCT, recorded_interpolation

DEFAULT_IMAGES = 2000
# Statistics measured on fewer images than this are warned of: a helper's --images 3 --batch_size 2 (two
# images measured) took a digits model's top-1 from 0.64 to 0.21 at its own size; quantize warns alike.
FEW_IMAGES = 100
DEFAULT_BATCH = 64


def batchnorms(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recalibrate(model: nn.Module, batches: Iterable[Tuple[torch.Tensor, Any]], device: torch.device) -> int:
    """Replace the running statistics of every BatchNorm of ``model`` by the mean over ``batches`` of each
    batch's mean and (unbiased) variance, weighted by its images (a short last batch counts for what it
    holds). The weights and momenta stay; the model is left in eval mode and each layer's
    ``num_batches_tracked`` counts the batches. Returns the images used. A batch of one image is passed
    over (its variance is undefined where a layer's output is 1x1)."""
    layers = batchnorms(model)
    if not layers:
        raise ValueError("the model has no BatchNorm layer to recalibrate")
    momenta = [m.momentum for m in layers]
    sums = [(torch.zeros_like(m.running_mean), torch.zeros_like(m.running_var)) for m in layers]
    model.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = 1.0  # after each batch the running statistics are that batch's
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for x, _ in batches:
                n = x.shape[0]
                if n < 2:
                    continue
                model(x.to(device, torch.float32, non_blocking=True))
                for m, (mean, var) in zip(layers, sums):
                    mean.add_(m.running_mean, alpha=n)
                    var.add_(m.running_var, alpha=n)
                seen += n
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("no batch of two images or more to measure the BatchNorm statistics on")
    for m, (mean, var) in zip(layers, sums):
        m.running_mean.copy_(mean / seen)
        m.running_var.copy_(var / seen)
    return seen


def refilled(batches: Iterable[Tuple[torch.Tensor, Any]], size: int) -> Iterator[Tuple[torch.Tensor, None]]:
    """``batches`` as batches of ``size`` images, the last of what is left: a batch that unreadable files
    shortened, and the images that top the sample up after them (``quantize.calibration_loader``), are
    filled from the next rather than measured alone (a batch of one image passed over). Whole batches pass
    as they are."""
    held: List[torch.Tensor] = []
    count = 0
    for x, _ in batches:
        if not count and x.shape[0] == size:
            yield x, None
            continue
        held.append(x)
        count += x.shape[0]
        while count >= size:
            joined = torch.cat(held)
            yield joined[:size], None
            held, count = [joined[size:]], count - size
    if count:
        yield torch.cat(held), None


def range_problem(images: Optional[int], batch_size: Optional[int], image_size: Optional[int],
                  crop_pct: Optional[float], val_split: Optional[float]) -> str:
    """What is wrong with :func:`run`'s numbers, named as recalibrate-bn's options; "" where nothing is."""
    for name, value, low in (("images", images, 2), ("batch_size", batch_size, 2), ("image_size", image_size, 1)):
        if value is not None and value < low:
            return f"--{name} {value}: must be at least {low}"
    if crop_pct is not None and not 0 < crop_pct <= 1:
        return f"--crop_pct {crop_pct:g}: must be in (0, 1]"
    if val_split is not None and not 0 <= val_split < 1:
        return f"--val_split {val_split:g}: must be in [0, 1)"
    return ""


def run(src: str, dst: str, dataset_path: str, dataset: Optional[str] = None, image_size: Optional[int] = None,
        crop_pct: Optional[float] = None, images: int = DEFAULT_IMAGES, batch_size: int = DEFAULT_BATCH,
        seed: int = 1, num_workers: int = -1, fmt: Optional[str] = None, use_ema: bool = True,
        device_target: str = "auto", val_split: Optional[float] = None, mean: Optional[str] = None,
        std: Optional[str] = None, max_bad_samples: int = -1, padding: Optional[str] = None) -> Dict[str, Any]:
    """Write the model of ``src`` (a checkpoint of any format, or a run folder: its newest) with its BatchNorm
    statistics measured on ``images`` training images of ``dataset_path`` at ``image_size`` (by default the size
    ``src`` records: :func:`checkpoint.recorded_image_size`, its run's eval_image_size where set, else its
    image_size) as ``dst`` (format from its extension, or ``fmt``). ``val_split``: an image folder's share of each
    class left out (by default the share ``src``'s run held out, where ``dataset_path`` is the folder it trained
    on). ``mean``/``std`` (text as ``--mean`` takes it): the normalisation, by default the one ``src``'s run trained
    with; the written file records it. ``max_bad_samples``: unreadable images skipped, as in training.
    ``padding``: the network's where ``src`` records none (a MindSpore ``.ckpt``: :func:`api.padding_option`), which
    ``dst`` then records; a presumed one is not recorded. Everything is checked before the measurement."""
    from .api import model_from_checkpoint, padding_option, refuse_quantization_aware
    from .engine import resolve_device
    from .quantize import calibration_loader

    problem = range_problem(images, batch_size, image_size, crop_pct, val_split)
    if problem:
        raise ValueError(problem)
    path = ckpt_io.resolve_checkpoint_path(src, "checkpoint")
    ckpt_io.check_output("--out", dst, [path], inside=[dataset_path])
    fmt = output_format(dst, fmt)
    # A run folder's newest may be pruned by a train running there before it is read: its newest then.
    path, ckpt = ckpt_io.read_newest(src, read_any, "checkpoint")
    ckpt, remeasured = statistics_to_measure(ckpt, use_ema)
    if ckpt.get("naming") == "mindspore":  # named as the file spells them, as eval and info name them
        from .mindspore_io import to_seed_name

        remeasured = [to_seed_name(k) or k for k in remeasured]
    built, padding_note = padding_option(ckpt, padding, path, "recalibrate-bn",
                                         dst if fmt == "ckpt" else "")
    model, args = model_from_checkpoint(ckpt, path, use_ema, padding=built)
    refuse_quantization_aware(model, path, f"its weights learned their rounding at the BatchNorm statistics it "
                                           f"froze; recalibrate {ckpt_io.float_model_of(ckpt)}, then fine-tune that "
                                           f"with --qat True")
    config = dict(ckpt.get("config") or {})
    dataset = ckpt_io.trained_dataset(path, config.get("dataset"), dataset, data=("--dataset_path", dataset_path))
    if dataset is None:
        raise ValueError(f"{path} does not record its data set: pass --dataset {'|'.join(DATASETS)}")
    recorded = ckpt_io.recorded_image_size(config)
    if image_size is None:
        if recorded is None:
            raise ValueError(f"{path} does not record the image size it was trained at: pass --image_size N")
        image_size = recorded
    # Recalibrated before: the size it was trained at is the one that file recorded. (A run that evaluated
    # at another size, eval_image_size, is recalibrated at that one by default, and was trained at its own.)
    before = config.get("bn_recalibration")
    trained_at = (ckpt_io.positive_size(before.get("trained_at"))
                  if isinstance(before, dict) and "trained_at" in before else ckpt_io.trained_image_size(config))
    if is_cifar(dataset):
        for name, value, why in (("crop_pct", crop_pct, "its evaluation resizes the whole 32x32 image"),
                                 ("val_split", val_split, "its evaluation images are a file of their own")):
            if value is not None:
                raise ValueError(f"--{name}: a {cifar_name(dataset)} model's data set has no use for it ({why})")
    reading = ckpt_io.recorded_reading(ckpt)
    crop_pct = crop_pct if crop_pct is not None else reading.get("crop_pct", CROP_PCT)
    antialias = reading.get("antialias") is not False  # a MindSpore file's: the seed's plain bilinear
    interpolation = recorded_interpolation(reading.get("interpolation"))
    note = ""
    if val_split is None:
        val_split, note = held_out_for(ckpt.get("held_out"), dataset_path, path, dataset)
    else:
        note = held_out_read_note(ckpt.get("held_out"), dataset_path, path, dataset, val_split,
                                  "the statistics measured")

    recorded_classes = ckpt.get("classes")
    if dataset == "imagenet2012" and recorded_classes:  # as quantize notes it of its calibration images
        _, foreign = foreign_class_folders(dataset_path, recorded_classes, val_split or 0.0)
        if foreign:
            note = "; ".join(filter(None, [note, (
                f"{foreign} are not among the {len(recorded_classes)} classes of {path} "
                f"({', '.join(recorded_classes[:5])}{' ...' if len(recorded_classes) > 5 else ''}): its BatchNorm "
                f"statistics are measured on images of another data set than the one it classifies")]))
    norm = ckpt_io.trained_normalisation(config, dataset, path, mean, std)
    device = resolve_device(device_target)
    model = model.to(device)
    batches = calibration_loader(dataset, dataset_path, image_size, images, seed, batch_size, num_workers,
                                 max_bad_samples=max_bad_samples, val_split=val_split, crop_pct=crop_pct,
                                 exif_orientation=reading.get("exif_orientation") is True, antialias=antialias,
                                 interpolation=interpolation,
                                 norm=norm)
    seen = recalibrate(model, refilled(batches, batch_size), device)

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    recorded = {k: ckpt[k] for k in RECORDED_KEYS if k != "config" and ckpt.get(k) is not None}
    recorded.update(average_taken(ckpt, path, use_ema, "recalibrate-bn"))
    config.pop("eval_image_size", None)  # the statistics' size is the one it runs at now
    config.update(normalisation_keys(dataset, norm))  # what it was measured with, which eval and export follow
    config.update(dataset=dataset, image_size=image_size, bn_recalibration={
        "images": seen, "image_size": image_size, "dataset_path": os.path.abspath(dataset_path), "seed": seed,
        "source": os.path.basename(path), "trained_at": trained_at})
    if dataset == "imagenet2012":
        config.update(crop_pct=crop_pct, antialias=antialias, interpolation=interpolation)
    recorded["config"] = config
    count = write_checkpoint(dst, fmt, state, model_args_written(args, ckpt, built), recorded)
    return {"source": path, "format": fmt, "tensors": count, "images": seen, "image_size": image_size,
            "trained_at": trained_at, "val_split": val_split, "note": note, "padding_note": padding_note,
            "weights": ckpt_io.which_weights(ckpt, use_ema), "remeasured": remeasured,
            # --use_ema False of a file whose only weights are a moving average (convert's of a run's): named as not
            # used, as eval, convert and predict name it (checkpoint.weights_note); "" otherwise
            "not_used": "" if ckpt_io.which_weights(ckpt, use_ema) else ckpt_io.weights_note(ckpt, use_ema),
            "layers": len(batchnorms(model)), **args, "recorded": sorted(recorded),
            "warning": mindspore_warning(path, fmt, args["padding"], config)}


def statistics_to_measure(ckpt: Dict[str, Any], use_ema: bool) -> Tuple[Dict[str, Any], List[str]]:
    """``ckpt`` with the BatchNorm running statistics of the weights it gives (:func:`checkpoint.weights_to_use`)
    that hold NaN or infinite values set to a fresh layer's (0 and 1), and their names: they are measured anew
    here. A file whose statistics alone overflowed (an fp16 run's variance) was refused as damaged by the one
    command that repairs it."""
    state = ckpt_io.weights_to_use(ckpt, use_ema)
    bad = [k for k, v in state.items() if k.endswith((".running_mean", ".running_var")) and v.is_floating_point()
           and not torch.isfinite(v).all()]
    if not bad:
        return ckpt, []
    fresh = {k: torch.zeros_like(state[k]) if k.endswith("mean") else torch.ones_like(state[k]) for k in bad}
    if ckpt_io.which_weights(ckpt, use_ema) == "ema":
        return {**ckpt, "ema": {**ckpt["ema"], "model": {**state, **fresh}}}, bad
    return {**ckpt, "model": {**state, **fresh}}, bad


def main(argv: Sequence[str]) -> int:
    from .api import add_padding_option
    from .cli import WRITTEN, add_writer_options

    p = CommandParser(
        prog="mobilenet-v1 recalibrate-bn",
        description="Measure a checkpoint's BatchNorm statistics anew on training images, through the evaluation "
                    "transforms at --image_size: for a model run at another size than it was trained at (a phone's "
                    "160 or 128 for a model trained at 224), or after 'mobilenet-v1 average'. The weights are "
                    "untouched; the result records the new image size, which eval, export and predict then take.")
    p.add_argument("src", metavar="SRC", help="checkpoint (any format convert reads), or a run folder: its newest")
    p.add_argument("--out", required=True, metavar="DST", help="file to write (atomically); not SRC")
    p.add_argument("--dataset_path", required=True,
                   help="the data set's folder (as in training); its training split is read")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="layout and normalisation of --dataset_path (default: what SRC records)")
    p.add_argument("--image_size", type=image_size_number, default=None,
                   help="the size the model will run at (default: the size SRC records: the one it was "
                        "recalibrated for, else its run's eval_image_size where set, else the one it was trained at)")
    p.add_argument("--crop_pct", type=float, default=None,
                   help="image folders' centre crop (default: SRC's run's, else 0.875)")
    p.add_argument("--val_split", type=float, default=None,
                   help="an image folder without an evaluation split: the share of each class to leave out "
                        "(default: the share SRC's run held out, where --dataset_path is the folder it trained on)")
    add_normalisation_options(p, "the images are normalised by")
    p.add_argument("--images", type=whole_number, default=DEFAULT_IMAGES,
                   help=f"training images to measure on, drawn at random (default {DEFAULT_IMAGES}; fewer where "
                        f"the data set has fewer)")
    p.add_argument("--batch_size", type=whole_number, default=DEFAULT_BATCH, help=f"default {DEFAULT_BATCH}")
    p.add_argument("--seed", type=seed_number, default=1, help="which training images are drawn (default 1)")
    add_num_workers_option(p, "image decoding workers (default min(8, CPUs))")
    add_device_target_option(p, "auto", "where the model runs (auto: CUDA when present)")
    add_writer_options(p, "a checkpoint of a run with --ema_decay: recalibrate its weight average (True, the "
                          "default) or its trained weights")
    add_max_bad_samples_option(p)
    add_padding_option(p, writes=True)
    a = p.parse_args(list(argv))
    problem = range_problem(a.images, a.batch_size, a.image_size, a.crop_pct, a.val_split)
    if problem:  # as the other commands' numbers out of range (and --image_size 70000 here): argparse's, status 2
        p.error(problem)
    out = run(a.src, a.out, a.dataset_path, a.dataset, a.image_size, a.crop_pct, a.images, a.batch_size, a.seed,
              a.num_workers, a.format, a.use_ema, a.device_target, a.val_split, a.mean, a.std, a.max_bad_samples,
              a.padding)
    if out["padding_note"]:
        print(f"mobilenet-v1 recalibrate-bn: {out['padding_note']}", file=sys.stderr)
    size = (f"at image_size {out['image_size']} (trained at {out['trained_at']})"
            if out["trained_at"] not in (None, out["image_size"]) else f"at image_size {out['image_size']}")
    print(f"wrote {a.out}: {WRITTEN[out['format']]}, {out['tensors']} tensors (MobileNetV1 width_mult "
          f"{out['width_mult']:g}, {out['class_num']} classes), the BatchNorm statistics of its {out['layers']} "
          f"layers measured on {out['images']} training images of {a.dataset_path} {size}")
    if out["weights"] == "ema":
        print(f"{out['source']} holds a weight average (--ema_decay): that is what was recalibrated "
              f"(--use_ema False for its trained weights)")
    if out["not_used"]:
        print(out["not_used"])
    if out["remeasured"]:
        names = out["remeasured"]
        print(f"{len(names)} of {out['source']}'s BatchNorm statistics held NaN or infinite values "
              f"({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}): measured anew here as the others")
    if out["val_split"]:
        print(f"the share of each class held out to evaluate on (val_split {out['val_split']:g}) was left out")
    if out["note"]:
        print(f"mobilenet-v1 recalibrate-bn: note: {out['note']}", file=sys.stderr)
    if out["warning"]:
        print(f"mobilenet-v1 recalibrate-bn: warning: {out['warning']}", file=sys.stderr)
    if out["images"] < FEW_IMAGES:
        print(f"mobilenet-v1 recalibrate-bn: warning: BatchNorm statistics from only {out['images']} images: a few "
              f"images' means and variances are not the data set's, and every layer after them is off by as much; "
              f"measure on hundreds (the default {DEFAULT_IMAGES}, fewer where the data set has fewer)",
              file=sys.stderr)
    if out["format"] == "ckpt":
        print(dropped_note("recalibrate-bn", out["recorded"], a.out) + f" (the image size {out['image_size']} among "
              f"them: pass --image_size {out['image_size']} to eval, export and predict)", file=sys.stderr)
    return 0
