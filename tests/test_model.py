import contextlib
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mobilenet_v1.info import count_macs, count_params
from mobilenet_v1 import load_model
from mobilenet_v1 import model as model_module
from mobilenet_v1.model import (STAGE_ENDS, Conv2dSame, MobileNetV1, depthwise_taps, mobilenet_v1, same_padding,
                                scale_channels)


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("size", [128, 160, 192, 224])
def test_output_shapes_over_width_and_resolution(alpha, size):
    model = MobileNetV1(class_num=7, width_mult=alpha).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.shape == (2, int(1024 * alpha), size // 32, size // 32)
    assert logits.shape == (2, 7)


def test_paper_channel_counts_exact():
    # Paper Table 1 at alpha 1, scaled: every layer's count times alpha, no rounding.
    for alpha in (0.25, 0.5, 0.75, 1.0):
        for c in (32, 64, 128, 256, 512, 1024):
            assert scale_channels(c, alpha) == c * alpha
    # Other alphas round to a multiple of 8, never below 8 and never 10% under.
    assert scale_channels(32, 0.1) == 8
    assert scale_channels(1024, 0.35) == 360
    assert scale_channels(100, 0.35) % 8 == 0
    # 32 x 0.3 = 9.6: 8 is the nearest multiple but 17% under, so 16; 64 x 0.3 = 19.2: 16 is 17% under, so 24
    # (torchvision's _make_divisible)
    assert scale_channels(32, 0.3) == 16 and scale_channels(64, 0.3) == 24
    # Exactly 10% under is kept, as _make_divisible keeps it (new_v < 0.9 * v): 32 x 0.2777... = 8.888..., of
    # which 8 is 0.9 to the last bit; so is 32 of 64 x 0.5555...
    for c, alpha, kept in ((32, 8 / 0.9 / 32, 8), (64, 32 / 0.9 / 64, 32)):
        assert 0.9 * (c * alpha) == kept  # (the case itself: a width at the boundary)
        assert scale_channels(c, alpha) == kept, (c, alpha)


def test_parameter_and_mac_counts_match_paper():
    model = MobileNetV1(class_num=1000)
    assert sum(p.numel() for p in model.parameters()) == 4_231_976
    assert sum(p.numel() for p in mobilenet_v1().parameters()) == 4_233_001  # the seed's 1001 classes
    assert count_params(1.0, 1000)["params"] == 4_231_976
    for alpha, classes in ((0.25, 10), (0.35, 7), (0.75, 1001), (1.3, 3)):  # the table, as built
        built = MobileNetV1(classes, alpha)
        assert count_params(alpha, classes)["params"] == sum(p.numel() for p in built.parameters()), alpha
    for alpha, paper in ((1.0, 569e6), (0.75, 325e6), (0.5, 149e6), (0.25, 41e6)):
        macs = count_macs(alpha, 224, 1000)
        assert abs(macs - paper) / paper < 0.01, (alpha, macs)
    # and exactly what PyTorch's FLOP counter counts in the network (2 FLOPs a multiply-add), square or not
    from torch.utils.flop_counter import FlopCounterMode

    for alpha, h, w in ((0.5, 64, 64), (0.5, 64, 48), (0.25, 97, 33)):
        with FlopCounterMode(display=False) as counter:
            MobileNetV1(10, alpha).eval()(torch.zeros(1, 3, h, w))
        assert count_macs(alpha, h, 10, w) == counter.get_total_flops() // 2, (alpha, h, w)


def test_bn_buffers_and_activations_are_those_of_the_built_network():
    """count_params' bn_buffers are the BatchNorm running means and variances of the network built at that
    width, and count_activations the values its convolutions output for one image (what memory_advice weighs
    a batch by): both counted here on the network itself, its buffers and hooks on a forward pass."""
    from mobilenet_v1.info import count_activations

    for alpha, size in ((0.25, 32), (0.5, 45)):  # 45: odd sizes round up at each stride
        model = MobileNetV1(10, alpha).eval()
        running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
        assert count_params(alpha, 10)["bn_buffers"] == running
        outputs = []
        hooks = [m.register_forward_hook(lambda m, i, o: outputs.append(o.numel()))
                 for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        for h in hooks:
            h.remove()
        assert len(outputs) == 27 and count_activations(alpha, size) == sum(outputs), (alpha, size)


def test_layer_structure_and_names():
    model = MobileNetV1(class_num=10)
    assert len(model.network) == 27
    dw = model.network[1][0]
    assert dw.groups == 32 and tuple(dw.weight.shape) == (32, 1, 3, 3)
    names = set(model.state_dict())
    assert {"network.0.0.weight", "network.26.1.running_var", "fc.weight", "fc.bias"} <= names
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_same_padding_formula():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(7, 3, 2) == (1, 1)
    assert same_padding(224, 3, 1) == (1, 1)
    assert same_padding(224, 1, 1) == (0, 0)


def test_same_padding_matches_explicit_pad_reference():
    torch.manual_seed(0)
    model = MobileNetV1(class_num=5, width_mult=0.25).eval()
    x = torch.randn(1, 3, 64, 64)
    layer0 = model.network[0]
    conv = layer0[0]
    # Reference: TensorFlow SAME at stride 2 on an even input is 0 before, 1 after.
    ref = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    ours = conv(x)
    assert torch.equal(ours, ref)
    # and it is not PyTorch's symmetric padding=1
    sym = F.conv2d(x, conv.weight, stride=2, padding=1)
    assert ours.shape == sym.shape and (ours - sym).abs().max() > 1e-3
    # a stride-2 depthwise layer deeper in the net
    dw = model.network[3][0]
    h = torch.randn(1, dw.in_channels, 32, 32)
    ref = F.conv2d(F.pad(h, (0, 1, 0, 1)), dw.weight, stride=2, groups=dw.groups)
    assert torch.equal(dw(h), ref)


def test_symmetric_padding_option_is_pytorch_padding_1():
    model = MobileNetV1(class_num=5, width_mult=0.25, padding="symmetric").eval()
    conv = model.network[0][0]
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(conv(x), F.conv2d(x, conv.weight, stride=2, padding=1))


@pytest.mark.parametrize("size", [(224, 224), (97, 64), (33, 35), (2, 1)])
def test_training_forward_in_the_flipped_frame_equals_the_padded_path(size):
    # A training step with SAME padding runs on the flipped input (no padded copies); its logits and
    # every gradient must be those of the layers run directly, odd and non-square sizes included.
    torch.manual_seed(0)
    model = MobileNetV1(class_num=6, width_mult=0.25).double().train()
    x = torch.randn(3, 3, *size, dtype=torch.float64)
    fast = model(x)
    fast.square().sum().backward()
    fast_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    direct = model.forward_head(model.network(x))  # each layer's own forward: F.pad, then the conv
    direct.square().sum().backward()
    # float64 rounding only: at 2x1 the late BatchNorms normalise 3 values each, which magnifies it (on an
    # AVX-512 Xeon 2.2e-11 of logits up to 0.21, a gradient 2.5e-9 of its tensor's largest; 1e-14 and 9e-12
    # at the other sizes; 1e-12 elementwise held on AMD EPYC and AVX2 machines)
    assert torch.allclose(fast, direct, rtol=0, atol=1e-9)
    for g, p in zip(fast_grads, model.parameters()):
        assert (g - p.grad).abs().max() <= 1e-7 * p.grad.abs().max() + 1e-12
    # the two paths share nothing but the parameters: a wrong flip would be far off, not 1e-9
    assert fast.abs().max() > 1e-3


def test_training_features_in_the_flipped_frame_are_the_direct_paths_the_right_way_round():
    """forward_features in a training step (the flipped frame) gives the layers' own map, not a mirror of it:
    the logits cannot tell (the pool averages it), a head on the features can."""
    torch.manual_seed(0)
    model = MobileNetV1(class_num=6, width_mult=0.25).double().train()
    x = torch.randn(2, 3, 97, 64, dtype=torch.float64)
    feats = model.forward_features(x)
    direct = model.network(x)
    assert feats.shape == (2, 256, 4, 2)
    assert torch.allclose(feats, direct, rtol=0, atol=1e-9)
    assert (direct - direct.flip(-1)).abs().max() > 1e-3 and (direct - direct.flip(-2)).abs().max() > 1e-3


def test_batchnorm_takes_a_tenth_of_each_training_batch_into_its_running_statistics():
    """MindSpore's BatchNorm momentum 0.9 keeps 0.9 of the running statistics and takes 0.1 of the batch's
    (PyTorch's momentum 0.1), the variance unbiased; eps 1e-5."""
    torch.manual_seed(0)
    model = MobileNetV1(class_num=4, width_mult=0.25).train()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        model(x)
        conv, bn = model.network[0][0], model.network[0][1]
        y = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)  # SAME at stride 2 on an even size
    torch.testing.assert_close(bn.running_mean, 0.1 * y.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * y.var(dim=(0, 2, 3), unbiased=True), rtol=1e-5, atol=1e-6)
    assert bn.eps == 1e-5


@pytest.mark.parametrize("padding", ["same", "symmetric"])
@pytest.mark.parametrize("stride,size", [(1, (8, 8)), (1, (7, 9)), (2, (8, 8)), (2, (7, 9)), (2, (1, 2))])
def test_depthwise_conv_as_a_sum_of_taps_equals_the_conv(padding, stride, size):
    torch.manual_seed(0)
    if padding == "same":
        conv = Conv2dSame(5, 5, 3, stride, groups=5, bias=False).double()
    else:
        conv = torch.nn.Conv2d(5, 5, 3, stride, padding=1, groups=5, bias=False).double()
    x = torch.randn(2, 5, *size, dtype=torch.float64, requires_grad=True)
    ref, taps = conv(x), depthwise_taps(x, conv)
    assert taps.shape == ref.shape
    assert torch.allclose(taps, ref, rtol=0, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ref.square().sum(), [x, conv.weight]),
                    torch.autograd.grad(taps.square().sum(), [x, conv.weight])):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_depthwise_taps_run_only_when_compiled_and_asked(monkeypatch):
    """model.depthwise_taps: under torch.compile the 13 depthwise convs become sums of taps, the same
    network (checked here eagerly, with is_compiling patched, so the test needs no compiler)."""
    import mobilenet_v1.model as model_module

    calls = []
    real = model_module.depthwise_taps
    monkeypatch.setattr(model_module, "depthwise_taps", lambda x, conv: calls.append(conv) or real(x, conv))
    torch.manual_seed(0)
    model = MobileNetV1(class_num=6, width_mult=0.25).double().train()
    x = torch.randn(2, 3, 40, 33, dtype=torch.float64)
    direct = model(x)
    direct.square().sum().backward()
    direct_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.depthwise_taps = True
    assert model(x) is not None and calls == []  # eager: the convs
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    out = model(x)
    out.square().sum().backward()
    assert calls == [layer[0] for layer in model.network if layer[0].groups > 1] and len(calls) == 13
    assert torch.allclose(out, direct, rtol=0, atol=1e-12)
    for g, p in zip(direct_grads, model.parameters()):
        assert torch.allclose(g, p.grad, rtol=1e-10, atol=1e-12)
    calls.clear()
    monkeypatch.setattr(torch.compiler, "_is_exporting_flag", True)  # torch.export's: the exported graph keeps convs
    model(x)
    assert calls == []


