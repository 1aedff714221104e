# LIS3DH 3-axis accelerometer over I2C (0x18 with SA0 low, 0x19 high; WHO_AM_I 0x33).
# High-resolution mode, +-2 g (1 mg per digit, 12-bit left-justified), block data update, ODR 25 Hz on the chip's own
# oscillator, into its 32-sample FIFO in stream mode (1.28 s deep). The badge empties the FIFO on its acceleration
# schedule (16 times a second) and the motion kernel gets every measurement once, at the chip's rate: reading the
# output registers at 16 Hz instead would drop a third of the 25 Hz measurements at uneven places. OVRN_FIFO
# (full: the next measurement overwrites the oldest) is counted in `overruns`; the chip does not count what it lost.
# shutdown() selects power-down mode (ODR = 0, 0.5 uA), which also empties the FIFO.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


ADDR = const(0x18)
_REG_WHO_AM_I = const(0x0F)
_REG_CTRL1 = const(0x20)
_REG_CTRL4 = const(0x23)
_REG_CTRL5 = const(0x24)
_REG_STATUS = const(0x27)
_REG_OUT_X_L = const(0x28)
_REG_FIFO_CTRL = const(0x2E)
_REG_FIFO_SRC = const(0x2F)
FIFO_EN = const(0x40)
_FIFO_BYPASS = const(0x00)
_FIFO_STREAM = const(0x80)
_FIFO_OVRN = const(0x40)
_FIFO_EMPTY = const(0x20)
FIFO_DEPTH = const(32)
_AUTO_INC = const(0x80)
WHO_AM_I = const(0x33)
_ODR_25HZ = const(0x30)
ODR_HZ = const(25)  # the motion kernel runs at this rate
_AXES_ON = const(0x07)
_CTRL4_BDU_HR_2G = const(0x88)
FULL_SCALE_MG = (2000, 4000, 8000, 16000)
MG_PER_DIGIT_HR = (1, 2, 4, 12)


class SensorError(Exception):
    pass


class LIS3DH:
    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._b1 = bytearray(1)
        self._b6 = bytearray(6)
        self.mg_per_digit = 1
        self.overruns = 0  # reads that found the FIFO full (measurements may have been overwritten)

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    def _write(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    def setup(self):
        """Check identity, configure, leave in power-down until wake()."""
        try:
            who = self._read(_REG_WHO_AM_I)
        except OSError:
            raise SensorError("LIS3DH not answering at 0x%02x" % self.addr) from None
        if who != WHO_AM_I:
            raise SensorError("unexpected LIS3DH WHO_AM_I 0x%02x" % who)
        self._write(_REG_CTRL4, _CTRL4_BDU_HR_2G)
        self.mg_per_digit = MG_PER_DIGIT_HR[(_CTRL4_BDU_HR_2G >> 4) & 3]
        self._write(_REG_CTRL5, FIFO_EN)
        self.shutdown()

    def shutdown(self):
        self._write(_REG_CTRL1, _AXES_ON)  # ODR 0000 = power-down

    def wake(self):
        self._write(_REG_FIFO_CTRL, _FIFO_BYPASS)  # bypass then stream: the datasheet's way to restart the FIFO
        self._write(_REG_FIFO_CTRL, _FIFO_STREAM)
        self._write(_REG_CTRL1, _ODR_25HZ | _AXES_ON)

    def is_shutdown(self):
        return (self._read(_REG_CTRL1) & 0xF0) == 0

    def available(self):
        """Measurements waiting in the FIFO (0 during the turn-on time after wake); 32 when full, counted in
        `overruns`."""
        src = self._read(_REG_FIFO_SRC)
        if src & _FIFO_OVRN:
            self.overruns += 1
            return FIFO_DEPTH
        return 0 if src & _FIFO_EMPTY else src & 0x1F

    def read_into(self, out):
        """The oldest measurement in the FIFO, x, y, z in milli-g, into out[0:3] (the caller checked available()).
        One 6-byte auto-increment read of OUT_X_L..OUT_Z_H, which pops it."""
        b = self._b6
        self.i2c.readfrom_mem_into(self.addr, _REG_OUT_X_L | _AUTO_INC, b)
        k = self.mg_per_digit
        for i in range(3):
            v = b[2 * i] | (b[2 * i + 1] << 8)
            if v & 0x8000:
                v -= 0x10000
            out[i] = (v >> 4) * k
