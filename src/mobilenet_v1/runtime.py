"""What every run prints first: versions, device, git revision; rank-0-only printing; strict JSON."""
import contextlib
import importlib
import io
import json
import math
import os
import platform
import re
import shlex
import stat
import sys
import time
from typing import IO, Any, Iterable, Iterator, List, Optional, Sequence, Tuple

# numpy before torch: torch imports it from C++ and clears any error of that import, a KeyboardInterrupt
# included, so a Ctrl-C in that moment of a command's start (the first second) was lost, and the command ran on to
# the end, over the file it was to write. Imported here, the Ctrl-C interrupts the command.
importlib.import_module("numpy")
import torch  # noqa: E402


def is_rank0() -> bool:
    # RANK without WORLD_SIZE (a stale shell's, a scheduler's) starts no job: this process is the only one and reports
    return launcher_number("RANK") == 0 or not launcher_value("WORLD_SIZE")


# torchrun's numbers for each process it starts, each with the least it may be, which is also its value where it
# is not set (or set empty, as a script's `RANK=$X` of an unset X leaves it: no torchrun job).
LAUNCHER_NUMBERS = {"RANK": 0, "LOCAL_RANK": 0, "WORLD_SIZE": 1, "LOCAL_WORLD_SIZE": 1}


def launcher_value(name: str) -> str:
    """A launcher's variable ``name`` as set for this process, "" where it is not set or set empty (blanks)."""
    return os.environ.get(name, "").strip()


def launcher_number(name: str) -> int:
    """torchrun's number ``name`` (:data:`LAUNCHER_NUMBERS`) for this process; its least where not set or empty."""
    value = launcher_value(name)
    return int(value) if value else LAUNCHER_NUMBERS[name]


def check_launcher_env() -> None:
    """A ValueError naming the variable where one of torchrun's numbers (:data:`LAUNCHER_NUMBERS`) is set in the
    environment but is no whole number at least its least: every command reads them, and int() said only
    "invalid literal for int() with base 10"."""
    for name, least in LAUNCHER_NUMBERS.items():
        value = launcher_value(name)
        if not value:
            continue
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < least:
            raise ValueError(f"the environment variable {name}={value!r} is not a whole number of at least {least}: "
                             f"torchrun sets RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE for each process it "
                             f"starts; outside torchrun unset it (unset {name})")


# Files that receive a copy of what print0 prints to stdout (a run's log.txt), and in-memory ones
# that keep what a run prints before its folder's log.txt is open (:func:`capture_output`).
_log_files: List[IO[str]] = []


ESCAPE_ERRORS = "mobilenet_v1.escape"


