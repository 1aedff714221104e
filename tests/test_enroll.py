"""`lifepalette enroll`: site key on first use (0600, never printed), derived badge key, config, registration."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from lifepalette.cli import main
from lifepalette.hub.sitekey import site_key_path
from lifepalette.hub.store import Store

from protocol.keys import derive_device_key


def test_enroll_creates_site_key_config_and_registers(tmp_path, capsys):
    db, out = tmp_path / "hub.db", tmp_path / "badge.json"
    assert main(["enroll", "--db", str(db), "--dev", "258", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    key_file = site_key_path(db)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    site_key = bytes.fromhex(key_file.read_text().strip())
    config = json.loads(out.read_text())
    assert config["dev_id"] == 258 and config["key"] == derive_device_key(site_key, 258).hex()
    assert set(config) == {"dev_id", "key", "group_id", "group_key", "board", "company_id", "rates"}
    assert config["rates"] == {"ppg": 64, "eda": 16, "acc": 16, "temp": 1} and config["company_id"] == 65535
    for secret in (site_key.hex(), config["key"], config["group_key"]):
        assert secret not in printed.out + printed.err
    # A second badge reuses the same site key; the hub knows both.
    assert main(["enroll", "--db", str(db), "--dev", "259", "--out", str(tmp_path / "b2.json")]) == 0
    assert bytes.fromhex(key_file.read_text().strip()) == site_key
    store = Store(db)
    assert store.device_ids() == [258, 259]
    store.con.close()


def test_enroll_rejects_bad_input(tmp_path):
    db = tmp_path / "hub.db"
    for dev in ("0", "70000"):
        r = subprocess.run([sys.executable, "-m", "lifepalette", "enroll", "--db", str(db), "--dev", dev,
                            "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "device id" in r.stderr
    assert main(["enroll", "--db", str(db), "--dev", "5", "--out", str(tmp_path / "c.json")]) == 0
    os.chmod(site_key_path(db), 0o644)  # someone loosened it: refuse rather than use a leaked key silently
    r = subprocess.run([sys.executable, "-m", "lifepalette", "enroll", "--db", str(db), "--dev", "6", "--out",
                        str(tmp_path / "d.json")], capture_output=True, text=True)
    assert r.returncode == 1 and "chmod 600" in r.stderr and "Traceback" not in r.stderr


def test_the_hub_database_is_owner_only(tmp_path):
    import stat

    from lifepalette.hub.store import connect

    db = tmp_path / "cove.db"
    con = connect(db)
    wal = tmp_path / "cove.db-wal"
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600  # SQLite copies the database's mode
    con.close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
