"""INT8 accuracy after quantization-aware training, against calibrating a float model (static PTQ).

    python benchmarks/qat_accuracy.py --config_path configs/demo.yaml --checkpoint_path runs/demo/mobilenetv1-30_44.ckpt

From a trained float checkpoint, the same fine-tune twice (``--epochs`` at a constant ``--lr``, the
configuration's data and batch): once in float, then exported and quantized with calibration on
training images as ``mobilenet-v1 quantize`` does; once with ``--qat True``, then exported as its INT8
file, and as its INT8 ``.tflite`` (``export --file_format TFLITE``, run in LiteRT; where ``ai-edge-litert``
is installed). Both, and the starting checkpoint quantized without a fine-tune, are evaluated in ONNX
Runtime over every evaluation image, with the quantization-aware checkpoint's own (simulated) top-1 in
PyTorch beside its files'. ``--reduce_range``: 7-bit weights for all of them (x86 CPUs without VNNI; the output
says whether this CPU has it). ``--json FILE`` also writes the figures.
"""
import argparse
import importlib.util
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from common import emit_json  # noqa: E402
from mobilenet_v1 import evaluate, train  # noqa: E402
from mobilenet_v1.config import load_config  # noqa: E402
from mobilenet_v1.export import export_checkpoint  # noqa: E402
from mobilenet_v1.onnx_io import x86_without_vnni  # noqa: E402
from mobilenet_v1.quantize import DEFAULT_CALIB_IMAGES, calibration_loader, quantize_file  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of each fine-tune (3)")
    p.add_argument("--lr", type=float, default=0.005, help="the fine-tunes' constant learning rate (0.005)")
    p.add_argument("--calib_images", type=int, default=DEFAULT_CALIB_IMAGES)
    p.add_argument("--reduce_range", action="store_true", help="7-bit weights for every INT8 file")
    p.add_argument("--json", default=None)
    a, rest = p.parse_known_args(argv)
    cfg = load_config(rest)  # --config_path, --checkpoint_path, --dataset_path, ... as for 'mobilenet-v1 eval'
    if not cfg.checkpoint_path:
        p.error("--checkpoint_path: the trained float checkpoint to start from")
    data, skip = [], False
    for arg in rest:  # the arguments without --checkpoint_path and its value
        if not skip and not arg.startswith("--checkpoint_path"):
            data.append(arg)
        skip = arg == "--checkpoint_path"

    def top1(path: str) -> float:
        return evaluate.run(load_config(data + [f"--checkpoint_path={path}"]))["top_1_accuracy"]

    def calibrated(ckpt: str, tmp: str, name: str) -> str:
        fp32 = export_checkpoint(ckpt, os.path.join(tmp, name + "_fp32.onnx"))["path"]
        int8 = os.path.join(tmp, name + "_int8.onnx")
        quantize_file(fp32, int8, calibration_loader(cfg.dataset, cfg.dataset_path, cfg.image_size, a.calib_images,
                                                     cfg.seed, num_workers=cfg.num_workers,
                                                     norm=cfg.normalisation),
                      reduce_range=a.reduce_range)
        return int8

    def fine_tune(tmp: str, name: str, qat: bool) -> str:
        args = data + [f"--pre_trained={cfg.checkpoint_path}", f"--epoch_size={a.epochs}", "--warmup_epochs=0",
                       f"--lr_init={a.lr}", f"--lr_max={a.lr}", f"--lr_end={a.lr}", "--lr_decay_mode=linear",
                       "--eval_interval=0", f"--save_checkpoint_epochs={a.epochs}", "--keep_checkpoint_max=1",
                       f"--save_checkpoint_path={os.path.join(tmp, name)}", f"--qat={qat}"]
        if qat and a.reduce_range:
            args.append("--qat_reduce_range=True")
        return train.run(load_config(args))["checkpoint"]

    out = {"checkpoint": cfg.checkpoint_path, "dataset_path": cfg.dataset_path, "image_size": cfg.image_size,
           "epochs": a.epochs, "lr": a.lr, "reduce_range": a.reduce_range, "x86_without_vnni": x86_without_vnni()}
    with tempfile.TemporaryDirectory(prefix="qat-accuracy-") as tmp:
        t = time.perf_counter()
        out["start_fp32"] = top1(cfg.checkpoint_path)
        out["start_ptq_int8"] = top1(calibrated(cfg.checkpoint_path, tmp, "start"))
        tuned = fine_tune(tmp, "float", qat=False)
        out["float_tuned_fp32"] = top1(tuned)
        out["float_tuned_ptq_int8"] = top1(calibrated(tuned, tmp, "float"))
        aware = fine_tune(tmp, "qat", qat=True)
        out["qat_simulated"] = top1(aware)
        out["qat_int8"] = top1(export_checkpoint(aware, os.path.join(tmp, "qat_int8.onnx"))["path"])
        if importlib.util.find_spec("ai_edge_litert") is not None:
            out["qat_int8_tflite"] = top1(export_checkpoint(aware, os.path.join(tmp, "qat_int8"),
                                                            file_format="TFLITE")["path"])
        out["seconds"] = round(time.perf_counter() - t, 1)
    print(f"{out['checkpoint']} ({cfg.image_size}x{cfg.image_size}), fine-tunes of {a.epochs} epochs at lr {a.lr:g}; "
          f"INT8 files{' with 7-bit weights' if a.reduce_range else ''} run on a CPU "
          f"{'without' if out['x86_without_vnni'] else 'with'} VNNI ({out['seconds']} s)")
    tflite = f"{out['qat_int8_tflite']:.4f}" if "qat_int8_tflite" in out else "(no ai-edge-litert)"
    print("| model | top-1 fp32 / simulated | top-1 INT8 (ONNX Runtime) | top-1 INT8 .tflite (LiteRT) |")
    print("|---|---|---|---|")
    print(f"| the checkpoint, calibrated | {out['start_fp32']:.4f} | {out['start_ptq_int8']:.4f} | |")
    print(f"| fine-tuned in float, calibrated | {out['float_tuned_fp32']:.4f} | {out['float_tuned_ptq_int8']:.4f} | |")
    print(f"| fine-tuned quantization-aware | {out['qat_simulated']:.4f} | {out['qat_int8']:.4f} | {tflite} |")
    emit_json(a.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
