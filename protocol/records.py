"""The 13-byte plaintext records of every frame type (PROTOCOL.md §4). Little-endian, reserved bytes zero.

Each type has a layout: a tuple of (name, offset, size) fields; size 1/2/4 are unsigned LE integers and size 8
is a byte string (the half group key). Bytes not covered by a layout are reserved and must be zero in v1.
Command records (type 3) have one layout per command byte (record[0]).
"""

# n/a values, consent and quality bits, and the telemetry packer live in protocol/telemetry.py (the badge's lean
# import); re-exported here so host code keeps using records.*.
from protocol.telemetry import (  # noqa: F401 (re-exported)
    COLOUR_AGE_NA,
    CONSENT_COLOUR,
    CONSENT_PAUSED,
    CONSENT_PHYSIO,
    HR_MAX,
    HR_MIN,
    HR_NA,
    MOTION_NA,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
    RECORD_LEN,
    RMSSD_NA,
    SCL_NA,
    SCR_NA,
)
from protocol.telemetry import pack_into as _pack_telemetry_seq

TELEMETRY_FIELDS = ("hr_bpm", "rmssd_ms", "scl", "scr_per_min", "motion", "hue", "chroma",
                    "colour_age", "consent", "battery", "quality")

CONSENT_RESERVED = 8

BATTERY_CHARGING = 0x80

# Group colour modes (type 2, byte 3).
MODE_SOLID = 0
MODE_PULSE = 1
MODE_BREATHE = 2
MODE_OFF = 3
MODE_MAX = 3

# Command bytes (type 3, byte 0).
CMD_COLOUR = 1
CMD_TIME = 2
CMD_BACKLOG_ACK = 3
CMD_CONSENT_PROMPT = 4
CMD_GROUP_KEY = 5
CMD_NAMES = (None, "colour", "time", "backlog_ack", "consent_prompt", "group_key")

TELEMETRY_LAYOUT = (("hr_bpm", 0, 1), ("rmssd_ms", 1, 1), ("scl", 2, 2), ("scr_per_min", 4, 1),
                    ("motion", 5, 1), ("hue", 6, 1), ("chroma", 7, 1), ("colour_age", 8, 1),
                    ("consent", 9, 1), ("battery", 10, 1), ("quality", 11, 1))
# Status bits in the quality byte (PROTOCOL.md §3.1), defined here rather than in the badge's lean telemetry module
# (each module-level name costs the badge heap; the firmware uses the numbers):
Q_SENSOR_MISSING = 16  # bit 4: a sensor did not answer at bring-up; the badge runs with the ones it has
Q_SAFE_MODE = 32  # bit 5, heartbeats only: the badge is in safe mode and never captures
HEARTBEAT_LAYOUT = (("consent", 0, 1), ("battery", 1, 1), ("quality", 2, 1))
GROUP_COLOUR_LAYOUT = (("r", 0, 1), ("g", 1, 1), ("b", 2, 1), ("mode", 3, 1), ("ttl_s", 4, 1),
                       ("arousal", 5, 1), ("synchrony", 6, 1))
COMMAND_LAYOUTS = (
    None,
    (("cmd", 0, 1), ("r", 1, 1), ("g", 2, 1), ("b", 3, 1)),
    (("cmd", 0, 1), ("unix_s", 1, 4)),
    (("cmd", 0, 1), ("ctr", 1, 4)),
    (("cmd", 0, 1), ("revision", 1, 1)),
    (("cmd", 0, 1), ("part", 1, 1), ("group_id", 2, 2), ("key_part", 4, 8)),
)
# Indexed by frame type: telemetry, heartbeat, group colour, command (by cmd byte), backlog (= telemetry).
LAYOUTS = (TELEMETRY_LAYOUT, HEARTBEAT_LAYOUT, GROUP_COLOUR_LAYOUT, None, TELEMETRY_LAYOUT)

# Defaults used when a field is not given: n/a for physiology, zero for the rest.
TELEMETRY_DEFAULTS = {"hr_bpm": HR_NA, "rmssd_ms": RMSSD_NA, "scl": SCL_NA, "scr_per_min": SCR_NA,
                      "motion": MOTION_NA, "colour_age": COLOUR_AGE_NA}


def consent_revision(consent_byte):
    return (consent_byte >> 4) & 0x0F


