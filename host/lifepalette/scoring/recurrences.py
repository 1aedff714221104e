"""The scorer's per-second work, compiled: the gate and the recurrences (each wearer's second depends on its previous).

`gate_seconds` reads a block's records (validity, baseline features, shared colour; no state). `score_seconds` runs a
chunk of seconds for every wearer: HR smoothing, the robust baseline (learning, then tracking), the baseline z of
each feature, the arousal composite and its EMA, the synchrony channels carried over short gaps, and the regulation
state (recovery after arousal peaks, RMSSD EMA). It mutates the scorer's state arrays (scoring/wearers.py,
scoring/baseline.py) in place, so growing, forgetting and new consent epochs keep working on the same arrays. The hub
calls it for one second, the simulator for a block: both run the same loop, so their numbers are the same bits.

The constants the kernels read live here (the protocol's codes are passed in): numba caches a compiled kernel until
this file changes, so a constant kept in another module could change without the cached kernel noticing. Importing
this module does not import numba; `compiled()` does, on the scorer's first second (the CLI's help and the web app's
start-up stay cheap). Helpers the kernels call take scalars or run a whole loop: each array argument of a call costs
a reference count, which per value cost more than the arithmetic.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np

# Baseline features: log SCL (scale-free across people whose SCL differs tenfold), SCR rate, HR, RMSSD.
# Arousal reads HR smoothed over a few seconds (B_HR_SMOOTH, with its own baseline). Per-second HR noise differs
# between people (low PPG amplitude doubles it); a baseline spread inflated by noise shrinks every z, so the noisier
# group read calmer than they were at high arousal (confrontation scenario, 120 wearers, seeds 0-9: between-group
# error gap median 0.024, max 0.034 before; 0.013 and 0.022 with smoothing). Synchrony keeps the raw HR: it needs
# second-to-second timing.
B_LOGSCL, B_SCR, B_HR, B_RMSSD, B_HR_SMOOTH = range(5)
N_BASELINE = 5
HR_SMOOTH_ALPHA = 0.25  # EMA weight per second (~3.5 s): averages sensor noise, keeps arousal's ~12 s fluctuations
AROUSAL_FEATURES = (B_LOGSCL, B_SCR, B_HR_SMOOTH)
AROUSAL_WEIGHTS = (0.4, 0.3, 0.3)  # SCL, SCR rate, HR
# Synchrony uses SCL and HR only: the badge's SCR rate is a 60 s count, too smooth for 30 s windows (it only adds
# noise there; measured on simulated cohorts, Spearman vs true coupling 0.70 with it, 0.86 without).
SYNC_FEATURES = (B_LOGSCL, B_SCR, B_HR)
SYNC_WEIGHTS = (0.6, 0.0, 0.4)
SYNC_Z_CLIP = 50.0
CARRY_S = 5  # a synchrony channel missing this many seconds or fewer holds its last z
Z_CLIP = 8.0  # arousal spans many baseline SDs (calm to confrontation); clip only wild outliers
# Display mapping of the composite z to 0..1: the baseline (z = 0) sits low, +1 SD of baseline wobble adds AROUSAL_PER_Z.
AROUSAL_AT_BASELINE = 0.15
AROUSAL_PER_Z = 0.1
PEAK_Z, RECOVERED_Z, RECOVERY_TAU_S, STUCK_S = 1.5, 0.5, 90.0, 300
RMSSD_EMA_S = 60.0
HRV_CAP = 1.25  # RMSSD up to this multiple of the baseline's counts as fully regulated

MAD_TO_SD = 1.4826
TRACK_WITHIN = 2.0  # the baseline tracks only values within this many spreads of its median


def _learnt(w: int, f: int, buf: np.ndarray, median: np.ndarray, mad: np.ndarray, ready: np.ndarray) -> None:
    """The learning buffer is full: its median and MAD become the baseline."""
    samples = buf[w, f].astype(np.float64)
    med = np.median(samples)
    median[w, f] = med
    mad[w, f] = np.median(np.abs(samples - med))
    ready[w, f] = True


def _baseline_wearer(x: np.ndarray, w: int, count: np.ndarray, buf: np.ndarray, median: np.ndarray, mad: np.ndarray,
                     ready: np.ndarray, min_spread: np.ndarray, drift: float, z: np.ndarray,
                     median_after: np.ndarray) -> None:
    """Feed wearer w's baseline (row w of the arrays) a run of seconds: x (seconds, features), NaN = invalid. Writes
    each second's z after its update (`z`, NaN until the feature's baseline is ready) and the median it left
    (`median_after`, NaN while not ready).

    Learning: the first learn_s valid values are kept (float32), then their median and MAD become the baseline.
    Tracking (from the next valid second on): a stochastic quantile step of drift x spread, toward the value for the
    median and toward |value - median| for the MAD, only for values within TRACK_WITHIN spreads.
    (One call per wearer and run, with the loop inside: array arguments cost a reference count each call.)"""
    learn_s = buf.shape[2]
    for i in range(x.shape[0]):
        for f in range(x.shape[1]):
            v = x[i, f]
            if math.isnan(v):
                pass
            elif not ready[w, f]:
                c = count[w, f]
                buf[w, f, c] = v
                count[w, f] = c + 1
                if c + 1 >= learn_s:
                    _learnt(w, f, buf, median, mad, ready)
            else:
                spread = np.maximum(mad[w, f] * MAD_TO_SD, min_spread[f])
                if abs(v - median[w, f]) < TRACK_WITHIN * spread:
                    step = drift * spread
                    med = median[w, f] + step * np.sign(v - median[w, f])
                    median[w, f] = med
                    mad[w, f] = mad[w, f] + step * np.sign(abs(v - med) - mad[w, f]) / MAD_TO_SD
            if ready[w, f]:
                z[i, f] = (v - median[w, f]) / np.maximum(mad[w, f] * MAD_TO_SD, min_spread[f])
                median_after[i, f] = median[w, f]
            else:
                z[i, f] = median_after[i, f] = math.nan


def update_baseline(x: np.ndarray, count: np.ndarray, buf: np.ndarray, median: np.ndarray, mad: np.ndarray,
                    ready: np.ndarray, min_spread: np.ndarray, drift: float) -> None:
    """One second of (wearers, features) values (NaN = invalid) into the baseline's arrays (RobustBaseline.update)."""
    z = np.empty((1, x.shape[1]))
    median_after = np.empty((1, x.shape[1]))
    for w in range(x.shape[0]):
        _baseline_wearer(x[w:w + 1], w, count, buf, median, mad, ready, min_spread, drift, z, median_after)


