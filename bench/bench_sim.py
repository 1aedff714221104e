"""Simulator throughput: feature level 10,000 wearers x 1 h (goal <= 60 s), signal level 100 wearers x 1 h
(goal <= 120 s), each as a ratio to real time. Scoring of the feature-level cohort is timed separately (the hub's
scorer, vectorised over wearers). Set LP_BENCH_QUICK=1 for a tenth of the size."""

from __future__ import annotations

import os
import time

SECONDS = 3600
CHUNK = 2000  # wearers generated at once (dialogue groups never span chunks); bounds memory to ~1 GB


def feature_level(wearers: int, score: bool) -> tuple[float, float]:
    from lifepalette.scoring import CoveScorer
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records, second_matrix

    gen = scoring = 0.0
    for start in range(0, wearers, CHUNK):
        n = min(CHUNK, wearers - start)
        t0 = time.perf_counter()
        cohort = make_cohort(n, SECONDS, "healing", seed=start, first_dev_id=start + 1)
        features = feature_records(cohort)
        gen += time.perf_counter() - t0
        if score:
            t0 = time.perf_counter()
            scorer = CoveScorer(cohort.dialogue)
            for t in range(SECONDS):
                scorer.add_second(t, cohort.dev_ids, second_matrix(features, t))
            scorer.flush()
            scorer.compute()
            scoring += time.perf_counter() - t0
        del features, cohort
    return gen, scoring


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


def main() -> None:
    quick = bool(os.environ.get("LP_BENCH_QUICK"))
    n_feat, n_sig = (1000, 10) if quick else (10_000, 100)
    gen, scoring = feature_level(n_feat, score=True)
    print(f"feature level {n_feat} wearers x 1 h: generation {gen:.1f} s ({SECONDS / gen:.0f}x real time, "
          f"goal <= 60 s); + hub scoring {scoring:.1f} s (total {gen + scoring:.1f} s, "
          f"{SECONDS / (gen + scoring):.0f}x real time)", flush=True)
    sig, what = signal_level(n_sig)
    print(f"signal level {n_sig} wearers x 1 h, {what}: {sig:.1f} s ({SECONDS / sig:.0f}x real time, "
          f"goal <= 120 s)", flush=True)


if __name__ == "__main__":
    main()
