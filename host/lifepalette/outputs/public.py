"""The public cove view: the one whitelist every public surface (wall, /api/cove, OSC, MQTT, sphere) goes through.

The hub's `public_state()` is already aggregate-only; this module is the second fence (defence in depth). It copies
only the fields it knows into a fresh dict, withholds every aggregate while fewer than K_MIN people contribute, and
shows each consenting badge's colour as an anonymous swatch whose order is a keyed hash (stable while the hub runs,
unrelated to any measure and to the device id order).
"""

from __future__ import annotations

import colorsys
import hashlib
import hmac
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

K_MIN = 5
GROUP_LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _first(state: Mapping[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in state and state[name] is not None:
            return state[name]
    return default


def _unit(value: Any) -> float | None:
    """A measure as a float in [0, 1], or None when absent or not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return round(min(1.0, max(0.0, float(value))), 3)


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float) and math.isfinite(value):
        return max(0, int(value))
    if isinstance(value, list | tuple | set | dict):
        return len(value)
    return 0


def _rgb(value: Any) -> list[int] | None:
    """[r, g, b] ints 0-255 from a list/tuple, a {"r","g","b"} or {"rgb": [...]} dict, or "#rrggbb"."""
    if isinstance(value, Mapping):
        if "rgb" in value:
            return _rgb(value["rgb"])
        if all(c in value for c in "rgb"):
            return _rgb([value["r"], value["g"], value["b"]])
        return None
    if isinstance(value, str) and len(value) == 7 and value.startswith("#"):
        try:
            return [int(value[i:i + 2], 16) for i in (1, 3, 5)]
        except ValueError:
            return None
    if isinstance(value, list | tuple) and len(value) == 3:
        if all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in value):
            return [max(0, min(255, int(round(c)))) for c in value]
    return None


def hex_colour(rgb: Iterable[int]) -> str:
    r, g, b = rgb
    return f"#{r:02x}{g:02x}{b:02x}"


def hue_chroma_to_rgb(hue: int, chroma: int) -> list[int]:
    """A badge's telemetry colour (hue 0-255 around the wheel, chroma 0-255) as an RGB swatch at full value."""
    r, g, b = colorsys.hsv_to_rgb((hue % 256) / 256.0, min(255, max(0, chroma)) / 255.0, 1.0)
    return [round(r * 255), round(g * 255), round(b * 255)]


def _swatch_colours(raw: Any) -> list[list[int]]:
    colours = []
    for item in raw or ():
        rgb = _rgb(item)
        if rgb is None and isinstance(item, Mapping) and "hue" in item:
            hue, chroma = item.get("hue"), item.get("chroma", 255)
            if isinstance(hue, int) and isinstance(chroma, int):
                rgb = hue_chroma_to_rgb(hue, chroma)
        if rgb is not None:
            colours.append(rgb)
    return colours


def _shuffle_key(salt: bytes, item: Any, index: int) -> bytes:
    """Keyed order: stable for the same input while the salt lives, unrelated to any measure."""
    ident = item.get("key", item.get("dev_id", index)) if isinstance(item, Mapping) else index
    return hmac.new(salt, repr(ident).encode(), hashlib.sha256).digest()


def _items(raw: Any) -> list:
    """A list from the hub's list/tuple field; anything else (None, a number, a dict, a string) is no items."""
    return list(raw) if isinstance(raw, list | tuple) else []


def _ordered_swatches(raw: Any, salt: bytes) -> list[str]:
    items = _items(raw)
    order = sorted(range(len(items)), key=lambda i: _shuffle_key(salt, items[i], i))
    return [hex_colour(rgb) for rgb in _swatch_colours(items[i] for i in order)]


def _palette(raw: Any) -> dict | None:
    if not isinstance(raw, Mapping):
        rgb = _rgb(raw)
        return None if rgb is None else {"rgb": rgb, "hex": hex_colour(rgb), "brightness": None, "convergence": None}
    rgb = _rgb(_first(raw, "rgb", "colour", "color", default=raw))
    if rgb is None:
        return None
    return {
        "rgb": rgb,
        "hex": hex_colour(rgb),
        "brightness": _unit(_first(raw, "brightness", "value")),
        "convergence": _unit(_first(raw, "convergence", "hue_convergence", "synchrony")),
    }


def _groups(raw: Any) -> list[dict]:
    """Groups with k >= K_MIN contributors; labelled A, B, ... in the order the hub lists them."""
    out = []
    for index, group in enumerate(_items(raw)):
        if not isinstance(group, Mapping):
            continue
        contributors = _count(_first(group, "contributors", "k", "n", "members", "wearers"))
        if contributors < K_MIN:
            continue
        palette = _palette(_first(group, "palette", "rgb", "colour", "color"))
        out.append({
            "label": GROUP_LABELS[index % len(GROUP_LABELS)],
            "contributors": contributors,
            "arousal": _unit(_first(group, "arousal", "group_arousal")),
            "synchrony": _unit(_first(group, "synchrony", "group_synchrony")),
            "rgb": palette["rgb"] if palette else None,
        })
    return out


def cove_view(state: Mapping[str, Any] | None, *, cove: str = "cove", salt: bytes = b"", seq: int = 0,
              now: float | None = None) -> dict:
    """The public view of the cove, rebuilt field by field from the hub's public state."""
    state = state or {}
    contributors = _count(_first(state, "contributors", "k", "consenting", "n", "wearers"))
    ready = contributors >= K_MIN
    palette = _palette(_first(state, "palette", "colour", "color")) if ready else None
    session = _first(state, "session", default=None)
    view: dict[str, Any] = {
        "cove": cove,
        "seq": seq,
        "updated": round(time.time() if now is None else now, 3),
        "k_min": K_MIN,
        "contributors": contributors,
        "ready": ready,
        "palette": palette,
        "arousal": None,
        "synchrony": None,
        "groups": [],
        "swatches": [],
        "session": bool(session.get("active")) if isinstance(session, Mapping) else bool(session),
    }
    if ready:
        view["arousal"] = _unit(_first(state, "arousal", "group_arousal"))
        view["synchrony"] = _unit(_first(state, "synchrony", "group_synchrony"))
        if palette and view["arousal"] is None:
            view["arousal"] = palette["brightness"]
        if palette and view["synchrony"] is None:
            view["synchrony"] = palette["convergence"]
        view["groups"] = _groups(_first(state, "groups", default=()))
        view["swatches"] = _ordered_swatches(_first(state, "swatches", "colours", default=()), salt)
    return view


def safe_name(name: str) -> str:
    """A cove name usable in OSC addresses and MQTT topics: letters, digits, '-' and '_' only."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in name.strip())
    return cleaned.strip("-")[:64] or "cove"


class PublicSource:
    """The hub's public view, rebuilt through `cove_view`; counts hub ticks so consumers can tell fresh from stale."""

    def __init__(self, hub: Any, cove: str = "cove"):
        import secrets

        self.hub = hub
        self.cove = safe_name(cove)
        self.salt = secrets.token_bytes(16)
        self.seq = 0
        self._callbacks: list = []
        self._unsubscribe = None
        subscribe = getattr(hub, "subscribe", None)
        if callable(subscribe):
            unsubscribe = subscribe(self._on_tick)
            self._unsubscribe = unsubscribe if callable(unsubscribe) else None

    def close(self) -> None:
        """Stop listening to the hub's ticks (the hub's subscribe returns an unsubscribe callable)."""
        self._callbacks.clear()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_tick(self, callback) -> None:
        self._callbacks.append(callback)

    def _on_tick(self, *_: Any) -> None:
        self.seq += 1
        for callback in list(self._callbacks):
            callback()

    async def view(self) -> dict:
        import inspect

        state = self.hub.public_state()
        if inspect.isawaitable(state):
            state = await state
        return cove_view(state, cove=self.cove, salt=self.salt, seq=self.seq)
