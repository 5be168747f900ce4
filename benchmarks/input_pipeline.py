"""Input pipeline throughput: the CPU pipeline (loader workers decode and augment with PIL-free
torchvision ops) against the GPU pipeline (workers read bytes; batched nvJPEG decode, roi_align crop
and resize, flip, normalise on the GPU) over the same JPEG files, training transforms, batch 256; and
the peer of ../shared/ANCHORS.md on them too (torchvision's ImageFolder, PIL decode and transforms in
the loader workers: ``TorchvisionPeer``), with each pipeline's images/s over the peer's ("over peer").
Images/s of a full pass after one warm-up pass; output is the normalised batch on the device.

    python benchmarks/input_pipeline.py --images 8192
    python benchmarks/input_pipeline.py --images 8192 --peer 0                 # without the peer
    python benchmarks/input_pipeline.py --images 8192 --auto_augment ta_wide   # also both with TrivialAugment
    python benchmarks/input_pipeline.py --images 8192 --color_jitter 0.4       # also both with colour jitter
    python benchmarks/input_pipeline.py --images 8192 --stages 0 --pinned_bytes --stacked_crops --rounds 3
                                  # each experiment against the pipeline as it is, alternated over 3 rounds
    python benchmarks/input_pipeline.py --images 8192 --stages 0 --received_inline --decoded_ahead --rounds 3
                                  # the same: batches received in the decoding thread (as before), and
                                  # decoded in a thread of their own, ahead of the crop
    python benchmarks/input_pipeline.py --images 8192 --stages 0 --tensor_per_batch --canvas_per_crop --rounds 3
                                  # the same: each batch's bytes in a tensor of their own (as before), and
                                  # each crop copied into the canvas on its own (as before)
    python benchmarks/input_pipeline.py --images 1024 --archive 3 --passes 1 --listing 100000
                                  # the JPEGs read from their folder and from one .tar of it: listing
                                  # seconds and both pipelines' images/s, alternated over 3 rounds; and
                                  # the listing of 100,000 tiny files from a folder, from a tar and
                                  # as WebDataset shards (each file with its .cls)
    python benchmarks/input_pipeline.py --images 1024 --stages 0 --bicubic --rounds 3 --passes 1
                                  # both pipelines with interpolation bicubic against bilinear, alternated

``--receive R`` instead times how long the feeding process takes to receive a batch from the workers,
read its pages and let it go (the bytes in shared buffers used again, as the package sends them,
against a tensor of their own per batch, as before), R alternating rounds.

``--host_work R`` instead times, on the CPU, the GPU pipeline's work per batch in the process that
feeds the model after the decode (crop/resize, flip, normalise of a batch of tiny decoded JPEGs, where
per-sample Python and per-call overhead is most of what there is), R alternating rounds each: the
package; the crops drawn in that process (as before the loader workers drew them); each crop copied
into the canvas on its own (as before the canvas was gathered); and evaluation's resize and centre crop,
with the images of one size resized together (the package) and image by image (as before), of those
images (63 sizes in a batch of 63 or more) and of as many images of one size. It also counts the ATen operations each
dispatches per batch: on CUDA, each that is not a view is a kernel launch, host time that this CPU's
timing cannot separate from the work itself.
"""
import argparse
import dataclasses
import io
import os
import shutil
import sys
import tarfile
import tempfile
import time

from common import configured, emit_json, machine, make_jpeg_folder, median, pick_device, print_table, run_script

import torch
from torchvision.io import ImageReadMode, decode_jpeg

from mobilenet_v1 import transforms as T
from mobilenet_v1.archive import CACHE_ENV, forget_indexes
from mobilenet_v1.autoaugment import POLICIES, make_augment
from mobilenet_v1.data import (BatchedImageLoader, EncodedBatch, ImageFolderLoader, collate_encoded, encoded_loader,
                               find_images)
from mobilenet_v1.runtime import plural


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


