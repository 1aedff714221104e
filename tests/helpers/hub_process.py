"""A real `lifepalette hub` process on UDP for the tests that kill, flood, back up or erase beside a running hub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lifepalette.hub import Hub
from lifepalette.paths import REPO_ROOT


def enrol(db: Path, devs) -> dict[int, bytes]:
    """Badges `devs` enrolled in a new hub database (closed again): their device keys."""
    hub = Hub(db, scorer=None)
    keys = {dev: hub.enroll(dev) for dev in devs}
    hub.store.con.close()
    return keys


def start_hub(db: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    """The hub on 127.0.0.1 (UDP port chosen by the kernel) and that port, once it says it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "hub", "--db", str(db), "--udp", "127.0.0.1:0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            env=env)
    line = proc.stdout.readline()
    if not line.startswith("listening: udp 127.0.0.1:"):
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, int(line.rsplit(":", 1)[1])


def stop_hub(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM (the hub's orderly stop), then SIGKILL if it has not stopped within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
