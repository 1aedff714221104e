"""Reliability: kill -9 of the hub process while 50 UDP badges stream; the serial transport over a pty pair with
malformed, truncated, replayed, forged and plaintext frames."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tty

from helpers.hub_process import enrol, start_hub, stop_hub
from helpers.waits import port_answers, until, wait_for
from lifepalette.crypto import open_frame
from lifepalette.hub import Hub
from lifepalette.hub.loadgen import UdpSenderPool, telemetry_frame
from lifepalette.paths import REPO_ROOT

from protocol import frame as wire
from protocol import records
from protocol.slip import SlipDecoder, slip_encode


def test_kill_9_loses_no_committed_frame_and_opens_no_replay_window(tmp_path):
    db = tmp_path / "hub.db"
    keys = enrol(db, range(1, 51))
    proc, port = start_hub(db, "--cadence", "0.5")
    try:
        pool = UdpSenderPool(("127.0.0.1", port), keys, rate_hz=20)
        pool.start()
        wait_for(lambda: sum(pool.acked.values()) > 500, timeout=30, what="the hub acknowledging frames")
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream (the pool keeps sending), mid-batch
        proc.wait(10)
        pool.stop()
    finally:
        if proc.poll() is None:
            proc.kill()
    pool.close()
    assert sum(pool.acked.values()) > 500, "the hub acknowledged frames before it was killed"

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {}
    for dev, ctr in con.execute("SELECT dev_id, ctr FROM frames"):
        stored.setdefault(dev, set()).add(ctr)
    counters = dict(con.execute("SELECT dev_id, last_ctr FROM counters"))
    con.close()
    for dev, acked in pool.acked.items():
        assert set(range(1, acked + 1)) <= stored.get(dev, set()), f"badge {dev}: an acknowledged frame was lost"
        assert counters.get(dev, 0) >= max(stored.get(dev, {0})), "counter committed with its frames"

    again = Hub(db, scorer=None)  # the restarted hub
    before = again.store.count_frames()
    dev = 7
    old = pool.sent[dev][pool.acked[dev] - 1]
    verdict = again.ingest(old)
    assert not verdict.ok and verdict.reason in ("replay", "duplicate")
    assert not again.ingest(pool.sent[dev][0]).ok  # the very first frame, long committed
    assert again.rejections["replay"] >= 1
    nxt = telemetry_frame(keys[dev], dev, pool.next_ctr[dev] + 1)
    assert again.ingest(nxt).ok
    again.flush()
    assert again.store.count_frames() == before + 1
    again.store.con.close()


def test_serial_pty_ingest_and_bad_frames(tmp_path):
    db = tmp_path / "hub.db"
    master, slave = os.openpty()
    tty.setraw(master)
    port = os.ttyname(slave)

    async def main():
        hub = Hub(db, serial=(port,), scorer=None, cadence_s=0.1)
        key = hub.enroll(12)
        await hub.start()
        good = [telemetry_frame(key, 12, c) for c in range(1, 6)]
        plain = bytearray(telemetry_frame(key, 12, 6))
        plain[0] &= ~0x10
        forged = bytearray(telemetry_frame(key, 12, 7))
        forged[15] ^= 1
        stream = b"boot: lifepalette badge\r\n" + b"".join(slip_encode(f) for f in good[:3])
        stream += b"\xc0\x01\x02\x03\xc0"  # malformed
        stream += slip_encode(good[4][:20])  # truncated
        stream += b"log: sensors on\n" + slip_encode(bytes(plain)) + slip_encode(bytes(forged))
        stream += slip_encode(good[0])  # replayed
        stream += b"\xc0\xdb\x00\xc0"  # broken escape
        stream += slip_encode(good[3]) + slip_encode(good[4])
        for i in range(0, len(stream), 7):  # in small pieces, as a UART delivers
            os.write(master, stream[i:i + 7])
            await asyncio.sleep(0.002)
        # the last two frames are good: once both are in, everything before them was read and judged
        await until(lambda: hub.accepted == 5, what="the five good frames through the serial reader")
        hub.flush()  # the backlog acks go out on the pty, written synchronously
        state = hub.operator_state()
        lines = list(hub.transports[0].text_lines)
        await hub.stop()
        return key, state, lines

    key, state, lines = asyncio.run(main())
    os.set_blocking(master, False)
    replies = b""
    try:
        while chunk := os.read(master, 4096):
            replies += chunk
    except BlockingIOError:
        pass
    os.close(master)
    os.close(slave)
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT ctr FROM frames ORDER BY ctr")] == [1, 2, 3, 4, 5]
    con.close()
    rej = state["rejections"]
    assert rej["length"] >= 2 and rej["unsealed"] == 1 and rej["mic"] == 1 and rej["replay"] == 1
    assert state["internal_errors"] == 0
    assert any("sensors on" in line for line in lines)
    acks = []
    for kind, payload in SlipDecoder().feed(replies):
        if kind == "frame" and len(payload) == 24 and wire.parse_header(payload)[1] == wire.COMMAND:
            rec = open_frame(key, bytes(payload), wire.TO_BADGE)
            assert rec is not None
            cmd = records.unpack_command(rec)
            if cmd["cmd"] == records.CMD_BACKLOG_ACK:
                acks.append(cmd["ctr"])
    assert acks and max(acks) == 5


TOKEN = "reliability-token-0123456789"


def _operator_state(port: int) -> dict:
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/operator/state",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["state"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stored_ctrs(db, dev: int) -> set[int]:
    con = sqlite3.connect(db)
    try:
        return {row[0] for row in con.execute("SELECT ctr FROM frames WHERE dev_id = ?", (dev,))}
    finally:
        con.close()


def test_a_live_badge_keeps_its_frames_through_a_garbage_flood_and_backlog_recovers_the_rest(tmp_path):
    """A flood of frames that each cost a MIC check, at up to 100,000 a second from one source, while a badge sends
    20 live frames a second: the badge keeps at least 90 % of them stored, the drops are counted, and its backlog
    brings back every frame that was lost; nothing unstored is acknowledged."""
    import socket
    import time

    from lifepalette.hub.loadgen import backlog_frame

    db = tmp_path / "hub.db"
    key = enrol(db, (1, 2))[1]
    http = _free_port()
    env = dict(os.environ, LP_OPERATOR_TOKEN=TOKEN, PYTHONUNBUFFERED="1")
    proc, port = start_hub(db, "--http", f"127.0.0.1:{http}", env=env)
    badge = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    badge.bind(("127.0.0.1", 0))
    badge.setblocking(False)
    acked = 0

    def read_acks() -> None:
        nonlocal acked
        while True:
            try:
                data = badge.recv(64)
            except BlockingIOError:
                return
            if len(data) == wire.FRAME_LEN and wire.parse_header(data)[1] == wire.COMMAND:
                rec = open_frame(key, data, wire.TO_BADGE)
                if rec is not None and rec[0] == records.CMD_BACKLOG_ACK:
                    acked = max(acked, int.from_bytes(rec[1:5], "little"))

    try:
        wait_for(lambda: port_answers(http), timeout=30, what="the operator API")
        seconds = 8.0
        flooder = subprocess.Popen([sys.executable, "-m", "lifepalette.hub.loadgen", "127.0.0.1", str(port),
                                    str(seconds), "100000", str(db), "2"], stdout=subprocess.PIPE, text=True,
                                   cwd=REPO_ROOT)
        time.sleep(1.0)  # the flood is under way
        live = []
        ctr = 1
        end = time.monotonic() + seconds - 2.0
        while time.monotonic() < end:
            badge.sendto(telemetry_frame(key, 1, ctr), ("127.0.0.1", port))
            live.append(ctr)
            ctr += 1
            read_acks()
            time.sleep(0.05)
        rate = float(flooder.communicate(timeout=60)[0])
        time.sleep(1.0)  # the hub's last batch commits
        read_acks()
        stored = _stored_ctrs(db, 1)
        kept = len(stored & set(live)) / len(live)
        print(f"flood {rate:.0f}/s; live badge kept {kept:.1%} of {len(live)}")
        state = _operator_state(http)
        udp = state["ingest"]["udp"]
        print(f"hub dropped {udp['dropped']}, kernel dropped {udp['kernel_drops']}; rejected {state['rejections']['mic']} as mic")
        assert rate > 20_000, "the flood was not a flood"
        assert udp["dropped"] + (udp["kernel_drops"] or 0) > 0 and state["rejections"]["mic"] > 0
        assert kept >= 0.9, f"the live badge kept only {kept:.1%} of its frames"
        assert set(range(1, acked + 1)) <= stored, "a frame that was never stored was acknowledged"

        # the backlog: the badge re-sends every unacknowledged frame until the hub has them all
        deadline = time.monotonic() + 30
        while acked < live[-1] and time.monotonic() < deadline:
            for c in range(acked + 1, live[-1] + 1):
                badge.sendto(backlog_frame(key, 1, c), ("127.0.0.1", port))
            time.sleep(0.3)
            read_acks()
        assert acked == live[-1] and set(live) <= _stored_ctrs(db, 1)
    finally:
        badge.close()
        stop_hub(proc)


def test_memory_stays_flat_under_a_saturating_valid_flood(tmp_path):
    """100 badges sending valid frames as fast as one sender thread can (more than the hub verifies and stores on
    this machine): the hub's resident memory late in the flood is within 10 % of what it was early on. The bench
    (bench_hub soak) measures the same at 60 s and 300 s."""
    import time

    db = tmp_path / "hub.db"
    keys = enrol(db, range(1, 101))
    proc, port = start_hub(db)
    pool = None
    try:
        pool = UdpSenderPool(("127.0.0.1", port), keys, rate_hz=10_000)
        pool.start()
        time.sleep(6)
        # several readings at each end: one reading can land on a transient (a batch of frames in flight, a
        # collection not yet run) on a loaded machine; a leak moves the whole late window
        early = max(_rss_samples(proc.pid, 5))
        time.sleep(9)
        late = sorted(_rss_samples(proc.pid, 5))[2]
        pool.stop()
        sent = sum(len(frames) for frames in pool.sent.values())
    finally:
        if pool is not None:
            pool.stop()
            pool.close()
        stop_hub(proc)
    stored = proc.stdout.read()
    print(f"RSS {early / 1024:.0f} MB (most, 6-10 s), {late / 1024:.0f} MB (median, 20-24 s); {sent} frames sent; {stored.strip()}")
    assert late <= early * 1.10, f"the hub's memory grew from {early} kB to {late} kB under the flood"


def _rss_samples(pid: int, n: int) -> list[int]:
    """n readings of the resident memory, one a second."""
    import time

    readings = []
    for _ in range(n):
        readings.append(_rss_kb(pid))
        time.sleep(1)
    return readings


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
