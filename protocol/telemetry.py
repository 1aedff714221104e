"""The telemetry record's lean core (PROTOCOL.md §4): its n/a values, consent and quality bits, and the allocation-free
packer for a value sequence indexed like records.TELEMETRY_FIELDS.

The badge imports only this module (protocol/records.py, with every layout and checker, would cost it ~12 KB of
heap); records.py re-exports these names and its pack_telemetry(_into) uses pack_into below, so there is one copy.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


RECORD_LEN = const(13)
N_FIELDS = const(11)  # len(records.TELEMETRY_FIELDS); byte 12 of the record is reserved (0)

# "not available" values: the firmware sends these when a signal is invalid or consent withholds it.
HR_NA = const(0)
RMSSD_NA = const(255)
SCL_NA = const(0xFFFF)
SCR_NA = const(255)
MOTION_NA = const(255)
COLOUR_AGE_NA = const(255)
HR_MIN = const(25)  # a reported heart rate is n/a or in HR_MIN..HR_MAX bpm
HR_MAX = const(250)

CONSENT_PHYSIO = const(1)
CONSENT_COLOUR = const(2)
CONSENT_PAUSED = const(4)

Q_SKIN = const(1)
Q_HR = const(2)
Q_EDA = const(4)
Q_MOTION = const(8)


def pack_into(buf13, values):
    """Write the 13-byte record for `values` (a sequence indexed like TELEMETRY_FIELDS: scl is u16 LE, every other
    field one byte; byte 12 reserved 0) into buf13 without allocating. ValueError if a value is out of range."""
    if len(values) < N_FIELDS:
        raise ValueError("need 11 values")
    for i in range(N_FIELDS):
        v = values[i]
        if v < 0 or v > (0xFFFF if i == 2 else 255):
            raise ValueError("field %d out of range" % i)
    scl = values[2]
    buf13[0] = values[0]
    buf13[1] = values[1]
    buf13[2] = scl & 0xFF
    buf13[3] = scl >> 8
    for i in range(3, N_FIELDS):
        buf13[i + 1] = values[i]
    buf13[12] = 0
    return buf13


def clear_physio(values):
    """Set every physiology field of a value sequence to n/a and its quality byte to 0."""
    values[0] = HR_NA
    values[1] = RMSSD_NA
    values[2] = SCL_NA
    values[3] = SCR_NA
    values[4] = MOTION_NA
    values[10] = 0
