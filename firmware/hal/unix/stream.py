# The virtual badge's stand-in sensors (the default path; hal.unix.chips is the register-level one): light objects
# with the drivers' interface, fed by hal.unix.board from the host's stream. Loaded at the first sensors() call,
# after the boot's import peak.
from app.sampler import Sensors, array


def optical_counts(v, code, rge=1):
    """The MAX3010x's 18-bit reading for an optical word at LED drive `code` (0.2 mA steps) and ADC range code
    `rge` (full scale 2048 << rge nA; the word is in counts at 4096 nA, the driver's setting)."""
    v = ((((v & 0xFFFFFF) * code) >> 4) + ((v >> 24) << 6)) * 2 >> rge
    return v if v < 0x3FFFF else 0x3FFFF


class StreamSensor:
    """A sensor as its driver presents it, measuring what the stream says: the EDA / NTC driver (read). Shut down
    (the state at boot and without consent) it measures nothing."""

    def __init__(self, uv=0):
        self.on = False
        self.uv = uv

    def wake(self):
        self.on = True

    def shutdown(self):
        self.on = False

    def read(self):
        return self.uv  # the value the host's run of the driver's conversion gave


class StreamAcc(StreamSensor):
    """The LIS3DH as its driver presents it (available, read_into, overruns): a 32-measurement FIFO in stream mode,
    filled at the chip's own rate; the first measurement after wake is lost to the turn-on time
    (hal.unix.sim_i2c.Lis3dhModel)."""

    def __init__(self):
        self.on = False
        self.fifo = None  # 32 x (x, y, z) as i16 pairs of bytes, made at the first wake
        self.n = 0
        self.head = 0
        self.uv = 0  # 2: turning on
        self.overruns = 0

    def wake(self):
        self.on = True
        self.n = 0
        self.uv = 2
        if self.fifo is None:
            self.fifo = bytearray(192)

    def shutdown(self):
        self.on = False
        self.n = 0

    def push(self, x, y, z):
        if not self.on:
            return
        if self.uv == 2:
            self.uv = 0
            return
        if self.n == 32:
            self.head = (self.head + 1) & 31
            self.n = 31
        j = ((self.head + self.n) & 31) * 6
        f = self.fifo
        f[j] = x & 0xFF
        f[j + 1] = (x >> 8) & 0xFF
        f[j + 2] = y & 0xFF
        f[j + 3] = (y >> 8) & 0xFF
        f[j + 4] = z & 0xFF
        f[j + 5] = (z >> 8) & 0xFF
        self.n += 1

    def available(self):
        if self.n == 32:
            self.overruns += 1
        return self.n

    def read_into(self, out):
        f = self.fifo
        j = self.head * 6
        for i in range(3):
            v = f[j] | (f[j + 1] << 8)
            out[i] = v - 0x10000 if v & 0x8000 else v
            j += 2
        self.head = (self.head + 1) & 31
        self.n -= 1


class StreamPpg(StreamSensor):
    """The MAX3010x as its driver presents it (read_burst, set_code, code, lost): a 32-sample FIFO that rolls
    over, filled at the chip's clock with counts set by the LED code; what it lost is counted as the chip's
    OVF_COUNTER counts it (saturating at 31 between two reads)."""

    def __init__(self):
        self.fifo = None  # made at the first wake (not at boot: the heap is tight then)
        self.n = 0
        self.head = 0
        self.code = 35
        self.lost = 0
        self.ovf = 0
        self.on = False

    def wake(self):
        self.on = True
        self.n = 0
        self.ovf = 0
        if self.fifo is None:
            self.fifo = array("i", [0] * 32)

    def shutdown(self):
        self.on = False
        self.n = 0

    def set_code(self, code):
        self.code = 0 if code < 0 else (255 if code > 255 else code)

    def push(self, v):
        if not self.on or not self.code:
            return
        if self.n == 32:
            if self.ovf < 31:
                self.ovf += 1
            self.n = 31
            self.head = (self.head + 1) & 31
        self.fifo[(self.head + self.n) & 31] = optical_counts(v, self.code)
        self.n += 1

    def read_burst(self, out):
        n = self.n
        f = self.fifo
        h = self.head
        for i in range(n):
            out[i] = f[(h + i) & 31]
        self.head = (h + n) & 31
        self.n = 0
        self.lost += self.ovf
        self.ovf = 0
        return n


class StreamSensors:
    """Feeds the stand-ins (same feeding interface as hal.unix.chips.ChipSensors). On this path the host launcher
    has already run the NTC and EDA drivers' conversions (the same firmware code, in CPython, with this badge's
    calibration) on its ADC model's read_uv() values: the stream carries EDA-kernel counts and 0.01 degC, and the
    drivers' modules stay off this heap."""

    def __init__(self):
        self.s = Sensors(StreamPpg(), StreamAcc(), StreamSensor(), StreamSensor(3300))

    def drivers(self):
        return self.s

    def ppg(self, v):
        self.s.ppg.push(v)

    def eda(self, v):
        self.s.eda.uv = v

    def acc(self, x, y, z):
        self.s.acc.push(x, y, z)

    def ntc(self, v):
        self.s.ntc.uv = v

    def transactions(self):
        return 0
