"""TrivialAugment / RandAugment / AutoAugment's policies / AugMix
(``--auto_augment ta_wide|ra|imagenet|cifar10|svhn|augmix``) and colour jitter (``--color_jitter``,
``--color_jitter_hue``): each operation against torchvision's, the per-sample plans, and the three
pipelines that apply them."""
import collections
import math
import re

import numpy as np
import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from mobilenet_v1 import autoaugment
from mobilenet_v1 import transforms as T
from mobilenet_v1.autoaugment import (AUGMIX_OPS, AUTOAUGMENT_POLICIES, CHOSEN, JITTER_OPS, MIX_BINS, MIX_DEPTH,
                                      MIX_WIDTH, OPS, POLICIES, AugMix, AutoAugment, ColorJitter, MixPlan, Plan,
                                      apply, magnitudes, make_augment, run_op, seed_uniforms)
from mobilenet_v1.config import AUTO_AUGMENT_POLICIES, ConfigError, load_config
from mobilenet_v1 import train
from mobilenet_v1.data import (BatchedImageLoader, DataOptions, ImageFolderDataset, build_loader, find_images,
                               imagenet_folder, read_bytes)

CPU = torch.device("cpu")
POLICY_OPS = [name for name in OPS if name != "Hue"]  # the policies' operations (Hue is colour jitter's only)
NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def torchvision_op(name, img, m, interpolation=BILINEAR):
    """torchvision's operation as its TrivialAugmentWide / RandAugment / AutoAugment / AugMix call it (v2
    functional) in its recipes, which give them ``--interpolation`` (bilinear)."""
    if name == "Identity":
        return img
    if name in ("ShearX", "ShearY"):
        shear = [math.degrees(math.atan(m)), 0.0] if name == "ShearX" else [0.0, math.degrees(math.atan(m))]
        return TF.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear, interpolation=interpolation,
                         fill=None, center=[0, 0])
    if name in ("TranslateX", "TranslateY"):
        shift = [int(m), 0] if name == "TranslateX" else [0, int(m)]
        return TF.affine(img, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0], interpolation=interpolation,
                         fill=None)
    if name == "Rotate":
        return TF.rotate(img, angle=m, interpolation=interpolation, fill=None)
    return {"Brightness": lambda: TF.adjust_brightness(img, 1.0 + m),
            "Color": lambda: TF.adjust_saturation(img, 1.0 + m),
            "Contrast": lambda: TF.adjust_contrast(img, 1.0 + m),
            "Sharpness": lambda: TF.adjust_sharpness(img, 1.0 + m),
            "Posterize": lambda: TF.posterize(img, int(m)),
            "Solarize": lambda: TF.solarize(img, 255.0 * m),
            "AutoContrast": lambda: TF.autocontrast(img),
            "Equalize": lambda: TF.equalize(img),
            "Invert": lambda: TF.invert(img),
            "Hue": lambda: TF.adjust_hue(img, m)}[name]()


