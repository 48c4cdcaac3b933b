"""Queries on the ``dataset`` table shared by every ingestor: checksums, versions, history."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, text, update

from cim.db.models import Building, Dataset, District, Element, Facility, Parcel, PlanningZone, Tileset
from cim.errors import CimError, NotFoundError

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


class DatasetInUseError(CimError, exit_code=19):
    """A dataset cannot be deleted as asked: tilesets were built from its rows (pass ``force`` to go on)."""


DEPENDENT_TABLES = (Element, Building, Facility, Parcel, PlanningZone, District)
"""Tables whose rows belong to a dataset (``dataset_id``), in the order they are deleted (elements before the
buildings they point to)."""

TILE_LAYERS_OF: dict[str, tuple[str, ...]] = {
    "buildings": ("buildings",),
    "bim": ("elements", "buildings"),
    "facilities": ("facilities", "roads", "areas"),
    "parcels": ("parcels",),
    "planning": ("zones",),
    "districts": ("boundaries",),
    "dem": ("terrain",),
}
"""Dataset ``layer`` → the tileset layers (tile content classes of :mod:`tiles.classes`) drawn from its rows;
roads are facilities of kind ``road`` or ``greenway``, areas the water bodies and green spaces."""


def get_dataset(conn: Connection, dataset_id: int) -> Any:
    """The dataset row ``dataset_id``; raises :class:`NotFoundError` when there is none."""
    row = conn.execute(select(*Dataset.__table__.c).where(Dataset.id == dataset_id)).first()
    if row is None:
        raise NotFoundError(f"no dataset {dataset_id}; `cim datasets list` shows the stored ones")
    return row


def dataset_rows(conn: Connection, dataset_id: int) -> dict[str, dict[str, int]]:
    """Rows per table that belong to a dataset: ``{table: {"live": n, "history": m}}`` (tables with rows only).

    History rows are those whose validity a newer version closed (``valid_to`` set).
    """
    out: dict[str, dict[str, int]] = {}
    for table in DEPENDENT_TABLES:
        if table in HISTORY_TABLES:
            query = select(
                func.count().filter(table.valid_to.is_(None)), func.count().filter(table.valid_to.is_not(None))
            ).where(table.dataset_id == dataset_id)
            live, history = conn.execute(query).one()
        else:
            live, history = conn.execute(select(func.count()).where(table.dataset_id == dataset_id)).scalar_one(), 0
        if live or history:
            out[table.__tablename__] = {"live": int(live), "history": int(history)}
    return out


def dataset_history(conn: Connection, dataset_id: int) -> list[Any]:
    """Every version of the source that dataset ``dataset_id`` is a version of (same kind and model key),
    oldest first; just that dataset when it has no model key."""
    d = get_dataset(conn, dataset_id)
    if d.model_key is None:
        return [d]
    query = (
        select(*Dataset.__table__.c)
        .where(Dataset.model_key == d.model_key, Dataset.kind == d.kind)
        .order_by(Dataset.created_at, Dataset.id)
    )
    return list(conn.execute(query))


def tilesets_built_from(conn: Connection, dataset_id: int) -> list[str]:
    """Names of the tilesets that show rows of the dataset: built while it was live, with a layer drawn from
    its rows, over its extent (when both are known)."""
    d = get_dataset(conn, dataset_id)
    layers = TILE_LAYERS_OF.get(str(d.layer), ())
    if not layers:
        return []
    rows = conn.execute(
        text(
            "SELECT t.name FROM tileset t, dataset d WHERE d.id = :id AND t.built_at >= d.created_at "
            "AND (d.superseded_at IS NULL OR t.built_at < d.superseded_at) AND t.layers ?| CAST(:layers AS text[]) "
            "AND (t.bounds IS NULL OR d.extent IS NULL OR ST_Intersects(t.bounds, d.extent)) ORDER BY t.name"
        ),
        {"id": dataset_id, "layers": list(layers)},
    )
    return [str(r[0]) for r in rows]


@dataclass
class DatasetDeletion:
    """What deleting a dataset removed (rows per table), which tilesets are now stale, what file is left over."""

    dataset_id: int
    name: str
    deleted_rows: dict[str, int]
    stale_tilesets: list[str]
    file: str | None
    """The dataset's own stored file (a DEM's COG), for the caller to remove after the commit; else None."""


def delete_dataset(conn: Connection, dataset_id: int, *, force: bool = False) -> DatasetDeletion:
    """Delete a dataset and every row that belongs to it, inside the caller's transaction.

    Refuses with :class:`DatasetInUseError` when tilesets were built from its rows (see
    :func:`tilesets_built_from`), unless ``force``: then they are marked ``stale`` (rebuild them). Reviews and
    archived versions that name the dataset keep their rows (their ``dataset_id`` becomes NULL); older
    versions of the same source stay as they are (superseded history).
    """
    d = conn.execute(select(*Dataset.__table__.c).where(Dataset.id == dataset_id).with_for_update()).first()
    if d is None:
        raise NotFoundError(f"no dataset {dataset_id}; `cim datasets list` shows the stored ones")
    stale = tilesets_built_from(conn, dataset_id)
    if stale and not force:
        raise DatasetInUseError(
            f"tileset(s) {', '.join(stale)} were built from dataset {dataset_id} ({d.name}) and would keep showing "
            "its features: pass --force to delete it anyway (the tilesets are marked stale), then rebuild them "
            "with `cim tiles build`"
        )
    deleted: dict[str, int] = {}
    for table in DEPENDENT_TABLES:
        count = conn.execute(delete(table).where(table.dataset_id == dataset_id)).rowcount
        if count:
            deleted[table.__tablename__] = int(count)
    conn.execute(delete(Dataset).where(Dataset.id == dataset_id))
    if stale:
        conn.execute(update(Tileset).where(Tileset.name.in_(stale)).values(status="stale"))
    file = None
    if d.kind == "raster":
        others = conn.execute(select(func.count()).where(Dataset.path == d.path)).scalar_one()
        file = None if others else str(d.path)
    return DatasetDeletion(int(d.id), str(d.name), deleted, stale, file)
