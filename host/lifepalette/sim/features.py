"""Feature-level fidelity: 1 Hz telemetry records straight from the latent state, vectorised for scale.

What the badge kernels would report each second (HR, RMSSD, tonic SCL, SCR rate, motion, quality flags, the
self-reported colour and consent), with measurement noise and quality failures that depend on the wearer's
physiology: low PPG amplitude gives noisier HR and more seconds without a valid beat; motion bursts flag artefacts.
"""

from __future__ import annotations

import numpy as np

from lifepalette.feature_table import NUMPY_TYPES
from lifepalette.scoring.fields import (
    CONSENT_COLOUR,
    CONSENT_PHYSIO,
    FIELDS,
    HR_NA,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
    RMSSD_NA,
)
from lifepalette.sim import scenarios
from lifepalette.sim.cohort import Cohort, transposed

CONSENT_REVISION = 1


def _lowpass_rows(x: np.ndarray, tau_s: float) -> np.ndarray:
    """Each row through level = phi * level + (1 - phi) * x[t], from level = x[0].

    Run on the transpose, where a second's values lie side by side: (1 - phi) * x for every second in one pass, then
    per second one product added in place. The same float operations (the sum taken the other way round), at 60 % of
    the time of column by column with three new arrays a second."""
    phi = np.float32(np.exp(-1.0 / tau_s))
    seconds = transposed(x)
    seconds *= 1 - phi
    level = x[:, 0].copy()
    carried = np.empty_like(level)
    for row in seconds:
        np.multiply(level, phi, out=carried)
        row += carried
        level = row
    return transposed(seconds)


def _rolling_sum(events: np.ndarray, width: int) -> np.ndarray:
    """Events in each row's last `width` seconds (int32): the cumulative count less the count `width` seconds ago."""
    c = np.cumsum(events, axis=1, dtype=np.int32)
    out = np.empty_like(c)
    out[:, :width] = c[:, :width]
    np.subtract(c[:, width:], c[:, :-width], out=out[:, width:])
    return out


def _param(cohort: Cohort, name: str) -> np.ndarray:
    return np.array([p[name] for p in cohort.params], dtype=np.float32)[:, None]


def motion_bursts(rng: np.random.Generator, cohort: Cohort) -> np.ndarray:
    """(W, T) motion intensity 0..255 (uint8), non-zero during bursts of 1-4 s at the scenario's rate."""
    w, t = cohort.arousal.shape
    rate = scenarios.motion_rate(cohort.scenario, t)[None, :]
    draw = rng.random((w, t))  # float64 (the seeded stream); each later draw refills it
    starts = draw < rate
    intensity = rng.integers(60, 255, size=(w, t)).astype(np.uint8)  # drawn as int64 (the seeded stream), kept small
    motion = np.where(starts, intensity, np.uint8(0))
    keep = np.empty_like(starts)
    for k in range(1, 4):  # a burst lasts up to 4 s: spread each start forward, the larger intensity where they meet
        np.less(rng.random(out=draw), 0.7, out=keep)
        keep &= starts
        np.maximum(motion[:, k:], intensity[:, : t - k], out=motion[:, k:], where=keep[:, : t - k])
    return motion


