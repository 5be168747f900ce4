"""Gradient accumulation (``--grad_accum_steps``): K batches of B make the step of one batch of K x B."""
import shutil

import pytest
import torch
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.engine import make_optimizer, make_scaler, train_one_epoch
from mobilenet_v1.nonfinite import NonFiniteGuard

SMALL = ["--width_mult=0.25", "--image_size=32", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05", "--class_num=4"]


def test_k_batches_of_b_step_as_one_batch_of_k_times_b():
    """Without BatchNorm (whose statistics are per batch) the two are the same arithmetic: the mean
    loss over 16 samples is the mean of the two means over 8."""
    torch.manual_seed(0)
    x, y = torch.randn(96, 20), torch.randint(0, 5, (96,))
    start = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
    lrs = [0.1, 0.08, 0.06, 0.04, 0.02, 0.01]
    cpu = torch.device("cpu")
    results = {}
    for batch, accumulate in ((16, 1), (8, 2), (4, 4)):
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))
        model.load_state_dict(start.state_dict())
        opt = make_optimizer(model, lrs[0], 0.9, 1e-4, cpu)
        batches = [(x[i:i + batch], y[i:i + batch]) for i in range(0, 96, batch)]
        seen = []
        r = train_one_epoch(model, batches, nn.CrossEntropyLoss(), opt, make_scaler("fp32", cpu, 1.0), lrs, cpu,
                            "fp32", on_step=lambda i, loss, lr: seen.append((i, lr)), accumulate=accumulate)
        assert r.steps == 6 and r.images == 96 and seen == list(enumerate(lrs))
        results[accumulate] = (model.state_dict(), r.mean_loss)
    one, _ = results[1]
    assert max(float((one[k] - start.state_dict()[k]).abs().max()) for k in one) > 1e-2  # the weights moved
    for accumulate in (2, 4):
        state, mean_loss = results[accumulate]
        for k in one:
            torch.testing.assert_close(state[k], one[k], rtol=1e-5, atol=1e-6)
        assert mean_loss == pytest.approx(results[1][1], rel=1e-5)


def test_an_incomplete_last_step_is_not_trained_on_and_the_loader_is_read_to_its_end():
    """7 batches, 3 a step: 2 steps. The 7th batch is read, not trained on, whether the loop ends at
    the loader's end or at the schedule's (as in train, whose epoch has len(loader) // 3 steps): a
    loader left before its end (the GPU pipeline's thread) would still be reading at the next epoch."""
    cpu = torch.device("cpu")
    model = nn.Linear(4, 2)
    for lrs in ([0.1] * 10, [0.1] * 2):
        read = []

        def batches():
            for k in range(7):
                read.append(k)
                yield torch.randn(3, 4), torch.randint(0, 2, (3,))
            read.append("end")

        r = train_one_epoch(model, batches(), nn.CrossEntropyLoss(), make_optimizer(model, 0.1, 0.9, 0.0, cpu),
                            make_scaler("fp32", cpu, 1.0), lrs, cpu, "fp32", accumulate=3)
        assert r.steps == 2 and r.images == 18 and read == [0, 1, 2, 3, 4, 5, 6, "end"], lrs


