"""The badge's whole signal pipeline: push samples as they arrive, call step(out) once per second.

Pipeline(ppg_rate=64, eda_rate=16, acc_rate=16, temp_rate=1, eda_cal=None, ppg_invert=True, ppg_block=None)
  (ppg_block: PPG samples buffered before the kernel runs them; default one second)
  push_ppg(v)        raw optical counts, unsigned 18-bit (MAX30102); ppg_invert=True because those counts fall
                     when blood volume rises (pass False for recordings already in BVP polarity)
  push_eda(counts)   12-bit ADC counts, calibrated by eda.counts_to_centi_us(counts, eda_cal)
  push_acc(x, y, z)  milli-g per axis
  push_temp(centi_c) skin temperature in 0.01 degC
  step(out)          fills out[0..4] and out[10] (indices of protocol.records.TELEMETRY_FIELDS): hr_bpm,
                     rmssd_ms, scl (0.01 uS, up to 2500, so `out` must hold 16-bit values: a list or array('H'/'i'),
                     not a bytearray), scr_per_min, motion, quality. Other indices are left alone (firmware's).
  reset()            forget everything (consent revoked).

n/a values as in protocol/records.py: hr 0, rmssd 255, scl 0xFFFF, scr 255, motion 255. Numbers are reported even
when a quality bit is clear; the quality byte says whether to trust them:
  Q_SKIN (1)   skin contact: temperature in skin range (a sensor that has not reported anything yet does not
               count against contact); the badge also requires PPG contact (app/pipeline.py). Not from EDA.
  Q_HR (2)     HR valid: periodic beats with a consistent shape, skin contact, no motion artefact
  Q_EDA (4)    EDA valid: level >= 0.05 uS, not saturated, no jumps, skin contact
  Q_MOTION (8) motion artefact in this second (or the two before)
"""

from protocol.kernels.eda import EdaKernel
from protocol.kernels.motion import MotionKernel
from protocol.kernels.ppg import PpgKernel
from protocol.kernels.temp import TempKernel
from protocol.telemetry import (  # the record's n/a values, HR range and quality bits (one copy, re-exported)
    HR_MAX,
    HR_MIN,
    HR_NA,
    MOTION_NA,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
    RMSSD_NA,
    SCL_NA,
    SCR_NA,
)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# indices of protocol.records.TELEMETRY_FIELDS
_I_HR = const(0)
_I_RMSSD = const(1)
_I_SCL = const(2)
_I_SCR = const(3)
_I_MOTION = const(4)
_I_QUALITY = const(10)


def telemetry_values(ppg, eda, motion, temp, out):
    """Fill `out` from the kernels' current state (shared with the numpy twin, which holds the same kernels)."""
    hr = ppg.beats.hr_bpm()
    out[_I_HR] = hr if HR_MIN <= hr <= HR_MAX else HR_NA
    rm = ppg.beats.rmssd_ms()
    out[_I_RMSSD] = RMSSD_NA if rm < 0 else (rm if rm < 254 else 254)
    scl = eda.scl_centi()
    out[_I_SCL] = SCL_NA if scl < 0 else (scl if scl < 0xFFFE else 0xFFFE)
    scr = eda.scr_per_min()
    out[_I_SCR] = SCR_NA if scr < 0 else (scr if scr < 254 else 254)
    mi = motion.index
    out[_I_MOTION] = MOTION_NA if mi < 0 else mi
    q = 0
    # a sensor that has not reported yet neither confirms nor denies contact (tools analysing one signal)
    # skin contact from temperature (the badge adds PPG contact); never from EDA: dry skin or loose electrodes
    # read near 0 uS and must not take the heart rate down with them
    if temp.on_skin() != 0:
        q |= Q_SKIN
    art = motion.artefact()
    if art:
        q |= Q_MOTION
    if q & Q_SKIN:
        if ppg.beats.hr_valid() and not art and out[_I_HR] != HR_NA:
            q |= Q_HR
        if eda.valid():
            q |= Q_EDA
    out[_I_QUALITY] = q


class Pipeline:
    def __init__(self, ppg_rate=64, eda_rate=16, acc_rate=16, temp_rate=1, eda_cal=None, ppg_invert=True,
                 ppg_block=None):
        self.ppg = PpgKernel(ppg_rate, ppg_invert, ppg_block)
        self.eda = EdaKernel(eda_rate, eda_cal)
        self.motion = MotionKernel(acc_rate)
        self.temp = TempKernel(temp_rate)
        self.push_ppg = self.ppg.push
        self.push_eda = self.eda.push
        self.push_acc = self.motion.push
        self.push_temp = self.temp.push

    def step(self, out):
        self.ppg.tick()
        self.motion.tick()
        self.temp.tick()
        telemetry_values(self.ppg, self.eda, self.motion, self.temp, out)
        self.eda.tick()
        return out

    def reset(self):
        self.ppg.reset()
        self.eda.reset()
        self.motion.reset()
        self.temp.reset()

    def use_viper(self, on):
        self.ppg.use_viper(on)
