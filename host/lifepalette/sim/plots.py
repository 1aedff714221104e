"""PNG plots of a simulated session (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lifepalette.sim import scenarios
from lifepalette.sim.cohort import DEMOGRAPHIC_GROUPS

MAX_GROUP_ROWS = 24
MAX_MATRIX_WEARERS = 40
MAX_TRAJECTORIES = 12


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_plots(result: Any, out: Path) -> list[str]:
    plt = _pyplot()
    names = []
    for name, fn in (("palette.png", _palette), ("synchrony.png", _synchrony), ("trajectories.png", _trajectories),
                     ("groups.png", _groups)):
        fig = fn(plt, result)
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names


def _palette(plt: Any, result: Any) -> Any:
    timeline = result.palette_timeline
    fig, ax = plt.subplots(figsize=(9, 4))
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
    ax.set_title(f"Cove palette over time ({result.cohort.scenario})")
    fig.tight_layout()
    return fig


def _synchrony(plt: Any, result: Any) -> Any:
    c = result.cohort
    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(15, 4.5))
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
    ax0.set_title(f"true coupling (first {len(ids)} wearers)", fontsize=9)
    fig.colorbar(im0, ax=ax0)
    im = ax1.imshow(mat, cmap="cividis", vmin=-0.05, vmax=0.2)
    ax1.set_title("estimated synchrony above surrogate", fontsize=9)
    fig.colorbar(im, ax=ax1)
    ax2.scatter(xs, ys, s=12, alpha=0.7)
    ax2.axhline(0, color="grey", lw=0.8)
    rho = result.report["validity"]["spearman_coupling_vs_synchrony"]
    ax2.set_xlabel("true coupling")
    ax2.set_ylabel("estimated synchrony above surrogate (r)")
    ax2.set_title(f"all pairs: Spearman {rho}", fontsize=9)
    fig.tight_layout()
    return fig


def _trajectories(plt: Any, result: Any) -> Any:
    c = result.cohort
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    minutes = np.arange(c.seconds) / 60.0
    ax1.plot(minutes, c.drive, color="black", lw=1.5, label="scenario drive")
    for name, start, _end in scenarios.phase_spans(c.scenario, c.seconds):
        ax1.axvline(start / 60.0, color="grey", lw=0.5)
        ax1.text(start / 60.0, 0.95, name, fontsize=7, va="top")
    ax1.plot(minutes, np.nanmean(c.arousal, axis=0), label="true arousal (mean)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ax1.plot(minutes, np.nanmean(result.ours, axis=0), label="estimated arousal (mean)")
    ax1.set_ylim(0, 1)
    ax1.legend(fontsize=7)
    plotted = 0
    for dev in c.dev_ids[:MAX_TRAJECTORIES]:
        traj = result.scores["wearers"].get(str(int(dev)), {}).get("trajectory", [])
        if traj:
            t, lv = zip(*traj, strict=True)
            ax2.plot(np.array(t) / 60.0, lv, lw=1, label=f"wearer {dev}")
            plotted += 1
    ax2.set_ylabel("Compassion Metric level")
    ax2.set_xlabel("minute")
    ax2.set_ylim(0, 1)
    if plotted:
        ax2.legend(fontsize=6, ncol=4)
    else:
        ax2.text(0.5, 0.5, "session too short for a trajectory", transform=ax2.transAxes, ha="center")
    fig.tight_layout()
    return fig


def _groups(plt: Any, result: Any) -> Any:
    c = result.cohort
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        err_ours = np.nanmean(np.abs(result.ours - c.arousal), axis=1)
        err_naive = np.nanmean(np.where(np.isfinite(result.ours), np.abs(result.naive - c.arousal), np.nan), axis=1)
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
    ax2.legend(fontsize=7)
    ax2.set_title("quality gate per group", fontsize=9)
    fig.tight_layout()
    return fig
