"""The scorer's compiled kernels are ready before a hub's loops start: `scoring.jit.warm_up` (which the hub runs when it
is built) compiles or loads every specialisation that scoring later needs, so no scoring tick stalls the event loop
for a compile (seconds on a Pi, the first time after an install)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# each kernel's compiled specialisations (a kernel called only from other kernels has none of its own when those
# load from numba's cache: it is linked into them)
KERNELS = """
from lifepalette.scoring import jit


def kernels():
    return {d.py_func.__module__ + "." + d.py_func.__qualname__: [str(s) for s in d.signatures] for d in jit.KERNELS}
"""

AFTER_WARM_UP = KERNELS + """
import json
import numpy as np
from lifepalette.scoring import CoveScorer
from lifepalette.scoring.jit import warm_up
from lifepalette.sim.run import simulate

warm_up()
before = kernels()
# a cove unlike the warm-up's: the simulator's blocks (groups, snapshots, on_block) ...
sim = simulate(24, 4, scenario="confrontation", seed=3, show_progress=False)
# ... and the hub's records one by one, with gaps, a consent revision and an erasure
hub = CoveScorer(groups=[[1, 2, 3], [4, 5]])
rng = np.random.default_rng(1)
for t in range(90):
    for dev in range(1, 6):
        if rng.random() < 0.1:
            continue
        hub.add(dev, t, {"hr_bpm": 70 + rng.normal(), "rmssd_ms": 40.0, "scl": 500 + rng.normal(), "scr_per_min": 3,
                         "consent": 3 | (16 if t > 60 and dev == 2 else 0), "quality": 7, "hue": 10, "chroma": 100})
    if t == 70:
        hub.forget(4)
    hub.compute(detail=t % 10 == 0)
print(json.dumps({"before": before, "after": kernels()}))
"""

HUB_BUILT = KERNELS + """
import json, sys
from lifepalette.hub.core import Hub

Hub(sys.argv[1], cadence_s=1.0)
print(json.dumps(kernels()))
"""


def run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_warm_up_compiles_every_specialisation_scoring_needs() -> None:
    out = run(AFTER_WARM_UP)
    ready = [name for name, signatures in out["before"].items() if signatures]
    assert len(ready) >= 3, out["before"]  # the recurrences, the windows, the pair step at least
    assert out["after"] == out["before"], "scoring compiled a specialisation the warm-up did not"


def test_a_hub_is_built_with_its_kernels_ready(tmp_path: Path) -> None:
    kernels = run(HUB_BUILT, str(tmp_path / "hub.db"))
    assert len([name for name, signatures in kernels.items() if signatures]) >= 3, kernels


NO_LINALG = """
import sys
from lifepalette.scoring.jit import warm_up

warm_up()
print("scipy.linalg" in sys.modules)
import scipy.linalg  # still there for whoever needs it after the scorer

print(scipy.linalg.det([[2.0]]))
"""


def test_the_kernels_load_without_importing_scipy_linalg() -> None:
    # numba imports scipy.linalg (0.15 s) to look for BLAS wherever SciPy is installed; the kernels need none
    done = subprocess.run([sys.executable, "-c", NO_LINALG], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "2.0"]


def test_a_kernel_without_a_cache_location_still_compiles(caplog) -> None:
    # code with no file (here: exec'd) has no cache location, as a read-only install with no writable home has none
    from lifepalette.scoring import jit

    namespace: dict = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)  # noqa: S102
    compiled = jit.kernel(namespace["add_one"])
    jit.KERNELS.remove(compiled)
    assert compiled(41) == 42
    assert "compiles without a cache" in caplog.text


def test_a_first_start_says_it_compiles_and_the_next_loads_from_the_cache(tmp_path: Path) -> None:
    # NUMBA_CACHE_DIR as the hub's service sets it: empty after an install, filled by the first start
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    # (and counts numba's refreshes of its compiler registries: loading from the cache needs none)
    script = ("import sys\nfrom numba.core.base import BaseContext\nfrom lifepalette.hub.core import Hub\n"
              "refresh, refreshes = BaseContext.refresh, []\n"
              "BaseContext.refresh = lambda self: (refreshes.append(1), refresh(self))[1]\n"
              "Hub(sys.argv[1], cadence_s=1.0)\nprint('refreshes', len(refreshes), file=sys.stderr)\n")

    def start() -> str:
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "hub.db")], capture_output=True, text=True,
                              timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stderr

    first = start()
    assert "compiling the scorer's kernels" in first and "scoring kernels compiled in" in first
    assert any((tmp_path / "numba-cache").rglob("*.nbi")), "nothing cached"
    second = start()
    assert "compil" not in second, second
    assert "refreshes 0" in second and "refreshes 0" not in first, (first, second)
