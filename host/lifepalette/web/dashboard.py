"""The operator dashboard's history: the last 30 minutes of the hub, sampled every few seconds (sans-I/O).

`OperatorHistory.sample(state, now)` takes the operator state (hub/views.py operator_view) and keeps a few numbers
per sample: contributors, the accepted and rejected frame counters (charted as rates), and per badge its link
(frames per second heard, RSSI where the link has one), battery and signal quality. The room's arousal and
synchrony are charted from the journey of released views (hub/journey.py), never recomputed here.
`badge_flags` names what needs a hand. Everything here is operator-only (behind the console's sign-in).
"""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Any

from lifepalette.boundary import PublicView
from protocol.records import Q_EDA, Q_HR, Q_SKIN

WINDOW_S = 1800.0  # the charts' span: the last 30 minutes
MAX_CHART_POINTS = 360  # sent per series: one per 5 s over 30 min
SPARK_POINTS = 60  # per badge sparkline
LOW_BATTERY = 20  # per cent, not charging
STALE_S = 10.0  # a badge not heard this long has a stale link


def badge_flags(badge: dict) -> list[str]:
    """What needs a hand at this badge, in words (the console also marks each with a sign, never colour alone)."""
    flags = []
    battery = badge.get("battery")
    if isinstance(battery, int) and battery < LOW_BATTERY and not badge.get("charging"):
        flags.append("low battery")
    if badge.get("safe_mode"):
        flags.append("safe mode (a crash or fault: read its serial log)")
    elif badge.get("sensor_missing"):
        flags.append("sensor missing")
    consent = badge.get("consent") or {}
    capturing = consent.get("physio") and not consent.get("paused") and not badge.get("safe_mode")
    if capturing and badge.get("online") and not (badge.get("quality") or 0) & Q_SKIN:
        flags.append("no skin contact")
    age = badge.get("age_s")
    if isinstance(age, int | float) and age > STALE_S:
        flags.append(f"stale link (last heard {round(age)} s ago)")
    return flags


def signal_quality(quality: int) -> int:
    """0-3: skin contact, a valid heart rate, a valid skin conductance (the badge's own quality bits)."""
    return bool(quality & Q_SKIN) + bool(quality & Q_HR) + bool(quality & Q_EDA)


def _contributes(badge: dict) -> bool:
    consent = badge.get("consent") or {}
    return bool(badge.get("online") and consent.get("physio") and not consent.get("paused"))


def _thin(items: list, most: int) -> list:
    """At most `most` items, evenly spaced, the newest always kept."""
    if len(items) <= most:
        return items
    step = len(items) / most
    return [items[min(len(items) - 1, round((i + 1) * step) - 1)] for i in range(most)]


class OperatorHistory:
    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        self.samples: deque[tuple[float, int, int, int]] = deque()  # (t, contributors, accepted, rejected)
        self.badges: dict[int, deque[tuple[float, int, float | None, int | None, int]]] = {}
        # per badge: (t, frames counter, rssi, battery, signal quality)

    def sample(self, state: dict, now: float) -> None:
        badges = [b for b in state.get("badges") or [] if isinstance(b, dict) and "dev_id" in b]
        rejected = sum(v for v in (state.get("rejections") or {}).values() if isinstance(v, int))
        self.samples.append((now, sum(map(_contributes, badges)), int(state.get("accepted") or 0), rejected))
        for b in badges:
            line = self.badges.setdefault(int(b["dev_id"]), deque())
            line.append((now, int(b.get("frames") or 0), b.get("rssi"), b.get("battery"),
                         signal_quality(int(b.get("quality") or 0))))
        self._forget(now)

    def _forget(self, now: float) -> None:
        cutoff = now - self.window_s
        while self.samples and self.samples[0][0] < cutoff:
            self.samples.popleft()
        for dev in list(self.badges):
            line = self.badges[dev]
            while line and line[0][0] < cutoff:
                line.popleft()
            if not line:
                del self.badges[dev]

    def charts(self, journey: list[PublicView], now: float) -> dict[str, Any]:
        """Series as [t, value] pairs over the window: contributors, frames/s, rejections/s, and the released
        arousal and synchrony (null where nothing was released)."""
        s = list(self.samples)
        rates = [(b[0], _rate(a[2], b[2], a[0], b[0]), _rate(a[3], b[3], a[0], b[0])) for a, b in pairwise(s)]
        released = [p for p in journey if p.updated >= now - self.window_s]
        return {
            "window_s": self.window_s, "now": now,
            "contributors": _thin([[t, n] for t, n, _a, _r in s], MAX_CHART_POINTS),
            "frames_per_s": _thin([[t, f] for t, f, _r in rates], MAX_CHART_POINTS),
            "rejections_per_s": _thin([[t, r] for t, _f, r in rates], MAX_CHART_POINTS),
            "arousal": _thin([[p.updated, p.arousal] for p in released], MAX_CHART_POINTS),
            "synchrony": _thin([[p.updated, p.synchrony] for p in released], MAX_CHART_POINTS),
        }

    def sparklines(self) -> dict[str, dict[str, list]]:
        """Per badge (by id, for the operator): link (frames/s heard, RSSI), battery and signal quality."""
        out = {}
        for dev, line in self.badges.items():
            pts = list(line)
            link = [[b[0], _rate(a[1], b[1], a[0], b[0])] for a, b in pairwise(pts)]
            out[str(dev)] = {"link": _thin(link, SPARK_POINTS),
                             "rssi": _thin([[t, r] for t, _f, r, _b, _q in pts if r is not None], SPARK_POINTS),
                             "battery": _thin([[t, b] for t, _f, _r, b, _q in pts if b is not None], SPARK_POINTS),
                             "quality": _thin([[t, q] for t, _f, _r, _b, q in pts], SPARK_POINTS)}
        return out

    def to_json(self, journey: list[PublicView], now: float) -> dict[str, Any]:
        return {"charts": self.charts(journey, now), "sparklines": self.sparklines()}


def _rate(before: int, after: int, t0: float, t1: float) -> float:
    """Events per second between two counter readings (0 when a counter went back: a restarted hub)."""
    if t1 <= t0 or after < before:
        return 0.0
    return round((after - before) / (t1 - t0), 2)