class TorchvisionPeer:
    """The peer of ``../shared/ANCHORS.md`` ("PIL + torchvision transforms, DataLoader with 16 workers"), as
    a torchvision user writes it: ``torchvision.datasets.ImageFolder`` (PIL decode, RGB) with
    RandomResizedCrop(image_size, scale (0.08, 1), ratio (3/4, 4/3)) + RandomHorizontalFlip + PILToTensor
    in the loader workers (uint8, as the anchor's), batches shuffled, the last one dropped, pinned on CUDA;
    then, in this process as the CPU pipeline does, the same last step as ours: to the device, float,
    normalise, channels_last (``transforms.Normalize``). Its workers persist, as ours do, so rate_of's
    warm-up pass is the one that starts them; DataLoader's other settings are its defaults. Takes the
    loaders' keywords (``common``); ``set_epoch`` is for rate_of (shuffle draws anew each pass)."""

    def __init__(self, root, batch_size, image_size, device, seed, num_workers, channels_last=False, **_):
        from torch.utils.data import DataLoader
        from torchvision import datasets, transforms

        augment = transforms.Compose([
            transforms.RandomResizedCrop(image_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)),
            transforms.RandomHorizontalFlip(),
            transforms.PILToTensor(),
        ])
        self.dataset = datasets.ImageFolder(root, transform=augment)
        self.loader = DataLoader(self.dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                 drop_last=True, pin_memory=device.type == "cuda",
                                 persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(seed))
        self.device = device
        self.normalize = T.Normalize(T.IMAGENET_MEAN, T.IMAGENET_STD, device, channels_last)

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        for images, labels in self.loader:
            yield self.normalize(images.to(self.device, non_blocking=True)), labels.to(self.device, non_blocking=True)


PEER = "peer: torchvision ImageFolder + PIL (workers decode+augment)"


class PinnableBatch(EncodedBatch):
    """An EncodedBatch that the DataLoader's pin thread copies into pinned memory: its bytes and the
    images the workers decoded (the experiment of ``--pinned_bytes``)."""

    def pin_memory(self):
        return dataclasses.replace(self, flat=self.flat.pin_memory(), decoded=[d.pin_memory() for d in self.decoded])


def collate_pinnable(batch) -> PinnableBatch:
    return PinnableBatch(**vars(collate_encoded(batch)))


def pinned_bytes_loader(root, **kw) -> BatchedImageLoader:
    """The GPU pipeline with the DataLoader's pin thread between the workers and the decode: it receives
    each batch and pins its bytes, so the decode reads pinned memory (one thread that pinned and then
    decoded ran faster than one decoding the workers' shared memory, RESULTS.md, 2026-11-29). The pin
    thread receives the batches, so the package's own receiving thread is left out."""
    loader = BatchedImageLoader(root, **kw)
    loader.receive_ahead = 0
    old = loader.loader
    loader.loader = encoded_loader(old.dataset, old.batch_size, old.sampler, old.num_workers, old.drop_last,
                                   collate_pinnable, pin_memory=True)
    return loader


PACKAGE_CROP = T.batch_resized_crop
WHOLE_PIXELS = 1 << 25  # the most pixels in one stacked canvas (float32: 400 MB for 3 channels)


