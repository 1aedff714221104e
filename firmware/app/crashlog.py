# The crash log: a small ring of records in crash.log on flash, one line each, newest last, at most _KEEP lines of
# at most _LINE characters:  "C <uptime_ms> <tick> <ExceptionType>: <message>"
# Marker lines, each of which ends a crash streak: "R <cause>" (a power-on or reset-button boot), "K" (the badge ran
# _HEALTHY_MS without a crash) and "F" (boot.py switched in new firmware from `lifepalette flash`).
# Crash loop: CRASH_LOOP_N crashes in a row whose uptimes add up to less than CRASH_LOOP_MS put the badge in safe
# mode, which then waits for a reset button press, a power cycle or a new flash instead of crashing again.
# Crashes that flash cannot record (it is full) are counted in RTC memory instead, which every reset but power-on
# keeps: "C <crashes> <uptime_ms>"; they count towards the crash loop too.
# Read by `lifepalette monitor` and `lifepalette doctor --port`.
import sys
import time

from app import storage

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


PATH = "crash.log"
CRASH_LOOP_N = const(3)
CRASH_LOOP_MS = const(600000)  # 10 minutes of uptime
_HEALTHY_MS = const(600000)
_KEEP = const(8)
_LINE = const(100)
_PWRON_RESET = const(1)
_HARD_RESET = const(2)
_WDT_RESET = const(3)


def lines():
    text = storage.read_text(PATH)
    return [ln for ln in text.split("\n") if ln] if text else []


def _append(line):
    kept = lines()[-(_KEEP - 1):]
    kept.append(line[:_LINE])
    storage.write_atomic(PATH, "\n".join(kept) + "\n")


def record(exc, tick=-1):
    msg = str(exc).replace("\n", " ")
    _append("C %d %d %s: %s" % (time.ticks_ms(), tick, type(exc).__name__, msg))


def _rtc():
    """(crashes, uptime ms) that flash could not record, from RTC memory."""
    try:
        import machine

        m = machine.RTC().memory().decode()
        if m[:2] == "C ":
            n, ms = m[2:].split()
            return int(n), int(ms)
    except Exception:  # noqa: BLE001 -- a port without RTC memory, or not ours: nothing counted there
        pass
    return 0, 0


def _rtc_set(n, ms):
    try:
        import machine

        machine.RTC().memory(("C %d %d" % (n, ms)).encode() if n else b"")
    except Exception:  # noqa: BLE001
        pass


def _count(uptime_ms):
    """One more crash that flash could not record."""
    n, ms = _rtc()
    _rtc_set(n + 1, ms + uptime_ms)


def crash_loop(reset_cause):
    """None, or the safe-mode reason when the last crashes came too fast. A power-on or reset-button boot ends the
    streak (the wearer or a flash asked for a fresh start)."""
    if reset_cause == _PWRON_RESET or reset_cause == _HARD_RESET:
        _rtc_set(0, 0)
        tail = lines()
        if tail and tail[-1][0] == "C":
            _append("R %d" % reset_cause)
        return None
    if reset_cause == _WDT_RESET:  # the watchdog ran no Python: record its reset as a crash here
        try:
            _append("C 0 -1 WDT: watchdog reset (main loop stalled)")
        except OSError:
            _count(0)
    n, ms = _rtc()
    for ln in reversed(lines()):
        if ln[0] != "C":
            break
        n += 1
        ms += int(ln.split(" ", 2)[1])
    if n >= CRASH_LOOP_N and ms < CRASH_LOOP_MS:
        return "crash loop: %d crashes within %d min (see crash.log)" % (n, CRASH_LOOP_MS // 60000)
    return None


def healthy(uptime_ms):
    """Called now and then: after _HEALTHY_MS without a crash, end the streak (one write per boot at most)."""
    if uptime_ms >= _HEALTHY_MS:
        tail = lines()
        _rtc_set(0, 0)
        if tail and tail[-1][0] == "C":
            try:
                _append("K")
            except OSError:
                pass  # flash full: the streak stays on flash, the next power-on ends it
        return True
    return False


def crashed(exc, tick=-1):
    """Log `exc` to serial and to crash.log, then reset. Returns only where there is no machine.reset()."""
    import gc

    print("CRASH: %s: %s" % (type(exc).__name__, exc))
    sys.print_exception(exc)
    gc.collect()  # a MemoryError left the badge's objects unreachable: room for the record
    try:
        record(exc, tick)
    except Exception:  # noqa: BLE001 -- a full or broken flash must not stop the reset
        print("CRASH: crash.log not written (counted in RTC memory)")
        _count(time.ticks_ms())
    try:
        import machine
    except ImportError:
        return
    reset = getattr(machine, "reset", None)  # the unix port's machine has none: main.py exits instead
    if reset is not None:
        reset()