def test_flipped_frame_is_taken_under_compile_but_not_export(monkeypatch):
    """torch.compile materialises an uneven SAME pad before cuDNN's conv as eager PyTorch does, so a
    compiled training step runs in the flipped frame too; torch.export and traces get the direct path."""
    calls = []
    real = Conv2dSame.forward_flipped
    monkeypatch.setattr(Conv2dSame, "forward_flipped", lambda self, x: calls.append(self) or real(self, x))
    model = MobileNetV1(class_num=4, width_mult=0.25).train()
    x = torch.randn(2, 3, 32, 32)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    model(x)
    assert len(calls) == 27
    calls.clear()
    monkeypatch.setattr(torch.compiler, "_is_exporting_flag", True)  # what torch.export sets
    model(x)
    assert calls == []


def test_dynamo_traces_the_flipped_frame_and_the_taps(monkeypatch):
    """Traced by Dynamo itself, not with is_compiling patched: Dynamo up to torch 2.11 folded
    torch.compiler.is_exporting() to True under torch.compile too (pytorch/pytorch#176347), which sent the
    compiled step down the padded path and left the taps out."""
    import torch._dynamo

    calls = []
    real_flipped, real_taps = Conv2dSame.forward_flipped, model_module.depthwise_taps
    monkeypatch.setattr(Conv2dSame, "forward_flipped", lambda self, x: calls.append("flipped") or real_flipped(self, x))
    monkeypatch.setattr(model_module, "depthwise_taps", lambda x, conv: calls.append("taps") or real_taps(x, conv))
    model = MobileNetV1(class_num=4, width_mult=0.25).train()
    x = torch.randn(2, 3, 32, 32)
    try:
        torch._dynamo.reset()
        torch.compile(model, backend="eager")(x)
        assert calls.count("flipped") == 27
        calls.clear()
        model.depthwise_taps = True
        torch._dynamo.reset()
        torch.compile(model, backend="eager")(x)
        assert calls.count("taps") == 13
    finally:
        torch._dynamo.reset()


