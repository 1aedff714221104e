"""The per-person privacy budget of one session, kept by OpenDP (zero-concentrated DP, a privacy filter).

Every release of public numbers is one Gaussian measurement; OpenDP composes them (fully adaptive composition) under a
filter that refuses the release that would pass the session's budget. The noise itself is drawn by the release
mechanism from its seeded generator (tests and `score --seed` must be reproducible), with exactly the scale of the
measurement charged here: OpenDP is the accountant, not a second noise source.

Units: one person is distance 1. A release that puts one person into `fields` numbers, each noised with a Gaussian of
`noise` times that number's per-person sensitivity, is the vector Gaussian with L2 sensitivity sqrt(fields) and scale
`noise`, which is charged as scale noise / sqrt(fields) at distance 1: rho = fields / (2 noise^2).
"""

from __future__ import annotations

import math
from functools import cache

# OpenDP's modules, not `opendp.prelude`: the prelude also imports scikit-learn (2-3 s at every CLI start)
import opendp.combinators as c
import opendp.domains as domains
import opendp.measurements as m
import opendp.measures as measures
import opendp.metrics as metrics
from opendp.mod import Measurement, OpenDPException, enable_features

enable_features("contrib")

DELTA = 1e-6  # the delta at which the spent budget is also stated as (epsilon, delta)
_PLACEHOLDER = [0.0]  # the filter evaluates each measurement on this; its output is discarded


def _gaussian(scale: float) -> Measurement:
    """The Gaussian mechanism on vectors of numbers, distances in L2 (one person = 1)."""
    domain, metric = domains.vector_domain(domains.atom_domain(T=float, nan=False)), metrics.l2_distance(T=float)
    return m.make_gaussian(domain, metric, scale=scale)


@cache
def _measurement(noise: float, fields: int) -> Measurement:
    return _gaussian(noise / math.sqrt(fields))


def release_rho(noise: float, fields: int) -> float:
    """What OpenDP charges one person for one release of `fields` numbers at noise multiplier `noise`."""
    return float(_measurement(noise, fields).map(1.0))


def epsilon_of(rho: float, delta: float = DELTA) -> float:
    """rho-zCDP stated as epsilon at `delta` (OpenDP's conversion)."""
    if rho <= 0:
        return 0.0
    gaussian = _gaussian(math.sqrt(1.0 / (2.0 * rho)))
    return float(c.make_fix_delta(c.make_zCDP_to_approxDP(gaussian), delta).map(1.0)[0])


class SessionBudget:
    """rho (zCDP) per person for one session; `charge` refuses a release that would pass it."""

    def __init__(self, rho: float, noise: float):
        if not (rho > 0 and noise > 0):
            raise ValueError("a budget and a noise multiplier must be positive")
        self.limit = float(rho)
        self.noise = float(noise)
        domain, metric = domains.vector_domain(domains.atom_domain(T=float, nan=False)), metrics.l2_distance(T=float)
        odometer = c.make_fully_adaptive_composition(domain, metric, measures.zero_concentrated_divergence())
        self._filter = c.make_privacy_filter(odometer, d_in=1.0, d_out=self.limit)(_PLACEHOLDER)
        self.releases = 0
        self.refused = 0
        self._spent = 0.0

    def charge(self, fields: int) -> bool:
        """Spend one release that puts one person into `fields` numbers; False (nothing spent) past the budget."""
        if fields <= 0:
            return True
        try:
            self._filter(_measurement(self.noise, fields))
        except OpenDPException:
            self.refused += 1
            return False
        self.releases += 1
        self._spent = float(self._filter.privacy_loss(1.0))  # OpenDP's total (it answers no more once refused)
        return True

    def carry_on(self, spent: float, releases: int, refused: int) -> None:
        """Go on from what a session already spent before the hub restarted: one measurement of exactly that rho
        charged to the fresh filter, so a restart never hands the public a fresh budget."""
        if spent > 0:
            try:
                self._filter(_gaussian(math.sqrt(1.0 / (2.0 * spent))))
                self._spent = float(self._filter.privacy_loss(1.0))
            except OpenDPException:  # what was spent leaves no room: the session's budget stays exhausted
                self._spent, refused = self.limit, max(refused, 1)
        self.releases, self.refused = int(releases), int(refused)

    @property
    def spent(self) -> float:
        return self._spent

    @property
    def exhausted(self) -> bool:
        return self.refused > 0

    def as_dict(self) -> dict:
        spent = self.spent
        return {"unit": "rho (zCDP) per person per session", "spent": round(spent, 4), "limit": self.limit,
                "fraction": round(spent / self.limit, 4), "releases": self.releases, "refused": self.refused,
                "exhausted": self.exhausted, "noise_multiplier": self.noise,
                "epsilon": round(epsilon_of(spent), 3), "delta": DELTA}
