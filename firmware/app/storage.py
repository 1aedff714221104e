# Flash-backed state and the RAM store-and-forward ring.
#
# Atomic small-file writes for flash: write NAME.tmp, then rename over NAME (littlefs and POSIX rename replace
# atomically), so a power cut leaves either the old or the new file, never half of one. Paths are relative to the
# badge's root (the unix port's rooted VfsPosix breaks absolute renames).
#
# CounterStore: the frame counter must never repeat under one key. It reserves blocks of _BLOCK counters: the stored
# value is a limit no counter has reached yet. On boot the badge starts at the stored limit (skipping whatever the
# last run reserved but did not use) and writes limit + _BLOCK before sending; after that it writes once per _BLOCK
# frames (about one flash write per 17 min at 1 Hz). Writes are atomic (write_atomic). A corrupt counter file
# raises StorageError: the badge goes to safe mode rather than risk reusing a counter.
#
# Ring: the last SLOTS telemetry records (counter + the 13-byte plaintext record less its reserved zero byte),
# preallocated, so the badge can resend them as backlog frames until the hub acknowledges them (CMD_BACKLOG_ACK:
# every ctr <= n is acked).
import os

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read_text(path):
    """The file's text, or None if it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def write_atomic(path, text, hook=None):
    """Replace `path` with `text` atomically. `hook(stage)` is called after the temp file is complete ("temp"), the
    seam tests use to cut power between the temp write and the rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
    if hook is not None:
        hook("temp")
    try:
        os.rename(tmp, path)
    except OSError:
        # FAT (and some ports) refuse to rename over an existing file: remove first. The temp file stays complete,
        # and recover() below promotes it if power fails in between.
        remove(path)
        os.rename(tmp, path)


def recover(path, validate):
    """Finish or discard an interrupted write of `path` at boot.

    A leftover temp file is promoted only if `path` is missing and `validate(text)` accepts the temp file (the cut
    came between the remove and the rename); otherwise it is a stale or truncated write and is deleted."""
    tmp = path + ".tmp"
    if not exists(tmp):
        return None
    if not exists(path):
        text = read_text(tmp)
        if text is not None and validate(text):
            os.rename(tmp, path)
            return 1  # promoted
    remove(tmp)
    return 2  # discarded


_BLOCK = const(1024)


class StorageError(Exception):
    pass


def _read_int(path, lo, hi):
    """int stored as "LP <n>", None if missing; StorageError if corrupt."""
    text = read_text(path)
    if text is None:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] != "LP":
        raise StorageError(path + " corrupt")
    try:
        value = int(parts[1])
    except ValueError:
        raise StorageError(path + " corrupt") from None
    if value < lo or value > hi:
        raise StorageError(path + " out of range")
    return value


def _valid_int_file(text):
    parts = text.split()
    return len(parts) == 2 and parts[0] == "LP" and parts[1].isdigit()


class CounterStore:
    def __init__(self, path="counter.txt", block=_BLOCK):
        self.path = path
        self.block = block
        self.writes = 0
        recover(path, _valid_int_file)
        stored = _read_int(path, 0, 0xFFFFFFFF)
        self.next = 1 if stored is None else stored
        self.limit = self.next
        self._reserve()

    def _reserve(self):
        limit = self.next + self.block
        if limit > 0xFFFFFFFF:
            raise StorageError("frame counter exhausted: re-enrol the badge with a new key")
        write_atomic(self.path, "LP " + str(limit) + "\n")
        self.limit = limit
        self.writes += 1

    def take(self):
        """The next counter value; persists a new limit when a block is used up."""
        if self.next >= self.limit:
            self._reserve()
        ctr = self.next
        self.next = ctr + 1
        return ctr


def load_revision(path="consent.txt"):
    """The persisted consent revision (0-15); 0 when missing, StorageError when corrupt."""
    recover(path, _valid_int_file)
    value = _read_int(path, 0, 15)
    return 0 if value is None else value


def save_revision(revision, path="consent.txt"):
    write_atomic(path, "LP " + str(revision) + "\n")


_SLOT = const(16)  # ctr u32 LE | record bytes 0-11 (byte 12 is reserved, always 0): 600 slots = 10 min in 9.6 KB
_CHUNK = const(50)  # slots per bytearray: small blocks fit a fragmented heap where one 10 KB block may not


class Ring:
    """Unacknowledged telemetry records, oldest first; the oldest is overwritten when full."""

    def __init__(self, slots=600):
        self.slots = slots
        self.chunks = [bytearray(_CHUNK * _SLOT) for _ in range((slots + _CHUNK - 1) // _CHUNK)]
        self.start = 0  # index of the oldest entry
        self.count = 0
        self.cursor = 0  # resend position, as an offset from the oldest entry
        self.dropped = 0

    def _at(self, n):
        """(chunk, byte offset) of the n-th oldest entry."""
        i = (self.start + n) % self.slots
        return self.chunks[i // _CHUNK], (i % _CHUNK) * _SLOT

    def push(self, ctr, record):
        if self.count == self.slots:
            self.start = (self.start + 1) % self.slots
            self.count -= 1
            self.dropped += 1
            if self.cursor > 0:
                self.cursor -= 1
        b, i = self._at(self.count)
        b[i] = ctr & 0xFF
        b[i + 1] = (ctr >> 8) & 0xFF
        b[i + 2] = (ctr >> 16) & 0xFF
        b[i + 3] = (ctr >> 24) & 0xFF
        for k in range(12):
            b[i + 4 + k] = record[k]
        self.count += 1

    def ctr_at(self, n):
        """Counter of the n-th oldest entry."""
        b, i = self._at(n)
        return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)

    def record_into(self, n, out):
        b, i = self._at(n)
        for k in range(12):
            out[k] = b[i + 4 + k]
        out[12] = 0  # reserved

    def ack(self, upto):
        """Release every entry with ctr <= upto. Returns how many were released."""
        released = 0
        while self.count and self.ctr_at(0) <= upto:
            self.start = (self.start + 1) % self.slots
            self.count -= 1
            released += 1
        self.cursor = 0
        return released

    def next_resend(self, newest_allowed):
        """Index of the next entry to resend (ctr <= newest_allowed), cycling through the ring; -1 if none."""
        if self.cursor >= self.count or self.ctr_at(self.cursor) > newest_allowed:
            self.cursor = 0
        if self.count == 0 or self.ctr_at(self.cursor) > newest_allowed:
            return -1
        n = self.cursor
        self.cursor += 1
        return n

    def clear(self):
        """Consent revoked: forget every unsent record (and overwrite the plaintext)."""
        for b in self.chunks:
            for i in range(len(b)):
                b[i] = 0
        self.start = 0
        self.count = 0
        self.cursor = 0
