"""What the wearer's page may ask of a hub, in one object: the web app (web/me.py) sees only this, never the Hub.

Everything is about one badge at a time, named by the badge's verified token: its consent, its consent epochs, what
is stored, its journey (hub/wearer_journey.py), its export and its erasure. The operator's side is the card and rotation.
No I/O but the hub's SQLite store and the journey's read-only replay.
"""

from __future__ import annotations

import io
import time
from typing import Any

from lifepalette.hub import export, wearer_link
from lifepalette.hub.wearer_journey import SETTLE_S, Journeys
from protocol.records import CONSENT_PAUSED


class WearerAccess:
    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.store = hub.store
        self.site_key: bytes = hub.site_key
        groups = getattr(getattr(hub, "scorer", None), "groups", None)

        def scorer():
            from lifepalette.scoring import CoveScorer

            return CoveScorer(groups=groups)

        self.journeys = Journeys(self.store.path, scorer)

    @classmethod
    def of(cls, hub: Any) -> WearerAccess | None:
        """For a hub with a store and a site key; None for one without (a replay): no wearer can open anything."""
        if getattr(hub, "store", None) is None or getattr(hub, "site_key", None) is None:
            return None
        return cls(hub)

    # -- the wearer ----------------------------------------------------------------------------------------------
    def badge_for(self, token: str) -> int | None:
        """The badge a token opens now (its generation is read from the database on every call), or None."""
        dev = wearer_link.verify(self.site_key, token, self.store.wearer_generation)
        return dev if dev is not None and self.store.knows_device(dev) else None

    def consent(self, dev: int) -> dict:
        """The badge's consent as the hub last recorded it (its latest epoch), with the paused bit if heard live."""
        epochs = self.store.wearer_epochs(dev)
        latest = epochs[-1] if epochs else None
        badge = getattr(self.hub, "badges", {}).get(dev)
        paused = bool(badge.consent & CONSENT_PAUSED) if badge is not None and badge.consent is not None else None
        return {"physiology": bool(latest and latest["physiology_shared"]),
                "colour": bool(latest and latest["colour_shared"]), "paused": paused,
                "revision": latest["revision"] if latest else None, "since": latest["opened_at"] if latest else None,
                "epoch": latest["epoch"] if latest else None,
                # an erased period keeps nothing more, even while the badge still shares: until consent changes
                "kept": bool(latest and latest["physiology_shared"] and not latest["erased"])}

    def journey_inputs(self) -> tuple[float, int]:
        """(read frames stored before, erasures so far): what `Journeys.update` needs, read on the hub's thread."""
        return time.time() - SETTLE_S, self.store.count_erasures()

    def about(self, dev: int, trajectory: list[dict]) -> dict:
        """The body of GET /api/me (the keys of the issue's contract first)."""
        sessions = self.store.wearer_sessions(dev)
        for point in trajectory:
            point["session"] = next((s["id"] for s in sessions if s["started_at"] <= point["t"]
                                     and (s["ended_at"] is None or point["t"] <= s["ended_at"])), None)
        return {"dev_id": dev, "consent": self.consent(dev), "epochs": self.store.wearer_epochs(dev),
                "trajectory": trajectory, "stored": self.store.wearer_stored(dev), "sessions": sessions,
                "erasures": self.store.wearer_receipts(dev), "now": time.time()}

    def export_csv(self, dev: int) -> str:
        """What `lifepalette export --dev N` writes (call from a worker thread: it opens its own connection)."""
        buffer = io.StringIO(newline="")
        export.write_csv(buffer, self.store.path, [dev])
        return buffer.getvalue()

    def export_rows(self, dev: int) -> list[dict]:
        return [dict(zip(export.COLUMNS, row, strict=True)) for row in export.rows(self.store.path, [dev])]

    def export_json(self, dev: int, rows: list[dict]) -> dict:
        return {"dev_id": dev, "columns": list(export.COLUMNS), "rows": rows,
                "consent_epochs": self.store.wearer_epochs(dev), "erasures": self.store.wearer_receipts(dev)}

    def flush(self) -> None:
        """Commit what the hub still holds in its batch, so an export is everything stored now."""
        flush = getattr(self.hub, "flush", None)
        if flush is not None:
            flush()

    def erase(self, dev: int) -> dict:
        """The wearer's erasure of all their physiology: the hub's one durable path, then the live scorer forgets
        them, as after a revocation. Returns the receipt."""
        receipt = self.hub.erase(dev, None, reason="wearer")
        scorer = getattr(self.hub, "scorer", None)
        if scorer is not None:
            scorer.forget(dev)
        return receipt

    # -- the operator --------------------------------------------------------------------------------------------
    def knows(self, dev: int) -> bool:
        return 0 < dev <= 0xFFFF and self.store.knows_device(dev)

    def card(self, dev: int, base: str) -> str:
        """The printable card (SVG); printing the first card issues the badge's first link."""
        generation = self.store.issue_wearer_link(dev)
        return wearer_link.card_svg(wearer_link.link(base, wearer_link.make_token(self.site_key, dev, generation)), dev)

    def rotate(self, dev: int) -> int:
        return self.store.issue_wearer_link(dev, rotate=True)
