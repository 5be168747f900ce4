"""The GPU input pipeline's code, run on the CPU (``device="cpu"``): same functions as on CUDA."""
import contextlib
import copy
import dataclasses
import gc
import io
import os
import pickle
import threading
import time
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image

from mobilenet_v1 import data, train
from mobilenet_v1 import transforms as T
from mobilenet_v1.config import ConfigError, load_config, to_dict
from torchvision.transforms.v2 import functional as TF
from mobilenet_v1.data import (BAD, ENCODED, PREFETCH_BATCHES, BackgroundBatches, BadSample, BatchedImageLoader,
                               CifarLoader, CropDraw, DataOptions, DecodedBatch, EncodedImageDataset,
                               ImageFolderDataset, ImageFolderLoader, SharedSlots, build_loader, collate_encoded,
                               decode_batch, encoded_loader, find_images, join_within, load_cifar, run_ahead)

from conftest import exif_jpeg, jpeg_bytes, smooth_image

CPU = torch.device("cpu")


def coordinate_png(h: int, w: int) -> bytes:
    """A lossless image whose red channel is x * 255 / (w - 1) and green y * 255 / (h - 1)."""
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255.0 / (w - 1), yy * 255.0 / (h - 1), np.full_like(xx, 128.0)], -1)
    buf = io.BytesIO()
    Image.fromarray(arr.round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def coordinate_folder(tmp_path):
    root = tmp_path / "coords"
    (root / "a").mkdir(parents=True)
    for i, (h, w) in enumerate([(255, 256), (200, 320), (300, 180), (256, 256)]):
        (root / "a" / f"{i}.png").write_bytes(coordinate_png(h, w))
    return root


def test_batched_crops_stay_in_the_seeds_area_and_ratio_and_flip_half(coordinate_folder):
    """Read the crop back from the pixels: the red channel at the left/right edge gives x, the green
    channel at the top/bottom gives y; so the output reveals the box and whether it was flipped."""
    loader = BatchedImageLoader(str(coordinate_folder), batch_size=4, train=True, image_size=32, device=CPU, seed=3,
                                num_workers=0)
    loader.normalize = lambda x: x  # inspect pixel values in [0, 255]
    sizes = [(255, 256), (200, 320), (300, 180), (256, 256)]
    areas, ratios, flips = [], [], 0
    for epoch in range(40):
        loader.set_epoch(epoch)
        for x, y in loader:
            for img, idx in zip(x, loader.sampler.indices().tolist()):
                h, w = sizes[idx]
                red, green = img[0].double(), img[1].double()
                x_left, x_right = red[:, 0].mean() * (w - 1) / 255, red[:, -1].mean() * (w - 1) / 255
                if x_left > x_right:
                    flips += 1
                    x_left, x_right = x_right, x_left
                y_top, y_bottom = green[0].mean() * (h - 1) / 255, green[-1].mean() * (h - 1) / 255
                # edge pixel centres sit half an output pixel inside the crop
                cw = (x_right - x_left) * 32 / 31
                ch = (y_bottom - y_top) * 32 / 31
                areas.append(cw * ch / (h * w))
                ratios.append(cw / ch)
    assert len(areas) == 160
    assert min(areas) > 0.08 * 0.85 and max(areas) < 1.0 * 1.05
    assert min(ratios) > 0.75 * 0.9 and max(ratios) < 1.333 * 1.1
    assert np.percentile(areas, 90) - np.percentile(areas, 10) > 0.3  # really random, not one box
    assert 0.35 < flips / 160 < 0.65


def test_gpu_pipeline_draws_the_cpu_pipelines_boxes(image_folder):
    """Same seeds, same boxes and flips: the two pipelines differ only in the resampling kernel."""
    opts = dict(batch_size=5, train=True, image_size=40, device=CPU, seed=11, num_workers=0)
    cpu = ImageFolderLoader(str(image_folder / "train"), **opts)
    gpu = BatchedImageLoader(str(image_folder / "train"), **opts)
    (xc, yc), (xg, yg) = next(iter(cpu)), next(iter(gpu))
    assert torch.equal(yc, yg)
    # antialiased bilinear resize vs roi_align box-averaged bilinear samples: close, not identical
    assert (xc - xg).abs().mean() < 0.1
    # within about 2 levels of 255 (0.04 of a std): the region from first to last pixel centre put every sample up
    # to half a pixel off, 5 levels here and up to 95 on photos (helper-247)
    assert (xc - xg).abs().max() < 0.04


def test_a_batched_crop_of_the_outputs_size_is_the_crop_and_an_upscale_is_the_resizes():
    """A crop of the output's size comes out as it is (a checkerboard stays one: it came out grey), and an
    enlarged crop is the resize's (antialiasing does nothing to an upscale) within rounding."""
    board = ((torch.arange(32)[:, None] + torch.arange(32)) % 2 * 255).to(torch.uint8).expand(3, 32, 32)
    board = board.contiguous()
    gen = torch.Generator().manual_seed(7)
    small = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8, generator=gen)
    out = T.batch_resized_crop([board, small], [(0, 0, 32, 32), (2, 3, 10, 12)], 32)
    assert torch.equal(out[0], board.float())
    want = TF.resized_crop(small, 2, 3, 10, 12, [32, 32], antialias=True).float()
    assert (out[1] - want).abs().max() <= 1.0


def test_without_antialiasing_both_pipelines_make_the_same_training_batches(image_folder):
    """antialias False: both pipelines resize each crop with plain bilinear, the seed's: their batches agree
    within a level (antialiased, only near each other: above), and differ from the antialiased ones."""
    opts = dict(batch_size=5, train=True, image_size=40, device=CPU, seed=11, num_workers=0)
    cpu = ImageFolderLoader(str(image_folder / "train"), antialias=False, **opts)
    gpu = BatchedImageLoader(str(image_folder / "train"), antialias=False, **opts)
    (xc, yc), (xg, yg) = next(iter(cpu)), next(iter(gpu))
    assert torch.equal(yc, yg)
    assert (xc - xg).abs().max() <= 1 / (255 * 0.224) + 1e-5  # one uint8 step, normalised
    antialiased, _ = next(iter(ImageFolderLoader(str(image_folder / "train"), **opts)))
    assert not torch.equal(antialiased, xc)


