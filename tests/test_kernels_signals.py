"""Signal builders shared by the kernel tests (no tests here): badge-unit sessions from a few parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from protocol.kernels.eda import centi_us_to_counts
from protocol.kernels.pipeline import Pipeline


def session(seed: int, seconds: int, *, ppg_rate: int = 64, eda_rate: int = 16, acc_rate: int = 16,
            hr: float = 70.0, ppg_dc: int = 120000, ppg_ac: int = 1500, ppg_noise: float = 20.0,
            spikes: int = 0, eda_us: float = 5.0, scrs: int = 2, eda_noise: float = 0.005,
            motion_mg: float = 0.0, temp_c: float = 33.0, saturate: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(seconds * ppg_rate) / ppg_rate
    phase = (t * hr / 60.0 + rng.uniform()) % 1.0
    pulse = np.exp(-0.5 * ((phase - 0.2) / 0.07) ** 2) + 0.4 * np.exp(-0.5 * ((phase - 0.5) / 0.1) ** 2)
    ppg = ppg_dc - ppg_ac * pulse + rng.standard_normal(t.size) * ppg_noise + 0.01 * ppg_dc * np.sin(0.3 * t)
    for _ in range(spikes):
        i = int(rng.integers(0, t.size))
        ppg[i:i + 5] += rng.uniform(-1, 1) * ppg_dc
    te = np.arange(seconds * eda_rate) / eda_rate
    us = np.full(te.size, eda_us) + rng.standard_normal(te.size) * eda_noise
    for onset in rng.uniform(0, max(seconds - 5, 1), scrs):
        dt = np.clip(te - onset, 0, None)
        us += 0.3 * (np.exp(-dt / 3.0) - np.exp(-dt / 0.7)) * (te > onset)
    eda = np.array([centi_us_to_counts(int(round(v * 100))) for v in us], dtype=np.int64)
    if saturate:
        eda[eda.size // 2:eda.size // 2 + eda_rate] = 4095
    ta = np.arange(seconds * acc_rate) / acc_rate
    acc = np.tile([30, -40, 1000], (ta.size, 1)) + rng.standard_normal((ta.size, 3)) * 8
    acc += (motion_mg * np.sin(2 * np.pi * 2 * ta))[:, None] * (ta > seconds / 2)[:, None]
    temp = np.full(seconds, int(temp_c * 100)) + rng.integers(-5, 6, seconds)
    return {"ppg": np.clip(np.rint(ppg), 0, 0x3FFFF).astype(np.int64), "eda": eda,
            "acc": np.rint(acc).astype(np.int64), "temp": temp.astype(np.int64)}


def run_scalar(sig: dict[str, np.ndarray], *, ppg_rate: int = 64, eda_rate: int = 16, acc_rate: int = 16,
               ppg_invert: bool = True, pipeline: Pipeline | None = None, wrap=int) -> np.ndarray:
    """Push a session through the streaming Pipeline second by second; (seconds, 11) records."""
    p = pipeline or Pipeline(ppg_rate, eda_rate, acc_rate, 1, None, ppg_invert)
    seconds = sig["ppg"].size // ppg_rate
    rows = []
    for s in range(seconds):
        for v in sig["ppg"][s * ppg_rate:(s + 1) * ppg_rate]:
            p.push_ppg(wrap(int(v)))
        for v in sig["eda"][s * eda_rate:(s + 1) * eda_rate]:
            p.push_eda(wrap(int(v)))
        for a in sig["acc"][s * acc_rate:(s + 1) * acc_rate]:
            p.push_acc(wrap(int(a[0])), wrap(int(a[1])), wrap(int(a[2])))
        if s < sig["temp"].size:
            p.push_temp(wrap(int(sig["temp"][s])))
        out = [0] * 11
        p.step(out)
        rows.append([int(v) for v in out])
    return np.array(rows, dtype=np.int64).reshape(-1, 11)


@st.composite
def sessions(draw):
    ppg_rate = draw(st.sampled_from([25, 50, 64]))
    eda_rate = draw(st.sampled_from([8, 16]))
    acc_rate = draw(st.sampled_from([16, 25]))
    params = dict(
        seconds=draw(st.integers(6, 24)),
        hr=draw(st.floats(35, 200)),
        ppg_dc=draw(st.integers(500, 250000)),
        ppg_ac=draw(st.integers(0, 60000)),
        ppg_noise=draw(st.floats(0, 3000)),
        spikes=draw(st.integers(0, 3)),
        eda_us=draw(st.floats(0.0, 26.0)),
        scrs=draw(st.integers(0, 6)),
        eda_noise=draw(st.floats(0, 0.5)),
        motion_mg=draw(st.sampled_from([0.0, 50.0, 900.0, 9000.0])),
        temp_c=draw(st.floats(15, 45)),
        saturate=draw(st.booleans()),
    )
    params["ppg_ac"] = min(params["ppg_ac"], params["ppg_dc"])
    seed = draw(st.integers(0, 2**32 - 1))
    invert = draw(st.booleans())
    sig = session(seed, ppg_rate=ppg_rate, eda_rate=eda_rate, acc_rate=acc_rate, **params)
    return sig, ppg_rate, eda_rate, acc_rate, invert


MPY_RUNNER = """
import sys
from protocol.kernels.pipeline import Pipeline

