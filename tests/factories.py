"""Small builders of database rows for tests that need data without running an ingestor."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, insert

from cim.db.datasets import insert_dataset
from cim.db.models import Building, District, Facility, Parcel, PlanningZone


def dataset(conn: Connection, name: str = "fixture", kind: str = "vector", layer: str = "buildings") -> int:
    """A loaded dataset row to hang fixture rows on."""
    return insert_dataset(conn, name=name, kind=kind, layer=layer, path=f"/fixtures/{name}", sha256="0" * 64)


def _multi(geom: BaseGeometry) -> BaseGeometry:
    return shapely.MultiPolygon([geom]) if geom.geom_type == "Polygon" else geom


def square(lon: float, lat: float, size_deg: float = 0.0002) -> shapely.Polygon:
    """A square polygon (lon/lat degrees, EPSG:4490) with its south-west corner at ``lon, lat``."""
    return shapely.box(lon, lat, lon + size_deg, lat + size_deg)


def buildings_geojson(
    path: Path, n: int, properties: Callable[[int], dict[str, Any]], lon: float = 114.30, lat: float = 30.58
) -> Path:
    """Write a GeoJSON FeatureCollection of ``n`` 0.0002° squares in a row eastwards from ``lon, lat``, 0.0005°
    apart; feature ``i`` has ``properties(i)``."""
    features = []
    for i in range(n):
        x = lon + i * 0.0005
        ring = [[x, lat], [x + 0.0002, lat], [x + 0.0002, lat + 0.0002], [x, lat + 0.0002], [x, lat]]
        features.append(
            {"type": "Feature", "properties": properties(i), "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    return path


def building(conn: Connection, dataset_id: int, footprint: BaseGeometry, height: float = 12.0, **values: Any) -> int:
    """Insert a building (footprint in EPSG:4490) and return its id."""
    row = {"footprint": from_shape(_multi(footprint), srid=4490), "height": height, "dataset_id": dataset_id}
    row.update(values)
    return int(conn.execute(insert(Building).values(**row).returning(Building.id)).scalar_one())


def facility(conn: Connection, dataset_id: int, kind: str, geom: BaseGeometry, **values: Any) -> int:
    """Insert a municipal facility (geometry in EPSG:4490) and return its id."""
    row = {"kind": kind, "geom": from_shape(geom, srid=4490), "dataset_id": dataset_id}
    row.update(values)
    return int(conn.execute(insert(Facility).values(**row).returning(Facility.id)).scalar_one())


def district(conn: Connection, code: str, geom: BaseGeometry, population: int, **values: Any) -> int:
    """Insert a district with its population and return its id."""
    row = {"code": code, "name": values.pop("name", code), "geom": from_shape(_multi(geom), srid=4490)}
    row.update(population=population, **values)
    return int(conn.execute(insert(District).values(**row).returning(District.id)).scalar_one())


def parcel(conn: Connection, dataset_id: int, geom: BaseGeometry, **values: Any) -> int:
    """Insert a parcel with planning limits (``max_height``, ``max_far``…) and return its id."""
    row = {"geom": from_shape(_multi(geom), srid=4490), "dataset_id": dataset_id}
    row.update(values)
    return int(conn.execute(insert(Parcel).values(**row).returning(Parcel.id)).scalar_one())


def planning_zone(conn: Connection, dataset_id: int, geom: BaseGeometry, **values: Any) -> int:
    """Insert a planning zone with its limits and return its id."""
    row = {"geom": from_shape(_multi(geom), srid=4490), "dataset_id": dataset_id}
    row.update(values)
    return int(conn.execute(insert(PlanningZone).values(**row).returning(PlanningZone.id)).scalar_one())
