"""The differencing attack on the public view, on simulated coves (used by tests/test_privacy_attack.py).

A cove of n wearers is simulated and scored by the real scorer (per-wearer arousal each second, as the hub has it).
For each change a wearer joins or leaves (pause, revoke and leave look the same from outside: the contributor set
shrinks) at a known second; everyone else stays. The observer records every public field each second and knows the
change's time, direction and the public counts. The attacker differences window averages before and after the change
(several window lengths, every field that carries arousal: cove arousal, palette brightness, palette RGB value, the
group's arousal), optionally shrinks towards the public mean, and is scored by its best variant (chosen with the
truth: stronger than any real attacker). The bar is the error of guessing the mean of the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lifepalette.boundary import GroupAggregate, Palette, PublicView
from lifepalette.hub import views as hub_views
from lifepalette.hub.consent import CONSENT_PHYSIO
from lifepalette.privacy import K_MIN
from lifepalette.scoring import palette as pal
from lifepalette.scoring.batch import score_features
from lifepalette.sim.cohort import make_cohort
from lifepalette.sim.features import feature_records

SECONDS = 1200
CHANGES_AT = tuple(range(420, 1081, 60))  # after the scorer's 180 s baseline; a 400 s window fits before each
WINDOWS_S = (1, 3, 10, 30, 60, 120, 240, 400)
SHRINK = (1.0, 0.5, 0.25)


@dataclass
class Cove:
    """Per-wearer arousal each second (W, T) as the scorer has it, and the dialogue groups as row indices."""

    arousal: np.ndarray
    groups: list[list[int]]


def simulate_cove(wearers: int, scenario: str, seed: int, seconds: int = SECONDS) -> Cove:
    cohort = make_cohort(wearers, seconds, scenario, seed)
    out = np.full((wearers, seconds), np.nan)

    def each(scorer, t: int) -> None:
        out[:, t] = scorer.arousal_ema[:wearers]

    score_features(cohort.dev_ids, feature_records(cohort), cohort.dialogue, on_second=each)
    row = {int(d): i for i, d in enumerate(cohort.dev_ids)}
    return Cove(np.clip(np.nan_to_num(out, nan=0.15), 0.0, 1.0),
                [[row[d] for d in members] for members in cohort.dialogue.values()])


def truth_at(cove: Cove, members: list[int], t: int):
    from lifepalette.privacy.release import CoveTruth, GroupTruth

    values = cove.arousal[members, t]
    groups = []
    for g in cove.groups:
        inside = [m for m in g if m in members]
        if len(inside) >= K_MIN:
            groups.append(GroupTruth(len(inside), float(cove.arousal[inside, t].mean()), None, len(g)))
    return CoveTruth(frozenset(members), float(values.mean()), None, len(members), 1.0, tuple(groups))


def exact_view(truth) -> PublicView:
    """The release before the mechanism: exact means over the contributors now (as hub/views.py did)."""
    if len(truth.members) < K_MIN:
        return PublicView.withheld(len(truth.members))
    palette = hub_views.released_colour(truth.arousal, truth.synchrony, ())
    groups = tuple(GroupAggregate("ABCDEFGH"[i], g.contributors, g.arousal, g.synchrony, palette.rgb)
                   for i, g in enumerate(truth.groups))
    return PublicView(len(truth.members), palette=palette, arousal=truth.arousal, groups=groups)


@dataclass
class Change:
    cove: Cove
    members_before: list[int]
    members_after: list[int]
    who: int
    at: int


def changes(cove: Cove, size: int, rng: np.random.Generator) -> list[Change]:
    """A cove of `size` contributors with one extra wearer: at each time someone leaves (size + 1 -> size) or the
    extra one joins (size -> size + 1)."""
    everyone = list(range(cove.arousal.shape[0]))
    out = []
    for i, at in enumerate(CHANGES_AT):
        who = int(rng.integers(0, len(everyone)))
        stay = [m for m in everyone if m != who]
        if i % 2:
            out.append(Change(cove, everyone, stay, who, at))
        else:
            out.append(Change(cove, stay, everyone, who, at))
    return out


def _span(change: Change) -> tuple[int, int]:
    """The seconds the attacker's widest windows can reach around the change."""
    return max(0, change.at - max(WINDOWS_S) - 30), min(change.cove.arousal.shape[1], change.at + max(WINDOWS_S) + 90)


