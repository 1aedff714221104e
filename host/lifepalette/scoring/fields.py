"""Telemetry field names, n/a codes and flag bits as the scorer reads them (re-exported from protocol/records.py)."""

from __future__ import annotations

from protocol.records import (  # one source of truth for the record layout
    CONSENT_COLOUR,
    CONSENT_PAUSED,
    CONSENT_PHYSIO,
    HR_NA,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
    RMSSD_NA,
    SCL_NA,
    SCR_NA,
    TELEMETRY_FIELDS,
)

__all__ = ["CONSENT_COLOUR", "CONSENT_PAUSED", "CONSENT_PHYSIO", "FIELDS", "FIELD_INDEX", "FIELD_MAX", "HR_NA",
           "Q_EDA", "Q_HR", "Q_MOTION", "Q_SKIN", "RMSSD_NA", "SCL_NA", "SCR_NA"]

FIELDS: tuple[str, ...] = tuple(TELEMETRY_FIELDS)
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
FIELD_MAX = {"scl": 0xFFFF}  # every other field is one byte
