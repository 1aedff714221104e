"""Protocol benchmarks (issue 2): verifier throughput on one CPython core, fast path vs pure-Python CCM, and the
seal cost under the real MicroPython unix port. Figures are measured in one run, so ratios compare like with like.
"""

from __future__ import annotations

import os
import subprocess
import time

DEVICES = 100
FAST_FRAMES = 200_000
PURE_FRAMES = 20_000
MPY_SEALS = 5000

_MPY_SNIPPET = """
import time
from protocol import frame, records, verifier
key = bytes(range(16))
rec = records.pack_telemetry({"hr_bpm": 72, "rmssd_ms": 41, "scl": 523, "consent": 19, "battery": 87})
N = %d
frame.seal(key, 0, 258, 0, rec)
t = time.ticks_us()
for i in range(N):
    frame.seal(key, 0, 258, i + 1, rec)
seal_us = time.ticks_diff(time.ticks_us(), t)
v = verifier.Verifier({258: key})
verify_us = 0
for i in range(1000):  # one frame at a time: a list of 1000 frames would not fit the badge-sized heap
    f = frame.seal(key, 0, 258, i + 1, rec)
    t = time.ticks_us()
    v.verify(f)
    verify_us += time.ticks_diff(time.ticks_us(), t)
print(seal_us / N, verify_us / 1000, v.counts["ok"])
"""


def _frames(n: int) -> tuple[dict[int, bytes], list[bytes]]:
    from lifepalette import crypto

    from protocol import records

    keys = {dev: os.urandom(16) for dev in range(DEVICES)}
    rec = records.pack_telemetry({"hr_bpm": 72, "rmssd_ms": 41, "scl": 523, "scr_per_min": 3, "motion": 12,
                                  "hue": 200, "chroma": 180, "colour_age": 2, "consent": 19, "battery": 87,
                                  "quality": 7})
    return keys, [crypto.seal(keys[i % DEVICES], 0, i % DEVICES, i // DEVICES + 1, rec) for i in range(n)]


def verify_rate(keys: dict[int, bytes], frames: list[bytes], opener=None) -> float:
    """Frames verified and decoded (telemetry dict) per second by one Verifier on this core; opener None is the
    hub's fast path (lifepalette.crypto.open_frame, injected as the hub does)."""
    from lifepalette.crypto import open_frame

    from protocol import records, verifier

    v = verifier.Verifier(keys, opener=opener or open_frame)
    unpack = records.unpack_telemetry
    start = time.perf_counter()
    for data in frames:
        verdict = v.verify(data)
        if verdict.ok:
            unpack(verdict.record)
    elapsed = time.perf_counter() - start
    assert v.counts["ok"] == len(frames), v.counts
    return len(frames) / elapsed


def micropython_costs(n: int = MPY_SEALS) -> tuple[float, float]:
    """(seal us/frame, verify us/frame) under the MicroPython unix port with the pure CCM over cryptolib ECB."""
    from lifepalette.paths import micropython_binary, micropython_path

    env = dict(os.environ, MICROPYPATH=micropython_path())
    out = subprocess.run([micropython_binary(), "-X", "heapsize=96K", "-c", _MPY_SNIPPET % n], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout.split()
    assert out[2] == "1000", out
    return float(out[0]), float(out[1])


def aes_ops_per_frame() -> int:
    """AES block operations one seal costs (the design budget is 4)."""
    from protocol import frame
    from protocol.aes import AES

    calls = {"n": 0}
    real = AES.encrypt_block

    def counting(self, src, dst):
        calls["n"] += 1
        real(self, src, dst)

    AES.encrypt_block = counting
    try:
        frame.seal(bytes([7]) * 16, 0, 1, 1, bytes(13))  # warm the key cache
        calls["n"] = 0
        frame.seal(bytes([7]) * 16, 0, 1, 2, bytes(13))
    finally:
        AES.encrypt_block = real
    return calls["n"]


def main() -> None:
    from protocol import frame

    keys, frames = _frames(FAST_FRAMES)
    verify_rate(keys, frames[:5000])  # warm-up: caches, allocator
    fast = max(verify_rate(keys, frames) for _ in range(2))
    pure = verify_rate(keys, frames[:PURE_FRAMES], opener=frame.open_frame)
    seal_us, verify_us = micropython_costs()
    print(f"CPython verify+decode, cryptography AESCCM fast path: {fast:,.0f} frames/s on one core (goal >= 100,000)")
    print(f"CPython verify+decode, pure-Python CCM over ECB (baseline): {pure:,.0f} frames/s")
    print(f"fast path / pure baseline: {fast / pure:.1f}x")
    print(f"AES block operations per sealed frame: {aes_ops_per_frame()} (design budget 4)")
    print(f"MicroPython unix port, seal: {seal_us:.1f} us/frame (goal <= 50); verify: {verify_us:.1f} us/frame")


if __name__ == "__main__":
    main()
