# Start-up on an ESP32 (app.start hands over here when os.uname() names an ESP32 chip; never loaded by the virtual
# badge). The badge runs only if its config loads, names a board made for this chip, and the last boots did not
# crash in a loop; otherwise safe mode, on the pins of a board for this chip (or on no pins at all).


def chip():
    """The chip this firmware runs on, from os.uname().machine, which ends in "with <MCU>" ("Generic ESP32 module
    with ESP32", "ESP32S3 module with ESP32S3", "ESP32C3 module with ESP32C3"); None on the unix port (the virtual
    badge), which has no os.uname()."""
    import os

    try:
        machine = os.uname().machine
    except AttributeError:
        return None
    return machine.rsplit(" with ", 1)[-1].replace("-", "").lower()


def _reason(chip, cfg, reason):
    """Why this badge must not run (None if it may): config, chip identity, crash loop. Also the board whose pins
    are safe to touch on this chip (None if no board is made for it)."""
    import machine
    from hal.esp32 import pins

    from app import crashlog
    from app.start import forget_module

    board = pins.board_for(chip)
    if cfg is not None:
        ours = pins.CHIPS.get(cfg["board"])
        if ours == chip:
            board = cfg["board"]
        elif reason is None:
            reason = "config board %s is for %s, this chip is %s" % (cfg["board"], ours or "no ESP32", chip)
    if board is None and reason is None:
        reason = "unknown chip " + chip
    for line in crashlog.lines()[-3:]:  # the last records, for `lifepalette monitor` after every reset
        print("crash.log: " + line)
    loop = crashlog.crash_loop(machine.reset_cause())  # also when the config is bad: its safe mode may crash too
    if loop is not None:
        reason = loop if reason is None else loop + "; " + reason
    del crashlog, pins
    forget_module("app", "crashlog")  # boot-only here: free their bytecode for the run
    forget_module("hal.esp32", "pins")
    return reason, board


def run(load_config, buffers):
    """Called by app.start: (hal, cfg, bufs) for app.start.start to run the badge with, or safe mode's return code.
    The badge runs after this module is let go of: its bytecode is boot-only."""
    cfg, reason, _ = load_config("config.json")
    reason, board = _reason(chip(), cfg, reason)
    if reason is not None and reason.startswith("crash loop"):
        return _safe(cfg, board, reason)
    from hal.esp32.board import Esp32Hal

    bufs = buffers(cfg) if reason is None else None  # first, while the heap is unfragmented
    hal = Esp32Hal(cfg, board)
    if reason is None:
        reason = hal.radio_down  # BLE would not start
    if reason is not None:
        from app import safe

        bufs = None
        return safe.run(hal, reason, cfg)
    return hal, cfg, bufs


def _safe(cfg, board, reason):
    """Safe mode after a crash loop: the full one (heartbeat with the safe-mode bit) if it can be had, else the
    bare one. The loop may be the heap running out at boot, and then the full safe mode would crash the same way."""
    try:
        from hal.esp32.board import Esp32Hal

        from app import safe

        return safe.run(Esp32Hal(cfg, board), reason, cfg)
    except Exception as exc:  # noqa: BLE001
        safe = Esp32Hal = None
        return bare_safe_mode(board, "%s (%s: %s)" % (reason, type(exc).__name__, exc))


def bare_safe_mode(board, reason):
    """Safe mode on next to no heap: the reason on serial, the SAFE pattern (red / off / amber / off, 200 ms each)
    on the LED, the watchdog fed; no radio, no sensors. Waits for a reset or a new flash."""
    import gc
    import time

    import machine

    gc.collect()
    print("SAFE MODE: " + reason + " -- badge will not capture; reset it or flash new firmware")
    try:
        wdt = machine.WDT(timeout=8000)  # the same task watchdog the full HAL may have started: keep it fed
    except Exception:  # noqa: BLE001 -- none then; if one runs unfed, its reset leads back here
        wdt = None
    np = None
    if board is not None:
        try:
            import neopixel
            from hal.esp32.pins import PINS

            np = neopixel.NeoPixel(machine.Pin(PINS[board]["led"]), 1)
        except Exception:  # noqa: BLE001 -- no LED then: serial still says why
            np = None
    colours = ((120, 0, 0), (0, 0, 0), (100, 60, 0), (0, 0, 0))
    step = 0
    while True:
        if wdt is not None:
            wdt.feed()
        if np is not None:
            np[0] = colours[step & 3]
            np.write()
        step += 1
        time.sleep_ms(200)
