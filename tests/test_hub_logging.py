"""The hub's own log lines reach its stderr (the journal under systemd) at the level the operator chose; the web
server's access log and third-party chatter do not flood it."""

from __future__ import annotations

import pytest
from helpers.hub_process import enrol, start_hub, stop_hub
from lifepalette.hub.store import Store


def _db_with_a_session_left_open(tmp_path):
    db = tmp_path / "hub.db"
    enrol(db, [7])
    store = Store(db)
    session_id = store.start_session()  # a hub that stopped without ending it
    store.con.commit()
    store.close()
    return db, session_id


def _stderr_of_a_hub(db, *extra: str) -> str:
    proc, _port = start_hub(db, *extra)
    stop_hub(proc)
    return proc.stderr.read()


def test_the_hub_logs_that_it_resumed_a_session_by_default(tmp_path):
    db, session_id = _db_with_a_session_left_open(tmp_path)
    err = _stderr_of_a_hub(db)
    assert f"INFO lifepalette.hub: resumed session {session_id} (last seen" in err, err


def test_a_quieter_log_level_leaves_the_information_out(tmp_path):
    db, _session_id = _db_with_a_session_left_open(tmp_path)
    err = _stderr_of_a_hub(db, "--log-level", "warning")
    assert "resumed session" not in err, err


@pytest.mark.parametrize("level", ["loud", "INFO2"])
def test_an_unknown_log_level_is_refused_in_one_line(tmp_path, level):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lifepalette", "hub", "--db", str(tmp_path / "hub.db"),
                           "--udp", "127.0.0.1:0", "--log-level", level], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "--log-level" in proc.stderr and "invalid choice" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "hub.db").exists()
