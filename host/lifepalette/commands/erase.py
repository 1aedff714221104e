"""`lifepalette erase`: delete a badge's stored physiology (one consent epoch or all) with a receipt."""

from __future__ import annotations

import argparse


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

    from lifepalette.hub.sitekey import check_dev_id
    from lifepalette.hub.store import Store, existing_db

    dev_id = check_dev_id(args.dev)
    store = Store(existing_db(args.db))
    try:
        receipt = store.erase(dev_id, args.epoch, "operator")  # marks the epochs erased in the same transaction
    finally:
        store.close()
    print(json.dumps({"receipt": receipt.as_dict()}))
    return 0
