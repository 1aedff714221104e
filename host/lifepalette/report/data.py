"""What the session report shows, assembled from the store's rows (sans-I/O: no files, no SQL, no clock).

Public numbers come only from released views (`lifepalette.hub.journey`). Everything else is a count of events
(consent epochs, erasures) or a share over all frames of at least K_MIN wearers; below that the data-quality shares
are withheld, because a share over one or two people is their own number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lifepalette.boundary import PublicView, hex_colour
from lifepalette.errors import UsageError
from lifepalette.privacy import K_MIN
from protocol.records import CONSENT_PAUSED, CONSENT_PHYSIO, Q_MOTION, Q_SAFE_MODE, Q_SENSOR_MISSING, Q_SKIN

TELEMETRY, HEARTBEAT, BACKLOG = 0, 1, 4
BIN_S = 60.0  # data quality over time: one bar per minute


@dataclass(frozen=True)
class Session:
    """The span a report covers: a recorded session, or (id None) everything recorded when no session was."""

    id: int | None
    started_at: float
    ended_at: float | None
    clock_synced: bool | None = None

    def end(self, now: float) -> float:
        return self.ended_at if self.ended_at is not None else now

    def covers(self, t: float, now: float) -> bool:
        return self.started_at <= t <= self.end(now)


def choose_session(sessions: Sequence[tuple[int, float, float | None, bool | None]], wanted: int | None,
                   recorded: tuple[float, float] | None, where: str = "the database") -> Session:
    """The session asked for (default: the latest). With no session recorded at all, the whole recording.

    Raises UsageError (exit 2) for a session number the database does not hold, or nothing recorded at all."""
    known = [Session(i, s, e, c) for i, s, e, c in sessions]
    if wanted is not None:
        for session in known:
            if session.id == wanted:
                return session
        held = f"sessions held: {known[0].id}-{known[-1].id}" if known else "it holds no session"
        raise UsageError(f"no session {wanted} in {where} ({held})")
    if known:
        return known[-1]
    if recorded is None:
        raise UsageError(f"{where} holds no session and no frames: nothing to report")
    return Session(None, recorded[0], recorded[1])


# -- the journey (released views only) -------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """One stretch of the palette ribbon: from t0 to t1 the released colour (None: waiting for K_MIN people)."""

    t0: float
    t1: float
    hex: str | None
    arousal: float | None
    synchrony: float | None


def ribbon(points: Sequence[PublicView], end: float) -> list[Segment]:
    """The palette ribbon: each released view holds until the next one (the last until `end`)."""
    out = []
    for i, p in enumerate(points):
        t1 = points[i + 1].updated if i + 1 < len(points) else max(end, p.updated)
        colour = hex_colour(p.palette.rgb) if p.ready and p.palette is not None else None
        out.append(Segment(p.updated, t1, colour, p.arousal, p.synchrony))
    return out


def trajectories(points: Sequence[PublicView]) -> dict[str, list[tuple[float, float | None, float | None]]]:
    """(t, arousal, synchrony) per released aggregate: "cove" for the whole room, then each released group's
    label. A point where the aggregate was withheld carries (t, None, None): the line breaks there."""
    out: dict[str, list[tuple[float, float | None, float | None]]] = {"cove": []}
    labels = sorted({g.label for p in points for g in p.groups})
    for label in labels:
        out[label] = []
    for p in points:
        out["cove"].append((p.updated, p.arousal, p.synchrony))
        released = {g.label: g for g in p.groups}
        for label in labels:
            g = released.get(label)
            out[label].append((p.updated, g.arousal if g else None, g.synchrony if g else None))
    return out


def contributors_over_time(points: Sequence[PublicView]) -> list[tuple[float, int]]:
    return [(p.updated, p.contributors) for p in points]


# -- data quality and exclusions (shares over at least K_MIN wearers) ------------------------------------------
@dataclass(frozen=True)
class DataQuality:
    """Shares (0-1) of the session's frames; `withheld` when fewer than K_MIN wearers sent any."""

    withheld: bool
    telemetry_frames: int = 0
    heartbeat_frames: int = 0
    skin_contact: float | None = None
    motion: float | None = None
    sensor_missing: float | None = None
    safe_mode: float | None = None
    no_physio_consent: float | None = None
    paused: float | None = None
    physio_kept: float | None = None
    per_minute: tuple[tuple[float, float], ...] = ()  # (minute start, share of telemetry with skin contact)