@pytest.mark.parametrize("bad_batch", [0, 1])
def test_a_nan_in_any_batch_of_a_step_skips_the_whole_step(bad_batch):
    """K=2 with BatchNorm: a NaN in either batch leaves weights and running statistics as they were
    before the step's first batch, and counts one skipped step."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    opt = make_optimizer(model, 0.1, 0.9, 0.0, cpu)
    guard = NonFiniteGuard(model, opt, cpu)
    good = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)]
    train_one_epoch(model, good, nn.CrossEntropyLoss(), opt, make_scaler("fp32", cpu, 1.0), [0.1], cpu, "fp32",
                    guard=guard, accumulate=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(2)]
    batches[bad_batch][0][1, 2] = float("nan")
    train_one_epoch(model, batches, nn.CrossEntropyLoss(), opt, make_scaler("fp32", cpu, 1.0), [0.1], cpu, "fp32",
                    guard=guard, accumulate=2)
    after = model.state_dict()
    for k, v in before.items():
        if k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(after[k], v), k
    assert guard.sync()["total"] == 1


def test_grad_accum_steps_below_1_is_refused():
    with pytest.raises(ConfigError, match="grad_accum_steps must be at least 1"):
        load_config(["--grad_accum_steps=0"])


def test_a_run_counts_steps_of_k_batches_and_resumes_inside_an_epoch_exactly(cifar_dir, tmp_path, capsys):
    """192 samples, batch 8, 2 batches a step: 12 steps an epoch, named and scheduled as such; resumed
    from a checkpoint saved after 3 steps of epoch 2 (6 batches), the run ends with the same weights."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = SMALL + [f"--dataset_path={cifar_dir}", "--batch_size=8", "--grad_accum_steps=2", "--epoch_size=2",
                    "--save_checkpoint_steps=5", "--keep_checkpoint_max=10"]
    result = train.run(load_config(args + [f"--save_checkpoint_path={straight}"]))
    log = capsys.readouterr().out
    assert "training: 192 samples, 12 steps per epoch (each step adds up the gradients of 2 batches of 8)" in log
    assert "epoch: 2 step: 12, loss is " in log
    assert [p.rsplit("/", 1)[1] for _, p in ckpt_io.list_checkpoints(str(straight))] == [
        "mobilenetv1-1_5.ckpt", "mobilenetv1-1_10.ckpt", "mobilenetv1-2_3.ckpt", "mobilenetv1-2_8.ckpt",
        "mobilenetv1-2_12.ckpt"]
    assert result["images_per_epoch"] == 192
    resumed.mkdir()
    shutil.copy(straight / "mobilenetv1-2_3.ckpt", resumed)
    train.run(load_config(args + [f"--save_checkpoint_path={resumed}", "--resume=auto"]))
    assert "after epoch 1 and 3 of the 12 steps of epoch 2" in capsys.readouterr().out
    a = ckpt_io.load_file(str(straight / "mobilenetv1-2_12.ckpt"))
    b = ckpt_io.load_file(str(resumed / "mobilenetv1-2_12.ckpt"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # Another number of batches per step is another position inside the epoch: refused.
    shutil.copy(straight / "mobilenetv1-2_3.ckpt", tmp_path / "other.ckpt")
    with pytest.raises(ckpt_io.CheckpointError, match="its steps took 16 samples, this run.s take 24: another "
                                                      "batch_size, grad_accum_steps"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--batch_size=8", "--grad_accum_steps=3",
                                       "--epoch_size=2", f"--save_checkpoint_path={tmp_path / 'x'}",
                                       f"--resume={tmp_path / 'other.ckpt'}"]))


def test_a_step_of_other_samples_is_refused_inside_an_epoch_even_with_the_same_steps_per_epoch(cifar_dir, tmp_path):
    """24 batches of 8: 5 or 6 a step both make 4 steps an epoch, but 2 steps are 80 or 96 samples."""
    args = SMALL + [f"--dataset_path={cifar_dir}", "--batch_size=8", "--epoch_size=2"]
    train.run(load_config(args + ["--grad_accum_steps=5", "--save_checkpoint_steps=2",
                                  f"--save_checkpoint_path={tmp_path / 'five'}"]))
    mid = tmp_path / "five" / "mobilenetv1-1_2.ckpt"
    assert ckpt_io.load_file(str(mid))["samples_per_step"] == 40
    with pytest.raises(ckpt_io.CheckpointError, match="saved after 2 steps of 40 samples into epoch 1, this run's "
                                                      "steps take 48"):
        train.run(load_config(args + ["--grad_accum_steps=6", f"--save_checkpoint_path={tmp_path / 'six'}",
                                      f"--resume={mid}"]))
    # From an epoch's end the position is the epoch's start whatever the steps: accepted.
    end = tmp_path / "five" / "mobilenetv1-1_4.ckpt"
    train.run(load_config(args + ["--grad_accum_steps=6", f"--save_checkpoint_path={tmp_path / 'six'}",
                                  f"--resume={end}"]))


