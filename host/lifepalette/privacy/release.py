"""The release mechanism of the public view: a sans-I/O state machine that turns true aggregates into public numbers.

Feed `PublicRelease.step` the true aggregates of one second (`CoveTruth`: who contributes, the cove's and groups' means)
and it returns the `PublicView` the public may see at that second. Design (argued with measurements in
docs/PRIVACY.md):

- Stable cohort, coarse cadence: new numbers are released at epochs a random 0.5-1.5 x `cadence_s` apart; between
  epochs the view holds the last release, so a membership change shows only at the next epoch, at a random delay.
- Calibrated noise: each number is the true mean (clipped to [0, 1]) plus Gaussian noise of `noise` times one
  person's sensitivity of that mean (1/n for a mean over n people, 8/g for a group's mean over its pairs); the noise
  is fresh per epoch, so differencing two epochs around a change leaves sqrt(2) x noise per person.
- Accounting: every epoch is charged to a `SessionBudget` (OpenDP, zCDP); past the budget the numbers stay where they
  were (no new information) for the rest of the session.
- k >= K_MIN stays as an extra rule: below it the view is withheld at once (the count only).

The colour of the public palette is made from the released numbers and the colours wearers share on purpose (public
by consent), so it is post-processing and costs no budget. Randomness comes from one seeded generator: a `seed` makes
every release reproducible (tests, `lifepalette score --timeline --seed N`); the hub seeds from os.urandom.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lifepalette.boundary import GROUP_LABELS, GroupAggregate, Palette, PublicView
from lifepalette.privacy import K_MIN
from lifepalette.privacy.budget import SessionBudget, release_rho

CADENCE_S = 10.0  # mean seconds between releases of new numbers
NOISE = 0.35  # noise multiplier: Gaussian standard deviation in units of one person's sensitivity of each number
SMOOTHING = 0.3  # the wall shows an exponential average of the released cove numbers (post-processing, no cost)
RELEASES_PER_SESSION = 720  # two hours at the mean cadence before the numbers freeze
FIELDS_PER_PERSON = 2  # one person is in the cove's arousal and synchrony (and their group's two, when it is public)
BUDGET_RHO = RELEASES_PER_SESSION * release_rho(NOISE, FIELDS_PER_PERSON)

# (released arousal, released synchrony, shared (hue, chroma) colours) -> the public palette
Colour = Callable[[float | None, float | None, Sequence[tuple[int, int]]], Palette]


@dataclass(frozen=True)
class GroupTruth:
    """One dialogue group's true aggregates (never public): over `contributors` people, pairs among `members`."""

    contributors: int
    arousal: float | None
    synchrony: float | None
    members: int


@dataclass(frozen=True)
class CoveTruth:
    """The true aggregates of one second. `members` (who contributes) is public under the threat model; the means
    are what the mechanism protects. `averaged` is how many people the arousal mean is over and
    `synchrony_sensitivity` how far one person can move the synchrony mean."""

    members: frozenset[int]
    arousal: float | None = None
    synchrony: float | None = None
    averaged: int = 0
    synchrony_sensitivity: float = 1.0
    groups: tuple[GroupTruth, ...] = ()
    colours: tuple[tuple[int, int], ...] = ()


def pair_mean_sensitivity(members: int) -> float:
    """How far one person can move a group's mean over its pairs: a pair's excess synchrony lies in [-2, 2] (a width
    of 4) and one person is in g - 1 of the g (g - 1) / 2 pairs, so 8/g; the released value is clipped to [0, 1], so
    at most 1."""
    return min(1.0, 8.0 / max(members, 2))


def _clip(value: float | None) -> float | None:
    return None if value is None else min(1.0, max(0.0, float(value)))


