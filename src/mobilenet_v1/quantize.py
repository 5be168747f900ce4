"""``mobilenet-v1 quantize``: an fp32 ONNX file to a static INT8 one, with ONNX Runtime's quantizer; or
(``--program``) a float ``.pt2`` program to an INT8 ExecuTorch program for XNNPACK, with ExecuTorch's
own quantizer (:func:`quantize_program`); or (``--tflite``) a float ``.tflite`` to a full-integer INT8 one
(:func:`tflite_quant.quantize_tflite`).

QDQ format (QuantizeLinear/DequantizeLinear pairs around standard ops, which ONNX Runtime fuses into
integer kernels and other runtimes read as well), int8 weights per output channel, uint8 activations
(x86's fast u8 x s8 dot products; VNNI needs no reduced range). Activation ranges are the min/max over
a random sample of a few hundred *training* images, put through the evaluation transforms by our own
loader, so the ranges are those the model sees at evaluation without looking at the evaluation set.

The ReLU6 after each conv is absorbed into the conv's output range. The classifier's weights are
INT8 too, but its output (the logits) stays float: 256 levels over the logits' range would make close
classes tie and flip predictions for almost no speed (except ``--tflite`` with ``--int8_io True``, whose
input and logits are int8 for TensorFlow Lite for Microcontrollers). A program's and a ``.tflite``'s
activations are calibrated on the same images, through the same loader.
"""
import dataclasses
import itertools
import os
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt_io
from .archive import COMPRESSED_SUFFIXES, is_archive, is_shard_pattern
from .config import (DATASETS, CommandParser, add_max_bad_samples_option, add_num_workers_option, bool_option,
                     cifar_name, is_cifar, seed_number, whole_number)
from .data import (IMAGENET_EVAL_FOLDERS, IMAGENET_TRAIN_FOLDER, DataError, DataOptions, DeviceLoader, Normalisation,
                   UnsortedImagesError, build_loader, default_workers, foreign_class_folders, held_out_for,
                   held_out_read_note)
from .engine import ranked
from .onnx_io import (ExecutorchModel, OnnxModel, ProgramModel, add_image_input, is_onnx_file, read_metadata,
                      strip_image_input, write_metadata,
                      x86_without_vnni)
from .runtime import interrupt_deferred, plural, print0, shell_path
from .transforms import CROP_PCT, recorded_interpolation

DEFAULT_CALIB_IMAGES = 300
# Fewer calibration images than this are warned of: their ranges are narrow, and the check after quantizing,
# on those same images, agrees all the same (a user walkthrough's 2 images: 100% agreement on them, and on
# its eval split a top-1 of 0.37 against 0.63 calibrated on 240; figures a helper reported, not rerun here).
FEW_CALIB_IMAGES = 100
CALIB_BATCH = 16
# Images a run of ONNX Runtime's calibrator takes at once (a graph of dynamic batch): see _reader.
CALIB_RUN = 4


class QuantizeError(ValueError):
    """A quantization that cannot be done; the message names the file or option."""


class NoCalibrationImages(QuantizeError):
    """The calibration batches held no image the model takes (:func:`main` says why, naming --calib_data)."""

    def __init__(self):
        super().__init__("no calibration images were read")


