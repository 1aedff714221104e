"""Sensor drivers against register-level chip models on a simulated I2C bus, under the real MicroPython binary."""

from __future__ import annotations

import json
import math

from lifepalette.virtual_badge import firmware_module

HEAP = "256K"  # these tests compile driver sources on the fly; the badge itself runs precompiled .mpy


def run_json(mpy, code: str) -> dict:
    out = mpy.run(code, heapsize=HEAP)
    return json.loads(out.strip().splitlines()[-1])


def test_max30102_setup_fifo_shutdown(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimI2C, Max3010xModel
        from drivers.max30102 import MAX30102
        bus = SimI2C()
        chip = bus.attach(0x57, Max3010xModel())
        ppg = MAX30102(bus, led_ma_x10=70)
        ppg.setup()
        out = {"resets": chip.resets, "mode": chip.regs[0x09], "spo2": chip.regs[0x0A], "led1": chip.regs[0x0C],
               "fifo_cfg": chip.regs[0x08]}
        # in shutdown the LEDs are dark: the chip produces nothing
        out["accepted_in_shutdown"] = chip.push_sample(1234)
        out["avail_shutdown"] = ppg.available()
        ppg.wake()
        vals = [100000 + 37 * i for i in range(5)] + [0x3FFFF, 0]
        for v in vals:
            chip.push_sample(v)
        out["avail"] = ppg.available()
        out["read"] = [ppg.read_sample() for _ in range(len(vals))]
        out["avail_after"] = ppg.available()
        chip.push_sample(10)
        chip.push_sample(20)
        chip.push_sample(33)
        out["mean"] = ppg.read_mean()
        out["mean_empty"] = ppg.read_mean()
        # 40 samples into a 32-deep FIFO with roll-over: the newest 32 survive, overflow reported
        for v in range(40):
            chip.push_sample(v)
        out["avail_full"] = ppg.available()
        out["first_after_overflow"] = ppg.read_sample()
        ppg.set_led_current(250)
        out["led_25ma"] = chip.regs[0x0C]
        ppg.shutdown()
        out["shdn"] = ppg.is_shutdown()
        out["accepted_after_shutdown"] = chip.push_sample(5)
        print(json.dumps(out))
    """)
    assert r["resets"] >= 2  # power-on plus the driver's soft reset
    assert r["mode"] == 0x82  # SHDN | HR mode after setup, until consent wakes it
    assert r["spo2"] == (1 << 5) | (1 << 2) | 3  # 4096 nA, 100 Hz, 18-bit pulses
    assert r["led1"] == 35  # 7.0 mA / 0.2 mA
    assert r["fifo_cfg"] & 0x10  # roll-over on
    assert r["accepted_in_shutdown"] is False and r["avail_shutdown"] == 0
    assert r["avail"] == 7
    assert r["read"] == [100000 + 37 * i for i in range(5)] + [0x3FFFF, 0]
    assert r["avail_after"] == 0
    assert r["mean"] == 21 and r["mean_empty"] == -1
    assert r["avail_full"] == 32
    assert r["first_after_overflow"] == 8  # samples 0..7 were overwritten
    assert r["led_25ma"] == 125
    assert r["shdn"] is True and r["accepted_after_shutdown"] is False


def test_max30101_green_uses_multi_led_slot(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimI2C, Max3010xModel
        from drivers.max30102 import MAX30102
        bus = SimI2C()
        chip = bus.attach(0x57, Max3010xModel())
        ppg = MAX30102(bus, green=True, led_ma_x10=100)
        ppg.setup()
        ppg.wake()
        chip.push_sample(4242)
        print(json.dumps({"mode": chip.regs[0x09], "slot1": chip.regs[0x11], "led3": chip.regs[0x0E],
                          "led1": chip.regs[0x0C], "v": ppg.read_mean()}))
    """)
    assert r == {"mode": 0x07, "slot1": 0x03, "led3": 50, "led1": 0, "v": 4242}


