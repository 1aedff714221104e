# Runs first at every reset. Finish a firmware switch that `lifepalette flash` may have left half done (the switch
# is journalled and idempotent), then hand over to main.py. Nothing here captures or transmits.
# boot.py never raises: on the ESP32 an exception here means main.py is not run at all (the badge would sit at the
# REPL). A damaged journal is reported and left for main.py's checks (a config that does not load is safe mode).
# boot.py and main.py share one global namespace on the ESP32, and lp_boot_switch is source compiled at boot: both
# are dropped afterwards so its bytecode does not sit on the heap for the whole run.
import sys

try:
    import lp_boot_switch

    if lp_boot_switch.finish() > 0:  # new firmware switched in: a crash streak (app/crashlog.py) starts afresh
        with open("crash.log", "a") as f:
            f.write("F\n")
    del lp_boot_switch
except ImportError:
    pass
except Exception as exc:  # noqa: BLE001
    print("boot: firmware switch journal failed: " + repr(exc))
sys.modules.pop("lp_boot_switch", None)
