"""The badge's PPG kernel for long recordings: its sample loop compiled to WebAssembly, its beat logic as it is.

`StreamPpg` stands in for Pipeline.ppg (it has `beats` and `tick()`): `feed()` runs any number of samples through
protocol.kernels._ppg_pure.ppg_block, compiled from the badge's own source (lifepalette.kernels.wasm), keeping every
finished block of interest with the samples around its peak; `tick()` then gives the blocks detected in this second
to the badge's BeatTracker, exactly as PpgKernel._event does when the ring still holds them, and closes the second.
So the state carries across feeds of any size and the numbers equal the streaming kernel's bit for bit
(tests/test_kernels_stream.py). Where each algorithm step lives: filters and detector in ppg_block
(protocol/kernels/_ppg_pure.py), sub-sample refinement in refine_q8, intervals, HR, RMSSD and quality in BeatTracker
(protocol/kernels/ppg.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lifepalette.kernels.wasm import Layout, compile_module
from protocol.kernels import _ppg_pure
from protocol.kernels import ppg as k
from protocol.kernels.fixed import isqrt, sqrt_mean_round

# The kernel's state and config slots this driver reads (the layout ppg_block and PpgKernel share).
from protocol.kernels.ppg import _C_MASK, _S_EV, _S_LEN, _S_SHIFT, C_W1, S_N

SECONDS = 1024  # seconds of samples per compiled call
_OUT = 3  # per second: hr_bpm(), rmssd_ms(), hr_valid()
_BEAT = 3  # per beat: index after the detecting sample, peak index mod 2**20, Q8 fraction


def ppg_seconds(raw, seconds, rate, half, ring, sqr, st, co, bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs, out, beats):
    """PpgKernel's process(), _event() and tick() for `seconds` whole seconds of raw samples, compiled with
    ppg_block and the BeatTracker's methods: what Pipeline.step() would read after each second goes to `out`,
    every beat to `beats`. MicroPython-subset code like the kernel itself. Returns the number of beats."""
    m = co[_C_MASK]
    nb = 0
    for s in range(seconds):
        i = s * rate
        stop = i + rate
        while i < stop:
            i = ppg_block(raw, i, stop, ring, sqr, st, co)  # noqa: F821 -- resolved in the compiled module
            p = st[_S_EV]
            if p >= 0:  # PpgKernel._event
                st[_S_EV] = -1
                for j in range(2 * half + 1):
                    bt_seg[j] = ring[(p - half + j) & m]
                frac = refine_q8(bt_seg[half - 1], bt_seg[half], bt_seg[half + 1])  # noqa: F821
                if bt_peak(bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs, p, frac, st[_S_SHIFT]):  # noqa: F821
                    beats[nb * _BEAT] = i
                    beats[nb * _BEAT + 1] = p
                    beats[nb * _BEAT + 2] = frac
                    nb += 1
        bt_tick(bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs, st[S_N])  # noqa: F821
        out[s * _OUT] = bt_hr_bpm(bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs)  # noqa: F821
        out[s * _OUT + 1] = bt_rmssd_ms(bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs)  # noqa: F821
        out[s * _OUT + 2] = bt_hr_valid(bt, bt_seg, bt_tmpl, bt_ibis, bt_diffs)  # noqa: F821
    return nb


_ARRAYS = ("seg", "tmpl", "ibis", "diffs")


def _tracker_layout() -> Layout:
    """BeatTracker's int attributes (each one slot) and arrays, read off a fresh instance."""
    fresh = k.BeatTracker(64)
    ints = sorted(name for name, v in vars(fresh).items() if isinstance(v, int))
    return Layout(k.BeatTracker, "bt", ints, _ARRAYS)


_MODULE: str | None = None


def module_text() -> str:
    """The WebAssembly text of the compiled PPG path (callees first), one page of memory (grown per instance)."""
    global _MODULE
    if _MODULE is None:
        bt = _tracker_layout()
        methods = [(bt, getattr(k.BeatTracker, name))
                   for name in ("_interval", "_shape", "peak", "tick", "hr_bpm", "rmssd_ms", "hr_valid")]
        _MODULE = compile_module([isqrt, sqrt_mean_round, k.refine_q8, _ppg_pure._rescale, _ppg_pure.ppg_block, *methods,
                                  ppg_seconds], pages=1)
    return _MODULE


def compiled(engine, pages: int):
    """The compiled PPG path with `pages` of memory, from the user's cache when an earlier run built it from the
    same sources with the same wasmtime (translating and compiling cost a few tenths of a second per run; loading
    the cached machine code, milliseconds)."""
    import wasmtime

    from lifepalette.kernels import wasm
    from protocol.kernels import fixed

    try:
        release = importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        release = "unknown"
    digest = hashlib.sha256(f"{release} {platform.machine()} {pages}".encode())
    for module in (k, _ppg_pure, fixed, wasm, sys.modules[__name__]):  # the sources the module text is made of
        digest.update(Path(module.__file__).read_bytes())
    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lifepalette"
    except RuntimeError:  # no home directory: a cache nobody will find again
        folder = Path(tempfile.gettempdir()) / f"lifepalette-{os.getuid()}"
    path = folder / f"ppg-{digest.hexdigest()[:32]}.cwasm"
    try:
        return wasmtime.Module.deserialize_file(engine, str(path))
    except (OSError, wasmtime.WasmtimeError):  # not cached yet, or unreadable: build it
        pass
    text = module_text().replace('(memory (export "memory") 1)', f'(memory (export "memory") {pages})', 1)
    built = wasmtime.Module(engine, text)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(built.serialize())
        tmp.chmod(0o600)
        tmp.replace(path)  # whole or not at all, also with runs in parallel
    except OSError:  # a read-only home: build it every time
        pass
    return built


