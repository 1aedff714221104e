"""Fairness and privacy audit of a simulated session directory or of a hub database.

DIR (written by `lifepalette sim`): per demographic group the mean Compassion Metric level, exclusion rates by the
quality gate, arousal error against the truth for our scorer and for a naive raw-level scorer, the disparities, and
a privacy check that every public aggregate rests on k >= 5 contributors. A DIR holding only features.parquet or features.jsonl (and
optionally groups.json) is scored first; without truth, error figures are absent.

--db FILE (the hub's SQLite, schema owned by lifepalette.hub.store, read-only): telemetry frames joined with stored
physiology are scored per dialogue group (no truth exists there), and the store itself is checked: no physiology row
may exist for a frame whose consent byte withheld physiology or for an erased consent epoch.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from lifepalette.errors import UsageError
from lifepalette.hub.store import ReadOnlyStore
from lifepalette.scoring import FIELDS, CoveScorer
from lifepalette.scoring.fields import CONSENT_PHYSIO, HR_NA, Q_MOTION, Q_SKIN, RMSSD_NA, SCL_NA, SCR_NA
from lifepalette.sim import evaluate
from lifepalette.sim.cohort import DEMOGRAPHIC_GROUPS
from lifepalette.sim.run import privacy_check

MOTION_NA = 255
FEATURE_FILES = ("features.parquet", "features.jsonl")  # what `lifepalette sim` writes (Parquet by default)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None


def group_figures(scores: dict, groups: dict[str, list[int]]) -> dict:
    """Per group of device ids: wearers, mean level, exclusion rates (no truth needed)."""
    out = {}
    for name, devs in groups.items():
        present = [scores["wearers"][str(d)] for d in devs if str(d) in scores["wearers"]]
        # rates describe people who consented: a badge that withholds physiology is not "excluded" by the gate
        stats = [s for s in present if s.get("consented_seconds", 1)]
        out[name] = {
            "wearers": len(present),
            "consenting_wearers": len(stats),
            "mean_level": evaluate._mean([s.get("level") for s in stats]),
            "exclusion_rate": evaluate._mean([s.get("excluded_fraction") for s in stats]),
            "hr_invalid_rate": evaluate._mean([1.0 - (s.get("hr_valid_fraction") or 0.0) for s in stats]),
            "eda_invalid_rate": evaluate._mean([1.0 - (s.get("eda_valid_fraction") or 0.0) for s in stats]),
            "motion_excluded_s": evaluate._mean([s.get("excluded_motion_s") for s in stats]),
        }
    return out


def audit_dir(directory: Path) -> dict:
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    scores_path = directory / "scores.json"
    features_path = next((directory / n for n in FEATURE_FILES if (directory / n).exists()), None)
    if scores_path.exists():
        scores = _load_json(scores_path)
    elif features_path is not None:
        scores = _score_feature_file(directory, features_path)
    else:
        raise UsageError(f"{directory} has neither scores.json nor features.parquet/features.jsonl "
                         "(run `lifepalette sim --out DIR`)")
    if not isinstance(scores, dict) or not isinstance(scores.get("wearers"), dict):
        raise UsageError(f"{scores_path}: not a scores document")
    publics = [scores.get("public", {})]
    timeline_path = directory / "palette_timeline.json"
    if timeline_path.exists():
        publics += [snap.get("public", {}) for snap in _load_json(timeline_path)]
    report: dict[str, Any] = {"source": str(directory), "privacy": privacy_check(publics)}
    cohort_path, arrays_path = directory / "cohort.json", directory / "arousal.npz"
    if cohort_path.exists() and arrays_path.exists():
        report.update(_truth_figures(scores, _load_json(cohort_path), arrays_path))
    else:
        dialogue = {f"group {g['group']}": g.get("members", []) for g in scores.get("groups", [])}
        report["per_group"] = group_figures(scores, dialogue)
        report["truth"] = False
    report["checks"] = _checks(report)
    return report


def _score_feature_file(directory: Path, features_path: Path) -> dict:
    from lifepalette.feature_table import read_features
    from lifepalette.scoring.offline import load_groups
    from lifepalette.scoring.table import score_table

    groups = load_groups(str(directory / "groups.json")) if (directory / "groups.json").exists() else None
    return score_table(read_features(features_path), groups, source=str(features_path))


def _truth_figures(scores: dict, cohort: dict, arrays_path: Path) -> dict:
    try:
        arrays = np.load(arrays_path)
        truth, ours, naive = arrays["truth"], arrays["ours"], arrays["naive"]
        demographic = arrays["demographic"]
        dev_ids = arrays["dev_ids"]
    except (OSError, KeyError, ValueError) as exc:
        raise UsageError(f"{arrays_path}: unreadable ({exc})") from None
    stats = [scores["wearers"].get(str(int(d)), {}) for d in dev_ids]
    fair = evaluate.fairness(demographic, truth, ours, naive, stats)
    return {"truth": True, "per_group": fair["groups"], "disparity": fair["disparity"],
            "error_disparity_max": fair["error_disparity_max"], "demographic_groups": list(DEMOGRAPHIC_GROUPS),
            "scenario": cohort.get("scenario")}


def _checks(report: dict) -> dict:
    checks = {"privacy_ok": report["privacy"]["ok"]}
    if "store" in report:
        checks["store_consent_ok"] = report["store"]["ok"]
    if report.get("truth"):
        # None when the session was too short for any scored second (baseline not learnt): nothing to judge
        measured = report["disparity"]["arousal_mae"] is not None
        checks["error_disparity_ok"] = bool(report["disparity"]["ours_within_threshold"]) if measured else None
    checks["ok"] = all(v is not False for v in checks.values())
    return checks


# --- the hub's database ----------------------------------------------------------------------------------------
def public_budget(recorded: str | None) -> dict:
    """The per-person budget spent on public numbers in the hub's last session (as the hub recorded it), next to
    the mechanism's stated budget."""
    from lifepalette.privacy import release

    stated = {"unit": "rho (zCDP) per person per session", "limit": release.BUDGET_RHO,
              "noise_multiplier": release.NOISE, "cadence_s": release.CADENCE_S}
    try:
        spent = json.loads(recorded) if recorded else None
    except json.JSONDecodeError:
        spent = None
    return {"stated": stated, "last_session": spent if isinstance(spent, dict) else None}


