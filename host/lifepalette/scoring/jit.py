"""The scorer's compiled loops: numba's `njit`, cached on disk, rounding as numpy does.

The scorer's recurrences (each second depends on the one before, for every wearer) and its synchrony windows are loops
over small arrays: as numpy calls they cost more in call overhead than in arithmetic. Compiled, they run at the cost of
the arithmetic. The first run compiles them (10-15 s here); later runs load them from numba's cache beside the module
(or the user's cache directory where the package is read-only).

No fastmath: every operation rounds as numpy's does (no reassociation, no fused multiply-add), so a kernel gives the
same numbers whether the hub feeds it one second or the simulator a block, and the same numbers every run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

import numba
from numba.core.caching import FunctionCache
from numba.core.runtime import rtsys


def _load_array_maths_without_blas() -> None:
    """numba's array maths checks for BLAS when it loads, by importing scipy.linalg wherever SciPy is installed (0.15 s:
    the dev tools install SciPy, a hub does not). The scorer's kernels use no linear algebra, so SciPy's linalg is
    hidden while that module loads (numba then offers no np.dot in kernels): every install starts as fast as a hub."""
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        return
    sys.modules["scipy.linalg"] = None  # type: ignore[assignment]  # (import of it raises ImportError)
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules["scipy.linalg"]


_load_array_maths_without_blas()


class _CacheLoadingWithoutRefresh(FunctionCache):
    """numba's disk cache of one kernel, loading it without numba's `refresh()` of its typing and lowering registries
    first (0.12-0.16 s of CPU at the first load here, a third of the scorer's start-up): those registries serve
    compiling, which refreshes them itself (numba.core.compiler), while a cached kernel is machine code that needs
    only numba's runtime (the kernels allocate arrays), initialised here.

    This leans on numba's private FunctionCache (`_load_overload`), which is why numba is pinned to one release:
    tests/test_scoring_warm_up.py checks that a cached start refreshes nothing (and the hub then scores with it)."""

    def load_overload(self, sig: object, target_context: object) -> object:
        rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)


log = logging.getLogger("lifepalette.scoring")

F = TypeVar("F", bound=Callable)
KERNELS: list = []  # every dispatcher `kernel` made: what a check of "nothing compiles after the warm-up" reads


def kernel(fn: F) -> F:
    """Compile `fn` (nopython mode, cached; numpy's error model: x / 0 is inf or NaN, never an exception). Where no
    cache can be written (a read-only install with no writable NUMBA_CACHE_DIR or home), it still compiles, at every
    start: slower to start, never a hub that cannot score."""
    options = {"nogil": True, "error_model": "numpy"}
    try:
        dispatcher = numba.njit(cache=True, **options)(fn)
    except RuntimeError as error:  # numba: "cannot cache function ...: no locator available"
        log.warning("scoring kernel %s compiles without a cache: %s", fn.__name__, error)
        dispatcher = numba.njit(**options)(fn)
    else:
        dispatcher._cache = _CacheLoadingWithoutRefresh(fn)
    KERNELS.append(dispatcher)
    return dispatcher  # type: ignore[return-value]


WARM_UP_WEARERS = 3
WARM_UP_S = 60  # past the first synchrony step (SPAN_S) and a baseline learnt in WARM_UP_LEARN_S
WARM_UP_LEARN_S = 10
SLOW_NOTE_S = 1.0  # loading from the cache takes a few tenths of a second; compiling takes 10-15 s
_warm = False


def warm_up(slow_note: Callable[[], None] | None = None) -> float:
    """Score a tiny synthetic cove once, second by second (the hub's path), as blocks (the simulator's) and block by
    second (`on_second`), so that every kernel is compiled (the first run after an install) or loaded from numba's
    cache before a caller's loops start: the hub's first scoring tick must not stall its event loop for a compile.
    `slow_note()` runs (on a timer thread) if it takes over SLOW_NOTE_S: it is compiling, and a person may wait.
    Once per process: returns the seconds it took, 0.0 after the first call."""
    global _warm
    if _warm:
        return 0.0
    import threading
    import time

    import numpy as np

    from lifepalette.scoring.batch import score_features
    from lifepalette.scoring.fields import CONSENT_COLOUR, CONSENT_PHYSIO, FIELDS, Q_EDA, Q_HR, Q_SKIN
    from lifepalette.scoring.scorer import CoveScorer

    start = time.perf_counter()
    timer = threading.Timer(SLOW_NOTE_S, slow_note) if slow_note is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    t = np.arange(WARM_UP_S)
    wobble = np.sin(t[None, :] / 7.0 + np.arange(WARM_UP_WEARERS)[:, None])
    features = {
        "hr_bpm": 70.0 + 8.0 * wobble, "rmssd_ms": 40.0 + 5.0 * wobble, "scl": 400.0 + 40.0 * wobble,
        "scr_per_min": 3.0 + wobble, "hue": 90.0 + 0.0 * wobble, "chroma": 200.0 + 0.0 * wobble,
        "consent": np.full(wobble.shape, float(CONSENT_PHYSIO | CONSENT_COLOUR)),
        "quality": np.full(wobble.shape, float(Q_SKIN | Q_HR | Q_EDA)),
    }
    devs = list(range(1, WARM_UP_WEARERS + 1))
    score_features(devs, features, learn_s=WARM_UP_LEARN_S).compute()
    score_features(devs, {k: v[:, :WARM_UP_S // 2] for k, v in features.items()}, learn_s=WARM_UP_LEARN_S,
                   on_second=lambda _scorer, _t: None).compute()
    hub = CoveScorer(learn_s=WARM_UP_LEARN_S, grace_s=0)
    for second in range(WARM_UP_S):
        for row, dev in enumerate(devs):
            hub.add(dev, second, {name: float(values[row, second]) for name, values in features.items()
                                  if name in FIELDS})
        hub.compute(detail=False)
    hub.compute()
    if timer is not None:
        timer.cancel()
    _warm = True
    return time.perf_counter() - start
