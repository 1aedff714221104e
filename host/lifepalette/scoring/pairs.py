"""Pair synchrony of the cove scorer: for every pair in the same dialogue group, peak lagged correlation of the
wearers' synchrony series over 30 s windows, against surrogates (the same pair shifted in time), as running sums.

Updated every STEP_S seconds for the newly completed window only; unit windows are computed once and kept in a ring.
"""

from __future__ import annotations

import numpy as np

from lifepalette.scoring import synchrony as sy
from lifepalette.scoring.wearers import HISTORY_S, METRIC_STEPS

WINDOW_RING = 200  # > max surrogate shift + N_LAGS + STEP_S: every window a step needs is still there
SYNC_FOR_FULL_SCORE = 0.2  # excess synchrony (r above surrogate) counted as full attunement; peak-picked r over
# 30 s windows is compressed: on simulated cohorts a true coupling of 0.6 reads as an excess of about 0.15
# A step's own lag windows, gathered per pair, are the surrogate windows of the steps SURROGATE_SHIFTS_S later: kept
# while they fit in this many bytes (1,000 wearers in dialogue groups: ~55 MB; larger coves gather every time)
LAG_CACHE_BYTES = 64 * 2**20
PAIR_COLUMNS = 6  # sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess (EMA)


class PairSynchrony:
    """Mixin of CoveScorer: the pairs, their running sums (`pair_state`, one row per pair) and the window ring."""

    def _init_pairs(self) -> None:
        self._pairs_dirty = True
        self._pair_state: dict[tuple[int, int], np.ndarray] = {}  # by (dev a, dev b): survives regrouping
        self.pair_keys: list[tuple[int, int, int]] = []
        self.pa = np.zeros(0, np.int64)  # row of each pair's first and second wearer
        self.pb = np.zeros(0, np.int64)
        self.pair_state = np.zeros((0, PAIR_COLUMNS))
        self._cache_pairs: list | None = None  # the report's PairScore entries until the next step
        # unit windows by the second they end at, in a ring long enough for the longest surrogate shift: each window
        # is computed once (consecutive steps share half their lag windows, surrogates reuse older steps' windows)
        # (the first N_LAGS slots are mirrored after the last, so any N_LAGS consecutive ends are one slice)
        self._wring = np.zeros((0, WINDOW_RING + sy.N_LAGS, sy.WINDOW_S), np.float32)
        self._wvalid = np.zeros((0, WINDOW_RING + sy.N_LAGS), bool)
        self._wend = np.full(WINDOW_RING, -1, np.int64)
        self._lag_cache: dict[int, np.ndarray] = {}  # b's lag windows per pair, by the step second they end at

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
        # columns: sum z, windows, sum surrogate z, surrogate windows, sum lag, recent excess (EMA)
        state = np.zeros((len(keys), 6))
        state[:, 5] = np.nan
        for i, (_g, a, b) in enumerate(keys):
            old = self._pair_state.get((a, b))
            if old is not None:
                state[i] = old
        self.pair_state = state
        self._lag_cache.clear()
        self._pairs_dirty = False

    def _save_pair_state(self) -> None:
        if self.pair_keys:
            self._pair_state.update({(a, b): self.pair_state[i] for i, (_g, a, b) in enumerate(self.pair_keys)})

    def _segment(self, end_t: int, length: int) -> np.ndarray:
        idx = np.arange(end_t - length + 1, end_t + 1) % HISTORY_S
        return self.ring[: len(self.devs)][:, idx]  # float32: windows are normalised, r needs no more

    def _windows_at(self, t: int) -> slice:
        """Ring slice of the N_LAGS unit windows ending at t - 2 * LAG_S .. t, computing those not there yet (normally
        the STEP_S newest: one segment from the oldest missing end to t covers them)."""
        n = len(self.devs)
        if self._wring.shape[0] < n:  # wearers who joined since: no windows back then
            extra = max(n, 2 * self._wring.shape[0]) - self._wring.shape[0]
            slots = WINDOW_RING + sy.N_LAGS
            self._wring = np.concatenate([self._wring, np.zeros((extra, slots, sy.WINDOW_S), np.float32)])
            self._wvalid = np.concatenate([self._wvalid, np.zeros((extra, slots), bool)])
        ends = np.arange(t - sy.N_LAGS + 1, t + 1)
        slots = ends % WINDOW_RING
        missing = np.flatnonzero(self._wend[slots] != ends)
        if missing.size:
            first = int(ends[missing[0]])
            unit, valid = sy.unit_windows(self._segment(t, sy.WINDOW_S + t - first))
            new = np.arange(first, t + 1) % WINDOW_RING
            mirror = new < sy.N_LAGS
            for dest, src in ((new, slice(None)), (new[mirror] + WINDOW_RING, mirror)):
                if dest.size and dest[-1] - dest[0] == dest.size - 1:  # consecutive slots: a slice writes faster
                    dest = slice(int(dest[0]), int(dest[-1]) + 1)
                self._wring[:n, dest] = unit[:, src]
                self._wvalid[:n, dest] = valid[:, src]
                self._wvalid[n:, dest] = False
            self._wend[new] = np.arange(first, t + 1)
            for end in [end for end in self._lag_cache if end >= first]:  # (normally none: new windows are newer)
                del self._lag_cache[end]
        return slice(int(slots[0]), int(slots[0]) + sy.N_LAGS)

    def _invalidate_windows(self, rows: np.ndarray) -> None:
        self._wvalid[rows[rows < self._wvalid.shape[0]]] = False

    def _sync_step(self, t: int, regulation: np.ndarray) -> None:
        if self._pairs_dirty:
            self._save_pair_state()
            self._build_pairs()
        self._cache_pairs = None
        metric_sync = np.full(self.capacity, np.nan)
        if len(self.pair_keys):
            pa, pb = self.pa, self.pb
            # b's lag windows for this step, then for the surrogate shifts: gathered and correlated at once
            ends = [t] + [t - shift for shift in self._surrogate_shifts(t)]
            lag_sets = [self._windows_at(end) for end in ends]
            centre_slot = lag_sets[0].start + sy.LAG_S  # a's centre window ends LAG_S before t
            centre, centre_ok = self._wring[pa, centre_slot], self._wvalid[pa, centre_slot]
            rs, lags_s, oks = sy.peak_r_sets(centre, centre_ok, self._lag_windows(ends, lag_sets),
                                             [self._wvalid[pb, lags] for lags in lag_sets])
            r, lag, ok = rs[0], lags_s[0], oks[0]
            zr = sy.fisher_z(r)
            st = self.pair_state
            for surrogate in range(1, len(lag_sets)):  # one at a time: the running sums add in the same order
                st[:, 2] += np.where(oks[surrogate], sy.fisher_z(rs[surrogate]), 0.0)
                st[:, 3] += oks[surrogate]
            st[:, 0] += np.where(ok, zr, 0.0)
            st[:, 1] += ok
            st[:, 4] += np.where(ok, lag, 0)
            sur_mean = np.where(st[:, 3] > 0, st[:, 2] / np.maximum(st[:, 3], 1), np.nan)
            excess = np.where(ok, np.tanh(zr) - np.tanh(sur_mean), np.nan)
            alpha = sy.STEP_S / 300.0
            st[:, 5] = np.where(ok, np.where(np.isnan(st[:, 5]), excess, (1 - alpha) * st[:, 5] + alpha * excess),
                                st[:, 5])
            good = ok & ~np.isnan(excess)
            w = np.bincount(pa[good], minlength=self.capacity) + np.bincount(pb[good], minlength=self.capacity)
            s = (np.bincount(pa[good], excess[good], minlength=self.capacity)
                 + np.bincount(pb[good], excess[good], minlength=self.capacity))
            metric_sync = np.where(w > 0, s / np.maximum(w, 1), np.nan)
        self.last_sync = np.where(np.isnan(metric_sync), self.last_sync, metric_sync)
        sync_part = np.clip(metric_sync / SYNC_FOR_FULL_SCORE, 0.0, 1.0)
        parts = np.stack([sync_part, regulation])
        n = (~np.isnan(parts)).sum(axis=0)
        point = np.where(n > 0, np.nansum(parts, axis=0) / np.maximum(n, 1), np.nan)
        step_index = (t - self.t0 + 1) // sy.STEP_S
        self.metric_ring[:, step_index % METRIC_STEPS] = point
        self._levels = None
        if self.keep_trajectory and step_index % (60 // sy.STEP_S) == 0:
            self.trajectory.append((t, self.metric_levels()[0].copy()))

    def _lag_windows(self, ends: list[int], lag_sets: list[slice]) -> list[np.ndarray]:
        """b's lag windows per pair for each set (ends[0] is this step's second), from the cache where a step kept
        them (the same gathered copy: the same numbers), and kept for later steps' surrogates while they fit."""
        windows = [self._lag_cache.get(end) for end in ends]
        windows = [self._wring[self.pb, lags] if w is None else w for w, lags in zip(windows, lag_sets, strict=True)]
        longest = max(sy.SURROGATE_SHIFTS_S)
        if windows[0].nbytes * (longest // sy.STEP_S + 1) <= LAG_CACHE_BYTES:
            self._lag_cache[ends[0]] = windows[0]
            for end in [end for end in self._lag_cache if end < ends[0] - longest]:
                del self._lag_cache[end]
        return windows

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
