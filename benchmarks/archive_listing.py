"""Seconds until every one of several processes has an uncached archive's listing, as torchrun's ranks on one
machine each list the training archive at start.

    PYTHONPATH=src python benchmarks/archive_listing.py [--members 100000] [--processes 4] [--runs 3]

Packs a tar of ``--members`` tiny files in 100 class folders (only the headers matter to a listing), then
starts ``--processes`` processes that each list it (``archive.archive_index``) once all are ready, the clock
running from that moment until the last one has its listing. Three ways, each ``--runs`` times with the
listings removed before each run:

- ``one process``: a single process alone, the floor;
- ``shared cache``: the processes share one cache folder, as ranks under one user do: one walks the archive
  while the others wait for its listing (archive._walk_lock) and read it;
- ``own caches``: each process has a cache folder of its own, so each walks the archive, as all of them did
  before the lock (and still do where no lock can be had).

Prints the median seconds of each way and the ratio of ``own caches`` to ``shared cache``.
"""
import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Each process: ready, then wait for the go file, list the archive, done.
WORKER = """
import os, sys, time
from mobilenet_v1.archive import archive_index
archive, ready, go = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
index = archive_index(archive, (".jpeg",))
assert sum(len(files.names) for files in index.values()) > 0
"""


def pack(path, members):
    data = b"x" * 16
    with tarfile.open(path, "w") as tf:
        for i in range(members):
            info = tarfile.TarInfo(f"class_{i % 100:03d}/img_{i:07d}.JPEG")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def timed_run(archive, processes, caches, tmp):
    """Seconds from the go until all ``processes`` have listed ``archive``, process i keeping its listing in
    ``caches[i]`` (emptied first)."""
    for cache in set(caches):
        shutil.rmtree(cache, ignore_errors=True)
    go = os.path.join(tmp, "go")
    if os.path.exists(go):
        os.unlink(go)
    started = []
    for i in range(processes):
        ready = os.path.join(tmp, f"ready{i}")
        if os.path.exists(ready):
            os.unlink(ready)
        env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1", MOBILENET_V1_CACHE=caches[i])
        started.append((subprocess.Popen([sys.executable, "-c", WORKER, archive, ready, go], env=env), ready))
    while not all(os.path.exists(ready) for _, ready in started):
        time.sleep(0.01)
    start = time.perf_counter()
    open(go, "w").close()
    for process, _ in started:
        if process.wait() != 0:
            raise SystemExit(f"a listing process failed (exit {process.returncode})")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name in ("members", "processes", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    with tempfile.TemporaryDirectory() as tmp:
        archive = os.path.join(tmp, "train.tar")
        pack(archive, args.members)
        shared = os.path.join(tmp, "shared")
        ways = {"one process": (1, [shared]),
                "shared cache": (args.processes, [shared] * args.processes),
                "own caches": (args.processes, [os.path.join(tmp, f"own{i}") for i in range(args.processes)])}
        seconds = {name: [] for name in ways}
        for _ in range(args.runs):  # interleaved: a change in the machine's load touches every way alike
            for name, (processes, caches) in ways.items():
                seconds[name].append(timed_run(archive, processes, caches, tmp))
    print(f"archive of {args.members:,} members ({os.cpu_count()} CPUs), {args.processes} processes, "
          f"median of {args.runs} runs")
    for name, times in seconds.items():
        print(f"  {name:13s} {statistics.median(times):7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times)})")
    ratio = statistics.median(seconds["own caches"]) / statistics.median(seconds["shared cache"])
    print(f"  own caches / shared cache: {ratio:.2f}x")


if __name__ == "__main__":
    main()
