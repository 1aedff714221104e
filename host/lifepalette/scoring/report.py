"""Report shaping of the cove scorer: the scores document `compute()` returns (see `lifepalette score`).

Per wearer (Compassion Metric level, trend and confidence; never a ranking), per pair, per group, the cove palette,
and the public aggregates (only where at least K_MIN consenting people contribute).
"""

from __future__ import annotations

import math
from typing import NotRequired, TypedDict

import numpy as np

from lifepalette.privacy import K_MIN
from lifepalette.scoring import palette as pal
from lifepalette.scoring.rounding import rounded

CONTRIBUTOR_RECENT_S = 60


# The scores document's shapes. TypedDicts, not objects: `compute()` builds thousands of pair entries per step for a
# large cove and the document is JSON as it stands; the types are checked statically and by test_scoring_core.
class WearerScore(TypedDict):
    level: float | None  # Compassion Metric, 0-1, over the last 10 minutes
    trend: float | None  # per minute
    confidence: float | None
    arousal: float | None
    regulation: float | None
    synchrony: float | None
    baseline_ready: bool
    seconds: int
    consented_seconds: int
    valid_seconds: int
    valid_fraction: float | None
    excluded_motion_s: int
    excluded_quality_s: int
    excluded_fraction: float | None
    hr_valid_fraction: float | None
    eda_valid_fraction: float | None
    trajectory: NotRequired[list[list[float]]]  # [t, level] once a minute, with keep_trajectory


class PairScore(TypedDict):
    a: int
    b: int
    group: int
    synchrony: float | None
    surrogate: float | None
    excess: float | None
    recent_excess: float | None
    windows: int
    surrogate_windows: int
    lag_s: float | None


class PaletteScore(TypedDict):
    rgb: list[int]
    hue: float
    saturation: float
    brightness: float
    convergence: float


class GroupScore(TypedDict):
    group: int
    members: list[int]
    contributors: int
    arousal: float | None
    synchrony: float | None
    surrogate: float | None
    excess: float | None
    level: float | None
    palette: PaletteScore


class PublicCove(TypedDict, total=False):
    suppressed: bool  # present (True) instead of the aggregates while fewer than K_MIN contribute
    contributors: int
    arousal: float | None
    excess_synchrony: float | None
    palette: PaletteScore


class PublicGroup(TypedDict, total=False):
    group: int
    suppressed: bool  # present (True) instead of the aggregates while fewer than K_MIN contribute
    contributors: int
    arousal: float | None
    excess_synchrony: float | None
    level: float | None
    palette: PaletteScore


class PublicScores(TypedDict):
    k: int
    cove: PublicCove
    groups: list[PublicGroup]


class CovePalette(PaletteScore):
    groups: list[dict]  # {"group": id, **PaletteScore} per group


class Scores(TypedDict):
    wearers: dict[str, WearerScore]
    pairs: list[PairScore]
    groups: list[GroupScore]
    palette: CovePalette
    public: PublicScores
    t: int | None
    late_records: int


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


