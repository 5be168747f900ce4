"""``mobilenet-v1 predict IMAGE|FOLDER... --ckpt_file C``: the top-k classes of image files, with
probabilities; a folder stands for the image files under it (recursively, sorted). ``--out F.csv`` or
``F.json`` writes the results to a file (timm's ``inference.py --results-file``) instead of the screen.
A file that cannot be read or decoded is listed and skipped, as is a path that gives no image (none there,
a folder or archive without image files, a compressed ``.tar.gz``); the others are still predicted and
written, and the exit status is then 1 (where no path gives an image, predict stops with the list before
loading the model).

The model is a checkpoint (or a run folder: its newest) or an ONNX file from ``export``/``quantize``.
Images get the evaluation transform of the data the model was trained on, which a training checkpoint
records in its configuration and an exported ONNX file in its metadata:

- ImageNet-style folders: shorter side resized (256 for 224; ``image_size / crop_pct``, the crop_pct the
  run evaluated with), centre crop, ImageNet normalisation; photos turned upright by their EXIF
  orientation where the run read them so (its ``exif_orientation``), and resized as it resized them
  (its ``antialias``; a MindSpore checkpoint: plain bilinear, the seed's).
- CIFAR-10 (or CIFAR-100) binaries: the model only ever saw 32x32 images resized to ``image_size``. A
  photo is centre-cropped to a square and shrunk to 32x32 first, then given the CIFAR evaluation
  transform (resize to ``image_size``, CIFAR-10 normalisation); a 32x32 image passes through exactly as
  in eval.

Class names, first found: ``--labels FILE`` (one name per line, in label order; or the built-in lists
``imagenet``, ``cifar10`` and ``cifar100``); the class names the training run recorded (its class folders', synset
folders shown with their English name; CIFAR's names file's); the built-in ImageNet names for a 1000- or 1001-class
ImageNet model (or one that records no data set); else the index.
The seed's 1001-class layout has labels 0..999 from the sorted synset folders and one logit (1000)
that no label uses: it is left out. TF-slim's layout puts "background" at 0 (``--background_class``).
"""
import codecs
import os
import re
import sys
from dataclasses import dataclass
from numbers import Integral
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import checkpoint as ckpt_io
from . import transforms as T
from .api import add_padding_option, model_from_checkpoint, padding_option
from .config import (ASCEND, DATASETS, DEVICE_TARGETS, CommandParser, add_device_target_option,
                     add_normalisation_options, add_num_workers_option, bool_option, cifar_name, crop_pct_problem,
                     image_size_number, is_cifar, normalisation, whole_number)
from .archive import COMPRESSED_SUFFIXES, ArchiveMember, archive_images, is_archive, tar_files
from .data import (IMAGE_EXTENSIONS, BadSample, default_workers, end_workers, image_files_under, own_generator,
                   read_bytes, read_failure, start_worker, unread_photos_note, workers_named)
from .engine import ranked, resolve_device, without_underflowed
from .model import PADDINGS
from .onnx_io import DeployedModel, is_deployed_file, load_deployed, refuse_gpu
from .runtime import csv_text, json_text, library_defaults, print0, shown_name
from .stalls import watched

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# CIFAR-100's fine labels in label order (its fine_label_names.txt).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm")
CIFAR_NATIVE_SIZE = 32
BATCH = 32


def imagenet_classes() -> List[tuple]:
    """(WordNet id, English name) of the 1000 ImageNet classes, in sorted-synset (label) order."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.tsv")
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip() and not line.startswith("#")]
    assert len(rows) == 1000, f"{path}: {len(rows)} classes"
    return [(r[0], r[1]) for r in rows]


def readable(name: str, synsets: Dict[str, str]) -> str:
    """A recorded folder name, with the English name when it is an ImageNet synset id."""
    return f"{synsets[name]} ({name})" if name in synsets else name


def _json_labels(path: str, text: str) -> List[str]:
    """A JSON list of class names in label order; anything else JSON holds is refused, naming the file's form."""
    import json
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"--labels {path}: not JSON ({e}); a labels file is one class name a line") from None
    if isinstance(value, list) and value and all(isinstance(n, str) and n.strip() for n in value):
        return [n.strip() for n in value]
    raise ValueError(f"--labels {path}: a JSON {type(value).__name__}, not a list of class names in label order; "
                     f"give that, or a text file of one name a line")


LABELS_FILE_BYTES = 64 << 20  # a labels file's most bytes (ImageNet-21k's names: under 1 MB)


def read_labels_file(path: str) -> List[str]:
    try:
        with open(path, "rb") as f:
            # At most this much: --labels /dev/zero (a link to it) read until memory ran out, then "out of memory
            # ... a smaller batch_size"; a pipe (<(cut -f2 names.tsv)) is still read as it comes.
            data = f.read(LABELS_FILE_BYTES + 1)
    except OSError as e:
        builtin = path.lower().replace("-", "").replace("_", "")
        builtin = {"imagenet2012": "imagenet"}.get(builtin, builtin)
        home = ckpt_io.unexpanded_home(path, read=True)  # --labels=~/names.txt: no shell expands a ~ after `=`
        hint = (f" (the built-in list is --labels {builtin})" if builtin in ("imagenet", "cifar10", "cifar100")
                and not os.path.exists(path) else f" (it {home})" if home else "")
        raise ValueError(f"--labels {path}: {e.strerror or e}{hint}") from None
    if len(data) > LABELS_FILE_BYTES:
        raise ValueError(f"--labels {path}: more than {LABELS_FILE_BYTES:,} bytes, not a file of class names")
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data  # the mark an editor may write
    try:
        lines = [line.strip() for line in body.decode("utf-8").split("\n")]
    except UnicodeDecodeError as e:
        at = e.start + len(data) - len(body)  # counted in the file
        line = data[:at].count(b"\n") + 1
        raise ValueError(f"--labels {path}: not UTF-8 text (byte {at} is {data[at:at + 1]!r}, line {line}); "
                         f"save it as UTF-8") from None
    while lines and not lines[-1]:
        lines.pop()
    if os.fspath(path).lower().endswith(".json") or (lines and lines[0][:1] in ("[", "{")):
        return _json_labels(path, body.decode("utf-8"))
    indexed = [line for line in lines if re.match(r"\d+\s*[,;:\t]", line)]
    if len(indexed) >= 2 and indexed == lines[len(lines) - len(indexed):] and len(lines) - len(indexed) <= 1:
        # every line, a header line ("index,name") aside, starts with an index: a CSV's two columns
        raise ValueError(f"--labels {path}: its lines start with an index ({indexed[0]!r}): the file is one class "
                         f"name a line, in label order, the name alone (line k + 1: class k); keep the names' "
                         f"column only")
    empty = [i + 1 for i, line in enumerate(lines) if not line]
    if not lines or empty:
        where = (f" (line {', '.join(map(str, empty[:5]))}{' ...' if len(empty) > 5 else ''} "
                 f"{'is' if len(empty) == 1 else 'are'} empty)" if empty else " (it is empty)")
        raise ValueError(f"--labels {path}: expected one non-empty class name per line, in label order{where}")
    return lines


