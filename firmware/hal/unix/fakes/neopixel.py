# Strict stand-in for the esp32 port's `neopixel` (micropython-lib's NeoPixel over machine.bitstream).
import lp_fake
from machine import Pin


class NeoPixel:
    ORDER = (1, 0, 2, 3)

    def __init__(self, pin, n, bpp=3, timing=1):
        if not isinstance(pin, Pin):
            raise TypeError("expecting a Pin")
        if pin.mode != Pin.OUT:
            pin.init(Pin.OUT)
        self.pin = pin
        self.n = n
        self.bpp = bpp
        self.buf = bytearray(n * bpp)
        self.last = None

    def __len__(self):
        return self.n

    def __setitem__(self, i, v):
        if len(v) != self.bpp:
            raise ValueError("expected %d values" % self.bpp)
        for k in range(self.bpp):
            self.buf[i * self.bpp + self.ORDER[k]] = v[k]  # a value outside 0..255 raises ValueError

    def __getitem__(self, i):
        o = i * self.bpp
        return tuple(self.buf[o + self.ORDER[k]] for k in range(self.bpp))

    def fill(self, v):
        for i in range(self.n):
            self[i] = v

    def write(self):
        rgb = self[0]
        if rgb != self.last:
            self.last = rgb
            lp_fake.log("LED %d %d %d %d" % (lp_fake.now(), rgb[0], rgb[1], rgb[2]))
