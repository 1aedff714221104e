"""The simulator's badge-unit signals: shapes, units, reproducibility, and that they carry the latent truth."""

import numpy as np
import pytest
from lifepalette.sim import scenarios
from lifepalette.sim.physiology import badge_signals, simulate_wearer
from scipy.signal import butter, filtfilt, find_peaks


def test_shapes_units_and_ranges():
    s = badge_signals("healing", 120, seed=3)
    assert s["ppg"].shape == (120 * 64,) and s["eda"].shape == (120 * 16,)
    assert s["acc"].shape == (120 * 16, 3) and s["temp"].shape == (120,)
    assert all(np.issubdtype(v.dtype, np.integer) for v in s.values())
    assert 90_000 < np.median(s["ppg"]) < 110_000 and s["ppg"].max() < 1 << 18
    assert 0 <= s["eda"].min() and s["eda"].max() <= 4095
    assert 900 < np.median(np.linalg.norm(s["acc"], axis=1)) < 1100  # gravity in milli-g
    assert 3000 < np.median(s["temp"]) < 3600  # centi-degC


def test_rates_are_honoured():
    s = badge_signals("calm", 10, rates={"ppg": 50, "acc": 25, "temp": 4})
    assert s["ppg"].shape == (500,) and s["acc"].shape == (250, 3) and s["temp"].shape == (40,)


def test_seeded_reproducible_and_seed_sensitive():
    a, b, c = (badge_signals("dialogue", 60, seed=s) for s in (7, 7, 8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["ppg"], c["ppg"])


def test_pulse_rate_matches_truth_and_rises_with_arousal():
    sig, truth = simulate_wearer("healing", 600, seed=1)
    y = filtfilt(*butter(2, [0.5 / 32, 5 / 32], "band"), -sig["ppg"].astype(float))
    peaks, _ = find_peaks(y, distance=22, prominence=200)
    assert abs(peaks.size - truth["beats"].size) <= 0.02 * truth["beats"].size
    calm = badge_signals("calm", 300, seed=2)
    conf = badge_signals("confrontation", 300, seed=2)
    assert np.median(conf["eda"]) > np.median(calm["eda"])  # tonic SCL rises with arousal


def test_low_perfusion_params_shrink_the_pulse():
    band = butter(2, [0.5 / 32, 5 / 32], "band")
    strong = filtfilt(*band, badge_signals("calm", 60, seed=4)["ppg"].astype(float))
    weak = filtfilt(*band, badge_signals("calm", 60, seed=4, params={"ppg_ac": 300.0})["ppg"].astype(float))
    assert np.std(weak) < 0.5 * np.std(strong)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="unknown scenario"):
        badge_signals("party", 10)
    with pytest.raises(ValueError, match="unknown physiology params"):
        badge_signals("calm", 10, params={"hr": 1})
    assert set(scenarios.SCENARIO_NAMES) >= {"calm", "dialogue", "confrontation", "healing"}


def test_eda_counts_invert_through_the_badge_calibration():
    from protocol.kernels.eda import counts_to_centi_us

    sig, truth = simulate_wearer("calm", 120, seed=5, params={"scr_rate_rest": 0.0, "scr_rate_gain": 0.0})
    centi = np.array([counts_to_centi_us(int(c)) for c in sig["eda"][16 * 60:]])
    tonic = np.repeat(truth["scl_us"][60:], 16) * 100
    assert np.median(np.abs(centi - tonic)) < 3  # within ~0.03 uS: one ADC step is 0.006 uS


def test_signal_level_features_come_from_the_badge_kernels():
    from lifepalette.sim.cohort import make_cohort
    from lifepalette.sim.physiology import true_hr_per_second
    from lifepalette.sim.run import signal_level_features

    cohort = make_cohort(4, 120, "dialogue", seed=2)
    f = signal_level_features(cohort)
    hr = f["hr_bpm"][:, 20:].astype(float)
    hr[hr == 0] = np.nan
    assert np.isfinite(hr).mean() > 0.8
    expected = np.array([p["hr_rest"] for p in cohort.params])[:, None] + np.array(
        [p["hr_gain"] for p in cohort.params])[:, None] * cohort.arousal[:, 20:]
    assert np.nanmedian(np.abs(hr - expected)) < 5
    assert (f["scl"] > 0).all() and callable(true_hr_per_second)


def test_progress_bar_draws_on_request_only():
    import io

    from lifepalette.sim.progress import Progress

    buf = io.StringIO()
    bar = Progress(4, "scoring", enabled=True, stream=buf, show_after_s=0)  # the run's first 2 s stay quiet
    for _ in range(4):
        bar.update()
    bar.close()
    assert "100.0%" in buf.getvalue() and buf.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(4, "x", stream=quiet).update(4)  # not a terminal: nothing
    assert quiet.getvalue() == ""
