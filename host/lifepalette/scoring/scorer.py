"""CoveScorer: the hub's incremental scoring of 1 Hz telemetry (docs/ARCHITECTURE.md, "Scoring").

Records are buffered per second and processed in order, vectorised over wearers: gating, the robust per-wearer
baseline, arousal and regulation each cost a few numpy operations per second for the whole cove. Synchrony is updated
every STEP_S seconds for the newly completed window only (running Fisher-z sums per pair), so `compute()` never
re-reads history. Records for a second that has already been processed (more than `grace_s` late) are counted in
`late_records` and not scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from lifepalette.scoring import synchrony as sy
from lifepalette.scoring.baseline import RobustBaseline
from lifepalette.scoring.fields import (
    CONSENT_COLOUR,
    CONSENT_PAUSED,
    CONSENT_PHYSIO,
    FIELD_INDEX,
    FIELDS,
    HR_NA,
    Q_EDA,
    Q_HR,
    Q_MOTION,
    Q_SKIN,
    RMSSD_NA,
    SCL_NA,
    SCR_NA,
)
from lifepalette.scoring.pairs import PairSynchrony
from lifepalette.scoring.report import ScoreReport
from lifepalette.scoring.wearers import FORGET, HISTORY_S, METRIC_STEPS, NEW_EPOCH, WearerArrays

BASELINE_LEARN_S = 180
# Baseline features: log SCL (scale-free across people whose SCL differs tenfold), SCR rate, HR, RMSSD.
# Arousal reads HR smoothed over a few seconds (B_HR_SMOOTH, with its own baseline). Per-second HR noise differs
# between people (low PPG amplitude doubles it); a baseline spread inflated by noise shrinks every z, so the noisier
# group read calmer than they were at high arousal (confrontation scenario, 120 wearers, seeds 0-9: between-group
# error gap median 0.024, max 0.034 before; 0.013 and 0.022 with smoothing). Synchrony keeps the raw HR: it needs
# second-to-second timing.
B_LOGSCL, B_SCR, B_HR, B_RMSSD, B_HR_SMOOTH = range(5)
MIN_SPREAD = np.array([0.01, 0.5, 1.0, 2.0, 0.5])
HR_SMOOTH_ALPHA = 0.25  # EMA weight per second (~3.5 s): averages sensor noise, keeps arousal's ~12 s fluctuations
AROUSAL_FEATURES = [B_LOGSCL, B_SCR, B_HR_SMOOTH]
AROUSAL_WEIGHTS = np.array([0.4, 0.3, 0.3])  # SCL, SCR rate, HR
# Synchrony uses SCL and HR only: the badge's SCR rate is a 60 s count, too smooth for 30 s windows (it only adds
# noise there; measured on simulated cohorts, Spearman vs true coupling 0.70 with it, 0.86 without).
SYNC_WEIGHTS = np.array([0.6, 0.0, 0.4])
SYNC_Z_CLIP = 50.0
CARRY_S = 5
Z_CLIP = 8.0  # arousal spans many baseline SDs (calm to confrontation); clip only wild outliers
# Display mapping of the composite z to 0..1: the baseline (z = 0) sits low, +1 SD of baseline wobble adds AROUSAL_PER_Z.
AROUSAL_AT_BASELINE = 0.15
AROUSAL_PER_Z = 0.1
PEAK_Z, RECOVERED_Z, RECOVERY_TAU_S, STUCK_S = 1.5, 0.5, 90.0, 300
IGNORED_FIELDS = frozenset({"reserved"})
# seconds x wearer rows per chunk of the batch path: a 60 s block of 1,000 wearers is one chunk, 10,000 wearers go in
# 8 s chunks (a chunk's float temporaries take ~270 bytes per cell: ~35 MB)
CHUNK_CELLS = 2**17

Groups = Mapping[int, Iterable[int]] | Iterable[Iterable[int]] | None


def normalise_groups(groups: Groups) -> dict[int, list[int]] | None:
    """{"group id": [dev ids]} from a mapping or a list of lists (ids 1..n). None = everyone in one group."""
    if groups is None:
        return None
    items = groups.items() if isinstance(groups, Mapping) else enumerate(groups, start=1)
    out: dict[int, list[int]] = {}
    seen: set[int] = set()
    for gid, members in items:
        devs = [int(d) for d in members]
        if len(set(devs)) != len(devs) or seen & set(devs):
            raise ValueError(f"group {gid}: a device appears twice")
        seen |= set(devs)
        out[int(gid)] = devs
    return out


def _fill_defaults(vec: np.ndarray) -> np.ndarray:
    """Records without a consent or quality byte (offline feature files, e.g. {"device", "t", "hr_bpm", "scl"})
    count as consented to physiology and colour, and as valid for every physiology value they carry."""
    col = FIELD_INDEX
    if np.isnan(vec[col["consent"]]):
        vec[col["consent"]] = CONSENT_PHYSIO | CONSENT_COLOUR
    if np.isnan(vec[col["quality"]]):
        hr, scl = vec[col["hr_bpm"]], vec[col["scl"]]
        has_hr = not np.isnan(hr) and hr != HR_NA
        has_eda = not np.isnan(scl) and scl != SCL_NA
        vec[col["quality"]] = Q_SKIN | (Q_HR if has_hr else 0) | (Q_EDA if has_eda else 0)
    return vec


def _clip(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """np.clip's numbers (NaN stays NaN) without its Python wrapper: the per-second step calls it often."""
    return np.minimum(np.maximum(values, low), high)


