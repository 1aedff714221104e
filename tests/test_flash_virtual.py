"""`lifepalette flash` against a virtual badge: the real MicroPython unix port answering mpremote over a pty."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from helpers.pty_badge import PtyBadge
from lifepalette import cli
from lifepalette.errors import LifePaletteError
from lifepalette.paths import FIRMWARE_DIR, REPO_ROOT
from lifepalette.tools.badge import Badge, BadgeInfo, describe_port_error
from lifepalette.tools.build import badge_sources
from lifepalette.tools.flash import INSTALLED_MANIFEST, JOURNAL, STAGE, FlashInterrupted, check_badge, flash

CONFIG = {"dev_id": 258, "key": "00112233445566778899aabbccddeeff", "group_id": 1,
          "group_key": "ffeeddccbbaa99887766554433221100", "board": "esp32-devkitc", "company_id": 65535,
          "rates": {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_config(tmp_path: Path, **changes: object) -> Path:
    path = tmp_path / f"badge-{changes.get('dev_id', 258)}.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return path


def fake_firmware(tmp_path: Path, version: str, *, extra: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A tiny badge tree whose main.py says which version runs; boot.py finishes switches like the real one."""
    root = tmp_path / f"src-{version}"
    proto, fw = root / "protocol", root / "firmware"
    (fw / "app").mkdir(parents=True, exist_ok=True)
    proto.mkdir(exist_ok=True)
    (proto / "__init__.py").write_text("")
    (proto / "tag.py").write_text(f"TAG = {version!r}\n")
    shutil.copy(FIRMWARE_DIR / "lp_boot_switch.py", fw / "lp_boot_switch.py")
    (fw / "boot.py").write_text("import lp_boot_switch\nlp_boot_switch.finish()\n")
    (fw / "main.py").write_text("import app.version\nimport protocol.tag\n"
                                "print('running', app.version.V, protocol.tag.TAG)\n")
    (fw / "app" / "__init__.py").write_text("")
    (fw / "app" / "version.py").write_text(f"V = {version!r}\n")
    for name, text in (extra or {}).items():
        (fw / name).parent.mkdir(parents=True, exist_ok=True)
        (fw / name).write_text(text)
    return proto, fw


@pytest.fixture
def badge(tmp_path: Path):
    with PtyBadge(tmp_path / "badge-fs") as vb:
        yield vb.start_repl()


