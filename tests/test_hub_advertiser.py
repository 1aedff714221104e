"""The BlueZ group-colour advertiser: the exported LEAdvertisement1's properties and the manager calls.

BlueZ and a system D-Bus cannot run here, so the bus is the narrowest stand-in: it records the messages."""

from __future__ import annotations

import asyncio

from dbus_fast import Message, MessageType
from dbus_fast.service import ServiceInterface
from lifepalette.crypto import open_frame
from lifepalette.hub.advertiser import AD_PATH, BlueZAdvertiser, GroupColourAdvertisement
from lifepalette.hub.core import Hub

from protocol import frame as wire
from protocol import records


def properties(ad: GroupColourAdvertisement) -> dict:
    out = {}

    def done(_iface, result, _user, err):
        assert err is None
        out.update(result)

    ServiceInterface._get_all_property_values(ad, done)
    return out


class RecordingBus:
    def __init__(self):
        self.exported, self.calls = {}, []

    def export(self, path, iface):
        self.exported[path] = iface

    def unexport(self, path, iface):
        self.exported.pop(path, None)

    async def call(self, message: Message):
        self.calls.append((message.member, message.path, message.signature, list(message.body)))
        return Message(message_type=MessageType.METHOD_RETURN, reply_serial=1, destination=":1.1")


def test_advertisement_properties_carry_a_sealed_group_colour(tmp_path):
    hub = Hub(tmp_path / "hub.db", scorer=None)
    frame = hub.seal_group_colour((10, 200, 30), arousal=40, synchrony=90)
    hub.store.con.close()
    ad = GroupColourAdvertisement(0xFFFF, frame)
    props = properties(ad)
    assert props["Type"].value == "broadcast" and props["Discoverable"].value is True
    assert props["Includes"].value == []
    md = props["ManufacturerData"]
    assert md.signature == "a{qv}" and list(md.value) == [0xFFFF]
    payload = md.value[0xFFFF].value
    assert payload == frame and len(payload) == wire.FRAME_LEN
    # What a badge sees on air: Flags + manufacturer AD = exactly the 31-byte legacy advert of PROTOCOL.md.
    assert wire.frame_from_advert(wire.advert(payload)) == frame
    rec = open_frame(hub.group_key, payload, wire.TO_BADGE)
    assert records.unpack_group_colour(rec)["g"] == 200


def test_advertiser_registers_and_reregisters_with_bluez():
    async def main():
        bus = RecordingBus()
        adv = BlueZAdvertiser("hci0", bus=bus)
        await adv.start()
        assert bus.exported[AD_PATH] is adv.advertisement
        adv.set_frame(b"\x22" * 24)
        await asyncio.sleep(0)
        await adv._update
        adv.set_frame(b"\x23" * 24)
        await adv._update
        await adv.stop()
        return bus

    bus = asyncio.run(main())
    members = [c[0] for c in bus.calls]
    assert members == ["RegisterAdvertisement", "UnregisterAdvertisement", "RegisterAdvertisement",
                       "UnregisterAdvertisement"]
    assert bus.calls[0][1] == "/org/bluez/hci0" and bus.calls[0][2] == "oa{sv}" and bus.calls[0][3][0] == AD_PATH
    assert AD_PATH not in bus.exported
