"""``mobilenet-v1 export``: a checkpoint to an ONNX file, checked in ONNX Runtime against PyTorch.

The seed's ``export.py`` flags: ``--ckpt_file C --file_name N --file_format ONNX [--batch_size B]
[--width W --height H]``. The file is ``N.onnx`` (the seed's MindSpore ``export`` also appends the
format's extension). The batch axis is dynamic unless ``--static_batch``; height and width are fixed
because SAME padding is computed from the input size while the graph is built.

BatchNorm is folded into the convolutions before export, so the graph is 27 ``Conv -> Clip`` pairs, a
``ReduceMean`` and a ``Gemm`` in any runtime, whatever graph optimisations it has. After writing, the
command runs the file in ONNX Runtime on a random batch and fails if any logit differs from PyTorch's
by more than 1e-4, or, for a model float32 rounding itself moves by more than that, if the file is further
from the model's float64 logits than rounding puts PyTorch (:func:`_check_float`); by more than ``--atol``
where it is given.
The file is written and checked under a temporary name in the same
folder and takes its name only once it passes, so a failed export leaves any earlier file untouched, and
nothing of its own (:func:`checkpoint.atomic_output`); what an export killed outright left there, the next
one removes (:func:`checkpoint.remove_partial_files`).

A quantization-aware checkpoint (``train --qat True``, :mod:`qat`) is exported as its INT8 file: the
float graph as above, quantized with the ranges the run learned (:func:`quantize.quantize_with_ranges`),
then checked scale for scale and bias for bias against the model, and on its logits (:func:`_finish_qat`);
with ``--file_format TFLITE``, as its INT8 TensorFlow Lite file, written from the model's own roundings and
checked on its logits in LiteRT (:func:`_export_qat_tflite`).

``--image_input True`` puts a uint8 pixel input in front of either file, which normalises inside the graph
(:func:`onnx_io.add_image_input`, checked by :func:`_finish_image_input`).

``--file_format PT2`` writes PyTorch's own deployable form instead: the ``torch.export`` program of the
same folded network (``torch.export.save``, a ``.pt2`` file), which ExecuTorch lowers for phones and
AOTInductor compiles for servers; our metadata travels in it as ``mobilenet_v1.json``. It is loaded back
with ``torch.export.load`` and checked against the model the same way (:func:`export_program`).

``--file_format PTE`` writes what runs on the phone: that program lowered for ExecuTorch, its network
delegated to XNNPACK (the CPU kernels ExecuTorch runs on Android, iOS and Linux boards), as a ``.pte``
file with our metadata in a constant method (:data:`onnx_io.PTE_METADATA`). Its batch is fixed
(``--batch_size``, 1 by default), as ExecuTorch plans a program's memory ahead. It is run in
ExecuTorch's runtime and checked against the model the same way (:func:`export_executorch`).
"""
import contextlib
import copy
import io
import json
import math
import numbers
import os
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt_io
from .api import add_padding_option, model_from_checkpoint, padding_option
from .config import (CHOICES, DATASETS, MAX_BATCH_SIZE, MAX_IMAGE_SIZE, SEED_IGNORED_KEYS, CommandParser,
                     add_normalisation_options, bool_option, check_ignored, config_paths_problem, whole_number)
from .data import IMAGE_EXTENSIONS
from .model import MobileNetV1
from .onnx_io import (PIXEL_FORMATS, PT2_METADATA, PTE_METADATA, DeployedModel, ExecutorchModel, OnnxModel,
                      PROBABILITIES, ProgramModel, image_input_note, log_probabilities, write_metadata)
from .predict import guess_dataset, guess_note
from .runtime import FORMAT_EXTRAS, interrupt_deferred, print0, require_extras, shell_path
from .transforms import CROP_PCT, recorded_interpolation

# The dynamo exporter's lowest opset; ONNX Runtime 1.17+ and current mobile runtimes read it.
OPSET = 18
ATOL = 1e-4
# The INT8 file of a quantization-aware model: the largest mean logit difference from the model, as a share
# of the mean logit, once its scales were found equal to the model's. Rounding ties gave 0.07% to 0.17% on
# a trained demo model; a misplaced range, or one calibrated instead of learned, gives many times more.
QAT_RTOL = 0.01
HALF_MAX = 65504.0  # float16's largest finite value
# A model whose logits float32 rounding moves by more than ATOL (a diverged or ill-conditioned one: PyTorch's
# own float32 logits far from its float64 ones) is given a file as faithful as float32 allows: the file's logits
# within ATOL plus this many times PyTorch's own float32 distance of the float64 logits. Another float32
# program's sums in another order land about as far off; a wrong graph lands as far as its error. A --atol
# given is the limit as given.
ROUNDING_FACTOR = 4.0
MINDSPORE_FORMATS = ("MINDIR", "AIR")
FORMATS = ("ONNX", "PT2", "PTE", "TFLITE")
# Extensions a --file_name (a base name, the format's extension appended) ending in is a mistake: an image, a
# table, a configuration, a checkpoint's; "m.jpg" gave m.jpg.onnx without a word.
NOT_MODEL_EXTENSIONS = IMAGE_EXTENSIONS + (".csv", ".json", ".yaml", ".yml", ".txt", ".ckpt", ".pt", ".pth",
                                           ".safetensors")


class ExportError(ValueError):
    """An export that cannot be done or that does not reproduce PyTorch's outputs."""


