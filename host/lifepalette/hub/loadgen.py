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


class UdpSenderPool:
    """N badges streaming sealed frames to a hub over UDP from one thread, each with its own socket so the hub's
    replies (acks, group colour) come back to it. `acked[dev]` = highest counter the hub acknowledged."""

    def __init__(self, hub_addr: tuple[str, int], keys: dict[int, bytes], rate_hz: float = 50.0):
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
        self.sent: dict[int, list[bytes]] = {dev: [] for dev in keys}
        self.acked = dict.fromkeys(keys, 0)
        self.group_frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.drain()

    def close(self) -> None:
        for s in self.sockets.values():
            s.close()

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
            due = min(int((now - t0) * rate_hz) + 256, int(seconds * rate_hz))
            while sent < due:
                try:
                    sock.sendto(frames[sent % n], hub_addr)
                except (BlockingIOError, OSError):
                    pass
                sent += 1
            if sent >= seconds * rate_hz:
                time.sleep(max(0.0, end - time.monotonic()))
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
