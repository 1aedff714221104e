"""Validation of the badge kernels against NeuroKit2 and real recordings (issue 3 item 5).

Synthetic: NeuroKit2's ppg_simulate / eda_simulate (seeded). Real: heartpy, biosignalsnotebooks and pyhrv data
installed data-only by scripts/fetch-data.sh (`make data`), read by path. Kernels run at the badge's rates on
resampled signals through the numpy twin (bit-identical to the badge, see test_kernels_parity.py). The first
WARM seconds (filters and 8-beat windows filling) are left out of every comparison.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from helpers.kernel_signals import DATA, bsn_column, bsn_eda_us, heartpy_csv, need_data, session, to_counts_ppg
from lifepalette.kernels import run_pipeline
from lifepalette.kernels.resample import resample

from protocol.kernels.eda import EdaKernel, centi_us_to_counts
from protocol.kernels.fixed import sqrt_mean_round
from protocol.kernels.pipeline import Q_HR

WARM = 10
nk = pytest.importorskip("neurokit2")
warnings.filterwarnings("ignore", module="neurokit2")


def badge_ppg(x: np.ndarray, rate: int, bits: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(per-second records, beat times in s) for a BVP-polarity signal already at `rate`."""
    counts = to_counts_ppg(x, bits)
    seconds = counts.size // rate
    filler = session(0, seconds, ppg_rate=rate)
    beats: list = []
    rec = run_pipeline(counts[:seconds * rate], filler["eda"], filler["acc"], filler["temp"], ppg_rate=rate,
                       ppg_invert=False, beats=beats)[0]
    return rec, beats[0].times_s(rate)


@functools.cache
def nk_peaks(key: str) -> tuple[np.ndarray, float]:
    """NeuroKit2's Elgendi peaks (s) at the recording's own rate, cached for the session."""
    x, fs = _recording(key)
    cleaned = nk.ppg_clean(x, sampling_rate=fs)
    peaks = nk.ppg_findpeaks(cleaned, sampling_rate=fs)["PPG_Peaks"]
    return np.asarray(peaks) / fs, fs


@functools.cache
def _recording(key: str) -> tuple[np.ndarray, float]:
    if key.startswith("heartpy/"):
        return heartpy_csv(key.split("/")[1])
    x, fs, _ = bsn_column(key.split("/")[1])
    return x, fs


def hr_from_peaks(peaks: np.ndarray, lo: float, hi: float) -> float:
    p = peaks[(peaks >= lo) & (peaks < hi)]
    return 60.0 / float(np.mean(np.diff(p)))


def beat_f1(ref: np.ndarray, found: np.ndarray, tol: float = 0.1) -> float:
    used = np.zeros(found.size, dtype=bool)
    hits = 0
    for r in ref:
        d = np.abs(found - r)
        d[used] = np.inf
        if d.size and d.min() <= tol:
            used[int(np.argmin(d))] = True
            hits += 1
    return 2 * hits / (ref.size + found.size)


# ---------------------------------------------------------------- synthetic PPG
@functools.cache
def _sim_ppg(rate: int, hr: int, motion: float) -> tuple[float, float, float]:
    """(kernel mean HR, reference HR, fraction of seconds with valid HR) for one simulated minute.

    Clean = no motion, no powerline, no drift and no heart-rate variability, so the simulated rate is exactly
    `hr` (with variability, averaging per-second rates is biased against 60/mean(IBI), and NeuroKit2's own
    detector drops beats above ~150 bpm, so neither would be a fair reference). Noisy runs keep NeuroKit2's
    default variability and use its peaks on the 1 kHz signal as reference."""
    seconds = 70
    clean = motion == 0.0
    x = nk.ppg_simulate(duration=seconds, sampling_rate=1000, heart_rate=hr, random_state=hr + rate,
                        motion_amplitude=motion, powerline_amplitude=0.0, drift=0.0,
                        frequency_modulation=0.0 if clean else 0.2, ibi_randomness=0.0 if clean else 0.1)
    if clean:
        ref = float(hr)
    else:
        peaks = np.asarray(nk.ppg_findpeaks(nk.ppg_clean(x, sampling_rate=1000), sampling_rate=1000)["PPG_Peaks"])
        ref = hr_from_peaks(peaks / 1000, WARM - 8, seconds)  # the kernel's 8-beat window reaches back
    rec, _ = badge_ppg(resample(x, 1000, rate), rate)
    hr_k = rec[WARM:, 0]
    valid = (rec[WARM:, 10] & Q_HR) > 0
    return float(hr_k[hr_k > 0].mean()), ref, float(valid.mean())


@pytest.mark.parametrize("rate", [25, 50, 64])
def test_simulated_clean_ppg_hr_error_within_1_bpm(rate):
    errors = []
    for hr in (45, 70, 100, 130, 160):
        got, ref, valid = _sim_ppg(rate, hr, 0.0)
        errors.append(abs(got - ref))
        assert valid > 0.9, (rate, hr, valid)
    assert np.mean(errors) <= 1.0, errors
    assert max(errors) <= 2.0, errors


@pytest.mark.parametrize("motion", [0.2, 0.5])
def test_simulated_noisy_ppg_stays_close(motion):
    errors = [abs(got - ref) for got, ref, _ in (_sim_ppg(64, hr, motion) for hr in (60, 90, 120))]
    assert np.mean(errors) <= 3.0, errors


