"""Batch augmentations (``--mixup_alpha``, ``--cutmix_alpha``, ``--mix_prob``, ``--random_erase``),
``--clip_grad_norm`` and ``--drop_rate``."""
import functools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mobilenet_v1.batch_augment import BatchAugment, cutmix_box, erase, erase_boxes
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.losses import CrossEntropySmooth
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.nonfinite import NonFiniteGuard

CPU = torch.device("cpu")


def test_mixup_blends_each_sample_with_its_partner_in_the_reversed_batch():
    mixer = BatchAugment(mixup_alpha=0.4, seed=3)
    x = torch.randn(5, 3, 6, 7).contiguous(memory_format=torch.channels_last)
    y = torch.tensor([0, 1, 2, 3, 4])
    lams = set()
    for position in range(6):
        mixed, partner, lam = mixer(2, position, x, y)
        assert 0 < lam < 1 and mixer.draw(2, position, 5, 6, 7)[0].box is None
        torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[[4, 3, 2, 1, 0]])
        assert partner.tolist() == [4, 3, 2, 1, 0]
        assert mixed.is_contiguous(memory_format=torch.channels_last)
        lams.add(lam)
    assert len(lams) == 6


def test_cutmix_pastes_one_box_of_the_partner_and_lam_is_the_share_left_as_it_was():
    mixer = BatchAugment(cutmix_alpha=1.0, seed=5)
    h, w = 20, 28
    x = torch.randn(4, 3, h, w)
    y = torch.tensor([7, 8, 9, 6])
    partner_x = x.flip(0)
    clipped = 0
    for position in range(40):
        mixed, partner, lam = mixer(0, position, x, y)
        if lam == 1.0:  # an empty box: the batch as it was
            assert torch.equal(mixed, x)
            continue
        changed = (mixed != x).any(dim=1)  # (4, h, w): where a pixel came from the partner
        rows = torch.nonzero(changed[0].any(dim=1)).flatten()
        cols = torch.nonzero(changed[0].any(dim=0)).flatten()
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        assert mixer.draw(0, position, 4, h, w)[0].box == (top, bottom, left, right)
        inside = torch.zeros(h, w, dtype=torch.bool)
        inside[top:bottom, left:right] = True
        assert torch.equal(changed[0], inside)  # one rectangle, nothing outside it
        assert torch.equal(mixed[..., top:bottom, left:right], partner_x[..., top:bottom, left:right])
        assert torch.equal(mixed[..., ~inside], x[..., ~inside])
        assert lam == pytest.approx(1 - (bottom - top) * (right - left) / (h * w), abs=1e-12)
        assert partner.tolist() == [6, 9, 8, 7]
        clipped += top == 0 or left == 0 or bottom == h or right == w
    assert clipped > 0  # boxes centred near an edge are cut there


class _Centre:
    """A generator whose integers(n) is the centre row (n the height) or column (n the width) asked for."""

    def __init__(self, height: int, width: int, cy: int, cx: int):
        self.at = {height: cy, width: cx}

    def integers(self, n):
        return self.at[n]


def test_the_cutmix_box_has_sides_sqrt_1_minus_lam_of_the_image_halved_about_its_centre_and_clipped():
    """timm's rand_bbox: cut = int(side * sqrt(1 - lam)), the box centre -/+ cut // 2 on each axis, clipped
    to [0, side]. By hand for a 20x28 image: lam 0.75 gives sides 10 and 14 (halves 5, 7); lam 0.36 sides
    int(16.0) and int(22.4), 16 and 22 (halves 8, 11)."""
    h, w = 20, 28
    cases = [(0.75, 10, 14, (5, 15, 7, 21)),  # inside: a quarter of the image
             (0.75, 1, 27, (0, 6, 20, 28)),  # cut at the top and the right edge
             (0.36, 19, 0, (11, 20, 0, 11))]  # cut at the bottom and the left edge
    for lam, cy, cx, box in cases:
        assert cutmix_box(h, w, lam, _Centre(h, w, cy, cx)) == box, (lam, cy, cx)