def test_evaluation_mode_with_gradients_takes_the_direct_path_hooks_see():
    """Grad-CAM and saliency maps run the model in evaluation mode with gradients on: there, as under no_grad,
    the 27 blocks' forward hooks fire and see the maps upright (the flipped frame is a training step's)."""
    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    x = torch.randn(1, 3, 64, 48)
    seen = {}  # (a hook that returns something replaces the output: these return None)
    model.network[20].register_forward_hook(lambda m, i, out: seen.update({torch.is_grad_enabled(): out}))
    model.network[20][2].register_forward_hook(lambda m, i, out: seen.update({("relu", torch.is_grad_enabled()):
                                                                              out.detach().clone()}))
    with torch.no_grad():
        direct = model(x)
    out = model(x.requires_grad_())
    assert set(seen) == {False, True, ("relu", False), ("relu", True)}
    assert torch.equal(seen[("relu", True)], seen[("relu", False)]) and torch.equal(out, direct)
    grad, = torch.autograd.grad(out[0, 1], seen[True])  # the class's gradient at the hooked block
    assert grad.shape == seen[False].shape and grad.abs().sum() > 0


def test_onnx_exports_of_a_process_build_torchlibs_table_once_and_write_the_same_graph(monkeypatch):
    """torch.onnx.export builds its table of ONNX functions for ATen operators at every call: to_onnx has it
    built once a process (export.torchlib_registry_built_once), with the graph byte for byte the same, and
    torch's builder put back after each export for whoever else exports."""
    from torch.onnx._internal.exporter import _registration

    from mobilenet_v1 import export

    original = _registration.ONNXRegistry.__dict__["from_torchlib"]
    built = []

    def counted(cls, *args, **kwargs):
        built.append(args or kwargs)
        return original.__func__(cls, *args, **kwargs)

    counting = classmethod(counted)
    monkeypatch.setattr(_registration.ONNXRegistry, "from_torchlib", counting)
    monkeypatch.setattr(export, "_TORCHLIB_REGISTRIES", {})
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 2))
    first = export.to_onnx(model, 16, 16).SerializeToString()
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is counting
    assert export.to_onnx(model, 16, 16).SerializeToString() == first and len(built) == 1

    class Failing(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no graph")

    with pytest.raises(Exception, match="no graph"):
        export.to_onnx(Failing(), 16, 16)
    assert _registration.ONNXRegistry.__dict__["from_torchlib"] is counting  # put back after a failed export too
    monkeypatch.setattr(export, "torchlib_registry_built_once", contextlib.nullcontext)
    assert export.to_onnx(model, 16, 16).SerializeToString() == first and len(built) == 2  # as torch builds it


def test_torch_export_with_dynamic_height_and_width_runs_every_size_as_eager():
    """SAME padding of symbolic sizes: one graph for every height and width in the range. With ceil of a true
    division, and a branch on the halves' parity, the export did not end (or failed on a guard)."""
    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    size = torch.export.Dim("size", min=33, max=300)
    program = torch.export.export(model, (torch.randn(2, 3, 64, 64),), dynamic_shapes=(
        {0: torch.export.Dim("batch", max=16), 2: size, 3: torch.export.Dim("width", min=33, max=300)},))
    with torch.no_grad():
        for h, w in ((63, 65), (64, 64), (97, 130)):
            x = torch.randn(1, 3, h, w)
            assert torch.allclose(program.module()(x), model(x), rtol=0, atol=1e-5), (h, w)
    for n in range(1, 80):  # in integers, TensorFlow's formula still
        for kernel in range(1, 6):
            for stride in range(1, 5):
                total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
                assert same_padding(n, kernel, stride) == (total // 2, total - total // 2), (n, kernel, stride)


def test_relu6_in_training_matches_pytorch_relu6_values_and_gradients():
    relu6 = MobileNetV1(class_num=2, width_mult=0.25).network[0][2]
    x = torch.randn(4, 8, 5, 5, dtype=torch.float64) * 5
    x[0, 0, 0, :3] = torch.tensor([0.0, 6.0, -0.0])  # the kinks: PyTorch's gradient there is 0
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = relu6(a * 1.0)
    ref = F.relu6(b * 1.0, inplace=True)
    g = torch.randn_like(x)
    ours.backward(g)
    ref.backward(g)
    assert torch.equal(ours, ref) and torch.equal(a.grad, b.grad)


def test_training_step_copies_no_activation():
    # What makes the step fast on a CPU: no padded copy of any input (SAME padding) and no copy of an
    # activation kept for ReLU6's backward (PyTorch's in-place ReLU6 clones its input).
    from torch.profiler import ProfilerActivity, profile

    model = MobileNetV1(class_num=3, width_mult=0.25).train()
    x = torch.randn(2, 3, 64, 64)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        model(x).sum().backward()
    ops = {e.name for e in prof.events()}
    copies = [(e.name, e.input_shapes[0]) for e in prof.events()
              if e.name in ("aten::clone", "aten::copy_") and e.input_shapes and len(e.input_shapes[0]) == 4]
    assert "aten::convolution" in ops and "aten::constant_pad_nd" not in ops and not copies, copies
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.no_grad():
        model.eval()(x)  # evaluation keeps the direct path, the one that is exported
    assert "aten::constant_pad_nd" in {e.key for e in prof.key_averages()}


def test_features_only_returns_27_layer_outputs():
    model = MobileNetV1(class_num=3, width_mult=0.25, features_only=True).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert len(outs) == 27
    assert outs[0].shape == (1, 8, 32, 32)
    assert outs[-1].shape == (1, 256, 2, 2)
    assert all(o.min() >= 0 and o.max() <= 6 for o in outs)  # ReLU6


def test_out_indices_pick_layers_and_feature_info_describes_them(tmp_path):
    """timm's five levels (strides 2 to 32) are the 27 outputs at STAGE_ENDS; negative indices count from
    the end; the layers after the last one asked for are not run; a checkpoint loads as a backbone."""
    every = MobileNetV1(class_num=3, width_mult=0.25, features_only=True).eval()
    levels = MobileNetV1(class_num=3, width_mult=0.25, features_only=True, out_indices=STAGE_ENDS).eval()
    levels.load_state_dict(every.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        outs, picked = every(x), levels(x)
    assert [tuple(o.shape[1:]) for o in picked] == [(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2)]
    assert all(torch.equal(outs[k], o) for k, o in zip(STAGE_ENDS, picked))
    assert levels.feature_info == [{"module": f"network.{k}", "num_chs": o.shape[1], "reduction": 64 // o.shape[-1]}
                                   for k, o in zip(STAGE_ENDS, picked)]
    assert MobileNetV1(features_only=True, out_indices=(-1, -5, 22)).out_indices == [22, 26]
    ran = []
    early = MobileNetV1(class_num=3, width_mult=0.25, features_only=True, out_indices=(10,)).eval()
    for k, layer in enumerate(early.network):
        layer.register_forward_hook(lambda *_, k=k: ran.append(k))
    with torch.no_grad():
        assert len(early(x)) == 1
    assert ran == list(range(11))
    for bad in ((27,), (-28,), (), (1.5,), (True,)):
        with pytest.raises(ValueError, match=r"out_indices must name layers of the 27 \(0 to 26"):
            MobileNetV1(features_only=True, out_indices=bad)
    with pytest.raises(ValueError, match="out_indices must be a sequence of layer indices, such as"):
        MobileNetV1(features_only=True, out_indices=26)
    with pytest.raises(ValueError, match="pass features_only=True"):
        MobileNetV1(out_indices=(3,))
    torch.save({"model": every.state_dict(), "model_args": {"class_num": 3, "width_mult": 0.25}}, tmp_path / "m.pt")
    backbone = load_model(str(tmp_path / "m.pt"), features_only=True, out_indices=STAGE_ENDS[-2:])
    with torch.no_grad():
        assert [torch.equal(a, b) for a, b in zip(backbone(x), picked[-2:])] == [True, True]
    # A quantization-aware file (train --qat) has no backbone form: said of the file, not of a qat never passed.
    qat_args = {"class_num": 3, "width_mult": 0.25, "qat": True}
    torch.save({"model": MobileNetV1(**qat_args).state_dict(), "model_args": qat_args}, tmp_path / "q.pt")
    with pytest.raises(ValueError, match=r"checkpoint .*q\.pt is quantization-aware \(train --qat True\), which "
                                         r"has no features_only form: take the backbone from the float"):
        load_model(str(tmp_path / "q.pt"), features_only=True, out_indices=STAGE_ENDS[-2:])


def test_timm_s_classifier_conventions_and_arguments_named(tmp_path):
    """What a timm user reaches for: get_classifier, reset_classifier (another class count to fine-tune for, or
    0 for the pooled features), num_classes in the factory; a wrong argument is named, not a TypeError of '<'
    between str and int, nor MobileNetV1's unexpected keyword for load_model's map_location."""
    model = MobileNetV1(class_num=4, width_mult=0.25).to(torch.float64).eval()
    assert model.get_classifier() is model.fc and model.fc.out_features == 4
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    model.reset_classifier(7)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        assert model(x).shape == (2, 7) and model.class_num == 7 and model.fc.weight.dtype == torch.float64
        assert model.fc.weight.abs().max() <= 0.02 and not model.fc.bias.any()  # the seed's initialisation
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the rest untouched
        model.reset_classifier(0)
        assert torch.equal(model(x), model.forward_head(model.forward_features(x), pre_logits=True))
    assert model.num_features == 256 and model(x).shape == (2, 256)
    assert mobilenet_v1(num_classes=5, width_mult=0.25).fc.out_features == 5
    with pytest.raises(ValueError, match="give class_num or num_classes"):
        mobilenet_v1(class_num=3, num_classes=5)
    with pytest.raises(ValueError, match="give class_num or num_classes"):  # the seed's 1001 given, too
        mobilenet_v1(class_num=1001, num_classes=7)
    assert mobilenet_v1(width_mult=0.25).fc.out_features == 1001
    for bad in ("4", 0, 2.5, True):
        with pytest.raises(ValueError, match=rf"class_num must be a whole number, at least 1, got {bad!r}"):
            MobileNetV1(class_num=bad)
    with pytest.raises(ValueError, match=r"width_mult must be a positive number, got '0.5'"):
        MobileNetV1(width_mult="0.5")
    with pytest.raises(ValueError, match=r"class_num must be a whole number, at least 0, got -1"):
        model.reset_classifier(-1)
    torch.save({"model": MobileNetV1(class_num=3, width_mult=0.25).state_dict()}, tmp_path / "m.pt")
    with pytest.raises(TypeError, match=r"load_model: map_location is not an argument of MobileNetV1 \(class_num, "
                                        r"width_mult, .*\); it reads the model onto the CPU, model.to\(device\)"):
        load_model(str(tmp_path / "m.pt"), map_location="cpu")


def test_timm_s_reset_classifier_and_factory_arguments_are_taken():
    """timm's spellings of the same calls: reset_classifier(num_classes=..., global_pool="avg") and the factory's
    pretrained=False; what this model cannot do (another pooling, bundled weights) is refused by name."""
    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    model.reset_classifier(num_classes=6)
    assert model.fc.out_features == 6 and model.class_num == 6
    model.reset_classifier(3, "avg")
    assert model.fc.out_features == 3
    model.reset_classifier(num_classes=0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 256)
    with pytest.raises(ValueError, match="global_pool 'max': this model pools by average only"):
        model.reset_classifier(5, "max")
    with pytest.raises(ValueError, match="give class_num or num_classes"):
        model.reset_classifier(5, num_classes=5)
    assert mobilenet_v1(pretrained=False, num_classes=10, width_mult=0.25).fc.out_features == 10
    with pytest.raises(ValueError, match=r"pretrained: no weights come with mobilenet_v1 .*load_model\(path\)"):
        mobilenet_v1(pretrained=True, num_classes=10)


def test_the_package_imports_its_modules_when_asked():
    """`import mobilenet_v1` imports nothing heavy (the command line imports torch inside its Ctrl-C handling);
    its names and modules come when first asked for, as eager imports gave them."""
    import subprocess
    import sys

    code = ("import sys, mobilenet_v1; assert 'torch' not in sys.modules; print(mobilenet_v1.checkpoint.RUN_LOCK, "
            "mobilenet_v1.MobileNetV1.__module__, mobilenet_v1.load_model.__module__, sorted(mobilenet_v1.__all__)[0])")
    # Nor do the commands' modules import torchvision (and with it torch._dynamo, seconds of every start)
    # before an image must be decoded or resized; the header names its version all the same.
    code += ("; from mobilenet_v1 import train, evaluate, info, predict, export, quantize, recalibrate, runtime, "
             "transforms; assert 'torchvision' not in sys.modules, 'torchvision'; "
             "print(runtime.header(__import__('torch').device('cpu')).split(', ')[3]); "
             "transforms.resize(__import__('torch').zeros(3, 4, 4, dtype=__import__('torch').uint8), [2, 2]); "
             "print(runtime.header(__import__('torch').device('cpu')).split(', ')[3]); "
             "print(__import__('importlib.metadata').metadata.version('torchvision'), 'torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[0] == ".mobilenetv1.lock mobilenet_v1.model mobilenet_v1.api MobileNetV1", done.stderr
    # The version the package states, before torchvision is imported and after (its module may add +cu130).
    assert len(lines) == 4 and lines[1] == lines[2] == f"torchvision {lines[3].split()[0]}", done.stdout + done.stderr
    assert lines[3].endswith(" True"), done.stdout  # the resize did import it
    import mobilenet_v1
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        mobilenet_v1.nothing


def test_forward_head_and_features_compose():
    model = MobileNetV1(class_num=4, width_mult=0.25).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_head(model.forward_features(x)))
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pre.shape == (2, 256)


def test_seed_initialisation():
    torch.manual_seed(0)
    model = MobileNetV1(class_num=1000)
    w = model.fc.weight
    assert w.abs().max() <= 0.02 + 1e-7 and 0.006 < w.std() < 0.011
    assert torch.count_nonzero(model.fc.bias) == 0
    conv = model.network[2][0].weight  # pw 32 -> 64: Xavier bound sqrt(6 / (32 + 64))
    bound = (6 / (32 + 64)) ** 0.5
    assert conv.abs().max() <= bound and conv.abs().max() > 0.9 * bound
    bn = model.network[5][1]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="padding"):
        MobileNetV1(padding="valid")
    with pytest.raises(ValueError, match="width_mult"):
        MobileNetV1(width_mult=0)


def test_torch_hub_entry_points_build_and_load_the_model(tmp_path):
    """hubconf.py at the checkout's root: torch.hub.load(checkout, "mobilenet_v1", source="local") builds the
    seed's factory's network, "load_model" reads a file, as torchvision's and timm's repositories offer."""
    root = str(Path(__file__).resolve().parents[1])
    torch.manual_seed(0)
    direct = mobilenet_v1(width_mult=0.25, class_num=10)
    torch.manual_seed(0)
    hub = torch.hub.load(root, "mobilenet_v1", source="local", trust_repo=True, width_mult=0.25, class_num=10)
    assert type(hub) is MobileNetV1 and hub.state_dict().keys() == direct.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(hub.state_dict().values(), direct.state_dict().values()))
    with pytest.raises(ValueError, match="pretrained: no weights come with mobilenet_v1"):
        torch.hub.load(root, "mobilenet_v1", source="local", trust_repo=True, pretrained=True)
    torch.save({"model": direct.state_dict()}, str(tmp_path / "m.pt"))
    loaded = torch.hub.load(root, "load_model", str(tmp_path / "m.pt"), source="local", trust_repo=True)
    assert not loaded.training and loaded.fc.out_features == 10
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), direct.state_dict().values()))


