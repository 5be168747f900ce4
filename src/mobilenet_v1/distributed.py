"""Data-parallel training and evaluation across processes started by ``torchrun``.

``torchrun`` (PyTorch's launcher, c10d rendezvous) starts one process per GPU, on one machine or
several, and tells each its place through the environment: ``RANK`` (global), ``WORLD_SIZE``,
``LOCAL_RANK`` (on its machine), ``MASTER_ADDR``/``MASTER_PORT``. :func:`setup` reads them, joins the
process group (NCCL on CUDA, gloo on the CPU) and returns a :class:`Context` that the commands use to
shard data, wrap the model in DDP, reduce evaluation counts and decide who writes. Without torchrun
the context is a single process and every method is a no-op, so the commands have one code path.

Layout of a distributed run (the seed's): checkpoints and ``config.yaml`` go to
``<save_checkpoint_path>/ckpt_0/``, written by global rank 0 only; no other rank writes anything.
"""
import dataclasses
import hashlib
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from torch.distributed.rendezvous import rendezvous
from torch import nn

from .checkpoint import (DISTRIBUTED_SUBFOLDER, RUN_CONFIG, file_sha256, list_checkpoints, other_layout_folder,
                         unwrap)
from .config import NO_CUDA_REFUSAL
from .runtime import JOB_MESSAGES, launcher_value, log0, plural, print0, ranks_text

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# Keys the machines of one job may give otherwise: where each finds the data, the run folder and the files it
# reads, the loader workers its CPUs allow, and resume (a restart sets it to auto where torchrun restarted).
PER_MACHINE_KEYS = frozenset({"dataset_path", "save_checkpoint_path", "pre_trained", "checkpoint_path", "ckpt_file",
                              "file_name", "teacher", "eval_labels", "resume", "num_workers", "device_num"})
# Of those, the files that every machine gives or none does (resume: auto, a file or none).
GIVEN_ALIKE_KEYS = ("pre_trained", "teacher", "eval_labels", "resume")


class DistributedError(ValueError):
    """A distributed launch that cannot work; the message says how to launch it."""


def launch_hint(command: str) -> str:
    return (f"torchrun --standalone --nproc_per_node=NUM_PROCESSES -m mobilenet_v1 {command} [--key=value ...] "
            f"on one machine (scripts/run_distribute_train.sh does this), or on each of N machines: "
            f"torchrun --nnodes=N --nproc_per_node=NUM_GPUS --rdzv_backend=c10d --rdzv_endpoint=HOST:PORT "
            f"--rdzv_id=JOB -m mobilenet_v1 {command} [--key=value ...]")


def torchrun_env() -> Optional[Dict[str, str]]:
    """The launcher's variables when this process was started by torchrun, else None."""
    if not launcher_value("WORLD_SIZE") or not launcher_value("RANK"):
        return None
    missing = [k for k in TORCHRUN_ENV if not launcher_value(k)]
    if missing:
        raise DistributedError(f"RANK and WORLD_SIZE are set but {', '.join(missing)} are not: start the "
                               f"processes with torchrun, which sets all of {', '.join(TORCHRUN_ENV)}")
    return {k: launcher_value(k) for k in TORCHRUN_ENV}


