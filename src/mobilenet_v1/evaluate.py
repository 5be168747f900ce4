"""``mobilenet-v1 eval``: top-1 and top-5 of a checkpoint, or of an ONNX file (fp32 or INT8, run in
ONNX Runtime on the CPU), over the whole eval set; both through the same loader and ``engine.evaluate``.
With ``--per_class``, each class's figures from the confusion matrix (``--confusion_csv`` writes it)."""
import contextlib
import dataclasses
import io
import math
import os
import re
import sys
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import torch

from . import checkpoint as ckpt_io
from . import distributed, runtime
from .api import model_from_checkpoint, padding_option
from .cli import pop_flag, pop_option
from .config import (DATASETS, NORMALISATION_KEYS, Config, ConfigError, Given, OptionError, channel_values,
                     channels_text, is_cifar, load_config_and_given, names_text, parse_overrides, set_in_config_file,
                     validate)
from .data import build_loader, data_set_classes, eval_folder, held_out_for, same_folder
from .engine import evaluate, few_outputs_note, nonfinite_note, resolve_device, resolve_precision
from .onnx_io import is_deployed_file, load_deployed
from .predict import imagenet_classes, readable, shown_name
from .runtime import csv_text, is_rank0, json_text, plural, print0
from .train import check_same_data, data_options
from .transforms import INTERPOLATIONS


def accuracy(counts: Dict[str, int]) -> Dict[str, float]:
    total = max(counts["total"], 1)
    return {"top_5_accuracy": counts["top_5_correct"] / total, "top_1_accuracy": counts["top_1_correct"] / total}


def deployed_model_and_data(cfg: Config, path: str, given: Optional[Set[str]] = None, reference: bool = False):
    """An exported file (:func:`onnx_io.load_deployed`) runs on the CPU, an ONNX file in ONNX Runtime, a ``.pte``
    program in ExecuTorch, a ``.pt2`` program in PyTorch and a ``.tflite`` file in LiteRT (XNNPACK's kernels unless
    ``reference``), so its batches are made there, in fp32 and NCHW; its graph has a fixed input size, which becomes
    the ``image_size`` where the user left it at its default (as a checkpoint's training size does) and must be the
    one they asked for otherwise. ``reference``: a ``.tflite`` on LiteRT's reference kernels (``--litert_kernels
    reference``, :class:`tflite_io.TfliteModel`)."""
    if reference:
        from .tflite_io import load_tflite

        model = load_tflite(path, reference=True)
    else:
        model = load_deployed(path)
    model.check_classifier()
    check_dataset(cfg, model.metadata.get("dataset"), path, given)
    cfg = trained_split(cfg, model.metadata.get("held_out"), path, given)
    cfg = trained_crop(cfg, model.metadata.get("crop_pct"), path, given)
    cfg = trained_exif(cfg, model.metadata.get("exif_orientation"), path, given)
    cfg = trained_antialias(cfg, model.metadata.get("antialias"), path, given)
    cfg = trained_interpolation(cfg, model.metadata.get("interpolation"), path, given)
    hw = model.image_hw
    if hw is not None and hw[0] != hw[1]:
        raise ValueError(f"{path} takes {hw[0]}x{hw[1]} inputs; evaluation needs a square image_size")
    if hw is not None and hw[0] != cfg.image_size and given is not None and "image_size" not in given:
        print0(f"image_size {hw[0]}: the size {path} takes", file=sys.stderr)
        cfg = dataclasses.replace(cfg, image_size=hw[0])
    if hw is not None and hw[0] != cfg.image_size:
        # Where the size came from; --eval_image_size wins over --image_size (a file's eval_image_size does
        # not), so the way out is the option that wins (helper-119: it said --image_size, given already).
        where = getattr(given, "origin", {}).get("image_size", "") if given is not None else ""
        key = "eval_image_size" if where.endswith(EVAL_SIZE) else "image_size"
        where = where.removesuffix(EVAL_SIZE)
        option = "eval_image_size" if where == "option --eval_image_size" else "image_size"
        raise ValueError(f"{path} takes {hw[0]}x{hw[1]} inputs but {key} is {cfg.image_size}"
                         + (f" ({where})" if where else "") + f": pass --{option} {hw[0]}")
    cfg = trained_normalisation(cfg, ckpt_io.trained_normalisation(model.metadata, cfg.dataset, path), path, given,
                                pixels=model.image_input)
    note = model.saturation_note()
    if note:
        print0(note, file=sys.stderr)
    device = torch.device("cpu")
    opts = dataclasses.replace(data_options(cfg, train=False, given=given), channels_last=False)
    return model, device, "fp32", opts


def class_labels(classes: Optional[Sequence[str]], n: int) -> List[str]:
    """A name for each of ``n`` outputs: its class name (a synset folder's with its English name), else (a
    model that records none) the index. An output past the recorded names, which no label uses (the seed's
    1001st ImageNet output, those of a ``class_num`` above the class folders' count), is "(no class)", with its
    index where there are several: named by its index, output 9 read as the class folder named ``9`` (at
    another place), two columns of one name in the confusion CSV."""
    synsets = dict(imagenet_classes())
    names = [readable(str(c), synsets) for c in classes] if classes else []
    if not names:
        return [str(i) for i in range(n)]
    unused = range(len(names), n)
    return names[:n] + (["(no class)"] if len(unused) == 1 else [f"(no class {i})" for i in unused])


def per_class(confusion: Any, names: Sequence[str], unpredicted: Any = None) -> List[Dict[str, Any]]:
    """Each class that has eval images or was predicted, in class order: its images, top-1 (the share
    of its images ranked first), precision (the share of its top-1 predictions that were right, None
    if never predicted) and the class its images were most often taken for (None if never wrong).
    ``unpredicted``: each class's images whose outputs were not finite (no top-1, a miss), counted among its
    images (the matrix's rows leave them out)."""
    # Its nonzero cells, as a sparse matrix past engine.DENSE_CONFUSION_CLASSES holds them: one way for both
    m = confusion.coalesce() if confusion.is_sparse else None
    if m is not None:
        (r, p), v = m.indices(), m.values()
    else:
        r, p = confusion.nonzero().unbind(1)
        v = confusion[r, p]
    c = confusion.shape[0]
    images = torch.zeros(c, dtype=torch.long).index_add_(0, r, v)
    if unpredicted is not None:
        images += unpredicted
    predicted = torch.zeros(c, dtype=torch.long).index_add_(0, p, v)
    right = torch.zeros(c, dtype=torch.long).index_add_(0, r[r == p], v[r == p])
    off = r != p
    taken: Dict[int, Tuple[int, int]] = {}
    # each row's largest off-diagonal count, the lower column on a tie (as argmax of the dense row)
    cells = zip(r[off].tolist(), p[off].tolist(), v[off].tolist())
    for row, col, n in sorted(cells, key=lambda t: (t[0], -t[2], t[1])):
        taken.setdefault(row, (col, n))
    rows = []
    for i in sorted(set(torch.nonzero(images).flatten().tolist()) | set(torch.nonzero(predicted).flatten().tolist())):
        n_img, n_pred, n_right = int(images[i]), int(predicted[i]), int(right[i])
        rows.append({"class": names[i], "index": i, "images": n_img,
                     "top_1": n_right / n_img if n_img else None,
                     "precision": n_right / n_pred if n_pred else None,
                     "taken_for": {"class": names[taken[i][0]], "images": taken[i][1]} if i in taken else None})
    return rows


