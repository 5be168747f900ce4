"""The training step, one epoch of training, and evaluation."""
import contextlib
import itertools
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .config import ASCEND_REFUSAL, NO_CUDA_REFUSAL, OPTIMIZERS
from .optimizers import Lamb, Lars
from .runtime import interrupt_deferred, plural
from .stopping import WaitAbandoned

if TYPE_CHECKING:
    from .ema import WeightAverage
    from .losses import Distiller
    from .nonfinite import NonFiniteGuard

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device_target: str) -> torch.device:
    """``GPU`` is CUDA; ``auto`` takes CUDA when present. The seed's ``Ascend`` does not exist here."""
    if device_target == "Ascend":
        raise ValueError(ASCEND_REFUSAL)
    if device_target == "GPU":
        if not torch.cuda.is_available():
            raise ValueError(NO_CUDA_REFUSAL)
        return torch.device("cuda", torch.cuda.current_device())
    if device_target == "CPU":
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(precision: str, device: torch.device, loss_scale: float) -> torch.amp.GradScaler:
    """fp16 gets dynamic loss scaling starting at the seed's ``loss_scale``: an overflowed step is
    skipped and the scale halved (the seed's fixed scale applies such a step anyway)."""
    return torch.amp.GradScaler(device.type, init_scale=loss_scale, enabled=precision == "fp16")


def param_groups(model: nn.Module, weight_decay: float, decay_norm_bias: bool = False):
    """Two groups: conv and FC weights, decayed; BatchNorm gamma/beta and biases, not decayed (the seed's
    Ascend path, timm's) or, with ``decay_norm_bias``, decayed alike (the seed's GPU/CPU path,
    torchvision's). Two groups either way, so a checkpoint's optimiser state fits both."""
    decay, norm_bias = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else norm_bias).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": norm_bias, "weight_decay": weight_decay if decay_norm_bias else 0.0}]


# Each optimiser's eps where opt_eps is 0: torchvision's MobileNetV3 recipe for RMSprop (0.0316, about
# TensorFlow's 1e-3 inside the square root, with alpha 0.9), PyTorch's default for AdamW, the LAMB paper's
# (and NVIDIA's and timm's) for LAMB.
DEFAULT_EPS = {"rmsprop": 0.0316, "adamw": 1e-8, "lamb": 1e-6}
RMSPROP_ALPHA = 0.9


def make_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float,
                   device: torch.device, opt: str = "momentum", eps: float = 0.0,
                   fused: Optional[bool] = None, nesterov: bool = False,
                   decay_norm_bias: bool = False, trust_coefficient: float = 0.001,
                   trust_clip: bool = False) -> torch.optim.Optimizer:
    """The seed's Momentum (PyTorch's SGD: the same update; ``nesterov``: Nesterov's), or RMSprop (the
    MobileNet paper's, with torchvision's recipe settings and ``momentum``) or AdamW (decoupled
    ``weight_decay``; ``momentum`` unused), or LARS (``momentum``, ``nesterov``, ``trust_coefficient``,
    ``trust_clip``) or LAMB (betas 0.9, 0.999), whose rate per layer is for conv and FC weights only
    (:mod:`optimizers`). Weight decay on conv and FC weights only, or on every parameter with
    ``decay_norm_bias`` (:func:`param_groups`). One fused kernel for all parameters on CUDA where
    PyTorch has one (SGD, AdamW), the multi-tensor path otherwise (``fused``: whether to fuse, whatever
    the device; the tests take the CUDA path on the CPU; LARS and LAMB are always multi-tensor)."""
    groups = param_groups(model, weight_decay, decay_norm_bias)
    if opt in ("lars", "lamb"):
        groups[0]["adapt"], groups[1]["adapt"] = True, False
        if opt == "lars":
            return Lars(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                        trust_coefficient=trust_coefficient, trust_clip=trust_clip)
        return Lamb(groups, lr=lr, eps=eps or DEFAULT_EPS[opt], weight_decay=weight_decay)
    fused = (device.type == "cuda" if fused is None else fused) and opt != "rmsprop"
    how = {"fused": True} if fused else {"foreach": True}
    with interrupt_deferred():  # torch.optim's first optimizer imports torch._dynamo: not to be left half imported
        import torch._dynamo  # noqa: F401
    if opt == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=RMSPROP_ALPHA, eps=eps or DEFAULT_EPS[opt],
                                   momentum=momentum, **how)
    if opt == "adamw":
        return torch.optim.AdamW(groups, lr=lr, eps=eps or DEFAULT_EPS[opt], **how)
    if opt != "momentum":
        raise ValueError(f"opt {opt!r}: expected one of {', '.join(OPTIMIZERS)}")
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, **how)


