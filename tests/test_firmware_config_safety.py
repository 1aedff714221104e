"""Corrupt or missing config -> safe mode (clear serial message, distinct LED pattern, never captures or sends);
power loss during a config write (killed between the temp write and the rename, or a truncated temp file) never
leaves the badge without its last good config."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from lifepalette.paths import micropython_binary
from lifepalette.virtual_badge import HEAPSIZE, compile_firmware

OLD = {"dev_id": 258, "key": "00" * 16, "board": "virtual"}
NEW = {"dev_id": 259, "key": "11" * 16, "board": "virtual"}


@pytest.fixture(scope="module")
def mpy_root() -> Path:
    return compile_firmware()


def boot(root: Path, state: Path, seconds: int = 3, udp: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [micropython_binary(), "-X", f"heapsize={HEAPSIZE}", str(root / "main.py"), "--tick-us", "0",
           "--seconds", str(seconds)]
    if udp:
        cmd += ["--udp", udp]
    return subprocess.run(cmd, cwd=state, env=dict(os.environ, MICROPYPATH=str(root)), capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def hub_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.3)
    yield s
    s.close()


def received(s: socket.socket) -> int:
    n = 0
    try:
        while True:
            s.recv(64)
            n += 1
    except TimeoutError:
        return n


@pytest.mark.parametrize("content, reason", [
    (None, "config.json missing"),
    ("{\"dev_id\": 258, \"key\": ", "not valid JSON"),
    (json.dumps({"dev_id": 258, "key": "nothex"}), "key must be 32 hex digits"),
])
def test_bad_config_is_safe_mode(mpy_root, tmp_path, hub_socket, content, reason):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    proc = boot(mpy_root, tmp_path, udp=f"127.0.0.1:{hub_socket.getsockname()[1]}")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(ln.startswith("LOG") and "SAFE MODE" in ln and reason in ln for ln in lines), lines
    assert [ln.split()[2] for ln in lines if ln.startswith("LED")] == ["safe"]  # its own pattern, nothing else
    assert received(hub_socket) == 0  # never sends, never captures
    assert not (tmp_path / "counter.txt").exists()


def test_corrupt_counter_store_is_safe_mode(mpy_root, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(OLD))
    (tmp_path / "counter.txt").write_text("LP 12x")
    proc = boot(mpy_root, tmp_path)
    assert proc.returncode == 3 and "SAFE MODE: storage" in proc.stdout


WRITER = """
import sys, time, json
from app import config
def hook(stage):
    print("TEMP WRITTEN")
    time.sleep(30)  # the test cuts the power here
config.save(json.loads(sys.argv[1]), hook=hook)
"""


def test_killed_between_temp_write_and_rename_keeps_old_config(mpy_root, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(OLD))
    (tmp_path / "writer.py").write_text(WRITER)
    proc = subprocess.Popen([micropython_binary(), "writer.py", json.dumps(NEW)], cwd=tmp_path, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, MICROPYPATH=str(mpy_root)))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "TEMP WRITTEN"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert json.loads((tmp_path / "config.json.tmp").read_text()) == NEW  # complete, but never committed
    out = boot(mpy_root, tmp_path).stdout
    assert "badge 258 up" in out  # the old config, whole
    assert not (tmp_path / "config.json.tmp").exists()  # the uncommitted write was discarded


def test_truncated_temp_file_is_discarded(mpy_root, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(OLD))
    (tmp_path / "config.json.tmp").write_text(json.dumps(NEW)[:20])
    assert "badge 258 up" in boot(mpy_root, tmp_path).stdout
    assert not (tmp_path / "config.json.tmp").exists()


def test_cut_after_remove_before_rename_promotes_complete_temp(mpy_root, tmp_path):
    # filesystems that cannot rename over a file: remove, then rename; a cut in between leaves only the temp file
    (tmp_path / "config.json.tmp").write_text(json.dumps(NEW))
    out = boot(mpy_root, tmp_path).stdout
    assert "badge 259 up" in out
    assert json.loads((tmp_path / "config.json").read_text()) == NEW


def test_truncated_temp_and_no_config_is_safe_mode(mpy_root, tmp_path):
    (tmp_path / "config.json.tmp").write_text(json.dumps(NEW)[:25])
    proc = boot(mpy_root, tmp_path)
    assert proc.returncode == 3 and "config.json missing" in proc.stdout


def test_completed_save_is_used(mpy_root, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(OLD))
    (tmp_path / "writer.py").write_text(WRITER.replace("time.sleep(30)", "pass"))
    subprocess.run([micropython_binary(), "writer.py", json.dumps(NEW)], cwd=tmp_path, check=True, timeout=30,
                   env=dict(os.environ, MICROPYPATH=str(mpy_root)), capture_output=True)
    assert "badge 259 up" in boot(mpy_root, tmp_path).stdout
