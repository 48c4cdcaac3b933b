"""The feature collections the OGC API publishes and the SQL that pages through them.

Geometry is stored in EPSG:4490 (lon/lat degrees). Output CRS: CRS84 (lon/lat; CGCS2000 and WGS 84 agree
to centimetres, so stored coordinates are written as they are), or any EPSG code PostGIS knows, transformed
with ``ST_Transform``. Coordinates are written in the output CRS's own axis order (OGC API – Features
Part 2): EPSG:4490 and EPSG:4326 are latitude/longitude, the CGCS2000 Gauss–Krüger CRSs EPSG:4534–4554
northing/easting; PostGIS computes in x/y order, so those are flipped with ``ST_FlipCoordinates``.
Every query is built with SQLAlchemy Core: values are bound parameters, column names come from this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, Table, and_, func, literal, or_, select, true

from cim.crs import CGCS2000, CRS84_URI, parse_crs
from cim.db.models import (
    ELEMENT_ATTRIBUTES,
    AnalysisResult,
    Base,
    Building,
    District,
    Element,
    Facility,
    Parcel,
    PlanningZone,
)
from cim.vocabulary import FACILITY_KINDS

OUTPUT_EPSG: tuple[int, ...] = (CGCS2000, 4326, *range(4513, 4555))
"""EPSG codes offered besides CRS84: CGCS2000 geographic, WGS 84 and every CGCS2000 3-degree GK CRS."""


@dataclass(frozen=True, kw_only=True)
class FeatureCollectionDef:
    """One published collection: which table, which geometry column, which columns become properties.

    ``queryables`` are the properties usable in filters; ``fixed`` (column, value) pairs restrict the rows
    (``facilities-park`` is ``facility`` with ``kind = 'park'``); ``temporal`` collections have
    ``valid_from``/``valid_to`` and answer ``datetime``.
    """

    id: str
    title: str
    description: str
    model: type[Base]
    geometry: str
    properties: tuple[str, ...]
    queryables: tuple[str, ...]
    temporal: bool = False
    fixed: tuple[tuple[str, str], ...] = ()
    item_type: str = "feature"
    geometry_type: str = "geometry"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> Table:
        """The SQLAlchemy table."""
        return self.model.__table__  # type: ignore[return-value]


_SOURCE_PROPS = ("district_code", "source_id", "attributes", "dataset_id", "valid_from", "valid_to")
"""Where a building or facility row comes from and when it was valid."""
_BUILDING_PROPS = (
    "name",
    "address",
    "use",
    "height",
    "base_height",
    "storeys",
    "gross_floor_area",
    "year_built",
    "structure",
    "safety_class",
    "cim_level",
    "facility_type",
    "ifc_global_id",
    *_SOURCE_PROPS,
)
_FACILITY_PROPS = (
    "kind",
    "name",
    "diameter_mm",
    "depth_m",
    "invert_start_m",
    "invert_end_m",
    "material",
    "pressure_class",
    "width_m",
    "road_class",
    "capacity",
    "area_m2",
    *_SOURCE_PROPS,
)
_LIMIT_PROPS = ("max_height", "max_far", "max_density", "min_green_ratio", "setback_m")


def _collections() -> dict[str, FeatureCollectionDef]:
    items = [
        FeatureCollectionDef(
            id="buildings",
            title="Buildings",
            description="Building footprints (MultiPolygon) with heights in metres, use, storeys, safety class and "
            "CIM level.",
            model=Building,
            geometry="footprint",
            properties=_BUILDING_PROPS,
            queryables=(
                "name",
                "use",
                "height",
                "base_height",
                "gross_floor_area",
                "storeys",
                "year_built",
                "structure",
                "safety_class",
                "cim_level",
                "facility_type",
                "district_code",
                "dataset_id",
                "ifc_global_id",
            ),
            temporal=True,
            geometry_type="multipolygon",
        ),
        FeatureCollectionDef(
            id="elements",
            title="IFC elements",
            description="IFC products with a body: 2D extent (Polygon), class, storey, heights (m).",
            model=Element,
            geometry="extent",
            properties=(
                *ELEMENT_ATTRIBUTES,
                "min_height",
                "max_height",
                "triangle_count",
                "building_id",
                "dataset_id",
                "properties",
                "valid_from",
                "valid_to",
            ),
            queryables=("global_id", "ifc_class", "name", "storey", "material", "building_id", "dataset_id"),
            temporal=True,
            geometry_type="polygon",
        ),
        FeatureCollectionDef(
            id="facilities",
            title="Municipal facilities",
            description="Every municipal facility: pipes, manholes, roads, parks, shelters, fire stations, schools…",
            model=Facility,
            geometry="geom",
            properties=_FACILITY_PROPS,
            queryables=(
                "kind",
                "name",
                "material",
                "pressure_class",
                "road_class",
                "diameter_mm",
                "depth_m",
                "district_code",
                "dataset_id",
            ),
            temporal=True,
        ),
    ]
    for kind, info in FACILITY_KINDS.items():
        items.append(
            FeatureCollectionDef(
                id=f"facilities-{kind}",
                title=f"{info.en.capitalize()} ({info.zh})",
                description=f"Facilities of kind {kind}: {info.en}.",
                model=Facility,
                geometry="geom",
                properties=_FACILITY_PROPS,
                queryables=("name", "material", "pressure_class", "road_class", "district_code", "dataset_id"),
                temporal=True,
                fixed=(("kind", kind),),
                geometry_type=info.geometry,
            )
        )
    items += [
        FeatureCollectionDef(
            id="parcels",
            title="Land parcels",
            description="Land parcels with planning limits (height m, FAR, density, green ratio).",
            model=Parcel,
            geometry="geom",
            properties=("code", "name", "land_use", *_LIMIT_PROPS, "district_code", "attributes", "dataset_id"),
            queryables=("code", "name", "land_use", *_LIMIT_PROPS, "district_code", "dataset_id"),
            geometry_type="multipolygon",
        ),
        FeatureCollectionDef(
            id="planning_zones",
            title="Planning zones",
            description="Regulatory planning zones with their limits.",
            model=PlanningZone,
            geometry="geom",
            properties=("code", "name", "zone_type", *_LIMIT_PROPS, "attributes", "dataset_id"),
            queryables=("code", "name", "zone_type", "dataset_id"),
            geometry_type="multipolygon",
        ),
        FeatureCollectionDef(
            id="districts",
            title="Districts",
            description="Administrative areas with population and built-up area (km²).",
            model=District,
            geometry="geom",
            properties=("code", "name", "level", "parent_code", "population", "built_up_area_km2", "attributes"),
            queryables=("code", "name", "level", "parent_code", "population"),
            geometry_type="multipolygon",
        ),
        FeatureCollectionDef(
            id="analysis_results",
            title="Analysis results",
            description="Values of CIM+ analysis runs (indicators, flooded areas…).",
            model=AnalysisResult,
            geometry="geom",
            properties=("run_id", "indicator", "district_code", "value", "unit", "attributes"),
            queryables=("run_id", "indicator", "district_code", "value", "unit"),
        ),
    ]
    return {c.id: c for c in items}


COLLECTIONS: dict[str, FeatureCollectionDef] = _collections()
"""Every published collection by id (``/collections`` lists them in this order)."""


@lru_cache(maxsize=64)
def axis_flipped(epsg: int | None) -> bool:
    """True when the CRS's first axis is northing/latitude (so PostGIS x/y output must be flipped)."""
    if epsg is None:
        return False
    crs = parse_crs(epsg).crs
    assert crs is not None
    axes = crs.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


