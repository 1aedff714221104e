"""Parity: the streaming kernels in CPython, the real MicroPython binary and the numpy twin give bit-identical
telemetry for hypothesis-generated sessions (pulse rates, amplitudes, DC levels, noise, spikes, SCRs,
saturation, motion, sampling rates)."""

from __future__ import annotations

import numpy as np
from helpers.kernel_signals import MPY_RUNNER, parse_mpy, run_scalar, session, sessions, write_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifepalette.kernels import run_pipeline


def _twin(sig, pr, er, ar, inv):
    return run_pipeline(sig["ppg"], sig["eda"], sig["acc"], sig["temp"], ppg_rate=pr, eda_rate=er, acc_rate=ar,
                        ppg_invert=inv)[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_cpython_scalar_equals_numpy_twin(case):
    sig, pr, er, ar, inv = case
    scalar = run_scalar(sig, ppg_rate=pr, eda_rate=er, acc_rate=ar, ppg_invert=inv)
    np.testing.assert_array_equal(scalar, _twin(sig, pr, er, ar, inv))


def test_twin_batches_wearers_independently():
    cases = [session(s, 20, hr=50 + 30 * s, ppg_ac=500 * (s + 1), scrs=s) for s in range(3)]
    stacked = {k: np.stack([c[k] for c in cases]) for k in cases[0]}
    batch = run_pipeline(stacked["ppg"], stacked["eda"], stacked["acc"], stacked["temp"])
    for w, c in enumerate(cases):
        np.testing.assert_array_equal(batch[w], run_scalar(c))
    assert len({int(batch[w, -1, 0]) for w in range(3)}) == 3  # three different heart rates came out


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(sessions(), min_size=6, max_size=6))
def test_micropython_plain_and_viper_equal_cpython(mpy_session, tmp_path_factory, cases):
    """One MicroPython run per batch and emitter (process start-up would dominate otherwise)."""
    folder = tmp_path_factory.mktemp("parity")
    (folder / "runner.py").write_text(MPY_RUNNER)
    expected = [run_scalar(sig, ppg_rate=pr, eda_rate=er, acc_rate=ar, ppg_invert=inv)
                for sig, pr, er, ar, inv in cases]
    for viper in (False, True):
        path = folder / f"cases_{int(viper)}.txt"
        write_cases(path, cases, viper=viper)
        got = parse_mpy(mpy_session.run_file(folder / "runner.py", str(path), heapsize="2M"))
        assert len(got) == len(cases)
        for want, mp in zip(expected, got, strict=True):
            np.testing.assert_array_equal(mp, want)
