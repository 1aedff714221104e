"""Compile every badge source (protocol/, firmware/) with mpy-cross -march=xtensawin; exit 1 on any error.

`make test` runs this before pytest so that a compile error fails the run even if tests are filtered.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lifepalette.tools.build import badge_source_files, mpy_cross


def main() -> int:
    sources = badge_source_files()
    failed = 0
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            out = Path(tmp) / (src.stem + ".mpy")
            error = mpy_cross(src, out, "-march=xtensawin")
            if error is not None:
                failed += 1
                print(f"{src}: {error}", file=sys.stderr)
            else:
                total += out.stat().st_size
    print(f"mpy-cross xtensawin: {len(sources) - failed}/{len(sources)} files, {total} bytes of .mpy")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
