"""PPG kernel: raw optical counts -> beats -> heart rate (bpm), RMSSD (ms) and a pulse-quality flag.

Streaming, causal, integer only, no allocation per sample. Runs unchanged in MicroPython and CPython; the numpy
twin (lifepalette.kernels.ppg) reproduces it bit for bit.

Signal path and number formats (every intermediate |v| < 2**30; the range proof in tests checks it):

1. DC tracker, Q4: ``dc_q += ((x << 4) - dc_q) >> K_DC`` with 2**K_DC ~ 1.5 s of samples (x <= 2**18 raw counts,
   so dc_q <= 2**22). ``d = (x << 4) - dc_q`` is the pulsatile part in Q4 (sign flipped when ``invert``: a MAX30102
   reading falls when blood volume rises).
2. Auto-range: ``u = d >> shift`` keeps |u| < 2**12 (shift 0..12). When |u| would reach 2**12 the shift grows by one
   and the filter states are halved (a linear filter scaled by 1/2 stays continuous); when the 2-s peak of |u| stays
   below 2**9 the shift shrinks and the states double. So the filters always see 9..12 significant bits with up to 4
   extra fractional bits from the Q4 DC stage (extra state bits make the 0.5 Hz section clean).
3. Band-pass 0.5-8 Hz, Butterworth order 2 (scipy ``butter(2, [0.5, 8], 'band', output='sos')``) as two direct
   form I biquads with Q14 coefficients and first-order error feedback (the remainder of the >> 14 is added back
   on the next sample). Section 2 is the high-pass [1, -2, 1] section. Accumulators < 2**29.
4. Elgendi detector (Elgendi 2013, as in NeuroKit2's ``ppg_findpeaks``): ``sq = max(y, 0)**2 >> 8`` (<= 2**16),
   running sums over W1 = round(0.111 fs) and W2 = round(0.667 fs) samples. NeuroKit2 centres both moving averages;
   here the W1 window is delayed by D = (W2 - 1) // 2 samples so both are centred on the same sample c = n - D.
   Block of interest where ``S1 * W2 > T + (T >> 6)``, ``T = S2 * W1`` (mean_peak > mean_beat * (1 + 1/64); the
   record-wide 0.02 * mean(sq) offset of NeuroKit2 is not streamable, the relative 1/64 stands in for it).
   Blocks shorter than W1 are dropped; the peak is the first maximum of y in the block; peaks closer than 0.3 s to
   the previous one are ignored (refractory), and so are peaks smaller than half the running beat amplitude that
   come before 120 % of the running interval (diastolic waves; Elgendi's detector alone picks some of them up; a
   real drop in amplitude still gets through once a beat is late, and the running amplitude then adapts).
   Peaks in the first WARM_S seconds are ignored while the DC tracker and the 0.5 Hz section settle.
5. Beat times: sub-sample parabolic refinement in Q8 samples; inter-beat interval
   ``ibi_ms = (ibi_q8 * 1000 + fs * 128) // (fs * 256)``. Intervals outside 300..2000 ms or more than 30 % away from
   the running reference are rejected (four rejections in a row re-learn the reference).
6. HR = round(60000 * k / sum of the last k <= 8 accepted intervals). RMSSD = round(sqrt(mean(dIBI**2))) over the
   last <= 32 successive differences of adjacent accepted intervals (needs 4), the NeuroKit2/Task Force definition.
7. Quality: each beat's shape (+-0.125 s around the peak, mean removed, >> 2) is correlated with a running template
   (Orphanidou 2015); correlation in Q8 from ``Sxy // ((isqrt(Sxx) * isqrt(Syy)) >> 8)``. HR is flagged valid when
   GOOD_OF_8 of the last 8 beats were good (accepted interval, amplitude within half to twice the running beat
   amplitude, correlation >= CORR_GOOD), and a beat came in the last 2 s.

Time stamps are sample counters modulo 2**20 (differences masked), so nothing grows with uptime.
"""

try:
    from array import array
except ImportError:  # pragma: no cover
    from uarray import array

from protocol.kernels.fixed import isqrt, log2_floor, sqrt_mean_round

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


M20 = const((1 << 20) - 1)
U_LIMIT = const(1 << 12)
U_LOW = const(1 << 9)
SHIFT_MAX = const(12)
_WARM_S = const(2)          # seconds after start/reset before peaks count
_CORR_GOOD = const(220)     # Q8 template correlation of a good beat (0.86, Orphanidou 2015)
_GOOD_OF_8 = const(6)       # good beats among the last 8 for a valid HR

