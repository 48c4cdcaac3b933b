"""Tampering by hand is detected and named: a flipped byte, swapped files, edited or deleted rows (psql)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cim.archive import Archive, day_root, verify
from cim.db.api_keys import insert_audit
from cim.db.engine import connect_url
from cim.errors import ArchiveError
from cim.settings import Settings
from tests.conftest import IFC_DIR

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"
B = IFC_DIR / "slab-openings.ifc"


def psql(db_url: str, sql: str) -> None:
    """Run SQL with the psql client, as an operator with database access would."""
    subprocess.run(["psql", connect_url(db_url), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True)


def kinds(archive: Archive, **kw: object) -> dict[str, list[str]]:
    report = verify(archive, **kw)  # type: ignore[arg-type]
    found: dict[str, list[str]] = {}
    for p in report.problems:
        found.setdefault(p["kind"], []).append(p["detail"])
    return found


@pytest.fixture
def two_versions(local_archive: Archive) -> Archive:
    local_archive.put(A, model_key="house", author="alice", note="v1")
    local_archive.put(B, model_key="house", author="bob", note="v2")
    assert verify(local_archive).problems == []
    return local_archive


def _forge_first_entry_and_rechain(engine: Engine, db_url: str, start: str | None = None, **forged: str) -> None:
    """Rewrite the payload of ledger entry #1 with ``forged`` and re-chain every entry from ``start`` (entry
    #1's own ``prev_hash`` when None), with the append-only trigger switched off as a forger would (psql)."""
    import datetime as dt

    from cim.archive.ledger import chain_hash, entry_body

    psql(db_url, "ALTER TABLE archive_ledger DISABLE TRIGGER archive_ledger_append_only")
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT * FROM archive_ledger ORDER BY seq")).all()
        prev = rows[0].prev_hash if start is None else start
        for r in rows:
            payload = dict(r.payload, **forged) if r.seq == 1 else r.payload
            at = r.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
            fields = {name: getattr(r, name) for name in ("seq", "kind", "model_key", "version", "audit_id")}
            new_hash = chain_hash(prev, entry_body(**fields, at=at, payload=payload))
            conn.execute(
                text(
                    "UPDATE archive_ledger SET payload = CAST(:p AS jsonb), prev_hash = :v, entry_hash = :h "
                    "WHERE seq = :s"
                ),
                {"p": json.dumps(payload), "v": prev, "h": new_hash, "s": r.seq},
            )
            prev = new_hash
    psql(db_url, "ALTER TABLE archive_ledger ENABLE TRIGGER archive_ledger_append_only")


def _content(archive: Archive, version: int) -> Path:
    info = archive.version("house", version)
    return archive.storage.path_of(info.storage_key)  # type: ignore[attr-defined,no-any-return]


def test_a_flipped_byte_is_named_as_a_damaged_file(two_versions: Archive):
    path = _content(two_versions, 1)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01
    path.write_bytes(bytes(data))
    found = kinds(two_versions)
    assert list(found) == ["file-damaged"]
    assert "v1/content/IfcOpenHouse_IFC4.ifc is damaged" in found["file-damaged"][0]


def test_swapped_files_are_named_as_swapped(two_versions: Archive):
    p1, p2 = _content(two_versions, 1), _content(two_versions, 2)
    b1, b2 = p1.read_bytes(), p2.read_bytes()
    p1.write_bytes(b2)
    p2.write_bytes(b1)
    found = kinds(two_versions)
    assert set(found) == {"file-swapped"} and len(found["file-swapped"]) == 2
    assert any("v1/content/IfcOpenHouse_IFC4.ifc holds the bytes of" in d for d in found["file-swapped"])


def test_an_updated_metadata_row_is_named(two_versions: Archive, db_url: str):
    psql(
        db_url, "UPDATE model_version SET author = 'mallory', message = 'forged' WHERE model_key='house' AND version=1"
    )
    found = kinds(two_versions)
    assert list(found) == ["metadata-row-edited"]
    assert "model_version house v1 was edited: author, note" in found["metadata-row-edited"][0]


def test_an_updated_digest_in_a_metadata_row_is_named(two_versions: Archive, db_url: str):
    psql(db_url, "UPDATE model_version SET sm3 = repeat('0', 64) WHERE model_key='house' AND version=2")
    found = kinds(two_versions, model_key="house")
    assert "metadata-row-edited" in found
    assert any("model_version house v2 was edited: sm3" in d for d in found["metadata-row-edited"])


def test_a_deleted_metadata_row_is_named(two_versions: Archive, db_url: str):
    psql(db_url, "DELETE FROM model_version WHERE model_key='house' AND version=1")
    found = kinds(two_versions)
    assert "metadata-row-deleted" in found
    assert "model_version house v1 was deleted" in found["metadata-row-deleted"][0]


