"""Augmentations of a whole training batch, on the device the batch is on, after normalisation:
random erasing (Zhong et al. 2020), then mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019).

Random erasing: each sample, with probability ``p``, has a box of 2% to 1/3 of its area (aspect ratio
log-uniform in [0.3, 3.3], up to 10 tries to fit it, as torchvision's ``RandomErasing``) set to 0, the
data set's mean colour once normalised (torchvision's default value), or (``erase_mode`` "pixel",
timm's default ``remode``) to normal noise, each pixel and channel its own value. The noise comes from
a generator on the batch's device seeded from the batch's draws: a resumed epoch erases alike.

Mixing: sample ``i`` of a batch of ``B`` is paired with sample ``B - 1 - i`` (the batch reversed: no
index tensor to build, nothing read back from the device), with one ``lam`` per batch drawn from
Beta(alpha, alpha):

- mixup: ``lam * x + (1 - lam) * x.flip(0)``;
- cutmix: a box of about ``(1 - lam)`` of the image, its centre uniform and its sides clipped at the
  edges, takes the partner's pixels; ``lam`` becomes the share of the image left as it was.

A sample's target is ``lam`` of its label and ``1 - lam`` of its partner's. Cross entropy is linear in
its target, so the loss is ``lam * loss(y) + (1 - lam) * loss(partner's y)`` whatever label smoothing
the criterion applies (the seed's ``CrossEntropySmooth`` included): the value of the mixed, smoothed
target vector, without building it.

A batch's draws come from the run's seed, the epoch, the batch's position in the epoch and the
process's rank, never from a global random state: a resumed epoch augments its remaining batches as an
uninterrupted run would. They are made on the host with NumPy (0.04 ms a batch of 256 for mixing,
0.17 ms with erasing, on the 2-core development CPU); what reaches the device is python numbers
(mixing) and one small non-blocking copy of the erased boxes.
"""
import math
from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch

from .config import ERASE_MODES
from .transforms import to_device_nowait

ERASE_SCALE = (0.02, 1.0 / 3.0)
ERASE_RATIO = (0.3, 3.3)
ERASE_TRIES = 10


class Mix(NamedTuple):
    """One batch's mixing draw: ``lam`` is each sample's own share of its target (1.0: not mixed)."""
    lam: float
    box: Optional[Tuple[int, int, int, int]] = None  # cutmix: top, bottom, left, right; None: mixup


def mixup(images: torch.Tensor, lam: float) -> torch.Tensor:
    return images.lerp(images.flip(0), 1.0 - lam)


def cutmix(images: torch.Tensor, box: Tuple[int, int, int, int]) -> torch.Tensor:
    top, bottom, left, right = box
    out = images.clone()
    out[..., top:bottom, left:right] = images[..., top:bottom, left:right].flip(0)
    return out


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> Tuple[int, int, int, int]:
    """A box of sides ``sqrt(1 - lam)`` of the image's, centred at a uniform pixel, clipped to the image."""
    ratio = math.sqrt(1.0 - lam)
    half_h, half_w = int(height * ratio) // 2, int(width * ratio) // 2
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (max(cy - half_h, 0), min(cy + half_h, height), max(cx - half_w, 0), min(cx + half_w, width))


def erase_boxes(n: int, height: int, width: int, prob: float, rng: np.random.Generator) -> np.ndarray:
    """Random erasing's boxes for ``n`` samples, as an (n, 4) int64 array of top, bottom, left, right;
    an empty box (all 0) for a sample left as it is (not drawn, or no try fitted)."""
    chosen = rng.random(n) < prob
    area = height * width * rng.uniform(*ERASE_SCALE, size=(n, ERASE_TRIES))
    aspect = np.exp(rng.uniform(math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), size=(n, ERASE_TRIES)))
    h = np.rint(np.sqrt(area * aspect)).astype(np.int64)
    w = np.rint(np.sqrt(area / aspect)).astype(np.int64)
    fits = (h < height) & (w < width) & (h > 0) & (w > 0)
    first = fits.argmax(axis=1)  # the first try that fits
    rows = np.arange(n)
    h, w = h[rows, first], w[rows, first]
    top = np.floor(rng.random(n) * (height - h + 1)).astype(np.int64)
    left = np.floor(rng.random(n) * (width - w + 1)).astype(np.int64)
    boxes = np.stack([top, top + h, left, left + w], axis=1)
    boxes[~(chosen & fits[rows, first])] = 0
    return boxes


def erase(images: torch.Tensor, boxes: torch.Tensor, noise_seed: Optional[int] = None) -> torch.Tensor:
    """``images`` (N, C, H, W) with each sample's box (``boxes``: (N, 4) top, bottom, left, right on
    the same device) set to 0, or with ``noise_seed`` to standard normal noise drawn from it."""
    h, w = images.shape[-2:]
    rows = torch.arange(h, device=images.device)[None, :, None]
    cols = torch.arange(w, device=images.device)[None, None, :]
    top, bottom, left, right = (b[:, None, None] for b in boxes.unbind(1))
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)  # (N, H, W)
    out = images.clone()  # written in place: the clone keeps channels_last
    if noise_seed is None:
        return out.masked_fill_(inside[:, None], 0)
    generator = torch.Generator(device=images.device).manual_seed(noise_seed)
    noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    return out.copy_(torch.where(inside[:, None], noise, images))


