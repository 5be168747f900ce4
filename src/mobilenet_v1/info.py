"""Parameter and multiply-add counts of MobileNetV1, from the layer table (no forward pass needed); what
a model file holds (``mobilenet-v1 info FILE``)."""
import json
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from .checkpoint import layer_sizes_text, recorded_count as _count  # _count: a count's value, or None where none
from .config import MAX_WIDTH_MULT
from .model import layer_specs
from .runtime import plural


def layer_outputs(width_mult: float, image_size: int, image_width: Optional[int] = None):
    """Each layer of :func:`model.layer_specs` with the height and width of its output for an ``image_size``
    square (``image_size`` high and ``image_width`` wide where given): (kind, cin, cout, h, w)."""
    h, w = image_size, image_size if image_width is None else image_width
    for kind, cin, cout, stride in layer_specs(width_mult):
        h, w = math.ceil(h / stride), math.ceil(w / stride)  # SAME and padding=1 give the same output size
        yield kind, cin, cout, h, w


def count_macs(width_mult: float = 1.0, image_size: int = 224, class_num: int = 1000,
               image_width: Optional[int] = None) -> int:
    """Multiply-adds of one forward pass of an ``image_size`` square (``image_size`` high and
    ``image_width`` wide where given): convs and the FC layer (BatchNorm, ReLU and pooling excluded, as in
    the paper's Table 1)."""
    macs, in_ch = 0, 3
    for kind, cin, cout, h, w in layer_outputs(width_mult, image_size, image_width):
        kernel = 1 if kind == "pw" else 3
        per_out = (1 if kind == "dw" else cin) * kernel * kernel
        macs += h * w * cout * per_out
        in_ch = cout
    return macs + in_ch * class_num


def count_activations(width_mult: float = 1.0, image_size: int = 224) -> int:
    """Values the layers output for one ``image_size`` square (each convolution's; BatchNorm and ReLU output
    as many again each): what a batch's activations grow with (:func:`runtime.memory_advice`)."""
    return sum(h * w * cout for _, _, cout, h, w in layer_outputs(width_mult, image_size))


def peak_activations(width_mult: float = 1.0, image_size: int = 224, class_num: int = 1000,
                     padding: str = "same", softmax: bool = False) -> Tuple[int, str]:
    """The most activation values one operator of the network reads and writes at once, for one ``image_size``
    square, and which operator (``layer K``, ``layer K's padding``, ``pool``, ``classifier``, ``softmax``): each
    convolution's input and output (with ``padding`` symmetric, a stride-2 convolution's input padded first, a
    copy 2 pixels larger each way, which the padding and the convolution each hold beside their other tensor),
    the pool's, the classifier's, and with ``softmax`` the softmax's (``export --softmax True``). In
    bytes, at one a value (int8) or four (float32), it is the least memory a runtime that frees each tensor once
    it is read needs for them: the floor of TensorFlow Lite for Microcontrollers' tensor arena, which adds its
    own bookkeeping (a file's own figure: :func:`tflite_io.activation_peak`)."""
    h = w = image_size
    c = 3
    peak, where = 0, ""
    for layer, (kind, cin, cout, stride) in enumerate(layer_specs(width_mult)):
        oh, ow = math.ceil(h / stride), math.ceil(w / stride)
        seen = [(h * w * c + oh * ow * cout, f"layer {layer}")]
        if padding == "symmetric" and stride > 1:
            padded = (h + 2) * (w + 2) * c
            seen = [(h * w * c + padded, f"layer {layer}'s padding"), (padded + oh * ow * cout, f"layer {layer}")]
        peak, where = max([(peak, where)] + seen, key=lambda s: s[0])  # max keeps the first of a tie: the earlier
        h, w, c = oh, ow, cout
    tail = [(h * w * c + c, "pool"), (c + class_num, "classifier")] + ([(2 * class_num, "softmax")] if softmax else [])
    for values, name in tail:
        if values > peak:
            peak, where = values, name
    return peak, where


def counted_width(width_mult: Any) -> bool:
    """Whether ``width_mult`` is a width the layer table can be counted at: a number in (0, 1e6], the
    configuration's range (``config.MAX_WIDTH_MULT``)."""
    return not isinstance(width_mult, bool) and isinstance(width_mult, (int, float)) and \
        math.isfinite(width_mult) and 0 < width_mult <= MAX_WIDTH_MULT


def macs_if_known(width_mult: Any, hw: Optional[Tuple[int, int]], class_num: Any) -> Optional[int]:
    """:func:`count_macs` of an (H, W) input where a file says its width (:func:`counted_width`), its input
    size and its classes; None where one is unknown or no such value (a foreign file's)."""
    if not counted_width(width_mult):
        return None
    if hw is None or isinstance(class_num, bool) or not isinstance(class_num, int) or class_num < 1:
        return None
    return count_macs(float(width_mult), hw[0], class_num, hw[1])


