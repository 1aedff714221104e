#!/usr/bin/env python3
"""Write protocol/vectors/*.json. Run once (and after a deliberate protocol change); the committed JSON is then the
truth that tests hold both interpreters to.

Published vectors (RFC 3610 §8, NIST SP 800-38C appendix C, BTHome v2's encryption example) are typed in from the
documents and must verify with cryptography's AESCCM before they are written. Life Palette goldens are produced by
protocol/ and must agree with lifepalette.crypto (OpenSSL) before they are written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESCCM

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "host")]

from lifepalette import crypto  # noqa: E402

from protocol import frame, keys, records, slip, verifier  # noqa: E402

OUT = REPO / "protocol" / "vectors"

# RFC 3610 §8: the 8- or 12-byte "header" of each packet is the AAD; "result" = header-less ciphertext || tag.
RFC3610_K1 = "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
RFC3610_K2 = "d7828d13b2b0bdc325a76236df93cc6b"
RFC3610 = [
    (RFC3610_K1, "00000003020100a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e", 8,
     "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"),
    (RFC3610_K1, "00000004030201a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 8,
     "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916"),
    (RFC3610_K1, "00000005040302a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     8, "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5"),
    (RFC3610_K1, "00000006050403a0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e", 8,
     "a28c6865939a9a79faaa5c4c2a9d4a91cdac8c96c861b9c9e61ef1"),
    (RFC3610_K1, "00000007060504a0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e1f", 8,
     "dcf1fb7b5d9e23fb9d4e131253658ad86ebdca3e51e83f077d9c2d93"),
    (RFC3610_K1, "00000008070605a0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e1f20", 8,
     "6fc1b011f006568b5171a42d953d469b2570a4bd87405a0443ac91cb94"),
    (RFC3610_K1, "00000009080706a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e", 10,
     "0135d1b2c95f41d5d1d4fec185d166b8094e999dfed96c048c56602c97acbb7490"),
    (RFC3610_K1, "0000000a090807a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     10, "7b75399ac0831dd2f0bbd75879a2fd8f6cae6b6cd9b7db24c17b4433f434963f34b4"),
    (RFC3610_K1, "0000000b0a0908a0a1a2a3a4a5", "0001020304050607", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     10, "82531a60cc24945a4b8279181ab5c84df21ce7f9b73f42e197ea9c07e56b5eb17e5f4e"),
    (RFC3610_K1, "0000000c0b0a09a0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e", 10,
     "07342594157785152b074098330abb141b947b566aa9406b4d999988dd"),
    (RFC3610_K1, "0000000d0c0b0aa0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e1f", 10,
     "676bb20380b0e301e8ab79590a396da78b834934f53aa2e9107a8b6c022c"),
    (RFC3610_K1, "0000000e0d0c0ba0a1a2a3a4a5", "000102030405060708090a0b", "0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     10, "c0ffa0d6f05bdb67f24d43a4338d2aa4bed7b20e43cd1aa31662e7ad65d6db"),
    (RFC3610_K2, "00412b4ea9cdbe3c9696766cfa", "0be1a88bace018b1", "08e8cf97d820ea258460e96ad9cf5289054d895ceac47c", 8,
     "4cb97f86a2a4689a877947ab8091ef5386a6ffbdd080f8e78cf7cb0cddd7b3"),
    (RFC3610_K2, "0033568ef7b2633c9696766cfa", "63018f76dc8a1bcb", "9020ea6f91bdd85afa0039ba4baff9bfb79c7028949cd0ec", 8,
     "4ccb1e7ca981befaa0726c55d378061298c85c92814abc33c52ee81d7d77c08a"),
    (RFC3610_K2, "00f8b678094e3b3c9696766cfa", "77b60f011c03e1525899bcae", "e88b6a46c78d63e52eb8c546efb5de6f75e9cc0d", 8,
     "5545ff1a085ee2efbf52b2e04bee1e2336c73e3f762c0c7744fe7e3c"),
    (RFC3610_K2, "00d560912d3f703c9696766cfa", "cd9044d2b71fdb8120ea60c0", "6435acbafb11a82e2f071d7ca4a5ebd93a803ba87f", 8,
     "009769ecabdf48625594c59251e6035722675e04c847099e5ae0704551"),
    (RFC3610_K2, "0042fff8f1951c3c9696766cfa", "d85bc7e69f944fb8", "8a19b950bcf71a018e5e6701c91787659809d67dbedd18", 10,
     "bc218daa947427b6db386a99ac1aef23ade0b52939cb6a637cf9bec2408897c6ba"),
    (RFC3610_K2, "00920f40e56cdc3c9696766cfa", "74a0ebc9069f5b37", "1761433c37c5a35fc1f39f406302eb907c6163be38c98437",
     10, "5810e6fd25874022e80361a478e3e9cf484ab04f447efff6f0a477cc2fc9bf548944"),
    (RFC3610_K2, "0027ca0c7120bc3c9696766cfa", "44a3aa3aae6475ca", "a434a8e58500c6e41530538862d686ea9e81301b5ae4226bfa",
     10, "f2beed7bc5098e83feb5b31608f8e29c38819a89c8e776f1544d4151a4ed3a8b87b9ce"),
    (RFC3610_K2, "005b8ccbcd9af83c9696766cfa", "ec46bb63b02520c33c49fd70", "b96b49e21d621741632875db7f6c9243d2d7c2", 10,
     "31d750a09da3ed7fddd49a2032aabf17ec8ebf7d22c8088c666be5c197"),
    (RFC3610_K2, "003ebe94044b9a3c9696766cfa", "47a65ac78b3d594227e85e71", "e2fcfbb880442c731bf95167c8ffd7895e337076", 10,
     "e882f1dbd38ce3eda7c23f04dd65071eb41342acdf7e00dccec7ae52987d"),
    (RFC3610_K2, "008d493b30ae8b3c9696766cfa", "6e37a6ef546d955d34ab6059", "abf21c0b02feb88f856df4a37381bce3cc128517d4", 10,
     "f32905b88a641b04b9c9ffb58cc390900f3da12ab16dce9e82efa16da62059"),
]

# NIST SP 800-38C appendix C (examples 1-4; C.4 has a 65536-byte AAD: 00..ff repeated 256 times).
NIST_KEY = "404142434445464748494a4b4c4d4e4f"
NIST = [
    ("C.1", "10111213141516", "0001020304050607", "20212223", 4, "7162015b4dac255d", None),
    ("C.2", "1011121314151617", "000102030405060708090a0b0c0d0e0f", "202122232425262728292a2b2c2d2e2f", 6,
     "d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd", None),
    ("C.3", "101112131415161718191a1b", "000102030405060708090a0b0c0d0e0f10111213",
     "202122232425262728292a2b2c2d2e2f3031323334353637", 8,
     "e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5484392fbc1b09951", None),
    ("C.4", "101112131415161718191a1b1c", "", "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f", 14,
     "69915dad1e84c6376a68c2967e4dab615ae0fd1faec44cc484828529463ccf72b4ac6bec93e8598e7f0dadbcea5b", 256),
]

# bthome.io/encryption example: nonce = MAC | UUID d2fc | device info 41 | counter; service data d2fc 41 ct ctr mic.
BTHOME_KEY = "231d39c1d7cc1ab1aee224cd096db932"
BTHOME_NONCE = "5448e68f80a5d2fc4100112233"
BTHOME = [
    ("temperature+humidity", "02ca0903bf13", "a47266c95f73" + "78237214"),
    ("motion", "2101", "87b9" + "72b0231f"),
]


def ccm_vector(name, key, nonce, aad, pt, tag_len, ct, aad_repeat=None):
    full_aad = bytes.fromhex(aad) * aad_repeat if aad_repeat else bytes.fromhex(aad)
    got = AESCCM(bytes.fromhex(key), tag_length=tag_len).encrypt(bytes.fromhex(nonce), bytes.fromhex(pt),
                                                                 full_aad or None)
    if got.hex() != ct:
        raise SystemExit(f"{name}: typed-in vector disagrees with OpenSSL: {got.hex()} != {ct}")
    v = {"name": name, "key": key, "nonce": nonce, "aad": aad, "plaintext": pt, "tag_len": tag_len, "ciphertext": ct}
    if aad_repeat:
        v["aad_repeat"] = aad_repeat
    return v


def nist_c4_aad_hex():
    return bytes(range(256)).hex()


def published():
    rfc = [ccm_vector(f"RFC 3610 packet vector #{i + 1}", *row) for i, row in enumerate(RFC3610)]
    nist = []
    for name, nonce, aad, pt, tag, ct, rep in NIST:
        nist.append(ccm_vector(f"SP 800-38C example {name}", NIST_KEY, nonce, nist_c4_aad_hex() if rep else aad, pt,
                               tag, ct, rep))
    bthome = [ccm_vector(f"BTHome v2 {n}", BTHOME_KEY, BTHOME_NONCE, "", pt, 4, ct) for n, pt, ct in BTHOME]
    bthome[0]["service_data"] = "d2fc41a47266c95f730011223378237214"
    bthome[0]["advert"] = "0201061216d2fc41a47266c95f730011223378237214"
    return {
        "rfc3610.json": {"source": "RFC 3610 section 8 (packet vectors 1-24), AES-128, AAD = packet header",
                         "vectors": rfc},
        "nist_sp800_38c.json": {"source": "NIST SP 800-38C appendix C, examples 1-4 (general tag length)",
                                "vectors": nist},
        "bthome_v2.json": {"source": "bthome.io/encryption example (AES-CCM, M=4, 13-byte nonce, no AAD)",
                           "vectors": bthome},
    }


SITE_KEY = bytes(range(16))
DEV = 258
GROUP = 7
TELEMETRY = {"hr_bpm": 72, "rmssd_ms": 41, "scl": 523, "scr_per_min": 3, "motion": 12, "hue": 200, "chroma": 180,
             "colour_age": 2, "consent": 19, "battery": 87, "quality": 7}


def lp_frames():
    k_dev = keys.derive_device_key(SITE_KEY, DEV)
    k_grp = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")
    cases = [
        ("telemetry", frame.TELEMETRY, DEV, 1, records.pack_telemetry(TELEMETRY), k_dev),
        ("telemetry, consent withheld (n/a physiology)", frame.TELEMETRY, DEV, 2,
         records.pack_telemetry({"hue": 40, "chroma": 90, "colour_age": 0, "consent": 0x12, "battery": 0x80 | 64}),
         k_dev),
        ("heartbeat (paused)", frame.HEARTBEAT, DEV, 3, records.pack_heartbeat(0x14, 61, records.Q_SKIN), k_dev),
        ("group colour", frame.GROUP_COLOUR, GROUP, 100, records.pack_group_colour(255, 120, 30, 1, 30, 140, 99),
         k_grp),
        ("command colour", frame.COMMAND, DEV, 1, records.pack_cmd_colour(0, 128, 255), k_dev),
        ("command time", frame.COMMAND, DEV, 2, records.pack_cmd_time(1_764_090_000), k_dev),
        ("command backlog ack", frame.COMMAND, DEV, 3, records.pack_cmd_backlog_ack(2), k_dev),
        ("command consent prompt", frame.COMMAND, DEV, 4, records.pack_cmd_consent_prompt(2), k_dev),
        ("command group key part 0", frame.COMMAND, DEV, 5, records.group_key_commands(GROUP, k_grp)[0], k_dev),
        ("command group key part 1", frame.COMMAND, DEV, 6, records.group_key_commands(GROUP, k_grp)[1], k_dev),
        ("backlog (telemetry ctr 1 re-sealed)", frame.BACKLOG, DEV, 1, records.pack_telemetry(TELEMETRY), k_dev),
        ("all-zero key, research example", frame.TELEMETRY, 0x0102, 1, records.pack_telemetry(TELEMETRY), bytes(16)),
        ("heartbeat (safe mode)", frame.HEARTBEAT, DEV, 7, records.pack_heartbeat(0x00, 80, records.Q_SAFE_MODE),
         k_dev),
        ("telemetry, a sensor missing", frame.TELEMETRY, DEV, 8,
         records.pack_telemetry(dict(TELEMETRY, quality=records.Q_SKIN | records.Q_EDA | records.Q_SENSOR_MISSING)),
         k_dev),
    ]
    out = []
    for name, ftype, dev, ctr, rec, key in cases:
        direction = frame.direction_of(ftype)
        sealed = frame.seal(key, ftype, dev, ctr, rec, direction)
        assert sealed == crypto.seal(key, ftype, dev, ctr, rec, direction), name
        fields = records.unpack_record(ftype, rec)
        out.append({"name": name, "type": ftype, "type_name": frame.TYPE_NAMES[ftype], "dev_id": dev, "ctr": ctr,
                    "direction": direction, "key": key.hex(), "record": rec.hex(),
                    "fields": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in fields.items()},
                    "nonce": frame.nonce(sealed, direction).hex(), "frame": sealed.hex(),
                    "advert": frame.advert(sealed).hex()})
    derivations = [{"site_key": SITE_KEY.hex(), "dev_id": d, "key": keys.derive_device_key(SITE_KEY, d).hex()}
                   for d in (0, 1, DEV, 65535)]
    slips = []
    for payload in (bytes.fromhex(out[0]["frame"]), bytes([0xC0, 0xDB, 0x01, 0xC0, 0xDB])):
        slips.append({"frame": payload.hex(), "encoded": slip.slip_encode(payload).hex()})
    return {"source": "generated by scripts/gen_vectors.py from protocol/ (checked against OpenSSL AESCCM)",
            "site_key": SITE_KEY.hex(), "group_key": k_grp.hex(), "frames": out, "key_derivation": derivations,
            "slip": slips}


def lp_verifier():
    """One verifier (direction TO_HUB, dev 258 and 300 known) fed a sequence; one rejection per reason."""
    k_dev = keys.derive_device_key(SITE_KEY, DEV)
    k_other = keys.derive_device_key(SITE_KEY, 300)
    rec = records.pack_telemetry(TELEMETRY)
    s = lambda ftype, ctr, r=rec, dev=DEV, key=k_dev, d=frame.TO_HUB: frame.seal(key, ftype, dev, ctr, r, d)  # noqa: E731
    good1 = s(0, 1)
    steps = [
        ("ok telemetry", good1),
        ("duplicate: identical repeat", good1),
        ("replay: same ctr, other bytes", s(0, 1, records.pack_telemetry(dict(TELEMETRY, hue=1)))),
        ("length: 23 bytes", good1[:23]),
        ("length: advert with wrong company", bytes.fromhex("0201061bff3412") + s(0, 2)),
        ("version: 2", bytes([0x50]) + s(0, 2)[1:]),
        ("unsealed: sealed bit clear", bytes([0x20]) + s(0, 2)[1:]),
        ("type: 5 is not defined", bytes([0x35]) + s(0, 2)[1:]),
        ("type: command is hub to badge", s(3, 2, records.pack_cmd_colour(1, 2, 3), d=frame.TO_BADGE)),
        ("unknown_device: 999", s(0, 2, dev=999, key=k_other)),
        ("mic: wrong key", s(0, 2, key=k_other)),
        ("mic: tag bit flipped", s(0, 2)[:23] + bytes([s(0, 2)[23] ^ 0x01])),
        ("mic: sealed for the other direction", s(0, 2, d=frame.TO_BADGE)),
        ("ok advert", frame.advert(s(0, 2))),
        ("replay: older counter", s(0, 1)),
        ("semantic: hr 20", s(0, 3, records.pack_telemetry(dict(TELEMETRY, hr_bpm=20)))),
        ("semantic: reserved byte set", s(0, 4, rec[:12] + b"\x01")),
        ("semantic: heartbeat with physiology", s(1, 5, rec)),
        ("ok heartbeat", s(1, 6, records.pack_heartbeat(0x14, 61, 1))),
        ("ok backlog below the counter", s(4, 1)),
        ("ok other device", s(0, 1, dev=300, key=k_other)),
    ]
    v = verifier.Verifier({DEV: k_dev, 300: k_other})
    out = []
    for name, data in steps:
        got = v.verify(data)
        expect = name.split(":")[0].split(" ")[0]
        want = None if expect == "ok" else expect
        assert got.reason == want, (name, got)
        out.append({"name": name, "input": data.hex(), "reason": got.reason, "dev_id": got.dev_id, "ctr": got.ctr,
                    "type": got.ftype, "record": got.record.hex() if got.record else None})
    return {"source": "generated by scripts/gen_vectors.py; run in order through one Verifier",
            "keys": {str(DEV): k_dev.hex(), "300": k_other.hex()}, "direction": frame.TO_HUB, "steps": out,
            "counts": v.counts, "last_ctr": {str(DEV): v.counters.get(DEV), "300": v.counters.get(300)}}


def main() -> int:
    files = published()
    files["lp_frames.json"] = lp_frames()
    files["lp_verifier.json"] = lp_verifier()
    OUT.mkdir(exist_ok=True)
    for name, data in files.items():
        (OUT / name).write_text(json.dumps(data, indent=1) + "\n")
        print("wrote", OUT / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