@lru_cache(maxsize=64)
def is_geographic(epsg: int | None) -> bool:
    """True for CRS84 and geographic EPSG codes (degrees)."""
    return epsg is None or bool(parse_crs(epsg).is_geographic)


def _value_for(column: Column[Any], text: str) -> Any:
    python_type = column.type.python_type
    if python_type is int:
        return int(text)
    if python_type is float:
        return float(text)
    return text


def _where(
    coll: FeatureCollectionDef,
    *,
    bbox: tuple[float, float, float, float] | None,
    bbox_epsg: int | None,
    interval: tuple[dt.datetime | None, dt.datetime | None] | None,
    filters: dict[str, str],
    extra: ColumnElement[bool] | None = None,
) -> ColumnElement[bool]:
    t = coll.table
    clauses: list[ColumnElement[bool]] = [t.c[name] == value for name, value in coll.fixed]
    if coll.temporal:
        if interval is None:
            clauses.append(t.c.valid_to.is_(None))
        else:
            start, end = interval
            if end is not None:
                clauses.append(t.c.valid_from <= end)
            if start is not None:
                clauses.append(or_(t.c.valid_to.is_(None), t.c.valid_to > start))
    if bbox is not None:
        w, s, e, n = bbox
        if bbox_epsg is None or bbox_epsg == CGCS2000:
            envelope = func.ST_MakeEnvelope(w, s, e, n, CGCS2000)
        else:
            envelope = func.ST_Transform(func.ST_MakeEnvelope(w, s, e, n, bbox_epsg), CGCS2000)
        clauses.append(func.ST_Intersects(t.c[coll.geometry], envelope))
    for name, text in filters.items():
        column = t.c[name]
        clauses.append(column == _value_for(column, text))
    if extra is not None:
        clauses.append(extra)
    return and_(true(), *clauses)


