"""Top-1 of a checkpoint at several image sizes, before and after ``mobilenet-v1 recalibrate-bn``.

    python benchmarks/recalibrate_accuracy.py --config_path configs/demo.yaml --checkpoint_path runs/demo/mobilenetv1-best.ckpt --sizes 64,48,40,32

For each size: the checkpoint as it is, evaluated over every evaluation image at that size, then the
same weights with their BatchNorm statistics measured on ``--images`` random training images at that
size (the evaluation transforms, as the command does), for each ``--seeds`` draw. ``--json FILE``
also writes the figures.
"""
import argparse
import copy
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from mobilenet_v1 import load_model  # noqa: E402
from mobilenet_v1.config import load_config  # noqa: E402
from mobilenet_v1.data import DataOptions, build_loader  # noqa: E402
from mobilenet_v1.engine import evaluate  # noqa: E402
from mobilenet_v1.quantize import calibration_loader  # noqa: E402
from mobilenet_v1.recalibrate import DEFAULT_BATCH, DEFAULT_IMAGES, recalibrate  # noqa: E402


def top1(model, cfg, size: int) -> float:
    opts = DataOptions(dataset=cfg.dataset, dataset_path=cfg.dataset_path, batch_size=cfg.batch_size,
                       image_size=size, seed=cfg.seed, num_workers=cfg.num_workers, channels_last=False,
                       flip=False, pipeline="cpu", crop_pct=cfg.crop_pct, norm=cfg.normalisation)
    counts = evaluate(model, build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False),
                      torch.device("cpu"), "fp32")
    return counts["top_1_correct"] / counts["total"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", required=True, help="comma-separated image sizes")
    p.add_argument("--images", type=int, default=DEFAULT_IMAGES)
    p.add_argument("--seeds", default="1", help="comma-separated draws of the training images")
    p.add_argument("--json", default=None)
    a, rest = p.parse_known_args(argv)
    cfg = load_config(rest)  # --config_path, --checkpoint_path, --dataset_path, ... as for 'mobilenet-v1 eval'
    model = load_model(cfg.checkpoint_path)
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        after = []
        for seed in (int(s) for s in a.seeds.split(",")):
            m = copy.deepcopy(model)
            recalibrate(m, calibration_loader(cfg.dataset, cfg.dataset_path, size, a.images, seed, DEFAULT_BATCH,
                                              cfg.num_workers, crop_pct=cfg.crop_pct, norm=cfg.normalisation),
                        torch.device("cpu"))
            after.append(top1(m, cfg, size))
        rows.append({"image_size": size, "before": top1(model, cfg, size), "after": after,
                     "after_median": statistics.median(after)})
    print(f"{cfg.checkpoint_path} on the evaluation images of {cfg.dataset_path}; BatchNorm statistics measured "
          f"on up to {a.images} training images, seeds {a.seeds}")
    print(f"{'image_size':>10} | {'top-1 as trained':>16} | {'recalibrated (median)':>21} | each seed")
    for r in rows:
        print(f"{r['image_size']:>10} | {r['before']:>16.4f} | {r['after_median']:>21.4f} | "
              f"{' '.join(f'{x:.4f}' for x in r['after'])}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"checkpoint": cfg.checkpoint_path, "images": a.images, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
