"""`lifepalette report --db FILE [--session N] --out report.html`: the facilitator's session report."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report", help="write a session's report for the facilitator (one self-contained, printable HTML page)",
        description="One HTML page with no external request (inline SVG): the palette ribbon, the group "
        "trajectories of arousal and synchrony, contributors over time, data quality and exclusions, counts of "
        "consent events and erasures, and the privacy budget spent. Only released public numbers, counts and "
        "shares over at least 5 wearers: no device id and no per-person number. Reads the database without "
        "changing it. Exit 2 for an unknown session or a file that is not a readable hub database.")
    p.add_argument("--db", required=True, metavar="FILE", help="the hub's SQLite database (read-only)")
    p.add_argument("--session", type=int, metavar="N",
                   help="the session to report (default: the latest; with none recorded, everything recorded)")
    p.add_argument("--out", required=True, metavar="PATH", help="the HTML file to write")
    p.add_argument("--cove", default="cove", help="the cove's name shown in the heading")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lifepalette.report.load import load_report
    from lifepalette.report.render import render

    report = load_report(args.db, args.session, cove=args.cove)
    Path(args.out).write_text(render(report), encoding="utf-8")
    which = f"session {report.session.id}" if report.session.id is not None else "everything recorded"
    print(f"wrote the report of {which} to {args.out}")
    return 0
