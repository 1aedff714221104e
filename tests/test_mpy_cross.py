"""All badge code compiles with the real mpy-cross for the ESP32's xtensawin architecture."""

import subprocess

import pytest
from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR, mpy_cross_binary

BADGE_SOURCES = sorted([*PROTOCOL_DIR.rglob("*.py"), *FIRMWARE_DIR.rglob("*.py")])


@pytest.mark.parametrize("source", BADGE_SOURCES, ids=lambda p: str(p.relative_to(PROTOCOL_DIR.parent)))
def test_compiles_for_xtensawin(source, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    proc = subprocess.run([mpy_cross_binary(), "-march=xtensawin", "-o", str(out), str(source)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0
