"""Queries that list what the platform holds: tilesets and datasets (for ``/tilesets`` and ``/datasets``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select

from cim.db.models import Dataset, Tileset
from cim.errors import NotFoundError


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def tileset_missing_reason(name: str, path: str, tiles_root: Path | None) -> str | None:
    """Why tileset ``name`` cannot be served, or ``None`` when its ``tileset.json`` is there.

    ``tiles_root``: the folder the server serves as ``/tiles/`` (``data_path/tiles``); the tileset is served
    from ``tiles_root/name``. Without it only the recorded ``path`` is checked.
    """
    folder = (tiles_root / name) if tiles_root is not None else Path(path)
    if (folder / "tileset.json").is_file():
        return None
    if tiles_root is not None and (Path(path) / "tileset.json").is_file():
        return f"built into {path}, outside the served folder {tiles_root}: rebuild it without --out"
    return f"its files are gone ({folder / 'tileset.json'} does not exist): rebuild it or delete it"


def list_tilesets(
    conn: Connection, tiles_root: Path | None = None, *, include_missing: bool = False
) -> list[dict[str, Any]]:
    """Tilesets that can be served: name, layers, bounds (west, south, east, north; degrees, EPSG:4490), heights (m).

    A tileset whose files are gone (or lie outside ``tiles_root``, see :func:`tileset_missing_reason`) is left
    out, so that a viewer never asks for it; with ``include_missing`` it is listed with ``status = "missing"``
    and the reason. ``available`` says which.
    """
    rows = conn.execute(
        select(
            *Tileset.__table__.c,
            func.ST_XMin(Tileset.bounds).label("w"),
            func.ST_YMin(Tileset.bounds).label("s"),
            func.ST_XMax(Tileset.bounds).label("e"),
            func.ST_YMax(Tileset.bounds).label("n"),
        ).order_by(Tileset.name)
    ).all()
    out = []
    for t in rows:
        missing = tileset_missing_reason(t.name, t.path, tiles_root)
        if missing is not None and not include_missing:
            continue
        w, s, e, n = t.w, t.s, t.e, t.n
        terrain = (t.options or {}).get("terrain")
        out.append(
            {
                "name": t.name,
                "url": f"/tiles/{t.name}/tileset.json",
                "terrain_url": f"/tiles/{t.name}/{terrain}/" if terrain else None,
                "bounds": [w, s, e, n] if w is not None else None,
                "min_height": t.min_height,
                "max_height": t.max_height,
                "layers": list(t.layers or []),
                "tile_count": t.tile_count,
                "feature_count": t.feature_count,
                "size_bytes": t.size_bytes,
                "status": "missing" if missing is not None else t.status,
                "available": missing is None,
                **({"missing_reason": missing} if missing is not None else {}),
                "built_at": _iso(t.built_at),
            }
        )
    return out


def dataset_summary(d: Any) -> dict[str, Any]:
    """The public fields of one dataset row."""
    return {
        "id": d.id,
        "name": d.name,
        "kind": d.kind,
        "layer": d.layer,
        "version": d.version,
        "status": d.status,
        "schema": d.schema_name,
        "crs_in": d.crs_in,
        "georef_level": d.georef_level,
        "sha256": d.sha256,
        "size_bytes": d.size_bytes,
        "counts": d.counts or {},
        "created_at": _iso(d.created_at),
        "superseded_at": _iso(d.superseded_at),
    }


def list_datasets(
    conn: Connection, *, kind: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """``(total, page)`` of datasets, newest first, optionally of one kind and status."""
    query = select(*Dataset.__table__.c)
    count = select(func.count()).select_from(Dataset)
    if kind is not None:
        query, count = query.where(Dataset.kind == kind), count.where(Dataset.kind == kind)
    if status is not None:
        query, count = query.where(Dataset.status == status), count.where(Dataset.status == status)
    total = int(conn.execute(count).scalar_one())
    rows = conn.execute(query.order_by(Dataset.id.desc()).limit(limit).offset(offset))
    return total, [dataset_summary(d) for d in rows]


def delete_tileset(conn: Connection, name: str) -> str:
    """Remove the registration of tileset ``name``; return the folder its files were written to.

    Raises :class:`NotFoundError` when no tileset has that name. The caller removes the files after commit.
    """
    path = conn.execute(delete(Tileset).where(Tileset.name == name).returning(Tileset.path)).scalar_one_or_none()
    if path is None:
        raise NotFoundError(f"no tileset {name!r}; `cim tiles list` shows the registered ones")
    return str(path)
