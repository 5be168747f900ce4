"""The learning-rate schedules: one float32 value per global step.

The seed's four (its ``lr_generator.get_lr``) follow its order of operations in Python floats before
the cast to float32, so the arrays are the seed's bit for bit. ``exponential`` is ours: the staircase
decay of TF-slim's MobileNet training and of torchvision's MobileNetV2/V3 recipes (``StepLR``).
``cosine_annealing`` is ours too: the half cosine from ``lr_max`` to ``lr_end`` of timm's default
schedule and torchvision's ``CosineAnnealingLR`` (Loshchilov & Hutter 2017, without restarts), per
step; the seed's ``cosine`` is another curve (TensorFlow's linear cosine decay, 0.47 periods).
Pure functions of their arguments.
"""
import math
from typing import List, Optional

import numpy as np

LR_DECAY_MODES = ("steps", "poly", "cosine", "linear")  # the seed's
SCHEDULES = LR_DECAY_MODES + ("exponential", "cosine_annealing")
# How rates meant for one global batch (lr_base_size) follow another (:func:`lr_scale`).
LR_BASE_SCALES = ("auto", "linear", "sqrt")


SIZE_STEP = 16  # progressive resizing's sizes are multiples of it (fewer shapes for cuDNN and torch.compile)


def training_size(image_size: int, start: int, ramp: float, epoch: int, epochs: int) -> int:
    """Epoch ``epoch``'s (from 0) training image size under progressive resizing: ``start`` at the first,
    growing linearly to ``image_size`` at the last of the first ``ramp`` share of the ``epochs``, rounded
    down to a multiple of :data:`SIZE_STEP` (never below ``start``); ``image_size`` from there on, and
    always where ``start`` is 0. Both are rounded to 9 decimals before they are compared or rounded down, as
    :func:`decay_period` rounds its product: floating point lands a whole number just below or above it (0.07 x
    100 epochs is 7.000000000000001, which left the ramp's last epoch at 48 of 64; 176 came out 175.99999999999997
    and trained at 160)."""
    ramp_epochs = ramp_length(ramp, epochs)
    if not start or epoch >= ramp_epochs - 1:
        return image_size
    size = round(start + (image_size - start) * epoch / (ramp_epochs - 1), 9)
    return min(image_size, max(start, int(size) // SIZE_STEP * SIZE_STEP))


def ramp_length(ramp: float, epochs: int) -> float:
    """Progressive resizing's ramp in epochs: the share ``ramp`` of ``epochs``, rounded to 9 decimals (a whole
    number of epochs that floating point lands beside is that number)."""
    return round(ramp * epochs, 9)


def decay_period(lr_decay_epochs: float, steps_per_epoch: int) -> int:
    """Steps between two decays of ``exponential``: ``lr_decay_epochs`` epochs' steps, at least one
    (TF-slim's ``int(steps_per_epoch * num_epochs_per_decay)``), the product rounded to 9 decimals first: a
    whole number of steps that floating point lands just below (0.29 x 100 = 28.999999999999996) is that number."""
    return max(1, int(round(steps_per_epoch * lr_decay_epochs, 9)))


def lr_at(i: int, lr_init: float, lr_end: float, lr_max: float, warmup_steps: int, total_steps: int,
          lr_decay_mode: str, decay_rate: float = 1.0, decay_steps: int = 1, warmup_prefix: bool = True) -> float:
    """The learning rate of global step ``i`` (a Python float, before the seed's float32 cast).

    ``exponential``: a linear warm-up from ``lr_init`` as the seed's ``linear`` mode, then
    ``lr_max * decay_rate ** k`` in the ``k``-th period of ``decay_steps`` steps after it (``lr_end``
    unused); ``decay_rate`` and ``decay_steps`` mean nothing to the other modes. ``cosine_annealing``:
    the same warm-up, then ``lr_end + (lr_max - lr_end) * (1 + cos(pi * t)) / 2`` at the share ``t``
    of the steps after it that have been taken (``lr_max`` at the first, near ``lr_end`` at the last).
    ``warmup_prefix`` False (timm's default, without its ``--warmup-prefix``): those two count the warm-up's
    steps in, the cosine at the share ``t`` of all the steps and the ``k``-th period from step 0.
    """
    lr_init, lr_end, lr_max = float(lr_init), float(lr_end), float(lr_max)
    after = warmup_steps if warmup_prefix else 0  # where cosine_annealing's and exponential's span starts
    if lr_decay_mode == "cosine_annealing":
        if i < warmup_steps:
            return lr_init + (lr_max - lr_init) * i / warmup_steps
        done = (i - after) / (total_steps - after)
        return lr_end + (lr_max - lr_end) * 0.5 * (1.0 + math.cos(math.pi * done))
    if lr_decay_mode == "exponential":
        if i < warmup_steps:
            return lr_init + (lr_max - lr_init) * i / warmup_steps
        return lr_max * float(decay_rate) ** ((i - after) // decay_steps)
    if lr_decay_mode == "steps":
        if i < warmup_steps:
            return lr_init + (lr_max - lr_init) * i / warmup_steps
        if i < 0.3 * total_steps:
            return lr_max
        if i < 0.6 * total_steps:
            return lr_max * 0.1
        if i < 0.8 * total_steps:
            return lr_max * 0.01
        return lr_max * 0.001
    if lr_decay_mode == "poly":
        if i < warmup_steps:
            return lr_init + (lr_max - lr_init) / float(warmup_steps) * float(i)
        base = 1.0 - (float(i) - float(warmup_steps)) / (float(total_steps) - float(warmup_steps))
        return max(lr_max * base * base, 0.0)
    if lr_decay_mode == "cosine":
        decay_steps = total_steps - warmup_steps
        if i < warmup_steps:
            return lr_init + (lr_max - lr_init) / float(warmup_steps) * (i + 1)
        linear_decay = (total_steps - i) / decay_steps
        cosine_decay = 0.5 * (1 + math.cos(math.pi * 2 * 0.47 * i / decay_steps))
        return lr_max * (linear_decay * cosine_decay + 0.00001)
    # "linear" and anything else, as in the seed.
    if i < warmup_steps:
        return lr_init + (lr_max - lr_init) * i / warmup_steps
    return lr_max - (lr_max - lr_end) * (i - warmup_steps) / (total_steps - warmup_steps)


# More optimiser steps than any run makes (90 ImageNet epochs at a global batch of 1 are 115 million).
MAX_STEPS = 200_000_000


def get_lr(lr_init: float, lr_end: float, lr_max: float, warmup_epochs: int, total_epochs: int,
           steps_per_epoch: int, lr_decay_mode: str, decay_rate: float = 1.0,
           decay_epochs: float = 1.0, per_epoch: bool = False, start: int = 0,
           stop: Optional[int] = None, warmup_prefix: bool = True) -> np.ndarray:
    """The per-step schedule over ``total_epochs * steps_per_epoch`` steps, as float32 (the seed's
    signature; ``decay_rate`` and ``decay_epochs`` are ``exponential``'s). ``per_epoch``: every step of
    an epoch takes the rate of its first step (a scheduler stepped once an epoch, torchvision's and
    timm's default). ``start``, ``stop``: the values of those steps alone, ``get_lr(...)[start:stop]``
    bit for bit without the rest (``lr-schedule`` writes a table of millions of steps a part at a time).
    ``warmup_prefix``: :func:`lr_at`'s."""
    if steps_per_epoch < 1 or total_epochs < 1:
        raise ValueError(f"steps_per_epoch and total_epochs must be >= 1, got {steps_per_epoch}, {total_epochs}")
    total_steps = steps_per_epoch * total_epochs
    if total_steps > MAX_STEPS:  # a slip of the keyboard, which would fill the memory step by step
        raise ValueError(f"epoch_size {total_epochs} x {steps_per_epoch} steps per epoch is {total_steps:,} steps, "
                         f"more than {MAX_STEPS:,}: check --epoch_size and the steps per epoch (lr-schedule's "
                         f"--steps_per_epoch)")
    # warmup_epochs >= total_epochs: every step is a warm-up one, as in the seed (whose formulas divide by
    # T - W only after the warm-up), the rate climbing toward lr_max without reaching it.
    warmup_steps = steps_per_epoch * warmup_epochs
    period = decay_period(decay_epochs, steps_per_epoch)
    steps = range(total_steps)[start:stop]
    if per_epoch and lr_decay_mode == "exponential":
        # Stepped once an epoch (timm's StepLRScheduler, torch's StepLR): the k-th decay at the first epoch at or
        # past k x decay_epochs (timm's epoch // decay_t), counted in epochs, not in int(steps_per_epoch x
        # decay_epochs) steps, which at a few steps an epoch decays early (2.4 epochs of 1 step: every 2 epochs).
        after = warmup_epochs if warmup_prefix else 0

        def rate(i: int) -> float:
            epoch = i // steps_per_epoch
            if epoch < warmup_epochs:
                return lr_at(epoch * steps_per_epoch, lr_init, lr_end, lr_max, warmup_steps, total_steps,
                             lr_decay_mode, decay_rate, period, warmup_prefix)
            # Python's float floor division, as timm's: 2 // 0.4 is 4.0 (0.4 is stored a hair above 2/5), so timm
            # decays at epoch 3, not 2; rounding the quotient first decayed at other epochs than timm's
            return float(lr_max) * float(decay_rate) ** ((epoch - after) // float(decay_epochs))

        return np.array([rate(i) for i in steps]).astype(np.float32)
    values = [lr_at(i - i % steps_per_epoch if per_epoch else i, lr_init, lr_end, lr_max, warmup_steps, total_steps,
                    lr_decay_mode, decay_rate, period, warmup_prefix) for i in steps]
    return np.array(values).astype(np.float32)


# The configuration keys a schedule is made of (with the steps per epoch).
SCHEDULE_KEYS = ("lr_decay_mode", "lr_init", "lr_end", "lr_max", "warmup_epochs", "epoch_size",
                 "lr_decay_rate", "lr_decay_epochs", "lr_per_epoch", "warmup_prefix")


def uses(lr_decay_mode: str, warmup_epochs: int, key: str) -> bool:
    """Whether a schedule of ``lr_decay_mode`` with ``warmup_epochs`` depends on the configuration key
    ``key`` (one of :data:`SCHEDULE_KEYS`): ``lr_init`` is the warm-up's, ``lr_end`` the seed's linear
    mode's and ``cosine_annealing``'s, the decay rate and period ``exponential``'s, ``warmup_prefix`` those two's
    after a warm-up."""
    if key in ("lr_decay_rate", "lr_decay_epochs"):
        return lr_decay_mode == "exponential"
    if key == "warmup_prefix":  # where cosine_annealing's and exponential's span starts: after a warm-up only
        return lr_decay_mode in ("cosine_annealing", "exponential") and warmup_epochs > 0
    if key == "lr_end":
        return lr_decay_mode not in ("steps", "poly", "cosine", "exponential")
    if key == "lr_init":
        return warmup_epochs > 0
    return True


def global_batch(cfg, processes: int = 0) -> int:
    """The samples of one optimiser step of a configuration: batch_size x processes x grad_accum_steps,
    the processes ``device_num`` unless given (``train`` gives those torchrun started)."""
    return cfg.batch_size * (processes or cfg.device_num) * cfg.grad_accum_steps


def scale_rule(cfg) -> str:
    """``lr_base_scale`` resolved: "auto" is timm's rule, sqrt for Adam-type optimisers (AdamW, LAMB),
    linear otherwise."""
    if cfg.lr_base_scale != "auto":
        return cfg.lr_base_scale
    return "sqrt" if cfg.opt in ("adamw", "lamb") else "linear"


def lr_scale(cfg, batch: int) -> float:
    """The factor on the rates (lr_init, lr_max, lr_end) of a configuration run at global batch ``batch``:
    1 without ``lr_base_size``; else ``batch / lr_base_size`` (linear) or its square root."""
    if not cfg.lr_base_size:
        return 1.0
    ratio = batch / cfg.lr_base_size
    return math.sqrt(ratio) if scale_rule(cfg) == "sqrt" else ratio


def scale_note(cfg, batch: int) -> str:
    """A line saying how the rates were scaled to the global batch ``batch``; "" without lr_base_size."""
    if not cfg.lr_base_size:
        return ""
    factor = lr_scale(cfg, batch)
    rates = ", ".join(f"{k} {getattr(cfg, k):g} -> {getattr(cfg, k) * factor:.6g}"
                      for k in ("lr_max", "lr_init", "lr_end")
                      if getattr(cfg, k) and uses(cfg.lr_decay_mode, cfg.warmup_epochs, k))
    return (f"lr_base_size {cfg.lr_base_size}: the rates are meant for a global batch of {cfg.lr_base_size}; this "
            f"run's is {batch}, so they are scaled x{factor:.6g} ({scale_rule(cfg)}): {rates or 'all 0'}")


def schedule_notes(cfg, lr: np.ndarray, batch: int) -> List[str]:
    """What ``train`` and ``lr-schedule`` say of the schedule ``lr`` of ``cfg`` at global batch ``batch``:
    how its rates were scaled (:func:`scale_note`), a warm-up as long as the run (:func:`warmup_note`) and a
    decay that climbs (:func:`rising_note`)."""
    return [note for note in (scale_note(cfg, batch), warmup_note(cfg, lr, lr_scale(cfg, batch)), rising_note(cfg))
            if note]


def rising_note(cfg) -> str:
    """A line for a decay toward an ``lr_end`` above ``lr_max`` (linear, cosine_annealing): after the warm-up the
    rate climbs to it, as the formula (and torch's CosineAnnealingLR) has it, almost always a typo; "" otherwise."""
    if cfg.lr_end <= cfg.lr_max or cfg.warmup_epochs >= cfg.epoch_size or not uses(cfg.lr_decay_mode,
                                                                                    cfg.warmup_epochs, "lr_end"):
        return ""
    after = " after the warm-up" if cfg.warmup_epochs else ""
    return (f"lr_end {cfg.lr_end:g} is above lr_max {cfg.lr_max:g}: the rate climbs from lr_max to lr_end{after} "
            f"({cfg.lr_decay_mode} runs from the one to the other)")


def warmup_note(cfg, lr: np.ndarray, scale: float = 1.0) -> str:
    """A line for a configuration whose warm-up is as long as its run (every step a warm-up one, as in
    the seed), with the rates it runs from and to (the one rate where they are alike: a run of one step);
    "" otherwise. ``scale``: :func:`lr_scale`."""
    if cfg.warmup_epochs < cfg.epoch_size:
        return ""
    peak = cfg.lr_max * scale
    short = f", short of lr_max {peak:.6g}" if float(lr[-1]) != float(np.float32(peak)) else ""
    first, last = f"{float(lr[0]):.6g}", f"{float(lr[-1]):.6g}"
    # One step (or lr_init at lr_max): the rate does not climb, and "from 0.01 to 0.01" would say it does.
    # A warm-up from an lr_init above lr_max (lr_max 0, say) goes down: "climbs" would say the opposite.
    way = "climbs" if float(lr[-1]) > float(lr[0]) else "falls"
    rate = f"the rate stays at {first}" if first == last else f"the rate {way} from {first} to {last}"
    return (f"warmup_epochs {cfg.warmup_epochs} >= epoch_size {cfg.epoch_size}: every step is a warm-up step "
            f"({rate}{short}), as in the seed's schedule")


def schedule(cfg, steps_per_epoch: int, batch: int = 0, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    """The schedule a configuration (``config.Config``) trains with, at ``steps_per_epoch`` steps of a
    global batch of ``batch`` (0: :func:`global_batch`), which only ``lr_base_size`` looks at; ``start``,
    ``stop``: the steps ``[start:stop]`` of it alone (:func:`get_lr`)."""
    k = lr_scale(cfg, batch or global_batch(cfg))
    return get_lr(cfg.lr_init * k, cfg.lr_end * k, cfg.lr_max * k, cfg.warmup_epochs, cfg.epoch_size,
                  steps_per_epoch, cfg.lr_decay_mode, cfg.lr_decay_rate, cfg.lr_decay_epochs, cfg.lr_per_epoch,
                  start, stop, cfg.warmup_prefix)