class BatchAugment:
    """Draws and applies random erasing and mixup or cutmix to training batches; see the module's notes.

    ``mix_prob``: the share of batches mixed at all. With both alphas above 0, each mixed batch takes
    one of the two, with equal chances (torchvision's references and timm's default). ``erase_prob``:
    each sample's chance of an erased box; ``erase_mode``: what fills it, "const" (0) or "pixel" (noise).
    ``mix_off_epoch``: no batch of epoch ``mix_off_epoch`` (from 0) or later is mixed (timm's
    ``--mixup-off-epoch``); 0: mixing never stops. Erasing goes on.
    """

    def __init__(self, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, mix_prob: float = 1.0,
                 erase_prob: float = 0.0, seed: int = 1, rank: int = 0, erase_mode: str = "const",
                 mix_off_epoch: int = 0):
        for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0 (0: off), got {value}")
        for name, value in (("mix_prob", mix_prob), ("random_erase", erase_prob)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if mix_off_epoch < 0:
            raise ValueError(f"mixup_off_epoch must be >= 0 (0: mixing never stops), got {mix_off_epoch}")
        self.mixup_alpha, self.cutmix_alpha, self.mix_prob = mixup_alpha, cutmix_alpha, mix_prob
        self.mix_off_epoch = mix_off_epoch
        if erase_mode not in ERASE_MODES:
            raise ValueError(f"random_erase_mode must be {' or '.join(ERASE_MODES)}, got {erase_mode!r}")
        self.erase_prob, self.seed, self.rank, self.erase_mode = erase_prob, seed, rank, erase_mode

    @property
    def mixes(self) -> bool:
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.mix_prob > 0

    @property
    def enabled(self) -> bool:
        return self.mixes or self.erase_prob > 0

    def _rng(self, epoch: int, position: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, position, self.rank])

    def mixes_in(self, epoch: int) -> bool:
        """Whether batches of ``epoch`` (from 0) may be mixed."""
        return self.mixes and not 0 < self.mix_off_epoch <= epoch

    def _draw_mix(self, rng: np.random.Generator, height: int, width: int, epoch: int) -> Mix:
        """The batch's mixing; after ``mix_off_epoch`` drawn and not applied, so that the draws after it
        (the erased boxes) stay those of a run that mixes on."""
        if not self.mixes or rng.random() >= self.mix_prob:
            return Mix(1.0)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or rng.random() < 0.5)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = float(rng.beta(alpha, alpha))
        if not use_cutmix:
            return Mix(lam) if self.mixes_in(epoch) else Mix(1.0)
        top, bottom, left, right = box = cutmix_box(height, width, lam, rng)
        return Mix(1.0 - (bottom - top) * (right - left) / (height * width), box) if self.mixes_in(epoch) else Mix(1.0)

    def draw(self, epoch: int, position: int, n: int, height: int,
             width: int) -> Tuple[Mix, np.ndarray, Optional[int]]:
        """The draws of the batch of ``n`` samples at ``position`` (from 0) of ``epoch``: its mixing, its
        erased boxes (:func:`erase_boxes`; none drawn without ``erase_prob``) and, with ``erase_mode``
        pixel, the seed of their noise (None otherwise)."""
        rng = self._rng(epoch, position)
        # Mixing first, so that turning erasing on or off leaves the mixing draws as they were; the
        # noise's seed last, so that the boxes are those of either mode.
        mix = self._draw_mix(rng, height, width, epoch)
        boxes = (erase_boxes(n, height, width, self.erase_prob, rng) if self.erase_prob > 0
                 else np.zeros((n, 4), dtype=np.int64))
        noise_seed = int(rng.integers(2**63)) if self.erase_prob > 0 and self.erase_mode == "pixel" else None
        return mix, boxes, noise_seed

    def __call__(self, epoch: int, position: int, images: torch.Tensor,
                 labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """``(images, partners' labels, lam)`` for the batch at ``position`` of ``epoch``; the loss is
        ``lam * loss(labels) + (1 - lam) * loss(partners' labels)``."""
        mix, boxes, noise_seed = self.draw(epoch, position, images.shape[0], images.shape[-2], images.shape[-1])
        if boxes.any():
            images = erase(images, to_device_nowait(torch.from_numpy(boxes), images.device), noise_seed)
        if mix.lam >= 1.0:
            return images, labels, 1.0
        mixed = cutmix(images, mix.box) if mix.box is not None else mixup(images, mix.lam)
        return mixed, labels.flip(0), mix.lam
