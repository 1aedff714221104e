"""Hub ingest over real UDP sockets into a real SQLite file: verification, consent enforcement, dedup, backlog
merge, acknowledgements, group colour out, rejections by reason, and counters that survive a restart."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3

import pytest
from helpers.waits import until
from lifepalette.crypto import open_frame, seal
from lifepalette.hub import Hub
from lifepalette.hub.ingest import IngestCore
from lifepalette.hub.loadgen import backlog_frame, telemetry_frame, telemetry_record

from protocol import frame as wire
from protocol import records


class Core(IngestCore):
    """The ingest core driven by direct calls, with its own clocks and a record of the acks it would send."""

    def __init__(self, db, devs=(1, 2), **kw):
        self.now = 1_700_000_000.0
        self.mono = 0.0
        super().__init__(db, clock=lambda: self.now, monotonic=lambda: self.mono, **kw)
        self.acks: list[tuple[int, int]] = []
        for dev in devs:
            self.enroll(dev)

    def on_acked(self, dev_id, ctr):
        self.acks.append((dev_id, ctr))


def make_hub(db, devs=(1, 2), **kw) -> Hub:
    hub = Hub(db, udp=("127.0.0.1", 0), scorer=None, cadence_s=kw.pop("cadence_s", 0.05), **kw)
    for dev in devs:
        hub.enroll(dev)
    return hub


class Badge:
    """A UDP badge endpoint for tests: sends frames, collects the hub's replies."""

    def __init__(self, hub: Hub, dev: int):
        self.dev = dev
        self.key = hub.keys[dev]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.addr = ("127.0.0.1", hub.transports[0].port)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.addr)

    def replies(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(64))
            except BlockingIOError:
                return out


def fresh_rows(db, sql, *params):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_udp_frames_stored_acked_and_group_colour_sent(tmp_path):
    db = str(tmp_path / "hub.db")

    async def main():
        hub = make_hub(db)
        listening = await hub.start()
        assert listening[0].startswith("udp 127.0.0.1:")
        badge = Badge(hub, 1)
        for ctr in range(1, 11):
            badge.send(telemetry_frame(badge.key, 1, ctr))
        await until(lambda: hub.acked.get(1) == 10, what="all 10 frames stored and acked")
        ticks = hub.score_ticks
        await until(lambda: hub.score_ticks > ticks, what="a scoring tick after the frames: group colour goes out")
        replies = badge.replies()
        state = hub.operator_state()
        group_key = hub.group_key
        await hub.stop()
        return replies, state, group_key

    replies, state, group_key = asyncio.run(main())
    assert fresh_rows(db, "SELECT COUNT(*) FROM frames WHERE dev_id = 1") == [(10,)]
    assert fresh_rows(db, "SELECT COUNT(*) FROM physio WHERE dev_id = 1") == [(10,)]
    assert fresh_rows(db, "SELECT last_ctr FROM counters WHERE dev_id = 1") == [(10,)]
    acks, colours = [], []
    for data in replies:
        _h, ftype, dev, _c = wire.parse_header(data)
        if ftype == wire.COMMAND:
            rec = open_frame(badge_key(db, 1), data, wire.TO_BADGE)
            assert rec is not None, "command frames must verify with the badge key"
            acks.append(records.unpack_command(rec))
        elif ftype == wire.GROUP_COLOUR:
            rec = open_frame(group_key, data, wire.TO_BADGE)
            assert rec is not None, "group colour must verify with the group key"
            colours.append(records.unpack_group_colour(rec))
    assert max(a["ctr"] for a in acks if a["cmd"] == records.CMD_BACKLOG_ACK) == 10
    assert colours and colours[-1]["ttl_s"] > 0
    assert state["accepted"] == 10 and state["badges"][0]["dev_id"] == 1
    assert state["badges"][0]["battery"] == 80


def badge_key(db, dev):
    from lifepalette.hub.sitekey import derive_device_key, load_site_key

    return derive_device_key(load_site_key(db, create=False), dev)


