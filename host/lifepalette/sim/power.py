"""Battery life derived from the code: the firmware's own figures in, average current and hours out.

Inputs taken from the firmware's source (so a change there changes the figures): the CPU frequency the ESP32 HAL
sets (CPU_HZ), its sleep between wakes (WAKE_MS) and whether it light-sleeps (a machine.lightsleep call), the advert
interval and scan window (hal/esp32/radio.py),
the PPG chip's rate and pulse width (drivers/max30102.py), the LED cap (app/config.py). Measured by running the
badge: the CPU's busy time per simulated second under the MicroPython unix port (scaled by ESP32_FACTOR), the I2C
transactions per second, the PPG LED current the LED loop settled on and the LED's mean output over the scenario
(the palette's real output, per tick). Currents per state are datasheet figures, stated in CURRENTS_MA.

`model(inputs, board)` is pure: hardware/power.json holds the inputs of one measurement and the outputs, and
hardware/power.md is rendered from them; tests/test_hardware_power.py recomputes both.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from lifepalette.paths import FIRMWARE_DIR, micropython_binary, micropython_path

BATTERY_MAH = 500
USABLE = 0.85
GOAL_HOURS = 8.0
ESP32_FACTOR = 40.0  # Python on a 160 MHz Xtensa vs this x86-64 host: 30-100x, 40x at 160 MHz (scaled by MHz)
I2C_MS = 0.25  # one I2C transaction at 400 kHz, with MicroPython's call overhead
BOARDS = ("esp32-devkitc", "custom")
CURRENTS_MA = {
    # ESP32 (datasheet modem-sleep figures): cores running / waiting in FreeRTOS idle (WAITI, clocks gated);
    # MicroPython does not enable automatic light sleep, so the wait is clock gating unless the firmware calls
    # machine.lightsleep (it does not: hal/esp32/board.py says why)
    "cpu_busy": {80: 25.0, 160: 40.0, 240: 50.0},
    "cpu_wait": {80: 13.0, 160: 20.0, 240: 25.0},
    "cpu_light_sleep": 0.8,
    "ble_adv_event_mC": 0.16,  # one ADV_IND event on 3 channels: ~1.2 ms of TX/RX turnarounds at ~130 mA
    "ble_rx": 95.0,  # passive scan window
    "ble_base": 1.0,  # controller and RF clock between events
    "max3010x_supply": 0.6,
    "lis3dh_25hz": 0.011,
    "eda_front_end": 0.11,  # MCP6001 100 uA + excitation divider 5 uA + skin <= 3.3 uA
    "ntc_divider": 0.165,  # 3.3 V over 10 k + 10 k while capturing
    "battery_divider": 0.021,
    "ws2812_quiescent": 0.7,
    "ws2812_per_count": 20.0 / 255,  # mA per colour count per channel (app/palette.py's own figure)
    "ap2112k_quiescent": 0.055,
    "ams1117_quiescent": 5.0,  # the DevKitC's regulator
    "devkit_power_led": 2.0,  # red power LED through 1 k from 3.3 V
    "cp2102_suspend": 0.1,
}
PPG_PULSE_US = 411  # drivers/max30102.py SPO2_CONFIG PW = 3
# time.sleep_ms on the esp32 port blocks in FreeRTOS only while a whole FreeRTOS tick remains and busy-waits the
# rest (mp_hal_delay_ms): a sleep of <= one tick is all spin, a longer one spins ~half a tick on average at its end
FREERTOS_TICK_MS = 10


def _const(path: Path, name: str) -> int:
    m = re.search(rf"^{name} = const\((\w+)\)", path.read_text(), re.M)
    if m is None:
        raise RuntimeError(f"{name} not found in {path}")
    return int(m.group(1).replace("_", ""), 0)


def firmware_figures() -> dict[str, Any]:
    """The firmware's own power-relevant settings, read from its source."""
    board = FIRMWARE_DIR / "hal" / "esp32" / "board.py"
    radio = FIRMWARE_DIR / "hal" / "esp32" / "radio.py"
    from lifepalette.virtual_badge import firmware_module

    cfg = firmware_module("app.config").parse('{"dev_id": 1, "key": "' + "00" * 16 + '"}')
    return {
        "cpu_mhz": _const(board, "CPU_HZ") // 1_000_000,
        "wake_ms": _const(board, "WAKE_MS"),
        "light_sleep": re.search(r"^[^#\n]*machine\.lightsleep\(", board.read_text(), re.M) is not None,
        "adv_interval_ms": _const(radio, "_ADV_INTERVAL_US") / 1000,
        "scan_window_ms": _const(radio, "_SCAN_WINDOW_US") / 1000,
        "scan_interval_ms": _const(radio, "_SCAN_INTERVAL_US") / 1000,
        "ppg_hz": _const(FIRMWARE_DIR / "drivers" / "max30102.py", "CHIP_HZ"),
        "ppg_pulse_us": PPG_PULSE_US,
        "led_budget_ma": cfg["led_budget_ma"],
        "led_count": cfg["led_count"],
        "tick_hz": cfg["rates"]["ppg"],
    }


