"""The wearer page's journey (hub/wearer_journey.py) against its peer, the stored-session replay (`lifepalette replay`, the
same scorer over the same frames), on one database: a full read, and an incremental update of one more minute.

Figures are ratios in the same run: journey / replay for the full read (the journey also computes every wearer's
detail every 30 s), and one-minute update / full read (what a page refresh costs once the journey is warm).
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path

WEARERS = 20
SECONDS = 900
MORE_S = 60


def _record(db: Path) -> float:
    from lifepalette.hub import Hub

    from protocol import frame, records

    devs = list(range(100, 100 + WEARERS))
    consent = records.make_consent(physio=True, colour=True)
    start = time.time() - SECONDS - MORE_S - 30

    async def make() -> None:
        hub = Hub(db, scorer=None)
        keys = {dev: hub.enroll(dev) for dev in devs}
        for s in range(SECONDS + MORE_S):
            hub.clock = lambda s=s: start + s + 0.25
            swing = math.sin(s / 40.0)
            for i, dev in enumerate(devs):
                record = records.pack_telemetry({
                    "hr_bpm": int(70 + i % 9 + 8 * swing), "rmssd_ms": 45, "scl": int(500 + 5 * i + 80 * swing),
                    "scr_per_min": 4, "motion": 10, "hue": i, "chroma": 200, "colour_age": 2, "consent": consent,
                    "battery": 80, "quality": 7})
                hub.ingest(frame.seal(keys[dev], frame.TELEMETRY, dev, s + 1, record), "udp")
        hub.flush()
        hub.store.close()

    asyncio.run(make())
    return start


def main() -> None:
    from lifepalette.hub.replay import Session, open_readonly, replay, stored_frames
    from lifepalette.hub.wearer_journey import Journeys
    from lifepalette.scoring import CoveScorer

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "hub.db"
        start = _record(db)
        until = start + SECONDS
        con = open_readonly(db)
        t0 = time.perf_counter()
        replay(stored_frames(con, until), CoveScorer(), Session(None, float("-inf"), None), lambda t, view: None)
        replay_s = time.perf_counter() - t0
        con.close()
        journeys = Journeys(db, CoveScorer)
        t0 = time.perf_counter()
        journeys.update(until, 0)
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        journeys.update(until + MORE_S, 0)
        more_s = time.perf_counter() - t0
    frames = WEARERS * SECONDS
    print(f"journey: {WEARERS} wearers x {SECONDS} s = {frames} frames")
    print(f"  full read {full_s:.2f} s ({frames / full_s:.0f} frames/s); replay (peer) {replay_s:.2f} s; "
          f"journey / replay = {full_s / replay_s:.2f}")
    print(f"  one more minute: {more_s * 1000:.0f} ms; update / full read = {more_s / full_s:.3f}")


if __name__ == "__main__":
    main()
