"""Telemetry field names, n/a codes and flag bits as the scorer reads them (mirrors protocol/records.py)."""

from __future__ import annotations

from protocol.records import (  # one source of truth for the record layout
    TELEMETRY_FIELDS,
)

FIELDS: tuple[str, ...] = tuple(TELEMETRY_FIELDS)
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
FIELD_MAX = {"scl": 0xFFFF}  # every other field is one byte
