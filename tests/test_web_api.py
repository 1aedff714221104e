"""The web app's HTTP contract against an in-test hub (the web-facing methods only): public view, auth, actions, SSE.

The real hub + real virtual badges drive the browser tests (test_web_browser.py); here an in-test hub lets every
edge (k = 4 vs 5, a hub that refuses) be set exactly.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from helpers.public import public_view
from hypothesis import given, settings
from hypothesis import strategies as st
from lifepalette.boundary import BoundaryError, GroupAggregate, PublicView
from lifepalette.hub.views import shuffled_swatches
from lifepalette.privacy import K_MIN
from lifepalette.web import serve_web

TOKEN = "s3cret-operator-token"


class InTestHub:
    """The hub's web-facing surface (lifepalette.hub.contracts.HubSurface), with a state the test sets."""

    def __init__(self, contributors: int = 6):
        self.contributors = contributors
        self.callbacks = []
        self.calls: list[str] = []
        self.refuse = False

    def subscribe(self, callback):
        self.callbacks.append(callback)

    def tick(self):
        for callback in self.callbacks:
            callback()

    def public_view(self):
        return public_view(self.contributors, (230, 159, 0), 0.7, 0.4,
                           groups=(GroupAggregate("A", max(self.contributors, K_MIN), 0.6, 0.3, (86, 180, 233)),),
                           swatches=[(20 * i, 200) for i in range(self.contributors)], session=True)

    def operator_state(self):
        return {"badges": [{"dev_id": 258, "battery": 80, "link": "udp", "online": True}],
                "rejections": {"mic": 2, "replay": 1}, "consent_epochs": [], "erasures": [],
                "scoring": {"cadence_s": 1.0}, "group_colour": {"rgb": [1, 2, 3]}, "nan": float("nan")}

    def _act(self, name):
        self.calls.append(name)
        if self.refuse:
            raise RuntimeError("no session running")
        return {"done": name}

    def start_session(self):
        return self._act("start_session")

    def end_session(self):
        return self._act("end_session")

    def rotate_group_key(self):
        return self._act("rotate_group_key")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _with_app(hub, body):
    runner = await serve_web(hub, "127.0.0.1", 0, TOKEN, announce=False, refresh_s=30)
    try:
        # unsafe=True: aiohttp's client keeps cookies for IP hosts only when told to (browsers always do)
        async with aiohttp.ClientSession(runner.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            return await body(http, runner)
    finally:
        await runner.cleanup()


PER_WEARER_KEYS = {"dev_id", "dev_ids", "members", "hr_bpm", "wearers", "level", "hue", "chroma", "key", "id"}


def _all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(_all_keys(v) for v in value))
    return set()


def test_public_api_is_aggregates_only():
    async def body(http, runner):
        async with http.get("/api/cove") as r:
            assert r.status == 200
            assert r.headers["Cache-Control"] == "no-store"
            return await r.json()

    view = run(_with_app(InTestHub(6), body))
    assert view["ready"] is True and view["contributors"] == 6 and view["k_min"] == K_MIN
    assert view["palette"]["hex"] == "#e69f00" and view["arousal"] == 0.7 and view["synchrony"] == 0.4
    assert [g["label"] for g in view["groups"]] == ["A"]
    assert len(view["swatches"]) == 6 and all(s.startswith("#") and len(s) == 7 for s in view["swatches"])
    assert not (_all_keys(view) & PER_WEARER_KEYS)
    text = json.dumps(view)
    assert "258" not in text and "hr_bpm" not in text


def test_fewer_than_five_contributors_shows_only_the_count():
    async def body(http, runner):
        async with http.get("/api/cove") as r:
            return await r.json()

    view = run(_with_app(InTestHub(K_MIN - 1), body))
    assert view["ready"] is False and view["contributors"] == 4
    assert view["palette"] is None and view["arousal"] is None and view["synchrony"] is None
    assert view["groups"] == [] and view["swatches"] == []


def test_swatch_order_is_keyed_not_by_measure_and_stable_for_one_salt():
    colours = [(h, 255) for h in range(0, 256, 32)]
    a = shuffled_swatches(colours, b"one")
    assert a == shuffled_swatches(colours, b"one")
    orders = {shuffled_swatches(colours, bytes([i])) for i in range(20)}
    assert len(orders) > 10  # the order depends on the secret, not on hue or on the hub's order
    assert sorted(a) == sorted(shuffled_swatches(colours, b"two"))


def test_operator_api_refuses_without_the_token():
    async def body(http, runner):
        statuses = []
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            async with http.get("/api/operator/state", headers=headers) as r:
                statuses.append(r.status)
                assert "badges" not in await r.text()
            async with http.post("/api/operator/session/start", headers=headers) as r:
                statuses.append(r.status)
        async with http.get("/operator") as r:
            statuses.append(r.status)
            assert "Token" in await r.text()
        async with http.get("/api/operator/events") as r:
            statuses.append(r.status)
        return statuses

    hub = InTestHub()
    assert run(_with_app(hub, body)) == [401] * 8
    assert hub.calls == []


def test_operator_api_with_bearer_token_reads_state_and_runs_actions():
    hub = InTestHub()

    async def body(http, runner):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get("/api/operator/state", headers=auth) as r:
            assert r.status == 200
            state = (await r.json())["state"]
        results = []
        for path in ("session/start", "session/end", "group-key/rotate"):
            async with http.post(f"/api/operator/{path}", headers=auth) as r:
                results.append((r.status, await r.json()))
        hub.refuse = True
        async with http.post("/api/operator/session/end", headers=auth) as r:
            results.append((r.status, await r.json()))
        return state, results

    state, results = run(_with_app(hub, body))
    assert state["badges"][0]["dev_id"] == 258 and state["rejections"] == {"mic": 2, "replay": 1}
    assert state["nan"] is None  # NaN from scoring becomes null, not invalid JSON
    assert [s for s, _ in results] == [200, 200, 200, 409]
    assert results[2][1] == {"ok": True, "action": "rotate_group_key", "result": {"done": "rotate_group_key"}}
    assert results[3][1]["error"] == "no session running"
    assert hub.calls == ["start_session", "end_session", "rotate_group_key", "end_session"]