def test_cli_flash_puts_every_file_with_its_hash_and_a_second_flash_copies_nothing(badge, tmp_path, capsys):
    config = write_config(tmp_path)
    assert cli.main(["flash", "--port", badge.port, "--config", str(config)]) == 0
    out = capsys.readouterr()
    assert "copied" in out.out and "soft reset: skipped" in out.out
    assert "virtual badge (unix port)" in out.err

    installed = json.loads((badge.root / INSTALLED_MANIFEST).read_text())["files"]
    expected = {dest if dest in ("boot.py", "main.py", "lp_boot_switch.py") else dest[:-3] + ".mpy"
                for _, dest in badge_sources()}
    assert set(installed) == expected
    for path, digest in installed.items():
        assert sha(badge.root / path) == digest, path
    assert json.loads((badge.root / "config.json").read_text()) == CONFIG
    assert not (badge.root / STAGE).exists() and not (badge.root / JOURNAL).exists()

    assert cli.main(["flash", "--port", badge.port, "--config", str(config)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_flash_copies_only_changed_files_and_removes_stale_ones(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1", extra={"app/old.py": "X = 1\n"})
    report = flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    assert "app/old.mpy" in report.copied
    assert badge.run_boot().strip() == "running v1 v1"

    v2 = fake_firmware(tmp_path, "v2")
    report = flash(badge.port, protocol_dir=v2[0], firmware_dir=v2[1])
    assert sorted(report.copied) == sorted(["app/version.mpy", "protocol/tag.mpy", INSTALLED_MANIFEST])
    assert report.deleted == ["app/old.mpy"]
    assert not (badge.root / "app" / "old.mpy").exists()
    assert badge.run_boot().strip() == "running v2 v2"


def test_interrupted_copy_leaves_previous_firmware_running_and_the_next_flash_resumes(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    v2 = fake_firmware(tmp_path, "v2", extra={"app/blob.py": f"DATA = {bytes(range(256)) * 24!r}\n"})

    def unplug_after_first_file(done: int, total: int, path: str) -> None:
        if path == "protocol/tag.mpy":  # copies go in path order: app/blob.mpy and app/version.mpy are staged
            raise KeyboardInterrupt  # what Ctrl-C (or a pulled cable) does mid-copy

    with pytest.raises(FlashInterrupted):
        flash(badge.port, protocol_dir=v2[0], firmware_dir=v2[1], progress=unplug_after_first_file)
    assert badge.run_boot().strip() == "running v1 v1"
    assert (badge.root / STAGE).is_dir() and not (badge.root / JOURNAL).exists()

    report = flash(badge.port, protocol_dir=v2[0], firmware_dir=v2[1])
    assert sorted(report.reused) == ["app/blob.mpy", "app/version.mpy", "protocol/tag.mpy"]
    assert report.copied == [INSTALLED_MANIFEST]
    assert badge.run_boot().strip() == "running v2 v2"
    assert not (badge.root / STAGE).exists()


def test_killed_flash_process_leaves_badge_bootable(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    blob = "DATA = (\n" + "".join(f"    {bytes([i % 256]) * 200!r}\n" for i in range(600)) + ")\n"
    v2 = fake_firmware(tmp_path, "v2", extra={"app/blob.py": blob})
    build_dir = tmp_path / "build-v2"
    code = ("import sys; from pathlib import Path; from lifepalette.tools.build import build, write_build; "
            f"write_build(build('unix', 'x64', Path({str(tmp_path)!r}), protocol_dir=Path({str(v2[0])!r}), "
            f"firmware_dir=Path({str(v2[1])!r})), Path({str(build_dir)!r}))")
    subprocess.run([sys.executable, "-c", code], check=True)
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "flash", "--port", badge.port, "--build",
                             str(build_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staged_blob = badge.root / STAGE / "app" / "blob.mpy"
    deadline = time.monotonic() + 60
    while not (staged_blob.exists() and staged_blob.stat().st_size > 0) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert badge.run_boot().strip() == "running v1 v1"

    report = flash(badge.port, build_dir=build_dir)
    assert "app/blob.mpy" in report.copied
    assert badge.run_boot().strip() == "running v2 v2"


def test_boot_rolls_a_half_done_switch_forward(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    # A switch cut off after one of two moves: the journal is committed, one staged file is already live.
    stage = badge.root / STAGE
    (stage / "app").mkdir(parents=True)
    (stage / "protocol").mkdir()
    (badge.root / "app" / "version.py").unlink(missing_ok=True)
    (badge.root / "app" / "version.mpy").unlink()
    (badge.root / "app" / "version.py").write_text("V = 'v2'\n")
    (stage / "protocol" / "tag.py").write_text("TAG = 'v2'\n")
    (badge.root / JOURNAL).write_text("M app/version.py\nM protocol/tag.py\nD protocol/tag.mpy\n")
    assert badge.run_boot().strip() == "running v2 v2"
    assert not stage.exists() and not (badge.root / JOURNAL).exists()
    assert not (badge.root / "protocol" / "tag.mpy").exists()


def test_staging_without_journal_is_ignored_at_boot(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    (badge.root / STAGE / "app").mkdir(parents=True)
    (badge.root / STAGE / "app" / "version.py").write_text("V = 'half'\n")
    assert badge.run_boot().strip() == "running v1 v1"


def test_full_filesystem_is_refused_before_anything_changes(tmp_path):
    small = fake_firmware(tmp_path, "v1")
    big = fake_firmware(tmp_path, "v2", extra={"app/blob.py": f"DATA = {os.urandom(40000)!r}\n"})
    with PtyBadge(tmp_path / "lfs", lfs_kb=48) as vb:
        vb.start_repl()
        flash(vb.port, protocol_dir=small[0], firmware_dir=small[1])
        with pytest.raises(LifePaletteError, match="filesystem is full"):
            flash(vb.port, protocol_dir=big[0], firmware_dir=big[1])
        with Badge(vb.port) as badge:
            badge.connect()
            assert badge.exec("import boot\nimport main").decode().strip() == "running v1 v1"


def test_cli_reports_busy_missing_port_and_unknown_board_in_one_line(badge, tmp_path, capsys):
    holder = serial.Serial(badge.port, exclusive=True)
    try:
        assert cli.main(["flash", "--port", badge.port]) == 1
        assert "busy" in capsys.readouterr().err
    finally:
        holder.close()
    assert cli.main(["flash", "--port", str(tmp_path / "ttyUSB9")]) == 2
    err = capsys.readouterr().err
    assert "no such port" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["flash", "--port", badge.port, "--board", "esp8266-nope"]) == 2
    assert "unknown board" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"dev_id": "x"}')
    assert cli.main(["flash", "--port", badge.port, "--config", str(bad)]) == 2


def test_old_micropython_is_refused(badge):
    with pytest.raises(LifePaletteError, match=r"MicroPython 1\.29\.0, need 9\.0\.0"):
        flash(badge.port, min_version=(9, 0, 0))
    assert not any(badge.root.iterdir()), "nothing is written to a badge that fails the version check"
    with pytest.raises(LifePaletteError, match="loads .mpy v5"):
        check_badge(BadgeInfo("esp32", (1, 24, 0), 5 | 10 << 10, "ESP32"))


def test_port_errors_say_what_to_do():
    assert "dialout" in str(describe_port_error("/dev/ttyUSB0", PermissionError(13, "Permission denied")))
    assert "busy" in str(describe_port_error("/dev/ttyUSB0", OSError(16, "Device or resource busy")))


def test_changing_a_badges_identity_needs_confirmation(badge, tmp_path, capsys):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, config=write_config(tmp_path), protocol_dir=v1[0], firmware_dir=v1[1])
    other = write_config(tmp_path, dev_id=259)
    with pytest.raises(LifePaletteError, match="kept the badge's config"):
        flash(badge.port, config=other, protocol_dir=v1[0], firmware_dir=v1[1], confirm=lambda question: False)
    assert json.loads((badge.root / "config.json").read_text())["dev_id"] == 258
    flash(badge.port, config=other, protocol_dir=v1[0], firmware_dir=v1[1], confirm=lambda question: True)
    assert json.loads((badge.root / "config.json").read_text())["dev_id"] == 259


def test_repo_root_is_where_the_tools_look():
    assert (REPO_ROOT / "protocol").is_dir() and FIRMWARE_DIR == REPO_ROOT / "firmware"


def test_flash_finishes_a_switch_a_killed_flash_left_pending(badge, tmp_path):
    v1 = fake_firmware(tmp_path, "v1")
    flash(badge.port, protocol_dir=v1[0], firmware_dir=v1[1])
    v2 = fake_firmware(tmp_path, "v2")
    (badge.root / STAGE / "app").mkdir(parents=True)
    (badge.root / STAGE / "app" / "version.py").write_text("V = 'switched'\n")
    (badge.root / JOURNAL).write_text("M app/version.py\nD app/version.mpy\n")
    report = flash(badge.port, protocol_dir=v2[0], firmware_dir=v2[1])
    assert report.resumed_switch and not (badge.root / JOURNAL).exists()
    assert report.deleted == ["app/version.py"], "the switched-in file was not in the installed manifest"
    assert badge.run_boot().strip() == "running v2 v2"
