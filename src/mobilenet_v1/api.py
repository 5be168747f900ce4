"""Loading a trained model from a file: ``mobilenet_v1.load_model(path)``."""
import math
from typing import Any, Dict, Optional, Tuple

import torch

from . import checkpoint as ckpt_io
from . import runtime
from .model import ARCH, PADDINGS, MobileNetV1, scale_channels


def _first_width(channels: int, reaches: int) -> float:
    """The smallest width_mult (to float precision) at which a layer of ``channels`` at width 1 gets at
    least ``reaches`` channels; ``scale_channels`` never shrinks as the width grows, so a bisection finds it."""
    if scale_channels(channels, 0.0) >= reaches:
        return 0.0
    lo, hi = 0.0, (reaches + 16) / channels  # scale_channels(channels, hi) > reaches + 8
    while True:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            return hi
        if scale_channels(channels, mid) >= reaches:
            hi = mid
        else:
            lo = mid


def _simplest_width(lo: float, hi: float, fits) -> float:
    """The number in [lo, hi) with the fewest decimals for which ``fits`` holds (among as many
    decimals, the one nearest the middle); 0 when none with up to 15 decimals does."""
    middle = (lo + hi) / 2
    for decimals in range(16):
        scale = 10 ** decimals
        first, last = math.ceil(lo * scale), math.floor(hi * scale)
        candidates = [m / scale for m in range(max(first, 1), last + 1) if lo <= m / scale < hi]
        for width in sorted(candidates, key=lambda w: abs(w - middle)):
            if fits(width):
                return width
    return 0.0


class NoWidthFits(ckpt_io.CheckpointError):
    """Channel counts that no single width_mult gives (``reason`` says which); ``last_layer_width`` is the
    simplest width that gives the classifier's inputs theirs (0 when none does)."""

    def __init__(self, source: str, reason: str, last_layer_width: float):
        super().__init__(f"checkpoint {source}: {reason}: not a MobileNetV1 of one width")
        self.reason, self.last_layer_width = reason, last_layer_width


def _width_interval(base: int, count: int) -> Tuple[float, float]:
    """The widths [start, end) at which a layer of ``base`` channels at width 1 gets ``count`` channels;
    empty (start == end) when none does."""
    start, end = _first_width(base, count), _first_width(base, count + 1)
    return (start, end) if scale_channels(base, start) == count else (start, start)


def infer_width_mult(state: Dict[str, torch.Tensor], source: str) -> float:
    """The width_mult that gives every layer of ``state`` its channel count, the simplest such number.

    A MindSpore file records no width. Reading it off the last layer alone (1024 x alpha) is not enough:
    ``scale_channels`` rounds each layer to a multiple of 8, so at alpha 0.6 that guess, 616 / 1024,
    gives the 512-channel layers 312 channels instead of 304. Each layer's count allows an interval of
    widths; their intersection holds every width that rebuilds the file's shapes, and the number with the
    fewest decimals in it is the one a person would have typed (0.6, 0.25, 1.3). Raises
    :class:`NoWidthFits` when the intersection is empty.
    """
    layers = [(f"network.{k}", base, int(state[f"network.{k}.0.weight"].shape[0]))
              for k, (_, base, _) in enumerate(ARCH)
              if f"network.{k}.0.weight" in state and state[f"network.{k}.0.weight"].dim() > 0]
    last = ("fc (its inputs)", ARCH[-1][1], int(state["fc.weight"].shape[1]))
    layers.append(last)

    def fits(w: float) -> bool:
        return all(scale_channels(b, w) == n for _, b, n in layers)

    lo, hi, lo_layer, hi_layer = 0.0, math.inf, last, last
    problem = ""
    for layer in layers:
        name, base, count = layer
        start, end = _width_interval(base, count)
        if start == end:
            problem = (f"{name} has {count} channels, which no width_mult gives a layer of {base} channels "
                       f"at width 1 (counts are multiples of 8)")
            break
        if start > lo:
            lo, lo_layer = start, layer
        if end < hi:
            hi, hi_layer = end, layer
    if not problem:
        width = _simplest_width(lo, hi, fits) if lo < hi else 0.0
        if width:
            return width
        problem = (f"no width_mult gives every layer its channel count: {lo_layer[0]} has {lo_layer[2]} "
                   f"channels (width_mult >= {lo:.6g}), {hi_layer[0]} has {hi_layer[2]} (width_mult < {hi:.6g})")
    start, end = _width_interval(last[1], last[2])
    fallback = _simplest_width(start, end, lambda w: scale_channels(last[1], w) == last[2]) if start < end else 0.0
    raise NoWidthFits(source, problem, fallback)


