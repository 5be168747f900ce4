"""The seed's entry point: ``python train.py --dataset cifar10 --dataset_path PATH --device_target CPU``."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from mobilenet_v1.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train"] + sys.argv[1:]))
