"""ONNX files of ours: recognising one, reading its metadata, and running it in ONNX Runtime; and the
ExecuTorch programs of ``export --file_format PTE`` (:class:`ExecutorchModel`) and ``torch.export`` programs
of ``export --file_format PT2`` (:class:`ProgramModel`), run the same way.

:class:`OnnxModel` wraps an ONNX Runtime session as a ``torch.nn.Module`` that maps a normalised
(N, 3, H, W) batch to logits, so evaluation, prediction and benchmarks run an ``.onnx`` file through
the same code as a checkpoint (``engine.evaluate`` included).

Our exporter records in the file's ``metadata_props`` what a runtime needs beyond the graph:
``dataset`` (which normalisation the input needs), ``image_size``, ``classes`` (a JSON list, when the
training run recorded class names), ``mean`` and ``std`` (JSON, on the [0, 1] pixel scale).

A file with an image input (``export --image_input``, :func:`add_image_input`) takes uint8 pixels,
(N, H, W, C) as images are laid out in memory, and normalises them itself: four nodes in front of the
float graph, and a fifth before them that picks R, G and B out of another ``pixel_format`` (BGR as
OpenCV holds images, RGBA and BGRA as Android's and Apple's bitmaps; the alpha is dropped), which the
metadata records. :func:`strip_image_input` takes them off again (the quantizer works on the float graph).
"""
import contextlib
import io
import json
import logging
import math
import os
import platform
import re
import sys
import tempfile
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .checkpoint import (CheckpointError, cut_short, cut_short_text, is_executorch_program, is_exported_program,
                         is_program_file, not_a_file, program_pickles, unreadable_program, zip_damage)
from .runtime import import_extra, install_hint, missing_extra

META_KEYS = ("dataset", "image_size", "classes", "class_num", "width_mult", "padding", "mean", "std",
             "source", "quantization", "weights", "held_out", "crop_pct", "exif_orientation", "input",
             "trained_image_size", "antialias", "pixel_format", "interpolation", "output",
             "folder_class_order")  # checkpoint.CLASS_ORDER: timm's train.py numbered a folder's classes "natural"ly
# What a file's output holds (its metadata's "output"; logits where it says nothing): export --softmax True
# writes the probabilities, which DeployedModel gives as log-probabilities, no lower than LOG_TINY (the float32
# logarithm of float32's smallest normal number, the value a probability that underflowed is given).
PROBABILITIES = "probabilities"
OUTPUTS = ("logits", PROBABILITIES)
LOG_TINY = float(torch.tensor(torch.finfo(torch.float32).tiny).log())
# The image input's name, the nodes that normalise it (in order) and their constants.
IMAGE_INPUT = "image"
IMAGE_NODES = ("image_to_float", "image_to_nchw", "image_scale", "image_shift")
IMAGE_CONSTANTS = ("image_scale_factor", "image_shift_term")
# Another pixel format's node, and its constant: where R, G and B lie along the channel axis.
CHANNELS_NODE, CHANNELS_CONSTANT = "image_to_rgb", "image_rgb_channels"
# Each pixel format an image input takes: the indices of R, G and B among its channels, and how many it has.
PIXEL_FORMATS: Dict[str, Tuple[Tuple[int, int, int], int]] = {
    "RGB": ((0, 1, 2), 3), "BGR": ((2, 1, 0), 3), "RGBA": ((0, 1, 2), 4), "BGRA": ((2, 1, 0), 4)}


def image_input_note(pixel_format: str = "RGB") -> str:
    """The metadata's ``input`` entry of a file whose image input takes ``pixel_format``."""
    extra = ", alpha ignored" if PIXEL_FORMATS[pixel_format][1] == 4 else ""
    return (f"uint8 {pixel_format} (N, H, W, {PIXEL_FORMATS[pixel_format][1]}), 0-255{extra}, "
            f"normalised inside the model")

# The entry of a .pt2 file (torch.export.save's extra_files) that holds our metadata, as JSON.
PT2_METADATA = "mobilenet_v1.json"


def is_onnx_file(path: str) -> bool:
    """True for a ``.onnx`` file, or a file whose content starts as an ONNX ``ModelProto`` does.

    An ONNX file is a protobuf message whose first field is ``ir_version`` (field 1, a varint: byte
    0x08) followed by a small version number. PyTorch checkpoints are zip files (``PK``) or pickles
    (0x80), MindSpore checkpoints start with field 1 as a length-delimited message (0x0A).
    """
    if path.lower().endswith(".onnx"):
        return True
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x08 and 3 <= head[1] <= 20


