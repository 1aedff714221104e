"""One simulated session end to end: cohort -> 1 Hz features -> our scoring and a naive one -> truth comparison.

`simulate(...)` returns a `SimResult` (arrays and the final scores); `write_outputs(...)` writes the files
`lifepalette sim` promises: features.parquet (or features.jsonl; both are `score` input), groups.json, scores.json, cohort.json,
arousal.npz, report.json and PNG plots.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lifepalette import feature_table
from lifepalette.privacy import K_MIN
from lifepalette.scoring import FIELDS, CoveScorer
from lifepalette.scoring import scorer as sc
from lifepalette.scoring.batch import score_features
from lifepalette.sim import evaluate
from lifepalette.sim.cohort import DEMOGRAPHIC_GROUPS, Cohort, make_cohort
from lifepalette.sim.features import feature_records
from lifepalette.sim.naive import naive_arousal
from lifepalette.sim.progress import Progress

LEVELS = ("feature", "signal")


@dataclass
class SimResult:
    cohort: Cohort
    features: dict[str, np.ndarray]
    scores: dict
    ours: np.ndarray  # (W, T) our arousal estimate per second (NaN where gated or baseline not ready)
    naive: np.ndarray  # (W, T) naive raw-level arousal
    palette_timeline: list[dict]
    report: dict


# wearers through the naive scorer at once: 64 wearer-hours of float64 temporaries (~2 MB each) stay in the CPU's
# cache, which made the naive peer twice as fast as 500 wearers at once (same numbers: each wearer on its own)
NAIVE_CHUNK = 64
SIGNAL_CHUNK = 25  # wearers through the kernel twin at once (bounds memory: ~60 MB of samples per chunk-hour)


def signal_level_features(cohort: Cohort, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Badge-unit signals for every wearer, through the badge kernels' numpy twin (lifepalette.kernels), which is
    bit-identical to protocol/kernels: the physiology fields are exactly what the badges would send."""
    from lifepalette.errors import UsageError

    try:
        from lifepalette.kernels.pipeline import run_pipeline
    except ImportError:
        raise UsageError("--level signal needs the badge kernels' numpy twin (lifepalette.kernels)") from None
    from lifepalette.sim.physiology import DEFAULT_RATES, simulate_wearer

    base = feature_records(cohort)  # colour, consent and battery are not physiology: keep the feature-level ones
    w, t = cohort.arousal.shape
    out = {k: base[k].copy() for k in FIELDS}
    idx = {name: i for i, name in enumerate(FIELDS)}
    for start in range(0, w, SIGNAL_CHUNK):
        rows = range(start, min(w, start + SIGNAL_CHUNK))
        sigs = [simulate_wearer(cohort.scenario, t, seed=cohort.seed * 100_003 + i, params=cohort.params[i],
                                arousal=cohort.arousal[i])[0] for i in rows]
        recs = run_pipeline(np.stack([s["ppg"] for s in sigs]), np.stack([s["eda"] for s in sigs]),
                            np.stack([s["acc"] for s in sigs]), np.stack([s["temp"] for s in sigs]),
                            ppg_rate=DEFAULT_RATES["ppg"], eda_rate=DEFAULT_RATES["eda"],
                            acc_rate=DEFAULT_RATES["acc"], temp_rate=DEFAULT_RATES["temp"])
        for name in ("hr_bpm", "rmssd_ms", "scl", "scr_per_min", "motion", "quality"):
            out[name][start:start + len(rows)] = recs[:, :, idx[name]]
        if progress:
            progress.update(len(rows))
    return out


def simulate(n_wearers: int, minutes: float, scenario: str = "healing", seed: int = 0, level: str = "feature",
             palette_every_s: int = 60, show_progress: bool | None = None) -> SimResult:
    seconds = int(round(minutes * 60))
    cohort = make_cohort(n_wearers, seconds, scenario, seed)
    if level == "signal":
        bar = Progress(n_wearers, "signals", show_progress)
        features = signal_level_features(cohort, bar)
        bar.close()
    else:
        features = feature_records(cohort)
    w = cohort.n
    ours = np.full((w, seconds), np.nan, np.float32)
    timeline: list[dict] = []
    bar = Progress(seconds, "scoring", show_progress)

    def each_block(scorer: CoveScorer, t_first: int, zcomp: np.ndarray) -> None:
        seconds_in = slice(t_first, t_first + len(zcomp))
        ours[:, seconds_in] = np.clip(sc.AROUSAL_AT_BASELINE + sc.AROUSAL_PER_Z * zcomp[:, :w].T, 0.0, 1.0)
        t = seconds_in.stop - 1  # blocks end at each palette snapshot's second
        if palette_every_s and (t + 1) % palette_every_s == 0:
            snap = scorer.compute(detail=False)  # the palette and public view only: cheap for large coves
            timeline.append({"t": t, "cove": {k: v for k, v in snap["palette"].items() if k != "groups"},
                             "groups": snap["palette"]["groups"], "public": snap["public"]})
        bar.update(len(zcomp))

    scorer = score_features(cohort.dev_ids, features, cohort.dialogue, on_block=each_block,
                            snapshot_every_s=palette_every_s or None, keep_trajectory=True)
    bar.close()
    scores = scorer.compute()
    naive = np.empty((w, seconds), np.float32)
    for start in range(0, w, NAIVE_CHUNK):  # in slices of wearers: float64 temporaries of the whole cohort are GBs
        rows = slice(start, start + NAIVE_CHUNK)
        naive[rows] = naive_arousal(features["hr_bpm"][rows], features["scl"][rows], features["scr_per_min"][rows])
    report = build_report(cohort, scores, ours, naive, timeline, level)
    return SimResult(cohort, features, scores, ours, naive, timeline, report)


