"""`lifepalette score FEATURES [--groups GROUPS.json] [--timeline] [--seed N]`: the hub's scoring, offline (Parquet
or JSON lines)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lifepalette.scoring.offline import load_groups


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score 1 Hz feature records offline (Compassion Metric, synchrony, palette)",
        description="Run the hub's scoring over feature records (a Parquet feature table, or JSON lines such as "
        '{"device": 3, "t": 17, "hr_bpm": 74, "scl": 512, ...} (telemetry field names, t in seconds); the format is chosen by suffix). '
        "Prints one JSON object: per-wearer Compassion Metric trajectories (level, trend, confidence; never a "
        "ranking), synchrony for every pair in the same group against a surrogate baseline, groups, the palette, "
        "and 'public': the public view exactly as the hub would release it at the last second (aggregates only "
        "where at least 5 consenting people contribute, through the release mechanism: noise, cadence, budget). "
        "With --timeline, prints instead one JSON line per scored second: {\"t\": T, \"public\": <that second's "
        "public view>}. A record without 'consent' counts as consented; without 'quality', every physiology value "
        "it carries counts as valid.",
    )
    p.add_argument("features", metavar="FEATURES",
                   help="feature records: a .parquet/.pq feature table, else JSON lines ('-' = stdin)")
    p.add_argument("--groups", metavar="GROUPS.json",
                   help='who is in dialogue together: {"groups": [[1, 2], [3, 4, 5]]} (default: everyone one group)')
    p.add_argument("--indent", type=int, default=None, help="pretty-print the JSON with this indent")
    p.add_argument("--timeline", action="store_true",
                   help='one JSON line per scored second: {"t": T, "public": <the public view released at T>}')
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="fix the release mechanism's randomness (default: from os.urandom, as the hub)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.feature_table import read_features
    from lifepalette.hub.timeline import score_table

    groups = load_groups(args.groups) if args.groups else None
    source = "stdin" if args.features == "-" else args.features

    def print_view(t: int, view: Any) -> None:
        sys.stdout.write(json.dumps({"t": t, "public": view.to_json()}, allow_nan=False) + "\n")

    out = score_table(read_features(args.features), groups, seed=args.seed, source=source,
                      on_view=print_view if args.timeline else None)
    if args.timeline:
        return 0
    json.dump(out, sys.stdout, indent=args.indent, allow_nan=False)
    sys.stdout.write("\n")
    return 0
