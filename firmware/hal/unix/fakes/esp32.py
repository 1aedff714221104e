# Strict stand-in for the esp32 port's `esp32` module: only what the badge may use.
import lp_fake

HEAP_DATA = 4
HEAP_EXEC = 1


def idf_heap_info(capabilities):
    if capabilities not in (HEAP_DATA, HEAP_EXEC):
        raise ValueError("invalid capabilities")
    return [(200000, 120000, 90000, 100000)]


def raw_temperature():
    if lp_fake.CHIP != "esp32":  # only the classic ESP32 has the sensor behind it
        raise AttributeError("raw_temperature")
    return 95
