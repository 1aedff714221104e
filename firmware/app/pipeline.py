# The badge's feature kernels: protocol.kernels.pipeline.Pipeline (push_ppg/eda/acc/temp as samples arrive,
# step(values) once per second into the telemetry value list, reset() when consent is revoked), with the PPG kernel
# at the chip's own rate and two corrections only the badge can make, both fed by the sampler once a second:
# - chip[0]: the PPG chip's measured sample rate (mHz). The kernel counts time in samples at the nominal 100 Hz; a
#   chip crystal off by e% makes every interval e% off, so HR is scaled by measured/nominal and RMSSD by the
#   inverse, from the kernel's own interval sum (no double rounding of HR);
# - chip[1]: skin contact seen by the PPG (reflected DC per unit LED current). Skin contact (Q_SKIN) needs the
#   temperature in skin range (kernel) and, once the PPG has reported, PPG contact; HR validity needs skin contact
#   and never EDA.
from protocol.kernels.pipeline import Pipeline

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_PPG_HZ = const(100)  # drivers.max30102.CHIP_HZ
_I_HR = const(0)
_I_RMSSD = const(1)
_I_QUALITY = const(10)
_Q_SKIN = const(1)
_Q_HR = const(2)
_Q_EDA = const(4)


class Features(Pipeline):
    def __init__(self, rates, eda_cal=None):
        Pipeline.__init__(self, _PPG_HZ, rates["eda"], rates["acc"], rates["temp"], eda_cal, True, 25)
        self.chip = [0, -1]  # measured PPG rate (mHz, 0 = not yet), PPG contact (-1 unknown, 0, 1)

    def step(self, out):
        Pipeline.step(self, out)
        fm = self.chip[0]
        bt = self.ppg.beats
        fs = self.ppg.rate
        if fm > 0 and out[_I_HR] and bt.ibi_sum > 0:
            den = fs * bt.ibi_sum  # sum of intervals in ms at the nominal rate; 60 * 8 * fm < 2**30
            out[_I_HR] = (60 * bt.ibi_n * fm + (den >> 1)) // den
        if fm > 0 and out[_I_RMSSD] < 254:
            out[_I_RMSSD] = (out[_I_RMSSD] * fs * 1000 + (fm >> 1)) // fm
        if self.chip[1] == 0:
            out[_I_QUALITY] &= ~(_Q_SKIN | _Q_HR | _Q_EDA)
        return out

    def reset(self):
        Pipeline.reset(self)
        self.chip[1] = -1
