"""Quantization-aware training: the simulated rounding, fine-tuning, the INT8 file export writes of it."""
import copy
import os
import re
import shutil

import numpy as np
import pytest
import torch
from onnx import numpy_helper

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, evaluate, qat, train
from mobilenet_v1.api import load_model
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.demo import write_demo_data
from mobilenet_v1.export import ExportError, export_checkpoint, to_onnx
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import OnnxModel
from mobilenet_v1.quantize import quantize_with_ranges, roundings
from mobilenet_v1.tflite_io import read_metadata as read_tflite_metadata

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")


def observed_model(seed: int, reduce_range: bool = False, padding: str = "same") -> MobileNetV1:
    """A quantization-aware model with BatchNorm far from its initial values (scales and shifts drawn,
    statistics measured on random images in float, as recalibrate-bn measures them), a classifier with logits
    of order 1-10 that follow the input, and activation ranges observed on a few random batches. (With
    statistics drawn at random, ReLU6 left its logits the same for every image.)"""
    torch.manual_seed(seed)
    model = MobileNetV1(10, 0.25, padding=padding, qat=True, qat_reduce_range=reduce_range)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.momentum = None  # a cumulative average of the float batches below
        model.fc.weight.normal_(0, 0.3)
        model.fc.bias.uniform_(-1, 1)
        # A channel whose BatchNorm gamma is all but 0, as dead channels of trained depthwise layers have: its
        # bias at the scale of its weights' would overflow int32 (qat.bias_fitting_scales).
        model.network[5][1].weight[3] = 1e-7
        model.network[5][1].bias[3] = 0.8
        quant, model.quant = model.quant, None  # BatchNorm's statistics, in float (the simulation keeps them)
        model.train()
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32))
        model.quant = quant
        for _ in range(3):
            model(torch.randn(8, 3, 32, 32))
        logits = model.without_quant().eval()(torch.randn(8, 3, 32, 32))
        assert (logits - logits[0]).abs().max() > 0.2 * logits.abs().max(), logits  # they follow the input
    return model.eval()