def test_consent_enforced_physiology_and_colour_dropped(tmp_path):
    db = str(tmp_path / "hub.db")
    core = Core(db)
    key = core.keys[2]
    assert core.ingest(telemetry_frame(key, 2, 1, physio=False, colour=True)).ok
    # A badge that (wrongly) sends physiology while its consent bit is clear: the hub drops it anyway.
    sneaky = records.unpack_telemetry(telemetry_record(2, physio=True, colour=False))
    sneaky["consent"] = records.make_consent(physio=False, colour=False, revision=1)
    assert core.ingest(seal(key, wire.TELEMETRY, 2, 2, records.pack_telemetry(sneaky))).ok
    assert core.ingest(telemetry_frame(key, 2, 3, physio=True, paused=True)).ok
    assert core.ingest(seal(key, wire.HEARTBEAT, 2, 4, records.pack_heartbeat(records.make_consent(revision=1), 50))).ok
    core.flush()
    core.store.close()
    assert fresh_rows(db, "SELECT COUNT(*) FROM frames WHERE dev_id = 2") == [(4,)]
    assert fresh_rows(db, "SELECT COUNT(*) FROM physio") == [(0,)]
    hues = fresh_rows(db, "SELECT ctr, hue FROM frames ORDER BY ctr")
    assert hues[0][1] is not None and hues[1][1] is None  # colour only where the colour bit allowed it


def test_backlog_merges_in_order_and_duplicates_drop(tmp_path):
    db = str(tmp_path / "hub.db")
    core = Core(db)
    key = core.keys[1]
    for ctr in (1, 2, 5, 6):  # live: 3 and 4 were lost on air
        core.ingest(telemetry_frame(key, 1, ctr))
    core.flush()
    assert core.acks == [(1, 2)]  # not 6: a backlog ack covers everything below it, and 3, 4 may still come
    for ctr in (3, 4, 5):  # backlog re-sends 3, 4 and (again) 5
        core.ingest(backlog_frame(key, 1, ctr))
    core.ingest(telemetry_frame(key, 1, 6))  # identical repeat of the last live frame
    core.flush()
    assert core.acks == [(1, 2), (1, 6)]
    assert core.rejections == {"duplicate": 1}
    core.store.close()
    assert fresh_rows(db, "SELECT ctr FROM frames WHERE dev_id = 1 ORDER BY ctr") == [(c,) for c in range(1, 7)]
    assert fresh_rows(db, "SELECT ftype FROM frames WHERE ctr IN (3, 4) ORDER BY ctr") == [(4,), (4,)]
    assert fresh_rows(db, "SELECT last_ctr FROM counters WHERE dev_id = 1") == [(6,)]  # backlog never moves it


def test_an_ack_gap_is_never_skipped_on_time_alone(tmp_path):
    core = Core(str(tmp_path / "hub.db"))
    key = core.keys[1]
    for ctr in (1, 2, 3, 5, 6):  # 4 was dropped on air: the badge still holds it and re-sends it as backlog
        core.ingest(telemetry_frame(key, 1, ctr))
    core.flush()
    for ctr in range(7, 40):  # a minute passes, one live frame a second
        core.mono += 2.0
        core.ingest(telemetry_frame(key, 1, ctr))
        core.flush()
    assert core.acks == [(1, 3)], "acked past frame 4, which the hub never stored: the badge would delete it"
    core.ingest(backlog_frame(key, 1, 4))
    core.flush()
    assert core.acks == [(1, 3), (1, 39)]
    core.store.close()


def test_an_ack_gap_is_skipped_once_the_badges_ring_has_overwritten_it(tmp_path):
    """The badge keeps its last RING_SLOTS telemetry records: once that many newer telemetry frames are stored, a
    missing one (a reboot's counter jump, or a frame lost beyond the ring) can never come, so acking past it is
    safe; heartbeats are never in the ring and do not count."""
    from lifepalette.hub.ingest import RING_SLOTS

    core = Core(str(tmp_path / "hub.db"), devs=(1,))
    key = core.keys[1]
    core.ingest(telemetry_frame(key, 1, 1))
    for ctr in range(3, 3 + 50):  # heartbeats above the gap prove nothing
        core.ingest(seal(key, wire.HEARTBEAT, 1, ctr, bytes(13)))
    core.flush()
    first = 3 + 50
    for ctr in range(first, first + RING_SLOTS - 1):
        core.ingest(telemetry_frame(key, 1, ctr))
    core.flush()
    assert core.acks == [(1, 1)]
    core.ingest(telemetry_frame(key, 1, first + RING_SLOTS - 1))  # the RING_SLOTS-th: frame 2 is overwritten now
    core.flush()
    assert core.acks == [(1, 1), (1, first + RING_SLOTS - 1)]
    core.store.close()