# ---------------------------------------------------------------- synthetic EDA
def _count_scrs(us: np.ndarray, rate: int) -> int:
    k = EdaKernel(rate)
    total = 0
    for s in range(us.size // rate):
        for v in us[s * rate:(s + 1) * rate]:
            k.push(centi_us_to_counts(int(round(v * 100))))
        total += k.scr_now
        k.tick()
    return total


@pytest.mark.parametrize("scr_number", [0, 2, 4, 8])
def test_simulated_scr_counts_track_the_simulation(scr_number):
    counts = []
    for seed in (1, 2, 3):
        x = nk.eda_simulate(duration=120, sampling_rate=16, scr_number=scr_number, noise=0.01, drift=-0.01,
                            random_state=seed)
        counts.append(_count_scrs(x + 2.0, 16))  # + 2 uS: the simulator's baseline drifts below zero
    assert abs(np.mean(counts) - scr_number) <= max(1.0, 0.25 * scr_number), counts


# ---------------------------------------------------------------- real PPG
CLEAN = ["heartpy/data.csv", "heartpy/data3.csv", "bsn/bvp_sample.txt"]


@pytest.mark.parametrize("rate", [25, 50, 64])
@pytest.mark.parametrize("key", CLEAN)
def test_real_ppg_hr_and_beats_match_neurokit(key, rate):
    need_data()
    x, fs = _recording(key)
    peaks, _ = nk_peaks(key)
    rec, beats = badge_ppg(resample(x, fs, rate), rate, bits=10 if key.startswith("heartpy") else 16)
    end = rec.shape[0]
    hr_k = rec[WARM:, 0]
    assert abs(float(hr_k[hr_k > 0].mean()) - hr_from_peaks(peaks, WARM - 8, end)) <= 2.0
    window = (3.0, end - 1.0)  # after the warm-up, and before the detector's 1-s horizon at the end
    ref = peaks[(peaks >= window[0]) & (peaks < window[1])]
    found = beats[(beats >= window[0] - 0.1) & (beats < window[1] + 0.1)]
    assert beat_f1(ref, found) >= 0.95
    assert ((rec[WARM:, 10] & Q_HR) > 0).mean() >= 0.9  # clean recordings are flagged valid


@pytest.mark.parametrize("rate", [50, 64])
def test_motion_artefact_recording_is_flagged_low_quality(rate):
    need_data()
    x, fs, _ = bsn_column("bvp_motion_artifact.txt")
    rec, _ = badge_ppg(resample(x, fs, rate), rate)
    invalid = (rec[WARM // 2:, 10] & Q_HR) == 0
    assert invalid.mean() > 0.5  # most one-second windows


def test_noisy_heartpy_recording_does_not_break_the_kernel():
    need_data()
    x, fs = heartpy_csv("data2.csv")  # contains dropouts to 0
    rec, _ = badge_ppg(resample(x, fs, 64), 64, bits=10)
    hr = rec[:, 0]
    assert ((hr == 0) | ((hr >= 25) & (hr <= 250))).all()


# ---------------------------------------------------------------- real EDA
@pytest.mark.parametrize("name", ["eda_slow_signal.txt", "eda_hot_surface.txt"])
def test_real_eda_scl_within_5_percent_of_neurokit_tonic(name):
    need_data()
    us, fs = bsn_eda_us(name)
    signals, _ = nk.eda_process(us, sampling_rate=int(fs))
    tonic = signals["EDA_Tonic"].to_numpy()
    e16 = resample(us, fs, 16)
    counts = np.array([centi_us_to_counts(int(round(v * 100))) for v in e16])
    seconds = counts.size // 16
    filler = session(0, seconds)
    rec = run_pipeline(filler["ppg"], counts[:seconds * 16], filler["acc"], filler["temp"])[0]
    lo = 5
    scl = rec[lo:, 2] / 100.0
    ref = tonic[int(lo * fs):int(seconds * fs)].mean()
    assert abs(scl.mean() - ref) <= 0.05 * ref, (scl.mean(), ref)


# ---------------------------------------------------------------- RMSSD exact on pyhrv's NN series
@pytest.mark.parametrize("name", ["SampleNNISeriesShort.npy", "SampleNNISeriesLong.npy"])
def test_pyhrv_nn_series_rmssd_exact_to_the_ms(name):
    need_data()
    nni = np.load(DATA / "pyhrv" / "files" / name).astype(np.int64)
    d = np.diff(nni)
    total = int((d * d).sum())
    assert total < 2**28  # sqrt_mean_round's documented domain
    reference = float(np.sqrt(np.mean(d.astype(np.float64) ** 2)))  # pyhrv.time_domain.rmssd's formula
    assert sqrt_mean_round(total, d.size) == int(np.floor(reference + 0.5))
    # and through the kernel's own interval path, window by window (32 differences, as on the badge)
    from protocol.kernels.ppg import BeatTracker

    bt = BeatTracker(64)
    for i, ibi in enumerate(nni[:200]):
        bt.ibi_ref = int(ibi)  # feed every interval as plausible: this checks the arithmetic, not the gate
        bt._interval(int(ibi) * 64 * 256)
        if i >= 32:
            window = np.diff(nni[i - 32:i + 1])
            assert bt.rmssd_ms() == int(np.floor(np.sqrt(np.mean(window.astype(np.float64) ** 2)) + 0.5))