def telemetry_records(rows: list[tuple]) -> list[tuple[int, int, dict]]:
    """The store's telemetry rows (ReadOnlyStore.telemetry) as (device, second, telemetry fields) records, with
    the n/a codes where no physiology is stored."""
    na = (HR_NA, RMSSD_NA, SCL_NA, SCR_NA, MOTION_NA)
    out = []
    for dev, t_rx, consent, quality, hue, chroma, age, battery, *physio in rows:
        fields = dict(zip(("hr_bpm", "rmssd_ms", "scl", "scr_per_min", "motion"),
                          (v if v is not None else n for v, n in zip(physio, na, strict=True)), strict=True))
        fields.update(consent=consent or 0, quality=quality or 0, hue=hue or 0, chroma=chroma or 0,
                      colour_age=255 if age is None else age, battery=battery or 0)
        out.append((int(dev), int(t_rx), {k: fields[k] for k in FIELDS}))
    return out


def audit_db(path: Path, groups: list[list[int]] | None = None) -> dict:
    store = ReadOnlyStore(path)
    try:
        rows = store.telemetry()
        leaks = store.physio_rows_without_consent(CONSENT_PHYSIO)
        erased = store.physio_rows_in_erased_epochs()
        budget = store.public_budget()
        erasures = store.erasures_by_reason()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path}: unexpected schema ({exc})") from None
    finally:
        store.close()
    scorer = CoveScorer(groups)
    gate = {"frames": 0, "off_skin": 0, "motion": 0}
    for dev, t, fields in telemetry_records(rows):
        gate["frames"] += 1
        gate["off_skin"] += not fields["quality"] & Q_SKIN
        gate["motion"] += bool(fields["quality"] & Q_MOTION)
        scorer.add(dev, t, fields)
    scorer.flush()
    scores = scorer.compute()
    per_group = group_figures(scores, {f"group {g['group']}": g["members"] for g in scores["groups"]})
    frames = max(gate["frames"], 1)
    report = {"source": str(path), "truth": False, "telemetry_frames": gate["frames"],
              "quality_gate": {"off_skin_rate": round(gate["off_skin"] / frames, 4),
                               "motion_rate": round(gate["motion"] / frames, 4)},
              "per_group": per_group,
              "privacy": {**privacy_check([scores["public"]]), "public_budget": public_budget(budget)},
              "store": {"physio_rows_without_consent": int(leaks), "physio_rows_in_erased_epochs": int(erased),
                        "ok": leaks == 0 and erased == 0},
              # receipts by reason; "wearer" = erased by the wearer from their own page (issue 19)
              "erasures": {"receipts": sum(erasures.values()), "by_reason": erasures,
                           "wearer_self_erasures": erasures.get("wearer", 0)}}
    report["checks"] = _checks(report)
    return report

