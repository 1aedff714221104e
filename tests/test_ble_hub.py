"""The hub's unchanged bleak code over Bumble virtual controllers (docs/ARCHITECTURE.md, "Testing without hardware").

Frames are sealed by protocol/ code under the real micropython binary; Bumble peripherals advertise and notify
them. The harness models radio loss the way BLE fails: the link layer retransmits, so a lost notification means
a dropped link (supervision timeout), after which the badge re-sends unacknowledged frames as backlog. Links are
capped as on a Pi. Command frames the hub writes are verified with the badge's key by MicroPython.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

from helpers.waits import until
from lifepalette.ble import bumble_backend as ble_bumble
from lifepalette.ble.bumble_backend import VirtualRadio
from lifepalette.ble.virtual import VirtualPeripheral
from lifepalette.crypto import open_frame
from lifepalette.hub import Hub
from lifepalette.transports.ble import ble_backend_for

from protocol import frame as wire
from protocol import records

N = 24
SEAL_SNIPPET = """
import binascii
from protocol import frame, records
for dev, keyhex in KEYS:
    key = binascii.unhexlify(keyhex)
    for ctr in range(1, N + 1):
        rec = records.pack_telemetry({"hr_bpm": 60 + ctr, "rmssd_ms": 40, "scl": 700 + ctr, "scr_per_min": 2,
                                      "motion": 3, "hue": 20, "chroma": 200, "colour_age": 1,
                                      "consent": records.make_consent(True, True, False, 2), "battery": 77,
                                      "quality": 7})
        live = frame.seal(key, frame.TELEMETRY, dev, ctr, rec)
        back = frame.seal(key, frame.BACKLOG, dev, ctr, rec)
        print(dev, ctr, binascii.hexlify(live).decode(), binascii.hexlify(back).decode(),
              binascii.hexlify(frame.advert(live)).decode())
"""
VERIFY_SNIPPET = """
import sys, binascii
from protocol import frame, records
keys = dict((d, binascii.unhexlify(k)) for d, k in KEYS)
for line in sys.stdin:
    dev, hexframe = line.split()
    rec = frame.open_frame(keys[int(dev)], binascii.unhexlify(hexframe), frame.TO_BADGE)
    if rec is None:
        print(dev, "BAD")
    else:
        c = records.unpack_command(rec)
        print(dev, c["cmd"], c.get("ctr", c.get("r", c.get("unix_s", 0))), c.get("g", 0), c.get("b", 0))
