"""Check: do the GPU pipeline's threads change what it delivers? One epoch of training batches (fixed
crops and flips: they come from the seed) is read all in one thread (``receive_ahead = 0``,
``decode_ahead = 0``), then with each setting of ``--settings``, while the consumer keeps the GPU busy
between batches (``--busy_ms`` of matrix products on the training stream, as a training step would),
so kernels of the pipeline's streams queue behind it. Each batch is compared with the one-thread
batch; a batch that differs anywhere beyond ``--atol`` is counted.

With ``decode_ahead`` the decode runs on a stream of its own and nvJPEG writes its outputs whatever
the stream (``data.drain_before_decode``): this is the check that the crop's kernels, queued on the
loader stream, never read a block that a later decode wrote (``data.BackgroundBatches``).

    python benchmarks/pipeline_threads_check.py [--images 4096] [--settings 2:0,2:2] [--json out.json]
"""
import argparse
import os
import tempfile
import time

import torch

from common import emit_json, machine, make_jpeg_folder, print_table

from mobilenet_v1.data import BatchedImageLoader


def epoch(loader, busy):
    out = []
    for x, y in loader:
        if busy is not None:
            busy()
        out.append((x.clone(), y.clone()))
    return out


def gpu_work(device, ms):
    """A function that queues about ``ms`` of matrix products on the current stream (None on the CPU,
    where nothing is queued)."""
    if device.type != "cuda":
        return None
    a = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
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
                   help="comma list of receive_ahead:decode_ahead to compare with 0:0 (all in one thread)")
    p.add_argument("--busy_ms", type=float, default=20.0, help="GPU work queued by the consumer after each batch")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--device", default="auto")
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs"))
    p.add_argument("--json", nargs="?", const=True, default=None)
    args = p.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    info = make_jpeg_folder(args.data_dir, args.images)

    busy = gpu_work(device, args.busy_ms)

    def loader(receive_ahead, decode_ahead):
        lo = BatchedImageLoader(args.data_dir, batch_size=args.batch_size, train=True, image_size=224, device=device,
                                seed=3, num_workers=args.workers, channels_last=True)
        lo.receive_ahead, lo.decode_ahead = receive_ahead, decode_ahead
        lo.set_epoch(1)
        return lo

    reference = epoch(loader(0, 0), None)
    rows, payload = [], {"machine": machine(), "files": info["files"], "batches": len(reference), "settings": {}}
    for setting in args.settings.split(","):
        receive_ahead, decode_ahead = (int(v) for v in setting.split(":"))
        got = epoch(loader(receive_ahead, decode_ahead), busy)
        worst, differing = 0.0, 0
        for (x, y), (rx, ry) in zip(got, reference):
            diff = (x - rx).abs().max().item() if x.shape == rx.shape else float("inf")
            worst = max(worst, diff)
            differing += diff > args.atol or not torch.equal(y, ry)
        differing += abs(len(got) - len(reference))
        payload["settings"][setting] = {"differing_batches": differing, "max_abs_diff": worst}
        rows.append({"receive_ahead:decode_ahead": setting, "batches": f"{len(got)}/{len(reference)}",
                     "differing": differing, "max |diff|": f"{worst:.2g}"})
        print(rows[-1], flush=True)
    print_table(f"GPU pipeline's threads against one thread, {machine()}: {len(reference)} batches of "
                f"{args.batch_size} from {info['files']} JPEGs, {args.workers} workers, consumer busy "
                f"{args.busy_ms:g} ms a batch", rows, ["receive_ahead:decode_ahead", "batches", "differing", "max |diff|"])
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
