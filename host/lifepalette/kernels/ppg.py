"""numpy twin of protocol/kernels/ppg.py: many wearers and hours at once, bit-identical to the streaming kernel.

The recursive part (DC tracker, auto-range, the two biquads) loops over time with every wearer in one int64
vector; the detector's running sums and blocks of interest are cumulative sums and run lengths over the whole
record; the per-beat logic (refractory, intervals, template) is the badge's own BeatTracker, called once per
candidate beat, so there is one definition of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from protocol.kernels import ppg as k

LIMIT = 1 << 30


@dataclass
class PpgEvents:
    """Candidate peaks of one wearer: processing time (sample index) and peak sample index."""

    n_event: np.ndarray
    peak: np.ndarray


@dataclass
class PpgBeats:
    """Beats (peaks that passed the refractory) of one wearer: sample index, Q8 fraction, detection time."""

    peak: list[int] = field(default_factory=list)
    frac_q8: list[int] = field(default_factory=list)
    n_event: list[int] = field(default_factory=list)

    def times_s(self, rate: int) -> np.ndarray:
        return (np.asarray(self.peak, dtype=np.float64) + np.asarray(self.frac_q8, dtype=np.float64) / 256) / rate


def _check(name: str, v: np.ndarray) -> None:
    if v.size and (v.max() >= LIMIT or v.min() < -LIMIT):
        raise OverflowError(f"{name} left the small-int range")


def band_pass(raw: np.ndarray, rate: int, invert: bool = True, check: bool = False) -> np.ndarray:
    """Stages 1-3 (DC tracker, auto-range, Q14 biquads) for raw counts of shape (wearers, samples)."""
    co = k.make_config(rate, invert)
    b0, b1, b2, a1, a2, a21, a22 = (int(co[i]) for i in range(7))
    kdc, period = int(co[k.C_KDC]), int(co[k.C_PERIOD])
    x_all = np.clip(np.atleast_2d(np.asarray(raw, dtype=np.int64)), 0, 0x3FFFF) << 4
    w, n = x_all.shape
    out = np.zeros((w, n), dtype=np.int64)
    if n == 0:
        return out
    dc = x_all[:, 0].copy()
    sh = np.zeros(w, dtype=np.int64)
    pk = np.zeros(w, dtype=np.int64)
    st = np.zeros((10, w), dtype=np.int64)  # x1, x2, y1, y2, err of both sections, like st[5:15]
    pcnt = period
    lim = k.U_LIMIT
    for i in range(n):
        x = x_all[:, i]
        dc += (x - dc) >> kdc
        d = dc - x if invert else x - dc
        u = d >> sh
        grow = ((u >= lim) | (u < -lim)) & (sh < k.SHIFT_MAX)
        while grow.any():
            sh[grow] += 1
            st[:, grow] >>= 1
            u = d >> sh
            grow = ((u >= lim) | (u < -lim)) & (sh < k.SHIFT_MAX)
        np.clip(u, -lim, lim - 1, out=u)
        np.maximum(pk, np.abs(u), out=pk)
        pcnt -= 1
        if pcnt <= 0:
            down = (pk < k.U_LOW) & (sh > 0)
            if down.any():
                sh[down] -= 1
                st[:, down] <<= 1
            pk[:] = 0
            pcnt = period
        acc = b0 * u + b1 * st[0] + b2 * st[1] - a1 * st[2] - a2 * st[3] + st[4]
        y = acc >> 14
        if check:
            _check("section 1 accumulator", acc)
        st[4] = acc - (y << 14)
        st[1] = st[0]
        st[0] = u
        st[3] = st[2]
        st[2] = y
        acc = ((y - (st[5] << 1) + st[6]) << 14) - a21 * st[7] - a22 * st[8] + st[9]
        v = acc >> 14
        if check:
            _check("section 2 accumulator", acc)
        st[9] = acc - (v << 14)
        st[6] = st[5]
        st[5] = y
        st[8] = st[7]
        st[7] = v
        out[:, i] = v
    return out


def _window_sum(cs: np.ndarray, end: np.ndarray, width: int) -> np.ndarray:
    """sum(sq[end - width + 1 .. end]) with sq = 0 before the start, from cs = [0, cumsum(sq)]."""
    hi = np.clip(end + 1, 0, None)
    lo = np.clip(end + 1 - width, 0, None)
    return cs[hi] - cs[lo]


def candidates(y: np.ndarray, rate: int) -> PpgEvents:
    """Stage 4 for one wearer's filtered signal: the blocks of interest and their peaks, as the kernel finds them."""
    co = k.make_config(rate, True)
    w1, w2, dly, maxb = int(co[k.C_W1]), int(co[k.C_W2]), int(co[k.C_D]), int(co[k.C_MAXB])
    n = y.size
    sq = np.where(y > 0, (y * y) >> 8, 0)
    cs = np.concatenate(([0], np.cumsum(sq)))
    idx = np.arange(n)
    s2 = _window_sum(cs, idx, w2)
    s1 = _window_sum(cs, idx - dly + (w1 >> 1), w1)
    t = s2 * w1
    inb = s1 * w2 > t + (t >> 6)
    edges = np.diff(np.concatenate(([0], inb.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # first n after the block
    keep = (ends < n) & (ends - starts >= w1) & (ends - starts <= maxb)
    starts, ends = starts[keep], ends[keep]
    ypad = np.concatenate((np.zeros(dly, dtype=np.int64), y))  # y[c] for c = n - dly, zero before the start
    peaks = np.empty(starts.size, dtype=np.int64)
    for j, (a, b) in enumerate(zip(starts, ends, strict=True)):
        peaks[j] = a - dly + int(np.argmax(ypad[a:b]))
    return PpgEvents(n_event=ends, peak=peaks)


class BatchPpg:
    """Replays one wearer's candidate peaks into the badge's BeatTracker, second by second."""

    def __init__(self, y: np.ndarray, rate: int, events: PpgEvents):
        self.y = y
        self.rate = rate
        self.events = events
        self.beats = k.BeatTracker(rate)
        self.found = PpgBeats()
        self._next = 0
        self._pad = k.ms_to_samples(125, rate) + 1

    def advance(self, second: int) -> None:
        """Everything the kernel does up to and including step() number `second` (0-based)."""
        end = (second + 1) * self.rate
        ev = self.events
        bt = self.beats
        h = bt.half
        y = self.y
        while self._next < ev.n_event.size and ev.n_event[self._next] < end:
            p = int(ev.peak[self._next])
            lo = p - h
            seg = y[max(lo, 0):p + h + 1]
            if lo < 0:
                seg = np.concatenate((np.zeros(-lo, dtype=np.int64), seg))
            frac = k.refine_q8(int(seg[h - 1]), int(seg[h]), int(seg[h + 1]))
            for i in range(bt.seg_len):
                bt.seg[i] = int(seg[i])
            if bt.peak(p & k.M20, frac):
                self.found.peak.append(p)
                self.found.frac_q8.append(frac)
                self.found.n_event.append(int(ev.n_event[self._next]))
            self._next += 1
        bt.tick(end & k.M20)


def analyse(raw: np.ndarray, rate: int, invert: bool = True, check: bool = False) -> list[BatchPpg]:
    """Run the PPG kernel over (wearers, samples) raw counts; returns one BatchPpg per wearer (call advance())."""
    y = band_pass(raw, rate, invert, check=check)
    return [BatchPpg(row, rate, candidates(row, rate)) for row in y]
