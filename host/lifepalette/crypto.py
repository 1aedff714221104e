"""CPython fast path for the frame cipher: cryptography's AESCCM (OpenSSL) behind protocol.frame's API.

`seal` and `open_frame` take and return exactly what protocol.frame's do and give identical bytes (tests check it);
the hub's verifier uses `open_frame` automatically. AESCCM objects are cached per key so a frame costs one
OpenSSL call and a 13-byte nonce, not a key schedule.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from protocol.frame import FRAME_LEN, MIC_LEN, RECORD_LEN, TO_HUB, header_byte

_DIR_SUFFIX = (b"\x00\x00\x00\x00", b"\x01\x00\x00\x00")
_CACHE_MAX = 4096
_ciphers: dict[bytes, AESCCM] = {}


def cipher_for(key16: bytes) -> AESCCM:
    """The cached AESCCM(key, tag_length=4) for a 16-byte key."""
    if type(key16) is not bytes:  # bytearray/memoryview keys are unhashable: normalise once
        key16 = bytes(key16)
    ccm = _ciphers.get(key16)
    if ccm is None:
        if len(key16) != 16:
            raise ValueError("key must be 16 bytes")
        if len(_ciphers) >= _CACHE_MAX:  # a hub has a few hundred badges at most; never grow without bound
            _ciphers.clear()
        ccm = _ciphers[key16] = AESCCM(key16, tag_length=MIC_LEN)
    return ccm


def seal(key16: bytes, ftype: int, dev_id: int, ctr: int, record13: bytes, direction: int = TO_HUB) -> bytes:
    if not 0 <= ftype < 16 or not 0 <= dev_id <= 0xFFFF or not 0 <= ctr <= 0xFFFFFFFF:
        raise ValueError("header field out of range")
    if len(record13) != RECORD_LEN:
        raise ValueError("record must be 13 bytes")
    if direction not in (0, 1):
        raise ValueError("direction must be TO_HUB or TO_BADGE")
    head = bytes((header_byte(ftype),)) + dev_id.to_bytes(2, "little") + ctr.to_bytes(4, "little")
    return head + cipher_for(key16).encrypt(b"LP" + head + _DIR_SUFFIX[direction], bytes(record13), None)


def open_frame(key16: bytes, frame24: bytes, direction: int = TO_HUB) -> bytes | None:
    """The 13-byte record, or None if the MIC fails or the frame is not 24 bytes."""
    if len(frame24) != FRAME_LEN:
        return None
    try:
        return cipher_for(key16).decrypt(b"LP" + frame24[:7] + _DIR_SUFFIX[direction], frame24[7:], None)
    except InvalidTag:
        return None


def ccm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"", tag_len: int = 4) -> bytes:
    """General AES-CCM (same signature idea as protocol.ccm.encrypt but with a raw key), for vectors."""
    return AESCCM(key, tag_length=tag_len).encrypt(nonce, plaintext, aad or None)


def ccm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"", tag_len: int = 4) -> bytes | None:
    try:
        return AESCCM(key, tag_length=tag_len).decrypt(nonce, data, aad or None)
    except InvalidTag:
        return None
