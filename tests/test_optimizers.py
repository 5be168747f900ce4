"""--opt: the seed's Momentum, RMSprop, AdamW, LARS and LAMB, each with its recipe's settings; resume keeps to one."""
import dataclasses
import os

import numpy as np
import pytest
import torch
from torch import nn

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.engine import make_optimizer
from mobilenet_v1.optimizers import Lamb, Lars
from mobilenet_v1.schedules import get_lr, scale_note

CPU = torch.device("cpu")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--class_num=4"]


def two_steps(opt, **kw):
    """Two steps (lr 0.1, momentum 0.9, weight decay 0.01) of a linear layer on fixed gradients; returns
    the weights and bias before and after each step, and the gradients."""
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    optimizer = make_optimizer(layer, 0.1, 0.9, 0.01, CPU, opt, **kw)
    grads = [(torch.randn(2, 3), torch.randn(2)) for _ in range(2)]
    params = [(layer.weight.detach().clone(), layer.bias.detach().clone())]
    for gw, gb in grads:
        layer.weight.grad, layer.bias.grad = gw.clone(), gb.clone()
        optimizer.step()
        params.append((layer.weight.detach().clone(), layer.bias.detach().clone()))
    return params, grads, optimizer


def test_rmsprop_is_torchvisions_recipe_update_with_decay_on_weights_only():
    """square_avg = 0.9 sq + 0.1 g^2; buf = 0.9 buf + g / (sqrt(square_avg) + 0.0316); p -= lr buf, with
    g = grad + 0.01 p for the weight and the plain gradient for the bias."""
    params, grads, optimizer = two_steps("rmsprop")
    assert isinstance(optimizer, torch.optim.RMSprop)
    for i, wd in ((0, 0.01), (1, 0.0)):
        p, sq, buf = params[0][i].double(), 0.0, 0.0
        for step, g in enumerate(grads):
            g = g[i].double() + wd * p
            sq = 0.9 * sq + 0.1 * g * g
            buf = 0.9 * buf + g / (sq.sqrt() + 0.0316)
            p = p - 0.1 * buf
            assert torch.allclose(params[step + 1][i].double(), p, rtol=1e-5, atol=1e-6)
    assert optimizer.param_groups[0]["eps"] == 0.0316 and make_optimizer(nn.Linear(1, 1), 0.1, 0.9, 0, CPU, "rmsprop",
                                                                          1e-3).param_groups[0]["eps"] == 1e-3


def test_adamw_decays_weights_apart_from_the_gradient_and_not_the_bias():
    """p = p (1 - lr wd), then Adam's bias-corrected step with eps 1e-8; momentum is not used. Fused
    (as on CUDA) gives the same values as the multi-tensor path."""
    params, grads, optimizer = two_steps("adamw")
    assert isinstance(optimizer, torch.optim.AdamW)
    for i, wd in ((0, 0.01), (1, 0.0)):
        p, m, v = params[0][i].double(), 0.0, 0.0
        for step, g in enumerate(grads, 1):
            g = g[i].double()
            p = p * (1 - 0.1 * wd)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p = p - 0.1 * (m / (1 - 0.9 ** step)) / ((v / (1 - 0.999 ** step)).sqrt() + 1e-8)
            assert torch.allclose(params[step][i].double(), p, rtol=1e-5, atol=1e-6)
    fused, _, fused_optimizer = two_steps("adamw", fused=True)
    assert fused_optimizer.param_groups[0]["fused"]
    assert all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for pa, pb in zip(params, fused) for a, b in zip(pa, pb))


def test_adamw_takes_pytorchs_eps_where_opt_eps_is_0():
    """opt_eps 0: AdamW's eps is PyTorch's default, 1e-8. Gradients of 1e-7 make it matter: the first step
    moves each parameter by lr g / (|g| + eps) = 0.1 / 1.1 (weight decay 0.01 first, on the weight alone)."""
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    before = [p.detach().clone().double() for p in layer.parameters()]
    optimizer = make_optimizer(layer, 0.1, 0.9, 0.01, CPU, "adamw")
    layer.weight.grad, layer.bias.grad = torch.full((2, 3), 1e-7), torch.full((2,), 1e-7)
    optimizer.step()
    expected = [before[0] * (1 - 0.1 * 0.01) - 0.1 / 1.1, before[1] - 0.1 / 1.1]
    for p, want in zip(layer.parameters(), expected):
        assert torch.allclose(p.detach().double(), want, rtol=0, atol=1e-6)


def test_momentum_is_the_seeds_sgd_and_bad_values_name_the_option():
    params, grads, optimizer = two_steps("momentum")
    assert type(optimizer) is torch.optim.SGD and optimizer.param_groups[1]["weight_decay"] == 0.0
    expected = params[0][1] - 0.1 * grads[0][1]  # first step: the buffer is the gradient
    assert torch.allclose(params[1][1], expected)
    with pytest.raises(ConfigError, match=r"option --opt: opt='adam' is not one of \['momentum', 'rmsprop', 'adamw', "
                                          r"'lars', 'lamb'\]$"):
        load_config(["--opt=adam"])
    # torchvision's and timm's names for it are pointed here (timm's sgd is Nesterov's)
    with pytest.raises(ConfigError, match=r"opt='SGD' is not one of .*'lamb'\]; SGD with momentum is opt momentum "
                                          r"\(the seed's name; torchvision's --opt sgd\), with --nesterov True for "
                                          r"timm's sgd$"):
        load_config(["--opt=SGD"])
    with pytest.raises(ConfigError, match=r"; Nesterov's momentum is opt momentum with --nesterov True"):
        load_config(["--opt=nesterov"])
    # 0 is the recipe's eps, not "off" (a division by zero)
    with pytest.raises(ConfigError, match=r"option --opt_eps: opt_eps must be >= 0 \(0: the recipe's eps\)"):
        load_config(["--opt=rmsprop", "--opt_eps=-1"])
    with pytest.raises(ConfigError, match=r"option --opt_eps: opt_eps 0.5 is RMSprop's, AdamW's and LAMB's; opt "
                                          r"momentum has none \(SGD\)"):
        load_config(["--opt_eps=0.5"])  # it would be ignored without a word


