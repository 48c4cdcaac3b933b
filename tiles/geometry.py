"""Vectorised mesh generation in geocentric coordinates (EPSG:4479 ≈ WGS 84 ECEF, metres).

Everything here works on whole arrays of features at once: LOD1 blocks extruded from footprints (walls as
quads from ring edges, roofs by fan or earcut triangulation), tubes along pipe segments, small prisms for
point facilities, and IFC element meshes decoded from PostGIS TIN WKB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mapbox_earcut
import numpy as np
import shapely
from numpy.typing import NDArray

from cim import crs


@dataclass
class Mesh:
    """Triangles in ECEF: ``positions`` (n, 3) float64, ``normals`` (n, 3) float32, ``feature`` (n,) the
    index of the feature each vertex belongs to, ``indices`` (3·t,) counter-clockwise seen from outside."""

    positions: NDArray[np.float64]
    normals: NDArray[np.float32]
    feature: NDArray[np.int64]
    indices: NDArray[np.int64]

    @staticmethod
    def empty() -> Mesh:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64))


def concat(meshes: list[Mesh]) -> Mesh:
    """Concatenate meshes (indices are offset)."""
    meshes = [m for m in meshes if len(m.indices)]
    if not meshes:
        return Mesh.empty()
    offsets = np.cumsum([0] + [len(m.positions) for m in meshes[:-1]])
    return Mesh(
        np.concatenate([m.positions for m in meshes]),
        np.concatenate([m.normals for m in meshes]),
        np.concatenate([m.feature for m in meshes]),
        np.concatenate([m.indices + o for m, o in zip(meshes, offsets, strict=True)]),
    )


def up_vectors(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ellipsoid normals (geodetic up) at lon/lat degrees, (n, 3)."""
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def enu_axes(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """East, north and up unit vectors (each (n, 3)) at lon/lat degrees."""
    lo, la = np.radians(lon), np.radians(lat)
    east = np.column_stack([-np.sin(lo), np.cos(lo), np.zeros_like(lo)])
    north = np.column_stack([-np.sin(la) * np.cos(lo), -np.sin(la) * np.sin(lo), np.cos(la)])
    return east, north, up_vectors(lon, lat)


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


@dataclass
class Rings:
    """Polygons as ragged arrays (the layout of :func:`shapely.to_ragged_array`, with the polygons' features
    given explicitly instead of by a multipolygon offset array, so that sets of rings concatenate): ``coords``
    (n, 2) lon/lat degrees, ring ``r`` is ``coords[ring_off[r]:ring_off[r + 1]]`` (closed), polygon ``p`` is
    rings ``poly_off[p]:poly_off[p + 1]`` (exterior first) and belongs to feature ``poly_feat[p]``."""

    coords: NDArray[np.float64]
    ring_off: NDArray[np.int64]
    poly_off: NDArray[np.int64]
    poly_feat: NDArray[np.int64]

    @staticmethod
    def concat(parts: list[Rings]) -> Rings:
        """The polygons of every part, in order (features keep their numbers)."""
        coords = [p.coords for p in parts]
        ring_off = [np.zeros(1, np.int64)]
        poly_off = [np.zeros(1, np.int64)]
        nc = nr = 0
        for p in parts:
            ring_off.append(p.ring_off[1:] + nc)
            poly_off.append(p.poly_off[1:] + nr)
            nc += len(p.coords)
            nr += len(p.ring_off) - 1
        return Rings(
            np.concatenate(coords) if coords else np.zeros((0, 2)),
            np.concatenate(ring_off),
            np.concatenate(poly_off),
            np.concatenate([p.poly_feat for p in parts]) if parts else np.zeros(0, np.int64),
        )


def rings_of(footprints: NDArray[np.object_]) -> Rings:
    """The polygons of shapely (multi)polygons; a feature that is empty or not polygonal has none."""
    polygonal = np.isin(shapely.get_type_id(footprints), [3, 6]) & ~shapely.is_empty(footprints)
    keep = np.nonzero(polygonal)[0]
    if not len(keep):
        return Rings(np.zeros((0, 2)), np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int64))
    gtype, coords, offsets = shapely.to_ragged_array(footprints[keep])
    if gtype == shapely.GeometryType.POLYGON:
        ring_off, poly_off = offsets
        multi_off = np.arange(len(keep) + 1)
    else:
        ring_off, poly_off, multi_off = offsets
    poly_feat = keep[np.repeat(np.arange(len(keep)), np.diff(multi_off))]
    return Rings(np.asarray(coords[:, :2], np.float64), ring_off.astype(np.int64), poly_off.astype(np.int64), poly_feat)


