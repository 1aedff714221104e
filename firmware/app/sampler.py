# Timer-driven sampling. The HAL's timer ticks at the configured tick rate (rates["ppg"]); the slow streams (EDA,
# acceleration, temperature) are sampled on the ticks a Bresenham schedule picks, so each gets exactly its rate per
# second with no drift and no allocation. The PPG chip runs on its own clock (100 Hz nominal): every tick empties
# its FIFO in a burst and the PPG kernel gets every sample, once, at the chip's rate. Late ticks arrive in bursts:
# the first tick of a burst reads what the FIFO collected meanwhile, the others find it empty (nothing repeated,
# nothing averaged); samples the FIFO lost on overflow are counted by the driver (`lost`), late ticks by the HAL.
# Once a second (second()):
# - the PPG LED loop keeps the DC inside [_DC_LO, _DC_HI] (30-70 % of the 18-bit range) by changing the LED current
#   at most 2x per step; the kernel's DC tracker is rescaled at the same sample (PpgKernel.rescale), so the change
#   is invisible to beat detection apart from the pulse amplitude scaling with it;
# - the chip's real rate is measured from sample counts against the badge's millisecond clock (time.ticks_ms on
#   the ESP32) and handed to the features, which correct HR and RMSSD for the chip's crystal error;
# - skin contact from the PPG: reflected DC per unit of LED current above _CONTACT_MIN (off the skin the photodiode
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


_DC_LO = const(78643)  # 30 % of 2**18
_DC_HI = const(183500)  # 70 %
_DC_TARGET = const(131072)  # 50 %
_CLIP = const(0x3FFF0)
_CONTACT_MIN = const(40)  # DC counts per LED step (0.2 mA): below it no skin reflects the LED
_RATE_WINDOW_MS = const(8000)  # rate measurement window: <= ~820 samples, so counts * 10**6 stays < 2**30
_PPG_HZ = const(100)


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
        # PPG this second: sum of samples / 64, count, clipped count; rate window start: badge ms, sample count
        self.dc = [0, 0, 0, -1, 0]
        self.rate_mhz = 0  # the chip's measured rate in mHz (0 until measured)

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
        dc = self.dc
        dc[0] = dc[1] = dc[2] = 0
        dc[3] = -1

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
        """Once a second while capturing: LED loop, PPG contact, chip rate (now: badge ms, -1 if unknown).
        Features with a `chip` list get [measured rate mHz, PPG contact 0/1]; their `ppg` kernel is rescaled."""
        ppg = self.sensors.ppg
        d = self.dc
        if ppg is None or not d[1]:
            return
        dc = (d[0] // d[1]) << 6
        code = ppg.code
        f = self.features
        chip = getattr(f, "chip", None)
        if chip is not None:
            chip[1] = 1 if code and dc // code >= _CONTACT_MIN else 0
        if d[2] or not _DC_LO <= dc <= _DC_HI:  # clipped or outside the window: halfway to the target, <= 2x
            new = max(1, code // 2, min(255, code * 2, code * _DC_TARGET // (0x3FFFF if d[2] else dc + 1)))
            if new != code:
                ppg.set_code(new)
                if chip is not None:
                    f.ppg.rescale(new, code)
        d[0] = d[1] = d[2] = 0
        n = self.counts[0]
        if d[3] < 0 or now < 0:
            d[3] = now
            d[4] = n
        elif now - d[3] >= _RATE_WINDOW_MS:
            r = (n - d[4]) * 1000000 // (now - d[3])
            self.rate_mhz = r if not self.rate_mhz else self.rate_mhz + (r - self.rate_mhz) // 4
            d[3] = now
            d[4] = n
            if chip is not None:
                chip[0] = self.rate_mhz
