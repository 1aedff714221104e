"""`lifepalette erase`: delete a badge's stored physiology (one consent epoch or all) with a receipt."""

from __future__ import annotations

import argparse
import sys

SCRUB_WAIT_S = 30.0  # how long to wait for other readers to let go of the erased bytes


def register(subparsers) -> None:
    p = subparsers.add_parser("erase", help="erase a badge's stored physiology and print the receipt",
                              description="Delete a badge's physiology from the hub database (one consent epoch, "
                                          "or every epoch), overwrite the freed bytes, and record an erasure "
                                          "receipt (what, when, how many rows).")
    p.add_argument("--db", required=True, help="hub database file")
    p.add_argument("--dev", type=int, required=True, metavar="N", help="device id")
    p.add_argument("--epoch", type=int, metavar="E", help="only this consent epoch (default: all epochs)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lifepalette.errors import UsageError
    from lifepalette.hub.sitekey import check_dev_id
    from lifepalette.hub.store import Store, existing_db

    dev_id = check_dev_id(args.dev)
    store = Store(existing_db(args.db))
    try:
        if not store.knows_device(dev_id):
            raise UsageError(f"device {dev_id} is not enrolled in {args.db} and nothing is stored for it")
        if args.epoch is not None and not store.knows_epoch(dev_id, args.epoch):
            raise UsageError(f"device {dev_id} has no consent epoch {args.epoch} in {args.db}")
        receipt = store.erase(dev_id, args.epoch, "operator", scrub_wait_s=SCRUB_WAIT_S)  # marks the epochs erased in the same transaction
    finally:
        store.close()
    print(json.dumps({"receipt": receipt.as_dict()}))
    if not receipt.scrubbed:
        print(f"lifepalette erase: warning: another process still reads {args.db}: the erased rows are deleted, but "
              "their old bytes stay in the file until the next checkpoint (the hub retries at every flush)",
              file=sys.stderr)
        return 1
    return 0