def test_vflip_turns_the_samples_its_seeds_draw_upside_down_alike_in_every_pipeline(image_folder, cifar_dir):
    """--vflip P: after the crop and horizontal flip, each sample whose seed draws under P is flipped upside
    down: the same samples in CIFAR's loader and both image folder pipelines, none of the other draws
    moved (P 0 and P 1 give the same batch, up to the flip)."""
    def batch(cls, root, p, train=True, **kw):
        loader = cls(str(root), batch_size=8, train=train, image_size=32, device=CPU, seed=5, vflip=p, **kw)
        loader.set_epoch(1)
        return next(iter(loader))[0], loader.sampler.seeds()[:8]

    images, labels = load_cifar(str(cifar_dir), True)
    cifar = (lambda _, **k: CifarLoader(images, labels, **k))
    for cls, root, kw in ((ImageFolderLoader, image_folder / "train", {"num_workers": 0}),
                          (BatchedImageLoader, image_folder / "train", {"num_workers": 0}), (cifar, "", {})):
        (upright, seeds), (upside_down, _), (half, _) = (batch(cls, root, p, **kw) for p in (0.0, 1.0, 0.5))
        assert torch.equal(upside_down, upright.flip(-2)) and not torch.equal(upside_down, upright)
        turned = [torch.equal(h, d) and not torch.equal(h, u) for h, u, d in zip(half, upright, upside_down)]
        assert all(torch.equal(h, d if t else u) for h, u, d, t in zip(half, upright, upside_down, turned))
        assert turned == T.vflips(seeds, 0.5).tolist() and 0 < sum(turned) < 8  # each pipeline: its seeds' draws
        assert torch.equal(batch(cls, root, 1.0, train=False, **kw)[0], batch(cls, root, 0.0, train=False, **kw)[0])
    loader = CifarLoader(images, labels, batch_size=192, train=True, image_size=32, device=CPU, seed=5, vflip=0.5)
    share = float(T.vflips(loader.sampler.seeds(), 0.5).float().mean())
    assert 0.4 < share < 0.6
    cfg = load_config(["--vflip=0.25"])  # what train hands the loaders; a resume that changes it says so
    assert train.data_options(cfg).vflip == 0.25
    assert "vflip 0.25; continuing with this run's" in train.recipe_change({"config": to_dict(cfg)}, "a.ckpt",
                                                                            load_config([]))
    # A worker's seeds, hashed in Python, draw what the tensor of them draws (any int64, the chance in float32).
    many = torch.cat([torch.randint(-2**62, 2**62, (4000,), generator=torch.Generator().manual_seed(0)),
                      torch.arange(-50, 50), torch.tensor([2**63 - 1, -2**63])])
    drawn = T.seeded_uniform(many[:3], T.VFLIP_COLUMN + 1)[:, T.VFLIP_COLUMN].tolist()  # p at a draw's edges
    for p in [0.3, 1 / 3, 0.5, 0.999999] + [v + d for v in drawn for d in (-2.0**-26, 2.0**-26, -1e-12, 1e-12)]:
        assert torch.equal(T.vflips(many, p), T.vflips(many.tolist(), p)), p
    with pytest.raises(ConfigError, match=r"option --vflip: vflip must be in \[0, 1\]"):
        load_config(["--vflip=1.5"])


def test_workers_draw_the_training_crops_from_the_file_header(image_folder):
    """Loader workers draw each training sample's box and flip from the size in its JPEG header (or
    the image they decoded themselves); the batch is the same as when drawn after decoding, a draw made
    for the decoded image's size is what the crop follows, and one made for another size is not used."""
    folder = str(image_folder / "train")
    samples, _ = find_images(folder)
    batch = collate_encoded([EncodedImageDataset(samples, train=True)[(i, 500 + i)] for i in range(len(samples))])
    images = decode_batch(batch, CPU)
    assert len(images) == len(samples) == 15 and batch.kinds.count(0) == 12
    for img, draw, seed in zip(images, batch.draws, batch.seeds):
        assert draw.size == tuple(img.shape[-2:])
        assert (draw.box, draw.flip) == T.crop_and_flip(img.shape[-2], img.shape[-1], seed)
    loader = BatchedImageLoader(folder, batch_size=4, train=True, image_size=24, device=CPU, seed=1, num_workers=0)
    after_decoding = loader.transform(images, batch.seeds)
    assert torch.equal(loader.transform(images, batch.seeds, batch.draws), after_decoding)
    other_size = [CropDraw((d.size[0] + 1, d.size[1]), (0, 0, 2, 2), not d.flip) for d in batch.draws]
    assert torch.equal(loader.transform(images, batch.seeds, other_size), after_decoding)
    same_size = [CropDraw(d.size, (0, 0, 2, 2), d.flip) for d in batch.draws]  # a draw that fits is used
    taken = loader.transform(images, batch.seeds, same_size)
    assert all(not torch.equal(a, b) for a, b in zip(taken, after_decoding))
    assert EncodedImageDataset(samples)[(0, 1)][5] is None  # evaluation: nothing to draw


def test_each_batched_crop_is_its_crop_resampled_alone():
    """The batch's canvas is gathered from all the images joined into one tensor: each crop must come
    out as roi_align makes it of that crop alone, edge to edge, its last row and column repeated once
    (where a resize clamps), whatever the other images' sizes and crops (an offset one row, channel or
    image out would read other random pixels, and a sample past the crop the pixels beside it), and a crop
    too large for the canvas (pre-shrunk) must still be that crop resized."""
    gen = torch.Generator().manual_seed(3)
    sizes = [(37, 52), (3, 90), (64, 5), (2, 2), (120, 71), (50, 50), (9, 200), (71, 64), (1100, 1000)]
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen) for h, w in sizes]
    images[4] = torch.from_numpy(smooth_image(120, 71, 4)).permute(2, 0, 1).contiguous()  # the pre-shrunk one
    # a permuted view, as the CPU's decode_jpeg returns (HWC memory)
    images[5] = torch.randint(0, 256, (50, 50, 3), dtype=torch.uint8, generator=gen).permute(2, 0, 1)
    boxes = [(5, 7, 30, 40), (0, 3, 2, 60), (10, 0, 50, 5), (0, 0, 2, 2), (3, 2, 110, 69), (0, 0, 50, 50),
             (1, 150, 8, 50), (20, 30, 51, 34), (700, 900, 40, 50)]  # the last: a large photo's small crop
    out = T.batch_resized_crop(images, boxes, 16)
    assert out.shape == (9, 3, 16, 16) and out.dtype == torch.float32
    from torchvision.ops import roi_align
    for img, (top, left, h, w), got in zip(images, boxes, out):
        crop = img[:, top:top + h, left:left + w].float()
        if max(h, w) > 4 * 16:  # pre-shrunk: the crop resized, near enough
            want = TF.resized_crop(img, top, left, h, w, [16, 16], antialias=True).float()
            # (roi_align's box of samples is not resize's filter: a level or two on this image; another image's
            # pixels, all noise, would be tens)
            assert (got - want).abs().mean() < 2.0, (h, w)
        else:
            padded = torch.nn.functional.pad(crop[None], (0, 1, 0, 1), mode="replicate")
            alone = roi_align(padded, torch.tensor([[0, 0.0, 0.0, w, h]]), (16, 16),
                              spatial_scale=1.0, sampling_ratio=-1, aligned=True)[0]
            assert torch.equal(got, alone), (h, w)


