"""Vectorised geometry steps of vector ingest: transform to EPSG:4490, repair, cast, metric areas.

All functions take and return NumPy arrays of shapely geometries; coordinates are x = longitude / easting,
y = latitude / northing. Nothing here loops over features in Python except over the (few) invalid ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from numpy.typing import NDArray

from cim import crs as cimcrs
from ingest.vector_source import check_coordinates, with_zone_prefix

GeomArray = NDArray[np.object_]

_A = 6378137.0
_F = 1 / 298.257222101
_E2 = _F * (2 - _F)

POINT, LINESTRING, POLYGON, MULTIPOINT, MULTILINESTRING, MULTIPOLYGON, COLLECTION = 0, 1, 3, 4, 5, 6, 7


@dataclass
class GeometryStep:
    """Result of preparing one batch: kept geometries in EPSG:4490 and what happened to the others."""

    geoms: GeomArray
    keep: NDArray[np.bool_]
    """Mask over the batch's features: True where a geometry is kept (``geoms`` has only those)."""
    repaired: int = 0
    empty: int = 0
    wrong_type: int = 0
    converted: int = 0
    source: cimcrs.SourceCrs | None = None


def to_cgcs2000(geoms: GeomArray, source: cimcrs.SourceCrs) -> cimcrs.SourceCrs:
    """Transform geometries in place from ``source`` to EPSG:4490 (2D), after checks; returns the CRS used.

    Detects zone-prefixed Gauss–Krüger eastings and refuses coordinates outside the CRS's area of use.
    """
    coords = shapely.get_coordinates(geoms)
    if not coords.size:
        return source
    used = with_zone_prefix(source, coords[:, 0])
    if used.epsg == cimcrs.CGCS2000:
        lon, lat = coords[:, 0], coords[:, 1]
    else:
        lon, lat = cimcrs.to_cgcs2000(coords[:, 0], coords[:, 1], used)
    check_coordinates(lon, lat, used)
    if used.epsg != cimcrs.CGCS2000:
        shapely.set_coordinates(geoms, np.column_stack([lon, lat]))
    return used


def transform_coordinates(
    coords: NDArray[np.float64], source: cimcrs.SourceCrs
) -> tuple[NDArray[np.float64], cimcrs.SourceCrs]:
    """x/y rows from ``source`` to EPSG:4490 lon/lat rows, after the checks of :func:`to_cgcs2000`."""
    used = with_zone_prefix(source, coords[:, 0])
    if used.epsg == cimcrs.CGCS2000:
        check_coordinates(coords[:, 0], coords[:, 1], used)
        return coords, used
    lon, lat = cimcrs.to_cgcs2000(coords[:, 0], coords[:, 1], used)
    check_coordinates(lon, lat, used)
    return np.column_stack([lon, lat]), used


def transform_rings(
    coords: NDArray[np.float64], points: NDArray[np.int64], source: cimcrs.SourceCrs
) -> tuple[NDArray[np.float64], cimcrs.SourceCrs]:
    """:func:`transform_coordinates` of rings given point after point (``points`` per ring, closing point
    included), transforming each closed ring's closing point once, as its first point (the same numbers)."""
    last = np.cumsum(points) - 1
    first = last - points + 1
    closed = (coords[last] == coords[first]).all(axis=1)
    if not closed.any():
        return transform_coordinates(coords, source)
    unique = np.ones(len(coords), dtype=bool)
    unique[last[closed]] = False
    moved, used = transform_coordinates(coords[unique], source)
    out = np.empty_like(coords)
    out[unique] = moved
    out[last[closed]] = out[first[closed]]
    return out, used


