# ESP32 HAL: the badge's hardware behind the same small interface as hal.unix.board.UnixHal.
# Time is time.ticks_ms(): wait_tick() sleeps (time.sleep_ms, so FreeRTOS's idle task can clock-gate the CPU; a
# spin on machine.idle() only yields) until the next tick is due by the clock and returns how many ticks are due;
# after a GC, a flash erase or a slow second that is several at once (counted in `late`), and the PPG FIFO holds
# the samples meanwhile. The CPU runs at CPU_HZ (80 MHz: the per-second work needs ~2-4 % of it; 160 MHz is the
# port's default). A machine.Timer at the tick rate only counts ticks (IRQ context: no allocation, no I2C).
import time

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

CPU_HZ = const(80000000)
SLEEP_MS = const(10)  # longest sleep between checks of the clock (the FreeRTOS tick is 10 ms)
GREEN_PPG_BOARDS = ("esp32-s3-devkitc",)  # built with a MAX30101 (green LED, hardware/bom.md); others MAX30102 (IR)
_BATT_EMPTY_MV = const(3300)
_BATT_FULL_MV = const(4200)


class Esp32Hal:
    def __init__(self, cfg):
        board = cfg["board"] if cfg is not None else "esp32-devkitc"
        p = PINS.get(board, PINS["esp32-devkitc"])
        self.p = p
        self.cfg = cfg
        self.base = cfg["rates"]["ppg"] if cfg is not None else 64
        machine.freq(CPU_HZ)
        self.sleep_ms = time.sleep_ms
        self.ticks_ms = time.ticks_ms
        self.green = board in GREEN_PPG_BOARDS
        self.pending = 0
        self.ticks = 0
        self.late = 0
        self._ms = 0
        self._last = self.ticks_ms()
        self.i2c = machine.I2C(0, scl=machine.Pin(p["i2c_scl"]), sda=machine.Pin(p["i2c_sda"]), freq=400000)
        self.eda_en = machine.Pin(p["eda_en"], machine.Pin.OUT, value=0)
        self.ntc_en = machine.Pin(p["ntc_en"], machine.Pin.OUT, value=0)
        self.btn = machine.Pin(p["button"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.chg = machine.Pin(p["charging"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.eda_adc = machine.ADC(machine.Pin(p["eda_adc"]), atten=machine.ADC.ATTN_0DB)  # 0.14-0.48 V
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
        ppg = MAX30102(i2c, green=self.green)
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
        cfg = self.cfg or {}
        return Sensors(ppg, acc, EDA(self.eda_adc, self.eda_en, cal=cfg.get("eda_cal")),
                       NTC(self.ntc_adc, self.ntc_en, cal=cfg.get("ntc_offset_centi", 0)))

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            if dev is not None:
                dev.shutdown()

    def wait_tick(self):
        """Sleep until at least one tick is due by the clock; the number due (> 1 when the loop was late)."""
        while True:
            n = self.ms() * self.base // 1000 - self.ticks
            if n > 0:
                break
            self.sleep_ms(SLEEP_MS)
        self.pending = 0
        self.ticks += n
        self.late += n - 1
        return n

    def ms(self):
        """Badge time in ms since boot, from time.ticks_ms() (wrap-safe: accumulated differences)."""
        now = self.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms

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
