"""Input pipeline throughput: the CPU pipeline (loader workers decode and augment with PIL-free
torchvision ops) against the GPU pipeline (workers read bytes; batched nvJPEG decode, roi_align crop
and resize, flip, normalise on the GPU) over the same JPEG files, training transforms, batch 256.
Images/s of a full pass after one warm-up pass; output is the normalised batch on the device.

    python benchmarks/input_pipeline.py --images 8192
    python benchmarks/input_pipeline.py --images 8192 --auto_augment ta_wide   # also both with TrivialAugment
    python benchmarks/input_pipeline.py --images 8192 --pinned_bytes 3 --stages 0   # pinned bytes, 3 rounds

``--host_work R`` instead times, on the CPU, the GPU pipeline's work per batch in the process that
feeds the model (decode, crop/resize, flip, normalise of a batch of tiny JPEGs, where per-sample Python
and per-call overhead is all there is): with the crops drawn by the loader workers, against drawn in
that process (as before the workers drew them), R alternating rounds each.
"""
import argparse
import dataclasses
import os
import tempfile
import time

from common import emit_json, machine, make_jpeg_folder, median, print_table

import torch
from torchvision.io import ImageReadMode, decode_jpeg

from mobilenet_v1.autoaugment import POLICIES, make_augment
from mobilenet_v1.data import (BatchedImageLoader, EncodedBatch, ImageFolderLoader, collate_encoded, find_images,
                               ignore_in_worker)
from torch.utils.data import DataLoader


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate_of(loader, device, passes):
    rates = []
    for epoch in range(passes + 1):
        loader.set_epoch(epoch)
        sync(device)
        t = time.perf_counter()
        n = 0
        for x, _ in loader:
            n += x.shape[0]
        sync(device)
        if epoch:  # the first pass starts the workers
            rates.append(n / (time.perf_counter() - t))
    return median(rates)


class PinnableBatch(EncodedBatch):
    """An EncodedBatch that the DataLoader's pin thread copies into pinned memory: its bytes, labels and
    the images the workers decoded (the experiment of ``--pinned_bytes``)."""

    def pin_memory(self):
        return dataclasses.replace(self, flat=self.flat.pin_memory(), labels=self.labels.pin_memory(),
                                   decoded=[d.pin_memory() for d in self.decoded])


def collate_pinnable(batch) -> PinnableBatch:
    return PinnableBatch(**vars(collate_encoded(batch)))


def pinned_bytes_loader(root, **kw) -> BatchedImageLoader:
    """The GPU pipeline with the DataLoader's pin thread between the workers and the decode: it receives
    each batch and pins its bytes, so the decode reads pinned memory (one thread that pinned and then
    decoded ran faster than one decoding the workers' shared memory, RESULTS.md, 2026-11-29)."""
    loader = BatchedImageLoader(root, **kw)
    old = loader.loader
    loader.loader = DataLoader(old.dataset, batch_size=old.batch_size, sampler=old.sampler,
                               num_workers=old.num_workers, drop_last=old.drop_last, collate_fn=collate_pinnable,
                               pin_memory=True, persistent_workers=old.num_workers > 0,
                               prefetch_factor=4 if old.num_workers > 0 else None, worker_init_fn=ignore_in_worker)
    return loader


