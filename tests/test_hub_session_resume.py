"""A session the hub was running when it stopped (a crash, a power cut, an upgrade) goes on when it starts again:
same session, the journey the wall showed, and the privacy budget already spent. A session left open long ago is
closed at its last sign of life instead of being resumed."""

import asyncio
import json
import sqlite3

from helpers.stepped import T0, install_clock, telemetry
from lifepalette.crypto import seal
from lifepalette.hub import Hub
from lifepalette.hub import core as hub_core
from lifepalette.scoring import CoveScorer
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

from protocol import frame as wire
from protocol import records

SECONDS = 240
COHORT = make_cohort(8, SECONDS, "confrontation", seed=3)
FEATURES = feature_records(COHORT)
DEVS = [int(d) for d in COHORT.dev_ids]
CONSENT = records.make_consent(physio=True, colour=True, revision=1)


def live(hub: Hub, clock, keys: dict[int, bytes], seconds: range) -> None:
    """The badges' frames second by second, the scoring loop's tick on each boundary, the wall asking each second."""
    for s in seconds:
        clock.now = T0 + s
        hub.tick()
        hub.public_view()
        for i, dev in enumerate(DEVS):
            clock.now = T0 + s + 0.1 + 0.01 * i
            hub.ingest(seal(keys[dev], wire.TELEMETRY, dev, s + 1, telemetry(FEATURES, i, s, CONSENT)))
        hub.flush()


def run_hub(db, clock, body):
    """`body(hub)` inside a started hub (database lock, control socket), stopped after it as `hub` stops it."""
    async def main():
        hub = Hub(db, scorer=CoveScorer(learn_s=20))
        hub.clock = clock.time
        await hub.start()
        try:
            return body(hub)
        finally:
            await hub.stop()

    return asyncio.run(main())


def first_run(clock):
    def body(hub: Hub) -> dict:
        keys = {dev: hub.enroll(dev) for dev in DEVS}
        hub.start_session()
        live(hub, clock, keys, range(0, 150))
        return {"session": hub.session_state()["id"], "budget": hub.release.budget.as_dict(),
                "epochs": hub.release.epochs, "journey": hub.journey.to_json(), "keys": keys}
    return body


def test_a_running_session_resumes_with_its_journey_and_spent_budget(tmp_path, monkeypatch):
    db = tmp_path / "hub.db"
    clock = install_clock(monkeypatch)
    before = run_hub(db, clock, first_run(clock))
    assert before["budget"]["releases"] >= 2 and len(before["journey"]) >= 5, before["budget"]

    def second_run(hub: Hub) -> dict:
        resumed = {"state": hub.session_state(), "budget": hub.release.budget.as_dict(),
                   "epochs": hub.release.epochs, "journey": hub.journey.to_json()}
        live(hub, clock, before["keys"], range(150, SECONDS))
        resumed["journey_after"] = hub.journey.to_json()
        resumed["spent_after"] = hub.release.budget.spent
        return resumed

    clock.now += 20  # the hub is back 20 s later
    after = run_hub(db, clock, second_run)
    assert after["state"]["active"] and after["state"]["id"] == before["session"]
    # the budget goes on from what was spent: a restart must not hand the public a fresh budget
    assert abs(after["budget"]["spent"] - before["budget"]["spent"]) < 1e-6
    assert after["budget"]["releases"] == before["budget"]["releases"]
    assert after["epochs"] == before["epochs"]
    assert after["spent_after"] > before["budget"]["spent"]
    # the wall's ribbon keeps the journey so far, and goes on from it
    assert after["journey"] == before["journey"]
    assert len(after["journey_after"]) > len(before["journey"])
    assert after["journey_after"][:len(before["journey"])] == before["journey"]
    sessions = sqlite3.connect(db).execute("SELECT id, ended_at FROM sessions").fetchall()
    assert sessions == [(before["session"], None)]


def test_a_session_left_open_long_ago_is_closed_at_its_last_sign_of_life(tmp_path, monkeypatch):
    db = tmp_path / "hub.db"
    clock = install_clock(monkeypatch)
    before = run_hub(db, clock, first_run(clock))
    last = json.loads(sqlite3.connect(db).execute("SELECT value FROM meta WHERE key = ?",
                                                  (f"journey:{before['session']}",)).fetchone()[0])["saved_at"]
    assert abs(last - (T0 + 150)) < 1.0
    clock.now = last + 3 * hub_core.RESUME_WITHIN_S  # the hub starts again much later

    state = run_hub(db, clock, lambda hub: hub.session_state())
    assert not state["active"]
    ended = sqlite3.connect(db).execute("SELECT ended_at FROM sessions").fetchone()[0]
    assert ended == last  # closed when it was last seen, not when the hub came back
