# Code in flash, the runner's default (tools/port_run.py): the badge runs from a firmware image with its modules
# frozen, and the chip's machine/bluetooth/neopixel/esp32 are C, so none of that code costs heap there. Here every
# compiled module (firmware, stand-ins and lp_port, the port's main.c) runs in place from a ROMFS image mounted at
# /rom. The image's bytes can only sit on this port's GC heap, so the runner gives the interpreter the image plus
# the budget, and this shim, the one module loaded into RAM, pins a ballast that is never freed: it leaves exactly
# the free heap a plain `-X heapsize=96K` interpreter has at this point (LP_HEAP_FREE, which the runner measured
# with LP_HEAP_PROBE). The stand-ins are imported before the ballast: on the chip they are C modules whose code,
# dicts and qstrs are all in flash; the objects they make later (pins, I2C buses, the BLE object, the sensor
# models) are counted. Conservative against frozen code: a ROMFS .mpy interns its qstrs in RAM.
import gc
import os
import sys


def _mount(rom, probe):
    import vfs

    image = bytearray(os.stat(rom)[6])
    with open(rom, "rb") as f:
        f.readinto(image)
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path[:] = ["", "/rom"]  # the esp32 port's order: '', '.frozen', '/lib'
    try:
        os.stat("lib")
        sys.path.append("lib")
    except OSError:
        pass
    sys.modules.pop("os", None)  # the builtin; the stand-in (os.uname(), the fs-full fault) is in the image
    if not probe:  # the port's C modules: their code and tables are in flash (what they make later counts)
        for name in ("lp_fake", "os", "time", "machine", "bluetooth", "neopixel", "esp32"):
            __import__(name)


def _ballast(probe, budget):
    gc.collect()
    if probe:
        print("FAKE heap probe pool=%d free=%d" % (gc.mem_free() + gc.mem_alloc(), gc.mem_free()))
        raise SystemExit(0)
    target = int(os.getenv("LP_HEAP_FREE") or "0")
    ballast = None
    if target:
        ballast = bytearray(max(0, gc.mem_free() - target - 32))  # 32: the bytearray object itself (two blocks)
        gc.collect()
        rest = gc.mem_free() - target  # the few blocks the mount's leftovers shifted: a tuple, a second bytearray
        if rest >= 64:
            ballast = (ballast, bytearray(rest - 64))
    free = gc.mem_free()
    if budget:
        print("FAKE heap budget %s: free=%d%s" % (budget, free, "" if target else " (no ballast)"))
    return ballast


_BALLAST = None  # its slot in the module's globals exists before the heap is measured
if os.getenv("LP_ROM"):
    _mount(os.getenv("LP_ROM"), os.getenv("LP_HEAP_PROBE"))
_BALLAST = _ballast(os.getenv("LP_HEAP_PROBE"), os.getenv("LP_HEAP_BUDGET"))

import lp_port  # noqa: E402,F401  (from the image: boot.py, main.py)
