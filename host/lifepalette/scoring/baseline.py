"""Per-wearer robust baseline (median and MAD), vectorised over wearers and features.

Learnt from each feature's first `learn_s` seconds after its first valid value (the same span of time for everyone:
a wearer whose sensor fails more often is not given a longer, later window that reaches into the session's first
rise), from at least `learn_s * MIN_VALID_SHARE` valid values; then updated slowly with a stochastic quantile tracker
(the median moves by a small step toward each new value, the MAD likewise toward |x - median|), and only from values
within TRACK_WITHIN spreads of it: a long confrontation does not become the new baseline (arousal would read as calm
again), while slow drifts (electrode settling, skin temperature) are followed.

Two spreads are kept. `spread` is the whole baseline wobble (MAD), used to gate the tracker and for synchrony.
`signal_spread` is the part of it that is the wearer's own physiology: the MAD minus the measurement noise, which is
estimated from successive differences (white noise adds to every one-second difference, slow physiology barely
does). Arousal divides by it, so a wearer with a noisier sensor (low PPG amplitude) or a smaller, noise-swamped
response (low EDA responders) is not read as calmer than they are: baseline SDs measure the person, not the sensor.
"""

from __future__ import annotations

import numpy as np

MAD_TO_SD = 1.4826
TRACK_WITHIN = 2.0
MIN_VALID_SHARE = 0.5
# the signal spread is never taken below this share of the whole spread: a baseline that is nearly all noise would
# otherwise blow single readings up into extreme z values
MIN_SIGNAL_SHARE = 0.35


class RobustBaseline:
    def __init__(self, min_spread: np.ndarray, learn_s: int = 180, drift_per_s: float = 1.0 / 1800.0,
                 denoise: np.ndarray | None = None) -> None:
        self.min_spread = np.asarray(min_spread, dtype=np.float64)
        self.n_features = self.min_spread.size
        self.learn_s = int(learn_s)
        self.min_count = max(1, int(round(self.learn_s * MIN_VALID_SHARE)))
        self.drift = float(drift_per_s)
        # features whose measurement noise is white at 1 Hz (so successive differences reveal it)
        self.denoise = np.zeros(self.n_features, bool) if denoise is None else np.asarray(denoise, bool)
        self.capacity = 0
        self.count = np.zeros((0, self.n_features), np.int32)
        self.age = np.zeros((0, self.n_features), np.int32)
        self.buf = np.zeros((0, self.n_features, self.learn_s), np.float32)
        self.median = np.zeros((0, self.n_features))
        self.mad = np.zeros((0, self.n_features))
        self.signal_share = np.ones((0, self.n_features))
        self.ready = np.zeros((0, self.n_features), bool)

    def grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        if extra <= 0:
            return
        nf = self.n_features
        self.count = np.concatenate([self.count, np.zeros((extra, nf), np.int32)])
        self.age = np.concatenate([self.age, np.zeros((extra, nf), np.int32)])
        self.buf = np.concatenate([self.buf, np.zeros((extra, nf, self.learn_s), np.float32)])
        self.median = np.concatenate([self.median, np.zeros((extra, nf))])
        self.mad = np.concatenate([self.mad, np.zeros((extra, nf))])
        self.signal_share = np.concatenate([self.signal_share, np.ones((extra, nf))])
        self.ready = np.concatenate([self.ready, np.zeros((extra, nf), bool)])
        self.capacity = capacity

    def reset(self, rows: np.ndarray) -> None:
        self.count[rows] = 0
        self.age[rows] = 0
        self.ready[rows] = False
        self.median[rows] = 0.0
        self.mad[rows] = 0.0
        self.signal_share[rows] = 1.0

    @property
    def spread(self) -> np.ndarray:
        return np.maximum(self.mad * MAD_TO_SD, self.min_spread)

    @property
    def signal_spread(self) -> np.ndarray:
        return np.maximum(self.mad * MAD_TO_SD * self.signal_share, self.min_spread)

    def update(self, x: np.ndarray) -> None:
        """Feed one second of features (capacity, n_features), NaN where invalid."""
        valid = ~np.isnan(x)
        learning = ~self.ready & (valid | (self.age > 0))
        if learning.any():
            self._learn(x, valid, learning)
        tracking = valid & self.ready & ~learning
        tracking &= np.abs(np.where(valid, x, 0.0) - self.median) < TRACK_WITHIN * self.spread
        if tracking.any():
            step = self.drift * self.spread
            xs = np.where(tracking, x, self.median)
            self.median += np.where(tracking, step * np.sign(xs - self.median), 0.0)
            dev = np.abs(xs - self.median)
            self.mad += np.where(tracking, step * np.sign(dev - self.mad) / MAD_TO_SD, 0.0)

    def _learn(self, x: np.ndarray, valid: np.ndarray, learning: np.ndarray) -> None:
        store = learning & valid
        rows, cols = np.nonzero(store)
        self.buf[rows, cols, self.count[rows, cols]] = x[rows, cols]
        self.count[rows, cols] += 1
        self.age += learning
        done = learning & (self.age >= self.learn_s)
        if not done.any():
            return
        enough = done & (self.count >= self.min_count)
        self.count[done & ~enough] = 0  # too few valid values in the window: start over from the next one
        self.age[done & ~enough] = 0
        if not enough.any():
            return
        rows, cols = np.nonzero(enough)
        counts = self.count[rows, cols]
        for n in np.unique(counts):  # windows of equal length together (usually one or a few lengths)
            sel = counts == n
            r, c = rows[sel], cols[sel]
            samples = self.buf[r, c, :n].astype(np.float64)
            med = np.median(samples, axis=1)
            mad = np.median(np.abs(samples - med[:, None]), axis=1)
            self.median[r, c] = med
            self.mad[r, c] = mad
            self.signal_share[r, c] = self._signal_share(samples, mad, c)
        self.ready[rows, cols] = True

    def _signal_share(self, samples: np.ndarray, mad: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """sqrt(1 - noise variance / total variance), both robust: noise from the MAD of successive differences."""
        if samples.shape[1] < 3:
            return np.ones(samples.shape[0])
        diff_mad = np.median(np.abs(np.diff(samples, axis=1)), axis=1)
        noise_var = (diff_mad * MAD_TO_SD) ** 2 / 2.0
        total_var = (mad * MAD_TO_SD) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.sqrt(np.clip(1.0 - noise_var / total_var, MIN_SIGNAL_SHARE**2, 1.0))
        share = np.where(total_var > 0, share, 1.0)
        return np.where(self.denoise[cols], share, 1.0)

    def z(self, x: np.ndarray) -> np.ndarray:
        """Baseline-normalised values by the whole spread; NaN where the baseline is not ready yet or x is NaN."""
        out = (x - self.median) / self.spread
        out[~self.ready] = np.nan
        return out

    def z_signal(self, x: np.ndarray) -> np.ndarray:
        """Baseline-normalised values by the physiological (noise-free) spread, for arousal."""
        out = (x - self.median) / self.signal_spread
        out[~self.ready] = np.nan
        return out