@pytest.mark.parametrize("opt", ["momentum", "adamw"])
def test_decay_norm_bias_decays_the_bias_as_the_weight(opt):
    """The seed's GPU/CPU path and torchvision's references: the bias (and BatchNorm's gamma and beta) decay
    at weight_decay too, SGD's through the gradient, AdamW's apart from it."""
    params, grads, optimizer = two_steps(opt, decay_norm_bias=True)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.01]
    p = params[0][1].double()
    g = grads[0][1].double()
    first = p - 0.1 * (g + 0.01 * p) if opt == "momentum" else p * (1 - 0.1 * 0.01) - 0.1 * g.sign()
    assert torch.allclose(params[1][1].double(), first, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(two_steps(opt)[0][1][1], params[1][1])  # not the default's update
    with pytest.raises(ConfigError, match="option --decay_norm_bias: decay_norm_bias True is a setting of weight "
                                          "decay's; weight_decay is 0 \\(--decay_norm_bias False with it\\)"):
        load_config(["--decay_norm_bias=True", "--weight_decay=0"])


@pytest.mark.parametrize("fused", [False, True])
def test_nesterov_steps_along_the_updated_buffer_and_is_sgds_alone(fused):
    """buf = 0.9 buf + g; p -= lr (g + 0.9 buf), with g = grad + 0.01 p for the weight (MindSpore's
    use_nesterov, PyTorch's nesterov): the fused kernel (CUDA's) and the multi-tensor path alike."""
    params, grads, optimizer = two_steps("momentum", nesterov=True, fused=fused)
    assert optimizer.param_groups[0]["nesterov"] is True
    for i, wd in ((0, 0.01), (1, 0.0)):
        p, buf = params[0][i].double(), 0.0
        for step, g in enumerate(grads):
            g = g[i].double() + wd * p
            buf = 0.9 * buf + g
            p = p - 0.1 * (g + 0.9 * buf)
            assert torch.allclose(params[step + 1][i].double(), p, rtol=1e-5, atol=1e-6)
    plain = two_steps("momentum", fused=fused)[0]
    assert not torch.allclose(plain[2][0], params[2][0])  # it is another update
    assert load_config(["--nesterov=True"]).nesterov is True
    with pytest.raises(ConfigError, match=r"option --nesterov: nesterov True is SGD's and LARS's \(opt momentum, "
                                          r"lars\); opt adamw has no such variant"):
        load_config(["--opt=adamw", "--nesterov=True"])
    with pytest.raises(ConfigError, match=r"option --momentum: momentum 0.5 is SGD's, RMSprop's and LARS's; opt adamw "
                                          r"has none"):
        load_config(["--opt=adamw", "--momentum=0.5"])
    seed_file = os.path.join(os.path.dirname(__file__), "..", "configs", "cifar10.yaml")  # momentum: 0.9 in it
    assert load_config(["--opt=adamw", "--config_path", seed_file]).momentum == 0.9
    with pytest.raises(ConfigError, match="option --nesterov: nesterov needs a momentum above 0, got momentum 0"):
        load_config(["--nesterov=True", "--momentum=0"])


def lars_reference(params, grads, wd, eta=0.001, clip=False, nesterov=False, adapt=True, lr=0.1, mu=0.9):
    """LARS by its formula, in float64: d = (g + wd p) r, r = eta |p| / (|g| + wd |p|) (LARC's clip:
    min(r / lr, 1); not adapted: 1); buf = mu buf + d; p -= lr buf (Nesterov's: lr (d + mu buf)). The values
    after each step."""
    p, buf, out = params.double(), 0.0, []
    for g in grads:
        g = g.double()
        r = eta * p.norm() / (g.norm() + wd * p.norm())
        r = 1.0 if not adapt else min(r / lr, 1.0) if clip else r
        d = (g + wd * p) * r
        buf = mu * buf + d
        p = p - lr * (d + mu * buf if nesterov else buf)
        out.append(p)
    return out


@pytest.mark.parametrize("kw", [{}, {"nesterov": True}, {"trust_clip": True},
                                {"trust_clip": True, "trust_coefficient": 1.0}],
                         ids=["lars", "nesterov", "larc", "larc-clipped"])
def test_lars_scales_each_weights_step_by_its_trust_ratio_and_leaves_the_bias_as_sgds(kw):
    """The weight (decayed, adapted) follows LARS's formula; the bias (in the group of BatchNorm and
    biases: no decay, no ratio) takes SGD's step. With LARC's clip and eta 1 the ratio reaches 1 (the
    weight's step is SGD's, lr 0.1), with eta 0.001 it does not (the weight's rate is the ratio itself)."""
    params, grads, optimizer = two_steps("lars", **kw)
    assert isinstance(optimizer, Lars) and [g["adapt"] for g in optimizer.param_groups] == [True, False]
    eta, clip, nesterov = kw.get("trust_coefficient", 0.001), kw.get("trust_clip", False), kw.get("nesterov", False)
    weight = lars_reference(params[0][0], [g[0] for g in grads], 0.01, eta, clip, nesterov)
    bias = lars_reference(params[0][1], [g[1] for g in grads], 0.0, nesterov=nesterov, adapt=False)
    for step in range(2):
        assert torch.allclose(params[step + 1][0].double(), weight[step], rtol=1e-5, atol=1e-7)
        assert torch.allclose(params[step + 1][1].double(), bias[step], rtol=1e-5, atol=1e-7)
    sgd = two_steps("momentum", nesterov=nesterov)[0]
    assert torch.allclose(params[2][1], sgd[2][1])
    assert torch.allclose(params[2][0], sgd[2][0]) == (kw.get("trust_coefficient") == 1.0)


def test_lamb_is_adams_step_scaled_to_the_weights_norm_and_the_bias_plain():
    """u = m^ / (sqrt(v^) + 1e-6) + wd p; the weight moves by lr |p| / |u| u, the bias (no decay, no ratio)
    by lr u: bias-corrected moments with betas 0.9, 0.999, momentum unused."""
    params, grads, optimizer = two_steps("lamb")
    assert isinstance(optimizer, Lamb) and optimizer.param_groups[0]["eps"] == 1e-6
    for i, (wd, adapt) in enumerate(((0.01, True), (0.0, False))):
        p, m, v = params[0][i].double(), 0.0, 0.0
        for step, g in enumerate(grads, 1):
            g = g[i].double()
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            u = (m / (1 - 0.9 ** step)) / ((v / (1 - 0.999 ** step)).sqrt() + 1e-6) + wd * p
            p = p - 0.1 * (p.norm() / u.norm() if adapt else 1.0) * u
            assert torch.allclose(params[step][i].double(), p, rtol=1e-5, atol=1e-7)
    assert make_optimizer(nn.Linear(1, 1), 0.1, 0.9, 0, CPU, "lamb", 1e-3).param_groups[0]["eps"] == 1e-3


@pytest.mark.parametrize("opt", ["lars", "lamb"])
def test_lars_and_lamb_skip_on_found_inf_without_a_trace(opt):
    """found_inf 1 (what the non-finite guard hands over, as to a fused kernel) leaves weights, buffers and
    step counts exactly as they were, NaN gradients and all; a skipped first step leaves the next one a
    first step. found_inf 0 is an ordinary step, bit for bit."""
    def fresh():
        torch.manual_seed(0)
        layer = nn.Linear(3, 2)
        return layer, make_optimizer(layer, 0.1, 0.9, 0.01, CPU, opt)

    def step(layer, optimizer, grads, found=None):
        layer.weight.grad, layer.bias.grad = (g.clone() for g in grads)
        if found is not None:
            optimizer.found_inf = torch.tensor(float(found))
        try:
            optimizer.step()
        finally:
            optimizer.__dict__.pop("found_inf", None)

    def values(layer, optimizer):
        return [t.clone() for t in layer.parameters()] + [
            v.clone() for s in optimizer.state.values() for _, v in sorted(s.items())]

    torch.manual_seed(1)
    good = [(torch.randn(2, 3), torch.randn(2)) for _ in range(3)]
    nan = (torch.full((2, 3), float("nan")), torch.full((2,), float("inf")))
    plain, plain_opt = fresh()
    for g in good:
        step(plain, plain_opt, g)
    guarded, guarded_opt = fresh()
    step(guarded, guarded_opt, nan, found=1)  # a skipped first step
    skipped, untouched = values(guarded, guarded_opt), values(*fresh())
    assert len(skipped) >= len(untouched) == 2 and all(torch.equal(a, b) for a, b in zip(skipped, untouched))
    assert all(not v.any() for v in skipped[2:])  # buffers and step counts made, and zero
    for g in good[:2]:
        step(guarded, guarded_opt, g, found=0)
    before = values(guarded, guarded_opt)
    step(guarded, guarded_opt, nan, found=1)
    after = values(guarded, guarded_opt)
    assert len(before) == len(after) >= 4 and all(torch.equal(a, b) for a, b in zip(before, after))
    step(guarded, guarded_opt, good[2], found=0)
    assert all(torch.equal(a, b) for a, b in zip(values(guarded, guarded_opt), values(plain, plain_opt)))


@pytest.mark.parametrize("opt", ["lars", "lamb"])
def test_lars_and_lamb_take_gradscalers_scale_and_skip_without_asking_the_device(opt, monkeypatch):
    """fp16: GradScaler hands the scale and its found_inf to the optimiser (as to a fused kernel) instead of
    reading found_inf back (Tensor.item, a sync on a GPU, fails here): a scaled step is the unscaled one,
    bit for bit (the scale is a power of 2), and an overflowed one changes nothing and halves the scale."""
    def fresh():
        torch.manual_seed(0)
        layer = nn.Linear(3, 2)
        return layer, make_optimizer(layer, 0.1, 0.9, 0.01, CPU, opt)

    torch.manual_seed(1)
    grads = [(torch.randn(2, 3), torch.randn(2)) for _ in range(2)]
    plain, plain_opt = fresh()
    for gw, gb in grads:
        plain.weight.grad, plain.bias.grad = gw.clone(), gb.clone()
        plain_opt.step()
    scaled, scaled_opt = fresh()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(torch.ones(()))  # the scale is made at the first scale()
    def no_item(self):
        raise AssertionError("GradScaler read found_inf back")
    monkeypatch.setattr(torch.Tensor, "item", no_item)
    for gw, gb in grads + [(torch.full((2, 3), float("inf")), torch.zeros(2))]:
        before = [p.clone() for p in scaled.parameters()]
        scaled.weight.grad, scaled.bias.grad = gw * 1024, gb * 1024
        scaler.step(scaled_opt)
        scaler.update()
    monkeypatch.undo()
    assert all(torch.equal(a, b) for a, b in zip(before, scaled.parameters()))  # the overflow: skipped
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), scaled.parameters()))
    assert scaler.get_scale() == 512.0


