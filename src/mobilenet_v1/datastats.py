"""``mobilenet-v1 data-stats``: what a data set's training split holds before a run trains on it.

Its classes and images per class (an unbalanced folder is what ``--class_balance`` is for), and the
per-channel mean and standard deviation of its pixels on the [0, 1] scale, as ``--mean`` and ``--std``
take them: over a random sample of its training images (``--images``, all with 0; drawn by ``--seed``),
each read through the evaluation transform at ``image_size`` (an image folder's photo resized and
centre-cropped, CIFAR's 32x32 image resized to it), the way the model sees them; every pixel of every
sampled image counts once (the statistics of the pixels, as ImageNet's 0.229, 0.224, 0.225 are, not the
mean of each image's own). Only the sample's images are read and decoded; the unreadable files among
them are counted and left out (fewer are measured), however many (``max_bad_samples`` limits them where
given).
"""
import argparse
import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Set

import torch

from .config import channels_text, is_cifar, whole_number
from .data import NO_LIMIT, CifarLoader, UnsortedImagesError, build_loader, default_workers, sample_labels
from .runtime import json_text, plural

# Images sampled by default: photos' own means spread by about 0.1, so a sample's mean lands within about
# 0.1 / sqrt(10,000) x 2 = 0.002 of the whole set's (an estimate).
DEFAULT_IMAGES = 10000
# The keys data-stats reads from the configuration (the rest are training's).
DATA_KEYS = ("config_path", "dataset", "dataset_path", "image_size", "crop_pct", "exif_orientation", "antialias",
             "interpolation", "val_split", "num_workers", "max_bad_samples", "seed", "batch_size")


