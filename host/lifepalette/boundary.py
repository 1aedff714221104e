"""Typed, self-checking objects that cross module boundaries on the host.

Each is frozen and checks itself when built, so a malformed value fails where it is made, not three modules later
where somebody guesses a key name. The public view is the only shape in which numbers leave the hub:
`PublicView.to_json()` is exactly what GET /api/cove, its event stream, OSC and MQTT publish, and
`PublicView.from_json()` is how untrusted copies of it (MQTT into the sphere) come back in: unknown keys, wrong types
and aggregates over fewer than K_MIN people are refused with a `BoundaryError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from lifepalette.privacy import K_MIN

GROUP_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_HEX = re.compile(r"#[0-9a-f]{6}")


class BoundaryError(ValueError):
    """A value that does not have the shape its boundary promises."""


def _unit(value: Any, name: str) -> float | None:
    """A measure in [0, 1] (rounded to 3 places), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BoundaryError(f"{name}: expected a finite number or null, got {value!r}")
    return round(min(1.0, max(0.0, float(value))), 3)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BoundaryError(f"{name}: expected a count, got {value!r}")
    return value


def _rgb(value: Any, name: str) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3 or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
        raise BoundaryError(f"{name}: expected [r, g, b] integers 0-255, got {value!r}")
    return (value[0], value[1], value[2])


