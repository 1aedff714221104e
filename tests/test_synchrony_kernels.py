"""Synchrony's compiled kernels against plain numpy computed here: unit windows (mean fill, detrend, unit norm,
validity), the peak lagged correlation, gating, Fisher z and the pair's running sums; and the window ring's numbers
stay those of the series it keeps (regrouping, a long silence, forget, a new consent epoch)."""

import math

import numpy as np
import pytest
from lifepalette.scoring import CoveScorer
from lifepalette.scoring import synchrony as sy
from lifepalette.scoring.fields import FIELD_INDEX, FIELDS
from lifepalette.scoring.pairs import WINDOW_RING
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

TIME = np.arange(sy.WINDOW_S, dtype=float)


def detrended_unit(x: np.ndarray) -> np.ndarray:
    """A fully observed window's least-squares residual, scaled to unit norm (numpy's polyfit)."""
    slope, intercept = np.polyfit(TIME, x, 1)
    resid = x - (slope * TIME + intercept)
    return resid / np.linalg.norm(resid)


def unit_with_gaps(w: np.ndarray) -> np.ndarray:
    """A window's unit samples with NaN where missing: mean and slope over the observed samples (the slope against
    the full window's time spread), the residual on the observed samples, 0 elsewhere, unit norm."""
    tc = TIME - TIME.mean()
    obs = ~np.isnan(w)
    mean = w[obs].mean()
    slope = np.sum((w[obs] - mean) * tc[obs]) / np.sum(tc * tc)
    resid = np.where(obs, w - mean - slope * tc, 0.0)
    return resid / np.linalg.norm(resid)


def smooth_noise(rng, n: int, tau: float = 4.0) -> np.ndarray:
    phi = math.exp(-1 / tau)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.standard_normal()
    return x


def test_unit_window_of_a_full_window_is_the_unit_least_squares_residual():
    rng = np.random.default_rng(1)
    x = smooth_noise(rng, sy.WINDOW_S) + 0.3 * TIME + 5.0
    unit, valid = sy.unit_windows(x[None].astype(np.float32))
    expected = detrended_unit(x.astype(np.float32).astype(float))
    assert valid[0, 0] and np.abs(unit[0, 0] - expected).max() < 1e-9


def test_missing_samples_add_nothing_and_more_than_six_missing_make_a_window_invalid():
    rng = np.random.default_rng(2)
    x = (smooth_noise(rng, sy.WINDOW_S) + 0.2 * TIME).astype(np.float32)
    rows = np.repeat(x[None], 3, axis=0)
    missing = rng.permutation(sy.WINDOW_S)[:7]
    rows[1, missing[:6]] = np.nan  # 24 of 30 observed: still valid
    rows[2, missing] = np.nan  # 23 of 30: invalid
    unit, valid = sy.unit_windows(rows)
    assert valid[:, 0].tolist() == [True, True, False]
    # the window with 6 missing: mean and slope over the observed samples (the slope against the full window's time
    # spread), residual on the observed samples only, unit norm
    assert np.abs(unit[1, 0] - unit_with_gaps(rows[1].astype(float))).max() < 1e-9
    assert np.all(unit[1, 0][np.isnan(rows[1])] == 0.0)


def test_flat_and_barely_moving_windows_are_invalid():
    rng = np.random.default_rng(3)
    flat = np.full(sy.WINDOW_S, 2.5)
    line = 1.0 + 0.4 * TIME  # nothing left after the detrend
    tiny = 3.0 + 0.01 * rng.standard_normal(sy.WINDOW_S)  # SD 0.01 < MIN_WINDOW_SD
    moving = 3.0 + 0.2 * rng.standard_normal(sy.WINDOW_S)
    _unit, valid = sy.unit_windows(np.stack([flat, line, tiny, moving]).astype(np.float32))
    assert valid[:, 0].tolist() == [False, False, False, True]


def pearson_peak(a_centre: np.ndarray, b_span: np.ndarray) -> tuple[np.ndarray, int]:
    """r of a's centre window with each of b's N_LAGS windows in its SPAN_S seconds (np.corrcoef of the polyfit
    residuals), and the lag of the first maximum."""
    ca = detrended_unit(a_centre)
    rs = np.array([np.corrcoef(ca, detrended_unit(b_span[k:k + sy.WINDOW_S]))[0, 1] for k in range(sy.N_LAGS)])
    return rs, int(np.argmax(rs)) - sy.LAG_S


