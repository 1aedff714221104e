# Virtual badge HAL (MicroPython unix port). The badge app runs unchanged on top of it:
# - sensors: fed from a sample stream (a file or FIFO written by the host launcher, see STREAM FORMAT below). The silicon is simulated on the host (lifepalette.sim.silicon): the PPG chip's own clock and
#   crystal error, its optics (site, LED colour, ambient light), the ESP32 ADC's transfer curve and the port's
#   read_uv() calibration, and late ticks. Here only what depends on the firmware's own actions is modelled: the
#   LED current (counts = optical gain x LED code + ambient, clipped to the 18-bit ADC) and the 32-sample FIFO.
#   By default light stand-ins with the drivers' interface hold those (hal.unix.stream; the badge heap has no room
#   for the register-level models as well, and the host has already run the NTC and EDA drivers' conversions);
#   with chips=True (hal.unix.chips) every real driver runs on a simulated I2C bus with register-level chip models
#   (sim_i2c), and tests check both paths give identical frames.
# - timer: simulated ticks at the tick rate (rates["ppg"]); real time by default, or faster (tick_us = 0: as fast as
#   possible). The stream's delivery plan holds ticks back and hands them over in bursts of 2-6, as a GC, a flash
#   erase or a slow second would on a badge (counted in `late`).
# - radio: one UDP socket to the hub; frames out as raw 24-byte datagrams, hub frames back on the same socket
# - LED: "LED ..." lines on stdout when the LED state changes, and the same line as a UDP datagram to led_addr
#   (the state: pattern, colour, period; the per-tick brightness follows from the pattern); the sum of the LED's
#   r+g+b over every tick is kept for the power model (led_sum)
# - button: a script of (start_ms, duration_ms) presses in badge time
# STREAM FORMAT (little-endian), per tick (base = rates["ppg"] ticks a second; the slow streams on the ticks the
# sampler's Bresenham schedules pick, which the host computes the same way):
#   u8 n          PPG samples the chip finished during this tick period
#   u8 plan       ticks handed to the app after this tick (0 = held back, k = this one and k-1 held)
#   u8 m          LIS3DH measurements finished during this tick period (its own oscillator, 25 Hz nominal)
#   u8 0
#   u32 x n       PPG optical words: bits 0-23 counts per LED step (0.2 mA) in Q4, bits 24-31 ambient / 64
#   i16 x 3 x m   milli-g x, y, z per measurement
#   u32           EDA pin, read_uv() microvolts (stand-in path: the EDA driver's reading, kernel counts)
#   u32           NTC pin, read_uv() microvolts (stand-in path: the NTC driver's reading, 0.01 degC)
# (EDA and NTC only on the ticks where they are due)
import gc
import select
import socket
import time

from app.sampler import Schedule

# app.palette's patterns, 8 characters each in one string: a list of ten strings would hold ~400 bytes of heap for
# the LED lines alone (short string constants would each cost a qstr); the name is cut out when a line is printed
PATTERN_NAMES = "off     idle    pulse   steady  paused  safe    confirm revoke  prompt  missing "


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


def _u32(b, off):
    return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)


