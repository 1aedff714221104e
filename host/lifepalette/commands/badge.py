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


SITES = ("wrist", "finger")  # lifepalette.sim.silicon.SITES


def _site(text: str) -> str:
    if text not in SITES:
        raise argparse.ArgumentTypeError(f"unknown site {text!r}; choose wrist or finger")
    return text


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
    r.add_argument("--site", type=_site, default="wrist", metavar="wrist|finger",
                   help="where the badge's PPG sensor is worn, for the simulated optics: wrist (default; weak "
                   "pulse, the LED loop drives ~28 mA) or finger (strong pulse, ~3 mA)")
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
    r.add_argument("--chip", choices=("esp32", "esp32s3", "esp32c3"),
                   help="run as an ESP32 would (boot.py, main.py, the esp32 HAL) on strict stand-ins for this chip's "
                   "machine/bluetooth/neopixel/esp32 modules (default with --fault: the config's board's chip); "
                   "prints the serial log; exit 0 normal operation (also after a reset and recovery), 3 safe "
                   "mode, 4 the REPL was reached")
    r.add_argument("--fault", action="append", default=[], metavar="NAME[@SECONDS]",
                   help="inject a fault (repeatable; see `lifepalette badge faults`), at SECONDS of badge time")
    r.add_argument("--code-in-ram", action="store_true",
                   help="with --chip/--fault: load the firmware's .mpy into the 96K heap, as on a stock MicroPython "
                   "badge (default: code in flash, as the badge image freezes it; env LP_CODE_IN_RAM=1 does the "
                   "same)")
    r.set_defaults(func=run)
    f = sub.add_parser("faults", help="list the faults `badge run --fault` can inject, with the expected outcome",
                       description="One line per fault: NAME<TAB>expected outcome.")
    f.set_defaults(func=faults)


def faults(args: argparse.Namespace) -> int:
    from lifepalette.tools.port_run import fault_lines

    for line in fault_lines():
        print(line)
    return 0


def run_as_chip(args: argparse.Namespace) -> int:
    """`badge run --chip/--fault`: the firmware as an ESP32 runs it, on the strict stand-ins (tools/port_run)."""
    import json
    import sys
    import tempfile

    from lifepalette.tools import port_run

    try:
        config = json.loads(args.config.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read config {args.config}: {exc}") from None
    if not isinstance(config, dict):
        raise UsageError(f"config {args.config} is not a JSON object")
    faults = dict(port_run.parse_fault(spec) for spec in args.fault)
    chip = args.chip
    if chip is None:
        board = config.get("board", "esp32-devkitc")
        if not (port_run.BOARDS_DIR / f"{board}.json").exists():
            raise UsageError(f"config board {board!r} is not an ESP32 board: give --chip esp32|esp32s3|esp32c3")
        chip = port_run.chip_of_config(config)
    with tempfile.TemporaryDirectory(prefix="lp-flash-") as tmp:
        flash = args.state or Path(tmp) / "flash"
        result = port_run.run_port(config, chip, faults, flash, seconds=args.seconds or 20, echo=port_run.main_echo,
                                   code_in_flash=port_run.CODE_IN_FLASH and not args.code_in_ram)
    print(f"outcome: {result.outcome} ({result.boots} boot(s), {len(result.resets)} reset(s))", file=sys.stderr)
    return result.exit_code


def run(args: argparse.Namespace) -> int:
    if args.code_in_ram and not (args.chip or args.fault):
        raise UsageError("--code-in-ram goes with --chip or --fault (the ESP32 path)")
    if args.chip or args.fault:
        return run_as_chip(args)
    from lifepalette.virtual_badge import VirtualBadge, parse_presses, run_badge

    presses = parse_presses(args.press)
    if args.consent:
        presses = sorted([(0, 3200), *presses])
    badge = VirtualBadge(args.config, args.udp, seconds=args.seconds, scenario=args.scenario, seed=args.seed,
                         speed=args.speed, presses=presses, led=args.led, state_dir=args.state, site=args.site)
    _check_scenario(args.scenario)
    if args.udp is None and args.led is None and not args.show:
        raise UsageError("nothing to do: give --udp HOST:PORT (a hub), --led HOST:PORT or --show")
    rc = run_badge(badge, args.show)
    return 0 if rc == 0 else 1


def _check_scenario(name: str) -> None:
    from lifepalette.sim import scenarios

    if name not in scenarios.SCENARIO_NAMES:
        raise UsageError(f"unknown scenario {name!r}; choose one of {', '.join(scenarios.SCENARIO_NAMES)}")