def _escape(error: UnicodeError):
    """The codec error handler :data:`ESCAPE_ERRORS`: a byte a name that is not UTF-8 held (os.fsdecode's
    surrogate, caf\\udce9) as ``\\xe9``, any other character the stream cannot take as backslashreplace writes it."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF else
                   c.encode("ascii", "backslashreplace").decode("ascii") for c in bad), error.end


def escape_errors() -> str:
    """:data:`ESCAPE_ERRORS`, registered: the ``errors`` of every text stream a name that is not UTF-8 (a Latin-1
    file's or folder's) is written to: standard output and error (:func:`cli.escaping_output`) and log.txt."""
    import codecs

    try:
        codecs.lookup_error(ESCAPE_ERRORS)
    except LookupError:
        codecs.register_error(ESCAPE_ERRORS, _escape)
    return ESCAPE_ERRORS


def add_log_file(path: str) -> IO[str]:
    """Append everything :func:`print0` prints to stdout to ``path`` as well, until
    :func:`remove_log_file`. Only call on rank 0: the other ranks print nothing. A name that is not UTF-8 is
    written with its bytes escaped, as on stdout: a strict UTF-8 file raised UnicodeEncodeError at the warning
    naming an unreadable file in a Latin-1 folder (and at a resume's preamble in a run folder so named), which
    stopped the run."""
    f = open(path, "a", encoding="utf-8", errors=escape_errors())
    _log_files.append(f)
    return f


def remove_log_file(f: IO[str]) -> None:
    """Stop copying output to ``f`` and close it; a second call does nothing more."""
    if f in _log_files:
        _log_files.remove(f)
    try:
        f.close()
    except OSError:  # what it still held could not be written (said when that was first found)
        pass


def record_lost(path: str, error: OSError, what: str) -> None:
    """Say, on stderr, that a run's record ``path`` (its log, its metrics) cannot be written and is given up:
    a full disk or a lost mount need not stop training; the checkpoints say whether it can go on."""
    print(f"warning: cannot write {path} ({error.strerror or error}): {what} end here; training goes on, and "
          f"stops with a clear error at the next checkpoint if that cannot be written either",
          file=sys.stderr, flush=True)


def capture_output() -> io.StringIO:
    """Keep what :func:`print0` prints to stdout, as a log file would receive it, in the returned
    buffer until :func:`remove_log_file` (whose close frees it: read ``getvalue()`` before)."""
    buf = io.StringIO()
    _log_files.append(buf)
    return buf


class ReaderMayLeave:
    """A standard stream whose reader may go away while the run goes on: the ``| tee`` of our scripts, which
    the terminal's Ctrl-C ends too, or a ``| head``. A write or flush that meets the closed pipe sends the
    stream's descriptor, and so what it still holds and everything after, to os.devnull, where it raised
    BrokenPipeError at the next line printed and stopped the run before its checkpoint. (log.txt keeps
    the run's lines.) So does any other error of the stream's own writing: a terminal gone under a run that
    ignores SIGHUP (``disown``, ``trap '' HUP``: EIO), a redirect's file on a disk that filled up (ENOSPC,
    ``> /dev/full``), a file over its size limit (EFBIG); those are said once on stderr (and so in
    log.txt), as a log file that cannot be written is. Anything else is the stream's."""

    def __init__(self, stream: IO[str], name: str = "standard output"):
        self._stream = stream
        self._name = name
        self._dead = False

    def _gone(self, error: OSError) -> None:
        self._dead = True  # no write is tried again (a stream that fails each time: cli.ClosedOutput)
        discard_output(self._stream)
        if not isinstance(error, BrokenPipeError):  # a reader that left said nothing: cat's way
            try:
                sys.stderr.write(f"warning: cannot write {self._name} ({error.strerror or error}): its lines are "
                                 f"given up (log.txt keeps them); training goes on\n")  # one write: one line
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def write(self, text: str) -> int:
        if self._dead:
            return len(text)
        try:
            return self._stream.write(text)
        except OSError as e:
            self._gone(e)
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            if not self._dead:
                self._gone(e)
            try:
                self._stream.flush()  # what it held, to os.devnull: not to be tried at exit again
            except OSError:
                pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def discard_output(stream: Any) -> None:
    """``stream``'s descriptor sent to os.devnull: after an error of its own (a full disk), what its buffer still
    holds is dropped at the next flush rather than raising the error again (a traceback at the interpreter's
    exit, "Exception ignored in: <_io.TextIOWrapper name='<stdout>'>")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor of its own
        pass


class NamedOutput:
    """A command's standard output whose write errors name it: `convert A B > /dev/full` wrote B whole and
    then said only "error: [Errno 28] No space left on device", as if B were what did not fit. A closed pipe
    stays BrokenPipeError (:func:`cli.main` ends quietly on it)."""

    def __init__(self, stream: IO[str], name: str = "standard output"):
        self._stream = stream
        self._name = name

    def _named(self, error: OSError) -> OSError:
        if isinstance(error, BrokenPipeError) or error.filename is not None:
            return error
        discard_output(self._stream)  # what it still holds fails no later flush (main's, the interpreter's exit)
        return OSError(error.errno, error.strerror or str(error), self._name)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as e:
            raise self._named(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as e:
            raise self._named(e) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class CopiedToLogs:
    """Standard error as a run sees it: what is written there (a warning, a skipped file, a signal received)
    goes to the log files of :func:`add_log_file` too, so that a run's log.txt says what stdout alone leaves
    out; ``stream`` None (stderr closed) writes to those alone."""

    def __init__(self, stream: Optional[IO[str]]):
        self._stream = stream

    def write(self, text: str) -> int:
        for f in list(_log_files):
            try:
                f.write(text)
                f.flush()
            except OSError as e:
                _give_up(f, e)
        return len(text) if self._stream is None else self._stream.write(text)

    def flush(self) -> None:
        if self._stream is not None:
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only; output is flushed so logs interleave in order. What goes to stdout
    also goes to the log files of :func:`add_log_file` and the buffers of :func:`capture_output`."""
    if is_rank0():
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)
        if kwargs.get("file") in (None, sys.stdout):
            log0(*args, sep=kwargs.get("sep", " "), end=kwargs.get("end", "\n"))


