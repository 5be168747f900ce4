"""``mobilenet-v1 benchmark FILE...``: how fast model files run on this machine, each on the runtime it is
made for, timed in one process so that their figures compare. Run on the board or phone-class machine a
model is meant for, it says which file (fp32 or INT8, ONNX or ``.pte``, batch, size) meets a latency budget.

Each file is loaded as ``eval`` and ``predict`` load it: a checkpoint (or a run folder: its newest) runs in
PyTorch on ``--device_target`` as ``eval`` runs it (``precision``, ``channels_last``; ``--compile``); an
``.onnx`` file in ONNX Runtime, a ``.pte`` program in ExecuTorch (XNNPACK), a ``.pt2`` program in
PyTorch and a ``.tflite`` file in LiteRT, on the CPU. Each is handed one batch of its own input, made up, as
the latency does not depend on the pixels: a normalised float (N, 3, H, W) batch (a ``.tflite``'s NHWC), or
uint8 pixels (N, H, W, C) for a file exported with an image input; the time is the file's own call, nothing
of our loaders. ``--threads`` sets the CPU threads of all four runtimes alike (default: PyTorch's count,
where each runtime would otherwise pick its own).

With ``--width_mult`` (a list) the files are made here instead, for choosing the network before training
it: MobileNetV1 at each width and each ``--image_size``, random weights, as ``export`` and ``quantize``
make them (``--formats``: the checkpoint in PyTorch; ONNX, ExecuTorch and TFLite, fp32 and INT8; the
INT8 files calibrated on random inputs, which sets their ranges, not their speed), in a temporary folder
removed afterwards. Each row gives the network's multiply-adds, so latency can be weighed against the
paper's accuracy table for width and resolution.

Timing (as ``benchmarks/latency.py``): the first call is timed alone (a cold start: what an app's first
image waits for after loading; with ``--compile``, the compilation); then warm-up calls, untimed; then
rounds in which each file in turn makes a few untimed calls (the previous file's threads may still spin,
its data fills the caches) and timed ones, so slow phases of a shared machine fall on every file alike.
Figures are medians over all timed calls; a file's ``vs_first`` is the median over rounds of its time an
image over the first file's within the round (per image: a ``.pte``'s fixed batch may differ from the
others').

``--memory`` (after the timing): each file loaded and called in a Python process of its own, which reports
the resident memory it added, loaded and at its peak (:func:`memory_child`).
"""
import argparse
import gc
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import checkpoint as ckpt_io
from .api import model_from_checkpoint
from .config import (MAX_CLASS_NUM, MAX_IMAGE_SIZE, MAX_WIDTH_MULT, CommandParser, add_device_target_option,
                     bool_option, whole_number)
from .engine import autocast, resolve_device, resolve_precision
from .onnx_io import (PIXEL_FORMATS, DeployedModel, ExecutorchModel, OnnxModel, is_deployed_file, is_onnx_file,
                      load_deployed, refuse_gpu)
from .info import macs_if_known
from .runtime import FORMAT_EXTRAS, json_text, network_sized, plural, require_extras
from .tflite_io import is_tflite_file

