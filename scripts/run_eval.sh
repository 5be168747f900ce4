#!/bin/bash
# Top-1/top-5 of a checkpoint (or of the newest one in a folder) with the seed's configuration for the
# data set. Works in ./eval/ and logs to ./eval/log.txt (and ./eval/log, linked to it: the seed's name).
# EXTRA_ARGS adds options.
USAGE="Usage: bash run_eval.sh [cifar10|imagenet2012] [DATASET_PATH] [CHECKPOINT_PATH]"
# `sh script.sh` (the seed README's way: dash on Debian and Ubuntu) runs it again in bash, which it needs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_argc $# 3
check_dataset "$1"
DATASET_PATH=$(get_real_path "$2")
CHECKPOINT_PATH=$(get_real_path "$3")
require_dir DATASET_PATH "$DATASET_PATH"
if [ ! -e "$CHECKPOINT_PATH" ]; then
    die "CHECKPOINT_PATH=$CHECKPOINT_PATH does not exist"
fi

mkdir -p ./eval && cd ./eval || exit 1
seed_log log.txt
echo "start evaluation in $PWD, log in $PWD/log.txt (and log, the seed's name)"
"$PYTHON" -m mobilenet_v1 eval --config_path="$(config_for "$1")" --dataset="$1" --dataset_path="$DATASET_PATH" \
    --checkpoint_path="$CHECKPOINT_PATH" "${EXTRA[@]}" 2>&1 | tee -i log.txt
exit "${PIPESTATUS[0]}"
