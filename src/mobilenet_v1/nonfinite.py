"""Steps with a non-finite loss or gradient are skipped and counted, without waiting for the GPU.

A step is bad when its loss or any gradient is NaN or infinite. A bad step changes nothing: not the
weights, not the optimiser's momentum, not BatchNorm's running statistics nor quantization-aware
training's activation ranges (which the forward pass already moved). After ``max_in_a_row`` bad steps in a row
the run stops with :class:`NonFiniteError`.

Why nothing here reads a value back every step: on a GPU, ``tensor.item()`` waits for every queued
kernel, so a per-step check would stall the CPU once per step and leave the GPU idle while the next
step is queued. Instead the decision stays on the device:

- the finite check is one fused kernel over all gradients (``_amp_foreach_non_finite_check_and_unscale_``
  with a scale of exactly 1, the kernel GradScaler uses) plus ``isfinite(loss)``;
- with a fused optimiser (SGD and AdamW on CUDA) the flag is passed as ``found_inf``: the fused kernel
  then leaves parameters, momentum and AdamW's averages and step count untouched on the device
  (GradScaler's own mechanism); LARS and LAMB (:mod:`optimizers`) take it the same way, on any device;
  RMSprop has no fused kernel, so on a GPU its flag is read back (a sync);
- BatchNorm statistics (and activation ranges) are copied before the forward pass and put back with
  ``torch.where`` on the flag;
- the counters live on the device; the host sees them through a non-blocking copy into pinned memory,
  read only once its CUDA event has completed (a step or two late, never waiting). The streak is
  tracked as the longest since the start (a resumed run's: since the streak it continues), so a streak
  that reached the limit between two reads is still caught. Before a checkpoint and at each epoch's end
  the counters are read exactly.

On the CPU there is no queue to stall: the flag is read at once and a bad step simply skips the
optimiser (the CPU optimiser is not fused; LARS and LAMB take the flag there too, the path a GPU's
run takes).

With fp16, GradScaler already skips a step whose scaled gradients overflow (and lowers the scale); the
guard counts that step and, if only the loss is non-finite, makes the scaler see it too. A streak of such
steps whose loss was finite is the loss scale's doing (too high a ``loss_scale``, which the scaler halves
only one skipped step at a time): the error past the limit says so, not "lower lr_max".

A step can also be good and its update still overflow the weights (a learning rate of 1e30: finite
gradients times it): after each optimiser step the same fused kernel looks at the weights and BatchNorm's
statistics, into a flag that stays on the device, read with the counters (a step or two late on a GPU,
at once on the CPU, exactly before a checkpoint). The run then stops with :class:`NonFiniteError` naming
that step, since no later step can mend them (every later loss is NaN), rather than skipping
``max_in_a_row`` steps and claiming the weights are those from before them. The cost is one pass over the
weights a step, no host sync.

Gradient clipping (``clip_grad_norm``) happens here, after the step is judged on its gradients as
they came and, with fp16, after the NaN hand-off above: ``unscale_`` is where GradScaler decides.
"""
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from .checkpoint import unwrap
from .engine import clip_gradients, grad_norm, gradients
from .qat import ActivationRanges
from .runtime import plural


class NonFiniteError(ValueError):
    """Too many steps in a row had a non-finite loss or gradient; the message says how many."""


def init_momentum_buffers(optimizer: torch.optim.Optimizer) -> None:
    """Give every parameter a zero momentum buffer where the optimiser's momentum would want one and
    none is there.

    SGD, before its first step: the fused kernel treats its first step specially (it copies the
    gradient into freshly allocated, uninitialised buffers); when that first step is skipped through
    ``found_inf`` the buffers stay uninitialised and the next step reads garbage. With zero buffers
    every step is an ordinary one, and ``0.9 * 0 + g`` is ``g``: the same update as a first step.
    RMSprop makes all its state, zeros, at its first step, but a state loaded from a run without
    momentum lacks the buffer, which it then fails on (a resume that switches momentum on). AdamW has
    no momentum buffer.
    """
    sgd = isinstance(optimizer, torch.optim.SGD)
    if not sgd and not isinstance(optimizer, torch.optim.RMSprop):
        return
    for group in optimizer.param_groups:
        if not group.get("momentum"):
            continue
        for p in group["params"]:
            state = optimizer.state[p]
            if (sgd or state) and state.get("momentum_buffer") is None:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)