def score_seconds(t: int, features: np.ndarray, hr_ok: np.ndarray, is_step: np.ndarray,
                  min_spread: np.ndarray, drift: float, count: np.ndarray, buf: np.ndarray, median: np.ndarray,
                  mad: np.ndarray, ready: np.ndarray,
                  hr_smooth: np.ndarray, z_last: np.ndarray, z_age: np.ndarray, arousal: np.ndarray,
                  arousal_ema: np.ndarray, last_valid_t: np.ndarray, in_peak: np.ndarray, peak_t: np.ndarray,
                  rec_score: np.ndarray, rmssd_ema: np.ndarray,
                  comp: np.ndarray, sync: np.ndarray, regulation: np.ndarray) -> None:
    """Seconds t, t + 1, ... of gated features (seconds, wearers, B_HR_SMOOTH; NaN where not valid) for every wearer.

    Writes each second's composite z (`comp`, NaN where no arousal feature is valid) and synchrony value (`sync`,
    NaN where comp is), and at each second marked in `is_step` the regulation as of that second (`regulation`, a
    row per step in order). The baseline's and the wearers' state arrays are updated in place."""
    n, rows = features.shape[0], features.shape[1]
    b = np.empty((n, N_BASELINE))  # one wearer's baseline features, its z and its medians, second by second
    z = np.empty((n, N_BASELINE))
    median_after = np.empty((n, N_BASELINE))
    for w in range(rows):
        for i in range(n):
            b[i, :B_HR_SMOOTH] = features[i, w]
            # HR smoothed over valid seconds only: an invalid second neither moves nor resets it
            if hr_ok[i, w]:
                hr, prev = features[i, w, B_HR], hr_smooth[w]
                hr_smooth[w] = hr if math.isnan(prev) else prev + HR_SMOOTH_ALPHA * (hr - prev)
                b[i, B_HR_SMOOTH] = hr_smooth[w]
            else:
                b[i, B_HR_SMOOTH] = math.nan
        _baseline_wearer(b, w, count, buf, median, mad, ready, min_spread, drift, z, median_after)
        k = 0
        for i in range(n):
            now = t + i
            total = wsum = 0.0
            for j in range(len(AROUSAL_FEATURES)):
                v = z[i, AROUSAL_FEATURES[j]]
                if not math.isnan(v):
                    total += np.minimum(np.maximum(v, -Z_CLIP), Z_CLIP) * AROUSAL_WEIGHTS[j]
                    wsum += AROUSAL_WEIGHTS[j]
            c = total / wsum if wsum > 0.0 else math.nan
            comp[i, w] = c

            # synchrony must not be flattened where arousal saturates; a channel missing for a few seconds is carried
            # forward, or the composite would jump between channel mixes
            total = wsum = 0.0
            for j in range(len(SYNC_FEATURES)):
                v = z[i, SYNC_FEATURES[j]]
                if math.isnan(v):
                    z_age[w, j] += 1
                else:
                    z_last[w, j] = np.minimum(np.maximum(v, -SYNC_Z_CLIP), SYNC_Z_CLIP)
                    z_age[w, j] = 0
                if z_age[w, j] <= CARRY_S and not math.isnan(z_last[w, j]):
                    total += z_last[w, j] * SYNC_WEIGHTS[j]
                    wsum += SYNC_WEIGHTS[j]
            sync[i, w] = total / wsum if wsum > 0.0 and not math.isnan(c) else math.nan

            if not math.isnan(c):
                a = np.minimum(np.maximum(AROUSAL_AT_BASELINE + AROUSAL_PER_Z * c, 0.0), 1.0)
                arousal[w] = a
                ema = arousal_ema[w]
                arousal_ema[w] = a if math.isnan(ema) else 0.9 * ema + 0.1 * a
                last_valid_t[w] = now

            # recovery after arousal peaks: time from z > PEAK_Z back below RECOVERED_Z (0 if stuck above)
            if not in_peak[w] and c > PEAK_Z:
                in_peak[w] = True
                peak_t[w] = now
            if in_peak[w]:
                stuck = now - peak_t[w] > STUCK_S
                if stuck or c < RECOVERED_Z:
                    score = 0.0 if stuck else math.exp(-(now - peak_t[w]) / RECOVERY_TAU_S)
                    before = rec_score[w]
                    rec_score[w] = score if math.isnan(before) else 0.7 * before + 0.3 * score  # blends into the running one
                    in_peak[w] = False
            rmssd = b[i, B_RMSSD]
            if not math.isnan(rmssd):
                ema = rmssd_ema[w]
                rmssd_ema[w] = rmssd if math.isnan(ema) else ema + (rmssd - ema) / RMSSD_EMA_S

            if is_step[i]:
                regulation[k, w] = regulation_of(rec_score[w], rmssd_ema[w], median_after[i, B_RMSSD])
                k += 1