DEFAULT_SIZE = 224
MAX_SECONDS = 86400.0  # --seconds at most: a day of timed calls a file (1e308 overflowed the count of calls a round)


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module says."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                if line.startswith(("model name", "Model")):  # x86; ARM boards name the board as "Model"
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure(calls: Dict[str, Callable[[], Any]], rounds: int, per_round: Dict[str, int],
            settle: int) -> Dict[str, List[List[float]]]:
    """Milliseconds of each call, per round: in each of ``rounds`` rounds every entry of ``calls`` in turn
    makes ``settle`` untimed calls, then ``per_round[name]`` timed ones."""
    times: Dict[str, List[List[float]]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(settle):
                call()
            taken = []
            for _ in range(per_round[name]):
                t = time.perf_counter()
                call()
                taken.append((time.perf_counter() - t) * 1000.0)
            times[name].append(taken)
    return times


def round_ratios(times: Dict[str, List[List[float]]], reference: str) -> Dict[str, float]:
    """Each entry's median time over ``reference``'s, within each round, and the median of those ratios
    (robust to load from elsewhere that a round's medians share)."""
    ref = [float(np.median(r)) for r in times[reference]]
    return {name: float(np.median([np.median(r) / b for r, b in zip(rounds, ref)])) for name, rounds in times.items()}


@dataclass
class Subject:
    """One file to time: how it runs, its input, and ``call``, one forward pass of that input."""
    file: str
    runtime: str
    weights: str
    input: str
    batch: int
    bytes: int
    load_s: float
    call: Callable[[], Any] = field(repr=False)
    model: Any = field(repr=False)  # what runs the file (a DeployedModel, or the PyTorch model)
    macs: Optional[int] = None  # the network's multiply-adds for one image, where the file says its width
    first_call_ms: float = math.nan
    # what of the options given the file leaves unused ("" for none): --use_ema False of a file whose only weights
    # are an average (checkpoint.weights_note), said as eval and predict say it
    not_used: str = ""

    def row(self) -> Dict[str, Any]:
        """What is reported of it."""
        return {k: getattr(self, k) for k in ("file", "runtime", "weights", "input", "batch", "bytes", "macs",
                                              "load_s", "first_call_ms")}


def _pool(name: str):
    """ExecuTorch's thread-pool call ``name`` (``_unsafe_reset_threadpool``, ``_threadpool_get_thread_count``),
    or None where ExecuTorch is not loaded or has no such call."""
    return getattr(sys.modules.get("executorch.extension.pybindings.portable_lib"), name, None)


def resize_pool(threads: int) -> None:
    """ExecuTorch's XNNPACK thread pool resized to ``threads``, its notes on the CPU and on the reset kept
    off stderr."""
    from .onnx_io import _native_log

    with _native_log([]):
        _pool("_unsafe_reset_threadpool")(threads)


def executorch_threads() -> Optional[int]:
    """The size of ExecuTorch's thread pool, where it says (and ExecuTorch is loaded). The first call of a
    process makes the pool, whose notes on the CPU are kept off stderr as :func:`resize_pool` keeps them."""
    from .onnx_io import _native_log

    count = _pool("_threadpool_get_thread_count")
    if count is None:
        return None
    with _native_log([]):
        return int(count())


def set_threads(threads: int, executorch: bool, asked: bool = True) -> Optional[int]:
    """PyTorch's intra-op threads, and ExecuTorch's XNNPACK thread pool (for ``.pte`` files), ``threads``
    each; ONNX Runtime's are set per session (:class:`onnx_io.OnnxModel`), LiteRT's per interpreter
    (:class:`tflite_io.TfliteModel`). An ExecuTorch that cannot resize
    its pool keeps its own, unless the count was ``asked`` for (an error then). Returns the pool's size
    before, to put back with :func:`resize_pool` (None: not touched)."""
    before = None
    if executorch:
        from .onnx_io import executorch_runtime

        executorch_runtime()
        importlib.import_module("executorch.extension.pybindings.portable_lib")  # loaded: _pool finds it
        if _pool("_unsafe_reset_threadpool") is None:
            if asked:
                raise ValueError(f"--threads {threads}: this ExecuTorch cannot set its thread pool's size (no "
                                 f"_unsafe_reset_threadpool); leave --threads out to time .pte files")
        else:
            before = executorch_threads()
            resize_pool(threads)
    torch.set_num_threads(threads)
    return before


def _deployed_subject(path: str, model: DeployedModel, batch_size: Optional[int], image_size: Optional[int],
                      load_s: float) -> Subject:
    fixed = model.fixed_batch
    if fixed is not None and batch_size is not None and batch_size != fixed:
        raise ValueError(f"--batch_size {batch_size}: {path} takes batches of {fixed} only (its batch was fixed "
                         f"when it was exported; export --batch_size {batch_size} writes one for that batch)")
    batch = fixed or batch_size or 1
    model.check_size(image_size)
    size = image_size or ckpt_io.recorded_image_size(model.metadata) or DEFAULT_SIZE
    hw = model.image_hw or (size, size)
    g = torch.Generator().manual_seed(0)
    if model.image_input:
        x = torch.randint(0, 256, (batch, *hw, PIXEL_FORMATS[model.pixel_format][1]), dtype=torch.uint8, generator=g)
    else:
        x = torch.randn(batch, 3, *hw, generator=g)
    runtime = ("ONNX Runtime, CPU" if isinstance(model, OnnxModel) else "ExecuTorch, XNNPACK"
               if isinstance(model, ExecutorchModel) else "LiteRT, CPU (XNNPACK)"
               if model.kind == "TensorFlow Lite file" else "PyTorch, CPU (.pt2 program)")
    macs = macs_if_known(model.metadata.get("width_mult"), hw, model.class_num)
    # A .tflite is timed on the input as it takes it (NHWC; an int8 input's levels), made once here.
    fed = model.fed(x) if model.kind == "TensorFlow Lite file" else None

    def run() -> Any:
        return model._run(x) if fed is None else model.invoke(fed)

    return Subject(path, runtime, model.weights.split(",")[0], model.input_text(batch, hw), batch,
                   os.path.getsize(path), load_s, run, model, macs)


def _checkpoint_subject(path: str, batch_size: Optional[int], image_size: Optional[int], device: torch.device,
                        precision: str, channels_last: bool, compile_model: bool, use_ema: Optional[bool],
                        load_s_from: float) -> Subject:
    # A run folder's newest may be pruned by a train running there before it is read or its size taken (a bare
    # "[Errno 2]" of the file benchmark chose, most times beside a train saving every step): its newest then.
    path, (ckpt, file_bytes) = ckpt_io.read_newest(path, lambda f: (ckpt_io.load_file(f), os.path.getsize(f)))
    model, args = model_from_checkpoint(ckpt, path, use_ema is not False)
    size = image_size or ckpt_io.recorded_image_size(ckpt.get("config")) or DEFAULT_SIZE
    batch = batch_size or 1
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format).eval()
    weights = "fp32" + (", INT8 simulated (quantization-aware)" if model.quant is not None else "")
    if compile_model:
        model = torch.compile(model)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.to(device=device, memory_format=memory_format)
    cuda = device.type == "cuda"

    def call():
        with torch.inference_mode(), autocast(device, precision):
            out = model(x)
        if cuda:
            torch.cuda.synchronize(device)
        return out

    where = f"PyTorch, {'GPU' if cuda else 'CPU'}, {precision}{', channels_last' if channels_last else ''}" \
            f"{', compiled' if compile_model else ''}"
    which = ckpt_io.which_weights(ckpt, use_ema is not False)  # "ema" or "trained" where it holds both
    # A file whose only weights are an average (convert's of a run's, average's of averages) is named so, as export
    # names it in its metadata: "(ema)" as a run checkpoint's row says, whatever --use_ema (not_used says that).
    shown = which or ("ema" if ckpt_io.average_only(ckpt) else "")
    return Subject(path, where, weights + (f" ({shown})" if shown else ""), f"float ({batch}, 3, {size}, {size})",
                   batch, file_bytes, time.perf_counter() - load_s_from, call, model,
                   macs_if_known(args["width_mult"], (size, size), args["class_num"]),
                   not_used="" if which else ckpt_io.weights_note(ckpt, use_ema is not False))


