"""The site key (K_site) and the keys derived from it, plus the group key and badge configs.

K_site lives in `<db>.sitekey` next to the database, created on first use with 0600 permissions and never logged
or printed. Badge keys are derived with protocol.keys (the same code the badge tooling runs).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path

from lifepalette.errors import LifePaletteError, UsageError
from protocol.frame import COMPANY_ID

DEFAULT_GROUP_ID = 1
DEFAULT_RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
MAX_DEV_ID = 0xFFFF


def site_key_path(db_path: str | Path) -> Path:
    return Path(str(db_path) + ".sitekey")


def load_site_key(db_path: str | Path, *, create: bool) -> bytes | None:
    """Read K_site, creating it (0600, exclusive create, no race) when `create` is set and it is missing."""
    path = site_key_path(db_path)
    if not path.exists():
        if not create:
            return None
        key = secrets.token_bytes(16)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_site_key(db_path, create=False)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
        return key
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LifePaletteError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 16:
        raise LifePaletteError(f"{path} does not hold a 16-byte site key")
    return key


def derive_device_key(site_key: bytes, dev_id: int) -> bytes:
    from protocol.keys import derive_device_key as derive

    return bytes(derive(site_key, dev_id))


def device_keys(site_key: bytes | None, dev_ids: list[int]) -> dict[int, bytes]:
    if site_key is None:
        return {}
    return {dev: derive_device_key(site_key, dev) for dev in dev_ids}


def check_dev_id(dev_id: int) -> int:
    if not 0 < dev_id <= MAX_DEV_ID:
        raise UsageError(f"device id must be 1..{MAX_DEV_ID}, got {dev_id}")
    return dev_id


def badge_config(dev_id: int, key: bytes, group_id: int, group_key: bytes, board: str = "esp32-devkitc",
                 company_id: int = COMPANY_ID) -> dict:
    """The badge config JSON (fields: README.md, "Badge firmware and the virtual badge"): read by the firmware and `lifepalette badge run`."""
    return {"dev_id": dev_id, "key": key.hex(), "group_id": group_id, "group_key": group_key.hex(), "board": board,
            "company_id": company_id, "rates": dict(DEFAULT_RATES)}


def write_private_json(path: str | Path, data: dict) -> None:
    """Write a file holding a key: 0600 from the start, replaced atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
