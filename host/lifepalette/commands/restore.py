"""`lifepalette restore`: put a sealed backup back in place, without bringing back anything erased since."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("restore", help="restore a sealed backup (the hub must be stopped)",
                              description="Decrypt a backup written by `lifepalette backup`, migrate it to this "
                                          "release's schema, carry out every erasure journaled beside the database "
                                          "since the backup was taken, then put it and its site key in place. "
                                          "Refused while a hub runs on the database. Exit 2 on bad input "
                                          "(wrong passphrase, damaged or truncated backup), with the database "
                                          "untouched.")
    p.add_argument("--in", dest="src", required=True, metavar="FILE", help="the backup file")
    p.add_argument("--db", required=True, help="hub database file to replace (or create)")
    p.add_argument("--passphrase-file", metavar="F",
                   help="file whose first line is the passphrase (default: ask on the terminal)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lifepalette.commands.backup import one_line_os_errors, read_passphrase
    from lifepalette.hub.backup import restore_backup

    passphrase = read_passphrase(args.passphrase_file, confirm=False)
    with one_line_os_errors("restore"):
        summary = restore_backup(args.src, args.db, passphrase)
    print(json.dumps(summary))
    return 0
