"""numpy twin of protocol/kernels/pipeline.py: the per-second telemetry fields for many wearers at once.

`run_pipeline` returns exactly what the badge's Pipeline.step() would have written, second by second. Sample
arrays are (wearers, seconds * rate) ints (acc: (wearers, seconds * rate, 3)); a 1-D array means one wearer.
Per-sample work is vectorised (EDA calibration and decimation, accelerometer total variation, temperature means,
the PPG filters across wearers); the slow state machines (beats, SCR hysteresis, the tonic EMA) run the badge's
own classes at beat or 4 Hz tick rate.
"""

from __future__ import annotations

import numpy as np

from lifepalette.kernels import ppg as ppg_twin
from protocol.kernels import eda as eda_k
from protocol.kernels import motion as motion_k
from protocol.kernels import pipeline as pipe_k
from protocol.kernels import temp as temp_k

FIELDS = 11


class _MotionSecond:
    """What telemetry_values reads from a MotionKernel, set second by second."""

    def __init__(self) -> None:
        self.index = -1
        self.art = False

    def artefact(self) -> bool:
        return self.art


class _TempSecond:
    def __init__(self) -> None:
        self.state = -1

    def on_skin(self) -> int:
        return self.state


def motion_seconds(acc: np.ndarray, rate: int, seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Motion index per second (-1 without samples) and the artefact flag, for one wearer's (n, 3) mg samples."""
    a = np.clip(np.asarray(acc, dtype=np.int64).reshape(-1, 3), -motion_k.AXIS_MAX, motion_k.AXIS_MAX)
    tv = np.zeros(seconds, dtype=np.int64)
    cnt = np.zeros(seconds, dtype=np.int64)
    if a.shape[0] > 1:
        step = np.abs(np.diff(a, axis=0)).sum(axis=1)  # counted at sample i >= 1
        sec = np.arange(1, a.shape[0]) // rate
        ok = sec < seconds
        np.add.at(tv, sec[ok], step[ok])
        np.add.at(cnt, sec[ok], 1)
    index = np.full(seconds, -1, dtype=np.int64)
    has = cnt > 0
    index[has] = np.minimum(((tv[has] * rate) // cnt[has]) >> 5, 254)
    flag = index >= motion_k.ARTEFACT_INDEX
    art = flag.copy()
    for lag in range(1, motion_k.ARTEFACT_HOLD_S + 1):
        art[lag:] |= flag[:-lag]
    return index, art


def temp_seconds(temp: np.ndarray, rate: int, seconds: int) -> np.ndarray:
    """on_skin() per second: -1 before any sample, else 1/0 for the last second's mean (held when no sample)."""
    t = np.clip(np.asarray(temp, dtype=np.int64), -4000, 8000)
    state = np.full(seconds, -1, dtype=np.int64)
    mean = -1
    seen = False
    for s in range(seconds):
        chunk = t[s * rate:(s + 1) * rate]
        if chunk.size:
            seen = True
            mean = int(chunk.sum()) // chunk.size
        if seen:
            state[s] = 1 if temp_k.SKIN_MIN <= mean <= temp_k.SKIN_MAX else 0
    return state


def eda_ticks(counts: np.ndarray, rate: int, cal: tuple[int, int, int] | None) -> np.ndarray:
    """Calibrated (nS) and decimated EDA, one value per kernel tick."""
    kernel = eda_k.EdaKernel(rate, cal)
    fs_ns, fsc, off = kernel.cal
    ns = ((np.asarray(counts, dtype=np.int64) - off) * fs_ns + (fsc >> 1)) // fsc
    d = kernel.decim
    m = ns.size // d
    return ns[:m * d].reshape(m, d).sum(axis=1) // d


def run_pipeline(ppg: np.ndarray, eda: np.ndarray, acc: np.ndarray, temp: np.ndarray | None = None, *,
                 ppg_rate: int = 64, eda_rate: int = 16, acc_rate: int = 16, temp_rate: int = 1,
                 eda_cal: tuple[int, int, int] | None = None, ppg_invert: bool = True,
                 beats: list | None = None) -> np.ndarray:
    """(wearers, seconds, 11) int64 records as Pipeline.step() fills them (unset fields 0).

    If `beats` is a list, it receives one ppg_twin.PpgBeats per wearer."""
    ppg2 = np.atleast_2d(np.asarray(ppg, dtype=np.int64))
    eda2 = np.atleast_2d(np.asarray(eda, dtype=np.int64))
    acc3 = np.asarray(acc, dtype=np.int64)
    if acc3.ndim == 2:
        acc3 = acc3[None]
    if temp is None:
        temp2 = np.zeros((ppg2.shape[0], 0), dtype=np.int64)
    else:
        temp2 = np.atleast_2d(np.asarray(temp, dtype=np.int64))
    wearers = ppg2.shape[0]
    seconds = ppg2.shape[1] // ppg_rate
    out = np.zeros((wearers, seconds, FIELDS), dtype=np.int64)
    ppgs = ppg_twin.analyse(ppg2[:, :seconds * ppg_rate], ppg_rate, ppg_invert)
    row = [0] * FIELDS
    for w in range(wearers):
        bp = ppgs[w]
        eda_kernel = eda_k.EdaKernel(eda_rate, eda_cal)
        ticks = eda_ticks(eda2[w, :seconds * eda_rate], eda_rate, eda_cal)
        sat = eda2[w, :seconds * eda_rate] >= eda_k.ADC_MAX
        mi, art = motion_seconds(acc3[w, :seconds * acc_rate], acc_rate, seconds)
        on_skin = temp_seconds(temp2[w, :seconds * temp_rate], temp_rate, seconds)
        mot = _MotionSecond()
        tmp = _TempSecond()
        decim = eda_kernel.decim
        t = 0
        for s in range(seconds):
            bp.advance(s)
            limit = ((s + 1) * eda_rate) // decim  # ticks completed by the end of this second
            while t < min(limit, ticks.size):
                eda_kernel._tick(int(ticks[t]))
                t += 1
            eda_kernel.sat = 1 if sat[s * eda_rate:(s + 1) * eda_rate].any() else 0
            mot.index = int(mi[s])
            mot.art = bool(art[s])
            tmp.state = int(on_skin[s])
            pipe_k.telemetry_values(bp, eda_kernel, mot, tmp, row)
            eda_kernel.tick()
            out[w, s] = row
        if beats is not None:
            beats.append(bp.found)
    return out
