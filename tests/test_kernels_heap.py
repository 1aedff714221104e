"""Steady state allocates nothing: gc.mem_alloc() does not grow while the whole Pipeline runs under the real
MicroPython binary (plain bytecode and with the viper sample loop). Behaviour, not timing."""

from __future__ import annotations

import pytest

HEAP_SCRIPT = """import gc
from array import array
from protocol.kernels.pipeline import Pipeline

def make():
    ppg = array("i", [0] * 640)
    i = 0
    while i < 640:
        ph = i % 64
        v = 120000 - (1500 if 8 <= ph <= 14 else 0) - (600 if 20 <= ph <= 30 else 0) + ((i * 37) % 11)
        ppg[i] = v
        i += 1
    eda = array("i", [0] * 160)
    i = 0
    while i < 160:
        eda[i] = 800 + (40 if 60 <= i < 90 else 0) + (i % 3)
        i += 1
    acc = array("i", [0] * 480)
    i = 0
    while i < 160:
        acc[3 * i] = (i * 13) % 9
        acc[3 * i + 1] = -(i * 7) % 5
        acc[3 * i + 2] = 1000 + (i % 4)
        i += 1
    return ppg, eda, acc

def run(p, ppg, eda, acc, out, seconds, s0):
    s = s0
    while s < s0 + seconds:
        i = 0
        while i < 64:
            p.push_ppg(ppg[(s * 64 + i) % 640])
            i += 1
        i = 0
        while i < 16:
            j = (s * 16 + i) % 160
            p.push_eda(eda[j])
            p.push_acc(acc[3 * j], acc[3 * j + 1], acc[3 * j + 2])
            i += 1
        p.push_temp(3300)
        p.step(out)
        s += 1

import sys
p = Pipeline()
p.use_viper(len(sys.argv) > 1 and sys.argv[1] == "viper")
out = [0] * 11
ppg, eda, acc = make()
run(p, ppg, eda, acc, out, 40, 0)
gc.collect()
m0 = gc.mem_alloc()
run(p, ppg, eda, acc, out, 60, 40)
m1 = gc.mem_alloc()
print("growth", m1 - m0, "hr", out[0], "q", out[10], "scr", out[3])
"""


@pytest.mark.parametrize("emitter", ["plain", "viper"])
def test_pipeline_steady_state_has_zero_heap_growth(mpy, tmp_path, emitter):
    script = tmp_path / "heap.py"
    script.write_text(HEAP_SCRIPT)
    words = mpy.run_file(script, emitter, heapsize="96K").split()
    result = dict(zip(words[::2], (int(v) for v in words[1::2]), strict=True))
    assert result["growth"] == 0
    assert result["hr"] == 60 and result["q"] & 2  # the pipeline really ran: 60 bpm pulse, HR valid
    assert result["scr"] >= 1
