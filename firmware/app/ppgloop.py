# The PPG control loop of app.sampler.Sampler, once a second while capturing (loaded at the first second, after
# boot: the boot's heap peak has no room for it):
# - second(): the LED loop keeps the DC inside [30 %, 70 %] of the 18-bit range, stepping the LED current to the
#   50 % target at most 2x per second; the kernel's DC tracker is rescaled at the same sample (PpgKernel.rescale),
#   so the step does not reach beat detection except as the pulse amplitude following the current. PPG skin
#   contact: reflected DC per LED step >= _CONTACT_MIN. The chip's real rate from its sample count against the
#   badge's millisecond clock over _RATE_WINDOW_MS windows (smoothed).
# - correct(): after the features' step, HR and RMSSD for the measured rate, and no skin contact without PPG
#   contact.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_DC_LO = const(78643)  # 30 % of 2**18
_DC_HI = const(183500)  # 70 %
_DC_TARGET = const(131072)  # 50 %
_CONTACT_MIN = const(40)  # DC counts per LED step (0.2 mA): below it no skin reflects the LED
_RATE_WINDOW_MS = const(16000)  # <= ~820 samples at 50 Hz, so counts * 10**6 stays < 2**30


def second(self, now=-1):
    """Once a second while capturing: LED loop, PPG contact, chip rate (now: badge ms, -1 if unknown)."""
    ppg = self.sensors.ppg
    d = self.dc
    if ppg is None or not d[1]:
        return
    dc = (d[0] // d[1]) << 6
    code = ppg.code
    self.contact = 1 if code and dc // code >= _CONTACT_MIN else 0
    if d[2] or not _DC_LO <= dc <= _DC_HI:  # clipped or outside the window: to the target, <= 2x a step
        new = max(1, code // 2, min(255, code * 2, code * _DC_TARGET // (0x3FFFF if d[2] else dc + 1)))
        if new != code:
            ppg.set_code(new)
            k = getattr(self.features, "ppg", None)
            if hasattr(k, "rescale"):
                k.rescale(new, code)
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

def correct(self, v):
    """After the features' step(v): HR and RMSSD for the chip's measured rate (the kernel counts time in
    samples at the nominal rate, so a crystal off by e % makes every interval e % off; HR is recomputed from
    the kernel's own interval sum, no double rounding), and no skin contact (nor HR, nor EDA validity) when
    the PPG sees none."""
    fm = self.rate_mhz
    k = self.features.ppg
    bt = k.beats
    if fm > 0 and v[0] and bt.ibi_sum > 0:
        den = k.rate * bt.ibi_sum  # interval sum in ms at the nominal rate; 60 * 8 * fm < 2**30
        v[0] = (60 * bt.ibi_n * fm + (den >> 1)) // den
    if fm > 0 and v[1] < 254:
        v[1] = (v[1] * k.rate * 1000 + (fm >> 1)) // fm
    if self.contact == 0:
        v[10] &= ~7  # Q_SKIN | Q_HR | Q_EDA
