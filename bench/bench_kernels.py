"""Kernel benchmarks (issue 3), peers measured in the same run:

1. numpy twin vs NeuroKit2 (ppg_process, eda_process) on the same hour of signal: throughput ratio and HR error
   of both against the simulated truth (goal: >= 30x NeuroKit2's PPG throughput at equal or better HR accuracy).
2. The whole badge Pipeline (PPG 64 Hz, EDA 16 Hz, acc 16 Hz, temp 1 Hz) under the MicroPython unix port, plain
   bytecode and with the viper sample loop: cost per second of signal (goal <= 2 ms) and heap growth after
   warm-up (goal 0).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HOUR = 3600
RATE = 64
WEARERS = 128


def _hour_of_ppg(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One hour at 64 Hz: 60 one-minute segments at known rates 50..150 bpm (no variability inside a minute)."""
    import neurokit2 as nk

    rng = np.random.default_rng(seed)
    rates = rng.integers(50, 151, size=60)
    parts = [nk.ppg_simulate(duration=60, sampling_rate=RATE, heart_rate=int(hr), frequency_modulation=0.0,
                             ibi_randomness=0.0, motion_amplitude=0.05, random_state=int(seed * 100 + i))
             for i, hr in enumerate(rates)]
    truth = np.repeat(rates, 60).astype(np.float64)
    return np.concatenate(parts), truth


def _steady(truth: np.ndarray) -> np.ndarray:
    """Seconds at least 12 s after a rate change (both methods smooth over several beats)."""
    ok = np.ones(truth.size, dtype=bool)
    for start in range(0, truth.size, 60):
        ok[start:start + 12] = False
    return ok


def bench_twin_vs_neurokit() -> None:
    import neurokit2 as nk
    from lifepalette.kernels import ppg as ppg_k
    from lifepalette.kernels import run_pipeline
    from lifepalette.kernels.pipeline import eda_ticks

    from protocol.kernels.eda import EdaKernel, centi_us_to_counts

    warnings.filterwarnings("ignore")
    x, truth = _hour_of_ppg()
    steady = _steady(truth)

    t0 = time.perf_counter()
    signals, _ = nk.ppg_process(x, sampling_rate=RATE)
    t_nk = time.perf_counter() - t0
    nk_rate = signals["PPG_Rate"].to_numpy()[: HOUR * RATE].reshape(HOUR, RATE).mean(axis=1)
    nk_err = float(np.mean(np.abs(nk_rate - truth)[steady]))

    counts = np.rint((x - x.min()) / (x.max() - x.min()) * 65535).astype(np.int64)
    seconds = counts.size // RATE

    def ppg_twin(batch: np.ndarray) -> np.ndarray:
        """The PPG part alone (what ppg_process does): per-second HR of every wearer."""
        hr = np.zeros((batch.shape[0], seconds), dtype=np.int64)
        for w, beats in enumerate(ppg_k.analyse(batch, RATE, invert=False)):
            for s in range(seconds):
                beats.advance(s)
                hr[w, s] = beats.beats.hr_bpm()
        return hr

    t0 = time.perf_counter()
    hr = ppg_twin(counts[None])[0].astype(np.float64)
    t_one = time.perf_counter() - t0
    ok = steady & (hr > 0)
    twin_err = float(np.mean(np.abs(hr - truth)[ok]))
    t0 = time.perf_counter()
    ppg_twin(np.tile(counts, (WEARERS, 1)))
    t_batch = time.perf_counter() - t0

    eda = np.full((WEARERS, seconds * 16), 800, dtype=np.int64)
    acc = np.zeros((WEARERS, seconds * 16, 3), dtype=np.int64)
    t0 = time.perf_counter()
    run_pipeline(np.tile(counts, (WEARERS, 1)), eda, acc, None, ppg_invert=False)
    t_pipe = time.perf_counter() - t0

    us = 2.0 + 0.3 * np.sin(np.arange(HOUR * 16) / 16 / 40.0) + nk.eda_simulate(
        duration=HOUR, sampling_rate=16, scr_number=240, noise=0.01, drift=0.0, random_state=1) - 1.0
    t0 = time.perf_counter()
    nk.eda_process(us, sampling_rate=16)
    t_nk_eda = time.perf_counter() - t0
    counts = np.array([centi_us_to_counts(int(round(v * 100))) for v in us], dtype=np.int64)
    t0 = time.perf_counter()
    kernel = EdaKernel(16)
    ticks = eda_ticks(counts, 16, None)
    for s in range(HOUR):  # the twin's EDA path: vectorised calibration/decimation, the badge's 4 Hz logic
        for t in range(4 * s, 4 * s + 4):
            kernel._tick(int(ticks[t]))
        kernel.scl_centi()
        kernel.scr_per_min()
        kernel.tick()
    t_twin_eda = time.perf_counter() - t0

    print(f"PPG, one hour at {RATE} Hz (60 rates 50-150 bpm), same signal for both:")
    print(f"  NeuroKit2 ppg_process        {t_nk:7.3f} s/hour   HR error {nk_err:.2f} bpm (per second, steady)")
    print(f"  twin PPG, 1 wearer           {t_one:7.3f} s/hour   HR error {twin_err:.2f} bpm   "
          f"ratio {t_nk / t_one:.1f}x")
    print(f"  twin PPG, {WEARERS} wearers batched {t_batch / WEARERS:7.3f} s/hour   "
          f"ratio {t_nk * WEARERS / t_batch:.1f}x (goal >= 30x)")
    print(f"  twin whole pipeline (PPG+EDA+acc), {WEARERS} wearers {t_pipe / WEARERS:.3f} s/hour")
    print(f"EDA, one hour at 16 Hz: NeuroKit2 eda_process {t_nk_eda:.3f} s, twin {t_twin_eda:.3f} s "
          f"(ratio {t_nk_eda / t_twin_eda:.2f}x; the SCR state machine runs per 4 Hz tick in Python)")


