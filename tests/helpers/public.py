"""Public views for in-test hubs: what a hub with a given number of contributors would release."""

from __future__ import annotations

from lifepalette.boundary import GroupAggregate, Palette, PublicView
from lifepalette.hub.views import shuffled_swatches
from lifepalette.privacy import K_MIN


def public_view(contributors: int, rgb=(230, 159, 0), brightness: float = 0.7, convergence: float = 0.4, *,
                groups: tuple[GroupAggregate, ...] = (), swatches: list[tuple[int, int]] | None = None,
                session: bool = False) -> PublicView:
    """Aggregates when `contributors` >= K_MIN, else only the count (as hub/views.py releases them)."""
    if contributors < K_MIN:
        return PublicView.withheld(contributors, session=session, updated=1.0)
    return PublicView(contributors, palette=Palette(rgb, brightness, convergence), arousal=brightness,
                      synchrony=convergence, groups=groups,
                      swatches=shuffled_swatches(swatches or [], b"salt"), session=session, updated=1.0)
