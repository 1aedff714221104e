"""Consent ledger: consent epochs per badge, derived from the consent byte every frame carries (sans-I/O).

An epoch is a run of live frames under one consent state (revision, physio bit, colour bit); the paused bit is
temporary and does not open an epoch. Revocation = physiology consent withdrawn: the physio bit cleared, or the
revision jumping past a revision the hub never saw (it cannot prove consent was not withdrawn in between). A
revocation erases the revoked epoch's physiology. Backlog frames are old: they never move the ledger and keep
their physiology only if the epoch they belong to is known, granted physiology and was neither revoked nor erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from lifepalette.hub.store import Epoch
from protocol.records import CONSENT_COLOUR, CONSENT_PAUSED, CONSENT_PHYSIO, consent_revision

revision_of = consent_revision  # the consent byte's revision nibble, as protocol/records.py defines it


def physio_allowed(consent: int) -> bool:
    """What the frame itself allows: physiology shared and capture not paused."""
    return bool(consent & CONSENT_PHYSIO) and not consent & CONSENT_PAUSED


def colour_allowed(consent: int) -> bool:
    return bool(consent & CONSENT_COLOUR)


@dataclass
class Observation:
    """What one live frame did to the ledger: its epoch, epochs to persist, and an epoch to erase (if any)."""

    epoch: Epoch
    changed: list[Epoch]
    revoked: Epoch | None = None


class ConsentLedger:
    def __init__(self, epochs: list[Epoch] = ()):  # type: ignore[assignment]
        self.by_dev: dict[int, list[Epoch]] = {}
        for e in sorted(epochs, key=lambda e: (e.dev_id, e.epoch)):
            self.by_dev.setdefault(e.dev_id, []).append(e)

    def current(self, dev_id: int) -> Epoch | None:
        epochs = self.by_dev.get(dev_id)
        return epochs[-1] if epochs else None

    def observe_live(self, dev_id: int, ctr: int, consent: int, now: float) -> Observation:
        rev, physio, colour = revision_of(consent), bool(consent & CONSENT_PHYSIO), colour_allowed(consent)
        cur = self.current(dev_id)
        if cur is not None and (cur.revision, cur.physio, cur.colour) == (rev, physio, colour):
            cur.last_ctr = max(cur.last_ctr, ctr)
            return Observation(cur, [cur])
        changed: list[Epoch] = []
        revoked = None
        if cur is not None:
            cur.closed_at = now
            skipped = cur.revision != rev and (rev - cur.revision) & 0x0F != 1
            if cur.physio and not cur.erased and (not physio or skipped):
                cur.revoked_at_ctr = ctr
                cur.erased = True
                revoked = cur
            changed.append(cur)
        new = Epoch(dev_id, (cur.epoch + 1) if cur else 1, rev, physio, colour, ctr, ctr, now)
        self.by_dev.setdefault(dev_id, []).append(new)
        changed.append(new)
        return Observation(new, changed, revoked)

    def backlog_epoch(self, dev_id: int, consent: int) -> tuple[int, bool]:
        """(epoch number to file a backlog frame under, whether its physiology may be stored)."""
        rev = revision_of(consent)
        for e in reversed(self.by_dev.get(dev_id, ())):
            if e.revision == rev and e.physio == bool(consent & CONSENT_PHYSIO) and e.colour == colour_allowed(consent):
                return e.epoch, e.physio and not e.erased and physio_allowed(consent)
        cur = self.current(dev_id)
        # An unknown consent state: file it under the current epoch (so erasing that epoch erases it too) and keep
        # no physiology, because the hub cannot tell whether consent was withdrawn since.
        return (cur.epoch if cur else 0), False

    def mark_erased(self, dev_id: int, epoch: int | None) -> list[Epoch]:
        marked = [e for e in self.by_dev.get(dev_id, ()) if epoch is None or e.epoch == epoch]
        for e in marked:
            e.erased = True
        return marked

    def as_list(self) -> list[dict]:
        return [e.as_dict() for epochs in self.by_dev.values() for e in epochs]
