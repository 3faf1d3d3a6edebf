#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu 22.04 or
# later: Python 3.10+). It installs what grading needs and builds the fast layers there:
#   apt: python3 (with venv and headers), a C compiler, bubblewrap/util-linux for the sandbox
#   a virtual environment with requirements.txt, and cs231n installed from source (Cython build),
#   PyTorch when the zip was built with --torch; then it proves the sandbox works here
# Safe to run again: each step is skipped when its result is already there, and pip takes
# already-installed or cached packages without downloading them.
#
#   GRADESCOPE_ROOT   where Gradescope's tree is (default /autograder; tests use a temp folder)
#   GRADESCOPE_VENV   the virtual environment to create (default $GRADESCOPE_ROOT/venv)
#   GRADESCOPE_PYTHON the Python that creates it (default python3)
#   TORCH_PIP_ARGS    pip options for PyTorch (e.g. its CPU wheel index), when the zip asks for it
set -euo pipefail

ROOT="${GRADESCOPE_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="${GRADESCOPE_VENV:-$ROOT/venv}"
PYTHON="${GRADESCOPE_PYTHON:-python3}"

need=()
command -v "$PYTHON" >/dev/null 2>&1 || need+=(python3)
if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
        || need+=(python3-dev)
fi
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup.sh: missing ${need[*]}; run as root (Gradescope does) or install them first" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "setup.sh: installing ${need[*]}"
    apt-get install -y -q --no-install-recommends "${need[@]}" \
        || { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }
fi
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "setup.sh: $("$PYTHON" --version) is too old: choose Gradescope's Ubuntu 22.04 (or later) base image" >&2
    exit 1
}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install -r "$SOURCE/requirements.txt"
# the fast layers, compiled here against this image's numpy (in place, like make install)
built=("$SOURCE"/cs231n/fast_layers*.so)
if [ ! -e "${built[0]}" ] || [ "$SOURCE/cs231n/fast_layers.pyx" -nt "${built[0]}" ] \
        || ! (cd /tmp && "$VENV/bin/python" -c 'import cs231n, sys; sys.exit(not cs231n.__file__.startswith(sys.argv[1]))' "$SOURCE/"); then
    (cd "$SOURCE" && "${PIP[@]}" install --no-build-isolation -e .)
fi
(cd /tmp && "$VENV/bin/python" -c 'from cs231n.layer_utils import FAST_LAYERS; assert FAST_LAYERS, "fast layers not built"')
# PyTorch, when the course grades the PyTorch notebook here (`python -m autograder gradescope --torch`)
torch_pin=$("$VENV/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("torch", ""))' "$SOURCE/gradescope.json")
if [ -n "$torch_pin" ]; then
    "$VENV/bin/python" -c 'import torch' 2>/dev/null || "${PIP[@]}" install ${TORCH_PIP_ARGS:-} "$torch_pin"
fi
# Proof that student code can be sandboxed in this container: otherwise every upload would come
# back "not graded", so the build fails here, saying what failed and what to change.
(cd "$SOURCE" && "$VENV/bin/python" -m autograder.sandbox.check) || {
    echo "setup.sh: the grading sandbox does not work in this container (above); the autograder is not usable" >&2
    exit 1
}
echo "setup.sh: ready ($("$VENV/bin/python" --version), $VENV)"
