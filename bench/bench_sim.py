"""Simulator throughput, end to end through the CLI: `lifepalette sim --wearers 1000 --minutes 60 --level feature`
(report, plots, features.parquet; goal <= 6 s wall, 600,000 wearer-seconds per second) next to its peers in the same
run: the same simulation with no files written (what it computes) and the JSON-lines writer (`--jsonl`, the old
default); peak memory of `--wearers 10000` (goal < 4 GB). Then feature level 10,000 wearers x 1 h (goal <= 60 s), signal level 100 wearers x 1 h
(goal <= 120 s), each as a ratio to real time. Scoring of the feature-level cohort is timed separately (the hub's
scorer, vectorised over wearers), and the CLI run's scoring through the batch path against the per-second path.
Also the fairness gap's distribution over seeds and scenarios. Set LP_BENCH_QUICK=1 for a tenth of the size,
LP_BENCH_CLI_ONLY=1 for the end-to-end CLI figures alone."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

SECONDS = 3600
CHUNK = 2000  # wearers generated at once (dialogue groups never span chunks); bounds memory to ~1 GB


def feature_level(wearers: int, score: bool) -> tuple[float, float]:
    """Generation, then scoring as `lifepalette sim` does it: the batch path (lifepalette.scoring.batch), the
    per-second arousal read-out and a palette snapshot every minute."""
    from lifepalette.scoring.batch import score_features
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records

    def each_second(scorer, t: int) -> None:
        _ = scorer.zcomp[:n].copy()
        if (t + 1) % 60 == 0:
            scorer.compute(detail=False)

    gen = scoring = 0.0
    for start in range(0, wearers, CHUNK):
        n = min(CHUNK, wearers - start)
        t0 = time.perf_counter()
        cohort = make_cohort(n, SECONDS, "healing", seed=start, first_dev_id=start + 1)
        features = feature_records(cohort)
        gen += time.perf_counter() - t0
        if score:
            t0 = time.perf_counter()
            score_features(cohort.dev_ids, features, cohort.dialogue, on_second=each_second).compute()
            scoring += time.perf_counter() - t0
        del features, cohort
    return gen, scoring


def scoring_paths(wearers: int = 1000, minutes: int = 60) -> tuple[float, float]:
    """CPU seconds to score the CLI run's cohort as `lifepalette sim` does (batch path: a block of seconds gated at
    once, zcomp read every second, a snapshot every minute) and through the hub's per-second path (`add_second`, the
    gating second by second) in the same run; the two must give the same scores."""
    import numpy as np
    from lifepalette.scoring import FIELDS, CoveScorer
    from lifepalette.scoring.batch import fill_defaults, score_features
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records

    cohort = make_cohort(wearers, minutes * 60, "healing", seed=0)
    features = feature_records(cohort)

    def each_second(scorer, t: int) -> None:
        _ = scorer.zcomp[:wearers].copy()
        if (t + 1) % 60 == 0:
            scorer.compute(detail=False)

    c0 = time.process_time()
    batch = score_features(cohort.dev_ids, features, cohort.dialogue, on_second=each_second).compute()
    batch_cpu = time.process_time() - c0
    records = np.stack([features[name] if name in features else np.full(features["hr_bpm"].shape, np.nan)
                        for name in FIELDS], axis=-1).astype(np.float64)
    c0 = time.process_time()
    scorer = CoveScorer(cohort.dialogue)
    for t in range(cohort.seconds):
        scorer.add_second(t, cohort.dev_ids, fill_defaults(records[:, t]))
        each_second(scorer, t)
    scorer.flush()
    per_second = scorer.compute()
    per_second_cpu = time.process_time() - c0
    assert per_second["pairs"] == batch["pairs"], "batch and per-second scores differ"
    return batch_cpu, per_second_cpu


def signal_level(wearers: int) -> tuple[float, str]:
    """Badge-unit signals for every wearer (and the badge kernels over them once they exist)."""
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.physiology import simulate_wearer

    cohort = make_cohort(wearers, SECONDS, "healing", seed=3)
    try:
        import lifepalette.kernels.pipeline  # noqa: F401

        have_kernels = True
    except ImportError:
        have_kernels = False
    t0 = time.perf_counter()
    if have_kernels:
        from lifepalette.sim.run import signal_level_features

        signal_level_features(cohort)
        what = "signals + badge kernels' numpy twin (lifepalette.kernels)"
    else:
        for i in range(wearers):
            simulate_wearer("healing", SECONDS, seed=i, params=cohort.params[i], arousal=cohort.arousal[i])
        what = "signals only (badge kernels not built yet)"
    return time.perf_counter() - t0, what


def fairness_distribution(seeds: int, wearers: int = 120) -> dict[str, list[float]]:
    """Between-group arousal-error gap of our scorer per scenario over consecutive seeds (30-minute sessions)."""
    from lifepalette.sim.run import simulate

    out: dict[str, list[float]] = {}
    for scenario in ("healing", "dialogue", "confrontation"):
        out[scenario] = [simulate(wearers, 30, scenario, seed=seed, palette_every_s=0, show_progress=False)
                         .report["fairness"]["disparity"]["arousal_mae"] for seed in range(seeds)]
    return out


_MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(rc, wall, use.ru_utime + use.ru_stime, use.ru_maxrss * 1024)
"""
_COMPUTE_ONLY = """
import sys
from lifepalette.sim.run import simulate
simulate(int(sys.argv[1]), float(sys.argv[2]), show_progress=False)
"""


