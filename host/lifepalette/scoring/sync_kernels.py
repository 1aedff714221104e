"""Synchrony's compiled loops (lifepalette.scoring.jit): the unit windows, and one synchrony step over every pair.

Imported on first use only (numba's import and the cached kernels' load cost a few tenths of a second): by
`synchrony.fill_windows` and the scorer's first synchrony step, never by an import of lifepalette that does not score.

A unit window is kept as its numbers (mean, slope, 1 / norm, validity), not its samples: with the per-second series
it rebuilds the window, and a partner's N_LAGS lag windows all lie in one SPAN_S-second stretch of the series, so
correlating with them reads 160 bytes of series and 11 windows' numbers (a ring of the windows' samples made every
step read 1.3 kB per pair and set from a 25 MB ring). The correlation's innermost loop runs across lags: independent
sums that vectorise (one sum along a window waits on each addition, and no fastmath reassociates it). The window and
lag lengths are this module's own constants: numba bakes a global into the cached machine code and would not notice
it change in another module, so the import checks them against synchrony's.
"""

from __future__ import annotations

import math

import numpy as np

from lifepalette.scoring import synchrony as sy
from lifepalette.scoring.jit import kernel

WINDOW_S = 30
LAG_S = 5
N_LAGS = 2 * LAG_S + 1
SPAN_S = WINDOW_S + N_LAGS - 1
PADDED_LAGS = 12  # N_LAGS rounded up to whole 4-wide vectors: the extra lag is computed and never read
if (WINDOW_S, LAG_S) != (sy.WINDOW_S, sy.LAG_S):
    raise RuntimeError("sync_kernels is compiled for other window or lag lengths than synchrony's: update both")
MEAN, SLOPE, SCALE = range(3)  # a window's numbers in the stats ring


@kernel
def read_span(series, row, end, length, x, observed):
    """Seconds end - length + 1 .. end of one wearer's series (second s at series[row, s % history]) into x[:length]
    as float64 (0 where missing) and observed[:length] (1.0 or 0.0); returns the number missing. (Indices, not views:
    numba counts references to every view it makes, which costs more than these loops.)"""
    history = series.shape[1]
    first = (end - length + 1) % history
    missing = 0
    for i in range(length):
        column = first + i if first + i < history else first + i - history  # (a division per sample is slow)
        v = np.float64(series[row, column])
        missing += v != v
        x[i] = v if v == v else 0.0
        observed[i] = 1.0 if v == v else 0.0
    return missing


@kernel
def fill_windows(series, rows, ends, slots, mirror_from, min_observed, min_sd, tc, tc2, wstat, wvalid):
    """The unit windows ending at each second of `ends` for wearers 0..rows-1, as (mean, slope, 1 / norm) into ring
    slot `slots[i]` of `wstat` (and its mirror slot + mirror_from where the ring has one), from the per-second series
    (wearers, history), where second s sits in column s % history (NaN = missing).

    A window is mean-filled where samples are missing (they add nothing), detrended by its least-squares slope over
    the observed samples (against the full window's time spread `tc2`), and scaled to unit norm: sample j of the unit
    window is (x_j - mean - slope * tc_j) / norm where x_j is observed, else 0, so a dot product of two windows is
    Pearson's r. It is valid with at least `min_observed` samples and a detrended SD above `min_sd` (invalid windows
    have scale 0). Rows from `rows` on (grown, no wearer yet) are invalid."""
    x = np.empty(WINDOW_S)
    observed = np.empty(WINDOW_S)
    for r in range(rows):
        for i in range(ends.size):
            count = WINDOW_S - read_span(series, r, ends[i], WINDOW_S, x, observed)
            total = sum_xt = sum_ot = 0.0
            for j in range(WINDOW_S):
                total += x[j]
                sum_xt += x[j] * tc[j]
                sum_ot += observed[j] * tc[j]
            mean = total / max(count, 1)
            slope = (sum_xt - mean * sum_ot) / tc2  # the sum over observed samples of (x - mean) * tc, over tc2
            ss = 0.0
            for j in range(WINDOW_S):
                d = (x[j] - mean - slope * tc[j]) * observed[j]
                ss += d * d
            norm = math.sqrt(ss)
            ok = count >= min_observed and norm > min_sd * math.sqrt(max(count, 1))
            wstat[r, slots[i], MEAN] = mean
            wstat[r, slots[i], SLOPE] = slope
            wstat[r, slots[i], SCALE] = 1.0 / norm if ok else 0.0
            wvalid[r, slots[i]] = ok
    for i in range(ends.size):
        for r in range(rows, wvalid.shape[0]):
            wvalid[r, slots[i]] = False
            wstat[r, slots[i]] = 0.0
        mirror = slots[i] + mirror_from
        if mirror < wvalid.shape[1]:
            wstat[:, mirror] = wstat[:, slots[i]]
            wvalid[:, mirror] = wvalid[:, slots[i]]


