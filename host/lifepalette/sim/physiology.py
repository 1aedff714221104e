"""Synthetic badge sensor signals driven by a latent arousal state (seeded, reproducible).

`badge_signals(scenario, seconds, seed=0, rates=None, params=None)` returns what a badge's sensors would deliver, in
badge units (see the kernels contract):

- "ppg": raw MAX30102-like counts (18-bit unsigned). As on the real sensor, counts *fall* at each systole (more blood
  absorbs more light); DC about 1e5, pulsatile AC about 1 % of DC (set by `ppg_ac`, lower for low-perfusion skin),
  respiratory baseline wander, sensor noise and motion artefact.
- "eda": 12-bit ADC counts of the skin-conductance front end: tonic level plus phasic responses (SCRs, Bach-style
  bi-exponential shape) whose rate and size rise with arousal.
- "acc": (n, 3) milli-g: gravity for a slightly tilted badge, sensor noise, and motion bursts.
- "temp": centi-degC skin temperature; peripheral vasoconstriction lowers it slightly with sustained arousal.

`simulate_wearer(...)` returns the same signals plus the truth they were made from (latent arousal, beat times,
true HR/RMSSD, SCR onsets, motion), which the simulator and the validation tests use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lifepalette.sim import scenarios

DEFAULT_RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}

# One wearer's physiology. The cohort generator draws individual values around these and sets the group differences.
DEFAULT_PARAMS: dict[str, float] = {
    "hr_rest": 68.0,  # bpm at arousal 0
    "hr_gain": 30.0,  # bpm added at arousal 1
    "rmssd_rest": 45.0,  # ms at arousal 0; falls with arousal
    "rmssd_drop": 0.6,  # fraction of rmssd_rest lost at arousal 1
    "ppg_dc": 100_000.0,  # counts
    "ppg_ac": 1_000.0,  # counts peak-to-trough of the pulse (perfusion x skin optics)
    "ppg_noise": 25.0,  # counts RMS sensor noise
    "scl_rest_us": 5.0,  # tonic skin conductance at arousal 0
    "scl_gain": 0.6,  # relative SCL rise at arousal 1
    "scr_rate_rest": 1.0,  # responses per minute at arousal 0
    "scr_rate_gain": 9.0,  # responses per minute added at arousal 1
    "scr_amp_us": 0.25,  # median response amplitude
    "eda_noise_us": 0.004,
    "temp_c": 33.5,
    "fast_sigma": 0.10,  # individual fast arousal fluctuation (latent units)
    "fast_tau_s": 12.0,
    "motion_scale": 1.0,  # multiplies the scenario's motion-burst rate
}

PPG_MAX = (1 << 18) - 1
EDA_MAX = 4095

# --- EDA calibration -------------------------------------------------------------------------------------------
def _us_to_counts(us: np.ndarray, cal: Any = None) -> np.ndarray:
    """Skin conductance in microsiemens -> 12-bit ADC counts through the badge's own calibration inverse
    (protocol.kernels.eda.centi_us_to_counts), applied once per distinct value."""
    from protocol.kernels.eda import centi_us_to_counts

    centi = np.rint(np.asarray(us) * 100.0).astype(np.int64)
    if not centi.size:
        return centi
    values, inverse = np.unique(centi, return_inverse=True)
    counts = np.array([centi_us_to_counts(int(c), cal) for c in values], dtype=np.int64)
    return np.clip(counts[inverse].reshape(centi.shape), 0, EDA_MAX)


# --- latent state ----------------------------------------------------------------------------------------------
def ou_process(rng: np.random.Generator, n: int, tau_s: float, sigma: float = 1.0) -> np.ndarray:
    """Ornstein-Uhlenbeck noise at 1 Hz with stationary SD `sigma` and time constant `tau_s`."""
    phi = np.exp(-1.0 / tau_s)
    shocks = rng.standard_normal(n) * sigma * np.sqrt(1.0 - phi * phi)
    out = np.empty(n)
    x = rng.standard_normal() * sigma
    for i in range(n):  # tiny loop (1 Hz); the cohort generator has a vectorised version for thousands of wearers
        x = phi * x + shocks[i]
        out[i] = x
    return out


def latent_arousal(scenario: str, seconds: int, rng: np.random.Generator, params: dict[str, float]) -> np.ndarray:
    fast = ou_process(rng, seconds, params["fast_tau_s"], params["fast_sigma"])
    return np.clip(scenarios.drive(scenario, seconds) + fast, 0.0, 1.0)


def _at_rate(per_second: np.ndarray, rate: int) -> np.ndarray:
    """Linear interpolation of a 1 Hz series to `rate` Hz (sample k is at time k / rate)."""
    n = per_second.size
    t = np.arange(n * rate) / rate
    return np.interp(t, np.arange(n), per_second)


def _lowpass(x: np.ndarray, tau_s: float) -> np.ndarray:
    phi = np.exp(-1.0 / tau_s)
    out = np.empty_like(x)
    level = x[0]
    for i in range(x.size):
        level = phi * level + (1.0 - phi) * x[i]
        out[i] = level
    return out


# --- sensors ---------------------------------------------------------------------------------------------------
def beat_times(arousal: np.ndarray, rng: np.random.Generator, p: dict[str, float]) -> np.ndarray:
    """Beat onset times (s): IBIs from the arousal-dependent HR with white beat-to-beat jitter sized so RMSSD
    follows `rmssd_rest * (1 - rmssd_drop * arousal)` and a slow 0.1 Hz (Mayer-wave) modulation."""
    seconds = arousal.size
    est = int(seconds * (p["hr_rest"] + p["hr_gain"]) / 60.0) + 16
    jitter = rng.standard_normal(est)
    mayer_phase = rng.uniform(0, 2 * np.pi)
    times = np.empty(est)
    t = rng.uniform(0.0, 0.5)
    k = 0
    while t < seconds and k < est:
        times[k] = t
        a = arousal[int(t)]
        mean_ibi = 60.0 / (p["hr_rest"] + p["hr_gain"] * a)
        rmssd = p["rmssd_rest"] * (1.0 - p["rmssd_drop"] * a) / 1000.0
        ibi = mean_ibi * (1.0 + 0.02 * np.sin(2 * np.pi * 0.1 * t + mayer_phase)) + jitter[k] * rmssd / np.sqrt(2)
        t += max(ibi, 0.3)
        k += 1
    return times[:k]


def _pulse_shape(phase: np.ndarray) -> np.ndarray:
    """Normalised pulse (0..~1) over one beat: systolic peak then a smaller diastolic wave."""
    systolic = np.exp(-0.5 * ((phase - 0.18) / 0.07) ** 2)
    diastolic = 0.4 * np.exp(-0.5 * ((phase - 0.48) / 0.10) ** 2)
    return systolic + diastolic


def _pulse_lengths(beats: np.ndarray, k: int = 9) -> np.ndarray:
    """Per beat, the time scale of its pulse shape: the local mean interval (k beats centred on it), never the
    beat's own coming interval. A pulse cannot know when the next beat will come; stretched over its own interval,
    the systolic peak sat 18 % into it and the peaks carried only ~75 % of the beats' RMSSD."""
    ibi = np.diff(beats)
    padded = np.pad(ibi, (k // 2, k - 1 - k // 2), mode="edge")
    return np.convolve(padded, np.ones(k) / k, mode="valid")


def ppg_signal(beats: np.ndarray, seconds: int, rate: int, rng: np.random.Generator, p: dict[str, float],
               motion_env: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """Raw counts at `rate`, or at the given sample times (s; a sensor on its own clock)."""
    t = np.arange(seconds * rate) / rate if times is None else np.asarray(times, dtype=np.float64)
    idx = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, max(beats.size - 2, 0))
    if beats.size >= 2:
        start = beats[idx]
        length = np.maximum(_pulse_lengths(beats)[idx], 0.3)
        phase = np.clip((t - start) / length, 0.0, 1.0)
        phase[t < beats[0]] = 0.0
    else:
        phase = np.zeros_like(t)
    resp = 0.003 * p["ppg_dc"] * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 2 * np.pi))
    drift = 0.01 * p["ppg_dc"] * np.sin(2 * np.pi * t / 600.0 + rng.uniform(0, 2 * np.pi))
    noise = rng.standard_normal(t.size) * p["ppg_noise"]
    artefact = motion_env * 4.0 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 2 * np.pi))  # ~4 counts per mg
    raw = p["ppg_dc"] + resp + drift - p["ppg_ac"] * _pulse_shape(phase) + noise + artefact
    return np.clip(np.rint(raw), 0, PPG_MAX).astype(np.int64)


