"""Windowed lagged correlation of arousal series, vectorised over wearers and pairs.

For a window ending at second T, wearer a's centre window (length WINDOW_S, ending LAG_S before T) is correlated
with wearer b's window shifted by every lag in -LAG_S..+LAG_S; the peak r over lags is that window's synchrony
(Boker et al. 2002, windowed cross-correlation with peak picking). Each window is mean-filled where samples are
missing, linearly detrended (so a slow drive everyone shares, such as a scenario phase, does not count as
attunement) and scaled to unit norm, so a dot product is Pearson's r. Windows with more than MAX_MISSING missing
seconds are invalid for that wearer: quality gating applies to both people.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WINDOW_S = 30
LAG_S = 5
STEP_S = 5
N_LAGS = 2 * LAG_S + 1
SPAN_S = WINDOW_S + 2 * LAG_S  # seconds of history one window needs
SURROGATE_SHIFTS_S = (45, 90, 135, 180)  # partner's series shifted this far back in time: chance alignment
MAX_MISSING = 0.2
# A window whose detrended series barely moves (SD below this, in baseline-z units) carries no timing information:
# flat or quantised-constant signals would otherwise correlate perfectly with each other.
MIN_WINDOW_SD = 0.05
R_CLIP = 0.999

_TC = (np.arange(WINDOW_S) - (WINDOW_S - 1) / 2.0).astype(np.float32)
_TC2 = float(np.sum(_TC * _TC))




SMALL_CUMSUM_ROWS = 64  # fewer rows than this: np.cumsum is cheaper than a numpy operation per second


def _window_sums(v: np.ndarray) -> np.ndarray:
    """Sum of every WINDOW_S-long window along the FIRST axis (time): (L, ...) -> (L - WINDOW_S + 1, ...), by prefix
    sums. They are np.cumsum's own additions in its order (the first prefix is the first value, each next one adds the
    next value), done as one numpy operation per second over every row: for a cove's (34, 4, 1000) segment that is
    ~3x faster than np.cumsum, whose loops along a short axis are slow."""
    cs = np.empty((v.shape[0] + 1, *v.shape[1:]))
    cs[0] = 0.0
    if v[0].size < SMALL_CUMSUM_ROWS:
        np.cumsum(v, axis=0, out=cs[1:])
    else:
        cs[1] = v[0]
        for k in range(1, v.shape[0]):
            np.add(cs[k], v[k], out=cs[k + 1])
    return cs[WINDOW_S:] - cs[:-WINDOW_S]


BLOCK_ROWS = 1024  # wearers per block: keeps temporaries in the CPU cache (~1.6x faster at 10,000 wearers)


def unit_windows(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """segment (n, L >= WINDOW_S) with NaN -> (unit windows (n, L - WINDOW_S + 1, WINDOW_S) float32, valid bool):
    every WINDOW_S-long window of the segment (L = SPAN_S gives the N_LAGS windows one synchrony step needs).

    Each window's mean and least-squares slope over its observed samples come from prefix sums (2-D work), so
    only the detrend and the scaling touch the 3-D array.
    """
    n = segment.shape[0]
    if n <= BLOCK_ROWS:
        return _unit_windows_block(segment)
    n_win = segment.shape[1] - WINDOW_S + 1
    unit = np.empty((n, n_win, WINDOW_S), np.float32)
    valid = np.empty((n, n_win), bool)
    for lo in range(0, n, BLOCK_ROWS):
        unit[lo:lo + BLOCK_ROWS], valid[lo:lo + BLOCK_ROWS] = _unit_windows_block(segment[lo:lo + BLOCK_ROWS])
    return unit, valid


def _unit_windows_block(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    missing = np.isnan(segment)
    x0 = np.where(missing, 0.0, segment)
    # the four running sums time-major (prefix sums second by second over every row), in one array
    length = segment.shape[1]
    series = np.empty((length, 4, segment.shape[0]))
    np.copyto(series[:, 0], x0.T)
    np.logical_not(missing.T, out=series[:, 1])
    j = np.arange(length, dtype=np.float64)[:, None]
    np.multiply(series[:, 0], j, out=series[:, 2])
    np.multiply(series[:, 1], j, out=series[:, 3])
    s0, count, s1, o1 = np.ascontiguousarray(_window_sums(series).transpose(1, 2, 0))  # (4, n, windows)
    offset = np.arange(count.shape[1]) + (WINDOW_S - 1) / 2.0  # window k's time centre, in segment samples
    mean = s0 / np.maximum(count, 1)
    # sum over observed samples of (x - mean) * (t - centre), with t - centre = j - offset_k
    slope = ((s1 - offset * s0) - mean * (o1 - offset * count)) / _TC2
    # the 3-D work in float32, in place where possible: it dominates the cost of synchrony for a large cove
    windows = sliding_window_view(x0.astype(np.float32), WINDOW_S, axis=1)
    detrended = windows - mean.astype(np.float32)[..., None]
    detrended -= slope.astype(np.float32)[..., None] * _TC
    if missing.any():  # a missing second adds nothing (with none missing, x 1.0 would change nothing)
        detrended *= sliding_window_view((~missing).astype(np.float32), WINDOW_S, axis=1)
    norm = np.sqrt(np.einsum("...l,...l->...", detrended, detrended))
    valid = (count >= WINDOW_S * (1.0 - MAX_MISSING)) & (norm > MIN_WINDOW_SD * np.sqrt(np.maximum(count, 1)))
    detrended *= (1.0 / np.where(valid, norm, 1.0))[..., None].astype(np.float32)  # invalid windows are never read
    return detrended, valid


def peak_r(centre_a: np.ndarray, valid_a: np.ndarray, lags_b: np.ndarray, valid_b: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: peak r over lags, the lag of the peak (s, b relative to a), and whether the window counts.

    centre_a (P, W), valid_a (P,), lags_b (P, N_LAGS, W), valid_b (P, N_LAGS).
    """
    r, lag, ok = peak_r_sets(centre_a, valid_a, [lags_b], [valid_b])
    return r[0], lag[0], ok[0]


