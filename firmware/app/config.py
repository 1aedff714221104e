# Badge configuration (config.json at the badge's root, written by `lifepalette enroll` and mpremote):
#   {"dev_id": 258, "key": "<32 hex>", "group_id": 1, "group_key": "<32 hex>", "board": "esp32-devkitc",
#    "company_id": 65535, "rates": {"ppg": 64, "eda": 16, "acc": 16, "temp": 1},
#    optional: "cvd_safe": false, "led_count": 1, "led_budget_ma": 12,
#    "eda_cal": [offset_uv, gain_ppm], "ntc_offset_c": 0.0}
# eda_cal corrects the EDA ADC (V = (read_uv - offset_uv) * 10**6 / gain_ppm; offset within +-100 mV, gain within
# +-20 %), ntc_offset_c is added to the skin temperature (within +-5 C); both come from `lifepalette enroll`.
# parse() validates everything and returns a normalised dict; any problem raises ConfigError with a message a
# wearer's helper can act on. A badge whose config does not parse runs in safe mode and never captures.
# Runs on MicroPython and CPython (the host launcher validates configs with this same code).
import binascii
import json

from app import storage

BOARDS = ("esp32-devkitc", "esp32-s3-devkitc", "esp32-c3-supermini", "virtual")
DEFAULT_RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
# (min, max) per stream; every stream is sampled on the PPG timer, so none may be faster than PPG.
RATE_LIMITS = {"ppg": (25, 100), "eda": (1, 64), "acc": (1, 64), "temp": (1, 4)}


class ConfigError(Exception):
    pass


def _int(obj, name, lo, hi, default=None):
    if name not in obj:
        if default is None:
            raise ConfigError("missing " + name)
        return default
    value = obj[name]
    if type(value) is not int or value < lo or value > hi:
        raise ConfigError(name + " must be an integer in " + str(lo) + ".." + str(hi))
    return value


def _key(obj, name, required):
    if name not in obj or obj[name] is None:
        if required:
            raise ConfigError("missing " + name)
        return None
    value = obj[name]
    if type(value) is not str or len(value) != 32:
        raise ConfigError(name + " must be 32 hex digits (16 bytes)")
    try:
        return binascii.unhexlify(value)
    except ValueError:
        raise ConfigError(name + " must be 32 hex digits (16 bytes)") from None


def _cals(obj):
    """(eda_cal or None, ntc offset in 0.01 degC)."""
    c = obj.get("ntc_offset_c", 0)
    if type(c) not in (int, float) or not -5 <= c <= 5:
        raise ConfigError("ntc_offset_c must be a number of degC in -5..5")
    cal = obj.get("eda_cal")
    if cal is None:
        return None, int(round(c * 100))
    if (type(cal) is not list or len(cal) != 2 or type(cal[0]) is not int or type(cal[1]) is not int
            or not -100000 <= cal[0] <= 100000 or not 800000 <= cal[1] <= 1200000):
        raise ConfigError("eda_cal must be [offset_uv, gain_ppm] with offset in -100000..100000 and gain in "
                          "800000..1200000")
    return (cal[0], cal[1]), int(round(c * 100))


def _rates(obj):
    given = obj.get("rates", {})
    if type(given) is not dict:
        raise ConfigError("rates must be an object")
    rates = {}
    for name in DEFAULT_RATES:
        lo, hi = RATE_LIMITS[name]
        rates[name] = _int(given, name, lo, hi, DEFAULT_RATES[name])
    for name in given:
        if name not in DEFAULT_RATES:
            raise ConfigError("unknown rate " + str(name))
    for name in rates:
        if rates[name] > rates["ppg"]:
            raise ConfigError("rate " + name + " exceeds the ppg rate")
    return rates


def parse(text):
    """Validated config dict from JSON text; raises ConfigError."""
    try:
        obj = json.loads(text)
    except ValueError:
        raise ConfigError("not valid JSON") from None
    if type(obj) is not dict:
        raise ConfigError("top level must be a JSON object")
    board = obj.get("board", "esp32-devkitc")
    if board not in BOARDS:
        raise ConfigError("unknown board " + str(board) + " (known: " + ", ".join(BOARDS) + ")")
    cvd = obj.get("cvd_safe", False)
    if type(cvd) is not bool:
        raise ConfigError("cvd_safe must be true or false")
    cals = _cals(obj)
    return {
        "dev_id": _int(obj, "dev_id", 0, 0xFFFF),
        "key": _key(obj, "key", True),
        "group_id": _int(obj, "group_id", 0, 0xFFFF, 1),
        "group_key": _key(obj, "group_key", False),
        "board": board,
        "company_id": _int(obj, "company_id", 0, 0xFFFF, 0xFFFF),
        "rates": _rates(obj),
        "cvd_safe": cvd,
        "led_count": _int(obj, "led_count", 1, 16, 1),
        "led_budget_ma": _int(obj, "led_budget_ma", 1, 500, 12),
        "eda_cal": cals[0],
        "ntc_offset_centi": cals[1],
    }


def _valid(text):
    try:
        parse(text)
        return True
    except ConfigError:
        return False


def load(path="config.json"):
    """(config, None) or (None, reason). Finishes or discards an interrupted write first."""
    storage.recover(path, _valid)
    text = storage.read_text(path)
    if text is None:
        return None, path + " missing"
    try:
        return parse(text), None
    except ConfigError as exc:
        return None, path + " corrupt: " + str(exc.args[0])


def save(obj, path="config.json", hook=None):
    """Validate and write atomically (temp + rename); raises ConfigError before touching flash if invalid."""
    text = json.dumps(obj)
    parse(text)
    storage.write_atomic(path, text, hook)