def log0(*args, sep: str = " ", end: str = "\n") -> None:
    """Write to the log files only (what a terminal shows as a progress bar instead)."""
    if is_rank0():
        for f in list(_log_files):
            try:
                print(*args, sep=sep, end=end, file=f, flush=True)
            except OSError as e:
                _give_up(f, e)


def _give_up(f: IO[str], error: OSError) -> None:
    """A log file that refused a write: no more are tried, and it is said once (two threads may both meet it:
    the main one's lines, the stop watchdog's stderr)."""
    try:
        _log_files.remove(f)
    except ValueError:  # the other thread was first
        return
    record_lost(getattr(f, "name", "the log"), error, "its lines")


def rank_label() -> str:
    """" (rank N)" in a process of several (torchrun's WORLD_SIZE and RANK), where each one reports."""
    try:
        several = launcher_number("WORLD_SIZE") > 1
    except ValueError:
        several = False
    return f" (rank {launcher_value('RANK')})" if several and launcher_value("RANK") else ""


# The attribute of an error that every rank of a job raised at one point (distributed.Context.alike): the job's
# size and each distinct message with the ranks that raised it. Each machine's local rank 0 says them, the other
# ranks nothing, so that a machine of 8 processes ends with one line, not 8 alike, and every machine's log has it.
JOB_MESSAGES = "job_messages"


def shell_path(path: str) -> str:
    """``path`` as a command this tool suggests names it, to be pasted into a shell: quoted where it holds spaces
    or other characters a shell reads, and a relative one that starts with a dash as ``./-run``, which no option
    parser takes for an option."""
    path = os.fspath(path)
    return shlex.quote(os.path.join(os.curdir, path) if path.startswith("-") else path)


def special_file_kind(mode: int) -> str:
    """What a path of ``mode`` (``os.stat``'s) that is neither a regular file nor a folder is, for an error."""
    return ("a named pipe" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "something else")


def plural(count: int, noun: str, nouns: str = "", spec: str = "") -> str:
    """``count`` and its noun, plural unless it is 1: "1 step", "3 steps"; ``nouns``: a plural other than
    ``noun`` + "s" ("processes"); ``spec``: the count's format ("," writes "1,251 images"). For the counts
    that a small run (one epoch, one step an epoch, one image) brings down to 1."""
    return f"{count:{spec}} {noun if count == 1 else nouns or noun + 's'}"


def apart_texts(a: float, b: float, digits: int = 6) -> Tuple[str, str]:
    """``a`` and ``b`` written with ``digits`` significant digits, or more where those would write two values
    that differ alike ("0.0273537" of both 0.02735372 and 0.02735375): a line naming two rates as apart shows how."""
    a, b = float(a), float(b)
    while a != b and f"{a:.{digits}g}" == f"{b:.{digits}g}":
        if digits == 16:  # the shortest texts that read back as each: they differ where the values do
            return repr(a), repr(b)
        digits += 1
    return f"{a:.{digits}g}", f"{b:.{digits}g}"


def ranks_text(ranks: Sequence[int], world: int) -> str:
    """"all 3 ranks", "rank 1", "ranks 0, 2-4": which processes of a job of ``world`` said a message."""
    if len(ranks) == world > 1:
        return f"all {world} ranks"
    runs: List[List[int]] = []
    for r in sorted(ranks):
        if runs and r == runs[-1][-1] + 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    parts = [str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs]
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(parts)


def job_error_lines(command: str, error: BaseException) -> Optional[List[str]]:
    """The lines that end a command on ``error`` where every rank of the job raised it at one point
    (:data:`JOB_MESSAGES`): on each machine's local rank 0 one line per distinct message, naming the ranks it
    came from; on the others none. None where ``error`` is one process's own (:func:`error_line` says it, with
    its rank)."""
    said = getattr(error, JOB_MESSAGES, None)
    if said is None:
        return None
    if launcher_number("LOCAL_RANK") != 0:
        return []
    world, messages = said
    return [f"mobilenet-v1 {command} ({ranks_text(ranks, world)}): error: {text}" for ranks, text in messages]


