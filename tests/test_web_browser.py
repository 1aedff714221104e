"""The wall and the console in REAL Chromium (Debian's /usr/bin/chromium via Playwright), served by the REAL hub
that ingests sealed frames over UDP from REAL virtual badges: `lifepalette badge run`, the badge firmware under the
MicroPython unix port, consenting at start and picking a hue by scripted clicks.

LP_WEB_TEST_BADGES=python swaps them for CPython UDP senders that seal telemetry with protocol/ (quicker, for
working on the web app alone).
"""

from __future__ import annotations

import json
import re

import pytest
from helpers.live_cove import BADGES, DEV_IDS, LIVE_MS, TOKEN, LiveCove, chromium
from lifepalette import __version__
from lifepalette.hub.schema import CURRENT

from protocol import records


@pytest.fixture(scope="module")
def cove(tmp_path_factory):
    live = LiveCove(tmp_path_factory.mktemp("hub") / "hub.db")
    yield live
    live.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _wall_attr(page, name):
    return page.eval_on_selector("#wall", f"e => e.dataset.{name}")


def test_wall_waits_for_five_then_goes_live_as_badges_stream(cove, browser, artifacts_dir):
    cove.set_badges(4)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        page.goto(cove.url)
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'waiting' && "
                               "document.querySelectorAll('.waiting-dot:not(.open)').length === 4", timeout=LIVE_MS)
        assert page.locator(".waiting-dot.open").count() == 1  # one place still open, drawn dashed
        assert "Waiting for 5 people" in page.inner_text("#waiting")
        assert "4 people are here so far" in page.inner_text("#waiting")
        assert page.locator(".swatch").count() == 0
        first_seq = int(_wall_attr(page, "seq"))
        page.screenshot(path=str(artifacts_dir / "cove_wall_waiting.png"))

        cove.set_badges(6)  # two more people consent: the same page, no reload, turns live
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'live' && "
                               "document.querySelectorAll('.swatch').length === 6", timeout=LIVE_MS)
        assert int(_wall_attr(page, "seq")) > first_seq
        words = page.inner_text("#mood-words")
        assert re.search(r"The room is (calm|stirred|intense)", words)
        # arousal is carried by motion too: every swatch pulses, with the period the group arousal sets
        durations = page.eval_on_selector_all(".swatch", "els => els.map(e => getComputedStyle(e).animationDuration)")
        assert len(set(durations)) == 1 and 1.5 <= float(durations[0].rstrip("s")) <= 8.0
        # each badge its own colour (the wearers' scripted clicks pick different hues)
        page.wait_for_function("new Set([...document.querySelectorAll('.swatch')].map(e => e.dataset.hex)).size >= 3",
                               timeout=LIVE_MS)
        renders = int(_wall_attr(page, "renders"))
        page.wait_for_function(f"Number(document.querySelector('#wall').dataset.renders) >= {renders + 2}",
                               timeout=LIVE_MS)  # keeps updating with each scoring tick
        page.wait_for_timeout(600)  # let the 2 s position transitions settle before the picture
        page.screenshot(path=str(artifacts_dir / "cove_wall.png"))
        text = page.inner_text("body")
    finally:
        page.close()
    for dev in DEV_IDS:
        assert str(dev) not in text
    print(f"\nbadges used: {BADGES}")


def test_pages_run_under_their_own_strict_csp_without_errors(cove, browser):
    cove.set_badges(6)
    page = browser.new_page()  # no bypass: the shipped Content-Security-Policy applies
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(cove.url)
        page.locator("#wall[data-state=live]").wait_for(timeout=LIVE_MS)
        page.locator(".swatch").first.wait_for(timeout=LIVE_MS)
        page.goto(cove.url + "operator")
        page.locator("#login-form").wait_for()
    finally:
        page.close()
    # the operator page answers 401 before sign-in; Chromium logs that load as an error, nothing else is allowed
    assert [e for e in errors if "401" not in e] == []


