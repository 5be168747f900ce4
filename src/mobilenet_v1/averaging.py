"""``mobilenet-v1 average``: one model whose weights are the mean of several checkpoints' (timm's
``avg_checkpoints.py``): the last checkpoints of a run, which often evaluates a little better than any
one of them, and costs nothing at training time (unlike ``--ema_decay``, it needs no choice before the
run). BatchNorm's running statistics are averaged like the weights, as timm does.

Written through :func:`mindspore_io.write_checkpoint`, so the result is any format ``convert`` writes,
and ``eval``, ``export``, ``predict`` and ``--pre_trained`` read it. It holds no optimiser state: it is
a model, not a point to resume training from."""
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from . import checkpoint as ckpt_io
from .checkpoint import tf_index
from .config import is_cifar, normalisation, normalisation_text
from .distributed import state_digest
from .mindspore_io import mindspore_warning, output_format, read_any, write_checkpoint
from .runtime import shell_path


def counts_problem(last: int, best: int) -> str:
    """What is wrong with ``--last`` and ``--best`` below 0; "" where nothing is."""
    for name, value, zero in (("last", last, "all"), ("best", best, "off: the numbered checkpoints")):
        if value < 0:
            return f"--{name} must be >= 0 (0: {zero}), got {value}"
    return ""


def sources(paths: Sequence[str], last: int = 0, best: int = 0, use_ema: bool = True,
            short: Optional[List[Tuple[str, int]]] = None) -> List[str]:
    """The checkpoint files ``paths`` name, in order: a file as it is, a run folder (its ``ckpt_0/`` for
    a distributed run) its numbered checkpoints, oldest first; of those, the last ``last`` (0: all).
    ``best`` N: instead of the numbered ones, a run folder's N best evaluated epochs' checkpoints (kept by
    ``train --keep_best_max``), ranked by the top-1 each records (the trained weights' where ``use_ema`` is
    False and the file records both), best first; a folder that kept fewer is appended to ``short`` as
    (folder, how many it kept)."""
    problem = counts_problem(last, best)
    if problem:
        raise ValueError(problem)
    if last and best:
        raise ValueError("--last and --best choose a run folder's checkpoints two ways: give one")
    paths = [tf_index(os.fspath(path)) for path in paths]  # a TensorFlow checkpoint's prefix, as convert takes it
    for path in paths:  # first: "needs two checkpoints" or "give the run folder" (a misspelt one) would hide it
        ckpt_io.check_given(path, "checkpoint")
    if best and not any(os.path.isdir(p) for p in paths):
        raise ValueError(f"--best {best} picks a run folder's best epochs' checkpoints: give the run folder "
                         f"(files are averaged as they are named)")
    files: List[str] = []
    given: List[Tuple[str, int]] = []  # each path named, and where its checkpoints start in files
    for path in paths:
        given.append((path, len(files)))
        if os.path.isdir(path) and best:
            chosen = best_of(ckpt_io.run_folder(path), best, use_ema)
            if short is not None and len(chosen) < best:
                short.append((path, len(chosen)))
            files.extend(chosen)
        elif os.path.isdir(path):
            folder = ckpt_io.run_folder(path)
            found = [p for _, p in ckpt_io.list_checkpoints(folder)]
            if not found:
                raise ckpt_io.CheckpointError(no_numbered(folder))
            files.extend(found)
        else:
            files.append(path)
    if last:
        # The newest N of all the files named: a source named before them would be left out without a word.
        kept_from = max(len(files) - last, 0)
        ends = [start for _, start in given[1:]] + [len(files)]
        left_out = [path for (path, _), end in zip(given, ends) if end <= kept_from]
        if left_out:
            raise ValueError(f"--last {last} takes the newest {last} of the {len(files)} checkpoints named, which "
                             f"leaves out {', '.join(left_out)} entirely: name only the sources to average")
        files = files[kept_from:]
    seen: Dict[str, str] = {}
    for f in files:
        real = os.path.realpath(f)
        if real in seen:
            also = f" (also as {seen[real]})" if seen[real] != f else ""
            raise ValueError(f"checkpoint {f} is named twice{also}: each is averaged once")
        seen[real] = f
    if len(files) < 2:
        raise ValueError(f"averaging needs two checkpoints or more, got {len(files)} ({', '.join(files) or 'none'}); "
                         f"`mobilenet-v1 convert` rewrites one")
    return files


