# NTC skin thermistor (10 k, B = 3950) under a 10 k fixed resistor to the 3.3 V excitation (a GPIO), read on an
# ADC1 pin at 11 dB. The ADC is read with read_uv() (the esp32 port's calibrated microvolts: raw counts have a
# ~142 mV dead zone and a per-chip gain), and the temperature follows from the ratio of the pin voltage to the
# excitation, ratio = R_ntc / (R_fixed + R_ntc), expressed in 1/4095ths ("ratio counts") so the table below
# applies. Conversion by integer interpolation in a table computed from the Beta equation (tests check it against
# the equation in CPython): no floats, no log() on the badge. `offset_centi` is the per-badge calibration
# (config.json "ntc_offset_c", from a reference thermometer at bring-up; `cal`) added to every reading.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


T0_CENTI = 0
STEP_CENTI = 500
# 12-bit ADC counts at 0, 5, 10, ... 60 degC (falling with temperature)
TABLE = (3156, 2955, 2738, 2510, 2278, 2048, 1825, 1614, 1419, 1241, 1081, 940, 815)


def counts_to_centi_c(counts):
    """Skin temperature in 0.01 degC, clamped to the table's 0-60 degC."""
    t = TABLE
    if counts >= t[0]:
        return T0_CENTI
    last = len(t) - 1
    if counts <= t[last]:
        return T0_CENTI + last * STEP_CENTI
    i = 0
    while counts < t[i + 1]:
        i += 1
    # t[i] >= counts > t[i + 1]
    return T0_CENTI + i * STEP_CENTI + (t[i] - counts) * STEP_CENTI // (t[i] - t[i + 1])


def centi_c_to_counts(centi):
    """Inverse (for simulators): the counts whose conversion is closest to `centi`."""
    t = TABLE
    last = len(t) - 1
    if centi <= T0_CENTI:
        return t[0]
    if centi >= T0_CENTI + last * STEP_CENTI:
        return t[last]
    i = (centi - T0_CENTI) // STEP_CENTI
    frac = centi - T0_CENTI - i * STEP_CENTI
    counts = t[i] - ((t[i] - t[i + 1]) * frac + STEP_CENTI // 2) // STEP_CENTI
    # nudge to the closest round trip (integer division above can land one count off)
    best = counts
    for c in (counts - 1, counts + 1):
        if abs(counts_to_centi_c(c) - centi) < abs(counts_to_centi_c(best) - centi):
            best = c
    return best


_V_EXC_UV = const(3300000)  # excitation: the ntc_en GPIO driven high from the 3.3 V rail


def uv_to_ratio_counts(uv):
    """Pin voltage (uV) -> R_ntc / (R_fixed + R_ntc) in 1/4095ths (the table's unit); < 2**30 throughout."""
    return ((uv // 100) * 4095 + (_V_EXC_UV // 200)) // (_V_EXC_UV // 100)


class NTC:
    def __init__(self, adc, enable=None, oversample=4, cal=0):
        self.adc = adc  # machine.ADC-like with read_uv()
        self.enable = enable
        self.oversample = oversample
        self.cal = cal  # offset in 0.01 degC

    def wake(self):
        if self.enable is not None:
            self.enable.value(1)

    def shutdown(self):
        if self.enable is not None:
            self.enable.value(0)

    def read_uv(self):
        total = 0
        for _ in range(self.oversample):
            total += self.adc.read_uv()
        return total // self.oversample

    def read(self):
        """Skin temperature in 0.01 degC."""
        return counts_to_centi_c(uv_to_ratio_counts(self.read_uv())) + self.cal
