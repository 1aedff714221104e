"""A clock the hub can trust: whether NTP had synchronised the clock is recorded with every session start and every
erasure receipt (never a corrected timestamp), shown to the operator, and checked by `doctor --hub`."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from lifepalette.crypto import seal
from lifepalette.hub import Hub, clock, schema
from lifepalette.hub.clock import ClockState
from lifepalette.hub.erasure_journal import journal_path
from lifepalette.tools.doctor import System, run_checks

from protocol import frame as wire
from protocol import records


@pytest.fixture
def pretend_clock(monkeypatch):
    state = {"synced": False}
    monkeypatch.setattr(clock, "clock_state", lambda ask_systemd=False: ClockState(state["synced"], "pretend",
                                                                                   "set by the test"))
    return state


def test_sessions_and_receipts_record_whether_the_clock_was_synchronised(tmp_path, pretend_clock):
    db = tmp_path / "hub.db"
    hub = Hub(db, scorer=None)
    key = hub.enroll(7)
    consent = records.make_consent(True, True, False, 1)
    values = {"hr_bpm": 70, "rmssd_ms": 40, "scl": 500, "scr_per_min": 3, "motion": 5, "hue": 1, "chroma": 2,
              "colour_age": 1, "battery": 80, "quality": 15, "consent": consent}
    for ctr in range(1, 6):
        assert hub.ingest(seal(key, wire.TELEMETRY, 7, ctr, records.pack_telemetry(values))).ok
    hub.flush()

    before = time.time()
    assert hub.start_session()["clock_synced"] is False  # the operator sees it with the session
    hub.end_session()
    receipt = hub.erase(7, None)
    assert receipt["clock_synced"] is False
    state = hub.operator_state()
    assert state["clock"] == {"synced": False, "source": "pretend", "detail": "set by the test"}
    assert state["release"]["schema_version"] == schema.CURRENT

    pretend_clock["synced"] = True  # NTP catches up: later rows say so, earlier ones keep what was true then
    assert hub.start_session()["clock_synced"] is True
    hub.end_session()
    assert hub.erase(7, None)["clock_synced"] is True
    assert hub.operator_state()["clock"]["synced"] is True
    hub.store.con.close()

    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT clock_synced FROM sessions ORDER BY id")] == [0, 1]
    assert [r[0] for r in con.execute("SELECT clock_synced FROM erasures ORDER BY id")] == [0, 1]
    started = [r[0] for r in con.execute("SELECT started_at FROM sessions ORDER BY id")]
    con.close()
    assert all(before <= t for t in started)  # the hub's own time, as it was: nothing corrected behind the back
    journal = [json.loads(line) for line in journal_path(db).read_text().splitlines()]
    assert [j["clock_synced"] for j in journal] == [False, True]


class Machine(System):
    def __init__(self, synced: bool | None, container: bool):
        self.synced, self.container = synced, container

    def clock(self) -> ClockState:
        return ClockState(self.synced, "pretend", "test")

    def in_container(self) -> bool:
        return self.container


@pytest.mark.parametrize(("synced", "container", "hub", "status"), [
    (True, False, True, "OK"), (False, False, True, "FIX"), (False, False, False, "WARN"),
    (False, True, True, "WARN"), (None, False, True, "WARN"),
])
def test_doctor_checks_ntp_sync_and_degrades_in_a_container(synced, container, hub, status):
    findings = {f.what: f for f in run_checks(Machine(synced, container), hub=hub)}
    assert findings["clock"].status == status
    if status == "FIX":
        assert "timedatectl set-ntp true" in findings["clock"].detail


def test_doctor_reports_the_schema_version_of_a_database(tmp_path):
    db = tmp_path / "hub.db"
    Hub(db, scorer=None).store.con.close()
    findings = {f.what: f for f in run_checks(Machine(True, False), db=str(db))}
    assert findings["database"].status == "OK" and f"schema version {schema.CURRENT}" in findings["database"].detail
    assert f"schema version {schema.CURRENT}" in findings["lifepalette"].detail
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {schema.CURRENT + 1}")
    con.close()
    findings = {f.what: f for f in run_checks(Machine(True, False), db=str(db))}
    assert findings["database"].status == "FIX" and "upgrade lifepalette" in findings["database"].detail


def test_the_kernel_answers_on_linux():
    state = clock.kernel_state()
    assert state is not None and state.synced in (True, False) and state.source == "adjtimex"


def test_version_names_the_release_and_the_schema():
    import subprocess
    import sys

    from lifepalette import __version__

    out = subprocess.run([sys.executable, "-m", "lifepalette", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"lifepalette {__version__} (hub database schema version {schema.CURRENT})"
