"""GPU checks of the crash-safety work: what nvJPEG does with truncated files, and that a guarded
training step (bf16, fp16, fp32; NaN batches among them; plain, and with the batch augmentations and
gradient clipping of train; SGD, fused AdamW, LARS and LAMB) makes no host sync (CUDA sync debug mode).

    python benchmarks/nonfinite_gpu_check.py
"""
import io, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg
from mobilenet_v1.batch_augment import BatchAugment
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteGuard

if not torch.cuda.is_available():  # else a C++ traceback from the first decode on the GPU
    sys.exit("nonfinite_gpu_check.py: error: needs a CUDA GPU (nvJPEG, CUDA sync debug mode); torch sees none here")
dev = torch.device("cuda")
yy, xx = np.mgrid[0:375, 0:500]
arr = np.stack([(127 + 100 * np.sin(xx * f + yy * g)).astype(np.uint8) for f, g in ((0.01, 0.02), (0.03, 0.01), (0.02, 0.02))], -1)
buf = io.BytesIO(); Image.fromarray(arr).save(buf, "JPEG", quality=90); good = buf.getvalue()
full = decode_jpeg(torch.frombuffer(bytearray(good), dtype=torch.uint8), mode=ImageReadMode.RGB, device=dev)
for cut in (len(good) - 2, len(good) // 2, len(good) // 5):
    t = torch.frombuffer(bytearray(good[:cut]), dtype=torch.uint8)
    for how in ("single", "batched"):
        try:
            img = decode_jpeg(t, mode=ImageReadMode.RGB, device=dev) if how == "single" else \
                decode_jpeg([t, torch.frombuffer(bytearray(good), dtype=torch.uint8)], mode=ImageReadMode.RGB, device=dev)[0]
            torch.cuda.synchronize()
            diff = (img.float() - full.float()).abs().mean().item()
            print(f"nvjpeg {how} cut {cut}/{len(good)}: decoded without error, mean abs diff to full {diff:.2f}")
        except RuntimeError as e:
            print(f"nvjpeg {how} cut {cut}/{len(good)}: raised {str(e).splitlines()[0][:120]}")

class Batches:
    def __init__(self, b): self.b = b
    def __len__(self): return len(self.b)
    def __iter__(self): return iter(self.b)

torch.backends.cudnn.benchmark = True
augment = BatchAugment(mixup_alpha=0.2, cutmix_alpha=1.0, erase_prob=0.25)
# The seed's SGD in each precision, plain and with augmentations and clipping; fused AdamW (--opt adamw),
# which skips through found_inf too. (RMSprop has no fused kernel: its guard syncs once a step, by design.)
cases = [(p, e, "momentum") for e in ("", "augment+clip") for p in ("bf16", "fp16", "fp32")]
cases += [("bf16", "", "adamw"), ("fp16", "", "adamw")]
# LARS and LAMB (optimizers.py) skip through found_inf as well, with torch.where on the device; with fp16
# GradScaler hands it to them too (_step_supports_amp_scaling) rather than reading it back.
cases += [(p, "", o) for o in ("lars", "lamb") for p in ("bf16", "fp16")]
for precision, extras, opt_name in cases:
    kw = {"augment": lambda pos, x, y: augment(0, pos, x, y), "clip_grad_norm": 5.0} if extras else {}
    model = MobileNetV1(1001, 1.0).to(dev, memory_format=torch.channels_last)
    opt = make_optimizer(model, 0.01, 0.9, 1e-4, dev, opt_name)
    scaler = make_scaler(precision, dev, 1024.0)
    guard = NonFiniteGuard(model, opt, dev, max_in_a_row=10)
    x = torch.randn(64, 3, 224, 224, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 1001, (64,), device=dev)
    nan = torch.full_like(x, float("nan"))
    crit = torch.nn.CrossEntropyLoss()
    train_one_epoch(model, Batches([(x, y)] * 3), crit, opt, scaler, [0.01] * 3, dev, precision, guard=guard, **kw)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    err, done = None, []
    try:
        seq = [(x, y), (nan, y), (x, y), (nan, y), (nan, y), (x, y)]
        # The epoch's end reads its figures once (a sync, allowed): done tells where an error came from.
        train_one_epoch(model, Batches(seq), crit, opt, scaler, [0.01] * 6, dev, precision, guard=guard,
                        on_step=lambda i, loss, lr: done.append(i), **kw)
    except RuntimeError as e:
        err = str(e).splitlines()[0]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    counts = guard.sync()
    finite = all(bool(torch.isfinite(v).all()) for v in model.state_dict().values() if v.is_floating_point())
    print(f"{precision}{' ' + extras if extras else ''}{' ' + opt_name if opt_name != 'momentum' else ''}: steps done before any sync {len(done)}/6; sync-debug error: {err}; "
          f"counters {counts}; weights finite {finite}")
