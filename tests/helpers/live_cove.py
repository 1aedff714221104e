"""A live cove for browser tests: the REAL hub and web app on their own event loop in a thread, fed by REAL virtual
badges (`lifepalette badge run` under the MicroPython unix port) or, with LP_WEB_TEST_BADGES=python, by CPython UDP
senders that seal telemetry with protocol/; and the real Chromium those tests drive."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from lifepalette.commands.demo import badge_command, stop_process_groups
from lifepalette.hub import Hub
from lifepalette.hub.sitekey import badge_config, write_private_json
from lifepalette.web import serve_web

from protocol import frame, records

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-operator-token"
DEV_IDS = [4711 + i for i in range(6)]  # distinctive numbers: easy to spot if they ever leak
# Liveness limits, not timings: virtual badges start slowly on a loaded 2-core CI machine.
LIVE_MS = 90_000
BADGES = os.environ.get("LP_WEB_TEST_BADGES", "virtual")


class Sender:
    """One badge on UDP: a telemetry frame per second, sealed with its device key, counter + 1 each time."""

    def __init__(self, dev_id: int, key: bytes, hub_port: int, index: int):
        self.dev_id, self.key, self.hub_port, self.index = dev_id, key, hub_port, index
        self.ctr = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def send(self) -> None:
        self.ctr += 1
        values = {"hr_bpm": 68 + self.index * 3, "rmssd_ms": 42, "scl": 480 + 20 * self.index, "scr_per_min": 4,
                  "motion": 12, "hue": (self.index * 43) % 256, "chroma": 210, "colour_age": 3,
                  "consent": records.make_consent(physio=True, colour=True), "battery": 77, "quality": 15}
        sealed = frame.seal(self.key, frame.TELEMETRY, self.dev_id, self.ctr, records.pack_telemetry(values))
        self.sock.sendto(sealed, ("127.0.0.1", self.hub_port))


class LiveCove:
    """Hub + web app on their own event loop in a thread, so the tests can drive a synchronous browser."""

    def __init__(self, db_path):
        self.workdir = db_path.parent
        self.procs: list = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.db_path = db_path
        self.senders: list[Sender] = []
        self.call(self._start())

    def call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self):
        self.hub = Hub(self.db_path, udp=("127.0.0.1", 0), cadence_s=0.5)
        self.keys = {dev: self.hub.enroll(dev) for dev in DEV_IDS}
        await self.hub.start()
        self.udp_port = self.hub.transports[0].port
        self.runner = await serve_web(self.hub, "127.0.0.1", 0, TOKEN, cove="test-cove", announce=False)
        self.url = self.runner.url
        self._pump = asyncio.create_task(self._send_loop())

    async def _send_loop(self):
        while True:
            for sender in list(self.senders):
                sender.send()
            await asyncio.sleep(1.0)

    def set_badges(self, n: int) -> None:
        if BADGES == "virtual":
            self._set_virtual_badges(n)
            return

        async def change():
            while len(self.senders) < n:
                i = len(self.senders)
                self.senders.append(Sender(DEV_IDS[i], self.keys[DEV_IDS[i]], self.udp_port, i))
            del self.senders[n:]

        self.call(change())

    def _set_virtual_badges(self, n: int) -> None:
        import subprocess

        while len(self.procs) < n:
            i = len(self.procs)
            config = self.workdir / f"badge-{DEV_IDS[i]}.json"
            write_private_json(config, badge_config(DEV_IDS[i], self.keys[DEV_IDS[i]], self.hub.group_id,
                                                    self.hub.group_key))
            with open(self.workdir / f"badge-{i}.log", "wb") as log:
                self.procs.append(subprocess.Popen(badge_command(str(config), self.udp_port, "dialogue", i, index=i),
                                                   stdout=log, stderr=subprocess.STDOUT, process_group=0))
        stop_process_groups(self.procs[n:])
        del self.procs[n:]

    def close(self):
        stop_process_groups(self.procs)

        async def stop():
            self._pump.cancel()
            await self.runner.cleanup()
            await self.hub.stop()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@contextmanager
def chromium() -> Iterator:
    """Debian's Chromium under Playwright (sync API); a missing Chromium fails the test with the fix."""
    if not CHROMIUM:
        pytest.fail("chromium is not installed: run `make system-deps` (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
