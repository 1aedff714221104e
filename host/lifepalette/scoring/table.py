"""Scoring a feature table (lifepalette.feature_table): the result `lifepalette score` prints, for notebooks too.

This is the scorer's side, with its exact numbers; `lifepalette.score_table` (hub/timeline.py, which
`lifepalette score` also calls) adds the public view as the hub's release mechanism releases it, through `on_second`.

Records are fed one second at a time through `CoveScorer.add_second`, every wearer of that second at once, in the
order the streaming path (`add` per record, then `flush`) would see them: wearers take rows in order of first
appearance, a later record for the same wearer and second replaces an earlier one, seconds without records still
step the scorer. So the numbers equal `score` over the same records as JSON lines (tests compare them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from lifepalette.errors import UsageError
from lifepalette.feature_table import DEVICE, TIME, checked_table, feature_matrix
from lifepalette.scoring.fields import CONSENT_COLOUR, CONSENT_PHYSIO, FIELD_INDEX, HR_NA, Q_EDA, Q_HR, Q_SKIN, SCL_NA
from lifepalette.scoring.scorer import CoveScorer, Groups, normalise_groups

CHUNK_S = 60  # seconds of records turned into float vectors at once (bounds memory for large tables)


def record_defaults(x: np.ndarray) -> np.ndarray:
    """`CoveScorer.record_vector`'s defaults for (records, FIELDS): no consent byte counts as consented, no quality
    byte as valid for every physiology value the record carries."""
    consent, quality = x[:, FIELD_INDEX["consent"]], x[:, FIELD_INDEX["quality"]]
    hr, scl = x[:, FIELD_INDEX["hr_bpm"]], x[:, FIELD_INDEX["scl"]]
    default_q = Q_SKIN | np.where(~np.isnan(hr) & (hr != HR_NA), Q_HR, 0) | np.where(~np.isnan(scl) & (scl != SCL_NA),
                                                                                      Q_EDA, 0)
    x[:, FIELD_INDEX["consent"]] = np.where(np.isnan(consent), CONSENT_PHYSIO | CONSENT_COLOUR, consent)
    x[:, FIELD_INDEX["quality"]] = np.where(np.isnan(quality), default_q, quality)
    return x


def _last_per_wearer_second(rows: np.ndarray, t: np.ndarray, n_rows: int) -> np.ndarray:
    """Indices of the records that count: the last one for each (wearer, second), in time order (stable)."""
    key = (t - t.min()) * n_rows + rows
    reversed_first = np.unique(key[::-1], return_index=True)[1]
    keep = np.sort(len(key) - 1 - reversed_first)
    return keep[np.argsort(t[keep], kind="stable")]


def score_table(table: pa.Table, groups: Groups = None, *, source: str = "table",
                on_second: Callable[[int, CoveScorer, np.ndarray], None] | None = None) -> dict:
    """Score a feature table (`read_features(path)`): the scorer's document (its exact numbers) and `records`.

    `groups`: lists of device ids in dialogue together, or a groups.json document ({"groups": [...]}).
    `on_second(t, scorer, rows)` runs for every second from the first record's to the last's, once the scorer has
    what `add` + `flush` would have given it by then; `rows` are the table rows that count for that second."""
    if isinstance(groups, dict) and "groups" in groups:
        groups = groups["groups"]
    members = normalise_groups(groups) or {}
    table = checked_table(table, source)
    n = table.num_rows
    if n == 0:
        raise UsageError(f"{source}: no feature records")
    dev = table.column(DEVICE).to_numpy(zero_copy_only=False).astype(np.int64)
    t = table.column(TIME).to_numpy(zero_copy_only=False).astype(np.int64)
    unique, first, inverse = np.unique(dev, return_index=True, return_inverse=True)
    appearance = np.argsort(first)
    ids = unique[appearance]  # rows in order of first appearance, as `add` assigns them
    rank = np.empty_like(appearance)
    rank[appearance] = np.arange(len(appearance))
    rows = rank[inverse]
    missing = sorted({d for g in members.values() for d in g} - set(ids.tolist()))
    if missing:
        raise UsageError(f"groups name device(s) with no records in {source}: {', '.join(map(str, missing))}")
    order = _last_per_wearer_second(rows, t, len(ids))
    scorer = CoveScorer(groups, keep_trajectory=True)
    t_sorted = t[order]
    t_first, t_last = int(t_sorted[0]), int(t_sorted[-1])
    for start in range(t_first, t_last + 1, CHUNK_S):
        lo, hi = np.searchsorted(t_sorted, [start, start + CHUNK_S])
        idx = order[lo:hi]
        x = record_defaults(feature_matrix(table.take(pa.array(idx))))
        bounds = np.searchsorted(t_sorted[lo:hi], np.arange(start, min(start + CHUNK_S, t_last + 1) + 1))
        for i in range(len(bounds) - 1):
            now, these = start + i, idx[bounds[i]:bounds[i + 1]]
            if these.size:  # a second without records is stepped when the next records come (as `add` + `flush`)
                second = np.full((len(ids), x.shape[1]), np.nan)
                second[rows[these]] = x[bounds[i]:bounds[i + 1]]
                scorer.add_second(now, ids, second)
            if on_second is not None:
                on_second(now, scorer, these)
    out: dict = dict(scorer.compute())
    out["records"] = n
    return out