@dataclasses.dataclass
class Context:
    """Where this process stands in the job. ``world_size == 1`` and ``backend == ""``: not distributed."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    # False when the caller had already joined a process group: we neither create nor destroy it.
    owns_group: bool = False

    # How many times torchrun has restarted this job's workers (TORCHELASTIC_RESTART_COUNT); 0 at first.
    restarted: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.backend)

    @property
    def is_rank0(self) -> bool:
        return self.rank == 0

    def apply(self, cfg):
        """The configuration as run: ``device_num`` is the world size, ``run_distribute`` whether it is one."""
        if not self.enabled:
            if cfg.device_num == 1:
                return cfg
            print0(f"device_num {cfg.device_num}: this is one process (torchrun starts more: README, \"Several GPUs, "
                   f"several machines\"); training in 1")
            return dataclasses.replace(cfg, device_num=1)
        if cfg.device_num not in (1, self.world_size):
            print0(f"device_num {cfg.device_num}: torchrun started {self.world_size} processes; using "
                   f"{self.world_size}")
        return dataclasses.replace(cfg, device_num=self.world_size, run_distribute=True)

    def describe(self, batch_size: int, accumulate: int = 1) -> str:
        per_step = (f"{batch_size * self.world_size} per step" if accumulate == 1 else
                    f"{batch_size * self.world_size} per batch, x grad_accum_steps {accumulate} = "
                    f"{batch_size * self.world_size * accumulate} per step")
        return (f"distributed: {plural(self.world_size, 'process', 'processes')} ({self.backend}), "
                f"batch_size {batch_size} per "
                f"process = {per_step}; rank 0 prints and saves")

    def checkpoint_dir(self, base: str, continuing: bool = False) -> str:
        """The run's checkpoint folder, the same for every rank: ``<save_checkpoint_path>/ckpt_0`` when
        distributed (the seed's ``ckpt_{rank}`` of the one rank that saves), ``save_checkpoint_path``
        itself otherwise. Every rank reads from it (a resumed or restarted job: all ranks must load the
        same file), only rank 0 writes to it.

        A run ``continuing`` (``--resume auto``) keeps to the other folder where that holds its history
        and its own shows no run started there (no checkpoint, no ``config.yaml``): a run trained by one
        process goes on under torchrun in ``save_checkpoint_path`` itself, and a distributed one goes on
        in one process in its ``ckpt_0/``, rather than start over beside it. (A run started afresh in
        its own folder and stopped before its first checkpoint is not sent to another run's.)"""
        own = os.path.join(base, DISTRIBUTED_SUBFOLDER) if self.enabled else base
        if continuing:
            other = other_layout_folder(base, own)
            started = list_checkpoints(own) or os.path.exists(os.path.join(own, RUN_CONFIG))
            if not started and list_checkpoints(other):
                return other
        return own

    def shard(self) -> Dict[str, int]:
        """``build_loader`` arguments: this rank's disjoint shard of the data set."""
        return {"num_shards": self.world_size, "shard_id": self.rank}

    def wrap(self, model: nn.Module, device: torch.device, sync_bn: bool = False) -> nn.Module:
        """DDP around ``model`` (already on ``device``); BatchNorm synchronised across ranks with ``sync_bn``.

        Call before the optimizer is made: ``sync_bn`` replaces the BatchNorm modules (their parameters
        and buffers carry over, so checkpoints keep the plain model's names).
        """
        if not self.enabled:
            if sync_bn:
                print0("sync_bn: a single process has nothing to synchronise with; plain BatchNorm")
            return model
        if sync_bn:
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                # torch.nn.SyncBatchNorm refuses CPU tensors (and DDP refuses it on CPU modules).
                model = convert_sync_batchnorm(model)
        device_ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's BatchNorm running statistics.

        Without ``sync_bn`` each rank's last forward pass updates its statistics from its own shard. DDP
        copies rank 0's buffers to the others before every forward pass anyway, so doing it at the end of
        an epoch changes no result; it makes every rank hold exactly what rank 0 saves.
        """
        if not self.enabled:
            return
        for buf in unwrap(model).buffers():
            dist.broadcast(buf, src=0)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (anything picklable) on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def from_rank0(self, work: Callable[[], Any], failure: str, share: Callable[[Any], Any] = lambda r: r) -> Any:
        """``work()`` done by rank 0 alone (a choice, the run folder's files), where every rank calls this at the
        same point: rank 0 gets its result, the others ``share(result)`` (picklable). Where it raises, every rank
        raises: rank 0 its own error, the others one that says rank 0 ``failure`` and why, so that none waits
        at a collective rank 0 never reaches. Not distributed: ``work()``."""
        if not self.enabled:
            return work()
        result, error, said = _attempt(work) if self.is_rank0 else (None, None, None)
        # A file rank 0 could not write (checkpoint.CheckpointError's unwritten, reason) travels with the message:
        # every rank can then tell that failure from another one without a collective of its own.
        unwritten = (error.unwritten, error.reason) if hasattr(error, "unwritten") else None
        shared, message, unwritten = self.broadcast_object(
            (share(result) if self.is_rank0 and error is None else None, said, unwritten))
        if error is not None:
            raise error
        if message is not None:
            other = DistributedError(f"rank 0 {failure}: {message}")
            if unwritten is not None:
                other.unwritten, other.reason = unwritten  # type: ignore[attr-defined]
            raise other
        return result if self.is_rank0 else shared

    def file_from_rank0(self, work: Callable[[], Any], failure: str, bases: Sequence[str],
                        path_of: Callable[[Any], str] = lambda result: result) -> Any:
        """:meth:`from_rank0` for ``work()`` that chooses a file (``path_of(result)``; "": none) under one of
        ``bases``, paths that may differ by machine (:data:`PER_MACHINE_KEYS`: the same storage mounted
        elsewhere): rank 0 gets ``work()``'s result, every other rank the file under its own first base that
        holds it (a base that is the file itself: its own), or rank 0's path where none does."""
        def share(result: Any) -> Tuple[Optional[int], str]:
            path = path_of(result)
            for index, base in enumerate(bases if path else ()):
                relative = os.path.relpath(path, base) if base else os.pardir
                if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
                    return index, relative
            return None, path

        found = self.from_rank0(work, failure, share=share)
        if self.is_rank0:
            return found
        index, path = found
        return path if index is None else os.path.normpath(os.path.join(bases[index], path))

    def on_every_rank(self, work: Callable[[], Any], failure: str) -> Any:
        """``work()`` done by every rank at this same point (each loads rank 0's chosen file under its own path),
        its success agreed on: where it raises on any rank, every rank raises alike one error that names each
        rank that ``failure`` and why, rather than the others waiting at the next collective for one that ended
        (their own error said only that "another process ended", on machines whose log lacks the reason).
        A collective: call it on every rank or on none. Not distributed: ``work()``."""
        if not self.enabled:
            return work()
        result, error, said = _attempt(work)
        failed: Dict[str, List[int]] = {}  # each reason with the ranks that gave it: "ranks 1-7 cannot ..."
        for rank, text in enumerate(self.gather_objects(said)):
            if text is not None:
                failed.setdefault(text, []).append(rank)
        if not failed:
            return result
        joined = self.alike(DistributedError("; ".join(f"{ranks_text(ranks, self.world_size)} {failure}: {text}"
                                                       for text, ranks in failed.items())))
        if error is not None and not isinstance(error, (ValueError, OSError)):
            raise error  # a fault of the code (its traceback says it) or a Ctrl-C: this rank's own
        raise joined

    def alike(self, error: BaseException) -> BaseException:
        """``error``, which every rank raises at this same point (the outcome of a collective that gave every
        rank the same view, so that all stop or none does), marked to be said once a machine: each rank's
        message is gathered, and each machine's local rank 0 alone says each distinct one, naming the ranks it
        came from (:func:`runtime.job_error_lines`), as option errors are said once a machine.
        A collective: call it on every rank or on none. Not distributed: ``error`` as it is."""
        if self.enabled:
            texts = self.gather_objects(str(error))
            messages: Dict[str, List[int]] = {}
            for rank, text in enumerate(texts):
                messages.setdefault(text, []).append(rank)
            setattr(error, JOB_MESSAGES, (self.world_size, [(ranks, text) for text, ranks in messages.items()]))
        return error

    def check_same(self, values: Dict[str, Any], what: str,
                   advice: str = "every machine must run the same command on the same data (its paths may differ)"
                   ) -> None:
        """Every rank's ``values``, which the processes of a job must agree on (``what`` they are: "options",
        "data"), compared with rank 0's; where one differs, every rank raises alike, naming the keys, the values
        and the ranks. A job whose machines were given other options (or data) trained on apart, hung in a
        collective one rank never reached, or ended in gloo's "collective mismatch" (helper-114)."""
        if not self.enabled:
            return
        everyone = self.gather_objects(values)
        differ = [f"{key} {everyone[0].get(key)!r} on rank 0, {theirs.get(key)!r} on rank {rank}"
                  for rank, theirs in enumerate(everyone[1:], 1)
                  for key in sorted(set(everyone[0]) | set(theirs)) if everyone[0].get(key) != theirs.get(key)]
        if differ:
            raise self.alike(DistributedError(f"the processes of this job were given different {what}: "
                                              f"{'; '.join(differ[:6])}{' ...' if len(differ) > 6 else ''}; {advice}"))

    def check_options(self, cfg, given_alike: Sequence[str] = GIVEN_ALIKE_KEYS) -> None:
        """:meth:`check_same` on the configuration, less what may differ by machine (:data:`PER_MACHINE_KEYS`), but
        whether the files ``given_alike`` (the command's among :data:`GIVEN_ALIKE_KEYS`) are given."""
        from .config import to_dict

        if self.enabled:
            values = {k: v for k, v in to_dict(cfg).items() if k not in PER_MACHINE_KEYS}
            # A file's path may differ by machine, not whether one is given: rank 1's --pre_trained alone was
            # loaded, then overwritten by rank 0's initial weights in DDP's broadcast, without a word; --resume on
            # one machine alone hung the job, or moved its checkpoints aside and left a traceback.
            for key in given_alike:
                value = getattr(cfg, key, "")
                values[key] = "auto" if key == "resume" and value == "auto" else "(a file)" if value else "(none)"
            self.check_same(values, "options")

    def gather_objects(self, obj: Any) -> List[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        gathered: List[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def all_reduce_counts(self, counts: Dict[str, int], device: torch.device) -> Dict[str, int]:
        """Sum integer counts (evaluation hits and samples) over the ranks."""
        if not self.enabled:
            return counts
        keys = sorted(counts)
        t = self.all_reduce_sum(torch.tensor([int(counts[k]) for k in keys], dtype=torch.long), device)
        return {k: int(v) for k, v in zip(keys, t.tolist())}

    def note_eval_drop_last(self, eval_drop_last: bool) -> None:
        """Say, in a distributed run with ``eval_drop_last``, how the seed's count is kept (eval and train's
        evaluations: :func:`data.seed_eval_count`)."""
        if self.enabled and eval_drop_last:
            print0(f"eval_drop_last: the images of one process's full batches (the seed's count), shared by the "
                   f"{self.world_size} processes")

    def defer_bad_samples(self, loader) -> None:
        """A distributed run's loader (of image files) counts its shard's unreadable files without stopping
        on them: the limit is the job's (:meth:`check_bad_samples`)."""
        bad = getattr(loader, "bad_samples", None)
        if self.enabled and bad is not None:
            bad.deferred = True

    def check_bad_samples(self, loader) -> None:
        """The job's unreadable files, every rank's (each file once: the shards change every epoch), joined
        into each rank's list and checked against the limit, on every rank alike: all stop together with
        the same list, or none does. Every rank must call it at the same point."""
        bad = getattr(loader, "bad_samples", None)
        if bad is None or not bad.deferred:
            return
        if self.enabled:
            gathered: List[Any] = [None] * self.world_size
            dist.all_gather_object(gathered, dict(bad.files))
            for rank, files in enumerate(gathered):
                for reason in bad.add(files, rank):  # another rank's, warned on its stderr: named in log.txt too
                    log0(f"skipped unreadable image file {reason} (in the shard of rank {rank})")
            # Each rank met its own files first: one order for all, so that every rank's list reads alike.
            bad.files = dict(sorted(bad.files.items()))
        try:
            bad.check()
        except ValueError as e:  # the job's list, on every rank alike: said once
            raise self.alike(e)

    def all_reduce_sum(self, tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
        """``tensor`` summed over the ranks, as a CPU tensor (every rank must pass one of the same shape)."""
        if not self.enabled:
            return tensor.cpu()
        on = torch.device("cpu")
        if self.backend == "nccl":
            # NCCL reduces CUDA tensors only, whatever device the counts came from (ONNX models run on the CPU).
            on = device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        t = tensor.to(on, copy=True)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu()

    def mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a float tensor over the ranks, left on its device (nothing waits for it: the
        loss of a logged step). Every rank must call it at the same steps."""
        if not self.enabled:
            return value
        total = value.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)  # gloo has no AVG
        return total / self.world_size

    def check_replicas(self, model: Union[nn.Module, Dict[str, torch.Tensor]],
                       what: str = "weights and buffers") -> Optional[List[str]]:
        """Every rank's digest of ``model``'s weights and buffers (or of a state dict given); rank 0 prints
        them (as ``what``) and warns if they differ.

        Data parallelism keeps identical replicas by construction; different digests mean the job is
        broken (a rank saw other weights, or a non-deterministic collective), so the log says so.
        """
        if not self.enabled:
            return None
        mine = state_digest(model if isinstance(model, dict) else unwrap(model).state_dict())
        digests: List[Optional[str]] = [None] * self.world_size
        dist.all_gather_object(digests, mine)
        listed = " ".join(f"{r}:{d[:16]}" for r, d in enumerate(digests))  # type: ignore[index]
        if len(set(digests)) == 1:
            print0(f"replicas: sha256 of {what} per rank {listed} (identical)")
        else:
            print0(f"WARNING replicas differ: sha256 of {what} per rank {listed}; the checkpoint "
                   f"holds rank 0's")
        return digests  # type: ignore[return-value]

    def cleanup(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False


def _attempt(work: Callable[[], Any]) -> Tuple[Any, Optional[BaseException], Optional[str]]:
    """``work()``'s result, or the error it raised (a Ctrl-C too: the caller raises it again once the other ranks
    are told) and what to tell them of it: a user's error (ValueError, OSError) by its message, others by type."""
    try:
        return work(), None, None
    except BaseException as e:
        said = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
        return None, e, said


def setup(cfg, command: str = "train") -> Context:
    """Join the process group when started by torchrun; a single-process context otherwise.

    ``--run_distribute True`` without torchrun is an error that shows the launch command. On CUDA each
    process takes the GPU ``LOCAL_RANK`` and NCCL; on the CPU (``--device_target CPU`` or no GPU) gloo.
    """
    env = torchrun_env()
    if env is None:
        if cfg.run_distribute:
            raise DistributedError(f"run_distribute is True but this process was not started by torchrun "
                                   f"({', '.join(TORCHRUN_ENV[:3])} are not set); launch it as: "
                                   + launch_hint(command))
        return Context()
    rank, world, local_rank = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"])
    use_cuda = cfg.device_target == "GPU" or (cfg.device_target == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise DistributedError(NO_CUDA_REFUSAL)
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(f"LOCAL_RANK {local_rank}: this machine shows {torch.cuda.device_count()} "
                                   f"GPUs; start at most that many processes per machine (--nproc_per_node)")
        # Before any CUDA work: resolve_device() and NCCL then use this process's own GPU.
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
    if dist.is_initialized():
        return Context(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       backend=dist.get_backend(), owns_group=False, restarted=restarted)
    # torchrun's workers share its rendezvous store, which outlives a restart: the keys the process
    # group publishes (gloo's and NCCL's addresses) must not be read from the previous attempt's.
    store, _, _ = next(rendezvous("env://"))
    dist.init_process_group(backend=backend, store=dist.PrefixStore(f"mobilenet_v1/attempt_{restarted}", store),
                            rank=rank, world_size=world)
    return Context(rank=rank, world_size=world, local_rank=local_rank, backend=backend, owns_group=True,
                   restarted=restarted)


def file_digest(path: str) -> str:
    """The start of the sha256 of a file's bytes (:meth:`Context.check_same` compares it), or why it cannot be
    read: a rank that cannot is named with the reason, where its error alone left the others waiting for it."""
    try:
        return file_sha256(path)[:16]
    except OSError as e:
        return f"cannot read it: {e.strerror or e}"


def state_digest(state: Dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes of a state dict, independent of memory layout."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------
# synchronised BatchNorm for CPU processes (gloo)

class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks, differentiable: the gradient of a sum shared by every rank is the sum of the
    ranks' gradients (torch.distributed.nn.all_reduce does this too, but is deprecated)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = grad.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are over the whole global batch, on any device.

    ``torch.nn.SyncBatchNorm`` (used on CUDA) only takes GPU tensors. This one reduces the per-channel
    sum and count, then the sum of squared deviations, with a differentiable all-reduce whose backward
    sums the gradients of the statistics over the ranks; with DDP's gradient averaging the result is
    the gradient of the mean loss over the global batch, as if one process had the whole batch. The
    variance is two-pass (like PyTorch's BatchNorm); running statistics use the unbiased variance over
    the global count. Same parameter and buffer names as BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        c = x.shape[1]
        xf = x if x.dtype == torch.float64 else x.float()  # statistics in fp32 at least
        count = torch.full((1,), x.numel() // c, dtype=xf.dtype, device=x.device)
        total = _AllReduceSum.apply(torch.cat([xf.sum(dim=(0, 2, 3)), count]))
        n = total[c]
        mean = total[:c] / n
        centered = xf - mean.view(1, c, 1, 1)
        var = _AllReduceSum.apply((centered * centered).sum(dim=(0, 2, 3))) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        y = centered * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by :class:`SyncBatchNorm2d` sharing its parameters and buffers."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, SyncBatchNorm2d):
        new = SyncBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
