"""How far the GPU pipeline's training crops are from the CPU pipeline's, in levels of 255, on the same boxes and
flips (same seeds): both pipelines run on the CPU over a folder of generated photos (``common.natural_image``:
gradients, soft shapes, texture and noise; JPEG, 40 to 400 pixels a side), batch after batch for a few seeds.
Prints the largest difference of any pixel, and the median over the crops of each crop's largest, antialiased
and not; then the time of one ``transforms.batch_resized_crop`` call on 64 random crops of 100 to 500 px images to
224x224 on the CPU, one thread (median of 6 after a warm-up): with ``PYTHONPATH`` a copy of another commit's
``src/``, the same for that build.

    PYTHONPATH=src python benchmarks/pipeline_pixels.py --images 24 --image_size 64 --seeds 3
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

import common  # puts the repository's src/ on the path unless PYTHONPATH holds the package
from mobilenet_v1 import transforms as T  # noqa: E402
from mobilenet_v1.data import BatchedImageLoader, ImageFolderLoader  # noqa: E402


def photos(root: str, count: int) -> None:
    """``count`` photo-like JPEGs of random sizes in two class folders."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, "ab"[i % 2])
        os.makedirs(folder, exist_ok=True)
        h, w = (int(v) for v in rng.integers(40, 400, 2))
        Image.fromarray(common.natural_image(i, h, w)).save(os.path.join(folder, f"{i}.jpg"), quality=90)


def differences(root: str, size: int, seeds: int, antialias: bool) -> torch.Tensor:
    worst = []
    for seed in range(seeds):
        opts = dict(batch_size=8, train=True, image_size=size, device=torch.device("cpu"), seed=seed, num_workers=0,
                    antialias=antialias)
        cpu, gpu = ImageFolderLoader(root, **opts), BatchedImageLoader(root, **opts)
        cpu.normalize = gpu.normalize = lambda x: x  # levels of 255, not normalised values
        for (xc, yc), (xg, yg) in zip(cpu, gpu):
            assert torch.equal(yc, yg)
            worst.append((xc - xg).abs().amax(dim=(1, 2, 3)))
    return torch.cat(worst)


def crop_ms(rounds: int = 7) -> float:
    """Median ms of one batched antialiased crop of 64 random crops (the first call a warm-up)."""
    g = torch.Generator().manual_seed(0)
    images, boxes = [], []
    for _ in range(64):
        h, w = (int(v) for v in torch.randint(100, 500, (2,), generator=g))
        images.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        boxes.append((h - int(h * 0.6), w - int(w * 0.5), int(h * 0.6), int(w * 0.5)))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        T.batch_resized_crop(images, boxes, 224)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--image_size", type=int, default=64)
    p.add_argument("--seeds", type=int, default=3)
    a = p.parse_args()
    if a.images < 8 or a.seeds < 1 or a.image_size < 1:  # training batches of 8, the last partial one dropped
        p.error(f"--images must be at least 8 (one batch), --seeds and --image_size at least 1; got {a.images}, "
                f"{a.seeds} and {a.image_size}")
    torch.set_num_threads(1)
    print(common.machine())
    with tempfile.TemporaryDirectory() as root:
        photos(root, a.images)
        print("| antialias | crops | largest difference | median of each crop's largest |")
        print("|---|---|---|---|")
        for antialias in (True, False):
            d = differences(root, a.image_size, a.seeds, antialias)
            print(f"| {antialias} | {len(d)} | {d.max().item():.1f} | {d.median().item():.2f} |")
    print(f"batch_resized_crop, 64 crops to 224x224, one thread: {crop_ms():.1f} ms ({T.__file__})")


if __name__ == "__main__":
    main()
