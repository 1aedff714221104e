"""Accelerometer kernel: motion index, motion-artefact flag, and skin contact.

Input: milli-g per axis (ints), clamped to +-8000 mg. Integer only, no allocation per sample.

* Motion index: total variation of the acceleration over the last second, ``sum(|dx| + |dy| + |dz|)`` in mg
  (<= 3 * 16000 * rate < 2**23 for rate <= 128), scaled to a full second at the kernel's rate (``tv * rate //
  count``, < 2**30 for rate <= 128: a second that lost samples is not read as stiller) and reported as
  ``min(254, tv_s // 32)``: one unit is 32 mg of movement per second at any sampling rate. A movement's total
  variation does not depend on how often it is sampled once the rate resolves it: a 1 Hz swing of amplitude A
  travels 4 A a second at 16 Hz and at the badge's 25 Hz alike. Gravity cancels in the differences. Sensor noise
  adds per sample, so its floor grows with the rate: white noise of 8-10 mg RMS per axis reads 13-17 at 16 Hz and
  21-26 at 25 Hz (medians), under the artefact threshold at both.
* Motion artefact: index >= ARTEFACT_INDEX (32, i.e. >= 1 g of movement per second) flags this second and the next
  ARTEFACT_HOLD_S seconds, because PPG and EDA settle after movement.
* Skin contact (``contact``): skin temperature in 28.00..42.00 degC when a temperature sensor reports (temp.py), and
  skin conductance above 0.05 uS (Kleckner 2018's floor: electrodes off the skin read ~0).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


AXIS_MAX = const(8000)
ARTEFACT_INDEX = const(32)
ARTEFACT_HOLD_S = const(2)


class MotionKernel:
    def __init__(self, rate=16):
        self.rate = rate
        self.reset()

    def reset(self):
        self.px = 0
        self.py = 0
        self.pz = 0
        self.have = 0
        self.tv = 0
        self.cnt = 0
        self.index = -1
        self.hold = 0

    def push(self, x, y, z):
        if x > AXIS_MAX:
            x = AXIS_MAX
        elif x < -AXIS_MAX:
            x = -AXIS_MAX
        if y > AXIS_MAX:
            y = AXIS_MAX
        elif y < -AXIS_MAX:
            y = -AXIS_MAX
        if z > AXIS_MAX:
            z = AXIS_MAX
        elif z < -AXIS_MAX:
            z = -AXIS_MAX
        if self.have:
            d = x - self.px
            t = d if d >= 0 else -d
            d = y - self.py
            t += d if d >= 0 else -d
            d = z - self.pz
            t += d if d >= 0 else -d
            self.tv += t
            self.cnt += 1
        self.have = 1
        self.px = x
        self.py = y
        self.pz = z

    def tick(self):
        """Once per second: close the second. index = -1 when no samples arrived."""
        if self.hold > 0:
            self.hold -= 1
        if self.cnt > 0:
            idx = ((self.tv * self.rate) // self.cnt) >> 5
            if idx > 254:
                idx = 254
            self.index = idx
            if idx >= ARTEFACT_INDEX:
                self.hold = ARTEFACT_HOLD_S + 1
        else:
            self.index = -1
        self.tv = 0
        self.cnt = 0

    def artefact(self):
        return self.hold > 0