RUN = """
import sys
from app.badge import Badge
from app import pipeline, storage
from hal.unix.board import UnixHal
import json
cfg = json.loads(open(sys.argv[2]).read())
from app import config
cfg = config.parse(json.dumps(cfg))
hal = UnixHal(cfg["rates"], samples=sys.argv[1], tick_us=0, presses=((0, 3200),), cfg=cfg, chips=sys.argv[3] == "1")
badge = Badge(hal, cfg, hal.sensors(), pipeline.Features(cfg["rates"]), storage.Ring(600))
hal.status = lambda b: None
badge.run()
p = badge.sampler.sensors.ppg
print("POWER", hal.ticks, hal.led_sum, hal.chips.transactions(), p.code)
"""


def measure(config: dict[str, Any], scenario: str = "calm", seconds: int = 120, site: str = "wrist",
            seed: int = 7) -> dict[str, Any]:
    """Run the badge (chip path) for `seconds` with consent from the start; CPU seconds of the interpreter per
    simulated second (a short run is subtracted: boot and compile are not the steady state)."""
    from lifepalette.sim.silicon import Silicon, chip_stream
    from lifepalette.virtual_badge import GREEN_PPG_BOARDS, compile_firmware, firmware_module

    silicon = Silicon(seed, site=site, led="green" if config.get("board") in GREEN_PPG_BOARDS else "ir")
    rates = config.get("rates") or {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
    cfg = firmware_module("app.config").parse(json.dumps(config))
    mpy_dir = compile_firmware()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config.json").write_text(json.dumps(config))
        (root / "run.py").write_text(RUN)
        # CPU on the stand-in path (the chip models' Python is simulation, not badge work: I2C is costed per
        # transaction instead); I2C count and the PPG LED current on the chip path
        for n, chips in ((10, False), (seconds, False), (seconds, True)):
            data, _ = chip_stream(silicon, scenario, n, seed, rates, driver_cfg=None if chips else cfg)
            (root / "samples.bin").write_bytes(data)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = subprocess.run([micropython_binary(), "-X", "heapsize=256K", "run.py", "samples.bin",
                                   "config.json", "1" if chips else "0"], cwd=root, capture_output=True,
                                  text=True, timeout=600, env={"MICROPYPATH": f"{mpy_dir}:{micropython_path()}"})
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if proc.returncode:
                raise RuntimeError(proc.stdout[-1000:] + proc.stderr[-1000:])
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("POWER")][-1].split()
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            results.append((n, cpu, *(int(x) for x in line[1:])))
    (n0, cpu0, *_), (n1, cpu1, ticks, led_sum, _, _), (_, _, _, _, i2c, code) = results
    return {
        "scenario": scenario, "site": site, "seconds": n1,
        "unix_cpu_ms_per_s": round(1000 * max(cpu1 - cpu0, 1e-6) / (n1 - n0), 3),
        "i2c_per_s": round(i2c / n1, 1),
        "led_mean_counts": round(led_sum / max(ticks, 1), 2),  # r+g+b per tick, one LED
        "ppg_led_code": code,
        "tick_hz": rates["ppg"],
    }