@dataclass
class SimplePolygons:
    """A batch of WKB geometries that are all little-endian 2D Polygons with one ring (the usual footprint).

    Their coordinates can be read and rewritten in the WKB bytes with NumPy alone: no shapely objects needed
    to transform them, and the stored EWKB is the same bytes with a MultiPolygon + SRID header in front.
    """

    offsets: NDArray[np.int64]
    """Row offsets into ``data`` (n + 1, starting at 0)."""
    data: NDArray[np.uint8]
    coord_mask: NDArray[np.bool_]
    """True on the bytes of ``data`` that hold coordinates (everything but each row's 13-byte header)."""
    points: NDArray[np.int64]
    """Points per ring (the closing point included)."""

    def convex_quads(self) -> NDArray[np.float64] | None:
        """Rings as an (n, 5, 2) array when every one is a closed, strictly convex quadrilateral (then valid
        without asking GEOS: four turns of one sign, each clear of rounding), else None."""
        if not (self.points == 5).all():
            return None
        ring = self.coords.reshape(-1, 5, 2)
        if not (ring[:, 4] == ring[:, 0]).all():
            return None
        edge = ring[:, 1:] - ring[:, :-1]
        nxt = np.roll(edge, -1, axis=1)
        cross = edge[..., 0] * nxt[..., 1] - edge[..., 1] * nxt[..., 0]
        scale = np.hypot(edge[..., 0], edge[..., 1]) * np.hypot(nxt[..., 0], nxt[..., 1])
        clear = np.abs(cross) > 1e-9 * scale
        same = (cross > 0).all(axis=1) | (cross < 0).all(axis=1)
        if not (clear.all() and same.all()):
            return None
        return ring

    @property
    def coords(self) -> NDArray[np.float64]:
        """All x/y pairs, row after row (shape (points, 2))."""
        return np.ascontiguousarray(self.data[self.coord_mask]).view("<f8").reshape(-1, 2)

    def with_coords(self, coords: NDArray[np.float64]) -> SimplePolygons:
        """The same polygons with replaced coordinates (same order and count as :attr:`coords`)."""
        data = self.data.copy()
        data[self.coord_mask] = np.ascontiguousarray(coords, dtype="<f8").reshape(-1).view(np.uint8)
        return SimplePolygons(self.offsets, data, self.coord_mask, self.points)

    def wkb(self) -> pa.Array:
        """The polygons as plain WKB (Arrow binary)."""
        n = len(self.offsets) - 1
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(self.offsets), pa.py_buffer(self.data)]
        )

    def ewkb(self, srid: int = cimcrs.CGCS2000) -> pa.Array:
        """EWKB one-part MultiPolygons with ``srid``: what :func:`ewkb` (``multi=True``) writes for them."""
        n = len(self.offsets) - 1
        head = np.zeros(13, dtype=np.uint8)
        head[0] = 1
        head[1:5] = np.frombuffer(np.uint32(MULTIPOLYGON | 0x20000000).astype("<u4").tobytes(), dtype=np.uint8)
        head[5:9] = np.frombuffer(np.uint32(srid).astype("<u4").tobytes(), dtype=np.uint8)
        head[9:13] = np.frombuffer(np.uint32(1).astype("<u4").tobytes(), dtype=np.uint8)
        offsets = self.offsets + 13 * np.arange(n + 1, dtype=np.int64)
        out = np.empty(int(offsets[-1]), dtype=np.uint8)
        head_mask = np.zeros(len(out), dtype=bool)
        head_mask[(offsets[:-1, None] + np.arange(13)).reshape(-1)] = True
        out[head_mask] = np.tile(head, n)
        out[~head_mask] = self.data
        return pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def simple_polygons(wkb: pa.Array) -> SimplePolygons | None:
    """The batch as :class:`SimplePolygons` when every value is a non-empty one-ring 2D little-endian WKB
    Polygon (no NULLs), else None (take the general shapely path)."""
    if isinstance(wkb, pa.ChunkedArray):
        wkb = wkb.combine_chunks()
    n = len(wkb)
    if n == 0 or wkb.null_count or not (pa.types.is_binary(wkb.type) or pa.types.is_large_binary(wkb.type)):
        return None
    width = np.int64 if pa.types.is_large_binary(wkb.type) else np.int32
    raw = np.frombuffer(wkb.buffers()[1], dtype=width)[wkb.offset : wkb.offset + n + 1].astype(np.int64)
    lengths = np.diff(raw)
    if (lengths < 13 + 64).any():
        return None
    buffer = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)
    starts = raw[:-1]
    head = buffer[starts[:, None] + np.arange(13)]
    words = np.ascontiguousarray(head[:, 1:13]).view("<u4")
    points = words[:, 2].astype(np.int64)
    if not ((head[:, 0] == 1).all() and (words[:, 0] == POLYGON).all() and (words[:, 1] == 1).all()):
        return None
    if not (lengths == 13 + 16 * points).all():
        return None
    data = buffer[raw[0] : raw[-1]].copy()
    offsets = raw - raw[0]
    coord_mask = np.ones(len(data), dtype=bool)
    coord_mask[(offsets[:-1, None] + np.arange(13)).reshape(-1)] = False
    return SimplePolygons(offsets, data, coord_mask, points)