# The optional packages, each with the extra of pyproject.toml that installs it and what it is for here.
_ONNX_FILES = "ONNX files (export, quantize, and eval, predict, info and benchmark of .onnx)"
EXTRAS = {"onnx": ("onnx", _ONNX_FILES), "onnxruntime": ("onnx", _ONNX_FILES),
          "onnxscript": ("onnx", "ONNX export (torch.onnx builds its graphs with it)"),
          "executorch": ("executorch", ".pte files"), "matplotlib": ("plot", "plot"),
          "ai_edge_litert": ("tflite", ".tflite files"), "flatbuffers": ("tflite", ".tflite files"),
          "tensorboard": ("tensorboard", "TensorBoard files"), "sklearn": ("demo", "the demo's digits")}


def missing_extra(error: BaseException) -> Optional[str]:
    """What to install, where ``error`` is the import of an optional package (:data:`EXTRAS`) that is not
    installed; None for any other error (a module of the package itself or of torch missing is a fault)."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    top = error.name.split(".")[0]
    if top not in EXTRAS:
        return None
    extra, needed_for = EXTRAS[top]
    package = "scikit-learn" if top == "sklearn" else top
    return f"the {package} package is not installed, which {needed_for} needs: {install_hint(extra)}"


def install_hint(extra: str) -> str:
    """How to install the optional packages of ``extra``, in the one wording every message uses (the package is
    installed from its checkout: the first form is for a wheel or a mirror of one)."""
    return f"pip install 'mobilenet-v1[{extra}]' (from a checkout: pip install -e '.[{extra}]')"


# The optional packages each kind of file export writes (and checks, running it) needs; PT2: none.
FORMAT_EXTRAS = {"ONNX": ("onnx", "onnxscript", "onnxruntime"), "PTE": ("executorch",),
                 "TFLITE": ("flatbuffers", "ai_edge_litert"), "PT2": ()}


def require_extras(*modules: str) -> None:
    """Refuse, before any work, where an optional package of ``modules`` (:data:`EXTRAS`) is not installed: a
    ModuleNotFoundError saying what to install (:func:`missing_extra`), as its import would raise only after the
    work (an ONNX export made, then its check's ONNX Runtime missing). Found, not imported: the import stays lazy."""
    import importlib.util

    for name in modules:
        if importlib.util.find_spec(name) is None:
            error = ModuleNotFoundError(f"No module named {name!r}", name=name)
            raise ModuleNotFoundError(missing_extra(error) or str(error), name=name)


def import_extra(name: str) -> Any:
    """The optional package ``name`` imported; not installed, a ModuleNotFoundError saying what to install
    (a Python caller's, which the command line's error line says too)."""
    import importlib

    try:
        with interrupt_deferred():  # a half-done import breaks every later one in the process
            return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if missing_extra(e):
            raise ModuleNotFoundError(missing_extra(e), name=e.name) from None
        raise


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """A Ctrl-C (a notebook's Interrupt, SIGINT) inside the block is raised as KeyboardInterrupt when the block
    ends, not inside it: for the steps that a KeyboardInterrupt leaves half done for the rest of a Python caller's
    process. A lazy import of torchvision, torch._dynamo or onnx interrupted half way leaves its finished
    submodules in sys.modules without their package ("module 'sympy' has no attribute 'logic'" at every later
    call); a DataLoader's iterator interrupted while it starts its workers leaves them running, which no close()
    reaches. A second Ctrl-C inside the block raises at once. Only where Python's own handler is in place, from
    the main thread: a run's StopRequest records Ctrl-C itself, and an ignored SIGINT stays ignored."""
    import signal
    import threading

    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    heard = []

    def hold(signum, frame):
        if heard:
            raise KeyboardInterrupt
        heard.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if heard:
        raise KeyboardInterrupt


# The attribute of an error raised while a command built or ran a network (:func:`network_sized`): its
# width_mult, class_num, batch_size and image_size, for the advice on running out of memory (:func:`memory_advice`).
NETWORK = "mobilenet_v1_network"


@contextlib.contextmanager
def library_defaults(training: bool = False) -> Iterator[None]:
    """The process-wide torch settings a Python caller (a notebook) may have changed, as the library's own
    commands take them, for its block: no autocast but the command's own (``--precision``); float32 as the
    default dtype (``torch.set_default_dtype(torch.float64)`` built a float64 model that the loaders' float32
    batches could not run in); out of ``torch.inference_mode()``; and for ``training`` gradients on
    (``torch.set_grad_enabled(False)``: "element 0 of tensors does not require grad"). The caller's are back
    after it."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with contextlib.ExitStack() as stack:
            # No autocast of the caller's (`with torch.autocast("cpu"):` around train.run trained in bf16, its
            # backward's matmuls too, while the checkpoint recorded precision_used fp32): --precision decides.
            for device in ("cpu",) + (("cuda",) if torch.cuda.is_available() else ()):
                stack.enter_context(torch.autocast(device_type=device, enabled=False))
            # Out of a caller's inference_mode whatever the command: a model built in it is of inference tensors,
            # which a quantization-aware model's forward (qat.was_observed: t._version) cannot read.
            # inference_mode(False) also turns gradients on (c10::InferenceMode(false) sets GradMode to true): the
            # caller's grad mode is put back, so that a no_grad block around this one (Predictor.top_k's) stays
            # without gradients; predict's forward recorded an autograd graph, 1.6x its time on the CPU.
            grad = torch.is_grad_enabled()
            stack.enter_context(torch.inference_mode(False))
            stack.enter_context(torch.enable_grad() if training else torch.set_grad_enabled(grad))
            yield
    finally:
        torch.set_default_dtype(before)


@contextlib.contextmanager
def network_sized(width_mult: float, class_num: int, batch_size: int, image_size: int) -> Iterator[None]:
    """Marks an error raised inside the block with the network the command builds and runs there, on batches of
    ``batch_size`` images of ``image_size``, which :func:`error_line` weighs where the memory ran out; an inner
    block's mark (another network's) stays."""
    try:
        yield
    except BaseException as e:
        if getattr(e, NETWORK, None) is None:
            setattr(e, NETWORK, (width_mult, class_num, batch_size, image_size))
        raise


def _weights_text(count: int) -> str:
    return (f"{count:.1e}" if count >= 10 ** 12 else f"{count / 1e9:,.1f} billion" if count >= 10 ** 9
            else f"{count / 1e6:,.1f} million" if count >= 10 ** 6 else f"{count:,}")


def memory_advice(error: BaseException) -> str:
    """What needs less memory where ``error`` says it ran out: a smaller batch_size or image_size, and, where it
    was raised in a network (:func:`network_sized`) larger than usual, a smaller width_mult (above 1: the
    paper's are 0.25 to 1; the weights grow with its square, the activations with it) or class_num (where the
    classifier's weights, as many as 1024 x width_mult x class_num, with their gradients and optimiser state,
    take more than the rest: the other layers' and a batch's activations, roughly counted)."""
    advice = "a smaller batch_size or image_size needs less"
    network = getattr(error, NETWORK, None)
    if network is None:
        return advice
    from .info import count_activations, count_params  # (info imports this module)
    from .model import layer_specs

    width_mult, class_num, batch_size, image_size = network
    total = count_params(width_mult, class_num)["params"]
    classifier = (layer_specs(width_mult)[-1][2] + 1) * class_num
    # Floats held in training: each weight with its gradient and up to two optimiser states; each layer's
    # convolution, BatchNorm and ReLU outputs, kept for the backward pass.
    weights, activations = 4 * total, 3 * batch_size * count_activations(width_mult, image_size)
    named = []
    if width_mult > 1:
        named.append(f"width_mult ({width_mult:g} here: {_weights_text(total)} weights, "
                     f"{_weights_text(count_params(1.0, class_num)['params'])} at 1)")
    if 4 * classifier > weights + activations - 4 * classifier:
        named.append(f"class_num ({class_num:,} here: the classifier's {_weights_text(classifier)} weights, with "
                     f"their gradients and optimiser state, take more than the other layers and a batch's "
                     f"activations)")
    return f"{advice}, as does a smaller {' or '.join(named)}" if named else advice


def error_line(command: str, error: BaseException) -> Optional[str]:
    """The one line a command ends with, on stderr and in a run's log.txt, where ``error`` is the input's or the
    machine's (a configuration, data set or checkpoint refused, a file that cannot be read or written, memory
    that runs out) or a Ctrl-C; None where it is a fault of the code, whose traceback is what says it. (Our
    configuration, data and checkpoint errors are ValueErrors, with messages that name the file or option.)"""
    if isinstance(error, KeyboardInterrupt):
        return f"mobilenet-v1 {command}{rank_label()}: interrupted (Ctrl-C)"
    head = f"mobilenet-v1 {command}{rank_label()}: error:"
    if too_many_open_files(error):
        return f"{head} {too_many_open_files(error)}"
    if isinstance(error, OSError):
        from .checkpoint import unwritten_line

        unwritten = unwritten_line(error)
        if unwritten:
            return f"{head} {unwritten}"
    if isinstance(error, (ValueError, OSError)):
        return f"{head} {error}"
    if isinstance(error, Warning):  # a warning of ours (or a library's) made an error by -W error / PYTHONWARNINGS
        return f"{head} {error} ({type(error).__name__}, a warning made an error by PYTHONWARNINGS or -W error)"
    missing = missing_extra(error)
    if missing:
        return f"{head} {missing}"
    unwritten = compile_files_unwritten(error)
    if unwritten:
        return f"{head} {unwritten}" + (_RESUME_HINT if command == "train" else "")
    if isinstance(error, (MemoryError, RuntimeError)):
        # A CPU allocation that fails is a RuntimeError ("can't allocate memory"), a GPU one torch's
        # OutOfMemoryError: a setting too large for the machine, not a fault of the code.
        text = str(error)
        if isinstance(error, MemoryError) or "out of memory" in text.lower() or "can't allocate" in text:
            first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
            return f"{head} out of memory ({first[:200]}); {memory_advice(error)}"
        died = loader_worker_died(error, command)
        if died:
            return (f"{head} {died}" + ("; the same command with --resume auto continues from the newest checkpoint"
                                        if command == "train" else ""))
        lost = peer_lost(error)
        if lost:
            return (f"{head} another process of this job ended or cannot be reached ({lost})"
                    + ("; nothing was saved after the newest checkpoint, from which the same command with --resume "
                       "auto continues" if command == "train" else ""))
    return None


_RESUME_HINT = "; the same command with --resume auto then continues from the newest checkpoint"

# Why a file cannot be written (errno), as a compiler's output says it too: the machine's fault, not the code's
# (compile_files_unwritten's, and checkpoint.unwritten_line's for a command's output).
UNWRITABLE = ("ENOSPC", "EDQUOT", "EROFS", "EFBIG", "EACCES")


def room_advice(reason: str) -> str:
    """What to do about a write that failed for ``reason`` (its strerror): free space or make the folder writable;
    but a file over this process's size limit (EFBIG, "File too large": ``ulimit -f``, a scheduler's limit) needs
    that limit raised, which neither changes (the same write fails again however much room the disk has)."""
    import errno

    if reason == os.strerror(errno.EFBIG):
        return "raise this process's file-size limit (ulimit -f, or the scheduler's)"
    return "free space or make the folder writable"


def compile_files_unwritten(error: BaseException) -> str:
    """Where ``error`` is torch.compile's (Dynamo's, Inductor's) for a file it could not write (a full disk, a
    read-only or over-quota folder): its kernel cache (TORCHINDUCTOR_CACHE_DIR, by default TMPDIR's
    torchinductor_USER) or the C++ compiler's temporary files (TMPDIR), what to do, in one line; "" for any other
    error. Said so, not as the exception's one line between "Traceback" and Dynamo's debugging advice: the one
    OSError under it names no folder, and the compiler's says so only inside its output."""
    import errno

    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        chain.append(error)
        error = error.__cause__ or error.__context__
    if not any(type(e).__module__.startswith(("torch._dynamo", "torch._inductor")) for e in chain):
        return ""
    # A compiler (g++, Triton's ptxas) that could not be run ("Permission denied"): no file unwritten. Raised in one
    # of Inductor's compile workers, it is here as that worker's traceback, in the text of a SubprocException.
    if any(isinstance(e, OSError) and _raised_starting_a_program(e) or "in _execute_child\n" in str(e) for e in chain):
        return ""
    codes = [getattr(errno, name) for name in UNWRITABLE if hasattr(errno, name)]
    found = next((e for e in chain if isinstance(e, OSError) and e.errno in codes), None)
    if found is not None:
        reason = found.strerror or os.strerror(found.errno)
    else:  # a compiler run that failed (CppCompileError): its output says why ("error closing ccX.s: No space ...")
        text = "\n".join(str(e) for e in chain)
        reason = next((os.strerror(code) for code in codes if os.strerror(code) in text), "")
        if not reason:
            return ""
    named = f" ({found.filename})" if found is not None and found.filename else ""
    import tempfile

    cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    utils = sys.modules.get("torch._inductor.runtime.cache_dir_utils")
    if not cache and utils is not None:
        with contextlib.suppress(Exception):
            cache = utils.default_cache_dir()
    temporary = os.environ.get("TMPDIR") or tempfile.gettempdir()
    where = f"its kernel cache {cache}, " if cache else ""
    return (f"torch.compile (--compile) could not write its files: {reason}{named} ({where}temporary files in "
            f"{temporary}); {room_advice(reason)} there, or set TORCHINDUCTOR_CACHE_DIR and TMPDIR to a folder "
            f"with room, or run without --compile")


