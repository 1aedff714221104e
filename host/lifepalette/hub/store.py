"""The hub's SQLite store: frames, physiology, replay counters, consent ledger, erasure receipts.

One file in WAL mode. Writes are batched: the ingest path appends rows to memory and `flush()` commits them in one
transaction together with the replay counters they advanced, so a crash either keeps a frame AND its counter or
neither (no committed frame lost, no replay window opened). Physiology lives in its own table so that erasure
deletes whole rows; `secure_delete` overwrites the freed bytes and a WAL checkpoint removes the old page images.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifepalette.boundary import FrameRow, PhysioRow
from lifepalette.hub import clock as system_clock
from lifepalette.hub import schema
from lifepalette.hub.erasure_journal import ErasureIntent, ErasureJournal
from protocol import frame as wire

log = logging.getLogger("lifepalette.hub")

FRAME_COLUMNS = FrameRow._fields
PHYSIO_COLUMNS = PhysioRow._fields
PHYSIO_FIELDS = PHYSIO_COLUMNS[3:]
_INSERT_FRAME = f"INSERT OR IGNORE INTO frames ({', '.join(FRAME_COLUMNS)}) VALUES ({', '.join('?' * len(FRAME_COLUMNS))})"
# Never into an epoch the file says is erased, whatever the writer's ledger believes (an erasure that reached the
# file behind a hub's back must stick): ?1 is dev_id, ?3 the epoch.
_INSERT_PHYSIO = (f"INSERT OR IGNORE INTO physio ({', '.join(PHYSIO_COLUMNS)}) "
                  f"SELECT {', '.join(f'?{i}' for i in range(1, len(PHYSIO_COLUMNS) + 1))} WHERE NOT EXISTS "
                  "(SELECT 1 FROM consent_epochs WHERE dev_id = ?1 AND epoch = ?3 AND erased != 0)")
# `erased` never returns to 0: a stale ledger may re-send an epoch, never un-erase it.
_UPSERT_EPOCH = ("INSERT INTO consent_epochs (dev_id, epoch, revision, physio, colour, first_ctr, last_ctr, opened_at, "
                 "closed_at, revoked_at_ctr, erased) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (dev_id, epoch) DO UPDATE SET revision = excluded.revision, physio = excluded.physio, "
                 "colour = excluded.colour, first_ctr = excluded.first_ctr, last_ctr = excluded.last_ctr, "
                 "opened_at = excluded.opened_at, closed_at = excluded.closed_at, "
                 "revoked_at_ctr = excluded.revoked_at_ctr, erased = MAX(consent_epochs.erased, excluded.erased)")
# A batch that cannot be committed (disk full) is held and retried; past this many frames its frames are let go
# (never acknowledged, so the badges still hold them and re-send them as backlog), never its ledger or erasures.
HELD_FRAMES_MAX = 50_000
JOURNEY_META = "journey:"  # meta key prefix of a session's released journey (+ session id)
# Hub-side command counters are reserved in blocks so a crash can never reuse one (the badge rejects replays too).
COUNTER_BLOCK = 256


@dataclass
class Epoch:
    """One consent epoch of one badge: a run of frames under the same consent revision."""

    dev_id: int
    epoch: int
    revision: int
    physio: bool
    colour: bool
    first_ctr: int
    last_ctr: int
    opened_at: float
    closed_at: float | None = None
    revoked_at_ctr: int | None = None
    erased: bool = False

    def as_dict(self) -> dict:
        return {"dev_id": self.dev_id, "epoch": self.epoch, "revision": self.revision, "physio": self.physio,
                "colour": self.colour, "first_ctr": self.first_ctr, "last_ctr": self.last_ctr,
                "opened_at": self.opened_at, "closed_at": self.closed_at, "revoked_at_ctr": self.revoked_at_ctr,
                "erased": self.erased}


@dataclass
class Receipt:
    """What an erasure removed: written to the erasures table and shown to the operator."""

    at: float
    dev_id: int
    epoch: int | None
    rows: int
    reason: str
    what: str = "physiology"
    clock_synced: bool | None = None  # was the hub's clock NTP-synchronised when it wrote `at` (None: unknown)
    intent: str | None = None  # the journaled intent this receipt carries out
    scrubbed: bool | None = None  # the erased bytes are gone from the database, -wal and -shm files

    def as_dict(self) -> dict:
        return {"at": self.at, "dev_id": self.dev_id, "epoch": self.epoch, "what": self.what, "rows": self.rows,
                "reason": self.reason, "clock_synced": self.clock_synced, "scrubbed": self.scrubbed}


@dataclass
class Batch:
    """Rows waiting for the next transaction; they commit together with the counters they advanced."""

    frames: list[tuple] = field(default_factory=list)  # values in FrameRow field order
    physio: list[tuple] = field(default_factory=list)  # values in PhysioRow field order
    epochs: dict[tuple[int, int], Epoch] = field(default_factory=dict)
    erasures: list[ErasureIntent] = field(default_factory=list)
    unjournaled: list[ErasureIntent] = field(default_factory=list)  # the journal write failed: retried first

    def __len__(self) -> int:
        return len(self.frames)


BUSY_TIMEOUT_MS = 5000


def connect(path: str | Path, *, keep_migration_backup: bool = True) -> sqlite3.Connection:
    """Open (and create) the hub database with the pragmas every user of it needs, at the current schema."""
    return connect_versioned(path, keep_migration_backup=keep_migration_backup)[0]


def connect_versioned(path: str | Path, *, keep_migration_backup: bool = True) -> tuple[sqlite3.Connection, int]:
    """`connect`, also returning the schema version the file had (0: new)."""
    if str(path) != ":memory:" and not os.path.exists(path):
        # it holds physiology: owner-only from the first byte (SQLite gives -wal/-shm the same mode)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise schema.SchemaError(f"cannot open {path} as a hub database ({exc})") from None
    try:
        con.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives power loss too; the batch makes the fsync cost per frame tiny.
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA secure_delete=ON")
        con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        before = schema.ensure_current(con, path, keep_backup=keep_migration_backup)
    except sqlite3.Error as exc:  # not SQLite, damaged, unreadable, or the migration failed (rolled back)
        con.close()
        raise schema.SchemaError(f"cannot open {path} as a hub database ({exc})") from None
    except BaseException:
        con.close()
        raise
    return con, before


def erase_rows(con: sqlite3.Connection, intent: ErasureIntent) -> int:
    """Delete what an erasure intent names (inside the caller's transaction); returns the physiology rows deleted."""
    if intent.epoch is None:  # every epoch up to the bound the intent was journaled with
        through = intent.epochs_through if intent.epochs_through is not None else 2**62
        where, params = "dev_id = ? AND epoch <= ?", (intent.dev_id, through)
    else:
        where, params = "dev_id = ? AND epoch = ?", (intent.dev_id, intent.epoch)
    rows = con.execute(f"DELETE FROM physio WHERE {where}", params).rowcount
    con.execute(f"UPDATE consent_epochs SET erased = 1 WHERE {where}", params)
    return rows


def _system_clock_synced() -> bool | None:
    return system_clock.clock_synced()  # looked up per call: tests swap the module's function


class Counters:
    """Replay counters with the `get`/`set` interface of protocol.verifier.MemoryCounters, persisted by `Store`.

    `set` changes memory only and marks the device dirty; the store writes dirty counters in the same
    transaction as the frames that advanced them.
    """

    def __init__(self, initial: dict[int, int]):
        self._last = dict(initial)
        self.dirty: set[int] = set()

    def get(self, dev_id: int) -> int:
        return self._last.get(dev_id, -1)

    def set(self, dev_id: int, ctr: int) -> None:
        self._last[dev_id] = ctr
        self.dirty.add(dev_id)

    def rows(self) -> list[tuple[int, int]]:
        return [(dev, self._last[dev]) for dev in self.dirty]

    def rollback_to(self, committed: dict[int, int]) -> None:
        """After a failed transaction: forget the uncommitted advances (their frames were not stored either)."""
        for dev in self.dirty:
            if dev in committed:
                self._last[dev] = committed[dev]
            else:
                self._last.pop(dev, None)
        self.dirty.clear()


class Store:
    def __init__(self, path: str | Path, *, clock: Callable[[], bool | None] | None = None,
                 journal_of: str | Path | None = None, keep_migration_backup: bool = True):
        """`journal_of`: whose erasure journal binds this file (restore opens the restored copy with the journal of
        the database it will replace)."""
        self.path = Path(path)
        self.clock = clock or _system_clock_synced
        self.con, self.schema_before = connect_versioned(self.path, keep_migration_backup=keep_migration_backup)
        self.journal = None if str(path) == ":memory:" else ErasureJournal(journal_of or self.path)
        self.replayed = self.replay_journal()
        self.session_clock_synced: bool | None = None  # as recorded with the latest session start
        committed = dict(self.con.execute("SELECT dev_id, last_ctr FROM counters"))
        self.counters = Counters(committed)
        self.batch = Batch()
        self.frames_committed = 0
        self.flushes = 0
        self.scrub_pending = False  # an erasure committed while a reader held the old bytes: scrub at next flush

    # -- devices and keys -------------------------------------------------------------------------------------
    def device_ids(self) -> list[int]:
        return [row[0] for row in self.con.execute("SELECT dev_id FROM devices ORDER BY dev_id")]

    def register_device(self, dev_id: int, label: str | None = None) -> bool:
        """Enrol a badge; returns False if it was already known."""
        cur = self.con.execute("INSERT OR IGNORE INTO devices (dev_id, enrolled_at, label) VALUES (?, ?, ?)",
                               (dev_id, time.time(), label))
        return cur.rowcount == 1

    def get_meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def reserve_counter_block(self, name: str) -> tuple[int, int]:
        """Reserve the next block of a hub-side counter: returns (first, end) with end persisted before use."""
        row = self.con.execute("SELECT reserved_to FROM hub_counters WHERE name = ?", (name,)).fetchone()
        first = row[0] if row else 1
        end = first + COUNTER_BLOCK
        self.con.execute("INSERT OR REPLACE INTO hub_counters (name, reserved_to) VALUES (?, ?)", (name, end))
        return first, end

    # -- consent ledger ---------------------------------------------------------------------------------------
    def load_epochs(self) -> list[Epoch]:
        rows = self.con.execute(
            "SELECT dev_id, epoch, revision, physio, colour, first_ctr, last_ctr, opened_at, closed_at, "
            "revoked_at_ctr, erased FROM consent_epochs ORDER BY dev_id, epoch").fetchall()
        return [Epoch(r[0], r[1], r[2], bool(r[3]), bool(r[4]), r[5], r[6], r[7], r[8], r[9], bool(r[10]))
                for r in rows]

    def receipts(self, limit: int = 100) -> list[Receipt]:
        rows = self.con.execute("SELECT at, dev_id, epoch, rows, reason, what, clock_synced, intent FROM erasures "
                                "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Receipt(at, dev, epoch, n, reason, what, None if synced is None else bool(synced), intent)
                for at, dev, epoch, n, reason, what, synced, intent in rows]

    # -- batched writes ---------------------------------------------------------------------------------------
    def add_frame(self, row: FrameRow | tuple, physio_row: PhysioRow | tuple | None) -> None:
        """Queue one frame (values in FrameRow field order) and its physiology (PhysioRow order) if any."""
        self.batch.frames.append(row)
        if physio_row is not None:
            self.batch.physio.append(physio_row)

    def note_epoch(self, epoch: Epoch) -> None:
        self.batch.epochs[(epoch.dev_id, epoch.epoch)] = epoch

    def queue_erasure(self, dev_id: int, epoch: int | None, reason: str) -> ErasureIntent:
        """Erase with the next flush, retried at every flush until committed (see `pending_erasures`)."""
        intent = self._new_intent(dev_id, epoch, reason)
        try:
            self._journal(intent)
        except OSError as exc:  # e.g. the disk is full: journaled (and only then carried out) by a later flush
            log.error("erasure journal write failed (%s): retried before the erasure is carried out", exc)
            self.batch.unjournaled.append(intent)
        self.batch.erasures.append(intent)
        return intent

    def pending(self) -> int:
        return len(self.batch.frames) + len(self.batch.erasures) + len(self.batch.epochs)

    def pending_erasures(self) -> list[dict]:
        """Erasures recorded but not yet committed (a flush failed): the operator sees them until they are."""
        unjournaled = {intent.id for intent in self.batch.unjournaled}
        return [{"intent": i.id, "at": i.at, "dev_id": i.dev_id, "epoch": i.epoch, "reason": i.reason,
                 "journaled": i.id not in unjournaled} for i in self.batch.erasures]

    def flush(self) -> tuple[int, list[Receipt]]:
        """Commit the batch (frames, physiology, counters, ledger, erasures) in ONE transaction.

        Returns (frames newly stored, erasure receipts). On failure (disk full, any SQLite error) nothing of the
        batch is stored and the batch is HELD: the next flush retries it with whatever was added since, so an
        erasure stays pending until committed and no frame is lost (none was acknowledged either).
        """
        batch = self.batch
        counter_rows = self.counters.rows()
        if not batch.frames and not counter_rows and not batch.epochs and not batch.erasures:
            if self.scrub_pending:
                self.scrub()
            return 0, []
        con = self.con
        try:
            self._journal_held(batch)  # an erasure is journaled before any transaction carries it out
            con.execute("BEGIN IMMEDIATE")
            before = con.total_changes
            con.executemany(_INSERT_FRAME, batch.frames)
            stored = con.total_changes - before
            con.executemany(_INSERT_PHYSIO, batch.physio)
            con.executemany("INSERT OR REPLACE INTO counters (dev_id, last_ctr) VALUES (?, ?)", counter_rows)
            con.executemany(
                _UPSERT_EPOCH,
                [(e.dev_id, e.epoch, e.revision, int(e.physio), int(e.colour), e.first_ctr, e.last_ctr, e.opened_at,
                  e.closed_at, e.revoked_at_ctr, int(e.erased)) for e in batch.epochs.values()])
            receipts = [self._erase_in_tx(intent) for intent in batch.erasures]
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            self._hold_failed(batch)
            raise
        self.batch = Batch()
        self.counters.dirty.clear()
        self.frames_committed += stored
        self.flushes += 1
        if receipts or self.scrub_pending:
            scrubbed = self.scrub()
            for receipt in receipts:
                receipt.scrubbed = scrubbed
        if receipts:
            self._erase_in_migration_backups(batch.erasures)
        return stored, receipts

    def _hold_failed(self, batch: Batch) -> None:
        """Keep a batch whose transaction failed, to retry it; past HELD_FRAMES_MAX let its frames go (with the
        counter advances they made, so the badges' backlog copies are accepted again), never its ledger rows or
        erasures."""
        if len(batch.frames) <= HELD_FRAMES_MAX:
            return
        log.error("store: %d frames held since the database stopped taking writes; letting them go (never "
                  "acknowledged: the badges keep them and re-send them as backlog)", len(batch.frames))
        batch.frames.clear()
        batch.physio.clear()
        try:
            committed = dict(self.con.execute("SELECT dev_id, last_ctr FROM counters"))
        except sqlite3.Error:
            return  # cannot tell what is committed: keep the counters ahead (at worst a badge re-sends as backlog)
        self.counters.rollback_to(committed)

    # -- erasure ----------------------------------------------------------------------------------------------
    def _journaled_intent(self, dev_id: int, epoch: int | None, reason: str) -> ErasureIntent:
        """The intent, durably in the journal before any transaction tries to carry it out."""
        intent = self._new_intent(dev_id, epoch, reason)
        self._journal(intent)
        return intent

    def _journal(self, intent: ErasureIntent) -> None:
        if self.journal is not None:
            self.journal.append(intent)

    def _journal_held(self, batch: Batch) -> None:
        while batch.unjournaled:
            self._journal(batch.unjournaled[0])
            batch.unjournaled.pop(0)

    def _new_intent(self, dev_id: int, epoch: int | None, reason: str) -> ErasureIntent:
        through = None
        if epoch is None:  # bound "every epoch" to the epochs that exist now: a replay must not reach later ones
            known = [e.epoch for e in self.batch.epochs.values() if e.dev_id == dev_id]
            known += [row[2] for row in self.batch.physio if row[0] == dev_id]
            row = self.con.execute("SELECT MAX(m) FROM (SELECT MAX(epoch) AS m FROM consent_epochs WHERE dev_id = ? "
                                   "UNION ALL SELECT MAX(epoch) FROM physio WHERE dev_id = ?)",
                                   (dev_id, dev_id)).fetchone()
            through = max([*known, row[0] if row[0] is not None else 0])
        return ErasureIntent.new(dev_id, epoch, reason, epochs_through=through, clock_synced=self.clock())

    def _erase_in_tx(self, intent: ErasureIntent) -> Receipt:
        dev_id, epoch = intent.dev_id, intent.epoch
        rows = erase_rows(self.con, intent)
        receipt = Receipt(time.time(), dev_id, epoch, rows, intent.reason, clock_synced=self.clock(),
                          intent=intent.id)
        self.con.execute("INSERT INTO erasures (at, dev_id, epoch, what, rows, reason, clock_synced, intent) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (receipt.at, dev_id, epoch, receipt.what, receipt.rows, intent.reason,
                          None if receipt.clock_synced is None else int(receipt.clock_synced), intent.id))
        return receipt

    def erase(self, dev_id: int, epoch: int | None, reason: str = "operator", *, scrub_wait_s: float = 0.0) -> Receipt:
        """Delete a badge's physiology (one epoch, or all) now, outside the batch, and scrub the files.

        The receipt's `scrubbed` says whether the old bytes are already gone from every file; if a reader still
        held them (`scrub_wait_s` passed), the scrub stays pending and every later flush tries again."""
        intent = self._journaled_intent(dev_id, epoch, reason)
        return self._carry_out([intent], scrub_wait_s)[0]

    def _carry_out(self, intents: list[ErasureIntent], scrub_wait_s: float = 0.0) -> list[Receipt]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            receipts = [self._erase_in_tx(intent) for intent in intents]
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        scrubbed = self.scrub(scrub_wait_s)
        for receipt in receipts:
            receipt.scrubbed = scrubbed
        self._erase_in_migration_backups(intents)
        return receipts

    def _erase_in_migration_backups(self, intents: list[ErasureIntent]) -> None:
        """The copies a migration left beside the database hold physiology too: an erasure reaches them as well."""
        for path in schema.migration_backups(self.path):
            try:
                con = sqlite3.connect(str(path), isolation_level=None)
                try:
                    con.execute("PRAGMA secure_delete=ON")
                    con.execute("BEGIN IMMEDIATE")
                    for intent in intents:
                        erase_rows(con, intent)
                    con.execute("COMMIT")
                finally:
                    con.close()
            except (sqlite3.Error, OSError) as exc:  # the erasure itself is committed; say loudly what is left
                logging.getLogger("lifepalette.hub").error("erasure could not reach the migration copy %s (%s): "
                                                           "delete that file by hand", path, exc)

    def missing_intents(self) -> list[ErasureIntent]:
        """Journaled erasures this database holds no receipt for (after a restore, or a crash before the commit)."""
        if self.journal is None:
            return []
        done = {row[0] for row in self.con.execute("SELECT intent FROM erasures WHERE intent IS NOT NULL")}
        return [intent for intent in self.journal.read() if intent.id not in done]

    def replay_journal(self) -> list[Receipt]:
        missing = self.missing_intents()
        return self._carry_out(missing) if missing else []

    def scrub(self, wait_s: float = 0.0) -> bool:
        """Move the WAL into the main file and truncate it, so deleted rows survive in neither file; True when done.

        secure_delete (set in `connect`) already zeroes freed cells in the pages written back. A reader that still
        holds an older snapshot keeps the old page images alive: the checkpoint then reports busy, and we retry (with
        backoff, up to `wait_s`; the hub passes 0 and retries at its next flush) rather than report a scrub that
        did not happen. The checkpoint itself never waits on the busy timeout, so the hub's loop is never blocked.
        """
        con = self.con
        deadline = time.monotonic() + wait_s
        delay = 0.02
        con.execute("PRAGMA busy_timeout=0")
        try:
            while True:
                busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if not busy:
                    self.scrub_pending = False
                    return True
                if time.monotonic() >= deadline:
                    self.scrub_pending = True
                    return False
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 0.25)
        finally:
            con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    # -- reads ------------------------------------------------------------------------------------------------
    def knows_device(self, dev_id: int) -> bool:
        """Enrolled here, or anything stored for it (a device removed from `devices` still has rows to erase)."""
        con = self.con
        return any(con.execute(f"SELECT 1 FROM {table} WHERE dev_id = ? LIMIT 1", (dev_id,)).fetchone()
                   for table in ("devices", "frames", "physio", "consent_epochs"))

    def knows_epoch(self, dev_id: int, epoch: int) -> bool:
        con = self.con
        return any(con.execute(f"SELECT 1 FROM {table} WHERE dev_id = ? AND epoch = ? LIMIT 1",
                               (dev_id, epoch)).fetchone() for table in ("consent_epochs", "physio"))

    def stored_tail(self, dev_id: int, ring_slots: int, span: int) -> tuple[int, list[tuple[int, int]]]:
        """What a restarted hub needs to acknowledge a badge safely: (floor, [(ctr, ftype), ...] stored above it).

        Every frame at or below `floor` is stored or can never come: at least `ring_slots` newer telemetry/backlog
        frames are stored (the badge's ring no longer holds it), or it lies more than `span` below the newest."""
        con = self.con
        row = con.execute("SELECT ctr FROM frames WHERE dev_id = ? AND ftype IN (?, ?) ORDER BY ctr DESC "
                          "LIMIT 1 OFFSET ?", (dev_id, wire.TELEMETRY, wire.BACKLOG, ring_slots - 1)).fetchone()
        floor = row[0] - 1 if row else 0
        newest = con.execute("SELECT MAX(ctr) FROM frames WHERE dev_id = ?", (dev_id,)).fetchone()[0] or 0
        floor = max(floor, newest - span)
        rows = con.execute("SELECT ctr, ftype FROM frames WHERE dev_id = ? AND ctr > ? ORDER BY ctr",
                           (dev_id, floor)).fetchall()
        return floor, rows

    def count_frames(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]

    def count_physio(self, dev_id: int | None = None) -> int:
        if dev_id is None:
            return self.con.execute("SELECT COUNT(*) FROM physio").fetchone()[0]
        return self.con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = ?", (dev_id,)).fetchone()[0]

    # -- the wearer's own view (hub/wearer_link.py, hub/wearer_journey.py, web/me.py) -----------------------------------
    def wearer_generation(self, dev_id: int) -> int | None:
        """The generation of the badge's private link; None when no link was ever issued for it."""
        row = self.con.execute("SELECT generation FROM wearer_links WHERE dev_id = ?", (dev_id,)).fetchone()
        return None if row is None else int(row[0])

    def issue_wearer_link(self, dev_id: int, *, rotate: bool = False) -> int:
        """The link generation to print: the current one (1 for a first link), or the next one with `rotate`."""
        self.con.execute("BEGIN IMMEDIATE")  # two rotations at once (CLI and console) never share a generation
        try:
            current = self.wearer_generation(dev_id)
            generation = 1 if current is None else current + (1 if rotate else 0)
            if generation != current:
                self.con.execute("INSERT OR REPLACE INTO wearer_links (dev_id, generation, issued_at) VALUES (?, ?, ?)",
                                 (dev_id, generation, time.time()))
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return generation

    def wearer_epochs(self, dev_id: int) -> list[dict]:
        """The badge's consent epochs, each with how many frames and physiology rows are stored under it."""
        rows = self.con.execute(
            "SELECT e.epoch, e.revision, e.physio, e.colour, e.opened_at, e.closed_at, e.revoked_at_ctr, e.erased, "
            "(SELECT COUNT(*) FROM frames f WHERE f.dev_id = e.dev_id AND f.epoch = e.epoch), "
            "(SELECT COUNT(*) FROM physio p WHERE p.dev_id = e.dev_id AND p.epoch = e.epoch) "
            "FROM consent_epochs e WHERE e.dev_id = ? ORDER BY e.epoch", (dev_id,)).fetchall()
        return [{"epoch": epoch, "revision": rev, "physiology_shared": bool(physio), "colour_shared": bool(colour),
                 "opened_at": opened, "closed_at": closed, "revoked": revoked is not None, "erased": bool(erased),
                 "frames": frames, "physiology_rows": physio_rows}
                for epoch, rev, physio, colour, opened, closed, revoked, erased, frames, physio_rows in rows]

    def wearer_stored(self, dev_id: int) -> dict:
        frames = self.con.execute("SELECT COUNT(*) FROM frames WHERE dev_id = ?", (dev_id,)).fetchone()[0]
        return {"frames": frames, "physiology_rows": self.count_physio(dev_id)}

    def wearer_receipts(self, dev_id: int) -> list[dict]:
        rows = self.con.execute("SELECT at, epoch, rows, reason, what FROM erasures WHERE dev_id = ? ORDER BY id",
                                (dev_id,)).fetchall()
        return [{"at": at, "epoch": epoch, "rows": n, "reason": reason, "what": what} for at, epoch, n, reason, what in rows]

    def wearer_sessions(self, dev_id: int) -> list[dict]:
        """The sessions during which this badge's frames were stored (sessions are the hub's, not anyone's data)."""
        rows = self.con.execute(
            "SELECT s.id, s.started_at, s.ended_at FROM sessions s WHERE EXISTS (SELECT 1 FROM frames f WHERE "
            "f.dev_id = ? AND f.t_rx >= s.started_at AND (s.ended_at IS NULL OR f.t_rx <= s.ended_at)) ORDER BY s.id",
            (dev_id,)).fetchall()
        return [{"id": sid, "started_at": start, "ended_at": end} for sid, start, end in rows]

    def count_erasures(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM erasures").fetchone()[0]

    def start_session(self) -> int:
        synced = self.session_clock_synced = self.clock()
        cur = self.con.execute("INSERT INTO sessions (started_at, clock_synced) VALUES (?, ?)",
                               (time.time(), None if synced is None else int(synced)))
        return int(cur.lastrowid or 0)

    def end_session(self, session_id: int, at: float | None = None) -> None:
        self.con.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time() if at is None else at,
                                                                          session_id))

    def open_sessions(self) -> list[tuple[int, float, bool | None]]:
        """(id, started_at, clock_synced) of the sessions never ended, oldest first (a hub stopped while they ran)."""
        rows = self.con.execute("SELECT id, started_at, clock_synced FROM sessions WHERE ended_at IS NULL ORDER BY id")
        return [(i, s, None if c is None else bool(c)) for i, s, c in rows.fetchall()]

    def saved_journey(self, session_id: int) -> str | None:
        return self.get_meta(f"{JOURNEY_META}{session_id}")

    def save_journey(self, session_id: int, text: str) -> None:
        """A session's released journey (hub/journey.py, JSON) in the meta table, for `lifepalette report`."""
        self.set_meta(f"{JOURNEY_META}{session_id}", text)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.con.close()