def per_class_table(rows: List[Dict[str, Any]]) -> str:
    """The rows of :func:`per_class`, worst top-1 first, as aligned text."""
    def fmt(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.4f}"

    ordered = sorted(rows, key=lambda r: (r["top_1"] is None, r["top_1"] or 0.0, r["index"]))
    # A class folder's name that is not UTF-8 (Latin-1 caf\xe9) with those bytes escaped, as predict prints file
    # names: a UTF-8 locale's stdout refused it, and the figures were lost to the error.
    shown = {r["index"]: shown_name(r["class"]) for r in rows}
    width = min(40, max([len("class")] + [len(name) for name in shown.values()]))
    lines = ["per class, worst top-1 first (top-1: the share of the class's images ranked first; precision: "
             "the share of its top-1 predictions that were right)",
             f"{'class':<{width}}  {'images':>7}  {'top-1':>6}  {'precision':>9}  most often taken for"]
    for r in ordered:
        taken = f"{shown_name(r['taken_for']['class'])} ({r['taken_for']['images']})" if r["taken_for"] else "-"
        lines.append(f"{shown[r['index']][:width]:<{width}}  {r['images']:>7}  {fmt(r['top_1']):>6}  "
                     f"{fmt(r['precision']):>9}  {taken}")
    return "\n".join(lines)


def confusion_csv(confusion: Any, names: Sequence[str], unpredicted: Any = None) -> str:
    """The matrix as CSV: a row per label, a column per top-1 prediction, both named; where an image's outputs
    were not finite (no top-1: ``unpredicted`` of each label), a last column of them, so that the rows count
    every image. :func:`confusion_csv_lines` gives it a line at a time."""
    return "".join(confusion_csv_lines(confusion, names, unpredicted))


NO_PREDICTION = "(outputs not finite)"  # the confusion CSV's column of images that got no top-1


def confusion_csv_lines(confusion: Any, names: Sequence[str], unpredicted: Any = None) -> Iterator[str]:
    """:func:`confusion_csv`'s text a line at a time (the same text), a row made dense only as it is written: a
    matrix of 21,841 classes is 477 million cells, about a gigabyte of text, which is never held at once."""
    extra = unpredicted is not None and bool(int(unpredicted.sum()))
    yield csv_text([["label \\ top-1 prediction", *names, *([NO_PREDICTION] if extra else [])]])
    m = confusion.coalesce() if confusion.is_sparse else None
    if m is not None:
        (rows_at, cols_at), values = m.indices(), m.values()
        starts = torch.searchsorted(rows_at, torch.arange(m.shape[0] + 1))
    for i, name in enumerate(names):
        if m is None:
            row = confusion[i].tolist()
        else:
            row = [0] * m.shape[1]
            a, b = int(starts[i]), int(starts[i + 1])
            for j, n in zip(cols_at[a:b].tolist(), values[a:b].tolist()):
                row[j] = n
        head = csv_text([[name, ""]])[:-2]  # the name's field as csv_text quotes it; the counts joined as they are
        yield head + "," + ",".join(map(str, row)) + (f",{int(unpredicted[i])}" if extra else "") + "\n"


def image_rows(loader: Any, samples: Dict[str, Any],
               drop_last: bool) -> Union[str, List[Tuple[int, str, int, int, float, float]]]:
    """This process's per-image results (:func:`engine.evaluate`'s ``samples``) beside each image's place in
    the split and name (:meth:`data.DeviceLoader.sample_names`), less the last partial batch (``drop_last``)
    and the files its pass could not read, which it left out: ``(place, name, label, top1, p(top1), p(label))``;
    a message where the two do not agree one for one (the caller raises it once every process has said)."""
    names = loader.sample_names()
    if drop_last:
        names = names[:len(loader) * loader.batch_size]
    bad = set(loader.bad_samples.files) if getattr(loader, "bad_samples", None) is not None else set()
    kept = [(i, name) for i, name in names if name not in bad]
    values = [samples[k].tolist() for k in ("label", "top1", "top1_probability", "label_probability")]
    if len(kept) != len(values[0]):  # the loader's order and the names must agree one for one
        return f"per-image results: {len(values[0])} images evaluated, {len(kept)} names"  # raised on every rank
    return [(i, name, *row) for (i, name), row in zip(kept, zip(*values))]


def per_image_csv(rows: Sequence[Tuple[int, str, int, int, float, float]], names: Sequence[str], model: str) -> str:
    """A row per evaluated image, in the split's order: its name, label, top-1 prediction (index and name),
    the probability of each, whether they agree, and the ``model`` file that made the prediction. The last
    is the same on every row: a comment line would trip CSV readers, a file beside it can be lost, but a
    column survives ``pd.concat`` of two models' files, which it then tells apart."""
    def name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)

    return csv_text([["image", "label", "label_name", "top1", "top1_name", "top1_probability", "label_probability",
                      "correct", "model"]] + [[image, label, name(label), top1, name(top1), f"{p_top1:.6f}",
                                               f"{p_label:.6f}", int(label == top1), model]
                                              for _, image, label, top1, p_top1, p_label in rows])


def run(cfg: Config, given: Optional[Set[str]] = None, confusion: bool = False,
        per_image: bool = False, litert_kernels: str = "xnnpack") -> Dict[str, Any]:
    """Top-1/top-5 of ``checkpoint_path``. Started by torchrun, each process evaluates a disjoint shard (together
    every sample exactly once, no padding) and the hit counts are summed over the ranks, so the result equals the
    single-process one. The result names what was evaluated: ``ckpt`` (the file), ``format`` (checkpoint, ONNX, PT2,
    PTE, TFLITE) and ``precision`` (a checkpoint's autocast precision; an exported file's fp32 or the INT8 scheme
    its metadata records).

    ``given``: the keys the user set (``config.load_config_and_given``); an ``image_size`` left at its default
    becomes the one the checkpoint was trained at. None: every value of ``cfg`` is meant as it is.
    ``confusion``: the result also holds ``confusion`` (:func:`engine.evaluate`, summed over the ranks)
    and ``classes``, a name per output (:func:`class_labels`); ``per_image``: ``images``, every process's
    :func:`image_rows` in the split's order, and ``classes``. ``litert_kernels`` "reference": a ``.tflite`` file
    is run on LiteRT's reference kernels, whose arithmetic TensorFlow Lite for Microcontrollers' kernels follow,
    rather than XNNPACK's (``kernels`` in the result); another file is an error."""
    if litert_kernels not in LITERT_KERNELS:
        raise ValueError(f"--litert_kernels {litert_kernels!r}: expected one of {', '.join(LITERT_KERNELS)}")
    validate(cfg, EVAL_READS)  # a Config built in Python gets load_config's checks
    cfg, given = evaluated_size(cfg, given)
    dist = distributed.setup(cfg, "eval")
    try:
        with runtime.library_defaults():
            return _run(cfg, dist, given, confusion, per_image, litert_kernels == "reference")
    finally:
        dist.cleanup()


