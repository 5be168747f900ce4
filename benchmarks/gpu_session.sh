#!/usr/bin/env bash
# The one prepared call on a lent GPU machine (nothing installed there: PYTHONPATH=src).
# Each part has its own time limit, so one that runs long leaves the others their figures.
#   bash benchmarks/gpu_session.sh        (writes logs and JSON under $OUT)
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
DATA=/tmp/mobilenet_v1_bench_jpegs
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  python3 -c "import torch, torchvision, timm, os; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'cpus', os.cpu_count())"
} 2>&1 | tee "$OUT/env.txt"

echo "== step: ours vs timm, and vs our plain-layer baseline in eager (batch 256, bf16, channels_last)"
timeout 200 python3 benchmarks/train_throughput.py --modes eager --plain \
  --json "$OUT/step_eager.json" 2>&1 | grep -v Warning | tail -8 | tee "$OUT/step_eager.log"
timeout 200 python3 benchmarks/train_throughput.py --modes default,reduce-overhead \
  --json "$OUT/step.json" 2>&1 | grep -v Warning | tail -8 | tee "$OUT/step.log"
echo "== non-finite guard on the GPU"
timeout 60 python3 benchmarks/nonfinite_gpu_check.py 2>&1 | tail -8 | tee "$OUT/nonfinite.log"

echo "== end-to-end train from JPEGs (GPU pipeline, compiled)"
timeout 110 python3 benchmarks/train_throughput.py --modes "" --e2e_images 8192 --e2e_pipelines gpu \
  --e2e_epochs 4 --json "$OUT/e2e.json" 2>&1 | tail -8 | tee "$OUT/e2e.log"

echo "== input pipeline: CPU workers vs GPU"
timeout 90 python3 benchmarks/input_pipeline.py --images 8192 --passes 2 --json "$OUT/input_pipeline.json" 2>&1 \
  | tail -10 | tee "$OUT/input_pipeline.log"

echo "== smoke: CIFAR-format demo on the GPU (on-device CIFAR path), eval"
timeout 45 bash -c "python3 -m mobilenet_v1.demo --out /tmp/digits && \
  python3 -m mobilenet_v1 train --config_path configs/demo.yaml --dataset_path /tmp/digits --device_target GPU \
    --epoch_size 30 --save_checkpoint_path /tmp/smoke && \
  python3 -m mobilenet_v1 eval --config_path configs/demo.yaml --dataset_path /tmp/digits --device_target GPU \
    --checkpoint_path /tmp/smoke" 2>&1 | grep -E "epoch: (1|30) |Epoch time|result" | tail -6 | tee "$OUT/smoke.log"

echo "== smoke: ImageNet-folder train 1 epoch + eval through the GPU pipeline"
timeout 45 bash -c "python3 -m mobilenet_v1 train --dataset imagenet2012 --dataset_path $DATA --class_num 10 \
    --batch_size 128 --epoch_size 1 --device_target GPU --save_checkpoint_path /tmp/smoke2 --num_workers 8 && \
  python3 -m mobilenet_v1 eval --dataset imagenet2012 --dataset_path $DATA --checkpoint_path /tmp/smoke2 \
    --device_target GPU --num_workers 8 --json" 2>&1 | grep -E "epoch: |Epoch time|top_1|rror" | tail -5 | tee "$OUT/smoke2.log"
echo "== done"
