"""`lifepalette replay`: a stored session through the same scorer releases the same public timeline the live hub
released; erased physiology stays erased and shows as gaps.

The live side is the real Hub (real SQLite, real sealed frames through its verifier and consent ledger) on a
stepped clock, ticking at each second boundary as its scoring loop does; the replay runs through the console script.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.stepped import T0, install_clock, telemetry
from lifepalette.crypto import seal
from lifepalette.hub import Hub
from lifepalette.scoring import CoveScorer
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

from protocol import frame as wire
from protocol import records

LP = Path(sys.executable).with_name("lifepalette")
LEARN_S = 20
SECONDS = 150
SESSION_AT = 12  # seconds of frames before the session: the live scorer carried them in


SEED = 7


def live_session(db: Path, monkeypatch, *, revoke_at: int | None = None) -> tuple[list[tuple[int, dict]], list[int]]:
    """Run 8 badges through a live hub; returns what it released [(t, public)] and the dev ids."""
    clock = install_clock(monkeypatch)
    cohort = make_cohort(8, SECONDS, "confrontation", seed=3)
    features = feature_records(cohort)
    hub = Hub(db, scorer=CoveScorer(learn_s=LEARN_S))
    hub.clock = clock.time
    hub.release_seed = SEED  # the release mechanism's noise, fixed so that `replay --seed SEED` can match it
    devs = [int(d) for d in cohort.dev_ids]
    keys = {d: hub.enroll(d) for d in devs}
    released: list[tuple[int, dict]] = []
    hub.subscribe(lambda: released.append((hub.scores.get("t"), comparable(hub.public_view().to_json()))))
    ctr = dict.fromkeys(devs, 0)
    for s in range(SECONDS):
        clock.now = T0 + s
        if s:
            hub.tick()  # the scoring loop's tick lands on the second boundary, before this second's frames
        if s == SESSION_AT:
            hub.start_session()
        for i, dev in enumerate(devs):
            clock.now = T0 + s + 0.1 + 0.01 * i
            consent = records.make_consent(physio=True, colour=i % 3 != 0, revision=1)
            if i == 2 and 60 <= s < 80:  # a pause: physiology withheld, same consent epoch
                consent = records.make_consent(physio=True, colour=True, paused=True, revision=1)
            if i == 5 and revoke_at is not None and s >= revoke_at:  # physiology withdrawn: epoch erased
                consent = records.make_consent(physio=False, colour=True, revision=2)
            ctr[dev] += 1
            if i == 7 and s % 10 == 9:  # a heartbeat instead of telemetry now and then
                frame = seal(keys[dev], wire.HEARTBEAT, dev, ctr[dev], bytes([consent, 80, 7]) + bytes(10))
            else:
                frame = seal(keys[dev], wire.TELEMETRY, dev, ctr[dev], telemetry(features, i, s, consent))
            assert hub.ingest(frame).ok
        hub.flush()
    clock.now = T0 + SECONDS
    hub.tick()
    hub.end_session()
    hub.store.con.close()
    return released, devs


def comparable(view: dict) -> dict:
    """A released view with its swatches sorted: their order is keyed by a secret of the live hub's run (not
    stored, by design), so a replay shows the same swatches in another order."""
    return json.loads(json.dumps(dict(view, swatches=sorted(view["swatches"]))))


def replay(db: Path, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(LP), "replay", "--db", str(db), "--learn-s", str(LEARN_S), *map(str, extra)],
                          capture_output=True, text=True, timeout=120)


def test_replayed_public_timeline_equals_what_the_live_hub_released(tmp_path, monkeypatch):
    db = tmp_path / "cove.db"
    released, _ = live_session(db, monkeypatch)
    monkeypatch.undo()
    res = replay(db, "--session", 1, "--as-fast", "--timeline", "--seed", SEED)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert all(set(line) == {"t", "public"} for line in lines)
    replayed = {line["t"]: comparable(line["public"]) for line in lines}
    in_session = [(t, pub) for t, pub in released if t is not None and t >= T0 + SESSION_AT]
    shown = [pub for _t, pub in in_session if pub["ready"]]
    assert len(in_session) > 100 and len(shown) > 50  # the cove was public for most of it
    # and its numbers moved (the release mechanism holds them for 5-15 s between releases)
    assert len({(p["arousal"], p["synchrony"]) for p in shown}) > 10
    # colour shared by 5 of 8; one of them sends a heartbeat (no colour) every tenth second
    assert {len(p["swatches"]) for p in shown} == {4, 5}
    assert [replayed.get(t) for t, _ in in_session] == [pub for _, pub in in_session]
    assert min(replayed) >= T0 + SESSION_AT  # frames before the session are replayed silently
    summary = json.loads(res.stderr.strip().splitlines()[-1])
    assert summary["session"] == 1 and summary["erased"] == [] and summary["released_seconds"] == len(lines)


def test_erased_physiology_stays_erased_and_shows_as_gaps(tmp_path, monkeypatch):
    db = tmp_path / "cove.db"
    released, devs = live_session(db, monkeypatch, revoke_at=120)
    monkeypatch.undo()
    res = replay(db, "--as-fast", "--timeline", "--seed", SEED)  # default: the latest session
    assert res.returncode == 0, res.stderr
    replayed = {line["t"]: line["public"] for line in map(json.loads, res.stdout.splitlines())}
    summary = json.loads(res.stderr.strip().splitlines()[-1])
    gaps = {g["dev_id"]: g["seconds"] for g in summary["erased"]}
    assert list(gaps) == [devs[5]]
    assert gaps[devs[5]][0][0] == T0 + SESSION_AT and gaps[devs[5]][-1][1] == T0 + 119
    live = dict(released)
    # before the revocation the live wall counted wearer 5; the replay cannot: their physiology is gone
    # the public count comes from who the hub heard (wearer 5 was there, consenting); the numbers from the scorer,
    # which no longer has wearer 5's physiology: the replayed arousal differs where the live one counted them
    before = [t for t in replayed if t < T0 + 110 and live[t]["ready"]]
    assert len(before) > 50
    # (the count is held per release epoch, and the epochs' random timing follows the noise drawn for the numbers,
    # which differ here, so the counts may change a few seconds apart)
    same = sum(abs(replayed[t]["contributors"] - live[t]["contributors"]) <= 1 for t in before)
    assert same >= 0.9 * len(before)
    assert sum(replayed[t]["arousal"] != live[t]["arousal"] for t in before) > 0.75 * len(before)


@pytest.mark.parametrize("args, message", [
    (["--session", 9], "no session 9"),
    (["--speed", "0"], "--speed must be a positive number"),
])
def test_bad_replay_requests_are_named_usage_errors(tmp_path, monkeypatch, args, message):
    db = tmp_path / "cove.db"
    hub = Hub(db, scorer=None)
    hub.start_session()
    hub.store.con.close()
    res = replay(db, *args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_replay_of_a_missing_database_is_a_usage_error(tmp_path):
    res = replay(tmp_path / "none.db", "--as-fast")
    assert res.returncode == 2 and "no database" in res.stderr
    assert not (tmp_path / "none.db").exists()


def test_paced_replay_takes_session_time_over_speed(tmp_path, monkeypatch):
    from lifepalette.hub import replay as rp

    db = tmp_path / "cove.db"
    live_session(db, monkeypatch)
    monkeypatch.undo()
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:  # a clock that only moves when replay waits: the waits are exactly the pacing
        slept.append(s)
        now[0] += s

    con = rp.open_readonly(db)
    session = rp.find_session(con, 1)
    summary = rp.replay(rp.stored_frames(con, session.end), CoveScorer(learn_s=LEARN_S), session,
                        lambda t, p: None, speed=50.0, sleep=sleep, monotonic=lambda: now[0])
    con.close()
    assert summary.released > 100
    assert sum(slept) == pytest.approx((summary.last_t - summary.first_t) / 50.0)
    assert np.allclose(slept, 1 / 50.0)  # one released second per 1/50 s of wall time, no bursts


def test_replay_serves_the_wall(tmp_path, monkeypatch):
    import urllib.request

    db = tmp_path / "cove.db"
    live_session(db, monkeypatch)
    monkeypatch.undo()
    timeline = replay(db, "--as-fast", "--timeline", "--seed", SEED).stdout.splitlines()
    proc = subprocess.Popen([str(LP), "replay", "--db", str(db), "--learn-s", str(LEARN_S), "--speed", "200",
                             "--seed", str(SEED),
                             "--http", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = next(line.split("cove wall:")[1].split()[0] for line in proc.stderr if "cove wall:" in line)
        summary = json.loads(proc.stdout.readline())  # printed when the replay has ended
        assert summary["released_seconds"] == len(timeline) > 100
        with urllib.request.urlopen(url + "api/cove", timeout=10) as resp:
            shown = json.loads(resp.read())
        assert proc.poll() is None  # still serving after the replay ended
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    last = json.loads(timeline[-1])["public"]
    assert last["ready"] and {k: v for k, v in shown.items() if k not in ("cove", "seq")} == \
        {k: v for k, v in last.items() if k not in ("cove", "seq")}
    assert proc.returncode == 0


def test_a_hub_started_with_a_release_seed_warns_and_a_bad_seed_is_a_usage_error(tmp_path):
    """`hub --release-seed N` is what makes a live session replayable with `replay --seed N`; it weakens the public
    numbers' protection, so the hub says so at start."""
    db = tmp_path / "cove.db"
    bad = subprocess.run([str(LP), "hub", "--db", str(db), "--udp", "127.0.0.1:0", "--release-seed", "-3"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--release-seed must be" in bad.stderr and "Traceback" not in bad.stderr
    hub = subprocess.Popen([str(LP), "hub", "--db", str(db), "--udp", "127.0.0.1:0", "--release-seed", "7"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert hub.stdout is not None and "listening" in hub.stdout.readline()
    finally:
        hub.terminate()
        out, err = hub.communicate(timeout=60)
    assert hub.returncode == 0, err
    assert "--release-seed 7" in err and "reproducible by anyone who knows the seed" in err
