import math

import numpy as np
import pytest
import torch

from mobilenet_v1.losses import CrossEntropySmooth
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.schedules import get_lr, schedule, warmup_note

# 5 epochs x 2 steps = 10 steps, 1 warm-up epoch = 2 steps; lr_init 0.01, lr_max 0.1, lr_end 0.
HAND = {
    "steps": [0.01, 0.055, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001],
    "poly": [0.01, 0.055, 0.1, 0.0765625, 0.05625, 0.0390625, 0.025, 0.0140625, 0.00625, 0.0015625],
    "linear": [0.01, 0.055, 0.1, 0.0875, 0.075, 0.0625, 0.05, 0.0375, 0.025, 0.0125],
}


@pytest.mark.parametrize("mode", sorted(HAND))
def test_lr_modes_against_hand_table(mode):
    lr = get_lr(0.01, 0.0, 0.1, 1, 5, 2, mode)
    assert lr.dtype == np.float32 and lr.shape == (10,)
    np.testing.assert_allclose(lr, np.array(HAND[mode], dtype=np.float32), rtol=1e-6, atol=0)


def test_cosine_mode_against_hand_values():
    lr = get_lr(0.01, 0.0, 0.1, 1, 5, 2, "cosine")
    # warm-up counts from i + 1: 0.01 + 0.045 * 1, 0.01 + 0.045 * 2
    assert lr[0] == np.float32(0.055) and lr[1] == np.float32(0.1)
    # i = 2: linear factor 8/8, cosine 0.5 * (1 + cos(0.94 pi * 2 / 8)); i = 9: factor 1/8
    c2 = 0.5 * (1 + math.cos(math.pi * 0.235))
    assert lr[2] == pytest.approx(0.1 * (c2 + 1e-5), rel=1e-6)
    c9 = 0.5 * (1 + math.cos(math.pi * 2 * 0.47 * 9 / 8))
    assert lr[9] == pytest.approx(0.1 * (c9 / 8 + 1e-5), rel=1e-6)


@pytest.mark.parametrize("mode", ["steps", "poly", "cosine", "linear", "exponential", "cosine_annealing"])
def test_a_warmup_as_long_as_the_run_is_all_warmup_as_in_the_seed(mode):
    """The seed's formulas divide by T - W only after the warm-up: with W >= T every step warms up (a
    one-epoch trial of a configuration with one warm-up epoch). This used to be an error here."""
    lr = get_lr(0.01, 0.0, 0.1, 2, 2, 4, mode)
    first = 1 if mode == "cosine" else 0  # the seed's cosine warm-up counts from i + 1
    want = [0.01 + 0.09 * (i + first) / 8 for i in range(8)]
    np.testing.assert_allclose(lr, np.array(want, dtype=np.float32), rtol=1e-6, atol=0)
    assert get_lr(0.01, 0.0, 0.1, 3, 2, 4, mode)[-1] < lr[-1]
    # The note gives the rates it climbs from and to; the seed's cosine warm-up (from i + 1) reaches lr_max.
    cfg = load_config([f"--lr_decay_mode={mode}", "--lr_init=0.01", "--lr_max=0.1", "--warmup_epochs=2",
                       "--epoch_size=2"] + (["--lr_end=0"] if mode == "linear" else []))
    note = warmup_note(cfg, schedule(cfg, 4))
    reach = "" if mode == "cosine" else ", short of lr_max 0.1"
    assert note == (f"warmup_epochs 2 >= epoch_size 2: every step is a warm-up step (the rate climbs from "
                    f"{float(lr[0]):.6g} to {float(lr[-1]):.6g}{reach}), as in the seed's schedule")
    assert warmup_note(load_config([f"--lr_decay_mode={mode}", "--warmup_epochs=1", "--epoch_size=2"]), lr) == ""


def test_a_warmup_of_one_step_says_the_rate_stays_where_it_is():
    """A run of one step whose warm-up is as long: its one rate is said as such, not "climbs from 0.01 to 0.01";
    the seed's cosine warm-up (from i + 1) is at lr_max at that step."""
    args = ["--lr_init=0.01", "--lr_max=0.1", "--warmup_epochs=1", "--epoch_size=1"]
    cfg = load_config(["--lr_decay_mode=linear"] + args)
    assert warmup_note(cfg, schedule(cfg, 1)) == ("warmup_epochs 1 >= epoch_size 1: every step is a warm-up step (the "
                                                  "rate stays at 0.01, short of lr_max 0.1), as in the seed's schedule")
    cfg = load_config(["--lr_decay_mode=cosine"] + args)
    assert "(the rate stays at 0.1), as in" in warmup_note(cfg, schedule(cfg, 1))
    assert "(the rate climbs from 0.055 to 0.1), as in" in warmup_note(cfg, schedule(cfg, 2))


def test_a_warmup_down_to_a_lower_lr_max_says_the_rate_falls():
    """A warm-up as long as the run from an lr_init above lr_max goes down, and the note says so (it said
    "climbs from 0.01 to 0.0065")."""
    cfg = load_config(["--lr_decay_mode=poly", "--lr_init=0.01", "--lr_max=0", "--warmup_epochs=5", "--epoch_size=2"])
    note = warmup_note(cfg, schedule(cfg, 4))
    assert "(the rate falls from 0.01 to 0.0065, short of lr_max 0), as in" in note and "climbs" not in note


