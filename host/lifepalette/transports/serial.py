"""USB serial for a badge on a cable: SLIP-framed 24-byte frames (protocol.slip), text log lines in between.

pyserial is blocking, so a reader thread reads and hands bytes to the event loop, where the sans-I/O SlipDecoder
turns them into frames. Writes are a few bytes and go straight out.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

log = logging.getLogger("lifepalette.hub.serial")


class SerialTransport:
    name = "serial"

    def __init__(self, hub, port: str, baudrate: int = 115200):
        from protocol.slip import SlipDecoder

        self.hub = hub
        self.port = port
        self.baudrate = baudrate
        self.decoder = SlipDecoder()
        self.text_lines: deque[str] = deque(maxlen=200)
        self.received = 0
        self.sent = 0
        self._serial = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        import serial

        from lifepalette.errors import LifePaletteError

        self._loop = asyncio.get_running_loop()
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.1)
        except (serial.SerialException, OSError) as exc:
            raise LifePaletteError(f"cannot open serial port {self.port}: {exc}") from None
        self._thread = threading.Thread(target=self._read_loop, name=f"serial {self.port}", daemon=True)
        self._thread.start()

    def describe(self) -> str:
        return f"serial {self.port} @ {self.baudrate}"

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._serial.read(self._serial.in_waiting or 1)
            except Exception as exc:  # cable pulled: report once and end the thread
                log.warning("serial %s: %s", self.port, exc)
                return
            if data and self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._feed, data)

    def _feed(self, data: bytes) -> None:
        for kind, payload in self.decoder.feed(data):
            if kind == "frame":
                self.received += 1
                self.hub.ingest(bytes(payload), link="serial", route=(self, self.port))
            else:
                self.text_lines.append(bytes(payload).decode("ascii", "replace").rstrip())

    def send(self, frame: bytes, address=None) -> bool:
        from protocol.slip import slip_encode

        if self._serial is None:
            return False
        try:
            self._serial.write(slip_encode(frame))
        except Exception as exc:
            log.info("serial write %s: %s", self.port, exc)
            return False
        self.sent += 1
        return True

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 1.0)
        if self._serial is not None:
            self._serial.close()
