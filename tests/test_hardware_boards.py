"""Board pin maps (hardware/boards/*.json) obey the ESP32 rules in hardware/wiring.md, and the firmware uses the same pins."""

from __future__ import annotations

import json

import pytest
from lifepalette.paths import REPO_ROOT
from lifepalette.virtual_badge import firmware_module

BOARDS_DIR = REPO_ROOT / "hardware" / "boards"
BOARD_FILES = sorted(BOARDS_DIR.glob("*.json"))

# Chip facts from the Espressif datasheets (not from the board files, so a board file cannot vouch for itself).
CHIPS = {
    "esp32": {
        "gpio": set(range(0, 40)) - {20, 24, 28, 29, 30, 31},
        "adc1": {32, 33, 34, 35, 36, 37, 38, 39},
        "input_only": {34, 35, 36, 37, 38, 39},
        "strapping": {0, 2, 5, 12, 15},
        "reserved": {6, 7, 8, 9, 10, 11},  # SPI flash
    },
    "esp32s3": {
        "gpio": set(range(0, 22)) | set(range(26, 49)),
        "adc1": set(range(1, 11)),
        "input_only": set(),
        "strapping": {0, 3, 45, 46},
        "reserved": set(range(26, 33)) | {19, 20},  # SPI flash/PSRAM, USB D-/D+
    },
    "esp32c3": {
        "gpio": set(range(0, 22)),
        "adc1": set(range(0, 5)),  # ADC2 (GPIO 5) is unusable with the radio on
        "input_only": set(),
        "strapping": {2, 8, 9},
        "reserved": set(range(11, 18)) | {18, 19},  # VDD_SPI, SPI flash; USB-Serial/JTAG D-/D+
    },
}
OUTPUT_DIRS = {"out", "io"}


def load(path):
    return json.loads(path.read_text())


def test_the_required_boards_exist():
    names = {load(p)["board"] for p in BOARD_FILES}
    assert {"esp32-devkitc", "esp32-s3-devkitc", "esp32-c3-supermini"} <= names
    assert {load(p)["chip"] for p in BOARD_FILES} == set(CHIPS)  # a board for every chip the firmware knows


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_board_rules(path):
    board = load(path)
    assert board["board"] == path.stem
    chip = CHIPS[board["chip"]]
    pins = board["pins"]
    gpios = [p["gpio"] for p in pins.values()]
    assert len(gpios) == len(set(gpios)), "a GPIO is used twice"
    for name, pin in pins.items():
        g = pin["gpio"]
        assert g in chip["gpio"], f"{name}: GPIO {g} does not exist on {board['chip']}"
        assert g not in chip["reserved"], f"{name}: GPIO {g} is wired to flash/PSRAM/USB"
        assert g not in chip["strapping"], f"{name}: GPIO {g} is a strapping pin"
        if pin["dir"] in OUTPUT_DIRS:
            assert g not in chip["input_only"], f"{name}: output on input-only GPIO {g}"
        if pin["dir"] == "adc":
            assert g in chip["adc1"], f"{name}: analog input must be on ADC1 (ADC2 is unusable with the radio on)"
    assert pins["eda_adc"]["dir"] == "adc" and pins["eda_adc"]["gpio"] in chip["adc1"]
    for bus in ("i2c_sda", "i2c_scl"):
        assert pins[bus]["gpio"] not in chip["input_only"], "I2C needs open-drain output pins"


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_firmware_pin_map_matches_board_file(path):
    board = load(path)
    pins = firmware_module("hal.esp32.pins")
    assert pins.PINS[board["board"]] == {name: pin["gpio"] for name, pin in board["pins"].items()}
    assert pins.CHIPS[board["board"]] == board["chip"]  # the chip app.start_esp32 holds the running one against


def test_rules_catch_a_bad_board(tmp_path):
    """The checks are not vacuous: EDA moved to an ADC2 pin, or an output on GPIO 34, fails them."""
    board = load(BOARDS_DIR / "esp32-devkitc.json")
    board["pins"]["eda_adc"]["gpio"] = 4  # ADC2_CH0
    bad = tmp_path / "esp32-devkitc.json"
    bad.write_text(json.dumps(board))
    with pytest.raises(AssertionError, match="ADC1"):
        test_board_rules(bad)
    board = load(BOARDS_DIR / "esp32-devkitc.json")
    board["pins"]["led"]["gpio"] = 37  # input-only, otherwise unused
    bad.write_text(json.dumps(board))
    with pytest.raises(AssertionError, match="input-only"):
        test_board_rules(bad)