def _raised_starting_a_program(error: BaseException) -> bool:
    """Whether ``error`` was raised by subprocess starting a program (its exec failed: EACCES where the file is
    not executable or its file system is mounted noexec), not by a file's write."""
    import subprocess

    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename == subprocess.__file__


def too_many_open_files(error: BaseException) -> str:
    """Where ``error`` says this process ran out of file descriptors (EMFILE, or the DataLoader's RuntimeError
    about it): what to do, with the limit; "" for any other error."""
    import errno
    text = str(error)
    if not ((isinstance(error, OSError) and error.errno == errno.EMFILE)
            or (isinstance(error, RuntimeError) and "Too many open files" in text)):
        return ""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        soft = hard = None
    if soft is None:
        limit, raise_it = "unknown", "; raise it (ulimit -n)"
    else:
        unlimited = hard == resource.RLIM_INFINITY
        limit = f"{soft}" + ("" if unlimited or hard == soft else f" (hard limit {hard})")
        more = max(4096, 2 * soft)
        if unlimited or soft < hard:  # a user may raise the soft limit up to the hard one
            raise_it = f"; raise it (ulimit -n {more if unlimited else min(more, hard)})"
        else:  # at the hard limit already: only root, or the container's --ulimit nofile, raises that
            raise_it = (", its hard limit too (only root or the container's settings, docker run --ulimit "
                        "nofile=N:N, raise that)")
    named = f" ({error.filename})" if isinstance(error, OSError) and error.filename else ""
    return (f"too many open files{named}: this process's limit of open files (ulimit -n) is {limit}{raise_it}, "
            f"or lower --num_workers, then run again (train: with --resume auto)")


