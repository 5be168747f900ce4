"""TrivialAugment (Müller & Hutter 2021, its "wide" ranges), RandAugment (Cubuk et al. 2020),
AutoAugment's ImageNet, CIFAR-10 and SVHN policies (Cubuk et al. 2019), AugMix (Hendrycks et al.
2020) and colour jitter (torchvision's ``ColorJitter``, timm's ``--color-jitter``) as batched tensor
functions: each sample of a batch gets its own operations and magnitudes.

The operations and their magnitude ranges (31 bins; AutoAugment's 10) are those of torchvision's
``TrivialAugmentWide``, ``RandAugment`` (``num_ops`` 2, ``magnitude`` 9 by default) and
``AutoAugment(AutoAugmentPolicy.IMAGENET | CIFAR10 | SVHN)`` and ``AugMix`` (severity 3), and so is each
operation's arithmetic on uint8 images (bilinear geometry with a black fill, rounded; blends truncated
to uint8), so a model trained here sees what torchvision's recipes (``--auto-augment ta_wide`` / ``ra``
/ ``imagenet`` / ``cifar10`` / ``svhn`` / ``augmix``, which pass their ``--interpolation``, bilinear, to
every policy) show theirs. ``tests/test_autoaugment.py`` checks every operation against torchvision's
functional ops image by image: the same values, the geometry within one level (bilinear weights on two
grids, affine_grid's here and torchvision's own, differ in their last bits).

A sample's operations come from its augmentation seed (the seed that draws its crop and flip, through
a hash of its own: :func:`seed_uniforms`): a sample is augmented alike in any pipeline, split over any
number of processes, and from any batch a resumed epoch starts at. On a
device the batch is split by operation (one ``index_select``/``index_copy_`` pair each) with index
tensors copied without waiting, so nothing reads back from the device.

Images are (N, 3, H, W) with values in [0, 255]: uint8 (CPU and CIFAR-10 pipelines) or float (the GPU
pipeline's resampled crops, float16 on CUDA), after the crop and flip, before normalisation.
"""
import functools
import math
from typing import List, NamedTuple, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .transforms import to_device_nowait

POLICIES = ("ta_wide", "ra", "imagenet", "cifar10", "svhn", "augmix")
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
       "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize", "Invert", "Hue")