def stacked_resized_crop(images, boxes, size, antialias=True, interpolation="bilinear"):
    """The experiment of ``--stacked_crops`` in place of ``transforms.batch_resized_crop``: images that
    share a size are stacked whole (a few copy launches for the group, where the package's canvas of
    crops takes a Python indexing and a launch per crop) and their crops are roi_align regions of
    them, in float32 (positions near 500 px need it: roi_align computes them in its input's type); the
    others go through the package's canvas. Not yet measured: the alternated pairs of 2026-11-29 on an
    H200 ran one build against itself (RESULTS.md's correction of 2026-12-04). (``antialias`` False or
    ``interpolation`` other than bilinear: the package's.)"""
    from torchvision.ops import roi_align

    if not antialias or interpolation != "bilinear":
        return PACKAGE_CROP(images, boxes, size, antialias=antialias, interpolation=interpolation)
    device = images[0].device
    by_size = {}
    for i, (img, (_, _, h, w)) in enumerate(zip(images, boxes)):
        if max(h, w) <= 4 * size and max(img.shape[-2:]) <= max(1024, 4 * size):
            by_size.setdefault(tuple(img.shape), []).append(i)
    parts, alone = [], set(range(len(images)))
    for shape, same in by_size.items():
        per = max(2, WHOLE_PIXELS // (shape[-2] * shape[-1]))
        for group in (same[at:at + per] for at in range(0, len(same), per)):
            if len(group) < 2:
                continue
            alone.difference_update(group)
            canvas = torch.stack([images[i] for i in group]).float()
            # each crop edge to edge, as the package's (a sample past its last row or column reads the image's
            # pixel beside it, where the package's repeats the crop's own: the same work, other values at the edge)
            rois = [(j, left, top, left + w, top + h) for j, (top, left, h, w) in enumerate(boxes[i] for i in group)]
            rois_t = T.to_device_nowait(torch.tensor(rois, dtype=torch.float32), device)
            parts.append((group, roi_align(canvas, rois_t, (size, size), spatial_scale=1.0, sampling_ratio=-1,
                                           aligned=True)))
    if alone:
        rest = sorted(alone)
        parts.append((rest, PACKAGE_CROP([images[i] for i in rest], [boxes[i] for i in rest], size, torch.float32)))
    order = [i for group, _ in parts for i in group]
    out = torch.cat([x for _, x in parts]) if len(parts) > 1 else parts[0][1]
    if order != list(range(len(order))):
        where = torch.empty(len(order), dtype=torch.long)
        where[torch.tensor(order)] = torch.arange(len(order))
        out = out.index_select(0, T.to_device_nowait(where, device))
    return out


def canvas_per_crop(images, boxes, size, dtype=None, antialias=True, interpolation="bilinear"):
    """``transforms.batch_resized_crop`` as it was before its canvas was gathered in batched operations
    (the experiment of ``--canvas_per_crop``): each crop sliced out and copied into a zeroed canvas, a
    Python indexing and a copy launch per crop. The same output, bit for bit. (``antialias`` False or
    ``interpolation`` other than bilinear: the package's.)"""
    from torchvision.ops import roi_align
    from torchvision.transforms.v2 import functional as TF

    if not antialias or interpolation != "bilinear":
        return PACKAGE_CROP(images, boxes, size, dtype, antialias=antialias, interpolation=interpolation)
    device = images[0].device
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    crops = []
    for img, (top, left, h, w) in zip(images, boxes):
        crop = img[:, top:top + h, left:left + w]
        if max(h, w) > 4 * size:
            scale = 2 * size / max(h, w)
            crop = TF.resize(crop, [max(2, round(h * scale)), max(2, round(w * scale))], antialias=True)
        crops.append(crop)
    canvas = torch.zeros((len(crops), 3, max(c.shape[-2] for c in crops) + 1, max(c.shape[-1] for c in crops) + 1),
                         dtype=dtype, device=device)
    rois = []
    for i, crop in enumerate(crops):
        h, w = crop.shape[-2:]
        canvas[i, :, :h, :w] = crop
        canvas[i, :, h, :w] = crop[:, -1]  # the last row and column once more, where the package's clamps
        canvas[i, :, :h + 1, w] = canvas[i, :, :h + 1, w - 1]
        rois.append((i, 0.0, 0.0, w, h))
    work = torch.float32 if dtype == torch.float16 and max(canvas.shape[-2:]) > 1024 else dtype  # as the package
    rois_t = T.to_device_nowait(torch.tensor(rois, dtype=torch.float32), device).to(work)
    return roi_align(canvas.to(work), rois_t, (size, size), spatial_scale=1.0, sampling_ratio=-1,
                     aligned=True).to(dtype)


def canvas_check(root, common):
    """(values that differ, values) between the package's crop and :func:`canvas_per_crop` on one batch of
    the folder's images decoded on the device (float16 on CUDA): the gathered canvas must give the
    per-crop canvas's batch to the bit, on the GPU's roi_align too."""
    loader = BatchedImageLoader(root, **dict(common, num_workers=0))
    part = loader.decode(next(iter(loader.loader)))
    boxes = [T.crop_and_flip(img.shape[-2], img.shape[-1], seed)[0] for img, seed in zip(part.images, part.seeds)]
    ours, before = PACKAGE_CROP(part.images, boxes, loader.image_size), canvas_per_crop(part.images, boxes, loader.image_size)
    return int((ours != before).sum()), ours.numel()


def with_crop(crop, rate):
    """``rate`` (a function(root, passes, **kw) -> images/s) with ``crop`` in place of the package's
    ``transforms.batch_resized_crop`` (data.py calls it through the module)."""
    def run(root, passes, **kw):
        T.batch_resized_crop = crop
        try:
            return rate(root, passes, **kw)
        finally:
            T.batch_resized_crop = PACKAGE_CROP
    return run


def pipeline_with(make=None, **settings):
    """A function(root, passes, **loader kw) -> images/s of the GPU pipeline that ``make(root, **kw)``
    builds (default: the package's loader with these settings, ``common.configured``); none: the
    pipeline as it is."""
    make = make or configured(**settings)

    def rate(root, passes, **kw):
        return rate_of(make(root, **kw), kw["device"], passes)
    return rate


def alternated(experiments, rounds, root, passes, common):
    """{row name: [images/s of each round]} of the GPU pipeline as it is and with each experiment
    (``name -> function(root, passes, **common) -> images/s``), the order turned each round."""
    runs = {"gpu pipeline as it is, alternated with the next": pipeline_with(), **experiments}
    rates = {name: [] for name in runs}
    for r in range(rounds):
        for name in (list(runs) if r % 2 == 0 else list(reversed(list(runs)))):
            rates[name].append(runs[name](root, passes, **common))
    return rates


def stages(loader, device):
    """Images/s of one pass in one thread up to each stage of the GPU pipeline, to see which one
    limits it (each stage is the package's own: ``loader.decode``, ``loader.finish``); "pinned" copies
    each batch's bytes out of the workers' shared memory into pinned memory before decoding (is the
    decode slowed by where its input lives?); "workers idle" decodes batches read beforehand (is it
    slowed by the workers running beside it?)."""
    modes = ["read (workers -> main)", "+ decode", "+ decode, bytes pinned first", "+ crop/resize/flip/normalise"]
    if device.type != "cuda":
        modes.remove("+ decode, bytes pinned first")
    rates = {}
    loader.set_epoch(7)
    for _ in loader.loader:  # an untimed pass first, as rate_of's: it starts the (persistent) workers, which
        pass  # the first stage timed would otherwise count
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
            part = loader.decode(batch)
            if mode.startswith("+ decode"):
                continue
            loader.finish(*part)
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
            loader.decode(batch)
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


def archive_rates(data_dir, rounds, passes, common):
    """{row: [value of each round]}: the seconds to list the folder and its archive (packed once, beside
    it, as ``<data_dir>.tar``; the archive's listing walked anew each round), and images/s of both
    pipelines reading each, the order turned each round."""
    archive = data_dir + ".tar"
    if not os.path.isfile(archive):
        with tarfile.open(archive + ".part", "w") as tf:
            tf.add(data_dir, arcname=os.path.basename(data_dir))
        os.replace(archive + ".part", archive)
    runs = {}
    for where, root in (("folder", data_dir), ("archive", archive)):
        runs[f"listing the {where}, s"] = lambda root=root: listing_seconds(root)
        for name, cls in (("cpu", ImageFolderLoader), ("gpu", BatchedImageLoader)):
            runs[f"{name} pipeline from the {where}, images/s"] = \
                lambda root=root, cls=cls: rate_of(cls(root, **common), common["device"], passes)
    values = {name: [] for name in runs}
    for r in range(rounds):
        for name in (list(runs) if r % 2 == 0 else list(reversed(list(runs)))):
            values[name].append(runs[name]())
            print(f"round {r + 1}: {name}: {values[name][-1]:,.3f}", flush=True)
    return values, os.path.getsize(archive)


def listing_scale(base, files, rounds):
    """{row: [µs a file of each round]} listing ``files`` tiny files (110 bytes, named as ImageNet's, 1,000
    classes) from a folder, from a tar of it and as WebDataset shards (each file and its .cls), made once
    under ``base``: the walk's own cost, the page cache warm."""
    root = os.path.join(base, f"listing_{files}", "train")
    shards = os.path.join(base, f"listing_{files}", "shards")
    if not os.path.isdir(shards):  # WebDataset shards of 1,250 samples (as the Hub's imagenet-1k-wds): .JPEG + .cls
        payload = b"x" * 110
        os.makedirs(shards + ".part", exist_ok=True)
        for n in range(0, files, 1250):
            with tarfile.open(os.path.join(shards + ".part", f"train-{n // 1250:06d}.tar"), "w") as tf:
                for i in range(n, min(n + 1250, files)):
                    for suffix, data in (("JPEG", payload), ("cls", str(i % 1000).encode())):
                        info = tarfile.TarInfo(f"n{i % 1000:08d}_{i}.{suffix}")
                        info.size = len(data)
                        tf.addfile(info, io.BytesIO(data))
        os.replace(shards + ".part", shards)
    if not os.path.isfile(root + ".tar"):
        payload = b"x" * 110
        os.makedirs(root, exist_ok=True)
        with tarfile.open(root + ".tar.part", "w") as tf:
            for i in range(files):
                info = tarfile.TarInfo(f"train/n{i % 1000:08d}/n{i % 1000:08d}_{i}.JPEG")
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                folder = os.path.join(root, f"n{i % 1000:08d}")
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, f"n{i % 1000:08d}_{i}.JPEG"), "wb") as f:
                    f.write(payload)
        os.replace(root + ".tar.part", root + ".tar")
    values = {f"listing {files:,} files from a folder, µs a file": [],
              f"listing {files:,} files from a tar archive, µs a file": [],
              f"listing {files:,} files from a tar archive's kept listing, µs a file": [],
              f"listing {files:,} samples (image + .cls) from WebDataset shards, µs a sample": [],
              f"listing {files:,} samples from WebDataset shards' kept listings, µs a sample": []}
    kept = tempfile.mkdtemp(prefix="mobilenet_v1_listings_")
    for _ in range(rounds):
        for name, where, cache in zip(values, (root, root + ".tar", root + ".tar", shards, shards),
                                      ("", "", kept, "", kept)):
            os.environ[CACHE_ENV] = cache  # "": walked each time; kept: read from the listing kept
            if cache:
                listing_seconds(where)  # the first keeps it
            values[name].append(listing_seconds(where) / files * 1e6)
    os.environ.pop(CACHE_ENV)
    shutil.rmtree(kept)
    return values