def run_step(series: np.ndarray, t: int, set_ends: list[int], state=None, invalid=()):
    """fill_windows + pair_step for pair (0, 1) at second t: b's lag windows ending at each of set_ends; `invalid`
    marks b's windows (by end second) invalid before the step."""
    from lifepalette.scoring import sync_kernels

    history = series.shape[1]
    ring = np.full((2, history), np.nan, np.float32)
    for s in range(t - history + 1, t + 1):
        ring[:, s % history] = series[:, s]
    wstat = np.zeros((2, WINDOW_RING + sy.N_LAGS, 3))
    wvalid = np.zeros((2, WINDOW_RING + sy.N_LAGS), bool)
    columns = history + sync_kernels.REPEAT_S
    xs, seen = np.zeros((2, columns), np.float32), np.zeros((2, columns), bool)
    ends = np.unique(np.concatenate([np.arange(e - sy.N_LAGS + 1, e + 1) for e in [*set_ends, t - sy.LAG_S]]))
    sy.fill_windows(ring, 2, ends, ends % WINDOW_RING, WINDOW_RING, wstat, wvalid, xs, seen)
    for end in invalid:
        wvalid[1, end % WINDOW_RING] = False
        if end % WINDOW_RING < sy.N_LAGS:
            wvalid[1, end % WINDOW_RING + WINDOW_RING] = False
    if state is None:
        state = np.zeros((1, 6))
        state[:, 5] = np.nan
    set_ends = np.array(set_ends, np.int64)
    starts = (set_ends - sy.N_LAGS + 1) % WINDOW_RING
    wsum, wn = np.zeros(2), np.zeros(2)
    sync_kernels.pair_step(xs, seen, wstat, wvalid, np.array([0]), np.array([1]), np.array([0]), t - sy.LAG_S,
                           (t - sy.LAG_S) % WINDOW_RING, set_ends, starts, sy._TC, sy.R_CLIP, 0.25,
                           state, wsum, wn, sync_kernels.PADDED_LAGS)
    return state, wsum, wn


@pytest.fixture(scope="module")
def follower():
    """b follows a 3 s later, with noise of its own, and with a few missing seconds in b's own-step span."""
    rng = np.random.default_rng(7)
    a = smooth_noise(rng, 400)
    b = np.roll(a, 3) + 0.5 * rng.standard_normal(400) + 0.01 * np.arange(400)
    return np.stack([a, b]).astype(np.float32)


def test_peak_lag_and_r_are_those_of_plain_pearson_correlations(follower):
    t, shift = 300, 45
    state, wsum, wn = run_step(follower, t, [t, t - shift])
    x = follower.astype(float)
    centre = x[0, t - sy.LAG_S - sy.WINDOW_S + 1:t - sy.LAG_S + 1]
    span = slice(t - sy.SPAN_S + 1, t + 1)
    rs, lag = pearson_peak(centre, x[1, span])
    sur_rs, _ = pearson_peak(centre, x[1, span.start - shift:span.stop - shift])
    assert lag == 3 and rs.max() > 0.7  # b follows a by 3 s
    assert state[0, 1] == 1 and state[0, 4] == lag and state[0, 3] == 1
    assert abs(state[0, 0] - np.arctanh(rs.max())) < 1e-9
    assert abs(state[0, 2] - np.arctanh(sur_rs.max())) < 1e-9
    excess = rs.max() - sur_rs.max()  # tanh(z) is r again
    assert abs(state[0, 5] - excess) < 1e-9  # the first counted window sets the recent excess
    assert wn.tolist() == [1.0, 1.0] and np.allclose(wsum, excess, atol=1e-9)
    # the next step's EMA: 0.75 of the old value, 0.25 of the new excess (alpha = 0.25 in run_step)
    again, _, _ = run_step(follower, t + 5, [t + 5, t + 5 - shift], state=state.copy())
    rs2, _ = pearson_peak(x[0, t - sy.LAG_S - sy.WINDOW_S + 6:t - sy.LAG_S + 6], x[1, span.start + 5:span.stop + 5])
    sur2, _ = pearson_peak(x[0, t - sy.LAG_S - sy.WINDOW_S + 6:t - sy.LAG_S + 6],
                           x[1, span.start + 5 - shift:span.stop + 5 - shift])
    sur_mean = (np.arctanh(sur_rs.max()) + np.arctanh(sur2.max())) / 2
    assert abs(again[0, 5] - (0.75 * excess + 0.25 * (rs2.max() - np.tanh(sur_mean)))) < 1e-9