CHOSEN = 14  # TrivialAugment and RandAugment pick among the first 14 (Invert is AutoAugment's only)
# Colour jitter's operations, in torchvision's ColorJitter's order of them (Color: saturation); Hue is its only.
JITTER_OPS = ("Brightness", "Contrast", "Color", "Hue")
MAX_JITTER = 10.0  # factors up to 11 leave little of an image; far larger ones overflow float32 to NaN
BINS = 31
# AutoAugment's policies (Cubuk et al. 2019, found on ImageNet, reduced CIFAR-10 and reduced SVHN): 25
# sub-policies of two (operation, probability, magnitude bin of 10) each; an image takes one
# sub-policy, each of its operations with its probability.
IMAGENET_POLICY = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.8, 0), ("Equalize", 0.6, 0)), (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 0), ("Solarize", 0.2, 4)), (("Equalize", 0.4, 0), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 0)), (("Posterize", 0.8, 5), ("Equalize", 1.0, 0)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, 0), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, 0)),
    (("Equalize", 0.0, 0), ("Equalize", 0.8, 0)), (("Invert", 0.6, 0), ("Equalize", 1.0, 0)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, 0)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 0)), (("Color", 0.4, 0), ("Equalize", 0.6, 0)),
    (("Equalize", 0.4, 0), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 0)),
    (("Invert", 0.6, 0), ("Equalize", 1.0, 0)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 0), ("Equalize", 0.6, 0)),
)
CIFAR10_POLICY = (
    (("Invert", 0.1, 0), ("Contrast", 0.2, 6)), (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)), (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, 0), ("Equalize", 0.9, 0)), (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)), (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, 0), ("Equalize", 0.5, 0)), (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)), (("Equalize", 0.3, 0), ("AutoContrast", 0.4, 0)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)), (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, 0)), (("Equalize", 0.2, 0), ("AutoContrast", 0.6, 0)),
    (("Equalize", 0.2, 0), ("Equalize", 0.6, 0)), (("Color", 0.9, 9), ("Equalize", 0.6, 0)),
    (("AutoContrast", 0.8, 0), ("Solarize", 0.2, 8)), (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, 0)), (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, 0), ("Solarize", 0.8, 3)), (("Equalize", 0.8, 0), ("Invert", 0.1, 0)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, 0)),
)
SVHN_POLICY = (
    (("ShearX", 0.9, 4), ("Invert", 0.2, 0)), (("ShearY", 0.9, 8), ("Invert", 0.7, 0)),
    (("Equalize", 0.6, 0), ("Solarize", 0.6, 6)), (("Invert", 0.9, 0), ("Equalize", 0.6, 0)),
    (("Equalize", 0.6, 0), ("Rotate", 0.9, 3)), (("ShearX", 0.9, 4), ("AutoContrast", 0.8, 0)),
    (("ShearY", 0.9, 8), ("Invert", 0.4, 0)), (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
    (("Invert", 0.9, 0), ("AutoContrast", 0.8, 0)), (("Equalize", 0.6, 0), ("Rotate", 0.9, 3)),
    (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)), (("ShearY", 0.8, 8), ("Invert", 0.7, 0)),
    (("Equalize", 0.9, 0), ("TranslateY", 0.6, 6)), (("Invert", 0.9, 0), ("Equalize", 0.6, 0)),
    (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)), (("Invert", 0.8, 0), ("TranslateY", 0.0, 2)),
    (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)), (("Invert", 0.6, 0), ("Rotate", 0.8, 4)),
    (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)), (("ShearX", 0.1, 6), ("Invert", 0.6, 0)),
    (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)), (("ShearY", 0.8, 4), ("Invert", 0.8, 0)),
    (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)), (("ShearY", 0.8, 5), ("AutoContrast", 0.7, 0)),
    (("ShearX", 0.7, 2), ("Invert", 0.1, 0)),
)
AUTOAUGMENT_POLICIES = {"imagenet": IMAGENET_POLICY, "cifar10": CIFAR10_POLICY, "svhn": SVHN_POLICY}
# Mixed into a sample's seed: its operations are drawn apart from its crop.
_SALT = 0x5DEECE66DA3B1F27
_GEOMETRIC = {"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate"}
_SIGNED = _GEOMETRIC | {"Brightness", "Color", "Contrast", "Sharpness"}
_SIGNED_OP = np.array([op in _SIGNED for op in OPS])
# Each of AUTOAUGMENT_POLICIES as (sub-policy, step) arrays of operation index, probability and bin.
_POLICY_ARRAYS = {name: (np.array([[OPS.index(op) for op, _, _ in sub] for sub in table]),
                         np.array([[p for _, p, _ in sub] for sub in table]),
                         np.array([[b for _, _, b in sub] for sub in table]))
                  for name, table in AUTOAUGMENT_POLICIES.items()}


# AugMix: each image is mixed with MIX_WIDTH chains of 1 to MIX_DEPTH operations among these (torchvision's
# AugMix with all_ops, in its order), a bin below the severity of MIX_BINS each.
AUGMIX_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Posterize", "Solarize", "AutoContrast",
              "Equalize", "Brightness", "Color", "Contrast", "Sharpness")
MIX_WIDTH, MIX_DEPTH, MIX_BINS = 3, 3, 10
_AUGMIX_OP_INDEX = np.array([OPS.index(op) for op in AUGMIX_OPS])


