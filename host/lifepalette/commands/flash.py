"""`lifepalette flash`: copy the badge code and its config to a badge over USB serial (mpremote's raw REPL)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flash",
        help="put the firmware and a badge config on a badge over USB",
        description="Build for the badge's architecture, then copy only the files whose hashes (computed on the "
        "badge) differ, plus the config from `lifepalette enroll` as /config.json. New files are staged and "
        "verified first and switched in afterwards, so an interrupted flash leaves the badge bootable. Ends with "
        "a soft reset (skipped for a virtual badge on the unix port).",
    )
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0 or /dev/lifepalette-badge-0")
    p.add_argument("--board", default=None,
                   help="board name (default: the config's \"board\", else the badge's own architecture)")
    p.add_argument("--config", type=Path, default=None, help="badge config JSON written by `lifepalette enroll`")
    p.add_argument("--build", dest="build_dir", type=Path, default=None,
                   help="flash a folder written by `lifepalette build --out DIR` instead of building now")
    p.add_argument("--baud", type=int, default=115200, help="serial baud rate (default 115200)")
    p.add_argument("--yes", action="store_true", help="do not ask before replacing another badge's config")
    p.add_argument("--no-reset", action="store_true", help="do not soft-reset the badge afterwards")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.tools.flash import flash
    from lifepalette.tools.progress import ProgressBar

    bar: ProgressBar | None = None

    def progress(done: int, total: int, path: str) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, "copy")
        bar.update(done, path)

    try:
        report = flash(args.port, board=args.board, config=args.config, build_dir=args.build_dir, baud=args.baud,
                       progress=progress, reset=not args.no_reset,
                       confirm=None if args.yes else _confirm)
    finally:
        if bar is not None:
            bar.close()
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    info = report.info
    print(f"badge: MicroPython {info.version_text} on {info.platform} ({report.arch or 'no native code'})")
    if not report.copied and not report.deleted and not report.reused:
        print(f"up to date: {report.files} files already match, nothing copied")
    else:
        print(f"copied {len(report.copied)} file(s), {report.bytes_copied} bytes; reused {len(report.reused)} "
              f"staged; removed {len(report.deleted)} stale; {report.files} files verified")
    print("soft reset: done" if report.reset else "soft reset: skipped")
    return 0


def _confirm(question: str) -> bool:
    from lifepalette.errors import UsageError

    if not sys.stdin.isatty():
        raise UsageError(f"{question} Pass --yes to confirm.")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
