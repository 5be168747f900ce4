"""Check of ``--exif_orientation True`` on a device: photos tagged with each EXIF orientation go through
the CPU pipeline (the workers' libjpeg decode turns them) and the GPU pipeline (nvJPEG decodes them as
stored and ``transforms.turn_upright`` turns them on the device); the evaluation batches must agree
within rounding (one uint8 step; nvJPEG and libjpeg differ by about that), and training batches must
crop the same boxes of the turned photos (their difference: resampling, not a turned or shifted box).
A batch of stored pixels (the key off) is the control: it must differ for orientations 2 to 8.

    python benchmarks/exif_check.py [--device cuda] [--json out.json]
"""
import argparse
import io
import os
import shutil
import struct
import tempfile

import torch
from PIL import Image

from common import emit_json, machine, natural_image, pick_device, print_table

from mobilenet_v1.data import DataOptions, build_loader

STEP = 1 / (255 * 0.224)  # one uint8 step, normalised (the smallest of ImageNet's std)


def tagged_jpeg(array, orientation: int) -> bytes:
    """A JPEG whose EXIF block holds only ``orientation`` (little-endian TIFF)."""
    directory = struct.pack("<HHHIH", 1, 0x0112, 3, 1, orientation) + b"\0\0" + struct.pack("<I", 0)
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=90,
                                exif=b"Exif\0\0II" + struct.pack("<HI", 42, 8) + directory)
    return buf.getvalue()


def batches(root, device, pipeline, exif, train):
    opts = DataOptions("imagenet2012", root, 8, 64, seed=3, num_workers=2, channels_last=False, pipeline=pipeline,
                       exif_orientation=exif)
    loader = build_loader(opts, train=train, device=device, drop_last=False, shuffle=False)
    loader.set_epoch(0)
    return torch.cat([x.float().cpu() for x, _ in loader])


def compare(root, device):
    """One row per batch kind and orientation: the pipelines' largest difference, and the turned photos'
    mean difference from their stored pixels."""
    rows = []
    for train in (False, True):
        cpu = batches(root, device, "cpu", True, train)
        gpu = batches(root, device, "gpu", True, train)
        stored = batches(root, device, "gpu", False, train)
        for k in range(1, 9):
            part = slice(2 * (k - 1), 2 * k)
            rows.append({"batch": "training" if train else "evaluation", "orientation": k,
                         "max abs(cpu - gpu)": f"{float((cpu[part] - gpu[part]).abs().max()):.4f}",
                         "mean abs(turned - stored)": f"{float((gpu[part] - stored[part]).abs().mean()):.3f}"})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", nargs="?", const=True, default=None)
    args = p.parse_args()
    device = pick_device(args.device)
    root = tempfile.mkdtemp(prefix="mobilenet_v1_exif_")
    for k in range(1, 9):  # one class per orientation, two photos each (landscape 150x200)
        os.makedirs(os.path.join(root, f"o{k}"))
        for i in range(2):
            with open(os.path.join(root, f"o{k}", f"{i}.jpg"), "wb") as f:
                f.write(tagged_jpeg(natural_image(10 * k + i, 150, 200), k))
    try:
        rows = compare(root, device)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print_table(f"EXIF orientation in both pipelines, {machine()}, device {device}: 16 tagged 150x200 JPEGs at 64 "
                f"(eval: within {STEP:.4f} expected; training: resampling differences)", rows,
                ["batch", "orientation", "max abs(cpu - gpu)", "mean abs(turned - stored)"])
    emit_json(args.json, {"machine": machine(), "device": str(device), "rows": rows})


if __name__ == "__main__":
    main()
