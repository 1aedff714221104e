"""Run a command and report its own peak resident memory, wall and CPU time (tests and benches of `analyze`).

`measure(argv, out)` starts a small launcher (`python -m lifepalette.tools.peak_rss`) which starts the command: a
child forked straight from a large process (pytest, a bench that imported NeuroKit2) counts the parent's resident
pages in its ru_maxrss, a child of the small launcher does not. With `limit_mb` the command is killed as soon as its
high-water mark passes the limit, so a run that would take gigabytes and minutes fails in seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Usage:
    exit_code: int
    peak_mb: float
    wall_s: float
    cpu_s: float


def measure(argv: list[str], out: Path, limit_mb: float | None = None) -> Usage:
    """Run `argv` with stdout to `out`; its exit code (-9 when killed over the limit), peak RSS and times."""
    launcher = [sys.executable, "-m", "lifepalette.tools.peak_rss", str(out), str(limit_mb or 0), *argv]
    done = subprocess.run(launcher, capture_output=True, text=True, check=True)
    return Usage(**json.loads(done.stdout))


def _high_water_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmHWM:")), "VmHWM: 0 kB")
    return int(line.split()[1]) / 1024


def _launch(out: str, limit_mb: float, argv: list[str]) -> dict[str, float]:
    t0 = time.perf_counter()
    with open(out, "w") as sink:
        p = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL)
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.1):
            if _high_water_mb(p.pid) > limit_mb:
                p.kill()
                return

    if limit_mb > 0:
        threading.Thread(target=watch, daemon=True).start()
    _, status, usage = os.wait4(p.pid, 0)
    stop.set()
    return {"exit_code": os.waitstatus_to_exitcode(status), "peak_mb": usage.ru_maxrss / 1024,
            "wall_s": time.perf_counter() - t0, "cpu_s": usage.ru_utime + usage.ru_stime}


if __name__ == "__main__":
    print(json.dumps(_launch(sys.argv[1], float(sys.argv[2]), sys.argv[3:])))