def sample_images():
    """Four non-square uint8 images: noise, a smooth picture, a low-contrast one and a flat one."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (3, 29, 41), generator=g, dtype=torch.uint8)
    yy, xx = torch.meshgrid(torch.arange(29.0), torch.arange(41.0), indexing="ij")
    smooth = torch.stack([127 + 100 * torch.sin(xx * f + yy * h) for f, h in ((0.2, 0.1), (0.05, 0.3), (0.1, 0.1))])
    low = (smooth * 0.2 + 90).round()
    flat = torch.full((3, 29, 41), 77.0)
    return torch.stack([noise, smooth.round().to(torch.uint8), low.to(torch.uint8), flat.to(torch.uint8)])


GEOMETRIC = {"ShearX": [0.37, -0.23, 0.61, -0.83], "ShearY": [0.37, -0.23, 0.61, -0.83],
             "TranslateX": [12.7, -5.3, 31.0, -0.4], "TranslateY": [7.9, -20.1, 3.0, 14.2],
             "Rotate": [31.7, -100.0, 7.3, 135.0]}


@pytest.mark.parametrize("policy", ["ta_wide", "ra", "imagenet", "cifar10", "svhn"])
def test_the_magnitude_tables_are_torchvisions(policy):
    """Value for value, float32 rounding included: an exact 16.0 px where torchvision holds 15.999999
    would translate a pixel further after int(), and solarize thresholds would fall apart."""
    from torchvision.transforms.v2 import AutoAugment as TvAutoAugment
    from torchvision.transforms.v2 import RandAugment, TrivialAugmentWide

    auto = policy in AUTOAUGMENT_POLICIES
    cls = TvAutoAugment if auto else {"ta_wide": TrivialAugmentWide, "ra": RandAugment}[policy]
    space, bins = cls._AUGMENTATION_SPACE, 10 if auto else 31
    assert set(space) == (set(POLICY_OPS) - {"Identity"} if auto else set(OPS[:CHOSEN]))
    for h, w in ((32, 32), (224, 224), (331, 331), (29, 41)):
        for op in space:
            theirs = space[op][0](bins, h, w)
            expected = [0.0] * bins if theirs is None else [float(v) for v in theirs]
            assert magnitudes(policy, op, h, w) == expected, (op, h, w)


@pytest.mark.parametrize("policy", sorted(AUTOAUGMENT_POLICIES))
def test_each_policy_is_torchvisions_and_takes_each_operation_with_its_probability(policy):
    from torchvision.transforms import AutoAugmentPolicy
    from torchvision.transforms.v2 import AutoAugment as TvAutoAugment

    table = AUTOAUGMENT_POLICIES[policy]
    theirs = TvAutoAugment(AutoAugmentPolicy(policy))._policies
    assert [tuple((n, p, b or 0) for n, p, b in sub) for sub in theirs] == [tuple(sub) for sub in table]
    seeds = torch.arange(40000)
    size = 32 if policy != "imagenet" else 224
    first, second = AutoAugment(policy).plans(seeds, size, size)
    for r, plan in enumerate((first, second)):
        for op in OPS:
            expected = sum(p for sub in table for name, p, _ in sub[r:r + 1] if name == op) / 25
            if op == "Identity":
                expected = 1 - sum(sub[r][1] for sub in table) / 25
            share = float((plan.ops == OPS.index(op)).float().mean())
            assert share == pytest.approx(expected, abs=0.012), (r, op)
        # Each operation at its sub-policies' bins only, signed at even odds where it has a sign.
        for op in ("Rotate", "TranslateY", "ShearX", "Solarize"):
            chosen = plan.values[plan.ops == OPS.index(op)]
            bins = {b for sub in table for name, _, b in sub[r:r + 1] if name == op}
            assert set(chosen.abs().tolist()) <= {magnitudes(policy, op, size, size)[b] for b in bins}, (r, op)
            if op != "Solarize" and len(chosen) > 400:
                assert float((chosen < 0).float().mean()) == pytest.approx(0.5, abs=0.08), (r, op)


@pytest.mark.parametrize("name", [name for name in POLICY_OPS if name not in GEOMETRIC])
def test_each_operation_is_torchvisions_image_by_image(name):
    """Each sample of the batch with its own magnitude, against torchvision on that image alone: the
    same uint8 values for every bin of both policies (the geometry: :func:`test_geometry_is_...`)."""
    images = sample_images()
    levels = [[b, 30 - b, (7 * b) % 31, (11 * b + 3) % 31] for b in range(0, 31, 3)]
    sign = [1, -1, 1, -1]
    signed = name in ("Brightness", "Color", "Contrast", "Sharpness")
    sets = [[magnitudes(policy, name, 29, 41)[b] * (s if signed else 1) for b, s in zip(bins, sign)]
            for policy in ("ta_wide", "ra") for bins in levels]
    for values in sets:
        ours = run_op(name, images, torch.tensor(values, dtype=torch.float64)) if name != "Identity" else images
        for i, m in enumerate(values):
            assert torch.equal(ours[i], torchvision_op(name, images[i], m)), (name, m, i)


def test_geometry_is_torchvisions_bilinear_within_one_level():
    """Shears, translations and rotations, at magnitudes of their own and at the policies', against
    torchvision's bilinear ones within one level (bilinear weights on two grids, affine_grid here and
    torchvision's own, differ in their last bits); nearest-neighbour sampling (the torchvision classes'
    default, not their recipes') would be another augmentation."""
    images = sample_images()
    for name in GEOMETRIC:
        sets = [GEOMETRIC[name]] + [[magnitudes(policy, name, 29, 41)[b] * s for b, s in ((30, 1), (9, -1), (17, 1),
                                                                                          (4, -1))]
                                    for policy in ("ta_wide", "ra")]
        for values in sets:
            ours = run_op(name, images, torch.tensor(values, dtype=torch.float64)).int()
            for i, m in enumerate(values):
                diff = (ours[i] - torchvision_op(name, images[i], m).int()).abs()
                assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.05, (name, m, i)
                if i < 2 and not name.startswith("Translate"):  # noise, smooth image (whole-pixel shifts alike)
                    nearest = torchvision_op(name, images[i], m, NEAREST).int()
                    assert float((ours[i] != nearest).float().mean()) > 0.2, (name, m, i)


def test_float_images_follow_the_uint8_arithmetic_without_its_truncation():
    """The GPU pipeline's crops are float in [0, 255]: the same operations, within the one level uint8
    truncates to (and half a level more where uint8 rounds an intermediate that a factor above 1
    then extrapolates: the sharpness blend)."""
    images = sample_images()
    for name in OPS[1:]:
        values = torch.tensor([GEOMETRIC[name][0]] * 4 if name in GEOMETRIC
                              else [0.3, -0.2, 0.45, -0.5] if name == "Hue"
                              else [magnitudes("ta_wide", name, 29, 41)[12]] * 4, dtype=torch.float64)
        as_uint8 = run_op(name, images, values).float()
        as_float = run_op(name, images.float(), values)
        assert as_float.dtype == torch.float32 and 0 <= float(as_float.min()) and float(as_float.max()) <= 255
        assert float((as_float - as_uint8).abs().max()) <= 1.5, name


