"""protocol/vectors/*.json under both interpreters: MicroPython's output must equal CPython's byte for byte, and
both must equal the committed files (RFC 3610, NIST SP 800-38C, BTHome v2, Life Palette goldens)."""

from __future__ import annotations

import json

import pytest
from helpers.vectors_runner import run_all
from lifepalette import crypto
from lifepalette.paths import PROTOCOL_DIR, REPO_ROOT

from protocol import frame, verifier

VECTORS = PROTOCOL_DIR / "vectors"
RUNNER = REPO_ROOT / "tests" / "helpers" / "vectors_runner.py"


def _load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def _expected_lines() -> list[str]:
    """What the runner must print, built from the JSON files alone."""
    lines = []
    for name in ("rfc3610.json", "nist_sp800_38c.json", "bthome_v2.json"):
        for v in _load(name)["vectors"]:
            lines.append("|".join((name, v["name"], v["ciphertext"], v["plaintext"], "None")))
    data = _load("lp_frames.json")
    for v in data["frames"]:
        fields = ",".join(f"{k}={v['fields'][k]}" for k in sorted(v["fields"]))
        hdr = (frame.VERSION << 5) | 0x10 | v["type"]
        lines.append("|".join(("frame", v["name"], v["frame"], v["advert"], v["nonce"], v["record"], "None", fields,
                               v["record"], str(hdr), str(v["type"]), str(v["dev_id"]), str(v["ctr"]), "True")))
        if v["type"] in (0, 4):
            lines.append(f"telemetry_seq|{v['name']}|{v['record']}")
    for v in data["key_derivation"]:
        lines.append(f"key|{v['dev_id']}|{v['key']}")
    for v in data["slip"]:
        lines.append(f"slip|{v['encoded']}|text:{b'log line'.hex()};frame:{v['frame']}")
    ver = _load("lp_verifier.json")
    for s in ver["steps"]:
        lines.append("|".join(("verify", s["name"], str(s["reason"] is None), str(s["reason"]), str(s["dev_id"]),
                               str(s["ctr"]), str(s["type"]), str(s["record"]))))
    lines.append("counts|" + ",".join(f"{k}={ver['counts'][k]}" for k in sorted(ver["counts"])))
    lines.append("last_ctr|" + ",".join(str(ver["last_ctr"][k]) for k in sorted(ver["last_ctr"])))
    return lines


@pytest.fixture(scope="module")
def mpy_lines(mpy_session) -> list[str]:
    return mpy_session.run_file(RUNNER, str(VECTORS)).splitlines()


def test_micropython_and_cpython_give_identical_bytes(mpy_lines):
    cpython_lines = run_all(str(VECTORS))
    assert len(mpy_lines) == len(cpython_lines) > 60
    for mp, cp in zip(mpy_lines, cpython_lines, strict=True):
        assert mp == cp


def test_both_match_the_committed_vectors(mpy_lines):
    assert mpy_lines == _expected_lines()


def test_vector_files_cover_what_the_issue_asks():
    assert len(_load("rfc3610.json")["vectors"]) >= 20
    assert {"SP 800-38C example C.1", "SP 800-38C example C.2", "SP 800-38C example C.3"} <= {
        v["name"] for v in _load("nist_sp800_38c.json")["vectors"]}
    assert {v["tag_len"] for v in _load("nist_sp800_38c.json")["vectors"]} == {4, 6, 8, 14}
    types = {v["type"] for v in _load("lp_frames.json")["frames"]}
    assert types == set(range(len(frame.TYPE_NAMES)))
    reasons = {s["reason"] for s in _load("lp_verifier.json")["steps"]}
    assert reasons == set(verifier.REASONS) | {None}


def test_openssl_fast_path_agrees_with_the_vectors():
    for name in ("rfc3610.json", "nist_sp800_38c.json", "bthome_v2.json"):
        for v in _load(name)["vectors"]:
            aad = bytes.fromhex(v["aad"]) * v.get("aad_repeat", 1)
            args = bytes.fromhex(v["key"]), bytes.fromhex(v["nonce"])
            assert crypto.ccm_encrypt(*args, bytes.fromhex(v["plaintext"]), aad, v["tag_len"]).hex() == v["ciphertext"]
            assert crypto.ccm_decrypt(*args, bytes.fromhex(v["ciphertext"]), aad, v["tag_len"]).hex() == v["plaintext"]
    for v in _load("lp_frames.json")["frames"]:
        key, rec = bytes.fromhex(v["key"]), bytes.fromhex(v["record"])
        assert crypto.seal(key, v["type"], v["dev_id"], v["ctr"], rec, v["direction"]).hex() == v["frame"]
        assert crypto.open_frame(key, bytes.fromhex(v["frame"]), v["direction"]) == rec


def test_pure_verifier_agrees_with_fast_verifier():
    ver = _load("lp_verifier.json")
    keys = {int(k): bytes.fromhex(h) for k, h in ver["keys"].items()}
    fast, pure = verifier.Verifier(keys, opener=crypto.open_frame), verifier.Verifier(keys)
    assert fast.open is crypto.open_frame
    for s in ver["steps"]:
        a, b = fast.verify(bytes.fromhex(s["input"])), pure.verify(bytes.fromhex(s["input"]))
        assert (a.reason, a.record) == (b.reason, b.record)
        assert a.reason == s["reason"]
    assert fast.counts == pure.counts == ver["counts"]


def test_bthome_example_nonce_layout():
    v = _load("bthome_v2.json")["vectors"][0]
    nonce = bytes.fromhex(v["nonce"])
    # MAC | UUID fcd2 (LE) | device info 0x41 (v2, encrypted) | counter: the published example's layout
    assert nonce[:6].hex() == "5448e68f80a5" and nonce[6:9].hex() == "d2fc41" and nonce[9:].hex() == "00112233"
    sd = bytes.fromhex(v["service_data"])
    assert sd[3:-8] + sd[-4:] == bytes.fromhex(v["ciphertext"])