def test_a_decay_toward_an_lr_end_above_lr_max_is_said_to_climb():
    """linear and cosine_annealing run from lr_max to lr_end: an lr_end above lr_max (a typo, nearly always) made
    the rate climb after the warm-up without a word (helper-384). The modes that take no lr_end, and an lr_end at
    or below lr_max, say nothing."""
    from mobilenet_v1.schedules import schedule_notes

    for mode, warmup in (("cosine_annealing", 1), ("linear", 0)):
        cfg = load_config([f"--lr_decay_mode={mode}", "--lr_max=0.1", "--lr_end=0.5", f"--warmup_epochs={warmup}",
                           "--epoch_size=4"])
        lr = schedule(cfg, 3)
        assert lr[-1] > lr[3 * warmup]  # it does climb
        after = " after the warm-up" if warmup else ""
        assert (f"lr_end 0.5 is above lr_max 0.1: the rate climbs from lr_max to lr_end{after} ({mode} runs from "
                f"the one to the other)") in schedule_notes(cfg, lr, 128)
    for args in (["--lr_decay_mode=steps", "--lr_end=0.5"], ["--lr_decay_mode=linear", "--lr_end=0.1"]):
        cfg = load_config(args + ["--lr_max=0.1", "--warmup_epochs=0", "--epoch_size=4"])
        assert not any("climbs" in note for note in schedule_notes(cfg, schedule(cfg, 3), 128)), args


def test_seed_imagenet_linear_without_warmup():
    lr = get_lr(0.0, 0.0, 0.8, 0, 90, 5004, "linear")
    assert lr.shape == (450360,)
    assert lr[0] == np.float32(0.8)
    assert lr[-1] == np.float32(0.8 - 0.8 * 450359 / 450360)


