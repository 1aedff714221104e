"""`lifepalette badge run`: a virtual badge (the real firmware under MicroPython) sending frames to a hub over UDP."""

from __future__ import annotations

import argparse
from pathlib import Path

from lifepalette.addresses import split_host_port
from lifepalette.errors import UsageError


def _host_port(text: str) -> str:
    try:
        split_host_port(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--seconds must be > 0")
    return value


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("--speed must be >= 0 (0 = as fast as possible)")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("badge", help="run a virtual badge (the real firmware under MicroPython)",
                              description="Badge tools. `badge run` starts the badge firmware under the MicroPython "
                              "unix port with simulated sensors.")
    sub = p.add_subparsers(dest="badge_command", metavar="<action>", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    r = sub.add_parser(
        "run", help="run one virtual badge",
        description="Run firmware/main.py under `micropython -X heapsize=96K` with the unix HAL. Sensor samples "
        "come from the simulator (--scenario); frames go to the hub as raw 24-byte UDP datagrams; commands and "
        "group colours come back on the same socket. Without consent (hold the button 3 s, or --consent) the "
        "badge sends heartbeat frames only. Run several in parallel for a cove.")
    r.add_argument("--config", required=True, type=Path, help="badge config JSON (written by `lifepalette enroll`)")
    r.add_argument("--udp", type=_host_port, metavar="HOST:PORT", help="the hub's UDP address")
    r.add_argument("--seconds", type=_positive_int, help="badge seconds to run (default: until interrupted)")
    r.add_argument("--scenario", default="calm", help="simulated physiology: calm, dialogue, confrontation, "
                   "healing, ... (default calm)")
    r.add_argument("--seed", type=int, help="simulator seed (default: the badge's dev_id)")
    r.add_argument("--consent", action="store_true", help="hold the button 3 s at start (consent to both scopes)")
    r.add_argument("--press", default="", metavar="SPEC",
                   help="scripted button presses, comma-separated: START:HOLD in seconds (e.g. 20:0.2) or "
                   "GESTURE@START with GESTURE consent|revoke|click|double|pause|resume (e.g. revoke@60)")
    r.add_argument("--speed", type=_speed, default=1.0,
                   help="badge seconds per wall-clock second (default 1 = real time; 0 = as fast as possible)")
    r.add_argument("--show", action="store_true", help="print the LED state (colour, pattern) and status lines")
    r.add_argument("--led", type=_host_port, metavar="HOST:PORT",
                   help="also publish LED state lines as UDP datagrams to HOST:PORT")
    r.add_argument("--state", type=Path, metavar="DIR",
                   help="the badge's flash (config copy, counter, consent revision); default CONFIG.state/ next "
                   "to the config, so the frame counter survives restarts")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lifepalette.virtual_badge import VirtualBadge, parse_presses, run_badge

    presses = parse_presses(args.press)
    if args.consent:
        presses = sorted([(0, 3200), *presses])
    badge = VirtualBadge(args.config, args.udp, seconds=args.seconds, scenario=args.scenario, seed=args.seed,
                         speed=args.speed, presses=presses, led=args.led, state_dir=args.state)
    _check_scenario(args.scenario)
    if args.udp is None and args.led is None and not args.show:
        raise UsageError("nothing to do: give --udp HOST:PORT (a hub), --led HOST:PORT or --show")
    rc = run_badge(badge, args.show)
    return 0 if rc == 0 else 1


def _check_scenario(name: str) -> None:
    from lifepalette.sim import scenarios

    if name not in scenarios.SCENARIO_NAMES:
        raise UsageError(f"unknown scenario {name!r}; choose one of {', '.join(scenarios.SCENARIO_NAMES)}")