def no_numbered(folder: str) -> str:
    """The error of a run folder without numbered checkpoints to average, saying what it holds instead: best
    epochs' files (``--best N`` takes them), one best epoch's file (beside its best checkpoint or not), or its best
    checkpoint alone, one model, nothing to average."""
    numbered = f"no numbered checkpoint ({ckpt_io.CKPT_PREFIX}-EPOCH_STEP.ckpt) to average"
    top = ckpt_io.list_top(folder)
    if len(top) > 1:
        return (f"checkpoint folder {folder}: holds {numbered}, but {len(top)} best epochs' checkpoints "
                f"({ckpt_io.CKPT_PREFIX}-top-E.ckpt): --best {len(top)} averages them")
    best = os.path.join(folder, ckpt_io.BEST_NAME)
    if top:  # one best epoch's file (--keep_best_max 1): beside it, the best checkpoint is not "only" one
        kept = [os.path.basename(top[0][1])] + ([ckpt_io.BEST_NAME] if os.path.isfile(best) else [])
        return (f"checkpoint folder {folder}: holds {numbered}, only {' and '.join(kept)} (one best epoch's file "
                f"is no --best average): name the checkpoint files to average instead of the folder")
    if os.path.isfile(best):
        return (f"checkpoint folder {folder}: holds {numbered}, only {ckpt_io.BEST_NAME}: one checkpoint alone "
                f"is no average; use {best} as it is, or name it beside other checkpoint files to average it with "
                f"them")
    return f"checkpoint folder {folder}: holds {numbered}"


def best_of(folder: str, n: int, use_ema: bool = True) -> List[str]:
    """The ``n`` best of the best epochs' checkpoints in ``folder`` (:func:`checkpoint.top_name`), by the
    top-1 each records (a tie: the earlier epoch), best first: its weight average's, or with ``use_ema``
    False its trained weights' where it records them (``raw_top_1``)."""
    found = ckpt_io.list_top(folder)
    if not found:
        raise ckpt_io.CheckpointError(f"checkpoint folder {folder}: holds no {ckpt_io.CKPT_PREFIX}-top-E.ckpt "
                                      f"file (train with --eval_interval and --keep_best_max N to keep them)")
    ranked = []
    for epoch, path in found:
        try:
            metrics = ckpt_io.load_file(path).get("metrics") or {}
        except ckpt_io.CheckpointError as e:
            if os.path.exists(path):
                raise
            raise _Pruned(f"checkpoint {path}: removed while the average was taken (a running train keeps its best "
                          f"epochs' files, keep_best_max)") from e
        top_1 = metrics.get("top_1") if use_ema or "raw_top_1" not in metrics else metrics["raw_top_1"]
        if not isinstance(top_1, (int, float)) or isinstance(top_1, bool):
            raise ckpt_io.CheckpointError(f"checkpoint {path}: records no top-1 (metrics) to rank it by")
        ranked.append((-top_1, epoch, path))
    return [path for _, _, path in sorted(ranked)[:n]]


def average(paths: Sequence[str], dst: str, fmt: Optional[str] = None, use_ema: bool = True,
            last: int = 0, best: int = 0) -> Dict[str, Any]:
    """Write the mean of the weights of the checkpoints ``paths`` name (:func:`sources`) as ``dst``.

    Every file is read and checked (a MobileNetV1 of the same width, classes and padding, the same
    class names where they are recorded, finite values: :func:`checkpoint.load_weights`) before
    anything is written; the means are taken in float64 and stored as float32, counters (BatchNorm's
    ``num_batches_tracked``) are the last file's (in the order named; a folder's newest; ``best``'s N-th
    best). A training checkpoint with a weight average gives that average unless ``use_ema`` is False. The
    training configuration, class names and held-out record are those of the last file that records them; files
    that record other ways of taking their images (:func:`input_settings`) are refused, as are other
    normalisations.
    ``dst`` may not be one of the sources; the write is atomic. ``best_short``: the run folders that kept
    fewer than ``best`` best epochs, with how many (:func:`sources`); ``alike``: (file, earlier file) where a file
    holds the weights an earlier one does (a copy, convert's rewrite), which the mean counts twice; ``no_trained``:
    with ``use_ema`` False, (file, :func:`checkpoint.weights_note`'s "not used here" line) of each file whose only
    weights are a moving average, which is what is averaged from it.

    A checkpoint of a run folder's that is gone when read (a running train pruned it, keep_checkpoint_max) has
    the folder's checkpoints listed again and the mean taken anew, a few times: it ended the command, naming a
    file it had itself just listed."""
    for attempt in range(ckpt_io.PRUNED_RETRIES + 1):
        try:
            return _average(paths, dst, fmt, use_ema, last, best)
        except _Pruned as e:
            if attempt == ckpt_io.PRUNED_RETRIES:
                raise ckpt_io.CheckpointError(f"{e.args[0]}; listed again {ckpt_io.PRUNED_RETRIES} times, the run "
                                              f"removed one each time: average its folder once it stops saving, or "
                                              f"name the files (copies of them) to average") from None
    raise AssertionError("unreachable")


