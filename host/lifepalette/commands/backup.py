"""`lifepalette backup`: a sealed copy of the hub database and its site key, taken while the hub runs."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager


def register(subparsers) -> None:
    p = subparsers.add_parser("backup", help="write a sealed backup of the hub database (the hub may keep running)",
                              description="Copy the hub database with SQLite's online backup API (the hub keeps "
                                          "running, the copy is consistent), add the site key, and seal the file "
                                          "with a passphrase (scrypt + AES-256-GCM). Written 0600. Exit 2 on bad "
                                          "input, with nothing written.")
    p.add_argument("--db", required=True, help="hub database file")
    p.add_argument("--out", required=True, metavar="FILE", help="the backup file to write")
    p.add_argument("--passphrase-file", metavar="F",
                   help="file whose first line is the passphrase (default: ask on the terminal)")
    p.set_defaults(func=run)


def read_passphrase(path: str | None, *, confirm: bool) -> bytes:
    """The passphrase from a file (first line, without its line break) or, on a terminal, asked for."""
    import sys

    from lifepalette.errors import UsageError

    if path is not None:
        try:
            with open(path, "rb") as fh:
                text = fh.readline().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read the passphrase file {path}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        import getpass

        text = getpass.getpass("backup passphrase: ").encode()
        if confirm and getpass.getpass("again: ").encode() != text:
            raise UsageError("the passphrases differ")
    else:
        raise UsageError("no passphrase: give --passphrase-file F (no terminal to ask on)")
    if not text:
        raise UsageError("the passphrase is empty")
    return text


@contextmanager
def one_line_os_errors(what: str) -> Iterator[None]:
    """A missing folder, a full disk, a permission: one named line (exit 2), never a traceback."""
    from lifepalette.errors import UsageError

    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise UsageError(f"{what} failed: {exc.strerror or exc}{where}") from None


def run(args: argparse.Namespace) -> int:
    import json

    from lifepalette.hub.backup import write_backup
    from lifepalette.hub.store import existing_db

    passphrase = read_passphrase(args.passphrase_file, confirm=True)
    with one_line_os_errors("backup"):
        summary = write_backup(existing_db(args.db), args.out, passphrase)
    print(json.dumps({"backup": args.out, **summary}))
    return 0
