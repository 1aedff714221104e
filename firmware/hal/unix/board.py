# Virtual badge HAL (MicroPython unix port). The badge app runs unchanged on top of it:
# - sensors: fed from a sample stream (a file or FIFO written by the host launcher: one block per second, see BLOCK
#   FORMAT below). By default the stream drives light stand-ins with the drivers' interface (the badge heap has no
#   room for the simulated chips as well); with chips=True the real drivers run on a simulated I2C bus with
#   register-level chip models (sim_i2c), and tests check both paths give identical frames.
# - timer: simulated ticks at the PPG rate; real time by default, or faster (tick_us = 0: as fast as possible)
# - radio: one UDP socket to the hub; frames out as raw 24-byte datagrams, hub frames back on the same socket
# - LED: "LED ..." lines on stdout when the LED state changes, and the same line as a UDP datagram to led_addr
# - button: a script of (start_ms, duration_ms) presses in badge time
# BLOCK FORMAT (little-endian), per second: ppg u32 x rate_ppg | eda u16 x rate_eda | acc (i16 x, y, z) x rate_acc |
# ntc counts u16 x rate_temp.
import gc
import select
import socket
import sys
import time

from app.sampler import Schedule, Sensors

PATTERN_NAMES = ("off", "idle", "pulse", "steady", "paused", "safe", "confirm", "revoke", "prompt")  # app.palette


def block_size(rates):
    return 4 * rates["ppg"] + 2 * rates["eda"] + 6 * rates["acc"] + 2 * rates["temp"]


def _addr(spec):
    host, port = spec.rsplit(":", 1)
    return socket.getaddrinfo(host, int(port))[0][-1]


class UdpRadio:
    def __init__(self, hub=None, bind_port=0):
        self.sock = None
        self.hub = None
        self.buf = bytearray(64)
        self.sent = 0
        self.received = 0
        if hub:
            self.hub = _addr(hub)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(socket.getaddrinfo("0.0.0.0", bind_port)[0][-1])
            self.poller = select.poll()
            self.poller.register(self.sock, select.POLLIN)

    def send(self, frame24):
        if self.sock is not None:
            try:
                self.sock.sendto(frame24, self.hub)
            except OSError:
                pass  # hub not up yet (ICMP refused): frames stay in the backlog ring
            self.sent += 1

    send_backlog = send

    def can_backlog(self):
        return self.sock is not None

    def recv(self):
        if self.sock is None or not self.poller.poll(0):
            return None
        try:
            data = self.sock.recv(64)
        except OSError:
            return None
        self.received += 1
        return data

    def wait(self, ms):
        """Sleep up to ms, waking early if a datagram arrives."""
        if self.sock is None:
            time.sleep_ms(ms)
        else:
            self.poller.poll(ms)


class StreamSensor:
    """A sensor whose measurements come straight from the stream, with the drivers' interface. Shut down (the state
    at boot and without consent) it produces nothing, like the real chips."""

    def __init__(self, value=0):
        self.value = value
        self.fresh = False
        self.on = False
        self.xyz = [0, 0, 0]

    def wake(self):
        self.on = True

    def shutdown(self):
        self.on = False
        self.fresh = False

    def read_mean(self):
        if not self.on or not self.fresh:
            return -1
        self.fresh = False
        return self.value

    def read(self):
        return self.value if self.on else 0

    def read_into(self, out):
        xyz = self.xyz
        for i in range(3):
            out[i] = xyz[i]