def test_a_restarted_hub_does_not_ack_past_a_gap(tmp_path):
    db = str(tmp_path / "hub.db")
    core = Core(db, devs=(1,))
    key = core.keys[1]
    for ctr in (1, 2, 3, 5, 6):
        core.ingest(telemetry_frame(key, 1, ctr))
    core.flush()
    core.store.close()
    again = Core(db, devs=(1,))
    again.now += 10
    again.ingest(telemetry_frame(key, 1, 7))
    again.flush()
    assert again.acks == [(1, 3)]
    again.ingest(backlog_frame(key, 1, 4))
    again.flush()
    assert again.acks == [(1, 3), (1, 7)]
    again.store.close()


def fill_the_disk(con: sqlite3.Connection) -> None:
    """SQLite's own size cap at the file's current size: every write that needs a new page now fails with
    "database or disk is full", exactly as on a full disk."""
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute(f"PRAGMA max_page_count={pages}")


def test_a_failed_flush_loses_nothing_and_its_erasure_stays_pending_until_committed(tmp_path):
    db = str(tmp_path / "hub.db")
    hub = make_hub(db, devs=(1,))
    key = hub.keys[1]
    for ctr in range(1, 21):
        assert hub.ingest(telemetry_frame(key, 1, ctr, revision=1)).ok
    hub.flush()
    assert hub.acked == {1: 20} and hub.store.count_physio(1) == 20
    fill_the_disk(hub.store.con)
    for ctr in range(21, 301):
        assert hub.ingest(telemetry_frame(key, 1, ctr, revision=1)).ok
    hub.ingest(telemetry_frame(key, 1, 301, physio=False, revision=2))  # the wearer revokes: erase epoch 1
    errors = hub.internal_errors
    hub.flush()
    assert hub.internal_errors > errors, "the flush failed (the disk is full)"
    assert hub.acked == {1: 20}, "nothing uncommitted is acknowledged"
    state = hub.operator_state()
    pending = state["erasures_pending"]
    assert [(p["dev_id"], p["epoch"], p["reason"]) for p in pending] == [(1, 1, "revocation")]
    assert [e["erased"] for e in state["consent_epochs"]] == [True, False]
    hub.flush()  # still full: still pending, nothing lost
    assert len(hub.operator_state()["erasures_pending"]) == 1

    hub.store.con.execute("PRAGMA max_page_count=1073741823")  # space returns
    hub.flush()
    assert hub.acked == {1: 301}
    assert fresh_rows(db, "SELECT COUNT(*), MIN(ctr), MAX(ctr) FROM frames") == [(301, 1, 301)]
    assert fresh_rows(db, "SELECT COUNT(*) FROM physio WHERE dev_id = 1") == [(0,)]
    assert fresh_rows(db, "SELECT epoch, erased FROM consent_epochs ORDER BY epoch") == [(1, 1), (2, 0)]
    assert fresh_rows(db, "SELECT dev_id, epoch, rows, reason FROM erasures") == [(1, 1, 300, "revocation")]
    state = hub.operator_state()
    assert state["erasures_pending"] == []
    assert state["erasures"][0]["rows"] == 300 and state["erasures"][0]["reason"] == "revocation"
    hub.store.con.close()


def bad_frames(key: bytes, other_key: bytes) -> dict[str, list[bytes]]:
    good = telemetry_frame(key, 1, 100)
    plain = bytearray(good)
    plain[0] &= ~0x10
    forged = bytearray(telemetry_frame(key, 1, 101))
    forged[10] ^= 0x01
    version = bytearray(telemetry_frame(key, 1, 102))
    version[0] = (2 << 5) | (version[0] & 0x1F)
    return {
        "length": [b"", b"\x00", good[:23], good + b"\x00", bytes(64)],
        "unsealed": [bytes(plain)],
        "mic": [bytes(forged), telemetry_frame(other_key, 1, 103)],
        "version": [bytes(version)],
        "unknown_device": [telemetry_frame(key, 999, 1)],
        "type": [seal(key, wire.COMMAND, 1, 104, bytes(13), wire.TO_HUB)],
        "replay": [telemetry_frame(key, 1, 5)],
    }


def test_bad_frames_counted_by_reason_never_stored(tmp_path):
    db = str(tmp_path / "hub.db")
    core = Core(db)
    key = core.keys[1]
    for ctr in range(1, 11):
        assert core.ingest(telemetry_frame(key, 1, ctr)).ok
    core.flush()
    bad = bad_frames(key, bytes(16))
    for reason, frames in bad.items():
        for data in frames:
            verdict = core.ingest(data)
            assert not verdict.ok and verdict.reason == reason
    assert core.ingest(telemetry_frame(key, 1, 11)).ok  # the hub still works afterwards
    core.flush()
    assert core.rejections == {reason: len(frames) for reason, frames in bad.items()}
    assert core.internal_errors == 0
    core.store.close()
    assert fresh_rows(db, "SELECT COUNT(*), MAX(ctr) FROM frames") == [(11, 11)]