"""


def mpy_frames(mpy, keys: dict[int, bytes]) -> dict[int, dict[int, tuple[bytes, bytes, bytes]]]:
    pairs = [(dev, key.hex()) for dev, key in keys.items()]
    out = mpy.run(f"KEYS = {pairs!r}\nN = {N}\n" + SEAL_SNIPPET)
    frames: dict[int, dict] = {}
    for line in out.strip().splitlines():
        dev, ctr, live, back, adv = line.split()
        frames.setdefault(int(dev), {})[int(ctr)] = (bytes.fromhex(live), bytes.fromhex(back), bytes.fromhex(adv))
    return frames


class BadgeSim:
    """A badge's radio behaviour on a VirtualPeripheral: live notifications, backlog of unacked frames on each new
    link, acks and commands verified with its key (CPython here; MicroPython re-verifies all at the end)."""

    def __init__(self, peripheral: VirtualPeripheral, dev: int, key: bytes, frames: dict):
        self.p, self.dev, self.key, self.frames = peripheral, dev, key, frames
        self.acked = 0
        self.next_ctr = 2  # ctr 1 is the advert
        self.colour = None
        self.links = 0
        self.drops = 0
        self._seen = 0

    def _read_commands(self) -> bool:
        """Process new writes; True if a time sync arrived (the hub's first write on every new link)."""
        synced = False
        while self._seen < len(self.p.received):
            data = self.p.received[self._seen]
            self._seen += 1
            rec = open_frame(self.key, data, wire.TO_BADGE)
            if rec is None:
                continue
            cmd = records.unpack_command(rec)
            if cmd["cmd"] == records.CMD_BACKLOG_ACK:
                self.acked = max(self.acked, cmd["ctr"])
            elif cmd["cmd"] == records.CMD_COLOUR:
                self.colour = (cmd["r"], cmd["g"], cmd["b"])
            elif cmd["cmd"] == records.CMD_TIME:
                synced = True
        return synced

    async def run(self, until_colour: bool) -> None:
        linked = False
        while self.acked < N or (until_colour and self.colour is None):
            synced = self._read_commands()
            if synced:
                linked = True
                self.links += 1
                unacked = [self.frames[c][1] for c in range(self.acked + 1, self.next_ctr)]
                if unacked:
                    await self.p.notify_backlog(unacked)
            if not self.p.connected:
                linked = False
            if linked and self.next_ctr <= N:
                ok = await self.p.notify_telemetry(self.frames[self.next_ctr][0])
                self.next_ctr += 1
                if not ok:  # lost on air: the link layer gives up, the link drops
                    self.drops += 1
                    linked = False
                    for conn in list(self.p.device.connections.values()):
                        await conn.disconnect()
            await asyncio.sleep(0.01)


def test_hub_over_bumble_adverts_gatt_backlog_acks_and_colour(tmp_path, mpy):
    db = str(tmp_path / "hub.db")
    hub = Hub(db, scorer=None, ble_backend=None, cadence_s=0.2)
    keys = {dev: hub.enroll(dev) for dev in (0x0102, 0x0103)}
    hub.store.con.close()
    frames = mpy_frames(mpy, keys)

    async def main():
        radio = VirtualRadio(max_links=2)
        hub = Hub(db, scorer=None, ble_backend=ble_backend_for(radio), ble_max_links=2, cadence_s=0.2)
        hub.ble.connect_backoff_s = 0.2
        sims = []
        for i, dev in enumerate(keys):
            p = VirtualPeripheral(radio.link, f"F0:F0:F0:F0:F0:0{i + 1}", f"LP-{dev:04X}", loss=0.12, seed=3 + i)
            await p.start()
            await p.advertise(frames[dev][1][2])
            sims.append(BadgeSim(p, dev, keys[dev], frames[dev]))
        await hub.start()

        async def colour_when_linked():
            while 0x0102 not in hub.ble.links:
                await asyncio.sleep(0.02)
            hub.set_colour(0x0102, (255, 64, 0))

        await asyncio.wait_for(asyncio.gather(colour_when_linked(), *(s.run(s.dev == 0x0102) for s in sims)), 60)
        state = hub.operator_state()
        await hub.stop()
        return sims, state

    sims, state = asyncio.run(main())
    con = sqlite3.connect(db)
    for sim in sims:
        rows = con.execute("SELECT ctr, link FROM frames WHERE dev_id = ? ORDER BY ctr", (sim.dev,)).fetchall()
        assert [r[0] for r in rows] == list(range(1, N + 1)), "every frame stored once, in counter order"
        assert rows[0][1] == "ble-adv" and {r[1] for r in rows[1:]} == {"ble-gatt"}
        assert con.execute("SELECT COUNT(*) FROM physio WHERE dev_id = ?", (sim.dev,)).fetchone()[0] == N
    assert sum(s.drops for s in sims) >= 1 and sum(s.links for s in sims) > len(sims), "loss forced relinks"
    assert con.execute("SELECT COUNT(*) FROM frames WHERE ftype = 4").fetchone()[0] >= 1, "backlog merged"
    con.close()
    assert sims[0].colour == (255, 64, 0)
    assert state["rejections"]["mic"] == 0 and state["internal_errors"] == 0

    # The badge side (protocol/ under real MicroPython) verifies every command the hub wrote.
    lines = "".join(f"{s.dev} {f.hex()}\n" for s in sims for f in s.p.received)
    pairs = [(dev, key.hex()) for dev, key in keys.items()]
    out = mpy.run(f"KEYS = {pairs!r}\n" + VERIFY_SNIPPET, stdin=lines.encode()).split("\n")
    verdicts = [line.split() for line in out if line.strip()]
    assert verdicts and all(v[1] != "BAD" for v in verdicts)
    acks = [int(v[2]) for v in verdicts if v[0] == str(0x0102) and v[1] == str(records.CMD_BACKLOG_ACK)]
    assert max(acks) == N
    assert [str(records.CMD_COLOUR), "255", "64", "0"] in [v[1:] for v in verdicts if v[0] == str(0x0102)]


def test_ble_link_cap_and_bad_input_never_crash(tmp_path, mpy):
    db = str(tmp_path / "hub.db")
    hub = Hub(db, scorer=None)
    key = hub.enroll(0x0201)
    other = hub.enroll(0x0202)
    hub.store.con.close()
    frames = mpy_frames(mpy, {0x0201: key, 0x0202: other})

    async def main():
        radio = VirtualRadio(max_links=1)  # the controller has fewer slots than the hub asks for
        hub = Hub(db, scorer=None, ble_backend=ble_backend_for(radio), ble_max_links=2, cadence_s=0.5)
        hub.ble.connect_backoff_s = 0.2
        ps = []
        for i, dev in enumerate((0x0201, 0x0202)):
            p = VirtualPeripheral(radio.link, f"F0:F0:F0:F0:F1:0{i + 1}", f"LP-{dev:04X}")
            await p.start()
            await p.advertise(frames[dev][1][2])
            ps.append(p)
        await hub.start()
        while not hub.ble.links or radio.refused == 0:
            await asyncio.sleep(0.05)
        linked = next(iter(hub.ble.links))
        p = ps[0] if linked == 0x0201 else ps[1]
        f = frames[linked]
        plain = bytearray(f[2][0])
        plain[0] &= ~0x10
        forged = bytearray(f[3][0])
        forged[12] ^= 0x40
        await asyncio.sleep(0.2)
        for data in (b"\x01\x02", f[2][0][:20], bytes(plain), f[2][0], bytes(forged), f[1][0], bytes(30)):
            await p.notify_raw(data)
        await p.notify_raw(f[3][1] + b"\x00" * 5, backlog=True)  # truncated backlog burst
        await p.notify_raw(f[4][0])  # and a good frame still gets through
        # notifications arrive in order: once counter 4 is verified, every bad input before it has been judged;
        # the refused second link is counted when the hub's connect attempt gives up
        await until(lambda: hub.store.counters.get(linked) == 4 and hub.ble.stats["connect_failures"] >= 1,
                    what="the good frame after the bad input, and the refused link counted")
        hub.flush()
        state = hub.operator_state()
        await hub.stop()
        return linked, state, radio.refused

    linked, state, refused = asyncio.run(main())
    assert refused >= 1 and state["links"]["ble"]["connect_failures"] >= 1
    rej = state["rejections"]
    assert rej["length"] >= 4 and rej["unsealed"] >= 1 and rej["mic"] >= 1 and rej["replay"] >= 1
    assert state["internal_errors"] == 0
    con = sqlite3.connect(db)
    stored = [r[0] for r in con.execute("SELECT ctr FROM frames WHERE dev_id = ? ORDER BY ctr", (linked,))]
    con.close()
    assert stored == [1, 2, 4]
    json.dumps(state, default=str)


class _BlueZLikeClient(ble_bumble.BumbleClient):
    """bleak's BlueZ backend reports the minimum MTU (23) until `_acquire_mtu()` is called, although BlueZ has
    exchanged a larger one on connect; this backend shows the same contract over Bumble."""

    _acquired = False

    @property
    def mtu_size(self) -> int:
        return super().mtu_size if self._acquired else 23

    async def _acquire_mtu(self) -> None:
        self._acquired = True


def _short_mtu_run(tmp_path, mpy, caplog, *, peripheral_max_mtu: int, client_cls=None):
    import logging

    db = str(tmp_path / "hub.db")
    hub = Hub(db, scorer=None)
    key = hub.enroll(0x0301)
    hub.store.con.close()
    frames = mpy_frames(mpy, {0x0301: key})[0x0301]

    async def main():
        radio = VirtualRadio(max_links=2)
        backend = ble_backend_for(radio)
        if client_cls is not None:
            backend.client_cls = client_cls
        hub = Hub(db, scorer=None, ble_backend=backend, cadence_s=0.2)
        p = VirtualPeripheral(radio.link, "F0:F0:F0:F0:F2:01", "LP-0301")
        p.device.gatt_server.max_mtu = peripheral_max_mtu  # what this badge's stack will accept
        await p.start()
        await p.advertise(frames[1][2])
        await hub.start()
        # the link is whole once the hub routes commands over it: after the MTU check and the subscriptions
        await until(lambda: 0x0301 in hub.routes, what="the GATT link up and routed")
        mtu = min(c.att_mtu for c in p.device.connections.values())
        state = hub.operator_state()
        await hub.stop()
        return mtu, state

    with caplog.at_level(logging.INFO, logger="lifepalette.hub.ble"):
        return asyncio.run(main())


def test_hub_says_why_a_link_below_mtu_27_gets_no_notifications(tmp_path, mpy, caplog):
    """A badge notifies only over a link whose ATT MTU carries a whole 24-byte frame (>= 27); over a stack that
    never gets there, the hub's log and console say why no notification comes (its frames still come as adverts)."""
    mtu, state = _short_mtu_run(tmp_path, mpy, caplog, peripheral_max_mtu=23)
    assert mtu == 23
    why = [r.getMessage() for r in caplog.records if "ATT MTU" in r.getMessage()]
    assert why and "badge 769: ATT MTU 23" in why[0] and "no notifications" in why[0], caplog.text
    assert state["links"]["ble"]["short_mtu_links"] == 1


def test_hub_reads_the_exchanged_mtu_on_a_bluez_like_backend(tmp_path, mpy, caplog):
    """On BlueZ, bleak's mtu_size is 23 until the MTU is acquired: the hub must ask, not warn of a short link."""
    mtu, state = _short_mtu_run(tmp_path, mpy, caplog, peripheral_max_mtu=247, client_cls=_BlueZLikeClient)
    assert mtu == 247
    assert "ATT MTU" not in caplog.text and state["links"]["ble"]["short_mtu_links"] == 0
