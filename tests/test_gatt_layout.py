"""The badge and the hub use one GATT layout: a mismatch would leave every BLE link without characteristics."""

import re

from lifepalette import ble
from lifepalette.paths import FIRMWARE_DIR

from protocol import gatt


def test_hub_uses_the_protocol_definition():
    assert (ble.SERVICE_UUID, ble.TELEMETRY_UUID, ble.CONTROL_UUID, ble.BACKLOG_UUID) == (
        gatt.SERVICE_UUID, gatt.TELEMETRY_UUID, gatt.CONTROL_UUID, gatt.BACKLOG_UUID)


def test_uuids_are_distinct_128_bit_and_outside_the_sig_base():
    uuids = [gatt.SERVICE_UUID, gatt.TELEMETRY_UUID, gatt.CONTROL_UUID, gatt.BACKLOG_UUID]
    assert len(set(uuids)) == 4
    for u in uuids:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", u)
        assert not u.endswith("-0000-1000-8000-00805f9b34fb")  # the Bluetooth base belongs to the SIG


def test_firmware_declares_no_uuid_of_its_own():
    # the badge's BLE HAL takes every UUID from protocol.gatt; a literal would drift from the hub's
    source = (FIRMWARE_DIR / "hal" / "esp32" / "radio.py").read_text()
    assert "gatt.SERVICE_UUID" in source and "gatt.CONTROL_BUFFER" in source
    assert not re.search(r'UUID\("[0-9a-f]{8}-', source)


def test_gatt_module_runs_under_micropython(mpy):
    out = mpy.run("from protocol import gatt; print(gatt.SERVICE_UUID, gatt.CONTROL_BUFFER)")
    assert out.split() == [gatt.SERVICE_UUID, "64"]
