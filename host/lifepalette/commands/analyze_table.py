"""The numeric columns of a recording (CSV or whitespace text), streamed in chunks for `lifepalette analyze`.

Rules (the same for every chunk, so the answer never depends on the file's size): the delimiter is the first
significant line's own (comma, semicolon or tab; else whitespace), so a timestamp column such as
"2016-11-24 13:58:58.081" stays one cell; blank lines and lines starting with # are skipped; every line has the first
line's number of cells; only the chosen columns must be numbers; the first significant line may be a header.

Most chunks take a vectorised path (the cells of many lines split at once, each number parsed by float() as the
line-by-line path does); a chunk with anything unusual (non-ASCII text, comments, blank or padded lines, a wrong
cell count, a non-number) is read line by line instead, which also names the offending line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lifepalette.errors import UsageError

CHUNK_CHARS = 1 << 20
LONGEST_LINE = 1 << 24
_ODD = ("#", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")  # comments and other line breaks: the slow path


def pick_columns(width: int, kind: str, column: int | None) -> list[int]:
    if column is not None:
        if not -width <= column < width:
            raise UsageError(f"--column {column}: the recording has {width} column(s)")
        return [column % width]
    if kind == "acc" and width >= 3:
        return [width - 3, width - 2, width - 1]
    return [width - 1]


def _cells(line: str, delimiter: str | None) -> list[str]:
    return [c.strip() for c in line.split(delimiter)] if delimiter else line.split()


class TableReader:
    """chunks() yields float64 arrays of shape (rows, len(picked)) in file order; errors are UsageErrors."""

    def __init__(self, path: Path, kind: str, column: int | None):
        self.path = path
        self.kind = kind
        self.column = column
        self.lineno = 0  # lines read so far (as str.splitlines counts them)
        self.delimiter: str | None = None
        self.width = 0
        self.picked: list[int] = []
        self.rows = 0
        self._first_row: list[float] | None = None

    def chunks(self) -> Iterator[np.ndarray]:
        for text in self._texts():
            if not self.width:
                text = self._first_line(text)
                if self._first_row is not None:
                    self.rows += 1
                    yield np.array([self._first_row], dtype=np.float64)
            block = self._fast(text) if text else None
            if block is None:
                block = self._slow(text)
            self.rows += block.shape[0]
            if block.shape[0]:
                yield block
        if not self.rows:
            raise UsageError(f"{self.path}: no samples")

    def _texts(self) -> Iterator[str]:
        """The file's text in pieces that end at a line break (universal newlines, like Path.read_text)."""
        try:
            with self.path.open() as f:
                carry = ""
                while True:
                    piece = f.read(CHUNK_CHARS)
                    if not piece:
                        break
                    cut = piece.rfind("\n") + 1
                    if cut == 0:
                        carry += piece
                        if len(carry) > LONGEST_LINE:
                            raise UsageError(f"{self.path}:{self.lineno + 1}: a line longer than {LONGEST_LINE} "
                                             "characters")
                        continue
                    yield carry + piece[:cut]
                    carry = piece[cut:]
                if carry:
                    yield carry
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {self.path}: "
                             f"{exc.strerror if isinstance(exc, OSError) else 'not text'}") from exc

    def _first_line(self, text: str) -> str:
        """Read lines up to the first significant one (it sets the delimiter and width); returns the rest."""
        lines = text.splitlines(keepends=True)
        for i, raw in enumerate(lines):
            line = raw.strip()
            self.lineno += 1
            if not line or line.startswith("#"):
                continue
            self.delimiter = next((d for d in (",", ";", "\t") if d in line), None)
            self.width = len(_cells(line, self.delimiter))
            self.picked = pick_columns(self.width, self.kind, self.column)
            try:
                self._first_row = [float(c) for c in (_cells(line, self.delimiter)[p] for p in self.picked)]
            except ValueError:
                self._first_row = None  # one header line
            return "".join(lines[i + 1:])
        return ""

    def _slow(self, text: str) -> np.ndarray:
        """Line by line, with the reader's checks and messages."""
        rows: list[list[float]] = []
        for raw in text.splitlines():
            self.lineno += 1
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            cells = _cells(line, self.delimiter)
            if len(cells) != self.width:
                raise UsageError(f"{self.path}:{self.lineno}: {len(cells)} columns where the first row has "
                                 f"{self.width}")
            try:
                rows.append([float(cells[c]) for c in self.picked])
            except ValueError:
                raise UsageError(f"{self.path}:{self.lineno}: not a number in {line[:40]!r}") from None
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self.picked))

    def _one_row_each(self, seps: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
        """Whether every line holds exactly width - 1 of the (sorted) separators: with that many in all, it is
        enough that each line's share, taken in order, starts and ends inside the line."""
        per = self.width - 1
        if seps.size != starts.size * per:
            return False
        if per == 0:
            return True
        rows = seps.reshape(starts.size, per)
        return bool((rows[:, 0] >= starts).all() and (rows[:, -1] <= ends).all())

    def _fast(self, text: str) -> np.ndarray | None:
        """All lines of `text` at once, or None when the chunk needs the line-by-line path."""
        if not text.isascii() or any(c in text for c in _ODD):
            return None
        body = text[:-1] if text.endswith("\n") else text
        if not body or body.endswith("\n"):
            return None
        b = np.frombuffer(body.encode("ascii"), dtype=np.uint8)
        breaks = np.flatnonzero(b == 10)
        starts = np.concatenate(([0], breaks + 1))
        ends = np.concatenate((breaks - 1, [b.size - 1]))
        edges = np.concatenate((b[starts], b[ends]))
        if ((edges == 32) | (edges == 9) | (edges == 10)).any():  # blank lines or cells padded at a line's ends
            return None
        d = self.delimiter
        if d is None:
            if self.width == 1:
                seps = np.zeros(0, dtype=np.intp) if " " not in body and "\t" not in body else None
            else:
                gaps = (b == 32) | (b == 9)
                seps = np.flatnonzero(gaps[:-1] & ~gaps[1:])  # the last blank of each gap between cells
            tokens = body.split()
        else:
            seps = np.flatnonzero(b == ord(d))
            tokens = body.replace("\n", d).split(d)
        if seps is None or not self._one_row_each(seps, starts, ends):
            return None
        n = starts.size
        try:
            cols = [np.fromiter(map(float, tokens[c::self.width]), dtype=np.float64, count=n) for c in self.picked]
        except ValueError:
            return None
        self.lineno += n
        return np.stack(cols, axis=1)
