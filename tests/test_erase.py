"""Erasure: `lifepalette erase` deletes a badge's physiology (per epoch or all) from the database FILE, with a
receipt; the deleted values are gone from the raw bytes of the file and its WAL, not just hidden."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from lifepalette.crypto import seal
from lifepalette.hub import Hub

from protocol import frame as wire
from protocol import records

# Distinctive physiology: hr 0x77, rmssd 0x66, scl 0x5A5A, scr 0x44, motion 0x33 -> in a SQLite record body these
# columns are stored back to back as 77 66 5A 5A 44 33.
MARK = bytes.fromhex("77665a5a4433")


def marked(ctr: int, revision: int) -> bytes:
    return records.pack_telemetry({"hr_bpm": 0x77, "rmssd_ms": 0x66, "scl": 0x5A5A, "scr_per_min": 0x44,
                                   "motion": 0x33, "hue": 9, "chroma": 9, "colour_age": 0, "battery": 50,
                                   "quality": 7, "consent": records.make_consent(True, True, False, revision)})


def raw_bytes(db: Path) -> bytes:
    data = db.read_bytes()
    wal = Path(str(db) + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def fill(db: Path) -> None:
    hub = Hub(db, scorer=None)
    key, other = hub.enroll(7), hub.enroll(8)
    for ctr in range(1, 41):  # epoch 1 (revision 1) for ctr 1-20, epoch 2 (revision 2) for 21-40
        assert hub.ingest(seal(key, wire.TELEMETRY, 7, ctr, marked(ctr, 1 if ctr <= 20 else 2))).ok
        assert hub.ingest(seal(other, wire.TELEMETRY, 8, ctr, marked(ctr, 1))).ok
    hub.flush()
    hub.store.con.close()


def erase(db: Path, *args: str) -> dict:
    r = subprocess.run([sys.executable, "-m", "lifepalette", "erase", "--db", str(db), *args],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["receipt"]


def test_erase_epoch_then_all_rows_gone_from_file(tmp_path):
    db = tmp_path / "hub.db"
    fill(db)
    assert raw_bytes(db).count(MARK) >= 80  # the probe can see the rows while they exist
    receipt = erase(db, "--dev", "7", "--epoch", "1")
    assert receipt["dev_id"] == 7 and receipt["epoch"] == 1 and receipt["rows"] == 20
    assert receipt["what"] == "physiology" and receipt["at"] > 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 7").fetchone()[0] == 20
    con.close()
    receipt = erase(db, "--dev", "7")
    assert receipt["rows"] == 20 and receipt["epoch"] is None
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 7").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 8").fetchone()[0] == 40  # others untouched
    assert con.execute("SELECT COUNT(*) FROM frames WHERE dev_id = 7").fetchone()[0] == 40  # non-physio kept
    assert con.execute("SELECT COUNT(*) FROM erasures").fetchone()[0] == 2
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    # Only badge 8's 40 rows may still carry the pattern: badge 7's bytes were overwritten, not just unlinked.
    assert raw_bytes(db).count(MARK) == 40


def test_erase_usage_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lifepalette", "erase", "--db", str(tmp_path / "none.db"), "--dev",
                        "3"], capture_output=True, text=True)
    assert r.returncode == 2 and "no hub database" in r.stderr and "Traceback" not in r.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    r = subprocess.run([sys.executable, "-m", "lifepalette", "erase", "--db", str(junk), "--dev", "3"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def raw_files(db: Path) -> bytes:
    """The database, its WAL and its shared-memory index, as bytes on disk."""
    return b"".join(Path(str(db) + suffix).read_bytes() for suffix in ("", "-wal", "-shm")
                    if Path(str(db) + suffix).exists())


def test_erase_waits_for_a_concurrent_reader_and_scrubs_every_file(tmp_path):
    db = tmp_path / "hub.db"
    fill(db)
    reader = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM physio").fetchone()[0] == 80  # holds a snapshot with the rows
    # the reader ends its transaction after longer than SQLite's 5 s busy timeout, but keeps the database open (so
    # its own close cannot checkpoint for us)
    release = threading.Timer(6.5, lambda: reader.execute("COMMIT"))
    release.start()
    try:
        receipt = erase(db, "--dev", "7")
        release.join()
        assert receipt["rows"] == 40 and receipt["scrubbed"] is True
        assert raw_files(db).count(MARK) == 40  # only badge 8's rows, in no file a trace of badge 7's
    finally:
        release.cancel()
        reader.close()


def test_erase_says_so_when_a_reader_never_lets_go(tmp_path):
    from lifepalette.hub.store import Store

    db = tmp_path / "hub.db"
    fill(db)
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM physio").fetchone()
    store = Store(db)
    receipt = store.erase(7, None, "operator", scrub_wait_s=0.2)
    assert receipt.scrubbed is False and store.scrub_pending
    reader.execute("COMMIT")
    reader.close()
    store.flush()  # the next flush retries the pending scrub
    assert not store.scrub_pending
    store.con.close()
    assert raw_files(db).count(MARK) == 40


def operator_state(port: int, token: str) -> dict:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/operator/state",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["state"]


def physio_rows(db: Path, dev: int) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = ?", (dev,)).fetchone()[0]
    finally:
        con.close()


def frames_stored(db: Path, dev: int) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM frames WHERE dev_id = ?", (dev,)).fetchone()[0]
    finally:
        con.close()


def test_erase_while_the_hub_runs_goes_through_the_hub_and_sticks(tmp_path):
    import os
    import socket
    import time

    from helpers.hub_process import start_hub, stop_hub
    from helpers.waits import port_answers, wait_for
    from lifepalette.hub.sitekey import derive_device_key, load_site_key
    from lifepalette.paths import REPO_ROOT

    db = tmp_path / "hub.db"
    fill(db)
    key = derive_device_key(load_site_key(db, create=False), 7)
    token = "t" * 24
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        http_port = s.getsockname()[1]
    env = dict(os.environ, LP_OPERATOR_TOKEN=token, PYTHONUNBUFFERED="1")
    proc, udp_port = start_hub(db, "--http", f"127.0.0.1:{http_port}", "--cadence", "0.2", env=env)
    badge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        hub_addr = ("127.0.0.1", udp_port)
        ctr = 41

        def send(n: int) -> None:
            nonlocal ctr
            for _ in range(n):  # badge 7 goes on in epoch 2 (revision 2), physiology shared
                badge.sendto(seal(key, wire.TELEMETRY, 7, ctr, marked(ctr, 2)), hub_addr)
                ctr += 1
                time.sleep(0.002)

        send(10)
        wait_for(lambda: frames_stored(db, 7) == 50, timeout=20, what="the running hub storing badge 7's frames")
        assert physio_rows(db, 7) == 50
        wait_for(lambda: port_answers(http_port), timeout=20, what="the operator API")

        r = subprocess.run([sys.executable, "-m", "lifepalette", "erase", "--db", str(db), "--dev", "7"],
                           capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert r.returncode == 0, r.stderr
        receipt = json.loads(r.stdout)["receipt"]
        assert receipt["dev_id"] == 7 and receipt["epoch"] is None and receipt["rows"] == 50
        assert receipt["reason"] == "operator" and receipt["scrubbed"] is True

        assert os.stat(f"{db}.control").st_mode & 0o777 == 0o600  # the hub's control socket: its owner only
        unknown = subprocess.run([sys.executable, "-m", "lifepalette", "erase", "--db", str(db), "--dev", "999"],
                                 capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert unknown.returncode == 2 and "device 999 is not enrolled" in unknown.stderr
        assert "Traceback" not in unknown.stderr and unknown.stderr.count("\n") == 1

        send(10)  # the same epoch goes on: its physiology must not be stored again
        wait_for(lambda: frames_stored(db, 7) == 60, timeout=20, what="the hub storing the later frames")
        assert physio_rows(db, 7) == 0
        state = operator_state(http_port, token)
        assert any(e["dev_id"] == 7 and e["rows"] == 50 and e["reason"] == "operator" for e in state["erasures"])
        assert all(e["erased"] for e in state["consent_epochs"] if e["dev_id"] == 7)
    finally:
        badge.close()
        stop_hub(proc)
    assert proc.returncode == 0, proc.stderr.read()
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM consent_epochs WHERE dev_id = 7 AND erased = 0").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 7").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM erasures WHERE dev_id = 7").fetchone()[0] == 1
    con.close()
    assert raw_files(db).count(MARK) == 40  # badge 8's rows only


def test_a_hub_with_a_stale_ledger_never_unerases_an_epoch(tmp_path):
    """An erasure that reached the file behind a hub's back (e.g. the hub opened just before it): the hub's next
    flush neither sets `erased` back to 0 nor stores physiology in the erased epoch."""
    from lifepalette.hub.store import Store

    db = tmp_path / "hub.db"
    fill(db)
    hub = Hub(db, scorer=None)  # its ledger says epoch 2 of badge 7 is open, not erased
    other = Store(db)
    other.erase(7, None, "operator")
    other.close()
    key = hub.keys[7]
    for ctr in range(41, 51):
        assert hub.ingest(seal(key, wire.TELEMETRY, 7, ctr, marked(ctr, 2))).ok
    hub.flush()
    hub.adopt_erasures()  # what a starting hub does once it holds the database: its ledger learns the erasure
    assert [e["erased"] for e in hub.ledger.as_list() if e["dev_id"] == 7] == [True, True]
    hub.store.con.close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT epoch, erased FROM consent_epochs WHERE dev_id = 7").fetchall() == [(1, 1), (2, 1)]
    assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = 7").fetchone()[0] == 0
    con.close()
