"""Who holds a hub database: the running hub (for its lifetime) or a restore (while it replaces the file).

An advisory `flock` on `<db>.lock`, which the kernel drops when the holder exits, even by kill -9: a stale lock file
never blocks anyone. The holder's pid and role are written into it for the error message.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from lifepalette.errors import UsageError


def lock_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.lock")


class DatabaseBusy(UsageError):
    pass


ERASE_ROLE = "lifepalette erase"  # a direct erase holds the lock while it works (no hub runs then)


class DatabaseLock:
    def __init__(self, db_path: str | Path, role: str):
        self.db_path = Path(db_path)
        self.role = role
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return lock_path(self.db_path).read_text().strip() or "another process"
        except OSError:
            return "another process"

    def acquire(self, wait_s: float = 0.0, wait_for: str | None = None) -> DatabaseLock:
        """Take the lock; DatabaseBusy if held. A holder in role `wait_for` (a brief one) is waited for, up to
        `wait_s`; any other holder is refused at once."""
        fd = os.open(lock_path(self.db_path), os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait_for is not None and self.holder().startswith(wait_for) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                raise DatabaseBusy(f"{self.db_path} is in use by {self.holder()}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.role} (pid {os.getpid()})\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> DatabaseLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
