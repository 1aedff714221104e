# The wearer's LED colour, sans-I/O (the cove's colours: docs/ARCHITECTURE.md, "Scoring"):
# - hue is self-reported (button clicks step through 8 hues); valence is never inferred from physiology
# - arousal (0-255, from the badge's own features) drives saturation and brightness (Valdez & Mehrabian 1994)
# - cvd_safe swaps the hue wheel for the Okabe-Ito palette (distinguishable with colour-vision deficiency)
# - low signal quality desaturates; the hub's group colour blends in while its ttl lasts
# - the total LED current stays under led_budget_ma (WS2812: ~20 mA per channel at 255)
# - colour is never the only channel: the blink/pulse pattern shows capture state, and the pulse period arousal
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# Patterns (what the LED does over time). The pattern alone tells whether capture is on. The codes are part of
# the HAL interface (led_state) and app.badge uses them by number: const names with _ cost no heap.
_OFF = const(0)
_IDLE = const(1)  # no consent: one short dim blink every 3 s, nothing captured
_PULSE = const(2)  # capturing physiology: breathing, period 4 s (calm) .. 1 s (aroused)
_STEADY = const(3)  # colour-only consent: steady light, no physiology captured
_PAUSED = const(4)  # paused: double blink every 2 s
_SAFE = const(5)  # safe mode (bad config/storage): red/amber alternating at 2 Hz, never captures
_CONFIRM = const(6)  # consent given: three green flashes
_REVOKE = const(7)  # consent revoked: three white flashes, then IDLE
_PROMPT = const(8)  # the hub asks the wearer to consider consenting: slow blue breathing (consent stays manual)

_HUE_STEPS = const(8)
_MA_PER_CHANNEL = const(20)
_GROUP_WEIGHT = const(96)  # of 256: how strongly the group colour blends into the wearer's own
_OVERLAY_MS = const(1200)
_PROMPT_MS = const(30000)

# orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, white (r, g, b each)
OKABE_ITO = bytes((230, 159, 0, 86, 180, 233, 0, 158, 115, 240, 228, 66, 0, 114, 178, 213, 94, 0, 204, 121, 167,
                   255, 255, 255))


def hue_rgb(h, out):
    """Fully saturated, full-value colour for hue h (0-255 = 0-360 degrees) into out[0:3], integers only."""
    region = (h * 6) >> 8
    rem = (h * 6) & 255
    q = 255 - rem
    t = rem
    if region == 0:
        out[0], out[1], out[2] = 255, t, 0
    elif region == 1:
        out[0], out[1], out[2] = q, 255, 0
    elif region == 2:
        out[0], out[1], out[2] = 0, 255, t
    elif region == 3:
        out[0], out[1], out[2] = 0, q, 255
    elif region == 4:
        out[0], out[1], out[2] = t, 0, 255
    else:
        out[0], out[1], out[2] = 255, 0, q


def triangle(t, period, lo, hi):
    """Integer triangle wave lo..hi..lo over `period` ms."""
    if period <= 0:
        return hi
    phase = t % period
    half = period >> 1
    if phase < half:
        return lo + (hi - lo) * phase // half
    return hi - (hi - lo) * (phase - half) // (period - half)