def test_plain_bilinear_crops_are_each_crop_resized_alone_as_without_antialiasing():
    """antialias False (the seed's resize): each crop of the batch comes out as PyTorch's bilinear resize
    without antialiasing makes it of that crop alone (a sample past its last row or column reads that, not
    the canvas beyond), up or down, with 1-pixel sides, a large photo's small crop and a crop too large for
    the canvas (resized alone first); within a level of the CPU pipeline's uint8 resize. On noise the
    antialiased batch is another."""
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(5)
    sizes = [(37, 52), (3, 90), (64, 5), (2, 2), (120, 71), (50, 50), (9, 200), (1100, 1000), (300, 700)]
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen) for h, w in sizes]
    images[5] = images[5].permute(1, 2, 0).contiguous().permute(2, 0, 1)  # HWC memory, as decode_jpeg's
    boxes = [(5, 7, 30, 40), (0, 3, 2, 60), (10, 0, 50, 5), (0, 0, 2, 2), (3, 2, 110, 69), (0, 0, 50, 50),
             (1, 150, 8, 50), (700, 900, 40, 50), (10, 20, 280, 650)]  # the last: too large for the canvas
    out = T.batch_resized_crop(images, boxes, 16, antialias=False)
    assert out.shape == (9, 3, 16, 16) and out.dtype == torch.float32
    for img, (top, left, h, w), got in zip(images, boxes, out):
        crop = img[:, top:top + h, left:left + w]
        uint8 = TF.resized_crop(img, top, left, h, w, [16, 16], antialias=False)
        if max(h, w) > 4 * 16:
            assert torch.equal(got, uint8.float()), (h, w)
        else:
            want = F.interpolate(crop[None].float(), (16, 16), mode="bilinear", align_corners=False)[0]
            assert (got - want).abs().max() < 1e-3, (h, w)
            assert (got.round() - uint8.float()).abs().max() <= 1, (h, w)
    antialiased = T.batch_resized_crop(images, boxes, 16)
    assert (antialiased - out)[0].abs().max() > 30  # a downscale of noise: pixels averaged, not sampled


def test_batched_crops_one_pixel_high_or_wide_keep_their_pixels():
    """RandomResizedCrop draws 1-pixel sides on images a few pixels across (and on 1xN images): the
    batched crop gives what the per-image one gives (a 1-pixel side resampled is that pixel), not the
    zeros of an empty roi_align region."""
    ramp = torch.arange(50, dtype=torch.uint8).mul(5).view(1, 1, 50).expand(3, 1, 50).contiguous()
    column = ramp.transpose(1, 2).contiguous()  # 50x1
    small = torch.arange(27, dtype=torch.uint8).mul(9).view(3, 3, 3)
    cases = [(ramp, (0, 24, 1, 1)), (small, (0, 1, 1, 1)), (ramp, (0, 10, 1, 30)), (column, (10, 0, 30, 1)),
             (small, (1, 1, 2, 1))]
    out = T.batch_resized_crop([img for img, _ in cases], [box for _, box in cases], 8)
    for (img, (top, left, h, w)), got in zip(cases, out):
        crop = img[:, top:top + h, left:left + w].float()
        want = TF.resized_crop(img, top, left, h, w, [8, 8], antialias=True).float()
        if h == w == 1:
            assert torch.equal(got, crop.expand(3, 8, 8)) and torch.equal(want, got)
        # constant along the 1-pixel side, inside the crop's range, on both paths
        axis = 1 if h == 1 else 2
        assert torch.equal(got, got.narrow(axis, 0, 1).expand_as(got))
        assert crop.amin() - 0.5 <= got.amin() and got.amax() <= crop.amax() + 0.5
        if h == 1 or w == 1 and h > 2:  # a long thin crop: the same samples as the per-image resize, but at its
            # ends, where roi_align clamps a sample before the first pixel and the resize drops its weight
            assert (got - want).abs().max() <= 2.5, (tuple(img.shape), (top, left, h, w))
            if h == 1:
                assert (got - want)[..., 1:-1].abs().max() <= 0.5


@pytest.mark.parametrize("crop_pct,antialias", [(T.CROP_PCT, True), (1.0, True), (T.CROP_PCT, False)])
def test_gpu_pipeline_eval_matches_cpu_pipeline_within_rounding(image_folder, crop_pct, antialias):
    opts = dict(batch_size=3, train=False, image_size=32, device=CPU, seed=1, num_workers=0, drop_last=False,
                crop_pct=crop_pct, antialias=antialias)
    cpu = list(ImageFolderLoader(str(image_folder / "validation_preprocess"), **opts))
    gpu = list(BatchedImageLoader(str(image_folder / "validation_preprocess"), **opts))
    assert len(cpu) == len(gpu) == 2
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert torch.equal(yc, yg)
        # one uint8 step, normalised: 1 / (255 * 0.224)
        assert (xc - xg).abs().max() <= 1 / (255 * 0.224) + 1e-5