def test_restart_keeps_counters_no_replay_window(tmp_path):
    db = str(tmp_path / "hub.db")
    hub = make_hub(db)
    key = hub.keys[1]
    for ctr in range(1, 6):
        assert hub.ingest(telemetry_frame(key, 1, ctr)).ok
    hub.flush()
    hub.store.con.close()
    again = Hub(db, scorer=None)
    verdict = again.ingest(telemetry_frame(key, 1, 3))
    assert not verdict.ok and verdict.reason == "replay"
    assert again.ingest(telemetry_frame(key, 1, 6)).ok
    again.flush()
    assert again.store.count_frames() == 6
    again.store.con.close()


@pytest.mark.parametrize("revoke", ["bit", "skip"])
def test_revocation_erases_epoch_with_receipt(tmp_path, revoke):
    db = str(tmp_path / "hub.db")
    hub = make_hub(db)
    key = hub.keys[1]
    for ctr in range(1, 21):
        assert hub.ingest(telemetry_frame(key, 1, ctr, revision=3)).ok
    hub.flush()
    assert hub.store.count_physio(1) == 20
    if revoke == "bit":  # wearer withdraws physiology consent: new revision, physio bit clear
        hub.ingest(telemetry_frame(key, 1, 21, physio=False, revision=4))
    else:  # revision jumps past one the hub never saw: consent may have been withdrawn in between
        hub.ingest(telemetry_frame(key, 1, 21, physio=True, revision=6))
    hub.flush()
    assert hub.store.count_physio(1) == (0 if revoke == "bit" else 1)
    receipt = hub.operator_state()["erasures"][0]
    assert receipt["dev_id"] == 1 and receipt["epoch"] == 1 and receipt["rows"] == 20
    assert receipt["reason"] == "revocation"
    # A late backlog copy from the revoked epoch must not bring the physiology back.
    hub.ingest(backlog_frame(key, 1, 7, revision=3))
    hub.flush()
    assert fresh_rows(db, "SELECT COUNT(*) FROM physio WHERE ctr = 7") == [(0,)]
    epochs = hub.operator_state()["consent_epochs"]
    assert [e["erased"] for e in epochs] == [True, False]
    hub.store.con.close()


def test_scoring_cadence_with_cove_scorer_public_view_is_aggregate_only(tmp_path):
    db = str(tmp_path / "hub.db")
    hub = Hub(db, udp=None, cadence_s=0.05)
    assert hub.scorer is not None, "lifepalette.scoring.CoveScorer is wired in"
    keys = {dev: hub.enroll(dev) for dev in range(1, 8)}
    ticks = []
    hub.subscribe(lambda: ticks.append(1))
    for ctr in range(1, 4):
        for dev, key in keys.items():
            assert hub.ingest(telemetry_frame(key, dev, ctr)).ok
    hub.tick()
    public, operator = hub.public_view().to_json(), hub.operator_state()
    assert ticks == [1] and operator["scoring"]["ticks"] == 1 and operator["internal_errors"] == 0
    assert public["contributors"] == 7 and public["ready"] and public["palette"]["rgb"]
    assert "wearers" not in operator["scores"] and "pairs" not in operator["scores"]
    text = repr(public)
    assert "dev_id" not in text and "hr_bpm" not in text
    hub.store.con.close()


def test_public_views_go_through_the_sessions_release_and_its_budget(tmp_path):
    """Issue 13: every request sees the same released numbers within an epoch (no fresh noise to average away), the
    operator and the store see the budget spent, and a session starts its own budget."""
    hub = Hub(str(tmp_path / "hub.db"), udp=None, cadence_s=0.05)
    keys = {dev: hub.enroll(dev) for dev in range(1, 8)}
    for ctr in range(1, 4):
        for dev, key in keys.items():
            assert hub.ingest(telemetry_frame(key, dev, ctr)).ok
    hub.tick()
    views = [hub.public_view() for _ in range(20)]
    assert len({(v.arousal, v.synchrony, v.palette) for v in views}) == 1 and views[0].ready
    status = hub.operator_state()["privacy"]  # no arousal yet (no baseline): an epoch that spent nothing
    assert status["epochs"] == 1 and status["spent"] == status["releases"] == 0 and status["limit"] > 0
    assert json.loads(hub.store.get_meta("public_budget"))["epochs"] == 1
    hub.start_session()
    assert hub.operator_state()["privacy"]["epochs"] == 0
    hub.public_view()
    recorded = json.loads(hub.store.get_meta("public_budget"))
    assert recorded["session"] == hub.session_id and recorded["epochs"] == 1
    hub.store.con.close()


