"""Resampling recordings to a badge's rate (used by `lifepalette analyze` and the validation tests)."""

from __future__ import annotations

import numpy as np


def resample(x: np.ndarray, rate_in: float, rate_out: float) -> np.ndarray:
    """Box-filter then linearly interpolate `x` (float) from rate_in to rate_out, starting at t = 0.

    Down-sampling averages over one output period first (a cheap anti-alias filter, as a sensor's ADC would)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0 or rate_in <= 0 or rate_out <= 0:
        return np.zeros(0)
    if rate_in > rate_out:
        width = max(int(round(rate_in / rate_out)), 1)
        if width > 1 and x.size >= width:
            cs = np.concatenate(([0.0], np.cumsum(x)))
            smooth = (cs[width:] - cs[:-width]) / width
            # centre the box on each input sample
            pad_lo = (width - 1) // 2
            x = np.concatenate((np.full(pad_lo, smooth[0]), smooth, np.full(x.size - smooth.size - pad_lo,
                                                                              smooth[-1])))
    t_in = np.arange(x.size) / rate_in
    n_out = int(np.floor(t_in[-1] * rate_out)) + 1
    return np.interp(np.arange(n_out) / rate_out, t_in, x)


class Resampler:
    """resample() over a stream: push() chunks of `x` in order, then finish(); the concatenated outputs equal
    resample(whole x) bit for bit (the box filter's running sum continues across chunks in the same order of
    additions, and each output is interpolated between the same two input samples).

    Memory is one chunk plus the box width: nothing grows with the stream."""

    def __init__(self, rate_in: float, rate_out: float):
        self.rate_in = rate_in
        self.rate_out = rate_out
        self.width = max(int(round(rate_in / rate_out)), 1) if rate_in > rate_out > 0 else 1
        self.pad_lo = (self.width - 1) // 2
        self.seen = 0  # input samples pushed
        self._head: list[np.ndarray] = []  # the first inputs, held until `width` of them decide on the box filter
        self._cs = np.zeros(1)  # running sums cs[k - width .. k] of the box filter (cs[0] = 0)
        self._smoothed = 0  # box-filtered samples produced (the index of the next)
        self._last_smooth = 0.0
        self._xs = np.zeros(0)  # filtered samples not yet passed, from index self._x0
        self._x0 = 0
        self.emitted = 0  # output samples so far

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        self.seen += x.size
        if self.width > 1 and self._head is not None:
            self._head.append(x)
            if self.seen < self.width:
                return np.zeros(0)
            x = np.concatenate(self._head)
            self._head = None
            cs = np.concatenate(([0.0], np.cumsum(x)))
        elif self.width > 1:
            cs = np.concatenate((self._cs, np.cumsum(np.concatenate((self._cs[-1:], x)))[1:]))
        else:
            return self._interp(x, final=False)
        return self._interp(self._box(cs, final=False), final=False)

    def finish(self) -> np.ndarray:
        """The remaining outputs (call once, after the last push)."""
        if self.seen == 0 or self.rate_in <= 0 or self.rate_out <= 0:
            return np.zeros(0)
        if self.width > 1 and self._head is not None:  # fewer inputs than the box: no filter, as resample()
            self._head, head = None, np.concatenate(self._head)
            self.width = 1
            return self._interp(head, final=True)
        tail = self._box(self._cs, final=True) if self.width > 1 else np.zeros(0)
        return self._interp(tail, final=True)

    def _box(self, cs: np.ndarray, final: bool) -> np.ndarray:
        """Filtered samples for the running sums `cs` (cs[0] is the sum before input self._smoothed)."""
        w = self.width
        smooth = (cs[w:] - cs[:-w]) / w
        out = [smooth]
        if self._smoothed == 0 and smooth.size:
            out.insert(0, np.full(self.pad_lo, smooth[0]))  # centre the box on each input sample
        if smooth.size:
            self._last_smooth = smooth[-1]
        self._smoothed += smooth.size
        self._cs = cs[-w:] if cs.size >= w else cs
        if final:
            made = self.pad_lo + self._smoothed
            out.append(np.full(self.seen - made, self._last_smooth))
        return np.concatenate(out)

    def _interp(self, x: np.ndarray, final: bool) -> np.ndarray:
        xs = np.concatenate((self._xs, x))
        end = self._x0 + xs.size  # filtered samples known: indices self._x0 .. end - 1
        if end == 0:
            return np.zeros(0)
        t_in = np.arange(self._x0, end) / self.rate_in
        if final:
            n_out = int(np.floor(((self.seen - 1) / self.rate_in) * self.rate_out)) + 1
        else:  # outputs strictly before the last known input have both neighbours already
            n_out = int(np.ceil(t_in[-1] * self.rate_out)) + 1
            while n_out > self.emitted and (n_out - 1) / self.rate_out >= t_in[-1]:
                n_out -= 1
        j = np.arange(self.emitted, max(n_out, self.emitted))
        out = np.interp(j / self.rate_out, t_in, xs) if j.size else np.zeros(0)
        self.emitted += j.size
        # keep the input at or before the next output's time (it brackets that output)
        nxt = self.emitted / self.rate_out
        keep = max(int(np.searchsorted(t_in, nxt, side="right")) - 1, 0)
        self._xs = xs[keep:]
        self._x0 += keep
        return out
