# Start-up, compiled to .mpy (main.py stays a two-line source file: compiling more on the badge would fragment the
# heap). On an ESP32 it uses the esp32 HAL; on the unix port (the virtual badge, `lifepalette badge run`) it takes
# its options from the command line and uses the unix HAL.
import sys


def buffers(cfg):
    """The kernels' state and the backlog ring, made first while the heap is unfragmented."""
    from app import pipeline, storage

    return pipeline.Features(cfg["rates"]), storage.Ring(600)


def start(hal, cfg, bufs):
    from app.badge import Badge
    from app.storage import StorageError

    try:
        sensors = hal.sensors()
        badge = Badge(hal, cfg, sensors, bufs[0], bufs[1])
    except (StorageError, OSError) as exc:
        from app import safe

        return safe.run(hal, "storage: " + str(exc))
    _prepare_keys(cfg)
    hal.log("badge %d up: no consent yet, sensors off (hold the button 3 s to consent)" % cfg["dev_id"])
    try:
        badge.run()
    except Exception as exc:  # noqa: BLE001 -- to the crash log with the tick it happened in, then reset
        tick = badge.tick_no
        badge = None
        from app.crashlog import crashed

        crashed(exc, tick)
        return 1
    return 0


def _prepare_keys(cfg):
    """The keys' AES contexts (several hundred bytes each), made once boot's imports have let go of their
    temporaries and before the run fragments the heap: made at the first group colour, minutes in, one may find no
    gap its size."""
    import gc

    from protocol import frame

    gc.collect()
    frame.prepare(cfg["key"])
    if cfg["group_key"] is not None:
        frame.prepare(cfg["group_key"])


def forget_module(package, name):
    """Drop a boot-only module (config parsing, command line, pin maps, GATT strings) so its bytecode is freed for
    the run; used by the HALs too."""
    sys.modules.pop(package + "." + name, None)
    try:
        delattr(sys.modules[package], name)
    except (KeyError, AttributeError, TypeError):
        pass


def _load_config(path):
    from app import config

    cfg, reason = config.load(path)
    default_rates = config.DEFAULT_RATES
    del config
    forget_module("app", "config")
    return cfg, reason, default_rates


def run_unix(argv):
    from hal.unix import args, board

    o = args.main(argv)  # config, udp, samples, tick-us, seconds, press, led, label, chips
    presses = args.parse_presses(o[5])
    del args
    forget_module("hal.unix", "args")
    cfg, reason, default_rates = _load_config(o[0])
    bufs = buffers(cfg) if cfg is not None else None
    rates = cfg["rates"] if cfg is not None else default_rates
    hal = board.UnixHal(rates, samples=o[2], hub=o[1] if cfg is not None else None, tick_us=int(o[3]),
                        seconds=int(o[4]), presses=presses, led_addr=o[6], label=o[7],
                        chips=o[8] == "1", cfg=cfg)
    if cfg is None:
        from app import safe

        return safe.run(hal, reason)
    return start(hal, cfg, bufs)


def main():
    import os

    if hasattr(os, "uname"):  # the esp32 port, or the fault runs' stand-ins; the unix port has no os.uname()
        from app import start_esp32

        ready = start_esp32.run(_load_config, buffers)
        if isinstance(ready, int):  # safe mode ended (only off the chip: on an ESP32 it waits for a reset)
            return ready
        del start_esp32
        forget_module("app", "start_esp32")  # boot-only: not kept for the run
        return start(*ready)
    return run_unix(sys.argv[1:])