def test_batched_rows_follow_the_declared_row_types(tmp_path):
    from lifepalette.boundary import FrameRow, PhysioRow

    core = Core(str(tmp_path / "hub.db"))
    assert core.ingest(telemetry_frame(core.keys[2], 2, 7, physio=True, colour=True)).ok
    frame_row = FrameRow._make(core.store.batch.frames[0])
    physio_row = PhysioRow._make(core.store.batch.physio[0])
    assert (frame_row.dev_id, frame_row.ctr, frame_row.ftype, frame_row.t_rx, frame_row.link) == \
        (2, 7, wire.TELEMETRY, core.now, "udp")
    assert frame_row.epoch == physio_row.epoch == 1 and frame_row.battery == 80 and frame_row.hue is not None
    assert (physio_row.dev_id, physio_row.ctr) == (2, 7) and physio_row.hr_bpm is not None
    core.flush()
    stored = core.store.con.execute("SELECT * FROM frames").fetchall()
    assert [FrameRow._make(r) for r in stored] == [frame_row]
    core.store.close()


def test_erase_through_the_hub_returns_its_receipt_and_keeps_the_epoch_erased(tmp_path):
    """`erase(dev_id, epoch, reason)`: what the console and a wearer's own erasure page call."""
    from lifepalette.errors import UsageError

    db = str(tmp_path / "hub.db")
    hub = make_hub(db, devs=(1,))
    key = hub.keys[1]
    for ctr in range(1, 11):
        assert hub.ingest(telemetry_frame(key, 1, ctr)).ok
    receipt = hub.erase(1, None, reason="wearer")
    assert (receipt["dev_id"], receipt["epoch"], receipt["rows"], receipt["reason"]) == (1, None, 10, "wearer")
    assert receipt["pending"] is False and receipt["scrubbed"] is True
    assert hub.operator_state()["erasures"][0]["reason"] == "wearer"
    for ctr in range(11, 21):  # the same epoch goes on: no physiology for it any more
        assert hub.ingest(telemetry_frame(key, 1, ctr)).ok
    hub.flush()
    assert fresh_rows(db, "SELECT COUNT(*) FROM physio") == [(0,)]
    assert fresh_rows(db, "SELECT COUNT(*) FROM frames") == [(20,)]
    with pytest.raises(UsageError, match="device 9 is not enrolled"):
        hub.erase(9)
    with pytest.raises(UsageError, match="no consent epoch 5"):
        hub.erase(1, 5)
    hub.store.con.close()


def test_an_erasure_the_journal_cannot_take_yet_waits_for_it_and_is_then_carried_out(tmp_path):
    """The journal line comes first: while it cannot be written, the erasure is pending (not journaled) and not
    carried out; once the journal takes it, the flush commits it."""
    import os

    from lifepalette.hub.erasure_journal import ErasureJournal, journal_path

    db = str(tmp_path / "hub.db")
    hub = make_hub(db, devs=(1,))
    key = hub.keys[1]
    for ctr in range(1, 11):
        assert hub.ingest(telemetry_frame(key, 1, ctr, revision=1)).ok
    hub.flush()
    journal = journal_path(db)
    journal.unlink(missing_ok=True)
    os.mkdir(journal)  # a directory where the journal file goes: every append fails
    hub.ingest(telemetry_frame(key, 1, 11, physio=False, revision=2))
    hub.flush()
    pending = hub.operator_state()["erasures_pending"]
    assert [(p["dev_id"], p["epoch"], p["journaled"]) for p in pending] == [(1, 1, False)]
    assert hub.store.count_physio(1) == 10 and hub.acked == {1: 10}
    os.rmdir(journal)
    hub.flush()
    assert hub.operator_state()["erasures_pending"] == [] and hub.acked == {1: 11}
    assert hub.store.count_physio(1) == 0
    assert [i.id for i in ErasureJournal(db).read()] == [pending[0]["intent"]]
    hub.store.con.close()
