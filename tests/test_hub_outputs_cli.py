"""`lifepalette hub --osc` wires the OSC output into the real hub process (received by a real python-osc server)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from helpers.osc import Receiver
from helpers.waits import wait_for


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_command_sends_osc_for_its_cove(tmp_path):
    with Receiver() as rx:
        cmd = [sys.executable, "-m", "lifepalette", "hub", "--db", str(tmp_path / "hub.db"),
               "--udp", f"127.0.0.1:{_free_udp_port()}", "--cove", "east", "--osc", f"127.0.0.1:{rx.port}",
               "--osc-rate", "10"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: "/lifepalette/east/contributors" in rx.addresses(), timeout=20,
                     what="the hub's first OSC send")
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    by_address = {a: args for a, args in rx.messages}
    # no badges: the cove is not ready and says so, with no palette for fewer than 5 people
    assert by_address["/lifepalette/east/contributors"] == (0,)
    assert by_address["/lifepalette/east/ready"] == (0,)
    assert "/lifepalette/east/palette" not in by_address


def test_hub_command_rejects_a_bad_osc_target_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lifepalette", "hub", "--db", str(tmp_path / "hub.db"),
                           "--udp", "127.0.0.1:0", "--osc", "nohostport:"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert "bad OSC target" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