def model(inputs: dict[str, Any], board: str, led_at_cap: bool = False) -> dict[str, Any]:
    """Average current per load (mA) and hours on the 500 mAh cell."""
    if board not in BOARDS:
        raise ValueError(f"unknown board {board} (known: {', '.join(BOARDS)})")
    fw = inputs["firmware"]
    m = inputs["measured"]
    c = CURRENTS_MA
    mhz = fw["cpu_mhz"]
    python_ms = m["unix_cpu_ms_per_s"] * ESP32_FACTOR * 160 / mhz
    work = min(1.0, (python_ms + m["i2c_per_s"] * I2C_MS) / 1000.0)
    # between wakes the firmware sleeps: FreeRTOS idle (clock-gated cores) except the busy tail of each sleep; a
    # sleep of one FreeRTOS tick or less (or none: a spin on machine.idle()) keeps the cores busy throughout
    wake_ms = fw["wake_ms"]
    tail_ms = FREERTOS_TICK_MS / 2 * 1000 / wake_ms if wake_ms > FREERTOS_TICK_MS else 1000.0
    busy = min(1.0, work + (1 - work) * tail_ms / 1000)
    waiting = c["cpu_light_sleep"] if fw["light_sleep"] else c["cpu_wait"][mhz]
    cpu = busy * c["cpu_busy"][mhz] + (1 - busy) * waiting
    adv_per_s = 1000.0 / fw["adv_interval_ms"]
    radio = (adv_per_s * c["ble_adv_event_mC"] + fw["scan_window_ms"] / fw["scan_interval_ms"] * c["ble_rx"]
             + c["ble_base"])
    led_ma = m["ppg_led_code"] * 0.2
    ppg = c["max3010x_supply"] + led_ma * fw["ppg_pulse_us"] * fw["ppg_hz"] / 1e6
    other = c["lis3dh_25hz"] + c["eda_front_end"] + c["ntc_divider"] + c["battery_divider"]
    colour = (fw["led_budget_ma"] if led_at_cap else
              min(fw["led_budget_ma"], m["led_mean_counts"] * c["ws2812_per_count"] * fw["led_count"]))
    led = c["ws2812_quiescent"] * fw["led_count"] + colour
    if board == "custom":
        regulator = c["ap2112k_quiescent"]
    else:
        regulator = c["ams1117_quiescent"] + c["devkit_power_led"] + c["cp2102_suspend"]
    loads = {"cpu": cpu, "radio": radio, "ppg": ppg, "other_sensors": other, "led": led, "regulator": regulator}
    total = sum(loads.values())
    out = {
        "board": board, "led": "at the cap" if led_at_cap else "scenario",
        "average_ma": round(total, 2), "hours": round(BATTERY_MAH * USABLE / total, 2),
        "battery_mah": BATTERY_MAH, "usable_fraction": USABLE,
        "loads_ma": {k: round(v, 3) for k, v in loads.items()},
        "cpu_busy_fraction": round(busy, 4), "cpu_mhz": mhz,
    }
    if board == "esp32-devkitc":
        out["note"] = ("the DevKitC's AMS1117 needs ~4.4 V in (1.1 V dropout): from a 3.7 V LiPo it browns out, so "
                       "these hours assume a 5 V supply (USB); power a badge through the AP2112K instead")
    return out


