"""`lifepalette analyze` through the installed console script (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LP = Path(sys.executable).parent / "lifepalette"


def lp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LP), "analyze", *args], capture_output=True, text=True, timeout=120)


def pulse(seconds: int, rate: float, hr: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    phase = (t * hr / 60.0) % 1.0
    return 500 + 200 * np.exp(-0.5 * ((phase - 0.2) / 0.07) ** 2) + 60 * np.exp(-0.5 * ((phase - 0.5) / 0.1) ** 2)


def test_ppg_csv_with_header_and_columns_prints_seconds_and_beats(tmp_path):
    x = pulse(30, 100, 72)
    f = tmp_path / "rec.csv"
    f.write_text("time,ppg\n" + "\n".join(f"{i / 100:.2f},{v:.1f}" for i, v in enumerate(x)) + "\n")
    r = lp(str(f), "--kind", "ppg", "--rate", "100", "--column", "1", "--beats")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(s) for s in r.stdout.splitlines()]
    seconds = [d for d in lines if "t" in d]
    beats = [d["beat_s"] for d in lines if "beat_s" in d]
    assert [d["t"] for d in seconds] == list(range(30))
    assert set(seconds[0]) == {"t", "hr_bpm", "rmssd_ms", "quality"}
    assert abs(seconds[-1]["hr_bpm"] - 72) <= 1 and seconds[-1]["quality"] & 2
    assert 30 <= len(beats) <= 36 and abs(np.median(np.diff(beats)) - 60 / 72) < 0.02


def test_eda_whitespace_text_in_microsiemens(tmp_path):
    t = np.arange(0, 40, 0.1)
    us = 4.0 + 0.4 * np.clip(np.exp(-(t - 12) / 3) - np.exp(-(t - 12) / 0.7), 0, None) * (t > 12)
    f = tmp_path / "eda.txt"
    f.write_text("\n".join(f"{v:.4f}" for v in us))
    r = lp(str(f), "--kind", "eda", "--rate", "10")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(s) for s in r.stdout.splitlines()]
    assert len(lines) == 39
    assert abs(lines[5]["scl"] - 400) <= 2  # 0.01 uS
    assert lines[-1]["scr_per_min"] >= 1


def test_acc_three_columns_and_temp(tmp_path):
    rng = np.random.default_rng(0)
    acc = np.tile([0.0, 0.0, 1.0], (20 * 50, 1)) + rng.standard_normal((1000, 3)) * 0.005
    acc[500:] += np.sin(np.arange(500) / 50 * 2 * np.pi * 2)[:, None] * 0.8
    f = tmp_path / "acc.csv"
    f.write_text("\n".join(",".join(f"{v:.4f}" for v in row) for row in acc))
    lines = [json.loads(s) for s in lp(str(f), "--kind", "acc", "--rate", "50").stdout.splitlines()]
    assert lines[3]["motion"] < 10 and lines[15]["motion"] > 32 and lines[15]["quality"] & 8
    g = tmp_path / "temp.csv"
    g.write_text("\n".join(["33.1"] * 10))
    out = [json.loads(s) for s in lp(str(g), "--kind", "temp", "--rate", "1").stdout.splitlines()]
    assert len(out) == 10 and set(out[0]) == {"t", "quality"}


@pytest.mark.parametrize("content,args,message", [
    (None, ["--kind", "ppg", "--rate", "100"], "cannot read"),
    ("1\n2\n", ["--kind", "ecg", "--rate", "100"], "unknown kind"),
    ("", ["--kind", "ppg", "--rate", "100"], "no samples"),
    ("1\n2\nabc\n", ["--kind", "ppg", "--rate", "100"], "not a number"),
    ("1,2\n3\n", ["--kind", "ppg", "--rate", "100"], "columns"),
    ("1\n2\n", ["--kind", "ppg", "--rate", "100", "--column", "3"], "--column"),
    ("1\n2\n3\n", ["--kind", "ppg", "--rate", "100"], "shorter than one second"),
    ("1\n" * 300, ["--kind", "ppg", "--rate", "0"], "--rate"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, content, args, message):
    f = tmp_path / "in.csv"
    if content is not None:
        f.write_text(content)
    r = lp(str(f), *args)
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_timestamp_column_with_spaces_is_one_cell_and_only_the_chosen_column_must_be_numeric(tmp_path):
    # heartpy's data3.csv style: "datetime,hr" with a date and a time in the first cell
    x = pulse(20, 100, 90)
    f = tmp_path / "stamped.csv"
    f.write_text("datetime,hr\n" + "\n".join(f"2016-11-24 13:58:{i / 100:05.2f},{v:.0f}" for i, v in enumerate(x)))
    r = lp(str(f), "--kind", "ppg", "--rate", "100", "--column", "1")
    assert r.returncode == 0, r.stderr
    seconds = [json.loads(s) for s in r.stdout.splitlines()]
    assert len(seconds) == 20 and abs(seconds[-1]["hr_bpm"] - 90) <= 1
    # the timestamp column itself is not a signal: one clear line, exit 2
    r = lp(str(f), "--kind", "ppg", "--rate", "100", "--column", "0")
    assert r.returncode == 2 and "not a number" in r.stderr and "Traceback" not in r.stderr


def test_ragged_rows_are_a_clear_error(tmp_path):
    f = tmp_path / "ragged.csv"
    f.write_text("1,2\n3,4\n5\n")
    r = lp(str(f), "--kind", "eda", "--rate", "16")
    assert r.returncode == 2 and "ragged.csv:3" in r.stderr and len(r.stderr.strip().splitlines()) == 1
