# Shared state of the strict stand-ins for the esp32 port's modules (machine, bluetooth, neopixel, esp32, os):
# which chip they pretend to be, the simulated clock, and the faults to inject. Set by the host runner through
# environment variables (`lifepalette badge run --chip CHIP --fault NAME[@SECONDS]`):
#   LP_CHIP     esp32 | esp32s3 | esp32c3
#   LP_FAULTS   comma-separated NAME or NAME@SECONDS (seconds of simulated time since the first boot)
#   LP_T0_MS    simulated time at this boot (the runner carries the clock across resets)
#   LP_END_MS   simulated time at which the run ends
#   LP_BUTTON   GPIO of the consent button (held from 0 to 3.2 s so the sensors run)
#   LP_RTC      the RTC user memory (hex) the last boot left (reset() logs it for the runner)
#   LP_HEAP_POOL  code in flash: the heap of a plain interpreter with the badge's budget (lp_port pinned the rest)
# This directory is put on the path only by that runner and the tests: it never ships to a badge.
import os
import sys

RESET_EXIT = 99  # the runner restarts the interpreter on this exit code (a machine.reset() or a watchdog reset)

CHIP = os.getenv("LP_CHIP") or "esp32"
T0 = int(os.getenv("LP_T0_MS") or "0")
END = int(os.getenv("LP_END_MS") or "20000")
BUTTON = int(os.getenv("LP_BUTTON") or "-1")
RESET_CAUSE = int(os.getenv("LP_RESET_CAUSE") or "1")  # machine.PWRON_RESET at the first boot
HEAP_POOL = int(os.getenv("LP_HEAP_POOL") or "0")
RTC_MEM = bytearray(bytes.fromhex(os.getenv("LP_RTC") or ""))  # RTC user memory: kept by every reset but power-on
FAULTS = {}
for _item in (os.getenv("LP_FAULTS") or "").split(","):
    if _item:
        _name, _, _at = _item.partition("@")
        FAULTS[_name] = int(float(_at) * 1000) if _at else 0
# per chip: (gpio count, flash/PSRAM/USB pins, input-only pins, ADC1 pins, ADC2 pins, I2C buses, timers, machine)
CHIPS = {
    "esp32": (40, (6, 7, 8, 9, 10, 11), (34, 35, 36, 37, 38, 39), (32, 33, 34, 35, 36, 37, 38, 39),
              (0, 2, 4, 12, 13, 14, 15, 25, 26, 27), 2, 4, "Generic ESP32 module with ESP32"),
    "esp32s3": (49, (19, 20, 26, 27, 28, 29, 30, 31, 32), (), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
                (11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 2, 4, "Generic ESP32S3 module with ESP32S3"),
    "esp32c3": (22, (11, 12, 13, 14, 15, 16, 17, 18, 19), (), (0, 1, 2, 3, 4), (5,), 1, 2,
                "ESP32C3 module with ESP32C3"),
}
# GPIO numbers the chip does not have at all (machine.Pin raises ValueError("invalid pin"))
MISSING = {"esp32": (20, 24, 28, 29, 30, 31), "esp32s3": (22, 23, 24, 25), "esp32c3": ()}
if CHIP not in CHIPS:
    raise SystemExit("LP_CHIP must be one of " + " ".join(CHIPS))
SPEC = CHIPS[CHIP]
ms = 0  # simulated ms since this boot, advanced by machine.idle()
radio_on = False


def now():
    return T0 + ms


def due(name):
    """True while fault `name` is armed and its time has come."""
    at = FAULTS.get(name)
    return at is not None and now() >= at


_fired = []


def once(name):
    """True the first time it is asked once fault `name` is due, if its time falls in this boot (a one-off)."""
    at = FAULTS.get(name)
    if at is None or (T0 and at <= T0) or now() < at or name in _fired:
        return False
    _fired.append(name)
    return True


def log(msg):
    print("FAKE " + msg)


def reset(why):
    if RTC_MEM:
        log("rtc " + RTC_MEM.hex())
    log("reset (" + why + ") at " + str(now()))
    sys.exit(RESET_EXIT)
