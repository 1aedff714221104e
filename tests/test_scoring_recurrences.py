"""The scorer's per-second recurrences (scoring/recurrences.py, compiled) against a plain-Python account of them.

`Reference` below follows the documented rules for one wearer, second by second, with Python floats and lists:
HR smoothed over valid seconds only; a baseline learnt from the median/MAD of exactly the first learn_s valid values
(kept as float32), then tracking only values within TRACK_WITHIN spreads; the arousal composite and its EMA; the
synchrony channels carried at most CARRY_S seconds; recovery after arousal peaks and the RMSSD EMA. The compiled kernel
must give its numbers whether the hub feeds one second at a time or a block, and start afresh at a new consent epoch.
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from lifepalette.scoring import CoveScorer
from lifepalette.scoring.baseline import RobustBaseline
from lifepalette.scoring.fields import (
    CONSENT_COLOUR,
    CONSENT_PHYSIO,
    FIELDS,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
)

LEARN_S = 30
DRIFT = 1.0 / 1800.0
MIN_SPREAD = [0.01, 0.5, 1.0, 2.0, 0.5]  # log SCL, SCR rate, HR, RMSSD, smoothed HR
TOL = dict(rel=1e-12, abs=1e-12)  # the same arithmetic; only the order of a sum may differ


def consent_byte(revision: int = 1) -> int:
    return CONSENT_PHYSIO | CONSENT_COLOUR | (revision << 4)


class BaselineReference:
    """One feature's robust baseline as documented in scoring/baseline.py."""

    def __init__(self, min_spread: float, learn_s: int = LEARN_S) -> None:
        self.min_spread, self.learn_s = min_spread, learn_s
        self.kept: list[float] = []
        self.ready, self.median, self.mad = False, 0.0, 0.0

    def spread(self) -> float:
        return max(self.mad * 1.4826, self.min_spread)

    def feed(self, v: float) -> float:
        if math.isnan(v):
            return math.nan
        if not self.ready:
            self.kept.append(float(np.float32(v)))
            if len(self.kept) == self.learn_s:
                self.median = statistics.median(self.kept)
                self.mad = statistics.median([abs(u - self.median) for u in self.kept])
                self.ready = True
        elif abs(v - self.median) < 2.0 * self.spread():
            step = DRIFT * self.spread()
            self.median += step * np.sign(v - self.median)
            self.mad += step * np.sign(abs(v - self.median) - self.mad) / 1.4826
        return (v - self.median) / self.spread() if self.ready else math.nan


class Reference:
    """One wearer's scoring state, second by second."""

    def __init__(self) -> None:
        self.baselines = [BaselineReference(m) for m in MIN_SPREAD]
        self.hr_smooth = math.nan
        self.held = [(math.nan, 10**9)] * 3  # synchrony channels: last z, its age
        self.arousal_ema = self.rec_score = self.rmssd_ema = math.nan
        self.in_peak, self.peak_t = False, 0

    def second(self, t: int, hr: float, rmssd: float, scl: float, scr: float) -> tuple[float, float]:
        """Values NaN where not valid; returns (composite z, synchrony value)."""
        if not math.isnan(hr):
            self.hr_smooth = hr if math.isnan(self.hr_smooth) else self.hr_smooth + 0.25 * (hr - self.hr_smooth)
        smooth = self.hr_smooth if not math.isnan(hr) else math.nan
        x = [math.log(scl) if not math.isnan(scl) else math.nan, scr, hr, rmssd, smooth]
        z = [b.feed(v) for b, v in zip(self.baselines, x, strict=True)]
        comp = mean_of_known([(min(max(z[f], -8.0), 8.0), w) for f, w in ((0, 0.4), (1, 0.3), (4, 0.3))])
        self.held = [(min(max(z[f], -50.0), 50.0), 0) if not math.isnan(z[f]) else (last, age + 1)
                     for f, (last, age) in enumerate(self.held)]
        carried = [(last if age <= 5 else math.nan, w) for (last, age), w in zip(self.held, (0.6, 0.0, 0.4), strict=True)]
        sync = mean_of_known(carried) if not math.isnan(comp) else math.nan
        if not math.isnan(comp):
            a = min(max(0.15 + 0.1 * comp, 0.0), 1.0)
            self.arousal_ema = a if math.isnan(self.arousal_ema) else 0.9 * self.arousal_ema + 0.1 * a
        if not self.in_peak and comp > 1.5:
            self.in_peak, self.peak_t = True, t
        if self.in_peak and (comp < 0.5 or t - self.peak_t > 300):
            score = 0.0 if t - self.peak_t > 300 else math.exp(-(t - self.peak_t) / 90.0)
            self.rec_score = score if math.isnan(self.rec_score) else 0.7 * self.rec_score + 0.3 * score
            self.in_peak = False
        if not math.isnan(rmssd):
            self.rmssd_ema = rmssd if math.isnan(self.rmssd_ema) else self.rmssd_ema + (rmssd - self.rmssd_ema) / 60.0
        return comp, sync

    def regulation(self) -> float:
        base = self.baselines[3]
        hrv = min(max(self.rmssd_ema / base.median, 0.0), 1.25) / 1.25 if base.ready else math.nan
        known = [v for v in (self.rec_score, hrv) if not math.isnan(v)]
        return sum(known) / len(known) if known else math.nan


