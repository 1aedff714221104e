"""Virtual badge peripherals on a Bumble LocalLink: they advertise and notify frames produced elsewhere (the
firmware under MicroPython, or frames sealed by protocol/ code under the real micropython binary) and record the
command frames the hub writes to their control characteristic.

The link itself never loses anything, so the peripheral injects notification loss (`loss`, seeded) as a busy
2.4 GHz room would. Sealing and verification are not done here: the badge side owns its keys.
"""

from __future__ import annotations

import asyncio
import random

from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from lifepalette.ble import BACKLOG_UUID, CONTROL_UUID, SERVICE_UUID, TELEMETRY_UUID
from lifepalette.ble.bumble_backend import make_device
from protocol.frame import FRAME_LEN


class VirtualPeripheral:
    def __init__(self, link, address: str, name: str, *, loss: float = 0.0, seed: int = 0):
        self.device = make_device(link, name, address)
        self.address = address
        self.loss = loss
        self.rng = random.Random(seed)
        self.received: list[bytes] = []
        self.writes = asyncio.Queue()
        self.sent = 0
        self.dropped = 0
        self.telemetry = Characteristic(TELEMETRY_UUID, Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
                                        Characteristic.READABLE, b"")
        self.backlog = Characteristic(BACKLOG_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b"")
        self.control = Characteristic(CONTROL_UUID, Characteristic.Properties.WRITE, Characteristic.WRITEABLE,
                                      CharacteristicValue(write=self._on_write))
        self.device.add_services([Service(SERVICE_UUID, [self.telemetry, self.backlog, self.control])])

    def _on_write(self, connection: Connection, value: bytes) -> None:
        self.received.append(bytes(value))
        self.writes.put_nowait(bytes(value))

    async def start(self) -> None:
        await self.device.power_on()

    async def advertise(self, advert31: bytes) -> None:
        """(Re)start connectable advertising with this payload; it restarts by itself after a disconnection."""
        if self.device.is_advertising:
            await self.device.stop_advertising()
        await self.device.start_advertising(advertising_data=advert31, auto_restart=True)

    @property
    def connected(self) -> bool:
        return bool(self.device.connections)

    def _lost(self) -> bool:
        return self.loss > 0 and self.rng.random() < self.loss

    async def notify_telemetry(self, frame: bytes) -> bool:
        """Notify one frame to subscribers; returns False when the injected loss ate it."""
        self.sent += 1
        if self._lost():
            self.dropped += 1
            return False
        await self.device.notify_subscribers(self.telemetry, frame)
        return True

    async def notify_backlog(self, frames: list[bytes]) -> int:
        """Send backlog frames packed as many per notification as the MTU allows; returns notifications sent."""
        mtu = min((c.att_mtu for c in self.device.connections.values()), default=23)
        per = max(1, (mtu - 3) // FRAME_LEN)
        sent = 0
        for i in range(0, len(frames), per):
            chunk = b"".join(frames[i:i + per])
            self.sent += 1
            if self._lost():
                self.dropped += 1
                continue
            await self.device.notify_subscribers(self.backlog, chunk)
            sent += 1
        return sent

    async def notify_raw(self, data: bytes, *, backlog: bool = False) -> None:
        """Notify arbitrary bytes (malformed-input tests), bypassing loss."""
        await self.device.notify_subscribers(self.backlog if backlog else self.telemetry, data)
