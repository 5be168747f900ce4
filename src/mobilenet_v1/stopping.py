"""Stopping a run cleanly on SIGTERM, SIGINT or SIGHUP: after the step under way, with a checkpoint there.

SIGTERM is how a scheduler preempts a job (SLURM, Kubernetes, a spot instance's notice) and how
torchrun stops its workers; SIGINT is Ctrl-C; SIGHUP the terminal closed (an ssh session lost; not where
the run ignores it, under nohup). Each one makes ``train`` finish the step under way,
save a checkpoint at that step and exit with 128 + the signal's number, so ``--resume auto`` goes on
from there and nothing is trained twice. A second Ctrl-C stops at once: also after the run, while the
command closes its loaders and exits (:func:`quit_on_interrupt`), where Python would raise
KeyboardInterrupt through the shutdown.

In a distributed run every rank must stop after the same step: one that left early would leave the
others waiting in the next gradient all-reduce. A signal reaches the processes at different steps, or
only some of them, so after every step the ranks start an all-reduce on the CPU (gloo) of the largest
signal any of them received, without waiting for it, and read the previous step's, which has long
completed: no step waits for it, and every rank stops after the same step, at most two steps after
the signal.

The Python handler only runs when the main thread comes back to the interpreter, which a process
blocked in a collective on a peer that died never does. So the signal also reaches a watchdog thread at
once (``signal.set_wakeup_fd``): a process that completes no training step for the grace period after
it (:data:`GRACE_SECONDS`, or three times its longest step if that is longer), blocked, exits there, with
what was saved before whole (checkpoints are written atomically). An evaluation under way ends at the
batch it is on (:meth:`StopRequest.heard`), well inside the grace, and the epoch's checkpoint is saved.
In a distributed run the ranks that heard no signal (one node preempted) evaluate on, and one that ended
early waits for them to sum the counts: that wait is held out of the grace (:meth:`StopRequest.hold`),
and a peer that died there is left to the process group's timeout.

A run of one process whose main thread waits for its training loader's next batch when the signal comes
(a loader worker stopped with SIGSTOP, or in a read of a network disk that does not return) would complete no
step in the grace: half way through it, the watchdog has the main thread leave that wait
(:meth:`StopRequest.batch_wait`: :class:`WaitAbandoned` raised there by the signal's handler, which a signal sent
to the main thread runs at once), and the run saves the steps it took and ends the loader's workers, as it would
after a step. Only such a wait: never one in the middle of a step, an evaluation's, one in a thread that feeds the
loop (the GPU pipeline's), nor a distributed run's (its ranks stop after the same step).

Loader worker processes ignore Ctrl-C and keep serving after a first SIGTERM (:func:`ignore_in_worker`,
their ``worker_init_fn``): a scheduler sends it to every process of the job, and the run, which stops
after the step under way, may still be waiting for their batches. torch's own handler would end a
worker there, and the run would fail on the lost worker before it could stop. A second SIGTERM (the
one multiprocessing's exit sends its daemonic children) ends the worker quietly.
"""
import _thread
import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from typing import Dict, Optional

import torch
import torch.distributed as dist

from . import runtime, stalls