@dataclass
class EpochResult:
    last_loss: float
    mean_loss: float
    steps: int
    seconds: float
    images: int
    stopped_after: Optional[int] = None  # asked to stop (``stop``): the steps of the epoch done by then
    # The steps ``mean_loss`` averages (None: ``steps``): more after a resume, fewer where a loss was not finite
    mean_steps: Optional[int] = None


class LossTally:
    """An epoch's running loss sum and the steps in it, on the device (nothing read back until :meth:`state`
    or :attr:`steps`). A checkpoint saved inside the epoch keeps :meth:`state`, so the epoch's mean after a
    resume there is over all its steps, not only those since the resume."""

    def __init__(self, device: torch.device, loss_sum: float = 0.0, steps: int = 0):
        # float64: an ImageNet epoch's 5,005 float32 losses summed in float32 (a sum near 30,000, whose ulp is
        # 0.002) put the mean off by about 5e-6, its 6th decimal; a float32 loss is exact in float64.
        self.sum = torch.full((), float(loss_sum), dtype=torch.float64, device=device)
        self.counted = torch.full((), int(steps), dtype=torch.int64, device=device)

    def add(self, loss: torch.Tensor) -> None:
        # A skipped step's NaN would make the epoch's mean NaN, and counted as 0 it would lower the mean:
        # such a step is in neither the sum nor the steps.
        finite = torch.isfinite(loss)
        self.sum += torch.where(finite, loss, 0.0)
        self.counted += finite

    @property
    def steps(self) -> int:
        """The steps in the sum (reads the device): those with a finite loss."""
        return int(self.counted)

    def state(self) -> Dict[str, Any]:
        return {"loss_sum": float(self.sum), "steps": self.steps}

    @staticmethod
    def saved(ckpt: Dict[str, Any], in_epoch: int, rank: int = 0, world_size: int = 1) -> Dict[str, Any]:
        """The tally a checkpoint saved after ``in_epoch`` steps of its epoch holds, as keyword arguments, for
        ``rank`` of a run of ``world_size`` processes: a distributed run's file holds every rank's steps, which
        rank 0 takes, and each rank's own, which each rank of as many processes takes back (the epoch's mean then
        adds up as the uninterrupted run's, the float32 sums grouped alike); none (an empty dict: a fresh
        tally) from a file without one, or one that does not fit, and for the other ranks."""
        saved = ckpt.get("epoch_loss")
        if not in_epoch or not isinstance(saved, dict):
            return {}
        total, steps = saved.get("loss_sum"), saved.get("steps")
        if not isinstance(total, float) or not math.isfinite(total) or isinstance(steps, bool) \
                or not isinstance(steps, int) or steps < 0:
            return {}
        sums, counts = saved.get("rank_loss_sums"), saved.get("rank_steps")
        if world_size > 1 and isinstance(sums, list) and isinstance(counts, list) \
                and len(sums) == len(counts) == world_size \
                and all(isinstance(x, float) and math.isfinite(x) for x in sums) \
                and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            return {"loss_sum": sums[rank], "steps": counts[rank]}
        return {"loss_sum": total, "steps": steps} if rank == 0 else {}


