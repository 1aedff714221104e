"""CoveScorer: the hub's incremental scoring of 1 Hz telemetry (docs/ARCHITECTURE.md, "Scoring").

Records are buffered per second and processed in order: the gate and the per-second recurrences (HR smoothing, the
robust per-wearer baseline, arousal and regulation) run as compiled loops over the seconds and wearers of a block
(recurrences.py), the same loops whether the hub feeds one second or the simulator a block. Synchrony is updated
every STEP_S seconds for the newly completed window only (running Fisher-z sums per pair), so `compute()` never
re-reads history. Records for a second that has already been processed (more than `grace_s` late) are counted in
`late_records` and not scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from lifepalette.scoring import recurrences
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
from lifepalette.scoring.recurrences import (  # noqa: F401 (the arousal scale is read by the simulator too)
    AROUSAL_AT_BASELINE,
    AROUSAL_PER_Z,
    B_HR_SMOOTH,
)
from lifepalette.scoring.report import ScoreReport
from lifepalette.scoring.wearers import FORGET, HISTORY_S, METRIC_STEPS, NEW_EPOCH, WearerArrays

BASELINE_LEARN_S = 180
MIN_SPREAD = np.array([0.01, 0.5, 1.0, 2.0, 0.5])  # per baseline feature (B_LOGSCL .. B_HR_SMOOTH)
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


# what the gate reads, passed to its kernel (recurrences.gate_seconds)
_GATE_FIELDS = tuple(FIELD_INDEX[name] for name in ("consent", "quality", "hr_bpm", "rmssd_ms", "scl", "scr_per_min",
                                                    "hue", "chroma"))
# each Gated array's dtype and shape after (seconds, wearers), as the gate's kernel writes them
_GATED_LAYOUT = {name: (np.float64, (B_HR_SMOOTH,) if name == "features" else ()) for name in Gated._fields} | {
    name: (bool, ()) for name in ("present", "physio", "motion_art", "poor_quality", "hr_ok", "eda_ok")} | {
    "consent": (np.int64, ())}
_GATE_CODES = (CONSENT_PHYSIO, CONSENT_PAUSED, CONSENT_COLOUR, Q_MOTION, Q_SKIN, Q_HR, Q_EDA, HR_NA, SCL_NA, SCR_NA,
               RMSSD_NA)


class Scratch:
    """Arrays the batch path reuses from block to block, by name (contents undefined until written): a 60 s block of
    1,000 wearers no longer fills 8 MB of new records and gated values with NaN before writing them (the last block's
    memory, still in cache, is overwritten once). Each is a C-ordered view of one flat buffer, grown when too small:
    a shorter last block reuses it too."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
        size = int(np.prod(shape))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


