"""Data sets of the seed: CIFAR-10 binary files (CIFAR-100's too) and ImageNet-style folders of images.

A loader yields ``(images, labels)`` already on the training device: float32, normalised, and
channels_last when asked. Every random choice comes from the run's seed, the epoch and the sample's
position, so an epoch's data order and augmentation do not depend on the number of loader workers.
"""
import atexit
import contextlib
import csv
import errno
import functools
import gc
import glob
import hashlib
import inspect
import itertools
import codecs
import multiprocessing.util
import os
import pickle
import queue
import re
import stat
import threading
import time
import unicodedata
import warnings
import weakref
from dataclasses import dataclass, field
from typing import (Any, Callable, ContextManager, Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Sequence, Set, Tuple, Union)

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from . import transforms as T
from .archive import (ARCHIVE_SUFFIX, COMPRESSED_SUFFIXES, ArchiveError, ArchiveImages, ArchiveMember,
                      ClassFiles, PathTable, archive_images, archive_index, as_indices, class_archives_index,
                      class_locations, folder_of_shards, holds_labels, is_archive, is_hidden_name, is_shard_pattern,
                      is_shard_split, links_out, lone_class_wrapping, member_size, read_member, shard_files,
                      shard_index, tar_files)
from .autoaugment import Augment, make_augment
from .config import ConfigError, cifar_name, is_cifar, normalisation
from .runtime import interrupt_deferred, launcher_number, plural, shell_path, special_file_kind
from .stalls import watched
from .stopping import ignore_in_worker, workers_starting

CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + 3,072 pixel bytes
# The official CIFAR-10 binary's training split: data_batch_1.bin ... data_batch_5.bin of 10,000 records each.
CIFAR_OFFICIAL_BATCHES, CIFAR_OFFICIAL_BATCH = 5, 10_000
CIFAR100_RECORD = 2 + 3 * 32 * 32  # coarse and fine label bytes + 3,072 pixel bytes
CIFAR_CROP_PADDING = 4  # the seed's RandomCrop(32, padding=4)
CIFAR_TRAIN_FOLDER = "cifar-10-batches-bin"
CIFAR_EVAL_FOLDER = "cifar-10-verify-bin"
CIFAR100_FOLDER = "cifar-100-binary"  # both splits: train.bin and test.bin, as the archive unpacks
# The Python versions (torchvision's): pickles without a suffix, in the folders their archives unpack to.
CIFAR_PY_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
IMAGENET_TRAIN_FOLDER = "train"
IMAGENET_EVAL_FOLDER = "validation_preprocess"
# Where an image folder's evaluation split is looked for: the seed's name, then torchvision's and timm's.
IMAGENET_EVAL_FOLDERS = (IMAGENET_EVAL_FOLDER, "val", "validation")
# Folders of an image data set's root that are not classes: its splits, and the test images of ImageNet's
# own layout (train/, val/, test/), which no command reads.
SPLIT_FOLDERS = (IMAGENET_TRAIN_FOLDER,) + IMAGENET_EVAL_FOLDERS + ("test",)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
# Photos' formats a data set does not take (a phone's HEIC, a camera's raw files): left out of a folder's listing
# as any other file is, but counted and said (:func:`unread_photos_note`): a folder of iPhone photos half HEIC
# trained on the other half without a word.
UNREAD_PHOTO_EXTENSIONS = (".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf",
                           ".rw2", ".raf")


# The per-channel (mean, std) a loader normalises its batches by (config.normalisation).
Normalisation = Tuple[Sequence[float], Sequence[float]]


class DataError(ValueError):
    """A data set that cannot be read; the message names the file or folder."""


class TooManyBadSamples(DataError):
    """More unreadable files than the limit (:meth:`BadSamples.check`): raised on every rank of a distributed run
    at once where the job checks its list."""


class UnsortedImagesError(DataError):
    """An image folder whose images are not sorted into class folders (``root``: the folder); its message offers
    evaluation's way out (``--eval_labels``), :meth:`instead` another command's."""

    def __init__(self, message: str, root: str):
        super().__init__(message)
        self.root = root

    def instead(self, what: str) -> DataError:
        """The error a command that reads the training split raises instead: ``what`` it needs."""
        return DataError(f"dataset_path {self.root}: its images are not sorted into class folders, {what}")


class BadSampleWarning(UserWarning):
    """An unreadable image file was skipped."""


class DataWarning(UserWarning):
    """A data set was read in a way its user may not expect; the message says how."""


class SharedMemoryFull(OSError):
    """The loader's worker processes could not start: the semaphores of their queues, which live in shared memory
    (/dev/shm on Linux), found it full. Python's error names no file ("[Errno 28] No space left on device"), as if
    a disk the run writes to were full."""

    def __init__(self, workers: int):
        super().__init__(errno.ENOSPC, os.strerror(errno.ENOSPC), "/dev/shm")
        self.workers = workers

    def __str__(self) -> str:
        return (f"shared memory (/dev/shm) is full: the data loader's {self.workers} worker processes (--num_workers) "
                f"need room there for their queues; free it (files a killed run left: torch_*, sem.*), give it more "
                f"(a container's default is 64 MB: docker run --shm-size), or --num_workers 0 reads the data in this "
                f"process")


@contextlib.contextmanager
def workers_named(loader: DataLoader):
    """Around the start of ``loader``'s workers (``iter(loader)``): a full shared memory said as what it is
    (:class:`SharedMemoryFull`). PyTorch's iterator whose construction failed before it started any worker then
    printed "Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ ...>" and a traceback of its
    own AttributeError when collected: marked as shut down, it has nothing to shut. Where the queue of a later
    worker was the one that failed, the workers started before it are ended here: its __del__ would have ended them
    only after the same AttributeError (its workers' status is set at the end of its construction)."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.ENOSPC or e.filename is not None or not loader.num_workers:
            raise
        tb = e.__traceback__
        while tb is not None:
            it = tb.tb_frame.f_locals.get("self")
            if type(it).__name__ == "_MultiProcessingDataLoaderIter" and not hasattr(it, "_workers_status"):
                for worker in getattr(it, "_workers", ()):  # started before the next one's queue failed
                    worker.terminate()
                    worker.join(timeout=5)
                it._shutdown = True  # its __del__ has nothing left to shut down
            tb = tb.tb_next
        raise SharedMemoryFull(loader.num_workers) from None


# ---------------------------------------------------------------------------------------------------
# CIFAR-10 and CIFAR-100 binary versions

def read_cifar_bin(path: str, dataset: str = "cifar10") -> Tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR-10 ``.bin`` file, or of a CIFAR-100
    one (``dataset`` "cifar100": a coarse and a fine label byte a record; the fine label, of 100, is read)."""
    hundred = dataset == "cifar100"
    name, record, classes = ("CIFAR-100", CIFAR100_RECORD, 100) if hundred else ("CIFAR-10", CIFAR_RECORD, 10)
    if os.path.isdir(path):  # (its size is the folder's own, which is no number of records to count)
        raise DataError(f"{name} file {path}: a folder, not a file")
    size = os.path.getsize(path)
    if size == 0:
        raise DataError(f"{name} file {path}: empty (0 bytes)")
    if size % record:
        other = "cifar10" if hundred else "cifar100"  # whose records would fit
        fits = size > 0 and size % (CIFAR_RECORD if hundred else CIFAR100_RECORD) == 0
        raise DataError(f"{name} file {path}: {size} bytes is not a whole number of {record}-byte records "
                        f"({'a coarse and a fine label byte' if hundred else '1 label byte'} + 3,072 pixel bytes)"
                        + (f": a {'CIFAR-10' if hundred else 'CIFAR-100'} file? (--dataset {other})" if fits else ""))
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, record)
    labels = raw[:, record - 3072 - 1].astype(np.int64)  # CIFAR-100: the second byte, the fine label
    bad = np.flatnonzero(labels >= classes)
    if bad.size:
        raise DataError(f"{name} file {path}: record {int(bad[0])} has {'fine ' if hundred else ''}label "
                        f"{int(labels[bad[0]])}, outside 0..{classes - 1} ({plural(int(bad.size), 'such record')})")
    images = raw[:, record - 3072:].reshape(-1, 3, 32, 32)
    return images, labels


def write_cifar_bin(path: str, images: np.ndarray, labels: np.ndarray,
                    coarse: Optional[np.ndarray] = None) -> None:
    """Write (N, 3, 32, 32) uint8 images and labels in the CIFAR-10 binary record format; given ``coarse``
    labels too, in CIFAR-100's (coarse, then fine label byte). Atomically: a file of that name stays whole
    if the write fails, and a run reading it meanwhile keeps reading the one it opened."""
    from .checkpoint import atomic_write

    images = np.asarray(images, dtype=np.uint8)
    labels = np.asarray(labels)
    if images.shape[1:] != (3, 32, 32) or len(images) != len(labels):
        raise ValueError(f"expected (N, 3, 32, 32) images and N labels, got {images.shape}, {labels.shape}")
    columns = [labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)]
    if coarse is not None:
        columns.insert(0, np.asarray(coarse).astype(np.uint8)[:, None])
    with atomic_write(path) as f:
        f.write(np.concatenate(columns, axis=1).tobytes())


# The dtypes of numbers a CIFAR pickle's arrays may have (numpy's codes, without the byte order).
_NUMBER_CODES = {"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"}


def _refused(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(f"it {what}, which a CIFAR file does not")


class _DtypeNamed:
    """What ``numpy.dtype(code, align, copy)`` in a CIFAR pickle stands for: its code of numbers and (its state,
    BUILD) byte order, recorded; numpy itself never sees the file's values (a dtype's state sets its flags and
    fields, with which numpy takes bytes for objects: pointers of the file's)."""

    def __init__(self, code: Any, align: Any = False, copy: Any = True):
        code = code.decode("latin1") if isinstance(code, bytes) else code
        if code not in _NUMBER_CODES:
            raise _refused(f"holds a dtype {code!r}, not one of numbers")
        self.code, self.order = code, "|"

    def __setstate__(self, state: Any) -> None:  # (3, byte order, None, None, None, -1, -1, 0) for numbers
        if not (isinstance(state, tuple) and len(state) == 8 and state[1] in ("<", ">", "|", "=")
                and state[2:] == (None, None, None, -1, -1, 0)):
            raise _refused(f"sets a dtype's state to {state!r}, not that of numbers")
        self.order = state[1]

    def dtype(self) -> np.dtype:
        return np.dtype(self.code).newbyteorder(self.order if self.order in "<>" else "=")


class _ArrayNamed:
    """What an array in a CIFAR pickle stands for (``numpy.core.multiarray._reconstruct``, its state set by
    BUILD; or protocol 5's ``_frombuffer``): shape, dtype and bytes, recorded and made an array of numbers by
    :func:`_arrays` after loading."""

    def __init__(self, shape: Any = (0,), dtype: Any = None, raw: Any = b"", fortran: Any = False):
        self.shape, self.dtype, self.raw, self.fortran = shape, dtype, raw, fortran

    def __setstate__(self, state: Any) -> None:  # (version, shape, dtype, Fortran order, bytes)
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _DtypeNamed)):
            raise _refused("sets an array's state to one not of numbers")
        _, self.shape, self.dtype, self.fortran, self.raw = state

    def array(self) -> np.ndarray:
        raw = self.raw.encode("latin1") if isinstance(self.raw, str) else self.raw  # Python 2's str: latin1
        shape = self.shape
        if not (isinstance(self.dtype, _DtypeNamed) and isinstance(raw, (bytes, bytearray))
                and isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise _refused("holds an array not of numbers")
        dtype = self.dtype.dtype()
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise _refused(f"holds an array of shape {shape} and {len(raw)} bytes")
        return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order="F" if self.fortran else "C").astype(
            dtype.newbyteorder("="))


def _reconstruct(subtype: Any, shape: Any, code: Any) -> _ArrayNamed:
    """numpy's ``_reconstruct(ndarray, (0,), b'b')`` as a CIFAR pickle calls it: an array whose state follows."""
    if subtype is not _ndarray:
        raise _refused(f"rebuilds a {type(subtype).__name__}, not a numpy.ndarray")
    return _ArrayNamed()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _ArrayNamed:
    """numpy's ``_frombuffer`` (protocol 5's arrays) as a CIFAR pickle calls it."""
    if not isinstance(dtype, _DtypeNamed):
        raise _refused("builds an array of no dtype of numbers")
    return _ArrayNamed(shape, dtype, bytes(buffer), order == "F")


def _ndarray(*args: Any, **kwargs: Any) -> None:
    """``numpy.ndarray``, named in a CIFAR pickle as :func:`_reconstruct`'s argument: never called (over the
    file's bytes, as objects, it would make pointers of them)."""
    raise _refused("calls numpy.ndarray")


def _arrays(obj: Any) -> Any:
    """``obj`` (a loaded CIFAR pickle) with each :class:`_ArrayNamed` made a numpy array of numbers."""
    if isinstance(obj, _ArrayNamed):
        return obj.array()
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_arrays(v) for v in obj]
    if isinstance(obj, _DtypeNamed):
        raise _refused("holds a dtype outside an array")
    return obj


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles what CIFAR's Python version holds (dicts, lists, strings, numbers, numpy arrays of numbers) and
    nothing else: another global (a function a crafted file would call) is refused, never looked up; numpy's
    names stand for records of this module's (:class:`_ArrayNamed`, :class:`_DtypeNamed`), numpy itself given
    only the bytes of an array of numbers, its shape and its dtype, once the file is read."""

    ALLOWED = {("numpy", "ndarray"): _ndarray, ("numpy", "dtype"): _DtypeNamed, ("_codecs", "encode"): codecs.encode,
               **{(f"numpy.{core}.multiarray", "_reconstruct"): _reconstruct for core in ("core", "_core")},
               **{(f"numpy.{core}.numeric", "_frombuffer"): _frombuffer for core in ("core", "_core")}}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR file does not hold")
        return self.ALLOWED[(module, name)]


def is_pickle(path: str) -> bool:
    """Whether ``path`` is a file that starts as a pickle of protocol 2 or later does (CIFAR's Python version:
    its binary records start with a label byte, below 100)."""
    try:
        with open(path, "rb") as f:
            return f.read(1) == b"\x80"
    except OSError:
        return False


def read_cifar_pickle(path: str, key: str) -> Any:
    """``key`` of the dict one of CIFAR's Python-version files holds (read with :class:`_CifarUnpickler`)."""
    try:
        with open(path, "rb") as f:
            content = _arrays(_CifarUnpickler(f, encoding="latin1").load())
    except OSError as e:
        raise DataError(f"CIFAR file {path}: {e.strerror or e}") from None
    except Exception as e:  # pickle's errors are of many kinds: a damaged or foreign file
        raise DataError(f"CIFAR file {path}: not a file of CIFAR's Python version ({type(e).__name__}: {e})") from None
    if not isinstance(content, dict) or key not in content:
        raise DataError(f"CIFAR file {path}: not a file of CIFAR's Python version (no {key!r} in it)")
    return content[key], content


def read_cifar_py(path: str, dataset: str = "cifar10") -> Tuple[np.ndarray, np.ndarray]:
    """:func:`read_cifar_bin` for a file of CIFAR's Python version (``data_batch_1``, ``test_batch``;
    CIFAR-100's ``train``, ``test``): the same images and labels (CIFAR-100's fine ones)."""
    hundred = dataset == "cifar100"
    name, key, classes = ("CIFAR-100", "fine_labels", 100) if hundred else ("CIFAR-10", "labels", 10)
    data, content = read_cifar_pickle(path, "data")
    labels = content.get(key)
    if labels is None:  # the other CIFAR's file, whose labels are under the other key
        other = "labels" if hundred else "fine_labels"
        hint = (f": a {'CIFAR-10' if hundred else 'CIFAR-100'} file? "
                f"(--dataset {'cifar10' if hundred else 'cifar100'})" if other in content else "")
        raise DataError(f"{name} file {path}: no {key!r} in it{hint}")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{name} file {path}: its 'data' is {shape}, not uint8 rows of 3,072 pixel bytes")
    try:  # as they are: numpy made floats, text and truth values int64 (1.5 read as 1, "3" as 3)
        values = np.asarray(labels)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{name} file {path}: its {key!r} are not whole numbers") from None
    if values.size and values.dtype.kind not in "iu":
        raise DataError(f"{name} file {path}: its {key!r} are not whole numbers ({values.dtype})")
    labels = values.astype(np.int64).reshape(-1)
    if len(labels) != len(data):
        raise DataError(f"{name} file {path}: {len(labels)} labels for {len(data)} images")
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise DataError(f"{name} file {path}: record {int(bad[0])} has {'fine ' if hundred else ''}label "
                        f"{int(labels[bad[0]])}, outside 0..{classes - 1} ({plural(int(bad.size), 'such record')})")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_file(path: str, dataset: str = "cifar10") -> Tuple[np.ndarray, np.ndarray]:
    """One file of a CIFAR split, of the binary version (``.bin``) or the Python one (pickles)."""
    if path.lower().endswith(".bin"):
        return read_cifar_bin(path, dataset)
    if is_pickle(path):
        return read_cifar_py(path, dataset)
    # A file of the Python version's names that is not a pickle: a copy cut short, or another file.
    name = "CIFAR-100" if dataset == "cifar100" else "CIFAR-10"
    if os.path.isdir(path):
        raise DataError(f"{name} file {path}: a folder, not a file")
    try:
        with open(path, "rb") as f:
            start = f.read(1)
    except OSError as e:
        raise DataError(f"{name} file {path}: cannot be read ({e.strerror or e})") from None
    raise DataError(f"{name} file {path}: " + ("empty (0 bytes)" if not start else
                    "not a pickle, as the files of CIFAR's Python version are (damaged, or another file)"))


def python_cifar_files(root: str, train: bool, dataset: str = "cifar10") -> List[str]:
    """The split's files of CIFAR's Python version in ``root`` or its ``cifar-10-batches-py`` (CIFAR-100:
    ``cifar-100-python``), as torchvision's CIFAR10 and CIFAR100 read them: ``data_batch_1`` ... and
    ``test_batch``; ``train`` and ``test``; [] for none. A folder where none of those files (either split's)
    is a pickle is not the Python version's; in one where some are, the others are the split's too, for
    :func:`read_cifar_file` to name (an empty or damaged copy is not left out without a word)."""
    sub = os.path.join(root, CIFAR_PY_FOLDERS["cifar100" if dataset == "cifar100" else "cifar10"])
    folder = sub if os.path.isdir(sub) else root
    if not os.path.isdir(folder):
        return []

    def split(train: bool) -> List[str]:
        if dataset == "cifar100":
            names = ["train" if train else "test"]
        elif train:
            names = sorted((n for n in os.listdir(folder) if re.fullmatch(r"data_batch_\d+", n)),
                           key=lambda n: int(n[len("data_batch_"):]))
        else:
            names = ["test_batch"]
        return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]

    files = split(train)
    if not any(is_pickle(f) for f in files + split(not train)):
        return []
    return files