@pytest.mark.parametrize("gaps", [{1: [-38, -20, -3]}, {0: [-30, -12, -6]}, {0: [-33], 1: [-1, -25]},
                                  {1: [-39, -30, -9, 0]}],
                         ids=["partner", "centre", "both", "partner at the span's ends"])
def test_missing_seconds_keep_r_exact(follower, gaps):
    t = 300
    gappy = follower.copy()
    for row, seconds in gaps.items():
        gappy[row, [t + s for s in seconds]] = np.nan
    state, _, _ = run_step(gappy, t, [t])
    x = gappy.astype(float)
    centre = unit_with_gaps(x[0, t - sy.LAG_S - sy.WINDOW_S + 1:t - sy.LAG_S + 1])
    start = t - sy.SPAN_S + 1
    rs = [centre @ unit_with_gaps(x[1, start + k:start + k + sy.WINDOW_S]) for k in range(sy.N_LAGS)]
    assert abs(state[0, 0] - np.arctanh(max(rs))) < 1e-9 and state[0, 4] == int(np.argmax(rs)) - sy.LAG_S


def test_a_window_counts_only_with_more_than_lag_s_valid_lags_and_a_valid_centre(follower):
    t = 300
    lag_ends = list(range(t - sy.N_LAGS + 1, t + 1))
    six_valid, _, _ = run_step(follower, t, [t], invalid=lag_ends[:5])
    five_valid, _, _ = run_step(follower, t, [t], invalid=lag_ends[:6])
    assert six_valid[0, 1] == 1 and five_valid[0, 1] == 0 and five_valid[0, 0] == 0
    no_centre = follower.copy()
    no_centre[0, t - sy.LAG_S - 7:t - sy.LAG_S] = np.nan  # 7 of the centre window's 30 seconds missing
    state, wsum, wn = run_step(no_centre, t, [t, t - 45])
    assert state[0, 1] == 0 and state[0, 3] == 0 and np.isnan(state[0, 5]) and wn.sum() == 0
    # the peak lag (+3) invalid: the peak is the best of the valid lags
    x = follower.astype(float)
    rs, _ = pearson_peak(x[0, t - sy.LAG_S - sy.WINDOW_S + 1:t - sy.LAG_S + 1], x[1, t - sy.SPAN_S + 1:t + 1])
    without, _, _ = run_step(follower, t, [t], invalid=[lag_ends[3 + sy.LAG_S]])
    others = np.delete(rs, 3 + sy.LAG_S)
    assert abs(without[0, 0] - np.arctanh(others.max())) < 1e-9


def test_equal_peaks_pick_the_first_lag_as_argmax_does():
    """A partner whose series repeats every 4 s has equal r at lags 4 s apart: the earliest lag is the peak."""
    rng = np.random.default_rng(11)
    t = 300
    pattern = rng.standard_normal(4)
    b = np.tile(pattern, 100)[:400]
    a = np.roll(b, 1) + 0.3 * rng.standard_normal(400)
    series = np.stack([a, b]).astype(np.float32)
    state, _, _ = run_step(series, t, [t])
    x = series.astype(float)
    rs, _ = pearson_peak(x[0, t - sy.LAG_S - sy.WINDOW_S + 1:t - sy.LAG_S + 1], x[1, t - sy.SPAN_S + 1:t + 1])
    first = int(np.flatnonzero(rs > rs.max() - 1e-9)[0])
    assert np.sum(rs > rs.max() - 1e-9) >= 2  # tied peaks
    assert state[0, 4] == first - sy.LAG_S and abs(state[0, 0] - np.arctanh(rs.max())) < 1e-9