def _fresh(_name: str, shape: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    return np.empty(shape, dtype)


def _gate(x: np.ndarray, scratch: Callable[..., np.ndarray] = _fresh) -> Gated:
    """The per-record part of a second's step, for field-major (FIELDS, seconds, wearers) records: it reads no
    state, so it runs for a block of seconds at once (the same numbers, element by element). Its arrays come from
    `scratch` (new ones by default)."""
    shape = x.shape[1:]
    g = Gated(*(scratch(f"gated.{name}", (*shape, *tail), dtype) for name, (dtype, tail) in _GATED_LAYOUT.items()))
    recurrences.compiled().gate_seconds(np.ascontiguousarray(x), _GATE_FIELDS, _GATE_CODES, *g)
    return g


def _last_index(mask: np.ndarray) -> np.ndarray:
    """Per element and index i along axis 0: the last index <= i where `mask` holds, -1 before the first."""
    if len(mask) == 1:  # the hub's single second: no accumulation (it is called several times a second)
        return np.where(mask, 0, -1)
    steps = np.arange(len(mask)).reshape(-1, *([1] * (mask.ndim - 1)))
    return np.maximum.accumulate(np.where(mask, steps, -1), axis=0)


def _last_present(present: np.ndarray) -> np.ndarray:
    """`_last_index(present)[-1:]` (each wearer's last present second, -1 if none) without the running maximum over
    every second."""
    if len(present) == 1:
        return np.where(present, 0, -1)
    last = len(present) - 1 - np.argmax(present[::-1], axis=0)
    return np.where(present.any(axis=0), last, -1)[None]


def _pick(last: np.ndarray, values: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """`values` at the indices `last` (from `_last_index`; -1 picks `prev`): what `state = np.where(mask[i],
    values[i], state)` for each i in turn leaves, starting from `prev`."""
    if len(values) == 1:  # every index is 0 or -1: no gather (take_along_axis's wrapper costs more than the work)
        return np.where(last >= 0, values, prev)
    return np.where(last >= 0, np.take_along_axis(values, np.maximum(last, 0), axis=0), prev)


def _fill_outside(x: np.ndarray, rows: np.ndarray | slice, value: float) -> None:
    """`value` into x's last axis everywhere but at `rows` (a slice from `_as_slice`: only its ends are filled)."""
    if isinstance(rows, slice):
        x[..., :rows.start] = value
        x[..., rows.stop:] = value
    else:
        x[...] = value


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
        self._scratch = Scratch()
        self._levels: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._trend: tuple[np.ndarray, np.ndarray] | None = None  # of the cached levels, once asked for
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
        x = self._scratch("records", (len(FIELDS), n, self.capacity))
        _fill_outside(x, rows, np.nan)
        x[:, :, rows] = fields
        gated = _gate(x, self._scratch)  # (nothing keeps the block's arrays: the next block reuses them)
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
            cuts.update(self._revision_cuts(g.present, g.revision))
        zcomp = np.empty((n, self.capacity))
        starts = sorted(cuts | {0})
        for lo, hi in zip(starts, [*starts[1:], n], strict=True):
            part = slice(lo, hi)
            zcomp[part] = self._chunk(t + lo, x[:, part], Gated(*(field[part] for field in g)))
        return zcomp

    def _revision_cuts(self, present: np.ndarray, revision: np.ndarray) -> list[int]:
        """The seconds after a block's first where a record's consent revision differs from its wearer's previous one
        (present, revision: (seconds, capacity))."""
        if ((revision == self.revision) | ~present).all():  # every record at its wearer's revision: most blocks
            return []
        before = np.vstack([self.revision[None], _pick(_last_index(present)[:-1], revision, self.revision)])
        changes = present & (before >= 0) & (revision != before)
        return (np.flatnonzero(changes[1:].any(axis=1)) + 1).tolist()

    def _chunk(self, t: int, x: np.ndarray, g: Gated) -> np.ndarray:
        """Seconds t .. t + len(x) - 1, with no revision change after the first. The recurrences (HR smoothing,
        baseline, arousal, regulation) run in one compiled loop over the chunk's seconds for every wearer; the
        synchrony steps come last, each with the ring and the regulation as they were at its second."""
        n = x.shape[1]
        ts = np.arange(t, t + n)
        done_before = self.processed_s
        steps = [i for i in range(n) if (t + i - self.t0 + 1) % sy.STEP_S == 0 and done_before + i + 1 >= sy.SPAN_S]
        self.next_t = t + n
        self.latest_t = max(self.latest_t if self.latest_t is not None else t, t + n - 1)
        present = g.present
        self._handle_revisions(present[0], g.revision[0])
        last_present = _last_present(present)
        self.revision = _pick(last_present, g.revision, self.revision)[0]
        self.consenting = _pick(last_present, g.physio, self.consenting)[0]
        comp = np.empty((n, self.capacity))
        sync_series = np.empty((n, self.capacity))
        regulation = np.empty((len(steps), self.capacity))
        is_step = np.zeros(n, bool)
        is_step[steps] = True
        base = self.baseline
        recurrences.compiled().score_seconds(
            t, np.ascontiguousarray(g.features), np.ascontiguousarray(g.hr_ok), is_step,
            base.min_spread, base.drift, base.count, base.buf, base.median, base.mad, base.ready,
            self.hr_smooth, self.z_last, self.z_age, self.arousal, self.arousal_ema, self.last_valid_t,
            self.in_peak, self.peak_t, self.rec_score, self.rmssd_ema, comp, sync_series, regulation)
        self.zcomp = comp[-1].copy()
        self._update_counts(g, ~np.isnan(comp))
        self.hue = _pick(last_present, g.hue, self.hue)[0]  # a record without shared colour clears it
        self.chroma = _pick(last_present, g.chroma, self.chroma)[0]
        written = 0
        for k, i in enumerate(steps):  # the ring up to the step's second only: later seconds may overwrite it
            self.ring[:, ts[written:i + 1] % HISTORY_S] = sync_series[written:i + 1].T  # NaN where comp is (not valid)
            written = i + 1
            self.processed_s = done_before + i + 1
            self._sync_step(t + i, regulation[k])
        self.ring[:, ts[written:] % HISTORY_S] = sync_series[written:].T
        self.processed_s = done_before + n
        return comp

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

    def regulation(self) -> np.ndarray:
        """Per wearer, the regulation as it is now: the same compiled formula as at each synchrony step."""
        out = np.empty(self.capacity)
        recurrences.compiled().regulation_rows(self.rec_score, self.rmssd_ema, self.baseline.ready,
                                               self.baseline.median, out)
        return out

    # --- output ------------------------------------------------------------------------------------------------
    def metric_level(self) -> np.ndarray:
        """The Compassion Metric's level per wearer (the mean of the last METRIC_STEPS points): all that a minute's
        trajectory point and a palette snapshot read, so they skip the trend's least squares. Read only, cached until
        the next step or row change."""
        return self._metric_level_parts()[2]

    def metric_levels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(level, trend per minute, confidence) of the Compassion Metric over the last METRIC_STEPS points (read
        only: a minute's trajectory point and snapshot share them)."""
        ok, n, level = self._metric_level_parts()
        if self._trend is None:
            self._trend = self._compute_trend(ok, n, level)
        return level, *self._trend

    def _metric_level_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points present, their count, level) per wearer, cached under the state they came from."""
        key = (self.processed_s, self.row_changes)
        if self._levels is None or self._levels[0] != key:
            m = self.metric_ring
            ok = ~np.isnan(m)
            n = ok.sum(axis=1)
            # (np.where(ok, m, 0).sum is nansum's own sum, without its copy and second isnan)
            level = np.where(n > 0, np.where(ok, m, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)
            self._levels = (key, (ok, n, level))
            self._trend = None
        return self._levels[1]

    def _compute_trend(self, ok: np.ndarray, n: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(trend per minute, confidence) from the points present and their level."""
        m = self.metric_ring
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
        return trend, confidence
