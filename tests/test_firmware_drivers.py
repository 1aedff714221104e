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
        ppg = MAX30102(bus)
        ppg.setup()
        out = {"resets": chip.resets, "mode": chip.regs[0x09], "spo2": chip.regs[0x0A], "led1": chip.regs[0x0C],
               "led2": chip.regs[0x0D], "slot1": chip.regs[0x11], "fifo_cfg": chip.regs[0x08]}
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
        from array import array
        buf = array("i", [0] * 32)
        for v in (10, 20, 33):
            chip.push_sample(v)
        before = bus.transactions
        out["burst"] = list(buf[:ppg.read_burst(buf)])
        out["burst_transactions"] = bus.transactions - before
        out["burst_empty"] = ppg.read_burst(buf)
        # 40 samples into a 32-deep FIFO with roll-over: the newest 32 survive, the 8 lost are counted
        for v in range(40):
            chip.push_sample(v)
        n = ppg.read_burst(buf)
        out["full"] = [n, buf[0], buf[n - 1], ppg.lost]
        ppg.set_led_current(250)
        out["led_25ma"] = chip.regs[0x0D]
        ppg.shutdown()
        out["shdn"] = ppg.is_shutdown()
        out["accepted_after_shutdown"] = chip.push_sample(5)
        print(json.dumps(out))
    """)
    assert r["resets"] >= 2  # power-on plus the driver's soft reset
    assert r["mode"] == 0x87  # SHDN | multi-LED mode after setup, until consent wakes it
    assert r["slot1"] == 2 and r["led1"] == 0  # slot 1 = LED2 (IR); red off
    assert r["spo2"] == (1 << 5) | (0 << 2) | 3  # 4096 nA, 50 Hz, 18-bit pulses
    assert r["led2"] == 35  # 7.0 mA / 0.2 mA until the LED loop has seen the DC
    assert r["fifo_cfg"] & 0x10  # roll-over on
    assert r["accepted_in_shutdown"] is False and r["avail_shutdown"] == 0
    assert r["avail"] == 7
    assert r["read"] == [100000 + 37 * i for i in range(5)] + [0x3FFFF, 0]
    assert r["avail_after"] == 0
    assert r["burst"] == [10, 20, 33] and r["burst_transactions"] == 3  # pointers, then bursts of 2 and 1
    assert r["burst_empty"] == 0
    assert r["full"] == [32, 8, 39, 8]  # samples 0..7 were overwritten and counted as lost
    assert r["led_25ma"] == 125
    assert r["shdn"] is True and r["accepted_after_shutdown"] is False


def test_max30101_green_uses_multi_led_slot(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimI2C, Max3010xModel
        from drivers.max30102 import MAX30102
        bus = SimI2C()
        chip = bus.attach(0x57, Max3010xModel())
        ppg = MAX30102(bus, green=True, led_code=50)
        ppg.setup()
        ppg.wake()
        chip.push_sample(4242)
        from array import array
        buf = array("i", [0] * 32)
        n = ppg.read_burst(buf)
        print(json.dumps({"mode": chip.regs[0x09], "slot1": chip.regs[0x11], "led3": chip.regs[0x0E],
                          "led1": chip.regs[0x0C], "v": list(buf[:n])}))
    """)
    assert r == {"mode": 0x07, "slot1": 0x03, "led3": 50, "led1": 0, "v": [4242]}


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
        out["fifo"] = [chip.regs[0x24], chip.regs[0x2E]]
        xyz = [0, 0, 0]
        out["turn_on"] = [chip.set_mg(9, 9, 9), acc.available()]  # lost in the turn-on time: nothing waiting
        for v in ((0, 0, 1000), (-1, 17, -981), (1999, -2000, 0), (2500, -3000, 7)):
            chip.set_mg(*v)
        out["waiting"] = acc.available()
        got = []
        before = bus.transactions
        for _ in range(out["waiting"]):
            acc.read_into(xyz)
            got.append(list(xyz))
        out["one_read_each"] = bus.transactions - before
        out["got"] = got
        out["empty"] = acc.available()
        for k in range(40):  # 1.6 s unread: the FIFO keeps the newest 32
            chip.set_mg(k, 0, 0)
        out["full"] = [acc.available(), acc.overruns]
        acc.read_into(xyz)
        out["oldest_kept"] = xyz[0]
        acc.shutdown()
        out["down_again"] = acc.is_shutdown()
        acc.wake()
        out["emptied"] = acc.available()
        print(json.dumps(out))
    """)
    assert r["ctrl4"] == 0x88 and r["down"] is True and r["accepted_down"] is False
    assert r["ctrl1"] == 0x37 and r["fifo"] == [0x40, 0x80]  # FIFO enabled, stream mode
    assert r["turn_on"] == [False, 0]
    assert r["waiting"] == 4
    assert r["got"] == [[0, 0, 1000], [-1, 17, -981], [1999, -2000, 0], [1999, -2000, 7]]  # +-2 g clips
    assert r["one_read_each"] == 4 and r["empty"] == 0
    assert r["full"] == [32, 1] and r["oldest_kept"] == 8
    assert r["down_again"] is True and r["emptied"] == 0


def test_eda_and_ntc_adc_front_ends(mpy):
    r = run_json(mpy, """
        import json
        from hal.unix.sim_i2c import SimADC, SimPin
        from drivers.eda import EDA
        from drivers.ntc import NTC, counts_to_centi_c, centi_c_to_counts
        from protocol.kernels.eda import counts_to_centi_us
        adc, pin = SimADC(250000), SimPin()   # 10 uS through the front end: 0.5 V * 100 k / (100 k + 100 k)
        eda = EDA(adc, pin)
        out = {"off": pin.value()}
        eda.wake()
        out["on"] = pin.value()
        out["centi_us"] = counts_to_centi_us(eda.read())
        eda.cal = (10000, 1050000)   # this ADC reads 10 mV high and 5 % steep: 272.5 mV for 250 mV
        adc.uv = 272500
        out["centi_us_cal"] = counts_to_centi_us(eda.read())
        eda.shutdown()
        out["off_again"] = pin.value()
        uv = centi_c_to_counts(3350) * 3300000 // 4095
        ntc = NTC(SimADC(uv), SimPin())
        out["t"] = ntc.read()
        ntc.cal = -40
        out["t_cal"] = ntc.read()
        out["table"] = [counts_to_centi_c(c) for c in (4095, 3156, 2048, 1800, 815, 0)]
        out["round"] = [counts_to_centi_c(centi_c_to_counts(c)) for c in range(2500, 4001, 37)]
        print(json.dumps(out))
    """)
    assert (r["off"], r["on"], r["off_again"]) == (0, 1, 0)
    assert abs(r["centi_us"] - 1000) <= 5 and abs(r["centi_us_cal"] - 1000) <= 5
    assert abs(r["t"] - 3350) <= 3 and r["t_cal"] == r["t"] - 40
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
