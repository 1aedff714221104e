"""PNG plots of a simulated session, drawn with Pillow through lifepalette.sim.plotkit.

Why not matplotlib: importing it and drawing these four figures was about 1.2 s CPU of a 1000-wearer run. The layouts
are fixed pixel boxes (the figures' sizes are fixed, so nothing needs measuring at run time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lifepalette.sim import plotkit as pk
from lifepalette.sim import scenarios
from lifepalette.sim.cohort import COUPLING_LEVELS, DEMOGRAPHIC_GROUPS

MAX_GROUP_ROWS = 24
MAX_MATRIX_WEARERS = 40
MAX_TRAJECTORIES = 12
COUPLING_TICKS = sorted(set(COUPLING_LEVELS))
PNG_COMPRESS_LEVEL = 1  # lossless either way; zlib level 6 took 17 ms more for 17 % smaller files (1000 wearers)
BLUE, ORANGE = (38, 112, 178), (240, 128, 28)
# one colour per plotted wearer (MAX_TRAJECTORIES of them), no two alike, none pale on white
WEARER_COLOURS = [(38, 112, 178), (240, 128, 28), (44, 150, 60), (200, 40, 44), (140, 100, 190), (140, 86, 74),
                  (220, 110, 190), (100, 100, 100), (170, 170, 30), (20, 170, 190), (10, 40, 110), (120, 200, 90)]


def write_plots(result: Any, out: Path, progress: Any = None) -> list[str]:
    names = []
    for name, fn in (("palette.png", _palette), ("synchrony.png", _synchrony), ("trajectories.png", _trajectories),
                     ("groups.png", _groups)):
        fn(result).save(out / name, compress_level=PNG_COMPRESS_LEVEL)
        names.append(name)
        if progress is not None:
            progress.update()
    return names


def palette_cells(timeline: list[dict]) -> tuple[list[int], np.ndarray]:
    """The groups shown (at most MAX_GROUP_ROWS) and an RGB cell per row (cove, then each group) and snapshot; a
    group missing from a snapshot is black."""
    gids = [g["group"] for g in timeline[0]["groups"]][:MAX_GROUP_ROWS]
    img = np.zeros((len(gids) + 1, len(timeline), 3), np.uint8)
    for j, snap in enumerate(timeline):
        img[0, j] = snap["cove"]["rgb"]
        by_id = {g["group"]: g for g in snap["groups"]}
        for i, gid in enumerate(gids):
            if gid in by_id:
                img[i + 1, j] = by_id[gid]["rgb"]
    return gids, img


def _palette(result: Any) -> pk.Canvas:
    timeline = result.palette_timeline
    canvas = pk.Canvas(810, 360)
    # each snapshot (taken at the end of its stretch) colours the stretch since the one before it
    end = (timeline[-1]["t"] + 1) / 60.0 if timeline else 1.0
    gids, img = palette_cells(timeline) if timeline else ([], np.zeros((0, 0, 3), np.uint8))
    ax = canvas.add_axes(72, 34, 795, 305, (0.0, end), (len(gids) + 0.5, -0.5))
    ax.image(img, (0.0, end, -0.5, len(gids) + 0.5))
    if timeline:
        ax.yticks(range(len(gids) + 1), ["cove"] + [f"group {g}" for g in gids], size=9)
    ax.xticks(pk.nice_ticks(0.0, end, 8))
    ax.xlabel("minute")
    ax.title(f"Cove palette over time ({result.cohort.scenario})")
    return canvas


def coupling_matrices(result: Any) -> tuple[list[int], np.ndarray, np.ndarray, list[float], list[float]]:
    """The first MAX_MATRIX_WEARERS wearers' true coupling and estimated excess synchrony per pair (NaN: no pair or
    no estimate), and every estimated pair's (coupling, excess)."""
    c = result.cohort
    ids = c.dev_ids[:MAX_MATRIX_WEARERS].tolist()
    pos = {d: i for i, d in enumerate(ids)}
    mat = np.full((len(ids), len(ids)), np.nan)
    truth = np.full_like(mat, np.nan)
    est = {(p["a"], p["b"]): p for p in result.scores["pairs"]}
    xs, ys = [], []
    for (_g, a, b), coupling in zip(c.pairs, c.coupling, strict=True):
        p = est.get((a, b))
        if p is None or p["excess"] is None:
            continue
        xs.append(coupling)
        ys.append(p["excess"])
        if a in pos and b in pos:
            mat[pos[a], pos[b]] = mat[pos[b], pos[a]] = p["excess"]
            truth[pos[a], pos[b]] = truth[pos[b], pos[a]] = coupling
    return ids, truth, mat, xs, ys


