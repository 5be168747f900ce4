"""Image transforms as pure tensor functions: batched where they can be, on any device.

The same functions serve the CPU pipeline (inside loader workers), the CIFAR-10 on-device pipeline and
the GPU JPEG pipeline, so the tests on the CPU check the code the GPU runs.
"""
import functools
import math
import random
import warnings
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from . import config

# The seed's normalisation constants (config.normalisation gives a run's).
CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD = (config.CIFAR_MEAN, config.CIFAR_STD, config.IMAGENET_MEAN,
                                                      config.IMAGENET_STD)


def quiet_torchvision_notice() -> None:
    """Leave out torchvision 0.29's notice, at every decode, that its decoders move to TorchCodec (they still work),
    ahead of the filters already set. Under PYTHONWARNINGS=error (python -W error) it ended every command that reads
    a photo with a traceback from a loader worker; pyproject.toml's pytest configuration leaves it out alike.
    Called at each command's start (cli) and where torchvision's decoders are first imported."""
    warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are "
                            "deprecated", category=DeprecationWarning)


@functools.lru_cache(maxsize=None)
def torchvision_ops() -> SimpleNamespace:
    """torchvision's decoders and resizes, imported on first use. Importing torchvision imports
    torch._dynamo (for its detection ops), about 3 s of a command's start on a 2-core CPU that a run on
    CIFAR-10 binaries at their own size, and most file commands, never need. Loaders of image files call
    it before they start their workers, which then inherit it."""
    from .runtime import interrupt_deferred

    quiet_torchvision_notice()  # a loader worker started by "spawn" imports this anew
    with interrupt_deferred():  # interrupted half way, the import failed at every later call of the process
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg
        from torchvision.ops import roi_align
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional
    return SimpleNamespace(RGB=ImageReadMode.RGB, decode_image=decode_image, decode_jpeg=decode_jpeg,
                           roi_align=roi_align, BICUBIC=InterpolationMode.BICUBIC, resize=functional.resize,
                           center_crop=functional.center_crop)

# The seed's RandomResizedCrop.
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (0.75, 1.333)


# The seed's evaluation crop: 224 of a shorter side of 256 (timm's crop_pct).
CROP_PCT = 0.875
# Image folders' resizes (the interpolation key): the seed's and torchvision's recipes' bilinear, or timm's bicubic.
INTERPOLATIONS = ("bilinear", "bicubic")


def eval_resize_size(image_size: int, crop_pct: float = CROP_PCT) -> int:
    """Shorter side before the centre crop: ``image_size / crop_pct`` rounded (256 for 224 at 0.875)."""
    return int(math.floor(image_size / crop_pct + 0.5))


# ---------------------------------------------------------------------------------------------------
# decoding

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DecodeError(ValueError):
    """A file that is not a readable image."""


def decode_rgb(data: torch.Tensor, name: str = "<bytes>", exif: bool = False) -> torch.Tensor:
    """Decode JPEG/PNG/GIF/WebP bytes (uint8 1-D tensor) to a uint8 (3, H, W) RGB tensor.

    Grayscale, CMYK and palette images come out as RGB, 16-bit images as their top 8 bits. With ``exif``,
    a JPEG or PNG is turned upright by its EXIF orientation tag (rotated and/or mirrored, as photo viewers
    show it; the ``exif_orientation`` key); without, its pixels come as stored, as PIL and torchvision
    give them by default. JPEG, GIF and WebP go to torchvision, PNG to PIL (below); anything torchvision
    cannot read falls back to PIL, and :class:`DecodeError` naming ``name`` is raised if neither can, or
    where the header claims more pixels than PIL takes (:func:`pixel_limit`, in any format; an animated GIF
    whose frames together pass it goes to PIL, which makes the first frame alone).
    """
    if data.numel() == 0:
        raise DecodeError(f"{name}: empty file")
    if data.numel() >= 8 and bytes(data[:8].tolist()) == PNG_SIGNATURE:
        # torchvision 0.29's PNG decoder ends the process (SIGSEGV) on a damaged file (each of 110 fuzzed
        # here, 30 of them with valid chunk CRCs), where 0.26's raised for each of 60; PIL raises, and gives
        # the same pixels for every kind of PNG tried (8- and 16-bit, palette, alpha, interlaced; EXIF
        # turned alike): tests/test_data.py.
        return _decode_with_pil(data, name, exif)
    if _for_pil(data, name):
        return _decode_with_pil(data, name, exif)
    tv = torchvision_ops()  # outside the try: a torchvision that cannot load is an error, not a fallback
    try:
        img = tv.decode_image(data, mode=tv.RGB, apply_exif_orientation=exif)
        if img.ndim == 4:  # animated GIF: first frame
            img = img[0]
        if img.dtype != torch.uint8:  # a 16-bit PNG decodes to uint16
            img = (img.to(torch.int32) >> 8).to(torch.uint8)
        return img
    except (RuntimeError, ValueError):
        pass
    return _decode_with_pil(data, name, exif)


