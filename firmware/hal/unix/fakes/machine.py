# Strict stand-in for the esp32 port's `machine` (ports/esp32: machine_pin.c, machine_i2c.c, machine_adc.c,
# machine_timer.c, machine_wdt.c), for the virtual badge's fault runs. Signatures follow MicroPython's documented
# API and the micropython-esp32-stubs; invalid use raises what the port raises. Pins the chip lacks: ValueError;
# an output on an input-only pin: ValueError; driving the SPI flash / PSRAM / USB pins: the chip crashes and
# resets (as a real one does); ADC2 while the radio is on: OSError; an I2C NACK: OSError(ENODEV), a bus timeout:
# OSError(ETIMEDOUT).
import sys

import lp_fake
from hal.unix.sim_i2c import Lis3dhModel, Max3010xModel, SimI2C

_ENODEV = 19
_ETIMEDOUT = 116
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_SPEC = lp_fake.SPEC
_TIMERS = []
_WDT = []
_state = {"ticks": 0, "fed": 0, "stall": 0}


def _check_gpio(n):
    if type(n) is not int or n < 0 or n >= _SPEC[0] or n in lp_fake.MISSING[lp_fake.CHIP]:
        raise ValueError("invalid pin")


def _pin_of(p):
    if not isinstance(p, Pin):
        if type(p) is int:
            return Pin(p)
        raise TypeError("expecting a Pin")
    return p


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2
    levels = {}  # gpio -> level driven from outside (the tests' wiring)

    def __init__(self, id, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        _check_gpio(id)
        self.id = id
        self.mode = mode
        self.v = 0
        self.init(mode, pull, value=value)

    def init(self, mode=-1, pull=-1, *, value=None, drive=None, alt=None):
        if mode not in (-1, Pin.IN, Pin.OUT, Pin.OPEN_DRAIN):
            raise ValueError("invalid pin mode")
        if pull not in (-1, None, Pin.PULL_UP, Pin.PULL_DOWN):
            raise ValueError("invalid pull")
        if mode in (Pin.OUT, Pin.OPEN_DRAIN):
            if self.id in _SPEC[2]:
                raise ValueError("pin can only be input")
            _flash_guard(self.id)
        self.mode = mode
        if pull == Pin.PULL_UP:
            self.v = 1
        if value is not None:
            self.v = 1 if value else 0

    def value(self, x=None):
        v = x
        if v is None:
            if self.id == lp_fake.BUTTON:  # read in every tick of the badge app (never in safe mode)
                _tick_faults()
                return 0 if lp_fake.now() < 3200 else 1
            return Pin.levels.get(self.id, self.v)
        self.v = 1 if v else 0

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def __call__(self, x=None):
        return self.value(x)


def _tick_faults():
    if lp_fake.once("memory-error") or (lp_fake.due("crash-loop") and lp_fake.ms >= 2000):
        raise MemoryError("memory allocation failed, allocating 4096 bytes")


def _flash_guard(n):
    if n in _SPEC[1]:
        lp_fake.log("GPIO%d belongs to the SPI flash / PSRAM / USB: chip crashes (Guru Meditation)" % n)
        lp_fake.reset("crash")


class I2C:
    def __init__(self, id, *, scl, sda, freq=400000, timeout=50000):
        if type(id) is not int or id < 0 or id >= _SPEC[5]:
            raise ValueError("I2C(%s) doesn't exist" % id)
        if lp_fake.due("boot-oom"):  # the heap runs out while the badge comes up, at every boot
            raise MemoryError("memory allocation failed, allocating 1024 bytes")
        scl = _pin_of(scl)
        sda = _pin_of(sda)
        for p in (scl, sda):
            if p.id in _SPEC[2]:
                raise ValueError("pin can only be input")
            _flash_guard(p.id)
        self.pins = (scl.id, sda.id)
        self.bus = _bus()
        self.ops = 0

    def _dev(self, addr):
        self.ops += 1
        if lp_fake.due("nack-storm") and lp_fake.now() < lp_fake.FAULTS["nack-storm"] + 4000:
            if self.ops % 3:  # two transfers in three fail (every 7th failure a bus timeout, the rest NACKs)
                raise OSError(_ETIMEDOUT if self.ops % 7 == 0 else _ENODEV)

    def scan(self):
        return self.bus.scan()

    def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8):
        self._dev(addr)
        self.bus.readfrom_mem_into(addr, memaddr, buf)

    def readfrom_mem(self, addr, memaddr, nbytes, *, addrsize=8):
        self._dev(addr)
        return self.bus.readfrom_mem(addr, memaddr, nbytes)

    def writeto_mem(self, addr, memaddr, buf, *, addrsize=8):
        self._dev(addr)
        self.bus.writeto_mem(addr, memaddr, buf)


SoftI2C = I2C
_BUS = []