def ints(line):
    return [int(v) for v in line.split()]

f = open(sys.argv[1])
while True:
    head = f.readline()
    if not head:
        break
    pr, er, ar, inv, sec, viper = ints(head)
    ppg = ints(f.readline())
    eda = ints(f.readline())
    acc = ints(f.readline())
    temp = ints(f.readline())
    p = Pipeline(pr, er, ar, 1, None, inv == 1)
    p.use_viper(viper == 1)
    out = [0] * 11
    for s in range(sec):
        for i in range(s * pr, (s + 1) * pr):
            p.push_ppg(ppg[i])
        for i in range(s * er, (s + 1) * er):
            p.push_eda(eda[i])
        for i in range(s * ar, (s + 1) * ar):
            p.push_acc(acc[3 * i], acc[3 * i + 1], acc[3 * i + 2])
        if s < len(temp):
            p.push_temp(temp[s])
        p.step(out)
        print(" ".join([str(v) for v in out]))
    print("END")
"""


def write_cases(path, cases: list[tuple[dict[str, np.ndarray], int, int, int, bool]], viper: bool) -> None:
    with open(path, "w") as f:
        for sig, pr, er, ar, inv in cases:
            sec = sig["ppg"].size // pr
            f.write(f"{pr} {er} {ar} {1 if inv else 0} {sec} {1 if viper else 0}\n")
            for key in ("ppg", "eda", "acc", "temp"):
                f.write(" ".join(str(int(v)) for v in sig[key].reshape(-1)) + "\n")


def parse_mpy(out: str) -> list[np.ndarray]:
    cases, rows = [], []
    for line in out.splitlines():
        if line == "END":
            cases.append(np.array(rows, dtype=np.int64).reshape(-1, 11))
            rows = []
        elif line.strip():
            rows.append([int(v) for v in line.split()])
    return cases


# ---- real recordings from PyPI packages installed data-only by scripts/fetch-data.sh (read by path) ----
DATA = Path(__file__).resolve().parents[1] / ".data" / "pkgs"
BSN = DATA / "biosignalsnotebooks" / "notebook_files" / "osf_files" / "signal_samples"


def need_data() -> None:
    if not (DATA / ".complete-v1").exists():
        pytest.skip("real recordings not installed: run `make data`")


def heartpy_csv(name: str) -> tuple[np.ndarray, float]:
    """HeartPy's example PPG: (samples, sampling rate) — data.csv 100 Hz, data2.csv ms timer, data3.csv datetime."""
    need_data()
    path = DATA / "heartpy" / "data" / name
    if name == "data.csv":
        return np.loadtxt(path), 100.0
    lines = path.read_text().splitlines()[1:]
    cols = [line.split(",") for line in lines if line.strip()]
    x = np.array([float(c[1]) for c in cols])
    if name == "data2.csv":
        timer = np.array([float(c[0]) for c in cols])
        return x, 1000.0 * (timer.size - 1) / (timer[-1] - timer[0])
    import datetime as dt

    def parse(s: str) -> float:
        fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in s else "%Y-%m-%d %H:%M:%S"
        return dt.datetime.strptime(s, fmt).timestamp()

    first, last = parse(cols[0][0]), parse(cols[-1][0])
    return x, (len(cols) - 1) / (last - first)


def opensignals(name: str) -> tuple[np.ndarray, float, dict]:
    """A biosignalsnotebooks OpenSignals .txt sample: (last column(s) raw ADC, rate, header)."""
    need_data()
    import json

    with open(BSN / name) as f:
        f.readline()
        header = next(iter(json.loads(f.readline()[2:]).values()))
        f.readline()
        raw = np.loadtxt(f, dtype=np.int64, ndmin=2)
    return raw, float(header["sampling rate"]), header


def bsn_column(name: str) -> tuple[np.ndarray, float, dict]:
    raw, fs, header = opensignals(name)
    return raw[:, -1].astype(np.float64), fs, header


def bsn_eda_us(name: str) -> tuple[np.ndarray, float]:
    """EDA in microsiemens with PLUX's transfer functions."""
    x, fs, header = bsn_column(name)
    bits = int(header["resolution"][-1])
    if header["device"].startswith("bitalino"):
        return x / 2**bits * 3.3 / 0.132, fs
    return x / 2**bits * 3.0 / 0.12, fs


def to_counts_ppg(x: np.ndarray, bits: int = 16) -> np.ndarray:
    """A recording's PPG as unsigned optical counts spanning `bits` (the kernel is scale-free)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    span = hi - lo if hi > lo else 1.0
    return np.rint((x - lo) / span * (2**bits - 1)).astype(np.int64)
