#!/usr/bin/env bash
# `make check-aarch64`: the hub's compiled scorer on aarch64 (a Raspberry Pi's architecture) under qemu-user
# emulation, compared bit for bit with this machine (scripts/aarch64_scoring.py). Sets up, once, in build/aarch64:
# a Debian bookworm arm64 Python 3.11 (debootstrap's first stage, unpacked without running anything) and the pinned
# numpy, numba and llvmlite aarch64 wheels from PyPI. Needs root or sudo, the network and about 600 MB.
set -euo pipefail
ROOT=${LP_AARCH64_ROOT:-build/aarch64}
PY=${PY:-.venv/bin/python}
LP_DEBIAN_PACKAGES="qemu-user-static debootstrap" bash scripts/system-deps.sh
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ! -x "$ROOT/rootfs/usr/bin/python3.11" ]; then
  echo "check-aarch64: a Debian arm64 Python 3.11 in $ROOT/rootfs"
  $SUDO debootstrap --foreign --arch=arm64 --variant=minbase --include=python3.11,python3-pip \
    bookworm "$ROOT/rootfs" http://deb.debian.org/debian >/dev/null
  # the second stage would run arm64 programs (no binfmt here): unpack the downloaded packages instead
  for deb in "$ROOT"/rootfs/var/cache/apt/archives/*.deb; do $SUDO dpkg-deb -x "$deb" "$ROOT/rootfs"; done
fi
pins=$($PY - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(" ".join(d for d in deps if re.match(r"(numpy|numba|llvmlite)==", d)))
PY
)
if [ "$(cat "$ROOT/site/.pins" 2>/dev/null)" != "$pins" ]; then
  echo "check-aarch64: $pins for aarch64 in $ROOT/site"
  rm -rf "$ROOT/site"
  PYTHONNOUSERSITE=1 qemu-aarch64-static -L "$ROOT/rootfs" "$ROOT/rootfs/usr/bin/python3.11" -m pip install -q \
    --disable-pip-version-check --root-user-action=ignore --only-binary=:all: --target "$ROOT/site" $pins
  echo "$pins" > "$ROOT/site/.pins"
fi
exec $PY scripts/aarch64_scoring.py --root "$ROOT" "$@"
