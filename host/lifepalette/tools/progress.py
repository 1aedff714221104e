"""A small progress bar on stderr: redrawn in place on a terminal, a line per step otherwise (logs, CI)."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30):
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_item = ""

    def update(self, done: int, item: str = "") -> None:
        fraction = min(done / self.total, 1.0)
        if self.tty:
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {done / 1024:7.1f}/{self.total / 1024:.1f} KB"
                              f" {item[:40]:<40}")
            self.stream.flush()
        elif item and item != self._last_item:
            self.stream.write(f"{self.label}: {item} ({fraction:.0%})\n")
        self._last_item = item or self._last_item

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
