"""firmware/package.json: a mip manifest listing every badge source, so `mpremote mip install` can install it.

URLs are relative to firmware/ (protocol files are "../protocol/..."), which works for a local checkout
(`mpremote mip install --target= firmware/package.json`) and for a repository URL
(`mpremote mip install --target= github:ORG/REPO/firmware/package.json`). mip installs sources, not .mpy:
`lifepalette flash` is the faster, verified path; mip is the no-tools fallback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lifepalette import __version__
from lifepalette.paths import FIRMWARE_DIR, PROTOCOL_DIR
from lifepalette.tools.build import badge_sources

PACKAGE_JSON = FIRMWARE_DIR / "package.json"


def package_manifest(protocol_dir: Path = PROTOCOL_DIR, firmware_dir: Path = FIRMWARE_DIR) -> dict:
    urls = [[dest, Path(os.path.relpath(src, firmware_dir)).as_posix()]
            for src, dest in badge_sources(protocol_dir, firmware_dir)]
    return {"urls": urls, "deps": [], "version": __version__}


def render(manifest: dict) -> str:
    """JSON with one [dest, url] pair per line, so a diff shows exactly which files came or went."""
    pairs = ",\n".join(f"    {json.dumps(pair)}" for pair in manifest["urls"])
    rest = "".join(f',\n  {json.dumps(k)}: {json.dumps(v)}' for k, v in manifest.items() if k != "urls")
    return f'{{\n  "urls": [\n{pairs}\n  ]{rest}\n}}\n'


def write_package_json(path: Path = PACKAGE_JSON, protocol_dir: Path = PROTOCOL_DIR,
                       firmware_dir: Path = FIRMWARE_DIR) -> bool:
    """Regenerate path; returns True when its content changed."""
    text = render(package_manifest(protocol_dir, firmware_dir))
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
