"""The hub's SQLite store: frames, physiology, replay counters, consent ledger, erasure receipts.

One file in WAL mode. Writes are batched: the ingest path appends rows to memory and `flush()` commits them in one
transaction together with the replay counters they advanced, so a crash either keeps a frame AND its counter or
neither (no committed frame lost, no replay window opened). Physiology lives in its own table so that erasure
deletes whole rows; `secure_delete` overwrites the freed bytes and a WAL checkpoint removes the old page images.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from lifepalette.boundary import FrameRow, PhysioRow

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (dev_id INTEGER PRIMARY KEY, enrolled_at REAL NOT NULL, label TEXT);
CREATE TABLE IF NOT EXISTS counters (dev_id INTEGER PRIMARY KEY, last_ctr INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS hub_counters (name TEXT PRIMARY KEY, reserved_to INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frames (
    dev_id INTEGER NOT NULL, ctr INTEGER NOT NULL, ftype INTEGER NOT NULL, t_rx REAL NOT NULL, link TEXT,
    epoch INTEGER, consent INTEGER, battery INTEGER, quality INTEGER, hue INTEGER, chroma INTEGER,
    colour_age INTEGER,
    PRIMARY KEY (dev_id, ctr)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS physio (
    dev_id INTEGER NOT NULL, ctr INTEGER NOT NULL, epoch INTEGER NOT NULL,
    hr_bpm INTEGER, rmssd_ms INTEGER, scl INTEGER, scr_per_min INTEGER, motion INTEGER,
    PRIMARY KEY (dev_id, ctr)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS physio_epoch ON physio (dev_id, epoch);
CREATE TABLE IF NOT EXISTS consent_epochs (
    dev_id INTEGER NOT NULL, epoch INTEGER NOT NULL, revision INTEGER NOT NULL, physio INTEGER NOT NULL,
    colour INTEGER NOT NULL, first_ctr INTEGER NOT NULL, last_ctr INTEGER NOT NULL, opened_at REAL NOT NULL,
    closed_at REAL, revoked_at_ctr INTEGER, erased INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dev_id, epoch));
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, dev_id INTEGER NOT NULL, epoch INTEGER, what TEXT NOT NULL,
    rows INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started_at REAL NOT NULL, ended_at REAL);
"""

FRAME_COLUMNS = FrameRow._fields
PHYSIO_COLUMNS = PhysioRow._fields
PHYSIO_FIELDS = PHYSIO_COLUMNS[3:]
_INSERT_FRAME = f"INSERT OR IGNORE INTO frames ({', '.join(FRAME_COLUMNS)}) VALUES ({', '.join('?' * len(FRAME_COLUMNS))})"
_INSERT_PHYSIO = (f"INSERT OR IGNORE INTO physio ({', '.join(PHYSIO_COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(PHYSIO_COLUMNS))})")
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

    def as_dict(self) -> dict:
        return {"at": self.at, "dev_id": self.dev_id, "epoch": self.epoch, "what": self.what, "rows": self.rows,
                "reason": self.reason}