@kernel
def pair_step(series, wstat, wvalid, pa, pb, centre_end, centre_slot, set_ends, set_starts, tc, r_clip, alpha,
              state, wearer_sum, wearer_n):
    """One synchrony step for every pair: a's centre window (ending at second `centre_end`, ring slot `centre_slot`)
    against b's N_LAGS lag windows ending at set_ends[s] - 2 * LAG_S .. set_ends[s] (slots from set_starts[s]), for
    each set s: this step's own first, then the surrogate shifts'.

    Per pair and set: r at every lag, the peak over b's valid lags (the first maximum, as np.argmax), counted only if
    a's centre is valid and more than LAG_S of b's lags are; the peak clipped to +-r_clip, then Fisher z. The pair's
    running sums (`state` columns: sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess) add the
    surrogates in turn, then the own set; the recent excess is an EMA (weight alpha) of r above the surrogates' mean.
    Each counted excess is added to both wearers' `wearer_sum` and `wearer_n` (zeroed here).

    With b's unit window k = (x - mean_k - slope_k * tc) * scale_k on its observed samples, r_k = scale_k * (sum c x
    - mean_k * sum c o - slope_k * sum c tc o) over the window's samples (c: a's centre, o: b observed, x: b's series
    with 0 where missing): a sliding dot product over b's series, in float64; b's few gaps correct the sums of c.
    """
    centre = np.empty(WINDOW_S)
    centre_t = np.empty(WINDOW_S)
    xa = np.empty(WINDOW_S)
    oa = np.empty(WINDOW_S)
    xb = np.zeros(WINDOW_S + PADDED_LAGS - 1)  # b's span, then 0 padding for the extra lag
    ob = np.empty(SPAN_S)
    dot_x = np.empty(PADDED_LAGS)
    dot_o = np.empty(N_LAGS)
    dot_t = np.empty(N_LAGS)
    zs = np.empty(set_starts.size)
    oks = np.empty(set_starts.size, np.bool_)
    wearer_sum[:] = 0.0
    wearer_n[:] = 0.0
    sum_c = sum_ct = 0.0
    for p in range(pa.size):
        a, b = pa[p], pb[p]
        centre_ok = wvalid[a, centre_slot]
        lag = 0
        if centre_ok:
            read_span(series, a, centre_end, WINDOW_S, xa, oa)
            mean, slope, scale = wstat[a, centre_slot, MEAN], wstat[a, centre_slot, SLOPE], wstat[a, centre_slot, SCALE]
            sum_c = sum_ct = 0.0
            for j in range(WINDOW_S):
                centre[j] = (xa[j] - mean - slope * tc[j]) * scale * oa[j]
                centre_t[j] = centre[j] * tc[j]
                sum_c += centre[j]
                sum_ct += centre_t[j]
        for s in range(set_starts.size):
            start = set_starts[s]
            n_valid = 0
            for k in range(N_LAGS):
                n_valid += wvalid[b, start + k]
            oks[s] = centre_ok and n_valid > LAG_S
            zs[s] = 0.0
            if not oks[s]:
                continue
            missing = read_span(series, b, set_ends[s], SPAN_S, xb, ob)
            dot_x[:] = 0.0
            for j in range(WINDOW_S):  # across lags innermost: independent sums, each in sample order
                cj = centre[j]
                for k in range(PADDED_LAGS):
                    dot_x[k] += cj * xb[j + k]
            # the sums of c and c * tc over the samples b observed in each lag window: all of a's centre, less b's gaps
            for k in range(N_LAGS):
                dot_o[k] = sum_c
                dot_t[k] = sum_ct
            if missing:
                for i in range(SPAN_S):
                    if ob[i] == 0.0:
                        for k in range(max(0, i - WINDOW_S + 1), min(N_LAGS, i + 1)):
                            dot_o[k] -= centre[i - k]
                            dot_t[k] -= centre_t[i - k]
            best = -np.inf
            best_k = -1
            for k in range(N_LAGS):
                if wvalid[b, start + k]:
                    r = wstat[b, start + k, SCALE] * (dot_x[k] - wstat[b, start + k, MEAN] * dot_o[k]
                                                      - wstat[b, start + k, SLOPE] * dot_t[k])
                    if r != r:  # np.argmax would pick a NaN: the peak is not finite, the window not counted
                        best_k = -1
                        break
                    if r > best:
                        best, best_k = r, k
            if best_k < 0:
                oks[s] = False
                continue
            zs[s] = math.atanh(min(max(best, -r_clip), r_clip))
            if s == 0:
                lag = best_k - LAG_S
        for s in range(1, set_starts.size):  # one at a time: the running sums add in the same order every run
            if oks[s]:
                state[p, 2] += zs[s]
                state[p, 3] += 1.0
        if not oks[0]:
            continue
        state[p, 0] += zs[0]
        state[p, 1] += 1.0
        state[p, 4] += lag
        surrogate = state[p, 2] / state[p, 3] if state[p, 3] > 0 else np.nan
        excess = math.tanh(zs[0]) - math.tanh(surrogate)
        recent = state[p, 5]
        state[p, 5] = excess if recent != recent else (1 - alpha) * recent + alpha * excess
        if excess == excess:
            wearer_sum[a] += excess
            wearer_sum[b] += excess
            wearer_n[a] += 1.0
            wearer_n[b] += 1.0
