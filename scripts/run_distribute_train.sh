#!/bin/bash
# Data-parallel training with torchrun on this machine: DEVICE_NUM processes (default: the configuration's
# device_num where it is above 1, as the seed's GPU script starts its file's 4; else the visible GPUs, or 2
# on a machine without one), batch_size per process. Works in ./train_parallel/
# (checkpoints in ./train_parallel/ckpt_0/ with save_checkpoint_path "./", written by rank 0) and logs
# to ./train_parallel/log.txt (and ./train_parallel/log, linked to it: the seed's name). EXTRA_ARGS adds
# options, e.g. EXTRA_ARGS="--sync_bn True".
# Several machines: see "Several GPUs, several machines" in README.md.
USAGE="Usage: bash run_distribute_train.sh [cifar10|imagenet2012] [CONFIG_PATH] [DATASET_PATH] [PRETRAINED_CKPT_PATH](optional)"
# `sh script.sh` (the seed README's way: dash on Debian and Ubuntu) runs it again in bash, which it needs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_argc $# 3 4
check_dataset "$1"
CONFIG_PATH=$(get_real_path "$2")
DATASET_PATH=$(get_real_path "$3")
require_file CONFIG_PATH "$CONFIG_PATH"
if [[ "$CONFIG_PATH" == *.json ]]; then
    die "CONFIG_PATH=$CONFIG_PATH is a JSON file, a rank table (the seed's Ascend script takes one there): give a YAML configuration (configs/$1.yaml, configs/imagenet2012_gpu.yaml); DEVICE_NUM sets the process count"
fi
require_dir DATASET_PATH "$DATASET_PATH"
ARGS=(--config_path="$CONFIG_PATH" --dataset="$1" --dataset_path="$DATASET_PATH" --run_distribute=True)
if [ $# == 4 ]; then
    PRETRAINED=$(get_real_path "$4")
    require_file PRETRAINED_CKPT_PATH "$PRETRAINED"
    ARGS+=(--pre_trained="$PRETRAINED")
fi

# The seed's own CIFAR-10 and Ascend ImageNet files say device_target Ascend, which train refuses: said here, once,
# before torchrun starts its processes (each of them said it, after torchrun's start-up, with torchrun's traceback).
ASCEND_LINE=$("$PYTHON" -c "import contextlib, io, sys
from mobilenet_v1.config import ASCEND, load_config
try:
    with contextlib.redirect_stderr(io.StringIO()):
        cfg = load_config(['--config_path', sys.argv[1]] + sys.argv[2:])
except BaseException:
    sys.exit(0)  # any other problem is left to the run, which names it
if str(cfg.device_target).lower() == 'ascend':
    print(ASCEND)" "$CONFIG_PATH" "${EXTRA[@]}")
if [ -n "$ASCEND_LINE" ]; then
    die "$ASCEND_LINE (add --device_target to EXTRA_ARGS)"
fi
GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())") || die "cannot run $PYTHON with torch"
if [ -z "${DEVICE_NUM:-}" ]; then
    # Its line naming the seed's keys with no meaning here is left to the run's rank 0, which says it into
    # log.txt (said here too, it came twice); an error reading the file is still said.
    # A file the run would refuse (a key YAML reads as no name, an unknown key, a value out of range) is said
    # as the run says it, in one line: the Python traceback of load_config came before "cannot be read".
    CONFIGURED=$("$PYTHON" -c "import contextlib, io, sys; from mobilenet_v1.config import load_config
try:
    with contextlib.redirect_stderr(io.StringIO()):
        cfg = load_config(['--config_path', sys.argv[1]])
except (ValueError, OSError) as e:
    print(e)
    sys.exit(1)
print(cfg.device_num)" "$CONFIG_PATH") || die "${CONFIGURED:-CONFIG_PATH=$CONFIG_PATH cannot be read}"
    if [ "$CONFIGURED" -gt 1 ] && { [ "$GPUS" -eq 0 ] || [ "$CONFIGURED" -le "$GPUS" ]; }; then
        DEVICE_NUM=$CONFIGURED; WHY="device_num $CONFIGURED of $CONFIG_PATH"
    elif [ "$GPUS" -gt 0 ]; then
        DEVICE_NUM=$GPUS; WHY="the visible GPUs"
        if [ "$CONFIGURED" -gt 1 ]; then WHY="$WHY, fewer than device_num $CONFIGURED of $CONFIG_PATH"; fi
    else
        DEVICE_NUM=2; WHY="2 on a machine without a GPU; device_num $CONFIGURED of $CONFIG_PATH"
    fi
else
    WHY="DEVICE_NUM"
fi
if ! [[ "$DEVICE_NUM" =~ ^[1-9][0-9]*$ ]]; then
    die "DEVICE_NUM=$DEVICE_NUM is not a positive integer"
fi
if [ "$GPUS" -eq 0 ]; then
    # torchrun gives each process one thread; on the CPU share the cores instead.
    CORES=$(nproc 2>/dev/null || echo 1)
    THREADS=$(( CORES / DEVICE_NUM ))
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( THREADS > 0 ? THREADS : 1 ))}
fi

mkdir -p ./train_parallel && cd ./train_parallel || exit 1
seed_log log.txt
PROCESSES=processes; [ "$DEVICE_NUM" = 1 ] && PROCESSES=process
echo "start training with $DEVICE_NUM $PROCESSES ($WHY) in $PWD, log in $PWD/log.txt (and log, the seed's name)"
# `python -m torch.distributed.run` is torchrun, run by the same Python as the workers.
"$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$DEVICE_NUM" \
    -m mobilenet_v1 train "${ARGS[@]}" "${EXTRA[@]}" 2>&1 | tee -a -i log.txt
exit "${PIPESTATUS[0]}"