def regulation_of(rec_score: float, rmssd_ema: float, rmssd_base: float) -> float:
    """The mean of the recovery score and RMSSD relative to its baseline (capped at HRV_CAP), of those known."""
    hrv = np.minimum(np.maximum(rmssd_ema / rmssd_base, 0.0), HRV_CAP) / HRV_CAP
    total, n = 0.0, 0
    for part in (rec_score, hrv):
        if not math.isnan(part):
            total += part
            n += 1
    return total / n if n else math.nan


def regulation_rows(rec_score: np.ndarray, rmssd_ema: np.ndarray, ready: np.ndarray, median: np.ndarray,
                    out: np.ndarray) -> None:
    """`regulation_of` for every wearer as the state is now (the report's; the baseline's RMSSD NaN until ready)."""
    for w in range(out.size):
        base = median[w, B_RMSSD] if ready[w, B_RMSSD] else math.nan
        out[w] = regulation_of(rec_score[w], rmssd_ema[w], base)


def gate_seconds(x: np.ndarray, col: tuple[int, ...], codes: tuple[int, ...], present: np.ndarray,
                 consent: np.ndarray, revision: np.ndarray, physio: np.ndarray, motion_art: np.ndarray,
                 poor_quality: np.ndarray, hr_ok: np.ndarray, eda_ok: np.ndarray, features: np.ndarray, hue: np.ndarray,
                 chroma: np.ndarray) -> None:
    """The per-record part of each second (no state): field-major records x (FIELDS, seconds, wearers), NaN where
    absent, into the scorer's `Gated` arrays (seconds, wearers). `col` holds the indices of the fields read (consent,
    quality, hr, rmssd, scl, scr, hue, chroma) and `codes` the protocol's bits and n/a codes: arguments, not constants
    of this module, so a cached kernel follows protocol/records.py (numba's cache only follows this file)."""
    c_consent, c_quality, c_hr, c_rmssd, c_scl, c_scr, c_hue, c_chroma = col
    physio_bit, paused_bit, colour_bit, q_motion, q_skin, q_hr, q_eda, hr_na, scl_na, scr_na, rmssd_na = codes
    for i in range(x.shape[1]):
        for w in range(x.shape[2]):
            c = x[c_consent, i, w]
            q = x[c_quality, i, w]
            here = not math.isnan(c)
            cons = np.int64(c) if here else np.int64(0)
            qual = np.int64(q) if not math.isnan(q) else np.int64(0)
            ok = here and cons & physio_bit > 0 and cons & paused_bit == 0
            moving = ok and qual & q_motion > 0
            usable = ok and qual & q_skin > 0 and not moving
            hr, rmssd, scl, scr = x[c_hr, i, w], x[c_rmssd, i, w], x[c_scl, i, w], x[c_scr, i, w]
            hr_valid = usable and qual & q_hr > 0 and hr != hr_na and not math.isnan(hr)
            eda_valid = usable and qual & q_eda > 0 and scl != scl_na and scl > 0
            present[i, w], consent[i, w], revision[i, w] = here, cons, cons >> 4
            physio[i, w], motion_art[i, w], hr_ok[i, w], eda_ok[i, w] = ok, moving, hr_valid, eda_valid
            poor_quality[i, w] = ok and not moving and not (hr_valid or eda_valid)
            features[i, w, B_LOGSCL] = np.log(scl) if eda_valid else math.nan
            features[i, w, B_SCR] = scr if eda_valid and scr != scr_na else math.nan
            features[i, w, B_HR] = hr if hr_valid else math.nan
            features[i, w, B_RMSSD] = rmssd if hr_valid and rmssd != rmssd_na else math.nan
            h, chr_ = x[c_hue, i, w], x[c_chroma, i, w]
            shares = here and cons & colour_bit > 0 and not math.isnan(h) and chr_ > 0
            hue[i, w] = h * 360.0 / 256.0 if shares else math.nan
            chroma[i, w] = chr_ / 255.0 if shares else 0.0


@functools.cache
def compiled() -> SimpleNamespace:
    """The kernels, compiled on the first call after a checkout and loaded from numba's cache after that."""
    from lifepalette.scoring.jit import kernel

    global _learnt, _baseline_wearer, regulation_of  # the kernels call these compiled versions
    _learnt, _baseline_wearer, regulation_of = kernel(_learnt), kernel(_baseline_wearer), kernel(regulation_of)
    return SimpleNamespace(score_seconds=kernel(score_seconds), gate_seconds=kernel(gate_seconds),
                           update_baseline=kernel(update_baseline), regulation_rows=kernel(regulation_rows))
