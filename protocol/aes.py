"""AES-128 single-block encryption (ECB), the one primitive CCM is built from.

MicroPython: `cryptolib.aes(key, 1)` (mode 1 = ECB; the ESP32 build has ECB and CBC only, no CTR).
CPython: the `cryptography` package's ECB cipher. Both give `encrypt_block(src16, dst16)`.
Only encryption is needed: CCM uses the forward cipher for both sealing and opening.
"""

try:
    import cryptolib as _cryptolib  # MicroPython
except ImportError:  # CPython
    _cryptolib = None

BLOCK = 16


class AES:
    """AES-128 forward cipher for one key. `encrypt_block(src, dst)` writes E_K(src) into the 16-byte dst."""

    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("AES-128 key must be 16 bytes")
        self.key = bytes(key)
        if _cryptolib is not None:
            # One ECB object per key, reused for every block: no per-block allocation on the badge.
            self._ecb = _cryptolib.aes(self.key, 1)
            self._native = True
        else:
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

            self._ecb = Cipher(algorithms.AES(self.key), modes.ECB()).encryptor()
            self._native = False

    def encrypt_block(self, src, dst):
        # src: 16 bytes-like; dst: bytearray(16). ECB has no state between blocks, so one object serves all calls.
        if self._native:
            self._ecb.encrypt(src, dst)
        else:
            dst[:] = self._ecb.update(bytes(src))

    def encrypt(self, src):
        """E_K(src) as new bytes (convenience for tests and vectors)."""
        dst = bytearray(BLOCK)
        self.encrypt_block(src, dst)
        return bytes(dst)
