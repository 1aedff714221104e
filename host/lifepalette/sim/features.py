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


ROWS = 64  # wearers per slice of float arithmetic: a slice of an hour (~1 MB of float32) stays in the CPU's cache
PARAMS = ("hr_rest", "hr_gain", "rmssd_rest", "scl_rest_us", "scl_gain", "scr_rate_rest", "scr_rate_gain")


def feature_records(cohort: Cohort, seed: int | None = None) -> dict[str, np.ndarray]:
    """{field: (W, T) array in the feature table's type} for every telemetry field.

    Each field is made in its final one- or two-byte type as soon as its inputs exist, so a 10,000-wearer hour stays
    well under 4 GB; the random draws keep their order (same seed, same cohort as before), each a whole (W, T) draw
    into one reused buffer. The float arithmetic between draws runs a slice of ROWS wearers at a time, in place: the
    same float operations on the same operands as the plain expressions (a + b as b + a where that saves an array)."""
    rng = np.random.default_rng(cohort.seed + 1_000_003 if seed is None else seed)
    a = cohort.arousal
    w, t = a.shape
    p = {name: _param(cohort, name) for name in PARAMS}
    low_ppg = (cohort.demographic == 1)[:, None]
    slices = [slice(start, start + ROWS) for start in range(0, w, ROWS)]
    noise = rng.standard_normal((w, t), dtype=np.float32)  # each later float32 draw refills it
    hr, rmssd = _heart(rng, noise, a, p, np.where(low_ppg, 3.0, 1.5).astype(np.float32), slices)
    scl, scl_ok = _skin_conductance(rng, noise, a, p, slices)
    out = {"scr_per_min": _scr_per_min(rng, noise, a, p, slices)}
    motion = out["motion"] = motion_bursts(rng, cohort)
    hr_fail = np.where(low_ppg, 0.10, 0.03).astype(np.float32)
    hr_valid = rng.random((w, t), dtype=np.float32, out=noise) >= hr_fail
    hr_valid &= motion == 0
    hr_invalid = ~hr_valid
    np.copyto(hr, np.uint8(HR_NA), where=hr_invalid)
    np.copyto(rmssd, np.uint8(RMSSD_NA), where=hr_invalid)
    out["hr_bpm"], out["rmssd_ms"], out["scl"] = hr, rmssd, scl
    del hr_invalid
    eda_valid = rng.random((w, t), dtype=np.float32, out=noise) >= 0.02
    eda_valid &= scl_ok
    del scl_ok
    skin = rng.random((w, t), dtype=np.float32, out=noise) >= 0.003
    del noise
    out["quality"] = _quality(skin, hr_valid, eda_valid, motion)
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


def _heart(rng: np.random.Generator, noise: np.ndarray, a: np.ndarray, p: dict[str, np.ndarray],
           hr_noise: np.ndarray, slices: list[slice]) -> tuple[np.ndarray, np.ndarray]:
    """HR and RMSSD, rounded and clipped to their bytes (n/a codes come once validity is drawn); `noise` holds the
    HR draw on entry and takes the RMSSD draw."""
    w, t = a.shape
    hr, rmssd = np.empty((w, t), np.uint8), np.empty((w, t), np.uint8)
    for rows in slices:
        x = np.multiply(p["hr_gain"][rows], a[rows])
        x += p["hr_rest"][rows]
        n = noise[rows]
        n *= hr_noise[rows]
        x += n
        hr[rows] = _rounded(x, 30, 250)
    rng.standard_normal(dtype=np.float32, out=noise)
    for rows in slices:
        x = np.multiply(0.6, a[rows])
        np.subtract(1, x, out=x)
        x *= p["rmssd_rest"][rows]
        n = noise[rows]
        n *= 4.0
        x += n
        rmssd[rows] = _rounded(x, 1, 254)
    return hr, rmssd


def _skin_conductance(rng: np.random.Generator, noise: np.ndarray, a: np.ndarray, p: dict[str, np.ndarray],
                      slices: list[slice]) -> tuple[np.ndarray, np.ndarray]:
    """Tonic SCL in 0.01 uS (uint16) and whether it is high enough for a valid EDA second (>= 0.05 uS)."""
    w, t = a.shape
    scl, scl_ok = np.empty((w, t), np.uint16), np.empty((w, t), bool)
    level = _lowpass_rows(a, 8.0)
    rng.standard_normal(dtype=np.float32, out=noise)
    for rows in slices:
        x = level[rows]
        x *= p["scl_gain"][rows]
        x += 1
        x *= p["scl_rest_us"][rows]
        n = noise[rows]
        n *= 0.01
        n += 1
        x *= n
        np.greater_equal(x, 0.05, out=scl_ok[rows])
        x *= 100
        scl[rows] = _rounded(x, 1, 0xFFFE)
    return scl, scl_ok


def _scr_per_min(rng: np.random.Generator, noise: np.ndarray, a: np.ndarray, p: dict[str, np.ndarray],
                 slices: list[slice]) -> np.ndarray:
    """Skin conductance responses in each second's last minute (a response starts with the wearer's rate), <= 254."""
    rng.random(dtype=np.float32, out=noise)
    events = np.empty(a.shape, bool)
    for rows in slices:
        x = np.multiply(p["scr_rate_gain"][rows], a[rows])
        x += p["scr_rate_rest"][rows]
        x /= 60.0
        np.less(noise[rows], x, out=events[rows])
    scr = _rolling_sum(events, 60)
    return np.minimum(scr, 254, out=scr)


def _quality(skin: np.ndarray, hr_valid: np.ndarray, eda_valid: np.ndarray, motion: np.ndarray) -> np.ndarray:
    quality = skin.astype(np.uint8) * np.uint8(Q_SKIN)  # distinct bits: OR-ing them is the sum
    quality |= (hr_valid & skin).astype(np.uint8) * np.uint8(Q_HR)
    quality |= (eda_valid & skin).astype(np.uint8) * np.uint8(Q_EDA)
    quality |= (motion > 0).astype(np.uint8) * np.uint8(Q_MOTION)
    return quality


def _rounded(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """np.clip(np.rint(x), lo, hi), in place in x."""
    return np.clip(np.rint(x, out=x), lo, hi, out=x)


def second_matrix(features: dict[str, np.ndarray], t: int) -> np.ndarray:
    """(W, len(FIELDS)) float matrix of one second, in FIELDS order (for CoveScorer.add_second)."""
    return np.stack([features[k][:, t] for k in FIELDS], axis=1).astype(np.float64)