def existing_db(path: str | Path) -> Path:
    """A database path that must already exist (erase/export must not create an empty one)."""
    from lifepalette.errors import UsageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"no hub database at {p}")
    try:
        p.open("rb").close()
    except OSError as exc:  # e.g. permission denied: say so, rather than calling it "not a hub database"
        raise UsageError(f"cannot open {p}: {exc.strerror or exc}") from None
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        version = schema.version_of(con)
        con.execute("SELECT COUNT(*) FROM frames").fetchone()
        con.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{p} is not a Life Palette hub database ({exc})") from None
    schema.check_not_newer(version, p)
    if version < schema.CURRENT:  # every command that opens a database brings it forward (backup beside it first)
        connect(p).close()
    return p


class ReadOnlyStore:
    """The hub database opened read-only (the audit): never creates a file, never changes one."""

    def __init__(self, path: str | Path):
        from lifepalette.errors import UsageError

        path = Path(path)
        if not path.is_file():
            raise UsageError(f"no database at {path}")
        try:
            self.con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            self.tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{path} is not a readable SQLite database ({exc})") from None
        if not {"frames", "physio"} <= self.tables:
            self.con.close()
            raise UsageError(f"{path} is not a Life Palette hub database (tables frames and physio missing)")
        try:  # read-only: an older version is read as it is (its columns are a subset), a newer one refused
            schema.check_not_newer(schema.version_of(self.con), path)
        except UsageError:
            self.con.close()
            raise

    def telemetry(self, since: float = -1e300, until: float = 1e300) -> list[tuple]:
        """Telemetry and backlog frames in arrival order: (dev_id, t_rx, consent, quality, hue, chroma, colour_age,
        battery, hr_bpm, rmssd_ms, scl, scr_per_min, motion), physiology None where none is stored; only those
        received in [since, until] when given."""
        return self.con.execute(
            "SELECT f.dev_id, f.t_rx, f.consent, f.quality, f.hue, f.chroma, f.colour_age, f.battery, "
            "p.hr_bpm, p.rmssd_ms, p.scl, p.scr_per_min, p.motion FROM frames f LEFT JOIN physio p "
            "ON p.dev_id = f.dev_id AND p.ctr = f.ctr WHERE f.ftype IN (0, 4) AND f.t_rx BETWEEN ? AND ? "
            "ORDER BY f.t_rx", (since, until)).fetchall()

    def physio_rows_without_consent(self, consent_physio_bit: int) -> int:
        return self.con.execute(
            "SELECT COUNT(*) FROM physio p JOIN frames f ON p.dev_id = f.dev_id AND p.ctr = f.ctr "
            "WHERE (f.consent & ?) = 0", (consent_physio_bit,)).fetchone()[0]

    def physio_rows_in_erased_epochs(self) -> int:
        if "consent_epochs" not in self.tables:
            return 0
        return self.con.execute("SELECT COUNT(*) FROM physio p JOIN consent_epochs e ON p.dev_id = e.dev_id "
                                "AND p.epoch = e.epoch WHERE e.erased != 0").fetchone()[0]

    def erasures_by_reason(self) -> dict[str, int]:
        """How many erasure receipts the database holds per reason ("operator", "revocation", "wearer", ...)."""
        if "erasures" not in self.tables:
            return {}
        return dict(self.con.execute("SELECT reason, COUNT(*) FROM erasures GROUP BY reason ORDER BY reason"))

    def public_budget(self) -> str | None:
        """The privacy budget the hub last recorded as spent on public numbers (meta 'public_budget', JSON)."""
        if "meta" not in self.tables:
            return None
        row = self.con.execute("SELECT value FROM meta WHERE key = 'public_budget'").fetchone()
        return row[0] if row else None

    # -- what the facilitator's session report reads (lifepalette.report) --------------------------------------
    def sessions(self) -> list[tuple[int, float, float | None, bool | None]]:
        """(id, started_at, ended_at, clock_synced) of every session, oldest first."""
        if "sessions" not in self.tables:
            return []
        synced = "clock_synced" if "clock_synced" in self._columns("sessions") else "NULL"
        rows = self.con.execute(f"SELECT id, started_at, ended_at, {synced} FROM sessions ORDER BY id").fetchall()
        return [(i, s, e, None if c is None else bool(c)) for i, s, e, c in rows]

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.con.execute(f"PRAGMA table_info({table})")}

    def journey(self, session_id: int) -> str | None:
        """The released journey the hub kept for a session (JSON), if it kept one."""
        if "meta" not in self.tables:
            return None
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (f"{JOURNEY_META}{session_id}",)).fetchone()
        return row[0] if row else None

    def frames_between(self, t0: float, t1: float) -> list[tuple]:
        """(t_rx, dev_id, ftype, consent, quality, has_physio) of the badges' own frames received in [t0, t1]."""
        return self.con.execute(
            "SELECT f.t_rx, f.dev_id, f.ftype, f.consent, f.quality, p.dev_id IS NOT NULL FROM frames f "
            "LEFT JOIN physio p ON p.dev_id = f.dev_id AND p.ctr = f.ctr "
            "WHERE f.ftype IN (0, 1, 4) AND f.t_rx BETWEEN ? AND ? ORDER BY f.t_rx", (t0, t1)).fetchall()

    def consent_epochs(self) -> list[tuple[int, float, float | None, int | None, bool]]:
        """(revision, opened_at, closed_at, revoked_at_ctr, erased) of every consent epoch (no device ids)."""
        if "consent_epochs" not in self.tables:
            return []
        return [(r, o, c, v, bool(e)) for r, o, c, v, e in self.con.execute(
            "SELECT revision, opened_at, closed_at, revoked_at_ctr, erased FROM consent_epochs ORDER BY opened_at")]

    def erasures(self) -> list[tuple[float, str, int]]:
        """(at, reason, rows) of every erasure receipt (no device ids)."""
        if "erasures" not in self.tables:
            return []
        return self.con.execute("SELECT at, reason, rows FROM erasures ORDER BY at").fetchall()

    def close(self) -> None:
        self.con.close()
