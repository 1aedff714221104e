"""The running hub's local control socket: `<db>.control`, a Unix socket only the hub's own user can use.

Whoever wants to change the database while a hub holds it (hub/dblock.py says who does) asks the hub instead, so
the change goes through the hub's ledger and batch and cannot be undone by its next flush. One JSON line in, one
JSON line out:

    {"op": "erase", "dev": 7, "epoch": null}  ->  {"receipt": {...}}  or  {"error": "...", "exit_code": 2}

The socket file is mode 0600 (made so before it listens) and every peer's uid is checked (SO_PEERCRED).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from lifepalette.errors import LifePaletteError, UsageError

log = logging.getLogger("lifepalette.hub")

REQUEST_MAX = 4096
SUN_PATH_MAX = 107  # sockaddr_un's sun_path, less its terminating NUL


def control_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.control")


class ControlUnavailable(UsageError):
    pass


class _ShortPath:
    """A socket path usable in sockaddr_un: long paths go through /proc/self/fd/<dir fd>/<name>."""

    def __init__(self, path: Path):
        self.path = path
        self._dir_fd: int | None = None

    def __enter__(self) -> str:
        if len(os.fsencode(self.path)) <= SUN_PATH_MAX:
            return str(self.path)
        self._dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._dir_fd}/{self.path.name}"

    def __exit__(self, *exc: object) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)


class ControlServer:
    """Serves the control socket for a running hub (started once the hub holds the database lock)."""

    def __init__(self, hub: Any):
        self.hub = hub
        self.path = control_path(hub.db_path)
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # a socket a killed hub left behind (we hold the lock: no hub runs)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _ShortPath(self.path) as where:
                sock.bind(where)
            os.chmod(self.path, 0o600)  # before listen(): nobody can have connected yet
            sock.listen(8)
        except BaseException:
            sock.close()
            raise
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=REQUEST_MAX)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if _peer_uid(writer.get_extra_info("socket")) != os.getuid():
                reply: dict = {"error": "the control socket serves only the hub's own user", "exit_code": 2}
            else:
                line = await asyncio.wait_for(reader.readline(), timeout=10)
                reply = self.handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, OSError, asyncio.LimitOverrunError, ValueError) as exc:
            log.info("control socket: %s", exc)
        finally:
            writer.close()

    def handle(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("op") != "erase":
                raise ValueError("unknown request")
            dev, epoch = request["dev"], request.get("epoch")
            if not isinstance(dev, int) or not (epoch is None or isinstance(epoch, int)):
                raise ValueError("dev and epoch must be integers")
        except (ValueError, KeyError, RecursionError):
            return {"error": "bad control request", "exit_code": 2}
        try:
            return {"receipt": self.hub.erase(dev, epoch, reason="operator")}
        except LifePaletteError as exc:
            return {"error": str(exc), "exit_code": exc.exit_code}


def _peer_uid(sock: socket.socket | None) -> int | None:
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


def request(db_path: str | Path, payload: dict, timeout_s: float = 60.0) -> dict:
    """Send one request to the hub running on `db_path`; ControlUnavailable if none answers."""
    path = control_path(db_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        with _ShortPath(path) as where:
            sock.connect(where)
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise ControlUnavailable(f"the hub's control socket {path} does not answer ({exc.strerror or exc})") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlUnavailable(f"the hub's control socket {path} gave no answer") from None
    if not isinstance(reply, dict):
        raise ControlUnavailable(f"the hub's control socket {path} gave a malformed answer")
    return reply
