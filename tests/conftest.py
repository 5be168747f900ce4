import io
import os
import random
import struct
import sys
import zlib

import numpy as np
import pytest
import torch

# onnxruntime (1.32) writes a telemetry device id and database into ~/.cache/Microsoft/DeveloperTools/.onnxruntime
# as it is imported (where HOME cannot be written, it says so on stderr instead): the tests' processes and the
# commands they start leave the user's home alone. Read at import, so set before any test imports it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, write_cifar_bin  # noqa: E402

# The cores shared among pytest-xdist's processes (make test runs one a core): OpenMP threads competing for
# a core slow each other down more than one thread each runs.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

# The longest test files first (by their seconds in make test on the 2-core development CPU, 2026-12-03):
# pytest-xdist's --dist loadfile hands files to its processes in collection order, and a long one handed
# out last (test_resilience.py) ran on alone while the other process had nothing left.
LONGEST_FIRST = ("test_deploy.py", "test_distributed.py", "test_resilience.py", "test_train_eval.py",
                 "test_qat.py", "test_benchmark.py", "test_ema.py", "test_optimizers.py", "test_executorch.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def seeded():
    """Each test starts from the same state of the global generators (torch's, NumPy's, Python's), whatever
    ran before it in its process: which files pytest-xdist gives a process changes from run to run, and a
    test drawing unseeded values would otherwise see other values in each run."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


@pytest.fixture(autouse=True, scope="session")
def archive_listings_kept_apart(tmp_path_factory):
    """Archives' listings kept between processes go to a folder of the session's (the tests' commands
    inherit it), not into the user's ~/.cache."""
    from mobilenet_v1.archive import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("archive_listings"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


def class_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """32x32 images whose class is visible: a bright square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    for i, y in enumerate(labels):
        r, c = divmod(int(y), 4)
        images[i, int(y) % 3, r * 8:r * 8 + 12, c * 8:c * 8 + 12] = 250
    return images


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared 2-core machine, OpenMP threads competing with other processes
    slow tiny models down by orders of magnitude."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_EXPORTED: dict = {}


@pytest.fixture
def exported_once(monkeypatch):
    """``export.to_onnx`` remembered for the session: a model of the same class, padding, tensors and
    arguments exported again (by another test of the same checkpoint, or a test's second export) gets a
    copy of the first export's graph, which torch.onnx builds alike each time, without running the exporter
    again (seconds each on 2 cores). What export does with the graph (checks, metadata, quantization,
    writing) runs every time. The global random state is left as it was either way, so a test draws
    alike whichever test exported a model first."""
    import hashlib

    import onnx

    from mobilenet_v1 import export

    real = export.to_onnx

    def remembered(model, *args, **kwargs):
        attrs = [getattr(model, name, None) for name in ("padding", "features_only", "out_indices")]
        digest = hashlib.sha256(repr((type(model).__name__, attrs, repr(model), args, sorted(kwargs.items()))).encode())
        for name, t in model.state_dict().items():
            digest.update(name.encode())
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        key = digest.hexdigest()
        if key not in _EXPORTED:
            with torch.random.fork_rng(devices=[]):  # its example input's draw: a hit draws none either
                _EXPORTED[key] = real(model, *args, **kwargs)
        proto = onnx.ModelProto()
        proto.CopyFrom(_EXPORTED[key])
        return proto

    monkeypatch.setattr(export, "to_onnx", remembered)


def write_cifar_dir(root):
    """A small CIFAR-10 binary data set at ``root``: 2 train files of 96 records, 1 eval file of 40 (4 classes)."""
    (root / CIFAR_TRAIN_FOLDER).mkdir(parents=True)
    (root / CIFAR_EVAL_FOLDER).mkdir()
    rng = np.random.default_rng(0)
    for k in (1, 2):
        y = rng.integers(0, 4, 96)
        write_cifar_bin(str(root / CIFAR_TRAIN_FOLDER / f"data_batch_{k}.bin"), class_images(y, k), y)
    y = np.arange(40) % 4
    write_cifar_bin(str(root / CIFAR_EVAL_FOLDER / "test_batch.bin"), class_images(y, 9), y)
    return root


@pytest.fixture
def cifar_dir(tmp_path):
    """A small CIFAR-10 binary data set (write_cifar_dir) in the test's own folder."""
    return write_cifar_dir(tmp_path / "cifar")


def py2_pickle(content: dict) -> bytes:
    """``content`` (str keys; ints, strs, lists of them and uint8 arrays as values) pickled as Python 2's cPickle
    wrote CIFAR's Python version: protocol 2, byte strings (SHORT_BINSTRING, BINSTRING) for text and the
    pixels, arrays rebuilt by numpy.core.multiarray._reconstruct, as torchvision's CIFAR10 reads the files."""
    out = bytearray(b"\x80\x02")

    def string(s: bytes) -> None:
        out.extend((b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<i", len(s))) + s)

    def value(v) -> None:
        if isinstance(v, (int, np.integer)):
            out.extend(b"J" + struct.pack("<i", int(v)))
        elif isinstance(v, str):
            string(v.encode("latin1"))
        elif isinstance(v, list):
            out.extend(b"](")
            for x in v:
                value(x)
            out.extend(b"e")
        else:  # _reconstruct(ndarray, (0,), 'b'), then its state: (1, shape, dtype('u1'), False, bytes)
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85")
            string(b"b")
            out.extend(b"\x87R(K\x01(")
            for d in v.shape:
                value(d)
            out.extend(b"tcnumpy\ndtype\n")
            string(b"u1")
            out.extend(b"K\x00K\x01\x87R(K\x03")
            string(b"|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            string(np.ascontiguousarray(v, dtype=np.uint8).tobytes())
            out.extend(b"tb")

    out.extend(b"}(")
    for k, v in content.items():
        string(k.encode("latin1"))
        value(v)
    out.extend(b"u.")
    return bytes(out)


def without_top5_note(text: str) -> str:
    """``text`` (a command's stderr) less eval's note that a model of 5 classes or fewer has a top-5 of 1.0, which
    tests of small models see beside what they look for."""
    return "".join(line for line in text.splitlines(True) if not line.startswith("note: top-5 is 1.0 whatever"))


def jpeg_bytes(array: np.ndarray, mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    from PIL import Image

    img = Image.fromarray(array).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def exif_jpeg(array: np.ndarray, orientation: int, order: bytes = b"II") -> bytes:
    """A JPEG whose EXIF block (byte order ``order``: b"II" little-endian, b"MM" big-endian) holds only the
    orientation tag; photo viewers show it turned (6: 90 degrees clockwise)."""
    import struct

    from PIL import Image

    e = "<" if order == b"II" else ">"
    directory = (struct.pack(e + "H", 1) + struct.pack(e + "HHIH", 0x0112, 3, 1, orientation) + b"\0\0"
                 + struct.pack(e + "I", 0))
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", exif=b"Exif\0\0" + order + struct.pack(e + "HI", 42, 8) + directory)
    return buf.getvalue()


def smooth_image(h: int, w: int, seed: int) -> np.ndarray:
    """A natural-looking (smooth, structured) RGB image rather than noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, ph = rng.uniform(0.005, 0.05, 2).tolist() + [rng.uniform(0, 6.28)]
        img[..., c] = 127 + 100 * np.sin(xx * fx + yy * fy + ph)
    return img.clip(0, 255).astype(np.uint8)


def class_folders_of_photos(root, classes=("a", "b", "c", "d"), per_class: int = 5):
    """A flat folder of class folders (``classes``), each with ``per_class`` small JPEGs (48x40), for a run's
    held-out share (val_split) to be found again; returns ``root``."""
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            (root / c / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 48, seed=10 * ord(c) + i)))
    return root


@pytest.fixture
def image_folder(tmp_path):
    """An ImageNet-style folder (train/ and validation_preprocess/, 2 classes) whose odd files are a
    grayscale JPEG, a CMYK JPEG and a PNG named .JPEG."""
    root = tmp_path / "imagenet"
    for split, n in (("train", 6), ("validation_preprocess", 3)):
        for cls in ("n01", "n02"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                arr = smooth_image(60 + 7 * i, 80 - 5 * i, seed=zlib.crc32(f"{split}/{cls}/{i}".encode()) % 1000)
                (d / f"img_{i}.JPEG").write_bytes(jpeg_bytes(arr))
    odd = root / "train" / "n01"
    arr = smooth_image(50, 70, 1)
    (odd / "gray.JPEG").write_bytes(jpeg_bytes(arr, "L"))
    (odd / "cmyk.JPEG").write_bytes(jpeg_bytes(arr, "CMYK"))
    (odd / "png_named.JPEG").write_bytes(jpeg_bytes(arr, "RGB", "PNG"))
    return root


def epoch_batches(root, train_split: bool, pipeline: str):
    """The batches of epoch 2 of a split of the image data set at ``root`` (batch 4, 32 px, seed 3, one loader
    worker), and the loader: its ``classes``, ``num_classes`` and ``bad_samples`` for the caller to check."""
    from mobilenet_v1.data import DataOptions, build_loader
    opts = DataOptions("imagenet2012", str(root), batch_size=4, image_size=32, seed=3, num_workers=1,
                       channels_last=False, pipeline=pipeline)
    with build_loader(opts, train_split, torch.device("cpu"), drop_last=train_split) as loader:
        loader.set_epoch(2)
        return [(x.clone(), y.clone()) for x, y in loader], loader