def magnitudes(policy: str, op: str, height: int, width: int) -> List[float]:
    """The unsigned magnitudes of ``op``, one a bin (31; AutoAugment's and AugMix's 10): torchvision's
    tables, built as it builds them (float32 ``linspace``), since an exact 16.0 where it holds 15.999999
    shifts one pixel more after ``int()``. AugMix's are RandAugment's but for translations (a third of
    the side) and posterize (4 bits kept down to 0)."""
    wide, augmix = policy == "ta_wide", policy == "augmix"
    bins = MIX_BINS if augmix else 10 if policy in AUTOAUGMENT_POLICIES else BINS

    def ramp(top: float) -> List[float]:
        return torch.linspace(0.0, top, bins).tolist()

    side = width if op == "TranslateX" else height
    if op in ("ShearX", "ShearY"):
        return ramp(0.99 if wide else 0.3)
    if op in ("TranslateX", "TranslateY"):
        return ramp(32.0 if wide else side / 3.0 if augmix else 150.0 / 331.0 * side)
    if op == "Rotate":
        return ramp(135.0 if wide else 30.0)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return ramp(0.99 if wide else 0.9)
    if op == "Posterize":  # bits kept: 8 down to 2 (ta_wide) or 4; AugMix's 4 down to 0
        return ((4 if augmix else 8) - torch.arange(bins) / ((bins - 1) / (6 if wide else 4))).round().tolist()
    if op == "Solarize":  # the threshold, as a share of 255
        return torch.linspace(1.0, 0.0, bins).tolist()
    return [0.0] * bins


@functools.lru_cache(maxsize=None)
def magnitude_table(policy: str, height: int, width: int) -> np.ndarray:
    """(:data:`OPS`, bins) :func:`magnitudes` of ``policy`` for images of this size (translations scale
    with it), built once a size."""
    return np.array([magnitudes(policy, op, height, width) for op in OPS])


class Plan(NamedTuple):
    """One round of operations for a batch: ``ops[i]`` indexes :data:`OPS`, ``values[i]`` is its signed
    magnitude (CPU tensors; float64 holding torchvision's float32 table values, as its Python floats do)."""
    ops: torch.Tensor
    values: torch.Tensor


class _Augment:
    """What the loaders hold: ``plans(seeds, h, w)`` drawn from the samples' seeds, ``apply_plans(images,
    plans, rows)``, and a call doing both."""

    def plans(self, seeds: Union[Sequence[int], torch.Tensor], height: int, width: int) -> list:
        raise NotImplementedError

    def apply_plans(self, images: torch.Tensor, plans: list, rows: slice = slice(None)) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, seeds: Union[Sequence[int], torch.Tensor]) -> torch.Tensor:
        return self.apply_plans(images, self.plans(seeds, images.shape[-2], images.shape[-1]))


class _Rounds(_Augment):
    """An augmentation whose plans are rounds of one operation a sample, applied in turn."""

    def apply_plans(self, images: torch.Tensor, plans: List[Plan], rows: slice = slice(None)) -> torch.Tensor:
        """``images``, the samples ``rows`` of those ``plans`` were drawn for, with their operations."""
        for plan in plans:
            images = apply(images, Plan(plan.ops[rows], plan.values[rows]))
        return images


class AutoAugment(_Rounds):
    """``policy`` "ta_wide" (one operation a sample, a uniform bin), "ra" (``num_ops`` operations a
    sample at bin ``level``), or one of AutoAugment's policies, "imagenet", "cifar10" or "svhn"
    (:data:`AUTOAUGMENT_POLICIES`)."""

    def __init__(self, policy: str, level: int = 9, num_ops: int = 2):
        if policy not in POLICIES or policy == AugMix.policy:
            raise ValueError(f"AutoAugment takes one of {[p for p in POLICIES if p != AugMix.policy]} "
                             f"(augmix is AugMix's), got {policy!r}")
        if not 0 <= level < BINS:
            raise ValueError(f"ra_magnitude must be in [0, {BINS - 1}], got {level}")
        self.policy, self.level = policy, level
        self.rounds = {"ta_wide": 1, "ra": num_ops}.get(policy, 2)

    def plans(self, seeds: Union[Sequence[int], torch.Tensor], height: int, width: int) -> List[Plan]:
        """The operations of samples with augmentation ``seeds`` (Python ints of any size, or an int64
        tensor of them modulo 2**64, as the samplers hold them), one plan a round."""
        policy = _POLICY_ARRAYS.get(self.policy)
        u = seed_uniforms(seeds, 3 * self.rounds + (policy is not None))  # AutoAugment also draws its sub-policy
        table = magnitude_table(self.policy, height, width)
        if policy is not None:
            policy_op, policy_p, policy_bin = policy
            chosen = np.minimum((u[:, -1] * len(policy_op)).astype(np.int64), len(policy_op) - 1)
        out = []
        for r in range(self.rounds):
            if policy is not None:  # the sub-policy's r-th operation, with its probability
                ops = np.where(u[:, 3 * r] < policy_p[chosen, r], policy_op[chosen, r], 0)
                level = policy_bin[chosen, r]
            else:
                ops = np.minimum((u[:, 3 * r] * CHOSEN).astype(np.int64), CHOSEN - 1)
                level = (np.minimum((u[:, 3 * r + 1] * BINS).astype(np.int64), BINS - 1) if self.policy == "ta_wide"
                         else np.full_like(ops, self.level))
            values = table[ops, level]
            values = np.where(_SIGNED_OP[ops] & (u[:, 3 * r + 2] < 0.5), -values, values)
            out.append(Plan(torch.from_numpy(ops), torch.from_numpy(values)))
        return out