def test_the_integer_operations_on_uint8_equal_the_float_path():
    """Posterize, Solarize, Invert, Equalize and AutoContrast run on uint8 images without a float copy:
    the same values as on the images in float, at every bin of every policy (AugMix's posterize down to
    0 bits), a channel of one level (AutoContrast leaves it) included."""
    images = sample_images()
    images[0, 1] = 77
    for name in autoaugment._INTEGER_OPS:
        values = sorted({m for policy in ("ta_wide", "ra", "imagenet", "augmix")
                         for m in magnitudes(policy, name, 29, 41)})
        for m in values:
            v = torch.full((4,), m, dtype=torch.float64)
            ours = run_op(name, images, v)
            assert ours.dtype == torch.uint8
            assert torch.equal(ours, run_op(name, images.float(), v).to(torch.uint8)), (name, m)
    assert len({m for m in magnitudes("augmix", "Posterize", 29, 41)} & {0.0, 4.0}) == 2


def test_plans_draw_each_operation_and_bin_evenly_from_the_seed_alone():
    seeds = torch.arange(20000, dtype=torch.int64) * 7919 + 12345
    ta = AutoAugment("ta_wide")
    (plan,) = ta.plans(seeds, 224, 224)
    again = AutoAugment("ta_wide").plans(seeds.flip(0), 224, 224)[0]
    assert torch.equal(plan.ops, again.ops.flip(0)) and torch.equal(plan.values, again.values.flip(0))
    counts = torch.bincount(plan.ops, minlength=len(OPS)).float()
    assert counts[CHOSEN:].sum() == 0  # AutoAugment's Invert is not among TrivialAugment's
    counts = counts[:CHOSEN]
    assert float(counts.min()) > 0.85 * 20000 / 14 and float(counts.max()) < 1.15 * 20000 / 14
    rotate = plan.values[plan.ops == OPS.index("Rotate")]
    assert float(rotate.abs().max()) == pytest.approx(135.0) and 0.4 < float((rotate < 0).float().mean()) < 0.6
    posterize = plan.values[plan.ops == OPS.index("Posterize")]
    assert set(posterize.tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}  # bits: never signed
    ra = AutoAugment("ra", level=9).plans(seeds, 224, 224)
    assert len(ra) == 2 and not torch.equal(ra[0].ops, ra[1].ops)
    shear = ra[0].values[ra[0].ops == OPS.index("ShearX")].abs()
    assert torch.allclose(shear, torch.full_like(shear, 0.3 * 9 / 30))
    assert set(ra[1].values[ra[1].ops == OPS.index("Posterize")].tolist()) == {7.0}
    translate = ra[0].values[ra[0].ops == OPS.index("TranslateX")].abs()
    assert torch.allclose(translate, torch.full_like(translate, 150 / 331 * 224 * 9 / 30))
    with pytest.raises(ValueError, match=r"ra_magnitude must be in \[0, 30\]"):
        AutoAugment("ra", level=31)
    assert AUTO_AUGMENT_POLICIES == POLICIES  # the configuration's list is the module's
    for policy in POLICIES:
        assert load_config([f"--auto_augment={policy}"]).auto_augment == policy
    with pytest.raises(ConfigError, match="auto_augment='rand-m9' is not one of"):
        load_config(["--auto_augment=rand-m9"])
    # timm's value under our option's name is told what --aa (timm's option's name) is told.
    with pytest.raises(ConfigError, match=r"option --auto_augment: auto_augment='rand-m9-mstd0.5' is not one of "
                                          r"\[[^]]*\]; timm's rand-mN is about ra with ra_magnitude 3N \(.*\)$"):
        load_config(["--auto_augment", "rand-m9-mstd0.5"])
    with pytest.raises(ConfigError, match=r"unknown key 'aa' \(timm's name: here it is auto_augment, where timm's "
                                          r"rand-mN is about ra with ra_magnitude 3N \(.*\)\)$"):
        load_config(["--aa", "rand-m9-mstd0.5"])
    with pytest.raises(ConfigError, match=r"is not one of \[[^]]*\]$"):  # no word of timm for another value
        load_config(["--auto_augment", "trivial"])
    with pytest.raises(ConfigError, match=r"option --ra_magnitude: ra_magnitude must be in \[0, 30\]"):
        load_config(["--auto_augment=ra", "--ra_magnitude=40"])


@pytest.mark.parametrize("policy", ["ta_wide", "ra"])
def test_each_operation_is_signed_where_torchvisions_is(policy):
    """torchvision's augmentation space marks which operations take a random sign (shears, translations,
    rotation and the four enhancements): those are negative for about half the samples, the others never."""
    from torchvision.transforms.v2 import RandAugment, TrivialAugmentWide

    space = {"ta_wide": TrivialAugmentWide, "ra": RandAugment}[policy]._AUGMENTATION_SPACE
    seeds = torch.arange(20000, dtype=torch.int64) * 7919 + 12345
    plan = AutoAugment(policy, level=9).plans(seeds, 224, 224)[0]
    for op, (_, signed) in space.items():
        values = plan.values[plan.ops == OPS.index(op)]
        assert len(values) > 1000, op
        negative = float((values < 0).float().mean())
        if signed:
            zero = float((values == 0).float().mean())  # ta_wide's bin 0: magnitude 0, no sign to see
            assert negative == pytest.approx((1 - zero) / 2, abs=0.05), op
        else:
            assert negative == 0, op


