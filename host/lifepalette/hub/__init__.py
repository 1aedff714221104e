"""The hub (docs/ARCHITECTURE.md): ingest from BLE, USB serial and UDP, consent ledger, SQLite store, scoring cadence,
group colour out. `Hub` is the object the web app and the `hub` command drive."""

from lifepalette.hub.core import Hub

__all__ = ["Hub"]
