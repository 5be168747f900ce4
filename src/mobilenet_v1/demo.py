"""The demo data set: scikit-learn's bundled digits written as CIFAR-10 binary folders.

1,797 real 8x8 handwritten digits (16 grey levels), upscaled to 32x32 RGB, split 80/20 with a fixed
seed into ``cifar-10-batches-bin/data_batch_1.bin`` and ``cifar-10-verify-bin/test_batch.bin``.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from .data import CIFAR_EVAL_FOLDER, CIFAR_RECORD, CIFAR_TRAIN_FOLDER, write_cifar_bin


def digits_as_cifar(seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) * (255.0 / 16.0))[:, None]  # (N, 1, 8, 8)
    images = F.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).numpy()
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(labels))
    cut = int(round(0.8 * len(labels)))
    return (images[order[:cut]], labels[order[:cut]]), (images[order[cut:]], labels[order[cut:]])


def write_demo_data(out_dir: str) -> None:
    """The digits as CIFAR-10 binaries under ``out_dir``. A file of those names that holds another number of
    records than the demo's (a CIFAR-10 folder's own data_batch_1.bin, given as --out by a slip) is refused
    before anything is written: digits in its place would leave a data set that mixes the two."""
    (xtr, ytr), (xte, yte) = digits_as_cifar()
    files = [(os.path.join(out_dir, CIFAR_TRAIN_FOLDER, "data_batch_1.bin"), xtr, ytr),
             (os.path.join(out_dir, CIFAR_EVAL_FOLDER, "test_batch.bin"), xte, yte)]
    for path, _, labels in files:
        size = os.path.getsize(path) if os.path.isfile(path) else None
        if size is not None and size != len(labels) * CIFAR_RECORD:
            raise ValueError(f"--out {out_dir}: {path} holds {size} bytes, not the demo's {len(labels)} records "
                             f"of {CIFAR_RECORD} bytes (a data set's own file?): not written over; give another "
                             f"folder")
    for path, images, labels in files:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_cifar_bin(path, images, labels)
    print(f"wrote {len(ytr)} training and {len(yte)} evaluation digits as CIFAR-10 binaries under {out_dir}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mobilenet_v1.demo", description=__doc__)
    p.add_argument("--out", default="data/digits", help="folder to write (default data/digits)")
    a = p.parse_args(argv)
    stdout = sys.stdout
    if argv is None:  # the command line's own process, as cli.main's commands
        from .cli import standard_streams_opened
        from .runtime import NamedOutput

        # `>&-`: sys.stdout None, whose flush below was an AttributeError's traceback; a write to it is now an error
        # naming standard output. `> /dev/full` said "error: [Errno 28] No space left on device" after the digits
        # were written whole, as if they were what did not fit: said as standard output's, as `convert` says it.
        standard_streams_opened()
        sys.stdout = NamedOutput(sys.stdout)
    try:
        write_demo_data(a.out)
        if argv is None:
            sys.stdout.flush()  # here, where its errors are caught, not at the interpreter's exit
    except BrokenPipeError:  # `... | head -0`: the reader took what it wanted and went; said by nothing, as cat
        if argv is not None:  # a Python caller's
            raise
        from .cli import output_reader_gone

        return output_reader_gone()
    except (ValueError, OSError) as e:
        print(f"python -m mobilenet_v1.demo: error: {e}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        from .runtime import missing_extra

        if not missing_extra(e):
            raise
        print(f"python -m mobilenet_v1.demo: error: {missing_extra(e)}", file=sys.stderr)
        return 1
    finally:
        sys.stdout = stdout
    return 0


if __name__ == "__main__":
    sys.exit(main())
