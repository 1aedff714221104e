"""The hub: one asyncio process. Transports feed `ingest`; verified frames pass consent enforcement into the
batched SQLite store; scoring runs on a fixed cadence; outputs (group colour, web, subscribers) follow each tick.

`ingest` is synchronous and never raises: every rejection is a named reason in `operator_state()["rejections"]`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifepalette.hub.consent import ConsentLedger, colour_allowed, physio_allowed, revision_of
from lifepalette.hub.sitekey import DEFAULT_GROUP_ID, device_keys, load_site_key
from lifepalette.hub.store import PHYSIO_FIELDS, Store
from protocol import frame as wire
from protocol import records
from protocol.verifier import REASONS, Verifier

log = logging.getLogger("lifepalette.hub")

K_MIN = 5
ONLINE_S = 30.0  # a badge heard within this many seconds counts as online
PHYSIO_NA = {"hr_bpm": records.HR_NA, "rmssd_ms": records.RMSSD_NA, "scl": records.SCL_NA,
             "scr_per_min": records.SCR_NA, "motion": records.MOTION_NA}
NEUTRAL_RGB = (96, 96, 96)


@dataclass
class BadgeState:
    dev_id: int
    last_seen: float
    link: str
    battery: int | None = None
    charging: bool = False
    consent: int = 0
    quality: int = 0
    rssi: int | None = None
    frames: int = 0
    hue: int | None = None
    chroma: int | None = None

    def as_dict(self, now: float) -> dict:
        return {"dev_id": self.dev_id, "last_seen": self.last_seen, "age_s": round(now - self.last_seen, 1),
                "online": now - self.last_seen <= ONLINE_S, "link": self.link, "battery": self.battery,
                "charging": self.charging, "consent": {"physio": bool(self.consent & 1),
                                                       "colour": bool(self.consent & 2),
                                                       "paused": bool(self.consent & 4),
                                                       "revision": revision_of(self.consent)},
                "quality": self.quality, "rssi": self.rssi, "frames": self.frames}


def ensure_group_key(store: Store) -> tuple[int, bytes]:
    gid = store.get_meta("group_id")
    key = store.get_meta("group_key")
    if gid is None or key is None:
        gid, key = str(DEFAULT_GROUP_ID), secrets.token_bytes(16).hex()
        store.set_meta("group_id", gid)
        store.set_meta("group_key", key)
    return int(gid), bytes.fromhex(key)


def load_scorer(groups: list[list[int]] | None):
    try:
        from lifepalette.scoring import CoveScorer
    except ImportError:
        log.warning("scoring not available (lifepalette.scoring.CoveScorer missing): hub runs without scores")
        return None
    return CoveScorer(groups=groups)


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


class CounterBlock:
    """A hub-side frame counter (commands per badge, group colour per group) reserved in persisted blocks."""

    def __init__(self, store: Store, name: str):
        self.store = store
        self.name = name
        self.next, self.end = store.reserve_counter_block(name)

    def take(self) -> int:
        if self.next >= self.end:
            self.next, self.end = self.store.reserve_counter_block(self.name)
        value = self.next
        self.next += 1
        return value


class Hub:
    def __init__(self, db_path: str | Path, *, udp: tuple[str, int] | None = None, ble: bool = False,
                 serial: tuple[str, ...] | list[str] = (), cadence_s: float = 1.0, ble_backend=None,
                 ble_max_links: int = 6, ble_hold_s: float = 60.0, flush_interval_s: float = 0.1,
                 flush_max: int = 500, groups: list[list[int]] | None = None, scorer: Any = "auto",
                 advertiser=None, group_ttl_s: int = 10, gap_timeout_s: float = 5.0):
        self.db_path = Path(db_path)
        self.store = Store(self.db_path)
        self.site_key = load_site_key(self.db_path, create=True)
        self.keys = device_keys(self.site_key, self.store.device_ids())
        self.verifier = Verifier(self.keys, self.store.counters)
        self.ledger = ConsentLedger(self.store.load_epochs())
        self.group_id, self.group_key = ensure_group_key(self.store)
        self.scorer = load_scorer(groups) if scorer == "auto" else scorer
        self.cadence_s = cadence_s
        self.flush_interval_s = flush_interval_s
        self.flush_max = flush_max
        self.group_ttl_s = group_ttl_s
        self.advertiser = advertiser
        self.transports: list[Any] = []
        if udp is not None:
            from lifepalette.transports.udp import UdpTransport

            self.transports.append(UdpTransport(self, udp[0], udp[1]))
        for port in serial:
            from lifepalette.transports.serial import SerialTransport

            self.transports.append(SerialTransport(self, port))
        self.ble = None
        if ble or ble_backend is not None:
            from lifepalette.transports.ble import BleTransport

            self.ble = BleTransport(self, backend=ble_backend, max_links=ble_max_links, hold_s=ble_hold_s)
            self.transports.append(self.ble)
        self.badges: dict[int, BadgeState] = {}
        self.routes: dict[int, tuple[Any, Any]] = {}
        self.listeners: dict[Any, float] = {}  # (transport, address) -> last heard: group colour goes to these
        self.rejections: Counter[str] = Counter()
        self.internal_errors = 0
        self.accepted = 0
        self.gap_timeout_s = gap_timeout_s
        self._ack_trackers: dict[int, AckTracker] = {}
        self.acked: dict[int, int] = {}
        self._cmd_counters: dict[int, CounterBlock] = {}
        self._group_counter = CounterBlock(self.store, f"group:{self.group_id}")
        self.receipts = [r.as_dict() for r in self.store.receipts()]
        self.scores: dict = {}
        self.score_cpu_s = 0.0
        self.score_ticks = 0
        self.last_tick: float | None = None
        self.group_rgb = NEUTRAL_RGB
        self.group_frame: bytes | None = None
        self.session_id: int | None = None
        self.session_started: float | None = None
        self._subscribers: list[Callable[[], Any]] = []
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        self._started_at = time.time()

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Open every transport and start the flush and scoring loops; returns what the hub listens on."""
        from lifepalette.hub.dblock import DatabaseLock

        self._db_lock = DatabaseLock(self.db_path, "a running hub").acquire()  # restore refuses while held
        for transport in self.transports:
            await transport.start()
        if self.advertiser is not None:
            await self.advertiser.start()
        self._tasks = [asyncio.create_task(self._flush_loop()), asyncio.create_task(self._scoring_loop())]
        return [t.describe() for t in self.transports]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for transport in self.transports:
            try:
                await transport.stop()
            except Exception as exc:
                log.warning("stopping %s: %s", transport.name, exc)
        if self.advertiser is not None:
            await self.advertiser.stop()
        self.flush()
        self.store.con.close()
        if getattr(self, "_db_lock", None) is not None:
            self._db_lock.release()
        self._stopped.set()

    async def run(self) -> None:
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            if not self._stopped.is_set():
                await self.stop()

    # -- enrolment --------------------------------------------------------------------------------------------
    def enroll(self, dev_id: int) -> bytes:
        """Register a badge on the running hub and return its key (for the config writer)."""
        from lifepalette.hub.sitekey import derive_device_key

        self.store.register_device(dev_id)
        key = derive_device_key(self.site_key, dev_id)
        self.keys[dev_id] = key
        return key

    # -- ingest -----------------------------------------------------------------------------------------------
    def ingest(self, data: bytes, link: str = "udp", route: tuple[Any, Any] | None = None, rssi: int | None = None):
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

    def _accept(self, v, link: str, route, rssi) -> None:
        now = time.time()
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
                if self.scorer is not None and hasattr(self.scorer, "forget"):
                    self.scorer.forget(dev)
            epoch_no, keep_physio = obs.epoch.epoch, physio_allowed(consent) and not obs.epoch.erased
        else:
            epoch_no, keep_physio = self.ledger.backlog_epoch(dev, consent)
        keep_colour = colour_allowed(consent)
        hue = fields["hue"] if fields and keep_colour else None
        chroma = fields["chroma"] if fields and keep_colour else None
        age = fields["colour_age"] if fields and keep_colour else None
        self.store.add_frame((dev, ctr, ftype, now, link, epoch_no, consent, battery, quality, hue, chroma, age),
                             self._physio_row(dev, ctr, epoch_no, fields) if fields and keep_physio else None)
        if live:
            self._update_badge(dev, now, link, consent, battery, quality, rssi, hue, chroma)
            if fields is not None and self.scorer is not None:
                self.scorer.add(dev, int(now), self._score_fields(fields, keep_physio, keep_colour))
        if route is not None:
            self.routes[dev] = route
            self.listeners[route] = now

    @staticmethod
    def _physio_row(dev: int, ctr: int, epoch: int, fields: dict) -> tuple | None:
        values = [None if fields[name] == PHYSIO_NA[name] else fields[name] for name in PHYSIO_FIELDS]
        if all(value is None for value in values):
            return None
        return (dev, ctr, epoch, *values)

    @staticmethod
    def _score_fields(fields: dict, physio: bool, colour: bool) -> dict:
        out = dict(fields)
        if not physio:
            out.update(PHYSIO_NA)
        if not colour:
            out["hue"] = out["chroma"] = 0
            out["colour_age"] = records.COLOUR_AGE_NA
        return out

    def _update_badge(self, dev, now, link, consent, battery, quality, rssi, hue, chroma) -> None:
        badge = self.badges.get(dev)
        if badge is None:
            badge = self.badges[dev] = BadgeState(dev, now, link)
        badge.last_seen, badge.link, badge.consent, badge.quality = now, link, consent, quality
        badge.battery, badge.charging = battery & 0x7F, bool(battery & 0x80)
        badge.frames += 1
        badge.hue, badge.chroma = hue, chroma
        if rssi is not None:
            badge.rssi = rssi

    def link_up(self, dev_id: int, link: str, route: tuple[Any, Any]) -> None:
        """A transport has a two-way link to a badge (e.g. GATT): route commands there and sync its clock."""
        self.routes[dev_id] = route
        self.send_command(dev_id, records.pack_cmd_time(int(time.time())))
        if dev_id in self.acked:
            self.send_command(dev_id, records.pack_cmd_backlog_ack(self.acked[dev_id]))

    def link_down(self, dev_id: int, link: str) -> None:
        """A two-way link ended. The route stays: the BLE transport queues commands until the next link."""

    # -- storage ----------------------------------------------------------------------------------------------
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
        now = time.monotonic()
        for dev, ctrs in committed.items():
            tracker = self._ack_trackers.get(dev)
            if tracker is None:
                # After a restart everything up to the committed counter was stored before.
                tracker = self._ack_trackers[dev] = AckTracker(self._committed_base(dev), self.gap_timeout_s)
            ctr = tracker.add(ctrs, now)
            if ctr > self.acked.get(dev, 0):
                self.acked[dev] = ctr
                if dev in self.routes:
                    self.send_command(dev, records.pack_cmd_backlog_ack(ctr))
        return stored

    def _committed_base(self, dev: int) -> int:
        row = self.store.con.execute("SELECT MAX(ctr) FROM frames WHERE dev_id = ? AND t_rx < ?",
                                     (dev, self._started_at)).fetchone()
        return row[0] or 0

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            if self.store.pending():
                self.flush()

    # -- commands and group colour ----------------------------------------------------------------------------
    def seal_command(self, dev_id: int, record13: bytes) -> bytes:
        from lifepalette.crypto import seal

        counter = self._cmd_counters.get(dev_id)
        if counter is None:
            counter = self._cmd_counters[dev_id] = CounterBlock(self.store, f"cmd:{dev_id}")
        return seal(self.keys[dev_id], wire.COMMAND, dev_id, counter.take(), record13, wire.TO_BADGE)

    def send_command(self, dev_id: int, record13: bytes) -> bool:
        route = self.routes.get(dev_id)
        if route is None and self.ble is not None and dev_id in self.ble.devices:
            route = (self.ble, dev_id)  # heard in adverts, no GATT link yet: written when the link comes up
        if route is None or dev_id not in self.keys:
            return False
        frame = self.seal_command(dev_id, record13)
        transport, address = route
        try:
            return bool(transport.send(frame, address))
        except Exception as exc:
            log.info("send to badge %d failed: %s", dev_id, exc)
            return False

    def set_colour(self, dev_id: int, rgb: tuple[int, int, int]) -> bool:
        return self.send_command(dev_id, records.pack_cmd_colour(*rgb))

    def seal_group_colour(self, rgb: tuple[int, int, int], arousal: int = 0, synchrony: int = 0,
                          mode: int = records.MODE_SOLID) -> bytes:
        from lifepalette.crypto import seal

        record = records.pack_group_colour(rgb[0], rgb[1], rgb[2], mode, self.group_ttl_s, arousal, synchrony)
        return seal(self.group_key, wire.GROUP_COLOUR, self.group_id, self._group_counter.take(), record,
                    wire.TO_BADGE)

    def broadcast_group_colour(self, rgb: tuple[int, int, int], arousal: int = 0, synchrony: int = 0) -> int:
        """Send the group colour to every badge heard recently (UDP/serial) and to the BLE advertiser."""
        frame = self.seal_group_colour(rgb, arousal, synchrony)
        self.group_rgb, self.group_frame = tuple(rgb), frame
        now = time.time()
        sent = 0
        for (transport, address), seen in list(self.listeners.items()):
            if now - seen > ONLINE_S:
                del self.listeners[(transport, address)]
                continue
            if transport.name in ("udp", "serial") and transport.send(frame, address):
                sent += 1
        if self.advertiser is not None:
            self.advertiser.set_frame(frame)
        return sent

    def rotate_group_key(self) -> bytes:
        """New group key for a new session; enrolled badges heard recently get it sealed with their own key."""
        self.group_key = secrets.token_bytes(16)
        self.store.set_meta("group_key", self.group_key.hex())
        for dev in list(self.routes):
            for record in records.group_key_commands(self.group_id, self.group_key):
                self.send_command(dev, record)
        return self.group_key

    # -- sessions ---------------------------------------------------------------------------------------------
    def start_session(self) -> dict:
        if self.session_id is None:
            self.rotate_group_key()
            self.session_id = self.store.start_session()
            self.session_started = time.time()
        return self.session_state()

    def end_session(self) -> dict:
        if self.session_id is not None:
            self.store.end_session(self.session_id)
            self.session_id = None
            self.session_started = None
        return self.session_state()

    def session_state(self) -> dict:
        return {"active": self.session_id is not None, "id": self.session_id, "started_at": self.session_started}

    def erase(self, dev_id: int, epoch: int | None = None) -> dict:
        """Operator erasure of a badge's physiology (one epoch or all), with a receipt."""
        self.flush()
        receipt = self.store.erase(dev_id, epoch, "operator")
        for e in self.ledger.mark_erased(dev_id, epoch):
            self.store.note_epoch(e)
        self.flush()
        self.receipts.insert(0, receipt.as_dict())
        return receipt.as_dict()

    # -- scoring ----------------------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], Any]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    async def _scoring_loop(self) -> None:
        next_tick = time.monotonic()
        while True:
            next_tick += self.cadence_s
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            self.tick()

    def tick(self) -> None:
        """One scoring step: compute, send the group colour, tell subscribers. Never raises."""
        self.last_tick = time.time()
        if self.scorer is not None:
            cpu0 = time.process_time()
            try:
                self.scores = self.scorer.compute() or {}
            except Exception:
                self.internal_errors += 1
                log.exception("scoring failed")
            self.score_cpu_s += time.process_time() - cpu0
        self.score_ticks += 1
        rgb, arousal, synchrony = self._palette_rgb()
        try:
            self.broadcast_group_colour(rgb, arousal, synchrony)
        except Exception:
            self.internal_errors += 1
            log.exception("group colour broadcast failed")
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("subscriber failed")

    def _palette_rgb(self) -> tuple[tuple[int, int, int], int, int]:
        palette = self.scores.get("palette") if isinstance(self.scores, dict) else None
        rgb = NEUTRAL_RGB
        if isinstance(palette, dict):
            raw = palette.get("rgb") or palette.get("colour")
            if isinstance(raw, list | tuple) and len(raw) == 3:
                rgb = tuple(max(0, min(255, int(c))) for c in raw)
            arousal = _byte(palette.get("brightness", palette.get("arousal")))
            synchrony = _byte(palette.get("convergence", palette.get("synchrony")))
            return rgb, arousal, synchrony
        return rgb, 0, 0

    # -- state for the web app --------------------------------------------------------------------------------
    def _contributors(self, now: float) -> list[BadgeState]:
        return [b for b in self.badges.values() if now - b.last_seen <= ONLINE_S and b.consent & 1
                and not b.consent & 4]

    def public_state(self) -> dict:
        """Aggregates only, and only when at least K_MIN consenting people contribute. No per-wearer numbers."""
        now = time.time()
        contributors = self._contributors(now)
        state: dict[str, Any] = {"contributors": len(contributors), "k_min": K_MIN, "session": self.session_state(),
                                 "updated": self.last_tick, "palette": None, "groups": [], "swatches": []}
        if len(contributors) < K_MIN:
            return state
        palette = self.scores.get("palette") if isinstance(self.scores, dict) else None
        rgb, _arousal, _synchrony = self._palette_rgb()
        state["palette"] = {"rgb": list(rgb), "brightness": _unit(palette, "brightness"),
                            "convergence": _unit(palette, "convergence")}
        public = self.scores.get("public") if isinstance(self.scores, dict) else None
        public = public if isinstance(public, dict) else {}
        cove = public.get("cove") if isinstance(public.get("cove"), dict) else {}
        state["arousal"] = cove.get("arousal")
        state["synchrony"] = cove.get("excess_synchrony")
        state["groups"] = [_public_group(g) for g in public.get("groups", [])
                           if isinstance(g, dict) and not g.get("suppressed")]
        state["groups"] = [g for g in state["groups"] if g["contributors"] >= K_MIN]
        state["swatches"] = [{"hue": b.hue, "chroma": b.chroma} for b in self.badges.values()
                             if now - b.last_seen <= ONLINE_S and b.hue is not None]
        return state

    def operator_state(self) -> dict:
        now = time.time()
        counts = {reason: self.rejections.get(reason, 0) for reason in REASONS}
        return {
            "now": now,
            "badges": [b.as_dict(now) for b in sorted(self.badges.values(), key=lambda b: b.dev_id)],
            "online": sum(1 for b in self.badges.values() if now - b.last_seen <= ONLINE_S),
            "enrolled": sorted(self.keys),
            "transports": [t.describe() for t in self.transports],
            "links": {"ble_gatt": self.ble.link_count() if self.ble else 0,
                      "ble": dict(self.ble.stats) if self.ble else None},
            "rejections": counts,
            "accepted": self.accepted,
            "stored": self.store.frames_committed,
            "internal_errors": self.internal_errors,
            "consent_epochs": self.ledger.as_list(),
            "erasures": self.receipts[:50],
            "scoring": {"cadence_s": self.cadence_s, "ticks": self.score_ticks, "last_tick": self.last_tick,
                        "cpu_s": round(self.score_cpu_s, 4), "available": self.scorer is not None},
            "group_colour": {"group_id": self.group_id, "rgb": list(self.group_rgb)},
            "session": self.session_state(),
            # Groups and public aggregates only: no per-wearer numbers leave the hub through its state (no ranking).
            "scores": {k: v for k, v in self.scores.items() if k in ("groups", "public", "palette", "t")},
        }


def _byte(value: Any) -> int:
    if isinstance(value, int | float) and value == value:
        return max(0, min(255, int(round(float(value) * 255)) if float(value) <= 1.0 else int(value)))
    return 0


def _unit(palette: Any, key: str) -> float | None:
    if isinstance(palette, dict):
        value = palette.get(key)
        if isinstance(value, int | float) and value == value:
            return float(value)
    return None


def _public_group(group: dict) -> dict:
    contributors = group.get("contributors", group.get("k", group.get("n", 0)))
    if isinstance(contributors, list | tuple):
        contributors = len(contributors)
    return {"contributors": int(contributors or 0), "arousal": group.get("arousal"),
            "synchrony": group.get("synchrony", group.get("excess_synchrony")), "palette": group.get("palette")}