def test_a_zero_norm_takes_a_ratio_of_one():
    """A weight of zeros (or a zero gradient) has no ratio to take: LARS steps as SGD, LAMB as Adam with
    decay in the update, rather than by 0 or NaN."""
    for opt in ("lars", "lamb"):
        layer = nn.Linear(3, 2)
        nn.init.zeros_(layer.weight)
        optimizer = make_optimizer(layer, 0.1, 0.0, 0.01, CPU, opt)
        layer.weight.grad, layer.bias.grad = torch.ones(2, 3), torch.ones(2)
        optimizer.step()
        expected = -0.1 * torch.ones(2, 3) if opt == "lars" else torch.full((2, 3), -0.1 / (1 + 1e-6))
        torch.testing.assert_close(layer.weight.detach(), expected)
        before = layer.weight.detach().clone()
        layer.weight.grad = torch.zeros(2, 3)
        optimizer.step()
        assert torch.isfinite(layer.weight).all() and not torch.equal(layer.weight, before)  # LARS: its decay, at 1


def test_lamb_moves_a_loaded_step_count_to_its_parameters_device():
    """torch's load_state_dict leaves a step count where the file had it (the CPU), beside moments it moves
    to the parameters' device: a CPU run's checkpoint continued on a GPU. The meta device stands in for
    the GPU here: the step count follows the parameters at the first step, and the step runs."""
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    optimizer = make_optimizer(layer, 0.1, 0.9, 0.01, CPU, "lamb")
    layer.weight.grad, layer.bias.grad = torch.randn(2, 3), torch.randn(2)
    optimizer.step()
    meta = nn.Linear(3, 2, device="meta")
    moved = make_optimizer(meta, 0.1, 0.9, 0.01, torch.device("meta"), "lamb")
    moved.load_state_dict(optimizer.state_dict())
    assert moved.state[meta.weight]["step"].device.type == "cpu"  # where torch leaves it
    meta.weight.grad, meta.bias.grad = torch.empty(2, 3, device="meta"), torch.empty(2, device="meta")
    moved.found_inf = torch.zeros((), device="meta")
    moved.step()
    assert {v.device.type for s in moved.state.values() for v in s.values()} == {"meta"}


