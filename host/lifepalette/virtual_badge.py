"""A virtual badge: the badge firmware (firmware/main.py) under the real MicroPython unix port with the unix HAL.

CPython's part is small on purpose: validate the config with the firmware's own parser, compile the badge code to
.mpy (as on a real badge, where source would not fit the heap), generate sensor samples with the simulator
(`lifepalette.sim.physiology.badge_signals`), and stream them to the MicroPython process through a FIFO, one block
per second of badge time. Everything else (drivers on simulated I2C chips, consent, kernels, palette, sealing,
UDP to the hub) happens inside MicroPython, in the same code a real badge runs.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from lifepalette.errors import UsageError
from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR, micropython_binary
from lifepalette.tools.build import mpy_cross

# The badge's free heap is ~96 KB on a 32-bit ESP32, and the virtual badge runs in the same -X heapsize=96K on the
# 64-bit unix port here, where every pointer, object header, dict slot and qstr-pool entry is twice as wide: live
# heap after a collection ~86 KB (measured: bench/bench_firmware.py, tests/test_firmware_virtual_badge.py). What
# keeps it there: .mpy only, one source name, const() constants folded out of globals, the badge importing the lean
# protocol core (frame, telemetry) rather than records/verifier, a short module path ("lib/..."), and staying
# under 620 qstrs (past that MicroPython allocates another 8 KB qstr pool).
HEAPSIZE = os.environ.get("LP_BADGE_HEAPSIZE", "96K")
CHUNK_S = 300  # seconds of samples generated at a time for open-ended runs
FIRMWARE_PACKAGES = ("app", "hal", "drivers")
KEEP_SOURCE = ("main.py",)
MPY_FLAGS = ("-march=x64", "-O3", "-X", "no-source-lines", "-s", "lp")
# Named presses for --press: NAME@SECONDS -> (offset s, hold s) steps.
PRESS_GESTURES = {
    "consent": ((0.0, 3.2),),
    "revoke": ((0.0, 3.2),),
    "click": ((0.0, 0.15),),
    "pause": ((0.0, 1.5),),
    "resume": ((0.0, 1.5),),
    "double": ((0.0, 0.15), (0.3, 0.15)),
}


def firmware_module(name: str) -> ModuleType:
    """Import a firmware module (e.g. "app.config") in CPython: the badge's own code is the single source of truth."""
    added = str(FIRMWARE_DIR) not in sys.path
    if added:
        sys.path.insert(0, str(FIRMWARE_DIR))
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(str(FIRMWARE_DIR))


def load_config(path: Path) -> dict[str, Any]:
    """The validated config, or UsageError with one line saying what is wrong."""
    config = firmware_module("app.config")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"config {path} not found (write one with `lifepalette enroll`)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config {path} unreadable: {exc}") from None
    try:
        return config.parse(text)
    except config.ConfigError as exc:
        raise UsageError(f"config {path} invalid: {exc.args[0]}") from None


def parse_presses(spec: str) -> list[tuple[int, int]]:
    """--press SPEC -> [(start_ms, hold_ms)]. SPEC items, comma-separated: START:HOLD (seconds) or GESTURE@START
    with GESTURE in consent, revoke, click, double, pause, resume."""
    presses: list[tuple[int, int]] = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            if "@" in item:
                name, at = item.split("@", 1)
                steps = PRESS_GESTURES[name]
                start = float(at)
                presses += [(round((start + off) * 1000), round(hold * 1000)) for off, hold in steps]
            else:
                start_s, hold_s = item.split(":", 1)
                presses.append((round(float(start_s) * 1000), round(float(hold_s) * 1000)))
        except (KeyError, ValueError):
            raise UsageError(f"bad --press item {item!r}: use START:HOLD in seconds or GESTURE@START with GESTURE "
                             f"one of {', '.join(PRESS_GESTURES)}") from None
    if any(start < 0 or hold <= 0 for start, hold in presses):
        raise UsageError("--press times must be >= 0 and holds > 0")
    return sorted(presses)


def _sources() -> list[tuple[Path, str]]:
    """(source file, path relative to the badge's root) for every module compiled to .mpy."""
    out = [(p, "protocol/" + p.relative_to(PROTOCOL_DIR).as_posix()) for p in sorted(PROTOCOL_DIR.rglob("*.py"))]
    for pkg in FIRMWARE_PACKAGES:
        out += [(p, p.relative_to(FIRMWARE_DIR).as_posix()) for p in sorted((FIRMWARE_DIR / pkg).rglob("*.py"))]
    return [(p, rel) for p, rel in out if "__pycache__" not in rel]


