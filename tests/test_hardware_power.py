"""Battery life derived from the code (lifepalette.sim.power): hardware/power.json and power.md are what the model
gives for the firmware's own figures, the custom board lasts >= 8 h at the LED cap, and `lifepalette power` keeps
its JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys

from lifepalette.paths import REPO_ROOT
from lifepalette.sim import power
from lifepalette.virtual_badge import firmware_module

DOC = json.loads((REPO_ROOT / "hardware" / "power.json").read_text())


def test_power_json_and_md_are_the_models_output_for_the_firmwares_figures():
    assert DOC["inputs"]["firmware"] == power.firmware_figures(), "firmware changed: run lifepalette power --write"
    assert DOC == power.document(DOC["inputs"])
    assert (REPO_ROOT / "hardware" / "power.md").read_text() == power.render_md(DOC)


def test_custom_board_meets_the_goal_at_the_led_cap_and_the_devkit_is_stated():
    boards = {b["board"]: b for b in DOC["boards"]}
    custom = boards["custom"]["at_led_cap"]
    assert custom["hours"] >= power.GOAL_HOURS >= 8, custom
    assert custom["loads_ma"]["led"] >= DOC["inputs"]["firmware"]["led_budget_ma"]
    devkit = boards["esp32-devkitc"]
    assert devkit["at_led_cap"]["average_ma"] > custom["average_ma"] and "browns out" in devkit["note"]
    fw = DOC["inputs"]["firmware"]
    assert fw["cpu_mhz"] == 80 and fw["wake_ms"] > 2 * power.FREERTOS_TICK_MS and fw["light_sleep"] is False


def test_the_old_spin_at_160_mhz_would_not_last_the_day():
    spin = json.loads(json.dumps(DOC["inputs"]))
    spin["firmware"]["cpu_mhz"] = 160
    spin["firmware"]["wake_ms"] = 0  # machine.idle() in a loop: the cores never wait clock-gated
    old = power.model(spin, "esp32-devkitc", led_at_cap=True)
    assert old["loads_ma"]["cpu"] == power.CURRENTS_MA["cpu_busy"][160]
    assert 55 < old["average_ma"] and old["hours"] < 7.5  # the review's 60-75 mA, ~6 h


def test_fresh_measurement_matches_the_recorded_one():
    """The recorded CPU figure is still what the firmware costs. It is ~0.1 s of CPU in all, so one run varies by up to
    2x with the machine's load: the median of three runs as long as the recorded one, held to within a factor of 3
    (a gross change in what the firmware does per second still fails it)."""
    rec = DOC["inputs"]["measured"]
    runs = sorted((power.measure({"dev_id": 1, "key": "00" * 16, "board": "esp32-devkitc"}, seconds=rec["seconds"])
                   for _ in range(3)), key=lambda m: m["unix_cpu_ms_per_s"])
    m = runs[1]
    assert 1 / 3 < m["unix_cpu_ms_per_s"] / rec["unix_cpu_ms_per_s"] < 3.0, (m, rec)
    assert abs(m["i2c_per_s"] - rec["i2c_per_s"]) < 0.1 * rec["i2c_per_s"]
    assert m["ppg_led_code"] == rec["ppg_led_code"]


def test_power_cli_contract(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lifepalette", "power", "--board", "custom", "--seconds", "30"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out["loads_ma"]) == {"cpu", "radio", "ppg", "other_sensors", "led", "regulator"}
    assert out["battery_mah"] == 500 and out["hours"] > 0 and out["average_ma"] > 0
    assert abs(sum(out["loads_ma"].values()) - out["average_ma"]) < 0.02
    assert out["at_led_cap"]["hours"] <= out["hours"]
    bad = subprocess.run([sys.executable, "-m", "lifepalette", "power", "--board", "esp32-c6"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"dev_id": 1, "key": "00" * 16, "led_budget_ma": 6}))
    proc = subprocess.run([sys.executable, "-m", "lifepalette", "power", "--board", "custom", "--config", str(cfg),
                           "--seconds", "30"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and json.loads(proc.stdout)["at_led_cap"]["loads_ma"]["led"] < 7


def test_led_cap_is_the_firmwares_default_and_enforced():
    config = firmware_module("app.config")
    cfg = config.parse('{"dev_id": 1, "key": "' + "00" * 16 + '"}')
    assert cfg["led_budget_ma"] == DOC["inputs"]["firmware"]["led_budget_ma"]
    palette = firmware_module("app.palette")
    pal = palette.Palette(cvd_safe=False, led_count=1, budget_ma=cfg["led_budget_ma"])
    pal.arousal = 255
    pal.quality_ok = True
    pal.hue = 40
    pal._compose(True, False, 0)
    current_ma = sum(pal.base) * 20 / 255
    assert 0 < current_ma <= DOC["inputs"]["firmware"]["led_budget_ma"]


def test_the_busy_tail_of_each_sleep_is_counted():
    """time.sleep_ms on the esp32 port busy-waits the last FreeRTOS tick period (10 ms) of every sleep: sleeping
    10 ms at a time (the previous firmware) is a spin, and each wake of the current firmware costs ~5 ms busy."""
    short = json.loads(json.dumps(DOC["inputs"]))
    short["firmware"]["wake_ms"] = power.FREERTOS_TICK_MS
    spin = power.model(short, "custom", led_at_cap=True)
    assert spin["loads_ma"]["cpu"] == power.CURRENTS_MA["cpu_busy"][80] and spin["cpu_busy_fraction"] == 1.0
    fw = DOC["inputs"]["firmware"]
    now = power.model(DOC["inputs"], "custom", led_at_cap=True)
    tail = 1000 / fw["wake_ms"] * power.FREERTOS_TICK_MS / 2 / 1000
    assert now["cpu_busy_fraction"] >= tail and now["hours"] > spin["hours"]
    assert fw["light_sleep"] is False  # never with the BLE stack running (hal/esp32/board.py says why)
