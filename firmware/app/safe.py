# Safe mode: the badge cannot or must not run (config missing or corrupt, a board for another chip, an unknown
# chip, broken storage, a crash loop). Loaded only then, so it costs a running badge no heap.
from app import palette, storage
from app.radio import Link
from protocol import frame, telemetry

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_P_SAFE = const(5)  # app.palette's SAFE pattern
_Q_SAFE_MODE = const(32)  # protocol/records.py Q_SAFE_MODE


def run(hal, reason, cfg=None):
    """Bad config, storage or chip, or a crash loop: say so on serial, show the SAFE pattern, never capture. With a
    usable config, a sealed heartbeat with the safe-mode bit (Q_SAFE_MODE) goes out once a second so the hub shows
    it; without one nothing can be sealed, and serial and the LED tell. Waits for a reset or a new flash."""
    hal.log("SAFE MODE: " + reason + " -- badge will not capture; fix the cause (hardware/bring-up.md) and reset")
    hal.shutdown_sensors()
    pal = palette.Palette()
    led = bytearray(3)
    pal.pattern = _P_SAFE
    hal.led_state(_P_SAFE, led, 0, 0)
    beacon = _beacon(hal, cfg)
    ticks = 0
    while True:
        n = hal.wait_tick()
        if n <= 0:
            return 3  # the run is over (the unix port only): exit code 3, safe mode
        pal.frame(hal.ms(), led)
        hal.led(led)
        ticks += n
        if beacon is not None and ticks >= hal.base:
            ticks = 0
            rec = beacon[2]
            rec[1] = hal.battery()
            hal.radio.send(beacon[1].seal(frame.HEARTBEAT, beacon[0].take(), rec))


def _beacon(hal, cfg):
    """(counter, link, heartbeat record with the safe-mode bit), or None when nothing can be sealed."""
    if cfg is None or hal.radio is None:
        return None
    try:
        counter = storage.CounterStore()
    except Exception:  # noqa: BLE001 -- no trustworthy counter: stay silent rather than risk reusing one
        return None
    rec = bytearray(telemetry.RECORD_LEN)
    rec[2] = _Q_SAFE_MODE
    return counter, Link(cfg), rec
