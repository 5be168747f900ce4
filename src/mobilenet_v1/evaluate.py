"""``mobilenet-v1 eval``: top-1 and top-5 of a checkpoint, or of an ONNX file (fp32 or INT8, run in
ONNX Runtime on the CPU), over the whole eval set; both through the same loader and ``engine.evaluate``."""
import dataclasses
import json
import sys
from typing import Dict, Optional, Sequence, Set

import torch

from . import checkpoint as ckpt_io
from . import distributed
from .api import model_from_checkpoint
from .config import Config, load_config_and_given
from .data import build_loader
from .engine import evaluate, resolve_device, resolve_precision
from .onnx_io import OnnxModel, is_onnx_file
from .runtime import print0
from .train import data_options


def accuracy(counts: Dict[str, int]) -> Dict[str, float]:
    total = max(counts["total"], 1)
    return {"top_5_accuracy": counts["top_5_correct"] / total, "top_1_accuracy": counts["top_1_correct"] / total}


def onnx_model_and_data(cfg: Config, path: str):
    """An ONNX file runs in ONNX Runtime on the CPU, so its batches are made there, in fp32 and NCHW; its
    graph has a fixed input size, which must be the configuration's ``image_size``."""
    model = OnnxModel(path)
    hw = model.image_hw
    if hw is not None and hw[0] != hw[1]:
        raise ValueError(f"{path} takes {hw[0]}x{hw[1]} inputs; evaluation needs a square image_size")
    if hw is not None and hw[0] != cfg.image_size:
        raise ValueError(f"{path} takes {hw[0]}x{hw[1]} inputs but image_size is {cfg.image_size}: "
                         f"pass --image_size {hw[0]}")
    trained_on = model.metadata.get("dataset")
    if trained_on and trained_on != cfg.dataset:
        raise ValueError(f"{path} was exported from a {trained_on} model, whose inputs are normalised "
                         f"differently from {cfg.dataset}'s: pass --dataset {trained_on}")
    note = model.saturation_note()
    if note:
        print0(note, file=sys.stderr)
    device = torch.device("cpu")
    opts = dataclasses.replace(data_options(cfg, device, train=False), channels_last=False)
    return model, device, "fp32", opts


def run(cfg: Config, given: Optional[Set[str]] = None) -> Dict[str, float]:
    """Top-1/top-5 of ``checkpoint_path``. Started by torchrun, each process evaluates a disjoint shard
    (together every sample exactly once, no padding) and the hit counts are summed over the ranks, so
    the result equals the single-process one.

    ``given``: the keys the user set (``config.load_config_and_given``); an ``image_size`` left at its default
    becomes the one the checkpoint was trained at. None: every value of ``cfg`` is meant as it is."""
    dist = distributed.setup(cfg, "eval")
    try:
        return _run(cfg, dist, given)
    finally:
        dist.cleanup()


def trained_size(cfg: Config, ckpt: Dict, path: str, given: Optional[Set[str]]) -> Config:
    """``cfg`` with the checkpoint's training image_size where the user left it at its default (a
    demo model trained at 64 scored 16% at the default 224 without a word); a note where they chose
    another size."""
    recorded = (ckpt.get("config") or {}).get("image_size")
    if not isinstance(recorded, int) or recorded == cfg.image_size:
        return cfg
    if given is not None and "image_size" not in given:
        print0(f"image_size {recorded}: the size {path} was trained at (--image_size to evaluate at another)",
               file=sys.stderr)
        return dataclasses.replace(cfg, image_size=recorded)
    print0(f"note: {path} was trained at image_size {recorded}; evaluating at {cfg.image_size} as asked",
           file=sys.stderr)
    return cfg


def _run(cfg: Config, dist: distributed.Context, given: Optional[Set[str]] = None) -> Dict[str, float]:
    if not cfg.checkpoint_path:
        raise ValueError("checkpoint_path is not set: pass --checkpoint_path CKPT")
    # A run folder stands for its newest checkpoint, which may change while training goes on there:
    # rank 0 chooses and every rank evaluates that file (summed counts of two models mean nothing).
    path, error = "", None
    if dist.is_rank0:
        try:
            path = ckpt_io.resolve_checkpoint_path(cfg.checkpoint_path)
        except ckpt_io.CheckpointError as e:  # the other ranks must not wait for a choice that never comes
            error = str(e)
        except OSError as e:  # the folder unreadable, or gone between the look and the listing
            error = f"checkpoint_path {cfg.checkpoint_path}: cannot list it: {e.strerror or e}"
    path, error = dist.broadcast_object((path, error))
    if error is not None:
        raise ckpt_io.CheckpointError(error)
    if is_onnx_file(path):
        model, device, precision, opts = onnx_model_and_data(cfg, path)
        classes = model.metadata.get("classes")
    else:
        device = resolve_device(cfg.device_target)
        precision = resolve_precision(cfg.precision, device)
        ckpt = ckpt_io.load_file(path)
        model, _ = model_from_checkpoint(ckpt, path, cfg.use_ema)
        note = ckpt_io.weights_note(ckpt, cfg.use_ema)
        if note:
            print0(note)
        classes = ckpt.get("classes")
        cfg = trained_size(cfg, ckpt, path, given)
        memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(device=device, memory_format=memory_format)
        opts = data_options(cfg, device, train=False)
    if dist.enabled and cfg.eval_drop_last:
        print0(f"eval_drop_last: each of the {dist.world_size} processes drops its own last partial batch; "
               f"the count matches the seed's only in one process")
    # An image folder is labelled by the class list the model was trained on, where the file records it.
    loader = build_loader(opts, train=False, device=device, drop_last=cfg.eval_drop_last,
                          classes=classes if isinstance(classes, list) else None, **dist.shard())
    counts = dist.all_reduce_counts(evaluate(model, loader, device, precision), device)
    if counts["total"] == 0:
        raise ValueError(f"dataset_path {cfg.dataset_path}: no evaluation samples")
    return {**accuracy(counts), "total": counts["total"], "ckpt": path}


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    cfg, given = load_config_and_given(argv)
    result = run(cfg, given)
    if as_json:
        print0(json.dumps({"top_1_accuracy": result["top_1_accuracy"], "top_5_accuracy": result["top_5_accuracy"],
                           "total": result["total"], "ckpt": result["ckpt"]}))
    else:
        print0("result: {'top_5_accuracy': %r, 'top_1_accuracy': %r} ckpt=%s"
               % (result["top_5_accuracy"], result["top_1_accuracy"], result["ckpt"]))
    return 0
