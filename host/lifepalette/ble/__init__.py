"""BLE pieces of the hub that are not bleak itself: the Life Palette GATT layout, a bleak backend over Bumble
(virtual controllers, for tests and the simulator) and virtual peripherals that stand in for badges."""

# Life Palette GATT service (PROTOCOL.md / DESIGN.md §4). 128-bit UUIDs on the Bluetooth base with 32-bit aliases
# 0x6c50000N ("lP"); the badge firmware declares the same.
SERVICE_UUID = "6c500001-0000-1000-8000-00805f9b34fb"
TELEMETRY_UUID = "6c500002-0000-1000-8000-00805f9b34fb"  # notify, read: one 24-byte sealed frame
CONTROL_UUID = "6c500003-0000-1000-8000-00805f9b34fb"  # write with response: one 24-byte command frame (type 3)
BACKLOG_UUID = "6c500004-0000-1000-8000-00805f9b34fb"  # notify: concatenated 24-byte backlog frames (type 4)
