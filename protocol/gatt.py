# The Life Palette GATT service, one definition for the badge (firmware/hal/esp32/radio.py) and the hub
# (lifepalette.ble). A random 128-bit base, not the Bluetooth base UUID: that range is the SIG's to assign.
SERVICE_UUID = "6c500001-7e1d-4c8f-9a52-4c6966655061"
TELEMETRY_UUID = "6c500002-7e1d-4c8f-9a52-4c6966655061"  # notify, read: one 24-byte sealed frame
CONTROL_UUID = "6c500003-7e1d-4c8f-9a52-4c6966655061"  # write with response: one 24-byte command frame (type 3)
BACKLOG_UUID = "6c500004-7e1d-4c8f-9a52-4c6966655061"  # notify: concatenated 24-byte backlog frames (type 4)
CONTROL_BUFFER = 64  # gatts_set_buffer size for the control characteristic; the default 20 bytes cuts frames
