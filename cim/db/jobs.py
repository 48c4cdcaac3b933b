"""Queries on the ``job`` table: asynchronous API jobs (ingest an upload, rebuild tiles) and their state."""

from __future__ import annotations

import re
import uuid
from pathlib import PurePosixPath
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


SERVER_ONLY_PARAMS = frozenset({"path", "runner"})
"""Job parameters that describe the server (upload location, worker pid and host), never shown to callers."""
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`,;:()<>\[\]{}]+/)+[^\s/'\"`,;:()<>\[\]{}]*")


def user_facing(value: Any, params: dict[str, Any]) -> Any:
    """``value`` (an error text, a report) with server paths replaced: the upload by the name it was
    uploaded as, any other absolute path by ``<server path>``. Applied to every string inside lists/dicts."""
    if isinstance(value, dict):
        return {k: user_facing(v, params) for k, v in value.items() if k not in SERVER_ONLY_PARAMS}
    if isinstance(value, list):
        return [user_facing(v, params) for v in value]
    if not isinstance(value, str):
        return value
    upload = params.get("path")
    shown = str(params.get("file_name") or (PurePosixPath(upload).name if upload else "the upload"))
    text = value
    if upload:
        folder = str(PurePosixPath(upload).parent)
        text = text.replace(str(upload), shown)
        text = re.sub(re.escape(folder) + r"/[^\s'\"]*", lambda _m: shown, text)
    return _ABSOLUTE_PATH.sub("<server path>", text)


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a caller may see: without the server-side upload path and the runner identity."""
    return {k: v for k, v in params.items() if k not in SERVER_ONLY_PARAMS}


def mark_finished(
    conn: Connection, job_id: uuid.UUID, *, result: dict[str, Any] | None = None, error: str | None = None
) -> None:
    """The job succeeded (with ``result``) or failed (with ``error``).

    Both are stored as the caller will see them: the upload named by its uploaded name, no server path.
    """
    params = conn.execute(select(Job.params).where(Job.id == job_id)).scalar_one_or_none() or {}
    conn.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            status="failed" if error else "succeeded",
            result=user_facing(result, params) if result is not None else None,
            error=user_facing(error, params) if error else error,
            finished_at=func.now(),
        )
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
        "api_key_id": row["api_key_id"],
    }


def upload_paths_in_use(conn: Connection) -> set[str]:
    """Stored upload paths that something still needs: the source of a dataset, or of a queued or running job."""
    from cim.db.models import Dataset

    datasets = conn.execute(select(Dataset.path).where(Dataset.path.is_not(None))).scalars()
    jobs = conn.execute(
        select(Job.params["path"].astext).where(Job.status.in_(("queued", "running")), Job.params.has_key("path"))
    ).scalars()
    return {str(p) for p in (*datasets, *jobs) if p}
