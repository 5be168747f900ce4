"""Stopping a run cleanly on SIGTERM or SIGINT: after the step under way, with a checkpoint there.

SIGTERM is how a scheduler preempts a job (SLURM, Kubernetes, a spot instance's notice) and how
torchrun stops its workers; SIGINT is Ctrl-C. Either one makes ``train`` finish the step under way,
save a checkpoint at that step and exit with 128 + the signal's number, so ``--resume auto`` goes on
from there and nothing is trained twice. A second SIGINT stops at once (``KeyboardInterrupt``).

In a distributed run every rank must stop after the same step: one that left early would leave the
others waiting in the next gradient all-reduce. A signal reaches the processes at different steps, or
only some of them, so the ranks agree every :data:`CHECK_STEPS` steps on the largest signal any of them
received, with an all-reduce on the CPU (gloo) that is started without waiting and read at the next
check, long after it completed: no step waits for it, and the run stops within ``2 * CHECK_STEPS``
steps of the signal.

A process that completes no training step for :data:`GRACE_SECONDS` after the signal (blocked in a
collective on a peer that died, or evaluating) exits at once, as it would have without the handler:
checkpoints are written atomically, so what was saved before stays whole.
"""
import os
import signal
import sys
import threading
import time
from typing import Dict, Optional

import torch
import torch.distributed as dist

CHECK_STEPS = 10
GRACE_SECONDS = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class StopRequest:
    """Installs the handlers for its ``with`` block (from the main thread; elsewhere it only answers
    "no"). ``should_stop(step)`` after every step, on every rank; ``agree_now()`` where every rank
    waits anyway (an epoch's end)."""

    def __init__(self, distributed: bool = False):
        self.received = 0  # the first signal's number; 0: none
        self.agreed = 0  # the signal every rank stops for; 0: none yet
        self._distributed = distributed
        self._group = None
        self._pending = None
        self._previous: Dict[int, object] = {}
        self._last_step = time.monotonic()
        self._watchdog: Optional[threading.Thread] = None

    def __enter__(self) -> "StopRequest":
        if self._distributed and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")  # every rank creates it, in the same order
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._pending is not None and exc[0] is None:
            self._pending[0].wait()  # every rank started it: finishing it leaves no collective behind
        self._pending = None
        self._watchdog = None  # a daemon thread: it ends with the process

    def _handle(self, signum: int, frame) -> None:
        if self.received:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.received = signum
        print(f"{signal_name(signum)} received: stopping after the step under way, with a checkpoint there"
              + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""), file=sys.stderr, flush=True)
        self._last_step = time.monotonic()
        self._watchdog = threading.Thread(target=self._watch, name="stop-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        while not self.agreed:  # once agreed, the run is at a step boundary, saving and leaving
            time.sleep(0.2)
            if time.monotonic() - self._last_step > GRACE_SECONDS and not self.agreed:
                print(f"{signal_name(self.received)}: no training step completed for {GRACE_SECONDS:g} s; exiting now "
                      f"(the checkpoints written before are whole)", file=sys.stderr, flush=True)
                os._exit(128 + self.received)

    def should_stop(self, global_step: int) -> bool:
        """Whether the run stops after global step ``global_step`` (counted from 1): the same answer on
        every rank, which must each call this after every step."""
        self._last_step = time.monotonic()
        if self.agreed:
            return True
        if not self._distributed:
            self.agreed = self.received
            return bool(self.agreed)
        if global_step % CHECK_STEPS:
            return False
        self._collect()
        if self.agreed:
            return True
        flag = torch.tensor([self.received], dtype=torch.int64)
        self._pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True), flag)
        return False

    def agree_now(self) -> bool:
        """:meth:`should_stop` at a point where every rank waits anyway: answered at once."""
        self._last_step = time.monotonic()
        if not self._distributed:
            self.agreed = self.agreed or self.received
            return bool(self.agreed)
        self._collect()
        if not self.agreed:
            flag = torch.tensor([self.received], dtype=torch.int64)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group)
            self.agreed = int(flag.item())
        return bool(self.agreed)

    def _collect(self) -> None:
        if self._pending is not None:
            work, flag = self._pending
            work.wait()
            self.agreed = self.agreed or int(flag.item())
            self._pending = None