def _heatmap(canvas: pk.Canvas, left: float, values: np.ndarray, vmin: float, vmax: float, ticks: list[float],
             title: str) -> pk.Axes:
    n = max(1, len(values))
    ax = canvas.add_axes(left, 40, left + 318, 358, (-0.5, n - 0.5), (n - 0.5, -0.5))
    if len(values):
        ax.image(pk.colour_map(values, vmin, vmax), (-0.5, n - 0.5, -0.5, n - 0.5))
    every = list(range(0, len(values), 10))  # a wearer index every 10
    ax.xticks(every)
    ax.yticks(every)
    ax.title(title, size=11)
    pk.colorbar(canvas, left + 334, 40, left + 350, 358, vmin, vmax, ticks)
    return ax


def _synchrony(result: Any) -> pk.Canvas:
    ids, truth, mat, xs, ys = coupling_matrices(result)
    canvas = pk.Canvas(1350, 405)
    _heatmap(canvas, 38, truth, 0.0, 0.8, COUPLING_TICKS, f"true coupling (first {len(ids)} wearers)")
    _heatmap(canvas, 478, mat, -0.05, 0.2, [0.0, 0.1, 0.2], "estimated synchrony above surrogate")
    x = np.asarray(xs, float)
    y = np.asarray(ys, float)
    ylim = pk.padded(float(y.min()), float(y.max())) if len(y) else (-0.1, 0.1)
    ax = canvas.add_axes(968, 40, 1335, 345, pk.padded(min(COUPLING_TICKS), max(COUPLING_TICKS)), ylim)
    ax.hline(0.0, pk.GREY)
    ax.scatter(x, y, BLUE, radius=2.5, alpha=0.6)
    ax.xticks(COUPLING_TICKS)  # the levels the cohort draws couplings from
    ax.yticks(pk.nice_ticks(*ylim, 5))
    rho = result.report["validity"]["spearman_coupling_vs_synchrony"]
    ax.xlabel("true coupling")
    ax.ylabel("estimated synchrony above surrogate (r)", offset=44)
    ax.title(f"all pairs: Spearman {rho}", size=11)
    return canvas


def _trajectories(result: Any) -> pk.Canvas:
    c = result.cohort
    canvas = pk.Canvas(810, 540)
    end = max(c.seconds, 1) / 60.0
    xticks = pk.nice_ticks(0.0, end, 8)
    ax1 = canvas.add_axes(84, 14, 795, 250, (0.0, end), (0.0, 1.0))
    ax2 = canvas.add_axes(84, 266, 795, 488, (0.0, end), (0.0, 1.0))
    minutes = np.arange(c.seconds) / 60.0
    for name, start, _end in scenarios.phase_spans(c.scenario, c.seconds):
        ax1.vline(start / 60.0, pk.LIGHT_GREY)
        ax1.text(start / 60.0, 0.97, " " + name, size=10)
    ax1.plot(minutes, c.drive, pk.BLACK, width=1.5, label="scenario drive")
    ax1.plot(minutes, _column_mean(c.arousal), BLUE, label="true arousal (mean)")
    ax1.plot(minutes, _column_mean(result.ours), ORANGE, label="estimated arousal (mean)")
    ax1.legend()
    plotted = 0
    for dev in c.dev_ids[:MAX_TRAJECTORIES]:
        traj = result.scores["wearers"].get(str(int(dev)), {}).get("trajectory", [])
        if traj:
            t, lv = zip(*traj, strict=True)
            ax2.plot(np.array(t) / 60.0, np.array(lv), WEARER_COLOURS[plotted % len(WEARER_COLOURS)])
            plotted += 1
    # No legend: twelve "wearer N" entries would hide the lines they name
    if not plotted:
        ax2.text_at(0.5, 0.5, "session too short for a trajectory", ha="center", va="center")
    for ax in (ax1, ax2):
        ax.yticks(pk.nice_ticks(0.0, 1.0, 6))
    ax1.xticks(xticks, show_labels=False)
    ax2.xticks(xticks)
    ax1.ylabel("arousal")
    ax2.ylabel(f"Compassion Metric level\n(first {plotted} wearers)")
    ax2.xlabel("minute")
    return canvas


