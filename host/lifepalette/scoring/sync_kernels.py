"""Synchrony's compiled loops (lifepalette.scoring.jit): the unit windows, and one synchrony step over every pair.

Imported on first use only (numba's import and the cached kernels' load cost a few tenths of a second): by
`synchrony.fill_windows` and the scorer's first synchrony step, never by an import of lifepalette that does not score.

A unit window is kept as its numbers (mean, slope, 1 / norm, validity), not its samples: with the series it rebuilds
the window, and a partner's N_LAGS lag windows all lie in one SPAN_S-second stretch of the series, so correlating
with them reads 160 bytes of series and 11 windows' numbers (a ring of the windows' samples made every step read
1.3 kB per pair and set from a 25 MB ring). The series they read is the windows' own copy (`xs`: float32, 0 where
missing; `seen`: observed 0/1), written when a window is computed, with its first columns repeated after the last so
that any SPAN_S seconds are one stretch: a valid window's samples are what its numbers came from (the scorer's series
changes under a window only when a new epoch, forget or a long silence invalidates it). The correlation's innermost
loop runs across lags: independent sums that vectorise (one sum along a window waits on each addition, and no
fastmath reassociates it). The window and lag lengths are this module's own constants: numba bakes a global into the
cached machine code and would not notice it change in another module, so the import checks them against synchrony's.
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
REPEAT_S = WINDOW_S + PADDED_LAGS - 1  # columns of the windows' series repeated after the last
if (WINDOW_S, LAG_S) != (sy.WINDOW_S, sy.LAG_S):
    raise RuntimeError("sync_kernels is compiled for other window or lag lengths than synchrony's: update both")
DOT_PASS = 6  # samples a pass of pair_step's correlation adds (it spells them out: WINDOW_S must be a multiple)
if WINDOW_S % DOT_PASS:
    raise RuntimeError("sync_kernels.pair_step adds 6 samples a pass: WINDOW_S must be a multiple of 6")
MEAN, SLOPE, SCALE = range(3)  # a window's numbers in the stats ring


@kernel
def fill_windows(series, rows, ends, slots, mirror_from, min_observed, min_sd, tc, tc2, wstat, wvalid, xs, seen):
    """The unit windows ending at each second of `ends` for wearers 0..rows-1, as (mean, slope, 1 / norm) into ring
    slot `slots[i]` of `wstat` (and its mirror slot + mirror_from where the ring has one), from the per-second series
    (wearers, history), where second s sits in column s % history (NaN = missing); their samples into `xs` and `seen`
    (wearers, history + REPEAT_S): x as float32, 0 where missing, and observed.

    A window is mean-filled where samples are missing (they add nothing), detrended by its least-squares slope over
    the observed samples (against the full window's time spread `tc2`), and scaled to unit norm: sample j of the unit
    window is (x_j - mean - slope * tc_j) / norm where x_j is observed, else 0, so a dot product of two windows is
    Pearson's r. It is valid with at least `min_observed` samples and a detrended SD above `min_sd` (invalid windows
    have scale 0). Rows from `rows` on (grown, no wearer yet) are invalid."""
    history = series.shape[1]
    x = np.empty(ends.size + WINDOW_S - 1)
    observed = np.empty(ends.size + WINDOW_S - 1)
    sums = np.empty((7, ends.size))
    count, total, sum_xt, sum_ot, mean, slope, ss = sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6]
    run = 0
    while run < ends.size:  # runs of consecutive ends (normally the step's STEP_S new ones): one span per wearer
        size = 1
        while run + size < ends.size and ends[run + size] == ends[run] + size:
            size += 1
        first = (ends[run] - WINDOW_S + 1) % history
        length = size + WINDOW_S - 1
        head = min(length, history - first)  # columns first.. before the series wraps to column 0
        for r in range(rows):
            series_r, xs_r, seen_r = series[r], xs[r], seen[r]
            n_observed = 0
            for i in range(length):
                v = np.float64(series_r[first + i if i < head else i - head])
                ok = v == v
                x[i] = v if ok else 0.0
                observed[i] = 1.0 if ok else 0.0
                n_observed += ok
            for i in range(head):
                xs_r[first + i] = x[i]
                seen_r[first + i] = observed[i] != 0.0
            for i in range(head, length):
                xs_r[i - head] = x[i]
                seen_r[i - head] = observed[i] != 0.0
            # the first REPEAT_S columns again after the last (those this run wrote)
            for i in range(min(head, REPEAT_S - first)):
                xs_r[first + i + history] = x[i]
                seen_r[first + i + history] = observed[i] != 0.0
            for i in range(head, min(length, head + REPEAT_S)):
                xs_r[i - head + history] = x[i]
                seen_r[i - head + history] = observed[i] != 0.0
            # each window's sums in sample order, in registers (a sum kept in an array goes through memory at each
            # addition); a window's numbers do not depend on the run it came in
            if n_observed == length:
                # every sample observed (about half the spans): 30 observed, and the sum of tc is exactly 0
                # (half-integers, every partial sum exact): the numbers the sums below would give
                count[:size] = WINDOW_S
                sum_ot[:size] = 0.0
                for w in range(size):
                    t0 = t1 = 0.0
                    for j in range(WINDOW_S):
                        t0 += x[w + j]
                        t1 += x[w + j] * tc[j]
                    total[w] = t0
                    sum_xt[w] = t1
            else:
                for w in range(size):
                    t0 = t1 = t2 = t3 = 0.0
                    for j in range(WINDOW_S):
                        t0 += observed[w + j]
                        t1 += x[w + j]
                        t2 += x[w + j] * tc[j]
                        t3 += observed[w + j] * tc[j]
                    count[w], total[w], sum_xt[w], sum_ot[w] = t0, t1, t2, t3
            for w in range(size):
                mean[w] = total[w] / max(count[w], 1.0)
                # the sum over observed samples of (x - mean) * tc, over tc2
                slope[w] = (sum_xt[w] - mean[w] * sum_ot[w]) / tc2
            if n_observed == length:  # (x 1.0 gives the same d)
                for w in range(size):
                    acc = 0.0
                    m, sl = mean[w], slope[w]
                    for j in range(WINDOW_S):
                        d = x[w + j] - m - sl * tc[j]
                        acc += d * d
                    ss[w] = acc
            else:
                for w in range(size):
                    acc = 0.0
                    m, sl = mean[w], slope[w]
                    for j in range(WINDOW_S):
                        d = (x[w + j] - m - sl * tc[j]) * observed[w + j]
                        acc += d * d
                    ss[w] = acc
            for w in range(size):
                norm = math.sqrt(ss[w])
                ok = count[w] >= min_observed and norm > min_sd * math.sqrt(max(count[w], 1.0))
                slot = slots[run + w]
                wstat[r, slot, MEAN] = mean[w]
                wstat[r, slot, SLOPE] = slope[w]
                wstat[r, slot, SCALE] = 1.0 / norm if ok else 0.0
                wvalid[r, slot] = ok
        run += size
    for i in range(ends.size):
        for r in range(rows, wvalid.shape[0]):
            wvalid[r, slots[i]] = False
            wstat[r, slots[i]] = 0.0
        mirror = slots[i] + mirror_from
        if mirror < wvalid.shape[1]:
            wstat[:, mirror] = wstat[:, slots[i]]
            wvalid[:, mirror] = wvalid[:, slots[i]]


@kernel
def pair_step(xs, seen, wstat, wvalid, pa, pb, order, centre_end, centre_slot, set_ends, set_starts, tc, r_clip, alpha,
              state, wearer_sum, wearer_n, lanes):
    """One synchrony step for every pair: a's centre window (ending at second `centre_end`, ring slot `centre_slot`)
    against b's N_LAGS lag windows ending at set_ends[s] - 2 * LAG_S .. set_ends[s] (slots from set_starts[s]), for
    each set s: this step's own first, then the surrogate shifts'. `xs`, `seen`: the windows' series (fill_windows);
    `order`: the pairs in the order they are computed (any order gives the same numbers, but for the per-wearer sums'
    additions). `lanes` = PADDED_LAGS, as an argument: LLVM vectorises a loop whose trip count it does not know (four
    lags an instruction) and unrolls one it knows into scalar code (that loop ran about 5x slower).

    Per pair and set: r at every lag, the peak over b's valid lags (the first maximum, as np.argmax), counted only if
    a's centre is valid and more than LAG_S of b's lags are; the peak clipped to +-r_clip, then Fisher z. The pair's
    running sums (`state` columns: sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess) add the
    surrogates in turn, then the own set; the recent excess is an EMA (weight alpha) of r above the surrogates' mean.
    Each counted excess is added to both wearers' `wearer_sum` and `wearer_n` (zeroed here).

    With b's unit window k = (x - mean_k - slope_k * tc) * scale_k on its observed samples, r_k = scale_k * (sum c x
    - mean_k * sum c o - slope_k * sum c tc o) over the window's samples (c: a's centre, o: b observed, x: b's series
    with 0 where missing): a sliding dot product over b's series, in float64; b's few gaps correct the sums of c.
    """
    history = xs.shape[1] - REPEAT_S
    rows = wvalid.shape[0]
    # every wearer's centre window (c), c * tc and their sums, once per step: pairs then read one small array
    centre = np.zeros((rows, 2, WINDOW_S))
    centre_sums = np.zeros((rows, 2))
    # (max(..., 0): an index known to be >= 0 needs no wrap-around check, so the loops over it vectorise)
    centre_first = max((centre_end - WINDOW_S + 1) % history, 0)
    for a in range(rows):
        if wvalid[a, centre_slot]:
            mean, slope, scale = wstat[a, centre_slot, MEAN], wstat[a, centre_slot, SLOPE], wstat[a, centre_slot, SCALE]
            sum_c = 0.0
            sum_ct = 0.0
            for j in range(WINDOW_S):
                c = (xs[a, centre_first + j] - mean - slope * tc[j]) * scale * seen[a, centre_first + j]
                centre[a, 0, j] = c
                centre[a, 1, j] = c * tc[j]
                sum_c += c
                sum_ct += c * tc[j]
            centre_sums[a, 0] = sum_c
            centre_sums[a, 1] = sum_ct
    dot_x = np.empty(max(lanes, N_LAGS))
    dot_o = np.empty(N_LAGS)
    dot_t = np.empty(N_LAGS)
    zs = np.empty(set_starts.size)
    oks = np.empty(set_starts.size, np.bool_)
    wearer_sum[:] = 0.0
    wearer_n[:] = 0.0
    for q in range(order.size):  # pairs by b's row: b's windows and series are read in memory order
        p = order[q]
        a, b = pa[p], pb[p]
        centre_ok = wvalid[a, centre_slot]
        sum_c, sum_ct = centre_sums[a, 0], centre_sums[a, 1]
        lag = 0
        for s in range(set_starts.size):
            start = max(set_starts[s], 0)
            n_valid = 0
            for k in range(N_LAGS):
                n_valid += wvalid[b, start + k]
            oks[s] = centre_ok and n_valid > LAG_S
            zs[s] = 0.0
            if not oks[s]:
                continue
            first = max((set_ends[s] - SPAN_S + 1) % history, 0)
            dot_x[:] = 0.0
            cen = centre[a, 0]
            # across lags innermost: independent sums, each in sample order, six samples per pass (a sum in an
            # array goes through memory at each pass: LLVM cannot tell dot_x from xs)
            for j in range(0, WINDOW_S, DOT_PASS):
                c0, c1, c2, c3, c4, c5 = cen[j], cen[j + 1], cen[j + 2], cen[j + 3], cen[j + 4], cen[j + 5]
                for k in range(lanes):
                    i = first + j + k
                    dot_x[k] = (dot_x[k] + c0 * xs[b, i] + c1 * xs[b, i + 1] + c2 * xs[b, i + 2]
                                + c3 * xs[b, i + 3] + c4 * xs[b, i + 4] + c5 * xs[b, i + 5])
            # the sums of c and c * tc over the samples b observed in each lag window: all of a's centre, less b's gaps
            observed = 0
            for i in range(SPAN_S):
                observed += seen[b, first + i]
            for k in range(N_LAGS):
                dot_o[k] = sum_c
                dot_t[k] = sum_ct
            if observed < SPAN_S:
                for i in range(SPAN_S):
                    if not seen[b, first + i]:
                        for k in range(max(0, i - WINDOW_S + 1), min(N_LAGS, i + 1)):
                            dot_o[k] -= centre[a, 0, i - k]
                            dot_t[k] -= centre[a, 1, i - k]
            # the first maximum over b's valid lags, without a branch per lag (a comparison of r's mispredicts)
            wb = wstat[b]
            vb = wvalid[b]
            best = -np.inf
            best_k = -1
            not_finite = False
            for k in range(N_LAGS):
                r = wb[start + k, SCALE] * (dot_x[k] - wb[start + k, MEAN] * dot_o[k]
                                            - wb[start + k, SLOPE] * dot_t[k])
                valid = vb[start + k]
                not_finite |= valid & (r != r)  # np.argmax would pick a NaN: the peak is not finite, not counted
                higher = valid & (r > best)
                best = r if higher else best
                best_k = k if higher else best_k
            if not_finite:
                best_k = -1
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


@kernel
def metric_points(wearer_sum, wearer_n, regulation, full_score, last_sync, metric_ring, column):
    """Each wearer's Compassion Metric point of a step into `metric_ring` column `column`: the mean of its synchrony
    part (the step's mean excess over its pairs, over `full_score`, clipped to 0-1) and its `regulation`, of those
    known (NaN if neither); the synchrony, where known, into `last_sync`. Compiled, as its numpy form cost more than
    the step's arithmetic: a dozen passes over every wearer's row between two cache-cold kernels. Rounds as that form
    did: np.clip's comparisons, nansum's (NaN as 0.0) addition in order, then the division by the count."""
    for w in range(regulation.size):
        n = wearer_n[w]
        sync = wearer_sum[w] / max(n, 1.0) if n > 0 else math.nan
        if sync == sync:
            last_sync[w] = sync
        part = sync / full_score
        if part == part:
            part = part if part > 0.0 else 0.0
            part = part if part < 1.0 else 1.0
        reg = regulation[w]
        known = (part == part) + (reg == reg)
        total = (part if part == part else 0.0) + (reg if reg == reg else 0.0)
        metric_ring[w, column] = total / known if known > 0 else math.nan
