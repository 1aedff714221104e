"""A small progress bar on stderr (no dependency): only on a terminal, only once the run has taken 2 s (a quick run
stays quiet), redrawn at most five times a second."""

from __future__ import annotations

import time

SHOW_AFTER_S = 2.0
_RUN_START = time.monotonic()  # the run, not the phase: a 5 s run of three short phases still shows its bars


class Progress:
    def __init__(self, total: int, label: str, enabled: bool | None = None, stream=None,
                 show_after_s: float = SHOW_AFTER_S) -> None:
        import sys

        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.show_after_s = show_after_s
        self.done = 0
        self.drawn = False
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - _RUN_START < self.show_after_s:
            return
        if now - self._last > 0.2 or self.done >= self.total:
            self._last = now
            self.drawn = True
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label:<10} [{bar:<30}] {frac * 100:5.1f}% {now - self._start:6.1f}s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._last = 0.0
            self.update(0)
            if self.drawn:
                self.stream.write("\n")
                self.stream.flush()