@pytest.mark.parametrize("reduce_range,padding", [(False, "same"), (True, "symmetric")])
def test_the_simulation_is_the_int8_graph_export_writes(tmp_path, reduce_range, padding, monkeypatch):
    model = observed_model(0, reduce_range, padding)
    fp32 = str(tmp_path / "fp32.onnx")
    with open(fp32, "wb") as f:
        f.write(to_onnx(model.without_quant(), 32, 32).SerializeToString())
    qparams = [tuple(t.item() for t in model.quant.qparams(i)) for i in range(29)]
    scales = fitted_scales(model)
    proto = quantize_with_ranges(fp32, qparams, str(tmp_path), reduce_range=reduce_range, weight_scales=scales)
    int8 = str(tmp_path / "int8.onnx")
    with open(int8, "wb") as f:
        f.write(proto.SerializeToString())
    # The file rounds where the model does, at the model's scales and zero points, and adds the biases the
    # model's forward pass adds (recorded as it runs), to the bit.
    activations, weights, biases = roundings(proto)
    assert activations == [(float(np.float32(s)), z) for s, z in qparams]
    assert len(weights) == len(scales) == 28 and all(np.array_equal(a, b) for a, b in zip(weights, scales))
    with torch.no_grad():
        plain = qat.weight_scales(qat.folded(*model.network[5][:2])[0], model.quant.weight_qmax)
    assert scales[5][3] > 10 * plain[3] and np.array_equal(np.delete(scales[5], 3), np.delete(plain.numpy(), 3))
    used = []
    rounded = qat.quantize_bias
    monkeypatch.setattr(qat, "quantize_bias", lambda b, scale: used.append(rounded(b, scale)) or used[-1])
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert len(used) == len(biases) == 28
    for k, (file_bias, model_bias) in enumerate(zip(biases, used)):
        assert np.array_equal(file_bias, model_bias.numpy()), k
    # The dead channel's bias keeps its value (about 0.8; clipped to int32 at its weights' scale it was under 0.1).
    assert abs(float(used[5][3]) - 0.8) < 0.01
    monkeypatch.undo()
    # And computes what the model computes: image for image to float32's precision, far closer than the float
    # model before rounding is, but for an image or two where a value at a tie (exactly between two levels, which
    # the file's float sums in another order round to the other side) moved one level, a step this network carries
    # to its logits. A differing zero point or clamp, even in one layer, moves many.
    x = torch.randn(32, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        simulated, unrounded = model(x), model.without_quant()(x)
    graph = OnnxModel(int8, reference=True)(x)
    assert simulated.abs().mean() > 0.5 and (simulated - simulated[0]).abs().max() > 1  # logits follow the image
    same = agreeing_images(graph, simulated)
    assert same.sum() >= 28, f"{int(same.sum())} of 32 images agree"
    assert (graph - unrounded)[same].abs().mean() > 100 * (graph - simulated)[same].abs().mean()
    assert torch.equal(graph[same].argmax(1), simulated[same].argmax(1))
    if reduce_range:  # 7-bit weights: this CPU's integer kernels agree too, VNNI or not, dead channel and all
        # (whose bias, at its weights' own scale clipped to int32's largest level, wrapped around in the kernels'
        # int32 sums wherever a positive sum of products was added to it: that channel gave 0).
        kernels = OnnxModel(int8)(x)
        same = agreeing_images(kernels, simulated)
        assert same.sum() >= 28, f"{int(same.sum())} of 32 images agree"


def fitted_scales(model) -> list:
    """The weight scales of each layer of a quantization-aware ``model`` and of its classifier, as it rounds
    them (widened where a bias would not fit int32: qat.bias_fitting_scales)."""
    layers = [qat.folded(conv, bn) for conv, bn, _ in model.network] + [(model.fc.weight, model.fc.bias)]
    inputs = list(range(len(model.network))) + [len(model.network) + 1]
    with torch.no_grad():
        return [qat.bias_fitting_scales(qat.weight_scales(w, model.quant.weight_qmax), b,
                                        model.quant.qparams(k)[0]).numpy() for k, (w, b) in zip(inputs, layers)]


def agreeing_images(logits: torch.Tensor, simulated: torch.Tensor) -> torch.Tensor:
    """Which images' ``logits`` are the ``simulated`` ones to float32's precision (every logit within 1e-4 of
    the mean logit)."""
    return (logits - simulated).abs().amax(1) <= 1e-4 * simulated.abs().mean()


def test_a_failed_int8_export_leaves_no_work_folder_and_the_next_removes_a_killed_ones(tmp_path, monkeypatch):
    """Export of a quantization-aware checkpoint quantizes in a work folder beside its temporary file (it was a
    hidden .export-* folder, which a kill -9 left for good): a failure inside leaves neither, nor the folder made
    for them; those a killed export left go at the next export into the folder."""
    import onnx

    import mobilenet_v1.export as export
    import mobilenet_v1.quantize as quantize

    ckpt = str(tmp_path / "q.ckpt")
    ckpt_io.atomic_save({"model": observed_model(0).state_dict(), "config": {"dataset": "cifar10", "image_size": 32},
                         "model_args": {"class_num": 10, "width_mult": 0.25, "padding": "same", "qat": True}}, ckpt)
    seen = []

    def interrupted(src, qparams, tmp, reduce_range=False, weight_scales=None):
        seen.append(sorted(os.listdir(os.path.dirname(tmp))))
        raise KeyboardInterrupt  # a Ctrl-C inside ONNX Runtime's quantizer

    monkeypatch.setattr(export, "to_onnx", lambda *a, **k: onnx.ModelProto())  # the graph is not read here
    monkeypatch.setattr(quantize, "quantize_with_ranges", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(ckpt, str(tmp_path / "new" / "q"))
    assert len(seen) == 1 and len(seen[0]) == 2 and seen[0][1] == seen[0][0] + ".d", seen
    assert sorted(os.listdir(tmp_path)) == ["q.ckpt"]
    # What a kill -9 there leaves: the temporary file, locked by nobody now, and its work folder.
    out = tmp_path / "out"
    (out / ".q.onnx.x1y2z3w4.tmp.d").mkdir(parents=True)
    (out / ".q.onnx.x1y2z3w4.tmp.d" / "prepared.onnx").write_bytes(b"")
    (out / ".q.onnx.x1y2z3w4.tmp").write_bytes(b"")
    with pytest.raises(KeyboardInterrupt):
        export_checkpoint(ckpt, str(out / "q"))
    assert len(seen) == 2 and not [name for name in seen[1] if "x1y2z3w4" in name], seen
    assert os.listdir(out) == []


def test_weights_and_activations_land_on_their_grids_and_gradients_pass_inside_the_range():
    w = torch.randn(6, 4, 3, 3)
    w[2] = 0  # an all-zero channel: scale 1, as ONNX Runtime gives it
    for qmax in (qat.W_QMAX, qat.W_QMAX_REDUCED):
        rounded, scale = qat.quantize_weight(w, qmax)
        steps = rounded / scale.reshape(-1, 1, 1, 1)
        assert torch.allclose(steps, steps.round(), atol=1e-4)
        assert steps.abs().amax((1, 2, 3)).tolist() == pytest.approx([qmax] * 2 + [0] + [qmax] * 3)
        assert scale[2] == 1
    ranges = qat.ActivationRanges(2).train()
    a, b = torch.randn(100) * 2, torch.randn(100) * 3 + 1
    ranges(1, a)
    assert ranges.ranges[1].tolist() == pytest.approx([float(a.min()), float(a.max())])  # the first batch's
    ranges.observed += 1
    ranges(1, b)
    expected = [float(a.min()) + qat.RANGE_MOMENTUM * (float(b.min()) - float(a.min())),
                float(a.max()) + qat.RANGE_MOMENTUM * (float(b.max()) - float(a.max()))]
    assert ranges.ranges[1].tolist() == pytest.approx(expected)
    ranges.eval()
    x = torch.linspace(-8, 8, 401, requires_grad=True)
    y, scale = ranges(1, x)
    assert torch.equal(scale, ranges.qparams(1)[0])
    zero = ranges.qparams(1)[1]
    steps = y.detach() / scale + zero
    assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.min() >= 0 and steps.max() <= 255
    y.sum().backward()
    grid = torch.round(x.detach() / scale) + zero
    inside = (grid >= 0) & (grid <= 255)
    assert 0 < inside.sum() < x.numel()
    assert torch.equal(x.grad, inside.float())  # straight through inside the range, nothing outside


def test_rounding_the_weights_reads_nothing_back_from_the_device():
    """Every layer's weights are rounded in every step: on a GPU a value read back there waits for all the work
    queued (torch checks an int32 zero point of per-channel rounding against the range with two .item() calls a
    layer, 56 host waits a step for the 28 layers). The profiler sees such reads on the CPU too; the values are
    the int8 grid's, computed here apart: round(w * (1 / scale)), clipped, times the scale."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(3)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    for qmax in (qat.W_QMAX, qat.W_QMAX_REDUCED):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            rounded, scale = qat.quantize_weight(w, qmax)
        reads = [e.name for e in prof.events() if e.name in ("aten::item", "aten::_local_scalar_dense")]
        assert reads == []
        s = (w.detach().abs().amax((1, 2, 3)).double() / qmax).float().reshape(-1, 1, 1, 1)
        expected = torch.round(w.detach() * (1.0 / s)).clamp(-qmax, qmax) * s
        assert torch.equal(rounded.detach(), expected)
        w.grad = None
        rounded.sum().backward()
        assert torch.equal(w.grad, torch.ones_like(w))  # the grid's ends are the weights' own: nothing clipped


def test_rounding_the_activations_is_torchs_fake_quantize_without_reading_back_the_zero_point():
    """torch.fake_quantize_per_tensor_affine with tensor parameters reads the zero point back (.item(), three
    host waits a call on a GPU, 29 calls a step): each activation is rounded by the same arithmetic without it.
    Its values and gradients are torch's (the same numbers; a zero's sign may differ), ties between two
    levels and values far past the range included; ``levels`` gives what the next layer's conv takes, the
    rounded value divided by the scale and rounded (exact integers), with the gradients of that division.
    A NaN stays NaN (torch's op makes it an end of the range, a finite value the step guard would not see)."""
    from torch.profiler import ProfilerActivity, profile

    g = torch.Generator().manual_seed(5)
    ranges = qat.ActivationRanges(3).eval()
    ranges.ranges.copy_(torch.tensor([[0.0, 6.0], [-1.3, 4.1], [-7.0, -0.2]]))  # zero points 0, mid, 255
    zero_points = []
    for i in range(3):
        scale, zero_point = ranges.qparams(i)
        zero_points.append(int(zero_point))
        ties = (torch.arange(-300, 300).float() + 0.5) * scale - float(zero_point) * scale
        x = torch.cat([torch.randn(3000, generator=g) * 5, ties, torch.tensor([0.0, 1e30, -1e30, 3e9])])
        x.requires_grad_(True)
        weights = torch.randn(x.shape, generator=g)
        expected = torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)
        (expected_grad,) = torch.autograd.grad((expected * weights).sum(), x, retain_graph=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            got, got_scale = ranges(i, x)
            (grad,) = torch.autograd.grad((got * weights).sum(), x)
            levels, _ = ranges(i, x, levels=True)
            (levels_grad,) = torch.autograd.grad((levels * weights).sum(), x)
        assert [e.name for e in prof.events() if e.name in ("aten::item", "aten::_local_scalar_dense")] == []
        assert torch.equal(got_scale, scale) and torch.equal(got, expected) and torch.equal(grad, expected_grad)
        v = expected.detach() / scale
        assert torch.equal(levels, v.round()) and torch.equal(levels, levels.round())
        v = expected / scale  # the gradients of the rounded values divided by the scale
        (division_grad,) = torch.autograd.grad((v * weights).sum(), x)
        assert torch.equal(levels_grad, division_grad)
        assert 0 < int((grad == 0).sum()) < x.numel()  # the grid's ends are reached: clipped values pass nothing
        nan = ranges(i, torch.tensor([float("nan"), 1.0]))[0]
        assert nan[0].isnan() and not nan[1].isnan()
    assert zero_points[0] == 0 and 0 < zero_points[1] < 255 and zero_points[2] == 255


def test_a_quantization_aware_training_step_reads_nothing_back_and_observes_channels_last_batches_in_place():
    """No value of a whole training step (forward, backward, the optimiser) is read back to the host, in
    either memory format, and each weight's gradient has the weight's strides; and a range is observed on
    the batch as it lies in memory (torch.aminmax of a whole channels_last tensor copies it to contiguous
    first, which took 16 times the reduction here)."""
    from torch.profiler import ProfilerActivity, profile

    for memory_format in (torch.contiguous_format, torch.channels_last):
        torch.manual_seed(11)
        model = MobileNetV1(10, 0.25, qat=True).to(memory_format=memory_format).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=True)
        x = torch.randn(4, 3, 40, 40).contiguous(memory_format=memory_format)
        for step in range(2):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 2, 3, 4])).backward()
                # Each gradient laid out as its weight (DDP's buckets are; tests/test_distributed.py)
                strides = {n: (p.stride(), p.grad.stride()) for n, p in model.named_parameters()}
                optimizer.step()
                optimizer.zero_grad()
            assert [n for n, (a, b) in strides.items() if a != b] == [], (memory_format, strides)
            reads = [e.name for e in prof.events() if e.name in ("aten::item", "aten::_local_scalar_dense")]
            assert reads == [], (memory_format, step)
        assert int(model.quant.observed) == 2
    batch = torch.randn(8, 16, 9, 7) * 3 + 1
    expected = torch.stack(torch.aminmax(batch))
    for layout in (batch, batch.contiguous(memory_format=torch.channels_last)):
        ranges = qat.ActivationRanges(1).train()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            ranges(0, layout)
        assert [e.name for e in prof.events() if e.name in ("aten::clone", "aten::contiguous")] == []
        assert torch.equal(ranges.ranges[0], expected)


