"""What the hub shows: the public view (released here and nowhere else) and the operator's state.

`release_public_view` is the single point where public numbers are made. The wall, /api/cove and its events, OSC,
MQTT and (through MQTT) the sphere only re-publish the `PublicView` it returns; a release mechanism that changes what
the public may see (noise, delayed membership) belongs here and reaches every surface at once.
"""

from __future__ import annotations

import colorsys
import hashlib
import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifepalette.boundary import GROUP_LABELS, GroupAggregate, Palette, PublicView, clamp_rgb, hex_colour
from lifepalette.hub.consent import revision_of
from lifepalette.privacy import K_MIN
from lifepalette.scoring.report import PublicGroup, Scores
from protocol.records import CONSENT_PAUSED, CONSENT_PHYSIO
from protocol.verifier import REASONS

if TYPE_CHECKING:
    from lifepalette.hub.core import Hub

ONLINE_S = 30.0  # a badge heard within this many seconds counts as online
NEUTRAL_RGB = (96, 96, 96)


@dataclass
class BadgeState:
    """What the hub last heard from one badge (live frames only)."""

    dev_id: int
    last_seen: float
    link: str
    battery: int | None = None
    charging: bool = False
    consent: int = 0
    quality: int = 0
    rssi: int | None = None
    frames: int = 0
    hue: int | None = None
    chroma: int | None = None

    def online(self, now: float) -> bool:
        return now - self.last_seen <= ONLINE_S

    def contributes(self, now: float) -> bool:
        """Online, consenting to physiology and not paused: counts towards k."""
        return self.online(now) and bool(self.consent & CONSENT_PHYSIO) and not self.consent & CONSENT_PAUSED

    def as_dict(self, now: float) -> dict:
        return {"dev_id": self.dev_id, "last_seen": self.last_seen, "age_s": round(now - self.last_seen, 1),
                "online": self.online(now), "link": self.link, "battery": self.battery,
                "charging": self.charging, "consent": {"physio": bool(self.consent & 1),
                                                       "colour": bool(self.consent & 2),
                                                       "paused": bool(self.consent & 4),
                                                       "revision": revision_of(self.consent)},
                "quality": self.quality, "rssi": self.rssi, "frames": self.frames}


def group_colour_of(scores: Scores | None) -> tuple[tuple[int, int, int], int, int]:
    """(rgb, arousal byte, synchrony byte) of the cove palette the scorer made, for the badges' group colour."""
    if scores is None:
        return NEUTRAL_RGB, 0, 0
    palette = scores["palette"]
    return clamp_rgb(palette["rgb"]), _byte(palette["brightness"]), _byte(palette["convergence"])


def _byte(value: float) -> int:
    return max(0, min(255, int(round(float(value) * 255)))) if math.isfinite(value) else 0


def hue_chroma_to_rgb(hue: int, chroma: int) -> tuple[int, int, int]:
    """A badge's telemetry colour (hue 0-255 around the wheel, chroma 0-255) as an RGB swatch at full value."""
    r, g, b = colorsys.hsv_to_rgb((hue % 256) / 256.0, min(255, max(0, chroma)) / 255.0, 1.0)
    return (round(r * 255), round(g * 255), round(b * 255))


def shuffled_swatches(colours: list[tuple[int, int]], salt: bytes) -> tuple[str, ...]:
    """Anonymous swatches in a keyed order: stable while the salt lives, unrelated to any measure or device id."""
    order = sorted(range(len(colours)), key=lambda i: hmac.new(salt, repr(i).encode(), hashlib.sha256).digest())
    return tuple(hex_colour(hue_chroma_to_rgb(*colours[i])) for i in order)


def _public_groups(groups: Iterable[PublicGroup]) -> tuple[GroupAggregate, ...]:
    shown = [g for g in groups if not g.get("suppressed") and g["contributors"] >= K_MIN]
    return tuple(GroupAggregate(GROUP_LABELS[i % len(GROUP_LABELS)], g["contributors"], _finite(g["arousal"]),
                                _finite(g["excess_synchrony"]), clamp_rgb(g["palette"]["rgb"]))
                 for i, g in enumerate(shown))


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def release_public_view(scores: Scores | None, badges: Iterable[BadgeState], *, session: bool, now: float,
                        salt: bytes) -> PublicView:
    """The public view of the cove now: aggregates only, and only while at least K_MIN people contribute.

    `scores` is the scorer's latest document (None before the first tick); `badges` are what the hub heard.
    """
    badges = list(badges)
    contributors = sum(1 for b in badges if b.contributes(now))
    if contributors < K_MIN:
        return PublicView.withheld(contributors, session=session, updated=now)
    rgb, _arousal, _synchrony = group_colour_of(scores)
    if scores is None:
        palette = Palette(rgb)
        arousal = synchrony = None
        groups: tuple[GroupAggregate, ...] = ()
    else:
        palette = Palette(rgb, _finite(scores["palette"]["brightness"]), _finite(scores["palette"]["convergence"]))
        cove = scores["public"]["cove"]
        arousal, synchrony = _finite(cove.get("arousal")), _finite(cove.get("excess_synchrony"))
        groups = _public_groups(scores["public"]["groups"])
    swatches = [(b.hue, b.chroma if b.chroma is not None else 255) for b in badges
                if b.online(now) and b.hue is not None]
    return PublicView(contributors, palette=palette,
                      arousal=arousal if arousal is not None else palette.brightness,
                      synchrony=synchrony if synchrony is not None else palette.convergence,
                      groups=groups, swatches=shuffled_swatches(swatches, salt),
                      session=session, updated=now)


def operator_view(hub: Hub, now: float) -> dict:
    """Everything the operator console shows. Groups and public aggregates only: no per-wearer number leaves the
    hub through it, so it cannot rank anyone."""
    counts = {reason: hub.rejections.get(reason, 0) for reason in REASONS}
    return {
        "now": now,
        "badges": [b.as_dict(now) for b in sorted(hub.badges.values(), key=lambda b: b.dev_id)],
        "online": sum(1 for b in hub.badges.values() if b.online(now)),
        "enrolled": sorted(hub.keys),
        "transports": [t.describe() for t in hub.transports],
        "links": {"ble_gatt": hub.ble.link_count() if hub.ble else 0,
                  "ble": dict(hub.ble.stats) if hub.ble else None},
        "rejections": counts,
        "accepted": hub.accepted,
        "stored": hub.store.frames_committed,
        "internal_errors": hub.internal_errors,
        "consent_epochs": hub.ledger.as_list(),
        "erasures": hub.receipts[:50],
        "scoring": {"cadence_s": hub.cadence_s, "ticks": hub.score_ticks, "last_tick": hub.last_tick,
                    "cpu_s": round(hub.score_cpu_s, 4), "available": hub.scorer is not None},
        "group_colour": {"group_id": hub.group_id, "rgb": list(hub.group_rgb)},
        "session": hub.session_state(),
        # Groups and public aggregates only: no per-wearer numbers leave the hub through its state (no ranking).
        "scores": {k: v for k, v in (hub.scores or {}).items() if k in ("groups", "public", "palette", "t")},
    }
