"""Per-wearer state of the cove scorer: every array declared once, with its fill value and when it is reset.

One row per wearer (device), grown by doubling. Two events reset rows:
- NEW_EPOCH: the wearer's consent revision changed. Nothing derived from the old epoch's physiology may carry over
  (baseline, rings, arousal, regulation, smoothing); session bookkeeping (counts, colour, last valid time) stays.
- FORGET: consent revoked or the wearer erased. Everything known about the wearer goes, bookkeeping included.
Arrays marked NEVER are overwritten before they are read again (scratch state of one step).
"""

from __future__ import annotations

import numpy as np

HISTORY_S = 256  # per-second synchrony series kept per wearer: >= SPAN_S + the longest surrogate shift
METRIC_STEPS = 120  # Compassion Metric points kept (STEP_S apart): a 10-minute trajectory window

NEVER, FORGET, NEW_EPOCH = 0, 1, 2  # NEW_EPOCH arrays are reset on FORGET too

# name: (fill, trailing shape, dtype, reset on)
WEARER_ARRAYS: dict[str, tuple[float, tuple[int, ...], type, int]] = {
    "ring": (np.nan, (HISTORY_S,), np.float32, NEW_EPOCH),  # synchrony series by second
    "metric_ring": (np.nan, (METRIC_STEPS,), np.float64, NEW_EPOCH),  # Compassion Metric points
    "arousal": (np.nan, (), np.float64, NEW_EPOCH),
    "arousal_ema": (np.nan, (), np.float64, NEW_EPOCH),
    "rec_score": (np.nan, (), np.float64, NEW_EPOCH),  # recovery after arousal peaks
    "rmssd_ema": (np.nan, (), np.float64, NEW_EPOCH),
    "last_sync": (np.nan, (), np.float64, NEW_EPOCH),
    "in_peak": (False, (), bool, NEW_EPOCH),
    "z_last": (np.nan, (3,), np.float64, NEW_EPOCH),  # last z per synchrony channel, carried CARRY_S seconds
    "hr_smooth": (np.nan, (), np.float64, NEW_EPOCH),
    "zcomp": (np.nan, (), np.float64, FORGET),  # this second's composite z (read by the simulator's evaluation)
    "hue": (np.nan, (), np.float64, FORGET),  # reported colour: its own consent bit, not physiology's epoch
    "chroma": (0.0, (), np.float64, FORGET),
    "last_valid_t": (-1e18, (), np.float64, FORGET),
    "revision": (-1.0, (), np.float64, FORGET),
    "consenting": (False, (), bool, FORGET),
    "n_present": (0, (), np.int64, FORGET),
    "n_consented": (0, (), np.int64, FORGET),
    "n_valid": (0, (), np.int64, FORGET),
    "n_motion": (0, (), np.int64, FORGET),
    "n_quality": (0, (), np.int64, FORGET),
    "n_hr_ok": (0, (), np.int64, FORGET),
    "n_eda_ok": (0, (), np.int64, FORGET),
    "peak_t": (0.0, (), np.float64, NEVER),  # read only while in_peak
    "z_age": (10**6, (3,), np.int64, NEVER),  # read only together with z_last
}


class WearerArrays:
    """Mixin of CoveScorer: allocation and resets of the arrays in WEARER_ARRAYS (attributes of the same name)."""

    capacity: int
    row_changes: int  # times rows were grown or reset: caches of values derived from the arrays compare it

    def _grow_wearer_arrays(self, capacity: int) -> None:
        old = self.capacity
        for name, (fill, tail, dtype, _reset) in WEARER_ARRAYS.items():
            new = np.full((capacity, *tail), fill, dtype=dtype)
            if old:
                new[:old] = getattr(self, name)
            setattr(self, name, new)
        self.row_changes += 1

    def _reset_wearer_rows(self, rows: np.ndarray, event: int) -> None:
        """Reset `rows` of every array whose rule covers `event` (FORGET covers NEW_EPOCH arrays too)."""
        for name, (fill, _tail, _dtype, reset) in WEARER_ARRAYS.items():
            if reset != NEVER and reset >= event:
                getattr(self, name)[rows] = fill
        self.row_changes += 1
