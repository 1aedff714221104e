"""The release mechanism of the public view: a sans-I/O state machine that turns true aggregates into public numbers.

Feed `PublicRelease.step` the true aggregates of one second (`CoveTruth`: who contributes, the cove's and groups' means)
and it returns the `PublicView` the public may see at that second. Design (argued with measurements in
docs/PRIVACY.md):

- Stable cohort, coarse cadence: new numbers are released at epochs 0.5-1.5 x `cadence_s` apart (a seeded jittered
  grid over time, and at once when a cohort forms); between epochs the view holds the last release, so a membership
  change shows only at the next epoch, at a random delay.
- One view per whole second: the first request in a second fixes that second's view, every later request in it gets
  the same (repeated requests add nothing), and a release draws its noise from a counter-based generator keyed by
  (seed, the second it is made in, how often the clock went back) rather than from a stream. So the released
  timeline is a function of the seed and of what the mechanism saw at each second, not of how often anyone asked:
  a replay of the stored frames with the same seed releases the same numbers again; no two releases share a key.
- Calibrated noise: each number is the true mean (clipped to [0, 1]) plus Gaussian noise of `noise` times one
  person's sensitivity of that mean (1/n for a mean over n people, 8/g for a group's mean over its pairs); the noise
  is fresh per epoch, so differencing two epochs around a change leaves sqrt(2) x noise per person.
- Accounting: every epoch is charged to a `SessionBudget` (OpenDP, zCDP); past the budget the numbers stay where they
  were (no new information) for the rest of the session.
- k >= K_MIN stays as an extra rule: below it the view is withheld at once (the count only).

The colour of the public palette is made from the released numbers and the colours wearers share on purpose (public
by consent), so it is post-processing and costs no budget. All randomness is keyed by the seed: a `seed` makes every
release reproducible (tests, `lifepalette score --timeline --seed N`, `lifepalette replay --seed N`); the hub seeds
from os.urandom.
"""

from __future__ import annotations

import copy
import hashlib
import math
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


def _uniform(seed: int, what: bytes, index: int) -> float:
    """A uniform number in [0, 1) that depends only on (seed, what, index): counter-based, no stream to step."""
    digest = hashlib.blake2b(b"%d\0%s\0%d" % (seed, what, index), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


class PublicRelease:
    """One session's release state: the cohort's last released numbers, the next epoch, the budget."""

    def __init__(self, colour: Colour, *, seed: int | None = None, cadence_s: float = CADENCE_S,
                 noise: float = NOISE, budget_rho: float | None = None):
        self.seed = int.from_bytes(os.urandom(16), "big") if seed is None else int(seed)
        self.colour = colour
        self.cadence_s = float(cadence_s)
        self.noise = float(noise)
        self.budget = SessionBudget(
            RELEASES_PER_SESSION * release_rho(noise, FIELDS_PER_PERSON) if budget_rho is None else budget_rho, noise)
        self.epochs = 0
        self._phase = _uniform(self.seed, b"phase", 0)
        self._smoothed: dict[str, float] = {}
        self._view: PublicView | None = None  # the cohort's last release (None: no cohort)
        self._released_at: int | None = None  # the second of the last release (a second releases at most once)
        self._next = 0.0  # when the next epoch starts (seconds)
        self._second: int | None = None
        self._shown: PublicView | None = None  # the view of `_second`, what every request in that second gets
        self._generation = 0  # how often the clock went back (part of the noise key)
        self._last_t: float | None = None

    def carry_on(self, status: dict) -> None:
        """The session's budget and epoch count as `status()` stated them before the hub restarted."""
        self.budget.carry_on(float(status.get("spent", 0.0)), int(status.get("releases", 0)),
                             int(status.get("refused", 0)))
        self.epochs = int(status.get("epochs", 0))

    @property
    def last_t(self) -> float | None:
        return self._last_t

    def step(self, now: float, truth: CoveTruth, *, session: bool = False,
             swatches: tuple[str, ...] = ()) -> PublicView:
        """The public view at time `now` (seconds). The first call in a whole second fixes that second's view; later
        calls in it return the same numbers, and calls within one epoch return the same numbers."""
        self._last_t = now
        second = math.floor(now)
        if self._second is not None and second < self._second:
            # the clock went back: a new generation of noise keys, so no second's noise is ever drawn twice
            self._generation += 1
            self._released_at, self._next = None, -math.inf
        if second != self._second or self._shown is None:
            self._second, self._shown = second, self._view_of(second, truth, swatches)
        view = copy.copy(self._shown)  # the same checked numbers, this call's time (no re-validation)
        object.__setattr__(view, "session", bool(session))
        object.__setattr__(view, "updated", round(float(now), 3))
        return view

    def _view_of(self, second: int, truth: CoveTruth, swatches: tuple[str, ...]) -> PublicView:
        count = len(truth.members)
        if count < K_MIN:
            self._view = None  # the cohort dissolves; the next one starts with a fresh release
            self._smoothed = {}
            return PublicView.withheld(count)
        forming = self._view is None
        if (forming or second >= self._next) and (self._released_at is None or second > self._released_at):
            # the release's noise is keyed by (seed, its second): the same second and seed, the same noise
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, second % 2 ** 64, self._generation]))
            self._view = self._release(truth, swatches, rng)
            self._released_at = second
            # a new cohort's first release is followed by the first epoch at least half a cadence later
            self._next = self._epoch_from(second + (0.5 * self.cadence_s if forming else 1e-9))
        if self._view is None:  # (not reached: a forming cohort always gets a release)
            return PublicView.withheld(count)
        return self._view

    def _epoch(self, k: int) -> float:
        """The start of epoch k: a grid of `cadence_s` with a seeded phase, each start moved by a seeded +-1/4
        cadence, so consecutive starts are 0.5-1.5 cadences apart and no fixed clock marks them."""
        return (k + self._phase + 0.5 * (_uniform(self.seed, b"epoch", k) - 0.5)) * self.cadence_s

    def _epoch_from(self, t: float) -> float:
        """The first epoch start at or after `t` (starts increase with k and lie within 1/4 cadence of the grid)."""
        k = math.floor(t / self.cadence_s - self._phase) - 1
        while self._epoch(k) < t:
            k += 1
        return self._epoch(k)

    def _noisy(self, value: float | None, sensitivity: float, rng: np.random.Generator) -> float | None:
        clipped = _clip(value)
        if clipped is None:
            return None
        return _clip(clipped + rng.normal(0.0, self.noise * sensitivity))

    def _smooth(self, name: str, value: float | None) -> float | None:
        """An exponential average over this cohort's releases: only released numbers go in, so it costs nothing."""
        if value is None:
            self._smoothed.pop(name, None)
            return None
        last = self._smoothed.get(name)
        self._smoothed[name] = value if last is None else last + SMOOTHING * (value - last)
        return self._smoothed[name]

    def _release(self, truth: CoveTruth, swatches: tuple[str, ...], rng: np.random.Generator) -> PublicView:
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
        arousal = self._smooth("arousal", self._noisy(truth.arousal, 1.0 / (truth.averaged or count), rng))
        synchrony = self._smooth("synchrony", self._noisy(truth.synchrony, truth.synchrony_sensitivity, rng))
        released = tuple(
            GroupAggregate(GROUP_LABELS[i % len(GROUP_LABELS)], g.contributors,
                           self._noisy(g.arousal, 1.0 / g.contributors, rng),
                           self._noisy(g.synchrony, pair_mean_sensitivity(g.members), rng))
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
