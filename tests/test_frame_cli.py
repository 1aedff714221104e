"""`lifepalette frame` through the real console entry point: JSON fields and exit codes exactly (issue 2 item 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lifepalette.paths import PROTOCOL_DIR, REPO_ROOT

LP = str(Path(sys.executable).parent / "lifepalette")
ZERO_KEY = "00" * 16
EXAMPLE = {"hr_bpm": 72, "rmssd_ms": 41, "scl": 523, "scr_per_min": 3, "motion": 12, "hue": 200, "chroma": 180,
           "colour_age": 2, "consent": 19, "battery": 87, "quality": 7}
EXAMPLE_ADVERT = "0201061bffffff300201010000003ae1f194c9d8d54ecefbeb420c347a85f4"
EXAMPLE_FRAME = EXAMPLE_ADVERT[14:]
GOLDEN = json.loads((PROTOCOL_DIR / "vectors" / "lp_frames.json").read_text())


def lp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([LP, "frame", *args], input=stdin, capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT)


def lines(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def assert_usage_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in err[0], err[0]


def test_seal_example_frame_and_advert():
    fields = [f"--field={k}={v}" for k, v in EXAMPLE.items()]
    frame = lp("seal", "--key", ZERO_KEY, "--dev", "258", "--ctr", "1", "--type", "telemetry", *fields)
    advert = lp("seal", "--key", ZERO_KEY, "--dev", "0x102", "--ctr", "1", "--type", "telemetry", *fields, "--advert")
    assert (frame.returncode, frame.stdout, frame.stderr) == (0, EXAMPLE_FRAME + "\n", "")
    assert advert.stdout.strip() == EXAMPLE_ADVERT


def test_open_prints_raw_wire_values():
    proc = lp("open", "--key", ZERO_KEY, EXAMPLE_FRAME)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == json.dumps({"dev_id": 258, "ctr": 1, "type": "telemetry", "record": EXAMPLE}) + "\n"


def test_one_verifier_across_the_command_line():
    later = GOLDEN["frames"][1]  # ctr 2, same device key
    key = later["key"]
    first = GOLDEN["frames"][0]
    proc = lp("open", "--key", key, first["frame"], first["frame"], later["advert"], first["frame"])
    assert proc.returncode == 1
    got = lines(proc)
    assert got[0] == {"dev_id": 258, "ctr": 1, "type": "telemetry", "record": first["fields"]}
    assert got[1] == {"rejected": "duplicate"}
    assert got[2]["ctr"] == 2 and got[2]["record"]["hr_bpm"] == 0 and got[2]["record"]["consent"] == 0x12
    assert got[3] == {"rejected": "replay"}


@pytest.mark.parametrize("golden", GOLDEN["frames"][:-1], ids=lambda g: g["name"])
def test_every_type_seals_to_the_golden_and_opens_with_its_own_fields(golden):
    fields = [f"--field={k}={v}" for k, v in golden["fields"].items()]
    sealed = lp("seal", "--key", golden["key"], "--dev", str(golden["dev_id"]), "--ctr", str(golden["ctr"]),
                "--type", golden["type_name"], *fields)
    assert (sealed.returncode, sealed.stdout.strip()) == (0, golden["frame"]), sealed.stderr
    opened = lp("open", "--key", golden["key"], golden["advert"])
    assert opened.returncode == 0
    assert lines(opened) == [{"dev_id": golden["dev_id"], "ctr": golden["ctr"], "type": golden["type_name"],
                              "record": golden["fields"]}]


def test_keys_file_stdin_and_tolerant_hex(tmp_path):
    dev = GOLDEN["frames"][0]
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"258": dev["key"], "7": GOLDEN["group_key"]}))
    group = GOLDEN["frames"][3]
    spaced = " ".join(dev["frame"][i:i + 2] for i in range(0, 48, 2))
    coloned = ":".join("0x" + group["advert"][i:i + 2] for i in range(0, 62, 2))
    unknown = lp("seal", "--key", ZERO_KEY, "--dev", "999", "--ctr", "1", "--type", "heartbeat").stdout.strip()
    stdin = f"{spaced}\n\n{coloned}\n0x{unknown}\n{dev['frame'][:46]}\n"
    proc = lp("open", "--keys", str(keys), stdin=stdin)
    assert proc.returncode == 1
    got = lines(proc)
    assert got[0]["record"] == dev["fields"] and got[1]["type"] == "group_colour"
    assert got[1]["record"] == {"r": 255, "g": 120, "b": 30, "mode": 1, "ttl_s": 30, "arousal": 140, "synchrony": 99}
    assert got[2:] == [{"rejected": "unknown_device"}, {"rejected": "length"}]


def test_wrong_key_is_mic_and_tampered_advert_is_rejected():
    proc = lp("open", "--key", "11" * 16, EXAMPLE_FRAME)
    assert (proc.returncode, lines(proc)) == (1, [{"rejected": "mic"}])
    tampered = EXAMPLE_FRAME[:20] + ("0" if EXAMPLE_FRAME[20] != "0" else "1") + EXAMPLE_FRAME[21:]
    proc = lp("open", "--key", ZERO_KEY, "0201061bffffff" + tampered, "0201061bff3412" + EXAMPLE_FRAME)
    assert lines(proc) == [{"rejected": "mic"}, {"rejected": "length"}]


def test_inspect_without_key():
    proc = lp("inspect", EXAMPLE_ADVERT, GOLDEN["frames"][4]["frame"])
    assert proc.returncode == 0
    adv, cmd = lines(proc)
    assert adv == {"advert": True, "company": 0xFFFF, "hdr": 0x30, "version": 1, "sealed": True, "type": "telemetry",
                   "dev_id": 258, "ctr": 1, "ciphertext": EXAMPLE_FRAME[14:40], "mic": EXAMPLE_FRAME[40:]}
    assert (cmd["type"], cmd["hdr"], cmd["ctr"]) == ("command", 0x33, 1)


@pytest.mark.parametrize("args, needle", [
    (("open", "--key", ZERO_KEY, "zz" * 24), "not hex"),
    (("open", "--key", "00" * 15, EXAMPLE_FRAME), "16 bytes"),
    (("open", "--keys", "/nonexistent/keys.json", EXAMPLE_FRAME), "no such file"),
    (("open", EXAMPLE_FRAME), "--key"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "telemetry", "--field", "pulse=3"),
     "unknown field 'pulse'"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "telemetry", "--field", "hr_bpm=256"),
     "out of range"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "telemetry", "--field", "hr_bpm"), "NAME=VALUE"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "-1", "--type", "telemetry"), "--ctr"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "nonsense"), "invalid choice"),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "command"), "cmd="),
    (("seal", "--key", ZERO_KEY, "--dev", "1", "--ctr", "1", "--type", "command", "--field", "cmd=group_key",
      "--field", "key_part=0102"), "8 bytes"),
    (("inspect", "00" * 10), "24 bytes"),
])
def test_usage_errors_are_one_line_exit_2(args, needle):
    assert_usage_error(lp(*args), needle)


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid JSON"),
    ('["a"]', "JSON object"),
    ('{"x1": "' + ZERO_KEY + '"}', "not a decimal"),
    ('{"1": "abc"}', "16 bytes"),
])
def test_bad_keys_files(tmp_path, content, needle):
    path = tmp_path / "keys.json"
    path.write_text(content)
    assert_usage_error(lp("open", "--keys", str(path), EXAMPLE_FRAME), needle)


def test_bad_hex_on_stdin_is_a_usage_error():
    proc = lp("open", "--key", ZERO_KEY, stdin="hello world\n")
    assert_usage_error(proc, "not hex")
