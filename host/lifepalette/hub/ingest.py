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
from lifepalette.errors import LifePaletteError
from lifepalette.hub.consent import ConsentLedger, colour_allowed, physio_allowed
from lifepalette.hub.sitekey import derive_device_key, device_keys, load_site_key
from lifepalette.hub.store import PHYSIO_FIELDS, Store
from lifepalette.hub.views import BadgeState
from protocol import frame as wire
from protocol import records
from protocol.verifier import Verdict, Verifier

log = logging.getLogger("lifepalette.hub")

PHYSIO_NA = {"hr_bpm": records.HR_NA, "rmssd_ms": records.RMSSD_NA, "scl": records.SCL_NA,
             "scr_per_min": records.SCR_NA, "motion": records.MOTION_NA}


class AckTracker:
    """Per badge: the highest counter H such that every frame <= H is stored (or known never to come).

    A backlog ack covers every frame at or below it, so acking the highest stored counter would tell the badge to
    drop frames lost on air. Gaps are waited out instead: the badge re-sends unacked frames as backlog when a
    link is up; a gap still open after `gap_timeout_s` (a counter jump after a badge reboot) is skipped.
    """

    def __init__(self, base: int, gap_timeout_s: float):
        self.base = base
        self.gap_timeout_s = gap_timeout_s
        self.above: set[int] = set()
        self.gap_since: float | None = None

    def add(self, ctrs: list[int], now: float) -> int:
        self.above.update(c for c in ctrs if c > self.base)
        self._advance()
        if self.above:
            if self.gap_since is None:
                self.gap_since = now
            elif now - self.gap_since >= self.gap_timeout_s:
                self.base = min(self.above) - 1
                self._advance()
                self.gap_since = now if self.above else None
        return self.base

    def _advance(self) -> None:
        moved = False
        while self.base + 1 in self.above:
            self.above.remove(self.base + 1)
            self.base += 1
            moved = True
        if moved or not self.above:
            self.gap_since = None


class IngestCore:
    """Verified, consent-enforced, batched storage of badge frames, with acknowledgements. No I/O but SQLite.

    `scorer` (optional) receives each live record that may be scored; `clock` and `monotonic` are injectable so
    tests drive time directly.
    """

    def __init__(self, db_path: str | Path, *, scorer: Any = None, flush_max: int = 500,
                 gap_timeout_s: float = 5.0, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic):
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
        self.gap_timeout_s = gap_timeout_s
        self.clock = clock
        self.monotonic = monotonic
        self.badges: dict[int, BadgeState] = {}
        self.routes: dict[int, tuple[Any, Any]] = {}
        self.listeners: dict[Any, float] = {}  # (transport, address) -> last heard: group colour goes to these
        self.rejections: Counter[str] = Counter()
        self.internal_errors = 0
        self.accepted = 0
        self._ack_trackers: dict[int, AckTracker] = {}
        self.acked: dict[int, int] = {}
        self.receipts = [r.as_dict() for r in self.store.receipts()]
        self._started_at = clock()

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
        if self.store.pending() >= self.flush_max:
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
            if fields is not None and self.scorer is not None:
                self.scorer.add(dev, int(now), _score_fields(fields, keep_physio, keep_colour))
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
        """Commit the batch; then acknowledge to each badge the counter up to which everything is stored."""
        committed: dict[int, list[int]] = {}
        for row in self.store.batch.frames:
            committed.setdefault(row[0], []).append(row[1])
        try:
            stored, receipts = self.store.flush()
        except Exception:
            self.internal_errors += 1
            log.exception("store flush failed; the batch's frames and counters were rolled back")
            return 0
        for receipt in receipts:
            self.receipts.insert(0, receipt.as_dict())
        now = self.monotonic()
        for dev, ctrs in committed.items():
            tracker = self._ack_trackers.get(dev)
            if tracker is None:
                # After a restart everything up to the committed counter was stored before.
                base = self.store.max_counter_before(dev, self._started_at)
                tracker = self._ack_trackers[dev] = AckTracker(base, self.gap_timeout_s)
            ctr = tracker.add(ctrs, now)
            if ctr > self.acked.get(dev, 0):
                self.acked[dev] = ctr
                self.on_acked(dev, ctr)
        return stored

    def on_acked(self, dev_id: int, ctr: int) -> None:
        """Everything up to `ctr` from this badge is stored. The runtime sends the backlog ack from here."""

    def erase(self, dev_id: int, epoch: int | None = None, reason: str = "operator") -> dict:
        """Operator erasure of a badge's physiology (one epoch or all), with a receipt."""
        self.flush()
        receipt = self.store.erase(dev_id, epoch, reason)
        for e in self.ledger.mark_erased(dev_id, epoch):
            self.store.note_epoch(e)
        self.flush()
        self.receipts.insert(0, receipt.as_dict())
        return receipt.as_dict()


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