def test_r_is_clipped_before_fisher_z():
    rng = np.random.default_rng(12)
    a = smooth_noise(rng, 400)
    series = np.stack([a, a]).astype(np.float32)  # b is a: r = 1 at lag 0
    state, _, _ = run_step(series, 300, [300])
    assert state[0, 4] == 0 and state[0, 0] == pytest.approx(np.arctanh(sy.R_CLIP), abs=1e-12)


def test_the_naive_peer_and_the_scorer_agree_on_a_pair():
    """The bench's naive peer (numpy peak picking over the whole series) and the scorer's compiled step count the
    same windows and reach the same mean Fisher z."""
    rng = np.random.default_rng(13)
    a = smooth_noise(rng, 240)
    b = np.roll(a, 2) + 0.6 * rng.standard_normal(240)
    scorer = CoveScorer()
    scorer._row(1), scorer._row(2)
    scorer.t0 = 0
    for t in range(240):  # the synchrony series written straight into the ring, then the step, as _chunk does
        scorer.ring[:2, t] = (a[t], b[t])
        scorer.processed_s = t + 1
        if (t + 1) % sy.STEP_S == 0 and t + 1 >= sy.SPAN_S:
            scorer._sync_step(t, np.full(scorer.capacity, np.nan))
    r, windows = sy.naive_pair_synchrony(scorer.ring[0, :240].astype(float), scorer.ring[1, :240].astype(float))
    st = scorer.pair_state[0]
    assert windows == st[1] > 30 and abs(np.tanh(st[0] / st[1]) - r) < 1e-6


@pytest.fixture(scope="module")
def cohort():
    c = make_cohort(14, 700, "confrontation", seed=5)
    x = np.full((c.seconds, c.n, len(FIELDS)), np.nan)
    for name, values in feature_records(c).items():
        x[:, :, FIELD_INDEX[name]] = values.T
    return c, x


def assert_ring_matches_series(scorer: CoveScorer) -> int:
    """Every valid window in the ring still has the numbers of the series it was computed from (recomputed here), and
    the windows' copy of the series still holds its samples (as the scorer's series has them, 0 where missing); the mirrored slots and repeated columns equal their originals. Returns the number of valid windows."""
    ends = scorer._wend[scorer._wend >= 0]
    n = len(scorer.devs)
    wstat = np.zeros_like(scorer._wstat)
    wvalid = np.zeros_like(scorer._wvalid)
    xs, seen = np.zeros_like(scorer._wseries), np.zeros_like(scorer._wseen)
    sy.fill_windows(scorer.ring, n, ends, ends % WINDOW_RING, WINDOW_RING, wstat, wvalid, xs, seen)
    slots = ends % WINDOW_RING
    kept = scorer._wvalid[:n, slots]
    assert np.array_equal(scorer._wstat[:n, slots][kept], wstat[:n, slots][kept])
    assert not (kept & ~wvalid[:n, slots]).any()
    history = scorer.ring.shape[1]
    for row, i in zip(*np.nonzero(kept), strict=True):
        columns = np.arange(ends[i] - sy.WINDOW_S + 1, ends[i] + 1) % history
        series = scorer.ring[row, columns].astype(float)
        assert np.array_equal(scorer._wseries[row, columns], np.where(np.isnan(series), 0.0, series))
        assert np.array_equal(scorer._wseen[row, columns], ~np.isnan(series))
    repeated = scorer._wseries.shape[1] - history
    assert np.array_equal(scorer._wseries[:, history:], scorer._wseries[:, :repeated])
    assert np.array_equal(scorer._wseen[:, history:], scorer._wseen[:, :repeated])
    mirror = np.arange(sy.N_LAGS)
    assert np.array_equal(scorer._wstat[:, mirror + WINDOW_RING], scorer._wstat[:, mirror])
    assert np.array_equal(scorer._wvalid[:, mirror + WINDOW_RING], scorer._wvalid[:, mirror])
    return int(kept.sum())