@pytest.mark.parametrize("antialias", [True, False])
def test_image_size_1_evaluates_alike_in_both_pipelines(image_folder, antialias):
    """image_size 1: the GPU pipeline's batched resize of a stack of photos (channels first) to 1x1 met an
    internal assert of PyTorch's uint8 bilinear kernel, which the CPU pipeline's decoded (channels-last)
    photos pass; both now give the same pixels, those of the float resize within a level."""
    opts = dict(batch_size=3, train=False, image_size=1, device=CPU, seed=1, num_workers=0, drop_last=False,
                antialias=antialias)
    cpu = list(ImageFolderLoader(str(image_folder / "validation_preprocess"), **opts))
    gpu = list(BatchedImageLoader(str(image_folder / "validation_preprocess"), **opts))
    for (xc, yc), (xg, yg) in zip(cpu, gpu):
        assert xg.shape == (3, 3, 1, 1) and torch.equal(yc, yg) and torch.equal(xc, xg)
    photos = torch.randint(0, 256, (2, 3, 9, 12), dtype=torch.uint8)  # channels first, as torch.stack makes them
    for batch in (photos, photos[0]):
        out = T.resize(batch, [1, 1], antialias=antialias)
        assert out.shape == (*batch.shape[:-2], 1, 1)
        assert torch.equal(out, T.resize(batch.contiguous(memory_format=torch.channels_last)
                                         if batch.dim() == 4 else batch[None].contiguous(
                                             memory_format=torch.channels_last)[0], [1, 1], antialias=antialias))
        want = torch.nn.functional.interpolate(batch.float().reshape(-1, 3, 9, 12), size=(1, 1), mode="bilinear",
                                               antialias=antialias).reshape(out.shape)
        assert (out.float() - want).abs().max() <= 1


def test_exif_orientation_turns_photos_upright_in_both_pipelines_alike(tmp_path):
    """With exif_orientation, a photo with an orientation tag still goes to the GPU pipeline's batched
    decode (nvJPEG gives the stored pixels), which then turns it on the device, and both pipelines hand
    over the same upright image (training crops drawn from the turned size); one whose orientation the
    header walk cannot tell is decoded by the worker. Without the key, both give the stored pixels."""
    from mobilenet_v1.data import DECODED

    root = tmp_path / "photos"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i, k in enumerate((6, 1, 3)):
            (root / cls / f"{i}.jpg").write_bytes(exif_jpeg(smooth_image(40, 64, 10 * i + len(cls)), k))
    (root / "b" / "3.jpg").write_bytes(exif_jpeg(smooth_image(40, 64, 7), 9))  # no such orientation: -1
    samples, _ = find_images(str(root))
    for exif in (True, False):
        items = [EncodedImageDataset(samples, train=True, exif=exif)[(j, 5)] for j in range(len(samples))]
        assert [item[0] for item in items] == [ENCODED] * 6 + [DECODED if exif else ENCODED]
        assert [item[6] for item in items] == ([6, 0, 3, 6, 0, 3, 0] if exif else [0] * 7)
        assert items[0][5].size == ((64, 40) if exif else (40, 64))  # the crop of the turned photo
        batch = collate_encoded(items)
        decoded = decode_batch(batch, CPU)  # the CPU's decode_jpeg gives the stored pixels, as nvJPEG does
        for j, (path, _) in enumerate(samples):
            alone = T.decode_rgb(torch.frombuffer(bytearray(open(path, "rb").read()), dtype=torch.uint8), exif=exif)
            assert torch.equal(decoded[j], alone), (exif, j)
        opts = DataOptions("imagenet2012", str(root), 7, 32, seed=1, num_workers=0, channels_last=False,
                           exif_orientation=exif, crop_pct=1.0)
        (xc, _), = build_loader(opts, train=False, device=CPU, drop_last=False)
        (xg, _), = build_loader(dataclasses.replace(opts, pipeline="gpu"), train=False, device=CPU, drop_last=False)
        assert (xc - xg).abs().max() <= 1 / (255 * 0.224) + 1e-5
        if exif:
            upright = xc
    # The 40x64 photo turned by 90 degrees is 64x40: its centre square is another part of the picture.
    assert (upright[0] - xc[0]).abs().mean() > 0.1 and torch.equal(upright[1], xc[1])
    assert (upright[2] - xc[2]).abs().mean() > 0.1  # 3: turned by 180 degrees


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_eval_crop_pct_sets_the_share_of_the_shorter_side_kept(coordinate_folder, pipeline):
    """crop_pct 1 keeps the whole shorter side (rows 0..h-1 of a landscape image, whose green channel
    is the row), the seed's 0.875 its middle 224/256; the longer side is cut to the square either way."""
    def rows_seen(crop_pct):
        opts = DataOptions("imagenet2012", str(coordinate_folder), 4, 64, seed=1, num_workers=0,
                           channels_last=False, pipeline=pipeline, crop_pct=crop_pct)
        x, _ = next(iter(build_loader(opts, train=False, device=CPU, drop_last=False)))
        green = x[1, 1] * 0.224 + 0.456  # the 200x320 image, un-normalised to [0, 1]
        return float(green.min()), float(green.max())

    from mobilenet_v1.config import Config

    assert Config.crop_pct == T.CROP_PCT  # the configuration's default is the transforms'
    assert T.eval_resize_size(224) == 256 and T.eval_resize_size(64, 1.0) == 64 and T.eval_resize_size(100, 0.5) == 200
    low, high = rows_seen(1.0)
    assert low < 0.02 and high > 0.98
    low, high = rows_seen(T.CROP_PCT)
    margin = (73 - 64) / 2 / 73  # 200 rows resized to 73, 64 of them kept
    assert low == pytest.approx(margin, abs=0.02) and high == pytest.approx(1 - margin, abs=0.02)


def test_encoded_dataset_routes_files_to_gpu_or_cpu_decoding(image_folder, tmp_path):
    odd = image_folder / "train" / "n01"
    samples = [(str(odd / n), 0) for n in ("img_0.JPEG", "gray.JPEG", "cmyk.JPEG", "png_named.JPEG")]
    ds = EncodedImageDataset(samples)
    batch = collate_encoded([ds[(i, 0)] for i in range(4)])
    assert batch.kinds == [0, 1, 1, 1]  # only the YCbCr JPEG travels encoded
    assert batch.flat.numel() == (odd / "img_0.JPEG").stat().st_size and len(batch.decoded) == 3
    images = decode_batch(batch, CPU)
    for img, (path, _) in zip(images, samples):
        assert img.dtype == torch.uint8 and img.shape[0] == 3
        ref = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
        assert img.shape == ref.shape
        # libjpeg versions and CMYK conversions differ in rounding, never in content
        assert (img.float() - ref.float()).abs().mean() < 4, path


