"""What the cove wall costs the machine that shows it (issue 18): the Pi drives its own HDMI screen beside the hub.
Part of bench_web (`python -m bench bench_web`); alone: `python -m bench.wall_cost`.

Real hub, real web app, six CPython badges streaming sealed telemetry over UDP (enough for the k=5 wall to go
live), the wall open in headless Chromium with software rendering (--disable-gpu). After the wall settles, over a
fixed window, from Chromium's own performance metrics (CDP `Performance.getMetrics`):

- layouts per second (LayoutCount) and style recalculations per second (RecalcStyleCount);
- renderer main-thread task time as % of one core (TaskDuration);
- and, outside Chromium's view, the CPU of every Chromium process (renderer, GPU/software compositor, browser)
  as % of one core from /proc.

Peers in the same run: the wall as it was before issue 18 (SVG, endless CSS animations; its three files read from
git at BEFORE_ISSUE_18, skipped outside a git checkout), and the current page, still receiving every tick, with
every CSS animation and transition paused and Web Animations stopped, i.e. what the updates alone cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path

WINDOW_S = 30.0
SETTLE_S = 4.0
N_BADGES = 6
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BEFORE_ISSUE_18 = "d97643a"  # the commit that added this bench, before the wall changed
FREEZE_JS = """() => {
  const style = document.createElement('style');
  style.textContent = '*, *::before, *::after { animation-play-state: paused !important; transition: none !important; }';
  document.head.append(style);
  document.getAnimations().forEach((a) => a.cancel());
  Element.prototype.animate = () => null;  // the wall's beats are Web Animations
}"""


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                found.append(int(entry))
    return found + [grand for kid in found for grand in _children(kid)]


def _chromium_pids() -> dict[int, str]:
    """Chromium's processes under this one, by role (--type=renderer, gpu-process, ...; the browser has none)."""
    pids = {}
    for pid in _children(os.getpid()):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"chrom" in cmdline.split(b" ", 1)[0]:
            role = re.search(rb"--type=(\S+)", cmdline)  # zygote children rewrite argv into one string
            pids[pid] = role.group(1).decode() if role else "browser"
    return pids


async def _metrics(cdp) -> dict[str, float]:
    result = await cdp.send("Performance.getMetrics")
    return {m["name"]: m["value"] for m in result["metrics"]}


async def measure(page, cdp, window_s: float) -> dict:
    """Layouts/s, style recalcs/s, main-thread task % and all-Chromium CPU % over `window_s` of wall time."""
    pids = _chromium_pids()
    m0, c0, t0 = await _metrics(cdp), {p: _proc_cpu_s(p) for p in pids}, time.monotonic()
    await asyncio.sleep(window_s)
    m1, c1, t1 = await _metrics(cdp), {p: _proc_cpu_s(p) for p in pids}, time.monotonic()
    span = t1 - t0
    by_role: dict[str, float] = {}
    for pid, role in pids.items():
        by_role[role] = by_role.get(role, 0.0) + 100 * (c1[pid] - c0[pid]) / span
    return {"layouts_per_s": round((m1["LayoutCount"] - m0["LayoutCount"]) / span, 2),
            "style_recalcs_per_s": round((m1["RecalcStyleCount"] - m0["RecalcStyleCount"]) / span, 2),
            "main_thread_task_pct": round(100 * (m1["TaskDuration"] - m0["TaskDuration"]) / span, 2),
            "chromium_cpu_pct": round(sum(by_role.values()), 1),
            "chromium_cpu_pct_by_process": {role: round(v, 1) for role, v in sorted(by_role.items())},
            "renders": await page.evaluate("Number(document.querySelector('#wall').dataset.renders)"),
            # the beat period the room's arousal set (one beat per swatch per period): the duty of the animations
            "pulse_period_s": await page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('.swatch')).animationDuration)")}


def _wall_before(into: str) -> str | None:
    """A static folder serving the wall as it was before issue 18 (None when git cannot show it)."""
    import subprocess

    from lifepalette.paths import REPO_ROOT
    from lifepalette.web import app

    folder = os.path.join(into, "static-before")
    shutil.copytree(app.STATIC, folder)
    for name in ("wall.html", "wall.css", "wall.js"):
        shown = subprocess.run(["git", "-C", str(REPO_ROOT), "show",
                                f"{BEFORE_ISSUE_18}:host/lifepalette/web/static/{name}"], capture_output=True)
        if shown.returncode != 0:
            return None
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(shown.stdout)
    return folder