def _i16(b, off):
    v = b[off] | (b[off + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


class UnixHal:
    def __init__(self, rates, samples=None, hub=None, tick_us=15625, seconds=0, presses=(), led_addr=None,
                 label="badge", chips=False, cfg=None):
        self.rates = rates
        self.base = rates["ppg"]
        self.tick_us = tick_us
        self.max_ticks = seconds * self.base
        self.presses = presses
        self.label = label
        self.ticks = 0
        self.late = 0
        self.led_sum = 0  # r+g+b over every tick (the LED's charge, for the power model)
        self.t0 = time.ticks_us()
        self.radio = UdpRadio(hub)
        self.led_sock = None
        if led_addr:
            self.led_addr = _addr(led_addr)
            self.led_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stream = open(samples, "rb") if samples else None
        self.b = bytearray(6)
        self.mv = (memoryview(self.b)[:2], memoryview(self.b)[:4], memoryview(self.b))
        self.eof = False
        self.cfg = cfg or {}
        self.want_chips = chips
        self.chips = None  # made at the first sensors() call: after app.badge's import, the boot's peak
        # the same schedules as the sampler's, so each stream's k-th sample is measured on the tick it is read
        self.sched = (Schedule(self.base, rates["eda"]), Schedule(self.base, rates["temp"]))
        self.down = False
        self.down_us = 0
        self.latency_us = []  # button change -> LED state published, per press (for the bench)

    def sensors(self):
        if self.chips is None:
            if self.want_chips:
                from hal.unix.chips import ChipSensors

                self.chips = ChipSensors(self.cfg)
            else:
                # the stand-ins' code and objects go in behind a held gap that the badge's own objects, made
                # right after, then find (the heap is at its fullest here: without it they can find no room)
                gap = bytearray(1024)
                from hal.unix.stream import StreamSensors

                self.chips = StreamSensors()
                del gap
        return self.chips.drivers()

    def shutdown_sensors(self):
        s = self.sensors()
        for dev in (s.ppg, s.acc, s.eda, s.ntc):
            dev.shutdown()

    def _read(self, i):
        """The next 2, 4 or 6 stream bytes (i = 0, 1, 2) into self.b; False at the end of the stream."""
        mv = self.mv[i]
        got = 0
        while got < len(mv):
            n = self.stream.readinto(mv[got:] if got else mv)  # slicing allocates: only for a short read
            if not n:
                self.eof = True
                return False
            got += n
        return True

    def _feed(self):
        """Physics for this tick: the sensors measure the stream's next samples (ignored while shut down).
        Returns the ticks to hand over after it (0: held back)."""
        if self.stream is None:
            return 1
        b = self.b
        if not self._read(1):
            return 0
        n = b[0]
        plan = b[1]
        m = b[2]
        chips = self.chips
        for _ in range(n):
            if not self._read(1):
                return 0
            chips.ppg(_u32(b, 0))
        for _ in range(m):
            if not self._read(2):
                return 0
            chips.acc(_i16(b, 0), _i16(b, 2), _i16(b, 4))
        if self.sched[0].due() and self._read(1):
            chips.eda(_u32(b, 0))
        if self.sched[1].due() and self._read(1):
            chips.ntc(_u32(b, 0))
        return plan

    def wait_tick(self):
        """Block until the next ticks are due (early if a datagram arrives); how many (> 1 in a late burst), or 0
        when the run is over."""
        n = 0
        while n == 0:
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
            n = self._feed()
            if self.eof:
                return 0
            self.ticks += 1
        self.late += n - 1
        return n

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
        self.led_sum += rgb[0] + rgb[1] + rgb[2]  # the LED state lines (led_state) carry what it shows

    def led_state(self, pattern, rgb, period, now):
        if self.down_us:
            self.latency_us.append(time.ticks_diff(time.ticks_us(), self.down_us))
            self.down_us = 0
        name = PATTERN_NAMES[8 * pattern:8 * pattern + 8].rstrip()
        line = "LED %d %s %d %d %d %d" % (now, name, rgb[0], rgb[1], rgb[2], period)
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
        """Every 10 s: heap in use before and after a collection (before = the high-water mark of the period);
        ticks that came late (in a burst), PPG samples lost to FIFO overflow / accelerometer FIFO reads that found
        it full, and the PPG LED drive (0.2 mA steps)."""
        before = gc.mem_alloc()
        gc.collect()
        s = badge.sampler.sensors
        print("STAT %d ctr=%d sent=%d/%d/%d cmds=%d ring=%d heap=%d/%d free=%d rej=%d late=%d lost=%d/%d led=%d" % (
            self.ms(), badge.counter.next, badge.sent[0], badge.sent[1], badge.sent[4], badge.commands,
            badge.ring.count, before, gc.mem_alloc(), gc.mem_free(), badge.link.rejected, self.late, s.ppg.lost,
            s.acc.overruns, s.ppg.code))
        n = self.chips.transactions() if self.chips else 0
        if n:
            print("I2C %d" % n)
