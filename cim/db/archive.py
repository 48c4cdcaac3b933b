"""Queries of the archive: objects, versions, the ledger, its audit-log queue and daily roots.

Locks: one transaction-scoped advisory lock per model key serialises writes of a model (concurrent puts
get distinct, ordered versions); one global advisory lock orders ledger appends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, text, update

from cim.db.models import (
    ArchiveLedger,
    ArchiveLedgerQueue,
    ArchiveLedgerRoot,
    ArchiveObject,
    AuditLog,
    ModelVersion,
    Review,
)

_LEDGER_LOCK = 0x43494D4C  # "CIML"
_MODEL_LOCK_SEED = 0x43494D41  # "CIMA"


def lock_model(conn: Connection, model_key: str) -> None:
    """Block until this transaction holds the write lock of ``model_key``."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, :seed))"), {"k": model_key, "seed": _MODEL_LOCK_SEED}
    )


def try_lock_model(conn: Connection, model_key: str) -> bool:
    """Take the write lock of ``model_key`` for this transaction if no put holds it; whether it was taken."""
    taken = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:k, :seed))"),
        {"k": model_key, "seed": _MODEL_LOCK_SEED},
    ).scalar_one()
    return bool(taken)


def lock_ledger(conn: Connection) -> None:
    """Block until this transaction holds the ledger's append lock."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LEDGER_LOCK})


def object_by_key(conn: Connection, model_key: str) -> Row[Any] | None:
    """The ``archive_object`` row of a model key, if any."""
    return conn.execute(select(*ArchiveObject.__table__.c).where(ArchiveObject.model_key == model_key)).first()


def insert_object(
    conn: Connection, *, model_key: str, object_id: str, object_path: str, building_id: int | None
) -> None:
    """Create the object row of a new model (head version 0)."""
    conn.execute(
        insert(ArchiveObject).values(
            model_key=model_key, object_id=object_id, object_path=object_path, building_id=building_id
        )
    )


def set_object_head(
    conn: Connection, model_key: str, head: int, *, deleted: bool = False, building_id: int | None = None
) -> None:
    """Move the object's head version (and mark it deleted for a tombstone)."""
    values: dict[str, Any] = {"head_version": head, "deleted_at": func.now() if deleted else None}
    if building_id is not None:
        values["building_id"] = building_id
    conn.execute(update(ArchiveObject).where(ArchiveObject.model_key == model_key).values(**values))


def list_objects(conn: Connection) -> list[Row[Any]]:
    """Every archived model, by key."""
    return list(conn.execute(select(*ArchiveObject.__table__.c).order_by(ArchiveObject.model_key)))


def objects_of_building(conn: Connection, building_id: int) -> list[Row[Any]]:
    """The archived models linked to a building (by the object or by one of its versions)."""
    linked = select(ModelVersion.model_key).where(ModelVersion.building_id == building_id)
    stmt = (
        select(*ArchiveObject.__table__.c)
        .where((ArchiveObject.building_id == building_id) | ArchiveObject.model_key.in_(linked))
        .order_by(ArchiveObject.model_key)
    )
    return list(conn.execute(stmt))


def insert_version(conn: Connection, **values: Any) -> int:
    """Insert one ``model_version`` row; returns its id."""
    return int(conn.execute(insert(ModelVersion).values(**values).returning(ModelVersion.id)).scalar_one())


def versions_of(conn: Connection, model_key: str | None = None) -> list[Row[Any]]:
    """Version rows (of one model, or all), by key and version."""
    stmt = select(*ModelVersion.__table__.c).order_by(ModelVersion.model_key, ModelVersion.version)
    if model_key is not None:
        stmt = stmt.where(ModelVersion.model_key == model_key)
    return list(conn.execute(stmt))


def version_row(conn: Connection, model_key: str, version: int) -> Row[Any] | None:
    """One version row."""
    stmt = select(*ModelVersion.__table__.c).where(ModelVersion.model_key == model_key, ModelVersion.version == version)
    return conn.execute(stmt).first()


