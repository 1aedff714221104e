"""The simulator's faster paths give exactly the numbers of the plain ones, and a run stays free of the imports it
does not need (matplotlib, pandas: about a second of start-up between them)."""

import subprocess
import sys
import warnings

import numpy as np
from lifepalette.scoring.fields import HR_NA, SCL_NA, SCR_NA
from lifepalette.sim import naive
from lifepalette.sim.cohort import _add_rows


def test_add_rows_is_np_add_at_bit_for_bit():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 40, size=300)  # many repeats, in no order
    values = rng.standard_normal((300, 50)).astype(np.float32) * 1e3
    start = rng.standard_normal((40, 50)).astype(np.float32)
    expected, got = start.copy(), start.copy()
    np.add.at(expected, rows, values)
    _add_rows(got, rows, values)
    assert got.tobytes() == expected.tobytes()


def test_add_rows_of_nothing_changes_nothing():
    out = np.ones((3, 4), np.float32)
    _add_rows(out, np.array([], np.int64), np.empty((0, 4), np.float32))
    assert (out == 1).all()


def test_naive_arousal_is_the_nanmean_of_its_three_parts():
    rng = np.random.default_rng(4)
    hr = rng.integers(40, 140, size=(30, 200)).astype(np.uint8)
    scl = rng.integers(50, 2000, size=(30, 200)).astype(np.uint16)
    scr = rng.integers(0, 30, size=(30, 200)).astype(np.uint8)
    hr[rng.random(hr.shape) < 0.2] = HR_NA
    scl[rng.random(scl.shape) < 0.2] = SCL_NA
    scr[rng.random(scr.shape) < 0.2] = SCR_NA
    hr[:3], scl[:3], scr[:3] = HR_NA, SCL_NA, SCR_NA  # nothing at all: NaN, as nanmean gives
    parts = np.stack([(np.where(scl == SCL_NA, np.nan, scl / 100.0) - naive.SCL_REST_US) / naive.SCL_PER_AROUSAL_US,
                      (np.where(scr == SCR_NA, np.nan, scr.astype(float)) - naive.SCR_REST) / naive.SCR_PER_AROUSAL,
                      (np.where(hr == HR_NA, np.nan, hr.astype(float)) - naive.HR_REST) / naive.HR_PER_AROUSAL])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN slice
        expected = np.clip(naive.LEVEL_AT_REST + np.nanmean(parts, axis=0), 0.0, 1.0)
    got = naive.naive_arousal(hr, scl, scr)  # badge-typed: through the tables
    assert np.isnan(got[:3]).all()
    np.testing.assert_array_equal(got, expected)
    general = naive.naive_arousal(hr.astype(float), scl.astype(float), scr.astype(float))
    assert general.tobytes() == got.tobytes()


_RUN = """
import sys
from pathlib import Path
from lifepalette.sim.run import simulate, write_outputs
written = write_outputs(simulate(12, 6, seed=2, show_progress=False), Path(sys.argv[1]))
print(sorted(written))
print(sorted({m.split(".")[0] for m in sys.modules} & {"matplotlib", "pandas"}))
"""


