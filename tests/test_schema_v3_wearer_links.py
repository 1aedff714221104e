"""Schema version 3 adds wearer_links (the generation of each badge's private link, issue 19): a version-1 and a
version-2 database both reach it with their rows intact, and `lifepalette me-link` works on the migrated file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lifepalette import cli
from lifepalette.hub import schema
from lifepalette.hub.sitekey import load_site_key
from lifepalette.hub.store import Store

FIXTURE = Path(__file__).parent / "fixtures" / "hub_schema_v1.sql"


def build(path: Path, version: int) -> None:
    """A database as release `version` left it: the verbatim v1 schema, then the released steps up to `version`."""
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(FIXTURE.read_text())
    con.execute("INSERT INTO devices (dev_id, enrolled_at, label) VALUES (7, 1.0, NULL), (8, 2.0, 'spare')")
    con.execute("INSERT INTO erasures (at, dev_id, epoch, what, rows, reason) VALUES (3.0, 7, 1, 'physiology', 5, "
                "'revocation')")
    for step in range(1, version):
        schema.MIGRATIONS[step](con)
    if version > 1:
        con.execute(f"PRAGMA user_version = {version}")
    con.close()
    load_site_key(path, create=True)


@pytest.mark.parametrize("version", [1, 2])
def test_v1_and_v2_migrate_to_v3_with_an_empty_wearer_links_table(tmp_path, version):
    db = tmp_path / "hub.db"
    build(db, version)
    assert schema.read_version(db) == version
    store = Store(db)
    try:
        assert schema.read_version(db) == schema.CURRENT == 3
        con = store.con
        assert [r[1] for r in con.execute("PRAGMA table_info(wearer_links)")] == ["dev_id", "generation", "issued_at"]
        assert con.execute("SELECT COUNT(*) FROM wearer_links").fetchone()[0] == 0
        assert con.execute("SELECT dev_id, label FROM devices ORDER BY dev_id").fetchall() == [(7, None), (8, "spare")]
        assert con.execute("SELECT reason, rows FROM erasures").fetchall() == [("revocation", 5)]
        assert store.wearer_generation(7) is None  # no link was ever issued: no token opens anything
        assert store.issue_wearer_link(7) == 1 and store.issue_wearer_link(7) == 1
        assert store.issue_wearer_link(7, rotate=True) == 2 and store.wearer_generation(8) is None
    finally:
        store.close()
    backup = schema.backup_path(db, version)
    assert backup.is_file() and schema.read_version(backup) == version  # the copy before the migration


def test_me_link_on_a_version_2_database_migrates_it_and_prints_a_link(tmp_path, capsys):
    db = tmp_path / "hub.db"
    build(db, 2)
    assert cli.main(["me-link", "--db", str(db), "--dev", "8", "--base", "http://cove.test"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://cove.test/me#") and len(url.split("#")[1]) == 26
    assert schema.read_version(db) == 3
