"""The seed's ``CrossEntropySmooth``.

Its smoothing puts ``1 - e`` on the true class and ``e / (num_classes - 1)`` on every other class, which
is not PyTorch's ``label_smoothing=e`` (``e / num_classes`` on every class, the true one included).
"""
import torch
import torch.nn.functional as F
from torch import nn


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
