"""Accuracy of INT8 against fp32 on a data set's evaluation split: top-1 of each and how often they agree.

    python benchmarks/int8_accuracy.py --config_path configs/demo.yaml --checkpoint_path runs/demo

exports the checkpoint to ONNX, quantizes it (calibrated on training images, as ``mobilenet-v1
quantize`` does), and runs both files in ONNX Runtime over every evaluation image of the configured
data set, batch by batch through the same loader. ``--reduce_range`` quantizes the weights to 7 bits
(for x86 CPUs without VNNI, where ONNX Runtime's u8 x s8 products saturate; the output says whether
this CPU has VNNI). ``--json FILE`` also writes the figures.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from mobilenet_v1.config import load_config  # noqa: E402
from mobilenet_v1.data import DataOptions, build_loader  # noqa: E402
from mobilenet_v1.export import export_checkpoint  # noqa: E402
from mobilenet_v1.onnx_io import OnnxModel, x86_without_vnni  # noqa: E402
from mobilenet_v1.quantize import DEFAULT_CALIB_IMAGES, calibration_loader, compare_top1, quantize_file  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calib_images", type=int, default=DEFAULT_CALIB_IMAGES)
    p.add_argument("--reduce_range", action="store_true", help="7-bit weights (as mobilenet-v1 quantize --reduce_range)")
    p.add_argument("--json", default=None)
    a, rest = p.parse_known_args(argv)
    cfg = load_config(rest)  # --config_path, --checkpoint_path, --dataset_path, ... as for 'mobilenet-v1 eval'
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="int8-accuracy-") as tmp:
        t = time.perf_counter()
        exported = export_checkpoint(cfg.checkpoint_path, os.path.join(tmp, "fp32.onnx"),
                                     cfg.image_size, cfg.image_size)
        int8_path = os.path.join(tmp, "int8.onnx")
        quant = quantize_file(exported["path"], int8_path,
                              calibration_loader(cfg.dataset, cfg.dataset_path, cfg.image_size, a.calib_images,
                                                 cfg.seed, num_workers=cfg.num_workers, norm=cfg.normalisation),
                              reduce_range=a.reduce_range)
        prepared = time.perf_counter() - t
        opts = DataOptions(dataset=cfg.dataset, dataset_path=cfg.dataset_path, batch_size=cfg.batch_size,
                           image_size=cfg.image_size, seed=cfg.seed, num_workers=cfg.num_workers,
                           channels_last=False, flip=False, pipeline="cpu", norm=cfg.normalisation)
        loader = build_loader(opts, train=False, device=cpu, drop_last=False)
        result = compare_top1(OnnxModel(exported["path"]), OnnxModel(int8_path), loader)
    out = {"checkpoint": exported["ckpt"], "dataset": cfg.dataset, "dataset_path": cfg.dataset_path,
           "image_size": cfg.image_size, "eval_images": result["images"], "calib_images": quant["calib_images"],
           "fp32_top1": result["reference_top1"], "int8_top1": result["candidate_top1"],
           "agreement": result["agreement"], "fp32_bytes": quant["fp32_bytes"], "int8_bytes": quant["bytes"],
           "export_and_quantize_s": round(prepared, 1), "reduce_range": a.reduce_range,
           "x86_without_vnni": x86_without_vnni()}
    print(f"{out['checkpoint']} on {out['eval_images']} evaluation images of {cfg.dataset_path} "
          f"({cfg.image_size}x{cfg.image_size}); INT8 calibrated on {out['calib_images']} training images"
          f"{', 7-bit weights' if a.reduce_range else ''}; run on a CPU "
          f"{'without VNNI (x86)' if out['x86_without_vnni'] else 'with VNNI, or not x86, or of unknown flags'}")
    print("| model | file | top-1 |")
    print("|---|---|---|")
    print(f"| ONNX fp32 | {out['fp32_bytes'] / 1e6:.2f} MB | {out['fp32_top1']:.4f} |")
    print(f"| ONNX INT8 | {out['int8_bytes'] / 1e6:.2f} MB | {out['int8_top1']:.4f} |")
    print(f"top-1 difference {100 * (out['int8_top1'] - out['fp32_top1']):+.2f} points; "
          f"the two agree on {out['agreement']:.2%} of the images")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