def test_peak_activations_names_the_earlier_operator_of_a_tie():
    """At 8x8 the last depthwise layer (25: 256 values in, 256 out at 1x1) and the pointwise one after it (26)
    move as many values, and so does the pool (256 in and out): the peak is named by the first of them."""
    from mobilenet_v1.info import peak_activations

    assert peak_activations(0.25, 8, 10) == (512, "layer 25")
    assert peak_activations(1.0, 8, 10) == (2048, "layer 25")


def test_macs_are_counted_only_for_a_width_in_the_configurations_range():
    """A file's width_mult of 0 (or below, a bool, NaN, past 1e6) is no width to count multiply-adds at: None,
    not the figures of a network of 8-channel layers."""
    from mobilenet_v1.info import counted_width, macs_if_known

    assert macs_if_known(0.25, (32, 32), 10) == count_macs(0.25, 32, 10)
    assert macs_if_known(0.25, (32, 48), 10) == count_macs(0.25, 32, 10, 48)
    for width in (0, 0.0, -0.25, True, float("nan"), float("inf"), 1e7, "0.25", None):
        assert not counted_width(width) and macs_if_known(width, (32, 32), 10) is None, width
    for hw, classes in ((None, 10), ((32, 32), 0), ((32, 32), True), ((32, 32), None)):
        assert macs_if_known(0.25, hw, classes) is None, (hw, classes)


