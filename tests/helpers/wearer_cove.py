"""A recorded cove for the wearer-page tests: three badges, one eight-minute session, through the real hub's ingest."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from lifepalette.hub import Hub

from protocol import frame, records

A, B, C = 4711, 4712, 4713  # distinctive numbers: easy to spot if one ever leaks into another's answer
DEVS = (A, B, C)
SECONDS = 480


def telemetry(dev: int, i: int, second: int, consent: int) -> dict:
    """A wearer's second: a slow swing shared by everyone in the conversation plus each wearer's own wobble."""
    swing = math.sin(second / 40.0)
    own = math.sin(second / (7.0 + i) + i)
    return {"hr_bpm": int(70 + 6 * i + 8 * swing + 3 * own), "rmssd_ms": int(45 - 5 * swing), "scl": int(500 + 60 * i + 80 * swing + 20 * own),
            "scr_per_min": int(4 + 2 * max(0.0, swing)), "motion": 10, "hue": 40 * i, "chroma": 200, "colour_age": 2,
            "consent": consent, "battery": 80, "quality": 7}  # on skin, HR and EDA good, no motion


def feed(hub: Hub, start: float, seconds: int, first_ctr: int = 1, consent: int | None = None) -> None:
    """`seconds` of telemetry from every badge, received at start + s (the hub's clock set to match)."""
    consent = records.make_consent(physio=True, colour=True) if consent is None else consent
    real_clock = hub.clock
    try:
        for s in range(seconds):
            hub.clock = lambda s=s: start + s + 0.25
            for i, dev in enumerate(DEVS):
                record = records.pack_telemetry(telemetry(dev, i, s, consent))
                hub.ingest(frame.seal(hub.keys[dev], frame.TELEMETRY, dev, first_ctr + s, record), "udp")
        hub.flush()
    finally:
        hub.clock = real_clock


def record_session(folder: Path) -> Path:
    """A hub database holding one session of three wearers, eight minutes long, ended ten minutes ago."""
    db = folder / "hub.db"

    async def make():
        hub = Hub(db, scorer=None)
        for dev in DEVS:
            hub.enroll(dev)
        start = time.time() - 600 - SECONDS
        hub.start_session()
        feed(hub, start, SECONDS)
        hub.end_session()
        # the session's start and end as the hub would have written them had it run at that time
        hub.store.con.execute("UPDATE sessions SET started_at = ?, ended_at = ?", (start - 1, start + SECONDS + 1))
        hub.store.close()

    asyncio.run(make())
    return folder
