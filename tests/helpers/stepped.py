"""A live Hub on a stepped clock: sealed frames of simulated wearers, ticks on second boundaries (replay, LSL)."""

from __future__ import annotations

from lifepalette.hub import core as hub_core
from lifepalette.hub import store as hub_store
from lifepalette.scoring import FIELDS

from protocol import records

T0 = 1_800_000_000.0  # the stepped clock's start (a plausible Unix time)


class SteppedClock:
    """time.time() under the test's control for the hub (and its store); everything else is the real module."""

    def __init__(self, real):
        self.real, self.now = real, T0

    def time(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(self.real, name)


def install_clock(monkeypatch, hub=None) -> SteppedClock:
    clock = SteppedClock(hub_core.time)
    monkeypatch.setattr(hub_core, "time", clock)
    monkeypatch.setattr(hub_store, "time", clock)
    return clock


def telemetry(features: dict, i: int, t: int, consent: int) -> bytes:
    """Wearer i's second t of simulated features as a telemetry record, physiology n/a where consent withholds it."""
    values = {k: int(features[k][i, t]) for k in FIELDS}
    values["consent"] = consent
    if not consent & records.CONSENT_PHYSIO or consent & records.CONSENT_PAUSED:
        values.update(hr_bpm=records.HR_NA, rmssd_ms=records.RMSSD_NA, scl=records.SCL_NA,
                      scr_per_min=records.SCR_NA, motion=records.MOTION_NA)
    return records.pack_telemetry(values)
