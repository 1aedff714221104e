# Timer-driven sampling. The HAL's timer ticks at the configured tick rate (rates["ppg"]); the slow streams (EDA,
# acceleration, temperature) are sampled on the ticks a Bresenham schedule picks, so each gets exactly its rate per
# second with no drift and no allocation. The PPG chip runs on its own clock (100 Hz nominal): every tick empties
# its FIFO in a burst and the PPG kernel gets every sample, once, at the chip's rate. Late ticks arrive in bursts:
# the first tick of a burst reads what the FIFO collected meanwhile, the others find it empty (nothing repeated,
# nothing averaged); samples the FIFO lost on overflow are counted by the driver (`lost`), late ticks by the HAL.
# Once a second (second()):
# - the PPG LED loop keeps the DC inside [DC_LO, DC_HI] (30-70 % of the 18-bit range) by changing the LED current
#   at most 2x per step; the kernel's DC tracker is rescaled at the same sample (PpgKernel.rescale), so the change
#   is invisible to beat detection apart from the pulse amplitude scaling with it;
# - the chip's real rate is measured from sample counts against the badge's millisecond clock (time.ticks_ms on
#   the ESP32) and handed to the features, which correct HR and RMSSD for the chip's crystal error;
# - skin contact from the PPG: reflected DC per unit of LED current above CONTACT_MIN (off the skin the photodiode
#   sees ambient light only).
# Sensor power follows consent: power(False) shuts every sensor down (MAX3010x SHDN, LIS3DH power-down, EDA and
# NTC excitation off) and is called within the sample tick in which consent is revoked or paused.
try:
    from array import array
except ImportError:  # pragma: no cover
    from uarray import array

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


DC_LO = const(78643)  # 30 % of 2**18
DC_HI = const(183500)  # 70 %
DC_TARGET = const(131072)  # 50 %
CLIP = const(0x3FFF0)
CONTACT_MIN = const(40)  # DC counts per LED step (0.2 mA): below it no skin reflects the LED
RATE_WINDOW_MS = const(8000)  # rate measurement window: <= ~820 samples, so counts * 10**6 stays < 2**30
PPG_HZ = const(100)


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
        self.fifo = array("i", [0] * 32)
        self.powered = False
        self.counts = [0, 0, 0, 0]  # samples taken per stream: ppg, eda, acc, temp
        self.errors = 0
        self.dc_sum = 0
        self.dc_n = 0
        self.clipped = 0
        self.contact = -1  # PPG skin contact: -1 unknown, 0 no, 1 yes
        self.rate_mhz = 0  # the chip's measured rate in mHz (0 until measured)
        self.t0 = -1
        self.n0 = 0

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
        self.dc_sum = self.dc_n = self.clipped = 0
        self.contact = -1
        self.t0 = -1

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
                for i in range(n):
                    v = buf[i]
                    f.push_ppg(v)
                    total += v
                    if v >= CLIP:
                        self.clipped += 1
                self.dc_sum += total >> 6  # /64 keeps a second of sums < 2**30
                self.dc_n += n
                self.counts[0] += n
            if eda_due and s.eda is not None:
                f.push_eda(s.eda.read())
                self.counts[1] += 1
            if acc_due and s.acc is not None:
                xyz = self.xyz
                s.acc.read_into(xyz)
                f.push_acc(xyz[0], xyz[1], xyz[2])
                self.counts[2] += 1
            if temp_due and s.ntc is not None:
                f.push_temp(s.ntc.read())
                self.counts[3] += 1
        except OSError:
            self.errors += 1  # a glitch on the bus costs one sample; quality flags catch lasting faults

    def second(self, now=-1):
        """Once a second while capturing: LED loop, PPG contact, chip rate (now: badge ms, -1 if unknown)."""
        ppg = self.sensors.ppg
        if ppg is None or not self.dc_n:
            return
        dc = (self.dc_sum // self.dc_n) << 6
        code = ppg.code
        self.contact = 1 if code and dc // code >= CONTACT_MIN else 0
        f = self.features
        if hasattr(f, "ppg_contact"):
            f.ppg_contact = self.contact
        new = code
        if self.clipped or dc > DC_HI:
            new = code * DC_TARGET // (dc if dc > DC_HI else 0x3FFFF)
            if new < code // 2:
                new = code // 2
        elif dc < DC_LO:
            new = code * DC_TARGET // (dc if dc > 0 else 1)
            if new > code * 2:
                new = code * 2
        new = 1 if new < 1 else (255 if new > 255 else new)
        if new != code:
            ppg.set_code(new)
            if hasattr(f, "rescale_ppg"):
                f.rescale_ppg(new, code)
        self.dc_sum = self.dc_n = self.clipped = 0
        if now < 0:
            return
        n = self.counts[0]
        if self.t0 < 0:
            self.t0 = now
            self.n0 = n
            return
        dt = now - self.t0
        if dt >= RATE_WINDOW_MS:
            est = (n - self.n0) * 1000000 // dt
            r = self.rate_mhz
            self.rate_mhz = est if r == 0 else r + (est - r) // 4
            self.t0 = now
            self.n0 = n
            if hasattr(f, "ppg_mhz"):
                f.ppg_mhz = self.rate_mhz
