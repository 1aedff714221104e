# What the esp32 port does after every reset (ports/esp32/main.c): run boot.py; only if it finished without an
# exception, run main.py; then start the REPL. Run by `lifepalette badge run --chip ...` with the badge's flash as
# the working directory and the strict stand-ins first on the path. The REPL prompt is what the runner watches for.
#
# Code in flash (the default, LP_ROM set): the badge runs from a firmware image with its modules frozen, and the
# chip's machine/bluetooth/neopixel/esp32 are C, so none of that code costs heap there. Here every compiled module
# (firmware and stand-ins) runs in place from a ROMFS image mounted at /rom. The image's bytes can only sit on
# this port's GC heap, so the runner gives the interpreter the image plus the budget, and a ballast that is never
# freed leaves exactly the free heap a plain `-X heapsize=96K` interpreter has at this point (LP_HEAP_FREE, which
# the runner measured with LP_HEAP_PROBE). The stand-ins are imported before the ballast: on the chip they are C
# modules whose code, dicts and qstrs are all in flash; the objects they make later (pins, I2C buses, the BLE
# object, the sensor models) are counted. Conservative against frozen code: a ROMFS .mpy interns its qstrs in RAM.
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

import lp_fake  # noqa: E402

_MAIN = {"__name__": "__main__"}  # boot.py and main.py run in the same __main__ namespace, as on the port


def _run(name, where):
    try:
        with open(where + "/" + name) as f:
            code = f.read()
    except OSError:
        return True  # pyexec_file_if_exists: a missing file counts as done
    try:
        code = compile(code, name, "exec")
        exec(code, _MAIN)
        return True
    except Exception as exc:  # the port prints the traceback and carries on
        sys.print_exception(exc)
        return False


def _log_imports():
    """LP_IMPORT_LOG: every module loaded from here on, even one the firmware lets go of again (what the badge
    image must freeze: firmware/manifest.py)."""
    import builtins

    seen = {}
    known = tuple(sys.modules)
    load = builtins.__import__

    def logged(name, *args):
        module = load(name, *args)
        for key in sys.modules:
            if key not in known:
                seen[key] = 1
        return module

    builtins.__import__ = logged
    return seen


_IMPORTED = _log_imports() if os.getenv("LP_IMPORT_LOG") else None
lp_fake.log("boot %s at %d (reset cause %d)" % (lp_fake.CHIP, lp_fake.T0, lp_fake.RESET_CAUSE))
try:
    if _run("boot.py", "."):
        _run("main.py", ".")
    print('MicroPython v1.29.0 on 2026-01-01; %s\nType "help()" for more information.\n>>> ' % lp_fake.SPEC[7])
finally:  # a reset and the end of the run are SystemExit
    if _IMPORTED is not None:
        lp_fake.log("imported " + " ".join(sorted(_IMPORTED)))
