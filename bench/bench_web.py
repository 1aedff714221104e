"""Web and end-to-end figures for the closing note (issue 7), measured on this machine in one run:

- frame -> wall: a CPython probe badge seals a telemetry frame with a new hue; the time until the wall in Chromium
  shows that swatch (MutationObserver timestamp vs. send time, same clock). Goal <= 1 s. Peer: the web feed's
  watch interval (0.25 s: changes between scoring ticks are pushed when seen).
- scoring tick -> wall: the time from the hub's tick (aggregates recomputed) to the wall rendering that tick's view;
  an aggregate (arousal, synchrony, palette) reaches the wall within one cadence (1 s) plus this.
- hub group colour -> badge LED: the hub's group colour switches; the time from the hub sending that frame to the
  virtual badge's LED line showing it (the badge's LED socket). Goal <= 2 s.
- hub CPU with 12 virtual badges streaming and the wall open in Chromium, as % of one core; peer: one MicroPython
  badge process's CPU in the same window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

N_BADGES = 12
CPU_WINDOW_S = 15.0
PROBES = 8
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PROBE_DEV = 999

SEEN_JS = """() => {
  window.lpSeen = {};
  window.lpSeq = {};
  new MutationObserver(() => {
    const seq = document.getElementById('wall').dataset.seq;
    if (!(seq in window.lpSeq)) window.lpSeq[seq] = Date.now();
  }).observe(document.getElementById('wall'), { attributes: true, attributeFilter: ['data-seq'] });
  const note = () => document.querySelectorAll('.swatch').forEach((d) => {
    if (d.dataset.hex && !(d.dataset.hex in window.lpSeen)) window.lpSeen[d.dataset.hex] = Date.now();
  });
  new MutationObserver(note).observe(document.getElementById('swatches'),
    { subtree: true, childList: true, attributes: true, attributeFilter: ['data-hex'] });
  note();
}"""


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                kids.append(int(entry))
    return kids + [k for kid in kids for k in _descendants(kid)]


class LedListener(asyncio.DatagramProtocol):
    def __init__(self):
        self.lines: list[tuple[float, list[int]]] = []

    def datagram_received(self, data: bytes, addr) -> None:
        parts = data.decode(errors="replace").split()  # "[dev] LED <ms> <pattern> r g b period"
        if "LED" in parts:
            at = parts.index("LED")
            if len(parts) >= at + 6:
                self.lines.append((time.time(), [int(parts[at + 3]), int(parts[at + 4]), int(parts[at + 5])]))


async def _bench() -> dict:
    from lifepalette.boundary import hex_colour
    from lifepalette.commands.demo import stop_process_groups
    from lifepalette.hub import Hub
    from lifepalette.hub.sitekey import badge_config, write_private_json
    from lifepalette.hub.views import hue_chroma_to_rgb
    from playwright.async_api import async_playwright

    from protocol import frame, records

    results: dict = {}
    tmp = tempfile.mkdtemp(prefix="lifepalette-bench-web-")
    hub = Hub(os.path.join(tmp, "hub.db"), udp=("127.0.0.1", 0), cadence_s=1.0)
    configs = []
    for i in range(N_BADGES):
        dev = 258 + i
        path = os.path.join(tmp, f"badge-{dev}.json")
        write_private_json(path, badge_config(dev, hub.enroll(dev), hub.group_id, hub.group_key))
        configs.append(path)
    probe_key = hub.enroll(PROBE_DEV)
    await hub.start()
    port = hub.transports[0].port
    from lifepalette.web import serve_web

    runner = await serve_web(hub, "127.0.0.1", 0, "bench", announce=False)
    loop = asyncio.get_running_loop()
    led_transport, led = await loop.create_datagram_endpoint(LedListener, local_addr=("127.0.0.1", 0))
    led_port = led_transport.get_extra_info("sockname")[1]
    procs = []
    for i, config in enumerate(configs):
        cmd = [sys.executable, "-m", "lifepalette", "badge", "run", "--config", config, "--udp", f"127.0.0.1:{port}",
               "--scenario", "dialogue", "--seed", str(i), "--consent"]
        if i == 0:
            cmd += ["--led", f"127.0.0.1:{led_port}"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe_ctr = [0]
    probe_hue = [0]

    def send_probe() -> None:
        probe_ctr[0] += 1
        values = {"hr_bpm": 70, "rmssd_ms": 40, "scl": 500, "scr_per_min": 3, "motion": 5, "hue": probe_hue[0],
                  "chroma": 255, "colour_age": 1, "consent": records.make_consent(True, True), "battery": 90,
                  "quality": 15}
        probe.sendto(frame.seal(probe_key, frame.TELEMETRY, PROBE_DEV, probe_ctr[0], records.pack_telemetry(values)),
                     ("127.0.0.1", port))

    async def keep_probe_alive():
        while True:
            send_probe()
            await asyncio.sleep(1.0)

    keeper = asyncio.create_task(keep_probe_alive())
    tick_times: list[float] = []
    hub.subscribe(lambda: tick_times.append(time.time()))  # after the web feed's own callback: seq n = tick n
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = await browser.new_page(bypass_csp=True)
            await page.goto(runner.url)
            t_ready = time.monotonic()
            await page.locator("#wall[data-state=live]").wait_for(timeout=90000)
            await page.wait_for_function(f"document.querySelectorAll('.swatch').length >= {N_BADGES + 1}",
                                         timeout=60000)
            results["badges_live_after_s"] = round(time.monotonic() - t_ready, 1)

            # hub CPU with the badges streaming and the wall open
            cpu0, wall0 = time.process_time(), time.monotonic()
            badge_pids = [procs[0].pid, *_descendants(procs[0].pid)]
            b0 = sum(_proc_cpu_s(pid) for pid in badge_pids)
            await asyncio.sleep(CPU_WINDOW_S)
            elapsed = time.monotonic() - wall0
            results["hub_cpu_pct_one_core"] = round(100 * (time.process_time() - cpu0) / elapsed, 1)
            results["one_badge_cpu_pct"] = round(100 * (sum(_proc_cpu_s(pid) for pid in badge_pids) - b0) / elapsed, 1)
            results["frames_stored"] = hub.store.frames_committed

            # frame -> wall
            await page.evaluate(SEEN_JS)
            latencies = []
            for k in range(PROBES):
                await asyncio.sleep(0.37 * (k % 3))  # spread sends across the scoring tick
                probe_hue[0] = (17 + 29 * k) % 256  # set and sent with no await between: t0 is the first send
                expected = hex_colour(hue_chroma_to_rgb(probe_hue[0], 255))
                t0 = time.time()
                send_probe()
                await page.wait_for_function(f"window.lpSeen['{expected}'] !== undefined", timeout=10000)
                seen_ms = await page.evaluate(f"window.lpSeen['{expected}']")
                latencies.append(seen_ms / 1000 - t0)
            results["frame_to_wall_s"] = _summary(latencies)
            seen_seq = await page.evaluate("window.lpSeq")
            tick_lat = [at / 1000 - tick_times[int(seq) - 1] for seq, at in seen_seq.items()
                        if 0 < int(seq) <= len(tick_times)]
            results["tick_to_wall_s"] = _summary(tick_lat) if tick_lat else "n/a"
            await browser.close()

        # hub group colour -> badge LED (badge 0 sends its LED lines to us)
        latencies = []
        sent_at: list[float] = []
        original = hub.broadcast_group_colour

        def timed_broadcast(rgb, arousal=0, synchrony=0):
            sent_at.append(time.time())
            return original(rgb, arousal, synchrony)

        hub.broadcast_group_colour = timed_broadcast
        for k in range(6):
            colour = (0, 0, 255) if k % 2 == 0 else (255, 0, 0)
            hub.group_colour = lambda c=colour: (c, 0, 0)  # the next ticks broadcast this colour
            await asyncio.sleep(0.5)  # the tick sends it...
            sent_at.clear()
            mark = len(led.lines)
            while not sent_at:
                await asyncio.sleep(0.01)
            t_sent = sent_at[0]
            # ...and the LED answers: blue vs red group blend moves B-R by ~190 (before the current cap)
            deadline = time.time() + 5
            found = None
            while time.time() < deadline and found is None:
                for t, rgb in led.lines[mark:]:
                    if t >= t_sent and ((rgb[2] - rgb[0] > 20) if colour[2] else (rgb[0] - rgb[2] > 20)):
                        found = t
                        break
                await asyncio.sleep(0.01)
            if found is not None:
                latencies.append(found - t_sent)
        results["group_colour_to_led_s"] = _summary(latencies) if latencies else "n/a (no LED change seen)"
        results["led_lines"] = len(led.lines)
    finally:
        keeper.cancel()
        led_transport.close()
        await asyncio.to_thread(stop_process_groups, procs)
        await runner.cleanup()
        await hub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _summary(values: list[float]) -> dict:
    values = sorted(values)
    return {"n": len(values), "mean": round(statistics.mean(values), 3), "median": round(statistics.median(values), 3),
            "max": round(values[-1], 3)}


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        results = asyncio.run(_bench())
        print(json.dumps(results, indent=1))
        f2w, g2l = results["frame_to_wall_s"], results["group_colour_to_led_s"]
        print(f"frame -> wall: mean {f2w['mean']} s, max {f2w['max']} s (goal <= 1 s; web feed watch 0.25 s)")
        t2w = results["tick_to_wall_s"]
        if isinstance(t2w, dict):
            print(f"scoring tick -> wall: mean {t2w['mean']} s, max {t2w['max']} s (aggregates: + up to one cadence)")
        if isinstance(g2l, dict):
            print(f"group colour -> LED: mean {g2l['mean']} s, max {g2l['max']} s (goal <= 2 s)")
        print(f"hub CPU with {N_BADGES} badges + wall open: {results['hub_cpu_pct_one_core']} % of one core "
              f"(one MicroPython badge: {results['one_badge_cpu_pct']} %)")


if __name__ == "__main__":
    main()
