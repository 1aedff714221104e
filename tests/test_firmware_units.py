"""The badge's sans-I/O modules under the real MicroPython: consent, gestures, counter store, backlog ring, config,
palette, and the badge's telemetry packing (protocol.telemetry) as the host decodes it."""

from __future__ import annotations

import json
import random

import pytest
from lifepalette.virtual_badge import firmware_module

from protocol import records

HEAP = "256K"


def run_json(mpy, code: str) -> dict:
    out = mpy.run(code, heapsize=HEAP)
    return json.loads(out.strip().splitlines()[-1])


def test_gestures_and_consent_state_machine(mpy):
    r = run_json(mpy, """
        import json
        from app import consent as C
        g = C.Gestures()
        c = C.Consent(revision=14)
        log = []
        def hold(start, ms):
            ev = []
            for t in range(start, start + ms + 16, 16):
                e = g.feed(t < start + ms, t)
                if e:
                    ev.append(C.ACTION_NAMES[c.on_gesture(e)] if e != 1 else "click")  # 1 = CLICK
                    log.append((e, t))
            return ev
        out = {"default": [c.given(), c.capturing(), c.byte()]}
        out["click"] = hold(0, 150)
        out["long"] = hold(1000, 3200)
        out["after_grant"] = [c.capturing(), c.sharing_colour(), c.byte()]
        out["long_fired_at"] = [t for e, t in log if e == 4][0]  # LONG
        out["pause"] = hold(6000, 1500)
        out["paused"] = [c.capturing(), c.byte()]
        out["resume"] = hold(9000, 1500)
        out["double"] = hold(12000, 100) + hold(12300, 100)
        out["scope"] = [c.physio, c.colour, c.capturing(), c.byte()]
        out["revoke"] = hold(15000, 3100)
        out["after_revoke"] = [c.given(), c.capturing(), c.byte()]
        out["bounce"] = hold(20000, 10)
        print(json.dumps(out))
    """)
    assert r["default"] == [False, False, 0xE0]  # no consent by default, revision 14
    assert r["click"] == ["click"]
    assert r["long"] == ["granted"]
    assert 4000 <= r["long_fired_at"] <= 4016  # fires while still held, after 3 s
    assert r["after_grant"] == [True, True, 0xF3]  # physio + colour, revision 15
    assert r["pause"] == ["paused"] and r["paused"] == [False, 0xF7]
    assert r["resume"] == ["resumed"]
    assert r["double"] == ["click", "scope"]
    assert r["scope"] == [False, True, False, 0x02]  # colour-only sharing, revision wrapped to 0
    assert r["revoke"] == ["revoked"]
    assert r["after_revoke"] == [False, False, 0x10]
    assert r["bounce"] == []


def test_counter_store_reserves_blocks_and_never_reuses(mpy):
    r = run_json(mpy, """
        import json
        from app.storage import CounterStore, StorageError
        s = CounterStore(block=8)
        first = [s.take() for _ in range(20)]
        writes = s.writes
        s2 = CounterStore(block=8)          # reboot: continues above everything reserved
        second = s2.take()
        open("counter.txt", "w").write("LP banana")
        try:
            CounterStore(block=8)
            corrupt = "accepted"
        except StorageError as e:
            corrupt = str(e)
        print(json.dumps({"first": first, "writes": writes, "second": second, "corrupt": corrupt}))
    """)
    assert r["first"] == list(range(1, 21))
    assert r["writes"] == 3  # boot reservation + one per further block of 8
    assert r["second"] == 25  # the last run had reserved up to 25
    assert "corrupt" in r["corrupt"]