EVAL_SIZE = ": eval_image_size"  # the end of the origin of an image_size that :func:`evaluated_size` set


def evaluated_size(cfg: Config, given: Optional[Set[str]]) -> Tuple[Config, Optional[Set[str]]]:
    """``cfg`` and ``given`` with the configuration's ``eval_image_size``, where it sets one, as the
    ``image_size`` to evaluate at: a training configuration's, whose ``image_size`` is its training crops',
    evaluates where the run's own evaluations did."""
    if not cfg.eval_image_size:
        return cfg, given
    if given is not None:
        origin = getattr(given, "origin", {}).get("eval_image_size", "")
        given = Given({**getattr(given, "origin", dict.fromkeys(given, "")), "image_size": f"{origin}{EVAL_SIZE}"})
    return dataclasses.replace(cfg, image_size=cfg.eval_image_size, eval_image_size=0), given


def recorded_dataset(values: Dict[str, Any]) -> Optional[str]:
    """The data set that the model file eval reads (``checkpoint_path`` among the given ``values``) records:
    eval's configuration takes it where no data set is given (``config.load_config_and_given``), so that its
    presets and checks are that data set's. None where the file records none or cannot be read yet (the
    evaluation then says why)."""
    path = values.get("checkpoint_path")
    if not isinstance(path, str) or not path:
        return None

    def read(file: str) -> Any:
        return load_deployed(file).metadata if is_deployed_file(file) else ckpt_io.load_file(file).get("config")

    try:  # a run folder's newest pruned by a train running there before it is read: its newest then (not none,
        # which took cifar10's configuration and then refused the file: "--dataset cifar10 ... was trained on")
        _, record = ckpt_io.read_newest(path, read)
    except (ckpt_io.CheckpointError, OSError, ValueError, RuntimeError):
        return None
    recorded = record.get("dataset") if isinstance(record, dict) else None
    return recorded if recorded in DATASETS else None


def check_dataset(cfg: Config, recorded: Any, path: str, given: Optional[Set[str]]) -> None:
    """Refuses a data set other than the one the run of ``path`` trained on (``recorded``: what the file
    records; :func:`checkpoint.trained_dataset`). Where the user gave none, eval's configuration was loaded
    with the file's (:func:`recorded_dataset`), as predict and export take it: said here."""
    if given is not None and "dataset" not in given and recorded == cfg.dataset != Config.dataset:
        print0(f"dataset {recorded}: what {path} was trained on (the file records it)", file=sys.stderr)
    ckpt_io.trained_dataset(path, recorded, cfg.dataset, set_in_config_file(given, "dataset"),
                            ("dataset_path", cfg.dataset_path))


def trained_size(cfg: Config, ckpt: Dict, path: str, given: Optional[Set[str]]) -> Config:
    """``cfg`` with the image size the checkpoint records (its training size, or the size its run evaluated
    at: :func:`checkpoint.recorded_image_size`) where the user left it at its default (a demo model trained
    at 64 scored 16% at the default 224 without a word); a note where they chose another size."""
    config = ckpt.get("config") or {}
    recorded = ckpt_io.recorded_image_size(config)
    if recorded is None and config.get("image_size") is not None:  # a hand-edited or foreign file's
        print0(f"note: {path} records image_size {config['image_size']!r}, which is no image size; evaluating at "
               f"{cfg.image_size}", file=sys.stderr)
    if recorded is None and not config and given is not None and "image_size" not in given:
        print0(f"note: {path} records no image size (as a MindSpore .ckpt): evaluating at image_size "
               f"{cfg.image_size}; give the size it was trained at with --image_size", file=sys.stderr)
    if recorded is None or recorded == cfg.image_size:
        return cfg
    made = ckpt_io.image_size_said(config)
    if given is not None and "image_size" not in given:
        print0(f"image_size {recorded}: the size {path} {made} (--image_size to evaluate at another)",
               file=sys.stderr)
        return dataclasses.replace(cfg, image_size=recorded)
    print0(f"note: image_size {recorded} is the size {path} {made}; evaluating at {cfg.image_size} as asked",
           file=sys.stderr)
    return cfg


def trained_crop(cfg: Config, recorded: Any, path: str, given: Optional[Set[str]]) -> Config:
    """``cfg`` with the ``crop_pct`` that the run of ``path`` evaluated with (``recorded``: its
    configuration's or ONNX metadata's) where the user left it at its default, and said so."""
    if not isinstance(recorded, (int, float)) or isinstance(recorded, bool):
        return cfg
    return _follow_run(cfg, "crop_pct", float(recorded), f"{recorded:g}: the evaluation crop of", path, given)


def trained_exif(cfg: Config, recorded: Any, path: str, given: Optional[Set[str]]) -> Config:
    """``cfg`` with the ``exif_orientation`` that the run of ``path`` read its photos with (``recorded``: its
    configuration's or the exported file's metadata) where the user left it at its default, and said so."""
    if not isinstance(recorded, bool):
        return cfg
    return _follow_run(cfg, "exif_orientation", recorded, f"{recorded}: how photos were read in", path, given)


def trained_antialias(cfg: Config, recorded: Any, path: str, given: Optional[Set[str]],
                      mindspore: bool = False) -> Config:
    """``cfg`` with the ``antialias`` that the run of ``path`` resized its photos with (``recorded``: what
    :func:`checkpoint.trained_antialias` or the exported file's metadata says; ``mindspore``: False read
    off a MindSpore file that records no settings) where the user left it at its default, and said so."""
    if not isinstance(recorded, bool):
        return cfg
    # A MindSpore file records no settings: the seed's resize is presumed, not known (a run of ours converted to
    # MindSpore's format resized antialiased; it was said to have trained with the seed's).
    said = ("False: MindSpore's plain bilinear resize, as the seed trains (a MindSpore file records none of its "
            "run's settings), taken for" if mindspore and not recorded else
            f"{recorded}: how photos were resized in")
    return _follow_run(cfg, "antialias", recorded, said, path, given)


