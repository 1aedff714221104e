"""`lifepalette analyze RECORDING --kind ppg|eda|acc|temp --rate HZ`: run the badge kernels over a recording.

Prints one JSON line per second of signal with the telemetry record's field names, e.g.
{"t": 12, "hr_bpm": 71, "rmssd_ms": 38, "quality": 6}. With --beats (PPG) also {"beat_s": 12.345} per beat.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lifepalette.errors import UsageError

KINDS = ("ppg", "eda", "acc", "temp")
DEVICE_RATES = {"ppg": 64, "eda": 16, "acc": 16, "temp": 1}
FIELDS_BY_KIND = {"ppg": ("hr_bpm", "rmssd_ms"), "eda": ("scl", "scr_per_min"), "acc": ("motion",), "temp": ()}
BLOCK_SECONDS = 1024  # seconds of samples per block in the second pass
SPOOL_MEMORY = 4 << 20  # bytes of resampled samples kept in memory before the spool moves to a temporary file
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


class _Spool:
    """The resampled samples between the two passes: in memory up to SPOOL_MEMORY bytes, then in an unnamed
    temporary file (deleted on close), so the whole recording is checked before anything is printed."""

    def __init__(self, width: int):
        import tempfile

        self.width = width
        self.rows = 0
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)

    def write(self, block) -> None:
        import numpy as np

        try:
            self.file.write(np.ascontiguousarray(block, dtype=np.float64).tobytes())
        except OSError as exc:
            raise UsageError(f"cannot keep the resampled recording in a temporary file: {exc.strerror}") from exc
        self.rows += block.shape[0]

    def blocks(self, rows: int, per_block: int):
        """The first `rows` rows, per_block rows at a time, as float64 arrays (n, width)."""
        import numpy as np

        self.file.seek(0)
        done = 0
        while done < rows:
            n = min(per_block, rows - done)
            data = self.file.read(n * self.width * 8)
            yield np.frombuffer(data, dtype=np.float64).reshape(n, self.width)
            done += n


def _resampled(path: Path, kind: str, column: int | None, rate: float, device: int) -> _Spool:
    """Pass 1: read, check and resample the whole recording into a spool (every input error comes out here)."""
    import numpy as np

    from lifepalette.commands.analyze_table import TableReader
    from lifepalette.kernels.resample import Resampler

    reader = TableReader(path, kind, column)
    resamplers: list[Resampler] = []
    spool: _Spool | None = None
    finite = True
    for block in reader.chunks():
        if not resamplers:
            resamplers = [Resampler(rate, device) for _ in range(block.shape[1])]
            spool = _Spool(block.shape[1])
        finite = finite and bool(np.isfinite(block).all())
        if finite:  # no point resampling what will be refused
            spool.write(np.stack([r.push(block[:, i]) for i, r in enumerate(resamplers)], axis=1))
    if not finite:
        raise UsageError("recording contains NaN or infinite values")
    spool.write(np.stack([r.finish() for r in resamplers], axis=1))
    spool.rows = min(spool.rows, resamplers[0].emitted)
    return spool


def run(args: argparse.Namespace) -> int:
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
    spool = _resampled(args.recording, kind, args.column, args.rate, device)
    seconds = spool.rows // device
    if seconds < 1:
        raise UsageError("recording is shorter than one second")
    _analyse(spool, kind, device, seconds, bool(args.inverted), bool(args.beats))
    return 0


def _analyse(spool: _Spool, kind: str, device: int, seconds: int, inverted: bool, beats: bool) -> None:
    """Pass 2: the badge's Pipeline over the spooled samples, second by second (only `kind` reports; the PPG
    kernel's sample loop runs compiled), printing each second once no later beat can still precede it."""
    from collections import deque

    import numpy as np

    from lifepalette.kernels.fast_ppg import StreamPpg
    from protocol.kernels import ppg as ppg_k
    from protocol.kernels.eda import centi_us_to_counts
    from protocol.kernels.pipeline import Pipeline
    from protocol.records import TELEMETRY_FIELDS

    rates = {"ppg_rate": 64, "eda_rate": 16, "acc_rate": 16, "temp_rate": 1, kind + "_rate": device}
    pipe = Pipeline(ppg_invert=inverted, **rates)
    times: deque[float] = deque()
    rate = rates["ppg_rate"]
    hold = 0
    if kind == "ppg":
        pipe.ppg = StreamPpg(device, inverted, (lambda p, frac: times.append((p + frac / 256) / rate)) if beats else None)
        co = ppg_k.make_config(device, inverted)
        hold = -(-(co[ppg_k.C_MAXB] + co[ppg_k.C_D] + 1) // device) + 1  # a beat is found at most this late
        lo, hi = np.inf, -np.inf
        for x in spool.blocks(seconds * device, BLOCK_SECONDS * device):
            lo, hi = min(lo, float(x.min())), max(hi, float(x.max()))
    wanted = FIELDS_BY_KIND[kind] + ("quality",)
    index = [TELEMETRY_FIELDS.index(name) for name in wanted]
    line = "{\"t\": %d" + "".join(f", \"{name}\": %d" for name in wanted) + "}"  # json.dumps' own spacing
    row = [0] * len(TELEMETRY_FIELDS)
    pending: deque[tuple[int, ...]] = deque()
    t = 0
    for x in spool.blocks(seconds * device, BLOCK_SECONDS * device):
        if kind == "ppg":
            pipe.ppg.feed(np.rint((x[:, 0] - lo) / ((hi - lo) or 1.0) * 65535).astype(np.int64))
            for _ in range(x.shape[0] // device):
                pipe.step(row)
                pending.append((t, *[row[i] for i in index]))
                t += 1
        else:
            samples = _device_units(x, kind, centi_us_to_counts)
            push = pipe.push_eda if kind == "eda" else pipe.push_temp
            for s in range(x.shape[0] // device):
                for v in samples[s * device:(s + 1) * device]:
                    if kind == "acc":
                        pipe.push_acc(*v)
                    else:
                        push(v)
                pipe.step(row)
                pending.append((t, *[row[i] for i in index]))
                t += 1
        _flush(pending, times, t - hold if t < seconds else t, line)


def _device_units(x, kind: str, centi_us_to_counts) -> list:
    """Spooled float samples in what the badge's kernels take: EDA ADC counts, acc mg triples, temp 0.01 degC.

    Values are first held to +-1e9 (units): every kernel clamps far inside that (EDA to the 12-bit ADC, acc to
    +-8 g, temperature to -40..80 degC), so nothing changes but an absurd value no longer overflows a conversion."""
    import numpy as np

    x = np.clip(x, -1e9, 1e9)
    if kind == "eda":
        return [centi_us_to_counts(int(round(v * 100))) for v in x[:, 0].tolist()]
    if kind == "acc":
        mg = np.rint(x * 1000).astype(np.int64)
        if mg.shape[1] == 1:
            mg = np.concatenate((mg, np.zeros((mg.shape[0], 2), dtype=np.int64)), axis=1)
        return mg.tolist()
    if kind == "temp":
        return np.rint(x[:, 0] * 100).astype(np.int64).tolist()
    return []


def _flush(pending, times, upto: int, line: str) -> None:
    """Print the seconds before `upto`, each after the beats that precede its end."""
    out = []
    while pending and pending[0][0] < upto:
        values = pending.popleft()
        while times and times[0] < values[0] + 1:
            out.append(f'{{"beat_s": {round(times.popleft(), 3)!r}}}')
        out.append(line % values)
    if out:
        sys.stdout.write("\n".join(out) + "\n")
