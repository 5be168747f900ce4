"""Run by tests/test_distributed.py under torchrun (not collected by pytest): ``mobilenet-v1 train``
with a worker that dies or is told to stop. argv: the options of ``mobilenet-v1 train``.

``FAULT_AFTER=PATH``: on torchrun's first attempt (``TORCHELASTIC_RESTART_COUNT`` 0) rank 1 SIGKILLs
itself, from a thread that does not wait for the training loop, as soon as the file exists (a mid-epoch
checkpoint that rank 0 writes): a kill at an arbitrary point of the epoch that follows it. Restarted
attempts run undisturbed.

``SIGTERM_AT_STEP=N``: rank 1 alone sends itself SIGTERM during global step N (as a scheduler
preempting one node would), and no other rank hears of it but through the run's own agreement.
"""
import os
import signal
import sys
import threading
import time

from mobilenet_v1 import cli, train


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


if __name__ == "__main__":
    if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        if "FAULT_AFTER" in os.environ:
            threading.Thread(target=kill_self_once_written, args=(os.environ["FAULT_AFTER"],), daemon=True).start()
        if "SIGTERM_AT_STEP" in os.environ:
            sigterm_self_at(int(os.environ["SIGTERM_AT_STEP"]))
    sys.exit(cli.main(["train", *sys.argv[1:]]))
