"""Firmware figures for the closing note (issue 4): .mpy size for the ESP32, heap on the unix port, time per
one-second step, and latency from a button press or the last sample of a second to the LED.

Times are measured inside the real MicroPython process (time.ticks_us) with CPython running the same kernels on the
same samples as the peer, so the ratio carries over between machines better than the absolute numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from lifepalette.paths import micropython_binary
from lifepalette.sim import power
from lifepalette.tools.build import badge_source_files, mpy_cross
from lifepalette.virtual_badge import HEAPSIZE, compile_firmware, firmware_module

SECONDS = 120
CONFIG = {"dev_id": 258, "key": "00" * 16, "group_key": "11" * 16, "board": "virtual"}
RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}

BADGE_SCRIPT = """
import gc, json, time
from app import config
cfg, reason = config.load("config.json")
from app import pipeline, storage
feats = pipeline.Features(cfg["rates"])
ring = storage.Ring(600)
from hal.unix import board
from app.badge import Badge
presses = ((2000, 3200),) + tuple((t, 150) for t in range(20000, %(seconds)d * 1000 - 2000, 7000))
hal = board.UnixHal(cfg["rates"], samples="samples.bin", tick_us=0, seconds=%(seconds)d, presses=presses, cfg=cfg)
badge = Badge(hal, cfg, hal.sensors(), feats, ring)
steps = []
raw_step = feats.step
def timed_step(values):
    t0 = time.ticks_us()
    raw_step(values)
    steps.append(time.ticks_diff(time.ticks_us(), t0))
feats.step = timed_step
seconds = []
tick_sum = tick_n = tick_max = 0
while True:
    n = hal.wait_tick()
    if n <= 0:
        break
    for _ in range(n):  # late ticks come in bursts
        t0 = time.ticks_us()
        badge.tick()
        dt = time.ticks_diff(time.ticks_us(), t0)
        if badge.tick_no %% badge.base == 0:
            seconds.append(dt)
        else:
            tick_sum += dt
            tick_n += 1
            tick_max = max(tick_max, dt)
gc.collect()
print(json.dumps({"step_us": steps[10:], "second_us": seconds[10:], "tick_mean": tick_sum // tick_n,
                  "cpu_per_s": (tick_sum + sum(seconds)) // len(seconds),
                  "tick_max": tick_max, "press_us": hal.latency_us}))
