"""CoveScorer behaviour: baseline, gating, arousal, regulation, synchrony vs surrogate, metric, palette, privacy."""

import numpy as np
import pytest
from lifepalette.scoring import CoveScorer
from lifepalette.scoring.baseline import RobustBaseline
from lifepalette.scoring.fields import CONSENT_COLOUR, CONSENT_PAUSED, CONSENT_PHYSIO, Q_EDA, Q_HR, Q_MOTION, Q_SKIN
from lifepalette.scoring.palette import AROUSED_HUE_DEG, CALM_HUE_DEG, converged_hue, group_colour

GOOD = Q_SKIN | Q_HR | Q_EDA
CONSENT = CONSENT_PHYSIO | CONSENT_COLOUR | (1 << 4)


def record(arousal: float, quality: int = GOOD, consent: int = CONSENT, hue: int = 0, noise=None) -> dict:
    n = noise if noise is not None else np.zeros(3)
    return {"hr_bpm": int(round(70 + 30 * arousal + n[0])), "rmssd_ms": int(round(45 - 20 * arousal)),
            "scl": int(round(500 * (1 + 0.6 * arousal) * (1 + 0.01 * n[1]))), "scr_per_min": int(2 + 8 * arousal),
            "motion": 0, "hue": hue, "chroma": 200, "colour_age": 0, "consent": consent, "battery": 90,
            "quality": quality}


def ou(rng, n, tau=10.0):
    phi = np.exp(-1 / tau)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + np.sqrt(1 - phi * phi) * rng.standard_normal()
    return x


def feed(scorer, series: dict, seconds: int, rng, **kw):
    for t in range(seconds):
        for dev, a in series.items():
            scorer.add(dev, t, record(float(a[t]), noise=rng.standard_normal(3), **kw))


def test_robust_baseline_ignores_outliers_and_sustained_peaks():
    b = RobustBaseline(np.array([0.1]), learn_s=50)
    b.grow(1)
    rng = np.random.default_rng(0)
    for v in 10 + rng.standard_normal(50):
        b.update(np.array([[v]]))
    assert b.ready[0, 0] and abs(b.median[0, 0] - 10) < 0.5 and 0.6 < b.spread[0, 0] < 1.5
    for _ in range(600):  # a long confrontation far above baseline must not become the baseline
        b.update(np.array([[20.0]]))
    assert abs(b.median[0, 0] - 10) < 0.5
    assert b.z(np.array([[20.0]]))[0, 0] > 5


def test_arousal_rises_above_own_baseline_whatever_the_absolute_level():
    rng = np.random.default_rng(1)
    s = CoveScorer(learn_s=60)
    low = {1: np.r_[np.full(120, 0.1), np.full(120, 0.6)]}
    feed(s, low, 240, rng)
    out = s.compute()
    w = out["wearers"]["1"]
    assert w["baseline_ready"] and w["arousal"] > 0.5
    assert 0.0 <= w["arousal"] <= 1.0


def test_motion_and_bad_quality_seconds_are_excluded_and_counted():
    rng = np.random.default_rng(2)
    s = CoveScorer(learn_s=30)
    feed(s, {1: np.full(60, 0.2)}, 60, rng)
    for t in range(60, 80):
        s.add(1, t, record(0.9, quality=GOOD | Q_MOTION))  # arousal would jump if motion seconds counted
    for t in range(80, 90):
        s.add(1, t, record(0.9, quality=0))  # off skin
    s.flush()
    w = s.compute()["wearers"]["1"]
    assert w["excluded_motion_s"] == 20 and w["excluded_quality_s"] == 10
    assert w["arousal"] < 0.35
    assert w["excluded_fraction"] == pytest.approx(30 / 90, abs=1e-3)


def test_no_consent_or_paused_means_no_physiology_scored():
    rng = np.random.default_rng(3)
    s = CoveScorer(learn_s=10)
    feed(s, {1: np.full(60, 0.3)}, 60, rng, consent=CONSENT_COLOUR)
    feed(s, {2: np.full(60, 0.3)}, 60, rng, consent=CONSENT_PHYSIO | CONSENT_PAUSED)
    s.flush()
    out = s.compute()
    for dev in ("1", "2"):
        assert out["wearers"][dev]["valid_seconds"] == 0 and out["wearers"][dev]["arousal"] is None


def coupled_pair(rng, seconds, c):
    shared, a, b = ou(rng, seconds), ou(rng, seconds), ou(rng, seconds)
    x = 0.4 + 0.12 * (np.sqrt(c) * shared + np.sqrt(1 - c) * a)
    y = 0.4 + 0.12 * (np.sqrt(c) * np.roll(shared, 2) + np.sqrt(1 - c) * b)
    return x, y


