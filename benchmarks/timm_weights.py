"""timm's MobileNetV1 weights read here: logits of timm's model against ours loaded from its state dict.

    python benchmarks/timm_weights.py [--json F]

Needs timm (the ``bench`` extra). For each of timm's plain MobileNetV1s, a model with random weights
and BatchNorm statistics made by a few training-mode batches is saved as timm's hub saves it (a bare
``.safetensors``), read by ``mobilenet_v1.load_model``, and both run on the same random images: timm's
with its normalisation (mean and std 0.5), ours with ImageNet's, which the import folds into the first
layer. Also ours on timm's own normalisation before the fold (``mobilenet_v1.mindspore_io.from_timm_state``
alone), which shows that the networks are the same.
"""
import argparse
import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from common import import_timm, run_script  # noqa: E402
from mobilenet_v1 import load_model  # noqa: E402
from mobilenet_v1.mindspore_io import from_timm_state  # noqa: E402
from mobilenet_v1.model import MobileNetV1  # noqa: E402
from mobilenet_v1.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


def main(argv=None) -> int:
    from safetensors.torch import save_file

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    timm = import_timm("timm_weights.py")
    torch.manual_seed(0)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rows = []
    for arch in ("mobilenetv1_100", "mobilenetv1_125"):
        theirs = timm.create_model(arch).train()
        with torch.no_grad():
            for _ in range(3):
                theirs(torch.rand(16, 3, 224, 224) * 2 - 1)
        theirs.eval()
        x = torch.rand(8, 3, 224, 224)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.safetensors")
            save_file({k: v.contiguous() for k, v in theirs.state_dict().items()}, path)
            ours = load_model(path)
        same = MobileNetV1(class_num=ours.class_num, width_mult=ours.width_mult, padding="symmetric").eval()
        same.load_state_dict(from_timm_state(theirs.state_dict(), arch))
        with torch.no_grad():
            want = theirs((x - 0.5) / 0.5)
            got = ours((x - mean) / std)
            unfolded = same((x - 0.5) / 0.5)
        rows.append({"model": arch, "width_mult": ours.width_mult, "padding": ours.padding,
                     "logit_max": float(want.abs().max()),
                     "same_normalisation_max_diff": float((unfolded - want).abs().max()),
                     "folded_max_diff": float((got - want).abs().max()),
                     "top1_agreement": float((got.argmax(1) == want.argmax(1)).float().mean())})
    print(f"timm {timm.__version__}, torch {torch.__version__}; 8 random 224x224 images, random weights")
    print(f"{'timm model':<16} | {'ours':<22} | {'largest logit':>13} | {'same input, diff':>16} | "
          f"{'ImageNet input, diff':>20} | top-1 agree")
    for r in rows:
        ours = f"width {r['width_mult']:g}, {r['padding']}"
        print(f"{r['model']:<16} | {ours:<22} | {r['logit_max']:>13.4g} | "
              f"{r['same_normalisation_max_diff']:>16.3g} | {r['folded_max_diff']:>20.3g} | {r['top1_agreement']:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
