"""What a run leaves to watch: ``log.txt``, ``metrics.jsonl``, TensorBoard event files and a progress bar.

All of it lives in the run folder (``save_checkpoint_path``) and is written by rank 0 only. The training
step never waits for the accelerator because of this module: the loss tensor is read back to the host
only every ``log_interval`` steps and at the end of each epoch.

``metrics.jsonl`` holds one JSON object per line, ``kind`` being
- ``start``: a run (or a continuation with ``pretrain_epoch_size``) begins after ``epoch``/``step``;
  records written earlier in the file from that step on belong to a superseded run;
- ``step``: ``step`` (global, counted from 1: the optimiser steps taken, which go on counting through a
  resume at another number of steps per epoch), ``epoch`` (epochs done, fractional), ``loss``, ``lr``,
  ``images_per_s`` (since the previous logged step) and, from ``train``, ``grad_norm`` (the step's global
  gradient norm, unscaled and before clipping: null for a skipped non-finite step, whose loss may be null
  too: JSON has no NaN or Infinity, :func:`runtime.strict_json`; :func:`read_metrics` reads them as NaN);
- ``epoch``: ``epoch`` (counted from 1), ``step``, ``loss`` (the last step's, as the seed's log line),
  ``mean_loss`` (over all the epoch's steps, also those before a resume inside it, not those whose loss
  is not finite; null where none is), ``lr`` (the last step's), ``images_per_s``, ``epoch_seconds``
  and, when the epoch was evaluated, ``top_1``, ``top_5``,
  ``eval_images``; in a run with ``--ema_decay`` those are the weight average's (what ``eval`` and
  ``export`` take from its checkpoints, and what picks the best one) and ``raw_top_1``, ``raw_top_5``
  the trained weights'; ``nonfinite_outputs`` (``raw_nonfinite_outputs``: the trained weights') where
  some images got outputs that are not finite;
- ``eval``: ``epoch``, ``step`` and an evaluation's figures (``top_1``, ``top_5``, ...) of an epoch whose
  evaluation a stop left out, made when the run was resumed (:meth:`RunLogger.log_evaluation`);
  :func:`read_metrics` adds them to that epoch's record.
"""
import contextlib
import functools
import io
import json
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import torch

from . import runtime
from .checkpoint import CheckpointError, GlobalSteps
from .engine import EpochResult

LOG_FILE = "log.txt"
METRICS_FILE = "metrics.jsonl"


