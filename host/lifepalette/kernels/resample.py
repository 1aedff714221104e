"""Resampling recordings to a badge's rate (used by `lifepalette analyze` and the validation tests)."""

from __future__ import annotations

import numpy as np


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Box-filter then linearly interpolate `x` (float) from rate_in to rate_out, starting at t = 0.

    Down-sampling averages over one output period first (a cheap anti-alias filter, as a sensor's ADC would)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or rate_in <= 0 or rate_out <= 0:
        return np.zeros(0)
    if rate_in > rate_out:
        width = max(int(round(rate_in / rate_out)), 1)
        if width > 1 and x.size >= width:
            cs = np.concatenate(([0.0], np.cumsum(x)))
            smooth = (cs[width:] - cs[:-width]) / width
            # centre the box on each input sample
            pad_lo = (width - 1) // 2
            x = np.concatenate((np.full(pad_lo, smooth[0]), smooth, np.full(x.size - smooth.size - pad_lo,
                                                                              smooth[-1])))
    t_in = np.arange(x.size) / rate_in
    n_out = int(np.floor(t_in[-1] * rate_out)) + 1
    return np.interp(np.arange(n_out) / rate_out, t_in, x)