GRACE_SECONDS = 10.0
WAKE_SECONDS = 0.2  # how often the watchdog looks at the time
# A watchdog that wakes this much later than it asked was not run: the process was stopped (SIGSTOP, Ctrl-Z, a
# scheduler's suspend such as SLURM's gang scheduling, a frozen container), while the monotonic clock ran on. That
# time is taken out of what the watchdog measures (the grace, a step's time): a run stopped longer than the grace
# after a SIGTERM exited at the continue without the checkpoint its step under way was about to write (helper-362).
SUSPENDED_SECONDS = 1.0
FLUSH_SECONDS = 2.0  # what an exit at once (exit_now) gives the output streams' buffered lines
# The part of the grace after which a training loop that waits for its next batch all the while leaves that wait
# (:meth:`StopRequest.batch_wait`): a loader that answers at all gives its batch well within it.
LEAVE_WAIT_AFTER = 0.5
# SIGHUP: the terminal a run was started from closed (an ssh session lost); not on Windows, and left alone where
# the run was started to ignore it (nohup).
SIGNALS = (signal.SIGTERM, signal.SIGINT) + ((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ())
_heard = False  # whether a run of this process stopped for a signal (:func:`quit_on_interrupt`)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _leave_quietly(signum: int, frame) -> None:
    os._exit(0)


def _serve_on(signum: int, frame) -> None:
    signal.signal(signal.SIGTERM, _leave_quietly)  # the next one ends the worker


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a write the signal interrupted: its lines are lost, the exit is not
            pass


def _say(line: str) -> None:
    if sys.__stderr__ is None:  # started with stderr closed: fd 2 may be a file the run opened since
        return
    try:
        os.write(sys.__stderr__.fileno(), line.encode() + b"\n")
    except (OSError, ValueError):
        pass


def _in_time(work, *args) -> None:
    """``work(*args)`` in a thread of its own, waited for at most :data:`FLUSH_SECONDS`: a write to a pipe
    no one reads blocks for ever (the main thread may be stuck in one, holding the stream). Where no thread
    can start (Python 3.12 and later refuse one in the interpreter's exit, where a Ctrl-C after the run
    lands), in this one."""
    thread = threading.Thread(target=work, args=args, name="stop-flush", daemon=True)
    try:
        thread.start()
    except RuntimeError:
        work(*args)
        return
    thread.join(FLUSH_SECONDS)


def _log(line: str) -> None:
    try:
        runtime.log0(line)
    except (OSError, ValueError):  # a log file the main thread was closing: the line is on stderr all the same
        pass


def exit_now(code: int, line: str) -> None:
    """Ends the process at once with ``code``, after the streams' buffered lines (a piped stdout holds the
    run's last ones: ``os._exit`` flushes nothing) and then ``line`` on stderr and in the run's log.txt, each
    given :data:`FLUSH_SECONDS` at most, so that neither a stalled stdout nor a stalled stderr holds the exit.
    ``_say`` writes to the descriptor, which log.txt does not copy: without its line there, a run's log ended
    with "stopping after the step under way, with a checkpoint there", which this exit never saved."""
    _in_time(_flush_streams)
    _in_time(_say, line)
    _in_time(_log, line)
    data = sys.modules.get(__package__ + ".data")  # loaded where a loader runs; imported here, never
    if data is not None:
        try:  # every open loader's workers (the pass waited on among them): a stopped one outlived the process
            data.kill_open_loader_workers()
        except Exception:  # the exit goes on whatever happens here
            pass
    os._exit(code)


def quit_on_interrupt(signum: int, frame) -> None:
    """``mobilenet-v1 train``'s SIGINT handler around the run (a :class:`StopRequest` puts it back when its
    block ends) and in its exit (:func:`quiet_at_exit`): after a run stopped for a signal, a further Ctrl-C
    ends the process at once, quietly, as one during the run does; what is saved is whole (the run has
    ended). Before that, Python's own KeyboardInterrupt."""
    if not _heard:
        raise KeyboardInterrupt
    exit_now(128 + signal.SIGINT, "SIGINT again: stopping now")


def quiet_at_exit() -> None:
    """An ``atexit`` hook of ``mobilenet-v1 train``: through the interpreter's exit after a run stopped for a
    signal, a further Ctrl-C ends the process at once (:func:`quit_on_interrupt`)."""
    if _heard and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, quit_on_interrupt)


def ignore_in_worker(worker_id: int = 0) -> None:
    """A loader worker's ``worker_init_fn``: Ctrl-C is the run's to act on; a first SIGTERM (a scheduler's,
    sent to the run too, which stops after the step under way) is noted and the worker goes on making
    the batches that step may still wait for: a worker gone there fails the run ("exited unexpectedly")
    before it can save. The next SIGTERM ends it with exit status 0 (ignoring it altogether would leave
    multiprocessing's exit, which terminates daemonic children and waits for them, waiting for ever
    after a scheduler's SIGTERM); the loader's own shutdown, or the run's process dying, ends it as it
    ends any worker. multiprocessing's exit sends one SIGTERM only: loaders still open at the
    interpreter's exit are shut down before it (``data.DeviceLoader.close``)."""
    # The run's wakeup fd, inherited by the fork: a signal handled here would be counted there as one more
    # (a single Ctrl-C to the process group read as two: "SIGINT again: stopping now").
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):  # the terminal closed: sent to the run too, which stops as on Ctrl-C
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _serve_on)
    if hasattr(signal, "pthread_sigmask"):  # blocked since the fork (workers_starting): delivered now, to these
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)