def test_exponential_staircase_after_a_linear_warmup():
    """Warm-up as the seed's linear mode, then lr_max * rate ** k in the k-th period of
    int(decay_epochs x steps_per_epoch) steps counted from the warm-up's end (torchvision's StepLR
    after its warm-up; TF-slim's staircase)."""
    # 6 epochs x 4 steps, 1 warm-up epoch, a decay every 1.5 epochs = 6 steps.
    lr = get_lr(0.02, 0.0, 0.1, 1, 6, 4, "exponential", 0.5, 1.5)
    want = [0.02, 0.04, 0.06, 0.08] + [0.1] * 6 + [0.05] * 6 + [0.025] * 6 + [0.0125] * 2
    np.testing.assert_allclose(lr, np.array(want, dtype=np.float32), rtol=1e-6, atol=0)
    # torchvision's MobileNetV3 recipe, gamma 0.973 every 2 epochs, no warm-up: epoch e at 0.973 ** (e // 2).
    lr = get_lr(0.0, 0.0, 0.064, 0, 600, 3, "exponential", 0.973, 2)
    for epoch in (0, 1, 2, 5, 599):
        assert lr[epoch * 3] == lr[epoch * 3 + 2] == np.float32(0.064 * 0.973 ** (epoch // 2))
    # A period shorter than one step still decays once a step; rate 1 is constant.
    assert get_lr(0.0, 0.0, 1.0, 0, 1, 4, "exponential", 0.5, 0.1).tolist() == [1.0, 0.5, 0.25, 0.125]
    assert set(get_lr(0.0, 0.0, 0.3, 0, 3, 4, "exponential", 1.0, 1.0).tolist()) == {np.float32(0.3)}


def test_an_exponential_decay_period_of_a_fraction_of_steps_is_truncated_as_tf_slims():
    """TF-slim's int(steps_per_epoch * num_epochs_per_decay): 0.9 epochs of 3 steps decay every 2 steps (2.7
    truncated), not every 3."""
    lr = get_lr(0.0, 0.0, 1.0, 0, 2, 3, "exponential", 0.5, 0.9)
    assert lr.tolist() == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_an_exponential_decay_period_of_a_whole_number_of_steps_is_not_cut_by_floating_point():
    """0.29 epochs of 100 steps are 29 steps, though 100 * 0.29 is 28.999999999999996 in float64."""
    lr = get_lr(0.0, 0.0, 1.0, 0, 2, 100, "exponential", 0.5, 0.29)
    assert [i for i in range(1, 200) if lr[i] != lr[i - 1]] == [29, 58, 87, 116, 145, 174]


def test_warmup_prefix_false_counts_the_warmup_in_the_span_as_timms_default_schedulers():
    """timm's CosineLRScheduler and StepLRScheduler without --warmup-prefix: after a linear warm-up of W epochs,
    the cosine at epoch e is lr_min + (lr_max - lr_min) (1 + cos(pi e / T)) / 2 and the step schedule
    lr_max * rate ** (e // decay_t), e counted from 0 (timm's formulas, written out here); the default, True,
    starts both after the warm-up (timm's --warmup-prefix), as before (helper-250)."""
    T, W, lo, hi, init = 10, 2, 1e-5, 0.1, 1e-4
    warm = [init + (hi - init) * e / W for e in range(W)]
    cosine = get_lr(init, lo, hi, W, T, 3, "cosine_annealing", per_epoch=True, warmup_prefix=False)[::3]
    timm_cosine = warm + [lo + (hi - lo) * 0.5 * (1 + math.cos(math.pi * e / T)) for e in range(W, T)]
    np.testing.assert_allclose(cosine, np.array(timm_cosine, dtype=np.float32), rtol=1e-6)
    assert cosine[2] == pytest.approx(0.0905, abs=1e-4)  # the README's figure; 0.1 with the prefix
    step = get_lr(init, lo, hi, W, T, 3, "exponential", 0.5, 2, per_epoch=True, warmup_prefix=False)[::3]
    np.testing.assert_allclose(step, np.array(warm + [hi * 0.5 ** (e // 2) for e in range(W, T)], dtype=np.float32),
                               rtol=1e-6)
    prefixed = get_lr(init, lo, hi, W, T, 3, "exponential", 0.5, 2, per_epoch=True)[::3]
    assert prefixed[2:6].tolist() == pytest.approx([0.1, 0.1, 0.05, 0.05])
    cfg = load_config(["--lr_decay_mode=cosine_annealing", "--warmup_epochs=2", "--warmup_prefix=False",
                       "--epoch_size=10", "--lr_per_epoch=True", "--lr_max=0.1", "--lr_end=1e-5", "--lr_init=1e-4"])
    assert schedule(cfg, 3)[6] == pytest.approx(0.0905, abs=1e-4)
    with pytest.raises(ConfigError, match="warmup_prefix False is lr_decay_mode cosine_annealing's and exponential's; "
                                          "lr_decay_mode poly does not use it"):
        load_config(["--warmup_prefix=False"])


def test_timms_warmup_prefix_run_is_epoch_size_plus_the_warmup_here():
    """timm's --warmup-prefix lengthens its run by the warm-up (create_scheduler_v2: get_cycle_length() adds warmup_t
    for the cosine, num_epochs += warmup_epochs for the step schedule): --epochs E --warmup-epochs W --warmup-prefix
    trains E + W epochs, the cosine over the last E. epoch_size here is the whole run, so that is epoch_size E + W
    (helper-355; the README's table says so)."""
    E, W, lo, hi, init = 10, 2, 1e-5, 0.1, 1e-4
    warm = [init + (hi - init) * e / W for e in range(W)]
    timm_cosine = warm + [lo + (hi - lo) * 0.5 * (1 + math.cos(math.pi * (e - W) / E)) for e in range(W, E + W)]
    ours = get_lr(init, lo, hi, W, E + W, 3, "cosine_annealing", per_epoch=True)[::3]
    np.testing.assert_allclose(ours, np.array(timm_cosine, dtype=np.float32), rtol=1e-6)


def test_cosine_annealing_is_torchs_cosine_annealing_after_a_linear_warmup():
    """Warm-up as the seed's linear mode, then the rates of torch's CosineAnnealingLR stepped once a
    step (T_max: the steps after the warm-up, eta_min: lr_end), from lr_max down toward lr_end; not the
    seed's cosine."""
    lr = get_lr(0.01, 0.001, 0.1, 1, 5, 4, "cosine_annealing")
    np.testing.assert_allclose(lr[:4], np.array([0.01, 0.0325, 0.055, 0.0775], np.float32), rtol=1e-6)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=16, eta_min=0.001)
    theirs = []
    for _ in range(16):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lr[4:], np.array(theirs, np.float32), rtol=1e-5)
    assert lr[4] == np.float32(0.1) and lr[-1] < 0.0021 and np.all(np.diff(lr[4:]) < 0)
    assert not np.allclose(lr, get_lr(0.01, 0.001, 0.1, 1, 5, 4, "cosine"), rtol=0.01)


def test_lr_per_epoch_is_torchvisions_schedulers_stepped_once_an_epoch():
    """--lr_per_epoch True: torchvision's recipe (LinearLR warm-up from lr_init / lr_max, then
    CosineAnnealingLR to lr_end, in SequentialLR) stepped once an epoch, each rate held for the epoch's
    3 steps; with False (the default) the same curve moves every step. A resume from a file from before
    the key (which changed its rate every step) that turns it on is named as a change of schedule."""
    from mobilenet_v1 import train

    epochs, warmup, spe = 8, 2, 3
    lr = get_lr(0.02, 0.001, 0.2, warmup, epochs, spe, "cosine_annealing", per_epoch=True)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.2)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=0.001)], milestones=[warmup])
    theirs = []
    for _ in range(epochs):
        theirs += [opt.param_groups[0]["lr"]] * spe
        opt.step()
        sched.step()
    np.testing.assert_allclose(lr, np.array(theirs, np.float32), rtol=1e-5)
    per_step = get_lr(0.02, 0.001, 0.2, warmup, epochs, spe, "cosine_annealing")
    np.testing.assert_array_equal(lr[::spe], per_step[::spe])  # each epoch's first step: the same rate
    assert not np.array_equal(lr, per_step)
    cfg = load_config(["--lr_decay_mode=cosine_annealing", "--lr_per_epoch=True", "--epoch_size=8",
                       "--warmup_epochs=2"])
    np.testing.assert_array_equal(schedule(cfg, spe)[::spe], schedule(cfg, spe)[1::spe])
    was = load_config(["--lr_decay_mode=cosine_annealing", "--epoch_size=8", "--warmup_epochs=2"])
    old = {k: v for k, v in vars(was).items() if k != "lr_per_epoch"}
    line = train.schedule_change({"config": old, "step": 4, "steps_per_epoch": spe}, "a.ckpt", cfg,
                                 schedule(cfg, spe), 4)
    assert line == (f"resume: the learning-rate schedule differs from that of a.ckpt's run: lr_per_epoch False -> "
                    f"True; step 5 trains at {float(schedule(cfg, spe)[4]):.6g}, where that run's would train at "
                    f"{float(schedule(was, spe)[4]):.6g}")
    assert schedule(cfg, spe)[4] != schedule(was, spe)[4]


