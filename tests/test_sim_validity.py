"""Seeded cohorts: the synchrony estimate tracks the true coupling, chance scores zero, and groups are treated alike."""

import numpy as np
import pytest
from lifepalette.sim import evaluate
from lifepalette.sim.cohort import DEMOGRAPHIC_GROUPS, make_cohort
from lifepalette.sim.features import feature_records
from lifepalette.sim.run import simulate


@pytest.fixture(scope="module", params=[("healing", 0), ("dialogue", 1), ("confrontation", 2)])
def result(request):
    scenario, seed = request.param
    return simulate(60, 30, scenario, seed=seed, palette_every_s=120, show_progress=False)


VALIDITY_SEEDS = range(4)  # consecutive seeds, not chosen: each cohort must pass
# measured at 60 wearers x 30 min over seeds 0-9 x these 3 scenarios: Spearman 0.820-0.918 (median 0.879);
# uncoupled pairs' 90% CI of mean excess within [-0.014, +0.023], inside the +-0.03 margin


@pytest.fixture(scope="module", params=["healing", "dialogue", "confrontation"])
def seeded_runs(request):
    return [simulate(60, 30, request.param, seed=s, palette_every_s=0, show_progress=False).report["validity"]
            for s in VALIDITY_SEEDS]


def test_synchrony_tracks_true_coupling_on_every_seed(seeded_runs):
    for v in seeded_runs:
        assert v["pairs"] >= 40
        assert v["spearman_coupling_vs_synchrony"] >= evaluate.SPEARMAN_MIN, v
        assert v["spearman_ok"]
        # the estimate separates coupled from uncoupled pairs by far more than the equivalence margin
        assert v["coupled"]["mean_excess"] > 2 * evaluate.EQUIVALENCE_MARGIN


def test_uncoupled_pairs_are_equivalent_to_surrogate_on_every_seed(seeded_runs):
    for v in seeded_runs:
        u = v["uncoupled"]
        eq = u["equivalence"]
        assert u["pairs"] >= 8
        assert eq["margin"] == evaluate.EQUIVALENCE_MARGIN
        assert -eq["margin"] < eq["ci_low"] <= u["mean_excess"] <= eq["ci_high"] < eq["margin"], u
        assert eq["tost_p"] < eq["alpha"] and eq["equivalent"] and u["indistinguishable_from_surrogate"]


def test_equivalence_does_not_fail_because_n_is_large():
    rng = np.random.default_rng(0)
    big = rng.normal(0.003, 0.03, 20_000)  # a tiny bias that a test of mean == 0 rejects (t ~ 14)
    assert abs(evaluate.one_sample_t(big)[0]) > 10
    assert evaluate.equivalence(big)["equivalent"]
    assert not evaluate.equivalence(rng.normal(0.05, 0.03, 20_000))["equivalent"]  # a real offset still fails
    assert not evaluate.equivalence(np.array([0.05, -0.04, 0.03, -0.02]))["equivalent"]  # too few pairs: CI too wide
    assert not evaluate.equivalence(np.array([0.01]))["equivalent"]


FAIRNESS_SEEDS = range(4)  # consecutive seeds, not chosen: each cohort must pass
FAIRNESS_WEARERS = 120  # 40 per demographic group: a group's mean error is not dominated by a few individuals


@pytest.mark.parametrize("scenario", ["healing", "dialogue", "confrontation"])
def test_our_error_disparity_stays_below_threshold_on_every_seed(scenario):
    gaps, naive = [], []
    for seed in FAIRNESS_SEEDS:
        r = simulate(FAIRNESS_WEARERS, 30, scenario, seed=seed, palette_every_s=0, show_progress=False)
        d = r.report["fairness"]["disparity"]
        gaps.append(d["arousal_mae"])
        naive.append(d["naive_arousal_mae"])
    # measured over seeds 0-9 x these 3 scenarios at 120 wearers: max 0.034, medians 0.010-0.014
    assert max(gaps) < evaluate.ERROR_DISPARITY_MAX, gaps
    assert np.mean(gaps) < evaluate.ERROR_DISPARITY_MAX / 2, gaps
    assert min(naive) >= evaluate.ERROR_DISPARITY_MAX, naive


def test_naive_scorer_shows_the_built_in_disparity(result):
    d = result.report["fairness"]["disparity"]
    assert d["naive_arousal_mae"] >= evaluate.ERROR_DISPARITY_MAX
    groups = result.report["fairness"]["groups"]
    # the naive raw-level scorer under-reads the low responders most
    assert max(groups, key=lambda g: groups[g]["naive_arousal_mae"]) == "low_eda"
    # the quality gate fails HR more often for low PPG amplitude: reported, not hidden
    assert groups["low_ppg"]["hr_invalid_rate"] > groups["reference"]["hr_invalid_rate"]


def test_every_public_aggregate_has_k_contributors(result):
    p = result.report["privacy"]
    assert p["ok"] and p["aggregates_checked"] > 0 and p["violations"] == []


def test_cohort_is_seeded_and_builds_in_group_differences():
    a, b = make_cohort(30, 300, "healing", seed=9), make_cohort(30, 300, "healing", seed=9)
    assert np.array_equal(a.arousal, b.arousal) and np.array_equal(a.coupling, b.coupling)
    fa, fb = feature_records(a), feature_records(b)
    assert all(np.array_equal(fa[k], fb[k]) for k in fa)
    assert (a.coupling == 0).any() and (a.coupling > 0).any()
    assert all(len(m) >= 2 for m in a.dialogue.values())
    scl = fa["scl"].mean(axis=1)
    low = a.demographic == DEMOGRAPHIC_GROUPS.index("low_eda")
    assert scl[low].mean() < 0.5 * scl[~low].mean()
    with pytest.raises(ValueError):
        make_cohort(1, 60)


def test_signal_level_through_the_badge_kernels_meets_the_same_bars():
    r = simulate(36, 30, "healing", seed=2, level="signal", palette_every_s=0, show_progress=False)
    assert r.report["level"] == "signal"
    assert r.report["validity"]["spearman_ok"] and r.report["validity"]["uncoupled"]["indistinguishable_from_surrogate"]
    assert r.report["fairness"]["disparity"]["ours_within_threshold"]
    assert r.report["fairness"]["disparity"]["naive_exceeds_threshold"]