def stages(loader, device):
    """Images/s of one pass in one thread up to each stage of the GPU pipeline, to see which one
    limits it; "pinned" copies each batch's bytes out of the workers' shared memory into pinned
    memory before decoding (is the decode slowed by where its input lives?); "workers idle" decodes
    batches read beforehand (is it slowed by the workers running beside it?)."""
    from mobilenet_v1.data import decode_batch

    modes = ["read (workers -> main)", "+ decode", "+ decode, bytes pinned first", "+ crop/resize/flip/normalise"]
    if device.type != "cuda":
        modes.remove("+ decode, bytes pinned first")
    rates = {}
    for mode in modes:
        loader.set_epoch(7)
        sync(device)
        t = time.perf_counter()
        n = 0
        for batch in loader.loader:
            n += len(batch.kinds)
            if mode == "read (workers -> main)":
                continue
            if mode == "+ decode, bytes pinned first":
                batch.flat = batch.flat.pin_memory()
            images = decode_batch(batch, device)
            if mode.startswith("+ decode"):
                continue
            loader.normalize(loader.transform(images, batch.seeds, batch.draws))
        sync(device)
        rates[mode] = n / (time.perf_counter() - t)
    # The same batches read to the end first, so no worker runs beside the decode: as the workers left
    # them (shared memory), and copied into this process's own memory.
    loader.set_epoch(7)
    held = list(loader.loader)
    for mode in ("+ decode, workers idle, bytes in shared memory", "+ decode, workers idle, bytes copied"):
        if mode.endswith("copied"):
            for batch in held:
                batch.flat = batch.flat.clone()
        sync(device)
        t = time.perf_counter()
        for batch in held:
            decode_batch(batch, device)
        sync(device)
        rates[mode] = sum(len(b.kinds) for b in held) / (time.perf_counter() - t)
    return rates


