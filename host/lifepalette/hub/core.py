"""The hub's runtime: one asyncio process around the synchronous ingest core (hub/ingest.py).

Transports feed `ingest`; the flush loop commits batches; the scoring loop ticks on a fixed cadence, sends the group
colour and tells subscribers (the web app's feeds, OSC, MQTT), which read the public view released in hub/views.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifepalette.boundary import BoundaryError, PublicView
from lifepalette.crypto import seal
from lifepalette.hub.contracts import Transport
from lifepalette.hub.ingest import IngestCore
from lifepalette.hub.journey import Journey
from lifepalette.hub.sitekey import DEFAULT_GROUP_ID
from lifepalette.hub.store import Store
from lifepalette.hub.views import (
    NEUTRAL_RGB,
    ONLINE_S,
    group_colour_of,
    operator_view,
    public_release,
    release_public_view,
)
from lifepalette.scoring.report import Scores
from protocol import frame as wire
from protocol import records

log = logging.getLogger("lifepalette.hub")
JOURNEY_SAVE_S = 60.0  # how often a running session's journey is written to the store (and at its end)
# A session still open when the hub starts is resumed if the hub was last seen running it this recently (a crash, a
# power cut, an upgrade); one left open longer ago is closed at its last sign of life.
RESUME_WITHIN_S = 30 * 60.0
DB_LOCK_WAIT_S = 60.0  # a direct `lifepalette erase` waits up to 30 s for readers to let go of erased bytes


def ensure_group_key(store: Store) -> tuple[int, bytes]:
    gid = store.get_meta("group_id")
    key = store.get_meta("group_key")
    if gid is None or key is None:
        gid, key = str(DEFAULT_GROUP_ID), secrets.token_bytes(16).hex()
        store.set_meta("group_id", gid)
        store.set_meta("group_key", key)
    return int(gid), bytes.fromhex(key)


def load_scorer(groups: list[list[int]] | None):
    """The hub's scorer. A scoring package that fails to import is a broken install: the hub must not start
    without scores as if nothing happened (pass scorer=None for a hub that stores only)."""
    from lifepalette.scoring import CoveScorer

    return CoveScorer(groups=groups)


def warm_up_scoring() -> None:
    """Compile (first start after an install or upgrade) or load the scorer's kernels before any loop runs: the first
    scoring tick must not stall the event loop while badges are sending."""
    import sys

    from lifepalette.scoring.jit import warm_up

    def note() -> None:
        print("lifepalette: compiling the scorer's kernels (once after an install or upgrade, 10-15 s)...",
              file=sys.stderr, flush=True)

    took = warm_up(note)
    if took > 1.0:
        log.warning("scoring kernels compiled in %.1f s (once after an install or upgrade; later starts load them)",
                    took)


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


class Hub(IngestCore):
    """The running hub: the ingest core plus transports, the flush and scoring loops, commands, group colour and
    sessions. Everything the web app calls is in `lifepalette.hub.contracts.HubSurface`."""

    def __init__(self, db_path: str | Path, *, udp: tuple[str, int] | None = None, ble: bool = False,
                 serial: tuple[str, ...] | list[str] = (), cadence_s: float = 1.0, ble_backend=None,
                 ble_max_links: int = 6, ble_hold_s: float = 60.0, flush_interval_s: float = 0.1,
                 flush_max: int = 500, groups: list[list[int]] | None = None, scorer: Any = "auto",
                 advertiser=None, group_ttl_s: int = 10, release_seed: int | None = None):
        super().__init__(db_path, scorer=load_scorer(groups) if scorer == "auto" else scorer, flush_max=flush_max)
        if self.scorer is not None:
            warm_up_scoring()
        self.group_id, self.group_key = ensure_group_key(self.store)
        self.cadence_s = cadence_s
        self.flush_interval_s = flush_interval_s
        self.group_ttl_s = group_ttl_s
        self.advertiser = advertiser
        self.transports: list[Transport] = []
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
        self._cmd_counters: dict[int, CounterBlock] = {}
        self._group_counter = CounterBlock(self.store, f"group:{self.group_id}")
        self.scores: Scores | None = None  # the scorer's latest document (None before the first tick)
        self.score_cpu_s = 0.0
        self.score_ticks = 0
        self.last_tick: float | None = None
        self.group_rgb: tuple[int, int, int] = NEUTRAL_RGB
        self.group_frame: bytes | None = None
        self.session_id: int | None = None
        self.session_started: float | None = None
        self.swatch_salt = secrets.token_bytes(16)  # swatch order: stable while this hub runs, unguessable
        # the release mechanism's seed: None (os.urandom) on a real hub; a test or a replay comparison fixes it
        self.release_seed = release_seed
        self.release = public_release(release_seed)  # the public numbers' release state and budget: one per session
        self._budget_recorded: tuple[int, int, int] | None = None
        self.journey = Journey()  # the session's released views, kept for `lifepalette report`
        self._journey_saved = 0.0
        self._subscribers: list[Callable[[], Any]] = []
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------------------
    async def start(self) -> list[str]:
        """Open every transport and start the flush and scoring loops; returns what the hub listens on."""
        from lifepalette.hub.control import ControlServer
        from lifepalette.hub.dblock import ERASE_ROLE, DatabaseLock

        # restore refuses while held; a `lifepalette erase` working directly holds it for a moment
        self._db_lock = DatabaseLock(self.db_path, "a running hub").acquire(wait_s=DB_LOCK_WAIT_S, wait_for=ERASE_ROLE)
        self.adopt_erasures()  # anything erased in the file between our open and the lock
        self.resume_open_session()
        self.control = ControlServer(self)
        await self.control.start()  # `lifepalette erase` goes through us from now on
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
        if self.session_id is not None:
            self._save_journey()  # a session still running when the hub stops keeps its journey to this moment
        if getattr(self, "control", None) is not None:
            await self.control.stop()
        self.flush()
        self.store.close()
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

    def link_up(self, dev_id: int, link: str, route: tuple[Any, Any]) -> None:
        """A transport has a two-way link to a badge (e.g. GATT): route commands there and sync its clock."""
        self.routes[dev_id] = route
        self.send_command(dev_id, records.pack_cmd_time(int(time.time())))
        if dev_id in self.acked:
            self.send_command(dev_id, records.pack_cmd_backlog_ack(self.acked[dev_id]))

    def on_acked(self, dev_id: int, ctr: int) -> None:
        if dev_id in self.routes:
            self.send_command(dev_id, records.pack_cmd_backlog_ack(ctr))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            if self.store.pending() and self.flush_due():
                self.flush()

    # -- commands and group colour ----------------------------------------------------------------------------
    def seal_command(self, dev_id: int, record13: bytes) -> bytes:
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
        record = records.pack_group_colour(rgb[0], rgb[1], rgb[2], mode, self.group_ttl_s, arousal, synchrony)
        return seal(self.group_key, wire.GROUP_COLOUR, self.group_id, self._group_counter.take(), record,
                    wire.TO_BADGE)

    def broadcast_group_colour(self, rgb: tuple[int, int, int], arousal: int = 0, synchrony: int = 0) -> int:
        """Send the group colour to every badge heard recently (UDP/serial) and to the BLE advertiser."""
        frame = self.seal_group_colour(rgb, arousal, synchrony)
        self.group_rgb, self.group_frame = (rgb[0], rgb[1], rgb[2]), frame
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
            self.release = public_release(self.release_seed)  # a session's budget starts with the session
            self.journey = Journey()
        return self.session_state()

    def resume_open_session(self) -> None:
        """Go on with the session this hub was running when it stopped: same id, its journey, its spent budget."""
        if self.session_id is not None:
            return
        now = time.time()
        still_open = self.store.open_sessions()
        for session_id, started_at, clock_synced in still_open:
            stored = self._stored_journey(session_id)
            last_seen = max([started_at, stored.get("saved_at", started_at)]
                            + [p.get("updated", started_at) for p in stored.get("points", [])])
            if session_id == still_open[-1][0] and now - last_seen <= RESUME_WITHIN_S:
                self._resume(session_id, started_at, clock_synced, stored)
                log.info("resumed session %d (last seen %.0f s ago, %d releases spent)", session_id,
                         now - last_seen, self.release.budget.releases)
            else:
                self.store.end_session(session_id, at=last_seen)
                log.info("session %d was left open by a hub that stopped: closed at its last sign of life", session_id)

    def _stored_journey(self, session_id: int) -> dict:
        text = self.store.saved_journey(session_id)
        try:
            stored = json.loads(text) if text else {}
        except ValueError:
            stored = {}
        return stored if isinstance(stored, dict) else {}

    def _resume(self, session_id: int, started_at: float, clock_synced: bool | None, stored: dict) -> None:
        self.session_id, self.session_started = session_id, started_at
        self.store.session_clock_synced = clock_synced
        self.release = public_release(self.release_seed)
        if isinstance(stored.get("budget"), dict):
            self.release.carry_on(stored["budget"])
        try:
            self.journey = Journey.resumed(stored.get("points", []))
        except BoundaryError as exc:  # a journey off the contract is not shown again; the session still goes on
            log.warning("session %d: stored journey refused (%s); the wall starts a new one", session_id, exc)
            self.journey = Journey.resumed([])

    def end_session(self) -> dict:
        if self.session_id is not None:
            self._save_journey()
            self.store.end_session(self.session_id)
            self.session_id = None
            self.session_started = None
        return self.session_state()

    def session_state(self) -> dict:
        return {"active": self.session_id is not None, "id": self.session_id, "started_at": self.session_started,
                "clock_synced": self.store.session_clock_synced if self.session_id is not None else None}

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
                # detail=False: per-wearer and per-pair entries never leave the scorer through the hub
                self.scores = self.scorer.compute(detail=False)
            except Exception:
                self.internal_errors += 1
                log.exception("scoring failed")
            self.score_cpu_s += time.process_time() - cpu0
        self.score_ticks += 1
        if self.session_id is not None and time.monotonic() - self._journey_saved >= JOURNEY_SAVE_S:
            self._save_journey()  # also the session's sign of life, should the hub stop without ending it
        try:
            self.broadcast_group_colour(*self.group_colour())
        except Exception:
            self.internal_errors += 1
            log.exception("group colour broadcast failed")
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("subscriber failed")

    def group_colour(self) -> tuple[tuple[int, int, int], int, int]:
        """(rgb, arousal byte, synchrony byte) for the badges' group colour frame, from the latest scores."""
        return group_colour_of(self.scores)

    # -- state for the web app --------------------------------------------------------------------------------
    def public_view(self) -> PublicView:
        """The public view as of now (released in hub/views.py; the web app, OSC and MQTT re-publish it)."""
        view = release_public_view(self.scores, self.badges.values(), session=self.session_id is not None,
                                   now=time.time(), salt=self.swatch_salt, release=self.release)
        self._record_budget()
        if self.journey.note(view) and time.monotonic() - self._journey_saved >= JOURNEY_SAVE_S:
            self._save_journey()
        return view

    def _save_journey(self) -> None:
        """The session's released journey and budget, in the store for the facilitator's report (throttled)."""
        self._journey_saved = time.monotonic()
        if self.session_id is not None:
            self.store.save_journey(self.session_id, json.dumps(
                {"points": self.journey.to_stored(), "budget": self.release.status(), "saved_at": time.time()}))

    def _record_budget(self) -> None:
        """Keep the session's spent budget in the store's meta table, where `lifepalette audit` reads it."""
        epochs = (id(self.release), self.release.epochs, self.release.budget.refused)
        if epochs != self._budget_recorded:
            self._budget_recorded = epochs
            self.store.set_meta("public_budget", json.dumps({"session": self.session_id, **self.release.status()}))

    def ingest_stats(self) -> dict:
        """Overload counters of the transports that queue (UDP): what was dropped, by the hub or the kernel."""
        return {t.name: t.overload_stats() for t in self.transports if hasattr(t, "overload_stats")}

    def operator_state(self) -> dict:
        """The operator console's state (hub/views.py)."""
        return operator_view(self, time.time())
