"""The session's journey in public: a ring of the views the release mechanism let out, one point per change.

Sans-I/O. A point IS a released `PublicView` (without the swatches, which are single wearers' chosen colours and
not part of the group's journey): nothing here computes a number, so the wall's ribbon, the operator's charts and
the facilitator's report can show the journey without a second look at anyone's data (docs/PRIVACY.md: a
recomputed aggregate next to a released one is a differencing attack). Points go back in through the boundary
checks of `PublicView.from_json` (k >= K_MIN, values in range, no unknown key), so a stored journey cannot smuggle
anything else out; the wall gets the compact form of `point_to_json`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from lifepalette.boundary import BoundaryError, PublicView

MAX_POINTS = 4000  # a long evening at one point per release epoch (the budget allows 720 epochs per session)
HOLD_S = 10.0  # an unchanged view is noted again after this long, so the journey's clock keeps running


def point_of(view: PublicView) -> PublicView:
    """The journey's copy of a released view: the same numbers, no swatches, no publisher stamps."""
    return replace(view, swatches=(), cove="cove", seq=0)


def _same_numbers(a: PublicView, b: PublicView) -> bool:
    return (a.contributors, a.palette, a.arousal, a.synchrony, a.groups) == (
        b.contributors, b.palette, b.arousal, b.synchrony, b.groups)


def point_to_json(p: PublicView) -> dict:
    """A compact point: t, n (contributors) and, only while n >= k, the palette, arousal, synchrony and groups."""
    out: dict[str, Any] = {"t": p.updated, "n": p.contributors}
    if p.ready:
        out.update(rgb=list(p.palette.rgb) if p.palette else None, a=p.arousal, s=p.synchrony,
                   b=p.palette.brightness if p.palette else None, c=p.palette.convergence if p.palette else None,
                   g=[g.to_json() for g in p.groups])
    return out


class Journey:
    """Released views of one session, oldest first; `note` every view as it is published."""

    def __init__(self, max_points: int = MAX_POINTS, hold_s: float = HOLD_S):
        self.points: deque[PublicView] = deque(maxlen=max_points)
        self.hold_s = hold_s
        self._in_session = False

    def note(self, view: PublicView) -> bool:
        """Keep `view` when its numbers changed (or after hold_s unchanged); True when a point was added. A view
        that starts a session starts the journey afresh: the journey is the session's."""
        if view.session and not self._in_session:
            self.points.clear()
        self._in_session = view.session
        last = self.points[-1] if self.points else None
        if last is not None:
            if view.updated < last.updated:
                return False
            if _same_numbers(last, view) and view.updated - last.updated < self.hold_s:
                return False
        self.points.append(point_of(view))
        return True

    def since(self, t: float) -> list[PublicView]:
        return [p for p in self.points if p.updated >= t]

    def to_json(self, since: float | None = None) -> list[dict]:
        points: Iterable[PublicView] = self.points if since is None else self.since(since)
        return [point_to_json(p) for p in points]

    def to_stored(self) -> list[dict]:
        """Every point as the full PublicView JSON (what the hub keeps in its store for the report)."""
        return [p.to_json() for p in self.points]

    @classmethod
    def from_stored(cls, items: Any) -> Journey:
        """A stored journey back, each point through `PublicView.from_json` (refuses anything off the contract)."""
        if not isinstance(items, list):
            raise BoundaryError("journey: expected a list of points")
        journey = cls(max_points=max(MAX_POINTS, len(items)))
        journey.points.extend(PublicView.from_json(item) for item in items)
        return journey

    @classmethod
    def resumed(cls, items: Any) -> Journey:
        """A running session's stored journey, to go on from (its next view does not start a new journey)."""
        journey = cls.from_stored(items)
        journey._in_session = True
        return journey
