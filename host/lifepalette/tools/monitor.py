"""`lifepalette monitor`: a badge's USB serial as readable lines — its log, plus every SLIP frame it writes,
verified and decoded (features, consent, colour) when the keys are known.

`MonitorDecoder` is sans-I/O (bytes in, lines out); `monitor()` wraps it around a pyserial port.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from lifepalette.errors import LifePaletteError, UsageError


class AnyDevice:
    """One key for every dev_id (`--key HEX`): enough to watch a single badge."""

    def __init__(self, key: bytes):
        self.key = key

    def get(self, dev_id: int) -> bytes:
        return self.key


def parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except (TypeError, ValueError):
        key = b""
    if len(key) != 16:
        raise UsageError(f"{where}: a key is 32 hex digits (16 bytes)")
    return key


def keys_from_config(config: dict, where: str) -> dict[int, bytes]:
    if not isinstance(config.get("dev_id"), int) or "key" not in config:
        raise UsageError(f"{where}: a badge config needs dev_id and key (written by `lifepalette enroll`)")
    keys = {config["dev_id"]: parse_key(config["key"], where)}
    if isinstance(config.get("group_id"), int) and config.get("group_key"):
        keys.setdefault(config["group_id"], parse_key(config["group_key"], where))
    return keys


def load_keys(path: Path) -> dict[int, bytes]:
    """A badge config, a list of them, or {"dev_id": "hex key", ...}."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
    if isinstance(data, list):
        keys: dict[int, bytes] = {}
        for entry in data:
            if not isinstance(entry, dict):
                raise UsageError(f"{path}: expected a list of badge configs")
            for dev_id, key in keys_from_config(entry, str(path)).items():
                keys.setdefault(dev_id, key)
        return keys
    if isinstance(data, dict) and "dev_id" in data:
        return keys_from_config(data, str(path))
    if isinstance(data, dict):
        try:
            return {int(dev_id): parse_key(key, str(path)) for dev_id, key in data.items()}
        except (TypeError, ValueError):
            pass
    raise UsageError(f'{path}: expected a badge config, a list of them, or {{"dev_id": "hex key"}}')


def _flags(value: int, names: tuple[tuple[int, str], ...]) -> str:
    on = [name for bit, name in names if value & bit]
    return "+".join(on) if on else "none"


def describe_consent(byte: int) -> str:
    from protocol import records as r

    flags = _flags(byte, ((r.CONSENT_PHYSIO, "physio"), (r.CONSENT_COLOUR, "colour"), (r.CONSENT_PAUSED, "paused")))
    return f"{flags} rev {r.consent_revision(byte)}"


def describe_status(consent: int, battery: int, quality: int) -> str:
    from protocol import records as r

    charging = " charging" if battery & r.BATTERY_CHARGING else ""
    q = _flags(quality, ((r.Q_SKIN, "skin"), (r.Q_HR, "hr"), (r.Q_EDA, "eda"), (r.Q_MOTION, "motion")))
    return f"consent {describe_consent(consent)}, battery {battery & 0x7F}%{charging}, quality {q}"


def _na(value: int, na: int, unit: str = "") -> str:
    return "n/a" if value == na else f"{value}{unit}"


def describe_record(ftype: int, record: bytes) -> str:
    from protocol import frame as f
    from protocol import records as r

    if ftype in (f.TELEMETRY, f.BACKLOG):
        v = r.unpack_telemetry(record)
        return (f"hr {_na(v['hr_bpm'], r.HR_NA, ' bpm')}, rmssd {_na(v['rmssd_ms'], r.RMSSD_NA, ' ms')}, "
                f"scl {_na(v['scl'], r.SCL_NA)}, scr {_na(v['scr_per_min'], r.SCR_NA, '/min')}, "
                f"motion {_na(v['motion'], r.MOTION_NA)}, colour hue {v['hue']} chroma {v['chroma']} "
                f"age {_na(v['colour_age'], r.COLOUR_AGE_NA, ' s')}, "
                + describe_status(v["consent"], v["battery"], v["quality"]))
    if ftype == f.HEARTBEAT:
        return describe_status(record[0], record[1], record[2])
    if ftype == f.GROUP_COLOUR:
        v = r.unpack_group_colour(record)
        modes = ("solid", "pulse", "breathe", "off")
        mode = modes[v["mode"]] if v["mode"] < len(modes) else str(v["mode"])
        return (f"colour rgb({v['r']},{v['g']},{v['b']}) {mode} ttl {v['ttl_s']} s, arousal {v['arousal']}, "
                f"synchrony {v['synchrony']}")
    if ftype == f.COMMAND:
        v = r.unpack_command(record)
        if v is None:
            return f"unknown command {record[0]}"
        name = r.CMD_NAMES[v.pop("cmd")]
        if "key_part" in v:
            v["key_part"] = "<8 bytes>"  # never print key material
        return name + " " + " ".join(f"{k}={val}" for k, val in v.items())
    return record.hex()


