"""A session report from a hub database (read-only): the store's rows into `lifepalette.report.data`.

The journey is the one the hub kept while it released the session's public view (hub/journey.py, in the meta
table). A session from before the hub kept journeys (or one nobody watched) gets its journey released here, through
the hub's own release mechanism (hub/timeline.py), with a seed taken from the session's stored data: the same data
always gives the same report, so printing it again gives nobody a fresh look.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

from lifepalette.boundary import BoundaryError, PublicView
from lifepalette.errors import UsageError
from lifepalette.hub.journey import Journey
from lifepalette.hub.store import ReadOnlyStore
from lifepalette.report import data


def load_report(db: str | Path, session: int | None = None, *, now: float | None = None,
                cove: str = "cove") -> data.Report:
    now = time.time() if now is None else now
    store = ReadOnlyStore(db)
    try:
        try:
            return _assemble(store, Path(db), session, now, cove)
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{db} is not a readable Life Palette hub database ({exc})") from None
    finally:
        store.close()


def _assemble(store: ReadOnlyStore, db: Path, wanted: int | None, now: float, cove: str) -> data.Report:
    span = store.con.execute("SELECT MIN(t_rx), MAX(t_rx) FROM frames").fetchone()
    recorded = (span[0], span[1]) if span[0] is not None else None
    session = data.choose_session(store.sessions(), wanted, recorded, str(db))
    end = session.end(now)
    kept = _kept_journey(store, session)
    if kept is not None:
        points, budget, source = kept[0], kept[1], "live"
    else:
        points, budget, source = _released_here(store.telemetry(session.started_at, end)), None, "report"
    if budget is None and session.id is not None:
        budget = _last_budget(store.public_budget(), session.id)
    return data.Report(
        session=session, now=now, points=tuple(points), journey_source=source,
        quality=data.data_quality(store.frames_between(session.started_at, end), session.started_at),
        consent=data.consent_events(store.consent_epochs(), session, now),
        erasures=data.erasures_in(store.erasures(), session, now), budget=budget, cove=cove)


def _kept_journey(store: ReadOnlyStore, session: data.Session) -> tuple[list[PublicView], dict | None] | None:
    if session.id is None:
        return None
    text = store.journey(session.id)
    if text is None:
        return None
    try:
        doc = json.loads(text)
        points = list(Journey.from_stored(doc.get("points")).points)
    except (ValueError, AttributeError, BoundaryError):
        return None  # a damaged record: release the journey here instead
    return points, data.budget_of(doc.get("budget"))


def _last_budget(text: str | None, session_id: int) -> dict | None:
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return data.budget_of(doc) if isinstance(doc, dict) and doc.get("session") == session_id else None


def _released_here(rows: list[tuple]) -> list[PublicView]:
    """The session's journey released through the hub's mechanism, seeded by the data (see the module's doc)."""
    if not rows:
        return []
    from lifepalette.hub.timeline import released_views
    from lifepalette.scoring import CoveScorer
    from lifepalette.sim.audit import telemetry_records

    records = telemetry_records(rows)
    seed = int.from_bytes(hashlib.sha256(repr(rows).encode()).digest()[:16], "big")
    journey = Journey()
    for _t, view in released_views(CoveScorer(), records, seed):
        journey.note(view)
    return list(journey.points)
