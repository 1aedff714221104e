# The badge: wires consent, sampler, features, palette and radio together around a HAL (hal.esp32 or hal.unix).
# Every timer tick: button -> gestures -> consent; sample (only while capturing); LED. Every second (base ticks):
# features -> record -> sealed frame (telemetry with consent, heartbeat without) -> radio; backlog; hub frames.
from app import consent as consent_mod
from app import palette, pipeline, storage
from app.radio import Link, u32
from app.sampler import Sampler
from protocol import frame, telemetry

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# indices of protocol.records.TELEMETRY_FIELDS
_HR = const(0)
_SCL = const(2)
_SCR = const(3)
_HUE = const(5)
_CHROMA = const(6)
_COLOUR_AGE = const(7)
_CONSENT = const(8)
_BATTERY = const(9)
_QUALITY = const(10)
_HUB_SILENT_MS = const(10000)  # no verified hub frame for this long: the link is down, no backlog resends
_BACKLOG_PER_SECOND = const(2)
_BACKLOG_GRACE = const(3)  # resend only records at least this many frames old (the hub may still be acking them)
_STATUS_EVERY_S = const(10)
_HUB_COLOUR_TTL_S = const(30)
# app.consent's gesture events and actions, app.palette's pattern codes (by number: const names cost no heap)
_CLICK = const(1)
_DOUBLE = const(2)
_NOTHING = const(0)
_GRANTED = const(1)
_REVOKED = const(2)
_P_CONFIRM = const(6)
_P_REVOKE = const(7)
_P_PROMPT = const(8)
_P_MISSING = const(9)
_Q_SENSOR_MISSING = const(16)  # protocol/records.py Q_SENSOR_MISSING
_MISSING_EVERY_S = const(30)
_MISSING_MS = const(3000)
_PROMPT_MS = const(30000)
# command bytes (protocol/records.py CMD_*)
_CMD_COLOUR = const(1)
_CMD_TIME = const(2)
_CMD_BACKLOG_ACK = const(3)
_CMD_CONSENT_PROMPT = const(4)
_CMD_GROUP_KEY = const(5)


