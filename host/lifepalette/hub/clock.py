"""Is the hub's clock trustworthy? A Pi has no real-time clock: until NTP syncs, its time is whatever it was at the
last shutdown (or 1970). The hub records the answer beside the timestamps it writes and shows it; it never corrects
a timestamp itself.

The kernel knows (adjtimex, read-only: the same call `timedatectl` and `ntptime` use): TIME_ERROR or the
STA_UNSYNC flag means no time service has disciplined the clock. `timedatectl` adds systemd's view where it runs. In
a container neither may answer: the state is then "unknown" (None), never a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from dataclasses import dataclass

TIME_ERROR = 5
STA_UNSYNC = 0x0040
# struct timex (LP64: x86_64 and aarch64): int modes; long offset, freq, maxerror, esterror; int status; ...
_STATUS_OFFSET = 40
_TIMEX_SIZE = 256


@dataclass(frozen=True)
class ClockState:
    synced: bool | None  # None: this machine cannot tell (no adjtimex, no timedatectl)
    source: str
    detail: str

    def as_dict(self) -> dict:
        return {"synced": self.synced, "source": self.source, "detail": self.detail}


def kernel_state() -> ClockState | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(_TIMEX_SIZE)  # modes = 0: read only
        rc = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return None
    if rc < 0:
        return None
    status = int.from_bytes(buf.raw[_STATUS_OFFSET:_STATUS_OFFSET + 4], "little", signed=True)
    synced = rc != TIME_ERROR and not status & STA_UNSYNC
    return ClockState(synced, "adjtimex", f"kernel clock state {rc}, status 0x{status & 0xFFFF:04x}")


def timedatectl_state(timeout_s: float = 3.0) -> ClockState | None:
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True,
                             timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None  # no systemd (a container): not an answer
    return ClockState(value == "yes", "timedatectl", f"NTPSynchronized={value}")


def clock_state(*, ask_systemd: bool = False) -> ClockState:
    """The best answer available; `ask_systemd` also runs timedatectl (doctor does, the hub's hot paths do not)."""
    for probe in ((timedatectl_state, kernel_state) if ask_systemd else (kernel_state,)):
        state = probe()
        if state is not None:
            return state
    return ClockState(None, "none", "neither adjtimex nor timedatectl answered")


def clock_synced() -> bool | None:
    return clock_state().synced


def appliance_state() -> dict:
    """What the operator console shows about the hub itself: is its clock trustworthy, which release and schema."""
    from lifepalette import __version__
    from lifepalette.hub.schema import CURRENT

    return {"clock": clock_state().as_dict(), "release": {"lifepalette": __version__, "schema_version": CURRENT}}