def cifar_files(root: str, train: bool, dataset: str = "cifar10", quiet: bool = False) -> List[str]:
    """The ``.bin`` files of the train or eval split under ``root``.

    ``root`` is the seed's folder itself (``cifar-10-batches-bin`` for training, ``cifar-10-verify-bin``
    for evaluation) or the folder that holds both, or the official archive's (``cifar-10-batches-bin``,
    which holds both splits) or the folder that holds it; for CIFAR-100 (``dataset``) ``cifar-100-binary`` (its
    ``train.bin`` and ``test.bin``) or the folder that holds it. The other data set's files where these
    are not are named, with the ``--dataset`` that reads them. ``quiet``: no warning of files read under
    other names (:func:`load_cifar` says it; a second look would change the warnings' filters, and Python
    would say it again).
    """
    if not os.path.isdir(root):
        raise _not_a_cifar_folder(root, dataset)
    given = root
    if dataset == "cifar100":
        sub = os.path.join(root, CIFAR100_FOLDER)
        root = sub if os.path.isdir(sub) else root
        path = os.path.join(root, "train.bin" if train else "test.bin")
        pickles = [] if os.path.exists(path) else python_cifar_files(given, train, dataset)
        if pickles:
            return pickles
        if not os.path.exists(path):  # a folder of that name: read_cifar_bin says what it is
            raise DataError(f"dataset_path {root!r}: no CIFAR-100 {os.path.basename(path)} (the binary version's "
                            f"{CIFAR100_FOLDER}/train.bin and test.bin)"
                            f"{_other_cifar(root, 'cifar100') or _unread_cifar(root, 'cifar100')}")
        return [path]
    if _other_cifar(root, "cifar10"):  # CIFAR-100's files, and none of CIFAR-10's: not read as CIFAR-10's
        raise DataError(f"dataset_path {root!r}: no CIFAR-10 .bin files{_other_cifar(root, 'cifar10')}")
    sub = os.path.join(root, CIFAR_TRAIN_FOLDER if train else CIFAR_EVAL_FOLDER)
    archive = os.path.join(root, CIFAR_TRAIN_FOLDER)  # the official archive unpacks both splits into it
    pattern, other = ("data_batch_*.bin", "test_batch.bin") if train else ("test_batch.bin", "data_batch_*.bin")
    if os.path.isdir(sub):
        root = sub
    elif not train and not glob.glob(os.path.join(root, pattern)) and glob.glob(os.path.join(archive, pattern)):
        root = archive
    try:  # glob says nothing of a folder it cannot list: that is no "no .bin files found"
        os.listdir(root)
    except OSError as e:
        raise DataError(f"dataset_path {given!r}: {root} cannot be listed ({e.strerror or e})") from None
    files = sorted(glob.glob(os.path.join(root, pattern)))
    if not files:
        files = python_cifar_files(given, train, dataset)
        root = os.path.dirname(files[0]) if files else root
    if train and not quiet:
        _warn_missing_batches(root, files)
    if not files:
        # Files of other names: every .bin file but the other split's, said aloud, since nothing tells
        # a training file from an evaluation one then.
        # CIFAR-100's split names too (train.bin, test.bin), which a data set of CIFAR-10's records may take.
        theirs = set(glob.glob(os.path.join(root, other)) + glob.glob(os.path.join(root, "test.bin" if train
                                                                                   else "train.bin")))
        files = sorted(f for f in glob.glob(os.path.join(root, "*.bin")) if f not in theirs)
        if files and not quiet:
            warnings.warn(f"dataset_path {root!r}: no {pattern}; reading every other .bin file there for "
                          f"{'training' if train else 'evaluation'}: {', '.join(os.path.basename(f) for f in files)}",
                          DataWarning)
    if not files:
        # The seed's two folders, one given where the other split's is read: the folder that holds both.
        parent = os.path.dirname(os.path.abspath(root))
        beside = os.path.join(parent, CIFAR_TRAIN_FOLDER if train else CIFAR_EVAL_FOLDER)
        split_file = os.path.join(root, "test.bin" if train else "train.bin")  # the other split's by its name
        hint = (f"; {beside} beside it holds them: pass the folder that holds both, {parent}"
                if glob.glob(os.path.join(beside, pattern)) else
                f"; {os.path.basename(split_file)} there is taken for the {'evaluation' if train else 'training'} "
                f"split's file, by its name (CIFAR-100's), and not read for {'training' if train else 'evaluation'}"
                if os.path.isfile(split_file) else _unread_cifar(root, 'cifar10'))
        # Where the split was looked for, when that was more than the folder given (the seed's and the
        # official archive's sub-folders), so that a lone missing test_batch.bin is not read as "no data".
        looked = [f for f in (sub, archive) if os.path.isdir(f)] if root not in (sub, archive) else []
        where = f" (nor in {' or '.join(looked)})" if looked else ""
        raise DataError(f"dataset_path {root!r}: no CIFAR-10 .bin files ({pattern}) found{where}{hint}")
    return files


# The archives CIFAR's binary versions are downloaded as, and the folders they unpack to.
CIFAR_ARCHIVES = {"cifar10": ("cifar-10-binary.tar.gz", CIFAR_TRAIN_FOLDER),
                  "cifar100": ("cifar-100-binary.tar.gz", CIFAR100_FOLDER)}
# Every archive the CIFARs are downloaded as (the Python versions are torchvision's), and its folder.
CIFAR_DOWNLOADS = dict([*CIFAR_ARCHIVES.values(), ("cifar-10-python.tar.gz", CIFAR_PY_FOLDERS["cifar10"]),
                        ("cifar-100-python.tar.gz", CIFAR_PY_FOLDERS["cifar100"])])


def _not_a_cifar_folder(root: str, dataset: str) -> DataError:
    """The error for a dataset_path that is not a folder: missing, the archive as downloaded, one ``.bin``
    file (whose folder is what is read: a split may be several files), or another file."""
    name = "CIFAR-100" if dataset == "cifar100" else "CIFAR-10"
    # The archive's own folder where it is one of CIFAR's by name (the other data set's, given by mistake too).
    archive, folder = next((a for a in CIFAR_DOWNLOADS.items() if a[0] == os.path.basename(root)),
                           CIFAR_ARCHIVES["cifar100" if dataset == "cifar100" else "cifar10"])
    if not os.path.exists(root):
        from .checkpoint import unexpanded_home

        home = unexpanded_home(root, read=True)
        return DataError(f"dataset_path {root!r} does not exist" + (f" (it {home})" if home else ""))
    lower = root.lower()
    if lower.endswith((".tar.gz", ".tgz", ".tar")):
        where = os.path.dirname(os.path.abspath(root))
        return DataError(f"dataset_path {root!r} is an archive, which is not read as it is: unpack it "
                         f"(tar -xf {root} -C {where}) and pass the folder it unpacks to "
                         f"({os.path.join(where, folder)} for {archive})")
    if lower.endswith(".bin"):
        one, files = "one .bin file", ("train.bin and test.bin" if dataset == "cifar100"
                                       else "data_batch_*.bin and test_batch.bin")
    elif is_pickle(root):
        one, files = "one file of CIFAR's Python version", ("train and test" if dataset == "cifar100"
                                                            else "data_batch_1 ... and test_batch")
    else:
        one = files = ""
    if one:
        return DataError(f"dataset_path {root!r} is {one}: pass the folder that holds it, "
                         f"{os.path.dirname(os.path.abspath(root))} (its {files} are the training and evaluation "
                         f"splits)")
    return DataError(f"dataset_path {root!r} is a file, not a folder of {name}'s .bin files ({archive} unpacked)")


def _unread_cifar(root: str, dataset: str) -> str:
    """For a folder without CIFAR ``dataset``'s files of the split read: the words naming what it holds instead
    (the other CIFAR's Python version; this one's without the split's files; an archive not unpacked), or ""."""
    def there(*names: str) -> bool:
        return all(os.path.isfile(os.path.join(root, n)) for n in names)

    # The Python versions: the folders they unpack to, or one of them itself (pickles without a suffix).
    ten = (os.path.isdir(os.path.join(root, CIFAR_PY_FOLDERS["cifar10"])) or there("data_batch_1")
           or there("test_batch"))
    hundred = (os.path.isdir(os.path.join(root, CIFAR_PY_FOLDERS["cifar100"])) or there("train", "meta")
               or there("test", "meta"))
    if dataset == "cifar100" and ten and not hundred:
        return f": it holds CIFAR-10's Python version (pickles, {CIFAR_PY_FOLDERS['cifar10']}): --dataset cifar10"
    if dataset != "cifar100" and hundred and not ten:
        return f": it holds CIFAR-100's Python version (pickles, {CIFAR_PY_FOLDERS['cifar100']}): --dataset cifar100"
    if hundred if dataset == "cifar100" else ten:
        names = "train and test" if dataset == "cifar100" else "data_batch_1 ... and test_batch"
        return f": its Python version (pickles, {CIFAR_PY_FOLDERS[dataset]}) is there, without this split's ({names})"
    packed = [a for a in CIFAR_DOWNLOADS if os.path.isfile(os.path.join(root, a))]
    if packed:
        return f": it holds {packed[0]}, not unpacked: tar -xf {os.path.join(root, packed[0])} -C {root}"
    if holds_class_folders(root):
        # A timm or torchvision user's first run on their photos: --dataset's default is cifar10.
        return ": it holds folders of images (an ImageNet-style folder): --dataset imagenet2012"
    return ""


def holds_cifar_split(root: str, dataset: str) -> bool:
    """Whether CIFAR ``dataset``'s training files are found under ``root`` (as :func:`cifar_files` finds them)."""
    try:
        return bool(cifar_files(root, True, dataset, quiet=True))
    except (DataError, OSError):
        return False


def holds_class_folders(root: str) -> bool:
    """Whether ``root`` looks like an image folder: a sub-folder (or train/'s or val/'s) holding an image file
    directly. A look at the names only, for an error's hint: at most 50 sub-folders of a folder, found by their
    directory entries (no stat of each file: a flat folder of a million images costs one listing)."""
    def images_in(folder: str) -> bool:
        try:
            with os.scandir(folder) as entries:
                return any(is_image_name(e.name) for e in entries)
        except OSError:
            return False

    def subfolders(folder: str) -> List[str]:
        found: List[str] = []
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    try:
                        if e.is_dir():
                            found.append(e.path)
                    except OSError:
                        continue
                    if len(found) == 50:
                        break
        except OSError:
            pass
        return sorted(found)

    top = subfolders(root)
    return any(images_in(c) for c in top) or any(images_in(c) for f in top for c in subfolders(f))


def _cifar_held(root: str) -> str:
    """The CIFAR (cifar10, cifar100) whose files alone folder ``root`` holds, else ""."""
    return next((d for d in ("cifar10", "cifar100") if other_cifar(root, "cifar100" if d == "cifar10" else "cifar10")
                 == d), "")


def _cifar_hint(root: str) -> str:
    """For an image folder without images: "; it holds CIFAR-10's files: --dataset cifar10" (or CIFAR-100's)
    where it holds one CIFAR's files alone, else ""."""
    cifar = _cifar_held(root)
    return f"; it holds {cifar_name(cifar)}'s files: --dataset {cifar}" if cifar else ""


def _cifar_binaries_note(root: str) -> str:
    """For an image folder whose class folders are not the model's: "; it holds CIFAR-10's files, not class
    folders of images" where its folders are one CIFAR's (cifar-10-batches-bin, ...), which read as classes named
    after them; else ""."""
    cifar = _cifar_held(root)
    return f"; it holds {cifar_name(cifar)}'s files, not class folders of images" if cifar else ""


def _warn_missing_batches(root: str, files: Sequence[str]) -> None:
    """A training split whose data_batch_N.bin numbers skip one (1, 2, 4, 5) has lost a file, which
    training would otherwise go on without, on a fifth less data and said nowhere; so has one of the official
    data set's files (10,000 records each) without its last (1 to 3 of 5). Another file the pattern takes
    (``data_batch_1 (1).bin``, a copy's name) is read too, and said."""
    matched = [(f, re.fullmatch(r"data_batch_(\d+)(\.bin)?", os.path.basename(f))) for f in files]
    found = [m for _, m in matched if m]
    numbers = sorted(int(m.group(1)) for m in found)
    suffix = found[0].group(2) or "" if found else ""  # the Python version's have none
    official = bool(found) and suffix == ".bin" and all(
        os.path.getsize(f) == CIFAR_OFFICIAL_BATCH * CIFAR_RECORD for f, m in matched if m)
    last = max(numbers[-1], CIFAR_OFFICIAL_BATCHES) if official else numbers[-1] if numbers else 0
    missing = sorted(set(range(1, last + 1)) - set(numbers))
    others = [os.path.basename(f) for f, m in matched if not m]
    if found and others:
        warnings.warn(f"dataset_path {root!r}: {', '.join(others)} read as training data too, beside "
                      f"{', '.join(m.group(0) for m in found)} (a copy's name? remove it if it is one)", DataWarning)
    if missing:
        warnings.warn(f"dataset_path {root!r}: {', '.join(f'data_batch_{n}{suffix}' for n in missing)} missing "
                      f"(found {', '.join(f'data_batch_{n}{suffix}' for n in numbers)}); training reads the "
                      f"{len(numbers)} there", DataWarning)


def _other_cifar(root: str, dataset: str) -> str:
    """For a folder without ``dataset``'s CIFAR files: the words naming the other CIFAR's (its folders or
    files there) and the --dataset that reads them, or "" where there are none, or ``dataset``'s too."""
    other = other_cifar(root, dataset)
    if other and (python_cifar_files(root, True, other) or python_cifar_files(root, False, other)):
        return (f": it holds {cifar_name(other)}'s Python version (pickles, {CIFAR_PY_FOLDERS[other]}): "
                f"--dataset {other}")
    if other == "cifar100":
        return ": it holds CIFAR-100's binary version (train.bin, test.bin): --dataset cifar100"
    if other == "cifar10":
        return ": it holds CIFAR-10's (data_batch_*.bin, test_batch.bin): --dataset cifar10"
    return ""


def other_cifar(root: str, dataset: str) -> str:
    """The other CIFAR (``cifar10`` or ``cifar100``) whose files (binary or Python version) folder ``root`` holds
    where it holds none of CIFAR ``dataset``'s; "" otherwise."""
    def holds(folder: str, *patterns: str) -> bool:
        return any(glob.glob(os.path.join(folder, p)) for p in patterns)

    def cifar100_sized(path: str) -> bool:  # not CIFAR-10 records in files of these names (read as any .bin)
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        return size > 0 and size % CIFAR100_RECORD == 0 and size % CIFAR_RECORD != 0

    if not os.path.isdir(root):
        return ""
    tens = [root] + [os.path.join(root, f) for f in (CIFAR_TRAIN_FOLDER, CIFAR_EVAL_FOLDER)]
    ten = any(holds(f, "data_batch_*.bin", "test_batch.bin") for f in tens)
    hundred = any(cifar100_sized(os.path.join(f, name)) for f in (root, os.path.join(root, CIFAR100_FOLDER))
                  for name in ("train.bin", "test.bin"))
    ten = ten or any(python_cifar_files(root, train) for train in (True, False))
    hundred = hundred or any(python_cifar_files(root, train, "cifar100") for train in (True, False))
    if dataset == "cifar10" and hundred and not ten:
        return "cifar100"
    if dataset == "cifar100" and ten and not hundred:
        return "cifar10"
    return ""


def cifar_record_names(root: str, train: bool, dataset: str = "cifar10") -> List[str]:
    """A name for each record :func:`load_cifar` reads, in its order: its file's name and its place there
    (``test_batch.bin#17``)."""
    record = CIFAR100_RECORD if dataset == "cifar100" else CIFAR_RECORD

    def count(path: str) -> int:  # a pickle's records are counted by reading it (the Python version's)
        if path.lower().endswith(".bin"):
            return os.path.getsize(path) // record
        return len(read_cifar_file(path, dataset)[1])

    files = cifar_files(root, train, dataset, quiet=True)
    return [f"{os.path.basename(f)}#{k}" for f in files for k in range(count(f))]


# The class names the binary versions ship beside their .bin files, one per line in label order.
CIFAR_NAMES_FILES = {"cifar10": "batches.meta.txt", "cifar100": "fine_label_names.txt"}
# The Python versions': a pickle beside the split's files, and the key of its list of names.
CIFAR_PY_NAMES_FILES = {"cifar10": ("batches.meta", "label_names"), "cifar100": ("meta", "fine_label_names")}


