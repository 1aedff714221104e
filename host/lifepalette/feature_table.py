"""The feature table: one row per wearer-second, the one schema for every table of 1 Hz features.

`lifepalette sim` writes it (features.parquet, zstd), `export --format parquet` writes it with the frame's own
columns after the features, and `score`, `audit` and `read_features` read it back (Parquet, or JSON lines chosen by
suffix). Feature columns carry the badge's units and n/a codes (protocol/records.py); a null means the record did
not carry that field (for example physiology the wearer did not share).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lifepalette.errors import UsageError
from lifepalette.scoring.fields import FIELD_MAX, FIELDS

DEVICE, TIME = "device", "t"
DEVICE_ALIAS = "dev_id"  # as `frame open` prints it
FEATURE_TYPES: dict[str, pa.DataType] = {name: pa.uint16() if FIELD_MAX.get(name, 0xFF) > 0xFF else pa.uint8()
                                         for name in FIELDS}
SCHEMA = pa.schema([pa.field(DEVICE, pa.uint32(), nullable=False), pa.field(TIME, pa.int64(), nullable=False),
                    *(pa.field(name, FEATURE_TYPES[name]) for name in FIELDS)])
NUMPY_TYPES: dict[str, np.dtype] = {name: np.dtype(np.uint16 if FEATURE_TYPES[name] == pa.uint16() else np.uint8)
                                    for name in FIELDS}
# What a frame export adds after the features; readers ignore these columns, and score only telemetry rows.
FRAME_FIELDS = [pa.field("ctr", pa.int64()), pa.field("type", pa.string()), pa.field("t_rx", pa.float64()),
                pa.field("link", pa.string()), pa.field("epoch", pa.int64())]
FRAME_COLUMNS = tuple(f.name for f in FRAME_FIELDS)
SCORED_FRAME_TYPES = ("telemetry", "backlog")
EXPORT_SCHEMA = pa.schema([*SCHEMA, *FRAME_FIELDS])
COMPRESSION = "zstd"
# Each column's encoding: the one that wrote fastest without making the file notably larger (measured on a simulated
# 1,000- and 10,000-wearer hour, zstd after it). A dictionary where a column has few distinct values (t, the
# one-byte physiology, the flags); delta for device (it counts up through every second) and SCL (two bytes, thousands
# of values); plain for the rest (motion is mostly 0; a wearer's colour and battery repeat only every W rows, where
# hashing them into a dictionary cost more than it saved). All are encodings every Parquet reader knows.
DICTIONARY_COLUMNS = ["t", "hr_bpm", "rmssd_ms", "scr_per_min", "colour_age", "consent", "quality"]
DELTA_COLUMNS = {"device": "DELTA_BINARY_PACKED", "scl": "DELTA_BINARY_PACKED"}
PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str | Path) -> bool:
    return str(path).lower().endswith(PARQUET_SUFFIXES)


# --- writing -------------------------------------------------------------------------------------------------------
def second_block(dev_ids: np.ndarray, features: Mapping[str, np.ndarray], start: int, stop: int,
                 t0: int = 0) -> pa.RecordBatch:
    """Seconds start..stop-1 of {field: (W, T) array} as rows in time order (every wearer of a second together)."""
    w, n = len(dev_ids), stop - start
    cols = [_arrow(np.tile(np.asarray(dev_ids, np.uint32), n), pa.uint32()),
            _arrow(np.repeat(np.arange(t0 + start, t0 + stop, dtype=np.int64), w), pa.int64())]
    for name in FIELDS:
        cols.append(_arrow(np.ascontiguousarray(features[name][:, start:stop].T, NUMPY_TYPES[name]).ravel(),
                           FEATURE_TYPES[name]))
    return pa.RecordBatch.from_arrays(cols, schema=SCHEMA)


def _arrow(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    """A contiguous numpy array as an Arrow array without a copy. Why not pa.array: it imports pandas (0.2 s of a
    run) to ask whether the array is a pandas object."""
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def write_feature_arrays(path: Path, dev_ids: np.ndarray, features: Mapping[str, np.ndarray], *,
                         block_s: int = 300, progress: Any = None) -> int:
    """Write (W, T) feature arrays as features.parquet; one row group per `block_s` seconds bounds memory."""
    seconds = next(iter(features.values())).shape[1]
    rows = 0
    with pq.ParquetWriter(path, SCHEMA, compression=COMPRESSION, use_dictionary=DICTIONARY_COLUMNS,
                          column_encoding=DELTA_COLUMNS) as writer:
        for start in range(0, seconds, block_s):
            stop = min(seconds, start + block_s)
            writer.write_batch(second_block(dev_ids, features, start, stop))
            rows += (stop - start) * len(dev_ids)
            if progress is not None:
                progress.update(stop - start)
    return rows


def write_feature_jsonl(fh: IO[str], dev_ids: np.ndarray, features: Mapping[str, np.ndarray], *,
                        progress: Any = None) -> int:
    """The same rows as JSON lines ({"device", "t", fields...}), the `score` input format."""
    seconds = next(iter(features.values())).shape[1]
    ids = np.asarray(dev_ids).tolist()
    n = 0
    for t in range(seconds):
        values = np.stack([features[k][:, t] for k in FIELDS], axis=1).tolist()
        fh.writelines(f'{{"device": {dev}, "t": {t}, ' + ", ".join(f'"{k}": {v}' for k, v in zip(FIELDS, row,
                                                                                                   strict=True))
                      + "}\n" for dev, row in zip(ids, values, strict=True))
        n += len(ids)
        if progress is not None:
            progress.update()
    return n


def table_from_records(records: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Checked records ({"device", "t", field: number | None}) as a table of this schema. A field whose values do not
    all fit its badge type (fractions, out of range) stays float64, so nothing a record said is rounded away."""
    columns: dict[str, list] = {DEVICE: [], TIME: [], **{name: [] for name in FIELDS}}
    for rec in records:
        for name, values in columns.items():
            values.append(rec.get(name))
    arrays, fields = [], []
    for field in SCHEMA:
        raw = pa.array(columns[field.name], type=pa.float64() if field.name in FEATURE_TYPES else None)
        try:
            arr = raw.cast(field.type)  # safe cast: fails on fractions and on values out of range
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr = raw
        arrays.append(arr)
        fields.append(pa.field(field.name, arr.type, nullable=field.nullable))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# --- reading -------------------------------------------------------------------------------------------------------
