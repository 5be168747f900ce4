"""CPU inference latency: PyTorch eager, ONNX Runtime fp32 and ONNX Runtime INT8, for our MobileNetV1 and
timm's ``mobilenetv1_100`` (the same network), exported and quantized the same way in the same run; with
``--executorch``, also ExecuTorch programs (``.pte``) on XNNPACK, fp32 and INT8, as phones run them.

    python benchmarks/latency.py                       # table; batch 1 and 32, 224x224, all cores
    python benchmarks/latency.py --json latency.json   # also one JSON object
    python benchmarks/latency.py --executorch          # also ExecuTorch fp32 and INT8

The ExecuTorch programs are made as ``export --file_format PTE`` and ``quantize --program`` make them
(``export.lower_to_executorch``, ``quantize.quantize_program``: ExecuTorch's XNNPACK quantizer), one per
batch size, as a ``.pte`` takes one; XNNPACK's thread pool is set to ``--threads``.

Both models are exported by ``mobilenet_v1.export.to_onnx`` (PyTorch's torch.export-based exporter,
opset 18, dynamic batch) and quantized by ``mobilenet_v1.quantize.quantize_file`` (static INT8, QDQ,
per-channel weights). Latency does not depend on the weights' values, so both start from their
random initialisation, and calibration uses random inputs of the normalised-image scale.

Timing: the variants run in rounds, each variant a block of calls per round, so slow phases of a
shared machine fall on every variant alike; a figure is the median over all timed calls, after
warm-up calls that are not timed. Ratios are given both of those medians and as the median over
rounds of the ratio within a round (robust to load from elsewhere). ``timm`` is needed only here (``pip install -e .[bench]``).
"""
import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from typing import Callable, Dict, List

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from common import import_timm, run_script  # noqa: E402
from mobilenet_v1.benchmark import cpu_name, random_batches, round_ratios, set_threads  # noqa: E402
from mobilenet_v1.benchmark import measure as turns  # noqa: E402
from mobilenet_v1.export import KeptDimsPool, fold_batchnorm, lower_to_executorch, save_onnx, to_onnx  # noqa: E402
from mobilenet_v1.model import MobileNetV1  # noqa: E402
from mobilenet_v1.onnx_io import ExecutorchModel, OnnxModel, x86_without_vnni  # noqa: E402
from mobilenet_v1.quantize import quantize_file, quantize_program  # noqa: E402

EXECUTORCH_KINDS = ("ExecuTorch fp32", "ExecuTorch INT8")