def read_metrics(run_dir: str, required: Optional[Dict[str, Sequence[str]]] = None, exact: bool = False
                 ) -> Dict[str, List[Dict[str, Any]]]:
    """The ``step`` and ``epoch`` records of a run folder's ``metrics.jsonl`` (a distributed run's: its
    ``ckpt_0/``), as the latest run left them.

    A ``start`` record at step ``s`` drops the records before it whose step is above ``s``: a run started
    afresh (``s`` = 0) replaces the whole history, a continuation replaces what followed its checkpoint.
    An ``eval`` record adds its figures to the ``epoch`` record of its epoch and step (an evaluation that a
    stop left out, made when the run was resumed: :meth:`RunLogger.log_evaluation`); where the records kept
    hold none (a run resumed from another folder's checkpoint), it stays among ``epochs`` as it is, its
    ``kind`` still ``eval``: an evaluation without the epoch's training figures.
    One with ``"history": false`` (a run whose earlier steps are not this folder's: started at a later
    epoch with ``pretrain_epoch_size``, or resumed from another folder's checkpoint) drops them all.
    ``required`` maps a kind to the keys its kept records must hold as numbers (a hand-edited file may
    lack them); a record without one is a ValueError naming the file, the line and the key. ``exact``:
    ``run_dir`` is the folder itself (a training run's own, in either layout), never its ``ckpt_0/``.
    """
    from .checkpoint import run_folder, unexpanded_home

    if os.path.isfile(run_dir):
        raise ValueError(f"{run_dir}: a file; give the run folder (mobilenet-v1 train's save_checkpoint_path)")
    path = os.path.join(run_dir if exact else run_folder(run_dir), METRICS_FILE)
    if not os.path.isfile(path):
        home = unexpanded_home(run_dir, read=True)  # plot '~/runs/a': no shell expanded it
        raise ValueError(f"{path}: no such file ({run_dir} is not a run folder of mobilenet-v1 train"
                         + (f"; it {home}" if home else "") + ")")
    records: List[Dict[str, Any]] = []
    lines: List[int] = []  # the line of each record, for errors
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}), not a metrics file") from None
    for number, line in enumerate(io.StringIO(text), 1):  # lines as the file gave them
        if not line.strip():
            continue
        try:
            rec = json.loads(line)  # files from before strict_json hold NaN tokens: read as well
        except json.JSONDecodeError as e:
            # A run killed mid-write leaves a partial last line: everything before it still counts.
            if not line.endswith("\n"):
                break
            raise ValueError(f"{path} line {number}: not JSON ({e.msg})") from None
        if not isinstance(rec, dict) or "kind" not in rec or not isinstance(rec.get("step"), int):
            raise ValueError(f"{path} line {number}: not a metrics record (needs 'kind' and an integer 'step')")
        rec = {k: math.nan if v is None else v for k, v in rec.items()}  # runtime.strict_json's null: not finite
        if rec["kind"] == "start":
            kept = [i for i, r in enumerate(records) if r["step"] <= rec["step"] and rec.get("history", True)]
            records, lines = [records[i] for i in kept], [lines[i] for i in kept]
        elif rec["kind"] == "eval":  # an epoch's evaluation made after its record (RunLogger.log_evaluation)
            for r in reversed(records):
                if r["kind"] == "epoch" and r["step"] == rec["step"] and r.get("epoch") == rec.get("epoch"):
                    r.update((k, v) for k, v in rec.items() if k != "kind")
                    break
            else:  # the folder holds no record of that epoch (resumed from another's checkpoint): on its own
                records.append(rec)
                lines.append(number)
        else:
            records.append(rec)
            lines.append(number)
    for rec, number in zip(records, lines):
        for key in (required or {}).get(rec["kind"], ()):
            value = rec.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                problem = "lacks" if key not in rec else f"has {json.dumps(value)} as"
                raise ValueError(f"{path} line {number}: the {rec['kind']} record {problem} {key!r} "
                                 f"(a number is needed)")
    return {"steps": [r for r in records if r["kind"] == "step"],
            "epochs": [r for r in records if r["kind"] in ("epoch", "eval")]}


def eval_tags(accuracy: Optional[Dict[str, Any]]) -> Dict[str, float]:
    """The TensorBoard scalars of an evaluation's figures (none: none)."""
    if not accuracy:
        return {}
    tags = {"eval/top_1": accuracy["top_1"], "eval/top_5": accuracy["top_5"]}
    if "raw_top_1" in accuracy:
        tags.update({"eval/raw_top_1": accuracy["raw_top_1"], "eval/raw_top_5": accuracy["raw_top_5"]})
    return tags


def _open_for_append(path: str):
    """Open a JSON-lines file to append to, first cutting off a partial last line (a killed run's)."""
    if os.path.isfile(path):
        with open(path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)
    return open(path, "a", encoding="utf-8")


def _ends_mid_line(path: str) -> bool:
    """Whether the file at ``path`` ends in a line without its break (False where it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if not f.tell():
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def _writer_thread_hook(args, before=None) -> None:
    """``threading.excepthook`` while a run's TensorBoard writer is open: the OSError of its writing thread (a
    full disk) is the logger's to say, in one warning, when the writer raises it again on the main thread
    (:meth:`RunLogger._scalars`); not as a traceback of the thread besides. Everything else as before."""
    if isinstance(args.exc_value, OSError) and type(args.thread).__name__ == "_AsyncWriterThread":
        return
    (before or threading.__excepthook__)(args)


def _quiet_writer_threads(on: bool) -> None:
    """Install :func:`_writer_thread_hook` (``on``), or put back the hook it replaced."""
    hook = threading.excepthook
    ours = isinstance(hook, functools.partial) and hook.func is _writer_thread_hook
    if on and not ours:
        threading.excepthook = functools.partial(_writer_thread_hook, before=hook)
    elif not on and ours:
        threading.excepthook = hook.keywords["before"]


def _listing(folder: str) -> Set[str]:
    """The names in ``folder``; none where it is missing or cannot be listed."""
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _closed(f) -> None:
    """Close a run's record file or writer, if any, whatever is left that it cannot write; None."""
    if f is not None:
        try:
            f.close()
        except OSError:
            pass
    return None


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# The bar's line: the numbers first, the bar and the times last, which a narrow terminal cuts (tqdm cuts a line
# wider than the terminal at its end). ImageNet's "epoch 120/200 2503/5004, loss 2.3456, lr 0.01234, 1234 img/s"
# fits 80 columns so with its times; tqdm's own line (steps/s before the numbers) lost lr and images/s there.
BAR_FORMAT = "{desc} {n_fmt}/{total_fmt}{postfix} |{bar}| {elapsed}<{remaining}"


