"""``mobilenet-v1 train``: wires configuration, data, model, optimiser and checkpoints together."""
import contextlib
import copy
import dataclasses
import functools
import hashlib
import itertools
import io
import os
import random
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import torch

from . import checkpoint as ckpt_io
from . import distributed, mindspore_io, runtime
from .api import infer_model_args, model_from_checkpoint
from .batch_augment import BatchAugment
from .config import (DATASET_PRESETS, EXPORT_KEYS, NORMALISATION_KEYS, Config, ConfigError, OptionError, channels_text,
                     cifar_name, dump_yaml, is_cifar, load_config_and_given, names_text, normalisation_text,
                     mix_prob_problem, set_in_config_file, to_dict, validate)
from .data import (IMAGE_EXTENSIONS, DataError, DataOptions, TooManyBadSamples, UnsortedImagesError, balance_line,
                   build_loader, check_dataset_path, data_set_classes, held_out_record, imagenet_folder,
                   resolved_pipeline, same_folder, sample_labels, wrapped_classes)
from .ema import WeightAverage
from .engine import (EpochResult, LossTally, evaluate, few_outputs_note, make_optimizer, make_scaler,
                     nonfinite_note, resolve_device, resolve_precision, train_one_epoch)
from .engine import autocast as engine_autocast
from .losses import BinaryCrossEntropy, CrossEntropySmooth, Distiller, ProgramTeacher, Renormalised
from .model import MobileNetV1, layer_specs
from .nonfinite import NonFiniteError, NonFiniteGuard, init_momentum_buffers
from .runtime import apart_texts, header, plural, print0, shell_path
from .schedules import SCHEDULE_KEYS, global_batch, lr_scale, schedule, schedule_notes, training_size, uses
from .stopping import StopRequest, signal_name
from .tracking import METRICS_FILE, RunLogger, read_metrics


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_sizes(cfg: Config) -> List[int]:
    """Each epoch's (from 0) training image size: ``image_size``, or under progressive resizing
    (``image_size_start``) :func:`schedules.training_size`'s."""
    return [training_size(cfg.image_size, cfg.image_size_start, cfg.image_size_ramp, e, cfg.epoch_size)
            for e in range(cfg.epoch_size)]


def resizing_line(cfg: Config) -> str:
    """Progressive resizing's sizes and the epochs (from 1) of each, or ""."""
    if not cfg.image_size_start:
        return ""
    spans: List[List[int]] = []  # [size, first epoch, last epoch]
    for e, size in enumerate(training_sizes(cfg)):
        if spans and spans[-1][0] == size:
            spans[-1][2] = e + 1
        else:
            spans.append([size, e + 1, e + 1])
    return "progressive resizing: training image_size " + ", ".join(
        f"{s} (epoch{f' {a}' if a == b else f's {a}-{b}'})" for s, a, b in spans)


def data_options(cfg: Config, train: bool = True, given: Optional[Set[str]] = None) -> DataOptions:
    """What the loaders of ``cfg`` read; ``given``: the keys the user set and where
    (``config.load_config_and_given``), whose config file is named where its dataset_path is not there."""
    batch = cfg.batch_size if train or not cfg.eval_batch_size else cfg.eval_batch_size
    size = cfg.image_size if train else cfg.eval_size
    return DataOptions(dataset=cfg.dataset, dataset_path=cfg.dataset_path, batch_size=batch,
                       image_size=size, seed=cfg.seed, num_workers=cfg.num_workers,
                       channels_last=cfg.channels_last, flip=cfg.random_flip, vflip=cfg.vflip,
                       pipeline=cfg.data_pipeline,
                       max_bad_samples=cfg.max_bad_samples, auto_augment=cfg.auto_augment,
                       ra_magnitude=cfg.ra_magnitude, augmix_severity=cfg.augmix_severity,
                       color_jitter=cfg.color_jitter, color_jitter_hue=cfg.color_jitter_hue,
                       val_split=cfg.val_split, crop_pct=cfg.crop_pct, crop_scale_min=cfg.crop_scale_min,
                       crop_ratio_min=cfg.crop_ratio_min, crop_ratio_max=cfg.crop_ratio_max,
                       exif_orientation=cfg.exif_orientation, antialias=cfg.antialias,
                       aug_repeats=cfg.aug_repeats, interpolation=cfg.interpolation, eval_labels=cfg.eval_labels,
                       class_balance=cfg.class_balance, norm=cfg.normalisation,
                       dataset_path_from=set_in_config_file(given, "dataset_path"))


def build_model(cfg: Config) -> MobileNetV1:
    model = MobileNetV1(class_num=cfg.class_num, width_mult=cfg.width_mult, padding=cfg.padding,
                        drop_rate=cfg.drop_rate, qat=cfg.qat, qat_reduce_range=cfg.qat_reduce_range)
    for m in model.modules():  # sync_bn's layers take it over (distributed.Context.wrap)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = cfg.bn_momentum
    return model.freeze(cfg.freeze_layers) if cfg.freeze_layers else model


def bn_momentum_note(cfg: Config) -> str:
    """A note for a bn_momentum that reads as MindSpore's or TensorFlow's convention (0.9, 0.997), where the
    running statistics keep that share of themselves, not of each batch; or ""."""
    if cfg.bn_momentum <= 0.5:
        return ""
    counterpart = (f"; MindSpore's and TensorFlow's momentum or decay {cfg.bn_momentum:g} is --bn_momentum "
                   f"{1 - cfg.bn_momentum:.4g} here" if cfg.bn_momentum < 1 else "")
    return (f"bn_momentum {cfg.bn_momentum:g}: each training batch's statistics make {cfg.bn_momentum:.0%} of "
            f"BatchNorm's running ones (PyTorch's convention){counterpart}")


def label_smoothing_warning(cfg: Config) -> str:
    """A warning for a ``label_smooth_factor`` that gives each wrong class a target as high as the true one's or
    higher (the seed's smoothing: ``1 - e`` on it, ``e / (class_num - 1)`` on each other), at ``e >= (C - 1) / C``;
    accepted, as the seed accepts any factor in [0, 1). "" otherwise, or without ``use_label_smooth``."""
    factor, classes = cfg.label_smooth_factor, cfg.class_num
    if not cfg.use_label_smooth or classes < 2 or factor * classes < classes - 1:
        return ""
    return (f"warning: --label_smooth_factor {factor:g} is at or above {classes - 1}/{classes} = "
            f"{(classes - 1) / classes:.6g}, the limit for class_num {classes}: each wrong class's target, "
            f"{factor / (classes - 1):.6g}, is no lower than the true class's, {1 - factor:.6g}")


def model_args(cfg: Config) -> Dict[str, Any]:
    args = {"class_num": cfg.class_num, "width_mult": cfg.width_mult, "padding": cfg.padding}
    if cfg.qat:
        args.update(qat=True, qat_reduce_range=cfg.qat_reduce_range)
    return args


def pre_trained_state(state: Dict[str, torch.Tensor], model: MobileNetV1,
                      source: str) -> Tuple[Dict[str, torch.Tensor], str]:
    """``state`` made to fit ``model`` where one of them is quantization-aware and the other not, and a
    note saying so ("" where nothing changed): a float model's weights start quantization-aware training
    with activation ranges measured from its first step; a quantization-aware model's weights start a
    float run without its ranges."""
    ranges = [k for k in state if k.startswith("quant.")]
    if model.quant is not None and not ranges:
        state = {**state, **{f"quant.{k}": v for k, v in model.quant.state_dict().items()}}
        return state, (f"{source} holds float weights: quantization-aware training starts from them, the "
                       f"activation ranges measured from the first step on")
    if model.quant is None and ranges:
        return ({k: v for k, v in state.items() if k not in ranges},
                f"{source} is quantization-aware: its weights are taken, its activation ranges left out")
    return state, ""


def qat_range_line(range_epochs: int, epoch_size: int, start_epoch: int) -> str:
    """What ``qat_range_epochs`` does to the epochs a quantization-aware run trains, ``start_epoch`` + 1 to
    ``epoch_size`` (a resumed or continued run starts past 0): which of them move the activation ranges, and
    whether the weights train against them fixed. "" for 0 (every epoch's batches move them, as by default) or
    a run with no epoch left to train."""
    if not range_epochs or start_epoch >= epoch_size:
        return ""
    said, first = f"qat_range_epochs {range_epochs}: ", start_epoch + 1
    starts = f" (this run starts at epoch {first})" if start_epoch else ""
    if range_epochs >= epoch_size:
        epochs = (f"epoch {epoch_size}" if first == epoch_size else
                  f"all {epoch_size} epochs" if not start_epoch else f"epochs {first} to {epoch_size}, all")
        return (f"{said}the ranges follow the batches of {epochs} of this run (epoch_size {epoch_size}): none is "
                f"trained with them fixed")
    if start_epoch >= range_epochs:
        return (f"{said}the ranges are fixed after epoch {range_epochs}, and this run starts at epoch {first}: they "
                f"stay as the checkpoint it goes on from left them while the weights train on")
    epochs = f"epoch {first}" if first == range_epochs else f"epochs {first} to {range_epochs}"  # not "2 to 2"
    return (f"{said}the ranges follow the batches of {epochs}{starts}, then stay as they are while the weights "
            f"train on")


def build_criterion(cfg: Config) -> torch.nn.Module:
    """The seed's losses: its CrossEntropySmooth for ImageNet, smoothed with ``use_label_smooth``, and
    plain cross entropy for CIFAR-10 (and CIFAR-100), where the seed ignores ``use_label_smooth``; here a
    CIFAR run that sets it gets the same smoothing (the seed's CIFAR-10 file leaves it False). ``bce_loss``: binary
    cross entropy instead, smoothed alike."""
    if cfg.bce_loss:
        return BinaryCrossEntropy(cfg.label_smooth_factor if cfg.use_label_smooth else 0.0, cfg.class_num,
                                  cfg.bce_target_thresh or None)
    if cfg.use_label_smooth:
        return CrossEntropySmooth(sparse=True, reduction="mean", smooth_factor=cfg.label_smooth_factor,
                                  num_classes=cfg.class_num)
    if cfg.dataset == "imagenet2012":
        return CrossEntropySmooth(sparse=True, reduction="mean", smooth_factor=0.0, num_classes=cfg.class_num)
    return torch.nn.CrossEntropyLoss()


def build_distiller(cfg: Config, classes: Optional[List[str]], device: torch.device,
                    memory_format: torch.memory_format, out_dir: str,
                    dist: Optional[distributed.Context] = None, origin: str = "") -> Distiller:
    """The teacher of ``--teacher`` (a checkpoint, or a run folder: its newest; its weight average where
    it holds one and ``use_ema``; or a ``torch.export`` program of any network: :func:`program_teacher`),
    which must have this run's outputs: as many, and for an image folder the same class folders in the
    same order (``classes``). A teacher whose run normalised its inputs otherwise (another ``mean`` or
    ``std``, or another data set's constants) is handed each batch in its own normalisation. A checkpoint of
    the run's own folder (``out_dir``, or the other layout's beside it) is refused: the run moves such files
    aside or writes over them, and its resume would read another teacher under the same name.

    Distributed (``dist``), rank 0 chooses a run folder's newest (one that lands in between is no other rank's
    choice) and every rank reads it under its own ``--teacher``; a rank that read another file is refused on
    every rank: the ranks' losses would follow other teachers."""
    from .onnx_io import is_onnx_file

    dist = dist or distributed.Context()
    path = dist.file_from_rank0(lambda: ckpt_io.resolve_checkpoint_path(cfg.teacher, "--teacher", origin),
                                "could not choose the teacher", [cfg.teacher])
    folders = (out_dir, ckpt_io.other_layout_folder(cfg.save_checkpoint_path, out_dir))
    if cfg.save_checkpoint and ckpt_io.is_run_checkpoint_name(path) and any(saved_in(path, f) for f in folders):
        raise ConfigError(f"teacher {path}: a checkpoint of save_checkpoint_path {cfg.save_checkpoint_path}, where "
                          f"this run moves an earlier run's checkpoints aside or writes its own under that name (its "
                          f"resume would distil from another file): copy the teacher out of the folder, or train "
                          f"into another one")

    def load(path: str) -> Tuple[torch.nn.Module, str, Any, str]:
        ckpt_io.check_given(path, "--teacher")  # this rank's own copy (rank 0 chose it)
        # A program by its name only, as eval and predict take one (ckpt_io.named_program): one named otherwise
        # is read as a checkpoint, which refuses it asking for the name.
        if ckpt_io.named_program(path):
            teacher, about, record = program_teacher(cfg, path, classes, device, memory_format)
        elif os.path.isfile(path) and (is_onnx_file(path) or ckpt_io.is_executorch_program(path)):
            kind = "an ONNX model" if is_onnx_file(path) else "an ExecuTorch program"
            raise ConfigError(f"teacher {path}: {kind}, which does not teach: a teacher is a checkpoint (or run "
                              f"folder), a MindSpore .ckpt, a .safetensors or a torch.export .pt2 program (export "
                              f"--file_format PT2 writes one from the checkpoint it was exported from)")
        elif os.path.isfile(path) and ckpt_io.is_exported_program(path):  # a program named otherwise: unread
            raise ckpt_io.program_not_checkpoint(path, "--teacher")
        else:
            teacher, about, record = checkpoint_teacher(cfg, path, classes)
            teacher = teacher.to(device=device, memory_format=memory_format)
        return teacher, about, record, ckpt_io.file_sha256(path)

    if dist.enabled:  # each rank reads its own copy: one that is missing or damaged on a machine stops every rank
        teacher, about, record, sha256 = dist.on_every_rank(lambda: load(path), "cannot load the teacher")
    else:  # a run folder's newest pruned by a train running there before it is read or hashed: its newest then
        path, (teacher, about, record, sha256) = ckpt_io.read_newest(cfg.teacher, load, "--teacher", origin)
    theirs = ckpt_io.trained_normalisation(record, cfg.dataset, f"teacher {path}") if record is not None else None
    if theirs is not None and theirs != cfg.normalisation:
        teacher = Renormalised(teacher, cfg.normalisation, theirs).to(device)
        about += f"; its run normalised by {normalisation_text(theirs)}: each batch is turned into that"
    source = {"path": path, "sha256": sha256}
    dist.check_same({"sha256": source["sha256"][:16]}, f"teacher files at {path}",
                    "every machine must read the same teacher: put it on storage they share, or copy the same file "
                    "to each")
    print0(f"teacher: {path} ({about}); the loss is {1 - cfg.distill_alpha:g} x the task loss + "
           f"{cfg.distill_alpha:g} x T^2 KL(teacher || student) at T {cfg.distill_temperature:g}")
    seen = getattr(teacher, "seen_evaluation_images", "")  # read before Renormalised wraps it
    distiller = Distiller(teacher, cfg.distill_alpha, cfg.distill_temperature, source=source)
    distiller.note = seen
    return distiller


def teacher_change(ckpt: Dict[str, Any], source: str, cfg: Config, distill: Optional[Distiller]) -> str:
    """A line saying that the teacher file this run distils from is not the one the checkpoint's run
    distilled from, though ``--teacher`` is the same (:func:`recipe_change` names another): a run folder
    whose newest checkpoint is another now, or a file written over; or ""."""
    then, now = ckpt_io.teacher_file(ckpt), distill.source if distill is not None else None
    recorded = (ckpt.get("config") or {}).get("teacher")
    if then is None or now is None or recorded != cfg.teacher or then["sha256"] == now["sha256"]:
        return ""
    what = (f"{then['path']} then, {now['path']} now" if then["path"] != now["path"] else
            f"{now['path']} has other contents (sha256 {then['sha256'][:12]} then, {now['sha256'][:12]} now)")
    return (f"resume: teacher {cfg.teacher} is not what {source}'s run distilled from: {what}; the loss follows "
            f"this one from here")


def checkpoint_teacher(cfg: Config, path: str, classes: Optional[List[str]]) -> Tuple[MobileNetV1, str, Any]:
    """The model of checkpoint ``path`` as a teacher, a few words on it (:func:`build_distiller`) and its
    recorded configuration."""
    ckpt, reordered = ckpt_io.in_sorted_order(ckpt_io.load_file(path), classes, path)
    if reordered:
        print0(f"teacher {reordered}")
    try:
        teacher, args = model_from_checkpoint(ckpt, path, cfg.use_ema)
    except ckpt_io.CheckpointError as e:
        if "does not fit this model" not in str(e) and "not a MobileNetV1 state dict" not in str(e):
            raise
        # Another network's weights (timm's resnet18), or a damaged file of ours: named as the teacher, with the
        # way another network teaches.
        raise ConfigError(f"teacher {e}; a teacher of another network than MobileNetV1 is given as a torch.export "
                          f".pt2 program (README: Distilling into a smaller model)") from None
    if args["class_num"] != cfg.class_num:
        raise ConfigError(f"teacher {path}: it has {args['class_num']} outputs, this run's class_num is "
                          f"{cfg.class_num}; a teacher must score the same classes: "
                          + teacher_way_out(path, program=False))
    check_teacher_classes(path, ckpt.get("classes"), classes)
    trained_at = ckpt_io.trained_image_size(ckpt.get("config"))
    smallest = min(training_sizes(cfg))
    fed = f"{smallest} to {cfg.image_size} (progressive resizing)" if smallest != cfg.image_size else cfg.image_size
    size = (f", trained at image_size {trained_at}, here fed {fed}"
            if trained_at is not None and (trained_at != cfg.image_size or smallest != cfg.image_size) else "")
    which = ckpt_io.weights_note(ckpt, cfg.use_ema)
    # Said with its top-1 on the eval split (teacher_line), which reads high where that split holds images it
    # trained on, as a --pre_trained's is said (helper-426).
    teacher.seen_evaluation_images = seen_evaluation_images(ckpt, path, cfg, "teacher")
    return teacher, f"width_mult {args['width_mult']:g}{size}{'; ' + which if which else ''}", ckpt.get("config") or {}


def teacher_line(accuracy: Dict[str, Any], classes: int) -> str:
    """What the teacher scores on the eval split, said once before training: a teacher near chance there
    (another class order, another input normalisation: a program's cannot be checked) teaches nothing."""
    line = (f"teacher: top-1 {accuracy['top_1']:.4f} top-5 {accuracy['top_5']:.4f} on the eval split "
            f"({plural(accuracy['eval_images'], 'image')})")
    if accuracy["eval_images"] and classes > 1 and accuracy["top_1"] < 2.0 / classes:
        line += (f"\nwarning: the teacher scores little better than chance (1/{classes}) on this data: its classes, "
                 f"their order or its input normalisation may not be this run's")
    if accuracy.get("nonfinite_outputs"):
        line += f"\nwarning: the teacher's outputs are not finite for {accuracy['nonfinite_outputs']} of those images"
    return line


def teacher_way_out(path: str, program: bool) -> str:
    """What to do about teacher ``path`` of other classes than the run's (a refusal's end; a ``program``'s
    weights are not fine-tuned here)."""
    if program:
        return "export one trained on this data set's classes"
    return (f"distil from one trained on this data set's classes (train --pre_trained {path} on this data set "
            f"fine-tunes one: then --teacher that run's checkpoint)")


def check_teacher_classes(path: str, recorded: Any, classes: Optional[List[str]], program: bool = False) -> None:
    """Refuse a teacher whose recorded classes are not this image folder's (``classes``), in the same order."""
    if classes is not None and recorded is not None and list(recorded) != list(classes):
        raise ConfigError(f"teacher {path}: it was trained on the classes {names_text(recorded)}, this data set's "
                          f"are {names_text(classes)}: its outputs would mean other labels; "
                          + teacher_way_out(path, program))


