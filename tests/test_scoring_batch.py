"""The offline batch path (`score_features`, vectorised over wearers) gives the streaming scorer's numbers exactly."""

import json

import numpy as np
import pytest
from lifepalette.scoring import CoveScorer
from lifepalette.scoring.batch import score_features
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records


def streamed(dev_ids, features, groups, every_s=60):
    """What the hub does: records one by one through `add`, `compute()` on a cadence (absent = NaN skipped)."""
    scorer = CoveScorer(groups)
    names = list(features)
    seconds = next(iter(features.values())).shape[1]
    for t in range(seconds):
        for i, dev in enumerate(dev_ids):
            rec = {k: features[k][i, t] for k in names if not np.isnan(features[k][i, t])}
            if rec:
                scorer.add(int(dev), t, rec)
        if (t + 1) % every_s == 0:
            scorer.compute()
    scorer.flush()
    return scorer.compute()


@pytest.fixture(scope="module")
def cohort():
    c = make_cohort(14, 420, "confrontation", seed=4)
    return c, {k: v.astype(np.float64) for k, v in feature_records(c).items()}


def test_batch_equals_streaming_on_full_records(cohort):
    c, features = cohort
    batch = score_features(c.dev_ids, features, c.dialogue).compute()
    stream = streamed(c.dev_ids, features, c.dialogue)
    assert len(batch["pairs"]) > 5 and any(p["windows"] for p in batch["pairs"])
    assert json.dumps(batch, sort_keys=True) == json.dumps(stream, sort_keys=True)


def test_batch_equals_streaming_on_sparse_records_without_consent_or_quality(cohort):
    c, full = cohort
    rng = np.random.default_rng(1)
    features = {k: full[k].copy() for k in ("hr_bpm", "scl", "scr_per_min")}
    gone = rng.random(full["hr_bpm"].shape) < 0.05  # whole records missing
    for v in features.values():
        v[gone] = np.nan
    features["hr_bpm"][rng.random(gone.shape) < 0.1] = np.nan  # and single values
    batch = score_features(c.dev_ids, features).compute()  # one group: every pair
    stream = streamed(c.dev_ids, features, None)
    assert batch["wearers"]["1"]["valid_seconds"] > 0
    assert json.dumps(batch, sort_keys=True) == json.dumps(stream, sort_keys=True)


def test_batch_rejects_bad_input(cohort):
    c, features = cohort
    with pytest.raises(ValueError, match="unknown telemetry field"):
        score_features(c.dev_ids, {"pulse": features["hr_bpm"]})
    with pytest.raises(ValueError, match="one shape"):
        score_features(c.dev_ids[:3], {"hr_bpm": features["hr_bpm"]})


def test_snapshot_without_detail_has_the_same_groups_palette_and_public_view(cohort):
    c, features = cohort
    scorer = score_features(c.dev_ids, features, c.dialogue)
    light, full = scorer.compute(detail=False), scorer.compute()
    assert light["wearers"] == {} and light["pairs"] == [] and full["wearers"] and full["pairs"]
    for key in ("groups", "palette", "public", "t"):
        assert light[key] == full[key]
    # group figures agree with the pairs and wearers they summarise
    for g in full["groups"]:
        pairs = [p for p in full["pairs"] if p["group"] == g["group"] and p["excess"] is not None]
        if pairs:
            assert abs(g["excess"] - np.mean([p["excess"] for p in pairs])) < 1e-3
        assert g["members"] == sorted(c.dialogue[g["group"]])