def review_row(conn: Connection, review_id: int) -> Row[Any] | None:
    """The review with this id (file name, status, building), if any."""
    return conn.execute(select(*Review.__table__.c).where(Review.id == review_id)).first()


def last_ledger_entry(conn: Connection) -> Row[Any] | None:
    """The newest ledger entry (seq, entry_hash)."""
    stmt = select(*ArchiveLedger.__table__.c).order_by(ArchiveLedger.seq.desc()).limit(1)
    return conn.execute(stmt).first()


def insert_ledger_entry(conn: Connection, **values: Any) -> None:
    """Append one ledger row (the caller holds :func:`lock_ledger`)."""
    conn.execute(insert(ArchiveLedger).values(**values))


def ledger_entries(conn: Connection, *, model_key: str | None = None, kind: str | None = None) -> Iterator[Row[Any]]:
    """Ledger rows in chain order (optionally of one model or one kind), streamed."""
    stmt = select(*ArchiveLedger.__table__.c).order_by(ArchiveLedger.seq)
    if model_key is not None:
        stmt = stmt.where(ArchiveLedger.model_key == model_key)
    if kind is not None:
        stmt = stmt.where(ArchiveLedger.kind == kind)
    yield from conn.execution_options(yield_per=5000).execute(stmt)


def ledger_hashes_of_day(conn: Connection, day: dt.date) -> list[Row[Any]]:
    """(seq, entry_hash) of one UTC day's entries, in order."""
    stmt = (
        select(ArchiveLedger.seq, ArchiveLedger.entry_hash).where(ArchiveLedger.day == day).order_by(ArchiveLedger.seq)
    )
    return list(conn.execute(stmt))


def queued_audit_rows(conn: Connection, limit: int = 10_000) -> list[Row[Any]]:
    """Queued audit-log rows (joined to their audit row, which may be gone), oldest id first."""
    stmt = (
        select(ArchiveLedgerQueue.audit_id, *[c.label(f"a_{c.name}") for c in AuditLog.__table__.c])
        .select_from(ArchiveLedgerQueue.__table__.outerjoin(AuditLog, AuditLog.id == ArchiveLedgerQueue.audit_id))
        .order_by(ArchiveLedgerQueue.audit_id)
        .limit(limit)
        .with_for_update(of=ArchiveLedgerQueue, skip_locked=True)
    )
    return list(conn.execute(stmt))


def dequeue_audit(conn: Connection, audit_ids: Sequence[int]) -> None:
    """Remove chained rows from the queue."""
    if audit_ids:
        conn.execute(delete(ArchiveLedgerQueue).where(ArchiveLedgerQueue.audit_id.in_(list(audit_ids))))


def audit_rows(conn: Connection) -> dict[int, Row[Any]]:
    """Every audit-log row by id (for verification against the ledger)."""
    return {r.id: r for r in conn.execute(select(*AuditLog.__table__.c))}


def queued_audit_ids(conn: Connection) -> set[int]:
    """Ids waiting in the queue."""
    return {int(r[0]) for r in conn.execute(select(ArchiveLedgerQueue.audit_id))}


def stored_root(conn: Connection, day: dt.date) -> Row[Any] | None:
    """The kept Merkle root of a day, if any."""
    return conn.execute(select(*ArchiveLedgerRoot.__table__.c).where(ArchiveLedgerRoot.day == day)).first()


def stored_roots(conn: Connection) -> list[Row[Any]]:
    """Every kept daily root, oldest first."""
    return list(conn.execute(select(*ArchiveLedgerRoot.__table__.c).order_by(ArchiveLedgerRoot.day)))


def insert_root(conn: Connection, **values: Any) -> None:
    """Keep a day's root (once; a concurrent insert of the same day is ignored)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    conn.execute(pg_insert(ArchiveLedgerRoot).values(**values).on_conflict_do_nothing(index_elements=["day"]))
