"""`lifepalette monitor` reading a virtual badge: a real MicroPython process writing log lines and SLIP-framed
sealed frames to a pty, exactly as the firmware writes them to USB serial."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.pty_badge import PtyBadge
from lifepalette import cli
from lifepalette.tools.monitor import AnyDevice, MonitorDecoder, load_keys

from protocol import frame, records
from protocol.slip import slip_encode

DEV_KEY = bytes(range(16))
GROUP_KEY = bytes(range(16, 32))
CONFIG = {"dev_id": 258, "key": DEV_KEY.hex(), "group_id": 1, "group_key": GROUP_KEY.hex(), "board": "esp32-devkitc"}

# Runs under MicroPython with stdout on the badge's serial port: one tick every 20 ms, each a log line, a
# telemetry frame, a heartbeat, a group colour (sealed towards the badge with the group key) and a forged frame.
BADGE_SCRIPT = f"""
import sys, time
from protocol import frame, records
from protocol.slip import slip_encode
DEV = {DEV_KEY!r}
GROUP = {GROUP_KEY!r}
out = sys.stdout.buffer
consent = records.make_consent(physio=True, colour=True, revision=1)
for tick in range(1, 3000):
    print('tick', tick, 'free', 12345)
    tel = records.pack_telemetry({{'hr_bpm': 72, 'rmssd_ms': 41, 'scl': 512, 'scr_per_min': 3, 'motion': 12,
                                   'hue': 120, 'chroma': 80, 'colour_age': 2, 'consent': consent,
                                   'battery': 87 | records.BATTERY_CHARGING,
                                   'quality': records.Q_SKIN | records.Q_HR}})
    out.write(slip_encode(frame.seal(DEV, frame.TELEMETRY, 258, 3 * tick, tel)))
    out.write(slip_encode(frame.seal(DEV, frame.HEARTBEAT, 258, 3 * tick + 1, records.pack_heartbeat(consent, 87, 1))))
    gc = records.pack_group_colour(255, 128, 0, records.MODE_PULSE, 10, 40, 70)
    out.write(slip_encode(frame.seal(GROUP, frame.GROUP_COLOUR, 1, tick, gc, frame.TO_BADGE)))
    forged = bytearray(frame.seal(DEV, frame.TELEMETRY, 258, 3 * tick + 2, tel))
    forged[-1] ^= 1
    out.write(slip_encode(bytes(forged)))
    time.sleep_ms(20)
"""


@pytest.fixture
def talking_badge(tmp_path: Path):
    script = tmp_path / "talk.py"
    script.write_text(BADGE_SCRIPT)
    with PtyBadge(tmp_path / "fs") as vb:
        vb.start_script(script)
        yield vb


def test_cli_monitor_decodes_frames_and_log_lines_from_a_micropython_badge(talking_badge, tmp_path, capsys):
    config = tmp_path / "badge.json"
    config.write_text(json.dumps(CONFIG))
    assert cli.main(["monitor", "--port", talking_badge.port, "--config", str(config), "--frames", "12"]) == 0
    out = capsys.readouterr().out
    assert "telemetry dev 258" in out
    assert ("hr 72 bpm, rmssd 41 ms, scl 512, scr 3/min, motion 12, colour hue 120 chroma 80 age 2 s, "
            "consent physio+colour rev 1, battery 87% charging, quality skin+hr") in out
    assert "heartbeat dev 258" in out and "battery 87%, quality skin" in out
    assert "group_colour group 1" in out and "colour rgb(255,128,0) pulse ttl 10 s, arousal 40, synchrony 70" in out
    assert "REJECTED (mic)" in out
    assert " log   tick " in out


def test_monitor_without_keys_shows_headers_only(talking_badge, capsys):
    assert cli.main(["monitor", "--port", talking_badge.port, "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "telemetry dev 258" in out and "(sealed: pass --key" in out
    assert "hr 72" not in out


def test_ctrl_c_exits_cleanly(talking_badge):
    proc = subprocess.Popen([sys.executable, "-m", "lifepalette", "monitor", "--port", talking_badge.port, "--key",
                             DEV_KEY.hex()], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert " log " in first or " frame " in first
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_decoder_is_independent_of_how_bytes_arrive():
    stream = b"boot ok\r\n" + b"".join(
        slip_encode(frame.seal(DEV_KEY, frame.HEARTBEAT, 7, ctr, records.pack_heartbeat(records.make_consent(
            colour=True), 50, 0))) + b"log %d\n" % ctr for ctr in range(1, 20))
    stream += slip_encode(bytes([0xC0, 0xDB]) * 3)  # escapes inside a short junk frame

    def lines(chunks: list[bytes]) -> list[str]:
        decoder = MonitorDecoder(AnyDevice(DEV_KEY), clock=lambda: 0.0)
        return [line for chunk in chunks for line in decoder.feed(chunk)]

    whole = lines([stream])
    assert whole == lines([stream[i:i + 1] for i in range(len(stream))])
    assert whole == lines([stream[i:i + 7] for i in range(0, len(stream), 7)])
    assert sum(" frame heartbeat dev 7 #" in line for line in whole) == 19
    assert "consent colour rev 0, battery 50%, quality none" in whole[1]
    assert whole[-1].endswith("6 bytes: not a frame (c0dbc0dbc0db...)")


def test_key_files_and_bad_keys(tmp_path, capsys):
    listing = tmp_path / "keys.json"
    listing.write_text(json.dumps({"258": DEV_KEY.hex(), "259": GROUP_KEY.hex()}))
    assert load_keys(listing) == {258: DEV_KEY, 259: GROUP_KEY}
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([CONFIG, {**CONFIG, "dev_id": 300}]))
    assert load_keys(configs) == {258: DEV_KEY, 1: GROUP_KEY, 300: DEV_KEY}
    assert cli.main(["monitor", "--port", "/dev/null", "--key", "abc"]) == 2
    assert "32 hex digits" in capsys.readouterr().err
    assert cli.main(["monitor", "--port", str(tmp_path / "nope"), "--key", DEV_KEY.hex()]) == 2
    assert "no such port" in capsys.readouterr().err