def peak_r_sets(centre_a: np.ndarray, valid_a: np.ndarray, lags_b: list[np.ndarray], valid_b: list[np.ndarray]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`peak_r` of one centre window against several sets of b's lag windows (a step's own, the surrogate shifts'),
    with the element-by-element work for all sets at once -> r, lag, ok each (sets, P), each row contiguous
    (transcendental ufuncs may round differently on strided input). Every r is `peak_r`'s own einsum."""
    r = np.empty((centre_a.shape[0], len(lags_b), N_LAGS), np.float32)
    for i, windows in enumerate(lags_b):
        r[:, i] = np.einsum("pl,pkl->pk", centre_a, windows)
    valid = np.stack(valid_b, axis=1)
    r = np.where(valid, r, -np.inf)
    best = np.argmax(r, axis=2)
    peak = np.take_along_axis(r, best[..., None], axis=2)[..., 0]
    ok = valid_a[:, None] & (valid.sum(axis=2) > LAG_S) & np.isfinite(peak)
    r_peak = np.clip(np.where(ok, peak, 0.0), -R_CLIP, R_CLIP)
    return np.ascontiguousarray(r_peak.T), np.ascontiguousarray((best - LAG_S).T), np.ascontiguousarray(ok.T)


def fisher_z(r: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(r, -R_CLIP, R_CLIP))


def naive_pair_synchrony(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Whole-series recompute for one pair (the bench's naive peer): Fisher-z mean of per-window peak r."""
    n = min(x.size, y.size)
    zs = []
    for end in range(SPAN_S, n + 1, STEP_S):
        seg = np.stack([x[end - SPAN_S:end], y[end - SPAN_S:end]])
        unit, valid = unit_windows(seg)
        r, _lag, ok = peak_r(unit[:1, LAG_S], valid[:1, LAG_S], unit[1:], valid[1:])
        if ok[0]:
            zs.append(fisher_z(r)[0])
    return (float(np.tanh(np.mean(zs))) if zs else float("nan")), len(zs)
