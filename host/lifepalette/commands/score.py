"""`lifepalette score FEATURES.jsonl [--groups GROUPS.json]`: the hub's scoring, offline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lifepalette.errors import UsageError
from lifepalette.scoring.offline import load_groups, score_lines


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score 1 Hz feature records offline (Compassion Metric, synchrony, palette)",
        description="Run the hub's scoring over JSON-lines feature records, e.g. "
        '{"device": 3, "t": 17, "hr_bpm": 74, "scl": 512, ...} (telemetry field names, t in seconds). '
        "Prints one JSON object: per-wearer Compassion Metric trajectories (level, trend, confidence; never a "
        "ranking), synchrony for every pair in the same group against a surrogate baseline, groups, the palette, "
        "and public aggregates (only where at least 5 consenting people contribute). A record without 'consent' "
        "counts as consented; without 'quality', every physiology value it carries counts as valid.",
    )
    p.add_argument("features", metavar="FEATURES.jsonl", help="feature records, one JSON object per line ('-' = stdin)")
    p.add_argument("--groups", metavar="GROUPS.json",
                   help='who is in dialogue together: {"groups": [[1, 2], [3, 4, 5]]} (default: everyone one group)')
    p.add_argument("--indent", type=int, default=None, help="pretty-print the JSON with this indent")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    groups = load_groups(args.groups) if args.groups else None
    source = "stdin" if args.features == "-" else args.features
    try:
        if args.features == "-":
            out = score_lines(sys.stdin, source, groups)
        else:
            with open(args.features, encoding="utf-8") as fh:
                out = score_lines(fh, source, groups)
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text") from None
    json.dump(out, sys.stdout, indent=args.indent, allow_nan=False)
    sys.stdout.write("\n")
    return 0
