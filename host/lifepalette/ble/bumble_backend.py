"""A bleak backend over Bumble's virtual controllers (Bumble 0.0.236), so the hub's unchanged bleak code runs
against a real BLE host stack (HCI, LL, ATT, GATT) without a radio.

`VirtualRadio` owns a `LocalLink` and the hub's controller; virtual peripherals join the same link.
`BumbleScanner` / `BumbleClient` are bleak backend CLASSES (bleak needs `backend.__name__`, so no partials); the
radio travels as a keyword argument: `BleakScanner(cb, backend=BumbleScanner, radio=radio)`.

The virtual link is ideal, so the radio adds what a Pi's controller has: a cap on simultaneous links
(`max_links`, refusing the next with "Limited Resources" as real controllers do).
"""

from __future__ import annotations

import asyncio
import uuid as uuid_mod
from typing import Any

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.hci import Address, LeFeatureMask
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

AD_COMPLETE_NAME = 0x09
AD_SHORT_NAME = 0x08
AD_MANUFACTURER = 0xFF

_PROPERTY_NAMES = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
    Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}


def make_device(link: LocalLink, name: str, address: str) -> Device:
    """A Bumble device on `link`, with the two Bumble 0.0.236 quirks worked around."""
    controller = Controller(name, link=link, public_address=address)
    controller.random_address = controller.public_address  # LocalLink routes LE ACL by random address
    controller.le_features &= ~LeFeatureMask.LE_EXTENDED_ADVERTISING  # legacy scanners drop extended reports
    return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


def bleak_uuid(u: UUID) -> str:
    """Bumble UUID -> bleak's lower-case 128-bit string."""
    return str(uuid_mod.UUID(bytes=bytes(reversed(u.to_bytes(force_128=True)))))


class VirtualRadio:
    """The hub's side of a virtual BLE link: one controller, a link cap, and the link peripherals join."""

    def __init__(self, *, max_links: int = 7, hub_address: str = "F1:F1:F1:F1:F1:F1", link: LocalLink | None = None):
        self.link = link or LocalLink()
        self.max_links = max_links
        self.device = make_device(self.link, "lp-hub", hub_address)
        self.connections: set[Connection] = set()
        self.refused = 0
        self._powered = False
        self._power_lock = asyncio.Lock()

    async def power_on(self) -> None:
        async with self._power_lock:
            if not self._powered:
                await self.device.power_on()
                self._powered = True


class _Details:
    """BLEDevice.details for this backend: which radio saw the device, at which Bumble address."""

    def __init__(self, radio: VirtualRadio, address: Address):
        self.radio = radio
        self.address = address


def parse_advert(data_bytes: bytes) -> tuple[str | None, dict[int, bytes]]:
    """(local name, manufacturer data by company id) from raw AD structures, tolerating junk."""
    name, manufacturer = None, {}
    i = 0
    while i + 1 < len(data_bytes):
        length = data_bytes[i]
        if length == 0 or i + 1 + length > len(data_bytes):
            break
        ad_type, value = data_bytes[i + 1], data_bytes[i + 2:i + 1 + length]
        if ad_type in (AD_COMPLETE_NAME, AD_SHORT_NAME):
            name = value.decode("utf-8", "replace")
        elif ad_type == AD_MANUFACTURER and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = bytes(value[2:])
        i += 1 + length
    return name, manufacturer


