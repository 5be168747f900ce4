"""Run by tests/test_distributed.py under torchrun (not collected by pytest): ``mobilenet-v1 train``
with a worker that dies or is told to stop. argv: the options of ``mobilenet-v1 train``.

``FAULT_AFTER=PATH``: on torchrun's first attempt (``TORCHELASTIC_RESTART_COUNT`` 0) rank 1 SIGKILLs
itself, from a thread that does not wait for the training loop, as soon as the file exists (a mid-epoch
checkpoint that rank 0 writes): a kill at an arbitrary point of the epoch that follows it. Restarted
attempts run undisturbed.

``SIGTERM_AT_STEP=N``: rank 1 alone sends itself SIGTERM during global step N (as a scheduler
preempting one node would), and no other rank hears of it but through the run's own agreement.

``SAVE_FAILS=NAME``: rank 0's write of the checkpoint named NAME fails as on a full disk (ENOSPC).

``TOP_LIST_FAILS=1``: rank 0 alone cannot list the run folder where keep_best looks for the best epochs' copies
(a folder it may write to but not read): an error of rank 0 alone, not a write's.
"""
import errno
import os
import signal
import sys
import threading
import time

from mobilenet_v1 import checkpoint, cli, train


def kill_self_once_written(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.002)
    os.kill(os.getpid(), signal.SIGKILL)


def sigterm_self_at(step: int) -> None:
    """Wrap the training loop's step hook: SIGTERM to this process during global step ``step``."""
    as_is = train.train_one_epoch
    done = [0]

    def wrapped(*args, on_step, **kwargs):
        def hook(i, loss, lr):
            done[0] += 1
            if done[0] == step:
                os.kill(os.getpid(), signal.SIGTERM)
            on_step(i, loss, lr)
        return as_is(*args, on_step=hook, **kwargs)

    train.train_one_epoch = wrapped


def top_list_fails() -> None:
    as_is = checkpoint.list_top

    def unreadable(folder):
        if sys._getframe(1).f_code.co_name != "keep_best":
            return as_is(folder)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), folder)

    checkpoint.list_top = unreadable


def disk_full_at(name: str) -> None:
    as_is = checkpoint.atomic_save

    def save(obj, path, *args, **kwargs):
        if os.path.basename(path) == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return as_is(obj, path, *args, **kwargs)

    checkpoint.atomic_save = save


if __name__ == "__main__":
    if os.environ.get("RANK") == "0" and "SAVE_FAILS" in os.environ:
        disk_full_at(os.environ["SAVE_FAILS"])
    if os.environ.get("RANK") == "0" and os.environ.get("TOP_LIST_FAILS"):
        top_list_fails()
    if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        if "FAULT_AFTER" in os.environ:
            threading.Thread(target=kill_self_once_written, args=(os.environ["FAULT_AFTER"],), daemon=True).start()
        if "SIGTERM_AT_STEP" in os.environ:
            sigterm_self_at(int(os.environ["SIGTERM_AT_STEP"]))
    sys.exit(cli.main(["train", *sys.argv[1:]]))