def mean_of_known(pairs: list[tuple[float, float]]) -> float:
    known = [(v, w) for v, w in pairs if not math.isnan(v)]
    wsum = sum(w for _v, w in known)
    return sum(v * w for v, w in known) / wsum if wsum > 0 else math.nan


def session(seconds: int, seed: int) -> list[dict]:
    """One wearer's records: calm, an arousal episode that recovers, a long one that stays up (stuck after 300 s),
    with motion, missing channels and an HR gap longer than the carry."""
    rng = np.random.default_rng(seed)
    level = np.zeros(seconds)
    level[150:190] = 1.0  # recovers
    level[400:720] = 1.2  # stuck
    records = []
    for t in range(seconds):
        quality = Q_SKIN | Q_HR | Q_EDA
        if rng.random() < 0.08:
            quality |= Q_MOTION
        if rng.random() < 0.05 or 250 <= t < 259:  # (a 9 s HR gap: the HR channel's z is carried 5 s, not 9)
            quality &= ~Q_HR
        if rng.random() < 0.05:
            quality &= ~Q_EDA
        a = level[t] + 0.1 * rng.standard_normal()
        records.append({"consent": consent_byte(), "quality": quality,
                        "hr_bpm": float(round(70 + 25 * a + 2 * rng.standard_normal())),
                        "rmssd_ms": float(round(45 - 15 * a + 3 * rng.standard_normal())) if rng.random() > 0.05 else 255.0,
                        "scl": float(round(500 * (1 + 0.5 * a) * (1 + 0.01 * rng.standard_normal()))),
                        "scr_per_min": float(int(2 + 6 * max(a, 0)))})
    return records


def gated(rec: dict) -> tuple[float, float, float, float]:
    """(hr, rmssd, scl, scr) of a record, NaN where the channel is not valid for scoring."""
    q = int(rec["quality"])
    usable = not q & Q_MOTION and q & Q_SKIN
    hr_ok = usable and q & Q_HR
    eda_ok = usable and q & Q_EDA
    rmssd_ok = hr_ok and rec["rmssd_ms"] != 255
    nan = math.nan
    return (rec["hr_bpm"] if hr_ok else nan, rec["rmssd_ms"] if rmssd_ok else nan, rec["scl"] if eda_ok else nan,
            rec["scr_per_min"] if eda_ok else nan)


class Recording(CoveScorer):
    """A scorer that keeps what each synchrony step receives (the interface to the synchrony side): the regulation
    as of its second, and the synchrony series written up to it (the seconds since the step before)."""

    def _sync_step(self, t: int, regulation: np.ndarray) -> None:
        self.steps_seen.append((t, float(regulation[0])))
        for back in range(5):
            self.sync_seen[t - back] = float(self.ring[0, (t - back) % 256])
        super()._sync_step(t, regulation)


