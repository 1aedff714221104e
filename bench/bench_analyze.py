"""`lifepalette analyze` on a long PPG recording against NeuroKit2 on the same file, in the same run (issue 14).

One CSV (timestamp, PPG at 64 Hz: the badge's own rate, so every sample goes through the kernel; simulated by
NeuroKit2, minutes at different heart rates) is analysed twice, each in its own process:

* `lifepalette analyze FILE --kind ppg --rate 64 --beats` (stream, compiled kernel), as installed: modules
  byte-compiled and the PPG code already compiled in the user's cache by one short warm-up run; what a machine's
  first run adds (translation and compilation) is printed separately;
* NeuroKit2: pandas.read_csv of the same file, then nk.ppg_process (clean, Elgendi peaks, rate, quality).

Printed: PPG samples per second by wall clock and by CPU time (user + sys of the process: the figure that does not
depend on what else the machine runs), their ratio, and each process's peak RSS (goal: analyze >= 1 M samples/s,
<= 200 MB). The load average is printed too, since the wall-clock figures depend on it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RATE = 64
SAMPLES = 2_000_000  # about 8.7 hours at 64 Hz, ~40 MB of CSV

_NEUROKIT = """
import sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd, neurokit2 as nk
t0 = time.perf_counter()
x = pd.read_csv(sys.argv[1])["ppg"].to_numpy()
t1 = time.perf_counter()
signals, info = nk.ppg_process(x, sampling_rate=int(sys.argv[2]))
t2 = time.perf_counter()
print(len(info["PPG_Peaks"]), round(t1 - t0, 3), round(t2 - t1, 3))
"""


def write_recording(path: Path, samples: int = SAMPLES, rate: int = RATE, seed: int = 0) -> None:
    """Timestamped PPG: ten simulated minutes (50..130 bpm) repeated with fresh noise up to `samples`."""
    import neurokit2 as nk

    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(seed)
    minutes = [nk.ppg_simulate(duration=60, sampling_rate=rate, heart_rate=int(hr), random_state=i)
               for i, hr in enumerate(np.linspace(50, 130, 10))]
    block = np.concatenate(minutes)
    with path.open("w") as f:
        f.write("time,ppg\n")
        for at in range(0, samples, block.size):
            n = min(block.size, samples - at)
            x = block[:n] + rng.standard_normal(n) * 0.01
            t = (at + np.arange(n)) / rate
            f.write("\n".join(f"{a:.4f},{v:.5f}" for a, v in zip(t.tolist(), x.tolist(), strict=True)) + "\n")


def _run(argv: list[str], out: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one command, measured from a small launcher process."""
    from lifepalette.tools.peak_rss import measure

    use = measure(argv, out)
    if use.exit_code != 0:
        raise RuntimeError(f"{argv[0]} exited {use.exit_code}")
    return use.wall_s, use.cpu_s, use.peak_mb


def compile_cost() -> str:
    """What an analyze run pays before its first sample: translating the PPG path from the kernel's source and
    compiling it (a machine's first run) or loading the cached machine code (every later run)."""
    import lifepalette.kernels.fast_ppg as fast
    import wasmtime

    t0 = time.perf_counter()
    fast._MODULE = None
    text = fast.module_text()
    t1 = time.perf_counter()
    engine = wasmtime.Engine()
    wasmtime.Module(engine, text)
    t2 = time.perf_counter()
    fast.compiled(engine, 1)
    fast.compiled(engine, 1)
    t3 = time.perf_counter()
    return (f"translation {t1 - t0:.2f} s + compilation {t2 - t1:.2f} s on a machine's first run, "
            f"{(t3 - t2) / 2:.3f} s to load the cached code on later runs")


def main() -> None:
    lp = Path(sys.executable).parent / "lifepalette"
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "ppg.csv"
        write_recording(csv)
        mb = csv.stat().st_size / 1e6
        print(f"recording: {SAMPLES} PPG samples at {RATE} Hz ({SAMPLES / RATE / 3600:.1f} h), {mb:.0f} MB CSV; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        out = Path(tmp) / "out.jsonl"
        # as installed: byte-compiled modules and the compiled PPG code cached (what a first run adds is printed)
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        warm = Path(tmp) / "warm.csv"
        warm.write_text("ppg\n" + "\n".join(str(i % 50) for i in range(10 * RATE)))
        _run([str(lp), "analyze", str(warm), "--kind", "ppg", "--rate", str(RATE)], out)
        a_wall, a_cpu, a_rss = _run([str(lp), "analyze", str(csv), "--kind", "ppg", "--rate", str(RATE),
                                        "--beats"], out)
        beats = sum(1 for line in out.open() if line.startswith('{"beat_s"'))
        n_wall, n_cpu, n_rss = _run([sys.executable, "-c", _NEUROKIT, str(csv), str(RATE)], out)
        nk_beats, nk_read, nk_process = out.read_text().split()
    print(f"analyze:   {a_wall:6.1f} s wall {SAMPLES / a_wall / 1e6:5.2f} M samples/s | {a_cpu:6.1f} s CPU "
          f"{SAMPLES / a_cpu / 1e6:5.2f} M samples/s | peak RSS {a_rss:5.0f} MB | {beats} beats")
    print(f"  not in the timed run: {compile_cost()}")
    print(f"NeuroKit2: {n_wall:6.1f} s wall {SAMPLES / n_wall / 1e6:5.2f} M samples/s | {n_cpu:6.1f} s CPU "
          f"{SAMPLES / n_cpu / 1e6:5.2f} M samples/s | peak RSS {n_rss:5.0f} MB | {nk_beats} peaks "
          f"(read_csv {nk_read} s, ppg_process {nk_process} s)")
    print(f"ratio analyze/NeuroKit2: {n_wall / a_wall:.1f}x wall, {n_cpu / a_cpu:.1f}x CPU, "
          f"{n_rss / a_rss:.1f}x less memory  (goals: >= 1 M samples/s, <= 200 MB)")


if __name__ == "__main__":
    main()
