"""`lifepalette flash`: put a build and a badge config on a badge, copying only what changed, crash-safe.

Steps (all hashing happens on the badge):
1. connect, check MicroPython version, .mpy version and native architecture;
2. finish a switch an earlier flash left pending (firmware/lp_boot_switch.py, which boot.py also runs);
3. hash every target file; stage the changed ones under .lp_new/ (reusing staged files that still verify);
4. verify the staged hashes, then write the journal atomically (temp + rename) and switch file by file;
5. verify the live files, then soft-reset (not on the unix port, where a soft reset hangs).
Until the journal exists nothing live has changed, so an interrupted copy leaves the previous firmware bootable.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lifepalette.errors import LifePaletteError, UsageError
from lifepalette.paths import FIRMWARE_DIR
from lifepalette.tools.badge import MIN_MICROPYTHON, MPY_MAJOR, Badge, BadgeFilesystemFull, BadgeInfo
from lifepalette.tools.boards import arch_from_mpy_flags, board_arch
from lifepalette.tools.build import KEEP_SOURCE, BadgeFile, Build, build
from lifepalette.tools.image import MANIFEST_FILE, check_image, image_digest

STAGE = ".lp_new"
JOURNAL = ".lp_switch"
INSTALLED_MANIFEST = ".lp_manifest.json"
CONFIG_PATH = "config.json"
SWITCH_SOURCE = FIRMWARE_DIR / "lp_boot_switch.py"

Progress = Callable[[int, int, str], None]  # (bytes done, bytes to copy, badge path)
Confirm = Callable[[str], bool]
# Is `app` frozen into the badge's firmware (the badge image, firmware/manifest.py)? Imported with only the frozen
# modules on the path, so a copy on the file system (which the port would find first) does not answer for it.
FROZEN_PROBE = """import sys
_m = sys.modules.pop({name!r}, None)
_p = sys.path[:]
sys.path[:] = ['.frozen']
try:
    __import__({name!r})
    print('LP frozen')
except ImportError:
    print('LP files')
sys.path[:] = _p
sys.modules.pop({name!r}, None)
if _m is not None:
    sys.modules[{name!r}] = _m
"""
# The digest the badge image was built with (lifepalette.tools.image), from the frozen stamp module only.
IMAGE_PROBE = """import sys
_p = sys.path[:]
sys.path[:] = ['.frozen']
try:
    import lp_image
    print('LP image', lp_image.DIGEST)
except ImportError:
    print('LP image none')
