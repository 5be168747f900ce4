"""Shipping to phones and boards: TensorFlow Lite files (.tflite), written here op by op, run in LiteRT."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from ai_edge_litert import schema_py_generated as schema  # LiteRT's own reader of schema.fbs
from ai_edge_litert.interpreter import Interpreter  # make test installs it (the tflite extra): never skipped

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import benchmark, cli
from mobilenet_v1.export import fold_batchnorm
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import is_deployed_file
from mobilenet_v1.tflite_io import load_tflite, read_metadata, to_tflite
from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD, Normalize

from test_deploy import named_classes_checkpoint, predicted_and_evaluated_as_the_checkpoint, randomise_batchnorm


def close(got, want: torch.Tensor) -> bool:
    """Float32 logits of another runtime's kernels (XNNPACK's sums in another order): within 1e-4 of the largest."""
    return float(np.abs(np.asarray(got) - want.numpy()).max()) <= 1e-4 * max(1.0, float(want.abs().max()))


def run_tflite(path, x: np.ndarray) -> np.ndarray:
    """The file's logits of ``x`` (NHWC), straight from LiteRT's interpreter (not through TfliteModel)."""
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite_export_is_the_model_in_litert_and_eval_predict_info_benchmark_run_it(tmp_path, cifar_dir, capsys):
    """--file_format TFLITE: the folded network as TensorFlow Lite's builtin ops (NHWC, ReLU6 fused, SAME
    padding), the batch fixed at --batch_size, our metadata inside; in LiteRT its logits are the model's. With
    --image_input it takes uint8 BGRA pixels. predict, eval, info and benchmark run it as they run the
    checkpoint; a damaged file is refused naming it."""
    model, ckpt = named_classes_checkpoint(tmp_path)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format", "tflite",
                     "--batch_size", "3"]) == 0
    out = capsys.readouterr().out
    assert "input (3, 40, 40, 3) NHWC, batch fixed) from" in out
    assert "LiteRT vs PyTorch, largest logit difference: batch 3:" in out
    data = (tmp_path / "m.tflite").read_bytes()
    assert data[4:8] == b"TFL3" and is_deployed_file(str(tmp_path / "m.tflite"))
    x = torch.randn(3, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    got = run_tflite(tmp_path / "m.tflite", np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
    with torch.no_grad():
        want = model(x)
    assert want.abs().max() > 1.0 and close(got, want)
    meta = json.loads(read_metadata(str(tmp_path / "m.tflite")))
    assert (meta["dataset"], meta["image_size"], meta["classes"][3]) == ("cifar10", 40, "c3")
    # The signature Android's Interpreter.runSignature and LiteRT's signature runner call it by.
    interpreter = Interpreter(model_path=str(tmp_path / "m.tflite"))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["logits"]}}
    ran = interpreter.get_signature_runner("serving_default")(input=x.permute(0, 2, 3, 1).contiguous().numpy())
    assert close(ran["logits"], want)
    # TfliteModel cuts other batches into the file's: 7 = 3 + 3 + 1 padded.
    x7 = torch.randn(7, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert close(load_tflite(str(tmp_path / "m.tflite"))(x7), model(x7))

    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "pixels.tflite"), "--file_format",
                     "TFLITE", "--image_input", "True", "--pixel_format", "BGRA"]) == 0
    pixels = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    bgra = torch.cat([pixels.flip(1), torch.full_like(pixels[:, :1], 255)], 1).permute(0, 2, 3, 1).contiguous()
    got = run_tflite(tmp_path / "pixels.tflite", bgra.numpy())
    with torch.no_grad():
        want = model(Normalize(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"))(pixels))
    assert close(got, want)

    # XNNPACK's float32 sums (in another order) move the probabilities by up to about 1e-5.
    image = predicted_and_evaluated_as_the_checkpoint(ckpt, [str(tmp_path / n) for n in ("m.tflite", "pixels.tflite")],
                                                      cifar_dir, tmp_path, capsys, tolerance=1e-4)
    assert cli.main(["info", str(tmp_path / "pixels.tflite"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert (described["kind"], described["input"]) == ("TensorFlow Lite file (.tflite)", "uint8 BGRA (1, 40, 40, 4)")
    assert described["metadata"]["classes"][3] == "c3" and described["macs"] > 0
    timing = ["--seconds", "0.2", "--rounds", "2", "--warmup", "1", "--threads", "1", "--json"]
    assert cli.main(["benchmark", str(tmp_path / "m.tflite"), *timing]) == 0
    timed = json.loads(capsys.readouterr().out)
    row = timed["results"][0]
    assert timed["machine"]["ai_edge_litert"]  # the runtime's version beside the figures
    assert (row["runtime"], row["input"], row["weights"]) == ("LiteRT, CPU (XNNPACK)", "float (3, 40, 40, 3) NHWC",
                                                              "fp32")
    # Damaged: cut short, named; a .tflite where a checkpoint is needed.
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 2])
    assert cli.main(["predict", image, "--ckpt_file", str(tmp_path / "cut.tflite")]) == 1
    assert f"TensorFlow Lite file {tmp_path / 'cut.tflite'}: LiteRT cannot load it (" in capsys.readouterr().err


def test_tflite_of_padding_symmetric_pads_before_its_stride_2_convolutions(tmp_path, capsys):
    """timm's weights (padding symmetric): TensorFlow Lite's SAME pads a stride-2 convolution of an even size
    (0, 1), PyTorch's padding=1 (1, 1): a PAD op and VALID convolutions give the model's logits."""
    model, ckpt = named_classes_checkpoint(tmp_path, "symmetric")
    ckpt_io.atomic_save({**ckpt_io.load_file(ckpt), "config": {"dataset": "imagenet2012", "image_size": 48}}, ckpt)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "s"), "--file_format",
                     "TFLITE"]) == 0
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    got = run_tflite(tmp_path / "s.tflite", np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
    with torch.no_grad():
        want = model(x)
    assert close(got, want)
    meta = json.loads(read_metadata(str(tmp_path / "s.tflite")))
    assert meta["padding"] == "symmetric" and meta["mean"] == pytest.approx(list(IMAGENET_MEAN)) and \
        meta["std"] == pytest.approx(list(IMAGENET_STD)) and meta["class_num"] == 10
    # Its activation peak, read off the file's tensors (the PAD's copy among them), is the network's counted one.
    from mobilenet_v1.info import peak_activations
    from mobilenet_v1.tflite_io import activation_peak

    values, where = peak_activations(0.25, 48, 10, "symmetric")
    peak, at = activation_peak(str(tmp_path / "s.tflite"))
    assert peak == 4 * values > 4 * peak_activations(0.25, 48, 10)[0]
    assert (where, at) == ("layer 3's padding", "operator 4, PAD")
    # info gives it for the network with --padding symmetric, before any training (a file's padding is its own).
    capsys.readouterr()
    assert cli.main(["info", "--width_mult", "0.25", "--image_size", "48", "--class_num", "10", "--padding",
                     "symmetric", "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert (said["peak_activations"], said["peak_at"], said["padding"]) == (values, where, "symmetric")
    with pytest.raises(SystemExit):
        cli.main(["info", ckpt, "--padding", "same"])
    assert "--padding is for a network without FILE" in capsys.readouterr().err


def test_a_tflite_of_an_odd_size_holds_the_sizes_same_padding_gives_and_the_networks_peak(tmp_path):
    """At an odd size a stride-2 convolution with SAME padding gives half the size rounded up (33: 17, as
    PyTorch's padding=1 does): the file's tensors hold those sizes, so its activation peak (info's, the C++
    header's tensor arena floor) is the network's counted one, and LiteRT gives the model's logits."""
    from mobilenet_v1.info import peak_activations
    from mobilenet_v1.tflite_io import activation_peak, build_graph, write_flatbuffer

    model = MobileNetV1(class_num=10, width_mult=0.25).eval()
    graph = build_graph(fold_batchnorm(model), 33, 33, 1, list(CIFAR_MEAN), list(CIFAR_STD))
    (tmp_path / "odd.tflite").write_bytes(write_flatbuffer(graph, {}, "33x33"))
    written = schema.ModelT.InitFromPackedBuf(bytearray((tmp_path / "odd.tflite").read_bytes()), 0)
    shapes = {t.name: list(t.shape) for t in written.subgraphs[0].tensors}
    assert shapes[b"layer0"] == [1, 17, 17, 8] and shapes[b"layer26"] == [1, 2, 2, 256]
    values, where = peak_activations(0.25, 33, 10)
    assert activation_peak(str(tmp_path / "odd.tflite")) == (4 * values, "operator 2, CONV_2D") and where == "layer 2"
    x = torch.randn(1, 3, 33, 33, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert close(run_tflite(tmp_path / "odd.tflite", np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())), model(x))


def test_quantize_tflite_of_batch_1_says_plainly_it_took_every_image(tmp_path, capsys):
    """A .tflite takes batches of 1: a data set of fewer images than --calib_images asks gives them all, said
    as such (not "all it has in whole batches", which only a larger fixed batch leaves images out of)."""
    from mobilenet_v1.data import CIFAR_EVAL_FOLDER, CIFAR_TRAIN_FOLDER, write_cifar_bin

    model = randomise_batchnorm(MobileNetV1(class_num=4, width_mult=0.25), seed=6)
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format",
                     "TFLITE"]) == 0
    data = tmp_path / "cifar"
    (data / CIFAR_TRAIN_FOLDER).mkdir(parents=True)
    (data / CIFAR_EVAL_FOLDER).mkdir()
    labels = np.arange(5) % 4
    images = np.random.default_rng(0).integers(0, 255, (5, 3, 32, 32), dtype=np.uint8)
    write_cifar_bin(str(data / CIFAR_TRAIN_FOLDER / "data_batch_1.bin"), images, labels)
    write_cifar_bin(str(data / CIFAR_EVAL_FOLDER / "test_batch.bin"), images[:2], labels[:2])
    capsys.readouterr()
    assert cli.main(["quantize", "--tflite", str(tmp_path / "m.tflite"), "--calib_data", str(data), "--out",
                     str(tmp_path / "q.tflite"), "--calib_images", "7", "--num_workers", "0"]) == 0
    err = capsys.readouterr().err
    assert f"{data} gave 5 training images of the 7 asked (--calib_images): all it has\n" in err, err
    assert "whole batches" not in err


