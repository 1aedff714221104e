"""The firmware type-checks against the MicroPython ESP32 stubs (micropython-esp32-stubs + micropython-stdlib-stubs)
with mypy: a call that does not exist on the badge (a CPython-only function, a wrong machine.Pin argument) fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lifepalette.paths import FIRMWARE_DIR, REPO_ROOT

pytest.importorskip("mypy")


def stub_dirs(tmp: Path) -> tuple[Path, Path]:
    """(custom typeshed with MicroPython's stdlib, MYPYPATH with the ESP32 port's modules) as symlink farms."""
    from importlib import metadata

    dist = metadata.distribution("micropython-esp32-stubs")
    site = Path(str(dist.locate_file("")))
    typeshed = tmp / "typeshed"
    typeshed.mkdir()
    (typeshed / "stdlib").symlink_to(site / "stdlib")
    (typeshed / "stubs").symlink_to(site / "stubs")
    port = tmp / "port"
    port.mkdir()
    for f in dist.files or []:
        top = f.parts[0]
        if top.endswith(".dist-info") or (port / top).exists() or not (str(f).endswith(".pyi")):
            continue
        (port / top).symlink_to(site / top)
    if not (port / "_mpy_shed").exists():
        (port / "_mpy_shed").symlink_to(site / "_mpy_shed")
    return typeshed, port


def mypy(tmp_path: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    typeshed, port = stub_dirs(tmp_path)
    cmd = [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(typeshed), "--python-version", "3.11",
           "--no-incremental", "--explicit-package-bases", "--follow-imports=silent", "--no-error-summary",
           "--cache-dir", str(tmp_path / "cache"), *targets]
    env = dict(os.environ, MYPYPATH=f"{port}:{REPO_ROOT}")
    return subprocess.run(cmd, cwd=FIRMWARE_DIR, env=env, capture_output=True, text=True, timeout=170)


def own_errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Errors in firmware files (the third-party stubs have a few of their own, which are not ours to fix)."""
    return [ln for ln in proc.stdout.splitlines() if ln.startswith(("app/", "hal/", "drivers/")) and ": error:" in ln]


def test_firmware_type_checks_against_esp32_stubs(tmp_path):
    # hal/unix/fakes stand in for the port's modules (tests/test_firmware_fakes.py checks them against the stubs)
    proc = mypy(tmp_path, "-p", "app", "-p", "hal", "-p", "drivers", "--exclude", "hal/unix/fakes/")
    assert "Traceback" not in proc.stderr
    assert own_errors(proc) == []


def test_checker_catches_a_cpython_only_call(tmp_path):
    bad = FIRMWARE_DIR / "app" / "_typecheck_probe.py"
    bad.write_text("import machine\nimport time\n\n"
                   "time.perf_counter()\nmachine.Pin(5, machine.Pin.OUT, pull=machine.Pin.PULL_UP, bogus=1)\n")
    try:
        proc = mypy(tmp_path, "app/_typecheck_probe.py")
    finally:
        bad.unlink()
        shutil.rmtree(FIRMWARE_DIR / "app" / "__pycache__", ignore_errors=True)
    errors = own_errors(proc)
    assert any("perf_counter" in e for e in errors) and any("bogus" in e for e in errors), proc.stdout


HAL_PROBE = """from hal.contract import Hal
from hal.esp32.board import Esp32Hal
from hal.unix.board import UnixHal


class HalfBoard:
    base = 64

    def ms(self) -> int:
        return 0


def check(e: Esp32Hal, u: UnixHal, h: HalfBoard) -> None:
    boards: list[Hal] = [e, u]
    half: Hal = h
    del boards, half
"""


def test_both_hal_boards_satisfy_the_hal_contract(tmp_path):
    """hal/contract.pyi is the interface the badge app uses; mypy checks both boards against it (and a board that
    lacks most of it fails, so the check can fail)."""
    probe = FIRMWARE_DIR / "app" / "_hal_probe.py"
    probe.write_text(HAL_PROBE)
    try:
        proc = mypy(tmp_path, "app/_hal_probe.py")
    finally:
        probe.unlink()
        shutil.rmtree(FIRMWARE_DIR / "app" / "__pycache__", ignore_errors=True)
    errors = own_errors(proc)
    assert len(errors) == 1 and "_hal_probe.py:15" in errors[0] and "HalfBoard" in errors[0], proc.stdout
