"""Training throughput: our training step against timm's ``mobilenetv1_100`` in the same run, and our
whole ``train`` path end to end from a folder of JPEGs.

Step benchmark: same batch, precision, memory format and compile setting for both, synthetic inputs
already on the device, cuDNN autotuning on for both. Ours runs through ``engine.train_one_epoch``
(the code ``mobilenet-v1 train`` runs: fused SGD on CUDA, no host sync inside the step); timm's step
is the usual autocast / backward / ``torch.optim.SGD`` (foreach) loop of its train.py. Each figure is
the median images/s of ``--windows`` timed windows of ``--steps`` steps after ``--warmup`` steps; ours
and timm's windows alternate, and "paired" is the median of the per-window ratios.

    python benchmarks/train_throughput.py                       # GPU: batch 256, bf16, channels_last
    python benchmarks/train_throughput.py --device cpu         # CPU: batch 32, fp32, channels_last, eager
    python benchmarks/train_throughput.py --device cpu --no-timm --freeze 13,27   # fine-tuning's frozen layers
    python benchmarks/train_throughput.py --device cpu --no-timm --qat          # quantization-aware training
"""
import argparse
import itertools
import os
import sys
import tempfile
import time

from common import emit_json, import_timm, machine, make_jpeg_folder, median, pick_device, print_table, run_script

import torch
import torch.nn.functional as F

from mobilenet_v1.batch_augment import BatchAugment
from mobilenet_v1.data import BackgroundBatches, BatchedImageLoader
from mobilenet_v1.ema import WeightAverage
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteGuard


class Repeat:
    """A loader that yields the same device batch ``n`` times."""

    def __init__(self, x, y, n):
        self.x, self.y, self.n = x, y, n

    def __len__(self):
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            yield self.x, self.y


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_layers(model):
    """The baseline of ``--plain``: PyTorch's ``nn.ReLU6(inplace=True)`` and the padded SAME path in
    training too, i.e. our network before the training-step work of model.py (flipped frame, ReLU6)."""
    model.flip_same = False
    for block in model.network:
        block[2] = torch.nn.ReLU6(inplace=True)
    return model


def ours_stepper(args, device, compile_mode, plain=False, taps=False, ema=False, augment=False, freeze=0, qat=False):
    """Our step, warmed up; returns run(n): images/s of n more steps. ``taps``: compiled, the
    depthwise convs run as sums of their taps (model.depthwise_taps, an experiment). ``ema``: with the
    weight average of ``--ema_decay`` (ema.WeightAverage) updated after every step, as train runs it.
    ``augment``: with torchvision's recipe extras as train runs them: ``--mixup_alpha 0.2
    --cutmix_alpha 1.0 --random_erase 0.25 --clip_grad_norm 5``. ``freeze``: ``--freeze_layers`` (the
    first layers frozen for fine-tuning, MobileNetV1.freeze). ``qat``: quantization-aware (``train --qat
    True``: the INT8 model simulated in float32, :mod:`qat`; eager only, as train runs it)."""
    model = MobileNetV1(class_num=1000, padding=args.padding, qat=qat).freeze(freeze).to(
        device, memory_format=args.memory_format)
    if plain:
        plain_layers(model)
    model.depthwise_taps = taps
    opt = make_optimizer(model, 0.1, 0.9, 1e-4, device)
    precision = "fp32" if qat else args.precision  # as train runs --qat True: fp32, no loss scaler (train.py)
    scaler = make_scaler(precision, device, 1024.0)
    step_model = torch.compile(model, mode=compile_mode) if compile_mode else model
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device).contiguous(
        memory_format=args.memory_format)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    crit = torch.nn.CrossEntropyLoss()
    lrs = [0.1] * max(args.steps, args.warmup)
    # The non-finite step guard that `mobilenet-v1 train` always runs (nonfinite.py), unless --no-guard.
    guard = None if args.no_guard else NonFiniteGuard(model, opt, device)
    average = None
    if ema:
        average = WeightAverage(model, MobileNetV1(class_num=1000, padding=args.padding).to(
            device, memory_format=args.memory_format), 0.9998)
    extras = {}
    if augment:
        batch_aug = BatchAugment(mixup_alpha=0.2, cutmix_alpha=1.0, erase_prob=0.25)
        extras = {"augment": lambda position, x, y: batch_aug(0, position, x, y), "clip_grad_norm": 5.0}
    train_one_epoch(step_model, Repeat(x, y, args.warmup), crit, opt, scaler, lrs, device, precision,
                    guard=guard, ema=average, **extras)

    def run(n):
        sync(device)
        t = time.perf_counter()
        r = train_one_epoch(step_model, Repeat(x, y, n), crit, opt, scaler, lrs, device, precision,
                            guard=guard, ema=average, **extras)
        return r.images / (time.perf_counter() - t)
    return run


