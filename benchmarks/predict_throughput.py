"""``predict`` over a folder of JPEGs: images/s with the files read and decoded in this process
(``--num_workers 0``) against loader workers doing it while the model runs, on the same files and
model, alternating rounds; a checkpoint of random weights (the speed does not depend on them).

    python benchmarks/predict_throughput.py --images 256 --workers 0,2 --widths 1.0,0.25

On code from before ``predict --num_workers`` existed, only the one-process figure is taken.
"""
import argparse
import inspect
import os
import sys
import tempfile
import time

from common import emit_json, machine, make_jpeg_folder, median, print_table, run_script

import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.predict import image_files, load_predictor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--workers", default="0,2", help="comma-separated loader worker counts to compare")
    p.add_argument("--widths", default="1.0,0.25", help="comma-separated width_mult of the models")
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs_predict"))
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.rounds < 1 or args.images < 1:
        p.error(f"--rounds and --images must be at least 1, got {args.rounds} and {args.images}")
    try:
        workers = [int(w) for w in args.workers.split(",")]
        widths = [float(w) for w in args.widths.split(",")]
    except ValueError:
        p.error(f"--workers {args.workers!r} and --widths {args.widths!r}: comma-separated numbers, "
                f"e.g. 0,2 and 1.0,0.25")
    if min(workers) < 0 or min(widths) <= 0:
        p.error("--workers must be 0 or more and --widths above 0")
    info = make_jpeg_folder(args.data_dir, args.images)
    files = image_files([args.data_dir])[:args.images]
    rows, out = [], {"machine": machine(on_cpu=True), "images": len(files), "mean_kb": round(info["mean_kb"], 1),
                     "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            path = os.path.join(tmp, f"w{width}.pt")
            ckpt_io.atomic_save({"model": MobileNetV1(1000, width).state_dict(),
                                 "config": {"image_size": args.image_size, "dataset": "imagenet2012"}}, path)
            takes_device = "device_target" in inspect.signature(load_predictor).parameters
            predictor = load_predictor(path, **({"device_target": "CPU"} if takes_device else {}))
            takes_workers = "num_workers" in inspect.signature(predictor.top_k).parameters
            counts = workers if takes_workers else [None]
            rates = {w: [] for w in counts}
            for _ in range(args.rounds + 1):  # the first round warms up (file cache, kernels), not counted
                for w in counts:
                    kw = {} if w is None else {"num_workers": w, "batch_size": args.batch_size}
                    t = time.perf_counter()
                    results = predictor.top_k(files, 5, **kw)
                    rates[w].append(len(results) / (time.perf_counter() - t))
            base = counts[0]
            for w in counts:
                kept = rates[w][1:]
                ratio = median([a / b for a, b in zip(kept, rates[base][1:])])
                row = {"width_mult": width, "num_workers": "(before: one process)" if w is None else w,
                       "images/s (median)": f"{median(kept):.1f}",
                       "rounds": ", ".join(f"{r:.1f}" for r in kept), f"vs workers {base}": f"{ratio:.2f}"}
                rows.append(row)
                out["results"].append({"width_mult": width, "num_workers": w, "images_per_s": median(kept),
                                       "rounds": kept, "ratio": ratio})
    print(f"{machine(on_cpu=True)}; {len(files)} JPEGs of 500x375 ({info['mean_kb']:.0f} KB), {args.image_size}x"
          f"{args.image_size}, batch {args.batch_size}, {torch.get_num_threads()} intra-op threads")
    print_table("predict over a folder, images/s", rows, list(rows[0]))
    if args.json:
        emit_json(args.json, out)


if __name__ == "__main__":
    sys.exit(run_script(main))
