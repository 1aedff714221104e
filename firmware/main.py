# Badge entry point (after boot.py). Kept tiny: everything else is precompiled .mpy (see app/start.py).
import sys

from app.start import main

rc = main()
if sys.platform != "esp32":
    sys.exit(rc)