def count_params(width_mult: float = 1.0, class_num: int = 1000) -> Dict[str, int]:
    """Trainable parameters (conv and FC weights, FC bias, BN gamma and beta) and BN running buffers."""
    params = buffers = 0
    in_ch = 3
    for kind, cin, cout, _ in layer_specs(width_mult):
        kernel = 1 if kind == "pw" else 3
        params += cout * (1 if kind == "dw" else cin) * kernel * kernel + 2 * cout
        buffers += 2 * cout
        in_ch = cout
    params += in_ch * class_num + class_num
    return {"params": params, "bn_buffers": buffers}


# ------------------------------------------------------------------------------------- what a file holds

def _file_bytes(file: str) -> int:
    """The bytes of a model file; for a TensorFlow checkpoint named by its index, its prefix or a data file,
    those of the index and the data files it names together (its weights are in the data files), the same
    whichever name was given."""
    from .checkpoint import CheckpointError
    from .tf_checkpoint import bundle_prefix, data_files

    prefix = bundle_prefix(file) if os.path.isfile(file) else None
    if prefix is None:
        return os.path.getsize(file)
    try:
        parts = [prefix + ".index"] + data_files(prefix)
    except (CheckpointError, OSError):  # an index that cannot be read (its reader says why): its own size
        parts = [prefix + ".index"]
    return sum(os.path.getsize(p) for p in parts if os.path.isfile(p))


def describe(path: str, image_size: Optional[int] = None) -> Dict[str, Any]:
    """What a model file holds, read as ``eval`` reads it (a run folder: its newest checkpoint): for a checkpoint
    (ours, a MindSpore ``.ckpt``, a ``.safetensors``, timm's weights, TF-slim's TensorFlow checkpoint) the network,
    what it was trained on and how far, which weights it holds and whether it holds a training state to resume from;
    for an exported file (``.onnx``, ``.pte``, ``.pt2``, ``.tflite``) its input, output, weights and metadata.
    Multiply-adds at the size it takes or records, or at ``image_size`` (a ValueError for a file that takes another
    fixed size). A value of a foreign or hand-edited file that is not what mobilenet-v1 writes there is left out
    (None). Raises :class:`checkpoint.CheckpointError` for a file that is neither."""
    from . import checkpoint as ckpt_io
    from .onnx_io import is_deployed_file

    def read(file: str) -> Dict[str, Any]:
        if os.path.lexists(file) and not os.path.isfile(file):  # one gone (pruned): read_newest's to say
            raise ckpt_io.CheckpointError(f"{path}: not a regular file")
        out: Dict[str, Any] = {"file": file, "bytes": _file_bytes(file)}
        out.update(_describe_deployed(file, image_size) if is_deployed_file(file) else
                   _describe_checkpoint(file, image_size))
        return out

    # A run folder's newest may be pruned by a train running there before it is read: its newest then.
    file, described = ckpt_io.read_newest(path, read, "model file")
    out = {k: described[k] for k in ("file", "bytes")}
    if file != path and os.path.isdir(path):  # not a TensorFlow checkpoint's prefix, whose index is file
        out["newest_in"] = path
    out.update(described)
    return out


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _names(value: Any) -> Optional[List[str]]:
    """Class names: a list (or tuple) of strings, else None."""
    return list(value) if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value) \
        else None


# The training augmentations and regularisers a checkpoint's recorded configuration can hold: ``info`` shows
# those it set to other than its data set's default (the configuration refuses a key set where nothing uses it).
REGULARISATION_KEYS = ("random_flip", "vflip", "crop_scale_min", "crop_ratio_min", "crop_ratio_max",
                       "auto_augment", "ra_magnitude", "augmix_severity", "color_jitter", "color_jitter_hue",
                       "random_erase", "random_erase_mode", "mixup_alpha", "cutmix_alpha", "mix_prob",
                       "mixup_off_epoch", "aug_repeats", "use_label_smooth", "label_smooth_factor", "bce_loss",
                       "bce_target_thresh", "drop_rate", "clip_grad_norm", "weight_decay", "decay_norm_bias")


def _regularisation(config: Dict[str, Any]) -> Dict[str, Any]:
    """The :data:`REGULARISATION_KEYS` a recorded configuration sets to other than their defaults for its
    data set (ImageNet's smooths labels); a value of another type than the key's (a hand-edited file) is
    left out."""
    from .config import DATASET_PRESETS, Config

    dataset = config.get("dataset")
    preset = DATASET_PRESETS.get(dataset, {}) if isinstance(dataset, str) else {}
    out = {}
    for key in REGULARISATION_KEYS:
        value, default = config.get(key), preset.get(key, getattr(Config, key))
        if isinstance(default, bool):
            fits = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            fits = _number(value) is not None and (isinstance(value, int) or isinstance(default, float))
        else:
            fits = isinstance(value, str)
        if fits and value != default:
            out[key] = value
    return out