def _u32(blob: NDArray[np.uint8], at: NDArray[np.int64]) -> NDArray[np.int64]:
    """Little-endian uint32 values at byte positions ``at`` of ``blob`` (positions past the end read 0)."""
    padded = np.r_[blob, np.zeros(4, np.uint8)].astype(np.int64)
    at = np.minimum(at, len(blob))
    return padded[at] | padded[at + 1] << 8 | padded[at + 2] << 16 | padded[at + 3] << 24


def rings_from_wkb(wkbs: list[bytes]) -> Rings:
    """The polygons of ISO WKB (multi)polygons, as :func:`rings_of` of the parsed geometries.

    Hand-written because it is the tiler's hot path: a footprint that is one little-endian 2D polygon with
    one ring (bare or in a multipolygon, what nearly every building is) is read straight from the bytes with
    NumPy, about ten times faster than shapely's parse followed by ``to_ragged_array``; every other
    footprint (holes, several parts, Z, big-endian, anything unexpected) goes through shapely."""
    n = len(wkbs)
    if n == 0:
        return rings_of(np.zeros(0, dtype=object))
    lens = np.fromiter(map(len, wkbs), np.int64, count=n)
    raw = b"".join(wkbs)
    blob = np.frombuffer(raw, np.uint8)
    start = np.r_[0, np.cumsum(lens)[:-1]]
    kind = _u32(blob, start + 1)
    multi = kind == 6
    # Polygon: order, type, rings, points, coordinates; multipolygon: order, type, 1 part, then a polygon.
    poly_at = np.where(multi, start + 9, start)
    head = poly_at + 13
    npts = _u32(blob, poly_at + 9)
    simple = (
        (blob[np.minimum(start, len(blob) - 1)] == 1)
        & ((kind == 3) | (multi & (_u32(blob, start + 5) == 1)))
        & (blob[np.minimum(poly_at, len(blob) - 1)] == 1)
        & (_u32(blob, poly_at + 1) == 3)
        & (_u32(blob, poly_at + 5) == 1)
        & (npts >= 4)
        & (lens == head - start + 16 * npts)
    )
    fast = np.nonzero(simple)[0]
    parts: list[Rings] = []
    if len(fast):
        counts = 2 * npts[fast]
        out_start = np.r_[0, np.cumsum(counts)[:-1]]
        flat = np.empty(int(counts.sum()), np.float64)
        ramp = np.arange(len(flat)) - np.repeat(out_start, counts)
        align = head[fast] % 8
        for k in np.unique(align):
            values = np.frombuffer(raw, "<f8", offset=int(k), count=(len(raw) - int(k)) // 8)
            sel = np.nonzero(np.repeat(align == k, counts))[0]
            first = np.repeat((head[fast] - k) // 8, counts)
            flat[sel] = values[first[sel] + ramp[sel]]
        ring_off = np.r_[0, np.cumsum(npts[fast])].astype(np.int64)
        parts.append(Rings(flat.reshape(-1, 2), ring_off, np.arange(len(fast) + 1, dtype=np.int64), fast))
    slow = np.nonzero(~simple)[0]
    if len(slow):
        other = rings_of(shapely.from_wkb([wkbs[i] for i in slow]))
        other.poly_feat = slow[other.poly_feat]
        parts.append(other)
    return Rings.concat(parts)


def extrude(
    footprints: NDArray[np.object_] | Rings,
    base: NDArray[np.float64],
    top: NDArray[np.float64],
    *,
    height_anomaly: float = 0.0,
) -> Mesh:
    """LOD1 blocks: each (multi)polygon footprint (lon/lat degrees; shapely geometries or their
    :class:`Rings`) extruded from ``base`` to ``top`` (normal heights, metres) as walls and a flat roof (no
    floor). ``feature`` of the result indexes the footprints (``base`` and ``top``).

    Works on the ragged coordinate arrays of all footprints at once; each ring vertex is transformed to ECEF
    twice (at base and top) and shared by the walls and the roof.
    """
    rings = footprints if isinstance(footprints, Rings) else rings_of(footprints)
    if len(rings.poly_feat) == 0:
        return Mesh.empty()
    coords, ring_off, poly_off, poly_feat = rings.coords, rings.ring_off, rings.poly_off, rings.poly_feat
    nrings, npolys = len(ring_off) - 1, len(poly_off) - 1
    coord_ring = np.repeat(np.arange(nrings), np.diff(ring_off))
    ring_poly = np.repeat(np.arange(npolys), np.diff(poly_off))
    ring_feat = poly_feat[ring_poly]
    ring_first = np.zeros(nrings, dtype=bool)
    ring_first[poly_off[:-1][np.diff(poly_off) > 0]] = True  # exterior ring of each polygon comes first
    cfeat = ring_feat[coord_ring]
    bot = crs.geodetic_to_geocentric(coords[:, 0], coords[:, 1], base[cfeat], height_anomaly=height_anomaly)
    # ECEF(λ, φ, h₂) − ECEF(λ, φ, h₁) = (h₂ − h₁) · up(λ, φ) exactly: the tops without a second transform.
    up = up_vectors(coords[:, 0], coords[:, 1])
    tp = bot + (top - base)[cfeat][:, None] * up
    # Walls: one quad per ring edge (a → b), vertices a_top, a_bot, b_bot, b_top: consecutive vertices differ in
    # height only or in plan position only, and one wall ends where the next begins (b_top), which the meshopt
    # codec's byte deltas turn into about 15 % fewer position bytes than a_bot, b_bot, b_top, a_top.
    ia = np.nonzero(coord_ring[:-1] == coord_ring[1:])[0]
    a, b = coords[ia], coords[ia + 1]
    nonzero = (a[:, 0] != b[:, 0]) | (a[:, 1] != b[:, 1])
    ia, a, b = ia[nonzero], a[nonzero], b[nonzero]
    eridx = coord_ring[ia]
    cross = a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]
    signed = np.bincount(eridx, weights=cross, minlength=nrings)
    flip = ((signed > 0) != ring_first)[eridx]  # exterior CCW, holes CW: flip the others
    ne = len(ia)
    wall = np.stack([tp[ia], bot[ia], bot[ia + 1], tp[ia + 1]], axis=1)  # (ne, 4, 3)
    normal = _unit(np.cross(wall[:, 2] - wall[:, 1], wall[:, 0] - wall[:, 1]))
    normal[flip] *= -1
    base_idx = np.arange(ne, dtype=np.int64)[:, None] * 4
    fwd = np.array([0, 1, 2, 0, 2, 3], dtype=np.int64)  # counter-clockwise, each triangle's new vertices in order
    rev = np.array([0, 2, 1, 0, 3, 2], dtype=np.int64)
    tri = np.where(flip[:, None], rev[None, :], fwd[None, :]) + base_idx
    walls = Mesh(
        wall.reshape(-1, 3), np.repeat(normal, 4, axis=0).astype(np.float32), np.repeat(cfeat[ia], 4), tri.ravel()
    )
    return concat([walls, _roofs(coords, coord_ring, ring_poly, poly_feat, tp, up)])


def _roofs(
    coords: NDArray[np.float64],
    coord_ring: NDArray[np.int64],
    ring_poly: NDArray[np.int64],
    poly_feat: NDArray[np.int64],
    top_xyz: NDArray[np.float64],
    up_xyz: NDArray[np.float64],
) -> Mesh:
    # Unique ring vertices (drop each ring's closing point).
    last = np.r_[coord_ring[1:] != coord_ring[:-1], True]
    keep = ~last
    rc, rr, rxyz, up = coords[keep], coord_ring[keep], top_xyz[keep], up_xyz[keep]
    nrings = len(ring_poly)
    npoly = len(poly_feat)
    rings_per_poly = np.bincount(ring_poly, minlength=npoly)
    verts_per_ring = np.bincount(rr, minlength=nrings)
    verts_per_poly = np.bincount(ring_poly, weights=verts_per_ring, minlength=npoly).astype(np.int64)
    poly_start = np.r_[0, np.cumsum(verts_per_poly)[:-1]]
    vpoly = ring_poly[rr]
    # Convex single-ring polygons get a fan, the others earcut.
    nxt = np.arange(len(rc)) + 1
    ring_start = np.r_[0, np.cumsum(verts_per_ring)[:-1]]
    wrap = np.r_[rr[1:] != rr[:-1], True]
    nxt[wrap] = ring_start[rr[wrap]]
    nxt2 = nxt[nxt]
    d1 = rc[nxt] - rc
    d2 = rc[nxt2] - rc[nxt]
    turn = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
    pos_t = np.bincount(vpoly, weights=(turn > 1e-18), minlength=npoly)
    neg_t = np.bincount(vpoly, weights=(turn < -1e-18), minlength=npoly)
    convex = (rings_per_poly == 1) & ((pos_t == 0) | (neg_t == 0)) & (verts_per_poly >= 3)
    tris: list[NDArray[np.int64]] = []
    k = verts_per_poly[convex] - 2
    if k.sum() > 0:
        starts = np.repeat(poly_start[convex], k)
        j = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + 1
        tris.append(np.column_stack([starts, starts + j, starts + j + 1]))
    for p in np.nonzero(~convex & (verts_per_poly >= 3))[0]:
        s = poly_start[p]
        pts = rc[s : s + verts_per_poly[p]]
        ends = np.cumsum(verts_per_ring[ring_poly == p]).astype(np.uint32)
        t = mapbox_earcut.triangulate_float64(pts - pts[0], ends)
        if len(t):
            tris.append(t.reshape(-1, 3).astype(np.int64) + s)
    if not tris:
        return Mesh.empty()
    tri = np.concatenate(tris)
    n = np.cross(rxyz[tri[:, 1]] - rxyz[tri[:, 0]], rxyz[tri[:, 2]] - rxyz[tri[:, 0]])
    down = np.einsum("ij,ij->i", n, up[tri[:, 0]]) < 0
    tri[down] = tri[down][:, [0, 2, 1]]
    return Mesh(rxyz, up.astype(np.float32), poly_feat[vpoly], tri.ravel())


def prisms(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    bottom: NDArray[np.float64],
    top: NDArray[np.float64],
    radius: NDArray[np.float64],
    *,
    sides: int = 6,
    height_anomaly: float = 0.0,
) -> Mesh:
    """Vertical regular prisms (``sides`` faces + a top cap) at points, from ``bottom`` to ``top`` normal
    heights (m), circumradius ``radius`` (m): manholes, lamp posts, hydrants."""
    n = len(lon)
    if n == 0:
        return Mesh.empty()
    centre_b = crs.geodetic_to_geocentric(lon, lat, bottom, height_anomaly=height_anomaly)
    centre_t = crs.geodetic_to_geocentric(lon, lat, top, height_anomaly=height_anomaly)
    east, north, up = enu_axes(lon, lat)
    ang = np.arange(sides) * (2 * np.pi / sides)
    ring = np.cos(ang)[None, :, None] * east[:, None, :] + np.sin(ang)[None, :, None] * north[:, None, :]
    r = radius[:, None, None]
    bot = centre_b[:, None, :] + r * ring  # (n, s, 3)
    tp = centre_t[:, None, :] + r * ring
    nxt = (np.arange(sides) + 1) % sides
    # Side faces: 4 vertices each (flat normals).
    face = np.stack([bot, bot[:, nxt], tp[:, nxt], tp], axis=2)  # (n, s, 4, 3)
    fnorm = ring + ring[:, nxt]
    fnorm = fnorm / np.linalg.norm(fnorm, axis=2, keepdims=True)
    side_pos = face.reshape(-1, 3)
    side_nor = np.repeat(fnorm.reshape(-1, 3), 4, axis=0)
    fb = np.arange(n * sides, dtype=np.int64)[:, None] * 4
    side_idx = (np.array([0, 1, 2, 0, 2, 3])[None, :] + fb).ravel()
    side = Mesh(side_pos, side_nor.astype(np.float32), np.repeat(np.arange(n), sides * 4), side_idx)
    cb = np.arange(n, dtype=np.int64)[:, None] * sides
    j = np.arange(1, sides - 1)
    cap_idx = np.stack([np.zeros_like(j), j, j + 1], axis=1)[None, :, :] + cb[:, :, None]
    cap = Mesh(
        tp.reshape(-1, 3),
        np.repeat(up, sides, axis=0).astype(np.float32),
        np.repeat(np.arange(n), sides),
        cap_idx.ravel(),
    )
    return concat([side, cap])


def unit_prism(sides: int = 8) -> Mesh:
    """A regular prism in a local Z-up frame (x east, y north, z up; metres): circumradius 1, from z = 0 to
    z = 1, ``sides`` side faces with flat normals and a top cap: the template that instanced point
    facilities scale by (radius, radius, height). Same faces as :func:`prisms`; ``feature`` is all 0."""
    ang = np.arange(sides) * (2 * np.pi / sides)
    ring = np.column_stack([np.cos(ang), np.sin(ang), np.zeros(sides)])
    nxt = (np.arange(sides) + 1) % sides
    up = np.array([0.0, 0.0, 1.0])
    face = np.stack([ring, ring[nxt], ring[nxt] + up, ring + up], axis=1)  # (s, 4, 3)
    fnorm = _unit(ring + ring[nxt])
    side_idx = (np.array([0, 1, 2, 0, 2, 3])[None, :] + 4 * np.arange(sides)[:, None]).ravel()
    j = np.arange(1, sides - 1)
    cap_idx = (np.stack([np.zeros_like(j), j, j + 1], axis=1) + 4 * sides).ravel()
    positions = np.concatenate([face.reshape(-1, 3), ring + up])
    normals = np.concatenate([np.repeat(fnorm, 4, axis=0), np.tile(up, (sides, 1))]).astype(np.float32)
    return Mesh(positions, normals, np.zeros(len(positions), np.int64), np.r_[side_idx, cap_idx].astype(np.int64))


def rotation_quaternions(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Unit quaternions (x, y, z, w) of proper rotation matrices ``m`` (k, 3, 3) close to the identity
    (trace > 0, e.g. the rotation between two east-north-up frames less than 90° apart)."""
    w = np.sqrt(np.maximum(1.0 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], 1e-12)) / 2
    q = np.column_stack(
        [
            (m[:, 2, 1] - m[:, 1, 2]) / (4 * w),
            (m[:, 0, 2] - m[:, 2, 0]) / (4 * w),
            (m[:, 1, 0] - m[:, 0, 1]) / (4 * w),
            w,
        ]
    )
    out: NDArray[np.float64] = q / np.linalg.norm(q, axis=1, keepdims=True)
    return out


def tubes(
    start: NDArray[np.float64],
    end: NDArray[np.float64],
    radius: NDArray[np.float64],
    feature: NDArray[np.int64],
    *,
    sides: int = 8,
) -> Mesh:
    """Open tubes along segments ``start``→``end`` (ECEF, (n, 3)) of radius ``radius`` (m)."""
    n = len(start)
    if n == 0:
        return Mesh.empty()
    d = _unit(end - start)
    up = _unit(start)
    u = np.cross(d, up)
    bad = np.linalg.norm(u, axis=1) < 1e-6
    u[bad] = np.cross(d[bad], np.array([1.0, 0.0, 0.0]))
    u = _unit(u)
    v = np.cross(u, d)
    ang = np.arange(sides) * (2 * np.pi / sides)
    ring = np.cos(ang)[None, :, None] * u[:, None, :] + np.sin(ang)[None, :, None] * v[:, None, :]  # (n, s, 3)
    r = radius[:, None, None]
    a = start[:, None, :] + r * ring
    b = end[:, None, :] + r * ring
    pos = np.concatenate([a, b], axis=1).reshape(-1, 3)  # per segment: s at start, s at end
    nor = np.concatenate([ring, ring], axis=1).reshape(-1, 3)
    k = np.arange(sides)
    k1 = (k + 1) % sides
    quad = np.stack([k, k1, sides + k1, k, sides + k1, sides + k], axis=1).ravel()
    idx = (quad[None, :] + (np.arange(n, dtype=np.int64) * 2 * sides)[:, None]).ravel()
    return Mesh(pos, nor.astype(np.float32), np.repeat(feature, 2 * sides), idx)


def triangle_soup(tri: NDArray[np.float64], feature: NDArray[np.int64]) -> Mesh:
    """Flat-shaded mesh of triangles (t, 3, 3) ECEF; ``feature`` has one value per triangle."""
    t = len(tri)
    if t == 0:
        return Mesh.empty()
    n = _unit(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
    return Mesh(
        tri.reshape(-1, 3),
        np.repeat(n, 3, axis=0).astype(np.float32),
        np.repeat(feature, 3),
        np.arange(3 * t, dtype=np.int64),
    )


def ribbons(
    lines: NDArray[np.object_],
    half_width: NDArray[np.float64],
    heights: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]],
    *,
    max_segment_deg: float = 0.0003,
    height_anomaly: float = 0.0,
) -> Mesh:
    """Flat ribbons along (multi)line strings (EPSG:4490 degrees) of ``half_width`` metres each side, their
    vertices at ``heights(lon, lat)`` (normal heights, m): roads and outlines draped on the terrain.

    Lines are densified to ``max_segment_deg`` so that the ribbon follows the ground between vertices;
    interior vertices are mitred (the offset along the bisector, at most twice the half width) so that
    consecutive segments join without gaps. Normals point up; ``feature`` is the index of the line.
    """
    parts, part_line = shapely.get_parts(shapely.segmentize(lines, max_segment_deg), return_index=True)
    coords, cpart = shapely.get_coordinates(parts, return_index=True)
    if len(coords) < 2:
        return Mesh.empty()
    lon, lat = coords[:, 0], coords[:, 1]
    pos = crs.geodetic_to_geocentric(lon, lat, heights(lon, lat), height_anomaly=height_anomaly)
    east, north, up = enu_axes(lon, lat)
    same = cpart[:-1] == cpart[1:]  # segment i → i + 1 lies in one part
    step = pos[1:] - pos[:-1]
    d = np.column_stack([np.einsum("ij,ij->i", step, east[:-1]), np.einsum("ij,ij->i", step, north[:-1])])
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    left = np.column_stack([-d[:, 1], d[:, 0]]) * same[:, None]  # left normal of each segment (0: no segment)
    incoming = np.vstack([np.zeros((1, 2)), left])
    outgoing = np.vstack([left, np.zeros((1, 2))])
    miter = incoming + outgoing
    norm = np.linalg.norm(miter, axis=1, keepdims=True)
    ref = np.where(np.linalg.norm(outgoing, axis=1, keepdims=True) > 0, outgoing, incoming)
    miter = np.where(norm > 1e-6, miter / np.maximum(norm, 1e-12), ref)
    scale = 1.0 / np.maximum(np.einsum("ij,ij->i", miter, ref), 0.5)
    feature = part_line[cpart]
    off = (miter * (scale * half_width[feature])[:, None]).T
    offset = east * off[0][:, None] + north * off[1][:, None]
    positions = np.stack([pos + offset, pos - offset], axis=1).reshape(-1, 3)  # L0, R0, L1, R1, …
    seg = np.nonzero(same)[0] * 2
    tri = np.stack([seg + 1, seg + 3, seg + 2, seg + 1, seg + 2, seg], axis=1).ravel().astype(np.int64)
    normals = np.repeat(up, 2, axis=0).astype(np.float32)
    return Mesh(positions, normals, np.repeat(feature, 2).astype(np.int64), tri)
