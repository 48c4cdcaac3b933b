"""Queries on the ``dataset`` table shared by every ingestor: checksums, versions, history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from cim.db.models import Building, Dataset, Element, Facility

HISTORY_TABLES = (Building, Element, Facility)
"""Tables whose rows keep history: a superseded dataset's rows get ``valid_to`` instead of being deleted."""


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def loaded_dataset_with_sha256(conn: Connection, sha256: str, kind: str, layer: str | None = None) -> int | None:
    """The id of a live (``loaded``) dataset of this kind (and layer) with these exact bytes, if any."""
    query = select(Dataset.id).where(Dataset.sha256 == sha256, Dataset.kind == kind, Dataset.status == "loaded")
    if layer is not None:
        query = query.where(Dataset.layer == layer)
    return conn.execute(query.order_by(Dataset.id.desc()).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class LiveDataset:
    """The live version of a source: its dataset id, version number and checksum."""

    id: int
    version: int
    sha256: str


def live_dataset_for_model(conn: Connection, model_key: str, kind: str) -> LiveDataset | None:
    """The live dataset that holds the current version of a source (same IfcProject GlobalId, same layer…)."""
    row = conn.execute(
        select(Dataset.id, Dataset.version, Dataset.sha256)
        .where(Dataset.model_key == model_key, Dataset.kind == kind, Dataset.status == "loaded")
        .order_by(Dataset.version.desc(), Dataset.id.desc())
        .limit(1)
    ).first()
    return LiveDataset(int(row.id), int(row.version), str(row.sha256)) if row is not None else None


def insert_dataset(conn: Connection, **values: Any) -> int:
    """Insert a dataset row (columns of :class:`Dataset`) and return its id."""
    return int(conn.execute(insert(Dataset).values(**values).returning(Dataset.id)).scalar_one())


def update_dataset(conn: Connection, dataset_id: int, **values: Any) -> None:
    """Update columns of one dataset row."""
    conn.execute(update(Dataset).where(Dataset.id == dataset_id).values(**values))


def supersede_dataset(conn: Connection, dataset_id: int) -> None:
    """Mark a dataset superseded and close the validity of its live rows (they stay as history)."""
    now = func.now()
    for table in HISTORY_TABLES:
        conn.execute(update(table).where(table.dataset_id == dataset_id, table.valid_to.is_(None)).values(valid_to=now))
    conn.execute(update(Dataset).where(Dataset.id == dataset_id).values(status="superseded", superseded_at=now))
