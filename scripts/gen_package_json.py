"""Regenerate firmware/package.json (the mip manifest) from the badge sources under protocol/ and firmware/.

tests/test_tools_package_json.py fails when the committed file is out of date: run this and commit the result.
"""

from __future__ import annotations

from lifepalette.tools.package_json import PACKAGE_JSON, package_manifest, write_package_json


def main() -> int:
    changed = write_package_json()
    count = len(package_manifest()["urls"])
    print(f"{PACKAGE_JSON}: {count} files{' (updated)' if changed else ' (already up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