def test_cuda_decode_drains_the_loader_stream_on_the_host_first(image_folder, monkeypatch):
    """nvJPEG's hardware decoder can overwrite blocks that kernels queued on the caller's stream still
    read (``data.drain_before_decode``), so on CUDA every batched decode comes after a host wait on the
    current stream. Checked through the same ``decode_batch`` here, by recording the calls it makes."""
    calls = []

    class Stream:
        def synchronize(self):
            calls.append("drain")

    def current_stream(device=None):
        calls.append(("stream", device))
        return Stream()

    real_decode = T.torchvision_ops().decode_jpeg

    def decode_jpeg(datas, mode, device):
        calls.append(("decode", str(device), len(datas)))
        return real_decode(datas, mode=mode, device="cpu")

    monkeypatch.setattr(torch.cuda, "current_stream", current_stream)
    monkeypatch.setattr(T.torchvision_ops(), "decode_jpeg", decode_jpeg)
    files = [image_folder / "train" / "n02" / f"img_{i}.JPEG" for i in range(2)]
    batch = collate_encoded(EncodedImageDataset([(str(f), 0) for f in files])[(i, 0)] for i in range(2))
    cuda = torch.device("cuda")
    images = decode_batch(batch, cuda)
    assert calls == [("stream", cuda), "drain", ("decode", "cuda", 2)]
    assert [tuple(img.shape) for img in images] == [tuple(T.decode_rgb(d).shape) for d in
                                                    torch.split(batch.flat, batch.lengths)]
    calls.clear()
    decode_batch(batch, CPU)
    assert calls == [("decode", "cpu", 2)]  # nothing to wait for on the CPU


def test_damaged_jpeg_is_named_and_left_out(image_folder, tmp_path):
    good = (image_folder / "train" / "n02" / "img_0.JPEG").read_bytes()
    bad = tmp_path / "broken.JPEG"
    bad.write_bytes(good[: len(good) // 3])  # a truncated file still has its header
    zero = tmp_path / "zero.JPEG"
    zero.write_bytes(b"")
    no_end = tmp_path / "no_end.JPEG"
    no_end.write_bytes(good[:-2])  # every scan whole, only the end-of-image marker missing
    stray = tmp_path / "stray.JPEG"  # bytes where a marker should be: libjpeg warns and decodes it
    at = good.index(b"\xff\xc4")
    stray.write_bytes(good[:at] + b"\x00\x00\x00" + good[at:])
    samples = [(str(bad), 0), (str(image_folder / "train" / "n02" / "img_0.JPEG"), 1), (str(zero), 0),
               (str(no_end), 1), (str(stray), 0)]
    ds = EncodedImageDataset(samples)
    items = [ds[(i, 0)] for i in range(5)]
    batch = collate_encoded(items)
    # Neither cut file reaches nvJPEG (which decodes one without an error, its output not the file's:
    # benchmarks/RESULTS.md, 2026-11-29): the worker decodes it as the CPU pipeline does, and keeps or
    # skips it, for the same reason, where the CPU pipeline does.
    cpu = [ImageFolderDataset(samples, train=False, image_size=32)[(i, 0)][0] for i in range(5)]
    assert batch.kinds[:3] == [BAD, 0, BAD] and batch.kinds[3] != 0 and batch.kinds[4] != 0
    assert [k == BAD for k in batch.kinds] == [isinstance(img, BadSample) for img in cpu]
    with pytest.raises(T.DecodeError, match="broken.JPEG"):
        decode_batch(batch, CPU)
    found = []
    images = decode_batch(batch, CPU, found)
    assert images[0] is None and images[2] is None
    assert images[1].shape == (3,) + tuple(T.decode_rgb(items[1][1]).shape[1:])  # the good image is intact
    assert not isinstance(cpu[4], BadSample) and torch.equal(images[4], T.decode_rgb(data.read_bytes(str(stray))))
    assert found == [(img.path, img.reason) for img in cpu if isinstance(img, BadSample)]
    assert [p for p, _ in found][:2] == [str(bad), str(zero)] and "empty file" in found[1][1]


def test_run_ahead_keeps_order_raises_where_it_failed_and_stops_its_thread_when_left():
    closed = []

    def items(fail_at=None):
        try:
            for k in range(20):
                if k == fail_at:
                    raise KeyError(k)
                yield k
        finally:
            closed.append(threading.current_thread().name)

    assert list(run_ahead(items(), 3, "t-all", after=lambda k: k * 10)) == [10 * k for k in range(20)]
    made = []

    def counted():
        for k in range(20):
            made.append(k)
            yield k

    ahead = run_ahead(counted(), 3, "t-bound")
    taken = [next(ahead) for _ in range(4)]
    time.sleep(0.3)  # time for the thread to run as far ahead as it may
    assert taken == [0, 1, 2, 3] and len(made) <= 4 + 3 + 1  # 3 in the queue, 1 waiting to go in
    ahead.close()
    with pytest.raises(ValueError, match="depth"):
        next(run_ahead(items(), 0, "t-zero"))  # a queue of size 0 would have no bound
    got = []
    with pytest.raises(KeyError, match="7"):
        for k in run_ahead(items(fail_at=7), 3, "t-fail"):
            got.append(k)
    assert got == list(range(7))  # every item before the failure, then the failure itself
    ahead = run_ahead(items(), 2, "t-left")
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()  # left early: the thread stops and closes its generator, in that thread
    assert closed == ["t-all", "t-fail", "t-left"]  # t-bound's generator is not one of these
    assert not [t for t in threading.enumerate() if t.name.startswith("t-")]



def test_the_wait_for_a_thread_left_is_counted_in_slices_a_stop_of_the_process_uses_one_of():
    """run_ahead waits up to 60 s for its thread, in quarter-second joins: a process stopped in the wait (Ctrl-Z,
    a scheduler's suspend; the monotonic clock runs on) loses the join it was stopped in, where one join of 60 s
    ended at the continue and the thread, stopped too, was reported as never stopping (helper-362)."""
    class Suspended:  # its first join is the stop; it ends once it has run for two more
        def __init__(self):
            self.joins = []

        def join(self, timeout):
            self.joins.append(timeout)

        def is_alive(self):
            return len(self.joins) < 3

    thread = Suspended()
    join_within(thread, 60)
    assert not thread.is_alive() and thread.joins == [0.25] * 3
    never = threading.Event()
    stuck = threading.Thread(target=never.wait, daemon=True)
    stuck.start()
    start = time.monotonic()
    join_within(stuck, 0.5)
    assert stuck.is_alive() and 0.45 < time.monotonic() - start < 10  # a thread that does not end: the deadline
    never.set()

class FakeCuda(NamedTuple):
    log: list  # ("wait", event, stream), ("record", event, stream, current stream), ("use", tensor[0], stream), ...
    local: threading.local  # .stream: the thread's current stream
    training: Any  # the stream current where none is set: the training loop's


@pytest.fixture
def fake_cuda(monkeypatch):
    """Stand-ins for CUDA's streams, events and record_stream that log what is done, in order."""
    log, local = [], threading.local()

    class Stream:
        def __init__(self, device=None, priority=0):
            self.priority = priority

        def wait_event(self, event):
            log.append(("wait", event.k, self))

    training = Stream()

    class Event:
        def record(self, stream):
            self.k = len([e for e in log if e[0] == "record"])  # the event's number
            log.append(("record", self.k, stream, getattr(local, "stream", None)))

    @contextlib.contextmanager
    def use(stream):
        local.stream = stream
        yield
        local.stream = None

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "stream", use)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: getattr(local, "stream", None) or training)
    monkeypatch.setattr(torch.Tensor, "record_stream", lambda t, stream: log.append(("use", int(t[0]), stream)))
    return FakeCuda(log, local, training)