def test_backlog_ring(mpy):
    r = run_json(mpy, """
        import json
        from app.storage import Ring
        ring = Ring(600)
        rec = bytearray(13)
        for ctr in range(1, 651):
            rec[0] = ctr & 0xFF
            ring.push(ctr, rec)
        out = {"count": ring.count, "oldest": ring.ctr_at(0), "newest": ring.ctr_at(ring.count - 1),
               "dropped": ring.dropped}
        ring.record_into(0, rec)
        out["rec0"] = rec[0]
        out["released"] = ring.ack(100)
        out["released2"] = ring.ack(60)
        out["resend"] = [ring.ctr_at(ring.next_resend(103)) for _ in range(4)]
        out["none"] = ring.next_resend(40)
        out["released3"] = ring.ack(640)
        out["left"] = [ring.ctr_at(i) for i in range(ring.count)]
        ring.clear()
        out["cleared"] = [ring.count, max(max(c) for c in ring.chunks)]
        print(json.dumps(out))
    """)
    assert r["count"] == 600 and r["oldest"] == 51 and r["newest"] == 650 and r["dropped"] == 50
    assert r["rec0"] == 51
    assert r["released"] == 50 and r["released2"] == 0
    assert r["resend"] == [101, 102, 103, 101]  # cycles through what may be resent
    assert r["none"] == -1
    assert r["released3"] == 540 and r["left"] == list(range(641, 651))
    assert r["cleared"] == [0, 0]


CFG = {"dev_id": 258, "key": "00112233445566778899aabbccddeeff", "group_id": 1,
       "group_key": "ffeeddccbbaa99887766554433221100", "board": "esp32-devkitc", "company_id": 65535,
       "rates": {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}}

