"""Plan geometry shared by the checks: stored EPSG:4490 geometries in the site's Gauss–Krüger zone (metres,
x east, y north) and back, through :mod:`cim.crs`."""

from __future__ import annotations

from typing import Any

import shapely

from cim import crs
from cim.review.registry import ReviewContext

TOLERANCE_M = 0.05
"""Drawing tolerance in metres: coordinates closer than this are the same place."""


def to_zone(geom: shapely.Geometry, zone_epsg: Any) -> shapely.Geometry:
    """A lon/lat (EPSG:4490) geometry in Gauss–Krüger zone ``zone_epsg`` metres."""
    return crs.transform_geometry(geom, crs.CGCS2000, zone_epsg)


def to_lonlat(geom: shapely.Geometry, zone_epsg: Any) -> shapely.Geometry:
    """A zone-metre geometry back in EPSG:4490 lon/lat degrees."""
    return crs.transform_geometry(geom, zone_epsg, crs.CGCS2000)


def parcel_in_zone(context: ReviewContext) -> shapely.Geometry:
    """The parcel under review in the model's zone (cached on the context)."""
    cached = context.cache.get("parcel_zone")
    if cached is None:
        assert context.parcel is not None and context.model.zone_epsg is not None
        cached = to_zone(shapely.from_wkb(bytes(context.parcel["geom"])), context.model.zone_epsg)
        context.cache["parcel_zone"] = cached
    return cached


def footprint_lonlat_wkb(context: ReviewContext) -> bytes:
    """The model's footprint as EPSG:4490 WKB (cached), for database queries around the site."""
    cached = context.cache.get("footprint_wkb")
    if cached is None:
        assert context.model.zone_epsg is not None
        footprint = context.model.footprint()
        if footprint.is_empty:
            footprint = shapely.MultiPoint(shapely.get_coordinates(context.model.elements.hulls)).convex_hull
        cached = shapely.to_wkb(to_lonlat(footprint, context.model.zone_epsg))
        context.cache["footprint_wkb"] = cached
    return bytes(cached)


def rows_in_zone(rows: list[dict[str, Any]], column: str, zone_epsg: Any) -> list[shapely.Geometry]:
    """The ``column`` WKB geometries of query rows in the zone (one vectorised transform)."""
    if not rows:
        return []
    geoms = shapely.from_wkb([bytes(r[column]) for r in rows])
    return list(to_zone(geoms, zone_epsg))
