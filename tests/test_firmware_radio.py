"""The badge's radio side under the real MicroPython: app.radio.Link (sans-I/O: prefix check, counters, MIC) and
hal.esp32.radio on a recording stand-in for the `bluetooth` module (the one seam where no real part can run here)."""

from __future__ import annotations

import json
import textwrap

from helpers.esp32_fakes import FAKE_BLUETOOTH

from protocol import frame, records

KEY = bytes(range(16))
GKEY = bytes(range(32, 48))


def test_link_accepts_only_authentic_fresh_hub_frames(mpy):
    cfg = {"dev_id": 258, "key": KEY, "group_id": 7, "group_key": GKEY, "company_id": 0xFFFF}
    good_adv = frame.advert(frame.seal(GKEY, frame.GROUP_COLOUR, 7, 5, records.pack_group_colour(1, 2, 3),
                                       frame.TO_BADGE))
    foreign = bytes([2, 1, 6, 0x1B, 0xFF, 0x4C, 0x00]) + good_adv[7:]  # another company's advert
    cmd = frame.seal(KEY, frame.COMMAND, 258, 9, records.pack_cmd_backlog_ack(77), frame.TO_BADGE)
    wrong_key = frame.seal(GKEY, frame.COMMAND, 258, 10, records.pack_cmd_backlog_ack(78), frame.TO_BADGE)
    other_dev = frame.seal(KEY, frame.COMMAND, 259, 11, records.pack_cmd_backlog_ack(1), frame.TO_BADGE)
    uplink = frame.seal(KEY, frame.TELEMETRY, 258, 12, bytes(13))  # a badge's own direction: never accepted
    packets = [good_adv, good_adv, foreign, cmd, cmd, wrong_key, other_dev, uplink, b"short"]
    out = mpy.run(textwrap.dedent(f"""
        import json
        from app.radio import Link
        cfg = {{"dev_id": 258, "key": {cfg['key']!r}, "group_id": 7, "group_key": {cfg['group_key']!r},
               "company_id": 65535}}
        link = Link(cfg)
        res = []
        for p in {packets!r}:
            ok = link.accept(p)
            res.append([ok, link.ftype if ok else None, list(link.record) if ok else None])
        print(json.dumps({{"res": res, "foreign": link.foreign, "rejected": link.rejected}}))
    """), heapsize="256K")
    r = json.loads(out.strip().splitlines()[-1])
    oks = [x[0] for x in r["res"]]
    assert oks == [True, False, False, True, False, False, False, False, False]
    assert r["res"][0][1] == frame.GROUP_COLOUR and r["res"][0][2][:3] == [1, 2, 3]
    assert r["res"][3][1] == frame.COMMAND and r["res"][3][2][0] == records.CMD_BACKLOG_ACK
    assert r["foreign"] == 2  # the other company's advert and the short packet: no decryption attempted
    assert r["rejected"] == 5  # replayed advert, replayed command, wrong key, other device, wrong direction


