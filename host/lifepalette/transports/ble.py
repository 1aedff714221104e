"""BLE ingest with bleak: adverts through a detection callback, GATT links for telemetry, backlog and commands.

Policy: scanning is passive where the stack supports it; connects go one at a time
behind a single asyncio.Lock (controllers refuse parallel connects), at most `max_links` links at once, through
bleak-retry-connector. When more badges wait than there are slots, links older than `hold_s` make room.
The same code runs on BlueZ and on the Bumble backend: only `backend` (scanner and client classes plus their
keyword arguments) changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifepalette.ble import BACKLOG_UUID, CONTROL_UUID, TELEMETRY_UUID
from protocol.frame import COMPANY_ID, FRAME_LEN

log = logging.getLogger("lifepalette.hub.ble")
MIN_MTU = FRAME_LEN + 3  # the badge notifies only over links whose ATT MTU carries a whole frame (PROTOCOL.md §7)


@dataclass
class BleBackend:
    """Which bleak backend classes to use (None = the platform's) and the keyword arguments they need."""

    scanner_cls: type | None = None
    client_cls: type | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Link:
    dev_id: int
    client: Any
    since: float
    writer: asyncio.Task | None = None
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)


class BleTransport:
    name = "ble"

    def __init__(self, hub, *, backend: BleBackend | None = None, max_links: int = 6, hold_s: float = 60.0,
                 company_id: int = COMPANY_ID, passive: bool = True, connect_attempts: int = 3):
        self.hub = hub
        self.backend = backend or BleBackend()
        self.max_links = max_links
        self.hold_s = hold_s
        self.company_id = company_id
        self.passive = passive
        self.connect_attempts = connect_attempts
        self.connect_backoff_s = 5.0  # after a failed connect, leave the badge alone this long
        self.connect_lock = asyncio.Lock()  # one LE Create Connection at a time per adapter
        self.devices: dict[int, Any] = {}  # dev_id -> BLEDevice last seen with a verified frame
        self.rssi: dict[int, int] = {}
        self.links: dict[int, Link] = {}
        self.pending: dict[int, list[bytes]] = {}  # commands waiting for a link
        self.backoff_until: dict[int, float] = {}
        self.stats = {"adverts": 0, "notifications": 0, "connects": 0, "connect_failures": 0, "writes": 0,
                      "disconnects": 0, "short_mtu_links": 0}
        self._scanner = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()

    def describe(self) -> str:
        mode = "passive" if self.passive else "active"
        backend = self.backend.scanner_cls.__name__ if self.backend.scanner_cls else "platform"
        return f"ble scanning ({mode}, backend {backend}, company 0x{self.company_id:04X}, max {self.max_links} links)"

    # -- scanning ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        from bleak import BleakScanner

        kwargs = dict(self.backend.kwargs)
        if self.backend.scanner_cls is not None:
            kwargs["backend"] = self.backend.scanner_cls
        mode = "passive" if self.passive else "active"
        if self.passive and self.backend.scanner_cls is None:
            kwargs["bluez"] = {"or_patterns": self._or_patterns()}
        self._scanner = BleakScanner(self._on_advert, scanning_mode=mode, **kwargs)
        try:
            await self._scanner.start()
        except Exception as exc:  # BlueZ < 5.56 or no --experimental: passive scanning unavailable
            if not self.passive:
                raise
            log.warning("passive scanning unavailable (%s); scanning actively", exc)
            kwargs.pop("bluez", None)
            self.passive = False
            self._scanner = BleakScanner(self._on_advert, scanning_mode="active", **kwargs)
            await self._scanner.start()
        self._task = asyncio.create_task(self._link_manager())

    def _or_patterns(self) -> list:
        from bleak.args.bluez import OrPattern
        from bleak.assigned_numbers import AdvertisementDataType

        company = self.company_id.to_bytes(2, "little")
        return [OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, company)]

    def _on_advert(self, device, adv) -> None:
        frame = adv.manufacturer_data.get(self.company_id)
        if frame is None:
            return
        self.stats["adverts"] += 1
        verdict = self.hub.ingest(bytes(frame), link="ble-adv", route=None, rssi=adv.rssi)
        if verdict.ok:
            self.devices[verdict.dev_id] = device
            self.rssi[verdict.dev_id] = adv.rssi
            self._wake.set()

    # -- GATT links -------------------------------------------------------------------------------------------
    async def _link_manager(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._fill_slots()
            except asyncio.CancelledError:
                raise
            except Exception:  # a link manager that dies silently would leave the hub deaf on GATT
                log.exception("BLE link manager step failed")

    def _candidates(self) -> list[int]:
        now = time.monotonic()
        return [dev for dev in self.devices
                if dev not in self.links and self.backoff_until.get(dev, 0) <= now]

    async def _fill_slots(self) -> None:
        waiting = self._candidates()
        if waiting and len(self.links) >= self.max_links:
            oldest = min(self.links.values(), key=lambda link: link.since)
            if time.monotonic() - oldest.since >= self.hold_s:
                await self._drop(oldest.dev_id)
        for dev in self._candidates():
            if len(self.links) >= self.max_links:
                break
            await self._connect(dev)

    async def _connect(self, dev_id: int) -> None:
        from bleak import BleakClient
        from bleak_retry_connector import establish_connection

        device = self.devices[dev_id]
        kwargs = dict(self.backend.kwargs)
        if self.backend.client_cls is not None:
            kwargs["backend"] = self.backend.client_cls
        async with self.connect_lock:
            try:
                client = await establish_connection(
                    BleakClient, device, f"LP-{dev_id:04X}", disconnected_callback=lambda c: self._lost(dev_id),
                    max_attempts=self.connect_attempts, **kwargs)
            except Exception as exc:
                self.stats["connect_failures"] += 1
                self.backoff_until[dev_id] = time.monotonic() + self.connect_backoff_s
                log.info("connect to badge %d failed: %s", dev_id, exc)
                return
        link = Link(dev_id, client, time.monotonic())
        self.links[dev_id] = link
        self.stats["connects"] += 1
        mtu = await _link_mtu(client)  # before subscribing: BlueZ acquires it through a notify characteristic
        try:
            await client.start_notify(TELEMETRY_UUID, lambda _c, data: self._on_notify(dev_id, data, False))
            await client.start_notify(BACKLOG_UUID, lambda _c, data: self._on_notify(dev_id, data, True))
        except Exception as exc:
            log.info("subscribe on badge %d failed: %s", dev_id, exc)
            await self._drop(dev_id)
            return
        if mtu is not None and mtu < MIN_MTU:
            self.stats["short_mtu_links"] += 1
            log.warning("badge %d: ATT MTU %d on this link (< %d): the badge sends no notifications here (a frame "
                        "would be cut to %d bytes); its frames still arrive as adverts", dev_id, mtu, MIN_MTU, mtu - 3)
        link.writer = asyncio.create_task(self._writer(link))
        for frame in self.pending.pop(dev_id, []):
            link.outbox.put_nowait(frame)
        self.hub.link_up(dev_id, "ble-gatt", (self, dev_id))

    def _on_notify(self, dev_id: int, data: bytearray, backlog: bool) -> None:
        self.stats["notifications"] += 1
        route = (self, dev_id)
        if backlog and len(data) > FRAME_LEN and len(data) % FRAME_LEN == 0:
            for i in range(0, len(data), FRAME_LEN):
                self.hub.ingest(bytes(data[i:i + FRAME_LEN]), link="ble-gatt", route=route)
        else:
            self.hub.ingest(bytes(data), link="ble-gatt", route=route)

    async def _writer(self, link: Link) -> None:
        while True:
            frame = await link.outbox.get()
            try:
                await link.client.write_gatt_char(CONTROL_UUID, frame, response=True)
                self.stats["writes"] += 1
            except asyncio.CancelledError:  # the link went while this frame was in flight: write it on the next
                self.pending.setdefault(link.dev_id, []).insert(0, frame)
                raise
            except Exception as exc:
                log.info("write to badge %d failed: %s", link.dev_id, exc)
                self.pending.setdefault(link.dev_id, []).insert(0, frame)
                self._lost(link.dev_id)
                return

    def _lost(self, dev_id: int) -> None:
        link = self.links.pop(dev_id, None)
        if link is None:
            return
        self.stats["disconnects"] += 1
        if link.writer is not None and link.writer is not asyncio.current_task():
            link.writer.cancel()
        while not link.outbox.empty():
            self.pending.setdefault(dev_id, []).append(link.outbox.get_nowait())
        self._wake.set()

    async def _drop(self, dev_id: int) -> None:
        link = self.links.get(dev_id)
        if link is None:
            return
        self._lost(dev_id)
        try:
            await link.client.disconnect()
        except Exception as exc:
            log.info("disconnect from badge %d: %s", dev_id, exc)
        self.backoff_until[dev_id] = time.monotonic() + self.hold_s / 2

    # -- hub -> badge -----------------------------------------------------------------------------------------
    def send(self, frame: bytes, address: int) -> bool:
        """Queue a command frame for badge `address` (its dev_id): written now if linked, else on next link."""
        link = self.links.get(address)
        if link is None:
            queue = self.pending.setdefault(address, [])
            queue.append(frame)
            del queue[:-16]  # a badge that never links must not grow memory without bound
            return False
        link.outbox.put_nowait(frame)
        return True

    def link_count(self) -> int:
        return len(self.links)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._scanner is not None:
            try:
                await self._scanner.stop()
            except Exception as exc:
                log.info("scanner stop: %s", exc)
        for dev in list(self.links):
            await self._drop(dev)


async def _link_mtu(client) -> int | None:
    """The link's ATT MTU, or None if unknown. bleak's BlueZ backend reports 23 until the MTU that BlueZ exchanged
    on connect is acquired (its `_acquire_mtu`); the other backends know it once connected."""
    backend = getattr(client, "_backend", client)
    acquire = getattr(backend, "_acquire_mtu", None)
    if acquire is not None and getattr(backend, "_mtu_size", None) is None:
        try:
            await acquire()
        except Exception as exc:  # an older BlueZ, or a characteristic it will not hand out: say nothing wrong
            log.info("ATT MTU unknown (%s)", exc)
            return None
    return getattr(client, "mtu_size", None)


def ble_backend_for(radio) -> BleBackend:
    """The Bumble-backed bleak backend for a VirtualRadio (tests and the simulator)."""
    from lifepalette.ble.bumble_backend import BumbleClient, BumbleScanner

    return BleBackend(BumbleScanner, BumbleClient, {"radio": radio})


Sender = Callable[[bytes, Any], bool]