@dataclass
class Batch:
    """Rows waiting for the next transaction; they commit together with the counters they advanced."""

    frames: list[tuple] = field(default_factory=list)  # values in FrameRow field order
    physio: list[tuple] = field(default_factory=list)  # values in PhysioRow field order
    epochs: dict[tuple[int, int], Epoch] = field(default_factory=dict)
    erasures: list[tuple[int, int | None, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (and create) the hub database with the pragmas every user of it needs."""
    if str(path) != ":memory:" and not os.path.exists(path):
        # it holds physiology: owner-only from the first byte (SQLite gives -wal/-shm the same mode)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit survives power loss too; the batch makes the fsync cost per frame tiny.
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA secure_delete=ON")
    con.execute("PRAGMA busy_timeout=5000")
    con.executescript(SCHEMA)
    return con


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
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.con = connect(self.path)
        committed = dict(self.con.execute("SELECT dev_id, last_ctr FROM counters"))
        self.counters = Counters(committed)
        self.batch = Batch()
        self.frames_committed = 0
        self.flushes = 0

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
        rows = self.con.execute("SELECT at, dev_id, epoch, rows, reason, what FROM erasures ORDER BY id DESC LIMIT ?",
                                (limit,)).fetchall()
        return [Receipt(*row) for row in rows]

    # -- batched writes ---------------------------------------------------------------------------------------
    def add_frame(self, row: FrameRow | tuple, physio_row: PhysioRow | tuple | None) -> None:
        """Queue one frame (values in FrameRow field order) and its physiology (PhysioRow order) if any."""
        self.batch.frames.append(row)
        if physio_row is not None:
            self.batch.physio.append(physio_row)

    def note_epoch(self, epoch: Epoch) -> None:
        self.batch.epochs[(epoch.dev_id, epoch.epoch)] = epoch

    def queue_erasure(self, dev_id: int, epoch: int | None, reason: str) -> None:
        self.batch.erasures.append((dev_id, epoch, reason))

    def pending(self) -> int:
        return len(self.batch.frames) + len(self.batch.erasures) + len(self.batch.epochs)

    def flush(self) -> tuple[int, list[Receipt]]:
        """Commit the batch (frames, physiology, counters, ledger, erasures) in ONE transaction.

        Returns (frames newly stored, erasure receipts). On failure nothing of the batch is stored and the
        in-memory counters go back to their committed values.
        """
        batch, self.batch = self.batch, Batch()
        counter_rows = self.counters.rows()
        if not batch.frames and not counter_rows and not batch.epochs and not batch.erasures:
            return 0, []
        con = self.con
        try:
            con.execute("BEGIN IMMEDIATE")
            before = con.total_changes
            con.executemany(_INSERT_FRAME, batch.frames)
            stored = con.total_changes - before
            con.executemany(_INSERT_PHYSIO, batch.physio)
            con.executemany("INSERT OR REPLACE INTO counters (dev_id, last_ctr) VALUES (?, ?)", counter_rows)
            con.executemany(
                "INSERT OR REPLACE INTO consent_epochs (dev_id, epoch, revision, physio, colour, first_ctr, last_ctr, "
                "opened_at, closed_at, revoked_at_ctr, erased) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.dev_id, e.epoch, e.revision, int(e.physio), int(e.colour), e.first_ctr, e.last_ctr, e.opened_at,
                  e.closed_at, e.revoked_at_ctr, int(e.erased)) for e in batch.epochs.values()])
            receipts = [self._erase_in_tx(dev, epoch, reason) for dev, epoch, reason in batch.erasures]
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            committed = dict(con.execute("SELECT dev_id, last_ctr FROM counters"))
            self.counters.rollback_to(committed)
            raise
        self.counters.dirty.clear()
        self.frames_committed += stored
        self.flushes += 1
        if receipts:
            self.scrub()
        return stored, receipts

    # -- erasure ----------------------------------------------------------------------------------------------
    def _erase_in_tx(self, dev_id: int, epoch: int | None, reason: str) -> Receipt:
        if epoch is None:
            cur = self.con.execute("DELETE FROM physio WHERE dev_id = ?", (dev_id,))
            self.con.execute("UPDATE consent_epochs SET erased = 1 WHERE dev_id = ?", (dev_id,))
        else:
            cur = self.con.execute("DELETE FROM physio WHERE dev_id = ? AND epoch = ?", (dev_id, epoch))
            self.con.execute("UPDATE consent_epochs SET erased = 1 WHERE dev_id = ? AND epoch = ?", (dev_id, epoch))
        receipt = Receipt(time.time(), dev_id, epoch, cur.rowcount, reason)
        self.con.execute("INSERT INTO erasures (at, dev_id, epoch, what, rows, reason) VALUES (?, ?, ?, ?, ?, ?)",
                         (receipt.at, dev_id, epoch, receipt.what, receipt.rows, reason))
        return receipt

    def erase(self, dev_id: int, epoch: int | None, reason: str = "operator") -> Receipt:
        """Delete a badge's physiology (one epoch, or all) now, outside the batch, and scrub the files."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            receipt = self._erase_in_tx(dev_id, epoch, reason)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.scrub()
        return receipt

    def scrub(self) -> None:
        """Move the WAL into the main file and truncate it, so deleted rows survive in neither file.

        secure_delete (set in `connect`) already zeroes freed cells in the pages written back.
        """
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reads ------------------------------------------------------------------------------------------------
    def max_counter_before(self, dev_id: int, t_rx: float) -> int:
        """The highest counter of this badge stored before time `t_rx` (0 if none): acknowledged on restart."""
        row = self.con.execute("SELECT MAX(ctr) FROM frames WHERE dev_id = ? AND t_rx < ?", (dev_id, t_rx)).fetchone()
        return row[0] or 0

    def count_frames(self) -> int:
        return self.con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]

    def count_physio(self, dev_id: int | None = None) -> int:
        if dev_id is None:
            return self.con.execute("SELECT COUNT(*) FROM physio").fetchone()[0]
        return self.con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = ?", (dev_id,)).fetchone()[0]

    def start_session(self) -> int:
        cur = self.con.execute("INSERT INTO sessions (started_at) VALUES (?)", (time.time(),))
        return int(cur.lastrowid or 0)

    def end_session(self, session_id: int) -> None:
        self.con.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (time.time(), session_id))

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
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        con.execute("SELECT COUNT(*) FROM frames").fetchone()
        con.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{p} is not a Life Palette hub database ({exc})") from None
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

    def telemetry(self) -> list[tuple]:
        """Telemetry and backlog frames in arrival order: (dev_id, t_rx, consent, quality, hue, chroma, colour_age,
        battery, hr_bpm, rmssd_ms, scl, scr_per_min, motion), physiology None where none is stored."""
        return self.con.execute(
            "SELECT f.dev_id, f.t_rx, f.consent, f.quality, f.hue, f.chroma, f.colour_age, f.battery, "
            "p.hr_bpm, p.rmssd_ms, p.scl, p.scr_per_min, p.motion FROM frames f LEFT JOIN physio p "
            "ON p.dev_id = f.dev_id AND p.ctr = f.ctr WHERE f.ftype IN (0, 4) ORDER BY f.t_rx").fetchall()

    def physio_rows_without_consent(self, consent_physio_bit: int) -> int:
        return self.con.execute(
            "SELECT COUNT(*) FROM physio p JOIN frames f ON p.dev_id = f.dev_id AND p.ctr = f.ctr "
            "WHERE (f.consent & ?) = 0", (consent_physio_bit,)).fetchone()[0]

    def physio_rows_in_erased_epochs(self) -> int:
        if "consent_epochs" not in self.tables:
            return 0
        return self.con.execute("SELECT COUNT(*) FROM physio p JOIN consent_epochs e ON p.dev_id = e.dev_id "
                                "AND p.epoch = e.epoch WHERE e.erased != 0").fetchone()[0]

    def close(self) -> None:
        self.con.close()
