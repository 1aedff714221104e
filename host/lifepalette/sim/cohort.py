"""Synthetic cohorts with known truth: latent arousal, partner coupling, individual and group differences.

Every wearer's latent arousal is the scenario's slow shared drive plus fast fluctuations. Dialogue partners share a
pair-specific fluctuation: with coupling c, the fast parts of two partners correlate by c (the truth the synchrony
estimate is checked against), with the partner following after a small lag. Some pairs have c = 0.

Demographic groups carry the differences the literature reports:
- "reference";
- "low_ppg": lower PPG pulse amplitude and SNR (skin-tone-dependent absorption): noisier HR, more invalid HR seconds;
- "low_eda": lower tonic SCL and fewer, smaller responses ("low responders").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lifepalette.sim import scenarios
from lifepalette.sim.physiology import DEFAULT_PARAMS

DEMOGRAPHIC_GROUPS = ("reference", "low_ppg", "low_eda")
COUPLING_LEVELS = (0.0, 0.0, 0.2, 0.4, 0.6, 0.8)
MAX_COUPLING_PER_WEARER = 0.85
FAST_TAU_S = 12.0
LEVEL_CHUNK = 32  # wearers whose float64 arousal is summed and clipped at once: ~1 MB, stays in the CPU's cache


@dataclass
class Cohort:
    scenario: str
    seconds: int
    seed: int
    dev_ids: np.ndarray  # (W,)
    demographic: np.ndarray  # (W,) index into DEMOGRAPHIC_GROUPS
    dialogue: dict[int, list[int]]  # dialogue group id -> dev ids
    pairs: list[tuple[int, int, int]]  # (group id, dev a, dev b)
    coupling: np.ndarray  # (P,) true coupling of each pair
    lag_s: np.ndarray  # (P,) how many seconds b follows a
    params: list[dict[str, float]]  # per wearer physiology
    arousal: np.ndarray  # (W, T) latent arousal 0..1
    drive: np.ndarray  # (T,) shared slow drive
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.dev_ids.size)


def ou_matrix(rng: np.random.Generator, n_series: int, seconds: int, tau_s: float) -> np.ndarray:
    """n_series independent unit-variance OU processes at 1 Hz, vectorised across series (W, T) float32.

    The recurrence x = phi * x + shock runs in place over the shocks, one second's series side by side, and the
    result is transposed once at the end: the same float operations as writing each second into its column."""
    phi = np.float32(np.exp(-1.0 / tau_s))
    scale = np.float32(np.sqrt(1.0 - phi * phi))
    level = rng.standard_normal(n_series).astype(np.float32)
    steps = rng.standard_normal((seconds, n_series), dtype=np.float32)
    steps *= scale
    carried = np.empty(n_series, np.float32)
    for row in steps:
        np.multiply(level, phi, out=carried)
        row += carried
        level = row
    return transposed(steps)


TRANSPOSE_ROWS = 256  # rows of the source per block: the block and its transpose stay in the CPU's cache


def transposed(x: np.ndarray) -> np.ndarray:
    """A 2-D array's transpose, C-contiguous, the same values. Why blocks: numpy copies a whole float32 transpose
    reading or writing across the matrix (an hour of 1,000 wearers: ~23 ms here); a block at a time takes ~4 ms."""
    rows, cols = x.shape
    out = np.empty((cols, rows), x.dtype)
    for start in range(0, rows, TRANSPOSE_ROWS):
        out[:, start:start + TRANSPOSE_ROWS] = x[start:start + TRANSPOSE_ROWS].T
    return out


def _dialogue_groups(rng: np.random.Generator, dev_ids: np.ndarray) -> dict[int, list[int]]:
    order = rng.permutation(dev_ids)
    groups: dict[int, list[int]] = {}
    i, gid = 0, 1
    while i < order.size:
        size = int(rng.choice([2, 3, 3, 4]))
        if order.size - i - size == 1:  # never leave someone alone
            size += 1
        groups[gid] = sorted(int(d) for d in order[i:i + size])
        i += size
        gid += 1
    return groups


def _individual_params(rng: np.random.Generator, demographic: int) -> dict[str, float]:
    p = dict(DEFAULT_PARAMS)
    p["hr_rest"] = float(rng.normal(68, 7))
    p["hr_gain"] = float(rng.uniform(20, 35))
    p["rmssd_rest"] = float(rng.uniform(30, 60))
    p["scl_rest_us"] = float(np.exp(rng.normal(np.log(5.0), 0.4)))
    p["scl_gain"] = float(rng.uniform(0.4, 0.8))
    p["scr_rate_rest"] = float(rng.uniform(0.5, 2.0))
    p["scr_rate_gain"] = float(rng.uniform(6, 12))
    p["scr_amp_us"] = float(rng.uniform(0.15, 0.4))
    p["ppg_ac"] = float(rng.uniform(800, 1400))
    p["ppg_noise"] = 25.0
    p["fast_sigma"] = float(rng.uniform(0.08, 0.12))
    if DEMOGRAPHIC_GROUPS[demographic] == "low_ppg":
        p["ppg_ac"] *= 0.3
        p["ppg_noise"] *= 1.5
    elif DEMOGRAPHIC_GROUPS[demographic] == "low_eda":
        p["scl_rest_us"] *= 0.3
        p["scl_gain"] *= 0.6
        p["scr_rate_rest"] *= 0.35
        p["scr_rate_gain"] *= 0.35
        p["scr_amp_us"] *= 0.5
    return p


def _fit_budgets(drawn: np.ndarray, ia: np.ndarray, ib: np.ndarray, n_wearers: int) -> np.ndarray:
    """Each pair's drawn level, lowered to the largest level both partners' remaining budgets allow.

    A wearer's couplings must sum to at most MAX_COUPLING_PER_WEARER (the model is a mixture of unit-variance parts).
    Scaling every pair down in proportion squeezed a 4-person group's couplings into 0.25-0.5 whatever was drawn, so
    the truth ranked group sizes more than coupling strengths (Spearman 0.73-0.77 on some seeds); keeping the levels
    keeps a real spread (0 to 0.8) to rank.
    """
    budget = np.full(n_wearers, MAX_COUPLING_PER_WEARER)
    levels = np.unique(COUPLING_LEVELS)
    out = np.zeros_like(drawn)
    for i, (c, a, b) in enumerate(zip(drawn, ia, ib, strict=True)):
        room = min(budget[a], budget[b]) + 1e-9
        out[i] = max(lv for lv in levels if lv <= min(c, room))
        budget[a] -= out[i]
        budget[b] -= out[i]
    return out


def _add_scaled_rows(out: np.ndarray, rows: np.ndarray, weights: np.ndarray, source: np.ndarray) -> None:
    """np.add.at(out, rows, weights[:, None] * source), bit for bit: each row gets its additions in the same order.
    One row at a time through a one-row buffer: a wearer is in at most a few pairs, and the pair-sized product and
    the fancy-indexed copies of a vectorised form cost three times as much as this loop (1,000 wearers: ~10 ms)."""
    part = np.empty(source.shape[1], out.dtype)
    for i, row in enumerate(rows.tolist()):
        np.multiply(weights[i], source[i], out=part)
        out[row] += part


def make_cohort(n_wearers: int, seconds: int, scenario: str = "healing", seed: int = 0,
                first_dev_id: int = 1) -> Cohort:
    if n_wearers < 2:
        raise ValueError("a cohort needs at least 2 wearers")
    scenarios.check_scenario(scenario)
    rng = np.random.default_rng(seed)
    dev_ids = np.arange(first_dev_id, first_dev_id + n_wearers)
    demographic = rng.permutation(np.arange(n_wearers) % len(DEMOGRAPHIC_GROUPS))
    dialogue = _dialogue_groups(rng, dev_ids)
    pairs = [(g, a, b) for g, ms in dialogue.items() for i, a in enumerate(ms) for b in ms[i + 1:]]
    coupling = rng.choice(COUPLING_LEVELS, size=len(pairs)).astype(float)
    lag = rng.integers(0, 4, size=len(pairs))
    row = {int(d): i for i, d in enumerate(dev_ids)}
    ia = np.array([row[a] for _g, a, _b in pairs], dtype=np.int64)
    ib = np.array([row[b] for _g, _a, b in pairs], dtype=np.int64)
    coupling = _fit_budgets(coupling, ia, ib, n_wearers)
    params = [_individual_params(rng, int(g)) for g in demographic]
    sigma = np.array([p["fast_sigma"] for p in params])
    own = ou_matrix(rng, n_wearers, seconds, FAST_TAU_S)
    shared = ou_matrix(rng, len(pairs), seconds + 4, FAST_TAU_S)
    load = np.bincount(ia, coupling, n_wearers) + np.bincount(ib, coupling, n_wearers)
    fast = own
    fast *= np.sqrt(np.maximum(1.0 - load, 0.0))[:, None].astype(np.float32)
    w = np.sqrt(coupling).astype(np.float32)
    _add_scaled_rows(fast, ia, w, shared[:, 4:])
    for k in range(4):  # partner b follows a by lag seconds
        sel = lag == k
        _add_scaled_rows(fast, ib[sel], w[sel], shared[sel, 4 - k:4 - k + seconds])
    drv = scenarios.drive(scenario, seconds)
    arousal = np.empty((n_wearers, seconds), np.float32)
    for start in range(0, n_wearers, LEVEL_CHUNK):  # float64, as before, a slice of wearers at a time (in cache)
        rows = slice(start, start + LEVEL_CHUNK)
        level = sigma[rows, None] * fast[rows]
        level += drv[None, :]
        arousal[rows] = np.clip(level, 0.0, 1.0, out=level)
    return Cohort(scenario, seconds, seed, dev_ids, demographic, dialogue, pairs, coupling, lag, params, arousal, drv)
