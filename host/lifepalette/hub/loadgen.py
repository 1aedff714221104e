"""Sealed-frame generators and a UDP sender pool: load for tests and bench/bench_hub.py (CPython sealing with
lifepalette.crypto; the firmware's virtual badge is the faithful sender, this is the fast one)."""

from __future__ import annotations

import socket
import threading
import time

from lifepalette.crypto import open_frame, seal
from protocol import frame as wire
from protocol import records


def telemetry_record(i: int, *, physio: bool = True, colour: bool = True, paused: bool = False,
                     revision: int = 1) -> bytes:
    """A plausible telemetry record varying with i (HR 60-99, SCL around 5 uS)."""
    consent = records.make_consent(physio=physio, colour=colour, paused=paused, revision=revision)
    values = {"hr_bpm": 60 + i % 40, "rmssd_ms": 30 + i % 50, "scl": 500 + i % 300, "scr_per_min": i % 8,
              "motion": i % 20, "hue": (i * 7) % 256, "chroma": 200, "colour_age": 3, "consent": consent,
              "battery": 80, "quality": records.Q_SKIN | records.Q_HR | records.Q_EDA}
    if not physio or paused:
        values.update({"hr_bpm": records.HR_NA, "rmssd_ms": records.RMSSD_NA, "scl": records.SCL_NA,
                       "scr_per_min": records.SCR_NA, "motion": records.MOTION_NA})
    return records.pack_telemetry(values)


def telemetry_frame(key: bytes, dev_id: int, ctr: int, **kw) -> bytes:
    return seal(key, wire.TELEMETRY, dev_id, ctr, telemetry_record(ctr, **kw))


def backlog_frame(key: bytes, dev_id: int, ctr: int, **kw) -> bytes:
    """The backlog copy of telemetry frame `ctr`: same record, type 4, same counter."""
    return seal(key, wire.BACKLOG, dev_id, ctr, telemetry_record(ctr, **kw))