def test_evaluation_reads_whether_the_ranges_were_observed_once_until_they_are_written():
    """An evaluation (or a quantization-aware teacher) reads ``observed`` back once, not at every forward pass
    (on a GPU each read waits for the work queued: evaluate reads nothing else until its end); a write to it
    (load_state_dict, an in-place change as the step guard's restore makes) is seen at the next pass."""
    from torch.profiler import ProfilerActivity, profile

    model = observed_model(4).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            first = [model(x) for _ in range(3)]
        assert len([e for e in prof.events() if e.name == "aten::_local_scalar_dense"]) == 1
        assert torch.equal(first[0], first[2])
        state = {k: v.clone() for k, v in model.state_dict().items()}
        model.quant.observed.zero_()  # never observed: the weights alone are rounded
        unrounded = model(x)
        assert not torch.equal(unrounded, first[0])
        assert torch.equal(unrounded, copy.deepcopy(model)(x))
        model.load_state_dict(state)
        assert torch.equal(model(x), first[0])
        model.train()(x)  # a training batch counts itself (observed += 1): the next evaluation reads it again
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.eval()(x)
            model(x)
        assert len([e for e in prof.events() if e.name == "aten::_local_scalar_dense"]) == 1


def test_the_ranges_move_as_pytorchs_moving_average_observer_and_always_hold_zero():
    """Each batch moves a range 0.01 of the way to its own minimum and maximum, as PyTorch's
    MovingAverageMinMaxObserver (averaging_constant 0.01); and the quantization parameters are ONNX
    Runtime's for uint8, the range widened to hold 0: (0.5, 2) quantizes as (0, 2), scale 2/255 and zero
    point 0; (-3, -1) as (-3, 0), scale 3/255 and zero point 255."""
    from torch.ao.quantization import MovingAverageMinMaxObserver

    observer = MovingAverageMinMaxObserver()
    ranges = qat.ActivationRanges(3).train()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(200, generator=g) * 3 + 1
        ranges(1, x)
        ranges.observed += 1
        observer(x)
    assert ranges.ranges[1].tolist() == pytest.approx([float(observer.min_val), float(observer.max_val)], rel=1e-6)
    ranges.ranges[0] = torch.tensor([0.5, 2.0])
    ranges.ranges[2] = torch.tensor([-3.0, -1.0])
    for i, scale, zero_point in ((0, 2.0 / 255, 0), (2, 3.0 / 255, 255)):
        got = ranges.qparams(i)
        assert float(got[0]) == pytest.approx(scale, rel=1e-6) and int(got[1]) == zero_point, i


def test_torch_export_of_a_quantization_aware_model_is_refused_with_what_to_do():
    """torch.export of a qat model (load_model of a train --qat checkpoint) stopped on a data-dependent guard deep in
    torch; it is said to have no such form, naming export's INT8 file and without_quant()."""
    model = MobileNetV1(class_num=3, width_mult=0.25, qat=True).eval()
    with pytest.raises(RuntimeError, match=r"quantization-aware model \(qat\) has no torch.export form: "
                                           r"`mobilenet-v1 export` writes its INT8 file"):
        torch.export.export(model, (torch.randn(1, 3, 32, 32),))
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)  # eagerly it runs as before
    torch.export.export(model.without_quant(), (torch.randn(1, 3, 32, 32),))


