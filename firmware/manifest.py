# The badge's firmware image: MicroPython's esp32 port with the badge's code frozen into flash, so none of its
# bytecode, constants or qstrs take the heap (docs/ARCHITECTURE.md, "The badge's heap: code in flash"). Built by
# `make badge-image` (ESP-IDF in docker, from a MicroPython checkout: FROZEN_MANIFEST=<this file>). boot.py, main.py,
# lp_boot_switch.py and config.json stay on the badge's file system, where `lifepalette flash` writes them.
#
# Exactly the modules the ESP32 path imports (tests/test_badge_manifest.py checks it against the import log of
# real runs on the strict stand-ins), and the one it loads only when the viper PPG loop fails to load
# (protocol.kernels._ppg_pure), and lp_image, the digest of these sources that `make badge-image` writes first
# (lifepalette.tools.image) so that `lifepalette flash` can tell an image built from other sources. Not here: the
# unix HAL and its stand-ins, and the protocol modules only the hub uses (records, verifier, the SLIP decoder, keys,
# ccm).
# opt=3, as `make compile`: asserts and __debug__ blocks are compiled out.
# ruff: noqa: F821  (include and package are the manifest API: MicroPython's tools/manifestfile.py runs this file)

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules (_boot.py mounts the file system)

package("app", files=(
    "__init__.py", "badge.py", "config.py", "consent.py", "crashlog.py", "palette.py", "pipeline.py", "ppgloop.py",
    "radio.py", "safe.py", "sampler.py", "start.py", "start_esp32.py", "storage.py",
), opt=3)
package("drivers", files=("__init__.py", "bus.py", "eda.py", "lis3dh.py", "max30102.py", "ntc.py"), opt=3)
package("hal", files=("__init__.py", "esp32/__init__.py", "esp32/board.py", "esp32/pins.py", "esp32/radio.py"),
        opt=3)
package("protocol", files=(
    "__init__.py", "aes.py", "frame.py", "gatt.py", "slip_encoder.py", "telemetry.py",
    "kernels/__init__.py", "kernels/eda.py", "kernels/fixed.py", "kernels/motion.py", "kernels/pipeline.py",
    "kernels/ppg.py", "kernels/_ppg_viper.py", "kernels/_ppg_pure.py", "kernels/temp.py",
), base_path="..", opt=3)
module("lp_image.py", opt=3)  # the frozen sources' digest, written by `make badge-image`: `lifepalette flash` checks it
