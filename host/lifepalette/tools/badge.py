"""A badge on a serial port, driven through mpremote's raw REPL (mpremote.transport_serial.SerialTransport).

Everything that reads the badge's files (hashes, listings) runs ON the badge in one round trip; the host only sends
code and parses `repr` lines back. Serial and transport failures become one-line LifePaletteErrors.
"""

from __future__ import annotations

import ast
import base64
import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lifepalette.errors import LifePaletteError, UsageError

MIN_MICROPYTHON = (1, 23, 0)  # .mpy v6.3 (mpy-cross 1.23+) and raw-paste mode
MPY_MAJOR = 6
WRITE_CHUNK = 1024  # bytes per raw-REPL write: ~1.4 KB of base64 fits a badge's heap with room to spare


class PortError(LifePaletteError):
    """The port cannot be used: missing, busy, no permission."""


class BadgeFilesystemFull(LifePaletteError):
    pass


@dataclass(frozen=True)
class BadgeInfo:
    platform: str  # sys.platform: "esp32", or "linux" for the unix port (a virtual badge)
    version: tuple[int, int, int]
    mpy_flags: int  # sys.implementation._mpy: .mpy version | sub-version << 8 | native arch << 10
    machine: str

    @property
    def version_text(self) -> str:
        return ".".join(str(v) for v in self.version)

    @property
    def is_unix_port(self) -> bool:
        return self.platform == "linux"

    @property
    def mpy_major(self) -> int:
        return self.mpy_flags & 0xFF


_PROBE = """
import sys
try:
    import os
    _m = os.uname().machine
except Exception:
    _m = getattr(sys.implementation, '_machine', '')
print(repr((sys.platform, tuple(sys.implementation.version[:3]), getattr(sys.implementation, '_mpy', 0), _m)))
"""

_HASHES = """
import hashlib, binascii
def _lp_hash(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(512)
    m = memoryview(b)
    try:
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(m[:n])
    except OSError:
        return None
    finally:
        f.close()
    return binascii.hexlify(h.digest()).decode()
for _p in %r:
    print(repr((_p, _lp_hash(_p))))
"""

_MAKEDIRS = """
import os
def _lp_isdir(p):
    try:
        return os.stat(p)[0] & 0x4000
    except OSError:
        return 0
for _d in %r:
    if not _lp_isdir(_d):
        os.mkdir(_d)
"""


def describe_port_error(port: str, exc: BaseException) -> PortError:
    """Turn the OSError/SerialException behind a failed open into a line that says what to do."""
    code = getattr(exc, "errno", None)
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]
    if code in (errno.EACCES, errno.EPERM):
        return PortError(f"permission denied on {port}: add yourself to the dialout group "
                         "(sudo usermod -aG dialout $USER, then log out and in) or install "
                         "deploy/99-lifepalette-badge.rules")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in str(exc):
        return PortError(f"port {port} is busy: another program has it open (a monitor, the hub, screen, "
                         "Thonny); close it and retry")
    if code == errno.ENOENT:
        return PortError(f"no such port {port}: is the badge plugged in? (`lifepalette doctor` lists ports)")
    return PortError(f"cannot open {port}: {exc}")


def is_url_port(port: str) -> bool:
    return "://" in port


def open_serial_checked(port: str, baud: int, timeout: float | None = None):
    """pyserial Serial opened exclusively, with one-line errors (used by monitor and for diagnosis)."""
    import serial

    if not is_url_port(port) and not os.path.exists(port):
        raise UsageError(f"no such port {port}: is the badge plugged in? (`lifepalette doctor` lists ports)")
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout, exclusive=True)
    except (OSError, serial.SerialException) as exc:
        raise describe_port_error(port, exc) from None


