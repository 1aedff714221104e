"""CPU share of the hub's scoring for 200 wearers at 1 Hz (goal < 5 % of one core), against a naive peer that
recomputes every pair's synchrony from the history on each tick. Measured in the same run, with process CPU time."""

from __future__ import annotations

import os
import time

import numpy as np

WEARERS = 200
WARMUP_S = 240  # baseline learnt and surrogate history filled before measuring
MEASURE_S = 300


def _records(features: dict, fields: tuple[str, ...], t: int) -> list[dict]:
    cols = np.stack([features[k][:, t] for k in fields], axis=1).tolist()
    return [dict(zip(fields, row, strict=True)) for row in cols]


def hub_pattern(groups_mode: str) -> dict:
    from lifepalette.scoring import FIELDS, CoveScorer
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records

    seconds = WARMUP_S + MEASURE_S
    cohort = make_cohort(WEARERS, seconds, "dialogue", seed=11)
    features = feature_records(cohort)
    scorer = CoveScorer(cohort.dialogue if groups_mode == "dialogue groups" else None)
    ids = cohort.dev_ids.tolist()
    per_second = [_records(features, FIELDS, t) for t in range(seconds)]  # decoding is the hub's cost, not ours
    cpu = 0.0
    for t in range(seconds):
        c0 = time.process_time()
        for dev, rec in zip(ids, per_second[t], strict=True):
            scorer.add(dev, t, rec)
        out = scorer.compute()
        if t >= WARMUP_S:
            cpu += time.process_time() - c0
    return {"mode": groups_mode, "pairs": len(out["pairs"]), "cpu_per_tick_ms": 1000 * cpu / MEASURE_S,
            "core_share_percent": 100 * cpu / MEASURE_S, "scorer": scorer}


def naive_peer(scorer, ticks: int = 3, history_s: int = 240) -> float:
    """CPU seconds per tick to recompute every pair's synchrony over the last `history_s` seconds from scratch."""
    from lifepalette.scoring import synchrony as sy
    from lifepalette.scoring.wearers import HISTORY_S

    series = scorer.ring[: len(scorer.devs)].astype(np.float64)
    history_s = min(history_s, HISTORY_S)
    c0 = time.process_time()
    for _ in range(ticks):
        for a, b in zip(scorer.pa.tolist(), scorer.pb.tolist(), strict=True):
            sy.naive_pair_synchrony(series[a, -history_s:], series[b, -history_s:])
    return (time.process_time() - c0) / ticks


def batch_vs_streaming(wearers: int = WEARERS, seconds: int = WARMUP_S + MEASURE_S) -> tuple[float, float]:
    """CPU seconds to score the same cohort offline: records one by one through `CoveScorer.add` (compute() every
    minute) vs the batch path `score_features` (one call per second for every wearer); the scores are equal."""
    from lifepalette.scoring import FIELDS, CoveScorer
    from lifepalette.scoring.batch import score_features
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records

    cohort = make_cohort(wearers, seconds, "dialogue", seed=12)
    features = feature_records(cohort)
    per_second = [_records(features, FIELDS, t) for t in range(seconds)]
    ids = cohort.dev_ids.tolist()
    c0 = time.process_time()
    scorer = CoveScorer(cohort.dialogue)
    for t in range(seconds):
        for dev, rec in zip(ids, per_second[t], strict=True):
            scorer.add(dev, t, rec)
        if (t + 1) % 60 == 0:
            scorer.compute()
    scorer.flush()
    stream_scores = scorer.compute()
    streaming = time.process_time() - c0
    c0 = time.process_time()
    batch_scores = score_features(cohort.dev_ids, features, cohort.dialogue).compute()
    batch = time.process_time() - c0
    assert batch_scores["pairs"] == stream_scores["pairs"], "batch and streaming scores differ"
    return streaming, batch


def main() -> None:
    global MEASURE_S
    if os.environ.get("LP_BENCH_QUICK"):
        MEASURE_S = 60
    for mode in ("dialogue groups", "one group"):
        res = hub_pattern(mode)
        print(f"scoring {WEARERS} wearers at 1 Hz, {mode} ({res['pairs']} pairs): "
              f"{res['cpu_per_tick_ms']:.2f} ms CPU per tick = {res['core_share_percent']:.2f} % of one core "
              f"(goal < 5 %)", flush=True)
        if mode == "dialogue groups":
            naive = naive_peer(res["scorer"])
            print(f"  naive peer (recompute every pair from 4 min of history each tick): {1000 * naive:.1f} ms per "
                  f"tick = {100 * naive:.1f} % of one core; incremental is "
                  f"{naive / (res['cpu_per_tick_ms'] / 1000):.0f}x cheaper", flush=True)
    streaming, batch = batch_vs_streaming()
    print(f"offline scoring of {WEARERS} wearers x {WARMUP_S + MEASURE_S} s: records one by one {streaming:.2f} s CPU, "
          f"batch path (score_features) {batch:.2f} s = {streaming / batch:.1f}x faster, same scores", flush=True)


if __name__ == "__main__":
    main()
