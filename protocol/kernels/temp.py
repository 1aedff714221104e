"""Skin temperature kernel: centi-degC samples -> the last second's mean and a worn/not-worn test.

Integer only. Sums stay small (<= 128 samples/s * 6000 < 2**20).
Skin contact range 28.00..42.00 degC: wider than Kleckner 2018's 30-40 degC because a badge on clothing or a wrist in
a cool room reads a few degrees low, yet a badge lying on a table sits at room temperature (< 28 degC).
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


SKIN_MIN = const(2800)
SKIN_MAX = const(4200)


class TempKernel:
    def __init__(self, rate=1):
        self.rate = rate
        self.reset()

    def reset(self):
        self.sum = 0
        self.cnt = 0
        self.mean = -1
        self.seen = 0

    def push(self, centi_c):
        if centi_c < -4000:
            centi_c = -4000
        elif centi_c > 8000:
            centi_c = 8000
        self.sum += centi_c
        self.cnt += 1
        self.seen = 1

    def tick(self):
        if self.cnt > 0:
            self.mean = self.sum // self.cnt
        self.sum = 0
        self.cnt = 0

    def on_skin(self):
        """1 in skin range, 0 outside, -1 when no temperature sensor has reported yet."""
        if not self.seen:
            return -1
        return 1 if SKIN_MIN <= self.mean <= SKIN_MAX else 0
