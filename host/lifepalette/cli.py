"""One CLI: `lifepalette <command>`. Each command lives in `lifepalette.commands.<name>`.

A command module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Modules keep heavy imports inside their functions so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
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
    "report",
    "frame",
    "enroll",
    "build",
    "flash",
    "monitor",
    "doctor",
    "export",
    "me_link",
    "erase",
    "backup",
    "restore",
    "replay",
    "sphere",
    "power",
]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, without the usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """--version, looking the hub's schema version up only when asked: importing the hub package costs every
    command about 200 MB and seconds (analyze has to stay under 200 MB)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="show the version and the hub database schema version, then exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from lifepalette.hub.schema import CURRENT

        print(f"lifepalette {__version__} (hub database schema version {CURRENT})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lifepalette", description="Life Palette badges, hub and tools.")
    parser.add_argument("--version", action=_Version)
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
        return _fail(args, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print(f"lifepalette {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the command boundary: what a user's input can raise becomes one line, exit 2
        message = user_error(exc, args)
        if message is None:
            raise  # a bug: the traceback is what a developer needs
        return _fail(args, message, 2)


def user_error(exc: BaseException, args: argparse.Namespace) -> str | None:
    """One line for an error caused by the user's files, folders, ports or hosts; None for anything else (a bug)."""
    if isinstance(exc, RecursionError):
        return "input is nested too deeply to read"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, UnicodeError):
        return "input is not UTF-8 text"
    if isinstance(exc, sqlite3.DatabaseError):
        db = getattr(args, "db", None)
        where = f"{db}: " if db else ""
        if "not a database" in str(exc) or "malformed" in str(exc):
            return f"{where}not a readable Life Palette hub database (corrupt, truncated or another file: {exc})"
        return f"{where}database error: {exc}"
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        return f"{exc.filename}: {what}" if exc.filename else what
    return None


def _fail(args: argparse.Namespace, message: str, code: int) -> int:
    print(f"lifepalette {args.command}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
