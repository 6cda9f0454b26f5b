#!/usr/bin/env bash
# Create ./.venv and install napari-sam2v into it (editable), with optional extras.
#
#   scripts/install.sh            # core + CLI
#   scripts/install.sh gui        # + napari and a Qt binding
#   scripts/install.sh test       # + everything the test suite needs
#
# PyTorch: an unpinned `torch` from PyPI pulls several GB of CUDA wheels on Linux.
# Without an NVIDIA GPU we install a CPU build: first a local wheel offered by pip's
# find-links (as on our CI machines), otherwise PyTorch's CPU index. With a GPU,
# the regular PyPI build (CUDA) is used. An existing torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    for cand in python3.11 python3.12 python3.10 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 &&
            "$cand" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
            echo "$cand"; return
        fi
    done
    echo "error: napari-sam2v needs Python >= 3.10 (none found on PATH)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    py=$(pick_python)
    echo "==> creating .venv with $($py --version 2>&1)"
    "$py" -m venv .venv
fi
PIP=(.venv/bin/python -m pip)
"${PIP[@]}" install -q --upgrade pip

if .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "==> torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') already installed"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "==> NVIDIA GPU found: installing the CUDA build of torch from PyPI"
    "${PIP[@]}" install -q "torch>=2.3"
else
    echo "==> no NVIDIA GPU: installing a CPU build of torch"
    if "${PIP[@]}" install -q --no-index --no-deps "torch==2.13.0" >/dev/null 2>&1; then
        # a local CPU wheel (pip's find-links) was found; its dependencies come from the index
        "${PIP[@]}" install -q "torch==2.13.0"
    else
        "${PIP[@]}" install -q "torch>=2.3" --index-url https://download.pytorch.org/whl/cpu \
            --extra-index-url https://pypi.org/simple
    fi
fi

spec="."
[ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
echo "==> installing napari-sam2v ($spec)"
"${PIP[@]}" install -q -e "$spec"
echo "==> done: .venv/bin/napari-sam2v --help"