def test_synchrony_separates_coupled_from_uncoupled_pairs_against_surrogate():
    rng = np.random.default_rng(4)
    seconds = 900
    x1, y1 = coupled_pair(rng, seconds, 0.8)
    x0, y0 = coupled_pair(rng, seconds, 0.0)
    s = CoveScorer({10: [1, 2], 20: [3, 4]}, learn_s=60)
    feed(s, {1: x1, 2: y1, 3: x0, 4: y0}, seconds, rng)
    s.flush()
    out = s.compute()
    pairs = {(p["a"], p["b"]): p for p in out["pairs"]}
    assert set(pairs) == {(1, 2), (3, 4)}  # pairs only within a group
    assert out["wearers"]["1"]["synchrony"] > 0.15 > abs(out["wearers"]["3"]["synchrony"])
    coupled, uncoupled = pairs[(1, 2)], pairs[(3, 4)]
    assert coupled["windows"] > 100 and coupled["surrogate_windows"] > 100
    assert coupled["excess"] > 0.2
    assert abs(uncoupled["excess"]) < 0.1  # chance alignment scores about zero (one pair; cohorts test the mean)
    assert coupled["surrogate"] > 0  # peak picking over lags inflates raw r: that is why the surrogate exists
    assert 0.0 <= coupled["lag_s"] <= 4.0


def test_incremental_compute_matches_one_offline_pass():
    rng = np.random.default_rng(5)
    x, y = coupled_pair(rng, 400, 0.5)
    live, offline = CoveScorer(learn_s=60), CoveScorer(learn_s=60)
    for t in range(400):
        for dev, a in ((1, x), (2, y)):
            rec = record(float(a[t]))
            live.add(dev, t, rec)
            offline.add(dev, t, rec)
        live.compute()  # the hub's 1 s cadence
    live.flush()
    offline.flush()
    assert live.compute()["pairs"] == offline.compute()["pairs"]


def test_late_records_are_counted_not_scored():
    s = CoveScorer()
    for t in range(10):
        s.add(1, t, record(0.2))
    s.compute()  # processes up to t = 7 (grace 2 s)
    s.add(1, 3, record(0.9))
    assert s.late_records == 1


def test_compassion_metric_is_a_trajectory_not_a_ranking():
    rng = np.random.default_rng(6)
    x, y = coupled_pair(rng, 900, 0.7)
    s = CoveScorer(learn_s=60, keep_trajectory=True)
    feed(s, {1: x, 2: y}, 900, rng)
    s.flush()
    w = s.compute()["wearers"]["1"]
    assert {"level", "trend", "confidence"} <= set(w)
    assert 0 <= w["level"] <= 1 and 0 < w["confidence"] <= 1 and w["trend"] is not None
    assert len(w["trajectory"]) >= 10
    assert not any("rank" in k for k in w)


def test_public_aggregates_need_five_contributors():
    rng = np.random.default_rng(7)
    four = CoveScorer({1: [1, 2], 2: [3, 4]}, learn_s=20)
    feed(four, {d: np.full(120, 0.3) + 0.05 * ou(rng, 120) for d in (1, 2, 3, 4)}, 120, rng)
    four.flush()
    pub = four.compute()["public"]
    assert pub["cove"] == {"suppressed": True}
    assert all(g == {"group": g["group"], "suppressed": True} for g in pub["groups"])
    five = CoveScorer({1: [1, 2, 3, 4, 5]}, learn_s=20)
    feed(five, {d: np.full(120, 0.3) + 0.05 * ou(rng, 120) for d in (1, 2, 3, 4, 5)}, 120, rng)
    five.flush()
    pub = five.compute()["public"]
    assert pub["cove"]["contributors"] == 5 and pub["groups"][0]["contributors"] == 5
    assert "wearers" not in pub


def test_forget_erases_a_wearer():
    rng = np.random.default_rng(8)
    s = CoveScorer(learn_s=20)
    feed(s, {1: np.full(100, 0.3), 2: np.full(100, 0.3)}, 100, rng)
    s.flush()
    s.forget(1)
    w = s.compute()["wearers"]
    assert "1" not in w and w["2"]["seconds"] == 100


def test_palette_brightness_hue_and_convergence():
    calm = group_colour(0.1, 0.0, np.array([]), np.array([]), 1.0)
    hot = group_colour(0.9, 0.0, np.array([]), np.array([]), 1.0)
    assert hot["brightness"] > calm["brightness"]
    assert calm["hue"] == pytest.approx(CALM_HUE_DEG + (AROUSED_HUE_DEG - CALM_HUE_DEG) * 0.1, abs=0.5)
    assert hot["hue"] < calm["hue"]  # toward orange on the CVD-safe blue-orange axis
    apart = np.array([0.0, 120.0])
    loose = group_colour(0.5, 0.0, apart, np.array([1.0, 1.0]), 1.0)
    tight = group_colour(0.5, 0.3, apart, np.array([1.0, 1.0]), 1.0)
    assert tight["convergence"] == 1.0 and tight["saturation"] > loose["saturation"]
    assert loose["hue"] == pytest.approx(60.0, abs=0.5)  # circular mean of reported hues
    assert converged_hue(350.0, 10.0, 0.5) == pytest.approx(0.0, abs=1e-9)  # the short way round
    poor = group_colour(0.5, 0.0, np.array([]), np.array([]), 0.0)
    assert poor["saturation"] < group_colour(0.5, 0.0, np.array([]), np.array([]), 1.0)["saturation"]


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match="unknown telemetry field"):
        CoveScorer().add(1, 0, {"heart": 70})