def ring_bounds(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """(minx, miny, maxx, maxy) rows of an (n, points, 2) ring array, like ``shapely.bounds``."""
    return np.column_stack(
        [ring[..., 0].min(axis=1), ring[..., 1].min(axis=1), ring[..., 0].max(axis=1), ring[..., 1].max(axis=1)]
    )


def ring_areas(ring: NDArray[np.float64]) -> NDArray[np.float64]:
    """Planar areas of closed rings given as an (n, points, 2) array, summed as GEOS does (Area::ofRing)."""
    x = ring[:, 1:-1, 0] - ring[:, :1, 0]
    total = np.zeros(len(ring))
    for i in range(x.shape[1]):  # in GEOS's order, so that the sums round the same way
        total += x[:, i] * (ring[:, i, 1] - ring[:, i + 2, 1])
    return np.abs(total / 2.0)


def ring_centroids(ring: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centroids (x, y) of the polygons bounded by closed rings given as an (n, points, 2) array.

    The triangle fan from each ring's first point, summed in the order GEOS's ``Centroid`` uses, so the
    result matches ``shapely.centroid`` of the polygons to the last bits (lon/lat degrees in, degrees out).
    """
    base = ring[:, 0]
    cx = np.zeros(len(ring))
    cy = np.zeros(len(ring))
    area2 = np.zeros(len(ring))
    for i in range(ring.shape[1] - 1):
        p1, p2 = ring[:, i], ring[:, i + 1]
        a2 = (p1[:, 0] - base[:, 0]) * (p2[:, 1] - base[:, 1]) - (p2[:, 0] - base[:, 0]) * (p1[:, 1] - base[:, 1])
        cx += a2 * (base[:, 0] + p1[:, 0] + p2[:, 0])
        cy += a2 * (base[:, 1] + p1[:, 1] + p2[:, 1])
        area2 += a2
    return cx / 3.0 / area2, cy / 3.0 / area2


def metric_area_of(areas: NDArray[np.float64], bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`metric_area` from planar areas (square degrees) and bounds already at hand."""
    return np.asarray(areas * geodetic_area_factor((bounds[:, 1] + bounds[:, 3]) / 2.0))


def read_wkb(wkb: NDArray[np.object_]) -> tuple[GeomArray, NDArray[np.bool_]]:
    """Geometries from WKB values (NULLs stay missing), and a mask of those that GEOS could not read as given.

    Sources hold geometry GEOS refuses to build: polygon rings that are not closed or have fewer than four
    points (GDAL reads them, with a warning), lines of one point. Those are read with shapely's
    ``on_invalid="fix"`` (rings closed, points kept) and marked, so that the caller repairs them like any
    invalid geometry or, when nothing is left (a ring of two points), skips them as invalid and counts them.
    Beyond repair they come back missing.
    """
    try:
        return shapely.from_wkb(wkb), np.zeros(len(wkb), dtype=bool)
    except shapely.errors.GEOSException:
        pass
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    given = np.array([value is not None for value in wkb], dtype=bool)
    unreadable = shapely.is_missing(geoms) & given
    if unreadable.any():
        geoms[unreadable] = shapely.from_wkb(wkb[unreadable], on_invalid="fix")
    return geoms, unreadable


def beyond_repair(
    geoms: GeomArray, keep: NDArray[np.bool_], unreadable: NDArray[np.bool_], polygonal: bool
) -> NDArray[np.bool_]:
    """Mask of the features skipped as invalid rather than as of the wrong geometry type.

    ``keep`` is the mask :func:`as_multipolygons` or :func:`as_kind` returned for ``geoms``; ``unreadable``
    the mask of :func:`read_wkb`; ``polygonal``: whether the target takes polygons, in which case polygons
    with nothing polygonal left after ``make_valid`` (a ring of two distinct points) are invalid too.
    """
    skipped = ~keep & unreadable
    if polygonal:
        skipped |= ~keep & np.isin(shapely.get_type_id(geoms), (POLYGON, MULTIPOLYGON))
    return skipped


def drop_empty(geoms: GeomArray) -> NDArray[np.bool_]:
    """Mask of geometries that are present and not empty."""
    present = ~shapely.is_missing(geoms)
    present[present] = ~shapely.is_empty(geoms[present])
    return present


def _polygon_parts(geom: shapely.Geometry) -> shapely.MultiPolygon | None:
    parts = [p for p in shapely.get_parts(shapely.get_parts(geom)) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return None
    return shapely.MultiPolygon(parts)


def as_multipolygons(
    geoms: GeomArray, fixed: NDArray[np.bool_] | None = None
) -> tuple[GeomArray, NDArray[np.bool_], int]:
    """Valid polygons and multipolygons; others fail the mask (write them with ``ewkb(…, multi=True)``).

    Invalid polygons are repaired with ``make_valid`` (their polygonal parts kept) and counted, as are kept
    ones that :func:`read_wkb` had to fix (``fixed``). Returns (the kept (multi)polygons, keep mask,
    repaired count).
    """
    types = shapely.get_type_id(geoms)
    keep = (types == POLYGON) | (types == MULTIPOLYGON)
    out = geoms.copy()
    valid = np.ones(len(geoms), dtype=bool)
    valid[keep] = shapely.is_valid(geoms[keep])
    repaired = 0
    for i in np.flatnonzero(keep & ~valid):
        parts = _polygon_parts(shapely.make_valid(geoms[i]))
        if parts is None:
            keep[i] = False
            continue
        out[i] = parts
        repaired += 1
    if fixed is not None:
        repaired += int((fixed & keep & valid).sum())
    return out[keep], keep, repaired


def as_kind(
    geoms: GeomArray, expected: str, fixed: NDArray[np.bool_] | None = None
) -> tuple[GeomArray, NDArray[np.bool_], int, int]:
    """Geometries for a facility kind whose geometry is ``point``, ``line`` or ``polygon``.

    Polygons given for a point kind become their representative point (counted as converted); lines keep
    their (multi)linestring; polygons are repaired. Kept geometries that :func:`read_wkb` had to fix
    (``fixed``) count as repaired. Returns (kept, mask, repaired, converted).
    """
    if expected == "polygon":
        kept, mask, repaired = as_multipolygons(geoms, fixed)
        return kept, mask, repaired, 0
    types = shapely.get_type_id(geoms)
    if expected == "line":
        mask = (types == LINESTRING) | (types == MULTILINESTRING)
        return geoms[mask], mask, int((fixed & mask).sum()) if fixed is not None else 0, 0
    mask = (types == POINT) | (types == MULTIPOINT) | (types == POLYGON) | (types == MULTIPOLYGON)
    out = geoms[mask].copy()
    areal = np.isin(shapely.get_type_id(out), (POLYGON, MULTIPOLYGON))
    converted = int(areal.sum())
    if converted:
        out[areal] = shapely.point_on_surface(shapely.make_valid(out[areal]))
    multi = shapely.get_type_id(out) == MULTIPOINT
    if multi.any():
        out[multi] = shapely.centroid(out[multi])
    return out, mask, int((fixed & mask).sum()) if fixed is not None else 0, converted


def geodetic_area_factor(lat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Square metres per square degree of longitude × latitude at latitudes ``lat`` (CGCS2000 ellipsoid).

    ``M · N · cos φ · (π/180)²``: exact in the limit of small polygons (relative error < 1e-5 at block size).
    """
    phi = np.radians(lat)
    s2 = np.sin(phi) ** 2
    w = np.sqrt(1 - _E2 * s2)
    m = _A * (1 - _E2) / w**3
    n = _A / w
    return np.asarray(m * n * np.cos(phi) * (math.pi / 180.0) ** 2)


def metric_area(geoms: GeomArray) -> NDArray[np.float64]:
    """Areas in square metres of EPSG:4490 geometries (lon/lat degrees)."""
    if not len(geoms):
        return np.zeros(0)
    bounds = shapely.bounds(geoms)  # the mid-latitude of the bounding box is plenty for the scale factor
    lat = (bounds[:, 1] + bounds[:, 3]) / 2.0
    return np.asarray(shapely.area(geoms) * geodetic_area_factor(lat))


def centroids(geoms: GeomArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Longitude and latitude (degrees) of the centroids of EPSG:4490 geometries."""
    xy = shapely.get_coordinates(shapely.centroid(geoms))
    return xy[:, 0], xy[:, 1]


def ewkb(geoms: GeomArray, srid: int = cimcrs.CGCS2000, *, multi: bool = False) -> pa.Array:
    """EWKB (little-endian, with SRID) of the geometries as an Arrow binary array, for binary COPY into PostGIS.

    With ``multi``, Polygons are written as one-part MultiPolygons. Both the SRID and the Multi wrapper are
    spliced into shapely's plain WKB with NumPy: far cheaper than setting SRIDs on (or building
    MultiPolygons from) a million shapely objects.
    """
    wkb = pa.array(shapely.to_wkb(geoms, hex=False, byte_order=1), type=pa.large_binary())
    n = len(wkb)
    if n == 0:
        return wkb
    offsets = np.frombuffer(wkb.buffers()[1], dtype=np.int64)[wkb.offset : wkb.offset + n + 1]
    data = np.frombuffer(wkb.buffers()[2], dtype=np.uint8)
    wrap = (shapely.get_type_id(geoms) == POLYGON) if multi else np.zeros(n, dtype=bool)
    # Wrapped rows: 13-byte Multi header + the whole polygon WKB; others: 9-byte header + WKB after byte 5.
    head_len = np.where(wrap, 13, 9)
    head = np.zeros((n, 13), dtype=np.uint8)
    head[:, 0] = 1
    head[:, 1:5] = data[offsets[:-1, None] + np.arange(1, 5)]
    head[wrap, 1:5] = np.frombuffer(np.uint32(MULTIPOLYGON).astype("<u4").tobytes(), dtype=np.uint8)
    head[:, 4] |= 0x20  # SRID flag
    head[:, 5:9] = np.frombuffer(np.uint32(srid).astype("<u4").tobytes(), dtype=np.uint8)
    head[wrap, 9:13] = np.frombuffer(np.uint32(1).astype("<u4").tobytes(), dtype=np.uint8)
    head_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(head_len, out=head_offsets[1:])
    head_bytes = np.ascontiguousarray(head[np.arange(13) < head_len[:, None]])
    heads = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(head_offsets), pa.py_buffer(head_bytes)]
    )
    body = wkb if wrap.all() else pc.if_else(pa.array(wrap), wkb, pc.binary_slice(wkb, 5, 1 << 40))
    return pc.binary_join_element_wise(heads, body, pa.scalar(b"", pa.large_binary()))
