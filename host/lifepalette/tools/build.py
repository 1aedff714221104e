"""Compile the badge code (protocol/ and firmware/) to .mpy for one architecture and describe it in a manifest.

Layout on the badge: firmware/ files at the root (so `import app.x` and `import hal.y` work), protocol/ as the
package `protocol`. boot.py, main.py and the boot switch stay source: MicroPython runs boot.py and main.py only as
.py, and the switch must run even when a .mpy would not load.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lifepalette.errors import LifePaletteError, UsageError
from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR, REPO_ROOT, mpy_cross_binary

KEEP_SOURCE = frozenset({"boot.py", "main.py", "lp_boot_switch.py"})
MANIFEST_NAME = "manifest.json"
SKIP_DIRS = frozenset({"__pycache__", "tests", "fakes"})  # fakes: the strict port stand-ins, host-only
# firmware/manifest.py: the badge image's freeze list, read by MicroPython's build on the host, never on a badge
SKIP_ROOT_FILES = frozenset({("manifest.py",), ("lp_image.py",)})  # and the digest stamp frozen with the image


@dataclass(frozen=True)
class BadgeFile:
    """One file as it lands on the badge: `path` is relative to the badge's root, "/"-separated."""

    path: str
    data: bytes
    source: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Build:
    board: str
    arch: str | None
    files: list[BadgeFile]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self) -> dict:
        return {
            "board": self.board,
            "arch": self.arch,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "source": f.source} for f in self.files],
            "total_bytes": self.total_bytes,
        }


def _python_files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(part in SKIP_DIRS or part.startswith(".") for part in rel) or rel in SKIP_ROOT_FILES:
            continue
        yield path


def badge_sources(protocol_dir: Path = PROTOCOL_DIR, firmware_dir: Path = FIRMWARE_DIR) -> list[tuple[Path, str]]:
    """(source file, path on the badge as .py) for every badge source, sorted by badge path."""
    pairs: list[tuple[Path, str]] = []
    if protocol_dir.is_dir():
        pairs += [(p, "protocol/" + p.relative_to(protocol_dir).as_posix()) for p in _python_files(protocol_dir)]
    if firmware_dir.is_dir():
        pairs += [(p, p.relative_to(firmware_dir).as_posix()) for p in _python_files(firmware_dir)]
    seen: dict[str, Path] = {}
    for src, dest in pairs:
        if dest in seen:
            raise LifePaletteError(f"{src} and {seen[dest]} would both land on the badge as {dest}")
        seen[dest] = src
    return sorted(pairs, key=lambda pair: pair[1])


def _display(path: Path) -> str:
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def badge_source_files() -> list[Path]:
    """Every source file under protocol/ and firmware/ (the unix HAL included): what `make compile` checks."""
    return sorted([*PROTOCOL_DIR.rglob("*.py"), *FIRMWARE_DIR.rglob("*.py")])


def mpy_cross(src: Path, out: Path, *flags: str) -> str | None:
    """Compile one file with the real mpy-cross: None when it worked, else mpy-cross's last line of complaint.

    The one place that runs mpy-cross (the build, `make compile`, the virtual badge, the firmware bench)."""
    proc = subprocess.run([mpy_cross_binary(), *flags, "-o", str(out), str(src)], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    detail = (proc.stderr or proc.stdout).strip().splitlines()
    return detail[-1] if detail else "no output"


def compile_file(src: Path, badge_path: str, arch: str | None, out: Path) -> None:
    error = mpy_cross(src, out, *([f"-march={arch}"] if arch else []), "-s", badge_path)
    if error is not None:
        raise LifePaletteError(f"mpy-cross failed on {_display(src)}: {error}")


def build(board: str, arch: str | None, workdir: Path, *, protocol_dir: Path = PROTOCOL_DIR,
          firmware_dir: Path = FIRMWARE_DIR, on_file: Callable[[str], None] | None = None) -> Build:
    """Compile every badge source into `workdir` (layout as on the badge) and return the files in memory."""
    files: list[BadgeFile] = []
    for src, dest in badge_sources(protocol_dir, firmware_dir):
        if on_file:
            on_file(dest)
        if dest in KEEP_SOURCE:
            data = src.read_bytes()
        else:
            dest = dest[:-3] + ".mpy"
            out = workdir / dest
            out.parent.mkdir(parents=True, exist_ok=True)
            compile_file(src, dest[:-4] + ".py", arch, out)
            data = out.read_bytes()
        files.append(BadgeFile(dest, data, _display(src)))
    return Build(board, arch, files)


def write_build(result: Build, out_dir: Path) -> Path:
    """Write the files and manifest.json into out_dir (replacing an earlier build there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    old = out_dir / MANIFEST_NAME
    if old.exists():
        try:
            for entry in json.loads(old.read_text()).get("files", []):
                (out_dir / entry["path"]).unlink(missing_ok=True)
        except (ValueError, KeyError, TypeError, OSError):
            pass  # an unreadable old manifest only means stale files may stay next to the new ones
    for f in result.files:
        target = out_dir / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.data)
    manifest = out_dir / MANIFEST_NAME
    manifest.write_text(json.dumps(result.manifest(), indent=1) + "\n")
    return manifest


def load_build(out_dir: Path) -> Build:
    """Read a build written by `write_build`, checking every file against its manifest hash."""
    manifest_path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
        entries = manifest["files"]
        files = [BadgeFile(e["path"], (out_dir / e["path"]).read_bytes(), e.get("source", "")) for e in entries]
    except FileNotFoundError as exc:
        raise UsageError(f"not a build folder: {exc.filename} is missing (run `lifepalette build --out DIR`)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{manifest_path}: unreadable manifest ({exc})") from None
    for f, entry in zip(files, entries, strict=True):
        if f.sha256 != entry["sha256"]:
            raise UsageError(f"{out_dir / f.path} does not match its manifest hash: rebuild it")
    return Build(manifest.get("board", "?"), manifest.get("arch"), files)


def mpy_cross_version() -> str:
    proc = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True)
    return proc.stdout.strip()