def test_lars_and_lamb_keys_are_theirs():
    cfg = load_config(["--opt=lars", "--trust_coefficient=0.02", "--trust_clip=True", "--nesterov=True"])
    assert (cfg.trust_coefficient, cfg.trust_clip, cfg.nesterov) == (0.02, True, True)
    refused = [
        (["--trust_coefficient=0.02"],
         r"option --trust_coefficient: trust_coefficient 0.02 is LARS's \(opt lars\); opt momentum has no such "
         r"setting"),
        (["--opt=lamb", "--trust_clip=True"], r"option --trust_clip: trust_clip True is LARS's \(opt lars\); opt lamb "
                                              r"has no such setting \(LAMB's ratio is \|w\| / \|update\|\)"),
        (["--opt=lars", "--trust_coefficient=0"],
         "option --trust_coefficient: trust_coefficient must be above 0, got 0"),
        (["--opt=lamb", "--momentum=0.5"],
         r"option --momentum: momentum 0.5 is SGD's, RMSprop's and LARS's; opt lamb has none \(its betas are 0.9, "
         r"0.999\)"),
        (["--opt=lars", "--opt_eps=0.001"],
         r"option --opt_eps: opt_eps 0.001 is RMSprop's, AdamW's and LAMB's; opt lars has none"),
        (["--opt=lars", "--nesterov=True", "--momentum=0"],
         "option --nesterov: nesterov needs a momentum above 0, got momentum 0"),
    ]
    for argv, message in refused:
        with pytest.raises(ConfigError, match=message):
            load_config(argv)


