"""EDA kernel: 12-bit ADC counts -> skin conductance level (SCL) and skin conductance responses (SCRs).

Integer only, causal, no allocation per sample; the numpy twin (lifepalette.kernels.eda) matches it bit for bit.

Units and formats (every intermediate |v| < 2**30):

* Calibration ``cal = (full_scale_ns, counts_full_scale, offset_counts)``, default ``(25000, 4096, 0)``: a linear
  front end covering 0-25 uS over the 12-bit ADC (like PLUX/BITalino EDA sensors). Conductance in
  nanosiemens ``ns = ((counts - offset) * full_scale_ns + fsc // 2) // fsc`` (<= 25000, 6.1 nS per count);
  ``counts_to_centi_us`` gives 0.01 uS (the telemetry unit), ``centi_us_to_counts`` is its inverse for simulators.
* Decimation: mean of ``rate // 4`` samples -> a tick at ~4 Hz (nS); then a 4-tick (1 s) running mean ``s``.
* Tonic level (SCL): EMA on ticks in Q4, ``tonic += ((s << 4) - tonic) >> 4`` (time constant 4 s, <= 2**19).
* Phasic responses: a hysteresis (10 nS) trough/peak tracker on ``s``. A rise from a trough to a peak counts as an
  SCR when its amplitude is >= 30 nS (0.03 uS, the absolute computer-scoring threshold range 0.01-0.05 uS of
  Boucsein 2012) and the rise took at most 5 s (an SCR rises over 0.5-5 s; slower rises are tonic drift).
  ``scr_per_min`` counts responses over the last 60 s (scaled up while fewer than 60 s have been seen, from 10 s).
* Validity (Kleckner 2018): level >= 0.05 uS, below the ADC ceiling, and no jump faster than 10 uS/s in the last 5 s.
"""

try:
    from array import array
except ImportError:  # pragma: no cover
    from uarray import array

DEFAULT_CAL = (25000, 4096, 0)
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


ADC_MAX = const(4095)
_HYST_NS = const(10)
_SCR_MIN_NS = const(30)
_TONIC_K = const(4)  # tonic EMA: alpha = 2**-4 per 4 Hz tick, time constant 4 s
_RISE_MAX_S = const(5)
LEVEL_MIN_NS = const(50)
_JUMP_NS_PER_S = const(10000)


def counts_to_nano_s(counts, cal=None):
    fs_ns, fsc, off = cal or DEFAULT_CAL
    return ((counts - off) * fs_ns + (fsc >> 1)) // fsc


def counts_to_centi_us(counts, cal=None):
    """ADC counts -> skin conductance in 0.01 uS (rounded)."""
    fs_ns, fsc, off = cal or DEFAULT_CAL
    return ((counts - off) * fs_ns + 5 * fsc) // (10 * fsc)


def centi_us_to_counts(centi, cal=None):
    """Inverse of counts_to_centi_us (nearest count, clamped to the 12-bit ADC): for simulators and tools."""
    fs_ns, fsc, off = cal or DEFAULT_CAL
    c = off + (centi * 10 * fsc + (fs_ns >> 1)) // fs_ns
    if c < 0:
        return 0
    if c > ADC_MAX:
        return ADC_MAX
    return c


class EdaKernel:
    def __init__(self, rate=16, cal=None):
        self.rate = rate
        self.cal = cal or DEFAULT_CAL
        self.decim = rate // 4 if rate >= 8 else 1
        tick_hz = rate // self.decim  # ticks per second (4 at 16 Hz)
        self.tick_hz = tick_hz
        self.rise_max = _RISE_MAX_S * tick_hz
        self.jump = _JUMP_NS_PER_S // tick_hz
        self.smooth = array("i", [0] * 4)
        self.per_s = bytearray(60)
        self.reset()

    def reset(self):
        self.acc = 0
        self.cnt = 0
        self.sat = 0
        self.ticks = 0
        self.sm_sum = 0
        self.sm_i = 0
        for i in range(4):
            self.smooth[i] = 0
        self.s = -1
        self.tonic = -1
        self.rising = 0
        self.ext = 0       # trough (falling) or peak (rising)
        self.onset = 0
        self.t_peak = 0    # ticks from onset to peak
        self.t_on = 0      # ticks since onset / trough
        self.bad = 0
        self.scr_now = 0
        self.sec_i = 0
        self.seconds = 0
        self.scr_sum = 0
        for i in range(60):
            self.per_s[i] = 0

    def push(self, counts):
        if counts >= ADC_MAX:
            self.sat = 1
        fs_ns, fsc, off = self.cal
        self.acc += ((counts - off) * fs_ns + (fsc >> 1)) // fsc
        self.cnt += 1
        if self.cnt >= self.decim:
            self._tick(self.acc // self.cnt)
            self.acc = 0
            self.cnt = 0

    def _tick(self, x):
        if self.ticks == 0:
            for i in range(4):
                self.smooth[i] = x
            self.sm_sum = 4 * x
        i = self.sm_i
        self.sm_sum += x - self.smooth[i]
        self.smooth[i] = x
        self.sm_i = (i + 1) & 3
        s = self.sm_sum >> 2
        prev = self.s
        self.ticks += 1
        if prev >= 0:
            dj = s - prev
            if dj > self.jump or dj < -self.jump:
                self.bad = _RISE_MAX_S * self.tick_hz
        if self.bad > 0:
            self.bad -= 1
        self.s = s
        if self.tonic < 0:
            self.tonic = s << 4
            self.ext = s
        self.tonic += ((s << 4) - self.tonic) >> _TONIC_K
        self.t_on += 1
        if self.rising:
            if s > self.ext:
                self.ext = s
                self.t_peak = self.t_on
            elif s <= self.ext - _HYST_NS:
                if self.ext - self.onset >= _SCR_MIN_NS and self.t_peak <= self.rise_max:
                    self.scr_now += 1
                self.rising = 0
                self.ext = s
                self.t_on = 0
        else:
            if s <= self.ext:  # the latest lowest point is the onset (rise time counts from there)
                self.ext = s
                self.t_on = 0
            elif s >= self.ext + _HYST_NS:
                self.rising = 1
                self.onset = self.ext
                self.ext = s
                self.t_peak = self.t_on

    def tick(self):
        """Once per second, after reading the outputs: close this second's SCR count and saturation flag."""
        i = self.sec_i
        n = self.scr_now
        if n > 255:
            n = 255
        self.scr_sum += n - self.per_s[i]
        self.per_s[i] = n
        self.sec_i = (i + 1) % 60
        self.scr_now = 0
        self.sat = 0
        if self.seconds < 60:
            self.seconds += 1

    def scl_centi(self):
        """Tonic level in 0.01 uS, or -1 before the first tick."""
        if self.tonic < 0:
            return -1
        return (self.tonic + 80) // 160

    def scr_per_min(self):
        sec = self.seconds
        if sec < 10:
            return -1
        if sec >= 60:
            return self.scr_sum
        return (self.scr_sum * 60 + (sec >> 1)) // sec

    def valid(self):
        return (self.s >= LEVEL_MIN_NS and not self.sat and self.bad == 0 and self.tonic >= 0)
