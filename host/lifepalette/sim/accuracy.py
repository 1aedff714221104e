"""Accuracy of the badge's numbers under the simulated silicon (lifepalette.sim.silicon), against the truth and
against an ideal model.

- silicon run: the real firmware (unix HAL chip path: every driver on register-level chip models, sampler with the LED loop and rate measurement,
  features) under the real MicroPython, fed the seeded chip stream: PPG chip on its own clock, ESP32 ADC curve,
  late ticks in bursts. One line per second: HR, RMSSD, quality, SCL and the temperature the NTC driver read.
- ideal run: the same wearer (same beats) through the same kernels in CPython, PPG sampled exactly at the chip's nominal rate at
  half the ADC range, every sample on time.

HR error is per second against the truth's mean over the same last 8 beat intervals the kernel averages.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lifepalette.paths import micropython_binary, micropython_path
from lifepalette.sim.silicon import CHIP_HZ, OPTICS, Silicon, chip_stream

RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
WARM_S = 20
SCRIPT = """
import sys
from app.pipeline import Features
from app.sampler import Sampler
from hal.unix.board import UnixHal
rates = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
cal = %r
hal = UnixHal(rates, samples=sys.argv[1], tick_us=0, cfg=cal, chips=True)
s = hal.sensors()
f = Features(rates)
sp = Sampler(s, f, rates)
sp.power(True)
v = [0] * 11
t = 0
while True:
    n = hal.wait_tick()
    if n <= 0:
        break
    for _ in range(n):
        sp.tick(True)
        t += 1
        if t %% 64 == 0:
            sp.second(hal.ms())
            f.step(v)
            sp.correct(v)
            print("S", v[0], v[1], v[2], v[10], f.temp.mean, s.ppg.code, sp.rate_mhz, hal.late, s.ppg.lost, sp.counts[2],
                  s.acc.overruns)
"""


def true_hr_window(beats: np.ndarray, seconds: int, k: int = 8) -> np.ndarray:
    """Per second: 60 k / (span of the last k intervals before the end of that second), NaN before."""
    out = np.full(seconds, np.nan)
    for s in range(seconds):
        idx = np.searchsorted(beats, s + 1.0) - 1
        if idx >= k:
            out[s] = 60.0 * k / (beats[idx] - beats[idx - k])
    return out


def true_rmssd(beats: np.ndarray) -> float:
    ibi = np.diff(beats) * 1000.0
    return float(np.sqrt(np.mean(np.diff(ibi) ** 2)))


def run_silicon(silicon: Silicon, seconds: int, seed: int, scenario: str = "calm",
                cal: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """(seconds, 11) array per second: hr, rmssd, scl, quality, temp centi-C, led code, rate mHz, late, lost,
    acceleration samples so far, accelerometer FIFO overruns."""
    data, truth = chip_stream(silicon, scenario, seconds, seed, RATES)
    cfg = {}
    if cal:
        cfg = {"eda_cal": tuple(cal["eda_cal"]), "ntc_offset_centi": int(round(cal["ntc_offset_c"] * 100))}
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "samples.bin"
        stream.write_bytes(data)
        script = Path(tmp) / "run.py"
        script.write_text(SCRIPT % (cfg,))
        proc = subprocess.run([micropython_binary(), "-X", "heapsize=512K", str(script), str(stream)],
                              capture_output=True, text=True, timeout=600,
                              env={"MICROPYPATH": micropython_path()})
    if proc.returncode:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    rows = [[int(x) for x in ln.split()[1:]] for ln in proc.stdout.splitlines() if ln.startswith("S ")]
    return np.array(rows, dtype=np.int64), truth


def run_ideal(silicon: Silicon, seconds: int, seed: int, scenario: str = "calm") -> np.ndarray:
    """(seconds, 2) hr, rmssd from the same wearer sampled ideally at the chip's nominal rate."""
    from lifepalette.sim.physiology import DEFAULT_PARAMS, simulate_wearer
    from protocol.kernels.ppg import PpgKernel

    _, perfusion = OPTICS[(silicon.site, silicon.led)]
    dc = DEFAULT_PARAMS["ppg_dc"]
    fs = int(CHIP_HZ)
    t = np.arange(1, seconds * fs + 1) / fs
    signals, _ = simulate_wearer(scenario, seconds, seed=seed, rates=RATES,
                                 params={"ppg_ac": perfusion * dc, "ppg_noise": 0.0}, ppg_times=t)
    rng = np.random.default_rng([seed, 0x1DEA])
    counts = 131072.0 * signals["ppg"] / dc * (1.0 + rng.standard_normal(t.size) * 2e-4)
    k = PpgKernel(fs)
    out = np.zeros((seconds, 2), dtype=np.int64)
    for s in range(seconds):
        for v in np.rint(counts[s * fs:(s + 1) * fs]).astype(np.int64).tolist():
            k.push(v)
        k.tick()
        hr = k.beats.hr_bpm()
        rm = k.beats.rmssd_ms()
        out[s] = (hr, rm)
    return out


def hr_mae(hr: np.ndarray, truth_hr: np.ndarray) -> float:
    ok = (hr > 0) & ~np.isnan(truth_hr)
    ok[:WARM_S] = False
    return float(np.mean(np.abs(hr[ok] - truth_hr[ok])))


def median_rmssd(rm: np.ndarray) -> float:
    ok = (rm > 0) & (rm < 254)
    ok[:WARM_S] = False
    return float(np.median(rm[ok]))


def ppg_accuracy(site: str, seed: int, seconds: int = 180, led: str = "ir") -> dict[str, Any]:
    silicon = Silicon(seed, site=site, led=led, bursts=True)
    rows, truth = run_silicon(silicon, seconds, seed)
    ideal = run_ideal(silicon, seconds, seed)
    thr = true_hr_window(truth["beats"], seconds)
    n = min(len(rows), seconds)
    return {
        "site": site, "led": led, "seed": seed, "crystal_pct": round(100 * silicon.crystal, 2),
        "hr_mae": round(hr_mae(rows[:n, 0].astype(float), thr[:n]), 3),
        "hr_mae_ideal": round(hr_mae(ideal[:n, 0].astype(float), thr[:n]), 3),
        "rmssd": round(median_rmssd(rows[:n, 1]), 1), "rmssd_ideal": round(median_rmssd(ideal[:n, 1]), 1),
        "rmssd_true": round(true_rmssd(truth["beats"]), 1),
        "hr_valid_pct": round(100 * float(np.mean(rows[WARM_S:n, 3] & 2 > 0)), 1),
        "led_code": int(rows[n - 1, 5]), "rate_mhz": int(rows[n - 1, 6]), "late_ticks": int(rows[n - 1, 7]),
        "fifo_lost": int(rows[n - 1, 8]),
        "acc_per_s": round((int(rows[n - 1, 9]) - int(rows[9, 9])) / (n - 10), 3),  # after the first 10 s
        "acc_hz": round(silicon.acc_hz, 3), "acc_overruns": int(rows[n - 1, 10]),
    }
