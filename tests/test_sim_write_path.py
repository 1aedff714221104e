"""The simulator's faster paths give exactly the numbers of the plain ones, and a run stays free of the imports it
does not need (matplotlib, pandas: about a second of start-up between them)."""

import subprocess
import sys
import warnings

import numpy as np
from lifepalette.scoring.fields import HR_NA, SCL_NA, SCR_NA
from lifepalette.sim import naive
from lifepalette.sim.cohort import _add_scaled_rows


def test_add_scaled_rows_is_np_add_at_bit_for_bit():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 40, size=300)  # many repeats, in no order
    weights = rng.random(300).astype(np.float32)
    source = rng.standard_normal((300, 50)).astype(np.float32) * 1e3
    start = rng.standard_normal((40, 50)).astype(np.float32)
    expected, got = start.copy(), start.copy()
    np.add.at(expected, rows, weights[:, None] * source)
    _add_scaled_rows(got, rows, weights, source)
    assert got.tobytes() == expected.tobytes()


def test_add_scaled_rows_of_nothing_changes_nothing():
    out = np.ones((3, 4), np.float32)
    _add_scaled_rows(out, np.array([], np.int64), np.empty(0, np.float32), np.empty((0, 4), np.float32))
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


def test_transposed_is_the_transpose_of_any_shape():
    from lifepalette.sim.cohort import TRANSPOSE_ROWS, transposed

    rng = np.random.default_rng(4)
    for shape in ((0, 5), (5, 0), (1, 1), (TRANSPOSE_ROWS, 3), (2 * TRANSPOSE_ROWS + 7, 13), (9, 700)):
        for dtype in (np.uint8, np.float32, np.float64):
            x = (rng.random(shape) * 200).astype(dtype)
            got = transposed(x)
            assert got.dtype == dtype and got.flags.c_contiguous and np.array_equal(got, x.T)


def _plain_ou(rng, n_series, seconds, tau_s):
    """ou_matrix as first written: each second computed from the last and written into its column."""
    phi = np.float32(np.exp(-1.0 / tau_s))
    scale = np.float32(np.sqrt(1.0 - phi * phi))
    out = np.empty((n_series, seconds), np.float32)
    x = rng.standard_normal(n_series).astype(np.float32)
    shocks = rng.standard_normal((seconds, n_series), dtype=np.float32) * scale
    for t in range(seconds):
        x = phi * x + shocks[t]
        out[:, t] = x
    return out


def test_ou_matrix_is_the_plain_recurrence_bit_for_bit():
    """ou_matrix runs the recurrence in place on the shocks and transposes at the end; the numbers (and what the
    generator draws next) must be those of the per-second form."""
    from lifepalette.sim.cohort import ou_matrix

    for n_series, seconds in ((7, 300), (300, 7), (3, 600), (1, 1)):
        ours, plain = np.random.default_rng(n_series), np.random.default_rng(n_series)
        got, expected = ou_matrix(ours, n_series, seconds, 12.0), _plain_ou(plain, n_series, seconds, 12.0)
        assert got.dtype == np.float32 and got.flags.c_contiguous and got.tobytes() == expected.tobytes()
        assert ours.random() == plain.random()


