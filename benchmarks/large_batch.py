"""LARS and LAMB against SGD: what a large batch does to each, and what their step costs.

Two tables:

1. **Training at a large batch** (``--batch_size``, default 256, eight times the demo's 32): the demo's
   configuration (``configs/demo.yaml``: scikit-learn's digits, width 0.5, 64x64, 30 epochs) trained with
   each optimiser at the same number of epochs, so with a eighth of the demo's steps. SGD's rates are
   the demo's scaled to the batch (``--lr_base_size 32``: linearly) and, beside it, as given; LAMB's are
   a tenth of SGD's (AdamW's on the demo), scaled by the square root; LARS and LARC (LARS with
   ``trust_clip``) take the rates in ``RECIPES``. Top-1 on the 359 held-out digits, the best of the
   evaluations every 3 epochs and the last, and the training images/s.
2. **The optimiser step alone**, on MobileNetV1's parameters (width 1.0, 1000 classes, 4.2M) with
   random gradients: milliseconds per ``step()``, median of ``--repeats``, with and without
   ``found_inf`` (the non-finite guard's way of skipping on the device, which LARS and LAMB always take
   in a run), against SGD's in the same run.

    python benchmarks/large_batch.py --json large_batch.json           # both; about 6 minutes on 2 cores
    python benchmarks/large_batch.py --part step --device cuda          # the step alone, on a GPU
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit_json, machine, median, pick_device, print_table  # noqa: E402

import torch  # noqa: E402

from mobilenet_v1 import demo, train  # noqa: E402
from mobilenet_v1.config import load_config  # noqa: E402
from mobilenet_v1.engine import make_optimizer  # noqa: E402
from mobilenet_v1.model import MobileNetV1  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# (name, options over configs/demo.yaml); the demo's rates are lr_init 0.01, lr_max 0.1, for batch 32.
RECIPES = [
    ("sgd, demo rates scaled (x8)", ["--lr_base_size=32"]),
    ("sgd, demo rates", []),
    ("lamb, rates / 10, scaled (x2.83)", ["--opt=lamb", "--lr_init=0.001", "--lr_max=0.01", "--lr_base_size=32"]),
    ("lars, lr_max 4", ["--opt=lars", "--lr_init=0.4", "--lr_max=4"]),
    ("lars, lr_max 16", ["--opt=lars", "--lr_init=1.6", "--lr_max=16"]),
    ("lars, lr_max 64", ["--opt=lars", "--lr_init=6.4", "--lr_max=64"]),
    ("larc (eta 0.02), demo rates scaled", ["--opt=lars", "--trust_clip=True", "--trust_coefficient=0.02",
                                            "--lr_base_size=32"]),
]


def train_table(data: str, batch_size: int, out: str):
    rows = []
    for name, options in RECIPES:
        folder = os.path.join(out, str(len(rows)))
        cfg = load_config(["--config_path", os.path.join(ROOT, "configs", "demo.yaml"), f"--dataset_path={data}",
                           f"--batch_size={batch_size}", f"--save_checkpoint_path={folder}", "--save_checkpoint_epochs=30"]
                          + options)
        os.makedirs(folder)
        # train's own lines go to a file in its folder (printed if it fails), the table to stdout.
        done = False
        with open(os.path.join(folder, "train.out"), "w") as log:
            start = time.perf_counter()
            try:
                with contextlib.redirect_stdout(log):
                    result = train.run(cfg)
                done = True
            finally:
                if not done:  # the run's own lines, then its error as it is raised
                    log.flush()
                    with open(log.name) as f:
                        sys.stdout.write(f.read())
            seconds = time.perf_counter() - start
        with open(os.path.join(folder, "metrics.jsonl")) as f:
            evals = [r["top_1"] for r in map(json.loads, f) if r.get("kind") == "epoch" and "top_1" in r]
        images = result["images_per_epoch"] * cfg.epoch_size
        rows.append({"recipe": name, "lr_max": f"{train.schedule(cfg, result['steps_per_epoch']).max():.4g}",
                     "steps": result["steps_per_epoch"] * cfg.epoch_size, "best top-1": f"{max(evals):.4f}",
                     "last top-1": f"{evals[-1]:.4f}", "images/s": f"{images / seconds:.0f}"})
    return rows


def step_table(device: torch.device, repeats: int):
    torch.manual_seed(0)
    model = MobileNetV1(class_num=1000, width_mult=1.0).to(device)
    params = [p for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    rows, base = [], None
    for opt in ("momentum", "adamw", "lars", "lamb"):
        for skip in ((False, True) if opt in ("lars", "lamb") else (False,)):
            optimizer = make_optimizer(model, 1e-4, 0.9, 1e-4, device, opt)
            times = []
            for i in range(repeats + 3):
                if skip:
                    optimizer.found_inf = torch.zeros((), device=device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                optimizer.step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= 3:  # the first steps make the state
                    times.append((time.perf_counter() - start) * 1e3)
                optimizer.__dict__.pop("found_inf", None)
            ms = median(times)
            base = ms if base is None else base
            kind = "fused" if optimizer.param_groups[0].get("fused") else "multi-tensor"
            rows.append({"optimiser": opt + (" + found_inf" if skip else ""), "kernels": kind, "ms/step": f"{ms:.2f}",
                         "vs sgd": f"{ms / base:.2f}x"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "train", "step"), default="all")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--data", default="", help="the demo's digits (python -m mobilenet_v1.demo --out DIR); "
                                                   "made in a temporary folder when not given")
    parser.add_argument("--device", default="cpu", help="for the step table: cpu, cuda, auto")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--json", default="", help="write the figures as JSON to this file ('-': stdout)")
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.repeats < 1 or args.threads < 0:
        parser.error(f"--batch_size must be at least 2, --repeats at least 1 and --threads 0 or more, got "
                     f"{args.batch_size}, {args.repeats} and {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    payload = {"machine": machine(), "threads": torch.get_num_threads()}
    print(f"# {payload['machine']}, {payload['threads']} threads")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "train"):
            data = args.data or os.path.join(tmp, "digits")
            if not args.data:
                demo.main(["--out", data])
            payload["train"] = train_table(data, args.batch_size, os.path.join(tmp, "runs"))
            print_table(f"Demo configuration at batch {args.batch_size} (30 epochs)", payload["train"],
                        ["recipe", "lr_max", "steps", "best top-1", "last top-1", "images/s"])
    if args.part in ("all", "step"):
        device = pick_device(args.device)
        payload["step"] = step_table(device, args.repeats)
        print_table(f"Optimiser step on MobileNetV1's 4.2M parameters, {device}", payload["step"],
                    ["optimiser", "kernels", "ms/step", "vs sgd"])
    emit_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
