"""Rounding for the scores document: Python's `round(float(v), digits)` (None for NaN and infinities) over whole
arrays, bit for bit, without a Python call per number.

Why: a palette snapshot of a 1,000-wearer cove rounds ~3,000 numbers and a simulated hour takes 60 snapshots;
`round(x, n)` goes through a decimal string each time. `rint(x * 10**n) / 10**n` gives the same double whenever
x * 10**n is not within a rounding error of a half-integer (the division of two exact doubles is correctly rounded,
as Python's parse of the rounded decimal is); the few numbers that close to a tie go through `round` itself.
"""

from __future__ import annotations

import numpy as np

_TIE_MARGIN = 1e-6  # far above the error of x * 10**n (|x * 10**n| < 2**40), far below any real distance to a tie
_EXACT_BELOW = 2.0**40


def rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """[round(float(v), digits) if v is finite else None for v in values], as a list."""
    x = np.asarray(values, dtype=np.float64)
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * scale
        out = np.rint(y) / scale
        finite = np.isfinite(x)
        frac = np.abs(y - np.floor(y) - 0.5)
        slow = finite & ((frac < _TIE_MARGIN) | ~(np.abs(y) < _EXACT_BELOW))
    result: list[float | None] = out.tolist()
    for i in np.flatnonzero(slow).tolist():
        result[i] = round(float(x[i]), digits)
    for i in np.flatnonzero(~finite).tolist():
        result[i] = None
    return result
