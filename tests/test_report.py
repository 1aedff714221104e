"""The facilitator's session report: its data functions (lifepalette.report.data, hub/journey.py) and the
`lifepalette report` command on real hub databases (real SQLite, written by the hub's own Store)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from lifepalette import cli
from lifepalette.boundary import BoundaryError, GroupAggregate, Palette, PhysioRow, PublicView
from lifepalette.errors import UsageError
from lifepalette.hub.journey import Journey, point_to_json
from lifepalette.hub.store import Store
from lifepalette.report import data
from lifepalette.report.load import load_report

from protocol import records

DEVS = [5101 + i for i in range(6)]  # distinctive numbers: easy to spot if they ever leak
T0 = 1_790_000_000.0
CONSENT = records.make_consent(physio=True, colour=True)


def view(t: float, n: int, a: float | None = None, s: float | None = None, rgb=(200, 80, 40), session=True,
         groups=()) -> PublicView:
    if n < 5:
        return PublicView.withheld(n, session=session, updated=t)
    return PublicView(n, palette=Palette(rgb, a, s), arousal=a, synchrony=s, groups=groups, session=session,
                      updated=t)


# -- the journey ------------------------------------------------------------------------------------------------
def test_journey_keeps_changes_and_a_heartbeat_and_starts_afresh_with_a_session():
    j = Journey(hold_s=10)
    assert j.note(view(0, 3, session=False))
    assert not j.note(view(1, 3, session=False))  # same numbers, soon after: nothing new to draw
    assert j.note(view(11, 3, session=False))  # same numbers, but time went on
    assert j.note(view(12, 6, 0.4, 0.2, session=False))
    assert not j.note(view(5, 6, 0.9, 0.2, session=False))  # older than the last point
    assert [p.contributors for p in j.points] == [3, 3, 6]
    assert j.note(view(20, 6, 0.5, 0.3, session=True))  # a session starts: its journey starts with it
    assert [p.updated for p in j.points] == [20]
    assert j.note(view(21, 6, 0.6, 0.3, session=True)) and len(j.points) == 2


def test_journey_points_drop_swatches_and_come_back_through_the_boundary():
    released = PublicView(6, palette=Palette((10, 20, 30), 0.5, 0.25), arousal=0.5, synchrony=0.25,
                          groups=(GroupAggregate("A", 5, 0.4, 0.1, (1, 2, 3)),), swatches=("#ff0000",) * 6,
                          updated=100.0, cove="x", seq=7)
    j = Journey()
    j.note(released)
    assert j.points[0].swatches == ()  # single wearers' colours are not the group's journey
    stored = json.loads(json.dumps(j.to_stored()))
    back = Journey.from_stored(stored).points[0]
    assert (back.contributors, back.arousal, back.synchrony, back.palette, back.groups) == (
        6, 0.5, 0.25, released.palette, released.groups)
    assert point_to_json(view(3, 2)) == {"t": 3, "n": 2}  # the wall's compact form: nothing while waiting
    assert set(point_to_json(back)) == {"t", "n", "rgb", "a", "s", "b", "c", "g"}
    few = dict(stored[0], contributors=3)  # numbers over fewer than k people never come back in
    with pytest.raises(BoundaryError):
        Journey.from_stored([few])
    with pytest.raises(BoundaryError):
        Journey.from_stored([dict(stored[0], dev_id=5101)])  # nor anything the contract does not name
    with pytest.raises(BoundaryError):
        Journey.from_stored({"points": stored})


# -- the data functions -----------------------------------------------------------------------------------------
SESSIONS = [(1, 100.0, 200.0, True), (2, 300.0, None, False)]


def test_choose_session_defaults_to_the_latest_and_refuses_an_unknown_one():
    assert data.choose_session(SESSIONS, None, (0, 1)).id == 2
    assert data.choose_session(SESSIONS, 1, (0, 1)) == data.Session(1, 100.0, 200.0, True)
    with pytest.raises(UsageError, match="no session 3 .*sessions held: 1-2"):
        data.choose_session(SESSIONS, 3, (0, 1))
    whole = data.choose_session([], None, (5.0, 50.0))
    assert (whole.id, whole.started_at, whole.ended_at) == (None, 5.0, 50.0)
    with pytest.raises(UsageError, match="nothing to report"):
        data.choose_session([], None, None)
    with pytest.raises(UsageError, match="holds no session"):
        data.choose_session([], 1, (5.0, 50.0))


def test_ribbon_holds_each_release_until_the_next_and_marks_the_waiting_stretches():
    points = [view(0, 3), view(10, 6, 0.5, 0.2, rgb=(255, 0, 0)), view(25, 6, 0.7, 0.3, rgb=(0, 0, 255))]
    segs = data.ribbon(points, end=40)
    assert [(s.t0, s.t1, s.hex) for s in segs] == [(0, 10, None), (10, 25, "#ff0000"), (25, 40, "#0000ff")]
    assert segs[2].arousal == 0.7


def test_trajectories_break_where_an_aggregate_was_withheld():
    ga = GroupAggregate("A", 5, 0.3, 0.6)
    points = [view(0, 6, 0.5, 0.2, groups=(ga,)), view(10, 3), view(20, 6, 0.4, 0.1)]
    traj = data.trajectories(points)
    assert list(traj) == ["cove", "A"]
    assert traj["cove"] == [(0, 0.5, 0.2), (10, None, None), (20, 0.4, 0.1)]
    assert traj["A"] == [(0, 0.3, 0.6), (10, None, None), (20, None, None)]
    assert data.contributors_over_time(points) == [(0, 6), (10, 3), (20, 6)]


def frame_rows(devs, seconds, *, quality=records.Q_SKIN, consent=CONSENT, start=0.0):
    return [(start + t, dev, 0, consent, quality, True) for t in range(seconds) for dev in devs]


def test_data_quality_is_withheld_below_k_wearers_and_shares_all_frames_above():
    assert data.data_quality(frame_rows([1, 2, 3, 4], 10), 0.0).withheld
    rows = frame_rows([1, 2, 3, 4, 5], 120)
    rows += [(t, 6, 0, records.make_consent(physio=False, colour=True), 0, False) for t in range(60)]
    rows += [(5.0, 1, 1, 0, records.Q_SAFE_MODE, False), (6.0, 2, 1, 0, 0, False)]
    q = data.data_quality(rows, 0.0)
    assert not q.withheld and q.telemetry_frames == 660 and q.heartbeat_frames == 2
    assert q.skin_contact == round(600 / 660, 4) and q.no_physio_consent == round(60 / 660, 4)
    assert q.physio_kept == round(600 / 660, 4) and q.safe_mode == 0.5
    assert q.per_minute == ((0.0, round(300 / 360, 4)), (60.0, 1.0))


def test_consent_events_and_erasures_count_only_the_session_s_own():
    session = data.Session(1, 100.0, 200.0)
    epochs = [(0, 50.0, None, None, False), (1, 120.0, 150.0, 9, True), (2, 130.0, None, None, False),
              (3, 250.0, None, None, True)]
    assert data.consent_events(epochs, session, now=999) == data.ConsentEvents(opened=2, revoked=1, erased=1)
    receipts = [(90.0, "request", 10), (150.0, "revoked", 4), (160.0, "request", 3), (170.0, "request", 8),
                (300.0, "request", 1)]
    assert data.erasures_in(receipts, session, now=999) == data.Erasures(3, (("request", 2), ("revoked", 1)))
    running = data.Session(2, 100.0, None)
    assert data.erasures_in(receipts, running, now=400).total == 4  # 90.0 came before it


def test_budget_of_takes_a_recorded_status_and_refuses_anything_else():
    assert data.budget_of({"spent": 1.5, "limit": 10, "fraction": 0.15, "other": 1}) == {
        "spent": 1.5, "limit": 10, "fraction": 0.15}
    assert data.budget_of({"spent": 1}) is None and data.budget_of("x") is None


# -- the command on a real hub database -------------------------------------------------------------------------
def hr_of(dev: int, t: int) -> int:
    return 60 + (dev % 7) * 5 + (t % 11)


def make_db(path, *, seconds=150, journey=True, erase=True):
    """A hub database written by the hub's Store: two sessions, six wearers in the second, one erasure."""
    store = Store(path)
    for dev in DEVS:
        store.register_device(dev)
    first = store.start_session()
    store.end_session(first)
    second = store.start_session()
    store.con.execute("UPDATE sessions SET started_at = ?, ended_at = NULL WHERE id = ?", (T0 - 1000, first))
    store.con.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (T0 - 900, first))
    store.con.execute("UPDATE sessions SET started_at = ? WHERE id = ?", (T0, second))
    for t in range(seconds):
        for i, dev in enumerate(DEVS):
            ctr = t + 1
            store.add_frame((dev, ctr, 0, T0 + t, "udp", 1, CONSENT, 80, 15, i * 40, 200, 2),
                            PhysioRow(dev, ctr, 1, hr_of(dev, t), 40 + i, 500 + 30 * i, 3, 10))
    store.flush()
    store.con.execute("INSERT INTO consent_epochs (dev_id, epoch, revision, physio, colour, first_ctr, last_ctr, "
                      "opened_at) VALUES (?, 1, 0, 1, 1, 1, ?, ?)", (DEVS[0], seconds, T0 + 1))
    if erase:
        store.queue_erasure(DEVS[0], 1, "request")
        store.flush()
        store.con.execute("UPDATE erasures SET at = ?", (T0 + 100,))
    if journey:
        j = Journey()
        for t, n, a in ((0, 3, None), (20, 6, 0.41), (60, 6, 0.47), (100, 6, 0.52)):
            j.note(view(T0 + t, n, a, None if a is None else 0.3))
        store.save_journey(second, json.dumps({"points": j.to_stored(), "budget": {
            "spent": 12.5, "limit": 5878.0, "fraction": 0.0021, "epsilon": 3.2, "delta": 1e-6}}))
    store.end_session(second)
    store.con.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (T0 + seconds, second))
    store.close()
    return second