def test_apply_gives_each_sample_its_own_operation():
    images = sample_images().repeat(4, 1, 1, 1)  # 16
    ops = torch.tensor([OPS.index(n) for n in ("Identity", "Rotate", "Solarize", "Equalize")] * 4)
    values = torch.tensor([0.0, 40.0, 0.5, 0.0] * 4, dtype=torch.float64)
    out = apply(images, Plan(ops, values))
    for i in range(16):
        expected = run_op(OPS[int(ops[i])], images[i:i + 1], values[i:i + 1])[0] if ops[i] else images[i]
        assert torch.equal(out[i], expected), i


@pytest.mark.parametrize("policy", ["ta_wide", "cifar10", "augmix", "jitter"])
def test_cifar_pipeline_applies_each_samples_plan_and_a_resumed_epoch_keeps_them(cifar_dir, policy):
    """The CIFAR-10 loader (batched, on the device) augments after its crop and flip: undoing the
    normalisation of the plain loader's batch and applying the samples' plans gives its batch."""
    jitter = dict(color_jitter=0.5, color_jitter_hue=0.2) if policy == "jitter" else {}

    def loader(options):
        opts = DataOptions("cifar10", str(cifar_dir), 16, 32, seed=3, num_workers=0, channels_last=False, **options)
        return build_loader(opts, train=True, device=CPU)

    plain, augmented = loader({}), loader(jitter or dict(auto_augment=policy))
    for lo in (plain, augmented):
        lo.set_epoch(2)
    seeds = augmented.sampler.seeds()
    augment = make_augment("", **jitter) if jitter else make_augment(policy)
    plans = augment.plans(seeds, 32, 32)
    mean = torch.tensor(T.CIFAR_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(T.CIFAR_STD).view(1, 3, 1, 1) * 255
    batches = list(augmented)
    for b, ((x, y), (xa, ya)) in enumerate(zip(plain, batches)):
        raw = (x * std + mean).round().to(torch.uint8)
        part = slice(16 * b, 16 * (b + 1))
        raw = augment.apply_plans(raw, plans, part)
        expected = (raw.float() - mean) / std
        assert torch.equal(y, ya) and torch.allclose(xa, expected, atol=1e-4), b
    assert not torch.allclose(batches[0][0], next(iter(plain))[0])
    augmented.set_epoch(2, 3)  # a resumed epoch: from its fourth batch on, the same images
    for (x, _), (x_full, _) in zip(augmented, batches[3:]):
        assert torch.equal(x, x_full)


@pytest.mark.parametrize("policy", ["ra", "augmix", "jitter"])
def test_folder_pipelines_apply_the_plan_of_each_samples_seed(image_folder, policy):
    """Both folder pipelines (CPU workers; batched, here on the CPU) augment a sample by the plan of
    its seed, after its crop and flip."""
    samples, _ = find_images(imagenet_folder(str(image_folder), train=True))
    aa = {"ra": AutoAugment("ra", level=12), "augmix": AugMix(severity=5), "jitter": ColorJitter(0.6, 0.25)}[policy]
    plain, augmented = ImageFolderDataset(samples, True, 40), ImageFolderDataset(samples, True, 40, auto_augment=aa)
    seed = 2**70 + 5  # a sample seed past 64 bits (large run seeds), as the sampler makes them
    for index in range(4):
        img = augmented[(index, seed + index)][0]
        assert torch.equal(img, aa(plain[(index, seed + index)][0][None], [seed + index])[0])
    root = imagenet_folder(str(image_folder), train=True)
    kw = dict(batch_size=4, train=True, image_size=40, device=CPU, seed=1, num_workers=0)
    batched_plain, batched = BatchedImageLoader(root, **kw), BatchedImageLoader(root, **kw, auto_augment=aa)
    images = [T.decode_rgb(read_bytes(path), path) for path, _ in samples[:4]]
    seeds = [seed + i for i in range(4)]
    assert torch.equal(batched.transform(images, seeds),
                       aa(batched_plain.transform(images, seeds), seeds))
    assert not torch.equal(batched.transform(images, seeds), batched_plain.transform(images, seeds))


def test_a_seed_draws_alike_as_a_python_int_and_as_the_samplers_int64():
    """The folder pipelines hand over Python ints (past 64 bits for large run seeds), the CIFAR-10
    sampler int64 tensors of them modulo 2**64 (ShardSampler.seeds): the same draws either way."""
    seeds = [0, 5, 2**63 - 1, 2**63, 2**64 + 3, 3 * 2**70 + 11]
    wrapped = torch.tensor([int(np.array(s % 2**64, dtype=np.uint64).view(np.int64)) for s in seeds])
    assert np.array_equal(seed_uniforms(seeds, 6), seed_uniforms(wrapped, 6))
    u = seed_uniforms(list(range(100000)), 3)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.02  # the columns are independent


# --- AugMix -------------------------------------------------------------------------------------------


def test_augmix_magnitude_table_is_torchvisions():
    from torchvision.transforms.v2 import AugMix as TvAugMix

    space = TvAugMix._AUGMENTATION_SPACE
    assert tuple(space) == AUGMIX_OPS  # the same operations in the same order (all_ops)
    assert TvAugMix().severity == AugMix().severity == 3 and TvAugMix()._PARAMETER_MAX == MIX_BINS
    for h, w in ((32, 32), (224, 224), (29, 41)):
        for op, (fn, _) in space.items():
            theirs = fn(MIX_BINS, h, w)
            expected = [0.0] * MIX_BINS if theirs is None else [float(v) for v in theirs]
            assert magnitudes("augmix", op, h, w) == expected, (op, h, w)


def hand_plan(chains, weights):
    """A MixPlan of one sample: ``chains`` lists (operation, signed magnitude) steps per chain."""
    ops = torch.zeros(1, MIX_WIDTH, MIX_DEPTH, dtype=torch.int64)
    values = torch.zeros(1, MIX_WIDTH, MIX_DEPTH, dtype=torch.float64)
    for c, chain in enumerate(chains):
        for d, (name, m) in enumerate(chain):
            ops[0, c, d], values[0, c, d] = OPS.index(name), m
    return MixPlan(ops, values, torch.tensor([weights], dtype=torch.float32))


def torchvision_mix(img, chains, weights, interpolation=InterpolationMode.BILINEAR):
    """torchvision's AugMix.forward with the draws given: the image's weight times the image, plus each
    chain's weight times the chain, in float32, truncated to uint8."""
    w = torch.tensor(weights, dtype=torch.float32)
    mix = w[0] * img
    for c, chain in enumerate(chains):
        aug = img
        for name, m in chain:
            aug = torchvision_op(name, aug, m, interpolation)
        mix.add_(w[1 + c] * aug)
    return mix.to(img.dtype)


def test_augmix_mixes_each_image_with_its_chains_as_torchvision_does():
    """Given the same draws, the same uint8 image as torchvision's AugMix: exactly without geometry,
    within one level with it (bilinear sampling on two grids: affine_grid here, torchvision's own)."""
    images = sample_images()
    cases = [
        ([[("Posterize", 3.0), ("Solarize", 0.8)], [("Equalize", 0.0)], [("Color", -0.5), ("Contrast", 0.7),
                                                                           ("Sharpness", 0.3)]],
         [0.31, 0.2, 0.09, 0.4]),
        ([[("AutoContrast", 0.0), ("Brightness", 0.6)], [("Solarize", 0.9)], [("Posterize", 4.0)]],
         [0.7, 0.1, 0.15, 0.05]),
    ]
    for chains, weights in cases:
        plan = hand_plan(chains, weights)
        for i in range(len(images)):
            ours = AugMix().apply_plans(images[i:i + 1], [plan])[0]
            assert torch.equal(ours, torchvision_mix(images[i], chains, weights)), (chains, i)
    # (Geometry only: a level apart before Equalize, say, can move a whole histogram bin.)
    chains = [[("Rotate", 17.3), ("ShearX", -0.2)], [("TranslateY", 6.7)], [("ShearY", 0.25), ("TranslateX", -3.2)]]
    weights = [0.25, 0.3, 0.2, 0.25]
    for i in range(len(images)):
        ours = AugMix().apply_plans(images[i:i + 1], [hand_plan(chains, weights)])[0].int()
        theirs = torchvision_mix(images[i], chains, weights).int()
        assert int((ours - theirs).abs().max()) <= 1 and float((ours != theirs).float().mean()) < 0.05, i
        # Nearest-neighbour geometry would be another augmentation: bilinear it is.
        nearest = torchvision_mix(images[i], chains, weights, NEAREST).int()
        if i < 2:  # the noise and the smooth image; a flat image looks alike either way
            assert float((ours != nearest).float().mean()) > 0.2, i


def test_augmix_plans_draw_chains_operations_and_weights_from_the_seed_alone():
    seeds = torch.arange(20000, dtype=torch.int64) * 7919 + 12345
    (plan,) = AugMix(severity=4).plans(seeds, 224, 224)
    (again,) = AugMix(severity=4).plans(seeds.flip(0), 224, 224)
    assert torch.equal(plan.ops, again.ops.flip(0)) and torch.equal(plan.weights, again.weights.flip(0))
    assert plan.ops.shape == plan.values.shape == (20000, MIX_WIDTH, MIX_DEPTH) and plan.weights.shape == (20000, 4)
    # Chains of 1 to 3 operations at even odds, Identity past their depth, never inside it.
    depth = (plan.ops != 0).sum(dim=2)
    for d in (1, 2, 3):
        assert float((depth == d).float().mean()) == pytest.approx(1 / 3, abs=0.015), d
    assert bool(((plan.ops != 0).int().diff(dim=2) <= 0).all())
    used = plan.ops[plan.ops != 0]
    counts = torch.bincount(used, minlength=len(OPS))
    assert {OPS[k] for k in torch.nonzero(counts).flatten().tolist()} == set(AUGMIX_OPS)
    share = counts[counts > 0].float() / len(used)
    assert float(share.min()) > 0.9 / 13 and float(share.max()) < 1.1 / 13
    # Bins below the severity: rotations of 0, 3.33, 6.67 and 10 degrees, signed at even odds.
    rotate = plan.values[plan.ops == OPS.index("Rotate")]
    assert sorted({round(v, 4) for v in rotate.abs().tolist()}) == [0.0, 3.3333, 6.6667, 10.0]
    assert float((rotate < 0).float().mean()) == pytest.approx(0.375, abs=0.03)  # bin 0 has no sign
    assert set(plan.values[plan.ops == OPS.index("Posterize")].tolist()) == {4.0, 3.0}
    # The image's weight ~ Beta(1, 1); the chains share the rest at even odds (Dirichlet(1, 1, 1)).
    w = plan.weights.double()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(20000, dtype=torch.float64), atol=1e-6, rtol=0)
    assert float(w[:, 0].mean()) == pytest.approx(0.5, abs=0.01) and float(w[:, 0].std()) == pytest.approx(
        (1 / 12) ** 0.5, abs=0.01)
    for c in (1, 2, 3):
        assert float(w[:, c].mean()) == pytest.approx(1 / 6, abs=0.01), c
    with pytest.raises(ValueError, match=r"augmix_severity must be in \[1, 10\]"):
        AugMix(severity=11)


