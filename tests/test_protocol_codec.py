"""Frame codec, records, keys, SLIP and the verifier's rejection order, on CPython (MicroPython parity lives in
test_protocol_vectors.py)."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from lifepalette import crypto

from protocol import ccm, frame, keys, records, slip, verifier
from protocol.aes import AES

KEY = bytes(16)
EXAMPLE = {"hr_bpm": 72, "rmssd_ms": 41, "scl": 523, "scr_per_min": 3, "motion": 12, "hue": 200, "chroma": 180,
           "colour_age": 2, "consent": 19, "battery": 87, "quality": 7}
# The worked example of protocol/PROTOCOL.md §2.1 (all-zero key, dev 0x0102, ctr 1), found independently.
EXAMPLE_ADVERT = "0201061bffffff300201010000003ae1f194c9d8d54ecefbeb420c347a85f4"


def test_example_advert_matches_research_note():
    rec = records.pack_telemetry(EXAMPLE)
    assert frame.advert(frame.seal(KEY, frame.TELEMETRY, 0x0102, 1, rec)).hex() == EXAMPLE_ADVERT
    assert records.unpack_telemetry(rec) == EXAMPLE


@pytest.mark.parametrize("direction", [frame.TO_HUB, frame.TO_BADGE])
def test_pure_ccm_agrees_with_cryptography(direction):
    rng = os.urandom
    for _ in range(200):
        key, rec = rng(16), rng(13)
        ftype, dev, ctr = rng(1)[0] % 5, int.from_bytes(rng(2), "little"), int.from_bytes(rng(4), "little")
        sealed = frame.seal(key, ftype, dev, ctr, rec, direction)
        assert sealed == crypto.seal(key, ftype, dev, ctr, rec, direction)
        nonce = frame.nonce(sealed, direction)
        assert nonce == b"LP" + sealed[:7] + bytes((direction, 0, 0, 0))
        assert ccm.encrypt(AES(key), nonce, rec) == sealed[7:]
        assert frame.open_frame(key, sealed, direction) == rec == crypto.open_frame(key, sealed, direction)
        assert frame.open_frame(key, sealed, direction ^ 1) is None
        assert crypto.open_frame(key, sealed, direction ^ 1) is None


def test_header_and_advert_roundtrip():
    sealed = frame.seal(KEY, frame.HEARTBEAT, 0xBEEF, 0x01020304, records.pack_heartbeat(3, 50, 1))
    assert frame.parse_header(sealed) == (0x31, 1, 0xBEEF, 0x01020304)
    adv = frame.advert(sealed, company=0x1234)
    assert adv[:7] == bytes.fromhex("0201061bff3412") and len(adv) == 31
    assert frame.frame_from_advert(adv, company=0x1234) == sealed
    assert frame.frame_from_advert(adv) is None


def test_key_derivation_is_hmac_sha256():
    site = bytes(range(16))
    for dev in (0, 1, 258, 65535):
        want = hmac.new(site, b"LP/dev/" + str(dev).encode(), hashlib.sha256).digest()[:16]
        assert keys.derive_device_key(site, dev) == want
    long_key = bytes(100)
    assert keys.hmac_sha256(long_key, b"m") == hmac.new(long_key, b"m", hashlib.sha256).digest()
    with pytest.raises(ValueError):
        keys.derive_device_key(site, 70000)


def test_records_of_every_type_roundtrip():
    assert records.unpack_heartbeat(records.pack_heartbeat(0x31, 0x80 | 55, 5)) == {
        "consent": 0x31, "battery": 0xB7, "quality": 5}
    gc = records.pack_group_colour(10, 20, 30, records.MODE_PULSE, 60, 128, 200)
    assert records.unpack_group_colour(gc)["synchrony"] == 200 and gc[7:] == bytes(6)
    assert records.unpack_command(records.pack_cmd_time(1_700_000_000)) == {"cmd": 2, "unix_s": 1_700_000_000}
    assert records.unpack_command(records.pack_cmd_backlog_ack(77)) == {"cmd": 3, "ctr": 77}
    gk = bytes(range(16, 32))
    p0, p1 = records.group_key_commands(7, gk)
    u0, u1 = records.unpack_command(p0), records.unpack_command(p1)
    assert (u0["part"], u1["part"], u0["group_id"]) == (0, 1, 7) and u0["key_part"] + u1["key_part"] == gk
    for ftype, rec in ((3, records.pack_cmd_colour(1, 2, 3)), (3, records.pack_cmd_consent_prompt(2)), (2, gc)):
        assert records.check_record(ftype, rec)
        assert records.pack_record(ftype, records.unpack_record(ftype, rec)) == rec


def test_pack_telemetry_sequence_equals_dict():
    seq = [EXAMPLE[n] for n in records.TELEMETRY_FIELDS]
    assert records.pack_telemetry(seq) == records.pack_telemetry(EXAMPLE)
    buf = bytearray(13)
    records.pack_telemetry_into(buf, seq)
    assert bytes(buf) == records.pack_telemetry(EXAMPLE)
    defaults = records.unpack_telemetry(records.pack_telemetry({}))
    assert (defaults["hr_bpm"], defaults["rmssd_ms"], defaults["scl"], defaults["colour_age"]) == (0, 255, 0xFFFF, 255)
    for bad in ({"hr_bpm": 256}, {"scl": -1}, {"nope": 1}, {"hue": "x"}):
        with pytest.raises(ValueError):
            records.pack_telemetry(bad)


def _verifier(**kw):
    return verifier.Verifier({258: KEY, 300: bytes([1]) * 16}, **kw)


def test_rejection_reasons_in_order():
    rec = records.pack_telemetry(EXAMPLE)
    good = frame.seal(KEY, 0, 258, 10, rec)
    v = _verifier()
    cases = [
        (good[:23], "length"),
        (bytes([0x50]) + good[1:], "version"),  # version 2
        (bytes([0x20]) + good[1:], "unsealed"),
        (frame.seal(KEY, 2, 258, 11, rec, frame.TO_BADGE), "type"),  # group colour is not for the hub
        (bytes([0x35]) + good[1:], "type"),
        (frame.seal(KEY, 0, 999, 1, rec), "unknown_device"),
        (good[:20] + bytes(4), "mic"),
        (frame.seal(KEY, 0, 258, 9, rec, frame.TO_BADGE), "mic"),  # wrong direction
        (good, None),
        (good, "duplicate"),
        (frame.seal(KEY, 0, 258, 10, records.pack_telemetry(dict(EXAMPLE, hue=1))), "replay"),
        (frame.seal(KEY, 0, 258, 5, rec), "replay"),
        (frame.seal(KEY, 0, 258, 11, records.pack_telemetry(dict(EXAMPLE, hr_bpm=20))), "semantic"),
        (frame.seal(KEY, 0, 258, 11, records.pack_telemetry(dict(EXAMPLE, hr_bpm=25))), "replay"),  # 11 is spent
        (frame.advert(frame.seal(KEY, 0, 258, 12, rec)), None),
        (frame.seal(KEY, 1, 258, 13, rec), "semantic"),  # heartbeat carrying physiology
        (frame.seal(KEY, 1, 258, 14, records.pack_heartbeat(19, 87, 7)), None),
    ]
    for data, reason in cases:
        got = v.verify(data)
        assert got.reason == reason, (data.hex(), got)
        assert got.ok == (reason is None)
    assert v.counters.get(258) == 14
    assert v.counts["ok"] == 3 and v.counts["replay"] == 3 and v.counts["type"] == 2


def test_counter_moves_only_after_mic():
    v = _verifier()
    rec = records.pack_telemetry(EXAMPLE)
    forged = frame.seal(bytes([9]) * 16, 0, 258, 1000, rec)
    assert v.verify(forged).reason == "mic"
    assert v.counters.get(258) == -1
    assert v.verify(frame.seal(KEY, 0, 258, 1, rec)).ok


def test_backlog_bypasses_counter_and_does_not_advance():
    v = _verifier()
    rec = records.pack_telemetry(EXAMPLE)
    assert v.verify(frame.seal(KEY, 0, 258, 50, rec)).ok
    old = frame.seal(KEY, 4, 258, 20, rec)
    for _ in range(2):  # the store dedups by (dev_id, ctr); the verifier only authenticates
        got = v.verify(old)
        assert got.ok and got.ftype == 4 and got.ctr == 20
    assert v.counters.get(258) == 50
    assert v.verify(old[:-1] + bytes([old[-1] ^ 1])).reason == "mic"


def test_consent_revision_check():
    v = _verifier(revisions=(1,))
    ok = records.pack_telemetry(dict(EXAMPLE, consent=0x13))
    bad = records.pack_telemetry(dict(EXAMPLE, consent=0x23))
    assert v.verify(frame.seal(KEY, 0, 258, 1, ok)).ok
    assert v.verify(frame.seal(KEY, 0, 258, 2, bad)).reason == "semantic"


def test_any_direction_verifier_opens_every_type_with_separate_counters():
    v = _verifier(direction=verifier.ANY)
    assert v.verify(frame.seal(KEY, 3, 258, 5, records.pack_cmd_colour(1, 2, 3), frame.TO_BADGE)).ok
    assert v.verify(frame.seal(KEY, 0, 258, 1, records.pack_telemetry(EXAMPLE))).ok  # badge counter space
    assert v.verify(frame.seal(KEY, 3, 258, 5, records.pack_cmd_time(5), frame.TO_BADGE)).reason == "replay"


def test_verify_never_raises_on_odd_input():
    v = verifier.Verifier({258: b"short"})
    good = frame.seal(KEY, 0, 258, 1, records.pack_telemetry(EXAMPLE))
    assert v.verify(good).reason == "unknown_device"
    for junk in (b"", bytearray(24), memoryview(good), bytes(31), bytes(1000)):
        assert v.verify(junk).reason in verifier.REASONS
    assert v.verify(None).reason == "length"


def test_slip_roundtrip_with_text_lines():
    frames = [bytes([0xC0, 0xDB, 0x00]) * 8, os.urandom(24), bytes(24)]
    stream = b"boot ok\r\n" + slip.slip_encode(frames[0]) + b"log: t=1\n" + b"".join(slip.slip_encode(f) for f in frames[1:])
    for chunk in (1, 3, len(stream)):
        dec = slip.SlipDecoder()
        events = []
        for i in range(0, len(stream), chunk):
            events += dec.feed(stream[i:i + chunk])
        assert events == [("text", b"boot ok"), ("frame", frames[0]), ("text", b"log: t=1"),
                          ("frame", frames[1]), ("frame", frames[2])]
    dec = slip.SlipDecoder()
    assert dec.feed(b"\xc0ab\xdb\x01cd\xc0\xc0ok\xc0") == [("frame", b"ok")] and dec.errors == 1
    # joining mid-frame: the tail is taken as text, the END END pair resyncs
    # (a fixed payload: random bytes hold an unescaped END or ESC one time in 25, and that was never a frame)
    payload = bytes(range(1, 6))
    assert slip.SlipDecoder().feed(b"zz\xc0\xc0" + payload + b"\xc0")[-1] == ("frame", payload)


def test_seal_and_open_cost_four_aes_blocks(monkeypatch):
    calls = []
    real = AES.encrypt_block
    monkeypatch.setattr(AES, "encrypt_block", lambda self, src, dst: (calls.append(1), real(self, src, dst)))
    key = bytes([7]) * 16
    sealed = frame.seal(key, 0, 1, 1, bytes(13))  # also warms the per-key cache
    calls.clear()
    frame.seal(key, 0, 1, 2, bytes(13))
    assert len(calls) == 4
    calls.clear()
    assert frame.open_frame(key, sealed) == bytes(13)
    assert len(calls) == 4


def test_keys_as_bytearray_work_on_both_paths():
    rec = records.pack_telemetry(EXAMPLE)
    key = bytearray(range(16))
    sealed = crypto.seal(key, 0, 258, 1, rec)
    assert sealed == frame.seal(bytes(key), 0, 258, 1, rec)
    for opener in (None, frame.open_frame):
        got = verifier.Verifier({258: key}, opener=opener).verify(memoryview(sealed))
        assert got.ok and got.record == rec


def test_backend_errors_propagate_but_bad_keys_do_not_raise():
    class BrokenStore:
        def get(self, dev_id):
            return -1

        def set(self, dev_id, ctr):
            raise OSError("disk full")

    sealed = frame.seal(KEY, 0, 258, 1, records.pack_telemetry(EXAMPLE))
    with pytest.raises(OSError):  # a broken store must not masquerade as bad frames
        verifier.Verifier({258: KEY}, counters=BrokenStore()).verify(sealed)
    for odd_key in (12345, "0" * 16, [300] * 16):
        assert verifier.Verifier({258: odd_key}).verify(sealed).reason in ("unknown_device", "mic")


def test_ccm_parameter_checks():
    aes = AES(KEY)
    for nonce, tag in ((bytes(6), 4), (bytes(14), 4), (bytes(13), 5), (bytes(13), 18), (bytes(13), 2)):
        with pytest.raises(ValueError):
            ccm.encrypt(aes, nonce, b"x", tag_len=tag)
    assert ccm.decrypt(aes, bytes(13), b"abc", tag_len=4) is None  # shorter than a tag
    assert ccm.decrypt(aes, bytes(13), ccm.encrypt(aes, bytes(13), b"", b"hdr"), b"hdr") == b""
    with pytest.raises(ValueError):
        frame.seal(KEY, 0, 1, 1, bytes(13), direction=2)
    with pytest.raises(ValueError):
        crypto.seal(KEY, 0, 1, 1, bytes(13), direction=2)
