"""Built-in tile class ``areas``: water bodies and green spaces (parks, green spaces) as flat polygons draped
on the ground, coloured and picked by kind.

Each polygon is cut along a regular lon/lat grid (:data:`CELL_DEG` with a DEM, :data:`FLAT_CELL_DEG` on the
ellipsoid), each piece triangulated with earcut, and every vertex set at the DEM's height plus
:data:`AREA_LIFT_M`, so that a lake or a park follows the terrain (and the ellipsoid's curvature) instead of
cutting through it. No walls: the areas lie below the road ribbons and the outlines of :mod:`tiles.classes.lines`.
The area facilities of other kinds (shelters, bridges…) stay slabs of :mod:`tiles.classes.facilities`.
"""

from __future__ import annotations

from typing import Any

import mapbox_earcut
import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim import crs
from cim.vocabulary import FACILITY_KINDS
from tiles import geometry as geo
from tiles.classes import base, register
from tiles.classes.base import Bounds, LegendEntry, RenderContext, Rendered, ground
from tiles.glb import PropertyTable
from tiles.source import BBox, Columns, bbox_sql, query

AREA_CATEGORIES = ("water", "green")
"""Facility categories (:data:`cim.vocabulary.FACILITY_KINDS`) whose polygons this class draws."""
AREA_KINDS: tuple[str, ...] = tuple(
    k for k, v in FACILITY_KINDS.items() if v.geometry == "polygon" and v.category in AREA_CATEGORIES
)
"""The facility kinds drawn as areas (``water_body``, ``park``, ``green_space``) when stored as polygons."""
POLYGON_TYPES = ("ST_Polygon", "ST_MultiPolygon")
_POLYGON_WKB = (3, 6)
AREA_LIFT_M = 0.15
"""Height of the areas above the DEM (m): below the road ribbons (0.3 m) and the outlines (0.6 m)."""
CELL_DEG = 0.0005
"""Grid step (degrees, about 50 m) along which areas are cut to follow the DEM."""
FLAT_CELL_DEG = 0.01
"""Grid step without a DEM (about 1 km: the ellipsoid bends 2 cm under a 1 km chord)."""
SLIVER_DEG2 = 1e-14
"""Triangles of a smaller (doubled) area in square degrees (under about 1 cm²) are dropped."""


def wkb_type(wkb: bytes) -> int:
    """The OGC geometry type code (1 point … 6 multipolygon, 7 collection) in a WKB or EWKB header."""
    code = int.from_bytes(wkb[1:5], "little" if wkb[0] == 1 else "big")
    return (code & 0x0FFFFFFF) % 1000


def is_area(kinds: list[str], wkbs: list[bytes]) -> NDArray[np.bool_]:
    """Which facility rows this class draws: an area kind stored as a (multi)polygon (the test the SQL of
    :meth:`Areas.read` makes, for a reader that has the rows already)."""
    return np.array([k in AREA_KINDS and wkb_type(w) in _POLYGON_WKB for k, w in zip(kinds, wkbs, strict=True)], bool)


def _grid_pieces(geoms: NDArray[np.object_], cell: float) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """The polygon parts of every geometry cut along the global grid of step ``cell`` (degrees), with the
    index of the geometry each piece comes from. A geometry inside one cell is kept whole."""
    bounds = shapely.bounds(geoms)
    lo = np.floor(bounds[:, :2] / cell).astype(np.int64)
    hi = np.maximum(np.ceil(bounds[:, 2:] / cell).astype(np.int64), lo + 1)
    nx, ny = hi[:, 0] - lo[:, 0], hi[:, 1] - lo[:, 1]
    whole = (nx == 1) & (ny == 1)
    pieces, owner = [geoms[whole]], [np.nonzero(whole)[0]]
    split = np.nonzero(~whole)[0]
    if len(split):
        count = nx[split] * ny[split]
        src = np.repeat(split, count)
        k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        ix = lo[src, 0] + k % nx[src]
        iy = lo[src, 1] + k // nx[src]
        boxes = shapely.box(ix * cell, iy * cell, (ix + 1) * cell, (iy + 1) * cell)
        cut = shapely.intersection(geoms[src], boxes)
        pieces.append(cut)
        owner.append(src)
    parts, pidx = shapely.get_parts(np.concatenate(pieces), return_index=True)
    ok = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    return parts[ok], np.concatenate(owner)[pidx[ok]]