def x86_without_vnni(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this is an x86-64 CPU whose flags (Linux's ``cpuinfo``) show no VNNI. ONNX Runtime's u8 x s8
    kernels there (AVX2, AVX-512 without VNNI) add pairs of products in 16 bits, which saturate for
    full-range weights: a model quantized for other CPUs can lose several points of top-1 on this one.
    False where it cannot tell (another OS, no flags line)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return False
    return flags is not None and not {"avx512_vnni", "avx_vnni"} & set(flags)


def session_options(threads: int = 0, reference: bool = False):
    """ONNX Runtime's options: every graph optimisation (an INT8 file's QDQ pairs fused into integer
    kernels), or with ``reference`` none, each op computed as the ONNX standard defines it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL if reference
                                   else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    if threads > 0:
        so.intra_op_num_threads = threads
    # ONNX Runtime's memory pattern plans a second block of the first run's size at the second run: eval's
    # batches of 64 at 224 px held 1.64 GB rather than 1.23 GB; without it the arena is reused.
    so.enable_mem_pattern = False
    # Warnings about unused initialisers etc. are for graph authors, not for someone running a model.
    # Errors too (4: fatal only): a file it cannot load raises an exception, said in one line, after ONNX Runtime
    # had logged the same text, in red, with its C++ source path (an external data length that does not fit).
    so.log_severity_level = 4
    return so


@contextlib.contextmanager
def _logged_errors(name: str):
    """The exceptions logged (``exc_info``) on the logger ``name`` meanwhile, kept, not printed."""
    found: List[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                found.append(record.exc_info[1])

    log = logging.getLogger(name)  # torch's logging gives it a handler of its own: set aside meanwhile
    handlers, propagate, level = log.handlers[:], log.propagate, log.level
    log.handlers, log.propagate = [Keep()], False
    log.setLevel(logging.WARNING)
    try:
        yield found
    finally:
        log.handlers, log.propagate = handlers, propagate
        log.setLevel(level)


class DeployedModel(nn.Module):
    """What :class:`OnnxModel`, :class:`ExecutorchModel` and :class:`ProgramModel` share: an exported
    classifier on the CPU, called like the PyTorch model (a normalised float (N, 3, H, W) batch on any
    device in, float32 logits on that device out). A file with an image input (uint8, (N, H, W, C)) is
    handed the pixels each batch was made from, with the mean and std its metadata records, in its
    ``pixel_format`` (RGB for a file from before the entry; an alpha channel of 255); a file exported with
    a static batch (a ``.pte`` always is) is handed batches of exactly that size. A file whose output is
    probabilities (its metadata's ``output``; ``export --softmax True``) gives their logarithms, no lower than
    :data:`LOG_TINY` (float32's smallest normal number's): log-probabilities, which are its logits less a
    number per image, so eval ranks and predict's softmax gives back what the logits give, but for the classes
    whose probability underflowed float32 (:attr:`output_floor`). Subclasses set ``path``,
    ``metadata``, ``input_shape`` (ints, or None for a symbolic size) and ``image_input``, call
    :meth:`_check_image_input`, and give :meth:`_run`."""

    kind = "exported file"
    path: str
    metadata: Dict[str, Any]
    input_shape: List[Optional[int]]
    image_input: bool
    pixel_format: str = "RGB"
    _class_num: Optional[int] = None
    output_dims: Optional[int] = None  # the logits' number of dimensions, where the file says it

    def _named_file(self, path: str, name: Optional[str], identified: Callable[[str], bool], not_it: str) -> str:
        """``self.name`` set to ``name`` (else ``path``), the name its errors give, once ``path`` is a file that
        ``identified`` takes for this kind; else an error naming it: no such file, or ``not_it``."""
        self.name = name or path
        if not os.path.isfile(path):
            raise CheckpointError(f"{self.kind} {self.name}: {not_a_file(path)}")
        if not identified(path):
            raise CheckpointError(f"{self.kind} {self.name}: {not_it}")
        return self.name

    def check_classifier(self) -> None:
        """Refuse a file whose output is not a classifier's (N, classes) (a segmentation or other foreign
        graph: eval, predict and quantize would index class scores that are not there)."""
        if self.output_dims is not None and self.output_dims != 2:
            raise CheckpointError(f"{self.kind} {self.path}: its output has {self.output_dims} dimensions, not a "
                                  f"classifier's (N, classes): not a model of mobilenet-v1 export")

    def _check_image_input(self) -> None:
        """Refuse an input that is not RGB (a foreign file: ONNX Runtime or torch would fail at the first
        batch), or not the pixel format its metadata names; with an image input, take its mean and std
        from the metadata."""
        if self.image_input:
            self.pixel_format = self.metadata.get("pixel_format", "RGB")
            if self.pixel_format not in PIXEL_FORMATS:
                raise CheckpointError(f"{self.kind} {self.path}: its metadata's pixel_format "
                                      f"{self.pixel_format!r} is none of {', '.join(PIXEL_FORMATS)}: not a file "
                                      f"of mobilenet-v1 export")
        want = PIXEL_FORMATS[self.pixel_format][1] if self.image_input else 3
        channels = self.input_shape[3] if self.image_input else self.input_shape[1]
        if channels not in (want, None):
            layout = f"uint8 (N, H, W, {want}) {self.pixel_format}" if self.image_input else "(N, 3, H, W) RGB"
            raise CheckpointError(f"{self.kind} {self.path}: its input has {channels} colour channel(s), where "
                                  f"{layout} images are expected: not an RGB classifier of mobilenet-v1 export")
        if not self.image_input:
            return
        if not (len(self.metadata.get("mean") or ()) == 3 and len(self.metadata.get("std") or ()) == 3):
            raise CheckpointError(f"{self.kind} {self.path}: a uint8 image input without the mean and std it is "
                                  f"normalised with in its metadata: not a file of mobilenet-v1 export")
        self._mean = torch.tensor(self.metadata["mean"], dtype=torch.float64).view(1, 3, 1, 1)
        self._std = torch.tensor(self.metadata["std"], dtype=torch.float64).view(1, 3, 1, 1)

    def _json_metadata(self, text: Any, path: str, entry: str) -> Dict[str, Any]:
        """A program's metadata, written as one JSON object (:data:`PT2_METADATA`, :data:`PTE_METADATA`):
        our entries of it (:func:`read_metadata`); none for an empty one; an error naming ``entry`` for
        anything else."""
        try:
            props = {k: v if isinstance(v, str) else json.dumps(v)
                     for k, v in json.loads(text or "{}").items() if v is not None}
        except (ValueError, AttributeError, TypeError):
            raise CheckpointError(f"{self.kind} {path}: its {entry} is not the metadata of mobilenet-v1 "
                                  f"export") from None
        try:
            return read_metadata(props)
        except ValueError as e:
            raise CheckpointError(f"{self.kind} {path}: {e}, which mobilenet-v1 export writes there") from None

    def saturation_note(self) -> str:
        return ""

    @property
    def class_num(self) -> Optional[int]:
        """The logits' size the graph says (``_class_num``, None when symbolic), else the metadata's."""
        return self._class_num or self.metadata.get("class_num")

    @property
    def image_hw(self) -> Optional[Tuple[int, int]]:
        """The fixed (H, W) the file takes, or None if they are symbolic."""
        h, w = self.input_shape[1:3] if self.image_input else self.input_shape[2:4]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None

    @property
    def fixed_batch(self) -> Optional[int]:
        n = self.input_shape[0]
        return n if isinstance(n, int) else None

    @property
    def weights(self) -> str:
        """fp32, or the INT8 scheme its metadata's ``quantization`` entry records."""
        return self.metadata.get("quantization") or "fp32"

    def check_size(self, image_size: Optional[int]) -> None:
        """Refuse ``--image_size`` where the file takes another fixed size."""
        hw = self.image_hw
        if hw is not None and image_size is not None and hw != (image_size, image_size):
            raise ValueError(f"--image_size {image_size}: {self.path} takes {hw[0]}x{hw[1]} inputs only")

    def input_text(self, batch: Optional[int] = None, hw: Optional[Tuple[int, int]] = None) -> str:
        """The input as the commands show it, "float (N, 3, H, W)" or "uint8 BGRA (N, H, W, 4)" pixels: the
        file's own sizes where ``batch`` and ``hw`` are not given (N, and ? for a size it leaves open)."""
        n = batch if batch is not None else self.fixed_batch or "N"
        h, w = hw if hw is not None else self.image_hw or ("?", "?")
        if self.image_input:
            return f"uint8 {self.pixel_format} ({n}, {h}, {w}, {PIXEL_FORMATS[self.pixel_format][1]})"
        return f"float ({n}, 3, {h}, {w})"

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """A normalised float (N, 3, H, W) batch as the uint8 (N, H, W, C) pixels it was made from, on the
        CPU, in the file's pixel format: ``(x * std + mean) * 255`` in float64, rounded (exact for batches
        made by our transforms), with an opaque alpha (255) where the format has one."""
        v = (x.detach().to("cpu", torch.float64) * self._std + self._mean) * 255.0
        rgb = v.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return to_pixel_format(rgb, self.pixel_format)

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        """The file's logits of ``batch`` (pixels or the normalised float batch, on the CPU)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.fixed_batch
        if n is not None and x.shape[0] != n:
            return torch.cat([self.forward(part) for part in _split_fixed(x, n)])[: x.shape[0]]
        batch = self.pixels(x) if self.image_input else x.detach().to("cpu", torch.float32).contiguous()
        out = self._run(batch).float()
        if self.probabilities:
            out = log_probabilities(out)
        return out.to(x.device)

    @property
    def probabilities(self) -> bool:
        """Whether the file's output is probabilities (a softmax), not logits."""
        return self.metadata.get("output") == PROBABILITIES

    @property
    def output_floor(self) -> Optional[float]:
        """For a file whose output is probabilities, :data:`LOG_TINY`: an output there is a probability that
        underflowed float32 (0 in the file; logits more than about 87 below the largest), tied with every other
        such class, which no ranking can order (eval counts no top-k hit there, predict shows 0); None for logits."""
        return LOG_TINY if self.probabilities else None


def log_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """The logarithms of ``probabilities``, no lower than :data:`LOG_TINY`: a probability below float32's smallest
    normal number (underflowed to 0, or subnormal) counts as that number, in float32 and float64 alike."""
    return probabilities.clamp_min(torch.finfo(torch.float32).tiny).log()


class OnnxModel(DeployedModel):
    """An ONNX classifier on ONNX Runtime's CPU provider (:class:`DeployedModel`).
    ``reference``: no graph optimisation (:func:`session_options`)."""

    kind = "ONNX file"

    def __init__(self, path: str, threads: int = 0, reference: bool = False):
        super().__init__()
        ort = import_extra("onnxruntime")  # a Python caller told what to install, as the command line is
        if not os.path.isfile(path):
            raise CheckpointError(f"ONNX file {path}: {not_a_file(path)}")
        try:
            # ONNX Runtime takes a path as UTF-8 text: a name os.fsdecode holds as surrogates (a name not ASCII under
            # LC_ALL=C with PYTHONUTF8=0, or one that is not UTF-8) it refused ("incompatible constructor
            # arguments"), export of such a name included; the name's UTF-8 text, or else the file's bytes.
            try:
                source: Any = os.fsencode(path).decode("utf-8")
            except UnicodeDecodeError:
                with open(path, "rb") as f:
                    source = f.read()
            self.session = ort.InferenceSession(source, session_options(threads, reference),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # ONNX Runtime raises its own exception types for damaged or foreign files
            raise CheckpointError(f"ONNX file {path}: ONNX Runtime cannot load it "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise CheckpointError(f"ONNX file {path}: expected one (N, 3, H, W) input (or uint8 (N, H, W, 3)), found "
                                  f"{[(i.name, i.shape) for i in inputs]}")
        self.path = path
        self.input_name = inputs[0].name
        self.input_shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
        try:
            self.metadata = read_metadata(self.session.get_modelmeta().custom_metadata_map)
        except ValueError as e:
            raise CheckpointError(f"ONNX file {path}: {e}, which mobilenet-v1 export writes there") from None
        self.image_input = inputs[0].type == "tensor(uint8)"
        shape = self.session.get_outputs()[0].shape  # a classifier's is (N, K); another graph's says no K
        self.output_dims = len(shape)
        self._class_num = shape[-1] if len(shape) == 2 and isinstance(shape[-1], int) else None
        self._check_image_input()

    def saturation_note(self) -> str:
        """A note for an INT8 file with full-range weights run on an x86 CPU without VNNI, whose integer
        kernels saturate (:func:`x86_without_vnni`), naming the way to a file for it; "" otherwise."""
        quantization = self.metadata.get("quantization") or ""
        if not quantization.startswith("INT8") or "7-bit" in quantization or not x86_without_vnni():
            return ""
        return (f"note: {self.path} is INT8 and records no 7-bit weight range, and this x86 CPU has no VNNI: "
                f"ONNX Runtime's integer kernels saturate here and its accuracy can be points lower than on ARM "
                f"or VNNI CPUs; " + ("'mobilenet-v1 train --qat True --qat_reduce_range True' trains a model"
                                     if "quantization-aware" in quantization else
                                     "'mobilenet-v1 quantize --reduce_range' makes a file")
                + " for CPUs like this one")

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: batch.numpy()})[0])


class ProgramModel(DeployedModel):
    """A ``.pt2`` file of ``export --file_format PT2`` (a ``torch.export`` program), run in PyTorch on the
    CPU (:class:`DeployedModel`). Its metadata is the JSON export put in (:data:`PT2_METADATA`)."""

    kind = "program"

    def __init__(self, path: str):
        super().__init__()
        if os.path.isdir(path):
            raise CheckpointError(f"program {path}: is a folder, not a .pt2 file")
        if not os.path.isfile(path):
            raise CheckpointError(f"program {path}: {not_a_file(path)}")
        if not is_exported_program(path):
            if cut_short(path):  # its zip directory, at the end, is missing: a copy in part, not another kind of file
                raise unreadable_program(f"program {path}", cut_short_text(path))
            raise CheckpointError(f"program {path}: not a torch.export program (a zip archive with an "
                                  f"archive_format entry, as export --file_format PT2 writes)")
        damage = zip_damage(path)  # torch.export.load reads no CRC-32: changed weights would load as others
        if damage:
            raise unreadable_program(f"program {path}", damage)
        # torch.export.load unpickles some entries without weights_only: a file with any is refused unread.
        pickled = program_pickles(path)
        if pickled:
            raise CheckpointError(f"program {path}: holds pickled data ({pickled}), which loading it could run as "
                                  f"code; export --file_format PT2 writes none, nor does torch.export.save where "
                                  f"the program's example_inputs is None: not loaded")
        extra = {PT2_METADATA: ""}
        try:
            with open(path, "rb") as f, warnings.catch_warnings():  # from memory: torch.export.load wants a path
                # to end in .pt2. torch 2.11 warns that the weights it reads sit in bytes, which are read-only:
                # nothing here writes to them.
                warnings.filterwarnings("ignore", message="The given buffer is not writable", category=UserWarning)
                # torch.export.load logs a damaged archive's error, a dozen lines of traceback, then raises one that
                # says "check the warnings above": the error logged is taken into the one line below instead.
                with _logged_errors("torch.export") as logged:
                    try:
                        program = torch.export.load(io.BytesIO(f.read()), extra_files=extra)
                    except Exception as e:
                        if logged and "warnings above" in str(e):
                            raise type(logged[-1])(str(logged[-1])) from None
                        raise
        except Exception as e:  # damaged archives, or programs of another PyTorch's format
            raise CheckpointError(f"program {path}: torch.export.load cannot load it "
                                  f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
        self.metadata = self._json_metadata(extra[PT2_METADATA], path, PT2_METADATA)
        names = set(program.graph_signature.user_inputs)
        spec = [n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder" and n.name in names]
        if len(spec) != 1 or spec[0] is None or spec[0].dim() != 4:
            raise CheckpointError(f"program {path}: expected one (N, 3, H, W) input (or uint8 (N, H, W, 3))")
        outputs = [n.args[0] for n in program.graph.nodes if n.op == "output"]
        logits = outputs[0][0].meta.get("val") if outputs and outputs[0] and hasattr(outputs[0][0], "meta") else None
        self.output_dims = logits.dim() if logits is not None else None
        two_d = logits is not None and logits.dim() == 2  # a classifier's (N, K)
        self._class_num = logits.shape[-1] if two_d and isinstance(logits.shape[-1], int) else None
        self.path = path
        self.input_shape = [d if isinstance(d, int) else None for d in spec[0].shape]
        self.image_input = spec[0].dtype == torch.uint8
        self._check_image_input()
        self.exported = program
        self.program = program.module()

    def training_ops(self) -> List[str]:
        """The operations that act in training mode in the program (BatchNorm over the batch, dropout): those
        of a network exported without ``eval()``; none in one of ours."""
        found = []
        for node in self.exported.graph.nodes:
            name = str(node.target) if node.op == "call_function" else ""
            flag = (5, "training") if "batch_norm" in name and "no_training" not in name else \
                (2, "train") if "dropout" in name else None
            if flag is not None:
                value = node.args[flag[0]] if len(node.args) > flag[0] else node.kwargs.get(flag[1], False)
                if value is True:
                    found.append("batch_norm" if "batch_norm" in name else "dropout")
        return sorted(set(found))

    def on_device(self, device: torch.device) -> nn.Module:
        """The program's module on ``device``, the constants its graph holds and the devices it names moved
        too (``torch.export.passes.move_to_device_pass``; ``Module.to`` moves parameters and buffers only)."""
        from torch.export.passes import move_to_device_pass

        return move_to_device_pass(self.exported, device).module()

    def train(self, mode: bool = True) -> "ProgramModel":
        # An exported program is in evaluation mode for good; its module refuses train() and eval().
        self.training = mode
        return self

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.program(batch)


# The method of a .pte file of ours that returns our metadata, as JSON (a constant method: no inputs, a string).
PTE_METADATA = "mobilenet_v1_json"
# ExecuTorch's scalar type numbers of the inputs a .pte of ours takes.
_ET_UINT8, _ET_FLOAT = 0, 6


@contextlib.contextmanager
def executorch_quiet():
    """Around ExecuTorch's imports and passes. Its import logs, through torch's logger, that one of
    torchao's enums need no longer be registered with pytree, and it warns: notes for ExecuTorch's authors,
    silenced for the user. Its XNNPACK partitioner calls ``logging.basicConfig`` as it is imported, and its
    passes log through the root logger (which calls it too): either would leave a handler on the root
    logger for the rest of the process, and make a later ``basicConfig`` of the user's do nothing. The
    root logger's handlers and level are put back as they were."""
    logger, root = logging.getLogger("torch.utils._pytree"), logging.getLogger()
    level, root_level, root_handlers = logger.level, root.level, list(root.handlers)
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Its Python runtime calls itself experimental, and its modules use deprecated importlib calls.
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        for handler in [h for h in root.handlers if h not in root_handlers]:
            root.removeHandler(handler)
        root.setLevel(root_level)


# A line of ExecuTorch's C++ log: "[program.cpp:114] File size is too small ...".
_NATIVE_LINE = re.compile(r"^\[([\w./-]+\.(?:cpp|cc|c|h|hpp):\d+)\] ")


@contextlib.contextmanager
def standard_error_taken(text: List[str]):
    """What is written to the standard error inside the block, by Python (``sys.stderr``) and by native code (file
    descriptor 2), appended to ``text`` as one string when it ends, instead of shown. With the standard error
    closed (``2>&-``: ``sys.stderr`` None, descriptor 2 closed), descriptor 2 is the sink's for the block and
    closed again after."""
    if sys.stderr is not None:
        sys.stderr.flush()
    stream = sys.stderr
    with tempfile.TemporaryFile() as sink:  # before the dup: with 2 closed, the sink may take it
        try:
            saved: Optional[int] = os.dup(2)
        except OSError:  # descriptor 2 closed
            saved = None
        os.dup2(sink.fileno(), 2)
        sys.stderr = caught = io.StringIO()
        try:
            yield
        finally:
            sys.stderr = stream
            if saved is None:
                os.close(2)
            else:
                os.dup2(saved, 2)
                os.close(saved)
            sink.seek(0)
            text.append(caught.getvalue() + sink.read().decode("utf-8", errors="replace"))


@contextlib.contextmanager
def _native_log(lines: List[str]):
    """What ExecuTorch's C++ code logs inside the block, taken into ``lines`` (its ``[file.cpp:N]``
    prefixes, :data:`_NATIVE_LINE`, cut) instead of the standard error: the reasons behind its error codes.
    Its notes, once a process, of XNNPACK's thread pool about the CPU (``cpuinfo_utils``) are not for the
    user and are dropped. Its Python bindings send the log to ``sys.stderr``, and native code may write to
    file descriptor 2: both are caught (:func:`standard_error_taken`). Lines of other origins are written on as
    they came, once the block ends (nowhere with the standard error closed)."""
    taken: List[str] = []
    try:
        with standard_error_taken(taken):
            yield
    finally:
        other = []
        for line in taken[0].removesuffix("\n").split("\n"):
            native = _NATIVE_LINE.match(line)
            if native:
                if "cpuinfo_utils" not in native.group(1):
                    lines.append(line[native.end():].strip())
            else:
                other.append(line)
        if any(other) and sys.stderr is not None:
            print("\n".join(other), file=sys.stderr)


def executorch_runtime():
    """ExecuTorch's Python runtime (``executorch.runtime.Runtime``), or a :class:`CheckpointError` saying how
    to install it."""
    try:
        with executorch_quiet():
            from executorch.runtime import Runtime
    except ImportError as e:
        import importlib.util

        # Not installed: the words of every missing extra (export's check before its work); installed without a
        # runtime that imports (another release's layout, a native library that does not load): what failed.
        missing = missing_extra(e) if importlib.util.find_spec("executorch") is None else None
        raise CheckpointError(missing or f"ExecuTorch's runtime cannot be imported ({e}), which writes and runs "
                                         f".pte files: {install_hint('executorch')}") from None
    return Runtime.get()


class ExecutorchModel(DeployedModel):
    """A ``.pte`` file of ``export --file_format PTE`` (an ExecuTorch program, its network delegated to
    XNNPACK, as it runs on phones), run in ExecuTorch's runtime on the CPU (:class:`DeployedModel`). Its
    metadata is the JSON its constant method :data:`PTE_METADATA` returns; its batch is fixed. ``name``: the
    file its errors name (export and quantize run the temporary file they write under it), ``path`` if None."""

    kind = "ExecuTorch program"

    def __init__(self, path: str, name: Optional[str] = None):
        super().__init__()
        shown = self._named_file(path, name, is_executorch_program, "not an ExecuTorch program (its bytes 4 to 7 "
                                 "are not a .pte file's identifier, ET and two digits)")
        runtime = executorch_runtime()
        with open(path, "rb") as f:  # from memory: the runtime keeps no handle on the file
            data = f.read()
        said: List[str] = []
        try:
            with _native_log(said):
                program = runtime.load_program(data)
                methods = program.method_names
                forward = program.load_method("forward") if "forward" in methods else None
                meta = program.metadata("forward") if forward is not None else None
                stored = (program.load_method(PTE_METADATA).execute([]) if PTE_METADATA in methods else [""])
        except RuntimeError as e:  # the runtime's one error type for damaged or foreign programs; its
            # message is an error code, the reason is what it logged
            reason = "; ".join(said) or (str(e).splitlines()[0] if str(e) else "RuntimeError")
            raise CheckpointError(f"ExecuTorch program {shown}: ExecuTorch cannot load it ({reason})") from None
        if forward is None or meta.num_inputs() != 1 or len(meta.input_tensor_meta(0).sizes()) != 4:
            raise CheckpointError(f"ExecuTorch program {shown}: expected a method 'forward' with one (N, 3, H, W) "
                                  f"input (or uint8 (N, H, W, 3)): not a classifier of mobilenet-v1 export")
        self.metadata = self._json_metadata(stored[0], shown, PTE_METADATA)
        spec = meta.input_tensor_meta(0)
        if spec.dtype() not in (_ET_UINT8, _ET_FLOAT):
            raise CheckpointError(f"ExecuTorch program {shown}: its input is neither float32 nor uint8 (ExecuTorch "
                                  f"scalar type {spec.dtype()}): not a classifier of mobilenet-v1 export")
        logits = meta.output_tensor_meta(0).sizes() if meta.num_outputs() == 1 else ()
        self.output_dims = len(logits) if meta.num_outputs() == 1 else None
        self._class_num = logits[-1] if len(logits) == 2 else None
        self.path = path
        self.input_shape = list(spec.sizes())
        self.image_input = spec.dtype() == _ET_UINT8
        self._check_image_input()
        self.program, self.method = program, forward  # the method needs its program alive

    def _run(self, batch: torch.Tensor) -> torch.Tensor:
        try:
            return self.method.execute([batch])[0]
        except RuntimeError as e:
            # ExecuTorch's runtime takes tensors across PyTorch's C++ interface, which changes between PyTorch
            # releases, and pip installs the newest executorch beside any torch: executorch 1.5.1 under torch
            # 2.11 failed so on float and uint8 inputs ("tensor does not have a device", then a C++ stack).
            from importlib.metadata import PackageNotFoundError, version

            try:
                made = version("executorch")
            except PackageNotFoundError:
                made = "(version unknown)"
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(
                f"ExecuTorch program {self.name}: ExecuTorch {made}'s runtime failed to run it under torch "
                f"{torch.__version__} ({reason}); its runtime is built for one PyTorch release: install torch and "
                f"executorch releases made together (executorch 1.5.1 runs with torch 2.14.1)") from None


def to_pixel_format(rgb: torch.Tensor, pixel_format: str) -> torch.Tensor:
    """uint8 RGB pixels (..., 3) as ``pixel_format``'s (a contiguous copy): the channels reordered, an
    opaque alpha (255) added where the format has one."""
    picks, channels = PIXEL_FORMATS[pixel_format]
    out = rgb.new_full((*rgb.shape[:-1], channels), 255)
    out[..., list(picks)] = rgb
    return out


def is_deployed_file(path: str) -> bool:
    """An ONNX file (by its name or content), an ExecuTorch program (by its content), a TensorFlow Lite file
    (:func:`tflite_io.is_tflite_file`) or a ``.pt2`` program (by its name and content,
    :func:`checkpoint.is_program_file`: a program named otherwise is read as a checkpoint, with ``weights_only``,
    and refused): a file that ``eval`` and ``predict`` run as :func:`load_deployed` gives it."""
    # An ExecuTorch program by its content, whatever its name: a file named .pte that is not one is read
    # as a checkpoint, which names it; handed to ExecuTorch, other bytes can end the process (its log of
    # the identifier it found fails to decode) rather than raise.
    from .tflite_io import is_tflite_file

    return (is_onnx_file(path) or is_executorch_program(path) or is_tflite_file(path)
            or is_program_file(path))


def refuse_gpu(path: str, device_target: str, instead: str) -> None:
    """An error for ``--device_target GPU`` with an exported file (it runs on the CPU here), saying what to
    do ``instead`` ("predict with", "time")."""
    if device_target == "GPU":
        raise ValueError(f"--device_target GPU: {path} is an exported file, which runs on the CPU here; {instead} "
                         f"the checkpoint it was exported from to use the GPU")


def load_deployed(path: str, threads: int = 0):
    """:class:`OnnxModel` of an ONNX file (on ``threads`` intra-op threads; 0: ONNX Runtime's choice),
    :class:`tflite_io.TfliteModel` of a ``.tflite`` file (as many LiteRT threads), :class:`ExecutorchModel` of a
    ``.pte`` program, :class:`ProgramModel` of a ``.pt2`` program."""
    from .tflite_io import is_tflite_file, load_tflite

    if is_onnx_file(path):
        return OnnxModel(path, threads)
    if is_tflite_file(path):
        return load_tflite(path, threads)
    return ExecutorchModel(path) if is_executorch_program(path) else ProgramModel(path)


def _split_fixed(x: torch.Tensor, n: int) -> List[torch.Tensor]:
    """A batch cut into pieces of exactly ``n`` rows for a graph exported with a static batch
    (the last piece padded with zeros; the caller drops the padded rows' outputs)."""
    parts = []
    for start in range(0, x.shape[0], n):
        part = x[start:start + n]
        if part.shape[0] < n:
            part = torch.cat([part, part.new_zeros((n - part.shape[0],) + tuple(part.shape[1:]))])
        parts.append(part)
    return parts


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _positive_number(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def _names(text: str) -> list:
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(text)
    return value


def _channel_values(text: str, positive: bool = False) -> list:
    value = json.loads(text)
    if not (isinstance(value, list) and len(value) == 3 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
            for v in value)):
        raise ValueError(text)
    return value


# How each metadata entry is read, and what it must be: a value that is not is refused, naming the entry.
def _true_or_false(value: str) -> bool:
    """A flag as export writes it: "True"/"False" (JSON's "true"/"false" in a .pt2); anything else (a "maybe"
    read as False resized otherwise than its run without a word) a ValueError."""
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


def _output(value: str) -> str:
    """What the output holds, one of :data:`OUTPUTS`; anything else a ValueError."""
    if value not in OUTPUTS:
        raise ValueError(value)
    return value


def _interpolation(value: str) -> str:
    """The resize's interpolation as export writes it; another ("lanczos") a ValueError, not bilinear unsaid."""
    from .transforms import INTERPOLATIONS

    if value not in INTERPOLATIONS:
        raise ValueError(value)
    return value


_DECODERS = {"classes": (_names, "a JSON list of names"),
             "mean": (_channel_values, "a JSON list of three finite numbers"),
             "std": (lambda v: _channel_values(v, positive=True), "a JSON list of three positive numbers"),
             "held_out": (json.loads, "JSON"),
             "image_size": (_positive_int, "a positive integer"), "class_num": (_positive_int, "a positive integer"),
             "trained_image_size": (_positive_int, "a positive integer"),
             "width_mult": (_positive_number, "a positive number"), "crop_pct": (_positive_number, "a positive number"),
             # "True" in ONNX metadata, JSON's "true" in a .pt2
             "exif_orientation": (_true_or_false, "True or False"), "antialias": (_true_or_false, "True or False"),
             "interpolation": (_interpolation, "bilinear or bicubic"), "output": (_output, "logits or probabilities")}


def read_metadata(props: Dict[str, str]) -> Dict[str, Any]:
    """Our metadata entries, decoded (JSON values parsed, numbers as numbers); other keys dropped. An entry
    that does not decode to what it must be raises a ValueError naming it and its value."""
    out: Dict[str, Any] = {}
    for key in META_KEYS:
        if key not in props:
            continue
        value = props[key]
        decode, kind = _DECODERS.get(key, (str, ""))
        try:
            out[key] = decode(value)
        except ValueError as e:
            raise ValueError(f"its metadata entry {key} {value!r} is not {kind}") from e
    return out


def write_metadata(model_proto, values: Dict[str, Any]) -> None:
    """Set our metadata entries on an ``onnx.ModelProto`` (replacing earlier values of the same keys)."""
    encoded = {}
    for key, value in values.items():
        if value is None:
            continue
        if key not in META_KEYS:
            raise KeyError(f"unknown ONNX metadata key {key!r}")
        encoded[key] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
    kept = [p for p in model_proto.metadata_props if p.key not in encoded]
    del model_proto.metadata_props[:]
    model_proto.metadata_props.extend(kept)
    for key, value in encoded.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def add_image_input(model_proto, mean: Sequence[float], std: Sequence[float], pixel_format: str = "RGB") -> None:
    """Put a uint8 image input in front of a float (N, 3, H, W) graph of ours, in place: ``image``, uint8
    pixels (N, H, W, C) of ``pixel_format`` (:data:`PIXEL_FORMATS`; other than RGB, a ``Gather`` first
    takes R, G and B out of them), cast to float, transposed to (N, 3, H, W) and normalised,
    ``x * (1 / (255 std)) + (-mean / std)`` with the constants our loaders normalise with, into the
    tensor that was the input. The rest of the graph (float or INT8) is unchanged."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from .transforms import Normalize

    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"add_image_input: pixel_format {pixel_format!r} is none of {', '.join(PIXEL_FORMATS)}")
    graph = model_proto.graph
    if len(graph.input) != 1 or graph.input[0].type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ValueError("add_image_input: expected a graph with one float input")
    old = graph.input[0]
    dims = list(old.type.tensor_type.shape.dim)
    if len(dims) != 4 or dims[1].dim_value != 3:
        raise ValueError(f"add_image_input: expected (N, 3, H, W), found {[d.dim_param or d.dim_value for d in dims]}")
    norm = Normalize(mean, std, torch.device("cpu"))  # the same float32 constants as the loaders'
    graph.initializer.extend([numpy_helper.from_array(norm.scale.numpy(), IMAGE_CONSTANTS[0]),
                              numpy_helper.from_array(norm.shift.numpy(), IMAGE_CONSTANTS[1])])
    to_float, to_nchw, scaled, rgb = (f"{IMAGE_INPUT}_{what}" for what in ("float", "nchw", "scaled", "rgb"))
    picks, channels = PIXEL_FORMATS[pixel_format]
    nodes, source = [], IMAGE_INPUT
    if pixel_format != "RGB":
        graph.initializer.append(numpy_helper.from_array(np.array(picks, dtype=np.int64), CHANNELS_CONSTANT))
        nodes.append(helper.make_node("Gather", [source, CHANNELS_CONSTANT], [rgb], name=CHANNELS_NODE, axis=3))
        source = rgb
    nodes += [helper.make_node("Cast", [source], [to_float], name=IMAGE_NODES[0], to=TensorProto.FLOAT),
              helper.make_node("Transpose", [to_float], [to_nchw], name=IMAGE_NODES[1], perm=[0, 3, 1, 2]),
              helper.make_node("Mul", [to_nchw, IMAGE_CONSTANTS[0]], [scaled], name=IMAGE_NODES[2]),
              helper.make_node("Add", [scaled, IMAGE_CONSTANTS[1]], [old.name], name=IMAGE_NODES[3])]
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    image = helper.make_tensor_value_info(IMAGE_INPUT, TensorProto.UINT8, None)
    _set_dims(image, [dims[0], dims[2], dims[3], _fixed_dim(channels)])
    del graph.input[:]
    graph.input.append(image)


def strip_image_input(model_proto) -> bool:
    """Take off, in place, what :func:`add_image_input` put in front of a graph, leaving its float
    (N, 3, H, W) input; False (and nothing changed) for a graph without it."""
    from onnx import TensorProto, helper

    graph = model_proto.graph
    nodes = {node.name: node for node in graph.node if node.name in IMAGE_NODES}
    if (len(graph.input) != 1 or graph.input[0].name != IMAGE_INPUT
            or graph.input[0].type.tensor_type.elem_type != TensorProto.UINT8 or len(nodes) != len(IMAGE_NODES)):
        return False
    dims = list(graph.input[0].type.tensor_type.shape.dim)
    name = nodes[IMAGE_NODES[-1]].output[0]
    ours = IMAGE_NODES + (CHANNELS_NODE,)  # the pixel format's node, where there is one
    kept = [node for node in graph.node if node.name not in ours]
    del graph.node[:]
    graph.node.extend(kept)
    constants = [i for i in graph.initializer if i.name not in IMAGE_CONSTANTS + (CHANNELS_CONSTANT,)]
    del graph.initializer[:]
    graph.initializer.extend(constants)
    restored = helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
    _set_dims(restored, [dims[0], _fixed_dim(3), dims[1], dims[2]])
    del graph.input[:]
    graph.input.append(restored)
    return True


def _fixed_dim(size: int):
    """A ``TensorShapeProto.Dimension`` of a fixed ``size``."""
    from onnx import TensorShapeProto

    dim = TensorShapeProto.Dimension()
    dim.dim_value = size
    return dim


def _set_dims(value_info, dims) -> None:
    """Give a graph input the shape ``dims`` (``TensorShapeProto.Dimension``s, copied: a symbolic batch
    stays symbolic, an unknown one unknown)."""
    shape = value_info.type.tensor_type.shape
    shape.Clear()
    for dim in dims:
        shape.dim.add().CopyFrom(dim)