def test_unknown_mode_is_linear_as_in_the_seed():
    np.testing.assert_array_equal(get_lr(0.01, 0.0, 0.1, 1, 5, 2, "other"), get_lr(0.01, 0.0, 0.1, 1, 5, 2, "linear"))


def test_a_schedule_of_absurdly_many_steps_is_refused_at_once():
    """--epoch_size 10000000000 used to fill the memory a step at a time, with no word."""
    with pytest.raises(ValueError, match="epoch_size 10000000000 x 44 steps per epoch is 440,000,000,000 steps, "
                                         "more than 200,000,000: check --epoch_size"):
        get_lr(0.0, 0.0, 0.1, 0, 10_000_000_000, 44, "cosine")
    # (where the steps per epoch are the slip: lr-schedule's option for them named too)
    with pytest.raises(ValueError, match=r"check --epoch_size and the steps per epoch \(lr-schedule's --steps_per_epoch"):
        get_lr(0.0, 0.0, 0.1, 0, 2, 10 ** 20, "cosine")


def test_cross_entropy_smooth_against_hand_computation():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels = torch.tensor([0, 2])
    e = 0.1
    loss = CrossEntropySmooth(smooth_factor=e, num_classes=3)(logits, labels)
    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        z = math.log(sum(math.exp(v) for v in row))
        target = [e / 2] * 3
        target[y] = 1 - e
        total += -sum(t * (v - z) for t, v in zip(target, row))
    assert loss.item() == pytest.approx(total / 2, rel=1e-6)
    # It is not PyTorch's label_smoothing (e / K on every class).
    torch_ls = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=e)
    assert abs(torch_ls.item() - loss.item()) > 1e-4


def test_binary_cross_entropy_against_hand_computation_and_mixing():
    """--bce_loss: the mean over batch and classes of -(t log s + (1 - t) log(1 - s)), s the sigmoid of a
    logit, t the one-hot target smoothed as the seed smooths; a mixed loss (what Mixup and CutMix give)
    is the loss of the mixed target; train builds it, smoothed by use_label_smooth."""
    from mobilenet_v1.losses import BinaryCrossEntropy
    from mobilenet_v1.train import build_criterion

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels, partners = torch.tensor([0, 2]), torch.tensor([1, 2])
    e = 0.1
    loss = BinaryCrossEntropy(smooth_factor=e, num_classes=3)
    total = 0.0
    for row, y in zip(logits.tolist(), labels.tolist()):
        for c, v in enumerate(row):
            t, p = (1 - e) if c == y else e / 2, 1 / (1 + math.exp(-v))
            total -= t * math.log(p) + (1 - t) * math.log(1 - p)
    assert loss(logits, labels).item() == pytest.approx(total / 6, rel=1e-6)

    def target(y):
        return torch.full((2, 3), e / 2).scatter_(1, y.unsqueeze(1), 1 - e)

    mixed = 0.3 * loss(logits, labels) + 0.7 * loss(logits, partners)
    by_target = torch.nn.functional.binary_cross_entropy_with_logits(logits,
                                                                     0.3 * target(labels) + 0.7 * target(partners))
    assert mixed.item() == pytest.approx(by_target.item(), rel=1e-6)
    built = build_criterion(load_config(["--bce_loss=True", "--use_label_smooth=True", "--class_num=3"]))
    assert isinstance(built, BinaryCrossEntropy) and built(logits, labels).item() == pytest.approx(total / 6)
    plain = build_criterion(load_config(["--bce_loss=True", "--class_num=3"]))
    assert plain(logits, labels).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.eye(3)[labels]).item())