def cifar_class_names(root: str, train: bool, dataset: str = "cifar10",
                      labels: Optional[torch.Tensor] = None) -> Optional[List[str]]:
    """The class names of the split's labels, from the names file its archive ships
    (:data:`CIFAR_NAMES_FILES`) in the folder of its ``.bin`` files, else in ``root`` (the seed's
    ``cifar-10-verify-bin`` is a copy of ``test_batch.bin`` alone, so for it ``cifar-10-batches-bin``
    beside it is looked in too); None where there is none. A file that does not name each of the format's
    classes once (10 or 100 distinct non-empty lines; fewer, down to the highest of ``labels`` plus one,
    for data of one's own in CIFAR's format) is named in a warning and not used. The names label the
    numbers in the files; a model of fewer outputs takes the first ones (``train``)."""
    first = cifar_files(root, train, dataset, quiet=True)[0]
    folder = os.path.abspath(os.path.dirname(first))
    pickles = not first.lower().endswith(".bin")  # the Python version: its names in a pickle beside its files
    name = CIFAR_PY_NAMES_FILES.get(dataset, ("", ""))[0] if pickles else CIFAR_NAMES_FILES.get(dataset, "")
    places = [folder] if pickles else [folder, os.path.abspath(root)]
    if os.path.basename(folder) == CIFAR_EVAL_FOLDER:
        places.append(os.path.join(os.path.dirname(folder), CIFAR_TRAIN_FOLDER))
    path = next((os.path.join(p, name) for p in places if os.path.isfile(os.path.join(p, name))), None)
    if path is None:
        return None
    most = 100 if dataset == "cifar100" else 10
    least = int(labels.max()) + 1 if labels is not None and len(labels) else most
    try:
        if pickles:
            key = CIFAR_PY_NAMES_FILES[dataset][1]
            listed = read_cifar_pickle(path, key)[0]
            if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
                raise DataError(f"its {key!r} is not a list of names")
            names = [n.strip() for n in listed]
        else:
            with open(path, "rb") as f:
                names = [line.strip() for line in f.read().decode("utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        problem = getattr(e, "strerror", None) or f"not UTF-8 text ({e.reason})"
    except DataError as e:
        problem = str(e).replace(f"CIFAR file {path}: ", "")
    else:
        while names and not names[-1]:
            names.pop()
        if any(not n for n in names):
            problem = f"line {names.index('') + 1} is empty"
        elif len(set(names)) != len(names):
            problem = f"{next(n for n in names if names.count(n) > 1)!r} is named twice"
        elif not least <= len(names) <= most:
            problem = (f"{len(names)} names, where the labels need {least}"
                       + (f" to {most}" if least < most else ""))
        else:
            return names
    warnings.warn(f"{path}: {problem}; the classes are left unnamed (their numbers)", DataWarning)
    return None


def available_memory() -> Optional[int]:
    """The bytes of memory the kernel counts as available (``MemAvailable``); None where it does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_cifar(root: str, train: bool, dataset: str = "cifar10") -> Tuple[torch.Tensor, torch.Tensor]:
    files = cifar_files(root, train, dataset)
    # Read whole, then joined: twice their bytes at once. Five 6 GB files (sparse, 20 KB on disk) were read until the
    # kernel killed the process, with no word, whatever --images data-stats was given.
    total = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    free = available_memory()
    if free is not None and 2 * total > free:
        raise DataError(f"{dataset} data {root}: its {'training' if train else 'evaluation'} files hold {total:,} "
                        f"bytes, read into memory whole and joined (twice that), more than the {free:,} bytes "
                        f"available (CIFAR-10's hold 184 MB): files of another data set, or damaged (sparse)?")
    parts = [read_cifar_file(f, dataset) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


# ---------------------------------------------------------------------------------------------------
# sampling

def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A sample's augmentation seed from the run's seed, the epoch and its position in the epoch."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + position


def seed_eval_count(size: int, batch_size: int, train: bool, drop_last: bool,
                    num_shards: int) -> Tuple[Optional[int], bool]:
    """Evaluation's ``drop_last`` (``eval_drop_last``: the seed's count) in a distributed run: the images of one
    process's full batches, the first ``size // batch_size * batch_size`` of the split's order, which the shards
    then share, each keeping its own last partial batch; so every process count evaluates the same images as
    one process (none, where the split is smaller than a batch). Returns :class:`ShardSampler`'s ``keep`` and
    the loader's ``drop_last`` (None and ``drop_last`` as they are for training, one process, or every image)."""
    if train or not drop_last or num_shards == 1:
        return None, drop_last
    return size // batch_size * batch_size, False


def split_sampler(size: int, batch_size: int, train: bool, drop_last: bool, shuffle: Optional[bool], seed: int,
                  num_shards: int, shard_id: int, repeats: int, class_balance: float,
                  labels: Callable[[], Any]) -> Tuple["ShardSampler", bool]:
    """The :class:`ShardSampler` of a split of ``size`` samples as every loader builds it (training: even
    shards, ``repeats``, ``class_balance`` over ``labels()``, asked for only then; evaluation: every sample,
    the seed's count under ``drop_last``: :func:`seed_eval_count`), and the loader's ``drop_last``."""
    if train and 1 < repeats and 0 < size <= repeats:  # its index tensor took repeats entries: a traceback past int64
        raise ConfigError(f"aug_repeats {repeats} is not below the {size} training samples: every epoch would train "
                          f"on copies of one (timm's and DeiT's is 3)")
    keep, drop_last = seed_eval_count(size, batch_size, train, drop_last, num_shards)
    sampler = ShardSampler(size, shuffle=train if shuffle is None else shuffle, seed=seed, num_shards=num_shards,
                           shard_id=shard_id, even=train, repeats=repeats if train else 1,
                           labels=labels() if class_balance else None, class_balance=class_balance, keep=keep,
                           all_labels=labels)
    return sampler, drop_last


class ShardSampler(Sampler):
    """Indices of one shard of a data set, reshuffled each epoch from the run's seed.

    Every shard sees the same permutation and takes every ``num_shards``-th element from ``shard_id``
    (MindSpore's ``num_shards``/``shard_id``). With ``even``, each shard gets ``N // num_shards``
    samples (training); without, the shards cover every sample exactly once (evaluation).
    Yields ``(index, augmentation seed)`` pairs.

    ``repeats`` R > 1 (training's ``aug_repeats``: repeated augmentation, Hoffer et al. 2019, as DeiT,
    timm's ``--aug-repeats`` and torchvision's ``--ra-sampler``): each index of the permutation is taken
    R times in a row, at R consecutive positions of the epoch, which keeps its length: N positions, N / R
    images seen R times each. Each copy has its own position, hence its own augmentation seed; with R
    shards (processes) the copies of an image go one to each, in the same step, otherwise into one batch.

    ``class_balance`` P above 0 with the samples' ``labels`` (training's class-balanced sampling): a
    shuffled epoch draws its N positions with replacement instead of a permutation, each a class with
    probability in proportion to its image count ** (1 - P), then one of its images uniformly (so an image
    of a class of n has weight n ** -P); from the same seed and epoch alike in every shard, so the shards
    still split one order. Two uniform draws a position (``torch.rand``): no limit on the number of
    images, as ``torch.multinomial``'s 2**24 categories would be.
    """

    def __init__(self, size: int, shuffle: bool, seed: int, num_shards: int = 1, shard_id: int = 0,
                 even: bool = True, repeats: int = 1, labels: Optional[Sequence[int]] = None,
                 class_balance: float = 0.0, keep: Optional[int] = None,
                 all_labels: Optional[Callable[[], Any]] = None):
        if repeats > 1 and not even:
            raise ValueError("repeats is for training's sampler (even shards), not evaluation's")
        if keep is not None and even:
            raise ValueError("keep is for evaluation's sampler (uneven shards), not training's")
        # Evaluation's first ``keep`` positions only (:func:`seed_eval_count`), split among the shards.
        self.keep = keep
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.num_shards, self.shard_id, self.even = num_shards, shard_id, even
        self.repeats = repeats
        self.class_balance = class_balance if labels is not None and shuffle and even else 0.0  # training's only
        self.labels = labels
        self.all_labels = all_labels  # every sample's label, in order, when asked for (a job's ranks compare them)
        if self.class_balance:
            labels = torch.as_tensor(labels, dtype=torch.long).cpu()
            if len(labels) != size:
                raise ValueError(f"labels: {len(labels)} for {size} samples")
            counts = torch.bincount(labels)  # its last class holds the highest label: never empty
            self._members = torch.argsort(labels, stable=True)  # the samples, class by class
            self._first = torch.cumsum(counts, 0) - counts  # where each class's begin in _members
            self._counts = counts
            self._class_cum = torch.cumsum(counts.double().pow(1 - self.class_balance) * (counts > 0), 0)
        self.epoch = 0
        self.start = 0  # the position this shard's next pass begins at (a resumed epoch)
        # Set: the items carry the image size too, (index, seed, size), for workers whose dataset was made
        # with another (progressive resizing; persistent workers keep the dataset they were given).
        self.image_size: Optional[int] = None

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The epoch whose permutation the next pass follows, beginning at its ``start``-th position:
        the positions before are not visited (nothing is read or decoded for them), those after keep
        their indices and augmentation seeds."""
        self.epoch, self.start = epoch, start

    def indices(self) -> torch.Tensor:
        if self.shuffle and self.class_balance:
            g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
            u = torch.rand(self.size, generator=g, dtype=torch.float64) * self._class_cum[-1]
            cls = torch.searchsorted(self._class_cum, u, right=True).clamp_max_(len(self._counts) - 1)
            within = (torch.rand(self.size, generator=g, dtype=torch.float64) * self._counts[cls]).long()
            order = self._members[self._first[cls] + torch.minimum(within, self._counts[cls] - 1)]
        elif self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
            order = torch.randperm(self.size, generator=g)
        else:
            order = torch.arange(self.size)
        if self.repeats > 1:
            order = order[: -(-self.size // self.repeats)].repeat_interleave(self.repeats)
        if self.even:
            order = order[: self.size // self.num_shards * self.num_shards]
        if self.keep is not None:
            order = order[: self.keep]
        return order[self.shard_id::self.num_shards]

    def __len__(self) -> int:
        if self.even:
            return self.size // self.num_shards
        return len(range(self.shard_id, self.size if self.keep is None else self.keep, self.num_shards))

    def seeds(self) -> torch.Tensor:
        """The augmentation seed of each of this shard's samples (what :meth:`__iter__` yields) as int64:
        :func:`sample_seed` modulo 2**64 in two's complement: the seed itself for run seeds up to about
        920,000, and defined for every run seed the configuration takes (up to 2**32 - 1), although
        sample seeds outgrow int64 (and, past run seeds of about 1.84 million, uint64)."""
        positions = np.arange(len(self), dtype=np.uint64) * np.uint64(self.num_shards) + np.uint64(self.shard_id)
        first = np.uint64(sample_seed(self.seed, self.epoch, 0) % 2**64)
        return torch.from_numpy((positions + first).view(np.int64))  # uint64 arrays wrap modulo 2**64

    def __iter__(self):
        order = self.indices().tolist()
        size = () if self.image_size is None else (self.image_size,)
        for pos in range(self.start, len(order)):
            yield (order[pos], sample_seed(self.seed, self.epoch, pos * self.num_shards + self.shard_id), *size)


def balance_line(labels: Union[Sequence[int], torch.Tensor], power: float, repeats: int = 1) -> str:
    """What ``class_balance`` ``power`` makes of the classes' expected shares of an epoch's draws (of the
    data set's ``labels``; ``repeats``: aug_repeats, each draw taken that many times), said once."""
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    counts = torch.bincount(labels).double()
    counts = counts[counts > 0]
    drawn = counts.pow(1 - power)
    held, share = counts / counts.sum(), drawn / drawn.sum()
    draws = -(-len(labels) // repeats)
    how = f"each class in proportion to its image count ** {1 - power:g}" if power < 1 else "every class alike"
    said = (f"class_balance {power:g}: an epoch's {draws} draws (with replacement"
            + (f", each taken {repeats} times" if repeats > 1 else "") + f") take {how}: ")
    if torch.allclose(share, held):
        return said + (f"the {len(counts)} classes hold as many images each, so their shares stay as they are; "
                       f"only the draws with replacement differ (some images come more than once an epoch)")
    return (said + f"the {len(counts)} classes' expected shares {float(share.min()):.2%} to {float(share.max()):.2%} "
            f"of the draws, against {float(held.min()):.2%} to {float(held.max()):.2%} of the images")


# ---------------------------------------------------------------------------------------------------
# loaders

def end_workers(iterator: Any, kill: bool = False) -> None:
    """End the worker processes of a DataLoader's ``iterator`` (one of none: nothing to do) as the DataLoader's own
    clean-up does, and kill any that did not end then: a worker hung or stopped (SIGSTOP, a stalled read) took
    its SIGTERM from PyTorch's clean-up only once continued, and multiprocessing's exit waited for it for ever
    (a run stopped by SIGTERM during an evaluation saved its checkpoint and never exited: helper-373).

    ``kill``: the workers are known to hang (a pass left its wait for them, :meth:`stopping.StopRequest.batch_wait`):
    killed first, out of PyTorch's watch for workers that die (its SIGCHLD handler raises in the main thread), where
    its clean-up gave each one that never ends 5 s."""
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is None:
        return
    forget = getattr(torch._C, "_remove_worker_pids", None)  # PyTorch's own: without it, its clean-up as ever
    if kill and forget is not None:
        if getattr(iterator, "_worker_pids_set", False):
            forget(id(iterator))
            iterator._worker_pids_set = False
        for worker in getattr(iterator, "_workers", ()):
            with contextlib.suppress(OSError, ValueError):  # gone already, or its Process closed
                worker.kill()
        for worker in getattr(iterator, "_workers", ()):
            with contextlib.suppress(OSError, ValueError, AssertionError):
                worker.join(timeout=1)
    shutdown()  # the workers end at once; one that does not, after PyTorch's time-outs (5 s, and 5 s)
    for worker in getattr(iterator, "_workers", ()):
        if worker.is_alive():
            worker.kill()
            worker.join(timeout=1)


class DeviceLoader:
    """Common face of the loaders: iterate ``(images, labels)`` on ``device``; ``set_epoch``; ``len``.

    ``len`` is the number of batches of a whole epoch. ``set_epoch(epoch, start_batch)`` makes the next
    pass begin at batch ``start_batch`` of that epoch (resuming inside an epoch) with the very batches
    and augmentations an uninterrupted pass would give from there. Folder loaders may yield batches
    smaller than ``batch_size`` (even empty ones) where files could not be read (``bad_samples``).
    """

    num_samples: int
    classes: Optional[List[str]] = None
    num_classes: int = 0  # the labels are 0 .. num_classes - 1 (an image folder's class list, CIFAR's labels)
    labels_in: str = "its class folders"  # where the labels come from, for messages
    bad_samples: Optional["BadSamples"] = None
    samples: Optional[Sequence[Tuple[str, int]]] = None  # the image loaders' (path, label) pairs (_find_images)
    loader: Optional[DataLoader] = None  # the folder loaders' DataLoader, whose persistent workers close() ends

    def close(self, kill: bool = False) -> None:
        """Ends the loader's worker processes now (none: nothing to do); a later pass starts new ones. ``kill``:
        at once, without waiting for them (:func:`end_workers`), for workers known to hang.
        A pass under way is to be left first. Used as a context manager, the loader is closed on leaving
        the block.

        Persistent workers otherwise live until their DataLoader is garbage-collected, which a traceback
        or a reference cycle can put off (this test suite once lost 40 s to loaders whose workers, shut
        down from the garbage collector, ran into PyTorch's time-outs). At the interpreter's exit
        multiprocessing would wait for them for ever: it sends them one SIGTERM, which they take for a
        scheduler's and serve on (:func:`stopping.ignore_in_worker`). Loaders still open then are closed
        first, by a finalizer multiprocessing runs before that (:func:`_close_open_loaders`)."""
        it = getattr(self.loader, "_iterator", None)
        if it is not None:
            self.loader._iterator = None
            end_workers(it, kill)

    def __enter__(self) -> "DeviceLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sample_names(self) -> List[Tuple[int, str]]:
        """This process's samples in the order an unshuffled pass yields them (the evaluation split's):
        each one's place in the whole split and its name (an image's path; a CIFAR record's file and place
        in it, ``test_batch.bin#17``), for per-image results. An unreadable file's is among them, though
        the pass leaves it out (``bad_samples``)."""
        return [(i, self._name(i)) for i in self.sampler.indices().tolist()]

    def _name(self, i: int) -> str:
        return self.samples[i][0]

    def split_names(self) -> List[str]:
        """Every sample's name in the whole split (every process's), in order, as the split's own: a path
        under the folder or archive read, relative to it (a job's machines may mount it elsewhere)."""
        root = getattr(self, "root", "")
        prefix = os.path.join(root, "") if root else ""  # one separator after it, whether root ends in one or not
        names = [self._name(i) for i in range(self.sampler.size)]
        return [os.path.relpath(n, root) if prefix and n.startswith(prefix) else n for n in names]

    def take_first(self, count: int) -> None:
        """An evaluation loader's passes yield the first ``count`` samples of its order only (data-stats'
        random sample of a split): nothing past them is read or decoded, where a pass its caller stopped
        after ``count`` images had decoded the rest of their batch and the batches its workers read ahead."""
        if self.sampler.even:
            raise ValueError("take_first is for evaluation's loaders (uneven shards), not training's")
        # Never past the split's end (the sampler's length counts positions up to ``keep``).
        self.sampler.keep = min(k for k in (self.sampler.keep, count, self.sampler.size) if k is not None)
        self.num_samples = len(self.sampler)
        if self.loader is not None:
            self._len = len(self.loader)

    def _find_images(self, root: str, classes: Optional[Sequence[str]], holdout: Optional["Holdout"],
                     labels_file: str) -> Sequence[Tuple[str, int]]:
        """The image loaders' samples (:func:`find_images`), kept as ``samples``, with ``classes``,
        ``num_classes`` and ``labels_in`` set from them."""
        samples, self.classes = find_images(root, classes, holdout, labels_file)
        self.samples = samples = as_samples(samples)  # FileSamples or ArchiveImages: held as arrays
        self.root = root  # the split read: a folder of class folders, an archive, shards
        self.num_classes = len(self.classes) if self.classes is not None else label_count(samples)
        if labels_file:
            self.labels_in = f"eval_labels {labels_file}"
        elif self.classes is None:
            self.labels_in = "its shards' .cls files"
        return samples

    def _close_at_exit(self) -> None:
        """A loader with worker processes: closed at the interpreter's exit, for as long as it lives
        (a pass after ``close()`` starts workers again)."""
        if self.loader is not None and self.loader.num_workers > 0:
            _WITH_WORKERS.add(self)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        raise NotImplementedError

    def set_image_size(self, size: int) -> None:
        """The size of the images of the passes from the next one on (training's progressive resizing)."""
        self.image_size = size

    def __len__(self) -> int:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError


_WITH_WORKERS: "weakref.WeakSet[DeviceLoader]" = weakref.WeakSet()


def _close_open_loaders() -> None:
    # Threads run_ahead left running (a pass left open at exit) are told to stop first and waited for after: a
    # daemon thread still in a torch operation while the interpreter ends aborted it ("terminate called without
    # an active exception", once in a clean clone's run of the GPU pipeline's exit test).
    # They are waited for while the workers still serve: one waiting for a batch takes it and stops. Waited for
    # after the loaders had closed, such a thread waited out PyTorch's queue time-out, and this handler (which
    # runs twice) gave it 10 s each time: a script left a pass open exited 20 s late. 10 s in all, once.
    ahead = list(_RUNNING_AHEAD)
    _RUNNING_AHEAD.difference_update(ahead)
    for stop, _ in ahead:
        stop.set()
    deadline = time.monotonic() + 10
    for _, thread in ahead:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    for loader in list(_WITH_WORKERS):
        loader.close()  # nothing to do for one closed already
    for _, thread in ahead:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


def kill_open_loader_workers() -> None:
    """SIGKILL the worker processes of every loader still open, for a process that ends at once (``os._exit``:
    the stop watchdog's exit after its grace, a second Ctrl-C), whose loaders never close. A worker stopped
    (SIGSTOP) takes no other signal: orphaned, it stayed stopped for ever (a running one notices its parent
    gone; a stopped one cannot)."""
    for loader in list(_WITH_WORKERS):
        for worker in getattr(getattr(loader.loader, "_iterator", None), "_workers", ()):
            with contextlib.suppress(OSError, ValueError):  # gone already, or its Process closed
                worker.kill()


# Registered twice, so that it runs first whichever order the exit handlers are in. PyTorch shuts down no
# workers once its own handler has set `python_exit_status`, and multiprocessing's handler terminates the
# workers and waits for them. Both are registered with atexit (last registered, first run) when their
# modules are imported, or later (multiprocessing's logger moves its handler to the end).
# - As an atexit handler: registered after PyTorch's (this module imports torch), so it runs before it.
# - As multiprocessing's finalizer: when multiprocessing's handler comes first, it runs this before it
#   terminates its children, and before its queues' finalizers (priority 10) stop the threads that tell
#   the workers to end. A worker process never runs it: multiprocessing clears its finalizers there.
# The second call finds the loaders closed. A script that imported multiprocessing's queues before torch
# hung at its exit when only the finalizer was registered.
atexit.register(_close_open_loaders)
multiprocessing.util.Finalize(None, _close_open_loaders, exitpriority=100)


class CifarLoader(DeviceLoader):
    """CIFAR-10 (or CIFAR-100) held whole as uint8 on ``device``; the seed's transforms run batched there.

    train: RandomCrop 32 with 4 px zero padding, flip p=0.5, Resize to ``image_size``, Normalize.
    eval: Resize, Normalize.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool,
                 image_size: int, device: torch.device, seed: int, drop_last: bool = True,
                 num_shards: int = 1, shard_id: int = 0, channels_last: bool = False, flip: bool = True,
                 shuffle: Optional[bool] = None, auto_augment: Optional[Augment] = None, repeats: int = 1,
                 class_balance: float = 0.0, normalisation: Optional[Normalisation] = None, vflip: float = 0.0,
                 names: Optional[Callable[[], Sequence[str]]] = None, classes: Optional[Sequence[str]] = None):
        self.auto_augment = auto_augment if train else None
        self.vflip = vflip
        self.names = names  # each record's name, worked out when asked for (cifar_record_names); None: "record N"
        self.classes = list(classes) if classes else None  # the names file's (cifar_class_names), else None
        self.num_classes = int(labels.max()) + 1 if len(labels) else 0
        self.labels_in = "its .bin files"
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size, self.train, self.image_size = batch_size, train, image_size
        self.sampler, drop_last = split_sampler(len(labels), batch_size, train, drop_last, shuffle, seed, num_shards,
                                                shard_id, repeats, class_balance, lambda: labels)
        self.device, self.drop_last, self.flip = device, drop_last, flip
        self.normalize = T.Normalize(*(normalisation or (T.CIFAR_MEAN, T.CIFAR_STD)), device, channels_last)
        self.num_samples = len(self.sampler)
        self.seed = seed
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.start_batch = start_batch

    def sample_names(self) -> List[Tuple[int, str]]:
        names = self.split_names()
        return [(i, names[i]) for i in self.sampler.indices().tolist()]

    def split_names(self) -> List[str]:
        return list(self.names()) if self.names is not None else [f"record {i}" for i in range(self.sampler.size)]

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self.sampler.indices().to(self.device)
        if self.train:
            # Offsets and flips from each sample's seed (its global position in the epoch), not from one
            # stream per process: a sample is augmented alike whatever the number of processes, and a
            # resumed epoch starting at any batch gets what an uninterrupted one gives it there.
            seeds = self.sampler.seeds()
            u = T.seeded_uniform(seeds.to(self.device), 3)
            offsets = (u[:, :2] * (2 * CIFAR_CROP_PADDING + 1)).long()
            flips = u[:, 2] < 0.5
            upside_down = T.vflips(seeds, self.vflip).to(self.device) if self.vflip else None
            plans = self.auto_augment.plans(seeds, *self.images.shape[-2:]) if self.auto_augment else []
        for b in range(self.start_batch, len(self)):
            part = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = order[part]
            x = self.images[idx]
            if self.train:
                x = T.crop_at(x, CIFAR_CROP_PADDING, offsets[part, 0], offsets[part, 1])
                if self.flip:
                    x = T.flip_where(x, flips[part])
                if upside_down is not None:
                    x = T.flip_where(x, upside_down[part], dim=-2)
                if plans:  # at 32x32, before the resize, as torchvision's CIFAR-10 recipes
                    x = self.auto_augment.apply_plans(x, plans, part)
            x = T.batch_resize_uint8(x, self.image_size, torch.float32)  # rounded as uint8, normalised next
            yield self.normalize(x), self.labels[idx]


def is_image_name(name: str) -> bool:
    """An image file's name (by extension, :data:`IMAGE_EXTENSIONS`), not a hidden one (macOS ``._*``)."""
    return not is_hidden_name(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def image_files_under(folder: str, unread: Optional[Dict[str, int]] = None,
                      above: Optional[Dict[str, Set[Tuple[int, int]]]] = None) -> List[str]:
    """The image files (by extension) under ``folder`` and its sub-folders, sorted by folder then name; the
    photos of formats not taken (:data:`UNREAD_PHOTO_EXTENSIONS`) counted by extension into ``unread``, but for
    those with an image of their name beside them (a camera's RAW+JPEG pair), which is read.
    Hidden folders and files (``.git``, ``.ipynb_checkpoints``, macOS ``._*`` files) and system folders
    (``__MACOSX``, Synology's ``@eaDir``: :data:`archive.SYSTEM_FOLDERS`) are not data;
    symbolic links are followed, and a folder reached twice through them (a loop) is read once. A folder
    that cannot be listed (no permission) is named in a :class:`DataWarning`. A link back to a folder above
    ``folder`` is such a loop too, and is not read: it would bring in the folders beside ``folder`` (in a
    class folder, the other classes' images, under this class's label). ``above``: the folders above those
    already walked, kept by the caller that walks many folders of one parent (:func:`find_images`' classes:
    ImageNet-21k's 21,841 would each resolve its path and stat every folder up to ``/`` again)."""
    found = []
    seen = set(_folders_above(folder, {} if above is None else above))

    def unreadable(e: OSError) -> None:  # os.walk leaves such a folder out without a word
        warnings.warn(f"folder {e.filename}: cannot be listed ({e.strerror or e}): the images in it are not read",
                      DataWarning)

    for dirpath, dirnames, names in os.walk(folder, followlinks=True, onerror=unreadable):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a link back to a folder already read (a loop)
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        # In name order: of a folder reached twice (cat/best a link to cat/2023), the name kept, which val_split's
        # choice hashes, is then the same on every file system, not whichever its listing gave first.
        dirnames[:] = sorted(d for d in dirnames if not is_hidden_name(d))
        images = [n for n in names if is_image_name(n)]
        found.append((dirpath, images))
        if unread is not None:
            # A camera's RAW+JPEG (IMG_1.CR2 beside IMG_1.JPG), a phone's HEIC kept beside its JPEG: read already
            # (the stems worked out only in a folder with such photos: not for each image of 1.28 million)
            photos = [n for n in names if n.lower().endswith(UNREAD_PHOTO_EXTENSIONS) and not is_hidden_name(n)]
            read = {os.path.splitext(n)[0].lower() for n in images} if photos else set()
            for name in photos:
                stem, extension = os.path.splitext(name)
                if stem.lower() not in read:
                    unread[extension.lower()] = unread.get(extension.lower(), 0) + 1
    return [os.path.join(dirpath, name) for dirpath, names in sorted(found) for name in sorted(names)]


def _folders_above(folder: str, known: Dict[str, Set[Tuple[int, int]]]) -> Set[Tuple[int, int]]:
    """(st_dev, st_ino) of each folder above ``folder``, links resolved, up to ``/``, as :func:`image_files_under`
    takes them for loops; those of a folder that is no link are its parent's, kept in ``known`` by parent."""
    path = os.path.abspath(folder)  # (no trailing "/": islink("link/") follows the link)
    parent = os.path.dirname(path)
    link = os.path.islink(path)
    if not link and parent in known:
        return known[parent]
    ids = set()
    up = os.path.dirname(os.path.realpath(path))
    while True:
        try:
            st = os.stat(up)
        except OSError:
            break
        if st.st_ino:  # 0: a file system that numbers none (Python: "if non-zero, uniquely identifies the file"),
            ids.add((st.st_dev, st.st_ino))  # where every folder would be taken for this one's parent
        if os.path.dirname(up) == up:
            break
        up = os.path.dirname(up)
    if not link:
        known[parent] = ids
    return ids


def unread_photos_note(where: str, unread: Dict[str, int]) -> str:
    """What :func:`image_files_under` counted into ``unread``, said of ``where``; "" for none."""
    if not unread:
        return ""
    counts = ", ".join(f"{n:,} {e}" for e, n in sorted(unread.items(), key=lambda item: (-item[1], item[0])))
    return (f"{where}: {plural(sum(unread.values()), 'photo', spec=',')} of a format not read here ({counts}) "
            f"left out; convert them to JPEG or PNG to use them")


class Holdout(NamedTuple):
    """A share of each class's images kept out of training to evaluate on (``val_split``), for a folder
    without an evaluation split; ``eval`` picks the held-out images, else the rest."""
    share: float
    eval: bool


def held_out(files: Sequence[str], root: str, share: float) -> Set[str]:
    """The files of one class that ``share`` holds out: ``round(share * n)`` of its ``n`` (at least one,
    and never all, so a class of one image stays in training), those whose path under ``root`` hashes
    lowest. The choice depends on the file names only: not on the seed, the order of the listing, the
    process count or where the data set is mounted."""
    n = len(files)
    if n < 2:
        return set()
    k = min(max(round(share * n), 1), n - 1)
    # os.fsencode: a name that is not UTF-8 (Latin-1 from an old archive) hashes as the bytes it is on disk.
    folders: Dict[str, str] = {}
    key = {f: hashlib.blake2b(os.fsencode(_relative(f, root, folders)), digest_size=8).digest() for f in files}
    return set(sorted(files, key=lambda f: (key[f], f))[:k])


def _relative(path: str, root: str, folders: Dict[str, str]) -> str:
    """``os.path.relpath(path, root)`` with "/" between its parts, the folder's worked out once (``folders``:
    those done, by path): relpath makes both paths absolute and compares them part by part for each file,
    most of val_split's choice for ImageNet's 1.28 million (25.6 s, 10.0 s so, on the 2-core CPU), where a class
    folder's images share one folder."""
    head, tail = os.path.split(path)
    if not head or not tail or tail in (os.curdir, os.pardir):
        return os.path.relpath(path, root).replace(os.sep, "/")
    inner = folders.get(head)
    if inner is None:
        inner = folders[head] = os.path.relpath(head, root).replace(os.sep, "/")
    if inner == os.pardir or inner.startswith(os.pardir + "/"):  # the root may be this very path, or under it
        return os.path.relpath(path, root).replace(os.sep, "/")
    return tail if inner == os.curdir else f"{inner}/{tail}"


def packed_classes(root: str):
    """The classes of a split packed as a tar archive (:func:`archive.archive_index`), as DataErrors."""
    try:
        return archive_index(root, IMAGE_EXTENSIONS, SPLIT_FOLDERS)
    except ArchiveError as e:
        raise DataError(str(e)) from None


def class_archive_locations(root: str) -> Dict[str, str]:
    """:func:`archive.class_locations` of a split packed as a tar archive (listed already: :func:`packed_classes`)."""
    try:
        return class_locations(root, IMAGE_EXTENSIONS, SPLIT_FOLDERS)
    except ArchiveError as e:
        raise DataError(str(e)) from None


def wrapped_classes(root: str) -> str:
    """For a split's archive whose one class folder wraps several folders in folders named neither as the
    archive nor as a split (:func:`archive.lone_class_wrapping`): what it holds and how to pack it so that they
    are the classes, for the message that refuses it; "" for any other split. A folder's one class folder holding
    folders of images and no image of its own (a macOS zip's folder unzipped beside __MACOSX): the folder to pass."""
    if not is_archive(root):
        folders = class_folders(root)
        top = os.path.join(root, folders[0]) if len(folders) == 1 else ""
        if not os.path.isdir(top):  # (a class archive's name: no folder)
            return ""
        try:
            with os.scandir(top) as entries:
                entries = [e for e in entries if not is_hidden_name(e.name)]
        except OSError:
            return ""
        inside = sorted(e.name for e in entries if e.is_dir() and holds_images(e.path))
        if len(inside) < 2 or any(is_image_name(e.name) for e in entries if not e.is_dir()):
            return ""
        # (or one class's images sorted into folders by year: then the data needs its other classes)
        return (f"its one class folder {folders[0]}/ holds {len(inside)} folders of images ({', '.join(inside[:3])}"
                f"{' ...' if len(inside) > 3 else ''}) and no image of its own: if those are the classes, pass "
                f"{shell_path(top)}")
    try:
        folder, inside = lone_class_wrapping(root, SPLIT_FOLDERS)
    except ArchiveError:
        return ""
    if not folder:
        return ""
    top = folder.split("/", 1)[0]
    listed = f"{len(inside)} folders ({', '.join(inside[:3])}{' ...' if len(inside) > 3 else ''})"
    holds = (f"holds only {folder}/, whose {listed} look" if folder != top else f"holds {listed} alone, which look")
    return (f"its one class folder {top}/ {holds} like the classes (a top folder is passed through only when named "
            f"as the archive or as a split): pack them at the archive's top (tar cf {os.path.basename(root)} "
            f"-C {folder} .)")


def split_at(root: str, name: str) -> Optional[str]:
    """``root/name`` where it is a folder, else ``root/name.tar`` where that is an archive (the split
    packed), else WebDataset shards in ``root`` with ``name`` in their names (:func:`named_shards`), else
    None; a compressed one (``name.tar.gz``, ...) is an error saying so."""
    path = os.path.join(root, name)
    if os.path.isdir(path):
        return path
    if is_archive(path + ARCHIVE_SUFFIX):
        return path + ARCHIVE_SUFFIX
    for suffix in COMPRESSED_SUFFIXES:
        refuse_compressed(path + suffix)
    return named_shards(root, name)


def named_shards(root: str, name: str) -> Optional[str]:
    """The WebDataset shards of split ``name`` lying side by side in the folder ``root`` with the other
    splits' (``imagenet1k-train-0000.tar``, ``imagenet1k-validation-00.tar``, as the Hugging Face Hub's
    ``*-wds`` data sets come), as one glob pattern; None where no ``.tar`` file there has ``name`` among
    the parts of its name (split at ``-``, ``_`` and ``.``) or the first is no shard."""
    if not os.path.isdir(root):
        return None
    found = [f for f in map(os.path.basename, tar_files(root))
             if name in re.split(r"[-_.]", f[:-len(ARCHIVE_SUFFIX)].lower())]
    if not any(holds_labels(os.path.join(root, f)) for f in found):
        return None
    if len(found) == 1:  # the file itself, as a pattern (a plain .tar path is read as a split's archive)
        stem, suffix = found[0][:-len(ARCHIVE_SUFFIX)], found[0][-len(ARCHIVE_SUFFIX):]
        last = stem[-1:] if stem[-1:] not in ("", "!", "]") else "]"  # x-00.tar: x-0[0].tar
        names = [glob.escape(stem[:-1]) + f"[{last}]" + suffix]
    else:
        head = os.path.commonprefix(found)
        tail = os.path.commonprefix([f[len(head):][::-1] for f in found])[::-1]
        # imagenet1k-train-*.tar rather than imagenet1k-train-00*.tar, where it names the same files
        names = [glob.escape(head.rstrip("0123456789")) + "*" + glob.escape(tail), glob.escape(head) + "*"
                 + glob.escape(tail)]
    for name_pattern in names:
        pattern = os.path.join(glob.escape(root), name_pattern)
        if sorted(os.path.basename(f) for f in glob.glob(pattern)) == found:
            return pattern
    listed = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
    raise DataError(f"dataset_path {root}: the {name} shards ({listed}) are not all the files one pattern "
                    f"({names[-1]}) names; move them into a folder {name}/ of their own")


def refuse_compressed(path: str) -> None:
    """A DataError where ``path`` is a file named as a compressed tar (``.tar.gz``, ``.tgz``, ...)."""
    if os.fspath(path).lower().endswith(COMPRESSED_SUFFIXES) and os.path.isfile(path):
        raise DataError(f"{path} is a compressed tar archive: its images are read in place, at their offsets, which "
                        f"needs an uncompressed .tar; decompress it (gunzip, unxz, unzstd, ...) or extract it")


def refuse_compressed_pattern(spec: str) -> None:
    """A DataError where ``spec`` is a pattern of shards (braces or a glob in the file's name) named as compressed
    tars (``s-{0..9}.tar.gz``): not one, which :func:`archive.is_shard_pattern` takes as ``.tar`` files only."""
    name = os.path.basename(os.fspath(spec))
    if name.lower().endswith(COMPRESSED_SUFFIXES) and any(c in name for c in "{*?["):
        raise DataError(f"dataset_path {spec!r} names compressed shards: their images are read in place, at their "
                        f"offsets, which needs uncompressed .tar files; decompress each (gunzip, unxz, unzstd, ...) "
                        f"and name the .tar files")


def class_folders(root: str, tars: Optional[Sequence[str]] = None) -> List[str]:
    """The class folders of an image folder's split, sorted: its sub-folders (links to folders too), the
    hidden ones (``.git``, ``.ipynb_checkpoints``) and system folders (``__MACOSX``, ``lost+found``) left out;
    none where ``root`` is not a folder. A split packed as an archive: the classes it holds; a folder of class
    archives: their names without ``.tar`` (``tars``: its :func:`class_archives`, where the caller has them
    already)."""
    if is_archive(root):
        return list(packed_classes(root))
    if not os.path.isdir(root):
        return []
    tars = class_archives(root) if tars is None else tars
    if tars:  # sorted as the folders they extract to would be (a-b.tar before a.tar, but a before a-b)
        return sorted(os.path.basename(t)[:-len(ARCHIVE_SUFFIX)] for t in tars)
    with os.scandir(root) as entries:
        return sorted(d.name for d in entries if d.is_dir() and not is_hidden_name(d.name))


def _warn_alike_classes(root: str, folders: Sequence[str]) -> None:
    """Class folders whose names are one name written twice, in other Unicode code points (café composed and
    decomposed, NFC and NFD: two copies, one through macOS) or in another case (Cat, cat), are a class each, as
    the names differ (case-sensitive, as torchvision's ImageFolder); said, since they print alike and one
    class's images may be split between them."""
    groups: Dict[str, List[str]] = {}
    for name in folders:
        groups.setdefault(unicodedata.normalize("NFC", name).casefold(), []).append(name)
    said = []
    for names in (g for g in groups.values() if len(g) > 1):
        composed = {unicodedata.normalize("NFC", n) for n in names}  # one: the group differs in code points only
        # composed and decomposed names both (Café and cafe\u0301: both ways; cafe\u0301 and CAFE\u0301: case only)
        decomposed = len({n == unicodedata.normalize("NFC", n) for n in names}) > 1
        how = [w for w, differ in (("other Unicode code points (NFD against NFC: a copy through macOS?)",
                                    decomposed or len(composed) < len(names)), ("other cases", len(composed) > 1))
               if differ]
        said.append(f"{' and '.join(map(ascii, names))} are one name in {' and in '.join(how)}")
    if said:
        kind = "archive" if is_archive(root) else "folder"
        warnings.warn(f"image {kind} {root!r}: class folders {'; '.join(said[:3])}{' ...' if len(said) > 3 else ''}: "
                      f"each is a class of its own; merge them into one folder if they are one class", DataWarning)


def _warn_linked_classes(root: str, folders: Sequence[str], located: Optional[Dict[str, str]] = None) -> None:
    """Class folders that are one folder, or one inside another, through symbolic links (``fox -> cat``): each is
    walked as its own class, so the same images were read under two labels without a word. ``located``: an
    archive's classes' folders inside it, links followed (:func:`archive.class_locations`); a folder's are found
    by ``os.path.realpath``."""
    real: Dict[str, List[str]] = {}
    top = os.path.realpath(root) if located is None else ""
    for name in folders:
        path = os.path.join(root, name)
        # A folder that is no link is where its name says, under root's real path: resolved once, not for each of
        # ImageNet-21k's 21,841 classes (realpath looks up every folder of the path, each time).
        where = (os.path.join(root, located[name]) if located is not None else
                 os.path.realpath(path) if os.path.islink(path) else os.path.join(top, name))
        real.setdefault(where, []).append(name)
    said = [f"{' and '.join(names)} are one folder" for names in real.values() if len(names) > 1]
    clear: Set[str] = set()  # folders with no class folder among them or above them
    for inner in real:  # each folder's parents looked up: ImageNet-21k's 21,841 classes are no 477 million pairs
        outer, passed = os.path.dirname(inner), []
        while outer not in real and outer not in clear and os.path.dirname(outer) != outer:
            passed.append(outer)
            outer = os.path.dirname(outer)
        if outer in real and outer != inner:
            said.append(f"{real[inner][0]} is inside {real[outer][0]}")
        elif outer not in real:  # (the parents of the others, the class folders' own parent first, not walked again)
            clear.update(passed + [outer])
    if said:
        kind = "folder" if located is None else "archive"
        warnings.warn(f"image {kind} {root!r}: class folders {'; '.join(said[:3])}{' ...' if len(said) > 3 else ''} "
                      f"(through symbolic links): their images are read under each label, the same image as two "
                      f"classes; replace the link with the class's own images", DataWarning)


def data_set_classes(dataset: str, loader: Any) -> int:
    """The classes of ``loader``'s data set: a CIFAR format's (10, 100; its names file's where that names fewer,
    for data of one's own), which a split whose highest label is below it (a subset) still has, since the
    classes its files lack may be in the other split; an image folder's, its class folders."""
    if not is_cifar(dataset):
        return loader.num_classes
    return len(loader.classes) if loader.classes else 100 if dataset == "cifar100" else 10


def class_archives(root: str) -> List[str]:
    """The class archives of a split folder that holds one tar a class and no folders, as ImageNet's
    training archive leaves them once extracted (``train/n01440764.tar``, ...), sorted; none for any other
    folder (WebDataset shards are not class archives: :func:`archive.folder_of_shards`)."""
    try:
        return tar_files(root) if folder_of_shards(root) is False else []
    except ArchiveError as e:
        raise DataError(str(e)) from None


def class_archive_files(tars: Sequence[str]) -> Dict[str, ClassFiles]:
    """The images of each of the class archives ``tars`` (:func:`class_archives`), by class
    (:func:`archive.class_archives_index`: listed once a process), as DataErrors."""
    try:
        return class_archives_index(tars, IMAGE_EXTENSIONS)
    except ArchiveError as e:
        raise DataError(str(e)) from None


def find_images(root: str, classes: Optional[Sequence[str]] = None, holdout: Optional[Holdout] = None,
                labels_file: str = "") -> Tuple[Sequence[Tuple[str, int]], List[str]]:
    """(path, label) of every image under ``root/<class>/`` (sub-folders included), as a :class:`FileSamples`,
    and the class list.

    Without ``classes`` the labels number the class folders in sorted order. With ``classes`` (the
    list a model was trained on) a folder's label is its name's place in that list, so an evaluation
    folder holding some of the classes, or listing them in another order, keeps the training labels;
    a folder whose name is not in the list is an error. Hidden folders and files (``.git``,
    ``.ipynb_checkpoints``, macOS ``._*`` files) are not data; a folder that a class folder reaches
    twice through symbolic links (a loop) is read once. ``holdout``: only the images of each class that
    it holds out (:func:`held_out`), or only the others.

    ``root`` may be the split packed as a tar archive (:mod:`archive`): the same samples as the folder it
    was packed from, named by their paths under it (``train.tar/<class>/<file>``), as an
    :class:`archive.ArchiveImages`. It may be WebDataset shards (:func:`shard_samples`): labelled by their
    ``.cls`` files, not by folders, so the class list returned is None (as CIFAR's is) and ``classes``
    is not used. With ``labels_file``, ``root`` is an evaluation split without class folders, labelled by
    that file (:func:`labelled_images`).
    """
    if labels_file:
        return labelled_images(root, labels_file, classes)
    try:
        shards = is_shard_split(root)
    except ArchiveError as e:
        raise DataError(str(e)) from None
    if shards:
        return shard_samples(root, holdout), None
    packed = packed_classes(root) if is_archive(root) else None
    if packed is None and not os.path.isdir(root):
        raise not_a_folder(root)
    tars = class_archives(root) if packed is None else []
    folders = class_folders(root, tars)
    # Only archives whose class has no folder: one kept after extracting it loses nothing.
    beside = ([t for t in tar_files(root) if os.path.basename(t)[:-len(ARCHIVE_SUFFIX)] not in folders]
              if packed is None and folders and not tars else [])
    shards = [os.path.basename(t) for t in beside if holds_labels(t)]
    if shards:  # folder_of_shards takes a folder with sub-folders for class folders: the shards were left out
        raise DataError(f"image folder {root!r} holds WebDataset shards ({', '.join(shards[:3])}"
                        f"{' ...' if len(shards) > 3 else ''}) and folders ({', '.join(f + '/' for f in folders[:3])}"
                        f"{' ...' if len(folders) > 3 else ''}), read as class folders; move the folders out to read "
                        f"the shards (or the shards out to read the folders)")
    if beside:
        # One class archive a class, partly extracted (a loop of tar xf interrupted): the classes still in
        # theirs would be left out without a word, the labels of the others numbered without them.
        names = ", ".join(os.path.basename(t) for t in beside[:3]) + (" ..." if len(beside) > 3 else "")
        warnings.warn(f"image folder {root!r}: its {len(folders)} class folder(s) are read, not the {len(beside)} "
                      f".tar file(s) beside them ({names}): class archives half extracted? extract each into its "
                      f"folder (or move the folders out to read the archives)", DataWarning)
    broken, why = [], ""
    if packed is None and not tars:
        with os.scandir(root) as entries:  # is_dir() is False for them: they were left out without a word
            broken = sorted(e.name for e in entries if not is_hidden_name(e.name) and e.is_symlink()
                            and not os.path.exists(e.path))
        why = "to nothing (a class folder on a disk not mounted?)"
    elif packed is not None:  # tar packs a class folder that is a link as the link (without -h), not its files
        try:
            broken = links_out(root, IMAGE_EXTENSIONS, SPLIT_FOLDERS)
        except ArchiveError as e:
            raise DataError(str(e)) from None
        why = ("to what the archive does not hold (a class folder linked when packed? tar -h packs the folders "
               "links point to)")
    if broken:
        one = len(broken) == 1
        warnings.warn(f"image {'archive' if packed is not None else 'folder'} {root!r}: "
                      f"{', '.join(broken[:5])}{' ...' if len(broken) > 5 else ''} "
                      f"{'is a link' if one else f'are {len(broken)} links'} {why}: not read as "
                      f"{'a class' if one else 'classes'}"
                      + (f", the classes after {'it' if one else 'them'} numbered without {'it' if one else 'them'}"
                         if classes is None else ""), DataWarning)
    kind, classes_are = ("archive", "folders or class archives") if packed is not None else ("folder", "sub-folders")
    if tars:
        packed = class_archive_files(tars)
    if not folders:
        flat = (any(map(is_image_name, os.listdir(root))) if packed is None
                else bool(archive_images(root, IMAGE_EXTENSIONS)))
        message = f"image {kind} {root!r} has no class {classes_are}"
        compressed = sorted(n for n in os.listdir(root) if n.lower().endswith(COMPRESSED_SUFFIXES)
                            and not is_hidden_name(n)) if packed is None else []
        # ImageNet's class archives extracted one level (train/n01.tar, ...) and packed again: read at the top only.
        inner = [str(m)[len(root) + 1:] for m in archive_images(root, (ARCHIVE_SUFFIX,))] if packed is not None else []
        if inner and not flat:
            folder = os.path.dirname(inner[0])
            names = [os.path.basename(n) for n in inner if os.path.dirname(n) == folder]
            raise DataError(message + f" at its top; it holds class archives in {folder}/ ({', '.join(names[:3])}"
                            f"{' ...' if len(names) > 3 else ''}), which are read at an archive's top only, as "
                            f"ImageNet's training archive holds them: pack them there (tar cf "
                            f"{os.path.basename(root)} -C {folder} .)")
        if compressed and not flat:  # WebDataset shards or class archives gzipped (s-0.tar.gz): left out, unread
            raise DataError(message + f"; it holds compressed tar archives ({', '.join(compressed[:3])}"
                            f"{' ...' if len(compressed) > 3 else ''}): their images are read in place, at their "
                            f"offsets, which needs uncompressed .tar files; decompress each (gunzip, unxz, "
                            f"unzstd, ...)")
        if flat:
            raise UnsortedImagesError(message + "; its images are not sorted into class folders: give their labels "
                                      "with --eval_labels FILE to evaluate on them (see README)", root)
        raise DataError(message + _cifar_hint(root))
    if packed is None:
        _warn_linked_classes(root, folders)
    elif is_archive(root):  # (a folder of class archives holds no link to a class)
        located = class_archive_locations(root)
        if located:
            _warn_linked_classes(root, folders, located)
    if classes is None:
        classes = folders
        _warn_alike_classes(root, folders)
    labels = {name: i for i, name in enumerate(classes)}
    unknown = [f for f in folders if f not in labels]
    if unknown:
        # A name copied through macOS (decomposed accents, NFD) looks like the trained one (NFC) and is not.
        composed = {unicodedata.normalize("NFC", c): c for c in classes}
        alike = [f"{f} is {composed[unicodedata.normalize('NFC', f)]} written in other Unicode code points "
                 f"(NFD against NFC: a copy through macOS?)" for f in unknown if unicodedata.normalize("NFC", f)
                 in composed]
        # Or in another case (Dog against dog): names are case-sensitive here, as in torchvision's ImageFolder.
        folded = {c.casefold(): c for c in classes}
        alike += [f"{f} is {folded[f.casefold()]} in another case (class names are case-sensitive)" for f in unknown
                  if f.casefold() in folded and unicodedata.normalize("NFC", f) not in composed]
        wrapped = wrapped_classes(root) if packed is not None and len(folders) == 1 else ""
        raise DataError(f"image folder {root!r}: class folder(s) {', '.join(unknown[:5])}"
                        f"{' ...' if len(unknown) > 5 else ''} are not among the {len(classes)} classes "
                        f"its labels follow, the model's or the training split's ({', '.join(list(classes)[:5])}"
                        f"{' ...' if len(classes) > 5 else ''})"
                        + (f"; {'; '.join(alike[:3])}" if alike else "") + (f"; {wrapped}" if wrapped else "")
                        + _cifar_binaries_note(root))
    samples: Any = []
    paths: List[str] = []  # a folder's: its images' paths and labels, held as FileSamples once all are listed
    ids: List[int] = []
    unread: Dict[str, int] = {}
    above: Dict[str, Set[Tuple[int, int]]] = {}  # the folders above the class folders, looked up once
    for cls in folders:
        files = packed[cls].names if packed is not None else image_files_under(os.path.join(root, cls), unread, above)
        keep = range(len(files))
        if holdout is not None:
            # A class archive's image is held out as the file it extracts to (root/<class>/...) would be.
            tar = packed[cls].archive if packed is not None and packed[cls].archive != root else ""
            inner = [f[len(tar):] for f in files]
            if tar and inner and all(n.startswith(f"/{cls}/") for n in inner):
                # Packed with its folder (tar cf n01.tar n01): extracted beside the others, it is root/n01/...
                inner = [n[len(cls) + 1:] for n in inner]
            named = [os.path.join(root, cls) + n for n in inner] if tar else files
            held = held_out(named, root, holdout.share)
            keep = [i for i, f in enumerate(named) if (f in held) == holdout.eval]
        if packed is not None:
            samples += [(i, cls) for i in keep]
        else:
            paths += [files[i] for i in keep]
            ids += [labels[cls]] * len(keep)
    if unread:
        warnings.warn(unread_photos_note(f"image {kind} {root}", unread), DataWarning)
    if packed is None:
        samples = FileSamples(paths, ids)
        del paths, ids
    else:
        archives = sorted({packed[c].archive for c in folders})
        which = {a: i for i, a in enumerate(archives)}
        versions = {packed[c].archive: packed[c].version for c in folders}
        samples = ArchiveImages(archives, [which[packed[c].archive] for _, c in samples],
                                [packed[c].names[i] for i, c in samples], [packed[c].offsets[i] for i, c in samples],
                                [packed[c].sizes[i] for i, c in samples], [labels[c] for _, c in samples],
                                [versions[a] for a in archives])
    if not samples:
        raise DataError(f"image {kind} {root!r}: no image files in its class {classes_are}"
                        + (" held out by val_split (a class of one image keeps it for training, and each class "
                           "here has one at most: an evaluation folder of its own instead)"
                           if holdout is not None and holdout.eval else "")
                        + _cifar_hint(root))
    return samples, list(classes)


def shard_samples(root: str, holdout: Optional[Holdout] = None) -> ArchiveImages:
    """The samples of the WebDataset split ``root`` (:func:`archive.shard_index`: a folder of shards, a
    pattern, or one shard), labelled by their ``.cls``; ``holdout`` as :func:`find_images`'s, each label a
    class, the names hashed as paths under the shards' folder."""
    try:
        samples = shard_index(root, IMAGE_EXTENSIONS)
    except ArchiveError as e:
        raise DataError(str(e)) from None
    if holdout is not None:
        # Names hashed under the shards' real folder (a pattern's own folder part is escaped for glob)
        base = root if os.path.isdir(root) else os.path.dirname(samples.archives[0])
        by_label: Dict[int, List[int]] = {}
        for i, label in enumerate(samples.labels.tolist()):
            by_label.setdefault(label, []).append(i)
        keep = []
        for label in sorted(by_label):
            names = [samples.names[i] for i in by_label[label]]
            held = held_out(names, base, holdout.share)
            keep += [i for i, name in zip(by_label[label], names) if (name in held) == holdout.eval]
        samples = samples.subset(sorted(keep))
    if not len(samples):
        raise DataError(f"WebDataset shards {root!r}: no samples"
                        + (" held out by val_split" if holdout is not None and holdout.eval else ""))
    return samples


def sample_labels(samples: Sequence[Tuple[str, int]]) -> Sequence[int]:
    """The label of each of the image loaders' samples (:func:`find_images`)."""
    return samples.labels if isinstance(samples, (ArchiveImages, FileSamples)) else [y for _, y in samples]


def label_count(samples: Sequence[Tuple[str, int]]) -> int:
    """The number of classes of samples labelled by numbers (WebDataset shards' .cls files, or an eval_labels
    file's): the highest label + 1."""
    labels = sample_labels(samples)
    return int(max(labels)) + 1 if len(labels) else 0


def _image_key(name: str) -> str:
    """An image's name in a labels file: its file's name without an image extension."""
    base = os.path.basename(name)
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in IMAGE_EXTENSIONS else base


def not_a_folder(root: str) -> DataError:
    """The error for an image folder path that names no folder (nor a ``.tar`` archive): missing, or a file."""
    if os.path.exists(root):
        return DataError(f"image folder {root!r} is a file, not a folder (of class folders) or a .tar archive")
    return DataError(f"image folder {root!r} does not exist")


# The words a header line over Caffe's `<image> <label>` rows is made of (`image label`, `filename class`,
# `image_name class_name`, `ImageName Label`: split at `_`, `-` and a capital)
HEADER_WORDS = frozenset({"image", "images", "img", "file", "filename", "name", "path", "id", "label", "labels",
                          "class", "category", "target", "synset", "wnid", "y", "number", "num", "index", "idx",
                          "ground", "truth", "gt"})


def _header_word(text: str) -> bool:
    """Whether ``text`` is made of :data:`HEADER_WORDS` alone (``image_name``, ``ImageName``, ``class-id``)."""
    parts = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", text)
    return bool(parts) and "".join(parts) == re.sub(r"[_\-]", "", text) and all(
        p.lower() in HEADER_WORDS for p in parts)


def _caffe_header(words: List[str], rest: List[List[str]], where: Set[str]) -> bool:
    """Whether the first line's ``words`` head Caffe's `<image> <label>` rows (``rest``) rather than being one: it
    names no image here (nor an image file), and its words are a header's, or its label is no number where every
    other row's is. A row for an image not here stays a row: its class is one of the file's, which name the
    classes' numbers."""
    if len(words) < 2 or _image_key(words[0]) in where or words[0].lower().endswith(IMAGE_EXTENSIONS):
        return False
    if all(_header_word(w) for w in words[:2]):
        return True
    labels = [row[1] for row in rest if len(row) > 1]
    return bool(labels) and all(label.isdigit() for label in labels) and not words[1].isdigit()


def read_image_labels(path: str, keys: Sequence[str]) -> Tuple[List[str], List[str]]:
    """The label (a class name, or a class number as text) of each image, known by its ``keys``
    (:func:`_image_key`: its file's name without the extension, names in the file with or without), from
    the file at ``path``, and every label the file names (its rows for images not there too), in one of
    three forms:

    - CSV, ``<image>,<label> ...`` a row (Kaggle's ``LOC_val_solution.csv``: the first word of its
      ``PredictionString``, whose second word is a number; otherwise the whole field, a name of several
      words), a first row that names no image being a header;
    - ``<image> <label>`` a line (Caffe's ``val.txt``: ``ILSVRC2012_val_00000001.JPEG 65``), most lines so and
      naming images here (a line without its label is an error that names it), a first line of a header's words
      (``image label``) or a word where every other line has a number being a header (:func:`_caffe_header`);
    - ``<label>`` a line, one for each image in the order of their names (TF's
      ``imagenet_2012_validation_synset_labels.txt``); names only: a number a line is how the devkit's
      ground truth numbers the synsets, in an order of its own, and is refused.

    Every image needs a label."""
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a byte order mark is not the first label's
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"eval_labels {path}: cannot be read as UTF-8 text ({e})") from None
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DataError(f"eval_labels {path}: holds no labels")
    where = set(keys)
    by_image: Dict[str, str] = {}
    first_line: Dict[str, int] = {}

    def label(i: int, image: str, name: str) -> None:
        """Line ``i`` labels ``image`` ``name``: a second line that says the same is let be, one that says
        otherwise is an error (which of the two is right, the file cannot say)."""
        key = _image_key(image)
        if by_image.get(key, name) != name:
            raise DataError(f"eval_labels {path}, line {i}: {image} is labelled {name}, but line {first_line[key]} "
                            f"labels it {by_image[key]}: one label an image")
        by_image[key] = name
        first_line.setdefault(key, i)

    if "," in lines[0][1]:
        rows = list(zip((i for i, _ in lines), csv.reader(line for _, line in lines)))
        if _image_key(rows[0][1][0].strip()) not in where:
            rows = rows[1:]  # a header (ImageId,PredictionString)
        for i, row in rows:
            words = row[1].split() if len(row) > 1 else []
            if not words:
                raise DataError(f"eval_labels {path}, line {i}: expected <image>,<label>, got {','.join(row)!r}")
            # Kaggle's PredictionString is <label> <x> <y> ... (a number second): its first word; a label of
            # several words (a class folder "golden retriever") whole.
            predictions = len(words) > 1 and words[1].lstrip("-").replace(".", "", 1).isdigit()
            label(i, row[0].strip(), words[0] if predictions else " ".join(words))
    elif sum(len(line.split()) > 1 for _, line in lines) * 2 > len(lines) and \
            any(_image_key(line.split()[0]) in where for _, line in lines if len(line.split()) > 1):
        # Caffe's form by most of its lines (images named): one line that lost its label was read as TF's list,
        # each image's name taken for its label, and no message named the line (helper-251).
        if _caffe_header(lines[0][1].split(), [line.split() for _, line in lines[1:]], where):
            lines = lines[1:]  # a header (`image label`): its "label" was a class, the numbers then names
        for i, line in lines:
            words = line.split()
            if len(words) < 2:
                raise DataError(f"eval_labels {path}, line {i}: expected <image> <label>, as its other lines, got "
                                f"{line!r}")
            label(i, *words[:2])
    else:
        labels = [line.split()[0] for _, line in lines]
        if all(label.isascii() and label.isdigit() for label in labels):
            raise DataError(f"eval_labels {path}: a number a line, as the devkit's "
                            f"ILSVRC2012_validation_ground_truth.txt writes them, whose numbers follow the devkit's "
                            f"own synset order from 1, not the class folders' order: give Kaggle's "
                            f"LOC_val_solution.csv, Caffe's val.txt or TF's synset list instead (see README)")
        if len(lines) != len(keys):
            raise DataError(f"eval_labels {path}: {len(lines)} labels, one a line, for the {len(keys)} images in "
                            f"the evaluation split: one label for each image, in the order of their names "
                            f"(or <image> <label> on every line)")
        by_image = dict(zip(sorted(keys), labels))
    missing = [k for k in keys if k not in by_image]
    if missing:
        raise DataError(f"eval_labels {path}: no label for {len(missing)} of the {len(keys)} images "
                        f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
    return [by_image[k] for k in keys], sorted(set(by_image.values()))


def labelled_images(root: str, labels_file: str,
                    classes: Optional[Sequence[str]] = None) -> Tuple[List[Tuple[str, int]], Optional[List[str]]]:
    """(path, label) of every image under ``root`` (a folder, sub-folders included, or a ``.tar`` archive),
    labelled by ``labels_file`` (:func:`read_image_labels`), and the class list.

    A label that names one of ``classes`` (the list the model was trained on) is its place there; without
    a list, names are numbered in the sorted order of every name the file holds (for ImageNet's synset
    ids, the order of the class folders and of the Hub's label numbers). A number (where the names are not
    the list's) is the label as it is (Caffe's: the synset's place in sorted order), the class list then
    ``classes`` (None where there is none). A split that has labels of its own (class folders named as
    classes, or WebDataset shards) is refused: the file would override them."""
    if is_shard_split(root):
        raise DataError(f"eval_labels {labels_file}: {root} is WebDataset shards, labelled by their .cls files; "
                        f"leave eval_labels out")
    members = None
    if is_archive(root):
        try:
            members = archive_images(root, IMAGE_EXTENSIONS)
        except ArchiveError as e:
            raise DataError(str(e)) from None
        files: Sequence[str] = members
    elif os.path.isdir(root):
        unread: Dict[str, int] = {}
        files = image_files_under(root, unread)
        if unread:
            warnings.warn(unread_photos_note(f"image folder {root}", unread), DataWarning)
    else:
        raise not_a_folder(root)
    folders = class_folders(root)
    if not files:
        raise DataError(f"image folder {root!r}: holds no image files (eval_labels {labels_file} labels them)")
    keys = [_image_key(str(f)) for f in files]
    seen: Dict[str, str] = {}
    for key, f in zip(keys, files):  # one row of the file would label both
        if key in seen:
            raise DataError(f"eval_labels {labels_file}: two images in {root} are named {key} ({seen[key]}, {f}), "
                            f"which one label would name both; rename one (or are they class folders?)")
        seen[key] = str(f)
    names, named = read_image_labels(labels_file, keys)
    known = set(classes) if classes is not None else set(named)
    labelled = [f for f in folders if f in known]
    if labelled:
        raise DataError(f"eval_labels {labels_file}: {root} has class folders ({', '.join(labelled[:3])}"
                        f"{' ...' if len(labelled) > 3 else ''}), which label its images; leave eval_labels out")
    # Whether the labels are numbers or names is the file's to say, every label it holds (a subset of the images
    # may use only numbers that happen to be class names too).
    numbers = all(n.isascii() and n.isdigit() for n in named)
    if numbers and not (classes is not None and set(named) <= set(classes)):
        labels = [int(n) for n in names]
        if max(labels) > 2 ** 31 - 2:  # no model has that many classes (class_num is at most 2**31 - 1)
            raise DataError(f"eval_labels {labels_file}: label {max(labels)} is past any model's classes (class_num "
                            f"is at most 2,147,483,647)")
        if classes is not None and max(labels) >= len(classes):
            raise DataError(f"eval_labels {labels_file}: label {max(labels)} is past the model's {len(classes)} "
                            f"classes")
        classes = list(classes) if classes is not None else None
    else:
        classes = list(classes) if classes is not None else named
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(names) - set(index))
        if unknown:
            raise DataError(f"eval_labels {labels_file}: class(es) {', '.join(unknown[:5])}"
                            f"{' ...' if len(unknown) > 5 else ''} are not among the {len(classes)} classes the "
                            f"model was trained on ({', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''})")
        labels = [index[n] for n in names]
    if members is not None:
        return ArchiveImages([root], np.zeros(len(members)), [str(m) for m in members], [m.offset for m in members],
                             [m.size for m in members], labels, [members[0].version if members else None]), classes
    return FileSamples(files, labels), classes


def eval_folder(root: str) -> Optional[str]:
    """The evaluation split of an image folder (``IMAGENET_EVAL_FOLDERS``, the first present, a folder or
    the archive ``<name>.tar``), or None."""
    for name in IMAGENET_EVAL_FOLDERS:
        found = split_at(root, name)
        if found is not None:
            return found
    return None


def imagenet_folder(root: str, train: bool) -> str:
    """The seed appends ``train`` / ``validation_preprocess`` (``val`` and ``validation`` work too); a
    folder that is itself a split works too, but not one with a training split and no evaluation one,
    nor, for training, one with an evaluation split and no ``train``. A split may be a tar archive
    (``train.tar``, ``val.tar``: :mod:`archive`) or WebDataset shards (:func:`split_at`), and ``root`` an
    archive or a shard pattern: a split itself."""
    if is_archive(root) or is_shard_pattern(root):
        return root
    refuse_compressed(root)
    if os.path.isdir(root) and split_at(root, IMAGENET_TRAIN_FOLDER) is None and eval_folder(root) is None:
        # Train/ and Val/: the splits' names in another case would be trained on as classes of their own.
        folders = class_folders(root)
        if len(folders) > 1 and all(n.lower() in SPLIT_FOLDERS for n in folders):
            found = [n + ("/" if os.path.isdir(os.path.join(root, n)) else ARCHIVE_SUFFIX) for n in folders]
            raise DataError(f"dataset_path {root}: its {', '.join(found)} are named as splits in another case, and "
                            f"would be read as {len(folders)} classes; the names are case-sensitive: rename them "
                            f"{IMAGENET_TRAIN_FOLDER} and {' or '.join(IMAGENET_EVAL_FOLDERS)} (folders of <class>/ "
                            f"folders, or their .tar archives)")
    if train:
        sub = split_at(root, IMAGENET_TRAIN_FOLDER)
        if sub is not None:
            return sub
        found = eval_folder(root)
        if found is not None:
            # Its evaluation split would be trained on as a class, beside the training folder of another name.
            others = [n for n in class_folders(root) if os.path.join(root, n) != found]
            raise DataError(f"dataset_path {root}: it has an evaluation folder ({os.path.basename(found)}/) but no "
                            f"{IMAGENET_TRAIN_FOLDER}/ folder, which training reads (the layout "
                            f"{IMAGENET_TRAIN_FOLDER}/<class>/)"
                            + (f"; rename {others[0]}/ to {IMAGENET_TRAIN_FOLDER}/ if it holds the training images "
                               f"(the seed's README calls it ilsvrc/)" if others else ""))
        return root
    found = eval_folder(root)
    if found is not None:
        return found
    train = split_at(root, IMAGENET_TRAIN_FOLDER)
    if train is not None:
        kind = (f"{os.path.basename(train)} archive" if is_archive(train) else
                f"training split of shards ({os.path.basename(train)})" if is_shard_pattern(train) else
                f"{IMAGENET_TRAIN_FOLDER}/ folder")
        raise DataError(f"dataset_path {root}: it has a {kind} but no evaluation split "
                        f"({', '.join(n + '/' for n in IMAGENET_EVAL_FOLDERS)}, their .tar, or shards named "
                        f"*-val-*.tar or *-validation-*.tar); add one, or hold out a share of each class of the "
                        f"training split with --val_split (e.g. 0.1 when training; the model's own share when "
                        f"evaluating it)")
    return root


def same_folder(one: str, other: str) -> bool:
    """Whether two dataset_path values name one training folder (a link to it, a path relative to here, the
    split inside it); compared as written where either cannot be resolved (gone, or of no image folder's layout)."""
    try:
        return os.path.realpath(imagenet_folder(one, True)) == os.path.realpath(imagenet_folder(other, True))
    except (DataError, OSError):
        return os.path.normpath(one) == os.path.normpath(other)


def held_out_record(root: str, val_split: float) -> Optional[Dict[str, Any]]:
    """What a checkpoint (and an ONNX file exported from it) records of the images its run held out with
    ``val_split`` from ``--dataset_path root``, to find them again (:func:`held_out_for`)."""
    if not val_split:
        return None
    return {"val_split": val_split, "folder": os.path.realpath(imagenet_folder(root, True))}


def _shards_named(split: Any) -> Optional[Tuple[str, ...]]:
    """The shard files (real paths, sorted) of a WebDataset split given as a folder, a brace pattern or a glob:
    one split named in two ways (``P/train/``, ``'P/train/*.tar'``, ``'P/train/s-{0..3}.tar'``) holds out the
    same samples (their names hashed under the shards' folder); None for any other split, or none there."""
    if not isinstance(split, str):
        return None
    try:
        return tuple(sorted(map(os.path.realpath, shard_files(split)))) if is_shard_split(split) else None
    except (ArchiveError, OSError):
        return None


def held_out_for(record: Any, root: str, source: str, dataset: str) -> Tuple[float, str]:
    """The share of each class to hold out of ``--dataset_path root`` for the model file ``source``, whose
    run recorded ``record`` (:func:`held_out_record`): its ``val_split`` where ``root`` is the folder it
    trained on, so that share finds those images again; else 0.0, with a note where it held a share out
    of another folder. Nothing where it held nothing out, ``root`` has an evaluation split of its own
    or ``dataset`` is not an image folder's (CIFAR's evaluation images are a file of their own)."""
    if dataset != "imagenet2012" or not isinstance(record, dict) or not isinstance(record.get("val_split"), float) \
            or not record["val_split"] or eval_folder(root) is not None:
        return 0.0, ""
    share = record["val_split"]
    here = os.path.realpath(imagenet_folder(root, True))
    shards = _shards_named(here) if here != record.get("folder") else None  # the same shards named another way
    if here == record.get("folder") or shards is not None and shards == _shards_named(record.get("folder")):
        return share, ""
    return 0.0, (f"{source}'s run held out val_split {share:g} of another folder, so none is held out of {root} "
                 f"(--val_split {share:g} holds out files of the same names)")


def held_out_read_note(record: Any, root: str, source: str, dataset: str, asked: float, what: str) -> str:
    """A note where ``--val_split asked``, given to a command that measures on training images (``what`` it
    measures: quantize's activation ranges, recalibrate-bn's statistics), is smaller than the share ``source``'s
    run held out of that same folder: the images it then reads hold some of those evaluation images, which an
    eval of that folder (taking the run's share, as the file written records) scores afterwards; or ""."""
    share, _ = held_out_for(record, root, source, dataset)
    if not share or asked >= share:
        return ""
    return (f"--val_split {asked:g}: {source}'s run held out val_split {share:g} of each class of {root} to evaluate "
            f"on, so {what} can include some of those images, which an eval of that folder scores (--val_split "
            f"{share:g} leaves them out)")


def foreign_class_folders(root: str, classes: Sequence[str], val_split: float = 0.0) -> Tuple[str, str]:
    """The training split of image folder ``root`` and a text naming its class folders that are not among
    ``classes`` (a model's), the first five; "" where there are none (quantize's and recalibrate-bn's notes)."""
    split, _ = image_split(root, True, val_split)
    unknown = [f for f in class_folders(split) if f not in classes]
    return split, (f"class folder(s) {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} of {split}"
                   if unknown else "")


def image_split(root: str, train: bool, val_split: float = 0.0) -> Tuple[str, Optional[Holdout]]:
    """The folder a split of ``--dataset_path root`` reads, and which of its images (``val_split``: both
    splits read the training folder, the evaluation split the share it holds out, training the rest)."""
    if not val_split:
        folder, holdout = imagenet_folder(root, train), None
    else:
        found = eval_folder(root)
        if found is not None:
            raise DataError(f"val_split {val_split:g}: dataset_path {root} has an evaluation folder ({found}), "
                            f"which evaluation reads; val_split is for a folder without one: leave it at 0")
        folder, holdout = imagenet_folder(root, True), Holdout(val_split, not train)
    if os.path.normpath(folder) != os.path.normpath(root):
        # Image files right inside a folder beside the split are a class folder's (a split's or a run's
        # are in sub-folders): a class named train or val would have made the split, the others unread.
        left_out = [name for name in sorted(os.listdir(root)) if name.lower() not in SPLIT_FOLDERS
                    and not is_hidden_name(name) and holds_images(os.path.join(root, name))]
        if left_out and (root, folder) not in _WARNED_SPLITS:
            _WARNED_SPLITS.add((root, folder))
            split = os.path.basename(folder)
            role = "training" if train or val_split else "evaluation"
            beside = f"{', '.join(name + '/' for name in left_out[:5])}{' ...' if len(left_out) > 5 else ''}"
            if is_shard_pattern(folder):
                warnings.warn(f"dataset_path {root!r}: the shards {split} are read as its {role} split, so the "
                              f"image files in {beside} beside them are not read", DataWarning)
            else:
                name = split[:-len(ARCHIVE_SUFFIX)] if is_archive(folder) else split
                split += "" if is_archive(folder) else "/"
                warnings.warn(f"dataset_path {root!r}: {split} is read as its {role} split (the layout "
                              f"{name}/<class>/), so the image files in {beside} beside it are not read; a class "
                              f"folder named {name}? give it another name", DataWarning)
    return folder, holdout


_WARNED_SPLITS: Set[Tuple[str, str]] = set()  # (root, split) pairs named once in this process


def holds_images(folder: str) -> bool:
    """Whether ``folder`` (a directory, or a link to one) holds image files (:data:`IMAGE_EXTENSIONS`)
    itself, not in sub-folders; False for anything else."""
    try:
        with os.scandir(folder) as entries:
            return any(entry.is_file() and is_image_name(entry.name) for entry in entries)
    except OSError:  # not a folder, or not readable
        return False


def file_bytes(path: str) -> bytes:
    """An image file's bytes, or an archive member's (:class:`archive.ArchiveMember`)."""
    if isinstance(path, ArchiveMember):  # held to a folder's file's limits
        return read_member(path, _check_image_file_size)
    # Only a regular file is read: open() of a named pipe named x.jpg (or a link to one) waits for a writer
    # for ever, and a device (a link to /dev/zero) reads for ever, and with them the loader. Looked at first,
    # not opened without waiting: a regular file opened so fails at once where another process holds a lease
    # on it (Samba's oplocks, an NFS server's delegations), where open() waits for the holder to let go.
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):  # said as predict says a link given to it: not "No such file or directory"
            # The path a chain of links ends at, from here (a relative target is its link folder's).
            raise OSError(errno.ENOENT, f"a link to nothing ({os.path.realpath(path)} does not exist)", path) from None
        raise
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, f"{special_file_kind(mode)}, not a regular file: not read", path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        _check_image_file_size(path, size, f)
        return f.read()


# Past this many bytes a file must start as an image format before it is read whole: a sparse file, a video or a
# disk image named x.jpg was read into memory entire (and copied twice more) only for its decode to fail.
SNIFF_FILE_BYTES = 64 << 20

def _check_image_file_size(path: str, size: int, f: Any) -> None:
    """OSError where a regular file is too large to be an image this reads (more bytes than an uncompressed
    16-bit RGBA image of :func:`transforms.pixel_limit` pixels), or large and not starting as an image: a 50 GB
    sparse z.jpg ended the whole command in "out of memory ... a smaller batch_size", naming no file."""
    limit = T.pixel_limit()
    cap = None if limit is None else 8 * limit + SNIFF_FILE_BYTES
    if cap is not None and size > cap:  # a multi-page TIFF too, whose first page alone is read: read whole here
        raise OSError(errno.EFBIG, f"{size:,} bytes, more than any image of up to {limit:,} pixels holds "
                                   f"(the decompression-bomb limit; a multi-page TIFF this large: save the page to "
                                   f"read alone): not read", path)
    if size > SNIFF_FILE_BYTES:
        start = f.tell()  # an archive member's bytes start where its archive is positioned
        head = f.read(16)
        f.seek(start)
        if not T.image_signature(head):
            raise OSError(errno.EINVAL, f"{size:,} bytes that start as no image format (a sparse or damaged file, "
                                        f"a video or disk image named as a picture?): not read", path)


def read_bytes(path: str) -> torch.Tensor:
    data = file_bytes(path)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


class BadSample(NamedTuple):
    """Stands in for a sample whose file could not be read or decoded (it travels back from loader
    workers, where nothing can be counted for the run)."""
    path: str
    reason: str


# max_bad_samples for a pass that counts every unreadable file and stops at none (data-stats).
NO_LIMIT = 2 ** 62


class BadSamples:
    """The unreadable files a loader met. Each is named in a :class:`BadSampleWarning` the first time
    and counted once however many epochs meet it; past ``limit`` files the run stops with the list.
    ``limit`` -1 is 0.1% of ``dataset_size``.

    ``deferred`` (a distributed run: each rank reads its own shard, and the limit is the job's): files are
    only recorded, and the job checks its own list at points where every rank waits anyway
    (:meth:`distributed.Context.check_bad_samples`, with :meth:`add` and :meth:`check`), so that every rank
    stops together rather than one alone while the others wait for it in a collective."""

    def __init__(self, dataset_size: int, limit: int = -1):
        self.default = limit < 0
        self.limit = int(dataset_size * 0.001) if limit < 0 else limit
        self.dataset_size = dataset_size
        self.files: Dict[str, str] = {}
        # A distributed run's: the ranks that met each file (:meth:`add`), named in the job's list, where one
        # machine's own copy of the data may be the one damaged (helper-383: "all 2 ranks" said it of each).
        self.read_by: Dict[str, List[int]] = {}
        self.deferred = False

    def __len__(self) -> int:
        return len(self.files)

    def describe_limit(self) -> str:
        if self.limit >= NO_LIMIT:
            return "no limit here"
        return (f"max_bad_samples {self.limit}" + (f" (0.1% of {self.dataset_size} files)" if self.default else ""))

    def record(self, bad: Sequence[Tuple[str, str]]) -> None:
        for path, reason in bad:
            if path in self.files:
                continue
            self.files[path] = reason
            warnings.warn(f"skipped unreadable image file {reason} ({len(self.files)} so far, "
                          f"{self.describe_limit()})", BadSampleWarning, stacklevel=2)
        if not self.deferred:
            self.check()

    def add(self, files: Dict[str, str], rank: Optional[int] = None) -> List[str]:
        """Count other ranks' files too (each once), without warning again; returns the reasons of those new
        here. ``rank``: the rank that met them, named in the list :meth:`check` raises."""
        new = [reason for path, reason in files.items() if path not in self.files]
        for path, reason in files.items():
            self.files.setdefault(path, reason)
            ranks = self.read_by.setdefault(path, [])
            if rank is not None and rank not in ranks:
                ranks.append(rank)
                ranks.sort()
        return new

    def _read_by(self, path: str) -> str:
        """" (read by rank 1)", " (read by ranks 0, 1)": who met ``path`` in a distributed run; "" elsewhere."""
        ranks = self.read_by.get(path)
        return f" (read by rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))})" if ranks else ""

    def check(self) -> None:
        """Stop (:class:`DataError`, with the list) past ``limit`` files."""
        if len(self.files) > self.limit:
            listing = "\n".join(f"  {reason}{self._read_by(path)}" for path, reason in self.files.items())
            raise TooManyBadSamples(f"{plural(len(self.files), 'image file')} could not be read, more than "
                                    f"{self.describe_limit()}; fix or remove them, or raise --max_bad_samples:\n"
                                    f"{listing}")


def read_failure(e: BaseException) -> str:
    """A reason naming the file: DecodeError's message does; an OSError's filename is added."""
    if isinstance(e, OSError):
        return f"{e.filename}: {e.strerror or e}"
    return str(e)


class CollateImages:
    """Stack the readable samples of a batch; the unreadable ones are left out (not replaced: the batch
    gets smaller) and listed, as ``(images, labels, [(path, reason), ...])``."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, batch):
        good = [(img, label) for img, label in batch if not isinstance(img, BadSample)]
        bad = [(img.path, img.reason) for img, _ in batch if isinstance(img, BadSample)]
        if good:
            images = torch.stack([img for img, _ in good])
        else:
            images = torch.empty((0, 3, self.image_size, self.image_size), dtype=torch.uint8)
        labels = torch.tensor([label for _, label in good], dtype=torch.long)
        return images, labels, bad


class FileSamples(Sequence):
    """An image folder's ``(path, label)`` samples, held as arrays as :class:`archive.ArchiveImages` holds an
    archive's: the paths a :class:`archive.PathTable` (their bytes in one buffer), the labels an int64 array.
    A list of a million ``(str, int)`` tuples was copied into every loader worker over an epoch, each item's
    reference count written as the worker read it (pytorch/pytorch#13246): 273 MB a worker for ImageNet's
    1.28 million images, 34 GB on a node of 8 processes of 16 workers (benchmarks/worker_memory.py). An item is
    made when it is asked for."""

    def __init__(self, paths: Iterable[str], labels: Iterable[int]):
        self.paths = paths if isinstance(paths, PathTable) else PathTable(paths)
        self.labels = np.asarray(labels if isinstance(labels, np.ndarray) else list(labels), dtype=np.int64).reshape(-1)
        if len(self.labels) != len(self.paths):
            raise ValueError(f"FileSamples: {len(self.labels)} labels for {len(self.paths)} paths")

    @classmethod
    def of(cls, samples: Iterable[Tuple[str, int]]) -> "FileSamples":
        """The samples of a sequence of ``(path, label)`` pairs."""
        pairs = list(samples)
        return cls([p for p, _ in pairs], [y for _, y in pairs])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        return self.paths[i], int(self.labels[i])

    def __iter__(self) -> Iterator[Tuple[str, int]]:
        return zip(self.paths, self.labels.tolist())

    def subset(self, keep: Iterable[int]) -> "FileSamples":
        """The samples at ``keep``, in that order."""
        keep = as_indices(keep)
        return FileSamples(self.paths.take(keep), self.labels[keep])

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, FileSamples):
            return self.paths == other.paths and np.array_equal(self.labels, other.labels)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FileSamples({len(self)} samples)"


def start_worker(worker_id: int = 0) -> None:
    """A loader worker's ``worker_init_fn``: signals as the run takes them (:func:`stopping.ignore_in_worker`),
    and what it inherits frozen out of the cyclic garbage collector (``gc.freeze``, as Python's documentation
    advises a process that forks without exec): a full collection writes to the header of every container
    object it goes through, the parent's included, and so copied their pages into each worker, about 80 MB a
    worker whatever the data set's size (benchmarks/worker_memory.py, an archive's samples: 10 GB a node of 8
    processes of 16 workers). Nothing inherited is the worker's to collect."""
    ignore_in_worker(worker_id)
    gc.freeze()


def as_samples(samples: Sequence[Tuple[str, int]]) -> Sequence[Tuple[str, int]]:
    """A data set's own samples, held as arrays (:class:`FileSamples`, an archive's :class:`archive.ArchiveImages`)
    so that its loader workers do not each come to copy them; a sequence of pairs whose paths are not plain
    str (an archive's members, listed) or whose labels are not whole numbers: a list of its own."""
    if isinstance(samples, (ArchiveImages, FileSamples)):
        return samples
    samples = list(samples)
    if all(type(p) is str and isinstance(y, (int, np.integer)) and not isinstance(y, bool) for p, y in samples):
        return FileSamples.of(samples)
    return samples


class ImageFolderDataset(Dataset):
    """Decodes and transforms one image per item (the CPU pipeline); returns uint8 (3, S, S), label.

    A file that cannot be read or decoded (zero bytes, truncated, not an image) gives a
    :class:`BadSample` in place of the image."""

    def __init__(self, samples: Sequence[Tuple[str, int]], train: bool, image_size: int, flip: bool = True,
                 auto_augment: Optional[Augment] = None, crop_pct: float = T.CROP_PCT,
                 crop_scale: Tuple[float, float] = T.RRC_SCALE, exif: bool = False, antialias: bool = True,
                 crop_ratio: Tuple[float, float] = T.RRC_RATIO, interpolation: str = "bilinear", vflip: float = 0.0):
        self.samples, self.train, self.image_size, self.flip = as_samples(samples), train, image_size, flip
        self.vflip = vflip
        self.auto_augment = auto_augment if train else None
        self.crop_pct, self.crop_scale, self.exif, self.antialias = crop_pct, crop_scale, exif, antialias
        self.crop_ratio, self.interpolation = crop_ratio, interpolation

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: Tuple[int, ...]):
        index, seed, *sized = item  # (index, seed) or, resized, (index, seed, size): ShardSampler's
        size = sized[0] if sized else self.image_size
        path, label = self.samples[index]
        try:
            img = T.decode_rgb(read_bytes(path), path, self.exif)
        except (T.DecodeError, OSError) as e:
            return BadSample(path, read_failure(e)), label
        if self.train:
            img = T.random_resized_crop(img, size, seed, flip=self.flip, scale=self.crop_scale,
                                        antialias=self.antialias, ratio=self.crop_ratio,
                                        interpolation=self.interpolation)
            if self.vflip and T.vflips([seed], self.vflip)[0]:
                img = img.flip(-2)
            if self.auto_augment is not None:
                img = self.auto_augment(img[None], [seed])[0]
        else:
            img = T.resize_center_crop(img, size, self.crop_pct, self.antialias, self.interpolation)
        return img, label


class ImageFolderLoader(DeviceLoader):
    """Loader workers decode and augment on the CPU; normalisation runs on ``device``."""

    def __init__(self, root: str, batch_size: int, train: bool, image_size: int, device: torch.device,
                 seed: int, num_workers: int, drop_last: bool = True, num_shards: int = 1,
                 shard_id: int = 0, channels_last: bool = False, flip: bool = True, max_bad_samples: int = -1,
                 shuffle: Optional[bool] = None, classes: Optional[Sequence[str]] = None,
                 auto_augment: Optional[Augment] = None, holdout: Optional[Holdout] = None,
                 crop_pct: float = T.CROP_PCT, crop_scale: Tuple[float, float] = T.RRC_SCALE,
                 exif_orientation: bool = False, antialias: bool = True,
                 crop_ratio: Tuple[float, float] = T.RRC_RATIO, repeats: int = 1,
                 interpolation: str = "bilinear", labels_file: str = "", class_balance: float = 0.0,
                 normalisation: Optional[Normalisation] = None, vflip: float = 0.0):
        samples = self._find_images(root, classes, holdout, labels_file)
        self.image_size = image_size
        self.dataset = ImageFolderDataset(samples, train, image_size, flip, auto_augment, crop_pct, crop_scale,
                                          exif_orientation, antialias, crop_ratio, interpolation, vflip)
        self.sampler, drop_last = split_sampler(len(samples), batch_size, train, drop_last, shuffle, seed, num_shards,
                                                shard_id, repeats, class_balance, lambda: sample_labels(samples))
        self.num_samples = len(self.sampler)
        self.batch_size = batch_size
        self.bad_samples = BadSamples(len(samples), max_bad_samples)
        self.device = device
        self.normalize = T.Normalize(*(normalisation or (T.IMAGENET_MEAN, T.IMAGENET_STD)), device, channels_last)
        T.torchvision_ops()  # the decoders, imported once here rather than in each worker
        self.loader = DataLoader(self.dataset, batch_size=batch_size, sampler=self.sampler,
                                 num_workers=num_workers, drop_last=drop_last, collate_fn=CollateImages(image_size),
                                 pin_memory=device.type == "cuda", persistent_workers=num_workers > 0,
                                 prefetch_factor=4 if num_workers > 0 else None, worker_init_fn=start_worker,
                                 generator=own_generator())
        self._len = len(self.loader)
        self._close_at_exit()

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch * self.batch_size)

    def set_image_size(self, size: int) -> None:
        self.image_size = size  # through the sampler's items to the workers, which keep their dataset
        self.sampler.image_size = None if size == self.dataset.image_size else size

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        with interrupt_deferred(), workers_starting(), workers_named(self.loader):  # a Ctrl-C while the workers
            workers = iter(self.loader)  # start left them running, out of close()'s reach; a signal then reached a
            # worker before its handlers
        for images, labels, bad in watched(workers, f"the loader of {self.root}"):
            if bad:
                self.bad_samples.record(bad)
            if not len(images) and images.shape[-1] != self.image_size:  # every file of the batch unreadable
                images = images.new_empty((0, 3, self.image_size, self.image_size))
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            yield self.normalize(images), labels


