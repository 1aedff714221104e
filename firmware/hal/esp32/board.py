# ESP32 HAL: the badge's hardware behind the same small interface as hal.unix.board.UnixHal.
# A machine.Timer at the PPG rate only counts ticks (IRQ context: no allocation, no I2C); the main loop does the
# sampling for every pending tick, so a slow second never loses samples.
import machine
import neopixel
from app.sampler import Sensors
from drivers.eda import EDA
from drivers.lis3dh import LIS3DH
from drivers.lis3dh import SensorError as AccError
from drivers.max30102 import MAX30102, SensorError
from drivers.ntc import NTC
from micropython import const

from hal.esp32.pins import PINS

_BATT_EMPTY_MV = const(3300)
_BATT_FULL_MV = const(4200)


class Esp32Hal:
    def __init__(self, cfg):
        board = cfg["board"] if cfg is not None else "esp32-devkitc"
        p = PINS.get(board, PINS["esp32-devkitc"])
        self.p = p
        self.cfg = cfg
        self.base = cfg["rates"]["ppg"] if cfg is not None else 64
        self.pending = 0
        self.ticks = 0
        self.i2c = machine.I2C(0, scl=machine.Pin(p["i2c_scl"]), sda=machine.Pin(p["i2c_sda"]), freq=400000)
        self.eda_en = machine.Pin(p["eda_en"], machine.Pin.OUT, value=0)
        self.ntc_en = machine.Pin(p["ntc_en"], machine.Pin.OUT, value=0)
        self.btn = machine.Pin(p["button"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.chg = machine.Pin(p["charging"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.eda_adc = machine.ADC(machine.Pin(p["eda_adc"]), atten=machine.ADC.ATTN_11DB)
        self.ntc_adc = machine.ADC(machine.Pin(p["ntc_adc"]), atten=machine.ADC.ATTN_11DB)
        self.batt_adc = machine.ADC(machine.Pin(p["batt_adc"]), atten=machine.ADC.ATTN_11DB)
        n = cfg["led_count"] if cfg is not None else 1
        self.np = neopixel.NeoPixel(machine.Pin(p["led"]), n)
        self.last_led = bytearray(3)
        self.batt_pct = 100
        self.radio = None
        if cfg is not None:
            from app.radio import scan_prefix

            from hal.esp32.radio import Esp32Radio

            self.radio = Esp32Radio(cfg["dev_id"], cfg["company_id"], board, scan_prefix(cfg["company_id"]))
        self.timer = machine.Timer(0)
        self.timer.init(freq=self.base, mode=machine.Timer.PERIODIC, callback=self._tick)

    def _tick(self, _timer):
        self.pending += 1

    def sensors(self):
        i2c = self.i2c
        ppg = MAX30102(i2c, green=False)
        acc = LIS3DH(i2c)
        try:
            ppg.setup()
        except (SensorError, OSError) as exc:
            self.log("PPG sensor missing: " + str(exc))
            ppg = None
        try:
            acc.setup()
        except (AccError, OSError) as exc:
            self.log("accelerometer missing: " + str(exc))
            acc = None
        return Sensors(ppg, acc, EDA(self.eda_adc, self.eda_en), NTC(self.ntc_adc, self.ntc_en))

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            if dev is not None:
                dev.shutdown()

    def wait_tick(self):
        while self.pending == 0:
            machine.idle()
        n = self.pending
        self.pending = 0
        if n > self.base:  # more than a second behind: skip rather than spiral
            n = self.base
        self.ticks += n
        return n

    def ms(self):
        """Badge time from the sample timer's ticks (the same clock the sampler runs on)."""
        return self.ticks * 1000 // self.base

    def button(self):
        return self.btn.value() == 0

    def led(self, rgb):
        last = self.last_led
        if last[0] != rgb[0] or last[1] != rgb[1] or last[2] != rgb[2]:
            last[0], last[1], last[2] = rgb[0], rgb[1], rgb[2]
            for i in range(self.np.n):
                self.np[i] = (rgb[0], rgb[1], rgb[2])
            self.np.write()

    def led_state(self, pattern, rgb, period, now):
        pass  # the LED itself shows it

    def battery(self):
        mv = self.batt_adc.read_uv() // 500  # 1:2 divider: battery mV = 2 * pin uV / 1000
        pct = (mv - _BATT_EMPTY_MV) * 100 // (_BATT_FULL_MV - _BATT_EMPTY_MV)
        pct = 0 if pct < 0 else (100 if pct > 100 else pct)
        self.batt_pct = pct
        return pct | (0x80 if self.chg.value() == 0 else 0)

    def log(self, msg):
        print(msg)

    def status(self, badge):
        if self.radio is not None:
            self.radio.battery(self.batt_pct)