class _Pruned(Exception):
    """A checkpoint found in a run folder and gone before it was read."""


def _average(paths: Sequence[str], dst: str, fmt: Optional[str], use_ema: bool, last: int,
             best: int) -> Dict[str, Any]:
    from .api import model_from_checkpoint, refuse_quantization_aware

    fmt = output_format(dst, fmt)
    short: List[Tuple[str, int]] = []
    files = sources(paths, last, best, use_ema, short)
    ckpt_io.check_output("--out", dst, files)
    named = {tf_index(os.fspath(p)) for p in paths}  # the files named, not found in a folder
    sums: Dict[str, torch.Tensor] = {}
    latest: Dict[str, torch.Tensor] = {}
    first: Dict[str, Any] = {}
    weights: List[str] = []  # which weights of each file the mean is of ("ema", "trained"), for its record
    held: List[str] = []  # which_weights of each: "ema" where the file holds a moving average beside its weights
    # (file, its weights_note): with use_ema False, files whose only weights are a moving average, taken as they are
    # (no trained weights there to take), which the command names as eval does
    no_trained: List[Tuple[str, str]] = []
    seed: List[bool] = []  # each file's: a seed run's weights, recording no settings
    recorded: Dict[str, Any] = {}
    unrecorded, own = "", ""  # a file that records no normalisation; one whose run had its own (--mean/--std)
    renamed = ""  # the first CIFAR checkpoint whose class names are not the first one's
    measured: List[Tuple[str, Optional[Dict[str, Any]]]] = []  # each file's recalibrate-bn record (None: none)
    digests: Dict[str, str] = {}  # the weights averaged, by their digest: the first file that held them
    alike: List[Tuple[str, str]] = []  # (file, the earlier file whose weights it holds too)
    padded = False  # a file records its padding: else SAME was presumed of them all (MindSpore .ckpt files)
    for f in files:
        try:
            ckpt = read_any(f)
        except ckpt_io.CheckpointError as e:
            if f in named or os.path.exists(f):
                raise
            raise _Pruned(f"checkpoint {f}: removed while the average was taken (a running train removes its "
                          f"older checkpoints)") from e
        model, args = model_from_checkpoint(ckpt, f, use_ema)
        refuse_quantization_aware(model, f, "an average of weights would not round as any of them learned to; "
                                            "average the float run's checkpoints and fine-tune that with --qat True")
        args = {"class_num": args["class_num"], "width_mult": args["width_mult"], "padding": args["padding"]}
        recorded_padding = "padding" in (ckpt.get("model_args") or {})
        padded = padded or recorded_padding
        classes = ckpt.get("classes")
        config = ckpt.get("config")
        bn = config.get("bn_recalibration") if isinstance(config, dict) else None
        measured.append((f, bn if isinstance(bn, dict) else None))
        # CIFAR's class names name the numbers in its files: the run's data (data set and folder) says whose.
        cifar = (config.get("dataset"), os.path.realpath(ckpt_io.trained_data_path(ckpt) or ""))\
            if isinstance(config, dict) and is_cifar(str(config.get("dataset") or "")) else None
        if cifar and isinstance(classes, list):
            classes = classes[:args["class_num"]]  # a file recorded before runs kept only their outputs' names
        if not first:
            first = {"file": f, "args": args, "padded": recorded_padding}
        elif args != first["args"]:
            presumed = [(name, other) for name, other, said in ((f, first["args"]["padding"], recorded_padding),
                                                                 (first["file"], args["padding"], first["padded"]))
                        if not said and args["padding"] != first["args"]["padding"]]
            hint = "".join(f" ({name} records no padding: SAME is presumed; `mobilenet-v1 convert "
                           f"{shell_path(name)} OUT "
                           f"--padding {other}` writes it with padding {other} recorded)" for name, other in presumed)
            raise ckpt_io.CheckpointError(f"checkpoint {f} is a MobileNetV1 of {shown(args)}, {first['file']} one of "
                                          f"{shown(first['args'])}: only models of one shape average{hint}")
        if classes and "classes" in first and list(classes) != list(first["classes"]):
            # CIFAR's labels are the numbers in its files: checkpoints of one data whose names file renamed
            # them (train goes on, recording the file's) are one model's; the mean takes the last names.
            if not cifar or cifar != first["classes_data"]:
                raise ckpt_io.CheckpointError(f"checkpoint {f} was trained on other classes than "
                                              f"{first['classes_file']} (their recorded class names differ): the mean "
                                              f"would mix them")
            renamed = renamed or f
        if isinstance(config, dict) and config:  # a MindSpore .ckpt records none
            norm = ckpt_io.trained_normalisation(config, "", f)
            if "norm" not in first:
                first.update(norm=norm, norm_file=f)
            elif norm != first["norm"]:
                raise ckpt_io.CheckpointError(
                    f"checkpoint {f} was trained on inputs normalised by {normalisation_text(norm)}, "
                    f"{first['norm_file']} on {normalisation_text(first['norm'])}: the mean would mix models of other "
                    f"inputs")
            own = own or (f if norm != normalisation(str(config.get("dataset") or "")) else "")
        else:
            unrecorded = unrecorded or f
        if own and unrecorded:
            raise ckpt_io.CheckpointError(
                f"checkpoint {unrecorded} records no normalisation (a MindSpore .ckpt's run used its data set's "
                f"constants), {own} was trained on inputs normalised by {normalisation_text(first['norm'])} (its "
                f"run's --mean/--std): the mean would mix models of other inputs")
        for key, value in input_settings(ckpt).items():  # how each reads its images: one way for the mean
            if value is None:
                continue
            said = f"{key} {value}"
            trained = ckpt_io.trained_image_size(config)
            if key == "image_size" and trained not in (None, value):  # its run's evaluation size, not its training's
                said = f"eval_image_size {value} (trained at image_size {trained})"
            if key not in first:
                first[key] = (value, f, said)
            elif value != first[key][0]:
                raise ckpt_io.CheckpointError(
                    f"checkpoint {f} records {said}, {first[key][1]} {first[key][2]}: the mean would "
                    f"be of models that take their images otherwise, and record one way of the two (the last "
                    f"file's); average files of one {key}")
        if classes and "classes" not in first:
            first.update(classes=classes, classes_file=f, classes_data=cifar)
        held.append(ckpt_io.which_weights(ckpt, use_ema))
        if not use_ema and not held[-1] and ckpt_io.average_only(ckpt):
            no_trained.append((f, ckpt_io.weights_note(ckpt, use_ema)))
        # A file convert or recalibrate-bn wrote from a run's moving average (or average from such averages) holds
        # that alone: its weights are "ema" in the record, as export and predict say of the file itself (--use_ema
        # has no choice there).
        # A MindSpore file's tensors without Momentum buffers (or a file written from one) record neither: info
        # says so of such a file, and of the mean.
        weights.append(held[-1] or ("ema" if ckpt_io.average_only(ckpt) else "")
                       or ("unrecorded" if ckpt_io.seed_trained(ckpt) and not ckpt.get("moments") else ""))
        seed.append(ckpt_io.seed_trained(ckpt))
        # What export and predict read beside the weights (image size, normalisation, class names): the
        # last file's that records it, where a later one (a MindSpore .ckpt) records none.
        recorded.update((k, ckpt[k]) for k in ("config", "classes", "held_out") if ckpt.get(k) is not None)
        if classes:
            recorded["classes"] = list(classes)
        state = model.state_dict()
        digest = state_digest({k: v for k, v in state.items() if v.is_floating_point()})
        if digest in digests:  # sources() refused a file named twice; a copy of one (convert's) counts twice
            alike.append((f, digests[digest]))
        digests.setdefault(digest, f)
        for name, value in state.items():
            if not value.is_floating_point():
                latest[name] = value.clone()
                continue
            value = value.double()
            sums[name] = sums[name] + value if name in sums else value
    kept, recalibration_warning = recalibration_kept(measured)
    if "bn_recalibration" in recorded.get("config", {}) or kept:
        recorded["config"] = {k: v for k, v in recorded["config"].items() if k != "bn_recalibration"}
        if kept:
            recorded["config"]["bn_recalibration"] = kept
    mean = {name: (sums[name] / len(files)).float() if name in sums else latest[name] for name in model.state_dict()}
    # The file says what it is the mean of (info shows it); a MindSpore .ckpt has no place for it.
    made = {"averaged": {"sources": files, "weights": [w or "trained" for w in weights]}} if fmt != "ckpt" else {}
    written = {k: v for k, v in first["args"].items() if padded or k != "padding"}  # a presumed one not recorded
    count = write_checkpoint(dst, fmt, mean, written, {**recorded, **made}, seed_trained=all(seed))
    return {"sources": files, "format": fmt, "tensors": count, **first["args"], "best_short": short,
            "ema": held.count("ema"), "renamed": renamed and (first["classes_file"], renamed),
            "dropped": sorted(recorded) + ["averaged"] if fmt == "ckpt" else [],
            "warning": mindspore_warning(f"the mean of {', '.join(files)}", fmt, first["args"]["padding"],
                                         recorded.get("config")),
            "recalibration_warning": recalibration_warning and f"{recalibration_warning}; {dst} records none",
            "alike": alike, "no_trained": no_trained}