def compile_firmware(cache_root: Path | None = None) -> Path:
    """Bytecode .mpy of protocol/ and the firmware packages (cached by content hash); returns the MICROPYPATH dir.

    The badge runs .mpy, not source: compiling ~40 modules on the badge would not fit its heap."""
    sources = _sources()
    digest = hashlib.sha256(" ".join(MPY_FLAGS).encode())
    for path, rel in [*sources, *((FIRMWARE_DIR / name, name) for name in KEEP_SOURCE)]:
        digest.update(rel.encode() + b"\0" + path.read_bytes())
    root = cache_root or Path(tempfile.gettempdir()) / f"lifepalette-mpy-{os.getuid()}"
    target = root / digest.hexdigest()[:16]
    if target.exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root, prefix="build-"))
    for path, rel in sources:
        out = work / (rel[:-3] + ".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        # -march=x64: the unix port here is x86-64, and viper kernels compile to native code for it. One short
        # source name for every module: each distinct name is a qstr on the badge's heap, and past 620 qstrs
        # MicroPython allocates another 8 KB qstr pool (tracebacks keep the function names).
        error = mpy_cross(path, out, *MPY_FLAGS)
        if error is not None:
            shutil.rmtree(work, ignore_errors=True)
            raise UsageError(f"mpy-cross failed on {rel}: {error}")
    for name in KEEP_SOURCE:  # as on the badge: main.py stays source, next to the compiled packages
        shutil.copy(FIRMWARE_DIR / name, work / name)
    try:
        work.rename(target)  # atomic: badges started side by side share one cache
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return target


def encode_seconds(signals: dict[str, Any], rates: dict[str, int], seconds: int) -> bytes:
    """The firmware's sample stream (hal/unix/board.py BLOCK FORMAT): per second ppg u32 | eda u16 | acc 3 x i16 |
    ntc counts u16, little-endian."""
    import numpy as np

    ntc = firmware_module("drivers.ntc")
    table_c = np.arange(len(ntc.TABLE)) * ntc.STEP_CENTI + ntc.T0_CENTI
    temp = np.asarray(signals["temp"][: seconds * rates["temp"]], dtype=np.float64)
    # counts fall with temperature: interpolate on the reversed table
    ntc_counts = np.rint(np.interp(temp, table_c, np.asarray(ntc.TABLE, dtype=np.float64)))
    parts = [
        np.clip(signals["ppg"][: seconds * rates["ppg"]], 0, 0x3FFFF).astype("<u4").reshape(seconds, -1),
        np.clip(signals["eda"][: seconds * rates["eda"]], 0, 4095).astype("<u2").reshape(seconds, -1),
        np.clip(signals["acc"][: seconds * rates["acc"]], -2000, 1999).astype("<i2").reshape(seconds, -1),
        ntc_counts.astype("<u2").reshape(seconds, -1),
    ]
    return b"".join(b"".join(p[s].tobytes() for p in parts) for s in range(seconds))


def sample_stream(scenario: str, seconds: int | None, rates: dict[str, int], seed: int) -> Iterator[bytes]:
    """Encoded seconds of simulated physiology, in chunks (endless if seconds is None)."""
    from lifepalette.sim.physiology import badge_signals

    done = 0
    chunk_no = 0
    while seconds is None or done < seconds:
        n = CHUNK_S if seconds is None else min(CHUNK_S, seconds - done)
        try:
            signals = badge_signals(scenario, n, seed=seed + chunk_no, rates=rates)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        yield encode_seconds(signals, rates, n)
        done += n
        chunk_no += 1


class VirtualBadge:
    """One badge process. `lines()` yields its serial output (LOG, LED, STAT lines)."""

    def __init__(self, config_path: Path, udp: str | None, *, seconds: int | None = None, scenario: str = "calm",
                 seed: int | None = None, speed: float = 1.0, presses: list[tuple[int, int]] = (),
                 led: str | None = None, state_dir: Path | None = None, heapsize: str = HEAPSIZE,
                 samples: bool = True, chips: bool = False):
        self.config_path = Path(config_path)
        self.cfg = load_config(self.config_path)
        self.udp = udp
        self.seconds = seconds
        self.scenario = scenario
        self.seed = self.cfg["dev_id"] if seed is None else seed
        self.speed = speed
        self.presses = list(presses)
        self.led = led
        self.heapsize = heapsize
        self.samples = samples
        self.chips = chips  # the real drivers on simulated I2C chips instead of direct sample stand-ins
        self.state_dir = Path(state_dir) if state_dir else self.config_path.with_name(
            self.config_path.stem + ".state")
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._writer: threading.Thread | None = None
        self.writer_error: BaseException | None = None

    def _install_config(self) -> None:
        """Put the config at the badge's root as `config.json`, atomically, as flashing does."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "config.json.tmp"
        tmp.write_bytes(self.config_path.read_bytes())
        os.replace(tmp, self.state_dir / "config.json")

    def command(self, fifo: Path | None) -> list[str]:
        rates = self.cfg["rates"]
        tick_us = 0 if self.speed <= 0 else max(1, round(1_000_000 / (rates["ppg"] * self.speed)))
        cmd = [micropython_binary(), "-X", f"heapsize={self.heapsize}", "main.py",
               "--config", "config.json", "--tick-us", str(tick_us), "--label", str(self.cfg["dev_id"])]
        if self.udp:
            cmd += ["--udp", self.udp]
        if fifo is not None:
            cmd += ["--samples", str(fifo)]
        if self.seconds:
            cmd += ["--seconds", str(self.seconds)]
        if self.presses:
            cmd += ["--press", ",".join(f"{s}:{h}" for s, h in self.presses)]
        if self.led:
            cmd += ["--led", self.led]
        if self.chips:
            cmd += ["--chips", "1"]
        return cmd

    def _link_root(self, mpy_dir: Path) -> Path:
        """Lay the badge's root out as on its flash: main.py next to config.json, the compiled modules under a short
        relative name ("lib/app/badge.mpy"). Every module's __file__ is a qstr on the badge's heap: the cache's
        absolute path would add ~1.1 KB of them (and the unix port puts main.py's real directory first on sys.path,
        so main.py cannot stay in the cache)."""
        for name in KEEP_SOURCE:
            tmp = self.state_dir / (name + ".tmp")
            shutil.copy(mpy_dir / name, tmp)
            os.replace(tmp, self.state_dir / name)
        link = self.state_dir / "lib"
        tmp = self.state_dir / "lib.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(mpy_dir, target_is_directory=True)
        os.replace(tmp, link)  # atomic: a restarted badge may find the link of a previous build
        return Path("lib")

    def start(self) -> VirtualBadge:
        self._install_config()
        mpy_dir = compile_firmware()
        fifo = None
        if self.samples:
            self._tmp = tempfile.TemporaryDirectory(prefix="lp-badge-")
            fifo = Path(self._tmp.name) / "samples"
            os.mkfifo(fifo)
        root = self._link_root(mpy_dir)
        env = dict(os.environ, MICROPYPATH=str(root))
        self.proc = subprocess.Popen(self.command(fifo), cwd=self.state_dir, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        if fifo is not None:
            self._writer = threading.Thread(target=self._write_samples, args=(fifo,), daemon=True)
            self._writer.start()
        return self

    def _write_samples(self, fifo: Path) -> None:
        try:
            with open(fifo, "wb") as out:
                for chunk in sample_stream(self.scenario, self.seconds, self.cfg["rates"], self.seed):
                    out.write(chunk)
        except BrokenPipeError:
            pass  # the badge stopped reading (its run is over)
        except BaseException as exc:  # surfaced by wait(); the badge sees EOF and stops
            self.writer_error = exc

    def lines(self) -> Iterator[str]:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            yield raw.decode(errors="replace").rstrip("\n")

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout)
        if self._writer is not None:
            self._writer.join(5)
        if self._tmp is not None:
            self._tmp.cleanup()
        if self.writer_error is not None:
            raise self.writer_error
        return rc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_badge(badge: VirtualBadge, show: bool, echo: Callable[[str], None] = print) -> int:
    """Start, relay the badge's serial output (LED lines only with --show), return its exit code."""
    badge.start()
    try:
        for line in badge.lines():
            kind = line.split(" ", 1)[0]
            if kind == "LED" or kind == "STAT":
                if show:
                    echo(f"[{badge.cfg['dev_id']}] {line}")
            else:
                echo(f"[{badge.cfg['dev_id']}] {line}")
        return badge.wait()
    finally:
        badge.stop()