def make_consent(physio=False, colour=False, paused=False, revision=0):
    b = (revision & 0x0F) << 4
    if physio:
        b |= CONSENT_PHYSIO
    if colour:
        b |= CONSENT_COLOUR
    if paused:
        b |= CONSENT_PAUSED
    return b


def _put(buf, off, size, value, name):
    if size == 8:
        if len(value) != 8:
            raise ValueError(name + " must be 8 bytes")
        buf[off:off + 8] = value
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(name + " must be an integer")
    if value < 0 or value >= (1 << (8 * size)):
        raise ValueError(name + " out of range")
    for i in range(size):
        buf[off + i] = (value >> (8 * i)) & 0xFF


def _get(rec, off, size):
    if size == 8:
        return bytes(rec[off:off + 8])
    v = 0
    for i in range(size - 1, -1, -1):
        v = (v << 8) | rec[off + i]
    return v


def layout_for(ftype, rec_or_cmd=None):
    """The field layout of a type; for commands, of the command byte (int) or record given (None if unknown)."""
    if ftype == 3:
        cmd = rec_or_cmd if isinstance(rec_or_cmd, int) else (rec_or_cmd[0] if rec_or_cmd else 0)
        if cmd <= 0 or cmd >= len(COMMAND_LAYOUTS):
            return None
        return COMMAND_LAYOUTS[cmd]
    if ftype < 0 or ftype >= len(LAYOUTS):
        return None
    return LAYOUTS[ftype]


def pack_into(buf13, layout, values, defaults=None):
    """Write `values` (a dict by name, or a sequence in layout order) into buf13; reserved bytes set to 0.

    Raises ValueError for unknown names, missing values (without a default) and out-of-range values.
    """
    for i in range(RECORD_LEN):
        buf13[i] = 0
    if isinstance(values, dict):
        names = [f[0] for f in layout]
        for k in values:
            if k not in names:
                raise ValueError("unknown field " + str(k))
        for name, off, size in layout:
            if name in values:
                v = values[name]
            elif defaults is not None and name in defaults:
                v = defaults[name]
            elif size == 8:
                v = bytes(8)
            else:
                v = 0
            _put(buf13, off, size, v, name)
    else:
        if len(values) < len(layout):
            raise ValueError("need " + str(len(layout)) + " values")
        for i in range(len(layout)):
            name, off, size = layout[i]
            _put(buf13, off, size, values[i], name)
    return buf13


def unpack(layout, rec):
    d = {}
    for name, off, size in layout:
        d[name] = _get(rec, off, size)
    return d


# ---- telemetry (types 0 and 4) ----

def pack_telemetry_into(buf13, values):
    """values: dict by TELEMETRY_FIELDS name (missing -> n/a or 0) or a sequence indexed like TELEMETRY_FIELDS."""
    if isinstance(values, dict):
        return pack_into(buf13, TELEMETRY_LAYOUT, values, TELEMETRY_DEFAULTS)
    return _pack_telemetry_seq(buf13, values)  # the badge's allocation-free packer (protocol/telemetry.py)


def pack_telemetry(values):
    return bytes(pack_telemetry_into(bytearray(RECORD_LEN), values))


def unpack_telemetry(rec):
    return {"hr_bpm": rec[0], "rmssd_ms": rec[1], "scl": rec[2] | (rec[3] << 8), "scr_per_min": rec[4],
            "motion": rec[5], "hue": rec[6], "chroma": rec[7], "colour_age": rec[8], "consent": rec[9],
            "battery": rec[10], "quality": rec[11]}


# ---- heartbeat (type 1): consent, battery and quality only, never physiology ----

def pack_heartbeat(consent, battery, quality=0):
    return bytes(pack_into(bytearray(RECORD_LEN), HEARTBEAT_LAYOUT, (consent, battery, quality)))


def unpack_heartbeat(rec):
    return unpack(HEARTBEAT_LAYOUT, rec)


# ---- group colour (type 2, group key, hub to badges) ----

def pack_group_colour(r, g, b, mode=MODE_SOLID, ttl_s=0, arousal=0, synchrony=0):
    return bytes(pack_into(bytearray(RECORD_LEN), GROUP_COLOUR_LAYOUT, (r, g, b, mode, ttl_s, arousal, synchrony)))


def unpack_group_colour(rec):
    return unpack(GROUP_COLOUR_LAYOUT, rec)


# ---- commands (type 3, device key, hub to one badge) ----

