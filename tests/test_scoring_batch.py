"""The offline batch path (`score_features`, vectorised over wearers) gives the streaming scorer's numbers exactly."""

import json

import numpy as np
import pytest
from lifepalette.scoring import CoveScorer
from lifepalette.scoring.batch import score_features
from lifepalette.scoring.fields import FIELD_INDEX, FIELDS
from lifepalette.scoring.wearers import WEARER_ARRAYS
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


def test_blocks_of_any_length_equal_the_hub_second_by_second(cohort):
    """A block's seconds run as one chunk (recurrences second by second, the rest vectorised, the synchrony steps
    after); the hub steps one second at a time. Edges: consent revisions mid-block and at a block's first second,
    gaps crossing block boundaries, forget between blocks, blocks of one second, a block starting and ending at a
    synchrony step (every 5th second), the first synchrony step inside a block."""
    c, features = cohort
    x = np.full((c.seconds, c.n, len(FIELDS)), np.nan)
    for name, values in features.items():
        x[:, :, FIELD_INDEX[name]] = values.T
    consent = FIELD_INDEX["consent"]
    for row, t in ((2, 111), (4, 175)):  # a new consent revision (bits 4..7) from second t on
        x[t:, row, consent] = (x[t:, row, consent].astype(int) & 0x0F) | (5 << 4)
    for row, lo, hi in ((3, 50, 130), (0, 95, 101), (8, 170, 190)):
        x[lo:hi, row] = np.nan
    # [38, 160) spans the seconds where the 45 and 90 s surrogate shifts become available (a step must see the
    # seconds processed up to itself, not the block's); [184, 185) starts and ends at a synchrony step
    bounds = [0, 37, 38, 160, 175, 180, 184, 185, 234, 235, 300, 359, c.seconds]
    forget_at = {160: c.dev_ids[6], 234: c.dev_ids[1]}
    # a short baseline: synchrony runs from the first blocks on, while the surrogate shifts become available
    hub, batch = (CoveScorer(c.dialogue, keep_trajectory=True, learn_s=10) for _ in range(2))
    hub_z, batch_z = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if lo in forget_at:
            hub.forget(int(forget_at[lo]))
            batch.forget(int(forget_at[lo]))
        for t in range(lo, hi):
            hub.add_second(t, c.dev_ids, x[t])
            hub_z.append(hub.zcomp.copy())
        batch_z.append(batch.add_seconds(lo, c.dev_ids, x[lo:hi]))
        assert np.array_equal(batch.zcomp, hub.zcomp, equal_nan=True)
        assert json.dumps(batch.compute(), sort_keys=True) == json.dumps(hub.compute(), sort_keys=True)
    assert np.array_equal(np.concatenate(batch_z), np.stack(hub_z), equal_nan=True)
    assert hub.pair_state[:, 1].max() > 10 and batch.n_valid.min() == 0  # synchrony ran; forget cleared a wearer
    for name in WEARER_ARRAYS:
        assert np.array_equal(getattr(batch, name), getattr(hub, name), equal_nan=True), name
    for name in ("pair_state", "_wstat", "_wvalid", "_wend", "_wseries", "_wseen"):  # the synchrony sums (compute() rounds them)
        assert np.array_equal(getattr(batch, name), getattr(hub, name), equal_nan=True), name
    for name in ("count", "median", "mad", "ready"):
        assert np.array_equal(getattr(batch.baseline, name), getattr(hub.baseline, name)), name
    assert [t for t, _ in batch.trajectory] == [t for t, _ in hub.trajectory]
    for (_, a), (_, b) in zip(batch.trajectory, hub.trajectory, strict=True):
        assert np.array_equal(a, b, equal_nan=True)


def test_on_block_gives_every_seconds_z_and_snapshots_at_block_ends(cohort):
    c, features = cohort
    per_second, snaps = [], {}

    def each_second(scorer, t):
        per_second.append(scorer.zcomp.copy())
        if (t + 1 - 7) % 25 == 0:
            snaps[t] = scorer.compute(detail=False)

    blocks, block_snaps = [], {}

    def each_block(scorer, t_first, zcomp):
        blocks.append(zcomp)
        t = t_first + len(zcomp) - 1
        assert (t + 1 - 7) % 25 == 0 or t == 7 + c.seconds - 1
        block_snaps[t] = scorer.compute(detail=False)

    score_features(c.dev_ids, features, c.dialogue, t0=7, on_second=each_second)
    score_features(c.dev_ids, features, c.dialogue, t0=7, on_block=each_block, snapshot_every_s=25)
    assert np.array_equal(np.concatenate(blocks), np.stack(per_second), equal_nan=True)
    assert snaps and all(block_snaps[t] == snap for t, snap in snaps.items())