def check_record(rec: Any, where: str) -> dict[str, Any]:
    """One JSON-lines record, checked: {"device", "t", field: number | None}; UsageError names what is wrong."""
    if not isinstance(rec, dict):
        raise UsageError(f"{where}: expected a JSON object")
    id_key = DEVICE if DEVICE in rec or DEVICE_ALIAS not in rec else DEVICE_ALIAS
    dev, t = rec.get(id_key), rec.get(TIME)
    if not isinstance(dev, int) or isinstance(dev, bool) or dev < 0:
        raise UsageError(f"{where}: '{id_key}' must be a non-negative integer")
    if not isinstance(t, int | float) or isinstance(t, bool) or t != t or t < 0:
        raise UsageError(f"{where}: 't' must be a non-negative number of seconds")
    out: dict[str, Any] = {DEVICE: dev, TIME: int(t)}
    for name, value in rec.items():
        if name in (id_key, TIME):
            continue
        if name not in FEATURE_TYPES:
            raise UsageError(f"{where}: unknown field {name!r}")
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value != value):
            raise UsageError(f"{where}: field {name!r} must be a number or null")
        out[name] = value
    return out


def iter_jsonl(lines: Iterable[str], source: str) -> Iterator[dict[str, Any]]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
        yield check_record(rec, where)


def read_parquet(path: str | Path) -> pa.Table:
    if not Path(path).exists():
        raise UsageError(f"cannot read {path}: no such file")
    try:
        table = pq.read_table(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except pa.ArrowException as exc:
        raise UsageError(f"{path} is not a readable Parquet file ({exc})") from None
    return checked_table(table, str(path))


def checked_table(table: pa.Table, source: str) -> pa.Table:
    """A feature table from any source, checked against the schema: device and t present, no unknown columns,
    numeric feature columns; frame rows other than telemetry are left out; missing feature columns become null."""
    names = table.column_names
    if DEVICE not in names and DEVICE_ALIAS in names:
        table = table.rename_columns([DEVICE if n == DEVICE_ALIAS else n for n in names])
        names = table.column_names
    for required in (DEVICE, TIME):
        if required not in names:
            raise UsageError(f"{source}: no {required!r} column")
    unknown = [n for n in names if n not in SCHEMA.names and n not in FRAME_COLUMNS]
    if unknown:
        raise UsageError(f"{source}: unknown column(s) {', '.join(map(repr, unknown))}")
    if "type" in names:
        import pyarrow.compute as pc

        table = table.filter(pc.is_in(table.column("type"), pa.array(SCORED_FRAME_TYPES)))
    arrays, fields = [], []
    for field in SCHEMA:
        if field.name not in names:
            arr = pa.nulls(table.num_rows, field.type)
        else:
            arr = table.column(field.name)
            if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
                raise UsageError(f"{source}: column {field.name!r} must be numeric, not {arr.type}")
            if field.name in (DEVICE, TIME) and arr.null_count:
                raise UsageError(f"{source}: column {field.name!r} has missing values")
        arrays.append(arr)
        fields.append(pa.field(field.name, arr.type, nullable=field.nullable))
    out = pa.Table.from_arrays([a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays],
                               schema=pa.schema(fields))
    dev, t = out.column(DEVICE).to_numpy(), out.column(TIME).to_numpy()
    if out.num_rows and (np.any(dev < 0) or np.any(dev != np.floor(dev))):
        raise UsageError(f"{source}: 'device' must hold non-negative integers")
    if out.num_rows and (np.any(np.isnan(t.astype(float))) or np.any(t < 0)):
        raise UsageError(f"{source}: 't' must hold non-negative seconds")
    return out


def read_features(path: str | Path) -> pa.Table:
    """A feature file as a `pyarrow.Table` of this schema (`.to_pandas()` when pandas is installed): Parquet for
    .parquet/.pq, JSON lines otherwise ('-' = stdin)."""
    if is_parquet(path):
        return read_parquet(path)
    import sys

    source = "stdin" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":
            return table_from_records(iter_jsonl(sys.stdin, source))
        with open(path, encoding="utf-8") as fh:
            return table_from_records(iter_jsonl(fh, source))
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text") from None


def feature_matrix(table: pa.Table) -> np.ndarray:
    """(rows, FIELDS) float64, NaN where a field is null: the scorer's record vectors, before defaults."""
    out = np.empty((table.num_rows, len(FIELDS)))
    for i, name in enumerate(FIELDS):
        col = table.column(name)
        out[:, i] = col.to_numpy(zero_copy_only=False).astype(np.float64) if not col.null_count else \
            col.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    return out


def table_records(table: pa.Table) -> list[tuple[int, int, dict[str, Any]]]:
    """(device, second, fields) per row of a checked table, nulls left out (as a JSON line would omit them): the
    record-by-record form the hub's scorer and release see, for `score`'s released public view."""
    records = []
    for row in table.to_pylist():
        dev, t = int(row.pop(DEVICE)), int(row.pop(TIME))
        records.append((dev, t, {name: value for name, value in row.items() if value is not None}))
    return records
