"""The feature table (one schema for sim, score, audit, export and notebooks) and `score_table`, which must give
exactly what the streaming scorer gives record by record."""

import json
import subprocess
import sys
from pathlib import Path

import lifepalette
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lifepalette.cli import main
from lifepalette.feature_table import EXPORT_SCHEMA, SCHEMA, write_feature_arrays
from lifepalette.scoring import FIELDS, CoveScorer
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

LP = Path(sys.executable).with_name("lifepalette")


def messy_records(seed: int = 1) -> list[dict]:
    """What real files hold: gaps, a late joiner, out-of-order and repeated seconds, missing fields and nulls,
    fractional values, the `dev_id` spelling of `frame open`."""
    c = make_cohort(8, 640, "dialogue", seed=seed)
    f = feature_records(c)
    rng = np.random.default_rng(seed)
    recs = []
    for t in range(640):
        for i, dev in enumerate(c.dev_ids.tolist()):
            if (i == 7 and t < 120) or rng.random() < 0.003:
                continue
            rec = {"device": dev, "t": t + (0.5 if rng.random() < 0.05 else 0)}
            rec.update({k: int(f[k][i, t]) for k in FIELDS if rng.random() > 0.002})
            if rng.random() < 0.02:
                rec["hr_bpm"] = None
            if rng.random() < 0.02:
                rec["scl"] = float(rec.get("scl") or 400) + 0.25
            if i == 3:
                rec["dev_id"] = rec.pop("device")
            recs.append(rec)
    for k in rng.choice(len(recs) - 50, size=30, replace=False):  # a few swapped neighbours and repeats
        recs[k], recs[k + 7] = recs[k + 7], recs[k]
        recs.insert(k + 3, dict(recs[k], motion=200))
    return recs


def streamed(recs: list[dict], groups) -> dict:
    scorer = CoveScorer(groups, keep_trajectory=True)
    for rec in recs:
        rec = dict(rec)
        dev = rec.pop("device", None)
        dev = rec.pop("dev_id") if dev is None else dev
        t = int(rec.pop("t"))
        scorer.add(dev, t, rec)
    scorer.flush()
    out = scorer.compute()
    out["records"] = len(recs)
    return out


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    d = tmp_path_factory.mktemp("ft")
    recs = messy_records()
    path = d / "f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    groups = [[1, 2, 3], [4, 5, 6, 7, 8]]
    (d / "g.json").write_text(json.dumps({"groups": groups}))
    return d, recs, groups


def test_score_table_equals_the_streaming_scorer_on_messy_records(messy):
    d, recs, groups = messy
    table = lifepalette.read_features(d / "f.jsonl")
    got = lifepalette.score_table(table, groups, seed=5)
    want = streamed(recs, groups)
    assert lifepalette.score_table(table, {"groups": groups}, seed=5) == got  # a groups.json document works too
    assert got["pairs"] and any(p["windows"] for p in got["pairs"])
    # the scorer's numbers are the streaming scorer's exactly; `public` is the released view, not its exact numbers
    public, exact = got.pop("public"), want.pop("public")
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    assert public["ready"] and exact["cove"]["arousal"] is not None
    assert public["arousal"] != round(exact["cove"]["arousal"], 3)  # noise: not the exact mean


