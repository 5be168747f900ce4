#!/bin/bash
# Train in one process, with the seed's configuration for the data set (configs/<dataset>.yaml).
# Works in ./train/ (checkpoints there, save_checkpoint_path "./") and logs to ./train/log.txt.
# EXTRA_ARGS adds options, e.g. EXTRA_ARGS="--epoch_size 10 --device_target CPU".
USAGE="Usage: bash run_standalone_train.sh [cifar10|imagenet2012] [DATASET_PATH] [PRETRAINED_CKPT_PATH](optional)"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [ $# != 2 ] && [ $# != 3 ]; then
    echo "$USAGE" >&2
    exit 1
fi
check_dataset "$1"
DATASET_PATH=$(get_real_path "$2")
if [ ! -d "$DATASET_PATH" ]; then
    die "DATASET_PATH=$DATASET_PATH is not a directory"
fi
ARGS=(--config_path="$(config_for "$1")" --dataset="$1" --dataset_path="$DATASET_PATH")
if [ $# == 3 ]; then
    PRETRAINED=$(get_real_path "$3")
    if [ ! -f "$PRETRAINED" ]; then
        die "PRETRAINED_CKPT_PATH=$PRETRAINED is not a file"
    fi
    ARGS+=(--pre_trained="$PRETRAINED")
fi

# Unlike the seed, the folder is kept: it holds the run's checkpoints.
mkdir -p ./train && cd ./train || exit 1
echo "start training in $PWD, log in $PWD/log.txt"
# shellcheck disable=SC2086  # EXTRA_ARGS is a list of options
"$PYTHON" -m mobilenet_v1 train "${ARGS[@]}" ${EXTRA_ARGS:-} 2>&1 | tee log.txt
exit "${PIPESTATUS[0]}"
