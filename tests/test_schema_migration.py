"""Schema versions: a database written by the release before versions existed (schema version 1, kept verbatim in
tests/fixtures/hub_schema_v1.sql) is migrated through every later version, after a backup beside it, with every row
intact, replays still rejected and erased physiology still gone. A database from a newer release is refused."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from lifepalette.crypto import seal
from lifepalette.hub import Hub, schema
from lifepalette.hub.store import Store

from protocol import frame as wire
from protocol import records

FIXTURE = Path(__file__).parent / "fixtures" / "hub_schema_v1.sql"
V1_TABLES = ("meta", "devices", "counters", "hub_counters", "frames", "physio", "consent_epochs", "erasures",
             "sessions")


def telemetry(ctr: int, physio: bool, revision: int) -> bytes:
    return records.pack_telemetry({"hr_bpm": 60 + ctr % 30, "rmssd_ms": 30 + ctr % 20, "scl": 400 + ctr,
                                   "scr_per_min": ctr % 9, "motion": ctr % 50, "hue": ctr % 256, "chroma": 120,
                                   "colour_age": 1, "battery": 80, "quality": 15,
                                   "consent": records.make_consent(physio, True, False, revision)})


def live_rows(tmp: Path) -> tuple[dict[str, list[tuple]], dict[int, bytes]]:
    """Real rows: the hub ingests sealed frames of two badges; badge 7 revokes physiology (an erasure receipt in
    a new consent epoch), a session is started and ended, command counters are reserved."""
    db = tmp / "source.db"
    hub = Hub(db, scorer=None)
    keys = {dev: hub.enroll(dev) for dev in (7, 8)}
    for ctr in range(1, 31):
        assert hub.ingest(seal(keys[7], wire.TELEMETRY, 7, ctr, telemetry(ctr, ctr <= 20, 1 if ctr <= 20 else 2))).ok
        assert hub.ingest(seal(keys[8], wire.TELEMETRY, 8, ctr, telemetry(ctr, True, 1))).ok
    hub.flush()
    hub.start_session()
    hub.end_session()
    hub.seal_command(8, records.pack_cmd_colour(1, 2, 3))
    con = hub.store.con
    rows = {}
    for table in V1_TABLES:
        columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        v1_columns = [c for c in columns if c not in ("clock_synced", "intent")]
        rows[table] = con.execute(f"SELECT {', '.join(v1_columns)} FROM {table} ORDER BY 1, 2").fetchall()
    con.close()
    return rows, keys


def build_v1(path: Path, rows: dict[str, list[tuple]]) -> None:
    con = sqlite3.connect(path)
    con.executescript(FIXTURE.read_text())
    con.execute("PRAGMA journal_mode=WAL")  # as the version-1 hub left its file
    for table, table_rows in rows.items():
        if table_rows:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(table_rows[0]))})", table_rows)
    con.commit()
    con.close()
    os.chmod(path, 0o600)


def v1_view(path: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(path)
    try:
        out = {}
        for table in V1_TABLES:
            v1_columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")
                          if r[1] not in ("clock_synced", "intent")]
            out[table] = con.execute(f"SELECT {', '.join(v1_columns)} FROM {table} ORDER BY 1, 2").fetchall()
        return out
    finally:
        con.close()


@pytest.fixture
def v1_db(tmp_path) -> tuple[Path, dict[str, list[tuple]], dict[int, bytes]]:
    rows, keys = live_rows(tmp_path)
    db = tmp_path / "hub.db"
    build_v1(db, rows)
    # the site key beside the source database is the one these badges were enrolled with
    os.replace(tmp_path / "source.db.sitekey", tmp_path / "hub.db.sitekey")
    return db, rows, keys


def test_the_v1_fixture_holds_every_kind_of_row(v1_db):
    db, rows, _ = v1_db
    assert schema.read_version(db) == 1
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0  # the released hub never wrote one
    con.close()
    for table in V1_TABLES:
        assert rows[table], f"no {table} rows: the migration test would prove nothing about them"
    assert any(r[-1] == 1 for r in rows["consent_epochs"])  # an erased epoch
    assert rows["erasures"][0][5] == 20 and rows["erasures"][0][6] == "revocation"


def test_v1_migrates_through_every_version_keeping_every_row(v1_db):
    db, rows, keys = v1_db
    Store(db).con.close()  # the store opens it (the hub, and every command): the migration runs here
    assert schema.read_version(db) == schema.CURRENT == len(schema.MIGRATIONS) + 1
    assert v1_view(db) == rows
    hub = Hub(db, scorer=None)
    try:
        # rows from before version 2 do not know whether the clock was synchronised: NULL, not a guess
        con = hub.store.con
        assert con.execute("SELECT clock_synced FROM sessions").fetchall() == [(None,)]
        assert con.execute("SELECT clock_synced, intent FROM erasures").fetchall() == [(None, None)]
        # replay counters still hold: every frame already stored is rejected when sent again
        for dev in (7, 8):
            for ctr in (1, 20, 30):
                verdict = hub.ingest(seal(keys[dev], wire.TELEMETRY, dev, ctr, telemetry(ctr, True, 2)))
                assert not verdict.ok and verdict.reason == "replay"
        assert hub.ingest(seal(keys[8], wire.TELEMETRY, 8, 31, telemetry(31, True, 1))).ok
        # erased stays erased: badge 7's revoked epoch keeps no physiology, and backlog cannot refill it
        erased = [e for e in hub.ledger.as_list() if e["dev_id"] == 7 and e["erased"]]
        assert len(erased) == 1
        assert hub.store.count_physio(7) == 0
        hub.flush()
        assert hub.store.count_physio(7) == 0
        assert [r["reason"] for r in hub.receipts] == ["revocation"]
        # hub-side counters continue past their reserved blocks (never reused)
        before = dict(rows["hub_counters"])
        first, _ = hub.store.reserve_counter_block("cmd:8")
        assert first == before["cmd:8"]
    finally:
        hub.store.con.close()


def test_the_migration_writes_a_backup_beside_the_database_first(v1_db):
    db, rows, _ = v1_db
    Store(db).con.close()
    backup = schema.backup_path(db, 1)
    assert backup.is_file() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert schema.read_version(backup) == 1
    assert v1_view(backup) == rows
    assert not Path(f"{backup}-wal").exists()  # self-contained: copied without its WAL it would be incomplete


def test_a_failing_migration_leaves_the_database_as_it_was(v1_db, monkeypatch):
    db, rows, _ = v1_db

    def broken(con):
        con.execute("ALTER TABLE sessions ADD COLUMN clock_synced INTEGER")
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setitem(schema.MIGRATIONS, 1, broken)
    with pytest.raises(schema.SchemaError, match="disk I/O error"):  # one line at the CLI, exit 2
        Store(db)
    assert schema.read_version(db) == 1
    con = sqlite3.connect(db)
    assert "clock_synced" not in [r[1] for r in con.execute("PRAGMA table_info(sessions)")]
    con.close()
    monkeypatch.undo()
    Store(db).con.close()  # and the real migration still succeeds afterwards
    assert schema.read_version(db) == schema.CURRENT
    assert v1_view(db) == rows


def test_a_new_database_is_built_by_the_same_migrations(tmp_path):
    fresh = tmp_path / "fresh.db"
    Store(fresh).con.close()
    assert schema.read_version(fresh) == schema.CURRENT
    assert not schema.migration_backups(fresh)  # nothing to keep a copy of

    def shape(path):
        con = sqlite3.connect(path)
        out = sorted(con.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
        con.close()
        return out

    migrated = tmp_path / "migrated.db"
    con = sqlite3.connect(migrated)
    con.executescript(FIXTURE.read_text())
    con.close()
    Store(migrated).con.close()
    assert shape(fresh) == shape(migrated)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lifepalette", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [
    ["export", "--out", "{tmp}/out.csv"], ["erase", "--dev", "7"], ["enroll", "--dev", "9", "--out", "{tmp}/b.json"],
    ["hub", "--udp", "127.0.0.1:0"], ["audit"],
])
def test_a_database_from_a_newer_release_is_refused_in_one_line(tmp_path, command):
    db = tmp_path / "hub.db"
    Store(db).con.close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {schema.CURRENT + 1}")
    con.close()
    before = db.read_bytes()
    args = [a.format(tmp=tmp_path) for a in command]
    if args[0] == "audit":
        args = ["audit", "--db", str(db)]
    else:
        args[1:1] = ["--db", str(db)]
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"schema version {schema.CURRENT + 1}" in lines[0] and "upgrade lifepalette" in lines[0]
    assert db.read_bytes() == before
    assert not schema.migration_backups(db)


def test_an_erasure_reaches_the_copy_the_migration_left(v1_db):
    db, _, _ = v1_db
    store = Store(db)
    backup = schema.backup_path(db, 1)
    assert store.schema_before == 1
    assert schema.migration_note(db, 1) == f"migrated schema 1 -> {schema.CURRENT} (copy before: {backup.name})"
    con = sqlite3.connect(backup)
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 8").fetchone()[0] == 30
    con.close()
    store.erase(8, None, "operator")
    store.con.close()
    con = sqlite3.connect(backup)
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 8").fetchone()[0] == 0
    assert con.execute("SELECT MIN(erased) FROM consent_epochs WHERE dev_id = 8").fetchone()[0] == 1
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0  # still the version-1 copy it was
    con.close()


def test_the_hub_migrates_on_start_and_says_so(v1_db):
    import signal

    db, rows, _ = v1_db
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "hub", "--db", str(db), "--udp", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert lines[2] == f"database: migrated schema 1 -> {schema.CURRENT} (copy before: hub.db.v1.bak)", lines
    assert proc.returncode == 0 and v1_view(schema.backup_path(db, 1)) == rows


def damaged(tmp_path: Path, kind: str) -> Path:
    db = tmp_path / "hub.db"
    if kind == "not SQLite":
        db.write_bytes(b"definitely not a database\n" * 200)
    elif kind == "truncated":
        Hub(db, scorer=None).store.con.close()
        data = db.read_bytes()
        db.write_bytes(data[:len(data) // 2 + 100])
    else:  # a directory where the file should be
        db.mkdir()
    return db


@pytest.mark.parametrize("kind", ["not SQLite", "truncated", "a directory"])
def test_an_unusable_database_is_one_line_exit_2_for_every_command(tmp_path, kind):
    db = damaged(tmp_path, kind)
    before = db.read_bytes() if db.is_file() else None
    commands = [["hub", "--db", db, "--udp", "127.0.0.1:0"], ["enroll", "--db", db, "--dev", "3", "--out", tmp_path / "b.json"],
                ["erase", "--db", db, "--dev", "3"], ["export", "--db", db, "--out", tmp_path / "x.csv"],
                ["backup", "--db", db, "--out", tmp_path / "x.lpbackup", "--passphrase-file", FIXTURE],
                ["audit", "--db", db]]
    for command in commands:
        result = cli(*map(str, command))
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (command, result.stderr)
        assert (db.read_bytes() if db.is_file() else None) == before, command


def test_two_openers_racing_on_a_v1_database_migrate_it_once(v1_db):
    db, rows, _ = v1_db
    first = sqlite3.connect(db, isolation_level=None)
    second = sqlite3.connect(db, isolation_level=None)
    assert schema.version_of(first) == schema.version_of(second) == 1  # both decided to migrate
    schema.ensure_current(first, db)
    schema._migrate(second, 1)  # decided before the first committed; under the lock it sees version 2 and stops
    first.close()
    second.close()
    assert schema.read_version(db) == schema.CURRENT and v1_view(db) == rows