class ChipSensors:
    """The real drivers on the simulated I2C bus and ADCs (register-level chip models)."""

    def __init__(self):
        from hal.unix.sim_i2c import Lis3dhModel, Max3010xModel, SimADC, SimI2C, SimPin

        self.bus = SimI2C()
        self.max_model = self.bus.attach(0x57, Max3010xModel())
        self.acc_model = self.bus.attach(0x18, Lis3dhModel())
        self.eda_adc = SimADC(1000)
        self.ntc_adc = SimADC(2100)
        self.eda_pin = SimPin()
        self.ntc_pin = SimPin()

    def drivers(self):
        from drivers.eda import EDA
        from drivers.lis3dh import LIS3DH
        from drivers.max30102 import MAX30102
        from drivers.ntc import NTC

        ppg = MAX30102(self.bus)
        acc = LIS3DH(self.bus)
        ppg.setup()
        acc.setup()
        return Sensors(ppg, acc, EDA(self.eda_adc, self.eda_pin), NTC(self.ntc_adc, self.ntc_pin))

    def ppg(self, v):
        self.max_model.push_sample(v)

    def eda(self, counts):
        self.eda_adc.counts = counts

    def acc(self, x, y, z):
        self.acc_model.set_mg(x, y, z)

    def ntc(self, counts):
        self.ntc_adc.counts = counts


class StreamSensors:
    def __init__(self):
        from drivers.ntc import counts_to_centi_c

        self.to_centi_c = counts_to_centi_c
        self.s = Sensors(StreamSensor(), StreamSensor(), StreamSensor(1000), StreamSensor(3300))

    def drivers(self):
        return self.s

    # like the chips: a sensor that is shut down does not measure (its last reading stays in its registers)
    def ppg(self, v):
        p = self.s.ppg
        if p.on:
            p.value = v
            p.fresh = True

    def eda(self, counts):
        self.s.eda.value = counts

    def acc(self, x, y, z):
        if self.s.acc.on:
            xyz = self.s.acc.xyz
            xyz[0], xyz[1], xyz[2] = x, y, z

    def ntc(self, counts):
        self.s.ntc.value = self.to_centi_c(counts)


