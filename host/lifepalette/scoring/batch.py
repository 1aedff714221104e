"""Offline batch scoring: whole (wearers x seconds) feature arrays through the hub's scorer, vectorised over wearers.

`score_features` feeds blocks of seconds of every wearer (`CoveScorer.add_seconds`: the per-record gating for the
whole block at once, then the per-second step), so there is no Python loop over wearers or records, and the numbers are the streaming scorer's own: the same per-second step runs, with the same
defaults for records that carry no consent or quality byte (tests compare it with `CoveScorer.add` record by record).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from lifepalette.scoring.fields import (
    CONSENT_COLOUR,
    CONSENT_PHYSIO,
    FIELD_INDEX,
    FIELDS,
    HR_NA,
    Q_EDA,
    Q_HR,
    Q_SKIN,
    SCL_NA,
)
from lifepalette.scoring.scorer import CoveScorer, Groups, Scratch

CHUNK_S = 60  # seconds converted to float at once: bounds memory (10,000 wearers: ~50 MB per chunk)


def fill_defaults(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorised `scorer._fill_defaults` for records with the FIELDS along `axis` ((..., FIELDS) by default); records
    that are all NaN stay absent."""
    by_field = np.moveaxis(x, axis, 0)  # a view: writes go to x
    consent, quality = by_field[FIELD_INDEX["consent"]], by_field[FIELD_INDEX["quality"]]
    if not (np.isnan(consent).any() or np.isnan(quality).any()):
        return x  # every record carries both bytes (the simulator's, the hub's)
    present = ~np.isnan(by_field).all(axis=0)
    hr, scl = by_field[FIELD_INDEX["hr_bpm"]], by_field[FIELD_INDEX["scl"]]
    has_hr = ~np.isnan(hr) & (hr != HR_NA)
    has_eda = ~np.isnan(scl) & (scl != SCL_NA)
    default_q = Q_SKIN | np.where(has_hr, Q_HR, 0) | np.where(has_eda, Q_EDA, 0)
    by_field[FIELD_INDEX["consent"]] = np.where(present & np.isnan(consent), CONSENT_PHYSIO | CONSENT_COLOUR, consent)
    by_field[FIELD_INDEX["quality"]] = np.where(present & np.isnan(quality), default_q, quality)
    return x


def score_features(dev_ids: Iterable[int], features: Mapping[str, np.ndarray], groups: Groups = None, *,
                   t0: int = 0, on_second: Callable[[CoveScorer, int], None] | None = None,
                   on_block: Callable[[CoveScorer, int, np.ndarray], None] | None = None,
                   snapshot_every_s: int | None = None, **scorer_options: object) -> CoveScorer:
    """Score {field: (W, T) array} (NaN = no value; fields left out count as missing) for seconds t0..t0+T-1.

    `on_second(scorer, t)` runs after each second (e.g. to read `scorer.arousal_ema`); it makes the scorer step one
    second at a time. `on_block(scorer, t_first, zcomp)` runs after each block of seconds with every second's
    composite z (seconds, capacity); blocks end at each multiple of `snapshot_every_s` seconds after t0 (e.g. for
    palette snapshots) and otherwise every CHUNK_S seconds. Returns the scorer with every second processed; call
    `compute()` for the scores.
    """
    ids = np.asarray(list(dev_ids), dtype=np.int64)
    unknown = set(features) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown telemetry field(s): {', '.join(sorted(unknown))}")
    shapes = {np.shape(v) for v in features.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != ids.size:
        raise ValueError("features must be (wearers, seconds) arrays of one shape, a row per dev id")
    w, seconds = next(iter(shapes))
    scorer = CoveScorer(groups, **scorer_options)  # type: ignore[arg-type]
    given = {FIELD_INDEX[name]: np.asarray(values) for name, values in features.items()}
    absent = [i for i in range(len(FIELDS)) if i not in given]
    blocks = Scratch()  # one block's memory for every block, written once (not filled with NaN first)
    start = 0
    while start < seconds:
        stop = min(seconds, start + CHUNK_S)
        if snapshot_every_s:
            stop = min(stop, (start // snapshot_every_s + 1) * snapshot_every_s)
        block = blocks("block", (len(FIELDS), stop - start, w))  # field-major: each field's gating reads in order
        for i, values in given.items():
            block[i] = values[:, start:stop].T
        block[absent] = np.nan  # (fill_defaults may have written the consent and quality of the block before)
        fill_defaults(block, axis=0)
        zcomp = scorer.add_fields(t0 + start, ids, block, on_second)
        if on_block is not None:
            on_block(scorer, t0 + start, zcomp)
        start = stop
    scorer.flush()
    return scorer