def _object(value: Any, keys: frozenset[str], name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BoundaryError(f"{name}: expected an object, got {type(value).__name__}")
    unknown = set(value) - keys
    missing = keys - set(value)
    if unknown or missing:
        raise BoundaryError(f"{name}: unknown keys {sorted(map(str, unknown))}, missing keys {sorted(missing)}")
    return value


def hex_colour(rgb: tuple[int, int, int] | list[int]) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


def clamp_rgb(values: Any) -> tuple[int, int, int]:
    """Three numbers (the scorer's floats or ints) as an RGB triple clamped to 0-255."""
    r, g, b = (max(0, min(255, int(round(float(c))))) for c in values)
    return (r, g, b)


@dataclass(frozen=True)
class Palette:
    """A colour shown publicly: RGB, brightness (from arousal) and hue convergence (from synchrony), both 0-1."""

    rgb: tuple[int, int, int]
    brightness: float | None = None
    convergence: float | None = None

    KEYS = frozenset({"rgb", "hex", "brightness", "convergence"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "rgb", _rgb(self.rgb, "palette.rgb"))
        object.__setattr__(self, "brightness", _unit(self.brightness, "palette.brightness"))
        object.__setattr__(self, "convergence", _unit(self.convergence, "palette.convergence"))

    @property
    def hex(self) -> str:
        return hex_colour(self.rgb)

    def to_json(self) -> dict:
        return {"rgb": list(self.rgb), "hex": self.hex, "brightness": self.brightness,
                "convergence": self.convergence}

    @classmethod
    def from_json(cls, value: Any) -> Palette:
        obj = _object(value, cls.KEYS, "palette")
        palette = cls(obj["rgb"], obj["brightness"], obj["convergence"])
        if obj["hex"] != palette.hex:
            raise BoundaryError(f"palette.hex {obj['hex']!r} does not match rgb {list(palette.rgb)}")
        return palette


@dataclass(frozen=True)
class GroupAggregate:
    """One dialogue group's public aggregate; exists only for groups with at least K_MIN contributors."""

    label: str
    contributors: int
    arousal: float | None = None
    synchrony: float | None = None
    rgb: tuple[int, int, int] | None = None

    KEYS = frozenset({"label", "contributors", "arousal", "synchrony", "rgb"})

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or len(self.label) != 1 or self.label not in GROUP_LABELS:
            raise BoundaryError(f"group.label: expected one of A-Z, got {self.label!r}")
        if _count(self.contributors, "group.contributors") < K_MIN:
            raise BoundaryError(f"group {self.label}: {self.contributors} contributors, fewer than k = {K_MIN}")
        object.__setattr__(self, "arousal", _unit(self.arousal, "group.arousal"))
        object.__setattr__(self, "synchrony", _unit(self.synchrony, "group.synchrony"))
        if self.rgb is not None:
            object.__setattr__(self, "rgb", _rgb(self.rgb, "group.rgb"))

    def to_json(self) -> dict:
        return {"label": self.label, "contributors": self.contributors, "arousal": self.arousal,
                "synchrony": self.synchrony, "rgb": list(self.rgb) if self.rgb is not None else None}

    @classmethod
    def from_json(cls, value: Any) -> GroupAggregate:
        obj = _object(value, cls.KEYS, "group")
        return cls(obj["label"], obj["contributors"], obj["arousal"], obj["synchrony"], obj["rgb"])


@dataclass(frozen=True)
class PublicView:
    """Everything the public may see of one cove. Aggregates only, and only while `ready` (k >= K_MIN).

    The hub releases it (hub/views.py `release_public_view`, the one place public numbers are made); the web app,
    OSC, MQTT and the sphere only re-publish it. `cove` and `seq` are stamped by the publisher.
    """

    contributors: int
    palette: Palette | None = None
    arousal: float | None = None
    synchrony: float | None = None
    groups: tuple[GroupAggregate, ...] = ()
    swatches: tuple[str, ...] = ()
    session: bool = False
    updated: float = 0.0
    cove: str = "cove"
    seq: int = 0
    k_min: int = field(default=K_MIN)

    KEYS = frozenset({"cove", "seq", "updated", "k_min", "contributors", "ready", "palette", "arousal", "synchrony",
                      "groups", "swatches", "session"})

    def __post_init__(self) -> None:
        _count(self.contributors, "contributors")
        _count(self.seq, "seq")
        if self.k_min != K_MIN:
            raise BoundaryError(f"k_min: expected {K_MIN}, got {self.k_min!r}")
        if not isinstance(self.cove, str) or not isinstance(self.session, bool):
            raise BoundaryError("cove must be a string and session a boolean")
        if isinstance(self.updated, bool) or not isinstance(self.updated, int | float) or not math.isfinite(
                self.updated):
            raise BoundaryError(f"updated: expected a time, got {self.updated!r}")
        object.__setattr__(self, "updated", round(float(self.updated), 3))
        object.__setattr__(self, "arousal", _unit(self.arousal, "arousal"))
        object.__setattr__(self, "synchrony", _unit(self.synchrony, "synchrony"))
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "swatches", tuple(self.swatches))
        if self.palette is not None and not isinstance(self.palette, Palette):
            raise BoundaryError("palette must be a Palette")
        if not all(isinstance(g, GroupAggregate) for g in self.groups):
            raise BoundaryError("groups must be GroupAggregate objects")
        if not all(isinstance(s, str) and _HEX.fullmatch(s) for s in self.swatches):
            raise BoundaryError("swatches must be #rrggbb colours")
        if not self.ready and (self.palette is not None or self.arousal is not None or self.synchrony is not None
                               or self.groups or self.swatches):
            raise BoundaryError(f"aggregates over {self.contributors} contributors, fewer than k = {K_MIN}")

    @property
    def ready(self) -> bool:
        return self.contributors >= K_MIN

    @classmethod
    def withheld(cls, contributors: int, *, session: bool = False, updated: float = 0.0) -> PublicView:
        """The view while fewer than K_MIN people contribute: the count and nothing else."""
        return cls(contributors, session=session, updated=updated)

    def stamped(self, cove: str, seq: int) -> PublicView:
        return replace(self, cove=cove, seq=seq)

    def to_json(self) -> dict:
        return {"cove": self.cove, "seq": self.seq, "updated": self.updated, "k_min": self.k_min,
                "contributors": self.contributors, "ready": self.ready,
                "palette": self.palette.to_json() if self.palette is not None else None,
                "arousal": self.arousal, "synchrony": self.synchrony,
                "groups": [g.to_json() for g in self.groups], "swatches": list(self.swatches),
                "session": self.session}

    @classmethod
    def from_json(cls, value: Any) -> PublicView:
        """Rebuild a view received from outside (e.g. MQTT); refuses unknown keys and anything off the contract."""
        obj = _object(value, cls.KEYS, "view")
        groups = obj["groups"]
        swatches = obj["swatches"]
        if not isinstance(groups, list) or not isinstance(swatches, list):
            raise BoundaryError("groups and swatches must be lists")
        view = cls(contributors=obj["contributors"],
                   palette=Palette.from_json(obj["palette"]) if obj["palette"] is not None else None,
                   arousal=obj["arousal"], synchrony=obj["synchrony"],
                   groups=tuple(GroupAggregate.from_json(g) for g in groups), swatches=tuple(swatches),
                   session=obj["session"], updated=obj["updated"], cove=obj["cove"], seq=obj["seq"],
                   k_min=obj["k_min"])
        if obj["ready"] is not view.ready:
            raise BoundaryError(f"ready is {obj['ready']!r} with {view.contributors} contributors")
        return view


class FrameRow(NamedTuple):
    """One stored frame (table `frames`): a NamedTuple so the store's executemany takes it as it is."""

    dev_id: int
    ctr: int
    ftype: int
    t_rx: float
    link: str
    epoch: int
    consent: int
    battery: int
    quality: int
    hue: int | None
    chroma: int | None
    colour_age: int | None


class PhysioRow(NamedTuple):
    """One frame's physiology (table `physio`); erased by whole rows, so it lives apart from `frames`."""

    dev_id: int
    ctr: int
    epoch: int
    hr_bpm: int | None
    rmssd_ms: int | None
    scl: int | None
    scr_per_min: int | None
    motion: int | None