def test_missing_or_wrong_chip_is_a_named_error(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimI2C, Max3010xModel, Lis3dhModel
        from drivers.max30102 import MAX30102, SensorError
        from drivers.lis3dh import LIS3DH
        from drivers.lis3dh import SensorError as AccError
        out = {}
        bus = SimI2C()
        try:
            MAX30102(bus).setup()
        except SensorError as e:
            out["missing"] = str(e)
        wrong = bus.attach(0x57, Max3010xModel())
        wrong.regs[0xFF] = 0x11
        try:
            MAX30102(bus).setup()
        except SensorError as e:
            out["wrong"] = str(e)
        acc = bus.attach(0x18, Lis3dhModel())
        acc.regs[0x0F] = 0x32
        try:
            LIS3DH(bus).setup()
        except AccError as e:
            out["acc"] = str(e)
        print(json.dumps(out))
    """)
    assert "not answering at 0x57" in r["missing"]
    assert "part id 0x11" in r["wrong"]
    assert "WHO_AM_I 0x32" in r["acc"]


def test_lis3dh_round_trip_and_power_down(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimI2C, Lis3dhModel
        from drivers.lis3dh import LIS3DH
        bus = SimI2C()
        chip = bus.attach(0x18, Lis3dhModel())
        acc = LIS3DH(bus)
        acc.setup()
        out = {"ctrl4": chip.regs[0x23], "down": acc.is_shutdown(), "accepted_down": chip.set_mg(5, 5, 5)}
        acc.wake()
        out["ctrl1"] = chip.regs[0x20]
        xyz = [0, 0, 0]
        got = []
        for v in ((0, 0, 1000), (-1, 17, -981), (1999, -2000, 0), (2500, -3000, 7)):
            chip.set_mg(*v)
            acc.read_into(xyz)
            got.append(list(xyz))
        out["got"] = got
        before = bus.transactions
        acc.read_into(xyz)
        out["one_burst"] = bus.transactions - before
        acc.shutdown()
        out["down_again"] = acc.is_shutdown()
        print(json.dumps(out))
    """)
    assert r["ctrl4"] == 0x88 and r["down"] is True and r["accepted_down"] is False
    assert r["ctrl1"] == 0x37
    assert r["got"] == [[0, 0, 1000], [-1, 17, -981], [1999, -2000, 0], [1999, -2000, 7]]  # +-2 g clips
    assert r["one_burst"] == 1  # six bytes in one auto-increment read
    assert r["down_again"] is True


def test_eda_and_ntc_adc_front_ends(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimADC, SimPin
        from drivers.eda import EDA
        from drivers.ntc import NTC, counts_to_centi_c, centi_c_to_counts
        adc, pin = SimADC(1234), SimPin()
        eda = EDA(adc, pin)
        out = {"off": pin.value()}
        eda.wake()
        out["on"] = pin.value()
        out["counts"] = eda.read()
        out["centi_us"] = eda.centi_us(1234)
        eda.shutdown()
        out["off_again"] = pin.value()
        ntc = NTC(SimADC(centi_c_to_counts(3350)), SimPin())
        out["t"] = ntc.read()
        out["table"] = [counts_to_centi_c(c) for c in (4095, 3156, 2048, 1800, 815, 0)]
        out["round"] = [counts_to_centi_c(centi_c_to_counts(c)) for c in range(2500, 4001, 37)]
        print(json.dumps(out))
    """)
    assert (r["off"], r["on"], r["off_again"]) == (0, 1, 0)
    assert r["counts"] == 1234
    assert r["centi_us"] is not None and r["centi_us"] > 0
    assert abs(r["t"] - 3350) <= 3
    assert r["table"][:3] == [0, 0, 2500] and r["table"][-2:] == [6000, 6000]
    assert all(abs(got - want) <= 3 for got, want in zip(r["round"], range(2500, 4001, 37), strict=True))


def test_ntc_table_matches_beta_equation():
    ntc = firmware_module("drivers.ntc")
    for i, counts in enumerate(ntc.TABLE):
        t_k = (ntc.T0_CENTI + i * ntc.STEP_CENTI) / 100 + 273.15
        r = 10000 * math.exp(3950 * (1 / t_k - 1 / 298.15))
        assert abs(counts - 4095 * r / (10000 + r)) <= 0.5
    # between table points the linear interpolation stays within 0.15 degC of the equation
    for counts in range(900, 3100, 7):
        r = 10000 * counts / (4095 - counts)
        t = 1 / (1 / 298.15 + math.log(r / 10000) / 3950) - 273.15
        assert abs(ntc.counts_to_centi_c(counts) / 100 - t) < 0.15
