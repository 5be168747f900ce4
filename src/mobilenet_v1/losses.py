"""The seed's ``CrossEntropySmooth``, binary cross entropy (:class:`BinaryCrossEntropy`, timm's
``--bce-loss``), and knowledge distillation from a teacher (:class:`Distiller`).

The seed's smoothing puts ``1 - e`` on the true class and ``e / (num_classes - 1)`` on every other class,
which is not PyTorch's ``label_smoothing=e`` (``e / num_classes`` on every class, the true one included).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import bce_threshold_problem, temperature_problem


class CrossEntropySmooth(nn.Module):
    def __init__(self, sparse: bool = True, reduction: str = "mean", smooth_factor: float = 0.0,
                 num_classes: int = 1000):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be mean, sum or none, got {reduction!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.sparse = sparse
        self.reduction = reduction
        self.on_value = 1.0 - smooth_factor
        self.off_value = smooth_factor / (num_classes - 1)
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        if self.sparse:
            # sum_c t_c * logp_c with t = off everywhere and on at the label.
            picked = logp.gather(1, label.long().unsqueeze(1)).squeeze(1)
            loss = -(self.off_value * logp.sum(dim=1) + (self.on_value - self.off_value) * picked)
        else:
            loss = -(label.float() * logp).sum(dim=1)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


class BinaryCrossEntropy(nn.Module):
    """Each class a sigmoid against its own target, as timm's ``--bce-loss``:
    ``binary_cross_entropy_with_logits`` against one-hot targets,
    the mean over the batch and the classes (timm's default). Smoothed as :class:`CrossEntropySmooth`
    smooths (``1 - e`` on the true class, ``e / (num_classes - 1)`` elsewhere; timm's BCE puts
    ``1 - e + e / C`` and ``e / C``). The loss is linear in the target, so the mixed loss of Mixup and
    CutMix (``lam`` of one label's, the rest of the other's, :func:`engine.train_one_epoch`) is the loss of
    the mixed target, as timm computes it.

    ``target_threshold`` (timm's ``--bce-target-thresh``; None: off): every target, smoothed and mixed, is
    made 1 above it and 0 otherwise, so a class that Mixup or CutMix gave a share of the image above the
    threshold counts as wholly present. The loss is then no longer linear in the target: a mixed batch's
    goes through :meth:`mixed`, which builds the mixed target first. A threshold that makes every smoothed
    target alike (all 0 or all 1: :func:`config.bce_threshold_problem`) is refused."""

    def __init__(self, smooth_factor: float = 0.0, num_classes: int = 1000,
                 target_threshold: Optional[float] = None):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        problem = bce_threshold_problem(target_threshold or 0.0, smooth_factor, num_classes)
        if problem:
            raise ValueError(problem)
        self.on_value = 1.0 - smooth_factor
        self.off_value = smooth_factor / (num_classes - 1)
        self.num_classes = num_classes
        self.target_threshold = target_threshold

    def target(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The smoothed one-hot targets of ``label``, float32, shaped as ``logits``."""
        target = torch.full_like(logits, self.off_value, dtype=torch.float32)
        return target.scatter_(1, label.long().unsqueeze(1), self.on_value)

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.target_threshold is not None:
            target = (target > self.target_threshold).float()
        return F.binary_cross_entropy_with_logits(logits.float(), target)

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self._loss(logits, self.target(logits, label))

    def mixed(self, logits: torch.Tensor, label: torch.Tensor, partner: torch.Tensor, lam: float) -> torch.Tensor:
        """The loss of a batch mixed by Mixup or CutMix: ``lam`` of ``label``'s target, ``1 - lam`` of
        ``partner``'s, thresholded as one target."""
        return self._loss(logits, lam * self.target(logits, label) + (1.0 - lam) * self.target(logits, partner))


class ProgramTeacher(nn.Module):
    """A ``torch.export`` program's module (``ExportedProgram.module()``) as a :class:`Distiller`'s teacher,
    on the run's device: such a module is in evaluation mode for good and refuses ``eval()`` and
    ``train()``, which this takes and ignores. ``order``: the program's output of each of the run's outputs, where
    its run numbered the classes otherwise (timm's natural order of a folder's)."""

    def __init__(self, program: nn.Module, order: Optional[torch.Tensor] = None):
        super().__init__()
        self.program = program
        self.register_buffer("order", order, persistent=False)
        self.unevaluable = ""  # why it cannot take the run's evaluation batches, where it cannot (train's check)

    def train(self, mode: bool = True) -> "ProgramTeacher":
        self.training = mode
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.program(x)
        if self.order is None or not isinstance(out, torch.Tensor) or out.shape[-1] != self.order.numel():
            return out  # another count than the run's classes: refused as it is (train's check)
        return out[:, self.order]


class Renormalised(nn.Module):
    """A teacher whose run normalised its inputs by other per-channel constants than this run's: each batch,
    normalised by ``ours`` (mean, std), is turned into the teacher's normalisation (``theirs``) first,
    ``x * (std_ours / std_theirs) + (mean_ours - mean_theirs) / std_theirs``, so it sees the same images."""

    def __init__(self, teacher: nn.Module, ours: Tuple[Sequence[float], Sequence[float]],
                 theirs: Tuple[Sequence[float], Sequence[float]]):
        super().__init__()
        self.teacher = teacher
        (mean, std), (their_mean, their_std) = ours, theirs
        scale = [s / t for s, t in zip(std, their_std)]
        shift = [(m - n) / t for m, n, t in zip(mean, their_mean, their_std)]
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def unevaluable(self) -> str:
        return getattr(self.teacher, "unevaluable", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.teacher(torch.addcmul(self.shift, x, self.scale))


class Distiller:
    """Knowledge distillation (Hinton et al. 2015) from a trained ``teacher``: a training step's loss
    becomes ``(1 - alpha) * task_loss + alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))``,
    the KL summed over the classes and averaged over the batch (Hinton et al.'s scaling; DeiT's soft
    distillation divides by batch x classes instead, so its ``alpha`` weighs the KL 1/classes as much).

    The teacher sees the batch the student sees (augmented and mixed alike), in evaluation mode, without
    gradients (under the run's autocast: :func:`engine.train_one_epoch` calls :meth:`logits` where the
    student runs); it never trains."""

    def __init__(self, teacher: nn.Module, alpha: float = 0.5, temperature: float = 1.0,
                 source: Optional[Dict[str, str]] = None):
        if not 0 < alpha <= 1:
            raise ValueError(f"distill_alpha must be in (0, 1], got {alpha}")
        if temperature_problem(temperature):
            raise ValueError(temperature_problem(temperature))
        self.teacher = teacher.eval().requires_grad_(False)
        self.alpha, self.temperature = alpha, temperature
        # The file the teacher was read from: {"path", "sha256"}, recorded in the run's checkpoints.
        self.source = source
        # A line said with the teacher's top-1 on the eval split (train.teacher_line), or "": that split holds
        # images the teacher trained on, say.
        self.note = ""

    def divergence(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """``T**2 * KL(p_teacher || p_student)`` at temperature ``T``, the mean over the batch."""
        t = self.temperature
        return F.kl_div(F.log_softmax(student.float() / t, dim=1), F.log_softmax(teacher.float() / t, dim=1),
                        reduction="batchmean", log_target=True) * (t * t)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's outputs for the batch ``x``."""
        return self.teacher(x)

    def __call__(self, task_loss: torch.Tensor, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """A batch's loss from its task loss and the student's and teacher's (:meth:`logits`) outputs."""
        kd = self.divergence(student, teacher)
        if self.alpha == 1:  # the teacher alone: a non-finite task loss (0 x NaN is NaN) is no concern then
            return kd
        return (1 - self.alpha) * task_loss + self.alpha * kd