# The most scans (start-of-scan markers) a JPEG may hold: libjpeg's progressive script writes 10 (6 for grayscale),
# mozjpeg's and jpegtran's a few more. Each is a pass over every coefficient of the image, and libjpeg only warns
# at a scan that repeats another ("Inconsistent progression sequence"): a 331 KB 4096x4096 JPEG of 5,000 repeated
# 33-byte scans took 83 s to decode (PIL's and torchvision's alike), a normal one 0.2 s; 100 at PIL's pixel
# limit are about 18 s.
MAX_JPEG_SCANS = 100


def pixel_limit() -> Optional[int]:
    """The most pixels a file's header may claim: PIL's decompression-bomb limit (twice
    ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 million; None where a caller set that to None)."""
    from PIL import Image

    return None if Image.MAX_IMAGE_PIXELS is None else 2 * int(Image.MAX_IMAGE_PIXELS)


def _for_pil(data: torch.Tensor, name: str) -> bool:
    """Whether a file that torchvision would decode goes to PIL instead; :class:`DecodeError` where its
    header claims more than :func:`pixel_limit` pixels, as PIL refuses a PNG of them. torchvision's decoders
    have no limit and make the whole image first: a JPEG whose frame header was damaged to 60000x60000 took
    11.5 GB and was "predicted", where the same header in a PNG was an unreadable file. Its GIF decoder makes
    every frame at the full size before :func:`decode_rgb` keeps the first (a 499-byte GIF of twenty 1x1
    frames on an 8000x8000 screen took 4.7 GB): an animated GIF whose frames together pass the limit goes to
    PIL, which makes the first alone. Only the headers are read: a JPEG's frame header by :func:`jpeg_frame`
    (9 us for a 90 KB photo on the 2-core development CPU, whose decode takes 1.3 ms), other files' by PIL's
    lazy open (30 us). A JPEG of more than :data:`MAX_JPEG_SCANS` scans is a :class:`DecodeError` too, by the same
    reading of its headers."""
    import io

    from PIL import Image

    raw = data.numpy()
    frame = jpeg_frame(raw.tobytes()) if raw.size > 2 and raw[0] == 0xFF and raw[1] == 0xD8 else None
    if frame is not None and frame.scans > MAX_JPEG_SCANS:
        raise DecodeError(f"{name}: not a readable image (it holds {frame.scans:,} scans, past the {MAX_JPEG_SCANS} "
                          f"a JPEG is read with: libjpeg makes a pass over the whole image for each, and a few "
                          f"hundred KB of them took minutes)")
    limit = pixel_limit()
    if limit is None:  # the caller took PIL's limit away: none here either
        return False
    if frame is not None:
        if frame.height and frame.width:  # else (no frame header found, a DNL's height) PIL reads the headers
            if frame.height * frame.width > limit:
                raise DecodeError(f"{name}: not a readable image (its header claims {frame.width}x{frame.height}, "
                                  f"{frame.width * frame.height:,} pixels, past the decompression-bomb limit of "
                                  f"{limit:,}: twice PIL.Image.MAX_IMAGE_PIXELS)")
            return False
    try:
        with Image.open(io.BytesIO(raw.tobytes())) as im:
            (w, h), frames = im.size, (im.n_frames if im.format == "GIF" else 1)
    except Image.DecompressionBombError as e:
        raise DecodeError(f"{name}: not a readable image ({e})") from None
    except Exception:  # headers PIL cannot read: torchvision decodes the file, or says it cannot
        return False
    return frames > 1 and frames * w * h > limit


# The first bytes of each format decode_rgb reads (BigTIFF's too; PPM and PGM: P1 to P6): what a file that no
# decoder could open set out to be, and whether a large file is worth reading at all (data.file_bytes).
_SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "BigTIFF"), (b"MM\x00+", "BigTIFF"),
               *((f"P{k}".encode(), "PNM") for k in range(1, 7)))