class NonFiniteGuard:
    """Skips and counts bad steps for one model and optimiser; see the module's notes. ``hint``: a
    sentence the error past the limit ends with (train's names a teacher, whose outputs are in the loss)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 max_in_a_row: int = 10, hint: str = ""):
        self.optimizer, self.device, self.max_in_a_row, self.hint = optimizer, device, max_in_a_row, hint
        # Optimisers that skip on the device through found_inf: PyTorch's fused ones, and ours.
        self.takes_found_inf = any(g.get("fused") for g in optimizer.param_groups) \
            or getattr(optimizer, "takes_found_inf", False)
        dist = torch.distributed
        self.world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        init_momentum_buffers(optimizer)
        self.stats: List[torch.Tensor] = []
        for m in unwrap(model).modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                self.stats += [b for b in (m.running_mean, m.running_var) if b is not None]
            elif isinstance(m, ActivationRanges):  # quantization-aware training's observed ranges
                self.stats += [m.ranges, m.observed]
        self.saved = [torch.empty_like(b) for b in self.stats]
        # What the weight check reads after each step: the trained parameters and the float statistics, grouped
        # as the fused kernel takes them (one device and dtype a call).
        self.checked: Dict[tuple, List[torch.Tensor]] = {}
        for t in [p for g in optimizer.param_groups for p in g["params"]] + self.stats:
            if t.is_floating_point():
                self.checked.setdefault((t.device, t.dtype), []).append(t)
        self.one = torch.ones(1, device=device)
        z = lambda: torch.zeros((), dtype=torch.int64, device=device)  # noqa: E731
        self.in_a_row, self.total, self.longest = z(), z(), z()
        # Of the streak, the steps skipped with a finite loss while a GradScaler scaled it (overflowed scaled
        # gradients), and the longest such streak; the steps this guard took, and the first whose update made
        # the weights non-finite (0: none).
        self.overflow_in_a_row, self.overflow_longest, self.steps, self.broke_at = z(), z(), z(), z()
        self.scale_now = torch.zeros((), device=device)  # the scaler's scale at the last step (0: no scaler)
        self._on_cuda = device.type == "cuda"
        self._host = torch.zeros(6, dtype=torch.int64, pin_memory=self._on_cuda)
        self._host_scale = torch.zeros((), pin_memory=self._on_cuda)
        self._event: Optional[torch.cuda.Event] = None
        self.seen = {"in_a_row": 0, "total": 0, "longest": 0}  # as last read by the host
        self._clipped_from: Optional[torch.Tensor] = None  # the last step's norm before clipping
        self._stand_in = False
        # The newest checkpoint, which the errors name as the last good state ("": none); train sets it.
        self.last_good: Callable[[], str] = lambda: ""

    # -- per step ----------------------------------------------------------------------------------

    def begin(self) -> None:
        """Before the forward pass: remember BatchNorm's running statistics (and quantization-aware
        training's activation ranges)."""
        if self.stats:
            torch._foreach_copy_(self.saved, self.stats)

    def step(self, loss: torch.Tensor, scaler: torch.amp.GradScaler, skip: bool = False,
             clip_grad_norm: float = 0.0) -> None:
        """After ``backward``: the optimiser step (through ``scaler``) if the step is good, else nothing.

        ``skip``: skip this step whatever its values, without counting it as non-finite (a stand-in
        batch, see :func:`engine.train_one_epoch`); in a distributed run every rank then skips.
        ``clip_grad_norm``: above 0, the gradients are clipped to that global norm (unscaled first)
        after the step is judged on the gradients as they came."""
        optimizer = self.optimizer
        grads = gradients(optimizer)
        loss_bad = (~torch.isfinite(loss.detach().float())).float().reshape(1)
        found = loss_bad.clone()
        by_kind: Dict[tuple, List[torch.Tensor]] = {}
        for g in grads:
            by_kind.setdefault((g.device, g.dtype), []).append(g)
        for (dev, _), group in by_kind.items():
            # Sets found to 1 if any element is NaN/inf; multiplying by exactly 1 leaves the gradients' bits.
            torch._amp_foreach_non_finite_check_and_unscale_(group, found, self.one.to(dev))
        counted = found  # what max_nonfinite_steps counts: not the forced skips
        if skip or self.world_size > 1:
            forced = found.new_full((1,), float(skip))
            if self.world_size > 1:
                # One rank's non-finite loss with finite gradients, or its stand-in batch, would make it
                # alone skip while the others step: decide together (one 3-element all-reduce a step).
                flags = torch.cat([found, forced, loss_bad])
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
                found, forced, loss_bad = flags[0:1], flags[1:2], flags[2:3]
            counted = found * (1 - forced)
            found = torch.maximum(found, forced)
        bad = found.bool()
        host_bad: Optional[bool] = None if self._on_cuda else bool(bad)
        if scaler.is_enabled() and grads:
            # A non-finite loss with finite gradients (rare) must stop the scaler too: give it one NaN.
            g0 = grads[0][(0,) * grads[0].ndim]  # a view of one element, whatever the memory layout
            g0.copy_(torch.where(bad.reshape(()), torch.full_like(g0, float("nan")), g0))
        if scaler.is_enabled():
            # After the NaN above: unscale_ is where the scaler records whether to skip the step. Done
            # here, not inside its step, so that the gradients left for grad_norm are unscaled whatever
            # an optimiser's kernel does with a scale handed to it (PyTorch's fused ones, on the CPU,
            # write the unscaled gradients back; that is the kernel's business, not a promise).
            scaler.unscale_(optimizer)
        self._clipped_from = None
        self._stand_in = skip  # its gradients are a stand-in batch's: no norm of the step's to give
        if clip_grad_norm:
            self._clipped_from = clip_gradients(optimizer, clip_grad_norm, scaler, unscale=False)
        if scaler.is_enabled():
            scaler.step(optimizer)
        elif self.takes_found_inf:
            optimizer.found_inf = found.reshape(())  # 0-dim, as GradScaler's: fused AdamW takes it off its step counts
            try:
                optimizer.step()
            finally:
                del optimizer.found_inf
        elif host_bad is None:
            # A non-fused optimiser on a GPU: the only way left is to ask (one sync per step).
            if not bool(bad):
                optimizer.step()
        elif not host_bad:
            optimizer.step()
        self._restore_stats(bad, host_bad)
        self._check_weights(bad)
        b = counted.to(torch.int64).reshape(())
        self.in_a_row.add_(b).mul_(b)
        self.total.add_(b)
        torch.maximum(self.longest, self.in_a_row, out=self.longest)
        if scaler.is_enabled():
            # The scale this step used, from the scaler's own tensor: get_scale() would wait for the device.
            if scaler._scale is not None:
                self.scale_now.copy_(scaler._scale.reshape(()))
            overflow = (counted * (1 - loss_bad)).to(torch.int64).reshape(())
            self.overflow_in_a_row.add_(overflow).mul_(overflow)
            torch.maximum(self.overflow_longest, self.overflow_in_a_row, out=self.overflow_longest)
        self.poll()

    def left_out(self) -> None:
        """In place of :meth:`step` for a step this process leaves out without running it (in a run of one
        process, a batch that unreadable files left with one sample, :func:`engine.train_one_epoch`): nothing
        changes or is counted; :meth:`grad_norm` gives NaN, not the norm of the step before."""
        self._clipped_from = None
        self._stand_in = True

    def _check_weights(self, bad: torch.Tensor) -> None:
        """After the optimiser step: remember the first step taken (not ``bad``) that left a weight or statistic
        non-finite. A skipped step changed nothing: weights non-finite before it are not its doing."""
        self.steps.add_(1)
        broken = torch.zeros(1, device=self.device)
        with torch.no_grad():  # in place on parameters (times exactly 1: their bits stay)
            for (dev, _), group in self.checked.items():
                torch._amp_foreach_non_finite_check_and_unscale_(group, broken, self.one.to(dev))
        first = (self.broke_at == 0) & broken.reshape(()).bool() & ~bad.reshape(())
        torch.where(first, self.steps, self.broke_at, out=self.broke_at)

    def _restore_stats(self, bad: torch.Tensor, host_bad: Optional[bool]) -> None:
        if not self.stats:
            return
        if host_bad is not None:
            if host_bad:
                torch._foreach_copy_(self.stats, self.saved)
            return
        # The flag as a 0-dim tensor: broadcast as a (1,) one, it would make the 0-dim ``observed`` of
        # quantization-aware training's ranges a (1,) result, which its out= cannot hold (a RuntimeError).
        bad = bad.reshape(())
        for stat, saved in zip(self.stats, self.saved):
            torch.where(bad, saved, stat, out=stat)

    def grad_norm(self) -> torch.Tensor:
        """The last step's global gradient norm (0-dim, on the device; nothing read back): unscaled, before
        clipping, of the gradients all ranks stepped with (all-reduced), whether or not the step was
        skipped (a skipped step's is usually NaN or infinite; a step skipped on purpose, ``skip``, has NaN:
        its gradients are a stand-in batch's; so has one :meth:`left_out`). Read it after :meth:`step` and
        before the next backward pass."""
        if self._stand_in:
            return torch.tensor(float("nan"))
        return self._clipped_from if self._clipped_from is not None else grad_norm(self.optimizer)

    # -- reading the counters ----------------------------------------------------------------------

    def _counters(self) -> torch.Tensor:
        return torch.stack([self.in_a_row, self.total, self.longest, self.overflow_longest, self.steps,
                            self.broke_at])

    def _accept(self, values: List[int], scale: float) -> None:
        self.seen = dict(zip(("in_a_row", "total", "longest"), values[:3]))
        overflow_longest, steps, broke_at = values[3:]
        if broke_at:
            # Before the streak: the streak that follows is this step's doing, and its message would be wrong.
            ago = steps - broke_at
            raise NonFiniteError(
                f"the weights became NaN or infinite at an optimiser step whose loss and gradients were finite "
                f"(step {broke_at} since this run started or resumed{f', {ago} step(s) ago' if ago else ''}): the "
                f"update itself overflowed, so the learning rate is far too high for these gradients (lower "
                f"lr_max; or weight_decay, momentum, clip_grad_norm). No later step can mend them: training "
                f"stopped, and no checkpoint after that step is written (none holding a non-finite value ever "
                f"is)." + self._last_good())
        if self.seen["longest"] >= self.max_in_a_row:
            if overflow_longest >= self.max_in_a_row:
                cause = (f"each had a finite loss whose fp16 gradients overflowed once scaled by the loss scale "
                         f"(the scaler halves it at each such step; the last of them ran at {scale:g}): the loss "
                         f"scale is far too high. Lower loss_scale (the seed's is 1024), or use --precision bf16, "
                         f"which scales nothing")
            else:
                cause = ("each was skipped, so the weights are those from before them, but training is not "
                         "recovering: lower lr_max, check the data, or use another precision")
            raise NonFiniteError(
                f"{plural(self.seen['longest'], 'training step')} in a row had a non-finite loss or gradient "
                f"(max_nonfinite_steps {self.max_in_a_row}); {cause}. {plural(self.seen['total'], 'step')} "
                f"{'was' if self.seen['total'] == 1 else 'were'} skipped in all." + self._last_good()
                + (f" {self.hint}" if self.hint else ""))

    def _last_good(self) -> str:
        newest = self.last_good()
        return f" The last good checkpoint: {newest}." if newest and newest != "none" else ""

    def poll(self) -> None:
        """Look at the counters if they are at hand without waiting; raise past the limit."""
        if not self._on_cuda:
            self._accept(self._counters().tolist(), float(self.scale_now))
            return
        if self._event is not None:
            if not self._event.query():
                return
            self._accept(self._host.tolist(), float(self._host_scale))
        self._host.copy_(self._counters(), non_blocking=True)
        self._host_scale.copy_(self.scale_now, non_blocking=True)
        self._event = torch.cuda.Event()
        self._event.record()

    def sync(self) -> Dict[str, int]:
        """Read the counters now (waits for the device); raise past the limit. Returns them."""
        self._accept(self._counters().tolist(), float(self.scale_now))
        return dict(self.seen)

    # -- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, int]:
        return self.sync()

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """The counters of the run a checkpoint continues. The longest streak starts again at the streak in
        progress: one that ended before the checkpoint (the run recovered) must not stop a resume at its
        first step where it sets a lower ``max_nonfinite_steps``."""
        values = {k: int(state.get(k, 0)) for k in ("in_a_row", "total")}
        values["longest"] = values["in_a_row"]
        for name, value in values.items():
            getattr(self, name).fill_(value)
        self.seen = values
