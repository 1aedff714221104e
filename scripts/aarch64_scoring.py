"""Does the hub's compiled scorer give the same bits on a Raspberry Pi's architecture (aarch64) as here?

`make check-aarch64` (scripts/check-aarch64.sh) runs this with the project's venv; it scores one seeded cohort here
and again in a Debian arm64 Python 3.11 under qemu-user emulation, with the same pinned numpy, numba and llvmlite, and
compares every floating-point array the scorer holds at the end, bit for bit, and the scores' JSON text. Emulated
times are not a Pi's: only the bits are checked. Exit 0: identical; 1: they differ (the differences are listed).

The cohort is made here only: numpy's transcendental functions may round differently on another CPU, and the check is
about the scorer, so both sides score the same stored features.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def make_cohort(path: Path, wearers: int, seconds: int) -> None:
    from lifepalette.sim.cohort import make_cohort as draw
    from lifepalette.sim.features import feature_records

    cohort = draw(wearers, seconds, "healing", seed=5)
    features = feature_records(cohort)
    groups = [members for _gid, members in sorted(cohort.dialogue.items())]
    np.savez(path, dev_ids=cohort.dev_ids, groups=json.dumps(groups), **{"f_" + k: v for k, v in features.items()})


def float_arrays(obj: object, prefix: str, out: dict[str, np.ndarray], depth: int = 2) -> None:
    """Every floating-point numpy array among obj's attributes, and its attributes' attributes (the scorer's state)."""
    for name, value in sorted(vars(obj).items()):
        key = f"{prefix}.{name}"
        if isinstance(value, np.ndarray):
            if value.dtype.kind == "f":
                out[key] = value
        elif depth > 1 and hasattr(value, "__dict__") and type(value).__module__.startswith("lifepalette"):
            float_arrays(value, key, out, depth - 1)


def score(cohort: Path, out: Path) -> None:
    """Score the stored cohort; write the scorer's float arrays and the scores' JSON into `out` (.npz)."""
    started = time.perf_counter()
    from lifepalette.scoring import jit
    from lifepalette.scoring.batch import score_features

    data = np.load(cohort)
    features = {key[2:]: data[key] for key in data.files if key.startswith("f_")}
    imported = time.perf_counter()
    jit.warm_up(None)
    ready = time.perf_counter()
    scorer = score_features(data["dev_ids"], features, json.loads(str(data["groups"])))
    scores = scorer.compute()
    done = time.perf_counter()
    arrays: dict[str, np.ndarray] = {}
    float_arrays(scorer, "scorer", arrays)
    np.savez(out, scores=json.dumps(scores, sort_keys=True), **arrays)
    print(f"imports {imported - started:.1f} s, kernels compiled or loaded {ready - imported:.1f} s, "
          f"scoring {done - ready:.1f} s", file=sys.stderr)


def differences(here: Path, there: Path) -> list[str]:
    a, b = np.load(here), np.load(there)
    found = []
    if set(a.files) != set(b.files):
        found.append(f"different arrays: {sorted(set(a.files) ^ set(b.files))}")
    for key in sorted(set(a.files) & set(b.files)):
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            found.append(f"{key}: {x.dtype}{x.shape} here, {y.dtype}{y.shape} on aarch64")
        elif key == "scores":
            if str(x) != str(y):
                found.append("scores: the JSON text differs")
        else:
            bits = x.view(f"u{x.itemsize}") != y.view(f"u{y.itemsize}")
            if bits.any():
                found.append(f"{key}: {int(bits.sum())} of {x.size} values differ in their bits")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="the arm64 root (usr/bin/python3.11) and its site folder (site/)")
    parser.add_argument("--wearers", type=int, default=40)
    parser.add_argument("--seconds", type=int, default=900)
    parser.add_argument("--score", nargs=2, type=Path, metavar=("COHORT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score:
        score(*args.score)
        return 0
    if args.root is None:
        parser.error("--root is required")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_cohort(work / "cohort.npz", args.wearers, args.seconds)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(work / "numba-x86")}
        subprocess.run([sys.executable, __file__, "--score", work / "cohort.npz", work / "here.npz"], env=env,
                       check=True)
        root = args.root.resolve()
        env = {"PATH": os.environ["PATH"], "PYTHONNOUSERSITE": "1", "NUMBA_CACHE_DIR": str(work / "numba-arm64"),
               "PYTHONPATH": os.pathsep.join([str(REPO / "host"), str(REPO), str(root / "site")])}
        print(f"scoring {args.wearers} wearers x {args.seconds} s on aarch64 under qemu (a first compile there takes "
              "minutes)", file=sys.stderr)
        subprocess.run(["qemu-aarch64-static", "-L", root / "rootfs", root / "rootfs/usr/bin/python3.11", __file__,
                        "--score", work / "cohort.npz", work / "there.npz"], env=env, check=True)
        found = differences(work / "here.npz", work / "there.npz")
        compared = np.load(work / "here.npz")
        values = sum(compared[k].size for k in compared.files if k != "scores")
    if found:
        print("aarch64 differs from this machine:\n  " + "\n  ".join(found))
        return 1
    print(f"aarch64: the scorer's {len(compared.files) - 1} float arrays ({values} values) and the scores' JSON are "
          "bit-identical to this machine's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
