"""The heap the ESP32 path's boot leaves behind for the run, measured under the real MicroPython on the compiled .mpy
the badge runs (bytecode on the heap, as on a badge whose firmware sits on its filesystem), with the esp32 port's
modules played by hal/unix/fakes. app.start.start is replaced by a probe, so the figure is the heap at the moment
the badge would start: the kernels' buffers, the HAL, the radio and every module boot kept imported."""

from __future__ import annotations

import json
import subprocess

from lifepalette.paths import FIRMWARE_DIR, micropython_binary
from lifepalette.virtual_badge import compile_firmware

PROBE = """
import gc, sys
sys.path[:] = [sys.argv[1], sys.argv[2]]
import lp_fake, os, time, machine, neopixel, bluetooth
gc.collect()
a0 = gc.mem_alloc()
from app import start
def probe(hal, cfg, bufs):
    gc.collect()
    print("HEAP", gc.mem_alloc() - a0)
    print("MODS", " ".join(sorted(sys.modules)))
    return 0
start.start = probe
start.main()
"""

# Not held while the badge runs: the boot-only modules (every board's pin map, the chip/config/crash-loop checks,
# the GATT table's UUIDs: read once and let go of), safe mode, the hub's SLIP decoder, and the pure-Python PPG loop
# (the badge runs the viper one).
NOT_KEPT = ("app.config", "app.crashlog", "app.start_esp32", "hal.esp32.pins", "app.safe", "protocol.kernels._ppg_pure",
            "protocol.gatt", "protocol.slip")


def run_on_esp32_stand_ins(tmp_path, script: str) -> str:
    """Run `script` under the real MicroPython on the compiled firmware, with the esp32 port's stand-ins and a
    DevKitC config in its folder; its stdout."""
    (tmp_path / "script.py").write_text(script)
    (tmp_path / "config.json").write_text(json.dumps({"dev_id": 258, "key": bytes(range(16)).hex(),
                                                      "board": "esp32-devkitc"}))
    proc = subprocess.run([micropython_binary(), "-X", "heapsize=256K", "script.py", str(compile_firmware()),
                           str(FIRMWARE_DIR / "hal" / "unix" / "fakes")], cwd=tmp_path, capture_output=True,
                          timeout=120, env={"LP_CHIP": "esp32"})
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    return out


def test_esp32_boot_lets_go_of_its_boot_only_modules(tmp_path):
    out = run_on_esp32_stand_ins(tmp_path, PROBE)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("HEAP ", "MODS ")))
    modules = lines["MODS"].split()
    assert "hal.esp32.board" in modules and "protocol.kernels._ppg_viper" in modules  # the probe ran the real boot
    assert [m for m in NOT_KEPT if m in modules] == []
    # On the 64-bit unix port: 91616 bytes when hal.esp32.board imported every board's pin map at module level,
    # app.start_esp32 stayed loaded under the running badge and protocol.kernels.ppg held the pure-Python loop next
    # to the viper one; 88352 once pins and start_esp32 were let go of; 87456 with the pure loop in its own module;
    # 86528 with the GATT table built at bring-up and protocol.gatt let go of; 85184 with the sensor drivers'
    # register constants folded (_NAME) instead of kept as module globals; 84256 with the SLIP encoder in a module
    # of its own (the badge never loads the hub's decoder); 83904 with the band-pass table one flat tuple.
    assert int(lines["HEAP"]) <= 86 * 1024


HEALTHY = """
import io, sys
sys.path[:] = [sys.argv[1], sys.argv[2]]
import lp_fake, machine, neopixel, bluetooth
from app import config
cfg, reason = config.load("config.json")
from hal.esp32 import board
hal = board.Esp32Hal(cfg, "esp32-devkitc")
hal.radio.usb = io.BytesIO()
class Stub:
    pass
badge = Stub()
badge.sampler = Stub()
badge.sampler.errors = 0
badge.sampler.sensors = hal.sensors()
hal.ms = lambda: 600001  # app.crashlog's healthy time
hal.status(badge)
print("RESULT", hal.marked_healthy, "app.crashlog" in sys.modules)
"""


def test_the_healthy_mark_lets_go_of_the_crash_log_module(tmp_path):
    """Ten minutes up, the crash streak is ended once; app.crashlog is not kept loaded for the rest of the run."""
    out = run_on_esp32_stand_ins(tmp_path, HEALTHY)
    assert [line for line in out.splitlines() if line.startswith("RESULT")] == ["RESULT True False"]
