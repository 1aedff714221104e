"""`lifepalette flash` on a badge whose firmware has the app frozen (the badge image, firmware/manifest.py): only the
files that stay source on the file system are copied, and the .mpy an earlier flash installed are listed for
removal (on the esp32 port a file on the file system shadows a frozen module)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR
from lifepalette.tools.build import KEEP_SOURCE, BadgeFile, Build, badge_sources
from lifepalette.tools.flash import CONFIG_PATH, FROZEN_PROBE, IMAGE_PROBE, INSTALLED_MANIFEST, target_files
from lifepalette.tools.image import STAMP_FILE, ImageMismatch, check_image, image_digest, read_manifest, write_stamp


def test_the_probe_tells_a_frozen_module_from_one_on_the_file_system(mpy):
    """On the real unix port: asyncio is frozen into its build; app is importable, but from files only."""
    out = mpy.run("\n".join([
        "import sys",
        "import app",  # loaded from the file system first: the probe must not take it for frozen
        "path = list(sys.path)",
        FROZEN_PROBE.format(name="app"),
        FROZEN_PROBE.format(name="asyncio"),
        "print('LP kept', sys.modules['app'] is app, sys.path == path, 'asyncio' in sys.modules)",
    ]))
    assert out.split("\n")[-4:-1] == ["LP files", "LP frozen", "LP kept True True False"], out


def test_a_frozen_badge_gets_only_its_source_files_and_the_config():
    built = Build("esp32-devkitc", "xtensawin", [BadgeFile(p, b"x") for p in
                                                 ("app/badge.mpy", "boot.py", "hal/esp32/board.mpy", "main.py",
                                                  "lp_boot_switch.py", "protocol/frame.mpy")])
    config = json.dumps({"dev_id": 258}).encode()
    files = target_files(built, config, frozen=True)
    assert [f.path for f in files] == ["boot.py", "main.py", "lp_boot_switch.py", CONFIG_PATH, INSTALLED_MANIFEST]
    listing = json.loads(files[-1].data)["files"]
    assert set(listing) == set(KEEP_SOURCE)  # the next flash removes every .mpy the earlier listing named
    assert len(target_files(built, config)) == 8  # a stock badge: every file, as before


# ---- the image's digest: flash never puts boot.py and main.py next to frozen code from other sources ----
def _copy_sources(tmp_path: Path) -> Path:
    """firmware/ and protocol/ side by side, as the manifest's base_path expects."""
    shutil.copytree(FIRMWARE_DIR, tmp_path / "firmware", ignore=shutil.ignore_patterns("__pycache__", STAMP_FILE))
    shutil.copytree(PROTOCOL_DIR, tmp_path / "protocol", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "firmware"


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# edited\n")


def test_the_image_digest_follows_exactly_the_frozen_sources(tmp_path):
    firmware = _copy_sources(tmp_path)
    digest = image_digest(firmware)
    assert digest == image_digest() and len(digest) == 16
    _edit(tmp_path / "protocol" / "records.py")  # hub-only: not in the image
    _edit(firmware / "hal" / "unix" / "board.py")  # the unix HAL: not in the image
    _edit(firmware / "main.py")  # stays source on the file system: flash copies it
    assert image_digest(firmware) == digest
    _edit(tmp_path / "protocol" / "kernels" / "ppg.py")  # frozen
    changed = image_digest(firmware)
    assert changed != digest
    _edit(firmware / "app" / "badge.py")  # frozen
    assert image_digest(firmware) not in (digest, changed)


def test_the_stamp_is_frozen_with_the_image_and_readable_by_micropython(tmp_path, mpy):
    firmware = _copy_sources(tmp_path)
    assert read_manifest(firmware).stamped
    stamp = write_stamp(firmware)
    assert STAMP_FILE not in {dest for _, dest in badge_sources(tmp_path / "protocol", firmware)}  # never copied
    assert image_digest(firmware) == image_digest()  # the stamp is not part of what it stamps
    shutil.copy(stamp, mpy.workdir / STAMP_FILE)
    assert mpy.run("import lp_image; print(lp_image.DIGEST)").strip() == image_digest()
    # a stamp on the file system is not the image's: only a frozen one answers the probe
    assert mpy.run(IMAGE_PROBE + "print('LP kept', 'lp_image' in sys.modules)").split("\n")[-3:-1] == [
        "LP image none", "LP kept False"]


def test_a_badge_image_from_other_sources_is_refused_by_name():
    with pytest.raises(ImageMismatch) as err:
        check_image("0123456789abcdef", "fedcba9876543210")
    assert "0123456789abcdef" in str(err.value) and "fedcba9876543210" in str(err.value)
    assert "make badge-image" in str(err.value) and err.value.exit_code == 1
    assert check_image("fedcba9876543210", "fedcba9876543210") is None
    assert "no digest" in check_image(None, "fedcba9876543210")


def test_image_digest_cli(capsys):
    from lifepalette.tools.image import main

    assert main(["digest"]) == 0 and capsys.readouterr().out.strip() == image_digest()
    assert main(["bogus"]) == 2 and "usage" in capsys.readouterr().err
