#!/usr/bin/env bash
# Second device call of 2026-11-28: the GPU pipeline after the fixes (one shared-memory tensor per
# batch, Python RNG for crop boxes, zeroed canvas), its stage breakdown, and the end-to-end figure.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
DATA=/tmp/mobilenet_v1_bench_jpegs
echo "== input pipeline: CPU workers vs GPU, with the GPU pipeline's stages"
timeout 100 python3 benchmarks/input_pipeline.py --images 8192 --passes 2 --json "$OUT/input_pipeline.json" 2>&1 \
  | grep -v Warn | tail -12 | tee "$OUT/input_pipeline.log"
echo "== end-to-end train from JPEGs (GPU pipeline, compiled)"
timeout 150 python3 benchmarks/train_throughput.py --modes "" --e2e_images 8192 --e2e_pipelines gpu \
  --e2e_epochs 4 --json "$OUT/e2e.json" 2>&1 | grep -v Warn | tail -8 | tee "$OUT/e2e.log"
echo "== smoke: ImageNet-folder train 2 epochs + eval through the GPU pipeline; CIFAR demo eval on GPU"
timeout 60 bash -c "python3 -m mobilenet_v1 train --dataset imagenet2012 --dataset_path $DATA --class_num 10 \
    --batch_size 128 --epoch_size 2 --lr_max 0.1 --device_target GPU --save_checkpoint_path /tmp/smoke2 \
    --num_workers 8 && \
  python3 -m mobilenet_v1 eval --dataset imagenet2012 --dataset_path $DATA --checkpoint_path /tmp/smoke2 \
    --device_target GPU --num_workers 8 --json; \
  python3 -m mobilenet_v1.demo --out /tmp/digits && \
  python3 -m mobilenet_v1 train --config_path configs/demo.yaml --dataset_path /tmp/digits --device_target GPU \
    --epoch_size 10 --save_checkpoint_path /tmp/smoke && \
  python3 -m mobilenet_v1 eval --config_path configs/demo.yaml --dataset_path /tmp/digits --device_target GPU \
    --checkpoint_path /tmp/smoke" 2>&1 | grep -E "epoch: |top_1|result|rror" | tail -12 | tee "$OUT/smoke.log"
echo "== done"
