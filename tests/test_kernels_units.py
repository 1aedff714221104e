"""Unit behaviour of the badge kernels: integer helpers, EDA calibration, quality bits, n/a values, reset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.kernel_signals import run_scalar, session
from hypothesis import given
from hypothesis import strategies as st

from protocol import records
from protocol.kernels import ppg
from protocol.kernels.eda import (
    DEFAULT_CAL,
    EdaKernel,
    centi_us_to_counts,
    counts_to_centi_us,
)
from protocol.kernels.fixed import isqrt, log2_floor, sqrt_mean_round
from protocol.kernels.pipeline import Q_EDA, Q_HR, Q_MOTION, Q_SKIN, Pipeline


@given(st.integers(0, 2**30 - 1))
def test_isqrt_is_floor_sqrt(v):
    assert isqrt(v) == math.isqrt(v)


@given(st.integers(0, 2**28 - 1), st.integers(1, 5000))
def test_sqrt_mean_round_rounds_half_up(total, n):
    exact = math.sqrt(total / n)
    got = sqrt_mean_round(total, n)
    assert abs(got - exact) <= 0.5 + 1e-9
    assert got == math.floor(exact + 0.5) or abs(exact + 0.5 - round(exact + 0.5)) < 1e-9


def test_integer_helpers_under_micropython(mpy):
    out = mpy.run("""
        from protocol.kernels.fixed import isqrt, log2_floor, sqrt_mean_round
        print(isqrt(0), isqrt(1), isqrt(1073741823), isqrt(99), log2_floor(96), sqrt_mean_round(3447971, 336))
    """)
    assert out.split() == ["0", "1", str(math.isqrt(2**30 - 1)), "9", "6", "101"]
    assert log2_floor(96) == 6


@given(st.integers(0, 2500))
def test_eda_calibration_inverse_round_trips(centi):
    counts = centi_us_to_counts(centi)
    assert 0 <= counts <= 4095
    assert abs(counts_to_centi_us(counts) - centi) <= 1  # one ADC count is 0.61 centi-uS


def test_eda_calibration_custom_front_end():
    cal = (10000, 4096, 100)  # 0-10 uS above an offset of 100 counts
    assert counts_to_centi_us(100, cal) == 0
    assert counts_to_centi_us(100 + 2048, cal) == 500
    assert centi_us_to_counts(500, cal) == 2148
    assert centi_us_to_counts(-5, DEFAULT_CAL) == 0 and centi_us_to_counts(10**6) == 4095


def test_unsupported_ppg_rate_is_a_clear_error():
    with pytest.raises(ValueError, match="ppg rate"):
        Pipeline(ppg_rate=60)
    assert set(ppg.RATES) >= {25, 50, 64}


def _ok_records(rows):
    for row in rows:
        values = [int(v) for v in row]
        values[8] = records.make_consent(physio=True)  # firmware's fields
        rec = records.pack_telemetry(values)
        assert records.check_record(0, rec), values


def test_clean_session_is_valid_and_packs_into_semantically_valid_records():
    rows = run_scalar(session(1, 40, hr=66, scrs=3))
    _ok_records(rows)
    late = rows[15:]
    assert (late[:, 10] & (Q_SKIN | Q_HR | Q_EDA) == (Q_SKIN | Q_HR | Q_EDA)).all()
    assert not (late[:, 10] & Q_MOTION).any()
    assert abs(int(np.median(late[:, 0])) - 66) <= 1
    assert abs(int(np.median(late[:, 2])) - 500) <= 10  # 5 uS tonic level in 0.01 uS


def test_first_seconds_report_not_available():
    rows = run_scalar(session(2, 12))
    assert rows[0, 0] == records.HR_NA and rows[0, 1] == records.RMSSD_NA
    assert rows[5, 3] == records.SCR_NA  # fewer than 10 s seen
    assert rows[11, 3] != records.SCR_NA


def test_off_skin_clears_skin_hr_and_eda_bits():
    cold = run_scalar(session(3, 30, temp_c=22.0))  # lying on a table
    assert not (cold[:, 10] & (Q_SKIN | Q_HR | Q_EDA)).any()
    dry = run_scalar(session(3, 30, eda_us=0.0, scrs=0, eda_noise=0.0))  # electrodes off the skin
    assert not (dry[5:, 10] & Q_EDA).any()
    # skin contact comes from temperature (and the badge's PPG DC), never from EDA: dry electrodes keep HR valid
    assert (dry[5:, 10] & Q_SKIN).all() and (dry[20:, 10] & Q_HR).any()


def test_motion_sets_the_artefact_bit_and_clears_hr_valid():
    rows = run_scalar(session(4, 40, motion_mg=900.0))  # brisk movement in the second half
    first, second = rows[12:19], rows[22:]
    assert not (first[:, 10] & Q_MOTION).any() and (first[:, 10] & Q_HR).all()
    assert (second[:, 10] & Q_MOTION).all() and not (second[:, 10] & Q_HR).any()
    assert second[:, 4].min() >= 32 > first[:, 4].max()


def test_eda_saturation_clears_eda_valid():
    rows = run_scalar(session(5, 30, saturate=True))
    assert not (rows[15, 10] & Q_EDA)  # the saturated second (samples 15 s .. 16 s)
    assert rows[25, 10] & Q_EDA


def test_reset_forgets_everything():
    sig = session(6, 30)
    p = Pipeline()
    before = run_scalar(sig, pipeline=p)
    p.reset()
    after = run_scalar(sig, pipeline=p)
    np.testing.assert_array_equal(before, after)


def test_scr_counting_threshold_and_rise_time():
    def count(amplitude_us, rise_s):
        k = EdaKernel(16)
        total = 0
        for s in range(40):
            for i in range(16):
                t = s + i / 16
                level = 3.0 + amplitude_us * min(max((t - 15) / rise_s, 0), 1) * (t < 15 + rise_s + 3)
                k.push(centi_us_to_counts(int(round(level * 100))))
            total += k.scr_now
            k.tick()
        return total

    assert count(0.2, 1.5) == 1  # a normal response
    assert count(0.015, 1.5) == 0  # below the 0.03 uS amplitude threshold
    assert count(0.5, 12.0) == 0  # too slow to be a response: tonic drift


def test_sample_counter_wraps_without_changing_results():
    """Counters run modulo 2**20 (4.5 h at 64 Hz): starting just before the wrap changes nothing."""
    sig = session(8, 60, hr=75)["ppg"]
    results = []
    for start in (0, ppg.M20 - 700):
        k = ppg.PpgKernel(64)
        k.st[ppg.S_N] = start
        per_second = []
        for s in range(60):
            for v in sig[s * 64:(s + 1) * 64]:
                k.push(int(v))
            k.tick()
            per_second.append((k.beats.hr_bpm(), k.beats.rmssd_ms(), k.beats.hr_valid(), k.beats.beats))
        results.append(per_second)
    assert results[0] == results[1]
    assert results[0][-1][0] == 75 and results[0][-1][3] > 60


@pytest.mark.parametrize("amplitude_mg", [150, 300])
def test_motion_index_is_the_same_for_the_same_movement_at_16_and_25_hz(amplitude_mg):
    """A wrist swinging at 1 Hz moves the same milli-g per second however often the LIS3DH samples it: the badge
    runs its accelerometer at 25 Hz, the simulator and older configs at 16 Hz. One unit is 32 mg of movement per
    second at any rate (total variation is a property of the movement once the rate resolves it)."""
    from lifepalette.kernels.pipeline import motion_seconds

    from protocol.kernels.motion import ARTEFACT_INDEX, MotionKernel

    def swing(rate: int, seconds: int) -> np.ndarray:
        t = np.arange(rate * seconds) / rate
        x = np.round(amplitude_mg * np.sin(2 * np.pi * t + 0.3)).astype(np.int64)
        return np.stack([x, np.zeros_like(x), np.full_like(x, 1000)], axis=1)

    per_rate = {}
    for rate in (16, 25):
        samples = swing(rate, 6)
        kernel = MotionKernel(rate)
        indices = []
        for s in range(6):
            for x, y, z in samples[s * rate:(s + 1) * rate]:
                kernel.push(int(x), int(y), int(z))
            kernel.tick()
            indices.append(kernel.index)
        twin, _ = motion_seconds(samples, rate, 6)
        assert twin.tolist() == indices  # the numpy twin agrees with the badge's kernel
        per_rate[rate] = indices[1:]  # the first second has one difference fewer
    expected = 4 * amplitude_mg // 32  # 4 A of travel per cycle
    for rate, indices in per_rate.items():
        assert all(abs(i - expected) <= max(2, expected // 10) for i in indices), (rate, indices, expected)
        # 300 mg at 1 Hz is brisk movement (1.2 g a second): the artefact flag must not depend on the rate
        assert all(i >= ARTEFACT_INDEX for i in indices) == (expected >= ARTEFACT_INDEX), (rate, indices)
