"""`lifepalette doctor` on this machine, on a pretend Raspberry Pi, and against a virtual badge; deploy files."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from helpers.pty_badge import PtyBadge
from lifepalette import cli
from lifepalette.paths import REPO_ROOT
from lifepalette.tools.doctor import System, bluetooth_experimental, run_checks

PI_UNIT = "[Service]\nType=dbus\nExecStart=/usr/libexec/bluetooth/bluetoothd\n"


class PretendPi(System):
    def __init__(self, *, experimental: bool, bluez: str = "bluetoothctl: 5.66", dialout: bool = True,
                 adapters: tuple[str, ...] = ("hci0",)):
        self.files = {"/proc/device-tree/model": "Raspberry Pi 4 Model B Rev 1.5\x00",
                      "/lib/systemd/system/bluetooth.service": PI_UNIT}
        if experimental:
            self.files["/etc/systemd/system/bluetooth.service.d/experimental.conf"] = (
                REPO_ROOT / "deploy" / "bluetooth-experimental.conf").read_text()
        self.bluez = bluez
        self.dialout = dialout
        self.adapters = list(adapters)

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in ("bluetoothctl", "btmgmt") else super().which(name)

    def run(self, cmd: list[str], timeout: float = 10) -> str | None:
        return self.bluez if cmd[0] == "bluetoothctl" else super().run(cmd, timeout)

    def read_text(self, path: str | Path) -> str | None:
        return self.files.get(str(path))

    def listdir(self, path: str) -> list[str]:
        if path == "/sys/class/bluetooth":
            return self.adapters
        prefix = path.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self.files if p.startswith(prefix))

    def user_groups(self) -> tuple[str, set[str], bool]:
        return "pi", {"pi", "dialout"} if self.dialout else {"pi"}, False

    def serial_ports(self) -> list[tuple[str, int | None, int | None]]:
        return [("/dev/ttyUSB0", 0x10C4, 0xEA60), ("/dev/ttyAMA0", None, None)]


def statuses(findings) -> dict[str, str]:
    return {f.what: f.status for f in findings}


def test_pi_hub_without_experimental_flag_is_told_how_to_fix_it():
    findings = run_checks(PretendPi(experimental=False), hub=True)
    by_what = {f.what: f for f in findings}
    assert by_what["bluetoothd --experimental"].status == "FIX"
    assert "bluetooth-experimental.conf" in by_what["bluetoothd --experimental"].detail
    assert by_what["bluez"].status == "OK" and by_what["bluez"].detail == "5.66"
    assert by_what["badges on USB"].detail == "/dev/ttyUSB0 (CP210x)"


def test_pi_hub_with_our_dropin_passes_bluetooth_checks():
    s = statuses(run_checks(PretendPi(experimental=True), hub=True))
    assert s["bluetoothd --experimental"] == s["bluetooth adapter"] == s["bluez"] == "OK"


def test_old_bluez_missing_adapter_and_dialout_are_failures_on_a_hub():
    s = statuses(run_checks(PretendPi(experimental=True, bluez="bluetoothctl: 5.50", dialout=False, adapters=()),
                            hub=True))
    assert s["bluez"] == s["bluetooth adapter"] == s["serial permissions"] == "FIX"
    dev = statuses(run_checks(PretendPi(experimental=True, adapters=()), hub=False))
    assert dev["bluetooth adapter"] == "WARN", "no Bluetooth on a dev machine is only a warning"


def test_experimental_flag_parsing_follows_systemd_override_rules():
    assert not bluetooth_experimental([PI_UNIT])
    assert bluetooth_experimental([PI_UNIT, "[Service]\nExecStart=\nExecStart=/usr/sbin/bluetoothd -E\n"])
    assert bluetooth_experimental(["ExecStart=/usr/libexec/bluetooth/bluetoothd --experimental"])
    assert not bluetooth_experimental(["ExecStart=/usr/libexec/bluetooth/bluetoothd --experimental",
                                       "ExecStart=\nExecStart=/usr/libexec/bluetooth/bluetoothd"])


def test_doctor_on_this_machine_and_a_virtual_badge(tmp_path, capsys):
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "crash.log").write_text("C 5015 320 MemoryError: memory allocation failed\nR 1\n")
    with PtyBadge(tmp_path / "fs") as vb:
        vb.start_repl()
        code = cli.main(["doctor", "--port", vb.port])
    out = capsys.readouterr().out
    for what in ("python", "packages", "mpy-cross", "micropython"):
        assert re.search(rf"^OK   {what}: ", out, re.M), out
    assert re.search(rf"^OK   badge on {vb.port}: MicroPython \d+\.\d+\.\d+ on linux \(virtual badge", out, re.M)
    assert "WARN crash log: crash after 5.015 s uptime, tick 320: MemoryError: memory allocation failed" in out
    assert "WARN crash log: streak ended by a power-on boot" in out
    assert not re.search(r"^FIX  (bluetooth|bluez)", out, re.M), "Bluetooth is only a warning without --hub"
    assert code == (1 if re.search(r"^FIX ", out, re.M) else 0)
    assert cli.main(["doctor", "--port", str(tmp_path / "ttyUSB7")]) == 1
    assert "FIX  badge on" in capsys.readouterr().out


def test_hub_unit_runs_a_command_line_the_hub_accepts():
    unit = (REPO_ROOT / "deploy" / "lifepalette-hub.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["User"] == "lifepalette" and settings["Restart"] == "on-failure"
    assert settings["StateDirectory"] == "lifepalette"
    env = dict(line.split("=", 1) for line in (REPO_ROOT / "deploy" / "hub.env").read_text().splitlines()
               if line and not line.startswith("#"))
    env["LP_HUB_ARGS"] = "--serial /dev/lifepalette-badge-0"
    env["CREDENTIALS_DIRECTORY"] = "/run/credentials/lifepalette-hub.service"
    command = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env[m.group(1) or m.group(2)], settings["ExecStart"])
    argv = shlex.split(command)
    assert argv[0].endswith("/lifepalette")
    args = cli.build_parser().parse_args(argv[1:])
    assert args.command == "hub" and args.ble and "8080" in str(args.http) and args.token is None
    assert args.token_file == "/run/credentials/lifepalette-hub.service/operator-token"
    assert args.serial == ["/dev/lifepalette-badge-0"] and args.db == "/var/lib/lifepalette/hub.db"


def test_hub_unit_caches_the_scoring_kernels_where_the_service_may_write():
    # the install is read-only to the service (ProtectSystem=strict): without a writable cache the kernels would
    # compile again at every start
    unit = (REPO_ROOT / "deploy" / "lifepalette-hub.service").read_text()
    lines = [line for line in unit.splitlines() if "=" in line and not line.startswith("#")]
    settings = dict(line.split("=", 1) for line in lines)
    env = dict(line.split("=", 1)[1].split("=", 1) for line in lines if line.startswith("Environment="))
    assert settings["ProtectSystem"] == "strict"
    writable = settings["ReadWritePaths"].split()
    assert any(env["NUMBA_CACHE_DIR"].startswith(path.rstrip("/") + "/") for path in writable), env


def test_udev_rule_covers_the_esp32_usb_bridges():
    rules = [line for line in (REPO_ROOT / "deploy" / "99-lifepalette-badge.rules").read_text().splitlines()
             if line and not line.startswith("#")]
    ids = {re.search(r'idVendor}=="(\w+)".*idProduct}=="(\w+)"', line).groups() for line in rules}
    assert ids == {("10c4", "ea60"), ("1a86", "7523"), ("303a", "1001")}
    for line in rules:
        assert 'GROUP="dialout"' in line and 'SYMLINK+="lifepalette-badge-%n"' in line
