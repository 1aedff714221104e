# MAX30102 / MAX30101 pulse-oximetry front end over I2C (address 0x57, PART_ID 0x15 for both).
# Heart-rate use: one LED channel (red on the MAX30102 in HR mode; green on the MAX30101 in multi-LED mode, slot 1 =
# LED3), 18-bit samples from the 32-deep FIFO, 3 bytes per sample. shutdown() sets SHDN (~0.7 uA): without consent
# the LEDs are dark and the FIFO stays empty. Reads use preallocated buffers: no allocation per sample.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


ADDR = const(0x57)
REG_INT_STATUS_1 = const(0x00)
REG_INT_ENABLE_1 = const(0x02)
REG_FIFO_WR_PTR = const(0x04)
REG_OVF_COUNTER = const(0x05)
REG_FIFO_RD_PTR = const(0x06)
REG_FIFO_DATA = const(0x07)
REG_FIFO_CONFIG = const(0x08)
REG_MODE_CONFIG = const(0x09)
REG_SPO2_CONFIG = const(0x0A)
REG_LED1_PA = const(0x0C)  # red
REG_LED2_PA = const(0x0D)  # IR
REG_LED3_PA = const(0x0E)  # green (MAX30101 only)
REG_MULTI_LED_1 = const(0x11)
REG_PART_ID = const(0xFF)
PART_ID = const(0x15)

MODE_SHDN = const(0x80)
MODE_RESET = const(0x40)
MODE_HR = const(0x02)
MODE_MULTI = const(0x07)
FIFO_ROLLOVER = const(0x10)
FIFO_DEPTH = const(32)
SAMPLE_MASK = const(0x3FFFF)
SAMPLE_RATES = (50, 100, 200, 400)  # SR codes 0..3


class SensorError(Exception):
    pass


class MAX30102:
    def __init__(self, i2c, addr=ADDR, green=False, sample_rate=100, led_ma_x10=70):
        self.i2c = i2c
        self.addr = addr
        self.green = green  # MAX30101 green LED (better on darker skin at the wrist); False = MAX30102 red
        self.sample_rate = sample_rate
        self.led_ma_x10 = led_ma_x10
        self._b1 = bytearray(1)
        self._b3 = bytearray(3)
        self.mode = MODE_MULTI if green else MODE_HR

    def _read(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._b1)
        return self._b1[0]

    def _write(self, reg, value):
        self._b1[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._b1)

    def probe(self):
        try:
            part = self._read(REG_PART_ID)
        except OSError:
            raise SensorError("MAX3010x not answering at 0x%02x" % self.addr) from None
        if part != PART_ID:
            raise SensorError("unexpected MAX3010x part id 0x%02x" % part)

    def setup(self):
        """Reset and configure; leaves the chip in shutdown until wake()."""
        self.probe()
        self._write(REG_MODE_CONFIG, MODE_RESET)
        for _ in range(100):
            if not self._read(REG_MODE_CONFIG) & MODE_RESET:
                break
        else:
            raise SensorError("MAX3010x reset did not complete")
        self._write(REG_INT_ENABLE_1, 0)
        self._write(REG_FIFO_CONFIG, FIFO_ROLLOVER | 0x0F)  # no averaging, roll over, almost-full at 17 free
        sr = SAMPLE_RATES.index(self.sample_rate) if self.sample_rate in SAMPLE_RATES else 1
        self._write(REG_SPO2_CONFIG, (1 << 5) | (sr << 2) | 3)  # 4096 nA range, 411 us pulses = 18 bits
        if self.green:
            self._write(REG_MULTI_LED_1, 0x03)  # slot 1 = LED3 (green)
        self.set_led_current(self.led_ma_x10)
        self._write(REG_MODE_CONFIG, MODE_SHDN | self.mode)
        self.clear_fifo()

    def set_led_current(self, ma_x10):
        """LED drive current in 0.1 mA (0..510; 0.2 mA per register step)."""
        code = ma_x10 // 2
        if code > 255:
            code = 255
        elif code < 0:
            code = 0
        self.led_ma_x10 = ma_x10
        self._write(REG_LED3_PA if self.green else REG_LED1_PA, code)

    def clear_fifo(self):
        self._write(REG_FIFO_WR_PTR, 0)
        self._write(REG_OVF_COUNTER, 0)
        self._write(REG_FIFO_RD_PTR, 0)

    def shutdown(self):
        self._write(REG_MODE_CONFIG, MODE_SHDN | self.mode)

    def wake(self):
        self.clear_fifo()
        self._write(REG_MODE_CONFIG, self.mode)

    def is_shutdown(self):
        return bool(self._read(REG_MODE_CONFIG) & MODE_SHDN)

    def available(self):
        """Samples waiting in the FIFO (32 if it overflowed)."""
        if self._read(REG_OVF_COUNTER):
            return FIFO_DEPTH
        return (self._read(REG_FIFO_WR_PTR) - self._read(REG_FIFO_RD_PTR)) & (FIFO_DEPTH - 1)

    def read_sample(self):
        """One 18-bit sample from the FIFO (the caller checked available())."""
        b = self._b3
        self.i2c.readfrom_mem_into(self.addr, REG_FIFO_DATA, b)
        return ((b[0] << 16) | (b[1] << 8) | b[2]) & SAMPLE_MASK

    def read_mean(self):
        """Mean of every sample waiting (the chip runs at 50-400 Hz, the badge samples at its own rate); -1 if none."""
        n = self.available()
        if n == 0:
            return -1
        total = 0
        for _ in range(n):
            total += self.read_sample()
        if self._read(REG_OVF_COUNTER):
            self._write(REG_OVF_COUNTER, 0)
        return total // n
