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
    except Exception:  # noqa: BLE001 -- not even the crash log loads (the heap ran out): reset all the same,
        # after counting the crash in RTC memory as app.crashlog does for a full flash ("C <crashes> <uptime_ms>"):
        # uncounted, a crash at every boot would never add up to the crash loop's safe mode
        import time

        import machine

        try:
            print("CRASH: crash log not loaded, counted in RTC memory: %s: %s" % (type(e).__name__, e))
            m = machine.RTC().memory().decode()
            n, ms = m[2:].split() if m[:2] == "C " else (0, 0)
            machine.RTC().memory(("C %d %d" % (int(n) + 1, int(ms) + time.ticks_ms())).encode())
        except Exception:  # noqa: BLE001
            pass
        machine.reset()
    rc = 1
if sys.platform != "esp32":
    sys.exit(rc)