def scores_doc(cove: Cove, members: list[int], t: int) -> dict:
    """The part of the scorer's document the hub's public view reads, for the cove's contributors at second t."""
    arousal = float(cove.arousal[members, t].mean())
    colour = pal.group_colour(arousal, float("nan"), np.array([]), np.array([]), 1.0)
    return {"public": {"k": K_MIN, "cove": {"contributors": len(members), "arousal": arousal,
                                           "excess_synchrony": None, "palette": colour}, "groups": []},
            "groups": [], "palette": {**colour, "groups": []}, "t": t}


def seam_stream(change: Change, salt: bytes) -> list[PublicView | None]:
    """The public view each second as the hub's one seam (hub/views.py release_public_view) releases it."""
    first, end = _span(change)
    views: list[PublicView | None] = [None] * first
    for t in range(first, end):
        members = change.members_before if t < change.at else change.members_after
        badges = [hub_views.BadgeState(m + 1, float(t), "udp", consent=CONSENT_PHYSIO) for m in members]
        views.append(hub_views.release_public_view(scores_doc(change.cove, members, t), badges, session=False,
                                                   now=float(t), salt=salt))
    return views + [None] * (change.cove.arousal.shape[1] - end)


def stream(change: Change, release) -> list[PublicView | None]:
    """The public view each second around the change from a PublicRelease, or exact means (release None)."""
    first, end = _span(change)
    views: list[PublicView | None] = [None] * first
    for t in range(first, end):
        members = change.members_before if t < change.at else change.members_after
        truth = truth_at(change.cove, members, t)
        views.append(exact_view(truth) if release is None else release.step(float(t), truth))
    return views + [None] * (change.cove.arousal.shape[1] - end)


def _fields(view: PublicView | None, group: int | None) -> tuple[float, float, float, float, float, float]:
    """arousal as each public field shows it, and the cove's and the group's public counts."""
    nan = float("nan")
    if view is None:
        return (nan, nan, nan, nan, nan, nan)
    palette = view.palette or Palette((0, 0, 0))
    brightness = (palette.brightness - 0.25) / 0.75 if palette.brightness is not None else nan
    value = (max(palette.rgb) / 255 - 0.25) / 0.75 if view.palette is not None else nan
    g = view.groups[group] if group is not None and group < len(view.groups) else None
    return (view.arousal if view.arousal is not None else nan, brightness, value,
            g.arousal if g is not None and g.arousal is not None else nan, view.contributors,
            g.contributors if g is not None else 0)


def _mean(rows: np.ndarray) -> np.ndarray:
    finite = np.isfinite(rows)
    return np.where(finite.any(axis=0), np.nansum(rows, axis=0) / np.maximum(finite.sum(axis=0), 1), np.nan)


def _line_at(rows: np.ndarray, first: int, at: int) -> np.ndarray:
    """Each column's least-squares line over seconds first.., read at second `at` (counts: their mean)."""
    t = np.arange(first, first + len(rows), dtype=float)
    out = _mean(rows)
    for col in range(4):
        ok = np.isfinite(rows[:, col])
        if ok.sum() >= 3:
            slope, intercept = np.polyfit(t[ok], rows[ok, col], 1)
            out[col] = slope * at + intercept
    return out


