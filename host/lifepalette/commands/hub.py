"""`lifepalette hub`: run the hub (one asyncio process) until Ctrl-C."""

from __future__ import annotations

import argparse
import sys

from lifepalette.addresses import split_host_port
from lifepalette.errors import UsageError

LOG_LEVELS = ("debug", "info", "warning", "error")


def host_port(text: str) -> tuple[str, int]:
    try:
        return split_host_port(text, default_host="0.0.0.0", allow_port_zero=True)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser("hub", help="run the hub: ingest badges, store, score, send the group colour",
                              description="Run the Life Palette hub: verify frames from badges (BLE, USB serial, "
                                          "UDP), store what consent allows in SQLite, score on a fixed cadence and "
                                          "send the group colour back.")
    p.add_argument("--db", required=True, help="hub database file (created if missing; site key beside it)")
    p.add_argument("--udp", type=host_port, metavar="HOST:PORT", help="listen for virtual badges on UDP")
    p.add_argument("--ble", action="store_true", help="scan and link badges over Bluetooth LE (bleak/BlueZ)")
    p.add_argument("--serial", action="append", default=[], metavar="PORT", help="a badge on USB serial (repeatable)")
    p.add_argument("--http", type=host_port, metavar="HOST:PORT", help="serve the cove wall and operator console")
    p.add_argument("--token-file", metavar="PATH",
                   help="operator console token from a file only its owner can read (chmod 600); or set "
                        "LP_OPERATOR_TOKEN; if neither, a random token is made and printed. At least 16 characters")
    p.add_argument("--token", help=argparse.SUPPRESS)  # refused with a reason: argv is visible to every user in ps
    p.add_argument("--cadence", type=float, default=1.0, metavar="S", help="scoring cadence in seconds (default 1)")
    p.add_argument("--cove", default="cove", help="cove name used on the wall and in OSC/MQTT topics")
    p.add_argument("--osc", metavar="HOST:PORT", help="send the public cove palette and measures by OSC")
    p.add_argument("--osc-rate", type=float, default=2.0, metavar="HZ", help="OSC send rate (default 2 Hz)")
    p.add_argument("--mqtt", metavar="URL", help="publish public aggregates to an MQTT broker (mqtt://host:port)")
    p.add_argument("--lsl", action="store_true",
                   help="stream the released public view over Lab Streaming Layer (LifePalette-<cove>, type Affect)")
    p.add_argument("--lsl-wearers", action="store_true",
                   help="with --lsl: also a feature stream per wearer who consented to physiology (per-session "
                   "pseudonym; ends at once on pause or revocation)")
    p.add_argument("--release-seed", type=int, metavar="N",
                   help="fix the seed of the public numbers' noise so that `lifepalette replay --seed N` releases "
                        "the same timeline again (research and replay checks only: anyone who knows N can take the "
                        "noise off the public numbers; never on a cove with an audience)")
    p.add_argument("--log-level", type=str.lower, choices=LOG_LEVELS, default="info",
                   help="the hub's own log lines on stderr (the journal under systemd) from this level up "
                        "(default info: sessions resumed or closed, badges that failed to link); other libraries "
                        "log warnings and errors only")
    p.add_argument("--advertise", action="store_true",
                   help="advertise the group colour through BlueZ (LEAdvertisingManager1, needs a Pi/BlueZ)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    if args.cadence <= 0:
        raise UsageError("--cadence must be positive")
    if not (args.udp or args.ble or args.serial):
        raise UsageError("nothing to listen on: give --udp HOST:PORT, --ble and/or --serial PORT")
    if args.release_seed is not None and args.release_seed < 0:
        raise UsageError("--release-seed must be a whole number >= 0")
    if args.lsl_wearers and not args.lsl:
        raise UsageError("--lsl-wearers needs --lsl")
    if not 0 < args.osc_rate <= 1000:
        raise UsageError("--osc-rate must be between 0 and 1000 Hz")
    if args.osc:
        from lifepalette.outputs.osc import parse_target

        parse_target(args.osc)
    if args.mqtt:
        from lifepalette.outputs.mqtt import parse_broker_url

        parse_broker_url(args.mqtt)
    args.token_source = operator_token(args)
    log_to_stderr(args.log_level)
    return asyncio.run(_serve(args))


def log_to_stderr(level: str) -> None:
    """The hub's loggers (lifepalette.*) at `level`, everything else at WARNING, one line each on stderr.

    No timestamp: the journal stamps every line, and by hand the order is what matters. Without this, Python's
    last-resort handler printed warnings only, bare, and dropped the hub's information lines."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # aiohttp's access log (every wall poll) and bleak's chatter stay out
    logging.getLogger("lifepalette").setLevel(level.upper())


def operator_token(args: argparse.Namespace):
    """The operator token from --token-file or LP_OPERATOR_TOKEN (checked), or None for a random printed one."""
    import os

    from lifepalette.web.auth import TOKEN_ENV, TokenSource, check_token

    if args.token is not None:
        raise UsageError(f"--token puts the secret in the process list (ps): use --token-file PATH or {TOKEN_ENV}")
    if args.token_file:
        return TokenSource(path=args.token_file)
    from_env = os.environ.get(TOKEN_ENV)
    if from_env is not None:
        return TokenSource(check_token(from_env, TOKEN_ENV))
    return None


async def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from lifepalette.hub import Hub

    advertiser = None
    if args.advertise:
        from lifepalette.hub.advertiser import BlueZAdvertiser

        advertiser = BlueZAdvertiser()
    hub = Hub(args.db, udp=args.udp, ble=args.ble, serial=tuple(args.serial), cadence_s=args.cadence,
              advertiser=advertiser, release_seed=args.release_seed)
    if args.release_seed is not None:
        print(f"warning: --release-seed {args.release_seed}: the public numbers' noise is reproducible by anyone "
              "who knows the seed; use it for research and replay checks only", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    outputs: list = []
    try:
        for line in await hub.start():
            print(f"listening: {line}", flush=True)
        print(f"database: {args.db} ({len(hub.keys)} enrolled badges)", flush=True)
        _print_upgrade_notes(hub)
        if args.http:
            from lifepalette.web import serve_web

            runner = await serve_web(hub, args.http[0], args.http[1], args.token_source, cove=args.cove)
        if args.osc or args.mqtt or args.lsl:
            from lifepalette.outputs import start_outputs

            outputs = await start_outputs(hub, osc=args.osc, mqtt=args.mqtt, cove=args.cove,
                                          osc_rate_hz=args.osc_rate, lsl=args.lsl, lsl_wearers=args.lsl_wearers,
                                          prog="lifepalette hub")
        await stop.wait()
    finally:
        if outputs:
            from lifepalette.outputs import stop_outputs

            await stop_outputs(outputs)
        if runner is not None:
            await runner.cleanup()
        await hub.stop()
    state_line = f"stored {hub.store.frames_committed} frames; rejected {sum(hub.rejections.values())}"
    print(state_line, flush=True)
    return 0


def _print_upgrade_notes(hub) -> None:
    """What opening the database did on its own: a migration, erasures carried out from the journal."""
    from lifepalette.hub.schema import migration_note

    note = migration_note(hub.store.path, hub.store.schema_before)
    if note:
        print(f"database: {note}", flush=True)
    for receipt in hub.store.replayed:
        print(f"database: carried out a journaled erasure (badge {receipt.dev_id}, {receipt.rows} rows)", flush=True)
