"""The wearer's page (/me) in REAL Chromium under its shipped Content-Security-Policy, served by the real hub from a
real database: the journey drawn from the stored session, words for every picture, nothing about anyone else, and
erasure from the page. Also the operator console's wearer card. Screenshots go to artifacts/."""

from __future__ import annotations

import asyncio
import re
import shutil

import pytest
from helpers.live_cove import CHROMIUM, CHROMIUM_ARGS
from helpers.wearer_cove import DEVS, SECONDS, A, record_session
from lifepalette.hub import Hub, wearer_link
from lifepalette.web import serve_web

TOKEN = "wearer-browser-operator-token"
WAIT_MS = 60_000


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 240))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return record_session(tmp_path_factory.mktemp("recorded"))


@pytest.fixture
def db(recorded, tmp_path):
    for path in recorded.iterdir():
        shutil.copy2(path, tmp_path / path.name)
    return tmp_path / "hub.db"


async def in_browser(db, body):
    if not CHROMIUM:
        pytest.fail("chromium is not installed: run `make system-deps` (Debian package chromium)")
    from playwright.async_api import async_playwright

    hub = Hub(db)
    await hub.start()
    runner = await serve_web(hub, "127.0.0.1", 0, TOKEN, announce=False, refresh_s=30)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                return await body(browser, runner.url, hub)
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
        await hub.stop()


def test_the_wearer_page_shows_their_own_journey_in_words_and_pictures_and_erases_on_request(db, artifacts_dir):
    async def body(browser, url, hub):
        token = wearer_link.make_token(hub.site_key, A, hub.store.issue_wearer_link(A))
        page = await browser.new_page(viewport={"width": 430, "height": 2400})  # a phone, long enough for all
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        await page.goto(f"{url}me#{token}")
        await page.wait_for_selector("#me[data-state=ready]", timeout=WAIT_MS)
        out = {"points": {}, "words": {}}
        for idea in ("level", "arousal", "regulation", "synchrony"):
            out["points"][idea] = int(await page.get_attribute(f"#{idea}-chart svg", "data-points"))
            out["words"][idea] = await page.inner_text(f"#{idea}-words")
        out["consent"] = await page.inner_text("#consent-words")
        out["stored"] = await page.inner_text("#stored-words")
        out["pictures"] = await page.locator(".idea .picture svg").count()
        await page.screenshot(path=str(artifacts_dir / "wearer_page.png"), full_page=True)
        out["text_before"] = await page.inner_text("body")
        out["requests"] = list(requests)
        # erasure: the button stays disabled until the wearer says they understand
        out["disabled_first"] = await page.is_disabled("#erase-button")
        await page.check("#erase-sure")
        await page.click("#erase-button")
        # locators, not wait_for_function: the page's CSP forbids the eval that a JavaScript predicate needs
        await page.locator("#erase-result", has_text="Done").wait_for(timeout=WAIT_MS)
        out["erase_words"] = await page.inner_text("#erase-result")
        await page.locator("#stored-words", has_text="You erased").wait_for(timeout=WAIT_MS)
        out["stored_after"] = await page.inner_text("#stored-words")
        out["level_after"] = int(await page.get_attribute("#level-chart svg", "data-points"))
        out["consent_after"] = await page.inner_text("#consent-words")
        await page.screenshot(path=str(artifacts_dir / "wearer_page_erased.png"), full_page=True)
        out["physio_left"] = hub.store.count_physio(A)
        out["receipts"] = [(r["dev_id"], r["reason"]) for r in hub.operator_state()["erasures"]]
        # a link that opens nothing says so, in words
        denied = await browser.new_page()
        await denied.goto(f"{url}me#{token[:-2]}xx")
        await denied.wait_for_selector("#me[data-state=denied]", timeout=WAIT_MS)
        out["denied"] = await denied.inner_text("#denied")
        out["errors"] = errors
        # the operator sees the wearer's erasure among the receipts on the console
        console = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await console.goto(f"{url}operator")
        await console.fill("input[name=token]", TOKEN)
        await console.click("button[type=submit]")
        await console.locator("#receipts", has_text="wearer").wait_for(timeout=WAIT_MS)
        out["console_receipts"] = await console.inner_text("#receipts")
        return out

    out = run(in_browser(db, body))
    assert out["errors"] == []  # the shipped CSP applies (no bypass): no inline script or style was needed
    assert out["pictures"] >= 6  # one picture per idea
    assert all(n >= 5 for n in out["points"].values()), out["points"]
    assert "Compassion Metric is 0." in out["words"]["level"]
    assert any(w in out["words"]["arousal"] for w in ("calm", "stirred", "intense"))
    assert "We never show who they were" in out["words"]["synchrony"]
    assert out["consent"].startswith("Your badge shares your body signals and the colour you chose")
    assert f"{SECONDS} readings of your body signals" in out["stored"]
    for other in DEVS[1:]:
        assert not re.search(rf"(?<![\d.]){other}(?![\d.])", out["text_before"])
    # the token travelled only in the Authorization header: no request URL ever carried it
    assert not [u for u in out["requests"] if out_token_in(u)]
    assert out["disabled_first"] is True
    assert out["erase_words"].startswith(f"Done: {SECONDS} readings")
    assert "and 0 readings" in out["stored_after"] and "You erased your body signals once" in out["stored_after"]
    assert out["level_after"] == 0 and out["physio_left"] == 0
    assert "the hub keeps none of your body signals until you give consent again" in out["consent_after"]
    assert out["receipts"][0] == (A, "wearer")
    assert "does not open a page" in out["denied"]
    assert "wearer" in out["console_receipts"] and str(A) in out["console_receipts"]


def out_token_in(url: str) -> bool:
    """A request URL carrying anything after /me but the page itself (the fragment is never part of a request)."""
    return "#" in url or "token" in url.lower()


def test_the_operator_console_prints_and_rotates_a_wearer_card(db, artifacts_dir):
    async def body(browser, url, hub):
        page = await browser.new_page(viewport={"width": 1280, "height": 1400})
        await page.goto(f"{url}operator")
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#wearer-cards", timeout=WAIT_MS)
        await page.fill("#card-dev", str(A))
        await page.click("#card-rotate")
        await page.locator("#card-result", has_text="new card").wait_for(timeout=WAIT_MS)
        await page.locator("#card-preview:not([hidden])").wait_for(timeout=WAIT_MS)
        await page.wait_for_function("document.querySelector('#card-preview').naturalWidth > 0", timeout=WAIT_MS)
        words = await page.inner_text("#card-result")
        await page.locator("#wearer-cards").screenshot(path=str(artifacts_dir / "wearer_card_console.png"))
        return words, hub.store.wearer_generation(A)

    words, generation = run(in_browser(db, body))
    assert generation == 1 and "every older card stopped working" in words