def attack(change: Change, views: list[PublicView | None]) -> tuple[float, dict[tuple, float]]:
    """(guess error, the error of every attacker variant) for one change."""
    cove, at, who = change.cove, change.at, change.who
    leaving = len(change.members_after) < len(change.members_before)
    present = change.members_before if leaving else change.members_after
    t_truth = at - 1 if leaving else at
    target = cove.arousal[who, t_truth]
    others = [m for m in present if m != who]
    guess_error = abs(target - cove.arousal[others, t_truth].mean())
    public_groups = [g for g in cove.groups if sum(m in present for m in g) >= K_MIN]
    group_index = next((i for i, g in enumerate(public_groups) if who in g), None)
    table = np.array([_fields(v, group_index) for v in views], dtype=float)
    new_count = len(change.members_after)
    seen = np.flatnonzero((np.arange(len(views)) >= at) & (table[:, 4] == new_count))
    if not seen.size:
        return guess_error, {}
    effect = int(seen[0])  # the change shows when the public count changes
    errors = {}
    for w, trend in [(w, False) for w in WINDOWS_S] + [(w, True) for w in WINDOWS_S if w >= 30]:
        before, after = table[max(0, at - w):at], table[effect:effect + w]
        if not len(before) or not len(after):
            continue
        if trend:  # a line through each side, both read at the change: drift does not pass for a jump
            b, a = _line_at(before, at - len(before), at), _line_at(after, effect, at)
        else:
            b, a = _mean(before), _mean(after)
        estimates = {}
        for name, col, count_col in (("arousal", 0, 4), ("brightness", 1, 4), ("rgb", 2, 4), ("group", 3, 5)):
            nb, na = b[count_col], a[count_col]
            if not (np.isfinite(b[col]) and np.isfinite(a[col]) and nb >= K_MIN and na >= K_MIN):
                continue
            x = nb * b[col] - na * a[col] if leaving else na * a[col] - nb * b[col]
            estimates[name] = x
        if estimates:
            estimates["all"] = float(np.mean(list(estimates.values())))
        public_mean = (b[0] + a[0]) / 2
        for name, x in estimates.items():
            for lam in SHRINK:
                guess = public_mean + lam * (min(1.0, max(0.0, x)) - public_mean)
                errors[(w, trend, name, lam)] = abs(guess - target)
    return guess_error, errors


def best_attack(results: list[tuple[float, dict]]) -> tuple[float, float]:
    """(best attacker variant's MAE, guess MAE) over changes' attack results."""
    results = [(g, e) for g, e in results if e]
    guesses, per_change = [g for g, _e in results], [e for _g, e in results]
    variants = {key for errors in per_change for key in errors}
    # a variant a change cannot use (no public group there) falls back to the same window on the cove's arousal
    mae = {key: np.mean([e.get(key, e.get((key[0], key[1], "arousal", key[3]), np.nan)) for e in per_change])
           for key in variants}
    best = min(mae.values()) if mae else float("nan")
    return float(best), float(np.mean(guesses))


def attack_size(coves: list[Cove], size: int, seed: int, noisy: bool) -> tuple[float, float]:
    """(best attacker MAE, guess MAE) over every cove and change for coves of `size`, against a seeded
    PublicRelease (noisy) or exact means."""
    from lifepalette.privacy.release import PublicRelease

    rng, seeds = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    results = []
    for cove in coves:
        for change in changes(cove, size, rng):
            release = PublicRelease(hub_views.released_colour, seed=int(seeds.integers(2**32))) if noisy else None
            results.append(attack(change, stream(change, release)))
    return best_attack(results)


def tracking(cove: Cove, seed: int, start: int = 0) -> tuple[float, float]:
    """(Spearman, mean absolute error) of the released cove arousal against the true cove mean, second by second,
    everyone present, from `start` on."""
    from lifepalette.privacy.release import PublicRelease
    from scipy.stats import spearmanr

    everyone = list(range(cove.arousal.shape[0]))
    release = PublicRelease(hub_views.released_colour, seed=seed)
    released, true = [], []
    for t in range(start, cove.arousal.shape[1]):
        truth = truth_at(cove, everyone, t)
        released.append(release.step(float(t), truth).arousal)
        true.append(truth.arousal)
    released_a, true_a = np.array(released, dtype=float), np.array(true, dtype=float)
    return float(spearmanr(released_a, true_a)[0]), float(np.mean(np.abs(released_a - true_a)))
