"""LARS and LAMB: a learning rate per layer, for large global batches (many GPUs, many nodes).

With a global batch of thousands, plain SGD's single rate is too high for some layers and too low for
others; both optimisers scale each layer's step by a trust ratio of the layer's weight norm to its
update's norm (You et al., "Large Batch Training of Convolutional Networks", 2017, for LARS; "Large Batch
Optimization for Deep Learning", 2019, for LAMB).

- :class:`Lars`: ``d = (g + wd p) * ratio`` with ``ratio = trust_coefficient ||p|| / (||g|| + wd ||p||)``,
  then SGD's momentum (``nesterov``: Nesterov's) on ``d`` and ``p -= lr buf``. With ``trust_clip``
  (NVIDIA's LARC), the ratio is ``min(ratio / lr, 1)``: each layer's rate is at most ``lr``, so the
  usual SGD rates apply.
- :class:`Lamb`: Adam's bias-corrected moments, ``u = m^ / (sqrt(v^) + eps) + wd p``,
  ``p -= lr (||p|| / ||u||) u``.

The ratio is 1 where either norm is 0, and for groups with ``adapt`` False: :func:`engine.make_optimizer`
adapts conv and FC weights only, not BatchNorm's gamma and beta nor biases (the usual exclusion, as in
Goyal et al.'s and MLPerf's large-batch recipes).

Both run on lists of tensors (PyTorch's multi-tensor ``_foreach`` kernels), keep every value on the
parameters' device, and read nothing back. Like PyTorch's fused kernels they take ``found_inf`` (a
0-dim tensor, set as an attribute before ``step``; :class:`nonfinite.NonFiniteGuard` does): where it is
1 the step leaves parameters, buffers and step counts as they were, without the host being asked.
GradScaler (fp16) hands them ``found_inf`` and ``grad_scale`` the same way (``_step_supports_amp_scaling``),
rather than asking the device whether to step; gradients still scaled are unscaled in place first, as
the fused kernels do.
"""
from typing import Iterable, List, Optional, Tuple

import torch


def _unscaled(optimizer: torch.optim.Optimizer, grads: List[torch.Tensor]) -> List[torch.Tensor]:
    """``grads``, divided in place by the ``grad_scale`` GradScaler set when it has not unscaled them."""
    grad_scale = getattr(optimizer, "grad_scale", None)
    if grad_scale is not None:
        torch._foreach_div_(grads, grad_scale.to(grads[0].device).reshape(()))
    return grads


def _skip(optimizer: torch.optim.Optimizer, device: torch.device) -> Optional[torch.Tensor]:
    """Whether to leave everything as it was (a 0-dim bool on ``device``) when the caller set ``found_inf``,
    else None."""
    found_inf = getattr(optimizer, "found_inf", None)
    if found_inf is None:
        return None
    return found_inf.to(device).reshape(()) != 0


def _axpby_(x: List[torch.Tensor], y: List[torch.Tensor], a: float, b: float, skip: Optional[torch.Tensor]) -> None:
    """x = a x + b y, in place, unless ``skip``. A bad step's values are NaN or infinite, which no
    arithmetic (``x + 0 (new - x)``) masks: on the skipping path the new values are made apart and taken
    with ``torch.where``, one tensor at a time (there is no multi-tensor ``where``)."""
    if skip is None:
        if a != 1:
            torch._foreach_mul_(x, a)
        torch._foreach_add_(x, y, alpha=b)
        return
    new = torch._foreach_add(torch._foreach_mul(x, a) if a != 1 else x, y, alpha=b)
    for old, value in zip(x, new):
        torch.where(skip, old, value, out=old)


def _norms(tensors: List[torch.Tensor]) -> torch.Tensor:
    """Each tensor's L2 norm, in one vector."""
    return torch.stack(torch._foreach_norm(tensors))


class _Layerwise(torch.optim.Optimizer):
    """What LARS and LAMB share: ``step`` hands each group's parameters with gradients, the gradients
    (unscaled where GradScaler left them scaled) and the skip flag to :meth:`_update`."""

    takes_found_inf = True
    _step_supports_amp_scaling = True

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update(group, params, _unscaled(self, [p.grad for p in params]), _skip(self, params[0].device))
        return loss

    def _update(self, group: dict, params: List[torch.Tensor], grads: List[torch.Tensor],
                skip: Optional[torch.Tensor]) -> None:
        raise NotImplementedError


