"""UDP for virtual badges: raw 24-byte datagrams in, raw 24-byte command / group-colour frames back to the
datagram's source address.

Under overload the hub must keep serving its badges and stay within a fixed amount of memory. Datagrams are read
off the socket in bursts (reading is far cheaper than verifying) into a bounded queue per source address, and
verified round-robin across sources, a slice at a time, so a flood from one source costs a live badge at most its
fair share instead of crowding it out of the kernel's buffer; a source whose frames keep failing verification is
held to a budget of rejects a second and dropped unverified beyond it (`throttled`). A full queue drops the datagram
and counts it (`dropped`); the kernel's own drops on this socket are read from /proc/net/udp (`kernel_drops`). A badge's
frames lost either way stay in its ring and come back as backlog: the hub acknowledges only what it stored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque

log = logging.getLogger("lifepalette.hub.udp")

PER_SOURCE_MAX = 256  # datagrams queued per source address
SOURCES_MAX = 1024  # distinct source addresses with something queued
QUEUED_MAX = 16_384  # datagrams queued in all (about 1.5 MB): the memory bound under any flood
READ_BURST = 512  # datagrams read per readiness event before verifying some
SLICE_S = 0.002  # verifying at most this long before reading again: what arrives meanwhile fits the buffer
# A source's rejected frames (each may have cost a MIC check) are budgeted: REJECTS_PER_S a second, bursts of
# REJECT_BURST; past that its datagrams are dropped unread by the verifier, so a flood cannot spend the CPU that
# reading the socket (and the badges' frames in it) needs. A badge's own rejects (a repeat now and then) are far below.
REJECTS_PER_S = 500.0
REJECT_BURST = 500.0
RECV_BUFFER = 4 << 20  # a flood must not overflow it while the hub is scheduled out (capped by net.core.rmem_max)


class UdpTransport:
    name = "udp"

    def __init__(self, hub, host: str, port: int):
        self.hub = hub
        self.host = host
        self.port = port
        self.received = 0
        self.sent = 0
        self.dropped = 0  # datagrams the bounded queue refused (counted, never stored, never acknowledged)
        self.queues: dict[tuple, deque[bytes]] = {}  # source address -> datagrams, insertion order = turn order
        self.queued = 0
        self.throttled = 0  # of `dropped`: from sources over their budget of rejected frames
        self._rejects: dict[tuple, tuple[float, float]] = {}  # source -> (reject budget left, when)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._inode: int | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._inode = os.fstat(sock.fileno()).st_ino
        self._loop.add_reader(sock.fileno(), self._read_ready)

    def describe(self) -> str:
        return f"udp {self.host}:{self.port}"

    # -- in -------------------------------------------------------------------------------------------------
    def _read_ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(READ_BURST):
            try:
                data, addr = sock.recvfrom(64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP port unreachable from a badge that went away
                log.debug("udp error: %s", exc)
                continue
            self.received += 1
            self._enqueue(data, addr)
        if self.queued and not self._draining:
            self._draining = True
            self._loop.call_soon(self._drain)

    def _enqueue(self, data: bytes, addr) -> None:
        if self.queued >= QUEUED_MAX:
            self.dropped += 1
            return
        if addr in self._rejects and self._reject_budget(addr, time.monotonic()) < 1.0:
            self.dropped += 1
            self.throttled += 1
            return
        queue = self.queues.get(addr)
        if queue is None:
            if len(self.queues) >= SOURCES_MAX:
                self.dropped += 1
                return
            queue = self.queues[addr] = deque()
        elif len(queue) >= PER_SOURCE_MAX:
            self.dropped += 1
            return
        queue.append(data)
        self.queued += 1

    def _drain(self) -> None:
        """Verify queued datagrams one per source in turn, for at most SLICE_S; then let the loop read again."""
        deadline = time.perf_counter() + SLICE_S
        queues = self.queues
        ingest = self.hub.ingest
        while queues and time.perf_counter() < deadline:
            for addr in list(queues):
                queue = queues[addr]
                data = queue.popleft()
                self.queued -= 1
                if not queue:
                    del queues[addr]
                if not ingest(data, link="udp", route=(self, addr)).ok:
                    self._charge(addr)
        if queues:
            self._loop.call_soon(self._drain)
        else:
            self._draining = False

    def _reject_budget(self, addr, now: float) -> float:
        left, when = self._rejects[addr]
        return min(REJECT_BURST, left + (now - when) * REJECTS_PER_S)

    def _charge(self, addr) -> None:
        now = time.monotonic()
        left = self._reject_budget(addr, now) if addr in self._rejects else REJECT_BURST
        if len(self._rejects) >= SOURCES_MAX and addr not in self._rejects:
            # forget the sources whose budget has refilled: they are no different from new ones
            self._rejects = {a: v for a, v in self._rejects.items() if self._reject_budget(a, now) < REJECT_BURST}
            if len(self._rejects) >= SOURCES_MAX:
                return
        self._rejects[addr] = (left - 1.0, now)

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on this socket (its receive buffer was full), or None where unreadable."""
        if self._inode is None:
            return None
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table) as fh:
                    next(fh, None)
                    for line in fh:
                        fields = line.split()
                        if len(fields) >= 13 and fields[9] == str(self._inode):
                            return int(fields[12])
            except (OSError, ValueError):
                continue
        return None

    def overload_stats(self) -> dict:
        return {"received": self.received, "queued": self.queued, "dropped": self.dropped,
                "throttled": self.throttled, "kernel_drops": self.kernel_drops()}

    # -- out ------------------------------------------------------------------------------------------------
    def send(self, frame: bytes, address) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(frame, address)
        except (BlockingIOError, InterruptedError):  # our send buffer is full: a reply is best effort anyway
            return False
        except OSError as exc:
            log.debug("udp send to %s: %s", address, exc)
            return False
        self.sent += 1
        return True

    async def stop(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self.queues.clear()
        self.queued = 0