def fold_batchnorm(model: MobileNetV1) -> MobileNetV1:
    """An eval-mode copy whose BatchNorms are folded into the convs before them (each conv gains a bias).

    Same outputs up to float rounding; the exported graph then needs no BatchNormalization op and no
    runtime has to fuse one.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for block in folded.network:
        conv, bn = block[0], block[1]
        if isinstance(bn, nn.BatchNorm2d):
            block[0] = fuse_conv_bn_eval(conv, bn)
            block[1] = nn.Identity()
    return folded


# torchlib's tables of ONNX functions for ATen operators, a process's, by the arguments they were built with;
# the lock keeps the builder's swap and the exports under it one at a time.
_TORCHLIB_REGISTRIES: Dict[Any, Any] = {}
_TORCHLIB_LOCK = threading.RLock()


@contextlib.contextmanager
def torchlib_registry_built_once():
    """Within it, ``torch.onnx.export`` takes the table of ONNX functions for ATen operators (torchlib's)
    built by its first export of the process rather than build it anew at every call, about a quarter of
    an export's time (1.3 s of 5 on the 2-core CPU). The exporter only reads it where no custom translation
    table is given, as here. A torch whose exporter has no such builder exports as it does."""
    try:
        from torch.onnx._internal.exporter import _registration

        registry_class = _registration.ONNXRegistry
        build = registry_class.__dict__.get("from_torchlib")
    except (ImportError, AttributeError):
        build = None
    if not isinstance(build, classmethod):
        yield
        return
    build_once = build.__func__

    def built_once(cls, *args, **kwargs):
        key = (cls, args, tuple(sorted(kwargs.items())))
        try:
            built = _TORCHLIB_REGISTRIES.get(key)
        except TypeError:  # arguments (of a later torch) that make no key: built anew
            return build_once(cls, *args, **kwargs)
        if built is None:
            built = _TORCHLIB_REGISTRIES[key] = build_once(cls, *args, **kwargs)
        return built

    with _TORCHLIB_LOCK:
        registry_class.from_torchlib = classmethod(built_once)
        try:
            yield
        finally:
            registry_class.from_torchlib = build


def to_onnx(model: nn.Module, height: int, width: int, batch_size: int = 1, dynamic_batch: bool = True):
    """The ``onnx.ModelProto`` of ``model`` (eval mode) for (N, 3, height, width) inputs.

    Uses PyTorch's ``torch.export``-based exporter (the TorchScript one is deprecated). Input ``input``,
    output ``logits``; with ``dynamic_batch`` the first axis is the symbol ``batch``.
    """
    model = model.eval()
    if isinstance(model, MobileNetV1):
        model = fold_batchnorm(model)
    # torch.export specialises a dimension whose example size is 1, so trace a dynamic batch with 2.
    example = torch.randn(max(batch_size, 2) if dynamic_batch else batch_size, 3, height, width,
                          generator=torch.Generator().manual_seed(0))  # not the caller's random state
    kwargs: Dict[str, Any] = {}
    if dynamic_batch:
        with interrupt_deferred():  # torch.export's first use imports it (and torch._dynamo): as below
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch")},)
    with warnings.catch_warnings():
        # The exporter announces its own internals (deprecations inside torch.export, onnxscript).
        warnings.simplefilter("ignore")
        # interrupt_deferred: the exporter imports torch._dynamo, torch._inductor and onnxscript as it runs; a Ctrl-C
        # there left them half imported, and every later export of the process failed
        with torch.no_grad(), interrupt_deferred(), torchlib_registry_built_once():
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"],
                                        output_names=["logits"], opset_version=OPSET, external_data=False,
                                        verbose=False, **kwargs)
    return program.model_proto


class ImageInput(nn.Module):
    """A model behind an image input: uint8 pixels (N, H, W, C) of ``pixel_format`` (R, G and B taken out
    of them where it is another, :data:`onnx_io.PIXEL_FORMATS`), normalised as the loaders normalise them
    (:class:`transforms.Normalize`'s float32 constants and its ``addcmul``), then the model."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], pixel_format: str = "RGB"):
        super().__init__()
        from .transforms import Normalize

        norm = Normalize(mean, std, torch.device("cpu"))
        self.model = model
        self.register_buffer("scale", norm.scale)
        self.register_buffer("shift", norm.shift)
        self.picks = None if pixel_format == "RGB" else list(PIXEL_FORMATS[pixel_format][0])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.picks is not None:
            pixels = pixels[..., self.picks]
        return self.model(torch.addcmul(self.shift, pixels.permute(0, 3, 1, 2).float(), self.scale))


def save_onnx(model_proto, path: str) -> None:
    """Write a model as one self-contained file (weights inside), atomically."""
    with ckpt_io.atomic_write(path) as f:
        f.write(model_proto.SerializeToString())


def preprocessing_metadata(dataset: str, image_size: int,
                           norm: Tuple[Sequence[float], Sequence[float]]) -> Dict[str, Any]:
    """An exported file's metadata on its input: the data set, the size, and the per-channel ``norm`` (mean,
    std) its inputs are normalised by (:func:`checkpoint.trained_normalisation`)."""
    mean, std = norm
    return {"dataset": dataset, "image_size": image_size, "mean": list(mean), "std": list(std)}


def check_batches(batch_sizes: Sequence[int], height: int, width: int, seed: int = 0,
                  images: Optional[Sequence[Sequence[float]]] = None):
    """Random (N, 3, height, width) batches of each size for the checks below: normal values (the scale
    of normalised images), or with ``images`` = (mean, std) random pixels normalised by them as our loaders
    normalise (what a file with an image input can be given exactly)."""
    from .transforms import Normalize

    normalize = Normalize(images[0], images[1], torch.device("cpu")) if images else None
    g = torch.Generator().manual_seed(seed)
    for n in batch_sizes:
        if normalize is None:
            yield torch.randn(n, 3, height, width, generator=g)
        else:
            yield normalize(torch.randint(0, 256, (n, 3, height, width), dtype=torch.uint8, generator=g))


def with_logits(model: nn.Module, batch_sizes: Sequence[int], height: int, width: int, seed: int = 0,
                images: Optional[Sequence[Sequence[float]]] = None):
    """Each batch of :func:`check_batches` with PyTorch's float logits for it (``model`` in eval mode)."""
    for x in check_batches(batch_sizes, height, width, seed, images):
        with torch.no_grad():
            logits = model.eval()(x).float()
        yield x, logits


def max_difference(deployed: DeployedModel, model: nn.Module, batch_sizes: Sequence[int], height: int, width: int,
                   seed: int = 0) -> Tuple[Dict[int, float], float]:
    """Largest absolute logit difference between an exported file (:class:`onnx_io.DeployedModel`) and
    PyTorch, per batch size (:func:`check_batches`: pixels for a file with an image input); and the
    largest absolute PyTorch logit."""
    images = (deployed.metadata["mean"], deployed.metadata["std"]) if deployed.image_input else None
    out, largest = {}, 0.0
    for n, (x, expected) in zip(batch_sizes, with_logits(model, batch_sizes, height, width, seed, images)):
        out[n] = float((deployed(x) - expected).abs().max())
        largest = max(largest, float(expected.abs().max()))
    return out, largest


def float64_distances(deployed: DeployedModel, model: nn.Module, batch_sizes: Sequence[int], height: int,
                      width: int, seed: int = 0) -> Tuple[float, float]:
    """How far float32 logits are from ``model``'s own in float64 on :func:`max_difference`'s batches: the
    largest distance of PyTorch's float32 logits, and of the exported file's (``deployed``). The first is
    how much float32 rounding moves this model's logits, the yardstick of :func:`_check_float`."""
    images = (deployed.metadata["mean"], deployed.metadata["std"]) if deployed.image_input else None
    exact = copy.deepcopy(model).double().eval()
    torch_far = file_far = 0.0
    for x, logits in with_logits(model, batch_sizes, height, width, seed, images):
        with torch.no_grad():
            reference = exact(x.double())
        torch_far = max(torch_far, float((logits.double() - reference).abs().max()))
        file_far = max(file_far, float((deployed(x).double() - reference).abs().max()))
    return torch_far, file_far


def qat_difference(onnx_path: str, model: MobileNetV1, batch_sizes: Sequence[int], height: int, width: int,
                   seed: int = 0) -> Dict[str, float]:
    """How far an INT8 file of a quantization-aware model is from the model, on random normal inputs.

    ``mean`` and ``max``: the mean and largest absolute logit difference with the file run as the ONNX
    standard defines its ops (no fusion), the file's own arithmetic. The two compute the same roundings
    but for ties: a value exactly between two steps of the grid, which float sums in another order round
    to either side (measured: about one activation in 100,000 at the first layers), a difference that
    grows through the layers. ``logits``: the mean absolute logit, the scale of both.
    ``kernels_max``: the largest difference with this CPU's integer kernels (whose requantisation rounds
    ties otherwise too, and which saturate on full-range weights on x86 without VNNI)."""
    reference, kernels = OnnxModel(onnx_path, reference=True), OnnxModel(onnx_path)
    total = size = count = 0.0
    largest = kernels_largest = 0.0
    for x, expected in with_logits(model, batch_sizes, height, width, seed):
        diff = (reference(x) - expected).abs()
        total += float(diff.sum())
        size += float(expected.abs().sum())
        count += diff.numel()
        largest = max(largest, float(diff.max()))
        kernels_largest = max(kernels_largest, float((kernels(x) - expected).abs().max()))
    count = max(count, 1)
    return {"mean": total / count, "max": largest, "logits": size / count, "kernels_max": kernels_largest}


def export_checkpoint(ckpt_file: str, file_name: str, height: Optional[int] = None, width: Optional[int] = None,
                      batch_size: int = 1, dynamic_batch: bool = True, atol: Optional[float] = None,
                      dataset: Optional[str] = None, use_ema: bool = True, image_input: bool = False,
                      file_format: str = "ONNX", pixel_format: str = "RGB", mean: Optional[str] = None,
                      std: Optional[str] = None, class_num: Optional[int] = None,
                      float16: bool = False, softmax: bool = False, ckpt_file_from: str = "",
                      dataset_from: str = "", padding: Optional[str] = None,
                      qat_rtol: Optional[float] = None) -> Dict[str, Any]:
    """Export a checkpoint to ``file_name`` (``.onnx``, ``.pte``, ``.pt2`` or ``.tflite``, appended when missing)
    and check it; returns the path, the input size, the largest difference from PyTorch per checked batch size, the
    data set whose normalisation the file records and ``weights``, the line saying which weights a checkpoint with a
    weight average gave ("" for one without; :func:`checkpoint.weights_note`).

    That data set is the one the checkpoint's training configuration names. A file that records none
    (a MindSpore ``.ckpt`` holds only tensors) takes ``dataset``, or else a guess from its class count
    (``dataset_guessed`` in the result): cifar10 for 10 classes, as the seed's CIFAR-10 models have,
    imagenet2012 otherwise. ``dataset`` other than the recorded one is an error. The file records the
    normalisation the checkpoint's run trained with (its ``mean`` and ``std`` keys, else the data set's
    constants), or ``mean``/``std`` (text as ``--mean`` takes it) where given.

    ``image_input``: the file takes uint8 pixels (N, H, W, C) of ``pixel_format`` (RGB, BGR, RGBA, BGRA)
    and normalises them itself (:func:`onnx_io.add_image_input`), checked against the same file without
    it (:func:`_finish_image_input`).
    ``atol``: the largest logit difference from PyTorch allowed; None: :data:`ATOL`, or for a model float32
    rounding moves by more, as near its float64 logits as rounding puts PyTorch's (:func:`_check_float`).
    ``qat_rtol``: for a quantization-aware checkpoint's INT8 file, the largest mean logit difference from the
    model as a share of the mean logit; None: :data:`QAT_RTOL`.
    ``file_format`` PT2: a ``torch.export`` program in a ``.pt2`` file instead (:func:`export_program`);
    PTE: an ExecuTorch program for XNNPACK in a ``.pte`` file (:func:`export_executorch`), its batch
    ``batch_size`` whatever ``dynamic_batch`` says.
    ``class_num``: the classes the caller expects (the seed's ``--class_num``, with which its export.py builds
    the network the checkpoint is loaded into); another count than the checkpoint's is an error, None checks
    nothing. ``float16`` (TFLITE only): the weights stored as float16 (:func:`export_tflite`). ``softmax`` (TFLITE
    only): the file's output the probabilities, a ``SOFTMAX`` after the logits (:func:`tflite_io.softmax_output`),
    checked as log-probabilities against the model's (:class:`LogProbabilities`).
    ``padding``: the network's for a checkpoint that records none (a MindSpore ``.ckpt``; ``padding_note`` in the
    result says it: :func:`api.padding_option`).
    ``ckpt_file_from``, ``dataset_from``: the configuration file that named ``ckpt_file`` or ``dataset`` (``config
    file F``), said where the file is not there or the data set is not the checkpoint's."""
    # None means "the default"; 0 or less is a mistake, not a request for the default.
    sizes = (("batch_size", batch_size, MAX_BATCH_SIZE), ("height", height, MAX_IMAGE_SIZE),
             ("width", width, MAX_IMAGE_SIZE))
    for name, value, most in sizes:
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # a Python caller's "32" failed in a
            raise ExportError(f"--{name} {value!r}: must be a whole number")  # comparison, naming neither
        if value > most:  # 10**23 failed in torch.randn with a traceback
            raise ExportError(f"--{name} {value}: at most {most:,} (no device holds "
                              f"{'a batch of more images' if name == 'batch_size' else 'an image larger'})")
    bad = [f"--{name} {value}" for name, value, _ in sizes if value is not None and value < 1]
    if bad:
        raise ExportError(f"{', '.join(bad)}: {'each' if len(bad) > 1 else 'it'} must be at least 1")
    if atol is not None and not (math.isfinite(atol) and atol >= 0):
        raise ExportError(f"atol {atol:g}: must be a finite number >= 0")
    if qat_rtol is not None and not (math.isfinite(qat_rtol) and 0 < qat_rtol < 1):
        raise ExportError(f"--qat_rtol {qat_rtol:g}: must be a share of the mean logit above 0 and below 1")
    rtol = QAT_RTOL if qat_rtol is None else qat_rtol
    pixel_format = pixel_format.upper()
    if pixel_format not in PIXEL_FORMATS:
        raise ExportError(f"--pixel_format {pixel_format!r}: expected one of {', '.join(PIXEL_FORMATS)}")
    if pixel_format != "RGB" and not image_input:
        raise ExportError(f"--pixel_format {pixel_format}: is the image input's (--image_input True); a file "
                          f"without one takes normalised float (N, 3, H, W) RGB")
    # A run folder's newest, read: where a train running there pruned the one chosen first, its newest then.
    path, ckpt = ckpt_io.read_newest(ckpt_file, ckpt_io.load_file, "--ckpt_file", ckpt_file_from)
    built, padding_note = padding_option(ckpt, padding, path, "export")
    model, args = model_from_checkpoint(ckpt, path, use_ema, padding=built)
    if class_num is not None and class_num != args["class_num"]:
        # The seed's export.py fails here too, loading the file into a network of class_num outputs.
        raise ExportError(f"--class_num {class_num}: {path} has {args['class_num']} classes (its classifier's "
                          f"outputs); give --class_num {args['class_num']} or leave it out")
    config = ckpt.get("config") or {}
    dataset = ckpt_io.trained_dataset(path, config.get("dataset"), dataset, dataset_from)
    guessed = dataset is None
    dataset = dataset or guess_dataset(args["class_num"])
    recorded_size = ckpt_io.recorded_image_size(config)  # the size it runs at (its run's eval_image_size)
    default_size = recorded_size or 224
    given_hw = (height, width)
    height = default_size if height is None else height
    width = default_size if width is None else width
    if file_format not in FORMATS:
        raise ExportError(f"--file_format {file_format!r}: expected one of {', '.join(FORMATS)}")
    article = "an" if file_format == "ONNX" else "a"
    if float16 and file_format != "TFLITE":
        raise ExportError(f"--float16 True: is for --file_format TFLITE (TensorFlow Lite's float16 weights, for GPU "
                          f"delegates and half the file); {article} {file_format} file's weights are float32 (or INT8: "
                          f"'mobilenet-v1 quantize')")
    if softmax and file_format != "TFLITE":
        raise ExportError(f"--softmax True: is for --file_format TFLITE, for apps that take its scores as they are "
                          f"(Android's Task Library and ML Kit); {article} {file_format} file gives the logits, and "
                          f"an app that wants probabilities takes their softmax")
    extension = "." + file_format.lower()
    named = [f for f in FORMATS if f != file_format and file_name.lower().endswith("." + f.lower())]
    if named:  # b.tflite exported as ONNX was written as b.tflite.onnx without a word
        raise ExportError(f"--file_name {file_name}: is a name for a {named[0]} file, and this export writes "
                          f"{file_format} ({file_name}{extension}): pass --file_format {named[0]}, or another name")
    foreign = next((e for e in NOT_MODEL_EXTENSIONS if file_name.lower().endswith(e)), None)
    if foreign and os.path.basename(file_name)[:-len(foreign)]:  # bad.jpg was written as bad.jpg.onnx, exit 0
        stem = file_name[:-len(foreign)]
        raise ExportError(f"--file_name {file_name}: ends in {foreign}, not a model file's extension; export writes "
                          f"{file_name}{extension} (its extension follows --file_format: "
                          f"{', '.join('.' + f.lower() for f in FORMATS)}): pass --file_name {stem}, or another name")
    out_path = file_name if file_name.lower().endswith(extension) else file_name + extension
    # The file written is out_path: a folder named as the stem (a run folder "demo", the file demo.onnx) is no
    # obstacle; one named as the file is, and so is a name that ends in a separator.
    stem_is_folder = os.path.basename(file_name) in ("", ".", "..")  # "out/", ".", "out/.": a hidden "..onnx"
    if stem_is_folder or os.path.isdir(out_path):
        shown = file_name if out_path == file_name or stem_is_folder else f"{file_name} ({out_path})"
        raise ExportError(f"--file_name {shown}: is a folder; name the file to write (say "
                          f"{os.path.join(file_name if stem_is_folder else out_path, 'mobilenetv1')})")
    ckpt_io.check_output("--file_name", out_path, [path])
    qat = model.quant is not None
    if qat and file_format not in ("ONNX", "TFLITE"):
        raise ExportError(f"--file_format {file_format}: {path} is a quantization-aware checkpoint, whose deployable "
                          f"forms are its INT8 ONNX file (--file_format ONNX) and its INT8 TensorFlow Lite file "
                          f"(--file_format TFLITE); a .{file_format.lower()} file holds a float program")
    if qat and float16:
        raise ExportError(f"--float16 True: {path} is a quantization-aware checkpoint, whose .tflite is INT8 "
                          f"(leave --float16 out)")
    if qat and not int(model.quant.observed):
        raise ExportError(f"{path}: a quantization-aware model whose activation ranges were never measured "
                          f"(no training step): nothing to write its INT8 file from")

    # image_size: the square the file takes (an app resizes to it; none for a file of another shape); the
    # size the weights were trained at (their BatchNorm statistics measured at) beside it where that differs
    # (eval, predict and quantize read the graph's own). A file that records no configuration (a MindSpore
    # .ckpt) does not say its size.
    meta = preprocessing_metadata(dataset, height, ckpt_io.trained_normalisation(config, dataset, path, mean, std))
    if height != width:
        meta["image_size"] = None  # not written
    trained_size = ckpt_io.trained_image_size(config)
    if trained_size is not None and (height, width) != (trained_size, trained_size):
        meta["trained_image_size"] = trained_size
    other_size = recorded_size is not None and (height, width) != (recorded_size, recorded_size)
    meta.update({"class_num": args["class_num"], "width_mult": args["width_mult"], "padding": args["padding"],
                 "classes": ckpt.get("classes"), "source": os.path.basename(path)})
    # None: not written. A file convert wrote from a run's moving average records that it is one.
    meta["weights"] = ckpt_io.which_weights(ckpt, use_ema) or ("ema" if ckpt_io.average_only(ckpt) else None)
    meta["held_out"] = ckpt.get("held_out")  # the images its run kept out of training, for eval and quantize
    meta[ckpt_io.CLASS_ORDER] = (config or {}).get(ckpt_io.CLASS_ORDER)  # timm's: eval labels a folder in its order
    if dataset == "imagenet2012":  # the evaluation crop its run used, and how it read photos, for eval,
        reading = ckpt_io.recorded_reading(ckpt)  # predict, quantize (and apps)
        meta["crop_pct"] = reading.get("crop_pct", CROP_PCT)
        meta["exif_orientation"] = reading.get("exif_orientation", False)
        meta["antialias"] = reading.get("antialias") is not False  # a MindSpore file's: the seed's False
        meta["interpolation"] = recorded_interpolation(reading.get("interpolation"))
    if softmax:
        meta["output"] = PROBABILITIES
    if qat:
        reduced = model.quant.reduce_range
        kind = ("TensorFlow Lite, int8 activations, the classifier in float from its int8 weights"
                if file_format == "TFLITE" else "QDQ, uint8 activations")
        meta["quantization"] = (f"INT8 quantization-aware training, {kind}, per-channel int8 weights"
                                f"{' (7-bit range)' if reduced else ''}, ranges from "
                                f"{int(model.quant.observed)} training batches")

    # What an export or quantize killed in this folder left (never a finished file), before this one writes.
    removed = ckpt_io.remove_deployed_partials(out_path)
    if file_format in ("PTE", "TFLITE"):
        dynamic_batch = False  # ExecuTorch and LiteRT plan the program's memory for one batch size
    sizes: List[int] = [batch_size] if not dynamic_batch else sorted({1, max(batch_size, 2)})
    result = {"path": out_path, "height": height, "width": width,
              "trained_image_size": meta.get("trained_image_size"),
              "recorded_image_size": recorded_size if other_size else None,
              "image_size_assumed": default_size if recorded_size is None and None in given_hw else None,
              "image_size_said": ckpt_io.image_size_said(config), "dynamic_batch": dynamic_batch, "ckpt": path,
              "dataset": dataset, "dataset_guessed": guessed, "class_num": args["class_num"],
              "weights": ckpt_io.weights_note(ckpt, use_ema), "image_input": image_input, "format": file_format,
              "pixel_format": pixel_format if image_input else None, "removed": removed, "softmax": softmax,
              "padding_note": padding_note}
    # The options checked, the packages: before the export, not at its check (helper-288).
    require_extras(*FORMAT_EXTRAS[file_format])
    if file_format == "PT2":
        return export_program(model, out_path, meta, sizes, height, width, batch_size, dynamic_batch, atol,
                              image_input, result, pixel_format)
    if file_format == "PTE":
        return export_executorch(model, out_path, meta, height, width, batch_size, atol, image_input, result,
                                 pixel_format)
    if file_format == "TFLITE":
        return export_tflite(model, out_path, meta, height, width, batch_size, atol, image_input, result,
                             pixel_format, float16, rtol)
    # A quantization-aware model: its float graph first, quantized below with the ranges it learned.
    proto = to_onnx(model.without_quant() if qat else model, height, width, batch_size, dynamic_batch)
    write_metadata(proto, meta)

    # Checked under a temporary name and renamed only when faithful: a failed check must not have
    # replaced a good file of the same name already.
    with ckpt_io.atomic_output(out_path) as tmp:
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
        if qat:
            result = _finish_qat(tmp, out_path, model, meta, sizes, height, width, result, rtol)
        else:
            result.update(_check_float(OnnxModel(tmp), "ONNX Runtime", out_path, model, sizes, height, width, atol))
        if image_input:
            # A model float32 rounding moves (_check_float) moves as much between these two files.
            _finish_image_input(tmp, out_path, sizes, height, width, result.get("limit", ATOL), quantized=qat,
                                pixel_format=pixel_format, rtol=rtol)
        result["bytes"] = os.path.getsize(tmp)
    return result


class LogProbabilities(nn.Module):
    """``model``'s log-probabilities as a file with a softmax gives them (:func:`onnx_io.log_probabilities`: the
    logarithms of its probabilities, no lower than float32's smallest normal number's), the reference its check
    compares them with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.of(self.model(x))

    @staticmethod
    def of(logits: torch.Tensor) -> torch.Tensor:
        """The log-probabilities a file with a softmax gives for ``logits``."""
        return log_probabilities(torch.softmax(logits, dim=1))


def _reference(model: nn.Module, meta: Dict[str, Any]) -> nn.Module:
    """What the file written with ``meta`` computes from ``model``: its logits, or where ``meta``'s ``output`` says
    probabilities, :class:`LogProbabilities` (as :class:`onnx_io.DeployedModel` gives them)."""
    return LogProbabilities(model) if meta.get("output") == PROBABILITIES else model


class KeptDimsPool(nn.Module):
    """A folded model whose global pool keeps its 1x1 dimensions until a flatten (a view): the same sums,
    in the form XNNPACK takes, so an ExecuTorch program keeps the pool inside its XNNPACK delegate rather
    than cut the network in two around ExecuTorch's own mean kernel (INT8, batch 1, on the 2-core
    development CPU: 1.05x the latency of timm's program before, 1.00x after; benchmarks/RESULTS.md).
    Programs only: an ONNX graph keeps the model's ``ReduceMean``, after which a quantization-aware
    model's INT8 file is checked range for range."""

    def __init__(self, folded: MobileNetV1):
        super().__init__()
        self.model = folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.fc(self.model.forward_features(x).mean(dim=(2, 3), keepdim=True).flatten(1))


def exported_program(model: MobileNetV1, meta: Dict[str, Any], height: int, width: int, batch_size: int,
                     dynamic_batch: bool, image_input: bool, pixel_format: str = "RGB"):
    """The ``torch.export`` program of ``model`` (BatchNorm folded, its pool :class:`KeptDimsPool`'s, behind
    :class:`ImageInput` with ``image_input``), and ``meta`` with the image input's entries added where it
    has one."""
    program_model: nn.Module = KeptDimsPool(fold_batchnorm(model)).eval()
    if image_input:
        program_model = ImageInput(program_model, meta["mean"], meta["std"], pixel_format).eval()
        meta = dict(meta, input=image_input_note(pixel_format), pixel_format=pixel_format)
    channels = PIXEL_FORMATS[pixel_format][1]
    g = torch.Generator().manual_seed(0)  # not the caller's random state
    example = (torch.randint(0, 256, (max(batch_size, 2) if dynamic_batch else batch_size, height, width, channels),
                             dtype=torch.uint8, generator=g) if image_input
               else torch.randn(max(batch_size, 2) if dynamic_batch else batch_size, 3, height, width, generator=g))
    with warnings.catch_warnings(), torch.no_grad(), interrupt_deferred():  # its lazy imports: as in to_onnx
        warnings.simplefilter("ignore")  # torch.export's own internals, as in to_onnx
        program = torch.export.export(program_model, (example,),
                                      dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamic_batch else None)
    return program, meta


def export_program(model: MobileNetV1, out_path: str, meta: Dict[str, Any], sizes: Sequence[int], height: int,
                   width: int, batch_size: int, dynamic_batch: bool, atol: Optional[float], image_input: bool,
                   result: Dict[str, Any], pixel_format: str = "RGB") -> Dict[str, Any]:
    """``model``'s :func:`exported_program` saved to ``out_path`` with ``meta`` as
    :data:`onnx_io.PT2_METADATA`, loaded back as eval and predict load it (:class:`onnx_io.ProgramModel`,
    which refuses pickled entries) and checked as a float ONNX file is (:func:`_check_float`), or nothing is
    written. Returns ``result`` completed."""
    program, meta = exported_program(model, meta, height, width, batch_size, dynamic_batch, image_input, pixel_format)
    with ckpt_io.atomic_output(out_path) as tmp:
        # No sample inputs: they would be the random batch above, pickled (ProgramModel refuses pickles).
        program.example_inputs = None
        # Through memory: saved to a path, the archive's top folder would take the temporary file's name.
        buffer = io.BytesIO()
        written = {k: v for k, v in meta.items() if v is not None}  # as write_metadata leaves them out
        torch.export.save(program, buffer, extra_files={PT2_METADATA: json.dumps(written)})
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())
        result.update(_check_float(ProgramModel(tmp), "torch.export.load", out_path, model, sizes, height, width,
                                   atol), bytes=os.path.getsize(tmp))
    return result


def lower_to_executorch(program, meta: Dict[str, Any]) -> bytes:
    """A ``torch.export`` program lowered for ExecuTorch, everything XNNPACK takes delegated to it, with
    ``meta`` (its entries that are not None) as the constant method :data:`onnx_io.PTE_METADATA`: the
    bytes of a ``.pte`` file."""
    from .onnx_io import executorch_quiet, executorch_runtime

    executorch_runtime()  # installed, or an error that says how
    written = json.dumps({k: v for k, v in meta.items() if v is not None})
    with executorch_quiet():  # its passes announce their own internals, and log through the root logger
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        try:
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                               constant_methods={PTE_METADATA: written})
            return bytes(edge.to_executorch().buffer)
        except OSError as e:
            # XNNPACK's serialiser writes its graph to a temporary folder (flatc's input): a full or read-only
            # TMPDIR is an error that names no file ("[Errno 28] No space left on device").
            if e.filename is not None:
                raise
            import tempfile
            raise OSError(e.errno, f"lowering for ExecuTorch needs room for temporary files in "
                                   f"{tempfile.gettempdir()} (TMPDIR): {e.strerror or e}") from None