def class_names(class_num: int, recorded: Optional[Sequence[str]], labels: Union[str, Sequence[str], None],
                background_class: bool, dataset: Optional[str] = None) -> List[Optional[str]]:
    """The name of each output index; None marks an index that is no class (the seed's unused logit).

    ``labels`` is a file of names, one of the built-in lists ``imagenet``, ``cifar10`` and ``cifar100``, or
    (from Python) a list of the names. Without them, or names the file records, 1000 or 1001 outputs take the
    built-in ImageNet list, unless the model's ``dataset`` is another than ImageNet's (a CIFAR run of
    ``--class_num 1001`` was named by ImageNet's classes): then the outputs' numbers.
    """
    if background_class and recorded and not labels:
        # The run's class k is output k (its k-th class folder): shifting the names by a background would name
        # every prediction by the class before it, without a word.
        shown = ", ".join(recorded[:3]) + (" ..." if len(recorded) > 3 else "")
        raise ValueError(f"--background_class: the model file records its class names by output ({shown}), output 0 "
                         f"its first class, not a background; leave the flag out (it is for a file of TF-slim's "
                         f"1001-output layout that records no names)")
    synsets = dict(imagenet_classes())
    if labels == "imagenet":
        names: Optional[List[str]] = [n for _, n in imagenet_classes()]
        source = "the built-in ImageNet list"
    elif labels == "cifar10":
        names, source = list(CIFAR10_CLASSES), "the built-in CIFAR-10 list"
    elif labels == "cifar100":
        names, source = list(CIFAR100_CLASSES), "the built-in CIFAR-100 list"
    elif isinstance(labels, (list, tuple)):  # from Python: the names themselves
        if not labels or not all(isinstance(n, str) and n.strip() for n in labels):  # [] named every output None
            raise ValueError(f"labels: a list of class names must hold non-empty text only, got {list(labels)[:8]}")
        names, source = list(labels), "labels"
    elif labels:
        names, source = read_labels_file(labels), f"--labels {labels}"
    elif recorded:
        names, source = [readable(n, synsets) for n in recorded], "the class names the file records"
    elif class_num in (1000, 1001) and dataset in (None, "imagenet2012"):
        names, source = [f"{n} ({w})" for w, n in imagenet_classes()], "the built-in ImageNet list"
    else:
        return [str(i) for i in range(class_num)]
    given = list(names)
    if background_class:
        names = ["background"] + list(names)
    if len(names) == class_num:
        if labels and recorded and list(names) != list(recorded) and sorted(given) == sorted(recorded):
            # The file's own names in another order: the results would name each output by another's class.
            shown = ", ".join(recorded[:8]) + (" ..." if len(recorded) > 8 else "")
            print(f"predict: warning: {source} holds the class names the model file records, in another order "
                  f"(recorded, by output: {shown}); " + ("output k is named by line k of it" if not background_class
                                                         else "output k + 1 is named by line k of it (after "
                                                              "background)")
                  + " as given: leave it out to use the recorded names", file=sys.stderr)
        return list(names)
    if class_num == 1001 and len(names) == 1000 and not background_class:
        return list(names) + [None]  # the seed's 1001 layout: the last logit is no label
    if recorded and not labels and len(names) < class_num:
        # Trained with class_num above its folders' count (training said so): the outputs past the
        # folders were never a label, as the seed's 1001st is not.
        return list(names) + [None] * (class_num - len(names))
    raise ValueError(f"{source}: {len(given)} names{' (and background)' if background_class else ''}, "
                     f"but the model has {class_num} outputs")


def eval_image(img: torch.Tensor, dataset: str, image_size: int, crop_pct: float = T.CROP_PCT,
               antialias: bool = True, interpolation: str = "bilinear") -> torch.Tensor:
    """A decoded uint8 (3, H, W) image -> the uint8 (3, S, S) the model's evaluation pipeline makes."""
    if dataset == "imagenet2012":
        return T.resize_center_crop(img, image_size, crop_pct, antialias, interpolation)
    h, w = img.shape[-2:]
    side = min(h, w)
    img = img[:, (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    img = T.batch_resize_uint8(img[None], CIFAR_NATIVE_SIZE)
    return T.batch_resize_uint8(img, image_size)[0]


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "convert")


def _numpy_image(image: np.ndarray, where: str) -> torch.Tensor:
    """A NumPy image as NumPy holds them, (H, W) or (H, W, C) uint8 (``numpy.asarray`` of a PIL image, imageio's,
    OpenCV's, whose channels are BGR), as the (C, H, W) tensor of its pixels."""
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: a NumPy array of {image.dtype}; give uint8 pixels (0 to 255; from floats in "
                         f"[0, 1]: (a * 255).round().astype(numpy.uint8))")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)) or 0 in image.shape:
        raise ValueError(f"{where}: a NumPy array of shape {image.shape}; give (H, W) or (H, W, C) with C 1 (gray), "
                         f"3 (RGB) or 4 (RGBA), as numpy.asarray of a PIL image gives (OpenCV's BGR: a[..., ::-1])")
    return torch.from_numpy(np.array(image[..., None] if image.ndim == 2 else image)).permute(2, 0, 1)


