"""firmware/manifest.py, the badge image's freeze list: run as MicroPython's build runs it (with stand-ins for the
manifest API: include, package, module, freeze, require), it must name every firmware module the ESP32 path
imports in real runs (every fault of the matrix, on the strict stand-ins, with the import log on), the PPG loop's
documented fallback, and nothing else: no unix HAL, no stand-in, no protocol module only the hub uses."""

from __future__ import annotations

import tempfile
from pathlib import Path

from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR
from lifepalette.tools import port_run
from lifepalette.tools.build import mpy_cross
from lifepalette.tools.image import read_manifest

CONFIG = {"dev_id": 258, "key": bytes(range(16)).hex()}
FALLBACKS = {"protocol.kernels._ppg_pure"}  # loaded only when the viper PPG loop fails to load (protocol/kernels/ppg.py)
HUB_ONLY = {"protocol.records", "protocol.verifier", "protocol.slip", "protocol.keys", "protocol.ccm"}


def run_manifest() -> tuple[dict[str, Path], list[str]]:
    """(frozen module name -> source file, includes), the digest stamp aside."""
    manifest = read_manifest()
    return manifest.frozen, manifest.includes


def imported_on_the_esp32_path(tmp_path: Path, monkeypatch) -> set[str]:
    """Every module loaded in the matrix's runs (the import log of lp_port), with their parent packages."""
    monkeypatch.setenv("LP_IMPORT_LOG", "1")
    seen: set[str] = set()
    for i, (fault, chip, board) in enumerate(port_run.MATRIX):
        # 160K: the import log's own bookkeeping must not change what the badge does (at 96K it costs a crash)
        r = port_run.run_port(dict(CONFIG, board=board), chip, dict([port_run.parse_fault(fault)]),
                              tmp_path / str(i), seconds=20, heapsize="160K")
        logs = [ln.split()[2:] for ln in r.lines if ln.startswith("FAKE imported")]
        assert len(logs) == r.boots, r.text[-2000:]
        for names in logs:
            seen.update(names)
    return seen | {name.rsplit(".", k)[0] for name in seen for k in range(1, name.count(".") + 1)}


def firmware_module_names() -> set[str]:
    """Every module with a source file under firmware/ or protocol/ (what could be frozen at all)."""
    names = set()
    for root, prefix in ((FIRMWARE_DIR, ""), (PROTOCOL_DIR, "protocol/")):
        for p in root.rglob("*.py"):
            names.add((prefix + p.relative_to(root).as_posix())[:-3].replace("/", ".").removesuffix(".__init__"))
    return names


def test_manifest_freezes_exactly_what_the_esp32_path_imports(tmp_path, monkeypatch):
    frozen, includes = run_manifest()
    imported = imported_on_the_esp32_path(tmp_path, monkeypatch)
    on_flash = {Path(name).stem for name in port_run.BOOT_SOURCES}  # boot.py's switch stays source on the badge
    needed = (imported & firmware_module_names()) - on_flash
    assert "app.ppgloop" in needed and "app.safe" in needed and "app.crashlog" in needed  # the runs reached them
    assert sorted(needed - set(frozen)) == [], "imported on the ESP32 path but not frozen"
    assert sorted(set(frozen) - needed - FALLBACKS) == [], "frozen but never imported on the ESP32 path"
    assert FALLBACKS <= set(frozen)
    assert "$(PORT_DIR)/boards/manifest.py" in includes  # the port's own frozen modules (_boot.py)


def test_manifest_holds_nothing_host_only():
    frozen, _ = run_manifest()
    assert not [name for name in frozen if name.startswith("hal.unix") or name in HUB_ONLY]
    assert not [p for p in frozen.values() if "fakes" in p.parts]
    assert "hal.esp32.board" in frozen and "app.start" in frozen


def test_every_frozen_file_compiles_for_the_esp32():
    frozen, _ = run_manifest()
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in frozen.items():
            assert src.is_file(), f"{name}: {src} missing"
            assert mpy_cross(src, Path(tmp) / "x.mpy", "-march=xtensawin", "-O3") is None, name
