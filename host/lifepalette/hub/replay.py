"""Replay of a stored session: the frames the hub kept, in the order it received them, through the same scorer.

The live hub scores each live telemetry frame at `int(t_rx)` with what consent let it keep (physiology only where
shared, colour only where shared), forgets a wearer the moment their consent is revoked, and computes on a cadence:
a compute releases the public view of every second older than the scorer's grace period. Replay does the same with
the stored rows and computes at every second boundary, so each released second's public view comes out again.

What the store no longer holds stays out: an erased consent epoch's physiology is gone, so those seconds replay as
"no physiology" (the wearer drops out of the aggregates) and the summary lists them as gaps. Frames stored before the
session are replayed silently first, because the live scorer carried that state into the session.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifepalette.boundary import PublicView
from lifepalette.errors import LifePaletteError, UsageError
from lifepalette.hub.consent import ConsentLedger, colour_allowed, physio_allowed
from lifepalette.hub.views import BadgeState, release_public_view
from lifepalette.scoring.report import Scores
from protocol import frame as wire
from protocol import records

PHYSIO_NA = {"hr_bpm": records.HR_NA, "rmssd_ms": records.RMSSD_NA, "scl": records.SCL_NA,
             "scr_per_min": records.SCR_NA, "motion": records.MOTION_NA}
LIVE_TYPES = (wire.TELEMETRY, wire.HEARTBEAT)  # backlog frames are stored but never scored live
QUIET_TICKS = 120  # seconds of scoring ticks replayed after the last frame before a silence is skipped

_FRAMES = """
SELECT f.dev_id, f.ctr, f.ftype, f.t_rx, f.link, f.consent, f.battery, f.quality, f.hue, f.chroma, f.colour_age,
       p.hr_bpm, p.rmssd_ms, p.scl, p.scr_per_min, p.motion, COALESCE(e.erased, 0)