def whole_batches(count: int, batch_size: int) -> int:
    """``count`` rounded up to a whole number of batches: a graph exported with a static batch takes
    only batches of exactly its size, so the calibration sample is that many images."""
    return -(-count // batch_size) * batch_size


def calibration_loader(dataset: str, calib_data: str, image_size: int, count: int, seed: int,
                       batch_size: int = CALIB_BATCH, num_workers: int = -1, static_batch: bool = False,
                       max_bad_samples: int = -1, val_split: float = 0.0,
                       crop_pct: float = CROP_PCT, exif_orientation: bool = False,
                       classes: Optional[Sequence[str]] = None,
                       antialias: bool = True, interpolation: str = "bilinear",
                       norm: Optional[Normalisation] = None) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` training images chosen at random (``seed``) with their labels, as normalised float32
    NCHW batches on the CPU made by the evaluation transforms (resize, and centre crop for ImageNet
    folders; normalisation). Unreadable files are skipped as in training (``max_bad_samples``).

    ``static_batch``: every batch holds exactly ``batch_size`` images (``count`` must be a multiple of it,
    see :func:`whole_batches`), also where skipped files shortened a batch of the loader; a data set of
    fewer images than ``count`` ends at its last whole batch. Calibration and the comparison after it
    then see the same images. ``val_split``: an image folder's share of each class held out from
    training (:mod:`data`), left out here too. ``crop_pct``: an image folder's evaluation crop;
    ``exif_orientation``: its photos turned upright by their EXIF tag; ``antialias``: its resizes
    antialiased (False: plain bilinear, the seed's) and ``interpolation`` theirs; ``classes``: its class folders
    labelled as the model's (those a file records), not by their own sorted list; ``norm``: the (mean, std)
    the model's run normalised by (None: the data set's)."""
    if static_batch and count % batch_size:
        raise ValueError(f"calibration_loader: {count} images are not whole batches of {batch_size}")
    opts = DataOptions(dataset=dataset, dataset_path=calib_data, batch_size=batch_size, image_size=image_size,
                       seed=seed, num_workers=num_workers, channels_last=False, flip=False, pipeline="cpu",
                       max_bad_samples=max_bad_samples, val_split=val_split, crop_pct=crop_pct,
                       exif_orientation=exif_orientation, antialias=antialias, interpolation=interpolation,
                       norm=norm)
    # No more loader workers than the sample has batches (--calib_images 10: none of 8 idle).
    opts = dataclasses.replace(opts, num_workers=min(default_workers(num_workers), -(-count // batch_size)))
    taken = 0
    try:
        # drop_last False: a top-up pass of fewer images than a batch (_first_readable) is regrouped, not dropped.
        loader = build_loader(opts, train=False, device=torch.device("cpu"), drop_last=False, split="train",
                              shuffle=True, classes=classes)
    except UnsortedImagesError as e:  # eval's way out (--eval_labels) is not the calibrating commands'
        raise e.instead("and the training split is read as training reads it: move them into one sub-folder of it, "
                        "of any name (their labels are not used)") from None
    with loader:  # closed with this generator
        passes = _first_readable(loader, count)
        for x, y in (_whole_batches_of(passes, batch_size) if static_batch else passes):
            x, y = x[: count - taken], y[: count - taken]
            taken += x.shape[0]
            yield x, y
            if taken >= count:
                return


def _first_readable(loader: DeviceLoader, count: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """The batches of the first ``count`` readable images of ``loader``'s order (an evaluation loader's,
    not yet passed over). Only they are read and decoded (:meth:`data.DeviceLoader.take_first`), not the
    rest of the last batch nor the batches the workers read ahead: the first ``count`` positions, then,
    where unreadable files among them were left out, as many of the next positions as were missing, until
    ``count`` images are read or the split ends. The images are those a pass over the whole order stopped
    at ``count`` images gives (in other batches after an unreadable file)."""
    sampler = loader.sampler
    loader.take_first(count)
    read = 0
    while True:
        for x, y in loader:
            read += x.shape[0]
            yield x, y
        end = sampler.keep
        if read >= count or end >= sampler.size:
            return
        # The positions after those passed over, one for each image missing: a pass from ``end`` (a position
        # the loaders' batch-wise set_epoch cannot give) to ``end + count - read``.
        sampler.keep = min(sampler.size, end + count - read)
        sampler.set_epoch(sampler.epoch, end)


def _whole_batches_of(batches: Iterable[Tuple[torch.Tensor, torch.Tensor]],
                      size: int) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """``batches`` regrouped into batches of exactly ``size``; the images left over at the end are dropped."""
    xs: List[torch.Tensor] = []
    ys: List[torch.Tensor] = []
    held = 0
    for x, y in batches:
        xs.append(x)
        ys.append(y)
        held += x.shape[0]
        while held >= size:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            yield x_all[:size], y_all[:size]
            xs, ys, held = [x_all[size:]], [y_all[size:]], held - size


def _reader(batches: Iterator[Tuple[torch.Tensor, torch.Tensor]], input_name: str, fixed_batch: Optional[int]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """Feeds the calibration batches to ONNX Runtime's calibrator one at a time."""

        def __init__(self):
            self.images = 0
            self.pending: List[torch.Tensor] = []

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            if not self.pending:
                for x, _ in batches:
                    if fixed_batch is not None and x.shape[0] != fixed_batch:
                        continue  # a graph exported with a static batch takes no partial batch
                    self.images += x.shape[0]
                    # ONNX Runtime's calibration session (the graph with a ReduceMin/ReduceMax on every tensor)
                    # takes about 84 MB an image of a run at width 1.0, 224 px (batch 16: +1.3 GB). A graph of
                    # dynamic batch is run CALIB_RUN images at a time; the ranges (min and max over every
                    # image) are the same whatever the split.
                    self.pending = list(x.split(CALIB_RUN)) if fixed_batch is None else [x]
                    break
                else:
                    return None
            return {input_name: np.ascontiguousarray(self.pending.pop(0).numpy(), dtype=np.float32)}

    return Reader()


def _quantize_static(src: str, reader, tmp: str, per_channel: bool = True, reduce_range: bool = False,
                     overrides: Optional[Dict[str, List[Dict[str, Any]]]] = None):
    """ONNX Runtime's static QDQ quantization of ``src`` (see the module's docstring), worked in the
    folder ``tmp``; returns the quantized ``onnx.ModelProto``. ``overrides``: ONNX Runtime's
    ``TensorQuantOverrides``, a tensor's scale and zero point given instead of calibrated."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    import onnx

    prepared = os.path.join(tmp, "prepared.onnx")
    # Shape inference and ONNX Runtime's portable (basic-level) graph clean-up, as the quantizer's
    # documentation asks, so that every tensor the quantizer looks at has a known type and shape.
    with ckpt_io.temporary_files_in(tmp):  # its scratch copies of the model in the work folder, not in TMPDIR
        quant_pre_process(src, prepared)
    out = os.path.join(tmp, "int8.onnx")
    extra: Dict[str, Any] = {"OpTypesToExcludeOutputQuantization": ["Gemm"]}
    if overrides:
        # The weight scales stay max |w| / 127 (or 64) per channel, as the model that learned the ranges had them.
        extra.update(TensorQuantOverrides=overrides, QDQDisableWeightAdjustForInt32Bias=True)
    with ckpt_io.temporary_files_in(tmp):  # its calibration graph too
        quantize_static(prepared, out, reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        extra_options=extra)
    return onnx.load(out)


def quantize_file(src: str, dst: str, batches: Iterator[Tuple[torch.Tensor, torch.Tensor]], per_channel: bool = True,
                  reduce_range: bool = False, check: Optional[Callable[[str], Any]] = None) -> Dict[str, Any]:
    """Static INT8 quantization of ``src`` into ``dst`` (QDQ; see the module's docstring).

    ``batches`` are the calibration inputs, (images, labels) pairs; the labels are not used. The metadata of ``src`` is kept and a ``quantization``
    entry added. Returns the sizes of both files, the number of calibration images and ``removed``, the temporary
    files an interrupted export or quantize had left in the folder (:func:`checkpoint.remove_partial_files`). A
    file with an image input (``export --image_input``) is quantized behind it: the float graph is calibrated on
    the normalised batches and the image input put back in front of the INT8 graph. ``check``: called with the
    INT8 file under its temporary name before it takes ``dst`` (what it returns is the result's ``check``); where
    anything fails, nothing is written and no earlier ``dst`` replaced.
    """
    import onnx

    fp32 = OnnxModel(src)
    fp32.check_classifier()  # its calibration check compares class scores
    source_proto = onnx.load(src)
    meta = read_metadata({p.key: p.value for p in source_proto.metadata_props})
    removed = ckpt_io.remove_deployed_partials(dst)
    with ckpt_io.atomic_output(dst) as tmp:
        with ckpt_io.work_folder(tmp) as work:
            core = src
            if fp32.image_input:
                # The float graph behind the image input is quantized, and the image input put back in front.
                if not strip_image_input(source_proto):
                    raise QuantizeError(f"{src}: a uint8 input that is not the image input of mobilenet-v1 export")
                core = os.path.join(work, "float.onnx")
                onnx.save(source_proto, core)
                fp32 = OnnxModel(core)
            # A first batch the graph takes, before ONNX Runtime, whose words for none are "No data is
            # collected."; not an empty one (every file of a loader batch unreadable), which it calibrates on
            # without a word.
            batches = iter(batches)
            first = next((b for b in batches if b[0].shape[0] and fp32.fixed_batch in (None, b[0].shape[0])), None)
            if first is None:
                raise NoCalibrationImages()
            reader = _reader(itertools.chain([first], batches), fp32.input_name, fp32.fixed_batch)
            proto = _quantize_static(core, reader, work, per_channel, reduce_range)
        if core != src:
            add_image_input(proto, meta["mean"], meta["std"], meta.get("pixel_format", "RGB"))
        meta["quantization"] = (f"INT8 static, QDQ, {'per-channel' if per_channel else 'per-tensor'} int8 weights"
                                f"{' (7-bit range)' if reduce_range else ''}, uint8 activations, "
                                f"min/max over {plural(reader.images, 'image')}")
        write_metadata(proto, meta)
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
        result = {"path": dst, "bytes": os.path.getsize(tmp), "fp32_bytes": os.path.getsize(src),
                  "calib_images": reader.images, "removed": removed}
        if check is not None:
            result["check"] = check(tmp)
    return result


def _pads_on_int8(gm):
    """``gm`` (a converted PT2E graph) with the requantization after each zero pad taken out: SAME
    padding's ``F.pad`` before a stride-2 conv comes out of the quantizer as dequantize -> pad ->
    quantize -> dequantize -> conv, a pass over the map in float and a second rounding. Without the
    quantize and dequantize, the conv's input is the padded map on its producer's int8 scale (a zero pad
    is exact on it: zero is a level), and XNNPACK's partitioner takes the pad into the quantized conv as
    an int8 pad (batch 1 on the 2-core development CPU: 1.14x the latency of timm's network, which needs
    no pads, before; 1.00x after; benchmarks/RESULTS.md). The first conv's pad, of the float input,
    stays. Returns ``gm``."""
    q_ops = (torch.ops.quantized_decomposed.quantize_per_tensor.default,)
    dq_ops = (torch.ops.quantized_decomposed.dequantize_per_tensor.default,)
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in (torch.ops.aten.pad.default,
                                                              torch.ops.aten.constant_pad_nd.default):
            continue
        source = node.args[0]
        if node.target == torch.ops.aten.pad.default:
            mode = node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant")
            value = node.kwargs.get("value", node.args[3] if len(node.args) > 3 else None)
        else:
            mode, value = "constant", node.kwargs.get("value", node.args[2] if len(node.args) > 2 else 0.0)
        users = list(node.users)
        if (mode != "constant" or (value or 0.0) != 0.0 or getattr(source, "target", None) not in dq_ops
                or len(users) != 1 or users[0].target not in q_ops
                or not all(user.target in dq_ops for user in users[0].users)):
            continue
        requantize = users[0]
        for dequantize in list(requantize.users):
            dequantize.replace_all_uses_with(node)
            gm.graph.erase_node(dequantize)
        gm.graph.erase_node(requantize)
        changed = True
    if changed:
        gm.recompile()
    return gm


def quantize_program(src: str, dst: str, batches: Iterator[Tuple[torch.Tensor, torch.Tensor]],
                     per_channel: bool = True, check: Optional[Callable[[str], Any]] = None) -> Dict[str, Any]:
    """Static INT8 quantization of the ``.pt2`` float program ``src`` (``export --file_format PT2``) into
    the ExecuTorch program ``dst`` (``.pte``), as ExecuTorch quantizes for XNNPACK: PyTorch's PT2E
    quantization with ExecuTorch's ``XNNPACKQuantizer`` (int8 weights, per channel unless ``per_channel``
    is False; int8 activations, their ranges observed on ``batches``), then lowered to XNNPACK
    (:func:`export.lower_to_executorch`). A program with an image input is quantized behind it, its
    normalisation left in float. The batch of ``dst`` is ``src``'s fixed batch, or 1 for a dynamic one.
    The metadata of ``src`` is kept and a ``quantization`` entry added. Returns what :func:`quantize_file`
    returns, ``check`` as there."""
    from .export import lower_to_executorch
    from .onnx_io import executorch_quiet, executorch_runtime

    executorch_runtime()  # installed, or an error that says how
    fp32 = ProgramModel(src)
    fp32.check_classifier()
    removed = ckpt_io.remove_deployed_partials(dst)
    images = 0
    example = None
    with executorch_quiet():  # the quantization passes announce their own internals
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                             get_symmetric_quantization_config)
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
        fp32.program = prepare_pt2e(fp32.program, quantizer)
    # Outside: the loader's own warnings (an unreadable image, skipped) are for the user.
    for x, _ in batches:  # ProgramModel hands the program pixels or the float batch, as it takes them
        fp32(x)
        images += x.shape[0]
        if example is None:  # the program's batch, for the export below
            example = x[:1].repeat(fp32.fixed_batch or 1, 1, 1, 1)
    if images == 0:
        raise NoCalibrationImages()
    with executorch_quiet():
        converted = _pads_on_int8(convert_pt2e(fp32.program))
        example = fp32.pixels(example) if fp32.image_input else example.to("cpu", torch.float32)
        with torch.no_grad(), interrupt_deferred():  # its lazy imports: as in export.to_onnx
            program = torch.export.export(converted, (example.contiguous(),))
    meta = dict(fp32.metadata)
    meta["quantization"] = (f"INT8 static, ExecuTorch XNNPACK quantizer (PT2E), "
                            f"{'per-channel' if per_channel else 'per-tensor'} int8 weights, int8 activations, "
                            f"ranges observed over {plural(images, 'image')}")
    data = lower_to_executorch(program, meta)
    with ckpt_io.atomic_output(dst) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
        result = {"path": dst, "bytes": len(data), "fp32_bytes": os.path.getsize(src), "calib_images": images,
                  "removed": removed}
        if check is not None:
            result["check"] = check(tmp)
    return result


def activation_tensors(proto) -> List[str]:
    """The names of the tensors a quantization-aware model rounds, in its order (:mod:`qat`): the graph's
    input, the output of each layer's ``Conv -> Clip`` (layer k's conv weight is ``network.k.0.weight``)
    and the ``ReduceMean``'s. A graph of another shape is an error."""
    import re

    graph = proto.graph
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = {}
    for node in graph.node:
        found = re.fullmatch(r"network\.(\d+)\.0\.weight", node.input[1]) if node.op_type == "Conv" else None
        if found:
            convs[int(found.group(1))] = node
    names = [graph.input[0].name]
    if sorted(convs) != list(range(len(convs))) or not convs:
        raise QuantizeError(f"not a MobileNetV1 graph of export's: convs of layers {sorted(convs)}")
    for k in range(len(convs)):
        if [n.op_type for n in consumers.get(convs[k].output[0], [])] != ["Clip"]:
            raise QuantizeError(f"not a MobileNetV1 graph of export's: layer {k}'s Conv is not followed by one Clip")
        names.append(consumers[convs[k].output[0]][0].output[0])
    pooled = [n for n in consumers.get(names[-1], []) if n.op_type == "ReduceMean"]
    if len(pooled) != 1:
        raise QuantizeError("not a MobileNetV1 graph of export's: no ReduceMean after the last layer")
    names.append(pooled[0].output[0])
    return names


def roundings(proto) -> Tuple[List[Tuple[float, int]], List[np.ndarray], List[np.ndarray]]:
    """How an INT8 file of ``export`` rounds, read off its ``DequantizeLinear`` nodes in graph order: the
    (scale, zero point) of the input of each ``Conv``, of the ``ReduceMean`` and of the ``Gemm`` (29 for
    MobileNetV1); the per-channel weight scales of each ``Conv`` and of the ``Gemm``; and their biases as
    the file holds them (int32 levels times their scales, in float32)."""
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    producer = {out: node for node in proto.graph.node for out in node.output}

    def dequantized(name: str) -> Tuple[np.ndarray, np.ndarray]:
        node = producer.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[1] not in constants:
            raise QuantizeError(f"tensor {name} of the INT8 graph is not dequantized from constants")
        zero = constants[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
        return constants[node.input[1]], zero

    activations, weights, biases = [], [], []
    for node in proto.graph.node:
        if node.op_type in ("Conv", "ReduceMean", "Gemm"):
            scale, zero = dequantized(node.input[0])
            activations.append((float(scale), int(zero)))
            if node.op_type != "ReduceMean":
                weights.append(dequantized(node.input[1])[0])
                if len(node.input) < 3 or not node.input[2]:  # the exporter drops a bias of zeros
                    biases.append(np.zeros(weights[-1].size, np.float32))
                    continue
                levels = producer[node.input[2]].input[0]
                biases.append(constants[levels].astype(np.float32) * dequantized(node.input[2])[0])
    return activations, weights, biases


def quantize_with_ranges(src: str, qparams: Sequence[Tuple[float, int]], tmp: str, reduce_range: bool = False, *,
                         weight_scales: Sequence[np.ndarray]):
    """``src`` (an fp32 file of ``export``) quantized with the activation scales and zero points a
    quantization-aware model learned, one (scale, zero point) for each of :func:`activation_tensors`,
    instead of calibrated ones, and the weight scales it rounds to, ``weight_scales`` (one array of
    per-output-channel scales for each ``Conv`` and the ``Gemm``, in graph order: :func:`qat.deployed_roundings`);
    returns the ``onnx.ModelProto``. Weights and biases are rounded by ONNX Runtime at those scales (per channel;
    7-bit with ``reduce_range``), as :mod:`qat` rounds them."""
    import onnx

    fp32 = OnnxModel(src)
    proto = onnx.load(src)
    names = activation_tensors(proto)
    if len(names) != len(qparams):
        raise QuantizeError(f"{src}: {len(names)} activations to quantize, {len(qparams)} ranges given")
    overrides = {name: [{"scale": np.array(scale, np.float32), "zero_point": np.array(zero_point, np.uint8)}]
                 for name, (scale, zero_point) in zip(names, qparams)}
    weights = [node.input[1] for node in proto.graph.node if node.op_type in ("Conv", "Gemm")]
    if len(weights) != len(weight_scales):
        raise QuantizeError(f"{src}: {len(weights)} weights to quantize, {len(weight_scales)} sets of scales given")
    for name, scales in zip(weights, weight_scales):
        # Per channel along axis 0 (a Conv's output channels, the Gemm's rows: its weight is transposed).
        overrides[name] = [{"scale": np.array(s, np.float32), "zero_point": np.array(0, np.int8)}
                           for s in np.asarray(scales, np.float32).reshape(-1)]
        overrides[name][0]["axis"] = 0
    # The calibrator still reads one batch; every range it measures is overridden.
    shape = [fp32.fixed_batch or 1, 3, *fp32.image_hw]
    one = iter([(torch.zeros(shape), torch.zeros(shape[0], dtype=torch.long))])
    return _quantize_static(src, _reader(one, fp32.input_name, fp32.fixed_batch), tmp, reduce_range=reduce_range,
                            overrides=overrides)


def calibration_classes(calib_data: str, recorded: Optional[Sequence[str]],
                        val_split: float = 0.0) -> Tuple[Optional[List[str]], str]:
    """The class list an image folder's calibration images are labelled by: the model's (``recorded``, as
    eval labels them) where it names every class folder of the split read; else None (the folders'
    own sorted order: the ranges need no labels) and a note that the top-1 compared then means nothing."""
    if not recorded:
        return None, ""
    _, foreign = foreign_class_folders(calib_data, recorded, val_split)
    if not foreign:
        return list(recorded), ""
    return None, (f"{foreign} are not among the model's {len(recorded)} classes: the activation ranges are measured "
                  f"on every image, but the top-1 below labels the folders by their own order and means nothing")


@torch.no_grad()
def compare_top1(reference: nn.Module, candidate: nn.Module,
                 loader: Iterable[Tuple[torch.Tensor, torch.Tensor]]) -> Dict[str, float]:
    """Top-1 accuracy of two models over the same batches, and the share of images on which their top-1
    classes agree (whether right or wrong). Ranked as eval ranks (:func:`engine.ranked`: a tie, frequent in
    INT8 outputs, to the lower index); an image whose outputs are not finite has no top-1, as in eval: no hit,
    and no agreement."""
    ref_hits = cand_hits = same = total = 0
    for x, y in loader:
        outputs = [reference(x), candidate(x)]
        a, b = (torch.where(torch.isfinite(o).all(dim=1), ranked(o, 1)[:, 0], -1).to(y.device) for o in outputs)
        ref_hits += int((a == y).sum())
        cand_hits += int((b == y).sum())
        same += int(((a == b) & (a >= 0)).sum())
        total += y.shape[0]
    n = max(total, 1)
    return {"images": total, "reference_top1": ref_hits / n, "candidate_top1": cand_hits / n, "agreement": same / n}


def eval_path(calib_data: str, dataset: str) -> str:
    """The folder whose evaluation split ``eval`` reads, for calibration data given as ``calib_data``: itself, but
    for the seed's CIFAR training folder (cifar-10-batches-bin), which holds none: the folder that holds it and
    cifar-10-verify-bin (an eval of the folder given was refused)."""
    if dataset not in ("cifar10", "cifar100"):
        return calib_data
    from .data import cifar_files

    parent = os.path.dirname(os.path.normpath(calib_data)) or os.curdir
    for folder in (calib_data, parent):
        try:
            cifar_files(folder, False, dataset, quiet=True)
            return folder
        except DataError:
            continue
    return calib_data


def _taken_as(option: str, path: str, export: str) -> str:
    """What ends the refusal of ``path`` given to ``option``: the option of the file kind it is (--onnx x.tflite
    said to export an ONNX file), or the ``export`` command that writes the kind ``option`` takes."""
    from .tflite_io import is_tflite_file

    for other, kind in (("--onnx", is_onnx_file), ("--tflite", is_tflite_file), ("--program", ckpt_io.named_program)):
        if other != option and kind(path):
            return f": it is the file {other} takes (quantize {other} {path} ...)"
    return f" (export a checkpoint with {export} first)"


def main(argv: Sequence[str]) -> int:
    p = CommandParser(prog="mobilenet-v1 quantize", description=(
        "Static INT8 quantization (ONNX Runtime, QDQ, per-channel weights) of an ONNX file from "
        "'mobilenet-v1 export', of a .pt2 program into an ExecuTorch .pte for XNNPACK, or of a .tflite into a "
        "full-integer .tflite, calibrated on training images through the evaluation transforms."))
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--onnx", help="fp32 ONNX file (from mobilenet-v1 export): writes an INT8 ONNX file")
    source.add_argument("--program", help="fp32 .pt2 program (from mobilenet-v1 export --file_format PT2): writes "
                                          "an INT8 ExecuTorch program (.pte) for XNNPACK, as phones run it")
    source.add_argument("--tflite", help="fp32 .tflite (from mobilenet-v1 export --file_format TFLITE): writes a "
                                         "full-integer INT8 .tflite (int8 weights and activations, float in and out "
                                         "unless --int8_io True)")
    p.add_argument("--calib_data", required=True,
                   help="the data set's folder (as --dataset_path in training); its training split is read")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="layout and normalisation of --calib_data (default: what the ONNX file, program or .tflite "
                        "records)")
    p.add_argument("--out", required=True, help="INT8 file to write (.onnx; .pte with --program; .tflite with "
                                                "--tflite)")
    p.add_argument("--val_split", type=float, default=None,
                   help="an image folder without an evaluation split: the share of each class to leave out of the "
                        "calibration images (default: the share the file's run held out, where --calib_data is the "
                        "folder it trained on)")
    p.add_argument("--calib_images", type=whole_number, default=DEFAULT_CALIB_IMAGES,
                   help=f"training images for the activation ranges (default {DEFAULT_CALIB_IMAGES}; for a file "
                        f"exported with --static_batch, rounded up to whole batches)")
    p.add_argument("--per_tensor", action="store_true",
                   help="one weight scale per tensor, not per channel (ONNX and .pt2 only)")
    p.add_argument("--reduce_range", action="store_true",
                   help="7-bit weights, for x86 CPUs without VNNI where ONNX Runtime's u8 x s8 products can saturate "
                        "(ONNX only)")
    p.add_argument("--int8_io", type=bool_option, default=False, metavar="True|False",
                   help="with --tflite: the file takes the normalised values' int8 levels and gives the logits' "
                        "(its input's and output's scale and zero point in the file), integer arithmetic only, as "
                        "TensorFlow Lite for Microcontrollers runs it; default: float in and out")
    p.add_argument("--c_array", default=None, metavar="F.h",
                   help="with --tflite: also write the INT8 file as a C++ header for TensorFlow Lite for "
                        "Microcontrollers (16-byte aligned bytes, input size, int8 scales and zero points, "
                        "normalisation, the tensor arena's floor, class names)")
    p.add_argument("--seed", type=seed_number, default=1, help="which training images are drawn (default 1)")
    add_num_workers_option(p, "image decoding workers (default min(8, CPUs))")
    add_max_bad_samples_option(p)
    a = p.parse_args(list(argv))
    if a.calib_images < 1:
        p.error("--calib_images must be at least 1")
    if a.val_split is not None and not 0 <= a.val_split < 1:
        p.error(f"--val_split {a.val_split:g}: must be in [0, 1)")
    if not os.path.isdir(a.calib_data) and not is_archive(a.calib_data) and not is_shard_pattern(a.calib_data):
        if os.path.basename(a.calib_data).lower().endswith(COMPRESSED_SUFFIXES):  # a.tar.gz, or a pattern of them
            raise QuantizeError(f"--calib_data {a.calib_data}: compressed tar archives are not read (their images "
                                f"are read in place, at their offsets); decompress to .tar (gunzip, unxz, unzstd, "
                                f"...) and give that")
        home = ckpt_io.unexpanded_home(a.calib_data, read=True)  # --calib_data=~/data: no shell expanded it
        raise QuantizeError(f"--calib_data {a.calib_data}: not a folder, a .tar archive nor a shard pattern (the "
                            f"data set's, as --dataset_path in training)" + (f"; it {home}" if home else ""))
    # Given, even as "" (which check_given refuses by name; read as not given, it fell to --onnx's None).
    option, src = (("--program", a.program) if a.program is not None else ("--tflite", a.tflite)
                   if a.tflite is not None else ("--onnx", a.onnx))
    ckpt_io.check_given(src, option, "file")
    if a.int8_io and not a.tflite:
        raise QuantizeError(f"--int8_io True: is for --tflite (TensorFlow Lite for Microcontrollers' int8 input and "
                            f"output); {option}'s INT8 file takes and gives floats")
    if a.c_array is not None and not a.tflite:
        raise QuantizeError(f"--c_array {a.c_array}: is for --tflite (a C++ array of the INT8 .tflite for TensorFlow "
                            f"Lite for Microcontrollers)")
    if a.c_array is not None:
        if os.path.realpath(a.c_array) == os.path.realpath(a.out):  # written, not read: said as what it is
            raise QuantizeError(f"--c_array {a.c_array}: is --out's file, the INT8 .tflite; name the C++ array "
                                f"another file (F.h)")
        ckpt_io.check_output("--c_array", a.c_array, [a.tflite], inside=[a.calib_data], suffix=".h")
    if a.tflite:
        from .tflite_io import is_tflite_file, load_tflite

        if not is_tflite_file(a.tflite):
            raise QuantizeError(f"--tflite {a.tflite}: not a .tflite file" + _taken_as("--tflite", a.tflite, (
                "'mobilenet-v1 export --ckpt_file C --file_name N --file_format TFLITE'")))
        if a.reduce_range or a.per_tensor:
            raise QuantizeError(f"{'--reduce_range' if a.reduce_range else '--per_tensor'}: not for --tflite, whose "
                                f"convolutions' int8 weights are per channel, as TensorFlow Lite's int8 kernels take "
                                f"them")
        ckpt_io.check_output("--out", a.out, [a.tflite], inside=[a.calib_data], suffix=".tflite")
        fp32 = load_tflite(a.tflite)
        if a.int8_io and fp32.image_input:
            raise QuantizeError(f"--int8_io True: {a.tflite} takes uint8 pixels, which it normalises in float before "
                                f"quantizing them; an int8 input is the normalised values' levels: quantize the file "
                                f"exported without --image_input")
    elif a.program:
        if not ckpt_io.named_program(a.program):
            raise QuantizeError(f"--program {a.program}: not a .pt2 program" + _taken_as("--program", a.program, (
                "'mobilenet-v1 export --ckpt_file C --file_name N --file_format PT2'")))
        if a.reduce_range:
            raise QuantizeError("--reduce_range: is for ONNX Runtime's u8 x s8 kernels (--onnx); an ExecuTorch "
                                "program's XNNPACK kernels are quantized without it")
        ckpt_io.check_output("--out", a.out, [a.program], inside=[a.calib_data], suffix=".pte")
        fp32 = ProgramModel(a.program)
    else:
        if not is_onnx_file(a.onnx):
            raise QuantizeError(f"--onnx {a.onnx}: not an ONNX file" + _taken_as("--onnx", a.onnx, (
                "'mobilenet-v1 export --ckpt_file C --file_name N'")))
        ckpt_io.check_output("--out", a.out, [a.onnx], inside=[a.calib_data], suffix=".onnx")
        fp32 = OnnxModel(a.onnx)
    if fp32.metadata.get("quantization"):
        raise QuantizeError(f"{option} {src}: is already quantized ({fp32.metadata['quantization']})")
    hw = fp32.image_hw
    if hw is None or hw[0] != hw[1]:
        raise QuantizeError(f"{option} {src}: needs a fixed square input size, found {fp32.input_shape}")
    dataset = ckpt_io.trained_dataset(src, fp32.metadata.get("dataset"), a.dataset,
                                      data=("--calib_data", a.calib_data))
    if dataset is None:
        raise QuantizeError(f"{option} {src} does not record its data set: pass --dataset {'|'.join(DATASETS)}")
    batch = fp32.fixed_batch or CALIB_BATCH
    count = a.calib_images
    if fp32.fixed_batch is not None and count % batch:
        count = whole_batches(count, batch)
        print(f"mobilenet-v1 quantize: note: {src} takes batches of exactly {batch} images (exported with "
              f"--static_batch): calibrating on {count} images, --calib_images {a.calib_images} rounded up to "
              f"{count // batch} whole batches", file=sys.stderr)

    if not a.reduce_range and not a.program and not a.tflite and x86_without_vnni():
        print("mobilenet-v1 quantize: note: this x86 CPU has no VNNI, where ONNX Runtime's u8 x s8 products "
              "saturate with full-range weights: the comparison below is this CPU's, and an INT8 file meant for "
              "x86 CPUs without VNNI wants --reduce_range (ARM and VNNI CPUs run the full range as it is)",
              file=sys.stderr)

    if a.val_split is not None and is_cifar(dataset):
        raise QuantizeError(f"--val_split: a {cifar_name(dataset)} model's data set has no use for it (its "
                            f"evaluation images are a file of their own)")
    val_split, note = (a.val_split, held_out_read_note(fp32.metadata.get("held_out"), a.calib_data, src, dataset,
                                                       a.val_split, "the activation ranges measured")) \
        if a.val_split is not None else held_out_for(fp32.metadata.get("held_out"), a.calib_data, src, dataset)
    if note:
        print(f"mobilenet-v1 quantize: note: {note}", file=sys.stderr)
    read_evaluated = bool(note) and a.val_split == 0  # every image read, the run's evaluation share among them
    if val_split:
        whose = (f"--val_split {val_split:g} holds out" if a.val_split is not None else
                 f"its run held out to evaluate on (val_split {val_split:g})")
        print(f"mobilenet-v1 quantize: calibrating on the training images of {a.calib_data}: the share of each "
              f"class {whose} is left out", file=sys.stderr)
    named = os.path.basename(os.path.normpath(a.calib_data))
    eval_split = dataset == "imagenet2012" and named.lower() in IMAGENET_EVAL_FOLDERS + ("test",)
    if eval_split:
        print(f"mobilenet-v1 quantize: note: --calib_data {a.calib_data} is named as an evaluation split "
              f"({named}/): its images set the activation ranges, so an evaluation on them afterwards flatters the "
              f"INT8 file; give the data set's folder (its {IMAGENET_TRAIN_FOLDER}/ is read) or its training split",
              file=sys.stderr)

    def batches():
        return calibration_loader(dataset, a.calib_data, hw[0], count, a.seed, batch, a.num_workers,
                                  static_batch=fp32.fixed_batch is not None, max_bad_samples=a.max_bad_samples,
                                  val_split=val_split,
                                  crop_pct=fp32.metadata.get("crop_pct") or CROP_PCT,
                                  exif_orientation=fp32.metadata.get("exif_orientation") is True,
                                  classes=classes, antialias=fp32.metadata.get("antialias") is not False,
                                  interpolation=recorded_interpolation(fp32.metadata.get("interpolation")),
                                  norm=ckpt_io.trained_normalisation(fp32.metadata, dataset, src))

    try:
        classes, note = (calibration_classes(a.calib_data, fp32.metadata.get("classes"), val_split)
                         if dataset == "imagenet2012" else (None, ""))
        if note:
            print(f"mobilenet-v1 quantize: note: {note}", file=sys.stderr)
        # The INT8 file is run under its temporary name: a comparison that fails (or a Ctrl-C in it) leaves
        # no file, and an earlier one of that name as it was.
        if a.tflite:
            from .tflite_io import load_tflite
            from .tflite_quant import quantize_tflite

            result = quantize_tflite(a.tflite, a.out, batches(),
                                     check=lambda path: compare_top1(fp32, load_tflite(path, name=a.out), batches()),
                                     int8_io=a.int8_io)
        elif a.program:  # fp32: the program unquantized
            result = quantize_program(a.program, a.out, batches(), per_channel=not a.per_tensor,
                                      check=lambda path: compare_top1(fp32, ExecutorchModel(path, a.out), batches()))
        else:
            result = quantize_file(a.onnx, a.out, batches(), per_channel=not a.per_tensor,
                                   reduce_range=a.reduce_range,
                                   check=lambda path: compare_top1(fp32, OnnxModel(path), batches()))
        check = result["check"]
    except NoCalibrationImages:
        # A file of --static_batch takes no partial batch: a data set of fewer images than one gives it none.
        raise QuantizeError(f"--calib_data {a.calib_data}: no calibration images were read" + (
            f": its training split has fewer readable images than one batch of the {batch} {src} takes exactly "
            f"(exported with --static_batch); export it with a smaller --batch_size, or calibrate on more images"
            if fp32.fixed_batch else "")) from None
    except DataError as e:  # its messages name the folder as training's option does
        text = str(e)
        raise QuantizeError(f"--calib_data {text[len('dataset_path '):]}" if text.startswith("dataset_path ")
                            else f"--calib_data {a.calib_data}: {text}") from None
    if result["removed"]:
        print(f"mobilenet-v1 quantize: note: {ckpt_io.removed_note(result['removed'])}", file=sys.stderr)
    print0(f"wrote {result['path']}: {result['bytes'] / 1e6:.2f} MB ({result['bytes'] / result['fp32_bytes']:.2f}x "
           f"the fp32 file's {result['fp32_bytes'] / 1e6:.2f} MB), activation ranges from "
           f"{plural(result['calib_images'], 'training image')} of {a.calib_data}")
    agreement = (f"on {'that' if check['images'] == 1 else 'those'} {plural(check['images'], 'image')}: top-1 "
                 f"{check['reference_top1']:.2%} fp32, {check['candidate_top1']:.2%} INT8; the two agree on "
                 f"{check['agreement']:.2%}")
    if note:  # calibrated on folders of other classes (said above): an eval there refuses the file, not offered
        print0(agreement)
    else:
        print0(agreement + ". Evaluation accuracy: "
               f"`mobilenet-v1 eval --checkpoint_path {shell_path(a.out)} --dataset {dataset} "
               f"--dataset_path {shell_path(eval_path(a.calib_data, dataset))}"  # quoted: pastes as one argument
               + (f" --val_split {a.val_split:g}" if a.val_split else "") + "`"  # the share left out here, evaluated
               # --val_split 0 on the run's own folder: the file's eval takes the run's share, which calibration
               # read.
               + (" (its figure counts images the ranges were measured on: quantize without --val_split for a "
                  "clean one)" if read_evaluated else "")
               # A folder named as an evaluation split (said above): its eval reads the calibration images.
               + (" (its figure counts the images the ranges were measured on: calibrate on the training split "
                  "for a clean one)" if eval_split else ""))
    if a.c_array is not None:
        from .tflite_io import c_array

        try:
            ckpt_io.atomic_save_text(c_array(result["path"]), a.c_array)
        except OSError as e:
            raise QuantizeError(f"--c_array {a.c_array}: cannot write it: {e.strerror or e} ({result['path']} is "
                                f"written)") from None
        print0(f"wrote {a.c_array}: {result['path']} as a C++ array for TensorFlow Lite for Microcontrollers")
    # An INT8 file that often picks another class than its fp32 model, on enough images to tell (a few could
    # disagree by chance): --per_tensor's one scale a tensor rounded most of a depthwise layer's channels to 0,
    # whose folded BatchNorm left one channel hundreds of times larger (top-1 7.7% against 77%; helper-385).
    if check["images"] >= 50 and check["agreement"] < 0.9:
        why = ("one weight scale a tensor (--per_tensor) rounds to 0 most channels of a depthwise layer whose folded "
               "BatchNorm left one channel far larger than the others: quantize without --per_tensor (a scale a "
               "channel)" if getattr(a, "per_tensor", False) else "check it with eval before deploying it")
        print(f"mobilenet-v1 quantize: warning: the INT8 file agrees with the fp32 one on only "
              f"{check['agreement']:.2%} of {check['images']} calibration images: {why}", file=sys.stderr)
    used = result["calib_images"]
    if used < count:
        asked = (f"the {count} asked (--calib_images)" if count == a.calib_images else
                 f"the {count} of --calib_images {a.calib_images} in whole batches")
        print(f"mobilenet-v1 quantize: note: {a.calib_data} gave {plural(used, 'training image')} of {asked}: all "
              f"it has" + (" in whole batches" if (fp32.fixed_batch or 1) > 1 else ""), file=sys.stderr)
    if used < FEW_CALIB_IMAGES:
        print(f"mobilenet-v1 quantize: warning: activation ranges from only {plural(used, 'image')}: what other "
              f"images reach beyond them is clipped, and the agreement above, on those same images, cannot show it; "
              f"a few hundred images of every class (the default {DEFAULT_CALIB_IMAGES}) set ranges that hold",
              file=sys.stderr)
    return 0
