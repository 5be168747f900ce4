"""A pass that waits too long for its loader's next batch says so, naming what its workers are doing.

A loader worker whose read does not return (a network file system that stopped answering, a failing disk, a
worker stopped with SIGSTOP) holds a pass for ever without a word: PyTorch's DataLoader waits with no time-out.
:func:`watched` times each wait for a batch; one thread, while a watched pass is under way, looks at the waits,
and one longer than :data:`STALL_NOTE_SECONDS` is said on standard error, again each time it doubles, with each
worker's process state as Linux's ``/proc`` gives it (``D``: in a read or write that has not returned). The
pass itself goes on waiting: the note only says where the time goes. Ctrl-C or SIGTERM stops it: a training run of
one process whose main thread waits here for its next step's batches leaves the wait half way through the stop
watchdog's grace, saves the steps it took and ends its loader's workers (:meth:`stopping.StopRequest.batch_wait`);
otherwise (an evaluation, a pipeline that waits in a thread of its own, a distributed run) after the grace, without
a checkpoint past its newest, the workers killed at that exit (:func:`data.kill_open_loader_workers`).
"""
import itertools
import sys
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .runtime import rank_label

# A wait for one batch after which the pass says what its workers do. A batch of 256 ImageNet photos takes well
# under a second; the first one of a pass, while the workers start, a few seconds.
STALL_NOTE_SECONDS = 120.0
STALL_CHECK_SECONDS = 1.0  # how often the watching thread looks at the waits
# The watching thread woke this much later than it asked: the process was stopped (SIGSTOP, Ctrl-Z, a suspended
# virtual machine), and that time was not the workers'.
_STOPPED_SECONDS = 5.0

_STATES = {"R": "running", "S": "sleeping", "D": "in a read or write that has not returned", "T": "stopped",
           "t": "stopped by a debugger", "Z": "ended, not yet reaped", "X": "ended", "I": "idle"}


class _Wait:
    def __init__(self, workers: Any, what: str):
        self.workers, self.what = workers, what
        self.thread = threading.get_ident()  # the thread that waits (the main one, or a pipeline's own)
        self.since = time.monotonic()
        self.note_at = STALL_NOTE_SECONDS


_waits: Dict[int, _Wait] = {}
# Reentrant: a pass left suspended in a reference cycle (a traceback kept by `raise ... from e`) is finalised by the
# garbage collector at whatever allocation comes next, its finally (_end_pass) taking this lock: one inside the lock,
# in this thread, deadlocked the process for good with a plain Lock.
_lock = threading.RLock()
_passes = 0  # the watched passes under way: the thread runs while there is one
_watcher: Optional[Tuple[threading.Thread, threading.Event]] = None
_keys = itertools.count()


def watched(batches: Iterator, what: str) -> Iterator:
    """``batches`` (a DataLoader's iterator, whose worker processes the note names), each wait for the next one
    watched as the module says; ``what`` names the loader in the note ("the loader of /data/train"). The
    watching thread runs while a pass is under way: it ends with the last one, exhausted or left (closed)."""
    key = next(_keys)
    _begin_pass()
    try:
        while True:
            wait = _Wait(batches, what)  # made outside the lock (an allocation may run a left pass's finally)
            try:  # registered inside: an exception raised between the two (a signal's handler) leaves none behind
                with _lock:
                    _waits[key] = wait
                item = next(batches)
            except StopIteration:
                return
            finally:
                with _lock:
                    _waits.pop(key, None)
            yield item
    finally:
        _end_pass()


def waits_in(thread: int) -> bool:
    """Whether thread ``thread`` (an ident) is now in a watched wait for a batch: the stop watchdog leaves only
    such a wait of the training loop (:meth:`stopping.StopRequest.batch_wait`), not one of a thread that feeds it."""
    with _lock:
        return any(wait.thread == thread for wait in _waits.values())


def _begin_pass() -> None:
    global _passes, _watcher
    with _lock:
        _passes += 1
        if _watcher is None:
            stop = threading.Event()
            thread = threading.Thread(target=_watch, args=(stop,), name="mobilenet-v1-stalls", daemon=True)
            thread.start()
            _watcher = (thread, stop)


def _end_pass() -> None:
    global _passes, _watcher
    with _lock:
        _passes -= 1
        ending = _watcher if _passes == 0 else None  # no allocation here: a reentrant call sees this state whole
        if ending is not None:
            _watcher = None
    if ending is not None:
        thread, stop = ending
        stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout=1)


def _watch(stop: threading.Event) -> None:
    last = time.monotonic()
    while not stop.wait(STALL_CHECK_SECONDS):
        now = time.monotonic()
        stopped = now - last - STALL_CHECK_SECONDS
        last = now
        due = []
        with _lock:
            for wait in _waits.values():
                if stopped > _STOPPED_SECONDS:
                    wait.since += stopped
                waited = now - wait.since
                if waited >= wait.note_at:
                    wait.note_at *= 2
                    due.append((wait, waited))
        for wait, waited in due:
            try:
                print(stall_note(wait.workers, wait.what, waited), file=sys.stderr, flush=True)
            except (OSError, ValueError):  # standard error closed or gone: the pass goes on as before
                pass


def stall_note(workers: Any, what: str, waited: float) -> str:
    """The note of a wait of ``waited`` seconds for a batch of ``workers`` (a DataLoader's iterator)."""
    processes = getattr(workers, "_workers", None) or []
    if processes:
        states = [process_state(p.pid) for p in processes]
        whose = "its loader worker's state" if len(processes) == 1 else f"its {len(processes)} loader workers' states"
        held = (f"{whose}: "
                + ", ".join(f"pid {p.pid} {s}" for p, s in zip(processes, states)))
    else:
        states, held = [], "it reads the files in this process (num_workers 0)"
    hints = []
    if any(s.startswith("D") for s in states):
        hints.append("a read that does not return (a network file system, a failing disk)")
    elif not processes:  # this process reads: where it waits is not to be seen from here
        hints.append("a read that does not return or is slow (a network file system, a failing disk)")
    if any(s.startswith(("T", "t")) for s in states):
        hints.append("a worker stopped (SIGSTOP: `kill -CONT PID` continues it)")
    why = f"; {' or '.join(hints)} holds the pass" if hints else ""
    seconds = f"{waited:.0f}" if waited >= 10 else f"{waited:.1f}"
    return (f"note{rank_label()}: no batch from {what} for {seconds} s; {held}{why}. It waits on; Ctrl-C or "
            f"SIGTERM stops it (a training run of one process whose own loop waits here saves the steps it took; "
            f"others after the grace, saving nothing past their newest checkpoint)")


def process_state(pid: int) -> str:
    """Process ``pid``'s state from ``/proc`` ("D (in a read or write that has not returned: nfs_wait_bit)"),
    its kernel wait channel where Linux shows one; "state unknown" where there is no ``/proc`` (macOS) or the
    process has gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields: List[str] = f.read().rpartition(")")[2].split()  # the name in parentheses may hold spaces
        state = fields[0]
    except (OSError, IndexError):
        return "state unknown"
    said = _STATES.get(state, "")
    try:
        with open(f"/proc/{pid}/wchan") as f:
            channel = f.read().strip()
    except OSError:
        channel = ""
    if channel and channel != "0" and state in "DS":
        said = f"{said}: {channel}" if said else channel
    return f"{state} ({said})" if said else state