def export_executorch(model: MobileNetV1, out_path: str, meta: Dict[str, Any], height: int, width: int,
                      batch_size: int, atol: Optional[float], image_input: bool, result: Dict[str, Any],
                      pixel_format: str = "RGB") -> Dict[str, Any]:
    """``model``'s :func:`exported_program`, for batches of ``batch_size``, lowered for ExecuTorch on XNNPACK
    (:func:`lower_to_executorch`) into ``out_path``, run in ExecuTorch's runtime as eval and predict run it
    (:class:`onnx_io.ExecutorchModel`) and checked as a float ONNX file is (:func:`_check_float`), or
    nothing is written. Returns ``result`` completed."""
    program, meta = exported_program(model, meta, height, width, batch_size, False, image_input, pixel_format)
    data = lower_to_executorch(program, meta)
    with ckpt_io.atomic_output(out_path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
        result.update(_check_float(ExecutorchModel(tmp, out_path), "ExecuTorch (XNNPACK)", out_path, model,
                                   [batch_size], height, width, atol), bytes=os.path.getsize(tmp))
    return result


def export_tflite(model: MobileNetV1, out_path: str, meta: Dict[str, Any], height: int, width: int,
                  batch_size: int, atol: Optional[float], image_input: bool, result: Dict[str, Any],
                  pixel_format: str = "RGB", float16: bool = False, rtol: float = QAT_RTOL) -> Dict[str, Any]:
    """``model`` folded and written as a TensorFlow Lite file for batches of ``batch_size``
    (:func:`tflite_io.to_tflite`), run in LiteRT as eval and predict run it (:class:`tflite_io.TfliteModel`) and
    checked as a float ONNX file is (:func:`_check_float`; with an image input, on the pixels its batches were
    made from), or nothing is written. Returns ``result`` completed.

    ``float16``: the weights and biases stored as float16 (TensorFlow Lite's float16 quantization); the file is
    checked as above against the folded model with its weights rounded to float16, which is what it computes,
    and ``float16`` in the result says how far that is from the float32 model (largest logit difference, and
    the share of the check's images whose top-1 class the rounding kept)."""
    from .tflite_io import load_tflite, to_tflite

    if model.quant is not None:
        return _export_qat_tflite(model, out_path, meta, height, width, batch_size, image_input, result, pixel_format,
                                  rtol)
    folded = fold_batchnorm(model)
    reference: nn.Module = model
    if float16:
        largest = {name: float(t.detach().abs().max()) for name, t in folded.named_parameters()}
        big = {name: value for name, value in largest.items() if value > HALF_MAX}
        if big:
            name, value = max(big.items(), key=lambda kv: kv[1])
            raise ExportError(f"--float16 True: the folded weights reach {value:.4g} ({name}; {len(big)} tensor(s) "
                              f"past float16's largest, {HALF_MAX:g}), which would be infinite in the file; export "
                              f"it without --float16")
        meta = dict(meta, quantization="float16 weights (TensorFlow Lite's float16 quantization), float32 compute")
        reference = copy.deepcopy(folded)
        with torch.no_grad():
            for t in reference.parameters():
                t.copy_(t.half().float())
        result.update(float16=_rounding_cost(model, reference, batch_size, height, width),
                      quantization=meta["quantization"])
    data = to_tflite(folded, height, width, batch_size, meta, pixel_format if image_input else None, float16)
    with ckpt_io.atomic_output(out_path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
        result.update(_check_float(load_tflite(tmp, name=out_path), "LiteRT", out_path, _reference(reference, meta),
                                   [batch_size], height, width, atol), bytes=os.path.getsize(tmp))
    return result


def _rounding_cost(model: nn.Module, rounded: nn.Module, batch_size: int, height: int, width: int) -> Dict[str, float]:
    """How far ``rounded`` (``model`` with its weights rounded) is from ``model`` on the check's batches (8 of
    ``batch_size``): the largest logit difference and the share of images whose top-1 class it keeps."""
    largest, kept, images = 0.0, 0, 0
    for x, expected in with_logits(model, [batch_size] * max(1, 8 // batch_size), height, width):
        with torch.no_grad():
            got = rounded.eval()(x).float()
        largest = max(largest, float((got - expected).abs().max()))
        kept += int((got.argmax(1) == expected.argmax(1)).sum())
        images += x.shape[0]
    return {"max_abs_diff": largest, "top1_kept": kept / max(images, 1)}


def _export_qat_tflite(model: MobileNetV1, out_path: str, meta: Dict[str, Any], height: int, width: int,
                       batch_size: int, image_input: bool, result: Dict[str, Any],
                       pixel_format: str = "RGB", rtol: float = QAT_RTOL) -> Dict[str, Any]:
    """A quantization-aware ``model`` as its INT8 TensorFlow Lite file: int8 throughout at the scales and zero
    points it learned and the weight scales it rounds to (:func:`tflite_quant.learned`), the classifier in float
    as the model computes it; run in LiteRT and checked against the model as the INT8 ONNX file is: every scale,
    zero point and bias read back from the file the model's (:func:`_check_roundings`), and the mean absolute
    logit difference at most ``rtol`` of the mean logit (LiteRT's integer kernels round ties otherwise),
    or nothing is written. Returns ``result`` completed."""
    from .qat import deployed_roundings
    from .tflite_io import image_input_note, load_tflite, softmax_output, write_flatbuffer
    from .tflite_quant import build_int8_graph, learned

    rounded = deployed_roundings(model)
    folded, quant = learned(model, rounded)
    shown = pixel_format if image_input else None
    g = build_int8_graph(folded, quant, height, width, batch_size, meta["mean"], meta["std"], shown)
    if meta.get("output") == PROBABILITIES:
        softmax_output(g)
    if shown:
        meta = dict(meta, input=image_input_note(shown), pixel_format=shown)
    data = write_flatbuffer(g, {k: v for k, v in meta.items() if v is not None},
                            "MobileNetV1 of mobilenet-v1 export, INT8 quantization-aware")
    with ckpt_io.atomic_output(out_path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
        deployed = load_tflite(tmp, name=out_path)
        _check_roundings(*_tflite_roundings(deployed, len(model.network)), rounded, out_path, "the .tflite written")
        images = (meta["mean"], meta["std"]) if image_input else None
        total = size = count = largest = 0.0
        for x, logits in with_logits(model, [batch_size] * 4, height, width, 0, images):
            # A file with a softmax: its log-probabilities against the model's, measured against the mean logit
            # as without it (the mean log-probability, some 2.6 times it on a test model, would be a looser rule).
            expected = LogProbabilities.of(logits) if deployed.probabilities else logits
            diff = (deployed(x) - expected).abs()
            total, size, count = total + float(diff.sum()), size + float(logits.abs().sum()), count + diff.numel()
            largest = max(largest, float(diff.max()))
        diff = {"mean": total / count, "max": largest, "logits": size / count}
        _refuse_unfaithful(diff, out_path, f"LiteRT's {_compared(deployed)} of the INT8 file", rtol)
        result.update(qat=diff, max_abs_diff={}, bytes=os.path.getsize(tmp), quantization=meta["quantization"])
    return result


def _check_float(deployed: DeployedModel, runner: str, out_path: str, model: nn.Module, sizes: Sequence[int],
                 height: int, width: int, atol: Optional[float]) -> Dict[str, Any]:
    """The float file of ``model`` written for ``out_path`` (``deployed``, run by ``runner``): an error
    unless every logit (a file with a softmax: log-probability, :func:`_reference`) is within ``atol`` of
    PyTorch's. ``atol`` None: within :data:`ATOL`, or, for a model float32 rounding moves by more than that,
    within it plus :data:`ROUNDING_FACTOR` times PyTorch's own float32 distance of the model's float64 logits
    (:func:`float64_distances`). Returns ``max_abs_diff``,
    the largest difference per batch size, ``limit``, the one a check of the same file after rewriting
    must meet, and for a model so moved, ``float64`` (PyTorch's and the file's distances)."""
    diffs, largest = max_difference(deployed, model, sizes, height, width)
    worst = max(diffs.values())
    given, atol = atol is not None, ATOL if atol is None else atol
    if worst <= atol:
        return {"max_abs_diff": diffs, "limit": atol}
    # How far rounding alone moves this model's logits: the limit's allowance, or the error's evidence.
    torch_far, file_far = float64_distances(deployed, model, sizes, height, width) if math.isfinite(worst) else (0, 0)
    limit = atol + ROUNDING_FACTOR * torch_far
    if not given and file_far <= limit and math.isfinite(worst):
        return {"max_abs_diff": diffs, "limit": limit, "float64": {"pytorch": torch_far, "file": file_far}}
    kept = f"; {out_path} is left as it was" if os.path.exists(out_path) else ""
    # Float32 rounding grows with the logits: where they are large, a difference of 1e-4 of them or
    # less is rounding, and --atol accepts the file. (Not so for log-probabilities: the largest is the floor.)
    scale = ""
    if math.isfinite(worst) and largest > 1 and not deployed.probabilities:
        scale = f"; the logits reach {largest:.3g}, so that is {worst / largest:.2g} of them"
        if worst <= 1e-4 * largest:
            scale += f", float32 rounding (--atol {float(f'{worst * 2:.1g}'):g} accepts it)"
    if math.isfinite(worst):
        scale += (f"; PyTorch's own float32 {_compared(deployed)} are {torch_far:.3g} from the model's float64 "
                  f"ones, the "
                  + (f"file's {file_far:.3g}" if given else
                     f"file's {file_far:.3g} (more than {ROUNDING_FACTOR:g}x that plus {atol:g})"))
    raise ExportError(f"{out_path}: {runner}'s {_compared(deployed)} differ from PyTorch's by {worst:.3g} "
                      f"(more than {atol:g}){scale}; not a faithful export, not written{kept}")


def _compared(deployed: DeployedModel) -> str:
    """What the check of ``deployed`` compares: its logits, or the log-probabilities of a file with a softmax."""
    return "log-probabilities" if deployed.probabilities else "logits"


def _finish_image_input(tmp: str, out_path: str, sizes: Sequence[int], height: int, width: int, atol: float,
                        quantized: bool = False, pixel_format: str = "RGB", rtol: float = QAT_RTOL) -> None:
    """The checked file ``tmp`` rewritten in place with a uint8 image input (:func:`onnx_io.add_image_input`,
    its metadata's mean and std), and checked: on random images, its logits from the pixels must be those
    of the file it was from on the same images normalised as our loaders normalise them (the same graph
    after four nodes, so float rounding apart): within ``atol``, or for an INT8 file (``quantized``),
    whose input rounding can land a pixel value one level over where a normalisation one float step
    away put it, on average within ``rtol`` of the mean logit."""
    import onnx

    from .onnx_io import add_image_input, read_metadata

    proto = onnx.load(tmp)
    meta = read_metadata({p.key: p.value for p in proto.metadata_props})
    add_image_input(proto, meta["mean"], meta["std"], pixel_format)
    write_metadata(proto, {"input": image_input_note(pixel_format), "pixel_format": pixel_format})
    before = OnnxModel(tmp)
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    after = OnnxModel(tmp)
    worst = total = size = 0.0
    for x in check_batches(sizes, height, width, images=(meta["mean"], meta["std"])):
        reference = before(x)
        diff = (after(x) - reference).abs()
        worst, total, size = max(worst, float(diff.max())), total + float(diff.sum()), size + float(reference.abs().sum())
    within = total <= rtol * size if quantized else worst <= atol  # also false for NaN
    if not within:
        kept = f"; {out_path} is left as it was" if os.path.exists(out_path) else ""
        limit = f"mean more than {rtol:.2%} of the mean logit" if quantized else f"more than {atol:g}"
        raise ExportError(f"{out_path}: with its image input the file's logits differ from those of the same "
                          f"file fed normalised images by up to {worst:.3g} ({limit}): not written{kept}")


def _check_roundings(activations: Sequence[Tuple[float, int]], weights: Sequence[np.ndarray],
                     biases: Sequence[np.ndarray], rounded, out_path: str, writer: str) -> None:
    """An error unless an INT8 file's roundings (read off it: each activation's (scale, uint8 zero point), each
    layer's and the classifier's weight scales, their biases as the file adds them) are the model's, ``rounded``
    (:func:`qat.deployed_roundings`), scale for scale and bias for bias; ``writer``: who wrote them, for the
    message."""
    learned = [(float(np.float32(scale)), zero) for scale, zero in rounded.points]
    expected = [e.numpy() for e in rounded.scales]
    wrong = [f"activation {i}: file {a}, model {b}" for i, (a, b) in enumerate(zip(activations, learned)) if a != b]
    for what, found, wanted in (("weights", weights, expected), ("bias", biases, [b.numpy() for b in rounded.biases])):
        wrong += [f"{what} of {'layer ' + str(k) if k < len(expected) - 1 else 'the classifier'}"
                  for k, (a, b) in enumerate(zip(found, wanted))
                  if not np.array_equal(np.asarray(a, np.float32).reshape(-1), b)]
    if wrong or len(activations) != len(learned) or len(weights) != len(expected) or len(biases) != len(expected):
        kept = f"; {out_path} is left as it was" if os.path.exists(out_path) else ""
        raise ExportError(f"{out_path}: {writer} rounds otherwise than the quantization-aware "
                          f"model learned ({len(activations)} activation and {len(weights)} weight scales, expected "
                          f"{len(learned)} and {len(expected)}; {'; '.join(wrong[:4]) or 'counts differ'}): not "
                          f"written{kept}")


def _refuse_unfaithful(diff: Dict[str, float], out_path: str, what: str, rtol: float = QAT_RTOL) -> None:
    """An error unless the mean absolute logit difference of an INT8 file (``what``'s) from its quantization-aware
    model, ``diff`` (``mean``, ``max``, ``logits``: the mean absolute logit), is at most ``rtol`` of the mean
    logit; ``diff`` then records the limit (``limit``). Its scales, zero points and biases were found the
    model's before (:func:`_check_roundings`): what is left is rounding ties, which some models carry on layer by
    layer (a tie in one layer of a width-0.35 model became 1.2% of the mean logit at the classifier, its top-1
    classes on real images all kept), hence the limit the message offers."""
    if not diff["mean"] <= rtol * diff["logits"]:  # also catches NaN
        kept = f"; {out_path} is left as it was" if os.path.exists(out_path) else ""
        share = diff["mean"] / diff["logits"] if diff["logits"] else math.inf
        # A --qat_rtol is offered only where one below 1 accepts the file: not for outputs that are not finite.
        offer = (f". Its scales, zero points and biases are the model's, so the difference is rounding ties the "
                 f"model carries on; check the file on your images (eval, predict) and, where they agree, "
                 f"--qat_rtol {_looser(share)} accepts it") if math.isfinite(share) and share * 1.25 < 0.99 else ""
        raise ExportError(f"{out_path}: {what} differ from the quantization-aware model's by {diff['mean']:.3g} on "
                          f"average, {share:.2%} of the mean logit (more than {rtol:.2%}; "
                          f"largest {diff['max']:.3g}): not a faithful export, not written{kept}{offer}")
    diff["limit"] = rtol


def _looser(share: float) -> str:
    """A --qat_rtol a quarter above ``share`` (rounded up to a thousandth, below 1), for a refusal's message."""
    return f"{min(0.99, math.ceil(share * 1.25 * 1000) / 1000):g}"


def _tflite_roundings(deployed, layers: int) -> Tuple[List[Tuple[float, int]], List[np.ndarray], List[np.ndarray]]:
    """An INT8 ``.tflite`` of a quantization-aware model's roundings as :func:`_check_roundings` takes them, read
    off LiteRT's tensors: the int8 zero points plus 128 (the uint8 grid), the biases as int32 levels times the
    float32 product of their input's and weights' scales (the classifier's, which runs in float, as stored)."""
    details = {d["name"]: d for d in deployed.interpreter.get_tensor_details()}

    def quant(name: str) -> Tuple[np.ndarray, np.ndarray]:
        q = details[name]["quantization_parameters"]
        return np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"])

    names = ["input_int8"] + [f"layer{k}" for k in range(layers)] + ["pooled"]
    activations = [(float(quant(n)[0][0]), int(quant(n)[1][0]) + 128) for n in names]
    weights = [quant(f"layer{k}_weights")[0] for k in range(layers)] + [quant("fc_weights")[0]]
    biases = []
    for k in range(layers):
        levels = deployed.interpreter.get_tensor(details[f"layer{k}_bias"]["index"])
        biases.append(levels.astype(np.float32) * (np.float32(activations[k][0]) * weights[k]))
    biases.append(np.asarray(deployed.interpreter.get_tensor(details["fc_bias"]["index"]), np.float32))
    return activations, weights, biases


def _finish_qat(tmp: str, out_path: str, model: MobileNetV1, meta: Dict[str, Any], sizes: Sequence[int],
                height: int, width: int, result: Dict[str, Any], rtol: float = QAT_RTOL) -> Dict[str, Any]:
    """The fp32 file ``tmp`` of a quantization-aware ``model`` rewritten in place as its INT8 file (the
    ranges the model learned, :func:`quantize.quantize_with_ranges`) and checked against the model: every
    scale, zero point and bias of the file must be the model's, and the mean absolute logit difference
    (:func:`qat_difference`) at most ``rtol`` of the mean logit. Returns ``result`` completed."""
    from .qat import deployed_roundings
    from .quantize import quantize_with_ranges, roundings

    rounded = deployed_roundings(model)
    with ckpt_io.work_folder(tmp) as work:
        proto = quantize_with_ranges(tmp, rounded.points, work, reduce_range=model.quant.reduce_range,
                                     weight_scales=[e.numpy() for e in rounded.scales])
    # The rounding the file does must be the one the model learned, scale for scale, bias for bias.
    _check_roundings(*roundings(proto), rounded, out_path, "ONNX Runtime's quantizer")
    write_metadata(proto, meta)
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    diff = qat_difference(tmp, model, sizes, height, width)
    _refuse_unfaithful(diff, out_path, "the INT8 file's logits", rtol)
    return {**result, "qat": diff, "max_abs_diff": {}, "bytes": os.path.getsize(tmp),
            "quantization": meta["quantization"]}


def quantization_aware_file(path: Optional[str]) -> str:
    """The checkpoint ``path`` names (a run folder: its newest) where it is quantization-aware (``train --qat``),
    else "": one that cannot be read is left to the command that reads it."""
    if not path:
        return ""
    try:
        path = ckpt_io.resolve_checkpoint_path(path)
        args = ckpt_io.load_file(path).get("model_args")
    except (ckpt_io.CheckpointError, OSError):
        return ""
    return path if isinstance(args, dict) and args.get("qat") is True else ""


def mindspore_format_message(fmt: str, ckpt_file: Optional[str] = None, origin: str = "") -> str:
    """Why MINDIR or AIR is not written, and the way there; ``origin``: the config file that set file_format
    (the seed's files set MINDIR), named in place of the option nobody typed."""
    named = f"file_format {fmt} (config file {origin})" if origin else f"--file_format {fmt}"
    qat = quantization_aware_file(ckpt_file)
    if qat:  # the way below, convert, refuses it
        return (f"{named}: checkpoint {qat} is quantization-aware (train --qat True), and MindSpore's "
                f"{fmt} of it cannot be made: 'mobilenet-v1 convert', the way to MindSpore, writes float models "
                f"only and refuses it; its INT8 form is the ONNX file `mobilenet-v1 export --ckpt_file "
                f"{shell_path(qat)} --file_format ONNX` writes (a float {fmt}: convert the float checkpoint it was "
                f"fine-tuned from, its --pre_trained)")
    return (f"{named}: {fmt} files are MindSpore's own format and only MindSpore can write "
            f"them. To deploy with MindSpore, write a MindSpore checkpoint with "
            f"'mobilenet-v1 convert MODEL.ckpt mindspore.ckpt' and run the seed's "
            f"'python export.py --ckpt_file mindspore.ckpt --file_format {fmt}' under MindSpore; "
            f"for ONNX Runtime, TensorRT, OpenVINO or mobile runtimes use --file_format ONNX (PTE for "
            f"ExecuTorch, TFLITE for TensorFlow Lite / LiteRT)")


def main(argv: Sequence[str]) -> int:
    p = CommandParser(prog="mobilenet-v1 export", description=(
        "Export a checkpoint to ONNX (the seed's export.py flags) and check the file in ONNX Runtime, or to a "
        "torch.export program (--file_format PT2) checked in PyTorch, to an ExecuTorch program for phones "
        "(--file_format PTE) checked in ExecuTorch, or to a TensorFlow Lite file (--file_format TFLITE) checked in "
        "LiteRT."))
    p.add_argument("--ckpt_file", default=None, help="checkpoint (or a run folder: its newest)")
    p.add_argument("--file_name", default=None,
                   help="output name (default mobilenetv1); the format's .onnx (.pte, .pt2, .tflite) is appended "
                        "unless it ends so already (a name ending in another format's is refused)")
    p.add_argument("--file_format", default=None, type=str.upper,
                   help="ONNX (default), PTE (an ExecuTorch program on XNNPACK, for phones and boards; batch fixed at "
                        "--batch_size), PT2 (a torch.export program, for AOTInductor) or TFLITE (a TensorFlow Lite "
                        "file, NHWC, batch fixed); the seed's "
                        "MINDIR and AIR need MindSpore (see the error they give)")
    p.add_argument("--batch_size", type=whole_number, default=None,
                   help="batch of the check (and of the graph with --static_batch); default 1")
    p.add_argument("--width", type=whole_number, default=None,
                   help="input width (default: the size the checkpoint records: the one recalibrate-bn measured it "
                        "at, else its run's eval_image_size where it set one, else the training image_size)")
    p.add_argument("--height", type=whole_number, default=None,
                   help="input height (default: the size the checkpoint records: the one recalibrate-bn measured it "
                        "at, else its run's eval_image_size where it set one, else the training image_size)")
    p.add_argument("--static_batch", action="store_true",
                   help="fix the batch axis at --batch_size (a .pte's and a .tflite's always is)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="whose input normalisation the file records, for a checkpoint that does not say (a "
                        "MindSpore .ckpt); default: what the checkpoint records, else cifar10 for 10 classes "
                        "and imagenet2012 otherwise")
    add_normalisation_options(p, "the file records (and with --image_input applies)")
    p.add_argument("--atol", type=float, default=None,
                   help=f"largest allowed logit difference (default {ATOL:g}, or for a model float32 rounding "
                        f"moves by more, as near its float64 logits as PyTorch's float32 ones, within "
                        f"{ROUNDING_FACTOR:g}x)")
    p.add_argument("--qat_rtol", type=float, default=None, metavar="SHARE",
                   help=f"a quantization-aware checkpoint's INT8 file: the largest mean logit difference from the "
                        f"model, as a share of the mean logit (default {QAT_RTOL:g}); its scales, zero points and "
                        f"biases are checked to be the model's first, so what remains is rounding ties, which some "
                        f"models carry on layer by layer")
    p.add_argument("--use_ema", type=bool_option, default=True, metavar="True|False",
                   help="a checkpoint of a run with --ema_decay: export its weight average (True, the default) "
                        "or its trained weights")
    add_padding_option(p, writes=False)
    p.add_argument("--image_input", type=bool_option, default=False, metavar="True|False",
                   help="the file takes uint8 pixels (N, H, W, C), resized and cropped, and normalises them "
                        "itself (for apps that hold camera frames or decoded images); default: normalised float "
                        "(N, 3, H, W)")
    p.add_argument("--pixel_format", type=str.upper, choices=tuple(PIXEL_FORMATS), default="RGB",
                   help="with --image_input True: the pixels' channels, RGB (default), BGR (OpenCV's), RGBA or "
                        "BGRA (Android's and Apple's bitmaps; the alpha is ignored)")
    p.add_argument("--float16", type=bool_option, default=False, metavar="True|False",
                   help="with --file_format TFLITE: weights stored as float16 (TensorFlow Lite's float16 "
                        "quantization: half the file, for GPU delegates; CPUs compute in float32)")
    p.add_argument("--softmax", type=bool_option, default=False, metavar="True|False",
                   help="with --file_format TFLITE: the file's output is the probabilities (a SOFTMAX after the "
                        "logits), the scores Android's Task Library and ML Kit hand an app; default: the logits")
    p.add_argument("--config_path", default=None,
                   help="a config file (the seed's too) whose export keys (ckpt_file, file_name, file_format, "
                        "batch_size, width, height) and dataset stand in for flags not given")
    # The seed's export.py takes every key of its configuration as a flag: --device_target (its default, and its
    # files', Ascend), with --device_id on a machine of several: as unrecognized arguments they failed the seed's
    # command here. The file is built and checked on the CPU whatever they say, Ascend included.
    p.add_argument("--device_target", choices=CHOICES["device_target"], default=None,
                   help="the seed's flag, taken and not used: the file is built and checked on the CPU")
    p.add_argument("--device_id", type=whole_number, default=None, help="the seed's flag, taken and not used")
    # The seed's export.py builds its network with class_num outputs before loading the file; here the file
    # says its count, and a --class_num given is checked against it.
    p.add_argument("--class_num", type=whole_number, default=None,
                   help="the seed's flag: the class count the checkpoint must have (an error otherwise); the "
                        "network is built as the checkpoint says")
    a = p.parse_args(list(argv))
    argv = list(argv)
    configs = [arg.partition("=")[2] if "=" in arg else (argv[i + 1:i + 2] or [""])[0]
               for i, arg in enumerate(argv) if arg == "--config_path" or arg.startswith("--config_path=")]
    if len(configs) > 1:  # argparse kept the last, the first dropped without a word: one file, as train reads one
        p.error(config_paths_problem(configs))
    if a.atol is not None and not (math.isfinite(a.atol) and a.atol >= 0):
        # A negative or NaN limit fails every export, and only once it has run; infinity checks nothing.
        p.error(f"--atol must be a finite number >= 0, got {a.atol:g}")
    if a.qat_rtol is not None and not (math.isfinite(a.qat_rtol) and 0 < a.qat_rtol < 1):
        p.error(f"--qat_rtol must be a share of the mean logit above 0 and below 1, got {a.qat_rtol:g}")
    if a.config_path is not None and not a.config_path.strip():
        p.error("--config_path is empty: give a YAML file")
    # The seed's keys with no meaning here, named in one line as train and eval name them: the config file's,
    # and a --device_id given.
    ignored: Dict[str, Any] = {}
    choices: Dict[str, Any] = {}
    ckpt_file_from = dataset_from = format_from = ""
    if a.config_path:
        from .config import coerce, is_run_config, read_yaml, refuse_unknown_keys

        values, choices = read_yaml(a.config_path)
        refuse_unknown_keys(values, choices, a.config_path)  # as train's and eval's reading of the file does
        ignored = {key: value for key, value in values.items() if key in SEED_IGNORED_KEYS}
        keys = ["ckpt_file", "file_name", "file_format", "batch_size", "width", "height"]
        if is_run_config(values, choices):  # a run's config.yaml: its batch_size is training's, its width and
            # height the defaults 224, not the size it trained at
            keys = keys[:3]
            left = ", ".join(f"{k} {values[k]}" for k in ("batch_size", "width", "height") if k in values)
            left = left or "batch_size, width and height"
            print(f"export: note: {a.config_path} is a run's configuration: its {left} are not export's, not taken "
                  f"(the file takes the size its checkpoint records for evaluation: eval_image_size where its run set "
                  f"one, else the one it was trained or recalibrated at; --batch_size, --height and --width set "
                  f"them)", file=sys.stderr)
        for key in keys:
            if getattr(a, key) is None and values.get(key) not in (None, ""):
                value = coerce(key, values[key], f"config file {a.config_path}")  # `file_name: 2024`: a str
                if key in ("batch_size", "width", "height") and value < 1:  # said as --width, which nobody typed
                    raise ExportError(f"{key} {value} (config file {a.config_path}): must be at least 1")
                setattr(a, key, value)  # (file_format upper-cased by coerce, as train reads it)
                if key == "ckpt_file":  # the seed's files name /cache/data/mobilenetv1-90_625.ckpt: said as theirs
                    ckpt_file_from = f"config file {a.config_path}"
                elif key == "file_format":  # the seed's files set MINDIR: not an option anybody typed
                    format_from = a.config_path
        if a.dataset is None and values.get("dataset") not in (None, ""):
            # The data set whose normalisation the file records, where the checkpoint does not say (a MindSpore
            # .ckpt): the seed's files name theirs; it was guessed from the class count.
            if values["dataset"] not in DATASETS:
                raise ExportError(f"dataset {values['dataset']!r} (config file {a.config_path}): expected one of "
                                  f"{', '.join(DATASETS)}")
            a.dataset, dataset_from = values["dataset"], f"config file {a.config_path}"
    if a.device_id is not None:
        ignored["device_id"] = a.device_id
    check_ignored(ignored, choices, a.config_path)
    fmt = a.file_format or "ONNX"
    if fmt in MINDSPORE_FORMATS:
        raise ExportError(mindspore_format_message(fmt, a.ckpt_file, format_from))
    if fmt not in FORMATS:
        raise ExportError((f"file_format {fmt!r} (config file {format_from})" if format_from else
                           f"--file_format {fmt!r}") + ": expected ONNX, PTE, PT2 or TFLITE (or the seed's MINDIR/AIR)")
    if not a.ckpt_file:
        p.error("--ckpt_file is required")
    batch_size = a.batch_size if a.batch_size is not None else 1  # ints: argparse's, or coerce's for the file's
    height, width = a.height, a.width
    result = export_checkpoint(a.ckpt_file, a.file_name or "mobilenetv1", height, width, batch_size,
                               dynamic_batch=not a.static_batch, atol=a.atol, dataset=a.dataset,
                               use_ema=a.use_ema, image_input=a.image_input, file_format=fmt,
                               pixel_format=a.pixel_format, mean=a.mean, std=a.std, class_num=a.class_num,
                               float16=a.float16, softmax=a.softmax, ckpt_file_from=ckpt_file_from,
                               dataset_from=dataset_from, padding=a.padding, qat_rtol=a.qat_rtol)
    if result["padding_note"]:
        print(f"mobilenet-v1 export: {result['padding_note']}", file=sys.stderr)
    if result["removed"]:
        print(f"mobilenet-v1 export: note: {ckpt_io.removed_note(result['removed'])}", file=sys.stderr)
    if result["weights"]:
        print0(result["weights"])
    if result["dataset_guessed"]:
        print("mobilenet-v1 export: note: " + guess_note(
            result["ckpt"], result["dataset"], result["class_num"],
            f"{result['path']} records {result['dataset']}'s input normalisation", "export again with"),
            file=sys.stderr)
    if result.get("image_size_assumed"):  # a MindSpore .ckpt records no size: the file would record 224 as its own
        print(f"mobilenet-v1 export: note: {result['ckpt']} records no image size (as a MindSpore .ckpt): "
              f"{result['path']} takes {result['height']}x{result['width']} and records that size for eval and "
              f"predict; give the size it was trained at with --width and --height", file=sys.stderr)
    if result["recorded_image_size"]:  # exported at another size than the one it records
        square = result["height"] == result["width"]
        # recalibrate-bn refuses a quantization-aware checkpoint: its float model is what is measured anew
        qat_advice = (" (its BatchNorm statistics and activation ranges are those it was fine-tuned with: "
                      "`mobilenet-v1 recalibrate-bn` the float model it was fine-tuned from at that size, and "
                      "fine-tune that with --qat True)")
        print(f"mobilenet-v1 export: note: image_size {result['recorded_image_size']} is the size {result['ckpt']} "
              f"{result['image_size_said']}; {result['path']} takes {result['height']}x{result['width']} as asked"
              + ((qat_advice if "qat" in result else
                  " (`mobilenet-v1 recalibrate-bn` measures its BatchNorm statistics at that size first)")
                 if result["trained_image_size"] and square else "")
              + ("" if square else "; eval, predict, quantize and recalibrate-bn take square sizes only: this file "
                                   "is for an app that feeds it that shape (benchmark times it)"), file=sys.stderr)
    fmt_channels = PIXEL_FORMATS[result["pixel_format"] or "RGB"][1]
    n = "N" if result["dynamic_batch"] else batch_size  # a fixed batch is the shape's first number
    shape = (f"uint8 {result['pixel_format']} image ({n}, {result['height']}, {result['width']}, {fmt_channels}), "
             f"normalised inside"
             if result["image_input"] else f"({n}, {result['height']}, {result['width']}, 3) NHWC" if fmt == "TFLITE"
             else f"({n}, 3, {result['height']}, {result['width']})")
    print0(f"wrote {result['path']} ({result['bytes'] / 1e6:.2f} MB, input {shape}, batch "
           f"{'dynamic' if result['dynamic_batch'] else 'fixed'}"
           f"{', output the probabilities (softmax)' if result['softmax'] else ''}) from {result['ckpt']}")
    # What the checks compared: a file with a softmax gives log-probabilities.
    compared, compared_plural = ("log-probability", "log-probabilities") if result["softmax"] else ("logit", "logits")
    if "qat" in result and a.atol is not None:
        print(f"mobilenet-v1 export: note: --atol {a.atol:g} is not used: it is the limit of a float file's check; "
              f"an INT8 file of a quantization-aware checkpoint is checked scale for scale against the model and its "
              f"{compared_plural} within {result['qat']['limit']:.2%} of the mean logit (--qat_rtol)",
              file=sys.stderr)
    if "qat" not in result and a.qat_rtol is not None:
        print(f"mobilenet-v1 export: note: --qat_rtol {a.qat_rtol:g} is not used: it is the limit of a "
              f"quantization-aware checkpoint's INT8 file; this float file is checked within --atol", file=sys.stderr)
    if "qat" in result and fmt == "TFLITE":
        diff = result["qat"]
        print0(f"{result['quantization']}; LiteRT's integer kernels vs the quantization-aware PyTorch model, "
               f"{compared} difference: mean {diff['mean']:.2e}, {diff['mean'] / diff['logits']:.3%} of the mean "
               f"logit (limit {diff['limit']:.2%}; --atol is for float files), largest {diff['max']:.2e} "
               f"(rounding ties); "
               f"every scale, zero point and bias the model's")
        return 0
    if "qat" in result:
        diff = result["qat"]
        print0(f"{result['quantization']}; ONNX Runtime vs the quantization-aware PyTorch model, logit difference: "
               f"mean {diff['mean']:.2e}, {diff['mean'] / diff['logits']:.3%} of the mean logit (limit "
               f"{diff['limit']:.2%}; --atol is for float files), largest {diff['max']:.2e} (rounding ties); with this "
               f"CPU's integer kernels, largest {diff['kernels_max']:.2e}; every scale, zero point and bias the "
               f"model's")
        note = OnnxModel(result["path"]).saturation_note()
        if note:
            print(f"mobilenet-v1 export: {note}", file=sys.stderr)
        return 0
    diffs = ", ".join(f"batch {n}: {d:.2e}" for n, d in result["max_abs_diff"].items())
    runner = {"PT2": "torch.export.load", "PTE": "ExecuTorch (XNNPACK)", "TFLITE": "LiteRT"}.get(fmt, "ONNX Runtime")
    if "float16" in result:
        cost = result["float16"]
        print0(f"{result['quantization']}: the file computes the model with its weights rounded to float16, checked "
               f"below against that; the rounding moved the float32 model's logits by up to "
               f"{cost['max_abs_diff']:.2e} and kept the top-1 class of {cost['top1_kept']:.0%} of the check's images")
    far = result.get("float64")
    if far is None:
        print0(f"{runner} vs PyTorch, largest {compared} difference: {diffs} (limit {result['limit']:g})")
    else:
        print0(f"{runner} vs PyTorch, largest {compared} difference: {diffs}, more than {ATOL:g}: float32 "
               f"rounding moves this model's {compared_plural} by {far['pytorch']:.2e} (PyTorch's float32 against its "
               f"float64), the file's by {far['file']:.2e} (limit {result['limit']:.2e}, {ATOL:g} plus "
               f"{ROUNDING_FACTOR:g}x PyTorch's); a model this sensitive gives other answers on another CPU too")
    return 0
