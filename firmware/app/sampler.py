# Timer-driven sampling. The HAL's timer ticks at the configured tick rate (rates["ppg"]); the slow streams (EDA,
# acceleration, temperature) are sampled on the ticks a Bresenham schedule picks, so each gets exactly its rate per
# second with no drift and no allocation. The PPG chip runs on its own clock (50 Hz nominal): every tick empties
# its FIFO in a burst and the PPG kernel gets every sample, once, at the chip's rate. So does the LIS3DH (25 Hz on
# its own oscillator): its FIFO is emptied on the acceleration schedule and the motion kernel gets every
# measurement. Late ticks arrive in bursts: the first tick of a burst reads what the FIFO collected meanwhile, the
# others find it empty (nothing repeated, nothing averaged); samples the FIFO lost on overflow are counted by the
# driver (`lost`), late ticks by the HAL.
# Once a second (second() and correct(), in app.ppgloop):
# - the PPG LED loop keeps the DC inside 30-70 % of the 18-bit range by changing the LED current
#   at most 2x per step; the kernel's DC tracker is rescaled at the same sample (PpgKernel.rescale), so the change
#   is invisible to beat detection apart from the pulse amplitude scaling with it;
# - the chip's real rate is measured from sample counts against the badge's millisecond clock (time.ticks_ms on
#   the ESP32); correct() then fixes HR and RMSSD for the chip's crystal error after the features' step;
# - skin contact from the PPG: reflected DC per unit of LED current above a floor (off the skin the photodiode
#   sees ambient light only).
# Sensor power follows consent: power(False) shuts every sensor down (MAX3010x SHDN, LIS3DH power-down, EDA and
# NTC excitation off) and is called within the sample tick in which consent is revoked or paused.
from array import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_CLIP = const(0x3FFF0)


class Schedule:
    """Fires `rate` times per `base` ticks, evenly spread."""

    def __init__(self, base, rate):
        self.base = base
        self.rate = rate
        self.acc = 0

    def due(self):
        self.acc += self.rate
        if self.acc >= self.base:
            self.acc -= self.base
            return True
        return False


class Sensors:
    """The badge's drivers (any may be None if absent or failed at setup)."""

    def __init__(self, ppg=None, acc=None, eda=None, ntc=None):
        self.ppg = ppg
        self.acc = acc
        self.eda = eda
        self.ntc = ntc


class Sampler:
    def __init__(self, sensors, features, rates):
        self.sensors = sensors
        self.features = features
        base = rates["ppg"]
        self.base = base
        self.eda_s = Schedule(base, rates["eda"])
        self.acc_s = Schedule(base, rates["acc"])
        self.temp_s = Schedule(base, rates["temp"])
        self.xyz = [0, 0, 0]
        self.fifo = None  # PPG burst buffer, made at the first power-up (not at boot: the heap is tight then)
        self.powered = False
        self.counts = [0, 0, 0, 0]  # samples taken per stream: ppg, eda, acc, temp
        self.errors = 0
        # PPG this second: sum of samples / 64, count, clipped count; rate window start: badge ms, sample count
        self.dc = [0, 0, 0, -1, 0]
        self.rate_mhz = 0  # the chip's measured rate in mHz (0 until measured)
        self.contact = -1  # PPG skin contact: -1 unknown, 0 none, 1 yes

    def power(self, on):
        s = self.sensors
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            if dev is None:
                continue
            try:
                if on:
                    dev.wake()
                else:
                    dev.shutdown()
            except OSError:
                self.errors += 1
        self.powered = on
        if on and self.fifo is None:
            self.fifo = array("i", [0] * 32)  # 4 bytes a sample, not a list's 8-byte slots
        dc = self.dc
        dc[0] = dc[1] = dc[2] = 0
        dc[3] = -1
        self.contact = -1

    def tick(self, capturing):
        """One timer tick. The schedules advance on every tick so the streams stay in phase with the timer."""
        eda_due = self.eda_s.due()
        acc_due = self.acc_s.due()
        temp_due = self.temp_s.due()
        if not capturing:
            return
        s = self.sensors
        f = self.features
        try:
            if s.ppg is not None:
                buf = self.fifo
                n = s.ppg.read_burst(buf)
                total = 0
                dc = self.dc
                for i in range(n):
                    v = buf[i]
                    f.push_ppg(v)
                    total += v
                    if v >= _CLIP:
                        dc[2] += 1
                dc[0] += total >> 6  # /64 keeps a second of sums < 2**30
                dc[1] += n
                self.counts[0] += n
            if eda_due and s.eda is not None:
                f.push_eda(s.eda.read())
                self.counts[1] += 1
            if acc_due and s.acc is not None:  # the LIS3DH's FIFO, emptied: every measurement once
                xyz = self.xyz
                acc = s.acc
                for _ in range(acc.available()):
                    acc.read_into(xyz)
                    f.push_acc(xyz[0], xyz[1], xyz[2])
                    self.counts[2] += 1
            if temp_due and s.ntc is not None:
                f.push_temp(s.ntc.read())
                self.counts[3] += 1
        except OSError:
            self.errors += 1  # a glitch on the bus costs one sample; quality flags catch lasting faults

    def second(self, now=-1):
        """Once a second while capturing: LED loop, PPG contact, chip rate (now: badge ms, -1 if unknown).
        In app.ppgloop, loaded at the first call: after boot, whose peak leaves no room for it."""
        from app import ppgloop

        ppgloop.second(self, now)

    def correct(self, v):
        """After the features' step(v): HR and RMSSD for the chip's measured rate, contact (app.ppgloop)."""
        from app import ppgloop

        ppgloop.correct(self, v)
