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

from helpers.waits import until, wait_for
from lifepalette.crypto import open_frame
from lifepalette.hub import Hub
from lifepalette.hub.loadgen import UdpSenderPool, telemetry_frame
from lifepalette.paths import REPO_ROOT

from protocol import frame as wire
from protocol import records
from protocol.slip import SlipDecoder, slip_encode


def test_kill_9_loses_no_committed_frame_and_opens_no_replay_window(tmp_path):
    db = tmp_path / "hub.db"
    hub = Hub(db, scorer=None)
    keys = {dev: hub.enroll(dev) for dev in range(1, 51)}
    hub.store.con.close()
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "hub", "--db", str(db), "--udp", "127.0.0.1:0",
                             "--cadence", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening: udp 127.0.0.1:"), line + proc.stderr.read()
        port = int(line.rsplit(":", 1)[1])
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
