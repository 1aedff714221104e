"""The power budget (hardware/power.json) gives >= 8 h on 500 mAh with the LED at the firmware's current cap."""

from __future__ import annotations

import json

from lifepalette.paths import REPO_ROOT
from lifepalette.virtual_badge import firmware_module

POWER = json.loads((REPO_ROOT / "hardware" / "power.json").read_text())


def average_ma(budget: dict) -> float:
    total = 0.0
    for load in budget["loads"]:
        ma = budget[load["ma"]] if isinstance(load["ma"], str) else load["ma"]
        assert 0 <= load["duty"] <= 1, load
        total += ma * load["duty"]
    return total


def test_battery_life_meets_goal():
    hours = POWER["battery_mah"] * POWER["usable_fraction"] / average_ma(POWER)
    assert POWER["battery_mah"] == 500
    assert hours >= POWER["goal_hours"] >= 8, f"{hours:.1f} h"


def test_led_cap_is_the_firmwares_default_and_enforced():
    config = firmware_module("app.config")
    cfg = config.parse('{"dev_id": 1, "key": "' + "00" * 16 + '"}')
    assert cfg["led_budget_ma"] == POWER["led_budget_ma"]
    palette = firmware_module("app.palette")
    pal = palette.Palette(cvd_safe=False, led_count=1, budget_ma=cfg["led_budget_ma"])
    pal.arousal = 255
    pal.quality_ok = True
    pal.hue = 40
    pal._compose(True, False, 0)
    current_ma = sum(pal.base) * 20 / 255
    assert 0 < current_ma <= POWER["led_budget_ma"]


def test_budget_documents_the_big_loads():
    parts = " ".join(load["part"] for load in POWER["loads"])
    for item in ("ESP32", "BLE", "MAX30102", "LIS3DH", "EDA", "NTC", "WS2812"):
        assert item in parts