def _run(out):
    res = subprocess.run([sys.executable, "-c", _RUN, str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_a_sim_run_writes_plots_and_parquet_without_matplotlib_or_pandas(tmp_path):
    written, loaded = _run(tmp_path)
    for name in ("features.parquet", "palette.png", "synchrony.png", "trajectories.png", "groups.png"):
        assert name in written and (tmp_path / name).stat().st_size > 0
    for name in ("palette.png", "synchrony.png", "trajectories.png", "groups.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert loaded == "[]"


def test_rounded_is_pythons_round_bit_for_bit():
    """The scores document's vectorised rounding gives round(float(v), n) exactly, ties and all, None for NaN/inf."""
    import math
    import struct

    from lifepalette.scoring.rounding import rounded

    rng = np.random.default_rng(5)
    for digits in (1, 3, 4):
        ties = rng.integers(-10**6, 10**6, 20_000) * 0.5 / 10**digits  # halves at the last digit: the hard cases
        values = np.concatenate([rng.standard_normal(20_000), rng.uniform(-400, 400, 20_000), ties,
                                 [0.0, -0.0, -1e-9, 2.675, 0.285, 1.0005, 1e300, -1e300, 5e-324, np.nan, np.inf,
                                  -np.inf]])
        expected = [round(float(v), digits) if math.isfinite(v) else None for v in values]
        got = rounded(values, digits)
        assert [None if v is None else struct.pack("<d", v) for v in got] == \
            [None if v is None else struct.pack("<d", v) for v in expected]


def test_a_long_run_shows_a_bar_for_every_phase_that_writes(tmp_path, capsys, monkeypatch):
    """Past 2 s into a run (here: the run 'started' 10 s ago), scoring, the feature file and the plots each draw
    their bar on stderr; nothing goes to stdout."""
    import time

    from lifepalette.sim import progress
    from lifepalette.sim.run import simulate, write_outputs

    monkeypatch.setattr(progress, "_RUN_START", time.monotonic() - 10.0)
    write_outputs(simulate(12, 6, seed=2, show_progress=True), tmp_path, show_progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    for label in ("scoring", "features", "plots"):
        assert f"{label} " in err and "100.0%" in err.split(label)[-1].split("\n")[0]


def test_naive_peer_in_slices_of_wearers_is_the_whole_cohort_at_once():
    """simulate() runs the naive scorer a slice of wearers at a time (NAIVE_CHUNK); each wearer's numbers stand
    alone, so the slices must give what one call over every wearer gives."""
    from lifepalette.sim import run

    n = 2 * run.NAIVE_CHUNK + 3  # two full slices and a short one
    result = run.simulate(n, 5, seed=1, palette_every_s=0, show_progress=False)
    f = result.features
    whole = naive.naive_arousal(f["hr_bpm"], f["scl"], f["scr_per_min"]).astype(np.float32)
    assert result.naive.tobytes() == whole.tobytes()


def _plain_fairness(demographic, truth, ours, naive_est, stats):
    """The fairness figures as np.where and np.nanmean give them on whole-cohort arrays."""
    from lifepalette.sim import evaluate

    mask = np.isfinite(ours) & np.isfinite(truth)
    err_ours = np.where(mask, np.abs(ours - truth), np.nan)
    err_naive = np.where(mask & np.isfinite(naive_est), np.abs(naive_est - truth), np.nan)
    out = {}
    for gi, name in enumerate(evaluate.DEMOGRAPHIC_GROUPS):
        sel = demographic == gi
        if sel.any():
            out[name] = [evaluate._r(float(np.nanmean(x[sel]))) if np.isfinite(x[sel]).any() else None
                         for x in (ours, err_ours, err_naive)]
    return out


def test_fairness_errors_are_np_where_and_nanmean_bit_for_bit():
    """The fairness figures build their error arrays in place; they must round to what the plain np.where/np.nanmean
    formulation gives, with gated (NaN) seconds, a non-finite truth and a group with no scored second at all."""
    from lifepalette.sim import evaluate

    rng = np.random.default_rng(8)
    for _ in range(10):
        w, t = 12, 400
        demographic = np.arange(w) % 3
        truth = rng.random((w, t)).astype(np.float32)
        ours, naive_est = (rng.random((w, t)).astype(np.float32) for _ in range(2))
        ours[rng.random((w, t)) < 0.3] = np.nan
        naive_est[rng.random((w, t)) < 0.2] = np.nan
        truth[rng.random((w, t)) < 0.02] = np.inf
        ours[demographic == 2] = np.nan  # a group with nothing scored
        stats = [{"level": float(v)} for v in rng.random(w)]
        got = evaluate.fairness(demographic, truth, ours, naive_est, stats)["groups"]
        expected = _plain_fairness(demographic, truth, ours, naive_est, stats)
        assert {g: [v["mean_arousal"], v["arousal_mae"], v["naive_arousal_mae"]] for g, v in got.items()} == expected
        assert got["low_eda"]["arousal_mae"] is None


def test_lowpass_rows_is_the_plain_recurrence_bit_for_bit():
    """The feature generator's low-pass runs on the transpose; it must give level = phi * level + (1 - phi) * x[t]
    column by column, exactly, in float32 and in float64."""
    from lifepalette.sim.features import _lowpass_rows

    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        x = rng.random((7, 300)).astype(dtype)
        phi = np.float32(np.exp(-1.0 / 8.0))
        expected = np.empty_like(x)
        level = x[:, 0].copy()
        for t in range(x.shape[1]):
            level = phi * level + (1 - phi) * x[:, t]
            expected[:, t] = level
        got = _lowpass_rows(x, 8.0)
        assert got.dtype == dtype and got.flags.c_contiguous and got.tobytes() == expected.tobytes()
