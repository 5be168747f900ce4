"""Shipping to phones: ExecuTorch programs (.pte, XNNPACK), written by export and run by eval and predict."""
import json
import logging
import os
import sys

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli
from mobilenet_v1.checkpoint import CheckpointError
from mobilenet_v1.model import MobileNetV1
from mobilenet_v1.onnx_io import PTE_METADATA, ExecutorchModel, executorch_runtime, is_deployed_file
from mobilenet_v1.predict import load_predictor
from mobilenet_v1.transforms import CIFAR_MEAN, CIFAR_STD, Normalize

from test_deploy import (named_classes_checkpoint, predicted_and_evaluated_as_the_checkpoint, randomise_batchnorm,
                         saved_checkpoint)


def run_pte(path, x):
    """The program's logits of ``x``, straight from ExecuTorch's runtime (not through ExecutorchModel)."""
    program = executorch_runtime().load_program(str(path))
    return program, program.load_method("forward").execute([x])[0]


def test_pte_export_is_the_model_on_xnnpack_and_eval_and_predict_run_it(tmp_path, cifar_dir, capsys):
    """--file_format PTE: the folded network lowered for ExecuTorch, delegated to XNNPACK, with our metadata
    as a constant method and the batch fixed at --batch_size; in ExecuTorch's runtime its logits are the
    model's. With --image_input it takes uint8 BGRA pixels. predict and eval run it as they run the
    checkpoint, a damaged file is refused naming it, and a command that needs a checkpoint says what a .pte
    is. A quantization-aware checkpoint is refused (its forms are the INT8 ONNX and TFLite files)."""
    model, ckpt = named_classes_checkpoint(tmp_path)
    handlers = list(logging.getLogger().handlers)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format", "pte",
                     "--batch_size", "3"]) == 0
    out = capsys.readouterr().out
    assert "input (3, 3, 40, 40), batch fixed) from" in out
    assert "ExecuTorch (XNNPACK) vs PyTorch, largest logit difference: batch 3:" in out
    data = (tmp_path / "m.pte").read_bytes()
    assert data[4:6] == b"ET" and data[6:8].isdigit() and b"XnnpackBackend" in data  # XNNPACK runs the network
    x = torch.randn(3, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    program, got = run_pte(tmp_path / "m.pte", x)
    with torch.no_grad():
        want = model(x)
    assert want.abs().max() > 1.0 and (got - want).abs().max() <= 1e-4
    meta = json.loads(program.load_method(PTE_METADATA).execute([])[0])
    assert (meta["dataset"], meta["image_size"], meta["classes"][3]) == ("cifar10", 40, "c3")
    assert list(program.metadata("forward").input_tensor_meta(0).sizes()) == [3, 3, 40, 40]
    # ExecutorchModel cuts other batches into the program's: 7 = 3 + 3 + 1 padded.
    x7 = torch.randn(7, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (ExecutorchModel(str(tmp_path / "m.pte"))(x7) - model(x7)).abs().max() <= 1e-4

    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "pixels.pte"), "--file_format",
                     "PTE", "--image_input", "True", "--pixel_format", "BGRA"]) == 0
    pixels = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    bgra = torch.cat([pixels.flip(1), torch.full_like(pixels[:, :1], 255)], 1).permute(0, 2, 3, 1).contiguous()
    _, got = run_pte(tmp_path / "pixels.pte", bgra)
    with torch.no_grad():
        want = model(Normalize(CIFAR_MEAN, CIFAR_STD, torch.device("cpu"))(pixels))
    assert (got - want).abs().max() <= 1e-4

    # XNNPACK's float32 sums (in another order) move the probabilities by up to about 1e-5.
    image = predicted_and_evaluated_as_the_checkpoint(ckpt, [str(tmp_path / n) for n in ("m.pte", "pixels.pte")],
                                                      cifar_dir, tmp_path, capsys, tolerance=1e-4)

    # benchmark: each program in ExecuTorch on its own input, at the batch it was fixed at, XNNPACK's thread
    # pool at --threads; another batch is refused naming the file.
    from executorch.extension.pybindings import portable_lib

    pool, threads = portable_lib._threadpool_get_thread_count(), torch.get_num_threads()
    timing = ["--seconds", "0.2", "--rounds", "2", "--warmup", "1", "--threads", "1"]
    try:
        assert cli.main(["benchmark", str(tmp_path / "m.pte"), str(tmp_path / "pixels.pte"), *timing, "--json"]) == 0
        # The pool ran at --threads and is put back, as PyTorch's count is.
        assert portable_lib._threadpool_get_thread_count() == pool and torch.get_num_threads() == threads
        out, err = capsys.readouterr()
        got = json.loads(out)
        assert got["machine"]["executorch_threads"] == 1
        assert "threadpool" not in err.lower() and "cpuinfo" not in err  # ExecuTorch's notes on the reset
        assert cli.main(["benchmark", str(tmp_path / "m.pte"), "--batch_size", "1", *timing]) == 1
    finally:
        portable_lib._unsafe_reset_threadpool(pool)
        torch.set_num_threads(threads)
    assert f"--batch_size 1: {tmp_path / 'm.pte'} takes batches of 3 only" in capsys.readouterr().err
    assert [(r["runtime"], r["input"], r["weights"]) for r in got["results"]] == [
        ("ExecuTorch, XNNPACK", "float (3, 3, 40, 40)", "fp32"), ("ExecuTorch, XNNPACK", "uint8 BGRA (1, 40, 40, 4)",
                                                                  "fp32")]
    assert got["machine"]["executorch"] and got["results"][0]["images_per_s"] > 0

    # Damaged: cut short; not a program at all though named .pte (bytes that, handed to ExecuTorch, end the
    # process: its log of the identifier it found cannot be decoded); a .pte where a checkpoint is needed.
    (tmp_path / "cut.pte").write_bytes(data[: len(data) // 2])
    assert cli.main(["predict", image, "--ckpt_file", str(tmp_path / "cut.pte")]) == 1
    err = capsys.readouterr().err  # the reason is what ExecuTorch logged, not its error code
    assert f"ExecuTorch program {tmp_path / 'cut.pte'}: ExecuTorch cannot load it (File size is too small" in err
    (tmp_path / "junk.pte").write_bytes(bytes([0x1F, 0x8B, 8, 0, 0xFF, 0xFE, 0x80, 0x81]) + bytes(range(256)) * 4)
    assert cli.main(["predict", image, "--ckpt_file", str(tmp_path / "junk.pte")]) == 1
    assert "junk.pte: named .pte but not an ExecuTorch program" in capsys.readouterr().err
    (tmp_path / "ckpt.pte").write_bytes(open(ckpt, "rb").read())  # a checkpoint of another name is one
    assert load_predictor(str(tmp_path / "ckpt.pte")).top_k([image], 1)[0]["top_k"][0]["index"] == \
        load_predictor(ckpt).top_k([image], 1)[0]["top_k"][0]["index"]
    renamed = tmp_path / "m_program"
    renamed.write_bytes(data)
    assert is_deployed_file(str(renamed)) and not is_deployed_file(str(tmp_path / "ckpt.pte"))  # by content
    assert cli.main(["convert", str(tmp_path / "m.pte"), str(tmp_path / "m.safetensors")]) == 1
    assert "m.pte: an ExecuTorch program (export --file_format PTE), not a checkpoint" in capsys.readouterr().err

    qat = MobileNetV1(class_num=10, width_mult=0.25, qat=True)
    ckpt_io.atomic_save({"model": qat.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25, "qat": True},
                         "config": {"dataset": "cifar10", "image_size": 40}}, str(tmp_path / "qat.ckpt"))
    assert cli.main(["export", "--ckpt_file", str(tmp_path / "qat.ckpt"), "--file_name", str(tmp_path / "q"),
                     "--file_format", "PTE"]) == 1
    assert "is a quantization-aware checkpoint, whose deployable forms are its INT8 ONNX file" in \
        capsys.readouterr().err
    assert not (tmp_path / "q.pte").exists() and not (tmp_path / "m.safetensors").exists()
    # ExecuTorch's partitioner calls logging.basicConfig as it is imported: the root logger is left as it was.
    assert logging.getLogger().handlers == handlers


def test_without_executorch_a_pte_is_refused_saying_how_to_install_it(tmp_path, monkeypatch, capsys):
    """Where the executorch package is missing, export --file_format PTE and predict with a .pte say what
    to install, and write nothing; in the words of every missing extra, whether export's check before its work
    finds the package missing (torch 2.11's environment here, without it) or its runtime's import fails (its
    own words had said "ExecuTorch is not installed" where the check said "the executorch package").
    A runtime that is there and fails to import for another reason is named as such."""
    model = MobileNetV1(class_num=10, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "executorch" else
                        find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "executorch.runtime", None)  # import fails as if not installed
    said = ("the executorch package is not installed, which .pte files needs: pip install "
            "'mobilenet-v1[executorch]' (from a checkout: pip install -e '.[executorch]')")
    with pytest.raises(CheckpointError) as raised:
        executorch_runtime()
    assert str(raised.value) == said
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "m"), "--file_format", "PTE"]) == 1
    assert capsys.readouterr().err == f"mobilenet-v1 export: error: {said}\n"
    assert os.listdir(tmp_path) == ["m.ckpt"]
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)  # installed: what failed is said, not a package
    for broken in (Broken(), None) if find_spec("executorch") else ():  # None: a release without executorch.runtime
        monkeypatch.setitem(sys.modules, "executorch.runtime", broken)
        with pytest.raises(CheckpointError, match=r"^ExecuTorch's runtime cannot be imported \(.*(libbroken.so|"
                                                  r"executorch.runtime).*\), which writes and runs .pte files: "
                                                  r"pip install 'mobilenet-v1\[executorch\]'"):
            executorch_runtime()