def scored(records: list[dict], block: bool) -> tuple[Recording, np.ndarray]:
    """Score one wearer's records (dev id 1, t = 0, 1, ...) second by second through `add` (the hub) or as one block
    through `add_seconds` (the simulator); returns the scorer and each second's composite z."""
    s = Recording(learn_s=LEARN_S)
    s.steps_seen, s.sync_seen = [], {}
    if block:
        matrix = np.array([[rec.get(name, np.nan) for name in FIELDS] for rec in records], dtype=np.float64)
        return s, s.add_seconds(0, [1], matrix[:, None, :])[:, 0]
    comp = []
    for t, rec in enumerate(records):
        s.add(1, t, rec)
        s._advance(t)
        comp.append(s.zcomp[0])
    return s, np.array(comp)


def expected(records: list[dict], t0: int = 0) -> tuple[Reference, list[float], list[float], dict[int, float]]:
    ref = Reference()
    comps, syncs, regulation = [], [], {}
    for i, rec in enumerate(records):
        comp, sync = ref.second(t0 + i, *gated(rec))
        comps.append(comp)
        syncs.append(sync)
        regulation[t0 + i] = ref.regulation()
    return ref, comps, syncs, regulation


def same(actual: float, wanted: float) -> bool:
    return (math.isnan(actual) and math.isnan(wanted)) or actual == pytest.approx(wanted, **TOL)


@pytest.mark.parametrize("block", [False, True], ids=["hub-second-by-second", "simulator-block"])
def test_every_recurrence_follows_the_documented_rules(block):
    records = session(800, seed=3)
    s, comp = scored(records, block)
    ref, comps, syncs, regulation = expected(records)

    # the session exercises what it should: a recovered peak and a stuck one, missing seconds, carried channels
    assert 0 < ref.rec_score < 1 and sum(math.isnan(c) for c in comps) > 40
    bad = [t for t in range(len(records)) if not same(comp[t], comps[t])]
    assert not bad, f"composite z differs at seconds {bad[:5]}"
    assert len(s.sync_seen) > 700 and sum(not math.isnan(v) for v in s.sync_seen.values()) > 600
    bad = [t for t, v in s.sync_seen.items() if not same(v, float(np.float32(syncs[t])))]  # (the ring is float32)
    assert not bad, f"synchrony series differs at seconds {bad[:5]}"
    assert len(s.steps_seen) > 100
    assert all(same(reg, regulation[t]) for t, reg in s.steps_seen)
    for name, want in (("hr_smooth", ref.hr_smooth), ("arousal_ema", ref.arousal_ema), ("rec_score", ref.rec_score),
                       ("rmssd_ema", ref.rmssd_ema)):
        assert same(float(getattr(s, name)[0]), want), name
    for f, b in enumerate(ref.baselines):
        assert s.baseline.ready[0, f] and same(s.baseline.median[0, f], b.median) and same(s.baseline.mad[0, f], b.mad)


def test_the_baseline_learns_exactly_the_first_valid_values_then_tracks_only_near_ones():
    rng = np.random.default_rng(5)
    values = 60 + 5 * rng.standard_normal((400, 2)) + rng.random((400, 2)) / 3  # not float32-exact: the buffer rounds
    values[rng.random(values.shape) < 0.2] = np.nan
    values[250:300, 0] = 200.0  # far outside: the baseline must not follow
    b = RobustBaseline(np.array([1.0]), learn_s=LEARN_S)
    b.grow(2)
    refs = [BaselineReference(1.0) for _ in range(2)]
    for row in values:
        b.update(row[:, None])
        for ref, v in zip(refs, row, strict=True):
            ref.feed(float(v))
    first = [float(np.float32(v)) for v in values[:, 0] if not np.isnan(v)][:LEARN_S]
    assert statistics.median(first) != pytest.approx(refs[0].median, abs=1e-9)  # tracking moved it since
    for w, ref in enumerate(refs):
        assert b.ready[w, 0] and b.median[w, 0] == pytest.approx(ref.median, **TOL)
        assert b.mad[w, 0] == pytest.approx(ref.mad, **TOL)
    z = b.z(np.array([[200.0], [60.0]]))
    assert z[0, 0] > 20 and abs(z[1, 0]) < 2