def scr_kernel(rate: int) -> np.ndarray:
    t = np.arange(int(20 * rate)) / rate
    shape = np.exp(-t / 3.15) - np.exp(-t / 0.70)
    return shape / shape.max()


def eda_signal(arousal: np.ndarray, rate: int, rng: np.random.Generator, p: dict[str, float]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts, true SCL in uS per second, SCR onset times in s)."""
    seconds = arousal.size
    slow = _lowpass(arousal, 8.0)
    scl = p["scl_rest_us"] * (1.0 + p["scl_gain"] * slow)
    per_s = (p["scr_rate_rest"] + p["scr_rate_gain"] * arousal) / 60.0
    onsets_s = np.flatnonzero(rng.random(seconds) < per_s)
    onsets = onsets_s + rng.random(onsets_s.size)
    amps = p["scr_amp_us"] * np.exp(0.5 * rng.standard_normal(onsets.size)) * (0.6 + 0.8 * arousal[onsets_s])
    impulses = np.zeros(seconds * rate)
    np.add.at(impulses, np.minimum((onsets * rate).astype(np.int64), impulses.size - 1), amps)
    phasic = np.convolve(impulses, scr_kernel(rate))[: impulses.size]
    us = _at_rate(scl, rate) + phasic + rng.standard_normal(impulses.size) * p["eda_noise_us"]
    return _us_to_counts(np.maximum(us, 0.0)), scl, onsets


def acc_signal(seconds: int, rate: int, rng: np.random.Generator, burst_rate: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """((n, 3) milli-g, motion envelope in mg at the accelerometer rate)."""
    n = seconds * rate
    tilt = rng.normal(0.0, 0.15, 2)
    gravity = np.array([np.sin(tilt[0]), np.sin(tilt[1]), 1.0])
    gravity = 1000.0 * gravity / np.linalg.norm(gravity)
    acc = np.tile(gravity, (n, 1)) + rng.standard_normal((n, 3)) * 8.0
    envelope = np.zeros(n)
    starts = np.flatnonzero(rng.random(seconds) < burst_rate)
    t = np.arange(n) / rate
    for s in starts:
        dur = rng.uniform(1.0, 4.0)
        lo, hi = int(s * rate), min(n, int((s + dur) * rate))
        amp = rng.uniform(150.0, 600.0)
        freq = rng.uniform(1.5, 3.0)
        axis_w = rng.dirichlet(np.ones(3))
        wave = amp * np.sin(2 * np.pi * freq * t[lo:hi])
        acc[lo:hi] += wave[:, None] * axis_w[None, :]
        envelope[lo:hi] = np.maximum(envelope[lo:hi], amp)
    return np.rint(acc).astype(np.int64), envelope


def temp_signal(arousal: np.ndarray, rate: int, rng: np.random.Generator, p: dict[str, float]) -> np.ndarray:
    seconds = arousal.size
    slow = _lowpass(arousal, 60.0)
    drift = 0.2 * np.sin(2 * np.pi * np.arange(seconds) / 1800.0 + rng.uniform(0, 2 * np.pi))
    centi = 100.0 * (p["temp_c"] + drift - 0.5 * slow)
    per_rate = _at_rate(centi, rate) + rng.standard_normal(seconds * rate) * 2.0
    return np.rint(per_rate).astype(np.int64)


# --- public API ------------------------------------------------------------------------------------------------
def _merged(rates: dict[str, int] | None, params: dict[str, float] | None) -> tuple[dict[str, int], dict[str, float]]:
    r = dict(DEFAULT_RATES)
    r.update(rates or {})
    p = dict(DEFAULT_PARAMS)
    unknown = set(params or {}) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"unknown physiology params: {', '.join(sorted(unknown))}")
    p.update(params or {})
    return r, p


def simulate_wearer(scenario: str, seconds: int, seed: int = 0, rates: dict[str, int] | None = None,
                    params: dict[str, float] | None = None, arousal: np.ndarray | None = None,
                    ppg_times: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Signals plus truth. Pass `arousal` (per second, 0..1) to drive a wearer from a cohort's latent model, and
    `ppg_times` (s, within 0..seconds) to sample the PPG on a sensor's own clock instead of at rates["ppg"]."""
    seconds = int(seconds)
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    r, p = _merged(rates, params)
    rng = np.random.default_rng(seed)
    if arousal is None:
        arousal = latent_arousal(scenario, seconds, rng, p)
    else:
        scenarios.check_scenario(scenario)
        arousal = np.clip(np.asarray(arousal, dtype=float)[:seconds], 0.0, 1.0)
    burst_rate = scenarios.motion_rate(scenario, seconds) * p["motion_scale"]
    acc, env_acc = acc_signal(seconds, r["acc"], rng, burst_rate)
    t_ppg = np.arange(seconds * r["ppg"]) / r["ppg"] if ppg_times is None else np.asarray(ppg_times, dtype=float)
    env_ppg = np.interp(t_ppg, np.arange(env_acc.size) / r["acc"], env_acc)
    beats = beat_times(arousal, rng, p)
    ppg = ppg_signal(beats, seconds, r["ppg"], rng, p, env_ppg, None if ppg_times is None else t_ppg)
    eda, scl, onsets = eda_signal(arousal, r["eda"], rng, p)
    temp = temp_signal(arousal, r["temp"], rng, p)
    motion_s = env_acc[: seconds * r["acc"]].reshape(seconds, r["acc"]).max(axis=1)
    truth = {"arousal": arousal, "beats": beats, "scl_us": scl, "scr_onsets": onsets, "motion_mg": motion_s,
             "params": p, "rates": r}
    return {"ppg": ppg, "eda": eda, "acc": acc, "temp": temp}, truth


def badge_signals(scenario: str, seconds: int, seed: int = 0, rates: dict[str, int] | None = None,
                  params: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """Badge-unit sensor samples for one wearer: {"ppg": (n,), "eda": (n,), "acc": (n, 3), "temp": (n,)} int64."""
    signals, _truth = simulate_wearer(scenario, seconds, seed, rates, params)
    return signals


def true_hr_per_second(beats: np.ndarray, seconds: int) -> np.ndarray:
    """Instantaneous HR (bpm) at each second from the true beat times (NaN before the second beat)."""
    if beats.size < 2:
        return np.full(seconds, np.nan)
    ibi = np.diff(beats)
    idx = np.searchsorted(beats[1:], np.arange(seconds), side="right") - 1
    out = np.where(idx >= 0, 60.0 / ibi[np.clip(idx, 0, ibi.size - 1)], np.nan)
    return out