def test_the_model_refuses_what_it_does_not_simulate():
    with pytest.raises(ValueError, match="features_only"):
        MobileNetV1(10, qat=True, features_only=True)
    with pytest.raises(ValueError, match="qat=True"):
        MobileNetV1(10, qat_reduce_range=True)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The demo's digits, a float model trained on them briefly, and a quantization-aware fine-tune of it
    (7-bit weights: the INT8 file is run on this CPU, whose integer kernels may lack VNNI)."""
    root = tmp_path_factory.mktemp("qat")
    data = str(root / "data")
    write_demo_data(data)
    base = [f"--dataset_path={data}", "--class_num=10", "--width_mult=0.25", "--image_size=32", "--batch_size=64",
            "--random_flip=False", "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0"]
    float_run = train.run(load_config(base + ["--epoch_size=4", "--lr_max=0.1", "--lr_decay_mode=cosine",
                                              f"--save_checkpoint_path={root / 'float'}",
                                              "--save_checkpoint_epochs=4"]))
    qat_args = base + ["--qat=True", "--qat_reduce_range=True", f"--pre_trained={float_run['checkpoint']}",
                       "--epoch_size=1", "--lr_max=0.01", "--lr_init=0.01", "--lr_decay_mode=cosine",
                       f"--save_checkpoint_path={root / 'qat'}", "--save_checkpoint_epochs=1"]
    qat_run = train.run(load_config(qat_args))
    return {"root": root, "data": data, "base": base, "float": float_run["checkpoint"], "qat_args": qat_args,
            "qat": qat_run["checkpoint"]}


def test_fine_tuning_keeps_batchnorm_and_export_writes_the_int8_model_it_trained(digits, capsys):
    before, after = ckpt_io.load_file(digits["float"]), ckpt_io.load_file(digits["qat"])
    assert after["model_args"]["qat"] and after["model_args"]["qat_reduce_range"]
    for name, value in before["model"].items():
        if "running_" in name:  # BatchNorm frozen: the statistics the weights were folded with
            assert torch.equal(after["model"][name], value), name
    assert not torch.equal(after["model"]["network.3.0.weight"], before["model"]["network.3.0.weight"])
    steps = after["steps_per_epoch"]
    assert int(after["model"]["quant.observed"]) == steps
    ranges = after["model"]["quant.ranges"]
    assert torch.isfinite(ranges).all() and (ranges[1:, 0] >= 0).all() and (ranges[1:, 1] <= 6).all()

    out = str(digits["root"] / "digits_qat")
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", out]) == 0
    printed = capsys.readouterr().out
    assert "every scale, zero point and bias the model's" in printed
    recorded = OnnxModel(out + ".onnx").metadata["quantization"]
    assert "quantization-aware" in recorded and "7-bit range" in recorded and f"{steps} training batches" in recorded

    def top1(path: str) -> float:
        return evaluate.run(load_config(digits["base"] + [f"--checkpoint_path={path}"]))["top_1_accuracy"]

    simulated, deployed = top1(digits["qat"]), top1(out + ".onnx")
    assert simulated > 0.5  # a model that learned: the comparison means something
    with torch.inference_mode():  # a notebook's: the model was built of inference tensors, whose version its
        assert top1(digits["qat"]) == simulated  # observed flag reads ("Inference tensors do not track version
        #                                          counter", helper-364)
    assert abs(simulated - deployed) <= 2 / 359 + 1e-9  # the same predictions, ties aside
    # The same INT8 file behind an image input (export --image_input True): the same predictions from pixels.
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", out + "_image", "--image_input", "True"]) == 0
    assert OnnxModel(out + "_image.onnx").image_input and top1(out + "_image.onnx") == deployed


def test_export_writes_the_int8_tflite_of_a_quantization_aware_model_from_its_own_roundings(digits, capsys,
                                                                                             monkeypatch):
    """export --file_format TFLITE of a quantization-aware checkpoint: int8 throughout at the scales and zero
    points it learned (its uint8 zero points less 128) and the weight scales it rounds to, the classifier in float
    from its int8 weights as the model computes it; LiteRT gives the model's predictions, from floats and from
    pixels. A file that rounds otherwise is caught, on the scales read back from it (a 1% slip) or on its logits,
    and an earlier file left as it was; --atol is said not to be used."""
    from ai_edge_litert.interpreter import Interpreter

    import mobilenet_v1.tflite_quant as tflite_quant

    out = str(digits["root"] / "digits_qat_tfl")
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", out, "--file_format", "TFLITE", "--atol",
                     "0.1"]) == 0
    printed, err = capsys.readouterr()
    assert "LiteRT's integer kernels vs the quantization-aware PyTorch model" in printed
    assert "every scale, zero point and bias the model's" in printed and "--atol 0.1 is not used" in err
    assert "of the mean logit (limit 1.00%; --atol is for float files)" in printed
    model = load_model(digits["qat"]).eval()
    # Asked for in float, the file gives without_quant()'s model (it was "unexpected 2: quant.ranges ...").
    x = torch.randn(2, 3, 32, 32)
    for given in ({}, {"qat_reduce_range": None}):  # None: not given, as every override's
        assert torch.equal(load_model(digits["qat"], qat=False, **given)(x), model.without_quant()(x))
    interpreter = Interpreter(model_path=out + ".tflite")
    tensors = {d["name"]: d for d in interpreter.get_tensor_details()}
    for k in range(len(model.network)):
        scale, zero = (t.item() for t in model.quant.qparams(k + 1))
        q = tensors[f"layer{k}"]["quantization_parameters"]
        assert tensors[f"layer{k}"]["dtype"] == np.int8 and tensors[f"layer{k}_weights"]["dtype"] == np.int8
        assert q["scales"].tolist() == [scale] and q["zero_points"].tolist() == [zero - 128]
    classifier = tensors["fc_weights"]["quantization_parameters"]["scales"]
    assert tensors["fc_weights"]["dtype"] == np.int8 and np.array_equal(classifier, fitted_scales(model)[-1])
    assert "quantization-aware" in read_tflite_metadata(out + ".tflite")
    assert cli.main(["quantize", "--tflite", out + ".tflite", "--calib_data", digits["data"], "--out",
                     out + "_again.tflite"]) == 1
    assert "is already quantized (INT8 quantization-aware training, TensorFlow Lite" in capsys.readouterr().err

    def top1(path: str) -> float:
        return evaluate.run(load_config(digits["base"] + [f"--checkpoint_path={path}"]))["top_1_accuracy"]

    def run(path: str, x: np.ndarray) -> np.ndarray:
        runner = Interpreter(model_path=path)
        runner.allocate_tensors()
        runner.set_tensor(runner.get_input_details()[0]["index"], x)
        runner.invoke()
        return runner.get_tensor(runner.get_output_details()[0]["index"])

    simulated = top1(digits["qat"])
    assert simulated > 0.5 and abs(top1(out + ".tflite") - simulated) <= 2 / 359 + 1e-9  # ties aside
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", out + "_image", "--file_format", "TFLITE",
                     "--image_input", "True"]) == 0
    assert abs(top1(out + "_image.tflite") - simulated) <= 2 / 359 + 1e-9
    # --softmax True: the same INT8 graph, its float logits then SOFTMAX: the probabilities, and the same top-1.
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", out + "_softmax", "--file_format",
                     "TFLITE", "--softmax", "True"]) == 0
    assert "log-probability difference: mean" in capsys.readouterr().out
    x = np.random.default_rng(1).standard_normal((1, 32, 32, 3)).astype(np.float32)
    logits, probabilities = (run(path, x) for path in (out + ".tflite", out + "_softmax.tflite"))
    assert abs(float(probabilities.sum()) - 1) < 1e-5 and probabilities.max() < 0.999
    assert float(np.abs(torch.softmax(torch.from_numpy(logits), 1).numpy() - probabilities).max()) < 1e-6
    assert top1(out + "_softmax.tflite") == top1(out + ".tflite")
    # A dead channel (observed_model's): its weight scale widened in the file as in the model, or its bias is lost.
    dead = str(digits["root"] / "dead.ckpt")
    ckpt_io.atomic_save({"model": observed_model(0).state_dict(), "config": {"dataset": "cifar10", "image_size": 32},
                         "model_args": {"class_num": 10, "width_mult": 0.25, "padding": "same", "qat": True}}, dead)
    assert export_checkpoint(dead, out + "_dead", file_format="TFLITE")["qat"]["max"] < 1e-3
    kept = open(out + ".tflite", "rb").read()
    real = tflite_quant.learned

    def misread(model, rounded=None, layer=4, factor=1.01):  # one layer's output scale 1% off what it learned
        folded, quant = real(model, rounded)
        quant["layers"][layer] = quant["layers"][layer]._replace(scales=[quant["layers"][layer].scales[0] * factor])
        return folded, quant

    monkeypatch.setattr(tflite_quant, "learned", misread)
    with pytest.raises(ExportError, match=r"the .tflite written rounds otherwise than the quantization-aware model "
                                          r"learned .*activation 5: file"):
        export_checkpoint(digits["qat"], out, file_format="TFLITE")
    assert open(out + ".tflite", "rb").read() == kept
    # And with that check out of the way, weights half again as large are caught on the logits. (Not an activation
    # scale: its producer and its consumer read the one tensor's scale, so a wrong one costs only resolution, 0.2% to
    # 0.9% of the mean logit on this model, either side of the 1% limit as its training falls; the weights, 6% to
    # 50% at layers 4 to 20.)
    import mobilenet_v1.export as export

    def heavier(model, rounded=None):
        folded, quant = real(model, rounded)
        with torch.no_grad():
            folded.network[20][0].weight.mul_(1.5)
        return folded, quant

    monkeypatch.setattr(tflite_quant, "learned", heavier)
    monkeypatch.setattr(export, "_check_roundings", lambda *a: None)
    with pytest.raises(ExportError, match="differ from the quantization-aware model's.*not a faithful export") as e:
        export_checkpoint(digits["qat"], out, file_format="TFLITE")
    assert open(out + ".tflite", "rb").read() == kept
    # The limit a user may raise (rounding ties some models carry on), which the refusal names with a value
    # that accepts this file; a limit out of (0, 1) is refused.
    share = float(re.search(r", ([\d.]+)% of the mean logit \(more than 1\.00%", str(e.value)).group(1)) / 100
    looser = float(re.search(r"--qat_rtol ([\d.]+) accepts it$", str(e.value)).group(1))
    assert share < looser <= share * 1.25 + 1e-3
    with pytest.raises(ExportError, match="not a faithful export"):
        export_checkpoint(digits["qat"], out, file_format="TFLITE", qat_rtol=share * 0.9)
    assert export_checkpoint(digits["qat"], out, file_format="TFLITE", qat_rtol=looser)["qat"]["limit"] == looser
    assert open(out + ".tflite", "rb").read() != kept
    for bad in (0.0, 1.0, float("nan")):
        with pytest.raises(ExportError, match="--qat_rtol .*: must be a share of the mean logit above 0 and below 1"):
            export_checkpoint(digits["qat"], out, file_format="TFLITE", qat_rtol=bad)


def test_a_refused_int8_file_offers_a_qat_rtol_only_where_one_below_1_accepts_it(tmp_path):
    """The refusal's --qat_rtol: a quarter above the share found; none for outputs that are not finite (a NaN
    share failed the message itself: "cannot convert float NaN to integer") or for a share no limit below 1
    accepts, and a mean logit of 0 divides nothing (helper-374)."""
    from mobilenet_v1.export import _refuse_unfaithful

    out = str(tmp_path / "q.onnx")
    for diff, offered in (({"mean": 0.0117, "max": 0.5, "logits": 1.0}, "--qat_rtol 0.015 accepts it"),
                          ({"mean": float("nan"), "max": float("nan"), "logits": 1.0}, None),
                          ({"mean": 0.9, "max": 2.0, "logits": 1.0}, None),
                          ({"mean": 0.5, "max": 2.0, "logits": 0.0}, None)):
        with pytest.raises(ExportError, match="not a faithful export, not written") as e:
            _refuse_unfaithful(diff, out, "the INT8 file's logits")
        assert (offered in str(e.value)) if offered else "--qat_rtol" not in str(e.value), str(e.value)


def test_the_int8_tflite_holds_the_models_own_weight_and_bias_levels(tmp_path):
    """Every int8 weight and int32 bias level of a quantization-aware model's .tflite is the one the model rounds
    to (a division in float64 gave the other level of a weight at a float32 tie; a bias at the float64 product of
    the scales, a dead channel's some 50 levels off)."""
    from ai_edge_litert.interpreter import Interpreter

    from mobilenet_v1.tflite_io import write_flatbuffer
    from mobilenet_v1.tflite_quant import build_int8_graph, learned

    model = observed_model(0, reduce_range=True)
    path = tmp_path / "q.tflite"
    path.write_bytes(write_flatbuffer(build_int8_graph(*learned(model), 32, 32, 1, [0.5] * 3, [0.25] * 3), {}, ""))
    interpreter = Interpreter(model_path=str(path))
    tensors = {d["name"]: d["index"] for d in interpreter.get_tensor_details()}
    scales = fitted_scales(model)
    with torch.no_grad():
        for k, (conv, bn, _) in enumerate(model.network):
            weight, bias = qat.folded(conv, bn)
            scale = torch.from_numpy(scales[k])
            rounded = qat.quantize_weight(weight, model.quant.weight_qmax, scale)[0]
            levels = torch.round(rounded / scale.view(-1, 1, 1, 1))
            stored = torch.from_numpy(interpreter.get_tensor(tensors[f"layer{k}_weights"]).astype(np.float32))
            stored = stored[0].permute(2, 0, 1)[:, None] if conv.groups > 1 else stored.permute(0, 3, 1, 2)
            assert torch.equal(stored, levels), k
            wanted = torch.round(bias.double() / (model.quant.qparams(k)[0] * scale).double())
            assert torch.equal(torch.from_numpy(interpreter.get_tensor(tensors[f"layer{k}_bias"])).double(), wanted), k


def test_a_quantization_aware_run_resumes_with_its_ranges(digits, tmp_path, capsys):
    # The first run is the fixture's (digits["qat_args"], trained into its own folder): a copy of that folder,
    # which the runs below continue as they would continue train.run(qat_args) saved here.
    folder = tmp_path / "qat"
    shutil.copytree(os.path.dirname(digits["qat"]), folder)
    ranges = ckpt_io.load_file(str(folder / os.path.basename(digits["qat"])))["model"]["quant.ranges"]
    args = [a for a in digits["qat_args"] if not a.startswith("--epoch_size")]
    # Resumed without its --pre_trained (the float checkpoint may be gone by then): the checkpoint holds all.
    unfed = [a for a in args if not a.startswith("--pre_trained")]
    second = train.run(load_config(unfed + ["--epoch_size=2", f"--save_checkpoint_path={folder}", "--resume=auto"]))
    resumed = ckpt_io.load_file(second["checkpoint"])
    spe = resumed["steps_per_epoch"]
    assert int(resumed["model"]["quant.observed"]) == 2 * spe  # counted on, not started over
    # The moving average went on from the saved ranges: one more epoch moves them a little, not anew.
    assert not torch.equal(resumed["model"]["quant.ranges"], ranges)
    assert torch.allclose(resumed["model"]["quant.ranges"], ranges, rtol=0.5, atol=0.5)
    # --qat_range_epochs 2: a third epoch trains the weights against the ranges the first two left, which
    # neither move nor count (the INT8 file says how many batches made them).
    gone = unfed + [f"--pre_trained={tmp_path / 'moved' / 'float.ckpt'}"]  # a file since moved: not needed
    third = train.run(load_config(gone + ["--epoch_size=3", "--qat_range_epochs=2", f"--save_checkpoint_path={folder}",
                                          "--resume=auto"]))
    fixed = ckpt_io.load_file(third["checkpoint"])
    assert torch.equal(fixed["model"]["quant.ranges"], resumed["model"]["quant.ranges"])
    assert int(fixed["model"]["quant.observed"]) == 2 * spe
    assert not torch.equal(fixed["model"]["network.3.0.weight"], resumed["model"]["network.3.0.weight"])
    assert load_model(third["checkpoint"]).quant.frozen is False  # a loaded model rounds as before, its ranges kept
    # It said the ranges "follow the batches of epochs 1 to 2", of a run that trains epoch 3 alone.
    assert ("qat_range_epochs 2: the ranges are fixed after epoch 2, and this run starts at epoch 3: they stay as "
            "the checkpoint it goes on from left them while the weights train on") in capsys.readouterr().out
    assert cli.main(["info", third["checkpoint"]]) == 0
    assert ("quantization-aware (INT8 simulated), its activation ranges fixed after epoch 2 (qat_range_epochs)"
            in capsys.readouterr().out)
    # Saved before epoch 2 ended, its ranges are still to be fixed; with qat_range_epochs past the run's
    # end they follow every epoch, as train says, and info says nothing of it.
    for epoch, epochs, said in ((1, 3, ", its activation ranges to be fixed after epoch 2 (qat_range_epochs):"),
                                (3, 2, "quantization-aware (INT8 simulated): export")):
        early = dict(fixed, epoch=epoch, config=dict(fixed["config"], epoch_size=epochs))
        ckpt_io.atomic_save(early, str(tmp_path / "early.ckpt"))
        assert cli.main(["info", str(tmp_path / "early.ckpt")]) == 0
        assert said in capsys.readouterr().out, epoch
    # Nothing to resume: the run needs what it would start from, and says so.
    with pytest.raises(ValueError, match="found no checkpoint in .*empty to continue, and no --pre_trained"):
        train.run(load_config(unfed + [f"--save_checkpoint_path={tmp_path / 'empty'}", "--resume=auto"]))
    with pytest.raises(ckpt_io.CheckpointError, match="moved.*float.ckpt: no such file"):
        train.run(load_config(gone + [f"--save_checkpoint_path={tmp_path / 'empty'}", "--resume=auto"]))


@pytest.mark.parametrize("range_epochs,epoch_size,start_epoch,said", [
    (0, 5, 0, ""),
    (2, 5, 0, "the ranges follow the batches of epochs 1 to 2, then stay as they are while the weights train on"),
    (3, 5, 1, "the ranges follow the batches of epochs 2 to 3 (this run starts at epoch 2), then stay as they are "
              "while the weights train on"),
    (2, 3, 1, "the ranges follow the batches of epoch 2 (this run starts at epoch 2), then stay as they are while "
              "the weights train on"),  # not "epochs 2 to 2" (helper-245)
    (2, 5, 2, "the ranges are fixed after epoch 2, and this run starts at epoch 3: they stay as the checkpoint it "
              "goes on from left them while the weights train on"),
    (2, 5, 4, "the ranges are fixed after epoch 2, and this run starts at epoch 5: they stay as the checkpoint it "
              "goes on from left them while the weights train on"),
    (5, 5, 0, "the ranges follow the batches of all 5 epochs of this run (epoch_size 5): none is trained with them "
              "fixed"),
    (9, 5, 3, "the ranges follow the batches of epochs 4 to 5, all of this run (epoch_size 5): none is trained "
              "with them fixed"),
    (9, 5, 4, "the ranges follow the batches of epoch 5 of this run (epoch_size 5): none is trained with them fixed"),
    (1, 1, 0, "the ranges follow the batches of epoch 1 of this run (epoch_size 1): none is trained with them fixed"),
    (2, 5, 5, ""),  # nothing left to train
])
def test_the_range_epochs_line_says_what_the_epochs_this_run_trains_do(range_epochs, epoch_size, start_epoch, said):
    line = train.qat_range_line(range_epochs, epoch_size, start_epoch)
    assert line == (f"qat_range_epochs {range_epochs}: {said}" if said else "")


def test_pre_trained_across_float_and_quantization_aware(digits, tmp_path, capsys):
    # A quantization-aware model's weights start a float run, its ranges left out with a note.
    result = train.run(load_config(digits["base"] + [f"--pre_trained={digits['qat']}", "--epoch_size=1",
                                                     "--lr_max=0.01", f"--save_checkpoint_path={tmp_path / 'f'}"]))
    assert "its activation ranges left out" in capsys.readouterr().out
    assert not any(k.startswith("quant.") for k in ckpt_io.load_file(result["checkpoint"])["model"])
    # A float model's weights start quantization-aware training: ranges measured from its first step.
    state = ckpt_io.load_file(digits["float"])["model"]
    model = MobileNetV1(10, 0.25, qat=True)
    fitted, note = train.pre_trained_state(state, model, digits["float"])
    assert "holds float weights" in note and int(fitted["quant.observed"]) == 0
    assert {k: v for k, v in fitted.items() if not k.startswith("quant.")} == state
    ckpt_io.load_weights(model, fitted, digits["float"])  # fits the model: nothing missing or unexpected
    assert int(load_model(digits["qat"]).quant.observed) > 0  # the fine-tune went on from there


def test_range_epochs_past_which_a_run_from_float_weights_starts_are_refused_naming_those_that_measure(digits,
                                                                                                        tmp_path):
    # qat_range_epochs counts from epoch 1: a run that goes on the seed's way (pretrain_epoch_size 4) from the float
    # model with N 2 had its ranges fixed before any batch measured them; it trained against none, and export
    # refused its checkpoint ("ranges never measured"). Refused before anything is written, with the N that works.
    continued = digits["base"] + ["--qat=True", f"--pre_trained={digits['float']}", "--pretrain_epoch_size=4",
                                  "--epoch_size=5", "--lr_max=0.01", "--save_checkpoint_epochs=1"]
    with pytest.raises(ConfigError, match=r"option --qat_range_epochs: qat_range_epochs 2 fixes the activation ranges "
                                          r"after epoch 2, and this run starts at epoch 5 \(pretrain_epoch_size 4\) "
                                          r"from .*float.*never measured.*; --qat_range_epochs 6 lets epochs 5 to 6 "
                                          r"measure them"):
        train.run(load_config(continued + ["--qat_range_epochs=2", f"--save_checkpoint_path={tmp_path / 'no'}"]))
    assert not (tmp_path / "no").exists() or not ckpt_io.training_files(str(tmp_path / "no"))
    # Counted so, epoch 5 measures them, and export writes its INT8 file.
    run = train.run(load_config(continued + ["--qat_range_epochs=5", f"--save_checkpoint_path={tmp_path / 'yes'}"]))
    assert int(ckpt_io.load_file(run["checkpoint"])["model"]["quant.observed"]) > 0
    assert os.path.isfile(export_checkpoint(run["checkpoint"], str(tmp_path / "int8.onnx"))["path"])


@pytest.mark.parametrize("extra,key", [
    (["--qat=True"], "pre_trained"),
    (["--qat=True", "--pre_trained=x.ckpt", "--compile=True"], "compile"),
    (["--qat=True", "--pre_trained=x.ckpt", "--precision=bf16"], "precision"),
    (["--qat=True", "--pre_trained=x.ckpt", "--ema_decay=0.999"], "ema_decay"),
    (["--qat_reduce_range=True"], "qat_reduce_range"),
    (["--qat_range_epochs=2"], "qat_range_epochs"),
    (["--qat=True", "--pre_trained=x.ckpt", "--qat_range_epochs=-1"], "qat_range_epochs"),
])
def test_settings_quantization_aware_training_cannot_take_are_refused(extra, key):
    with pytest.raises(ConfigError, match=key):
        load_config(["--dataset_path=d"] + extra)


def test_commands_for_float_models_refuse_a_quantization_aware_checkpoint(digits, tmp_path, capsys):
    out = tmp_path / "out.pt"
    for argv in (["average", digits["qat"], digits["float"], "--out", str(out)],
                 ["recalibrate-bn", digits["qat"], "--dataset_path", digits["data"], "--image_size", "40",
                  "--out", str(out)],
                 ["convert", digits["qat"], str(tmp_path / "out.ckpt")]):
        assert cli.main(argv) != 0, argv[0]
        err = capsys.readouterr().err
        assert "is quantization-aware" in err and digits["qat"] in err, argv[0]
        if argv[0] == "recalibrate-bn":  # the float model named, as its run recorded it (helper-245)
            assert f"recalibrate the float model it was fine-tuned from ({digits['float']}), then" in err
    assert os.listdir(tmp_path) == []


def test_export_refuses_ranges_never_measured_and_a_file_that_rounds_otherwise(digits, tmp_path, monkeypatch):
    # Never trained: nothing to write.
    ckpt = ckpt_io.load_file(digits["qat"])
    state = dict(ckpt["model"])
    state["quant.observed"] = torch.zeros((), dtype=torch.long)
    fresh = str(tmp_path / "fresh.ckpt")
    torch.save({**ckpt, "model": state}, fresh)
    with pytest.raises(ExportError, match="never measured"):
        export_checkpoint(fresh, str(tmp_path / "fresh"))
    # A quantizer that moves one range, or one weight scale, or one bias: each caught by the check, an
    # earlier file left as it was.
    good = str(tmp_path / "q.onnx")
    export_checkpoint(digits["qat"], good)
    kept = open(good, "rb").read()
    import mobilenet_v1.quantize as quantize

    real = quantize.quantize_with_ranges

    def shifted(src, qparams, tmp, reduce_range=False, weight_scales=None):
        qparams = list(qparams)
        qparams[5] = (qparams[5][0] * 1.5, qparams[5][1])
        return real(src, qparams, tmp, reduce_range, weight_scales=weight_scales)

    def altered(suffix, change):
        def quantizer(src, qparams, tmp, reduce_range=False, weight_scales=None):
            proto = real(src, qparams, tmp, reduce_range, weight_scales=weight_scales)
            found = next(i for i in proto.graph.initializer if i.name.startswith("network.4.0.")
                         and i.name.endswith(suffix))
            found.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(found).copy()), found.name))
            return proto
        return quantizer

    def first_doubled(value):
        value.reshape(-1)[0] += value.reshape(-1)[0] or 1
        return value

    # The int8 levels themselves have no scale to compare: the logits tell (here the signs flipped).
    for quantizer, named in ((shifted, "rounds otherwise.*activation 5"),
                             (altered("weight_scale", first_doubled), "rounds otherwise.*weights of layer 4"),
                             (altered("bias_quantized", first_doubled), "rounds otherwise.*bias of layer 4"),
                             (altered("weight_quantized", lambda v: -v), "differ from the quantization-aware")):
        monkeypatch.setattr(quantize, "quantize_with_ranges", quantizer)
        with pytest.raises(ExportError, match=named):
            export_checkpoint(digits["qat"], good)
        assert open(good, "rb").read() == kept