class MonitorDecoder:
    """Bytes from the badge in, display lines out. keys: dict dev_id -> key, an AnyDevice, or None."""

    def __init__(self, keys: object | None = None, clock: Callable[[], float] = time.time):
        from lifepalette.crypto import open_frame
        from protocol.slip import SlipDecoder
        from protocol.verifier import ANY, Verifier

        self.slip = SlipDecoder()
        self.keys = keys
        self.verifier = Verifier(keys, direction=ANY, opener=open_frame) if keys is not None else None
        self.clock = clock
        self.frames = 0

    def _stamp(self) -> str:
        t = self.clock()
        return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"

    def feed(self, data: bytes) -> list[str]:
        lines = []
        for kind, payload in self.slip.feed(data):
            if kind == "text":
                lines.append(f"{self._stamp()} log   {payload.decode('utf-8', 'replace').rstrip()}")
            else:
                self.frames += 1
                lines.append(f"{self._stamp()} frame {self.describe_frame(payload)}")
        return lines

    def describe_frame(self, data: bytes) -> str:
        from protocol import frame as f

        if len(data) not in (f.FRAME_LEN, f.ADVERT_LEN):
            return f"{len(data)} bytes: not a frame ({data[:8].hex()}...)"
        if self.verifier is None:
            body = data if len(data) == f.FRAME_LEN else data[7:]
            _, ftype, dev_id, ctr = f.parse_header(body)
            name = f.TYPE_NAMES[ftype] if ftype < len(f.TYPE_NAMES) else f"type {ftype}"
            return f"{name} dev {dev_id} #{ctr} (sealed: pass --key, --config or --keys to decode)"
        verdict = self.verifier.verify(data)
        name = verdict.type_name or f"type {verdict.ftype}"
        who = f"group {verdict.dev_id}" if verdict.ftype == f.GROUP_COLOUR else f"dev {verdict.dev_id}"
        if not verdict.ok:
            return f"{name} {who} #{verdict.ctr} REJECTED ({verdict.reason})"
        return f"{name} {who} #{verdict.ctr}: {describe_record(verdict.ftype, verdict.record)}"

    def flush(self) -> list[str]:
        """A last log line without a newline, once the port is closed."""
        return self.feed(b"\n") if self.slip._text else []


def monitor(port: str, baud: int, decoder: MonitorDecoder, out: TextIO | None = None, *,
            max_frames: int | None = None, seconds: float | None = None) -> int:
    """Print the badge's output until Ctrl-C, `max_frames` frames or `seconds`. Ctrl-C is a normal exit (0)."""
    import serial

    from lifepalette.tools.badge import open_serial_checked

    out = out or sys.stdout
    ser = open_serial_checked(port, baud, timeout=0.1)
    deadline = time.monotonic() + seconds if seconds else None
    try:
        while True:
            data = ser.read(ser.in_waiting or 1)
            for line in decoder.feed(data):
                print(line, file=out, flush=True)
            if max_frames is not None and decoder.frames >= max_frames:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    except (OSError, serial.SerialException) as exc:
        raise LifePaletteError(f"lost {port} ({exc}): was the badge unplugged?") from None
    finally:
        ser.close()
    for line in decoder.flush():
        print(line, file=out, flush=True)
    return 0