ENCODED, DECODED, BAD = 0, 1, 2


class CropDraw(NamedTuple):
    """A training sample's RandomResizedCrop box and flip (:func:`transforms.crop_and_flip`), drawn by
    a loader worker for an image of ``size`` (height, width) as its file header gives it."""
    size: Tuple[int, int]
    box: Tuple[int, int, int, int]
    flip: bool


class EncodedImageDataset(Dataset):
    """The GPU pipeline's per-item work: read the file's bytes. Files that nvJPEG cannot take (PNG,
    CMYK, grayscale, a JPEG cut short: :attr:`transforms.JpegFrame.complete`, ...) are decoded here, in the
    worker, by the CPU pipeline's decode, and travel decoded. A file that cannot be
    read or decoded here travels as kind ``BAD`` with a :class:`BadSample`.

    With ``train``, the worker also draws the sample's crop and flip from the image size in the JPEG
    header (:class:`CropDraw`; None where the header has no size): Python work per sample that the
    workers do in parallel instead of the process that feeds the GPU.

    With ``exif`` (the ``exif_orientation`` key), a JPEG whose headers hold an EXIF orientation of 2 to 8
    still goes to nvJPEG, which gives its stored pixels: the item carries the orientation (its last
    field; 0: as stored) and :func:`decode_batch` turns the image on the device, as the CPU pipeline's
    decode turns it; its crop is drawn from the turned size. A JPEG whose orientation this header walk
    cannot tell (:func:`transforms.jpeg_frame`: -1) is decoded here, by the CPU pipeline's decode."""

    def __init__(self, samples: Sequence[Tuple[str, int]], train: bool = False,
                 crop_scale: Tuple[float, float] = T.RRC_SCALE, exif: bool = False,
                 crop_ratio: Tuple[float, float] = T.RRC_RATIO):
        self.samples = as_samples(samples)
        self.train, self.crop_scale, self.exif, self.crop_ratio = train, crop_scale, exif, crop_ratio

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: Tuple[int, int]):
        index, seed = item
        path, label = self.samples[index]
        try:
            raw = file_bytes(path)
            data = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
            frame = T.jpeg_frame(raw)
            turn = frame.orientation if self.exif and frame.orientation > 1 else 0
            # A JPEG without its end-of-image marker (cut short) is decoded here, as the CPU pipeline
            # decodes it: nvJPEG would hand back an image that is not the file's, without an error. So is
            # one whose header claims more pixels than the CPU pipeline takes (decode_rgb refuses it): nvJPEG
            # would make the whole image first, gigabytes for a damaged header's 60000x60000.
            limit = T.pixel_limit()
            if (frame.gpu_decodable and not (self.exif and frame.orientation < 0) and frame.complete
                    and frame.scans <= T.MAX_JPEG_SCANS  # decode_rgb refuses more, naming the file
                    and (limit is None or frame.height * frame.width <= limit)):
                size = (frame.width, frame.height) if turn >= 5 else (frame.height, frame.width)  # 5-8: turned
                return ENCODED, data, label, seed, path, self._draw(size, seed), turn
            img = T.decode_rgb(data, path, self.exif)
            return DECODED, img, label, seed, path, self._draw(tuple(img.shape[-2:]), seed), 0
        except (T.DecodeError, OSError) as e:
            return BAD, BadSample(path, read_failure(e)), label, seed, path, None, 0

    def _draw(self, size: Tuple[int, int], seed: int) -> Optional[CropDraw]:
        if not self.train or min(size) < 1:
            return None
        return CropDraw(size, *T.crop_and_flip(size[0], size[1], seed, self.crop_scale, self.crop_ratio))