def test_a_bad_batch_leaves_the_ranges_as_they_were(digits):
    model = load_model(digits["qat"]).train()
    before = model.quant.ranges.clone()
    x = torch.randn(4, 3, 32, 32)
    x[0, 0, 0, 0] = float("inf")
    model(x)  # a non-finite input: no range moves to it
    assert torch.isfinite(model.quant.ranges).all() and torch.equal(model.quant.ranges[0], before[0])
    # A step the guard skips (a non-finite loss) takes back what its forward pass observed.
    from mobilenet_v1.nonfinite import NonFiniteGuard

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"))
    ranges, observed = model.quant.ranges.clone(), int(model.quant.observed)
    guard.begin()
    loss = model(torch.randn(4, 3, 32, 32) * 3).sum() * float("nan")
    loss.backward()
    assert not torch.equal(model.quant.ranges, ranges)
    guard.step(loss, torch.amp.GradScaler("cpu", enabled=False))
    assert torch.equal(model.quant.ranges, ranges) and int(model.quant.observed) == observed


def test_a_bad_step_takes_back_the_ranges_on_the_device_path_too(digits, monkeypatch):
    """On CUDA the guard puts the statistics back with torch.where on its flag (the host never asks the
    device), the counter ``observed`` (0-dim) among them: run here on the CPU by telling the guard it is on
    CUDA, with a stand-in for the CUDA event it reads its counters behind."""
    from mobilenet_v1.nonfinite import NonFiniteGuard

    class Event:
        def record(self, stream=None):
            pass

        def query(self):
            return True

    monkeypatch.setattr(torch.cuda, "Event", Event)
    model = load_model(digits["qat"]).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    guard = NonFiniteGuard(model, optimizer, torch.device("cpu"))
    guard._on_cuda = True
    ranges, observed = model.quant.ranges.clone(), model.quant.observed.clone()
    for _ in range(2):  # the second reads the first's counters behind the event
        guard.begin()
        loss = model(torch.randn(4, 3, 32, 32) * 3).sum() * float("nan")
        loss.backward()
        guard.step(loss, torch.amp.GradScaler("cpu", enabled=False))
        assert torch.equal(model.quant.ranges, ranges)
        assert model.quant.observed.shape == () and torch.equal(model.quant.observed, observed)
    assert guard.seen["total"] == 1  # read one step late