def test_bce_target_threshold_makes_mixed_and_smoothed_targets_whole_and_train_mixes_targets_first():
    """--bce_target_thresh T: a target above T counts as 1, any other as 0 (timm's --bce-target-thresh).
    Smoothing goes (0.9 -> 1, 0.05 -> 0); a mixed batch's classes count if their share is above T, which
    is not the mix of the two losses (the threshold is not linear): train_one_epoch hands such a loss
    both labels and lam."""
    from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
    from mobilenet_v1.losses import BinaryCrossEntropy
    from mobilenet_v1.train import build_criterion

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    labels, partners = torch.tensor([0, 2]), torch.tensor([1, 1])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    loss = BinaryCrossEntropy(smooth_factor=0.1, num_classes=3, target_threshold=0.2)
    assert loss(logits, labels).item() == pytest.approx(bce(logits, torch.eye(3)[labels]).item())
    both = torch.eye(3)[labels] + torch.eye(3)[partners]
    assert loss.mixed(logits, labels, partners, 0.7).item() == pytest.approx(bce(logits, both).item())
    assert loss.mixed(logits, labels, partners, 0.9).item() == pytest.approx(bce(logits, torch.eye(3)[labels]).item())
    assert loss.mixed(logits, labels, partners, 0.7).item() != pytest.approx(
        0.7 * loss(logits, labels).item() + 0.3 * loss(logits, partners).item())
    cfg = load_config(["--bce_loss=True", "--bce_target_thresh=0.2", "--class_num=3"])
    assert build_criterion(cfg).target_threshold == 0.2
    with pytest.raises(ConfigError, match="option --bce_target_thresh: bce_target_thresh 0.2 is binary cross "
                                          "entropy's; bce_loss is False"):
        load_config(["--bce_target_thresh=0.2"])

    calls = []

    class Spy(BinaryCrossEntropy):
        def mixed(self, logits, label, partner, lam):
            calls.append(lam)
            return super().mixed(logits, label, partner, lam)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    cpu = torch.device("cpu")
    train_one_epoch(model, [(x, y)], Spy(0.0, 3, 0.2), make_optimizer(model, 0.1, 0.0, 0.0, cpu),
                    make_scaler("fp32", cpu, 1.0), [0.1], cpu, "fp32",
                    augment=lambda pos, images, labels: (images, labels.flip(0), 0.7))
    assert calls == [0.7]


def test_a_bce_target_at_the_threshold_is_not_above_it():
    """timm's --bce-target-thresh keeps a target strictly above it (target.gt(thresh)): an even mix of two
    classes (0.5 each) at a threshold of 0.5 counts neither."""
    from mobilenet_v1.losses import BinaryCrossEntropy

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    loss = BinaryCrossEntropy(0.0, 3, target_threshold=0.5).mixed(logits, torch.tensor([0, 2]), torch.tensor([1, 0]),
                                                                  0.5)
    none = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros(2, 3))
    assert loss.item() == pytest.approx(none.item(), rel=1e-6)


@pytest.mark.parametrize("thresh, smooth, classes, every", [
    ("0.9", "0.1", 4, 0.0),  # the true class's 1 - e is 0.9: not above the threshold
    ("0.89999997", "0.1", 4, 0.0),  # below 0.9 as a double, 0.9 in float32, where the loss compares
    ("0.95", "0.1", 1000, 0.0),
    ("0.01", "0.1", 4, 1.0),  # each other class's e / (C - 1) is 0.0333: above the threshold
    ("0.05", "0.1", 2, 1.0),
])
def test_a_bce_threshold_outside_the_smoothed_targets_is_refused(thresh, smooth, classes, every):
    """--bce_target_thresh beside --use_label_smooth: a threshold not below the true class's smoothed target makes
    every target 0, one below each other class's makes every target 1, mixed or not (a mixed target lies between
    the two): the loss no longer tells the classes apart and the run would learn nothing, silently. Refused by
    name, with the bound; a threshold between the two (timm's 0.2) trains on the label."""
    from mobilenet_v1.losses import BinaryCrossEntropy

    t, e = float(thresh), float(smooth)
    on_off = torch.tensor([1 - e, e / (classes - 1)], dtype=torch.float32)
    assert (on_off > t).float().tolist() == [every, every]  # what the loss would train toward: one value for all
    args = ["--bce_loss=True", f"--bce_target_thresh={thresh}", "--use_label_smooth=True",
            f"--label_smooth_factor={smooth}", f"--class_num={classes}"]
    bound = "not below the true class's smoothed target" if every == 0 else "below each other class's smoothed target"
    with pytest.raises(ConfigError, match=rf"option --bce_target_thresh: bce_target_thresh {t:g} is {bound}.*"
                                          rf"every target would count as {int(every)}"):
        load_config(args)
    with pytest.raises(ValueError, match=f"every target would count as {int(every)}"):
        BinaryCrossEntropy(e, classes, target_threshold=t)
    # Without smoothing the targets are 1 and 0, which any threshold in [0, 1) tells apart.
    assert load_config(args[:2] + [f"--class_num={classes}"]).bce_target_thresh == t


@pytest.mark.parametrize("thresh, smooth, classes", [("0.25", "0.8", 4), ("0.5", "0.6", 2), ("0.1", "0.8", 4)])
def test_a_bce_threshold_beside_smoothing_past_its_limit_names_the_factor(thresh, smooth, classes):
    """label_smooth_factor at or above (C - 1) / C gives each other class a target no lower than the true class's:
    a threshold between the two (0.25 of 0.2 and 0.267) makes the true class 0 and every other 1, where the refusal
    said "every target would count as 0" and to give a threshold below 0.2, which was then refused as below 0.267,
    each bound sending to the other. The factor is what to change, and the refusal says so."""
    from mobilenet_v1.losses import BinaryCrossEntropy

    t, e = float(thresh), float(smooth)
    args = ["--bce_loss=True", f"--bce_target_thresh={thresh}", "--use_label_smooth=True",
            f"--label_smooth_factor={smooth}", f"--class_num={classes}"]
    limit = f"{(classes - 1) / classes:.6g}"
    with pytest.raises(ConfigError, match=rf"option --bce_target_thresh: bce_target_thresh {t:g} beside "
                                          rf"label_smooth_factor {e:g}: each other class's smoothed target, .* is no "
                                          rf"lower than the true class's.* give a label_smooth_factor below {limit}"
                                          ) as refused:
        load_config(args)
    assert "every target would count" not in str(refused.value)
    with pytest.raises(ValueError, match=f"give a label_smooth_factor below {limit}"):
        BinaryCrossEntropy(e, classes, target_threshold=t)


