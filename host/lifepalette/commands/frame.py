"""`lifepalette frame`: seal, open and inspect Life Palette v1 frames (protocol/PROTOCOL.md).

Output is one JSON object per frame with the raw wire values, so it can be piped into jq or compared in tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any

from lifepalette.errors import UsageError
from protocol.frame import COMPANY_ID
from protocol.frame import TYPE_NAMES as TYPE_CHOICES


def _uint(limit: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if not 0 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{what} must be 0..{limit}, got {value}")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "frame",
        help="seal, open and inspect sealed 24-byte frames and 31-byte adverts",
        description="Work with Life Palette wire-protocol v1 frames (AES-128-CCM, see protocol/PROTOCOL.md).",
    )
    sub = p.add_subparsers(dest="frame_command", metavar="<action>", parser_class=type(p))
    p.set_defaults(func=lambda args: _help(p))

    s = sub.add_parser("seal", help="seal a record into a frame and print it as hex",
                       description="Seal one record. Fields not given are n/a for physiology and 0 otherwise. "
                       "Group colour and command frames are sealed in the hub-to-badge direction.")
    s.add_argument("--key", required=True, help="16-byte key as 32 hex digits (device key, or group key for "
                   "group_colour)")
    s.add_argument("--dev", required=True, type=_uint(0xFFFF, "--dev"), help="device id (group id for group_colour)")
    s.add_argument("--ctr", required=True, type=_uint(0xFFFFFFFF, "--ctr"), help="frame counter (u32)")
    s.add_argument("--type", required=True, choices=TYPE_CHOICES, help="frame type")
    s.add_argument("--field", action="append", default=[], metavar="NAME=VALUE",
                   help="record field, repeatable (integers; 0x hex allowed; command: cmd=colour|time|backlog_ack|"
                   "consent_prompt|group_key or its number; key_part=16 hex digits)")
    s.add_argument("--advert", action="store_true", help="print the 31-byte BLE advert instead of the 24-byte frame")
    s.add_argument("--company", type=_uint(0xFFFF, "--company"), default=COMPANY_ID,
                   help="company id in the advert (default 0xFFFF)")
    s.set_defaults(func=run_seal)

    o = sub.add_parser("open", help="verify and decrypt frames, one JSON object per line",
                       description="Verify frames in order with one verifier (so a repeated counter is a replay or "
                       "duplicate) and print {\"dev_id\", \"ctr\", \"type\", \"record\"} or {\"rejected\": reason}. "
                       "Frames come from the arguments, or hex lines on stdin. Exit 0 if all opened, 1 if any was "
                       "rejected, 2 for usage errors.")
    keys = o.add_mutually_exclusive_group(required=True)
    keys.add_argument("--key", help="one 16-byte key (32 hex digits) for every device")
    keys.add_argument("--keys", metavar="FILE", help='JSON object {"<dev_id>": "<key hex>"}')
    o.add_argument("--company", type=_uint(0xFFFF, "--company"), default=COMPANY_ID,
                   help="company id expected in adverts (default 0xFFFF)")
    o.add_argument("frames", nargs="*", metavar="HEX", help="24-byte frames or 31-byte adverts (spaces, colons "
                   "and 0x tolerated); read from stdin, one per line, if none given")
    o.set_defaults(func=run_open)

    i = sub.add_parser("inspect", help="show a frame's clear header without a key",
                       description="Print the clear header of frames or adverts (version, sealed bit, type, device, "
                       "counter) as JSON; nothing is verified.")
    i.add_argument("frames", nargs="+", metavar="HEX")
    i.set_defaults(func=run_inspect)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def parse_hex(text: str, what: str = "frame") -> bytes:
    """Bytes from hex that may contain spaces, colons, or 0x prefixes (per byte or in front)."""
    cleaned = text.strip().lower().replace(":", " ").replace(",", " ")
    parts = [p[2:] if p.startswith("0x") else p for p in cleaned.split()]
    digits = "".join(parts)
    try:
        return bytes.fromhex(digits)
    except ValueError:
        shown = text.strip()
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise UsageError(f"{what} is not hex: {shown!r}") from None


def _key(text: str) -> bytes:
    from protocol.keys import parse_key_hex

    try:
        return parse_key_hex(text)
    except ValueError as exc:
        raise UsageError(f"--key: {exc}") from None


def _field_value(name: str, size: int, text: str, ftype: int) -> Any:
    from protocol import records

    if size == 8:
        value = parse_hex(text, name)
        if len(value) != 8:
            raise UsageError(f"field {name} must be 8 bytes (16 hex digits)")
        return value
    if name == "cmd" and text in records.CMD_NAMES:
        return records.CMD_NAMES.index(text)
    try:
        value = int(text, 0)
    except ValueError:
        raise UsageError(f"field {name} must be an integer, got {text!r}") from None
    if not 0 <= value < 1 << (8 * size):
        raise UsageError(f"field {name} out of range: {value} (0..{(1 << (8 * size)) - 1})")
    return value


def _record_values(ftype: int, field_args: list[str]) -> dict[str, Any]:
    from protocol import records

    pairs = []
    for item in field_args:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--field wants NAME=VALUE, got {item!r}")
        pairs.append((name.strip(), text.strip()))
    layout = records.layout_for(ftype)
    if ftype == 3:  # the command byte picks the layout
        cmd_text = dict(pairs).get("cmd")
        if cmd_text is None:
            raise UsageError("command frames need --field cmd=colour|time|backlog_ack|consent_prompt|group_key")
        cmd = _field_value("cmd", 1, cmd_text, ftype)
        layout = records.layout_for(3, cmd)
        if layout is None:
            raise UsageError(f"unknown command {cmd_text!r}")
    sizes = {name: size for name, _off, size in layout}
    values: dict[str, Any] = {}
    for name, text in pairs:
        if name not in sizes:
            raise UsageError(f"unknown field {name!r} for {TYPE_CHOICES[ftype]} (fields: {', '.join(sizes)})")
        values[name] = _field_value(name, sizes[name], text, ftype)
    return values


def run_seal(args: argparse.Namespace) -> int:
    from lifepalette import crypto
    from protocol import frame, records

    key = _key(args.key)
    ftype = TYPE_CHOICES.index(args.type)
    values = _record_values(ftype, args.field)
    try:
        record = records.pack_record(ftype, values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    sealed = crypto.seal(key, ftype, args.dev, args.ctr, record, frame.direction_of(ftype))
    print((frame.advert(sealed, args.company) if args.advert else sealed).hex())
    return 0


class _OneKey:
    """--key: the same key for every dev_id (the verifier only calls .get)."""

    def __init__(self, key: bytes):
        self.key = key

    def get(self, dev_id: int) -> bytes:
        return self.key


def load_keys_file(path: str) -> dict[int, bytes]:
    from protocol.keys import parse_key_hex

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"--keys: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--keys: cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--keys: {path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise UsageError(f'--keys: {path} must hold a JSON object {{"<dev_id>": "<key hex>"}}')
    keys: dict[int, bytes] = {}
    for dev_text, key_text in data.items():
        try:
            dev_id = int(dev_text, 10)
        except ValueError:
            raise UsageError(f"--keys: device id {dev_text!r} is not a decimal integer") from None
        if not 0 <= dev_id <= 0xFFFF:
            raise UsageError(f"--keys: device id {dev_id} out of range 0..65535")
        if not isinstance(key_text, str):
            raise UsageError(f"--keys: key for device {dev_id} must be a hex string")
        try:
            keys[dev_id] = parse_key_hex(key_text)
        except ValueError as exc:
            raise UsageError(f"--keys: device {dev_id}: {exc}") from None
    return keys


def _json_record(ftype: int, record: bytes) -> dict[str, Any]:
    from protocol import records

    fields = records.unpack_record(ftype, record) or {}
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()}


def _frames_from(args: argparse.Namespace) -> Iterator[bytes]:
    if args.frames:
        parsed = [parse_hex(text) for text in args.frames]  # all checked before any output
        yield from parsed
        return
    for line in sys.stdin:
        if line.strip() and not line.lstrip().startswith("#"):
            yield parse_hex(line)


def run_open(args: argparse.Namespace) -> int:
    from lifepalette.crypto import open_frame
    from protocol import frame, verifier

    keys = _OneKey(_key(args.key)) if args.key else load_keys_file(args.keys)
    v = verifier.Verifier(keys, direction=verifier.ANY, company=args.company, opener=open_frame)
    any_rejected = False
    for data in _frames_from(args):
        verdict = v.verify(data)
        if verdict.ok:
            out = {"dev_id": verdict.dev_id, "ctr": verdict.ctr, "type": frame.TYPE_NAMES[verdict.ftype],
                   "record": _json_record(verdict.ftype, verdict.record)}
        else:
            any_rejected = True
            out = {"rejected": verdict.reason}
        print(json.dumps(out), flush=not args.frames)
    return 1 if any_rejected else 0


def run_inspect(args: argparse.Namespace) -> int:
    from protocol import frame

    for text in args.frames:
        data = parse_hex(text)
        info: dict[str, Any] = {}
        if len(data) == frame.ADVERT_LEN:
            company = data[5] | (data[6] << 8)
            inner = frame.frame_from_advert(data, company)
            if inner is None:
                raise UsageError("31 bytes but not a Life Palette advert (want 02 01 06 1b ff <company> ...)")
            info["advert"] = True
            info["company"] = company
            data = inner
        elif len(data) != frame.FRAME_LEN:
            raise UsageError(f"a frame is 24 bytes and an advert 31, got {len(data)}")
        hdr, ftype, dev_id, ctr = frame.parse_header(data)
        info.update({
            "hdr": hdr,
            "version": hdr >> 5,
            "sealed": bool(hdr & 0x10),
            "type": frame.TYPE_NAMES[ftype] if ftype < len(frame.TYPE_NAMES) else ftype,
            "dev_id": dev_id,
            "ctr": ctr,
            "ciphertext": data[frame.HEADER_LEN:frame.FRAME_LEN - frame.MIC_LEN].hex(),
            "mic": data[frame.FRAME_LEN - frame.MIC_LEN:].hex(),
        })
        print(json.dumps(info))
    return 0
