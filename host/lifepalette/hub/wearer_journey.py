"""Each wearer's own journey: their scores over this session and earlier ones, replayed from the stored frames.

The live hub scores without per-wearer detail (hub/core.py: per-wearer numbers never leave the scorer through the
hub's outputs), and a trajectory needs history anyway. So the wearer's page replays what the store holds through the
same scorer (hub/replay.py feeds it exactly as the live hub did), incrementally: each update reads only the frames
stored since the last one (by arrival time; a frame committed behind that mark, after a long flush or a clock step,
makes it read everything again). Every SAMPLE_S seconds of stored time becomes one point per wearer.

Replaying the store, not the live scorer, is what makes erasure and consent hold here too: erased physiology is gone
from the store, so it is gone from the journey (an erasure resets the replay), and a revocation makes the scorer
forget the wearer as it did live. Synchrony is the mean over the wearer's partners (scorer.recent_synchrony): a
point never names or counts a partner.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifepalette.hub.consent import ConsentLedger
from lifepalette.hub.replay import count_stored_frames, open_readonly, stored_frames
from protocol import frame as wire

SAMPLE_S = 30  # one trajectory point per wearer every 30 s of stored time
SETTLE_S = 2.0  # frames newer than this may still wait in the hub's batch: read them next time
POINT_KEYS = ("level", "trend", "confidence", "arousal", "regulation", "synchrony")


def _point(t: int, wearer: dict) -> dict | None:
    point: dict[str, float | int | None] = {"t": t, **{key: wearer.get(key) for key in POINT_KEYS}}
    if all((value := point[key]) is None or not math.isfinite(value) for key in POINT_KEYS if key != "confidence"):
        return None  # nothing scored for this wearer at t (no consented, valid physiology yet)
    return point


class Journeys:
    """Trajectories of every wearer in one hub database, kept up to date by `update` (call it from one thread at a
    time). `scorer_factory` makes the scorer (the hub's groups matter for synchrony)."""

    def __init__(self, db_path: str | Path, scorer_factory: Callable[[], Any], *, sample_s: int = SAMPLE_S) -> None:
        self.db_path = Path(db_path)
        self.scorer_factory = scorer_factory
        self.sample_s = sample_s
        self._stopping = False
        self._reset(-1)

    def stop(self) -> None:
        """For good (the hub is stopping): an update that is reading, in another thread, forgets what it read and
        returns at its next frame."""
        self._stopping = True

    def _reset(self, erasures: int) -> None:
        self.scorer = self.scorer_factory()
        self.ledger = ConsentLedger()
        self.erasures = erasures
        self.read_until = float("-inf")
        self.fed = 0  # frames fed so far: all the store holds that arrived before read_until
        self.next_sample: int | None = None
        self.points: dict[int, list[dict]] = {}
        self.latest: dict[int, dict] = {}

    def update(self, until: float, erasures: int) -> None:
        """Feed every live frame stored before `until`; an erasure since the last update starts the replay over."""
        if erasures != self.erasures:
            self._reset(erasures)
        if until <= self.read_until:
            return
        con = open_readonly(self.db_path)
        try:
            if self.read_until > float("-inf") and count_stored_frames(con, self.read_until) != self.fed:
                self._reset(erasures)  # a frame arrived late (behind the mark) or went away: read it all again
            fed = self._feed(con, until)
            if self._stopping:
                self._reset(-1)  # half a replay is no replay: the next update starts over
                return
            self.fed += fed
        except sqlite3.DatabaseError:
            self._reset(-1)  # read again from the start next time rather than keep a half-fed state
            raise
        finally:
            con.close()
        self.read_until = until
        if fed:
            self.latest = self._sample()

    def _feed(self, con: sqlite3.Connection, until: float) -> int:
        fed = 0
        for frame in stored_frames(con, until, since=self.read_until):
            if self._stopping:
                break
            second = int(frame.t_rx)
            if self.next_sample is None:
                self.next_sample = (second // self.sample_s + 1) * self.sample_s
            elif second >= self.next_sample:
                for dev, point in self._sample().items():
                    self.points.setdefault(dev, []).append(point)
                self.next_sample = (second // self.sample_s + 1) * self.sample_s
            obs = self.ledger.observe_live(frame.dev_id, frame.ctr, frame.fields["consent"], frame.t_rx)
            if obs.revoked is not None:
                self.scorer.forget(frame.dev_id)
            if frame.ftype == wire.TELEMETRY:
                self.scorer.add(frame.dev_id, second, frame.fields)
            fed += 1
        return fed

    def _sample(self) -> dict[int, dict]:
        scores = self.scorer.compute(detail=True)
        t = scores.get("t")
        if t is None:
            return {}
        out = {}
        for dev, wearer in scores["wearers"].items():
            point = _point(int(t), wearer)  # type: ignore[arg-type]
            if point is not None:
                out[int(dev)] = point
        return out

    def of(self, dev_id: int) -> list[dict]:
        """One wearer's trajectory, oldest first, ending with the latest point scored."""
        points = list(self.points.get(dev_id, ()))
        latest = self.latest.get(dev_id)
        if latest is not None and (not points or latest["t"] > points[-1]["t"]):
            points.append(latest)
        return points
