"""The seed's entry point: ``python train.py --dataset cifar10 --dataset_path PATH --device_target CPU``."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from mobilenet_v1.cli import main  # noqa: E402

if __name__ == "__main__":
    # main() reads the command line itself, as for `mobilenet-v1 train`: an argv handed to it is a Python caller's,
    # whose BrokenPipeError, Ctrl-C and closed stdout are the caller's to meet (`python train.py ... | head`
    # ended in "error: [Errno 32] Broken pipe", status 1, the run stopped before its first checkpoint).
    sys.argv.insert(1, "train")
    sys.exit(main())