def test_the_ledger_refuses_updates_and_an_edited_ledger_row_is_named(two_versions: Archive, db_url: str):
    with pytest.raises(subprocess.CalledProcessError):
        psql(db_url, "UPDATE archive_ledger SET payload = '{}' WHERE seq = 1")
    psql(
        db_url,
        "ALTER TABLE archive_ledger DISABLE TRIGGER archive_ledger_append_only; "
        "UPDATE archive_ledger SET payload = jsonb_set(payload, '{author}', '\"mallory\"') WHERE seq = 1; "
        "ALTER TABLE archive_ledger ENABLE TRIGGER archive_ledger_append_only;",
    )
    found = kinds(two_versions)
    assert "ledger-entry-edited" in found
    assert found["ledger-entry-edited"][0].startswith("ledger entry #1 (put) was edited")


def test_a_deleted_ledger_row_is_named(two_versions: Archive, db_url: str):
    psql(
        db_url,
        "ALTER TABLE archive_ledger DISABLE TRIGGER archive_ledger_append_only; "
        "DELETE FROM archive_ledger WHERE seq = 1; "
        "ALTER TABLE archive_ledger ENABLE TRIGGER archive_ledger_append_only;",
    )
    found = kinds(two_versions)
    assert "ledger-entry-missing" in found
    assert "ledger entries #1 to #1 are missing" in found["ledger-entry-missing"][0]


def test_audit_log_rows_are_chained_and_their_edits_and_deletions_named(
    two_versions: Archive, engine: Engine, db_url: str
):
    with engine.begin() as conn:
        first = insert_audit(conn, action="keys.create", outcome="ok", actor="cli", target="api_key:1")
        second = insert_audit(conn, action="keys.revoke", outcome="ok", actor="cli", target="api_key:1")
    report = verify(two_versions)
    assert report.problems == [] and report.audit_chained == 2
    with engine.connect() as conn:
        chained = conn.execute(text("SELECT audit_id FROM archive_ledger WHERE kind='audit' ORDER BY seq")).scalars()
        assert list(chained) == [first, second]
    psql(db_url, f"UPDATE audit_log SET outcome = 'denied' WHERE id = {first}")
    psql(db_url, f"DELETE FROM audit_log WHERE id = {second}")
    found = kinds(two_versions)
    assert found["audit-row-edited"] == [f"audit_log row {first} was edited: outcome differ from ledger entry #3"]
    assert found["audit-row-deleted"][0].startswith(f"audit_log row {second} was deleted")


def test_an_audit_row_slipped_in_without_the_trigger_is_named(two_versions: Archive, db_url: str):
    psql(
        db_url,
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_to_ledger; "
        "INSERT INTO audit_log (action, outcome, actor) VALUES ('forged', 'ok', 'mallory'); "
        "ALTER TABLE audit_log ENABLE TRIGGER audit_log_to_ledger;",
    )
    found = kinds(two_versions)
    assert list(found) == ["audit-row-unchained"]


def test_a_rewritten_and_rechained_ledger_no_longer_matches_a_root_copied_elsewhere(
    two_versions: Archive, engine: Engine, db_url: str
):
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    copied = day_root(engine, today).root  # e.g. published or sent to the city archive
    _forge_first_entry_and_rechain(engine, db_url, author="mallory")
    assert day_root(engine, today).root != copied
    # the forged author no longer matches the metadata row either
    assert "metadata-row-edited" in kinds(two_versions)


def test_verify_of_one_model_checks_only_its_files(two_versions: Archive, settings: Settings):
    two_versions.put(A, model_key="other")
    report = verify(two_versions, "other")
    assert report.ok and report.objects == 1 and report.files == 1


def test_a_past_days_root_is_kept_and_a_rechained_rewrite_of_that_day_is_named(
    local_archive: Archive, engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
):
    import datetime as dt

    from cim.archive import ledger

    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    monkeypatch.setattr(ledger, "_now", lambda: yesterday)
    local_archive.put(A, model_key="house", author="alice")
    monkeypatch.undo()
    kept = day_root(engine, yesterday.date())
    assert kept.kept and kept.kept_root == kept.root and kept.entries == 1
    local_archive.put(B, model_key="house", author="bob")  # today: the chain goes on
    assert verify(local_archive).problems == []
    # rewrite yesterday's entry and re-chain everything after it: only the kept root still tells
    _forge_first_entry_and_rechain(engine, db_url, start="0" * 64, note="forged")
    found = kinds(local_archive)
    assert found["ledger-day-changed"] == [
        f"the entries of {yesterday.date().isoformat()} no longer give the kept Merkle root {kept.root}"
    ]


def test_get_refuses_a_damaged_file_and_leaves_nothing_behind(two_versions: Archive, tmp_path: Path):
    path = _content(two_versions, 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x80
    path.write_bytes(bytes(data))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    out = downloads / "house.ifc"
    with pytest.raises(ArchiveError, match=r"v1 is damaged \(sha256 mismatch\)"):
        two_versions.get_to("house", 1, out)
    assert list(downloads.iterdir()) == []
    two_versions.get_to("house", 2, out)  # the other version is untouched
    assert out.read_bytes() == B.read_bytes()