@pytest.mark.parametrize("criterion", [CrossEntropySmooth(smooth_factor=0.1, num_classes=7), nn.CrossEntropyLoss()],
                         ids=["seed-smoothed", "plain"])
def test_the_two_label_loss_is_the_loss_of_the_mixed_target(criterion):
    """What the engine computes (lam * loss(y) + (1 - lam) * loss(partner)) is cross entropy against
    the mixed target vector, smoothing included (the seed's puts e / (classes - 1) off the label)."""
    torch.manual_seed(0)
    logits, y = torch.randn(6, 7), torch.randint(0, 7, (6,))
    lam = 0.3
    e = getattr(criterion, "on_value", None)

    def target(labels):
        if e is None:
            return F.one_hot(labels, 7).float()
        t = torch.full((6, 7), criterion.off_value)
        return t.scatter(1, labels[:, None], criterion.on_value)

    mixed_target = lam * target(y) + (1 - lam) * target(y.flip(0))
    dense = -(mixed_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    two_labels = lam * criterion(logits, y) + (1 - lam) * criterion(logits, y.flip(0))
    torch.testing.assert_close(two_labels, dense)
    if e is not None:  # and what the seed's loss gives for a dense target
        torch.testing.assert_close(CrossEntropySmooth(sparse=False)(logits, mixed_target), dense)


def test_draws_follow_seed_epoch_position_and_rank_and_the_options():
    def draws(mixer, epoch=0, rank_positions=range(400)):
        return [mixer.draw(epoch, p, 8, 32, 32)[0] for p in rank_positions]

    both = BatchAugment(0.2, 1.0, seed=1)
    assert draws(both) == draws(BatchAugment(0.2, 1.0, seed=1))  # no global random state
    for other in (BatchAugment(0.2, 1.0, seed=2), BatchAugment(0.2, 1.0, seed=1, rank=1)):
        assert draws(other) != draws(both)
    assert draws(both, epoch=1) != draws(both)
    cut = sum(d.box is not None for d in draws(both))
    assert 160 < cut < 240  # even odds between the two
    # Beta(0.2, 0.2) piles up near 0 and 1: few mixup lams in the middle; Beta(1, 1) is uniform.
    mix_lams = [d.lam for d in draws(BatchAugment(0.2, 0.0))]
    assert sum(0.2 < lam < 0.8 for lam in mix_lams) < 0.3 * len(mix_lams)
    assert 0.4 < sum(mix_lams) / len(mix_lams) < 0.6
    quarter = draws(BatchAugment(0.2, 1.0, mix_prob=0.25))
    assert 70 < sum(d.lam < 1 for d in quarter) < 130
    assert all(d.lam == 1.0 for d in draws(BatchAugment(0.2, 1.0, mix_prob=0.0)) + draws(BatchAugment()))


def test_random_erasing_sets_one_box_of_the_drawn_size_to_zero_in_the_chosen_samples():
    rng = np.random.default_rng(0)
    h, w = 24, 40
    boxes = erase_boxes(2000, h, w, 1.0, rng)
    top, bottom, left, right = boxes.T
    assert ((0 <= top) & (top < bottom) & (bottom <= h) & (0 <= left) & (left < right) & (right <= w)).all()
    area = (bottom - top) * (right - left) / (h * w)
    aspect = (bottom - top) / (right - left)
    # Rounded sides: a little past the drawn 2%..1/3 of the area and 0.3..3.3 aspect.
    assert area.min() >= 0.015 and area.max() <= 0.37 and 0.15 < area.mean() < 0.19  # uniform: 0.177
    assert aspect.min() >= 0.25 and aspect.max() <= 4.0
    assert (aspect < 1).mean() == pytest.approx(0.5, abs=0.05)  # log-uniform about 1
    some = erase_boxes(2000, h, w, 0.25, np.random.default_rng(1))
    assert 0.2 < some.any(axis=1).mean() < 0.3
    assert not erase_boxes(100, h, w, 0.0, rng).any()
    x = torch.randn(3, 2, h, w).contiguous(memory_format=torch.channels_last)
    chosen = torch.tensor([[2, 9, 5, 6], [0, 0, 0, 0], [0, 24, 30, 40]])
    out = erase(x, chosen)
    mask = torch.zeros(3, 1, h, w, dtype=torch.bool)
    mask[0, :, 2:9, 5:6] = True
    mask[2, :, 0:24, 30:40] = True
    assert torch.equal(out, torch.where(mask, torch.zeros(()), x))
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_a_batch_is_erased_then_mixed_and_erasing_leaves_the_mixing_draws_alone():
    x, y = torch.randn(6, 3, 16, 16) + 5, torch.arange(6)
    both = BatchAugment(mixup_alpha=0.5, erase_prob=0.5, seed=4)
    mixing_only = BatchAugment(mixup_alpha=0.5, seed=4)
    for position in range(5):
        mix, boxes, _ = both.draw(1, position, 6, 16, 16)
        assert mix == mixing_only.draw(1, position, 6, 16, 16)[0]
        out, partner, lam = both(1, position, x, y)
        erased = erase(x, torch.from_numpy(boxes))
        torch.testing.assert_close(out, lam * erased + (1 - lam) * erased.flip(0))
        assert lam == mix.lam and partner.tolist() == [5, 4, 3, 2, 1, 0]
    erase_only = BatchAugment(erase_prob=1.0, seed=4)
    out, partner, lam = erase_only(0, 0, x, y)
    assert lam == 1.0 and torch.equal(partner, y) and (out == 0).any() and not (x == 0).any()


def test_pixel_mode_fills_the_same_boxes_with_noise_drawn_alike_again():
    """timm's remode pixel: the boxes const mode draws, each pixel and channel of them standard normal
    noise, the rest as it was; the same batch position draws the same noise (a resumed epoch)."""
    x, y = (torch.randn(8, 3, 32, 32) + 5).to(memory_format=torch.channels_last), torch.arange(8)
    const, pixel = BatchAugment(erase_prob=1.0, seed=4), BatchAugment(erase_prob=1.0, seed=4, erase_mode="pixel")
    boxes = const.draw(0, 3, 8, 32, 32)[1]
    assert np.array_equal(boxes, pixel.draw(0, 3, 8, 32, 32)[1]) and boxes.any()
    out = pixel(0, 3, x, y)[0]
    inside = const(0, 3, x, y)[0] == 0  # the boxes, as const mode fills them (x itself is nowhere 0)
    assert torch.equal(out[~inside], x[~inside]) and out.is_contiguous(memory_format=torch.channels_last)
    noise = out[inside]
    assert noise.numel() > 2000 and abs(float(noise.mean())) < 0.1 and abs(float(noise.std()) - 1) < 0.1
    assert torch.equal(out, pixel(0, 3, x, y)[0]) and not torch.equal(out, pixel(0, 4, x, y)[0])
    with pytest.raises(ValueError, match="random_erase_mode must be const or pixel, got 'rand'"):
        BatchAugment(erase_prob=1.0, erase_mode="rand")


def test_train_one_epoch_feeds_the_model_the_mixed_batches_and_mixes_the_loss():
    """A resumed epoch (start_step 1) with two batches a step: the model sees the batches at epoch
    positions 2.. mixed as the mixer draws them, and the loss is the two-label loss. lr 0 keeps the
    weights, so the expected losses can be computed from the same model afterwards."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))) for _ in range(4)]  # positions 2..5
    mixer = BatchAugment(0.2, 1.0, erase_prob=0.5, seed=9)
    losses = []
    train_one_epoch(model, batches, nn.CrossEntropyLoss(), make_optimizer(model, 0.0, 0.0, 0.0, CPU),
                    make_scaler("fp32", CPU, 1.0), [0.0] * 3, CPU, "fp32", start_step=1, accumulate=2,
                    augment=functools.partial(mixer, 7), on_step=lambda i, loss, lr: losses.append(float(loss)))
    assert len(seen) == 4 and len(losses) == 2
    expected = []
    with torch.no_grad():
        for k, (x, y) in enumerate(batches):
            mixed, partner, lam = mixer(7, 2 + k, x, y)
            assert torch.equal(seen[k], mixed)
            logits = model(mixed)
            expected.append((lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, partner)) / 2)
    assert any(not torch.equal(seen[k], batches[k][0]) for k in range(4))
    assert losses == pytest.approx([float(expected[0] + expected[1]), float(expected[2] + expected[3])], rel=1e-6)


def test_mixing_stops_at_mixup_off_epoch_and_erasing_goes_on():
    """timm's --mixup-off-epoch N: no batch of epoch N (from 0) or later is mixed; the erased boxes are
    those of a run that mixes on (mixing is drawn first, erasing after)."""
    stopping = BatchAugment(mixup_alpha=0.4, cutmix_alpha=1.0, erase_prob=0.5, seed=2, mix_off_epoch=3)
    going_on = BatchAugment(mixup_alpha=0.4, cutmix_alpha=1.0, erase_prob=0.5, seed=2)
    for epoch in range(5):
        draws = [stopping.draw(epoch, position, 8, 32, 32) for position in range(20)]
        mixed = [mix.lam < 1 for mix, _, _ in draws]
        assert (any(mixed) if epoch < 3 else not any(mixed)), epoch
        assert stopping.mixes_in(epoch) == (epoch < 3)
        theirs = [going_on.draw(epoch, p, 8, 32, 32) for p in range(20)]
        if epoch < 3:
            assert [d[0] for d in draws] == [d[0] for d in theirs]
        assert all(np.array_equal(d[1], e[1]) for d, e in zip(draws, theirs))  # erasing goes on, as it was
        assert sum(int(boxes.any(axis=1).sum()) for _, boxes, _ in draws) > 40
    with pytest.raises(ValueError, match="mixup_off_epoch must be >= 0"):
        BatchAugment(mixup_alpha=0.4, mix_off_epoch=-1)


def test_a_run_mixes_until_mixup_off_epoch_and_says_so_once(cifar_dir, tmp_path, capsys, monkeypatch):
    from mobilenet_v1 import train

    drawn = []  # (epoch, whether the batch was mixed) of each training batch
    real = BatchAugment.draw
    monkeypatch.setattr(BatchAugment, "draw", lambda self, epoch, *a: drawn.append((epoch, real(self, epoch, *a)[0].lam
                                                                                   < 1)) or real(self, epoch, *a))
    args = [f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--image_size=32", "--batch_size=32", "--epoch_size=3",
            "--warmup_epochs=0", "--device_target=CPU", "--num_workers=0", "--mixup_alpha=0.4", "--cutmix_alpha=1",
            f"--save_checkpoint_path={tmp_path / 'run'}"]
    train.run(load_config(args + ["--mixup_off_epoch=2"]))
    assert {e for e, mixed in drawn if mixed} == {0, 1} and [e for e, mixed in drawn if e == 2 and not mixed]
    out = capsys.readouterr().out
    assert out.count("Mixup and CutMix off") == 1
    assert "epoch 3: Mixup and CutMix off from here (mixup_off_epoch 2)" in out
    drawn.clear()
    train.run(load_config(args + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'never'}"]))
    assert any(mixed for _, mixed in drawn)
    assert "Mixup and CutMix off" not in capsys.readouterr().out  # mixup_off_epoch 0: mixing never stops


def test_a_run_started_with_mix_prob_0_beside_an_alpha_resumes_as_it_was(cifar_dir, tmp_path, capsys):
    """mix_prob 0 beside an alpha is refused since a23ba27, but a run started before holds it in its config.yaml,
    and `train --config_path RUN/config.yaml --resume auto` (README's way to continue a run) was refused; the
    refusal's own advice (the alphas at 0) met mix_prob's unused-key refusal. A resume takes it, as it was (no
    batch mixed), saying so; a --resume that finds nothing to continue is refused as a fresh run is."""
    from mobilenet_v1 import cli, train

    run = tmp_path / "run"
    args = [f"--dataset_path={cifar_dir}", "--width_mult=0.25", "--image_size=32", "--batch_size=64", "--epoch_size=2",
            "--warmup_epochs=0", "--device_target=CPU", "--num_workers=0", "--class_num=4", "--mixup_alpha=0.2",
            "--save_checkpoint_epochs=1", f"--save_checkpoint_path={run}"]
    train.run(load_config(args + ["--mix_prob=0.5"]))
    (run / "mobilenetv1-2_3.ckpt").unlink()  # stopped after its first epoch
    config = run / "config.yaml"  # as a run started with --mix_prob 0 wrote it
    config.write_text(config.read_text().replace("mix_prob: 0.5\n", "mix_prob: 0.0\n"))
    capsys.readouterr()
    assert cli.main(["train", f"--config_path={config}", "--resume=auto"]) == 0
    out = capsys.readouterr().out
    assert "note: mix_prob 0 mixes no batch: mixup_alpha 0.2 taken for the resume, and unused" in out
    assert (run / "mobilenetv1-2_3.ckpt").is_file()
    # Nothing to resume: refused as a fresh run is, nothing written
    fresh = tmp_path / "fresh"
    with pytest.raises(ConfigError, match="--resume auto found no checkpoint in .* to continue, and a run started "
                                          "afresh is refused: mix_prob 0 mixes no batch"):
        train.run(load_config(args + ["--mix_prob=0", "--resume=auto", f"--save_checkpoint_path={fresh}"]))
    assert not fresh.exists() or not any(fresh.glob("*.ckpt"))
    # The refusal's way to train without mixing is taken: mix_prob left at its default beside the alphas at 0
    with pytest.raises(ConfigError, match="or train without Mixup and CutMix: mixup_alpha 0 and cutmix_alpha 0, with "
                                          r"mix_prob left at its default \(--mix_prob 1 where a config file sets it\)"):
        load_config(["--mixup_alpha=0.2", "--mix_prob=0"])
    assert load_config([f"--config_path={config}", "--mixup_alpha=0", "--mix_prob=1"]).mixup_alpha == 0


def test_mix_and_clip_options_are_checked():
    cfg = load_config(["--mixup_alpha=0.2", "--cutmix_alpha=1", "--mix_prob=0.5", "--random_erase=0.2",
                       "--clip_grad_norm=2"])
    assert (cfg.mixup_alpha, cfg.cutmix_alpha, cfg.mix_prob, cfg.random_erase, cfg.clip_grad_norm) == (
        0.2, 1.0, 0.5, 0.2, 2.0)
    for bad, message in (("--mixup_alpha=-0.1", "option --mixup_alpha: mixup_alpha must be >= 0"),
                         ("--cutmix_alpha=-1", "option --cutmix_alpha: cutmix_alpha must be >= 0"),
                         ("--mix_prob=1.5", "option --mix_prob: mix_prob must be in [0, 1]"),
                         ("--random_erase=-0.1", "option --random_erase: random_erase must be in [0, 1]"),
                         ("--clip_grad_norm=-1", "option --clip_grad_norm: clip_grad_norm must be >= 0"),
                         ("--drop_rate=1", r"option --drop_rate: drop_rate must be in [0, 1\)"),
                         ("--drop_rate=-0.2", r"option --drop_rate: drop_rate must be in [0, 1\)")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            load_config([bad])
    # A key the run would ignore is refused rather than ignored silently.
    with pytest.raises(ConfigError, match="option --mix_prob: mix_prob 0.5 is the share .* mixup_alpha and "
                                          "cutmix_alpha are 0"):
        load_config(["--mix_prob=0.5"])
    assert load_config(["--cutmix_alpha=1", "--mix_prob=0.5"]).mix_prob == 0.5
    assert load_config(["--cutmix_alpha=1", "--mixup_off_epoch=80"]).mixup_off_epoch == 80
    # mix_prob 0 beside an alpha mixes no batch: the alphas (and a mixup_off_epoch, which README says is refused
    # without Mixup or CutMix) would be taken, recorded and ignored. The run's BatchAugment would mix nothing:
    assert not BatchAugment(0.2, 1.0, mix_prob=0.0).mixes
    for alphas, named in ((["--mixup_alpha=0.2"], "mixup_alpha 0.2"), (["--cutmix_alpha=1"], "cutmix_alpha 1"),
                          (["--mixup_alpha=0.2", "--cutmix_alpha=1", "--mixup_off_epoch=5"],
                           "mixup_alpha 0.2 and cutmix_alpha 1")):
        with pytest.raises(ConfigError, match=f"option --mix_prob: mix_prob 0 mixes no batch, so {named} would do "
                                              f"nothing: give the share of batches to mix"):
            load_config(alphas + ["--mix_prob=0"])
    assert load_config(["--mixup_alpha=0.2", "--mix_prob=0.01"]).mix_prob == 0.01
    for bad, message in ((["--mixup_off_epoch=5"], "mixup_off_epoch 5 is when Mixup and CutMix stop; mixup_alpha and "
                                                   "cutmix_alpha are 0"),
                         (["--mixup_alpha=0.2", "--mixup_off_epoch=-1"], "mixup_off_epoch must be >= 0"),
                         (["--mixup_alpha=0.2", "--mixup_off_epoch=90"], "mixup_off_epoch 90 is not below epoch_size "
                                                                         "90: mixing would never stop")):
        with pytest.raises(ConfigError, match=f"option --mixup_off_epoch: {message}"):
            load_config(bad)
    assert load_config(["--random_erase=0.25", "--random_erase_mode=pixel"]).random_erase_mode == "pixel"
    for bad, message in ((["--random_erase_mode=pixel"], "random_erase_mode pixel is random erasing's; random_erase "
                                                          "is 0"),
                         (["--random_erase=0.25", "--random_erase_mode=rand"],
                          "random_erase_mode='rand' is not one of")):
        with pytest.raises(ConfigError, match=f"option --random_erase_mode: {message}"):
            load_config(bad)
    with pytest.raises(ConfigError, match="option --ra_magnitude: ra_magnitude 12 is RandAugment's; "
                                          "auto_augment ta_wide does not use it"):
        load_config(["--auto_augment=ta_wide", "--ra_magnitude=12"])


# --- dropout --------------------------------------------------------------------------------------


def test_drop_rate_drops_pooled_features_in_training_only():
    torch.manual_seed(0)
    plain = MobileNetV1(class_num=7, width_mult=0.25)
    dropping = MobileNetV1(class_num=7, width_mult=0.25, drop_rate=0.5)
    dropping.load_state_dict(plain.state_dict())  # no parameters of its own: the same checkpoint keys
    assert plain.state_dict().keys() == dropping.state_dict().keys()
    x = torch.randn(4, 3, 32, 32)
    plain.eval(), dropping.eval()
    with torch.no_grad():
        features = plain.forward_head(plain.forward_features(x), pre_logits=True)
        torch.testing.assert_close(dropping(x), plain(x), rtol=0, atol=0)  # evaluation: no dropout
    dropping.train()
    seen = []
    # In training, the classifier sees each pooled feature either zeroed or scaled by 1 / (1 - p).
    dropping.fc.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    with torch.no_grad():
        torch.manual_seed(1)
        dropping.forward_head(features.unsqueeze(-1).unsqueeze(-1))
    kept, live = seen[0] != 0, features != 0  # (ReLU6 leaves some features 0 before any dropout)
    torch.testing.assert_close(seen[0][kept], (features * 2)[kept])
    assert int(live.sum()) > 200 and 0.4 < float(kept[live].float().mean()) < 0.6
    with pytest.raises(ValueError, match=r"drop_rate must be a number in \[0, 1\), got 1.0"):
        MobileNetV1(drop_rate=1.0)
    # A notebook's strings: "0.2" raised a TypeError of '<=', and features_only="False" built a backbone
    # (helper-248).
    with pytest.raises(ValueError, match=r"drop_rate must be a number in \[0, 1\), got '0.2'"):
        MobileNetV1(drop_rate="0.2")
    with pytest.raises(ValueError, match=r"^features_only='False', qat='no': must be True or False$"):
        MobileNetV1(features_only="False", qat="no")


# --- clipping -------------------------------------------------------------------------------------


def _one_step(max_norm, guard, scale=None, criterion=None, fused=False):
    """One SGD step (lr 1, no momentum, no decay) of a small net; returns the weights before, after, and
    the gradient of the unscaled loss computed apart. ``fused``: the fused SGD that train runs on CUDA
    (the guard then skips through its found_inf, the scaler through its own)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(5, 6) * 10, torch.randint(0, 3, (5,))
    criterion = criterion or nn.CrossEntropyLoss()
    before = [p.detach().clone() for p in model.parameters()]
    model.zero_grad()
    nn.CrossEntropyLoss()(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt = (torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.0, fused=True) if fused
           else make_optimizer(model, 1.0, 0.0, 0.0, CPU))
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, enabled=scale is not None)
    g = NonFiniteGuard(model, opt, CPU) if guard else None
    train_one_epoch(model, [(x, y)], criterion, opt, scaler, [1.0], CPU, "fp32", guard=g, clip_grad_norm=max_norm)
    return before, [p.detach().clone() for p in model.parameters()], grads, g


@pytest.mark.parametrize("guard,fused", [(True, False), (False, False), (True, True)],
                         ids=["guard", "no-guard", "guard-fused"])
@pytest.mark.parametrize("scale", [None, 1024.0], ids=["fp32", "loss-scaled"])
def test_clipping_scales_the_step_to_the_norm_of_the_unscaled_gradients(guard, fused, scale):
    """The guard's grad_norm (what train records) is that norm in every case: unscaled, before clipping,
    also where the fused kernel would have unscaled the gradients only inside itself."""
    step = functools.partial(_one_step, guard=guard, scale=scale, fused=fused)
    before, after, grads, g0 = step(0.0)
    norm = float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
    for b, a, g in zip(before, after, grads):  # unclipped: the plain step
        torch.testing.assert_close(b - a, g)
    assert norm > 1.0
    max_norm = norm / 4
    before, after, grads, g1 = step(max_norm)
    for b, a, g in zip(before, after, grads):
        torch.testing.assert_close(b - a, g * (max_norm / norm), rtol=1e-4, atol=1e-6)
    before, after, grads, g2 = step(norm * 2)  # under the limit: untouched
    for b, a, g in zip(before, after, grads):
        torch.testing.assert_close(b - a, g)
    if guard:
        assert [float(g.grad_norm()) for g in (g0, g1, g2)] == pytest.approx([norm] * 3, rel=1e-5)


def test_a_stand_in_step_records_no_gradient_norm():
    """A step skipped on purpose (a distributed run's stand-in batch) has the stand-in's gradients: its
    norm is NaN, not theirs passed off as the step's; the next step's is its own again."""
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    opt = make_optimizer(model, 0.1, 0.0, 0.0, CPU)
    guard = NonFiniteGuard(model, opt, CPU)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for skip in (True, False):
        opt.zero_grad()
        loss = nn.CrossEntropyLoss()(model(torch.randn(2, 4)), torch.tensor([0, 1]))
        loss.backward()
        guard.step(loss.detach(), scaler, skip=skip)
        norm = float(guard.grad_norm())
        assert math.isnan(norm) if skip else norm == pytest.approx(
            float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))))


