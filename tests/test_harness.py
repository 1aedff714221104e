"""The two-interpreter harness itself: the binary is the real MicroPython, with the badge's heap."""

import pytest
from conftest import MicroPythonError


def test_runs_real_micropython(mpy):
    out = mpy.run("import sys; print(sys.implementation.name, sys.platform)")
    assert out.split() == ["micropython", "linux"]


def test_heap_is_badge_sized(mpy):
    # 96 KB heap: a 200 KB allocation must fail under the harness, as it would on the badge.
    with pytest.raises(MicroPythonError, match="MemoryError"):
        mpy.run("b = bytearray(200 * 1024)")


def test_protocol_package_importable(mpy):
    assert mpy.run("import protocol; print('ok')").strip() == "ok"