class SamplePaths(Sequence):
    """The paths of ``(path, label)`` samples, as a sequence (nothing copied)."""

    def __init__(self, samples: Sequence[Tuple[str, int]]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i][0]


@dataclass
class EncodedBatch:
    """One batch from the GPU pipeline's workers: the encoded files one after the other in one uint8
    tensor (``flat``: in a buffer of :class:`SharedSlots` where there is one, else in a tensor of its
    own, one shared-memory transfer per batch, not one per file), plus the few images the workers
    decoded themselves. Everything else travels as Python values: each tensor that crosses from a
    worker costs the receiving process a connection to fetch its file descriptor (receiving a batch of
    256 took 0.88x as long once the labels were a list: benchmarks/RESULTS.md, 2026-11-29)."""
    kinds: List[int]
    flat: torch.Tensor
    lengths: List[int]
    decoded: List[torch.Tensor]
    labels: List[int]
    seeds: List[int]
    paths: List[str]
    bad: List[Tuple[str, str]] = field(default_factory=list)  # (path, reason) of the kind-BAD items
    draws: List[Optional[CropDraw]] = field(default_factory=list)  # per item; empty: none drawn
    slot: Optional[Tuple[str, int]] = None  # (SharedSlots token, buffer index) holding the bytes; None: flat
    turns: List[int] = field(default_factory=list)  # per item, an EXIF orientation to turn it by; empty: none

    def __getstate__(self) -> Dict[str, Any]:
        """Pickled (or copied) where its bytes are read from a shared buffer, the bytes travel, not the
        buffer: the copy neither shares nor holds it."""
        if self.slot is not None and self.flat.numel():
            return {**self.__dict__, "flat": self.flat.clone(), "slot": None}
        return dict(self.__dict__)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        """Unpickled in the process that decodes it, having crossed from a worker: bytes left in a shared
        buffer are read in place (``flat`` is a view of the buffer), which stays this batch's until
        :meth:`release`, or until the batch is dropped undecoded (an epoch left early)."""
        self.__dict__.update(state)
        if self.slot is not None:
            slots = _SHARED_SLOTS.get(self.slot[0])
            if slots is None:
                raise RuntimeError("a GPU-pipeline batch arrived after the loader that made its shared buffers "
                                   "was gone")
            self.flat = slots.view(self.slot[1], sum(self.lengths))
            hold = weakref.finalize(self, _let_go, id(self), slots, self.slot[1], os.getpid())
            hold.atexit = False
            _HOLDS[id(self)] = hold

    def release(self) -> None:
        """Done with the bytes: their shared buffer goes back to its worker, which may overwrite it from
        now on (``flat`` becomes empty, ``slot`` None). Nothing for bytes in a tensor of their own. (A batch
        made with ``dataclasses.replace`` shares the buffer but does not hold it: ``copy`` and pickle copy
        the bytes.)"""
        hold = _HOLDS.get(id(self))
        if hold is not None and hold.alive:
            self.flat, self.slot = torch.empty(0, dtype=torch.uint8), None
            hold()


