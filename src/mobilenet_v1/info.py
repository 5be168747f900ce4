"""Parameter and multiply-add counts of MobileNetV1, from the layer table (no forward pass needed); what
a model file holds (``mobilenet-v1 info FILE``)."""
import math
import os
from typing import Any, Dict, List

from .model import layer_specs


def count_macs(width_mult: float = 1.0, image_size: int = 224, class_num: int = 1000) -> int:
    """Multiply-adds of one forward pass: convs and the FC layer (BatchNorm, ReLU and pooling excluded,
    as in the paper's Table 1)."""
    size, macs = image_size, 0
    in_ch = 3
    for kind, cin, cout, stride in layer_specs(width_mult):
        size = math.ceil(size / stride)  # SAME and padding=1 give the same output size
        kernel = 1 if kind == "pw" else 3
        per_out = (1 if kind == "dw" else cin) * kernel * kernel
        macs += size * size * cout * per_out
        in_ch = cout
    return macs + in_ch * class_num


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

def describe(path: str) -> Dict[str, Any]:
    """What a model file holds, read as ``eval`` reads it (a run folder: its newest checkpoint): for a
    checkpoint (ours, a MindSpore ``.ckpt``, a ``.safetensors``, timm's weights) the network, what it was
    trained on and how far, which weights it holds and whether a run can resume from it; for an exported
    file (``.onnx``, ``.pte``, ``.pt2``) its input, output, weights and metadata. Multiply-adds at the size
    it takes or records. Raises :class:`checkpoint.CheckpointError` for a file that is neither."""
    from . import checkpoint as ckpt_io
    from .onnx_io import is_deployed_file

    file = ckpt_io.resolve_checkpoint_path(path)
    if not os.path.isfile(file):
        raise ckpt_io.CheckpointError(f"{path}: no such file")
    out: Dict[str, Any] = {"file": file, "bytes": os.path.getsize(file)}
    if file != path:
        out["newest_in"] = path
    if is_deployed_file(file):
        out.update(_describe_deployed(file))
    else:
        out.update(_describe_checkpoint(file))
    size, width = out.get("image_size"), out.get("width_mult")
    if isinstance(size, int) and isinstance(width, float) and isinstance(out.get("class_num"), int):
        out.update(macs=count_macs(width, size, out["class_num"]), macs_image_size=size)
    return out


def _describe_checkpoint(path: str) -> Dict[str, Any]:
    from . import checkpoint as ckpt_io
    from .api import model_from_checkpoint
    from .mindspore_io import FORMAT_NAMES, detect_format

    ckpt = ckpt_io.load_file(path)
    model, args = model_from_checkpoint(ckpt, path)
    fmt = detect_format(path)
    if ckpt.get("imported"):
        container = f"timm's weights ({'PyTorch' if fmt == 'torch' else FORMAT_NAMES.get(fmt, fmt)})"
    elif fmt != "torch":
        container = FORMAT_NAMES.get(fmt, fmt)
    else:
        ours = ckpt.get("format") == ckpt_io.FORMAT
        container = "mobilenet-v1 checkpoint (PyTorch)" if ours else "PyTorch state dict"
    config = ckpt.get("config") or {}
    out: Dict[str, Any] = {"kind": "checkpoint", "format": container, "width_mult": float(args["width_mult"]),
                           "class_num": int(args["class_num"]), "padding": args["padding"],
                           "params": sum(p.numel() for p in model.parameters()),
                           "image_size": ckpt_io.recorded_image_size(config), "dataset": config.get("dataset"),
                           "classes": [str(c) for c in ckpt["classes"]] if ckpt.get("classes") else None}
    if ckpt.get("imported"):
        out["imported"] = ckpt["imported"]
    spe = ckpt.get("steps_per_epoch")
    if isinstance(ckpt.get("epoch"), int):
        out["training"] = {"epoch": ckpt["epoch"], "epochs": config.get("epoch_size"), "step": ckpt.get("step"),
                           "steps_per_epoch": spe, "step_in_epoch": ckpt.get("step_in_epoch", 0),
                           "samples_per_step": ckpt.get("samples_per_step"),
                           **{k: config.get(k) for k in ("batch_size", "opt", "lr_decay_mode", "lr_max", "precision")
                              if k in config}}
    elif ckpt.get("global_step") is not None:  # a MindSpore file
        out["training"] = {"step": ckpt["global_step"]}
    # A run resumes (--resume) from a file with its optimizer state and RNG; a MindSpore file's Momentum
    # buffers continue with --pre_trained and --pretrain_epoch_size.
    out["resumable"] = all(k in ckpt for k in ckpt_io.TRAINING_KEYS)
    out["momentum_buffers"] = bool(ckpt.get("moments"))
    ema = ckpt.get("ema") if ckpt_io.ema_state(ckpt) is not None else None
    out["weight_average"] = {"decay": ema.get("decay"), "updates": ema.get("updates")} if ema else None
    out["quantization_aware"] = model.quant is not None
    out["bn_recalibration"] = config.get("bn_recalibration")
    metrics = ckpt.get("metrics")
    out["evaluated"] = {k: metrics[k] for k in ("top_1", "top_5", "eval_images")
                        if isinstance(metrics.get(k), (int, float))} if isinstance(metrics, dict) else None
    skipped = ckpt["nonfinite"].get("total") if isinstance(ckpt.get("nonfinite"), dict) else None
    if skipped:
        out["skipped_nonfinite_steps"] = skipped
    return out


KINDS = {"ONNX file": "ONNX file", "ExecuTorch program": "ExecuTorch program (.pte)",
         "program": "torch.export program (.pt2)"}