def test_esp32_radio_gatt_advert_scan_and_irq(mpy, tmp_path):
    (tmp_path / "bluetooth.py").write_text(FAKE_BLUETOOTH)
    frame24 = frame.seal(KEY, frame.TELEMETRY, 258, 3, bytes(13))
    group_adv = frame.advert(frame.seal(GKEY, frame.GROUP_COLOUR, 7, 5, records.pack_group_colour(9, 9, 9),
                                        frame.TO_BADGE))
    other = bytes([2, 1, 6, 0x1B, 0xFF, 0x4C, 0x00]) + group_adv[7:]
    out = mpy.run(textwrap.dedent(f"""
        import io, json, bluetooth
        from hal.esp32.radio import Esp32Radio
        from protocol.slip import SlipDecoder
        prefix = bytes([2, 1, 6, 0x1B, 0xFF, 0xFF, 0xFF, 0x32])
        usb = io.BytesIO()
        r = Esp32Radio(258, 0xFFFF, "esp32-devkitc", prefix, usb=usb)
        ble = bluetooth.BLE.last
        ble.handler(1, (4, 0, b"addr"))                      # a hub connects
        r.send({frame24!r})                                   # asks for an MTU exchange, notifies nobody yet
        ble.handler(21, (4, 247))                             # the exchange gave 247
        r.send({frame24!r})
        r.send_backlog({frame24!r})
        ble.handler(5, (0, b"a", 0, -60, memoryview({other!r})))      # someone else's advert
        ble.handler(5, (0, b"a", 0, -60, memoryview({group_adv!r})))  # the hub's group colour
        ble.values[r.h_ctrl] = b"C" * 24
        ble.handler(3, (4, r.h_ctrl))                         # the hub writes a command
        got = [r.recv(), r.recv(), r.recv()]
        ble.handler(2, (4, 0, b"addr"))
        print(json.dumps({{"calls": [[str(x) for x in c] for c in ble.calls],
                          "got": [list(g) if g else None for g in got], "backlog_ok": r.can_backlog(),
                          "ctrl": r.h_ctrl, "telem": r.h_telem, "backlog": r.h_backlog,
                          "services": len(ble.services), "maker": list(ble.values[r.h_batt + 1]),
                          "usb": [[e[0], list(e[1])] for e in SlipDecoder().feed(usb.getvalue())]}}))
    """), heapsize="256K", extra_path=str(tmp_path))
    r = json.loads(out.strip().splitlines()[-1])
    calls = r["calls"]
    assert ["set_buffer", str(r["ctrl"]), "64"] in calls  # control writes of 24 bytes are not cut to 20
    assert r["services"] == 3  # Life Palette, Battery, Device Information
    scan = next(c for c in calls if c[0] == "scan")
    assert scan == ["scan", "0", "1000000", "30000", "False"]  # passive, 30 ms every second
    adv = next(c for c in calls if c[0] == "advertise")
    assert adv[1] == "200000" and adv[2] == repr(frame.advert(frame24)) and adv[3] == "True"
    notifies = [c for c in calls if c[0] == "notify"]
    assert [c[2] for c in notifies] == [str(r["telem"]), str(r["backlog"])] and notifies[0][1] == "4"
    assert calls.index(["exchange_mtu", "4"]) < calls.index(notifies[0])  # never a notify before the exchange
    assert r["got"] == [list(group_adv), [67] * 24, None]  # the foreign advert never reached the queue
    assert r["backlog_ok"] is False  # after the disconnect
    assert bytes(r["maker"]) == b"Life Palette"
    assert r["usb"] == [["frame", list(frame24)]] * 2  # the same frames, SLIP-framed on USB serial


def test_esp32_radio_mtu_gate(mpy, tmp_path):
    """Notifications only to centrals whose MTU exchange gave >= 27; one that exchanged first is not asked again;
    a small MTU is counted and never notified."""
    (tmp_path / "bluetooth.py").write_text(FAKE_BLUETOOTH)
    frame24 = frame.seal(KEY, frame.TELEMETRY, 258, 3, bytes(13))
    out = mpy.run(textwrap.dedent(f"""
        import io, json, bluetooth
        from hal.esp32.radio import Esp32Radio
        r = Esp32Radio(258, 0xFFFF, "esp32-devkitc", bytes(8), usb=io.BytesIO())
        ble = bluetooth.BLE.last
        ble.handler(1, (4, 0, b"addr"))
        ble.handler(21, (4, 185))          # the central exchanged first
        ble.handler(1, (5, 0, b"addr"))
        r.send({frame24!r})
        ble.handler(21, (5, 23))           # the other one stays at 23
        r.send({frame24!r})
        print(json.dumps({{"calls": [[str(x) for x in c[:2]] for c in ble.calls if c[0] in ("notify", "exchange_mtu")],
                          "errors": r.errors}}))
    """), heapsize="256K", extra_path=str(tmp_path))
    r = json.loads(out.strip().splitlines()[-1])
    assert r["calls"] == [["exchange_mtu", "5"], ["notify", "4"], ["notify", "4"]]
    assert r["errors"][4] == 1
