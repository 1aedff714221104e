"""`lifepalette monitor`: a badge's log and its frames, verified and decoded, live on the terminal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "monitor",
        help="show a badge's log and decoded frames from its USB serial",
        description="Read the badge's USB serial: log lines as they come, and each SLIP frame verified (MIC, "
        "counter) and decoded: features, consent, battery, quality, colour. Without keys frames show their "
        "header only. Ctrl-C exits.",
    )
    p.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--key", help="the badge's device key, 32 hex digits (used for any dev_id)")
    keys.add_argument("--config", type=Path, help="badge config JSON from `lifepalette enroll` (device + group key)")
    keys.add_argument("--keys", type=Path,
                      help='JSON: a badge config, a list of them, or {"dev_id": "hex key", ...}')
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.add_argument("--frames", type=int, default=None, help="exit after this many frames")
    p.add_argument("--seconds", type=float, default=None, help="exit after this many seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 0  # Ctrl-C while starting up is still a clean exit


def _run(args: argparse.Namespace) -> int:
    from lifepalette.errors import UsageError
    from lifepalette.tools.monitor import AnyDevice, MonitorDecoder, keys_from_config, load_keys, monitor, parse_key

    keys: object | None = None
    if args.key:
        keys = AnyDevice(parse_key(args.key, "--key"))
    elif args.config:
        try:
            config = json.loads(args.config.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"{args.config}: cannot read the badge config ({exc})") from None
        if not isinstance(config, dict):
            raise UsageError(f"{args.config}: not a badge config")
        keys = keys_from_config(config, str(args.config))
    elif args.keys:
        keys = load_keys(args.keys)
    return monitor(args.port, args.baud, MonitorDecoder(keys), max_frames=args.frames, seconds=args.seconds)
