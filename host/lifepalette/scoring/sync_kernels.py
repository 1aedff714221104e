"""Synchrony's compiled loops (lifepalette.scoring.jit): the unit windows, and one synchrony step over every pair.

Imported on first use only (numba's import and the cached kernels' load cost ~0.3 s): by `synchrony.unit_windows`
and the scorer's first synchrony step, never by an import of lifepalette that does not score.

A unit window is kept as its numbers (mean, slope, 1 / norm, validity), not its samples: with the per-second series
it rebuilds the window, and a partner's N_LAGS lag windows all lie in one 40-second stretch of the series, so
correlating with them reads 160 bytes of series and 11 windows' numbers (a ring of the windows' samples made every
step read 1.3 kB per pair and set from a 25 MB ring, bound by memory). The correlation's innermost loop runs across
lags: N_LAGS independent sums (one sum along a window waits on each addition; no fastmath reassociates it). Every
constant comes in as an argument: numba
bakes a global into the cached machine code and would not notice it change in another module.
"""

from __future__ import annotations

import math

import numpy as np

from lifepalette.scoring.jit import kernel

MEAN, SLOPE, SCALE = range(3)  # a window's numbers in the stats ring


@kernel
def fill_windows(series, rows, ends, slots, mirror_from, min_observed, min_sd, tc, tc2, wstat, wvalid):
    """The unit windows ending at each second of `ends` for wearers 0..rows-1, as (mean, slope, 1 / norm) into ring
    slot `slots[i]` of `wstat` (and its mirror slot + mirror_from where the ring has one), from the per-second series
    (wearers, history), where second s sits in column s % history (NaN = missing).

    A window is mean-filled where samples are missing (they add nothing), detrended by its least-squares slope over
    the observed samples (against the full window's time spread `tc2`), and scaled to unit norm: sample j of the unit
    window is (x_j - mean - slope * tc_j) / norm where x_j is observed, else 0 (`unit_sample`), so a dot product of two
    windows is Pearson's r. It is valid with at least `min_observed` samples and a detrended SD above `min_sd`
    (invalid windows have scale 0). Rows from `rows` on (grown, no wearer yet) are invalid."""
    width = tc.size
    history = series.shape[1]
    x = np.empty(width)
    observed = np.empty(width, np.bool_)
    for r in range(rows):
        values = series[r]
        for i in range(ends.size):
            column = (ends[i] - width + 1) % history  # then wrapped by comparison: a division per sample is slow
            count = 0
            total = 0.0
            for j in range(width):
                v = np.float64(values[column])
                column = column + 1 if column + 1 < history else 0
                observed[j] = v == v
                x[j] = v if observed[j] else 0.0
                count += observed[j]
                total += x[j]
            mean = total / max(count, 1)
            trend = 0.0
            for j in range(width):
                if observed[j]:
                    trend += (x[j] - mean) * tc[j]
            slope = trend / tc2
            ss = 0.0
            for j in range(width):
                if observed[j]:
                    d = x[j] - mean - slope * tc[j]
                    ss += d * d
            norm = math.sqrt(ss)
            ok = count >= min_observed and norm > min_sd * math.sqrt(max(count, 1))
            stat = wstat[r, slots[i]]
            stat[MEAN], stat[SLOPE], stat[SCALE] = mean, slope, 1.0 / norm if ok else 0.0
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
def pair_step(series, wstat, wvalid, pa, pb, centre_end, centre_slot, set_ends, set_starts, lag_s, tc, r_clip, alpha,
              state, wearer_sum, wearer_n):
    """One synchrony step for every pair: a's centre window (ending at second `centre_end`, ring slot `centre_slot`)
    against b's 2 * lag_s + 1 lag windows ending at set_ends[s] - 2 * lag_s .. set_ends[s] (slots from
    set_starts[s]), for each set s: this step's own first, then the surrogate shifts'.

    Per pair and set: r at every lag, the peak over b's valid lags (the first maximum, as np.argmax), counted only if
    a's centre is valid and more than lag_s of b's lags are; the peak clipped to +-r_clip, then Fisher z. The pair's
    running sums (`state` columns: sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess) add the
    surrogates in turn, then the own set; the recent excess is an EMA (weight alpha) of r above the surrogates' mean.
    Each counted excess is added to both wearers' `wearer_sum` and `wearer_n` (zeroed here).

    With b's unit window k = (x - mean_k - slope_k * tc) * scale_k on its observed samples, r_k = scale_k * (sum c x
    - mean_k * sum c o - slope_k * sum c tc o) over the window's samples (c: a's centre, o: b observed): a sliding
    dot product over b's series, in float64."""
    n_lags = 2 * lag_s + 1
    width = tc.size
    span = width + n_lags - 1
    history = series.shape[1]
    centre = np.empty(width)
    centre_t = np.empty(width)
    xb = np.empty(span)
    ob = np.empty(span)
    dot_x = np.empty(n_lags)
    dot_o = np.empty(n_lags)
    dot_t = np.empty(n_lags)
    zs = np.empty(set_starts.size)
    oks = np.empty(set_starts.size, np.bool_)
    wearer_sum[:] = 0.0
    wearer_n[:] = 0.0
    for p in range(pa.size):
        a, b = pa[p], pb[p]
        centre_ok = wvalid[a, centre_slot]
        lag = 0
        if centre_ok:
            unit_window(series[a], centre_end, wstat[a, centre_slot], tc, centre)
            sum_c = 0.0
            sum_ct = 0.0
            for j in range(width):
                centre_t[j] = centre[j] * tc[j]
                sum_c += centre[j]
                sum_ct += centre_t[j]
        for s in range(set_starts.size):
            start = set_starts[s]
            valid = wvalid[b, start:start + n_lags]
            oks[s] = centre_ok and valid.sum() > lag_s
            zs[s] = 0.0
            if not oks[s]:
                continue
            values = series[b]
            column = (set_ends[s] - span + 1) % history
            gaps = 0
            for i in range(span):
                v = np.float64(values[column])
                column = column + 1 if column + 1 < history else 0
                ob[i] = 1.0 if v == v else 0.0
                xb[i] = v if v == v else 0.0
                gaps += v != v
            dot_x[:] = 0.0
            for j in range(width):  # across lags innermost: n_lags independent sums, each in sample order
                cj = centre[j]
                for k in range(n_lags):
                    dot_x[k] += cj * xb[j + k]
            if gaps:
                dot_o[:] = 0.0
                dot_t[:] = 0.0
                for j in range(width):
                    cj, ctj = centre[j], centre_t[j]
                    for k in range(n_lags):
                        dot_o[k] += cj * ob[j + k]
                        dot_t[k] += ctj * ob[j + k]
            else:
                dot_o[:] = sum_c
                dot_t[:] = sum_ct
            stats = wstat[b, start:start + n_lags]
            best = -np.inf
            best_k = -1
            for k in range(n_lags):
                if valid[k]:
                    r = stats[k, SCALE] * (dot_x[k] - stats[k, MEAN] * dot_o[k] - stats[k, SLOPE] * dot_t[k])
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
                lag = best_k - lag_s
        st = state[p]
        for s in range(1, set_starts.size):  # one at a time: the running sums add in the same order every run
            if oks[s]:
                st[2] += zs[s]
                st[3] += 1.0
        if not oks[0]:
            continue
        st[0] += zs[0]
        st[1] += 1.0
        st[4] += lag
        surrogate = st[2] / st[3] if st[3] > 0 else np.nan
        excess = math.tanh(zs[0]) - math.tanh(surrogate)
        st[5] = excess if st[5] != st[5] else (1 - alpha) * st[5] + alpha * excess
        if excess == excess:
            wearer_sum[a] += excess
            wearer_sum[b] += excess
            wearer_n[a] += 1.0
            wearer_n[b] += 1.0


@kernel
def unit_window(values, end, stat, tc, out):
    """The unit window ending at second `end` of one wearer's series (second s in values[s % len]), from its numbers
    `stat` (fill_windows), into `out`."""
    width = tc.size
    history = values.size
    column = (end - width + 1) % history
    for j in range(width):
        v = np.float64(values[column])
        column = column + 1 if column + 1 < history else 0
        out[j] = (v - stat[MEAN] - stat[SLOPE] * tc[j]) * stat[SCALE] if v == v else 0.0