def image_list(images: Any) -> Tuple[List[Any], List[int]]:
    """``images`` as a list of single images: one image (a path, a PIL image, a (C, H, W) tensor, an (H, W) or
    (H, W, C) NumPy array), a (N, C, H, W) tensor or (N, H, W, C) array, or a sequence of them; a folder or
    ``.tar`` archive stands for the images in it
    (:func:`image_files`); tensors on the CPU. With it, the place each came from among ``images`` (a
    folder's files all its place). Something that is none of these, or a
    tensor that is no uint8 (C, H, W) image, raises ValueError naming its place and what is wrong; files
    and PIL images are read later (one that cannot be read is reported in its result, not raised, as is a
    path that gives no image: a :class:`data.BadSample` in its place)."""
    if isinstance(images, (str, os.PathLike)) or _is_pil(images):
        images = [images]
    elif isinstance(images, torch.Tensor):
        images = [images] if images.dim() == 3 else list(images.unbind(0)) if images.dim() == 4 else [images]
    elif isinstance(images, np.ndarray):  # NumPy's images are (H, W, C): four dimensions a batch of them
        images = list(images) if images.ndim == 4 else [images]
    elif isinstance(images, Mapping):  # iterated, its keys were taken for paths
        raise ValueError(f"images: a {type(images).__name__}; give a file's path, a PIL image, a uint8 (C, H, W) "
                         f"tensor, an (H, W, C) NumPy array, or a list of them (a dict's values: list(d.values()))")
    elif isinstance(images, (bytes, bytearray, memoryview)):
        raise ValueError("images: the bytes of a file? give its path, or a PIL image of them "
                         "(PIL.Image.open(io.BytesIO(data)))")
    elif not isinstance(images, Iterable):
        raise ValueError(f"images: of type {type(images).__name__}; give a file's path, a PIL image, a uint8 "
                         f"(C, H, W) or (N, C, H, W) tensor, an (H, W, C) NumPy array, or a list of them")
    listed, places = [], []
    # A folder or .tar archive: the images in it, as the command line takes them, each at the folder's place;
    # a path that gives none (not there, an empty folder, a .tar.gz): a BadSample, reported in its result.
    for place, image in enumerate(images):
        is_path = isinstance(image, (str, os.PathLike)) and not isinstance(image, ArchiveMember)  # one's in place
        found = image_files([image], keep_going=True) if is_path else [image]
        listed += found
        places += [place] * len(found)
    images = listed
    for i, image in enumerate(images):
        if isinstance(image, (str, os.PathLike, BadSample)) or _is_pil(image):
            continue
        where = f"images[{places[i]}]"  # the caller's place, not one shifted by a folder's files before it
        if isinstance(image, np.ndarray):
            image = _numpy_image(image, where)
        if not isinstance(image, torch.Tensor):
            raise ValueError(f"{where}: of type {type(image).__name__}; give a file's path, a PIL image, a "
                             f"uint8 (C, H, W) tensor or an (H, W, C) NumPy array")
        if image.dtype != torch.uint8:
            raise ValueError(f"{where}: a tensor of {str(image.dtype).replace('torch.', '')}; give uint8 pixels "
                             f"(0 to 255; from floats in [0, 1]: x.mul(255).round().to(torch.uint8))")
        if image.dim() != 3 or image.shape[0] not in (1, 3, 4) or min(image.shape[1:]) < 1:
            raise ValueError(f"{where}: a tensor of shape {tuple(image.shape)}; give (C, H, W) with C 1 (gray), "
                             f"3 (RGB) or 4 (RGBA)")
        images[i] = image.detach().cpu()  # here, not in a loader worker (a forked one cannot use CUDA)
    return images, places


def _rgb(image: Any, exif: bool) -> torch.Tensor:
    """An in-memory image checked by :func:`image_list` -> uint8 (3, H, W) RGB on the CPU, as a file of it
    decodes (gray repeated, alpha dropped; a PIL image turned by its EXIF orientation with ``exif``)."""
    if _is_pil(image):
        return T.pil_rgb(image, exif)
    return image.expand(3, -1, -1).contiguous() if image.shape[0] == 1 else image[:3].contiguous()


class ImageFiles(Dataset):
    """Item ``i``: its path (an in-memory image: its place among the caller's images, ``places[i]``) and the
    uint8 image :func:`eval_image` makes of it, or the :class:`data.BadSample` that stopped it (as the training
    loaders report one); read and decoded in a loader worker."""

    def __init__(self, paths: Sequence[Any], places: Sequence[int], dataset: str, image_size: int,
                 crop_pct: float = T.CROP_PCT, exif: bool = False, antialias: bool = True,
                 interpolation: str = "bilinear"):
        self.paths, self.dataset, self.image_size, self.crop_pct = list(paths), dataset, image_size, crop_pct
        self.exif, self.antialias, self.interpolation = exif, antialias, interpolation
        self.places = list(places)  # image_list's

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tuple[Union[str, int], Union[torch.Tensor, BadSample]]:
        item = self.paths[i]
        if isinstance(item, BadSample):  # a path that gave no image (image_files)
            return item.path, item
        if not isinstance(item, (str, os.PathLike)):
            place = self.places[i]
            try:
                img = _rgb(item, self.exif)
            except Exception as e:  # a PIL image closed, cut short, of a mode with no RGB: reported as a file is
                return place, BadSample(f"images[{place}]", f"images[{place}]: not readable as RGB pixels "
                                                            f"({type(e).__name__}: {e})")
            return place, eval_image(img, self.dataset, self.image_size, self.crop_pct, self.antialias,
                                     self.interpolation)
        path = os.fspath(item)
        try:
            return path, eval_image(T.decode_rgb(read_bytes(path), path, self.exif), self.dataset,
                                    self.image_size, self.crop_pct, self.antialias, self.interpolation)
        except (OSError, ValueError) as e:  # unreadable, or not an image (DecodeError)
            return path, BadSample(path, read_failure(e))