def test_a_mid_epoch_file_from_before_samples_per_step_is_refused_at_another_batch(cifar_dir, tmp_path):
    """A checkpoint written before samples_per_step was recorded (its config's batch_size x grad_accum_steps
    say a process's samples a step) is refused inside an epoch where no process count makes this run's;
    24 batches of 8 make 4 steps an epoch at 5 or 6 a step."""
    args = SMALL + [f"--dataset_path={cifar_dir}", "--batch_size=8", "--epoch_size=2"]
    train.run(load_config(args + ["--grad_accum_steps=5", "--save_checkpoint_steps=2",
                                  f"--save_checkpoint_path={tmp_path / 'five'}"]))
    ckpt = ckpt_io.load_file(str(tmp_path / "five" / "mobilenetv1-1_2.ckpt"))
    for key in ("samples_per_step", "step_offset", "epoch_end"):  # as an older version wrote it
        del ckpt[key]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    with pytest.raises(ckpt_io.CheckpointError, match="of a run whose steps took 40 samples a process"):
        train.run(load_config(args + ["--grad_accum_steps=6", f"--save_checkpoint_path={tmp_path / 'six'}",
                                      f"--resume={old}"]))
    # The same settings continue it.
    train.run(load_config(args + ["--grad_accum_steps=5", f"--save_checkpoint_path={tmp_path / 'same'}",
                                  f"--resume={old}"]))
    assert (tmp_path / "same" / "mobilenetv1-2_4.ckpt").exists()


def test_a_step_left_out_for_a_batch_of_one_still_reaches_on_step_and_stop():
    """One process, 2 batches a step: a batch that unreadable files left with one sample leaves its step
    out (BatchNorm cannot train on it), but on_step (train's save_checkpoint_steps and logs) and stop (a
    signal) still see that step, as they do on every rank of a distributed run; its gradient norm and loss are
    NaN (recorded null), not the step before's (or 0.0 for an epoch's first). The other steps train as without
    it."""
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    start = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    good = [(torch.randn(4, 6), torch.randint(0, 3, (4,))) for _ in range(6)]
    one = (torch.randn(1, 6), torch.randint(0, 3, (1,)))

    def epoch(batches, lrs, stop_at=None):
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
        model.load_state_dict(start.state_dict())
        opt = make_optimizer(model, 0.1, 0.9, 0.0, cpu)
        guard = NonFiniteGuard(model, opt, cpu)
        seen, asked = [], []

        def stop(i):
            asked.append(i)
            return i == stop_at

        r = train_one_epoch(model, batches, nn.CrossEntropyLoss(), opt, make_scaler("fp32", cpu, 1.0), lrs, cpu,
                            "fp32", on_step=lambda i, loss, lr: seen.append((i, lr, float(guard.grad_norm()),
                                                                             float(loss))),
                            guard=guard, accumulate=2, stop=stop)
        return model, r, seen, asked

    model, r, seen, asked = epoch(good[:2] + [good[2], one] + good[4:], [0.3, 0.2, 0.1])
    assert [(i, lr) for i, lr, _, _ in seen] == [(0, 0.3), (1, 0.2), (2, 0.1)] and asked == [0, 1, 2]
    # NaN at the step left out, its gradient norm and its loss
    assert seen[1][2] != seen[1][2] and seen[0][2] == seen[0][2] and seen[2][2] == seen[2][2]
    assert seen[1][3] != seen[1][3] and seen[0][3] == seen[0][3] and seen[2][3] == seen[2][3]
    assert r.steps == 2 and r.images == 16 and r.stopped_after is None
    # The same weights as an epoch of the two good steps at their rates.
    reference, _, _, _ = epoch(good[:2] + good[4:], [0.3, 0.1])
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    # A stop asked at the step left out ends the epoch there.
    _, r, seen, asked = epoch(good[:2] + [one, good[3]] + good[4:], [0.3, 0.2, 0.1], stop_at=1)
    assert r.stopped_after == 2 and asked == [0, 1] and [i for i, _, _, _ in seen] == [0, 1]
    _, r, seen, _ = epoch([one] + good[1:], [0.3, 0.2, 0.1])  # the epoch's first step: its loss was 0.0
    assert seen[0][3] != seen[0][3] and r.steps == 2
