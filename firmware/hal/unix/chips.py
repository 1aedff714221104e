# The virtual badge's chip path (--chips 1): the real drivers on a simulated I2C bus with register-level chip
# models (sim_i2c). Loaded only on request: the badge heap has no room for the models and the stream stand-ins both.
from app.sampler import Sensors
from drivers.eda import EDA
from drivers.lis3dh import LIS3DH
from drivers.max30102 import MAX30102
from drivers.ntc import NTC

from hal.unix.sim_i2c import Lis3dhModel, Max3010xModel, SimADC, SimI2C, SimPin
from hal.unix.stream import optical_counts


class ChipSensors:
    """Same feeding interface as hal.unix.board.StreamSensors: ppg(word), eda(uv), acc(x, y, z), ntc(uv)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.bus = SimI2C()
        self.max_model = self.bus.attach(0x57, Max3010xModel())
        self.acc_model = self.bus.attach(0x18, Lis3dhModel())
        self.eda_adc = SimADC(300000)
        self.ntc_adc = SimADC(1500000)
        self.eda_pin = SimPin()
        self.ntc_pin = SimPin()

    def drivers(self):
        ppg = MAX30102(self.bus)
        acc = LIS3DH(self.bus)
        ppg.setup()
        acc.setup()
        cfg = self.cfg
        return Sensors(ppg, acc, EDA(self.eda_adc, self.eda_pin, cal=cfg.get("eda_cal")),
                       NTC(self.ntc_adc, self.ntc_pin, cal=cfg.get("ntc_offset_centi", 0)))

    def ppg(self, word):
        m = self.max_model
        # the optical word is in counts at the 4096 nA full scale; SPO2_ADC_RGE picks 2048 << code nA
        m.push_sample(optical_counts(word, m.led_code(), (m.regs[0x0A] >> 5) & 3))

    def eda(self, uv):
        self.eda_adc.uv = uv

    def acc(self, x, y, z):
        self.acc_model.set_mg(x, y, z)

    def ntc(self, uv):
        self.ntc_adc.uv = uv

    def transactions(self):
        return self.bus.transactions