def test_learning_ends_at_exactly_learn_s_valid_values():
    b = RobustBaseline(np.array([0.1]), learn_s=4)
    b.grow(1)
    for v in (1.0, np.nan, 9.0, 3.0):
        b.update(np.array([[v]]))
    assert not b.ready[0, 0] and np.isnan(b.z(np.array([[3.0]]))[0, 0])
    b.update(np.array([[4.0]]))  # the 4th valid value: median of 1, 9, 3, 4 = 3.5, MAD of 2.5, 5.5, 0.5, 0.5 = 1.5
    assert b.ready[0, 0] and b.median[0, 0] == 3.5 and b.mad[0, 0] == 1.5
    with pytest.raises(ValueError, match="learn_s"):
        RobustBaseline(np.array([0.1]), learn_s=0)


def test_hr_smoothing_skips_invalid_seconds():
    hrs = [70.0, 80.0, 90.0, 60.0, 100.0, 75.0]
    valid = [True, True, False, False, True, True]
    s = CoveScorer(learn_s=LEARN_S)
    for t, (hr, ok) in enumerate(zip(hrs, valid, strict=True)):
        s.add(1, t, {"consent": consent_byte(), "quality": Q_SKIN | (Q_HR if ok else 0), "hr_bpm": hr, "scl": 500.0})
    s.flush()
    smooth = math.nan
    for hr, ok in zip(hrs, valid, strict=True):
        if ok:
            smooth = hr if math.isnan(smooth) else smooth + 0.25 * (hr - smooth)
    assert s.hr_smooth[0] == pytest.approx(smooth, **TOL) and s.hr_smooth[0] != pytest.approx(72.5 + 0.25 * 27.5)


@pytest.mark.parametrize("block", [False, True], ids=["hub-second-by-second", "simulator-block"])
def test_a_new_consent_epoch_starts_every_recurrence_afresh(block):
    first, second = session(300, seed=8), session(500, seed=9)
    for rec in second:
        rec["consent"] = consent_byte(revision=2)
    s, comp = scored(first + second, block)
    ref, comps, _syncs, regulation = expected(second, t0=len(first))  # as if the second epoch were all there was
    tail = comp[len(first):]
    assert all(same(a, b) for a, b in zip(tail, comps, strict=True))
    assert all(same(reg, regulation[t]) for t, reg in s.steps_seen if t >= len(first))
    for name in ("hr_smooth", "arousal_ema", "rec_score", "rmssd_ema"):
        assert same(float(getattr(s, name)[0]), getattr(ref, name)), name
    assert s.baseline.median[0, 2] == pytest.approx(ref.baselines[2].median, **TOL)


