"""Scoring from files: the groups file and JSON-lines feature records (checked by lifepalette.feature_table).

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


def score_lines(lines: Any, source: str, groups: list[list[int]] | None) -> dict:
    """JSON-lines feature records, checked (lifepalette.feature_table) and scored like any feature table."""
    from lifepalette.feature_table import iter_jsonl, table_from_records
    from lifepalette.scoring.table import score_table

    return score_table(table_from_records(iter_jsonl(lines, source)), groups, source=source)