@pytest.mark.parametrize("scale", [None, 1024.0], ids=["fp32", "loss-scaled"])
@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
def test_a_non_finite_loss_is_still_skipped_when_clipping(scale, fused):
    """A NaN loss with finite gradients. With loss scaling the guard hands the scaler a NaN gradient,
    which only counts if it is there before unscale_ (where the scaler decides)."""
    def nan_loss(logits, y):
        return F.cross_entropy(logits, y) + float("nan")

    before, after, _, guard = _one_step(0.5, True, scale, criterion=nan_loss, fused=fused)
    assert all(torch.equal(b, a) for b, a in zip(before, after))
    assert guard.sync()["total"] == 1


def test_dropout_resumes_exactly_from_an_image_folder_and_differs_by_rank(image_folder, tmp_path, one_thread):
    """PyTorch's DataLoader draws its workers' base seed from torch's global generator at each epoch's
    iterator (no workers) or once (persistent ones), which used to shift dropout's masks after a resume;
    every step now starts from train.step_seed(seed, rank, step)."""
    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1 import train

    common = ["--dataset=imagenet2012", f"--dataset_path={image_folder}", "--width_mult=0.25", "--image_size=32",
              "--batch_size=3", "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0",
              "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=2", "--drop_rate=0.5", "--epoch_size=3"]
    a = tmp_path / "a"
    straight = train.run(load_config(common + ["--save_checkpoint_steps=2", "--save_checkpoint_epochs=1",
                                              f"--save_checkpoint_path={a}"]))
    final = ckpt_io.load_file(straight["checkpoint"])["model"]
    assert straight["steps_per_epoch"] == 5
    # From its checkpoint at an epoch's end, and from one inside an epoch (every 2 global steps: 2_3 is step 8).
    for name in ("mobilenetv1-1_5.ckpt", "mobilenetv1-2_3.ckpt"):
        out = tmp_path / name
        resumed = train.run(load_config(common + [f"--resume={a / name}", f"--save_checkpoint_path={out}"]))
        again = ckpt_io.load_file(resumed["checkpoint"])["model"]
        assert again.keys() == final.keys()
        for k in final:
            assert torch.equal(again[k], final[k]), (name, k)
    seeds = {train.step_seed(1, rank, step) for rank in range(4) for step in range(100)}
    assert len(seeds) == 400 and train.step_seed(1, 0, 7) == train.step_seed(1, 0, 7)


def test_random_erasing_boxes_stay_smaller_than_the_image_and_reach_every_edge():
    """As torchvision's RandomErasing: a try fits only strictly inside (h < height, w < width; a box of the whole
    height is drawn again), and its top and left are uniform over every place it fits, the last included (the
    box reaches the bottom and right edges)."""
    boxes = erase_boxes(20000, 10, 12, 1.0, np.random.default_rng(0))
    drawn = boxes[boxes.any(axis=1)]
    h, w = drawn[:, 1] - drawn[:, 0], drawn[:, 3] - drawn[:, 2]
    assert len(drawn) > 19000 and (h > 0).all() and (w > 0).all()
    assert h.max() == 9 and w.max() == 11  # below the image's sides, and up to one less
    assert drawn[:, 0].min() == 0 and drawn[:, 2].min() == 0
    assert drawn[:, 1].max() == 10 and drawn[:, 3].max() == 12  # every fitting place drawn, the last too
