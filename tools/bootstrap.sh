#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) and make sure ffmpeg is on PATH.
#
# Idempotent: the environment is rebuilt only when pyproject.toml, constraints.txt, this script, the Python
# version or the GPU flavour changed (a hash stamp in .venv records what was installed). A second run with
# nothing changed returns in about a second.
#
# Environment knobs: MACS_PYTHON (interpreter, default python3.11), MACS_VENV (default .venv),
# MACS_TORCHSORT_CUDA=0|1 (force the torchsort flavour; default: CUDA when nvidia-smi sees a GPU).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${MACS_PYTHON:-python3.11}
venv=${MACS_VENV:-$root/.venv}
stamp_file=$venv/.macs-stamp

log() { printf '[bootstrap] %s\n' "$*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
    log "error: $python not found; set MACS_PYTHON to a Python 3.10+ interpreter"
    exit 2
fi

if [[ -n ${MACS_TORCHSORT_CUDA:-} ]]; then
    cuda=$MACS_TORCHSORT_CUDA
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    cuda=1
else
    cuda=0
fi

stamp=$( { cat pyproject.toml constraints.txt tools/bootstrap.sh; "$python" -V; echo "cuda=$cuda"; } | sha256sum | cut -d' ' -f1)

ensure_ffmpeg() {
    if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
        return
    fi
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing ffmpeg with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    else
        log "error: ffmpeg/ffprobe not found and apt-get is not usable here; install ffmpeg (e.g. 'sudo apt-get install ffmpeg' or 'conda install ffmpeg') and rerun"
        exit 2
    fi
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
        env -u CUDA_HOME -u CUDA_PATH PATH="$venv/bin:/usr/bin:/bin" "${pip[@]}" "$@" torchsort
    fi
}

ensure_venv() {
    if [[ -f $stamp_file && $(cat "$stamp_file") == "$stamp" ]] && "$venv/bin/python" -c '' 2>/dev/null; then
        return
    fi
    log "creating/refreshing $venv (first run takes a few minutes)"
    rm -f "$stamp_file"
    if ! "$venv/bin/python" -c 'import pip' 2>/dev/null; then
        rm -rf "$venv"  # missing, or left half-made by an interrupted run
        "$python" -m venv "$venv"
    fi
    local pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
    # torch first, from the pinned builds, so nothing later can pull another one.
    log "installing torch and torchvision (constraints.txt)"
    "${pip[@]}" install -c constraints.txt torch torchvision
    # torchsort ships only as source and must build against the torch above: no build isolation. Without a GPU
    # the CUDA build fails, so nvcc/CUDA_HOME are hidden from it. A build of the wrong flavour (say, a CPU wheel
    # from pip's cache on a machine that now has a GPU) is rebuilt without the cache.
    if ! torchsort_flavour_ok; then
        log "building torchsort ($([[ $cuda == 1 ]] && echo CUDA || echo CPU-only))"
        install_torchsort
        if ! torchsort_flavour_ok; then
            install_torchsort --force-reinstall --no-deps --no-cache-dir
        fi
        torchsort_flavour_ok || { log "error: torchsort did not build with cuda=$cuda"; exit 2; }
    fi
    log "installing macs and its dependencies"
    "${pip[@]}" install -c constraints.txt -e '.[dev]'
    "$venv/bin/python" - <<'PY'
import torch, torchvision, torchsort  # noqa: F401  fail loudly here, not in the first test
assert torch.__version__.split("+")[0] == "2.14.1", torch.__version__
PY
    echo "$stamp" > "$stamp_file"
    log "environment ready"
}

ensure_ffmpeg
ensure_venv
