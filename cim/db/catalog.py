"""Queries that list what the platform holds: tilesets and datasets (for ``/tilesets`` and ``/datasets``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from cim.db.models import Dataset, Tileset


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def list_tilesets(conn: Connection) -> list[dict[str, Any]]:
    """Every ready tileset: name, layers, bounds (west, south, east, north; degrees, EPSG:4490), heights (m)."""
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
                "status": t.status,
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
