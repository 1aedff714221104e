# The chip each board carries (os.uname().machine names the chip the firmware runs on; app.start refuses a board
# for another chip: its pins could be the other chip's SPI-flash lines).
CHIPS = {"esp32-devkitc": "esp32", "esp32-s3-devkitc": "esp32s3", "esp32-c3-supermini": "esp32c3"}


def board_for(chip):
    """A board of this chip (for the safe-mode LED when the config is missing or wrong), or None."""
    for board in CHIPS:
        if CHIPS[board] == chip:
            return board
    return None


# Pin maps per board: the same numbers as hardware/boards/<board>.json (a test checks they agree, and checks the
# JSON against the chip rules: EDA on ADC1, no outputs on input-only pins, no strapping pins, no pin twice).
PINS = {
    "esp32-devkitc": {
        "i2c_sda": 21,
        "i2c_scl": 22,
        "ppg_int": 35,
        "acc_int": 32,
        "eda_adc": 36,
        "ntc_adc": 39,
        "batt_adc": 34,
        "eda_en": 25,
        "ntc_en": 26,
        "button": 27,
        "led": 13,
        "charging": 33,
    },
    "esp32-s3-devkitc": {
        "i2c_sda": 8,
        "i2c_scl": 9,
        "ppg_int": 10,
        "acc_int": 11,
        "eda_adc": 4,
        "ntc_adc": 5,
        "batt_adc": 6,
        "eda_en": 12,
        "ntc_en": 13,
        "button": 14,
        "led": 21,
        "charging": 7,
    },
    "esp32-c3-supermini": {  # no ppg_int/acc_int: both FIFOs are polled
        "i2c_sda": 5,
        "i2c_scl": 6,
        "eda_adc": 3,
        "ntc_adc": 4,
        "batt_adc": 0,
        "eda_en": 10,
        "ntc_en": 21,
        "button": 1,
        "led": 7,
        "charging": 20,
    },
}