class Lars(_Layerwise):
    """Layer-wise adaptive rate scaling on SGD with momentum; see the module's notes."""

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 nesterov: bool = False, trust_coefficient: float = 0.001, trust_clip: bool = False,
                 adapt: bool = True):
        if lr < 0 or momentum < 0 or weight_decay < 0 or trust_coefficient <= 0:
            raise ValueError(f"Lars: lr {lr}, momentum {momentum} and weight_decay {weight_decay} must be >= 0 and "
                             f"trust_coefficient {trust_coefficient} above 0")
        if nesterov and momentum <= 0:
            raise ValueError("Lars: nesterov needs a momentum above 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                                      trust_coefficient=trust_coefficient, trust_clip=trust_clip, adapt=adapt))

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if state.get("momentum_buffer") is None:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]

    def _update(self, group: dict, params: List[torch.Tensor], grads: List[torch.Tensor],
                skip: Optional[torch.Tensor]) -> None:
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        d = torch._foreach_add(grads, params, alpha=wd) if wd else torch._foreach_mul(grads, 1.0)
        if group["adapt"]:
            w, g = _norms(params), _norms(grads)
            ratio = torch.where((w > 0) & (g > 0), group["trust_coefficient"] * w / (g + wd * w), 1.0)
            if group["trust_clip"]:
                ratio = (ratio / lr).clamp(max=1.0) if lr > 0 else torch.ones_like(ratio)
            torch._foreach_mul_(d, list(ratio.unbind()))
        if mu:
            # A zero buffer at the first step: mu 0 + d is d, SGD's first step, and a skipped first
            # step leaves zeros, not an uninitialised buffer.
            bufs = [self._buffer(p) for p in params]
            _axpby_(bufs, d, mu, 1.0, skip)
            if group["nesterov"]:
                torch._foreach_add_(d, bufs, alpha=mu)
            else:
                d = bufs
        _axpby_(params, d, 1.0, -lr, skip)


class Lamb(_Layerwise):
    """Layer-wise adaptive moments (Adam's, with weight decay in the update); see the module's notes."""

    def __init__(self, params: Iterable, lr: float, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, adapt: bool = True):
        if lr < 0 or eps <= 0 or weight_decay < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Lamb: lr {lr} and weight_decay {weight_decay} must be >= 0, eps {eps} above 0 and "
                             f"betas {betas} in [0, 1)")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, adapt=adapt))

    def _state(self, p: torch.Tensor, name: str, like: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        value = state.get(name)
        if value is None:
            value = state[name] = torch.zeros_like(like)
        elif value.device != p.device:  # a step count that load_state_dict left on the CPU
            value = state[name] = value.to(p.device)
        return value

    def _update(self, group: dict, params: List[torch.Tensor], grads: List[torch.Tensor],
                skip: Optional[torch.Tensor]) -> None:
        (b1, b2), lr, wd = group["betas"], group["lr"], group["weight_decay"]
        zero = torch.zeros((), dtype=torch.float32, device=params[0].device)
        steps = [self._state(p, "step", zero) for p in params]
        m = [self._state(p, "exp_avg", p) for p in params]
        v = [self._state(p, "exp_avg_sq", p) for p in params]
        _axpby_(steps, [torch.ones_like(zero)] * len(steps), 1.0, 1.0, skip)
        _axpby_(m, grads, b1, 1 - b1, skip)
        _axpby_(v, torch._foreach_mul(grads, grads), b2, 1 - b2, skip)
        # At least 1: a first step that was skipped has zero moments and must not divide by 1 - b**0.
        t = torch.stack(steps).clamp(min=1.0)
        bc1, bc2_sqrt = 1 - torch.pow(b1, t), (1 - torch.pow(b2, t)).sqrt()
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, list(bc2_sqrt.unbind()))
        torch._foreach_add_(denom, group["eps"])
        u = torch._foreach_div(m, list(bc1.unbind()))
        torch._foreach_div_(u, denom)
        if wd:
            torch._foreach_add_(u, params, alpha=wd)
        if group["adapt"]:
            w, n = _norms(params), _norms(u)
            torch._foreach_mul_(u, list(torch.where((w > 0) & (n > 0), w / n, 1.0).unbind()))
        _axpby_(params, u, 1.0, -lr, skip)
