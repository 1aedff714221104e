"""Key derivation (PROTOCOL.md §6): K_dev = HMAC-SHA256(K_site, b"LP/dev/" + decimal dev_id)[:16].

HMAC is written out over hashlib.sha256 because MicroPython has no `hmac` module (and no sha256().copy()).
"""

import hashlib

_BLOCK = 64


def hmac_sha256(key, msg):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    k = bytearray(_BLOCK)
    k[0:len(key)] = key
    ipad = bytearray(_BLOCK)
    opad = bytearray(_BLOCK)
    for i in range(_BLOCK):
        ipad[i] = k[i] ^ 0x36
        opad[i] = k[i] ^ 0x5C
    inner = hashlib.sha256(bytes(ipad))
    inner.update(msg)
    outer = hashlib.sha256(bytes(opad))
    outer.update(inner.digest())
    return outer.digest()


def device_key_label(dev_id):
    return b"LP/dev/" + str(int(dev_id)).encode()


def derive_device_key(site_key16, dev_id):
    """The 16-byte per-device key for dev_id (0..65535) under the site key."""
    if len(site_key16) != 16:
        raise ValueError("site key must be 16 bytes")
    if dev_id < 0 or dev_id > 0xFFFF:
        raise ValueError("dev_id out of range")
    return hmac_sha256(site_key16, device_key_label(dev_id))[:16]


def parse_key_hex(text):
    """16 key bytes from 32 hex digits (spaces, colons and a 0x prefix tolerated). Raises ValueError."""
    s = text.strip().lower()
    if s.startswith("0x"):
        s = s[2:]
    s = s.replace(" ", "").replace(":", "")
    if len(s) != 32:
        raise ValueError("key must be 16 bytes (32 hex digits)")
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise ValueError("key is not hex") from None