class CompiledPpg:
    """One wearer's PpgKernel and BeatTracker state in a WebAssembly instance's memory."""

    def __init__(self, rate: int, invert: bool):
        import wasmtime

        co = k.make_config(rate, invert)
        size = co[_C_MASK] + 1
        tracker = k.BeatTracker(rate)
        layout = _tracker_layout()
        self.rate = rate
        self.half = tracker.half
        cap = SECONDS * rate // co[C_W1] + 2  # a block lasts at least W1 samples and ends on a sample outside it
        lengths = {"st": _S_LEN, "co": len(co), "ring": size, "sqr": size, "raw": SECONDS * rate,
                   "bt": len(layout.ints), **{"bt_" + a: len(getattr(tracker, a)) for a in _ARRAYS},
                   "out": SECONDS * _OUT, "beats": cap * _BEAT}
        self.offsets: dict[str, int] = {}
        at = 0
        for name, n in lengths.items():
            self.offsets[name] = at * 4
            at += n
        pages = (at * 4 + 0xFFFF) >> 16
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        instance = wasmtime.Instance(self.store, compiled(engine, pages), [])
        exports = instance.exports(self.store)
        self._run = exports["ppg_seconds"]
        memory = exports["memory"]
        whole = np.ctypeslib.as_array(memory.data_ptr(self.store), shape=(memory.data_len(self.store),))
        ints = whole.view(np.int32)
        self.views = {name: ints[self.offsets[name] // 4:self.offsets[name] // 4 + n] for name, n in lengths.items()}
        self.views["co"][:] = co
        self.views["st"][_S_EV] = -1
        self.views["bt"][:] = [getattr(tracker, name) for name in layout.ints]
        for a in _ARRAYS:
            self.views["bt_" + a][:] = getattr(tracker, a)

    def run(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whole seconds (at most SECONDS, clamped to 0..0x3FFFF): per second (hr_bpm, rmssd_ms, hr_valid) and the
        beats (index after detection within `samples`, peak index mod 2**20, Q8 fraction)."""
        seconds = samples.size // self.rate
        self.views["raw"][:samples.size] = samples
        o = self.offsets
        nb = self._run(self.store, o["raw"], seconds, self.rate, self.half, o["ring"], o["sqr"], o["st"], o["co"],
                       o["bt"], o["bt_seg"], o["bt_tmpl"], o["bt_ibis"], o["bt_diffs"], o["out"], o["beats"])
        out = self.views["out"][:seconds * _OUT].reshape(seconds, _OUT).astype(np.int64)
        return out, self.views["beats"][:nb * _BEAT].reshape(nb, _BEAT).astype(np.int64)


class _SecondValues:
    """What telemetry_values reads from ppg.beats, for the second just closed."""

    def __init__(self) -> None:
        self.values = (0, -1, False)

    def hr_bpm(self) -> int:
        return self.values[0]

    def rmssd_ms(self) -> int:
        return self.values[1]

    def hr_valid(self) -> bool:
        return self.values[2]


class StreamPpg:
    """Pipeline.ppg for recordings of any length: feed() whole seconds of samples, tick() once per fed second.

    on_beat(peak_index, frac_q8) gets every beat with its absolute sample index (not wrapped at 2**20), in order,
    as its second is fed."""

    def __init__(self, rate: int, invert: bool, on_beat: Callable[[int, int], None] | None = None):
        self.rate = rate
        self.core = CompiledPpg(rate, invert)
        self.beats = _SecondValues()
        self.on_beat = on_beat
        self.fed = 0  # samples fed so far
        self._seconds: deque[tuple[int, int, bool]] = deque()

    def feed(self, samples: np.ndarray) -> None:
        x = np.clip(np.asarray(samples, dtype=np.int64), 0, 0x3FFFF)  # as PpgKernel.push clamps
        if x.size % self.rate:
            raise ValueError("feed whole seconds of samples")
        step = SECONDS * self.rate
        for at in range(0, x.size, step):
            part = x[at:at + step]
            out, beats = self.core.run(part)
            self._seconds.extend((hr, rm, bool(ok)) for hr, rm, ok in out.tolist())
            if self.on_beat is not None:
                for i, p, frac in beats.tolist():
                    n_after = self.fed + i
                    self.on_beat(n_after - ((n_after - p) & k.M20), frac)
            self.fed += part.size

    def tick(self) -> None:
        """Close the next fed second (its values were computed by feed())."""
        self.beats.values = self._seconds.popleft()
