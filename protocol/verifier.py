"""The hub's (and badge's) frame verifier: every check of PROTOCOL.md §5 in order, each failure a named reason.

Order: length (structure), version, unsealed, type, unknown_device, counter (duplicate / replay, before any
cipher work), mic, semantic. The stored counter advances only after the MIC passes. Backlog frames (type 4)
are accepted by MIC without the monotonic-counter rule and do not move the counter (the store dedups them).
`verify()` never raises for any input: malformed data is a rejection with a reason, never an exception.
"""

from protocol import frame as _frame
from protocol import records as _records

REASONS = ("length", "version", "unsealed", "type", "unknown_device", "replay", "duplicate", "mic", "semantic")

ANY = None  # direction: infer from the type (for tools that open frames of every type)


class Verdict:
    __slots__ = ("ok", "reason", "dev_id", "ctr", "ftype", "record", "frame")

    def __init__(self, ok, reason, dev_id, ctr, ftype, record, frame):
        self.ok = ok
        self.reason = reason  # None when ok
        self.dev_id = dev_id
        self.ctr = ctr
        self.ftype = ftype
        self.record = record  # 13 plaintext bytes when ok, else None
        self.frame = frame  # the 24-byte frame (None if the structure was bad)

    @property
    def type_name(self):
        t = self.ftype
        return _frame.TYPE_NAMES[t] if t is not None and 0 <= t < len(_frame.TYPE_NAMES) else None

    def __repr__(self):
        return "Verdict(ok=%r, reason=%r, dev_id=%r, ctr=%r, ftype=%r)" % (
            self.ok, self.reason, self.dev_id, self.ctr, self.ftype)


class MemoryCounters:
    """Last accepted counter per dev_id, in memory. The hub passes an SQLite-backed object with get/set."""

    def __init__(self):
        self._last = {}

    def get(self, dev_id):
        return self._last.get(dev_id, -1)

    def set(self, dev_id, ctr):
        self._last[dev_id] = ctr


class Verifier:
    """verify(data) -> Verdict for a 24-byte frame or a 31-byte advert.

    keys: dict dev_id -> 16-byte key, or any object with .get(dev_id) (None = unknown device).
    counters: object with get(dev_id) -> last ctr or -1, and set(dev_id, ctr); default MemoryCounters().
    direction: TO_HUB accepts telemetry, heartbeat, backlog; TO_BADGE accepts group colour and command;
    ANY (None) accepts every type, each opened in its own direction with a separate counter space.
    revisions: optional container of known consent revisions (None = any revision).
    opener: open_frame-compatible function; default the pure CCM (protocol.frame.open_frame). The host injects its
    fast path (lifepalette.crypto.open_frame, cryptography's AESCCM): protocol/ never imports the host.
    """

    def __init__(self, keys, counters=None, direction=_frame.TO_HUB, revisions=None, opener=None,
                 company=_frame.COMPANY_ID):
        self.keys = keys
        self.counters = counters if counters is not None else MemoryCounters()
        # Counters for the other direction when direction is ANY (hub and badge counters are separate spaces).
        self._badge_counters = MemoryCounters() if direction is ANY else self.counters
        self.direction = direction
        self.revisions = revisions
        self.company = company
        self.open = opener or _frame.open_frame
        self.counts = {"ok": 0}
        for r in REASONS:
            self.counts[r] = 0
        self._last_frame = {}  # dev_id + (direction << 16) -> bytes of the last accepted frame, for benign duplicates
        mask = 0
        for d in (_frame.TO_HUB, _frame.TO_BADGE):
            if direction is ANY or d == direction:
                mask |= _frame.type_mask(d)
        self._allowed = mask
        self._advert_prefix = _frame.advert_prefix(company)

    def _reject(self, reason, dev_id=None, ctr=None, ftype=None, data=None):
        self.counts[reason] += 1
        return Verdict(False, reason, dev_id, ctr, ftype, None, data)

    def verify(self, data):
        """Verdict for any input: malformed data is a named rejection, never an exception. Errors raised by the
        keys or counters backends (say, a failing disk under the hub's store) do propagate: a broken store must
        not look like a stream of bad frames."""
        try:
            inner = _frame.unwrap(data, self._advert_prefix)
            if inner is None:
                return self._reject("length")
            data = bytes(inner)
        except Exception:  # not a byte string at all (None, str, a list of big ints...)
            return self._reject("length")
        if len(data) != _frame.FRAME_LEN:  # an object whose len() lied
            return self._reject("length")
        _hdr, ftype, dev_id, ctr = _frame.parse_header(data)
        reason = _frame.check_header(data, self._allowed)
        if reason is not None:
            return self._reject(reason, dev_id, ctr, ftype, data)
        key = self.keys.get(dev_id)
        if key is None or not _is_key(key):
            return self._reject("unknown_device", dev_id, ctr, ftype, data)
        direction = _frame.direction_of(ftype)
        counters = self._badge_counters if direction == _frame.TO_BADGE else self.counters
        backlog = ftype == _frame.BACKLOG
        if not backlog:
            last = counters.get(dev_id)
            if ctr <= last:
                if ctr == last and self._last_frame.get(dev_id | (direction << 16)) == data:
                    return self._reject("duplicate", dev_id, ctr, ftype, data)
                return self._reject("replay", dev_id, ctr, ftype, data)
        try:
            record = self.open(key, data, direction)
        except Exception:  # a key the cipher refuses cannot authenticate anything
            record = None
        if record is None:
            return self._reject("mic", dev_id, ctr, ftype, data)
        if not backlog:
            # Authentic: this counter is spent even if the content fails the semantic checks below.
            counters.set(dev_id, ctr)
            self._last_frame[dev_id | (direction << 16)] = data
        if not _records.check_record(ftype, record, self.revisions):
            return self._reject("semantic", dev_id, ctr, ftype, data)
        self.counts["ok"] += 1
        return Verdict(True, None, dev_id, ctr, ftype, record, data)


def _is_key(key):
    try:
        return len(key) == 16
    except Exception:
        return False