def leaks(html: str) -> list[str]:
    """Device ids and per-wearer numbers found in the page (text or markup)."""
    found = [str(dev) for dev in DEVS if str(dev) in html]
    text = re.sub(r"<[^>]+>", " ", html)
    for dev in DEVS:  # each wearer's mean heart rate and their own frame count, as a report might print them
        mean = sum(hr_of(dev, t) for t in range(150)) / 150
        for shown in (f"{mean:.1f}", f"{mean:.2f}"):
            if re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d])", text):
                found.append(shown)
    return found


def test_report_of_the_latest_session_shows_the_kept_journey_and_no_one(tmp_path, capsys):
    db, out = tmp_path / "cove.db", tmp_path / "report.html"
    second = make_db(db)
    before = db.read_bytes()
    assert cli.main(["report", "--db", str(db), "--out", str(out)]) == 0
    assert f"session {second}" in capsys.readouterr().out
    html = out.read_text()
    assert f"Session {second}" in html
    assert "as the hub released them live" in html
    assert html.count('fill="#') >= 3  # the ribbon's released colours
    assert "url(#wait)" in html  # the stretch before five people shared
    assert "rho 12.5 of 5878.0" in html
    assert "no arousal was released" not in html and html.count("<polyline") >= 3  # arousal, synchrony, contributors
    assert re.search(r"Erasure receipts written during the session</th><td class=n>1<", html)
    assert re.search(r"Consent given or changed \(consent epochs begun\)</th><td class=n>1<", html)
    assert "Telemetry frames with skin contact</th><td class=n>100 %" in html
    assert not re.search(r"(src|href)=", html)  # nothing to fetch: self-contained
    assert leaks(html) == []
    assert db.read_bytes() == before  # read-only