class UnixHal:
    def __init__(self, rates, samples=None, hub=None, tick_us=15625, seconds=0, presses=(), led_addr=None,
                 bind_port=0, dev_label="badge", chips=False):
        self.rates = rates
        self.base = rates["ppg"]
        self.tick_us = tick_us
        self.max_ticks = seconds * self.base if seconds else 0
        self.presses = presses
        self.label = dev_label
        self.ticks = 0
        self.t0 = time.ticks_us()
        self.radio = UdpRadio(hub, bind_port)
        self.led_sock = None
        if led_addr:
            self.led_addr = _addr(led_addr)
            self.led_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stream = open(samples, "rb") if samples else None
        self.block = bytearray(block_size(rates))
        self.eof = False
        self.chips = ChipSensors() if chips else StreamSensors()
        self.eda_s = Schedule(self.base, rates["eda"])
        self.acc_s = Schedule(self.base, rates["acc"])
        self.temp_s = Schedule(self.base, rates["temp"])
        self.k = [0, 0, 0]  # index into this second's eda / acc / temp samples
        self.led_now = bytearray(3)
        self.led_changes = 0
        self.last_led_us = 0
        self.button_changed_us = 0
        self.button_down = False
        self.latency_us = []

    # ---- sensors ----
    def sensors(self):
        return self.chips.drivers()

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            dev.shutdown()

    def _read_block(self):
        if self.stream is None:
            return False
        mv = memoryview(self.block)
        got = 0
        while got < len(self.block):
            n = self.stream.readinto(mv[got:])
            if not n:
                self.eof = True
                return False
            got += n
        return True

    def _u16(self, off):
        b = self.block
        return b[off] | (b[off + 1] << 8)

    def _i16(self, off):
        v = self._u16(off)
        return v - 0x10000 if v & 0x8000 else v

    def _feed(self):
        """Physics for this tick: the chips measure the next samples of the stream (ignored while shut down)."""
        r = self.rates
        t = self.ticks % self.base
        if t == 0:
            self.k[0] = self.k[1] = self.k[2] = 0
            if not self._read_block():
                return
        if self.stream is None:
            return
        b = self.block
        i = 4 * t
        chips = self.chips
        chips.ppg(b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))
        k = self.k
        off = 4 * r["ppg"]
        if self.eda_s.due():
            chips.eda(self._u16(off + 2 * k[0]))
            k[0] += 1
        off += 2 * r["eda"]
        if self.acc_s.due():
            j = off + 6 * k[1]
            chips.acc(self._i16(j), self._i16(j + 2), self._i16(j + 4))
            k[1] += 1
        off += 6 * r["acc"]
        if self.temp_s.due():
            chips.ntc(self._u16(off + 2 * k[2]))
            k[2] += 1

    # ---- timer ----
    def wait_tick(self):
        """Block until the next sample tick is due; 1, or 0 when the run is over."""
        if (self.max_ticks and self.ticks >= self.max_ticks) or self.eof:
            return 0
        if self.tick_us:
            due = time.ticks_add(self.t0, self.ticks * self.tick_us)
            while True:
                left = time.ticks_diff(due, time.ticks_us())
                if left <= 0:
                    break
                self.radio.wait((left + 999) // 1000)
        self._feed()
        if self.eof:
            return 0
        self.ticks += 1
        return 1

    def ms(self):
        """Badge time in ms (simulated: ticks at the PPG rate)."""
        return self.ticks * 1000 // self.base

    # ---- button ----
    def button(self):
        now = self.ms()
        down = False
        for start, dur in self.presses:
            if start <= now < start + dur:
                down = True
                break
        if down != self.button_down:
            self.button_down = down
            self.button_changed_us = time.ticks_us()
        return down

    # ---- LED ----
    def led(self, rgb):
        n = self.led_now
        if n[0] != rgb[0] or n[1] != rgb[1] or n[2] != rgb[2]:
            n[0], n[1], n[2] = rgb[0], rgb[1], rgb[2]
            self.last_led_us = time.ticks_us()

    def led_state(self, pattern, rgb, period, now):
        self.led_changes += 1
        if self.button_changed_us:
            self.latency_us.append(time.ticks_diff(time.ticks_us(), self.button_changed_us))
            self.button_changed_us = 0
        line = "LED %d %s %d %d %d %d" % (now, PATTERN_NAMES[pattern], rgb[0], rgb[1], rgb[2], period)
        print(line)
        if self.led_sock is not None:
            try:
                self.led_sock.sendto((self.label + " " + line).encode(), self.led_addr)
            except OSError:
                pass

    # ---- misc ----
    def battery(self):
        # a 500 mAh cell discharging over ~10 h of badge time
        pct = 100 - self.ticks // (self.base * 360)
        return pct if pct > 5 else 5

    def log(self, msg):
        print("LOG %d %s" % (self.ms(), msg))

    def status(self, badge):
        """Every 10 s: heap in use before and after a collection (before = the high-water mark of the period)."""
        before = gc.mem_alloc()
        gc.collect()
        print("STAT %d ctr=%d sent=%d/%d/%d cmds=%d ring=%d heap=%d/%d free=%d rej=%d" % (
            self.ms(), badge.counter.next, badge.sent[0], badge.sent[1], badge.sent[4], badge.commands,
            badge.ring.count, before, gc.mem_alloc(), gc.mem_free(), badge.link.rejected))
        if hasattr(self.chips, "bus"):
            print("I2C %d" % self.chips.bus.transactions)


def parse_presses(spec):
    """"start_ms:dur_ms,..." -> tuple of (start_ms, dur_ms)."""
    out = []
    if spec:
        for item in spec.split(","):
            a, b = item.split(":")
            out.append((int(a), int(b)))
    return tuple(out)


def main(argv):
    """micropython firmware/main.py --config PATH --udp HOST:PORT --samples FILE --tick-us N --seconds S
    --press SPEC --led HOST:PORT (run from the badge's root directory, which holds config.json and state)."""
    opts = {"--config": "config.json", "--udp": None, "--samples": None, "--tick-us": "15625", "--seconds": "0",
            "--press": "", "--led": None, "--label": "badge", "--chips": "0"}
    i = 0
    while i < len(argv):
        if argv[i] not in opts or i + 1 >= len(argv):
            print("usage: main.py [--config PATH] [--udp HOST:PORT] [--samples FILE] [--tick-us N] [--seconds S] "
                  "[--press START_MS:DUR_MS,...] [--led HOST:PORT] [--label NAME] [--chips 0|1]")
            sys.exit(2)
        opts[argv[i]] = argv[i + 1]
        i += 2
    return opts
