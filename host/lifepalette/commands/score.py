"""`lifepalette score FEATURES.jsonl [--groups GROUPS.json]`: the hub's scoring, offline."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lifepalette.errors import UsageError


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


def load_groups(path: str) -> list[list[int]]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read groups file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"groups file {path} is not valid JSON: {exc}") from None
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not all(isinstance(g, list) and g for g in groups):
        raise UsageError(f'groups file {path}: expected {{"groups": [[dev, ...], ...]}} with non-empty lists')
    seen: set[int] = set()
    for g in groups:
        for d in g:
            if not isinstance(d, int) or isinstance(d, bool) or d < 0:
                raise UsageError(f"groups file {path}: device ids must be non-negative integers, got {d!r}")
            if d in seen:
                raise UsageError(f"groups file {path}: device {d} is listed twice")
            seen.add(d)
    return groups


def _check_record(rec: Any, where: str, allowed: frozenset[str]) -> tuple[int, int, dict]:
    if not isinstance(rec, dict):
        raise UsageError(f"{where}: expected a JSON object")
    id_key = "device" if "device" in rec or "dev_id" not in rec else "dev_id"  # dev_id as in `frame open` output
    dev, t = rec.get(id_key), rec.get("t")
    if not isinstance(dev, int) or isinstance(dev, bool) or dev < 0:
        raise UsageError(f"{where}: '{id_key}' must be a non-negative integer")
    if not isinstance(t, int | float) or isinstance(t, bool) or t != t or t < 0:
        raise UsageError(f"{where}: 't' must be a non-negative number of seconds")
    fields = {k: v for k, v in rec.items() if k not in (id_key, "t")}
    for name, value in fields.items():
        if name not in allowed:
            raise UsageError(f"{where}: unknown field {name!r}")
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value != value):
            raise UsageError(f"{where}: field {name!r} must be a number or null")
    return dev, int(t), fields


def score_lines(lines: Any, source: str, groups: list[list[int]] | None) -> dict:
    from lifepalette.scoring import FIELDS, CoveScorer

    allowed = frozenset(FIELDS)
    scorer = CoveScorer(groups, keep_trajectory=True)
    n = 0
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {lineno}"
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
        dev, t, fields = _check_record(rec, where, allowed)
        scorer.add(dev, t, fields)
        n += 1
    if n == 0:
        raise UsageError(f"{source}: no feature records")
    missing = sorted({d for g in groups or [] for d in g} - set(scorer.rows))
    if missing:
        raise UsageError(f"groups name device(s) with no records in {source}: {', '.join(map(str, missing))}")
    scorer.flush()
    out = scorer.compute()
    out["records"] = n
    return out


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