def test_without_litert_a_tflite_is_refused_saying_how_to_install_it(tmp_path, monkeypatch, capsys):
    """Without ai-edge-litert (the tflite extra) export, eval and predict of .tflite say what to install, in one
    line, and write nothing."""
    model, ckpt = named_classes_checkpoint(tmp_path)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format",
                     "TFLITE"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # its import then fails
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "n"), "--file_format",
                     "TFLITE"]) == 1
    err = capsys.readouterr().err
    assert "LiteRT (the ai-edge-litert package) is not installed" in err and "pip install 'mobilenet-v1[tflite]'" in err
    assert not (tmp_path / "n.tflite").exists()
    assert cli.main(["eval", "--checkpoint_path", str(tmp_path / "m.tflite"), "--dataset_path", str(tmp_path)]) == 1
    assert "pip install 'mobilenet-v1[tflite]'" in capsys.readouterr().err


def test_quantize_tflite_writes_a_full_integer_file_close_to_the_float_one(tmp_path, cifar_dir, capsys):
    """quantize --tflite: the float file's network as TensorFlow Lite's full-integer INT8 (int8 weights per
    channel, int8 activations with the ranges calibration measured, int32 biases; float in, QUANTIZE, ...,
    DEQUANTIZE, float out), its image input kept; LiteRT runs it, its logits near the float file's and its
    top-1 the same on nearly every image; eval and info say it is INT8; options it has no use for refused."""
    model, ckpt = named_classes_checkpoint(tmp_path)
    for name, extra in (("f", []), ("px", ["--image_input", "True", "--pixel_format", "BGR"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--file_format",
                         "TFLITE", *extra]) == 0
        assert cli.main(["quantize", "--tflite", str(tmp_path / f"{name}.tflite"), "--calib_data", str(cifar_dir),
                         "--out", str(tmp_path / f"{name}_int8.tflite"), "--calib_images", "64"]) == 0
        out = capsys.readouterr().out
        assert f"wrote {tmp_path / f'{name}_int8.tflite'}" in out and "activation ranges from 64 training images" in out
        # The evaluation it points to is a command to paste: the data set's folder given, not "...".
        assert f"--dataset cifar10 --dataset_path {cifar_dir}`" in out
    interpreter = Interpreter(model_path=str(tmp_path / "f_int8.tflite"))
    interpreter.allocate_tensors()
    kinds = {d["name"]: d["dtype"] for d in interpreter.get_tensor_details()}
    assert kinds["input"] == np.float32 and kinds["logits"] == np.float32 and kinds["input_int8"] == np.int8
    assert all(kinds[f"layer{k}"] == np.int8 and kinds[f"layer{k}_weights"] == np.int8 and
               kinds[f"layer{k}_bias"] == np.int32 for k in range(27))
    depthwise = next(d for d in interpreter.get_tensor_details() if d["name"] == "layer1_weights")
    assert len(depthwise["quantization_parameters"]["scales"]) == depthwise["shape"][3]  # per channel, axis 3
    # Images of the calibration's kind (its ranges are theirs), as its loader makes them: resized, normalised.
    from mobilenet_v1.data import load_cifar

    images = torch.nn.functional.interpolate(load_cifar(str(cifar_dir), False)[0][:8].float() / 255, size=40,
                                             mode="bilinear", antialias=True)
    x = Normalize(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"))((images * 255).round().to(torch.uint8))
    with torch.no_grad():
        want = model(x)
    got = torch.cat([torch.from_numpy(run_tflite(tmp_path / "f_int8.tflite",
                                                 np.ascontiguousarray(x[i:i + 1].permute(0, 2, 3, 1).numpy())))
                     for i in range(8)])
    # As near the model as ONNX Runtime's INT8 of it (per-channel weights, ranges from the same images): this
    # random network is far more sensitive to rounding than a trained one (the demo's INT8 file keeps its top-1).
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f")]) == 0
    assert cli.main(["quantize", "--onnx", str(tmp_path / "f.onnx"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "f_int8.onnx"), "--calib_images", "64"]) == 0
    capsys.readouterr()
    from mobilenet_v1.onnx_io import OnnxModel

    onnx_int8 = OnnxModel(str(tmp_path / "f_int8.onnx"))(x)
    assert (got - want).abs().mean() <= 1.25 * (onnx_int8 - want).abs().mean()
    assert (got.argmax(1) == want.argmax(1)).sum() >= (onnx_int8.argmax(1) == want.argmax(1)).sum() - 1
    for name in ("f_int8.tflite", "px_int8.tflite"):
        assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", str(tmp_path / name),
                         "--json"]) == 0
        float_file = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", str(tmp_path / "f.tflite"),
                         "--json"]) == 0
        reference = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert abs(float_file["top_1_accuracy"] - reference["top_1_accuracy"]) <= 0.1
    assert cli.main(["info", str(tmp_path / "f_int8.tflite")]) == 0  # the float input it takes is rounded inside
    assert "input:          float (1, 40, 40, 3) NHWC, quantized to int8 inside" in capsys.readouterr().out
    assert cli.main(["info", str(tmp_path / "px_int8.tflite"), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["weights"].startswith("INT8 full-integer (TensorFlow Lite)") and \
        described["input"] == "uint8 BGR (1, 40, 40, 3)"
    for option in ("--per_tensor", "--reduce_range"):
        assert cli.main(["quantize", "--tflite", str(tmp_path / "f.tflite"), "--calib_data", str(cifar_dir), "--out",
                         str(tmp_path / "n.tflite"), option]) == 1
        assert f"{option}: not for --tflite" in capsys.readouterr().err
    assert cli.main(["quantize", "--tflite", ckpt, "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.tflite")]) == 1
    assert "not a .tflite file" in capsys.readouterr().err and not (tmp_path / "n.tflite").exists()
    # A .tflite that records no network (another tool's): named, nothing written, no traceback.
    from mobilenet_v1.tflite_io import build_graph, write_flatbuffer

    graph = build_graph(fold_batchnorm(model), 40, 40, 1, list(CIFAR_MEAN), list(CIFAR_STD))
    (tmp_path / "foreign.tflite").write_bytes(write_flatbuffer(graph, {}, "another tool's"))
    assert cli.main(["quantize", "--tflite", str(tmp_path / "foreign.tflite"), "--calib_data", str(cifar_dir),
                     "--dataset", "cifar10", "--out", str(tmp_path / "n.tflite")]) == 1
    assert "its metadata records no class_num and no width_mult" in capsys.readouterr().err
    assert not (tmp_path / "n.tflite").exists()


def test_float16_tflite_stores_half_precision_weights_and_computes_the_model_so_rounded(tmp_path, cifar_dir, capsys):
    """export --file_format TFLITE --float16 True: weights and biases stored as float16, each DEQUANTIZEd to
    float32 (TensorFlow Lite's float16 quantization): about half the file; LiteRT computes the model with its
    weights rounded to float16 (to float32's precision), which is not the float32 model; eval, info run it and
    quantize refuses it; --float16 for another format, or for a quantization-aware checkpoint, is refused."""
    import copy

    model, ckpt = named_classes_checkpoint(tmp_path)
    for name, extra in (("h", []), ("hpx", ["--image_input", "True"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--file_format", "TFLITE",
                         "--float16", "True", *extra]) == 0
    assert "float16 weights (TensorFlow Lite's float16 quantization)" in capsys.readouterr().out
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f"), "--file_format", "TFLITE"]) == 0
    assert os.path.getsize(tmp_path / "h.tflite") < 0.55 * os.path.getsize(tmp_path / "f.tflite")
    interpreter = Interpreter(model_path=str(tmp_path / "h.tflite"))
    kinds = {d["name"]: d["dtype"] for d in interpreter.get_tensor_details()}
    assert all(kinds[f"layer{k}_weights_float16"] == np.float16 and kinds[f"layer{k}_bias_float16"] == np.float16
               for k in range(27)) and kinds["fc_weights_float16"] == np.float16
    rounded = copy.deepcopy(fold_batchnorm(model))
    with torch.no_grad():
        for t in rounded.parameters():
            t.copy_(t.half().float())
        x = torch.randn(4, 3, 40, 40, generator=torch.Generator().manual_seed(2))
        want, full = rounded(x), model.eval()(x)
    got = torch.cat([torch.from_numpy(run_tflite(tmp_path / "h.tflite", np.ascontiguousarray(
        x[i:i + 1].permute(0, 2, 3, 1).numpy()))) for i in range(4)])
    assert close(got, want) and (want - full).abs().max() > 1e-3  # the rounded model's, not the float32 one's
    # Its activations are the float file's: what each DEQUANTIZE makes of the weights is no activation.
    from mobilenet_v1.info import peak_activations
    from mobilenet_v1.tflite_io import activation_peak

    assert activation_peak(str(tmp_path / "h.tflite"))[0] == 4 * peak_activations(0.25, 40, 10)[0]
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", str(tmp_path / "hpx.tflite"),
                     "--json"]) == 0
    half = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", ckpt, "--json"]) == 0
    full_top1 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top_1_accuracy"]
    assert abs(half["top_1_accuracy"] - full_top1) <= 0.05
    assert cli.main(["info", str(tmp_path / "h.tflite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["weights"].startswith("float16 weights")
    assert cli.main(["quantize", "--tflite", str(tmp_path / "h.tflite"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.tflite")]) == 1
    assert "is already quantized (float16 weights" in capsys.readouterr().err
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "n"), "--float16", "True"]) == 1
    assert "--float16 True: is for --file_format TFLITE" in capsys.readouterr().err
    assert not (tmp_path / "n.onnx").exists()
    qat = MobileNetV1(class_num=10, width_mult=0.25, qat=True)
    ckpt_io.atomic_save({"model": qat.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25, "qat": True},
                         "config": {"dataset": "cifar10", "image_size": 40}}, str(tmp_path / "qat.ckpt"))
    assert cli.main(["export", "--ckpt_file", str(tmp_path / "qat.ckpt"), "--file_name", str(tmp_path / "n"),
                     "--file_format", "TFLITE", "--float16", "True"]) == 1
    assert "is a quantization-aware checkpoint, whose .tflite is INT8" in capsys.readouterr().err
    # Weights past float16's range (folded: a BatchNorm scale of 1e6) would be infinite: refused, named.
    huge = copy.deepcopy(model)
    with torch.no_grad():
        huge.network[3][1].weight.fill_(1e6)
    ckpt_io.atomic_save({"model": huge.state_dict(), "config": {"dataset": "cifar10", "image_size": 40}},
                        str(tmp_path / "huge.ckpt"))
    assert cli.main(["export", "--ckpt_file", str(tmp_path / "huge.ckpt"), "--file_name", str(tmp_path / "n"),
                     "--file_format", "TFLITE", "--float16", "True"]) == 1
    err = capsys.readouterr().err
    assert "--float16 True: the folded weights reach" in err and "network.3.0.weight" in err
    assert "past float16's largest, 65504" in err and not (tmp_path / "n.tflite").exists()


def support_metadata_of(path) -> dict:
    """The TFLITE_METADATA of a .tflite (TensorFlow Lite Support's metadata_schema.fbs, identifier M001) as far
    as the tests read it: the input's name, colour space, size, normalisation (mean, std) and the output's
    associated files (name, type), read slot by slot with flatbuffers' generic table reader."""
    from flatbuffers import table as fbtable
    from flatbuffers.number_types import Float32Flags, Uint32Flags, UOffsetTFlags

    data = open(path, "rb").read()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    entry = next(m for m in model.metadata if m.name == b"TFLITE_METADATA")
    buf = bytearray(bytes(model.buffers[entry.buffer].data))
    assert buf[4:8] == b"M001"

    def tab(t, slot):  # the table at a table field
        o = t.Offset(4 + 2 * slot)
        return fbtable.Table(t.Bytes, t.Indirect(o + t.Pos)) if o else None

    def items(t, slot):  # the tables of a vector field
        o = t.Offset(4 + 2 * slot)
        start, n = t.Vector(o), t.VectorLen(o) if o else 0
        return [fbtable.Table(t.Bytes, t.Indirect(start + 4 * i)) for i in range(n)] if o else []

    def floats(t, slot):
        o = t.Offset(4 + 2 * slot)
        return [t.Get(Float32Flags, t.Vector(o) + 4 * i) for i in range(t.VectorLen(o))] if o else None

    def text(t, slot):
        o = t.Offset(4 + 2 * slot)
        return t.String(o + t.Pos).decode() if o else None

    def byte(t, slot):
        o = t.Offset(4 + 2 * slot)
        return t.Get(fbtable.N.Int8Flags, o + t.Pos) if o else 0

    root = fbtable.Table(buf, fbtable.encode.Get(UOffsetTFlags.packer_type, buf, 0))
    sub = items(root, 3)[0]
    inp, out = items(sub, 2)[0], items(sub, 3)[0]
    content = tab(inp, 3)
    image = tab(content, 1)
    size = tab(image, 1)
    units = items(inp, 4)
    norm = tab(units[0], 1) if units else None
    out_units = [(byte(u, 0), tab(u, 1)) for u in items(out, 4)]  # (options type, options)
    thresholds = [t.Get(Float32Flags, t.Offset(4) + t.Pos) for kind, t in out_units if kind == 3]
    return {"min_parser_version": text(root, 7), "input": text(inp, 0), "content_type": byte(content, 0),
            "color_space": byte(image, 0),
            "size": tuple(size.Get(Uint32Flags, size.Offset(slot) + size.Pos) for slot in (4, 6)),
            "mean": floats(norm, 0) if norm else None, "std": floats(norm, 1) if norm else None,
            "output": text(out, 0), "files": [(text(f, 0), byte(f, 2)) for f in items(out, 6)],
            "thresholds": thresholds}


def test_a_file_named_tflite_that_is_none_is_said_as_such(tmp_path, capsys):
    """A text file (or any other) named .tflite: info and predict called it a bad checkpoint. A .tflite given
    where a checkpoint is needed is said to be one."""
    junk = tmp_path / "fake.tflite"
    junk.write_text("not a model at all\n")
    for argv in (["info", str(junk)], ["predict", str(junk), "--ckpt_file", str(junk)]):
        assert cli.main(argv) == 1
        assert (f"{junk}: named .tflite but not a TensorFlow Lite model (its bytes 4 to 7 are not TFL3), nor a "
                f"checkpoint; it starts with b'not a mo'") in capsys.readouterr().err, argv
    # One that is (its identifier is what says so) where a checkpoint is needed: named as what it is (helper-245).
    model = tmp_path / "m.tflite"
    model.write_bytes(b"(\x00\x00\x00TFL3" + bytes(32))
    assert cli.main(["convert", str(model), str(tmp_path / "c.pt")]) == 1
    assert (f"{model}: a TensorFlow Lite model (export --file_format TFLITE), not a checkpoint: eval, predict and "
            f"quantize --tflite run it; this needs the checkpoint it was exported from") in capsys.readouterr().err


def test_a_class_folders_name_that_is_not_utf8_goes_into_labels_txt_as_predict_prints_it():
    """A Latin-1 folder name (caf\\xe9, its byte a surrogate in Python) is written escaped, as predict prints it:
    labels.txt and the C++ header are UTF-8 text (export failed on it, naming neither the folder nor the file)."""
    import io
    import zipfile

    from mobilenet_v1 import tflite_io

    labels = tflite_io.file_labels({"class_num": 3, "classes": ["caf\udce9", "caf\u00e9", "dog"]})
    assert labels == ["caf\\xe9", "caf\u00e9", "dog"]
    # Spaces stay: collapsed, " a" and "a", "x  y" and "x y" were two classes under one label (helper-313); a
    # line break, which would make two lines of labels.txt, is a space.
    odd = [" a", "a", "x  y", "x y", "new\nline", "cr\r\nlf"]
    assert tflite_io.file_labels({"class_num": 6, "classes": odd}) == [" a", "a", "x  y", "x y", "new line", "cr lf"]
    # Outputs no class uses, as eval's confusion CSV names them: one "(no class)", several each with its index
    # (the labels file held "(no class)" twice, where eval names "(no class 3)", "(no class 4)"; helper-262).
    from mobilenet_v1.evaluate import class_labels
    for count in (4, 5):
        assert tflite_io.file_labels({"class_num": count, "classes": ["a", "b", "c"]}) == class_labels(["a", "b", "c"],
                                                                                                        count)
    assert tflite_io.file_labels({"class_num": 5, "classes": ["a", "b", "c"]})[3:] == ["(no class 3)", "(no class 4)"]
    with zipfile.ZipFile(io.BytesIO(tflite_io.with_labels(b"", labels))) as z:
        assert z.read("labels.txt").decode("utf-8").splitlines() == labels


def test_tflite_files_carry_the_metadata_androids_task_library_reads_with_their_labels(tmp_path, cifar_dir, capsys):
    """Every .tflite export writes (float, float16, an image input of RGB pixels; quantize --tflite keeps it)
    carries TensorFlow Lite Support's TFLITE_METADATA, which Android's Task Library (ImageClassifier) and ML Kit
    need to feed and name a classifier: an RGB image of the file's size, normalised by the run's mean and std on
    the 0-255 scale where it takes floats (none for pixels), and the labels file labels.txt (TENSOR_AXIS_LABELS)
    in a zip after the model, one line per output as predict names them. A file of BGR pixels carries none
    (those runtimes give RGB). (Checked with TensorFlow Lite Support 0.4.4's MetadataDisplayer and ImageClassifier
    by hand: benchmarks/RESULTS.md.)"""
    import zipfile

    model, ckpt = named_classes_checkpoint(tmp_path)
    for name, extra in (("f", []), ("h", ["--float16", "True"]), ("px", ["--image_input", "True"]),
                        ("bgr", ["--image_input", "True", "--pixel_format", "BGR"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--file_format", "TFLITE",
                         *extra]) == 0
    assert cli.main(["quantize", "--tflite", str(tmp_path / "f.tflite"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "q.tflite"), "--calib_images", "32"]) == 0
    capsys.readouterr()
    for name in ("f", "h", "px", "q"):
        meta = support_metadata_of(tmp_path / f"{name}.tflite")
        assert meta["min_parser_version"] == "1.0.0" and meta["input"] == "image" and meta["output"] == "logits"
        assert (meta["content_type"], meta["color_space"], meta["size"]) == (2, 1, (40, 40))  # ImageProperties, RGB
        assert meta["files"] == [("labels.txt", 2)]  # TENSOR_AXIS_LABELS
        # Every score returned, the negative logits too (ScoreThresholdingOptions, the lowest float): the Task
        # Library's default threshold dropped them (all of them for a model whose logits were all below 0).
        assert meta["thresholds"] == [float(np.finfo(np.float32).min)]
        with zipfile.ZipFile(tmp_path / f"{name}.tflite") as z:
            assert z.read("labels.txt").decode().splitlines() == [f"c{i}" for i in range(10)]
        if name == "px":
            assert meta["mean"] is None  # pixels: the file normalises them itself
        else:
            assert np.allclose(meta["mean"], np.array(CIFAR_MEAN) * 255) and \
                np.allclose(meta["std"], np.array(CIFAR_STD) * 255)
    x = np.random.default_rng(0).standard_normal((1, 40, 40, 3)).astype(np.float32)
    with torch.no_grad():
        assert close(run_tflite(tmp_path / "f.tflite", x), model.eval()(torch.from_numpy(x).permute(0, 3, 1, 2)))
    # None for BGR pixels (those runtimes give RGB), nor for a batch of 4 (ImageClassifier takes one image).
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "b4"), "--file_format", "TFLITE",
                     "--batch_size", "4"]) == 0
    for name in ("bgr", "b4"):
        written = schema.ModelT.InitFromPackedBuf(bytearray((tmp_path / f"{name}.tflite").read_bytes()), 0)
        assert [m.name for m in written.metadata] == [b"mobilenet_v1_json"], name
    # info says which files carry it, and how many names their labels file holds.
    capsys.readouterr()
    for name, said in (("q", 10), ("bgr", None)):
        assert cli.main(["info", str(tmp_path / f"{name}.tflite"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["task_library_labels"] == said, name
    assert cli.main(["info", str(tmp_path / "px.tflite")]) == 0
    assert "Task Library:   TensorFlow Lite Support metadata for Android's ImageClassifier and ML Kit, labels.txt " \
           "of 10 names" in capsys.readouterr().out
    # The same model, the same bytes (the labels' zip entry carries no clock time).
    first = (tmp_path / "f.tflite").read_bytes()
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f"), "--file_format", "TFLITE"]) == 0
    assert (tmp_path / "f.tflite").read_bytes() == first


def test_softmax_tflite_gives_the_probabilities_which_eval_and_predict_read_as_the_checkpoints(tmp_path, cifar_dir,
                                                                                               capsys):
    """export --file_format TFLITE --softmax True: a SOFTMAX after the logits, the file's output (its signature's
    and the Task Library's, named probabilities) the model's probabilities, which Android's Task Library and ML Kit
    hand an app as its scores; predict and eval give the checkpoint's probabilities and predictions from it (read
    back as log-probabilities), info says so; quantize --tflite keeps the softmax after its INT8 logits; other
    formats refuse the option, naming it."""
    from mobilenet_v1.onnx_io import read_metadata as decoded

    model, ckpt = named_classes_checkpoint(tmp_path)
    for name, extra in (("s", []), ("l", ["--softmax", "False"]), ("spx", ["--image_input", "True"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--file_format", "TFLITE",
                         *(["--softmax", "True"] if name.startswith("s") else []), *extra]) == 0
    out = capsys.readouterr().out
    assert "output the probabilities (softmax)) from" in out
    assert "LiteRT vs PyTorch, largest log-probability difference: batch 1:" in out
    x = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(4)) * 3
    with torch.no_grad():
        want = torch.softmax(model.eval()(x), 1)
    nhwc = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    got = run_tflite(tmp_path / "s.tflite", nhwc)
    assert abs(float(got.sum()) - 1) < 1e-5 and float(np.abs(got - want.numpy()).max()) < 1e-5
    assert want.max() < 0.99  # probabilities that say something, not one class at 1
    assert float(np.abs(torch.softmax(torch.from_numpy(run_tflite(tmp_path / "l.tflite", nhwc)), 1).numpy()
                        - got).max()) < 1e-6  # the float file's logits, then the softmax
    interpreter = Interpreter(model_path=str(tmp_path / "s.tflite"))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["input"], "outputs": ["probabilities"]}}
    assert json.loads(read_metadata(str(tmp_path / "s.tflite")))["output"] == "probabilities"
    assert "output" not in json.loads(read_metadata(str(tmp_path / "l.tflite")))
    assert support_metadata_of(tmp_path / "s.tflite")["output"] == "probabilities"
    assert support_metadata_of(tmp_path / "l.tflite")["output"] == "logits"
    with pytest.raises(ValueError, match="its metadata entry output 'scores' is not logits or probabilities"):
        decoded({"output": "scores"})
    # The same top 3 and probabilities as the checkpoint, the same counts in eval, from floats and from pixels.
    predicted_and_evaluated_as_the_checkpoint(ckpt, [str(tmp_path / n) for n in ("s.tflite", "spx.tflite")],
                                              cifar_dir, tmp_path, capsys, tolerance=1e-4)
    assert cli.main(["info", str(tmp_path / "s.tflite")]) == 0
    assert "output:         10 classes, their probabilities (a softmax in the file)" in capsys.readouterr().out
    # Many classes on a small input: the softmax's input and output are the file's activation peak, as counted.
    from mobilenet_v1.info import peak_activations
    from mobilenet_v1.tflite_io import activation_peak

    net = fold_batchnorm(MobileNetV1(class_num=1001, width_mult=0.25)).eval()
    (tmp_path / "many.tflite").write_bytes(to_tflite(net, 16, 16, 1, {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD),
                                                                      "output": "probabilities"}))
    assert peak_activations(0.25, 16, 1001, softmax=True) == (2 * 1001, "softmax")
    assert activation_peak(str(tmp_path / "many.tflite")) == (4 * 2 * 1001, "operator 29, SOFTMAX")
    # INT8: the softmax of its own (int8, dequantized) logits, in float: the logits file's INT8 form, then softmax.
    for name in ("s", "l"):
        assert cli.main(["quantize", "--tflite", str(tmp_path / f"{name}.tflite"), "--calib_data", str(cifar_dir),
                         "--out", str(tmp_path / f"{name}_int8.tflite"), "--calib_images", "32"]) == 0
    q_probs, q_logits = (run_tflite(tmp_path / f"{name}_int8.tflite", nhwc) for name in ("s", "l"))
    assert abs(float(q_probs.sum()) - 1) < 1e-5
    assert float(np.abs(torch.softmax(torch.from_numpy(q_logits), 1).numpy() - q_probs).max()) < 1e-6
    assert json.loads(read_metadata(str(tmp_path / "s_int8.tflite")))["output"] == "probabilities"
    capsys.readouterr()
    for fmt in ("ONNX", "PT2", "PTE"):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "n"), "--file_format", fmt,
                         "--softmax", "True"]) == 1
        assert "--softmax True: is for --file_format TFLITE" in capsys.readouterr().err
        assert not (tmp_path / f"n.{fmt.lower()}").exists()
    # With float16 weights, for a batch of 2: the rounded model's probabilities, each row summing to 1.
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "sh"), "--file_format", "TFLITE",
                     "--softmax", "True", "--float16", "True", "--batch_size", "2"]) == 0
    got = run_tflite(tmp_path / "sh.tflite", np.ascontiguousarray(np.concatenate([nhwc, -nhwc])))
    assert np.allclose(got.sum(1), 1, atol=1e-5) and float(np.abs(got[:1] - want.numpy()).max()) < 1e-2


