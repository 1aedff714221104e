"""A naive scorer for the audit's comparison: arousal from *raw levels* against fixed population norms.

This is what Life Palette deliberately does not do: with one absolute scale for everyone, people
with low tonic skin conductance ("low responders") read as permanently calm. The audit runs it on the same records
to show the disparity the cohort builds in, next to ours.
"""

from __future__ import annotations

import numpy as np

from lifepalette.scoring.fields import HR_NA, SCL_NA, SCR_NA

# population norms, roughly a typical adult at rest (the mean of the reference group in the simulator)
SCL_REST_US, SCL_PER_AROUSAL_US = 5.0, 3.0
SCR_REST, SCR_PER_AROUSAL = 2.5, 9.0
HR_REST, HR_PER_AROUSAL = 72.0, 28.0
LEVEL_AT_REST = 0.15


def _scl_part(v: np.ndarray) -> np.ndarray:
    return (v / 100.0 - SCL_REST_US) / SCL_PER_AROUSAL_US


def _scr_part(v: np.ndarray) -> np.ndarray:
    return (v - SCR_REST) / SCR_PER_AROUSAL


def _hr_part(v: np.ndarray) -> np.ndarray:
    return (v - HR_REST) / HR_PER_AROUSAL


# (field's n/a code, its arousal part from the raw value); nanmean order: SCL, SCR, HR
_PARTS = ((SCL_NA, _scl_part), (SCR_NA, _scr_part), (HR_NA, _hr_part))


def naive_arousal(hr: np.ndarray, scl: np.ndarray, scr: np.ndarray) -> np.ndarray:
    """Arousal 0..1 from raw feature values (badge units; n/a codes honoured), any shape: the nanmean of the three
    parts, clipped. Badge-typed (unsigned integer) input goes through a table of every possible value's part."""
    fields = (scl, scr, hr)
    if all(np.asarray(f).dtype.kind == "u" and np.asarray(f).dtype.itemsize <= 2 for f in fields):
        return _from_tables(fields)
    total, count = np.zeros(np.shape(hr)), np.zeros(np.shape(hr))
    for raw, (na, part_of) in zip(fields, _PARTS, strict=True):
        part = part_of(np.where(raw == na, np.nan, np.asarray(raw, dtype=float)))
        seen = ~np.isnan(part)
        total += np.where(seen, part, 0.0)
        count += seen
    return _level(total, count)


def _from_tables(fields: tuple[np.ndarray, ...]) -> np.ndarray:
    """The same numbers as the general path, bit for bit: each table entry is the part computed from that value with
    the same operations, 0.0 for the n/a code (adding 0.0 is what the general path does for a missing part), so the
    sum runs in the same order over the same doubles; a few passes over the data instead of some twenty."""
    total, count = None, None
    for raw, (na, part_of) in zip(fields, _PARTS, strict=True):
        values = np.arange(np.iinfo(raw.dtype).max + 1)
        seen = values != na
        table = np.where(seen, part_of(values.astype(float)), 0.0)
        part, known = table.take(raw), seen.astype(np.uint8).take(raw)
        if total is None:
            total, count = part, known
        else:
            total += part
            count += known
    return _level(total, count)


def _level(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        est = total / count
    est += LEVEL_AT_REST
    return np.clip(est, 0.0, 1.0, out=est)
