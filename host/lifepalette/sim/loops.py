"""The simulator's per-second recurrences, compiled: each second depends on the one before, so numpy runs them as a
Python loop of small array calls (two OU matrices and the SCL low-pass of a 1,000-wearer hour: ~70 ms of call
overhead). Compiled with numba (cached beside the module, like the scorer's kernels), they cost ~12 ms.

Every operation rounds as numpy's does: no fastmath (no fused multiply-add, no reassociation), each product and sum
in the array's own type, so the numbers are those of the numpy loops bit for bit (tests/test_sim_write_path.py).
These are not the scorer's kernels (lifepalette.scoring.jit.KERNELS, which the hub warms up): the hub never simulates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np

# imported before any compile: it loads numba's array maths without SciPy's BLAS check (0.15 s where SciPy is
# installed); the simulator scores with those kernels anyway
import lifepalette.scoring.jit  # noqa: F401

F = TypeVar("F", bound=Callable)
log = logging.getLogger("lifepalette.sim")


def _compiled(fn: F) -> F:
    """nopython, cached; where no cache can be written (a read-only install), compiled at every start instead."""
    options = {"nogil": True, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(fn)  # type: ignore[return-value]
    except RuntimeError as error:  # numba: "cannot cache function ...: no locator available"
        log.warning("simulator loop %s compiles without a cache: %s", fn.__name__, error)
        return numba.njit(**options)(fn)  # type: ignore[return-value]


@_compiled
def ou_steps(steps: np.ndarray, level: np.ndarray, phi: np.float32) -> None:
    """In place over (T, N) shocks: steps[t] = steps[t] + level * phi, level = steps[t] (level starts as x0)."""
    for t in range(steps.shape[0]):
        for i in range(steps.shape[1]):
            level[i] = steps[t, i] + level[i] * phi
            steps[t, i] = level[i]


@_compiled
def lowpass_rows(x: np.ndarray, phi: np.float32, out: np.ndarray) -> None:
    """out[i, t] = x[i, t] * (1 - phi) + level * phi, level = out[i, t] (level starts as x[i, 0])."""
    keep = np.float32(1) - phi
    for i in range(x.shape[0]):
        level = x[i, 0]
        for t in range(x.shape[1]):
            level = x[i, t] * keep + level * phi
            out[i, t] = level