class Broken:  # a module whose names fail to import: a native library that does not load
    def __getattr__(self, name):
        raise ImportError("libbroken.so: cannot open shared object file")


def test_a_runtime_that_fails_to_run_a_program_is_said_with_both_versions_naming_the_file(tmp_path, monkeypatch,
                                                                                           capsys):
    """pip installs the newest executorch beside any torch, and a runtime built for another PyTorch release
    fails on every input with a C++ stack (executorch 1.5.1 under torch 2.11: "tensor does not have a
    device"): export says so in one line naming the file it was writing and both versions, and writes nothing."""
    from importlib.metadata import version

    from executorch.runtime import Method

    model = MobileNetV1(class_num=10, width_mult=0.25)
    ckpt = saved_checkpoint(tmp_path, model)

    def execute(self, inputs, real=Method.execute):
        if not inputs:  # the metadata method, which takes no tensor, ran
            return real(self, inputs)
        raise RuntimeError("tensor does not have a device\nException raised from device_default at TensorImpl.h:1303")

    monkeypatch.setattr(Method, "execute", execute)
    out = str(tmp_path / "m.pte")
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", out, "--file_format", "PTE"]) == 1
    err = capsys.readouterr().err
    # (torch may log a line first, on its first import of ExecuTorch)
    err = err[err.index("mobilenet-v1 export: error:"):]
    assert err.startswith(f"mobilenet-v1 export: error: ExecuTorch program {out}: ExecuTorch {version('executorch')}'s "
                          f"runtime failed to run it under torch {torch.__version__} (tensor does not have a device); ")
    assert "TensorImpl" not in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_int8_programs_pad_on_the_int8_scale_and_keep_relu6_on_it():
    """What keeps our INT8 .pte as fast as timm's network (benchmarks/RESULTS.md): exported, ReLU6 is
    hardtanh, which the XNNPACK quantizer keeps on its input's scale (relu6_, which it does not know, ran in
    float between a dequantize and a quantize), and after conversion each SAME pad feeds its conv directly, with no
    requantization between (quantize._pads_on_int8), which XNNPACK takes as an int8 pad. The logits move
    by rounding only."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from mobilenet_v1.export import KeptDimsPool, fold_batchnorm
    from mobilenet_v1.quantize import _pads_on_int8

    model = KeptDimsPool(fold_batchnorm(randomise_batchnorm(MobileNetV1(class_num=10, width_mult=0.25), seed=3)))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=g)
    program = torch.export.export(model.eval(), (x,))
    targets = [str(n.target) for n in program.graph.nodes]
    assert targets.count("aten.hardtanh.default") == 27 and not any("relu6" in t for t in targets)
    prepared = prepare_pt2e(program.module(), XNNPACKQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True)))
    for _ in range(4):
        prepared(torch.randn(8, 3, 32, 32, generator=g))
    converted = convert_pt2e(prepared)
    images = torch.randn(16, 3, 32, 32, generator=g)
    with torch.no_grad():
        want = model(images)
        rounded = (torch.cat([converted(b) for b in images.split(2)]) - want).abs().mean()  # INT8's rounding
    pads = [n for n in converted.graph.nodes if n.target == torch.ops.aten.pad.default]
    assert len(pads) == 5  # the first conv and the four stride-2 depthwise convs on even sizes
    assert all("quantize_per_tensor" in str(next(iter(p.users)).target) for p in pads)
    _pads_on_int8(converted)
    first, *pads = [n for n in converted.graph.nodes if n.target == torch.ops.aten.pad.default]
    assert first.args[0].op == "placeholder"  # the input's pad, in float before the first quantize, stays
    assert len(pads) == 4 and all([str(u.target) for u in p.users] == ["aten.conv2d.default"] for p in pads)
    assert all("dequantize_per_tensor" in str(p.args[0].target) for p in pads)
    with torch.no_grad():
        # The padded convs now read their producers' int8 scale (coarser than the pads' own, which hold no
        # negatives), as the convs without a pad do: about as far from the float network as before, no further.
        assert (torch.cat([converted(b) for b in images.split(2)]) - want).abs().mean() <= 1.5 * rounded


def test_executorchs_native_log_is_taken_with_the_standard_error_closed(tmp_path):
    """`mobilenet-v1 info F.pte 2>&-`: Python's sys.stderr is then None and descriptor 2 closed; the capture of
    ExecuTorch's C++ log around a load failed at sys.stderr.flush(), and every .pte command with it. Its lines are
    taken as before, nothing else is written, and descriptor 2 is closed again after."""
    import subprocess

    code = ("import os\nfrom mobilenet_v1.onnx_io import _native_log\nlines = []\n"
            "with _native_log(lines):\n    os.write(2, b'[program.cpp:114] File size is too small\\n')\n"
            "print(lines)\ntry:\n    os.fstat(2)\nexcept OSError:\n    print('2 closed')\n")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    done = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=src), preexec_fn=lambda: os.close(2))
    assert done.returncode == 0 and done.stdout == "['File size is too small']\n2 closed\n", done