def measure(cfg, images: int = DEFAULT_IMAGES, given: Optional[Set[str]] = None) -> Dict[str, Any]:
    """The statistics of ``cfg``'s training split (see the module's notes); ``images`` 0: every image;
    ``given``: the keys set and where (``config.load_config_and_given``), for messages naming a config file."""
    from .train import data_options

    if images < 0:
        raise ValueError(f"--images must be >= 0 (0: every image), got {images}")
    cfg = dataclasses.replace(cfg, eval_image_size=0)  # at image_size, the size it reports
    opts = dataclasses.replace(data_options(cfg, train=False, given=given), pipeline="cpu",
                               channels_last=False, norm=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    if images:  # no more loader workers than the sample has batches (--images 10: none of 8 idle)
        opts = dataclasses.replace(opts, num_workers=min(default_workers(opts.num_workers),
                                                         -(-images // opts.batch_size)))
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    pixels = seen = 0
    try:
        loader = build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False, split="train",
                              shuffle=True)
    except UnsortedImagesError as e:  # eval's way out (--eval_labels) is not data-stats'
        raise e.instead(f"which data-stats counts by class, as training labels them: a sub-folder a class "
                        f"({os.path.join(e.root, '<class>', '*.jpg')})") from None
    with loader:
        if images:  # the sample's images only are decoded, not the rest of a batch nor the workers' read-ahead
            loader.take_first(images)
        loader.set_epoch(0)
        labels = (loader.labels.cpu() if isinstance(loader, CifarLoader) else
                  torch.as_tensor(sample_labels(loader.samples), dtype=torch.long))
        for x, _ in loader:
            x = x[: images - seen] if images else x
            # In float64 a few images at a time: the whole batch's float64 copy and its squares (256 images of
            # 224 px, imagenet2012's batch: 616 MB) are not needed at once.
            for part in x.split(8):
                part = part.double()
                total += part.sum(dim=(0, 2, 3))
                squares += part.square().sum(dim=(0, 2, 3))
            pixels += x.shape[0] * x.shape[2] * x.shape[3]
            seen += x.shape[0]
            if images and seen >= images:
                break
        classes = list(loader.classes) if loader.classes else None
        unreadable = len(loader.bad_samples) if loader.bad_samples is not None else 0
        # Every image decoded (--images 0, or a sample as large as the split): the classes count what trains, a
        # class folder of unreadable files alone (train's output that nothing trains) among those with none.
        readable = None
        if (not images or images >= len(labels)) and loader.samples is not None:
            if unreadable:
                bad = loader.bad_samples.files
                labels = labels[torch.tensor([path not in bad for path, _ in loader.samples])]
            readable = len(labels)
    if not seen:
        raise ValueError(f"dataset_path {cfg.dataset_path}: no training images to measure")
    mean = total / pixels
    std = (squares / pixels - mean.square()).clamp_min(0).sqrt()
    known = len(classes) if classes else (100 if cfg.dataset == "cifar100" else 10 if is_cifar(cfg.dataset) else 0)
    counts = torch.bincount(labels, minlength=known).tolist()
    names = classes or [str(i) for i in range(len(counts))]
    return {"dataset": cfg.dataset, "dataset_path": cfg.dataset_path, "image_size": cfg.image_size,
            "images": len(labels) + (unreadable if readable is not None else 0), "readable": readable,
            "measured": seen, "unreadable": unreadable,
            "classes": dict(zip(names, counts)),
            "mean": [round(float(v), 4) for v in mean], "std": [round(float(v), 4) for v in std]}


def lines(stats: Dict[str, Any]) -> List[str]:
    """``measure``'s dict as the lines data-stats prints."""
    counts = stats["classes"]
    present = {k: v for k, v in counts.items() if v}
    empty = len(counts) - len(present)
    # Named: a class folder without images is a class all the same (train's class_num counts it).
    names = [f"class {k}" if k.isdigit() else k for k in counts if not counts[k]]
    missing = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    # Where every image was decoded and some did not read, the classes count the readable ones.
    readable = stats["unreadable"] and stats.get("readable") is not None
    out = [f"{stats['dataset_path']} ({stats['dataset']}): its training split holds "
           + (f"{plural(stats['images'], 'image file', spec=',')}, {stats['readable']:,} of them readable, "
              if readable else f"{plural(stats['images'], 'image', spec=',')} ")
           + f"in {plural(len(present), 'class', 'classes', spec=',')}"
           + (f" ({empty:,} of its {len(counts):,} labels {'has' if empty == 1 else 'have'} "
              f"{'no readable image' if readable else 'none'}: {missing})" if empty else "")]
    if present:
        low, high = min(present, key=present.get), max(present, key=present.get)
        ratio = present[high] / present[low]
        shown = {k: f"class {k}" if k.isdigit() else k for k in (low, high)}  # CIFAR's: their labels
        what = "readable images" if readable else "images"
        out.append(f"  {what} per class: {present[low]:,} each" if ratio == 1 else
                   f"  {what} per class: {present[low]:,} ({shown[low]}) to {present[high]:,} ({shown[high]})"
                   + (f", {ratio:.1f} to 1: --class_balance 0.5 (or 1) draws the rare classes more often"
                      if ratio >= 4 else ""))
    out.append(f"  pixels (0-1 RGB) of {plural(stats['measured'], 'image', spec=',')} through the evaluation "
               f"transform at image_size {stats['image_size']}: mean {channels_text(stats['mean'])}, "
               f"std {channels_text(stats['std'])}"
               + (f" ({plural(stats['unreadable'], 'unreadable file')} left out)"
                  if stats["unreadable"] else ""))
    out.append(f"  to train with them: --mean {channels_text(stats['mean'])} --std {channels_text(stats['std'])}")
    return out


def main(argv: Sequence[str]) -> int:
    from .cli import pop_flag, pop_option
    from .config import close_name, load_config_and_given, parse_overrides

    argv = list(argv)
    if "--help" in argv or "-h" in argv:
        from .config import CommandParser  # a --help that cannot be written is an error, as every command's

        p = CommandParser(prog="mobilenet-v1 data-stats", description=(
            "The classes, images per class and per-channel pixel mean and std (as --mean/--std take them) of a "
            "data set's training split."), usage="mobilenet-v1 data-stats --dataset_path PATH [--dataset D] "
            "[--image_size N]\n" + " " * 30 + "[--images N] [--json] [--key=value ...]")
        p.add_argument("--dataset_path", metavar="PATH", help="the data set (as train's --dataset_path)")
        p.add_argument("--images", metavar="N", help=f"images sampled at random (default {DEFAULT_IMAGES}; 0: all)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.add_argument("--key=value", dest="keys", metavar="", help=f"the configuration keys it reads: "
                                                                    f"{', '.join(DATA_KEYS)}")
        p.print_help()
        return 0
    as_json = pop_flag(argv, "--json")
    images = pop_option(argv, "--images")
    try:  # as the commands' whole-number options read one: "1e3" too
        count = whole_number(images) if images is not None else DEFAULT_IMAGES
    except (argparse.ArgumentTypeError, OverflowError):
        raise ValueError(f"--images {images!r}: expected a whole number (0: every image)") from None
    own = ("--images", "--json")
    other = list(dict.fromkeys(k for k, _ in parse_overrides(argv, own) if k not in DATA_KEYS))
    close = [close_name(k, DATA_KEYS + tuple(o[2:] for o in own)) for k in other]
    if other and all(close):  # --dataset_pth: the one it reads as, not the list of all 15
        raise ValueError(f"{', '.join('--' + k for k in other)}: not used by data-stats (did you mean "
                         f"{', '.join('--' + c for c in close)}?)")
    if other:
        raise ValueError(f"{', '.join('--' + k for k in other)}: not used by data-stats, which reads "
                         f"{', '.join('--' + k for k in DATA_KEYS)}, --images and --json")
    cfg, given = load_config_and_given(argv, reads=DATA_KEYS, own=own)
    if "max_bad_samples" not in given:  # an inspection: every unreadable file is counted, none stops it
        cfg = dataclasses.replace(cfg, max_bad_samples=NO_LIMIT)
    if not cfg.dataset_path:
        raise ValueError("dataset_path is not set: pass --dataset_path PATH")
    stats = measure(cfg, count, given)
    print(json_text(stats) if as_json else "\n".join(lines(stats)))
    return 0

