#!/bin/bash
# Train in one process, with the seed's configuration for the data set (configs/<dataset>.yaml).
# Works in ./train/ (save_checkpoint_path "./"): the run writes its checkpoints and its own log.txt
# there (README.md, "Watching a run"); the console, warnings and errors included, is added to ./train/console.log
# (./train/log, the seed's name, is linked to it)
# (tee -a: a resumed run's after the first's; -i: the terminal's Ctrl-C stops the run, which prints on, not tee).
# EXTRA_ARGS adds options, e.g. EXTRA_ARGS="--epoch_size 10 --device_target CPU".
USAGE="Usage: bash run_standalone_train.sh [cifar10|imagenet2012] [DATASET_PATH] [PRETRAINED_CKPT_PATH](optional)"
# `sh script.sh` (the seed README's way: dash on Debian and Ubuntu) runs it again in bash, which it needs.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_argc $# 2 3
check_dataset "$1"
DATASET_PATH=$(get_real_path "$2")
require_dir DATASET_PATH "$DATASET_PATH"
ARGS=(--config_path="$(config_for "$1")" --dataset="$1" --dataset_path="$DATASET_PATH")
if [ $# == 3 ]; then
    PRETRAINED=$(get_real_path "$3")
    require_file PRETRAINED_CKPT_PATH "$PRETRAINED"
    ARGS+=(--pre_trained="$PRETRAINED")
fi

# Unlike the seed, the folder is kept: it holds the run's checkpoints.
mkdir -p ./train && cd ./train || exit 1
seed_log console.log
echo "start training in $PWD, log in $PWD/log.txt, console in $PWD/console.log (and log, the seed's name)"
"$PYTHON" -m mobilenet_v1 train "${ARGS[@]}" "${EXTRA[@]}" 2>&1 | tee -a -i console.log
exit "${PIPESTATUS[0]}"