def test_a_softmax_tflite_ranks_no_class_whose_probability_underflowed(tmp_path, cifar_dir, capsys):
    """Logits more than about 87 apart: in a --softmax True file every class but the first has probability 0 in
    float32, all tied. eval counts none of them as a top-5 hit (a tie to the lower index made classes 0 to 3 hits
    on every image, top-5 1.0 against the checkpoint's 0.6), and predict shows their probability as 0; the top-1
    is the checkpoint's."""
    model, _ = named_classes_checkpoint(tmp_path)
    with torch.no_grad():
        model.fc.weight.mul_(300)
        model.fc.bias.mul_(300)
    ckpt = str(tmp_path / "big.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 40},
                         "classes": [f"c{i}" for i in range(10)]}, ckpt)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "big"), "--file_format", "TFLITE",
                     "--softmax", "True"]) == 0
    scores = []
    for path in (ckpt, str(tmp_path / "big.tflite")):
        capsys.readouterr()
        assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", path, "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    (checkpoint, deployed) = scores
    assert deployed["top_1_accuracy"] == checkpoint["top_1_accuracy"]
    # Per image (eval --per_image): the label's probability where it underflowed is 0, as in the file.
    from mobilenet_v1.engine import evaluate

    deployed_model = load_tflite(str(tmp_path / "big.tflite"))
    x = torch.randn(6, 3, 40, 40, generator=torch.Generator().manual_seed(6))
    labels = deployed_model(x).argmin(dim=1)  # a class the file gives 0
    samples = evaluate(deployed_model, [(x, labels)], torch.device("cpu"), per_sample=True)["samples"]
    assert samples["label_probability"].tolist() == [0.0] * 6 and samples["top1_probability"].min() > 0.5
    assert checkpoint["top_5_accuracy"] < 0.9 and deployed["top_5_accuracy"] <= checkpoint["top_5_accuracy"]
    from mobilenet_v1.predict import load_predictor
    from PIL import Image

    # An image whose second and third classes are more than 87 logits below the first (in the checkpoint: under
    # float32's smallest normal probability), the first of a few drawn.
    image = tmp_path / "i.png"
    for seed in range(20):
        pixels = torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
        Image.fromarray(pixels.numpy()).save(image)
        if max(t["probability"] for t in load_predictor(ckpt).top_k([str(image)], 3)[0]["top_k"][1:]) < 1e-38:
            break
    else:
        raise AssertionError("no drawn image had its second class's probability underflow")
    top = load_predictor(str(tmp_path / "big.tflite")).top_k([str(image)], 3)[0]["top_k"]
    assert top[0]["probability"] == 1.0 and [t["probability"] for t in top[1:]] == [0.0, 0.0]


