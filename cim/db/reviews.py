"""Queries on the ``review`` table: a review's lifecycle from upload to the reviewer's decision."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from cim.db.models import Review

PUBLIC_COLUMNS = (
    "id",
    "file_name",
    "sha256",
    "status",
    "passed",
    "verdict",
    "parcel_id",
    "parcel_ref",
    "size_bytes",
    "inputs",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "decision",
    "decision_comment",
    "decided_at",
    "approval",
    "dataset_id",
    "building_id",
)


def insert_review(
    conn: Connection,
    *,
    file_name: str,
    sha256: str,
    size_bytes: int,
    parcel_id: int | None,
    parcel_ref: str | None,
    inputs: dict[str, Any],
    api_key_id: int | None,
) -> int:
    """A new ``queued`` review; returns its id."""
    stmt = (
        insert(Review)
        .values(
            file_name=file_name,
            sha256=sha256,
            size_bytes=size_bytes,
            status="queued",
            parcel_id=parcel_id,
            parcel_ref=parcel_ref,
            inputs=inputs,
            api_key_id=api_key_id,
        )
        .returning(Review.id)
    )
    return int(conn.execute(stmt).scalar_one())


def set_review(conn: Connection, review_id: int, **values: Any) -> None:
    """Update columns of a review (``started_at``/``finished_at`` = ``"now"`` use the database clock)."""
    for key in ("started_at", "finished_at", "decided_at"):
        if values.get(key) == "now":
            values[key] = func.now()
    conn.execute(update(Review).where(Review.id == review_id).values(**values))


def review_by_id(
    conn: Connection, review_id: int, *, with_report: bool = True, lock: bool = False
) -> dict[str, Any] | None:
    """One review as a dict (``report`` included unless ``with_report`` is false), or ``None``."""
    columns: list[Any] = [Review.__table__.c[c] for c in PUBLIC_COLUMNS] + [Review.path]
    if with_report:
        columns.append(Review.report)
    stmt = select(*columns).where(Review.id == review_id)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for key in ("created_at", "started_at", "finished_at", "decided_at"):
        if out.get(key) is not None:
            out[key] = out[key].isoformat()
    return out