sys.path[:] = _p
sys.modules.pop('lp_image', None)
"""
CODE_IN_RAM_NOTE = ("this badge runs a stock MicroPython: the firmware's .mpy files are loaded into its heap, which "
                    "exceeds the badge's 96 KB budget; flash the badge image (hardware/bring-up.md, section 1)")


class FlashInterrupted(LifePaletteError):
    pass


@dataclass
class FlashReport:
    info: BadgeInfo
    arch: str | None
    files: int = 0
    copied: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)  # staged by an interrupted flash and still verified
    deleted: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    resumed_switch: bool = False
    reset: bool = False
    notes: list[str] = field(default_factory=list)


def check_badge(info: BadgeInfo, min_version: tuple[int, int, int] = MIN_MICROPYTHON) -> None:
    if info.version < min_version:
        need = ".".join(map(str, min_version))
        raise LifePaletteError(f"badge runs MicroPython {info.version_text}, need {need} or newer: flash a current "
                               "MicroPython firmware first (esptool; see README, Tools)")
    if info.mpy_major != MPY_MAJOR:
        raise LifePaletteError(f"badge MicroPython {info.version_text} loads .mpy v{info.mpy_major}, mpy-cross "
                               f"makes v{MPY_MAJOR}: update the badge's MicroPython")


def choose_arch(info: BadgeInfo, board: str | None) -> tuple[str | None, str | None]:
    """(arch to compile for, note). A real badge must match its board; the unix port runs host-native code."""
    badge_arch = arch_from_mpy_flags(info.mpy_flags)
    if board is None:
        return badge_arch, None
    arch = board_arch(board)
    if info.is_unix_port and arch != badge_arch:
        return badge_arch, f"virtual badge (unix port): compiling for {badge_arch} instead of {board}'s {arch}"
    if badge_arch is not None and arch != badge_arch:
        raise UsageError(f"board {board} needs {arch} code but the badge reports {badge_arch}: pass the right --board")
    return arch, None


def load_config(path: Path) -> bytes:
    """The enroll config as it goes on the badge, after checking it is one."""
    try:
        text = path.read_text()
        config = json.loads(text)
    except FileNotFoundError:
        raise UsageError(f"no such config file: {path} (create one with `lifepalette enroll`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path}: not a JSON badge config ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("dev_id"), int) or not _is_key(config.get("key")):
        raise UsageError(f"{path}: a badge config needs an integer dev_id and a 32-hex-digit key "
                         "(written by `lifepalette enroll`)")
    return text.encode()


def _is_key(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 32:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def config_board(config_bytes: bytes | None) -> str | None:
    if not config_bytes:
        return None
    board = json.loads(config_bytes).get("board")
    return board if isinstance(board, str) else None


def frozen_on_badge(badge: Badge, name: str = "app") -> bool:
    """True when module `name` is frozen into the badge's firmware."""
    return "LP frozen" in badge.exec(FROZEN_PROBE.format(name=name)).decode()


def image_on_badge(badge: Badge) -> str | None:
    """The source digest frozen into the badge's image, None when the image carries none."""
    for line in badge.exec(IMAGE_PROBE).decode().splitlines():
        if line.startswith("LP image "):
            digest = line.split()[2]
            return None if digest == "none" else digest
    return None


def target_files(result: Build, config_bytes: bytes | None, frozen: bool = False) -> list[BadgeFile]:
    """The build (frozen: only the files that stay source on the file system; the compiled modules are in the
    badge's firmware, and a copy on the file system would shadow them), the config, and last the installed-files
    manifest (so a later flash knows what to delete: after a switch to the badge image, the old .mpy files)."""
    files = [f for f in result.files if not frozen or f.path in KEEP_SOURCE]
    if config_bytes is not None:
        files.append(BadgeFile(CONFIG_PATH, config_bytes, "config"))
    listing = {"board": result.board, "arch": result.arch,
               "files": {f.path: f.sha256 for f in files if f.path != CONFIG_PATH}}
    files.append(BadgeFile(INSTALLED_MANIFEST, (json.dumps(listing, sort_keys=True) + "\n").encode(), "manifest"))
    return files


def _stale_paths(badge: Badge, keep: set[str]) -> list[str]:
    raw = badge.read_file(INSTALLED_MANIFEST)
    if not raw:
        return []
    try:
        old = json.loads(raw).get("files", {})
    except (ValueError, AttributeError):
        return []
    # Only files this tool installed are removed; user files and the config are never touched.
    return sorted(p for p in old if p not in keep and p != CONFIG_PATH and not p.startswith(STAGE))


def _confirm_identity_change(badge: Badge, new_config: BadgeFile, confirm: Confirm) -> None:
    try:
        old_id = json.loads(badge.read_file(CONFIG_PATH) or b"{}").get("dev_id")
    except (ValueError, AttributeError):
        old_id = None  # an unreadable config is replaced without asking: the badge cannot use it anyway
    new_id = json.loads(new_config.data)["dev_id"]
    if old_id is not None and old_id != new_id:
        if not confirm(f"the badge is enrolled as dev_id {old_id}; replace it with dev_id {new_id}?"):
            raise UsageError(f"kept the badge's config (dev_id {old_id}); nothing was changed")


