"""`lifepalette analyze` through the installed console script (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lifepalette.tools.peak_rss import measure

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


# --- streaming: fixed memory for any file size, the same numbers as the whole-file analysis ---

MEMORY_LIMIT_MB = 200


def _write_big_csv(path: Path, megabytes: int) -> int:
    """A timestamped two-column PPG CSV of about `megabytes` MB (one second of text repeated); returns the rows."""
    rate = 128
    x = pulse(1, rate, 60)  # exactly one beat per second: the repeated block is a continuous pulse
    block = "".join(f"2016-11-24 13:58:{i / rate:07.4f},{v:.3f}\n" for i, v in enumerate(x))
    repeats = megabytes * 1_000_000 // len(block) + 1
    with path.open("w") as f:
        f.write("datetime,ppg\n")
        chunk = block * 256
        for _ in range(repeats // 256):
            f.write(chunk)
        f.write(block * (repeats % 256))
    return repeats * rate


def test_analyze_memory_is_bounded_and_does_not_grow_with_the_file(tmp_path):
    peaks = []
    for mb in (20, 210):
        f = tmp_path / f"big{mb}.csv"
        rows = _write_big_csv(f, mb)
        assert f.stat().st_size >= mb * 1_000_000
        # measured from a small launcher: a child forked from pytest itself would count pytest's pages too
        use = measure([str(LP), "analyze", str(f), "--kind", "ppg", "--rate", "128", "--column", "1"],
                      tmp_path / "out.jsonl", limit_mb=MEMORY_LIMIT_MB * 1.5)
        peak = use.peak_mb
        assert use.exit_code == 0, f"analyze of {mb} MB exited {use.exit_code} at {peak:.0f} MB peak RSS"
        lines = (tmp_path / "out.jsonl").read_text().count("\n")
        assert lines == rows // 128
        peaks.append(peak)
        f.unlink()
    assert max(peaks) < MEMORY_LIMIT_MB, peaks
    assert peaks[1] < peaks[0] + 20, f"peak RSS grew with the file: {peaks}"


def _reference_analysis(values: np.ndarray, kind: str, rate: float, device: int, inverted: bool) -> list[str]:
    """The whole-file analysis (resample everything, then the batch twin): what streaming must reproduce."""
    from lifepalette.kernels import run_pipeline
    from lifepalette.kernels.resample import resample

    from protocol.kernels.eda import centi_us_to_counts
    from protocol.records import TELEMETRY_FIELDS

    x = resample(values, rate, device) if values.ndim == 1 else np.stack(
        [resample(values[:, i], rate, device) for i in range(values.shape[1])], axis=1)
    seconds = x.shape[0] // device
    x = x[:seconds * device]
    rates = {"ppg_rate": 64, "eda_rate": 16, "acc_rate": 16, "temp_rate": 1, kind + "_rate": device}
    ppg = np.zeros(seconds * rates["ppg_rate"], dtype=np.int64)
    eda = np.zeros(0, dtype=np.int64)
    acc = np.zeros((0, 3), dtype=np.int64)
    temp = None
    if kind == "ppg":
        lo, hi = float(x.min()), float(x.max())
        ppg = np.rint((x - lo) / ((hi - lo) or 1.0) * 65535).astype(np.int64)
    elif kind == "eda":
        eda = np.array([centi_us_to_counts(int(round(v * 100))) for v in x], dtype=np.int64)
    elif kind == "acc":
        acc = np.rint(x * 1000).astype(np.int64)
    else:
        temp = np.rint(x * 100).astype(np.int64)
    beats: list = []
    records = run_pipeline(ppg, eda, acc, temp, ppg_invert=inverted, beats=beats, **rates)[0]
    fields = {"ppg": ("hr_bpm", "rmssd_ms"), "eda": ("scl", "scr_per_min"), "acc": ("motion",), "temp": ()}[kind]
    index = {name: TELEMETRY_FIELDS.index(name) for name in fields + ("quality",)}
    times = beats[0].times_s(rates["ppg_rate"]) if kind == "ppg" else []
    out, b = [], 0
    for t, row in enumerate(records):
        while b < len(times) and times[b] < t + 1:
            out.append(json.dumps({"beat_s": round(float(times[b]), 3)}))
            b += 1
        out.append(json.dumps({"t": t, **{name: int(row[i]) for name, i in index.items()}}))
    return out


@pytest.mark.parametrize("kind,rate,device,inverted", [
    ("ppg", 100, 64, False), ("ppg", 64, 64, True), ("ppg", 250, 128, False), ("ppg", 30, 25, False),
    ("eda", 10, 16, False), ("eda", 128, 16, False), ("acc", 50, 16, False), ("temp", 4, 1, False),
])
def test_streaming_prints_exactly_the_whole_file_analysis(tmp_path, kind, rate, device, inverted):
    rng = np.random.default_rng(7)
    seconds = 75
    if kind == "ppg":
        v = pulse(seconds, rate, 66) + rng.standard_normal(int(seconds * rate)) * 4
        v[int(20 * rate):int(23 * rate)] += 300  # a step and a noisy stretch: rejections, re-learning
        v = -v if inverted else v
    elif kind == "eda":
        t = np.arange(int(seconds * rate)) / rate
        v = 3 + 0.3 * np.sin(t / 7) + (t % 11 < 2) * 0.2 + rng.standard_normal(t.size) * 0.01
    elif kind == "acc":
        v = np.tile([0.0, 0.0, 1.0], (int(seconds * rate), 1)) + rng.standard_normal((int(seconds * rate), 3)) * 0.3
    else:
        v = 30 + rng.standard_normal(int(seconds * rate))
    text = ["\n".join(",".join(f"{c:.5f}" for c in np.atleast_1d(row)) for row in v)]
    values = np.array([[float(c) for c in line.split(",")] for line in text[0].split("\n")])
    values = values[:, 0] if values.shape[1] == 1 else values
    f = tmp_path / "rec.csv"
    header = ",".join(["value"] * (1 if values.ndim == 1 else values.shape[1]))
    f.write_text("# a comment\n" + header + "\n" + text[0] + "\n")
    args = [str(f), "--kind", kind, "--rate", str(rate), "--device-rate", str(device)]
    r = lp(*args, *(["--inverted"] if inverted else []), *(["--beats"] if kind == "ppg" else []))
    assert r.returncode == 0, r.stderr
    expected = _reference_analysis(values, kind, rate, device, inverted)
    assert r.stdout.splitlines() == expected
    if kind == "ppg":
        assert sum('"beat_s"' in s for s in expected) > seconds / 2  # the comparison covers real beats


@pytest.mark.parametrize("kind,rate,device", [("ppg", 100, 64), ("ppg", 64, 25), ("eda", 10, 16), ("acc", 50, 16)])
def test_small_blocks_at_every_stage_change_nothing(tmp_path, monkeypatch, capsys, kind, rate, device):
    """In-process with tiny pieces (text, spool, second-pass blocks, compiled calls): the same lines."""
    from lifepalette.cli import main
    from lifepalette.commands import analyze, analyze_table
    from lifepalette.kernels import fast_ppg

    monkeypatch.setattr(analyze_table, "CHUNK_CHARS", 97)
    monkeypatch.setattr(analyze, "SPOOL_MEMORY", 100)
    monkeypatch.setattr(analyze, "BLOCK_SECONDS", 3)
    monkeypatch.setattr(fast_ppg, "SECONDS", 2)
    rng = np.random.default_rng(11)
    n = int(40 * rate)
    v = pulse(40, rate, 80) + rng.standard_normal(n) if kind == "ppg" else 2 + rng.standard_normal(n) * 0.3
    if kind == "acc":
        v = np.stack([v, -v, v * 0.5], axis=1)
    text = "\n".join(",".join(f"{c:.4f}" for c in np.atleast_1d(row)) for row in v)
    values = np.array([[float(c) for c in line.split(",")] for line in text.split("\n")])
    f = tmp_path / "rec.csv"
    f.write_text(text + "\n")
    code = main(["analyze", str(f), "--kind", kind, "--rate", str(rate), "--device-rate", str(device), "--beats"])
    assert code == 0
    want = _reference_analysis(values[:, 0] if kind != "acc" else values, kind, rate, device, False)
    assert capsys.readouterr().out.splitlines() == want


@pytest.mark.parametrize("kind,rate", [("eda", 16), ("acc", 16), ("temp", 1)])
def test_absurdly_large_values_are_clamped_like_the_sensor_not_a_traceback(tmp_path, kind, rate):
    f = tmp_path / "huge.csv"
    f.write_text("\n".join(["1.7e308", "-1.7e308", "5", "6"] * 10 * rate))  # finite, but x100 overflows
    r = lp(str(f), "--kind", kind, "--rate", str(rate), "--column", "0")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stdout.splitlines()) == 40
