"""Which mpy-cross architecture a board needs.

Boards are described by hardware/boards/*.json (an "arch" field); the built-in table keeps the tools working for the
three reference boards before or without those files.
"""

from __future__ import annotations

import json
from pathlib import Path

from lifepalette.errors import UsageError
from lifepalette.paths import REPO_ROOT

BOARDS_DIR = REPO_ROOT / "hardware" / "boards"
DEFAULT_BOARD = "esp32-devkitc"

BUILTIN_ARCH = {
    "esp32-devkitc": "xtensawin",
    "esp32-s3-devkitc": "xtensawin",
    "esp32-c3-supermini": "rv32imc",
}

# sys.implementation._mpy >> 10 on a badge -> mpy-cross -march name (MicroPython's MP_NATIVE_ARCH_* numbering).
NATIVE_ARCH_NAMES = {
    0: None,
    1: "x86",
    2: "x64",
    3: "armv6",
    4: "armv6m",
    5: "armv7m",
    6: "armv7em",
    7: "armv7emsp",
    8: "armv7emdp",
    9: "xtensa",
    10: "xtensawin",
    11: "rv32imc",
    12: "rv64imc",
}


def _board_files(boards_dir: Path) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for path in sorted(boards_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # the hardware tests report broken board files; here they are just not boards
        if not isinstance(data, dict):
            continue
        found[path.stem] = data
        for key in ("name", "board", "id"):
            if isinstance(data.get(key), str):
                found.setdefault(data[key], data)
    return found


def known_boards(boards_dir: Path = BOARDS_DIR) -> dict[str, str]:
    """Board name -> arch, from the board files (when they say) and the built-in table."""
    boards = dict(BUILTIN_ARCH)
    for name, data in _board_files(boards_dir).items():
        arch = data.get("arch")
        if isinstance(arch, str) and arch:
            boards[name] = arch
    return boards


def board_arch(name: str, boards_dir: Path = BOARDS_DIR) -> str:
    boards = known_boards(boards_dir)
    if name not in boards:
        raise UsageError(f"unknown board {name!r}: known boards are {', '.join(sorted(boards))}")
    return boards[name]


def arch_from_mpy_flags(mpy_flags: int) -> str | None:
    """The native architecture a badge reports in sys.implementation._mpy (None: no native code support)."""
    return NATIVE_ARCH_NAMES.get((mpy_flags >> 10) & 0x3F)