def feature_records(cohort: Cohort, seed: int | None = None) -> dict[str, np.ndarray]:
    """{field: (W, T) array in the feature table's type} for every telemetry field.

    Each field is made in its final one- or two-byte type as soon as its inputs exist, and the float temporaries go
    right after, so a 10,000-wearer hour stays well under 4 GB; the random draws keep their order (same seed, same
    cohort as before). The arithmetic runs in place in as few cohort-sized arrays as it needs: the same float
    operations on the same operands as the plain expressions (a + b as b + a where that saves an array)."""
    rng = np.random.default_rng(cohort.seed + 1_000_003 if seed is None else seed)
    a = cohort.arousal
    w, t = a.shape
    low_ppg = (cohort.demographic == 1)[:, None]
    hr_noise = np.where(low_ppg, 3.0, 1.5).astype(np.float32)
    hr = np.multiply(_param(cohort, "hr_gain"), a)
    hr += _param(cohort, "hr_rest")
    noise = rng.standard_normal((w, t), dtype=np.float32)  # each later float32 draw refills it
    noise *= hr_noise
    hr += noise
    rmssd = np.multiply(0.6, a)
    np.subtract(1, rmssd, out=rmssd)
    rmssd *= _param(cohort, "rmssd_rest")
    rng.standard_normal(dtype=np.float32, out=noise)
    noise *= 4.0
    rmssd += noise
    scl_us = _lowpass_rows(a, 8.0)
    scl_us *= _param(cohort, "scl_gain")
    scl_us += 1
    scl_us *= _param(cohort, "scl_rest_us")
    rng.standard_normal(dtype=np.float32, out=noise)
    noise *= 0.01
    noise += 1
    scl_us *= noise
    scr_p = np.multiply(_param(cohort, "scr_rate_gain"), a, out=noise)
    scr_p += _param(cohort, "scr_rate_rest")
    scr_p /= 60.0
    scr = _rolling_sum(rng.random((w, t), dtype=np.float32) < scr_p, 60)
    out = {"scr_per_min": np.minimum(scr, 254, out=scr)}
    motion = out["motion"] = motion_bursts(rng, cohort)
    hr_fail = np.where(low_ppg, 0.10, 0.03).astype(np.float32)
    hr_valid = rng.random((w, t), dtype=np.float32, out=noise) >= hr_fail
    hr_valid &= motion == 0
    hr_invalid = ~hr_valid
    out["hr_bpm"] = _badge_byte(hr, 30, 250, hr_invalid, HR_NA)
    del hr
    out["rmssd_ms"] = _badge_byte(rmssd, 1, 254, hr_invalid, RMSSD_NA)
    del rmssd, hr_invalid
    eda_valid = rng.random((w, t), dtype=np.float32, out=noise) >= 0.02
    eda_valid &= scl_us >= 0.05
    scl_us *= 100
    out["scl"] = np.clip(np.rint(scl_us, out=scl_us), 1, 0xFFFE, out=scl_us).astype(np.uint16)
    del scl_us
    skin = rng.random((w, t), dtype=np.float32, out=noise) >= 0.003
    del noise
    quality = skin.astype(np.uint8) * np.uint8(Q_SKIN)  # distinct bits: OR-ing them is the sum
    quality |= (hr_valid & skin).astype(np.uint8) * np.uint8(Q_HR)
    quality |= (eda_valid & skin).astype(np.uint8) * np.uint8(Q_EDA)
    quality |= (motion > 0).astype(np.uint8) * np.uint8(Q_MOTION)
    out["quality"] = quality
    del hr_valid, eda_valid, skin
    shares_colour = (rng.random(w) < 0.8)[:, None]
    hue = rng.integers(0, 256, size=(w, 1))
    chroma = rng.integers(80, 256, size=(w, 1))
    per_wearer = {"hue": np.where(shares_colour, hue, 0), "chroma": np.where(shares_colour, chroma, 0),
                  "colour_age": np.where(shares_colour, 0, 255),
                  "consent": (CONSENT_PHYSIO | CONSENT_REVISION << 4) + shares_colour * CONSENT_COLOUR,
                  "battery": np.full((w, 1), 80)}
    for name, column in per_wearer.items():  # one value per wearer, spread over the seconds in the final type
        out[name] = np.broadcast_to(column.astype(NUMPY_TYPES[name]), (w, t)).copy()
    return {k: np.ascontiguousarray(out[k], dtype=NUMPY_TYPES[k]) for k in FIELDS}


def _badge_byte(x: np.ndarray, lo: int, hi: int, invalid: np.ndarray, na: int) -> np.ndarray:
    """np.where(~invalid, np.clip(np.rint(x), lo, hi), na) as uint8, rounding and clipping x in place."""
    np.clip(np.rint(x, out=x), lo, hi, out=x)
    out = x.astype(np.uint8)
    np.copyto(out, np.uint8(na), where=invalid)
    return out


def second_matrix(features: dict[str, np.ndarray], t: int) -> np.ndarray:
    """(W, len(FIELDS)) float matrix of one second, in FIELDS order (for CoveScorer.add_second)."""
    return np.stack([features[k][:, t] for k in FIELDS], axis=1).astype(np.float64)
