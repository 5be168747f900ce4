"""Per-sample augmentation of one image at a time, as the CPU pipeline's loader workers run it: ours
(``--auto_augment POLICY``, or ``--color_jitter``) against torchvision's v2 transform of the same policy
(``ColorJitter``), on the same images,
one thread. Rounds alternate between the two; "paired" is the median of the per-round ratios
(ours' time over torchvision's: above 1, ours is slower).

    python benchmarks/augment_per_image.py --policy augmix
    python benchmarks/augment_per_image.py --policy color_jitter --color_jitter 0.4 --color_jitter_hue 0.1
    python benchmarks/augment_per_image.py --policy ta_wide --size 224 --images 200 --rounds 5
    python benchmarks/augment_per_image.py --policy ta_wide --grid_ab   # ours: our sampling grid vs F.affine_grid
    python benchmarks/augment_per_image.py --ops    # the colour operations one by one, uint8 and float paths
"""
import argparse
import sys
import time

from common import emit_json, machine, median, print_table, run_script

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from mobilenet_v1 import autoaugment

from mobilenet_v1.autoaugment import POLICIES, magnitudes, make_augment, run_op

# The operations --ops times, with torchvision's functional form at magnitude m.
OPS_TIMED = {"Posterize": lambda img, m: TF.posterize(img, int(m)), "Solarize": lambda img, m: TF.solarize(img, 255.0 * m),
             "Invert": lambda img, m: TF.invert(img), "Equalize": lambda img, m: TF.equalize(img),
             "AutoContrast": lambda img, m: TF.autocontrast(img),
             "Brightness": lambda img, m: TF.adjust_brightness(img, 1.0 + m),
             "Color": lambda img, m: TF.adjust_saturation(img, 1.0 + m),
             "Contrast": lambda img, m: TF.adjust_contrast(img, 1.0 + m)}


def torchvision_transform(policy: str, strength: float = 0.0, hue: float = 0.0):
    """torchvision's transform as its recipes build it: bilinear geometry (their --interpolation), as ours."""
    if policy == "color_jitter":
        return v2.ColorJitter(brightness=strength, contrast=strength, saturation=strength, hue=hue)
    bilinear = v2.InterpolationMode.BILINEAR
    if policy == "augmix":
        return v2.AugMix(interpolation=bilinear)  # severity 3
    if policy == "ta_wide":
        return v2.TrivialAugmentWide(interpolation=bilinear)
    if policy == "ra":
        return v2.RandAugment(interpolation=bilinear)
    return v2.AutoAugment(v2.AutoAugmentPolicy(policy), interpolation=bilinear)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="augmix", choices=POLICIES + ("color_jitter",))
    p.add_argument("--color_jitter", type=float, default=0.4, help="--policy color_jitter's strength (timm's 0.4)")
    p.add_argument("--color_jitter_hue", type=float, default=0.0, help="--policy color_jitter's hue")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--grid_ab", action="store_true",
                   help="instead: ours with its broadcast sampling grid against ours with F.affine_grid")
    p.add_argument("--ops", action="store_true",
                   help="instead: each colour operation alone (TrivialAugment's bin 15): ours on uint8, ours through "
                        "the float path (how ours ran uint8 images before the integer operations), torchvision's")
    p.add_argument("--json", nargs="?", const=True, default=None)
    args = p.parse_args()
    if min(args.images, args.rounds, args.size) < 1:
        p.error("--images, --rounds and --size must be at least 1")
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, args.size, args.size), generator=g, dtype=torch.uint8)
    if args.ops:
        return time_ops(images, args)
    jitter = args.policy == "color_jitter"
    ours = (make_augment("", color_jitter=args.color_jitter, color_jitter_hue=args.color_jitter_hue) if jitter
            else make_augment(args.policy))
    grid = autoaugment._affine_grid

    def ours_with_affine_grid(image, seeds):  # --grid_ab's "torchvision": ours with F.affine_grid, same draws
        autoaugment._affine_grid = lambda theta, h, w: F.affine_grid(theta, [theta.shape[0], 3, h, w],
                                                                     align_corners=False)
        try:
            return ours(image, seeds)
        finally:
            autoaugment._affine_grid = grid

    theirs = (ours_with_affine_grid if args.grid_ab
              else torchvision_transform(args.policy, args.color_jitter, args.color_jitter_hue))
    times = {"ours": [], "torchvision": []}
    for r in range(args.rounds + 1):  # round 0 warms up
        t = time.perf_counter()
        for i in range(args.images):
            ours(images[i:i + 1], [r * args.images + i])
        mine = (time.perf_counter() - t) / args.images * 1000
        t = time.perf_counter()
        for i in range(args.images):
            if args.grid_ab:
                theirs(images[i:i + 1], [r * args.images + i])
            else:
                theirs(images[i])
        tv = (time.perf_counter() - t) / args.images * 1000
        if r:
            times["ours"].append(mine)
            times["torchvision"].append(tv)
    paired = median([a / b for a, b in zip(times["ours"], times["torchvision"])])
    other = "ours, F.affine_grid" if args.grid_ab else "torchvision"
    policy = f"{args.policy} {args.color_jitter:g}, hue {args.color_jitter_hue:g}" if jitter else args.policy
    row = {"policy": policy, "ours ms/image": f"{median(times['ours']):.2f}",
           f"{other} ms/image": f"{median(times['torchvision']):.2f}", f"paired ours / {other}": f"{paired:.2f}"}
    print_table(f"Per-image augmentation, {machine(on_cpu=True)}: {args.images} random {args.size}x{args.size} uint8 "
                f"images, one thread, median of {args.rounds} rounds", [row], list(row))
    key = "ours_affine_grid" if args.grid_ab else "torchvision"  # what the second timings are of
    emit_json(args.json, {"machine": machine(on_cpu=True), "policy": policy, "size": args.size,
                          "ms": {"ours": times["ours"], key: times["torchvision"]}, f"paired_ours_over_{key}": paired})


