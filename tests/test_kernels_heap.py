"""Steady state allocates nothing: gc.mem_alloc() does not grow while the whole Pipeline runs under the real
MicroPython binary (plain bytecode and with the viper sample loop). Behaviour, not timing."""

from __future__ import annotations

import pytest

HEAP_SCRIPT = 'import gc\nfrom array import array\nfrom protocol.kernels.pipeline import Pipeline\n\ndef make():\n    ppg = array("i", [0] * 640)\n    i = 0\n    while i < 640:\n        ph = i % 64\n        v = 120000 - (1500 if 8 <= ph <= 14 else 0) - (600 if 20 <= ph <= 30 else 0) + ((i * 37) % 11)\n        ppg[i] = v\n        i += 1\n    eda = array("i", [0] * 160)\n    i = 0\n    while i < 160:\n        eda[i] = 800 + (40 if 60 <= i < 90 else 0) + (i % 3)\n        i += 1\n    acc = array("i", [0] * 480)\n    i = 0\n    while i < 160:\n        acc[3 * i] = (i * 13) % 9\n        acc[3 * i + 1] = -(i * 7) % 5\n        acc[3 * i + 2] = 1000 + (i % 4)\n        i += 1\n    return ppg, eda, acc\n\ndef run(p, ppg, eda, acc, out, seconds, s0):\n    s = s0\n    while s < s0 + seconds:\n        i = 0\n        while i < 64:\n            p.push_ppg(ppg[(s * 64 + i) % 640])\n            i += 1\n        i = 0\n        while i < 16:\n            j = (s * 16 + i) % 160\n            p.push_eda(eda[j])\n            p.push_acc(acc[3 * j], acc[3 * j + 1], acc[3 * j + 2])\n            i += 1\n        p.push_temp(3300)\n        p.step(out)\n        s += 1\n\nimport sys\np = Pipeline()\np.use_viper(len(sys.argv) > 1 and sys.argv[1] == "viper")\nout = [0] * 11\nppg, eda, acc = make()\nrun(p, ppg, eda, acc, out, 40, 0)\ngc.collect()\nm0 = gc.mem_alloc()\nrun(p, ppg, eda, acc, out, 60, 40)\nm1 = gc.mem_alloc()\nprint("growth", m1 - m0, "hr", out[0], "q", out[10], "scr", out[3])\n'


@pytest.mark.parametrize("emitter", ["plain", "viper"])
def test_pipeline_steady_state_has_zero_heap_growth(mpy, tmp_path, emitter):
    script = tmp_path / "heap.py"
    script.write_text(HEAP_SCRIPT)
    words = mpy.run_file(script, emitter, heapsize="96K").split()
    result = dict(zip(words[::2], (int(v) for v in words[1::2]), strict=True))
    assert result["growth"] == 0
    assert result["hr"] == 60 and result["q"] & 2  # the pipeline really ran: 60 bpm pulse, HR valid
    assert result["scr"] >= 1
