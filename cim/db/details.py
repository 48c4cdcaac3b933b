"""Detail queries behind ``/buildings/{id}``, ``/elements/{guid}`` and ``/search``.

Coordinates are CGCS2000 (EPSG:4490) longitude/latitude in degrees; heights metres (normal heights).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, String, cast, func, or_, select

from cim.db.models import Building, Dataset, Element, ModelVersion, Review


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def building_detail(conn: Connection, building_id: int) -> dict[str, Any] | None:
    """Everything about one building (any validity): attributes, bbox, centroid, elements, sources, history."""
    g = Building.footprint
    row = (
        conn.execute(
            select(
                *Building.__table__.c,
                func.ST_XMin(g).label("w"),
                func.ST_YMin(g).label("s"),
                func.ST_XMax(g).label("e"),
                func.ST_YMax(g).label("n"),
                func.ST_X(func.ST_PointOnSurface(g)).label("cx"),
                func.ST_Y(func.ST_PointOnSurface(g)).label("cy"),
            ).where(Building.id == building_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    b = row
    by_class = dict(
        conn.execute(
            select(Element.ifc_class, func.count())
            .where(Element.building_id == building_id, Element.valid_to.is_(None))
            .group_by(Element.ifc_class)
            .order_by(Element.ifc_class)
        ).all()
    )
    dataset_ids = {b["dataset_id"]} | set(
        conn.execute(select(Element.dataset_id).where(Element.building_id == building_id).distinct()).scalars()
    )
    datasets = [
        {
            "id": d.id,
            "name": d.name,
            "kind": d.kind,
            "version": d.version,
            "status": d.status,
            "created_at": _iso(d.created_at),
        }
        for d in conn.execute(
            select(Dataset.id, Dataset.name, Dataset.kind, Dataset.version, Dataset.status, Dataset.created_at)
            .where(Dataset.id.in_(dataset_ids))
            .order_by(Dataset.id)
        )
    ]
    reviews = [
        {"id": r.id, "file_name": r.file_name, "status": r.status, "passed": r.passed, "created_at": _iso(r.created_at)}
        for r in conn.execute(
            select(Review.id, Review.file_name, Review.status, Review.passed, Review.created_at)
            .where(Review.building_id == building_id)
            .order_by(Review.id.desc())
        )
    ]
    archive = [
        {
            "id": m.id,
            "model_key": m.model_key,
            "version": m.version,
            "file_name": m.file_name,
            "sha256": m.sha256,
            "size_bytes": m.size_bytes,
            "author": m.author,
            "message": m.message,
            "created_at": _iso(m.created_at),
        }
        for m in conn.execute(
            select(*ModelVersion.__table__.c)
            .where(ModelVersion.building_id == building_id)
            .order_by(ModelVersion.version.desc())
        )
    ]
    return {
        "id": b["id"],
        "name": b["name"],
        "address": b["address"],
        "use": b["use"],
        "height": b["height"],
        "base_height": b["base_height"],
        "storeys": b["storeys"],
        "year_built": b["year_built"],
        "structure": b["structure"],
        "safety_class": b["safety_class"],
        "cim_level": b["cim_level"],
        "gross_floor_area": b["gross_floor_area"],
        "district_code": b["district_code"],
        "facility_type": b["facility_type"],
        "ifc_global_id": b["ifc_global_id"],
        "attributes": b["attributes"] or {},
        "bbox": [b["w"], b["s"], b["e"], b["n"]],
        "centroid": [b["cx"], b["cy"]],
        "valid_from": _iso(b["valid_from"]),
        "valid_to": _iso(b["valid_to"]),
        "elements": {"count": sum(by_class.values()), "by_class": by_class},
        "datasets": datasets,
        "reviews": reviews,
        "archive": archive,
    }


def element_detail(conn: Connection, global_id: str) -> dict[str, Any] | None:
    """The live element with this IFC GlobalId (the newest when several models share it), else ``None``."""
    loc = Element.location
    row = (
        conn.execute(
            select(
                *Element.__table__.c, func.ST_X(loc).label("cx"), func.ST_Y(loc).label("cy"), func.ST_Z(loc).label("cz")
            )
            .where(Element.global_id == global_id, Element.valid_to.is_(None))
            .order_by(Element.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    e = row
    return {
        "global_id": e["global_id"],
        "ifc_class": e["ifc_class"],
        "name": e["name"],
        "type_name": e["type_name"],
        "storey": e["storey"],
        "material": e["material"],
        "properties": e["properties"] or {},
        "building_id": e["building_id"],
        "dataset_id": e["dataset_id"],
        "min_height": e["min_height"],
        "max_height": e["max_height"],
        "triangle_count": e["triangle_count"],
        "centroid": [e["cx"], e["cy"], e["cz"]] if e["cx"] is not None else None,
    }


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: Connection, q: str, limit: int = 10) -> list[dict[str, Any]]:
    """Live buildings (by id, name, address, IFC GlobalId) then elements (GlobalId, name) matching ``q``."""
    pattern = _like(q)
    conditions = [
        Building.name.ilike(pattern, escape="\\"),
        Building.address.ilike(pattern, escape="\\"),
        Building.ifc_global_id == q,
    ]
    if q.isascii() and q.isdigit() and len(q) < 18:  # "²".isdigit() is True, int("²") fails
        conditions.append(Building.id == int(q))
    g = func.ST_PointOnSurface(Building.footprint)
    exact = func.coalesce(cast(Building.id, String) == q, False)
    buildings = conn.execute(
        select(Building.id, Building.name, Building.address, func.ST_X(g), func.ST_Y(g), Building.height)
        .where(Building.valid_to.is_(None), or_(*conditions))
        .order_by(exact.desc(), Building.name, Building.id)
        .limit(limit)
    ).all()
    out: list[dict[str, Any]] = [
        {"type": "building", "id": r[0], "name": r[1], "address": r[2], "lon": r[3], "lat": r[4], "height": r[5]}
        for r in buildings
    ]
    room = limit - len(out)
    if room > 0:
        loc = Element.location
        elements = conn.execute(
            select(Element.global_id, Element.name, func.ST_X(loc), func.ST_Y(loc), func.ST_Z(loc))
            .where(Element.valid_to.is_(None), or_(Element.global_id == q, Element.name.ilike(pattern, escape="\\")))
            .order_by((Element.global_id == q).desc(), Element.name, Element.id)
            .limit(room)
        ).all()
        out += [
            {"type": "element", "id": r[0], "name": r[1], "address": None, "lon": r[2], "lat": r[3], "height": r[4]}
            for r in elements
        ]
    return out
