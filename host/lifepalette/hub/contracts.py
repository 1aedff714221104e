"""Written contracts between the hub and what plugs into it (checked by type checkers, not at run time).

`Transport`: what the hub needs from UDP, USB serial and BLE (transports/). A transport calls back into the hub's
ingest (`hub.ingest(frame, link, route, rssi)`) and, for two-way links, `hub.link_up(dev_id, link, route)`.

`HubSurface`: everything the web app, the live feeds and the outputs (OSC, MQTT) may call on a hub. The real `Hub`
provides it; tests provide small in-test hubs with the same methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from lifepalette.boundary import PublicView


class Transport(Protocol):
    name: str  # "udp", "serial" or "ble": the link name stored with each frame's route

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def describe(self) -> str:
        """One line for the operator: what it listens on."""
        ...

    def send(self, frame: bytes, address: Any) -> bool:
        """Send one sealed frame to a badge at `address` (the route the badge was heard on); False if it could not."""
        ...


class HubSurface(Protocol):
    def public_view(self) -> PublicView:
        """The public view now (aggregates only; see hub/views.py)."""
        ...

    def operator_state(self) -> dict:
        """The operator console's state: badges, rejections, consent ledger, erasures (never per-wearer scores)."""
        ...

    def subscribe(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call `callback()` after every scoring tick; returns the unsubscribe function."""
        ...

    def start_session(self) -> dict: ...

    def end_session(self) -> dict: ...

    def rotate_group_key(self) -> bytes: ...
