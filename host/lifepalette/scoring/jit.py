"""The scorer's compiled loops: numba's `njit`, cached on disk, rounding as numpy does.

The scorer's recurrences (each second depends on the one before, for every wearer) and its synchrony windows are loops
over small arrays: as numpy calls they cost more in call overhead than in arithmetic. Compiled, they run at the cost of
the arithmetic. The first run compiles them (a few seconds); later runs load them from numba's cache beside the module
(or the user's cache directory where the package is read-only).

No fastmath: every operation rounds as numpy's does (no reassociation, no fused multiply-add), so a kernel gives the
same numbers whether the hub feeds it one second or the simulator a block, and the same numbers every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba

F = TypeVar("F", bound=Callable)


def kernel(fn: F) -> F:
    """Compile `fn` (nopython mode, cached; numpy's error model: x / 0 is inf or NaN, never an exception)."""
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)  # type: ignore[return-value]
