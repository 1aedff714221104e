"""Life Palette wire protocol v1: the sealed 24-byte frame and its 31-byte legacy advert (PROTOCOL.md).

frame (24 bytes) = hdr | dev_id u16 LE | ctr u32 LE | AES-128-CCM(record 13 bytes) | MIC 4 bytes
hdr = version (bits 7-5) | sealed (bit 4, always 1) | type (bits 3-0)
nonce (13 bytes) = "LP" | hdr | dev_id | ctr | direction | 00 00 00    (no AAD: the header is bound by the nonce)
advert (31 bytes) = 02 01 06 | 1B FF | company u16 LE | frame

Runs unchanged on MicroPython (cryptolib ECB) and CPython; the hub's fast path is lifepalette.crypto.
Sealing and opening use module-level preallocated buffers (no per-frame allocation but the result) and exactly 4 AES
block operations each; they are therefore not re-entrant across threads (the badge is single-threaded, and the hub
uses lifepalette.crypto).
"""

from protocol.aes import AES

VERSION = 1
TELEMETRY = 0
HEARTBEAT = 1
GROUP_COLOUR = 2
COMMAND = 3
BACKLOG = 4
TYPE_NAMES = ("telemetry", "heartbeat", "group_colour", "command", "backlog")
N_TYPES = 5

FRAME_LEN = 24
ADVERT_LEN = 31
RECORD_LEN = 13
HEADER_LEN = 7
MIC_LEN = 4
NONCE_LEN = 13
COMPANY_ID = 0xFFFF
TO_HUB = 0
TO_BADGE = 1

SEALED = 0x10
FLAGS_AD = b"\x02\x01\x06"
MFR_AD_HEAD = b"\x1b\xff"
ADVERT_PREFIX_LEN = 7

# CCM constants for M = 4, L = 2 (13-byte nonce), no AAD, 13-byte message.
_B0_FLAGS = 0x09  # ((M - 2) / 2) << 3 | (L - 1)
_A_FLAGS = 0x01  # L - 1

# Preallocated work buffers (the badge seals once a second; nothing here allocates per frame but the result).
_b0 = bytearray(16)
_a = bytearray(16)
_x = bytearray(16)
_s0 = bytearray(16)
_s1 = bytearray(16)
_out = bytearray(FRAME_LEN)

# A few AES objects by key: a badge alternates its device key (seal, commands) and the group key (group colour),
# and a new cryptolib object means a key schedule and an allocation.
_CACHE_SIZE = 4
_cache_keys = []
_cache_aes = []


def header_byte(ftype):
    return (VERSION << 5) | SEALED | ftype


def direction_of(ftype):
    """The direction a type travels in: group colour and command go hub to badge, the rest badge to hub."""
    return TO_BADGE if ftype == GROUP_COLOUR or ftype == COMMAND else TO_HUB


def _aes_for(key):
    keys = _cache_keys
    for i in range(len(keys)):
        if keys[i] == key:
            return _cache_aes[i]
    if len(keys) >= _CACHE_SIZE:  # evict first: a collection can then hand the old context's block to the new one
        keys.pop(0)
        _cache_aes.pop(0)
    aes = AES(key)
    keys.append(bytes(key))
    _cache_aes.append(aes)
    return aes


def prepare(key):
    """Make `key`'s AES context now. A context is one block of several hundred bytes: a badge makes its keys' at
    start, while its heap is still whole, not at the first frame under a key, when the heap may hold no such gap."""
    _aes_for(key)


def nonce(frame, direction=TO_HUB):
    """The 13-byte CCM nonce of a frame (its first 7 bytes are the clear header)."""
    n = bytearray(NONCE_LEN)
    n[0] = 0x4C  # "L"
    n[1] = 0x50  # "P"
    n[2:9] = frame[0:7]
    n[9] = direction
    return bytes(n)


def _load_blocks(frame, direction):
    # B0 and A0 share the nonce "LP" | hdr | dev_id | ctr | dir | 000000 at bytes 1..13.
    b0 = _b0
    a = _a
    b0[1] = a[1] = 0x4C
    b0[2] = a[2] = 0x50
    for i in range(7):
        b0[3 + i] = a[3 + i] = frame[i]
    b0[10] = a[10] = direction
    b0[11] = a[11] = 0
    b0[12] = a[12] = 0
    b0[13] = a[13] = 0
    b0[0] = _B0_FLAGS
    b0[14] = 0
    b0[15] = RECORD_LEN
    a[0] = _A_FLAGS
    a[14] = 0


def _mac(aes, record):
    # T = E(E(B0) ^ record || 000) into _x: two block operations.
    x = _x
    aes.encrypt_block(_b0, x)
    for i in range(RECORD_LEN):
        x[i] ^= record[i]
    aes.encrypt_block(x, x)  # in place: cryptolib and protocol.aes both allow src is dst


def _mask(aes, counter, dst):
    # S_counter = E(A_counter): A0 masks the tag, A1 is the keystream for the 13 record bytes.
    a = _a
    a[15] = counter
    aes.encrypt_block(a, dst)


