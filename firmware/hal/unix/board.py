# Virtual badge HAL (MicroPython unix port). The badge app runs unchanged on top of it:
# - sensors: fed from a sample stream (a file or FIFO written by the host launcher: one block per second, see BLOCK
#   FORMAT below). By default the stream drives light stand-ins with the drivers' interface (the badge heap has no
#   room for the simulated chips as well); with chips=True (hal.unix.chips) the real drivers run on a simulated I2C
#   bus with register-level chip models (sim_i2c), and tests check both paths give identical frames.
# - timer: simulated ticks at the PPG rate; real time by default, or faster (tick_us = 0: as fast as possible)
# - radio: one UDP socket to the hub; frames out as raw 24-byte datagrams, hub frames back on the same socket
# - LED: "LED ..." lines on stdout when the LED state changes, and the same line as a UDP datagram to led_addr
#   (the state: pattern, colour, period; the per-tick brightness follows from the pattern)
# - button: a script of (start_ms, duration_ms) presses in badge time
# BLOCK FORMAT (little-endian), per second: ppg u32 x rate_ppg | eda u16 x rate_eda | acc (i16 x, y, z) x rate_acc |
# ntc counts u16 x rate_temp.
import gc
import select
import socket
import time

from app.sampler import Schedule, Sensors

# app.palette's patterns; one long string, split at import: short string constants would each cost a qstr
PATTERN_NAMES = "off idle pulse steady paused safe confirm revoke prompt missing".split()


def block_size(rates):
    return 4 * rates["ppg"] + 2 * rates["eda"] + 6 * rates["acc"] + 2 * rates["temp"]


def _addr(spec):
    host, port = spec.rsplit(":", 1)
    return socket.getaddrinfo(host, int(port))[0][-1]


class UdpRadio:
    def __init__(self, hub=None):
        self.sock = None
        if hub:
            self.hub = _addr(hub)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(socket.getaddrinfo("0.0.0.0", 0)[0][-1])
            self.poller = select.poll()
            self.poller.register(self.sock, select.POLLIN)

    def send(self, frame24):
        if self.sock is not None:
            try:
                self.sock.sendto(frame24, self.hub)
            except OSError:
                pass  # hub not up yet (ICMP refused): frames stay in the backlog ring

    send_backlog = send

    def can_backlog(self):
        return self.sock is not None

    def recv(self):
        """The next datagram from the hub, or None (never blocks)."""
        if self.sock is None or not self.poller.poll(0):
            return None
        try:
            return self.sock.recv(64)
        except OSError:
            return None


class StreamSensor:
    """A sensor whose measurements come straight from the stream, with the drivers' interface. Shut down (the state
    at boot and without consent) it measures nothing, like the real chips: its last reading stays."""

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
        if not self.fresh:
            return -1
        self.fresh = False
        return self.value

    def read(self):
        return self.value

    def read_into(self, out):
        xyz = self.xyz
        for i in range(3):
            out[i] = xyz[i]


class StreamSensors:
    """Feeds the stand-ins (same feeding interface as hal.unix.chips.ChipSensors)."""

    def __init__(self):
        from drivers.ntc import counts_to_centi_c

        self.to_centi_c = counts_to_centi_c
        self.s = Sensors(StreamSensor(), StreamSensor(), StreamSensor(1000), StreamSensor(3300))

    def drivers(self):
        return self.s

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

    def transactions(self):
        return 0


def _u16(b, off):
    return b[off] | (b[off + 1] << 8)


def _i16(b, off):
    v = b[off] | (b[off + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


class UnixHal:
    def __init__(self, rates, samples=None, hub=None, tick_us=15625, seconds=0, presses=(), led_addr=None,
                 label="badge", chips=False):
        self.rates = rates
        self.base = rates["ppg"]
        self.tick_us = tick_us
        self.max_ticks = seconds * self.base
        self.presses = presses
        self.label = label
        self.ticks = 0
        self.t0 = time.ticks_us()
        self.radio = UdpRadio(hub)
        self.led_sock = None
        if led_addr:
            self.led_addr = _addr(led_addr)
            self.led_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stream = open(samples, "rb") if samples else None
        self.block = bytearray(block_size(rates))
        self.eof = False
        if chips:
            from hal.unix.chips import ChipSensors

            self.chips = ChipSensors()
        else:
            self.chips = StreamSensors()
        # the same schedules as the sampler's, so each stream's k-th sample is measured on the tick it is read
        self.sched = (Schedule(self.base, rates["eda"]), Schedule(self.base, rates["acc"]),
                      Schedule(self.base, rates["temp"]))
        self.k = [0, 0, 0]  # index into this second's eda / acc / temp samples
        self.down = False
        self.down_us = 0
        self.latency_us = []  # button change -> LED state published, per press (for the bench)

    def sensors(self):
        return self.chips.drivers()

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            dev.shutdown()

    def _feed(self):
        """Physics for this tick: the sensors measure the stream's next samples (ignored while shut down)."""
        t = self.ticks % self.base
        b = self.block
        if t == 0:
            self.k[0] = self.k[1] = self.k[2] = 0
            if self.stream is None:
                return
            mv = memoryview(b)
            got = 0
            while got < len(b):
                n = self.stream.readinto(mv[got:])
                if not n:
                    self.eof = True
                    return
                got += n
        if self.stream is None:
            return
        r = self.rates
        chips = self.chips
        k = self.k
        i = 4 * t
        chips.ppg(b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))
        off = 4 * r["ppg"]
        if self.sched[0].due():
            chips.eda(_u16(b, off + 2 * k[0]))
            k[0] += 1
        off += 2 * r["eda"]
        if self.sched[1].due():
            i = off + 6 * k[1]
            chips.acc(_i16(b, i), _i16(b, i + 2), _i16(b, i + 4))
            k[1] += 1
        off += 6 * r["acc"]
        if self.sched[2].due():
            chips.ntc(_u16(b, off + 2 * k[2]))
            k[2] += 1

    def wait_tick(self):
        """Block until the next sample tick is due (early if a datagram arrives); 1, or 0 when the run is over."""
        if (self.max_ticks and self.ticks >= self.max_ticks) or self.eof:
            return 0
        if self.tick_us:
            due = time.ticks_add(self.t0, self.ticks * self.tick_us)
            left = time.ticks_diff(due, time.ticks_us())
            while left > 0:
                if self.radio.sock is None:
                    time.sleep_us(left)
                else:
                    self.radio.poller.poll((left + 999) // 1000)
                left = time.ticks_diff(due, time.ticks_us())
        self._feed()
        if self.eof:
            return 0
        self.ticks += 1
        return 1

    def ms(self):
        """Badge time in ms (simulated: ticks at the PPG rate)."""
        return self.ticks * 1000 // self.base

    def button(self):
        now = self.ms()
        down = False
        for start, dur in self.presses:
            if start <= now < start + dur:
                down = True
        if down != self.down:
            self.down = down
            self.down_us = time.ticks_us()
        return down

    def led(self, rgb):
        pass  # the LED state lines (led_state) carry what a real LED would show

    def led_state(self, pattern, rgb, period, now):
        if self.down_us:
            self.latency_us.append(time.ticks_diff(time.ticks_us(), self.down_us))
            self.down_us = 0
        line = "LED %d %s %d %d %d %d" % (now, PATTERN_NAMES[pattern], rgb[0], rgb[1], rgb[2], period)
        print(line)
        if self.led_sock is not None:
            try:
                self.led_sock.sendto((self.label + " " + line).encode(), self.led_addr)
            except OSError:
                pass

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
        n = self.chips.transactions()
        if n:
            print("I2C %d" % n)
