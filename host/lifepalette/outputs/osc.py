"""OSC out for installations (python-osc over UDP): the cove's public palette and per-group measures.

Addresses (<cove> is the cove name with anything but letters, digits, '-' and '_' replaced by '-'):
  /lifepalette/<cove>/ready              i   1 when k >= 5 people contribute, else 0 (then nothing below is sent)
  /lifepalette/<cove>/contributors       i   how many consenting badges contribute
  /lifepalette/<cove>/palette            iii group colour r g b, 0-255
  /lifepalette/<cove>/brightness         f   0-1 (group arousal as brightness)
  /lifepalette/<cove>/arousal            f   0-1
  /lifepalette/<cove>/synchrony          f   0-1 (convergence of hues)
  /lifepalette/<cove>/swatches           i*  r g b r g b ... one anonymous colour per sharing badge, shuffled
  /lifepalette/<cove>/group/<A..>/palette|arousal|synchrony|contributors   the same per group with k >= 5
Sent at a fixed rate (default 2 Hz) so lights can fade smoothly between scoring ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from lifepalette.hub.contracts import HubSurface
from lifepalette.outputs.public import PublicSource


def osc_messages(view: dict) -> list[tuple[str, Any]]:
    """The (address, arguments) pairs for one public view; pure, so tests and tools can check addresses."""
    base = f"/lifepalette/{view['cove']}"
    messages: list[tuple[str, Any]] = [(f"{base}/ready", int(bool(view["ready"]))),
                                       (f"{base}/contributors", int(view["contributors"]))]
    if not view["ready"]:
        return messages
    palette = view.get("palette")
    if palette:
        messages.append((f"{base}/palette", list(palette["rgb"])))
        if palette.get("brightness") is not None:
            messages.append((f"{base}/brightness", float(palette["brightness"])))
    for name in ("arousal", "synchrony"):
        if view.get(name) is not None:
            messages.append((f"{base}/{name}", float(view[name])))
    if view.get("swatches"):
        flat = [int(h[i:i + 2], 16) for h in view["swatches"] for i in (1, 3, 5)]
        messages.append((f"{base}/swatches", flat))
    for group in view.get("groups", []):
        gbase = f"{base}/group/{group['label']}"
        messages.append((f"{gbase}/contributors", int(group["contributors"])))
        if group.get("rgb"):
            messages.append((f"{gbase}/palette", list(group["rgb"])))
        for name in ("arousal", "synchrony"):
            if group.get(name) is not None:
                messages.append((f"{gbase}/{name}", float(group[name])))
    return messages


class OscOut:
    """Sends the public view to one OSC target at `rate_hz`; `await start()`, `await stop()`."""

    def __init__(self, hub: HubSurface, host: str = "127.0.0.1", port: int = 9000, *, cove: str = "cove",
                 rate_hz: float = 2.0, source: PublicSource | None = None):
        if rate_hz <= 0:
            raise ValueError("OSC rate must be > 0 Hz")
        from pythonosc.udp_client import SimpleUDPClient

        self._own_source = source is None
        self.source = source or PublicSource(hub, cove)
        self.client = SimpleUDPClient(host, port)
        self.period = 1.0 / rate_hz
        self.sent = 0
        self._task: asyncio.Task | None = None

    async def start(self) -> OscOut:
        self._task = asyncio.create_task(self._run())
        return self

    async def send_once(self) -> int:
        messages = osc_messages(await self.source.view())
        for address, args in messages:
            try:
                self.client.send_message(address, args)
            except OSError:  # nobody listening / network down: an installation being off must not stop the hub
                return 0
        self.sent += 1
        return len(messages)

    async def _run(self) -> None:
        while True:
            await self.send_once()
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_source:
            self.source.close()


def parse_target(text: str, default_port: int = 9000) -> tuple[str, int]:
    """"HOST:PORT" (or "HOST") for --osc; raises UsageError with the reason."""
    from lifepalette.addresses import split_host_port
    from lifepalette.errors import UsageError

    try:
        return split_host_port(text, default_port=default_port)
    except ValueError:
        raise UsageError(f"bad OSC target {text!r}: expected HOST:PORT") from None
