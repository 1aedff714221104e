"""One CLI: `lifepalette <command>`. Each command lives in `lifepalette.commands.<name>`.

A command module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Modules keep heavy imports inside their functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lifepalette import __version__
from lifepalette.errors import LifePaletteError

# Order is the order shown in --help.
COMMANDS = [
    "demo",
    "hub",
    "badge",
    "sim",
    "analyze",
    "score",
    "audit",
    "frame",
    "enroll",
    "build",
    "flash",
    "monitor",
    "doctor",
    "export",
    "erase",
    "replay",
    "sphere",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, without the usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lifepalette", description="Life Palette badges, hub and tools.")
    parser.add_argument("--version", action="version", version=f"lifepalette {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    for name in COMMANDS:  # a command that fails to import is a bug to see at once, never a command that vanishes
        importlib.import_module(f"lifepalette.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LifePaletteError as exc:
        print(f"lifepalette {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"lifepalette {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