def train_one_epoch(model: nn.Module, loader: Iterable, criterion: nn.Module,
                    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    lrs: Sequence[float], device: torch.device, precision: str,
                    on_step: Optional[Callable[[int, torch.Tensor, float], None]] = None,
                    start_step: int = 0, guard: Optional["NonFiniteGuard"] = None,
                    ema: Optional["WeightAverage"] = None, accumulate: int = 1,
                    augment: Optional[Callable[[int, torch.Tensor, torch.Tensor],
                                               Tuple[torch.Tensor, torch.Tensor, float]]] = None,
                    clip_grad_norm: float = 0.0, stop: Optional[Callable[[int], bool]] = None,
                    distill: Optional["Distiller"] = None,
                    step_seed: Optional[Callable[[int], int]] = None,
                    tally: Optional[LossTally] = None,
                    batch_wait: Optional[Callable[[], Any]] = None) -> EpochResult:
    """One pass over ``loader``; step ``i`` of the epoch runs at learning rate ``lrs[i]``.

    ``accumulate``: a step adds up the gradients of that many batches of ``loader`` (its loss is their
    mean) before the optimiser steps once: step ``i`` takes batches ``i * accumulate`` to
    ``(i + 1) * accumulate - 1`` of the epoch, so a resumed epoch's loader starts at batch
    ``start_step * accumulate``. With DDP the gradients are all-reduced once per step.

    ``start_step``: the loader begins at that step of the epoch (a resumed epoch); ``lrs`` is still the
    whole epoch's. With ``guard`` (:class:`nonfinite.NonFiniteGuard`) a step whose loss or gradients
    are not finite is skipped and counted. With ``ema`` (:class:`ema.WeightAverage`) the weight
    average takes every step's weights, before ``on_step`` (which may save a checkpoint) sees the step.

    ``augment(position, images, labels)`` (a :class:`batch_augment.BatchAugment` bound to the epoch)
    returns the batch at that position of the epoch augmented, its partners' labels and ``lam``; the
    batch's loss is then ``lam * loss(labels) + (1 - lam) * loss(partners' labels)``.
    ``clip_grad_norm``: above 0, the step's gradients (all-reduced, unscaled) are scaled down to that
    global L2 norm when above it.

    ``distill`` (:class:`losses.Distiller`): each batch's loss is its blend of that loss and the
    divergence from a teacher's outputs on the same (augmented) batch.

    ``step_seed(i)``: torch's generators are seeded with it before step ``i`` (what the model draws in
    the step, dropout's masks, is then a function of it: :func:`train.step_seed`).

    ``tally`` (:class:`LossTally`): where the epoch's loss adds up (a resumed epoch's holds the steps
    before the resume; ``on_step`` may save it); the result's ``mean_loss`` is its mean.

    ``stop(i)``, after ``on_step`` of every step: True ends the pass there (a run asked to stop,
    :mod:`stopping`); the result's ``stopped_after`` is then ``i + 1``. ``batch_wait()`` (a run's
    :meth:`stopping.StopRequest.batch_wait`): the context each wait for a step's batches runs in; a
    :class:`stopping.WaitAbandoned` raised in it (a stop requested while the loader gives nothing) ends the pass
    before step ``i``, ``stopped_after`` ``i`` (``start_step`` where it took none).

    The loss stays on the device: nothing here waits for the GPU except ``on_step`` when it reads it.

    In a distributed run (a process group of several ranks) ``guard`` is required: it is what makes
    every rank skip a step together when one rank's batch is a stand-in or its step is non-finite.
    """
    dist = torch.distributed
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if distributed and guard is None:
        raise ValueError("train_one_epoch: a distributed run needs guard (a nonfinite.NonFiniteGuard), which "
                         "makes every rank skip a step together; without it a rank that skips would leave the "
                         "others waiting in the gradient all-reduce")
    model.train()
    ddp = _ddp_of(model)
    start = time.perf_counter()
    tally = LossTally(device) if tally is None else tally
    loss = torch.zeros((), device=device)
    left_out = torch.full((), float("nan"), device=device)  # the loss on_step sees of a step that trained nothing
    steps = images = 0
    stopped_after = None
    batches = iter(loader)
    i = start_step
    while i < len(lrs):
        try:
            with batch_wait() if batch_wait is not None else contextlib.nullcontext():
                group = list(itertools.islice(batches, accumulate))
        except ValueError as e:  # the loader's DataError (unreadable files past the limit): the steps done
            e.steps_done = i  # type: ignore[attr-defined]  # (the caller may save them)
            raise
        except WaitAbandoned:  # before any of step i: the model and optimiser are at step i - 1's end
            stopped_after = i
            break
        if len(group) < accumulate:
            break  # the loader's end: the batches of an incomplete step are not trained on
        stand_in = any(x.shape[0] < 2 for x, _ in group)
        if stand_in:
            # A batch that lost all but one sample to unreadable files: BatchNorm cannot train on one
            # sample at small resolutions, so the step is skipped; its position still counts, so the
            # schedule stays in step. In a distributed run the other ranks would wait for this one in
            # the gradient all-reduce: it runs a stand-in batch instead and the guard has every rank
            # skip the step together (with fp16 the loss scale then halves once, as after an overflow).
            # Alone, it runs nothing; on_step (a checkpoint due at this step, the logs) and stop still
            # see the step, as every rank's do in a distributed run.
            if not distributed:
                if guard is not None:
                    guard.left_out()
                if on_step is not None:
                    on_step(i, left_out, float(lrs[i]))
                i += 1
                if stop is not None and stop(i - 1):
                    stopped_after = i
                    break
                continue
            group = [stand_in_batch(x, y) if x.shape[0] < 2 else (x, y) for x, y in group]
        prev = loss
        if step_seed is not None:
            torch.manual_seed(step_seed(i))
        lr = float(lrs[i])
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        if guard is not None:
            guard.begin()
        optimizer.zero_grad(set_to_none=True)
        step_loss = None
        for j, (x, y) in enumerate(group):
            lam, partner = 1.0, y
            if augment is not None:
                x, partner, lam = augment(i * accumulate + j, x, y)
            # Gradients add up over the step's batches; DDP all-reduces them once, after the last.
            with ddp.no_sync() if ddp is not None and j < len(group) - 1 else contextlib.nullcontext():
                with autocast(device, precision):
                    logits = model(x).float()
                    taught = distill.logits(x) if distill is not None else None
                if lam < 1.0 and hasattr(criterion, "mixed"):  # a loss not linear in its target (BCE's threshold)
                    part = criterion.mixed(logits, y, partner, lam)
                else:
                    part = criterion(logits, y)
                    if lam < 1.0:
                        part = lam * part + (1.0 - lam) * criterion(logits, partner)
                if distill is not None:
                    part = distill(part, logits, taught)
                if accumulate > 1:
                    part = part / accumulate  # the step's loss is the mean over its batches
                scaler.scale(part).backward()
            step_loss = part.detach() if step_loss is None else step_loss + part.detach()
        if guard is None:
            if clip_grad_norm:
                clip_gradients(optimizer, clip_grad_norm, scaler)
            scaler.step(optimizer)
        else:
            guard.step(step_loss, scaler, skip=stand_in, clip_grad_norm=clip_grad_norm)
        scaler.update()
        if ema is not None:
            ema.update()
        if stand_in:
            loss = prev
            if on_step is not None:
                on_step(i, left_out, lr)
            i += 1
            if stop is not None and stop(i - 1):
                stopped_after = i
                break
            continue
        loss = step_loss
        tally.add(loss)
        steps += 1
        images += sum(x.shape[0] for x, _ in group)
        if on_step is not None:
            on_step(i, loss, lr)
        i += 1
        if stop is not None and stop(i - 1):
            stopped_after = i
            break
    # The batches after the last whole step (fewer than ``accumulate``) are read and dropped, and the
    # loader asked past its end, rather than left: the GPU pipeline's thread would go on reading from
    # the loader's persistent workers while the next epoch starts over them. (A stopped run starts none.)
    try:
        for _ in itertools.islice(batches, accumulate if stopped_after is None else 0):
            pass
    except ValueError as e:  # the limit on unreadable files passed in batches no step trains on: every step done
        e.steps_done = i  # type: ignore[attr-defined]
        raise
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    counted = tally.steps
    # No step with a finite loss: no mean (NaN, as a loss that is not finite), not 0.
    return EpochResult(float(loss), float(tally.sum) / counted if counted else float("nan"), steps, seconds, images,
                       stopped_after, counted)


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float,
                   scaler: torch.amp.GradScaler, unscale: bool = True) -> torch.Tensor:
    """Unscale the optimiser's gradients (with fp16 loss scaling; a no-op otherwise; ``unscale`` False:
    the caller has) and scale them down to a global L2 norm of ``max_norm`` when above it; on the device,
    nothing read back. After ``unscale_`` the scaler's ``step`` skips the step on what it found then.
    Returns the norm before clipping."""
    if unscale:
        scaler.unscale_(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def gradients(optimizer: torch.optim.Optimizer):
    """The gradients of the optimiser's parameters that have one."""
    return [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]


def grad_norm(optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """The global L2 norm of the optimiser's gradients as they are (0-dim, on their device; nothing read
    back); 0 without any."""
    grads = gradients(optimizer)
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def _ddp_of(model: nn.Module) -> Optional[nn.parallel.DistributedDataParallel]:
    """The DDP module that ``model`` is or compiles (``torch.compile`` keeps it as ``_orig_mod``)."""
    inner = getattr(model, "_orig_mod", model)
    return inner if isinstance(inner, nn.parallel.DistributedDataParallel) else None


def stand_in_batch(x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Two zero images like ``x``'s and labels 0: a batch that only lets a step take part in the
    collectives, whose result is then discarded."""
    return x.new_zeros((2, *x.shape[1:])), y.new_zeros((2,))


def ranked(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The indices of each row's ``k`` largest ``logits``, largest first: a tie goes to the lower index (as
    ``argmax``) and a NaN ranks as -inf does, below every finite number (an -inf beside it: by index). Every path
    that ranks outputs (eval's counts, its per-class and per-image figures, predict's top-k, quantize's
    agreement) ranks them here, so that they agree: ``topk`` orders ties as its kernel happens to (on the CPU, 10
    tied outputs put index 8 first and 100 put 65 first with k 5, 0 with k 1; an INT8 file's outputs take few
    levels and tie often) and ranks NaN first."""
    values = torch.where(torch.isnan(logits), float("-inf"), logits)
    return torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]


def without_underflowed(outputs: torch.Tensor, floor: Optional[float]) -> torch.Tensor:
    """``outputs`` with those at ``floor`` (a model's ``output_floor``: probabilities that underflowed in its file,
    :class:`onnx_io.DeployedModel`) at -inf, so that a softmax gives them 0, as the file does; as they are where
    ``floor`` is None."""
    return outputs if floor is None else outputs.masked_fill(outputs <= floor, float("-inf"))


DENSE_CONFUSION_CLASSES = 4096  # evaluate's confusion matrix: dense (134 MB in int64) up to this many outputs


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, precision: str = "fp32",
             confusion_classes: int = 0, stop: Optional[Callable[[], bool]] = None,
             per_sample: bool = False) -> Dict[str, Any]:
    """Top-1 and top-5 hits over every batch of ``loader``, the sample count, and ``nonfinite``: the samples
    whose outputs are not all finite (a model with NaN weights, fp16 overflow), which are never hits (an
    all-NaN row's top 5 would otherwise be whatever the ranking puts first). Outputs are ranked by
    :func:`ranked` (a tie: the lower index). A model with an ``output_floor`` (a file whose output is
    probabilities, :class:`onnx_io.DeployedModel`): a label whose output sits there, a probability that
    underflowed, tied with every other such class, is no top-k hit, and its probability is 0.

    ``confusion_classes``: the model's outputs; then also ``"confusion"``, a (classes, classes) int64
    CPU tensor counting each (label, top-1 prediction) pair (a label past the outputs, and a sample whose
    outputs are not finite, are not counted there: its diagonal is the top-1 hits), counted on the device
    without reading anything back until the end; past :data:`DENSE_CONFUSION_CLASSES` outputs a sparse (COO)
    one, of as many cells as the pairs seen at most. ``stop``: asked before the first batch and after each; True
    leaves the loader there, the counts those of the batches so far (none: the loader is not even started,
    its workers may have left on the signal that stops it). ``per_sample``: also ``"samples"``, CPU tensors of
    each sample's ``label``, ``top1`` (the top-1 prediction; -1 where the outputs are not finite, which
    predict nothing), ``top1_probability`` and ``label_probability`` (softmax; NaN for a label past the
    outputs), in the order the loader yields them."""
    model.eval()
    floor = getattr(model, "output_floor", None)
    rows: List[torch.Tensor] = []  # per_sample: (label, top1, p(top1), p(label)) a row, on the device
    correct1 = torch.zeros((), dtype=torch.long, device=device)
    correct5 = torch.zeros((), dtype=torch.long, device=device)
    nonfinite = torch.zeros((), dtype=torch.long, device=device)  # counted on the device, read at the end
    c = confusion_classes
    # (label, top-1) pairs, then each label's images with no top-1 (outputs not finite), then labels past c
    # A dense matrix up to DENSE_CONFUSION_CLASSES outputs; past it (ImageNet-21k's 21,841: 477 million cells, 3.8 GB
    # in int64, twice that once summed) each image's pair index is kept (8 bytes an image) and counted at the end.
    dense = 0 < c <= DENSE_CONFUSION_CLASSES
    pairs = torch.zeros(c * c + c + 1, dtype=torch.long, device=device) if dense else None
    pair_list: List[torch.Tensor] = []
    total = 0
    for x, y in (() if stop is not None and stop() else loader):
        if y.shape[0] == 0:  # every file of the batch was unreadable (skipped and counted by the loader)
            continue
        with autocast(device, precision):
            logits = model(x)
        k = min(5, logits.shape[1])
        logits = logits.float()
        finite = torch.isfinite(logits).all(dim=1)
        nonfinite += (~finite).sum()
        top = ranked(logits, k)
        hit = (top == y[:, None].to(top.device)) & finite[:, None]
        if floor is not None:
            hit &= logits.gather(1, top) > floor
        first = torch.where(finite, top[:, 0], -1)  # the top-1 prediction; -1: none
        correct1 += hit[:, 0].sum()
        correct5 += hit.any(dim=1).sum()
        total += y.shape[0]
        if per_sample:
            probs = torch.softmax(without_underflowed(logits, floor), dim=1)
            y_dev = y.to(logits.device).long()
            inside = y_dev < logits.shape[1]
            p_label = probs.gather(1, torch.where(inside, y_dev, 0)[:, None])[:, 0]
            rows.append(torch.stack([y_dev.double(), first.double(), probs.gather(1, top[:, :1])[:, 0].double(),
                                     torch.where(inside, p_label, float("nan")).double()], dim=1))
        if c:
            if logits.shape[1] != c:
                raise ValueError(f"evaluate: the model has {logits.shape[1]} outputs, not confusion_classes {c}")
            y, first = y.to(device).long(), first.to(device)
            index = torch.where(y < c, torch.where(first >= 0, y * c + first, c * c + y), c * c + c)
            if pairs is not None:
                pairs.scatter_add_(0, index, torch.ones_like(index))  # not bincount, which reads its max back
            else:
                pair_list.append(index)
        if stop is not None and stop():
            break
    result: Dict[str, Any] = {"top_1_correct": int(correct1), "top_5_correct": int(correct5), "total": total,
                              "nonfinite": int(nonfinite)}
    if pairs is not None:
        result["confusion"] = pairs[:c * c].reshape(c, c).cpu()
        result["unpredicted"] = pairs[c * c:c * c + c].cpu()
    elif c:
        keys, counts = torch.unique(torch.cat(pair_list).cpu() if pair_list else torch.zeros(0, dtype=torch.long),
                                    return_counts=True)
        cells = keys < c * c
        result["confusion"] = torch.sparse_coo_tensor(
            torch.stack([keys[cells] // c, keys[cells] % c]), counts[cells], (c, c), check_invariants=True).coalesce()
        unpredicted = torch.zeros(c + 1, dtype=torch.long)
        unpredicted.index_add_(0, keys[~cells] - c * c, counts[~cells])
        result["unpredicted"] = unpredicted[:c]
    if per_sample:
        table = torch.cat(rows).cpu() if rows else torch.zeros((0, 4), dtype=torch.float64)
        result["samples"] = {"label": table[:, 0].long(), "top1": table[:, 1].long(),
                             "top1_probability": table[:, 2], "label_probability": table[:, 3]}
    return result


def nonfinite_note(path: str, bad: int, total: int, precision: str) -> str:
    """What eval and train's evaluations say when ``bad`` of ``total`` images got outputs that are not
    finite: the accuracy counts them as misses (:func:`evaluate`)."""
    why = ("; in fp16, logits past 65504 overflow: --precision bf16 or fp32" if precision == "fp16" else
           ": its weights are damaged or the run they are from diverged")
    return (f"warning: {path} gave outputs that are not finite (NaN or infinite) for {bad} of "
            f"{plural(total, 'image')}, "
            f"whose hits are not counted (they count as misses){why}")


def few_outputs_note(what: str, outputs: int) -> str:
    """What eval and train's evaluations say, once, of a model of 5 outputs or fewer (``what`` has
    ``outputs``): every output is among any image's top 5, so its top-5 is 1.0 whatever it does; the
    seed's figure is still printed. "" for more outputs."""
    if not outputs or outputs > 5:
        return ""
    return (f"note: top-5 is 1.0 whatever the model does: {what} has {outputs} outputs, every one of them among "
            f"any image's top 5 (top-1 is the figure to read)")
