#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) and make sure ffmpeg is on PATH.
#
# Idempotent: the environment is rebuilt only when pyproject.toml, constraints.txt, this script, the Python
# version or the torchsort flavour changed (a hash stamp in the venv records what was installed). A second
# run with nothing changed returns in about a second.
#
#   tools/bootstrap.sh           create or refresh as needed
#   tools/bootstrap.sh --check   change nothing; say what it found (ffmpeg, the venv and, when it is stale, which
#                                input changed) and what a run would install; exit 0 if up to date, 1 if not
#
# Environment knobs: MACS_PYTHON (interpreter, default python3.11), MACS_VENV (default .venv),
# MACS_TORCHSORT_CUDA=0|1 (force the torchsort flavour; default: CUDA when a GPU and nvcc are both present).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${MACS_PYTHON:-python3.11}
venv=${MACS_VENV:-$root/.venv}
stamp_file=$venv/.macs-stamp
inputs_file=$venv/.macs-inputs  # one line per hashed input, to say which changed
check_only=0
[[ ${1:-} == --check ]] && check_only=1

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

command -v "$python" >/dev/null 2>&1 || die "$python not found; set MACS_PYTHON to a Python 3.10+ interpreter"

if [[ -n ${MACS_TORCHSORT_CUDA:-} ]]; then
    cuda=$MACS_TORCHSORT_CUDA
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if command -v nvcc >/dev/null 2>&1 || [[ -x ${CUDA_HOME:-/nonexistent}/bin/nvcc ]]; then
        cuda=1
    else
        cuda=0
        log "warning: a GPU is present but nvcc is not; torchsort is built CPU-only (set CUDA_HOME to a CUDA toolkit for GPU kernels)"
    fi
else
    cuda=0
fi

stamp=$( { cat pyproject.toml constraints.txt tools/bootstrap.sh; "$python" -V; echo "cuda=$cuda"; } | sha256sum | cut -d' ' -f1)
flavour=$([[ $cuda == 1 ]] && echo CUDA || echo CPU-only)

have_ffmpeg() { command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; }
venv_current() { [[ -f $stamp_file && $(cat "$stamp_file") == "$stamp" ]] && "$venv/bin/python" -c '' 2>/dev/null; }

# The stamp's inputs one per line (name, then its hash or value).
inputs() {
    local file
    for file in pyproject.toml constraints.txt tools/bootstrap.sh; do
        printf '%s %s\n' "$file" "$(sha256sum <"$file" | cut -d' ' -f1)"
    done
    printf 'python %s\n' "$("$python" -V 2>&1 | tr ' ' '-')"
    printf 'torchsort %s\n' "$flavour"
}

# --check: report what is there and what a run would do, change nothing.
check() {
    local status=0 changed would="torch and torchvision (constraints.txt), torchsort ($flavour) and macs[model,score,dev]"
    say() { printf '[bootstrap] %s\n' "$*"; }
    if have_ffmpeg; then
        say "ffmpeg: $(command -v ffmpeg), ffprobe: $(command -v ffprobe)"
    else
        say "ffmpeg/ffprobe: not on PATH; a run would install them with apt-get (as root) or stop and say how"
        status=1
    fi
    if [[ ! -x $venv/bin/python ]]; then
        say "venv $venv: missing; a run would create it and install $would"
        status=1
    elif venv_current; then
        say "venv $venv: up to date ($("$python" -V 2>&1), torchsort $flavour, stamp ${stamp:0:12})"
    else
        if [[ -f $inputs_file ]]; then
            changed=$(inputs | grep -vxF -f "$inputs_file" | cut -d' ' -f1 | paste -sd, - || true)
        fi
        say "venv $venv: out of date (changed: ${changed:-unknown, installed before inputs were recorded});" \
            "a run would reinstall $would"
        status=1
    fi
    [[ $status == 0 ]] && say "up to date: a run would install nothing" || say "a run would install what is listed above"
    exit "$status"
}

[[ $check_only == 1 ]] && check

ensure_ffmpeg() {
    have_ffmpeg && return
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing ffmpeg with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    else
        die "ffmpeg/ffprobe not found and apt-get is not usable here; install ffmpeg (e.g. 'sudo apt-get install ffmpeg' or 'conda install ffmpeg') and rerun"
    fi
}

# PATH without the folders that hold nvcc: torch's extension builder then makes a CPU-only torchsort.
path_without_nvcc() {
    local out="" dir
    IFS=: read -ra dirs <<<"$PATH"
    for dir in "${dirs[@]}"; do
        [[ -x $dir/nvcc ]] || out+="${out:+:}$dir"
    done
    printf '%s' "$out"
}

torchsort_flavour_ok() {
    "$venv/bin/python" - "$cuda" 2>/dev/null <<'PY'
import importlib.util, sys
import torchsort  # noqa: F401
has_cuda = importlib.util.find_spec("torchsort.isotonic_cuda") is not None
sys.exit(0 if has_cuda == (sys.argv[1] == "1") else 1)
PY
}

install_torchsort() {
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q install -c constraints.txt --no-build-isolation)
    if [[ $cuda == 1 ]]; then
        "${pip[@]}" "$@" torchsort
    else
        env -u CUDA_HOME -u CUDA_PATH PATH="$(path_without_nvcc)" "${pip[@]}" "$@" torchsort
    fi
}

make_venv() {
    local want have
    want=$("$python" -c 'import sys; print(sys.version)')
    have=$("$venv/bin/python" -c 'import sys, pip; print(sys.version)' 2>/dev/null || true)
    [[ $have == "$want" ]] && return
    if [[ -e $venv ]]; then
        # Replace only what is recognisably a venv (missing, half-made or of another Python), never other folders.
        [[ -f $venv/pyvenv.cfg || -z $(ls -A "$venv" 2>/dev/null) ]] \
            || die "$venv exists and is not a virtual environment; move it away or set MACS_VENV"
        rm -rf "$venv"
    fi
    "$python" -m venv "$venv"
}

ensure_venv() {
    venv_current && return
    log "creating/refreshing $venv (first run takes a few minutes)"
    make_venv
    rm -f "$stamp_file"
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
    # torch first, from the pinned builds, so nothing later can pull another one.
    log "installing torch and torchvision (constraints.txt)"
    "${pip[@]}" install -c constraints.txt torch torchvision
    # torchsort ships only as source and must build against the torch above: no build isolation. A build of
    # the wrong flavour (say, a CPU wheel from pip's cache on a machine that now has a GPU) is rebuilt
    # without the cache.
    if ! torchsort_flavour_ok; then
        log "building torchsort ($flavour)"
        install_torchsort
        torchsort_flavour_ok || install_torchsort --force-reinstall --no-deps --no-cache-dir
        torchsort_flavour_ok || die "torchsort did not build with cuda=$cuda"
    fi
    log "installing macs and its dependencies"
    "${pip[@]}" install -c constraints.txt -e '.[model,score,dev]'
    "$venv/bin/python" - <<'PY'
import torch, torchvision, torchsort  # noqa: F401  fail loudly here, not in the first test
assert torch.__version__.split("+")[0] == "2.14.1", torch.__version__
PY
    inputs > "$inputs_file"
    echo "$stamp" > "$stamp_file"
    log "environment ready"
}

ensure_ffmpeg
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9  # a second bootstrap (make test beside make main) waits instead of racing this one
ensure_venv
