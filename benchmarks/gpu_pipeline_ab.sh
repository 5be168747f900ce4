#!/usr/bin/env bash
# The GPU pipeline before and after a change, in one call on a lent GPU machine: images/s of the GPU
# pipeline (16 and 4 workers) with a copy of src/ from the commit before (OLD_SRC) and with src/,
# alternated over ROUNDS rounds: runs of one machine differ by up to a third (RESULTS.md, 2026-11-29),
# so compare medians of alternated runs, never two single runs.
#   git archive REV src | tar -x -C .bench_old      (.bench_old ignored in .git/info/exclude; carry it)
#   OLD_SRC=.bench_old/src ROUNDS=3 bash benchmarks/gpu_pipeline_ab.sh      ($OUT/ab.txt)
# (An experiment that fits in one process is better alternated there: input_pipeline.py --rounds.)
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}
OLD_SRC=${OLD_SRC:?a copy of src/ from the commit before}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee "$OUT/env.txt"
# The JPEGs first, so that no timed run makes them.
PYTHONPATH=src python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from common import make_jpeg_folder; \
print(make_jpeg_folder('/tmp/mobilenet_v1_bench_jpegs', 8192))"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="$OLD_SRC src"; else order="src $OLD_SRC"; fi
  for v in $order; do
    tag=$([ "$v" = src ] && echo after || echo before)
    PYTHONPATH=$v timeout 60 python3 benchmarks/input_pipeline.py --images 8192 --passes 2 --stages 0 \
      --gpu_workers 4 --json "/tmp/ab_${tag}_$r.json" > /dev/null 2>&1
    python3 -c "import json; d = json.load(open('/tmp/ab_${tag}_$r.json'))['images_per_s']; \
print('round $r $tag: gpu %.0f, 4 workers %.0f' % (d['gpu'], d['gpu, 4 workers']))" 2>&1 | tail -1 | tee -a "$OUT/ab.txt"
  done
done
echo "== done"
