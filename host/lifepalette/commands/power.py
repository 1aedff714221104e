"""`lifepalette power`: average current and battery hours derived from the firmware (lifepalette.sim.power)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "power", help="battery life from the code: average mA and hours per load",
        description="Run the badge firmware on the simulated chips for a scenario, take the firmware's own figures "
                    "(CPU frequency, sleep between ticks, advert interval, scan window, PPG rate and LED current, "
                    "the palette's LED output) and print a JSON object: average current (mA), hours on the BOM's "
                    "500 mAh cell, current per load, and the same at the LED cap.")
    p.add_argument("--board", required=True, choices=("esp32-devkitc", "custom"),
                   help="esp32-devkitc (its AMS1117 regulator, power LED and USB bridge) or custom (the BOM's "
                        "board: ESP32 module + AP2112K)")
    p.add_argument("--config", metavar="CONFIG.json", help="badge config (LED cap, LED count, rates; default: "
                                                           "the firmware's defaults)")
    p.add_argument("--scenario", default="calm", help="simulated scenario (default calm)")
    p.add_argument("--seconds", type=int, default=120, help="badge seconds to measure (default 120)")
    p.add_argument("--write", action="store_true", help="also regenerate hardware/power.json and power.md")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from lifepalette.errors import UsageError
    from lifepalette.paths import REPO_ROOT
    from lifepalette.sim import power, scenarios
    from lifepalette.virtual_badge import load_config

    if args.seconds < 20:
        raise UsageError("--seconds must be at least 20")
    try:
        scenarios.check_scenario(args.scenario)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.config:
        load_config(Path(args.config))  # a bad config is a one-line usage error
        config = json.loads(Path(args.config).read_text())
    else:
        config = {"dev_id": 1, "key": "00" * 16, "board": "esp32-devkitc"}
    fw = power.firmware_figures()
    if args.config:
        cfg = load_config(Path(args.config))
        fw.update(led_budget_ma=cfg["led_budget_ma"], led_count=cfg["led_count"], tick_hz=cfg["rates"]["ppg"])
    inputs = {"firmware": fw, "measured": power.measure(config, args.scenario, args.seconds)}
    print(json.dumps(power.report(inputs, args.board), indent=2))
    if args.write:
        doc = power.document(inputs)
        hw = REPO_ROOT / "hardware"
        (hw / "power.json").write_text(json.dumps(doc, indent=2) + "\n")
        (hw / "power.md").write_text(power.render_md(doc))
    return 0
