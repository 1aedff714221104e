"""What the hub shows: the public view (released here and nowhere else) and the operator's state.

`release_public_view` is the single point where public numbers are made. The wall, /api/cove and its events, OSC,
MQTT and (through MQTT) the sphere only re-publish the `PublicView` it returns. It goes through the release mechanism
(`lifepalette.privacy.release.PublicRelease`: noise, cadence, stable cohort, the per-person budget), so every
surface shows the same released numbers.
"""

from __future__ import annotations

import colorsys
import hashlib
import hmac
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lifepalette.boundary import Palette, PublicView, clamp_rgb, hex_colour
from lifepalette.hub.clock import appliance_state
from lifepalette.hub.consent import revision_of
from lifepalette.privacy import K_MIN
from lifepalette.privacy.release import CoveTruth, GroupTruth, PublicRelease, pair_mean_sensitivity
from lifepalette.scoring import palette as pal
from lifepalette.scoring.report import Scores
from protocol import records
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
                "quality": self.quality, "rssi": self.rssi, "frames": self.frames,
                "safe_mode": bool(self.quality & records.Q_SAFE_MODE),
                "sensor_missing": bool(self.quality & records.Q_SENSOR_MISSING)}


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


def released_colour(arousal: float | None, synchrony: float | None, colours: Sequence[tuple[int, int]]) -> Palette:
    """The public palette from released numbers and the colours wearers share on purpose (post-processing only)."""
    hues = np.array([(h % 256) * 360.0 / 256.0 for h, _c in colours])
    chromas = np.array([min(255, max(0, c)) / 255.0 for _h, c in colours])
    made = pal.group_colour(math.nan if arousal is None else arousal, math.nan if synchrony is None else synchrony,
                            hues, chromas, 1.0)
    return Palette(clamp_rgb(made["rgb"]), made["brightness"] if arousal is not None else None,
                   made["convergence"] if synchrony is not None else None)


def public_release(seed: int | None = None) -> PublicRelease:
    """A fresh release state (one per session): seeded for reproducible releases, else from os.urandom."""
    return PublicRelease(released_colour, seed=seed)


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def cove_truth(scores: Scores | None, badges: list[BadgeState], now: float) -> CoveTruth:
    """The true aggregates the release mechanism protects, from the scorer's document and the badges heard."""
    members = frozenset(b.dev_id for b in badges if b.contributes(now))
    colours = tuple((b.hue, b.chroma if b.chroma is not None else 255) for b in badges
                    if b.online(now) and b.hue is not None)
    if scores is None:
        return CoveTruth(members, colours=colours)
    cove = scores["public"]["cove"]
    synchronised = [g for g in scores["groups"] if g["excess"] is not None]
    # a pair's excess lies in [-2, 2] and one person is in (g - 1) of a group's g (g - 1) / 2 pairs: 8/g of its
    # mean; the cove's synchrony is a mean over groups (and the released value is clipped to [0, 1]: at most 1)
    sync_sensitivity = min(1.0, max((pair_mean_sensitivity(len(g["members"])) for g in synchronised), default=1.0)
                           / max(len(synchronised), 1))
    members_of = {g["group"]: len(g["members"]) for g in scores["groups"]}
    groups = tuple(GroupTruth(g["contributors"], _finite(g["arousal"]), _finite(g["excess_synchrony"]),
                              members_of.get(g["group"], g["contributors"]))
                   for g in scores["public"]["groups"] if not g.get("suppressed") and g["contributors"] >= K_MIN)
    return CoveTruth(members, _finite(cove.get("arousal")), _finite(cove.get("excess_synchrony")),
                     int(cove.get("contributors", 0)), sync_sensitivity, groups, colours)


_RELEASES: dict[bytes, PublicRelease] = {}  # callers that keep no release state get one per swatch salt


def _release_for(salt: bytes, now: float) -> PublicRelease:
    """The release state of a caller that keeps none (a replay, a test): one per secret salt, seeded from it (a
    separate hash, unrelated to the swatch order); it starts again when time goes backwards (a new replay)."""
    release = _RELEASES.get(salt)
    if release is None or (release.last_t is not None and now < release.last_t):
        seed = int.from_bytes(hashlib.sha256(b"lifepalette public release\0" + salt).digest()[:16], "big")
        release = _RELEASES[salt] = public_release(seed)
    return release


def release_public_view(scores: Scores | None, badges: Iterable[BadgeState], *, session: bool, now: float,
                        salt: bytes, release: PublicRelease | None = None) -> PublicView:
    """The public view of the cove at `now`: aggregates only, only while at least K_MIN people contribute, and only
    as the release mechanism lets them out (lifepalette.privacy.release: noise, cadence, stable cohort, budget).

    `scores` is the scorer's latest document (None before the first tick); `badges` are what the hub heard;
    `release` is the session's release state (the hub keeps one per session; without it, one per `salt`).
    """
    badges = list(badges)
    truth = cove_truth(scores, badges, now)
    if release is None:
        release = _release_for(salt, now)
    swatches = shuffled_swatches(list(truth.colours), salt) if len(truth.members) >= K_MIN else ()
    return release.step(now, truth, session=session, swatches=swatches)


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
        "ingest": hub.ingest_stats(),  # per transport: received, queued, dropped by the hub, dropped by the kernel
        "stored": hub.store.frames_committed,
        "internal_errors": hub.internal_errors,
        "consent_epochs": hub.ledger.as_list(),
        "erasures": hub.receipts[:50],
        "erasures_pending": hub.store.pending_erasures(),  # recorded, not yet committed (a flush failed): retried
        "scoring": {"cadence_s": hub.cadence_s, "ticks": hub.score_ticks, "last_tick": hub.last_tick,
                    "cpu_s": round(hub.score_cpu_s, 4), "available": hub.scorer is not None},
        "group_colour": {"group_id": hub.group_id, "rgb": list(hub.group_rgb)},
        "session": hub.session_state(),
        "privacy": hub.release.status(),  # the per-person budget spent on public numbers this session
        # Groups and public aggregates only: no per-wearer numbers leave the hub through its state (no ranking).
        "scores": {k: v for k, v in (hub.scores or {}).items() if k in ("groups", "public", "palette", "t")},
        **appliance_state(),  # is the hub's clock trustworthy; its release and database schema version
    }
