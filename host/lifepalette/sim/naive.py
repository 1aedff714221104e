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


def naive_arousal(hr: np.ndarray, scl: np.ndarray, scr: np.ndarray) -> np.ndarray:
    """Arousal 0..1 from raw feature values (badge units; n/a codes honoured), any shape."""
    hr = np.where(hr == HR_NA, np.nan, hr.astype(float))
    scl_us = np.where(scl == SCL_NA, np.nan, scl.astype(float) / 100.0)
    scr = np.where(scr == SCR_NA, np.nan, scr.astype(float))
    total, count = np.zeros(hr.shape), np.zeros(hr.shape)
    for part in ((scl_us - SCL_REST_US) / SCL_PER_AROUSAL_US, (scr - SCR_REST) / SCR_PER_AROUSAL,
                 (hr - HR_REST) / HR_PER_AROUSAL):  # nanmean of the three, in its order, without stacking copies
        seen = ~np.isnan(part)
        total += np.where(seen, part, 0.0)
        count += seen
    with np.errstate(all="ignore"):
        est = LEVEL_AT_REST + total / count
    return np.clip(est, 0.0, 1.0)
