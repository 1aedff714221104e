"""The ESP32 HAL with the whole badge app on top, under the real MicroPython, with `machine`, `neopixel` and
`bluetooth` replaced by stand-ins at the narrowest seam: the I2C stand-in is the register-level chip models of
hal/unix/sim_i2c.py, the timer fires from machine.idle(), and the BLE stand-in records adverts. The adverts are
then opened on the CPython side with protocol.verifier."""

from __future__ import annotations

import json
import textwrap

from helpers.esp32_fakes import FAKE_BLUETOOTH, FAKE_MACHINE, FAKE_NEOPIXEL

from protocol import frame, records
from protocol.verifier import Verifier

KEY = bytes(range(16))



def test_badge_on_esp32_hal(mpy, tmp_path):
    for name, text in (("machine", FAKE_MACHINE), ("neopixel", FAKE_NEOPIXEL), ("bluetooth", FAKE_BLUETOOTH)):
        (tmp_path / f"{name}.py").write_text(text)
    (tmp_path / "config.json").write_text(json.dumps({"dev_id": 258, "key": KEY.hex(), "board": "esp32-devkitc"}))
    out = mpy.run(textwrap.dedent("""
        import io, json, machine, neopixel, bluetooth
        from app import config, pipeline, storage
        from app.badge import Badge
        from hal.esp32 import board
        cfg, reason = config.load()
        hal = board.Esp32Hal(cfg, cfg["board"])
        clock_us = [0]
        def sleep_ms(ms):   # the HAL sleeps; time passes one timer period per stand-in timer firing
            machine.idle()
            clock_us[0] += 15625
        hal.sleep_ms = sleep_ms
        hal.ticks_ms = lambda: clock_us[0] // 1000
        hal._last = 0
        hal.radio.usb = io.BytesIO()
        badge = Badge(hal, cfg, hal.sensors(), pipeline.Features(cfg["rates"]), storage.Ring(600))
        ble = bluetooth.BLE.last
        p = hal.p
        state = {"before": [machine.MAX.shutdown(), machine.ACC.powered_down(), machine.PINS[p["eda_en"]].value()]}
        machine.ADCS[p["batt_adc"]].counts = 1900          # 1.9 V at the pin = 3.8 V battery
        btn = machine.PINS[p["button"]]
        tick = 0
        while tick < 64 * 12:
            btn.value(0 if 64 * 2 <= tick < 64 * 5 + 20 else 1)   # held from 2 s for 3.3 s
            machine.MAX.push_sample(100000 + (tick * 37) % 500)
            machine.ACC.set_mg(0, 0, 1000)
            n = hal.wait_tick()
            for _ in range(n):
                badge.tick()
            tick += n
        state["after"] = [machine.MAX.shutdown(), machine.ACC.powered_down(), machine.PINS[p["eda_en"]].value()]
        state["adverts"] = [list(c[2]) for c in ble.calls if c[0] == "advertise"]
        state["i2c_pins"] = list(hal.bus.i2c.pins)
        state["led_writes"] = len(neopixel.WRITES)
        state["led_max"] = max(sum(w) for w in neopixel.WRITES)
        state["timer_freq"] = machine.TIMERS[0].freq
        print(json.dumps(state))
    """), heapsize="512K", extra_path=str(tmp_path))
    r = json.loads(out.strip().splitlines()[-1])
    assert r["before"] == [True, True, 0]  # no consent at boot: every sensor off
    assert r["after"] == [False, False, 1]  # consented at 5 s: sensors on
    assert r["i2c_pins"] == [22, 21] and r["timer_freq"] == 64
    verifier = Verifier({258: KEY})
    verdicts = [verifier.verify(bytes(a)) for a in r["adverts"]]
    assert len(verdicts) == 12 and all(v.ok for v in verdicts)
    types = [v.ftype for v in verdicts]
    assert types[:5] == [frame.HEARTBEAT] * 5 and set(types[6:]) == {frame.TELEMETRY}
    battery = records.unpack_telemetry(verdicts[-1].record)["battery"]
    assert battery == 55  # (3800 - 3300) / 900 mV, not charging
    assert r["led_writes"] > 10 and 0 < r["led_max"] * 20 / 255 <= 12  # LED under the current cap
