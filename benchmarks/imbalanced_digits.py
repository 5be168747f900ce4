"""The demo's digits with some classes cut down, as CIFAR-format binaries: the data set of the
class-balanced sampling figures in RESULTS.md (``--class_balance``).

Each training image of the classes from ``--rare_from`` on is kept with probability ``--keep`` (numpy's
``default_rng(--seed)``, one draw per such image in file order); the evaluation split is copied whole.

    python -m mobilenet_v1.demo --out data/digits
    python benchmarks/imbalanced_digits.py --digits data/digits --out /tmp/digits_imb
    mobilenet-v1 train --config_path configs/demo.yaml --dataset_path /tmp/digits_imb --class_balance 0.5 \\
        --save_checkpoint_path /tmp/imb_0.5
    mobilenet-v1 eval --config_path configs/demo.yaml --dataset_path /tmp/digits_imb \\
        --checkpoint_path /tmp/imb_0.5 --per_class --json
"""
import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import numpy as np  # noqa: E402

from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, read_cifar_bin, write_cifar_bin  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", default="data/digits", help="the demo's data (python -m mobilenet_v1.demo --out ...)")
    p.add_argument("--out", required=True)
    p.add_argument("--rare_from", type=int, default=5, help="the first class cut down (the rest after it too)")
    p.add_argument("--keep", type=float, default=0.1, help="each of their training images' chance of being kept")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    x, y = read_cifar_bin(os.path.join(a.digits, CIFAR_TRAIN_FOLDER, "data_batch_1.bin"))
    rng = np.random.default_rng(a.seed)
    keep = np.array([i for i in range(len(y)) if y[i] < a.rare_from or rng.random() < a.keep])
    for folder in (CIFAR_TRAIN_FOLDER, CIFAR_EVAL_FOLDER):
        os.makedirs(os.path.join(a.out, folder), exist_ok=True)
    write_cifar_bin(os.path.join(a.out, CIFAR_TRAIN_FOLDER, "data_batch_1.bin"), x[keep], y[keep])
    shutil.copy(os.path.join(a.digits, CIFAR_EVAL_FOLDER, "test_batch.bin"),
                os.path.join(a.out, CIFAR_EVAL_FOLDER, "test_batch.bin"))
    print(f"wrote {len(keep)} training images under {a.out}, per class {np.bincount(y[keep]).tolist()} "
          f"(of {np.bincount(y).tolist()}); the evaluation split whole")


if __name__ == "__main__":
    main()
