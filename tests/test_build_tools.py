"""`lifepalette build` (mpy-cross per board architecture, manifest) and the mip package manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers.pty_badge import PtyBadge
from lifepalette import cli
from lifepalette.paths import FIRMWARE_DIR
from lifepalette.tools.boards import BUILTIN_ARCH, board_arch, known_boards
from lifepalette.tools.build import badge_sources, build, load_build
from lifepalette.tools.package_json import PACKAGE_JSON, package_manifest, render, write_package_json

VIPER = "import micropython\n\n@micropython.viper\ndef add(a: int, b: int) -> int:\n    return a + b\n"
ARCH_NUMBER = {"xtensawin": 10, "rv32imc": 11, "x64": 2}


def tree(tmp_path: Path) -> tuple[Path, Path]:
    proto, fw = tmp_path / "protocol", tmp_path / "firmware"
    (proto / "kernels").mkdir(parents=True)
    (fw / "hal" / "esp32").mkdir(parents=True)
    (proto / "__init__.py").write_text("")
    (proto / "kernels" / "__init__.py").write_text("")
    (proto / "kernels" / "fast.py").write_text(VIPER)
    (fw / "boot.py").write_text("import lp_boot_switch\nlp_boot_switch.finish()\n")
    (fw / "main.py").write_text("print('main')\n")
    shutil.copy(FIRMWARE_DIR / "lp_boot_switch.py", fw / "lp_boot_switch.py")
    (fw / "hal" / "__init__.py").write_text("")
    (fw / "hal" / "esp32" / "leds.py").write_text("N = 3\n")
    (fw / "hal" / "__pycache__").mkdir()
    (fw / "hal" / "__pycache__" / "junk.py").write_text("")
    return proto, fw


@pytest.mark.parametrize("board", sorted(BUILTIN_ARCH))
def test_build_compiles_for_each_boards_architecture(board, tmp_path):
    proto, fw = tree(tmp_path)
    result = build(board, board_arch(board), tmp_path / "out", protocol_dir=proto, firmware_dir=fw)
    paths = [f.path for f in result.files]
    assert paths == ["boot.py", "hal/__init__.mpy", "hal/esp32/leds.mpy", "lp_boot_switch.py", "main.py",
                     "protocol/__init__.mpy", "protocol/kernels/__init__.mpy", "protocol/kernels/fast.mpy"]
    native = next(f for f in result.files if f.path == "protocol/kernels/fast.mpy").data
    assert native[:2] == b"M\x06" and native[2] >> 2 == ARCH_NUMBER[board_arch(board)]
    assert next(f for f in result.files if f.path == "main.py").data == b"print('main')\n"


def test_cli_build_writes_files_and_a_manifest_that_flash_can_load(tmp_path, capsys):
    out = tmp_path / "c3"
    assert cli.main(["build", "--board", "esp32-c3-supermini", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arch"] == "rv32imc"
    assert manifest["total_bytes"] == sum(e["size"] for e in manifest["files"])
    assert f"{manifest['total_bytes']} bytes" in printed
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert len(manifest["files"]) == len(badge_sources())
    assert load_build(out).total_bytes == manifest["total_bytes"]
    (out / manifest["files"][0]["path"]).write_bytes(b"tampered")
    assert cli.main(["flash", "--port", "/dev/null", "--build", str(out)]) == 2
    assert "does not match its manifest hash" in capsys.readouterr().err


def test_unknown_board_is_one_line_and_exit_2(capsys):
    assert cli.main(["build", "--board", "arduino-uno"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown board 'arduino-uno'" in err and "esp32-devkitc" in err


def test_board_files_add_boards_and_override_arch(tmp_path):
    (tmp_path / "esp32-s3-box.json").write_text(json.dumps({"name": "esp32-s3-box", "arch": "xtensawin"}))
    (tmp_path / "broken.json").write_text("{")
    boards = known_boards(tmp_path)
    assert boards["esp32-s3-box"] == "xtensawin" and boards["esp32-c3-supermini"] == "rv32imc"
    assert "broken" not in boards


def test_package_json_is_current_and_lists_every_badge_file():
    """Fails when a badge file was added or removed: run `python scripts/gen_package_json.py` and commit."""
    assert PACKAGE_JSON.read_text() == render(package_manifest()), (
        "firmware/package.json is out of date: run `.venv/bin/python scripts/gen_package_json.py` and commit it")
    listed = json.loads(PACKAGE_JSON.read_text())["urls"]
    assert sorted(dest for dest, _ in listed) == [dest for _, dest in badge_sources()]
    for _dest, url in listed:
        assert (FIRMWARE_DIR / url).resolve().is_file(), url


def test_mip_installs_the_package_onto_a_virtual_badge(tmp_path, capsys):
    from mpremote import mip
    from mpremote.transport_serial import SerialTransport

    proto, fw = tree(tmp_path / "src")
    manifest = fw / "package.json"
    write_package_json(manifest, proto, fw)
    assert ["protocol/kernels/fast.py", "../protocol/kernels/fast.py"] in json.loads(manifest.read_text())["urls"]
    with PtyBadge(tmp_path / "fs") as vb:
        vb.start_repl()
        transport = SerialTransport(vb.port)
        try:
            transport.enter_raw_repl(soft_reset=False)
            # What `mpremote mip install --target= firmware/package.json` does after connecting.
            mip._install_json(transport, str(manifest), mip._PACKAGE_INDEX, "", None, False)
            assert transport.eval("__import__('protocol.kernels.fast').kernels.fast.add(2, 3)") == 5
        finally:
            transport.close()
    for src, dest in badge_sources(proto, fw):
        assert (vb.root / dest).read_bytes() == src.read_bytes()


def test_every_board_the_tools_know_is_one_the_firmware_boots():
    """A board the build and enrol tools accept but the firmware's config check does not know boots to safe mode
    ("unknown board") on a badge that is otherwise fine."""
    import ast

    source = (Path(__file__).resolve().parents[1] / "firmware" / "app" / "config.py").read_text()
    firmware_boards = next(ast.literal_eval(node.value) for node in ast.walk(ast.parse(source))
                           if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "BOARDS")
    assert set(known_boards()) <= set(firmware_boards)