@pytest.mark.parametrize("opt,lr", [("rmsprop", "0.002"), ("adamw", "0.002"), ("lars", "0.5"), ("lamb", "0.002")])
def test_a_resumed_run_continues_exactly_and_another_opt_is_refused(opt, lr, cifar_dir, tmp_path, one_thread):
    """From a checkpoint saved inside epoch 2 the run ends with the same weights and optimiser state
    (square averages, step counts) as the run that went straight through; resuming it with another
    --opt is refused naming the file and both optimisers, before anything is trained."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=2", f"--opt={opt}", f"--lr_max={lr}"]
    train.run(load_config(common + [f"--save_checkpoint_path={straight}", "--save_checkpoint_steps=6"]))
    middle = straight / "mobilenetv1-2_6.ckpt"
    assert middle.exists()
    train.run(load_config(common + [f"--save_checkpoint_path={resumed}", f"--resume={middle}"]))
    a = ckpt_io.load_file(str(straight / "mobilenetv1-2_12.ckpt"))
    b = ckpt_io.load_file(str(resumed / "mobilenetv1-2_12.ckpt"))
    assert a["config"]["opt"] == b["config"]["opt"] == opt
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys() and sa
    for pid in sa:
        assert sa[pid].keys() == sb[pid].keys() and len(sa[pid]) >= (1 if opt == "lars" else 2)
        for name in sa[pid]:
            assert torch.equal(sa[pid][name], sb[pid][name]), (pid, name)
    with pytest.raises(ckpt_io.CheckpointError, match=rf"{middle}.*its run trained with --opt {opt}, this run with "
                                                      rf"--opt momentum, whose state is another \(pass --opt {opt}\)"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--epoch_size=2",
                                       f"--save_checkpoint_path={tmp_path / 'other'}", f"--resume={middle}"]))
    assert not os.path.exists(tmp_path / "other" / "mobilenetv1-2_12.ckpt")


def test_a_checkpoint_from_before_opt_is_taken_for_the_seeds_momentum(cifar_dir, tmp_path, one_thread):
    """Files written before --opt existed (no opt in their configuration) held SGD's state: they continue a
    run with --opt momentum and are refused by one with another optimiser."""
    common = SMALL + [f"--dataset_path={cifar_dir}", "--lr_max=0.05"]
    train.run(load_config(common + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'old'}"]))
    path = tmp_path / "old" / "mobilenetv1-1_12.ckpt"
    ckpt = ckpt_io.load_file(str(path))
    del ckpt["config"]["opt"]
    ckpt_io.atomic_save(ckpt, str(path))
    more = common + ["--epoch_size=2", f"--resume={path}"]
    with pytest.raises(ckpt_io.CheckpointError, match="its run trained with --opt momentum, this run with --opt adamw"):
        train.run(load_config(more + ["--opt=adamw", f"--save_checkpoint_path={tmp_path / 'a'}"]))
    result = train.run(load_config(more + [f"--save_checkpoint_path={tmp_path / 'b'}"]))
    assert result["resumed_from"] == str(path) and result["checkpoint"].endswith("mobilenetv1-2_12.ckpt")


def test_a_resumed_run_trains_with_its_own_momentum_weight_decay_and_eps(cifar_dir, tmp_path, one_thread, capsys):
    """config.yaml and the log say what the optimiser runs with: settings changed for the resume take
    effect (the file's used to, silently), on the decayed group only for weight_decay, and are named."""
    common = SMALL + [f"--dataset_path={cifar_dir}", "--opt=rmsprop", "--lr_max=0.002"]
    train.run(load_config(common + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'a'}"]))
    path = tmp_path / "a" / "mobilenetv1-1_12.ckpt"
    capsys.readouterr()
    train.run(load_config(common + ["--epoch_size=2", "--weight_decay=0.00005", "--momentum=0.8", "--opt_eps=0.001",
                                    f"--resume={path}", f"--save_checkpoint_path={tmp_path / 'b'}"]))
    out = capsys.readouterr().out
    assert (f"resume: {path} was trained with momentum 0.9, weight_decay 0.0001, eps 0.0316; continuing with "
            f"this run's momentum 0.8, weight_decay 5e-05, eps 0.001") in out
    groups = ckpt_io.load_file(str(tmp_path / "b" / "mobilenetv1-2_12.ckpt"))["optimizer"]["param_groups"]
    assert [(g["momentum"], g["weight_decay"], g["eps"]) for g in groups] == [(0.8, 5e-05, 0.001), (0.8, 0.0, 0.001)]
    # The same settings again: nothing to say.
    train.run(load_config(common + ["--epoch_size=2", f"--resume={path}", f"--save_checkpoint_path={tmp_path / 'c'}"]))
    out = capsys.readouterr().out
    assert "was trained with" not in out
    # Two epochs where the file's run had one: the linear decay now ends later, which is named with the
    # rate of the next step under each schedule (its run ended at lr_end 0; this one is halfway down).
    now = train.schedule(load_config(common + ["--epoch_size=2"]), 12)[12]
    then = train.schedule(load_config(common + ["--epoch_size=1"]), 12)[11]
    assert now > 5 * then
    assert [line for line in out.splitlines() if "schedule differs" in line] == [
        f"resume: the learning-rate schedule differs from that of {path}'s run: epoch_size 1 -> 2; step 13 "
        f"trains at {now:.6g}, where that run's last step trained at {then:.6g}"]
    out_c = ckpt_io.load_file(str(tmp_path / "c" / "mobilenetv1-2_12.ckpt"))
    assert out_c["optimizer"]["param_groups"][0]["lr"] == pytest.approx(train.schedule(load_config(
        common + ["--epoch_size=2"]), 12)[-1])
    # The same schedule: nothing to say; a mid-epoch resume into a changed one names it too.
    train.run(load_config(common + ["--epoch_size=2", "--save_checkpoint_steps=5",
                                    f"--save_checkpoint_path={tmp_path / 'd'}"]))
    train.run(load_config(common + ["--epoch_size=2", f"--resume={tmp_path / 'd' / 'mobilenetv1-1_10.ckpt'}",
                                    f"--save_checkpoint_path={tmp_path / 'e'}"]))
    assert "schedule differs" not in capsys.readouterr().out
    train.run(load_config(common + ["--epoch_size=2", "--lr_max=0.004", "--lr_end=0.001",
                                    f"--resume={tmp_path / 'd' / 'mobilenetv1-1_10.ckpt'}",
                                    f"--save_checkpoint_path={tmp_path / 'f'}"]))
    now = train.schedule(load_config(common + ["--epoch_size=2", "--lr_max=0.004", "--lr_end=0.001"]), 12)[10]
    then = train.schedule(load_config(common + ["--epoch_size=2"]), 12)[10]
    assert [line for line in capsys.readouterr().out.splitlines() if "schedule differs" in line] == [
        f"resume: the learning-rate schedule differs from that of {tmp_path / 'd' / 'mobilenetv1-1_10.ckpt'}'s "
        f"run: lr_end 1e-05 -> 0.001, lr_max 0.002 -> 0.004; step 11 trains at {now:.6g}, where that run's would "
        f"train at {then:.6g}"]
    # Nesterov switched on for a resume of a plain-momentum run: named, and in the optimiser from there.
    plain = SMALL + [f"--dataset_path={cifar_dir}", "--lr_max=0.05"]
    train.run(load_config(plain + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'sgd'}"]))
    capsys.readouterr()
    result = train.run(load_config(plain + ["--epoch_size=2", "--nesterov=True", f"--resume={tmp_path / 'sgd'}",
                                            f"--save_checkpoint_path={tmp_path / 'nesterov'}"]))
    assert (f"resume: {tmp_path / 'sgd' / 'mobilenetv1-1_12.ckpt'} was trained with nesterov False; continuing "
            f"with this run's nesterov True") in capsys.readouterr().out
    groups = ckpt_io.load_file(result["checkpoint"])["optimizer"]["param_groups"]
    assert [g["nesterov"] for g in groups] == [True, True]
    # decay_norm_bias switched on: the group of BatchNorm and biases is named apart, the other unchanged.
    result = train.run(load_config(plain + ["--epoch_size=2", "--decay_norm_bias=True", f"--resume={tmp_path / 'sgd'}",
                                            f"--save_checkpoint_path={tmp_path / 'decay_all'}"]))
    assert (f"resume: {tmp_path / 'sgd' / 'mobilenetv1-1_12.ckpt'} was trained with weight_decay of BatchNorm and "
            f"biases 0; continuing with this run's weight_decay of BatchNorm and biases 0.0001") in capsys.readouterr().out
    groups = ckpt_io.load_file(result["checkpoint"])["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [1e-4, 1e-4]
    # Momentum switched on: the buffers the file lacks start at zero (RMSprop failed on the missing key).
    for opt, lr in (("rmsprop", "0.002"), ("momentum", "0.05")):
        plain = SMALL + [f"--dataset_path={cifar_dir}", f"--opt={opt}", f"--lr_max={lr}"]
        train.run(load_config(plain + ["--epoch_size=1", "--momentum=0", f"--save_checkpoint_path={tmp_path / opt}"]))
        result = train.run(load_config(plain + ["--epoch_size=2", f"--resume={tmp_path / opt}",
                                                f"--save_checkpoint_path={tmp_path / (opt + '_on')}"]))
        state = ckpt_io.load_file(result["checkpoint"])["optimizer"]["state"]
        assert state and all(s["momentum_buffer"].abs().sum() > 0 for s in state.values()), opt


def test_the_schedule_note_names_only_keys_both_schedules_use_and_the_recipe_note_names_the_rest():
    """exponential -> cosine: the decay rate is exponential's alone (cosine's default 0.98 is no change,
    and passing 0.5 back would be refused), but the earlier run's rate still made its schedule."""
    was = load_config(["--lr_decay_mode=exponential", "--lr_decay_rate=0.5", "--epoch_size=2", "--warmup_epochs=0",
                       "--drop_rate=0.2", "--auto_augment=ta_wide"])
    now = load_config(["--lr_decay_mode=cosine", "--epoch_size=4", "--warmup_epochs=0", "--mixup_alpha=0.2"])
    ckpt = {"config": dataclasses.asdict(was), "step": 20, "steps_per_epoch": 10}  # its run, complete
    lr = train.schedule(now, 10)
    line = train.schedule_change(ckpt, "a.ckpt", now, lr, 20)
    assert line == (f"resume: the learning-rate schedule differs from that of a.ckpt's run: lr_decay_mode exponential "
                    f"-> cosine, epoch_size 2 -> 4; step 21 trains at {float(lr[20]):.6g}, where that run's last step "
                    f"trained at {float(train.schedule(was, 10)[-1]):.6g}")
    assert float(train.schedule(was, 10)[-1]) == pytest.approx(was.lr_max * 0.5, rel=1e-6)  # its rate, not 0.98
    # warmup_prefix switched on a resume of a warmed-up cosine: named with the rates; a file from before the key ran
    # with True, its default (the cosine after the warm-up).
    prefixed = load_config(["--lr_decay_mode=cosine_annealing", "--epoch_size=4", "--warmup_epochs=1"])
    counted = dataclasses.replace(prefixed, warmup_prefix=False)
    at = {"config": dataclasses.asdict(prefixed), "step": 20, "steps_per_epoch": 10}
    lr = train.schedule(counted, 10)
    assert "warmup_prefix True -> False" in train.schedule_change(at, "p.ckpt", counted, lr, 20)
    at["config"].pop("warmup_prefix")
    assert "warmup_prefix" in train.schedule_change(at, "p.ckpt", counted, lr, 20)
    assert train.schedule_change(at, "p.ckpt", prefixed, train.schedule(prefixed, 10), 20) == ""
    # A file from a run that changed its steps per epoch: global step 17 is step 12 of its schedule (10 an
    # epoch after a resume from 5), and this run's next step takes the global number on.
    shorter = load_config(["--lr_decay_mode=cosine", "--epoch_size=3", "--warmup_epochs=0"])
    midway = {"config": dataclasses.asdict(shorter), "step": 17, "step_offset": 5, "steps_per_epoch": 10,
              "epoch": 1, "step_in_epoch": 2}
    line = train.schedule_change(midway, "m.ckpt", now, lr, 12, offset=5)
    theirs = train.schedule(shorter, 10)
    assert theirs[12] != theirs[17] and line.endswith(
        f"epoch_size 3 -> 4; step 18 trains at {float(lr[12]):.6g}, where that run's would train at "
        f"{float(theirs[12]):.6g}")
    assert train.recipe_change(ckpt, "a.ckpt", now) == (
        "resume: a.ckpt was trained with drop_rate 0.2, auto_augment 'ta_wide', mixup_alpha 0; continuing with "
        "this run's drop_rate 0, auto_augment '', mixup_alpha 0.2")
    assert train.recipe_change({"config": dataclasses.asdict(now)}, "b.ckpt", now) == ""
    assert train.recipe_change({"config": dataclasses.asdict(now)}, "e.ckpt",
                               dataclasses.replace(now, image_size=160, seed=3)) == (
        "resume: e.ckpt was trained with image_size 224, seed 1; continuing with this run's image_size 160, seed 3")
    assert train.recipe_change({}, "c.ckpt", now) == ""  # a file without a recorded configuration
    # A file from before a key trained with its default: the key a run changes is named all the same.
    before_key = {k: v for k, v in dataclasses.asdict(now).items() if k != "crop_scale_min"}
    assert train.recipe_change({"config": before_key}, "d.ckpt", dataclasses.replace(now, crop_scale_min=0.35)) == (
        "resume: d.ckpt was trained with crop_scale_min 0.08; continuing with this run's crop_scale_min 0.35")
    erased = dataclasses.replace(now, random_erase=0.25)
    assert train.recipe_change({"config": dataclasses.asdict(erased)}, "f.ckpt",
                               dataclasses.replace(erased, random_erase_mode="pixel")) == (
        "resume: f.ckpt was trained with random_erase_mode 'const'; continuing with this run's random_erase_mode "
        "'pixel'")


@pytest.mark.parametrize("opt,rule,factor", [("momentum", "auto", 0.125), ("rmsprop", "auto", 0.125),
                                              ("adamw", "auto", 0.125 ** 0.5), ("momentum", "sqrt", 0.125 ** 0.5),
                                              ("lars", "auto", 0.125), ("lamb", "auto", 0.125 ** 0.5),
                                              ("adamw", "linear", 0.125)])
def test_lr_base_size_scales_every_rate_to_the_global_batch(opt, rule, factor):
    """Rates meant for a global batch of 256, run at 16 x 2 processes: timm's rule, linear for SGD, RMSprop
    and LARS, sqrt for AdamW and LAMB, unless lr_base_scale says which; without lr_base_size the batch is
    ignored."""
    keys = ["--lr_init=0.02", "--lr_max=0.4", "--lr_end=0.004", "--warmup_epochs=1", "--epoch_size=3",
            "--lr_decay_mode=linear", "--batch_size=16", "--device_num=2", f"--opt={opt}"]
    cfg = load_config(keys + ["--lr_base_size=256"] + ([f"--lr_base_scale={rule}"] if rule != "auto" else []))
    want = get_lr(0.02 * factor, 0.004 * factor, 0.4 * factor, 1, 3, 5, "linear")
    np.testing.assert_array_equal(train.schedule(cfg, 5), want)
    np.testing.assert_array_equal(train.schedule(cfg, 5, 32), want)  # batch_size x device_num
    np.testing.assert_array_equal(train.schedule(cfg, 5, 256), get_lr(0.02, 0.004, 0.4, 1, 3, 5, "linear"))
    plain = load_config(keys)
    np.testing.assert_array_equal(train.schedule(plain, 5, 4096), get_lr(0.02, 0.004, 0.4, 1, 3, 5, "linear"))
    assert scale_note(plain, 32) == ""
    assert scale_note(cfg, 32) == (
        f"lr_base_size 256: the rates are meant for a global batch of 256; this run's is 32, so they are scaled "
        f"x{factor:.6g} ({'sqrt' if factor > 0.2 else 'linear'}): lr_max 0.4 -> {0.4 * factor:.6g}, "
        f"lr_init 0.02 -> {0.02 * factor:.6g}, lr_end 0.004 -> {0.004 * factor:.6g}")


def test_lr_base_keys_are_checked():
    with pytest.raises(ConfigError, match="option --lr_base_scale: lr_base_scale sqrt is how the rates follow the "
                                          "global batch; lr_base_size is 0"):
        load_config(["--lr_base_scale=sqrt"])
    with pytest.raises(ConfigError, match="lr_base_size must be >= 0"):
        load_config(["--lr_base_size=-256"])
    with pytest.raises(ConfigError, match=r"lr_base_scale='cube' is not one of \['auto', 'linear', 'sqrt'\]"):
        load_config(["--lr_base_size=256", "--lr_base_scale=cube"])


def test_the_schedule_note_names_where_the_schedules_part_not_two_equal_rates():
    """The note said "differs" with the next step's rate under each, which were equal where the changed key shaped
    steps within the epoch (lr_per_epoch, resumed at an epoch's start), steps already taken (lr_init after the
    warm-up) or only the length (epoch_size of exponential, whose rates do not follow it)."""
    base = ["--lr_decay_mode=cosine", "--warmup_epochs=1", "--epoch_size=10"]

    def change(was_options, now_options, step=50):
        was, now = load_config(base + was_options), load_config(base + now_options)
        lr = train.schedule(now, 10)
        return train.schedule_change({"config": dataclasses.asdict(was), "step": step, "steps_per_epoch": 10},
                                     "p.ckpt", now, lr, step), lr, train.schedule(was, 10)

    line, lr, theirs = change([], ["--lr_per_epoch=True"])
    assert lr[50] == theirs[50] and lr[51] != theirs[51]
    assert line == (f"resume: the learning-rate schedule differs from that of p.ckpt's run: lr_per_epoch False -> "
                    f"True; step 51 trains at {float(lr[50]):.6g}, as that run's would; they part at step 52, which "
                    f"trains at {float(lr[51]):.6g} where that run's would train at {float(theirs[51]):.6g}")
    line, lr, theirs = change([], ["--lr_init=0.05"])
    assert np.array_equal(lr[50:], theirs[50:]) and line == ""
    longer = ["--lr_decay_mode=exponential", "--warmup_epochs=0"]
    line, lr, theirs = change(longer, [*longer, "--epoch_size=12"])
    assert np.array_equal(lr[:100], theirs) and line == ("resume: the learning-rate schedule is that of p.ckpt's run "
                                                         "from step 51 (epoch_size 10 -> 12), which ended at step "
                                                         "100; this run goes on to step 120")
    line, lr, theirs = change(longer, [*longer, "--epoch_size=8"])
    assert line.endswith("(epoch_size 10 -> 8), cut short: this run ends at step 80, that one went on to step 100")
    line, lr, theirs = change([], ["--epoch_size=20"])  # the next step's rates differ: said as before
    assert line.endswith(f"step 51 trains at {float(lr[50]):.6g}, where that run's would train at "
                         f"{float(theirs[50]):.6g}") and lr[50] != theirs[50]



def test_the_schedule_note_writes_two_rates_that_differ_in_enough_digits_to_tell_them_apart():
    """lr_max 0.1 -> 0.1000001 on a resume: the note said "step 51 trains at 0.0273537, where that run's would
    train at 0.0273537", two rates it names as differing written alike at 6 significant digits. It writes them
    in as many digits as tell them apart; rates apart at 6 digits keep 6."""
    from mobilenet_v1.runtime import apart_texts

    base = ["--lr_decay_mode=cosine", "--warmup_epochs=0", "--epoch_size=10"]
    was, now = load_config(base + ["--lr_max=0.1"]), load_config(base + ["--lr_max=0.1000001"])
    lr, theirs = train.schedule(now, 10), train.schedule(was, 10)
    line = train.schedule_change({"config": dataclasses.asdict(was), "step": 50, "steps_per_epoch": 10}, "p.ckpt",
                                 now, lr, 50)
    assert f"{float(lr[50]):.6g}" == f"{float(theirs[50]):.6g}" and lr[50] != theirs[50]
    ours, that = line.split("; step 51 trains at ")[1].split(", where that run's would train at ")
    # Each text is nearer its own rate than the other's.
    assert ours != that and abs(float(ours) - lr[50]) < abs(float(ours) - theirs[50])
    assert abs(float(that) - theirs[50]) < abs(float(that) - lr[50])
    assert apart_texts(0.0500001, 0.05) == ("0.0500001", "0.05") and apart_texts(0.25, 0.25) == ("0.25", "0.25")
    assert apart_texts(1.0000001, 1.0000002) == ("1.0000001", "1.0000002")
    assert apart_texts(0.1, 0.1 + 2 ** -56) == ("0.1", "0.10000000000000002")

def test_a_run_trains_at_the_scaled_rates_and_a_resume_names_a_changed_factor(cifar_dir, tmp_path, capsys):
    """The optimiser's rate is the scaled schedule's at every step (the last one checked); a resume
    whose global batch gives the rates another factor says so, as a changed key would be."""
    common = SMALL + [f"--dataset_path={cifar_dir}", "--lr_max=0.4", "--lr_end=0.04", "--lr_base_size=64"]
    result = train.run(load_config(common + ["--epoch_size=1", f"--save_checkpoint_path={tmp_path / 'a'}"]))
    out = capsys.readouterr().out
    assert ("lr_base_size 64: the rates are meant for a global batch of 64; this run's is 16, so they are scaled "
            "x0.25 (linear): lr_max 0.4 -> 0.1, lr_end 0.04 -> 0.01") in out  # no warm-up: lr_init unused
    ckpt = ckpt_io.load_file(result["checkpoint"])
    first = train.schedule(load_config(common + ["--epoch_size=1"]), 12, 16)
    assert float(first[0]) == pytest.approx(0.1) and float(first[-1]) == pytest.approx(0.1 - 0.09 * 11 / 12)
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(float(first[-1]))
    # Resumed with twice the batch per step (grad_accum_steps 2): the factor doubles, and is named.
    now = load_config(common + ["--epoch_size=2", "--grad_accum_steps=2"])
    lr = train.schedule(now, 6, 32)
    line = train.schedule_change(ckpt, "a.ckpt", now, lr, 6, 32)
    assert line == ("resume: the learning-rate schedule differs from that of a.ckpt's run: epoch_size 1 -> 2, the "
                    "rates' factor x0.25 -> x0.5 (lr_base_size 64 -> 64, global batch 16 -> 32); step 7 trains at "
                    f"{float(lr[6]):.6g}, where that run's last step trained at {float(first[-1]):.6g}")
    assert train.schedule_change(ckpt, "a.ckpt", load_config(common + ["--epoch_size=1"]), first, 11, 16) == ""
    # A file from before lr_base_size (no such key recorded) trained at its rates as given.
    old = {**ckpt, "config": {k: v for k, v in ckpt["config"].items() if not k.startswith("lr_base")}}
    line = train.schedule_change(old, "old.ckpt", load_config(common + ["--epoch_size=1"]), first, 11, 16)
    assert line.startswith("resume: the learning-rate schedule differs from that of old.ckpt's run: the rates' factor "
                           "x1 -> x0.25 (lr_base_size 0 -> 64, global batch 16 -> 16); step 12 trains at ")
    assert line.endswith(f"where that run's last step trained at {0.4 - 0.36 * 11 / 12:.6g}")  # unscaled


@pytest.mark.parametrize("opt", ["momentum", "adamw"])
def test_a_resume_in_another_memory_format_gives_the_optimiser_state_its_parameters_layout(opt, cifar_dir, tmp_path,
                                                                                          monkeypatch):
    """A run saved with channels_last False and resumed with the default True (or the other way): the momentum
    buffers (AdamW's moments) kept the file's strides beside channels-last weights, which multi-tensor kernels
    take on their slow path only (helper-311); they take each weight's layout."""
    seen = []
    real = train.restore_training_state

    def spy(ckpt, source, model, optimizer, *args, **kwargs):
        kept = real(ckpt, source, model, optimizer, *args, **kwargs)
        seen.append([(p.stride(), {k: v.stride() for k, v in s.items() if torch.is_tensor(v) and v.shape == p.shape})
                     for p, s in optimizer.state.items()])
        return kept

    monkeypatch.setattr(train, "restore_training_state", spy)
    args = SMALL + [f"--dataset_path={cifar_dir}", f"--opt={opt}", f"--save_checkpoint_path={tmp_path / 'run'}"]
    if opt == "adamw":
        args += ["--lr_max=0.001", "--weight_decay=0.05"]
    for channels_last, epochs in (("False", 1), ("True", 2), ("False", 3)):
        train.run(load_config(args + [f"--channels_last={channels_last}", f"--epoch_size={epochs}", "--resume=auto"]))
    assert len(seen) == 2
    for restored in seen:
        assert any(len(p_stride) == 4 for p_stride, _ in restored)  # conv weights: a layout to follow
        assert all(s == p_stride for p_stride, st in restored for s in st.values())
        assert sum(len(st) for _, st in restored) >= 27  # the buffers (moments) are there, not dropped


def test_lambs_eps_is_added_to_the_root_of_the_second_moment():
    """u = m^ / (sqrt(v^) + eps): a large eps (opt_eps 0.5) shrinks the step as the formula says, and a gradient
    entry that is 0 from the first step (v 0) moves its weight by its decay alone, not by 0 / 0."""
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]]))
    p0 = layer.weight.detach().clone().double()
    optimizer = make_optimizer(layer, 0.1, 0.9, 0.01, CPU, "lamb", 0.5)
    g = torch.tensor([[0.3, 0.0, -0.6], [1.2, -0.1, 0.0]])
    layer.weight.grad = g.clone()
    optimizer.step()
    m, v = 0.1 * g.double(), 0.001 * g.double() ** 2
    u = (m / 0.1) / ((v / 0.001).sqrt() + 0.5) + 0.01 * p0
    expected = p0 - 0.1 * (p0.norm() / u.norm()) * u
    assert torch.isfinite(layer.weight).all()
    torch.testing.assert_close(layer.weight.detach().double(), expected, rtol=1e-5, atol=1e-7)
    layer.weight.grad = torch.zeros(2, 3)  # eps 1e-6 (the default): still finite where v is 0
    default = make_optimizer(layer, 0.1, 0.9, 0.01, CPU, "lamb")
    default.step()
    assert torch.isfinite(layer.weight).all()
