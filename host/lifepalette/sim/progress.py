"""A small progress bar on stderr (no dependency): redraws at most five times a second, only on a terminal."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool | None = None, stream=None) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label:<10} [{bar:<30}] {frac * 100:5.1f}% {now - self._start:6.1f}s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.update(0)
            self.stream.write("\n")
            self.stream.flush()