def test_score_table_returns_what_score_prints_with_the_same_seed(messy, tmp_path):
    """The notebook API and the CLI give the same object: the scorer's numbers and the released public view of the
    last second (same release mechanism, same seed), also the same released view every second."""
    from lifepalette.boundary import PublicView
    from lifepalette.feature_table import checked_table, table_records
    from lifepalette.hub.timeline import released_views

    d, _recs, groups = messy
    pq.write_table(lifepalette.read_features(d / "f.jsonl"), tmp_path / "f.parquet")
    table = lifepalette.read_features(tmp_path / "f.parquet")
    seen: list[tuple[int, PublicView]] = []
    got = lifepalette.score_table(table, groups, seed=11, on_view=lambda t, v: seen.append((t, v)))
    res = subprocess.run([str(LP), "score", str(tmp_path / "f.parquet"), "--groups", str(d / "g.json"), "--seed",
                          "11"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == json.loads(json.dumps(got))
    assert list(got) == list(json.loads(res.stdout))  # the same keys in the same order
    assert got["public"] == seen[-1][1].to_json() and got["public"]["ready"]
    # record by record (hub/timeline.released_views) the hub's release gives the same view every second
    by_record = list(released_views(CoveScorer(groups, keep_trajectory=True),
                                    table_records(checked_table(table, "t")), 11))
    assert [(t, v.to_json()) for t, v in seen] == [(t, v.to_json()) for t, v in by_record]
    assert lifepalette.score_table(table, groups, seed=12)["public"] != got["public"]


def test_jsonl_table_keeps_fractions_and_types_what_fits(messy):
    d, recs, _ = messy
    table = lifepalette.read_features(d / "f.jsonl")
    assert table.num_rows == len(recs)
    assert table.schema.field("scl").type == pa.float64()  # fractional values are not rounded away
    assert table.schema.field("hue").type == pa.uint8() and table.schema.field("device").type == pa.uint32()
    assert table.column("hr_bpm").null_count > 0
    assert set(table.to_pandas().columns) == set(SCHEMA.names)


def test_score_cli_gives_the_same_object_for_parquet_and_jsonl(messy, tmp_path):
    d, _recs, _ = messy
    pq.write_table(lifepalette.read_features(d / "f.jsonl"), tmp_path / "f.parquet")
    outs = [subprocess.run([str(LP), "score", str(p), "--groups", str(d / "g.json"), "--seed", "3"], capture_output=True,
                           text=True, timeout=120) for p in (d / "f.jsonl", tmp_path / "f.parquet")]
    assert [o.returncode for o in outs] == [0, 0], outs[1].stderr
    assert json.loads(outs[0].stdout) == json.loads(outs[1].stdout)


def test_sim_arrays_round_trip_through_parquet(tmp_path):
    c = make_cohort(6, 200, "calm", seed=2)
    f = feature_records(c)
    rows = write_feature_arrays(tmp_path / "x.parquet", c.dev_ids, f, block_s=70)
    table = lifepalette.read_features(tmp_path / "x.parquet")
    assert rows == table.num_rows == 6 * 200 and table.schema.equals(SCHEMA)
    assert table.column("t").to_pylist()[:7] == [0] * 6 + [1]  # time order: every wearer of a second together
    hr = table.column("hr_bpm").to_numpy().reshape(200, 6).T
    assert np.array_equal(hr, f["hr_bpm"])


@pytest.mark.parametrize("make, message", [
    (lambda p: pq.write_table(pa.table({"device": [1], "t": [0], "heart": [70]}), p), "unknown column(s) 'heart'"),
    (lambda p: pq.write_table(pa.table({"device": [1], "hr_bpm": [70]}), p), "no 't' column"),
    (lambda p: pq.write_table(pa.table({"device": [1], "t": [0], "hr_bpm": ["x"]}), p), "must be numeric"),
    (lambda p: pq.write_table(pa.table({"device": [-1], "t": [0]}), p), "non-negative integers"),
    (lambda p: p.write_text("not parquet"), "not a readable Parquet file"),
    (lambda p: None, "no such file"),
    (lambda p: pq.write_table(pa.table({"device": pa.array([], pa.uint32()), "t": pa.array([], pa.int64())}), p),
     "no feature records"),
])
def test_bad_parquet_is_a_named_usage_error(tmp_path, make, message):
    path = tmp_path / "bad.parquet"
    make(path)
    res = subprocess.run([str(LP), "score", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_export_parquet_is_the_feature_schema_and_scores(tmp_path, capsys):
    from lifepalette.hub import Hub
    from lifepalette.hub.loadgen import telemetry_frame

    db = tmp_path / "hub.db"
    hub = Hub(db, scorer=None)
    keys = {dev: hub.enroll(dev) for dev in range(1, 6)}
    for ctr in range(1, 4):
        for dev, key in keys.items():
            assert hub.ingest(telemetry_frame(key, dev, ctr)).ok
    hub.flush()
    hub.store.con.close()
    out = tmp_path / "x.parquet"
    assert main(["export", "--db", str(db), "--format", "parquet", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.schema.equals(EXPORT_SCHEMA) and table.schema.names[:len(SCHEMA)] == SCHEMA.names
    assert table.num_rows == 15 and table.column("hr_bpm").null_count == 0
    capsys.readouterr()
    assert main(["score", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 15
    assert main(["export", "--db", str(db), "--format", "parquet", "--out", str(tmp_path / "no" / "x.parquet")]) == 2
    assert "no directory" in capsys.readouterr().err