def test_a_resume_keeps_to_the_weight_grid_it_trained_on(digits, tmp_path):
    folder = tmp_path / "qat"
    saved = train.run(load_config(digits["qat_args"] + [f"--save_checkpoint_path={folder}"]))["checkpoint"]
    args = [a for a in digits["qat_args"] if not a.startswith(("--epoch_size", "--qat_reduce_range"))]
    with pytest.raises(ckpt_io.CheckpointError, match="qat_reduce_range True; this run with qat True, "
                                                      "qat_reduce_range False"):
        train.run(load_config(args + ["--epoch_size=2", f"--save_checkpoint_path={folder}",
                                      f"--resume={saved}"]))


def test_a_classifier_bias_of_zeros_exports(tmp_path):
    # torch.export leaves a zero bias out of the Gemm: the file's bias is then zeros, as the model's is.
    model = observed_model(2)
    with torch.no_grad():
        model.fc.bias.zero_()
    path = str(tmp_path / "zero_bias.ckpt")
    torch.save({"model": model.state_dict(), "config": {"image_size": 32, "dataset": "cifar10"},
                "model_args": {"class_num": 10, "width_mult": 0.25, "padding": "same", "qat": True}}, path)
    result = export_checkpoint(path, str(tmp_path / "zero_bias"))
    assert result["qat"]["mean"] < 1e-4 * result["qat"]["logits"]
    with torch.no_grad():
        x = torch.randn(4, 3, 32, 32)
        assert torch.equal(OnnxModel(result["path"], reference=True)(x).argmax(1), model(x).argmax(1))


