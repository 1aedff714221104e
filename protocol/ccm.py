"""AES-CCM (RFC 3610, NIST SP 800-38C) built from the AES forward block function only.

Why: the ESP32 MicroPython build has cryptolib ECB and CBC but no CTR or CCM, so CCM is composed here from
single-block encryptions. General tag length M (4..16, even) and length-field size L (2..8, nonce = 15 - L bytes),
with optional associated data, so the RFC and NIST vectors run through the very code that seals frames.
A Life Palette frame (13-byte nonce, 13-byte record, no AAD, M = 4) costs exactly 4 block operations:
B0, the one payload block (CBC-MAC), A0 (tag mask) and A1 (keystream).

`encrypt(aes, nonce, plaintext, aad=b"", tag_len=4) -> ciphertext || tag`
`decrypt(aes, nonce, data, aad=b"", tag_len=4) -> plaintext or None` (None: tag mismatch or bad sizes)
`aes` is a protocol.aes.AES (or anything with `encrypt_block(src16, dst16)`).
"""


def _check(nonce, tag_len):
    if tag_len < 4 or tag_len > 16 or tag_len & 1:
        raise ValueError("CCM tag length must be 4, 6, ..., 16")
    q = 15 - len(nonce)
    if q < 2 or q > 8:
        raise ValueError("CCM nonce must be 7..13 bytes")
    return q


def _mac(aes, nonce, q, aad, msg, tag_len, x, blk):
    """CBC-MAC over B0 | encoded AAD | msg (zero padded); leaves T (16 bytes, use [:tag_len]) in x."""
    n = len(msg)
    # B0: flags | nonce | message length (q bytes, big-endian)
    blk[0] = (0x40 if len(aad) else 0) | (((tag_len - 2) >> 1) << 3) | (q - 1)
    blk[1:16 - q] = nonce
    for i in range(q):
        blk[15 - i] = (n >> (8 * i)) & 0xFF
    aes.encrypt_block(blk, x)
    if len(aad):
        a = len(aad)
        if a < 0xFF00:
            head = bytes(((a >> 8) & 0xFF, a & 0xFF))
        elif a < 0x100000000:
            head = b"\xff\xfe" + bytes(((a >> 24) & 0xFF, (a >> 16) & 0xFF, (a >> 8) & 0xFF, a & 0xFF))
        else:
            head = b"\xff\xff" + bytes([(a >> (8 * (7 - i))) & 0xFF for i in range(8)])
        _absorb2(aes, head, aad, x, blk)
    if n:
        _absorb2(aes, b"", msg, x, blk)


def _absorb2(aes, head, data, x, blk):
    # x = E(x ^ block) over head || data in 16-byte blocks, the last one zero padded. Head and data are read
    # in place (no concatenated copy: a 64 KiB AAD must not need a second 64 KiB on a 96 KiB heap).
    hl = len(head)
    total = hl + len(data)
    off = 0
    while off < total:
        for i in range(16):
            j = off + i
            if j < hl:
                v = head[j]
            elif j < total:
                v = data[j - hl]
            else:
                v = 0
            blk[i] = x[i] ^ v
        aes.encrypt_block(blk, x)
        off += 16


def _ctr(aes, nonce, q, data, out, s0, ctrblk, ks):
    """CTR mode: out = data ^ S1.., and s0 = E(A0) (the tag mask)."""
    ctrblk[0] = q - 1
    ctrblk[1:16 - q] = nonce
    for i in range(16 - q, 16):
        ctrblk[i] = 0
    aes.encrypt_block(ctrblk, s0)
    n = len(data)
    off = 0
    counter = 1
    while off < n:
        c = counter
        for i in range(q):
            ctrblk[15 - i] = c & 0xFF
            c >>= 8
        aes.encrypt_block(ctrblk, ks)
        end = off + 16
        if end > n:
            end = n
        for j in range(off, end):
            out[j] = data[j] ^ ks[j - off]
        off += 16
        counter += 1


def encrypt(aes, nonce, plaintext, aad=b"", tag_len=4):
    q = _check(nonce, tag_len)
    if q < 8 and len(plaintext) >= (1 << (8 * q)):
        raise ValueError("message too long for this nonce size")
    x = bytearray(16)
    blk = bytearray(16)
    s0 = bytearray(16)
    _mac(aes, nonce, q, aad, plaintext, tag_len, x, blk)
    n = len(plaintext)
    out = bytearray(n + tag_len)
    _ctr(aes, nonce, q, plaintext, out, s0, blk, bytearray(16))
    for i in range(tag_len):
        out[n + i] = x[i] ^ s0[i]
    return bytes(out)


def decrypt(aes, nonce, data, aad=b"", tag_len=4):
    """Plaintext, or None if the tag does not match (or the input is too short for a tag)."""
    q = _check(nonce, tag_len)
    n = len(data) - tag_len
    if n < 0:
        return None
    blk = bytearray(16)
    s0 = bytearray(16)
    pt = bytearray(n)
    _ctr(aes, nonce, q, memoryview(data)[:n], pt, s0, blk, bytearray(16))
    x = bytearray(16)
    _mac(aes, nonce, q, aad, pt, tag_len, x, blk)
    diff = 0  # compare every byte: no early exit that would time the tag
    for i in range(tag_len):
        diff |= (x[i] ^ s0[i]) ^ data[n + i]
    if diff:
        return None
    return bytes(pt)