FROM frames f
LEFT JOIN physio p ON p.dev_id = f.dev_id AND p.ctr = f.ctr
LEFT JOIN consent_epochs e ON e.dev_id = f.dev_id AND e.epoch = f.epoch
WHERE f.ftype IN ({types}) AND f.t_rx >= ? AND f.t_rx < ?
ORDER BY f.t_rx, f.dev_id, f.ctr
"""


@dataclass(frozen=True)
class StoredFrame:
    dev_id: int
    ctr: int
    ftype: int
    t_rx: float
    link: str
    colour: tuple[int | None, int | None]  # (hue, chroma) as stored: None where colour was not shared
    fields: dict[str, int]  # what the live scorer was given (n/a codes where nothing was kept)
    erased: bool  # the frame's consent epoch was erased: its physiology is gone


@dataclass(frozen=True)
class Session:
    id: int | None  # None: no session recorded, every stored frame
    start: float
    end: float | None


def open_readonly(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no database at {path}")
    try:
        # check_same_thread off: `replay --http` reads in a worker thread (one reader at a time, never shared)
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a readable SQLite database ({exc})") from None
    if not {"frames", "physio", "sessions", "consent_epochs"} <= tables:
        raise UsageError(f"{path} is not a Life Palette hub database")
    return con


def find_session(con: sqlite3.Connection, session_id: int | None) -> Session:
    if session_id is None:
        row = con.execute("SELECT id, started_at, ended_at FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
        return Session(None, float("-inf"), None) if row is None else Session(*row)
    row = con.execute("SELECT id, started_at, ended_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("SELECT id FROM sessions ORDER BY id")]
        raise UsageError(f"no session {session_id} in the database (sessions: {', '.join(map(str, known)) or 'none'})")
    return Session(*row)


def stored_frames(con: sqlite3.Connection, until: float | None, since: float | None = None) -> Iterator[StoredFrame]:
    query = _FRAMES.format(types=", ".join(str(t) for t in LIVE_TYPES))
    bounds = (float("-inf") if since is None else since, float("inf") if until is None else until)
    for (dev, ctr, ftype, t_rx, link, consent, battery, quality, hue, chroma, age, *physio,
         erased) in con.execute(query, bounds):
        fields = {"consent": consent or 0, "battery": battery or 0, "quality": quality or 0}
        if ftype == wire.TELEMETRY:
            fields.update({name: PHYSIO_NA[name] if v is None else int(v)
                           for name, v in zip(PHYSIO_NA, physio, strict=True)})
            shared = colour_allowed(fields["consent"]) and hue is not None
            fields.update(hue=hue if shared else 0, chroma=chroma if shared else 0,
                          colour_age=age if shared else records.COLOUR_AGE_NA)
        yield StoredFrame(dev, ctr, ftype, t_rx, link or "", (hue, chroma), fields, bool(erased))


def count_stored_frames(con: sqlite3.Connection, until: float) -> int:
    """How many frames `stored_frames(con, until)` yields: a reader that went through them can tell whether a frame
    with an earlier arrival time was committed since (a late flush, a clock step) or one was removed."""
    query = f"SELECT COUNT(*) FROM frames WHERE ftype IN ({', '.join(str(t) for t in LIVE_TYPES)}) AND t_rx < ?"
    return con.execute(query, (until,)).fetchone()[0]


@dataclass
class ReplaySummary:
    session: int | None
    frames: int = 0
    released: int = 0
    first_t: int | None = None
    last_t: int | None = None
    # spans of seconds per badge whose physiology had been shared but is erased now (the replay's gaps)
    erased: dict[int, list[list[int]]] = field(default_factory=dict)

    def note_erased(self, dev: int, t: int) -> None:
        spans = self.erased.setdefault(dev, [])
        if spans and spans[-1][1] >= t - 1:
            spans[-1][1] = t
        else:
            spans.append([t, t])

    def as_dict(self) -> dict:
        return {"session": self.session, "frames": self.frames, "released_seconds": self.released,
                "first_t": self.first_t, "last_t": self.last_t,
                "erased": [{"dev_id": d, "seconds": spans} for d, spans in sorted(self.erased.items())]}


def release(scores: Scores, badges: dict[int, BadgeState], *, session: bool, now: float, salt: bytes,
            rng: Any = None) -> PublicView:
    """The public view as the hub releases it (lifepalette.hub.views, the one release point).

    `salt` keys the swatch order; the live hub's salt is a secret of that run and is not stored, so a replay shows
    the same swatches in its own order. `rng` is the release mechanism's randomness: a mechanism with noise
    (issue 13) seeded like the live hub's session releases the same numbers again: a PublicRelease
    (`lifepalette.hub.views.public_release(seed)`), one for the whole replayed session."""
    return release_public_view(scores, badges.values(), session=session, now=now, salt=salt, release=rng)


def replay(frames: Iterator[StoredFrame], scorer: Any, session: Session, emit: Callable[[int, PublicView], None], *,
           speed: float | None = None, rng: Any = None, salt: bytes = b"replay", sleep: Callable[[float], None] = time.sleep,
           monotonic: Callable[[], float] = time.monotonic) -> ReplaySummary:
    """Feed stored frames through `scorer` as the live hub did; `emit(t, public)` for every second released inside
    the session. speed=None: as fast as possible; otherwise session seconds per wall second."""
    summary = ReplaySummary(session.id)
    ledger = ConsentLedger()
    current: int | None = None
    last_released: int | None = None
    wall0: float | None = None

    badges: dict[int, BadgeState] = {}

    def tick(now: float) -> None:
        nonlocal last_released, wall0
        scores = scorer.compute()
        t = scores.get("t")
        view = None
        if now > session.start:
            # the live hub asked for the public view at every tick from the session's start (its wall and outputs
            # follow the ticks), which steps the session's release mechanism: so does the replay, released or not
            in_session = session.id is not None and (session.end is None or now <= session.end)
            view = release(scores, badges, session=in_session, now=now, salt=salt, rng=rng)
        if view is None or t is None or t == last_released or t < session.start:
            return
        last_released = t
        if summary.first_t is None:
            summary.first_t, wall0 = t, monotonic()
        if speed is not None and wall0 is not None:
            delay = wall0 + (t - summary.first_t) / speed - monotonic()
            if delay > 0:
                sleep(delay)
        summary.released += 1
        summary.last_t = t
        emit(t, view)

    for frame in frames:
        second = int(frame.t_rx)
        if current is not None:
            # the live hub's cadence: one compute per second, before that second's frames (through a short
            # silence too; across a long one, such as before the session, the seconds nobody was heard are skipped)
            for boundary in (*range(current + 1, min(second, current + QUIET_TICKS) + 1), second):
                if boundary > current:
                    tick(float(boundary))
                    current = boundary
        current = second
        if frame.t_rx >= session.start:
            summary.frames += 1
        obs = ledger.observe_live(frame.dev_id, frame.ctr, frame.fields["consent"], frame.t_rx)
        if obs.revoked is not None:
            scorer.forget(frame.dev_id)
        _heard(badges, frame)
        if frame.ftype != wire.TELEMETRY:
            continue
        if frame.erased and physio_allowed(frame.fields["consent"]) and frame.t_rx >= session.start:
            summary.note_erased(frame.dev_id, second)
        scorer.add(frame.dev_id, second, frame.fields)
    if current is not None:
        tick(float(current + 1))
    return summary


def _heard(badges: dict[int, BadgeState], frame: StoredFrame) -> None:
    """The hub's record of a badge's last live frame (what the public view counts and shows as swatches)."""
    badge = badges.get(frame.dev_id)
    if badge is None:
        badge = badges[frame.dev_id] = BadgeState(frame.dev_id, frame.t_rx, frame.link)
    f = frame.fields
    badge.last_seen, badge.link, badge.consent, badge.quality = frame.t_rx, frame.link, f["consent"], f["quality"]
    badge.battery, badge.charging = f["battery"] & 0x7F, bool(f["battery"] & 0x80)
    badge.frames += 1
    badge.hue, badge.chroma = frame.colour


class ReplaySurface:
    """What the web app needs from a hub (lifepalette.hub.contracts.HubSurface), served from a replay: the wall shows
    each released view as the replay reaches it; the operator sees the replay's progress. Nothing can be changed."""

    def __init__(self, summary: dict | None = None) -> None:
        self.view = release_public_view(None, (), session=False, now=0.0, salt=b"")  # nobody heard yet: withheld
        self.progress: dict = summary or {}
        self._subscribers: list[Callable[[], Any]] = []

    def show(self, view: PublicView, progress: dict) -> None:
        """Called from the replay's thread; subscribers only poke their feeds (thread-safe)."""
        self.view, self.progress = view, progress
        for callback in list(self._subscribers):
            callback()

    def public_view(self) -> PublicView:
        return self.view

    def operator_state(self) -> dict:
        return {"replay": self.progress, "session": {"active": self.view.session}}

    def subscribe(self, callback: Callable[[], Any]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def start_session(self) -> dict:
        raise LifePaletteError("this is a replay of a stored session: nothing to start")

    def end_session(self) -> dict:
        raise LifePaletteError("this is a replay of a stored session: nothing to end")

    def rotate_group_key(self) -> bytes:
        raise LifePaletteError("this is a replay of a stored session: no badges to send a key to")
