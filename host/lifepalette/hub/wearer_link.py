"""A wearer's private link: a capability token per badge, and the printed card that carries it as a QR code.

token = base64url(VERSION || dev_id (2 bytes) || HMAC-SHA256(K_site, LABEL || dev_id || generation)[:16])

- HMAC-SHA256 is one-way: holding a token (or many) tells nothing about K_site, so nothing about the badge's device
  key either. The label differs from the device key's (`LP/dev/<n>`, protocol/keys.py), so no token is ever a key.
- The generation lives in the hub database (table wearer_links); rotating it voids every older token at once, in a
  running hub too, because the web app reads the generation on every request.
- The dev_id travels in the token so the hub checks one MAC, not every badge's; a token whose MAC does not verify
  is refused the same way whether or not that badge exists (`verify` computes a MAC in both cases).

Sans-I/O except `write_qr`, which writes the file it is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import os
from pathlib import Path

from lifepalette.errors import UsageError

VERSION = 1
LABEL = b"LP/wearer-link/v1/"
MAC_BYTES = 16
TOKEN_BYTES = 1 + 2 + MAC_BYTES
TOKEN_CHARS = 26  # base64url of 19 bytes, unpadded
QR_SUFFIXES = (".png", ".svg")
CARD_LINE = "Scan to see your own Life Palette journey: only this card opens it, so keep it to yourself."


def _mac(site_key: bytes, dev_id: int, generation: int) -> bytes:
    msg = LABEL + dev_id.to_bytes(2, "big") + generation.to_bytes(4, "big")
    return hmac.new(site_key, msg, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(site_key: bytes, dev_id: int, generation: int) -> str:
    raw = bytes([VERSION]) + dev_id.to_bytes(2, "big") + _mac(site_key, dev_id, generation)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def claimed_dev(token: str) -> int | None:
    """The dev_id a well-formed token names (not yet verified), or None for anything malformed."""
    if len(token) != TOKEN_CHARS or not token.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except ValueError:
        return None
    if len(raw) != TOKEN_BYTES or raw[0] != VERSION:
        return None
    return int.from_bytes(raw[1:3], "big")


def verify(site_key: bytes, token: str, generation_of) -> int | None:
    """The badge a token opens, or None. `generation_of(dev_id)` is the current generation (None: no link issued).

    The work is the same for a badge that exists and one that does not: one MAC, one constant-time comparison."""
    dev = claimed_dev(token)
    generation = generation_of(dev) if dev is not None else None
    expected = make_token(site_key, dev or 0, generation if generation is not None else 0)
    good = hmac.compare_digest(expected.encode(), token.encode("ascii", "replace"))
    return dev if good and generation is not None else None


def link(base: str, token: str) -> str:
    """`<base>/me#<token>`: the token is in the fragment, which a browser never sends to a server (nor to its logs)."""
    return f"{base.rstrip('/')}/me#{token}"


def check_base(base: str) -> str:
    if not base.startswith(("http://", "https://")) or "#" in base or "?" in base or len(base) < 10:
        raise UsageError(f"--base must be the hub's web address, like http://cove.local:8080 (got {base!r})")
    return base.rstrip("/")


def check_qr_path(path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in QR_SUFFIXES:
        raise UsageError(f"--qr {p}: the file name must end in .png or .svg")
    if p.is_dir():
        raise UsageError(f"--qr {p}: is a directory")
    if not p.parent.is_dir():
        raise UsageError(f"--qr {p}: no directory {p.parent}")
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"--qr {p}: cannot write there")  # said before the link is issued or rotated
    return p


def write_qr(url: str, path: str | Path) -> Path:
    """The link as a QR code (PNG or SVG by the suffix), owner-only: it opens the wearer's data."""
    import segno

    p = check_qr_path(path)
    qr = segno.make(url, error="m", micro=False)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        qr.save(fh, kind=p.suffix.lower().lstrip("."), scale=8, border=4)
    return p


def card_svg(url: str, dev_id: int) -> str:
    """A printable card: the QR code and one line saying what it is (and the badge number, for the host)."""
    import segno

    qr = segno.make(url, error="m", micro=False)
    code = qr.svg_inline(scale=6, border=4)
    side = qr.symbol_size(scale=6, border=4)[0]
    width = max(side + 40, 620)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{side + 84}" '
            f'viewBox="0 0 {width} {side + 84}" role="img" aria-label="Life Palette wearer card">'
            f'<rect width="100%" height="100%" fill="#ffffff"/>'
            f'<g transform="translate({(width - side) // 2},10)">{code}</g>'
            f'<text x="{width // 2}" y="{side + 40}" text-anchor="middle" font-family="sans-serif" font-size="13">'
            f'{html.escape(CARD_LINE)}</text>'
            f'<text x="{width // 2}" y="{side + 66}" text-anchor="middle" font-family="sans-serif" font-size="11" '
            f'fill="#444444">badge {dev_id}</text></svg>')