def _geometry_json(coll: FeatureCollectionDef, epsg: int | None) -> ColumnElement[Any]:
    geom: ColumnElement[Any] = coll.table.c[coll.geometry]
    if epsg is not None and epsg != CGCS2000:
        geom = func.ST_Transform(geom, epsg)
    if axis_flipped(epsg):
        geom = func.ST_FlipCoordinates(geom)
    digits = 8 if is_geographic(epsg) else 3
    # options 0: no "crs" member (RFC 7946); the response's Content-Crs header names the CRS instead
    return func.ST_AsGeoJSON(geom, digits, 0).cast(_json_type())


def _json_type() -> Any:
    from sqlalchemy.dialects.postgresql import JSON

    return JSON()


def _feature_json(coll: FeatureCollectionDef, epsg: int | None) -> ColumnElement[Any]:
    t = coll.table
    props: list[Any] = []
    for name in coll.properties:
        props += [literal(name), t.c[name]]
    return func.json_build_object(
        literal("type"),
        literal("Feature"),
        literal("id"),
        t.c.id,
        literal("geometry"),
        _geometry_json(coll, epsg),
        literal("properties"),
        func.json_build_object(*props),
    ).cast(_text_type())


def _text_type() -> Any:
    from sqlalchemy import Text

    return Text()


def validate_filters(coll: FeatureCollectionDef, filters: dict[str, str]) -> None:
    """Raise :class:`ValueError` naming a property that cannot be filtered on, or a value of the wrong type."""
    for name, text in filters.items():
        if name not in coll.queryables:
            raise ValueError(
                f"unknown parameter or property {name!r}; queryables of {coll.id}: " + ", ".join(coll.queryables)
            )
        try:
            _value_for(coll.table.c[name], text)
        except ValueError as exc:
            raise ValueError(f"property {name} needs a number, not {text!r}") from exc


def feature_page(
    conn: Connection,
    coll: FeatureCollectionDef,
    *,
    limit: int,
    offset: int,
    epsg: int | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    bbox_epsg: int | None = None,
    interval: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    filters: dict[str, str] | None = None,
    extra: ColumnElement[bool] | None = None,
) -> tuple[int, list[str]]:
    """``(numberMatched, features)``: one page of GeoJSON features (JSON text each), ordered by id.

    ``bbox`` is (min x, min y, max x, max y) in ``bbox_epsg`` x/y order (lon/lat for geographic CRSs);
    ``epsg`` the output CRS (``None`` = CRS84); ``interval`` a validity interval for temporal collections
    (``None``: live rows only); ``filters`` property = value equality filters.
    """
    where = _where(coll, bbox=bbox, bbox_epsg=bbox_epsg, interval=interval, filters=filters or {}, extra=extra)
    t = coll.table
    matched = int(conn.execute(select(func.count()).select_from(t).where(where)).scalar_one())
    query: Select[Any] = select(_feature_json(coll, epsg)).where(where).order_by(t.c.id).limit(limit).offset(offset)
    return matched, [row[0] for row in conn.execute(query)]


def feature_by_id(conn: Connection, coll: FeatureCollectionDef, fid: int, *, epsg: int | None = None) -> str | None:
    """One feature (GeoJSON text) by id, whatever its validity; ``None`` when there is none in the collection."""
    t = coll.table
    clauses = [t.c.id == fid, *(t.c[name] == value for name, value in coll.fixed)]
    return conn.execute(select(_feature_json(coll, epsg)).where(*clauses)).scalar_one_or_none()


def collection_extent(conn: Connection, coll: FeatureCollectionDef) -> dict[str, Any]:
    """Spatial extent (CRS84 bbox of the live rows) and, for temporal collections, the validity interval."""
    t = coll.table
    where = _where(coll, bbox=None, bbox_epsg=None, interval=None, filters={})
    g = t.c[coll.geometry]
    row = conn.execute(
        select(
            func.ST_XMin(func.ST_Extent(g)),
            func.ST_YMin(func.ST_Extent(g)),
            func.ST_XMax(func.ST_Extent(g)),
            func.ST_YMax(func.ST_Extent(g)),
        ).where(where)
    ).one()
    extent: dict[str, Any] = {}
    if row[0] is not None:
        extent["spatial"] = {"bbox": [[float(v) for v in row]], "crs": CRS84_URI}
    if coll.temporal:
        first = conn.execute(select(func.min(t.c.valid_from)).where(where)).scalar_one()
        extent["temporal"] = {
            "interval": [[first.isoformat() if first else None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return extent


__all__ = [
    "COLLECTIONS",
    "OUTPUT_EPSG",
    "FeatureCollectionDef",
    "axis_flipped",
    "collection_extent",
    "feature_by_id",
    "feature_page",
    "is_geographic",
    "validate_filters",
]
