"""The public cove view as every public surface (wall, /api/cove, OSC, MQTT, sphere) publishes it.

The hub releases a typed `PublicView` (hub/views.py); publishers only stamp it with the cove's name and a sequence
number and serialise it with `to_json()`. Nothing here computes or re-reads a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifepalette.boundary import PublicView
from lifepalette.hub.contracts import HubSurface


def safe_name(name: str) -> str:
    """A cove name usable in OSC addresses and MQTT topics: letters, digits, '-' and '_' only."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in name.strip())
    return cleaned.strip("-")[:64] or "cove"


def published(view: PublicView, cove: str, seq: int) -> dict:
    """The JSON object a public surface sends for `view` (the /api/cove contract)."""
    return view.stamped(cove, seq).to_json()


class PublicSource:
    """The hub's public view for one publisher; counts hub ticks so consumers can tell fresh from stale."""

    def __init__(self, hub: HubSurface, cove: str = "cove"):
        self.hub = hub
        self.cove = safe_name(cove)
        self.seq = 0
        self._callbacks: list = []
        self._unsubscribe: Callable[[], None] | None = hub.subscribe(self._on_tick)

    def close(self) -> None:
        """Stop listening to the hub's ticks."""
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
        return published(self.hub.public_view(), self.cove, self.seq)