@contextlib.contextmanager
def workers_starting():
    """Around the fork of loader workers: the stop signals blocked in the forking thread, so that a worker starts
    with them blocked until :func:`ignore_in_worker` has put its handlers in place. Unblocked, a scheduler's
    SIGTERM to every process of the job in between met PyTorch's worker handler (installed before the
    worker_init_fn), which ends a worker that its parent did not signal, and the run failed ("exited
    unexpectedly") rather than stop; a Ctrl-C there ran the run's handler in the worker, whose inherited
    wakeup fd told the run of a second Ctrl-C. Signals that come meanwhile reach this process when the
    block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class WaitAbandoned(BaseException):
    """Raised in the main thread inside :meth:`StopRequest.batch_wait` by the stop handler: the wait for the next
    step's batches is left, the run stopping after the last step it took. A BaseException, as KeyboardInterrupt
    is: the loader's code on the way (PyTorch's ``except Exception``) lets it through."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _BatchWait:
    def __init__(self, stop: "StopRequest"):
        self.stop = stop

    def __enter__(self) -> None:
        self.stop._waiting = self.stop._leaves_waits

    def __exit__(self, *exc) -> None:
        self.stop._waiting = False


class StopRequest:
    """Installs the handlers and the watchdog for its ``with`` block, from the main thread (elsewhere
    it only answers "no"). ``should_stop()`` after every step, on every rank; ``agree_now()``
    where every rank waits anyway (an epoch's end)."""

    def __init__(self, distributed: bool = False):
        self.received = 0  # the first signal's number; 0: none
        self.agreed = 0  # the signal every rank stops for; 0: none yet
        self._distributed = distributed
        self._group = None
        self._pending = None
        self._previous: Dict[int, object] = {}
        self._wakeup = None  # (read end, write end, the wakeup fd before ours)
        self._done = threading.Event()
        self._watchdog: Optional[threading.Thread] = None
        self._signalled_at: Optional[float] = None
        self._paused = 0.0  # seconds the process was found not run (stopped): in no duration measured
        self._last_step = self._now()
        self._longest_step = 0.0
        self._measure = False  # whether the time since the last step is a step's
        self._holding = False  # waiting for the other ranks' evaluation: the grace does not run
        # A Python caller's Ctrl-C (a script's, a notebook's Interrupt Kernel: Python's own handler was in place)
        # raises KeyboardInterrupt where the command line's ends the process: a second one, or a first one
        # without a step for the grace (:meth:`_handle`). ``_give_up``: the watchdog asks for it (it heard a
        # second Ctrl-C, which the main thread may see as one with the first, or the grace ran out);
        # ``_handled``: the signal the handler itself recorded (the watchdog records ``received`` too, often
        # first); ``_raised``: raised once, not again.
        self._raises = False
        self._give_up = False
        self._gave_up_at = 0.0
        self._handled = 0
        self._raised = False
        self._closing = False  # in __exit__: the handler records, never raises (the handlers are put back)
        # batch_wait: whether waits for a batch may be left (a run of one process, handlers in place); whether the
        # main thread is in one now; the signal sent to it to leave it (the handler is to raise) and the wakeup
        # bytes of those sent the watchdog is still to pass over; whether a wait was left (``abandoned``).
        self._leaves_waits = False
        self._waiting = False
        self._nudge = 0
        self._nudged = 0
        self._nudges = 0
        self.abandoned = False

    def _now(self) -> float:
        """The monotonic clock less the time the process was found stopped: what the grace and steps are
        measured in."""
        return time.monotonic() - self._paused

    def __enter__(self) -> "StopRequest":
        if self._distributed and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")  # every rank creates it, in the same order
        if threading.current_thread() is not threading.main_thread():
            return self
        # A socket pair, not a pipe: Windows' select takes sockets only, and its set_wakeup_fd a socket or a
        # file (os.set_blocking of a pipe: Python 3.12 on); asyncio's self-pipe is a socket pair too.
        read, write = socket.socketpair()
        read.setblocking(False)
        write.setblocking(False)
        self._wakeup = (read, write, signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False))
        for signum in SIGNALS:
            if signum not in (signal.SIGTERM, signal.SIGINT) and signal.getsignal(signum) is signal.SIG_IGN:
                continue  # nohup's: the run goes on as it asked
            self._previous[signum] = signal.signal(signum, self._handle)
        # Not in a distributed run: its ranks stop together after the same step, or exit (a rank blocked on
        # a dead peer takes no KeyboardInterrupt).
        self._raises = self._previous.get(signal.SIGINT) is signal.default_int_handler and not self._distributed
        self._leaves_waits = not self._distributed and hasattr(signal, "pthread_kill")
        self._watchdog = threading.Thread(target=self._watch, name="stop-watchdog", daemon=True)
        self._watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        global _heard
        # The watchdog stops first: with the handlers put back before it, a Ctrl-C in between raised
        # KeyboardInterrupt in the main thread while the watchdog, woken too, exited the process. From here
        # the handler only records: a KeyboardInterrupt raised in here would leave ours in place for good.
        # (signal.signal runs the Python handlers of signals pending before it changes one: ours, recording.)
        self._closing = True
        self._leaves_waits = self._waiting = False
        self._done.set()
        try:
            if self._watchdog is not None:
                self._watchdog.join()
        finally:
            if self._wakeup is not None:
                read, write, before = self._wakeup
                signal.set_wakeup_fd(before)
                read.close()
                write.close()
                self._wakeup = None
            _heard = _heard or bool(self.received)
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()
        if self._pending is not None and exc[0] is None:
            self._pending[0].wait()  # every rank started it: finishing it leaves no collective behind
        self._pending = None

    def _handle(self, signum: int, frame) -> None:
        """The Python-level handler (between two bytecodes of the main thread): it only records the
        signal, so that the step under way is the last; the watchdog, which hears of it through the
        wakeup fd even while the main thread is blocked, does the rest. For a Python caller (``_raises``), a
        Ctrl-C after a signal, or the one the watchdog sends when the grace is over, is a KeyboardInterrupt:
        the caller's to handle (a notebook's kernel lives on), where the command line's process ends.

        The signal the watchdog sends the main thread to leave a wait for a batch (:meth:`batch_wait`) raises
        :class:`WaitAbandoned` where that thread is still in the wait, and is otherwise passed over."""
        if self._nudge and signum == self._nudge:
            self._nudge = 0
            if self._waiting and not self._closing:
                self._waiting = False
                # Stopped at the step boundary the wait lies on; what is left (a save) has the grace from here.
                self.agreed = self.agreed or self.received
                self.abandoned = True
                self._last_step, self._measure = self._now(), False
                raise WaitAbandoned(signum)
            return
        if signum == signal.SIGINT and self._raises and (self._handled or self._give_up) and not self._closing:
            if not self._raised:
                self._raised = True
                raise KeyboardInterrupt
            return
        self._handled = self._handled or signum
        self.received = self.received or signum

    def grace(self) -> float:
        return max(GRACE_SECONDS, 3 * self._longest_step)

    def _watch(self) -> None:
        read = self._wakeup[0]
        woke = time.monotonic()
        while not self._done.is_set():
            ready, _, _ = select.select([read], [], [], WAKE_SECONDS)
            now = time.monotonic()
            if now - woke > WAKE_SECONDS + SUSPENDED_SECONDS:  # before a signal received with it is timed
                self._paused += now - woke - WAKE_SECONDS
            woke = now
            if ready:
                try:
                    received = read.recv(64)
                except (BlockingIOError, InterruptedError):
                    received = b""
                for signum in received:
                    if signum not in SIGNALS:
                        continue
                    if self._nudges and signum == self._nudged:  # the one it sent the main thread itself
                        self._nudges -= 1
                        continue
                    if self._signalled_at is None:
                        self.received = self.received or signum
                        self._signalled_at = self._now()
                        print(f"{signal_name(signum)} received{runtime.rank_label()}: stopping after the step under "
                              f"way, with a checkpoint there"
                              + (" (Ctrl-C again to stop at once)" if signum == signal.SIGINT else ""),
                              file=sys.stderr, flush=True)
                    elif signum == signal.SIGINT and self._raises and not self._give_up:  # a Python caller's:
                        # _handle raises, for this Ctrl-C, or for the first where the main thread sees the two
                        # as one; if it never runs, the check below exits
                        self._give_up, self._gave_up_at = True, self._now()
                    elif signum == signal.SIGINT and not self._raises:
                        exit_now(128 + signum, "SIGINT again: stopping now")
            if self._give_up and not self._raised and not self._done.is_set() and \
                    self._now() - self._gave_up_at > self.grace():
                # The main thread never got back to the interpreter (blocked in C): as the command line's
                exit_now(128 + signal.SIGINT, f"SIGINT: the run took no KeyboardInterrupt for {self.grace():g} s; "
                                              f"exiting now (the checkpoints written before are whole)")
            if self._signalled_at is not None and not self.agreed and not self._holding and not self._done.is_set() \
                    and not self._give_up:
                idle = self._now() - max(self._last_step, self._signalled_at)
                if (self._waiting and not self._nudged and idle > LEAVE_WAIT_AFTER * self.grace()
                        and stalls.waits_in(threading.main_thread().ident)):
                    self._leave_wait()
                if idle > self.grace() and self._raises and self.received == signal.SIGINT:
                    print(f"SIGINT: no training step completed for {self.grace():g} s after it; raising "
                          f"KeyboardInterrupt (the checkpoints written before are whole)", file=sys.stderr, flush=True)
                    self._give_up, self._gave_up_at = True, self._now()
                    _thread.interrupt_main(signal.SIGINT)  # _handle, in the main thread, at its next bytecode
                elif idle > self.grace():
                    exit_now(128 + self.received,
                             f"{signal_name(self.received)}: no training step completed for {self.grace():g} s "
                             f"after it; exiting now (the checkpoints written before are whole)")

    def _leave_wait(self) -> None:
        """The watchdog's: has the main thread, blocked in a wait for its training loader's batch since the signal,
        leave it (:meth:`batch_wait`). A signal sent to that thread interrupts the wait's system call, and its
        handler, run there at once, raises :class:`WaitAbandoned`. Sent once: a main thread that takes no signal
        (a read of its own in the kernel) is ended after the grace, as before."""
        signum = self.received
        self._nudged, self._nudges, self._nudge = signum, self._nudges + 1, signum
        print(f"{signal_name(signum)}: no batch from the training loader for {LEAVE_WAIT_AFTER * self.grace():g} s "
              f"after it: leaving that wait, to save the steps taken", file=sys.stderr, flush=True)
        try:
            signal.pthread_kill(threading.main_thread().ident, signum)
        except (OSError, ValueError):  # the main thread gone: the grace ends the process
            self._nudge, self._nudges = 0, self._nudges - 1

    def batch_wait(self) -> _BatchWait:
        """Around a training loop's wait for its next step's batches (none of the step is under way: the model and
        optimiser are at the last step's end): in a run of one process, a signal after which the main thread stays
        in this wait for :data:`LEAVE_WAIT_AFTER` of the grace (a loader worker stopped or in a read that does not
        return) makes it raise :class:`WaitAbandoned` here, the stop agreed on: the loop stops after its last step,
        as :meth:`should_stop` would have had it, and its caller saves there and ends the loader's workers (which
        :attr:`abandoned` says). Elsewhere (a distributed run, outside the ``with`` block) it does nothing."""
        return _BatchWait(self)

    def _stepped(self) -> None:
        now = self._now()
        if self._measure:
            self._longest_step = max(self._longest_step, now - self._last_step)
        self._last_step, self._measure = now, True

    def should_stop(self) -> bool:
        """Whether the run stops after the step it has just taken: the same answer on every rank, which must
        each call this after every step."""
        self._stepped()
        if self.agreed:
            return True
        if not self._distributed:
            self.agreed = self.received
            return bool(self.agreed)
        self._collect()
        if self.agreed:
            return True
        flag = torch.tensor([self.received], dtype=torch.int64)
        self._pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._group, async_op=True), flag)
        return False

    def heard(self) -> bool:
        """Whether this process received a signal: for work that may end early on one rank and not on
        another without the ranks going out of step (evaluation, which then counts nothing; every rank
        asks :meth:`agree_now` after it)."""
        return bool(self.received)

    def hold(self) -> None:
        """This rank ended its evaluation (its shard done, or on its own signal) and now waits for the other
        ranks, which may evaluate on: the watchdog's grace does not run until :meth:`agree_now`, so a
        signal that arrives meanwhile is not taken for a dead peer's silence."""
        self._holding = True

    def release(self) -> None:
        """The end of a :meth:`hold`: this rank works on its own again (another evaluation), and the
        watchdog's grace runs for it, from the signal (or the last step, whichever came later)."""
        self._holding = False

    def agree_now(self) -> bool:
        """:meth:`should_stop` at a point where every rank waits anyway: answered at once. What follows
        until the next step (evaluation) is no step's time."""
        self._last_step, self._measure, self._holding = self._now(), False, False
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
