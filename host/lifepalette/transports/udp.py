"""UDP for virtual badges: raw 24-byte datagrams in, raw 24-byte command / group-colour frames back to the
datagram's source address."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("lifepalette.hub.udp")


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, transport_owner: UdpTransport):
        self.owner = transport_owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner.received += 1
        self.owner.hub.ingest(data, link="udp", route=(self.owner, addr))

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable from a badge that went away
        log.debug("udp error: %s", exc)


class UdpTransport:
    name = "udp"

    def __init__(self, hub, host: str, port: int):
        self.hub = hub
        self.host = host
        self.port = port
        self.received = 0
        self.sent = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                                 local_addr=(self.host, self.port))
        self.port = self._transport.get_extra_info("sockname")[1]

    def describe(self) -> str:
        return f"udp {self.host}:{self.port}"

    def send(self, frame: bytes, address) -> bool:
        if self._transport is None or self._transport.is_closing():
            return False
        self._transport.sendto(frame, address)
        self.sent += 1
        return True

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
