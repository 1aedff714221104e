"""`lifepalette sim` and `lifepalette audit` through the real console script, and audit of a real hub database."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from lifepalette.feature_table import SCHEMA, read_features

LP = Path(sys.executable).with_name("lifepalette")
PNG = b"\x89PNG\r\n\x1a\n"


def lp(*args):
    return subprocess.run([str(LP), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "run"
    res = lp("sim", "--wearers", 24, "--minutes", 12, "--seed", 5, "--out", out)
    assert res.returncode == 0, res.stderr
    return out


def test_sim_writes_everything_it_promises(sim_dir):
    for name in ("features.parquet", "groups.json", "scores.json", "report.json", "cohort.json", "arousal.npz"):
        assert (sim_dir / name).stat().st_size > 0
    for name in ("palette.png", "synchrony.png", "trajectories.png", "groups.png"):
        assert (sim_dir / name).read_bytes()[:8] == PNG
    report = json.loads((sim_dir / "report.json").read_text())
    assert {"truth", "estimates", "validity", "fairness", "privacy"} <= set(report)
    assert len(report["truth"]["pairs"]) == len(report["estimates"]["pairs"]) > 0
    assert not (sim_dir / "features.jsonl").exists()  # JSON lines only with --jsonl
    meta = pq.ParquetFile(sim_dir / "features.parquet").metadata
    assert meta.num_rows == 24 * 12 * 60 and meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(sim_dir / "features.parquet")
    assert table.schema.equals(SCHEMA) and min(table.column("device").to_pylist()) >= 1


def test_score_reproduces_the_sims_scores(sim_dir):
    res = lp("score", sim_dir / "features.parquet", "--groups", sim_dir / "groups.json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pairs"] == json.loads((sim_dir / "scores.json").read_text())["pairs"]


def test_sim_is_reproducible(sim_dir, tmp_path):
    res = lp("sim", "--wearers", 24, "--minutes", 12, "--seed", 5, "--out", tmp_path, "--no-plots")
    assert res.returncode == 0
    assert pq.read_table(tmp_path / "features.parquet").equals(pq.read_table(sim_dir / "features.parquet"))


def test_audit_dir_reports_per_group_figures_and_passes(sim_dir):
    res = lp("audit", sim_dir)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert set(rep["per_group"]) == {"reference", "low_ppg", "low_eda"}
    for g in rep["per_group"].values():
        assert {"mean_level", "exclusion_rate", "arousal_mae", "naive_arousal_mae"} <= set(g)
    assert rep["disparity"]["naive_arousal_mae"] > rep["disparity"]["arousal_mae"]
    assert rep["checks"] == {"privacy_ok": True, "error_disparity_ok": True, "ok": True}


def test_audit_catches_a_public_aggregate_below_k(sim_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("cohort.json", "arousal.npz"):
        (bad / name).write_bytes((sim_dir / name).read_bytes())
    scores = json.loads((sim_dir / "scores.json").read_text())
    scores["public"]["groups"][0] = {"group": 1, "contributors": 3, "arousal": 0.4}
    (bad / "scores.json").write_text(json.dumps(scores))
    res = lp("audit", bad)
    assert res.returncode == 1 and "privacy_ok" in res.stderr
    assert json.loads(res.stdout)["privacy"]["violations"][0]["reason"] == "fewer than k contributors"


def test_sim_jsonl_holds_the_same_rows_and_scores_the_same(sim_dir, tmp_path):
    res = lp("sim", "--wearers", 24, "--minutes", 12, "--seed", 5, "--out", tmp_path, "--no-plots", "--jsonl")
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "features.parquet").exists()
    lines = (tmp_path / "features.jsonl").read_text().splitlines()
    assert len(lines) == 24 * 12 * 60 and json.loads(lines[0])["device"] >= 1
    assert read_features(tmp_path / "features.jsonl").equals(pq.read_table(sim_dir / "features.parquet"))
    res = lp("score", tmp_path / "features.jsonl", "--groups", sim_dir / "groups.json", "--seed", 1)
    assert json.loads(res.stdout) == json.loads(lp("score", sim_dir / "features.parquet", "--groups",
                                                   sim_dir / "groups.json", "--seed", 1).stdout)


@pytest.mark.parametrize("name", ["features.parquet", "features.jsonl"])
def test_audit_scores_a_bare_features_dir(sim_dir, tmp_path, name):
    if name.endswith(".jsonl"):
        table = pq.read_table(sim_dir / "features.parquet")
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in table.to_pylist()))
    else:
        (tmp_path / name).write_bytes((sim_dir / name).read_bytes())
    res = lp("audit", tmp_path)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["truth"] is False and rep["per_group"]


def make_hub_db(path: Path) -> None:
    """A database written by the real hub: sealed frames from 6 enrolled badges through Hub.ingest and flush."""
    from lifepalette.hub.core import Hub
    from lifepalette.hub.loadgen import telemetry_frame

    hub = Hub(path)
    keys = {dev: hub.enroll(dev) for dev in range(1, 7)}
    for ctr in range(1, 201):
        for dev, key in keys.items():
            hub.ingest(telemetry_frame(key, dev, ctr, physio=dev != 6))  # badge 6 withholds physiology
    hub.flush()
    hub.start_session()
    hub.tick()
    hub.public_view()  # one release in the session: the hub records the budget it spent
    hub.store.close()


def test_audit_db(tmp_path):
    db = tmp_path / "hub.db"
    make_hub_db(db)
    res = lp("audit", "--db", db)
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["telemetry_frames"] == 1200 and rep["store"]["ok"] and rep["privacy"]["ok"]
    group = rep["per_group"]["group 1"]
    assert group["wearers"] == 6 and group["consenting_wearers"] == 5 and group["hr_invalid_rate"] == 0.0
    budget = rep["privacy"]["public_budget"]  # the per-person budget spent on public numbers (issue 13)
    assert budget["stated"]["limit"] > 0 and budget["last_session"]["session"] == 1
    assert budget["last_session"]["epochs"] == 1 and budget["last_session"]["limit"] == budget["stated"]["limit"]
    epoch = sqlite3.connect(db).execute("SELECT epoch FROM frames WHERE dev_id = 6").fetchone()[0]
    con = sqlite3.connect(db)  # a stored physiology row for a frame that withheld consent is a finding
    con.execute("INSERT INTO physio VALUES (6, 3, ?, 70, 40, 500, 3, 0)", (epoch,))
    con.commit()
    con.close()
    res = lp("audit", "--db", db)
    assert res.returncode == 1 and json.loads(res.stdout)["store"]["physio_rows_without_consent"] == 1


@pytest.mark.parametrize("args, message", [
    (["audit"], "either DIR or --db"),
    (["audit", "/nonexistent-dir"], "not a directory"),
    (["audit", "--db", "/nonexistent.db"], "no database"),
    (["sim", "--wearers", "1", "--out", "/tmp/x"], "--wearers"),
    (["sim", "--minutes", "0", "--out", "/tmp/x"], "--minutes"),
    (["sim", "--scenario", "party", "--out", "/tmp/x"], "invalid choice"),
    (["sim", "--wearers", "4", "--minutes", "1", "--out", "/etc/hostname"], "not a directory"),
])
def test_usage_errors_exit_2(args, message):
    res = lp(*args)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_audit_rejects_a_non_hub_database(tmp_path):
    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE x (a)").connection.close()
    res = lp("audit", "--db", db)
    assert res.returncode == 2 and "not a Life Palette hub database" in res.stderr
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    res = lp("audit", "--db", tmp_path / "junk.db")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_sim_signal_level_cli(tmp_path):
    res = lp("sim", "--level", "signal", "--wearers", 6, "--minutes", 4, "--scenario", "calm", "--no-plots",
             "--no-features", "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["level"] == "signal" and report["scenario"] == "calm"
    assert not (tmp_path / "features.jsonl").exists() and not (tmp_path / "features.parquet").exists()


def test_too_short_a_session_is_not_judged(tmp_path):
    res = lp("sim", "--wearers", 5, "--minutes", 1, "--no-features", "--out", tmp_path)
    assert res.returncode == 0 and "note:" in res.stderr
    res = lp("audit", tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["checks"]["error_disparity_ok"] is None