_STAGES = """
import json, sys, time
from pathlib import Path
clock = time.process_time
t = clock()
from lifepalette.sim import run
out = {"imports (numpy, pyarrow, lifepalette)": clock() - t}


def timed(module, name, stage):
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            out[stage] = out.get(stage, 0.0) + clock() - start

    setattr(module, name, wrapper)


inside = (("make_cohort", "cohort"), ("feature_records", "features"), ("naive_arousal", "naive peer"),
          ("build_report", "report"))
for name, stage in (*inside, ("write_features_parquet", "features.parquet")):
    timed(run, name, stage)
wearers, out_dir = int(sys.argv[1]), Path(sys.argv[2])
t = clock()
result = run.simulate(wearers, 60, show_progress=False)
# what simulate does besides the stages above: the hub's scoring, with its palette snapshot every minute
out["hub scoring"] = clock() - t - sum(out[stage] for _name, stage in inside)
t = clock()
run.write_outputs(result, out_dir, plots=False)
out["JSON files + arousal.npz"] = clock() - t - out["features.parquet"]
t = clock()
from lifepalette.sim import plots
out["plot import"] = clock() - t
t = clock()
plots.write_plots(result, out_dir)
out["plots"] = clock() - t
print(json.dumps(out))
"""


def stage_cpu(wearers: int, runs: int = 3) -> dict[str, float]:
    """CPU seconds of each stage of a sim run, each a fresh process (the CLI does the same steps in this order); the
    median of `runs` runs per stage, since on a shared machine one run's stage can read 30 % high."""
    import json
    import statistics

    per_run = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", _STAGES, str(wearers), tmp], capture_output=True, text=True,
                                 check=True)
        per_run.append(json.loads(out.stdout))
    return {stage: statistics.median(run[stage] for run in per_run) for stage in per_run[0]}


def measured(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak resident bytes of one fresh process (measured by a parent that does nothing
    else). CPU seconds are what one dedicated core would take; wall time also counts waiting on a busy machine."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True, text=True, check=True)
    rc, wall, cpu, peak = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(argv)} exited {rc}")
    return float(wall), float(cpu), int(peak)


def cli_end_to_end(wearers: int, minutes: int = 60, peers: bool = True) -> dict[str, tuple[float, float, int]]:
    lp = os.path.join(os.path.dirname(sys.executable), "lifepalette")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = [lp, "sim", "--wearers", str(wearers), "--minutes", str(minutes), "--level", "feature"]
        out["parquet"] = measured([*base, "--out", os.path.join(tmp, "pq")])
        if peers:
            out["compute_only"] = measured([sys.executable, "-c", _COMPUTE_ONLY, str(wearers), str(minutes)])
            out["jsonl"] = measured([*base, "--jsonl", "--out", os.path.join(tmp, "jl")])
    return out