def test_augmix_options_are_checked_and_float_images_keep_their_dtype():
    assert load_config(["--auto_augment=augmix", "--augmix_severity=6"]).augmix_severity == 6
    with pytest.raises(ConfigError, match="option --augmix_severity: augmix_severity 6 is AugMix's; auto_augment "
                                          "ta_wide does not use it"):
        load_config(["--auto_augment=ta_wide", "--augmix_severity=6"])
    with pytest.raises(ConfigError, match=r"augmix_severity must be in \[1, 10\]"):
        load_config(["--auto_augment=augmix", "--augmix_severity=0"])
    # The GPU pipeline's float crops (float16 on CUDA): mixed in float32, no truncation, in [0, 255].
    images = sample_images()
    as_uint8 = AugMix()(images, [1, 2, 3, 4])
    for dtype in (torch.float32, torch.float16):
        as_float = AugMix()(images.to(dtype), [1, 2, 3, 4])
        assert as_float.dtype == dtype and 0 <= float(as_float.min()) and float(as_float.max()) <= 255
        assert float((as_float.float() - as_uint8.float()).abs().max()) <= 2.5, dtype


def test_augmix_is_torchvisions_v2_augmix_given_the_same_draws(monkeypatch):
    """torchvision's own v2.AugMix.forward, its draws (torch.randint, torch.rand, the Dirichlet samples)
    scripted to be a sample's plan here: the same uint8 image, for each sample whose chains hold no
    geometric operation (bilinear grids differ in their last bits; test_geometry_is_... covers them).
    This follows torchvision if its forward changes, where torchvision_mix above is a copy of it."""
    from torchvision.transforms.v2 import AugMix as TvAugMix

    images = sample_images()
    ours = AugMix(severity=5)
    (plan,) = ours.plans(list(range(600)), 29, 41)
    geometric = torch.tensor([OPS.index(op) for op in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")])
    chosen = [i for i in range(600) if not torch.isin(plan.ops[i], geometric).any()][:12]
    assert len(chosen) == 12
    real_randint, real_rand = torch.randint, torch.rand
    for n, i in enumerate(chosen):
        img = images[n % len(images)]
        # torchvision's weights, in its float32 arithmetic; ours are then given the same.
        m = torch.tensor([[float(plan.weights[i, 0]), 1 - float(plan.weights[i, 0])]])
        d = plan.weights[i, 1:].double() / plan.weights[i, 1:].double().sum()
        dirichlets = iter([m, d.float()[None]])
        script = []  # what each torch.randint / torch.rand call of its forward returns, in order
        for c in range(MIX_DEPTH):
            ops = [int(k) for k in plan.ops[i, c] if k != 0]
            script.append(("randint", torch.tensor([len(ops)])))
            for step, k in enumerate(ops):
                name, value = OPS[k], float(plan.values[i, c, step])
                script.append(("randint", torch.tensor(AUGMIX_OPS.index(name))))
                if name not in ("AutoContrast", "Equalize"):
                    table = magnitudes("augmix", name, 29, 41)
                    script.append(("randint", torch.tensor(table.index(abs(value)))))
                    if name in ("Brightness", "Color", "Contrast", "Sharpness"):
                        script.append(("rand", torch.tensor(0.0 if value < 0 else 1.0)))
        calls = iter(script)

        def scripted(kind):
            def draw(*args, **kwargs):
                got, value = next(calls)
                assert got == kind, (got, kind)
                return value
            return draw

        class Scripted(TvAugMix):
            def _sample_dirichlet(self, params):
                return next(dirichlets)

        tv = Scripted(severity=5)
        monkeypatch.setattr(torch, "randint", scripted("randint"))
        monkeypatch.setattr(torch, "rand", scripted("rand"))
        try:
            theirs = tv(img)
        finally:
            monkeypatch.setattr(torch, "randint", real_randint)
            monkeypatch.setattr(torch, "rand", real_rand)
        assert next(calls, None) is None  # every scripted draw was taken
        weights = torch.cat([m[:, 0], d.float() * m[0, 1]])
        mine = MixPlan(plan.ops[i:i + 1], plan.values[i:i + 1], weights[None])
        assert torch.equal(ours.apply_plans(img[None], [mine])[0], theirs), (i, plan.ops[i].tolist())


ADJUST = {"Brightness": TF.adjust_brightness, "Contrast": TF.adjust_contrast, "Color": TF.adjust_saturation}


@pytest.mark.parametrize("strength, hue", [(0.4, 0.0), (1.5, 0.0), (0.8, 0.3)])
def test_color_jitter_is_torchvisions_adjustments_in_each_samples_order(strength, hue):
    """Each sample's brightness, contrast and saturation as torchvision's ColorJitter computes them
    (``adjust_*``), in the order and with the factors drawn from its seed: the same uint8 values.
    With hue, whose RGB-HSV round trip is computed otherwise here, within a level and rarely."""
    images = sample_images().repeat(6, 1, 1, 1)
    jitter = ColorJitter(strength, hue)
    plans = jitter.plans(list(range(100, 124)), 29, 41)
    ours = jitter.apply_plans(images, plans)
    assert len(plans) == (4 if hue else 3) and ours.dtype == torch.uint8
    for i in range(24):
        expected = images[i]
        for plan in plans:
            name, v = OPS[int(plan.ops[i])], float(plan.values[i])
            expected = TF.adjust_hue(expected, v) if name == "Hue" else ADJUST[name](expected, 1.0 + v)
        if not hue:
            assert torch.equal(ours[i], expected), i
        else:
            diff = (ours[i].int() - expected.int()).abs()
            assert int(diff.max()) <= 1 and float((diff > 0).float().mean()) < 0.01, i
    assert not torch.equal(ours, images)
    # The GPU pipeline's float crops (float16 on CUDA): the same operations without uint8's truncation
    # after each (a level at most, which the factors after it may enlarge), in [0, 255].
    for dtype in (torch.float32, torch.float16):
        as_float = jitter.apply_plans(images.to(dtype), plans)
        assert as_float.dtype == dtype and 0 <= float(as_float.min()) and float(as_float.max()) <= 255
        diff = (as_float.float() - ours.float()).abs()
        assert float(diff.mean()) < 0.6 * len(plans), dtype
        assert float(diff.max()) <= 4 * (1 + strength), (dtype, float(diff.max()))


def test_color_jitter_draws_its_order_and_factors_evenly_from_the_seed_alone():
    seeds = torch.arange(24000, dtype=torch.int64) * 7919 + 12345
    plans = ColorJitter(0.4, 0.1).plans(seeds, 224, 224)
    again = ColorJitter(0.4, 0.1).plans(seeds.flip(0), 32, 32)  # the size plays no part
    assert all(torch.equal(p.ops, q.ops.flip(0)) and torch.equal(p.values, q.values.flip(0))
               for p, q in zip(plans, again))
    ops = torch.stack([p.ops for p in plans], dim=1)
    values = torch.stack([p.values for p in plans], dim=1)
    # Each sample takes each operation once, in one of the 24 orders at even odds.
    each_once = torch.tensor(sorted(OPS.index(op) for op in JITTER_OPS)).expand(24000, 4)
    assert torch.equal(ops.sort(dim=1).values, each_once)
    orders = collections.Counter(map(tuple, ops.tolist()))
    assert len(orders) == 24 and 0.85 * 1000 < min(orders.values()) and max(orders.values()) < 1.15 * 1000
    for name, top in (("Brightness", 0.4), ("Contrast", 0.4), ("Color", 0.4), ("Hue", 0.1)):
        v = values[ops == OPS.index(name)]
        assert len(v) == 24000 and -top <= float(v.min()) and float(v.max()) < top, name
        for q in (0.1, 0.5, 0.9):  # uniform over [-top, top)
            assert float((v < top * (2 * q - 1)).double().mean()) == pytest.approx(q, abs=0.012), (name, q)
    # Factors never below 0 (torchvision's max(0, 1 - s)); an operation of range 0 is left out.
    (strong, *_), (hue_only,) = ColorJitter(1.5).plans(seeds, 8, 8), ColorJitter(0.0, 0.2).plans(seeds, 8, 8)
    assert float(strong.values.min()) >= -1.0 and float(strong.values.max()) < 1.5 and len(ColorJitter(1.5).ops) == 3
    for q in (0.1, 0.5, 0.9):  # uniform over [0, 2.5): drawn there, not clamped at 0 from [-0.5, 2.5)
        assert float((strong.values + 1 < 2.5 * q).double().mean()) == pytest.approx(q, abs=0.012), q
    assert set(hue_only.ops.tolist()) == {OPS.index("Hue")}
    for bad, message in (((-0.1,), r"color_jitter must be in \[0, 10\]"),
                         ((0.4, 0.6), r"color_jitter_hue must be in \[0, 0.5\]"),
                         ((float("nan"),), r"color_jitter must be in \[0, 10\]"), ((1e39,), "color_jitter must be")):
        with pytest.raises(ValueError, match=message):
            ColorJitter(*bad)


def test_color_jitter_options_are_checked_and_reach_the_training_loader_only(cifar_dir):
    cfg = load_config(["--color_jitter=0.4", "--color_jitter_hue=0.1", f"--dataset_path={cifar_dir}",
                       "--num_workers=0"])
    opts = train.data_options(cfg)
    jitter = build_loader(opts, train=True, device=CPU).auto_augment
    assert isinstance(jitter, ColorJitter) and (jitter.strength, jitter.hue) == (0.4, 0.1)
    assert build_loader(train.data_options(cfg, train=False), train=False, device=CPU).auto_augment is None
    assert build_loader(train.data_options(load_config([f"--dataset_path={cifar_dir}"])), train=True,
                        device=CPU).auto_augment is None
    for argv, message in (
            (["--color_jitter=-0.2"], r"option --color_jitter: color_jitter must be in \[0, 10\]"),
            (["--color_jitter=1e39"], r"option --color_jitter: color_jitter must be in \[0, 10\]"),
            (["--color_jitter_hue=0.7"], r"option --color_jitter_hue: color_jitter_hue must be in \[0, 0.5\]"),
            (["--auto_augment=ra", "--color_jitter=0.4"],
             "option --color_jitter: color_jitter 0.4 is for runs without an auto-augment policy; auto_augment ra "
             "takes its place"),
            (["--auto_augment=augmix", "--color_jitter_hue=0.1"],
             "option --color_jitter_hue: color_jitter_hue 0.1 is")):
        with pytest.raises(ConfigError, match=message):
            load_config(argv)
    with pytest.raises(ValueError, match="color jitter with auto_augment ta_wide: choose one"):
        make_augment("ta_wide", color_jitter=0.4)


def test_the_bounds_the_color_jitter_options_allow_build_the_training_jitter(cifar_dir):
    """What the configuration accepts (color_jitter up to 10, color_jitter_hue up to 0.5, half the hue circle)
    the training loader builds: a bound the loader drew tighter than the option refused the run after its
    configuration was taken."""
    most = autoaugment.MAX_JITTER
    cfg = load_config([f"--color_jitter={most:g}", "--color_jitter_hue=0.5", f"--dataset_path={cifar_dir}",
                       "--num_workers=0"])
    jitter = build_loader(train.data_options(cfg), train=True, device=CPU).auto_augment
    assert isinstance(jitter, ColorJitter) and (jitter.strength, jitter.hue) == (most, 0.5)
    assert jitter.low.tolist() == [-1.0, -1.0, -1.0, -0.5] and jitter.high.tolist() == [most] * 3 + [0.5]


def test_luma_of_saturation_and_contrast_is_torchvisions_to_the_last_bit():
    """Saturation and contrast blend with the image's luma: the same float32 values as torchvision's
    grayscale on float images, the same levels on uint8 (three products added apart gave a level less
    now and then, unseen on the few images of the other tests)."""
    images = torch.randint(0, 256, (16, 3, 224, 224), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    x = images.float()
    assert torch.equal(autoaugment._gray(x, integer=False), TF.rgb_to_grayscale(x))
    assert torch.equal(autoaugment._gray(x, integer=True), TF.rgb_to_grayscale(images).float())


def test_info_names_the_augmentations_a_run_trained_with(cifar_dir, tmp_path, capsys):
    import json

    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1 import cli

    run = train.run(load_config(["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--epoch_size=1",
                                 "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0", "--class_num=4",
                                 f"--dataset_path={cifar_dir}", f"--save_checkpoint_path={tmp_path / 'run'}",
                                 "--color_jitter=0.4", "--color_jitter_hue=0.1", "--mixup_alpha=0.2",
                                 "--random_flip=False", "--weight_decay=0.0005"]))["checkpoint"]
    capsys.readouterr()
    assert cli.main(["info", run, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["regularisation"] == {
        "random_flip": False, "color_jitter": 0.4, "color_jitter_hue": 0.1, "mixup_alpha": 0.2, "weight_decay": 0.0005}
    assert cli.main(["info", run]) == 0
    assert re.search(r"^  regularisation: +random_flip False, color_jitter 0.4, color_jitter_hue 0.1, mixup_alpha 0.2, "
                     r"weight_decay 0.0005$", capsys.readouterr().out, re.M)
    # A plain run's; a hand-edited value of another type is left out.
    state = ckpt_io.load_file(run)
    state["config"] = dict(state["config"], color_jitter=0.0, color_jitter_hue="lots", mixup_alpha=0.0,
                           random_flip=True, weight_decay=1e-4)
    # Class names with a comma are quoted: "Sky, leaf, green, red apple" read as four of three (helper-257).
    state["classes"] = ["Sky", "leaf, green", "red apple", " x"]
    ckpt_io.atomic_save(state, str(tmp_path / "plain.ckpt"))
    assert cli.main(["info", str(tmp_path / "plain.ckpt")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  regularisation: +none beyond the crop and flip \(the seed's\)$", out, re.M)
    assert re.search(r'^  classes: +Sky, "leaf, green", red apple, " x"$', out, re.M)
    # An ImageNet run's label smoothing is its data set's default: not named.
    state["config"] = dict(state["config"], dataset="imagenet2012", use_label_smooth=True, label_smooth_factor=0.1)
    ckpt_io.atomic_save(state, str(tmp_path / "in1k.ckpt"))
    assert cli.main(["info", str(tmp_path / "in1k.ckpt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["regularisation"] == {}