async def _open_wall(browser, url: str):
    page = await browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    await page.goto(url)
    await page.locator("#wall[data-state=live]").wait_for(timeout=90000)
    await page.wait_for_function(f"document.querySelectorAll('.swatch').length >= {N_BADGES}", timeout=60000)
    await asyncio.sleep(SETTLE_S)
    return page, cdp


async def _measure_before(browser, hub, folder: str) -> dict:
    from lifepalette.web import app, serve_web

    current, app.STATIC = app.STATIC, Path(folder)  # the app reads its pages from here while this one runs
    try:
        runner = await serve_web(hub, "127.0.0.1", 0, "bench-wall-token", announce=False)
        try:
            page, cdp = await _open_wall(browser, runner.url)
            result = await measure(page, cdp, WINDOW_S)
            await page.close()
        finally:
            await runner.cleanup()
    finally:
        app.STATIC = current
    return result


async def _bench() -> dict:
    from lifepalette.hub import Hub
    from lifepalette.web import serve_web
    from playwright.async_api import async_playwright

    from protocol import frame, records

    tmp = tempfile.mkdtemp(prefix="lifepalette-bench-wall-")
    hub = Hub(os.path.join(tmp, "hub.db"), udp=("127.0.0.1", 0), cadence_s=1.0)
    keys = {dev: hub.enroll(dev) for dev in range(300, 300 + N_BADGES)}
    await hub.start()
    port = hub.transports[0].port
    runner = await serve_web(hub, "127.0.0.1", 0, "bench-wall-token", announce=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctr = [0]

    async def stream():
        while True:
            ctr[0] += 1
            for i, (dev, key) in enumerate(keys.items()):
                values = {"hr_bpm": 66 + 4 * i + ctr[0] % 5, "rmssd_ms": 40, "scl": 480 + 25 * i + ctr[0] % 7,
                          "scr_per_min": 3, "motion": 10, "hue": (i * 43) % 256, "chroma": 210, "colour_age": 2,
                          "consent": records.make_consent(True, True), "battery": 80, "quality": 15}
                sock.sendto(frame.seal(key, frame.TELEMETRY, dev, ctr[0], records.pack_telemetry(values)),
                            ("127.0.0.1", port))
            await asyncio.sleep(1.0)

    streamer = asyncio.create_task(stream())
    results: dict = {"window_s": WINDOW_S, "viewport": "1280x720", "badges": N_BADGES}
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            before = _wall_before(tmp)
            results["before_issue_18"] = (await _measure_before(browser, hub, before) if before else
                                          f"skipped: git cannot show {BEFORE_ISSUE_18}")
            page, cdp = await _open_wall(browser, runner.url)
            results["wall"] = await measure(page, cdp, WINDOW_S)
            await page.evaluate(FREEZE_JS)
            await asyncio.sleep(SETTLE_S / 2)
            results["frozen_peer"] = await measure(page, cdp, WINDOW_S)
            await browser.close()
    finally:
        streamer.cancel()
        sock.close()
        await runner.cleanup()
        await hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        results = asyncio.run(_bench())
        print(json.dumps(results, indent=1))
        wall, peer, old = results["wall"], results["frozen_peer"], results["before_issue_18"]
        print(f"wall: {wall['layouts_per_s']} layouts/s, main-thread tasks {wall['main_thread_task_pct']} % of a core, "
              f"all Chromium processes {wall['chromium_cpu_pct']} % (goal: 0 layouts/s, <= 3 %)")
        print(f"frozen peer: {peer['layouts_per_s']} layouts/s, tasks {peer['main_thread_task_pct']} %, "
              f"Chromium {peer['chromium_cpu_pct']} %")
        if isinstance(old, dict):
            print(f"the wall before issue 18: {old['layouts_per_s']} layouts/s, tasks {old['main_thread_task_pct']} %, "
                  f"Chromium {old['chromium_cpu_pct']} % (now {wall['chromium_cpu_pct'] / max(old['chromium_cpu_pct'], 0.1):.2f}x)")


if __name__ == "__main__":
    main()