def listing_seconds(root):
    forget_indexes()
    t = time.perf_counter()
    find_images(root)
    return time.perf_counter() - t


def receive(data_dir, batch_size, workers, rounds, batches=6):
    """Milliseconds the process that feeds the GPU spends on one batch from the GPU pipeline's workers
    besides decoding it, once the workers are ahead: receiving it (``next`` on its DataLoader), reading
    one byte of each page of its bytes (the page faults the decode's first reads of a new mapping take)
    and letting it go (its buffer back to the worker, or its pages freed). The package (the bytes in
    shared buffers that are used again) against a tensor of their own per batch (before), R alternating
    rounds of ``batches`` batches after one round each not counted; medians."""
    loaders = {name: make(data_dir, batch_size=batch_size, train=True, image_size=224, device=torch.device("cpu"),
                          seed=1, num_workers=workers).loader
               for name, make in (("shared buffers (the package)", BatchedImageLoader),
                                  ("a tensor per batch (before)", configured(shared_buffers=False)))}
    times = {name: [] for name in loaders}
    for r in range(rounds + 1):
        for name in sorted(loaders, reverse=bool(r % 2)):
            it = iter(loaders[name])
            time.sleep(2 + batch_size / 64)  # the workers fill their queue
            for _ in range(min(batches, len(loaders[name]))):
                t = time.perf_counter()
                batch = next(it)
                int(batch.flat[::4096].sum())
                batch.release()
                del batch
                if r:
                    times[name].append((time.perf_counter() - t) * 1e3)
            del it
    return {name: median(v) for name, v in times.items()}