BAD = [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({**CFG, "dev_id": 70000}), "dev_id"),
    (json.dumps({**CFG, "dev_id": True}), "dev_id"),
    (json.dumps({k: v for k, v in CFG.items() if k != "key"}), "missing key"),
    (json.dumps({**CFG, "key": "zz" * 16}), "key must be 32 hex"),
    (json.dumps({**CFG, "key": "00" * 15}), "key must be 32 hex"),
    (json.dumps({**CFG, "board": "arduino"}), "unknown board"),
    (json.dumps({**CFG, "rates": {"ppg": 64, "eda": 200}}), "eda"),
    (json.dumps({**CFG, "rates": {"ppg": 32, "eda": 64}}), "eda"),
    (json.dumps({**CFG, "rates": {"gsr": 4}}), "unknown rate"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_config_rejects_with_clear_message(text, message):
    config = firmware_module("app.config")
    with pytest.raises(config.ConfigError, match=message):
        config.parse(text)


def test_config_parses_same_under_micropython(mpy):
    r = run_json(mpy, f"""
        import json
        from app import config
        cfg = config.parse({json.dumps(json.dumps(CFG))})
        cfg["key"] = cfg["key"].hex()
        cfg["group_key"] = cfg["group_key"].hex()
        bad = []
        for text in {json.dumps([t for t, _ in BAD])}:
            try:
                config.parse(text)
                bad.append("accepted")
            except config.ConfigError as e:
                bad.append(e.args[0])
        print(json.dumps({{"cfg": cfg, "bad": bad}}))
    """)
    cpy = firmware_module("app.config").parse(json.dumps(CFG))
    assert r["cfg"] == {**cpy, "key": cpy["key"].hex(), "group_key": cpy["group_key"].hex()}
    for got, (_, message) in zip(r["bad"], BAD, strict=True):
        assert message in got


def test_badge_telemetry_packing_under_micropython(mpy):
    """The badge packs with protocol.telemetry (the core records.pack_telemetry uses): under the real MicroPython,
    with the heap locked (no allocation per record), the bytes decode on the host to the values given, n/a values
    read as n/a, and out-of-range values are refused rather than truncated."""
    rng = random.Random(4)
    rows = []
    for _ in range(50):
        values = [rng.randrange(256) for _ in range(11)]
        values[2] = rng.randrange(0x10000)
        rows.append(values)
    r = run_json(mpy, f"""
        import json, micropython
        from protocol import telemetry as T
        rows = {rows!r}
        buf = bytearray(13)
        out = []
        for v in rows:
            micropython.heap_lock()
            T.pack_into(buf, v)
            micropython.heap_unlock()
            out.append(bytes(buf).hex())
        na = [7] * 11
        T.clear_physio(na)
        refused = []
        for i, bad in ((0, 256), (2, 0x10000), (5, -1)):
            v = list(rows[0])
            v[i] = bad
            try:
                T.pack_into(buf, v)
                refused.append(False)
            except ValueError:
                refused.append(True)
        print(json.dumps({{"out": out, "na": bytes(T.pack_into(buf, na)).hex(), "refused": refused}}))
    """)
    for values, hexrec in zip(rows, r["out"], strict=True):
        assert records.unpack_telemetry(bytes.fromhex(hexrec)) == dict(zip(records.TELEMETRY_FIELDS, values, strict=True))
        assert hexrec.endswith("00")  # reserved byte
    na = records.unpack_telemetry(bytes.fromhex(r["na"]))
    assert (na["hr_bpm"], na["rmssd_ms"], na["scl"], na["scr_per_min"], na["motion"], na["quality"]) == (
        records.HR_NA, records.RMSSD_NA, records.SCL_NA, records.SCR_NA, records.MOTION_NA, 0)
    assert na["hue"] == 7  # the firmware's fields are left alone
    assert r["refused"] == [True, True, True]


def test_palette(mpy):
    r = run_json(mpy, """
        import json
        from app.palette import Palette
        IDLE, PULSE, STEADY, PAUSED, SAFE, CONFIRM = 1, 2, 3, 4, 5, 6  # app.palette's pattern codes
        def colour(**kw):
            p = Palette(kw.get("cvd", False), 1, kw.get("budget", 12))
            p.hue = kw.get("hue", 0)
            if kw.get("group"):
                p.set_group(0, 0, 255, 10, 0)
            p.update(kw.get("cap", True), kw.get("colour_only", False), False, kw.get("arousal", 128),
                     kw.get("q", True), 0)
            return list(p.base), p.pattern, p.period
        out = {}
        out["calm"] = colour(arousal=0)
        out["aroused"] = colour(arousal=255)
        out["lowq"] = colour(arousal=255, q=False)
        out["cvd"] = [colour(cvd=True, hue=h * 32, budget=100)[0] for h in range(8)]
        out["wheel"] = [colour(hue=h * 32, budget=100, arousal=255)[0] for h in range(8)]
        out["group"] = colour(hue=0, group=True, budget=100, arousal=255)[0]
        out["cap"] = colour(arousal=255, budget=3)[0]
        out["idle"] = colour(cap=False)
        out["steady"] = colour(cap=False, colour_only=True)[1:]
        p = Palette()
        p.update(True, False, False, 0, True, 0)
        out["levels"] = [p.level(pt, t) for pt in (IDLE, PULSE, PAUSED, SAFE) for t in (0, 500, 1000, 2000)]
        p.show_overlay(CONFIRM, 0)
        rgb = bytearray(3)
        out["overlay"] = [p.frame(100, rgb), p.frame(5000, rgb)]
        print(json.dumps(out))
    """)
    sat = lambda c: max(c) - min(c)  # noqa: E731
    assert r["calm"][1] == 2 and r["calm"][2] == 4000  # PULSE, slow when calm
    assert r["aroused"][2] == 1000  # the pulse rate carries arousal, not just the colour
    assert sum(r["aroused"][0]) > sum(r["calm"][0]) and sat(r["aroused"][0]) > sat(r["calm"][0])
    assert sat(r["lowq"][0]) < sat(r["aroused"][0]) / 2  # low quality desaturates
    assert len({tuple(c) for c in r["cvd"]}) == 8 and len({tuple(c) for c in r["wheel"]}) == 8
    assert r["group"][2] > r["wheel"][0][2]  # the group's blue blends into the wearer's red
    cap_ma = sum(r["cap"]) * 20 / 255
    assert 0 < cap_ma <= 3
    assert r["idle"][1] == 1 and r["idle"][0] == [40, 40, 40]  # nothing reported: neutral, slow blink
    assert r["steady"] == [3, 0]
    idle, pulse, paused, safe = (r["levels"][i:i + 4] for i in range(0, 16, 4))
    assert idle == [255, 0, 0, 0] and safe[0] == 255 and safe[1] == 255 and pulse[0] < pulse[2]
    assert idle != paused != safe
    assert r["overlay"] == [6, 2]  # CONFIRM flashes, then back to the pulse