class _Background:
    """Badges on UDP, one non-blocking socket each (so the hub's replies come back to it), sending from a daemon
    thread that runs `_run` until `stop` (which waits up to `join_s` for it)."""

    join_s = 5.0

    def __init__(self, hub_addr: tuple[str, int], keys: dict[int, bytes], rate_hz: float) -> None:
        self.hub_addr = hub_addr
        self.keys = keys
        self.rate_hz = rate_hz
        self.sockets = {}
        for dev in keys:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            self.sockets[dev] = s
        self.next_ctr = dict.fromkeys(keys, 1)
        self.acked = dict.fromkeys(keys, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        for s in self.sockets.values():
            s.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(self.join_s)

    def _run(self) -> None:
        raise NotImplementedError


class UdpSenderPool(_Background):
    """N badges streaming sealed frames to a hub over UDP from one thread, each with its own socket so the hub's
    replies (acks, group colour) come back to it. `acked[dev]` = highest counter the hub acknowledged."""

    def __init__(self, hub_addr: tuple[str, int], keys: dict[int, bytes], rate_hz: float = 50.0):
        super().__init__(hub_addr, keys, rate_hz)
        self.sent: dict[int, list[bytes]] = {dev: [] for dev in keys}
        self.group_frames = 0

    def stop(self) -> None:
        super().stop()
        self.drain()

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            for dev, key in self.keys.items():
                ctr = self.next_ctr[dev]
                frame = telemetry_frame(key, dev, ctr)
                try:
                    self.sockets[dev].sendto(frame, self.hub_addr)
                except OSError:  # hub gone (killed): keep going, it may come back
                    pass
                self.sent[dev].append(frame)
                self.next_ctr[dev] = ctr + 1
            self.drain()
            next_t += period
            time.sleep(max(0.0, next_t - time.monotonic()))

    def drain(self) -> None:
        """Read the hub's replies: acks sealed with the badge key (verified here), group colours counted."""
        for dev, s in self.sockets.items():
            while True:
                try:
                    data = s.recv(64)
                except (BlockingIOError, ConnectionRefusedError, OSError):
                    break
                if len(data) != wire.FRAME_LEN:
                    continue
                _hdr, ftype, _dev, _ctr = wire.parse_header(data)
                if ftype == wire.GROUP_COLOUR:
                    self.group_frames += 1
                    continue
                rec = open_frame(self.keys[dev], data, wire.TO_BADGE)
                if rec is not None and rec[0] == records.CMD_BACKLOG_ACK:
                    self.acked[dev] = max(self.acked[dev], int.from_bytes(rec[1:5], "little"))


def garbage_frames(key: bytes, dev_id: int, n: int = 4096, seed: int = 1) -> list[bytes]:
    """Frames with a valid header for an enrolled badge and a random sealed body: each costs the hub a full MIC
    check (the most expensive garbage there is) and is rejected as `mic`."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        frame = bytearray(telemetry_frame(key, dev_id, 1_000_000 + i))
        frame[wire.HEADER_LEN:] = rng.randbytes(wire.FRAME_LEN - wire.HEADER_LEN)
        out.append(bytes(frame))
    return out


def flood(hub_addr: tuple[str, int], frames: list[bytes], seconds: float, rate_hz: float = 100_000.0) -> float:
    """Send `frames` round and round at up to `rate_hz` for `seconds` from one socket; returns the rate reached."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    n = len(frames)
    try:
        while (now := time.monotonic()) < end:
            behind = int((now - t0) * rate_hz) - sent
            if behind <= 0:
                time.sleep(0.0005)
                continue
            for _ in range(min(behind, 256)):  # a short burst, then look at the clock again: the flood ends on time
                try:
                    sock.sendto(frames[sent % n], hub_addr)
                except OSError:
                    pass
                sent += 1
    finally:
        sock.close()
    return sent / max(1e-9, time.monotonic() - t0)


def flood_main() -> None:
    """`python -m lifepalette.hub.loadgen HOST PORT SECONDS RATE DB DEV`: a garbage flood from its own process."""
    import sys

    from lifepalette.hub.sitekey import derive_device_key, load_site_key

    host, port, seconds, rate, db, dev = sys.argv[1:7]
    site = load_site_key(db, create=False)
    assert site is not None, f"no site key beside {db}"
    frames = garbage_frames(derive_device_key(site, int(dev)), int(dev))
    print(f"{flood((host, int(port)), frames, float(seconds), float(rate)):.0f}", flush=True)


if __name__ == "__main__":
    flood_main()


class RingBadgePool(_Background):
    """N badges that behave like the firmware towards acknowledgements: each keeps its unacknowledged frames in a
    ring (the oldest overwritten when full), re-sends the oldest of them as backlog every second once they are a
    few seconds old, and deletes only what the hub acknowledged. `latencies` holds, per acknowledged frame, the
    seconds from its first send to its acknowledgement; `ring_lost` the frames a full ring overwrote."""

    join_s = 10.0

    def __init__(self, hub_addr: tuple[str, int], keys: dict[int, bytes], rate_hz: float = 1.0,
                 backlog_per_s: int = 5, grace_s: float = 3.0, ring_slots: int = 600):
        from collections import OrderedDict

        super().__init__(hub_addr, keys, rate_hz)
        self.backlog_per_s = backlog_per_s
        self.grace_s = grace_s
        self.ring_slots = ring_slots
        self.ring: dict[int, OrderedDict[int, float]] = {dev: OrderedDict() for dev in keys}
        self.latencies: list[float] = []
        self.sent = 0
        self.backlog_sent = 0
        self.ring_lost = 0

    def unacked(self) -> int:
        return sum(len(r) for r in self.ring.values())

    def _send(self, dev: int, frame: bytes) -> None:
        try:
            self.sockets[dev].sendto(frame, self.hub_addr)
        except OSError:  # the hub is down (killed): the frame stays in the ring
            pass

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_live = next_backlog = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_live:
                next_live += period
                for dev, key in self.keys.items():
                    ctr = self.next_ctr[dev]
                    self.next_ctr[dev] = ctr + 1
                    self._send(dev, telemetry_frame(key, dev, ctr))
                    self.sent += 1
                    ring = self.ring[dev]
                    ring[ctr] = now
                    if len(ring) > self.ring_slots:
                        ring.popitem(last=False)
                        self.ring_lost += 1
            if now >= next_backlog:
                next_backlog += 1.0
                self.resend_backlog(now)
            self.drain()
            time.sleep(min(0.01, max(0.0, min(next_live, next_backlog) - time.monotonic())))

    def resend_backlog(self, now: float) -> None:
        for dev, ring in self.ring.items():
            n = 0
            for ctr, first_sent in ring.items():
                if n >= self.backlog_per_s or now - first_sent < self.grace_s:
                    break
                self._send(dev, backlog_frame(self.keys[dev], dev, ctr))
                self.backlog_sent += 1
                n += 1

    def drain(self) -> None:
        now = time.monotonic()
        for dev, s in self.sockets.items():
            while True:
                try:
                    data = s.recv(64)
                except OSError:
                    break
                if len(data) != wire.FRAME_LEN or wire.parse_header(data)[1] != wire.COMMAND:
                    continue
                rec = open_frame(self.keys[dev], data, wire.TO_BADGE)
                if rec is None or rec[0] != records.CMD_BACKLOG_ACK:
                    continue
                upto = int.from_bytes(rec[1:5], "little")
                if upto <= self.acked[dev]:
                    continue
                self.acked[dev] = upto
                ring = self.ring[dev]
                while ring:
                    ctr, first_sent = next(iter(ring.items()))
                    if ctr > upto:
                        break
                    ring.popitem(last=False)
                    self.latencies.append(now - first_sent)