def decode_only(folder, device, batch):
    samples, _ = find_images(folder)
    datas = []
    for path, _ in samples:
        with open(path, "rb") as f:
            datas.append(torch.frombuffer(bytearray(f.read()), dtype=torch.uint8))
    decode_jpeg(datas[:batch], mode=ImageReadMode.RGB, device=device)
    sync(device)
    t = time.perf_counter()
    for i in range(0, len(datas) - batch + 1, batch):
        decode_jpeg(datas[i:i + batch], mode=ImageReadMode.RGB, device=device)
    sync(device)
    return (len(datas) // batch * batch) / (time.perf_counter() - t)


def host_work(batch_size, rounds, data_dir):
    """Milliseconds per batch of the feeding process's work on tiny images, CPU; see the docstring."""
    from common import natural_image
    from PIL import Image
    from mobilenet_v1.data import decode_batch

    os.makedirs(os.path.join(data_dir, "tiny"), exist_ok=True)
    for i in range(batch_size):
        path = os.path.join(data_dir, "tiny", f"{i:04d}.jpg")
        if not os.path.exists(path):
            Image.fromarray(natural_image(i, 40 + i % 9, 48 - i % 7)).save(path, quality=90)
    cpu = torch.device("cpu")
    loader = BatchedImageLoader(data_dir, batch_size=batch_size, train=True, image_size=8, device=cpu, seed=1,
                                num_workers=0, channels_last=True)
    batch = next(iter(loader.loader))

    def feed(draws):
        t = time.perf_counter()
        images = decode_batch(batch, cpu)
        loader.normalize(loader.transform(images, batch.seeds, draws))
        return (time.perf_counter() - t) * 1e3

    times = {"workers draw the crops": [], "feeding process draws them": []}
    for r in range(rounds):  # alternate which goes first, so neither always runs on a warmer cache
        for name in sorted(times, reverse=bool(r % 2)):
            times[name].append(feed(batch.draws if name.startswith("workers") else None))
    return {k: median(v) for k, v in times.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    p.add_argument("--gpu_workers", default="",
                   help="comma-separated worker counts to time the GPU pipeline with as well, e.g. 8,4,2")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--data_dir", default=os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs"))
    p.add_argument("--json", nargs="?", const=True, default=None)
    p.add_argument("--host_work", type=int, default=0, help="rounds of the host-work comparison (0: skip)")
    p.add_argument("--auto_augment", default="", choices=("",) + POLICIES,
                   help="also time both pipelines with this per-sample policy (as train --auto_augment)")
    p.add_argument("--stages", type=int, default=1, help="0: leave out the per-stage and decode-only rows")
    p.add_argument("--pinned_bytes", type=int, default=0, metavar="R",
                   help="R > 0 (CUDA): the GPU pipeline without and with the bytes pinned by the DataLoader's pin "
                        "thread, alternated over R rounds, medians")
    args = p.parse_args()
    if args.host_work:
        torch.set_num_threads(1)
        ms = host_work(args.batch_size, args.host_work, args.data_dir + "_tiny")
        rows = [{"feeding process, per batch": k, "ms": f"{v:.2f}"} for k, v in ms.items()]
        print_table(f"GPU pipeline's host work in the feeding process, {machine()}: {args.batch_size} JPEGs of "
                    f"about 44x45, decode + crop/resize + flip + normalise on the CPU, one thread, median of "
                    f"{args.host_work} rounds", rows, ["feeding process, per batch", "ms"])
        emit_json(args.json, {"machine": machine(), "host_ms_per_batch": ms})
        return
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    info = make_jpeg_folder(args.data_dir, args.images)
    common = dict(batch_size=args.batch_size, train=True, image_size=args.image_size, device=device, seed=1,
                  num_workers=args.workers, channels_last=True)
    rows, payload = [], {"machine": machine(), "files": info["files"], "mean_kb": info["mean_kb"],
                         "workers": args.workers, "images_per_s": {}}
    policies = [""] + ([args.auto_augment] if args.auto_augment else [])
    for policy in policies:
        for name, cls in (("cpu", ImageFolderLoader), ("gpu", BatchedImageLoader)):
            aa = make_augment(policy) if policy else None
            rate = rate_of(cls(args.data_dir, **common, auto_augment=aa), device, args.passes)
            key = name + (f" + {policy}" if policy else "")
            payload["images_per_s"][key] = rate
            where = "workers decode+augment" if name == "cpu" else "batched on " + device.type
            rows.append({"pipeline": f"{key} ({where})", "images/s": f"{rate:,.0f}"})
            print(rows[-1], flush=True)
    for policy in policies[1:]:
        for name in ("cpu", "gpu"):
            payload[f"{name}_{policy}_over_plain"] = (payload["images_per_s"][f"{name} + {policy}"]
                                                      / payload["images_per_s"][name])
    for workers in [int(w) for w in args.gpu_workers.split(",") if w]:
        rate = rate_of(BatchedImageLoader(args.data_dir, **dict(common, num_workers=workers)), device, args.passes)
        payload["images_per_s"][f"gpu, {workers} workers"] = rate
        rows.append({"pipeline": f"gpu (batched on {device.type}), {workers} workers", "images/s": f"{rate:,.0f}"})
        print(rows[-1], flush=True)
    if args.pinned_bytes and device.type == "cuda":
        rates = {"gpu, alternated with the next": [], "gpu, bytes pinned by the DataLoader's pin thread": []}
        for r in range(args.pinned_bytes):  # alternate which goes first
            for name in sorted(rates, reverse=bool(r % 2)):
                make = pinned_bytes_loader if "pinned" in name else BatchedImageLoader
                rates[name].append(rate_of(make(args.data_dir, **common), device, args.passes))
        for name, values in rates.items():
            payload["images_per_s"][name] = median(values)
            payload.setdefault("rounds", {})[name] = values
            rows.append({"pipeline": f"{name} (median of {len(values)}: "
                                     f"{', '.join(f'{v:,.0f}' for v in values)})", "images/s": f"{median(values):,.0f}"})
            print(rows[-1], flush=True)
    if args.stages:
        gpu_loader = BatchedImageLoader(args.data_dir, **common)
        for stage, rate in stages(gpu_loader, device).items():
            payload["images_per_s"][f"gpu stage: {stage}"] = rate
            rows.append({"pipeline": f"gpu pipeline, one thread, up to: {stage}", "images/s": f"{rate:,.0f}"})
            print(rows[-1], flush=True)
        rate = decode_only(args.data_dir, device, args.batch_size)
        payload["images_per_s"]["decode_only"] = rate
        rows.append({"pipeline": f"decode only, batched decode_jpeg on {device.type}", "images/s": f"{rate:,.0f}"})
    payload["gpu_over_cpu"] = payload["images_per_s"]["gpu"] / payload["images_per_s"]["cpu"]
    print_table(f"Input pipeline, {machine()}: {info['files']} JPEGs 500x375 (mean {info['mean_kb']:.0f} KB), "
                f"RandomResizedCrop {args.image_size} + flip + normalise, batch {args.batch_size}, "
                f"{args.workers} workers", rows, ["pipeline", "images/s"])
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
