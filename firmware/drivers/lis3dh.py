# LIS3DH 3-axis accelerometer over I2C (0x18 with SA0 low, 0x19 high; WHO_AM_I 0x33).
# High-resolution mode, +-2 g (1 mg per digit, 12-bit left-justified), block data update, ODR 25 Hz; the badge
# samples at its own rate (16 Hz). shutdown() selects power-down mode (ODR = 0, 0.5 uA).
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


ADDR = const(0x18)
REG_WHO_AM_I = const(0x0F)
REG_CTRL1 = const(0x20)
REG_CTRL4 = const(0x23)
REG_STATUS = const(0x27)
REG_OUT_X_L = const(0x28)
AUTO_INC = const(0x80)
WHO_AM_I = const(0x33)
ODR_25HZ = const(0x30)
AXES_ON = const(0x07)
CTRL4_BDU_HR_2G = const(0x88)
FULL_SCALE_MG = (2000, 4000, 8000, 16000)
MG_PER_DIGIT_HR = (1, 2, 4, 12)


class SensorError(Exception):
    pass


class LIS3DH:
    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._b1 = bytearray(1)
        self._b7 = bytearray(7)
        self.mg_per_digit = 1

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    def _write(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    def setup(self):
        """Check identity, configure, leave in power-down until wake()."""
        try:
            who = self._read(REG_WHO_AM_I)
        except OSError:
            raise SensorError("LIS3DH not answering at 0x%02x" % self.addr) from None
        if who != WHO_AM_I:
            raise SensorError("unexpected LIS3DH WHO_AM_I 0x%02x" % who)
        self._write(REG_CTRL4, CTRL4_BDU_HR_2G)
        self.mg_per_digit = MG_PER_DIGIT_HR[(CTRL4_BDU_HR_2G >> 4) & 3]
        self.shutdown()

    def shutdown(self):
        self._write(REG_CTRL1, AXES_ON)  # ODR 0000 = power-down

    def wake(self):
        self._write(REG_CTRL1, ODR_25HZ | AXES_ON)

    def is_shutdown(self):
        return (self._read(REG_CTRL1) & 0xF0) == 0

    def read_into(self, out):
        """x, y, z in milli-g into out[0:3] and True, or False when the chip has no new measurement (STATUS
        ZYXDA clear: during its turn-on time after wake, or read faster than its ODR). One 7-byte burst read:
        STATUS then OUT_X_L..OUT_Z_H."""
        b = self._b7
        self.i2c.readfrom_mem_into(self.addr, REG_STATUS | AUTO_INC, b)
        if not b[0] & 0x08:
            return False
        k = self.mg_per_digit
        for i in range(3):
            v = b[2 * i + 1] | (b[2 * i + 2] << 8)
            if v & 0x8000:
                v -= 0x10000
            out[i] = (v >> 4) * k
        return True
