"""`lifepalette me-link`: a wearer's private link to their own page, and its QR code for the badge's card."""

from __future__ import annotations

import argparse
import socket


def default_base() -> str:
    """This machine as phones on the cove's network find it (mDNS), on the hub's usual web port."""
    return f"http://{socket.gethostname().split('.')[0] or 'lifepalette'}.local:8080"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "me-link", help="print a wearer's private link (and write its QR code)",
        description="Print the private link to a badge's own page (<base>/me#<token>): the wearer's trajectory, "
                    "consent and stored data, with export and erasure. The token is derived from the site key, the "
                    "badge and a generation number; --rotate makes a new one and every older link stops working at "
                    "once (a lost badge or card). Exit 2 for an unknown badge, a bad path or a bad QR file name.")
    p.add_argument("--db", required=True, help="hub database file")
    p.add_argument("--dev", type=int, required=True, metavar="N", help="device id")
    p.add_argument("--base", metavar="URL",
                   help="the hub's web address as wearers' phones reach it (default http://<this host>.local:8080)")
    p.add_argument("--qr", metavar="FILE.png|FILE.svg", help="also write the link as a QR code (PNG or SVG)")
    p.add_argument("--rotate", action="store_true", help="issue a new link; every older one stops working")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.errors import UsageError
    from lifepalette.hub import wearer_link
    from lifepalette.hub.sitekey import check_dev_id, load_site_key
    from lifepalette.hub.store import Store, existing_db

    dev_id = check_dev_id(args.dev)
    base = wearer_link.check_base(args.base or default_base())
    if args.qr:
        wearer_link.check_qr_path(args.qr)  # before anything changes: a bad name must not rotate the link
    db = existing_db(args.db)
    site_key = load_site_key(db, create=False)
    if site_key is None:
        raise UsageError(f"no site key beside {db} ({db}.sitekey): links are made from it")
    store = Store(db)
    try:
        if not store.knows_device(dev_id):
            raise UsageError(f"device {dev_id} is not enrolled in {args.db}")
        generation = store.issue_wearer_link(dev_id, rotate=args.rotate)
    finally:
        store.close()
    url = wearer_link.link(base, wearer_link.make_token(site_key, dev_id, generation))
    if args.qr:
        wearer_link.write_qr(url, args.qr)
    print(url)
    return 0
