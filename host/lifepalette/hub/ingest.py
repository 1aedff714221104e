"""The hub's ingest core: synchronous, no sockets, no event loop, no clock of its own.

verify -> consent ledger -> batch -> commit -> acknowledge. Transports (and tests, by direct calls) hand it frames
with `ingest`; `flush` commits the batch and reports, per badge, the counter up to which everything is stored
through `on_acked`. `ingest` never raises: every rejection is a named reason counted in `rejections`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifepalette.crypto import open_frame
from lifepalette.errors import LifePaletteError, UsageError
from lifepalette.hub.consent import ConsentLedger, colour_allowed, physio_allowed
from lifepalette.hub.sitekey import derive_device_key, device_keys, load_site_key
from lifepalette.hub.store import PHYSIO_FIELDS, Receipt, Store
from lifepalette.hub.views import BadgeState
from protocol import frame as wire
from protocol import records
from protocol.verifier import Verdict, Verifier

log = logging.getLogger("lifepalette.hub")
FLUSH_LOG_INTERVAL_S = 30.0
FLUSH_RETRY_MIN_S, FLUSH_RETRY_MAX_S = 0.2, 5.0  # automatic retries of a failed flush back off between these

PHYSIO_NA = {"hr_bpm": records.HR_NA, "rmssd_ms": records.RMSSD_NA, "scl": records.SCL_NA,
             "scr_per_min": records.SCR_NA, "motion": records.MOTION_NA}


# The badge's backlog ring holds its last RING_SLOTS telemetry records (firmware/app/start.py: storage.Ring(600)).
RING_SLOTS = 600
# A gap with this many newer frames of any type (heartbeats too, which are never in the ring) is given up, so one
# badge's tracker stays bounded: about 40 minutes at 1 Hz, during which the badge re-sent its ring many times over.
GAP_SPAN_MAX = 4 * RING_SLOTS
# Frames the badge keeps in its ring (heartbeats are never there).
RING_TYPES = (wire.TELEMETRY, wire.BACKLOG)


class AckTracker:
    """Per badge: the highest counter H such that every frame <= H is stored or can never come.

    A backlog ack tells the badge to delete every ring entry at or below it, so acking past a frame the badge still
    holds (dropped on air, never stored) would lose it. A gap is therefore skipped only when it provably cannot be
    filled: RING_SLOTS newer telemetry/backlog frames are stored, so the badge's ring (oldest overwritten first) has
    overwritten it, which is also what a reboot's counter jump or a lost ring looks like once the badge sends on.
    Time alone proves nothing: a badge out of range for an hour still holds its frames.
    """

    def __init__(self, base: int, ring_slots: int = RING_SLOTS, span_max: int = GAP_SPAN_MAX):
        self.base = base
        self.ring_slots = ring_slots
        self.span_max = span_max
        self.above: set[int] = set()  # stored counters above base
        self.ring_above: set[int] = set()  # those of frames a ring holds (telemetry, backlog)

    def add(self, frames: list[tuple[int, int]]) -> int:
        """Record stored (ctr, ftype) pairs; returns the counter up to which the badge may be acknowledged."""
        for ctr, ftype in frames:
            if ctr > self.base:
                self.above.add(ctr)
                if ftype in RING_TYPES:
                    self.ring_above.add(ctr)
        self._advance()
        while self.above and (len(self.ring_above) >= self.ring_slots or len(self.above) > self.span_max):
            self.base = min(self.above) - 1  # the lowest gap cannot be filled any more
            self._advance()
        return self.base

    def _advance(self) -> None:
        while self.base + 1 in self.above:
            self.base += 1
            self.above.remove(self.base)
            self.ring_above.discard(self.base)


class IngestCore:
    """Verified, consent-enforced, batched storage of badge frames, with acknowledgements. No I/O but SQLite.

    `scorer` (optional) receives each live record that may be scored; `clock` and `monotonic` are injectable so
    tests drive time directly.
    """

    def __init__(self, db_path: str | Path, *, scorer: Any = None, flush_max: int = 500,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.db_path = Path(db_path)
        self.store = Store(self.db_path)
        site_key = load_site_key(self.db_path, create=True)
        if site_key is None:  # another process created it and it vanished again before we could read it
            raise LifePaletteError(f"the site key beside {self.db_path} disappeared while the hub was opening it")
        self.site_key = site_key
        self.keys = device_keys(self.site_key, self.store.device_ids())
        self.verifier = Verifier(self.keys, self.store.counters, opener=open_frame)
        self.ledger = ConsentLedger(self.store.load_epochs())
        self.scorer = scorer
        self.flush_max = flush_max
        self.clock = clock
        self.monotonic = monotonic
        self.badges: dict[int, BadgeState] = {}
        self.routes: dict[int, tuple[Any, Any]] = {}
        self.listeners: dict[Any, float] = {}  # (transport, address) -> last heard: group colour goes to these
        self.rejections: Counter[str] = Counter()
        self.internal_errors = 0
        self.accepted = 0
        self._ack_trackers: dict[int, AckTracker] = {}
        self._scored_second: dict[int, int] = {}
        self.acked: dict[int, int] = {}
        self.receipts = [r.as_dict() for r in self.store.receipts()]
        self.last_receipts: list[Receipt] = []  # those the latest flush committed
        self.flush_failures = 0
        self._flush_log = RateLimitedLog(FLUSH_LOG_INTERVAL_S, monotonic)
        self._retry_at: float | None = None  # after a failed flush, the automatic flushes back off until then
        self._retry_after_s = 0.0

    # -- enrolment --------------------------------------------------------------------------------------------
    def enroll(self, dev_id: int) -> bytes:
        """Register a badge and return its key (for the config writer)."""
        self.store.register_device(dev_id)
        key = derive_device_key(self.site_key, dev_id)
        self.keys[dev_id] = key
        return key

    # -- ingest -----------------------------------------------------------------------------------------------
    def ingest(self, data: bytes, link: str = "udp", route: tuple[Any, Any] | None = None,
               rssi: int | None = None) -> Verdict:
        """Verify, enforce consent and queue one frame for storage. Never raises; returns the verdict."""
        verdict = self.verifier.verify(data)
        if not verdict.ok:
            self.rejections[verdict.reason] += 1
            return verdict
        try:
            self._accept(verdict, link, route, rssi)
        except Exception:  # a bug here must cost one frame, never the hub
            self.internal_errors += 1
            log.exception("ingest failed for dev %s ctr %s", verdict.dev_id, verdict.ctr)
        if self.store.pending() >= self.flush_max and self.flush_due():
            self.flush()
        return verdict

    def _accept(self, v: Verdict, link: str, route: tuple[Any, Any] | None, rssi: int | None) -> None:
        now = self.clock()
        dev, ctr, ftype, rec = v.dev_id, v.ctr, v.ftype, v.record
        self.accepted += 1
        if ftype == wire.HEARTBEAT:
            consent, battery, quality = rec[0], rec[1], rec[2]
            fields = None
        else:
            fields = records.unpack_telemetry(rec)
            consent, battery, quality = fields["consent"], fields["battery"], fields["quality"]
        live = ftype != wire.BACKLOG
        if live:
            obs = self.ledger.observe_live(dev, ctr, consent, now)
            for epoch in obs.changed:
                self.store.note_epoch(epoch)
            if obs.revoked is not None:
                self.store.queue_erasure(dev, obs.revoked.epoch, "revocation")
                if self.scorer is not None:
                    self.scorer.forget(dev)
            epoch_no, keep_physio = obs.epoch.epoch, physio_allowed(consent) and not obs.epoch.erased
        else:
            epoch_no, keep_physio = self.ledger.backlog_epoch(dev, consent)
        keep_colour = colour_allowed(consent)
        hue = fields["hue"] if fields and keep_colour else None
        chroma = fields["chroma"] if fields and keep_colour else None
        age = fields["colour_age"] if fields and keep_colour else None
        # plain tuples in FrameRow / PhysioRow field order: a NamedTuple constructor per row costs about a tenth of
        # the ingest rate (bench_hub); test_hub_ingest reads the batch back through FrameRow._make
        self.store.add_frame((dev, ctr, ftype, now, link, epoch_no, consent, battery, quality, hue, chroma, age),
                             _physio_row(dev, ctr, epoch_no, fields) if fields and keep_physio else None)
        if live:
            self._update_badge(dev, now, link, consent, battery, quality, rssi, hue, chroma)
            second = int(now)
            # a badge sends one record a second: more (a flood, valid or replayed badge) must not grow the scorer
            if fields is not None and self.scorer is not None and self._scored_second.get(dev) != second:
                self._scored_second[dev] = second
                self.scorer.add(dev, second, _score_fields(fields, keep_physio, keep_colour))
        if route is not None:
            self.routes[dev] = route
            self.listeners[route] = now

    def _update_badge(self, dev, now, link, consent, battery, quality, rssi, hue, chroma) -> None:
        badge = self.badges.get(dev)
        if badge is None:
            badge = self.badges[dev] = BadgeState(dev, now, link)
        if quality & records.Q_SAFE_MODE and not badge.quality & records.Q_SAFE_MODE:
            log.warning("badge %d is in SAFE MODE: it will not capture (its serial log says why)", dev)
        badge.last_seen, badge.link, badge.consent, badge.quality = now, link, consent, quality
        badge.battery, badge.charging = battery & 0x7F, bool(battery & 0x80)
        badge.frames += 1
        badge.hue, badge.chroma = hue, chroma
        if rssi is not None:
            badge.rssi = rssi

    # -- storage and acknowledgements -------------------------------------------------------------------------
    def flush(self) -> int:
        """Commit the batch; then acknowledge to each badge the counter up to which everything is stored.

        A failed commit acknowledges nothing and the store holds the batch for the next flush (erasures stay
        pending meanwhile); the failure is logged once per interval, not once per retry."""
        committed: dict[int, list[tuple[int, int]]] = {}
        for row in self.store.batch.frames:
            committed.setdefault(row[0], []).append((row[1], row[2]))
        try:
            stored, receipts = self.store.flush()
        except Exception as exc:
            self.internal_errors += 1
            self.flush_failures += 1
            self._retry_after_s = min(FLUSH_RETRY_MAX_S, max(FLUSH_RETRY_MIN_S, 2 * self._retry_after_s))
            self._retry_at = self.monotonic() + self._retry_after_s
            self._flush_log.error("store flush failed (%s: %s); the batch is held and retried, %d erasure(s) "
                                  "pending", type(exc).__name__, exc, len(self.store.batch.erasures))
            return 0
        self.last_receipts = receipts
        self._retry_at, self._retry_after_s = None, 0.0
        for receipt in receipts:
            self.receipts.insert(0, receipt.as_dict())
        for dev, frames in committed.items():
            tracker = self._ack_trackers.get(dev)
            if tracker is None:  # after a restart: what is stored of this badge, back to a safe floor
                floor, tail = self.store.stored_tail(dev, RING_SLOTS, GAP_SPAN_MAX)
                tracker = self._ack_trackers[dev] = AckTracker(floor)
                frames = tail + frames
            ctr = tracker.add(frames)
            if ctr > self.acked.get(dev, 0):
                self.acked[dev] = ctr
                self.on_acked(dev, ctr)
        return stored

    def flush_due(self) -> bool:
        """Whether an automatic flush should run now: not while backing off after a failed one (an explicit
        `flush()`, e.g. an erasure's, always tries)."""
        return self._retry_at is None or self.monotonic() >= self._retry_at

    def on_acked(self, dev_id: int, ctr: int) -> None:
        """Everything up to `ctr` from this badge is stored. The runtime sends the backlog ack from here."""

    # -- erasure ----------------------------------------------------------------------------------------------
    def erase(self, dev_id: int, epoch: int | None = None, reason: str = "operator") -> dict:
        """Erase a badge's physiology (one epoch, or every epoch), the one durable path while the hub runs.

        The ledger marks the epochs erased first (no physiology is kept for them from this frame on), the intent
        is journaled, and the flush carries it out with the batch. The receipt dict comes back; if the commit
        failed (disk full) it has "pending": true, and every flush retries until the receipt is written."""
        self._check_erasable(dev_id, epoch)
        for e in self.ledger.mark_erased(dev_id, epoch):
            self.store.note_epoch(e)
        current = self.ledger.current(dev_id)
        if self.scorer is not None and (epoch is None or (current is not None and current.epoch == epoch)):
            self.scorer.forget(dev_id)
        intent = self.store.queue_erasure(dev_id, epoch, reason)
        self.flush()
        for receipt in self.last_receipts:
            if receipt.intent == intent.id:
                return {**receipt.as_dict(), "pending": False}
        return {"at": intent.at, "dev_id": dev_id, "epoch": epoch, "what": "physiology", "rows": None,
                "reason": reason, "clock_synced": intent.clock_synced, "scrubbed": False, "pending": True}

    def _check_erasable(self, dev_id: int, epoch: int | None) -> None:
        known = dev_id in self.keys or self.ledger.current(dev_id) is not None or self.store.knows_device(dev_id)
        if not known:
            raise UsageError(f"device {dev_id} is not enrolled in {self.db_path} and nothing is stored for it")
        if epoch is not None and not (any(e.epoch == epoch for e in self.ledger.by_dev.get(dev_id, ()))
                                      or self.store.knows_epoch(dev_id, epoch)):
            raise UsageError(f"device {dev_id} has no consent epoch {epoch} in {self.db_path}")

    def adopt_erasures(self) -> list[Receipt]:
        """Take over what was erased in the file before this process held it (journaled intents it lacks, epochs
        marked erased): the ledger must never hold an erased epoch open."""
        receipts = self.store.replay_journal()
        for receipt in receipts:
            self.receipts.insert(0, receipt.as_dict())
        known = {(e.dev_id, e.epoch): e for epochs in self.ledger.by_dev.values() for e in epochs}
        for e in self.store.load_epochs():
            mine = known.get((e.dev_id, e.epoch))
            if e.erased and mine is not None and not mine.erased:
                mine.erased = True
                self.store.note_epoch(mine)
        return receipts


class RateLimitedLog:
    """One log line per interval for a repeating condition, with the count of repeats it stands for."""

    def __init__(self, interval_s: float, monotonic: Callable[[], float]):
        self.interval_s = interval_s
        self.monotonic = monotonic
        self._last: float | None = None
        self._suppressed = 0

    def error(self, message: str, *args: Any) -> None:
        now = self.monotonic()
        if self._last is not None and now - self._last < self.interval_s:
            self._suppressed += 1
            return
        if self._suppressed:
            message += f" ({self._suppressed} more since the last report)"
        log.error(message, *args)
        self._last, self._suppressed = now, 0


def _physio_row(dev: int, ctr: int, epoch: int, fields: dict) -> tuple | None:
    """A PhysioRow's values (a plain tuple, see `_accept`), or None when the frame carries no physiology."""
    values = [None if fields[name] == PHYSIO_NA[name] else fields[name] for name in PHYSIO_FIELDS]
    if all(value is None for value in values):
        return None
    return (dev, ctr, epoch, *values)


def _score_fields(fields: dict, physio: bool, colour: bool) -> dict:
    """What the scorer may see of a record: withheld physiology and colour read as 'not available'."""
    out = dict(fields)
    if not physio:
        out.update(PHYSIO_NA)
    if not colour:
        out["hue"] = out["chroma"] = 0
        out["colour_age"] = records.COLOUR_AGE_NA
    return out
