"""The public view second by second over recorded feature records, exactly as the hub would release it.

`score_table` is what `lifepalette score` prints and what notebooks call (`lifepalette.score_table`): the feature
table goes through the scorer (lifepalette.scoring.table), and at each second the badges as the hub would have heard
them and the scores go through the same `release_public_view` and one `PublicRelease` (seeded by `seed`, else from
os.urandom), as in a hub session. `released_views` does the same record by record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator

import pyarrow as pa

from lifepalette.boundary import PublicView
from lifepalette.feature_table import DEVICE, checked_table
from lifepalette.hub.consent import CONSENT_COLOUR, CONSENT_PHYSIO
from lifepalette.hub.views import BadgeState, public_release, release_public_view
from lifepalette.scoring import table as scored
from lifepalette.scoring.scorer import Groups

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


class TimelineRelease:
    """The release side of a timeline: the badges as the hub would have heard the records, one `PublicRelease`
    (seeded by `seed`, else from os.urandom) and the swatch order's salt, as in one hub session."""

    def __init__(self, seed: int | None) -> None:
        self.release = public_release(seed)
        # the swatch order's salt: secret in the hub, fixed by the seed here so that a seed fixes the whole view
        self.salt = os.urandom(16) if seed is None else hashlib.sha256(b"lifepalette swatches\0%d" % seed).digest()[:16]
        self.badges: dict[int, BadgeState] = {}

    def hear(self, dev: int, t: int, fields: dict) -> None:
        _hear(self.badges, dev, t, fields)

    def view(self, scores, t: int) -> PublicView:
        """The public view released at second `t` from the scorer's document of that second."""
        return release_public_view(scores, self.badges.values(), session=False, now=float(t), salt=self.salt,
                                   release=self.release)


def released_views(scorer, records: list[tuple[int, int, dict]], seed: int | None) -> Iterator[tuple[int,
                                                                                                     PublicView]]:
    """(second, public view) for every second from the first record to the last; `scorer` is fed on the way."""
    timeline = TimelineRelease(seed)
    by_second: dict[int, list[tuple[int, dict]]] = {}
    for dev, t, fields in records:
        by_second.setdefault(t, []).append((dev, fields))
    for t in range(min(by_second), max(by_second) + 1):
        for dev, fields in by_second.get(t, ()):
            scorer.add(dev, t, fields)
            timeline.hear(dev, t, fields)
        scorer.flush()
        yield t, timeline.view(scorer.compute(detail=False), t)


def score_table(table: pa.Table, groups: Groups = None, *, seed: int | None = None, source: str = "table",
                on_view: Callable[[int, PublicView], None] | None = None) -> dict:
    """Score a feature table (`read_features(path)`) as `lifepalette score` does: the same dict, whose `public` is
    the view the release mechanism released at the last second (noise, cadence, budget), not the exact numbers.

    `groups`: lists of device ids in dialogue together, or a groups.json document ({"groups": [...]}). `seed` fixes
    the release mechanism's randomness (`score --seed`; default from os.urandom, as the hub). `on_view(t, view)`
    gets every second's released view (`score --timeline`)."""
    table = checked_table(table, source)
    timeline = TimelineRelease(seed)
    devices = table.column(DEVICE).to_pylist()
    heard = {name: table.column(name).to_pylist() for name in ("consent", "hue", "chroma")
             if name in table.column_names}  # what the hub's record of a badge reads (None: the record has none)
    last: list[PublicView] = []

    def on_second(t: int, scorer, rows) -> None:
        for k in rows.tolist():
            timeline.hear(devices[k], t, {name: column[k] for name, column in heard.items() if column[k] is not None})
        view = timeline.view(scorer.compute(detail=False), t)
        last[:] = [view]
        if on_view is not None:
            on_view(t, view)

    out = scored.score_table(table, groups, source=source, on_second=on_second)
    records = out.pop("records")
    out["public"] = last[0].to_json() if last else None
    out["records"] = records
    return out