def test_operator_console_refuses_without_the_token_and_works_with_it(cove, browser, artifacts_dir):
    cove.set_badges(6)
    context = browser.new_context(bypass_csp=True)  # Playwright polls predicates by eval
    page = context.new_page()
    try:
        response = page.goto(cove.url + "operator")
        assert response.status == 401
        assert page.locator("#badges").count() == 0 and page.locator("#login-form").count() == 1
        status = page.evaluate("fetch('/api/operator/state').then(r => r.status)")
        assert status == 401
        page.fill("#token", "not-the-token")
        page.click("button[type=submit]")
        page.wait_for_selector("text=That token was not accepted.")
        assert page.locator("#badges").count() == 0

        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("#badges table", timeout=LIVE_MS)
        page.wait_for_function("document.querySelector('#badges-online').textContent === '6'", timeout=LIVE_MS)
        table = page.inner_text("#badges")
        assert all(str(dev) in table for dev in DEV_IDS)  # the operator does see badges, by id
        assert "mic" in page.inner_text("#rejections")
        assert page.inner_text("#cadence") == "every 0.5 s"
        # the per-person privacy budget spent on public numbers this session (issue 13)
        page.wait_for_function("/% · rho [0-9.]+ of [0-9.]+/.test(document.querySelector('#privacy-budget')"
                               ".textContent)", timeout=LIVE_MS)
        # the hub's own trust: its clock (this machine's real NTP state) and the release and schema it runs
        assert page.inner_text("#clock") in ("NTP-synchronised", "NOT synchronised", "unknown")
        assert page.inner_text("#release") == f"lifepalette {__version__} · database schema {CURRENT}"
        page.screenshot(path=str(artifacts_dir / "operator_console.png"), full_page=True)
        page.click("#start-session")
        page.wait_for_function("document.querySelector('#session').textContent.startsWith('running')",
                               timeout=LIVE_MS)
        assert cove.hub.session_id is not None
        page.click("#end-session")
        page.wait_for_function("document.querySelector('#session').textContent === 'no session'", timeout=LIVE_MS)
        assert cove.hub.session_id is None
        old_key = cove.hub.group_key
        page.click("#rotate-key")
        page.wait_for_function("document.querySelector('#action-result').textContent.startsWith('rotate group key: done')",
                               timeout=LIVE_MS)
        assert cove.hub.group_key != old_key
        assert cove.hub.group_key.hex() not in page.content()  # key material never reaches the browser
        cookies = context.cookies()
        assert [c["name"] for c in cookies] == ["lp_operator"] and cookies[0]["httpOnly"]
        assert TOKEN not in cookies[0]["value"]
    finally:
        context.close()
    # a fresh browser (no cookie) is refused again
    fresh = browser.new_page()
    try:
        assert fresh.goto(cove.url + "operator").status == 401
    finally:
        fresh.close()


def test_token_in_the_url_fragment_signs_in_and_is_removed_from_the_address(cove, browser):
    page = browser.new_page(bypass_csp=True)
    try:
        page.goto(cove.url + f"operator#token={TOKEN}")
        page.wait_for_selector("#badges table", timeout=LIVE_MS)
        assert TOKEN not in page.url
    finally:
        page.close()


def test_public_api_and_stream_leak_nothing_per_wearer(cove, browser):
    cove.set_badges(6)
    page = browser.new_page(bypass_csp=True)
    try:
        page.goto(cove.url)
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'live'", timeout=LIVE_MS)
        api = page.evaluate("fetch('/api/cove').then(r => r.text())")
        streamed = page.evaluate("""new Promise((resolve) => {
            const s = new EventSource('/api/cove/events');
            s.onmessage = (ev) => { s.close(); resolve(ev.data); };
        })""")
    finally:
        page.close()
    for payload in (api, streamed):
        view = json.loads(payload)
        assert view["ready"] and view["contributors"] == 6
        assert set(view) == {"cove", "seq", "updated", "k_min", "contributors", "ready", "palette", "arousal",
                             "synchrony", "groups", "swatches", "session"}
        for dev in DEV_IDS:
            assert str(dev) not in payload
        for field in records.TELEMETRY_FIELDS:
            assert f'"{field}"' not in payload
        assert "dev" not in payload and "wearer" not in payload
        # swatches are bare colours; no per-badge number travels with them
        assert all(re.fullmatch(r"#[0-9a-f]{6}", s) for s in view["swatches"])
        for group in view["groups"]:
            assert group["contributors"] >= 5


def test_the_wall_moves_only_what_the_compositor_can_move_alone(cove, browser):
    """A Pi drives its own screen: every animation and transition on the wall is on transform or opacity (no
    layout, no paint per frame). bench/bench_wall.py measures what that costs in Chromium."""
    cove.set_badges(6)
    page = browser.new_page(bypass_csp=True)
    try:
        page.goto(cove.url)
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'live'", timeout=LIVE_MS)
        page.wait_for_function("document.getAnimations().length >= 6", timeout=LIVE_MS, polling=50)  # a beat
        animated = page.evaluate("""() => document.getAnimations().flatMap((a) => a.effect.getKeyframes()
            .flatMap((k) => Object.keys(k).filter((p) => !['offset', 'computedOffset', 'easing', 'composite']
            .includes(p))))""")
        transitioned = page.evaluate("""() => [...document.querySelectorAll('*')].flatMap((el) => {
            const s = getComputedStyle(el);
            const names = s.transitionProperty.split(', '), times = s.transitionDuration.split(', ');
            return names.filter((_, i) => parseFloat(times[i % times.length]) > 0);
          })""")
        css_animations = page.evaluate("""() => [...document.querySelectorAll('*')]
            .map((el) => getComputedStyle(el).animationName).filter((n) => n !== 'none')""")
    finally:
        page.close()
    assert animated and set(animated) <= {"transform", "opacity"}
    assert transitioned and set(transitioned) <= {"transform", "opacity"}
    assert css_animations == []  # beats are short Web Animations: between beats nothing runs