def warm_kernels() -> float:
    """Wall seconds of a small run made first, so that the timed runs load the scorer's kernels from numba's cache as
    every run after the first one of an install does (that first one compiles them)."""
    lp = os.path.join(os.path.dirname(sys.executable), "lifepalette")
    with tempfile.TemporaryDirectory() as tmp:
        wall, _cpu, _peak = measured([lp, "sim", "--wearers", "6", "--minutes", "8", "--level", "feature",
                                      "--no-plots", "--no-features", "--out", tmp])
    return wall


def report_cli(quick: bool) -> None:
    warm_up = warm_kernels()
    if warm_up > 5:
        print(f"(a first run compiled the scorer's kernels: {warm_up:.0f} s; the runs below load them)", flush=True)
    runs = cli_end_to_end(1000)
    wall, cpu, peak = runs["parquet"]
    _, compute, _ = runs["compute_only"]
    _, jsonl, _ = runs["jsonl"]
    print(f"sim CLI 1000 wearers x 60 min (report, plots, features.parquet): {wall:.1f} s wall "
          f"({3.6e6 / wall:,.0f} wearer-s per wall second, {wall / 6:.2f}x the 6 s goal), {cpu:.1f} s CPU "
          f"({3.6e6 / cpu:,.0f} wearer-s per CPU second, {cpu / 6:.2f}x the goal), peak {peak / 2**30:.2f} GB; "
          f"compute only (no files) {compute:.1f} s CPU -> the files add {cpu / compute - 1:+.0%}; "
          f"--jsonl {jsonl:.1f} s CPU ({jsonl / cpu:.1f}x the Parquet run)", flush=True)
    stages = stage_cpu(1000)
    scoring = stages["hub scoring"]
    rest = sum(stages.values()) - scoring
    print("stages (CPU s, median of 3 fresh processes): " + "; ".join(f"{name} {sec:.2f}" for name, sec in stages.items())
          + f". Scoring {scoring:.2f} s, everything else {rest:.2f} s ({rest / (rest + scoring):.0%} of the run)",
          flush=True)
    if not quick:
        wall, cpu, peak = cli_end_to_end(10_000, peers=False)["parquet"]
        print(f"sim CLI 10000 wearers x 60 min: {wall:.0f} s wall, {cpu:.0f} s CPU, peak {peak / 2**30:.2f} GB "
              f"({peak / 2**32:.2f}x the 4 GB limit)", flush=True)


def main() -> None:
    import numpy as np
    from lifepalette.sim.evaluate import ERROR_DISPARITY_MAX

    quick = bool(os.environ.get("LP_BENCH_QUICK"))
    report_cli(quick)
    if os.environ.get("LP_BENCH_CLI_ONLY"):
        return
    batch, per_second = scoring_paths(minutes=6 if quick else 60)
    print(f"scoring the CLI run's cohort (1000 wearers x {6 if quick else 60} min, a snapshot a minute): batch path "
          f"{batch:.2f} s CPU, per-second path {per_second:.2f} s = {per_second / batch:.2f}x the batch path, same "
          f"scores", flush=True)
    n_feat, n_sig = (1000, 10) if quick else (10_000, 100)
    gen, scoring = feature_level(n_feat, score=True)
    total = gen + scoring
    print(f"feature level {n_feat} wearers x 1 h: generation {gen:.1f} s ({SECONDS / gen:.0f}x real time); "
          f"+ hub scoring {scoring:.1f} s = total {total:.1f} s ({SECONDS / total:.0f}x real time, "
          f"{total / 60:.2f}x the 60 s goal; scoring is {100 * scoring / total:.0f} % of it)", flush=True)
    gaps = fairness_distribution(3 if quick else 10)
    for scenario, vals in gaps.items():
        v = np.array(vals)
        print(f"fairness {scenario}, 120 wearers x 30 min, seeds 0-{v.size - 1}: between-group error gap "
              f"min {v.min():.4f} median {np.median(v):.4f} max {v.max():.4f} (threshold {ERROR_DISPARITY_MAX}, "
              f"max is {v.max() / ERROR_DISPARITY_MAX:.2f}x it)", flush=True)
    sig, what = signal_level(n_sig)
    print(f"signal level {n_sig} wearers x 1 h, {what}: {sig:.1f} s ({SECONDS / sig:.0f}x real time, "
          f"goal <= 120 s)", flush=True)


if __name__ == "__main__":
    main()