def seal(key16, ftype, dev_id, ctr, record13, direction=TO_HUB):
    """Seal a 13-byte record into a 24-byte frame. Raises ValueError on out-of-range header fields."""
    if ftype < 0 or ftype >= 16:
        raise ValueError("type out of range")
    if dev_id < 0 or dev_id > 0xFFFF:
        raise ValueError("dev_id out of range")
    if ctr < 0 or ctr > 0xFFFFFFFF:
        raise ValueError("ctr out of range")
    if len(record13) != RECORD_LEN:
        raise ValueError("record must be 13 bytes")
    if direction != TO_HUB and direction != TO_BADGE:
        raise ValueError("direction must be TO_HUB or TO_BADGE")
    out = _out
    out[0] = header_byte(ftype)
    out[1] = dev_id & 0xFF
    out[2] = dev_id >> 8
    out[3] = ctr & 0xFF
    out[4] = (ctr >> 8) & 0xFF
    out[5] = (ctr >> 16) & 0xFF
    out[6] = (ctr >> 24) & 0xFF
    aes = _aes_for(key16)
    _load_blocks(out, direction)
    _mac(aes, record13)
    _mask(aes, 0, _s0)
    _mask(aes, 1, _s1)
    s1 = _s1
    for i in range(RECORD_LEN):
        out[HEADER_LEN + i] = record13[i] ^ s1[i]
    x = _x
    s0 = _s0
    for i in range(MIC_LEN):
        out[20 + i] = x[i] ^ s0[i]
    return bytes(out)


def open_frame(key16, frame24, direction=TO_HUB):
    """The 13-byte plaintext record, or None if the MIC does not verify (or the frame is not 24 bytes)."""
    if len(frame24) != FRAME_LEN:
        return None
    aes = _aes_for(key16)
    _load_blocks(frame24, direction)
    _mask(aes, 1, _s1)
    s1 = _s1
    rec = bytearray(RECORD_LEN)
    for i in range(RECORD_LEN):
        rec[i] = frame24[HEADER_LEN + i] ^ s1[i]
    _mac(aes, rec)
    _mask(aes, 0, _s0)
    x = _x
    s0 = _s0
    diff = 0  # constant-time tag comparison
    for i in range(MIC_LEN):
        diff |= (x[i] ^ s0[i]) ^ frame24[20 + i]
    if diff:
        return None
    return bytes(rec)


def unwrap(data, prefix):
    """The 24-byte frame in `data`: data itself when it is 24 bytes long, the frame inside a 31-byte advert whose
    first 7 bytes equal `prefix` (advert_prefix(company)), else None. Byte by byte: foreign adverts cost nothing."""
    n = len(data)
    if n == FRAME_LEN:
        return data
    if n != ADVERT_LEN:
        return None
    for i in range(ADVERT_PREFIX_LEN):
        if data[i] != prefix[i]:
            return None
    return data[ADVERT_PREFIX_LEN:]


def type_mask(direction):
    """Bit t set for every frame type t that travels in `direction`."""
    m = 0
    for t in range(N_TYPES):
        if direction_of(t) == direction:
            m |= 1 << t
    return m


def check_header(frame, allowed):
    """The checks before any key lookup or cipher work, in PROTOCOL.md §5 order: None if the clear header is
    version 1, sealed, and of a type whose bit is set in the mask `allowed`; else the failed check's reason
    ("version", "unsealed", "type"). Shared by protocol.verifier (hub) and the badge's app.radio."""
    hdr = frame[0]
    if hdr >> 5 != VERSION:
        return "version"
    if not hdr & SEALED:
        return "unsealed"
    t = hdr & 0x0F
    if t >= N_TYPES or not (allowed >> t) & 1:
        return "type"
    return None


def parse_header(frame):
    """(hdr, ftype, dev_id, ctr) from the clear 7-byte header of a frame (no key needed, nothing checked)."""
    hdr = frame[0]
    return (hdr, hdr & 0x0F, frame[1] | (frame[2] << 8),
            frame[3] | (frame[4] << 8) | (frame[5] << 16) | (frame[6] << 24))


def advert_prefix(company=COMPANY_ID):
    return FLAGS_AD + MFR_AD_HEAD + bytes((company & 0xFF, (company >> 8) & 0xFF))


def advert(frame24, company=COMPANY_ID):
    """Wrap a 24-byte frame in the 31-byte legacy advertising payload."""
    if len(frame24) != FRAME_LEN:
        raise ValueError("frame must be 24 bytes")
    return advert_prefix(company) + bytes(frame24)


def frame_from_advert(adv31, company=COMPANY_ID):
    """The 24-byte frame inside a 31-byte advert, or None if the envelope is not ours."""
    if len(adv31) != ADVERT_LEN:
        return None
    if bytes(adv31[0:ADVERT_PREFIX_LEN]) != advert_prefix(company):
        return None
    return bytes(adv31[ADVERT_PREFIX_LEN:])