# Q14 band-pass 0.5-8 Hz, order 2, per sampling rate: (b0, b1, b2, a1, a2) of section 1, (a1, a2) of section 2
# (section 2 has b = [1, -2, 1]). Generated with scipy.signal.butter(2, [0.5, 8], 'band', fs=fs, output='sos')
# rounded to Q14. A table (not floats at start-up) because ESP32 floats are single precision and would round
# some coefficients differently from the host.
RATES = (25, 32, 50, 64, 100, 128)
# One flat tuple, seven coefficients per rate in RATES order (one object on the badge's heap, not a dict of tuples).
_BANDPASS_Q14 = (
    6412, 12823, 6412, 7967, 3827, -29862, 13734,  # 25 Hz
    4337, 8674, 4337, -904, 3269, -30504, 14282,  # 32 Hz
    2148, 4296, 2148, -12165, 4868, -31326, 15011,  # 50 Hz
    1439, 2878, 1439, -16595, 6246, -31644, 15302,  # 64 Hz
    676, 1352, 676, -22378, 8797, -32050, 15684,  # 100 Hz
    438, 875, 438, -24652, 10075, -32208, 15835,  # 128 Hz
)

# State layout (array 'i'), shared by the pure (_ppg_pure) and the viper (_ppg_viper) sample loops.
S_N = const(0)          # sample counter mod 2**20 (next sample's index)
_S_DC = const(1)         # DC tracker, Q4
_S_SHIFT = const(2)      # auto-range shift
_S_PK = const(3)         # peak |u| in the current auto-range period
_S_PCNT = const(4)       # samples left in the auto-range period
_S_B1 = const(5)         # section 1: x1, x2, y1, y2, err  (5..9)
_S_B2 = const(10)        # section 2: x1, x2, y1, y2, err  (10..14)
_S_S1 = const(15)        # running sum over W1
_S_S2 = const(16)        # running sum over W2
_S_ACT = const(17)       # inside a block of interest
_S_BLEN = const(18)      # block length so far
_S_PKV = const(19)       # block maximum
_S_PKN = const(20)       # its sample index (mod 2**20)
_S_INIT = const(21)      # DC tracker initialised
_S_EV = const(22)        # event: peak index of a finished block
_S_LEN = const(24)

# Coefficient/config layout (array 'i').
_C_B0 = const(0)
_C_B1 = const(1)
_C_B2 = const(2)
_C_A1 = const(3)
_C_A2 = const(4)
_C_A21 = const(5)
_C_A22 = const(6)
C_W1 = const(7)
C_W2 = const(8)
C_D = const(9)
_C_MASK = const(10)
C_KDC = const(11)
_C_INV = const(12)
C_MAXB = const(13)
C_PERIOD = const(14)
_C_SX = const(15)  # viper only: sign-extension shift for ptr32 loads (32 on a 64-bit port, 0 on the MCU)
_C_LEN = const(16)


def ms_to_samples(ms, rate):
    return (ms * rate + 500) // 1000


def ring_size(rate):
    w2 = ms_to_samples(667, rate)
    need = (w2 - 1) // 2 + ms_to_samples(125, rate) + 3 * rate // 2 + 4
    size = 16
    while size < need:
        size <<= 1
    return size