def time_ops(images: torch.Tensor, args) -> None:
    """Per-operation ms per image, rounds alternating between the three ways, medians and paired ratios."""
    integer_ops = autoaugment._INTEGER_OPS

    def float_path(name, image, v):
        autoaugment._INTEGER_OPS = ()
        try:
            return run_op(name, image, v)
        finally:
            autoaugment._INTEGER_OPS = integer_ops

    rows, out = [], {}
    for name, tv in OPS_TIMED.items():
        m = magnitudes("ta_wide", name, args.size, args.size)[15]
        v = torch.tensor([m], dtype=torch.float64)
        ways = {"ours": lambda img: run_op(name, img, v), "ours, float path": lambda img: float_path(name, img, v),
                "torchvision": lambda img: tv(img[0], m)}
        times = {k: [] for k in ways}
        for r in range(args.rounds + 1):  # round 0 warms up
            for k, fn in ways.items():
                t = time.perf_counter()
                for i in range(args.images):
                    fn(images[i:i + 1])
                if r:
                    times[k].append((time.perf_counter() - t) / args.images * 1000)
        ratio = {k: median([a / b for a, b in zip(times["ours"], times[k])]) for k in ("ours, float path", "torchvision")}
        rows.append({"operation": name, "ours ms": f"{median(times['ours']):.3f}",
                     "float path ms": f"{median(times['ours, float path']):.3f}",
                     "torchvision ms": f"{median(times['torchvision']):.3f}",
                     "ours / float path": f"{ratio['ours, float path']:.2f}",
                     "ours / torchvision": f"{ratio['torchvision']:.2f}"})
        out[name] = {"ms": times, "paired": ratio}
    print_table(f"Per-operation time, {machine(on_cpu=True)}: {args.images} random {args.size}x{args.size} uint8 "
                f"images, one thread, median of {args.rounds} rounds (paired: medians of the per-round ratios)", rows,
                list(rows[0]))
    emit_json(args.json, {"machine": machine(on_cpu=True), "size": args.size, "operations": out})


if __name__ == "__main__":
    sys.exit(run_script(main))
