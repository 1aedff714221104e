"""The erasure journal: every erasure, recorded as an intent BEFORE the database transaction that carries it out.

`<db>.erasure-journal` beside the database: append-only JSON lines, 0600, fsynced per line. Each intent has a
random id; the receipt the database writes for it carries the same id (`erasures.intent`). So whoever opens a
database can tell which journaled erasures it lacks and carry them out, whatever the clocks said:

- a restored backup lacks every erasure made after it was taken: restore re-applies them before anyone opens it;
- a crash or a failed transaction between the journal line and the commit leaves an intent without a receipt: the
  next open carries it out (erasure as a durable, idempotent intent: applying it twice changes nothing).

Only what must survive is written here (device, epoch bound, reason, clock state): never physiology.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lifepalette.errors import LifePaletteError

FORMAT = 1


@dataclass(frozen=True)
class ErasureIntent:
    """Erase `dev_id`'s physiology in `epoch`, or in every epoch up to `epochs_through` when `epoch` is None."""

    id: str
    at: float
    dev_id: int
    epoch: int | None
    reason: str
    epochs_through: int | None = None
    clock_synced: bool | None = None

    @classmethod
    def new(cls, dev_id: int, epoch: int | None, reason: str, *, epochs_through: int | None = None,
            clock_synced: bool | None = None) -> ErasureIntent:
        return cls(secrets.token_hex(16), time.time(), dev_id, epoch, reason, epochs_through, clock_synced)

    def to_line(self) -> str:
        return json.dumps({"v": FORMAT, **asdict(self)}, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> ErasureIntent:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("v") != FORMAT:
            raise ValueError("unknown journal line format")
        return cls(str(data["id"]), float(data["at"]), int(data["dev_id"]),
                   None if data["epoch"] is None else int(data["epoch"]), str(data["reason"]),
                   None if data.get("epochs_through") is None else int(data["epochs_through"]),
                   data.get("clock_synced"))


def journal_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.erasure-journal")


class JournalError(LifePaletteError):
    exit_code = 2


class ErasureJournal:
    def __init__(self, db_path: str | Path):
        self.path = journal_path(db_path)

    def append(self, intent: ErasureIntent) -> None:
        """Durably record an intent (written and fsynced before the erasure is attempted)."""
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            prefix = b""
            if os.fstat(fd).st_size and not self._ends_with_newline():
                prefix = b"\n"  # a line torn by a crash stays on its own line and is skipped when read
            os.write(fd, prefix + intent.to_line().encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # a new file's name is durable only once its directory is
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def read(self) -> list[ErasureIntent]:
        """Every intent, oldest first. A torn line (a crash mid-write, never fsynced) is skipped: its erasure was
        never attempted. Any other unreadable line is an error: silently skipping it could resurrect data."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"cannot read the erasure journal {self.path}: {exc.strerror}") from None
        intents = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                intents.append(ErasureIntent.from_line(line))
            except (ValueError, KeyError, TypeError):
                # `append` writes whole lines and starts afresh after a torn one, so a torn line never closed its
                # JSON object; anything else unreadable is damage, and guessing could resurrect erased data
                if line.rstrip().endswith("}"):
                    raise JournalError(f"{self.path} line {number} is unreadable; refusing to guess which "
                                       "erasures it held") from None
        return intents
