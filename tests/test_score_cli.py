"""`lifepalette score` through the real console script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LP = Path(sys.executable).with_name("lifepalette")


def run(*args, stdin=None):
    return subprocess.run([str(LP), "score", *map(str, args)], capture_output=True, text=True, input=stdin,
                          timeout=60)


def write_features(path: Path, devs, seconds=300, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for t in range(seconds):
        for d in devs:
            a = 0.3 + 0.1 * rng.standard_normal()
            lines.append(json.dumps({"device": d, "t": t, "hr_bpm": int(70 + 30 * a), "rmssd_ms": 40,
                                     "scl": int(500 * (1 + 0.6 * a)), "scr_per_min": 3, "motion": 0, "hue": 30 * d,
                                     "chroma": 200, "colour_age": 0, "consent": 3 | 16, "battery": 80,
                                     "quality": 7}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    return write_features(tmp_path_factory.mktemp("score") / "f.jsonl", [1, 2, 3, 4, 5])


def test_pairs_for_every_two_wearers_in_the_same_group(features, tmp_path):
    groups = tmp_path / "g.json"
    groups.write_text(json.dumps({"groups": [[1, 2], [3, 4, 5]]}))
    res = run(features, "--groups", groups)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["wearers"]) == {"1", "2", "3", "4", "5"}
    for w in out["wearers"].values():
        assert {"level", "trend", "confidence"} <= set(w)
    assert sorted((p["a"], p["b"]) for p in out["pairs"]) == [(1, 2), (3, 4), (3, 5), (4, 5)]
    assert all({"synchrony", "surrogate"} <= set(p) for p in out["pairs"])
    assert [g["members"] for g in out["groups"]] == [[1, 2], [3, 4, 5]]
    # public: the view the hub would release at the last second; five consenting wearers make the cove public
    assert out["public"]["contributors"] == 5 and out["public"]["ready"] and out["public"]["arousal"] is not None
    assert out["public"]["groups"] == []  # groups of 2 and 3 are not


def test_without_groups_everyone_is_one_group(features):
    res = run(features)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["pairs"]) == 10 and len(out["groups"]) == 1


def test_stdin(features):
    res = run("-", stdin=features.read_text())
    assert res.returncode == 0 and len(json.loads(res.stdout)["pairs"]) == 10


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not valid JSON"),
    ('{"device": 1, "t": 1, "pulse": 70}', "line 2: unknown field 'pulse'"),
    ('{"t": 1, "hr_bpm": 70}', "line 2: 'device' must be"),
    ('{"device": 1, "t": "x"}', "line 2: 't' must be"),
    ('{"device": 1, "t": 1, "hr_bpm": "70"}', "field 'hr_bpm' must be a number"),
    ("[1, 2]", "line 2: expected a JSON object"),
])
def test_bad_lines_are_one_clear_line_exit_2(tmp_path, line, message):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"device": 1, "t": 0, "hr_bpm": 70}\n' + line + "\n")
    res = run(f)
    assert res.returncode == 2 and res.stdout == ""
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("content, message", [
    ("{oops", "not valid JSON"),
    ('{"groups": [1, 2]}', "expected"),
    ('{"groups": [[1, 2], [2, 3]]}', "listed twice"),
    ('{"groups": [[1, "x"]]}', "non-negative integers"),
    ('{"groups": [[1, 2], [3, 99]]}', "no records"),
])
def test_bad_groups_file_exit_2(features, tmp_path, content, message):
    g = tmp_path / "g.json"
    g.write_text(content)
    res = run(features, "--groups", g)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_missing_and_empty_inputs(tmp_path):
    res = run(tmp_path / "nope.jsonl")
    assert res.returncode == 2 and "cannot read" in res.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    res = run(empty)
    assert res.returncode == 2 and "no feature records" in res.stderr


def test_help():
    res = run("--help")
    assert res.returncode == 0 and "GROUPS.json" in res.stdout


def test_minimal_records_as_in_the_issue(tmp_path):
    rng = np.random.default_rng(3)
    f = tmp_path / "min.jsonl"
    f.write_text("".join(json.dumps({"device": d, "t": t, "hr_bpm": int(74 + 3 * rng.standard_normal()),
                                     "scl": int(512 + 10 * rng.standard_normal())}) + "\n"
                         for t in range(400) for d in (3, 4)))
    res = run(f)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["wearers"]) == {"3", "4"} and out["wearers"]["3"]["valid_seconds"] > 200
    assert out["pairs"][0]["a"] == 3 and out["pairs"][0]["windows"] > 0


def test_dev_id_is_accepted_as_the_device_key(tmp_path):
    f = tmp_path / "dev_id.jsonl"
    f.write_text('{"dev_id": 7, "t": 1, "hr_bpm": 70}\n{"dev_id": 8, "t": 1, "hr_bpm": 60}\n')
    res = run(f)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["wearers"]) == {"7", "8"} and [(p["a"], p["b"]) for p in out["pairs"]] == [(7, 8)]


def test_timeline_prints_the_released_public_view_of_every_scored_second(features):
    from lifepalette.boundary import PublicView

    res = run(features, "--timeline", "--seed", 3)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["t"] for line in lines] == list(range(300))  # one line per second, nothing else on stdout
    assert all(set(line) == {"t", "public"} for line in lines)
    views = [PublicView.from_json(line["public"]) for line in lines]  # each one on the public contract
    assert views[-1].ready and views[-1].contributors == 5
    # released numbers are held between epochs: far fewer distinct values than seconds, but more than one
    assert 5 < len({v.arousal for v in views if v.ready}) < 100
    again = run(features, "--timeline", "--seed", 3)
    assert again.stdout == res.stdout
    other = run(features, "--timeline", "--seed", 4)
    assert other.returncode == 0 and other.stdout != res.stdout


def test_without_timeline_public_is_the_view_released_at_the_last_second(features):
    timeline = run(features, "--timeline", "--seed", 9)
    whole = run(features, "--seed", 9)
    assert whole.returncode == 0, whole.stderr
    assert json.loads(whole.stdout)["public"] == json.loads(timeline.stdout.splitlines()[-1])["public"]


def test_timeline_below_k_releases_the_count_only(tmp_path):
    path = write_features(tmp_path / "four.jsonl", [1, 2, 3, 4], seconds=60)
    res = run(path, "--timeline", "--seed", 1)
    assert res.returncode == 0, res.stderr
    views = [json.loads(line)["public"] for line in res.stdout.splitlines()]
    assert len(views) == 60 and all(not v["ready"] and v["arousal"] is None and v["palette"] is None for v in views)
