"""A badge on a pseudo-terminal (`PtyBadge`): the real MicroPython unix port, reachable as a serial port.

Not to be confused with `lifepalette.virtual_badge.VirtualBadge` (the firmware talking UDP to a hub): this one is a
badge on a USB serial port, for the flash, monitor, doctor and build tools.

Two linked ptys and a relay thread (docs/ARCHITECTURE.md, "Testing without hardware"): MicroPython runs with stdin/stdout on pty A's slave; tools open
pty B's slave by name (`badge.port`), exactly as they would open /dev/ttyUSB0. The relay copies bytes between the
two masters, so the port name survives a "power cycle" (`restart()`), as a USB serial adapter's does.

The badge's filesystem is a host folder mounted as the badge's root (VfsPosix), so tests can inspect it, or with
`lfs_kb` a littlefs image in RAM of that size (like the ESP32's flash partition, and small enough to fill).
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import tty
from pathlib import Path

from lifepalette.paths import micropython_binary, micropython_path

_POSIX_ROOT = """
import vfs, os
vfs.umount('/')
vfs.mount(vfs.VfsPosix({root!r}), '/')
os.chdir('/')
import sys
sys.path[:] = ['', '.frozen', '/lib']  # as on an ESP32 (-i would put the startup script's folder first)
"""

_LFS_ROOT = """
import vfs, os
class _RamBlocks:
    def __init__(self, size, count):
        self.size = size
        self.data = bytearray(size * count)
    def readblocks(self, n, buf, off=0):
        a = n * self.size + off
        buf[:] = self.data[a:a + len(buf)]
    def writeblocks(self, n, buf, off=0):
        a = n * self.size + off
        self.data[a:a + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.size
        if op == 5:
            return self.size
        return 0
_bd = _RamBlocks(512, {blocks})
vfs.VfsLfs2.mkfs(_bd)
vfs.umount('/')
vfs.mount(vfs.VfsLfs2(_bd), '/')
os.chdir('/')
import sys
sys.path[:] = ['', '.frozen', '/lib']
"""


class PtyBadge:
    def __init__(self, root: Path, *, lfs_kb: int | None = None, heapsize: str = "2M"):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lfs_kb = lfs_kb
        self.heapsize = heapsize
        self.proc: subprocess.Popen | None = None
        self._host_master, self._host_slave = os.openpty()
        tty.setraw(self._host_slave)  # no echo or CR/LF mangling before a tool configures the port
        self.port = os.ttyname(self._host_slave)
        self._badge_master: int | None = None
        self._stop = threading.Event()
        self._relay = threading.Thread(target=self._pump, daemon=True)
        self._relay.start()

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def startup_code(self) -> str:
        if self.lfs_kb:
            return _LFS_ROOT.format(blocks=self.lfs_kb * 2)
        return _POSIX_ROOT.format(root=str(self.root.resolve()))

    def start_repl(self) -> PtyBadge:
        """MicroPython's REPL (raw REPL included) on the port, with the badge filesystem as root."""
        script = self.root.parent / f".{self.root.name}_startup.py"
        script.write_text(self.startup_code())
        return self._spawn([micropython_binary(), "-X", f"heapsize={self.heapsize}", "-i", str(script)], {})

    def start_script(self, script: Path, *args: str) -> PtyBadge:
        """Run a program whose stdout is the badge's USB serial, with protocol/ and firmware/ importable."""
        return self._spawn([micropython_binary(), "-X", f"heapsize={self.heapsize}", str(script), *args],
                           {"MICROPYPATH": micropython_path()})

    def _spawn(self, cmd: list[str], env_extra: dict[str, str]) -> PtyBadge:
        self.kill()
        master, slave = os.openpty()
        tty.setraw(slave)
        env = dict(os.environ, **env_extra)
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=self.root, env=env,
                                     start_new_session=True)
        os.close(slave)
        self._badge_master = master
        return self

    def restart(self) -> PtyBadge:
        """A power cycle: the process dies (RAM lost), the port name and the folder filesystem stay."""
        return self.start_repl()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None
        if self._badge_master is not None:
            master, self._badge_master = self._badge_master, None
            os.close(master)

    def close(self) -> None:
        self.kill()
        self._stop.set()
        self._relay.join(timeout=2)
        os.close(self._host_master)
        os.close(self._host_slave)

    def __enter__(self) -> PtyBadge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the relay --------------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        while not self._stop.is_set():
            badge = self._badge_master
            fds = [self._host_master] + ([badge] if badge is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
                for fd in ready:
                    data = os.read(fd, 4096)
                    target = self._badge_master if fd == self._host_master else self._host_master
                    if data and target is not None:
                        os.write(target, data)
            except OSError:
                continue  # the badge process died or was replaced mid-read: keep relaying for the next one

    # -- inspecting the badge without a tool ------------------------------------------------------------------------
    def run_boot(self, timeout: float = 30) -> str:
        """Boot the badge's files in a separate process, as a reset would: boot.py, then main.py."""
        code = self.startup_code() + "import boot\nimport main\n"
        proc = subprocess.run([micropython_binary(), "-X", f"heapsize={self.heapsize}", "-c", code],
                              capture_output=True, text=True, cwd=self.root, timeout=timeout)
        return proc.stdout + proc.stderr
