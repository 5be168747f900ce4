"""Run by tests/test_distributed.py under torchrun (not collected by pytest): ``mobilenet-v1 train``
with a worker that dies.

On torchrun's first attempt (``TORCHELASTIC_RESTART_COUNT`` 0) rank 1 SIGKILLs itself, from a thread
that does not wait for the training loop, as soon as the file ``FAULT_AFTER`` exists (a mid-epoch
checkpoint that rank 0 writes): a kill at an arbitrary point of the epoch that follows it. Restarted
attempts run undisturbed. argv: the options of ``mobilenet-v1 train``.
"""
import os
import signal
import sys
import threading
import time

from mobilenet_v1 import cli


def kill_self_once_written(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.002)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    if os.environ.get("RANK") == "1" and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        threading.Thread(target=kill_self_once_written, args=(os.environ["FAULT_AFTER"],), daemon=True).start()
    sys.exit(cli.main(["train", *sys.argv[1:]]))
