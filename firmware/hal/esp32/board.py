# ESP32 HAL: the badge's hardware behind the same small interface as hal.unix.board.UnixHal.
# The pin map is the board's, and app.start only passes a board made for the chip the firmware runs on (or None:
# then no pin is touched at all). A machine.WDT (WDT_MS) is fed by the main loop in wait_tick while the badge is
# healthy: a loop that stalls, or a radio that has failed for _RADIO_DEAD_S seconds in a row, gets a reset.
# Time is time.ticks_ms(): wait_tick() sleeps WAKE_MS at a time and returns how many ticks are due by the clock,
# which the app runs in a burst (the sensors' FIFOs hold the samples meanwhile: 640 ms of PPG, 1.28 s of
# acceleration); more than a wake's worth, after a GC, a flash erase or a slow second, are counted in `late`.
# Why WAKE_MS and not a sleep per tick: time.sleep_ms blocks in FreeRTOS (cores clock-gated by the idle task) only
# while a whole FreeRTOS tick (10 ms) of the sleep remains and busy-waits the rest (mp_hal_delay_ms in the esp32
# port), so a sleep of <= 10 ms is all spin; a 50 ms sleep idles ~45 ms of it. machine.idle() only yields.
# Why no machine.lightsleep (0.8 mA instead of ~13): the BLE stack is always running (adverts every 200 ms,
# scan windows, the hub's connection events), and light sleep stops the controller's clock; the ESP32 keeps BLE
# timing across light sleep only with BT modem sleep and an external 32 kHz crystal (neither board has one, and
# MicroPython's builds do not enable it). It would also stop the UART, so safe mode's REPL would not answer.
# The CPU runs at CPU_HZ (80 MHz: the badge's work and the sleeps' busy tails keep it ~26 % busy by the power
# model, hardware/power.md; 160 MHz is the port's default). A machine.Timer at the tick rate only counts ticks (IRQ
# context: no allocation, no I2C).
import time

import machine
import neopixel
from app.sampler import Sensors
from drivers.bus import Bus, bring_up
from drivers.eda import EDA
from drivers.lis3dh import LIS3DH
from drivers.max30102 import MAX30102
from drivers.ntc import NTC
from micropython import const

CPU_HZ = const(80000000)
WAKE_MS = const(50)  # sleep between wakes: 5 FreeRTOS ticks (10 ms each), ~3 ticks of work per wake at 64 Hz
GREEN_PPG_BOARDS = ("esp32-s3-devkitc",)  # built with a MAX30101 (green LED, hardware/bom.md); others MAX30102 (IR)
_BATT_EMPTY_MV = const(3300)
_BATT_FULL_MV = const(4200)
WDT_MS = const(8000)  # longer than a flash erase or a GC pause, short enough that a stalled badge is back quickly
_RADIO_DEAD_S = const(30)
_ADDR_MAX3010X = (0x57,)
_ADDR_LIS3DH = (0x18, 0x19)  # SA0 low / high: many breakout boards pull SA0 up


def _pins_of(board):
    """The board's pin map (None for no board). Every board's map is only read at boot: hal.esp32.pins is let go
    of after, so the run does not keep its bytecode and tables on the heap."""
    if board is None:
        return None
    from app.start import forget_module

    from hal.esp32 import pins

    p = pins.PINS[board]
    del pins
    forget_module("hal.esp32", "pins")
    return p


