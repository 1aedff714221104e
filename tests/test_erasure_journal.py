"""The erasure journal: append-only, 0600, one fsynced JSON line per intent; a line torn by a crash is skipped (its
erasure was never attempted), anything else unreadable stops the open rather than guess."""

from __future__ import annotations

import stat

import pytest
from lifepalette.hub.erasure_journal import ErasureIntent, ErasureJournal, JournalError, journal_path


def test_intents_round_trip_and_the_file_is_private(tmp_path):
    journal = ErasureJournal(tmp_path / "hub.db")
    first = ErasureIntent.new(7, 2, "revocation", clock_synced=False)
    second = ErasureIntent.new(8, None, "operator", epochs_through=3, clock_synced=None)
    journal.append(first)
    journal.append(second)
    assert journal.read() == [first, second]
    assert stat.S_IMODE(journal_path(tmp_path / "hub.db").stat().st_mode) == 0o600
    assert first.id != second.id and len(first.id) == 32


def test_a_torn_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path):
    journal = ErasureJournal(tmp_path / "hub.db")
    kept = ErasureIntent.new(7, 1, "operator")
    journal.append(kept)
    torn = ErasureIntent.new(7, 2, "operator").to_line()
    with open(journal.path, "a") as fh:
        fh.write(torn[: len(torn) // 2])  # power lost mid-write
    assert journal.read() == [kept]
    after = ErasureIntent.new(9, None, "operator", epochs_through=1)
    journal.append(after)
    assert journal.read() == [kept, after]


def test_a_damaged_complete_line_is_refused(tmp_path):
    journal = ErasureJournal(tmp_path / "hub.db")
    journal.append(ErasureIntent.new(7, 1, "operator"))
    with open(journal.path, "a") as fh:
        fh.write('{"v": 1, "id": "x", "dev_id": "seven"}\n')
    with pytest.raises(JournalError, match="line 2 is unreadable"):
        journal.read()
    assert JournalError.exit_code == 2