def report(inputs: dict[str, Any], board: str) -> dict[str, Any]:
    """The command's JSON: the scenario's figures, the figures at the LED cap, and the inputs."""
    out = model(inputs, board)
    out["at_led_cap"] = {k: v for k, v in model(inputs, board, led_at_cap=True).items()
                         if k in ("average_ma", "hours", "loads_ma")}
    out["inputs"] = {"firmware": inputs["firmware"], "measured": inputs["measured"], "esp32_factor": ESP32_FACTOR,
                     "i2c_ms": I2C_MS}
    return out


def render_md(doc: dict[str, Any]) -> str:
    """hardware/power.md from hardware/power.json."""
    fw = doc["inputs"]["firmware"]
    m = doc["inputs"]["measured"]
    lines = [
        "# Power budget",
        "",
        "Generated by `lifepalette power --write` from the model in `host/lifepalette/sim/power.py` (the numbers are in",
        "`power.json`; `tests/test_hardware_power.py` recomputes both from the firmware's own figures). Do not edit.",
        "",
        f"Inputs from the firmware: CPU at {fw['cpu_mhz']} MHz (`machine.freq` in hal/esp32/board.py), "
        f"`time.sleep_ms({fw['wake_ms']})` between wakes",
        f"({'light sleep' if fw['light_sleep'] else 'no light sleep: the BLE stack runs throughout'}; "
        f"each sleep busy-waits its last FreeRTOS tick, ~{FREERTOS_TICK_MS // 2} ms on average),",
        f"adverts every {fw['adv_interval_ms']:g} ms, a {fw['scan_window_ms']:g} ms scan every "
        f"{fw['scan_interval_ms']:g} ms, PPG at {fw['ppg_hz']} Hz with {fw['ppg_pulse_us']} us LED pulses, LED cap "
        f"{fw['led_budget_ma']} mA.",
        f"Measured ({m['scenario']}, {m['site']}, {m['seconds']} s of badge time; CPU on the stand-in path, I2C on the chip path): "
        f"{m['unix_cpu_ms_per_s']} ms of CPU per second under the",
        f"unix port (x{doc['inputs']['esp32_factor']:g} for an ESP32 at 160 MHz, scaled by clock), "
        f"{m['i2c_per_s']} I2C transactions/s at {doc['inputs']['i2c_ms']} ms,",
        f"PPG LED settled at {m['ppg_led_code'] * 0.2:.1f} mA, LED mean {m['led_mean_counts']} colour counts per tick.",
        "",
        "| board | LED | CPU | radio | PPG | other sensors | LED | regulator | total mA | hours on 500 mAh |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["boards"]:
        for row in (r, dict(r["at_led_cap"], led="at the cap")):
            ld = row["loads_ma"]
            lines.append(f"| {r['board']} | {row['led']} | {ld['cpu']:.1f} | {ld['radio']:.1f} | {ld['ppg']:.2f} | "
                         f"{ld['other_sensors']:.2f} | {ld['led']:.1f} | {ld['regulator']:.2f} | "
                         f"{row['average_ma']:.1f} | {row['hours']:.1f} |")
    lines += ["", f"Usable capacity {USABLE:.0%} of {BATTERY_MAH} mAh; goal >= {GOAL_HOURS:g} h at the LED cap on the "
              "custom board (ESP32-WROOM + AP2112K, hardware/bom.md).", ""]
    for r in doc["boards"]:
        if "note" in r:
            lines.append(f"{r['board']}: {r['note']}.")
    lines += ["", "CPU busy fraction: " + ", ".join(f"{r['board']} {r['cpu_busy_fraction']:.1%}" for r in doc["boards"])
              + ". Without consent the sensors are shut down and the figures drop by the PPG and sensor columns.", ""]
    return "\n".join(lines)


def document(inputs: dict[str, Any]) -> dict[str, Any]:
    """hardware/power.json: inputs plus each board's report."""
    return {"inputs": {"firmware": inputs["firmware"], "measured": inputs["measured"],
                       "esp32_factor": ESP32_FACTOR, "i2c_ms": I2C_MS},
            "boards": [{k: v for k, v in report(inputs, b).items() if k != "inputs"} for b in BOARDS]}