def _what_it_holds(state: Dict[str, Any]) -> str:
    """What a state dict without a MobileNetV1's ``fc.weight`` holds instead, for the error that says so: its
    names under a prefix, or the network's entries it lacks (a file cut short), or its first names."""
    names = list(state)
    prefixed = [n for n in names if n.endswith(".fc.weight")]
    if prefixed:
        return f" (its {prefixed[0]}: names under the prefix {prefixed[0][:-len('fc.weight')]!r}, which ours lack)"
    if any(n.startswith("network.") for n in names):
        expected = [f"network.{k}.{part}" for k in range(27)
                    for part in ("0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var")]
        missing = [n for n in expected + ["fc.weight", "fc.bias"] if n not in state]
        held = sum(not n.endswith(".num_batches_tracked") for n in names)  # what a MindSpore file holds too
        return (f" ({held} entries; {len(missing)} of the network's are missing, from "
                f"{', '.join(missing[:3])} ...: a file cut short, or part of a network?)")
    return f" (its entries: {', '.join(names[:4])}{' ...' if len(names) > 4 else ''})" if names else " (it is empty)"


def infer_model_args(state: Dict[str, torch.Tensor], source: str) -> Dict[str, Any]:
    """class_num and width_mult read off the tensor shapes of a MobileNetV1 state dict."""
    if "fc.weight" in state and state["fc.weight"].dim() != 2:
        raise ckpt_io.CheckpointError(f"checkpoint {source}: fc.weight has shape {tuple(state['fc.weight'].shape)}, "
                                      f"not a MobileNetV1 classifier's (class_num, inputs)")
    if "fc.weight" not in state:
        raise ckpt_io.CheckpointError(f"checkpoint {source}: no fc.weight, not a MobileNetV1 state dict"
                                      f"{_what_it_holds(state)}")
    return {"class_num": int(state["fc.weight"].shape[0]), "width_mult": infer_width_mult(state, source)}


# What a file's model_args must hold to build a model, and the words that say so.
MODEL_ARG_KINDS = {"class_num": "class_num a whole number >= 1", "width_mult": "width_mult a number > 0",
                   "padding": "padding a name (same or symmetric)", "qat": "qat true or false",
                   "qat_reduce_range": "qat_reduce_range true or false"}


def _fits(key: str, value: Any) -> bool:
    if key == "padding":  # "SAME" in a hand-edited file: named with the file here, not by the model's check
        return isinstance(value, str) and value in PADDINGS
    if key in ("qat", "qat_reduce_range"):  # 1 in a hand-edited file: named with the file, as the others
        return isinstance(value, bool)
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return number and (key != "class_num" or isinstance(value, int))


def model_from_checkpoint(ckpt: Dict[str, Any], source: str, use_ema: bool = True,
                          **overrides) -> Tuple[MobileNetV1, Dict[str, Any]]:
    """An eval-mode model with the weights of ``ckpt`` (its weight average, if it holds one and
    ``use_ema``: :func:`checkpoint.weights_to_use`) and the arguments it was built with."""
    state = ckpt_io.weights_to_use(ckpt, use_ema)
    # A fault in the average is named as one: the trained weights beside it may still be sound.
    where = ckpt_io.average_named(ckpt, use_ema)
    recorded = ckpt.get("model_args") or {}
    if not isinstance(recorded, dict):
        raise ckpt_io.CheckpointError(f"checkpoint {source}: its model_args are {type(recorded).__name__}, not a "
                                      f"dictionary of class_num, width_mult and padding")
    bad = [k for k, v in recorded.items() if k in MODEL_ARG_KINDS and not _fits(k, v)]
    if bad:
        raise ckpt_io.CheckpointError(f"checkpoint {source}: its model_args have "
                                      f"{', '.join(f'{k} {recorded[k]!r}' for k in bad)}: "
                                      f"{'; '.join(MODEL_ARG_KINDS[k] for k in bad)} is needed")
    given = dict(recorded)
    given.update({k: v for k, v in overrides.items() if v is not None})
    args = {"padding": "same"}
    no_width = None
    if "class_num" not in given or "width_mult" not in given:
        # What the file records wins; a file that records it is checked by load_weights below.
        try:
            args.update(infer_model_args(state, source))
        except NoWidthFits as e:
            if not e.last_layer_width:
                raise
            # Built at the width of the last layer, load_weights names each layer that disagrees.
            no_width = e
            args.update(class_num=int(state["fc.weight"].shape[0]), width_mult=e.last_layer_width)
    args.update(given)
    if recorded.get("qat") is True and args.get("qat") and args.get("features_only"):
        # The file's qat meets the caller's features_only: MobileNetV1's own error named neither the file nor
        # that the file is what made the model quantization-aware.
        raise ckpt_io.CheckpointError(f"checkpoint {source} is quantization-aware (train --qat True), which has no "
                                      f"features_only form: take the backbone from the float checkpoint it was "
                                      f"fine-tuned from (its --pre_trained)")
    if overrides.get("qat") is False and any(k.startswith("quant.") for k in state):
        # A quantization-aware file asked for in float (model.without_quant()'s): its weights and BatchNorm, its
        # activation ranges left out, as --pre_trained takes them (it was "unexpected 2: quant.ranges ...").
        state = {k: v for k, v in state.items() if not k.startswith("quant.")}
        if overrides.get("qat_reduce_range") is None:  # the file's rounding grid, of no float model (None: not given)
            args.pop("qat_reduce_range", None)
    # its initial weights are overwritten: the caller's random state kept; float32 whatever the caller's default
    with torch.random.fork_rng(devices=[]), runtime.library_defaults():
        model = MobileNetV1(**args)
    try:
        ckpt_io.load_weights(model, state, source, naming=ckpt.get("naming", "ours"))
    except ckpt_io.CheckpointError as e:
        if no_width is None and not where:
            raise
        raise ckpt_io.CheckpointError(f"{e}{where}" + (f"; {no_width.reason}" if no_width else "")) from None
    if no_width is not None and "width_mult" not in given:
        raise no_width
    return model.eval(), args