def test_a_bce_threshold_between_the_smoothed_targets_is_taken():
    """The bounds themselves: a threshold at each other class's float32 target (not above it: 0) and just under
    the true class's (1) keeps the label, as timm's 0.2 does."""
    from mobilenet_v1.losses import BinaryCrossEntropy

    logits, labels = torch.tensor([[2.0, 0.5, -1.0, 0.0]]), torch.tensor([2])
    off = float(torch.tensor(0.1 / 3, dtype=torch.float32))
    for t in (off, 0.2, 0.8999):
        cfg = load_config(["--bce_loss=True", f"--bce_target_thresh={t!r}", "--use_label_smooth=True",
                           "--label_smooth_factor=0.1", "--class_num=4"])
        loss = BinaryCrossEntropy(0.1, 4, target_threshold=cfg.bce_target_thresh)(logits, labels)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.eye(4)[labels])
        assert loss.item() == pytest.approx(expected.item()), t


def test_a_run_trains_with_bce_and_a_resume_to_cross_entropy_is_named(cifar_dir, tmp_path, capsys, one_thread):
    from mobilenet_v1 import train
    from mobilenet_v1.tracking import read_metrics

    common = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
              "--warmup_epochs=0", "--lr_decay_mode=linear", "--class_num=4", f"--dataset_path={cifar_dir}",
              "--lr_max=0.2"]
    result = train.run(load_config(common + ["--epoch_size=1", "--bce_loss=True", "--log_interval=1",
                                             f"--save_checkpoint_path={tmp_path / 'a'}"]))
    # Four sigmoids near 0.5 at the start give about log 2; a softmax cross entropy would give about log 4.
    losses = [r["loss"] for r in read_metrics(str(tmp_path / "a"))["steps"]]
    assert abs(losses[0] - math.log(2)) < 0.1 and losses[-1] < losses[0]
    capsys.readouterr()
    train.run(load_config(common + ["--epoch_size=2", f"--resume={result['checkpoint']}",
                                    f"--save_checkpoint_path={tmp_path / 'b'}"]))
    assert (f"resume: {result['checkpoint']} was trained with bce_loss True; continuing with this run's bce_loss "
            f"False") in capsys.readouterr().out


def test_cross_entropy_smooth_without_smoothing_is_cross_entropy():
    logits = torch.randn(8, 1001)
    labels = torch.randint(0, 1000, (8,))
    ours = CrossEntropySmooth(smooth_factor=0.0, num_classes=1001)(logits, labels)
    assert ours.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    per = CrossEntropySmooth(smooth_factor=0.1, num_classes=1001, reduction="none")(logits, labels)
    assert per.shape == (8,)


def test_use_label_smooth_is_honoured_for_cifar10_too():
    """The seed ignores use_label_smooth for CIFAR-10 (plain cross entropy); a run that sets it here
    gets the seed's smoothing, and the default stays the seed's plain loss."""
    from mobilenet_v1.config import load_config
    from mobilenet_v1.train import build_criterion

    assert type(build_criterion(load_config([]))) is torch.nn.CrossEntropyLoss
    smooth = build_criterion(load_config(["--use_label_smooth=True", "--label_smooth_factor=0.2"]))
    assert isinstance(smooth, CrossEntropySmooth)
    assert (smooth.on_value, smooth.off_value) == pytest.approx((0.8, 0.2 / 9))
    plain = build_criterion(load_config(["--dataset=imagenet2012", "--use_label_smooth=False"]))
    assert isinstance(plain, CrossEntropySmooth) and plain.off_value == 0.0