def test_cookie_login_and_csrf_header_for_actions():
    hub = InTestHub()

    async def body(http, runner):
        async with http.post("/operator/login", json={"token": "nope"}) as r:
            assert r.status == 401
        assert not http.cookie_jar.filter_cookies(runner.url)
        async with http.post("/operator/login", data={"token": TOKEN}, allow_redirects=False) as r:
            assert r.status == 303
            cookie = r.cookies["lp_operator"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict"
            assert TOKEN not in cookie.value
        async with http.get("/operator") as r:
            assert r.status == 200 and "Start session" in await r.text()
        async with http.get("/api/operator/state") as r:
            assert r.status == 200
        async with http.post("/api/operator/session/start") as r:  # cookie alone: a cross-site form could do this
            assert r.status == 401
        async with http.post("/api/operator/session/start", headers={"X-LP-Operator": "1"}) as r:
            assert r.status == 200
        async with http.post("/operator/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with http.get("/api/operator/state") as r:
            return r.status

    assert run(_with_app(hub, body)) == 401
    assert hub.calls == ["start_session"]


def test_event_stream_pushes_a_new_view_on_each_hub_tick():
    hub = InTestHub(5)

    async def body(http, runner):
        async with http.get("/api/cove/events") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            seqs = []
            while len(seqs) < 3:
                line = (await r.content.readline()).decode().strip()
                if line.startswith("data: "):
                    seqs.append(json.loads(line[6:])["seq"])
                    hub.tick()  # refresh_s is 30 s here: only the tick can bring the next event
            return seqs

    assert run(_with_app(hub, body)) == [0, 1, 2]


def test_pages_have_a_strict_content_security_policy():
    async def body(http, runner):
        async with http.get("/") as r:
            html = await r.text()
            csp = r.headers["Content-Security-Policy"]
        async with http.get("/static/wall.js") as r:
            assert r.status == 200
        return html, csp

    html, csp = run(_with_app(InTestHub(), body))
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert 'id="wall"' in html and "<script>" not in html


@pytest.mark.parametrize("bad", ["", None])
def test_serve_web_without_token_makes_one(bad, capsys):
    async def main():
        runner = await serve_web(InTestHub(), "127.0.0.1", 0, bad)
        token = runner.token
        await runner.cleanup()
        return token

    token = run(main())
    assert len(token) >= 20 and token in capsys.readouterr().err


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=30)
_view_keys = sorted(PublicView.KEYS)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(_view_keys) | st.text(max_size=6), _json_values, max_size=14))
def test_public_view_from_json_refuses_or_keeps_the_contract(obj):
    """Untrusted views (MQTT into the sphere): either a BoundaryError or a view that keeps every rule."""
    try:
        view = PublicView.from_json(obj).to_json()
    except BoundaryError:
        return
    assert set(view) == PublicView.KEYS and set(obj) == PublicView.KEYS
    json.dumps(view, allow_nan=False)  # always valid JSON
    assert view["ready"] == (view["contributors"] >= K_MIN)
    if not view["ready"]:
        assert view["palette"] is None and view["groups"] == [] and view["swatches"] == []
    for group in view["groups"]:
        assert set(group) == GroupAggregate.KEYS and group["contributors"] >= K_MIN
    for value in (view["arousal"], view["synchrony"]):
        assert value is None or 0.0 <= value <= 1.0


def test_public_view_round_trips_and_refuses_unknown_or_missing_keys_and_small_groups():
    view = public_view(6, groups=(GroupAggregate("A", 6, 0.6, 0.3, (86, 180, 233)),), swatches=[(0, 255)] * 6)
    sent = view.stamped("north", 3).to_json()
    assert PublicView.from_json(json.loads(json.dumps(sent))).to_json() == sent
    for bad in ({**sent, "dev_id": 258}, {k: v for k, v in sent.items() if k != "session"},
                {**sent, "groups": [{**sent["groups"][0], "members": [258]}]},
                {**sent, "groups": [{**sent["groups"][0], "contributors": K_MIN - 1}]},
                {**sent, "contributors": K_MIN - 1}, {**sent, "ready": False},
                {**sent, "palette": {**sent["palette"], "hex": "#000000"}}, {**sent, "k_min": 2}):
        with pytest.raises(BoundaryError):
            PublicView.from_json(bad)
    with pytest.raises(BoundaryError):
        GroupAggregate("B", K_MIN - 1)


def test_a_change_between_ticks_reaches_the_stream_without_waiting_for_the_tick():
    hub = InTestHub(5)

    async def body(http, runner):
        async with http.get("/api/cove/events") as r:
            views = []
            while len(views) < 2:
                line = (await r.content.readline()).decode().strip()
                if line.startswith("data: "):
                    views.append(json.loads(line[6:]))
                    hub.contributors = 6  # a sixth person consents; no scoring tick follows (refresh_s = 30 s)
            return views

    first, second = run(_with_app(hub, body))
    assert (first["contributors"], second["contributors"]) == (5, 6)
    assert second["seq"] == first["seq"] == 0  # pushed by the watch, not by a tick