def predict_workers(requested: int, images: int, batch_size: int, device: torch.device) -> int:
    """-1: training's default where the model runs on a GPU and more than one batch is to be read; none
    on the CPU, whose cores the model's own threads already use (on the 2-core development CPU two
    workers gave 0.91 to 1.03x, benchmarks/RESULTS.md), nor for one batch (starting workers costs more)."""
    if requested >= 0:
        return requested
    return default_workers(-1) if device.type == "cuda" and images > batch_size else 0


@dataclass
class Predictor:
    model: nn.Module
    source: str
    dataset: str
    image_size: int
    names: List[Optional[str]]
    # A checkpoint with a weight average, or an ONNX file exported from one: "ema" or "trained"; else "".
    weights: str = ""
    device: torch.device = torch.device("cpu")  # where the model runs (an ONNX file: ONNX Runtime's CPU)
    crop_pct: float = T.CROP_PCT  # an ImageNet-style model's centre crop (transforms.resize_center_crop)
    exif_orientation: bool = False  # photos turned upright by their EXIF orientation (the model's run's key)
    antialias: bool = True  # an ImageNet-style model's resize antialiased (the model's run's key)
    interpolation: str = "bilinear"  # an ImageNet-style model's resize: bilinear or bicubic (the run's key)
    # The per-channel (mean, std) the model's run normalised its inputs by; None: the data set's constants.
    norm: Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]] = None
    # The model's inputs in the channels_last layout (a checkpoint's model, which load_predictor makes channels_last)
    channels_last: bool = False

    @property
    def normalisation(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        return self.norm or normalisation(self.dataset)

    def normalizer(self) -> T.Normalize:
        return T.Normalize(*self.normalisation, self.device, self.channels_last)

    def _files(self, images: Sequence[Any], places: Sequence[int]) -> ImageFiles:
        return ImageFiles(images, places, self.dataset, self.image_size, self.crop_pct, self.exif_orientation,
                          self.antialias, self.interpolation)

    def preprocess(self, images: Any) -> torch.Tensor:
        """The model's input for ``images`` (as :meth:`top_k` takes them): the float (N, 3, S, S) batch,
        on the model's device, that its run's evaluation transform and normalisation make of them (timm's
        ``create_transform(**resolve_data_config(...))``, but for the resize: image_size / crop_pct rounded, where
        timm floors it: 37, not 36, for 32 at 0.875). ``self.model(predictor.preprocess(x))`` gives
        the logits. A file that cannot be read raises ValueError."""
        images, places = image_list(images)
        if not images:
            raise ValueError("preprocess: no images")
        files = self._files(images, places)
        batch = []
        for i in range(len(files)):
            _, img = files[i]
            if isinstance(img, BadSample):
                raise ValueError(img.reason)
            batch.append(img)
        return self.normalizer()(torch.stack(batch).to(self.device))

    @torch.no_grad()
    def top_k(self, images: Any, k: int = 5, num_workers: int = 0,
              batch_size: int = BATCH) -> List[Dict[str, Any]]:
        """The ``k`` most probable classes of each image, in order (indices that are no class get 0).
        An image is a file's path, a PIL image, a uint8 (C, H, W) tensor or (H, W, C) NumPy array (C 1, 3 or 4);
        ``images`` is one, a (N, C, H, W) tensor or (N, H, W, C) array, or a sequence of them. Each result's
        ``"image"`` is the file's path, or the place of an in-memory image among ``images``; images are given the
        transform of the model's run
        (a PIL image or tensor as its file would be after decoding). A file that cannot be read or decoded
        gets ``"error"`` instead of ``"top_k"``; an image whose
        outputs are not finite (a damaged model's: its probabilities are NaN, no prediction) gets
        ``"nonfinite": True`` beside them. ``num_workers``
        loader processes read and decode the files (0: this one; -1: :func:`predict_workers`) while
        the model runs on batches of ``batch_size``; the results are the same whatever the number."""
        if isinstance(k, bool) or not isinstance(k, Integral) or k < 1:
            raise ValueError(f"k must be a whole number of classes, at least 1, got {k!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number of images, at least 1, got {batch_size!r}")
        images, places = image_list(images)
        valid = torch.tensor([n is not None for n in self.names])
        k = min(k, int(valid.sum()))
        workers = predict_workers(num_workers, len(images), batch_size, self.device)
        files = self._files(images, places)
        T.torchvision_ops()  # the decoders, imported once here rather than in each worker
        # Its workers' base seed from a generator of its own: from torch's global one, a notebook's seeded stream
        # moved on by each top_k (the loader draws it as iteration starts, with no workers too).
        # start_worker: Ctrl-C the main process's to say, and the parent's objects kept out of each worker's
        # garbage collection (copied pages), as every other loader's workers
        loader = DataLoader(files, batch_size=batch_size, num_workers=workers, collate_fn=list,
                            prefetch_factor=4 if workers else None, generator=own_generator(),
                            worker_init_fn=start_worker)
        normalize = self.normalizer()
        results: List[Dict[str, Any]] = []
        with workers_named(loader):  # a full /dev/shm said as such
            batches = iter(loader)
        try:
            self._predict_batches(watched(batches, "predict's loader"), results, normalize, valid, k)
        finally:
            # Its workers ended here, however the loop ends: an error's traceback keeps the iterator (and them)
            # alive into the interpreter's exit, where multiprocessing sends them one SIGTERM, which they serve on
            # (start_worker), and waits for them for ever.
            end_workers(batches)
        return results

    def _predict_batches(self, loader, results, normalize, valid, k) -> None:
        """:meth:`top_k`'s loop over the loader's batches: each image's row appended to ``results``."""
        for items in loader:
            batch, rows = [], []
            for path, img in items:
                if isinstance(img, BadSample):
                    results.append({"image": path, "error": img.reason})
                    continue
                rows.append(len(results))
                results.append({"image": path})
                batch.append(img)
            if not batch:
                continue
            with library_defaults():  # a notebook's autocast is not the model's: float32, as eval's fp32
                logits = self.model(normalize(torch.stack(batch).to(self.device))).float().cpu()
            masked = logits.masked_fill(~valid, float("-inf"))
            floor = getattr(self.model, "output_floor", None)  # a probability that underflowed in the file: 0
            probs = torch.softmax(without_underflowed(masked, floor), dim=1)
            # Ranked by the logits, as eval ranks them (engine.ranked: a tie to the lower index, whatever k);
            # softmax can round two close logits to one probability.
            indices = ranked(masked, k)
            values = probs.gather(1, indices)
            finite = torch.isfinite(logits[:, valid]).all(dim=1).tolist()
            for row, vs, ids, ok in zip(rows, values.tolist(), indices.tolist(), finite):
                results[row]["top_k"] = [{"index": i, "label": self.names[i], "probability": v}
                                         for v, i in zip(vs, ids)]
                if not ok:
                    results[row]["nonfinite"] = True


def image_files(paths: Sequence[str], keep_going: bool = False) -> List[Union[str, BadSample]]:
    """Files as given; a folder: the image files under it (:func:`data.image_files_under`, as training
    reads a class folder); a ``.tar`` archive: the image files in it, read in place
    (:func:`archive.archive_images`). A path named twice (itself, or also inside a folder given; spelt with
    ``.`` or ``..`` too) comes once; a link, to a file or a folder, is a path of its own, as training counts it.

    A path that gives no image (none there, a folder or archive without image files, a compressed tar)
    raises ValueError naming it; with ``keep_going``, a :class:`data.BadSample` naming it stands in its place
    instead, as a file that cannot be decoded is reported later, and the other paths are still listed."""
    files: List[Union[str, BadSample]] = []
    for path in paths:
        try:
            files += _files_of(os.fspath(path))
        except ValueError as e:
            if not keep_going:
                raise
            files.append(BadSample(os.fspath(path), str(e)))
    unique: Dict[str, Union[str, BadSample]] = {}
    for f in files:
        unique.setdefault(os.path.abspath(f.path if isinstance(f, BadSample) else f), f)
    return list(unique.values())


def _files_of(path: str) -> List[str]:
    """The image files one path given to :func:`image_files` stands for; ValueError where it gives none."""
    if path.lower().endswith(COMPRESSED_SUFFIXES) and os.path.isfile(path):
        # Read as an image it was "not a readable image", which named neither what it is nor what to do.
        raise ValueError(f"{path} is a compressed tar archive: predict reads image files, folders of them and "
                         f"uncompressed .tar archives of them (in place, at their offsets); decompress it "
                         f"(gunzip, bunzip2, unxz, unzstd) to a .tar, or extract it to a folder")
    if is_archive(path):
        found = archive_images(path, IMAGE_EXTENSIONS)  # an ArchiveError (a ValueError) names what is wrong
        if not found:
            raise ValueError(f"archive {path}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it")
        return found
    if os.path.exists(path) and not os.path.isdir(path):
        # A named pipe or a device (<(cat x.jpg) is one) is there: read as files are, it is said as eval says it
        # (data.file_bytes: "a named pipe, not a regular file"), not "no such file" or "a link to nothing".
        return [path]
    if not os.path.isdir(path):
        gone = "a link to nothing" if os.path.islink(path) else "no such file or folder"
        home = ckpt_io.unexpanded_home(path, read=True)  # '~/cat.jpg' quoted: no shell expanded it
        raise ValueError(f"image {path}: {gone}" + (f" (it {home})" if home else ""))
    unread: Dict[str, int] = {}
    found = image_files_under(path, unread)
    if not found:
        tars = [os.path.basename(t) for t in tar_files(path)]  # shards, class archives: read when named
        raise ValueError(f"folder {path}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in it"
                         + (f"; its .tar archives ({', '.join(tars[:3])}{' ...' if len(tars) > 3 else ''}) are read "
                            f"when named themselves: give them, not the folder" if tars else "")
                         + (f"; {unread_photos_note('it', unread)}" if unread else ""))
    if unread:
        print(f"predict: warning: {unread_photos_note(f'folder {path}', unread)}", file=sys.stderr)
    return found


def results_csv(results: Sequence[Dict[str, Any]], k: int) -> str:
    """One row per image: its path, then label, probability and index of each of its top ``k``; an
    unreadable file has its error (which names it) in the last column instead."""
    header = ["image"] + [f"{c}_{j}" for j in range(1, k + 1) for c in ("label", "probability", "index")] + ["error"]
    rows = []
    for r in results:
        cells = [x for t in r.get("top_k", []) for x in (t["label"], f"{t['probability']:.6f}", t["index"])]
        rows.append([r["image"]] + cells + [""] * (3 * k - len(cells)) + [r.get("error", "")])
    return csv_text([header] + rows)


def guess_dataset(class_num: int) -> str:
    """For a file that does not say: the seed's CIFAR-10 models have 10 classes, anything else is taken
    to be an ImageNet-style model."""
    return "cifar10" if class_num == 10 else "imagenet2012"


def guess_note(path: str, dataset: str, class_num: int, said: str, again: str) -> str:
    """The note on a :func:`guess_dataset` guess for ``path``: what was done with it (``said``), and the
    --dataset that would say otherwise (CIFAR's binary files hold up to 10 or 100 classes) for ``again``."""
    other = ("imagenet2012" if is_cifar(dataset) else "cifar10" if class_num <= 10 else
             "cifar100" if class_num <= 100 else "")
    return (f"{path} does not record the data set it was trained on: {said}, guessed from its {class_num} "
            f"classes" + (f"; if it was trained otherwise, {again} --dataset {other}" if other else ""))


def check_options(image_size: Any = None, crop_pct: Any = None, interpolation: Any = None,
                  device_target: str = "auto", background_class: Any = None, exif_orientation: Any = None,
                  antialias: Any = None, dataset: Any = None, labels: Any = None) -> None:
    """:func:`load_predictor`'s overrides that no model runs with, refused by name before anything is loaded (a
    Python caller's as the command line's): each None or a value the command line takes; the switches True,
    False or None; ``labels`` a file's path, a built-in list's name or a list of names."""
    if labels is not None and labels is not False and not isinstance(labels, (str, os.PathLike, list, tuple)):
        # open() takes a whole number for a file descriptor: labels=4 (a class count) read, then closed, a file
        # the caller had open.
        raise TypeError(f"labels must be a file's path, imagenet, cifar10, cifar100 or a list of class names, "
                        f"got {labels!r}")
    if device_target == "Ascend":  # the seed's device, in the command line's words
        raise ValueError(ASCEND)
    if device_target not in DEVICE_TARGETS:  # anything else was taken as auto: "cpu" ran on the GPU
        raise ValueError(f"device_target must be CPU, GPU or auto, got {device_target!r}")
    if dataset is not None and dataset not in DATASETS:
        # Any other name ("imagenet") was taken for a file that records none: given CIFAR's shrink to 32x32,
        # as everything but "imagenet2012" is, and ImageNet's normalisation.
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    switches = {"background_class": background_class, "exif_orientation": exif_orientation, "antialias": antialias}
    for name, value in switches.items():  # "False" is true: the resize would antialias against the caller's word
        if value not in (None, True, False):
            raise ValueError(f"{name} must be True, False or None, got {value!r}")
    if image_size is not None and not (isinstance(image_size, Integral) and not isinstance(image_size, bool)
                                       and image_size >= 1):
        raise ValueError(f"image_size must be a whole number of pixels, at least 1, got {image_size!r}")
    if crop_pct is not None and crop_pct_problem(crop_pct):
        raise ValueError(crop_pct_problem(crop_pct))
    if interpolation is not None:
        T.check_interpolation(interpolation)


def load_predictor(path: str, labels: Union[str, Sequence[str], None] = None, background_class: bool = False,
                   dataset: Optional[str] = None, image_size: Optional[int] = None, use_ema: Optional[bool] = None,
                   device_target: str = "CPU", crop_pct: Optional[float] = None,
                   exif_orientation: Optional[bool] = None, antialias: Optional[bool] = None,
                   interpolation: Optional[str] = None, mean: Optional[str] = None,
                   std: Optional[str] = None, padding: Optional[str] = None) -> Predictor:
    """A model file and what it takes to run it on image files; ``image_size``, ``crop_pct``,
    ``exif_orientation``, ``antialias``, ``interpolation``, ``mean`` and ``std`` (text as ``--mean`` takes it)
    override what the file records (the last two not for a file that takes pixels), ``dataset``
    must be the one it records (it names a file's that records none). A checkpoint with a weight average predicts with it unless
    ``use_ema`` is False; an exported file holds the weights chosen at export (``use_ema`` given for one
    is named on stderr as not used). ``padding`` builds the network of a checkpoint that records none (a MindSpore
    ``.ckpt``: :func:`api.padding_option`).
    ``device_target`` (CPU, GPU or auto) is where a checkpoint's model runs; an ONNX file runs in ONNX
    Runtime on the CPU, a ``.pte`` program in ExecuTorch on the CPU, a ``.pt2`` program in PyTorch on the CPU, a
    ``.tflite`` file in LiteRT on the CPU."""
    check_options(image_size=image_size, crop_pct=crop_pct, interpolation=interpolation, device_target=device_target,
                  background_class=background_class, exif_orientation=exif_orientation, antialias=antialias,
                  dataset=dataset, labels=labels)
    ckpt_io.check_path_argument(path, "load_predictor")
    if padding is not None and padding not in PADDINGS:
        raise ValueError(f"--padding {padding!r}: expected one of {', '.join(PADDINGS)}")
    if use_ema is not None and not isinstance(use_ema, bool):  # "False" is true, and 0 and numpy.False_ were
        # equal to False and then not it: the average would be taken against the caller's word
        raise TypeError(f"load_predictor: use_ema must be True, False or None, got {use_ema!r}")
    given, path = path, ckpt_io.resolve_checkpoint_path(path)
    device = torch.device("cpu")
    if is_deployed_file(path):
        refuse_gpu(path, device_target, "predict with")
        onnx_model = load_deployed(path)
        onnx_model.check_classifier()
        note = onnx_model.saturation_note()
        if note:
            print(note, file=sys.stderr)
        meta = onnx_model.metadata
        class_num = onnx_model.class_num or int(meta.get("class_num", 0))
        hw = onnx_model.image_hw
        if hw is not None and hw[0] != hw[1] and image_size is None:
            raise ValueError(f"{path} takes {hw[0]}x{hw[1]} inputs; predict resizes to a square (export it with "
                             f"--height equal to --width)")
        onnx_model.check_size(image_size)
        size = image_size or (hw[0] if hw else None) or ckpt_io.recorded_image_size(meta) or 224
        if use_ema is not None:
            chosen = {"ema": "the weight average", "trained": "the trained weights"}.get(meta.get("weights"),
                                                                                      "the checkpoint's only weights")
            print(f"predict: not used here: --use_ema ({path} is an exported file, which holds {chosen}, chosen "
                  f"when it was exported)", file=sys.stderr)
        if padding is not None:
            built = f", padding {meta['padding']}" if meta.get("padding") in PADDINGS else ""
            print(f"predict: not used here: --padding {padding} ({path} is an exported file, its network built"
                  f"{built} when it was exported)", file=sys.stderr)
        model: nn.Module = onnx_model
        recorded, trained_on = meta.get("classes"), meta.get("dataset")
        weights = meta.get("weights", "")  # chosen when it was exported
        crop, exif, aa = meta.get("crop_pct"), meta.get("exif_orientation"), meta.get("antialias")
        mode, record = meta.get("interpolation"), meta
    else:
        # A run folder's newest may be pruned by a train running there before it is read: its newest then.
        path, ckpt = ckpt_io.read_newest(given, ckpt_io.load_file)
        use_ema = use_ema is not False
        built, note = padding_option(ckpt, padding, path, "predict")
        if note:
            print(f"predict: {note}", file=sys.stderr)
        model, args = model_from_checkpoint(ckpt, path, use_ema, padding=built)
        device = resolve_device(device_target)
        # channels_last, as eval runs a checkpoint's model (its default): on the CPU 1.6x as fast as NCHW at width
        # 1.0, 224x224 (27 against 43 ms an image, one thread, the 2-core development CPU); the same on a GPU
        model = model.to(device, memory_format=torch.channels_last)
        weights = ckpt_io.which_weights(ckpt, use_ema)
        if weights:
            print(ckpt_io.weights_note(ckpt, use_ema), file=sys.stderr)
        elif ckpt_io.average_only(ckpt):  # a file convert or average wrote from moving averages: its only weights
            weights = "ema"
            if not use_ema:  # --use_ema False given: no trained weights here to take
                print(ckpt_io.weights_note(ckpt, use_ema), file=sys.stderr)
        config = ckpt.get("config") or {}
        class_num = args["class_num"]
        size = image_size or ckpt_io.recorded_image_size(config) or 224
        if image_size is None and ckpt_io.recorded_image_size(config) is None:
            # as eval says it: a MindSpore .ckpt (or one converted back from it) records no size, and 224 is a
            # guess that a model trained at 48 answers with other classes
            print(f"predict: note: {path} records no image size (as a MindSpore .ckpt): predicting at image_size "
                  f"{size}; give the size it was trained at with --image_size", file=sys.stderr)
        recorded, trained_on = ckpt.get("classes"), config.get("dataset")
        reading = ckpt_io.recorded_reading(ckpt)
        crop, exif, aa = reading.get("crop_pct"), reading.get("exif_orientation"), reading.get("antialias")
        mode, record = reading.get("interpolation"), config
    if not class_num:
        raise ValueError(f"{path}: the number of classes cannot be read from the file")
    made = ckpt_io.recorded_image_size(record)
    if image_size is not None and made is not None and image_size != made:  # as eval says it (a file's fixed
        # input size refused it above)
        print(f"predict: note: image_size {made} is the size {path} {ckpt_io.image_size_said(record)}; predicting "
              f"at {image_size} as asked", file=sys.stderr)
    # Another data set's transform would feed the model inputs it was not trained on (and a file with an
    # image input would undo another normalisation than its own): refused, as eval and quantize refuse it.
    told = ckpt_io.trained_dataset(path, trained_on, dataset)
    dataset = told or guess_dataset(class_num)
    if not told:
        print("predict: note: " + guess_note(path, dataset, class_num, f"images are read and normalised as "
                                             f"{dataset}'s are", "predict with"), file=sys.stderr)
    given = (("crop_pct", crop_pct, " (resize, no crop)"), ("exif_orientation", exif_orientation, ""),
             ("antialias", antialias, ", which enlarges 32x32 images"),
             ("interpolation", interpolation, ", which enlarges 32x32 images bilinearly"))
    for name, value, how in given:
        if value is not None and dataset != "imagenet2012":
            shown = value if isinstance(value, (bool, str)) else f"{value:g}"
            raise ValueError(f"--{name} {shown}: {path} takes {cifar_name(dataset)}'s evaluation transform{how}; "
                             f"{name} is ImageNet-style models'")
    if exif_orientation is None:
        exif_orientation = dataset == "imagenet2012" and exif is True
    if antialias is None:
        antialias = aa is not False
    if interpolation is None:
        interpolation = T.recorded_interpolation(mode)
    pixels = isinstance(model, DeployedModel) and model.image_input
    norm = ckpt_io.trained_normalisation(record, dataset, path, mean, std, say=not pixels)
    if pixels and norm != ckpt_io.trained_normalisation(record, dataset, path):
        raise ValueError(f"--mean/--std: {path} takes uint8 pixels and normalises them itself, by the mean and std "
                         f"it records; leave them out")
    return Predictor(model=model, source=path, dataset=dataset, image_size=int(size), norm=norm,
                     names=class_names(class_num, recorded, labels, background_class, dataset), weights=weights,
                     device=device, crop_pct=float(crop_pct or crop or T.CROP_PCT),
                     exif_orientation=exif_orientation, antialias=antialias, interpolation=interpolation,
                     channels_last=not isinstance(model, DeployedModel))


def main(argv: Sequence[str]) -> int:
    p = CommandParser(prog="mobilenet-v1 predict", description=(
        "Top-k classes with probabilities for image files, from a checkpoint, an ONNX file, an ExecuTorch .pte, "
        "a .pt2 program or a TensorFlow Lite file."))
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (JPEG, PNG, ...) or folders of them (searched recursively)")
    p.add_argument("--ckpt_file", required=True,
                   help="checkpoint, run folder (its newest), .onnx, .pte, .pt2 or .tflite file")
    p.add_argument("--top_k", type=whole_number, default=5, help="classes per image (default 5)")
    p.add_argument("--labels", default=None,
                   help="class names: a file with one per line in label order (or a JSON list of them), or "
                        "'imagenet' / 'cifar10' / 'cifar100'")
    p.add_argument("--background_class", action="store_true",
                   help="output 0 is 'background' (TF-slim's 1001-class layout), not the seed's layout")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="the evaluation transform to use, for a file that does not record its data set "
                        "(a MindSpore .ckpt); one that does takes only its own")
    p.add_argument("--image_size", type=image_size_number, default=None,
                   help="input size (default: what the file records)")
    p.add_argument("--crop_pct", type=float, default=None,
                   help="ImageNet-style models: the centre crop's share of the resized shorter side (default: "
                        f"what the file records, else {T.CROP_PCT}, the seed's 224 of 256)")
    p.add_argument("--exif_orientation", type=bool_option, default=None, metavar="True|False",
                   help="ImageNet-style models: turn photos upright by their EXIF orientation tag (default: as the "
                        "model's run read its photos, its exif_orientation key; else False, the pixels as stored)")
    p.add_argument("--antialias", type=bool_option, default=None, metavar="True|False",
                   help="ImageNet-style models: antialiased resize (default: as the model's run resized its "
                        "photos, its antialias key; False for a MindSpore checkpoint, the seed's plain bilinear)")
    p.add_argument("--interpolation", choices=T.INTERPOLATIONS, default=None,
                   help="ImageNet-style models: the resize's interpolation (default: as the model's run resized "
                        "its photos, its interpolation key; bilinear for files from before the key)")
    add_normalisation_options(p, "the inputs are normalised by")
    p.add_argument("--use_ema", type=bool_option, default=None, metavar="True|False",
                   help="a checkpoint of a run with --ema_decay: its weight average (True, the default) or its "
                        "trained weights (an exported file holds those chosen at export)")
    add_padding_option(p, writes=False)
    p.add_argument("--batch_size", type=whole_number, default=BATCH, help=f"images per forward pass (default {BATCH})")
    add_num_workers_option(p, "loader processes that read and decode the files (default -1: min(8, CPU count) "
                              "with the model on a GPU and more than one batch of files, else none: on the CPU the "
                              "model uses the cores)")
    add_device_target_option(p, "auto", "where a checkpoint's model runs (default auto: the GPU when CUDA is "
                                        "present); an exported file runs on the CPU: .onnx in ONNX Runtime, .pte in "
                                        "ExecuTorch, .pt2 in PyTorch, .tflite in LiteRT")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default=None, metavar="F.csv|F.json",
                   help="write the results to this file (CSV or JSON, by extension) and print a summary")
    a = p.parse_args(list(argv))
    if a.top_k < 1:
        p.error("--top_k must be at least 1")
    if a.batch_size < 1:
        p.error("--batch_size must be at least 1")
    try:
        check_options(image_size=a.image_size, crop_pct=a.crop_pct)
    except ValueError as e:
        p.error(f"--{e}")
    if a.out is not None:  # checked before the model runs over a folder of images
        if a.json:
            p.error("--json prints the results, --out writes them to a file: give one of the two")
        # As every command's output: its folder made where it is not there yet (it was "X is not a folder"); not
        # a folder, the model file or the --labels file (a names.csv was written over with the results), a file in
        # a folder of images it reads, or a training checkpoint named .csv (helper-119: written over); an image file
        # given itself, named .csv or .json, too. Another extension: one line and status 1, as the other commands'
        # (it was argparse's usage and status 2).
        ckpt_io.check_output("--out", a.out, [a.ckpt_file, a.labels or "",
                                              *(i for i in a.images if not os.path.isdir(i))],
                             inside=[i for i in a.images if os.path.isdir(i)], suffix=(".csv", ".json"))
    # A path that gives no image (not there, a folder without images) is reported in its place, as a file
    # that cannot be decoded is, and the others predicted: one typo among thousands of files lost every result.
    images = image_files(a.images, keep_going=True)
    missing = [f.reason for f in images if isinstance(f, BadSample)]
    if len(missing) == len(images):  # nothing to predict: said before the model is loaded
        raise ValueError("; ".join(missing[:10]) + (f" ... ({len(missing)} paths)" if len(missing) > 10 else ""))
    ckpt_io.resolve_checkpoint_path(a.ckpt_file, "--ckpt_file")  # named by its option where it is not there
    predictor = load_predictor(a.ckpt_file, a.labels, a.background_class, a.dataset, a.image_size, a.use_ema,
                               a.device_target, a.crop_pct, a.exif_orientation, a.antialias, a.interpolation,
                               a.mean, a.std, a.padding)
    results = predictor.top_k(images, a.top_k, a.num_workers, a.batch_size)
    failed = [r for r in results if "error" in r]
    # A model with NaN weights (a diverged run's, a damaged file) gives NaN for every class: no prediction.
    nonfinite = [r["image"] for r in results if r.get("nonfinite")]
    if nonfinite:
        print(f"mobilenet-v1 predict: {predictor.source} gives outputs that are not finite (NaN or infinite) for "
              f"{len(nonfinite)} of {len(results)} image(s), {nonfinite[0]} first: its weights are damaged or the "
              f"run it is from diverged; those probabilities are no predictions (nan, null in JSON)", file=sys.stderr)
    extra = {"weights": predictor.weights} if predictor.weights else {}
    if predictor.dataset == "imagenet2012":
        extra.update(crop_pct=predictor.crop_pct, exif_orientation=predictor.exif_orientation,
                     antialias=predictor.antialias, interpolation=predictor.interpolation)
    if predictor.normalisation != normalisation(predictor.dataset):  # a run's own (--mean, --std)
        extra.update(zip(("mean", "std"), map(list, predictor.normalisation)))
    payload = {"model": predictor.source, "dataset": predictor.dataset, "image_size": predictor.image_size,
               **extra, "predictions": results}
    if a.out is not None:
        k = min(a.top_k, sum(n is not None for n in predictor.names))  # the columns whatever the outcome
        text = results_csv(results, k) if a.out.lower().endswith(".csv") else json_text(payload, indent=1)
        ckpt_io.atomic_save_text(text, a.out, errors="surrogateescape")  # a name's bytes as the folder has them
        print0(f"{len(results) - len(failed) - len(nonfinite)} image(s) predicted by {predictor.source}: results "
               f"in {a.out}")
    elif a.json:
        print(json_text(payload), flush=True)  # before the stderr line on unreadable files below (2>&1)
    else:
        for r in results:
            if "top_k" not in r:
                continue
            print0(shown_name(r["image"]))
            for t in r["top_k"]:
                print0(f"  {t['probability']:7.2%}  {shown_name(str(t['label']))}  [{t['index']}]")
    if failed:
        others = " (the others were predicted)" if len(failed) < len(results) else ""
        print(f"mobilenet-v1 predict: {len(failed)} of {len(results)} image file(s) could not be read or decoded"
              f"{others}: " + "; ".join(shown_name(r["error"]) for r in failed[:10])
              + (" ..." if len(failed) > 10 else ""), file=sys.stderr)
    return 1 if failed or nonfinite else 0
