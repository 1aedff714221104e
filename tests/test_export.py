"""`lifepalette export`: CSV and Parquet of what consent allowed (physiology and colour only where shared)."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
from lifepalette.cli import main
from lifepalette.hub import Hub
from lifepalette.hub.loadgen import telemetry_frame


def fill(db) -> None:
    hub = Hub(db, scorer=None)
    key = hub.enroll(3)
    for ctr in range(1, 6):
        assert hub.ingest(telemetry_frame(key, 3, ctr)).ok
    for ctr in range(6, 9):  # physiology withdrawn, colour kept
        assert hub.ingest(telemetry_frame(key, 3, ctr, physio=False, revision=2)).ok
    hub.flush()
    hub.store.con.close()


def test_export_csv_and_parquet(tmp_path):
    db = tmp_path / "hub.db"
    fill(db)
    out_csv, out_pq = tmp_path / "x.csv", tmp_path / "x.parquet"
    assert main(["export", "--db", str(db), "--format", "csv", "--out", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["ctr"]) for r in rows] == list(range(1, 9))
    # The revocation at ctr 6 erased epoch 1's physiology: nothing physiological is exported at all.
    assert all(r["hr_bpm"] == "" and r["scl_centi_us"] == "" for r in rows)
    assert all(r["hue"] != "" for r in rows) and rows[0]["type"] == "telemetry"
    assert main(["export", "--db", str(db), "--format", "parquet", "--out", str(out_pq)]) == 0
    table = pq.read_table(out_pq)
    assert table.num_rows == 8 and table.column("hr_bpm").null_count == 8
    assert table.column("ctr").to_pylist() == list(range(1, 9))


def test_export_keeps_consented_physiology(tmp_path):
    db = tmp_path / "hub.db"
    hub = Hub(db, scorer=None)
    key = hub.enroll(4)
    for ctr in range(1, 4):
        hub.ingest(telemetry_frame(key, 4, ctr))
    hub.flush()
    hub.store.con.close()
    out = tmp_path / "y.csv"
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [int(r["hr_bpm"]) for r in rows] == [61, 62, 63]


def test_export_missing_db_is_usage_error(tmp_path, capsys):
    assert main(["export", "--db", str(tmp_path / "no.db"), "--out", str(tmp_path / "o.csv")]) == 2


def test_exports_are_owner_only_even_over_an_existing_readable_file(tmp_path):
    db = tmp_path / "hub.db"
    fill(db)
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"x.{fmt}"
        out.write_text("old")
        out.chmod(0o644)
        assert main(["export", "--db", str(db), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o600