def test_a_recovery_after_a_peak_scores_by_its_time_to_recover():
    """Only HR: the composite z is the smoothed HR's z. A peak of known length recovers with exp(-seconds / 90)."""
    hr = [60.0, 62.0] * (LEARN_S // 2) + [61.0] * 20 + [80.0] * 12 + [61.0] * 40
    s = CoveScorer(learn_s=LEARN_S)
    comps = []
    for t, v in enumerate(hr):
        s.add(1, t, {"consent": consent_byte(), "quality": Q_SKIN | Q_HR, "hr_bpm": v, "rmssd_ms": 255.0})
        s._advance(t)
        comps.append(s.zcomp[0])
    start = next(t for t, c in enumerate(comps) if c > 1.5)
    end = next(t for t in range(start, len(comps)) if comps[t] < 0.5)
    assert 5 < end - start < 40
    assert s.rec_score[0] == pytest.approx(math.exp(-(end - start) / 90.0), **TOL)
    assert s.regulation()[0] == pytest.approx(s.rec_score[0], **TOL)  # no RMSSD: the recovery score alone


def test_scoring_compiles_one_kernel_for_the_hub_and_the_simulator():
    """The hub's single second and the simulator's block reach the same compiled specialisation (each extra one
    costs a compile after a checkout and a cache load every run)."""
    from lifepalette.scoring import recurrences

    records = session(60, seed=1)
    scored(records, block=False)
    scored(records, block=True)
    kernels = recurrences.compiled()
    assert len(kernels.score_seconds.signatures) == len(kernels.gate_seconds.signatures) == 1


def test_importing_the_scorer_does_not_import_numba():
    import subprocess
    import sys

    code = ("import sys, lifepalette.scoring, lifepalette.scoring.batch, lifepalette.hub.core; "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_the_gate_follows_consent_quality_and_na_codes_record_by_record():
    import itertools

    from lifepalette.scoring.fields import CONSENT_PAUSED, FIELD_INDEX, HR_NA, RMSSD_NA, SCL_NA, SCR_NA
    from lifepalette.scoring.scorer import _gate

    nan = math.nan
    grid = itertools.product(
        (nan, 0, CONSENT_PHYSIO, CONSENT_PHYSIO | CONSENT_PAUSED, consent_byte(3), CONSENT_COLOUR),  # consent
        (nan, 0, Q_SKIN, Q_SKIN | Q_HR, Q_SKIN | Q_EDA, Q_SKIN | Q_HR | Q_EDA, Q_SKIN | Q_HR | Q_EDA | Q_MOTION),
        (nan, HR_NA, 72.0), (nan, SCL_NA, 0.0, 480.0), (RMSSD_NA, 40.0), (SCR_NA, 3.0), (nan, 128.0), (0.0, 200.0))
    records = [dict(zip(("consent", "quality", "hr_bpm", "scl", "rmssd_ms", "scr_per_min", "hue", "chroma"), values,
                        strict=True)) for values in grid]
    x = np.full((len(FIELDS), 2, len(records) // 2), np.nan)
    for k, rec in enumerate(records):
        for name, v in rec.items():
            x[FIELD_INDEX[name], k % 2, k // 2] = v
    g = _gate(x)
    for k, rec in enumerate(records):
        at = (k % 2, k // 2)
        present = not math.isnan(rec["consent"])
        consent = int(rec["consent"]) if present else 0
        quality = 0 if math.isnan(rec["quality"]) else int(rec["quality"])
        physio = present and bool(consent & CONSENT_PHYSIO) and not consent & CONSENT_PAUSED
        motion = physio and bool(quality & Q_MOTION)
        usable = physio and bool(quality & Q_SKIN) and not motion
        hr_ok = usable and bool(quality & Q_HR) and rec["hr_bpm"] != HR_NA and not math.isnan(rec["hr_bpm"])
        eda_ok = usable and bool(quality & Q_EDA) and rec["scl"] != SCL_NA and rec["scl"] > 0
        shares = present and bool(consent & CONSENT_COLOUR) and not math.isnan(rec["hue"]) and rec["chroma"] > 0
        want = (present, consent, consent >> 4, physio, motion, physio and not motion and not (hr_ok or eda_ok), hr_ok,
                eda_ok)
        got = (g.present[at], g.consent[at], g.revision[at], g.physio[at], g.motion_art[at], g.poor_quality[at],
               g.hr_ok[at], g.eda_ok[at])
        assert got == want, rec
        features = [math.log(rec["scl"]) if eda_ok else nan,
                    rec["scr_per_min"] if eda_ok and rec["scr_per_min"] != SCR_NA else nan,
                    rec["hr_bpm"] if hr_ok else nan,
                    rec["rmssd_ms"] if hr_ok and rec["rmssd_ms"] != RMSSD_NA else nan]
        assert all(same(float(a), b) for a, b in zip(g.features[at], features, strict=True)), rec
        assert same(float(g.hue[at]), rec["hue"] * 360 / 256 if shares else nan), rec
        assert g.chroma[at] == (rec["chroma"] / 255 if shares else 0.0), rec
