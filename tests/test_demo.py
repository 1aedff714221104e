"""`lifepalette demo` end to end: real hub, real MicroPython virtual badges, the wall's API; and no orphans."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from helpers.waits import wait_for
from lifepalette.paths import REPO_ROOT


def _children_of(pid: int) -> dict[int, str]:
    """Every live descendant of pid: {pid: command line}."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = _cmdline(child)
                frontier.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_demo(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "demo", "--port", "0", *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "cove wall:" in line:
            break
    match = re.search(r"cove wall:\s+(http://\S+)", "".join(lines))
    assert match, "".join(lines) + proc.stderr.read()
    return proc, match.group(1)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _wait_micropython(proc, want: int, timeout: float = 120) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        kids = _children_of(proc.pid)
        mpy = {p: c for p, c in kids.items() if "micropython" in c}
        if len(mpy) >= want:
            return kids
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"only {len(mpy)} micropython badges: {kids}"
        time.sleep(0.2)


def test_demo_streams_real_badges_to_the_wall_and_leaves_no_orphan():
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    heard: list[tuple[str, tuple]] = []
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: heard.append((address, args)))
    osc = ThreadingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    threading.Thread(target=osc.serve_forever, daemon=True).start()
    proc, url = _start_demo("--badges", "5", "--seconds", "300", "--scenario", "dialogue", "--cove", "test-demo",
                            "--osc", f"127.0.0.1:{osc.server_address[1]}")
    try:
        kids = _wait_micropython(proc, 5)
        deadline = time.monotonic() + 120  # liveness limit for a loaded CI machine, not a timing
        view = _get(url + "api/cove")
        while not view["ready"]:
            assert time.monotonic() < deadline, f"the wall never went live: {view}"
            time.sleep(0.5)
            view = _get(url + "api/cove")
        assert view["contributors"] == 5 and view["palette"] is not None and len(view["swatches"]) <= 5
        seq = view["seq"]
        wait_for(lambda: _get(url + "api/cove")["seq"] > seq, timeout=10, what="the wall still updating")
        # OSC sends at its own rate (2 Hz): wait for it to carry the live cove before stopping the demo
        wait_for(lambda: ("/lifepalette/test-demo/ready", (1,)) in heard, timeout=10, what="OSC saying the cove is live")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        osc.shutdown()
        osc.server_close()
    assert proc.returncode == 0, err
    assert ("/lifepalette/test-demo/ready", (1,)) in heard  # the demo's OSC output saw the cove go live
    assert "demo stopped: 5 badges stopped" in out
    survivors = {p: c for p, c in kids.items() if _alive(p)}
    assert not survivors, f"orphans left behind: {survivors}"
    # this demo's folder only: other demos (a parallel test run on the same machine) have folders of their own
    folders = {m.group(0) for c in kids.values() if (m := re.search(r"lifepalette-demo-\w+", c))}
    assert folders
    left = [p for p in os.listdir("/proc") if p.isdigit() and any(f in _cmdline(int(p)) for f in folders)]
    assert not left


def test_demo_seconds_limit_stops_everything_even_mid_start():
    proc, url = _start_demo("--badges", "3", "--seconds", "15")
    seen: dict[int, str] = {}
    while proc.poll() is None:  # every process the demo ever had, until it ends by itself
        seen.update(_children_of(proc.pid))
        time.sleep(0.1)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "demo stopped: 3 badges stopped" in out
    assert any("micropython" in c for c in seen.values()), seen
    # same pid and same command line: a recycled pid of an unrelated process is not an orphan
    survivors = {p: c for p, c in seen.items() if _alive(p) and _cmdline(p) == c}
    assert not survivors, f"orphans left behind: {survivors}"


def test_demo_rejects_bad_arguments_with_one_line():
    for args, needle in ((["--badges", "0"], "--badges"), (["--scenario", "nope"], "unknown scenario"),
                         (["--seconds", "-1"], "--seconds"), (["--osc", "h:x"], "OSC target"), (["--osc-rate", "0"], "--osc-rate")):
        proc = subprocess.run([sys.executable, "-m", "lifepalette", "demo", *args], capture_output=True, text=True,
                              timeout=30, cwd=REPO_ROOT)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_stopping_reaches_grandchildren_that_ignore_sigterm():
    """The demo's stop path: a child whose own child ignores SIGTERM still leaves nothing behind."""
    from lifepalette.commands.demo import stop_process_groups

    script = "trap '' TERM; python3 -c 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
             "print(1, flush=True); time.sleep(60)' & wait"
    procs = [subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, process_group=0) for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline() == b"1\n"
    family = {pid for proc in procs for pid in [proc.pid, *_children_of(proc.pid)]}
    assert len(family) == 4
    started = time.monotonic()
    stop_process_groups(procs, grace_s=0.5)
    assert time.monotonic() - started < 5
    # SIGKILL has been sent to both groups; the kernel ends the orphaned grandchildren asynchronously
    wait_for(lambda: not [pid for pid in family if _alive(pid)], timeout=5, what="every process of both groups gone")


def test_demo_on_a_busy_port_says_so_and_cleans_up():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "lifepalette", "demo", "--badges", "2", "--port", str(port)],
                              capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 1, proc.stderr
    assert f"cannot serve the web app on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
