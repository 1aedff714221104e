# Badge entry point (after boot.py). Kept tiny: everything else is precompiled .mpy (see app/start.py).
# Nothing may fall through to the REPL: an unhandled exception goes to the crash log and the badge resets.
import sys

try:
    from app.start import main

    rc = main()
except Exception as e:  # noqa: BLE001
    try:
        from app.crashlog import crashed

        crashed(e)
    except Exception:  # noqa: BLE001 -- not even the crash log loads: reset all the same
        import machine

        machine.reset()
    rc = 1
if sys.platform != "esp32":
    sys.exit(rc)