def test_flat_identical_signals_are_not_synchrony():
    s = CoveScorer(learn_s=30)
    for t in range(400):
        for dev in (1, 2, 3):
            s.add(dev, 1_700_000_000 + t + 0.4, record(0.3))  # hub-style float unix time
        s.compute()
    for p in s.compute()["pairs"]:
        assert p["windows"] == 0 and p["synchrony"] is None


def test_every_per_wearer_array_is_declared_once_with_its_reset_rule():
    from lifepalette.scoring.wearers import WEARER_ARRAYS

    s = CoveScorer()
    for t in range(40):
        for dev in (1, 2, 3):
            s.add(dev, t, {"hr_bpm": 70 + t % 5 + dev, "scl": 500 + 10 * dev + t, "quality": 7, "consent": 0x13})
    s.compute()
    per_wearer = {name for name, value in vars(s).items()
                  if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == s.capacity}
    assert per_wearer == set(WEARER_ARRAYS)  # none kept outside the table, where a reset list could miss it


def test_a_new_consent_epoch_resets_physiology_state_and_forget_resets_everything():
    from lifepalette.scoring.wearers import NEVER, NEW_EPOCH, WEARER_ARRAYS

    def is_(row, value):
        return bool(np.all((row == value) | (np.isnan(row) & np.isnan(value)))) if row.dtype.kind == "f" \
            else bool(np.all(row == value))

    s = CoveScorer()
    s._row(1), s._row(2)
    marker = {name: np.asarray(7).astype(getattr(s, name).dtype) for name in WEARER_ARRAYS}
    for name in WEARER_ARRAYS:
        getattr(s, name)[:2] = marker[name]
    s._reset_wearer_rows(np.array([0]), NEW_EPOCH)
    for name, (fill, _tail, _dtype, reset) in WEARER_ARRAYS.items():
        row0, row1 = getattr(s, name)[0], getattr(s, name)[1]
        assert is_(row1, marker[name]), name  # other wearers untouched
        # physiology state of the old epoch goes; bookkeeping (counts, colour, last valid time) survives
        assert is_(row0, fill if reset == NEW_EPOCH else marker[name]), name
    s.forget(1)
    for name, (fill, _tail, _dtype, reset) in WEARER_ARRAYS.items():
        assert is_(getattr(s, name)[0], marker[name] if reset == NEVER else fill), name


def test_the_scores_document_has_exactly_the_declared_shapes():
    from lifepalette.scoring import report

    s = CoveScorer(keep_trajectory=True)
    rng = np.random.default_rng(4)
    feed(s, {dev: np.clip(0.5 + 0.2 * ou(rng, 400), 0, 1) for dev in range(1, 7)}, 400, rng)
    out = s.compute()

    def keys(typed):
        return set(typed.__annotations__)

    assert set(out) == keys(report.Scores)
    assert all(set(w) == keys(report.WearerScore) for w in out["wearers"].values()) and out["wearers"]
    assert all(set(p) == keys(report.PairScore) for p in out["pairs"]) and out["pairs"]
    assert all(set(g) == keys(report.GroupScore) and set(g["palette"]) == keys(report.PaletteScore)
               for g in out["groups"])
    assert set(out["palette"]) == keys(report.CovePalette)
    assert set(out["public"]) == keys(report.PublicScores) and not out["public"]["cove"].get("suppressed")
    assert set(out["public"]["cove"]) == keys(report.PublicCove) - {"suppressed"}
    assert all(set(g) == keys(report.PublicGroup) - {"suppressed"} for g in out["public"]["groups"])


def test_metric_levels_follow_a_forget_within_the_same_second():
    """The levels are kept for the second they were computed in; erasing a wearer must not leave his level behind."""
    rng = np.random.default_rng(9)
    s = CoveScorer(learn_s=20)
    t = np.arange(300)
    feed(s, {1: 0.4 + 0.2 * np.sin(t / 9.0), 2: 0.4 + 0.2 * np.sin(t / 9.0 + 0.3)}, 300, rng)
    s.flush()
    assert np.isfinite(s.metric_levels()[0][s.rows[1]])
    s.forget(1)
    assert np.isnan(s.metric_levels()[0][s.rows[1]])
