"""Every user mistake gets one line on stderr and a documented exit code, never a traceback, and loses nothing.

Table-driven: each case names a command line with placeholders that the fixture turns into real bad inputs
(missing, read-only and unwritable paths, directories, corrupt, truncated and non-SQLite databases, a port in use,
a bad host, deeply nested JSON, empty, binary and non-numeric files, unknown devices and epochs). The command runs
in-process through `cli.main`, so an exception escaping it is exactly a traceback a user would see.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess

import pytest
from lifepalette import cli

KEY = "000102030405060708090a0b0c0d0e0f"
NESTED = "[" * 100_000 + "]" * 100_000


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One folder of good and bad inputs shared by every case (the cases never write into it)."""
    d = tmp_path_factory.mktemp("bad-inputs")
    good = d / "good.db"
    assert cli.main(["enroll", "--db", str(good), "--dev", "258", "--out", str(d / "badge.json")]) == 0
    (d / "empty.txt").write_text("")
    (d / "words.txt").write_text("time,value\nabc,def\nghi,jkl\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (d / "nested.json").write_text(NESTED)
    (d / "nested.jsonl").write_text(NESTED + "\n")
    (d / "notjson.jsonl").write_text("{this is not json\n")
    (d / "list.jsonl").write_text("[1, 2, 3]\n")
    (d / "badtypes.jsonl").write_text(json.dumps({"device": "x", "t": "later", "hr_bpm": "fast"}) + "\n")
    (d / "groups-notlist.json").write_text(json.dumps({"groups": "all"}))
    (d / "groups-nested.json").write_text(NESTED)
    (d / "keys-short.json").write_text(json.dumps({"258": "00ff"}))
    (d / "keys-list.json").write_text(json.dumps([KEY]))
    (d / "text.db").write_text("this is a text file, not SQLite\n" * 20)
    raw = good.read_bytes()
    (d / "truncated.db").write_bytes(raw[: len(raw) // 3])
    corrupt = bytearray(raw)
    corrupt[100:4096] = b"\xa5" * (4096 - 100)
    (d / "corrupt.db").write_bytes(bytes(corrupt))
    (d / "otherapp.db").unlink(missing_ok=True)
    con = sqlite3.connect(d / "otherapp.db")
    con.execute("CREATE TABLE notes (body TEXT)")
    con.commit()
    con.close()
    (d / "adir").mkdir()
    ro = d / "readonly"
    ro.mkdir()
    shutil.copy(good, ro / "ro.db")
    shutil.copy(d / "good.db.sitekey", ro / "ro.db.sitekey") if (d / "good.db.sitekey").exists() else None
    ro_ok = _make_read_only(ro)
    yield d, ro_ok
    if ro_ok == "mount":
        subprocess.run(["umount", str(ro)], check=False)


def _make_read_only(folder) -> str:
    """Read-only for real: as root a mode bit stops nothing, so bind-mount the folder read-only where possible."""
    folder.chmod(0o555)
    if os.geteuid() == 0:
        done = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
        if done.returncode != 0:
            return ""
        how = "mount"
    else:
        how = "mode"
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return how
    return ""


@pytest.fixture
def busy_ports():
    """A UDP and a TCP port held by this test, so a hub cannot bind them."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    t.listen()
    yield u.getsockname()[1], t.getsockname()[1]
    u.close()
    t.close()


# (case id, argv with {d} = the inputs folder, {out} = a fresh writable folder, {udp}/{tcp} = busy ports; exit code)
CASES = [
    # analyze
    ("analyze-missing", "analyze {d}/nope.csv --kind ppg --rate 100", 2),
    ("analyze-directory", "analyze {d}/adir --kind ppg --rate 100", 2),
    ("analyze-empty", "analyze {d}/empty.txt --kind ppg --rate 100", 2),
    ("analyze-words", "analyze {d}/words.txt --kind ppg --rate 100", 2),
    ("analyze-binary", "analyze {d}/binary.bin --kind eda --rate 10", 2),
    ("analyze-kind", "analyze {d}/words.txt --kind ecg --rate 100", 2),
    ("analyze-rate-zero", "analyze {d}/words.txt --kind ppg --rate 0", 2),
    ("analyze-rate-nan", "analyze {d}/words.txt --kind ppg --rate nan", 2),
    ("analyze-nested", "analyze {d}/nested.json --kind ppg --rate 100", 2),
    # score
    ("score-missing", "score {d}/nope.jsonl", 2),
    ("score-directory", "score {d}/adir", 2),
    ("score-empty", "score {d}/empty.txt", 2),
    ("score-nested", "score {d}/nested.jsonl", 2),
    ("score-notjson", "score {d}/notjson.jsonl", 2),
    ("score-list", "score {d}/list.jsonl", 2),
    ("score-badtypes", "score {d}/badtypes.jsonl", 2),
    ("score-binary", "score {d}/binary.bin", 2),
    ("score-groups-missing", "score {d}/list.jsonl --groups {d}/nope.json", 2),
    ("score-groups-nested", "score {d}/list.jsonl --groups {d}/groups-nested.json", 2),
    ("score-groups-notlist", "score {d}/list.jsonl --groups {d}/groups-notlist.json", 2),
    ("score-groups-directory", "score {d}/list.jsonl --groups {d}/adir", 2),
    # audit
    ("audit-missing-dir", "audit {d}/nope", 2),
    ("audit-empty-dir", "audit {d}/adir", 2),
    ("audit-db-missing", "audit --db {d}/nope.db", 2),
    ("audit-db-text", "audit --db {d}/text.db", 2),
    ("audit-db-truncated", "audit --db {d}/truncated.db", 2),
    ("audit-db-directory", "audit --db {d}/adir", 2),
    ("audit-db-otherapp", "audit --db {d}/otherapp.db", 2),
    # report
    ("report-db-missing", "report --db {d}/nope.db --out {out}/r.html", 2),
    ("report-db-text", "report --db {d}/text.db --out {out}/r.html", 2),
    ("report-db-truncated", "report --db {d}/truncated.db --out {out}/r.html", 2),
    ("report-db-corrupt", "report --db {d}/corrupt.db --out {out}/r.html", 2),
    ("report-db-directory", "report --db {d}/adir --out {out}/r.html", 2),
    ("report-db-otherapp", "report --db {d}/otherapp.db --out {out}/r.html", 2),
    ("report-unknown-session", "report --db {d}/good.db --session 9 --out {out}/r.html", 2),
    ("report-nothing-recorded", "report --db {d}/good.db --out {out}/r.html", 2),
    ("report-session-not-a-number", "report --db {d}/good.db --session last --out {out}/r.html", 2),
    # frame
    ("frame-badhex", "frame open --key " + KEY + " zz-not-hex", 2),
    ("frame-keyshort", "frame open --key 00ff 3002", 2),
    ("frame-keys-missing", "frame open --keys {d}/nope.json 3002", 2),
    ("frame-keys-nested", "frame open --keys {d}/nested.json 3002", 2),
    ("frame-keys-notjson", "frame open --keys {d}/notjson.jsonl 3002", 2),
    ("frame-keys-short", "frame open --keys {d}/keys-short.json 3002", 2),
    ("frame-keys-list", "frame open --keys {d}/keys-list.json 3002", 2),
    ("frame-keys-directory", "frame open --keys {d}/adir 3002", 2),
    ("frame-seal-field", "frame seal --key " + KEY + " --dev 258 --ctr 1 --type telemetry --field nope=1", 2),
    # enroll
    ("enroll-db-missing-folder", "enroll --db {d}/nope/x.db --dev 300 --out {out}/b.json", 2),
    ("enroll-db-directory", "enroll --db {d}/adir --dev 300 --out {out}/b.json", 2),
    ("enroll-db-text", "enroll --db {d}/text.db --dev 300 --out {out}/b.json", 2),
    ("enroll-db-truncated", "enroll --db {d}/truncated.db --dev 300 --out {out}/b.json", 2),
    ("enroll-db-readonly", "enroll --db {d}/readonly/new.db --dev 300 --out {out}/b.json", 2),
    ("enroll-out-missing-folder", "enroll --db {out}/n.db --dev 300 --out {d}/nope/b.json", 2),
    ("enroll-out-directory", "enroll --db {out}/n.db --dev 300 --out {d}/adir", 2),
    ("enroll-out-readonly", "enroll --db {out}/n.db --dev 300 --out {d}/readonly/b.json", 2),
    ("enroll-dev-range", "enroll --db {out}/n.db --dev 70000 --out {out}/b.json", 2),
    # export
    ("export-db-missing", "export --db {d}/nope.db --out {out}/x.csv", 2),
    ("export-db-text", "export --db {d}/text.db --out {out}/x.csv", 2),
    ("export-db-truncated", "export --db {d}/truncated.db --out {out}/x.csv", 2),
    ("export-db-corrupt", "export --db {d}/corrupt.db --out {out}/x.csv", 2),
    ("export-db-directory", "export --db {d}/adir --out {out}/x.csv", 2),
    ("export-db-otherapp", "export --db {d}/otherapp.db --out {out}/x.csv", 2),
    ("export-out-missing-folder", "export --db {d}/good.db --out {d}/nope/x.csv", 2),
    ("export-out-directory", "export --db {d}/good.db --out {d}/adir", 2),
    ("export-out-readonly", "export --db {d}/good.db --out {d}/readonly/x.csv", 2),
    # erase
    ("erase-db-missing", "erase --db {d}/nope.db --dev 258", 2),
    ("erase-db-text", "erase --db {d}/text.db --dev 258", 2),
    ("erase-db-truncated", "erase --db {d}/truncated.db --dev 258", 2),
    ("erase-db-directory", "erase --db {d}/adir --dev 258", 2),
    ("erase-unknown-device", "erase --db {d}/good.db --dev 999", 2),
    ("erase-unknown-epoch", "erase --db {d}/good.db --dev 258 --epoch 7", 2),
    ("erase-db-readonly", "erase --db {d}/readonly/ro.db --dev 258", 2),
    # me-link (issue 19)
    ("me-link-db-missing", "me-link --db {d}/nope.db --dev 258", 2),
    ("me-link-db-text", "me-link --db {d}/text.db --dev 258", 2),
    ("me-link-db-directory", "me-link --db {d}/adir --dev 258", 2),
    ("me-link-db-otherapp", "me-link --db {d}/otherapp.db --dev 258", 2),
    ("me-link-db-readonly", "me-link --db {d}/readonly/ro.db --dev 258", 2),
    ("me-link-unknown-device", "me-link --db {d}/good.db --dev 999", 2),
    ("me-link-device-out-of-range", "me-link --db {d}/good.db --dev 0", 2),
    ("me-link-qr-bad-suffix", "me-link --db {d}/good.db --dev 258 --qr {out}/card.gif", 2),
    ("me-link-qr-missing-folder", "me-link --db {d}/good.db --dev 258 --qr {d}/nope/card.png", 2),
    ("me-link-qr-readonly", "me-link --db {d}/good.db --dev 258 --qr {d}/readonly/card.svg", 2),
    ("me-link-bad-base", "me-link --db {d}/good.db --dev 258 --base ftp://cove", 2),
    # hub
    ("hub-db-missing-folder", "hub --db {d}/nope/x.db --udp 127.0.0.1:0", 2),
    ("hub-db-directory", "hub --db {d}/adir --udp 127.0.0.1:0", 2),
    ("hub-db-text", "hub --db {d}/text.db --udp 127.0.0.1:0", 2),
    ("hub-db-truncated", "hub --db {d}/truncated.db --udp 127.0.0.1:0", 2),
    ("hub-db-readonly", "hub --db {d}/readonly/new.db --udp 127.0.0.1:0", 2),
    ("hub-udp-in-use", "hub --db {out}/h.db --udp 127.0.0.1:{udp}", 2),
    ("hub-http-in-use", "hub --db {out}/h.db --udp 127.0.0.1:0 --http 127.0.0.1:{tcp}", 2),
    ("hub-bad-host", "hub --db {out}/h.db --udp no-such-host.invalid:7100", 2),
    ("hub-bad-port", "hub --db {out}/h.db --udp 127.0.0.1:99999", 2),
    ("hub-nothing", "hub --db {out}/h.db", 2),
    # sim
    ("sim-out-file", "sim --wearers 6 --minutes 5 --out {d}/empty.txt", 2),
    ("sim-out-readonly", "sim --wearers 6 --minutes 5 --out {d}/readonly/run", 2),
    ("sim-wearers-zero", "sim --wearers 0 --minutes 5 --out {out}/run", 2),
    ("sim-minutes-negative", "sim --wearers 6 --minutes -1 --out {out}/run", 2),
    # badge / devices
    ("badge-config-missing", "badge run --config {d}/nope.json --seconds 1 --speed 0", 2),
    ("monitor-port-missing", "monitor --port {d}/ttyUSB9", 2),
    ("flash-port-missing", "flash --port {d}/ttyUSB9", 2),
    ("sphere-bad-mqtt", "sphere --mqtt ftp://x --http 127.0.0.1:0", 2),
]


@pytest.mark.parametrize(("argv", "code"), [pytest.param(a, c, id=i) for i, a, c in CASES])
def test_bad_input_gives_one_line_and_the_documented_exit_code(world, busy_ports, tmp_path, capsys, argv, code):
    d, read_only = world
    if "readonly" in argv and not read_only:
        pytest.skip("no way to make a read-only folder here")
    udp, tcp = busy_ports
    before = (d / "good.db").read_bytes()
    args = argv.format(d=d, out=tmp_path, udp=udp, tcp=tcp).split()
    env_token = os.environ.pop("LP_OPERATOR_TOKEN", None)
    try:
        rc = cli.main(args)
    except SystemExit as exc:  # argparse's own usage errors: one line and 2 (checked below like the rest)
        rc = exc.code
    finally:
        if env_token is not None:
            os.environ["LP_OPERATOR_TOKEN"] = env_token
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert (d / "good.db").read_bytes() == before  # a failed command loses nothing already stored


def test_the_table_covers_at_least_78_cases():
    assert len(CASES) >= 78