# What gloo's and NCCL's errors say when a process of the job is gone (killed, its machine lost).
PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe", "remote process exited",
             "NCCL communicator was aborted")


_WORKER_KILLED = re.compile(r"DataLoader worker \(pid ?(\d+)\) is killed by signal: ([^.]+)")
_WORKER_EXITED = re.compile(r"DataLoader worker \(pid(?:\(s\))? ?([\d, ]+)\) exited unexpectedly")


def loader_worker_died(error: BaseException, command: str = "") -> str:
    """Where ``error`` is the DataLoader's RuntimeError for a worker process that ended outright (killed by a
    signal: the kernel's out-of-memory killer's SIGKILL, a crash's SIGSEGV): what happened and what to do, in
    one line; "" for any other error (a worker's own exception, "Caught X in DataLoader worker", is not one)."""
    if not isinstance(error, RuntimeError):
        return ""
    text = str(error)
    killed = _WORKER_KILLED.search(text)
    exited = None if killed else _WORKER_EXITED.search(text)
    if not (killed or exited):
        return ""
    if killed:
        pid, how = killed.group(1), killed.group(2).strip()
        said = f"a data loader worker process (pid {pid}) was killed by signal: {how}"
        if how.lower().startswith("killed"):
            said += (" (SIGKILL: the kernel's out-of-memory killer ends processes so, which the system log, "
                     "dmesg or journalctl -k, says)")
    else:
        said = f"a data loader worker process (pid {exited.group(1).strip()}) ended unexpectedly (killed, or crashed)"
    if killed and not how.lower().startswith("killed"):
        what = next((said_of for names, said_of in _WORKER_SIGNALS if how.lower().startswith(names)),
                    ", sent by another process or the terminal (Hangup: the terminal or ssh session closed; nohup, "
                    "tmux or screen keep a run going)")  # SIGHUP, SIGINT, SIGQUIT, SIGUSR1, ...
        return f"{said}{what}; --num_workers 0 reads the data in this process"
    smaller = "" if command == "quantize" else " or a smaller batch_size"  # (quantize has none)
    return (f"{said}; fewer loader workers (--num_workers){smaller} needs less memory, "
            f"--num_workers 0 reads the data in this process")


