#!/usr/bin/env bash
# Install napari-sam2v with its test extras into ./.venv and run the test suite.
# GUI tests run napari under a virtual X server (xvfb-run); the system libraries
# Qt needs are installed with apt-get when missing (needs root or sudo).
# ruff and mypy check the code first (settings in pyproject.toml).
# Extra arguments are passed to pytest, e.g. scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test

APT_PKGS=(xvfb xauth libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
    libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0
    libxcb-cursor0 libfontconfig1 libdbus-1-3 libgl1 libegl1)
missing=()
for pkg in "${APT_PKGS[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        echo "==> installing system packages for the GUI tests: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "warning: cannot install ${missing[*]} (no apt-get); GUI tests may be skipped" >&2
    fi
fi

echo "==> static checks: ruff (lint) and mypy (type hints)"
.venv/bin/ruff check --quiet .
.venv/bin/python -m mypy

export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
export MPLBACKEND=Agg
echo "==> running the test suite"
if command -v xvfb-run >/dev/null 2>&1; then
    exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
else
    exec .venv/bin/python -m pytest "$@"
fi