class Badge:
    """A raw-REPL session with a badge. Use as a context manager; `connect()` first."""

    def __init__(self, port: str, baud: int = 115200):
        self.port = port
        self.baud = baud
        self.transport = None
        self.info: BadgeInfo | None = None

    # -- connection -------------------------------------------------------------------------------------------------
    def open(self) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        if not is_url_port(self.port) and not os.path.exists(self.port):
            raise UsageError(f"no such port {self.port}: is the badge plugged in? (`lifepalette doctor` lists ports)")
        try:
            self.transport = SerialTransport(self.port, baudrate=self.baud)
        except TransportError:
            # mpremote swallows the reason; open once more with pyserial to find it (busy, permission, ...).
            probe = open_serial_checked(self.port, self.baud)
            probe.close()
            raise PortError(f"cannot open {self.port}") from None

    def connect(self) -> BadgeInfo:
        """Open the port, interrupt the running program and enter the raw REPL; returns what the badge is.

        The first entry skips the soft reset (it hangs the unix port); on real hardware a second
        entry soft-resets for a clean heap, which also runs boot.py and so finishes any pending switch.
        """
        self.open()
        self._enter_raw(soft_reset=False)
        self.info = self.probe()
        if not self.info.is_unix_port:
            self.transport.exit_raw_repl()
            self._enter_raw(soft_reset=True)
        return self.info

    def _enter_raw(self, soft_reset: bool) -> None:
        import contextlib
        import io

        from mpremote.transport import TransportError

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints what it got instead of a prompt
                self.transport.enter_raw_repl(soft_reset=soft_reset)
        except (TransportError, OSError) as exc:
            raise LifePaletteError(f"no MicroPython REPL answers on {self.port} ({exc}): is MicroPython flashed "
                                   "on the badge, and is the baud rate right?") from None

    def probe(self) -> BadgeInfo:
        platform, version, mpy_flags, machine = self.eval_lines(_PROBE)[0]
        return BadgeInfo(str(platform), tuple(int(v) for v in version), int(mpy_flags), str(machine))

    def close(self, *, soft_reset: bool = False) -> None:
        if self.transport is None:
            return
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            if soft_reset:
                self.transport.serial.write(b"\x04")  # Ctrl-D at the friendly REPL: soft reset, boot.py, main.py
                self.transport.serial.flush()
            self.transport.close()
        except OSError:
            pass
        self.transport = None

    def __enter__(self) -> Badge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- code execution ---------------------------------------------------------------------------------------------
    def exec(self, code: str, timeout: float = 10) -> bytes:
        from mpremote.transport import TransportError, TransportExecError

        try:
            out, err = self.transport.exec_raw(code, timeout=timeout)
        except TransportExecError as exc:  # pragma: no cover - exec_raw returns errors, exec raises them
            out, err = b"", exc.error_output.encode()
        except (TransportError, OSError) as exc:
            raise LifePaletteError(f"lost the badge on {self.port} ({exc}): check the cable and retry") from None
        if err:
            raise self._badge_error(err.decode(errors="replace"))
        return out

    def _badge_error(self, text: str) -> LifePaletteError:
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        if "ENOSPC" in text or "Errno 28" in text or last.endswith("OSError: 28"):
            return BadgeFilesystemFull("the badge's filesystem is full")
        return LifePaletteError(f"the badge reported: {last}")

    def eval_lines(self, code: str, timeout: float = 10) -> list:
        out = self.exec(code, timeout=timeout).decode(errors="replace")
        return [ast.literal_eval(line) for line in out.splitlines() if line.strip()]

    # -- files ------------------------------------------------------------------------------------------------------
    def hashes(self, paths: Iterable[str]) -> dict[str, str | None]:
        """sha256 hex of each path computed on the badge (None: missing or unreadable)."""
        paths = list(paths)
        if not paths:
            return {}
        return dict(self.eval_lines(_HASHES % (paths,), timeout=30))

    def makedirs(self, file_paths: Iterable[str]) -> None:
        dirs: list[str] = []
        for path in file_paths:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.append(d)
        if dirs:
            self.exec(_MAKEDIRS % (dirs,))

    def write_file(self, path: str, data: bytes, progress: Callable[[int], None] | None = None) -> None:
        self.exec(f"import binascii\n_lp_f = open({path!r}, 'wb')")
        try:
            for start in range(0, len(data), WRITE_CHUNK):
                chunk = base64.b64encode(data[start:start + WRITE_CHUNK]).decode()
                self.exec(f"_lp_f.write(binascii.a2b_base64({chunk!r}))")
                if progress:
                    progress(min(start + WRITE_CHUNK, len(data)))
        finally:
            if self.transport is not None and self.transport.in_raw_repl:
                try:
                    self.exec("_lp_f.close()")
                except LifePaletteError:
                    pass
        if progress and not data:
            progress(0)

    def read_file(self, path: str) -> bytes | None:
        code = (f"import binascii\ntry:\n    _lp_f = open({path!r}, 'rb')\nexcept OSError:\n    print('None')\n"
                "else:\n    while True:\n        _lp_b = _lp_f.read(768)\n        if not _lp_b:\n            break\n"
                "        print(repr(binascii.b2a_base64(_lp_b).strip()))\n    _lp_f.close()\n")
        lines = self.eval_lines(code, timeout=30)
        if lines == [None]:
            return None
        return b"".join(base64.b64decode(line) for line in lines)

    def free_bytes(self) -> int:
        (vfs,) = self.eval_lines("import os\n_s = os.statvfs('/')\nprint(repr((_s[0], _s[4])))")
        return int(vfs[0]) * int(vfs[1])

    def block_size(self) -> int:
        (size,) = self.eval_lines("import os\nprint(repr(os.statvfs('/')[0]))")
        return int(size)