def test_background_batches_are_made_on_the_loader_stream_and_handed_over_behind_an_event(fake_cuda):
    """BackgroundBatches with stand-ins for CUDA's stream, event and record_stream: each batch is made in
    its thread with the loader's stream current, an event is recorded there after it, and the training
    stream waits on that event and records its use of the batch before the batch is handed on."""
    log, local, training = fake_cuda

    def batches():
        for k in range(4):
            log.append(("make", k, threading.current_thread().name, local.stream))
            yield torch.tensor([k]), torch.tensor([10 + k])

    got = []
    for x, y in BackgroundBatches(batches(), torch.device("cuda"), depth=2):
        got.append((int(x), int(y)))
        log.append(("handed", int(x)))
    assert got == [(k, 10 + k) for k in range(4)]
    loader = next(e[3] for e in log if e[0] == "make")
    assert loader is not training and loader.priority == BackgroundBatches.stream_priority
    for k in range(4):
        make = log.index(("make", k, "mobilenet-v1-batches", loader))
        record = log.index(("record", k, loader, loader))
        wait = log.index(("wait", k, training))
        handed = log.index(("handed", k))
        assert make < record < wait < handed
        assert log.index(("use", k, training)) < handed and log.index(("use", 10 + k, training)) < handed
    # Another stage's items (the decode's: images and what goes with them): the stream is recorded on the
    # tensors that tensors() names, in a thread of that name.
    log.clear()
    items = (([torch.tensor([k]), torch.tensor([5])], threading.current_thread().name) for k in range(2))
    parts = list(BackgroundBatches(items, torch.device("cuda"), 1, "t-decode", tensors=lambda part: part[0]))
    assert [(int(images[0]), made_in) for images, made_in in parts] == [(0, "t-decode"), (1, "t-decode")]
    assert [e[1] for e in log if e[0] == "use"] == [0, 5, 1, 5]


def test_decode_ahead_on_cuda_decodes_on_a_stream_of_its_own_and_hands_the_images_to_the_crop(image_folder,
                                                                                             fake_cuda):
    """With ``decode_ahead`` on CUDA (stand-ins): each batch is decoded in the decoding thread on a stream
    other than the loader's, and cropped in the loader's thread on the loader stream only after that
    stream has waited for the decode's event and recorded its use of every decoded image."""
    log, local, training = fake_cuda
    lo = BatchedImageLoader(image_folder / "train", batch_size=4, train=True, image_size=24, device=CPU, seed=5,
                            num_workers=0)
    lo.device, lo.decode_ahead = torch.device("cuda"), 2

    def decode(batch):
        k = len([e for e in log if e[0] == "decode"])
        log.append(("decode", k, threading.current_thread().name, local.stream))
        return DecodedBatch([torch.tensor([k]), torch.tensor([100 + k])], [], [], torch.tensor([k]))

    def finish(images, seeds, draws, labels):
        log.append(("finish", int(images[0]), threading.current_thread().name, local.stream))
        return images[0].clone(), labels

    lo.decode, lo.finish = decode, finish
    assert [int(x) for x, _ in lo] == [0, 1, 2]
    decoding = next(e[3] for e in log if e[0] == "decode")
    loader = next(e[3] for e in log if e[0] == "finish")
    assert len({id(decoding), id(loader), id(training)}) == 3
    for k in range(3):
        decoded = log.index(("decode", k, "mobilenet-v1-decode", decoding))
        cropped = log.index(("finish", k, "mobilenet-v1-batches", loader))
        event = next(e[1] for e in log[decoded:] if e[0] == "record" and e[2] is decoding)
        assert decoded < log.index(("wait", event, loader)) < cropped
        assert log.index(("use", k, loader)) < cropped and log.index(("use", 100 + k, loader)) < cropped


def test_on_cuda_the_workers_start_from_the_callers_thread(image_folder, fake_cuda, monkeypatch):
    """The GPU pipeline decodes in a background thread on CUDA, but its DataLoader iterator (which starts
    the workers) is made in the caller's thread: only from the main thread does PyTorch install its
    handler for a worker's sudden death (SIGCHLD)."""
    from torch.utils.data._utils import signal_handling

    called_from = []
    monkeypatch.setattr(signal_handling, "_set_SIGCHLD_handler",
                        lambda: called_from.append(threading.current_thread().name))
    lo = BatchedImageLoader(image_folder / "train", batch_size=4, train=True, image_size=24, device=CPU, seed=5,
                            num_workers=1)
    lo.device = torch.device("cuda")
    lo.decode = lambda batch: DecodedBatch([], [], [], torch.tensor(batch.labels))
    lo.finish = lambda images, seeds, draws, labels: (torch.zeros(len(labels)), labels)
    labels = [y for _, y in lo]
    assert len(labels) == 3 and threading.current_thread().name == "MainThread"
    assert called_from == ["MainThread"]