class ColorJitter(_Rounds):
    """Colour jitter as torchvision's ``ColorJitter(brightness=s, contrast=s, saturation=s, hue=hue)``
    (timm's ``--color-jitter s``, 0.4 in its recipes where no auto-augment policy is set): each sample's
    brightness, contrast and saturation scaled by factors uniform in [max(0, 1 - s), 1 + s] and its
    hue turned by a uniform share of the circle in [-hue, hue], in an order of its own (torchvision
    draws one a call), each as torchvision's ``adjust_*`` computes it on uint8 images. The draws come
    from the sample's augmentation seed, as :class:`AutoAugment`'s; an operation of range 0 is left out."""

    policy = "color_jitter"

    def __init__(self, strength: float, hue: float = 0.0):
        if not 0 <= strength <= MAX_JITTER:
            raise ValueError(f"color_jitter must be in [0, {MAX_JITTER:g}], got {strength}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"color_jitter_hue must be in [0, 0.5] (a share of the hue circle), got {hue}")
        self.strength, self.hue = strength, hue
        kinds = [op for op in JITTER_OPS if (hue if op == "Hue" else strength) > 0]
        self.ops = np.array([OPS.index(op) for op in kinds])
        # Each operation's signed magnitude (a factor less 1; Hue's turn) lies in [low, high).
        self.low = np.array([-hue if op == "Hue" else max(0.0, 1 - strength) - 1 for op in kinds])
        self.high = np.array([hue if op == "Hue" else strength for op in kinds])

    def plans(self, seeds: Union[Sequence[int], torch.Tensor], height: int, width: int) -> List[Plan]:
        """The operations of samples with augmentation ``seeds`` (as :meth:`AutoAugment.plans`), one plan a
        round: round r holds each sample's r-th operation of its order."""
        k = len(self.ops)
        u = seed_uniforms(seeds, 2 * k)
        order = np.argsort(u[:, :k], axis=1, kind="stable")  # a uniform permutation of the operations
        values = self.low + u[:, k:] * (self.high - self.low)
        rows = np.arange(len(u))
        return [Plan(torch.from_numpy(self.ops[order[:, r]]), torch.from_numpy(values[rows, order[:, r]]))
                for r in range(k)]


class MixPlan(NamedTuple):
    """AugMix's draws for a batch (CPU tensors): ``ops[i, c, d]`` (indexes :data:`OPS`) and ``values[i, c, d]``
    are the ``d``-th operation of sample ``i``'s chain ``c`` (Identity past the chain's depth); ``weights[i]``
    (float32) that of the image itself, then those of its chains: together 1."""
    ops: torch.Tensor
    values: torch.Tensor
    weights: torch.Tensor


class AugMix(_Augment):
    """AugMix (Hendrycks et al. 2020) as torchvision's ``AugMix()`` (``--auto-augment augmix`` of its
    references): an image becomes ``m * image + sum_c w_c * chain_c(image)``, ``m ~ Beta(1, 1)`` and the
    ``w_c`` a Dirichlet(1, 1, 1) share of ``1 - m``, over :data:`MIX_WIDTH` chains of 1 to :data:`MIX_DEPTH`
    operations (uniform among :data:`AUGMIX_OPS`, a uniform bin below ``severity``, a random sign). The
    sum is taken in float32 and truncated to uint8, as torchvision's. The draws come from each sample's
    augmentation seed, as :class:`AutoAugment`'s (AugMix without its JSD loss, which
    needs three views of each image)."""

    policy = "augmix"

    def __init__(self, severity: int = 3):
        if not 1 <= severity <= MIX_BINS:
            raise ValueError(f"augmix_severity must be in [1, {MIX_BINS}], got {severity}")
        self.severity = severity

    def plans(self, seeds: Union[Sequence[int], torch.Tensor], height: int, width: int) -> List[MixPlan]:
        """The draws of samples with augmentation ``seeds`` (as :meth:`AutoAugment.plans`), in a list of one."""
        steps = MIX_WIDTH * MIX_DEPTH
        u = seed_uniforms(seeds, 2 + MIX_WIDTH + MIX_WIDTH + 3 * steps)
        n = u.shape[0]
        # Dirichlet(1, ..., 1): exponential draws, each over their sum; Beta(1, 1) is the first of two.
        e = -np.log1p(-u[:, :2 + MIX_WIDTH])
        keep = e[:, 0] / (e[:, 0] + e[:, 1])
        chains = e[:, 2:] / e[:, 2:].sum(axis=1, keepdims=True)
        weights = np.concatenate([keep[:, None], chains * (1 - keep)[:, None]], axis=1).astype(np.float32)
        depth = 1 + np.minimum((u[:, 2 + MIX_WIDTH:2 + 2 * MIX_WIDTH] * MIX_DEPTH).astype(np.int64), MIX_DEPTH - 1)
        draws = u[:, 2 + 2 * MIX_WIDTH:].reshape(n, MIX_WIDTH, MIX_DEPTH, 3)
        which = np.minimum((draws[..., 0] * len(AUGMIX_OPS)).astype(np.int64), len(AUGMIX_OPS) - 1)
        level = np.minimum((draws[..., 1] * self.severity).astype(np.int64), self.severity - 1)
        ops = _AUGMIX_OP_INDEX[which]
        values = magnitude_table(self.policy, height, width)[ops, level]
        values = np.where(_SIGNED_OP[ops] & (draws[..., 2] < 0.5), -values, values)
        within = np.arange(MIX_DEPTH)[None, None, :] < depth[:, :, None]
        ops = np.where(within, ops, 0)
        values = np.where(within, values, 0.0)
        return [MixPlan(torch.from_numpy(ops), torch.from_numpy(values), torch.from_numpy(weights))]

    def apply_plans(self, images: torch.Tensor, plans: List[MixPlan], rows: slice = slice(None)) -> torch.Tensor:
        """``images``, the samples ``rows`` of those ``plans`` were drawn for, mixed with their chains."""
        (plan,) = plans
        ops, values = plan.ops[rows], plan.values[rows]
        weights = to_device_nowait(plan.weights[rows], images.device).view(-1, 1 + MIX_WIDTH, 1, 1, 1)
        mix = weights[:, 0] * images.float()
        for c in range(MIX_WIDTH):
            chain = images
            for d in range(MIX_DEPTH):
                chain = apply(chain, Plan(ops[:, c, d], values[:, c, d]))
            mix.add_(weights[:, 1 + c] * chain.float())
        return _cast(mix, images.dtype)


# What the loaders hold: any kind, with plans(seeds, h, w), apply_plans(images, plans, rows) and a call.
Augment = Union[AutoAugment, AugMix, ColorJitter]


def make_augment(policy: str, ra_magnitude: int = 9, augmix_severity: int = 3, color_jitter: float = 0.0,
                 color_jitter_hue: float = 0.0) -> Augment:
    """The per-sample augmentation of ``--auto_augment policy``, or without one (``policy`` "") of
    ``--color_jitter`` / ``--color_jitter_hue``; never both (timm turns colour jitter off under a policy)."""
    if not policy:
        if not color_jitter and not color_jitter_hue:
            raise ValueError("no augmentation: auto_augment is '' and color_jitter and color_jitter_hue are 0")
        return ColorJitter(color_jitter, color_jitter_hue)
    if policy not in POLICIES:
        raise ValueError(f"auto_augment must be one of {list(POLICIES)}, got {policy!r}")
    if color_jitter or color_jitter_hue:
        raise ValueError(f"color jitter with auto_augment {policy}: choose one (timm turns colour jitter off under "
                         f"an auto-augment policy)")
    return AugMix(augmix_severity) if policy == "augmix" else AutoAugment(policy, ra_magnitude)


def seed_uniforms(seeds: Union[Sequence[int], torch.Tensor], k: int) -> np.ndarray:
    """``k`` uniform numbers in [0, 1) per seed, as an (n, k) float64 array: SplitMix64 (Steele et al.
    2014) of the seed modulo 2**64 mixed with ``_SALT``, one output per column. Counter-based and
    vectorised: 50,000 CIFAR-10 samples take milliseconds, one image tens of microseconds."""
    if isinstance(seeds, torch.Tensor):
        s = seeds.to(torch.int64).cpu().numpy().view(np.uint64)
    else:
        s = np.array([int(x) % 2**64 for x in seeds], dtype=np.uint64)
    out = np.empty((len(s), k))
    for j in range(k):
        z = (s ^ np.uint64(_SALT)) + np.uint64((j + 1) * 0x9E3779B97F4A7C15 % 2**64)  # wraps, as uint64 does
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[:, j] = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    return out


def apply(images: torch.Tensor, plan: Plan) -> torch.Tensor:
    """``images`` with each sample's operation of ``plan`` applied; the dtype is kept."""
    ops = plan.ops.tolist()
    if len(set(ops)) == 1:  # one operation for all (a single image: the CPU pipeline's workers)
        return images if OPS[ops[0]] == "Identity" else run_op(OPS[ops[0]], images,
                                                                to_device_nowait(plan.values, images.device))
    out = images.clone()
    for k in sorted(set(ops)):
        name = OPS[k]
        if name == "Identity":
            continue
        rows = [i for i, op in enumerate(ops) if op == k]
        index = to_device_nowait(torch.tensor(rows), images.device)
        values = to_device_nowait(plan.values[rows], images.device)
        part = images.index_select(0, index)
        out.index_copy_(0, index, run_op(name, part, values))
    return out


def run_op(name: str, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Operation ``name`` on each image with its own signed magnitude ``values[i]``; dtype kept (uint8
    results of the bilinear geometry rounded, as torchvision's)."""
    integer = not images.is_floating_point()
    if integer and name in _INTEGER_OPS:
        return _integer_op(name, images, values)
    x = images.float()
    v = values.double().view(-1, 1, 1, 1)
    # A blend's two weights are rounded to float32 apart, each from its double (as torchvision's
    # scalar factors are): 1 - f computed in float32 would move uint8 results by one now and then.
    factor = 1 + v
    factor, rest = factor.float(), (1 - factor).float()
    v = v.float()
    if name in _GEOMETRIC:
        y = _geometric(name, x, values.float())
        if integer:
            y = y.round_()
    elif name == "Brightness":
        y = x * factor
    elif name == "Color":
        y = _blend(x, _gray(x, integer), factor, rest)
    elif name == "Contrast":
        # On the CPU the mean laid out in full: addcmul broadcasting it and the factor alike takes twice as long.
        mean = _gray(x, integer).mean(dim=(-3, -2, -1), keepdim=True)
        y = _blend(x, mean.expand_as(x).contiguous() if x.device.type == "cpu" else mean, factor, rest)
    elif name == "Sharpness":
        y = _sharpness(x, rest, integer)
    elif name == "Posterize":
        step = torch.exp2(8 - v)
        y = torch.floor(torch.floor(x) / step) * step
    elif name == "Solarize":
        y = torch.where(x >= 255 * v, 255 - x, x)
    elif name == "AutoContrast":
        low, high = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
        flat = high == low
        y = torch.where(flat, x, (x - low) / torch.where(flat, 1.0, (high - low) * (1.0 / 255)))
    elif name == "Equalize":
        y = _equalize(x)
    elif name == "Invert":
        y = 255 - x
    elif name == "Hue":  # on [0, 1] and back as torchvision's: x (1 / 255) there, 255.999 y truncated to uint8
        y = _hue(x * (1.0 / 255), v) * (255.999 if integer else 255.0)
    else:
        raise ValueError(f"unknown operation {name!r}")
    y = y.clamp_(0, 255)
    return _cast(y, images.dtype)  # to uint8: truncated, as torchvision's blends


def _cast(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float ``y`` (in [0, 255]) as ``dtype``; to uint8 on the CPU truncated through int16, the same values
    as float to uint8 at once and four times as fast there (a 224x224 image: 21 against 93 us)."""
    if dtype == torch.uint8 and y.device.type == "cpu":
        return y.to(torch.int16).to(dtype)
    return y.to(dtype)


# Operations whose uint8 results need no float arithmetic: run on the integers, without a float copy
# of the image (torchvision's are integer too); the same values as the float path, truncated (tested).
_INTEGER_OPS = ("Posterize", "Solarize", "Invert", "Equalize", "AutoContrast")


def _integer_op(name: str, images: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """:data:`_INTEGER_OPS` on uint8 ``images``, each with its magnitude ``values[i]``."""
    if name == "Invert":
        return images.bitwise_not()  # 255 - x
    if name == "Equalize":
        return _equalize(images)
    if name == "AutoContrast":
        return _autocontrast_lut(images)
    v = values.float().view(-1, 1, 1, 1)
    if name == "Posterize":  # keep the top v bits (whole numbers, 0 to 8): a mask, not a floor
        mask = (255 << (8 - v.long())) & 255
        return images & mask.to(torch.uint8)
    # Solarize: x >= 255 v (in float32, as the float path) holds for a whole x from ceil(255 v) on; there
    # x XOR 255 = 255 - x (an XOR by a 0/255 mask is faster here than torch.where).
    return images ^ (images >= torch.ceil(255 * v).long()).to(torch.uint8).mul_(255)


def _autocontrast_lut(images: torch.Tensor) -> torch.Tensor:
    """AutoContrast of uint8 ``images`` through a table of 256 levels per channel, computed by the float
    path's own float32 formula (so the same bytes come out), then looked up: no float copy of the image."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, h * w)
    low, high = flat.amin(1, keepdim=True).float(), flat.amax(1, keepdim=True).float()
    levels = torch.arange(256, dtype=torch.float32, device=images.device).expand(n * c, 256)
    flat_channel = high == low
    spread = torch.where(flat_channel, 1.0, (high - low) * (1.0 / 255))
    table = torch.where(flat_channel, levels, (levels - low) / spread)
    return table.clamp_(0, 255).to(torch.uint8).gather(1, flat.long()).reshape(n, c, h, w)


def _gray(x: torch.Tensor, integer: bool) -> torch.Tensor:
    """Luma as torchvision's grayscale computes it, ``r * 0.2989`` with the other two added at their
    weights (``add_(alpha=)``): the same float32 values (three products added apart differed in their
    last bit now and then, and once floored a level), in half the time."""
    g = x[:, 0:1].mul(0.2989).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:3], alpha=0.114)
    return g.floor_() if integer else g


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """``factor`` of ``x`` and ``rest`` (1 - factor) of ``other``."""
    return _fma(x * factor, other, rest)


def _fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``a + b * c`` rounded once, as a fused multiply-add: what torchvision's ``add_(alpha=)`` blends
    compute (a separate multiply and add round twice and move a uint8 result by one now and then)."""
    return torch.addcmul(a, b, c)


def _sharpness(x: torch.Tensor, rest: torch.Tensor, integer: bool) -> torch.Tensor:
    """Blend with the image smoothed by a 3x3 kernel (1s around a 5, over 13), ``rest`` of the smoothed
    one; the border stays."""
    h, w = x.shape[-2:]
    if h <= 2 or w <= 2:
        return x
    kernel = torch.full((3, 3), 1.0 / 13, device=x.device)
    kernel[1, 1] = 5.0 / 13
    smooth = F.conv2d(x, kernel.expand(3, 1, 3, 3), groups=3)
    if integer:
        smooth = smooth.round()
    out = x.clone()
    inner = out[..., 1:-1, 1:-1]
    out[..., 1:-1, 1:-1] = _fma(inner, smooth - inner, rest)
    return out


def _hue(rgb: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """RGB images on [0, 1] with each one's hue turned by ``turn[i]`` of the circle: saturation and value
    (the largest channel) kept. The hue in sixths of the circle from the largest channel (red first,
    then green, as torchvision's), and back by the hexcone's closed form: channel c is its largest
    value less its spread times min(k, 4 - k, 1) clamped at 0, k = (c's offset + hue) mod 6."""
    r, g, b = rgb.unbind(1)
    high, low = rgb.amax(1), rgb.amin(1)
    spread = high - low
    flat = spread == 0
    safe = torch.where(flat, 1.0, spread)
    sixths = torch.where(high == r, (g - b) / safe, torch.where(high == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    sixths = (sixths * (1.0 / 6) + turn.view(-1, 1, 1)).remainder(1.0) * 6
    offsets = torch.arange(5.0, 0.0, -2.0, device=rgb.device).view(1, 3, 1, 1)  # 5, 3, 1: made there, no copy
    k = (offsets + sixths.unsqueeze(1)).remainder(6.0)
    return high.unsqueeze(1) - spread.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each channel of each image (PIL's ``ImageOps.equalize``): the levels
    spread by cumulative count; a channel of one level (or nearly) is left as it is."""
    n, c, h, w = x.shape
    levels = (x.round().clamp(0, 255) if x.is_floating_point() else x).long().reshape(n * c, h * w)
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, levels, torch.ones_like(levels))
    # The count of the highest level present is left out of the spread.
    top = 255 - (hist.flip(1) > 0).long().argmax(dim=1, keepdim=True)
    step = (h * w - hist.gather(1, top)) // 255
    below = hist.cumsum(1) - hist
    lut = ((below + step // 2) // step.clamp(min=1)).clamp(max=255)
    out = torch.where(step > 0, lut.gather(1, levels), levels)
    return out.reshape(n, c, h, w).to(x.dtype)


def _geometric(name: str, x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Shear, translate or rotate with bilinear sampling and black outside, each image by its own
    ``values[i]``. The matrix maps an output pixel centre to its source, in pixels from the image centre;
    shears are about the image's top-left corner (torchvision's ``center=[0, 0]``), translations are whole
    pixels (truncated), rotations (degrees, counter-clockwise) about the centre."""
    n, _, h, w = x.shape
    a00, a01, a10, a11 = (torch.ones_like(values), torch.zeros_like(values),
                          torch.zeros_like(values), torch.ones_like(values))
    b0, b1 = torch.zeros_like(values), torch.zeros_like(values)
    if name == "ShearX":  # the source of x is x + s (y - top), top the image's upper edge
        a01, b0 = values, values * h / 2
    elif name == "ShearY":
        a10, b1 = values, values * w / 2
    elif name == "TranslateX":
        b0 = -values.trunc()
    elif name == "TranslateY":
        b1 = -values.trunc()
    else:
        rad = values * (math.pi / 180)
        cos, sin = torch.cos(rad), torch.sin(rad)
        a00, a01, a10, a11 = cos, -sin, sin, cos
    # From pixels about the centre to affine_grid's [-1, 1] (align_corners False: x_px = x_n * w / 2).
    theta = torch.stack([torch.stack([a00, a01 * h / w, b0 * 2 / w], dim=1),
                         torch.stack([a10 * w / h, a11, b1 * 2 / h], dim=1)], dim=1)
    grid = _affine_grid(theta, h, w)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``F.affine_grid(theta, [n, c, h, w], align_corners=False)`` by broadcasting: each output's source
    is ``theta @ (x, y, 1)``, two multiply-adds a pixel instead of affine_grid's batched matrix product
    (a 224x224 rotation takes about a fifth less time: benchmarks/RESULTS.md)."""
    t = theta.unsqueeze(1).unsqueeze(1)  # (n, 1, 1, 2, 3)
    xs = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    xs, ys = xs.view(1, 1, w, 1), ys.view(1, h, 1, 1)
    return t[..., 0] * xs + t[..., 1] * ys + t[..., 2]

