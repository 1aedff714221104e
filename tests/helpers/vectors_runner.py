"""Vector runner shared by both interpreters (no tests here): `micropython this.py VECTOR_DIR` and CPython's
`run_all(dir)` compute every vector in protocol/vectors/ with protocol/ and emit one text line each, so the test can
compare MicroPython's bytes with CPython's and both with the files. MicroPython-valid code only.
"""

import json
import sys

from protocol import ccm, frame, keys, records, slip, verifier
from protocol.aes import AES


class _Repeat:
    """A long AAD (NIST C.4: 64 KiB) read lazily, so the badge-sized heap does not need to hold it."""

    def __init__(self, unit, times):
        self.unit = unit
        self.n = len(unit) * times

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.unit[i % len(self.unit)]


def _h(b):
    return "None" if b is None else bytes(b).hex()


def _load(d, name):
    with open(d + "/" + name) as f:
        return json.load(f)


def _fields(dct):
    parts = []
    for k in sorted(dct):
        v = dct[k]
        parts.append(k + "=" + (_h(v) if isinstance(v, (bytes, bytearray)) else str(v)))
    return ",".join(parts)


def ccm_lines(d, name, out):
    for v in _load(d, name)["vectors"]:
        aes = AES(bytes.fromhex(v["key"]))
        aad = bytes.fromhex(v["aad"])
        if v.get("aad_repeat"):
            aad = _Repeat(aad, v["aad_repeat"])
        nonce = bytes.fromhex(v["nonce"])
        pt = bytes.fromhex(v["plaintext"])
        enc = ccm.encrypt(aes, nonce, pt, aad, v["tag_len"])
        dec = ccm.decrypt(aes, nonce, enc, aad, v["tag_len"])
        bad = bytearray(enc)
        bad[0] ^= 0x80
        out.append("|".join((name, v["name"], _h(enc), _h(dec), _h(ccm.decrypt(aes, nonce, bad, aad, v["tag_len"])))))


def frame_lines(d, out):
    data = _load(d, "lp_frames.json")
    for v in data["frames"]:
        key = bytes.fromhex(v["key"])
        rec = bytes.fromhex(v["record"])
        direction = v["direction"]
        sealed = frame.seal(key, v["type"], v["dev_id"], v["ctr"], rec, direction)
        adv = frame.advert(sealed)
        opened = frame.open_frame(key, frame.frame_from_advert(adv), direction)
        wrong_dir = frame.open_frame(key, sealed, direction ^ 1)
        fields = records.unpack_record(v["type"], opened)
        repacked = records.pack_record(v["type"], fields)
        hdr = frame.parse_header(sealed)
        ok = records.check_record(v["type"], opened)
        out.append("|".join(("frame", v["name"], _h(sealed), _h(adv), _h(frame.nonce(sealed, direction)), _h(opened),
                             _h(wrong_dir), _fields(fields), _h(repacked), str(hdr[0]), str(hdr[1]), str(hdr[2]),
                             str(hdr[3]), str(ok))))
        if v["type"] == 0 or v["type"] == 4:  # the badge's allocation-free path: a sequence into a buffer
            buf = bytearray(13)
            records.pack_telemetry_into(buf, [fields[n] for n in records.TELEMETRY_FIELDS])
            out.append("telemetry_seq|" + v["name"] + "|" + _h(buf))
    for v in data["key_derivation"]:
        k = keys.derive_device_key(bytes.fromhex(v["site_key"]), v["dev_id"])
        out.append("|".join(("key", str(v["dev_id"]), _h(k))))
    for v in data["slip"]:
        enc = slip.slip_encode(bytes.fromhex(v["frame"]))
        events = slip.SlipDecoder().feed(b"log line\r\n" + enc)
        out.append("|".join(("slip", _h(enc), ";".join(e[0] + ":" + _h(e[1]) for e in events))))


def verifier_lines(d, out):
    data = _load(d, "lp_verifier.json")
    ks = {}
    for k in data["keys"]:
        ks[int(k)] = bytes.fromhex(data["keys"][k])
    v = verifier.Verifier(ks, direction=data["direction"])
    for step in data["steps"]:
        got = v.verify(bytes.fromhex(step["input"]))
        out.append("|".join(("verify", step["name"], str(got.ok), str(got.reason), str(got.dev_id), str(got.ctr),
                             str(got.ftype), _h(got.record))))
    out.append("counts|" + _fields(v.counts))
    out.append("last_ctr|" + ",".join(str(v.counters.get(int(k))) for k in sorted(data["last_ctr"])))


def run_all(d):
    out = []
    for name in ("rfc3610.json", "nist_sp800_38c.json", "bthome_v2.json"):
        ccm_lines(d, name, out)
    frame_lines(d, out)
    verifier_lines(d, out)
    return out


if __name__ == "__main__":
    for line in run_all(sys.argv[1]):
        print(line)