class BumbleScanner(BaseBleakScanner):
    def __init__(self, detection_callback: AdvertisementDataCallback | None, service_uuids: list[str] | None,
                 scanning_mode: str = "active", *, bluez: dict | None = None, cb: dict | None = None,
                 radio: VirtualRadio | None = None, **kwargs: Any):
        super().__init__(detection_callback, service_uuids)
        if radio is None:
            raise BleakError("BumbleScanner needs radio=VirtualRadio(...)")
        self.radio = radio
        self.active = scanning_mode != "passive"

    async def start(self) -> None:
        self.seen_devices = {}
        await self.radio.power_on()
        self.radio.device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await self.radio.device.start_scanning(active=self.active, filter_duplicates=False)

    async def stop(self) -> None:
        self.radio.device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        if self.radio.device.is_scanning:
            await self.radio.device.stop_scanning()

    def _on_advertisement(self, adv: Advertisement) -> None:
        name, manufacturer = parse_advert(adv.data_bytes)
        data = AdvertisementData(local_name=name, manufacturer_data=manufacturer, service_data={}, service_uuids=[],
                                 tx_power=None, rssi=adv.rssi, platform_data=(adv,))
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = str(adv.address).split("/")[0]
        device = self.create_or_update_device(address, address, name, _Details(self.radio, adv.address), data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    def __init__(self, address_or_ble_device: BLEDevice | str, *, disconnected_callback=None, timeout: float = 10.0,
                 radio: VirtualRadio | None = None, **kwargs: Any):
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        details = address_or_ble_device.details if isinstance(address_or_ble_device, BLEDevice) else None
        self.radio = radio or (details.radio if isinstance(details, _Details) else None)
        if self.radio is None:
            raise BleakError("BumbleClient needs radio=VirtualRadio(...) or a BLEDevice from BumbleScanner")
        self._peer_address = details.address if isinstance(details, _Details) else Address(self.address)
        self._connection: Connection | None = None
        self._closing = False

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        radio = self.radio
        await radio.power_on()
        if len(radio.connections) >= radio.max_links:
            radio.refused += 1
            raise BleakError("Connection Rejected due to Limited Resources (0x0d)")
        timeout = kwargs.get("timeout", self._timeout)
        try:
            connection = await radio.device.connect(self._peer_address, timeout=timeout)
        except Exception as exc:  # Bumble raises its own HCI/timeout errors; bleak callers expect BleakError
            raise BleakError(f"connect to {self.address} failed: {exc}") from exc
        self._connection = connection
        radio.connections.add(connection)
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(connection)
            await peer.request_mtu(247)
            await peer.discover_services()
            for service in peer.services:
                await peer.discover_characteristics(service=service)
            self.services = self._collect(peer)
        except Exception as exc:
            await self.disconnect()
            raise BleakError(f"GATT discovery on {self.address} failed: {exc}") from exc

    def _collect(self, peer: Peer) -> BleakGATTServiceCollection:
        services = BleakGATTServiceCollection()
        for proxy in peer.services:
            service = BleakGATTService(proxy, proxy.handle, bleak_uuid(proxy.uuid))
            services.add_service(service)
            for char in proxy.characteristics:
                props = [name for flag, name in _PROPERTY_NAMES.items() if char.properties & flag]
                services.add_characteristic(BleakGATTCharacteristic(
                    char, char.handle, bleak_uuid(char.uuid), props, lambda: self.mtu_size - 3, service))
        return services

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is not None:
            self.radio.connections.discard(self._connection)
        self._connection = None
        if not self._closing and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._closing = True
        try:
            await connection.disconnect()
        except Exception:  # already gone: the disconnection event has cleaned up
            pass
        finally:
            self.radio.connections.discard(connection)
            self._connection = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the Life Palette link seals frames itself; it does not pair")

    async def unpair(self) -> None:
        raise NotImplementedError("the Life Palette link seals frames itself; it does not pair")

    def _require(self) -> None:
        if self._connection is None:
            raise BleakError("Not connected")

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False,
                             **kwargs: Any) -> bytearray:
        self._require()
        return bytearray(await characteristic.obj.read_value())

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False,
                                   **kwargs: Any) -> bytearray:
        raise NotImplementedError("descriptors are not used by the Life Palette link")

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data, response: bool) -> None:
        self._require()
        await characteristic.obj.write_value(bytes(data), with_response=response)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data) -> None:
        raise NotImplementedError("descriptors are not used by the Life Palette link")

    async def start_notify(self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback,
                           **kwargs: Any) -> None:
        self._require()
        await characteristic.obj.subscribe(lambda value: callback(bytearray(value)))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require()
        await characteristic.obj.unsubscribe()
