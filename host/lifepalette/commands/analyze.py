"""`lifepalette analyze RECORDING --kind ppg|eda|acc|temp --rate HZ`: run the badge kernels over a recording.

Prints one JSON line per second of signal with the telemetry record's field names, e.g.
{"t": 12, "hr_bpm": 71, "rmssd_ms": 38, "quality": 6}. With --beats (PPG) also {"beat_s": 12.345} per beat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lifepalette.errors import UsageError

KINDS = ("ppg", "eda", "acc", "temp")
DEVICE_RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
FIELDS_BY_KIND = {"ppg": ("hr_bpm", "rmssd_ms"), "eda": ("scl", "scr_per_min"), "acc": ("motion",), "temp": ()}
UNITS = ("PPG: any units in BVP polarity (peaks up; --inverted for raw MAX30102 counts); EDA: microsiemens; "
         "acc: g per axis (three columns, or --column for one axis); temp: degrees Celsius")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analyze", help="run the badge's signal kernels over a recording (JSON lines)",
                              description=__doc__ + "\nInput units: " + UNITS + ".")
    p.add_argument("recording", type=Path, help="CSV or whitespace-separated text; a header line is tolerated")
    p.add_argument("--kind", required=True, help="signal kind: " + ", ".join(KINDS))
    p.add_argument("--rate", required=True, type=float, help="the recording's sampling rate in Hz")
    p.add_argument("--column", type=int, default=None, help="0-based column to use (default: the last column)")
    p.add_argument("--device-rate", type=int, default=None,
                   help="badge rate to resample to (default: the badge's own: ppg 64, eda 16, acc 16, temp 1)")
    p.add_argument("--beats", action="store_true", help="also print {\"beat_s\": ...} for every detected beat")
    p.add_argument("--inverted", action="store_true", help="PPG is raw optical counts (falling with each pulse)")
    p.set_defaults(func=run)


def read_table(path: Path, kind: str, column: int | None):
    """The signal column(s) of a recording as a float array: (n,) or (n, 3) for three-axis acc.

    The delimiter is the file's own (comma, semicolon or tab; else whitespace), so a timestamp column such as
    "2016-11-24 13:58:58.081" stays one cell. Only the chosen columns must be numbers; one header line is skipped.
    """
    import numpy as np

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else 'not text'}") from exc
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UsageError(f"{path}: no samples")
    first = lines[0][1]
    delimiter = next((d for d in (",", ";", "\t") if d in first), None)
    width = len(_cells(first, delimiter))
    picked = _pick_columns(width, kind, column)
    rows: list[list[float]] = []
    for index, (lineno, line) in enumerate(lines):
        cells = _cells(line, delimiter)
        if len(cells) != width:
            raise UsageError(f"{path}:{lineno}: {len(cells)} columns where the first row has {width}")
        try:
            rows.append([float(cells[c]) for c in picked])
        except ValueError:
            if index == 0:
                continue  # one header line
            raise UsageError(f"{path}:{lineno}: not a number in {line[:40]!r}") from None
    if not rows:
        raise UsageError(f"{path}: no samples")
    table = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(table).all():
        raise UsageError("recording contains NaN or infinite values")
    return table if table.shape[1] > 1 else table[:, 0]


def _cells(line: str, delimiter: str | None) -> list[str]:
    return [c.strip() for c in line.split(delimiter)] if delimiter else line.split()


def _pick_columns(width: int, kind: str, column: int | None) -> list[int]:
    if column is not None:
        if not -width <= column < width:
            raise UsageError(f"--column {column}: the recording has {width} column(s)")
        return [column % width]
    if kind == "acc" and width >= 3:
        return [width - 3, width - 2, width - 1]
    return [width - 1]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lifepalette.kernels import run_pipeline
    from lifepalette.kernels.resample import resample
    from protocol.kernels.eda import centi_us_to_counts
    from protocol.kernels.ppg import RATES

    kind = args.kind.lower()
    if kind not in KINDS:
        raise UsageError(f"unknown kind {args.kind!r}: choose one of {', '.join(KINDS)}")
    if not args.rate > 0:
        raise UsageError("--rate must be a positive number of Hz")
    device = args.device_rate or DEVICE_RATES[kind]
    if device <= 0:
        raise UsageError("--device-rate must be positive")
    if kind == "ppg" and device not in RATES:
        raise UsageError(f"--device-rate for ppg must be one of {', '.join(map(str, RATES))}")
    data = read_table(args.recording, kind, args.column)
    if data.ndim == 1:
        x = resample(data, args.rate, device)
    else:
        x = np.stack([resample(data[:, i], args.rate, device) for i in range(data.shape[1])], axis=1)
    seconds = x.shape[0] // device
    if seconds < 1:
        raise UsageError("recording is shorter than one second")
    rates = {"ppg_rate": 64, "eda_rate": 16, "acc_rate": 16, "temp_rate": 1, kind + "_rate": device}
    n = {k: seconds * rates[k + "_rate"] for k in KINDS}
    # only the analysed sensor reports; the PPG stream (all zeros: no beats) sets the number of seconds
    ppg = np.zeros(n["ppg"], dtype=np.int64)
    eda = np.zeros(0, dtype=np.int64)
    acc = np.zeros((0, 3), dtype=np.int64)
    temp = None
    x = x[:seconds * device]
    if kind == "ppg":
        lo, hi = float(x.min()), float(x.max())
        ppg = np.rint((x - lo) / ((hi - lo) or 1.0) * 65535).astype(np.int64)  # the kernel is scale-free
    elif kind == "eda":
        eda = np.array([centi_us_to_counts(int(round(v * 100))) for v in x], dtype=np.int64)
    elif kind == "acc":
        mg = np.rint(x * 1000).astype(np.int64)
        acc = mg if mg.ndim == 2 else np.stack([mg, np.zeros_like(mg), np.zeros_like(mg)], axis=1)
    else:
        temp = np.rint(x * 100).astype(np.int64)
    beats: list = []
    records = run_pipeline(ppg, eda, acc, temp, ppg_invert=bool(args.inverted), beats=beats, **rates)[0]
    _print(records, kind, beats[0].times_s(rates["ppg_rate"]) if args.beats and kind == "ppg" else None)
    return 0


def _print(records, kind: str, beat_times) -> None:
    from protocol.records import TELEMETRY_FIELDS

    wanted = FIELDS_BY_KIND[kind] + ("quality",)
    index = {name: TELEMETRY_FIELDS.index(name) for name in wanted}
    out = sys.stdout
    b = 0
    for t, row in enumerate(records):
        while beat_times is not None and b < len(beat_times) and beat_times[b] < t + 1:
            out.write(json.dumps({"beat_s": round(float(beat_times[b]), 3)}) + "\n")
            b += 1
        line: dict[str, int] = {"t": t}
        line.update({name: int(row[i]) for name, i in index.items()})
        out.write(json.dumps(line) + "\n")
