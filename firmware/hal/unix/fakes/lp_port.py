# What the esp32 port does after every reset (ports/esp32/main.c): run boot.py; only if it finished without an
# exception, run main.py; then start the REPL. Run by `lifepalette badge run --chip ...` with the badge's flash as
# the working directory and the strict stand-ins first on the path. The REPL prompt is what the runner watches for.
# Code in flash (the runner's default) starts here from lp_rom, which mounted the image this module runs from.
import os
import sys

import lp_fake

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