def _describe_deployed(path: str) -> Dict[str, Any]:
    from . import checkpoint as ckpt_io
    from .onnx_io import PIXEL_FORMATS, load_deployed

    model = load_deployed(path)
    meta = dict(model.metadata)
    hw = model.image_hw
    shape = [d if d is not None else "N" if i == 0 else "?" for i, d in enumerate(model.input_shape)]
    if model.image_input:
        shown = f"uint8 {model.pixel_format} pixels ({', '.join(map(str, shape))})"
    else:
        shown = f"float ({', '.join(map(str, shape))})"
    out: Dict[str, Any] = {"kind": KINDS.get(model.kind, model.kind), "input": shown, "input_hw": hw and list(hw),
                           "batch": model.fixed_batch or "dynamic",
                           "class_num": model.class_num, "weights": meta.get("quantization") or "fp32",
                           "image_size": hw[0] if hw and hw[0] == hw[1] else ckpt_io.recorded_image_size(meta)}
    if isinstance(meta.get("width_mult"), float):
        out["width_mult"] = meta["width_mult"]
    if model.image_input:
        out["channels"] = PIXEL_FORMATS[model.pixel_format][1]
    out["metadata"] = meta
    return out


def describe_lines(d: Dict[str, Any]) -> List[str]:
    """:func:`describe`'s dict as the lines ``info FILE`` prints."""
    head = d["file"] + (f" (the newest checkpoint in {d['newest_in']})" if "newest_in" in d else "")
    lines = [f"{head}: {d.get('format', d['kind'])}, {d['bytes'] / 1e6:.2f} MB"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label + ':':<16}{text}")

    size, at = d.get("image_size"), d.get("macs_image_size")
    macs = f"{d['macs']:,} ({d['macs'] / 1e6:.1f} M) at {at}x{at}" if "macs" in d else "unknown"
    if d["kind"] == "checkpoint":
        row("model", f"MobileNetV1 width_mult {d['width_mult']:g}, {d['class_num']} classes, padding {d['padding']}")
        row("parameters", f"{d['params']:,}")
        row("multiply-adds", macs if at else macs + " (no image size recorded: --image_size N)")
        row("data", f"{d['dataset'] or 'not recorded'}, "
            + (f"image_size {size}" if size else "no image size recorded"))
        classes = d["classes"]
        row("classes", ", ".join(classes[:8]) + (f" ... ({len(classes)})" if len(classes) > 8 else "")
            if classes else "not named (indices)")
        t = d.get("training")
        if t and "epoch" in t:
            where = f"epoch {t['epoch']}" + (f" of {t['epochs']}" if t.get("epochs") else "")
            if t.get("step_in_epoch"):
                where = f"{t['step_in_epoch']} steps into epoch {t['epoch'] + 1}" + (
                    f" of {t['epochs']}" if t.get("epochs") else "")
            recipe = ", ".join(f"{k} {t[k]}" for k in ("batch_size", "opt", "lr_decay_mode", "lr_max", "precision")
                               if t.get(k) is not None)
            row("training", f"{where}, step {t['step']}"
                + (f" ({t['steps_per_epoch']} steps an epoch)" if t.get("steps_per_epoch") else "")
                + (f"; {recipe}" if recipe else ""))
        elif t:
            row("training", f"global_step {t['step']} (MindSpore)")
        ema = d["weight_average"]
        row("weights", "trained" + (f", and their average (ema_decay {ema['decay']}, {ema['updates']} updates), "
                                    f"which eval, export and predict take (--use_ema False: the trained)"
                                    if ema else "")
            + ("; quantization-aware (INT8 simulated): export writes its INT8 ONNX file"
               if d["quantization_aware"] else ""))
        bn = d["bn_recalibration"]
        if isinstance(bn, dict):
            row("BatchNorm", f"statistics measured anew at {bn.get('image_size')} on {bn.get('images')} images"
                + (f" (trained at {bn['trained_at']})" if bn.get("trained_at") else ""))
        if d["evaluated"]:
            e = d["evaluated"]
            row("evaluated", f"top-1 {e.get('top_1', float('nan')):.4f}, top-5 {e.get('top_5', float('nan')):.4f}"
                + (f" ({e['eval_images']} images)" if "eval_images" in e else ""))
        if d.get("skipped_nonfinite_steps"):
            row("skipped steps", f"{d['skipped_nonfinite_steps']} non-finite")
        row("resume", "yes: train --resume FILE continues its run" if d["resumable"] else
            "with --pre_trained and --pretrain_epoch_size (its Momentum buffers continue)" if d["momentum_buffers"]
            else "no: weights only (train --pre_trained FILE starts from them)")
        if d.get("imported"):
            row("imported", d["imported"])
        return lines
    row("input", f"{d['input']}, batch {d['batch']}")
    row("output", f"{d['class_num']} classes" if d["class_num"] else "not known")
    row("weights", d["weights"])
    row("multiply-adds", macs)
    meta = d["metadata"]
    if meta.get("mean") and meta.get("std"):
        row("normalisation", f"mean {meta['mean']}, std {meta['std']} of 0-1 RGB values: "
            + ("inside the file, which takes pixels" if d.get("channels") else "the caller's, before the file"))
    for key, value in meta.items():
        if key not in ("quantization", "classes", "mean", "std", "held_out", "input", "pixel_format", "class_num"):
            row(key, str(value))
    classes = d["metadata"].get("classes")
    if classes:
        row("classes", ", ".join(map(str, classes[:8])) + (f" ... ({len(classes)})" if len(classes) > 8 else ""))
    return lines
