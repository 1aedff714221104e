"""The crash log reaches the wearer's helper: `lifepalette monitor` marks crash lines (the badge prints its last
crash records at every boot), and decodes the sensor-missing and safe-mode quality bits."""

from __future__ import annotations

from lifepalette.tools.doctor import crash_log_findings
from lifepalette.tools.monitor import MonitorDecoder, describe_status

from protocol import records


def test_monitor_marks_crash_and_safe_mode_lines():
    lines = MonitorDecoder(clock=lambda: 0).feed(b"crash.log: C 5015 320 MemoryError: boom\r\nbadge up\r\n"
                                                  b"SAFE MODE: crash loop\r\n")
    tags = [ln.split()[1] for ln in lines]
    assert tags == ["crash", "log", "crash"] and lines[0].endswith("crash.log: C 5015 320 MemoryError: boom")


def test_status_bits_are_named():
    text = describe_status(0, 80, records.Q_SAFE_MODE)
    assert text.endswith("quality SAFE-MODE")
    assert "skin+SENSOR-MISSING" in describe_status(0, 80, records.Q_SKIN | records.Q_SENSOR_MISSING)


def test_crash_log_without_crashes_is_ok():
    assert [f.status for f in crash_log_findings(None)] == ["OK"]
    assert [f.status for f in crash_log_findings(b"K\n")] == ["OK"]
    found = list(crash_log_findings(b"C 0 -1 WDT: watchdog reset (main loop stalled)\n"))
    assert found[0].status == "WARN" and "before the first tick: WDT: watchdog reset" in found[0].detail
