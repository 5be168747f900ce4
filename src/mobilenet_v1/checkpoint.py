"""Checkpoints: one dictionary per file, written atomically, read with ``weights_only=True``.

A training checkpoint holds ``model``, ``optimizer``, ``scaler``, ``epoch``, ``step``, ``config``,
``rng`` and ``format``. A file is written as a temporary file in the same folder, flushed and fsynced,
then renamed over the target, and the folder is fsynced: an interrupted save never leaves a partial
file under a checkpoint's name.
"""
import contextlib
import glob
import os
import re
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

FORMAT = "mobilenet-v1/1"
CKPT_PREFIX = "mobilenetv1"
# The best checkpoint by top-1 (``--eval_interval``); outside _NAME_RE, so pruning never removes it.
BEST_NAME = CKPT_PREFIX + "-best.ckpt"
_NAME_RE = re.compile(r"^" + CKPT_PREFIX + r"-(\d+)_(\d+)\.ckpt$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP and ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def checkpoint_name(epoch: int, steps_per_epoch: int) -> str:
    return f"{CKPT_PREFIX}-{epoch}_{steps_per_epoch}.ckpt"


def fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success flush, fsync, rename it over ``path`` and fsync
    the folder. On any error the temporary file is removed and ``path`` is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def atomic_save_text(text: str, path: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def list_checkpoints(folder: str) -> List[Tuple[int, str]]:
    """(epoch, path) of the run's checkpoints in ``folder``, oldest first."""
    found = []
    for path in glob.glob(os.path.join(folder, CKPT_PREFIX + "-*.ckpt")):
        m = _NAME_RE.match(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def resolve_checkpoint_path(path: str) -> str:
    """A checkpoint file, or a run folder standing for its newest ``mobilenetv1-*.ckpt``."""
    if os.path.isdir(path):
        found = list_checkpoints(path)
        if not found:
            raise CheckpointError(f"checkpoint folder {path}: holds no {CKPT_PREFIX}-*.ckpt file")
        return found[-1][1]
    return path


def prune_checkpoints(folder: str, keep: int) -> List[str]:
    """Remove the oldest checkpoints beyond ``keep`` (the newest two always stay); returns removed paths."""
    keep = max(keep, 2)
    found = list_checkpoints(folder)
    removed = []
    for _, path in found[: max(len(found) - keep, 0)]:
        os.unlink(path)
        removed.append(path)
    return removed


def rng_state() -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_file(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint of ours with ``weights_only=True`` (no pickled code is ever run)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for damaged or foreign files
        raise CheckpointError(f"checkpoint {path}: cannot be read as a PyTorch checkpoint "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}  # a bare state dict
    raise CheckpointError(f"checkpoint {path}: holds no model state dict")


def model_state(ckpt: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    state = ckpt["model"]
    # Tolerate state dicts saved from DDP or torch.compile wrappers by other tools.
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_weights(model: nn.Module, state: Dict[str, torch.Tensor], source: str,
                 skip_head_mismatch: bool = False) -> List[str]:
    """Load ``state`` into ``model`` after checking every name and shape; nothing is half-loaded.

    With ``skip_head_mismatch`` a classifier of another class count is left out (fine-tuning); the
    names left out are returned.
    """
    target = unwrap(model).state_dict()
    skipped = []
    if skip_head_mismatch:
        for name in ("fc.weight", "fc.bias"):
            if name in state and name in target and state[name].shape != target[name].shape:
                skipped.append(name)
        state = {k: v for k, v in state.items() if k not in skipped}
    missing = [k for k in target if k not in state and k not in skipped]
    unexpected = [k for k in state if k not in target]
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
             for k in state if k in target and state[k].shape != target[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:8])}"
                        f"{' ...' if len(unexpected) > 8 else ''}")
    if wrong:
        problems.append(f"wrong shape: {'; '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}")
    if problems:
        raise CheckpointError(f"checkpoint {source} does not fit this model ({'; '.join(problems)})")
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"checkpoint {source}: tensor {k} holds NaN or infinite values")
    unwrap(model).load_state_dict(state, strict=not skipped)
    return skipped

