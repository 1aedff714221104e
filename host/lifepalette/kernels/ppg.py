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


def band_pass(raw: np.ndarray, rate: int, invert: bool = True, check: bool = False,
              with_shift: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Stages 1-3 (DC tracker, auto-range, Q14 biquads) for raw counts of shape (wearers, samples).

    Time-major history arrays make the biquads' delayed samples views rather than copies, and each section is one
    small integer matmul of its coefficients with the last three rows: about 20 numpy calls per time step for all
    wearers together. The largest auto-range peak is folded in from the history only when it is needed."""
    co = k.make_config(rate, invert)
    b0, b1, b2, a1, a2, a21, a22 = (int(co[i]) for i in range(7))
    kdc, period = int(co[k.C_KDC]), int(co[k.C_PERIOD])
    x_all = np.ascontiguousarray((np.clip(np.atleast_2d(np.asarray(raw, dtype=np.int64)), 0, 0x3FFFF) << 4).T)
    n, w = x_all.shape
    out = np.zeros((n, w), dtype=np.int64)
    shifts = np.zeros((n, w), dtype=np.int64)
    if n == 0:
        return (out.T, shifts.T) if with_shift else out.T
    # Rolling history: rows 0, 1 hold the two previous samples (zero at the start), sample i lives in row
    # i % CHUNK + 2, and at each wrap the last two rows move to the top. Columns: [u, y] and [y, v].
    chunk = 4096
    h1 = np.zeros((chunk + 2, 2, w), dtype=np.int64)
    h2 = np.zeros((chunk + 2, 2, w), dtype=np.int64)
    c1 = np.array([[b2, -a2, b1, -a1, b0, 0]], dtype=np.int64)
    c2 = np.array([[1 << 14, -a22, -2 << 14, -a21, 1 << 14, 0]], dtype=np.int64)
    e1 = np.zeros(w, dtype=np.int64)
    e2 = np.zeros(w, dtype=np.int64)
    dc = x_all[0].copy()
    sh = np.zeros(w, dtype=np.int64)
    pk = np.zeros(w, dtype=np.int64)
    folded = 2  # history rows before this one are already in pk
    pcnt = period
    lim = k.U_LIMIT
    for i in range(n):
        r = i % chunk + 2
        if r == 2 and i:
            pk = np.maximum(pk, np.abs(h1[folded:, 0]).max(axis=0)) if folded < chunk + 2 else pk
            folded = 2
            h1[:2] = h1[chunk:]
            h2[:2] = h2[chunk:]
        x = x_all[i]
        t = x - dc
        t >>= kdc
        dc += t
        d = dc - x if invert else x - dc
        u = h1[r, 0]
        np.right_shift(d, sh, out=u)
        if u.max() >= lim or u.min() < -lim:
            pk = np.maximum(pk, np.abs(h1[folded:r, 0]).max(axis=0)) if r > folded else pk
            folded = r
            grow = ((u >= lim) | (u < -lim)) & (sh < k.SHIFT_MAX)
            while grow.any():
                sh[grow] += 1
                h1[r - 2:r, :, grow] >>= 1
                h2[r - 2:r, :, grow] >>= 1
                e1[grow] >>= 1
                e2[grow] >>= 1
                np.right_shift(d, sh, out=u)
                grow = ((u >= lim) | (u < -lim)) & (sh < k.SHIFT_MAX)
            np.clip(u, -lim, lim - 1, out=u)
        pcnt -= 1
        if pcnt <= 0:
            pk = np.maximum(pk, np.abs(h1[folded:r + 1, 0]).max(axis=0))
            down = (pk < k.U_LOW) & (sh > 0)
            if down.any():
                sh[down] -= 1
                h1[r - 2:r, :, down] <<= 1
                h2[r - 2:r, :, down] <<= 1
                e1[down] <<= 1
                e2[down] <<= 1
                u[down] = d[down] >> sh[down]
            pk[:] = 0
            folded = r + 1
            pcnt = period
        acc = (c1 @ h1[r - 2:r + 1].reshape(6, w))[0]
        acc += e1
        y = acc >> 14
        e1 = acc - (y << 14)
        h1[r, 1] = y
        h2[r, 0] = y
        acc2 = (c2 @ h2[r - 2:r + 1].reshape(6, w))[0]
        acc2 += e2
        v = acc2 >> 14
        e2 = acc2 - (v << 14)
        h2[r, 1] = v
        out[i] = v
        shifts[i] = sh
        if check:
            _check("section 1 accumulator", acc)
            _check("section 2 accumulator", acc2)
    return (out.T, shifts.T) if with_shift else out.T


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
    if starts.size:
        # first maximum of each block, as the kernel's strict `>` scan finds it
        best = np.maximum.reduceat(ypad, np.column_stack((starts, ends)).ravel())[::2]
        edge = np.zeros(n + 1, dtype=np.int64)
        edge[starts] += 1
        edge[ends] -= 1
        inside = np.cumsum(edge)[:n] > 0
        first_pos = np.zeros(n, dtype=np.int64)
        first_pos[starts] = 1
        block_of = np.cumsum(first_pos) - 1
        pos = np.flatnonzero(inside)
        hit = pos[ypad[pos] == best[block_of[pos]]]
        _, first = np.unique(block_of[hit], return_index=True)
        peaks = hit[first] - dly
    else:
        peaks = np.zeros(0, dtype=np.int64)
    return PpgEvents(n_event=ends, peak=peaks)


def refine_all(ym: np.ndarray, y0: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """protocol.kernels.ppg.refine_q8 for many peaks at once (numpy // floors like Python's)."""
    den = ym - 2 * y0 + yp
    safe = np.where(den < 0, den, -1)
    f = np.clip(((ym - yp) * 128) // safe, -128, 128)
    return np.where(den < 0, f, 0)


class BatchPpg:
    """Replays one wearer's candidate peaks into the badge's BeatTracker, second by second.

    The shape segments and sub-sample refinements of all candidates are cut out of the filtered signal at once;
    the tracker then sees exactly what the streaming kernel's ring buffer would have given it."""

    def __init__(self, y: np.ndarray, rate: int, events: PpgEvents, shifts: np.ndarray):
        self.rate = rate
        self.events = events
        self.beats = k.BeatTracker(rate)
        self.found = PpgBeats()
        self._next = 0
        h = self.beats.half
        ypad = np.concatenate((np.zeros(h, dtype=np.int64), y, np.zeros(h + 1, dtype=np.int64)))
        idx = events.peak[:, None] + np.arange(2 * h + 1)[None, :]  # ypad index of y[p - h + j]
        segs = ypad[idx] if events.peak.size else np.zeros((0, 2 * h + 1), dtype=np.int64)
        self._segs = segs.tolist()
        self._fracs = refine_all(segs[:, h - 1], segs[:, h], segs[:, h + 1]).tolist() if segs.size else []
        self._peaks = events.peak.tolist()
        self._ends = events.n_event.tolist()
        self._shifts = shifts[events.n_event].tolist()  # auto-range shift after the detecting sample

    def advance(self, second: int) -> None:
        """Everything the kernel does up to and including step() number `second` (0-based)."""
        end = (second + 1) * self.rate
        bt = self.beats
        ends = self._ends
        j = self._next
        while j < len(ends) and ends[j] < end:
            p = self._peaks[j]
            frac = self._fracs[j]
            bt.seg = self._segs[j]  # a list in place of the ring copy; _shape works on it in place
            if bt.peak(p & k.M20, frac, self._shifts[j]):
                self.found.peak.append(p)
                self.found.frac_q8.append(frac)
                self.found.n_event.append(ends[j])
            j += 1
        self._next = j
        bt.tick(end & k.M20)


def analyse(raw: np.ndarray, rate: int, invert: bool = True, check: bool = False) -> list[BatchPpg]:
    """Run the PPG kernel over (wearers, samples) raw counts; returns one BatchPpg per wearer (call advance())."""
    y, shifts = band_pass(raw, rate, invert, check=check, with_shift=True)
    return [BatchPpg(row, rate, candidates(row, rate), sh) for row, sh in zip(y, shifts, strict=True)]
