"""`lifepalette flash` on a badge whose firmware has the app frozen (the badge image, firmware/manifest.py): only the
files that stay source on the file system are copied, and the .mpy an earlier flash installed are listed for
removal (on the esp32 port a file on the file system shadows a frozen module)."""

from __future__ import annotations

import json

from lifepalette.tools.build import KEEP_SOURCE, BadgeFile, Build
from lifepalette.tools.flash import CONFIG_PATH, FROZEN_PROBE, INSTALLED_MANIFEST, target_files


def test_the_probe_tells_a_frozen_module_from_one_on_the_file_system(mpy):
    """On the real unix port: asyncio is frozen into its build; app is importable, but from files only."""
    out = mpy.run("\n".join([
        "import sys",
        "import app",  # loaded from the file system first: the probe must not take it for frozen
        "path = list(sys.path)",
        FROZEN_PROBE.format(name="app"),
        FROZEN_PROBE.format(name="asyncio"),
        "print('LP kept', sys.modules['app'] is app, sys.path == path, 'asyncio' in sys.modules)",
    ]))
    assert out.split("\n")[-4:-1] == ["LP files", "LP frozen", "LP kept True True False"], out


def test_a_frozen_badge_gets_only_its_source_files_and_the_config():
    built = Build("esp32-devkitc", "xtensawin", [BadgeFile(p, b"x") for p in
                                                 ("app/badge.mpy", "boot.py", "hal/esp32/board.mpy", "main.py",
                                                  "lp_boot_switch.py", "protocol/frame.mpy")])
    config = json.dumps({"dev_id": 258}).encode()
    files = target_files(built, config, frozen=True)
    assert [f.path for f in files] == ["boot.py", "main.py", "lp_boot_switch.py", CONFIG_PATH, INSTALLED_MANIFEST]
    listing = json.loads(files[-1].data)["files"]
    assert set(listing) == set(KEEP_SOURCE)  # the next flash removes every .mpy the earlier listing named
    assert len(target_files(built, config)) == 8  # a stock badge: every file, as before