def trained_interpolation(cfg: Config, recorded: Any, path: str, given: Optional[Set[str]]) -> Config:
    """``cfg`` with the ``interpolation`` that the run of ``path`` resized its photos with (``recorded``: its
    configuration's or the exported file's metadata; a file from before the key: none, the default
    bilinear) where the user left it at its default, and said so."""
    if recorded not in INTERPOLATIONS:
        return cfg
    return _follow_run(cfg, "interpolation", recorded, f"{recorded}: how photos were resized in", path, given)


def trained_normalisation(cfg: Config, recorded: Tuple[Sequence[float], Sequence[float]], path: str,
                          given: Optional[Set[str]], pixels: bool = False) -> Config:
    """``cfg`` with the ``mean`` and ``std`` that the run of ``path`` normalised its inputs by (``recorded``:
    :func:`checkpoint.trained_normalisation`), each where the user left it at its default, and said so; one
    given otherwise (on the command line or in a config file) is kept, and said so too. CIFAR's too (the
    model's inputs are normalised whatever the data). A file with a uint8 image input (``pixels``) is handed
    the pixels each batch was made from by undoing its own normalisation, so it always takes its own (a
    Python caller's too, ``given`` None)."""
    for key, theirs, ours in zip(NORMALISATION_KEYS, recorded, cfg.normalisation):
        if tuple(theirs) == ours:
            continue
        told = given is not None and key in given
        if pixels and told:
            print0(f"{key} {channels_text(ours)} is not used: {path} takes uint8 pixels and normalises them by "
                   f"its own {key} {channels_text(theirs)}, which its batches are made with", file=sys.stderr)
        elif told:
            print0(ckpt_io.given_normalisation_note(key, ours, theirs, path), file=sys.stderr)
            continue
        elif given is None and not pixels:  # a caller that never follows
            continue
        elif given is not None:
            print0(f"{key} {channels_text(theirs)}: what {path}'s run normalised its inputs by (--{key} to evaluate "
                   f"with another)", file=sys.stderr)
        cfg = dataclasses.replace(cfg, **{key: channel_values(key, list(theirs), key)})
    return cfg


def _follow_run(cfg: Config, key: str, recorded: Any, said: str, path: str, given: Optional[Set[str]]) -> Config:
    """An image folder's ``cfg`` with ``key`` at the ``recorded`` value of ``path``'s run, where it differs and
    the command line did not set the key (``given``; None: a caller that never follows)."""
    if is_cifar(cfg.dataset) or recorded == getattr(cfg, key) or given is None:
        return cfg
    if key in given:  # said as an image size asked is (trained_size): the figure is not the run's own setting's
        value = getattr(cfg, key)
        print0(f"note: {key} {said} {path}'s run; evaluating with {key} "
               f"{f'{value:g}' if isinstance(value, float) else value} as asked", file=sys.stderr)
        return cfg
    print0(f"{key} {said} {path}'s run (--{key} to evaluate with another)", file=sys.stderr)
    return dataclasses.replace(cfg, **{key: recorded})


def trained_split(cfg: Config, held_out: Any, path: str, given: Optional[Set[str]],
                  trained_on: Any = None) -> Config:
    """``cfg`` with the ``val_split`` that the run of ``path`` held out (``held_out``, what the file records),
    where the user set none and the image folder is the one it trained on, without an evaluation split:
    otherwise its training images would count too (:func:`data.held_out_for`). ``trained_on``: the image folder
    the run read (its recorded dataset_path), where it held nothing out: an evaluation of that folder, which has
    no evaluation split, counts images it trained on (any --val_split share too), which a note says (train said
    so too)."""
    if given is None:
        return cfg
    if (not held_out and cfg.dataset == "imagenet2012" and not cfg.eval_labels
            and isinstance(trained_on, str) and trained_on and same_folder(trained_on, cfg.dataset_path)
            and eval_folder(cfg.dataset_path) is None):
        print0(f"note: {path}'s run trained on every image of {cfg.dataset_path} (it held none out: train "
               f"--val_split holds a share of each class out to evaluate on), so this evaluation counts images it "
               f"trained on, which raise its figures", file=sys.stderr)
        return cfg
    share, note = held_out_for(held_out, cfg.dataset_path, path, cfg.dataset)
    if "val_split" in given:
        asked = cfg.val_split
        if share and asked != share:  # the shares nest (data.held_out): a larger one holds the smaller
            print0(f"note: val_split {asked:g}: {path}'s run held out val_split {share:g} of each class of "
                   f"{cfg.dataset_path} and trained on the rest, so "
                   + ("every image is evaluated, those it trained on included, which raise its figures" if not asked
                      else "this split holds images it trained on too, which raise its figures" if asked > share
                      else "this split is a part of the images it held out")
                   + f" (--val_split {share:g}: the held-out images alone)", file=sys.stderr)
        return cfg
    if share:
        print0(f"val_split {share:g}: evaluating on the share of each class that {path}'s run held out from "
               f"training in {cfg.dataset_path} (--val_split 0 for every image)", file=sys.stderr)
        return dataclasses.replace(cfg, val_split=share)
    if note:
        print0(f"note: {note}", file=sys.stderr)
    return cfg


def same_model(dist: distributed.Context, path: str, digest: str) -> None:
    """Refuse, on every rank alike, an evaluation whose ranks loaded other weights at ``path`` (``digest``: this
    rank's): their summed counts would mix two models' (machines reading the file from disks of their own, or a
    file replaced between two ranks' reads of it)."""
    dist.check_same({"weights": digest}, f"{'files' if is_deployed_file(path) else 'checkpoints'} at {path}",
                    "every machine must read the same file: put checkpoint_path on storage they share, or copy the "
                    "same file to each")


