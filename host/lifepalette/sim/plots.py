"""PNG plots of a simulated session (matplotlib's Figure on the Agg canvas: no display, no pyplot).

Why not pyplot: its import and its figure manager cost more than a plot here. Why fixed margins rather than
tight_layout: tight_layout lays every figure out twice (a measuring pass, then the drawing pass), which was half the
plots' time; the margins below are what tight_layout chose for these figures, with room to spare.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from lifepalette.sim import scenarios
from lifepalette.sim.cohort import COUPLING_LEVELS, DEMOGRAPHIC_GROUPS

MAX_GROUP_ROWS = 24
MAX_MATRIX_WEARERS = 40
MAX_TRAJECTORIES = 12
DPI = 90
COUPLING_TICKS = sorted(set(COUPLING_LEVELS))
# Titles where matplotlib would put them anyway (just above the axes: no axis here has ticks or labels on top); a
# title at a given height skips matplotlib's search for overlapping tick labels (4 % fewer Python calls over the four
# figures, ~0.03 s of a 1000-wearer run)
TITLE_Y = 1.0
PNG_COMPRESS_LEVEL = 1  # lossless either way; zlib level 6 took 0.1 s more for 8 % smaller files


def write_plots(result: Any, out: Path, progress: Any = None) -> list[str]:
    names = []
    for name, fn in (("palette.png", _palette), ("synchrony.png", _synchrony), ("trajectories.png", _trajectories),
                     ("groups.png", _groups)):
        fn(result).savefig(out / name, dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
        names.append(name)
        if progress is not None:
            progress.update()
    return names


def _figure(width: float, height: float, **margins: float) -> Any:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if matplotlib.get_backend(auto_select=False) is None and "matplotlib.pyplot" not in sys.modules:
        # Nobody chose a backend (a notebook has, through MPLBACKEND): choose Agg, or reading rcParams (boxplot does)
        # imports pyplot to resolve it, 0.1 s
        matplotlib.use("Agg")

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(**margins)
    return fig


def _palette(result: Any) -> Any:
    timeline = result.palette_timeline
    fig = _figure(9, 4, left=0.085, bottom=0.15, right=0.98, top=0.905)
    ax = fig.subplots()
    if timeline:
        gids = [g["group"] for g in timeline[0]["groups"]][:MAX_GROUP_ROWS]
        img = np.zeros((len(gids) + 1, len(timeline), 3))
        for j, snap in enumerate(timeline):
            img[0, j] = np.array(snap["cove"]["rgb"]) / 255.0
            by_id = {g["group"]: g for g in snap["groups"]}
            for i, gid in enumerate(gids):
                img[i + 1, j] = np.array(by_id[gid]["rgb"]) / 255.0 if gid in by_id else 0.0
        minutes = [snap["t"] / 60.0 for snap in timeline]
        ax.imshow(img, aspect="auto", interpolation="nearest",
                  extent=(0, minutes[-1] + 1, len(gids) + 0.5, -0.5))
        ax.set_yticks(range(len(gids) + 1), ["cove"] + [f"group {g}" for g in gids], fontsize=7)
    ax.set_xlabel("minute")
    ax.set_title(f"Cove palette over time ({result.cohort.scenario})", y=TITLE_Y)
    return fig


def _synchrony(result: Any) -> Any:
    c = result.cohort
    fig = _figure(15, 4.5, left=0.035, bottom=0.13, right=0.99, top=0.92, wspace=0.26)
    ax0, ax1, ax2 = fig.subplots(1, 3)
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
    im0 = ax0.imshow(truth, cmap="cividis", vmin=0.0, vmax=0.8)
    ax0.set_title(f"true coupling (first {len(ids)} wearers)", fontsize=9, y=TITLE_Y)
    fig.colorbar(im0, ax=ax0, ticks=COUPLING_TICKS)
    im = ax1.imshow(mat, cmap="cividis", vmin=-0.05, vmax=0.2)
    ax1.set_title("estimated synchrony above surrogate", fontsize=9, y=TITLE_Y)
    fig.colorbar(im, ax=ax1, ticks=(0.0, 0.1, 0.2))
    for ax in (ax0, ax1):  # a wearer index every 10 (every 5 on y was twice the labels, each ~2 ms to draw)
        ax.set_xticks(range(0, len(ids), 10))
        ax.set_yticks(range(0, len(ids), 10))
    ax2.scatter(xs, ys, s=12, alpha=0.7)
    ax2.set_xticks(COUPLING_TICKS)  # the levels the cohort draws couplings from
    ax2.locator_params(axis="y", nbins=5)
    ax2.axhline(0, color="grey", lw=0.8)
    rho = result.report["validity"]["spearman_coupling_vs_synchrony"]
    ax2.set_xlabel("true coupling")
    ax2.set_ylabel("estimated synchrony above surrogate (r)")
    ax2.set_title(f"all pairs: Spearman {rho}", fontsize=9, y=TITLE_Y)
    return fig


def _trajectories(result: Any) -> Any:
    c = result.cohort
    fig = _figure(9, 6, left=0.08, bottom=0.095, right=0.98, top=0.965, hspace=0.12)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    minutes = np.arange(c.seconds) / 60.0
    ax1.plot(minutes, c.drive, color="black", lw=1.5, label="scenario drive")
    for name, start, _end in scenarios.phase_spans(c.scenario, c.seconds):
        ax1.axvline(start / 60.0, color="grey", lw=0.5)
        ax1.text(start / 60.0, 0.95, name, fontsize=7, va="top")
    ax1.plot(minutes, _column_mean(c.arousal), label="true arousal (mean)")
    ax1.plot(minutes, _column_mean(result.ours), label="estimated arousal (mean)")
    ax1.set_ylim(0, 1)
    ax1.legend(fontsize=7)
    plotted = 0
    for dev in c.dev_ids[:MAX_TRAJECTORIES]:
        traj = result.scores["wearers"].get(str(int(dev)), {}).get("trajectory", [])
        if traj:
            t, lv = zip(*traj, strict=True)
            ax2.plot(np.array(t) / 60.0, lv, lw=1, label=f"wearer {dev}")
            plotted += 1
    # No legend: twelve "wearer N" entries cost more to draw than the rest of the panel, and with ten colours in the
    # cycle they could not tell wearers 1 and 11 apart anyway
    ax2.set_ylabel(f"Compassion Metric level\n(first {plotted} wearers)")
    ax2.set_xlabel("minute")
    ax2.set_ylim(0, 1)
    if not plotted:
        ax2.text(0.5, 0.5, "session too short for a trajectory", transform=ax2.transAxes, ha="center")
    return fig


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


def _groups(result: Any) -> Any:
    c = result.cohort
    fig = _figure(11, 4, left=0.065, bottom=0.125, right=0.985, top=0.91, wspace=0.16)
    ax1, ax2 = fig.subplots(1, 2)
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
    ax1.boxplot(data, tick_labels=labels)
    ax1.set_ylabel("arousal MAE vs truth")
    ax1.tick_params(axis="x", labelsize=7)
    groups = result.report["fairness"]["groups"]
    names = list(groups)
    width = 0.38
    x = np.arange(len(names))
    ax2.bar(x - width / 2, [groups[n]["exclusion_rate"] or 0 for n in names], width, label="excluded seconds")
    ax2.bar(x + width / 2, [groups[n]["hr_invalid_rate"] or 0 for n in names], width, label="HR invalid")
    ax2.set_xticks(x, names)
    ax2.set_ylabel("rate")
    ax2.locator_params(axis="y", nbins=4)
    ax2.legend(fontsize=7)
    ax2.set_title("quality gate per group", fontsize=9, y=TITLE_Y)
    return fig