"""


def mpy_sizes() -> dict[str, int]:
    """xtensawin .mpy bytes: what goes on the badge (protocol + firmware without the unix HAL) and the unix HAL."""
    sizes = {"badge": 0, "unix_hal": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for src in badge_source_files():
            out = Path(tmp) / "x.mpy"
            error = mpy_cross(src, out, "-march=xtensawin")
            if error is not None:
                raise RuntimeError(f"mpy-cross failed on {src}: {error}")
            key = "unix_hal" if "hal/unix" in src.as_posix() else "badge"
            sizes[key] += out.stat().st_size
    return sizes


def run_badge(state: Path, root: Path, heapsize: str, seconds: int) -> subprocess.CompletedProcess[str]:
    (state / "bench.py").write_text(BADGE_SCRIPT % {"seconds": seconds})
    return subprocess.run([micropython_binary(), "-X", f"heapsize={heapsize}", "bench.py"], cwd=state,
                          env=dict(os.environ, MICROPYPATH=str(root)), capture_output=True, text=True, timeout=300)


def cpython_step_us(signals: dict, seconds: int) -> tuple[float, float]:
    """The same kernels under CPython on samples at the same rates: the peer for the MicroPython step time."""
    pipe = firmware_module("app.pipeline").Features(RATES)
    fs = pipe.ppg.rate
    out = [0] * 11
    ppg, eda, acc, temp = (signals[k].tolist() for k in ("ppg", "eda", "acc", "temp"))
    to_c = firmware_module("drivers.ntc")
    step_s = 0.0
    t_all = time.perf_counter()
    for s in range(seconds):
        for v in ppg[s * fs:(s + 1) * fs]:
            pipe.push_ppg(v)
        for v in eda[s * 16:(s + 1) * 16]:
            pipe.push_eda(v)
        for x, y, z in acc[s * 16:(s + 1) * 16]:
            pipe.push_acc(x, y, z)
        pipe.push_temp(to_c.counts_to_centi_c(to_c.centi_c_to_counts(temp[s])))
        t0 = time.perf_counter()
        pipe.step(out)
        step_s += time.perf_counter() - t0
    return step_s / seconds * 1e6, (time.perf_counter() - t_all) / seconds * 1e6


def virtual_badge(state: Path, root: Path, heapsize: str, seconds: int) -> subprocess.CompletedProcess[str]:
    """The real virtual badge (main.py, unix HAL) with consent at 1 s."""
    for f in ("counter.txt", "consent.txt"):
        (state / f).unlink(missing_ok=True)
    # laid out as VirtualBadge does (and as on flash): main.py at the root, the .mpy under lib/ (short __file__ qstrs)
    shutil.copy(root / "main.py", state / "main.py")
    (state / "lib").unlink(missing_ok=True)
    (state / "lib").symlink_to(root, target_is_directory=True)
    return subprocess.run([micropython_binary(), "-X", f"heapsize={heapsize}", "main.py", "--tick-us",
                           "0", "--seconds", str(seconds), "--samples", "samples.bin", "--press", "1000:3200"],
                          cwd=state, env=dict(os.environ, MICROPYPATH="lib"), capture_output=True, text=True,
                          timeout=300)


def heap_figures(state: Path, root: Path) -> tuple[str, int, int]:
    """(smallest -X heapsize that runs 60 s, live heap after GC, largest heap seen before a GC) on the unix port."""
    smallest = "> 160K"
    for kb in range(96, 161, 4):
        if virtual_badge(state, root, f"{kb}K", 60).returncode == 0:
            smallest = f"{kb}K"
            break
    out = virtual_badge(state, root, HEAPSIZE, SECONDS).stdout
    stat = [ln.split("heap=")[1].split()[0].split("/") for ln in out.splitlines() if ln.startswith("STAT")]
    return smallest, max(int(a) for _, a in stat), max(int(b) for b, _ in stat)


def pct(values: list[int], q: float) -> int:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    from lifepalette.sim.physiology import badge_signals

    sizes = mpy_sizes()
    print(f"mpy (xtensawin): badge set {sizes['badge'] / 1024:.1f} KB (goal <= 64 KB); unix HAL (virtual only) "
          f"{sizes['unix_hal'] / 1024:.1f} KB")
    root = compile_firmware()
    from lifepalette.sim.silicon import Silicon, chip_stream

    signals = badge_signals("dialogue", SECONDS, seed=3, rates=dict(RATES, ppg=50))  # the PPG at the chip's rate
    cfg = firmware_module("app.config").parse(json.dumps(CONFIG))
    stream, _ = chip_stream(Silicon(3), "dialogue", SECONDS, 3, RATES, driver_cfg=cfg)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        (state / "config.json").write_text(json.dumps(CONFIG))
        (state / "samples.bin").write_bytes(stream)
        proc = run_badge(state, root, "512K", SECONDS)  # room for the timing lists
        if proc.returncode:
            print("badge run failed:", proc.stdout[-500:], proc.stderr[-500:])
            return
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        heap, live, before_gc = heap_figures(state, root)
    cpy, cpy_all = cpython_step_us(signals, SECONDS)
    mp_step = sum(r["step_us"]) / len(r["step_us"])
    print(f"heap (unix port, 64-bit): live after GC {live / 1024:.1f} KB steady, peak before a GC "
          f"{before_gc / 1024:.1f} KB at -X heapsize={HEAPSIZE}; smallest heapsize that runs: {heap}")
    print(f"pipeline step() alone (features from the second's pushed samples): MicroPython {mp_step:.0f} us mean, p95 {pct(r['step_us'], 0.95)} us; "
          f"CPython {cpy:.0f} us; ratio {mp_step / cpy:.1f}x")
    print(f"badge CPU per simulated second (64 sample ticks: sensors, kernels, LED, frame): MicroPython "
          f"{r['cpu_per_s'] / 1000:.2f} ms = {r['cpu_per_s'] / 10000:.2f} % of the second; CPython kernels alone "
          f"(pushes + step) {cpy_all / 1000:.2f} ms; ratio {r['cpu_per_s'] / cpy_all:.1f}x")
    print(f"whole one-second tick (features + seal + send + palette = last sample -> LED colour): "
          f"mean {sum(r['second_us']) / len(r['second_us']) / 1000:.2f} ms, max {max(r['second_us']) / 1000:.2f} ms "
          f"(goal <= 100 ms)")
    print(f"ordinary sample tick: mean {r['tick_mean']} us, max {r['tick_max']} us (64 Hz budget 15625 us)")
    press = r["press_us"]
    wake_ms = power.firmware_figures()["wake_ms"]  # the ESP32 HAL polls the button once per wake
    print(f"button -> LED state: {len(press)} presses, processing max {max(press) / 1000:.2f} ms, + up to one "
          f"{wake_ms} ms wake of the ESP32 HAL's polling = worst {max(press) / 1000 + wake_ms:.1f} ms (goal <= 100 ms)")
    fault_matrix()


if __name__ == "__main__":
    main()


def _matrix_run(tmp: Path, code_in_flash: bool, heapsize: str | None = None) -> list[tuple]:
    """(fault, chip, outcome, exit code, resets, recovery ms or None, live heap, host seconds per boot) per row."""
    from lifepalette.tools import port_run

    rows = []
    layout = ("rom" if code_in_flash else "ram") + (heapsize or "")
    for i, (fault, chip, board) in enumerate(port_run.MATRIX):
        name, at = port_run.parse_fault(fault)
        at_ms = int(1000 * (at if at is not None else port_run.DEFAULT_AT.get(name, 0)))
        t0 = time.perf_counter()
        run = port_run.run_port(dict(CONFIG, board=board), chip, {name: at}, tmp / f"{layout}-{i}", seconds=20,
                                code_in_flash=code_in_flash, heapsize=heapsize or port_run.PORT_HEAPSIZE)
        rows.append((fault, chip, run.outcome, run.exit_code, len(run.resets), port_run.recovery_ms(run, at_ms),
                     port_run.live_heap(run), (time.perf_counter() - t0) / run.boots))
    return rows


def fault_matrix() -> None:
    """Every fault of the matrix through boot.py and main.py on the strict stand-ins at the badge's heap budget
    (96K), with its code in flash (the badge image; the runner's ROMFS emulation) and, the peer, loaded into RAM
    (a stock MicroPython badge): outcome, REPL fall-throughs (goal 0), recovery time (fault -> LED lit again after
    the reset, in badge time), live heap, host wall time per boot."""
    from lifepalette.tools import port_run

    image = (port_run.build_rom() / "rom.img").stat().st_size
    pool, free = port_run.heap_budget()
    print(f"code in flash: ROMFS image {image / 1024:.1f} KB (firmware + stand-ins, x64 .mpy) mounted at /rom; the "
          f"ballast leaves the badge {free} B free of a {pool} B pool, as a plain -X heapsize={port_run.PORT_HEAPSIZE}")
    with tempfile.TemporaryDirectory() as tmp:
        for code_in_flash in (True, False):
            t0 = time.perf_counter()
            rows = _matrix_run(Path(tmp), code_in_flash)
            wall = time.perf_counter() - t0
            where = "code in flash (ROMFS image)" if code_in_flash else "code in RAM (.mpy on the file system)"
            print(f"fault matrix at the {port_run.PORT_HEAPSIZE} budget, {where}, 20 s of badge time each "
                  f"({wall:.1f} s wall for {len(rows)} runs):")
            print("  fault              chip     outcome                  resets  recovery   live heap  host/boot")
            for fault, chip, outcome, _, resets, rec, heap, per_boot in rows:
                rec = rec if outcome == "reset and recovery" else None  # else no recovery to time
                print(f"  {fault:<18} {chip:<8} {outcome:<24} {resets:<7} "
                      f"{'-' if rec is None else f'{rec / 1000:.2f} s':<10} "
                      f"{'-' if heap is None else f'{heap / 1024:.1f} KB':<10} {per_boot * 1000:.0f} ms")
            repl = sum(r[3] == port_run.EXIT_REPL for r in rows)
            loops = sum(r[2].startswith("boot loop") for r in rows)
            wrong = sum(r[2] != port_run.FAULTS[r[0]].split(":")[0] for r in rows)
            recs = [r[5] for r in rows if r[5] is not None and r[2] == "reset and recovery"]
            print(f"  REPL fall-throughs: {repl} of {len(rows)} runs (goal 0); boot loops: {loops}; outcomes other "
                  f"than expected: {wrong}; recovery (fault -> LED back) max "
                  f"{max(recs) / 1000 if recs else 0:.2f} s over {len(recs)} recoveries")
            heaps = [r[6] for r in rows if r[6] is not None and r[2] in ("normal", "reset and recovery")]
            if heaps:
                print(f"  live heap at the end of a running badge: max {max(heaps) / 1024:.1f} KB "
                      f"(issue 11's bound: 86 KB)")
        print("below the budget, code in flash (every row: expected outcome / else safe mode or recovery, REPL, "
              "boot loop):")
        for kb in range(94, 79, -2):  # fragmentation makes the first failing row vary: a margin, not a threshold
            rows = _matrix_run(Path(tmp), True, f"{kb}K")
            wrong = sum(r[2] != port_run.FAULTS[r[0]].split(":")[0] for r in rows)
            repl = sum(r[3] == port_run.EXIT_REPL for r in rows)
            loops = sum(r[2].startswith("boot loop") for r in rows)
            print(f"  {kb}K: {len(rows) - wrong} / {wrong}, {repl}, {loops}")
        stand_ins = port_run.stand_in_heap(Path(tmp) / "probe")
    print(f"of which the stand-ins and chip models, code in RAM (loaded only by fault runs): {stand_ins / 1024:.1f} KB; "
          "with code in flash their import is credited (C modules in flash on the chip), what they make later counts")
    print("recovery = fault -> LED lit after the reset, in badge time (a boot takes no badge time here: a real ESP32 "
          "adds its ROM bootloader and imports, not measured); host/boot = one interpreter run (its share of "
          "the 20 s of badge time, simulated as fast as it goes)")