def test_report_of_a_session_without_a_kept_journey_releases_one_through_the_mechanism(tmp_path):
    db, out = tmp_path / "cove.db", tmp_path / "r.html"
    make_db(db, journey=False, erase=False, seconds=120)
    report = load_report(db)
    assert report.journey_source == "report"
    ready = [p for p in report.points if p.ready]
    assert ready and all(p.contributors == 6 for p in ready)
    assert load_report(db).points == report.points  # the same data gives the same numbers: no fresh look
    assert cli.main(["report", "--db", str(db), "--session", "1", "--out", str(out)]) == 0
    html = out.read_text()
    assert "Session 1" in html and "never reached 5" in html  # the first session had nobody
    assert "no arousal was released" in html and "no synchrony was released" in html
    assert leaks(html) == []


def test_report_refuses_an_unknown_session_with_one_line(tmp_path, capsys):
    db = tmp_path / "cove.db"
    make_db(db)
    assert cli.main(["report", "--db", str(db), "--session", "9", "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no session 9" in err
    assert not (tmp_path / "r.html").exists()


def test_report_of_a_database_with_no_session_covers_everything_recorded(tmp_path):
    db = tmp_path / "cove.db"
    make_db(db)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM sessions")
    con.commit()
    con.close()
    report = load_report(db)
    assert report.session.id is None and report.session.started_at == T0
