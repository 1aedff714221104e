"""`lifepalette export`: the stored frames (what consent allowed) as CSV or Parquet."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export stored frames as CSV or Parquet",
                              description="Export what consent allowed the hub to store: one row per frame, "
                                          "physiology only where the wearer shared it, colour only where shared.")
    p.add_argument("--db", required=True, help="hub database file")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="output format (default csv)")
    p.add_argument("--out", required=True, metavar="PATH", help="output file")
    p.add_argument("--dev", type=int, action="append", metavar="N", help="only these devices (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.hub.export import export
    from lifepalette.hub.store import existing_db

    n = export(existing_db(args.db), args.out, args.format, devices=args.dev)
    print(f"exported {n} rows to {args.out}")
    return 0