def _weighted_nanmean(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the weighted mean of the non-NaN values (NaN where none has weight); matrix-vector products."""
    have = ~np.isnan(z)
    wsum = have @ weights
    total = np.where(have, z, 0.0) @ weights
    return np.where(wsum > 0, total / np.where(wsum > 0, wsum, 1.0), np.nan)


class Gated(NamedTuple):
    """What a second's records allow, record by record (no scorer state): who is present, consents, is usable, which
    channels are valid, the baseline features before HR smoothing and the shared colour. Arrays over wearers, or
    (seconds, wearers)."""

    present: np.ndarray
    consent: np.ndarray
    revision: np.ndarray  # consent revision (float, as the scorer keeps it)
    physio: np.ndarray
    motion_art: np.ndarray
    poor_quality: np.ndarray  # consented, no motion, but neither HR nor EDA valid
    hr_ok: np.ndarray
    eda_ok: np.ndarray
    features: np.ndarray  # (..., B_HR_SMOOTH): log SCL, SCR rate, HR, RMSSD; NaN where not valid
    hue: np.ndarray  # degrees where the colour is shared, NaN where it is not (the scorer keeps it where absent)
    chroma: np.ndarray  # 0-1 where shared, 0 where not


def _gate(x: np.ndarray) -> Gated:
    """The per-record part of a second's step, for field-major (FIELDS, seconds, wearers) records: it reads no
    state, so it runs for a block of seconds at once (the same numbers, element by element)."""
    col = FIELD_INDEX
    present = ~np.isnan(x[col["consent"]])
    # (np.where, not nan_to_num: the same numbers without its Python wrapper)
    consent = np.where(present, x[col["consent"]], 0.0).astype(np.int64)
    quality = np.where(np.isnan(x[col["quality"]]), 0.0, x[col["quality"]]).astype(np.int64)
    physio = present & (consent & CONSENT_PHYSIO > 0) & (consent & CONSENT_PAUSED == 0)
    motion_art = physio & (quality & Q_MOTION > 0)
    usable = physio & (quality & Q_SKIN > 0) & ~motion_art
    hr, rmssd, scl, scr = (x[col[n]] for n in ("hr_bpm", "rmssd_ms", "scl", "scr_per_min"))
    hr_ok = usable & (quality & Q_HR > 0) & (hr != HR_NA) & ~np.isnan(hr)
    eda_ok = usable & (quality & Q_EDA > 0) & (scl != SCL_NA) & (scl > 0) & ~np.isnan(scl)
    features = np.empty((*x.shape[1:], B_HR_SMOOTH))
    features[..., B_LOGSCL] = np.where(eda_ok, np.log(np.where(eda_ok, scl, 1.0)), np.nan)
    features[..., B_SCR] = np.where(eda_ok & (scr != SCR_NA), scr, np.nan)
    features[..., B_HR] = np.where(hr_ok, hr, np.nan)
    features[..., B_RMSSD] = np.where(hr_ok & (rmssd != RMSSD_NA), rmssd, np.nan)
    poor_quality = physio & ~motion_art & ~(hr_ok | eda_ok)
    hue, chroma = x[col["hue"]], x[col["chroma"]]
    shares = present & (consent & CONSENT_COLOUR > 0) & ~np.isnan(hue) & (chroma > 0)
    return Gated(present, consent, (consent >> 4).astype(np.float64), physio, motion_art, poor_quality, hr_ok, eda_ok,
                 features, np.where(shares, hue * 360.0 / 256.0, np.nan), np.where(shares, chroma / 255.0, 0.0))


def _last_index(mask: np.ndarray) -> np.ndarray:
    """Per element and index i along axis 0: the last index <= i where `mask` holds, -1 before the first."""
    if len(mask) == 1:  # the hub's single second: no accumulation (it is called several times a second)
        return np.where(mask, 0, -1)
    steps = np.arange(len(mask)).reshape(-1, *([1] * (mask.ndim - 1)))
    return np.maximum.accumulate(np.where(mask, steps, -1), axis=0)


def _pick(last: np.ndarray, values: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """`values` at the indices `last` (from `_last_index`; -1 picks `prev`): what `state = np.where(mask[i],
    values[i], state)` for each i in turn leaves, starting from `prev`."""
    if len(values) == 1:  # every index is 0 or -1: no gather (take_along_axis's wrapper costs more than the work)
        return np.where(last >= 0, values, prev)
    return np.where(last >= 0, np.take_along_axis(values, np.maximum(last, 0), axis=0), prev)


def _as_slice(rows: np.ndarray) -> np.ndarray | slice:
    """Consecutive rows as a slice: a block copies into it several times faster than through an index array."""
    if rows.size and rows[-1] - rows[0] == rows.size - 1 and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


class CoveScorer(WearerArrays, PairSynchrony, ScoreReport):
    """Incremental cove scoring. `add(dev_id, t, fields)` per record, `compute()` on the hub's cadence.

    Split by job: per-wearer arrays and their reset rules (wearers.py), pair synchrony (pairs.py), the scores
    document (report.py); this module holds input, the per-second step, gating, arousal and regulation."""

    def __init__(self, groups: Groups = None, *, grace_s: int = 2, learn_s: int = BASELINE_LEARN_S,
                 keep_trajectory: bool = False) -> None:
        self.grace_s = int(grace_s)
        self.keep_trajectory = keep_trajectory
        self.rows: dict[int, int] = {}
        self.devs: list[int] = []
        self.capacity = 0
        self.baseline = RobustBaseline(MIN_SPREAD, learn_s=learn_s)
        self.pending: dict[int, list[tuple[int, np.ndarray]]] = {}
        self.next_t: int | None = None
        self.t0: int | None = None
        self.latest_t: int | None = None
        self.late_records = 0
        self.processed_s = 0
        self._group_cache: tuple | None = None
        self.trajectory: list[tuple[int, np.ndarray]] = []
        self._batch_rows: tuple[np.ndarray, np.ndarray | slice] | None = None  # dev ids -> their rows
        self.row_changes = 0
        self._levels: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._init_pairs()
        self._alloc(16)
        self.set_groups(groups)

    # --- set-up ------------------------------------------------------------------------------------------------
    def set_groups(self, groups: Groups) -> None:
        self.groups = normalise_groups(groups)
        self._pairs_dirty = True

    def _alloc(self, capacity: int) -> None:
        self.baseline.grow(capacity)
        self._grow_wearer_arrays(capacity)
        self.capacity = capacity

    def _row(self, dev_id: int) -> int:
        row = self.rows.get(dev_id)
        if row is None:
            row = len(self.devs)
            if row >= self.capacity:
                self._alloc(self.capacity * 2)
            self.rows[dev_id] = row
            self.devs.append(dev_id)
            self._pairs_dirty = True
        return row

    # --- input -------------------------------------------------------------------------------------------------
    @staticmethod
    def record_vector(fields: Mapping[str, float]) -> np.ndarray:
        vec = np.full(len(FIELDS), np.nan)
        for name, value in fields.items():
            idx = FIELD_INDEX.get(name)
            if idx is None:
                if name in IGNORED_FIELDS:
                    continue
                raise ValueError(f"unknown telemetry field {name!r}")
            if value is not None:
                vec[idx] = float(value)
        return _fill_defaults(vec)

    def add(self, dev_id: int, t: int, fields: Mapping[str, float]) -> None:
        """One telemetry record (field names of protocol.records.TELEMETRY_FIELDS) for second `t`."""
        vec = self.record_vector(fields)
        self._add_vector(int(dev_id), int(t), vec)

    def _add_vector(self, dev_id: int, t: int, vec: np.ndarray) -> None:
        row = self._row(dev_id)
        if self.next_t is not None and t < self.next_t:
            self.late_records += 1
            return
        self.pending.setdefault(t, []).append((row, vec))
        if self.latest_t is None or t > self.latest_t:
            self.latest_t = t

    def add_second(self, t: int, dev_ids: Iterable[int], matrix: np.ndarray) -> None:
        """Batch input for simulators: one second, a row of FIELDS values (NaN = missing) per device."""
        rows = self._rows_of(np.asarray(dev_ids))
        self._advance(t - 1)
        x = np.full((self.capacity, len(FIELDS)), np.nan)
        x[rows] = matrix
        self._step(int(t), x)

    def _rows_of(self, ids: np.ndarray) -> np.ndarray | slice:
        """The rows of a batch's dev ids (assigning new ones), cached while the batch's ids stay the same."""
        cached = self._batch_rows
        if cached is not None and cached[0].shape == ids.shape and np.array_equal(cached[0], ids):
            return cached[1]
        rows = np.array([self._row(int(d)) for d in ids], dtype=np.int64)
        self._batch_rows = (ids.copy(), _as_slice(rows))
        return self._batch_rows[1]

    def add_seconds(self, t0: int, dev_ids: Iterable[int], block: np.ndarray,
                    on_second: Callable[[CoveScorer, int], None] | None = None) -> np.ndarray:
        """Batch input for a block of seconds t0, t0 + 1, ...: (seconds, devices, FIELDS), the same as `add_second`
        for each in turn. Returns every second's composite z (seconds, capacity): `zcomp` after that second.

        The block runs through the same step as a single second, in chunks up to each synchrony step (the
        recurrences loop over seconds, the rest is vectorised over the chunk). `on_second(scorer, t)` runs after each
        second, which needs a chunk per second."""
        return self.add_fields(t0, dev_ids, np.moveaxis(np.asarray(block), -1, 0), on_second)

    def add_fields(self, t0: int, dev_ids: Iterable[int], fields: np.ndarray,
                   on_second: Callable[[CoveScorer, int], None] | None = None) -> np.ndarray:
        """`add_seconds` for a field-major block (FIELDS, seconds, devices), which the gating reads fastest."""
        n = fields.shape[1]
        if n == 0:
            return np.empty((0, self.capacity))
        rows = self._rows_of(np.asarray(dev_ids))
        self._advance(t0 - 1)  # any buffered second first, as add_second does
        x = np.full((len(FIELDS), n, self.capacity), np.nan)
        x[:, :, rows] = fields
        gated = _gate(x)
        if on_second is None:
            return self._run(t0, x, gated)
        zcomp = np.empty((n, self.capacity))
        for i in range(n):
            zcomp[i] = self._run(t0 + i, x[:, i:i + 1], Gated(*(part[i:i + 1] for part in gated)))[0]
            on_second(self, t0 + i)
        return zcomp

    # --- per-second processing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Process every buffered second (offline scoring, end of session)."""
        if self.latest_t is not None:
            self._advance(self.latest_t)

    def _advance(self, target: int) -> None:
        if self.next_t is None:
            if not self.pending:
                return
            self.next_t = self.t0 = min(self.pending)
        if self.pending and min(self.pending) > self.next_t + HISTORY_S:
            self.ring[:] = np.nan  # a long silence: history is stale, skip ahead
            self._wend[:] = -1
            self.next_t = min(self.pending)
        while self.next_t <= target:
            t = self.next_t
            x = np.full((self.capacity, len(FIELDS)), np.nan)
            for row, vec in self.pending.pop(t, ()):
                x[row] = vec
            self._step(t, x)

    def _step(self, t: int, x: np.ndarray) -> None:
        """One second: (capacity, FIELDS) records, NaN rows where absent."""
        by_field = x.T[:, None]
        self._run(t, by_field, _gate(by_field))

    def _run(self, t: int, x: np.ndarray, g: Gated) -> np.ndarray:
        """Seconds t, t + 1, ... of (FIELDS, seconds, capacity) records, in chunks that start at each second where a
        consent revision changes (a chunk's state resets only at its start) and hold at most CHUNK_CELLS
        seconds x rows. Returns the composite z per second."""
        if self.t0 is None:
            self.t0 = t
        n = x.shape[1]
        cuts = set(range(0, n, max(1, CHUNK_CELLS // self.capacity)))  # bounds the chunk's temporaries
        if n > 1:  # (the hub's single second needs no cut)
            cuts.update((np.flatnonzero(self._revision_changes(g.present, g.revision)[1:].any(axis=1)) + 1).tolist())
        zcomp = np.empty((n, self.capacity))
        starts = sorted(cuts | {0})
        for lo, hi in zip(starts, [*starts[1:], n], strict=True):
            part = slice(lo, hi)
            zcomp[part] = self._chunk(t + lo, x[:, part], Gated(*(field[part] for field in g)))
        return zcomp

    def _revision_changes(self, present: np.ndarray, revision: np.ndarray) -> np.ndarray:
        """(seconds, capacity): where a record's consent revision differs from the wearer's previous one."""
        before = np.vstack([self.revision[None], _pick(_last_index(present)[:-1], revision, self.revision)])
        return present & (before >= 0) & (revision != before)

    def _chunk(self, t: int, x: np.ndarray, g: Gated) -> np.ndarray:
        """Seconds t .. t + len(x) - 1, with no revision change after the first. Each recurrence runs second by
        second (small arrays), everything else once for the chunk; the synchrony steps come last, each with the ring
        and the regulation as they were at its second."""
        n = x.shape[1]
        ts = np.arange(t, t + n)
        done_before = self.processed_s
        steps = [i for i in range(n) if (t + i - self.t0 + 1) % sy.STEP_S == 0 and done_before + i + 1 >= sy.SPAN_S]
        rmssd_base: dict[int, np.ndarray] = {}
        self.next_t = t + n
        self.latest_t = max(self.latest_t if self.latest_t is not None else t, t + n - 1)
        present = g.present
        self._handle_revisions(present[0], g.revision[0])
        last_present = _last_index(present)[-1:]
        self.revision = _pick(last_present, g.revision, self.revision)[0]
        self.consenting = _pick(last_present, g.physio, self.consenting)[0]
        b = np.empty((n, self.capacity, MIN_SPREAD.size))
        b[..., :B_HR_SMOOTH] = g.features
        hr = x[FIELD_INDEX["hr_bpm"]]
        z_raw = np.empty_like(b)
        for i in range(n):
            prev = self.hr_smooth
            self.hr_smooth = np.where(g.hr_ok[i], np.where(np.isnan(prev), hr[i], prev + HR_SMOOTH_ALPHA * (hr[i] - prev)),
                                      prev)
            b[i, :, B_HR_SMOOTH] = np.where(g.hr_ok[i], self.hr_smooth, np.nan)
            self.baseline.update(b[i])
            z_raw[i] = self.baseline.z(b[i])
            if i in steps:
                rmssd_base[i] = self._rmssd_base()
        z = _clip(z_raw[..., AROUSAL_FEATURES], -Z_CLIP, Z_CLIP)
        comp = _weighted_nanmean(z, AROUSAL_WEIGHTS)
        # synchrony looks at moment-to-moment co-variation, so it must not be flattened where arousal saturates;
        # a channel missing for a few seconds is carried forward, or the composite would jump between channel mixes
        held = self._carry(_clip(z_raw[..., :3], -SYNC_Z_CLIP, SYNC_Z_CLIP))
        sync_series = np.where(np.isnan(comp), np.nan, _weighted_nanmean(held, SYNC_WEIGHTS))
        arousal = _clip(AROUSAL_AT_BASELINE + AROUSAL_PER_Z * comp, 0.0, 1.0)
        valid = ~np.isnan(comp)
        self.zcomp = comp[-1].copy()
        last_valid = _last_index(valid)[-1]
        self.arousal = _pick(last_valid[None], arousal, self.arousal)[0]
        ema = self.arousal_ema
        for i in range(n):
            ema = np.where(valid[i], np.where(np.isnan(ema), arousal[i], 0.9 * ema + 0.1 * arousal[i]), ema)
        self.arousal_ema = ema
        self.last_valid_t = np.where(last_valid >= 0, t + last_valid, self.last_valid_t)
        self._update_counts(g, valid)
        regulation: dict[int, np.ndarray] = {}
        for i in range(n):
            self._update_regulation(int(ts[i]), comp[i], b[i, :, B_RMSSD])
            if i in steps:
                regulation[i] = self._regulation(rmssd_base[i])
        self.hue = _pick(last_present, g.hue, self.hue)[0]  # a record without shared colour clears it
        self.chroma = _pick(last_present, g.chroma, self.chroma)[0]
        written = 0
        for i in steps:  # the ring up to the step's second only: later seconds may overwrite slots it still reads
            self.ring[:, ts[written:i + 1] % HISTORY_S] = sync_series[written:i + 1].T  # NaN where comp is (not valid)
            written = i + 1
            self.processed_s = done_before + i + 1
            self._sync_step(t + i, regulation[i])
        self.ring[:, ts[written:] % HISTORY_S] = sync_series[written:].T
        self.processed_s = done_before + n
        return comp

    def _carry(self, zc: np.ndarray) -> np.ndarray:
        """Each second's last fresh z per channel while at most CARRY_S seconds old, else NaN (the state `z_last`,
        `z_age` carries over chunks): a forward fill, so every value is one of the inputs."""
        steps = np.arange(len(zc))[:, None, None]
        last = _last_index(~np.isnan(zc))
        value = _pick(last, zc, self.z_last)
        age = np.where(last >= 0, steps - last, self.z_age + steps + 1)
        self.z_last, self.z_age = value[-1], age[-1]
        return np.where(age <= CARRY_S, value, np.nan)

    def _handle_revisions(self, present: np.ndarray, revision: np.ndarray) -> None:
        changed = present & (self.revision >= 0) & (revision != self.revision)
        self.revision = np.where(present, revision, self.revision)
        if changed.any():  # a new consent epoch: nothing of the old one carries over
            rows = np.flatnonzero(changed)
            self.baseline.reset(rows)
            self._reset_wearer_rows(rows, NEW_EPOCH)
            self._invalidate_windows(rows)

    def forget(self, dev_id: int) -> None:
        """Drop everything scored for a wearer (consent revoked or erased); the next record starts afresh."""
        row = self.rows.get(int(dev_id))
        if row is None:
            return
        rows = np.array([row])
        self.baseline.reset(rows)
        self._reset_wearer_rows(rows, FORGET)
        self._invalidate_windows(rows)
        for t, items in self.pending.items():
            self.pending[t] = [(r, v) for r, v in items if r != row]
        self._forget_pairs(row, int(dev_id))

    def _update_counts(self, g: Gated, valid: np.ndarray) -> None:
        self.n_present += g.present.sum(axis=0)
        self.n_consented += g.physio.sum(axis=0)
        self.n_motion += g.motion_art.sum(axis=0)
        self.n_quality += g.poor_quality.sum(axis=0)
        self.n_hr_ok += g.hr_ok.sum(axis=0)
        self.n_eda_ok += g.eda_ok.sum(axis=0)
        self.n_valid += valid.sum(axis=0)

    def _update_regulation(self, t: int, comp: np.ndarray, rmssd: np.ndarray) -> None:
        """Recovery after arousal peaks (time from z > PEAK_Z back below RECOVERED_Z) and RMSSD vs baseline."""
        start = ~self.in_peak & (comp > PEAK_Z)
        self.in_peak |= start
        self.peak_t[start] = t
        ended = self.in_peak & (comp < RECOVERED_Z)
        stuck = self.in_peak & (t - self.peak_t > STUCK_S)
        done = ended | stuck
        if done.any():
            score = np.where(stuck, 0.0, np.exp(-(t - self.peak_t) / RECOVERY_TAU_S))
            blended = np.where(np.isnan(self.rec_score), score, 0.7 * self.rec_score + 0.3 * score)
            self.rec_score = np.where(done, blended, self.rec_score)
            self.in_peak &= ~done
        ok = ~np.isnan(rmssd)
        self.rmssd_ema = np.where(ok, np.where(np.isnan(self.rmssd_ema), rmssd,
                                              self.rmssd_ema + (rmssd - self.rmssd_ema) / 60.0), self.rmssd_ema)

    def regulation(self) -> np.ndarray:
        return self._regulation(self._rmssd_base())

    def _rmssd_base(self) -> np.ndarray:
        return np.where(self.baseline.ready[:, B_RMSSD], self.baseline.median[:, B_RMSSD], np.nan)

    def _regulation(self, base: np.ndarray) -> np.ndarray:
        """From the baseline's RMSSD (`_rmssd_base`, NaN until ready) and the regulation state as it is now."""
        hrv = np.clip(self.rmssd_ema / base, 0.0, 1.25) / 1.25
        parts = np.stack([self.rec_score, hrv])
        n = (~np.isnan(parts)).sum(axis=0)
        return np.where(n > 0, np.nansum(parts, axis=0) / np.maximum(n, 1), np.nan)

    # --- output ------------------------------------------------------------------------------------------------
    def metric_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(level, trend per minute, confidence) of the Compassion Metric over the last METRIC_STEPS points (read
        only: a minute's trajectory point and snapshot share them)."""
        key = (self.processed_s, self.row_changes)
        if self._levels is None or self._levels[0] != key:
            self._levels = (key, self._compute_metric_levels())
        return self._levels[1]

    def _compute_metric_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.metric_ring
        ok = ~np.isnan(m)
        n = ok.sum(axis=1)
        level = np.where(n > 0, np.nansum(m, axis=1) / np.maximum(n, 1), np.nan)
        # time of each ring slot in minutes relative to the newest point, for the trend's least squares
        newest = ((self.processed_s // sy.STEP_S) if self.t0 is not None else 0) % METRIC_STEPS
        age = (newest - np.arange(METRIC_STEPS)) % METRIC_STEPS
        tmin = -age * sy.STEP_S / 60.0
        tm = np.where(ok, tmin, 0.0)
        tmean = tm.sum(axis=1) / np.maximum(n, 1)
        dt = np.where(ok, tmin - tmean[:, None], 0.0)
        dm = np.where(ok, m - level[:, None], 0.0)
        sxx = (dt * dt).sum(axis=1)
        trend = np.where((n >= 6) & (sxx > 0), (dt * dm).sum(axis=1) / np.where(sxx > 0, sxx, 1.0), np.nan)
        confidence = (n / METRIC_STEPS) * (1.0 - np.exp(-n / 12.0))
        return level, trend, confidence
