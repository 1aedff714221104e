"""HOST:PORT arguments, parsed in one place (hub --udp, badge --udp/--led, sphere --http, --osc)."""

from __future__ import annotations


def split_host_port(text: str, *, default_host: str | None = None, default_port: int | None = None,
                    allow_port_zero: bool = False) -> tuple[str, int]:
    """(host, port) from "HOST:PORT" ("[::1]:80" too). An empty host becomes `default_host` and a missing ":PORT"
    `default_port` when given; port 0 (any free port) only with `allow_port_zero`. ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_port is None:
            raise ValueError("expected HOST:PORT")
        host, port = text, str(default_port)
    host = host.strip("[]") or (default_host or "")
    if not host or not port.isdigit() or not (0 if allow_port_zero else 1) <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT")
    return host, int(port)