def _share(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def data_quality(frames: Sequence[tuple[float, int, int, int | None, int | None, Any]], start: float,
                 k_min: int = K_MIN) -> DataQuality:
    """From (t_rx, dev_id, ftype, consent, quality, has_physio) rows: how usable the session's data was and what
    was excluded (no consent to physiology, paused, no skin contact). Device ids are only counted, never kept."""
    wearers = len({row[1] for row in frames})
    if wearers < k_min:
        return DataQuality(withheld=True)
    telemetry = [r for r in frames if r[2] in (TELEMETRY, BACKLOG)]
    beats = [r for r in frames if r[2] == HEARTBEAT]
    n = len(telemetry)
    bit: Counter[str] = Counter()
    per_minute: dict[int, list[int]] = {}
    for t, _dev, _ftype, consent, quality, has_physio in telemetry:
        quality, consent = quality or 0, consent or 0
        bit["skin"] += bool(quality & Q_SKIN)
        bit["motion"] += bool(quality & Q_MOTION)
        bit["missing"] += bool(quality & Q_SENSOR_MISSING)
        bit["no_consent"] += not consent & CONSENT_PHYSIO
        bit["paused"] += bool(consent & CONSENT_PAUSED)
        bit["physio"] += bool(has_physio)
        minute = per_minute.setdefault(int((t - start) // BIN_S), [0, 0])
        minute[0] += bool(quality & Q_SKIN)
        minute[1] += 1
    safe = sum(1 for r in beats if (r[4] or 0) & Q_SAFE_MODE)
    return DataQuality(
        withheld=False, telemetry_frames=n, heartbeat_frames=len(beats), skin_contact=_share(bit["skin"], n),
        motion=_share(bit["motion"], n), sensor_missing=_share(bit["missing"], n),
        safe_mode=_share(safe, len(beats)), no_physio_consent=_share(bit["no_consent"], n),
        paused=_share(bit["paused"], n), physio_kept=_share(bit["physio"], n),
        per_minute=tuple((start + m * BIN_S, round(skin / total, 4)) for m, (skin, total) in sorted(per_minute.items())))


# -- consent events and erasures (counts) ----------------------------------------------------------------------
@dataclass(frozen=True)
class ConsentEvents:
    opened: int = 0  # consent epochs that began in the session (a badge consented, or changed its consent)
    revoked: int = 0  # of those, ended by a revocation
    erased: int = 0  # of those, erased since


def consent_events(epochs: Sequence[tuple[int, float, float | None, int | None, bool]], session: Session,
                   now: float) -> ConsentEvents:
    """From (revision, opened_at, closed_at, revoked_at_ctr, erased) rows: the session's consent events."""
    mine = [e for e in epochs if session.covers(e[1], now)]
    return ConsentEvents(len(mine), sum(1 for e in mine if e[3] is not None), sum(1 for e in mine if e[4]))


@dataclass(frozen=True)
class Erasures:
    """Erasure receipts written during the session, by reason (how many rows each removed is not shown: the
    rows of one erasure are one person's frame count)."""

    total: int = 0
    by_reason: tuple[tuple[str, int], ...] = ()


def erasures_in(receipts: Sequence[tuple[float, str, int]], session: Session, now: float) -> Erasures:
    reasons = Counter(reason for at, reason, _rows in receipts if session.covers(at, now))
    return Erasures(sum(reasons.values()), tuple(sorted(reasons.items())))


# -- the whole report ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    session: Session
    now: float
    points: tuple[PublicView, ...]
    journey_source: str  # "live": as the hub released it; "report": released for this report (none was kept)
    quality: DataQuality
    consent: ConsentEvents
    erasures: Erasures
    budget: dict | None  # the per-person budget spent on public numbers (privacy.budget's as_dict), if recorded
    k_min: int = K_MIN
    cove: str = "cove"
    extra: dict = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.session.end(self.now)


def budget_of(recorded: Any) -> dict | None:
    """The budget status the hub recorded (a dict with spent/limit/fraction), or None when it is not usable."""
    if not isinstance(recorded, dict) or not {"spent", "limit", "fraction"} <= set(recorded):
        return None
    return {k: recorded[k] for k in ("spent", "limit", "fraction", "releases", "refused", "exhausted", "epsilon",
                                     "delta", "unit") if k in recorded}
