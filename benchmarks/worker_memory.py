"""Memory each loader worker comes to hold over an epoch of an ImageNet-sized folder, the samples held as
arrays (data.FileSamples / archive.ArchiveImages, as shipped) against the plain list of (str, int) tuples
they were (pytorch/pytorch#13246: a forked worker writes each item's reference count as it reads it, which
copies the pages of the whole list into it over an epoch), and the workers' start (data.start_worker's
gc.freeze) against none (the garbage collector's full collections write to every inherited container).

    PYTHONPATH=src python benchmarks/worker_memory.py [--workers 4] [--total 1281167] [--archive] [--folder N]

Each form runs in a fresh process: the training loader as train builds it (shuffled, persistent workers),
over a synthetic listing of --total paths in 1,000 class folders that are not on disk, so that each item is
read, found missing and passed on as a bad sample (no decoding: what grows is the samples' memory alone).
A worker's growth is its unique memory (USS, /proc/PID/smaps_rollup) at the epoch's end less after its
eighth batch (its batch buffers made by then); the figure for a node is that times 16 workers times 8 processes.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def memory(pid: int) -> dict:
    """A process's RSS, PSS and USS in MB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {"rss": out["Rss"], "pss": out["Pss"], "uss": out["Private_Clean"] + out["Private_Dirty"]}


def listing(total: int, classes: int = 1000, root: str = "/data/imagenet/train"):
    """ImageNet's paths (made up) and labels, as find_images lists them, one at a time."""
    per, extra = divmod(total, classes)
    for c in range(classes):
        cls = f"n{1440764 + 1000 * c:08d}"
        for k in range(per + (c < extra)):
            yield os.path.join(root, cls, f"{cls}_{10026 + 7 * k}.JPEG"), c


def make_folder(root: str, total: int) -> None:
    """``total`` empty files in 1,000 class folders under ``root``, named as :func:`listing` names them."""
    for path, _ in listing(total, root=root):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "wb").close()


def one(form: str, workers: int, total: int, batch: int, root: str = "") -> dict:
    """One epoch with the samples in ``form``: "arrays" (as shipped), "list" (as they were), "archive" (a
    split's .tar members, as shipped), "archive-unfrozen" (the same, the workers' inherited objects left to
    the garbage collector, as they were), "listed" / "listed-unfrozen" (a real folder of empty files at ``root``,
    listed by find_images itself, with what its listing frees before the workers start)."""
    import numpy as np
    import torch
    import mobilenet_v1.data as D
    from mobilenet_v1.archive import ArchiveImages

    # Each form made straight from the listing: no objects freed in between, whose memory in Python's allocator
    # the workers' own new objects would take, and whose pages their writes would copy too (not the samples').
    classes = [f"n{1440764 + 1000 * c:08d}" for c in range(1000)]
    if form in ("list", "archive-unfrozen", "listed-unfrozen"):  # as they were: workers started without gc.freeze
        D.start_worker = D.ignore_in_worker
    if form.startswith("listed"):
        loader = D.ImageFolderLoader(root, batch, True, 224, torch.device("cpu"), 0, workers)
    elif form.startswith("archive"):
        samples = ArchiveImages(["/data/imagenet/train.tar"], np.zeros(total, np.int64),
                                (p[len("/data/imagenet/"):] for p, _ in listing(total)),
                                512 * (2 * np.arange(total) + 1), np.full(total, 110_000),
                                [y for _, y in listing(total)])
    elif form == "arrays":
        samples = D.FileSamples((p for p, _ in listing(total)), [y for _, y in listing(total)])
    else:
        samples = list(listing(total))
        D.as_samples = list  # the data sets kept such a list of their own
    if not form.startswith("listed"):
        D.find_images = lambda root, classes_=None, holdout=None, labels_file="": (samples, classes)
        loader = D.ImageFolderLoader("/data/imagenet/train", batch, True, 224, torch.device("cpu"), 0, workers)
    # The DataLoader itself: the toolkit's loader stops a run after too many unreadable images.
    it = iter(loader.loader)
    began, batches, pids, start = time.perf_counter(), 0, [], {}
    for _ in it:
        batches += 1
        if batches == 8 * workers:  # from here: a worker's buffers of a batch are made by then (the folders' and
            pids = [w.pid for w in it._workers]  # archives' differ: 80 MB against none, whatever their size)
            start = {p: memory(p) for p in pids}
    took = time.perf_counter() - began
    end = {p: memory(p) for p in pids}
    loader.close()
    growth = sorted(end[p]["uss"] - start[p]["uss"] for p in pids)
    return {"form": form, "samples": type(loader.loader.dataset.samples).__name__, "batches": batches,
            "seconds": took, "growth_mb": growth[len(growth) // 2], "main_rss_mb": memory(os.getpid())["rss"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--total", type=int, default=1_281_167)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--archive", action="store_true", help="also a split packed as a .tar (its members' names)")
    p.add_argument("--folder", type=int, default=0, metavar="N",
                   help="also N empty files in a real folder (made in a temporary folder, removed after), listed "
                        "by find_images as train lists a folder")
    p.add_argument("--form", help=argparse.SUPPRESS)  # one form, in a process of its own
    p.add_argument("--root", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.batch < 1 or a.workers < 1:
        p.error(f"--batch and --workers must be at least 1, got {a.batch} and {a.workers}")
    for total in [a.total] + ([a.folder] if a.folder else []):
        if total // a.batch <= 8 * a.workers:  # one() measures from batch 8 x workers on
            p.error(f"{total:,} samples make {total // a.batch} batches of {a.batch}: more than 8 x --workers "
                    f"({8 * a.workers}) are needed")
    if a.form:
        sys.path.insert(0, SRC)
        print(json.dumps(one(a.form, a.workers, a.total, a.batch, a.root)))
        return
    import torch
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {a.total:,} samples, {a.workers} workers, "
          f"batch {a.batch}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        if a.folder:
            make_folder(folder, a.folder)
        for form in (["list", "arrays"] + (["archive-unfrozen", "archive"] if a.archive else [])
                     + (["listed-unfrozen", "listed"] if a.folder else [])):
            total = a.folder if form.startswith("listed") else a.total
            out = subprocess.run([sys.executable, __file__, "--form", form, "--workers", str(a.workers), "--total",
                                  str(total), "--batch", str(a.batch), "--root", folder], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print("| samples held as | data set's samples | worker growth over the epoch (USS, median) | x 16 workers x 8 "
          "processes | epoch s (no decoding) | main RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['form']} | {r['samples']} | {r['growth_mb']:.1f} MB | {r['growth_mb'] * 128 / 1024:.1f} GB | "
              f"{r['seconds']:.1f} | {r['main_rss_mb']:.0f} |")
    print(f"list / arrays, worker growth: {rows[0]['growth_mb'] / max(rows[1]['growth_mb'], 0.1):.0f}x")


if __name__ == "__main__":
    main()
