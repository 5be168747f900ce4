"""Seconds from a command's start to its exit, against what importing torch and torchvision alone costs.

    PYTHONPATH=src python benchmarks/startup.py [--runs 5]

Each command runs in a fresh process on a tiny CIFAR-10 set (64 records) and a checkpoint of one
epoch, so its own work is a fraction of a second and the rest is imports. Prints the median of
``--runs`` of each, and the same run's ``python -c "import torch"`` and ``import torch, torchvision``.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
sys.path.insert(0, SRC)

from common import run_script  # noqa: E402
from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, write_cifar_bin  # noqa: E402


def seconds(argv, runs):
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *argv], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for folder, name in ((CIFAR_TRAIN_FOLDER, "data_batch_1.bin"), (CIFAR_EVAL_FOLDER, "test_batch.bin")):
            os.makedirs(os.path.join(tmp, folder))
            y = rng.integers(0, 4, 64)
            write_cifar_bin(os.path.join(tmp, folder, name), rng.integers(0, 256, (64, 3, 32, 32), np.uint8), y)
        run = os.path.join(tmp, "run")
        common = ["--dataset_path", tmp, "--device_target", "CPU", "--num_workers", "0"]
        train = ["-m", "mobilenet_v1", "train", *common, "--class_num", "4", "--width_mult", "0.25",
                 "--image_size", "32", "--epoch_size", "1", "--batch_size", "16", "--save_checkpoint_path", run]
        subprocess.run([sys.executable, *train], env=dict(os.environ, PYTHONPATH=SRC), check=True,
                       stdout=subprocess.DEVNULL)
        rows = [("python -c 'import torch'", ["-c", "import torch"]),
                ("python -c 'import torch, torchvision'", ["-c", "import torch, torchvision"]),
                ("mobilenet-v1 --help", ["-m", "mobilenet_v1", "--help"]),
                ("mobilenet-v1 --version", ["-m", "mobilenet_v1", "--version"]),
                ("mobilenet-v1 info RUN", ["-m", "mobilenet_v1", "info", run]),
                ("mobilenet-v1 eval (CIFAR-10, 64 images)", ["-m", "mobilenet_v1", "eval", *common,
                                                             "--checkpoint_path", run]),
                ("mobilenet-v1 train (CIFAR-10, 4 steps, no checkpoint)", train + ["--save_checkpoint", "False"])]
        print(f"| command | seconds (median of {args.runs}) |\n|---|---|")
        for label, argv in rows:
            print(f"| {label} | {seconds(argv, args.runs):.2f} |")


if __name__ == "__main__":
    sys.exit(run_script(main))
