# The port's `os` with os.uname() of the chip the fakes play (the unix port has no uname), and the fault
# "fs-full": every write to flash raises OSError(ENOSPC), as littlefs does when the partition is full.
import builtins
import sys

_path = sys.path
sys.path = []
from os import *  # noqa: E402,F401,F403  (the unix port's own os: the file system)

sys.path = _path
del _path


class _Uname:
    sysname = "esp32"
    nodename = "esp32"
    release = "1.29.0"
    version = "v1.29.0 on 2026-01-01"
    machine = ""


def uname():
    import lp_fake  # not at import: lp_fake itself imports os

    _Uname.machine = lp_fake.SPEC[7]
    return _Uname


_open = builtins.open


def _open_on_flash(path, mode="r", *args):
    import lp_fake

    if lp_fake.due("fs-full") and ("w" in mode or "a" in mode or "+" in mode):
        raise OSError(28)  # ENOSPC
    return _open(path, mode, *args)


builtins.open = _open_on_flash
