"""The wearer's own page (issue 19): the private link, `/api/me`, export, self-erasure, the operator's cards.

Real parts: the real Hub on a real SQLite file, sealed frames through its real ingest, the real aiohttp server,
the real `lifepalette me-link` and `lifepalette export` / `audit` commands in-process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import re
import shutil
import time

import aiohttp
import pytest
from helpers.wearer_cove import DEVS, SECONDS, A, B, C, record_session
from lifepalette import cli
from lifepalette.hub import Hub, wearer_link
from lifepalette.hub.store import Store
from lifepalette.web import serve_web

TOKEN = "wearer-test-operator-token"
ME_KEYS = {"dev_id", "consent", "epochs", "trajectory", "stored"}
POINT_KEYS = {"t", "level", "trend", "confidence", "arousal", "regulation"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def db(recorded, tmp_path):
    """A private copy of the recorded database (with its site key and erasure journal) for one test."""
    for path in recorded.iterdir():
        shutil.copy2(path, tmp_path / path.name)
    return tmp_path / "hub.db"


def me_link(db, dev, *extra) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["me-link", "--db", str(db), "--dev", str(dev), "--base", "http://cove.test:8080", *extra]) == 0
    url = out.getvalue().strip()
    assert url.startswith("http://cove.test:8080/me#")
    return url.split("#", 1)[1]


async def with_hub(db, body, *, start: bool = False):
    hub = Hub(db)
    if start:
        await hub.start()
    runner = await serve_web(hub, "127.0.0.1", 0, TOKEN, announce=False, refresh_s=30)
    try:
        async with aiohttp.ClientSession(runner.url) as http:
            return await body(http, hub)
    finally:
        await runner.cleanup()
        if start:
            await hub.stop()
        else:
            hub.store.close()


def wearer(token: str) -> dict:
    return {"Authorization": f"Wearer {token}"}


async def get_me(http, token):
    async with http.get("/api/me", headers=wearer(token)) as r:
        return r.status, await r.json()


def stored_counts(db, dev) -> tuple[int, int]:
    store = Store(db)
    try:
        s = store.wearer_stored(dev)
        return s["frames"], s["physiology_rows"]
    finally:
        store.close()


def test_api_me_returns_this_wearers_journey_consent_and_stored_data(db):
    token = me_link(db, A)
    frames, physio = stored_counts(db, A)
    assert frames == SECONDS and physio == SECONDS

    async def body(http, hub):
        return await get_me(http, token)

    status, me = run(with_hub(db, body))
    assert status == 200
    assert ME_KEYS <= set(me) and me["dev_id"] == A
    assert me["stored"] == {"frames": SECONDS, "physiology_rows": SECONDS}
    assert me["consent"]["physiology"] is True and me["consent"]["colour"] is True
    assert [e["epoch"] for e in me["epochs"]] == [1] and me["epochs"][0]["physiology_rows"] == SECONDS
    points = me["trajectory"]
    assert len(points) >= SECONDS // 30 - 8, points  # a point every 30 s once the scorer has a baseline
    assert all(POINT_KEYS <= set(p) for p in points)
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert any(p["level"] is not None for p in points) and any(p["arousal"] is not None for p in points)
    # synchrony with partners is one number per point: no partner is named or counted
    assert all(set(p) <= POINT_KEYS | {"synchrony", "session"} for p in points)
    assert any(p["synchrony"] is not None for p in points)
    assert me["sessions"] and all(p["session"] == me["sessions"][0]["id"] for p in points)


def test_a_token_for_one_badge_never_yields_anything_about_another(db):
    token_a, token_b = me_link(db, A), me_link(db, B)
    forged = wearer_link.make_token(b"\0" * 16, B, 1)
    # A's MAC under B's number: the MAC binds the badge, so this is no token at all
    raw = bytearray(base64.urlsafe_b64decode(token_a + "=="))
    raw[1:3] = B.to_bytes(2, "big")
    spliced = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    async def body(http, hub):
        out = {name: await get_me(http, t) for name, t in (("a", token_a), ("b", token_b))}
        async with http.get("/api/me/export?format=json", headers=wearer(token_a)) as r:
            out["export"] = await r.json()
        out["forged"] = await get_me(http, forged)
        out["spliced"] = await get_me(http, spliced)
        return out

    out = run(with_hub(db, body))
    a, b = out["a"][1], out["b"][1]
    assert out["a"][0] == out["b"][0] == 200 and a["dev_id"] == A and b["dev_id"] == B
    assert a["trajectory"] != b["trajectory"]
    assert out["forged"][0] == out["spliced"][0] == 401
    assert {row["dev_id"] for row in out["export"]["rows"]} == {A}
    assert {e["epoch"] for e in out["export"]["consent_epochs"]} == {1}
    for other in (B, C):  # as a number of its own, not as digits inside a timestamp
        alone = re.compile(rf"(?<![\d.]){other}(?![\d.])")
        assert not alone.search(json.dumps(a)) and not alone.search(json.dumps(out["export"]))


def test_without_a_valid_token_the_answer_is_the_same_401_and_guessing_backs_off(db):
    token = me_link(db, A)
    from lifepalette.hub.sitekey import load_site_key

    site_key = load_site_key(db, create=False)
    wrong_mac = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    never_linked = wearer_link.make_token(site_key, C, 1)  # C is enrolled but was never given a link
    no_such_badge = wearer_link.make_token(site_key, 999, 1)  # not enrolled at all
    cases = {"no header": {}, "bearer": {"Authorization": f"Bearer {token}"}, "garbage": wearer("x" * 26),
             "wrong mac": wearer(wrong_mac), "never linked": wearer(never_linked),
             "no such badge": wearer(no_such_badge)}

    async def guessing(http, hub):
        statuses = []
        for _ in range(4):
            async with http.get("/api/me", headers=wearer(wrong_mac)) as r:
                statuses.append((r.status, r.headers.get("Retry-After")))
        async with http.get("/api/me", headers=wearer(token)) as r:  # while backing off, even a good token waits
            statuses.append((r.status, r.headers.get("Retry-After")))
        async with http.post("/api/me/erase", headers={**wearer(wrong_mac), "X-LP-Wearer": "1"}) as r:
            statuses.append((r.status, None))
        return statuses

    seen = run(with_hub_app(db, cases))
    statuses = {name: s for name, (s, _t, _w) in seen.items()}
    assert set(statuses.values()) == {401}, statuses
    assert len({(t, w) for _s, t, w in seen.values()}) == 1  # one body, one header: no hint which case it was
    statuses = run(with_hub(db, guessing))
    assert statuses[0][0] == 401 and statuses[1][0] == 401
    assert any(s == 429 for s, _r in statuses[2:4]) and statuses[4][0] == 429 and statuses[4][1]
    assert statuses[5][0] == 429
    assert stored_counts(db, A)[1] == SECONDS  # nothing was erased by a guess


async def _seen_each(runner, cases):
    from lifepalette.web.me import WEARER_BACKOFF

    seen = {}
    async with aiohttp.ClientSession(runner.url) as http:
        for name, headers in cases.items():
            runner.app[WEARER_BACKOFF].succeeded("127.0.0.1")  # each case is checked, not turned away by backoff
            async with http.get("/api/me", headers=headers) as r:
                seen[name] = (r.status, await r.text(), r.headers.get("WWW-Authenticate"))
    return seen


async def with_hub_app(db, cases):
    hub = Hub(db)
    runner = await serve_web(hub, "127.0.0.1", 0, TOKEN, announce=False, refresh_s=30)
    try:
        return await _seen_each(runner, cases)
    finally:
        await runner.cleanup()
        hub.store.close()


def test_a_rotated_token_stops_working_at_once_in_a_running_hub(db):
    old = me_link(db, A)

    async def body(http, hub):
        statuses = [(await get_me(http, old))[0]]
        new = await asyncio.to_thread(me_link, db, A, "--rotate")  # the CLI, another connection, hub running
        statuses += [(await get_me(http, old))[0], (await get_me(http, new))[0]]
        # the console's rotation: bearer-authenticated, no CSRF header needed for a bearer
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.post(f"/api/operator/badges/{A}/card/rotate", headers=auth) as r:
            rotated = await r.json()
        statuses += [(await get_me(http, new))[0]]
        newest = wearer_link.make_token(hub.site_key, A, rotated["generation"])
        statuses += [(await get_me(http, newest))[0]]
        return statuses, rotated, new

    statuses, rotated, new = run(with_hub(db, body, start=True))
    assert statuses == [200, 401, 200, 401, 200]
    assert rotated == {"ok": True, "dev_id": A, "generation": 3}
    assert me_link(db, A) != new  # printing the link again gives the current (third) one


def test_erasure_from_the_page_needs_the_header_sticks_across_a_restart_and_reaches_console_and_audit(db, capsys):
    token = me_link(db, A)

    async def erase(http, hub):
        async with http.post("/api/me/erase", headers=wearer(token)) as r:
            refused = r.status, await r.json()
        before = hub.store.count_physio(A)
        async with http.post("/api/me/erase", headers={**wearer(token), "X-LP-Wearer": "1"}) as r:
            receipt = r.status, await r.json()
        status, me = await get_me(http, token)
        state = hub.operator_state()
        return refused, before, receipt, me, state

    refused, before, (status, receipt), me, state = run(with_hub(db, erase))
    assert refused[0] == 403 and before == SECONDS
    assert status == 200 and receipt["reason"] == "wearer" and receipt["dev_id"] == A
    assert receipt["rows"] == SECONDS and receipt["epoch"] is None
    assert receipt["receipt"] == {k: v for k, v in receipt.items() if k != "receipt"}
    assert me["stored"] == {"frames": SECONDS, "physiology_rows": 0}
    assert me["epochs"][0]["erased"] is True
    assert me["consent"]["physiology"] is True and me["consent"]["kept"] is False  # shared, but nothing more kept
    assert all(p["level"] is None and p["arousal"] is None for p in me["trajectory"])  # erased: no journey left
    assert state["erasures"][0]["reason"] == "wearer" and state["erasures"][0]["dev_id"] == A

    async def after_restart(http, hub):
        status, me = await get_me(http, token)
        return status, me, hub.operator_state()

    status, me, state = run(with_hub(db, after_restart))
    assert status == 200 and me["stored"]["physiology_rows"] == 0 and me["trajectory"] == []
    assert [(r["dev_id"], r["reason"]) for r in state["erasures"]] == [(A, "wearer")]
    assert stored_counts(db, B) == (SECONDS, SECONDS)  # the other wearers keep theirs

    capsys.readouterr()
    assert cli.main(["audit", "--db", str(db)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["erasures"]["wearer_self_erasures"] == 1
    assert report["erasures"]["by_reason"] == {"wearer": 1}


def test_export_is_what_lifepalette_export_gives_for_this_badge(db, tmp_path):
    token = me_link(db, A)
    assert cli.main(["export", "--db", str(db), "--dev", str(A), "--out", str(tmp_path / "a.csv")]) == 0
    expected = (tmp_path / "a.csv").read_bytes().decode()

    async def body(http, hub):
        out = {}
        for fmt in ("csv", "json", "xml"):
            async with http.get(f"/api/me/export?format={fmt}", headers=wearer(token)) as r:
                out[fmt] = r.status, r.headers.get("Content-Disposition"), await r.text()
        async with http.get("/api/me/export?format=csv") as r:
            out["anonymous"] = r.status
        return out

    out = run(with_hub(db, body))
    assert out["csv"][0] == 200 and "attachment" in out["csv"][1]
    assert out["csv"][2] == expected
    status, _disp, text = out["json"]
    data = json.loads(text)
    assert status == 200 and data["dev_id"] == A and len(data["rows"]) == SECONDS
    header, *rows = list(csv.reader(io.StringIO(expected)))
    assert data["columns"] == header and [str(v) if v is not None else "" for v in data["rows"][0].values()] == rows[0]
    assert out["xml"][0] == 400 and out["anonymous"] == 401


def test_operator_card_is_an_svg_with_the_link_and_one_line_and_needs_the_operator(db):
    async def body(http, hub):
        out = {}
        async with http.get(f"/api/operator/badges/{A}/card") as r:
            out["anonymous"] = r.status
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(f"/api/operator/badges/{A}/card?base=http://cove.test:8080", headers=auth) as r:
            out["card"] = r.status, r.headers["Content-Type"], await r.text()
        async with http.get(f"/api/operator/badges/{A}/card?base=javascript:alert(1)", headers=auth) as r:
            out["bad base"] = r.status
        async with http.get("/api/operator/badges/999/card", headers=auth) as r:
            out["unknown"] = r.status
        # cookie sessions need the CSRF header for the rotation, as for every operator action
        async with http.post("/operator/login", json={"token": TOKEN}) as r:
            assert r.status == 200
        async with http.post(f"/api/operator/badges/{A}/card/rotate") as r:
            out["rotate without header"] = r.status
        return out

    out = run(with_hub(db, body))
    assert out["anonymous"] == 401 and out["bad base"] == 400 and out["unknown"] == 404
    status, ctype, svg = out["card"]
    assert status == 200 and ctype.startswith("image/svg+xml")
    assert svg.startswith("<svg") and wearer_link.CARD_LINE in svg and "<path" in svg
    import segno
    from lifepalette.hub.sitekey import load_site_key

    # the QR code is the link of the badge's current generation (1: the card issued the first link)
    link = wearer_link.link("http://cove.test:8080", wearer_link.make_token(load_site_key(db, create=False), A, 1))
    assert segno.make(link, error="m", micro=False).svg_inline(scale=6, border=4) in svg
    assert out["rotate without header"] == 401
    assert me_link(db, A)  # the card issued generation 1, which the CLI prints again


def test_the_token_is_not_the_device_key_and_differs_per_badge_and_generation(db):
    from lifepalette.hub.sitekey import derive_device_key, load_site_key

    key = load_site_key(db, create=False)
    tokens = {wearer_link.make_token(key, dev, gen) for dev in DEVS for gen in (1, 2)}
    assert len(tokens) == 6
    for dev in DEVS:
        device_key = derive_device_key(key, dev)
        for gen in (1, 2):
            mac = base64.urlsafe_b64decode(wearer_link.make_token(key, dev, gen) + "==")[3:]
            assert mac != device_key and device_key[:8] not in mac and mac[:8] not in device_key


def test_the_wearer_page_and_api_never_reach_the_public_view_or_the_outputs(db):
    from lifepalette.outputs.lsl import cove_sample
    from lifepalette.outputs.mqtt import cove_topics
    from lifepalette.outputs.osc import osc_messages
    from lifepalette.outputs.public import published

    token = me_link(db, A)

    async def body(http, hub):
        await get_me(http, token)
        async with http.post("/api/me/erase", headers={**wearer(token), "X-LP-Wearer": "1"}) as r:
            assert r.status == 200
        async with http.get("/api/cove") as r:
            cove = await r.text()
        view = published(hub.public_view(), "cove", 1)
        return cove, view

    cove, view = run(with_hub(db, body))
    outputs = json.dumps([cove, view, osc_messages(view), cove_topics(view), cove_sample(view)], default=str)
    for needle in (token, "trajectory", "/me", "wearer", "erase", "receipt"):
        assert needle not in outputs, needle
    assert not re.search(rf"(?<![\d.]){A}(?![\d.])", outputs)  # the badge's number, not digits of a timestamp


def test_frames_a_running_hub_stores_now_reach_the_journey_without_a_restart(db):
    from helpers.wearer_cove import feed

    token = me_link(db, A)

    async def body(http, hub):
        status, before = await get_me(http, token)
        # two more minutes, ending five seconds ago: stored after the page last read, behind its mark in time
        feed(hub, time.time() - 125, 120, first_ctr=SECONDS + 1)
        status_after, after = await get_me(http, token)
        return status, before, status_after, after

    status, before, status_after, after = run(with_hub(db, body, start=True))
    assert status == status_after == 200
    assert after["stored"]["frames"] == SECONDS + 120
    assert after["trajectory"][-1]["t"] > before["trajectory"][-1]["t"] + 500  # the new minutes, not the old session
    assert after["trajectory"][: len(before["trajectory"]) - 1] == before["trajectory"][:-1]


def test_the_journey_read_in_steps_equals_the_journey_read_at_once(db):
    from lifepalette.hub.wearer_journey import Journeys
    from lifepalette.scoring import CoveScorer

    store = Store(db)
    start = store.wearer_sessions(A)[0]["started_at"]
    store.close()
    stepped, whole = Journeys(db, CoveScorer), Journeys(db, CoveScorer)
    fed = []
    for until in (start + 100, start + 250, start + 251, start + SECONDS + 5):
        stepped.update(until, 0)
        fed.append(stepped.fed)
    whole.update(start + SECONDS + 5, 0)
    assert fed == [100 * 3 - 3, 250 * 3 - 3, 251 * 3 - 3, SECONDS * 3]  # each step read only the new frames
    for dev in DEVS:
        assert stepped.of(dev) == whole.of(dev) and len(whole.of(dev)) > 5
    whole.update(start + SECONDS + 6, 1)  # an erasure since: everything is read again
    assert whole.fed == SECONDS * 3


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_me_link_writes_the_printed_link_as_an_owner_only_qr_code(db, tmp_path, suffix):
    import stat

    import segno

    qr = tmp_path / f"card{suffix}"
    token = me_link(db, A, "--qr", str(qr))
    expected = io.BytesIO()
    segno.make(f"http://cove.test:8080/me#{token}", error="m", micro=False).save(
        expected, kind=suffix[1:], scale=8, border=4)
    assert qr.read_bytes() == expected.getvalue()
    assert stat.S_IMODE(qr.stat().st_mode) == 0o600  # it opens the wearer's data
    assert me_link(db, A) == token  # printing it again, without --rotate, gives the same link


def test_after_a_self_erasure_nothing_more_is_kept_until_consent_changes(db):
    from helpers.wearer_cove import feed

    from protocol import records

    token = me_link(db, A)

    async def body(http, hub):
        async with http.post("/api/me/erase", headers={**wearer(token), "X-LP-Wearer": "1"}) as r:
            assert r.status == 200
        feed(hub, time.time() - 70, 60, first_ctr=SECONDS + 1)  # the badge goes on sharing, same consent
        kept_same = hub.store.count_physio(A)
        renewed = records.make_consent(physio=True, colour=True, revision=1)  # the wearer consents again
        feed(hub, time.time() - 8, 5, first_ctr=SECONDS + 61, consent=renewed)
        _status, me = await get_me(http, token)
        return kept_same, hub.store.count_physio(A), me

    kept_same, kept_renewed, me = run(with_hub(db, body, start=True))
    assert kept_same == 0 and kept_renewed == 5
    assert me["consent"]["kept"] is True and [e["erased"] for e in me["epochs"]] == [True, False]


def test_the_journeys_are_replayed_as_the_hub_starts_so_the_first_wearer_does_not_wait(db):
    from lifepalette.web.me import ACCESS

    async def body():
        hub = Hub(db)
        runner = await serve_web(hub, "127.0.0.1", 0, TOKEN, announce=False, refresh_s=30)
        try:
            journeys = runner.app[ACCESS]["access"].journeys
            deadline = time.monotonic() + 30
            while journeys.fed == 0 and time.monotonic() < deadline:  # no wearer has asked yet
                await asyncio.sleep(0.05)
            fed = journeys.fed
            async with aiohttp.ClientSession(runner.url) as http:
                status, me = await get_me(http, me_link(db, A))
            return fed, journeys.fed, status, me
        finally:
            await runner.cleanup()
            hub.store.close()

    fed, fed_after, status, me = run(body())
    assert fed == hub_frames(db) and fed_after == fed  # all read before the request; the request read nothing again
    assert status == 200 and me["trajectory"]


def hub_frames(db) -> int:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    finally:
        con.close()
