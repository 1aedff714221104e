# MAX30102 / MAX30101 pulse-oximetry front end over I2C (address 0x57, PART_ID 0x15 for both).
# Heart-rate use: one LED in multi-LED mode, slot 1 = LED2 (IR) on the MAX30102, LED3 (green) on the MAX30101 (the
# board chooses); 18-bit samples from the 32-deep FIFO, 3 bytes per sample, 50 samples/s on the chip's own clock.
# read_burst() empties the FIFO in one pointer read plus one or a few data bursts; the caller runs the PPG kernel on
# every sample at the chip's rate, so nothing is averaged or repeated. The overflow counter (samples the FIFO lost
# because the badge was late) is added up in `lost`. shutdown() sets SHDN (~0.7 uA): LEDs dark, FIFO empty.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


ADDR = const(0x57)
_REG_INT_STATUS_1 = const(0x00)
_REG_INT_ENABLE_1 = const(0x02)
_REG_FIFO_WR_PTR = const(0x04)
_REG_OVF_COUNTER = const(0x05)
_REG_FIFO_RD_PTR = const(0x06)
_REG_FIFO_DATA = const(0x07)
_REG_FIFO_CONFIG = const(0x08)
_REG_MODE_CONFIG = const(0x09)
_REG_SPO2_CONFIG = const(0x0A)
_REG_LED1_PA = const(0x0C)  # red
_REG_LED2_PA = const(0x0D)  # IR
_REG_LED3_PA = const(0x0E)  # green (MAX30101 only)
_REG_MULTI_LED_1 = const(0x11)
_REG_PART_ID = const(0xFF)
PART_ID = const(0x15)

_MODE_SHDN = const(0x80)
_MODE_RESET = const(0x40)
_MODE_MULTI = const(0x07)
_SLOT_IR = const(0x02)
_SLOT_GREEN = const(0x03)
_FIFO_ROLLOVER = const(0x10)
FIFO_DEPTH = const(32)
_SAMPLE_MASK = const(0x3FFFF)
SAMPLE_RATES = (50, 100, 200, 400)  # SR codes 0..3
CHIP_HZ = const(50)  # the configured sample rate (the kernel runs at it): 640 ms of FIFO, half the LED pulses
_LED_CODE_MAX = const(255)  # 51 mA
_LED_CODE_START = const(35)  # 7 mA until the LED loop has seen a second of DC


class SensorError(Exception):
    pass


class MAX30102:
    def __init__(self, i2c, addr=ADDR, green=False, sample_rate=CHIP_HZ, led_code=_LED_CODE_START):
        self.i2c = i2c
        self.addr = addr
        self.green = green  # MAX30101 green LED (board choice); False = MAX30102 IR
        self.sample_rate = sample_rate
        self.code = led_code  # LED drive, 0.2 mA per step
        self.lost = 0  # samples lost to FIFO overflow since boot
        self._b1 = bytearray(1)
        self._b3 = bytearray(3)
        buf = bytearray(3 * FIFO_DEPTH)
        mv = memoryview(buf)
        self._buf = buf
        # burst views of 1, 2, 4, 8, 16, 32 samples (made once: slicing at read time would allocate)
        self._views = [mv[:3 << i] for i in range(6)]

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    def _write(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    def probe(self):
        try:
            part = self._read(_REG_PART_ID)
        except OSError:
            raise SensorError("MAX3010x not answering at 0x%02x" % self.addr) from None
        if part != PART_ID:
            raise SensorError("unexpected MAX3010x part id 0x%02x" % part)

    def setup(self):
        """Reset and configure; leaves the chip in shutdown until wake()."""
        self.probe()
        self._write(_REG_MODE_CONFIG, _MODE_RESET)
        for _ in range(100):
            if not self._read(_REG_MODE_CONFIG) & _MODE_RESET:
                break
        else:
            raise SensorError("MAX3010x reset did not complete")
        self._write(_REG_INT_ENABLE_1, 0)
        self._write(_REG_FIFO_CONFIG, _FIFO_ROLLOVER | 0x0F)  # no averaging, roll over, almost-full at 17 free
        sr = SAMPLE_RATES.index(self.sample_rate) if self.sample_rate in SAMPLE_RATES else 0
        self._write(_REG_SPO2_CONFIG, (1 << 5) | (sr << 2) | 3)  # 4096 nA range, 411 us pulses = 18 bits
        self._write(_REG_MULTI_LED_1, _SLOT_GREEN if self.green else _SLOT_IR)
        self._write(_REG_LED1_PA, 0)
        self.set_code(self.code)
        self._write(_REG_MODE_CONFIG, _MODE_SHDN | _MODE_MULTI)
        self.clear_fifo()

    def set_code(self, code):
        """LED drive in 0.2 mA steps (0..255)."""
        code = 0 if code < 0 else (_LED_CODE_MAX if code > _LED_CODE_MAX else code)
        self.code = code
        self._write(_REG_LED3_PA if self.green else _REG_LED2_PA, code)

    def set_led_current(self, ma_x10):
        """LED drive current in 0.1 mA (0..510)."""
        self.set_code(ma_x10 // 2)

    def clear_fifo(self):
        self._write(_REG_FIFO_WR_PTR, 0)
        self._write(_REG_OVF_COUNTER, 0)
        self._write(_REG_FIFO_RD_PTR, 0)

    def shutdown(self):
        self._write(_REG_MODE_CONFIG, _MODE_SHDN | _MODE_MULTI)

    def wake(self):
        self.clear_fifo()
        self._write(_REG_MODE_CONFIG, _MODE_MULTI)

    def is_shutdown(self):
        return bool(self._read(_REG_MODE_CONFIG) & _MODE_SHDN)

    def available(self):
        """Samples waiting in the FIFO (32 if it overflowed; the lost ones are added to `lost`)."""
        b = self._b3
        self.i2c.readfrom_mem_into(self.addr, _REG_FIFO_WR_PTR, b)  # WR_PTR, OVF_COUNTER, RD_PTR in one read
        if b[1]:
            self.lost += b[1]
            return FIFO_DEPTH
        return (b[0] - b[2]) & (FIFO_DEPTH - 1)

    def read_sample(self):
        """One 18-bit sample from the FIFO (the caller checked available())."""
        b = self._b3
        self.i2c.readfrom_mem_into(self.addr, _REG_FIFO_DATA, b)
        return ((b[0] << 16) | (b[1] << 8) | b[2]) & _SAMPLE_MASK

    def read_burst(self, out):
        """Every sample waiting, oldest first, into out[0..n); returns n (0..32)."""
        n = self.available()
        b = self._buf
        got = 0
        k = 5
        while got < n:
            while (1 << k) > n - got:
                k -= 1
            self.i2c.readfrom_mem_into(self.addr, _REG_FIFO_DATA, self._views[k])
            for i in range(1 << k):
                j = 3 * i
                out[got + i] = ((b[j] << 16) | (b[j + 1] << 8) | b[j + 2]) & _SAMPLE_MASK
            got += 1 << k
        return n