def test_quantize_tflite_int8_io_takes_and_gives_int8_levels_as_microcontrollers_run_it(tmp_path, cifar_dir, capsys,
                                                                                        monkeypatch):
    """quantize --tflite --int8_io True: the same full-integer graph without QUANTIZE in front nor DEQUANTIZE behind,
    as TensorFlow Lite for Microcontrollers runs it: the input the normalised values' int8 levels, the output the
    logits' (or, after a softmax, TensorFlow Lite's int8 probabilities at 1/256), their scales and zero points in
    the file. Fed the levels of the float file's QUANTIZE, it gives the float-in INT8 file's logits exactly; eval,
    predict, info and benchmark feed and read it; it carries no Task Library metadata (which feeds uint8 or float);
    a pixel input or another format is refused, naming the option."""
    model, ckpt = named_classes_checkpoint(tmp_path)
    for name, extra in (("f", []), ("s", ["--softmax", "True"]), ("px", ["--image_input", "True"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), "--file_format", "TFLITE",
                         *extra]) == 0
    for name, source, io in (("q", "f", "False"), ("qi", "f", "True"), ("si", "s", "True")):
        assert cli.main(["quantize", "--tflite", str(tmp_path / f"{source}.tflite"), "--calib_data", str(cifar_dir),
                         "--out", str(tmp_path / f"{name}.tflite"), "--calib_images", "32", "--int8_io", io,
                         *(["--c_array", str(tmp_path / "qi.h")] if name == "qi" else [])]) == 0
    assert f"wrote {tmp_path / 'qi.h'}: {tmp_path / 'qi.tflite'} as a C++ array" in capsys.readouterr().out
    codes = {}
    for name in ("q", "qi", "si"):
        written = schema.ModelT.InitFromPackedBuf(bytearray((tmp_path / f"{name}.tflite").read_bytes()), 0)
        codes[name] = {c.builtinCode for c in written.operatorCodes}
        if name != "q":
            assert [m.name for m in written.metadata] == [b"mobilenet_v1_json"]  # no TFLITE_METADATA
    ops = schema.BuiltinOperator
    assert {ops.QUANTIZE, ops.DEQUANTIZE} <= codes["q"]
    assert codes["qi"] == {ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.MEAN, ops.FULLY_CONNECTED}
    assert codes["si"] == codes["qi"] | {ops.SOFTMAX}
    interpreter = Interpreter(model_path=str(tmp_path / "qi.tflite"))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    (in_scale, in_zero), (out_scale, out_zero) = inp["quantization"], out["quantization"]
    x = np.random.default_rng(3).standard_normal((1, 40, 40, 3)).astype(np.float32)
    # LiteRT's QUANTIZE (XNNPACK): times the float32 inverse of the scale, rounded half to even.
    levels = np.clip(np.rint(x * (np.float32(1) / np.float32(in_scale))) + in_zero, -128, 127).astype(np.int8)
    got = (run_tflite(tmp_path / "qi.tflite", levels).astype(np.float32) - out_zero) * out_scale
    assert np.array_equal(got, run_tflite(tmp_path / "q.tflite", x))  # the float-in file's QUANTIZE: the same levels
    # TfliteModel quantizes as that QUANTIZE does, values halfway between two levels too (a division in float64,
    # rounded half away from zero, put about a third of them on another level).
    halves = (torch.randint(-100, 100, (2, 3, 40, 40), generator=torch.Generator().manual_seed(5)) + 0.5) \
        * torch.tensor(in_scale, dtype=torch.float32)
    int8_in, float_in = load_tflite(str(tmp_path / "qi.tflite")), load_tflite(str(tmp_path / "q.tflite"))
    for batch in (halves, torch.from_numpy(x).permute(0, 3, 1, 2)):
        assert torch.equal(int8_in(batch), float_in(batch))
    probabilities = Interpreter(model_path=str(tmp_path / "si.tflite")).get_output_details()[0]["quantization"]
    assert probabilities == (1 / 256, -128)
    p = (run_tflite(tmp_path / "si.tflite", levels).astype(np.float32) + 128) / 256
    assert float(np.abs(p - torch.softmax(torch.from_numpy(got), 1).numpy()).max()) <= 1 / 256 + 1e-6
    # eval and predict quantize the normalised batch as the app does: the float-in file's predictions.
    scores = []
    for name in ("q", "qi", "si"):
        assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path",
                         str(tmp_path / f"{name}.tflite"), "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["top_1_accuracy"])
    assert scores[0] == scores[1] and abs(scores[2] - scores[1]) <= 0.1  # si: its probabilities tie at 1/256
    # --litert_kernels reference: LiteRT's reference kernels (whose arithmetic TensorFlow Lite for Microcontrollers'
    # kernels follow) run the file, as an interpreter made with them does; said, and refused for a checkpoint.
    from ai_edge_litert.interpreter import OpResolverType

    runner = Interpreter(model_path=str(tmp_path / "qi.tflite"),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    runner.allocate_tensors()
    batch = torch.from_numpy(x).permute(0, 3, 1, 2)
    reference_model = load_tflite(str(tmp_path / "qi.tflite"), reference=True)
    runner.set_tensor(inp["index"], reference_model.fed(batch))
    runner.invoke()
    assert np.array_equal(reference_model.invoke(reference_model.fed(batch)).numpy(),
                          (runner.get_tensor(out["index"]).astype(np.float32) - out_zero) * out_scale)
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", str(tmp_path / "qi.tflite"),
                     "--litert_kernels", "reference", "--json"]) == 0
    printed, err = capsys.readouterr()
    assert json.loads(printed.strip().splitlines()[-1])["kernels"] == "LiteRT's reference kernels"
    assert "ran on LiteRT's reference kernels" in err
    assert cli.main(["eval", "--dataset_path", str(cifar_dir), "--checkpoint_path", ckpt, "--litert_kernels",
                     "reference"]) == 1
    assert "--litert_kernels reference: is for .tflite files" in capsys.readouterr().err
    from PIL import Image

    from mobilenet_v1.predict import load_predictor

    image = tmp_path / "i.png"
    Image.fromarray(torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()).save(image)
    q, qi = (load_predictor(str(tmp_path / f"{name}.tflite")).top_k([str(image)], 3)[0]["top_k"]
             for name in ("q", "qi"))
    assert [t["index"] for t in q] == [t["index"] for t in qi]
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(q, qi)) < 1e-6
    # Its tensor arena's floor, read off the file: the network's peak in int8 (the float file's in float32).
    from mobilenet_v1.info import peak_activations
    from mobilenet_v1.tflite_io import activation_peak

    values, where = peak_activations(0.25, 40, 10)
    assert activation_peak(str(tmp_path / "qi.tflite")) == (values, "operator 2, CONV_2D") and where == "layer 2"
    assert activation_peak(str(tmp_path / "f.tflite"))[0] == 4 * values
    assert cli.main(["info", str(tmp_path / "si.tflite")]) == 0
    said = capsys.readouterr().out
    assert f"activations:    {values / 1024:.1f} KiB at most at once (operator 2, CONV_2D: its inputs and " in said
    assert f"input:          int8 (1, 40, 40, 3) NHWC, the normalised values' levels at scale {in_scale:.9g}, zero " \
           f"point {in_zero}\n" in said and "int8 levels at scale 0.00390625, zero point -128" in said
    assert cli.main(["info", str(tmp_path / "si.tflite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_levels"] == {"scale": in_scale, "zero_point": in_zero}
    from mobilenet_v1.tflite_io import TfliteModel

    fed, real_fed = [], TfliteModel.fed  # benchmark times the file on its input as it takes it, made once before
    monkeypatch.setattr(TfliteModel, "fed", lambda self, batch: fed.append(batch.shape) or real_fed(self, batch))
    assert cli.main(["benchmark", str(tmp_path / "qi.tflite"), "--seconds", "0.2", "--rounds", "2", "--warmup", "1",
                     "--threads", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["input"] == "int8 (1, 40, 40, 3) NHWC"
    assert fed == [(1, 3, 40, 40)]
    # The C++ header of --c_array: the file's bytes 16-byte aligned, its input's levels, the arena's floor, the
    # names. Compiled and run where a C++ compiler is (the development machines have g++), else read back here.
    import re
    import shutil

    header = (tmp_path / "qi.h").read_text()
    body = header[header.index("mobilenet_v1_model[] = {"):header.index("};", header.index("mobilenet_v1_model[]"))]
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", body)) == (tmp_path / "qi.tflite").read_bytes()
    assert f"#define MOBILENET_V1_INPUT_ZERO_POINT ({in_zero})" in header
    assert "alignas(16) const unsigned char mobilenet_v1_model[]" in header
    assert float(re.search(r"MOBILENET_V1_INPUT_SCALE (\S+)f", header).group(1)) == pytest.approx(in_scale, rel=1e-7)
    assert f"#define MOBILENET_V1_ACTIVATION_BYTES {values}  //" in header and '"c3"' in header
    if shutil.which("g++"):
        (tmp_path / "dump.cc").write_text(
            '#include <cstdio>\n#include "qi.h"\nint main() {\n  FILE* f = fopen("back.tflite", "wb");\n'
            '  fwrite(mobilenet_v1_model, 1, mobilenet_v1_model_len, f);\n  fclose(f);\n'
            '  return (reinterpret_cast<unsigned long>(mobilenet_v1_model) % 16 != 0)'
            ' + (MOBILENET_V1_INPUT_HEIGHT != 40) + (MOBILENET_V1_CLASSES != 10);\n}\n')
        subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", "-o", "dump", "dump.cc"], cwd=tmp_path, check=True)
        subprocess.run(["./dump"], cwd=tmp_path, check=True)
        assert (tmp_path / "back.tflite").read_bytes() == (tmp_path / "qi.tflite").read_bytes()
    assert cli.main(["quantize", "--tflite", str(tmp_path / "f.tflite"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.tflite"), "--c_array", str(tmp_path / "n.txt")]) == 1
    assert "--c_array " in capsys.readouterr().err and not (tmp_path / "n.tflite").exists()
    # --out's own name: said as the output it is, not as "the file this command reads" (helper-286).
    assert cli.main(["quantize", "--tflite", str(tmp_path / "f.tflite"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.tflite"), "--c_array", str(tmp_path / "." / "n.tflite")]) == 1
    assert "is --out's file, the INT8 .tflite; name the C++ array another file (F.h)" in capsys.readouterr().err
    # The eval quantize suggests reads the folder given, or, for the seed's training folder, the one that holds it
    # and its evaluation split (the folder given was refused by eval).
    from mobilenet_v1.quantize import eval_path

    assert eval_path(str(cifar_dir / "cifar-10-batches-bin"), "cifar10") == str(cifar_dir)
    assert eval_path(str(cifar_dir), "cifar10") == str(cifar_dir)
    assert eval_path(str(tmp_path / "photos" / "train"), "imagenet2012") == str(tmp_path / "photos" / "train")
    assert cli.main(["quantize", "--tflite", str(tmp_path / "px.tflite"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.tflite"), "--int8_io", "True"]) == 1
    assert "--int8_io True: " in capsys.readouterr().err and not (tmp_path / "n.tflite").exists()
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f")]) == 0
    assert cli.main(["quantize", "--onnx", str(tmp_path / "f.onnx"), "--calib_data", str(cifar_dir), "--out",
                     str(tmp_path / "n.onnx"), "--int8_io", "True"]) == 1
    assert "--int8_io True: is for --tflite" in capsys.readouterr().err and not (tmp_path / "n.onnx").exists()


def test_benchmark_makes_and_times_the_three_tflite_forms_of_a_network(tmp_path, capsys, monkeypatch):
    """benchmark --width_mult --formats tflite,tflite_fp16,tflite_int8: the network's float, float16-weight and
    full-integer .tflite, made as export and quantize make them, timed in LiteRT, described by their weights, the
    float16 file about half the float one, the INT8 a quarter; the temporary folder removed."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert cli.main(["benchmark", "--width_mult", "0.25", "--image_size", "32", "--formats",
                     "tflite,tflite_fp16,tflite_int8", "--class_num", "10", "--seconds", "0.1", "--rounds", "1",
                     "--warmup", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["file"] for r in rows] == ["mobilenet_v1_0.25_32.tflite", "mobilenet_v1_0.25_32_fp16.tflite",
                                         "mobilenet_v1_0.25_32_int8.tflite"]
    assert rows[0]["weights"] == "fp32" and rows[1]["weights"].startswith("float16 weights") and \
        rows[2]["weights"].startswith("INT8 full-integer")
    assert rows[1]["bytes"] < 0.55 * rows[0]["bytes"] and rows[2]["bytes"] < 0.35 * rows[0]["bytes"]
    assert all(r["median_ms"] > 0 for r in rows) and os.listdir(tmp_path) == []


@pytest.mark.filterwarnings("ignore:Warning. Enabling .experimental_preserve_all_tensors")
def test_quantize_tflite_keeps_a_dead_channels_bias_which_at_its_weights_scale_overflows_int32(tmp_path):
    """A channel whose BatchNorm gamma is all but 0 (dead channels of trained depthwise layers) is its bias,
    0.8 here, whose level at its near-0 weights' scale is some 4e10: the int8 file widens that channel's weight
    scale until the bias sits in the middle half of int32's range (the converter's rule), so LiteRT's layer
    gives 0.8 there too. (Written as int32 unwidened, the level wrapped around to -1.3e9: the layer gave 0.)"""
    from mobilenet_v1.tflite_quant import quantize_tflite

    torch.manual_seed(0)
    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=5)
    with torch.no_grad():
        model.network[5][1].weight[3] = 1e-7
        model.network[5][1].bias[3] = 0.8
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 40}}, ckpt)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f"), "--file_format",
                     "TFLITE"]) == 0
    x = torch.randn(8, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    quantize_tflite(str(tmp_path / "f.tflite"), str(tmp_path / "q.tflite"), iter([(x, torch.zeros(8))]))
    interpreter = Interpreter(model_path=str(tmp_path / "q.tflite"), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {d["name"]: d for d in interpreter.get_tensor_details()}
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           np.ascontiguousarray(x[:1].permute(0, 2, 3, 1).numpy()))
    interpreter.invoke()
    levels = interpreter.get_tensor(tensors["layer5_bias"]["index"])
    assert 2 ** 29 < levels[3] <= 2 ** 30 * (1 + 1e-6) and np.abs(np.delete(levels, 3)).max() < 2 ** 20
    out, q = interpreter.get_tensor(tensors["layer5"]["index"]), tensors["layer5"]["quantization_parameters"]
    dead = (out[0, ..., 3].astype(np.float32) - q["zero_points"][0]) * q["scales"][0]
    assert np.abs(dead - 0.8).max() <= q["scales"][0]  # within a level of the float model's 0.8
    with torch.no_grad():
        assert float((model.eval().network[:6](x[:1])[0, 3] - 0.8).abs().max()) < 1e-4


def test_a_pixel_input_tflites_activation_peak_names_the_earlier_operator_of_a_tie(tmp_path):
    """At 40x40 a BGR file's MUL and ADD (normalising the pixels, float32 in and out) move as many bytes as layer 2
    (8 channels in, 16 out, at 20x20): its peak is named by the first of them, MUL, as info.peak_activations names
    the earlier operator of a tie."""
    from mobilenet_v1.tflite_io import activation_peak, build_graph, write_flatbuffer

    graph = build_graph(fold_batchnorm(MobileNetV1(class_num=10, width_mult=0.25).eval()), 40, 40, 1,
                        list(CIFAR_MEAN), list(CIFAR_STD), "BGR")
    (tmp_path / "bgr.tflite").write_bytes(write_flatbuffer(graph, {}, "BGR pixels"))
    assert activation_peak(str(tmp_path / "bgr.tflite")) == (2 * 40 * 40 * 3 * 4, "operator 1, MUL")
    assert 2 * 40 * 40 * 3 == (20 * 20 * 8 + 20 * 20 * 16)  # layer 2's values: the tie


def test_quantize_tflite_keeps_the_batch_the_float_file_fixes(tmp_path, capsys):
    """A float .tflite exported with --batch_size 3 takes batches of 3: its INT8 file does too (not batches of 1,
    which an app feeding it 3 images at once could not run), and eval's cutting of 7 images into 3 + 3 + 1
    padded gives 7 rows."""
    from mobilenet_v1.tflite_quant import quantize_tflite

    model, ckpt = named_classes_checkpoint(tmp_path)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f3"), "--file_format", "TFLITE",
                     "--batch_size", "3"]) == 0
    x = torch.randn(7, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    quantize_tflite(str(tmp_path / "f3.tflite"), str(tmp_path / "q3.tflite"), iter([(x, torch.zeros(7))]))
    assert list(Interpreter(model_path=str(tmp_path / "q3.tflite")).get_input_details()[0]["shape"]) == [3, 40, 40, 3]
    int8 = load_tflite(str(tmp_path / "q3.tflite"))
    assert int8.fixed_batch == 3 and int8(x).shape == (7, 10)


def test_quantize_tflite_puts_each_calibrated_range_on_int8s_levels_and_the_float_weights_within_half_a_level(
        tmp_path):
    """The INT8 file's grids, as TensorFlow Lite's full-integer quantization makes them: the input's range over the
    calibration images, widened to hold 0, spans int8's 256 levels (level -128 its lowest value, 127 its highest;
    an input of positive values only starts at real 0, level -128); a ReLU6 layer's output and the pooled features
    run from level -128 (real 0) to 127 (their largest value); each weight and bias is its float value's nearest
    level, the weights at their channel's largest magnitude / 127 (level 127 reached in every channel), the biases
    at the input's scale times the weights'."""
    from mobilenet_v1.tflite_quant import quantize_tflite

    model = randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=5)
    ckpt = str(tmp_path / "m.ckpt")
    ckpt_io.atomic_save({"model": model.state_dict(), "config": {"dataset": "cifar10", "image_size": 40}}, ckpt)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "f"), "--file_format",
                     "TFLITE"]) == 0
    x = torch.randn(8, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    float_file = Interpreter(model_path=str(tmp_path / "f.tflite"))
    floats = {d["name"]: float_file.get_tensor(d["index"]) for d in float_file.get_tensor_details()
              if d["name"].endswith(("_weights", "_bias"))}
    for name, calibration in (("q", x), ("positive", x.abs() + 0.5)):
        quantize_tflite(str(tmp_path / "f.tflite"), str(tmp_path / f"{name}.tflite"),
                        iter([(calibration, torch.zeros(8))]))
    interpreter = Interpreter(model_path=str(tmp_path / "positive.tflite"))
    q = next(d for d in interpreter.get_tensor_details() if d["name"] == "input_int8")["quantization_parameters"]
    assert list(q["zero_points"]) == [-128] and (127 + 128) * q["scales"][0] == pytest.approx(float(x.abs().max())
                                                                                               + 0.5, rel=1e-6)
    interpreter = Interpreter(model_path=str(tmp_path / "q.tflite"))
    tensors = {d["name"]: d for d in interpreter.get_tensor_details()}

    def grid(name):
        q = tensors[name]["quantization_parameters"]
        return q["scales"], q["zero_points"]

    (scale,), (zero,) = grid("input_int8")
    assert abs((-128 - zero) * scale - float(x.min())) <= scale / 2 and abs((127 - zero) * scale - float(x.max())) \
        <= scale / 2
    with torch.no_grad():
        outputs = [model.eval().network[:k + 1](x) for k in range(len(model.network))]
        pooled = float(outputs[-1].mean(dim=(2, 3)).max())
    for name, largest in [(f"layer{k}", float(out.max())) for k, out in enumerate(outputs)] + [("pooled", pooled)]:
        (scale,), (zero,) = grid(name)
        assert zero == -128 and 255 * scale == pytest.approx(largest, rel=1e-4), name
    for k in [*range(len(model.network)), "fc"]:
        prefix = f"layer{k}" if k != "fc" else "fc"
        levels = interpreter.get_tensor(tensors[f"{prefix}_weights"]["index"]).astype(np.float64)
        scales, zeros = grid(f"{prefix}_weights")
        axis = 3 if k != "fc" and model.network[k][0].groups > 1 else 0
        shape = [1] * levels.ndim
        shape[axis] = -1
        assert not zeros.any() and np.abs(levels - floats[f"{prefix}_weights"] / scales.reshape(shape)).max() <= 0.5
        assert (np.abs(np.moveaxis(levels, axis, 0)).reshape(len(scales), -1).max(axis=1) == 127).all(), prefix
        bias_scales, _ = grid(f"{prefix}_bias")
        input_scale = grid(f"layer{k - 1}" if k not in (0, "fc") else "input_int8" if k == 0 else "pooled")[0][0]
        assert np.allclose(bias_scales, input_scale * scales, rtol=1e-6), prefix
        bias = interpreter.get_tensor(tensors[f"{prefix}_bias"]["index"]).astype(np.float64)
        assert np.abs(bias - floats[f"{prefix}_bias"] / bias_scales).max() <= 0.5 + 1e-6, prefix


def test_tflite_operators_carry_the_options_table_of_their_own_kind():
    """Each operator's builtin_options is the union member schema.fbs gives its op (read back with LiteRT's own
    schema module): the CAST of an image input takes CastOptions (37), not MaximumMinimumOptions (39), which
    LiteRT's x86 kernels never look at but converters and other readers take as written."""
    model = MobileNetV1(class_num=10, width_mult=0.25, padding="symmetric").eval()
    data = to_tflite(fold_batchnorm(model), 33, 35, 1, {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD)}, "RGBA")
    read = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    members = {v: k for k, v in vars(schema.BuiltinOptions).items() if not k.startswith("_")}
    own = {"CAST": "CastOptions", "MUL": "MulOptions", "ADD": "AddOptions", "PAD": "PadOptions",
           "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "MEAN": "ReducerOptions",
           "FULLY_CONNECTED": "FullyConnectedOptions"}
    written = {(ops[read.operatorCodes[op.opcodeIndex].builtinCode], members[op.builtinOptionsType])
               for op in read.subgraphs[0].operators}
    assert written == set(own.items())
    cast = next(op for op in read.subgraphs[0].operators
                if read.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.CAST)
    assert (cast.builtinOptions.inDataType, cast.builtinOptions.outDataType) == \
        (schema.TensorType.UINT8, schema.TensorType.FLOAT32)


def test_tflite_runs_with_stderr_closed(tmp_path):
    """`mobilenet-v1 info F.tflite 2>&-` (Python's sys.stderr is then None, descriptor 2 closed): LiteRT's notes
    while it loads the file go nowhere (not into stdout), the description is printed, no traceback."""
    model = MobileNetV1(class_num=10, width_mult=0.25).eval()
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(fold_batchnorm(model), 32, 32, 1, {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD),
                                                                    "dataset": "cifar10"}))
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    p = subprocess.run([sys.executable, "-m", "mobilenet_v1", "info", str(path)], stdout=subprocess.PIPE, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=src), preexec_fn=lambda: os.close(2))
    assert p.returncode == 0 and "TensorFlow Lite file (.tflite)" in p.stdout and "Traceback" not in p.stdout, p.stdout
    assert "XNNPACK" not in p.stdout


def test_benchmark_memory_imports_litert_before_its_baseline_for_a_tflite_file_by_its_content(tmp_path, capsys,
                                                                                               monkeypatch, one_thread):
    """benchmark --memory's process imports a file's runtime before it measures its baseline, so that the
    library's own memory is not the file's: a TensorFlow Lite file is known by its content (TFL3), as load_subject
    knows it, whatever its name (here .bin), as an ONNX file is."""
    model = MobileNetV1(class_num=10, width_mult=0.25).eval()
    path = tmp_path / "model.bin"
    path.write_bytes(to_tflite(fold_batchnorm(model), 32, 32, 1, {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD)}))
    imported = []
    real = benchmark.importlib.import_module
    monkeypatch.setattr(benchmark.importlib, "import_module", lambda name, *a: imported.append(name) or real(name, *a))
    assert benchmark.memory_child(json.dumps({"path": str(path), "calls": 1, "threads": 1, "asked": False})) == 0
    assert "mobilenet-v1 memory: " in capsys.readouterr().out
    assert "ai_edge_litert.interpreter" in imported


def test_a_tflites_metadata_is_read_without_a_copy_of_the_file_in_memory(tmp_path):
    """The metadata was read from a copy of the whole file (two, briefly), which benchmark --memory counted in a
    .tflite's peak: 32 of 46 MB for a 17 MB file. An empty file holds none."""
    import tracemalloc

    from mobilenet_v1.tflite_io import metadata_entries

    model = MobileNetV1(class_num=10, width_mult=0.5).eval()
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(fold_batchnorm(model), 32, 32, 1, {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD),
                                                                    "dataset": "cifar10"}))
    metadata_entries(str(path))  # flatbuffers imported
    tracemalloc.start()
    try:
        entries = metadata_entries(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert json.loads(entries["mobilenet_v1_json"])["dataset"] == "cifar10"
    assert peak < os.path.getsize(path) / 4, (peak, os.path.getsize(path))
    (tmp_path / "empty.tflite").write_bytes(b"")
    assert metadata_entries(str(tmp_path / "empty.tflite")) == {}
    # A file that cannot be mapped (a pipe) is read
    import threading

    os.mkfifo(tmp_path / "pipe.tflite")
    writer = threading.Thread(target=lambda: (tmp_path / "pipe.tflite").write_bytes(path.read_bytes()))
    writer.start()
    assert metadata_entries(str(tmp_path / "pipe.tflite")) == entries
    writer.join()


def test_a_missing_or_foreign_tflite_or_pte_is_named_as_its_kind(tmp_path):
    """The .tflite and .pte readers refuse a path that is no file, or a file of another kind, naming it as the
    file they read (DeployedModel._named_file, one check for both)."""
    from mobilenet_v1.checkpoint import CheckpointError
    from mobilenet_v1.onnx_io import ExecutorchModel
    from mobilenet_v1.tflite_io import TfliteModel

    other = tmp_path / "other.bin"
    other.write_bytes(b"\0" * 64)
    for reader, kind, foreign in ((TfliteModel, "TensorFlow Lite file", "not a .tflite file (its bytes 4 to 7 are "
                                   "not TFL3)"),
                                  (ExecutorchModel, "ExecuTorch program", "not an ExecuTorch program (its bytes 4 to "
                                   "7 are not a .pte file's identifier, ET and two digits)")):
        with pytest.raises(CheckpointError) as e:
            reader(str(tmp_path / "missing"), name="shown.x")
        assert str(e.value) == f"{kind} shown.x: no such file"
        with pytest.raises(CheckpointError) as e:
            reader(str(other))
        assert str(e.value) == f"{kind} {other}: {foreign}"


def test_c_array_class_names_are_string_literals_of_their_utf8_bytes_that_compilers_take(tmp_path):
    """--c_array's class names: a character past U+FFFF (an emoji in a folder's name) was JSON's surrogate
    pair, which g++ refuses ("\\ud83d is not a valid universal character"); quotes, backslashes, control
    characters and trigraphs ("??=") stay the name's bytes: read back here, and compiled as C++ (c_array's header)
    and C (the literals) where g++ and gcc are."""
    import shutil

    from mobilenet_v1.tflite_io import c_string

    names = ["fish 🐟", 'say "hi"', "back\\slash", "what??=", "dög é", "tab\tnew\nline", "1\x002", "日本",
             b"caf\xe9".decode("utf-8", "surrogateescape"), "rub\x7fout"]  # DEL: a control character too
    literals = [c_string(n) for n in names]
    assert all(re.fullmatch(r'"([ -~])*"', lit) and "\\u" not in lit for lit in literals)  # ASCII, no \u

    def read_back(literal):  # the C escapes c_string writes: \" \\ \? and three octal digits
        out, body, k = bytearray(), literal[1:-1], 0
        while k < len(body):
            if body[k] == "\\":
                if body[k + 1] in '"\\?':
                    out.append(ord(body[k + 1]))
                    k += 2
                else:
                    out.append(int(body[k + 1:k + 4], 8))
                    k += 4
            else:
                out.append(ord(body[k]))
                k += 1
        return bytes(out)

    want = [n.encode("utf-8", "surrogateescape") for n in names]
    assert [read_back(lit) for lit in literals] == want
    # c_array's header (TensorFlow Lite for Microcontrollers' C++) with those names, as file_labels gives them
    # for the file's metadata; and the literals alone in C.
    from mobilenet_v1.tflite_io import c_array, file_labels

    meta = {"mean": list(CIFAR_MEAN), "std": list(CIFAR_STD), "classes": names, "class_num": len(names)}
    # The file's name is in the header's first comment: a line break there ended it, the rest of the name code
    # (helper-329).
    model_file = tmp_path / "n\nline.tflite"
    model_file.write_bytes(to_tflite(fold_batchnorm(MobileNetV1(class_num=len(names), width_mult=0.25)), 16, 16, 1,
                                     meta))
    header = c_array(str(model_file))
    assert header.startswith('// "n\\012line.tflite" of mobilenet-v1 as a C++ array')
    labels = [n.encode("utf-8", "surrogateescape") for n in file_labels(meta)]
    assert ", ".join(c_string(n) for n in file_labels(meta)) in header and labels[0] == want[0]
    (tmp_path / "n.h").write_text(header)
    programs = {"cc": ("g++", "-std=c++11", '#include "n.h"\n#define NAMES mobilenet_v1_labels\n', labels),
                "c": ("gcc", "-std=c99", "static const char* const names[] = {" + ", ".join(literals) + "};\n"
                      "#define NAMES names\n", want)}
    for suffix, (compiler, std, head, expected) in programs.items():
        if not shutil.which(compiler):
            continue
        (tmp_path / f"names.{suffix}").write_text(
            "#include <stdio.h>\n" + head + "static const int sizes[] = {" + ", ".join(str(len(w)) for w in expected)
            + "};\nint main(void) {\n  FILE* f = fopen(\"names.bin\", \"wb\");\n  for (int i = 0; i < "
            + str(len(expected)) + "; i++) fwrite(NAMES[i], 1, sizes[i], f);\n  fclose(f);\n  return 0;\n}\n")
        subprocess.run([compiler, std, "-Wall", "-Werror", "-trigraphs", "-o", "names", f"names.{suffix}"],
                       cwd=tmp_path, check=True)
        subprocess.run(["./names"], cwd=tmp_path, check=True)
        assert (tmp_path / "names.bin").read_bytes() == b"".join(expected)
