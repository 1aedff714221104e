"""Lenient MicroPython stand-ins for `bluetooth`, `machine` and `neopixel`, written as source for the `mpy` fixture
to install beside a snippet (the strict, chip-aware stand-ins live in firmware/hal/unix/fakes)."""

FAKE_BLUETOOTH = '''
class UUID:
    def __init__(self, v):
        self.v = v

class BLE:
    last = None
    def __init__(self):
        BLE.last = self
        self.calls = []
        self.handler = None
        self.values = {}
    def active(self, on):
        self.calls.append(("active", on))
    def config(self, **kw):
        self.calls.append(("config", sorted(kw)))
    def gatts_register_services(self, services):
        self.services = services
        handles = []
        h = 10
        for _uuid, chars in services:
            row = []
            for _c in chars:
                row.append(h)
                h += 1
            handles.append(tuple(row))
        return tuple(handles)
    def gatts_set_buffer(self, h, n, append=False):
        self.calls.append(("set_buffer", h, n))
    def gatts_write(self, h, data, send_update=False):
        self.values[h] = bytes(data)
    def gatts_read(self, h):
        return self.values.get(h, b"")
    def gatts_notify(self, conn, h, data=None):
        self.calls.append(("notify", conn, h, bytes(data)))
    def gattc_exchange_mtu(self, conn):
        self.calls.append(("exchange_mtu", conn))
    def gap_advertise(self, interval, adv_data=None, connectable=True):
        self.calls.append(("advertise", interval, bytes(adv_data), connectable))
    def gap_scan(self, duration, interval, window, active=False):
        self.calls.append(("scan", duration, interval, window, active))
    def irq(self, handler):
        self.handler = handler
'''

FAKE_MACHINE = '''
from hal.unix.sim_i2c import SimI2C, Max3010xModel, Lis3dhModel
BUS = SimI2C()
MAX = BUS.attach(0x57, Max3010xModel())
ACC = BUS.attach(0x18, Lis3dhModel())
PINS = {}
ADCS = {}
TIMERS = []

class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    def __init__(self, n, mode=-1, pull=-1, value=None):
        self.n = n
        PINS[n] = self
        self.v = 1 if pull == 1 else (value or 0)
    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0

class I2C:
    def __init__(self, i, scl=None, sda=None, freq=0):
        self.pins = (scl.n, sda.n)
    def readfrom_mem_into(self, a, r, b):
        BUS.readfrom_mem_into(a, r, b)
    def writeto_mem(self, a, r, b):
        BUS.writeto_mem(a, r, b)
    def scan(self):
        return BUS.scan()

class WDT:
    def __init__(self, timeout=0):
        self.timeout = timeout
    def feed(self):
        pass

class ADC:
    ATTN_0DB = 0
    ATTN_11DB = 3
    def __init__(self, pin, atten=0):
        ADCS[pin.n] = self
        self.counts = 2000
    def read_u16(self):
        return self.counts << 4
    def read_uv(self):
        return self.counts * 1000

class Timer:
    PERIODIC = 1
    def __init__(self, i):
        TIMERS.append(self)
    def init(self, freq=0, mode=0, callback=None):
        self.freq = freq
        self.cb = callback

def freq(hz=None):
    return 160000000 if hz is None else None

def idle():
    for t in TIMERS:
        t.cb(t)
'''

FAKE_NEOPIXEL = '''
WRITES = []
class NeoPixel:
    def __init__(self, pin, n):
        self.pin = pin
        self.n = n
        self.buf = [(0, 0, 0)] * n
    def __setitem__(self, i, v):
        self.buf[i] = v
    def write(self):
        WRITES.append(self.buf[0])
'''