MPY_BENCH = """
import gc, sys, time
from array import array
from protocol.kernels.pipeline import Pipeline

ppg = array("i", [0] * 640)
i = 0
while i < 640:
    ph = i % 53
    ppg[i] = 120000 - (1500 if 8 <= ph <= 14 else 0) - (600 if 20 <= ph <= 30 else 0) + ((i * 37) % 11)
    i += 1
eda = array("i", [800 + (40 if 60 <= j < 90 else 0) for j in range(160)])
acc = array("i", [(j * 13) % 9 for j in range(480)])

def run(p, out, s0, seconds):
    s = s0
    while s < s0 + seconds:
        i = 0
        while i < 64:
            p.push_ppg(ppg[(s * 64 + i) % 640])
            i += 1
        i = 0
        while i < 16:
            j = (s * 16 + i) % 160
            p.push_eda(eda[j])
            p.push_acc(acc[3 * j], acc[3 * j + 1], 1000 + acc[3 * j + 2])
            i += 1
        p.push_temp(3300)
        p.step(out)
        s += 1

p = Pipeline()
p.use_viper(sys.argv[1] == "viper")
out = [0] * 11
run(p, out, 0, 30)
t0 = t1 = m1 = 0  # create the globals now: adding a global later grows the module dict (a heap allocation)
gc.collect()
m0 = gc.mem_alloc()
t0 = time.ticks_us()
run(p, out, 30, 300)
t1 = time.ticks_us()
m1 = gc.mem_alloc()
print(time.ticks_diff(t1, t0) / 300, m1 - m0, out[0])
"""


def bench_micropython() -> None:
    import os

    from lifepalette.paths import micropython_binary, micropython_path

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.py"
        script.write_text(MPY_BENCH)
        env = dict(os.environ, MICROPYPATH=micropython_path())
        print("Badge pipeline under the MicroPython unix port (PPG 64 Hz, EDA 16 Hz, acc 16 Hz, temp 1 Hz):")
        results = {}
        for mode in ("plain", "viper"):
            out = subprocess.run([micropython_binary(), "-X", "heapsize=96K", str(script), mode],
                                 capture_output=True, text=True, timeout=600, env=env, check=True).stdout.split()
            results[mode] = float(out[0])
            print(f"  {mode:5s}: {float(out[0]) / 1000:6.3f} ms per signal-second (goal <= 2 ms), "
                  f"heap growth {out[1]} bytes over 300 s (goal 0), HR {out[2]}")
        print(f"  viper speed-up {results['plain'] / results['viper']:.2f}x")


def main() -> None:
    bench_micropython()
    bench_twin_vs_neurokit()


if __name__ == "__main__":
    main()
