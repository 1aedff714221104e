"""`lifepalette enroll`: register a badge with the hub and write its config (key included) for flashing."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("enroll", help="enrol a badge: derive its key and write its config",
                              description="Enrol a badge: create the site key on first use (0600, beside the "
                                          "database), derive the badge key from it, register the badge in the "
                                          "database and write the badge config JSON (never printed).")
    p.add_argument("--db", required=True, help="hub database file (created if missing)")
    p.add_argument("--dev", type=int, required=True, metavar="N", help="device id, 1..65535")
    p.add_argument("--out", metavar="CONFIG.json", help="where to write the badge config (default badge-<N>.json)")
    p.add_argument("--board", default="esp32-devkitc", help="board name for the config (default esp32-devkitc)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lifepalette.hub.core import ensure_group_key
    from lifepalette.hub.sitekey import badge_config, check_dev_id, derive_device_key, load_site_key, write_private_json
    from lifepalette.hub.store import Store

    dev_id = check_dev_id(args.dev)
    out = Path(args.out or f"badge-{dev_id}.json")
    if out.exists() and out.is_dir():
        from lifepalette.errors import UsageError

        raise UsageError(f"{out} is a directory")
    store = Store(args.db)
    try:
        site_key = load_site_key(args.db, create=True)
        new = store.register_device(dev_id)
        group_id, group_key = ensure_group_key(store)
    finally:
        store.close()
    config = badge_config(dev_id, derive_device_key(site_key, dev_id), group_id, group_key, board=args.board)
    write_private_json(out, config)
    state = "enrolled" if new else "already enrolled; config rewritten for"
    print(f"{state} badge {dev_id}: config {out} (mode 0600; flash it with `lifepalette flash`)")
    return 0
