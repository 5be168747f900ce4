"""Golden output: logits of a fixed model on a fixed input, kept in tests/expect/.

Weights and input come from numpy's seeded generator (not torch's initialisers), so the expectation
changes only when the network computes something else. Regenerate on purpose only:
``MOBILENET_V1_REGENERATE=1 python -m pytest tests/test_golden.py``.
"""
import json
import os

import numpy as np
import torch

from mobilenet_v1.model import MobileNetV1

EXPECT = os.path.join(os.path.dirname(__file__), "expect", "mobilenet_v1_w050_same_64.json")


def fixed_model_and_input():
    rng = np.random.default_rng(2024)
    model = MobileNetV1(class_num=10, width_mult=0.5, padding="same")
    state = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = t
        elif name.endswith("running_var"):
            state[name] = torch.from_numpy(rng.uniform(0.5, 1.5, t.shape).astype(np.float32))
        elif name.endswith(".1.weight"):
            state[name] = torch.from_numpy(rng.uniform(0.8, 1.2, t.shape).astype(np.float32))
        else:
            fan_in = int(np.prod(t.shape[1:])) if t.ndim > 1 else 1
            state[name] = torch.from_numpy((rng.standard_normal(t.shape) / np.sqrt(fan_in)).astype(np.float32))
    model.load_state_dict(state)
    x = torch.from_numpy(rng.standard_normal((2, 3, 64, 64)).astype(np.float32))
    return model.eval(), x


def test_golden_logits():
    model, x = fixed_model_and_input()
    with torch.no_grad():
        logits = model(x).double()
    if os.environ.get("MOBILENET_V1_REGENERATE") == "1":
        os.makedirs(os.path.dirname(EXPECT), exist_ok=True)
        with open(EXPECT, "w") as f:
            json.dump({"logits": logits.tolist()}, f, indent=1)
    with open(EXPECT) as f:
        expect = torch.tensor(json.load(f)["logits"], dtype=torch.float64)
    torch.testing.assert_close(logits, expect, rtol=1e-4, atol=1e-4)
    # the symmetric-padding network computes something else from the same weights
    sym = MobileNetV1(class_num=10, width_mult=0.5, padding="symmetric").eval()
    sym.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (sym(x).double() - expect).abs().max() > 1e-2