def add_padding_option(parser: Any, writes: bool) -> None:
    """The ``--padding`` of the commands that read a checkpoint which may record none (:func:`padding_option`):
    ``writes``, those that write one (convert, recalibrate-bn), which record it; else those that build a network
    of it (export, predict)."""
    parser.add_argument(
        "--padding", choices=PADDINGS, default=None,
        help="the padding of a SRC that records none (a MindSpore .ckpt, whose network pads SAME), recorded in DST "
             "(not in a MindSpore .ckpt, which has no place for it); a SRC that records its own keeps it" if writes
        else "the padding of a checkpoint that records none (a MindSpore .ckpt, whose network pads SAME: same, the "
             "default there); a file that records its own is built as it says")


def padding_option(ckpt: Dict[str, Any], padding: Optional[str], source: str, command: str,
                   mindspore_out: str = "") -> Tuple[Optional[str], str]:
    """A command's ``--padding`` for the checkpoint ``ckpt`` read from ``source``, as eval takes it: the padding to
    build its network with where the file records none (a MindSpore ``.ckpt``, or a file converted from one: a
    symmetric run's weights among them, which convert warned of), else None (the file's own); and the line that says
    so on stderr, after the command's name ("" where ``padding`` is None or the file's). ``mindspore_out``: the
    MindSpore ``.ckpt`` the command writes, which has no place to record it (said too)."""
    if padding is None:
        return None, ""
    if padding not in PADDINGS:
        raise ValueError(f"--padding {padding!r}: expected one of {', '.join(PADDINGS)}")
    args = ckpt.get("model_args")
    recorded = args.get("padding") if isinstance(args, dict) else None
    if recorded is None:
        unrecorded = (f"; {mindspore_out}, a MindSpore .ckpt, has no place to record it: pass --padding {padding} "
                      f"again where it is read (or write a .pt or .safetensors, which record it)"
                      if mindspore_out else "")
        return padding, (f"note: --padding {padding} given; {source} records no padding (a MindSpore "
                         f".ckpt's network pads SAME): {command} builds it with padding {padding} as asked"
                         + unrecorded)
    if recorded == padding:
        return None, ""
    return None, (f"not used here: --padding {padding} ({source} has padding {recorded}, which {command} "
                  f"uses)")


def refuse_quantization_aware(model: MobileNetV1, source: str, instead: str) -> None:
    """An error for a command that has no meaning for a quantization-aware model (``train --qat``),
    saying what to do ``instead``."""
    if model.quant is not None:
        raise ckpt_io.CheckpointError(f"checkpoint {source} is quantization-aware (train --qat True): {instead}")


def load_model(path: str, use_ema: bool = True, **overrides) -> MobileNetV1:
    """An eval-mode model on the CPU from a checkpoint file (ours, a MindSpore ``.ckpt``, a ``.safetensors``, timm's
    weights or TF-slim's TensorFlow checkpoint: any file ``convert`` reads); ``overrides`` (``padding``, ...) win
    over what the file records. A checkpoint of a run with ``--ema_decay`` gives its weight average, or with
    ``use_ema=False`` its trained weights.

    ``path`` may be a training run folder (``save_checkpoint_path``): it stands for its newest
    ``mobilenetv1-*.ckpt`` (a distributed run's: the newest in its ``ckpt_0/``), as for
    ``eval --checkpoint_path``, ``export``, ``convert`` and ``predict`` (``mobilenetv1-best.ckpt`` only by
    its name)."""
    import inspect

    ckpt_io.check_path_argument(path, "load_model")
    if not isinstance(use_ema, bool):  # "False" is true: the average would be taken against the caller's word
        raise TypeError(f"load_model: use_ema must be True or False, got {use_ema!r}")
    known = [n for n in inspect.signature(MobileNetV1).parameters]
    unknown = [k for k in overrides if k not in known]
    if unknown:
        where = "; it reads the model onto the CPU, model.to(device) moves it" if "map_location" in unknown else ""
        raise TypeError(f"load_model: {', '.join(unknown)} is not an argument of MobileNetV1 ({', '.join(known)})"
                        + where)
    # A run folder's newest may be pruned by a train running there before it is read: its newest then.
    path, ckpt = ckpt_io.read_newest(path, ckpt_io.load_file)
    model, _ = model_from_checkpoint(ckpt, path, use_ema, **overrides)
    return model