# The finalizers of the received batches that hold a shared buffer, by the batch's id (kept out of its
# __dict__, which vars() and dataclasses.replace read); each leaves when it runs.
_HOLDS: Dict[int, "weakref.finalize"] = {}


def _let_go(key: int, slots: "SharedSlots", index: int, pid: int) -> None:
    _HOLDS.pop(key, None)
    slots.release(index, pid)


_SHARED_SLOTS: "weakref.WeakValueDictionary[str, SharedSlots]" = weakref.WeakValueDictionary()
_SLOT_TOKENS = itertools.count()
PREFETCH_BATCHES = 4  # batches each GPU-pipeline worker makes ahead


class SharedSlots:
    """Buffers in shared memory, made before the GPU pipeline's workers start, into which each worker
    copies its batches' file bytes. A batch then crosses to the process that decodes it as Python
    values (which buffer, how many bytes), and the buffer is used again once that batch is decoded.
    A tensor of its own per batch costs that process, for each batch, a connection to the worker to
    fetch its file descriptor, the page faults of a new mapping as the decode reads it and the freeing
    of its pages when it is dropped: ``benchmarks/input_pipeline.py --receive``, benchmarks/RESULTS.md.

    Each of ``workers`` has ``count`` buffers of ``capacity`` bytes. A batch larger than that, or one
    made while all its worker's buffers are held by batches not yet decoded, travels in a tensor of its
    own as before: slower, never wrong. The buffers take their memory in /dev/shm when they are made
    (PyTorch allocates shared memory in full, so a full /dev/shm is an error then, not a SIGBUS later)
    and keep it for as long as their loader lives."""

    def __init__(self, workers: int, count: int, capacity: int):
        if workers < 1 or count < 1 or capacity < 1:
            raise ValueError(f"SharedSlots: workers, count and capacity must be at least 1, got "
                             f"{workers}, {count}, {capacity}")
        self.count, self.capacity = count, capacity
        storage = torch.UntypedStorage._new_shared(workers * count * capacity)  # in shared memory at once: no copy
        self.buffers = torch.empty(0, dtype=torch.uint8).set_(storage).view(workers * count, capacity)
        self.held = torch.zeros(workers * count, dtype=torch.uint8).share_memory_()  # 1: a batch's bytes are there
        self.token = f"{os.getpid()}-{next(_SLOT_TOKENS)}"
        _SHARED_SLOTS[self.token] = self

    @classmethod
    def for_files(cls, paths: Sequence[str], batch_size: int, workers: int, count: int) -> Optional["SharedSlots"]:
        """Buffers for batches of ``batch_size`` of the files ``paths``, ``count`` a worker: each 1.25 times
        a mean batch plus twice the largest file, from the sizes of up to 256 files spread over ``paths``.
        Fewer of them where they would take more than half of what /dev/shm has free (a share of it for
        each process torchrun starts on this machine, ``LOCAL_WORLD_SIZE``), down to 2 a worker; None
        where not even those fit, or no file could be read."""
        if workers < 1 or not paths:
            return None
        sizes, sampled = [], min(256, len(paths))
        for i in range(sampled):
            size = member_size(paths[i * len(paths) // sampled])
            if size is not None:
                sizes.append(size)
        if not sizes or max(sizes) == 0:
            return None
        capacity = int(batch_size * sum(sizes) / len(sizes) * 1.25) + 2 * max(sizes)
        capacity = -(-capacity // 65536) * 65536
        if os.path.isdir("/dev/shm"):
            shm = os.statvfs("/dev/shm")  # what buffers made already take is no longer free
            try:
                processes = max(1, launcher_number("LOCAL_WORLD_SIZE"))
            except ValueError:
                processes = 1
            room = shm.f_bavail * shm.f_frsize // processes // 2
            count = min(count, room // (workers * capacity))
            if count < 2:
                return None
        try:
            return cls(workers, count, capacity)
        except (RuntimeError, OSError):  # no shared memory to be had here: a tensor per batch, as before
            return None

    def put(self, parts: Sequence[torch.Tensor], nbytes: int) -> Optional[int]:
        """In a loader worker: copy ``parts`` (``nbytes`` in all), one after the other, into a free buffer
        of this worker's and return its index; None outside a worker, for too many bytes, or when all of
        the worker's buffers are held."""
        info = get_worker_info()
        if info is None or not 0 < nbytes <= self.capacity or (info.id + 1) * self.count > len(self.held):
            return None
        held = self.held.numpy()
        for index in range(info.id * self.count, (info.id + 1) * self.count):
            if not held[index]:
                held[index] = 1
                torch.cat(list(parts), out=self.buffers[index, :nbytes])
                return index
        return None

    def view(self, index: int, nbytes: int) -> torch.Tensor:
        return self.buffers[index, :nbytes]

    def release(self, index: int, pid: int) -> None:
        """Buffer ``index`` is free again, if this is the process (``pid``) that took it: a finalizer
        inherited by a process forked from it (another loader's worker) frees nothing."""
        if os.getpid() == pid:
            self.held.numpy()[index] = 0


def collate_encoded(batch, slots: Optional[SharedSlots] = None) -> EncodedBatch:
    """:class:`EncodedImageDataset`'s items as one batch."""
    kinds, datas, labels, seeds, paths, draws, turns = zip(*batch)
    encoded = [d for k, d in zip(kinds, datas) if k == ENCODED]
    lengths = [d.numel() for d in encoded]
    index = slots.put(encoded, sum(lengths)) if slots is not None and encoded else None
    if index is None:
        flat = torch.cat(encoded) if encoded else torch.empty(0, dtype=torch.uint8)
    else:
        flat = torch.empty(0, dtype=torch.uint8)  # the bytes are in the shared buffer
    return EncodedBatch(list(kinds), flat, lengths, [d for k, d in zip(kinds, datas) if k == DECODED],
                        list(labels), list(seeds), list(paths),
                        [(d.path, d.reason) for k, d in zip(kinds, datas) if k == BAD], list(draws),
                        None if index is None else (slots.token, index),
                        turns=list(turns) if any(turns) else [])


def own_generator() -> torch.Generator:
    """The generator a DataLoader draws its workers' base seed from as each iteration starts, instead of torch's
    global one: a run resumed inside an epoch would draw there once more than a run never stopped (the
    checkpoint's state was saved after that epoch's draw), and every later checkpoint's ``rng`` would differ.
    The samples' augmentations draw from seeds of their own (seed, epoch, position), not from the workers'."""
    return torch.Generator()


def encoded_loader(dataset: Dataset, batch_size: int, sampler: Sampler, num_workers: int, drop_last: bool,
                   collate_fn: Optional[Callable] = None, pin_memory: bool = False,
                   slots: Optional[SharedSlots] = None) -> DataLoader:
    """The GPU pipeline's DataLoader over ``dataset`` (:class:`EncodedImageDataset`): persistent
    workers, :data:`PREFETCH_BATCHES` batches ahead each, which put the bytes into ``slots``' buffers
    where they can. (``collate_fn`` and ``pin_memory``: the benchmarks' variants.)"""
    if collate_fn is None:
        collate_fn = collate_encoded if slots is None else functools.partial(collate_encoded, slots=slots)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
                      collate_fn=collate_fn, pin_memory=pin_memory, persistent_workers=num_workers > 0,
                      prefetch_factor=PREFETCH_BATCHES if num_workers > 0 else None, worker_init_fn=start_worker,
                      generator=own_generator())


def decode_batch(batch: EncodedBatch, device: torch.device,
                 bad: Optional[List[Tuple[str, str]]] = None) -> List[Optional[torch.Tensor]]:
    """Decode a batch's JPEG bytes on ``device`` in one batched call (nvJPEG on CUDA); images the
    workers already decoded are moved there. A file the batched call rejects is retried alone, then
    on the CPU, which names it if it cannot be read.

    With ``bad`` a list, a file that cannot be decoded (or that the workers could not read) gets None
    in the result and ``(path, reason)`` in ``bad``; without, it raises :class:`transforms.DecodeError`."""
    out: List[Optional[torch.Tensor]] = [None] * len(batch.kinds)
    encoded_at = [i for i, k in enumerate(batch.kinds) if k == ENCODED]
    if encoded_at:
        datas = list(torch.split(batch.flat, batch.lengths))
        drain_before_decode(device)
        tv = T.torchvision_ops()  # outside the try: a torchvision that cannot load is an error, not a fallback
        try:
            decoded = tv.decode_jpeg(datas, mode=tv.RGB, device=device)
        except RuntimeError:
            decoded = []
            for d, i in zip(datas, encoded_at):
                try:
                    decoded.append(_decode_one(d, batch.paths[i], device))
                except T.DecodeError as e:
                    if bad is None:
                        raise
                    bad.append((batch.paths[i], str(e)))
                    decoded.append(None)
        for i, img in zip(encoded_at, decoded):
            out[i] = T.turn_upright(img, batch.turns[i]) if batch.turns and img is not None else img
    decoded_at = [i for i, k in enumerate(batch.kinds) if k == DECODED]
    for i, img in zip(decoded_at, batch.decoded):
        out[i] = img.to(device, non_blocking=True)
    if batch.bad:
        if bad is None:
            raise T.DecodeError(batch.bad[0][1])
        bad.extend(batch.bad)
    return out


def drain_before_decode(device: torch.device) -> None:
    """Wait on the host until the current CUDA stream has run what is queued on it; nothing on the CPU.

    ``decode_jpeg(..., device="cuda")`` allocates its outputs on the caller's stream, and the caching
    allocator hands out a block as soon as it is freed on that stream, while kernels queued there may
    still read it (here: the crop, resize and normalise of earlier batches, whose inputs and
    intermediates are freed as soon as their kernels are queued). torchvision then decodes on a
    stream of its own that never waits for the caller's, and nvJPEG's hardware decoder writes its
    outputs when it is called, whatever the stream, so the decode can overwrite the inputs of queued
    kernels: silently wrong training images. Reported in pytorch/vision#9606 and
    meta-pytorch/torchcodec#1634 (H100, the H200's chip; nvJPEG 12.3 to 13.2), where a device-side wait
    (``wait_stream``, ``wait_event``) did not order the hardware decoder's writes and a host wait did.
    On the loader's own stream this waits for the loader's kernels only, not for the training step.
    On an H200 (``benchmarks/nvjpeg_stream_check.py``, benchmarks/RESULTS.md, 2026-11-29) torchvision's
    decode overwrote such blocks in 59 of 60 rounds, on the hardware decoder's path and on the CUDA
    decoder's (progressive JPEGs) alike; with this wait first, in none."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def _decode_one(data: torch.Tensor, path: str, device: torch.device) -> torch.Tensor:
    tv = T.torchvision_ops()  # outside the try: a torchvision that cannot load is an error, not a fallback
    try:
        return tv.decode_jpeg(data, mode=tv.RGB, device=device)
    except RuntimeError:
        return T.decode_rgb(data, path).to(device)


class BatchedImageLoader(DeviceLoader):
    """The GPU pipeline: workers read bytes; decoding (batched nvJPEG), RandomResizedCrop, flip and
    normalisation run batched on ``device``. The same code runs with ``device`` the CPU."""

    receive_ahead = 2  # batches received from the workers ahead of the decode, in a thread (0: in the same thread)
    decode_ahead = 0  # batches decoded ahead of the crop, in a thread and CUDA stream of their own (0: same thread)
    shared_buffers = True  # workers put the bytes into SharedSlots (False: a tensor of their own per batch)

    def __init__(self, root: str, batch_size: int, train: bool, image_size: int, device: torch.device,
                 seed: int, num_workers: int, drop_last: bool = True, num_shards: int = 1,
                 shard_id: int = 0, channels_last: bool = False, flip: bool = True, max_bad_samples: int = -1,
                 shuffle: Optional[bool] = None, classes: Optional[Sequence[str]] = None,
                 auto_augment: Optional[Augment] = None, holdout: Optional[Holdout] = None,
                 crop_pct: float = T.CROP_PCT, crop_scale: Tuple[float, float] = T.RRC_SCALE,
                 exif_orientation: bool = False, antialias: bool = True,
                 crop_ratio: Tuple[float, float] = T.RRC_RATIO, repeats: int = 1,
                 interpolation: str = "bilinear", labels_file: str = "", class_balance: float = 0.0,
                 normalisation: Optional[Normalisation] = None, vflip: float = 0.0):
        samples = self._find_images(root, classes, holdout, labels_file)
        self.auto_augment = auto_augment if train else None
        self.vflip = vflip
        self.crop_pct, self.crop_scale, self.antialias, self.crop_ratio = crop_pct, crop_scale, antialias, crop_ratio
        self.interpolation = interpolation
        self.sampler, drop_last = split_sampler(len(samples), batch_size, train, drop_last, shuffle, seed, num_shards,
                                                shard_id, repeats, class_balance, lambda: sample_labels(samples))
        self.num_samples = len(self.sampler)
        self.batch_size = batch_size
        self.bad_samples = BadSamples(len(samples), max_bad_samples)
        self.train, self.image_size, self.device, self.flip = train, image_size, device, flip
        self.normalize = T.Normalize(*(normalisation or (T.IMAGENET_MEAN, T.IMAGENET_STD)), device, channels_last)
        slots = None
        if self.shared_buffers and num_workers > 0:
            # Each worker's batches made ahead, plus its share of those this process holds undecoded: the
            # receiving thread's queue, the one it waits to queue and the one being decoded (without that
            # thread, the one being decoded).
            held_here = self.receive_ahead + 2 if self.receive_ahead else 1
            slots = SharedSlots.for_files(SamplePaths(samples), batch_size, num_workers,
                                          PREFETCH_BATCHES + -(-held_here // num_workers))
        T.torchvision_ops()  # the decoders, imported once here rather than in each worker
        self.loader = encoded_loader(EncodedImageDataset(samples, train, crop_scale, exif_orientation, crop_ratio),
                                     batch_size, self.sampler, num_workers, drop_last, slots=slots)
        self._len = len(self.loader)
        self._close_at_exit()

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.sampler.set_epoch(epoch, start_batch * self.batch_size)

    def __len__(self) -> int:
        return self._len

    def transform(self, images: List[torch.Tensor], seeds: Sequence[int],
                  draws: Optional[Sequence[Optional[CropDraw]]] = None) -> torch.Tensor:
        """Decoded uint8 images of any sizes -> one (N, 3, S, S) batch in [0, 255]. A training image's
        crop and flip come from ``draws[i]`` (the workers') when it was drawn for the image's size,
        otherwise they are drawn here from its seed: the same values either way."""
        if self.train:
            if not draws:
                draws = [None] * len(images)
            params = [(d.box, d.flip) if d is not None and img.shape[-2:] == d.size else
                      T.crop_and_flip(img.shape[-2], img.shape[-1], s, self.crop_scale, self.crop_ratio)
                      for img, s, d in zip(images, seeds, draws)]
            x = T.batch_resized_crop(images, [box for box, _ in params], self.image_size, antialias=self.antialias,
                                     interpolation=self.interpolation)
            if self.flip:
                x = T.flip_where(x, torch.tensor([f for _, f in params]))
            if self.vflip:
                x = T.flip_where(x, T.vflips(seeds, self.vflip), dim=-2)
            if self.auto_augment is not None:
                x = self.auto_augment(x, seeds)
            return x
        return T.batch_resize_center_crop(images, self.image_size, self.crop_pct, self.antialias, self.interpolation)

    def received(self, batches: Iterator[EncodedBatch]) -> Iterator[EncodedBatch]:
        """The workers' ``batches``, received in a thread of their own ``receive_ahead`` batches ahead when
        there are workers: taking a batch from them (unpickling it, fetching its shared memory's file
        descriptor) is host work of its own, which can then overlap the decode instead of preceding it
        (as far as the GIL lets it: unpickling holds it)."""
        if self.receive_ahead and self.loader.num_workers > 0:
            return run_ahead(batches, self.receive_ahead, "mobilenet-v1-receive")
        return batches

    def batches(self, workers: Iterator[EncodedBatch]):
        decoded = self.decoded(self.received(workers))
        if self.decode_ahead:
            # Images decoded on the decode stream, cropped on this one: see BackgroundBatches for why the
            # decode cannot then write over what the crop still reads.
            decoded = (iter(BackgroundBatches(decoded, self.device, self.decode_ahead, "mobilenet-v1-decode",
                                              tensors=lambda part: part.images)) if self.device.type == "cuda"
                       else run_ahead(decoded, self.decode_ahead, "mobilenet-v1-decode"))
        try:
            for part in decoded:
                yield self.finish(*part)
        finally:
            decoded.close()  # stops the threads (decoding, then receiving) before the workers are reset

    def decoded(self, received: Iterator[EncodedBatch]) -> Iterator["DecodedBatch"]:
        """:meth:`decode` of each batch, whose shared buffer then goes back to its worker; closed, it
        closes ``received`` in the thread that reads it."""
        try:
            for batch in received:
                part = self.decode(batch)
                batch.release()  # read: decode_jpeg on CUDA returns after its stream has run
                yield part
        finally:
            if inspect.isgenerator(received):
                received.close()

    def decode(self, batch: EncodedBatch) -> "DecodedBatch":
        """A batch from the workers, decoded on the device; files that could not be read are counted
        (``bad_samples``) and left out."""
        bad: List[Tuple[str, str]] = []
        decoded = decode_batch(batch, self.device, bad)
        seeds, labels, draws = batch.seeds, torch.tensor(batch.labels, dtype=torch.long), batch.draws
        if bad:
            self.bad_samples.record(bad)
            keep = [i for i, img in enumerate(decoded) if img is not None]
            decoded = [decoded[i] for i in keep]
            seeds = [seeds[i] for i in keep]
            draws = [draws[i] for i in keep] if draws else draws
            labels = labels[keep]
        return DecodedBatch(decoded, seeds, draws, labels)

    def finish(self, images: List[torch.Tensor], seeds: Sequence[int], draws: Sequence[Optional[CropDraw]],
               labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decoded images -> the normalised (cropped, flipped) batch and its labels on the device."""
        if images:
            x = self.transform(images, seeds, draws)
        else:
            x = torch.empty((0, 3, self.image_size, self.image_size), dtype=torch.uint8, device=self.device)
        # Not from pageable memory: that copy would wait on the host for the crop queued on this stream.
        return self.normalize(x), T.to_device_nowait(labels, self.device)

    def __iter__(self):
        # The workers' iterator is made here, in the caller's thread: the first one starts the workers,
        # and PyTorch installs its handler for a worker's sudden death (SIGCHLD) only from the main
        # thread; made in a background thread, such a death is seen only at the next 5 s check.
        with interrupt_deferred(), workers_starting(), workers_named(self.loader):  # a Ctrl-C while the workers
            workers = iter(self.loader)  # start left them running, out of close()'s reach; a signal then reached a
            # worker before its handlers
        batches = self.batches(watched(workers, f"the loader of {self.root}"))
        if self.device.type == "cuda":
            return iter(BackgroundBatches(batches, self.device))
        return batches


class DecodedBatch(NamedTuple):
    """A batch between :meth:`BatchedImageLoader.decode` and :meth:`~BatchedImageLoader.finish`."""
    images: List[torch.Tensor]  # uint8 (3, H, W) on the device, sizes differ
    seeds: Sequence[int]
    draws: Sequence[Optional[CropDraw]]
    labels: torch.Tensor  # on the host


class _Raised(NamedTuple):
    error: BaseException


_DONE = object()
# The (stop event, thread) of each run_ahead under way, for the exit to stop (_close_open_loaders).
_RUNNING_AHEAD: Set[Tuple[threading.Event, threading.Thread]] = set()


def join_within(thread: threading.Thread, seconds: float) -> None:
    """``thread.join(seconds)``, in quarter-second slices: a process stopped in the wait (SIGSTOP, Ctrl-Z, a
    scheduler's suspend; the monotonic clock runs on) uses up the slice it was stopped in, not the whole wait,
    and the thread, stopped too, is not found still running for want of the time it was never given."""
    for _ in range(max(1, int(seconds * 4))):
        thread.join(0.25)
        if not thread.is_alive():
            return


def run_ahead(items: Iterable, depth: int, name: str,
              enter: Callable[[], ContextManager] = contextlib.nullcontext,
              after: Callable[[Any], Any] = lambda item: item) -> Iterator:
    """``items`` in order, taken in a thread of its own (``name``) up to ``depth`` items ahead of
    the caller; ``enter()`` is the context that thread runs in and ``after(item)`` its work on each
    item. What the thread raises is raised here, at the item it would have given.

    Left before the end (or closed), this stops the thread at its next item and waits for it, so it is
    out of ``items`` before the caller reuses them (a thread still inside them after 60 s is an error);
    ``items``, if a generator, is closed in that thread."""
    if depth < 1:
        raise ValueError(f"run_ahead: depth must be at least 1, got {depth}")  # a Queue of maxsize 0 has no bound
    q: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            with enter():
                for item in items:
                    if not put(after(item)):
                        return
            put(_DONE)
        except BaseException as e:  # handed to the caller, which raises it
            put(_Raised(e))
        finally:
            if inspect.isgenerator(items):
                items.close()

    thread = threading.Thread(target=produce, daemon=True, name=name)
    thread.start()
    running = (stop, thread)
    _RUNNING_AHEAD.add(running)
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        join_within(thread, 60)
        _RUNNING_AHEAD.discard(running)
        if thread.is_alive():
            raise RuntimeError(f"thread {name} did not stop within 60 s of being left; what it reads from "
                               f"(the loader's workers) cannot be reused safely")


class BackgroundBatches:
    """Runs a batch generator in a thread (``name``) on its own CUDA stream, ``depth`` batches ahead, so
    decoding and augmenting the next batch overlaps the training step on the current one (and, with
    ``BatchedImageLoader.decode_ahead``, decoding the next batch overlaps cropping this one).

    Each batch is handed over behind an event recorded on that stream after it, which the caller's
    stream waits for, and the caller's stream is recorded on its ``tensors(batch)`` (default: the batch
    itself, ``(images, labels)``). So a batch's blocks go back to the caching allocator only once the
    caller's kernels that read them have run: a batched nvJPEG decode, which writes its outputs
    whatever the stream (:func:`drain_before_decode`), is never handed a block that the caller's
    queued kernels still read. The thread itself waits on the host only for its own stream.

    The stream has a high priority: its few short kernels (crop, resize, normalise) are scheduled
    ahead of the training step's queued ones rather than behind them, because the thread waits on the
    host for them before each batched decode (:func:`drain_before_decode`; with ``decode_ahead`` the
    decoding thread waits for its own stream only, which has the same priority). ``stream_priority = 0``
    (the default priority) is what ``benchmarks/train_throughput.py --e2e_stream_priority`` compares;
    end to end on an H200 with this pipeline (benchmarks/RESULTS.md, 2026-11-29, one run each) high
    priority was slower, 6,831 against 7,174 images/s; on another H200 with an experimental build
    (stacked crops, a pin thread) faster, 8,768 against 8,623: not settled."""

    stream_priority = -1  # high (lower is higher; PyTorch clamps it into the device's range)

    def __init__(self, batches, device: torch.device, depth: int = 3, name: str = "mobilenet-v1-batches",
                 tensors: Callable[[Any], Iterable[torch.Tensor]] = lambda batch: batch):
        self.batches, self.device, self.depth, self.name, self.tensors = batches, device, depth, name, tensors

    def __iter__(self):
        stream = torch.cuda.Stream(device=self.device, priority=self.stream_priority)

        def recorded(batch):
            event = torch.cuda.Event()
            event.record(stream)
            return batch, event

        # Left before its end, the thread may still be inside the loader: run_ahead lets it leave before
        # the next epoch resets the loader's persistent workers (it stops at its next batch).
        with contextlib.closing(run_ahead(self.batches, self.depth, self.name,
                                          enter=lambda: torch.cuda.stream(stream), after=recorded)) as batches:
            for batch, event in batches:
                current = torch.cuda.current_stream(self.device)
                current.wait_event(event)
                for t in self.tensors(batch):
                    t.record_stream(current)
                yield batch


@dataclass
class DataOptions:
    """What a loader needs from the run's configuration."""
    dataset: str
    dataset_path: str
    batch_size: int
    image_size: int
    seed: int
    num_workers: int
    channels_last: bool
    flip: bool = True
    vflip: float = 0.0  # training: each image's chance of a vertical flip (after the crop and horizontal flip)
    pipeline: str = "cpu"
    max_bad_samples: int = -1  # -1: 0.1% of the data set
    auto_augment: str = ""  # "" or one of autoaugment.POLICIES, training only
    ra_magnitude: int = 9
    augmix_severity: int = 3
    color_jitter: float = 0.0  # without auto_augment: brightness, contrast and saturation factors' spread about 1
    color_jitter_hue: float = 0.0  # without auto_augment: the largest turn of each image's hue
    val_split: float = 0.0  # an image folder without an evaluation split: the share of each class held out
    crop_pct: float = T.CROP_PCT  # image folders' evaluation: the centre crop's share of the resized shorter side
    crop_scale_min: float = T.RRC_SCALE[0]  # image folders' training: the smallest crop's share of the image's area
    crop_ratio_min: float = T.RRC_RATIO[0]  # image folders' training: the crops' aspect ratios (w/h) lie between
    crop_ratio_max: float = T.RRC_RATIO[1]
    exif_orientation: bool = False  # image folders: photos turned upright by their EXIF orientation tag
    antialias: bool = True  # image folders' resizes antialiased (False: plain bilinear, the seed's)
    aug_repeats: int = 1  # training: each image drawn this many times in a row, augmented anew each time
    class_balance: float = 0.0  # training: classes drawn in proportion to their count ** (1 - this)
    interpolation: str = "bilinear"  # image folders' resizes: bilinear (the seed's) or bicubic (timm's)
    eval_labels: str = ""  # an evaluation split without class folders: its labels' file (read_image_labels)
    norm: Optional[Normalisation] = None  # the per-channel (mean, std) batches are normalised by; None: the data set's
    dataset_path_from: str = ""  # "config file F" where that file gave dataset_path: named if the path is not there


def default_workers(requested: int) -> int:
    if requested >= 0:
        return requested
    return min(8, os.cpu_count() or 1)


def check_dataset_path(opts: DataOptions) -> None:
    """A DataError where ``opts.dataset_path`` is not set or not there (a shard pattern aside): said before a
    loader is built (train checks it before it prints its configuration)."""
    if not opts.dataset_path:
        raise DataError("dataset_path is not set: pass --dataset_path PATH")
    if not os.path.exists(opts.dataset_path) and not is_shard_pattern(opts.dataset_path):
        refuse_compressed_pattern(opts.dataset_path)
        # Every data set's one check; a path nobody typed (the seed's config files name /cache/data, ModelArts'
        # folder) is said as the file's.
        from .checkpoint import unexpanded_home

        home = unexpanded_home(opts.dataset_path, read=True)  # ~/data in a config file, or quoted: no shell expanded it
        relative = ""
        if opts.dataset_path_from.startswith("config file ") and not os.path.isabs(opts.dataset_path) and not home:
            # A config file's relative path is read from the folder the command runs in, as the seed's: one written
            # from the file's own folder (`../data`) was said "does not exist", without where it was looked for.
            beside = os.path.normpath(os.path.join(os.path.dirname(opts.dataset_path_from[len("config file "):]),
                                                   opts.dataset_path))
            relative = (f" (a relative path is read from the folder the command runs in, {os.getcwd()}, not the "
                        f"config file's" + (f"; beside the file it is {beside}" if os.path.exists(beside) else "")
                        + ")")
        raise DataError((f"dataset_path {opts.dataset_path!r} (from {opts.dataset_path_from}) does not exist: pass "
                         f"--dataset_path" if opts.dataset_path_from else
                         f"dataset_path {opts.dataset_path!r} does not exist") + (f" (it {home})" if home else "")
                        + relative)


def resolved_pipeline(pipeline: str, device: torch.device) -> str:
    """The image-folder pipeline that ``pipeline`` (``data_pipeline``; "auto": gpu with CUDA, else cpu) runs on
    ``device``."""
    return pipeline if pipeline != "auto" else ("gpu" if device.type == "cuda" else "cpu")


def build_loader(opts: DataOptions, train: bool, device: torch.device, drop_last: bool = True,
                 num_shards: int = 1, shard_id: int = 0, split: Optional[str] = None,
                 shuffle: Optional[bool] = None, classes: Optional[Sequence[str]] = None) -> DeviceLoader:
    """A loader of the training (``train``: augmented, shuffled) or evaluation transforms.

    ``split`` ("train" or "eval") reads that split's files whatever the transforms, and ``shuffle``
    overrides the sampling order: INT8 calibration takes a random sample of training images through
    the evaluation transforms. ``classes``: an image folder's labels follow that class list (the one
    the model was trained on, see :func:`find_images`); CIFAR's labels are in its files, and its classes'
    names in the names file beside them, where there is one (:func:`cifar_class_names`).
    """
    check_dataset_path(opts)
    if split not in (None, "train", "eval"):
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    train_files = train if split is None else split == "train"
    augmented = opts.auto_augment or opts.color_jitter or opts.color_jitter_hue
    auto_augment = (make_augment(opts.auto_augment, opts.ra_magnitude, opts.augmix_severity, opts.color_jitter,
                                 opts.color_jitter_hue) if train and augmented else None)
    norm = opts.norm or normalisation(opts.dataset)
    if is_cifar(opts.dataset):
        images, labels = load_cifar(opts.dataset_path, train_files, opts.dataset)
        loader = CifarLoader(images, labels, opts.batch_size, train, opts.image_size, device, opts.seed,
                           drop_last=drop_last, num_shards=num_shards, shard_id=shard_id,
                           channels_last=opts.channels_last, flip=opts.flip, shuffle=shuffle,
                           auto_augment=auto_augment, repeats=opts.aug_repeats if train else 1,
                           class_balance=opts.class_balance if train else 0.0, normalisation=norm,
                           vflip=opts.vflip if train else 0.0,
                           names=functools.partial(cifar_record_names, opts.dataset_path, train_files, opts.dataset),
                           classes=cifar_class_names(opts.dataset_path, train_files, opts.dataset, labels))
        if not cifar_files(opts.dataset_path, train_files, opts.dataset, quiet=True)[0].lower().endswith(".bin"):
            loader.labels_in = "its files (CIFAR's Python version)"
        return loader
    root, holdout = image_split(opts.dataset_path, train_files, opts.val_split)
    cls = BatchedImageLoader if resolved_pipeline(opts.pipeline, device) == "gpu" else ImageFolderLoader
    return cls(root, opts.batch_size, train, opts.image_size, device, opts.seed, default_workers(opts.num_workers),
               drop_last=drop_last, num_shards=num_shards, shard_id=shard_id, channels_last=opts.channels_last,
               flip=opts.flip, max_bad_samples=opts.max_bad_samples, shuffle=shuffle, classes=classes,
               auto_augment=auto_augment, holdout=holdout, crop_pct=opts.crop_pct,
               crop_scale=(opts.crop_scale_min, T.RRC_SCALE[1]), exif_orientation=opts.exif_orientation,
               antialias=opts.antialias, crop_ratio=(opts.crop_ratio_min, opts.crop_ratio_max),
               repeats=opts.aug_repeats if train else 1, interpolation=opts.interpolation,
               class_balance=opts.class_balance if train else 0.0, normalisation=norm,
               vflip=opts.vflip if train else 0.0, labels_file="" if train_files else opts.eval_labels)