def _bus():
    """The badge's sensors as register-level models (hal/unix/sim_i2c), where the faults put them."""
    if not _BUS:
        bus = SimI2C()
        if not lp_fake.due("sensor-missing"):
            bus.attach(0x57, Max3010xModel())
        bus.attach(0x19 if lp_fake.due("acc-at-0x19") else 0x18, Lis3dhModel())
        _BUS.append(bus)
    return _BUS[0]


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 12
    counts = {}  # gpio -> 12-bit reading (the tests' wiring); 2000 otherwise

    def __init__(self, id, *, atten=0):
        pin = _pin_of(id)
        if pin.id not in _SPEC[3] and pin.id not in _SPEC[4]:
            raise ValueError("invalid Pin for ADC")
        if atten not in (0, 1, 2, 3):
            raise ValueError("invalid atten")
        self.id = pin.id
        self._atten = atten

    def atten(self, atten):
        self.__init__(Pin(self.id), atten=atten)

    def _raw(self):
        if self.id in _SPEC[4] and lp_fake.radio_on:
            raise OSError(_ETIMEDOUT)  # ADC2 is shared with the radio
        return ADC.counts.get(self.id, 2000)

    def read_u16(self):
        return self._raw() << 4

    def read_uv(self):
        return self._raw() * 806


class Timer:
    PERIODIC = 1
    ONE_SHOT = 0

    def __init__(self, id):
        if type(id) is not int or id < 0 or id >= _SPEC[6]:
            raise ValueError("invalid Timer number")
        self.cb = None
        self.freq = 0
        _TIMERS.append(self)

    def init(self, *, mode=1, period=-1, freq=-1, callback=None):
        if freq <= 0 and period <= 0:
            raise ValueError("period must be > 0")
        self.freq = freq if freq > 0 else 1000 // period
        self.cb = callback

    def deinit(self):
        self.cb = None


class WDT:
    def __init__(self, *, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%s) doesn't exist" % id)
        if timeout < 1:
            raise ValueError("WDT timeout too short")
        self.timeout = timeout
        _state["fed"] = lp_fake.ms
        _WDT.append(self)

    def feed(self):
        _state["fed"] = lp_fake.ms


class RTC:
    def __init__(self, id=0):
        if id != 0:
            raise ValueError("RTC(%s) doesn't exist" % id)

    def memory(self, data=None):
        if data is None:
            return bytes(lp_fake.RTC_MEM)
        if len(data) > 2048:  # MICROPY_HW_RTC_USER_MEM_MAX
            raise ValueError("buffer too long")
        lp_fake.RTC_MEM[:] = data


def idle():
    """The simulated passage of time: one timer period per call (a stalled timer: 1 ms per call)."""
    bt = sys.modules.get("bluetooth")  # only if the firmware brought the radio up: importing it here costs heap
    if lp_fake.now() >= lp_fake.END:
        import gc

        gc.collect()
        summary = bt._summary() if bt else "adverts=0 last_advert=-1 notifies=0 mtu=23"
        # the live heap within the badge's budget (code in flash: the image and the ballast are not the badge's)
        heap = lp_fake.HEAP_POOL - gc.mem_free() if lp_fake.HEAP_POOL else gc.mem_alloc()
        lp_fake.log("end at %d %s heap=%d" % (lp_fake.now(), summary, heap))
        raise SystemExit(0)
    t = _TIMERS[0] if _TIMERS and _TIMERS[0].cb is not None else None
    stall = lp_fake.once("timer-stall") or _state["stall"]
    if t is None or stall:
        _state["stall"] = stall
        lp_fake.ms += 1
    else:
        _state["ticks"] += 1
        lp_fake.ms = _state["ticks"] * 1000 // t.freq
        _physics()
        t.cb(t)
    if _WDT and lp_fake.ms - _state["fed"] > _WDT[0].timeout:
        lp_fake.reset("watchdog")
    if bt:
        bt._poll()


def _physics():
    bus = _BUS[0] if _BUS else None
    if bus is None:
        return
    t = _state["ticks"]
    m = bus.devices.get(0x57)
    if m is not None:
        m.push_sample(100000 + (900 if t % 52 < 8 else 0) + (t * 37) % 200)
    a = bus.devices.get(0x18) or bus.devices.get(0x19)
    if a is not None:
        a.set_mg(0, 0, 1000)


def reset():
    lp_fake.reset("machine.reset()")


def soft_reset():
    lp_fake.reset("machine.soft_reset()")


def reset_cause():
    return lp_fake.RESET_CAUSE


def freq(hz=None):
    if hz is None:
        return 160000000
    if hz not in (20000000, 40000000, 80000000, 160000000, 240000000):
        raise ValueError("frequency must be 20MHz, 40MHz, 80Mhz, 160MHz or 240MHz")


def unique_id():
    return b"\x24\x0a\xc4\x00\x01\x02"


def disable_irq():
    return 0


def enable_irq(state=0):
    pass
