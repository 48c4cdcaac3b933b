"""Queries on the ``job`` table: asynchronous API jobs (ingest an upload, rebuild tiles) and their state."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from cim.db.models import Job


def insert_job(conn: Connection, kind: str, params: dict[str, Any], api_key_id: int | None) -> uuid.UUID:
    """A new ``queued`` job; returns its id."""
    stmt = insert(Job).values(id=uuid.uuid4(), kind=kind, params=params, api_key_id=api_key_id).returning(Job.id)
    return uuid.UUID(str(conn.execute(stmt).scalar_one()))


def mark_running(conn: Connection, job_id: uuid.UUID) -> None:
    """The job has started."""
    conn.execute(update(Job).where(Job.id == job_id).values(status="running", started_at=func.now()))


def mark_finished(
    conn: Connection, job_id: uuid.UUID, *, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    """The job succeeded (with ``result``) or failed (with ``error``)."""
    conn.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status="failed" if error else "succeeded", result=result, error=error, finished_at=func.now())
    )


def job_by_id(conn: Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
    """One job as a JSON-ready dict, or ``None``."""
    row = conn.execute(select(*Job.__table__.c).where(Job.id == job_id)).mappings().first()
    if row is None:
        return None
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "status": row["status"],
        "params": row["params"],
        "result": row["result"],
        "error": row["error"],
        "created_at": row["created_at"].isoformat(),
        "started_at": row["started_at"].isoformat() if row["started_at"] else None,
        "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
    }


def upload_paths_in_use(conn: Connection) -> set[str]:
    """Stored upload paths that something still needs: the source of a dataset, or of a queued or running job."""
    from cim.db.models import Dataset

    datasets = conn.execute(select(Dataset.path).where(Dataset.path.is_not(None))).scalars()
    jobs = conn.execute(
        select(Job.params["path"].astext).where(Job.status.in_(("queued", "running")), Job.params.has_key("path"))
    ).scalars()
    return {str(p) for p in (*datasets, *jobs) if p}