class DispatchCount:
    """Counts the ATen operations dispatched while it is entered (on CUDA, each that is not a view
    launches a kernel), through a TorchDispatchMode."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                counter.ops += 1
                counter.not_views += not func.is_view
                return func(*args, **(kwargs or {}))
        self.ops, self.not_views, self.mode = 0, 0, Mode()

    def __enter__(self):
        self.ops = self.not_views = 0
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


def host_work(batch_size, rounds, data_dir):
    """Milliseconds per batch of the feeding process's work after the decode on tiny images, CPU, and
    the ATen operations it dispatches per batch; see the docstring."""
    from common import natural_image
    from PIL import Image

    os.makedirs(os.path.join(data_dir, "tiny"), exist_ok=True)
    for i in range(batch_size):
        path = os.path.join(data_dir, "tiny", f"{i:04d}.jpg")
        if not os.path.exists(path):
            Image.fromarray(natural_image(i, 40 + i % 9, 48 - i % 7)).save(path, quality=90)
    cpu = torch.device("cpu")
    # Crops of up to 48 pixels to 16: none is pre-shrunk (a crop over 4x the output is), as none of a
    # 500x375 JPEG is at 224.
    loader = BatchedImageLoader(data_dir, batch_size=batch_size, train=True, image_size=16, device=cpu, seed=1,
                                num_workers=0, channels_last=True)
    batch = next(iter(loader.loader))
    part = loader.decode(batch)
    # Contiguous, as nvJPEG returns them (the CPU's decode_jpeg gives a permuted view of its HWC output).
    images = [img.contiguous() for img in part.images]
    variants = {"the package (workers draw the crops)": (PACKAGE_CROP, batch.draws),
                "feeding process draws the crops": (PACKAGE_CROP, None),
                "a canvas copy per crop (before)": (canvas_per_crop, batch.draws)}

    def feed(name):
        T.batch_resized_crop, draws = variants[name]
        try:
            t = time.perf_counter()
            loader.finish(images, part.seeds, draws, part.labels)
            return (time.perf_counter() - t) * 1e3
        finally:
            T.batch_resized_crop = PACKAGE_CROP

    times = {name: [] for name in variants}
    for r in range(rounds):  # alternate the order, so none always runs on a warmer cache
        for name in sorted(times, reverse=bool(r % 2)):
            times[name].append(feed(name))
    ops = {}
    for name in variants:
        with DispatchCount() as count:
            feed(name)
        ops[name] = (count.ops, count.not_views)
    # Evaluation's resize and centre crop, of these images (63 sizes among 63 or more) and of as many of one size.
    one_size = [images[0].clone() for _ in images]
    sizes = plural(len({tuple(img.shape[-2:]) for img in images}), "size")
    evals = {f"evaluation, sizes grouped (the package), {sizes}": lambda: T.batch_resize_center_crop(images, 16),
             f"evaluation, image by image (before), {sizes}": lambda: per_image_eval(images, 16),
             "evaluation, sizes grouped (the package), one size": lambda: T.batch_resize_center_crop(one_size, 16),
             "evaluation, image by image (before), one size": lambda: per_image_eval(one_size, 16)}
    for name in evals:
        times[name] = []
    for r in range(rounds):
        for name in sorted(evals, reverse=bool(r % 2)):
            t = time.perf_counter()
            evals[name]()
            times[name].append((time.perf_counter() - t) * 1e3)
    for name, run in evals.items():
        with DispatchCount() as count:
            run()
        ops[name] = (count.ops, count.not_views)
    return {k: median(v) for k, v in times.items()}, ops


def per_image_eval(images, size):
    """The GPU pipeline's evaluation transform before its sizes were grouped: image by image."""
    return torch.stack([T.resize_center_crop(img, size) for img in images])


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
    p.add_argument("--data_dir", default=None,
                   help="where the JPEGs are made, or reused (default: a folder in the temporary directory)")
    p.add_argument("--jpeg_size", default="500x375", metavar="WxH",
                   help="the JPEGs' width and height; smaller ones make the host's work per image count more")
    p.add_argument("--json", nargs="?", const=True, default=None)
    p.add_argument("--host_work", type=int, default=0, help="rounds of the host-work comparison (0: skip)")
    p.add_argument("--archive", type=int, default=0, metavar="R",
                   help="rounds of reading the JPEGs from their folder and from one .tar archive of it (0: skip)")
    p.add_argument("--listing", type=int, default=0, metavar="N",
                   help="with --archive: also the time to list N tiny files from a folder and from a tar of it")
    p.add_argument("--receive", type=int, default=0, metavar="R",
                   help="rounds of the receive-time comparison (shared buffers or a tensor per batch; 0: skip)")
    p.add_argument("--auto_augment", default="", choices=("",) + POLICIES,
                   help="also time both pipelines with this per-sample policy (as train --auto_augment)")
    p.add_argument("--color_jitter", type=float, default=0.0,
                   help="also time both pipelines with colour jitter of this strength (as train --color_jitter)")
    p.add_argument("--color_jitter_hue", type=float, default=0.0, help="and of this hue (train --color_jitter_hue)")
    p.add_argument("--peer", type=int, default=1, choices=(0, 1),
                   help="0: leave out the peer (torchvision ImageFolder, PIL decode and transforms in the workers)")
    p.add_argument("--stages", type=int, default=1, help="0: leave out the per-stage and decode-only rows")
    p.add_argument("--pinned_bytes", action="store_true",
                   help="CUDA: the GPU pipeline with each batch's bytes pinned by the DataLoader's pin thread "
                        "(and in shared memory of their own per batch, not in the shared buffers)")
    p.add_argument("--stacked_crops", action="store_true",
                   help="the GPU pipeline with stacked_resized_crop (images of one size stacked whole, float32)")
    p.add_argument("--canvas_per_crop", action="store_true",
                   help="the GPU pipeline copying each crop into the canvas on its own (as before)")
    p.add_argument("--received_inline", action="store_true",
                   help="the GPU pipeline receiving the workers' batches in its decoding thread (as before)")
    p.add_argument("--decoded_ahead", action="store_true",
                   help="the GPU pipeline decoding in a thread and stream of its own, 2 batches ahead of the crop")
    p.add_argument("--tensor_per_batch", action="store_true",
                   help="the GPU pipeline with each batch's bytes in a tensor of their own (as before shared buffers)")
    p.add_argument("--bicubic", action="store_true",
                   help="the GPU pipeline with interpolation bicubic (each training crop resized on its own)")
    p.add_argument("--plain_bilinear", action="store_true",
                   help="the GPU pipeline with antialias False (plain bilinear, the seed's resize)")
    p.add_argument("--rounds", type=int, default=3,
                   help="rounds of --pinned_bytes / --stacked_crops / --canvas_per_crop / --received_inline / "
                        "--decoded_ahead / "
                        "--tensor_per_batch / --plain_bilinear / --bicubic against "
                        "the pipeline as it is, alternated (--workers workers; medians)")
    args = p.parse_args()
    if min(args.images, args.batch_size, args.passes, args.rounds) < 1:
        p.error("--images, --batch_size, --passes and --rounds must be at least 1")
    if args.workers < 0:
        p.error(f"--workers must be 0 or more, got {args.workers}")
    try:
        width, height = (int(v) for v in args.jpeg_size.split("x"))
    except ValueError:
        p.error(f"--jpeg_size {args.jpeg_size}: needs WIDTHxHEIGHT, e.g. 500x375")
    if args.data_dir is None:
        args.data_dir = os.path.join(tempfile.gettempdir(), "mobilenet_v1_bench_jpegs" +
                                     ("" if (width, height) == (500, 375) else f"_{width}x{height}"))
    if args.archive:
        device = pick_device(args.device)
        info = make_jpeg_folder(args.data_dir, args.images, size=(height, width))
        common = dict(batch_size=args.batch_size, train=True, image_size=args.image_size, device=device, seed=1,
                      num_workers=args.workers, channels_last=True)
        os.environ[CACHE_ENV] = ""  # the archive's headers walked at each listing, none kept
        values, size = archive_rates(args.data_dir, args.archive, args.passes, common)
        if args.listing:
            values.update(listing_scale(os.path.dirname(args.data_dir), args.listing, args.archive))
        rows = [{"read": name, "median": f"{median(v):,.3f}", "rounds": ", ".join(f"{x:,.3f}" for x in v)}
                for name, v in values.items()]
        print_table(f"The same {info['files']} JPEGs (mean {info['mean_kb']:.0f} KB) from a folder and from one tar "
                    f"archive ({size / 2**20:,.0f} MiB), {machine()}: batch {args.batch_size}, {args.workers} workers, "
                    f"training transforms on {device.type}, {args.archive} alternating rounds", rows,
                    ["read", "median", "rounds"])
        emit_json(args.json, {"machine": machine(), "files": info["files"], "rounds": values,
                              "medians": {k: median(v) for k, v in values.items()}})
        return
    if args.host_work or args.receive:
        if args.host_work:
            torch.set_num_threads(1)
            ms, ops = host_work(args.batch_size, args.host_work, args.data_dir + "_tiny")
            rows = [{"feeding process, per batch": k, "ms": f"{v:.2f}", "ATen ops": ops[k][0], "not views": ops[k][1]}
                    for k, v in ms.items()]
            print_table(f"GPU pipeline's host work in the feeding process, {machine()}: {args.batch_size} JPEGs of "
                        f"about 44x45 decoded beforehand, crop/resize to 16 + flip + normalise on the CPU, one thread, median "
                        f"of {args.host_work} rounds", rows,
                        ["feeding process, per batch", "ms", "ATen ops", "not views"])
            emit_json(args.json, {"machine": machine(), "ms_per_batch": ms,
                                  "aten_ops_per_batch": {k: v[0] for k, v in ops.items()},
                                  "not_views_per_batch": {k: v[1] for k, v in ops.items()}})
        else:
            info = make_jpeg_folder(args.data_dir, args.images, size=(height, width))
            ms = receive(args.data_dir, args.batch_size, args.workers, args.receive)
            key = "bytes cross in"
            print_table(f"Receiving, reading and letting go a batch of the GPU pipeline from {args.workers} workers, "
                        f"{machine()}: batch {args.batch_size} of {info['files']} JPEGs, median of {args.receive} "
                        f"alternating rounds", [{key: k, "ms": f"{v:.2f}"} for k, v in ms.items()], [key, "ms"])
            emit_json(args.json, {"machine": machine(), "ms_per_batch": ms})
        return
    device = pick_device(args.device)
    info = make_jpeg_folder(args.data_dir, args.images, size=(height, width))
    common = dict(batch_size=args.batch_size, train=True, image_size=args.image_size, device=device, seed=1,
                  num_workers=args.workers, channels_last=True)
    machine_label = machine(on_cpu=device.type == "cpu")  # the CPU a --device cpu run timed, not the GPU beside it
    rows, payload = [], {"machine": machine_label, "files": info["files"], "mean_kb": info["mean_kb"],
                         "workers": args.workers, "batch_size": args.batch_size, "image_size": args.image_size,
                         "jpeg_size": args.jpeg_size, "passes": args.passes, "images_per_s": {}}
    jitter = args.color_jitter or args.color_jitter_hue
    compared = {}  # {images_per_s key: its row}, the rows of the peer's transforms, for their ratio to it
    policies = [""] + ([args.auto_augment] if args.auto_augment else []) + (["color_jitter"] if jitter else [])
    for policy in policies:
        for name, cls in (("cpu", ImageFolderLoader), ("gpu", BatchedImageLoader)):
            aa = (make_augment("", color_jitter=args.color_jitter, color_jitter_hue=args.color_jitter_hue)
                  if policy == "color_jitter" else make_augment(policy) if policy else None)
            rate = rate_of(cls(args.data_dir, **common, auto_augment=aa), device, args.passes)
            key = name + (f" + {policy}" if policy else "")
            payload["images_per_s"][key] = rate
            where = "workers decode+augment" if name == "cpu" else "batched on " + device.type
            rows.append({"pipeline": f"{key} ({where})", "images/s": f"{rate:,.0f}"})
            if not policy:
                compared[key] = rows[-1]
            print(rows[-1], flush=True)
        if not policy and args.peer:
            rate = pipeline_with(TorchvisionPeer)(args.data_dir, args.passes, **common)
            payload["images_per_s"]["peer"] = rate
            rows.append({"pipeline": f"{PEER}, normalise on {device.type}", "images/s": f"{rate:,.0f}"})
            compared["peer"] = rows[-1]
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
    experiments = {}
    if args.pinned_bytes:
        if device.type == "cuda":
            experiments["gpu, bytes pinned by the DataLoader's pin thread"] = pipeline_with(pinned_bytes_loader)
        else:
            print("--pinned_bytes: pinned memory needs CUDA; left out", flush=True)
    if args.stacked_crops:
        experiments["gpu, stacked_resized_crop"] = with_crop(stacked_resized_crop, pipeline_with())
    if args.canvas_per_crop:
        experiments["gpu, a canvas copy per crop (before)"] = with_crop(canvas_per_crop, pipeline_with())
        differ, values = canvas_check(args.data_dir, common)
        payload["canvas_check"] = {"differ": differ, "values": values}
        print(f"canvas check on {device.type}: {differ} of {values:,} values differ between the gathered canvas "
              f"and a canvas copy per crop", flush=True)
    if args.received_inline:
        experiments["gpu, batches received in the decoding thread (before)"] = pipeline_with(receive_ahead=0)
    if args.decoded_ahead:
        experiments["gpu, decoded in a thread of its own, 2 ahead of the crop"] = pipeline_with(decode_ahead=2)
    if args.tensor_per_batch:
        experiments["gpu, a tensor per batch (before)"] = pipeline_with(shared_buffers=False)
    if args.plain_bilinear:
        experiments["gpu, antialias False (the seed's plain bilinear)"] = pipeline_with(
            lambda root, **kw: BatchedImageLoader(root, antialias=False, **kw))
    if args.bicubic:
        experiments["gpu, interpolation bicubic (a resize per crop)"] = pipeline_with(
            lambda root, **kw: BatchedImageLoader(root, interpolation="bicubic", **kw))
        experiments["cpu pipeline, interpolation bilinear"] = pipeline_with(
            lambda root, **kw: ImageFolderLoader(root, **kw))
        experiments["cpu pipeline, interpolation bicubic"] = pipeline_with(
            lambda root, **kw: ImageFolderLoader(root, interpolation="bicubic", **kw))
    if experiments:
        for name, values in alternated(experiments, args.rounds, args.data_dir, args.passes, common).items():
            payload["images_per_s"][name] = median(values)
            payload.setdefault("rounds", {})[name] = values
            rows.append({"pipeline": f"{name} (median of {len(values)}: "
                                     f"{', '.join(f'{v:,.0f}' for v in values)})", "images/s": f"{median(values):,.0f}"})
            compared[name] = rows[-1]
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
    columns, peer_note = ["pipeline", "images/s"], ""
    if args.peer:
        payload["over_peer"] = {key: payload["images_per_s"][key] / payload["images_per_s"]["peer"] for key in compared}
        for key, row in compared.items():
            row["over peer"] = f"{payload['over_peer'][key]:.2f}x"
        columns.append("over peer")
        peer_note = "; over peer: images/s over the peer's (the same files, batch, workers and passes)"
    print_table(f"Input pipeline, {machine_label}: {info['files']} JPEGs {width}x{height} "
                f"(mean {info['mean_kb']:.0f} KB), RandomResizedCrop {args.image_size} + flip + normalise, "
                f"batch {args.batch_size}, {args.workers} workers{peer_note}", rows, columns)
    emit_json(args.json, payload)


if __name__ == "__main__":
    sys.exit(run_script(main))
