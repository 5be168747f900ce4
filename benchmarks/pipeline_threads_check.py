"""GPU check: with ``decode_ahead`` the GPU pipeline decodes on a stream of its own, without waiting
for the stream that crops the decoded images, and nvJPEG writes its outputs whatever the stream
(``data.drain_before_decode``). What keeps a later decode from writing into images that queued crop
kernels still read is ``record_stream`` on the handed-over images (``data.BackgroundBatches``).
This checks it.

One epoch of training batches (crops and flips come from the seed, so they are the same each time) is
read all in one thread (``receive_ahead = 0``, ``decode_ahead = 0``), then with each setting of
``--settings`` (``receive_ahead:decode_ahead``), while each batch's crop kernels queue behind a spin of
``--crop_delay_ms`` on the loader stream and the consumer queues ``--busy_ms`` of matrix products on
its own stream after each batch, as a training step would. A last run does the same with
``record_stream`` turned off: the control, which should differ where the protection is needed. A
batch that differs anywhere beyond ``--atol`` (or is NaN) is counted.

    python benchmarks/pipeline_threads_check.py [--settings 2:0,2:2] [--json out.json]
"""
import argparse
import os
import sys
import tempfile
import time

import torch

from common import configured, emit_json, machine, make_jpeg_folder, pick_device, print_table

from mobilenet_v1.data import BatchedImageLoader


def epoch(loader, busy):
    out = []
    for x, y in loader:
        out.append((x.clone(), y.clone()))
        if busy is not None:
            busy()
    return out


def gpu_work(device, ms):
    """A function that queues about ``ms`` of matrix products on the current stream (None on the CPU,
    where nothing is queued)."""
    if device.type != "cuda":
        return None
    a = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    for _ in range(3):  # cuBLAS's start-up outside the timing
        a @ a
    torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(10):
        a @ a
    torch.cuda.synchronize(device)
    products = max(1, round(ms / ((time.perf_counter() - t) * 100)))

    def busy():
        for _ in range(products):
            a @ a
    return busy


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--settings", default="2:0,2:2",
                   help="comma list of receive_ahead:decode_ahead to compare with 0:0 (all in one thread); the "
                        "last one is also run as the control, without record_stream")
    p.add_argument("--busy_ms", type=float, default=20.0, help="GPU work queued by the consumer after each batch")
    p.add_argument("--crop_delay_ms", type=float, default=5.0,
                   help="GPU spin queued on the loader stream before each batch's crop (CUDA only)")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--device", default="auto")
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs"))
    p.add_argument("--json", nargs="?", const=True, default=None)
    args = p.parse_args()
    device = pick_device(args.device)
    info = make_jpeg_folder(args.data_dir, args.images)
    busy = gpu_work(device, args.busy_ms)

    def loader(receive_ahead, decode_ahead):
        return configured(receive_ahead=receive_ahead, decode_ahead=decode_ahead)(
            args.data_dir, batch_size=args.batch_size, train=True, image_size=224, device=device, seed=3,
            num_workers=args.workers, channels_last=True)

    reference = epoch(loader(0, 0), None)
    if not reference:  # a training epoch drops its last partial batch: fewer files than a batch check nothing
        sys.exit(f"pipeline_threads_check.py: error: {info['files']} JPEGs in {args.data_dir} make no training batch "
                 f"of --batch_size {args.batch_size}: give --images at least {args.batch_size}")
    finish, record_stream = BatchedImageLoader.finish, torch.Tensor.record_stream
    if device.type == "cuda":
        cycles = int(args.crop_delay_ms * 2e6)  # about 2 GHz (H100/H200 SM clocks run 1.6 to 2 GHz)

        def delayed_finish(self, *part):
            torch.cuda._sleep(cycles)  # on the loader stream, current in the cropping thread
            return finish(self, *part)

        BatchedImageLoader.finish = delayed_finish
    settings = args.settings.split(",")
    runs = [(s, False) for s in settings] + [(settings[-1], True)]
    rows, payload = [], {"machine": machine(), "files": info["files"], "batches": len(reference), "settings": {}}
    try:
        for setting, control in runs:
            receive_ahead, decode_ahead = (int(v) for v in setting.split(":"))
            if control:
                torch.Tensor.record_stream = lambda t, stream: None
            try:
                got = epoch(loader(receive_ahead, decode_ahead), busy)
            finally:
                torch.Tensor.record_stream = record_stream
            worst, differing = 0.0, abs(len(got) - len(reference))
            for (x, y), (rx, ry) in zip(got, reference):
                diff = (x - rx).abs().max().item() if x.shape == rx.shape else float("inf")
                worst = max(worst, diff) if diff == diff else float("nan")
                differing += not diff <= args.atol or not torch.equal(y, ry)
            name = setting + (" without record_stream (control)" if control else "")
            payload["settings"][name] = {"differing_batches": differing, "max_abs_diff": worst}
            rows.append({"receive_ahead:decode_ahead": name, "batches": f"{len(got)}/{len(reference)}",
                         "differing": differing, "max |diff|": f"{worst:.2g}"})
            print(rows[-1], flush=True)
    finally:
        BatchedImageLoader.finish = finish
    stress = (f", crops {args.crop_delay_ms:g} ms late, consumer busy {args.busy_ms:g} ms a batch"
              if device.type == "cuda" else "")
    print_table(f"GPU pipeline's threads against one thread, {machine()}: {len(reference)} training batches "
                f"of {args.batch_size} from {info['files']} JPEGs, {args.workers} workers{stress}", rows,
                ["receive_ahead:decode_ahead", "batches", "differing", "max |diff|"])
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