class PublicRelease:
    """One session's release state: the cohort's last released numbers, the next epoch, the budget."""

    def __init__(self, colour: Colour, *, seed: int | None = None, cadence_s: float = CADENCE_S,
                 noise: float = NOISE, budget_rho: float | None = None):
        self.seed = int.from_bytes(os.urandom(16), "big") if seed is None else int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.colour = colour
        self.cadence_s = float(cadence_s)
        self.noise = float(noise)
        self.budget = SessionBudget(
            RELEASES_PER_SESSION * release_rho(noise, FIELDS_PER_PERSON) if budget_rho is None else budget_rho, noise)
        self.epochs = 0
        self._smoothed: dict[str, float] = {}
        self._view: PublicView | None = None
        self._next = 0.0
        self._last_t: float | None = None

    @property
    def last_t(self) -> float | None:
        return self._last_t

    def step(self, now: float, truth: CoveTruth, *, session: bool = False,
             swatches: tuple[str, ...] = ()) -> PublicView:
        """The public view at time `now` (seconds). Calls within one epoch return the same numbers."""
        self._last_t = now
        count = len(truth.members)
        if count < K_MIN:
            self._view = None  # the cohort dissolves; the next one starts with a fresh release
            self._smoothed = {}
            return PublicView.withheld(count, session=session, updated=now)
        if self._view is None or now >= self._next:
            self._view = self._release(truth, swatches)
            self._next = now + self.cadence_s * self.rng.uniform(0.5, 1.5)
        view = copy.copy(self._view)  # a held view: same checked numbers, this second's time (no re-validation)
        object.__setattr__(view, "session", bool(session))
        object.__setattr__(view, "updated", round(float(now), 3))
        return view

    def _noisy(self, value: float | None, sensitivity: float) -> float | None:
        clipped = _clip(value)
        if clipped is None:
            return None
        return _clip(clipped + self.rng.normal(0.0, self.noise * sensitivity))

    def _smooth(self, name: str, value: float | None) -> float | None:
        """An exponential average over this cohort's releases: only released numbers go in, so it costs nothing."""
        if value is None:
            self._smoothed.pop(name, None)
            return None
        last = self._smoothed.get(name)
        self._smoothed[name] = value if last is None else last + SMOOTHING * (value - last)
        return self._smoothed[name]

    def _release(self, truth: CoveTruth, swatches: tuple[str, ...]) -> PublicView:
        count = len(truth.members)
        groups = [g for g in truth.groups if g.contributors >= K_MIN]
        fields = ((truth.arousal is not None) + (truth.synchrony is not None)
                  + any(g.arousal is not None for g in groups) + any(g.synchrony is not None for g in groups))
        previous = self._view
        if not self.budget.charge(fields):
            # past the budget: nothing new about anyone; the numbers stay as they were
            if previous is not None:
                return replace(previous, contributors=count, swatches=swatches)
            return PublicView(count, swatches=swatches)
        self.epochs += 1
        arousal = self._smooth("arousal", self._noisy(truth.arousal, 1.0 / (truth.averaged or count)))
        synchrony = self._smooth("synchrony", self._noisy(truth.synchrony, truth.synchrony_sensitivity))
        released = tuple(
            GroupAggregate(GROUP_LABELS[i % len(GROUP_LABELS)], g.contributors,
                           self._noisy(g.arousal, 1.0 / g.contributors),
                           self._noisy(g.synchrony, pair_mean_sensitivity(g.members)))
            for i, g in enumerate(groups))
        released = tuple(replace(g, rgb=self.colour(g.arousal, g.synchrony, ()).rgb) for g in released)
        palette = self.colour(arousal, synchrony, truth.colours)
        return PublicView(count, palette=palette,
                          arousal=arousal if arousal is not None else palette.brightness,
                          synchrony=synchrony if synchrony is not None else palette.convergence,
                          groups=released, swatches=swatches)

    def status(self) -> dict:
        """The budget spent this session and how the mechanism is set (for the operator and the audit)."""
        return {**self.budget.as_dict(), "epochs": self.epochs, "cadence_s": self.cadence_s}