def recalibration_kept(measured: Sequence[Tuple[str, Optional[Dict[str, Any]]]]) -> Tuple[Dict[str, Any], str]:
    """What the mean records of ``recalibrate-bn`` (its ``bn_recalibration``), from each file's record (None:
    none): where every file records one alike (the size measured at and trained at, the images, their folder
    and seed), the mean's statistics are the mean of statistics measured so, and that record is kept, less the
    file it was measured for (``averaged`` names the sources); else none, and a warning saying why ("" where no
    file records one). Recalibrated at another size than the others' the files are refused before
    (:func:`input_settings`); one recalibrated at the size the others were trained at is not."""
    records = [(f, {k: v for k, v in bn.items() if k != "source"} if bn is not None else None) for f, bn in measured]
    held = [(f, bn) for f, bn in records if bn is not None]
    if not held:
        return {}, ""
    lacking = [f for f, bn in records if bn is None]
    if lacking:
        f, bn = held[0]
        at = ckpt_io.trained_image_size(bn)
        return {}, (f"{f} records BatchNorm statistics measured anew by recalibrate-bn{f' at {at}' if at else ''}, "
                    f"{lacking[0]} no such measurement: the mean mixes statistics of both kinds (recalibrate-bn the "
                    f"mean to measure them)")
    first_file, first = held[0]
    for f, bn in held[1:]:
        if bn != first:
            said = ", ".join(f"{k} {bn.get(k)} vs {first.get(k)}" for k in sorted(set(first) | set(bn))
                             if first.get(k) != bn.get(k))
            return {}, (f"{f} and {first_file} had their BatchNorm statistics measured otherwise by recalibrate-bn "
                        f"({said}): the mean's statistics are of no one measurement (recalibrate-bn the mean to "
                        f"measure them)")
    return first, ""


def input_settings(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """How the model of ``ckpt`` takes its images, as its configuration records it and eval, predict and export
    follow it: the size its weights and BatchNorm statistics are for (None: not recorded) and
    :func:`checkpoint.recorded_reading`, less a MindSpore file's antialias (it records nothing: what its
    names suggest, the seed's plain resize, is no record to refuse another file by)."""
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    reading = ckpt_io.recorded_reading(ckpt)
    if not config:
        reading.pop("antialias", None)
    return {"image_size": ckpt_io.recorded_image_size(config), **reading}


def shown(args: Dict[str, Any]) -> str:
    return f"width_mult {args['width_mult']:g}, {args['class_num']} classes, padding {args['padding']}"