def program_teacher(cfg: Config, path: str, classes: Optional[List[str]], device: torch.device,
                    memory_format: torch.memory_format) -> Tuple[ProgramTeacher, str, Optional[Dict[str, Any]]]:
    """A ``.pt2`` program (``torch.export.save``; ours from ``export --file_format PT2``, or a larger network
    exported elsewhere, timm's say) as a teacher on ``device``, and a few words on it. It is handed the
    run's batches as they are (normalised float (N, 3, image_size, image_size), fewer images where a batch
    lost unreadable files; smaller images early under progressive resizing), so it must take them in
    evaluation mode and answer ``class_num`` logits: checked here on batches of zeros of ``batch_size`` and
    of one image, at the largest and smallest size, under the run's precision, the errors naming the file.
    A run that evaluates also tries the evaluations' batch: one the teacher does not take leaves its
    ``unevaluable`` saying why, and the teacher is then not scored on the eval split before training.
    Its metadata, which a file of ours holds (a foreign one has none), comes back with it."""
    from .onnx_io import ProgramModel

    if not ckpt_io.is_exported_program(path):
        raise ConfigError(f"teacher {path}: not a torch.export program (torch.export.save writes a zip archive "
                          f"with an archive_format entry)")
    program = ProgramModel(path)  # refuses files with pickled entries, and inputs that are not (N, 3, H, W)
    meta, size = program.metadata, cfg.image_size
    how = (" (export --height/--width), or pass its checkpoint" if meta else
           ", or with a dynamic height and width (torch.export.Dim)")
    if program.image_input:
        raise ConfigError(f"teacher {path}: takes uint8 pixels (export --image_input True); a teacher is handed "
                          f"the run's normalised float batches: export it without --image_input")
    if program.image_hw not in (None, (size, size)):
        raise ConfigError(f"teacher {path}: takes {program.image_hw[0]}x{program.image_hw[1]} inputs only, this "
                          f"run's batches are {size}x{size} (image_size): export it at that size{how}")
    smallest = min(training_sizes(cfg))
    if program.image_hw is not None and smallest != size:
        raise ConfigError(f"teacher {path}: takes {size}x{size} inputs only, and progressive resizing feeds it "
                          f"{smallest}x{smallest} and up (image_size_start): export it with a dynamic height and "
                          f"width (torch.export.Dim)" + ("; or pass its checkpoint" if meta else ""))
    if program.fixed_batch is not None:
        raise ConfigError(f"teacher {path}: takes batches of {program.fixed_batch} only; a run's batches can be "
                          f"smaller (unreadable files left out): export it with a dynamic batch (torch.export.Dim"
                          f"{'' if not meta else '; export --file_format PT2 writes one'})")
    training = program.training_ops()
    if training:
        raise ConfigError(f"teacher {path}: was exported in training mode ({', '.join(training)} act on each batch "
                          f"and BatchNorm's statistics would move): call model.eval() before torch.export.export")
    check_teacher_classes(path, meta.get("classes"), classes, program=True)
    # Exported from a timm train.py run's checkpoint: its outputs follow the folder's classes in natural order, which
    # a checkpoint teacher's classifier is put out of (ckpt_io.in_sorted_order); the program's were taken as they
    # came, the student taught each class by another's output.
    natural = None if meta.get("classes") else ckpt_io.natural_order(classes, meta.get(ckpt_io.CLASS_ORDER))
    order = None
    if natural is not None and cfg.class_num >= len(natural):
        order = torch.tensor([natural.index(name) for name in classes] + list(range(len(natural), cfg.class_num)),
                             device=device)
        print0("teacher " + ckpt_io.natural_order_line(path, natural, classes, "its outputs are taken in this order"))
    teacher = ProgramTeacher(program.on_device(device), order).to(memory_format=memory_format).requires_grad_(False)
    precision = resolve_precision(cfg.precision, device)

    def answer(n: int, size: int) -> Any:
        """The teacher's output for ``n`` zero images of ``size``; a failure as an exception's first line."""
        try:
            with torch.no_grad(), engine_autocast(device, precision):
                return teacher(torch.zeros(n, 3, size, size, device=device).to(memory_format=memory_format))
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # a size outside the ranges it was exported for, a device it cannot run on, ...
            raise ConfigError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None

    for n, size in dict.fromkeys([(cfg.batch_size, size), (1, size), (1, smallest)]):
        try:
            out = answer(n, size)
        except ConfigError as e:
            raise ConfigError(f"teacher {path}: fails on a batch of {n} {size}x{size} image(s) ({e})") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, cfg.class_num):
            got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise ConfigError(f"teacher {path}: answers a batch of {n} image(s) with {got}, this run needs "
                              f"({n}, {cfg.class_num}): a teacher must score the run's class_num classes: "
                              + teacher_way_out(path, program=True))
        if not bool(torch.isfinite(out).all()):
            raise ConfigError(f"teacher {path}: its outputs for a batch of zeros are not finite in {precision}"
                              + (": --precision bf16 or fp32" if precision == "fp16" else ""))
    if cfg.eval_interval:  # the evaluations' batches, on which train says what it scores, need not be taken
        n, size = cfg.eval_batch_size or cfg.batch_size, cfg.eval_size
        try:
            out = answer(n, size)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, cfg.class_num):
                teacher.unevaluable = f"it answers them with {getattr(out, 'shape', type(out).__name__)}"
        except ConfigError as e:
            teacher.unevaluable = str(e)
    about = ("a torch.export program of mobilenet-v1 export" if meta else
             f"a torch.export program; its input taken to be normalised as this run's are, by "
             f"{normalisation_text(cfg.normalisation)}")
    trained_at = meta.get("trained_image_size")  # ours, exported at another size than its weights trained at
    if trained_at and trained_at != cfg.image_size:
        about += f", trained at image_size {trained_at}, here fed {cfg.image_size}"
    # Ours record the normalisation their run trained with (build_distiller hands them batches in it).
    return teacher, about, (meta if meta.get("mean") and meta.get("std") else None)


def check_class_num(cfg: Config, loader, evaluates: bool, eval_loader=None) -> None:
    """A data set with more classes than the model has outputs is refused before anything is built or
    written (cross entropy would fail at the first batch, on a GPU as a device assert), and so is an
    evaluation split (``eval_loader``: CIFAR's test file is labelled apart from its training files) with a
    label past them, which no prediction could match: eval refuses such a split, so training's evaluations
    would score the run on images eval will not; a class count far below ``class_num`` gets a note, as
    does evaluation on the training images themselves.

    CIFAR's class count is the format's (10, 100; its names file's where that names fewer, for data of one's
    own): a split whose highest label is below it (a subset) still takes it, since the classes its files
    lack may be in the other split. Too few outputs are told both counts; more than it, the note."""
    found = loader.num_classes
    cifar = is_cifar(cfg.dataset)
    known = data_set_classes(cfg.dataset, loader)
    if loader.classes is not None and not is_cifar(cfg.dataset):
        folder = imagenet_folder(cfg.dataset_path, True)
        where = (plural(found, "class folder")
                 + (f" in {folder}" if folder != cfg.dataset_path else ""))
    else:
        where = f"labels 0..{found - 1} in {loader.labels_in}"
    if found < 2:
        wrapped = wrapped_classes(folder) if loader.classes is not None and not cifar and found == 1 else ""
        raise ConfigError(f"dataset_path {cfg.dataset_path}: it has {where}; a classifier needs two classes or "
                          f"more" + (f"; {wrapped}" if wrapped else ""))
    # Labels that have images: an empty class folder beside one class of images, or a CIFAR file whose records all
    # hold label 2 (labels 0..2), is still one class to learn: every image has the one label, and the evaluations
    # score 1.0 whatever the model does (a file of label 0 alone, or one class folder, was refused above).
    labelled = getattr(getattr(loader, "sampler", None), "all_labels", None)
    present = torch.unique(torch.as_tensor(labelled(), dtype=torch.long)) if labelled else None
    if present is not None and len(present) < 2:
        only = int(present[0]) if len(present) else -1
        name = loader.classes[only] if loader.classes and 0 <= only < len(loader.classes) else f"label {only}"
        held = f"only {name} holds images" if len(present) else "no class holds images"
        raise ConfigError(f"dataset_path {cfg.dataset_path}: it has {where}, of which {held}; a classifier needs "
                          f"images of two classes or more")
    # CIFAR-100's coarse labels (20 superclasses) are not what is read: its fine ones are.
    coarse = (" (CIFAR-100's fine labels are read, not its 20 coarse ones)"
              if cfg.dataset == "cifar100" and cfg.class_num == 20 else "")

    def fits(labels: int) -> str:  # the labels' own count; CIFAR's too where its files lack some of its classes
        return (f"--class_num {labels}" if labels >= known else
                f"--class_num {known} ({cifar_name(cfg.dataset)}'s {'named ' if loader.classes else ''}classes), "
                f"or {labels} for its labels alone")

    images = cfg.dataset == "imagenet2012"  # an image folder, archive or shards, not CIFAR's .bin files
    samples = getattr(loader, "samples", None)  # either image pipeline's (the GPU one's loader holds no dataset)
    empty: List[str] = []
    if images and loader.classes and samples is not None:  # class folders: an empty one is a class all the same
        counts = torch.bincount(torch.as_tensor(sample_labels(samples), dtype=torch.long), minlength=found)
        empty = [loader.classes[i] for i in range(found) if counts[i] == 0]
    if found > cfg.class_num:
        # A class folder without images counts: say which, where one is why the count is over.
        emptied = (f" (of them, {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''} hold"
                   f"{'s' if len(empty) == 1 else ''} no image file: with {'it' if len(empty) == 1 else 'them'} "
                   f"removed, --class_num {found - len(empty)} fits)" if empty else "")
        raise ConfigError(f"class_num {cfg.class_num} is too small for dataset_path {cfg.dataset_path}: it has "
                          f"{where}{emptied}; pass {fits(found)}{coarse}")
    if eval_loader is not None and eval_loader.num_classes > cfg.class_num:
        raise ConfigError(f"class_num {cfg.class_num} is too small for dataset_path {cfg.dataset_path}'s evaluation "
                          f"split: it has labels 0..{eval_loader.num_classes - 1} in {eval_loader.labels_in}, where "
                          f"training's are 0..{found - 1}; pass {fits(eval_loader.num_classes)}{coarse}")
    if empty:
        print0(f"note: dataset_path {cfg.dataset_path}: class folder{'s' if len(empty) > 1 else ''} "
               f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''} hold{'s' if len(empty) == 1 else ''} "
               f"no image file ({', '.join(IMAGE_EXTENSIONS)}); the model has an output for "
               f"{'each' if len(empty) > 1 else 'it'} that nothing trains (remove the folder to leave it out)")
    if images and cfg.class_num > found + 1:
        print0(f"note: class_num {cfg.class_num}: dataset_path {cfg.dataset_path} has {where}; the other outputs are "
               f"never a label (--class_num {found} fits it)")
    if cifar and cfg.class_num > known:  # no background class to allow for, as ImageNet's 1001st
        print0(f"note: class_num {cfg.class_num}: dataset_path {cfg.dataset_path} has {where}, of "
               f"{cifar_name(cfg.dataset)}'s {known} {'named ' if loader.classes else ''}classes; the outputs past "
               f"{known} are never a label (--class_num {known} fits it)")
    if evaluates and images and not cfg.val_split and \
            imagenet_folder(cfg.dataset_path, False) == imagenet_folder(cfg.dataset_path, True):
        print0(f"eval_interval: dataset_path {cfg.dataset_path} has no evaluation folder, so evaluation reads the "
               f"training images; --val_split 0.1 holds out a tenth of each class instead")


