"""Telemetry field names, n/a codes and flag bits as the scorer reads them (mirrors protocol/records.py)."""

from __future__ import annotations

try:  # one source of truth once helper P's protocol.records has landed
    from protocol.records import (  # type: ignore[attr-defined]
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
except ImportError:  # the contract's values (COMMON.md)
    TELEMETRY_FIELDS = ("hr_bpm", "rmssd_ms", "scl", "scr_per_min", "motion", "hue", "chroma", "colour_age",
                        "consent", "battery", "quality")
    HR_NA, RMSSD_NA, SCL_NA, SCR_NA = 0, 255, 0xFFFF, 255
    CONSENT_PHYSIO, CONSENT_COLOUR, CONSENT_PAUSED = 1, 2, 4
    Q_SKIN, Q_HR, Q_EDA, Q_MOTION = 1, 2, 4, 8

FIELDS: tuple[str, ...] = tuple(TELEMETRY_FIELDS)
FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
FIELD_MAX = {"scl": 0xFFFF}  # every other field is one byte
