"""An exponential moving average of the weights (``--ema_decay``), kept beside the trained ones.

After every optimiser step each float tensor of the model's state (the weights and BatchNorm's running
statistics) is blended into its average: ``average += (1 - d) * (weight - average)``, one multi-tensor
kernel for all of them, on the device, with nothing read back. ``d`` is the configured decay, held
lower at the start as TensorFlow's ``ExponentialMovingAverage(decay, num_updates)`` does:
``d = min(decay, (1 + n) / (10 + n))`` at the ``n``-th update, so that the average does not keep the
random initial weights for thousands of steps. The average is what TF-slim (``--moving_average_decay``),
torchvision's references and timm (``--model-ema``) evaluate and ship; the trained weights keep training.

A step that the non-finite guard skips leaves the weights as they were; the average still takes its
update (toward unchanged weights): the decision stays on the device, and the host does not know. A
step that one process leaves out for a batch emptied by unreadable files (``engine.train_one_epoch``)
makes no update; ``updates`` counts the updates made, and a checkpoint keeps it.
"""
from typing import Any, Dict, List

import torch
from torch import nn

from .checkpoint import unwrap


def decay_at(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (counted from 0)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """The average of ``model``'s state, held in ``module`` (a model of the same architecture, in eval
    mode, never trained): it is evaluated and saved as a model is.

    ``module`` must be built like ``model`` (the same class and arguments) and on its device and
    memory format; it starts as a copy of ``model``'s state."""

    def __init__(self, model: nn.Module, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = module.eval().requires_grad_(False)
        source = unwrap(model).state_dict(keep_vars=True)
        target = self.module.state_dict(keep_vars=True)
        if list(source) != list(target):
            raise ValueError("WeightAverage: the module's state names differ from the model's")
        self._names = [k for k, v in source.items() if v.is_floating_point()]
        self._sources: List[torch.Tensor] = [source[k].detach() for k in self._names]
        self._averages: List[torch.Tensor] = [target[k].detach() for k in self._names]
        # Counters (num_batches_tracked) are not averaged: a saved average holds the model's.
        self._counters = {k: source[k].detach() for k in source if k not in self._names}
        self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        """Start the average afresh at the model's current state."""
        torch._foreach_copy_(self._averages, self._sources)
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Blend the model's current state into the average (after an optimiser step)."""
        weight = 1.0 - decay_at(self.decay, self.updates)
        torch._foreach_lerp_(self._averages, self._sources, weight)
        self.updates += 1

    @torch.no_grad()
    def state_dict(self) -> Dict[str, Any]:
        """What a checkpoint keeps: ``decay``, ``updates`` and ``model`` (a state dict like the model's,
        its counters the model's). ``module`` itself is left as it is: only rank 0 saves, and every
        rank's average must stay the same."""
        model = self.module.state_dict()
        model.update({k: v.clone() for k, v in self._counters.items()})
        return {"decay": self.decay, "updates": self.updates, "model": model}

    @torch.no_grad()
    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Take a checkpoint's average (checked beforehand by ``checkpoint.validate_training_checkpoint``).
        The decay stays this run's."""
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
