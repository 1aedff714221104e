# Runs first at every reset. Finish a firmware switch that `lifepalette flash` may have left half done (the switch
# is journalled and idempotent), then hand over to main.py. Nothing here captures or transmits.
try:
    import lp_boot_switch

    lp_boot_switch.finish()
except ImportError:
    pass