@pytest.mark.parametrize("decode_ahead", [0, 2])
def test_batches_received_and_decoded_in_threads_equal_those_of_one_thread_and_a_left_epoch_stops_them(
        image_folder, decode_ahead):
    """With workers, the GPU pipeline receives their batches in a thread of its own (and, with
    ``decode_ahead``, decodes them in another, ahead of the crop): the same batches in the same order as
    all in one thread, and an epoch left after one batch stops those threads before the next epoch
    resets the workers."""
    kw = dict(batch_size=4, train=True, image_size=24, device=CPU, seed=5, num_workers=2)
    inline, threaded = BatchedImageLoader(image_folder / "train", **kw), BatchedImageLoader(image_folder / "train", **kw)
    inline.receive_ahead = 0
    # Below 3 batches - 1: the last thread before the caller is still there after the first batch (it
    # waits to hand on its end); the receiving thread behind a decoding one may have finished by then.
    threaded.receive_ahead, threaded.decode_ahead = 2, decode_ahead
    last = "mobilenet-v1-decode" if decode_ahead else "mobilenet-v1-receive"

    def running():
        return {t.name for t in threading.enumerate() if t.name.startswith("mobilenet-v1-")}

    for epoch in (0, 1):
        inline.set_epoch(epoch)
        threaded.set_epoch(epoch)
        want = list(inline)
        assert not running()
        it = iter(threaded)
        first = next(it)
        assert last in running()  # the path under test is the threaded one
        if epoch == 0:
            it.close()  # left after one batch
            assert not running()
            threaded.set_epoch(epoch)
            it = iter(threaded)
            first = next(it)
        got = [first, *it]
        assert not running()
        assert len(got) == len(want) == len(threaded) == 3
        for (x, y), (wx, wy) in zip(got, want):
            torch.testing.assert_close(x, wx, rtol=0, atol=0)
            assert torch.equal(y, wy)


class TensorPerBatch(BatchedImageLoader):
    shared_buffers = False


def test_bytes_in_shared_buffers_give_the_batches_of_a_tensor_per_batch_and_the_buffers_are_used_again(
        image_folder, monkeypatch):
    """With workers, the GPU pipeline's bytes cross in shared buffers (SharedSlots), each used again once
    its batch is decoded: over two epochs, more batches than buffers, every batch came through one and
    equals the batch made with a tensor per batch; none is held at the end. (A batch of only images the
    workers decoded, here grayscale, CMYK or PNG, has no bytes to send.)"""
    kw = dict(batch_size=2, train=True, image_size=24, device=CPU, seed=7, num_workers=2)
    shared, own = BatchedImageLoader(image_folder / "train", **kw), TensorPerBatch(image_folder / "train", **kw)
    slots = shared.loader.collate_fn.keywords["slots"]
    assert own.loader.collate_fn is collate_encoded
    through = []  # the batches that arrived in a buffer
    view = slots.view
    monkeypatch.setattr(slots, "view", lambda index, nbytes: through.append(index) or view(index, nbytes))
    count = with_bytes = 0
    for epoch in (0, 1):
        own.set_epoch(epoch)
        with_bytes += sum(batch.flat.numel() > 0 for batch in own.loader)
        shared.set_epoch(epoch)
        own.set_epoch(epoch)
        for (x, y), (wx, wy) in zip(shared, own, strict=True):
            torch.testing.assert_close(x, wx, rtol=0, atol=0)
            assert torch.equal(y, wy)
            count += 1
    assert count == 2 * len(shared) and with_bytes > slots.buffers.shape[0]
    # Each worker's 4 batches ahead, and half of the 4 this process may hold undecoded: 2 queued by the
    # receiving thread, 1 it waits to queue, 1 being decoded.
    assert slots.count == PREFETCH_BATCHES + 2
    assert len(through) == with_bytes
    assert int(slots.held.sum()) == 0


def test_batches_held_undecoded_keep_their_bytes_and_give_their_buffers_back(image_folder):
    """A worker whose buffers are all held by batches not yet decoded sends the next in a tensor of its
    own; a held buffer is not written over; release() gives one back at once, and a batch dropped
    undecoded gives its own back."""
    loader = BatchedImageLoader(image_folder / "train", batch_size=2, train=False, image_size=24, device=CPU,
                                seed=1, num_workers=2)
    slots = SharedSlots(workers=2, count=2, capacity=1 << 20)
    old = loader.loader
    loader.loader = encoded_loader(old.dataset, 2, old.sampler, 2, True, slots=slots)
    held = list(loader.loader)
    assert len(held) == 7 and sum(b.slot is not None for b in held) == 4  # each worker's 2 buffers
    for batch in held:
        files = [open(path, "rb").read() for path, kind in zip(batch.paths, batch.kinds) if kind == ENCODED]
        assert bytes(batch.flat.numpy()) == b"".join(files)
    assert int(slots.held.sum()) == 4
    first = next(b for b in held if b.slot is not None)
    index = first.slot[1]
    # Copies and pickles carry the bytes, not the buffer (nor all the buffers' storage), and hold nothing.
    twin, deep, again = copy.copy(first), copy.deepcopy(first), pickle.loads(pickle.dumps(first))
    for other in (twin, deep, again):
        assert other.slot is None and torch.equal(other.flat, first.flat)
        assert other.flat.untyped_storage().nbytes() == first.flat.numel()
    shell = copy.copy(held[-1])  # bytes in a tensor of their own: copied as they are
    assert shell.slot is None and shell.flat is held[-1].flat
    del twin, deep, again, other, shell
    gc.collect()
    assert int(slots.held.sum()) == 4
    slots.release(index, os.getpid() + 1)  # another process's finalizer (one forked from here)
    assert int(slots.held.sum()) == 4
    first.release()
    assert int(slots.held[index]) == 0 and int(slots.held.sum()) == 3
    assert first.flat.numel() == 0 and first.slot is None
    del held, first, batch
    gc.collect()
    assert int(slots.held.sum()) == 0 and not data._HOLDS


