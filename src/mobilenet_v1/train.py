"""``mobilenet-v1 train``: wires configuration, data, model, optimiser and checkpoints together."""
import os
import random
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from . import checkpoint as ckpt_io
from . import distributed
from .config import Config, dump_yaml, load_config, to_dict
from .data import DataOptions, build_loader
from .engine import (EpochResult, autocast, make_optimizer, make_scaler, resolve_device,
                     resolve_precision, train_one_epoch)
from .losses import CrossEntropySmooth
from .model import MobileNetV1
from .runtime import header, print0
from .schedules import get_lr


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def data_options(cfg: Config, device: torch.device, train: bool = True) -> DataOptions:
    batch = cfg.batch_size if train or not cfg.eval_batch_size else cfg.eval_batch_size
    return DataOptions(dataset=cfg.dataset, dataset_path=cfg.dataset_path, batch_size=batch,
                       image_size=cfg.image_size, seed=cfg.seed, num_workers=cfg.num_workers,
                       channels_last=cfg.channels_last, flip=cfg.random_flip, pipeline=cfg.data_pipeline)


def build_model(cfg: Config) -> MobileNetV1:
    return MobileNetV1(class_num=cfg.class_num, width_mult=cfg.width_mult, padding=cfg.padding)


def model_args(cfg: Config) -> Dict[str, Any]:
    return {"class_num": cfg.class_num, "width_mult": cfg.width_mult, "padding": cfg.padding}


def build_criterion(cfg: Config) -> torch.nn.Module:
    if cfg.dataset == "imagenet2012" and cfg.use_label_smooth:
        return CrossEntropySmooth(sparse=True, reduction="mean", smooth_factor=cfg.label_smooth_factor,
                                  num_classes=cfg.class_num)
    if cfg.dataset == "imagenet2012":
        return CrossEntropySmooth(sparse=True, reduction="mean", smooth_factor=0.0, num_classes=cfg.class_num)
    return torch.nn.CrossEntropyLoss()


def float32_repr(value: float) -> str:
    """A loss as the seed prints it (a float32, shortest round-trip digits: ``2.1829057``)."""
    return str(np.float32(value))


def epoch_lines(epoch: int, result: EpochResult) -> List[str]:
    """The seed's two log lines for a finished epoch (``epoch`` counts from 1)."""
    ms = result.seconds * 1000.0
    return [f"epoch: {epoch} step: {result.steps}, loss is {float32_repr(result.last_loss)}",
            f"Epoch time: {ms:.3f}, per step time: {ms / max(result.steps, 1):.3f}"]


def save_training_checkpoint(path: str, model, optimizer, scaler, epoch: int, step: int, cfg: Config,
                             classes: Optional[List[str]]) -> None:
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
    ckpt_io.atomic_save(state, path)


def run(cfg: Config) -> Dict[str, Any]:
    """Train as configured; returns the last epoch's figures and the last checkpoint's path.

    Started by torchrun, every process calls this: DDP over a shard of the data each, rank 0 prints and
    saves under ``ckpt_0/``; the process group is left on return and on error."""
    dist = distributed.setup(cfg, "train")
    try:
        return _run(dist.apply(cfg), dist)
    finally:
        dist.cleanup()


def _run(cfg: Config, dist: distributed.Context) -> Dict[str, Any]:
    device = resolve_device(cfg.device_target)
    precision = resolve_precision(cfg.precision, device)
    seed_everything(cfg.seed)
    if device.type == "cuda":
        # Fixed input shapes: let cuDNN pick the fastest algorithm per layer once.
        torch.backends.cudnn.benchmark = True
    out_dir = dist.checkpoint_dir(cfg.save_checkpoint_path)
    print0(header(device))
    print0("configuration:\n" + dump_yaml(cfg).rstrip())
    if dist.enabled:
        print0(dist.describe(cfg.batch_size))
    loader = build_loader(data_options(cfg, device), train=True, device=device, drop_last=True, **dist.shard())
    if cfg.save_checkpoint and dist.is_rank0:
        os.makedirs(out_dir, exist_ok=True)
        ckpt_io.atomic_save_text(dump_yaml(cfg), os.path.join(out_dir, "config.yaml"))
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"dataset_path {cfg.dataset_path}: {loader.num_samples} training samples make no "
                         f"full batch of batch_size {cfg.batch_size}")
    lr = get_lr(cfg.lr_init, cfg.lr_end, cfg.lr_max, cfg.warmup_epochs, cfg.epoch_size, steps_per_epoch,
                cfg.lr_decay_mode)

    model = build_model(cfg)
    if cfg.pre_trained:
        source = ckpt_io.load_file(cfg.pre_trained)
        skipped = ckpt_io.load_weights(model, ckpt_io.model_state(source), cfg.pre_trained,
                                       skip_head_mismatch=True)
        print0(f"pre_trained: loaded {cfg.pre_trained}" +
               (f"; left out {', '.join(skipped)} (another class count), the classifier starts fresh"
                if skipped else ""))
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    model = dist.wrap(model, device, cfg.sync_bn)
    criterion = build_criterion(cfg)
    optimizer = make_optimizer(model, float(lr[0]), cfg.momentum, cfg.weight_decay, device)
    scaler = make_scaler(precision, device, cfg.loss_scale)
    step_model = torch.compile(model) if cfg.compile else model

    print0(f"training: {loader.num_samples} samples, {steps_per_epoch} steps per epoch, epochs "
           f"{cfg.pretrain_epoch_size + 1}..{cfg.epoch_size}, precision {precision}, device {device}")
    last_path, result, epoch_seconds = "", None, []
    for epoch in range(cfg.pretrain_epoch_size, cfg.epoch_size):
        loader.set_epoch(epoch)
        lrs = lr[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        result = train_one_epoch(step_model, loader, criterion, optimizer, scaler, lrs, device, precision)
        epoch_seconds.append(result.seconds)
        dist.sync_buffers(model)
        for line in epoch_lines(epoch + 1, result):
            print0(line)
        done = epoch + 1
        if cfg.save_checkpoint and (done % cfg.save_checkpoint_epochs == 0 or done == cfg.epoch_size):
            last_path = os.path.join(out_dir, ckpt_io.checkpoint_name(done, steps_per_epoch))
            if dist.is_rank0:
                save_training_checkpoint(last_path, model, optimizer, scaler, done, done * steps_per_epoch, cfg,
                                         loader.classes)
                ckpt_io.prune_checkpoints(out_dir, cfg.keep_checkpoint_max)
    dist.check_replicas(model)
    return {"checkpoint": last_path, "last_loss": result.last_loss if result else float("nan"),
            "steps_per_epoch": steps_per_epoch, "epoch_seconds": epoch_seconds,
            "images_per_epoch": steps_per_epoch * cfg.batch_size * dist.world_size}


def main(argv: Sequence[str]) -> int:
    cfg = load_config(argv)
    run(cfg)
    return 0