def image_signature(head: bytes) -> str:
    """The image format ``head`` (a file's first 12 bytes or more) starts as, or ""."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES if head.startswith(magic)), "")


def _decode_with_pil(data: torch.Tensor, name: str, exif: bool = False) -> torch.Tensor:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
            return pil_rgb(im, exif)
    except UnidentifiedImageError:  # PIL's message holds the address of its buffer: not the same twice
        kind = image_signature(data[:12].numpy().tobytes())
        raise DecodeError(f"{name}: not a readable image ("
                          + (f"a {kind} by its first bytes, cut short or damaged in its headers" if kind else
                             "no image format recognised") + ")") from None
    except MemoryError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # A header that claims over ~179 million pixels is PIL's DecompressionBombError: a damaged or
        # hostile file, skipped like any other unreadable one.
        raise DecodeError(f"{name}: not a readable image ({e})") from None
    except Exception as e:  # PIL's plugins raise others on damaged files too (a TIFF: TypeError in ImageFile.load)
        # Only what PIL itself raised: an error of our own conversion (pil_rgb's numpy and torch, whose failed
        # CPU allocation is a RuntimeError) is not a damaged file.
        # The innermost frame of PIL's or ours decides: PIL calls the standard library's Python too (a TIFF whose
        # XMP tag is ASCII text: TypeError in re.search, called by PIL's getexif as it loads the image).
        last = ""
        tb = e.__traceback__
        while tb is not None:
            module = str(tb.tb_frame.f_globals.get("__name__", ""))
            if module == "PIL" or module.startswith(("PIL.", "mobilenet_v1")):
                last = module
            tb = tb.tb_next
        if not last.startswith("PIL"):
            raise
        raise DecodeError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


# The formats whose EXIF orientation decode_rgb follows (torchvision's JPEG, PIL's PNG and TIFF; not WebP,
# which torchvision decodes as stored); None: an image made in memory.
EXIF_FORMATS = (None, "JPEG", "MPO", "PNG", "TIFF")


def pil_rgb(im, exif: bool = False) -> torch.Tensor:
    """A PIL image, any mode -> uint8 (3, H, W) RGB, as :func:`decode_rgb` gives a file of it (with ``exif``:
    turned upright by the EXIF orientation it carries, where its format is one of :data:`EXIF_FORMATS`)."""
    import numpy as np

    im.load()  # Pillow turns a TIFF upright as it loads it, and then holds no orientation to turn by again
    orientation = _pil_orientation(im) if exif and im.format in EXIF_FORMATS else 0
    # Memory: one copy of the pixels at a time besides PIL's own (a 144-million-pixel PNG of 420 KB took 2.0 GB
    # through int64 grays, np.repeat, a copy and a permuted copy; 3 bytes a pixel is what comes out).
    if im.mode.startswith("I;16") or im.mode == "I":
        # 16- or 32-bit grayscale (TIFF, PGM): convert("RGB") would clip it at 255, not scale it. PIL reads a
        # PGM of over 8 bits as "I" scaled to 16 bits whatever its values: a dark one too is shifted.
        gray = np.asarray(im)  # uint16 or int32, shifted in its own type (an arithmetic shift, as int64's)
        if im.mode != "I" or im.format == "PPM" or gray.max(initial=0) > 255:
            gray = gray >> 8
        gray = torch.from_numpy(gray.clip(0, 255).astype(np.uint8))
        return turn_upright(gray.expand(3, *gray.shape).contiguous(), orientation)
    if im.mode == "F" and not np.nanmax(np.asarray(im), initial=0.0) > 1.0:
        # 32-bit float grayscale (TIFF) on the 0-1 scale: convert("RGB") would clip it to black, not scale it.
        # (Values past 1 are taken on the 0-255 scale, as PIL converts them.)
        gray = torch.from_numpy(np.rint(np.nan_to_num(np.asarray(im, dtype=np.float64)).clip(0, 1) * 255)
                                .astype(np.uint8))
        return turn_upright(gray.expand(3, *gray.shape).contiguous(), orientation)
    rgb = im if im.mode == "RGB" else im.convert("RGB")  # (convert copies an RGB image too)
    # np.asarray: PIL's bytes (read-only); the planes copied out of it are the tensor's own, the one copy made here
    # (copy, not ascontiguousarray: a 1x1 image's transposed planes are already contiguous, and a view of PIL's
    # read-only bytes made torch warn that they are not writable)
    chw = np.asarray(rgb).transpose(2, 0, 1).copy(order="C")
    return turn_upright(torch.from_numpy(chw), orientation)


def turn_upright(img: torch.Tensor, orientation: int) -> torch.Tensor:
    """A decoded (..., H, W) image as stored, turned by its EXIF ``orientation`` (2 to 8: the standard's
    mirrorings and rotations; anything else: as it is), contiguous: the pixels torchvision's
    ``apply_exif_orientation`` gives, on any device (one copy)."""
    if not 2 <= orientation <= 8:
        return img
    if orientation >= 5:  # 5 to 8 swap height and width
        img = img.transpose(-2, -1)
    # 2: mirrored; 3: 180 degrees; 4: upside down; 5: transposed; 6: 90 degrees clockwise; 7: transverse;
    # 8: 90 degrees anticlockwise.
    dims = {2: (-1,), 3: (-2, -1), 4: (-2,), 5: (), 6: (-1,), 7: (-2, -1), 8: (-2,)}[orientation]
    return (img.flip(dims) if dims else img).contiguous()


def _pil_orientation(im) -> int:
    """A PIL image's EXIF orientation tag, for :func:`turn_upright`; 0 where it is missing or its EXIF block
    cannot be read: PIL raises SyntaxError for a block that is not TIFF data and struct.error for one cut
    short (20,000 fuzzed blocks raised nothing else; anything else is the caller's "not a readable
    image")."""
    import struct

    try:
        orientation = im.getexif().get(0x0112)
    except (SyntaxError, struct.error):
        return 0
    return orientation if isinstance(orientation, int) else 0


# ---------------------------------------------------------------------------------------------------
# random parameters (one generator, so a sample's augmentation depends only on its seed)

def random_resized_crop_box(height: int, width: int, rng: random.Random,
                            scale: Sequence[float] = RRC_SCALE,
                            ratio: Sequence[float] = RRC_RATIO) -> Tuple[int, int, int, int]:
    """(top, left, h, w) of a RandomResizedCrop: area in ``scale``, aspect ratio w/h in ``ratio``.

    Ten tries at a random area and log-uniform ratio, then the largest centred crop whose ratio is
    clamped into range (the algorithm of Szegedy et al., as torchvision and MindSpore implement it).
    ``rng`` is a per-sample ``random.Random``: drawing is plain Python, a few microseconds a sample.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = rng.randint(0, height - h)
            left = rng.randint(0, width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):  # (at least a pixel: an image 1 wide under ratios above 2 rounded h to 0)
        w = width
        h = max(1, int(round(w / min(ratio))))
    elif in_ratio > max(ratio):
        h = height
        w = max(1, int(round(h * max(ratio))))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_and_flip(height: int, width: int, seed: int, scale: Sequence[float] = RRC_SCALE,
                  ratio: Sequence[float] = RRC_RATIO) -> Tuple[Tuple[int, int, int, int], bool]:
    """A sample's RandomResizedCrop box (its area a share ``scale`` of the image's, its aspect ratio w/h in
    ``ratio``) and flip, from its seed alone: both pipelines draw this."""
    rng = random.Random(seed)
    box = random_resized_crop_box(height, width, rng, scale, ratio)
    return box, rng.random() < 0.5


_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``x * c mod 2**32`` for int64 ``0 <= x < 2**32``, in halves so that no product leaves int64."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _M32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash with good avalanche (C. Wellons' "lowbias32")."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seeded_uniform(seeds: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` uniform numbers in [0, 1) per int64 seed, as a (len(seeds), k) float32 tensor.

    Counter-based (a hash of seed and column), so batched transforms give each sample numbers that
    depend on its seed alone, on any device and whatever batch it lands in: a sample keeps its
    augmentation when the same global batch is split over several processes.
    """
    seeds = seeds.to(torch.int64)
    base = _mix32((seeds & _M32) ^ _mix32((seeds >> 32) & _M32))
    cols = [_mix32((base + _mix32(torch.full_like(base, j + 1))) & _M32) for j in range(k)]
    # The top 24 bits, so the float32 values are exact and strictly below 1.
    return torch.stack([(c >> 8).to(torch.float32) / float(1 << 24) for c in cols], dim=1)


