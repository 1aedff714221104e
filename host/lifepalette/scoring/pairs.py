"""Pair synchrony of the cove scorer: for every pair in the same dialogue group, peak lagged correlation of the
wearers' synchrony series over 30 s windows, against surrogates (the same pair shifted in time), as running sums.

Updated every STEP_S seconds for the newly completed window only; unit windows are computed once and kept in a ring.
The step's loops are compiled (sync_kernels, imported at the first step): the windows for the new ends straight from
the per-second series, then every pair's correlations, peak, Fisher z and running sums in one call.
"""

from __future__ import annotations

import numpy as np

from lifepalette.scoring import synchrony as sy
from lifepalette.scoring.wearers import METRIC_STEPS

WINDOW_RING = 200  # > max surrogate shift + N_LAGS + STEP_S: every window a step needs is still there
SYNC_FOR_FULL_SCORE = 0.2  # excess synchrony (r above surrogate) counted as full attunement; peak-picked r over
# 30 s windows is compressed: on simulated cohorts a true coupling of 0.6 reads as an excess of about 0.15
RECENT_TAU_S = 300.0  # time constant of a pair's recent excess synchrony (EMA, one update per counted window)
PAIR_COLUMNS = 6  # sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess (EMA)


class PairSynchrony:
    """Mixin of CoveScorer: the pairs, their running sums (`pair_state`, one row per pair) and the window ring."""

    def _init_pairs(self) -> None:
        self._pairs_dirty = True
        self._pair_state: dict[tuple[int, int], np.ndarray] = {}  # by (dev a, dev b): survives regrouping
        self.pair_keys: list[tuple[int, int, int]] = []
        self.pa = np.zeros(0, np.int64)  # row of each pair's first and second wearer
        self.pb = np.zeros(0, np.int64)
        self._pair_order = np.zeros(0, np.int64)
        self.pair_state = np.zeros((0, PAIR_COLUMNS))
        self._cache_pairs: list | None = None  # the report's PairScore entries until the next step
        # unit windows by the second they end at, in a ring long enough for the longest surrogate shift: each window
        # is computed once (consecutive steps share half their lag windows, surrogates reuse older steps' windows).
        # Kept as each window's numbers (mean, slope, 1 / norm): with the windows' copy of the series below they give
        # its samples (sync_kernels).
        # (the first N_LAGS slots are mirrored after the last, so any N_LAGS consecutive ends are one block of slots)
        self._wstat = np.zeros((0, WINDOW_RING + sy.N_LAGS, 3))
        self._wvalid = np.zeros((0, WINDOW_RING + sy.N_LAGS), bool)
        self._wend = np.full(WINDOW_RING, -1, np.int64)
        # the windows' own copy of the series (sync_kernels: 0 where missing; observed), by second as in `ring`
        self._wseries = np.zeros((0, 0), np.float32)
        self._wseen = np.zeros((0, 0), bool)
        self._wearer_sum = np.zeros(0)  # the step's per-wearer sums of excess and counts (scratch)
        self._wearer_n = np.zeros(0)

    def _forget_pairs(self, row: int, dev_id: int) -> None:
        if self.pair_keys:
            keep = (self.pa != row) & (self.pb != row)
            self.pair_state[~keep] = 0.0
            self.pair_state[~keep, 5] = np.nan
        self._pair_state = {k: v for k, v in self._pair_state.items() if dev_id not in k}
        self._cache_pairs = None

    def _group_of(self) -> dict[int, list[int]]:
        if self.groups is None:
            return {1: list(self.devs)}
        return {gid: [d for d in members if d in self.rows] for gid, members in self.groups.items()}

    def _build_pairs(self) -> None:
        keys = []
        for gid, members in self._group_of().items():
            ms = sorted(members)
            keys += [(gid, a, b) for i, a in enumerate(ms) for b in ms[i + 1:]]
        self.pair_keys = keys
        self.pa = np.array([self.rows[a] for _g, a, _b in keys], dtype=np.int64)
        self.pb = np.array([self.rows[b] for _g, _a, b in keys], dtype=np.int64)
        self._pair_order = np.argsort(self.pb, kind="stable")  # the step visits pairs by b's row (memory order)
        # columns: sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess (EMA)
        state = np.zeros((len(keys), 6))
        state[:, 5] = np.nan
        for i, (_g, a, b) in enumerate(keys):
            old = self._pair_state.get((a, b))
            if old is not None:
                state[i] = old
        self.pair_state = state
        self._pairs_dirty = False

    def _save_pair_state(self) -> None:
        if self.pair_keys:
            self._pair_state.update({(a, b): self.pair_state[i] for i, (_g, a, b) in enumerate(self.pair_keys)})

    def _windows_at(self, ends: np.ndarray) -> np.ndarray:
        """First ring slot of the N_LAGS unit windows ending at end - 2 * LAG_S .. end, for each of `ends`, computing
        those not there yet (normally this step's STEP_S newest)."""
        n = len(self.devs)
        if self._wstat.shape[0] < n:  # wearers who joined since: no windows back then
            from lifepalette.scoring.sync_kernels import REPEAT_S

            extra = max(n, 2 * self._wstat.shape[0]) - self._wstat.shape[0]
            self._wstat = np.concatenate([self._wstat, np.zeros((extra, *self._wstat.shape[1:]))])
            self._wvalid = np.concatenate([self._wvalid, np.zeros((extra, self._wvalid.shape[1]), bool)])
            columns = self.ring.shape[1] + REPEAT_S
            self._wseries = np.concatenate([self._wseries.reshape(-1, columns),
                                            np.zeros((extra, columns), np.float32)])
            self._wseen = np.concatenate([self._wseen.reshape(-1, columns), np.zeros((extra, columns), bool)])
        needed = np.unique(np.concatenate([np.arange(end - sy.N_LAGS + 1, end + 1) for end in ends]))
        missing = needed[self._wend[needed % WINDOW_RING] != needed]
        if missing.size:
            slots = missing % WINDOW_RING
            sy.fill_windows(self.ring, n, missing, slots, WINDOW_RING, self._wstat, self._wvalid, self._wseries,
                            self._wseen)
            self._wend[slots] = missing
        return (ends - sy.N_LAGS + 1) % WINDOW_RING

    def _invalidate_windows(self, rows: np.ndarray) -> None:
        self._wvalid[rows[rows < self._wvalid.shape[0]]] = False

    def _sync_step(self, t: int, regulation: np.ndarray) -> None:
        from lifepalette.scoring import sync_kernels

        if self._pairs_dirty:
            self._save_pair_state()
            self._build_pairs()
        self._cache_pairs = None
        if self._wearer_sum.size != self.capacity:
            self._wearer_sum, self._wearer_n = np.zeros(self.capacity), np.zeros(self.capacity)
        if len(self.pair_keys):
            # b's lag windows for this step, then for the surrogate shifts; a's centre window ends LAG_S before t
            ends = np.array([t] + [t - shift for shift in self._surrogate_shifts(t)], np.int64)
            starts = self._windows_at(ends)
            sync_kernels.pair_step(self._wseries, self._wseen, self._wstat, self._wvalid, self.pa, self.pb,
                                   self._pair_order, t - sy.LAG_S, int(starts[0]) + sy.LAG_S, ends, starts, sy._TC,
                                   sy.R_CLIP, sy.STEP_S / RECENT_TAU_S, self.pair_state, self._wearer_sum,
                                   self._wearer_n, sync_kernels.PADDED_LAGS)
        else:
            self._wearer_n[:] = 0.0  # no pair: no wearer's synchrony
        step_index = (t - self.t0 + 1) // sy.STEP_S
        sync_kernels.metric_points(self._wearer_sum, self._wearer_n, regulation, SYNC_FOR_FULL_SCORE, self.last_sync,
                                   self.metric_ring, step_index % METRIC_STEPS)
        self._levels = None
        if self.keep_trajectory and step_index % (60 // sy.STEP_S) == 0:
            self.trajectory.append((t, self.metric_level().copy()))

    def _surrogate_shifts(self, t: int) -> list[int]:
        """Half the surrogate shifts per step, alternating: the chance baseline is a running mean over the session."""
        available = [s for s in sy.SURROGATE_SHIFTS_S if self.processed_s >= sy.SPAN_S + s]
        step_index = (t - self.t0 + 1) // sy.STEP_S
        return available[step_index % 2::2] if len(available) > 1 else available

    def recent_synchrony(self) -> np.ndarray:
        """Per wearer: mean over partners of the pairs' recent (5-minute EMA) synchrony above surrogate."""
        out = np.full(self.capacity, np.nan)
        if not self.pair_keys:
            return out
        recent = self.pair_state[:, 5]
        ok = ~np.isnan(recent)
        pa, pb = self.pa[ok], self.pb[ok]
        n = np.bincount(pa, minlength=self.capacity) + np.bincount(pb, minlength=self.capacity)
        total = (np.bincount(pa, recent[ok], minlength=self.capacity)
                 + np.bincount(pb, recent[ok], minlength=self.capacity))
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)