def _run_switch(badge: Badge) -> int:
    # The same code boot.py runs, sent from this checkout so it works whatever the badge holds.
    out = badge.exec(SWITCH_SOURCE.read_text() + "\nprint(repr(finish()))\n", timeout=60)
    return int(out.decode().strip().splitlines()[-1])


def _needed_bytes(files: list[BadgeFile], block: int) -> int:
    block = max(block, 1)
    return sum(max(1, math.ceil(f.size / block)) * block for f in files)


def _copy(badge: Badge, files: list[BadgeFile], progress: Progress | None) -> int:
    total = sum(f.size for f in files)
    done = 0
    badge.makedirs(f"{STAGE}/{f.path}" for f in files)
    for f in files:
        start = done
        callback = (lambda n, s=start, p=f.path: progress(s + n, total, p)) if progress else None
        badge.write_file(f"{STAGE}/{f.path}", f.data, callback)
        done += f.size
    return done


def flash_badge(badge: Badge, files_for: Callable[[str | None, bool], list[BadgeFile]], *, board: str | None,
                progress: Progress | None = None, reset: bool = True, confirm: Confirm | None = None,
                min_version: tuple[int, int, int] = MIN_MICROPYTHON, image: str | None = None) -> FlashReport:
    """Flash through an open Badge. `files_for(arch, frozen)` builds the files once the badge's architecture, and
    whether its firmware has the app frozen, are known. `image`: the digest of the sources a frozen badge's image
    must have been built from (lifepalette.tools.image); nothing is copied to a badge whose image differs."""
    info = badge.connect()
    check_badge(info, min_version)
    arch, note = choose_arch(info, board)
    report = FlashReport(info, arch)
    if note:
        report.notes.append(note)
    if _run_switch(badge) >= 0:
        report.resumed_switch = True
        report.notes.append("finished a switch an earlier flash left pending")

    frozen = frozen_on_badge(badge)
    if frozen and image is not None:
        unchecked = check_image(image_on_badge(badge), image)
        if unchecked:
            report.notes.append(unchecked)
    if frozen:
        report.notes.append("the badge image has the app frozen: copying only boot.py, main.py, lp_boot_switch.py "
                            "and the config")
    elif not info.is_unix_port:  # the virtual badge's unix HAL holds the budget with its code in RAM
        report.notes.append(CODE_IN_RAM_NOTE)
    files = files_for(arch, frozen)
    report.files = len(files)
    wanted = {f.path: f for f in files}
    live = badge.hashes(wanted)
    changed = [f for f in files if live.get(f.path) != f.sha256]
    if confirm is not None and CONFIG_PATH in wanted and live.get(CONFIG_PATH) not in (None, wanted[CONFIG_PATH].sha256):
        _confirm_identity_change(badge, wanted[CONFIG_PATH], confirm)
    # Also sources that would shadow a compiled module (MicroPython imports x.py before x.mpy), e.g. from mip.
    shadows = [p[:-4] + ".py" for p in wanted if p.endswith(".mpy") and p[:-4] + ".py" not in wanted]
    candidates = sorted(set(_stale_paths(badge, set(wanted))) | set(shadows))
    present = badge.hashes(candidates)
    stale = [p for p in candidates if present.get(p) is not None]
    if not changed and not stale:
        _finish(badge, report, reset)
        return report

    staged = badge.hashes(f"{STAGE}/{f.path}" for f in changed)
    to_copy = [f for f in changed if staged.get(f"{STAGE}/{f.path}") != f.sha256]
    report.reused = [f.path for f in changed if f not in to_copy]
    need = _needed_bytes(to_copy, badge.block_size())
    free = badge.free_bytes()
    if need > free:
        raise BadgeFilesystemFull(f"the badge's filesystem is full: the new files need {need // 1024} KB, "
                                  f"{free // 1024} KB are free (the previous firmware is untouched)")
    try:
        report.bytes_copied = _copy(badge, to_copy, progress)
    except BadgeFilesystemFull:
        raise BadgeFilesystemFull("the badge's filesystem filled up while copying (the previous firmware is "
                                  "untouched): remove files from the badge or flash a smaller build") from None
    except LifePaletteError as exc:
        raise FlashInterrupted(f"copy interrupted ({exc}); the previous firmware is untouched: run flash "
                               "again to finish") from None
    report.copied = [f.path for f in to_copy]

    staged = badge.hashes(f"{STAGE}/{f.path}" for f in changed)
    bad = [f.path for f in changed if staged.get(f"{STAGE}/{f.path}") != f.sha256]
    if bad:
        raise LifePaletteError(f"{len(bad)} file(s) did not verify after copying (first: {bad[0]}); the previous "
                               "firmware is untouched: retry, and check the cable if it happens again")
    journal = "".join(f"M {f.path}\n" for f in changed) + "".join(f"D {p}\n" for p in stale)
    badge.write_file(JOURNAL + ".tmp", journal.encode())
    badge.exec(f"import os\ntry:\n    os.remove({JOURNAL!r})\nexcept OSError:\n    pass\n"
               f"os.rename({JOURNAL + '.tmp'!r}, {JOURNAL!r})")
    _run_switch(badge)
    report.deleted = stale
    _finish(badge, report, reset, wanted=wanted)
    return report


