# Sourced by the run_*.sh scripts: paths, the Python to use, and the seed's argument checks.
# The scripts call the package as `python -m mobilenet_v1` with the repository's src/ on PYTHONPATH,
# so they work from a checkout without installing it.

# CDPATH off: with one in the environment, cd prints the folder it finds through it, which REPO_ROOT then held too.
REPO_ROOT="$(CDPATH= cd -- "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO_ROOT/src${PYTHONPATH:+:$PYTHONPATH}"

# $PYTHON if set, else the repository's .venv (what `make` builds), else python3.
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO_ROOT/.venv/bin/python" ]; then
        PYTHON="$REPO_ROOT/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi
# A relative path (PYTHON=.venv/bin/python) is from where the script was started: the scripts run it in a work
# folder of their own. Made absolute, not resolved: a virtual environment's python is a link it needs by name.
case "$PYTHON" in
    /*) ;;
    */*) PYTHON="$PWD/$PYTHON" ;;
esac

# Absolute form of a path given relative to where the script was started (the seed's get_real_path):
# the scripts run in a work folder of their own, so relative paths must be resolved first.
get_real_path() {
    if [ "${1:0:1}" == "/" ]; then
        echo "$1"
    else
        realpath -m "$PWD/$1"
    fi
}

# Print an error and the usage line to stderr and exit 1.
die() {
    echo "error: $1" >&2
    echo "$USAGE" >&2
    exit 1
}

# EXTRA_ARGS split into words as a shell splits them, at white space (line breaks too) outside quotes, so that
# EXTRA_ARGS="--teacher '/data/my teacher.ckpt'" passes the path as one word (split at white space alone, the
# quotes reached the command as part of two words); nothing is read as a file pattern or expanded: unquoted,
# "--mean [0.5,0.5,0.5]" became "--mean 5" in a work folder holding a file named 5. Python's shlex splits, and
# quotes each word again for the array's assignment.
EXTRA=()
if [[ "${EXTRA_ARGS:-}" =~ [^[:space:]] ]]; then
    EXTRA_WORDS=$("$PYTHON" -c 'import shlex, sys
try:
    print(shlex.join(shlex.split(sys.argv[1])))
except ValueError as e:  # an unclosed quote: said on stdout, for die
    print(f"EXTRA_ARGS cannot be split into words: {e}; close the quote (a quote inside a word: \\\" or \\'"'"')")
    sys.exit(1)' "$EXTRA_ARGS") || die "${EXTRA_WORDS:-cannot run $PYTHON to read EXTRA_ARGS}"
    eval "EXTRA=($EXTRA_WORDS)"  # shlex.join's quoting: words only, nothing expanded
fi

# require_argc GIVEN ALLOWED...: stop with the usage line unless the script got one of ALLOWED arguments.
require_argc() {
    local given=$1
    shift
    for allowed in "$@"; do
        if [ "$given" == "$allowed" ]; then
            return 0
        fi
    done
    echo "$USAGE" >&2
    exit 1
}

# require_dir NAME PATH / require_file NAME PATH: stop with the usage line unless PATH is one.
require_dir() {
    if [ ! -d "$2" ]; then
        die "$1=$2 is not a directory"
    fi
}

require_file() {
    if [ ! -f "$2" ]; then
        die "$1=$2 is not a file"
    fi
}

check_dataset() {
    if [ "$1" != "cifar10" ] && [ "$1" != "imagenet2012" ]; then
        die "the selected dataset '$1' is neither cifar10 nor imagenet2012"
    fi
}

# seed_log FILE: `log` in the work folder, where the seed's scripts wrote their output (its README:
# "eval/log", "train_parallel*/log"), made a link to FILE; a `log` that is not a link is left alone.
seed_log() {
    if [ -L log ] || [ ! -e log ]; then
        ln -sfn "$1" log
    fi
}

# The seed's configuration per data set.
config_for() {
    if [ "$1" == "cifar10" ]; then
        echo "$REPO_ROOT/configs/cifar10.yaml"
    else
        echo "$REPO_ROOT/configs/imagenet2012.yaml"
    fi
}