def test_the_width_read_off_a_files_channel_counts_is_the_simplest_nearest_the_middle():
    """A file records no width_mult: the widths that rebuild the channel counts of one built at 0.333 lie in about
    [0.3320, 0.3359) (the 1024-channel layer's 344 bound them below, the 512-channel layers' 168 above); none of
    fewer than 3 decimals does, and of 0.333, 0.334 and 0.335 the one nearest the interval's middle, 0.334, is
    taken (not the first found). A width a person types, 0.7 or 0.25, comes back as it is."""
    from mobilenet_v1.api import infer_width_mult

    state = MobileNetV1(10, 0.333).state_dict()
    width = infer_width_mult(state, "m.ckpt")
    assert width == 0.334
    shapes = {k: v.shape for k, v in MobileNetV1(10, width).state_dict().items()}
    assert shapes == {k: v.shape for k, v in state.items()}
    for typed in (0.7, 0.25, 1.3):
        assert infer_width_mult(MobileNetV1(10, typed).state_dict(), "m.ckpt") == typed


def test_a_jit_trace_follows_the_input_size_exactly():
    """SAME padding's pads are traced from the input's size: a trace at one size is exact at others (the README
    said it kept the traced size's padding; helper-391)."""
    import warnings

    torch.manual_seed(0)
    model = MobileNetV1(class_num=10, width_mult=0.25, padding="same").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, torch.randn(1, 3, 32, 32))
    with torch.no_grad():
        for size in [(32, 32), (33, 40), (47, 64)]:
            x = torch.randn(2, 3, *size)
            assert torch.equal(traced(x), model(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torch_jit_script_is_refused_with_the_way_out():
    """TorchScript failed inside SAME padding's size arithmetic with a type error naming no way out (helper-391)."""
    with pytest.raises(RuntimeError, match="torch.jit.script is not supported.*torch.export"):
        torch.jit.script(MobileNetV1(class_num=10, width_mult=0.25))
