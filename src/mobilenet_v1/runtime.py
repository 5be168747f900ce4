"""What every run prints first: versions, device, git revision; and rank-0-only printing."""
import os
import platform
import subprocess
import sys

import torch
import torchvision


def is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only; output is flushed so logs interleave in order."""
    if is_rank0():
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


def git_revision() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def header(device: torch.device) -> str:
    from . import __version__

    if device.type == "cuda":
        dev = f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    else:
        dev = f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    return (f"mobilenet-v1 {__version__} (git {git_revision()}), python {platform.python_version()}, "
            f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {dev}")
