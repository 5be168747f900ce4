"""How close this toolkit's image folder transforms come to the seed's (MindSpore's) on the same JPEGs,
with ``antialias`` True (the default: torchvision's antialiased resize) and False (plain bilinear, the
seed's). MindSpore runs in a Python of its own (``--mindspore_python``: one with ``pip install
mindspore``; this toolkit never imports it) and writes what its operations make of each file:

- ``Decode()``: the decoded pixels;
- the seed's evaluation transform: ``Decode()``, ``Resize(256)``, ``CenterCrop(224)``;
- a training crop: ``Decode()``, ``Crop`` of a box drawn by ``transforms.crop_and_flip``, ``Resize((224,
  224))``, which is the resize of the seed's ``RandomCropDecodeResize`` at a box of our choosing (its own
  box is drawn by MindSpore's generator).

Each is compared with ours, the CPU pipeline's function and the GPU pipeline's batched one (run on the
CPU here: the same code): the share of uint8 values that differ, the largest difference and the mean.
"resize only" rows resize MindSpore's own decoded pixels, so a decoder's difference does not count.
``--sizes`` makes the JPEGs in several sizes (height x width), an equal share each: ImageNet's photos come
in many, and where the longer side, resized, is not a whole number of pixels (500x353: 362.6) or the
crop's margin is odd (500x334: 383 - 224 = 159), the size and the centre crop's position depend on how
each rounds. A last table gives the seed's evaluation crop size by size.

    python benchmarks/mindspore_resize_check.py --mindspore_python /path/to/venv/bin/python [--images 16]
        [--sizes 375x500,334x500,500x353]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from common import emit_json, machine, make_jpeg_folder, print_table

from mobilenet_v1 import transforms as T
from mobilenet_v1.data import read_bytes

MINDSPORE_SIDE = r"""
import json, sys
import numpy as np
import mindspore
import mindspore.dataset.vision as V
from mindspore.dataset.vision import Inter

jobs = json.load(open(sys.argv[1]))
out = {}
for i, job in enumerate(jobs):
    data = np.fromfile(job["path"], np.uint8)
    img = V.Decode()(data)
    out[f"decoded_{i}"] = img
    out[f"eval_{i}"] = V.CenterCrop(224)(V.Resize(256, Inter.LINEAR)(img))
    top, left, h, w = job["box"]
    out[f"train_{i}"] = V.Resize((224, 224), Inter.LINEAR)(V.Crop((top, left), (h, w))(img))
np.savez(sys.argv[2], **out)
print(mindspore.__version__)
"""


def chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def agreement(ours: torch.Tensor, theirs: torch.Tensor) -> dict:
    d = (ours.round().to(torch.int32) - theirs.to(torch.int32)).abs()
    return {"values differing %": round(100 * (d > 0).double().mean().item(), 2), "max": int(d.max()),
            "mean": round(d.double().mean().item(), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mindspore_python", required=True, help="a Python interpreter with mindspore installed")
    p.add_argument("--images", type=int, default=16, help="natural-looking JPEGs (default 16)")
    p.add_argument("--sizes", default="375x500",
                   help="their sizes, HEIGHTxWIDTH, comma-separated (default 375x500, ImageNet's commonest)")
    p.add_argument("--json", nargs="?", const=True, default=None, help="print (or write to a file) JSON")
    a = p.parse_args()
    sizes = [tuple(int(v) for v in hw.split("x")) for hw in a.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for k, size in enumerate(sizes):  # a folder a size; images of one size made alike
            make_jpeg_folder(os.path.join(tmp, f"{size[0]}x{size[1]}"), a.images // len(sizes)
                             + (k < a.images % len(sizes)), classes=1, size=size)
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if f.endswith(".JPEG"))
        decoded = [T.decode_rgb(read_bytes(path), path) for path in paths]
        boxes = [T.crop_and_flip(img.shape[-2], img.shape[-1], seed)[0] for seed, img in enumerate(decoded)]
        with open(os.path.join(tmp, "jobs.json"), "w") as f:
            json.dump([{"path": path, "box": box} for path, box in zip(paths, boxes)], f)
        npz = os.path.join(tmp, "mindspore.npz")
        done = subprocess.run([a.mindspore_python, "-c", MINDSPORE_SIDE, os.path.join(tmp, "jobs.json"), npz],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"--mindspore_python {a.mindspore_python}: the MindSpore side failed:\n{done.stderr[-2000:]}")
        version = done.stdout.strip().splitlines()[-1]
        ms = np.load(npz)
        theirs = {kind: torch.stack([chw(ms[f"{kind}_{i}"]) for i in range(len(paths))])
                  for kind in ("eval", "train")}
        theirs_decoded = [chw(ms[f"decoded_{i}"]) for i in range(len(paths))]

    def hw(i: int) -> str:
        return "x".join(map(str, decoded[i].shape[-2:]))

    rows = [{"transform": "decode", "antialias": "", "ours": "decode_rgb",
             **agreement(torch.cat([d.flatten() for d in decoded]).float(),
                         torch.cat([d.flatten() for d in theirs_decoded]))}]
    for antialias in (False, True):
        for source, images in (("", decoded), (" (resize only)", theirs_decoded)):
            cpu_eval = torch.stack([T.resize_center_crop(img, 224, antialias=antialias) for img in images])
            gpu_eval = T.batch_resize_center_crop(images, 224, antialias=antialias)
            cpu_train = torch.stack([TF.resized_crop(img, *box, [224, 224], antialias=antialias)
                                     for img, box in zip(images, boxes)])
            gpu_train = T.batch_resized_crop(images, boxes, 224, dtype=torch.float32, antialias=antialias)
            for kind, ours, name in (("eval", cpu_eval, "CPU pipeline"), ("eval", gpu_eval, "GPU pipeline"),
                                     ("train", cpu_train, "CPU pipeline"), ("train", gpu_train, "GPU pipeline")):
                rows.append({"transform": kind + source, "antialias": antialias, "ours": name,
                             **agreement(ours.float(), theirs[kind])})
    per_size = []
    for size in dict.fromkeys(hw(i) for i in range(len(paths))):
        members = [i for i in range(len(paths)) if hw(i) == size]
        ours = torch.stack([T.resize_center_crop(decoded[i], 224, antialias=False) for i in members])
        per_size.append({"size (HxW)": size, "images": len(members),
                         **agreement(ours.float(), theirs["eval"][members])})
    title = (f"{len(paths)} JPEGs of {a.sizes}, MindSpore {version} against this toolkit; {machine()}; uint8 values")
    print_table(title, rows, ["transform", "antialias", "ours", "values differing %", "max", "mean"])
    print_table("the seed's evaluation crop (antialias False, CPU pipeline) by image size", per_size,
                ["size (HxW)", "images", "values differing %", "max", "mean"])
    emit_json(a.json, {"machine": machine(), "mindspore": version, "images": len(paths), "sizes": a.sizes,
                       "rows": rows, "per_size": per_size})


if __name__ == "__main__":
    main()
