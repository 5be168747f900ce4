"""Cost of the non-finite step guard (``mobilenet_v1.nonfinite``) per training step.

Runs ``train_one_epoch`` on one synthetic batch repeated (already on the device) with and without the
guard, alternating, and prints the median step time of each and their ratio as one JSON line.

    python benchmarks/nonfinite_guard.py --device cuda --batch_size 256 --precision bf16
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch  # noqa: E402
from mobilenet_v1.model import MobileNetV1  # noqa: E402
from mobilenet_v1.nonfinite import NonFiniteGuard  # noqa: E402


class Repeat:
    def __init__(self, batch, n):
        self.batch, self.n = batch, n

    def __len__(self):
        return self.n

    def __iter__(self):
        return (self.batch for _ in range(self.n))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--width_mult", type=float, default=1.0)
    p.add_argument("--precision", default=None, choices=("fp32", "bf16", "fp16"),
                   help="default: bf16 on a GPU, fp32 on the CPU, as train runs")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    if min(a.steps, a.repeats) < 1 or a.batch_size < 2:
        p.error(f"--steps and --repeats must be at least 1 and --batch_size 2 (a batch of one is skipped, as train "
                f"skips it), got {a.steps}, {a.repeats} and {a.batch_size}")
    device = torch.device(a.device)
    a.precision = a.precision or ("bf16" if device.type == "cuda" else "fp32")
    torch.backends.cudnn.benchmark = True
    model = MobileNetV1(1001, a.width_mult).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(model, 0.01, 0.9, 1e-4, device)
    scaler = make_scaler(a.precision, device, 1024.0)
    guard = NonFiniteGuard(model, optimizer, device)  # zero momentum buffers for both runs alike
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size, device=device).contiguous(
        memory_format=torch.channels_last)
    y = torch.randint(0, 1001, (a.batch_size,), device=device)
    criterion = torch.nn.CrossEntropyLoss()
    lrs = [0.01] * a.steps

    def timed(g):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        train_one_epoch(model, Repeat((x, y), a.steps), criterion, optimizer, scaler, lrs, device, a.precision,
                        guard=g)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / a.steps * 1000

    timed(None), timed(guard)  # warm-up: cuDNN autotuning, allocator
    plain, guarded = [], []
    for _ in range(a.repeats):
        plain.append(timed(None))
        guarded.append(timed(guard))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"
    out = {"device": name, "torch": torch.__version__, "threads": torch.get_num_threads(), "width_mult": a.width_mult,
           "batch_size": a.batch_size, "image_size": a.image_size,
           "precision": a.precision, "steps_per_repeat": a.steps, "repeats": a.repeats,
           "ms_per_step_plain": round(statistics.median(plain), 3),
           "ms_per_step_guarded": round(statistics.median(guarded), 3),
           "ratio": round(statistics.median(guarded) / statistics.median(plain), 4),
           "skipped": guard.sync()["total"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
