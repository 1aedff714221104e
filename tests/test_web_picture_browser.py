"""The session as a picture in REAL Chromium, served by the REAL hub fed by real virtual badges (as in
test_web_browser.py, whose LiveCove this module reuses): the wall's journey ribbon grows from released views, the
operator dashboard's charts render and update, and the facilitator's report opens with every request blocked and
shows no device id and no per-wearer value. Screenshots go to artifacts/."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from statistics import mean

import pytest
from helpers.live_cove import DEV_IDS, LIVE_MS, TOKEN, LiveCove, chromium
from helpers.waits import wait_for
from lifepalette import cli


@pytest.fixture(scope="module")
def cove(tmp_path_factory):
    live = LiveCove(tmp_path_factory.mktemp("hub") / "hub.db")
    yield live
    live.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


async def _session(hub, start: bool) -> dict:
    return hub.start_session() if start else hub.end_session()


def _ribbon(page) -> int:
    return int(page.eval_on_selector("#wall", "e => e.dataset.ribbon || '0'"))


def test_the_wall_s_ribbon_grows_from_released_views(cove, browser, artifacts_dir):
    cove.set_badges(4)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    try:
        page.goto(cove.url)
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'waiting'", timeout=LIVE_MS)
        page.locator("#ribbon line.waiting").first.wait_for(state="attached", timeout=LIVE_MS)
        assert page.locator("#ribbon rect.seg").count() == 0  # nothing released while fewer than 5 share
        assert "waiting for 5 people" in page.inner_text("#journey-summary")
        page.screenshot(path=str(artifacts_dir / "cove_wall_ribbon_waiting.png"))

        cove.set_badges(6)
        page.wait_for_function("document.querySelectorAll('#ribbon rect.seg').length >= 1", timeout=LIVE_MS)
        first = _ribbon(page)
        page.wait_for_function(f"Number(document.querySelector('#wall').dataset.ribbon) >= {first + 2}",
                               timeout=LIVE_MS)  # the ribbon grows as the session goes on
        assert page.locator("#ribbon polyline.strand").count() >= 5  # synchrony: the strands' coherence
        assert re.search(r"the room has been (calm|stirred|intense)", page.inner_text("#journey-summary"))
        # every colour on the ribbon is one the hub released: the journey the hub kept, not a recomputation
        released = page.evaluate("fetch('/api/cove/journey').then(r => r.json())")
        fills = set(page.eval_on_selector_all("#ribbon rect.seg", "els => els.map(e => e.getAttribute('fill'))"))
        assert len(fills) <= len([p for p in released["points"] if p.get("rgb")])
        for point in released["points"]:
            assert set(point) <= {"t", "n", "rgb", "a", "s", "b", "c", "g"}
            assert "rgb" not in point or point["n"] >= released["k_min"]
        newest = released["points"][-1]["t"]
        later = page.evaluate(f"fetch('/api/cove/journey?since={newest}').then(r => r.json())")
        assert later["started"] == released["started"] and all(p["t"] > newest for p in later["points"])
        assert page.evaluate("fetch('/api/cove/journey?since=soon').then(r => r.status)") == 400
        page.screenshot(path=str(artifacts_dir / "cove_wall_ribbon.png"))
        text = page.inner_text("body")
    finally:
        page.close()
    for dev in DEV_IDS:
        assert str(dev) not in text


def _contrast(page, selector: str) -> float:
    """WCAG contrast of an element's text against the first opaque background behind it.

    The element is looked up and measured in one evaluation: the live tables re-render every second, and an
    element handle taken in one round trip can be detached (no computed style) by the next."""
    return page.evaluate("""(selector) => {
        const el = document.querySelector(selector);
        if (!el) return `no element: ${selector}`;
        const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => { const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
        const style = getComputedStyle(el);
        const painted = el instanceof SVGElement ? style.fill : style.color;
        if (!/[\\d.]+/.test(painted)) return `no colour: ${painted}`;
        let fg = rgb(painted), bg = null, node = el;
        while (node && node.nodeType === 1) {
          const b = rgb(getComputedStyle(node).backgroundColor);
          if (b.length < 4 || b[3] > 0.9) { if (b.length < 4 || b[3] > 0) { bg = b.slice(0, 3); break; } }
          node = node.parentElement;
        }
        bg = bg || [255, 255, 255];
        const [a, b] = [lum(fg.slice(0, 3)), lum(bg)].sort((x, y) => y - x);
        return (a + 0.05) / (b + 0.05);
    }""", selector)


def test_operator_dashboard_charts_render_update_and_need_no_json(cove, browser, artifacts_dir):
    cove.set_badges(6)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(cove.url + f"operator#token={TOKEN}")
        page.wait_for_selector("#badges table", timeout=LIVE_MS)  # signed in (the login page moves on by itself)
        page.wait_for_function("Number(document.querySelector('#chart-frames').dataset.points || 0) >= 2",
                               timeout=LIVE_MS)
        for chart in ("contributors", "frames", "rejections"):
            assert page.locator(f"#chart-{chart} polyline.series").count() >= 1
        points = int(page.get_attribute("#chart-contributors", "data-points"))
        page.wait_for_function(f"Number(document.querySelector('#chart-contributors').dataset.points) > {points}",
                               timeout=LIVE_MS)  # the charts keep up with the hub
        page.wait_for_function("/^\\d/.test(document.querySelector('#latest-frames').textContent)", timeout=LIVE_MS)
        page.wait_for_function("document.querySelector('#latest-contributors').textContent === '6'", timeout=LIVE_MS)
        # arousal is charted from released views only: as many points as the journey released with an arousal
        state = page.evaluate("fetch('/api/operator/state').then(r => r.json())")
        released = [a for _t, a in state["dashboard"]["charts"]["arousal"] if a is not None]
        page.wait_for_function(f"Number(document.querySelector('#chart-arousal').dataset.points) >= {len(released)}",
                               timeout=LIVE_MS)
        assert page.locator("#chart-arousal .tick").count() == 5  # drawn, with its axis, even before a release
        # per-badge sparklines and the flags column, one row per badge
        page.wait_for_function("document.querySelectorAll('#badge-table tbody tr').length === 6", timeout=LIVE_MS)
        page.wait_for_function("document.querySelectorAll('#badge-table svg.spark polyline').length >= 12",
                               timeout=LIVE_MS)
        rows = page.eval_on_selector_all("#badge-table tbody tr", "rs => rs.map(r => r.dataset.dev)")
        assert sorted(map(int, rows)) == DEV_IDS
        assert all(page.locator(f"#badge-table tr[data-dev='{d}'] td").last.inner_text() for d in DEV_IDS)
        text = page.inner_text("body")
        assert not re.search(r'[{\[]\s*"', text), "raw JSON on the console"
        assert "Everything else" not in text
        # labelled: every chart and sparkline says what it is
        labels = page.eval_on_selector_all("svg.chart, svg.spark", "els => els.map(e => e.getAttribute('aria-label'))")
        assert labels and all(label and ":" in label for label in labels)
        # keyboard: Tab reaches every action and the report link, in order
        reached = []
        for _ in range(8):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        assert reached[:4] == ["start-session", "end-session", "rotate-key", "latest-report"]
        for selector in ("figcaption", "svg .tick", "#badge-table th", "#badge-table td", "h2"):
            ratio = _contrast(page, selector)
            assert isinstance(ratio, float) and ratio >= 4.5, (selector, ratio)
        page.screenshot(path=str(artifacts_dir / "operator_dashboard.png"), full_page=True)
        cove.set_badges(5)  # one badge goes quiet: its row says so in words, and the summary counts it
        quiet = DEV_IDS[5]
        page.wait_for_function(f"(document.querySelector(\"#badge-table tr[data-dev='{quiet}']\") || {{}})"
                               ".textContent?.includes('⚠ stale link')", timeout=LIVE_MS)
        assert page.inner_text("#badges-flagged").startswith("⚠ ")  # (a virtual badge may also lose contact)
        assert "stale link" not in page.inner_text(f"#badge-table tr[data-dev='{DEV_IDS[0]}']")
        page.screenshot(path=str(artifacts_dir / "operator_dashboard_flagged.png"), full_page=True)
    finally:
        context.close()


def _per_wearer_values(db) -> set[str]:
    """What a leaky report might print about one wearer: their mean physiology and their own frame count."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        shown: set[str] = set()
        for dev in DEV_IDS:
            rows = con.execute("SELECT hr_bpm, rmssd_ms, scl FROM physio WHERE dev_id = ?", (dev,)).fetchall()
            for column in zip(*rows, strict=True) if rows else ():
                values = [v for v in column if v is not None and v < 250]
                if values:
                    shown |= {f"{mean(values):.1f}", f"{mean(values):.2f}"}
            n = con.execute("SELECT COUNT(*) FROM frames WHERE dev_id = ?", (dev,)).fetchone()[0]
            if n >= 100:
                shown.add(str(n))
        return shown
    finally:
        con.close()


def _wearers_in_session(db_path, session: int) -> int:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as con:
        return con.execute("SELECT COUNT(DISTINCT f.dev_id) FROM frames f JOIN sessions s ON s.id = ? "
                           "WHERE f.ftype IN (0, 1, 4) AND f.t_rx >= s.started_at", (session,)).fetchone()[0]


def test_session_report_from_the_console_and_the_cli_opens_offline_and_shows_no_one(cove, browser, tmp_path,
                                                                                     artifacts_dir):
    cove.set_badges(6)
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(cove.url)  # the wall open during the session: the public view is released and kept
        page.wait_for_function("document.querySelector('#wall').dataset.state === 'live'", timeout=LIVE_MS)
        session = cove.call(_session(cove.hub, True))["id"]
        page.wait_for_function("Number(document.querySelector('#wall').dataset.ribbon) >= 3", timeout=LIVE_MS)
        # the report shares data quality only over >= 5 wearers: let that many send inside the session first
        wait_for(lambda: _wearers_in_session(cove.db_path, session) >= 5, timeout=LIVE_MS / 1000,
                 what="5 wearers' frames stored inside the session")
        page.goto(cove.url + f"operator#token={TOKEN}")
        page.wait_for_selector("#badges table", timeout=LIVE_MS)
        page.wait_for_function("document.querySelector('#session').textContent.startsWith('running')",
                               timeout=LIVE_MS)
        page.click("#end-session")
        link = page.locator(f"#report-link a[href='/operator/report?session={session}']")
        link.wait_for(timeout=LIVE_MS)  # the console offers the report when the session ends
        served = page.evaluate(f"fetch('/operator/report?session={session}').then(r => r.text())")
        assert f"Session {session}" in served and "as the hub released them live" in served
    finally:
        context.close()
    stranger = browser.new_page()
    try:
        stranger.goto(cove.url)
        assert stranger.evaluate(f"fetch('/operator/report?session={session}').then(r => r.status)") == 401
    finally:
        stranger.close()

    out = tmp_path / "report.html"
    assert cli.main(["report", "--db", str(cove.db_path), "--out", str(out)]) == 0
    html = out.read_text()
    assert f"Session {session}" in html
    for dev in DEV_IDS:
        assert str(dev) not in html
    assert "dev_id" not in html

    offline = browser.new_context()
    attempted: list[str] = []
    here = "http://report.invalid/report.html"  # the page itself is handed over; any other request is refused

    def refuse(route):
        if route.request.url == here:
            route.fulfill(body=html, content_type="text/html; charset=utf-8")
            return
        attempted.append(route.request.url)
        route.abort()

    offline.route("**/*", refuse)
    page = offline.new_page()
    try:
        page.goto(here)
        assert page.locator("svg").count() >= 5  # ribbon, two trajectories, contributors, quality
        assert page.locator("svg rect[fill^='#']").count() >= 1  # the released colours on the ribbon
        assert "Contributors over time" in page.inner_text("body")
        text = page.inner_text("body")
        page.screenshot(path=str(artifacts_dir / "session_report.png"), full_page=True)
        pdf = page.pdf(format="A4", print_background=True)  # printable: Chromium's own print path
        assert pdf.startswith(b"%PDF") and 1 <= pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") <= 6
        (artifacts_dir / "session_report.pdf").write_bytes(pdf)
    finally:
        offline.close()
    assert attempted == []  # nothing asked of any network
    numbers = set(re.findall(r"\d+(?:\.\d+)?", text))
    leaked = numbers & _per_wearer_values(cove.db_path)
    assert leaked == set(), f"per-wearer values in the report: {leaked}"
