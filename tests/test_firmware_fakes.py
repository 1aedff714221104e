"""The strict stand-ins for the esp32 port's modules (firmware/hal/unix/fakes) are held to MicroPython's API:
every function and method they offer exists in the micropython-esp32-stubs with a compatible signature and the
same constant values, and under the real MicroPython they refuse what each chip's port refuses."""

from __future__ import annotations

import ast
import json
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from lifepalette.paths import FIRMWARE_DIR

FAKES = FIRMWARE_DIR / "hal" / "unix" / "fakes"
PORT_MODULES = ("machine", "bluetooth", "neopixel", "esp32")
# Where the stub disagrees with MicroPython's documentation, the documented signature (positional names, keyword-only
# names) is used instead, with the reason.
DOCUMENTED = {
    ("bluetooth", "BLE", "gatts_notify"): ((["conn_handle", "value_handle", "data"], set()),
                                          "the stub drops conn_handle; docs: gatts_notify(conn_handle, value_handle, "
                                          "data=None)"),
}


def stub_file(module: str) -> Path:
    dist = metadata.distribution("micropython-esp32-stubs")
    return Path(str(dist.locate_file(f"{module}.pyi")))


def _scopes(tree: ast.Module) -> dict[str | None, list[ast.stmt]]:
    out: dict[str | None, list[ast.stmt]] = {None: tree.body}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = node.body
    return out


def _shape(fn: ast.FunctionDef) -> tuple[list[str], int, set[str], bool]:
    """(positional names without self, how many of them are positional-only, keyword-only names, **kwargs)."""
    a = fn.args
    pos = [x.arg for x in a.posonlyargs + a.args]
    posonly = len(a.posonlyargs)
    if pos and pos[0] == "self":
        pos, posonly = pos[1:], max(0, posonly - 1)
    return pos, posonly, {x.arg for x in a.kwonlyargs}, a.kwarg is not None


def _functions(body: list[ast.stmt]) -> dict[str, list[ast.FunctionDef]]:
    out: dict[str, list[ast.FunctionDef]] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, []).append(node)
    return out


def _constants(body: list[ast.stmt]) -> dict[str, int]:
    out = {}
    for node in body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id.isupper() and isinstance(value, ast.Constant) \
                and isinstance(value.value, int):
            out[target.id] = value.value
    return out


def fake_api() -> list[tuple[str, str | None, str, ast.FunctionDef]]:
    api = []
    for module in PORT_MODULES:
        for cls, body in _scopes(ast.parse((FAKES / f"{module}.py").read_text())).items():
            if cls is not None and cls.startswith("_"):
                continue
            for name, defs in _functions(body).items():
                if name == "__init__" or not name.startswith("_"):
                    api.append((module, cls, name, defs[0]))
    return api


def compatible(fake: ast.FunctionDef, stubs: list[ast.FunctionDef]) -> bool:
    pos, _, kwonly, _ = _shape(fake)
    kw_known = set().union(*(_shape(s)[2] for s in stubs))
    any_kwargs = any(_shape(s)[3] for s in stubs)
    if not any_kwargs and not kwonly <= kw_known:
        return False
    for stub in stubs:
        spos, sposonly, _, _ = _shape(stub)
        if len(pos) <= len(spos) and all(i < sposonly or spos[i] == pos[i] for i in range(len(pos))):
            return True
    return False


@pytest.mark.parametrize("module,cls,name,fn", fake_api(), ids=lambda x: x if isinstance(x, str) else "")
def test_fake_signature_matches_the_stub(module, cls, name, fn):
    key = (module, cls, name)
    if key in DOCUMENTED:
        (names, kw), _why = DOCUMENTED[key]
        pos, _, kwonly, _ = _shape(fn)
        assert pos == names[:len(pos)] and kwonly <= kw
        return
    scopes = _scopes(ast.parse(stub_file(module).read_text()))
    assert cls in scopes, f"{module}.{cls} is not in the stubs"
    stubs = _functions(scopes[cls]).get(name)
    assert stubs, f"{module}.{cls or ''}.{name} is not in the stubs: the fake must not invent API"
    assert compatible(fn, stubs), f"{module}.{cls or ''}.{name}: {_shape(fn)} vs {[_shape(s) for s in stubs]}"


@pytest.mark.parametrize("module", PORT_MODULES)
def test_fake_constants_have_the_stub_values(module):
    fake = _scopes(ast.parse((FAKES / f"{module}.py").read_text()))
    stub = _scopes(ast.parse(stub_file(module).read_text()))
    checked = 0
    for cls, body in fake.items():
        known = _constants(stub.get(cls, []))
        for name, value in _constants(body).items():
            if name in known:
                assert value == known[name], f"{module}.{cls}.{name} = {value}, stub {known[name]}"
                checked += 1
    assert checked or module != "machine"


def test_the_checker_rejects_an_invented_argument():
    fn = ast.parse("def readfrom_mem_into(self, addr, memaddr, buf, *, addrsize=8, stop=True): pass").body[0]
    stubs = _functions(_scopes(ast.parse(stub_file("machine").read_text()))["I2C"])["readfrom_mem_into"]
    assert isinstance(fn, ast.FunctionDef) and not compatible(fn, stubs)


