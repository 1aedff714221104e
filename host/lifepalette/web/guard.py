"""Connection limits for the hub's web server, so one client cannot lock out the wall and the console.

aiohttp on its own keeps every half-sent request open for as long as the client likes and accepts connections until
the process runs out of file descriptors. `ConnectionGuard` sits between the listening socket and aiohttp:

- at most `max_total` open connections, and `max_per_client` from one address; past either, the connection gets a
  short `503` and is closed at once (its descriptor is freed before the next accept);
- a connection that is not inside a request (still sending its headers, or idle between keep-alive requests) is
  closed after `idle_timeout_s`; a request that has not finished reading its body and answering within
  `request_timeout_s` gets `408`;
- at most `max_streams` event streams, `max_streams_per_client` from one address (`503` past either).

Everything the guard refuses is counted (`GuardStats`) and logged at most once per condition per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.web_runner import TCPSite

log = logging.getLogger("lifepalette.web")


@dataclass(frozen=True)
class Limits:
    max_total: int = 256
    max_per_client: int = 32
    max_streams: int = 64
    max_streams_per_client: int = 8
    idle_timeout_s: float = 10.0
    request_timeout_s: float = 15.0
    sweep_s: float = 1.0


@dataclass
class GuardStats:
    refused_total: int = 0
    refused_client: int = 0
    refused_streams: int = 0
    idle_closed: int = 0
    request_timeouts: int = 0
    open_now: int = 0
    streams_now: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class RateLimitedLog:
    """One log line per condition per interval, with the count of repeats it swallowed; never a traceback."""

    def __init__(self, logger: logging.Logger, interval_s: float = 30.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def warn(self, condition: str, message: str) -> bool:
        now = time.monotonic()
        last = self._last.get(condition)
        if last is not None and now - last < self.interval_s:
            self._suppressed[condition] += 1
            return False
        repeats = self._suppressed.pop(condition, 0)
        self._last[condition] = now
        self.logger.warning("%s%s", message, f" (and {repeats} more since the last report)" if repeats else "")
        return True


class _RateLimitFilter(logging.Filter):
    """Applied to asyncio's and aiohttp's own loggers: drops tracebacks and repeats of the same message."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:80])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        if len(self._last) > 1024:
            self._last.clear()
        self._last[key] = now
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_server_logs(interval_s: float = 30.0) -> None:
    """Rate-limit the server libraries' own error logs (EMFILE on accept, broken connections) once per process."""
    for name in ("asyncio", "aiohttp.server", "aiohttp.web", "aiohttp.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RateLimitFilter) for f in logger.filters):
            logger.addFilter(_RateLimitFilter(interval_s))


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


_REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 25\r\n"
            b"Retry-After: 5\r\nConnection: close\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            b"X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n\r\nthe hub is busy: retry\r\n\r\n")


class _Connection(asyncio.Protocol):
    """One accepted socket: counts it against the limits, then hands every event to aiohttp's protocol."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.client = "?"
        self.accepted = False
        self.requests = 0  # requests being handled now
        self.idle_since = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client = _peer(transport)
        if not self.guard.admit(self):
            transport.write(_REFUSAL)  # type: ignore[attr-defined]
            transport.close()
            return
        self.accepted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.accepted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.accepted else None

    def pause_writing(self) -> None:
        if self.accepted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.accepted:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.accepted:
            self.accepted = False
            self.guard.release(self)
            self.inner.connection_lost(exc)


@dataclass
class ConnectionGuard:
    limits: Limits = field(default_factory=Limits)
    stats: GuardStats = field(default_factory=GuardStats)

    def __post_init__(self) -> None:
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._per_client: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._sweeper: asyncio.Task | None = None
        self.log = RateLimitedLog(log)

    # -- connections --------------------------------------------------------------------------------------------

    def wrap(self, factory):
        """A protocol factory for `loop.create_server` that puts every connection under this guard."""
        return lambda: _Connection(self, factory())

    def admit(self, conn: _Connection) -> bool:
        limits = self.limits
        if len(self._open) >= limits.max_total:
            self.stats.refused_total += 1
            self.log.warn("total", f"web: {limits.max_total} connections open, refusing more (503)")
            return False
        if self._per_client[conn.client] >= limits.max_per_client:
            self.stats.refused_client += 1
            self.log.warn("client:" + conn.client,
                          f"web: {conn.client} holds {limits.max_per_client} connections, refusing more (503)")
            return False
        self._open[conn.transport] = conn  # type: ignore[index]
        self._per_client[conn.client] += 1
        self.stats.open_now = len(self._open)
        return True

    def release(self, conn: _Connection) -> None:
        if self._open.pop(conn.transport, None) is not None:  # type: ignore[arg-type]
            self._per_client[conn.client] -= 1
            if self._per_client[conn.client] <= 0:
                del self._per_client[conn.client]
        self.stats.open_now = len(self._open)

    def sweep(self, now: float | None = None) -> int:
        """Close connections that sit outside a request for longer than the idle timeout; returns how many."""
        now = time.monotonic() if now is None else now
        closed = 0
        for conn in list(self._open.values()):
            if conn.requests == 0 and now - conn.idle_since > self.limits.idle_timeout_s:
                closed += 1
                conn.transport.close()  # type: ignore[union-attr]
        if closed:
            self.stats.idle_closed += closed
            self.log.warn("idle", f"web: closed {closed} connection(s) idle or slow to send a request")
        return closed

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.limits.sweep_s)
            self.sweep()

    # -- requests and streams -----------------------------------------------------------------------------------

    def connection_of(self, request: web.Request) -> _Connection | None:
        return self._open.get(request.transport) if request.transport is not None else None

    def open_stream(self, client: str) -> bool:
        limits = self.limits
        if sum(self._streams.values()) >= limits.max_streams:
            self.stats.refused_streams += 1
            self.log.warn("streams", f"web: {limits.max_streams} event streams open, refusing more (503)")
            return False
        if self._streams[client] >= limits.max_streams_per_client:
            self.stats.refused_streams += 1
            self.log.warn("streams:" + client, f"web: {client} holds {limits.max_streams_per_client} event "
                                               "streams, refusing more (503)")
            return False
        self._streams[client] += 1
        self.stats.streams_now = sum(self._streams.values())
        return True

    def close_stream(self, client: str) -> None:
        self._streams[client] -= 1
        if self._streams[client] <= 0:
            del self._streams[client]
        self.stats.streams_now = sum(self._streams.values())


GUARD = web.AppKey("guard", ConnectionGuard)
STREAMING = "lp_streaming"  # set on a route handler that streams for as long as the client listens


def streaming(handler):
    """Mark a handler as a long-lived event stream: no request timeout; counted against the stream caps."""
    setattr(handler, STREAMING, True)
    return handler


def client_of(request: web.Request) -> str:
    return request.remote or "?"


@web.middleware
async def guard_requests(request: web.Request, handler):
    guard = request.app[GUARD]
    conn = guard.connection_of(request)
    if conn is not None:
        conn.requests += 1
    try:
        if getattr(handler, STREAMING, False):
            client = client_of(request)
            if not guard.open_stream(client):
                raise web.HTTPServiceUnavailable(text="too many event streams: retry later",
                                                 headers={"Retry-After": "5"})
            try:
                return await handler(request)
            finally:
                guard.close_stream(client)
        try:
            async with asyncio.timeout(guard.limits.request_timeout_s):
                return await handler(request)
        except TimeoutError:
            guard.stats.request_timeouts += 1
            guard.log.warn("timeout", "web: a request took too long to send or to answer (408)")
            raise web.HTTPRequestTimeout(text="request took too long", headers={"Connection": "close"}) from None
    finally:
        if conn is not None:
            conn.requests -= 1
            conn.idle_since = time.monotonic()


class GuardedSite(TCPSite):
    """A TCP site whose connections go through the app's `ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.guard = guard

    async def start(self) -> None:
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        # BaseSite.start registers the site with the runner; the listening socket is made here, through the guard
        await super(TCPSite, self).start()
        self._server = await loop.create_server(self.guard.wrap(server), self._host, self._port,
                                                backlog=self._backlog, reuse_address=self._reuse_address,
                                                reuse_port=self._reuse_port)
        self.guard.start()

    async def stop(self) -> None:
        await self.guard.stop()
        await super().stop()
