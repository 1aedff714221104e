# Consent, sans-I/O. The wearer decides on the badge itself; nothing the hub sends can grant consent.
#   no consent (the default at every boot): sensors shut down, heartbeat frames only
#   LONG press (>= 3 s): consent to both scopes (physiology + colour), or revoke if consent is given
#   MEDIUM press: pause / resume capture (paused frames are heartbeats)
#   DOUBLE click: toggle the physiology scope (colour-only sharing and back)
# Every grant, revocation or scope change bumps the 4-bit consent revision, which the badge persists and sends in
# every frame so the hub can tell consent epochs apart (and erase on revocation).
try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# Button gestures, sans-I/O: Gestures.feed(down, now_ms) once per sample tick gives an event code (or NONE).
#   CLICK   released after < MEDIUM_MS: fired on release, so the LED answers within one tick
#   DOUBLE  a second click within DOUBLE_GAP_MS of the first (the app undoes the first click's action)
#   MEDIUM  released after MEDIUM_MS .. LONG_MS
#   LONG    held for LONG_MS: fired while still held, so the wearer sees the confirmation without letting go
_NONE = const(0)
_CLICK = const(1)
_DOUBLE = const(2)
_MEDIUM = const(3)
_LONG = const(4)

_DEBOUNCE_MS = const(30)
_MEDIUM_MS = const(1000)
_LONG_MS = const(3000)
_DOUBLE_GAP_MS = const(500)


class Gestures:
    def __init__(self):
        self.down = False
        self.since = 0
        self.long_fired = False
        self.last_click = -100000

    def feed(self, down, now):
        if down and not self.down:
            self.down = True
            self.since = now
            self.long_fired = False
            return _NONE
        if down:
            if not self.long_fired and now - self.since >= _LONG_MS:
                self.long_fired = True
                return _LONG
            return _NONE
        if not self.down:
            return _NONE
        self.down = False
        held = now - self.since
        if self.long_fired or held < _DEBOUNCE_MS:
            return _NONE
        if held >= _MEDIUM_MS:
            return _MEDIUM
        if self.since - self.last_click <= _DOUBLE_GAP_MS:
            self.last_click = -100000
            return _DOUBLE
        self.last_click = now
        return _CLICK


_CONSENT_PHYSIO = const(1)
_CONSENT_COLOUR = const(2)
_CONSENT_PAUSED = const(4)

# Actions returned by on_gesture / the methods, for the app to act on (LED confirmation, sensor power, frames).
_NOTHING = const(0)
_GRANTED = const(1)
_REVOKED = const(2)
_PAUSED = const(3)
_RESUMED = const(4)
_SCOPE = const(5)
ACTION_NAMES = "nothing granted revoked paused resumed scope".split()  # one string: no qstr per name


class Consent:
    def __init__(self, revision=0):
        self.physio = False
        self.colour = False
        self.paused = False
        self.revision = revision & 15
        self.changed = False  # the revision needs persisting

    def given(self):
        return self.physio or self.colour

    def capturing(self):
        """Physiology capture on: sensors powered and sampled."""
        return self.physio and not self.paused

    def sharing_colour(self):
        return self.colour and not self.paused

    def byte(self):
        b = self.revision << 4
        if self.physio:
            b |= _CONSENT_PHYSIO
        if self.colour:
            b |= _CONSENT_COLOUR
        if self.paused:
            b |= _CONSENT_PAUSED
        return b

    def _bump(self):
        self.revision = (self.revision + 1) & 15
        self.changed = True

    def grant(self, physio=True, colour=True):
        self.physio = physio
        self.colour = colour
        self.paused = False
        self._bump()
        return _GRANTED

    def revoke(self):
        if not self.given():
            return _NOTHING
        self.physio = False
        self.colour = False
        self.paused = False
        self._bump()
        return _REVOKED

    def toggle_pause(self):
        if not self.given():
            return _NOTHING
        self.paused = not self.paused
        return _PAUSED if self.paused else _RESUMED

    def toggle_physio(self):
        if not self.given():
            return _NOTHING
        self.physio = not self.physio
        self.colour = True
        self._bump()
        return _SCOPE

    def on_gesture(self, event):
        if event == _LONG:
            return self.revoke() if self.given() else self.grant()
        if event == _MEDIUM:
            return self.toggle_pause()
        if event == _DOUBLE:
            return self.toggle_physio()
        return _NOTHING