def test_another_size_than_the_frozen_batchnorm_statistics_is_said_with_a_way_that_works(digits, tmp_path, capsys):
    """Quantization-aware training keeps BatchNorm frozen at the statistics it starts from: a run at another size
    than they were measured at says so, and how to measure them there; an export of such a checkpoint at
    another size does not send to recalibrate-bn, which refuses it, but to the float model it came from."""
    at_24 = train.run(load_config([a for a in digits["qat_args"] if not a.startswith("--image_size")]
                                  + ["--image_size=24", f"--save_checkpoint_path={tmp_path / 'q'}"]))
    said = capsys.readouterr().out
    assert (f"pre_trained: note: {digits['float']} has its BatchNorm statistics measured at image_size 32; this run "
            f"trains at 24 with them frozen (qat): `mobilenet-v1 recalibrate-bn {digits['float']} --image_size 24 "
            f"--dataset_path {digits['data']} --out FILE` measures them at this run's size first (then --pre_trained "
            f"FILE)" in said)
    # Its checkpoints record where the frozen statistics were measured (32), not its own 24 (helper-245): a run from
    # it at 32 has nothing to say, one at 24 says it as of the float model's.
    assert ckpt_io.statistics_size(ckpt_io.load_file(at_24["checkpoint"])) == 32
    assert cli.main(["info", at_24["checkpoint"]]) == 0
    assert "its BatchNorm statistics, frozen, measured at 32 (the file it started from)" in capsys.readouterr().out
    # A resume carries the record; from a file of before it, nothing is recorded rather than its own 24 (helper-246).
    older = tmp_path / "older"
    older.mkdir()
    ckpt = ckpt_io.load_file(at_24["checkpoint"])
    ckpt.pop(ckpt_io.BN_STATISTICS_SIZE)
    ckpt_io.atomic_save(ckpt, str(older / os.path.basename(at_24["checkpoint"])))
    for folder, recorded in ((tmp_path / "q", 32), (older, None)):
        again = train.run(load_config([a for a in digits["qat_args"] if not a.startswith("--image_size")]
                                      + ["--image_size=24", "--epoch_size=2", "--resume=auto",
                                         f"--save_checkpoint_path={folder}"]))
        assert ckpt_io.load_file(again["checkpoint"]).get(ckpt_io.BN_STATISTICS_SIZE) == recorded, folder
    capsys.readouterr()
    for size, noted in ((32, False), (24, True)):
        train.run(load_config([a for a in digits["qat_args"] if not a.startswith(("--image_size", "--pre_trained"))]
                              + [f"--image_size={size}", f"--pre_trained={at_24['checkpoint']}",
                                 "--save_checkpoint=False", f"--save_checkpoint_path={tmp_path / 'again'}"]))
        assert ("has its BatchNorm statistics measured at image_size 32; this run trains at 24" in
                capsys.readouterr().out) is noted, size
    assert cli.main(["export", "--ckpt_file", digits["qat"], "--file_name", str(tmp_path / "q24"), "--height", "24",
                     "--width", "24"]) == 0
    err = capsys.readouterr().err
    assert "takes 24x24 as asked" in err and "the float model it was fine-tuned from" in err
    assert "recalibrate-bn` measures its BatchNorm statistics at that size first" not in err
    assert cli.main(["recalibrate-bn", digits["qat"], "--dataset_path", digits["data"], "--image_size", "24",
                     "--out", str(tmp_path / "r.pt")]) != 0  # what the old advice led to
    # the note's command runs as written, FILE named
    assert cli.main(["recalibrate-bn", digits["float"], "--image_size", "24", "--dataset_path", digits["data"],
                     "--out", str(tmp_path / "f24.pt")]) == 0