def _plain_feature_records(cohort):
    """feature_records as the plain expressions (a new array per operation), the reference for the in-place form."""
    from lifepalette.feature_table import NUMPY_TYPES
    from lifepalette.scoring.fields import CONSENT_COLOUR, CONSENT_PHYSIO, FIELDS, Q_EDA, Q_HR, Q_MOTION, Q_SKIN
    from lifepalette.sim import scenarios
    from lifepalette.sim.features import CONSENT_REVISION, RMSSD_NA, _lowpass_rows

    def param(name):
        return np.array([p[name] for p in cohort.params], dtype=np.float32)[:, None]

    rng = np.random.default_rng(cohort.seed + 1_000_003)
    a = cohort.arousal
    w, t = a.shape
    low_ppg = (cohort.demographic == 1)[:, None]
    hr = param("hr_rest") + param("hr_gain") * a
    hr += rng.standard_normal((w, t), dtype=np.float32) * np.where(low_ppg, 3.0, 1.5).astype(np.float32)
    rmssd = param("rmssd_rest") * (1 - 0.6 * a)
    rmssd += rng.standard_normal((w, t), dtype=np.float32) * 4.0
    scl_us = param("scl_rest_us") * (1 + param("scl_gain") * _lowpass_rows(a, 8.0))
    scl_us *= 1 + 0.01 * rng.standard_normal((w, t), dtype=np.float32)
    scr_p = (param("scr_rate_rest") + param("scr_rate_gain") * a) / 60.0
    counts = np.cumsum(rng.random((w, t), dtype=np.float32) < scr_p, axis=1, dtype=np.int32)
    window = counts.copy()
    window[:, 60:] -= counts[:, :-60]
    out = {"scr_per_min": np.minimum(window, 254)}
    starts = rng.random((w, t)) < scenarios.motion_rate(cohort.scenario, t)[None, :]
    motion = np.zeros((w, t), np.uint8)
    intensity = rng.integers(60, 255, size=(w, t)).astype(np.uint8)
    for k in range(4):
        keep = starts if k == 0 else starts & (rng.random((w, t)) < 0.7)
        np.maximum(motion[:, k:], np.where(keep[:, : t - k], intensity[:, : t - k], np.uint8(0)), out=motion[:, k:])
    out["motion"] = motion
    hr_valid = (rng.random((w, t), dtype=np.float32) >= np.where(low_ppg, 0.10, 0.03).astype(np.float32))
    hr_valid &= motion == 0
    out["hr_bpm"] = np.where(hr_valid, np.clip(np.rint(hr), 30, 250), HR_NA).astype(np.uint8)
    out["rmssd_ms"] = np.where(hr_valid, np.clip(np.rint(rmssd), 1, 254), RMSSD_NA).astype(np.uint8)
    eda_valid = (rng.random((w, t), dtype=np.float32) >= 0.02) & (scl_us >= 0.05)
    out["scl"] = np.clip(np.rint(scl_us * 100), 1, 0xFFFE).astype(np.uint16)
    skin = rng.random((w, t), dtype=np.float32) >= 0.003
    out["quality"] = (skin * Q_SKIN + (hr_valid & skin) * Q_HR + (eda_valid & skin) * Q_EDA
                      + (motion > 0) * Q_MOTION)
    shares_colour = (rng.random(w) < 0.8)[:, None]
    hue, chroma = rng.integers(0, 256, size=(w, 1)), rng.integers(80, 256, size=(w, 1))
    per_wearer = {"hue": np.where(shares_colour, hue, 0), "chroma": np.where(shares_colour, chroma, 0),
                  "colour_age": np.where(shares_colour, 0, 255),
                  "consent": (CONSENT_PHYSIO | CONSENT_REVISION << 4) + shares_colour * CONSENT_COLOUR,
                  "battery": np.full((w, 1), 80)}
    for name, column in per_wearer.items():
        out[name] = np.broadcast_to(column, (w, t))
    return {k: np.ascontiguousarray(out[k], dtype=NUMPY_TYPES[k]) for k in FIELDS}


def test_feature_records_are_the_plain_expressions_bit_for_bit():
    """feature_records works in place in a few cohort-sized arrays; every field must equal the plain expressions'
    (same draws in the same order, the same float operations), including cohorts shorter than the SCR window."""
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.features import feature_records

    for n, seconds, scenario, seed in ((40, 400, "healing", 3), (9, 30, "calm", 1), (25, 700, "confrontation", 8)):
        cohort = make_cohort(n, seconds, scenario, seed)
        got, expected = feature_records(cohort), _plain_feature_records(cohort)
        assert list(got) == list(expected)
        for name, values in expected.items():
            assert got[name].dtype == values.dtype and got[name].flags.c_contiguous, name
            assert got[name].tobytes() == values.tobytes(), name


def test_the_json_files_are_json_dumps_text(tmp_path):
    """write_outputs skips json's cycle check; the files must still be exactly json.dumps(doc, allow_nan=False)."""
    import json

    from lifepalette.sim.run import simulate, write_outputs

    result = simulate(12, 6, seed=2, show_progress=False)
    write_outputs(result, tmp_path, features=None, plots=False)
    for name, doc in (("scores.json", result.scores), ("report.json", result.report),
                      ("palette_timeline.json", result.palette_timeline)):
        assert (tmp_path / name).read_text(encoding="utf-8") == json.dumps(doc, allow_nan=False) + "\n"


def test_fairness_nanmean_is_np_nanmean_bit_for_bit(monkeypatch):
    """evaluate._nanmean takes np.nanmean's steps without its copy; unrounded, it must give np.nanmean's float exactly
    (float32 and float64, 1-D and 2-D, few and many NaNs), and None where nothing is finite."""
    import math

    from lifepalette.sim import evaluate

    monkeypatch.setattr(evaluate, "_r", lambda x: None if x is None or not math.isfinite(x) else x)
    rng = np.random.default_rng(12)
    for shape in ((1,), (7,), (1000,), (5, 333), (40, 3600)):
        for dtype in (np.float32, np.float64):
            for nan_fraction in (0.0, 0.3, 0.97):
                values = (rng.random(shape) * rng.choice([1e-3, 1.0, 300.0])).astype(dtype)
                values[rng.random(shape) < nan_fraction] = np.nan
                if np.isnan(values).all():
                    continue
                expected = float(np.nanmean(values))
                got = evaluate._nanmean(values.copy())
                assert got == expected and (got is not None), (shape, dtype, nan_fraction)
    assert evaluate._nanmean(np.full((3, 4), np.nan, np.float32)) is None
    assert evaluate._nanmean(np.array([np.inf, np.nan], np.float32)) is None
