# EDA (skin conductance) front end: a constant-voltage divider read on an ADC1 pin (ADC2 is unusable while the radio
# is on). The excitation is switched by a GPIO so that, without consent, no current flows through the skin.
# read() returns 12-bit counts (the unit the EDA kernel takes); centi_us() converts with the kernel's calibration.
class EDA:
    def __init__(self, adc, enable=None, oversample=4, cal=None):
        self.adc = adc  # anything with read_u16() -> 0..65535 (machine.ADC)
        self.enable = enable  # machine.Pin-like with value(); None if always powered
        self.oversample = oversample
        self.cal = cal
        self.on = False

    def wake(self):
        if self.enable is not None:
            self.enable.value(1)
        self.on = True

    def shutdown(self):
        if self.enable is not None:
            self.enable.value(0)
        self.on = False

    def read(self):
        """12-bit counts, averaged over `oversample` conversions."""
        total = 0
        for _ in range(self.oversample):
            total += self.adc.read_u16() >> 4
        return total // self.oversample

    def centi_us(self, counts):
        """Skin conductance in 0.01 uS via protocol.kernels.eda's calibration (None if the kernel is missing)."""
        try:
            from protocol.kernels import eda
        except ImportError:
            return None
        return eda.counts_to_centi_us(counts, self.cal)
