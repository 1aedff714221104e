"""Windowed lagged correlation of arousal series, for every pair of a cove (compiled loops: sync_kernels).

For a window ending at second T, wearer a's centre window (length WINDOW_S, ending LAG_S before T) is correlated
with wearer b's window shifted by every lag in -LAG_S..+LAG_S; the peak r over lags is that window's synchrony
(Boker et al. 2002, windowed cross-correlation with peak picking). Each window is mean-filled where samples are
missing, linearly detrended (so a slow drive everyone shares, such as a scenario phase, does not count as
attunement) and scaled to unit norm, so a dot product is Pearson's r. Windows with more than MAX_MISSING missing
seconds are invalid for that wearer: quality gating applies to both people.
"""

from __future__ import annotations

import numpy as np

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

_TC = np.arange(WINDOW_S) - (WINDOW_S - 1) / 2.0  # each sample's time from the window's centre
_TC2 = float(np.sum(_TC * _TC))
MIN_OBSERVED = WINDOW_S * (1.0 - MAX_MISSING)  # samples a valid window has at least (24 of 30)


def fill_windows(series: np.ndarray, rows: int, ends: np.ndarray, slots: np.ndarray, mirror_from: int,
                 wstat: np.ndarray, wvalid: np.ndarray, xs: np.ndarray, seen: np.ndarray) -> None:
    """The unit windows of wearers 0..rows-1 ending at each second of `ends`, from the per-second float32 `series`
    (wearers, history: second s in column s % history, NaN = missing), as their numbers (mean, slope, 1 / norm) into
    `wstat` (wearers, slots, 3) at `slots` and their validity into `wvalid` (wearers, slots); a slot below N_LAGS is
    mirrored at slot + mirror_from when the ring has it. Their samples go to `xs` (float32, 0 where missing) and `seen`
    (bool), (wearers, history + sync_kernels.REPEAT_S). Compiled: sync_kernels.fill_windows."""
    from lifepalette.scoring import sync_kernels

    sync_kernels.fill_windows(series, rows, ends, slots, mirror_from, MIN_OBSERVED, MIN_WINDOW_SD, _TC, _TC2, wstat,
                              wvalid, xs, seen)


def unit_windows(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """segment (n, L >= WINDOW_S) with NaN -> (unit windows (n, L - WINDOW_S + 1, WINDOW_S), valid bool): every
    WINDOW_S-long window of the segment (L = SPAN_S gives the N_LAGS windows one synchrony step needs), mean-filled,
    detrended, unit norm (invalid windows are all 0). The samples from the windows' numbers (`fill_windows`)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from lifepalette.scoring.sync_kernels import REPEAT_S

    n, length = segment.shape
    series = np.ascontiguousarray(segment, np.float32)
    wstat = np.zeros((n, length - WINDOW_S + 1, 3))
    valid = np.zeros(wstat.shape[:2], bool)
    ends = np.arange(WINDOW_S - 1, length)
    xs, seen = np.zeros((n, length + REPEAT_S), np.float32), np.zeros((n, length + REPEAT_S), bool)
    fill_windows(series, n, ends, ends - (WINDOW_S - 1), wstat.shape[1], wstat, valid, xs, seen)
    x = sliding_window_view(series.astype(np.float64), WINDOW_S, axis=1)
    mean, slope, scale = (wstat[..., i, None] for i in range(3))
    return np.where(np.isnan(x), 0.0, (x - mean - slope * _TC) * scale), valid


def peak_r(centre_a: np.ndarray, valid_a: np.ndarray, lags_b: np.ndarray, valid_b: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: peak r over lags, the lag of the peak (s, b relative to a), and whether the window counts, in numpy
    (the naive peer's; the scorer's is sync_kernels.pair_step).

    centre_a (P, W), valid_a (P,), lags_b (P, N_LAGS, W), valid_b (P, N_LAGS).
    """
    r = np.where(valid_b, np.einsum("pl,pkl->pk", centre_a, lags_b), -np.inf)
    best = np.argmax(r, axis=1)
    peak = np.take_along_axis(r, best[:, None], axis=1)[:, 0]
    ok = valid_a & (valid_b.sum(axis=1) > LAG_S) & np.isfinite(peak)
    return np.clip(np.where(ok, peak, 0.0), -R_CLIP, R_CLIP), best - LAG_S, ok


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