def _column_mean(a: np.ndarray) -> np.ndarray:
    """Mean over wearers per second, NaN left out (NaN where every wearer is NaN), without nanmean's full copy."""
    finite = np.isfinite(a)
    if finite.all():  # the truth has no gaps: the same sums without a masked copy
        return a.sum(axis=0, dtype=np.float64) / a.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, a, 0).sum(axis=0, dtype=np.float64) / finite.sum(axis=0)


def _row_error(estimate: np.ndarray, truth: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Each wearer's mean absolute error over the kept seconds (NaN for none), as nanmean over the NaN-masked errors
    gives it, in one error array changed in place (a cohort-sized temporary less per pass)."""
    err = estimate - truth
    np.abs(err, out=err)
    err[~keep] = 0
    total = err.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.true_divide(total, keep.sum(axis=1), out=total, casting="unsafe")


def group_errors(result: Any) -> tuple[list[np.ndarray], list[str]]:
    """Per-wearer MAE (finite ones only) of ours and of the naive peer, for each demographic group in turn."""
    c = result.cohort
    scored = np.isfinite(result.ours)
    err_ours = _row_error(result.ours, c.arousal, scored)
    err_naive = _row_error(result.naive, c.arousal, scored & np.isfinite(result.naive))
    data, labels = [], []
    for gi, name in enumerate(DEMOGRAPHIC_GROUPS):
        sel = c.demographic == gi
        for tag, err in (("ours", err_ours), ("naive", err_naive)):
            vals = err[sel]
            data.append(vals[np.isfinite(vals)])
            labels.append(f"{name}\n{tag}")
    return data, labels


def _groups(result: Any) -> pk.Canvas:
    canvas = pk.Canvas(990, 360)
    data, labels = group_errors(result)
    finite = np.concatenate(data) if data else np.array([])
    ylim = pk.padded(float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    ax1 = canvas.add_axes(66, 26, 482, 312, (0.5, max(1, len(data)) + 0.5), ylim)
    positions = list(range(1, len(data) + 1))
    ax1.boxplot(data, positions)
    ax1.xticks(positions, labels, size=10)
    ax1.yticks(pk.nice_ticks(*ylim, 7))
    ax1.ylabel("arousal MAE vs truth", offset=38)
    groups = result.report["fairness"]["groups"]
    names = list(groups)
    excluded = np.array([groups[n]["exclusion_rate"] or 0 for n in names], float)
    hr_invalid = np.array([groups[n]["hr_invalid_rate"] or 0 for n in names], float)
    top = max(float(np.max(excluded, initial=0.0)), float(np.max(hr_invalid, initial=0.0))) * 1.05 or 1.0
    ax2 = canvas.add_axes(548, 26, 975, 312, (-0.5, max(1, len(names)) - 0.5), (0.0, top))
    width = 0.38
    x = np.arange(len(names))
    ax2.bars(x - width / 2, excluded, width, BLUE, label="excluded seconds")
    ax2.bars(x + width / 2, hr_invalid, width, ORANGE, label="HR invalid")
    ax2.xticks(list(x), names, size=12)
    ax2.yticks(pk.nice_ticks(0.0, top, 5))
    ax2.ylabel("rate", offset=38)
    ax2.legend()
    ax2.title("quality gate per group", size=11)
    return canvas