def _run(cfg: Config, dist: distributed.Context, given: Optional[Set[str]] = None,
         confusion: bool = False, per_image: bool = False, reference: bool = False,
         kept: Optional[Dict[str, Dict[str, Any]]] = None) -> Dict[str, Any]:
    """One evaluation of ``cfg.checkpoint_path``. ``kept``: the checkpoints read so far, by path (a sweep's): one
    named again is evaluated as it was read, not read again (a train running in its folder may have pruned it since);
    each checkpoint read is put there."""
    if not cfg.checkpoint_path:
        raise ValueError("checkpoint_path is not set: pass --checkpoint_path CKPT")
    # A run folder stands for its newest checkpoint, which may change while training goes on there:
    # rank 0 chooses and every rank evaluates that file (summed counts of two models mean nothing).
    from_file = set_in_config_file(given, "checkpoint_path")  # the seed's name ./mobilenetv1-90_625.ckpt

    def choose() -> str:
        if kept and cfg.checkpoint_path in kept:  # read already: there or not now
            return cfg.checkpoint_path
        try:
            return ckpt_io.resolve_checkpoint_path(cfg.checkpoint_path, "--checkpoint_path", from_file)
        except OSError as e:  # the folder unreadable, or gone between the look and the listing
            raise ckpt_io.CheckpointError(f"checkpoint_path {cfg.checkpoint_path}: cannot list it: "
                                          f"{e.strerror or e}") from None

    # checkpoint_path may differ by machine (the same storage mounted elsewhere): each rank reads rank 0's choice
    # under its own.
    path = dist.file_from_rank0(choose, "could not choose the checkpoint to evaluate", [cfg.checkpoint_path])
    dist.check_options(cfg, given_alike=("eval_labels",))  # training's files are not read here
    # Which kind of file, as rank 0 reads it: a rank whose copy is missing or another kind takes the same branch,
    # where it fails named (same_model, on_every_rank), rather than waiting at a collective the others never reach.
    if reference:
        from .tflite_io import is_tflite_file

        if not dist.from_rank0(lambda: is_tflite_file(path), "could not read the file to evaluate"):
            raise ValueError(f"--litert_kernels reference: is for .tflite files, which LiteRT runs; {path} is not one")
    if not (kept and path in kept) and dist.from_rank0(lambda: is_deployed_file(path),
                                                         "could not read the file to evaluate"):
        if dist.enabled:
            same_model(dist, path, distributed.file_digest(path))
        model, device, precision, opts = deployed_model_and_data(cfg, path, given, reference)
        classes, class_order = model.metadata.get("classes"), model.metadata.get(ckpt_io.CLASS_ORDER)
        outputs = model.class_num or model.metadata.get("class_num")
        # Which of the formats, and in what precision (fp32, or the INT8 scheme it was quantized with, which
        # runs in fp32's place in engine.evaluate): a file's name need not say (eval reads ONNX by its content).
        evaluated = {"format": FORMATS.get(model.kind, model.kind), "precision": model.weights,
                     **({"kernels": "LiteRT's reference kernels"} if reference else {})}
        recorded = {"class_num": outputs, "width_mult": model.metadata.get("width_mult"),
                    "padding": model.metadata.get("padding")}
    else:
        device = resolve_device(cfg.device_target)
        precision = resolve_precision(cfg.precision, device)
        if cfg.precision == "auto" and precision != "fp32":  # timm's validate.py, torchvision's references and
            # predict evaluate in float32 unless asked: a figure to set beside theirs is said to be another's
            print0(f"note: precision {precision} (--precision auto on a GPU); --precision fp32 for the figures of "
                   f"timm's validate.py, torchvision's references and predict, which evaluate in float32",
                   file=sys.stderr)

        typed_padding = getattr(given, "origin", {}).get("padding") == "option --padding"

        def load() -> Tuple[Dict[str, Any], Any, Dict[str, Any]]:
            nonlocal path
            if kept and path in kept:
                ckpt = kept[path]
            elif dist.enabled:
                ckpt = ckpt_io.load_file(path)
            else:  # a run folder's newest pruned since it was chosen (a train saving there): its newest then
                path, ckpt = ckpt_io.read_newest(cfg.checkpoint_path, ckpt_io.load_file, "--checkpoint_path",
                                                 from_file)
            if kept is not None:
                kept[path] = ckpt
            # A file that records no padding (a MindSpore .ckpt, or one converted back from it: a symmetric run's
            # weights among them, which convert warned of) is built as --padding says, where it is typed, as
            # predict, export, convert and recalibrate-bn build it (model_options_note says it here).
            padding, _ = padding_option(ckpt, cfg.padding if typed_padding else None, path, "eval")
            return (ckpt, *model_from_checkpoint(ckpt, path, cfg.use_ema, padding=padding))

        # Each rank reads its own copy: one that is missing or damaged on a machine stops every rank, named.
        ckpt, model, args = dist.on_every_rank(load, "cannot load the checkpoint to evaluate")
        if dist.enabled:  # the weights evaluated, as loaded: a file written over since another rank read it differs
            same_model(dist, path, distributed.state_digest(model.state_dict())[:16])
        outputs = args["class_num"]
        evaluated = {"format": "checkpoint", "precision": precision}
        recorded = {key: args[key] for key in MODEL_KEYS}
        if "padding" not in (ckpt.get("model_args") or {}):
            recorded["padding"] = None  # SAME, the seed's, was presumed, not read: not "the file's"
        note = ckpt_io.weights_note(ckpt, cfg.use_ema)
        if note:
            print0(note, file=sys.stderr)  # stdout is the result (one JSON object with --json)
        if ckpt.get("imported"):
            print0(ckpt["imported"], file=sys.stderr)
        classes, class_order = ckpt.get("classes"), (ckpt.get("config") or {}).get(ckpt_io.CLASS_ORDER)
        check_dataset(cfg, (ckpt.get("config") or {}).get("dataset"), path, given)
        trained_on = ckpt_io.trained_data_path(ckpt) \
            if (ckpt.get("config") or {}).get("dataset") == "imagenet2012" else None
        cfg = trained_split(trained_size(cfg, ckpt, path, given), ckpt.get("held_out"), path, given, trained_on)
        reading = ckpt_io.recorded_reading(ckpt)
        cfg = trained_crop(cfg, reading.get("crop_pct"), path, given)
        cfg = trained_exif(cfg, reading.get("exif_orientation"), path, given)
        cfg = trained_antialias(cfg, reading.get("antialias"), path, given, mindspore=not ckpt.get("config"))
        cfg = trained_interpolation(cfg, reading.get("interpolation"), path, given)
        cfg = trained_normalisation(cfg, ckpt_io.trained_normalisation(ckpt.get("config"), cfg.dataset, path), path,
                                    given)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format)
        opts = data_options(cfg, train=False, given=given)
    note = model_options_note(cfg, given, recorded, path,
                              () if is_deployed_file(path) else ("padding",))
    if note:
        print0(note, file=sys.stderr)
    dist.note_eval_drop_last(cfg.eval_drop_last)
    # An image folder is labelled by the class list the model was trained on, where the file records it. Read on
    # every rank together: a machine whose data path is wrong is named on every one (the others said that a
    # process had ended).
    loader = dist.on_every_rank(lambda: build_loader(opts, train=False, device=device, drop_last=cfg.eval_drop_last,
                                                     classes=classes if isinstance(classes, list) else None,
                                                     **dist.shard()), "cannot read the data")
    # A timm train.py run's model (or a file exported from it) numbered the folder's classes in natural order: the
    # images are labelled in that order, which its outputs follow.
    natural = None if classes or is_cifar(cfg.dataset) else ckpt_io.natural_order(loader.classes, class_order)
    if natural is not None:
        ours = list(loader.classes)
        loader.close()
        loader = build_loader(opts, train=False, device=device, drop_last=cfg.eval_drop_last, classes=natural,
                              **dist.shard())
        print0(ckpt_io.natural_order_line(path, natural, ours, "the images are labelled in that order"),
               file=sys.stderr)
    check_same_data(dist, None, loader)
    if outputs and loader.num_classes > outputs:
        raise ValueError(f"{path} has {outputs} outputs, and dataset_path {cfg.dataset_path} has "
                         f"{loader.num_classes} classes (labelled by {loader.labels_in}): not the data set the "
                         f"model was trained for")
    # A file that names no classes (a MindSpore one, one converted from a run of ours) with more outputs than the
    # data's classes (but the seed's 1001 for ImageNet's 1000); a run of ours that trained more outputs than
    # classes (a preset's) says its own. Class folders are then labelled by their places in sorted order, not by
    # the model's list: a folder that lacks one of the model's classes labels every class after it as the next.
    # CIFAR's count is the format's, as train counts it: a CIFAR-100 subset whose labels stop at 98 is still
    # CIFAR-100, whose model was said to be another data set's (helper-360).
    order, known = "timm's natural" if natural is not None else "sorted", data_set_classes(cfg.dataset, loader)
    if (outputs and outputs > known and not (outputs == 1001 and known == 1000)
            and not (isinstance(classes, list) and classes)):
        print0(f"note: {path} has {outputs} outputs, dataset_path {cfg.dataset_path} {known} classes: "
               f"a prediction past class {known - 1} is always wrong; is it the model of this data "
               f"set?" + (f" {path} records no class names, so the class folders are labelled by their places in "
                          f"{order} order: one of the model's classes missing from the folder shifts the labels of "
                          f"those after it, and the figures are another class's"
                          if loader.labels_in == "its class folders" else ""), file=sys.stderr)
    if confusion and not outputs:
        raise ValueError(f"{path}: its number of classes is not fixed in the graph nor recorded, which the "
                         f"per-class figures need")
    dist.defer_bad_samples(loader)  # the limit on unreadable files is the job's: checked below, together
    with loader:  # its worker processes end with the evaluation
        counts = evaluate(model, loader, device, precision, confusion_classes=outputs if confusion else 0,
                          per_sample=per_image)
    matrix, samples = counts.pop("confusion", None), counts.pop("samples", None)
    unpredicted = counts.pop("unpredicted", None)
    # This process's own rows, before the job's unreadable files join its list (check_bad_samples).
    rows = image_rows(loader, samples, cfg.eval_drop_last) if samples is not None else None
    counts = dist.all_reduce_counts(counts, device)
    dist.check_bad_samples(loader)
    if counts["total"] == 0:  # on every rank alike (the counts are summed): said once for the job
        # The split's images: under torchrun with eval_drop_last each shard keeps a share of one process's full
        # batches (data.seed_eval_count), none where the split is smaller than a batch, so a shard counts 0.
        split = getattr(getattr(loader, "sampler", None), "size", loader.num_samples)
        if cfg.eval_drop_last and split:  # there were images: all of them in the dropped batch
            raise dist.alike(ValueError(
                f"dataset_path {cfg.dataset_path}: no evaluation samples: eval_drop_last leaves out the last partial "
                f"batch, and the {split} images of the eval split are fewer than one batch of {opts.batch_size}: "
                f"a smaller --eval_batch_size, or --eval_drop_last False"))
        raise dist.alike(ValueError(f"dataset_path {cfg.dataset_path}: no evaluation samples"))
    # The model's class names (an image folder's labels follow them), else the data's (an image folder's, CIFAR's
    # names file's): shards' and CIFAR's labels are numbers, the places of the model's classes.
    names = classes if isinstance(classes, list) and classes else loader.classes
    if is_cifar(cfg.dataset) and names and loader.classes and list(loader.classes[:len(names)]) != list(names):
        print0(f"note: {path} records the class names {names_text(names)}, {cfg.dataset_path}'s names file says "
               f"{names_text(loader.classes)}: the figures name the model's", file=sys.stderr)
    few = few_outputs_note(path, outputs)  # the seed's figure is kept, but it is no measurement
    if few:
        print0(few, file=sys.stderr)
    result: Dict[str, Any] = {**accuracy(counts), "total": counts["total"], "ckpt": path,
                              "nonfinite": counts["nonfinite"], **evaluated}
    if matrix is not None:
        if matrix.is_sparse:  # the ranks' nonzero cells, gathered and added (summed densely it is gigabytes)
            parts = dist.gather_objects((matrix.indices(), matrix.values(), unpredicted))
            merged = torch.sparse_coo_tensor(torch.cat([i for i, _, _ in parts], dim=1),
                                             torch.cat([v for _, v, _ in parts]), matrix.shape,
                                             check_invariants=True).coalesce()
            result.update(confusion=merged, unpredicted=sum(u for _, _, u in parts),
                          classes=class_labels(names, outputs))
        else:
            # one collective for the matrix and its images without a top-1
            summed = dist.all_reduce_sum(torch.cat([matrix.flatten(), unpredicted]), device)
            result.update(confusion=summed[:matrix.numel()].reshape(matrix.shape),
                          unpredicted=summed[matrix.numel():], classes=class_labels(names, outputs))
    if rows is not None:
        parts = dist.gather_objects(rows)
        problems = [p for p in parts if isinstance(p, str)]
        if problems:
            raise RuntimeError(problems[0])
        result.update(images=sorted((r for part in parts for r in part), key=lambda r: r[0]),
                      classes=class_labels(names, outputs or loader.num_classes))
    return result