class Esp32Hal:
    def __init__(self, cfg, board):
        p = _pins_of(board)
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
        self.per_wake = (WAKE_MS + 10) * self.base // 1000 + 1  # a wake's ticks, the FreeRTOS tick's overshoot too
        self._ms = 0
        self._last = self.ticks_ms()
        self.found = None
        self.np = None
        self.last_led = bytearray(3)
        self.batt_pct = 100
        self.marked_healthy = False
        self.wdt = machine.WDT(timeout=WDT_MS)
        if p is not None:
            self._pins(p, cfg["led_count"] if cfg is not None else 1)
        self.radio = None
        self.radio_down = None
        if cfg is not None:
            from app.radio import scan_prefix

            from hal.esp32.radio import Esp32Radio

            try:
                self.radio = Esp32Radio(cfg["dev_id"], cfg["company_id"], board or "unknown",
                                        scan_prefix(cfg["company_id"]))
            except OSError as exc:  # NimBLE did not come up after its bounded tries: safe mode, with the reason
                self.radio_down = str(exc)
        self.timer = machine.Timer(0)
        self.timer.init(freq=self.base, mode=machine.Timer.PERIODIC, callback=self._tick)

    def _pins(self, p, n_leds):
        self.bus = Bus(machine.I2C(0, scl=machine.Pin(p["i2c_scl"]), sda=machine.Pin(p["i2c_sda"]), freq=400000))
        self.eda_en = machine.Pin(p["eda_en"], machine.Pin.OUT, value=0)
        self.ntc_en = machine.Pin(p["ntc_en"], machine.Pin.OUT, value=0)
        self.btn = machine.Pin(p["button"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.chg = machine.Pin(p["charging"], machine.Pin.IN, machine.Pin.PULL_UP)
        self.eda_adc = machine.ADC(machine.Pin(p["eda_adc"]), atten=machine.ADC.ATTN_0DB)  # 0.14-0.48 V
        self.ntc_adc = machine.ADC(machine.Pin(p["ntc_adc"]), atten=machine.ADC.ATTN_11DB)
        self.batt_adc = machine.ADC(machine.Pin(p["batt_adc"]), atten=machine.ADC.ATTN_11DB)
        self.np = neopixel.NeoPixel(machine.Pin(p["led"]), n_leds)

    def _tick(self, _timer):
        self.pending += 1

    def sensors(self):
        """Bring-up once: log the bus scan, probe each sensor at its documented addresses (ID register checked)."""
        if self.found is None:
            if self.p is None:
                self.found = Sensors()
                return self.found
            bus = self.bus
            self.log("I2C scan: " + " ".join("0x%02x" % a for a in bus.scan()))
            ppg = bring_up(lambda a: MAX30102(bus, a, green=self.green), _ADDR_MAX3010X, self.log)
            acc = bring_up(lambda a: LIS3DH(bus, a), _ADDR_LIS3DH, self.log)
            if acc is not None:
                self.log("LIS3DH at 0x%02x" % acc.addr)
            cfg = self.cfg or {}
            self.found = Sensors(ppg, acc, EDA(self.eda_adc, self.eda_en, cal=cfg.get("eda_cal")),
                                 NTC(self.ntc_adc, self.ntc_en, cal=cfg.get("ntc_offset_centi", 0)))
        return self.found

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            if dev is not None:
                try:
                    dev.shutdown()
                except OSError:
                    pass  # counted by the bus; the sensor stays as it was

    def healthy(self):
        return self.radio is None or self.radio.failing < _RADIO_DEAD_S

    def wait_tick(self):
        """Sleep (WAKE_MS at a time) until ticks are due by the clock; the number due (~WAKE_MS worth, more when
        the loop was late). The watchdog is fed here while the badge is healthy."""
        if self.healthy():
            self.wdt.feed()
        while True:
            n = self.ms() * self.base // 1000 - self.ticks
            if n > 0:
                break
            self.sleep_ms(WAKE_MS)
        self.pending = 0
        self.ticks += n
        if n > self.per_wake:
            self.late += n - self.per_wake
        return n

    def ms(self):
        """Badge time in ms since boot, from time.ticks_ms() (wrap-safe: accumulated differences)."""
        now = self.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms

    def button(self):
        return self.p is not None and self.btn.value() == 0

    def led(self, rgb):
        last = self.last_led
        if self.np is None:
            return
        if last[0] != rgb[0] or last[1] != rgb[1] or last[2] != rgb[2]:
            last[0], last[1], last[2] = rgb[0], rgb[1], rgb[2]
            for i in range(self.np.n):
                self.np[i] = (rgb[0], rgb[1], rgb[2])
            self.np.write()

    def led_state(self, pattern, rgb, period, now):
        pass  # the LED itself shows it

    def battery(self):
        if self.p is None:
            return 0
        mv = self.batt_adc.read_uv() // 500  # 1:2 divider: battery mV = 2 * pin uV / 1000
        pct = (mv - _BATT_EMPTY_MV) * 100 // (_BATT_FULL_MV - _BATT_EMPTY_MV)
        pct = 0 if pct < 0 else (100 if pct > 100 else pct)
        self.batt_pct = pct
        return pct | (0x80 if self.chg.value() == 0 else 0)

    def log(self, msg):
        print(msg)

    def status(self, badge):
        """Every 10 s: battery to the GATT server, error counts on serial (with the ticks that came late and what
        the sensor FIFOs lost), the crash streak ended once healthy."""
        r = self.radio
        if r is not None:
            r.battery(self.batt_pct)
            e = r.errors
            self.log("BLE errors advertise=%d notify=%d scan=%d write=%d mtu_refused=%d" % (e[0], e[1], e[2], e[3],
                                                                                          e[4]))
        if self.p is not None:
            self.log("I2C errors retried=%d failed=%d samples_lost=%d" % (self.bus.retried, self.bus.failed,
                                                                         badge.sampler.errors))
        s = badge.sampler.sensors
        self.log("SENS late=%d ppg_lost=%d acc_full=%d led=%d" % (  # -1: no such sensor
            self.late, s.ppg.lost if s.ppg else -1, s.acc.overruns if s.acc else -1, s.ppg.code if s.ppg else 0))
        if not self.marked_healthy and self.ms() >= 600000:  # app.crashlog's healthy time: end a crash streak
            from app import crashlog
            from app.start import forget_module

            self.marked_healthy = crashlog.healthy(self.ms())
            del crashlog
            forget_module("app", "crashlog")  # once per boot: its bytecode need not stay for the rest of the run