def load_subject(path: str, batch_size: Optional[int] = None, image_size: Optional[int] = None,
                 device_target: str = "CPU", precision: str = "auto", channels_last: bool = True,
                 compile_model: bool = False, use_ema: Optional[bool] = None, threads: int = 0) -> Subject:
    """``path`` loaded as eval loads it, with its input (:class:`Subject`). ``batch_size`` and ``image_size``
    None: the file's fixed ones, else 1 and what it records (else 224)."""
    resolved = ckpt_io.resolve_checkpoint_path(path)
    start = time.perf_counter()
    if is_deployed_file(resolved):
        refuse_gpu(resolved, device_target, "time")
        model = load_deployed(resolved, threads)
        return _deployed_subject(resolved, model, batch_size, image_size, time.perf_counter() - start)
    device = resolve_device(device_target)
    return _checkpoint_subject(path, batch_size, image_size, device, resolve_precision(precision, device),
                               channels_last, compile_model, use_ema, start)


FORMATS = ("pytorch", "onnx", "onnx_int8", "pte", "pte_int8", "tflite", "tflite_fp16", "tflite_int8")


def random_batches(count: int, batch: int, size: int, seed: int = 1) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` calibration batches of random normalised-scale inputs (labels 0): the ranges they set are
    not a trained model's, which changes an INT8 file's accuracy, not its speed."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield torch.randn(batch, 3, size, size, generator=g), torch.zeros(batch, dtype=torch.long)


def make_variants(folder: str, widths: Sequence[float], sizes: Sequence[int], formats: Sequence[str],
                  batch_size: int, class_num: int = 1000, padding: str = "same") -> List[str]:
    """The files of MobileNetV1 at each width and size, random weights, in ``folder``, as ``export`` and
    ``quantize`` make them: ``mobilenet_v1_{width}_{size}.ckpt`` (``pytorch``), ``.onnx`` (dynamic batch) and
    ``_int8.onnx``, ``.pte`` and ``_int8.pte`` (batch ``batch_size``; the INT8 program from a static-batch
    ``.pt2``), ``.tflite``, ``_fp16.tflite`` (float16 weights) and ``_int8.tflite`` (batch ``batch_size``); the
    INT8 files calibrated on 4 batches of random inputs. Progress goes to stderr."""
    from .export import export_checkpoint
    from .model import MobileNetV1
    from .quantize import quantize_file, quantize_program

    # Every format's packages before any file is made: the last format's missing runtime was said after the
    # others' exports and quantizations (helper-288).
    require_extras(*sorted({m for f in formats if f != "pytorch" for m in FORMAT_EXTRAS[f.split("_")[0].upper()]}))
    made = []
    for width in widths:
        for size in sizes:
            # (an error on the way names width_mult and class_num where they make it run out of memory)
            with network_sized(width, class_num, batch_size, size):
                start = time.perf_counter()
                stem = os.path.join(folder, f"mobilenet_v1_{width!r}_{size}")  # TF-slim's names: mobilenet_v1_1.0_224
                with torch.random.fork_rng():  # the caller's random state left as it was
                    torch.manual_seed(0)
                    model = MobileNetV1(class_num=class_num, width_mult=width, padding=padding)
                ckpt_io.atomic_save({"model": model.state_dict(),
                                     "model_args": {"class_num": class_num, "width_mult": width, "padding": padding},
                                     "config": {"dataset": "imagenet2012", "image_size": size}}, stem + ".ckpt")
                files = {"pytorch": stem + ".ckpt"}
                if "onnx" in formats or "onnx_int8" in formats:
                    files["onnx"] = export_checkpoint(stem + ".ckpt", stem, batch_size=batch_size)["path"]
                if "onnx_int8" in formats:
                    quantize_file(files["onnx"], stem + "_int8.onnx", random_batches(4, 8, size))
                    files["onnx_int8"] = stem + "_int8.onnx"
                if "pte" in formats:
                    files["pte"] = export_checkpoint(stem + ".ckpt", stem, batch_size=batch_size,
                                                     file_format="PTE")["path"]
                if "pte_int8" in formats:
                    pt2 = export_checkpoint(stem + ".ckpt", stem, batch_size=batch_size, dynamic_batch=False,
                                            file_format="PT2")["path"]
                    quantize_program(pt2, stem + "_int8.pte", random_batches(max(1, 32 // batch_size), batch_size,
                                                                         size))
                    files["pte_int8"] = stem + "_int8.pte"
                if "tflite" in formats or "tflite_int8" in formats:
                    files["tflite"] = export_checkpoint(stem + ".ckpt", stem, batch_size=batch_size,
                                                        file_format="TFLITE")["path"]
                if "tflite_fp16" in formats:
                    files["tflite_fp16"] = export_checkpoint(stem + ".ckpt", stem + "_fp16", batch_size=batch_size,
                                                             file_format="TFLITE", float16=True)["path"]
                if "tflite_int8" in formats:
                    from .tflite_quant import quantize_tflite

                    quantize_tflite(files["tflite"], stem + "_int8.tflite", random_batches(4, 8, size))
                    files["tflite_int8"] = stem + "_int8.tflite"
                made += [files[f] for f in formats]
                print(f"benchmark: made {os.path.basename(stem)} ({', '.join(formats)}) in "
                      f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return made


def machine(threads: int, subjects: Sequence[Subject]) -> Dict[str, Any]:
    """What the figures were measured on: CPU, cores, threads, the runtimes' versions, a GPU used."""
    info: Dict[str, Any] = {"cpu": cpu_name(), "cpus": os.cpu_count(), "arch": platform.machine(),
                            "threads": threads, "python": platform.python_version(), "torch": torch.__version__,
                            "date": time.strftime("%Y-%m-%d")}
    runtimes = {s.runtime.split(",")[0] for s in subjects}
    if "ONNX Runtime" in runtimes:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    if "ExecuTorch" in runtimes:
        from executorch import version

        info["executorch"] = version.__version__
        info["executorch_threads"] = executorch_threads()  # its pool's own size where it could not be set
    if "LiteRT" in runtimes:
        from importlib.metadata import version

        info["ai_edge_litert"] = version("ai-edge-litert")
    if any("GPU" in s.runtime for s in subjects):
        info["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device())
    return info


def run(subjects: Sequence[Subject], seconds: float, rounds: int, warmup: int) -> List[Dict[str, Any]]:
    """Time ``subjects`` (module docstring): about ``seconds`` of timed calls each, over ``rounds`` rounds;
    a row of figures per subject, in order."""
    for s in subjects:
        t = time.perf_counter()
        s.call()
        s.first_call_ms = (time.perf_counter() - t) * 1000.0
    per_call = {}
    for s in subjects:  # warm-up, and how long a call takes, to share the time out
        taken = []
        for _ in range(warmup):
            t = time.perf_counter()
            s.call()
            taken.append(time.perf_counter() - t)
        per_call[s.file] = float(np.median(taken))
    per_round = {s.file: max(1, round(seconds / rounds / max(per_call[s.file], 1e-6))) for s in subjects}
    times = measure({s.file: s.call for s in subjects}, rounds, per_round, settle=2)
    per_image = {s.file: [[t / s.batch for t in r] for r in times[s.file]] for s in subjects}
    ratios = round_ratios(per_image, subjects[0].file)
    rows = []
    for s in subjects:
        every = np.concatenate([np.asarray(r) for r in times[s.file]])
        median = float(np.median(every))
        row = s.row()
        row.update(calls=int(every.size), median_ms=median, p10_ms=float(np.percentile(every, 10)),
                   p90_ms=float(np.percentile(every, 90)), images_per_s=s.batch * 1000.0 / median,
                   vs_first=ratios[s.file])
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ memory

def _status_kb(field: str) -> Optional[int]:
    """An entry of Linux's /proc/self/status in kB (VmRSS: resident now; VmHWM: its peak), None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (VmHWM) to what it holds now: Linux's clear_refs 5."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _max_rss_kb() -> int:
    """The process's peak resident memory as getrusage says it (kB; macOS gives bytes)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


_CHILD = "import sys; from mobilenet_v1.benchmark import memory_child; sys.exit(memory_child(sys.argv[1]))"
_MARK = "mobilenet-v1 memory: "  # the child's result line, told apart from anything else on its stdout
MEMORY_TIMEOUT_S = 1800  # a child that takes longer (a hung runtime) is given up on


def memory_child(spec: str) -> int:
    """In a process of its own: the runtime a file needs imported, then the file loaded as :func:`load_subject`
    loads it and called ``calls`` times; prints (after :data:`_MARK`) one JSON object of the resident memory
    (MB) it added: its peak while loading (``init_mb``) and over the calls (``peak_mb``), over the
    ``baseline_mb`` of the process with its runtime imported (as TensorFlow Lite's benchmark_model reports
    init and overall), less the library files' pages mapped in meanwhile (Linux). A ``.pt2`` program's
    loading, and ``--compile``, import much of PyTorch on first use: that counts. Off Linux, where the peak
    cannot be reset, ``baseline_mb`` is the imports' peak and only what rises past it counts."""
    opts = json.loads(spec)
    path, calls, threads = opts.pop("path"), opts.pop("calls"), opts.pop("threads")
    pte = ckpt_io.is_executorch_program(path)
    set_threads(threads, executorch=pte, asked=opts.pop("asked"))
    if is_onnx_file(path):
        importlib.import_module("onnxruntime")
    elif is_tflite_file(path):  # by content, as load_subject knows it
        importlib.import_module("ai_edge_litert.interpreter")
    gc.collect()
    exact = _reset_peak() and _status_kb("VmHWM") is not None

    def peak() -> int:
        """The peak so far, less the pages of files (the runtimes' libraries) mapped in since the start:
        how many of those a first run faults in depends on what the page cache holds, not on the model."""
        if not exact:
            return _max_rss_kb()
        return _status_kb("VmHWM") - max(0, (_status_kb("RssFile") or 0) - files)

    files = _status_kb("RssFile") or 0
    base = _status_kb("VmRSS") if exact else _max_rss_kb()
    subject = load_subject(path, threads=threads, **opts)
    init = peak()
    cuda = isinstance(subject.model, torch.nn.Module) and any(t.is_cuda for t in subject.model.parameters())
    for _ in range(calls):
        subject.call()
    if cuda:
        torch.cuda.synchronize()
    # the peak over the calls is at least loading's (VmHWM's own is; library pages mapped in during the
    # calls, taken off the whole, could put it below)
    out = {"baseline_mb": base / 1024, "init_mb": (init - base) / 1024,
           "peak_mb": (max(init, peak()) - base) / 1024,
           "method": "VmHWM reset before loading, less the RssFile added" if exact else
           "ru_maxrss: growth past the peak the imports reached, a lower bound"}
    if cuda:
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(_MARK + json.dumps(out), flush=True)
    return 0


def memory_footprint(path: str, calls: int, threads: int, asked: bool, **load: Any) -> Dict[str, Any]:
    """:func:`memory_child` of ``path`` in a new Python process (one file's memory, none of the others'
    this process holds); ``load``: :func:`load_subject`'s options. A ValueError naming the file where the
    child fails."""
    import subprocess

    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    spec = json.dumps({"path": path, "calls": calls, "threads": threads, "asked": asked, **load})
    # -P: the working folder is not put on the child's path (a random.py there would shadow the library's)
    try:
        done = subprocess.run([sys.executable, "-P", "-c", _CHILD, spec], capture_output=True, text=True, env=env,
                              timeout=MEMORY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ValueError(f"--memory: {path}: its process took over {MEMORY_TIMEOUT_S} s and was ended") from None
    found = [line[len(_MARK):] for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not found:
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise ValueError(f"--memory: {path} could not be measured in a process of its own: {said}")
    return json.loads(found[-1])


def markdown_table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A Markdown table of ``head`` and the rows of ``body`` (cells as text), columns padded to line up
    (also what the scripts in benchmarks/ print)."""
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(b, widths)) + " |" for b in body]
    return "\n".join(lines)


def _ratio(value: float) -> str:
    """A file's time over the first's: three decimals, or three significant digits below 0.1, so that files
    far faster than the first (a checkpoint in eager PyTorch first, say) do not all read 0.001 or 0.000."""
    return f"{value:.3f}" if value >= 0.1 else f"{value:.3g}"


def table(rows: Sequence[Dict[str, Any]]) -> str:
    """The rows as a Markdown table, one line per file."""
    head = ["file", "runs in", "weights", "input", "MB", "MMACs", "load s", "first call ms", "median ms", "p10 ms",
            "p90 ms", "images/s", "per image / first's"]
    body = [[r["file"], r["runtime"], r["weights"], r["input"],
             f"{r['bytes'] / 1e6:.2f}",
             "-" if r["macs"] is None else f"{r['macs'] / 1e6:.1f}", f"{r['load_s']:.2f}",
             f"{r['first_call_ms']:.2f}", f"{r['median_ms']:.3f}", f"{r['p10_ms']:.3f}", f"{r['p90_ms']:.3f}",
             f"{r['images_per_s']:.1f}", _ratio(r['vs_first'])] for r in rows]
    if any("memory" in r for r in rows):
        head += ["init MB", "peak MB"]
        for b, r in zip(body, rows):
            m = r.get("memory") or {}
            b += [f"{m[k]:.1f}" if k in m else "-" for k in ("init_mb", "peak_mb")]
    return markdown_table(head, body)


def _numbers(text: str, kind, option: str, most: float) -> List:
    """A comma-separated list of ``kind`` values (ints or floats), each above 0 and at most ``most`` (a network
    past it overflowed torch's int64 in a traceback), or an error naming ``option``."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and 0 < v <= most for v in values):
        raise argparse.ArgumentTypeError(f"{option} {text!r}: needs numbers above 0 and at most {most:g}, separated "
                                         f"by commas")
    return list(dict.fromkeys(values))


def main(argv: Sequence[str]) -> int:
    p = CommandParser(prog="mobilenet-v1 benchmark", description=(
        "How fast model files run here: a checkpoint in PyTorch, .onnx in ONNX Runtime, .pte in ExecuTorch, .pt2 "
        "in PyTorch, .tflite in LiteRT, timed in one process, in turns, so that their figures compare. With "
        "--width_mult, files of MobileNetV1 at those widths and --image_size sizes are made first (random "
        "weights), to choose a network for a device before training it."))
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="checkpoints (or run folders: the newest), .onnx, .pte, .pt2 or .tflite files")
    p.add_argument("--width_mult", default=None, metavar="A[,B...]",
                   help="instead of FILEs: MobileNetV1 at these widths (the paper's alpha: 0.25,0.5,0.75,1.0), "
                        "made here with random weights as export and quantize make files")
    p.add_argument("--formats", default=None, metavar="F[,F...]",
                   help=f"with --width_mult: the files made of each network, of {', '.join(FORMATS)} "
                        f"(default onnx,onnx_int8; pte and pte_int8 need the executorch extra, tflite, tflite_fp16 "
                        f"and tflite_int8 the tflite one)")
    p.add_argument("--class_num", type=whole_number, default=None,
                   help="with --width_mult: classifier outputs (default 1000)")
    p.add_argument("--batch_size", type=whole_number, default=None,
                   help="images a call (default: a file's fixed batch, else 1); a file whose batch was fixed at "
                        "export takes only its own")
    p.add_argument("--image_size", default=None, metavar="N[,M...]",
                   help="input size (default: a file's fixed size, else the size it records, else 224); with "
                        "--width_mult, the sizes to make (the paper's 128,160,192,224)")
    p.add_argument("--threads", type=whole_number, default=None,
                   help="CPU threads of PyTorch, ONNX Runtime, ExecuTorch and LiteRT alike (default: PyTorch's count, "
                        f"here {torch.get_num_threads()})")
    p.add_argument("--seconds", type=float, default=5.0,
                   help="timed seconds a file, over the rounds (default 5, at most a day)")
    p.add_argument("--rounds", type=whole_number, default=5, help="rounds of turns (default 5)")
    p.add_argument("--warmup", type=whole_number, default=10,
                   help="untimed calls a file before the rounds, at least 1: their median shares --seconds out "
                        "(default 10)")
    add_device_target_option(p, "auto", "where a checkpoint's model runs (default auto: the GPU when CUDA is "
                                        "present); an exported file runs on the CPU")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=None,
                   help="a checkpoint's autocast precision (default auto: bf16 on a GPU, fp32 on the CPU)")
    p.add_argument("--channels_last", type=bool_option, default=None, metavar="True|False",
                   help="a checkpoint's memory format (default True, as train and eval run it)")
    p.add_argument("--compile", action="store_true", default=None, help="a checkpoint's model through torch.compile")
    p.add_argument("--use_ema", type=bool_option, default=None, metavar="True|False",
                   help="a checkpoint with a weight average: time that (True, the default) or the trained weights "
                        "(the same network: the same time)")
    p.add_argument("--memory", action="store_true",
                   help="also the resident memory each file adds, loaded (init) and at its peak over --warmup "
                        "calls, measured in a Python process of its own after the timing")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    a = p.parse_args(list(argv))
    for name in ("batch_size", "threads", "rounds", "class_num"):
        value = getattr(a, name)
        if value is not None and value < 1:
            p.error(f"--{name} must be at least 1, got {value}")
    if a.class_num is not None and a.class_num > MAX_CLASS_NUM:
        p.error(f"--class_num must be at most {MAX_CLASS_NUM:,}, got {a.class_num}")
    if not 0 < a.seconds <= MAX_SECONDS or a.warmup < 1:  # (NaN fails the comparison)
        p.error(f"--seconds must be a number above 0 (at most {MAX_SECONDS:.0f}, a day) and --warmup at least 1")
    if a.memory and sys.platform == "win32":
        p.error("--memory: measured on Linux and macOS only (Windows has no getrusage)")
    try:
        sizes = _numbers(a.image_size, int, "--image_size", MAX_IMAGE_SIZE) if a.image_size is not None else None
        widths = _numbers(a.width_mult, float, "--width_mult", MAX_WIDTH_MULT) if a.width_mult is not None else None
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    formats = [f.strip() for f in (a.formats or "onnx,onnx_int8").split(",") if f.strip()]
    if widths is None:
        if not a.files:
            p.error("give model FILEs to time, or --width_mult to make MobileNetV1 files of those widths")
        if sizes is not None and len(sizes) > 1:
            p.error(f"--image_size {a.image_size}: one size for FILEs (a list is for --width_mult)")
        unused = [f"--{k}" for k in ("formats", "class_num") if getattr(a, k) is not None]
        if unused:
            p.error(f"{', '.join(unused)}: for --width_mult only")
    elif a.files:
        p.error("give FILEs or --width_mult, not both")
    elif not formats or any(f not in FORMATS for f in formats):
        p.error(f"--formats {a.formats}: each one of {', '.join(FORMATS)}")
    if widths is None:  # no folder of its own: nothing to leave behind when the process is killed
        return _time(a, a.files, sizes[0] if sizes else None)
    from .cli import unwound_by_sigterm

    with unwound_by_sigterm(), tempfile.TemporaryDirectory(prefix="mobilenet_v1_benchmark-") as folder:
        made = make_variants(folder, widths, sizes or [DEFAULT_SIZE], list(dict.fromkeys(formats)),
                             a.batch_size or 1, a.class_num or 1000)
        return _time(a, made, None, short_names=True)


def _time(a: argparse.Namespace, files: Sequence[str], image_size: Optional[int],
          short_names: bool = False) -> int:
    """Load, time and report ``files`` (main's options ``a``); ``short_names``: rows named by file name. The
    thread counts it sets are put back afterwards (for a caller in the same process)."""
    # A file named twice (or a run folder and its newest checkpoint) is timed once. A run folder is loaded, and its
    # memory measured, by its name: a train running there prunes the newest chosen here (read_newest).
    found: Dict[str, Tuple[str, str]] = {}
    for f in files:
        path = ckpt_io.resolve_checkpoint_path(f, "model file")
        found.setdefault(os.path.realpath(path), (path, f if os.path.isdir(f) else path))
    paths, named = [p for p, _ in found.values()], [n for _, n in found.values()]
    torch_threads = torch.get_num_threads()
    threads = a.threads or torch_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    if a.threads and cores and a.threads > cores:  # 64 on 2 cores: a minute of waits, no figure of the model's
        print(f"benchmark: warning: --threads {a.threads}: this process may run on {plural(cores, 'CPU')}; threads "
              f"past them wait for each other, and the times measure that", file=sys.stderr)
    pool = None
    try:
        pool = set_threads(threads, executorch=any(ckpt_io.is_executorch_program(f) for f in paths),
                           asked=bool(a.threads))
        given = [f"--{k}" for k in ("precision", "channels_last", "compile", "use_ema") if getattr(a, k) is not None]
        if given and all(is_deployed_file(f) for f in paths):
            print(f"benchmark: not used here: {', '.join(given)} (a checkpoint's; exported files run as they were "
                  f"exported)", file=sys.stderr)
        load = dict(batch_size=a.batch_size, image_size=image_size, device_target=a.device_target,
                    precision=a.precision or "auto", channels_last=a.channels_last is not False,
                    compile_model=bool(a.compile), use_ema=a.use_ema)
        subjects = [load_subject(f, threads=threads, **load) for f in named]
        for s in subjects:
            if s.not_used:
                print(f"benchmark: {s.file}: {s.not_used}", file=sys.stderr)
        if short_names:
            for s in subjects:
                s.file = os.path.basename(s.file)
        rows = run(subjects, a.seconds, a.rounds, a.warmup)
        info = machine(threads, subjects)
        failed = []
        if a.memory:  # after the timing, which other processes would disturb
            for row, path in zip(rows, named):
                try:
                    row["memory"] = memory_footprint(path, a.warmup, threads, bool(a.threads), **load)
                except ValueError as e:  # the timing stands; the file's memory is reported as not measured
                    row["memory"] = None
                    failed.append(str(e))
    finally:
        torch.set_num_threads(torch_threads)
        if pool is not None:
            resize_pool(pool)
    for said in failed:
        print(f"mobilenet-v1 benchmark: {said}", file=sys.stderr)
    if a.json:
        print(json_text({"machine": info, "results": rows}))
        return 1 if failed else 0
    versions = ", ".join(f"{k} {info[k]}" for k in ("torch", "onnxruntime", "executorch", "ai_edge_litert")
                         if k in info)
    pool_note = (f" (ExecuTorch's pool: {info['executorch_threads']})"
                 if info.get("executorch_threads") not in (None, threads) else "")
    print(f"{info['cpu']} ({info['arch']}), {plural(info['cpus'], 'CPU')}, {plural(threads, 'thread')}{pool_note}"
          f"{', ' + info['gpu'] if 'gpu' in info else ''}; {versions}; {info['date']}")
    print(table(rows))
    return 1 if failed else 0
