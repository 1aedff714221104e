"""The public view second by second over recorded feature records, exactly as the hub would release it.

Used by `lifepalette score --timeline` (and for `public` in `lifepalette score`): the records are fed to a CoveScorer
in time order, and at each second the badges as the hub would have heard them and the scores go through the same
`release_public_view` and one `PublicRelease` (seeded by --seed, else from os.urandom), as in a hub session.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from lifepalette.boundary import PublicView
from lifepalette.hub.consent import CONSENT_COLOUR, CONSENT_PHYSIO
from lifepalette.hub.views import BadgeState, public_release, release_public_view

CONSENTED = CONSENT_PHYSIO  # a record without 'consent' counts as consented (as the scorer takes it)


def _hear(badges: dict[int, BadgeState], dev: int, t: int, fields: dict) -> None:
    badge = badges.get(dev)
    if badge is None:
        badge = badges[dev] = BadgeState(dev, float(t), "file")
    consent = fields.get("consent")
    badge.last_seen, badge.consent = float(t), CONSENTED if consent is None else int(consent)
    badge.frames += 1
    shares = badge.consent & CONSENT_COLOUR and fields.get("hue") is not None
    badge.hue = int(fields["hue"]) if shares else None
    badge.chroma = int(fields["chroma"]) if shares and fields.get("chroma") is not None else None


def released_views(scorer, records: list[tuple[int, int, dict]], seed: int | None) -> Iterator[tuple[int,
                                                                                                     PublicView]]:
    """(second, public view) for every second from the first record to the last; `scorer` is fed on the way."""
    release = public_release(seed)
    # the swatch order's salt: secret in the hub, fixed by the seed here so that a seed fixes the whole view
    salt = os.urandom(16) if seed is None else hashlib.sha256(b"lifepalette swatches\0%d" % seed).digest()[:16]
    by_second: dict[int, list[tuple[int, dict]]] = {}
    for dev, t, fields in records:
        by_second.setdefault(t, []).append((dev, fields))
    badges: dict[int, BadgeState] = {}
    for t in range(min(by_second), max(by_second) + 1):
        for dev, fields in by_second.get(t, ()):
            scorer.add(dev, t, fields)
            _hear(badges, dev, t, fields)
        scorer.flush()
        scores = scorer.compute(detail=False)
        yield t, release_public_view(scores, badges.values(), session=False, now=float(t), salt=salt,
                                     release=release)
