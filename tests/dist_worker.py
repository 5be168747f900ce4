"""Run by tests/test_distributed.py under torchrun (not collected by pytest): one launch checks the
shards, the arithmetic of DDP + sync_bn against one process, then trains and evaluates as
``mobilenet-v1 train`` / ``eval`` do, through the same functions.

argv: a JSON file with ``train`` and ``eval`` option lists, ``steps`` and ``out`` (the JSON file that
rank 0 writes).
"""
import copy
import dataclasses
import json
import sys

import torch
import torch.distributed as tdist

from mobilenet_v1 import distributed, evaluate, train
from mobilenet_v1.checkpoint import unwrap
from mobilenet_v1.config import load_config
from mobilenet_v1.data import build_loader
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.nonfinite import NonFiniteGuard
from mobilenet_v1.schedules import schedule

CPU = torch.device("cpu")


def shards(ctx: distributed.Context, cfg) -> dict:
    """This rank's indices, built exactly as train.run / evaluate.run build their loaders."""
    train_loader = build_loader(train.data_options(cfg), train=True, device=CPU, drop_last=True, **ctx.shard())
    eval_loader = build_loader(train.data_options(cfg, train=False), train=False, device=CPU, drop_last=False,
                               **ctx.shard())
    mine = {"rank": ctx.rank}
    for epoch in (0, 1):
        train_loader.set_epoch(epoch)
        mine[f"train_epoch{epoch}"] = train_loader.sampler.indices().tolist()
    mine["eval"] = eval_loader.sampler.indices().tolist()
    mine["eval_labels"] = torch.cat([y for _, y in eval_loader]).tolist()
    return mine


def job_and_alone(ctx: distributed.Context, cfg, sync_bn: bool):
    """The configuration of one process with the whole global batch, the float64 starting model, this
    job's DDP copy of it, the lone process's copy, and the criterion."""
    one_cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size * ctx.world_size)
    train.seed_everything(cfg.seed)
    start = train.build_model(cfg).double()
    job = ctx.wrap(copy.deepcopy(start), CPU, sync_bn=sync_bn)
    return one_cfg, start, job, copy.deepcopy(start), train.build_criterion(cfg)


def same_math(ctx: distributed.Context, cfg, steps: int, sync_bn: bool) -> list:
    """Largest weight/buffer difference after each of ``steps`` SGD steps between this job (batch_size
    per rank, DDP, ``sync_bn``) and one process with the whole global batch, in float64.

    float64, because in float32 this network at initialisation is too ill-conditioned to compare: one
    process against itself in float64 differs by ~1e-3 in gradients, and a perturbation grows about
    100x per step at lr 0.05, whatever the arithmetic order. In float64 rounding stays ~1e-14 and only
    a difference in the computation shows."""
    one_cfg, start, job, alone, criterion = job_and_alone(ctx, cfg, sync_bn)
    loader = build_loader(train.data_options(cfg), True, CPU, True, **ctx.shard())
    loader_one = build_loader(train.data_options(one_cfg), True, CPU, True)
    lr = schedule(cfg, len(loader))
    optimizers = [make_optimizer(m, float(lr[0]), cfg.momentum, cfg.weight_decay, CPU) for m in (job, alone)]
    diffs = []
    for step, ((x, y), (x1, y1)) in enumerate(zip(loader, loader_one)):
        if step == steps:
            break
        for model, opt, xb, yb in ((job, optimizers[0], x, y), (alone, optimizers[1], x1, y1)):
            for group in opt.param_groups:
                group["lr"] = float(lr[step])
            opt.zero_grad(set_to_none=True)
            criterion(model(xb.double()), yb).backward()
            opt.step()
        a, b = unwrap(job).state_dict(), alone.state_dict()
        diffs.append(max(float((a[k].double() - b[k].double()).abs().max()) for k in a))
    moved = max(float((alone.state_dict()[k] - v).abs().max()) for k, v in start.state_dict().items()
                if v.is_floating_point())
    return [diffs, moved]


def accumulated_math(ctx: distributed.Context, cfg, steps: int) -> list:
    """[largest weight/buffer difference, how far the weights moved, gradient all-reduces (whole ones)]
    after ``steps`` steps of two batches each through ``engine.train_one_epoch(accumulate=2)``: this job
    (DDP, which all-reduces only the second batch's gradients, and sync_bn) against one process with
    the whole global batches, in float64 (see :func:`same_math`)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    one_cfg, start, job, alone, criterion = job_and_alone(ctx, cfg, sync_bn=True)
    lrs = [0.05 * (steps - i) / steps for i in range(steps)]
    calls = [0]

    def counting(state, bucket):
        calls[0] += bucket.is_last()  # one all-reduce of the gradients ends with the last bucket
        return default_hooks.allreduce_hook(state, bucket)

    job.register_comm_hook(None, counting)
    for model, run_cfg, shard in ((job, cfg, ctx.shard()), (alone, one_cfg, {})):
        loader = build_loader(train.data_options(run_cfg), True, CPU, True, **shard)
        loader.set_epoch(0)
        opt = make_optimizer(model, lrs[0], cfg.momentum, cfg.weight_decay, CPU)
        # Both runs take part in the guard's all-reduce (a process group is joined), each on every rank.
        train_one_epoch(model, ((x.double(), y) for x, y in loader), criterion, opt, make_scaler("fp32", CPU, 1.0),
                        lrs, CPU, "fp32", guard=NonFiniteGuard(model, opt, CPU), accumulate=2)
    a, b = unwrap(job).state_dict(), alone.state_dict()
    diff = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    moved = max(float((b[k] - v).abs().max()) for k, v in start.state_dict().items() if v.is_floating_point())
    return [diff, moved, calls[0]]


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    cfg = load_config(spec["train"])
    ctx = distributed.setup(cfg)
    try:
        gathered = [None] * ctx.world_size
        tdist.all_gather_object(gathered, shards(ctx, cfg))
        synced = same_math(ctx, cfg, spec["steps"], sync_bn=True)
        unsynced = same_math(ctx, cfg, 1, sync_bn=False)
        accumulated = accumulated_math(ctx, cfg, 3)
        # train.run and evaluate.run find the process group joined and use it. Each rank's own step
        # losses are recorded on their way to train.run's logging.
        own, train_one_epoch_as_is = [], train.train_one_epoch

        def recording(*args, on_step, **kwargs):
            def hook(i, loss, lr):
                own.append(float(loss))
                on_step(i, loss, lr)
            return train_one_epoch_as_is(*args, on_step=hook, **kwargs)

        train.train_one_epoch = recording
        try:
            result = train.run(cfg)
        finally:
            train.train_one_epoch = train_one_epoch_as_is
        losses = [None] * ctx.world_size
        tdist.all_gather_object(losses, own)
        ev = evaluate.run(load_config(spec["eval"] + [f"--checkpoint_path={result['checkpoint']}"]), per_image=True)
        if ctx.is_rank0:
            with open(spec["out"], "w", encoding="utf-8") as f:
                json.dump({"shards": gathered, "synced": synced, "unsynced": unsynced, "accumulated": accumulated, "eval": ev,
                           "checkpoint": result["checkpoint"], "losses": losses}, f)
    finally:
        ctx.cleanup()


if __name__ == "__main__":
    main()