def test_a_smoothing_factor_that_lifts_the_wrong_classes_to_the_true_ones_target_is_warned_of(cifar_dir, tmp_path,
                                                                                                capsys, one_thread):
    """At label_smooth_factor >= (C - 1) / C the seed's smoothing gives each wrong class a target no lower than the
    true class's (1 - e against e / (C - 1)); such a factor is accepted, as the seed accepts it, and a run says so in
    one warning line at its start. The seed's and our presets say nothing."""
    import glob
    import os

    from mobilenet_v1 import train
    from mobilenet_v1.train import build_criterion, label_smoothing_warning

    smooth = ["--use_label_smooth=True", "--class_num=4"]
    warned = label_smoothing_warning(load_config(smooth + ["--label_smooth_factor=0.75"]))
    assert warned == ("warning: --label_smooth_factor 0.75 is at or above 3/4 = 0.75, the limit for class_num 4: each "
                      "wrong class's target, 0.25, is no lower than the true class's, 0.25")
    criterion = build_criterion(load_config(smooth + ["--label_smooth_factor=0.75"]))
    assert criterion.off_value >= criterion.on_value  # what the warning says
    assert label_smoothing_warning(load_config(smooth + ["--label_smooth_factor=0.74"])) == ""
    assert label_smoothing_warning(load_config(["--use_label_smooth=True", "--label_smooth_factor=0.9"])).startswith(
        "warning: --label_smooth_factor 0.9 is at or above 9/10 = 0.9, the limit for class_num 10")
    assert "class_num 2" in label_smoothing_warning(load_config(["--use_label_smooth=True", "--class_num=2",
                                                                 "--label_smooth_factor=0.5"]))
    here = os.path.dirname(__file__)
    presets = [load_config([]), load_config(["--dataset=imagenet2012"]), load_config(["--dataset=cifar100"])]
    files = sorted(glob.glob(os.path.join(here, "..", "configs", "*.yaml"))
                   + glob.glob(os.path.join(here, "fixtures", "seed", "*.yaml")))
    presets += [load_config(["--config_path", f]) for f in files]
    assert len(files) >= 8 and any(c.use_label_smooth for c in presets)
    assert [label_smoothing_warning(c) for c in presets] == [""] * len(presets)
    capsys.readouterr()
    train.run(load_config(smooth + ["--width_mult=0.25", "--image_size=32", "--batch_size=64", "--device_target=CPU",
                                    "--num_workers=0", "--epoch_size=1", "--warmup_epochs=0", "--eval_interval=0",
                                    "--label_smooth_factor=0.8", f"--dataset_path={cifar_dir}",
                                    f"--save_checkpoint_path={tmp_path / 'run'}"]))
    out = capsys.readouterr().out.splitlines()
    said = [i for i, line in enumerate(out) if "label_smooth_factor 0.8 is at or above" in line]
    start = next(i for i, line in enumerate(out) if line.startswith("training: "))  # before the first step
    assert len(said) == 1 and said[0] < start and out[said[0]].startswith("warning: --label_smooth_factor 0.8 ")


def test_progressive_resizing_with_a_ramp_of_exactly_one_epoch_or_an_odd_image_size_ends_at_image_size():
    """A ramp of exactly one epoch (image_size_ramp 0.1 of 10 epochs) has no epoch to grow over: image_size
    throughout, not a division by zero; the ramp's last epoch is image_size itself, not rounded down to a
    multiple of 16 (200, not 192)."""
    from mobilenet_v1.schedules import training_size

    assert [training_size(224, 128, 0.1, e, 10) for e in range(10)] == [224] * 10
    assert [training_size(200, 128, 0.5, e, 10) for e in range(10)] == [128, 144, 160, 176, 200] + [200] * 5


def test_progressive_resizing_sizes_are_those_of_exact_arithmetic_where_floating_point_lands_beside_them():
    """README: the size rises linearly, rounded down to a multiple of 16, to reach image_size at the last epoch of
    the ramp. 0.07 of 100 epochs is 7.000000000000001 in floating point: the 7th epoch trained at 48 of 64 and the
    ramp took an 8th; 16 + 496 / 3.1 is 176, computed 175.99999999999997, and trained at 160. Each size is checked
    against the rule in exact fractions, and a ramp's last epoch against image_size."""
    from fractions import Fraction

    from mobilenet_v1.schedules import SIZE_STEP, training_size

    def exact(size, start, share, epoch, epochs):
        ramp = Fraction(share) * epochs
        if epoch >= ramp - 1:
            return size
        return min(size, max(start, int(start + Fraction(size - start) * epoch / (ramp - 1)) // SIZE_STEP * SIZE_STEP))

    assert [training_size(64, 16, 0.07, e, 100) for e in range(8)] == [16, 16, 32, 32, 48, 48, 64, 64]
    assert [training_size(512, 16, 0.1, e, 41) for e in range(5)] == [16, 176, 336, 496, 512]
    for size, start in ((64, 16), (512, 16), (300, 100), (224, 128)):
        for hundredths in (7, 10, 14, 20, 28, 40, 56, 68, 75, 80):
            share = hundredths / 100
            for epochs in range(2, 120):
                if Fraction(hundredths, 100) * epochs <= 1:
                    continue
                got = [training_size(size, start, share, e, epochs) for e in range(epochs)]
                assert got == [exact(size, start, Fraction(hundredths, 100), e, epochs) for e in range(epochs)], \
                    (size, start, share, epochs)


@pytest.mark.parametrize("mode", ["cosine_annealing", "exponential", "linear", "steps"])
def test_a_key_the_schedule_does_not_use_leaves_its_rates_as_they_are(mode):
    """schedules.uses says which keys a schedule depends on (a resume names a change of those alone): a key it
    calls unused changes no rate. warmup_prefix moves cosine_annealing's and exponential's span only after a
    warm-up: without one it is unused."""
    from mobilenet_v1.schedules import uses

    base = dict(lr_init=0.01, lr_end=0.001, lr_max=0.1, total_epochs=6, steps_per_epoch=3, lr_decay_mode=mode,
                decay_rate=0.5, decay_epochs=1.0, warmup_prefix=True)
    other = {"lr_init": 0.02, "lr_end": 0.002, "warmup_prefix": False, "lr_decay_rate": 0.25, "lr_decay_epochs": 2.0}
    arg = {"lr_decay_rate": "decay_rate", "lr_decay_epochs": "decay_epochs"}
    for warmup in (0, 2):
        before = get_lr(warmup_epochs=warmup, **base)
        for key, value in other.items():
            changed = get_lr(warmup_epochs=warmup, **dict(base, **{arg.get(key, key): value}))
            if not uses(mode, warmup, key):
                np.testing.assert_array_equal(changed, before, err_msg=f"{mode} warm-up {warmup}: {key}")
            else:
                assert not np.array_equal(changed, before), (mode, warmup, key)
    assert not uses("cosine_annealing", 0, "warmup_prefix") and uses("cosine_annealing", 1, "warmup_prefix")


def test_cross_entropy_smooth_sums_and_keeps_each_samples_loss_as_asked():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.4, 1.5, 0.0]])
    labels = torch.tensor([0, 2, 1])
    per = CrossEntropySmooth(smooth_factor=0.1, num_classes=3, reduction="none")(logits, labels)
    assert per.shape == (3,)
    assert CrossEntropySmooth(smooth_factor=0.1, num_classes=3, reduction="sum")(logits, labels).item() == \
        pytest.approx(per.sum().item(), rel=1e-6)
    assert CrossEntropySmooth(smooth_factor=0.1, num_classes=3)(logits, labels).item() == \
        pytest.approx(per.mean().item(), rel=1e-6)


