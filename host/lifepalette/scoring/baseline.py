"""Per-wearer robust baseline (median and MAD), vectorised over wearers and features.

Learnt from each feature's first `learn_s` valid seconds after consent, then updated slowly with a stochastic
quantile tracker (the median moves by a small step toward each new value, the MAD likewise toward |x - median|),
and only from values within TRACK_WITHIN spreads of it: a long confrontation does not become the new baseline
(arousal would read as calm again), while slow drifts (electrode settling, skin temperature) are followed.

This class holds the state arrays; the per-second update is compiled (recurrences.py), where the scorer runs it
inside its own per-second loop.
"""

from __future__ import annotations

import numpy as np

from lifepalette.scoring import recurrences
from lifepalette.scoring.recurrences import MAD_TO_SD


class RobustBaseline:
    def __init__(self, min_spread: np.ndarray, learn_s: int = 180, drift_per_s: float = 1.0 / 1800.0) -> None:
        self.min_spread = np.asarray(min_spread, dtype=np.float64)
        self.n_features = self.min_spread.size
        self.learn_s = int(learn_s)
        if self.learn_s < 1:
            raise ValueError(f"learn_s must be at least 1 second, not {learn_s}")
        self.drift = float(drift_per_s)
        self.capacity = 0
        self.count = np.zeros((0, self.n_features), np.int32)
        self.buf = np.zeros((0, self.n_features, self.learn_s), np.float32)
        self.median = np.zeros((0, self.n_features))
        self.mad = np.zeros((0, self.n_features))
        self.ready = np.zeros((0, self.n_features), bool)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        if extra <= 0:
            return
        nf = self.n_features
        self.count = np.concatenate([self.count, np.zeros((extra, nf), np.int32)])
        self.buf = np.concatenate([self.buf, np.zeros((extra, nf, self.learn_s), np.float32)])
        self.median = np.concatenate([self.median, np.zeros((extra, nf))])
        self.mad = np.concatenate([self.mad, np.zeros((extra, nf))])
        self.ready = np.concatenate([self.ready, np.zeros((extra, nf), bool)])
        self.capacity = capacity

    def reset(self, rows: np.ndarray) -> None:
        self.count[rows] = 0
        self.ready[rows] = False
        self.median[rows] = 0.0
        self.mad[rows] = 0.0

    @property
    def spread(self) -> np.ndarray:
        """Each feature's robust SD (the MAD scaled to an SD, at least its minimum): what z divides by."""
        return np.maximum(self.mad * MAD_TO_SD, self.min_spread)

    def update(self, x: np.ndarray) -> None:
        """Feed one second of features (capacity, n_features), NaN where invalid: the baseline on its own, through
        the same compiled step the scorer runs inside its per-second loop."""
        recurrences.compiled().update_baseline(np.ascontiguousarray(x, dtype=np.float64), self.count, self.buf,
                                               self.median, self.mad, self.ready, self.min_spread, self.drift)

    def z(self, x: np.ndarray) -> np.ndarray:
        """Baseline-normalised values; NaN where the baseline is not ready yet or x is NaN."""
        out = (x - self.median) / self.spread
        out[~self.ready] = np.nan
        return out
