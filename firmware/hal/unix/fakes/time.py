# The port's `time` on the strict stand-ins' simulated clock: ticks_ms() is lp_fake's simulated time since this
# boot, and sleep_ms() lets simulated time pass through machine.idle() (the stand-ins' timer and chip physics), so
# the esp32 HAL's sleeping wait loop runs here as fast as the interpreter can go.
import sys

_path = sys.path
sys.path = []
from time import *  # noqa: E402,F401,F403  (the unix port's own time)

sys.path = _path
del _path
import lp_fake  # noqa: E402


def ticks_ms():
    return lp_fake.ms


def sleep_ms(ms):
    import machine

    end = lp_fake.ms + ms
    while lp_fake.ms < end:
        machine.idle()