def prepare(name: str, model: torch.nn.Module, folder: str, size: int, threads: int,
            calib_batches: int, reduce_range: bool = False) -> Dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The three runnable forms of one model: eager, ONNX fp32, ONNX INT8."""
    model = model.eval()
    fp32_path = os.path.join(folder, f"{name}.onnx")
    int8_path = os.path.join(folder, f"{name}_int8.onnx")
    t = time.perf_counter()
    save_onnx(to_onnx(model, size, size, batch_size=1, dynamic_batch=True), fp32_path)
    exported = time.perf_counter() - t
    t = time.perf_counter()
    quantize_file(fp32_path, int8_path, random_batches(calib_batches, 8, size, seed=1), reduce_range=reduce_range)
    quantized = time.perf_counter() - t
    print(f"{name}: exported in {exported:.1f} s ({os.path.getsize(fp32_path) / 1e6:.1f} MB), quantized in "
          f"{quantized:.1f} s ({os.path.getsize(int8_path) / 1e6:.1f} MB)", flush=True)

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    return {"PyTorch eager fp32": eager, "ONNX Runtime fp32": OnnxModel(fp32_path, threads),
            "ONNX Runtime INT8": OnnxModel(int8_path, threads)}


def prepare_executorch(name: str, model: torch.nn.Module, folder: str, size: int, batch_sizes: List[int],
                       calib_batches: int) -> Dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """ExecuTorch fp32 and INT8 programs of one model on XNNPACK, one of each per batch size (a .pte's batch
    is fixed): callables that run the program of the batch's size."""
    # Ours as export writes it (BatchNorm folded, the pool XNNPACK takes whole), timm's as it is.
    model = KeptDimsPool(fold_batchnorm(model)).eval() if isinstance(model, MobileNetV1) else model.eval()
    programs: Dict[str, Dict[int, ExecutorchModel]] = {kind: {} for kind in EXECUTORCH_KINDS}
    for batch in batch_sizes:
        t = time.perf_counter()
        with torch.no_grad():
            program = torch.export.export(model, (torch.randn(batch, 3, size, size),))
        fp32_path = os.path.join(folder, f"{name}_b{batch}.pte")
        with open(fp32_path, "wb") as f:
            f.write(lower_to_executorch(program, {}))
        lowered = time.perf_counter() - t
        t = time.perf_counter()
        pt2, int8_path = os.path.join(folder, f"{name}_b{batch}.pt2"), os.path.join(folder, f"{name}_b{batch}_int8.pte")
        program.example_inputs = None  # ProgramModel refuses pickled entries
        torch.export.save(program, pt2)
        # The same number of calibration images as the ONNX file's, in batches of the program's size (a
        # smaller batch would be padded with rows of zeros to it).
        quantize_program(pt2, int8_path, random_batches(max(1, calib_batches * 8 // batch), batch, size, seed=1))
        print(f"{name}, batch {batch}: ExecuTorch fp32 lowered in {lowered:.1f} s "
              f"({os.path.getsize(fp32_path) / 1e6:.1f} MB), INT8 quantized and lowered in "
              f"{time.perf_counter() - t:.1f} s ({os.path.getsize(int8_path) / 1e6:.1f} MB)", flush=True)
        programs["ExecuTorch fp32"][batch] = ExecutorchModel(fp32_path)
        programs["ExecuTorch INT8"][batch] = ExecutorchModel(int8_path)

    def runner(kind: str) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: programs[kind][x.shape[0]].method.execute([x])[0]

    return {kind: runner(kind) for kind in EXECUTORCH_KINDS}


def measure(variants: Dict[str, Callable], batch: int, size: int, rounds: int, per_round: int,
            settle: int) -> Dict[str, List[float]]:
    """``mobilenet-v1 benchmark``'s turns (:func:`mobilenet_v1.benchmark.measure`) on one input of ``batch``
    images, after ``3 * settle`` untimed calls of each variant: each variant's times, all rounds in order."""
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    calls = {k: functools.partial(fn, x) for k, fn in variants.items()}
    for call in calls.values():
        for _ in range(3 * settle):
            call()
    times = turns(calls, rounds, {k: per_round for k in calls}, settle)
    return {k: [t for block in blocks for t in block] for k, blocks in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image_size", type=int, default=224)
    p.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="PyTorch and ONNX Runtime intra-op threads (default: all CPUs)")
    p.add_argument("--calls", type=int, default=300, help="timed calls per variant at batches up to 8 (default 300)")
    p.add_argument("--calls_large", type=int, default=30,
                   help="timed calls per variant at batches above 8 (default 30)")
    p.add_argument("--calib_batches", type=int, default=4, help="random calibration batches of 8 (default 4)")
    p.add_argument("--no_timm", action="store_true", help="skip the timm reference")
    p.add_argument("--reduce_range", action="store_true",
                   help="7-bit INT8 weights (quantize --reduce_range, for x86 CPUs without VNNI)")
    p.add_argument("--executorch", action="store_true",
                   help="also ExecuTorch programs on XNNPACK, fp32 and INT8 (needs the executorch extra)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    a = p.parse_args(argv)
    if a.threads < 1:
        p.error(f"--threads must be at least 1, got {a.threads}")
    if min(a.batch_sizes) < 1 or min(a.calls, a.calls_large, a.calib_batches, a.image_size) < 1:
        p.error(f"--batch_sizes, --calls, --calls_large, --calib_batches and --image_size must be at least 1, got "
                f"{a.batch_sizes}, {a.calls}, {a.calls_large}, {a.calib_batches} and {a.image_size}")
    timm = None if a.no_timm else import_timm("latency.py", "--no_timm")
    kinds = ["PyTorch eager fp32", "ONNX Runtime fp32", "ONNX Runtime INT8"]
    if a.executorch:
        kinds += EXECUTORCH_KINDS
    set_threads(a.threads, a.executorch)  # PyTorch's and XNNPACK's pool: the same threads as ONNX Runtime's
    torch.manual_seed(0)
    models = {"mobilenet_v1 (ours)": MobileNetV1(class_num=1000, width_mult=1.0, padding="same")}
    if not a.no_timm:
        models["timm mobilenetv1_100"] = timm.create_model("mobilenetv1_100", pretrained=False, num_classes=1000)
    import onnxruntime

    env = {"cpu": cpu_name(), "cpus": os.cpu_count(), "threads": a.threads, "python": platform.python_version(),
           "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
           "timm": None if a.no_timm else timm.__version__,
           "date": time.strftime("%Y-%m-%d"), "image_size": a.image_size, "reduce_range": a.reduce_range,
           "x86_without_vnni": x86_without_vnni(),
           "executorch": __import__("executorch.version").version.__version__ if a.executorch else None}
    print(f"{env['cpu']}, {env['cpus']} CPUs, {a.threads} threads; torch {env['torch']}, onnxruntime "
          f"{env['onnxruntime']}, timm {env['timm']}"
          f"{', executorch ' + env['executorch'] if a.executorch else ''}; {a.image_size}x{a.image_size}"
          f"{'; x86 without VNNI' if env['x86_without_vnni'] else ''}"
          f"{'; INT8 weights in 7 bits' if a.reduce_range else ''}", flush=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="latency-") as folder:
        variants: Dict[str, Callable] = {}
        for name, model in models.items():
            for kind, fn in prepare(name.split()[0], model, folder, a.image_size, a.threads,
                                    a.calib_batches, a.reduce_range).items():
                variants[f"{name}|{kind}"] = fn
            if a.executorch:
                for kind, fn in prepare_executorch(name.split()[0], model, folder, a.image_size, a.batch_sizes,
                                                   a.calib_batches).items():
                    variants[f"{name}|{kind}"] = fn
        for batch in a.batch_sizes:
            calls = a.calls if batch <= 8 else a.calls_large
            per_round = 20 if batch <= 8 else 3
            rounds = max(1, calls // per_round)
            t = time.perf_counter()
            times = measure(variants, batch, a.image_size, rounds, per_round, settle=1 if batch > 8 else 5)
            print(f"batch {batch}: {rounds * per_round} timed calls per variant in "
                  f"{time.perf_counter() - t:.0f} s", flush=True)
            for key, ts in times.items():
                model, kind = key.split("|")
                results.append({"model": model, "runtime": kind, "batch": batch, "calls": len(ts),
                                "median_ms": float(np.median(ts)), "p10_ms": float(np.percentile(ts, 10)),
                                "p90_ms": float(np.percentile(ts, 90)), "per_round": per_round,
                                "times_ms": [round(v, 3) for v in ts]})

    def median(model: str, kind: str, batch: int) -> float:
        return next(r["median_ms"] for r in results
                    if r["model"] == model and r["runtime"] == kind and r["batch"] == batch)

    def rounds_of(model: str, kind: str, batch: int) -> List[List[float]]:
        """One variant's timed calls, round by round."""
        r = next(r for r in results if r["model"] == model and r["runtime"] == kind and r["batch"] == batch)
        return np.array(r["times_ms"]).reshape(-1, r["per_round"]).tolist()

    def paired_ratio(model: str, num: str, den: str, batch: int) -> float:
        """Median over rounds of the ratio of two variants' medians in the same round (round_ratios): a
        burst of load from elsewhere slows both sides of a ratio alike, so this resists it better than a
        ratio of overall medians."""
        return round_ratios({"n": rounds_of(model, num, batch), "d": rounds_of(model, den, batch)}, "d")["n"]

    def paired_models(mine: str, other: str, kind: str, batch: int) -> float:
        """As paired_ratio, of one runtime's two models."""
        return round_ratios({"n": rounds_of(mine, kind, batch), "d": rounds_of(other, kind, batch)}, "d")["n"]

    ratios = []
    for model in models:
        for batch in a.batch_sizes:
            fp32 = median(model, "ONNX Runtime fp32", batch)
            ratios.append({"model": model, "batch": batch,
                           "int8_over_ort_fp32": median(model, "ONNX Runtime INT8", batch) / fp32,
                           "int8_over_ort_fp32_paired": paired_ratio(model, "ONNX Runtime INT8",
                                                                     "ONNX Runtime fp32", batch),
                           "ort_fp32_over_eager": fp32 / median(model, "PyTorch eager fp32", batch),
                           "ort_fp32_over_eager_paired": paired_ratio(model, "ONNX Runtime fp32",
                                                                      "PyTorch eager fp32", batch)})
            if a.executorch:
                for kind in EXECUTORCH_KINDS:
                    ratios[-1][f"{kind} / ONNX Runtime fp32"] = median(model, kind, batch) / fp32
                    ratios[-1][f"{kind} / ONNX Runtime fp32, paired"] = paired_ratio(model, kind, "ONNX Runtime fp32",
                                                                                      batch)

    print()
    head = "| model | runtime | " + " | ".join(f"batch {b} (ms)" for b in a.batch_sizes) + " |"
    print(head)
    print("|" + "---|" * (2 + len(a.batch_sizes)))
    for model in models:
        for kind in kinds:
            cells = []
            for b in a.batch_sizes:
                r = next(r for r in results if r["model"] == model and r["runtime"] == kind and r["batch"] == b)
                cells.append(f"{r['median_ms']:.2f} ({r['p10_ms']:.2f}-{r['p90_ms']:.2f})")
            print(f"| {model} | {kind} | " + " | ".join(cells) + " |")
    print()
    for r in ratios:
        print(f"{r['model']}, batch {r['batch']}: INT8 / ONNX fp32 = {r['int8_over_ort_fp32']:.2f} "
              f"(per round: {r['int8_over_ort_fp32_paired']:.2f}), ONNX fp32 / eager = "
              f"{r['ort_fp32_over_eager']:.2f} (per round: {r['ort_fp32_over_eager_paired']:.2f})"
              + "".join(f", {kind} / ONNX fp32 = {r[kind + ' / ONNX Runtime fp32']:.2f} (per round: "
                        f"{r[kind + ' / ONNX Runtime fp32, paired']:.2f})" for kind in EXECUTORCH_KINDS
                        if kind + " / ONNX Runtime fp32" in r))
    if not a.no_timm:  # the same network in each runtime: ours against timm's, per round
        ours, theirs = models
        for kind in kinds:
            print(f"{kind}, ours / timm: " + ", ".join(
                f"batch {b} {paired_models(ours, theirs, kind, b):.3f}" for b in a.batch_sizes))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"env": env, "results": results, "ratios": ratios}, f, indent=1)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main))
