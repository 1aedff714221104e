"""Versions of the hub database schema and the forward migrations between them.

The version lives in the database header (`PRAGMA user_version`). The release before versions existed wrote 0
there; its schema is version 1 (`SCHEMA_V1`, kept verbatim). A new database is built as version 1 and migrated like
any old one, so there is exactly one way to reach the current schema.

Migrating: first a copy of the database is written beside it (`<db>.v<N>.bak`, SQLite's online backup API, 0600),
then every step runs in ONE transaction together with the new `user_version`: a failure leaves the database as it
was. A database from a newer release is refused (`SchemaError`, exit 2): this release cannot know what it holds.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from lifepalette.errors import UsageError

SCHEMA_V1 = """
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


def _v1_to_v2(con: sqlite3.Connection) -> None:
    """Clock trust and erasure identity.

    clock_synced: whether the hub's clock was NTP-synchronised when it wrote a session start or a receipt (1/0;
    NULL = not known, every row written before version 2). intent: the id of the journaled erasure intent a receipt
    carries out (hub/erasure_journal.py), so a restore can tell which journaled erasures a database already holds.
    """
    con.execute("ALTER TABLE sessions ADD COLUMN clock_synced INTEGER")
    con.execute("ALTER TABLE erasures ADD COLUMN clock_synced INTEGER")
    con.execute("ALTER TABLE erasures ADD COLUMN intent TEXT")
    con.execute("CREATE UNIQUE INDEX erasures_intent ON erasures (intent)")


def _v2_to_v3(con: sqlite3.Connection) -> None:
    """Wearer links: the generation of each badge's private link (hub/wearer_link.py). Rotating a link bumps the
    generation, so every token of an older generation stops working; a badge with no row has no valid link."""
    con.execute("CREATE TABLE wearer_links (dev_id INTEGER PRIMARY KEY, generation INTEGER NOT NULL, "
                "issued_at REAL NOT NULL)")


# MIGRATIONS[n] takes a version-n database to version n + 1. Append only: a released step never changes.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3}
CURRENT = 1 + len(MIGRATIONS)


class SchemaError(UsageError):
    """A database this release must not open (from a newer release, or not a hub database)."""


def version_of(con: sqlite3.Connection) -> int:
    """The schema version: user_version, or 1 for a hub database written before versions were recorded."""
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return int(version)
    has_frames = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'frames'").fetchone()
    return 1 if has_frames else 0


def check_not_newer(version: int, path: str | Path) -> None:
    if version > CURRENT:
        from lifepalette import __version__

        raise SchemaError(f"{path} has schema version {version}, newer than this lifepalette {__version__} "
                          f"knows (up to {CURRENT}): upgrade lifepalette, or restore a backup made by this release")


def backup_path(db: str | Path, version: int) -> Path:
    return Path(f"{db}.v{version}.bak")


def migration_backups(db: str | Path) -> list[Path]:
    """The pre-migration copies beside `db` (erasures must reach these too)."""
    return [backup_path(db, v) for v in range(1, CURRENT) if backup_path(db, v).exists()]


def copy_database(con: sqlite3.Connection, dest: str | Path) -> None:
    """A consistent copy of an open database (SQLite's online backup API; writers may go on), created 0600."""
    import tempfile

    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".tmp", dir=dest.parent)  # 0600, a name of its own
    os.close(fd)
    try:
        out = sqlite3.connect(tmp)
        try:
            con.backup(out)
            # one self-contained file: a copy must not need a -wal beside it
            out.execute("PRAGMA journal_mode=DELETE")
        finally:
            out.close()
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_current(con: sqlite3.Connection, path: str | Path, *, keep_backup: bool = True) -> int:
    """Bring an open database to CURRENT (creating it when empty); returns the version it had before."""
    before = version_of(con)
    check_not_newer(before, path)
    if before == CURRENT:
        return before
    if before == 0:
        con.executescript(SCHEMA_V1)
    elif keep_backup and str(path) != ":memory:":
        copy_database(con, backup_path(path, before))
    _migrate(con, max(before, 1))
    return before


def _migrate(con: sqlite3.Connection, version: int) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        # another process may have migrated while this one waited for the write lock: start from what is there
        version = max(version, con.execute("PRAGMA user_version").fetchone()[0])
        for step in range(version, CURRENT):
            MIGRATIONS[step](con)
        con.execute(f"PRAGMA user_version = {CURRENT}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def migration_note(db: str | Path, before: int) -> str | None:
    """One line for the hub's log when opening `db` migrated it (None when it did not)."""
    if 0 < before < CURRENT:
        return f"migrated schema {before} -> {CURRENT} (copy before: {backup_path(db, before).name})"
    return None


def read_version(path: str | Path) -> int:
    """The schema version of a database file, read-only (for doctor and the console)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return version_of(con)
    finally:
        con.close()