def build_report(cohort: Cohort, scores: dict, ours: np.ndarray, naive: np.ndarray, timeline: list[dict],
                 level: str) -> dict:
    pairs = {(p["a"], p["b"]): p for p in scores["pairs"]}
    est = [pairs.get((a, b), {}) for _g, a, b in cohort.pairs]
    excess = np.array([np.nan if p.get("excess") is None else p["excess"] for p in est])
    windows = np.array([p.get("windows", 0) for p in est])
    stats = [scores["wearers"].get(str(int(d)), {}) for d in cohort.dev_ids]
    return {
        "scenario": cohort.scenario, "wearers": cohort.n, "seconds": cohort.seconds, "seed": cohort.seed,
        "level": level,
        "truth": {"pairs": [{"group": g, "a": a, "b": b, "coupling": round(float(c), 4), "lag_s": int(lag)}
                            for (g, a, b), c, lag in zip(cohort.pairs, cohort.coupling, cohort.lag_s, strict=True)],
                  "demographic": {str(int(d)): DEMOGRAPHIC_GROUPS[int(g)]
                                  for d, g in zip(cohort.dev_ids, cohort.demographic, strict=True)}},
        "estimates": {"pairs": [{"a": a, "b": b, "excess": p.get("excess"), "synchrony": p.get("synchrony"),
                                 "surrogate": p.get("surrogate"), "windows": p.get("windows", 0)}
                                for (_g, a, b), p in zip(cohort.pairs, est, strict=True)]},
        "validity": {**evaluate.validity(cohort.coupling, excess, windows),
                     "per_wearer": evaluate.wearer_validity(cohort.pairs, cohort.coupling, excess)},
        "fairness": evaluate.fairness(cohort.demographic, cohort.arousal, ours, naive, stats),
        "privacy": privacy_check([scores["public"]] + [snap["public"] for snap in timeline]),
    }


def privacy_check(publics: list[dict]) -> dict:
    """Every public aggregate must rest on at least k consenting contributors; suppressed entries carry no numbers."""
    checked, violations = 0, []
    for pub in publics:
        k = pub.get("k", K_MIN)
        for entry in [pub.get("cove", {})] + list(pub.get("groups", [])):
            if entry.get("suppressed"):
                if set(entry) - {"suppressed", "group"}:
                    violations.append({"reason": "suppressed entry carries data", "entry": entry})
                continue
            checked += 1
            if (entry.get("contributors") or 0) < max(k, K_MIN):
                violations.append({"reason": "fewer than k contributors", "entry": entry})
    return {"k": K_MIN, "aggregates_checked": checked, "violations": violations[:20],
            "ok": not violations}


def write_features_jsonl(path: Path, cohort: Cohort, features: dict[str, np.ndarray],
                         show_progress: bool | None = None) -> int:
    bar = Progress(cohort.seconds, "features", show_progress)
    with path.open("w", encoding="utf-8") as fh:
        n = feature_table.write_feature_jsonl(fh, cohort.dev_ids, features, progress=bar)
    bar.close()
    return n


def write_features_parquet(path: Path, cohort: Cohort, features: dict[str, np.ndarray],
                           show_progress: bool | None = None) -> int:
    bar = Progress(cohort.seconds, "features", show_progress)
    n = feature_table.write_feature_arrays(path, cohort.dev_ids, features, progress=bar)
    bar.close()
    return n


def write_outputs(result: SimResult, out: Path, features: str | None = "parquet", plots: bool = True,
                  show_progress: bool | None = None) -> list[str]:
    """features: "parquet" (features.parquet), "jsonl" (features.jsonl) or None (no feature file)."""
    out.mkdir(parents=True, exist_ok=True)
    c = result.cohort
    written = []
    if features == "jsonl":
        write_features_jsonl(out / "features.jsonl", c, result.features, show_progress)
        written.append("features.jsonl")
    elif features:
        write_features_parquet(out / "features.parquet", c, result.features, show_progress)
        written.append("features.parquet")
    groups = {"groups": [members for _gid, members in sorted(c.dialogue.items())]}
    files = {"groups.json": groups, "scores.json": result.scores, "report.json": result.report,
             "palette_timeline.json": result.palette_timeline,
             "cohort.json": {"scenario": c.scenario, "seconds": c.seconds, "seed": c.seed,
                             "dev_ids": c.dev_ids.tolist(), "demographic": [DEMOGRAPHIC_GROUPS[int(g)]
                                                                            for g in c.demographic],
                             "dialogue": {str(k): v for k, v in c.dialogue.items()}}}
    for name, doc in files.items():  # trees of plain values: no cycle check (the same text, ~15 % less CPU)
        (out / name).write_text(json.dumps(doc, allow_nan=False, check_circular=False) + "\n", encoding="utf-8")
        written.append(name)
    # uncompressed: zlib took longer than the whole Parquet feature table (float noise barely compresses)
    np.savez(out / "arousal.npz", dev_ids=c.dev_ids, truth=c.arousal, ours=result.ours, naive=result.naive,
             demographic=c.demographic)
    written.append("arousal.npz")
    if plots:
        bar = Progress(4, "plots", show_progress)  # four figures drawn with Pillow: about 0.2 s CPU
        from lifepalette.sim import plots as plot_mod

        written += plot_mod.write_plots(result, out, progress=bar)
        bar.close()
    return written