PROBE = """
import json, machine, bluetooth
out = {}
def tr(name, f):
    try:
        f()
        out[name] = "ok"
    except Exception as e:
        out[name] = type(e).__name__
for n in (0, 5, 20, 22, 25, 34, 39, 40, 48):
    tr("pin%d" % n, lambda: machine.Pin(n))
tr("out34", lambda: machine.Pin(34, machine.Pin.OUT))
tr("adc13", lambda: machine.ADC(machine.Pin(13)).read_u16())
tr("adc36", lambda: machine.ADC(machine.Pin(36), atten=machine.ADC.ATTN_11DB).read_uv())
tr("adc4", lambda: machine.ADC(machine.Pin(4)).read_u16())
tr("i2c1", lambda: machine.I2C(1, scl=machine.Pin(4), sda=machine.Pin(5)))
tr("nack", lambda: machine.I2C(0, scl=machine.Pin(4), sda=machine.Pin(5)).readfrom_mem_into(0x42, 0, bytearray(1)))
ble = bluetooth.BLE()
tr("adv_inactive", lambda: ble.gap_advertise(100000, b"x"))
ble.active(True)
tr("adc13_radio", lambda: machine.ADC(machine.Pin(13)).read_u16())
tr("adv_long", lambda: ble.gap_advertise(100000, bytes(32)))
tr("cfg_bad", lambda: ble.config(bogus=1))
tr("wdt1", lambda: machine.WDT(id=1))
print(json.dumps(out))
"""
# What each chip's port does (ports/esp32/machine_pin.c, machine_adc.c, machine_i2c.c; NimBLE via modbluetooth):
EXPECTED = {
    "esp32": {"pin0": "ok", "pin5": "ok", "pin20": "ValueError", "pin22": "ok", "pin25": "ok", "pin34": "ok",
              "pin39": "ok", "pin40": "ValueError", "pin48": "ValueError", "out34": "ValueError", "adc13": "ok",
              "adc36": "ok", "adc4": "ok", "i2c1": "ok", "nack": "OSError", "adv_inactive": "OSError",
              "adc13_radio": "OSError", "adv_long": "OSError", "cfg_bad": "ValueError", "wdt1": "ValueError"},
    "esp32s3": {"pin0": "ok", "pin5": "ok", "pin20": "ok", "pin22": "ValueError", "pin25": "ValueError",
                "pin34": "ok", "pin39": "ok", "pin40": "ok", "pin48": "ok", "out34": "ok", "adc13": "ok",
                "adc36": "ValueError", "adc4": "ok", "i2c1": "ok", "nack": "OSError", "adv_inactive": "OSError",
                "adc13_radio": "OSError", "adv_long": "OSError", "cfg_bad": "ValueError", "wdt1": "ValueError"},
    "esp32c3": {"pin0": "ok", "pin5": "ok", "pin20": "ok", "pin22": "ValueError", "pin25": "ValueError",
                "pin34": "ValueError", "pin39": "ValueError", "pin40": "ValueError", "pin48": "ValueError",
                "out34": "ValueError", "adc13": "ValueError", "adc36": "ValueError", "adc4": "ok",
                "i2c1": "ValueError", "nack": "OSError", "adv_inactive": "OSError", "adc13_radio": "ValueError",
                "adv_long": "OSError", "cfg_bad": "ValueError", "wdt1": "ValueError"},
}


@pytest.mark.parametrize("chip", sorted(EXPECTED))
def test_fakes_refuse_what_the_chip_refuses(mpy, monkeypatch, chip):
    monkeypatch.setenv("LP_CHIP", chip)
    out = mpy.run(textwrap.dedent(PROBE), heapsize="256K", extra_path=str(FAKES))
    assert json.loads(out.strip().splitlines()[-1]) == EXPECTED[chip]


@pytest.mark.parametrize("chip,pin", [("esp32", 8), ("esp32s3", 27), ("esp32s3", 19), ("esp32c3", 12), ("esp32c3", 18)])
def test_driving_a_flash_psram_or_usb_pin_crashes_the_chip(mpy, monkeypatch, chip, pin):
    monkeypatch.setenv("LP_CHIP", chip)
    out = mpy.run(f"import machine\nmachine.Pin({pin}, machine.Pin.OUT)\nprint('survived')", heapsize="256K",
                  extra_path=str(FAKES), check=False)
    assert "chip crashes" in out and "survived" not in out


def test_notifications_are_cut_at_mtu_minus_3(mpy, monkeypatch):
    monkeypatch.setenv("LP_FAULTS", "no-mtu-exchange")
    out = mpy.run(textwrap.dedent("""
        import bluetooth, lp_fake
        ble = bluetooth.BLE()
        ble.active(True)
        events = []
        ble.irq(lambda e, d: events.append(e))
        ((h,),) = ble.gatts_register_services(((bluetooth.UUID(0x180F), ((bluetooth.UUID(0x2A19), 0x12),)),))
        lp_fake.ms = 2000
        bluetooth._poll()
        ble.gattc_exchange_mtu(64)
        bluetooth._poll()
        ble.gatts_notify(64, h, bytes(24))
        print(events)
    """), heapsize="256K", extra_path=str(FAKES))
    assert "central got 20 of 24 bytes (cut at MTU 23 - 3)" in out
    assert out.strip().splitlines()[-1] == "[1]"  # connected; no MTU_EXCHANGED (21) from this central
