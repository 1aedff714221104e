"""Export of what consent allowed: frames joined with physiology (rows exist only where physiology was shared
and not erased; colour columns are NULL where colour was not shared)."""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path

from lifepalette.errors import UsageError
from protocol.frame import TYPE_NAMES

COLUMNS = ("dev_id", "ctr", "type", "t_rx", "link", "epoch", "consent", "battery", "quality", "hue", "chroma",
           "colour_age", "hr_bpm", "rmssd_ms", "scl_centi_us", "scr_per_min", "motion")
_QUERY = """
SELECT f.dev_id, f.ctr, f.ftype, f.t_rx, f.link, f.epoch, f.consent, f.battery, f.quality, f.hue, f.chroma,
       f.colour_age, p.hr_bpm, p.rmssd_ms, p.scl, p.scr_per_min, p.motion
FROM frames f LEFT JOIN physio p ON p.dev_id = f.dev_id AND p.ctr = f.ctr
{where} ORDER BY f.dev_id, f.ctr
"""


def rows(db: str | Path, devices: list[int] | None = None):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        where, params = "", ()
        if devices:
            where = f"WHERE f.dev_id IN ({', '.join('?' * len(devices))})"
            params = tuple(devices)
        for row in con.execute(_QUERY.format(where=where), params):
            row = list(row)
            row[2] = TYPE_NAMES[row[2]] if 0 <= row[2] < len(TYPE_NAMES) else str(row[2])
            yield row
    finally:
        con.close()


def export(db: str | Path, out: str | Path, fmt: str, devices: list[int] | None = None) -> int:
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{out} is a directory")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: no directory {out.parent}")
    if fmt not in ("csv", "parquet"):
        raise UsageError(f"unknown export format {fmt!r}")
    _create_private(out)
    if fmt == "csv":
        with open(out, "w", newline="") as fh:
            return write_csv(fh, db, devices)
    if fmt == "parquet":
        return _write_parquet(out, list(rows(db, devices)))
    raise UsageError(f"unknown export format {fmt!r}")


def write_csv(fh, db: str | Path, devices: list[int] | None = None) -> int:
    """The CSV export into an open text file (the CLI's file, or the wearer's download); returns the rows written."""
    n = 0
    writer = csv.writer(fh)
    writer.writerow(COLUMNS)
    for row in rows(db, devices):
        writer.writerow(["" if v is None else v for v in row])
        n += 1
    return n


def _create_private(out: Path) -> None:
    """Create (or truncate) the export owner-only before any row is written: it holds physiology. The writers below
    open the existing file, which keeps its 0600 mode."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _write_parquet(out: Path, data: list[list]) -> int:
    """The feature table's schema (lifepalette.feature_table: device, t, the telemetry fields typed as the badge
    sends them) followed by the frame's own columns, so `lifepalette score x.parquet` reads an export directly."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lifepalette.feature_table import COMPRESSION, EXPORT_SCHEMA

    by_name: dict[str, tuple] = dict(zip(COLUMNS, zip(*data, strict=True), strict=True)) if data else {c: () for c in COLUMNS}
    by_name["device"] = by_name["dev_id"]
    by_name["scl"] = by_name["scl_centi_us"]
    by_name["t"] = tuple(int(t) for t in by_name["t_rx"])  # the second the hub received the frame in
    arrays = [pa.array(list(by_name[f.name]), type=f.type) for f in EXPORT_SCHEMA]
    pq.write_table(pa.Table.from_arrays(arrays, schema=EXPORT_SCHEMA), out, compression=COMPRESSION)
    return len(data)
