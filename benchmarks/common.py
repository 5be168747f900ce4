"""Shared by the benchmark scripts: synthetic natural-looking JPEGs, timing, table printing."""
import json
import os
import statistics
import sys
from multiprocessing import Pool
from typing import Dict, List, Sequence

import numpy as np

# The repository's src/ first, unless PYTHONPATH names a folder that holds the package: that one is
# imported then (gpu_pipeline_ab.sh's PYTHONPATH=$OLD_SRC, a copy of src/ from the commit before, which
# src/ put first on the path would shadow, so that "before" ran the code of "after").
if not any(os.path.isdir(os.path.join(folder, "mobilenet_v1"))
           for folder in os.environ.get("PYTHONPATH", "").split(os.pathsep) if folder):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))


def natural_image(seed: int, height: int = 375, width: int = 500) -> np.ndarray:
    """A photo-like RGB image: smooth colour gradients, overlapping soft-edged shapes, fine texture
    and sensor noise, so JPEG sizes (about 40-60 KB at quality 90) and decode cost resemble ImageNet's."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    base = rng.uniform(40, 200, 3)
    for c in range(3):
        gx, gy = rng.uniform(-0.25, 0.25, 2)
        img[..., c] = base[c] + gx * xx + gy * yy
    for _ in range(rng.integers(6, 14)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(15, height / 2), rng.uniform(15, width / 2)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        mask = 1.0 / (1.0 + np.exp(np.minimum((d - 1.0) * 8.0, 50.0)))
        colour = rng.uniform(0, 255, 3)
        img = img * (1 - mask[..., None]) + colour * mask[..., None]
    fx, fy = rng.uniform(0.05, 0.4, 2)
    img += 12 * np.sin(xx * fx + rng.uniform(0, 6))[..., None] * np.sin(yy * fy)[..., None]
    img += rng.normal(0, 6, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def _write_one(args):
    path, seed, (height, width) = args
    from PIL import Image

    Image.fromarray(natural_image(seed, height, width)).save(path, format="JPEG", quality=90)
    return os.path.getsize(path)


def make_jpeg_folder(root: str, count: int, classes: int = 10, size=(375, 500)) -> Dict[str, float]:
    """``count`` JPEGs of ``size`` (height, width) in ``classes`` class folders under ``root`` (files
    already there are reused, whatever their size)."""
    jobs = []
    for i in range(count):
        folder = os.path.join(root, f"class_{i % classes:03d}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"img_{i:06d}.JPEG")
        if not os.path.exists(path):
            jobs.append((path, i, size))
    if jobs:
        with Pool(os.cpu_count()) as pool:
            pool.map(_write_one, jobs, chunksize=16)
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs]
    return {"files": len(sizes), "mean_kb": sum(sizes) / len(sizes) / 1024}


def pick_device(name: str):
    """``--device``: "auto" is CUDA where present, else the CPU (as ``train --device_target auto``);
    anything else as torch names it ("cuda:1")."""
    import torch

    from mobilenet_v1.engine import resolve_device

    if name == "auto":
        return resolve_device("auto")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: --device {name}: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():  # else torch's traceback at the first CUDA call
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: --device {name}: torch sees no CUDA GPU here")
    return device


def configured(**settings):
    """BatchedImageLoader with these class attributes (``receive_ahead``, ``decode_ahead``,
    ``shared_buffers``) in place before a loader is made: its __init__ sizes the shared buffers by them,
    so setting them on a loader already made would measure another one."""
    from mobilenet_v1.data import BatchedImageLoader

    return type("BatchedImageLoader", (BatchedImageLoader,), settings) if settings else BatchedImageLoader


def run_script(main) -> int:
    """``main()``'s exit status, or 141 (as a process SIGPIPE ended) where the reader of the output went
    away (``script | head``): quietly, as cat, not a BrokenPipeError traceback (``mobilenet-v1``'s way)."""
    from mobilenet_v1.cli import output_reader_gone

    try:
        status = main()
        sys.stdout.flush()  # here, where a reader gone is caught, not in the interpreter's exit
        return status or 0
    except BrokenPipeError:
        return output_reader_gone()


def import_timm(script: str, without: str = ""):
    """timm, or the script ended with one line saying it is not installed (the ``bench`` extra) and, where
    the script can run without it, the option ``without`` that does."""
    from mobilenet_v1.runtime import install_hint

    try:
        import timm
    except ImportError:
        sys.exit(f"{script}: error: timm is not installed, which this needs: {install_hint('bench')}"
                 + (f" (or {without}: without timm's model)" if without else ""))
    return timm


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine(on_cpu: bool = False) -> str:
    """The machine a figure was taken on: the GPU where there is one, unless the work timed ran on the CPU
    (``on_cpu``), then the CPU."""
    import torch

    from mobilenet_v1.benchmark import cpu_name

    if torch.cuda.is_available() and not on_cpu:
        return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    # the model name ("AMD EPYC ...", "Intel(R) Xeon(R) ..."), not platform.processor()'s "x86_64": RESULTS.md's
    # figures differ between the AVX2-only and the VNNI machines, which "x86_64" does not tell apart
    return f"CPU {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}"


def print_table(title: str, rows: List[Dict], columns: Sequence[str]) -> None:
    from mobilenet_v1.benchmark import markdown_table

    print(f"\n{title}")
    print(markdown_table(columns, [[str(r.get(c, "")) for c in columns] for r in rows]))


def emit_json(path_or_flag, payload) -> None:
    text = json.dumps(payload, indent=1)
    if path_or_flag is True or path_or_flag == "-":
        print(text)
    elif path_or_flag:
        with open(path_or_flag, "w") as f:
            f.write(text)
