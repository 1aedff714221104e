# The port's `time` with the chip's clocks: ticks_ms()/ticks_us() count from this boot in simulated time (on an
# ESP32 they start at 0 at every reset; the crash log records uptimes from them).
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