def make_config(rate, invert):
    if rate not in RATES:
        raise ValueError("ppg rate must be one of %r" % (RATES,))
    co = array("i", [0] * _C_LEN)
    k = RATES.index(rate) * 7
    for i in range(7):
        co[i] = _BANDPASS_Q14[k + i]
    w1 = ms_to_samples(111, rate)
    w2 = ms_to_samples(667, rate)
    size = ring_size(rate)
    co[C_W1] = w1
    co[C_W2] = w2
    co[C_D] = (w2 - 1) // 2
    co[_C_MASK] = size - 1
    co[C_KDC] = log2_floor(3 * rate // 2)
    co[_C_INV] = 1 if invert else 0
    co[C_MAXB] = size - co[C_D] - ms_to_samples(125, rate) - 2
    co[C_PERIOD] = 2 * rate
    return co


def refine_q8(ym, y0, yp):
    """Parabolic sub-sample offset of a maximum at y0 between neighbours ym, yp, in Q8 samples (-128..128)."""
    den = ym - 2 * y0 + yp
    if den >= 0:
        return 0
    f = ((ym - yp) * 128) // den
    if f > 128:
        return 128
    if f < -128:
        return -128
    return f


class BeatTracker:
    """Per-beat logic shared by the streaming kernel and the numpy twin (rare events, so plain Python).

    peak(p, frac_q8, seg) is called for every finished block with its peak index p (mod 2**20) and the filtered
    samples around it in `seg`; tick(n) once per second with the current sample counter."""

    IBI_RING = 8
    DIFF_RING = 32

    def __init__(self, rate):
        self.rate = rate
        self.half = ms_to_samples(125, rate)
        self.seg_len = 2 * self.half + 1
        self.refractory = ms_to_samples(300, rate)
        self.max_gap = 3 * rate
        self.seg = array("i", [0] * self.seg_len)
        self.tmpl = array("i", [0] * self.seg_len)
        self.ibis = array("i", [0] * self.IBI_RING)
        self.diffs = array("i", [0] * self.DIFF_RING)
        self.reset()

    def reset(self):
        self.last_p = -1
        self.last_frac = 0
        self.ibi_ref = 0
        self.rejects = 0
        self.prev_ibi = 0
        self.prev_ok = 0
        self.ibi_n = 0
        self.ibi_i = 0
        self.ibi_sum = 0
        self.diff_n = 0
        self.diff_i = 0
        self.diff_sum = 0
        self.tmpl_ok = 0
        self.good = 0
        self.since = 99
        self.warm = 0
        self.amp_ref = 0
        self.beats = 0
        self.last_corr = 0
        for i in range(self.seg_len):
            self.tmpl[i] = 0
        for i in range(self.IBI_RING):
            self.ibis[i] = 0
        for i in range(self.DIFF_RING):
            self.diffs[i] = 0

    def tick(self, n):
        """Once per second: forget beats older than 3 s (counters wrap, and stale intervals must not count)."""
        if self.last_p >= 0 and ((n - self.last_p) & M20) > self.max_gap:
            self.last_p = -1
            self.prev_ok = 0
        self.since += 1
        if self.warm < _WARM_S:
            self.warm += 1
        if self.since > 3:
            self.since = 99
            self.ibi_n = 0
            self.ibi_sum = 0
            self.diff_n = 0
            self.diff_sum = 0
            self.good = 0
            self.ibi_ref = 0

    def peak(self, p, frac, shift):
        """A candidate peak (seg already filled; `shift` is the auto-range shift at detection, so the peak's
        amplitude in input units is seg[half] << shift). Returns 1 if it counts as a beat."""
        if self.warm < _WARM_S:  # the DC tracker and the 0.5 Hz section are still settling
            return 0
        if self.last_p >= 0:
            dn = (p - self.last_p) & M20
            if dn < self.refractory:
                return 0
        else:
            dn = -1
        amp = self.seg[self.half]
        if amp < 0:
            amp = 0
        amp = amp << shift  # Q4 input units (<= 2**25): comparable across auto-range changes
        ref = self.amp_ref
        steady = ref > 0 and (ref >> 1) <= amp <= (ref << 1)
        if ref > 0 and dn > 0 and amp < (ref >> 1) and dn * 1000 < self.ibi_ref * self.rate * 6 // 5:
            return 0  # small and not late: a diastolic wave or a notch, not a beat
        if amp > 0:
            if ref <= 0:
                self.amp_ref = amp
            else:  # an artefact spike moves the reference by at most a quarter
                self.amp_ref = ref + (((amp if amp < (ref << 1) else (ref << 1)) - ref) >> 2)
        corr = self._shape()
        self.last_corr = corr
        ok = 0
        if dn > 0:
            ok = self._interval(((dn << 8) + frac - self.last_frac) * 1000)
        else:
            self.prev_ok = 0
        self.good = ((self.good << 1) | (1 if ok and steady and corr >= _CORR_GOOD else 0)) & 0xFF
        self.last_p = p
        self.last_frac = frac
        self.since = 0
        self.beats += 1
        return 1

    def _interval(self, ibi_q8k):
        r = self.rate
        ibi = (ibi_q8k + (r << 7)) // (r << 8)
        ref = self.ibi_ref
        if ibi < 300 or ibi > 2000:
            self.prev_ok = 0
            return 0
        if ref:
            dev = ibi - ref
            if dev < 0:
                dev = -dev
            if dev * 10 > ref * 3:
                self.prev_ok = 0
                self.rejects += 1
                if self.rejects >= 4:
                    self.ibi_ref = ibi
                    self.rejects = 0
                return 0
            self.ibi_ref = ref + ((ibi - ref) >> 2)
        else:
            self.ibi_ref = ibi
        self.rejects = 0
        i = self.ibi_i
        self.ibi_sum += ibi - self.ibis[i]
        self.ibis[i] = ibi
        self.ibi_i = (i + 1) % self.IBI_RING
        if self.ibi_n < self.IBI_RING:
            self.ibi_n += 1
        if self.prev_ok:
            dd = ibi - self.prev_ibi
            dd = dd * dd
            j = self.diff_i
            self.diff_sum += dd - self.diffs[j]
            self.diffs[j] = dd
            self.diff_i = (j + 1) % self.DIFF_RING
            if self.diff_n < self.DIFF_RING:
                self.diff_n += 1
        self.prev_ibi = ibi
        self.prev_ok = 1
        return 1

    def _shape(self):
        """Correlation (Q8) of this beat's shape with the running template, then update the template."""
        seg = self.seg
        tm = self.tmpl
        k = self.seg_len
        tot = 0
        for i in range(k):
            tot += seg[i]
        mean = tot // k
        if not self.tmpl_ok:
            for i in range(k):
                tm[i] = (seg[i] - mean) >> 2
            self.tmpl_ok = 1
            return 256
        sxy = 0
        sxx = 0
        syy = 0
        for i in range(k):
            a = (seg[i] - mean) >> 2
            b = tm[i]
            sxy += a * b
            sxx += a * a
            syy += b * b
            tm[i] = b + ((a - b) >> 2)
        den = (isqrt(sxx) * isqrt(syy)) >> 8
        if den <= 0:
            return 0
        r = sxy // den
        if r > 256:
            r = 256
        elif r < -256:
            r = -256
        return r

    def hr_bpm(self):
        """Heart rate (bpm, rounded) from the last accepted intervals, or 0 when fewer than 2."""
        k = self.ibi_n
        if k < 2 or self.ibi_sum <= 0:
            return 0
        return (60000 * k + (self.ibi_sum >> 1)) // self.ibi_sum

    def rmssd_ms(self):
        """RMSSD (ms, rounded) over the last successive differences, or -1 when fewer than 4."""
        if self.diff_n < 4:
            return -1
        return sqrt_mean_round(self.diff_sum, self.diff_n)

    def hr_valid(self):
        g = self.good
        cnt = 0
        while g:
            cnt += g & 1
            g >>= 1
        return cnt >= _GOOD_OF_8 and self.since <= 2 and self.ibi_n >= 4


class PpgKernel:
    """Streaming PPG: push(v) per sample (buffers), process() runs the buffered block, tick() once a second."""

    def __init__(self, rate=64, invert=True, block=None):
        self.rate = rate
        self.co = make_config(rate, invert)
        size = self.co[_C_MASK] + 1
        self.ring = array("i", [0] * size)
        self.sqr = array("i", [0] * size)
        self.st = array("i", [0] * _S_LEN)
        self.st[_S_EV] = -1
        self.block = block or rate
        self.buf = array("i", [0] * self.block)
        self.fill = 0
        self.beats = BeatTracker(rate)
        self.on_beat = None  # optional callback(p_mod_2**20, frac_q8, n_now) for tools (analyze --beats)
        self._block_fn = None
        try:
            self.use_viper(True)  # MicroPython with a native emitter: the sample loop in viper
        except Exception:  # noqa: BLE001 -- no native emitter (ImportError), or the native code fails to load
            # (MemoryError; ValueError for a .mpy of another arch): the pure-Python loop gives identical results
            self.use_viper(False)

    def use_viper(self, on):
        """Pick the sample-loop implementation (the bench compares both; results are identical). Each loop's
        module is loaded only when picked: a badge that runs the viper loop never holds the pure one's bytecode."""
        if on:
            from protocol.kernels import _ppg_viper

            self.co[_C_SX] = _ppg_viper.SX
            self._block_fn = _ppg_viper.ppg_block
        else:
            from protocol.kernels._ppg_pure import ppg_block

            self._block_fn = ppg_block

    def reset(self):
        for i in range(_S_LEN):
            self.st[i] = 0
        self.st[_S_EV] = -1
        for i in range(len(self.ring)):
            self.ring[i] = 0
            self.sqr[i] = 0
        self.fill = 0
        self.beats.reset()

    def push(self, v):
        if v < 0:
            v = 0
        elif v > 0x3FFFF:
            v = 0x3FFFF
        self.buf[self.fill] = v
        self.fill += 1
        if self.fill >= self.block:
            self.process()

    def process(self):
        i = 0
        stop = self.fill
        st = self.st
        while i < stop:
            i = self._block_fn(self.buf, i, stop, self.ring, self.sqr, st, self.co)
            if st[_S_EV] >= 0:
                self._event()
        self.fill = 0

    def _event(self):
        st = self.st
        p = st[_S_EV]
        st[_S_EV] = -1
        m = self.co[_C_MASK]
        ring = self.ring
        frac = refine_q8(ring[(p - 1) & m], ring[p & m], ring[(p + 1) & m])
        bt = self.beats
        seg = bt.seg
        h = bt.half
        for k in range(bt.seg_len):
            seg[k] = ring[(p - h + k) & m]
        if bt.peak(p, frac, st[_S_SHIFT]) and self.on_beat is not None:
            self.on_beat(p, frac, st[S_N])

    def tick(self):
        self.process()
        self.beats.tick(self.st[S_N])

    def rescale(self, x, y):
        """The source's gain changed by x/y (a PPG LED current step) from the next sample on: the buffered
        samples are run first, then the DC tracker moves with the gain, so the step does not reach the filters
        as an edge (only the pulse amplitude follows the gain). Not on the hot path; x, y <= 255."""
        self.process()
        st = self.st
        st[_S_DC] = ((st[_S_DC] >> 4) * x // y) << 4
