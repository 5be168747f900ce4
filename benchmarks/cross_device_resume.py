"""A run saved on the CPU continues on the GPU, for each optimiser: fused SGD and fused AdamW on CUDA
load the state of the CPU's multi-tensor path (AdamW's step counts must move to the GPU), RMSprop,
LARS and LAMB as they are (LAMB moves its step counts itself). Prints one line per optimiser: the resume line and the last epoch's loss, or the error.

    python benchmarks/cross_device_resume.py                  # on a GPU machine
    python benchmarks/cross_device_resume.py --second CPU     # the same path on the CPU (a dry run)
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import numpy as np  # noqa: E402

from mobilenet_v1 import train  # noqa: E402
from mobilenet_v1.config import load_config  # noqa: E402
from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, write_cifar_bin  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--second", default="GPU", choices=("GPU", "CPU"), help="where the run continues")
    args = p.parse_args()
    if args.second == "GPU":
        import torch

        if not torch.cuda.is_available():  # else five CPU runs trained for nothing, each then FAILED, exit 0
            p.error("--second GPU (the default) needs a CUDA GPU, and torch sees none here: --second CPU is the "
                    "dry run")
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for folder, name, n in ((CIFAR_TRAIN_FOLDER, "data_batch_1.bin", 256), (CIFAR_EVAL_FOLDER, "test_batch.bin", 64)):
            os.makedirs(os.path.join(tmp, folder))
            write_cifar_bin(os.path.join(tmp, folder, name), rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                            rng.integers(0, 10, n))
        for opt in ("momentum", "adamw", "rmsprop", "lars", "lamb"):
            out = os.path.join(tmp, opt)
            common = [f"--dataset_path={tmp}", f"--opt={opt}", "--lr_max=0.002", "--width_mult=0.25",
                      "--image_size=32", "--batch_size=32", "--num_workers=0", "--warmup_epochs=0", f"--save_checkpoint_path={out}",
                      "--log_interval=0"]
            try:
                train.run(load_config(common + ["--epoch_size=1", "--device_target=CPU"]))
                result = train.run(load_config(common + ["--epoch_size=2", f"--device_target={args.second}",
                                                         "--resume=auto"]))
                print(f"{opt}: CPU -> {args.second}: resumed from {os.path.basename(result['resumed_from'])}, "
                      f"epoch 2 loss {result['last_loss']:.4f}", flush=True)
            except Exception as e:  # noqa: BLE001 - a benchmark line, not a crash
                print(f"{opt}: CPU -> {args.second}: FAILED {type(e).__name__}: {str(e).splitlines()[0][:200]}",
                      flush=True)


if __name__ == "__main__":
    main()