@pytest.mark.parametrize("spe", [1, 3, 7, 24, 312])
def test_exponential_stepped_once_an_epoch_decays_at_timms_epochs_for_a_fractional_period(spe):
    """timm's --sched step --decay-epochs 2.4: lr_max * rate ** (epoch // 2.4), whatever the steps an epoch
    (int(steps_per_epoch x 2.4) steps decayed every 2 epochs at 1 step an epoch)."""
    lr = get_lr(0.0, 0.0, 1.0, 0, 40, spe, "exponential", 0.5, 2.4, per_epoch=True)[::spe]
    np.testing.assert_array_equal(lr, np.array([0.5 ** (e // 2.4) for e in range(40)], dtype=np.float32))


def test_exponential_stepped_once_an_epoch_decays_at_the_readmes_epochs():
    """The README's examples of --lr_per_epoch True with exponential: 2.4 decays at epochs 3, 5, 8 and 10 (from 0);
    0.4's 5th decay comes at epoch 3, not at 2 as "at or past 5 x 0.4" read in exact arithmetic said (its floating
    point, timm's, has 2 // 0.4 at 4)."""
    def first_epochs(decay_epochs, epochs):
        lr = get_lr(0.0, 0.0, 1.0, 0, epochs, 5, "exponential", 0.5, decay_epochs, per_epoch=True)[::5]
        decays = np.round(np.log(lr.astype(np.float64)) / np.log(0.5)).astype(int)
        return [int(np.argmax(decays >= k)) for k in range(1, decays.max() + 1)]

    assert first_epochs(2.4, 11)[:4] == [3, 5, 8, 10]
    assert first_epochs(0.4, 4)[:5] == [1, 1, 2, 2, 3]  # the 4th at 1.6 -> epoch 2; the 5th at 2.0 -> epoch 3


@pytest.mark.parametrize("prefix", [False, True])
def test_exponential_stepped_once_an_epoch_after_a_warmup_counts_timms_periods(prefix):
    """After 2 warm-up epochs, timm's periods count from epoch 0 (its default) or from the warm-up's end
    (--warmup-prefix), as --warmup_prefix False / True say, at 2.4 epochs of 3 steps."""
    lr = get_lr(0.0, 0.0, 1.0, 2, 30, 3, "exponential", 0.5, 2.4, per_epoch=True, warmup_prefix=prefix)[::3]
    after = 2 if prefix else 0
    np.testing.assert_array_equal(lr[2:], np.array([0.5 ** ((e - after) // 2.4) for e in range(2, 30)],
                                                   dtype=np.float32))
    assert lr[0] < lr[1] < 1.0


@pytest.mark.parametrize("decay_epochs", [0.4, 1.1, 2.2, 3.6])
def test_exponential_stepped_once_an_epoch_decays_at_timms_epochs_where_float_division_lands_below(decay_epochs):
    """timm's StepLRScheduler takes lr * rate ** (t // decay_t) in floats: 2 // 0.4 is 4.0, not 5 (0.4 is stored just
    above 2/5), so its decays come at other epochs than the quotient rounded first gives (helper-381 compared 177,840
    epochs with timm 1.0.31's scheduler: these 15 decay values alone differed)."""
    lr = get_lr(0.0, 0.0, 1.0, 0, 30, 3, "exponential", 0.5, decay_epochs, per_epoch=True)[::3]
    np.testing.assert_array_equal(lr, np.array([0.5 ** (e // decay_epochs) for e in range(30)], dtype=np.float32))
    assert 2 // 0.4 == 4.0
