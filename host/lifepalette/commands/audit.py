"""`lifepalette audit DIR | --db FILE`: fairness and privacy figures, with checks that set the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lifepalette.errors import LifePaletteError, UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit",
        help="fairness and privacy audit of a sim output directory or a hub database",
        description="Per group: mean Compassion Metric level, exclusion rate by the quality gate, error against "
        "the truth where it exists (sim output), and the disparities between groups, next to a naive raw-level "
        "scorer. Privacy: every public aggregate must have k >= 5 contributors; for a hub database, no stored "
        "physiology without consent or from an erased epoch, and the per-person privacy budget the hub spent on public "
        "numbers in its last session (privacy.public_budget). Prints JSON; exits 1 if a check fails.",
    )
    p.add_argument("dir", nargs="?", metavar="DIR", help="output directory of `lifepalette sim`")
    p.add_argument("--db", metavar="FILE", help="the hub's SQLite database (read-only)")
    p.add_argument("--groups", metavar="GROUPS.json", help="dialogue groups for --db (default: one group)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.sim import audit

    if bool(args.dir) == bool(args.db):
        raise UsageError("give either DIR or --db FILE")
    if args.db:
        from lifepalette.scoring.offline import load_groups

        groups = load_groups(args.groups) if args.groups else None
        report = audit.audit_db(Path(args.db), groups)
    else:
        if args.groups:
            raise UsageError("--groups applies to --db only (a sim directory carries its own groups)")
        report = audit.audit_dir(Path(args.dir))
    json.dump(report, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")
    if not report["checks"]["ok"]:
        failed = ", ".join(k for k, v in report["checks"].items() if k != "ok" and v is False)
        raise LifePaletteError(f"audit checks failed: {failed}")
    return 0