# A worker's signal other than SIGKILL (the out-of-memory killer's), by the first words of torch's name for it:
# what it says of the worker's end.
_WORKER_SIGNALS = (
    (("bus error",), ": shared memory (/dev/shm) ran out, as a container's default 64 MB does (PyTorch's own hint); "
                     "raise it (docker --shm-size), or fewer loader workers (--num_workers)"),
    (("terminated",), ", sent by another process (a scheduler, a kill)"),
    (("segmentation fault", "aborted", "floating point exception", "illegal instruction", "bad system call",
      "trace/breakpoint trap"), ": a crash while reading or decoding an image"),
    (("cpu time limit", "file size limit"), ": a resource limit of this process (ulimit -t, ulimit -f, or a "
                                            "scheduler's) was passed; raise it"),
)


def peer_lost(error: BaseException) -> str:
    """Where ``error`` is a collective's (gloo's, NCCL's) that failed because another process of a distributed
    job went away: what it says of that, in short; "" for any other error."""
    text = str(error)
    distributed = sys.modules.get("torch.distributed")
    ours = getattr(distributed, "DistError", None)
    named = any(k in text for k in ("gloo", "NCCL", "c10d"))
    if not named and not (isinstance(ours, type) and isinstance(error, ours)):
        return ""
    backend = "NCCL" if "NCCL" in text else "gloo" if "gloo" in text else "torch.distributed"
    for phrase in PEER_LOST:  # (not any DistNetworkError: a port in use at the start is one too)
        if phrase in text:
            return f"{backend}: {phrase}"
    return ""


