"""Seconds of an ONNX export (``export.to_onnx``) with torch's table of ONNX functions built at every call
and built once a process (``export.torchlib_registry_built_once``), in the same process.

    PYTHONPATH=src python benchmarks/export_time.py [--width_mult 1.0] [--image_size 224] [--runs 5] [--json]

The first export of the process (imports, the first build of the table) is timed on its own. Then the
two ways alternate, ``--runs`` exports each, so that drift of the machine falls on both alike; medians
and their ratio are printed, and whether the two graphs are the same bytes.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import torch  # noqa: E402

from common import run_script  # noqa: E402

from mobilenet_v1 import export  # noqa: E402
from mobilenet_v1.model import MobileNetV1  # noqa: E402


def timed(model, size: int, built_once: bool):
    context = export.torchlib_registry_built_once if built_once else contextlib.nullcontext
    real = export.torchlib_registry_built_once
    export.torchlib_registry_built_once = context
    try:
        start = time.perf_counter()
        proto = export.to_onnx(model, size, size)
        return time.perf_counter() - start, proto.SerializeToString()
    finally:
        export.torchlib_registry_built_once = real


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width_mult", type=float, default=1.0)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.runs < 1 or args.threads < 1:
        parser.error(f"--runs and --threads must be at least 1, got {args.runs} and {args.threads}")
    torch.set_num_threads(args.threads)
    model = MobileNetV1(class_num=1000, width_mult=args.width_mult).eval()
    first, reference = timed(model, args.image_size, True)
    times = {"every call": [], "once a process": []}
    same = True
    for _ in range(args.runs):
        for name, once in (("every call", False), ("once a process", True)):
            seconds, graph = timed(model, args.image_size, once)
            times[name].append(seconds)
            same = same and graph == reference
    result = {"torch": torch.__version__, "width_mult": args.width_mult, "image_size": args.image_size,
              "threads": args.threads, "runs": args.runs, "first_export_s": round(first, 2),
              "median_s": {k: round(statistics.median(v), 2) for k, v in times.items()},
              "same_graph": same}
    result["speedup"] = round(result["median_s"]["every call"] / result["median_s"]["once a process"], 2)
    if args.json:
        print(json.dumps(result))
        return
    print(f"torch {result['torch']}, MobileNetV1 width {args.width_mult:g} at {args.image_size}x{args.image_size}, "
          f"{args.threads} thread(s), {args.runs} exports each way, alternating")
    print(f"first export of the process: {first:.2f} s")
    for name, value in result["median_s"].items():
        print(f"table built {name:<15} median {value:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    print(f"speed-up {result['speedup']:.2f}x; the same graph bytes: {same}")


if __name__ == "__main__":
    sys.exit(run_script(main))
