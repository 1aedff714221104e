"""`lifepalette badge run`: the virtual badge from the command line (real micropython processes, real UDP)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from protocol import records
from protocol.verifier import Verifier

CLI = [sys.executable, "-m", "lifepalette", "badge", "run"]


def config(tmp_path, dev_id=258, **extra):
    path = tmp_path / f"badge{dev_id}.json"
    path.write_text(json.dumps({"dev_id": dev_id, "key": f"{dev_id:032x}", "group_key": "ab" * 16,
                                "board": "virtual", **extra}))
    return path


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.5)
    return s


def drain(s):
    out = []
    try:
        while True:
            out.append(s.recv(256))
    except TimeoutError:
        return out


@pytest.mark.parametrize("args, message", [
    (["--config", "{missing}"], "not found"),
    (["--config", "{corrupt}"], "invalid: not valid JSON"),
    (["--config", "{badkey}"], "key must be 32 hex digits"),
    (["--config", "{good}", "--udp", "localhost"], "expected HOST:PORT"),
    (["--config", "{good}", "--udp", "127.0.0.1:9", "--press", "wiggle@3"], "bad --press item"),
    (["--config", "{good}", "--udp", "127.0.0.1:9", "--scenario", "party"], "unknown scenario"),
    (["--config", "{good}"], "nothing to do"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    paths = {"missing": tmp_path / "nope.json", "corrupt": tmp_path / "c.json", "badkey": tmp_path / "k.json",
             "good": config(tmp_path)}
    paths["corrupt"].write_text("{oops")
    paths["badkey"].write_text(json.dumps({"dev_id": 1, "key": "xyz"}))
    proc = subprocess.run(CLI + [a.format(**paths) for a in args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_help_lists_the_options():
    out = subprocess.run(CLI + ["--help"], capture_output=True, text=True, timeout=60).stdout
    for opt in ("--config", "--udp", "--seconds", "--scenario", "--consent", "--show", "--press", "--speed", "--led"):
        assert opt in out


def test_two_badges_side_by_side_with_led_socket(tmp_path):
    hub, leds = udp_socket(), udp_socket()
    hub_addr = f"127.0.0.1:{hub.getsockname()[1]}"
    led_addr = f"127.0.0.1:{leds.getsockname()[1]}"
    procs = [subprocess.Popen(CLI + ["--config", str(config(tmp_path, dev)), "--udp", hub_addr, "--seconds", "6",
                                     "--speed", "0", "--consent", "--show", "--led", led_addr],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for dev in (301, 302)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    frames = drain(hub)
    verifier = Verifier({dev: bytes.fromhex(f"{dev:032x}") for dev in (301, 302)})
    verdicts = [verifier.verify(f) for f in frames]
    assert all(v.ok for v in verdicts) and len(verdicts) == 12
    assert {v.dev_id for v in verdicts} == {301, 302}
    assert all(len(f) == 24 for f in frames)
    for dev, (stdout, _) in zip((301, 302), outs, strict=True):
        assert f"[{dev}] LED" in stdout and "consent granted" in stdout
    led_lines = [d.decode() for d in drain(leds)]
    assert any(ln.startswith("301 LED") for ln in led_lines) and any(ln.startswith("302 LED") for ln in led_lines)
    assert any(" confirm " in ln for ln in led_lines)
    hub.close()
    leds.close()


def test_counter_and_consent_revision_survive_restarts(tmp_path):
    hub = udp_socket()
    addr = f"127.0.0.1:{hub.getsockname()[1]}"
    cfg = config(tmp_path, 400)
    verifier = Verifier({400: bytes.fromhex(f"{400:032x}")})
    for _ in range(2):
        subprocess.run(CLI + ["--config", str(cfg), "--udp", addr, "--seconds", "5", "--speed", "0", "--consent"],
                       check=True, capture_output=True, timeout=60)
    verdicts = [verifier.verify(f) for f in drain(hub)]
    assert len(verdicts) == 10 and all(v.ok for v in verdicts)  # no replay: the second run starts a new block
    assert verdicts[5].ctr >= 1025
    revisions = [records.consent_revision(records.unpack_telemetry(v.record)["consent"]) for v in verdicts
                 if v.ftype == 0]
    assert revisions[0] == 1 and revisions[-1] == 2  # each consent is a new epoch, also after a restart
    assert (tmp_path / "badge400.state" / "consent.txt").read_text().split() == ["LP", "2"]
    hub.close()