# ---------------------------------------------------------------------------------------------------
# per-image transforms (uint8 in, uint8 out)

def recorded_interpolation(recorded: Any) -> str:
    """The ``interpolation`` a checkpoint's configuration or an exported file's metadata records; a file
    from before the key (or holding something else) resized bilinear, the default."""
    return recorded if recorded in INTERPOLATIONS else "bilinear"


def check_interpolation(interpolation: Any) -> None:
    """ValueError unless ``interpolation`` is one of :data:`INTERPOLATIONS`."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation {interpolation!r} is not one of {list(INTERPOLATIONS)}")


def resize(img: torch.Tensor, size: Sequence[int], antialias: bool = True,
           interpolation: str = "bilinear") -> torch.Tensor:
    """uint8 images (..., 3, H, W) resized to ``size`` (height, width). ``bilinear``: torchvision's resize.
    ``bicubic``: as PIL resizes (timm's transforms), the same on every device: the width first, then the
    height, each pass in float32 rounded and clipped to uint8. torchvision's uint8 bicubic rounds between
    its passes on the CPU but not on CUDA, where the overshoot of a sharp edge then reaches the output
    (up to 20 levels off PIL's)."""
    check_interpolation(interpolation)
    if interpolation == "bilinear":
        if img.dtype == torch.uint8 and tuple(size) == (1, 1):
            # PyTorch's uint8 bilinear kernel fails an internal assert making 1x1 of a channels-first tensor
            # (image_size 1 in the GPU pipeline's batched evaluation resize); it works on the channels-last
            # layout that decoded images have, which the CPU pipeline resizes, and gives the same values.
            flat = img.reshape(-1, *img.shape[-3:]).contiguous(memory_format=torch.channels_last)
            return torchvision_ops().resize(flat, [1, 1], antialias=antialias).reshape(*img.shape[:-2], 1, 1)
        return torchvision_ops().resize(img, list(size), antialias=antialias)
    x, tv = img.float(), torchvision_ops()
    for hw in ([x.shape[-2], size[1]], list(size)):
        x = tv.resize(x, hw, interpolation=tv.BICUBIC, antialias=antialias).round_().clamp_(0, 255)
    return x.to(torch.uint8)


def random_resized_crop(img: torch.Tensor, size: int, seed: int, flip: bool = True,
                        scale: Sequence[float] = RRC_SCALE, antialias: bool = True,
                        ratio: Sequence[float] = RRC_RATIO, interpolation: str = "bilinear") -> torch.Tensor:
    """The seed's train transform of one decoded image: RandomResizedCrop(size, scale) then a p=0.5 flip.
    ``antialias``: a downscale averages the pixels it covers (torchvision's and timm's resize); False:
    plain bilinear, which interpolates the four pixels around each sample (the seed's: MindSpore's).
    ``interpolation``: ``bilinear`` (the seed's, torchvision's recipes') or ``bicubic`` (timm's)."""
    (top, left, h, w), flipped = crop_and_flip(img.shape[-2], img.shape[-1], seed, scale, ratio)
    out = resize(img[..., top:top + h, left:left + w], [size, size], antialias, interpolation)
    return out.flip(-1) if flip and flipped else out


def resize_center_crop(img: torch.Tensor, size: int, crop_pct: float = CROP_PCT,
                       antialias: bool = True, interpolation: str = "bilinear") -> torch.Tensor:
    """The seed's eval transform of one decoded image: shorter side to 256 (for 224; ``size /
    crop_pct``), centre crop. ``antialias`` and ``interpolation`` as in :func:`random_resized_crop`.
    Where the crop's margin is odd, its position is rounded as :func:`centre_window` says: with
    ``antialias`` as torchvision (and timm) round it, without as the seed (MindSpore) does.

    An image over about 7 times longer than wide (a 1x8000 banner would first become 256x2,048,000,
    gigabytes) has only the centre window that the crop keeps resized, at the same scale, plus a
    margin pixel on each side: the same crop up to the rounding of its position."""
    target = eval_resize_size(size, crop_pct)
    h, w = img.shape[-2:]
    short, long = min(h, w), max(h, w)
    if long * target > 8 * size * short:
        scale = target / short
        keep = min(long, math.ceil(size / scale) + 2)
        start = (long - keep) // 2
        if w >= h:
            img, out_hw = img[..., start:start + keep], [target, max(size, round(keep * scale))]
        else:
            img, out_hw = img[..., start:start + keep, :], [max(size, round(keep * scale)), target]
        out = resize(img, out_hw, antialias, interpolation)
    else:  # the shorter side to target, the longer in proportion (truncated), as torchvision's and MindSpore's Resize
        out = resize(img, [target, int(target * w / h)] if w >= h else [int(target * h / w), target], antialias,
                     interpolation)
    if min(out.shape[-2:]) < size:  # a crop_pct over 1 (a hand-edited file's): torchvision's, which pads
        return torchvision_ops().center_crop(out, [size, size])
    top, left = (centre_window(n, size, seed=not antialias) for n in out.shape[-2:])
    return out[..., top:top + size, left:left + size]


def centre_window(n: int, size: int, seed: bool = False) -> int:
    """Where a centre crop of ``size`` starts along a side of ``n >= size`` pixels: half the margin rounded
    to even, as torchvision's ``CenterCrop`` places it, or with ``seed`` rounded down, as MindSpore's
    ``CenterCrop`` does (a margin of 159, a 334x500 photo's at 224: 80 against the seed's 79)."""
    return (n - size) // 2 if seed else int(round((n - size) / 2.0))


# ---------------------------------------------------------------------------------------------------
# batched transforms

# The most pixels a group of images of one size is resized in at once (an evaluation batch of 256 photos
# of 500x375 takes two calls): on a GPU each group is converted to float whole, 4 bytes a value.
GROUP_PIXELS = 1 << 25


def batch_resize_center_crop(images: Sequence[torch.Tensor], size: int, crop_pct: float = CROP_PCT,
                             antialias: bool = True, interpolation: str = "bilinear") -> torch.Tensor:
    """:func:`resize_center_crop` of each decoded image (uint8, (3, H, W)), as one (N, 3, size, size) batch.

    Images of one height and width are resized together, one call per group of up to
    :data:`GROUP_PIXELS` pixels: on a GPU a few kernel launches per size in the batch (photo collections
    share a few sizes: most ImageNet photos are 500x375 or 375x500) instead of per image. The values are
    those of the image-by-image transform: each image of a group is computed as it is alone."""
    groups: Dict[Tuple[Any, ...], List[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault((*img.shape, img.dtype), []).append(i)
    out: List[Optional[torch.Tensor]] = [None] * len(images)
    for key, members in groups.items():
        per_call = max(1, GROUP_PIXELS // (key[-3] * key[-2]))
        for start in range(0, len(members), per_call):
            part = members[start:start + per_call]
            group = images[part[0]][None] if len(part) == 1 else torch.stack([images[i] for i in part])
            for i, crop in zip(part, resize_center_crop(group, size, crop_pct, antialias, interpolation)):
                out[i] = crop
    return torch.stack(out)


def crop_at(images: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """The window at offset (``dy[i]``, ``dx[i]``) in ``0..2*padding`` of each zero-padded image."""
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    dev = images.device
    dy, dx = dy.to(dev), dx.to(dev)
    rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])  # (N, H)
    cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])  # (N, W)
    batch = torch.arange(n, device=dev)[:, None, None]
    # Advanced indexing over dims 0, 2, 3 puts the channel dim last: (N, H, W, C).
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def batch_resize_uint8(images: torch.Tensor, size: int, dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """Bilinear resize of a uint8 batch to (size, size), rounded back to uint8 as the seed's Resize is. ``dtype``
    float32: those rounded values left in float32, for :class:`Normalize` next (CIFAR's loader): the same batch
    after it, without a pass to uint8 and one back (a batch of 128 at 224: 19 million values a pass). A batch
    already of that size is returned as it is, uint8."""
    if images.shape[-2:] == (size, size):
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False,
                        antialias=size < max(images.shape[-2:]))
    out = out.round_().clamp_(0, 255)
    return out if dtype == torch.float32 else out.to(dtype)


class Normalize:
    """uint8 (N, 3, H, W) -> float32, ``(x / 255 - mean) / std``, channels_last or contiguous (NCHW) as
    asked, whatever the layout of the batch given: CIFAR's batched crop and flip leave theirs channels_last,
    and a conv given a channels_last batch runs channels_last, its weights' gradients too, in a model kept
    NCHW (``--channels_last False``; DDP then warned that the gradients' strides were not its buckets')."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device,
                 channels_last: bool = False):
        std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)
        self.shift = -mean_t / std_t
        self.channels_last = channels_last

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images.contiguous()
        # uint8 promoted inside addcmul: one pass and one float tensor, not a float copy first (the same values)
        out = torch.addcmul(self.shift, images if images.dtype == torch.uint8 else images.float(), self.scale)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out


# batch_resized_crop joins images up to this size whole, whatever their crops (ImageNet's average
# 500x375 is 0.19 million pixels).
WHOLE_IMAGE_PIXELS = 1 << 20


def batch_resized_crop(images: List[torch.Tensor], boxes: Sequence[Tuple[int, int, int, int]], size: int,
                       dtype: Optional[torch.dtype] = None, antialias: bool = True,
                       interpolation: str = "bilinear") -> torch.Tensor:
    """Crop ``boxes[i]`` = (top, left, h, w) out of ``images[i]`` (uint8, (3, H_i, W_i), sizes may differ)
    and resize each crop to (size, size) bilinearly, all in one ``roi_align`` call (``antialias``), or in
    two gathers (:func:`_bilinear_crops`: plain bilinear, the values of ``resized_crop`` with
    ``antialias=False``, the seed's).

    roi_align averages ``ceil(crop / size)`` bilinear samples per output pixel and axis, which filters a downscale
    the way an antialiased resize does. The crops share one canvas, crop ``i`` at the top left of its plane ``i``;
    each region of interest spans the whole crop, edge to edge, so its samples sit where a resize puts them
    (``(j + 0.5) * crop / size - 0.5``: a crop of the output's size comes out as it is). Samples past the crop's last
    row or column read a copy of that row or column, one more row and column of the canvas (roi_align clamps those
    before the first itself), as a resize clamps; the canvas beyond, never read, holds other pixels. (The region
    was from the crop's first to last pixel centre, which put every sample up to half a pixel off: a crop of the
    output's size came out blurred, up to 95 of 255 from the CPU pipeline's on photos; helper-247.) The canvas is
    gathered in a few batched operations, whatever the batch size: the images are joined into one flat tensor and
    each canvas row is the window of it where the crop's row starts. Copying the crops in one by one cost a Python
    indexing and a copy launch per crop in the thread that feeds the GPU. An image of over
    :data:`WHOLE_IMAGE_PIXELS` pixels and 4 times its crop's is joined as its crop alone (a copy), so a batch of
    large photos does not join gigabytes of pixels the crops leave out. Returns a (N, 3, size, size) tensor of
    ``dtype`` (float16 on CUDA, float32 on the CPU by default) with values in [0, 255].

    ``interpolation`` ``bicubic``: each crop is resized on its own, by the CPU pipeline's :func:`resize`
    (its uint8 values: a few kernel launches per crop on a GPU).
    """
    tv = torchvision_ops()
    device = images[0].device
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if interpolation != "bilinear":
        crops = [resize(img[:, top:top + h, left:left + w], [size, size], antialias, interpolation)
                 for img, (top, left, h, w) in zip(images, boxes)]
        return torch.stack(crops).to(dtype)
    flats, starts, rois = [], [], []
    offset = height = width = 0
    for i, (img, (top, left, h, w)) in enumerate(zip(images, boxes)):
        if max(h, w) > 4 * size:
            crop = img[:, top:top + h, left:left + w]
            if not antialias:
                # A very large crop would inflate the shared canvas: resized alone (its final values, as
                # uint8), which the canvas's resize of size to size then keeps as they are.
                crop = resize(crop, [size, size], antialias=False)
            else:
                # A very large crop would inflate the shared canvas: pre-shrink it, antialiased, to 2x.
                scale = 2 * size / max(h, w)
                crop = tv.resize(crop, [max(2, round(h * scale)), max(2, round(w * scale))], antialias=True)
            img, (top, left), (h, w) = crop, (0, 0), crop.shape[-2:]
        elif img.shape[-2] * img.shape[-1] > max(4 * h * w, WHOLE_IMAGE_PIXELS):
            # A large photo with a small crop: the crop alone is joined (one copy), not the whole image.
            img, top, left = img[:, top:top + h, left:left + w], 0, 0
        rows, cols = img.shape[-2:]
        flats.append(img.reshape(-1))
        # where the crop's first row starts in the flat tensor; a channel, and a row, further on
        starts.append((offset + top * cols + left, rows * cols, cols, h, w))
        rois.append((i, 0.0, 0.0, w, h) if antialias else (h, w))
        offset += 3 * rows * cols
        height, width = max(height, h), max(width, w)
    # The strided view's last windows reach past the last image's end, into this run of zeros (gathered only into
    # columns past a crop's last: the first of them is written over below, the others roi_align never reads).
    flats.append(torch.zeros(width + 1, dtype=torch.uint8, device=device))
    windows = torch.cat(flats).as_strided((offset + 1, width + 1), (1, 1))  # row r: flat[r:r + width + 1]
    first, channel, row, crop_h, crop_w = to_device_nowait(torch.tensor(starts, dtype=torch.long),
                                                           device).T[:, :, None, None]
    y = torch.arange(height + 1, device=device)  # a row more than the tallest crop, and a column more
    # Rows past a crop's last read that row again (not the image's rows below the crop, nor another image's).
    at = first + torch.arange(3, device=device)[:, None] * channel + torch.minimum(y, crop_h - 1) * row
    canvas = windows[at]  # (N, 3, height + 1, width + 1), a copy
    if not antialias:  # _bilinear_crops clamps to each crop itself: nothing past it is read
        return _bilinear_crops(canvas.to(dtype), to_device_nowait(torch.tensor(rois, dtype=torch.float32), device),
                               size)
    # The one column past each crop's last that roi_align reads takes that last column's values (not the image's
    # pixels beside the crop); the columns beyond are never read.
    column = crop_w[:, None].expand(-1, 3, height + 1, 1)
    canvas.scatter_(-1, column, canvas.gather(-1, column - 1))
    # roi_align places its samples in its input's type: past 1024 float16 steps by whole pixels, so a fractional
    # position rounds; a canvas that wide (crops of over 4 x 256, not pre-shrunk) is resampled in float32.
    work = torch.float32 if dtype == torch.float16 and max(height, width) >= 1024 else dtype
    # Not waiting for the work just queued (a plain copy from pageable memory would wait for it on the host).
    rois_t = to_device_nowait(torch.tensor(rois, dtype=torch.float32), device).to(work)
    out = tv.roi_align(canvas.to(work), rois_t, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return out.to(dtype)


def _bilinear_crops(canvas: torch.Tensor, extents: torch.Tensor, size: int) -> torch.Tensor:
    """Plain bilinear resize of crop ``i``, the top left ``extents[i]`` = (h, w) of plane ``i`` of ``canvas``,
    to (size, size): PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` of the crop alone.
    Output pixel ``j`` samples the crop at ``(j + 0.5) * h / size - 0.5`` (at least 0) and interpolates
    between the two rows, then the two columns, around it; a sample past the crop's last row or column
    takes that row or column (the canvas beyond it is never read). Rows first, as one gather on the
    whole batch, then columns."""
    n, c, _, width = canvas.shape
    centres = torch.arange(size, device=canvas.device, dtype=torch.float32) + 0.5

    def taps(extent: torch.Tensor):
        """Each crop's two neighbours along one axis and the second's weight, (N, size) each."""
        extent = extent[:, None]
        at = (centres * (extent / size) - 0.5).clamp_(min=0)
        low = at.floor().clamp_(max=extent - 1)
        high = torch.minimum(low + 1, extent - 1)
        return low.long(), high.long(), (at - low).to(canvas.dtype)

    low, high, weight = taps(extents[:, 0])
    rows = [canvas.gather(2, i[:, None, :, None].expand(n, c, size, width)) for i in (low, high)]
    rows = torch.lerp(rows[0], rows[1], weight[:, None, :, None])  # (N, C, size, width)
    low, high, weight = taps(extents[:, 1])
    cols = [rows.gather(3, i[:, None, None, :].expand(n, c, size, size)) for i in (low, high)]
    return torch.lerp(cols[0], cols[1], weight[:, None, None, :])


def to_device_nowait(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor (draws, indices) on ``device``: through pinned memory on CUDA, so the copy
    does not wait for the work queued there. A tensor already off the host (the CIFAR loader's flips,
    drawn on the device) is moved as it is: only host memory can be pinned, a CUDA tensor's
    ``pin_memory()`` raises."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def flip_where(images: torch.Tensor, flags: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Flip left-right (``dim`` -1; upside down: -2) the images of a batch whose flag is true."""
    return torch.where(to_device_nowait(flags, images.device)[:, None, None, None], images.flip(dim), images)


# The column of seeded_uniform that draws a sample's vertical flip: past those the CIFAR loader draws its
# crop offsets and horizontal flip from (0 to 2), so turning it on changes none of them.
VFLIP_COLUMN = 3


def vflips(seeds: Any, p: float) -> torch.Tensor:
    """Which samples of ``seeds`` (their augmentation seeds, a tensor or a sequence of ints) are flipped
    upside down at chance ``p`` (``--vflip``): column :data:`VFLIP_COLUMN` of :func:`seeded_uniform` below
    ``p`` (compared in float32, as the tensor is), from each seed alone, the same in every pipeline, on the
    CPU. A sequence is hashed in Python, the same arithmetic on ints: a loader worker's single seed costs
    microseconds that way, against the 0.7 ms of the tensor operations."""
    if isinstance(seeds, torch.Tensor):
        return seeded_uniform(seeds.to("cpu", torch.int64), VFLIP_COLUMN + 1)[:, VFLIP_COLUMN] < p
    below = float(torch.tensor(p, dtype=torch.float32))
    column = _mix32_int(VFLIP_COLUMN + 1)
    flags = []
    for seed in seeds:
        seed = int(seed)
        base = _mix32_int((seed & _M32) ^ _mix32_int((seed >> 32) & _M32))
        flags.append((_mix32_int((base + column) & _M32) >> 8) / float(1 << 24) < below)
    return torch.tensor(flags, dtype=torch.bool)


def _mix32_int(x: int) -> int:
    """:func:`_mix32` of one Python int in [0, 2**32)."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


class JpegFrame(NamedTuple):
    """A JPEG's frame header: the SOF marker says baseline (0xC0), extended (0xC1), progressive (0xC2)
    or another coding; components are 3 for YCbCr, 1 for grayscale, 4 for CMYK/YCCK; height and width
    are the decoded image's as stored (height 0: given later in the file, by a DNL marker).
    ``orientation``: the EXIF orientation tag of its headers, 1 to 8; 0 where it has none; -1 where that
    cannot be told (:func:`jpeg_frame`: an EXIF block that cannot be read or holds another value, a first
    APP1 block that is not EXIF, headers not read to the first scan).

    ``complete``: whether the data runs to its end-of-image marker (FF D9) after the start of its first
    scan. Entropy-coded scan data never holds FF D9 (a data byte FF is stuffed as FF 00), and thumbnails
    sit before the first scan, so a file cut short anywhere in its scans has none there. nvJPEG "decodes"
    such a file without an error, its output not the file's (benchmarks/RESULTS.md, 2026-11-29), so the
    GPU pipeline's workers decode one without the marker themselves, as the CPU pipeline does: the two
    pipelines keep and skip the same files. Bytes after the marker are allowed, as libjpeg allows them."""
    marker: int = 0
    components: int = 0
    height: int = 0
    width: int = 0
    orientation: int = 0
    complete: bool = False
    scans: int = 0  # its start-of-scan markers (FF DA; never in scan data, where FF is stuffed as FF 00)

    @property
    def gpu_decodable(self) -> bool:
        """Baseline, extended or progressive YCbCr JPEGs go to nvJPEG; CMYK, grayscale, lossless,
        arithmetic-coded and non-JPEG files are decoded on the CPU."""
        return self.components == 3 and self.marker in (0xC0, 0xC1, 0xC2)


def _jpeg_markers(data: bytes) -> Iterator[Tuple[int, int]]:
    """(marker, offset) of each marker with a length among a JPEG's headers, from after its start-of-image
    up to and including its first start of scan (DA), where the walk ends; it ends early at a byte where
    a marker should be and is not, or where the bytes run out. Fill bytes and markers without a length
    (RSTn, TEM, a repeated SOI) are stepped over."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        yield marker, i
        if marker == 0xDA:
            return
        i += 2 + ((data[i + 2] << 8) | data[i + 3])


def jpeg_frame(data: bytes) -> JpegFrame:
    """The frame header of a JPEG file's bytes, the EXIF orientation among the headers up to the first
    scan (where libjpeg reads them) and whether the data is complete, in one walk of the headers; all
    zeros (not complete) if ``data`` is not a JPEG whose frame header could be found."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return JpegFrame()
    frame, orientation, app1_seen, scan, complete = None, 0, False, False, False
    for marker, i in _jpeg_markers(data):
        if marker == 0xDA:  # start of scan: the headers are over
            scan, complete = True, data.rfind(b"\xff\xd9") > i
            break
        length = (data[i + 2] << 8) | data[i + 3]
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): length, precision, height, width, components
        if frame is None and 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 >= len(data):
                break
            frame = (marker, data[i + 9], (data[i + 5] << 8) | data[i + 6], (data[i + 7] << 8) | data[i + 8])
        elif marker == 0xE1 and not app1_seen:
            # torchvision reads the orientation from the first APP1 block, whatever it holds: only a plain
            # EXIF block there is read here, anything else is "cannot tell" (-1).
            app1_seen = True
            block = data[i + 4:i + 2 + length]
            orientation = exif_orientation(block[6:]) if block[:6] == b"Exif\x00\x00" else -1
    if not frame:
        return JpegFrame()
    # Headers not read to the first scan (stray bytes, a cut file) may hide a block libjpeg would read.
    return JpegFrame(*frame, orientation if scan or orientation else -1, complete, data.count(b"\xff\xda"))


def exif_orientation(tiff: bytes) -> int:
    """The orientation tag (0x0112) of an EXIF block's first directory (``tiff``: the block after the
    ``Exif`` and two zero bytes that open it): 1 to 8; 0 where the directory has no such tag; -1 where
    the block cannot be read or the tag holds another value."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return -1
    order = "little" if tiff[:2] == b"II" else "big"

    def number(at: int, size: int) -> int:
        return int.from_bytes(tiff[at:at + size], order)

    if number(2, 2) != 42:
        return -1
    start = number(4, 4)
    if start + 2 > len(tiff):
        return -1
    count = number(start, 2)
    if start + 2 + 12 * count > len(tiff):
        return -1
    for k in range(count):
        entry = start + 2 + 12 * k
        if number(entry, 2) == 0x0112:
            value = number(entry + 8, 2)  # type SHORT, one value, in the entry's first two bytes
            return value if number(entry + 2, 2) == 3 and number(entry + 4, 4) == 1 and 1 <= value <= 8 else -1
    return 0


def gpu_decodable(data: bytes) -> bool:
    """Whether nvJPEG takes this file (:attr:`JpegFrame.gpu_decodable`)."""
    return jpeg_frame(data).gpu_decodable