# The configuration keys evaluation reads. The others are training's or export's, or (class_num,
# width_mult, padding) read off the checkpoint. A config file shared with training holds them by design;
# given on eval's command line they are named, as the seed's keys with no meaning here are (the model's
# where the file's value differs: model_options_note).
EVAL_KEYS = frozenset({"config_path", "dataset", "dataset_path", "checkpoint_path", "batch_size", "eval_batch_size",
                       "image_size", "eval_image_size", "crop_pct", "exif_orientation", "antialias", "interpolation",
                       "mean", "std",
                       "val_split", "eval_labels",
                       "num_workers", "data_pipeline", "max_bad_samples", "channels_last", "precision",
                       "device_target", "use_ema", "eval_drop_last", "run_distribute"})
MODEL_KEYS = ("class_num", "width_mult", "padding")
EVAL_READS = EVAL_KEYS | set(MODEL_KEYS)  # what its checks of a configuration judge
# eval's options that are not configuration keys (taken out before the keys are read): a key that reads as one
# misspelt is answered with it (--jsn: did you mean --json?), as lr-schedule's are.
EVAL_OWN = ("--json", "--per_class", "--confusion_csv", "--per_image", "--litert_kernels")
# An ONNX file runs in ONNX Runtime on the CPU (a .pte program in ExecuTorch, a .pt2 program in PyTorch, a .tflite
# in LiteRT), in the precision it was exported (fp32) or quantized (INT8) with, NCHW, with the weights it was
# exported with.
ONNX_FIXED = ("channels_last", "precision", "device_target", "use_ema")