def test_windows_kept_in_the_ring_stay_those_of_the_series(cohort):
    """The ring keeps each window's numbers, and a step rebuilds its samples from the series: through regrouping,
    a new consent epoch, forget and a long silence (the series cleared) they must still match."""
    c, x = cohort
    consent = FIELD_INDEX["consent"]
    x = x.copy()
    x[250:, 2, consent] = (x[250:, 2, consent].astype(int) & 0x0F) | (5 << 4)  # a new consent epoch at 250
    scorer = CoveScorer(c.dialogue, learn_s=30)
    scorer.add_seconds(0, c.dev_ids, x[:200])
    checked = assert_ring_matches_series(scorer)
    scorer.set_groups({1: list(c.dev_ids[:7]), 2: list(c.dev_ids[7:])})
    scorer.add_seconds(200, c.dev_ids, x[200:300])
    checked += assert_ring_matches_series(scorer)
    scorer.forget(int(c.dev_ids[4]))
    scorer.add_seconds(300, c.dev_ids, x[300:400])
    checked += assert_ring_matches_series(scorer)
    for t in range(400, 440):  # a long silence: the hub's next record comes 300 s later
        scorer.add(int(c.dev_ids[0]), t + 300, {k: float(x[t, 0, FIELD_INDEX[k]]) for k in FIELDS
                                                if not np.isnan(x[t, 0, FIELD_INDEX[k]])})
    scorer.add_second(740, c.dev_ids, x[440])
    scorer.add_seconds(741, c.dev_ids, x[441:])
    checked += assert_ring_matches_series(scorer)
    assert checked > 1000 and scorer.pair_state[:, 3].sum() > 0


def test_metric_points_are_the_mean_of_the_known_parts_as_numpy_computes_it():
    """The compiled step point (sync_kernels.metric_points) against the numpy form it replaced, bit for bit: the
    synchrony part clipped to 0-1, averaged with regulation where known, NaN where neither is; last_sync keeps the
    previous value where a wearer had no pair this step."""
    from lifepalette.scoring import sync_kernels
    from lifepalette.scoring.pairs import SYNC_FOR_FULL_SCORE

    rng = np.random.default_rng(11)
    n = 400
    wearer_n = rng.integers(0, 4, n).astype(float)
    wearer_sum = rng.normal(0.0, 0.3, n) * wearer_n  # some far above SYNC_FOR_FULL_SCORE, some below 0
    regulation = np.where(rng.random(n) < 0.3, np.nan, rng.random(n))
    last_sync = rng.random(n)
    ring = np.full((n, 5), -1.0)

    metric_sync = np.where(wearer_n > 0, wearer_sum / np.maximum(wearer_n, 1), np.nan)
    expected_last = np.where(np.isnan(metric_sync), last_sync, metric_sync)
    parts = np.stack([np.clip(metric_sync / SYNC_FOR_FULL_SCORE, 0.0, 1.0), regulation])
    known = (~np.isnan(parts)).sum(axis=0)
    expected = np.where(known > 0, np.nansum(parts, axis=0) / np.maximum(known, 1), np.nan)

    sync_kernels.metric_points(wearer_sum, wearer_n, regulation, SYNC_FOR_FULL_SCORE, last_sync, ring, 3)
    assert np.isnan(expected).any() and (expected == 1.0).any() and (expected == 0.0).any()  # every branch is met
    np.testing.assert_array_equal(ring[:, 3].view(np.uint64), expected.view(np.uint64))
    np.testing.assert_array_equal(last_sync, expected_last)
    assert (ring[:, [0, 1, 2, 4]] == -1.0).all()  # only the step's column is written


@pytest.mark.parametrize("seconds", [1, 2, 60])
def test_last_present_is_the_running_index_at_the_block_end(seconds):
    """scorer._last_present (argmax from the end) gives what the running maximum (_last_index) ends with, -1 for a
    wearer absent all block."""
    from lifepalette.scoring.scorer import _last_index, _last_present

    rng = np.random.default_rng(seconds)
    present = rng.random((seconds, 300)) < 0.05
    present[:, :3] = False  # absent the whole block
    present[-1, 3] = True  # present at the very end
    np.testing.assert_array_equal(_last_present(present), _last_index(present)[-1:])