def pack_cmd_colour(r, g, b):
    return bytes(pack_into(bytearray(RECORD_LEN), COMMAND_LAYOUTS[CMD_COLOUR], (CMD_COLOUR, r, g, b)))


def pack_cmd_time(unix_s):
    return bytes(pack_into(bytearray(RECORD_LEN), COMMAND_LAYOUTS[CMD_TIME], (CMD_TIME, unix_s)))


def pack_cmd_backlog_ack(ctr):
    return bytes(pack_into(bytearray(RECORD_LEN), COMMAND_LAYOUTS[CMD_BACKLOG_ACK], (CMD_BACKLOG_ACK, ctr)))


def pack_cmd_consent_prompt(revision=0):
    return bytes(pack_into(bytearray(RECORD_LEN), COMMAND_LAYOUTS[CMD_CONSENT_PROMPT],
                           (CMD_CONSENT_PROMPT, revision)))


def pack_cmd_group_key(part, group_id, key_part8):
    return bytes(pack_into(bytearray(RECORD_LEN), COMMAND_LAYOUTS[CMD_GROUP_KEY],
                           (CMD_GROUP_KEY, part, group_id, bytes(key_part8))))


def group_key_commands(group_id, group_key16):
    """The two CMD_GROUP_KEY records that carry a 16-byte group key (part 0 = bytes 0..7, part 1 = 8..15)."""
    return (pack_cmd_group_key(0, group_id, group_key16[0:8]), pack_cmd_group_key(1, group_id, group_key16[8:16]))


def unpack_command(rec):
    """dict with "cmd" and that command's fields, or None for an unknown command byte."""
    layout = layout_for(3, rec[0])
    if layout is None:
        return None
    return unpack(layout, rec)


def unpack_record(ftype, rec):
    """Decode any type's record to a dict of raw wire values (None if the type or command is unknown)."""
    if ftype == 0 or ftype == 4:
        return unpack_telemetry(rec)
    layout = layout_for(ftype, rec)
    if layout is None:
        return None
    return unpack(layout, rec)


def pack_record(ftype, values):
    """Encode a dict of fields for any type (commands need "cmd"). Raises ValueError on bad input."""
    if ftype == 0 or ftype == 4:
        return pack_telemetry(values)
    if ftype == 3:
        cmd = values.get("cmd") if isinstance(values, dict) else values[0]
        layout = layout_for(3, cmd if isinstance(cmd, int) else -1)
        if layout is None:
            raise ValueError("unknown command")
    else:
        layout = layout_for(ftype)
        if layout is None:
            raise ValueError("unknown type")
    return bytes(pack_into(bytearray(RECORD_LEN), layout, values))


# ---- semantic checks (after the MIC passed) ----

def _reserved_zero(rec, layout):
    used = 0
    for _name, off, size in layout:
        for i in range(off, off + size):
            used |= 1 << i
    for i in range(RECORD_LEN):
        if not (used >> i) & 1 and rec[i]:
            return False
    return True


def _status_ok(consent, battery, quality, revisions):
    if consent & CONSENT_RESERVED or quality & 0xC0 or (battery & 0x7F) > 100:
        return False
    if revisions is not None and consent_revision(consent) not in revisions:
        return False
    return True


def check_record(ftype, rec, revisions=None):
    """True if a decrypted record is well formed for its type: reserved bytes/bits 0, values in range, and
    (when `revisions` is a container of known consent revisions) a known consent revision."""
    if len(rec) != RECORD_LEN:
        return False
    if ftype == 0 or ftype == 4:
        hr = rec[0]
        if hr != HR_NA and (hr < HR_MIN or hr > HR_MAX):
            return False
        return rec[12] == 0 and _status_ok(rec[9], rec[10], rec[11], revisions)
    if ftype == 1:
        for i in range(3, RECORD_LEN):
            if rec[i]:
                return False
        return _status_ok(rec[0], rec[1], rec[2], revisions)
    if ftype == 2:
        return rec[3] <= MODE_MAX and _reserved_zero(rec, GROUP_COLOUR_LAYOUT)
    if ftype == 3:
        layout = layout_for(3, rec[0])
        if layout is None or not _reserved_zero(rec, layout):
            return False
        if rec[0] == CMD_GROUP_KEY and rec[1] > 1:
            return False
        if rec[0] == CMD_CONSENT_PROMPT and rec[1] > 15:
            return False
        return True
    return False