def test_activation_qparams_follow_onnx_runtimes_uint8_rule():
    """scale (max - min) / 255 of the range widened to hold 0, zero point round(-min / scale): -1 to 1.3 is
    110.87 levels above the minimum, so 111 (not 110, which cuts the range's bottom off by most of a level);
    a range all above 0 starts at 0; an empty one is scale 1, zero point 0."""
    ranges = qat.ActivationRanges(3)
    ranges.ranges.copy_(torch.tensor([[-1.0, 1.3], [0.5, 2.55], [0.0, 0.0]]))
    scale, zero = ranges.qparams(0)
    assert scale.dtype == torch.float32 and zero.dtype == torch.int32
    assert float(scale) == pytest.approx(2.3 / 255) and int(zero) == 111
    scale, zero = ranges.qparams(1)
    assert float(scale) == pytest.approx(0.01) and int(zero) == 0
    assert (float(ranges.qparams(2)[0]), int(ranges.qparams(2)[1])) == (1.0, 0)


def test_reduce_range_rounds_the_weights_to_seven_bits_of_64_levels_a_side():
    """qat_reduce_range: ONNX Runtime's 7-bit weights, [-64, 64] (its reduce_range for int8), the largest
    weight of a channel at level 64; without it [-127, 127]."""
    w = torch.tensor([0.64, -0.32, 0.01, 0.0]).view(1, 4, 1, 1)
    for reduce_range, top in ((True, 64), (False, 127)):
        qmax = qat.ActivationRanges(3, reduce_range=reduce_range).weight_qmax
        rounded, scale = qat.quantize_weight(w, qmax)
        assert float(scale) == pytest.approx(0.64 / top)
        levels = torch.round(rounded / scale.view(-1, 1, 1, 1)).flatten().tolist()
        assert levels == [top, -round(0.32 / (0.64 / top)), round(0.01 / (0.64 / top)), 0], reduce_range