# The formats as eval's --json names them (DeployedModel.kind: the class's own name for the file).
FORMATS = {"ONNX file": "ONNX", "ExecuTorch program": "PTE", "program": "PT2", "TensorFlow Lite file": "TFLITE"}
LITERT_KERNELS = ("xnnpack", "reference")  # eval --litert_kernels: which of LiteRT's kernels run a .tflite


def unused_options_note(argv: Sequence[str], onnx: bool = False) -> str:
    """A line naming the ``--key`` options of ``argv`` that evaluation (of an ONNX file: ``onnx``) does
    not use, or ""."""
    keys = list(dict.fromkeys(k for k, _ in parse_overrides(argv)))
    groups = (([k for k in keys if onnx and k in ONNX_FIXED],
               "an ONNX, .pte, .pt2 or .tflite file runs on the CPU, as exported or quantized"),
              ([k for k in keys if k not in EVAL_KEYS and k not in MODEL_KEYS], "training's or export's"))
    parts = [f"{', '.join('--' + k for k in group)} ({why})" for group, why in groups if group]
    return f"eval: not used here: {'; '.join(parts)}" if parts else ""


def model_options_note(cfg: Config, given: Optional[Set[str]], recorded: Dict[str, Any], path: str,
                       built_as_given: Sequence[str] = ()) -> str:
    """A line for the model's keys (:data:`MODEL_KEYS`) given on the command line (``given``'s origins) with a
    value other than the one of the file at ``path`` (``recorded``: its class_num, width_mult and padding, None
    where it says none), whose network eval runs whatever they say; "" where there are none. A config file's are
    not named: the seed's carry class_num, and one shared with training holds all three by design."""
    origin = getattr(given, "origin", {}) if given is not None else {}
    typed = [k for k in MODEL_KEYS if origin.get(k) == f"option --{k}"]

    def same(key: str) -> bool:
        ours, theirs = getattr(cfg, key), recorded[key]
        return math.isclose(ours, theirs) if key == "width_mult" else ours == theirs

    def option(key: str) -> str:
        value = getattr(cfg, key)
        return f"--{key} {format(value, 'g') if key == 'width_mult' else value}"

    def has(key: str) -> str:
        value = recorded[key]
        return (plural(value, "class", "classes") if key == "class_num" else
                f"width_mult {value:g}" if key == "width_mult" else f"{key} {value}")

    other = [k for k in typed if recorded.get(k) is not None and not same(k)]
    unknown = [k for k in typed if recorded.get(k) is None]
    parts = []
    if other:
        parts.append(f"{', '.join(map(option, other))} given; {path} has {' and '.join(map(has, other))}, which "
                     f"eval uses")
    taken = [k for k in unknown if k in built_as_given]  # a checkpoint's network built as given: the file cannot say
    unknown = [k for k in unknown if k not in built_as_given]
    if taken:
        parts.append(f"--padding {cfg.padding} given; {path} records no padding (a MindSpore .ckpt's network pads "
                     f"SAME): eval builds it with padding {cfg.padding} as asked")
    if unknown:
        parts.append(f"{', '.join(map(option, unknown))} given; {path} records no {' or '.join(unknown)}: its own "
                     f"network is what eval runs")
    return f"note: {'; '.join(parts)}" if parts else ""


def image_sizes(argv: List[str]) -> Optional[List[int]]:
    """The sizes of ``--image_size 128,160,224`` (several, as ``benchmark`` takes them), taken out of ``argv``;
    None where it gives one size or none (left to the configuration)."""
    probe = list(argv)
    value = pop_option(probe, "--image_size")
    if value is None or "," not in value:
        return None
    argv[:] = probe
    parts = [p.strip() for p in value.split(",")]
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"option --image_size: {value!r}: several sizes are whole numbers > 0 separated by commas "
                          f"(--image_size 128,160,192,224)")
    return list(dict.fromkeys(int(p) for p in parts))


def figures(result: Dict[str, Any]) -> Dict[str, Any]:
    """An evaluation's figures as ``--json`` gives them: top-1, top-5, images, and the non-finite count where
    there is one."""
    return {"top_1_accuracy": result["top_1_accuracy"], "top_5_accuracy": result["top_5_accuracy"],
            "total": result["total"], **({"nonfinite_outputs": result["nonfinite"]} if result["nonfinite"] else {})}


class _SaidOnce(io.TextIOBase):
    """stderr for a sweep's evaluations: each line passed on to ``target`` as soon as it is complete, unless
    an earlier size said it (``seen``); a size's own "evaluating at N as asked" note is said once for every
    size. :meth:`end` passes on a last line without its newline."""

    def __init__(self, target, seen: Set[str]) -> None:
        super().__init__()
        self.target, self.seen, self.part = target, seen, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.part = (self.part + text).split("\n")
        for line in lines:
            self._say(line)
        return len(text)

    def _say(self, line: str) -> None:
        line = re.sub(r"evaluating at \d+ as asked$", "evaluating at each size asked", line)
        if line not in self.seen:
            self.seen.add(line)
            print(line, file=self.target, flush=True)

    def end(self) -> None:
        if self.part:
            self._say(self.part)
            self.part = ""