def redrawable(stream: Any) -> bool:
    """Whether ``stream`` is a terminal a progress bar can be drawn on: one of 0 columns (a pty left at its
    default size: ``script``, some ``ssh -t`` and CI runners) showed nothing at all, neither bar nor lines;
    so did one of 0 rows with its columns set (``stty cols 80`` in such a pty): tqdm draws no bar there."""
    try:
        if not stream.isatty():
            return False
        size = os.get_terminal_size(stream.fileno())
        return size.columns > 0 and size.lines > 0
    except (AttributeError, OSError, ValueError):
        return False


class _AroundBar:
    """sys.stdout or sys.stderr while an epoch's progress bar is drawn: a line written there (a warning of an
    unreadable image, a stop signal said) is written with the bar taken off first and drawn again after it,
    so that it stands on a line of its own rather than after the bar's numbers. Text after a line's last
    break waits for the rest of its line (print writes its end apart), or for :meth:`release`."""

    def __init__(self, stream: Any, bar: Any):
        self.stream, self._bar, self._held = stream, bar, ""
        self._pid = os.getpid()  # a loader worker forked during an epoch inherits this, and a copy of the bar

    def write(self, text: str) -> int:
        lines, newline, self._held = (self._held + text).rpartition("\n")
        if not newline:
            return len(text)
        if os.getpid() != self._pid:
            # A loader worker forked during an epoch, with a copy of that epoch's bar: the line is cleared, not
            # drawn again from a stale copy (epoch 1's, in a persistent worker), nor under tqdm's lock, which the
            # fork may have copied held by another thread; the bar's process draws it again at its next step.
            with contextlib.suppress(Exception):
                self._bar.fp.write("\r\x1b[K")  # the terminal's line erased (tqdm's clear erases its own copy's)
                self._bar.fp.flush()
            self._put(lines)
        else:
            with self._bar.get_lock():
                self._bar.clear(nolock=True)
                self._put(lines)
                self._bar.refresh(nolock=True)
        return len(text)

    def _put(self, lines: str) -> None:
        self.stream.write(lines + "\n")
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def release(self) -> None:
        """Write what is held (the bar is gone)."""
        if self._held:
            held, self._held = self._held, ""
            self.stream.write(held)
            self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class RunLogger:
    """Logs one training run. ``run_dir`` None writes no files (``save_checkpoint`` off); on ranks other
    than 0 every method does nothing.

    Use: ``begin_epoch(e)``; ``log_step(i, loss, lr, images)`` after every step (the ``on_step`` hook of
    :func:`engine.train_one_epoch`); ``log_epoch(e, result, lr, accuracy)``; ``close()`` at the end.
    """

    def __init__(self, run_dir: Optional[str], epochs: int, steps_per_epoch: int, start_epoch: int = 0,
                 log_interval: int = 50, preamble: str = "", progress: Optional[bool] = None,
                 tensorboard: bool = True, start_in_epoch: int = 0, step_offset: int = 0,
                 history: bool = True) -> None:
        self.active = runtime.is_rank0()
        self.run_dir = run_dir if self.active else None
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.log_interval = log_interval
        # step_offset: the global step minus the position in the schedule, not 0 after a resume at another
        # number of steps per epoch, so that steps, TensorBoard's axis included, count on from the checkpoint's.
        self.steps = GlobalSteps(steps_per_epoch, step_offset)
        # A bar needs a terminal to redraw on; in a log file it would be a smear of carriage returns.
        self.progress = (redrawable(sys.stdout) if progress is None else progress) and self.active
        self._log = self._metrics = self._writer = self._bar = None
        self._streams: Optional[Tuple[Any, Any]] = None  # sys.stdout and stderr as they were before the bar
        self._hooked = False  # threading.excepthook is _writer_thread_hook's while the writer is open
        self._epoch, self._first_step = start_epoch, 0
        self._t0 = self._t_last = time.perf_counter()
        self._images = self._images_last = 0
        self._loss: Optional[float] = None
        if self.run_dir is None:
            return
        there = _listing(self.run_dir)
        log_path = os.path.join(self.run_dir, LOG_FILE)
        # log.txt's length before this run's preamble: a run that cannot open its records leaves it so. Asked of
        # the file itself, not of the listing: a folder that cannot be listed (chmod -r) lists no log.txt, whose
        # earlier runs' lines were then deleted with the preamble.
        existed = os.path.lexists(log_path)
        try:
            log_size: Optional[int] = os.path.getsize(log_path) if existed else None
        except OSError:
            log_size = None
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            cut = bool(log_size) and _ends_mid_line(log_path)
            self._log = runtime.add_log_file(os.path.join(self.run_dir, LOG_FILE))
            # A line cut short (a full disk, a kill) stays, ended: this run's header starts a line of its own.
            self._log.write(("\n" if cut else "") + preamble)  # already printed before the folder existed
            self._log.flush()
            # A resume from a mid-epoch checkpoint continues after start_in_epoch steps of the next epoch:
            # the records of those steps, which the checkpoint holds, stay.
            # Without ``history`` the folder's records before the start are another run's: none stays.
            start_step = self.steps.at(start_epoch, start_in_epoch)
            self._metrics = _open_for_append(os.path.join(self.run_dir, METRICS_FILE))
            self._write({"kind": "start", "epoch": start_epoch, "step": start_step, "time": round(time.time(), 3),
                         **({} if history else {"history": False})})
            if tensorboard:
                self._writer = self._open_tensorboard(start_step if history else 0)
        except BaseException as e:
            self.close()  # or print0 would go on copying this process's output into a run that never started
            try:  # the preamble written into log.txt, of a run that never started, with no line of why: taken back
                if log_size is not None:
                    os.truncate(log_path, log_size)
                elif not existed and os.path.isfile(log_path):
                    os.unlink(log_path)
            except OSError:  # left as it is: the error below is the one to say
                pass
            for name in _listing(self.run_dir) - there:  # an events file begun and not written: no record
                path = os.path.join(self.run_dir, name)
                try:
                    if name.startswith("events.out.tfevents.") and os.path.getsize(path) == 0:
                        os.unlink(path)
                except OSError:  # left as it is: the error below is the one to say
                    pass
            if isinstance(e, OSError):
                named = f"{e.filename}: " if isinstance(e.filename, str) else ""
                raise CheckpointError(f"save_checkpoint_path {self.run_dir}: cannot write the run's records there "
                                      f"({named}{e.strerror or e}); nothing was trained") from None
            raise

    def _open_tensorboard(self, start_step: int):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            runtime.print0(f"TensorBoard files are off: the tensorboard package is not installed "
                           f"({runtime.install_hint('tensorboard')})")
            return None
        try:
            # TensorBoard's writer takes the path as text it encodes as UTF-8 (strict) and also hands to os.makedirs
            # (in the locale's encoding): the path's UTF-8 text, which an ASCII locale (LC_ALL=C with PYTHONUTF8=0)
            # cannot give os.makedirs where the path is not ASCII. The str os.fsdecode gives there (surrogates) ended
            # the run at its start ("'utf-8' codec can't encode characters ...: surrogates not allowed").
            log_dir = os.fsencode(self.run_dir).decode("utf-8")
            os.fsencode(log_dir)
        except UnicodeDecodeError:  # TensorBoard's writer takes UTF-8 paths only: the run failed to start
            runtime.print0(f"TensorBoard files are off: the run folder's path is not UTF-8 "
                           f"({os.fsencode(self.run_dir)!r}), which TensorBoard's writer cannot open")
            return None
        except UnicodeEncodeError:
            runtime.print0(f"TensorBoard files are off: the run folder's path is not ASCII and this process's locale "
                           f"encodes file names as {sys.getfilesystemencoding()} (LC_ALL=C?), in which TensorBoard's "
                           f"writer cannot name it; set LC_ALL=C.UTF-8 or PYTHONUTF8=1 for them")
            return None
        # purge_step: TensorBoard hides what earlier runs in this folder logged from this step on. The
        # checkpoint's own step stays: its records (an epoch's eval/top_1) are the ones this run continues.
        _quiet_writer_threads(True)  # before its thread starts: that thread writes the file's first record
        self._hooked = True
        return SummaryWriter(log_dir=log_dir, purge_step=start_step + 1)

    def _write(self, record: Dict[str, Any]) -> None:
        if self._metrics is not None:
            try:
                self._metrics.write(runtime.json_text(record) + "\n")
                self._metrics.flush()
            except OSError as e:  # a partial last line is cut off when the run is resumed
                runtime.record_lost(self._metrics.name, e, "its records")
                self._metrics = _closed(self._metrics)

    def _scalars(self, values: Dict[str, float], step: int, flush: bool = False) -> None:
        if self._writer is not None:
            try:
                for tag, value in values.items():
                    self._writer.add_scalar(tag, value, step)
                if flush:
                    self._writer.flush()
            except OSError as e:  # the writer's thread met it; every later call would raise it again
                runtime.record_lost(f"the TensorBoard files in {self.run_dir}", e, "their scalars")
                self._writer = _closed(self._writer)

    def begin_epoch(self, epoch: int, first_step: int = 0) -> None:
        """Epoch ``epoch`` (counted from 1) starts, at its step ``first_step`` (a resumed epoch: the steps
        before it were run by an earlier process and take no time here)."""
        if not self.active:
            return
        self._epoch, self._first_step = epoch, first_step
        self._t0 = self._t_last = time.perf_counter()
        self._images = self._images_last = 0
        if self.progress:
            from tqdm import tqdm

            self._bar = tqdm(total=self.steps_per_epoch, initial=first_step, desc=f"epoch {epoch}/{self.epochs}",
                             unit="step", leave=False, file=sys.stdout, dynamic_ncols=True, mininterval=0.5,
                             bar_format=BAR_FORMAT)
            if self._bar.disable:  # tqdm's own switch, TQDM_DISABLE (set where a container's terminal, `docker run
                # -t`, `srun --pty`, keeps every redraw in its logs), left stdout without a line a step: plain lines
                self._bar = None
                self.progress = False
            else:
                self._streams = (sys.stdout, sys.stderr)
                sys.stdout, sys.stderr = _AroundBar(sys.stdout, self._bar), _AroundBar(sys.stderr, self._bar)

    def _end_bar(self) -> None:
        """The epoch's bar taken off the terminal, and the streams written around it given back (with what was
        written to them after a line's last break)."""
        if self._bar is None:
            return
        bar, self._bar = self._bar, None
        bar.close()
        if self._streams is not None:
            for name, before in zip(("stdout", "stderr"), self._streams):
                around = getattr(sys, name)
                if isinstance(around, _AroundBar) and around.stream is before:
                    setattr(sys, name, before)  # not where the caller has put a stream of its own there since
                if isinstance(around, _AroundBar):
                    around.release()
            self._streams = None

    def record_due(self, epoch: int, i: int) -> bool:
        """Whether step ``i`` (0-based) of epoch ``epoch`` (from 1) makes a record (and reads its loss
        back): on every rank alike, so that a distributed run can average the loss over the ranks there."""
        done = i + 1
        step = self.steps.at(epoch - 1, done)
        return done >= self.steps_per_epoch or (self.log_interval > 0 and step % self.log_interval == 0)

    def log_step(self, i: int, loss: torch.Tensor, lr: float, images: int,
                 grad_norm: Optional[Callable[[], torch.Tensor]] = None) -> None:
        """Step ``i`` (0-based, within the epoch) is queued. Reads ``loss`` back only when a record is due,
        and only then asks ``grad_norm`` for the step's gradient norm, recorded beside it."""
        if not self.active:
            return
        self._images += images
        done = i + 1
        step = self.steps.at(self._epoch - 1, done)
        position = step - self.steps.offset  # in the schedule, which the epoch fraction counts
        last = done >= self.steps_per_epoch
        due = self.record_due(self._epoch, i)
        if due:
            self._loss = float(loss)  # the one host synchronisation, so the clock below is true
        now = time.perf_counter()
        elapsed = now - self._t0
        if self._bar is not None:
            loss_text = f"loss {self._loss:.4f}, " if self._loss is not None else ""
            self._bar.set_postfix_str(f"{loss_text}lr {lr:.4g}, {self._images / max(elapsed, 1e-9):.0f} img/s",
                                      refresh=False)
            shown = self._bar.update(1)
            if due and not last and not shown:
                self._bar.refresh()  # a fresh loss: show it now, not at the next timed redraw
            if last:
                self._end_bar()
        if not due:
            return
        rate = (self._images - self._images_last) / max(now - self._t_last, 1e-9)
        self._t_last, self._images_last = now, self._images
        norm = {} if grad_norm is None else {"grad_norm": float(grad_norm())}
        self._write({"kind": "step", "step": step, "epoch": round(position / self.steps_per_epoch, 6),
                     "loss": self._loss, "lr": lr, "images_per_s": round(rate, 2), **norm})
        self._scalars({"train/loss": self._loss, "train/lr": lr, "train/images_per_s": rate,
                       **{"train/" + k: v for k, v in norm.items()}}, step)
        if not last:  # the seed's epoch line follows the last step
            per_step = elapsed / (done - self._first_step)  # training only: evaluations between epochs are not in it
            left = (self.steps_per_epoch - done) * per_step
            run_left = left + (self.epochs - self._epoch) * self.steps_per_epoch * per_step
            line = (f"epoch {self._epoch}/{self.epochs} step {done}/{self.steps_per_epoch}: loss {self._loss:.4f}, "
                    f"lr {lr:.6g}, {rate:.1f} images/s, {_clock(left)} left in epoch, {_clock(run_left)} in run")
            # On a terminal the bar shows this; log.txt keeps it either way.
            (runtime.log0 if self.progress else runtime.print0)(line)

    def _reopen_if_removed(self) -> None:
        """A record file removed while the run writes it (its folder deleted, a clean-up's ``rm``) took every line
        after that into a file no one can open again, without a word, and the run ended with status 0 (helper-348).
        Said once, and the file opened anew at its path (its folder made again): the records from here on are
        kept, and a resume's history starts at them."""
        if self.run_dir is None:
            return
        for attr, what in (("_log", "its lines"), ("_metrics", "its records")):
            f = getattr(self, attr)
            if f is None:
                continue
            try:
                path = f.name
                if os.fstat(f.fileno()).st_nlink > 0:
                    continue
            except (OSError, ValueError, AttributeError):  # not a plain open file (closed, a stream): as it is
                continue
            try:
                os.makedirs(self.run_dir, exist_ok=True)
                new = runtime.add_log_file(path) if attr == "_log" else open(path, "a", encoding="utf-8")
            except OSError as e:
                runtime.record_lost(path, e, what)
                new = None
            else:
                print(f"warning: {path} was removed while the run wrote it (its folder deleted?): {what} up to here "
                      f"are lost; it is written anew from here", file=sys.stderr, flush=True)
            if attr == "_log":
                runtime.remove_log_file(f)
            else:
                _closed(f)
            setattr(self, attr, new)

    def log_epoch(self, epoch: int, result: EpochResult, lr: float,
                  accuracy: Optional[Dict[str, float]] = None) -> None:
        if not self.active:
            return
        self._reopen_if_removed()
        self._end_bar()  # an epoch that ended early
        step = self.steps.at(epoch)
        rate = result.images / max(result.seconds, 1e-9)
        record: Dict[str, Any] = {"kind": "epoch", "epoch": epoch, "step": step, "loss": result.last_loss,
                                  "mean_loss": result.mean_loss, "lr": lr, "images_per_s": round(rate, 2),
                                  "epoch_seconds": round(result.seconds, 3)}
        record.update(accuracy or {})
        self._write(record)
        self._scalars({"epoch/mean_loss": result.mean_loss, "epoch/images_per_s": rate, **eval_tags(accuracy)}, step,
                      flush=True)

    def log_evaluation(self, epoch: int, accuracy: Dict[str, Any]) -> None:
        """Epoch ``epoch``'s evaluation, made after its record was written (a run stopped before it, and
        resumed): an ``eval`` record, which :func:`read_metrics` adds to that epoch's."""
        if not self.active:
            return
        step = self.steps.at(epoch)
        self._write({"kind": "eval", "epoch": epoch, "step": step, **accuracy})
        self._scalars(eval_tags(accuracy), step, flush=True)

    def close(self, error: Optional[BaseException] = None) -> None:
        """End the run's records; ``error``: what stopped it, whose line log.txt ends with, as stderr does."""
        self._end_bar()
        if error is not None and self._log is not None:
            line = ("\n".join(runtime.job_error_lines("train", error) or ())  # rank 0's: the job's, as on stderr
                    or runtime.error_line("train", error)
                    or f"mobilenet-v1 train: stopped by {type(error).__name__}"
                    + (f": {error}" if str(error) else "")
                    + ("; its traceback is on stderr" if isinstance(error, Exception) else ""))
            runtime.log0(line)
        self._writer = _closed(self._writer)  # what the files could not take was said as it was found
        if self._hooked:
            _quiet_writer_threads(False)
            self._hooked = False
        self._metrics = _closed(self._metrics)
        if self._log is not None:
            runtime.remove_log_file(self._log)
            self._log = None
