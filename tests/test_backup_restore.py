"""`lifepalette backup` and `lifepalette restore`: a consistent sealed copy taken while the real hub process ingests,
restore refused while a hub runs, erasures made after the backup carried out again on restore (the rows stay gone,
the receipt is there), and every bad input one line, exit 2, with nothing changed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.hub_process import enrol, start_hub
from lifepalette.crypto import seal
from lifepalette.hub import Hub, schema
from lifepalette.hub.erasure_journal import journal_path
from lifepalette.hub.loadgen import UdpSenderPool
from lifepalette.hub.sitekey import site_key_path
from lifepalette.paths import REPO_ROOT

from protocol import frame as wire
from protocol import records

# distinctive physiology (as in test_erase): hr 0x77, rmssd 0x66, scl 0x5A5A, scr 0x44, motion 0x33
MARK = bytes.fromhex("77665a5a4433")


def marked(revision: int) -> bytes:
    return records.pack_telemetry({"hr_bpm": 0x77, "rmssd_ms": 0x66, "scl": 0x5A5A, "scr_per_min": 0x44,
                                   "motion": 0x33, "hue": 9, "chroma": 9, "colour_age": 0, "battery": 50,
                                   "quality": 7, "consent": records.make_consent(True, True, False, revision)})


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lifepalette", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def fill(db: Path) -> None:
    hub = Hub(db, scorer=None)
    keys = {dev: hub.enroll(dev) for dev in (7, 8)}
    for ctr in range(1, 41):
        for dev in (7, 8):
            assert hub.ingest(seal(keys[dev], wire.TELEMETRY, dev, ctr, marked(1 if ctr <= 20 else 2))).ok
    hub.flush()
    hub.store.con.close()


def count(db: Path, sql: str, *params) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def passfile(tmp_path) -> Path:
    path = tmp_path / "pass"
    path.write_text("correct horse battery staple\n")
    return path


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_backup_of_a_running_hub_is_consistent_sealed_and_private(tmp_path, passfile):
    db = tmp_path / "hub.db"
    keys = enrol(db, range(1, 21))
    proc, port = start_hub(db)
    pool = None
    try:
        pool = UdpSenderPool(("127.0.0.1", port), keys, rate_hz=25)
        pool.start()
        time.sleep(1.0)
        backup = tmp_path / "hub.lpbackup"
        made = cli("backup", "--db", db, "--out", backup, "--passphrase-file", passfile)  # the hub keeps writing
        assert made.returncode == 0, made.stderr
        time.sleep(0.5)
        refused = one_line_error(cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile))
        assert "in use by a running hub" in refused
    finally:
        if pool is not None:
            pool.stop()
            pool.close()
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert json.loads(made.stdout)["schema_version"] == schema.CURRENT
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    sealed = backup.read_bytes()
    assert b"SQLite format 3" not in sealed and site_key_path(db).read_text().strip().encode() not in sealed

    final_frames = {(d, c) for d, c in sqlite3.connect(db).execute("SELECT dev_id, ctr FROM frames")}
    elsewhere = tmp_path / "elsewhere" / "hub.db"
    elsewhere.parent.mkdir()
    restored = cli("restore", "--in", backup, "--db", elsewhere, "--passphrase-file", passfile)
    assert restored.returncode == 0, restored.stderr
    con = sqlite3.connect(elsewhere)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    frames = {(d, c) for d, c in con.execute("SELECT dev_id, ctr FROM frames")}
    counters = dict(con.execute("SELECT dev_id, last_ctr FROM counters"))
    con.close()
    assert 100 < len(frames) < len(final_frames)  # taken mid-stream, and the hub stored more afterwards
    assert frames <= final_frames
    for dev in keys:  # no torn copy: every counter covers its frames and the frames it covers are there
        mine = sorted(c for d, c in frames if d == dev)
        assert mine == list(range(1, len(mine) + 1)) and counters.get(dev, 0) == (mine[-1] if mine else 0)
    assert site_key_path(elsewhere).read_text() == site_key_path(db).read_text()
    assert stat.S_IMODE(site_key_path(elsewhere).stat().st_mode) == 0o600
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600


def test_restore_never_resurrects_data_erased_after_the_backup(tmp_path, passfile):
    db = tmp_path / "hub.db"
    fill(db)
    backup = tmp_path / "before-erasure.lpbackup"
    assert cli("backup", "--db", db, "--out", backup, "--passphrase-file", passfile).returncode == 0
    erased = cli("erase", "--db", db, "--dev", "7")
    assert erased.returncode == 0, erased.stderr
    receipt = json.loads(erased.stdout)["receipt"]
    assert receipt["rows"] == 40
    journal = journal_path(db)
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [set(line) for line in lines] == [{"v", "id", "at", "dev_id", "epoch", "reason", "epochs_through",
                                              "clock_synced"}]  # what to erase, never physiology

    restored = cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile)
    assert restored.returncode == 0, restored.stderr
    summary = json.loads(restored.stdout)
    assert [(r["dev_id"], r["epoch"], r["reason"]) for r in summary["erasures_reapplied"]] == [(7, None, "operator")]
    assert count(db, "SELECT COUNT(*) FROM physio WHERE dev_id = 7") == 0  # the rows stay gone
    assert count(db, "SELECT COUNT(*) FROM physio WHERE dev_id = 8") == 40  # the rest came back
    assert count(db, "SELECT COUNT(*) FROM consent_epochs WHERE dev_id = 7 AND erased = 0") == 0
    assert count(db, "SELECT COUNT(*) FROM erasures WHERE dev_id = 7 AND reason = 'operator'") == 1  # the receipt
    raw = db.read_bytes() + (Path(f"{db}-wal").read_bytes() if Path(f"{db}-wal").exists() else b"")
    assert raw.count(MARK) == 40  # badge 8's rows only: badge 7's bytes are not in the file either

    # restoring the same backup again, or opening the database, changes nothing more (idempotent)
    again = cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile)
    assert again.returncode == 0 and count(db, "SELECT COUNT(*) FROM erasures WHERE dev_id = 7") == 1
    hub = Hub(db, scorer=None)
    assert hub.store.replayed == [] and hub.store.count_physio(7) == 0
    assert any(r["dev_id"] == 7 and r["reason"] == "operator" for r in hub.receipts)
    hub.store.con.close()


def test_an_erasure_journaled_but_never_committed_is_carried_out_on_the_next_open(tmp_path):
    db = tmp_path / "hub.db"
    fill(db)
    hub = Hub(db, scorer=None)
    hub.store.queue_erasure(8, 1, "revocation")  # journaled now; the crash comes before the flush commits it
    hub.store.con.close()
    assert count(db, "SELECT COUNT(*) FROM physio WHERE dev_id = 8 AND epoch = 1") == 20
    reopened = Hub(db, scorer=None)
    try:
        assert [(r.dev_id, r.epoch, r.reason) for r in reopened.store.replayed] == [(8, 1, "revocation")]
        assert reopened.store.count_physio(8) == 20  # epoch 2 was not part of the intent
        assert [e["epoch"] for e in reopened.ledger.as_list() if e["dev_id"] == 8 and e["erased"]] == [1]
    finally:
        reopened.store.con.close()


def truncations(data: bytes) -> dict[str, bytes]:
    return {"magic only": data[:8], "mid header": data[:20], "mid first chunk": data[:200],
            "last byte missing": data[:-1], "trailing junk": data + b"\0", "flipped bit": data[:-40] +
            bytes([data[-40] ^ 1]) + data[-39:]}


def test_bad_backups_and_passphrases_are_one_line_exit_2_and_change_nothing(tmp_path, passfile):
    db = tmp_path / "hub.db"
    fill(db)
    backup = tmp_path / "good.lpbackup"
    assert cli("backup", "--db", db, "--out", backup, "--passphrase-file", passfile).returncode == 0
    target = tmp_path / "target.db"
    fill(target)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("target.db") and p.suffix != ".lock"}
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    into_missing_folder = one_line_error(cli("restore", "--in", backup, "--db", tmp_path / "no-such" / "hub.db",
                                             "--passphrase-file", passfile))
    assert "No such file or directory" in into_missing_folder
    cases = {"wrong passphrase": (backup, wrong), "not a backup": (db, passfile),
             "missing file": (tmp_path / "nope.lpbackup", passfile), "a directory": (tmp_path, passfile),
             "missing passphrase file": (backup, tmp_path / "no-pass")}
    for name, data in truncations(backup.read_bytes()).items():
        bad = tmp_path / f"bad-{name.replace(' ', '-')}.lpbackup"
        bad.write_bytes(data)
        cases[name] = (bad, passfile)
    messages = {}
    for name, (src, pf) in cases.items():
        messages[name] = one_line_error(cli("restore", "--in", src, "--db", target, "--passphrase-file", pf))
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("target.db") and p.suffix != ".lock"}
        assert after == before, f"{name}: the database changed"
    assert "wrong passphrase" in messages["wrong passphrase"]
    assert "not a Life Palette backup" in messages["not a backup"]
    assert "truncated" in messages["last byte missing"] and "truncated" in messages["mid first chunk"]
    assert "data after its last chunk" in messages["trailing junk"]


def test_backup_refuses_bad_input_in_one_line(tmp_path, passfile):
    db = tmp_path / "hub.db"
    fill(db)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    not_db = tmp_path / "not.db"
    not_db.write_bytes(b"hello" * 100)
    cases = [(tmp_path / "missing.db", tmp_path / "a.lpbackup", passfile), (not_db, tmp_path / "b.lpbackup", passfile),
             (db, tmp_path / "c.lpbackup", empty), (db, tmp_path, passfile),
             (db, tmp_path / "no-such-folder" / "d.lpbackup", passfile)]
    for src, out, pf in cases:
        one_line_error(cli("backup", "--db", src, "--out", out, "--passphrase-file", pf))
        assert not (out.exists() and out.is_file())
    assert sorted(p.name for p in tmp_path.iterdir() if "lpbackup" in p.name) == []


def test_a_backup_restores_into_the_current_schema_and_keeps_the_site_key(tmp_path, passfile):
    db = tmp_path / "hub.db"
    fill(db)
    backup = tmp_path / "x.lpbackup"
    assert cli("backup", "--db", db, "--out", backup, "--passphrase-file", passfile).returncode == 0
    os.remove(site_key_path(db))
    site_key_path(db).write_text("00" * 16 + "\n")
    os.chmod(site_key_path(db), 0o600)
    summary = json.loads(cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile).stdout)
    assert summary["site_key"] and summary["site_key_replaced"]
    assert site_key_path(db).read_text().strip() != "00" * 16
    hub = Hub(db, scorer=None)  # the restored badge keys verify the badges' frames again
    try:
        assert hub.ingest(seal(hub.keys[7], wire.TELEMETRY, 7, 41, marked(2))).ok
    finally:
        hub.store.con.close()


def test_one_hub_per_database_and_a_killed_holder_leaves_no_stale_lock(tmp_path, passfile):
    from lifepalette.hub.dblock import DatabaseLock

    db = tmp_path / "hub.db"
    fill(db)
    with DatabaseLock(db, "a running hub"):
        line = one_line_error(cli("hub", "--db", db, "--udp", "127.0.0.1:0"))
        assert f"{db} is in use by a running hub (pid {os.getpid()})" in line
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from lifepalette.hub.dblock import "
                               "DatabaseLock; DatabaseLock(sys.argv[1], 'a running hub').acquire(); print(1, "
                               "flush=True); time.sleep(60)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "1\n"
        backup = tmp_path / "b.lpbackup"
        assert cli("backup", "--db", db, "--out", backup, "--passphrase-file", passfile).returncode == 0
        assert "in use" in one_line_error(cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile))
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops the flock with the process
        holder.wait(10)
    assert cli("restore", "--in", backup, "--db", db, "--passphrase-file", passfile).returncode == 0


def test_a_backup_holding_a_newer_schema_is_refused_and_changes_nothing(tmp_path, passfile):
    from lifepalette.hub.backup import _seal

    newer = tmp_path / "newer.db"
    fill(newer)
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {schema.CURRENT + 1}")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    sealed = tmp_path / "newer.lpbackup"  # as a later release's `backup` would write it
    _seal(newer, sealed, passfile.read_bytes().rstrip(b"\n"),
          {"schema_version": schema.CURRENT + 1, "created_at": time.time(), "db_bytes": newer.stat().st_size,
           "site_key": None})
    target = tmp_path / "hub.db"
    fill(target)
    before = target.read_bytes()
    line = one_line_error(cli("restore", "--in", sealed, "--db", target, "--passphrase-file", passfile))
    assert f"schema version {schema.CURRENT + 1}" in line and "upgrade lifepalette" in line
    assert target.read_bytes() == before
    assert not any(p.name.startswith("hub.db.restoring") for p in tmp_path.iterdir())