def test_shared_buffers_are_sized_from_the_files_and_left_out_without_room(image_folder, monkeypatch):
    """Each buffer holds 1.25 mean batches plus twice the largest file; where /dev/shm has room for fewer
    than asked, fewer, but not fewer than 2 a worker, and its room is shared by torchrun's local
    processes."""
    paths = [path for path, _ in find_images(image_folder / "train")[0]]
    sizes = {p: 100_000 + 1_000 * i for i, p in enumerate(paths)}
    monkeypatch.setattr(os.path, "getsize", sizes.__getitem__)
    want = 4 * sum(sizes.values()) / len(sizes) * 1.25 + 2 * max(sizes.values())
    slots = SharedSlots.for_files(paths, 4, workers=3, count=5)
    assert slots.count == 5 and slots.buffers.shape[0] == 15 and want <= slots.capacity < want + 65536
    one = BatchedImageLoader(image_folder / "train", batch_size=4, train=True, image_size=24, device=CPU, seed=1,
                             num_workers=1)
    assert one.loader.collate_fn.keywords["slots"].count == PREFETCH_BATCHES + 4  # one worker: all 4 held here
    assert SharedSlots.for_files([], 4, workers=3, count=5) is None
    if os.path.isdir("/dev/shm"):
        free = 2 * 3 * 2 * slots.capacity  # room (half of it) for 2 buffers a worker
        monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=free, f_frsize=1))
        assert SharedSlots.for_files(paths, 4, workers=3, count=5).count == 2
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        assert SharedSlots.for_files(paths, 4, workers=3, count=5) is None


def test_jpeg_frame_header_parsing():
    arr = smooth_image(20, 30, 0)
    assert T.jpeg_frame(jpeg_bytes(arr)) == (0xC0, 3, 20, 30, 0, True, 1)  # 0: no EXIF orientation; 1 scan
    assert T.jpeg_frame(jpeg_bytes(arr, "L")) == (0xC0, 1, 20, 30, 0, True, 1)
    assert T.jpeg_frame(jpeg_bytes(arr, "CMYK"))[1] == 4
    assert T.jpeg_frame(jpeg_bytes(arr, "RGB", "PNG")) == (0, 0, 0, 0, 0, False, 0)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", progressive=True)
    assert T.jpeg_frame(buf.getvalue()) == (0xC2, 3, 20, 30, 0, True, 10) and T.gpu_decodable(buf.getvalue())
    assert not T.gpu_decodable(jpeg_bytes(arr, "L")) and T.gpu_decodable(jpeg_bytes(smooth_image(300, 2, 1)))
    assert T.jpeg_frame(jpeg_bytes(smooth_image(300, 2, 1)))[2:4] == (300, 2)  # two-byte sizes


def test_auto_pipeline_is_cpu_without_cuda_and_gpu_when_asked(image_folder):
    opts = DataOptions("imagenet2012", str(image_folder), batch_size=2, image_size=32, seed=1, num_workers=0,
                       channels_last=True)
    assert isinstance(build_loader(opts, True, CPU), ImageFolderLoader)
    opts.pipeline = "gpu"
    loader = build_loader(opts, True, CPU)
    assert isinstance(loader, BatchedImageLoader)
    x, _ = next(iter(loader))
    assert x.shape == (2, 3, 32, 32) and x.is_contiguous(memory_format=torch.channels_last)


def test_cifar_on_device_eval_batches_equal_per_sample_reference(cifar_dir):
    """The batched on-device CIFAR path against a per-sample torchvision reference of the seed's eval
    transform (Resize 224 bilinear -> uint8, Rescale, Normalize)."""
    from torchvision.transforms.v2 import functional as TF

    images, labels = load_cifar(str(cifar_dir), train=False)
    loader = CifarLoader(images, labels, 8, train=False, image_size=64, device=CPU, seed=1, drop_last=False)
    mean = torch.tensor(T.CIFAR_MEAN).view(3, 1, 1)
    std = torch.tensor(T.CIFAR_STD).view(3, 1, 1)
    seen = 0
    for x, y in loader:
        for i in range(len(y)):
            ref = TF.resize(images[seen + i], [64, 64], antialias=False)
            ref = (ref.float() / 255 - mean) / std
            # uint8 rounding of the resize may differ by one step
            assert (x[i] - ref).abs().max() <= 1 / (255 * 0.1994) + 1e-5
        seen += len(y)
    assert seen == 40


def test_cifar_training_batches_on_cuda_pin_no_device_tensor(cifar_dir, monkeypatch):
    """The CIFAR loader's CUDA branch, traced on fake CUDA tensors (FakeTensorMode: shapes and devices, no
    GPU): its flips are drawn on the device, and only host memory can be pinned (torch raises "only dense CPU
    tensors can be pinned" for a CUDA tensor's ``pin_memory()``); the stand-in raises as torch does."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    pinned = []

    def pin(t, *args):
        pinned.append(t.device.type)
        if t.device.type != "cpu":
            raise RuntimeError(f"cannot pin {t.device} memory: only dense CPU tensors can be pinned")
        return t  # (fake mode cannot pin at all: the host tensor is used as it is)

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    images, labels = load_cifar(str(cifar_dir), train=True)
    loader = CifarLoader(images, labels, 8, train=True, image_size=32, device=CPU, seed=1, channels_last=True,
                         vflip=0.5)
    with FakeTensorMode(allow_non_fake_inputs=True):
        cuda = torch.device("cuda", 0)
        # What __init__ does with a CUDA device (its label count reads a value back, which fake tensors have not)
        loader.images, loader.labels, loader.device = loader.images.to(cuda), loader.labels.to(cuda), cuda
        loader.normalize = T.Normalize(T.CIFAR_MEAN, T.CIFAR_STD, cuda, channels_last=True)
        x, y = next(iter(loader))
        assert (x.device, y.device, tuple(x.shape)) == (cuda, cuda, (8, 3, 32, 32))
        assert pinned == []
        # A host tensor still goes through pinned memory.
        assert T.to_device_nowait(torch.zeros(3), cuda).device == cuda and pinned == ["cpu"]

