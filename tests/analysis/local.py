"""Metric placement of fixture features: positions in metres east/north of an origin → lon/lat (EPSG:4490).

Uses pyproj's geodesic solver on the GRS 80 ellipsoid (CGCS2000 differs in the 12th digit of the
flattening), independent of the PostGIS code under test.
"""

from __future__ import annotations

import math

import shapely
from pyproj import Geod

GEOD = Geod(ellps="GRS80")


class Local:
    """A local frame at (lon0, lat0): ``pt(e, n)`` gives lon/lat of the point e metres east, n metres north."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0

    def pt(self, east: float, north: float) -> tuple[float, float]:
        lon, lat, _ = GEOD.fwd(self.lon0, self.lat0, 90.0, east) if east else (self.lon0, self.lat0, 0)
        lon2, lat2, _ = GEOD.fwd(lon, lat, 0.0 if north >= 0 else 180.0, abs(north)) if north else (lon, lat, 0)
        return float(lon2), float(lat2)

    def point(self, east: float, north: float) -> shapely.Point:
        return shapely.Point(*self.pt(east, north))

    def box(self, cx: float, cy: float, w: float, h: float) -> shapely.Polygon:
        """A w × h metre rectangle centred on (cx, cy) metres."""
        corners = [
            (cx - w / 2, cy - h / 2),
            (cx + w / 2, cy - h / 2),
            (cx + w / 2, cy + h / 2),
            (cx - w / 2, cy + h / 2),
        ]
        return shapely.Polygon([self.pt(x, y) for x, y in corners])

    def line(self, *points: tuple[float, float]) -> shapely.LineString:
        return shapely.LineString([self.pt(x, y) for x, y in points])


def geodesic_area_m2(poly: shapely.Polygon) -> float:
    """Ellipsoidal area of a lon/lat polygon (m²)."""
    area, _ = GEOD.geometry_area_perimeter(poly)
    return abs(float(area))


def geodesic_length_m(line: shapely.LineString) -> float:
    return float(GEOD.geometry_length(line))


def hypot(a: float, b: float) -> float:
    return math.hypot(a, b)
