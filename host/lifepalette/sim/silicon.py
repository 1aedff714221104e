"""The badge's silicon, simulated on the host side of the virtual badge (the badge heap has no room for it).

What the firmware cannot influence is modelled here, seeded per badge; what it can (the PPG LED current, the FIFO)
is modelled inside the badge's unix HAL from the optical words this module writes (firmware/hal/unix/board.py
STREAM FORMAT):

- MAX30102 / MAX30101 on its own clock: 50 Hz nominal with a crystal error drawn in +-2 %, a random phase. Each
  sample's optics: counts per LED step (0.2 mA) by site (wrist, finger) and LED (IR on the MAX30102, green on the
  MAX30101), the pulse's relative amplitude (perfusion) by site and LED, ambient light left after the chip's
  ambient cancellation, shot and electronic noise. The 18-bit range at 4096 nA full scale is applied in the badge.
- The ESP32's ADC1 at each attenuation (0, 2.5, 6, 11 dB; the badge uses 0 dB for EDA and 11 dB for the NTC): dead
  zone below the offset, a per-chip gain and offset, a compression above the linear range (950, 1250, 1750,
  2450 mV), and read_uv() as the esp32 port computes it from the
  eFuse reference: the nominal line corrected by the reference, leaving a per-chip residual of up to +-1.5 % gain
  and +-10 mV (11 dB) / +-5 mV (0 dB) offset.
- LIS3DH on its own oscillator: 25 Hz nominal (its ODR setting) off by up to +-2 %, a random phase; each measurement
  is the wearer's acceleration at that instant (the simulator's signal, interpolated).
- Ticks delivered late, in bursts of 2-6, about once every two seconds.

`chip_stream(...)` returns the stream bytes plus the truth (beat times, skin temperature, conductance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHIP_HZ = 50.0  # firmware/drivers/max30102.py CHIP_HZ
ACC_HZ = 25.0  # firmware/drivers/lis3dh.py ODR_HZ
CRYSTAL_MAX = 0.02
# (counts per LED step at 4096 nA full scale, pulse amplitude relative to DC) by (site, LED)
OPTICS = {
    ("wrist", "ir"): (600.0, 0.006),
    ("wrist", "green"): (220.0, 0.02),
    ("finger", "ir"): (8000.0, 0.02),
    ("finger", "green"): (2500.0, 0.04),
}
SITES = ("wrist", "finger")
AMBIENT_COUNTS = 256.0  # left after the chip's ambient light cancellation, indoor light
# ADC1 per attenuation: nominal offset (mV, the dead zone), mV per count, linear up to (mV), residual offset (mV)
ADC = {0: (75.0, 0.2686, 950.0, 5.0), 1: (78.0, 0.366, 1250.0, 6.0), 2: (105.0, 0.537, 1750.0, 8.0),
       3: (142.0, 0.806, 2450.0, 10.0)}
ATTN_0DB = 0
ATTN_11DB = 3
GAIN_RESIDUAL = 0.015
V_EXC_UV = 3_300_000
R_FIXED = 10_000.0
NTC_R25 = 10_000.0
NTC_B = 3950.0
EDA_V_SOURCE_UV = 500_000
EDA_R_SENSE = 100_000.0
BURSTS_PER_S = 0.5


def ntc_volts_uv(temp_c: np.ndarray) -> np.ndarray:
    """NTC divider output (10 k above a 10 k B3950 NTC) from the excitation."""
    r = NTC_R25 * np.exp(NTC_B * (1.0 / (np.asarray(temp_c, dtype=float) + 273.15) - 1.0 / 298.15))
    return V_EXC_UV * r / (R_FIXED + r)


def eda_volts_uv(us: np.ndarray) -> np.ndarray:
    """EDA front end (firmware/drivers/eda.py): V = V_S * R_skin / (R6 + R_skin)."""
    r_skin = 1e6 / np.maximum(np.asarray(us, dtype=float), 1e-3)
    return EDA_V_SOURCE_UV * r_skin / (EDA_R_SENSE + r_skin)


@dataclass
class Silicon:
    """One badge's chips (seeded): crystal error, ADC residuals; site and LED are how it is worn and built."""

    seed: int
    site: str = "wrist"
    led: str = "ir"
    bursts: bool = True
    crystal: float = field(init=False)
    phase_s: float = field(init=False)
    acc_crystal: float = field(init=False)
    acc_phase_s: float = field(init=False)
    adc_res: dict[int, tuple[float, float]] = field(init=False)

    def __post_init__(self) -> None:
        if (self.site, self.led) not in OPTICS:
            raise ValueError(f"unknown site/LED {self.site}/{self.led} (sites: {', '.join(SITES)}; LED ir or green)")
        rng = np.random.default_rng([self.seed, 0x51C0])
        self.crystal = float(rng.uniform(-CRYSTAL_MAX, CRYSTAL_MAX))
        self.phase_s = float(rng.uniform(0.0, 1.0)) / self.chip_hz
        self.adc_res = {a: (float(rng.uniform(-ADC[a][3], ADC[a][3])), float(rng.uniform(-GAIN_RESIDUAL,
                                                                                          GAIN_RESIDUAL)))
                        for a in ADC}
        acc_rng = np.random.default_rng([self.seed, 0xACC])  # its own stream: the draws above stay as they were
        self.acc_crystal = float(acc_rng.uniform(-CRYSTAL_MAX, CRYSTAL_MAX))
        self.acc_phase_s = float(acc_rng.uniform(0.0, 1.0)) / self.acc_hz

    @property
    def chip_hz(self) -> float:
        return CHIP_HZ * (1.0 + self.crystal)

    @property
    def acc_hz(self) -> float:
        return ACC_HZ * (1.0 + self.acc_crystal)

    # --- ESP32 ADC ------------------------------------------------------------------------------------------
    def read_uv(self, atten: int, volts_uv: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """What read_uv() returns on this chip for pin voltages (uV), mean of the driver's 4 conversions."""
        off, lsb, knee, _ = ADC[atten]
        res_off, res_gain = self.adc_res[atten]
        # this chip's true line: the calibrated line (nominal) off by the residuals, so read_uv = V + errors
        true_lsb = lsb / (1.0 + res_gain)
        true_off = off - res_off
        mv = np.asarray(volts_uv, dtype=float) / 1000.0
        over = np.maximum(mv - knee, 0.0)
        squeezed = mv - over + over / (1.0 + over / 2000.0)  # reads low above the linear range (esp32 curve)
        raw = (squeezed - true_off) / true_lsb
        if rng is not None:
            raw = raw + rng.standard_normal(raw.shape) * 1.0  # ~2 counts RMS per conversion, 4 averaged
        raw = np.clip(np.floor(raw), 0, 4095)
        return np.rint((raw * lsb + off) * 1000.0).astype(np.int64)

    def ntc_reading_c(self, temp_c: float) -> float:
        """What the uncalibrated firmware would report at `temp_c` (for calibration; no noise)."""
        from lifepalette.virtual_badge import firmware_module

        ntc = firmware_module("drivers.ntc")
        uv = int(self.read_uv(ATTN_11DB, ntc_volts_uv(np.array([temp_c])))[0])
        return ntc.counts_to_centi_c(ntc.uv_to_ratio_counts(uv)) / 100.0

    def calibration(self) -> dict[str, Any]:
        """What bring-up measures (lifepalette enroll --ntc-offset-c, --eda-cal): the NTC against a reference
        thermometer at 33 C, the EDA input with 1 M and 100 k across the electrodes."""
        ntc_offset = round(33.0 - self.ntc_reading_c(33.0), 2)
        v_true = eda_volts_uv(np.array([1.0, 10.0]))
        v_read = self.read_uv(ATTN_0DB, v_true).astype(float)
        gain = (v_read[0] - v_read[1]) / (v_true[0] - v_true[1])
        offset = v_read[0] - gain * v_true[0]
        return {"ntc_offset_c": ntc_offset, "eda_cal": [int(round(offset)), int(round(gain * 1e6))]}

    # --- PPG chip clock and optics --------------------------------------------------------------------------
    def ppg_times(self, start_s: int, seconds: int) -> np.ndarray:
        """Chip sample times (s, badge time) in (start_s, start_s + seconds]."""
        return _clock_times(self.chip_hz, self.phase_s, start_s, seconds)

    def acc_times(self, start_s: int, seconds: int) -> np.ndarray:
        """LIS3DH measurement times (s, badge time) in (start_s, start_s + seconds]."""
        return _clock_times(self.acc_hz, self.acc_phase_s, start_s, seconds)

    def optical_words(self, raw: np.ndarray, dc: float, rng: np.random.Generator) -> np.ndarray:
        """Physiology counts (around `dc`) -> the stream's optical words (Q4 counts per LED step | ambient)."""
        per_step, _ = OPTICS[(self.site, self.led)]
        rel = np.asarray(raw, dtype=float) / dc
        q = per_step * rel * (1.0 + rng.standard_normal(rel.size) * 2e-4)
        amb = int(round(AMBIENT_COUNTS / 64))  # steady light: its flicker is what the chip's cancellation removes
        return np.clip(np.rint(q * 16), 0, 0xFFFFFF).astype(np.int64) | (amb << 24)

    def delivery_plan(self, base: int, seconds: int, rng: np.random.Generator) -> np.ndarray:
        """Ticks handed over after each tick (1 normally; a burst of L: L-1 zeros then L)."""
        plan = np.ones((seconds, base), dtype=np.int64)
        if not self.bursts:
            return plan
        for s in range(seconds):
            if rng.random() < BURSTS_PER_S:
                length = int(rng.integers(2, 7))
                start = int(rng.integers(0, base - length + 1))
                plan[s, start:start + length - 1] = 0
                plan[s, start + length - 1] = length
        return plan


def _clock_times(fs: float, phase_s: float, start_s: int, seconds: int) -> np.ndarray:
    """Sample times (s) of a clock at fs Hz from phase_s, in (start_s, start_s + seconds]."""
    k0 = max(0, math.floor((start_s - phase_s) * fs) + 1)
    k1 = math.floor((start_s + seconds - phase_s) * fs)
    t = phase_s + np.arange(k0, k1 + 1) / fs
    return t[(t > start_s) & (t <= start_s + seconds)]


def _per_tick(times: np.ndarray, base: int, start_s: int, seconds: int) -> np.ndarray:
    """How many of these sample times end in each tick period (flat, seconds * base)."""
    tick = np.ceil(times * base).astype(np.int64) - 1 - start_s * base
    return np.bincount(np.clip(tick, 0, seconds * base - 1), minlength=seconds * base)


def _due_ticks(base: int, rate: int, seconds: int) -> np.ndarray:
    """The ticks app.sampler.Schedule fires a stream of `rate` per `base` on (acc += rate; fire and subtract at >= base)."""
    t = np.arange(seconds * base, dtype=np.int64)
    return ((t + 1) * rate // base - t * rate // base) > 0


class _Adc:
    uv = 0

    def read_uv(self) -> int:
        return self.uv


def driver_readings(cfg: dict[str, Any], name: str, uv: np.ndarray) -> np.ndarray:
    """What the firmware's EDA or NTC driver (name "eda" / "ntc"; its own code, run here in CPython) reports for
    these read_uv() values with the badge's calibration (cfg: a parsed config)."""
    from lifepalette.virtual_badge import firmware_module

    adc = _Adc()
    if name == "eda":
        dev = firmware_module("drivers.eda").EDA(adc, cal=cfg.get("eda_cal"))
    else:
        dev = firmware_module("drivers.ntc").NTC(adc, cal=cfg.get("ntc_offset_centi", 0))
    values, inverse = np.unique(np.asarray(uv, dtype=np.int64), return_inverse=True)
    out = []
    for v in values.tolist():
        adc.uv = v
        out.append(dev.read())
    return np.asarray(out, dtype=np.int64)[inverse].reshape(np.shape(uv))


def chip_stream(silicon: Silicon, scenario: str, seconds: int, seed: int, rates: dict[str, int],
                start_s: int = 0, params: dict[str, float] | None = None,
                driver_cfg: dict[str, Any] | None = None) -> tuple[bytes, dict[str, Any]]:
    """`seconds` of the badge's sample stream from badge time `start_s`, and the truth it was made from. With
    `driver_cfg` (the virtual badge's stand-in path) EDA and NTC carry the drivers' readings instead of microvolts."""
    from lifepalette.sim.physiology import DEFAULT_PARAMS, simulate_wearer

    base = rates["ppg"]
    times = silicon.ppg_times(start_s, seconds)
    _, perfusion = OPTICS[(silicon.site, silicon.led)]
    p = dict(params or {})
    dc = p.get("ppg_dc", DEFAULT_PARAMS["ppg_dc"])
    p["ppg_ac"] = perfusion * dc * p.get("ppg_ac", DEFAULT_PARAMS["ppg_ac"]) / DEFAULT_PARAMS["ppg_ac"]
    p["ppg_noise"] = 0.0  # the chip's own noise is added below
    signals, truth = simulate_wearer(scenario, seconds, seed=seed, rates=rates, params=p,
                                     ppg_times=times - start_s)
    rng = np.random.default_rng([silicon.seed, seed, start_s, 0xAD])
    words = silicon.optical_words(signals["ppg"], dc, rng)
    acc_times = silicon.acc_times(start_s, seconds)
    plan = silicon.delivery_plan(base, seconds, rng)
    # the simulator's EDA is in the kernel's default linear counts (25 uS over 4096): back to microsiemens
    eda_us = (np.asarray(signals["eda"], dtype=np.int64) * 25000 + 2048) // 4096 / 1000.0
    eda_uv = silicon.read_uv(ATTN_0DB, eda_volts_uv(eda_us[: seconds * rates["eda"]]), rng)
    temp_c = np.asarray(signals["temp"][: seconds * rates["temp"]], dtype=float) / 100.0
    ntc_uv = silicon.read_uv(ATTN_11DB, ntc_volts_uv(temp_c), rng)
    acc_at = acc_times - start_s  # the simulator's acceleration (sample i at i / rate) at the LIS3DH's instants
    grid = np.arange(seconds * rates["acc"]) / rates["acc"]
    raw_acc = np.asarray(signals["acc"][: seconds * rates["acc"]], dtype=float)
    acc = np.column_stack([np.interp(acc_at, grid, raw_acc[:, i]) for i in range(3)])
    acc = np.clip(np.rint(acc), -2000, 1999).astype("<i2")
    if driver_cfg is not None:
        eda_uv = driver_readings(driver_cfg, "eda", eda_uv)
        ntc_uv = driver_readings(driver_cfg, "ntc", ntc_uv)
    words_le = words.astype("<u4")
    eda_le = eda_uv.astype("<u4")
    ntc_le = ntc_uv.astype("<u4")
    due = [_due_ticks(base, rates[name], seconds) for name in ("eda", "temp")]
    counters = [0, 0]
    out = []
    first = 0
    first_acc = 0
    flat_n = _per_tick(times, base, start_s, seconds)
    flat_m = _per_tick(acc_times, base, start_s, seconds)
    flat_plan = plan.reshape(-1)
    for t in range(seconds * base):
        n = int(flat_n[t])
        m = int(flat_m[t])
        out.append(bytes((n, int(flat_plan[t]), m, 0)))
        if n:
            out.append(words_le[first:first + n].tobytes())
            first += n
        if m:
            out.append(acc[first_acc:first_acc + m].tobytes())
            first_acc += m
        if due[0][t]:
            out.append(eda_le[counters[0]].tobytes())
            counters[0] += 1
        if due[1][t]:
            out.append(ntc_le[counters[1]].tobytes())
            counters[1] += 1
    truth = dict(truth, beats=truth["beats"] + start_s, eda_us=eda_us, temp_c=temp_c, ppg_times=times,
                 acc_times=acc_times, crystal=silicon.crystal)
    return b"".join(out), truth
