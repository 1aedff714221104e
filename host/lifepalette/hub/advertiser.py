"""Group colour out on a Pi: BlueZ's LEAdvertisingManager1 over D-Bus (dbus-fast, which bleak already brings).

bleak cannot advertise. The hub exports an org.bluez.LEAdvertisement1 object whose
ManufacturerData carries the sealed type-2 frame under the company id; BlueZ adds the Flags AD (Discoverable), so
the air bytes are the 31-byte legacy advert of PROTOCOL.md. A new frame each scoring tick re-registers the object
(BlueZ reads advertisement properties at registration).
"""

# No `from __future__ import annotations`: dbus-fast reads the D-Bus signatures from real annotation strings.

import asyncio
import logging

from dbus_fast import BusType, Message, MessageType, PropertyAccess, Variant
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from protocol.frame import COMPANY_ID

log = logging.getLogger("lifepalette.hub.advertiser")

BLUEZ = "org.bluez"
AD_MANAGER = "org.bluez.LEAdvertisingManager1"
AD_PATH = "/org/lifepalette/advertisement0"


class GroupColourAdvertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: a non-connectable broadcast of one sealed 24-byte frame."""

    def __init__(self, company_id: int = COMPANY_ID, frame: bytes = b"", interval_ms: tuple = (100, 200)):
        super().__init__("org.bluez.LEAdvertisement1")
        self.company_id = company_id
        self.frame = bytes(frame)
        self.interval_ms = interval_ms
        self.released = False

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> "s":  # noqa: F821, N802 (D-Bus names and signature strings)
        return "broadcast"

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> "a{qv}":  # noqa: F722, N802
        return {self.company_id: Variant("ay", self.frame)}

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> "b":  # noqa: F821, N802  -> BlueZ adds Flags 02 01 06
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> "as":  # noqa: F722, N802  nothing else: the frame alone fills the 31 bytes
        return []

    @dbus_property(access=PropertyAccess.READ)
    def MinInterval(self) -> "u":  # noqa: F821, N802
        return self.interval_ms[0]

    @dbus_property(access=PropertyAccess.READ)
    def MaxInterval(self) -> "u":  # noqa: F821, N802
        return self.interval_ms[1]

    @dbus_method()
    def Release(self) -> None:  # noqa: N802  BlueZ calls this when it drops the advertisement
        self.released = True


def register_message(adapter: str, path: str = AD_PATH) -> Message:
    return Message(destination=BLUEZ, path=f"/org/bluez/{adapter}", interface=AD_MANAGER,
                   member="RegisterAdvertisement", signature="oa{sv}", body=[path, {}])


def unregister_message(adapter: str, path: str = AD_PATH) -> Message:
    return Message(destination=BLUEZ, path=f"/org/bluez/{adapter}", interface=AD_MANAGER,
                   member="UnregisterAdvertisement", signature="o", body=[path])


class BlueZAdvertiser:
    """Advertise the latest group colour frame through BlueZ. `bus` may be given (tests); else the system bus."""

    def __init__(self, adapter: str = "hci0", company_id: int = COMPANY_ID, bus=None):
        self.adapter = adapter
        self.advertisement = GroupColourAdvertisement(company_id)
        self.bus = bus
        self.registered = False
        self.errors = 0
        self._update: asyncio.Task | None = None

    async def start(self) -> None:
        if self.bus is None:
            from dbus_fast.aio import MessageBus

            self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.bus.export(AD_PATH, self.advertisement)

    def set_frame(self, frame: bytes) -> None:
        self.advertisement.frame = bytes(frame)
        if self._update is None or self._update.done():
            self._update = asyncio.get_running_loop().create_task(self._reregister())

    async def _call(self, message: Message) -> bool:
        reply = await self.bus.call(message)
        if reply is None or reply.message_type == MessageType.ERROR:
            self.errors += 1
            log.warning("BlueZ %s failed: %s", message.member, getattr(reply, "body", None))
            return False
        return True

    async def _reregister(self) -> None:
        if self.registered:
            await self._call(unregister_message(self.adapter))
        self.registered = await self._call(register_message(self.adapter))

    async def stop(self) -> None:
        if self._update is not None:
            await asyncio.gather(self._update, return_exceptions=True)
        if self.bus is not None:
            if self.registered:
                await self._call(unregister_message(self.adapter))
                self.registered = False
            self.bus.unexport(AD_PATH, self.advertisement)
