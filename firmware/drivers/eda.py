# EDA (skin conductance) front end, as in hardware/wiring.md: a constant-voltage source V_S = 0.5 V (the excitation
# GPIO through a divider, buffered by the MCP6001) drives R6 = 100 k into the E1 electrode; the skin (E1 to E2)
# goes to ground, and ADC1 reads the E1 node at 0 dB (range ~0-950 mV):
#     V = V_S * R_skin / (R6 + R_skin)      so      G = 1 / R_skin = (V_S - V) / (R6 * V)
# 0.5 uS reads 476 mV, 20 uS 167 mV: always clear of the ADC's dead zone, and at most 3.3 uA through the skin.
# The ADC is read with read_uv() (the esp32 port's calibration); `cal` = (offset_uv, gain_ppm) from config.json
# "eda_cal" corrects what is left of this chip's ADC error: V = (read_uv - offset_uv) * 10**6 / gain_ppm.
# read() returns the conductance as counts of the EDA kernel's default linear scale (25 uS per 4096 counts,
# 6.1 nS per count), so the kernel and its numpy twin are unchanged. The excitation is switched by a GPIO so that,
# without consent, no current flows through the skin.
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_V_SOURCE_UV = const(500000)
_R_SENSE_OHM = const(100000)
_KERNEL_FULL_NS = const(25000)  # protocol.kernels.eda.DEFAULT_CAL: 25000 nS over 4096 counts
_KERNEL_COUNTS = const(4096)


class EDA:
    def __init__(self, adc, enable=None, oversample=4, cal=None):
        self.adc = adc  # machine.ADC-like with read_uv()
        self.enable = enable  # machine.Pin-like with value(); None if always powered
        self.oversample = oversample
        self.cal = cal  # (offset_uv, gain_ppm) or None
        self.on = False

    def wake(self):
        if self.enable is not None:
            self.enable.value(1)
        self.on = True

    def shutdown(self):
        if self.enable is not None:
            self.enable.value(0)
        self.on = False

    def read_uv(self):
        total = 0
        for _ in range(self.oversample):
            total += self.adc.read_uv()
        uv = total // self.oversample
        cal = self.cal
        if cal is not None:
            uv = (uv - cal[0]) * 1000 // (cal[1] // 1000)  # gain_ppm / 1000 keeps the product < 2**30
        return uv

    def read(self):
        """Skin conductance as EDA-kernel counts (6.1 nS each, 0..4095): the front-end equation in integers,
        nS = (V_S - V) * (10**9 / R6) / V, every term < 2**30."""
        uv = self.read_uv()
        if uv >= _V_SOURCE_UV:
            return 0
        if uv < 1000:
            return _KERNEL_COUNTS - 1  # a short across the electrodes: top of the scale
        ns = (_V_SOURCE_UV - uv) * (1000000000 // _R_SENSE_OHM // 100) // (uv // 100)
        if ns >= _KERNEL_FULL_NS:
            return _KERNEL_COUNTS - 1
        return (ns * _KERNEL_COUNTS + (_KERNEL_FULL_NS >> 1)) // _KERNEL_FULL_NS