def strict_json(value: Any) -> Any:
    """``value`` (dicts and lists, nested) with each float that is not finite (a skipped step's loss, the
    probabilities of a model whose weights are NaN) as None: JSON has no NaN or Infinity, and strict readers
    (jq, JavaScript, Go) refuse Python's tokens for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def json_text(value: Any, **kwargs) -> str:
    """``json.dumps`` of :func:`strict_json` ``(value)``: what every ``--json`` output and JSON file is."""
    return json.dumps(strict_json(value), allow_nan=False, **kwargs)


def csv_text(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as CSV, one "\n"-terminated line each: a field quoted (its quotes doubled) where it holds a comma,
    a quote, a newline or a carriage return, which the csv module's minimal quoting leaves bare under a
    "\n" terminator (a file name with one would split its row); None empty, anything else as ``str`` gives it."""
    def field(value: Any) -> str:
        text = "" if value is None else value if isinstance(value, str) else str(value)
        return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n\r') else text

    def line(row: Sequence[Any]) -> str:
        text = ",".join(field(v) for v in row)
        return ('""' if len(row) == 1 and not text else text) + "\n"  # one empty field, not an empty row

    return "".join(line(row) for row in rows)


def torchvision_version() -> str:
    """The installed torchvision's version as its package states it (``0.29.1``, where its module may say
    ``0.29.1+cu130``), read without importing it (:func:`transforms.torchvision_ops`): the same whether an
    image was decoded yet or not."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("torchvision")
    except PackageNotFoundError:
        return sys.modules["torchvision"].__version__ if "torchvision" in sys.modules else "not installed"


def header(device: torch.device) -> str:
    from . import __version__, git_revision

    if device.type == "cuda":
        dev = f"cuda:{device.index} ({torch.cuda.get_device_name(device)})"
    else:
        dev = f"cpu ({plural(os.cpu_count() or 1, 'core')}, {plural(torch.get_num_threads(), 'thread')})"
    # When, with the UTC offset: a resumed run appends to the same log.txt, whose parts said nothing of when each
    # ran (helper-362); the seed's lines after it are unchanged.
    return (f"mobilenet-v1 {__version__} (git {git_revision()}), python {platform.python_version()}, "
            f"torch {torch.__version__}, torchvision {torchvision_version()}, device {dev}, "
            f"started {time.strftime('%Y-%m-%d %H:%M:%S %z')}")


def shown_name(name: str) -> str:
    """A file name as the text output prints it: one that is not UTF-8 (Latin-1 ``caf\\xe9.png``) with those
    bytes escaped; a UTF-8 locale's stdout (strict, where the C locale's is not) refused it, and the results of
    every file were lost to the error."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    # Control characters (ESC's terminal sequences, a carriage return, NUL, bidi overrides) escaped too: a name
    # from an archive or a scraper ("a\x1b]0;T\x07\x1b[2J.jpg") cleared the screen, retitled the terminal or hid
    # the lines printed before it.
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)
