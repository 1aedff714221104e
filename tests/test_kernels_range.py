"""Range proof: run the badge kernels in CPython over the whole test corpus (synthetic and real) with every input,
every array element and every arithmetic result checked to stay inside MicroPython's small-int range
|v| < 2**30 (ESP32: anything larger becomes a heap bignum; the 64-bit unix port would not notice).

Mechanism: inputs are `Checked` ints (an int subclass whose every operator, including the reflected ones, checks
its result, so `a * b + c` checks the product and the sum), and the kernels' `array` constructor is replaced by a
list that checks and wraps whatever is stored. The largest magnitude seen is written to artifacts/.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers.kernel_signals import (
    bsn_column,
    bsn_eda_us,
    heartpy_csv,
    opensignals,
    run_scalar,
    session,
    sessions,
    to_counts_ppg,
)
from hypothesis import HealthCheck, given, settings
from lifepalette.kernels.resample import resample

from protocol.kernels import eda as eda_mod
from protocol.kernels import ppg as ppg_mod
from protocol.kernels.eda import centi_us_to_counts
from protocol.kernels.pipeline import Pipeline

LIMIT = 1 << 30


class Checked(int):
    peak = 0

    def __new__(cls, v):
        v = int(v)
        if v >= LIMIT or v < -LIMIT:
            raise OverflowError(f"intermediate {v} (2**{math.log2(abs(v)):.2f}) outside the small-int range")
        a = -v if v < 0 else v
        if a > Checked.peak:
            Checked.peak = a
        return int.__new__(cls, v)


def _binary(name):
    base = getattr(int, name)

    def op(self, other):
        r = base(int(self), int(other)) if isinstance(other, int) else NotImplemented
        return NotImplemented if r is NotImplemented else Checked(r)

    return op


for _name in ("add", "sub", "mul", "floordiv", "mod", "lshift", "rshift", "and", "or", "xor"):
    setattr(Checked, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(Checked, f"__r{_name}__", _binary(f"__r{_name}__"))
Checked.__neg__ = lambda self: Checked(-int(self))
Checked.__abs__ = lambda self: Checked(abs(int(self)))
Checked.__pos__ = lambda self: self


class CheckedArray(list):
    def __init__(self, typecode, init=()):
        super().__init__(Checked(v) for v in init)

    def __setitem__(self, i, v):
        super().__setitem__(i, Checked(v))


@pytest.fixture
def checked(monkeypatch):
    monkeypatch.setattr(ppg_mod, "array", CheckedArray)
    monkeypatch.setattr(eda_mod, "array", CheckedArray)
    Checked.peak = 0
    yield
    assert Checked.peak < LIMIT


def _nk_ppg(rate: int, hr: int, seed: int, seconds: int = 40) -> np.ndarray:
    import neurokit2 as nk

    x = nk.ppg_simulate(duration=seconds, sampling_rate=rate, heart_rate=hr, random_state=seed)
    return to_counts_ppg(x, 18)


def _sig_from_ppg(ppg: np.ndarray, rate: int, eda_us: np.ndarray | None = None, acc: np.ndarray | None = None):
    seconds = ppg.size // rate
    base = session(7, seconds, ppg_rate=rate)
    base["ppg"] = ppg[:seconds * rate]
    if eda_us is not None:
        base["eda"] = np.array([centi_us_to_counts(int(round(v * 100))) for v in eda_us[:seconds * 16]])
        base["eda"] = np.pad(base["eda"], (0, seconds * 16 - base["eda"].size), mode="edge")
    if acc is not None:
        a = acc[:seconds * 16]
        base["acc"] = np.pad(a, ((0, seconds * 16 - a.shape[0]), (0, 0)), mode="edge")
    return base


def _synthetic_corpus():
    for rate in (25, 50, 64):
        for hr, seed in ((45, 1), (100, 2), (160, 3)):
            yield f"nk_ppg_{rate}_{hr}", _sig_from_ppg(_nk_ppg(rate, hr, seed), rate), rate
    # worst cases: full-scale square wave (largest steps into the filters), spikes, saturation, motion, 18-bit
    t = np.arange(30 * 64)
    square = np.where((t // 24) % 2 == 0, 0, 0x3FFFF)
    yield "square_full_scale", _sig_from_ppg(square, 64), 64
    yield "spiky", session(11, 40, ppg_ac=60000, ppg_noise=3000, spikes=6, eda_us=25.5, scrs=8, eda_noise=0.5,
                           motion_mg=9000, saturate=True), 64
    yield "tiny", session(12, 30, ppg_dc=600, ppg_ac=3, ppg_noise=1, eda_us=0.02, scrs=0), 64
    from lifepalette.sim.physiology import badge_signals

    for scenario in ("calm", "dialogue", "confrontation", "healing"):
        yield f"sim_{scenario}", badge_signals(scenario, 90, seed=5), 64


def _real_corpus():
    for name in ("data.csv", "data2.csv", "data3.csv"):
        x, fs = heartpy_csv(name)
        yield f"heartpy_{name}", _sig_from_ppg(to_counts_ppg(resample(x, fs, 64), 10), 64), 64
    for name in ("bvp_sample.txt", "bvp_motion_artifact.txt"):
        x, fs, _ = bsn_column(name)
        yield f"bsn_{name}", _sig_from_ppg(to_counts_ppg(resample(x, fs, 64), 16), 64), 64
    for name in ("eda_slow_signal.txt", "eda_hot_surface.txt"):
        us, fs = bsn_eda_us(name)
        e = resample(us, fs, 16)
        ppg = session(3, e.size // 16 + 1)["ppg"]
        yield f"bsn_{name}", _sig_from_ppg(ppg, 64, eda_us=e), 64
    raw, fs, _ = opensignals("signal_sample_single_hub_cACC_2017_1_20.txt")
    mg = np.stack([resample(1000 * (2 * (raw[:, c] - 28000) / 10000 - 1), fs, 16) for c in (-3, -2, -1)], axis=1)
    ppg = session(4, mg.shape[0] // 16 + 1)["ppg"]
    yield "bsn_cacc", _sig_from_ppg(ppg, 64, acc=np.rint(mg).astype(np.int64)), 64


def _prove(corpus, artifacts_dir, label):
    peaks = {}
    for name, sig, rate in corpus:
        Checked.peak = 0
        inv = not name.startswith(("nk_", "heartpy", "bsn_bvp"))
        p = Pipeline(rate, 16, 16, 1, None, inv)
        rows = run_scalar(sig, ppg_rate=rate, ppg_invert=inv, pipeline=p, wrap=Checked)
        assert rows.shape[0] == sig["ppg"].size // rate
        peaks[name] = round(math.log2(max(Checked.peak, 1)), 2)
    (artifacts_dir / f"kernels_range_{label}.json").write_text(json.dumps(peaks, indent=1))
    assert max(peaks.values()) < 30
    return peaks


def test_checked_int_catches_an_overflowing_intermediate(checked):
    a = Checked(1 << 20)
    with pytest.raises(OverflowError):
        _ = a * (1 << 10)
    with pytest.raises(OverflowError):
        _ = 3 * a * a  # the product overflows even though it is an intermediate
    assert isinstance(5 + a, Checked) and isinstance(a >> 3, Checked)


def test_range_synthetic_corpus(checked, artifacts_dir):
    peaks = _prove(_synthetic_corpus(), artifacts_dir, "synthetic")
    assert peaks["square_full_scale"] > 20  # the worst case really drove the filters hard


def test_range_real_recordings(checked, artifacts_dir):
    _prove(_real_corpus(), artifacts_dir, "real")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(sessions())
def test_range_hypothesis_sessions(checked, case):
    """Extremes the corpus may not reach: full-scale DC and pulses, noise, spikes, saturation, 9 g motion."""
    sig, pr, er, ar, inv = case
    Checked.peak = 0
    rows = run_scalar(sig, ppg_rate=pr, eda_rate=er, acc_rate=ar, ppg_invert=inv,
                      pipeline=Pipeline(pr, er, ar, 1, None, inv), wrap=Checked)
    assert rows.shape[0] == sig["ppg"].size // pr and Checked.peak < LIMIT


def test_twin_filter_range_check_on_an_hour():
    """The numpy twin checks its filter accumulators too (many wearers: the whole twin corpus at once)."""
    from lifepalette.kernels.ppg import band_pass

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 0x3FFFF, size=(8, 64 * 60))
    y = band_pass(raw, 64, True, check=True)
    assert np.abs(y).max() < LIMIT