def timm_stepper(args, device, compile_mode):
    """timm's step (its train.py loop), warmed up; returns run(n): images/s of n more steps."""
    import timm

    model = timm.create_model("mobilenetv1_100", num_classes=1000).to(device, memory_format=args.memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    step_model = torch.compile(model, mode=compile_mode) if compile_mode else model
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device).contiguous(
        memory_format=args.memory_format)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(step_model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    step_model.train()
    for _ in range(args.warmup):
        step()

    def run(n):
        sync(device)
        t = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        return n * args.batch_size / (time.perf_counter() - t)
    return run


def interleaved(runners, windows, steps):
    """Images/s of each runner over ``windows`` rounds that time every runner once, in turn: on a shared
    machine a slow spell then hits all of them, and the per-round ratios show it."""
    rates = {name: [] for name in runners}
    for _ in range(windows):
        for name, run in runners.items():
            rates[name].append(run(steps))
    return rates


def bench_end_to_end(args, device, folder, pipeline, compile_mode="default"):
    import contextlib
    import io

    from mobilenet_v1 import train
    from mobilenet_v1.config import load_config

    with tempfile.TemporaryDirectory(prefix="e2e_") as out:  # save_checkpoint=False: a folder left behind each run
        cfg = load_config([
            # 1000 classes: the graph of the step benchmark, so a compiled model comes from Inductor's cache
            "--dataset=imagenet2012", f"--dataset_path={folder}", "--class_num=1000",
            f"--batch_size={args.batch_size}", f"--image_size={args.image_size}", f"--epoch_size={args.e2e_epochs}",
            f"--precision={args.precision}", f"--compile={bool(args.e2e_compile)}", "--save_checkpoint=False",
            f"--data_pipeline={pipeline}", f"--num_workers={args.workers}", f"--save_checkpoint_path={out}",
            f"--device_target={'GPU' if device.type == 'cuda' else 'CPU'}", f"--padding={args.padding}",
        ] + ([f"--compile_mode={compile_mode}"] if args.e2e_compile else []))
        with contextlib.redirect_stdout(io.StringIO()):
            result = train.run(cfg)
    steady = result["epoch_seconds"][1:] or result["epoch_seconds"]
    return result["images_per_epoch"] / median(steady)


TIMM_MODES = ("eager", "default")  # the modes timm's step is timed in beside ours


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch_size", type=int, default=None, help="default 256 on GPU, 32 on CPU")
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--precision", default=None, choices=["fp32", "bf16", "fp16"], help="default bf16 GPU, fp32 CPU")
    p.add_argument("--channels_last", type=int, default=1, help="1 (the default of train) or 0 (NCHW)")
    p.add_argument("--padding", default="same", choices=["same", "symmetric"])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--windows", type=int, default=3)
    p.add_argument("--modes", default=None,
                   help="comma list of eager,default,reduce-overhead (compile modes); default GPU: all three, "
                        "CPU: eager")
    p.add_argument("--no-timm", action="store_true")
    p.add_argument("--taps", action="store_true",
                   help="compiled modes: also time ours with the depthwise convs as sums of their taps")
    p.add_argument("--plain", action="store_true",
                   help="also time our network with PyTorch's ReLU6 and padded SAME convs (the before figure)")
    p.add_argument("--no-guard", action="store_true", help="leave out the non-finite step guard (train runs it)")
    p.add_argument("--ema", action="store_true",
                   help="also time our step with the weight average of --ema_decay (as 'ema', against ours)")
    p.add_argument("--augment", action="store_true",
                   help="also time our step with mixup/cutmix 0.2/1.0, random erasing 0.25 and gradient clipping "
                        "(as 'aug', against ours)")
    p.add_argument("--qat", action="store_true",
                   help="also time ours with --qat True (quantization-aware; eager mode only, as train runs it; "
                        "float32 whatever --precision, so on a GPU qat / ours is against ours in bf16)")
    p.add_argument("--freeze", type=lambda v: [int(n) for n in v.split(",") if n], default=[],
                   help="also time the step with these --freeze_layers (comma-separated, e.g. 13,27)")
    p.add_argument("--e2e_images", type=int, default=0, help="JPEGs for the end-to-end run (0: skip)")
    p.add_argument("--e2e_epochs", type=int, default=4)
    p.add_argument("--e2e_compile", type=int, default=1)
    p.add_argument("--e2e_pipelines", default="gpu,cpu")
    p.add_argument("--e2e_stream_priority", default="-1",
                   help="comma list of CUDA stream priorities for the GPU pipeline's loader stream, e.g. "
                        "-1,0 (-1, high, is train's; 0 the default priority)")
    p.add_argument("--e2e_receive_ahead", default=str(BatchedImageLoader.receive_ahead),
                   help="comma list of the GPU pipeline's receive_ahead (batches received from the workers in a "
                        "thread of their own; 0: in the decoding thread, as until 2026-11-29), e.g. 2,0")
    p.add_argument("--e2e_decode_ahead", default=str(BatchedImageLoader.decode_ahead),
                   help="comma list of the GPU pipeline's decode_ahead (batches decoded in a thread and CUDA stream "
                        "of their own, ahead of the crop; 0: decoded and cropped in one thread), e.g. 0,2")
    p.add_argument("--e2e_shared_buffers", default=str(int(BatchedImageLoader.shared_buffers)),
                   help="comma list of the GPU pipeline's shared_buffers (1: the workers' bytes cross in shared "
                        "buffers used again; 0: a tensor per batch, as until 2026-11-30), e.g. 1,0")
    p.add_argument("--e2e_compile_modes", default="default",
                   help="comma list of train's --compile_mode for the end-to-end train, e.g. "
                        "default,reduce-overhead (CUDA graphs: the step's kernel launches then leave the host, and "
                        "its GIL, to the input pipeline)")
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs"))
    p.add_argument("--json", nargs="?", const=True, default=None, help="print JSON (or write it to a file)")
    args = p.parse_args()
    # None is "the device's default"; 0 or less is an error, not the default (``or`` took 0 for None).
    if args.batch_size is not None and args.batch_size < 2:
        p.error(f"--batch_size must be at least 2, got {args.batch_size} (train refuses a batch of one: "
                f"BatchNorm; its step would be skipped and ours timed at 0 images/s)")
    for name in ("steps", "warmup"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.windows < 1:
        p.error(f"--windows must be at least 1, got {args.windows}")

    device = pick_device(args.device)
    gpu = device.type == "cuda"
    args.batch_size = args.batch_size if args.batch_size is not None else (256 if gpu else 32)
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    cl = args.channels_last
    args.memory_format = torch.channels_last if cl else torch.contiguous_format
    args.steps = args.steps if args.steps is not None else (30 if gpu else 5)
    args.warmup = args.warmup if args.warmup is not None else (15 if gpu else 3)
    modes = (args.modes if args.modes is not None else ("eager,default,reduce-overhead" if gpu else "eager")).split(",")
    known = ("eager", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
    if any(mode and mode not in known for mode in modes):
        p.error(f"--modes {args.modes}: each must be one of {', '.join(known)} (or empty: no step benchmark)")
    if not args.no_timm and any(mode in TIMM_MODES for mode in modes):
        import_timm("train_throughput.py", "--no-timm")
    torch.backends.cudnn.benchmark = True

    machine_label = machine(on_cpu=not gpu)  # the CPU a --device cpu run timed, not the GPU beside it
    rows, payload = [], {"machine": machine_label, "batch_size": args.batch_size, "precision": args.precision,
                         "channels_last": bool(cl), "image_size": args.image_size, "padding": args.padding,
                         "step": {}, "end_to_end": {}}
    for mode in modes:
        if not mode:
            continue
        compile_mode = None if mode == "eager" else mode
        runners = {"ours": ours_stepper(args, device, compile_mode)}
        if args.plain:
            runners["plain"] = ours_stepper(args, device, compile_mode, plain=True)
        if args.taps and compile_mode:
            runners["taps"] = ours_stepper(args, device, compile_mode, taps=True)
        if args.ema:
            runners["ema"] = ours_stepper(args, device, compile_mode, ema=True)
        if args.augment:
            runners["aug"] = ours_stepper(args, device, compile_mode, augment=True)
        for n in args.freeze:
            runners[f"freeze{n}"] = ours_stepper(args, device, compile_mode, freeze=n)
        if args.qat and not compile_mode:
            runners["qat"] = ours_stepper(args, device, None, qat=True)
        with_timm = not args.no_timm and mode in TIMM_MODES
        if with_timm:
            runners["timm"] = timm_stepper(args, device, compile_mode)
        rates = interleaved(runners, args.windows, args.steps)
        ours = median(rates["ours"])
        row = {"setting": mode, "ours img/s": f"{ours:,.1f}" if ours < 100 else f"{ours:,.0f}"}
        payload["step"][f"ours_{mode}"] = ours
        payload["step"][f"windows_{mode}"] = rates
        if with_timm:
            theirs = median(rates["timm"])
            paired = median([a / b for a, b in zip(rates["ours"], rates["timm"])])
            payload["step"][f"timm_{mode}"] = theirs
            payload["step"][f"ours_over_timm_paired_{mode}"] = paired
            row.update({"timm img/s": f"{theirs:,.1f}" if theirs < 100 else f"{theirs:,.0f}",
                        "ours / timm": f"{ours / theirs:.3f}", "paired": f"{paired:.3f}"})
        if args.plain:
            plain = median(rates["plain"])
            vs_plain = median([a / b for a, b in zip(rates["ours"], rates["plain"])])
            payload["step"][f"plain_{mode}"] = plain
            payload["step"][f"ours_over_plain_paired_{mode}"] = vs_plain
            row.update({"plain img/s": f"{plain:,.1f}" if plain < 100 else f"{plain:,.0f}",
                        "ours / plain": f"{vs_plain:.3f}"})
        if "taps" in rates:
            taps = median(rates["taps"])
            payload["step"][f"taps_{mode}"] = taps
            payload["step"][f"taps_over_ours_paired_{mode}"] = median([a / b for a, b in zip(rates["taps"], rates["ours"])])
            row.update({"taps img/s": f"{taps:,.0f}", "taps / ours": f"{payload['step'][f'taps_over_ours_paired_{mode}']:.3f}"})
            if with_timm:
                payload["step"][f"taps_over_timm_paired_{mode}"] = median(
                    [a / b for a, b in zip(rates["taps"], rates["timm"])])
                row["taps / timm"] = f"{payload['step'][f'taps_over_timm_paired_{mode}']:.3f}"
        # ours with an addition, against ours
        for variant in ("ema", "aug", "qat") + tuple(f"freeze{n}" for n in args.freeze):
            if variant in rates:
                payload["step"][f"{variant}_{mode}"] = median(rates[variant])
                paired = median([a / b for a, b in zip(rates[variant], rates["ours"])])
                payload["step"][f"{variant}_over_ours_paired_{mode}"] = paired
                row.update({f"{variant} img/s": f"{payload['step'][f'{variant}_{mode}']:,.1f}",
                            f"{variant} / ours": f"{paired:.3f}"})
        rows.append(row)
        print(row, flush=True)
        if args.json not in (None, True, "-"):
            emit_json(args.json, payload)  # keep what is measured if a later setting is cut short
    if "timm_default" in payload["step"]:
        best = max(v for k, v in payload["step"].items() if k.startswith("ours_") and "_over_" not in k)
        payload["step"]["best_ours_vs_timm_compiled"] = best / payload["step"]["timm_default"]
    if rows:
        print_table(f"Training step, {machine_label}: batch {args.batch_size}, {args.image_size}x{args.image_size}, "
                    f"{args.precision}, {'channels_last' if cl else 'NCHW'}, padding {args.padding}, "
                    f"median of {args.windows} x {args.steps} steps", rows,
                    [c for c in ("setting", "ours img/s", "timm img/s", "ours / timm", "paired", "plain img/s",
                                 "ours / plain", "taps img/s", "taps / ours", "taps / timm", "ema img/s",
                                 "ema / ours", "aug img/s", "aug / ours", "qat img/s", "qat / ours")
                     + tuple(c for n in args.freeze for c in (f"freeze{n} img/s", f"freeze{n} / ours"))
                     if any(c in r for r in rows)])

    if args.e2e_images:
        info = make_jpeg_folder(args.data_dir, args.e2e_images)
        e2e_rows = []
        knobs = ((BackgroundBatches, "stream_priority", "loader stream priority", args.e2e_stream_priority),
                 (BatchedImageLoader, "receive_ahead", "received ahead", args.e2e_receive_ahead),
                 (BatchedImageLoader, "decode_ahead", "decoded ahead", args.e2e_decode_ahead),
                 (BatchedImageLoader, "shared_buffers", "shared buffers", args.e2e_shared_buffers))
        defaults = [getattr(cls, attr) for cls, attr, _, _ in knobs]
        compile_modes = (list(dict.fromkeys(m for m in args.e2e_compile_modes.split(",") if m))
                         if args.e2e_compile else ["default"])
        for pipeline, compile_mode in itertools.product(args.e2e_pipelines.split(","), compile_modes):
            variants = [()]
            if pipeline == "gpu":
                variants = list(itertools.product(*[[int(v) for v in values.split(",")] for *_, values in knobs]))
            for values in variants:
                name = pipeline
                for (cls, attr, _, _), value in zip(knobs, values):
                    setattr(cls, attr, value)
                if len(variants) > 1:
                    name = "gpu, " + ", ".join(f"{label} {v}" for (_, _, label, _), v in zip(knobs, values))
                if compile_modes != ["default"]:
                    name += f", compile mode {compile_mode}"
                try:
                    rate = bench_end_to_end(args, device, args.data_dir, pipeline, compile_mode)
                finally:
                    for (cls, attr, _, _), value in zip(knobs, defaults):
                        setattr(cls, attr, value)
                payload["end_to_end"][name] = rate
                e2e_rows.append({"pipeline": name, "train img/s": f"{rate:,.0f}"})
                print(e2e_rows[-1], flush=True)
        print_table(f"End-to-end `train` from {info['files']} JPEGs of 500x375 (mean {info['mean_kb']:.0f} KB), "
                    f"{args.workers} loader workers, compile {bool(args.e2e_compile)}, median epoch after the first",
                    e2e_rows, ["pipeline", "train img/s"])
    emit_json(args.json, payload)


if __name__ == "__main__":
    sys.exit(run_script(main))