def step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of torch's generators at global step ``step`` of process ``rank`` in a run of ``seed``.

    With ``drop_rate`` every step starts from it, so dropout's masks depend on the seed, the rank and the
    step alone, like the data's augmentation: a resumed run (from any step, with any loader: PyTorch's
    DataLoader draws its workers' base seed from the global generator) drops as an uninterrupted one
    would, on every rank (a checkpoint holds rank 0's generators only), and the ranks draw different
    masks (one seed for all would give sample k of every rank's batch the same one)."""
    digest = hashlib.blake2b(f"dropout {seed} {rank} {step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def samples_per_step(cfg: Config, dist: Optional[distributed.Context]) -> int:
    """The job's samples per optimiser step: batch_size x grad_accum_steps x processes."""
    return global_batch(cfg, dist.world_size if dist is not None else 1)


def float32_repr(value: float) -> str:
    """A loss as the seed prints it (a float32, shortest round-trip digits: ``2.1829057``)."""
    return str(np.float32(value))


def epoch_lines(epoch: int, result: EpochResult, before: int = 0) -> List[str]:
    """The seed's two log lines for a finished epoch (``epoch`` counts from 1): the steps it trained (a
    stand-in step of a rank left without a batch trains nothing), ``before`` of them by the run this one
    resumed inside the epoch, and the last loss; then the time per step of the steps this process ran."""
    ms = result.seconds * 1000.0
    return [f"epoch: {epoch} step: {before + result.steps}, loss is {float32_repr(result.last_loss)}",
            f"Epoch time: {ms:.3f}, per step time: {ms / max(result.steps, 1):.3f}"]


def job_losses(result: EpochResult, dist, device: torch.device) -> EpochResult:
    """In a distributed run, the epoch's losses as the job's: its last step's averaged over the ranks
    (as each logged step's is), and the mean over every rank's steps (a stand-in step is in none)."""
    if not dist.enabled:
        return result
    counted = result.steps if result.mean_steps is None else result.mean_steps
    last, total, steps = dist.all_reduce_sum(torch.tensor(  # a rank with no finite loss has a NaN mean: adds 0
        [result.last_loss, result.mean_loss * counted if counted else 0.0, counted], dtype=torch.float64),
        device).tolist()
    return dataclasses.replace(result, last_loss=last / dist.world_size,
                               mean_loss=total / steps if steps else float("nan"))


# The key of an epoch's-end checkpoint saved before that epoch's evaluation (a signal, the unreadable-files
# limit): a resume from it makes the evaluation first.
EVALUATION_LEFT_OUT = "evaluation_left_out"
CPU_HALF_COST = {"fp16": "67x", "bf16": "2.3x"}  # a training step against fp32's on the development CPU


def evaluates_after(cfg: Config, epoch: int) -> bool:
    """Whether the run evaluates after epoch ``epoch`` (1-based): every ``eval_interval`` epochs, and after the last."""
    return bool(cfg.eval_interval) and (epoch % cfg.eval_interval == 0 or epoch == cfg.epoch_size)


def saved_before_data_error(error: DataError, writer: "CheckpointWriter", epoch: int, start: Tuple[int, int],
                            last_path: str, tally: LossTally, cfg: Config, dist, device: torch.device,
                            together: bool = False) -> DataError:
    """The error a run of one process stops with when the loader passes the limit on unreadable files (its
    ``steps_done`` of epoch ``epoch + 1``): the state after those steps saved first, unless the newest checkpoint
    (``last_path``) already holds it or the run trained nothing since it started (at ``start``: epoch, step), so
    that raising --max_bad_samples (or fixing the files) and --resume auto goes on from there rather than from
    an epoch's end that may lie epochs back. (A distributed run checks the job's files at its checkpoints and
    epochs' ends, where every rank stops together, and writes none past the limit.) ``together``: every rank
    raised ``error`` at this point (the job's check after an evaluation), so a distributed run saves too."""
    done = getattr(error, "steps_done", None)
    if not cfg.save_checkpoint or (dist.enabled and not together) or done is None or (epoch, done) <= start:
        return error
    spe = writer.steps_per_epoch
    # 0 steps: the training loop's first batch of epoch ``epoch + 1``, after the epoch before was evaluated (where
    # due); all of them: this epoch's end, before its evaluation.
    owes = done >= spe and evaluates_after(cfg, epoch + 1)
    if done >= spe:  # every step of the epoch trained (the limit passed in its leftover batches): its end,
        epoch, done = epoch + 1, 0  # saved before its evaluation
    at = (f"after step {done} of epoch {epoch + 1}" if done else f"at the end of epoch {epoch}"
          + (" (before its evaluation)" if owes else ""))
    name = ckpt_io.checkpoint_name(epoch + 1, done) if done else ckpt_io.checkpoint_name(epoch, spe)
    then = ("with the files fixed or --max_bad_samples raised, --resume auto continues from it"
            + (", that evaluation first" if owes else ""))
    if os.path.basename(last_path) == name:  # saved there already (save_checkpoint_steps, an epoch's end)
        return DataError(f"{error}\nthe state {at} is the newest checkpoint, {last_path}: {then}")
    try:
        # An epoch's end saved before its evaluation says so, as a signal's does: the resume makes it first.
        extra = ({"epoch_loss": job_tally(tally, dist, device)} if done else
                 {EVALUATION_LEFT_OUT: True} if owes else None)
        path = writer.save(epoch, done, extra=extra)
    except (OSError, ValueError) as e:  # the data's error is the one to report; this one is said beside it
        return DataError(f"{error}\n(the state {at} could not be saved: {e})")
    return DataError(f"{error}\nthe state {at} is saved as {path}: {then}")


class CopyNotWritten(Exception):
    """An epoch's best checkpoint or best-epoch copy (``keep_best_max``) that could not be written (``path``,
    ``reason``), raised alike on every rank, before the epoch's own checkpoint is written."""

    def __init__(self, path: str, reason: str):
        super().__init__(path, reason)
        self.path, self.reason = path, reason


def saved_before_copy_error(error: CopyNotWritten, writer: "CheckpointWriter", epoch: int) -> Exception:
    """The error a run stops with when epoch ``epoch``'s evaluation could not write its copy: the epoch's end
    saved first, marked as before its evaluation (as a signal's is), so that --resume auto, once the folder
    takes files again, makes that evaluation and its copy rather than training the epoch again. Where that save
    fails too, its own error, which says what is intact."""
    path = writer.save(epoch, 0, extra={EVALUATION_LEFT_OUT: True})
    return ckpt_io.CheckpointError(
        f"cannot write checkpoint {error.path}: {error.reason}; training stopped after epoch {epoch}, saved as "
        f"{path} before its evaluation: {ckpt_io.room_advice(error.reason)}, then --resume auto continues "
        f"from it, that evaluation (and its copy) first")


def job_tally(tally: LossTally, dist, device: torch.device) -> Dict[str, Any]:
    """What a checkpoint saved inside an epoch keeps of its loss: the job's sum and steps so far (every
    rank's, summed: every rank saves at the same step), which a resume on another number of processes hands
    to rank 0 alone, and each rank's own (:meth:`LossTally.saved`)."""
    if not dist.enabled:
        return tally.state()
    # Each rank's own sum and steps too (float64, as the tally keeps them), so that a resume on as many
    # processes gives every rank its own tally back and the epoch's mean adds up as the uninterrupted run's
    # (handing the job's sum to rank 0 alone regroups the additions: the mean differed in its 8th digit).
    world = dist.world_size
    own = torch.zeros(2 * world, dtype=torch.float64, device=tally.sum.device)
    own[dist.rank] = tally.sum.double()
    own[world + dist.rank] = float(tally.steps)
    each = dist.all_reduce_sum(own, device).tolist()
    sums, counts = each[:world], [int(c) for c in each[world:]]
    return {"loss_sum": float(sum(sums)), "steps": int(sum(counts)), "rank_loss_sums": sums, "rank_steps": counts}


def training_state(model, optimizer, scaler, epoch: int, step: int, cfg: Config, classes: Optional[List[str]],
                   extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The checkpoint dictionary; ``epoch`` counts completed epochs and ``step`` global steps."""
    state = {
        "format": ckpt_io.FORMAT,
        "model": ckpt_io.unwrap(model).state_dict(),
        "model_args": model_args(cfg),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": epoch,
        "step": step,
        "config": to_dict(cfg),
        "classes": classes,
        "rng": ckpt_io.rng_state(),
    }
    held = held_out_record(cfg.dataset_path, cfg.val_split)
    if held:
        state["held_out"] = held
    # The data as a path from anywhere: config's dataset_path is as given, relative to where the run started,
    # which a resume started elsewhere cannot tell (data_change).
    state[ckpt_io.DATASET_FOLDER] = os.path.abspath(cfg.dataset_path)
    state.update(extra or {})
    return state


def nonfinite_entries(state: Dict[str, Any]) -> List[str]:
    """Names of the model, weight-average and optimiser tensors in a checkpoint dictionary that hold NaN or inf."""
    named = [("", state["model"]), ("ema ", (state.get("ema") or {}).get("model", {}))]
    bad = [prefix + k for prefix, tensors in named for k, v in tensors.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    for pid, entry in state["optimizer"].get("state", {}).items():
        for k, v in entry.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
                bad.append(f"optimizer {k} of parameter {pid}")
    return bad


class CheckpointWriter:
    """Writes a run's training checkpoints: each one complete or not at all (``atomic_save``), never
    one with NaN or infinite tensors; the oldest is pruned only after a new one is complete.

    A checkpoint after ``k`` steps of epoch ``e`` (counting from 1) is ``mobilenetv1-{e}_{k}.ckpt``:
    the seed's ``mobilenetv1-{e}_{steps_per_epoch}.ckpt`` at an epoch's end, MindSpore's numbering of
    mid-epoch saves otherwise. Its ``step`` counts the optimiser steps taken (:class:`checkpoint.GlobalSteps`
    with ``step_offset``)."""

    def __init__(self, cfg: Config, model, optimizer, scaler, guard: NonFiniteGuard, steps_per_epoch: int,
                 classes: Optional[List[str]], folder: Optional[str] = None,
                 dist: Optional[distributed.Context] = None,
                 ema: Optional[WeightAverage] = None, samples_per_step: int = 0, step_offset: int = 0,
                 epoch_end: str = "", recorded: Optional[Dict[str, Any]] = None, source: str = "",
                 resumed: str = ""):
        self.cfg, self.model, self.optimizer, self.scaler, self.guard = cfg, model, optimizer, scaler, guard
        self.ema = ema
        self.recorded = recorded or {}  # entries every checkpoint holds as they are (the teacher's file)
        # The run's checkpoint folder: save_checkpoint_path, or its ckpt_0/ in a distributed run.
        self.folder = cfg.save_checkpoint_path if folder is None else folder
        self.steps_per_epoch, self.classes = steps_per_epoch, classes
        # Rank 0 writes; the other ranks of a distributed run get the path it writes from save(), and stop
        # with it where it cannot.
        self.dist = dist or distributed.Context()
        self.writes = self.dist.is_rank0
        self.samples_per_step = samples_per_step  # recorded: a mid-epoch position counts steps of these
        self.steps = ckpt_io.GlobalSteps(steps_per_epoch, step_offset)
        # The newest checkpoint from an epoch's end, spared by the pruning: a resume at another number of
        # steps per epoch can continue from no other point.
        self.epoch_end = epoch_end
        # The file this run continues from (--resume, or the seed's --pre_trained at pretrain_epoch_size) when it is
        # in the run's folder: a save under its name (the best checkpoint's, resumed from) first keeps it aside,
        # untouched, since the command run again, or the user going back to it, expects what it held.
        self.source = os.path.realpath(source) if source else ""
        self.numbered = False  # whether this run has saved a numbered checkpoint (mobilenetv1-E_S.ckpt)
        self.owed = ""  # a top-E file out of keep_best_max's places, kept while the run continues from it alone
        self.resumed = resumed  # the checkpoint this run resumed from (another folder's, perhaps), or ""
        self.last = ""

    def newest(self) -> str:
        found = ckpt_io.list_checkpoints(self.folder)
        return found[-1][1] if found else "none"

    def save(self, epoch: int, in_epoch: int, name: str = "", extra: Optional[Dict[str, Any]] = None) -> str:
        """Save the state after ``in_epoch`` steps of the epoch that follows ``epoch`` completed ones
        (under ``name`` instead of the numbered one when given, e.g. the best checkpoint)."""
        spe = self.steps_per_epoch
        numbered = not name  # mobilenetv1-E_S.ckpt, not the best's nor a best epoch's
        numbered_end = numbered and in_epoch == 0  # the seed's name of an epoch's end
        if not name:
            name = ckpt_io.checkpoint_name(epoch, spe) if in_epoch == 0 else ckpt_io.checkpoint_name(epoch + 1, in_epoch)
        path = os.path.join(self.folder, name)
        counters = self.guard.sync()  # on every rank (past the limit, it raises alike on every rank)
        self.dist.from_rank0(lambda: self._write(path, epoch, in_epoch, name if numbered_end else "", counters,
                                                 extra), "could not save a checkpoint")
        self.last = path
        if numbered:
            self.numbered = True  # a point of this run's own for --resume auto: the file it continues from may go
            if self.owed and self.writes:
                try:
                    os.unlink(self.owed)
                except FileNotFoundError:
                    pass
                except OSError as e:  # not fatal: one more file stays
                    print(f"warning: could not remove {self.owed}, no longer among the best epochs: {e}",
                          file=sys.stderr)
            self.owed = ""
        if numbered_end:
            self.epoch_end = path
        if self.writes:
            try:
                ckpt_io.prune_checkpoints(self.folder, self.cfg.keep_checkpoint_max, self.epoch_end)
            except OSError as e:  # not fatal: the new checkpoint is complete, an old one merely stays
                print(f"warning: could not remove an old checkpoint in {self.folder}: {e}", file=sys.stderr)
        return path

    def _write(self, path: str, epoch: int, in_epoch: int, epoch_end: str, nonfinite: Dict[str, int],
               extra: Optional[Dict[str, Any]]) -> None:
        """Rank 0's part of :meth:`save`: the checkpoint written whole at ``path`` (an epoch's end names
        itself, ``epoch_end``; ``nonfinite``: the guard's counters, read by :meth:`save`), or an error that
        names it and what is intact."""
        spe = self.steps_per_epoch
        extra = {"step_in_epoch": in_epoch, "steps_per_epoch": spe, "nonfinite": nonfinite,
                 "samples_per_step": self.samples_per_step, "step_offset": self.steps.offset,
                 "epoch_end": epoch_end or os.path.basename(self.epoch_end),
                 **self.recorded, **(extra or {})}
        if self.ema is not None:
            extra["ema"] = self.ema.state_dict()
        state = training_state(self.model, self.optimizer, self.scaler, epoch, self.steps.at(epoch, in_epoch),
                               self.cfg, self.classes, extra)
        bad = nonfinite_entries(state)
        if bad:
            raise NonFiniteError(f"refusing to write checkpoint {path}: {', '.join(bad[:8])}"
                                 f"{' ...' if len(bad) > 8 else ''} hold NaN or infinite values; the last good "
                                 f"state is the newest checkpoint in {self.folder} ({self.newest()})")
        try:
            if self.source and os.path.realpath(path) == self.source and os.path.isfile(path):
                kept = ckpt_io.keep_aside(path)
                self.source = ""
                print0(f"checkpoint: {path}, which this run continues from, is kept as it was in {kept}; "
                       f"the new one takes its name")  # log.txt too: the record a user goes back to
            ckpt_io.atomic_save(state, path)
        except OSError as e:
            where = f"epoch {epoch + 1}, step {in_epoch} of {spe}" if in_epoch else f"the end of epoch {epoch}"
            newest = self.newest()
            then = ("run again with --resume auto, which continues from that one" if newest != "none" else
                    f"run the same command again, which continues from {self.resumed}" if self.resumed else
                    "run again (there is no checkpoint to continue from: it starts from the beginning)")
            error = ckpt_io.CheckpointError(
                f"cannot write checkpoint {path}: {e.strerror or e}; training stopped at {where}. "
                f"The earlier checkpoints in {self.folder} are intact (newest: {newest}); "
                f"{ckpt_io.room_advice(e.strerror or str(e))}, then {then}")
            error.unwritten, error.reason = path, e.strerror or str(e)  # type: ignore[attr-defined]
            raise error from None


def keep_best(writer: "CheckpointWriter", evaluated: Dict[int, float], epoch: int, accuracy: Dict[str, Any],
              n: int) -> None:
    """``keep_best_max``: where ``epoch`` is among the ``n`` best of ``evaluated`` ({epoch: top-1}, its own
    included: :attr:`Evaluations.ranked`; a tie: the earlier epoch), save the state as
    :func:`checkpoint.top_name` (with its figures), then remove the best epochs' checkpoints that fell out
    of the ``n`` (only of epochs whose top-1 this run knows: a file it cannot rank stays). Every rank calls
    it alike: the figures are the job's."""
    kept = {e for e, _ in sorted(evaluated.items(), key=lambda item: (-item[1], item[0]))[:n]}
    if epoch in kept:
        writer.save(epoch, 0, name=ckpt_io.top_name(epoch), extra={"metrics": accuracy})
    if not writer.writes:
        return
    for e, path in ckpt_io.list_top(writer.folder):
        # The top-E file this run continues from stays until the run has a numbered checkpoint of its own: a run
        # killed before one lost the point it started from (helper-293; --resume auto takes numbered files).
        if not writer.numbered and writer.source and os.path.realpath(path) == writer.source:
            if e in evaluated and e not in kept:
                writer.owed = path  # removed at the run's first numbered save (CheckpointWriter.save)
            continue
        if e in evaluated and e not in kept:
            try:
                os.unlink(path)
            except OSError as err:  # not fatal: one more file stays
                print(f"warning: could not remove {path}, no longer among the {n} best epochs: {err}",
                      file=sys.stderr)


@dataclasses.dataclass
class Evaluations:
    """A run's evaluations, judged as they come by everything that depends on them: the best checkpoint
    (an evaluation whose top-1 is above that of every earlier one the folder's mobilenetv1-best.ckpt was
    judged against: ``best_saved``), ``keep_best_max`` (``ranked``: the top-1 of each evaluated epoch that
    holds or may hold a place) and ``--patience`` (``since``: evaluations in a row without a top-1 more
    than ``min_delta`` above ``best``; the run stops at ``patience``, 0: never). An evaluation that met
    non-finite outputs is none of these: it measured a model that is broken somewhere, whatever its count.

    One object, alike on every rank: a continued run's is judged from its history's records on rank 0
    (:meth:`before`) and broadcast, then told what its folder still holds (:meth:`keep_only`)."""
    patience: int = 0
    min_delta: float = 0.0
    best: float = -float("inf")
    best_epoch: int = 0
    since: int = 0
    best_saved: float = -float("inf")
    best_saved_epoch: int = 0
    ranked: Dict[int, float] = dataclasses.field(default_factory=dict)
    last_epoch: int = 0  # the last epoch judged

    def judge(self, epoch: int, accuracy: Dict[str, Any]) -> bool:
        """Count ``epoch``'s evaluation; whether it is the new best checkpoint."""
        self.last_epoch = epoch
        top_1 = accuracy["top_1"]
        finite = not accuracy.get("nonfinite_outputs")
        # More than min_delta above: a gain of exactly it is none, though the float difference of two ratios of
        # counts may round above it (0.8 - 0.7 > 0.1); 12 decimals are far finer than one image of any eval split.
        if finite and round(top_1 - self.best, 12) > self.min_delta:
            self.best, self.best_epoch, self.since = top_1, epoch, 0
        else:
            self.since += 1
        if finite:
            self.ranked[epoch] = top_1
        if finite and top_1 > self.best_saved:
            self.best_saved, self.best_saved_epoch = top_1, epoch
            return True
        return False

    @property
    def exhausted(self) -> bool:
        """Whether ``--patience`` is used up: the run is to stop."""
        return self.patience > 0 and self.since >= self.patience

    def line(self) -> str:
        by = f" by more than {self.min_delta:g}" if self.min_delta else ""
        return (f"top-1 has not improved on {self.best:.4f} (epoch {self.best_epoch}){by} in "
                f"{plural(self.since, 'evaluation')} (patience {self.patience})")

    @classmethod
    def before(cls, patience: int, min_delta: float, run_dir: str, start_epoch: int) -> "Evaluations":
        """A continued run's: the evaluations of epochs up to ``start_epoch`` that ``run_dir``'s
        metrics.jsonl records, judged in order, by this run's rule; none where it is absent (the seed's way to go
        on, from a checkpoint copied there) or cannot be read, which a warning names."""
        evaluations = cls(patience, min_delta)
        try:
            epochs = read_metrics(run_dir, exact=True)["epochs"]  # this run's folder, whatever its ckpt_0/ holds
        except ValueError as e:
            if os.path.isfile(os.path.join(run_dir, METRICS_FILE)):  # damaged, not absent: judged without it
                print(f"warning: {e}: the evaluations it records up to epoch {start_epoch} are left out: the "
                      f"best checkpoint, keep_best_max and --patience judge this run's own from here",
                      file=sys.stderr)
            return evaluations
        records = [r for r in epochs if isinstance(r.get("top_1"), (int, float)) and isinstance(r.get("epoch"), int)
                   and r["epoch"] <= start_epoch]
        for r in sorted(records, key=lambda r: r["epoch"]):
            evaluations.judge(r["epoch"], r)
        return evaluations

    def keep_only(self, best_file: bool, top_epochs: Sequence[int], best_top_1: Optional[float] = None,
                  best_epoch: int = 0) -> None:
        """What the run folder holds once the checkpoints of superseded training moved aside: without
        mobilenetv1-best.ckpt the next evaluation saves a new one, and with it, one above the top-1 it
        records (``best_top_1``, of epoch ``best_epoch`` (0: not recorded)), whether the records' best is below
        it (a run whose metrics.jsonl a full disk cut short saved better ones since) or above it (the file was
        saved after an earlier resume moved a better one aside, and judged against none of those before);
        an epoch whose best-epoch checkpoint (``keep_best_max``) is gone holds no place in the ranking.
        (The epochs ranked below those files cannot rise.)"""
        if not best_file:
            self.best_saved, self.best_saved_epoch = -float("inf"), 0
        elif best_top_1 is not None:
            self.best_saved, self.best_saved_epoch = best_top_1, best_epoch
        there = set(top_epochs)
        self.ranked = {e: t for e, t in self.ranked.items() if e in there}


def best_recorded(folder: str) -> Tuple[bool, Optional[float], int]:
    """Whether ``folder`` holds a mobilenetv1-best.ckpt that loads, and the top-1 and epoch it records (None: no
    top-1 it records; epoch 0: none). A damaged one (cut short, not a checkpoint, unreadable) counts as none, which
    a warning names: the next evaluation saves a new best over it, as into a folder without one."""
    path = os.path.join(folder, ckpt_io.BEST_NAME)
    if not os.path.isfile(path):
        return False, None, 0
    try:
        saved = ckpt_io.load_file(path)
    except (ckpt_io.CheckpointError, OSError) as e:
        print(f"warning: {path} cannot be read ({str(e).splitlines()[0]}): the next evaluation saves a new best "
              f"checkpoint over it", file=sys.stderr)
        return False, None, 0
    top_1, epoch = (saved.get("metrics") or {}).get("top_1"), saved.get("epoch")
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0 else 0
    return True, (float(top_1) if isinstance(top_1, (int, float)) and not isinstance(top_1, bool) else None), epoch


def changes_line(source: str, changed: Dict[str, Tuple[Any, Any]], verb: str = "trained") -> str:
    """A resume's line naming settings (key: (the checkpoint's, this run's)) it continues with changed, which
    ``source``'s run was ``verb`` with."""
    def shown(v: Any) -> str:
        return repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)

    return (f"resume: {source} was {verb} with " + ", ".join(f"{k} {shown(old)}" for k, (old, _) in changed.items())
            + "; continuing with this run's " + ", ".join(f"{k} {shown(new)}" for k, (_, new) in changed.items()))


# Optimiser settings a resumed run takes from its own configuration rather than from the checkpoint.
RESUMED_SETTINGS = ("momentum", "nesterov", "weight_decay", "eps", "trust_coefficient", "trust_clip")


def restore_training_state(ckpt: Dict[str, Any], source: str, model, optimizer, scaler, guard: NonFiniteGuard,
                           ema: Optional[WeightAverage] = None, loss_scale: Optional[float] = None) -> bool:
    """Load a validated training checkpoint into the run's objects (the RNG comes later, just before
    the first step). A run with ``ema`` takes the file's weight average, or starts one at its weights.
    fp16's dynamic loss scale goes on from the file's, unless this run's ``loss_scale`` is another than the
    file's run was given: it starts again there, named (it was kept without a word, config.yaml saying the new).
    Returns whether the file's loss scale goes on (for the resume's line)."""
    ckpt_io.load_weights(model, ckpt_io.model_state(ckpt), source)
    if ema is not None and "ema" in ckpt:
        ema.load_state_dict(ckpt["ema"])
        if ckpt["ema"].get("decay") != ema.decay:
            print0(f"resume: the weight average in {source} was kept with ema_decay {ckpt['ema'].get('decay')}; "
                   f"it continues with this run's {ema.decay}")
    elif ema is not None:
        ema.reset()
        print0(f"resume: {source} holds no weight average (its run had no ema_decay); the average starts "
               f"here from its weights")
    elif "ema" in ckpt:
        print0(f"resume: ema_decay is 0: the weight average in {source} is not continued, and this run's "
               f"checkpoints hold none")
    # How the optimiser runs (fused on CUDA, foreach on the CPU) belongs to this run, not to the file,
    # and goes in before loading: where the state's step counts go follows it (torch's load_state_dict
    # puts them on the parameters' device for a fused group, which fused AdamW on CUDA needs; a CPU run's
    # checkpoint continued on an H200 with SGD, fused AdamW and RMSprop: benchmarks/cross_device_resume.py).
    # So do the configured momentum, nesterov, weight_decay, eps and LARS's trust settings: the run trains
    # with what its configuration (config.yaml, the log) says, which may change them on purpose; the change
    # is named.
    ours = [{k: g[k] for k in ("fused", "foreach") + RESUMED_SETTINGS if k in g} for g in optimizer.param_groups]
    saved = ckpt["optimizer"]
    changed: Dict[str, Tuple[Any, Any]] = {}
    for i, (g, settings) in enumerate(zip(saved["param_groups"], ours)):
        for k in RESUMED_SETTINGS:
            if k in g and k in settings and g[k] != settings[k]:
                # The second group (engine.param_groups) is named where it changed apart from the first:
                # decay_norm_bias switched, say.
                same = i == 0 or changed.get(k) == (g[k], settings[k])
                changed.setdefault(k if same else f"{k} of BatchNorm and biases", (g[k], settings[k]))
    if changed:
        print0(changes_line(source, changed))
    optimizer.load_state_dict({**saved, "param_groups": [{**g, **settings} for g, settings
                                                           in zip(saved["param_groups"], ours)]})
    init_momentum_buffers(optimizer)  # momentum switched on for the resume: the file's state has no buffers
    # The state in its parameters' layout: a run saved without channels_last and resumed with it (or the other way)
    # kept the file's strides (load_state_dict moves device and dtype, not layout), which the multi-tensor kernels'
    # fast path does not take (it needs each parameter's tensors strided alike).
    for p, slots in optimizer.state.items():
        for k, v in slots.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                slots[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
    kept = False
    if scaler.is_enabled() and ckpt["scaler"]:
        state, kept = ckpt["scaler"], True
        given = (ckpt.get("config") or {}).get("loss_scale")
        if (loss_scale is not None and isinstance(given, (int, float)) and not isinstance(given, bool)
                and given != loss_scale):
            print0(changes_line(source, {"loss_scale": (float(given), float(loss_scale))})
                   + f": fp16's dynamic loss scale starts again at {loss_scale:g} (it had come to "
                     f"{float(state.get('scale', given)):g})")
            state, kept = {**state, "scale": float(loss_scale), "_growth_tracker": 0}, False
        scaler.load_state_dict(state)
    guard.load_state_dict(ckpt.get("nonfinite") or {})
    return kept


def schedule_change(ckpt: Dict[str, Any], source: str, cfg: Config, lr: Sequence[float], step: int,
                    batch: int = 0, offset: int = 0) -> str:
    """A line naming how this run's learning-rate schedule differs from that of the run that saved
    ``ckpt`` (its recorded configuration), with the rate each gives the next step (``step``: its index
    in this run's schedule ``lr``; the checkpoint's position in the other's), or "" where none of
    :data:`schedules.SCHEDULE_KEYS` changed nor the factor ``lr_base_size`` puts on the rates (``batch``:
    this run's global batch; the checkpoint records its own). The line names the next step by its global
    number, ``step + 1 + offset`` (``offset``: see :class:`CheckpointWriter`).

    Continuing with another schedule is legitimate (more epochs, a lower peak for a second stage), but
    the rate jumps where the two differ, which a loss curve shows without saying why."""
    recorded = ckpt.get("config") or {}
    if recorded:  # a file from before lr_per_epoch changed its rate every step
        recorded = {"lr_per_epoch": False, "warmup_prefix": True, **recorded}
    theirs_uses = functools.partial(uses, recorded.get("lr_decay_mode", cfg.lr_decay_mode),
                                    recorded.get("warmup_epochs", cfg.warmup_epochs))
    ours_uses = functools.partial(uses, cfg.lr_decay_mode, cfg.warmup_epochs)
    # A key that one of the two schedules does not use is no difference (nor could it be passed back).
    changed = [f"{k} {recorded[k]} -> {getattr(cfg, k)}" for k in SCHEDULE_KEYS
               if k in recorded and recorded[k] != getattr(cfg, k)
               and (k == "lr_decay_mode" or (theirs_uses(k) and ours_uses(k)))]
    batch = batch or samples_per_step(cfg, None)
    # That run's schedule from its recorded keys (a file from before lr_base_size trained at its rates
    # as given), at its own global batch.
    keys = {"lr_base_size": 0, "lr_base_scale": "auto"} if recorded else {}
    keys.update((k, recorded[k]) for k in SCHEDULE_KEYS + ("lr_base_size", "lr_base_scale", "opt") if k in recorded)
    was = dataclasses.replace(cfg, **keys)
    their_batch, ours = int(ckpt.get("samples_per_step") or batch), lr_scale(cfg, batch)
    try:
        theirs_factor = lr_scale(was, their_batch)
    except (TypeError, ValueError, ZeroDivisionError):  # recorded values that make no factor
        theirs_factor = ours
    if theirs_factor != ours:
        was_text, ours_text = apart_texts(theirs_factor, ours)
        changed.append(f"the rates' factor x{was_text} -> x{ours_text} (lr_base_size "
                       f"{was.lr_base_size} -> {cfg.lr_base_size}, global batch {their_batch} -> {batch})")
    if not changed or step >= len(lr):
        return ""
    head = f"resume: the learning-rate schedule differs from that of {source}'s run: " + ", ".join(changed)

    def text(theirs_rate: Optional[float] = None, tail: str = "") -> str:
        # The next step's rate, and that run's beside it (``tail`` its words) in as many digits as tell them apart.
        rates = apart_texts(lr[step], lr[step] if theirs_rate is None else theirs_rate)
        return head + f"; step {step + 1 + offset} trains at {rates[0]}" + (tail + rates[1] if tail else "")

    ours_per_epoch = len(lr) // cfg.epoch_size
    theirs_per_epoch = int(ckpt.get("steps_per_epoch") or 0) or ours_per_epoch
    try:
        theirs = schedule(was, theirs_per_epoch, their_batch)
    except (TypeError, ValueError, ZeroDivisionError):  # a schedule that the recorded values do not make
        return text()
    at = int(ckpt["step"]) - int(ckpt.get("step_offset") or 0)
    if at >= len(theirs):
        return text(theirs[-1], ", where that run's last step trained at ")
    if theirs_per_epoch != ours_per_epoch:  # their steps are not this run's one for one (steps_change says so)
        return text(theirs[at], ", where that run's would train at ")
    # The next step's rate alone said "differs" of two equal rates: a key changed that shapes only steps already
    # taken (lr_init after the warm-up), those within the epoch (lr_per_epoch, at an epoch's start), or the length
    # (epoch_size of exponential, whose rates do not follow it). The steps both have ahead are compared.
    ahead = min(len(lr) - step, len(theirs) - at)
    apart = np.flatnonzero(np.asarray(lr[step:step + ahead], dtype=np.float32) != theirs[at:at + ahead])
    if apart.size and apart[0] == 0:
        return text(theirs[at], ", where that run's would train at ")
    if apart.size:
        first = int(apart[0])
        part = apart_texts(lr[step + first], theirs[at + first])
        return (text() + f", as that run's would; they part at step {step + first + 1 + offset}, which trains at "
                f"{part[0]} where that run's would train at {part[1]}")
    ours_end, theirs_end = len(lr) + offset, step + offset + len(theirs) - at
    if ours_end == theirs_end:  # the same rates to the end: nothing ahead differs
        return ""
    return (f"resume: the learning-rate schedule is that of {source}'s run from step {step + 1 + offset} ("
            + ", ".join(changed) + "), " + (f"which ended at step {theirs_end}; this run goes on to step {ours_end}"
                                            if ours_end > theirs_end else
                                            f"cut short: this run ends at step {ours_end}, that one went on to step "
                                            f"{theirs_end}"))


def steps_change(ckpt: Dict[str, Any], source: str, steps_per_epoch: int, batch: int, lr: Sequence[float],
                 position: int) -> str:
    """A line saying that the run resumes from an epoch's end at another number of steps per epoch
    (another global batch, data set or process count), or "": the schedule goes on from the same
    epoch, at position ``position`` of this run's ``lr``, while the global step counts on from the
    checkpoint's (logs, TensorBoard and ``save_checkpoint_steps`` stay continuous)."""
    theirs = ckpt.get("steps_per_epoch")
    if not theirs or theirs == steps_per_epoch:
        return ""
    their_batch = ckpt.get("samples_per_step")
    rate = f" at {float(lr[position]):.6g}" if position < len(lr) else ""
    return (f"resume: {source} was written at {plural(theirs, 'step')} per epoch"
            + (f" of {their_batch} samples" if their_batch else "")
            + f", this run makes {steps_per_epoch} of {batch}: the schedule continues{rate} from the start of "
              f"epoch {ckpt['epoch'] + 1} (step {position + 1} of this run's), the global step from "
              f"{ckpt['step'] + 1}")


def processes_change(ckpt: Dict[str, Any], source: str, cfg: Config, done_epochs: int, in_epoch: int,
                     steps_said: bool = False) -> str:
    """A line saying that the run resumes on another number of processes than the checkpoint's run trained on
    (the ``device_num`` its configuration records: the world size it ran at), or at another ``batch_size``
    with the same steps (``grad_accum_steps`` making up the global batch: 8 x 2 resumed as 16 x 1), and what
    that changes, or "".
    The same global batch keeps the schedule and the data order (``in_epoch`` steps into the epoch after
    ``done_epochs`` included: its position counts global batches), but without ``sync_bn`` BatchNorm's
    statistics are a process's batch (2 processes of 16 resumed as 1 of 32: 16 images -> 32), so the run is
    not the one that job would have continued; nothing else said so. ``steps_said``: another number of steps
    per epoch was said already (:func:`steps_change`), which another batch size on as many processes is."""
    recorded = ckpt.get("config") or {}
    theirs, their_batch = recorded.get("device_num"), recorded.get("batch_size")
    their_sync = bool(recorded.get("sync_bn", False))
    # sync_bn turned on or off on as many processes (several): each process's batch against the global one
    sync_changed = theirs == cfg.device_num and isinstance(theirs, int) and theirs > 1 and their_sync != cfg.sync_bn
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (theirs, their_batch)) \
            or (theirs == cfg.device_num and (their_batch == cfg.batch_size or steps_said) and not sync_changed):
        return ""  # a file from before the keys, or the same count, batch and sync_bn

    def statistics(processes: int, batch: int, sync: bool) -> Tuple[int, str]:
        if processes == 1:
            return batch, "the one process's batch"
        return (batch * processes, "the global batch, sync_bn") if sync else (batch, "each process's own batch")

    their_accum = recorded.get("grad_accum_steps")
    accum = (f" and grad_accum_steps {their_accum}" if isinstance(their_accum, int)
             and not isinstance(their_accum, bool) and their_accum != cfg.grad_accum_steps else "")
    sync = f" with --sync_bn {their_sync}" if theirs > 1 and their_sync != cfg.sync_bn else ""
    then, then_how = statistics(theirs, their_batch, their_sync)
    now, now_how = statistics(cfg.device_num, cfg.batch_size, cfg.sync_bn)
    where = (f"{plural(in_epoch, 'step')} into epoch {done_epochs + 1}" if in_epoch else
             f"at the end of epoch {done_epochs}")
    text = (f"resume: {source} was written {where} by a run of {plural(theirs, 'process', 'processes')} at "
            f"batch_size {their_batch}, this run has {cfg.device_num} at {cfg.batch_size}: ")
    if then == now:
        text += (f"BatchNorm's training statistics are over {now} images a batch as that run's were ({then_how}; "
                 f"{now_how} here), summed in another order (float rounding)")
    else:
        text += (f"BatchNorm's training statistics are over {now} images a batch ({now_how}) where that run's were "
                 f"over {then} ({then_how}), so it does not go on as that run would have (resume it on "
                 f"{plural(theirs, 'process', 'processes')} at batch_size {their_batch}{accum}{sync} for that)")
    if (cfg.mixup_alpha or cfg.cutmix_alpha) and their_batch != cfg.batch_size:
        text += (f"; mixup and cutmix pair the images of a process's batch, now of {cfg.batch_size} where they were "
                 f"of {their_batch}")
    # The batch augmentations' draws (batch_augment.py: seed, epoch, position, rank) and the dropout masks (seed,
    # rank, step) are a process's own: at another process count they are other draws, not float rounding.
    drawn = [name for name, on in (("random erasing", cfg.random_erase), ("mixup/cutmix", cfg.mixup_alpha
                                    or cfg.cutmix_alpha), ("dropout", cfg.drop_rate)) if on]
    if drawn and theirs != cfg.device_num:
        text += (f"; {' and '.join(drawn)} {'draws' if len(drawn) == 1 else 'draw'} per process, so this run draws "
                 f"otherwise than that run of {plural(theirs, 'process', 'processes')} would have")
    return text


# Training-recipe keys a resume may change (the run then trains with its own), named when it does. (seed,
# aug_repeats and class_balance: from an epoch's end; inside one it would skip or repeat samples, and is refused.)
RECIPE_KEYS = ("image_size", "seed", "drop_rate", "auto_augment", "ra_magnitude", "augmix_severity", "color_jitter",
               "color_jitter_hue", "random_erase", "random_erase_mode", "mixup_alpha", "cutmix_alpha", "mix_prob",
               "mixup_off_epoch", "clip_grad_norm", "use_label_smooth", "label_smooth_factor", "random_flip",
               "vflip", "crop_scale_min", "crop_ratio_min", "crop_ratio_max", "exif_orientation", "antialias",
               "interpolation", "mean", "std", "teacher", "distill_alpha", "distill_temperature", "qat_range_epochs",
               "bce_loss", "bce_target_thresh", "image_size_start", "image_size_ramp", "aug_repeats",
               "class_balance", "bn_momentum")


def recipe_change(ckpt: Dict[str, Any], source: str, cfg: Config) -> str:
    """A line naming the :data:`RECIPE_KEYS` whose values differ from those the checkpoint's run recorded
    (this run trains with its own from here), or "". A key the recorded configuration does not hold (a
    file from before the key) had its default then."""
    recorded = ckpt.get("config") or {}
    if not recorded:
        return ""
    theirs = {k: recorded.get(k, getattr(Config, k)) for k in RECIPE_KEYS}
    ours = {k: getattr(cfg, k) for k in RECIPE_KEYS}
    # The normalisation as the values it stands for ("": the data set's constants).
    for key, then, now in zip(NORMALISATION_KEYS, ckpt_io.trained_normalisation(recorded, cfg.dataset, source),
                              cfg.normalisation):
        theirs[key], ours[key] = channels_text(then), channels_text(now)
    changed = {k: (theirs[k], ours[k]) for k in RECIPE_KEYS if theirs[k] != ours[k]}
    # Distillation's weights where one of the two runs had no teacher: theirs weighed nothing, or ours weigh nothing
    # (a resume adding a teacher said "distill_alpha 0.5" was changed, a value that played no part; helper-426).
    added, ended = bool(ours["teacher"] and not theirs["teacher"]), bool(theirs["teacher"] and not ours["teacher"])
    if added or ended:
        for key in ("distill_alpha", "distill_temperature"):
            changed.pop(key, None)
    if not changed:
        return ""
    return changes_line(source, changed) + (
        f" (a teacher added: distillation from here, at distill_alpha {cfg.distill_alpha:g} and distill_temperature "
        f"{cfg.distill_temperature:g})" if added else " (no teacher: distillation ends here)" if ended else "")


def precision_change(ckpt: Dict[str, Any], source: str, precision: str, loss_scale: float) -> str:
    """A line saying that this run trains in another precision than the session that saved ``ckpt`` did (its
    ``precision_used``: ``precision auto`` is bf16 on a GPU and fp32 on a CPU, so the same configuration can
    change it), and what becomes of fp16's dynamic loss scale, or "". (The resume's line said the loss scale
    continued where the file's was dropped, and named no change.)"""
    then = ckpt.get("precision_used")
    if not isinstance(then, str) or then == precision:
        return ""
    scale = (": the file's fp16 loss scale is not used" if then == "fp16" else
             f": fp16's dynamic loss scale starts at loss_scale {loss_scale:g}" if precision == "fp16" else "")
    return changes_line(source, {"precision": (then, precision)}) + scale


def threads_change(ckpt: Dict[str, Any], source: str, device: torch.device) -> str:
    """A line saying that this CPU run has another number of intra-op threads than the session that saved
    ``ckpt`` (its ``cpu_threads``), or "". The CPU kernels split their sums by thread, so the same step
    rounds otherwise: training-mode BatchNorm's gradients, sums of terms that nearly cancel, differ by up
    to 1.6% after one step at 1 against 2 threads (channels_last; 0.25% in NCHW), and the run drifts apart
    from the one it continues (helper-340). Not a refusal: the run goes on, only not bit for bit."""
    then = ckpt.get("cpu_threads")
    now = torch.get_num_threads() if device.type == "cpu" else None
    if not isinstance(then, int) or now is None or then == now:
        return ""
    return (f"resume: {source} was trained with {plural(then, 'CPU thread')}, this run has {now} "
            f"(torch.get_num_threads(), OMP_NUM_THREADS): float sums round otherwise, so it does not go on bit "
            f"for bit as that run would have; OMP_NUM_THREADS={then} to continue it exactly")


def pipeline_change(ckpt: Dict[str, Any], source: str, cfg: Config, device: torch.device) -> str:
    """A line saying that this image-folder run decodes and augments in another pipeline than the session
    that saved ``ckpt`` (its ``data_pipeline_used``; ``data_pipeline auto`` is gpu with CUDA and cpu without,
    so the same configuration can change it), or "". The two draw the same crop boxes and flips, but their
    bilinear training crops' pixels differ by a few levels (bicubic ones are the same), so the run does not go
    on as that one would have (such a resume used to say that the data and random state continue, naming
    nothing)."""
    then = ckpt.get("data_pipeline_used")
    if then is None:  # a file from before the key: its configuration's setting, where it names one
        then = (ckpt.get("config") or {}).get("data_pipeline")
    if is_cifar(cfg.dataset) or then not in ("cpu", "gpu") or cfg.interpolation == "bicubic":
        return ""
    now = resolved_pipeline(cfg.data_pipeline, device)
    if then == now:
        return ""
    return (changes_line(source, {"data_pipeline": (then, now)})
            + f": the two pipelines' bilinear training crops differ by a few pixel levels, so it does not go on as "
            f"that run would have; --data_pipeline {then} to continue it as it was")


# The keys progressive resizing's sizes follow (schedules.training_size): another epoch_size moves the ramp.
RESIZING_KEYS = ("image_size", "image_size_start", "image_size_ramp", "epoch_size")


def resizing_change(ckpt: Dict[str, Any], source: str, cfg: Config, epoch: int) -> str:
    """A line saying that a resume where either run resizes progressively (``image_size_start``) trains
    ``epoch`` (from 0, the one it continues with) at another size than the checkpoint's run would have, or
    "". More epochs stretch the ramp, so the size can fall back below the one the last epoch trained at
    (4 epochs of 32 to 64 resumed after the second as 8: 32 where that run's would train at 64), which
    only the loss curve would otherwise show; :func:`recipe_change` names the keys, not the sizes."""
    recorded = ckpt.get("config") or {}
    if not recorded or epoch >= cfg.epoch_size:
        return ""
    theirs = {k: recorded.get(k, getattr(Config, k)) for k in RESIZING_KEYS}
    if not (cfg.image_size_start or theirs["image_size_start"]):
        return ""

    def their_size(e: int) -> int:
        if e >= theirs["epoch_size"]:  # past that run's last epoch: its final size
            return int(theirs["image_size"])
        return training_size(int(theirs["image_size"]), int(theirs["image_size_start"]),
                             float(theirs["image_size_ramp"]), e, int(theirs["epoch_size"]))

    try:
        then, last = their_size(epoch), their_size(epoch - 1) if epoch else None
    except (TypeError, ValueError, ZeroDivisionError):  # recorded values that make no schedule
        return ""
    now = training_size(cfg.image_size, cfg.image_size_start, cfg.image_size_ramp, epoch, cfg.epoch_size)
    if now == then:
        return ""
    changed = [f"{k} {theirs[k]} -> {getattr(cfg, k)}" for k in RESIZING_KEYS if theirs[k] != getattr(cfg, k)]
    return (f"resume: progressive resizing's sizes differ from those of {source}'s run: " + ", ".join(changed)
            + f"; epoch {epoch + 1} trains at image_size {now}, where that run's would train at {then}"
            + (f" (its epoch {epoch} trained at {last})" if last is not None else ""))


def seen_evaluation_images(source: Dict[str, Any], path: str, cfg: Config, option: str = "pre_trained") -> str:
    """A note where the run evaluates on a share of its training folder (``val_split``) larger than the one
    ``pre_trained`` ``source``'s run held out of the same folder (none: it trained on all of it): the share held
    out is the images of lowest hashes (:func:`data.held_out`), so the larger one can hold images ``source``
    trained on (a class of a few images holds out one at either share), and the run's top-1 then reads high; or
    "". ``option``: the key ``source`` was given by (a ``teacher``'s top-1 reads high alike)."""
    recorded = source.get("config") if isinstance(source.get("config"), dict) else {}
    if cfg.dataset != "imagenet2012" or not cfg.val_split or not cfg.eval_interval \
            or recorded.get("dataset") != "imagenet2012" or not isinstance(recorded.get("dataset_path"), str):
        return ""
    held = source.get("held_out") if isinstance(source.get("held_out"), dict) else {}
    share = held.get("val_split") if isinstance(held.get("val_split"), float) else 0.0
    theirs = held.get("folder") if isinstance(held.get("folder"), str) else ckpt_io.trained_data_path(source)
    if cfg.val_split <= share or not same_folder(theirs, cfg.dataset_path):
        return ""
    return (f"{option}: note: {path} trained on this folder's images "
            + (f"but the val_split {share:g} its run held out" if share else "(its run held none out)")
            + f"; this run's evaluation share, val_split {cfg.val_split:g}, can hold images it trained on (in classes "
              f"large enough to hold out more), and its top-1 then reads high"
            + (f" (--val_split {share:g} or less evaluates on images it never saw)" if share else
               " (evaluate on images it never saw: an evaluation folder of their own)"))


def data_change(ckpt: Dict[str, Any], source: str, cfg: Config, done_epochs: int, in_epoch: int) -> str:
    """A line naming another ``dataset_path`` than the checkpoint's run read (the data moved, or other data of
    the same kind, which the classes and the steps per epoch checked do not tell apart), or "". Compared as
    the paths were where each run started (``dataset_folder``; a file of before it, or one whose folder is not
    here: as written, from here)."""
    was = (ckpt.get("config") or {}).get("dataset_path")
    theirs = ckpt_io.trained_data_path(ckpt) if isinstance(was, str) and was else None
    if theirs is None or same_folder(theirs, cfg.dataset_path):
        return ""
    now = cfg.dataset_path
    if theirs != was and not (os.path.isabs(was) and os.path.isabs(now)):  # relative: said from where they began
        was, now = theirs, os.path.abspath(now)
    return (changes_line(source, {"dataset_path": (was, now)}, "trained")
            + (f": the rest of epoch {done_epochs + 1} takes the samples its order had left after step {in_epoch} "
               f"from this folder by their numbers (the same ones only if it holds the same data)" if in_epoch
               else ": the epochs from here read it"))


def evaluated_before(ckpt: Dict[str, Any], run_dir: str) -> bool:
    """Whether the run that saved ``ckpt`` evaluated at or before its epoch: the evaluations ``run_dir``'s
    metrics.jsonl records (as :meth:`Evaluations.before` reads them), or, without them (a checkpoint copied
    elsewhere), its configuration's every eval_interval epochs and the last, from the epoch it started at."""
    recorded = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    done = ckpt.get("epoch") if isinstance(ckpt.get("epoch"), int) and not isinstance(ckpt.get("epoch"), bool) \
        else None
    try:
        epochs = read_metrics(run_dir, exact=True)["epochs"] if run_dir else []
    except ValueError:
        epochs = []
    if epochs:
        return any(isinstance(r.get("top_1"), (int, float)) and isinstance(r.get("epoch"), int)
                   and (done is None or r["epoch"] <= done) for r in epochs)
    interval, last = recorded.get("eval_interval", Config.eval_interval), recorded.get("epoch_size")
    first = recorded.get("pretrain_epoch_size", 0)
    if not isinstance(interval, int) or interval <= 0:
        return False
    if done is None or not isinstance(first, int):
        return True
    return any(e % interval == 0 or e == last for e in range(first + 1, done + 1))


def evaluation_change(ckpt: Dict[str, Any], source: str, cfg: Config, run_dir: str = "") -> str:
    """A line saying that a run which evaluates continues with another evaluation size (``eval_image_size``,
    else ``image_size``) or, for an image folder, ``crop_pct`` than the checkpoint's run evaluated with: its
    earlier top-1 figures, the best checkpoint's among them, were measured otherwise; a line naming another
    ``patience`` (or ``patience_min_delta`` where both runs stop early), by which the earlier evaluations are
    counted now; or ""."""
    recorded = ckpt.get("config") or {}
    if not recorded or not cfg.eval_interval:
        return ""
    size = ckpt_io.recorded_image_size(recorded)
    changed = {}
    if size is not None and size != cfg.eval_size:
        changed["evaluation image size"] = (size, cfg.eval_size)
    crop = recorded.get("crop_pct", Config.crop_pct)
    if cfg.dataset == "imagenet2012" and isinstance(crop, (int, float)) and crop != cfg.crop_pct:
        changed["crop_pct"] = (crop, cfg.crop_pct)
    # --patience judges the whole history by this run's settings (Evaluations.before): named where they differ.
    judged = {k: (recorded.get(k, getattr(Config, k)), getattr(cfg, k)) for k in ("patience", "patience_min_delta")}
    judged = {k: (was, now) for k, (was, now) in judged.items() if was != now
              and (k == "patience" or (cfg.patience and recorded.get("patience", Config.patience)))}
    # None before the checkpoint: nothing measured otherwise, nothing to count towards patience.
    evaluated = evaluated_before(ckpt, run_dir)
    lines = []
    if changed and evaluated:
        lines.append(changes_line(source, changed, "evaluated")
                     + ": the top-1 of its earlier evaluations, the best checkpoint's among them, were measured "
                       "otherwise, and a new best is judged against them")
    if judged and evaluated:
        lines.append(changes_line(source, judged)
                     + (": its evaluations so far count towards this run's patience" if cfg.patience else
                        ": the run does not stop early"))
    return "\n".join(lines)


def resumed_names(recorded: Any, names: Optional[List[str]], source: str,
                  outputs: int) -> Tuple[Optional[List[str]], str]:
    """A CIFAR run's class names on a resume from ``source``, and a line where it has to say which: those of
    the data set's names file (``names``), else those ``source`` recorded (``recorded``; those of its
    ``outputs``). Other names than recorded are only other names: CIFAR's labels are the numbers in its files."""
    recorded = list(recorded)[:outputs] if isinstance(recorded, list) and recorded else None
    if recorded is None or names is None or list(names) == recorded:
        return names or recorded, ""
    return names, (f"resume: {source} recorded the class names {names_text(recorded)}, the data set's names file "
                   f"says {names_text(names)}: its checkpoints record those from here (the labels, the numbers in "
                   f"its .bin files, are as they were)")


def find_resume(cfg: Config, model, optimizer, steps_per_epoch: int, run_dir: str,
                dist: Optional[distributed.Context] = None, classes: Optional[List[str]] = None,
                train_samples: Optional[int] = None) -> Tuple[str, Optional[Dict[str, Any]], Tuple[int, int]]:
    """The checkpoint ``--resume`` names (``auto``: the newest valid one in the run's checkpoint folder
    ``run_dir``; a folder: its newest valid one; a file: that one), validated against this run. Prints
    which one and why newer ones were passed over. Returns ("", None, (0, 0)) when ``auto`` finds no
    checkpoint. In a distributed run rank 0 chooses and every rank loads the file it chose.

    After a torchrun restart (``dist.restarted``), which runs the same command line again, a file or
    folder named by ``--resume`` gives way to a valid checkpoint in ``run_dir`` further on, one this job
    saved before the restart; going back would throw that work away. (What ``run_dir`` held after the
    point a run resumed from was moved aside when it started: :func:`checkpoint.move_superseded`.)"""
    def validate(ckpt: Dict[str, Any], path: str) -> Tuple[int, int]:
        args = ckpt.get("model_args") or {}
        trained = (bool(args.get("qat")), bool(args.get("qat_reduce_range")))
        if trained != (cfg.qat, cfg.qat_reduce_range):
            # The same tensors either way for a change of weight grid: it would go on silently.
            raise ckpt_io.CheckpointError(
                f"checkpoint {path}: its run trained with qat {trained[0]}, qat_reduce_range {trained[1]}; this run "
                f"with qat {cfg.qat}, qat_reduce_range {cfg.qat_reduce_range} (pass those of the checkpoint to "
                f"continue it; --pre_trained starts another run from its weights)")
        recorded = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
        trained_on = recorded.get("dataset", cfg.dataset)  # files from before the key: not told
        if trained_on != cfg.dataset:
            # CIFAR binaries and an image folder give labels alike: it would go on, on other images, silently.
            where = recorded.get("dataset_path")
            raise ckpt_io.CheckpointError(
                f"checkpoint {path}: its run trained on dataset {trained_on}"
                + (f" ({where})" if isinstance(where, str) and where else "")
                + f", this run on dataset {cfg.dataset} ({cfg.dataset_path}): another data set (pass --dataset "
                  f"{trained_on} and its dataset_path to continue it; --pre_trained starts another run from its "
                  f"weights)")
        width = args.get("width_mult", cfg.width_mult)
        if (isinstance(width, (int, float)) and not isinstance(width, bool) and width > 0
                and layer_specs(width) != layer_specs(cfg.width_mult)):
            # Every layer's shape differs: said in one line, not as each tensor's (and its momentum's) shape.
            raise ckpt_io.CheckpointError(
                f"checkpoint {path}: its run trained a network of width_mult {width:g}, this run one of width_mult "
                f"{cfg.width_mult:g} (pass --width_mult {width:g} to continue it)")
        classes_trained = args.get("class_num", cfg.class_num)
        named = ckpt.get("classes")
        if (isinstance(classes_trained, int) and not isinstance(classes_trained, bool)
                and classes_trained != cfg.class_num
                # the data's classes changed (a folder added): the class list's check says that, the cause
                and (classes is None or not isinstance(named, list) or list(named) == list(classes))):
            # Said as the option, not as the classifier's and its momentum's shapes (helper-291).
            raise ckpt_io.CheckpointError(
                f"checkpoint {path}: its run trained a network of class_num {classes_trained}, this run one of "
                f"class_num {cfg.class_num} (pass --class_num {classes_trained} to continue it; --pre_trained starts "
                f"another run from its weights, its classifier left out)")
        padded = args.get("padding", cfg.padding)  # files from before the key: not told
        if padded != cfg.padding:
            # The same tensors too, another network: its outputs differ at every stride-2 layer.
            raise ckpt_io.CheckpointError(
                f"checkpoint {path}: its run trained with padding {padded}, this run with padding {cfg.padding} "
                f"(pass --padding {padded} to continue it; --pre_trained starts another run from its weights)")
        return ckpt_io.validate_training_checkpoint(ckpt, path, model, optimizer, steps_per_epoch, classes,
                                                    check_ema=cfg.ema_decay > 0,
                                                    samples_per_step=samples_per_step(cfg, dist),
                                                    val_split=cfg.val_split, opt=cfg.opt,
                                                    freeze_layers=cfg.freeze_layers, seed=cfg.seed,
                                                    aug_repeats=cfg.aug_repeats, class_balance=cfg.class_balance,
                                                    train_samples=train_samples)

    if dist is None:
        return _choose_resume(cfg, run_dir, validate, 0)
    # The run folder and --resume may differ by machine (the same storage mounted elsewhere): each rank loads rank
    # 0's choice under its own.
    found = dist.file_from_rank0(lambda: _choose_resume(cfg, run_dir, validate, dist.restarted),
                                 "could not choose a checkpoint to resume from",
                                 [run_dir] + ([cfg.resume] if cfg.resume != "auto" else []),
                                 path_of=lambda found: found[0])
    if dist.is_rank0:
        chosen, ckpt, position = found  # rank 0 loaded and validated it while choosing
    else:
        chosen, ckpt, position = found, None, (0, 0)  # the other ranks: the path alone
    if not chosen and cfg.resume:
        # Rank 0 found no checkpoint to continue: a machine whose own run folder holds some reads another folder
        # than rank 0's (a disk of its own), and the job started afresh beside that run without a word (with c10d
        # rendezvous rank 0 lands on either machine from one launch to the next).
        folder = (run_dir if cfg.resume == "auto" else
                  ckpt_io.run_folder(cfg.resume) if os.path.isdir(cfg.resume) else "")
        try:
            numbered = ckpt_io.list_checkpoints(folder) if folder else []
            newest = os.path.basename(numbered[-1][1]) if numbered else "none"
        except OSError as e:
            newest = f"unreadable ({e.strerror or e})"
        dist.check_same({"newest checkpoint in the run folder": newest}, "run folders to resume from",
                        "every machine must read the same run folder: put save_checkpoint_path on storage they "
                        "share")
    if chosen:  # on every rank alike: rank 0's choice
        def load() -> Tuple[Dict[str, Any], Tuple[int, int]]:
            if dist.is_rank0:
                return ckpt, position
            loaded = ckpt_io.load_file(chosen)
            return loaded, validate(loaded, chosen)

        # Each rank reads its own copy: one that is missing or damaged on a machine stops every rank, named.
        ckpt, position = dist.on_every_rank(load, "cannot resume from the checkpoint rank 0 chose")
        # The same file on every rank: machines that read the run folder from disks of their own could each
        # load another run's checkpoint of that name (helper-114: the job ended with "replicas differ").
        dist.check_same({"weights": distributed.state_digest(ckpt_io.model_state(ckpt))[:16]},
                        f"checkpoints at {chosen}", "every machine must read the same run folder: put "
                        "save_checkpoint_path on storage they share")
    return chosen, ckpt, position


def _choose_resume(cfg: Config, run_dir: str, validate: Callable[[Dict[str, Any], str], Tuple[int, int]],
                   restarted: int) -> Tuple[str, Optional[Dict[str, Any]], Tuple[int, int]]:
    """:func:`find_resume`'s choice, made in one process."""
    if cfg.resume == "auto" or os.path.isdir(cfg.resume):
        folder = run_dir if cfg.resume == "auto" else ckpt_io.run_folder(cfg.resume)
        path, ckpt, position, passed = ckpt_io.find_resume_checkpoint(folder, validate)
        for _, why in passed:
            print0(f"resume: passed over {why}")
        if path is None and passed:
            raise ckpt_io.CheckpointError(
                f"resume {cfg.resume}: "
                + (f"none of the {len(passed)} checkpoints in {folder} can continue this run (each is named above "
                   f"with what is wrong); move them away" if len(passed) > 1 else
                   f"the one checkpoint in {folder} cannot continue this run: {passed[0][1]}; or move it away")
                + " to start afresh")
    else:
        ckpt_io.check_given(cfg.resume, "--resume")
        path, ckpt = cfg.resume, ckpt_io.load_file(cfg.resume)
        position = validate(ckpt, cfg.resume)
    if restarted and cfg.resume != "auto" and os.path.isdir(run_dir):
        own, saved, further, _ = ckpt_io.find_resume_checkpoint(run_dir, validate)
        if own is not None and own != path and (path is None or further > position):
            print0(f"resume {cfg.resume}: torchrun restart {restarted}: {own}, saved by this job since it "
                   f"started, is further on")
            return own, saved, further
    if path is None and cfg.resume != "auto":
        # A folder named that this run never writes (the data set's, the folder above the run folders, a slip)
        # gains no checkpoint from it: "yet" holds only for the run's own folder, relaunched (helper-390).
        if not resumes_own_folder(cfg) and os.path.realpath(folder) != os.path.realpath(run_dir):
            instead = ckpt_io.instead_in(folder)  # a checkpoint not numbered, run folders below it: as eval says
            raise ckpt_io.CheckpointError(
                f"--resume {cfg.resume}: no checkpoint in {folder}, which is not this run's folder "
                f"(save_checkpoint_path {cfg.save_checkpoint_path}){instead}{'; or' if instead else ':'} name a run "
                f"folder or a checkpoint to continue, or --resume auto (or no --resume) to start in "
                f"{cfg.save_checkpoint_path}")
    if path is None:
        print0(f"resume {cfg.resume}: no checkpoint in {folder} yet, starting from the beginning")
        return "", None, (0, 0)
    return path, ckpt, position


def restore_moments(cfg: Config, source: Dict[str, Any], model, optimizer, skipped: List[str],
                    steps_per_epoch: int, say: Callable[[str], Any] = print0) -> None:
    """A seed training checkpoint's Momentum buffers (or ours, read as such) go into the SGD state when the run
    continues (``pretrain_epoch_size`` > 0); a run from epoch 0 starts with fresh buffers. Each line goes to ``say``."""
    step = source.get("global_step")
    at = f" (its global_step {step})" if step is not None else ""
    if cfg.pretrain_epoch_size == 0:
        say(f"pre_trained: momentum buffers{at} left out: pretrain_epoch_size is 0, a fresh run")
        return
    if cfg.opt != "momentum":
        say(f"pre_trained: momentum buffers{at} left out: they are the seed's Momentum optimiser's, this run's "
            f"is {cfg.opt}, whose state starts afresh")
    elif cfg.momentum == 0:  # SGD without momentum keeps no buffer: restored, they would be read by nothing
        say(f"pre_trained: momentum buffers{at} left out: momentum is 0, so SGD keeps none")
    else:
        count = mindspore_io.load_momentum(optimizer, model, source["moments"], cfg.pre_trained, skip=skipped)
        say(f"pre_trained: momentum buffers of {count} parameters restored{at}"
            + (" (the frozen layers' left out)" if cfg.freeze_layers else "")
            + f"; continuing at epoch {cfg.pretrain_epoch_size + 1}")
    # About the schedule, not the buffers: said whether or not they were restored.
    if step is not None and step != cfg.pretrain_epoch_size * steps_per_epoch:
        say(f"pre_trained: note: global_step {step} is not pretrain_epoch_size {cfg.pretrain_epoch_size} x "
            f"{plural(steps_per_epoch, 'step')} per epoch here; the schedule continues at step "
            f"{cfg.pretrain_epoch_size * steps_per_epoch}")


def saved_in(path: str, folder: str) -> bool:
    """Whether checkpoint ``path`` (a file, or a run folder: its newest) is one of ``folder``'s, by real path."""
    where = path if os.path.isdir(path) else os.path.dirname(path)
    return os.path.realpath(where) == os.path.realpath(folder)


def resumes_own_folder(cfg: Config) -> bool:
    """Whether ``--resume`` continues the run of ``save_checkpoint_path``: ``auto``, or that folder named (itself
    or its ``ckpt_0/``, or a checkpoint in either), which goes on in the layout its checkpoints are in, as ``auto``
    does (it left the other layout's later files beside this run's, a folder eval and info refuse; helper-241)."""
    if cfg.resume == "auto":
        return True
    if not cfg.resume or not os.path.exists(cfg.resume):
        return False
    folder = cfg.resume if os.path.isdir(cfg.resume) else os.path.dirname(os.path.abspath(cfg.resume))  # a file's
    base = cfg.save_checkpoint_path
    return os.path.realpath(folder) in (os.path.realpath(base),
                                        os.path.realpath(os.path.join(base, ckpt_io.DISTRIBUTED_SUBFOLDER)))


def continues_here(cfg: Config, out_dir: str, resumed_from: str, pre_trained: str) -> bool:
    """Whether the run folder's records before this run's start are its history: resumed from a
    checkpoint of the folder, or (the seed's way to go on) started at ``pretrain_epoch_size`` from
    ``pre_trained`` weights saved there (the file ``--pre_trained`` names, a run folder's newest)."""
    if resumed_from:
        return saved_in(resumed_from, out_dir)
    return bool(pre_trained) and cfg.pretrain_epoch_size > 0 and saved_in(pre_trained, out_dir)


def continued_step_offset(source: Dict[str, Any], start_epoch: int, steps_per_epoch: int) -> int:
    """The ``step_offset`` of a run that continues its folder's history from ``source``, the folder's checkpoint
    of the end of epoch ``start_epoch`` (the seed's way to go on, ``pretrain_epoch_size``): the global step counts
    on from the file's, as a resume's does. At another number of steps per epoch the count would otherwise go
    back: the history's records of the epochs before this run (the last one's, its evaluation among them) were
    taken for superseded ones, and the checkpoints' steps went back. 0 for a file that records no step (the
    seed's) or not that epoch's end (the count then starts at the schedule's position, as it always did)."""
    step, epoch = source.get("step"), source.get("epoch")
    if (isinstance(step, int) and not isinstance(step, bool) and epoch == start_epoch
            and not source.get("step_in_epoch")):
        return step - start_epoch * steps_per_epoch
    return 0


def evaluate_accuracy(model, loader, device: torch.device, precision: str,
                      dist: Optional[distributed.Context] = None,
                      stopper: Optional[StopRequest] = None) -> Dict[str, float]:
    """Top-1/top-5 over the eval split during training (the model is left in eval mode). Distributed,
    each rank evaluates its shard and the counts are summed; the plain module runs, not DDP, whose
    forward would wait for the other ranks at every batch (their shards may differ by one batch).
    With ``stopper``, a signal this process received ends its evaluation after the batch under way
    (:meth:`StopRequest.heard`, no collective): the counts are still summed once on every rank, and the
    caller drops what they give. Distributed, a rank whose shard is done (or that heard a signal) waits
    for the others, which may still evaluate: :meth:`StopRequest.hold`, so that a signal arriving while
    it waits is not taken for a dead peer's silence, which the watchdog would end the process on."""
    if stopper is not None:
        stopper.release()  # a hold from an evaluation just before (the weight average's): the grace runs again
    counts = evaluate(ckpt_io.unwrap(model), loader, device, precision,
                      stop=stopper.heard if stopper is not None else None)
    if dist is not None:
        if dist.enabled and stopper is not None:
            stopper.hold()
        counts = dist.all_reduce_counts(counts, device)
        dist.check_bad_samples(loader)  # the job's unreadable files against the limit, on every rank alike
    total = max(counts["total"], 1)
    out = {"top_1": counts["top_1_correct"] / total, "top_5": counts["top_5_correct"] / total,
           "eval_images": counts["total"]}
    if counts["nonfinite"]:
        out["nonfinite_outputs"] = counts["nonfinite"]
    return out


def run_in_data(folder: str, given: str, *loaders: Any) -> str:
    """Why the run folder ``folder`` (``save_checkpoint_path`` ``given``) may not be where it is, or "": inside a
    split folder the run reads (a folder of class folders, of class archives or shards, a flat folder of
    images), it became a class of its own at the next read, or changed what the folder holds: the run could be
    neither resumed nor evaluated on that data ("class_num 3 is too small ... run1 holds no image file"). eval,
    predict, quantize and recalibrate-bn refuse their outputs there too. Inside a class folder (among its images,
    no image itself), in a hidden folder, or beside the splits (P/runs beside P/train) it is read by none."""
    from .archive import is_archive, is_hidden_name

    run = os.path.realpath(folder)
    for loader in loaders:
        root = getattr(loader, "root", None)
        if not isinstance(root, str) or not os.path.isdir(root) or is_archive(root):
            continue
        split = os.path.realpath(root)
        if run != split and not run.startswith(split.rstrip(os.sep) + os.sep):
            continue
        first = os.path.relpath(run, split).split(os.sep)[0]
        if run != split and (first in (getattr(loader, "classes", None) or ()) or is_hidden_name(first)):
            continue
        where = f"is {root}" if run == split else f"is inside {root}"
        return (f"save_checkpoint_path {given} {where}, the folder the run reads its images from: the folders it "
                f"makes there would be read as classes (a resume or an evaluation of that data would fail on them); "
                f"put it elsewhere (runs/...); nothing was trained or written")
    return ""


def epoch_steps(cfg: Config, loader: Any, sharded: bool) -> int:
    """The optimiser steps of an epoch of ``loader`` (``sharded``: one process's shard of a job's data): a step
    takes grad_accum_steps batches, and those left over at an epoch's end (fewer) are not trained on. A data set
    that makes none is refused, with the batch that would train (train's and lr-schedule's count)."""
    steps = len(loader) // cfg.grad_accum_steps
    if steps == 0:
        most = loader.num_samples // cfg.grad_accum_steps
        raise ValueError(
            f"dataset_path {cfg.dataset_path}: {loader.num_samples} training samples"
            f"{' a process' if sharded else ''} make no full batch of batch_size {cfg.batch_size}"
            + (f" x grad_accum_steps {cfg.grad_accum_steps}" if cfg.grad_accum_steps > 1 else "")
            + (f"; --batch_size {most} or less trains (a batch and a learning rate for a small folder: "
               f"README, Fine-tuning)" if most >= 2 else ""))  # a batch of 1 does not train
    return steps


def data_seen(*loaders: Any) -> Dict[str, Any]:
    """What the processes of a job must see alike in their data (:meth:`distributed.Context.check_same`): each
    split's image count, its classes (their count and a digest of their names) and its images' labels in order
    (a digest: an image moved to another class folder on one machine kept the counts and the names, and was
    trained there under another label, without a word)."""
    seen: Dict[str, Any] = {}
    for name, loader in zip(("training", "evaluation"), loaders):
        if loader is not None:
            # A class folder's name that is not UTF-8 holds surrogates (os.fsdecode): its bytes as the folder has them
            names = "\n".join(map(str, loader.classes or [])).encode("utf-8", "surrogateescape")
            seen[f"{name} images"] = loader.sampler.size
            seen[f"{name} classes"] = f"{loader.num_classes} ({hashlib.sha256(names).hexdigest()[:12]})"
            labels = torch.as_tensor(loader.sampler.all_labels(), dtype=torch.int64).cpu().numpy()
            seen[f"{name} images' labels"] = hashlib.sha256(labels.tobytes()).hexdigest()[:12]
    return seen


def check_same_data(dist: distributed.Context, *loaders: Any) -> None:
    """:meth:`distributed.Context.check_same` on :func:`data_seen` (a collective: every rank or none); where the
    ranks' data differ, the refusal names up to 3 classes of a split whose images differ between rank 0 and
    another rank, their counts, and up to 3 images (paths under the split's folder, or CIFAR records) one of
    them holds alone. It named counts and digests only: which class or file a machine lacked was the user's to
    find among a million (helper-383)."""
    try:
        dist.check_same(data_seen(*loaders), "data")
    except distributed.DistributedError as error:
        raise dist.alike(distributed.DistributedError(f"{error}{data_differences(dist, *loaders)}")) from None


def _class_name(name: Optional[str]) -> str:
    return "unnamed" if name is None else repr(name)


def data_differences(dist: distributed.Context, *loaders: Any) -> str:
    """Where the ranks' splits differ, label by label (:func:`check_same_data`), each label named by its class
    (rank 0's name, else the other rank's); two collectives a split, the same on every rank (each decides from what
    every rank sent). Where every label holds the same images on every rank, the class names that differ, if any;
    "" otherwise (a label order alone)."""
    def by_label(loader) -> Dict[int, List[str]]:
        names, labels = loader.split_names(), torch.as_tensor(loader.sampler.all_labels()).tolist()
        grouped: Dict[int, List[str]] = {}
        for name, label in zip(names, labels):
            grouped.setdefault(int(label), []).append(name)
        return grouped

    said = []
    for split, loader in zip(("training", "evaluation"), loaders):
        if loader is None:
            continue
        grouped = by_label(loader)
        everyone = dist.gather_objects(({c: (len(v), hashlib.sha256("\n".join(sorted(v)).encode(
            "utf-8", "surrogateescape")).hexdigest()) for c, v in grouped.items()}, list(loader.classes or [])))
        counts = [sent[0] for sent in everyone]

        def shown(label: int, rank: int) -> str:
            named = next((sent[1][label] for sent in (everyone[0], everyone[rank]) if label < len(sent[1])), None)
            return f"class {named}" if named is not None else f"label {label}"

        pairs = [(rank, c) for rank in range(1, len(everyone)) for c in sorted(set(counts[0]) | set(counts[rank]))
                 if counts[0].get(c) != counts[rank].get(c)][:3]
        # each named pair's names, from the two ranks it compares (the same lists on every rank)
        wanted = {c for _, c in pairs}
        theirs = dist.gather_objects({c: grouped.get(c, []) for c in wanted})
        for rank, c in pairs:
            mine, other = set(theirs[0][c]), set(theirs[rank][c])
            alone = ([f"{n} on rank 0 alone" for n in sorted(mine - other)]
                     + [f"{n} on rank {rank} alone" for n in sorted(other - mine)])[:3]
            said.append(f"{split} {shown(c, rank)}: {counts[0].get(c, (0,))[0]} images on rank 0, "
                        f"{counts[rank].get(c, (0,))[0]} on rank {rank}"
                        + (f" ({', '.join(alone)})" if alone else ""))
        if not pairs:  # the same images under every label: the names of the classes may differ
            for rank in range(1, len(everyone)):
                ours, theirs_named = everyone[0][1], everyone[rank][1]
                named = [f"label {i} {_class_name(a)} on rank 0, {_class_name(b)} on rank {rank}" for i, (a, b) in
                         enumerate(itertools.zip_longest(ours, theirs_named)) if a != b][:3]
                if named:
                    said.append(f"{split}: the same images under each label, classes named apart: "
                                + ", ".join(named))
                    break
    return f"; where they differ: {'; '.join(said)}" if said else ""


def judged_accuracy(model, average, loader, device: torch.device, precision: str,
                    dist: Optional[distributed.Context] = None,
                    stopper: Optional[StopRequest] = None) -> Dict[str, Any]:
    """:func:`evaluate_accuracy` of ``model``; with a weight average (``average``, the EMA's module), the
    average's, which eval and export take from the checkpoint and so is the one judged, with the trained
    weights' figures beside it (``raw_top_1``, ``raw_top_5`` and, where there are any, ``raw_nonfinite_outputs``)."""
    accuracy = evaluate_accuracy(model, loader, device, precision, dist, stopper)
    if average is None:
        return accuracy
    raw = accuracy
    accuracy = evaluate_accuracy(average, loader, device, precision, dist, stopper)
    accuracy.update(raw_top_1=raw["top_1"], raw_top_5=raw["top_5"])
    if raw.get("nonfinite_outputs"):
        accuracy["raw_nonfinite_outputs"] = raw["nonfinite_outputs"]
    return accuracy


# One run at a time in a process. Runs share its global random generators (each run seeds them; its model's
# initialisation and dropout draw from them), the output print0 copies into log.txt, and sys.stderr: two at once
# (threads of a sweep or a web service) each trained other weights than alone, each log.txt held the other's
# lines, and sys.stderr was left as a run's copy of it.
_UNDER_WAY = threading.Lock()
_under_way_in = ""  # the thread of the run under way


def _forked() -> None:
    """A process forked while a run was under way (a sweep's pool, from another thread) holds none of it."""
    global _UNDER_WAY, _under_way_in
    _UNDER_WAY, _under_way_in = threading.Lock(), ""


if hasattr(os, "register_at_fork"):  # none on Windows, which never forks
    os.register_at_fork(after_in_child=_forked)


def run(cfg: Config, given: Optional[Set[str]] = None) -> Dict[str, Any]:
    """Train as configured; returns the last epoch's figures and the last checkpoint's path. ``given``: the
    keys the user set and where (``config.load_config_and_given``), for messages that name a config file.

    Started by torchrun, every process calls this: DDP over a shard of the data each, rank 0 prints and
    saves under ``ckpt_0/``; the process group is left on return and on error. One run at a time in a
    process: another, from another thread, is refused while one is under way."""
    global _under_way_in
    validate(cfg)  # a Config built in Python gets load_config's checks
    if not _UNDER_WAY.acquire(blocking=False):
        raise RuntimeError(f"train.run: another run is under way in this process (thread {_under_way_in}): runs "
                           f"in one process share its global random generators and the output copied to their "
                           f"log.txt, so a second would change the first's weights and records; run them one "
                           f"after another, or each in a process of its own")
    _under_way_in = threading.current_thread().name
    try:
        return _run_alone(cfg, given)
    finally:
        _under_way_in = ""
        _UNDER_WAY.release()


def _run_alone(cfg: Config, given: Optional[Set[str]]) -> Dict[str, Any]:
    early = runtime.capture_output()  # printed before the run folder's log.txt is open; written there then
    dist = None
    folder = cfg.save_checkpoint_path if cfg.save_checkpoint and not os.path.exists(cfg.save_checkpoint_path) else ""
    while folder and os.path.dirname(folder) not in ("", folder) and not os.path.exists(os.path.dirname(folder)):
        # runs/new/a: os.makedirs makes runs/new too, which a refused run left behind, empty
        folder = os.path.dirname(folder)
    stderr = sys.stderr
    sys.stderr = runtime.CopiedToLogs(stderr)  # the run's warnings in its log.txt too
    autotune = torch.backends.cudnn.benchmark  # the run turns it on for a GPU; a notebook's later work gets its own
    try:
        dist = distributed.setup(cfg, "train")
        # The loaders' worker processes end with the run, however it ends; its error is marked with the network
        # (for the advice on memory) before the stack's log.txt says it.
        # A notebook's own autocast, grad mode and default dtype are not the run's (runtime.library_defaults).
        with runtime.library_defaults(training=True), contextlib.ExitStack() as loaders, \
                runtime.network_sized(cfg.width_mult, cfg.class_num, cfg.batch_size, cfg.image_size):
            return _run(dist.apply(cfg), dist, early, loaders, given)
    except BaseException:
        if folder and runtime.is_rank0():  # a run that failed before writing anything leaves no empty folder
            remove_empty_folders(folder)
        raise
    finally:
        sys.stderr = stderr
        torch.backends.cudnn.benchmark = autotune
        runtime.remove_log_file(early)
        if dist is not None:
            dist.cleanup()


def _take_pre_trained(cfg: Config, model: MobileNetV1, source: Dict[str, Any], pre_trained: str,
                      labelling: Optional[List[str]], say_pre_trained: Callable[[str], Any]
                      ) -> Tuple[Dict[str, Any], List[str]]:
    """Load ``pre_trained`` (read as ``source``) into ``model``, checking its width, and say what loading it
    found (``say_pre_trained``); returns ``source`` as the run goes on with it (in this data set's class order, with
    the seed's moments where it continues the seed's way) and the weights left out (another class count)."""
    note = ckpt_io.weights_note(source, cfg.use_ema)  # a run's weight average, by default
    if note:
        say_pre_trained(f"pre_trained: {note}")
    width = (source.get("model_args") or {}).get("width_mult")
    # A MindSpore file records none, nor timm's (imported: its names mapped, each of them a MobileNetV1's, as
    # no other network's file is): read off its shapes, as eval reads them.
    if width is None and (ckpt_io.seed_trained(source) or source.get("imported")):
        try:
            width = infer_model_args(ckpt_io.weights_to_use(source, cfg.use_ema), pre_trained)["width_mult"]
        except ckpt_io.CheckpointError:  # no one width gives its shapes: load_weights names them
            pass
    # Said by the widths where their layers differ (widths whose channels round alike build one network:
    # a MindSpore file's width, worked out by convert, is the simplest that fits); else every shape is listed.
    if (isinstance(width, (int, float)) and not isinstance(width, bool) and width > 0
            and layer_specs(width) != layer_specs(cfg.width_mult)):
        raise ckpt_io.CheckpointError(
            f"pre_trained {pre_trained}: a MobileNetV1 of width_mult {width:g}, this run's is {cfg.width_mult:g} "
            f"(--width_mult {width:g} fine-tunes it; a model of another width learns from it with --teacher)")
    source, reordered = ckpt_io.in_sorted_order(source, labelling, pre_trained)
    if reordered:
        say_pre_trained(f"pre_trained: {reordered}")
    state, qat_note = pre_trained_state(ckpt_io.weights_to_use(source, cfg.use_ema), model, pre_trained)
    if qat_note:
        say_pre_trained(f"pre_trained: {qat_note}")
    recorded_classes = (source.get("model_args") or {}).get("class_num")
    if recorded_classes and not any(k.startswith("fc.") for k in state):
        # A backbone's file records no classifier; one that records its class count and holds none lost it.
        raise ckpt_io.CheckpointError(f"checkpoint {pre_trained} records a classifier of {recorded_classes} "
                                      f"classes (model_args) and holds none (fc.weight, fc.bias): damaged?")
    try:
        skipped = ckpt_io.load_weights(model, state, pre_trained, skip_head_mismatch=True,
                                       naming=source.get("naming", "ours"))
    except ckpt_io.CheckpointError as e:  # a fault of the average said as eval says it (the weights beside it)
        where = ckpt_io.average_named(source, cfg.use_ema)
        if not where:
            raise
        raise ckpt_io.CheckpointError(f"{e}{where}") from None
    say_pre_trained(f"pre_trained: loaded {pre_trained}"
                    + (f"; left out {', '.join(skipped)} (another class count), the classifier starts fresh"
                       if skipped and "fc.weight" in state else
                       "; it holds no classifier (a backbone's weights), which starts fresh" if skipped else ""))
    if cfg.pretrain_epoch_size and not source.get("moments"):
        # A training checkpoint of ours continued the seed's way: its SGD buffers go on as the seed's moments,
        # as they do from the file convert writes of it (from this very file the momentum restarted, without a
        # word). A copy of the network: training_moments freezes and unfreezes the one it reads the order of.
        moments, why = mindspore_io.training_moments(source, copy.deepcopy(model),
                                                     ckpt_io.weights_to_use(source, cfg.use_ema),
                                                     ckpt_io.which_weights(source, cfg.use_ema) != "ema")
        source = {**source, **moments}
        if why:
            say_pre_trained(f"pre_trained: {why}")
    theirs_named = source.get("classes")
    if not skipped and labelling and isinstance(theirs_named, list) and list(theirs_named) != list(labelling):
        # The same count: the classifier is kept, each output now standing for this data set's class.
        same = sorted(map(str, theirs_named)) == sorted(labelling)
        theirs_text = names_text([str(n) for n in theirs_named])
        say_pre_trained(f"pre_trained: note: {pre_trained} was trained on "
                        + (f"this data set's classes in another order ({theirs_text})" if same else
                           f"the classes {theirs_text}, this data set's are {names_text(labelling)}")
                        + ": its classifier is kept (the same count), its output k now trained as this data "
                          "set's k-th class")
    if source.get("imported"):
        say_pre_trained(f"pre_trained: {source['imported']}")
    seen = seen_evaluation_images(source, pre_trained, cfg)
    if seen:
        say_pre_trained(seen)
    padded = (source.get("model_args") or {}).get("padding")
    if padded and padded != cfg.padding:
        say_pre_trained(f"pre_trained: note: {pre_trained} was trained with padding {padded}, this run pads "
                        f"{cfg.padding} (--padding {padded} keeps to its)")
    recorded = source.get("config")  # a MindSpore file's or timm's records none
    theirs = ckpt_io.trained_normalisation(recorded, cfg.dataset, pre_trained) if recorded else None
    if theirs is not None and theirs != cfg.normalisation:
        say_pre_trained(f"pre_trained: note: {pre_trained} was trained on inputs normalised by "
                        f"{normalisation_text(theirs)}, this run normalises by "
                        f"{normalisation_text(cfg.normalisation)} (--mean and --std keep to its)")
    # The sizes the statistics this run keeps were measured at: each frozen layer's (a file of a run that froze
    # layers holds some of the file it started from, measured at that one's size: ckpt_io.BN_LAYER_SIZES).
    measured = (ckpt_io.layer_statistics_sizes(source) or [])[:ckpt_io.LAYERS if cfg.qat else cfg.freeze_layers]
    if any(size != cfg.image_size for size in measured):
        # Quantization-aware training keeps them frozen, as --freeze_layers keeps its layers': they stay those
        # of the other size.
        if (source.get("model_args") or {}).get("qat"):  # recalibrate-bn refuses a quantization-aware file
            remedy = (f"recalibrate {ckpt_io.float_model_of(source)} at this size (mobilenet-v1 "
                      f"recalibrate-bn --image_size {cfg.image_size}) and fine-tune that")
        else:
            # The share this run holds out to evaluate on stays out of the measurement too: measured on those
            # images, the frozen layers' statistics saw the evaluation's, and its top-1 read high.
            held = f" --val_split {cfg.val_split:g}" if cfg.dataset == "imagenet2012" and cfg.val_split else ""
            remedy = (f"`mobilenet-v1 recalibrate-bn {shell_path(pre_trained)} --image_size {cfg.image_size} "
                      f"--dataset_path {shell_path(cfg.dataset_path)}{held} --out FILE` measures them at this run's "
                      f"size first (then --pre_trained FILE)")
        frozen = ("qat" if cfg.qat else "freeze_layers: network.0's" if cfg.freeze_layers == 1 else
                  f"freeze_layers: network.0 to network.{cfg.freeze_layers - 1}'s")
        measured_at = (f"image_size {measured[0]}" if len(set(measured)) == 1 else
                       f"several image sizes ({ckpt_io.layer_sizes_text(measured)})")
        say_pre_trained(f"pre_trained: note: {pre_trained} has its BatchNorm statistics measured at {measured_at}; "
                        f"this run trains at {cfg.image_size} with them frozen ({frozen}): {remedy}")
    return source, skipped


def _run(cfg: Config, dist: distributed.Context, early: io.StringIO,
         loaders: contextlib.ExitStack, given: Optional[Set[str]] = None) -> Dict[str, Any]:
    dist.check_options(cfg)
    if cfg.batch_size < 2:  # eval takes batches of one; a training step of one image was skipped without a word
        raise OptionError(f"batch_size {cfg.batch_size}: training takes at least 2 images a batch in each process "
                          f"(BatchNorm normalises a batch by its own statistics; a step of one image is skipped); "
                          f"where memory is short, batch_size 2 or more with --grad_accum_steps N")
    if not dist.enabled:  # said before the configuration's 100 lines (under torchrun: on every rank, below)
        check_dataset_path(data_options(cfg, given=given))
        # The files it starts from, as its data: one not there, a pipe, a folder of no checkpoint (read below, or
        # a resume's pre_trained, which it may do without, said there). Rank 0 chooses them under torchrun.
        for key in ("pre_trained",) * (not cfg.resume) + ("teacher",):
            if getattr(cfg, key):
                ckpt_io.resolve_checkpoint_path(getattr(cfg, key), f"--{key}", set_in_config_file(given, key))
    device = resolve_device(cfg.device_target)
    # Quantization-aware training simulates INT8 arithmetic in float32 (bf16 would round it again).
    precision = "fp32" if cfg.qat else resolve_precision(cfg.precision, device)
    seed_everything(cfg.seed)
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick the fastest algorithm per layer once.
        torch.backends.cudnn.benchmark = True
    # Before a restart's resume below: a job started afresh keeps to its own folder when restarted (the
    # other may hold an earlier run's checkpoints, which it never continued).
    home = ckpt_io.unexpanded_home(cfg.save_checkpoint_path) if cfg.save_checkpoint else ""
    if home:  # a quoted or config file's ~/runs: a folder named ~ was made here
        raise dist.alike(ckpt_io.CheckpointError(f"save_checkpoint_path {cfg.save_checkpoint_path}: {home}"))
    out_dir = dist.checkpoint_dir(cfg.save_checkpoint_path, continuing=resumes_own_folder(cfg))
    if not cfg.resume and dist.restarted:
        # A worker of this job died and torchrun restarted them all: starting over would discard the run.
        cfg = dataclasses.replace(cfg, resume="auto")
    print0(header(device))
    if device.type == "cpu" and precision in ("fp16", "bf16"):
        # Measured: a training step's median, 3 runs (benchmarks/RESULTS.md, "Half precision on the CPU").
        print0(f"note: precision {precision} on the CPU: a training step took {CPU_HALF_COST[precision]} the time of "
               f"fp32's on the 2-core development CPU, which has AMX and AVX-512 FP16 units (benchmarks/RESULTS.md); "
               f"fp32 is auto's choice on the CPU")
    print0("configuration:\n" + dump_yaml(cfg).rstrip())
    if cfg.image_size_start:
        print0(resizing_line(cfg))
        if is_cifar(cfg.dataset):
            print0(f"note: progressive resizing with {cifar_name(cfg.dataset)}: its training images are whole "
                   "images resized, so a smaller size shows their objects smaller than the evaluations do (no "
                   "random-resized crop makes up for it); on the demo it cost top-1 (README: Training smaller than "
                   "it runs)")
    if is_cifar(cfg.dataset) and cfg.eval_size != cfg.image_size:
        print0(f"note: eval_image_size {cfg.eval_image_size} with {cifar_name(cfg.dataset)}: its training images "
               f"are whole 32x32 images resized to image_size {cfg.image_size}, not the random-resized crops that "
               f"make a larger evaluation size pay off for image folders; its evaluations resize them to "
               f"{cfg.eval_image_size}")
    if cfg.save_checkpoint and cfg.keep_checkpoint_max < 2:
        print0(f"note: keep_checkpoint_max {cfg.keep_checkpoint_max}: 2 are kept, the newest and the one before it, "
               "which a resume falls back to if the newest cannot be read")
    if dist.enabled:
        print0(dist.describe(cfg.batch_size, cfg.grad_accum_steps))
    if out_dir != dist.checkpoint_dir(cfg.save_checkpoint_path):
        print0(f"resume{' auto' if cfg.resume == 'auto' else ''}: the checkpoints of this run are in {out_dir}, "
               f"written by {'one process' if dist.enabled else 'a distributed run'}: it continues there")
    if dist.restarted:
        print0(f"torchrun restart {dist.restarted}: continuing from the newest complete checkpoint in {out_dir} "
               + (f"(--resume {cfg.resume})" if cfg.resume == "auto" else
                  f"if it is further on than --resume {cfg.resume}"))

    def build_loaders() -> Tuple[Any, Any, Optional[List[str]]]:
        try:
            loader = build_loader(data_options(cfg, given=given), train=True, device=device, drop_last=True,
                                  **dist.shard())
        except UnsortedImagesError as e:  # eval's way out (--eval_labels) is not training's
            raise e.instead(f"which training takes its labels from: a sub-folder a class "
                            f"({os.path.join(e.root, '<class>', '*.jpg')})") from None
        loaders.callback(loader.close)
        # The class names the checkpoints record. An image folder's decide its labels: the eval split, a resume
        # and a teacher must follow them. CIFAR's names file only names the numbers in its files (those past
        # class_num name no output of this model).
        classes = loader.classes[:cfg.class_num] if is_cifar(cfg.dataset) and loader.classes else loader.classes
        # Built before training so that a missing eval split stops the run at once, not epochs later.
        # An image folder's eval split takes the training split's labels (a folder of another name is an error).
        eval_loader = (build_loader(data_options(cfg, train=False, given=given), train=False, device=device,
                                    drop_last=cfg.eval_drop_last, classes=None if is_cifar(cfg.dataset) else classes,
                                    **dist.shard())
                       if cfg.eval_interval else None)
        if eval_loader is not None:
            loaders.callback(eval_loader.close)
        return loader, eval_loader, classes

    # On every rank together: a machine whose data path is wrong was named on that machine alone, the others
    # saying a process had ended and that --resume auto would continue from a checkpoint there may not be.
    loader, eval_loader, classes = dist.on_every_rank(build_loaders, "cannot read the data")
    misplaced = run_in_data(out_dir, cfg.save_checkpoint_path, loader, eval_loader) if cfg.save_checkpoint else ""
    if misplaced:  # every rank's alike: said once a machine
        raise dist.alike(ckpt_io.CheckpointError(misplaced))
    labelling = None if is_cifar(cfg.dataset) else classes
    check_same_data(dist, loader, eval_loader)
    for each in (loader, eval_loader):  # the limit on unreadable files is the job's: checked together
        dist.defer_bad_samples(each)
    if eval_loader is not None:
        dist.note_eval_drop_last(cfg.eval_drop_last)
    check_class_num(cfg, loader, eval_loader is not None, eval_loader)

    def prepare_folder() -> None:
        try:
            # Held to the run's end: the folder is its alone. Taken on save_checkpoint_path in either layout (its
            # ckpt_0/ is a distributed run's), so that a run of one process and a torchrun job exclude each other.
            os.makedirs(cfg.save_checkpoint_path, exist_ok=True)
            loaders.callback(ckpt_io.RunLock(cfg.save_checkpoint_path).release)
            os.makedirs(out_dir, exist_ok=True)
            if os.path.realpath(out_dir) != os.path.realpath(cfg.save_checkpoint_path):  # and ckpt_0/ itself, which
                loaders.callback(ckpt_io.RunLock(out_dir).release)  # a run of one process may have been given
            removed = ckpt_io.remove_partial_files(out_dir)
            ckpt_io.check_writable(out_dir)  # config.yaml waits until the run knows it will train
        except OSError as e:
            in_the_way = file_in_path(out_dir)
            why = f"{in_the_way} is a file, not a folder" if in_the_way else e.strerror or e
            raise ckpt_io.CheckpointError(f"save_checkpoint_path {out_dir}: cannot write there "
                                          f"({why}); nothing was trained or changed") from None
        if removed:
            print0(f"removed {len(removed)} partial file(s) left by an interrupted save (never a checkpoint): "
                   + ", ".join(os.path.basename(p) for p in removed))

    if cfg.save_checkpoint:  # rank 0 writes; the others stop with it where it cannot
        dist.from_rank0(prepare_folder, "could not prepare the run's folder")
    try:
        steps_per_epoch = epoch_steps(cfg, loader, dist.enabled)
    except ValueError as e:  # every rank's shard holds as many samples: every rank stops here, the job says it once
        raise dist.alike(e) from None
    step_images = samples_per_step(cfg, dist)  # the job's images per step
    lr = schedule(cfg, steps_per_epoch, step_images)
    for note in schedule_notes(cfg, lr, step_images):
        print0(note)

    model = build_model(cfg)
    source, skipped, unread = None, [], None
    if cfg.pre_trained:
        pre_trained = cfg.pre_trained
        try:
            # A run folder: its newest, chosen again where a train running there prunes it before it is read.
            pre_trained, source = ckpt_io.read_newest(pre_trained, ckpt_io.load_file, "--pre_trained",
                                                      set_in_config_file(given, "pre_trained"))
        except ckpt_io.CheckpointError as e:
            if not cfg.resume:
                raise
            # A run that resumes takes nothing from it (its checkpoint holds all): a file gone since the run
            # started (moved, pruned) must not keep it from going on. Needed only if nothing is resumed.
            unread = e
            print0(f"pre_trained: not read ({e}); --resume {cfg.resume} continues without it if it finds a "
                   f"checkpoint")
    # A run that resumes takes nothing from pre_trained (its checkpoint holds all): what loading it found is said
    # only where the resume finds no checkpoint, and the run starts from it after all.
    pre_trained_lines: List[str] = []
    say_pre_trained = pre_trained_lines.append if cfg.resume else print0
    if source is not None:
        source, skipped = _take_pre_trained(cfg, model, source, pre_trained, labelling, say_pre_trained)
    if cfg.qat:
        print0(f"qat: quantization-aware training: BatchNorm frozen at its running statistics and folded into the "
               f"convs, their weights rounded to int8 per channel{' (7-bit)' if cfg.qat_reduce_range else ''}, the "
               f"input, each layer's output and the pooled features to uint8 within ranges that follow the batches; "
               f"float32 throughout. 'mobilenet-v1 export' writes the INT8 ONNX file this model computes "
               f"(--file_format TFLITE: its INT8 .tflite)")
    if cfg.freeze_layers:
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        layers = ("network.0 keeps its" if cfg.freeze_layers == 1
                  else f"network.0 to network.{cfg.freeze_layers - 1} keep their")
        print0(f"freeze_layers {cfg.freeze_layers}: {layers} weights ({frozen:,} parameters) and BatchNorm "
               f"statistics; {trained:,} parameters train")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    model = dist.wrap(model, device, cfg.sync_bn)
    ema = None
    if cfg.ema_decay:
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten: keep the RNG stream
            average = build_model(cfg)
        ema = WeightAverage(model, average.to(device=device, memory_format=memory_format), cfg.ema_decay)
    criterion = build_criterion(cfg)
    # Its initial weights are overwritten: keep the RNG stream as a run without a teacher has it.
    with torch.random.fork_rng(devices=[]):
        distill = build_distiller(cfg, labelling, device, memory_format, out_dir, dist,
                                  set_in_config_file(given, "teacher")) if cfg.teacher else None
    if cfg.use_label_smooth and cfg.dataset == "cifar10":
        print0(f"use_label_smooth: label smoothing {cfg.label_smooth_factor} on cifar10, as set (the seed "
               f"smooths only ImageNet's labels and ignores the key for cifar10)")
    smoothing = label_smoothing_warning(cfg)
    if smoothing:
        print0(smoothing)
    augment = BatchAugment(cfg.mixup_alpha, cfg.cutmix_alpha, cfg.mix_prob, cfg.random_erase, cfg.seed, dist.rank,
                           cfg.random_erase_mode, cfg.mixup_off_epoch)
    optimizer = make_optimizer(model, float(lr[0]), cfg.momentum, cfg.weight_decay, device, cfg.opt, cfg.opt_eps,
                               nesterov=cfg.nesterov, decay_norm_bias=cfg.decay_norm_bias,
                               trust_coefficient=cfg.trust_coefficient, trust_clip=cfg.trust_clip)
    scaler = make_scaler(precision, device, cfg.loss_scale)
    if source is not None and source.get("moments"):
        restore_moments(cfg, source, model, optimizer, skipped, steps_per_epoch, say_pre_trained)
    hint = ((f"The teacher's outputs are part of the loss: {cfg.teacher} may be what is not finite"
             + (" (a larger network overflows fp16 sooner: --precision bf16)" if precision == "fp16" else "") + ".")
            if cfg.teacher else "")
    guard = NonFiniteGuard(model, optimizer, device, cfg.max_nonfinite_steps, hint)

    start_epoch, start_step, rng = cfg.pretrain_epoch_size, 0, None
    step_offset = 0  # optimiser steps taken minus the schedule position: not 0 after a change of steps per epoch
    resumed_from, ckpt = "", None
    if cfg.resume:
        resumed_from, ckpt, (done_epochs, in_epoch) = find_resume(cfg, model, optimizer, steps_per_epoch, out_dir,
                                                                         dist, labelling, ckpt_io.data_size(loader))
        if ckpt is not None:
            scale_kept = restore_training_state(ckpt, resumed_from, model, optimizer, scaler, guard, ema,
                                                cfg.loss_scale)
            start_epoch, start_step, rng = done_epochs, in_epoch, ckpt["rng"]
            position = done_epochs * steps_per_epoch + in_epoch
            step_offset = ckpt["step"] - position
            change = schedule_change(ckpt, resumed_from, cfg, lr, position, step_images, step_offset)
            print0(f"resume: continuing from {resumed_from} after epoch {done_epochs}"
                   + (f" and {in_epoch} of the {steps_per_epoch} steps of epoch {done_epochs + 1}" if in_epoch else "")
                   + f" (global step {ckpt['step']}); model, optimizer, "
                   + ("loss scale, " if scale_kept else "")
                   + "schedule, data order and random state continue from there"
                   + (f"; pre_trained {cfg.pre_trained} is not used" if cfg.pre_trained else ""))
            spe_change = steps_change(ckpt, resumed_from, steps_per_epoch, step_images, lr, position)
            if is_cifar(cfg.dataset):
                classes, renamed = resumed_names(ckpt.get("classes"), classes, resumed_from, cfg.class_num)
            for line in (spe_change, processes_change(ckpt, resumed_from, cfg, done_epochs, in_epoch,
                                                      bool(spe_change)), change,
                         recipe_change(ckpt, resumed_from, cfg),
                         precision_change(ckpt, resumed_from, precision, cfg.loss_scale),
                         threads_change(ckpt, resumed_from, device),
                         pipeline_change(ckpt, resumed_from, cfg, device),
                         resizing_change(ckpt, resumed_from, cfg, done_epochs),
                         teacher_change(ckpt, resumed_from, cfg, distill),
                         evaluation_change(ckpt, resumed_from, cfg, out_dir),
                         data_change(ckpt, resumed_from, cfg, done_epochs, in_epoch),
                         renamed if is_cifar(cfg.dataset) else ""):
                if line:
                    print0(line)
    if ckpt is None and unread is not None:
        raise unread  # nothing resumed: the run starts from pre_trained, which cannot be read
    if ckpt is None:
        for line in pre_trained_lines:  # nothing resumed: the run starts from pre_trained
            print0(line)
    if ckpt is None and cfg.qat and source is None:
        raise ValueError(f"option --qat: --resume {cfg.resume} found no checkpoint in {out_dir} to continue, and "
                         f"no --pre_trained is given to start quantization-aware training from (a float run's "
                         f"checkpoint)")
    mixing = mix_prob_problem(cfg)  # let pass by the configuration's check for a resume
    if mixing and ckpt is None:  # rank 0's choice, every rank's: said once a machine
        raise dist.alike(ConfigError(f"--resume {cfg.resume} found no checkpoint in {out_dir} to continue, and a run "
                                     f"started afresh is refused: {mixing}"))
    if mixing:  # a run started before mix_prob 0 beside an alpha was refused: it resumes as it was
        alphas = " and ".join(f"{k} {getattr(cfg, k):g}" for k in ("mixup_alpha", "cutmix_alpha") if getattr(cfg, k))
        print0(f"note: mix_prob 0 mixes no batch: {alphas} taken for the resume, and unused (no batch mixed, as in "
               f"a run started so); --mix_prob 1 mixes every batch from here")
    if (ckpt is None and cfg.qat and 0 < cfg.qat_range_epochs <= start_epoch
            and not int(ckpt_io.unwrap(model).quant.observed)):
        # qat_range_epochs counts the run's epochs from 1, pretrain_epoch_size's included: ranges not measured yet
        # would be fixed before any batch moved them (its steps rounding to ranges of zeros, its evaluations not
        # rounding the activations at all), and export would refuse the checkpoint.
        first = start_epoch + 1
        raise dist.alike(ConfigError(
            f"option --qat_range_epochs: qat_range_epochs {cfg.qat_range_epochs} fixes the activation ranges after "
            f"epoch {cfg.qat_range_epochs}, and this run starts at epoch {first} (pretrain_epoch_size "
            f"{cfg.pretrain_epoch_size}) from {pre_trained}, whose ranges were never measured: they would stay so (its "
            f"steps rounding against no range, and export with none to write the INT8 file from); --qat_range_epochs "
            f"{start_epoch + cfg.qat_range_epochs} lets epochs {first} to {start_epoch + cfg.qat_range_epochs} "
            f"measure them, 0 every epoch"))
    ranges_line = qat_range_line(cfg.qat_range_epochs, cfg.epoch_size, start_epoch) if cfg.qat else ""
    if ranges_line:  # said once the epoch it starts at is known: a resume past the range epochs measures none
        print0(ranges_line)
    note = bn_momentum_note(cfg)
    if note:
        print0(note)
    if cfg.freeze_layers and not cfg.pre_trained and not resumed_from:
        print0(f"freeze_layers {cfg.freeze_layers}: no pre_trained (and nothing resumed): the frozen layers keep their "
               f"random initial weights")
    if cfg.pretrain_epoch_size and not cfg.pre_trained and not resumed_from:
        # The seed's way to go on needs the file it goes on from: without one the schedule's tail trains a fresh
        # network, whose lines and checkpoint names (from epoch N + 1 on) read as a continuation.
        print0(f"warning: pretrain_epoch_size {cfg.pretrain_epoch_size}: no pre_trained (and nothing resumed): the "
               f"run starts at epoch {cfg.pretrain_epoch_size + 1} of the schedule from random initial weights "
               f"(--pre_trained CKPT continues a run; --pretrain_epoch_size 0 trains afresh)")
    history = continues_here(cfg, out_dir, resumed_from, pre_trained if cfg.pre_trained else "")
    if ckpt is None and cfg.pretrain_epoch_size > 0:  # alike on every rank: pretrain_epoch_size is an option checked
        # Rank 0's: the ranks' logging and saving steps (collectives) follow it, and each rank's own files may
        # differ (pre_trained and the run folder are per machine).
        step_offset = dist.broadcast_object(continued_step_offset(source, start_epoch, steps_per_epoch)
                                            if history and source is not None else 0)
    # The best checkpoint, keep_best_max and --patience judge on from this run's history's evaluations (rank 0's
    # records, alike on every rank).
    evaluations = Evaluations(cfg.patience, cfg.patience_min_delta)
    if cfg.save_checkpoint and start_epoch > 0:  # rank 0's judgement of the history it finds
        evaluations = dist.from_rank0(
            lambda: Evaluations.before(cfg.patience, cfg.patience_min_delta, out_dir, start_epoch)
            if history else evaluations, "could not read the run's evaluations")
    # An epoch's end saved by a run stopped before that epoch's evaluation (a signal before or during it): the
    # evaluation comes first when the run is resumed from there, where its records have not got it since.
    owed = (ckpt is not None and start_step == 0 and bool(ckpt.get(EVALUATION_LEFT_OUT))
            and eval_loader is not None and evaluates_after(cfg, start_epoch)
            and evaluations.last_epoch < start_epoch and not evaluations.exhausted)
    if (start_epoch >= cfg.epoch_size and not owed) or evaluations.exhausted:
        # Nothing to train: nothing in the run folder is touched (no checkpoint moved aside, no record cut).
        if start_epoch >= cfg.epoch_size:
            print0(f"resume: training is complete ({plural(cfg.epoch_size, 'epoch')}); "
                   f"nothing to do")
        else:
            print0(f"resume: --patience {cfg.patience} is used up by the evaluations up to epoch {start_epoch}: "
                   f"{evaluations.line()}; nothing to do (--patience above {evaluations.since}, or 0, trains on)")
        return run_result(resumed_from, resumed_from, steps_per_epoch, step_images)
    # Resumed from a checkpoint elsewhere (--resume FILE or FOLDER), the run's history is not this folder's.
    elsewhere = bool(resumed_from) and not saved_in(resumed_from, out_dir)
    # A run that continues its folder's (history: resumed from a checkpoint there, or the seed's way to go on,
    # pre_trained saved there at pretrain_epoch_size) moves aside only what came after the file it continues.
    continued_from = (resumed_from or pre_trained) if history else ""

    def keep_pre_trained(moving: List[str], why: str) -> None:
        """A run that starts from ``pre_trained`` weights refuses to set that file aside with the folder's
        files (``moving``, before any moves): its restart (torchrun, or the command again) would not find it."""
        if not cfg.pre_trained or ckpt is not None:
            return
        read = os.path.realpath(pre_trained)
        if any(read == p or read.startswith(p + os.sep) for p in map(os.path.realpath, moving)):
            if not saved_in(pre_trained, out_dir):
                why = (f"it is of the earlier run in {ckpt_io.other_layout_folder(cfg.save_checkpoint_path, out_dir)}"
                       f", which a {'distributed run' if dist.enabled else 'run of one process'} moves aside")
            raise ConfigError(f"pre_trained {pre_trained}: a checkpoint of save_checkpoint_path "
                              f"{cfg.save_checkpoint_path} that this run would move aside before it trains ({why}), "
                              f"where a restart of this command would not find it: copy it out of the folder, or "
                              f"train into another one")

    def set_folder_for_this_run() -> None:
        try:
            if history:
                # In the checkpoint's own count: the names and the best checkpoint of its history use it.
                spe = ((ckpt if resumed_from else source) or {}).get("steps_per_epoch") or steps_per_epoch
                keep_pre_trained([os.path.join(out_dir, name) for name in
                                  ckpt_io.superseded_files(out_dir, start_epoch, start_step, spe)],
                                 f"it was saved later than epoch {start_epoch}, where --pretrain_epoch_size "
                                 f"{start_epoch} starts this run, and what came after that moves aside")
                moved_to, names = ckpt_io.move_superseded(out_dir, start_epoch, start_step, spe)
                if moved_to:
                    print0(f"{'resume' if resumed_from else 'pre_trained'}: {', '.join(names)} in {out_dir} came "
                           f"after {continued_from}, from training that this run supersedes: moved to {moved_to}"
                           + ("; the next evaluation saves a new best" if ckpt_io.BEST_NAME in names else ""))
            else:
                # Not the run this one continues (--resume FILE of the other layout): its file stays where it is,
                # which a torchrun restart of this job reads again.
                other_folder = os.path.realpath(ckpt_io.other_layout_folder(cfg.save_checkpoint_path, out_dir))
                continued = bool(resumed_from) and os.path.realpath(resumed_from).startswith(other_folder + os.sep)
                keep_pre_trained([os.path.join(out_dir, name) for name in ckpt_io.training_files(out_dir)]
                                 + ([] if continued else ckpt_io.other_layout_files(cfg.save_checkpoint_path, out_dir)),
                                 "an earlier run's checkpoints move aside from a run that does not continue it; "
                                 "--pretrain_epoch_size N, the epochs it was saved after, continues it")
                # A fresh run in a folder holding another run's checkpoints: they move aside whole, so
                # neither the pruning of the oldest nor --resume or eval (the newest) mixes the two runs.
                moved_to = ckpt_io.move_checkpoints_aside(out_dir)
                if moved_to and elsewhere:
                    print0(f"resume: save_checkpoint_path {out_dir} held the checkpoints of another run than that of "
                           f"{resumed_from}, which this one continues: moved them to {moved_to}")
                elif moved_to:
                    why = (f"--resume {cfg.resume} found no checkpoint of it to continue from" if cfg.resume
                           else "no --resume")
                    print0(f"save_checkpoint_path {out_dir} held the checkpoints of an earlier run, which this "
                           f"one does not continue ({why}): moved them to {moved_to}")
                other = "" if continued else ckpt_io.move_other_layout_aside(cfg.save_checkpoint_path, out_dir)
                if other:
                    print0(f"save_checkpoint_path {cfg.save_checkpoint_path} held an earlier "
                           + ("run of one process, which eval, info and --resume auto would take for this one's: "
                              f"moved its checkpoints and records to {other}" if dist.enabled else
                              f"distributed run in {ckpt_io.DISTRIBUTED_SUBFOLDER}/, which eval, info and --resume "
                              f"auto would take for this one's: moved that folder to {other}"))
            ckpt_io.atomic_save_text(dump_yaml(cfg), os.path.join(out_dir, ckpt_io.RUN_CONFIG))
        except OSError as e:
            # The file that failed where it is not the folder itself (a full disk at config.yaml's write: the folder
            # is writable, the file is what did not fit).
            named = (f"{e.filename}: " if isinstance(e.filename, str)
                     and os.path.normpath(e.filename) != os.path.normpath(out_dir) else "")
            raise ckpt_io.CheckpointError(f"save_checkpoint_path {out_dir}: cannot write there "
                                          f"({named}{e.strerror or e}); nothing was trained") from None

    if cfg.save_checkpoint:
        dist.from_rank0(set_folder_for_this_run, "could not prepare the run's folder")
    # Progressive resizing: a graph per size (multiples of 16), not one of symbolic sizes; Dynamo's limit of
    # graphs per function (8) raised to hold them all and short batches besides, or the last sizes (the
    # final one among them, where the run ends) would run uncompiled.
    if cfg.compile and cfg.image_size_start:
        from torch._dynamo import config as dynamo

        limit = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
        sizes = len(set(training_sizes(cfg)))
        setattr(dynamo, limit, max(getattr(dynamo, limit), sizes + 8))
    step_model = (torch.compile(model, mode=cfg.compile_mode, dynamic=False if cfg.image_size_start else None)
                  if cfg.compile else model)
    steps = ckpt_io.GlobalSteps(steps_per_epoch, step_offset)
    # The newest checkpoint from an epoch's end, which the pruning spares: the one resumed from, or the
    # one beside it that a checkpoint saved inside an epoch names (a file from before the key: the end
    # of its previous epoch, by name, if it is there). Elsewhere than the run's folder it spares nothing.
    epoch_end = ""
    if ckpt is not None:
        named = ckpt.get("epoch_end")
        if not isinstance(named, str):  # ("": saved inside the first epoch, with no epoch's end before it)
            named = ckpt_io.checkpoint_name(start_epoch, steps_per_epoch) if start_epoch else ""
        epoch_end = (resumed_from if start_step == 0 else
                     os.path.join(os.path.dirname(resumed_from), named) if named else "")
    elif history:  # pre_trained, an epoch's end of the run's folder (the seed's way to go on)
        epoch_end = continued_from
    # A resumed run started from the file its checkpoint's run started from, not from this command's
    # --pre_trained (unused, or not given again): its checkpoints keep that one (info's "started from").
    started = (ckpt.get("config") or {}).get("pre_trained", "") if ckpt is not None else cfg.pre_trained
    recorded_cfg = (dataclasses.replace(cfg, pre_trained=started)
                    if isinstance(started, str) and started != cfg.pre_trained else cfg)
    # The precision this session trained in: precision auto is bf16 on a GPU and fp32 on a CPU (and qat fp32),
    # which the recorded configuration's "auto" does not say; info shows it.
    every_save: Dict[str, Any] = {"precision_used": precision}
    if ckpt_io.data_size(loader) is not None:  # the samples each epoch's order permutes: a resume inside one checks it
        every_save[ckpt_io.TRAIN_SAMPLES] = ckpt_io.data_size(loader)
    if device.type == "cpu":  # its float sums depend on the intra-op threads: a resume with another count says so
        every_save["cpu_threads"] = torch.get_num_threads()
    if not is_cifar(cfg.dataset):  # an image folder's pipeline ("auto": by device): a resume with another says so
        every_save["data_pipeline_used"] = resolved_pipeline(cfg.data_pipeline, device)
    if distill:
        every_save["teacher_file"] = distill.source
    # Quantization-aware training keeps BatchNorm's statistics frozen: they stay those of the file it started from,
    # measured at that file's size, which its checkpoints record beside their own image_size (helper-245: a QAT run
    # at 32 from a float model at 64 was said to hold statistics of 32).
    # A resume carries its checkpoint's record (one from before the key: unknown, not its own image_size).
    frozen_at = None
    if cfg.qat:
        frozen_at = (ckpt_io.positive_size(ckpt.get(ckpt_io.BN_STATISTICS_SIZE)) if ckpt is not None
                     else ckpt_io.statistics_size(source))
    if frozen_at is not None:
        every_save[ckpt_io.BN_STATISTICS_SIZE] = frozen_at
    # --freeze_layers keeps its layers' statistics as they came, measured at the size of the file it started from
    # (a QAT run all of them): each layer's size, where they are not all its own (a resume: its checkpoint's).
    layer_sizes = None
    if ckpt is not None:
        layer_sizes = ckpt_io.recorded_layer_sizes(ckpt)
    elif cfg.qat or cfg.freeze_layers:
        kept = ckpt_io.LAYERS if cfg.qat else cfg.freeze_layers
        theirs = ckpt_io.layer_statistics_sizes(source) if source else None
        layer_sizes = theirs[:kept] + [cfg.image_size] * (ckpt_io.LAYERS - kept) if theirs else None
    if layer_sizes is not None and (len(set(layer_sizes)) > 1 or not cfg.qat and layer_sizes[0] != cfg.image_size):
        every_save[ckpt_io.BN_LAYER_SIZES] = layer_sizes  # a QAT run's of one size: frozen_at says it
    writer = CheckpointWriter(recorded_cfg, model, optimizer, scaler, guard, steps_per_epoch, classes, out_dir,
                              dist=dist, ema=ema, samples_per_step=step_images, step_offset=step_offset,
                              epoch_end=epoch_end, recorded=every_save, source=continued_from,
                              resumed=resumed_from)
    if cfg.save_checkpoint:
        guard.last_good = writer.newest  # named when the guard stops the run
    every = cfg.save_checkpoint_steps if cfg.save_checkpoint else 0

    def open_records() -> RunLogger:  # rank 0's writes the run's records; the others' nothing
        return RunLogger(out_dir if cfg.save_checkpoint else None, cfg.epoch_size, steps_per_epoch,
                         start_epoch, cfg.log_interval, early.getvalue(), start_in_epoch=start_step,
                         step_offset=step_offset, history=history)

    tracker = dist.from_rank0(open_records, "could not open the run's records", share=lambda _: None)
    if not dist.is_rank0:
        tracker = open_records()
    # Closed with the run however it ends, from here on (a teacher's evaluation below may fail too), its log.txt
    # ending with the line of what stopped it.
    loaders.push(lambda kind, error, traceback: tracker.close(error))
    runtime.remove_log_file(early)  # from here on print0 writes to the log itself
    if cfg.save_checkpoint and start_epoch > 0:  # what rank 0's folder holds now, alike on every rank
        def folder_state() -> Tuple[bool, List[int], Optional[float], int]:
            whole, top_1, epoch = best_recorded(out_dir)
            return whole, [e for e, _ in ckpt_io.list_top(out_dir)], top_1, epoch

        evaluations.keep_only(*dist.from_rank0(folder_state, "could not list the run's folder"))
    accumulated = (f" (each step adds up the gradients of {cfg.grad_accum_steps} batches of {cfg.batch_size})"
                   if cfg.grad_accum_steps > 1 else "")
    if start_epoch < cfg.epoch_size:
        each = f" per process ({loader.sampler.size} in all)" if dist.enabled else ""  # a shard's
        epochs = (f"epoch {cfg.epoch_size}" if start_epoch + 1 == cfg.epoch_size else
                  f"epochs {start_epoch + 1}..{cfg.epoch_size}")  # one epoch: not "epochs 4..4"
        print0(f"training: {plural(loader.num_samples, 'sample')}{each}, {plural(steps_per_epoch, 'step')} per "
               f"epoch{accumulated}, {epochs}, precision {precision}, device {device}")
    seed_rate = DATASET_PRESETS["imagenet2012"]["lr_max"]
    if (cfg.dataset == "imagenet2012" and cfg.lr_max == seed_rate and cfg.opt == "momentum" and not cfg.lr_base_size
            and step_images < 256 and start_epoch == 0 and start_step == 0):
        # A folder of one's own trained with ImageNet's preset: its rate, at a batch of a few images, diverges.
        print0(f"note: lr_max {seed_rate:g} is the seed's ImageNet rate, for a global batch of 1,024 (its GPU "
               f"file: 4 x 256); this run's is {step_images}: --lr_base_size 1024 scales the rates to it (lr_max "
               f"{seed_rate * step_images / 1024:.3g}), or give --lr_max")
    if cfg.aug_repeats > 1:
        used = steps_per_epoch * step_images  # the job's samples an epoch
        print0(f"aug_repeats {cfg.aug_repeats}: an epoch's {used} samples are {cfg.aug_repeats} copies each of "
               f"about {-(-used // cfg.aug_repeats)} of the {loader.sampler.size} images, augmented anew; "
               + ("the copies of an image go to as many processes, in the same step or the next"
                  if dist.world_size >= cfg.aug_repeats else
                  "the copies of an image fall into the same batch (or the next)" if dist.world_size == 1 else
                  "the copies of an image are spread over the processes and their batches"))
    if loader.sampler.class_balance:
        print0(balance_line(loader.sampler.labels, loader.sampler.class_balance, cfg.aug_repeats))
    # A model of 5 outputs or fewer (a teacher has as many) has a top-5 of 1.0 whatever it does: said once a
    # run, beside the first figures printed (the log line keeps the seed's format, metrics.jsonl its top_5).
    top5_note = few_outputs_note("this run's model", cfg.class_num)

    def say_top5_note() -> None:
        nonlocal top5_note
        if top5_note:
            print0(top5_note)
            top5_note = ""

    last_path, result, epoch_seconds = resumed_from, None, []
    sizes_by_epoch = training_sizes(cfg)
    stopper = StopRequest(dist.enabled)

    def evaluate_epoch(done: int) -> Tuple[Optional[Dict[str, Any]], bool]:
        """Epoch ``done``'s evaluation, said and judged at once by the best checkpoint, keep_best_max and
        --patience: its figures (None: nothing to count) and whether a signal came during it, which ends it
        at the batch under way (the watchdog would end the process after its grace, before the epoch's
        checkpoint): the epoch then stops as if signalled before it, its evaluation left out."""
        accuracy = judged_accuracy(model, ema.module if ema is not None else None, eval_loader, device, precision,
                                   dist, stopper)
        if stopper.agree_now():
            return None, True
        if not accuracy["eval_images"]:
            # eval_drop_last dropped the only, partial batch there is, or nothing was read: a top-1 of no
            # image is no measurement, and must not be taken for the best checkpoint's.
            why = ("eval_drop_last drops the last partial batch, which here is all there is "
                   "(--eval_drop_last False counts every image)" if cfg.eval_drop_last else
                   "none of the eval split's files could be read")
            print0(f"eval: epoch {done}: no image evaluated: {why}")
            return None, False
        # the best checkpoint, keep_best_max and --patience judge it at once (non-finite outputs: none of them)
        best = evaluations.judge(done, accuracy)
        size = f" at image_size {cfg.eval_size}" if cfg.eval_size != cfg.image_size else ""
        trained = (f"; weight average; the trained weights: top-1 {accuracy['raw_top_1']:.4f} "
                   f"top-5 {accuracy['raw_top_5']:.4f}" if ema is not None else "")
        print0(f"eval: epoch {done} top-1 {accuracy['top_1']:.4f} top-5 {accuracy['top_5']:.4f} "
               f"({plural(accuracy['eval_images'], 'image')}{size}{trained})" + (", best so far" if best else ""))
        say_top5_note()
        if accuracy.get("nonfinite_outputs"):
            judged = f"epoch {done}'s model" + (" (its weight average)" if ema is not None else "")
            print0(nonfinite_note(judged, accuracy["nonfinite_outputs"], accuracy["eval_images"], precision))
        if accuracy.get("raw_nonfinite_outputs"):
            print0(nonfinite_note(f"epoch {done}'s trained weights (beside their average)",
                                  accuracy["raw_nonfinite_outputs"], accuracy["eval_images"], precision))
        try:
            if best and cfg.save_checkpoint:
                writer.save(done, 0, name=ckpt_io.BEST_NAME, extra={"metrics": accuracy})
            if cfg.keep_best_max and cfg.save_checkpoint:
                keep_best(writer, evaluations.ranked, done, accuracy, cfg.keep_best_max)
        except (ckpt_io.CheckpointError, distributed.DistributedError) as e:
            # A file rank 0 could not write is raised on every rank alike (rank 0's CheckpointError, the others'
            # DistributedError, both with its unwritten path and reason: Context.from_rank0): the epoch's own
            # checkpoint is then still written (CopyNotWritten). Anything else goes on as it came.
            if not hasattr(e, "unwritten"):
                raise
            raise CopyNotWritten(e.unwritten, e.reason) from None
        return accuracy, False

    def early_stop_line(done: int) -> str:
        # The best checkpoint follows every gain, min_delta or not: its epoch may be a later one.
        at = f"epoch {evaluations.best_saved_epoch}, " if evaluations.best_saved_epoch else ""
        kept = (f", the best ({at}top-1 {evaluations.best_saved:.4f}) {os.path.join(out_dir, ckpt_io.BEST_NAME)}"
                if evaluations.best_saved > -float("inf") else "")
        saved = (f"checkpoint {last_path}{kept}; --resume auto with --patience above {evaluations.since} "
                 f"(or 0) trains on" if cfg.save_checkpoint else "save_checkpoint is off, so nothing was saved")
        return f"early stopping after epoch {done} of {cfg.epoch_size}: {evaluations.line()}: {saved}"

    with stopper:
        # The teacher's evaluation (minutes on a large split) inside the stop handlers: a SIGTERM there ended the
        # process by its default action, log.txt without a word of it (helper-380). Now the evaluation ends at the
        # batch under way, as the epochs' do, and the run stops after its first step with a checkpoint.
        if distill is not None and eval_loader is not None and not resumed_from:
            # At the evaluations' size and batch, which a program need not take (it is fed training batches):
            # program_teacher tried them.
            why = getattr(distill.teacher, "unevaluable", "")
            if why:
                print0(f"teacher: not evaluated on the eval split, whose batches of "
                       f"{cfg.eval_batch_size or cfg.batch_size} at image_size {cfg.eval_size} it does not take "
                       f"({why}); it is fed training batches, which it does")
            else:
                # the loader's workers draw their seeds: keep the run's stream
                with torch.random.fork_rng(devices=[]):
                    accuracy = evaluate_accuracy(distill.teacher, eval_loader, device, precision, dist, stopper)
                if stopper.agree_now():  # on every rank, as after the epochs' evaluations: its counts are partial
                    print0("teacher: its evaluation on the eval split was left at the stop request")
                else:
                    print0(teacher_line(accuracy, eval_loader.num_classes))
                    if distill.note:
                        print0(distill.note)
                    say_top5_note()
        if rng is not None:
            ckpt_io.set_rng_state(rng)
        stopped_early, done, halted, owes, untrained = 0, start_epoch, "", False, False
        if owed:
            print0(f"resume: epoch {start_epoch}'s evaluation was left out when the run stopped: it comes first")
            try:
                accuracy, stopping = evaluate_epoch(start_epoch)
            except DataError as e:  # its checkpoint still owes it
                raise DataError(f"{e}\n{resumed_from} still owes epoch {start_epoch}'s evaluation: with the files "
                                f"fixed or --max_bad_samples raised, --resume auto makes it first") from None
            except CopyNotWritten as e:  # nothing trained; its checkpoint still owes the evaluation
                raise dist.alike(ckpt_io.CheckpointError(
                    f"cannot write checkpoint {e.path}: {e.reason}; nothing was trained: {resumed_from} still owes "
                    f"epoch {start_epoch}'s evaluation: {ckpt_io.room_advice(e.reason)}, then --resume auto "
                    f"makes it (and its copy) first")) from None
            if accuracy is not None:
                tracker.log_evaluation(start_epoch, accuracy)
            if stopping:  # its checkpoint still says so: the next resume evaluates it
                halted, owes = f"the end of epoch {start_epoch} (its evaluation left out again)", True
            elif accuracy is not None and evaluations.exhausted and start_epoch < cfg.epoch_size:
                stopped_early = start_epoch
                print0(early_stop_line(start_epoch))
        for epoch in range(start_epoch, cfg.epoch_size) if not (halted or stopped_early) else ():
            first = start_step if epoch == start_epoch else 0
            if cfg.image_size_start:
                loader.set_image_size(sizes_by_epoch[epoch])
                if epoch == start_epoch or sizes_by_epoch[epoch] != sizes_by_epoch[epoch - 1]:
                    print0(f"epoch {epoch + 1}: training at image_size {sizes_by_epoch[epoch]}")
            loader.set_epoch(epoch, first * cfg.grad_accum_steps)
            if augment.mixes and 0 < cfg.mixup_off_epoch == epoch:
                print0(f"epoch {epoch + 1}: Mixup and CutMix off from here (mixup_off_epoch {cfg.mixup_off_epoch})")
            elif augment.mixes and 0 < cfg.mixup_off_epoch < epoch == start_epoch:  # resumed or continued past it
                print0(f"epoch {epoch + 1}: Mixup and CutMix off, since epoch {cfg.mixup_off_epoch + 1} "
                       f"(mixup_off_epoch {cfg.mixup_off_epoch})")
            if cfg.qat_range_epochs:  # the model itself, whatever wraps it (DDP)
                ckpt_io.unwrap(model).quant.frozen = epoch >= cfg.qat_range_epochs
            lrs = lr[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
            tracker.begin_epoch(epoch + 1, first)
            # Resumed inside the epoch: its mean loss goes on from the checkpoint's tally, each rank's own on as many
            # processes, else the job's, which rank 0 takes (job_losses sums the ranks' at the epoch's end).
            resumed = LossTally.saved(ckpt, first, dist.rank, dist.world_size) if ckpt is not None and first else {}
            tally = LossTally(device, **resumed)

            def on_step(i: int, loss: torch.Tensor, step_lr: float, epoch: int = epoch,
                        tally: LossTally = tally) -> None:
                nonlocal last_path
                if dist.enabled and tracker.record_due(epoch + 1, i):
                    loss = dist.mean_over_ranks(loss)  # the job's loss, as timm logs it
                tracker.log_step(i, loss, step_lr, step_images, guard.grad_norm)
                if every and steps.at(epoch, i + 1) % every == 0 and i + 1 < steps_per_epoch:
                    # The job's unreadable files are checked here too (every rank saves at this step), so
                    # a shard gone unreadable mid-epoch stops the run at the next checkpoint, not at the
                    # epoch's end, and no checkpoint is written past the limit.
                    dist.check_bad_samples(loader)
                    last_path = writer.save(epoch, i + 1, extra={"epoch_loss": job_tally(tally, dist, device)})

            def seed_of(i: int, epoch: int = epoch) -> int:
                return step_seed(cfg.seed, dist.rank, steps.at(epoch, i))

            before = result.last_loss if result is not None else float("nan")  # the last step's loss so far
            try:
                result = train_one_epoch(step_model, loader, criterion, optimizer, scaler, lrs, device, precision,
                                         on_step=on_step, start_step=first, guard=guard, ema=ema,
                                         accumulate=cfg.grad_accum_steps,
                                         augment=functools.partial(augment, epoch) if augment.enabled else None,
                                         clip_grad_norm=cfg.clip_grad_norm, distill=distill,
                                         stop=lambda i: stopper.should_stop(), batch_wait=stopper.batch_wait,
                                         step_seed=seed_of if cfg.drop_rate else None, tally=tally)
            except DataError as e:
                raise saved_before_data_error(e, writer, epoch, (start_epoch, start_step), last_path, tally, cfg,
                                              dist, device) from None
            if result.stopped_after is not None and result.stopped_after < steps_per_epoch:
                guard.sync()  # raises alike on every rank, before rank 0 would save
                dist.sync_buffers(model)  # as at an epoch's end: every rank holds what rank 0 saves
                if ema is not None:
                    dist.sync_buffers(ema.module)
                done_steps = result.stopped_after
                # A wait left at an epoch's first step (0 steps) stops at the end of the epoch before, evaluated.
                name = (ckpt_io.checkpoint_name(epoch + 1, done_steps) if done_steps else
                        ckpt_io.checkpoint_name(epoch, steps_per_epoch))
                trained = (epoch, done_steps) > (start_epoch, start_step)  # a left wait may come before any step
                untrained = not trained
                if done_steps == first:  # a wait left before this epoch's first step: no loss of its own
                    result = dataclasses.replace(result, last_loss=before)
                if cfg.save_checkpoint and trained and os.path.basename(last_path) != name:  # not saved there already
                    tallied = {"epoch_loss": job_tally(tally, dist, device)} if done_steps else None
                    last_path = writer.save(epoch, done_steps, extra=tallied)
                stopped_at = f"step {done_steps} of epoch {epoch + 1}" if done_steps else f"the end of epoch {epoch}"
                if not trained and not last_path:
                    stopped_at = "the start, before any step"
                if stopper.abandoned:
                    # The wait for the next step's batches was left (a worker that gives none): its workers are
                    # ended now, stopped ones too, which PyTorch's own clean-up waits for in vain.
                    loader.close(kill=True)
                break
            epoch_seconds.append(result.seconds)
            result = job_losses(result, dist, device)
            counts = guard.sync()
            dist.check_bad_samples(loader)  # every rank's unreadable files: all stop together, or none
            dist.sync_buffers(model)
            if ema is not None:
                dist.sync_buffers(ema.module)  # each rank averaged its own BatchNorm statistics
            for line in epoch_lines(epoch + 1, result, first):
                print0(line)
            if counts["total"]:
                print0(f"skipped {counts['total']} step(s) with a non-finite loss or gradient so far "
                       f"(max_nonfinite_steps {cfg.max_nonfinite_steps} in a row)")
            if loader.bad_samples is not None and len(loader.bad_samples):
                print0(f"skipped {len(loader.bad_samples)} unreadable image file(s) so far "
                       f"({loader.bad_samples.describe_limit()})")
            done = epoch + 1
            accuracy = None
            stopping = stopper.agree_now()  # evaluation could outlast a preemption's notice: not when stopping
            if not stopping and eval_loader is not None and evaluates_after(cfg, done):
                try:
                    accuracy, stopping = evaluate_epoch(done)
                except DataError as e:  # the eval split's unreadable files: the epoch trained is saved first
                    # The job's limit is raised on every rank at once; another error may come from one rank
                    # alone, which no collective may wait for.
                    together = isinstance(e, TooManyBadSamples)
                    if dist.enabled and not together:
                        raise
                    images = dist.all_reduce_counts({"images": result.images}, device)["images"]
                    tracker.log_epoch(done, dataclasses.replace(result, images=images), float(lrs[-1]), None)
                    e.steps_done = steps_per_epoch  # type: ignore[attr-defined]
                    # Every rank is here (together): the longer message, alike on each, is said once too.
                    raise dist.alike(saved_before_data_error(e, writer, epoch, (start_epoch, start_step), last_path,
                                                             tally, cfg, dist, device, together=together)) from None
                except CopyNotWritten as e:  # the best or a best-epoch copy: the epoch trained is saved first
                    images = dist.all_reduce_counts({"images": result.images}, device)["images"]
                    tracker.log_epoch(done, dataclasses.replace(result, images=images), float(lrs[-1]), None)
                    raise dist.alike(saved_before_copy_error(e, writer, done)) from None
                if accuracy is not None and evaluations.exhausted and done < cfg.epoch_size:
                    stopped_early = done  # the job's figures: alike on every rank
            left_out = stopping and eval_loader is not None and evaluates_after(cfg, done)
            # images_per_s is the job's: every rank's images (unreadable files may leave them unequal).
            images = dist.all_reduce_counts({"images": result.images}, device)["images"]
            tracker.log_epoch(done, dataclasses.replace(result, images=images), float(lrs[-1]), accuracy)
            if cfg.save_checkpoint and (done % cfg.save_checkpoint_epochs == 0 or done == cfg.epoch_size
                                        or (every and steps.at(done) % every == 0)
                                        or stopping or stopped_early):
                # A left-out evaluation is recorded in the checkpoint: a resume from it makes it first.
                last_path = writer.save(done, 0, extra={EVALUATION_LEFT_OUT: True} if left_out else None)
            if stopping:
                stopped_at = f"the end of epoch {done}" + (" (its evaluation left out)" if left_out else "")
                owes = left_out
                break
            if stopped_early:
                stopped_at = ""
                print0(early_stop_line(done))
                break
        else:
            stopped_at = halted
        if stopped_at:
            if not cfg.save_checkpoint:
                then = "save_checkpoint is off, so nothing was saved"
            elif not last_path:  # stopped in the wait for the run's first batch
                then = "nothing was trained, so nothing was saved"
            elif untrained:  # stopped in the wait for a resumed run's first batch: the file it started from is
                # still the newest state (--resume auto would not find one given by path in another folder)
                then = (f"nothing was trained since {last_path}, so nothing was saved; the same command "
                        f"continues from it")
            elif (result is not None and result.stopped_after is not None and result.stopped_after < steps_per_epoch
                  ) or done < cfg.epoch_size:
                then = (f"checkpoint {last_path}; --resume auto continues from there"
                        + (", that evaluation first" if owes else ""))
            else:  # the last epoch's end: trained in full
                then = (f"training is complete, in checkpoint {last_path}"
                        + ("; --resume auto makes its evaluation, which the best checkpoint and keep_best_max judge"
                           if owes else f"; `mobilenet-v1 eval --checkpoint_path {shell_path(last_path)}` evaluates it"
                           if eval_loader else ""))
            print0(f"stopped by {signal_name(stopper.agreed)} after {stopped_at}: {then}")
        counts = guard.sync()
        dist.check_replicas(model)
        if ema is not None:
            # What a checkpoint saves of it (its counters the model's): the module's own counters are those it
            # was built or last loaded with, so a resumed run's digest differed from an uninterrupted one's.
            dist.check_replicas(ema.state_dict()["model"], "the weight average")
    return run_result(last_path, resumed_from, steps_per_epoch, step_images,
                      last_loss=result.last_loss if result else float("nan"),
                      stopped=signal_name(stopper.agreed) if stopped_at else "", stopped_early=stopped_early,
                      epoch_seconds=epoch_seconds, skipped_steps=counts["total"],
                      bad_samples=len(loader.bad_samples) if loader.bad_samples is not None else 0)


def remove_empty_folders(folder: str) -> None:
    """Remove ``folder`` and the folders in it where they hold nothing (a run's, made before it failed)."""
    for root, _, _ in os.walk(folder, topdown=False):
        try:
            os.rmdir(root)  # only an empty one goes
        except OSError:
            pass


def file_in_path(path: str) -> str:
    """The part of ``path`` that is a file where a folder is wanted ("" if none): the run folder itself, or
    one above it (a distributed run's ``ckpt_0/`` in a file's place)."""
    part = os.path.normpath(path)  # as given: relative stays relative
    while part and not os.path.exists(part) and os.path.dirname(part) != part:
        part = os.path.dirname(part)
    return part if part and os.path.exists(part) and not os.path.isdir(part) else ""


def run_result(checkpoint: str, resumed_from: str, steps_per_epoch: int, step_images: int,
               **trained: Any) -> Dict[str, Any]:
    """:func:`run`'s result: the last checkpoint (``checkpoint``), what the run ``trained`` (the last loss,
    the signal that stopped it, the epoch an early stop came after, each epoch's seconds, the non-finite
    steps skipped, the unreadable files) over the figures of a run that trained nothing."""
    result = {"checkpoint": checkpoint, "last_loss": float("nan"), "stopped": "", "stopped_early": 0,
              "steps_per_epoch": steps_per_epoch, "epoch_seconds": [],
              "images_per_epoch": steps_per_epoch * step_images, "resumed_from": resumed_from, "skipped_steps": 0,
              "bad_samples": 0}
    unknown = set(trained) - set(result)
    assert not unknown, f"run_result: no such figure {sorted(unknown)}"
    return {**result, **trained}


def main(argv: Sequence[str]) -> int:
    cfg, given = load_config_and_given(argv, unused=EXPORT_KEYS)  # a --file_name typed here is named as unused
    if (getattr(given, "origin", {}).get("use_ema", "").startswith("option") and not cfg.pre_trained
            and not cfg.teacher and runtime.is_rank0()):
        # Read where train takes a file's weights; a config file shared with eval holds it without a word.
        print(f"note: --use_ema {cfg.use_ema}: train reads it where it takes a file's weights (--pre_trained, "
              f"--teacher), and this run takes none; its own weight average (--ema_decay) is kept beside the trained "
              f"weights either way, and eval, export and predict take --use_ema", file=sys.stderr, flush=True)
    result = run(cfg, given)
    # Stopped by a signal: the exit status of a process that signal ended (a scheduler requeues on it).
    return 128 + int(signal.Signals[result["stopped"]]) if result["stopped"] else 0
