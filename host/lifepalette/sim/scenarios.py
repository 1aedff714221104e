"""Scenario timelines for the cove simulator.

A scenario is a list of phases that split a session by fraction of its length, so one scenario scales to any
duration. Each phase sets the slow, shared arousal *drive* (0..1) that every wearer in the cove feels; the fast,
individual and partner-coupled fluctuations are added by the cohort model (`lifepalette.sim.cohort`). Keeping the
shared part slow matters: synchrony is measured on detrended 30 s windows, so a common slow drive does not look like
two people attuning to each other.
"""

from __future__ import annotations

import numpy as np

# (phase name, share of the session, drive level 0..1, motion bursts per minute)
Phase = tuple[str, float, float, float]

SCENARIOS: dict[str, list[Phase]] = {
    "calm": [("arrival", 1.0, 0.15, 0.3)],
    "dialogue": [("arrival", 0.15, 0.15, 0.5), ("dialogue", 0.85, 0.40, 0.8)],
    "confrontation": [
        ("arrival", 0.10, 0.15, 0.5),
        ("dialogue", 0.30, 0.40, 0.8),
        ("confrontation", 0.60, 0.80, 1.5),
    ],
    "healing": [
        ("arrival", 0.10, 0.15, 0.5),
        ("dialogue", 0.25, 0.40, 0.8),
        ("confrontation", 0.15, 0.85, 1.5),
        ("recovery", 0.20, 0.45, 0.6),
        ("healing", 0.30, 0.20, 0.3),
    ],
}

SCENARIO_NAMES = tuple(SCENARIOS)
TRANSITION_TAU_S = 20.0  # phases blend over ~20 s: arousal does not jump


def check_scenario(name: str) -> list[Phase]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIO_NAMES)}") from None


def phase_index(name: str, seconds: int) -> np.ndarray:
    """Index of the active phase for each second of the session (int array of length `seconds`)."""
    phases = check_scenario(name)
    bounds = np.cumsum([p[1] for p in phases]) * seconds
    return np.minimum(np.searchsorted(bounds, np.arange(seconds), side="right"), len(phases) - 1)


def phase_spans(name: str, seconds: int) -> list[tuple[str, int, int]]:
    """(phase name, start second, end second) for plots and reports."""
    phases = check_scenario(name)
    idx = phase_index(name, seconds)
    spans = []
    for i, phase in enumerate(phases):
        where = np.flatnonzero(idx == i)
        if where.size:
            spans.append((phase[0], int(where[0]), int(where[-1]) + 1))
    return spans


def _smooth(step: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order low-pass at 1 Hz (a causal exponential blend between phase levels)."""
    alpha = 1.0 - np.exp(-1.0 / tau_s)
    out = np.empty_like(step)
    level = step[0] if step.size else 0.0
    # A Python loop over seconds is fine here: sessions are at most a few thousand seconds and this runs once.
    for i, target in enumerate(step):
        level += alpha * (target - level)
        out[i] = level
    return out


def drive(name: str, seconds: int) -> np.ndarray:
    """The shared slow arousal drive (float64, 0..1) for each second of the session."""
    phases = check_scenario(name)
    levels = np.array([p[2] for p in phases])
    return _smooth(levels[phase_index(name, seconds)], TRANSITION_TAU_S)


def motion_rate(name: str, seconds: int) -> np.ndarray:
    """Expected motion bursts per second for each second (from the phase table)."""
    phases = check_scenario(name)
    rates = np.array([p[3] for p in phases]) / 60.0
    return rates[phase_index(name, seconds)]
