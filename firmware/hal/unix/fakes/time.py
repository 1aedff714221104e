# The port's `time` with the chip's clocks: ticks_ms()/ticks_us() count from this boot in simulated time (on an
# ESP32 they start at 0 at every reset; the crash log records uptimes from them), and sleep_ms() lets simulated
# time pass through machine.idle() (the stand-ins' timer and chip physics), so the esp32 HAL's sleeping wait loop
# runs here as fast as the interpreter can go (with the timer-stall fault it never returns: a hung main loop).
import sys

_path = sys.path
sys.path = []
from time import *  # noqa: E402,F401,F403  (the unix port's own time)

sys.path = _path
del _path


def ticks_ms():
    import lp_fake

    return lp_fake.ms


def ticks_us():
    import lp_fake

    return lp_fake.ms * 1000


def sleep_ms(ms):
    import lp_fake
    import machine

    end = lp_fake.ms + ms
    while lp_fake.ms < end or machine._state["stall"]:  # fault timer-stall: the main loop never wakes again
        machine.idle()
