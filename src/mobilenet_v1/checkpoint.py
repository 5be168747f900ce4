"""Checkpoints: one dictionary per file, written atomically, read with ``weights_only=True``.

A training checkpoint holds ``model``, ``optimizer``, ``scaler``, ``epoch``, ``step``, ``config``,
``rng`` and ``format``, and ``ema`` (``decay``, ``updates``, ``model``: the weight average) in a run with
``--ema_decay``. A file is written as a temporary file in the same folder, flushed and fsynced,
then renamed over the target, and the folder is fsynced: an interrupted save never leaves a partial
file under a checkpoint's name.
"""
import argparse
import contextlib
import glob
import hashlib
import os
import pickle
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .config import (DATASETS, LAYERS, ConfigError, OptionError, channel_values, channels_text, cifar_name,
                     crop_pct_problem, is_cifar, names_text, normalisation)
from .runtime import UNWRITABLE, plural, room_advice, shell_path, special_file_kind

FORMAT = "mobilenet-v1/1"
CKPT_PREFIX = "mobilenetv1"
# The best checkpoint by top-1 (``--eval_interval``); outside _NAME_RE, so pruning never removes it.
BEST_NAME = CKPT_PREFIX + "-best.ckpt"
_NAME_RE = re.compile(r"^" + CKPT_PREFIX + r"-(\d+)_(\d+)\.ckpt$")
_TOP_RE = re.compile(r"^" + CKPT_PREFIX + r"-top-(\d+)\.ckpt$")


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


def top_name(epoch: int) -> str:
    """One of the best evaluated epochs' checkpoints (``keep_best_max``): the state at epoch ``epoch``'s end."""
    return f"{CKPT_PREFIX}-top-{epoch}.ckpt"