class ScoreReport:
    """Mixin of CoveScorer: shapes its state into the scores document."""

    def contributors(self, rows: np.ndarray) -> np.ndarray:
        """Rows that count as consenting contributors now (valid physiology within the last minute)."""
        if self.next_t is None or rows.size == 0:
            return rows[:0]
        recent = self.last_valid_t[rows] >= self.next_t - 1 - CONTRIBUTOR_RECENT_S
        return rows[recent & self.consenting[rows]]

    def compute(self, detail: bool = True) -> Scores:
        """Process every second older than the grace period and return the scores (see `lifepalette score`).

        detail=False leaves "wearers" and "pairs" empty (cheaper for periodic palette snapshots of a large cove);
        groups, palette and the public view are the same."""
        if self.latest_t is not None:
            self._advance(self.latest_t - self.grace_s)
        n = len(self.devs)
        if self._pairs_dirty and n:
            self._save_pair_state()
            self._build_pairs()
        level = self.metric_level()  # the trend is the wearers' only (a snapshot skips its least squares)
        wearers = self._wearers(n, *self.metric_levels()) if detail else {}
        pairs = self._pairs_out() if detail else []
        groups = self._groups_out(level)
        public = self._public(groups)
        cove = self._cove_colour(groups)
        return {"wearers": wearers, "pairs": pairs, "groups": groups,
                "palette": {**cove, "groups": [{"group": g["group"], **g["palette"]} for g in groups]},
                "public": public, "t": self.next_t - 1 if self.next_t is not None else None,
                "late_records": self.late_records}

    def _trajectories(self, n: int) -> list[list[list[float]]]:
        """Per row, its [t, level] points (finite levels only, rounded to 4 places). Each minute's levels are rounded
        at once and regrouped by row with one zip, not number by number (60 x 1,000 of them for a simulated hour)."""
        times = [int(t) for t, _lv in self.trajectory]
        minutes = [rounded(lv[:n], 4) + [None] * (n - min(n, len(lv))) for _t, lv in self.trajectory]
        by_row = zip(*minutes, strict=True) if minutes else ([] for _ in range(n))
        return [[[t, v] for t, v in zip(times, levels, strict=True) if v is not None] for levels in by_row]

    def _cove_colour(self, groups: list[GroupScore]) -> PaletteScore:
        """The whole cove's colour: mean arousal of contributors, mean excess synchrony, everyone's reported hue."""
        rows = self.contributors(np.arange(len(self.devs), dtype=np.int64))
        known = self.arousal_ema[rows]
        known = known[~np.isnan(known)]  # contributors whose arousal baseline is still learning have none yet
        arousal = float(known.mean()) if known.size else float("nan")
        excess = [g["excess"] for g in groups if g["excess"] is not None]
        hues = self.hue[rows]
        has = ~np.isnan(hues)
        quality = float(np.mean(self.n_valid[rows] / np.maximum(self.n_consented[rows], 1))) if rows.size else 0.0
        return pal.group_colour(arousal, float(np.mean(excess)) if excess else float("nan"), hues[has],
                                self.chroma[rows][has], quality)

    def _wearers(self, n: int, level: np.ndarray, trend: np.ndarray, conf: np.ndarray) -> dict[str, WearerScore]:
        """Every present wearer's entry; each column is rounded for all wearers at once."""
        rows = np.flatnonzero(self.n_present[:n])
        consented = self.n_consented[rows]
        some = (consented > 0).tolist()

        def share(count: np.ndarray) -> list[float | None]:  # of the consented seconds; 0.0 where none consented
            with np.errstate(invalid="ignore", divide="ignore"):
                return [v if ok else 0.0 for v, ok in zip(rounded(count / consented, 4), some, strict=True)]

        columns = {
            "level": rounded(level[rows], 4), "trend": rounded(trend[rows], 4), "confidence": rounded(conf[rows], 4),
            "arousal": rounded(self.arousal_ema[rows], 4), "regulation": rounded(self.regulation()[rows], 4),
            "synchrony": rounded(self.recent_synchrony()[rows], 4),
            "baseline_ready": self.baseline.ready[rows, :3].any(axis=1).tolist(),
            "seconds": self.n_present[rows].tolist(), "consented_seconds": consented.tolist(),
            "valid_seconds": self.n_valid[rows].tolist(), "valid_fraction": share(self.n_valid[rows]),
            "excluded_motion_s": self.n_motion[rows].tolist(), "excluded_quality_s": self.n_quality[rows].tolist(),
            "excluded_fraction": share(self.n_motion[rows] + self.n_quality[rows]),
            "hr_valid_fraction": share(self.n_hr_ok[rows]), "eda_valid_fraction": share(self.n_eda_ok[rows]),
        }
        if self.keep_trajectory:
            trajectories = self._trajectories(n)
            columns["trajectory"] = [trajectories[row] for row in rows.tolist()]
        names = list(columns)
        return {str(self.devs[row]): dict(zip(names, values, strict=True))
                for row, values in zip(rows.tolist(), zip(*columns.values(), strict=True), strict=True)}

    def _pairs_out(self) -> list[PairScore]:
        if self._cache_pairs is not None:
            return self._cache_pairs
        out = []
        st = self.pair_state if self.pair_keys else np.zeros((0, 6))
        with np.errstate(invalid="ignore", divide="ignore"):
            syn = np.tanh(st[:, 0] / st[:, 1])
            sur = np.tanh(st[:, 2] / st[:, 3])
            lag = st[:, 4] / st[:, 1]
        for i, (gid, a, b) in enumerate(self.pair_keys):
            out.append({"a": a, "b": b, "group": gid, "synchrony": _num(syn[i]), "surrogate": _num(sur[i]),
                        "excess": _num(syn[i] - sur[i]), "recent_excess": _num(st[i, 5]),
                        "windows": int(st[i, 1]), "surrogate_windows": int(st[i, 3]), "lag_s": _num(lag[i])})
        self._cache_pairs = out
        return out

    def _group_index(self) -> tuple[list[int], list[list[int]], np.ndarray, np.ndarray]:
        """(group ids, sorted members, group index of each row or -1, group index of each pair), cached with the
        pairs (rebuilt when wearers or groups change)."""
        cached = self._group_cache
        if cached is not None and cached[0] is self.pair_keys:
            return cached[1]
        groups = self._group_of()
        gids = list(groups)
        row_group = np.full(len(self.devs), -1, np.int64)
        for gi, members in enumerate(groups.values()):
            row_group[[self.rows[d] for d in members]] = gi
        position = {gid: gi for gi, gid in enumerate(gids)}
        pair_group = np.array([position[g] for g, _a, _b in self.pair_keys], dtype=np.int64)
        out = (gids, [sorted(m) for m in groups.values()], row_group, pair_group)
        self._group_cache = (self.pair_keys, out)
        return out

    def _groups_out(self, level: np.ndarray) -> list[GroupScore]:
        """Per dialogue group, vectorised over groups (a large cove has thousands): contributors, mean arousal, mean
        pair synchrony and excess, quality, the members' reported hues and the group's palette."""
        gids, members, row_group, pair_group = self._group_index()
        n_groups, n = len(gids), len(self.devs)

        def mean_by(index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ok = np.isfinite(values) & (index >= 0)
            count = np.bincount(index[ok], minlength=n_groups)
            total = np.bincount(index[ok], values[ok], minlength=n_groups)
            return np.where(count > 0, total / np.maximum(count, 1), np.nan), count

        st = self.pair_state if self.pair_keys else np.zeros((0, 6))
        with np.errstate(invalid="ignore", divide="ignore"):
            syn, sur = np.tanh(st[:, 0] / st[:, 1]), np.tanh(st[:, 2] / st[:, 3])
        syn_mean, n_syn = mean_by(pair_group, syn)
        sur_mean, n_sur = mean_by(pair_group, sur)
        excess, _n = mean_by(pair_group, syn - sur)
        rows = np.arange(n, dtype=np.int64)
        is_contrib = np.zeros(n, bool)
        is_contrib[self.contributors(rows)] = True
        contrib_group = np.where(is_contrib, row_group, -1)
        n_contrib = np.bincount(contrib_group[contrib_group >= 0], minlength=n_groups)
        arousal, _n = mean_by(contrib_group, self.arousal_ema[:n])
        level_mean, n_level = mean_by(contrib_group, level[:n])
        quality, n_rows = mean_by(row_group, self.n_valid[:n] / np.maximum(self.n_consented[:n], 1))
        quality = np.where(n_rows > 0, quality, 0.0)
        hue = self.hue[:n]
        shares = ~np.isnan(hue) & (row_group >= 0)
        w = self.chroma[:n][shares]
        rad = np.deg2rad(hue[shares])
        c = np.bincount(row_group[shares], w * np.cos(rad), minlength=n_groups)
        s = np.bincount(row_group[shares], w * np.sin(rad), minlength=n_groups)
        total = np.bincount(row_group[shares], w, minlength=n_groups)
        has = total > 0
        mean_hue = np.where(has, np.rad2deg(np.arctan2(s, c)) % 360.0, np.nan)
        agreement = np.where(has, np.hypot(c, s) / np.where(has, total, 1.0), 0.0)
        colours = pal.group_colours(arousal, excess, mean_hue, agreement, quality)
        counted = {name: np.where(count > 0, mean, np.nan)  # NaN for no pairs / no levels: None in the document
                   for name, mean, count in (("syn", syn_mean, n_syn), ("sur", sur_mean, n_sur),
                                             ("level", level_mean, n_level))}
        columns = zip(gids, members, n_contrib.tolist(), rounded(arousal, 4), rounded(counted["syn"], 4),
                      rounded(counted["sur"], 4), rounded(excess, 4), rounded(counted["level"], 4), colours,
                      strict=True)
        return [{"group": gid, "members": ms, "contributors": nc, "arousal": ar, "synchrony": sy, "surrogate": su,
                 "excess": ex, "level": lv, "palette": colour}
                for gid, ms, nc, ar, sy, su, ex, lv, colour in columns]

    def _public(self, groups: list[GroupScore]) -> PublicScores:
        """Aggregates safe to show publicly: only where at least K_MIN consenting people contribute."""
        all_rows = np.arange(len(self.devs), dtype=np.int64)
        contrib = self.contributors(all_rows)
        shown: list[PublicGroup] = [
            {"group": g["group"], "contributors": g["contributors"], "arousal": g["arousal"],
             "excess_synchrony": g["excess"], "level": g["level"], "palette": g["palette"]}
            if g["contributors"] >= K_MIN else {"group": g["group"], "suppressed": True} for g in groups]
        cove: PublicCove = {"suppressed": True}
        if contrib.size >= K_MIN:
            excess = [g["excess"] for g in groups if g["excess"] is not None]
            arousal = float(np.nanmean(self.arousal_ema[contrib]))
            ex = float(np.mean(excess)) if excess else float("nan")
            cove = {"contributors": int(contrib.size), "arousal": _num(arousal), "excess_synchrony": _num(ex),
                    "palette": pal.group_colour(arousal, ex, np.array([]), np.array([]), 1.0)}
        return {"k": K_MIN, "groups": shown, "cove": cove}