def drape(
    geoms: NDArray[np.object_],
    heights: Any,
    *,
    cell: float,
    height_anomaly: float = 0.0,
) -> geo.Mesh:
    """Flat (multi)polygons (EPSG:4490 degrees) as triangles whose vertices lie at ``heights(lon, lat)``
    (normal heights, m), cut along a grid of step ``cell`` degrees; counter-clockwise seen from above,
    normals up, ``feature`` the index of the polygon."""
    if len(geoms) == 0:
        return geo.Mesh.empty()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    parts, owner = _grid_pieces(geoms, cell)
    if len(parts) == 0:
        return geo.Mesh.empty()
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    # Drop each ring's closing vertex.
    keep = np.r_[ring_of[1:] == ring_of[:-1], False]
    coords, ring_of = coords[keep], ring_of[keep]
    part_of = ring_part[ring_of]
    tris: list[NDArray[np.int64]] = []
    starts = np.r_[0, np.nonzero(np.diff(part_of))[0] + 1]
    ends = np.r_[starts[1:], len(part_of)]
    for s, e in zip(starts, ends, strict=True):
        ring_ends = (np.r_[np.nonzero(np.diff(ring_of[s:e]))[0] + 1, e - s]).astype(np.uint32)
        pts = coords[s:e]
        t = mapbox_earcut.triangulate_float64(pts - pts[0], ring_ends)
        if len(t):
            tris.append(t.reshape(-1, 3).astype(np.int64) + s)
    if not tris:
        return geo.Mesh.empty()
    tri = np.concatenate(tris)
    a, b, c = coords[tri[:, 0]], coords[tri[:, 1]], coords[tri[:, 2]]
    twice = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri[twice < 0] = tri[twice < 0][:, [0, 2, 1]]
    # Slivers along collinear cut points cover nothing, and on a DEM could tilt face down.
    tri = tri[np.abs(twice) > SLIVER_DEG2]
    lon, lat = coords[:, 0], coords[:, 1]
    xyz = crs.geodetic_to_geocentric(lon, lat, heights(lon, lat), height_anomaly=height_anomaly)
    normals = geo.up_vectors(lon, lat).astype(np.float32)
    return geo.Mesh(xyz, normals, owner[part_of].astype(np.int64), tri.ravel())


class Areas(base.FacilityTileClass):
    """Water bodies and green spaces as flat polygons on the ground, coloured by kind; one ``area`` table."""

    layer = "areas"
    metadata_class = "area"
    title = "Water body or green space"
    zh = "水体与绿地"
    properties = base.FacilityTileClass.with_properties(
        area_m2=base.scalar("FLOAT64", "area (m², geodesic)"), district_code=base.STRING
    )

    def legend(self) -> list[LegendEntry]:
        return self.kind_legend(AREA_KINDS)

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        where, params = bbox_sql("f.geom", bbox)
        params |= {"kinds": list(AREA_KINDS), "types": list(POLYGON_TYPES)}
        sql = (
            "SELECT f.id, f.kind, coalesce(f.name, ''), coalesce(f.area_m2, ST_Area(f.geom::geography)), "
            "coalesce(f.district_code, ''), ST_AsBinary(f.geom), ST_X(p.p), ST_Y(p.p) "
            "FROM facility f CROSS JOIN LATERAL (SELECT ST_PointOnSurface(f.geom) AS p) p "
            "WHERE f.valid_to IS NULL AND NOT ST_IsEmpty(f.geom) AND f.kind = ANY(%(kinds)s) "
            f"AND ST_GeometryType(f.geom) = ANY(%(types)s){where} ORDER BY f.id"
        )
        names = ["id", "kind", "name", "area_m2", "district_code", "wkb", "px", "py"]
        f8 = np.float64
        return query(conn, sql, params, names, {"id": np.int64, "area_m2": f8, "px": f8, "py": f8})

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        def heights(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
            return ground(ctx.dem_path, lon, lat) + AREA_LIFT_M

        cell = CELL_DEG if ctx.dem_path else FLAT_CELL_DEG
        mesh = drape(shapely.from_wkb(cols["wkb"]), heights, cell=cell, height_anomaly=ctx.height_anomaly)
        bounds = Bounds()
        bounds.add_ecef(mesh.positions, ctx.height_anomaly)
        columns = {"facility_id": cols["id"], "kind": cols["kind"], "name": cols["name"]}
        columns |= {"area_m2": cols["area_m2"], "district_code": cols["district_code"]}
        table = PropertyTable(self.metadata_class, len(cols), columns)
        return Rendered(mesh, table, self.kind_colors(cols["kind"]), bounds)


register(Areas())