class Arousal:
    """A display-only arousal estimate (0-255) from HR, SCL and SCR rate against slow per-wearer baselines.
    The hub computes the real, baseline-normalised arousal; this just makes the LED respond on the badge."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.hr_base = 0  # bpm * 16
        self.scl_base = 0  # 0.01 uS * 16
        self.value = 64

    def update(self, hr, scl, scr, hr_ok, eda_ok):
        score = 64
        if hr_ok and hr > 0:
            if self.hr_base == 0:
                self.hr_base = hr << 4
            self.hr_base += ((hr << 4) - self.hr_base) >> 6
            score += 6 * (hr - (self.hr_base >> 4))
        if eda_ok and scl != 0xFFFF:
            if self.scl_base == 0:
                self.scl_base = scl << 4
            self.scl_base += ((scl << 4) - self.scl_base) >> 6
            base = self.scl_base >> 4
            if base > 0:
                score += 200 * (scl - base) // base
            if scr != 255:
                score += 10 * scr
        if score < 0:
            score = 0
        elif score > 255:
            score = 255
        # smooth so the LED does not flicker with every beat
        self.value += (score - self.value) >> 2
        return self.value


class Palette:
    def __init__(self, cvd_safe=False, led_count=1, budget_ma=12):
        self.cvd_safe = cvd_safe
        self.led_count = led_count
        self.budget_ma = budget_ma
        self.hue = 0
        self.prev_hue = 0
        self.chroma = 200
        self.reported_ms = -1  # when the wearer last picked a hue; -1 = never
        self.group = bytearray(3)
        self.group_until = 0
        self.base = bytearray(3)  # colour before the pattern's level
        self.pattern = _IDLE
        self.period = 3000
        self.overlay = _OFF
        self.overlay_until = 0
        self.arousal = 64
        self.quality_ok = False
        self._tmp = bytearray(3)
        self.src = self.base

    # wearer input
    def next_hue(self, now):
        self.prev_hue = self.hue
        self.hue = (self.hue + 256 // _HUE_STEPS) & 255
        self.reported_ms = now

    def undo_hue(self):
        self.hue = self.prev_hue

    def colour_age(self, now):
        """Age of the self-report in 4 s units (254 max), 255 = never reported."""
        if self.reported_ms < 0:
            return 255
        age = (now - self.reported_ms) // 4000
        return 254 if age > 254 else age

    # hub input
    def set_group(self, r, g, b, ttl_s, now):
        self.group[0] = r
        self.group[1] = g
        self.group[2] = b
        self.group_until = now + ttl_s * 1000

    def show_overlay(self, pattern, now, ms=_OVERLAY_MS):
        self.overlay = pattern
        self.overlay_until = now + ms

    # state
    def update(self, capturing, colour_only, paused, arousal, quality_ok, now):
        """Recompute the base colour and the pattern from consent and features (once a second, or on input)."""
        self.arousal = arousal
        self.quality_ok = quality_ok
        if paused:
            self.pattern = _PAUSED
            self.period = 2000
        elif capturing:
            self.pattern = _PULSE
            self.period = 4000 - arousal * 3000 // 255
        elif colour_only:
            self.pattern = _STEADY
            self.period = 0
        else:
            self.pattern = _IDLE
            self.period = 3000
        self._compose(capturing, colour_only, now)

    def _compose(self, capturing, colour_only, now):
        c = self.base
        if not (capturing or colour_only):
            c[0] = c[1] = c[2] = 40  # neutral dim white: nothing is being reported
        else:
            if self.cvd_safe:
                i = 3 * ((self.hue * _HUE_STEPS) >> 8)
                c[0], c[1], c[2] = OKABE_ITO[i], OKABE_ITO[i + 1], OKABE_ITO[i + 2]
            else:
                hue_rgb(self.hue, c)
            sat = 96 + self.arousal * 159 // 255
            if capturing and not self.quality_ok:
                sat = sat >> 2  # low quality: washed out, so the wearer sees the reading is unreliable
            val = 80 + self.arousal * 175 // 255
            for i in range(3):
                c[i] = (255 - (255 - c[i]) * sat // 255) * val // 255
            if now < self.group_until:
                g = self.group
                for i in range(3):
                    c[i] = (c[i] * (256 - _GROUP_WEIGHT) + g[i] * _GROUP_WEIGHT) >> 8
        self._cap(c)

    def _cap(self, c):
        total = c[0] + c[1] + c[2]
        if total == 0:
            return
        # current (mA) = led_count * total * _MA_PER_CHANNEL / 255
        limit = self.budget_ma * 255 // (self.led_count * _MA_PER_CHANNEL)
        if total > limit:
            for i in range(3):
                c[i] = c[i] * limit // total

    def active_pattern(self, now):
        if self.overlay != _OFF and now < self.overlay_until:
            return self.overlay
        self.overlay = _OFF
        return self.pattern

    def level(self, pattern, now):
        """Brightness multiplier 0-255 of `pattern` at time now (ms)."""
        if pattern == _PULSE:
            return triangle(now, self.period, 64, 255)
        if pattern == _STEADY:
            return 255
        if pattern == _IDLE:
            return 255 if now % 3000 < 120 else 0
        if pattern == _PAUSED:
            p = now % 2000
            return 255 if p < 150 or 300 <= p < 450 else 0
        if pattern == _SAFE or pattern == _CONFIRM or pattern == _REVOKE:
            return 255 if now % 400 < 200 else 0
        if pattern == _PROMPT:
            return triangle(now, 3000, 0, 255)
        return 0

    def frame(self, now, out):
        """The LED colour right now into out[0:3]; returns the active pattern."""
        pattern = self.active_pattern(now)
        src = self.base
        if pattern == _CONFIRM:
            src = self._tmp
            src[0], src[1], src[2] = 0, 120, 0
        elif pattern == _REVOKE:
            src = self._tmp
            src[0], src[1], src[2] = 60, 60, 60
        elif pattern == _SAFE:
            src = self._tmp
            if now % 800 < 400:
                src[0], src[1], src[2] = 120, 0, 0
            else:
                src[0], src[1], src[2] = 100, 60, 0
        elif pattern == _PROMPT:
            src = self._tmp
            src[0], src[1], src[2] = 0, 40, 120
        if src is self._tmp:
            self._cap(src)
        self.src = src  # the colour before the pattern's level (what the LED state reports)
        lv = self.level(pattern, now)
        for i in range(3):
            out[i] = src[i] * lv // 255
        return pattern
