"""BLE pieces of the hub that are not bleak itself: the Life Palette GATT layout, a bleak backend over Bumble
(virtual controllers, for tests and the simulator) and virtual peripherals that stand in for badges."""

# One definition of the GATT service, shared with the badge firmware (PROTOCOL.md §GATT).
from protocol.gatt import BACKLOG_UUID, CONTROL_UUID, SERVICE_UUID, TELEMETRY_UUID

__all__ = ["SERVICE_UUID", "TELEMETRY_UUID", "CONTROL_UUID", "BACKLOG_UUID"]