class Badge:
    def __init__(self, hal, cfg, sensors, features=None, ring=None):
        self.hal = hal
        self.cfg = cfg
        rates = cfg["rates"]
        self.base = rates["ppg"]
        self.counter = storage.CounterStore()
        self.consent = consent_mod.Consent(storage.load_revision())
        self.gestures = consent_mod.Gestures()
        # the two big buffers may be made first by the caller, while the heap is still in one piece
        self.features = features or pipeline.Features(rates)
        self.sampler = Sampler(sensors, self.features, rates)
        self.palette = palette.Palette(cfg["cvd_safe"], cfg["led_count"], cfg["led_budget_ma"])
        self.arousal = palette.Arousal()
        self.link = Link(cfg)
        self.ring = ring or storage.Ring(600)
        self.values = [0] * telemetry.N_FIELDS
        telemetry.clear_physio(self.values)
        self.record = bytearray(telemetry.RECORD_LEN)
        self.backlog_rec = bytearray(telemetry.RECORD_LEN)
        self.led = bytearray(3)
        self.led_key = bytearray(5)  # pattern, r, g, b, period/64: publish the LED state only when it changes
        self.tick_no = 0
        self.seconds = 0
        self.last_hub_ms = -_HUB_SILENT_MS
        self.sent = [0, 0, 0, 0, 0]  # frames sent per type
        self.commands = 0
        self.time_offset = 0  # unix seconds at badge time 0, once the hub sent _CMD_TIME
        self.sampler.power(False)  # no consent at boot: every sensor in shutdown
        self.palette.update(False, False, False, 64, False, 0)
        # quality bits the badge always reports: a sensor that did not answer at bring-up (hal.sensors() gave None)
        self.status_bits = _Q_SENSOR_MISSING if sensors.ppg is None or sensors.acc is None else 0

    # ---- per tick ----
    def tick(self):
        hal = self.hal
        now = hal.ms()
        event = self.gestures.feed(hal.button(), now)
        if event:
            self.on_gesture(event, now)
        self.sampler.tick(self.consent.capturing())
        self.tick_no += 1
        if self.tick_no % self.base == 0:
            self.second(now)
        data = hal.radio.recv()
        while data is not None:
            self.on_packet(data, now)
            data = hal.radio.recv()
        self.show(now)

    def show(self, now):
        pal = self.palette
        pattern = pal.frame(now, self.led)
        self.hal.led(self.led)
        k = self.led_key
        b = pal.src
        per = pal.period >> 6
        if k[0] != pattern or k[1] != b[0] or k[2] != b[1] or k[3] != b[2] or k[4] != (per & 255):
            k[0], k[1], k[2], k[3], k[4] = pattern, b[0], b[1], b[2], per & 255
            self.hal.led_state(pattern, b, pal.period, now)

    # ---- wearer input ----
    def on_gesture(self, event, now):
        c = self.consent
        pal = self.palette
        if event == _CLICK:
            if c.sharing_colour():
                pal.next_hue(now)
            self.refresh(now)
            return
        if event == _DOUBLE and c.given():
            pal.undo_hue()  # the first click of the pair stepped the hue
        action = c.on_gesture(event)
        if action == _NOTHING:
            return
        self.hal.log("consent " + consent_mod.ACTION_NAMES[action] + " rev " + str(c.revision))
        if c.changed:
            storage.save_revision(c.revision)
            c.changed = False
        if action == _REVOKED:
            self.stop_capture()
            pal.show_overlay(_P_REVOKE, now)
            self.send_now(now)  # tell the hub at once (consent bits 0, new revision); it erases on its side
        elif action == _GRANTED:
            pal.show_overlay(_P_CONFIRM, now)
        if c.capturing() != self.sampler.powered:
            if c.capturing():
                self.sampler.power(True)
            else:
                self.stop_capture()
        self.refresh(now)

    def stop_capture(self):
        """Within the current sample tick: sensors off, kernel state and unsent physiology forgotten."""
        self.sampler.power(False)
        self.features.reset()
        self.arousal.reset()
        telemetry.clear_physio(self.values)
        if not self.consent.given():
            self.ring.clear()

    def refresh(self, now):
        c = self.consent
        v = self.values
        quality_ok = (v[_QUALITY] & (telemetry.Q_SKIN | telemetry.Q_HR)) == (telemetry.Q_SKIN | telemetry.Q_HR)
        self.palette.update(c.capturing(), c.sharing_colour() and not c.capturing(), c.paused,
                            self.arousal.value, quality_ok, now)

    # ---- per second ----
    def second(self, now):
        self.seconds += 1
        c = self.consent
        v = self.values
        if c.capturing():
            self.sampler.second(now)  # PPG LED loop, contact and the chip's measured rate
            self.features.step(v)
            self.sampler.correct(v)
            q = v[_QUALITY]
            self.arousal.update(v[_HR], v[_SCL], v[_SCR], q & telemetry.Q_HR, q & telemetry.Q_EDA)
        else:
            telemetry.clear_physio(v)
        self.refresh(now)
        if self.status_bits and self.seconds % _MISSING_EVERY_S == 1:  # from the first second on
            self.palette.show_overlay(_P_MISSING, now, _MISSING_MS)
        self.send_now(now)
        self.send_backlog(now)
        if self.seconds % _STATUS_EVERY_S == 0:
            self.hal.status(self)

    def fill_record(self, now):
        """Pack this second's record; returns the frame type (heartbeat unless consent allows telemetry)."""
        c = self.consent
        v = self.values
        pal = self.palette
        v[_CONSENT] = c.byte()
        v[_BATTERY] = self.hal.battery()
        if c.sharing_colour():
            v[_HUE] = pal.hue
            v[_CHROMA] = pal.chroma
            v[_COLOUR_AGE] = pal.colour_age(now)
        else:
            v[_HUE] = 0
            v[_CHROMA] = 0
            v[_COLOUR_AGE] = telemetry.COLOUR_AGE_NA
        rec = self.record
        if c.paused or not c.given():
            for i in range(telemetry.RECORD_LEN):
                rec[i] = 0
            rec[0] = v[_CONSENT]
            rec[1] = v[_BATTERY]
            rec[2] = (v[_QUALITY] if c.capturing() else 0) | self.status_bits
            return frame.HEARTBEAT
        if not c.capturing():
            telemetry.clear_physio(v)
        v[_QUALITY] |= self.status_bits
        telemetry.pack_into(rec, v)
        return frame.TELEMETRY

    def send_now(self, now):
        ftype = self.fill_record(now)
        ctr = self.counter.take()
        data = self.link.seal(ftype, ctr, self.record)
        self.hal.radio.send(data)
        self.sent[ftype] += 1
        if ftype == frame.TELEMETRY:
            self.ring.push(ctr, self.record)

    def send_backlog(self, now):
        if now - self.last_hub_ms > _HUB_SILENT_MS or not self.hal.radio.can_backlog():
            return
        newest = self.counter.next - 1 - _BACKLOG_GRACE
        rec = self.backlog_rec
        for _ in range(_BACKLOG_PER_SECOND):
            n = self.ring.next_resend(newest)
            if n < 0:
                return
            self.ring.record_into(n, rec)
            self.hal.radio.send_backlog(self.link.seal(frame.BACKLOG, self.ring.ctr_at(n), rec))
            self.sent[frame.BACKLOG] += 1

    # ---- hub input ----
    def on_packet(self, data, now):
        link = self.link
        if not link.accept(data):
            return
        self.last_hub_ms = now
        rec = link.record
        if link.ftype == frame.GROUP_COLOUR:
            ttl = rec[4] if rec[4] else 10
            self.palette.set_group(rec[0], rec[1], rec[2], ttl, now)
            self.refresh(now)
            return
        self.commands += 1
        cmd = rec[0]
        if cmd == _CMD_BACKLOG_ACK:
            self.ring.ack(u32(rec, 1))
        elif cmd == _CMD_COLOUR:
            self.palette.set_group(rec[1], rec[2], rec[3], _HUB_COLOUR_TTL_S, now)
            self.refresh(now)
        elif cmd == _CMD_TIME:
            self.time_offset = u32(rec, 1) - now // 1000
        elif cmd == _CMD_CONSENT_PROMPT:
            if not self.consent.given():  # a prompt only: consent is given on the badge, by the wearer
                self.palette.show_overlay(_P_PROMPT, now, _PROMPT_MS)
        elif cmd == _CMD_GROUP_KEY:
            if self.link.group_key_part(rec):
                self.hal.log("group key installed for group " + str(self.link.group_id))

    def run(self):
        hal = self.hal
        while True:
            n = hal.wait_tick()
            if n <= 0:
                return
            for _ in range(n):
                self.tick()