def _finish(badge: Badge, report: FlashReport, reset: bool, wanted: dict[str, BadgeFile] | None = None) -> None:
    if wanted is not None:
        live = badge.hashes(wanted)
        bad = [p for p, f in wanted.items() if live.get(p) != f.sha256]
        if bad:
            raise LifePaletteError(f"{len(bad)} file(s) differ after the switch (first: {bad[0]}): flash again")
    if reset and not report.info.is_unix_port:
        badge.close(soft_reset=True)
        report.reset = True
    elif reset:
        report.notes.append("virtual badge (unix port): not soft-resetting (it hangs that port); restart its "
                            "process to run the new firmware")


def flash(port: str, *, board: str | None = None, config: Path | None = None, build_dir: Path | None = None,
          baud: int = 115200, progress: Progress | None = None, reset: bool = True, confirm: Confirm | None = None,
          min_version: tuple[int, int, int] = MIN_MICROPYTHON, protocol_dir: Path | None = None,
          firmware_dir: Path | None = None) -> FlashReport:
    """Build (or load `build_dir`) for the badge on `port` and flash it with `config`."""
    from lifepalette.tools.build import load_build

    config_bytes = load_config(config) if config else None
    board = board or config_board(config_bytes)
    if board is not None:
        board_arch(board)  # unknown board: a usage error before touching the port
    prebuilt = load_build(build_dir) if build_dir else None
    dirs = {k: v for k, v in (("protocol_dir", protocol_dir), ("firmware_dir", firmware_dir)) if v is not None}

    def files_for(arch: str | None, frozen: bool) -> list[BadgeFile]:
        if prebuilt is not None:
            if prebuilt.arch != arch and not frozen:
                raise UsageError(f"{build_dir} was built for {prebuilt.arch}, the badge needs {arch}: rebuild with "
                                 "the right --board")
            return target_files(prebuilt, config_bytes, frozen)
        with tempfile.TemporaryDirectory() as tmp:
            result = build(board or "auto", arch, Path(tmp), **dirs)
        return target_files(result, config_bytes, frozen)

    sources = firmware_dir or FIRMWARE_DIR
    image = image_digest(sources) if (sources / MANIFEST_FILE).is_file() else None
    badge = Badge(port, baud)
    try:
        return flash_badge(badge, files_for, board=board, progress=progress, reset=reset, confirm=confirm,
                           min_version=min_version, image=image)
    except KeyboardInterrupt:
        raise FlashInterrupted("flash interrupted: new files were only staged, unless the switch had begun (then "
                               "the badge finishes it at boot); run flash again to complete") from None
    finally:
        badge.close()
