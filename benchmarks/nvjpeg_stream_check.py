"""GPU check: does a batched nvJPEG decode overwrite memory that kernels queued on the caller's stream
still read, and does the GPU pipeline's decode (``data.decode_batch``, which drains the stream on the
host first, see ``data.drain_before_decode``) avoid it?

Each round, on a side stream like the GPU pipeline's: fill ``--images`` tensors of a decoded image's
size with a known value, queue a ~20 ms spin and then one sum per tensor, free the tensors (their
blocks go back to the caching allocator while the sums are still queued), decode ``--images`` JPEGs
of that size, wait, and check the sums. A wrong sum is a corrupted round. Prints, per decoder, how
many rounds the allocator handed the decoder a freed block, how many were corrupted, and the median
decode call time.

    python benchmarks/nvjpeg_stream_check.py [--rounds 100] [--json out.json]
"""
import argparse
import io
import time

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_jpeg

from common import emit_json, machine, median, natural_image, print_table

from mobilenet_v1.data import ENCODED, collate_encoded, decode_batch


def jpeg(seed: int, progressive: bool = False) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(natural_image(seed)).save(buf, "JPEG", quality=90, progressive=progressive)
    return buf.getvalue()


def run(decoder: str, files, rounds: int, device: torch.device, spin_cycles: int):
    stream = torch.cuda.Stream(device)
    datas = [torch.frombuffer(bytearray(f), dtype=torch.uint8) for f in files]
    batch = collate_encoded([(ENCODED, d, 0, 0, f"{i}.jpg", None, 0) for i, d in enumerate(datas)])
    shape = (3, 375, 500)
    value = 7
    expected = value * shape[0] * shape[1] * shape[2]
    reused = corrupted = 0
    call_ms = []
    with torch.cuda.stream(stream):
        for _ in range(rounds):
            held = [torch.full(shape, value, dtype=torch.uint8, device=device) for _ in datas]
            pointers = {t.data_ptr() for t in held}
            stream.synchronize()
            torch.cuda._sleep(spin_cycles)
            sums = [t.sum(dtype=torch.int64) for t in held]
            del held
            t0 = time.perf_counter()
            if decoder == "torchvision decode_jpeg":
                out = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
            else:
                out = decode_batch(batch, device)
            call_ms.append((time.perf_counter() - t0) * 1e3)
            reused += any(img.data_ptr() in pointers for img in out)
            stream.synchronize()
            corrupted += any(int(s) != expected for s in sums)
    return {"rounds": rounds, "decoder_given_a_freed_block": reused, "corrupted": corrupted,
            "decode_call_ms": median(call_ms)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--spin_cycles", type=int, default=40_000_000, help="~20 ms at 2 GHz")
    p.add_argument("--json", nargs="?", const=True, default=None)
    args = p.parse_args()
    if not torch.cuda.is_available():  # else a traceback from deep in torch.cuda.Stream
        p.error("needs a CUDA GPU (nvJPEG decodes there); torch sees none here")
    device = torch.device("cuda")
    rows, payload = [], {"machine": machine(), "results": {}}
    for kind in ("baseline", "progressive"):
        files = [jpeg(i, progressive=kind == "progressive") for i in range(args.images)]
        for decoder in ("torchvision decode_jpeg", "mobilenet_v1 decode_batch"):
            r = run(decoder, files, args.rounds, device, args.spin_cycles)
            payload["results"][f"{kind} / {decoder}"] = r
            rows.append({"JPEG": kind, "decoder": decoder, "given a freed block": r["decoder_given_a_freed_block"],
                         "corrupted": f"{r['corrupted']}/{r['rounds']}", "call ms": f"{r['decode_call_ms']:.2f}"})
            print(rows[-1], flush=True)
    print_table(f"nvJPEG and the caller's stream, {machine()}, {args.images} JPEGs of 500x375 a call", rows,
                ["JPEG", "decoder", "given a freed block", "corrupted", "call ms"])
    emit_json(args.json, payload)


if __name__ == "__main__":
    main()