def sweep(argv: List[str], sizes: List[int], as_json: bool) -> int:
    """``eval --image_size 128,160,...``: the model evaluated at each size in turn (each as ``--image_size N``
    alone would), a row printed as each ends; one JSON object at the end with ``--json``. A run folder stands
    for the checkpoint the first size chose, for every size (as that size read it: a train running there may prune
    it meanwhile); a note is said once, as it comes."""
    if "eval_image_size" in dict(parse_overrides(argv, EVAL_OWN)):
        raise ConfigError("option --eval_image_size: --image_size gives the sizes to evaluate at; leave it out")
    runs = []
    for size in sizes:  # every size's configuration checked before the first evaluation
        # its notes (the seed's keys ignored, --device_id's) said once: the first size's are every size's
        with contextlib.redirect_stderr(io.StringIO()) if runs else contextlib.nullcontext():
            cfg, given = load_config_and_given(argv + [f"--image_size={size}"], dataset_of=recorded_dataset,
                                                reads=EVAL_READS, own=EVAL_OWN)
        given.discard("eval_image_size")
        runs.append((dataclasses.replace(cfg, eval_image_size=0), given))
    path = runs[0][0].checkpoint_path
    if path and is_deployed_file(path) and os.path.isfile(path):  # one fixed size: refused before any evaluation
        hw = load_deployed(path).image_hw
        if hw is not None and any(hw != (size, size) for size in sizes):
            raise ValueError(f"--image_size {','.join(map(str, sizes))}: {path} takes {hw[0]}x{hw[1]} inputs only "
                             f"(exported at that size); evaluate the checkpoint it was exported from at several")
    note = unused_options_note(argv, is_deployed_file(path))
    if note:
        print0(note, file=sys.stderr)
    rows: List[Dict[str, Any]] = []
    seen: Set[str] = set()
    chosen = ""  # the file the first size chose in a run folder, whatever training has saved there since
    kept: Dict[str, Dict[str, Any]] = {}  # as the first size read it: a train there may prune it before the last size
    dist = distributed.setup(runs[0][0], "eval")
    try:
        for size, (cfg, given) in zip(sizes, runs):
            said = _SaidOnce(sys.stderr, seen)
            try:
                with contextlib.redirect_stderr(said):
                    result = _run(dataclasses.replace(cfg, checkpoint_path=chosen) if chosen else cfg, dist, given,
                                  kept=kept)
            finally:
                said.end()
            chosen = result["ckpt"]
            rows.append({"image_size": size, **figures(result)})
            if result["nonfinite"]:
                print0(nonfinite_note(f"{result['ckpt']} at image_size {size}", result["nonfinite"], result["total"],
                                      result["precision"]), file=sys.stderr)
            if not as_json:
                if len(rows) == 1:
                    print0(f"{result['ckpt']}\n{'image_size':>10}  {'top-1':>6}  {'top-5':>6}  {'images':>7}")
                print0(f"{size:>10}  {rows[-1]['top_1_accuracy']:.4f}  {rows[-1]['top_5_accuracy']:.4f}  "
                       f"{rows[-1]['total']:>7}")
    finally:
        dist.cleanup()
    if as_json:
        print0(json_text({"ckpt": chosen, "format": result["format"], "precision": result["precision"], "sizes": rows}))
    return 1 if any("nonfinite_outputs" in r for r in rows) else 0


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    as_json, by_class = pop_flag(argv, "--json"), pop_flag(argv, "--per_class")
    csv_path, images_path = pop_option(argv, "--confusion_csv"), pop_option(argv, "--per_image")
    kernels = pop_option(argv, "--litert_kernels")
    sizes = image_sizes(argv)
    if sizes is not None:
        if by_class or csv_path is not None or images_path is not None:
            raise OptionError("--per_class, --confusion_csv and --per_image are figures of one image size; "
                             f"--image_size gives {len(sizes)}")
        if kernels is not None:
            raise OptionError(f"--litert_kernels {kernels}: is for a .tflite file, which takes one image size; "
                             f"--image_size gives {len(sizes)}")
        return sweep(argv, sizes, as_json)
    cfg, given = load_config_and_given(argv, dataset_of=recorded_dataset, reads=EVAL_READS, own=EVAL_OWN)
    command_line = dict(parse_overrides(argv))
    if "image_size" in command_line and "eval_image_size" not in command_line:
        cfg = dataclasses.replace(cfg, eval_image_size=0)  # the command line's size over a file's eval_image_size
        given.discard("eval_image_size")
    elif "image_size" in command_line and cfg.eval_size != cfg.image_size:
        print0(f"eval: --image_size {cfg.image_size} is not used: --eval_image_size {cfg.eval_image_size} is the size "
               f"to evaluate at", file=sys.stderr)
    for option, path in (("--confusion_csv", csv_path), ("--per_image", images_path)):
        if path is None:  # checked before the evaluation, not after it
            continue
        if not path:
            raise OptionError(f"{option} {path!r}: needs a file name")
        # A folder not there yet is made, as every command's output's ("X is not a folder" said of it here);
        # check_output refuses a file in its way. --eval_labels: a CSV (Kaggle's LOC_val_solution.csv) this
        # command reads, often beside the data set
        ckpt_io.check_output(option, path, [cfg.checkpoint_path, cfg.eval_labels], [cfg.dataset_path], ".csv")
    if csv_path is not None and images_path is not None and os.path.abspath(csv_path) == os.path.abspath(images_path):
        raise OptionError(f"--confusion_csv and --per_image name the same file, {csv_path}: give two")
    note = unused_options_note(argv, is_deployed_file(cfg.checkpoint_path))
    if note:
        print0(note, file=sys.stderr)
    result = run(cfg, given, confusion=by_class or csv_path is not None, per_image=images_path is not None,
                 litert_kernels=kernels or "xnnpack")
    rows = per_class(result["confusion"], result["classes"], result["unpredicted"]) if by_class else None
    if "kernels" in result:
        print0(f"eval: {result['ckpt']} ran on {result['kernels']}, whose arithmetic TensorFlow Lite for "
               f"Microcontrollers' kernels follow, not XNNPACK's", file=sys.stderr)
    if as_json:
        out = {**figures(result), "ckpt": result["ckpt"], "format": result["format"], "precision": result["precision"],
               **({"kernels": result["kernels"]} if "kernels" in result else {})}
        print0(json_text({**out, "per_class": rows} if rows is not None else out))
    else:
        print0("result: {'top_5_accuracy': %r, 'top_1_accuracy': %r} ckpt=%s"
               % (result["top_5_accuracy"], result["top_1_accuracy"], result["ckpt"]))
        if rows is not None:
            print0(per_class_table(rows))
    if csv_path is not None and is_rank0():
        try:
            with ckpt_io.atomic_write(csv_path, "w", encoding="utf-8",
                                      errors="surrogateescape") as f:  # a class folder's name as the folder has it
                f.writelines(confusion_csv_lines(result["confusion"], result["classes"], result["unpredicted"]))
        except OSError as e:
            raise ValueError(f"--confusion_csv {csv_path}: cannot write it: {e.strerror or e}") from None
        print0(f"confusion matrix ({len(result['classes'])} classes; rows: labels, columns: top-1 "
               f"predictions) written to {csv_path}", file=sys.stderr)
    if images_path is not None and is_rank0():
        try:
            ckpt_io.atomic_save_text(per_image_csv(result["images"], result["classes"], result["ckpt"]), images_path,
                                     errors="surrogateescape")  # a name's bytes as the folder has them
        except OSError as e:
            raise ValueError(f"--per_image {images_path}: cannot write it: {e.strerror or e}") from None
        print0(f"per-image results ({plural(len(result['images']), 'image')}, in the split's order; sorted by "
               f"label_probability, they show the likeliest mislabelled first) written to {images_path}",
               file=sys.stderr)
    if result["nonfinite"]:
        print0(nonfinite_note(result["ckpt"], result["nonfinite"], result["total"], result["precision"]),
               file=sys.stderr)
        return 1
    return 0
