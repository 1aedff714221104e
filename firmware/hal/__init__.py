# Hardware abstraction: hal.esp32 drives the real badge, hal.unix makes the same app a virtual badge.