def _nonfinite_parts(ckpt: Dict[str, Any]) -> List[str]:
    """The parts of a checkpoint holding a floating-point tensor with NaN or infinite values: "trained weights"
    (``model``) and "optimizer state" (its per-parameter tensors), both of which ``train --resume`` checks
    and refuses so (:func:`checkpoint.check_tensors`, :func:`checkpoint.check_optimizer_state`). The weight
    average is not looked at: where ``info`` gets this far, it loaded, so it is finite."""
    import torch

    def damaged(value: Any, scalars: bool) -> bool:
        if isinstance(value, torch.Tensor):
            return ((scalars or value.ndim > 0) and value.is_floating_point()
                    and not bool(torch.isfinite(value).all()))
        if isinstance(value, dict):
            return any(damaged(v, scalars) for v in value.values())
        return isinstance(value, (list, tuple)) and any(damaged(v, scalars) for v in value)

    optimizer = ckpt.get("optimizer")
    moments = optimizer.get("state") if isinstance(optimizer, dict) else None
    # The optimizer's 0-dim tensors (step counters) are not checked by a resume either.
    return [name for name, part, scalars in (("trained weights", ckpt.get("model"), True),
                                             ("optimizer state", moments, False)) if damaged(part, scalars)]


def _statistics_alone(ckpt: Dict[str, Any]) -> bool:
    """Whether the trained weights' tensors that hold NaN or infinite values are BatchNorm running statistics
    alone (an fp16 run's variance overflowed): ``recalibrate-bn`` measures those anew
    (:func:`recalibrate.statistics_to_measure`), the file's weights sound."""
    import torch
    model = ckpt.get("model")
    if not isinstance(model, dict):
        return False
    bad = [k for k, v in model.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    return bool(bad) and all(k.endswith((".running_mean", ".running_var")) for k in bad)


def _steps_per_epoch(ckpt: Dict[str, Any]) -> Optional[int]:
    """The steps per epoch ``ckpt`` records, or those its position gives where it records none (a checkpoint of
    the first versions, saved at an epoch's end: its step over its epoch), which ``train --resume`` continues
    with its own count: said to hold no training state, it was sent to --pre_trained, which drops the
    optimiser's."""
    recorded = ckpt.get("steps_per_epoch")
    if recorded is not None:
        return recorded
    epoch, step = _count(ckpt.get("epoch")), _count(ckpt.get("step"))
    if epoch and step and not ckpt.get("step_in_epoch") and not ckpt.get("step_offset") and step % epoch == 0:
        return step // epoch
    return None


def _describe_checkpoint(path: str, image_size: Optional[int]) -> Dict[str, Any]:
    from . import checkpoint as ckpt_io
    from .api import model_from_checkpoint
    from .config import is_cifar
    from .mindspore_io import FORMAT_NAMES, detect_format

    fmt = detect_format(path)  # before the load and the model's build: read after them, a pruned file's was gone
    ckpt = ckpt_io.load_file(path)
    model, args = model_from_checkpoint(ckpt, path)
    ours = fmt == "torch" and ckpt.get("format") == ckpt_io.FORMAT
    if fmt == "tensorflow":
        container = "TF-slim's MobileNetV1 (TensorFlow checkpoint)"
    elif isinstance(ckpt.get("imported"), str):
        container = f"timm's weights ({'PyTorch' if fmt == 'torch' else FORMAT_NAMES.get(fmt, fmt)})"
    elif fmt != "torch":
        container = FORMAT_NAMES.get(fmt, fmt)
    else:
        container = "mobilenet-v1 checkpoint (PyTorch)" if ours else "PyTorch checkpoint of another tool"
    config = ckpt.get("config") or {}
    size = ckpt_io.recorded_image_size(config)
    out: Dict[str, Any] = {"kind": "checkpoint", "format": container, "width_mult": float(args["width_mult"]),
                           "class_num": int(args["class_num"]), "padding": args["padding"],
                           "params": sum(p.numel() for p in model.parameters()), "image_size": size,
                           "dataset": _text(config.get("dataset")), "classes": _names(ckpt.get("classes"))}
    if "padding" not in (ckpt.get("model_args") or {}):  # a MindSpore .ckpt: SAME presumed (its network's), not read
        out["padding_recorded"] = False
    if config.get("mean") or config.get("std"):  # its run's own (--mean, --std); else its data set's constants
        mean, std = ckpt_io.trained_normalisation(config, "", path)
        out["normalisation"] = {"mean": list(mean), "std": list(std)}
    reading = {} if is_cifar(str(config.get("dataset") or "")) else ckpt_io.recorded_reading(ckpt)
    if reading:  # how eval, predict and export read its photos, as an exported file's metadata says it
        out["image_reading"] = reading
    if size is not None and ckpt_io.trained_image_size(config) not in (None, size):  # eval_image_size
        out["trained_image_size"] = ckpt_io.trained_image_size(config)
    held = ckpt.get("held_out")  # the share of each class its run evaluated on (--val_split), found again by eval
    if isinstance(held, dict) and isinstance(held.get("val_split"), float) and 0 < held["val_split"] < 1:
        out["held_out"] = {"val_split": held["val_split"], "folder": _text(held.get("folder"))}
    at = image_size or size
    if at is not None:
        out.update(macs=count_macs(out["width_mult"], at, out["class_num"]), macs_image_size=[at, at])
    if isinstance(ckpt.get("imported"), str):
        out["imported"] = ckpt["imported"]
    problems, position = ckpt_io.state_problems(ckpt, _steps_per_epoch(ckpt))
    if position is not None:
        training: Dict[str, Any] = {"epoch": ckpt["epoch"], "epochs": _count(config.get("epoch_size")),
                                    "step": _count(ckpt.get("step")),
                                    "steps_per_epoch": position[2],
                                    "step_in_epoch": ckpt.get("step_in_epoch", 0)}
        for key in ("batch_size", "opt", "lr_decay_mode", "lr_max", "precision"):
            value = config.get(key)
            if (_text(value) if key in ("opt", "lr_decay_mode", "precision") else _number(value)) is not None:
                training[key] = value
        used = ckpt.get("precision_used")  # what precision auto resolved to in the session that saved it
        if "precision" in training and used in ("fp32", "bf16", "fp16") and used != training["precision"]:
            training["precision_used"] = used
        per_step = _count(ckpt.get("samples_per_step"))  # the job's: processes x batch_size x grad_accum_steps
        if per_step and "batch_size" in training and per_step != training["batch_size"]:
            training["samples_per_step"] = per_step
        base = _count(config.get("lr_base_size"))
        if base and per_step and "lr_max" in training:  # the rates were scaled to the run's global batch
            from types import SimpleNamespace

            from .schedules import lr_scale

            rule = config.get("lr_base_scale") if config.get("lr_base_scale") in ("linear", "sqrt") else "auto"
            scaled = SimpleNamespace(lr_base_size=base, lr_base_scale=rule, opt=config.get("opt"))
            training.update(lr_base_size=base, lr_max_scaled=training["lr_max"] * lr_scale(scaled, per_step))
        if config.get("lr_per_epoch") is True:  # the rate changed once an epoch, not every step
            training["lr_per_epoch"] = True
        balance = _number(config.get("class_balance"))
        if balance and 0 < balance <= 1:
            training["class_balance"] = balance
        # BatchNorm's momentum where it is not the seed's 0.1 (which a file from before the key had too).
        momentum = _number(config.get("bn_momentum"))
        if momentum is not None and 0 < momentum <= 1 and momentum != 0.1:
            training["bn_momentum"] = momentum
        start, ramp = _count(config.get("image_size_start")), _number(config.get("image_size_ramp"))
        if start and ramp is not None and 0 < ramp <= 1:  # progressive resizing: from start to image_size
            training.update(image_size_start=start, image_size_ramp=ramp)
        if config:
            training["regularisation"] = _regularisation(config)
        started = _text(config.get("pre_trained"))
        frozen = _count(config.get("freeze_layers")) or 0
        if started:  # fine-tuned: from which file, with how many layers frozen
            training["pre_trained"] = {"file": started, "freeze_layers": frozen}
        elif frozen:  # frozen at their random initial weights (train says so when it starts)
            training["freeze_layers"] = frozen
        teacher = _text(config.get("teacher"))
        if teacher:
            taught: Dict[str, Any] = {"teacher": teacher}
            taught.update((k, config[k]) for k in ("distill_alpha", "distill_temperature")
                          if _number(config.get(k)) is not None)
            record = ckpt_io.teacher_file(ckpt)
            if record is not None:
                taught.update(file=record["path"], sha256=record["sha256"])
            training["teacher"] = taught
        out["training"] = training
    elif _count(ckpt.get("global_step")) is not None:  # a MindSpore file's, or a foreign file's
        out["training"] = {"global_step": ckpt["global_step"]}
    # A run resumes (--resume) from a training state of ours: optimizer, RNG and a position that holds, its
    # tensors finite (the rest is checked against the run when it resumes). Trained weights that diverged
    # beside a finite weight average load for eval and export (which take the average), never for --resume.
    # A MindSpore file's Momentum buffers continue with --pre_trained and --pretrain_epoch_size.
    from .mindspore_io import moments_misfit, nonfinite_moments

    nonfinite = _nonfinite_parts(ckpt) if ours else []
    moments = ckpt.get("moments") if isinstance(ckpt.get("moments"), dict) else {}
    # Buffers that do not fit the file's own network (missing, another shape): refused as those that are not finite.
    misfit = moments_misfit(model, moments) if moments else ""
    if misfit:
        out["momentum_buffers_misfit"] = misfit
    elif nonfinite_moments(moments):  # which --pre_trained with --pretrain_epoch_size refuses to continue
        nonfinite.append("momentum buffers")
    if nonfinite:
        out["nonfinite_tensors"] = nonfinite
        if "trained weights" in nonfinite and _statistics_alone(ckpt):
            out["nonfinite_statistics_only"] = True
    out["resumable"] = (ours and not problems and not nonfinite and all(k in ckpt for k in ckpt_io.TRAINING_KEYS)
                        and isinstance(ckpt.get("optimizer"), dict))
    out["momentum_buffers"] = len(moments) > 0 and "momentum buffers" not in nonfinite and not misfit
    if fmt != "mindspore" and ckpt_io.seed_trained(ckpt):  # a .pt or .safetensors of a MindSpore file's tensors
        out["trained_by"] = "mindspore"
    averaged = ckpt.get("averaged")  # mobilenet-v1 average's record: the files (and which of their weights)
    if isinstance(averaged, dict) and _names(averaged.get("sources")):
        out["averaged"] = {"sources": averaged["sources"],
                           "weights": averaged["weights"] if _names(averaged.get("weights")) else []}
    taken = ckpt.get("taken_average")  # convert's or recalibrate-bn's record: the weights are a run's moving average
    if isinstance(taken, dict) and _text(taken.get("source")):
        out["taken_average"] = {"source": taken["source"], "decay": _number(taken.get("ema_decay")),
                                "updates": _count(taken.get("updates")), "by": _text(taken.get("by")) or "convert"}
    ema = ckpt["ema"] if ckpt_io.ema_state(ckpt) is not None else None
    out["weight_average"] = {"decay": _number(ema.get("decay")), "updates": _count(ema.get("updates"))} \
        if ema else None
    out["quantization_aware"] = model.quant is not None
    ranges = _count(config.get("qat_range_epochs"))  # the epochs whose batches move the activation ranges
    epochs = _count(config.get("epoch_size"))
    if out["quantization_aware"] and ranges and not (epochs and ranges >= epochs):  # else: all epochs', as train says
        out["qat_range_epochs"] = ranges
        out["qat_ranges_fixed"] = (_count(ckpt.get("epoch")) or 0) >= ranges
    frozen = ckpt_io.positive_size(ckpt.get(ckpt_io.BN_STATISTICS_SIZE))  # QAT: the file it started from's
    if out["quantization_aware"] and frozen is not None and frozen != ckpt_io.trained_image_size(config):
        out["bn_statistics_size"] = frozen
    # --freeze_layers (or QAT from such a file): its frozen layers keep the statistics of the file it started from,
    # measured at that one's size, which train records layer by layer where they are not all its own (helper-426).
    sizes = ckpt_io.recorded_layer_sizes(ckpt)
    if sizes is not None and set(sizes) != {ckpt_io.trained_image_size(config)}:
        out["bn_statistics_sizes"] = sizes
    bn = config.get("bn_recalibration")
    # source: the file recalibrate-bn measured them for; none in average's record of its sources' alike measurements
    # (averaging.recalibration_kept), which a file recalibrate-bn wrote from a mean (whose own they are) holds
    out["bn_recalibration"] = {"image_size": ckpt_io.trained_image_size(bn), "images": _count(bn.get("images")),
                               "trained_at": ckpt_io.positive_size(bn.get("trained_at")),
                               "source": _text(bn.get("source"))} \
        if isinstance(bn, dict) else None
    metrics = ckpt.get("metrics")
    evaluated = {k: metrics[k] for k in ("top_1", "top_5", "raw_top_1", "raw_top_5")
                 if isinstance(metrics, dict) and _number(metrics.get(k)) is not None}
    if evaluated and _count(metrics.get("eval_images")) is not None:
        evaluated["eval_images"] = metrics["eval_images"]
    out["evaluated"] = evaluated or None
    skipped = _count(ckpt["nonfinite"].get("total")) if isinstance(ckpt.get("nonfinite"), dict) else None
    if skipped:
        out["skipped_nonfinite_steps"] = skipped
    return out


KINDS = {"ONNX file": "ONNX file", "ExecuTorch program": "ExecuTorch program (.pte)",
         "program": "torch.export program (.pt2)", "TensorFlow Lite file": "TensorFlow Lite file (.tflite)"}


def _describe_deployed(path: str, image_size: Optional[int]) -> Dict[str, Any]:
    from . import checkpoint as ckpt_io
    from .onnx_io import PIXEL_FORMATS, load_deployed

    model = load_deployed(path)
    model.check_size(image_size)
    meta = dict(model.metadata)
    hw = model.image_hw
    size = ckpt_io.recorded_image_size(meta)
    out: Dict[str, Any] = {"kind": KINDS.get(model.kind, model.kind), "input": model.input_text(),
                           "input_hw": list(hw) if hw else None, "batch": model.fixed_batch,
                           "class_num": model.class_num, "weights": model.weights,
                           "image_size": hw[0] if hw and hw[0] == hw[1] else None if hw else size}
    if isinstance(meta.get("width_mult"), float):
        out["width_mult"] = meta["width_mult"]
    at = image_size or size
    macs_hw = hw or ((at, at) if at else None)
    macs = macs_if_known(meta.get("width_mult"), macs_hw, model.class_num)
    if macs is not None:
        out.update(macs=macs, macs_image_size=list(macs_hw))
    if model.image_input:
        out["channels"] = PIXEL_FORMATS[model.pixel_format][1]
    if model.kind == "TensorFlow Lite file":  # what Android's Task Library and ML Kit are given
        from .tflite_io import activation_peak, task_library_labels

        out["task_library_labels"] = task_library_labels(path)
        peak = activation_peak(path)
        out["peak_activation_bytes"], out["peak_at"] = peak if peak else (None, None)
        out["input_levels"], out["output_levels"] = model.levels()  # an int8 input's and output's scale, zero point
    out["metadata"] = meta
    return out


def _levels(q: Dict[str, Any]) -> str:
    """An int8 tensor's quantization as ``info`` prints it: its scale in full (float32's 9 digits), its zero point."""
    return f"scale {q['scale']:.9g}, zero point {q['zero_point']}"


def describe_lines(d: Dict[str, Any]) -> List[str]:
    """:func:`describe`'s dict as the lines ``info FILE`` prints."""
    head = d["file"] + (f" (the newest checkpoint in {d['newest_in']})" if "newest_in" in d else "")
    lines = [f"{head}: {d.get('format', d['kind'])}, {d['bytes'] / 1e6:.2f} MB"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label + ':':<15} {text}")

    def held_out(held: Dict[str, Any]) -> None:
        of = f" of {held['folder']}" if held["folder"] else ""
        row("held out", f"val_split {held['val_split']:g} of each class{of}: its run's evaluation images, which eval "
                        f"of that folder evaluates again")

    def names(classes: List[str]) -> str:
        # A name with a comma (a folder "leaf, green") or spaces at its ends is quoted: "Sky, leaf, green, red
        # apple" read as four classes of three.
        shown = [json.dumps(c, ensure_ascii=False) if "," in c or c != c.strip() or c.startswith('"') else c
                 for c in classes[:8]]
        return ", ".join(shown) + (f" ... ({len(classes)})" if len(classes) > 8 else "")

    at = d.get("macs_image_size")
    macs = f"{d['macs']:,} ({d['macs'] / 1e6:.1f} M) at {at[0]}x{at[1]}" if "macs" in d else "unknown"
    if d["kind"] != "checkpoint":
        inside = ", quantized to int8 inside" if d["kind"].startswith("TensorFlow Lite") and \
            str(d["weights"]).startswith("INT8") and not d.get("channels") and d["input"].startswith("float") else ""
        row("input", d["input"] + ("" if d["batch"] else ", batch dynamic") + inside
            + (", the normalised values' levels at " + _levels(d["input_levels"]) if d.get("input_levels") else ""))
        probabilities = d["metadata"].get("output") == "probabilities"  # onnx_io.PROBABILITIES
        row("output", (plural(d['class_num'], 'class', 'classes', spec=',') if d["class_num"] else "not known")
            + (", their probabilities (a softmax in the file)" if probabilities else "")
            + (", int8 levels at " + _levels(d["output_levels"]) if d.get("output_levels") else ""))
        row("precision", d["weights"])  # fp32 or the INT8 scheme; the metadata's "weights": which were exported
        row("multiply-adds", macs)
        meta = d["metadata"]
        if meta.get("mean") and meta.get("std"):
            row("normalisation", f"mean {meta['mean']}, std {meta['std']} of 0-1 RGB values: "
                + ("inside the file, which takes pixels" if d.get("channels") else
                   "the caller's, before quantizing the values to the input's levels" if d["input"].startswith("int8")
                   else "the caller's, before the file"))
        for key, value in meta.items():
            if key not in ("quantization", "classes", "mean", "std", "held_out", "input", "pixel_format", "class_num",
                           "output"):
                row(key, str(value))
        held = meta.get("held_out")  # as a checkpoint's: eval of that folder finds them again (helper-261)
        if isinstance(held, dict) and _number(held.get("val_split")) is not None and 0 < held["val_split"] < 1:
            held_out({"val_split": held["val_split"], "folder": _text(held.get("folder"))})
        if _names(meta.get("classes")):
            row("classes", names(meta["classes"]))
        if d.get("peak_activation_bytes"):
            row("activations", f"{d['peak_activation_bytes'] / 1024:,.1f} KiB at most at once ({d['peak_at']}: its "
                               f"inputs and outputs), the floor of a tensor arena (TensorFlow Lite for "
                               f"Microcontrollers adds its own bookkeeping)")
        if "task_library_labels" in d:
            labels = d["task_library_labels"]
            row("Task Library", "no TensorFlow Lite Support metadata (what Android's ImageClassifier and ML Kit read "
                                "to feed it)" if labels is None else
                "TensorFlow Lite Support metadata for Android's ImageClassifier and ML Kit, "
                + (f"labels.txt of {labels} names" if labels else "no labels file"))
        return lines
    size = d["image_size"]
    row("model", f"MobileNetV1 width_mult {d['width_mult']:g}, {plural(d['class_num'], 'class', 'classes', spec=',')}, "
                 f"padding {d['padding']}"
                 + (" (not recorded: MindSpore's network pads SAME; --padding builds it otherwise in eval, "
                    "predict, export, convert and recalibrate-bn)"
                    if d.get("padding_recorded") is False else ""))
    row("parameters", f"{d['params']:,}")
    row("multiply-adds", macs if at else macs + " (no image size recorded: --image_size N)")
    row("data", f"{d['dataset'] or 'not recorded'}, " + (f"image_size {size}" if size else "no image size recorded")
        + (f" (its run's evaluations, eval_image_size; trained at {d['trained_image_size']})"
           if d.get("trained_image_size") else ""))
    if d.get("normalisation"):
        row("normalisation", f"mean {d['normalisation']['mean']}, std {d['normalisation']['std']} of 0-1 RGB values "
                             f"(its run's --mean/--std), which eval, predict and export follow")
    if d.get("image_reading"):
        seed = d["image_reading"].get("antialias") is False and not d["dataset"]
        row("images", ", ".join(f"{k} {v}" for k, v in d["image_reading"].items())
            + (" (MindSpore's plain bilinear, as the seed resized)" if seed else "")
            + ", which eval, predict and export follow")
    if d.get("held_out"):
        held_out(d["held_out"])
    row("classes", names(d["classes"]) if d["classes"] else "not named (indices)")
    t = d.get("training")
    if t and "epoch" in t:
        of = f" of {t['epochs']}" if t["epochs"] else ""
        steps = plural(t["step_in_epoch"], "step")
        where = f"{steps} into epoch {t['epoch'] + 1}{of}" if t["step_in_epoch"] else f"epoch {t['epoch']}{of}"
        if t["step"] is not None:
            where += f", step {t['step']}" + (f" ({plural(t['steps_per_epoch'], 'step')} an epoch)"
                                              if t["steps_per_epoch"] else "")
        row("training", where)
        recipe = ", ".join(f"{k} {t[k]}" for k in ("batch_size", "opt", "lr_decay_mode", "lr_max", "lr_per_epoch",
                                                   "precision") if k in t)
        if "precision_used" in t:
            recipe = recipe.replace(f"precision {t['precision']}", f"precision {t['precision']} "
                                    f"({t['precision_used']} where it was saved)", 1)
        if "samples_per_step" in t:
            recipe = recipe.replace(f"batch_size {t['batch_size']}", f"batch_size {t['batch_size']} "
                                    f"({t['samples_per_step']} images a step: processes x batch_size x "
                                    f"grad_accum_steps)", 1)
        if "lr_base_size" in t:
            recipe = recipe.replace(f"lr_max {t['lr_max']}", f"lr_max {t['lr_max']} (scaled to "
                                    f"{t['lr_max_scaled']:.6g}: lr_base_size {t['lr_base_size']})", 1)
        if "class_balance" in t:
            recipe += (", " if recipe else "") + f"class_balance {t['class_balance']:g}"
        if "bn_momentum" in t:
            recipe += (", " if recipe else "") + f"bn_momentum {t['bn_momentum']:g}"
        if "image_size_start" in t:
            recipe += (", " if recipe else "") + (f"progressive resizing from image_size {t['image_size_start']} over "
                                                  f"{t['image_size_ramp']:g} of the epochs")
        if recipe:
            row("recipe", recipe)
        if "regularisation" in t:
            row("regularisation", ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in t["regularisation"].items())
                or "none beyond the crop and flip (the seed's)")
        if "pre_trained" in t:
            frozen = t["pre_trained"]["freeze_layers"]
            row("started from", t["pre_trained"]["file"] + (f" (pre_trained), its first {frozen} layers frozen "
                                                              f"(freeze_layers)" if frozen else " (pre_trained)"))
        if "freeze_layers" in t:
            row("frozen", f"its first {t['freeze_layers']} layers (freeze_layers), at their random initial weights: "
                          f"no pre_trained")
        if "teacher" in t:
            taught = t["teacher"]
            file = "" if taught.get("file") in (None, taught["teacher"]) else f"{taught['file']}, "
            row("teacher", taught["teacher"] + (f" ({file}sha256 {taught['sha256'][:12]})" if "file" in taught else "")
                + "".join(f", {k} {taught[k]:g}" for k in ("distill_alpha", "distill_temperature") if k in taught))
    elif t:
        row("training", f"global_step {t['global_step']}")
    ema = d["weight_average"]
    if ema:
        known = ", ".join(f"{k} {v}" for k, v in (("ema_decay", ema["decay"]), ("updates", ema["updates"]))
                          if v is not None)
        damaged = "trained weights" in d.get("nonfinite_tensors", ())
        row("weights", ("trained, which hold NaN or infinite values" if damaged else "trained")
            + f", and their exponential moving average{f' ({known})' if known else ''}, which eval, export and "
              f"predict take (--use_ema False: the trained ones{', which they refuse' if damaged else ''})")
    elif d.get("taken_average"):
        taken = d["taken_average"]
        known = ", ".join(f"{k} {v}" for k, v in (("ema_decay", taken["decay"]), ("updates", taken["updates"]))
                          if v is not None)
        row("weights", f"the exponential moving average of a run's weights{f' ({known})' if known else ''}, taken "
                       f"from {taken['source']} ({taken['by']})")
    elif d.get("averaged"):
        files, which = d["averaged"]["sources"], d["averaged"]["weights"]
        kind = {"ema": "weight averages", "unrecorded": "weights of no record (MindSpore files without Momentum "
                "buffers: trained ones or a run's moving average)"}
        kinds = " and ".join(sorted({kind.get(w, "trained weights") for w in which}))
        row("weights", f"the mean of {len(files)} checkpoints' {kinds or 'weights'} (mobilenet-v1 average): "
                       + ", ".join(files[:4]) + (f" ... ({len(files)})" if len(files) > 4 else ""))
    elif ((d.get("format") == "MindSpore checkpoint" or d.get("trained_by") == "mindspore")
          and not d["momentum_buffers"] and "momentum buffers" not in (d.get("nonfinite_tensors") or [])
          and not d.get("momentum_buffers_misfit")):
        # convert, average and recalibrate-bn write a run's moving average there without a record of it (a
        # MindSpore file holds only tensors); the seed's files, and convert's of trained weights, hold the
        # Momentum buffers beside trained weights. A .pt or .safetensors written from such a file knows no more.
        row("weights", "not recorded: a MindSpore .ckpt without Momentum buffers may hold trained weights or a "
                       "run's moving average (convert of a checkpoint with --ema_decay writes that)"
            + ("" if d.get("format") == "MindSpore checkpoint" else "; this file's are such a file's"))
    else:
        row("weights", "trained")
    if d["quantization_aware"]:
        row("quantization", "quantization-aware (INT8 simulated)"
            + (f", its activation ranges {'' if d.get('qat_ranges_fixed') else 'to be '}fixed after epoch "
               f"{d['qat_range_epochs']} (qat_range_epochs)" if d.get("qat_range_epochs") else "")
            + (f"; its BatchNorm statistics, frozen, measured at {d['bn_statistics_size']} (the file it started "
               f"from)" if d.get("bn_statistics_size") else "")
            + ": export writes its INT8 ONNX file")
    if d.get("bn_statistics_sizes"):
        row("BN statistics", f"measured at {layer_sizes_text(d['bn_statistics_sizes'])}: the layers its run "
                             f"froze kept those of the file it started from")
    bn = d["bn_recalibration"]
    if bn:
        # An average of such files holds the mean of their statistics, which are not those of its mean weights:
        # said so, with what recalibrate-bn does about it (helper-384: "measured anew" told the user it was done).
        # The mean recalibrate-bn measured since (its record names the file) holds its mean weights' own: told to
        # run recalibrate-bn of it again, a user would do so for ever.
        averaged = bool(d.get("averaged")) and not bn.get("source")
        row("BatchNorm", ("the mean of its sources' statistics, each measured anew (recalibrate-bn)" if averaged
                          else "statistics measured anew (recalibrate-bn)")
            + (f" at {bn['image_size']}" if bn["image_size"] else "")
            + (f" on {bn['images']} images" if bn["images"] else "")
            + (f", trained at {bn['trained_at']}" if bn["trained_at"] else "")
            + ("; not its mean weights' own: recalibrate-bn of this file measures those" if averaged else ""))
    e = d["evaluated"]
    if e:
        shown = ", ".join(f"{label} {e[k]:.4f}" for k, label in (("top_1", "top-1"), ("top_5", "top-5")) if k in e)
        raw = ", ".join(f"{label} {e[k]:.4f}" for k, label in (("raw_top_1", "top-1"), ("raw_top_5", "top-5"))
                        if k in e)
        images = f" ({plural(e['eval_images'], 'image')})" if "eval_images" in e else ""
        row("evaluated", (shown or "no top-1 recorded") + images
            + (f"; that of the weight average; the trained weights: {raw}" if raw else ""))
    if d.get("skipped_nonfinite_steps"):
        row("skipped steps", f"{d['skipped_nonfinite_steps']} non-finite")
    if d.get("nonfinite_statistics_only"):
        trained = " --use_ema False" if d["weight_average"] else ""
        row("repair", f"its trained weights' NaN or infinite values are BatchNorm statistics alone (an fp16 run's "
                      f"variance, say): mobilenet-v1 recalibrate-bn FILE{trained} --dataset_path DATA --out NEW "
                      f"measures them anew")
    if d.get("momentum_buffers_misfit"):
        row("resume", f"no: its momentum buffers do not fit its network ({d['momentum_buffers_misfit']}), which "
                      f"train --pre_trained with --pretrain_epoch_size refuses to continue (with --pretrain_epoch_size "
                      f"0 it starts from its weights)")
    elif d.get("nonfinite_tensors") == ["momentum buffers"]:
        row("resume", "no: its momentum buffers hold NaN or infinite values, which train --pre_trained with "
                      "--pretrain_epoch_size refuses to continue (with --pretrain_epoch_size 0 it starts from its "
                      "weights)")
    elif d.get("nonfinite_tensors"):
        parts = d["nonfinite_tensors"]
        start = "its weight average" if d["weight_average"] else "its weights"
        row("resume", f"no: its {' and '.join(parts)} {'holds' if parts == ['optimizer state'] else 'hold'} NaN or "
                      f"infinite values, which train --resume refuses (train --pre_trained FILE starts from {start})")
    else:
        row("resume", "a training state (optimizer, RNG): train --resume FILE continues its run" if d["resumable"]
            else "with --pre_trained and --pretrain_epoch_size (its Momentum buffers continue)"
            if d["momentum_buffers"] else "no training state: weights only (train --pre_trained FILE starts from them)")
    if d.get("imported"):
        row("imported", d["imported"])
    return lines
