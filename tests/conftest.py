"""Shared fixtures. The `mpy` fixture runs code under the real MicroPython unix port (docs/ARCHITECTURE.md, "Testing without hardware")."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from lifepalette.paths import REPO_ROOT, micropython_binary, micropython_path

ARTIFACTS = REPO_ROOT / "artifacts"


class MicroPythonError(AssertionError):
    pass


class MicroPython:
    """Runs snippets or files under `micropython -X heapsize=96K` with protocol/ and firmware/ importable."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir

    def env(self, extra_path: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        path = micropython_path()
        env["MICROPYPATH"] = f"{extra_path}:{path}" if extra_path else path
        return env

    def run(self, code: str, *, heapsize: str = "96K", timeout: float = 120, stdin: bytes | None = None,
            extra_path: str | None = None, check: bool = True) -> str:
        script = self.workdir / "snippet.py"
        script.write_text(textwrap.dedent(code))
        return self.run_file(script, heapsize=heapsize, timeout=timeout, stdin=stdin, extra_path=extra_path,
                             check=check)

    def run_file(self, path: Path | str, *args: str, heapsize: str = "96K", timeout: float = 120,
                 stdin: bytes | None = None, extra_path: str | None = None, check: bool = True) -> str:
        cmd = [self.binary, "-X", f"heapsize={heapsize}", str(path), *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, cwd=self.workdir,
                              env=self.env(extra_path))
        out = proc.stdout.decode()
        if check and proc.returncode != 0:
            raise MicroPythonError(f"micropython exited {proc.returncode}\nstdout:\n{out[-4000:]}\n"
                                   f"stderr:\n{proc.stderr.decode()[-4000:]}")
        return out


@pytest.fixture
def mpy(tmp_path: Path) -> MicroPython:
    return MicroPython(micropython_binary(), tmp_path)


@pytest.fixture(scope="session")
def mpy_session(tmp_path_factory: pytest.TempPathFactory) -> MicroPython:
    return MicroPython(micropython_binary(), tmp_path_factory.mktemp("mpy"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
