"""Scoring from files: the groups file and JSON-lines feature records, checked and fed to a CoveScorer.

Used by `lifepalette score` and by the audit of a simulation folder.
"""

from __future__ import annotations

import json
from typing import Any

from lifepalette.errors import UsageError


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