def list_top(folder: str) -> List[Tuple[int, str]]:
    """(epoch, path) of the best epochs' checkpoints (:func:`top_name`) in ``folder``, oldest first."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(int(m.group(1)), os.path.join(folder, n)) for n in names for m in [_TOP_RE.match(n)] if m]
    return sorted(found)


@dataclass(frozen=True)
class GlobalSteps:
    """A run's count of optimiser steps: the schedule position ``epochs x steps_per_epoch + in_epoch``
    plus ``offset``, which is not 0 after a resume at another number of steps per epoch (the count goes on
    from the checkpoint's ``step``). A checkpoint's ``step`` (its ``step_offset`` is ``offset``), the logs'
    and TensorBoard's step axis, the step intervals of saving and logging and the steps' seeds count it."""

    steps_per_epoch: int
    offset: int = 0

    def at(self, epochs: int, in_epoch: int = 0) -> int:
        """The count after ``in_epoch`` steps of the epoch that follows ``epochs`` completed ones."""
        return epochs * self.steps_per_epoch + in_epoch + self.offset


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes, read a MiB at a time (a teacher's record, a rank's copy compared)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
def atomic_output(path: str):
    """A temporary path beside ``path`` for the caller to write in place, and to check before it takes the name:
    when the block ends without an error the file is fsynced, renamed over ``path`` and the folder
    fsynced. On any error (a failed check included) the temporary file is removed, with the folders made for
    it, and ``path`` is left as it was; so it is on a SIGTERM where that signal would end the process outright
    (:func:`_unwound_by_sigterm`). The temporary file is locked while it is in use (:func:`_flock`, which
    a kill -9 lets go), so that the next writer into the folder can tell one a killed process left
    (:func:`remove_partial_files`) from one a live process writes."""
    with _unwound_by_sigterm(), _temporary_output(path) as tmp:
        yield tmp


@contextlib.contextmanager
def _unwound_by_sigterm():
    """A SIGTERM (`timeout`, a scheduler) that would end the process outright, its default action, unwinds the
    block as Ctrl-C does, then ends the process by the signal: a convert, average, eval --per_image, predict --out
    ... so ended left its hidden temporary file (a checkpoint's size) beside the file asked for, which no later
    command removes. A handler of the process's own (train's, which stops at its step) stays in place."""
    import signal
    import threading

    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    from .cli import unwound_by_sigterm  # the command line's (lr-schedule, benchmark); no import of ours at its top

    with unwound_by_sigterm():
        yield


# Windows refuses to rename or remove a file that any handle holds open (PermissionError, WinError 32).
RENAME_NEEDS_CLOSE = os.name == "nt"


def _replace(src: str, dst: str) -> None:
    """``os.replace``; where a handle held open elsewhere refuses it (Windows: another process reading ``dst``,
    an eval of the run's best checkpoint, a virus scanner), tried again for up to 1.5 s before the error."""
    if RENAME_NEEDS_CLOSE:
        import time

        for delay in (0.05, 0.1, 0.15, 0.2, 0.4, 0.6):
            try:
                os.replace(src, dst)
                return
            except PermissionError:
                time.sleep(delay)
    os.replace(src, dst)


NAME_MAX = 255  # bytes of a file's name: Linux's file systems, macOS's and Windows' (in characters)


def _temporary_name(path: str) -> str:
    """``path``'s temporary files' name before mkstemp's ``.XXXXXXXX.tmp`` (and its work folder's ``.d``):
    ``.NAME``, NAME shortened where they would pass :data:`NAME_MAX` (its start, a digest of it and its
    extension kept, which the partial files' patterns look for): a name of 240 bytes or more, which the file
    system takes, could not be written."""
    name = os.path.basename(path)
    if len(os.fsencode(f".{name}.XXXXXXXX.tmp.d")) <= NAME_MAX:
        return "." + name
    stem, ext = os.path.splitext(name)
    if len(os.fsencode(ext)) > 16:
        stem, ext = name, ""
    head = stem
    while len(os.fsencode(f".{head}~{'0' * 12}{ext}.XXXXXXXX.tmp.d")) > NAME_MAX:
        head = head[:-1]
    return f".{head}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:12]}{ext}"


@contextlib.contextmanager
def _temporary_output(path: str):
    """:func:`atomic_output`'s temporary file, renamed over ``path`` once the block succeeds."""
    folder = os.path.dirname(os.path.abspath(path))
    made: List[str] = []
    try:
        made = _make_folders(folder)
        # The temporary file of a write of this same file that a kill -9 ended (its lock let go): never a
        # finished file, and nothing else would take it away (export and quantize remove all of their kinds').
        temporary = _temporary_name(path)
        remove_partial_files(folder, (glob.escape(temporary) + f".{_MKSTEMP}.tmp",), held=False)
        fd, tmp = _locked_temporary(folder, temporary + ".")
    except BaseException as e:  # a Ctrl-C too leaves no folder made for the file
        _remove_empty_folders(made)
        if isinstance(e, OSError):  # named for the file asked for, not the temporary one
            raise OSError(e.errno, f"cannot write {path} in {folder}: {e.strerror}") from None
        raise
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            _HELD_LOCKS.discard(fd)
            os.close(fd)

    try:
        # mkstemp makes the file private (0600); give it the mode any new file of this user gets.
        if hasattr(os, "fchmod"):  # none on Windows before Python 3.13
            os.fchmod(fd, 0o666 & ~_umask())
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        os.fsync(fd)
        if RENAME_NEEDS_CLOSE:  # Windows renames no file a handle holds open (it takes no flock either)
            close()
        _replace(tmp, path)
    except BaseException as e:
        if RENAME_NEEDS_CLOSE:  # nor removes one
            close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _remove_empty_folders(made)  # a failed export into a new folder leaves no empty one behind
        # A full disk met at a write, flush or fsync names no file ("[Errno 28] No space left on device"), an
        # error of the temporary file its hidden name: both are said of the file asked for.
        if isinstance(e, OSError) and e.errno and e.filename in (None, tmp) and e.filename2 is None:
            error = OSError(e.errno, e.strerror or os.strerror(e.errno), path)
            error.unwritten_output = True  # what unwritten_line says, with the option that gave the file
            raise error from None
        raise
    finally:  # after the rename or the removal: the lock is let go only once no temporary file is left
        close()
    fsync_dir(folder)


def _make_folders(folder: str) -> List[str]:
    """``folder`` made as ``os.makedirs`` makes it; returns the folders this call made, innermost first (what
    :func:`_remove_empty_folders` takes away again), and leaves none of them where it fails."""
    missing = []
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    made: List[str] = []
    try:
        for each in reversed(missing):
            try:
                os.mkdir(each)
                made.insert(0, each)
            except FileExistsError:  # made meanwhile by another process: not ours to remove
                if not os.path.isdir(each):
                    raise
    except BaseException:  # an error or a Ctrl-C: none of them left
        _remove_empty_folders(made)
        raise
    return made


def _remove_empty_folders(made: Sequence[str]) -> None:
    """Remove the folders :func:`_make_folders` made, innermost first, as long as they are empty (another
    process may have put a file in one since)."""
    for folder in made:
        try:
            os.rmdir(folder)
        except OSError:
            return


def _flock(fd: int, block: bool = False) -> Optional[bool]:
    """An exclusive ``flock`` on ``fd``: True once taken, False while another process holds it (without
    ``block``), None where the system or file system takes no locks. The system lets it go when the process
    ends, however it ends (a kill -9 included), as it does :class:`RunLock`'s."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK: no locks on this file system
        return None
    return True


def _locked_temporary(folder: str, prefix: str) -> Tuple[int, str]:
    """A new temporary file ``prefix``XXXXXXXX``.tmp`` in ``folder``, open and locked (:func:`_flock`; not
    locked where no locks are taken). A file :func:`remove_partial_files` took for a killed process's in the
    moment between its creation and its lock is not used: another is made."""
    while True:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        _HELD_LOCKS.add(fd)  # a loader worker forked meanwhile holds no copy (as of a RunLock's)
        try:
            if _flock(fd, block=True) is None:
                return fd, tmp
            try:
                here = os.stat(tmp)
            except FileNotFoundError:
                here = None
            mine = os.fstat(fd)
            if here is not None and (here.st_ino, here.st_dev) == (mine.st_ino, mine.st_dev):
                return fd, tmp
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            _HELD_LOCKS.discard(fd)
            os.close(fd)
            raise
        _HELD_LOCKS.discard(fd)
        os.close(fd)


def work_folder_of(tmp: str) -> str:
    """The folder :func:`work_folder` makes beside the temporary file ``tmp``."""
    return tmp + ".d"


@contextlib.contextmanager
def work_folder(tmp: str):
    """A folder for the files a write makes on its way (ONNX Runtime's quantizer works in files), beside the
    temporary file ``tmp`` of :func:`atomic_output` and named after it, removed at the end: one a killed
    process left goes with its temporary file (:func:`remove_partial_files`), under the same lock."""
    folder = work_folder_of(tmp)
    os.mkdir(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def temporary_files_in(folder: str):
    """The block's ``tempfile`` files and folders made in ``folder`` (a :func:`work_folder`), not in TMPDIR:
    ONNX Runtime's quantizer keeps copies of the model there (``pre.quant.*``, ``ort.quant.*``: four of them,
    the calibration graph among them), which a ``kill -9`` (the out-of-memory killer, whose target calibration
    is) left in /tmp for good, where no later command looks, while a work folder's go with its temporary file
    (:func:`remove_partial_files`). ``tempfile.tempdir`` is the process's own: put back at the end."""
    before = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield
    finally:
        tempfile.tempdir = before


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", **text: str):
    """Open a temporary file beside ``path`` (``text``: ``encoding``, ``errors`` of a text ``mode``); on
    success flush, fsync, rename it over ``path`` and fsync the folder. On any error the temporary file is
    removed and ``path`` is left as it was."""
    with atomic_output(path) as tmp:
        with open(tmp, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` through :func:`atomic_write`. A failed write (a full disk) is an
    OSError naming ``path``: torch.save reports it as a RuntimeError about stream positions."""
    with atomic_write(path) as f:
        try:
            torch.save(obj, f)
        except RuntimeError as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, BaseException) and not isinstance(cause, Exception):  # a Python caller's
                # Ctrl-C inside the write (a SIGTERM unwinding it, :func:`atomic_output`), which torch.save's
                # writer then reports as stream positions: the Ctrl-C it is (nothing written)
                raise cause from None
            if isinstance(cause, OSError) and cause.errno:
                raise OSError(cause.errno, cause.strerror, path) from None
            raise OSError(f"{path}: writing failed ({str(e).splitlines()[0]})") from None


def atomic_save_text(text: str, path: str, errors: str = "strict") -> None:
    """``text`` to ``path`` in UTF-8, atomically; ``errors="surrogateescape"`` writes the bytes of file names
    that are not UTF-8 (as ``os.listdir`` hands them over) as they are."""
    with atomic_write(path, "w", encoding="utf-8", errors=errors) as f:
        f.write(text)


def list_checkpoints(folder: str) -> List[Tuple[int, str]]:
    """(epoch, path) of the run's checkpoints in ``folder``, oldest first.

    Names are the seed's ``mobilenetv1-{epoch}_{step}.ckpt`` with ``step`` the steps done in that
    epoch (MindSpore's numbering of mid-epoch saves): ordered by epoch, then step as a number.
    """
    return [(epoch, path) for epoch, _, path in _numbered(folder)]


def _numbered(folder: str) -> List[Tuple[int, int, str]]:
    """(epoch, step in the name, path) of the numbered checkpoints in ``folder``, oldest first; none for
    a folder that does not exist. A folder that cannot be read raises its OSError (glob would have
    said "no checkpoints" of an unreadable folder)."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        m = _NAME_RE.match(name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), os.path.join(folder, name)))
    return sorted(found)


DISTRIBUTED_SUBFOLDER = "ckpt_0"
RUN_CONFIG = "config.yaml"  # the configuration a training run writes into its checkpoint folder at start


def run_folder(path: str) -> str:
    """``path``, or its ``ckpt_0/`` where ``path`` is the ``save_checkpoint_path`` of a distributed run
    (whose checkpoints and logs go to ``ckpt_0/``, the seed's layout) and holds no checkpoint itself."""
    sub = os.path.join(path, DISTRIBUTED_SUBFOLDER)
    own = list_checkpoints(path)
    if own and os.path.isdir(sub):
        theirs = list_checkpoints(sub)
        if theirs:  # two runs, left by an earlier version (a run now sets the other layout's aside)
            raise CheckpointError(f"checkpoint folder {path}: holds the checkpoints of two runs, one of one process "
                                  f"(newest {os.path.basename(own[-1][1])}) and a distributed one in "
                                  f"{DISTRIBUTED_SUBFOLDER}/ (newest {os.path.basename(theirs[-1][1])}); name a "
                                  f"checkpoint file, or {sub} for the distributed run, or move one run's files into "
                                  f"a folder of their own")
    return sub if os.path.isdir(sub) and not own else path


def check_path_argument(path: Any, who: str) -> None:
    """Refuse a model file argument of the Python API (``who``: ``load_model``) that is no path: train.run's result
    (a dict) raised os.fspath's "expected str, bytes or os.PathLike object, not dict", naming neither."""
    if isinstance(path, (str, os.PathLike)):
        return
    hint = (f" (train.run's result? its 'checkpoint' is the file: {path['checkpoint']})"
            if isinstance(path, dict) and isinstance(path.get("checkpoint"), str) else "")
    raise TypeError(f"{who}: the model file is a path (a checkpoint, a run folder or an exported file), got "
                    f"{type(path).__name__}{hint}")


def given_as(option: str, path: str, origin: str = "") -> str:
    """How a path given to a command is named in its errors: ``--pre_trained X`` (the option typed), or
    ``pre_trained X (from config file F)`` where a configuration file set it (``origin``) and nobody typed the
    option."""
    return f"{option.lstrip('-')} {path} (from {origin})" if origin else f"{option} {path}"


def check_given(path: str, option: str, kinds: str = "file or run folder", origin: str = "") -> None:
    """Refuse ``path``, given as ``option`` (``--ckpt_file``; a positional argument: its role, ``checkpoint``),
    where nothing is there, named by it: the reader after it said "checkpoint X: no such file", not which option
    gave it (a run given --teacher and --pre_trained left the user to guess which was mistyped). ``origin``: the
    configuration file that set it (``config file F``), named in place of the option nobody typed (the seed's
    files name ./mobilenetv1-90_625.ckpt and /cache/data/...)."""
    if not os.path.exists(path):
        key = option.lstrip("-")
        if not path:  # "--onnx : no such file"
            raise CheckpointError((f"{key} (from {origin})" if origin else option) + f" is empty: give a {kinds}")
        home = unexpanded_home(path, read=True)  # ~/runs quoted, or in a config file: no shell expanded it
        raise CheckpointError(f"{given_as(option, path, origin)}: "
                              + ("a link to nothing" if os.path.islink(path) else f"no such {kinds}")
                              + (f" (it {home})" if home else "") + (f"; pass --{key}" if origin else ""))
    if not os.path.isfile(path) and not os.path.isdir(path):  # /dev/null, a named pipe
        raise CheckpointError(f"{given_as(option, path, origin)}: {not_a_file(path)}: give a {kinds}")


def not_a_file(path: str) -> str:
    """Why ``path``, which is not a regular file, is not read as one: "no such file", "a link to nothing", "a folder,
    not a file", or what it is (``/dev/null`` given as a checkpoint was said to be "no such file")."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a link to nothing" if os.path.islink(path) else "no such file"
    return "a folder, not a file" if stat.S_ISDIR(mode) else f"{special_file_kind(mode)}, not a regular file"


def tf_index(path: str) -> str:
    """``path``, or where it is a TensorFlow checkpoint's prefix (``model.ckpt``: no file, ``model.ckpt.index``
    beside it), its index, which names the checkpoint as a file."""
    return path + ".index" if not os.path.exists(path) and os.path.isfile(path + ".index") else path


def resolve_checkpoint_path(path: str, option: str = "", origin: str = "") -> str:
    """A checkpoint file, or a run folder standing for its newest ``mobilenetv1-*.ckpt`` (a distributed
    run's ``save_checkpoint_path``: the newest in its ``ckpt_0/``); a ``pathlib.Path`` comes back as text, as
    the readers after it take it. ``option``: how the command was given ``path`` (:func:`check_given`), which
    names a path where nothing is and a folder without checkpoints; without it a missing path comes back as
    it is, for the reader to refuse. ``origin``: the configuration file that set it, if one did."""
    path = tf_index(os.fspath(path))
    if option:
        check_given(path, option, origin=origin)
    if os.path.isdir(path):
        folder = run_folder(path)
        found = list_checkpoints(folder)
        if not found:
            named = given_as(option, path, origin)  # `pre_trained: runs` in a file was "--pre_trained runs"
            where = (f"checkpoint folder {folder}: holds" if not option else f"{named}: the folder holds"
                     if folder == path else f"{named}: its {DISTRIBUTED_SUBFOLDER}/ holds")
            raise CheckpointError(f"{where} no numbered checkpoint ({CKPT_PREFIX}-EPOCH_STEP.ckpt)"
                                  + instead_in(folder))
        return found[-1][1]
    return path


def instead_in(folder: str) -> str:
    """What a folder without numbered checkpoints holds instead, and which to pass ("" for nothing): its best
    checkpoint, other checkpoint files (a release's ``mobilenetv1.ckpt``), or run folders below it."""
    best = os.path.join(folder, BEST_NAME)
    if os.path.isfile(best):
        return f"; its best one is {best}: pass that file"
    others = checkpoint_files_in(folder)
    if others:
        return (f"; it holds {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}: pass "
                f"{'that' if len(others) == 1 else 'one'}")
    runs = run_folders_in(folder)
    return (f"; its run folder{'s' if len(runs) > 1 else ''} {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''} "
            f"hold{'' if len(runs) > 1 else 's'} them: pass {'that' if len(runs) == 1 else 'one'}" if runs else "")


# The names of checkpoints a folder given for a run folder may hold instead (TF-slim's release unpacks to a folder
# of mobilenet_v1_1.0_224.ckpt.index, .data-..., .tflite, ...: its checkpoint is passed by the prefix). Exported
# files are not named: export, convert, --pre_trained and --teacher refuse them, and eval takes them by name.
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".pth.tar", ".safetensors")


def run_folders_in(folder: str, most: int = 50) -> List[str]:
    """The sub-folders of ``folder`` (at most ``most`` looked at, sorted) that hold numbered checkpoints, directly
    or in their ``ckpt_0/``: what a parent of run folders (``runs``) given for one holds."""
    try:
        subs = sorted(e.path for e in os.scandir(folder) if e.is_dir())[:most]
    except OSError:
        return []
    found = []
    for sub in subs:
        try:
            if _numbered(sub) or _numbered(os.path.join(sub, DISTRIBUTED_SUBFOLDER)):
                found.append(sub)
        except OSError:
            continue
    return found


def checkpoint_files_in(folder: str) -> List[str]:
    """The paths of checkpoint files directly in ``folder`` (a TensorFlow checkpoint by its prefix), sorted."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".index") and os.path.isfile(path):
            found.append(path[:-len(".index")])
        elif name.lower().endswith(CHECKPOINT_SUFFIXES) and os.path.isfile(path):
            found.append(path)
    return found


def unexpanded_home(path: str, read: bool = False) -> str:
    """Why ``path`` reads as a home folder it does not name (``~/runs``, ``~user/x``: ~ is expanded by a shell
    where it is not quoted, never in a config file), or "": the folder named ``~`` it would make here, as the
    outputs that name it, said as written, read as the home folder's. A file named ``~x.csv`` is one. ``read``:
    ``path`` is one to read, which is not there (no folder named ``~`` here to offer)."""
    top, sep, _ = path.partition(os.sep)
    if not sep or not top.startswith("~") or os.path.exists(top):
        return ""
    home = os.path.expanduser(path)
    if read and not os.path.exists(home):  # not there either: no path to offer in its place
        return (f"starts with {top}, which only a shell expands, and only where it is not quoted; "
                f"{shell_path(home)}, what a shell makes of it, is not there either")
    return (f"starts with {top}, which only a shell expands, and only where it is not quoted: give "
            f"{shell_path(home)}" + ("" if read else f" (or ./{path} for a folder named {top} here)"))


def _via_proc(path: str) -> bool:
    """Whether ``path`` is in /proc or a symbolic link whose chain of links passes through it (a process's open
    file: /dev/stdout, /proc/self/fd/1)."""
    here = os.path.abspath(path)
    # its folder resolved: /dev/fd/1 is /proc/self/fd/1 through the link /dev/fd, not a link itself to /proc
    here = os.path.join(os.path.realpath(os.path.dirname(here)), os.path.basename(here))
    for _ in range(40):  # the kernel's own limit on a chain of links
        if here == "/proc" or here.startswith("/proc/"):
            return True
        if not os.path.islink(here):
            return False
        here = os.path.normpath(os.path.join(os.path.dirname(here), os.readlink(here)))
    return False


# The option each output was given as (check_output's), for unwritten_line to name: the error of a write names the file.
_OUTPUT_OPTIONS: Dict[str, str] = {}


def unwritten_line(error: BaseException) -> str:
    """Where ``error`` is :func:`atomic_output`'s for a file it could not write for want of room or permission (a
    full disk, a quota, a read-only folder, a file-size limit): the option and file, why, and what to do, in one
    line (as train says its checkpoints'); "" for any other error. It said "[Errno 28] No space left on device:
    'x.onnx'", naming neither the option nor a way out."""
    import errno

    if not (isinstance(error, OSError) and getattr(error, "unwritten_output", False) and error.filename
            and errno.errorcode.get(error.errno) in UNWRITABLE):
        return ""
    path = os.fsdecode(error.filename)
    option = _OUTPUT_OPTIONS.get(os.path.abspath(path))
    reason = error.strerror or os.strerror(error.errno)
    return (f"{option + ' ' if option else ''}{path}: cannot write it: {reason}; {room_advice(reason)}, then run the "
            f"command again (any earlier file of that name is left as it was)")


def check_output(option: str, path: str, reads: Sequence[str] = (), inside: Sequence[str] = (),
                 suffix: Union[str, Tuple[str, ...]] = "") -> None:
    """Refuse an output ``path`` (given as ``option``) whose write would destroy something: a folder, a
    file the command reads (``reads``) or one under a folder it reads (``inside``: the data set),
    compared by real path (a symbolic link or ``..`` is no way round it); and, where the output is of
    one kind (``suffix``: ".csv", or the kinds it writes: (".csv", ".json")), a name without that suffix (a config,
    a checkpoint, a data file)."""
    _OUTPUT_OPTIONS[os.path.abspath(path)] = option
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a folder; name the file to write")
    try:
        mode = os.stat(path).st_mode  # through a link: what the name stands for
    except OSError:
        mode = None
    if _via_proc(path):
        # /dev/stdout -> /proc/self/fd/1 redirected to a regular file (`convert CKPT /dev/stdout > m.pt`): the
        # rename replaced root's /dev/stdout link by a regular file of the output, the redirect's file got none.
        raise ValueError(f"{option} {path}: is a link to a process's open file (a standard stream?), which the write "
                         f"would replace, not write to; name a file to write")
    if mode is not None and not stat.S_ISREG(mode):
        # The write renames a temporary file over the name: /dev/null given as the output (root's convert
        # CKPT /dev/null --format pt) was replaced by a regular file of the checkpoint's bytes, and a named
        # pipe a reader waits on was taken away.
        via = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise ValueError(f"{option} {path}: is {special_file_kind(mode)}{via}, not a regular file, which the write "
                         f"would replace with one; name a file to write")
    name = os.path.basename(path)
    # Said at the start: a folder not there yet (out/) and a name no file system takes were said at the end, after
    # the work, as the rename of a hidden temporary file.
    if name in ("", ".", ".."):
        raise ValueError(f"{option} {path}: names a folder; name the file to write")
    if len(os.fsencode(name)) > NAME_MAX:
        raise ValueError(f"{option} {path}: its name is {len(os.fsencode(name))} bytes, above the {NAME_MAX} a file "
                         f"system takes; name it shorter")
    home = unexpanded_home(path)
    if home:  # `--out '~/x.onnx'` quoted: ./~ was made, and "wrote ~/x.onnx" said of it
        raise ValueError(f"{option} {path}: {home}")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):  # made when written: the first that exists must be a folder
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise ValueError(f"{option} {path}: {parent} is a file, not a folder: nothing can be written under it")
    if parent:  # before the work: a read-only folder was said at the end, as a hidden temporary file's error
        try:
            check_writable(parent)
        except OSError as e:
            raise ValueError(f"{option} {path}: cannot write in {parent}: {e.strerror or e}") from None
    real = os.path.realpath(path)
    for source in reads:
        for read, also in files_read(source) if source else ():
            if os.path.realpath(read) == real:
                also = also or ("" if os.path.abspath(source) == os.path.abspath(path) else f" (as {source})")
                raise ValueError(f"{option} {path}: is the file this command reads{also}; write to another file")
    for folder in inside:
        if folder and os.path.isdir(folder) and real.startswith(os.path.join(os.path.realpath(folder), "")):
            raise ValueError(f"{option} {path}: is inside {folder}, the data this command reads; write elsewhere")
    if suffix and not path.lower().endswith(suffix):
        # The command line's alone: every process of a torchrun job refuses it alike (said once: OptionError).
        kinds = " or ".join((suffix,) if isinstance(suffix, str) else suffix)
        raise OptionError(f"{option} {path}: name it {kinds} (it is written as such, over any file of that name)")
    if holds_training_state(path):
        raise ValueError(f"{option} {path}: is a training checkpoint (a run's weights, optimizer and progress, which "
                         f"train --resume continues from), not overwritten; write to another file, or remove it "
                         f"first")
    if is_run_checkpoint_name(path) and holds_run(os.path.dirname(os.path.abspath(path))):
        raise ValueError(f"{option} {path}: a run's checkpoint name in {os.path.dirname(path) or '.'}, which holds a "
                         f"run: the commands that look for the run's checkpoints there (eval, info, average, train "
                         f"--resume) would take it for one of them; give it another name")


def files_read(source: str) -> List[Tuple[str, str]]:
    """The files a read of ``source`` takes, each with how a message names it beside ``source`` ("" for itself): a
    TensorFlow checkpoint's index and weights (``PREFIX.data-00000-of-00001``, which a path to the index leaves
    unnamed) too."""
    from .tf_checkpoint import DATA_NAME, bundle_prefix

    files = [(source, "")]
    prefix = bundle_prefix(source)
    if prefix is not None:
        bundle = [prefix + ".index"] + [f for f in sorted(glob.glob(glob.escape(prefix) + ".data-*"))
                                        if DATA_NAME.match(f)]
        files += [(f, f" (a file of the TensorFlow checkpoint {source})") for f in bundle if f != source]
    return files


def holds_training_state(path: str) -> bool:
    """Whether ``path`` is a training checkpoint of ours (every one of :data:`TRAINING_KEYS`), which no other
    command's output may replace; read without its tensors (memory-mapped)."""
    if not os.path.isfile(path) or not starts_as_zip(path):  # (zipfile.is_zipfile raised on a damaged directory)
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # damaged or foreign: not a checkpoint a run could continue from
        return False
    return isinstance(obj, dict) and all(k in obj for k in TRAINING_KEYS)


def trained_dataset(path: str, recorded: Any, asked: Optional[str], asked_in: str = "",
                    data: Tuple[str, str] = ("", "")) -> Optional[str]:
    """The data set a model file is for: the one it records (``recorded``: its configuration's or ONNX
    metadata's), which ``asked`` (the command's --dataset; ``asked_in`` a config file that set it) must match;
    else ``asked``; None where neither says. Another data set's images are read and normalised
    otherwise: the outputs would mean nothing. ``data``: (option, path) of the images the command reads; a
    CIFAR model's refused where they are the other CIFAR's (the data set's own message would send the user
    to the other --dataset, which this check then refused)."""
    if recorded and recorded not in DATASETS:  # eval, export, predict ... alike
        raise CheckpointError(f"{path} records the data set {recorded!r}, none of {', '.join(DATASETS)} (not a "
                              f"file this tool wrote, or one edited since): its inputs cannot be made as its run's "
                              f"were")
    option, data_path = data
    if is_cifar(recorded) and data_path:
        from .data import other_cifar  # data imports this module
        other = other_cifar(data_path, recorded)
        if other:
            raise CheckpointError(f"{option} {data_path}: holds {cifar_name(other)}'s files, not "
                                  f"{cifar_name(recorded)}'s, which {path} was trained on (the file records it), "
                                  f"whose classes are others: give it {cifar_name(recorded)}'s")
        from .data import holds_class_folders, holds_cifar_split  # data imports this module
        if (asked in (None, recorded) and os.path.isdir(data_path) and holds_class_folders(data_path)
                and not holds_cifar_split(data_path, recorded)):
            # data's own message sends the user to --dataset imagenet2012, which the check below then refused
            raise CheckpointError(f"{option} {data_path}: holds folders of images (an ImageNet-style folder), not "
                                  f"{cifar_name(recorded)}'s binaries, which {path} was trained on (the file records "
                                  f"it) and reads its inputs as: give it {cifar_name(recorded)}'s")
    if recorded and asked and recorded != asked:
        why = ("whose classes are others" if is_cifar(recorded) and is_cifar(asked) else
               "whose inputs are read and normalised differently")
        raise CheckpointError(f"dataset {asked} ({asked_in}): {path} was trained on {recorded} (the file records "
                              f"it), {why}: use a config file for {recorded}, or pass --dataset {recorded}"
                              if asked_in else
                              f"--dataset {asked}: {path} was trained on {recorded} (the file records it), {why}: "
                              f"pass --dataset {recorded}")
    return recorded or asked


def given_normalisation_note(key: str, given: Sequence[float], recorded: Sequence[float], path: str) -> str:
    """What a command says of a ``--mean``/``--std`` given that differs from what ``path``'s run normalised by."""
    return (f"{key} {channels_text(given)}: as given, where {path}'s run normalised its inputs by "
            f"{channels_text(recorded)}")


def trained_normalisation(record: Any, dataset: str, path: str, mean: Optional[str] = None,
                          std: Optional[str] = None, say: bool = True) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """The per-channel (mean, std) the run of model file ``path`` normalised its inputs by, from ``record``
    (a checkpoint's ``config``: its ``mean`` and ``std`` keys, empty or absent in a file from before them
    for its data set's constants; an exported file's metadata: the lists it records), for the data set it
    records, else ``dataset`` (a MindSpore or foreign file records none). ``mean`` and ``std``: a command's
    ``--mean``/``--std`` (None: not given), which replace the record's; one that differs from what
    a file of ours records is said on stderr (``say``), as eval says it."""
    record = record if isinstance(record, dict) else {}
    recorded = record.get("dataset")
    try:
        norm = normalisation(recorded if isinstance(recorded, str) and recorded else dataset,
                             record.get("mean") or "", record.get("std") or "")
    except ConfigError as e:
        raise CheckpointError(f"{path}: its recorded normalisation does not read: {e}") from None
    texts = [channel_values(k, v, f"--{k}") if v is not None else "" for k, v in (("mean", mean), ("std", std))]
    given = normalisation("", *texts)
    chosen = (given[0] if texts[0] else norm[0]), (given[1] if texts[1] else norm[1])
    for key, text, ours, theirs in zip(("mean", "std"), texts, chosen, norm):
        if say and text and isinstance(recorded, str) and recorded and ours != theirs:
            print(given_normalisation_note(key, ours, theirs, path), file=sys.stderr)
    return chosen


def teacher_file(ckpt: Dict[str, Any]) -> Optional[Dict[str, str]]:
    """The teacher file (``{"path", "sha256"}``) a distilling run's checkpoint records, or None: a file from
    before the record, of a run without a teacher, or hand-edited."""
    record = ckpt.get("teacher_file")
    return record if isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("path", "sha256")) \
        else None


def recorded_image_size(record: Any) -> Optional[int]:
    """The image size a checkpoint's ``config`` (or an exported file's metadata) records for the model to run
    at: the ``eval_image_size`` its run evaluated at where it set one, else its
    ``image_size``; a positive int; None where it records none or something else (a hand-edited or foreign
    file), which every command then takes as not recorded (``eval`` its configuration's size, the others 224)."""
    if not isinstance(record, dict):
        return None
    return positive_size(record.get("eval_image_size")) or trained_image_size(record)


def trained_image_size(record: Any) -> Optional[int]:
    """The ``image_size`` a checkpoint's ``config`` records: the size its weights were trained at and its
    BatchNorm statistics measured at (or ``recalibrate-bn``'s), whatever size its run evaluated at; as
    :func:`recorded_image_size` a positive int or None."""
    return positive_size(record.get("image_size")) if isinstance(record, dict) else None


def float_model_of(ckpt: Any) -> str:
    """A quantization-aware checkpoint's float model in words: "the float model it was fine-tuned from", with the
    file its run's configuration names (``pre_trained``) where it does."""
    started = (ckpt.get("config") or {}).get("pre_trained") if isinstance(ckpt, dict) else None
    return "the float model it was fine-tuned from" + (f" ({started})" if isinstance(started, str) and started else "")


# A quantization-aware checkpoint's key: the image size its BatchNorm statistics were measured at, which its run
# kept frozen from the checkpoint it started from (the float model's, or a recalibrated one's): not its own
# image_size where the two differ.
BN_STATISTICS_SIZE = "bn_statistics_size"


# A --freeze_layers run's key (or a quantization-aware run's, from such a file): the image size each of the
# network's LAYERS layers' BatchNorm statistics were measured at, where that is not its own image_size for all:
# the frozen layers keep those of the file it started from, measured at that file's size (a linear probe at 48
# from a file of 32 holds statistics of 32, which the next run that froze them was not told of).
BN_LAYER_SIZES = "bn_statistics_sizes"


def statistics_size(ckpt: Any) -> Optional[int]:
    """The image size a checkpoint's BatchNorm statistics were measured at: :data:`BN_STATISTICS_SIZE` where its
    run kept them frozen (quantization-aware training), else :data:`BN_LAYER_SIZES`'s where every layer's are of
    one size (None where they are of several), else :func:`trained_image_size`."""
    if not isinstance(ckpt, dict):
        return None
    sizes = recorded_layer_sizes(ckpt)
    if positive_size(ckpt.get(BN_STATISTICS_SIZE)) is None and sizes is not None:
        return sizes[0] if len(set(sizes)) == 1 else None
    return positive_size(ckpt.get(BN_STATISTICS_SIZE)) or trained_image_size(ckpt.get("config"))


def recorded_layer_sizes(ckpt: Any) -> Optional[List[int]]:
    """A checkpoint's :data:`BN_LAYER_SIZES` record, one image size a layer, or None where it holds none (or
    one that is not that)."""
    sizes = ckpt.get(BN_LAYER_SIZES) if isinstance(ckpt, dict) else None
    if not isinstance(sizes, list) or len(sizes) != LAYERS or any(positive_size(s) is None for s in sizes):
        return None
    return list(sizes)


def layer_statistics_sizes(ckpt: Any) -> Optional[List[int]]:
    """The image size each of a checkpoint's LAYERS layers' BatchNorm statistics were measured at (its
    :data:`BN_LAYER_SIZES` record, else :func:`statistics_size`'s for all), or None where it is not known."""
    sizes = recorded_layer_sizes(ckpt)
    if sizes is not None:
        return sizes
    size = statistics_size(ckpt)
    return None if size is None else [size] * LAYERS


def layer_span(first: int, last: int) -> str:
    """``network.first`` to ``network.last``, or the one layer."""
    return f"network.{first}" if first == last else f"network.{first} to network.{last}"


def layer_sizes_text(sizes: Sequence[int]) -> str:
    """Per-layer image sizes in words, a run of layers of one size at a time: "network.0 to network.12 at 32,
    network.13 at 48"."""
    runs: List[List[int]] = []
    for i, size in enumerate(sizes):
        if runs and runs[-1][2] == size:
            runs[-1][1] = i
        else:
            runs.append([i, i, size])
    return ", ".join(f"{layer_span(a, b)} at {size}" for a, b, size in runs)


def recorded_count(value: Any) -> Optional[int]:
    """``value`` where it is a count (an int that is no bool, 0 or more), else None: a hand-edited or foreign file's
    value of a count's key is read through this."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def positive_size(value: Any) -> Optional[int]:
    """``value`` where it is an image size (a positive int that is no bool), else None: what a hand-edited or
    foreign file holds under a size's key is read through this."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def image_size_said(record: Any) -> str:
    """How :func:`recorded_image_size` came about, for messages that say "image_size N is the size P ...":
    "was trained at"; "has its BatchNorm statistics measured at (recalibrate-bn)"; where its run resized
    progressively, "records as its run's training size (progressive resizing from S up)", which a checkpoint
    written before the ramp's end was not yet trained at; or, where its run set an evaluation size other than
    its training size, "records for evaluation (eval_image_size; trained at M)"."""
    size, trained = recorded_image_size(record), trained_image_size(record)
    if size != trained and trained is not None:
        return f"records for evaluation (eval_image_size; trained at {trained})"
    if isinstance(record, dict) and record.get("bn_recalibration"):
        return "has its BatchNorm statistics measured at (recalibrate-bn)"
    start = positive_size(record.get("image_size_start")) if isinstance(record, dict) else None
    if start is not None and trained is not None and start < trained:
        return f"records as its run's training size (progressive resizing from {start} up)"
    return "was trained at"


def trained_antialias(ckpt: Dict[str, Any]) -> Optional[bool]:
    """How the run of checkpoint ``ckpt`` resized image folders' photos (its ``antialias`` key): what its
    configuration records; True for a configuration from before the key (the default then); False for a
    file in MindSpore's names that records none (a seed run's, trained with MindSpore's plain bilinear
    resize); None where the file does not say (timm's)."""
    config = ckpt.get("config")
    if isinstance(config, dict) and config:
        recorded = config.get("antialias", True)
        return recorded if isinstance(recorded, bool) else None
    return False if seed_trained(ckpt) else None


# A training checkpoint's dataset_path made absolute where its run started (train.training_state): config's is as
# given, relative to that folder, which a command run elsewhere cannot tell.
DATASET_FOLDER = "dataset_folder"


def data_there(path: str) -> bool:
    """Whether a dataset_path names data here: a file or folder, or a WebDataset shard pattern whose shards are."""
    from .archive import ArchiveError, is_shard_pattern, shard_files

    if os.path.exists(path):
        return True
    try:
        return is_shard_pattern(path) and bool(shard_files(path))
    except (ArchiveError, OSError):
        return False


def trained_data_path(ckpt: Dict[str, Any]) -> Optional[str]:
    """The data a checkpoint's run read, as a path from here: ``dataset_folder`` where it is recorded and still
    there (not a checkpoint copied to another machine), else its configuration's ``dataset_path`` as written;
    None where it records neither."""
    absolute = ckpt.get(DATASET_FOLDER)
    if isinstance(absolute, str) and absolute and data_there(absolute):
        return absolute
    written = (ckpt.get("config") or {}).get("dataset_path")
    return written if isinstance(written, str) and written else None


def recorded_reading(ckpt: Dict[str, Any]) -> Dict[str, Any]:
    """How the run of ``ckpt`` read and resized image folders' photos, which eval, predict and export follow:
    ``crop_pct``, ``antialias`` (:func:`trained_antialias`: a seed run's file, False), ``interpolation`` and
    ``exif_orientation``, each where the file records it (a value of another kind, or a crop_pct outside
    (0, 1]: not recorded). The one reading of a run's record for every command that follows it."""
    from .transforms import INTERPOLATIONS

    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    out: Dict[str, Any] = {}
    if not crop_pct_problem(config.get("crop_pct")):
        out["crop_pct"] = float(config["crop_pct"])
    antialias = trained_antialias(ckpt)
    if antialias is not None:
        out["antialias"] = antialias
    if config.get("interpolation") in INTERPOLATIONS:
        out["interpolation"] = config["interpolation"]
    if isinstance(config.get("exif_orientation"), bool):
        out["exif_orientation"] = config["exif_orientation"]
    return out


# A .pt written from a seed run's weights (convert, average) records so under this key ("mindspore"): our names
# no longer say it, and its resize is still MindSpore's plain bilinear. A .safetensors records it for any weights
# ("" for others): its MindSpore names would say it of a PyTorch run's that record no settings too.
TRAINED_BY = "trained_by"


def seed_trained(ckpt: Dict[str, Any]) -> bool:
    """Whether ``ckpt`` holds a seed (MindSpore) run's weights that record no settings: a file in MindSpore's
    names without a configuration, or a ``.pt`` or ``.safetensors`` of ours written from one (:data:`TRAINED_BY`)."""
    config = ckpt.get("config")
    if isinstance(config, dict) and config:
        return False
    if TRAINED_BY in ckpt:  # what a file of ours records: a .safetensors of other weights is in MindSpore's names too
        return ckpt[TRAINED_BY] == "mindspore"
    return ckpt.get("naming") == "mindspore"


def check_writable(folder: str) -> None:
    """Create and remove a temporary file in ``folder``; raises the OSError if that cannot be done. Named
    as config.yaml's temporary files are, so one left by a kill is among :func:`partial_files`."""
    fd, tmp = tempfile.mkstemp(prefix=".config.yaml.write-test.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(tmp)


RUN_LOCK = ".mobilenetv1.lock"
_HELD_LOCKS: set = set()  # the descriptors of this process's RunLocks and atomic_output's temporary files


def _forked() -> None:
    """In a forked child (a loader worker): close the copies of the run locks' descriptors, so that a run killed
    outright lets its folder go then, not when its last worker notices and ends."""
    for fd in list(_HELD_LOCKS):
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class RunLock:
    """A run folder held by one training process at a time: a second ``train`` into it (or a ``--resume auto``
    started while the first still runs) would write its checkpoints over the first's and interleave their
    records. An exclusive ``flock`` on ``folder/.mobilenetv1.lock``, which names its holder; the system releases
    it when the process ends however it ends (a kill -9 included; forked loader workers hold no copy of it), and
    :meth:`release` removes the file. Where
    the file system takes no locks, the run goes on without one."""

    def __init__(self, folder: str):
        self.path, self.fd = os.path.join(folder, RUN_LOCK), None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            state = _flock(fd)
            if state is False:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
                os.close(fd)
                raise CheckpointError(f"save_checkpoint_path {folder}: another run is training there"
                                      + (f" ({holder})" if holder else "") + "; nothing was trained or changed: "
                                      "let it end or stop it, or give another folder")
            if state is None:  # not a POSIX system, or no locks on this file system (ENOLCK): as before locks
                os.close(fd)
                return
            try:  # the file a run that ended removed is no lock: take the one now at the path
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        import socket
        import time

        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n".encode())  # the offset: another user's TZ reads it
        self.fd = fd
        _HELD_LOCKS.add(fd)

    def release(self) -> None:
        """Remove the lock file and let the folder go (a second call does nothing)."""
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        _HELD_LOCKS.discard(self.fd)
        os.close(self.fd)
        self.fd = None


def move_checkpoints_aside(folder: str) -> str:
    """Move the training checkpoints in ``folder`` (numbered, best and the best epochs') into a new sub-folder
    ``earlier-run-N`` (N the first free number) and return its path; "" when there are none."""
    return _move_aside(folder, training_files(folder))


def is_run_checkpoint_name(path: str) -> bool:
    """Whether ``path``'s file name is one a run gives its checkpoints (numbered, a best epoch's, the best),
    which eval, info, average --last and train --resume take for the run's own in a run folder."""
    name = os.path.basename(path)
    return bool(_NAME_RE.match(name) or _TOP_RE.match(name)) or name == BEST_NAME


def holds_run_files(folder: str) -> bool:
    """Whether ``folder`` itself holds a run's files: its training checkpoints or the configuration it
    writes at start (what a run starting afresh beside it sets aside)."""
    return bool(training_files(folder)) or os.path.isfile(os.path.join(folder, RUN_CONFIG))


def holds_run(folder: str) -> bool:
    """Whether ``folder`` holds a run, of one process or (in its ``ckpt_0/``) a distributed one."""
    return holds_run_files(folder) or holds_run_files(os.path.join(folder, DISTRIBUTED_SUBFOLDER))


def training_files(folder: str) -> List[str]:
    """The names of the training checkpoints in ``folder``: numbered, the best epochs' and the best one."""
    names = [os.path.basename(p) for _, p in list_checkpoints(folder) + list_top(folder)]
    return names + ([BEST_NAME] if os.path.isfile(os.path.join(folder, BEST_NAME)) else [])


# What a run leaves in its folder besides checkpoints, set aside with them from the folder of the other layout
# (and TensorBoard's event files, events.out.tfevents.*).
RUN_RECORDS = (RUN_CONFIG, "log.txt", "metrics.jsonl")


def other_layout_folder(base: str, own: str) -> str:
    """Of ``save_checkpoint_path`` ``base``'s two folders (itself, its ``ckpt_0/``), the one that is not ``own``."""
    same = os.path.abspath(own) == os.path.abspath(base)
    return os.path.join(base, DISTRIBUTED_SUBFOLDER) if same else base


def other_layout_files(base: str, own: str) -> List[str]:
    """The paths :func:`move_other_layout_aside` moves aside (``ckpt_0/`` itself, or files of ``base``),
    moving nothing."""
    sub = os.path.join(base, DISTRIBUTED_SUBFOLDER)
    if os.path.abspath(own) == os.path.abspath(base):
        return [sub] if os.path.isdir(sub) and holds_run_files(sub) else []
    if not holds_run_files(base):
        return []
    events = sorted(name for name in os.listdir(base) if name.startswith("events.out.tfevents."))
    records = [name for name in RUN_RECORDS if os.path.isfile(os.path.join(base, name))]
    return [os.path.join(base, name) for name in training_files(base) + records + events]


def move_other_layout_aside(base: str, own: str) -> str:
    """A run starting afresh in ``own``, one of the two folders of ``save_checkpoint_path`` ``base`` (itself
    for one process, its ``ckpt_0/`` for a distributed run), sets aside an earlier run in the other one, which
    eval, info, average and ``--resume auto`` would otherwise take for this run's (a folder holding
    checkpoints of its own stands for itself, one that holds none for its ``ckpt_0/``). ``ckpt_0/`` moves
    whole to ``base/earlier-run-N``; from ``base``, its checkpoints and records (``RUN_RECORDS``) move into a
    new ``earlier-run-N``. Returns where they went ("" when the other folder holds no run)."""
    paths = other_layout_files(base, own)
    if paths and os.path.abspath(own) == os.path.abspath(base):
        RunLock(paths[0]).release()  # a run of one process given ckpt_0/ as its folder may be training there
        aside = _free_aside(base)
        os.replace(paths[0], aside)
        fsync_dir(base)
        return aside
    return _move_aside(base, [os.path.basename(p) for p in paths])


def epochs_done(ckpt: Dict[str, Any]) -> Optional[Fraction]:
    """The point a training checkpoint was saved at, in epochs (exactly: 2 1/4 after a quarter of epoch
    3), whatever its steps per epoch; None where it records none (or a point inside an epoch without
    its steps per epoch)."""
    e, k, spe = ckpt.get("epoch"), ckpt.get("step_in_epoch", 0), ckpt.get("steps_per_epoch")
    if spe is None and k == 0:
        spe = 1  # an epoch's end needs no count
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (e, k, spe)) or spe <= 0:
        return None
    return e + Fraction(k, spe)


def move_superseded(folder: str, epoch: int, in_epoch: int, steps_per_epoch: int) -> Tuple[str, List[str]]:
    """A run that resumes after ``in_epoch`` of the ``steps_per_epoch`` steps of the epoch following
    ``epoch`` completed ones (the point and count of the checkpoint it resumes from) discards whatever
    was trained after that point. The checkpoints in ``folder`` saved after it (a run sent back to an
    earlier checkpoint, or newer ones a resume passed over) move, untouched, into a new
    ``earlier-run-N``: the resumed run would overwrite them under the same names, and a torchrun restart
    would take them for its own. So does a best checkpoint saved after it, which would otherwise stand
    as the best of a history that no longer holds its epoch. Points compare as shares of epochs, so a
    history whose steps per epoch changed at an epoch's end compares alike. One that cannot be read, or
    records no epoch, stays. Returns the folder and the names moved ("", [] when none)."""
    names = superseded_files(folder, epoch, in_epoch, steps_per_epoch)
    return _move_aside(folder, names), names


def superseded_files(folder: str, epoch: int, in_epoch: int, steps_per_epoch: int) -> List[str]:
    """The names of the checkpoints in ``folder`` that :func:`move_superseded` moves aside, moving nothing."""
    if in_epoch == 0:  # an epoch's end: everything named after a later epoch (of whatever count) came after
        names = [os.path.basename(path) for e, _, path in _numbered(folder) if e > epoch]
    else:
        names = [os.path.basename(path) for e, k, path in _numbered(folder) if (e, k) > (epoch + 1, in_epoch)]
    # The best epochs' checkpoints are saved at epochs' ends: those after the point are of the history discarded.
    names += [os.path.basename(path) for e, path in list_top(folder) if e > epoch]
    best = os.path.join(folder, BEST_NAME)
    if os.path.isfile(best):
        try:
            saved = load_file(best)
        except CheckpointError:
            saved = {}
        at = epochs_done(dict(saved, steps_per_epoch=saved.get("steps_per_epoch") or steps_per_epoch))
        if at is not None and at > epoch + Fraction(in_epoch, steps_per_epoch):
            names.append(BEST_NAME)
    return names


def _move_aside(folder: str, names: List[str]) -> str:
    if not names:
        return ""
    aside = _free_aside(folder)
    os.mkdir(aside)
    for name in names:
        os.replace(os.path.join(folder, name), os.path.join(aside, name))
    fsync_dir(aside)
    fsync_dir(folder)
    return aside


def keep_aside(path: str) -> str:
    """Keep checkpoint ``path`` as it is in a new ``earlier-run-N`` beside it, before a save takes its name (the
    file a run continues from, which a restart of the same command, or the user, goes back to): a hard link,
    so nothing is copied and the save's rename leaves this name's data alone (a copy where the file system
    has no links). Returns the kept file's path."""
    folder = os.path.dirname(path) or "."
    aside = _free_aside(folder)
    os.mkdir(aside)
    kept = os.path.join(aside, os.path.basename(path))
    try:
        os.link(path, kept)
    except OSError:
        with atomic_output(kept) as tmp:
            shutil.copyfile(path, tmp)
    fsync_dir(aside)
    fsync_dir(folder)
    return kept


def _free_aside(folder: str) -> str:
    """``folder/earlier-run-N``, N the first number not taken."""
    n = 1
    while os.path.exists(os.path.join(folder, f"earlier-run-{n}")):
        n += 1
    return os.path.join(folder, f"earlier-run-{n}")


def prune_checkpoints(folder: str, keep: int, spare: str = "") -> List[str]:
    """Remove the oldest checkpoints beyond ``keep`` (the newest two always stay), all but ``spare``
    (the run's newest from an epoch's end, the one point a resume at another number of steps per
    epoch can continue from, however many saves inside epochs came since); returns removed paths."""
    keep = max(keep, 2)
    found = list_checkpoints(folder)
    removed = []
    for _, path in found[: max(len(found) - keep, 0)]:
        if spare and os.path.abspath(path) == os.path.abspath(spare):
            continue
        os.unlink(path)
        removed.append(path)
    return removed


def rng_state() -> Dict[str, Any]:
    """Every random generator a run may draw from: torch (CPU and CUDA), Python's and NumPy's.

    NumPy's state is stored as plain values and a tensor so that ``weights_only=True`` reads it back.
    """
    import random

    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    import random

    import numpy as np

    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # One state a visible GPU where the file was saved: a run of an 8-GPU machine resumed where fewer are
        # visible (CUDA_VISIBLE_DEVICES=0) takes those there are (set_rng_state_all indexed past them: a traceback).
        for device, device_state in enumerate(list(state["cuda"])[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                             s["cached_gaussian"]))


def load_file(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read any supported checkpoint: ours (PyTorch), a MindSpore ``.ckpt``, a ``.safetensors``, timm's weights
    or TF-slim's TensorFlow checkpoint, told apart by content (``mindspore_io.read_any``). Returns a dict with
    ``model`` in our names."""
    from .mindspore_io import read_any

    return read_any(path, map_location)


def is_exported_program(path: str) -> bool:
    """Whether ``path`` is a ``torch.export.save`` archive (a zip with an ``archive_format`` entry)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(name.rsplit("/", 1)[-1] == "archive_format" for name in z.namelist())
    except Exception:  # not a zip, unreadable, or a damaged directory (names that do not decode, ...)
        return False


def named_program(path: str) -> bool:
    """Whether ``path`` is named as a ``torch.export`` program (``.pt2``): the one name under which every
    command takes a file for one (eval, predict, info, benchmark, quantize --program, train --teacher).
    ``torch.export.load`` unpickles some entries without ``weights_only`` (:func:`program_pickles` refuses
    those), so a file of another name (a crafted one named .ckpt) is read as a checkpoint, with
    ``weights_only``, and a program among them is refused, asked to be renamed (:func:`load_torch_file`);
    named .pte, ExecuTorch's name, it would also be taken for an ExecuTorch program."""
    return path.lower().endswith(".pt2")


def is_program_file(path: str) -> bool:
    """A file that commands run as a ``torch.export`` program: named so (:func:`named_program`) and one."""
    return named_program(path) and os.path.isfile(path) and is_exported_program(path)


def is_executorch_program(path: str) -> bool:
    """Whether ``path`` starts as an ExecuTorch program (``.pte``) does: its flatbuffer's identifier,
    ``ET`` and two digits, at byte 4."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:6] == b"ET" and head[6:8].isdigit()


def program_pickles(path: str) -> str:
    """What in the ``torch.export`` archive ``path`` ``torch.export.load`` would unpickle, or "" when
    nothing: it unpickles (with code) weights and constants marked ``use_pickle``, entries that are not
    tensors, legacy ``.pt`` entries and the sample inputs. ``export --file_format PT2`` writes none of
    these (its sample inputs entry is empty), so a file that holds one is not ours, and is not loaded."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = info.filename
                # (an empty one is what torch.export.save writes for a program without sample inputs)
                if (name.endswith((".pt", ".pkl", ".pickle")) or "/sample_inputs/" in name) and info.file_size:
                    return f"entry {name}"
                if name.endswith(("_weights_config.json", "_constants_config.json")):
                    entries = json.loads(z.read(name)).get("config", {})
                    for key, entry in entries.items():
                        if not isinstance(entry, dict) or entry.get("use_pickle") or "tensor_meta" not in entry:
                            return f"{key} in {name}"
    except Exception as e:  # a damaged archive, or a configuration that is not what export writes
        return f"an archive that cannot be read ({type(e).__name__})"
    return ""


def cut_short(path: str) -> bool:
    """Whether ``path`` begins as a zip archive (torch.save's format, torch.export's) and lacks the directory
    at its end: a file copied or written in part, which torch reports as an invalid argument or a failed
    seek."""
    import zipfile

    if not starts_as_zip(path):
        return False
    try:
        return not zipfile.is_zipfile(path)
    except zipfile.BadZipFile:  # a directory at its end, damaged ("span multiple disks"): zip_damage says so
        return False


def starts_as_zip(path: str) -> bool:
    """Whether ``path`` begins with a zip archive's first entry header, torch's own test of its zip format
    (``torch.serialization._is_zipfile``). ``zipfile.is_zipfile`` looks for a directory's end record anywhere in
    the last 64 KiB, which the raw tensor bytes ending a legacy-format (torch < 1.6) checkpoint can hold."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def cut_short_text(path: str) -> str:
    """What :func:`cut_short` found, said with the file's size."""
    return (f"cut short: a zip archive without the directory at its end, {os.path.getsize(path):,} bytes; copied "
            f"or written in part?")


def zip_inflation(path: str) -> str:
    """An entry of the zip archive ``path`` that inflates far past its stored bytes ("" where none does, or it is
    no zip). torch.save and torch.export.save store every entry as it is, uncompressed; a compressed entry is
    another writer's, and one that inflates a thousandfold (a zip bomb: 1 MB of file, 1 GB in memory) is read
    whole into memory by torch.load and by the check of a program's configuration."""
    import zipfile

    if not starts_as_zip(path):
        return ""
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > max(64 << 20, 16 * info.compress_size):
                    return (f"its entry {info.filename} inflates from {info.compress_size:,} to {info.file_size:,} "
                            f"bytes (torch.save stores entries uncompressed): a zip bomb, or not a PyTorch file")
    except Exception:  # not a zip that reads: its reader says why
        return ""
    return ""


def zip_damage(path: str) -> str:
    """What in the zip archive ``path`` (torch.save's format, torch.export's) is not as written, or "" where
    nothing is (or it is no zip): an entry whose bytes do not match the CRC-32 its directory records (bytes
    changed on disk or on the way), or whose header is not the directory's. torch reads neither check, so bytes
    changed inside a tensor loaded as other weights without a word. An entry of CRC-32 0 records none
    (torch.save with ``compute_crc32`` off) and is not checked."""
    import zipfile
    import zlib

    inflated = zip_inflation(path)  # before inflating it all to check its CRC-32s
    if inflated:
        return inflated
    try:
        if not starts_as_zip(path):
            return ""
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if info.CRC == 0 and info.file_size:
                    continue
                try:
                    with z.open(info) as f:
                        while f.read(1 << 24):
                            pass
                except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as e:  # an offset past int64 too
                    if str(e).startswith("Bad CRC-32"):
                        return (f"entry {info.filename} does not match the CRC-32 its zip directory records: bytes "
                                f"changed since it was written")
                    if isinstance(e, UnicodeDecodeError) or str(e).startswith("File name in directory"):
                        # the name its own header repeats, changed (to bytes that do not decode, or others)
                        return f"entry {info.filename}: the name in its header is not the directory's ({e})"
                    return f"entry {info.filename}: {e}"
    except (zipfile.BadZipFile, EOFError, ValueError) as e:  # a name in its directory that does not decode too
        return f"a zip archive that cannot be read ({e})"
    except (OSError, NotImplementedError):  # unreadable here, or a compression Python lacks: said by the reader
        return ""
    return ""


def unreadable_program(path: str, why: str) -> CheckpointError:
    """The error of a ``.pt2`` program whose archive cannot be read, for ``why``."""
    return CheckpointError(f"{path}: not a readable torch.export program (truncated or damaged: {why}); export it "
                           f"again (export --file_format PT2)")


def program_not_checkpoint(path: str, option: str = "") -> CheckpointError:
    """The refusal of a ``torch.export`` program ``path`` where a checkpoint is read; ``option``: the one that
    gave it (``--teacher``), named first as the other errors of a path given name it."""
    return CheckpointError(f"{option + ' ' if option else ''}{path}: a torch.export program (export --file_format "
                           f"PT2), not a checkpoint: eval, predict and train --teacher run it (and torch.export.load, "
                           f"or ExecuTorch)"
                           + ("; this needs the checkpoint it was exported from" if named_program(path) else
                              ", from a file named .pt2 only (a program can hold pickled code, so one of another "
                              "name is not unpickled): rename it, or give the checkpoint it was exported from"))


def removed_while_read(path: str) -> CheckpointError:
    """The error for a checkpoint found and then gone before it was read (helper-285)."""
    return CheckpointError(f"checkpoint {path}: removed while it was being read (a running train removes its older "
                           f"checkpoints)")


PRUNED_RETRIES = 3  # a run folder's newest chosen (average: its listing taken) again after a prune while read


def read_newest(path: str, read: Callable[[str], Any], option: str = "", origin: str = "") -> Tuple[str, Any]:
    """``(file, read(file))`` for ``path`` resolved (:func:`resolve_checkpoint_path`: a run folder, its newest
    checkpoint). A run folder's file gone when read (a train running there saved twice since it was chosen and
    pruned it, keep_checkpoint_max) has the folder's newest chosen again, a few times, as ``average`` lists its
    folder again: info, export and convert of a busy run folder ended naming a file they had themselves just
    chosen ("no such file", "removed while it was being read", or a bare ``[Errno 2]``). A file named that is
    gone stays an error at once; ``read``'s FileNotFoundError of a file gone is said as :func:`removed_while_read`."""
    for attempt in range(PRUNED_RETRIES + 1):
        file = resolve_checkpoint_path(path, option, origin)
        try:
            return file, read(file)
        except (CheckpointError, FileNotFoundError) as e:
            gone = not os.path.exists(file)
            if attempt == PRUNED_RETRIES or file == os.fspath(path) or not os.path.isdir(path) or not gone:
                if isinstance(e, FileNotFoundError) and gone:  # between the look and a read of it
                    raise removed_while_read(file) from None
                raise
    raise AssertionError("unreachable")


def load_torch_file(path: str, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint of ours with ``weights_only=True`` (no pickled code is ever run)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: {not_a_file(path)}")
    inflated = zip_inflation(path)
    if inflated:
        raise CheckpointError(f"checkpoint {path}: not read: {inflated}")
    try:
        # timm's train.py saves its options beside the weights as an argparse.Namespace: an object of no code
        # (its attributes set from the file's plain values), unpickled as weights_only unpickles the rest.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for damaged or foreign files
        if not os.path.exists(path):  # removed between the look and the read (a running train's pruning)
            raise removed_while_read(path) from None
        if is_exported_program(path):
            raise program_not_checkpoint(path) from None
        # torch's own first line ("... you have two options, <ANSI>do those steps only if ...") named neither the
        # object it refused nor the options, which follow on lines of their own.
        # torch words a global it does not know "Unsupported global: GLOBAL x.y", and one of a module it blocks
        # (os, posix, nt, sys: the payloads of hostile files) "unsupported GLOBAL posix.system whose module ...".
        pickled = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(e)) \
            if isinstance(e, pickle.UnpicklingError) else None
        why = (f"it holds pickled Python objects, not only tensors (the first: {pickled.group(1)}), which are not "
               f"unpickled here, as that can run code the file holds: a whole model saved with torch.save(model), "
               f"or objects beside the tensors (a script's args, NumPy values)? save tensors only, e.g. "
               f"torch.save(model.state_dict(), path)" if pickled else
               f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        if cut_short(path):
            why = cut_short_text(path)
        else:
            why = zip_damage(path) or why
        if named_program(path):  # by its name, a program: one whose archive cannot be read
            raise unreadable_program(path, why) from None
        raise CheckpointError(f"checkpoint {path}: cannot be read as a PyTorch checkpoint ({why})") from None
    damage = zip_damage(path)
    if damage:  # read, but not as written: its weights would be others
        raise CheckpointError(f"checkpoint {path}: damaged: {damage}; copy it again, or use another")
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        if "config" in obj and not isinstance(obj["config"], dict):
            obj = {**obj, "config": {}}  # not a configuration of ours (a foreign file's): read as none recorded
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": obj}  # a bare state dict
    if isinstance(obj, dict) and tensors_only(obj.get("state_dict")):
        return foreign_training_checkpoint(obj)
    raise CheckpointError(f"checkpoint {path}: holds no model state dict")


def tensors_only(state: Any) -> bool:
    """Whether ``state`` is a state dict: a dict of tensors, not empty."""
    return isinstance(state, dict) and bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def foreign_training_checkpoint(obj: Dict[str, Any]) -> Dict[str, Any]:
    """A training checkpoint of timm's train.py (``model_best.pth.tar``, ``checkpoint-N.pth.tar``, ``last.pth.tar``:
    ``state_dict``, ``state_dict_ema`` with --model-ema, ``epoch``, ``arch``, ``metric``, its ``args``) as ours:
    ``model``, ``ema`` (the average, of decay ``args.model_ema_decay``) and ``trained_by_timm`` (what
    :func:`mindspore_io.timm_checkpoint` reads: epoch, arch, metric and the plain values of its args). Its
    optimiser state is not taken: the run is not continued, its weights are."""
    args = obj.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else {}
    args = {k: v for k, v in args.items() if isinstance(k, str) and _plain(v)}
    out: Dict[str, Any] = {"model": obj["state_dict"],
                           "trained_by_timm": {"epoch": obj.get("epoch"), "arch": obj.get("arch"),
                                               "metric": obj.get("metric"), "args": args}}
    if tensors_only(obj.get("state_dict_ema")):
        decay = args.get("model_ema_decay")
        out["ema"] = {"model": obj["state_dict_ema"],
                      "decay": decay if isinstance(decay, float) else None, "updates": None}
    return out


def _plain(value: Any) -> bool:
    """A value as JSON writes it: None, a bool, number or string, or a list or tuple of those."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def model_state(ckpt: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    state = ckpt["model"]
    # Tolerate state dicts saved from DDP or torch.compile wrappers by other tools, in either nesting:
    # torch.compile(DDP(model)) saves "_orig_mod.module.", DDP(torch.compile(model)) "module._orig_mod." (the
    # first was refused, naming the "module." this strips).
    while state and (prefix := next((p for p in ("module.", "_orig_mod.") if all(k.startswith(p) for k in state)),
                                    None)):
        state = {k[len(prefix):]: v for k, v in state.items()}
    return state


# A recorded configuration's key: the run numbered an image folder's classes in "natural" order, as timm's train.py
# does (its folder reader sorts by the name in lower case, its runs of digits by value: apple, class2, class10,
# Zebra), where this toolkit, as torchvision's ImageFolder, sorts them (Zebra, apple, class10, class2).
CLASS_ORDER = "folder_class_order"


def natural_key(name: str) -> List[Any]:
    """The key of timm's "natural" order of class folder names: lower case, runs of digits as numbers."""
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name.lower()))]


def natural_order(classes: Optional[Sequence[str]], order: Any) -> Optional[List[str]]:
    """``classes`` (this toolkit's sorted names of an image folder's classes) in the order a file's run numbered
    them, where that is timm's natural order (``order``: its recorded :data:`CLASS_ORDER`) and differs; else
    None."""
    if order != "natural" or not classes:
        return None
    natural = sorted(classes, key=natural_key)
    return natural if natural != list(classes) else None


def natural_order_line(source: str, natural: Sequence[str], classes: Sequence[str], what: str) -> str:
    """The line saying that ``source``'s outputs are read in timm's natural order of the folder's classes."""
    return (f"{source}: its run (timm's train.py) numbered the folder's classes in natural order "
            f"({names_text(list(natural))}), this toolkit sorts them ({names_text(list(classes))}): {what}")


def in_sorted_order(ckpt: Dict[str, Any], classes: Optional[Sequence[str]],
                    source: str) -> Tuple[Dict[str, Any], str]:
    """``ckpt`` as it is, or, where its run numbered an image folder's classes in natural order
    (:data:`CLASS_ORDER`, timm's train.py) and it records no names, with its classifier's first rows (its weight
    average's too) put in the order of ``classes``, this toolkit's sorted names of the same folder's classes, and
    a line saying so; "" where nothing moved (``classes`` None, the orders alike, fewer outputs than classes).
    Rows past the classes' count (timm's 1000 outputs kept without --num-classes) stay where they are."""
    natural = None if ckpt.get("classes") is not None else \
        natural_order(classes, (ckpt.get("config") or {}).get(CLASS_ORDER))
    weight = model_state(ckpt).get("fc.weight")
    if natural is None or weight is None or weight.shape[0] < len(natural):
        return ckpt, ""
    order = torch.tensor([natural.index(name) for name in classes] + list(range(len(natural), weight.shape[0])))

    def reordered(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        return {**state, **{k: state[k][order] for k in ("fc.weight", "fc.bias") if k in state}}

    out = {**ckpt, "model": reordered(model_state(ckpt))}
    if ema_state(ckpt) is not None:
        out["ema"] = {**ckpt["ema"], "model": reordered(ema_state(ckpt))}
    return out, natural_order_line(source, natural, classes, "its classifier's outputs are taken in this order")


def ema_state(ckpt: Dict[str, Any]) -> Optional[Dict[str, torch.Tensor]]:
    """The exponential moving average of the weights that a training checkpoint of a run with
    ``--ema_decay`` holds (a state dict like ``model``'s), or None."""
    ema = ckpt.get("ema")
    if isinstance(ema, dict) and isinstance(ema.get("model"), dict):
        return model_state(ema)
    return None


def which_weights(ckpt: Dict[str, Any], use_ema: bool = True) -> str:
    """Which weights evaluation, export, conversion and prediction take from ``ckpt``: "ema", its weight
    average, when it holds one (unless ``use_ema`` is False), then "trained"; "" for a file without an
    average (its only weights)."""
    if ema_state(ckpt) is None:
        return ""
    return "ema" if use_ema else "trained"


def average_named(ckpt: Dict[str, Any], use_ema: bool = True) -> str:
    """What an error about the weights :func:`weights_to_use` gives adds where they are the file's weight
    average: the trained weights beside it may still be sound. "" otherwise."""
    return (" (in its weight average, 'ema'; --use_ema False takes the trained weights)"
            if which_weights(ckpt, use_ema) == "ema" else "")


def weights_to_use(ckpt: Dict[str, Any], use_ema: bool = True) -> Dict[str, torch.Tensor]:
    """The state dict :func:`which_weights` names."""
    return ema_state(ckpt) if which_weights(ckpt, use_ema) == "ema" else model_state(ckpt)


def average_only(ckpt: Dict[str, Any]) -> str:
    """How a file came to hold a moving average of weights as its only weights, in words: written from a run's
    average (``taken_average``: convert and recalibrate-bn write one), or the mean of such averages alone
    (``averaged``, by ``average``); "" for any other file."""
    taken = ckpt.get("taken_average")
    if isinstance(taken, dict):
        return (f"{taken.get('by') or 'convert'} wrote this file's only weights from the exponential moving "
                f"average of {taken.get('source')}")
    averaged = ckpt.get("averaged")
    weights = averaged.get("weights") if isinstance(averaged, dict) else None
    if isinstance(weights, list) and weights and all(w == "ema" for w in weights):
        return (f"average wrote this file's only weights as the mean of {len(weights)} checkpoints' exponential "
                f"moving averages")
    return ""


def weights_note(ckpt: Dict[str, Any], use_ema: bool = True) -> str:
    """One line saying which weights :func:`weights_to_use` took; "" for a file without an average, unless
    ``use_ema`` is False for a file whose only weights are moving averages (:func:`average_only`), which has no
    trained weights to take."""
    which = which_weights(ckpt, use_ema)
    if not which:
        why = average_only(ckpt)
        if use_ema is False and why:
            return f"weights: not used here: --use_ema False ({why}; it holds no trained weights)"
        return ""
    decay, updates = ckpt["ema"].get("decay"), ckpt["ema"].get("updates")  # unknown for timm's train.py files
    what = ", ".join(([f"ema_decay {decay}"] if decay is not None else [])
                     + ([f"{updates} updates"] if updates is not None else [])) or "its decay and updates not recorded"
    if which == "ema":
        return (f"weights: the exponential moving average of the trained weights ({what}); "
                f"--use_ema False takes the trained weights")
    return f"weights: the trained weights (--use_ema False; the file also holds their average, {what})"


def load_weights(model: nn.Module, state: Dict[str, torch.Tensor], source: str,
                 skip_head_mismatch: bool = False, naming: str = "ours") -> List[str]:
    """Load ``state`` into ``model`` after checking every name and shape; nothing is half-loaded.

    With ``skip_head_mismatch`` a classifier of another class count, or none (a backbone's file: timm's
    ``num_classes=0``), is left out (fine-tuning); the names left out are returned. ``naming="mindspore"`` (a
    MindSpore file, the ``naming`` of its checkpoint dict) reports names as that file spells them
    (``moving_variance``, not ``running_var``).
    BatchNorm's ``num_batches_tracked`` counters a file lacks (a bare state dict saved without them, timm's
    hub files) are set to 0, as PyTorch's BatchNorm sets them for a state dict of before the counter: they
    are no weights (our BatchNorms' fixed momentum never reads them); any other name missing is refused.
    """
    if naming == "mindspore":
        from .mindspore_io import to_seed_name

        def show(name: str) -> str:
            return to_seed_name(name) or name
    else:
        def show(name: str) -> str:
            return name
    target = unwrap(model).state_dict()
    counters = {k: torch.zeros((), dtype=target[k].dtype) for k in target
                if k.endswith(".num_batches_tracked") and k not in state}
    if counters:
        state = {**state, **counters}
    skipped = []
    if skip_head_mismatch:
        head = ("fc.weight", "fc.bias")
        backbone = all(name not in state for name in head)  # no classifier at all, not half of one
        weight, bias = state.get("fc.weight"), state.get("fc.bias")
        want = target.get("fc.weight")
        # Another class count: a whole classifier [n, in] (+ bias [n]) whose inputs are the model's, n not its
        # class count. Left out as one, never half of it; any other classifier shape is named below.
        other_count = (weight is not None and want is not None and weight.dim() == 2 and want.dim() == 2
                       and weight.shape[1] == want.shape[1] and weight.shape[0] != want.shape[0]
                       and (bias is None or tuple(bias.shape) == (weight.shape[0],)))
        if backbone or other_count:
            skipped = [name for name in head if name in target]
        state = {k: v for k, v in state.items() if k not in skipped}
    missing = [f"{show(k)} {tuple(target[k].shape)}" for k in target if k not in state and k not in skipped]
    unexpected = [f"{show(k)} {tuple(state[k].shape)}" for k in state if k not in target]
    wrong = [f"{show(k)}: file {tuple(state[k].shape)} vs model {tuple(target[k].shape)}"
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
            statistic = k.endswith((".running_mean", ".running_var"))  # no weight: measured anew by recalibrate-bn
            raise CheckpointError(f"checkpoint {source}: tensor {show(k)} holds NaN or infinite values"
                                  + (" (a BatchNorm statistic: `mobilenet-v1 recalibrate-bn` measures them anew on "
                                     "training images)" if statistic else ""))
    unwrap(model).load_state_dict(state, strict=not skipped)
    return skipped



# ---------------------------------------------------------------------------------------------------
# Resuming: which file to trust. A checkpoint is used only after every tensor it holds was checked
# against the model and optimiser it is to continue (names, shapes, dtypes, finiteness).

TRAINING_KEYS = ("format", "model", "optimizer", "scaler", "epoch", "step", "rng")


# The temporary files of atomic_output in a run folder: a checkpoint's and config.yaml's (check_writable's
# ".config.yaml.write-test.*.tmp" among them).
RUN_PARTIALS = ("." + CKPT_PREFIX + "-*.ckpt.*.tmp", ".config.yaml.*.tmp")
# Those of the files export and quantize write: ".NAME.XXXXXXXX.tmp", mkstemp's eight characters (each with its
# work_folder beside it while it lives).
_MKSTEMP = "[a-z0-9_]" * 8
# The extension in either case, as export keeps a --file_name ending in it (m.ONNX).
DEPLOYED_PARTIALS = tuple(".*." + "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in ext) + f".{_MKSTEMP}.tmp"
                          for ext in ("onnx", "pt2", "pte"))


def partial_files(folder: str, patterns: Sequence[str] = RUN_PARTIALS) -> List[str]:
    """Temporary files that an interrupted :func:`atomic_write` left in ``folder``: of a checkpoint or of
    config.yaml, or of the names ``patterns`` (globs, :data:`DEPLOYED_PARTIALS`)."""
    found: List[str] = []
    for pattern in patterns:
        found += glob.glob(os.path.join(glob.escape(folder), pattern))
    return sorted(set(found))


def remove_partial_files(folder: str, patterns: Sequence[str] = RUN_PARTIALS, held: bool = True) -> List[str]:
    """Remove what :func:`partial_files` lists, and the :func:`work_folder` beside each; returns the removed
    paths. They are never a finished file: a write is complete only once renamed to its name. One whose lock
    a live process holds (:func:`atomic_output`: a write in progress) stays. ``held``: the caller holds the
    folder (a run's :class:`RunLock`), and a file whose writer cannot be told (a file system without locks)
    goes too; without it (export, quantize: a folder anyone may write in) only those a process that ended
    left go, and one this user may not remove (another's, in a sticky folder) stays unsaid."""
    removed = []
    for path in partial_files(folder, patterns):
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):  # a folder or a link of that name is no file of ours
                continue
            fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            continue
        except OSError:  # another user's: whether its writer lives cannot be told
            if not held:
                continue
            fd = None
        try:
            state = None if fd is None else _flock(fd)
            if state is False or (state is None and not held):
                continue
            # Under the lock: the writer of the file is gone, and no other remover takes it meanwhile.
            shutil.rmtree(work_folder_of(path), ignore_errors=True)
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError:  # one this process may not remove (another user's in a sticky folder such as /tmp):
            if held:  # left, as another user's is, where the write asked for does not depend on it
                raise
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def remove_deployed_partials(path: str) -> List[str]:
    """What an export or quantize killed in the folder of ``path`` (the file about to be written) left, removed
    (:func:`remove_partial_files` of :data:`DEPLOYED_PARTIALS`, the folder not held); returns the removed paths."""
    return remove_partial_files(os.path.dirname(os.path.abspath(path)), DEPLOYED_PARTIALS, held=False)


def removed_note(removed: Sequence[str]) -> str:
    """What :func:`remove_partial_files` removed from the folder of an exported or quantized file, said."""
    folder = os.path.dirname(removed[0]) if removed else ""
    return (f"removed {plural(len(removed), 'temporary file')} that an interrupted export or quantize left in "
            f"{folder or '.'} (never a finished file): {_listing([os.path.basename(p) for p in removed])}")


def _listing(items: List[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def check_tensors(state: Any, reference: Dict[str, torch.Tensor], what: str) -> List[str]:
    """What is wrong with ``state`` as a stand-in for ``reference``: missing or unexpected names, other
    shapes or dtypes, values that are not tensors, NaN or infinite values. Empty when nothing is."""
    if not isinstance(state, dict):
        return [f"{what} is a {type(state).__name__}, not a dict of tensors"]
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    not_tensor, shape, dtype, nonfinite = [], [], [], []
    for k, ref in reference.items():
        if k not in state:
            continue
        v = state[k]
        if not isinstance(v, torch.Tensor):
            not_tensor.append(f"{k} ({type(v).__name__})")
        elif v.shape != ref.shape:
            shape.append(f"{k}: file {tuple(v.shape)} vs {tuple(ref.shape)}")
        elif v.dtype != ref.dtype:
            dtype.append(f"{k}: file {v.dtype} vs {ref.dtype}")
        elif v.is_floating_point() and not bool(torch.isfinite(v).all()):
            nonfinite.append(k)
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("not a tensor", not_tensor),
                         ("wrong shape", shape), ("wrong dtype", dtype), ("NaN or infinite values in", nonfinite)):
        if items:
            problems.append(f"{what}: {label} {len(items)}: {_listing(items)}")
    return problems


def check_optimizer_state(saved: Any, optimizer: torch.optim.Optimizer) -> List[str]:
    """What is wrong with ``saved`` as the state of ``optimizer``: its parameter groups, and each
    per-parameter tensor (a momentum buffer, ...) against its parameter's shape and dtype."""
    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list) \
            or not isinstance(saved.get("state"), dict):
        return ["optimizer: not an optimizer state dict (no param_groups/state)"]
    groups = saved["param_groups"]
    if len(groups) != len(optimizer.param_groups) or any(
            not isinstance(g, dict) or len(g.get("params", ())) != len(ref["params"])
            for g, ref in zip(groups, optimizer.param_groups)):
        return [f"optimizer: parameter groups of sizes {[len(g.get('params', ())) for g in groups if isinstance(g, dict)]}"
                f" vs this model's {[len(g['params']) for g in optimizer.param_groups]}"]
    params = {}
    for g, ref in zip(groups, optimizer.param_groups):
        params.update(zip(g["params"], ref["params"]))
    problems = []
    unknown = [str(k) for k in saved["state"] if k not in params]
    if unknown:
        problems.append(f"optimizer: state for unknown parameters {_listing(unknown)}")
    for pid, entry in saved["state"].items():
        if pid not in params or not isinstance(entry, dict):
            continue
        p = params[pid]
        for name, v in entry.items():
            if v is None or not isinstance(v, torch.Tensor) or v.ndim == 0:
                continue  # step counters and the like
            if v.shape != p.shape or v.dtype != p.dtype:
                problems.append(f"optimizer: {name} of parameter {pid} is {v.dtype} {tuple(v.shape)}, "
                                f"the parameter {p.dtype} {tuple(p.shape)}")
            elif v.is_floating_point() and not bool(torch.isfinite(v).all()):
                problems.append(f"optimizer: {name} of parameter {pid} holds NaN or infinite values")
    return problems


def _short_repr(value: Any) -> str:
    """``repr`` of a value read from a file, bounded: reprlib's depth and length limits, not recursion without end."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 3, 60, 60, 6, 6
    return r.repr(value)


def state_problems(ckpt: Dict[str, Any], steps_per_epoch: Optional[int] = None
                   ) -> Tuple[List[str], Optional[Tuple[int, int, int]]]:
    """What in a training checkpoint's own state, whatever run continues it, keeps it from being resumed:
    its RNG state and its position (counts, and a step that is its epoch and step in the epoch); the
    position read (epoch, step in epoch, steps per epoch: ``steps_per_epoch`` where it records none)
    where it holds."""
    problems = []
    rng = ckpt.get("rng")
    if not isinstance(rng, dict) or not isinstance(rng.get("torch"), torch.Tensor) or rng["torch"].dtype != torch.uint8:
        problems.append("rng: no torch generator state")
    fields = [ckpt.get("epoch"), ckpt.get("step"), ckpt.get("step_in_epoch", 0),
              ckpt.get("steps_per_epoch", steps_per_epoch)]
    offset = ckpt.get("step_offset", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in fields) \
            or not isinstance(offset, int) or isinstance(offset, bool):
        short = _short_repr  # a foreign file's value: a list nested a million deep, a 20 MB string
        problems.append(f"position: epoch {short(fields[0])}, step {short(fields[1])}, step_in_epoch "
                        f"{short(fields[2])}, steps_per_epoch {short(fields[3])}, step_offset {short(offset)} are not "
                        f"counts")
        return problems, None
    epoch, step, in_epoch, spe = fields
    if in_epoch >= spe:  # an epoch's last step ends it: train saves that point as the next epoch, step 0
        problems.append(f"position: step_in_epoch {in_epoch} is not below steps_per_epoch {spe}")
        return problems, None
    if step != GlobalSteps(spe, offset).at(epoch, in_epoch):
        problems.append(f"position: step {step} is not epoch {epoch} x {spe} + {in_epoch}"
                        + (f" + step_offset {offset}" if offset else ""))
        return problems, None
    return problems, (epoch, in_epoch, spe)


# A training checkpoint's key: how many samples its run's training split held, which each epoch's order permutes. A
# point inside an epoch is a place in that order: another count (images added to the folder or removed from it, a
# version that reads other files as images) orders the epoch otherwise, at the same steps per epoch too.
TRAIN_SAMPLES = "train_samples"


def data_size(loader: Any) -> Optional[int]:
    """How many samples a training ``loader``'s order permutes (its sampler's size, the whole data set's in a
    distributed run too), for :data:`TRAIN_SAMPLES`; None for a loader that does not say."""
    return recorded_count(getattr(getattr(loader, "sampler", None), "size", None))


# The keys that make an epoch's order of samples, with the value a checkpoint from before each meant.
ORDER_KEYS = {"seed": None, "aug_repeats": 1, "class_balance": 0.0}


def order_changes(ckpt: Dict[str, Any], **ours: Any) -> List[Tuple[str, Any, Any]]:
    """(key, the checkpoint's run's value, ours) of the :data:`ORDER_KEYS` given (not None) where they differ."""
    recorded = ckpt.get("config") or {}
    out = []
    for key, value in ours.items():
        default = ORDER_KEYS[key]
        theirs = recorded.get(key, value if default is None else default)
        if value is not None and theirs != value:
            out.append((key, theirs, value))
    return out


def _recorded_process_batch(config: Any) -> int:
    """The samples one process took a step in the run whose ``config`` a checkpoint records (its
    ``batch_size`` x ``grad_accum_steps``, 1 for files from before that key), or 0 where it records none."""
    if not isinstance(config, dict):
        return 0
    batch, accumulate = config.get("batch_size"), config.get("grad_accum_steps", 1)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (batch, accumulate)):
        return 0
    return batch * accumulate


def validate_training_checkpoint(ckpt: Any, source: str, model: nn.Module, optimizer: torch.optim.Optimizer,
                                 steps_per_epoch: int, classes: Optional[List[str]] = None,
                                 check_ema: bool = True, samples_per_step: Optional[int] = None,
                                 val_split: Optional[float] = None, opt: Optional[str] = None,
                                 freeze_layers: Optional[int] = None, seed: Optional[int] = None,
                                 aug_repeats: Optional[int] = None,
                                 class_balance: Optional[float] = None,
                                 train_samples: Optional[int] = None) -> Tuple[int, int]:
    """Check that ``ckpt`` can continue training ``model`` with ``optimizer`` at ``steps_per_epoch``:
    the keys a training checkpoint needs, its format, every model and optimiser tensor, the scaler,
    the recorded position and RNG state, (an image folder's ``classes``) the class list, whose
    order gives the labels, and with ``check_ema`` the weight average it may hold. A checkpoint saved at
    an epoch's end continues at any number of steps per epoch (another batch size or process count:
    the next epoch starts); one saved inside an epoch must have been written at ``steps_per_epoch`` and
    record this run's ``samples_per_step`` (batch_size x grad_accum_steps x processes) where it records
    one: its position counts steps of that many samples. With
    ``val_split``, the file's run must have held out the same share (or none with 0); with ``opt``, it
    must have trained with that optimiser (its configuration says which; none: the seed's momentum);
    with ``freeze_layers``, it must have frozen as many layers (the optimiser holds the others' state);
    with ``seed``, ``aug_repeats`` and ``class_balance``, one saved inside an epoch must have been trained
    with those (they make the epoch's order); with ``train_samples``, one saved inside an epoch that records
    its run's (:data:`TRAIN_SAMPLES`) must have had that many (the order permutes them).
    Returns (epochs completed, steps done in the epoch in progress); raises
    :class:`CheckpointError` naming the file and every problem found."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {source}: not a dict")
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        step = ckpt.get("global_step")
        moments = (f"; with --pretrain_epoch_size N, the epochs its run completed"
                   f"{f' (its global_step {step})' if step is not None else ''}, its momentum buffers continue"
                   if ckpt.get("moments") else "")
        raise CheckpointError(f"checkpoint {source}: not a training checkpoint (no {', '.join(missing)}); "
                              f"pass weights with --pre_trained instead{moments}")
    problems = []
    if ckpt["format"] != FORMAT:
        problems.append(f"format {ckpt['format']!r}, expected {FORMAT!r}")
    reference = unwrap(model).state_dict()
    problems += check_tensors(model_state(ckpt), reference, "model")
    if "ema" in ckpt and check_ema:  # not checked for a run that drops it (--ema_decay 0)
        ema = ckpt["ema"]
        if not isinstance(ema, dict) or "model" not in ema or not isinstance(ema.get("updates"), int) \
                or isinstance(ema.get("updates"), bool) or ema["updates"] < 0:
            problems.append("ema: not a weight average (decay, updates, model)")
        else:
            problems += check_tensors(model_state(ema), reference, "ema")
    held = (ckpt.get("held_out") or {}).get("val_split", 0.0)
    if val_split is not None and held != val_split:
        problems.append(f"its run held out val_split {held:g} of each class to evaluate on, this run {val_split:g}: "
                        f"pass --val_split {held:g} (another share would train on images held out so far)")
    trained_with = (ckpt.get("config") or {}).get("opt", "momentum")  # files from before --opt: momentum
    froze = (ckpt.get("config") or {}).get("freeze_layers", 0)
    if opt is not None and trained_with != opt:
        optimizer_problems = [f"optimizer: its run trained with --opt {trained_with}, this run with --opt {opt}, whose "
                              f"state is another (pass --opt {trained_with})"]
    elif freeze_layers is not None and froze != freeze_layers:
        optimizer_problems = [f"optimizer: its run trained with freeze_layers {froze}, this run {freeze_layers}, so the "
                              f"optimiser trains other parameters (pass --freeze_layers {froze} to continue it; "
                              f"--pre_trained {shell_path(source)} without --resume starts a new stage from its "
                              f"weights)"]
    else:
        optimizer_problems = check_optimizer_state(ckpt["optimizer"], optimizer)
    if len(optimizer_problems) > 8:  # one per parameter when the model differs: say how many
        optimizer_problems = optimizer_problems[:8] + [f"... and {len(optimizer_problems) - 8} more optimizer problems"]
    problems += optimizer_problems
    scaler = ckpt["scaler"]
    if not isinstance(scaler, dict):
        problems.append("scaler: not a dict")
    elif "scale" in scaler:
        scale = scaler["scale"]
        try:
            value = float(scale)
        except (TypeError, ValueError, RuntimeError):
            value = float("nan")
        if not 0 < value < float("inf"):
            problems.append(f"scaler: loss scale {scale!r} is not a positive finite number")
    own, read = state_problems(ckpt, steps_per_epoch)
    problems += own
    position = None
    if read is not None:
        epoch, in_epoch, spe = read
        if in_epoch and spe != steps_per_epoch:
            # A point inside an epoch is a share of its steps; at another count it falls between two
            # steps, or on one whose checkpoint name would sort before this file's.
            theirs = ckpt.get("samples_per_step")
            why = ("another batch size, grad_accum_steps, data set or device count" if not isinstance(theirs, int)
                   or samples_per_step is None else
                   f"its steps took {theirs} samples, this run's take {samples_per_step}: another batch_size, "
                   f"grad_accum_steps or device count" if theirs != samples_per_step else
                   f"the same {samples_per_step} samples a step: the data set holds another number of samples")
            problems.append(f"saved after {in_epoch} of the {spe} steps of epoch {epoch + 1}, this run makes "
                            f"{steps_per_epoch} steps an epoch ({why}): resume from an epoch's end, which continues "
                            f"at any count (or with the settings it ran with; --pre_trained {shell_path(source)} "
                            f"starts a new run from its weights)")
        elif in_epoch and samples_per_step is not None and ckpt.get("samples_per_step") not in (None, samples_per_step):
            problems.append(f"saved after {plural(in_epoch, 'step')} of {ckpt['samples_per_step']} samples into epoch "
                            f"{epoch + 1}, this run's steps take {samples_per_step} (another batch_size, "
                            f"grad_accum_steps or device count): it would skip or repeat samples of that epoch; "
                            f"resume from an epoch's end")
        elif in_epoch and samples_per_step is not None and ckpt.get("samples_per_step") is None \
                and (per_process := _recorded_process_batch(ckpt.get("config"))) \
                and samples_per_step % per_process:
            # A file from before samples_per_step: its configuration's batch_size x grad_accum_steps are a
            # process's samples a step, so its job's were a multiple of them (processes it does not record).
            problems.append(f"saved after {plural(in_epoch, 'step')} into epoch {epoch + 1} of a run whose steps took "
                            f"{per_process} samples a process (batch_size x grad_accum_steps), this run's take "
                            f"{samples_per_step}, which no process count makes of those (another batch_size or "
                            f"grad_accum_steps): it would skip or repeat samples of that epoch; resume from an "
                            f"epoch's end")
        elif in_epoch and train_samples is not None and recorded_count(ckpt.get(TRAIN_SAMPLES)) is not None \
                and ckpt[TRAIN_SAMPLES] != train_samples:
            problems.append(f"saved after {plural(in_epoch, 'step')} into epoch {epoch + 1} of a run over "
                            f"{plural(ckpt[TRAIN_SAMPLES], 'training sample')}, this run's data holds "
                            f"{train_samples} (files added or removed since, or read otherwise): that epoch's "
                            f"order of samples is another, it would skip or repeat some; resume from an epoch's "
                            f"end (or with the data as it was)")
        elif in_epoch and (moved := order_changes(ckpt, seed=seed, aug_repeats=aug_repeats,
                                                  class_balance=class_balance)):
            def shown(v: Any) -> str:  # a float as short as it reads back exactly (1/3 is not 0.333333)
                return (format(v, "g") if float(format(v, "g")) == v else repr(v)) if isinstance(v, float) else str(v)

            theirs = ", ".join(f"{key} {shown(was)}" for key, was, _ in moved)
            ours = ", ".join(f"{key} {shown(now)}" for key, _, now in moved)
            problems.append(f"saved after {plural(in_epoch, 'step')} into epoch {epoch + 1} of a run with {theirs}, "
                            f"this run has {ours}, which orders that epoch's samples otherwise: it would skip or "
                            f"repeat some; pass {' '.join(f'--{key} {shown(was)}' for key, was, _ in moved)}, or "
                            f"resume from an epoch's end")
        else:
            position = (epoch, in_epoch)
    recorded = ckpt.get("classes")
    if classes is not None and recorded is not None and list(recorded) != list(classes):
        added = [c for c in classes if c not in recorded]
        gone = [c for c in recorded if c not in classes]
        problems.insert(0, f"trained on {len(recorded)} classes, the data set now names {len(classes)}"
                        + (f" (new: {', '.join(added[:5])})" if added else "")
                        + (f" (missing: {', '.join(gone[:5])})" if gone else "")
                        + ("" if added or gone else " in another order")
                        + ": the labels would change")
    if problems or position is None:
        raise CheckpointError(f"checkpoint {source}: cannot continue this run: " + "; ".join(problems))
    return position


def find_resume_checkpoint(folder: str, validate: Callable[[Dict[str, Any], str], Any],
                           map_location: Any = "cpu") -> Tuple[Optional[str], Optional[Dict[str, Any]], Any,
                                                              List[Tuple[str, str]]]:
    """The newest checkpoint in ``folder`` that loads and passes ``validate(ckpt, path)`` (which raises
    :class:`CheckpointError` to refuse one). Returns (path, checkpoint, what ``validate`` returned,
    [(path, why it was passed over), ...] for the newer ones refused); path is None when none passes."""
    passed_over: List[Tuple[str, str]] = []
    for _, path in reversed(list_checkpoints(folder)):
        try:
            ckpt = load_file(path, map_location=map_location)
            result = validate(ckpt, path)
        except CheckpointError as e:
            passed_over.append((path, str(e)))
            continue
        return path, ckpt, result, passed_over
    return None, None, None, passed_over
