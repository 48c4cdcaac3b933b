"""Rendering one tile: features (column arrays) → meshes → one .glb with metadata.

This is the unit of parallel work: :func:`render_tile` takes a picklable :class:`TileJob` and returns a
:class:`TileResult`, so it runs the same in-process, in a ``ProcessPoolExecutor`` or on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from cim import crs
from cim.db.tin import tin_triangles
from cim.dem import sample_heights
from cim.vocabulary import PIPE_KINDS
from tiles import geometry as geo
from tiles.glb import Instances, Primitive, PropertyTable, write_glb
from tiles.schema import (
    DEFAULT_BUILDING_COLOR,
    DEFAULT_ELEMENT_COLOR,
    DEFAULT_FACILITY_COLOR,
    ELEMENT_COLORS,
    FACILITY_COLORS,
    USE_COLORS,
    rgba_table,
)
from tiles.source import Columns, fetch_buildings

REGION_MARGIN_RAD = 2e-8  # ≈ 0.13 m: room for float32 rounding of positions
REGION_MARGIN_M = 0.5

POINT_STYLE: dict[str, tuple[float, float, float]] = {
    # kind: (radius m, height above ground m (negative: shaft below ground), sides)
    "hydrant": (0.15, 0.8, 8),
    "street_lamp": (0.1, 8.0, 6),
}
DEFAULT_POINT_STYLE = (1.0, 3.0, 6)
INSTANCE_MIN = 2
"""Point facilities of one kind that occur at least this often in a tile are drawn as one instanced prism
(EXT_mesh_gpu_instancing); rarer ones are merged into the tile's facility mesh."""
POINT_SIDES = 8


@dataclass
class _PointGroup:
    """Point facilities of one kind drawn by instancing: feature index, lon/lat (degrees), bottom/top
    (normal heights, m) and radius (m) of each prism."""

    kind: str
    feature: NDArray[np.int64]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    bottom: NDArray[np.float64]
    top: NDArray[np.float64]
    radius: NDArray[np.float64]


@dataclass(frozen=True)
class BuildingSource:
    """Where a worker reads its buildings: a libpq URL and the snapshot exported by the build's transaction
    (so every worker sees exactly the same database state as the partition did)."""

    url: str
    snapshot: str


_CONNECTIONS: dict[tuple[int, str], Any] = {}
"""One connection per (process, database) reused across tiles; keyed by pid so forked workers never share
their parent's socket."""


def close_connections() -> None:
    """Close the connections this process opened to read buildings."""
    pid = os.getpid()
    for key in [k for k in _CONNECTIONS if k[0] == pid]:
        _CONNECTIONS.pop(key).close()


def _fetch_buildings(source: BuildingSource, ids: NDArray[np.int64]) -> Columns:
    import psycopg
    from psycopg import sql

    key = (os.getpid(), source.url)
    conn = _CONNECTIONS.get(key)
    if conn is None or conn.closed:
        conn = psycopg.connect(source.url)
        _CONNECTIONS[key] = conn
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(source.snapshot)))
        return fetch_buildings(conn, ids)
    finally:
        conn.rollback()


@dataclass
class TileJob:
    """Everything one tile needs: its features (or the ids of its buildings and where to read them) and how
    to encode them."""

    key: str
    buildings: Columns | None = None
    building_ids: NDArray[np.int64] | None = None
    source: BuildingSource | None = None
    simplified: bool = False
    elements: Columns | None = None
    facilities: Columns | None = None
    dem_path: str | None = None
    height_anomaly: float = 0.0
    compress: str = "none"


@dataclass
class TileContent:
    """One .glb of a tile: the feature class it holds, its bytes, SHA-256 and region."""

    layer: str
    glb: bytes
    sha256: str
    region: list[float]


@dataclass
class TileResult:
    """An encoded tile: .glb bytes, its SHA-256, the content frame (4×4 ENU→ECEF matrix, metres) and the
    content region (radians, ellipsoidal metres)."""

    key: str
    contents: list[TileContent]
    matrix: NDArray[np.float64]
    region: list[float]
    counts: dict[str, int] = field(default_factory=dict)


class _Bounds:
    def __init__(self) -> None:
        self.lo = np.array([np.inf, np.inf, np.inf])
        self.hi = -self.lo

    def add(self, lon: NDArray[np.float64], lat: NDArray[np.float64], h: NDArray[np.float64]) -> None:
        if len(lon):
            self.lo = np.minimum(self.lo, [np.min(lon), np.min(lat), np.min(h)])
            self.hi = np.maximum(self.hi, [np.max(lon), np.max(lat), np.max(h)])

    def add_ecef(self, xyz: NDArray[np.float64], height_anomaly: float) -> None:
        if len(xyz):
            lon, lat, h = crs.geocentric_to_geodetic(xyz, height_anomaly=height_anomaly)
            self.add(lon, lat, h)


def _ground(dem_path: str | None, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
    if dem_path is None or len(lon) == 0:
        return np.zeros(len(lon))
    h = sample_heights(Path(dem_path), lon, lat)
    return np.where(np.isfinite(h), h, 0.0)


def _buildings(job: TileJob, bounds: _Bounds) -> tuple[geo.Mesh, PropertyTable, NDArray[np.uint8]]:
    b = job.buildings
    assert b is not None
    geoms = shapely.from_wkb(b["wkb"])
    if job.simplified:
        env = shapely.oriented_envelope(geoms)
        ok = shapely.get_type_id(env) == 3
        geoms = np.where(ok, env, geoms)
        xmin, ymin, xmax, ymax = shapely.bounds(geoms).T
    else:
        xmin, ymin, xmax, ymax = b["xmin"], b["ymin"], b["xmax"], b["ymax"]
    base = b["base"]
    top = base + np.maximum(b["height"], 0.1)
    bounds.add(np.r_[xmin, xmax], np.r_[ymin, ymax], np.r_[base, top])
    mesh = geo.extrude(geoms, base, top, height_anomaly=job.height_anomaly)
    table = PropertyTable(
        "building",
        len(b),
        {
            "building_id": b["id"],
            "name": b["name"],
            "use": b["use"],
            "height": b["height"],
            "storeys": b["storeys"],
            "year_built": b["year_built"],
            "safety_class": b["safety_class"],
            "cim_level": b["cim_level"],
        },
    )
    return mesh, table, rgba_table(list(b["use"]), USE_COLORS, DEFAULT_BUILDING_COLOR)


def _elements(job: TileJob, bounds: _Bounds) -> tuple[geo.Mesh, PropertyTable, NDArray[np.uint8]]:
    e = job.elements
    assert e is not None
    tris = [tin_triangles(bytes(w)) for w in e["wkb"]]
    counts = np.array([len(t) for t in tris], dtype=np.int64)
    allt = np.concatenate(tris) if tris else np.zeros((0, 3, 3))
    mesh = geo.triangle_soup(allt, np.repeat(np.arange(len(e)), counts))
    bounds.add_ecef(mesh.positions, job.height_anomaly)
    colors = rgba_table(list(e["ifc_class"]), ELEMENT_COLORS, DEFAULT_ELEMENT_COLOR)
    for i, c in enumerate(e["color"]):
        if isinstance(c, list | tuple) and len(c) >= 3:
            rgba = [*c[:3], c[3] if len(c) > 3 else 1.0]
            colors[i] = np.clip(np.rint(np.asarray(rgba, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    table = PropertyTable(
        "element",
        len(e),
        {
            "global_id": e["global_id"],
            "ifc_class": e["ifc_class"],
            "name": e["name"],
            "storey": e["storey"],
            "building_id": e["building_id"],
        },
    )
    return mesh, table, colors


def _facilities(
    job: TileJob, bounds: _Bounds, groups: list[_PointGroup] | None = None
) -> tuple[geo.Mesh, PropertyTable, NDArray[np.uint8]]:
    """Facility meshes; when ``groups`` is given, repeated point facilities are appended to it (to be drawn
    by instancing) instead of being merged into the mesh."""
    f = job.facilities
    assert f is not None
    geoms = shapely.from_wkb(f["wkb"])
    kinds = np.asarray(f["kind"], dtype=object)
    types = shapely.get_type_id(geoms)
    meshes: list[geo.Mesh] = []
    zeta = job.height_anomaly
    # Pipes: tubes along each segment, axis at ground − depth (or the invert + radius), always below ground.
    is_pipe = np.isin(kinds, PIPE_KINDS) & np.isin(types, [1, 2, 5])
    pidx = np.nonzero(is_pipe)[0]
    if len(pidx):
        parts, part_f = shapely.get_parts(geoms[pidx], return_index=True)
        coords, cpart = shapely.get_coordinates(parts, return_index=True)
        fidx = pidx[part_f[cpart]]
        ground = _ground(job.dem_path, coords[:, 0], coords[:, 1])
        radius = np.where(np.isfinite(f["diameter_mm"][fidx]), f["diameter_mm"][fidx] / 2000.0, 0.15)
        radius = np.clip(radius, 0.02, 3.0)
        depth = f["depth_m"][fidx]
        # fraction along each part by vertex order, for invert interpolation
        start = np.r_[0, np.nonzero(cpart[1:] != cpart[:-1])[0] + 1]
        n_in = np.diff(np.r_[start, len(cpart)])
        pos_in = np.arange(len(cpart)) - np.repeat(start, n_in)
        frac = pos_in / np.maximum(np.repeat(n_in, n_in) - 1, 1)
        inv = f["invert_start"][fidx] * (1 - frac) + f["invert_end"][fidx] * frac
        axis = np.where(np.isfinite(depth), ground - depth, np.where(np.isfinite(inv), inv + radius, ground - 1.5))
        axis = np.minimum(axis, ground - radius - 0.1)
        xyz = crs.geodetic_to_geocentric(coords[:, 0], coords[:, 1], axis, height_anomaly=zeta)
        seg = np.nonzero(cpart[:-1] == cpart[1:])[0]
        meshes.append(geo.tubes(xyz[seg], xyz[seg + 1], radius[seg], fidx[seg]))
    # Point facilities: prisms (manholes as shafts below ground, lamps and hydrants above).
    pt = np.nonzero(types == 0)[0]
    if len(pt):
        lon, lat = shapely.get_x(geoms[pt]), shapely.get_y(geoms[pt])
        ground = _ground(job.dem_path, lon, lat)
        style = np.array([POINT_STYLE.get(k, DEFAULT_POINT_STYLE) for k in kinds[pt]], dtype=np.float64)
        is_manhole = kinds[pt] == "manhole"
        depth = np.where(np.isfinite(f["depth_m"][pt]), f["depth_m"][pt], 2.0)
        bottom = np.where(is_manhole, ground - np.maximum(depth, 0.5), ground)
        top = np.where(is_manhole, ground - 0.05, ground + style[:, 1])
        radius = np.where(is_manhole, 0.5, style[:, 0])
        m = geo.prisms(lon, lat, bottom, top, radius, sides=POINT_SIDES, height_anomaly=zeta)
        bounds.add_ecef(m.positions, zeta)
        instanced = np.zeros(len(pt), dtype=bool)
        if groups is not None:
            kinds_pt = kinds[pt].astype(str)
            names, counts = np.unique(kinds_pt, return_counts=True)
            for kind in names[counts >= INSTANCE_MIN]:
                sel = kinds_pt == kind
                instanced |= sel
                groups.append(_PointGroup(str(kind), pt[sel], lon[sel], lat[sel], bottom[sel], top[sel], radius[sel]))
        keep = ~instanced[m.feature]  # per vertex; a prism's triangles use its own vertices only
        tri = m.indices.reshape(-1, 3)
        remap = np.cumsum(keep) - 1
        tri = remap[tri[keep[tri[:, 0]]]]
        meshes.append(geo.Mesh(m.positions[keep], m.normals[keep], pt[m.feature[keep]], tri.ravel()))
    # Areas (parks, water, shelters…): thin slabs on the ground.
    poly = np.nonzero(np.isin(types, [3, 6]))[0]
    if len(poly):
        ground = _ground(job.dem_path, f["px"][poly], f["py"][poly])
        m = geo.extrude(geoms[poly], ground + 0.05, ground + 0.3, height_anomaly=zeta)
        m.feature = poly[m.feature]
        meshes.append(m)
    mesh = geo.concat(meshes)
    bounds.add_ecef(mesh.positions, zeta)
    table = PropertyTable("facility", len(f), {"facility_id": f["id"], "kind": list(f["kind"]), "name": f["name"]})
    return mesh, table, rgba_table(list(f["kind"]), FACILITY_COLORS, DEFAULT_FACILITY_COLOR)


def _instances(
    g: _PointGroup, colors: NDArray[np.uint8], feature_count: int, matrix: NDArray[np.float64], zeta: float
) -> Instances:
    """One instanced prism for a group of point facilities, placed in the tile frame ``matrix`` (ENU→ECEF):
    translation = bottom centre, rotation = the facility's own east-north-up frame seen from the tile frame
    (so posts stay plumb across the tile), scale = (radius, radius, top − bottom)."""
    template = geo.unit_prism(POINT_SIDES)
    centre, rot = matrix[:3, 3], matrix[:3, :3]
    base = crs.geodetic_to_geocentric(g.lon, g.lat, g.bottom, height_anomaly=zeta)
    east, north, up = geo.enu_axes(g.lon, g.lat)
    local = np.stack([east, north, up], axis=2)  # (k, 3, 3): columns = the facility's ENU axes in ECEF
    return Instances(
        positions=template.positions,
        normals=template.normals,
        colors=np.repeat(colors[g.feature[:1]], len(template.positions), axis=0),
        indices=template.indices,
        translations=(base - centre) @ rot,
        rotations=geo.rotation_quaternions(np.einsum("ji,kjl->kil", rot, local)),
        scales=np.column_stack([g.radius, g.radius, np.maximum(g.top - g.bottom, 0.01)]),
        feature_ids=g.feature,
        table=0,
        feature_count=feature_count,
    )


def _feature_major(mesh: geo.Mesh) -> geo.Mesh:
    """Reorder vertices and triangles feature by feature: locality that the meshopt codecs turn into bytes."""
    order = np.argsort(mesh.feature, kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    tri = remap[mesh.indices].reshape(-1, 3)
    tri = tri[np.argsort(tri.min(axis=1), kind="stable")]
    return geo.Mesh(mesh.positions[order], mesh.normals[order], mesh.feature[order], tri.ravel())


def _region(b: _Bounds, zeta: float) -> list[float]:
    return [
        float(np.radians(b.lo[0])) - REGION_MARGIN_RAD,
        float(np.radians(b.lo[1])) - REGION_MARGIN_RAD,
        float(np.radians(b.hi[0])) + REGION_MARGIN_RAD,
        float(np.radians(b.hi[1])) + REGION_MARGIN_RAD,
        float(b.lo[2] + zeta) - REGION_MARGIN_M,
        float(b.hi[2] + zeta) + REGION_MARGIN_M,
    ]


def render_tile(job: TileJob) -> TileResult:
    """Build the meshes of one tile and encode them: one .glb per feature class (buildings, elements,
    facilities), each with a single property table (CesiumJS picks and styles one property table per model).
    Positions are in the tile's east-north-up frame at the centre of all its contents."""
    if job.buildings is None and job.building_ids is not None and job.source is not None:
        job.buildings = _fetch_buildings(job.source, job.building_ids)
    parts: list[tuple[str, _Bounds, tuple[geo.Mesh, PropertyTable, NDArray[np.uint8]]]] = []
    counts: dict[str, int] = {}
    groups: list[_PointGroup] = []
    for name, cols, fn in (
        ("buildings", job.buildings, _buildings),
        ("elements", job.elements, _elements),
        ("facilities", job.facilities, partial(_facilities, groups=groups)),
    ):
        if cols is not None and len(cols):
            b = _Bounds()
            part = fn(job, b)
            if len(part[0].indices) or (name == "facilities" and groups):
                parts.append((name, b, part))
                counts[name] = len(cols)
    if not parts:
        raise ValueError(f"tile {job.key} has no geometry")
    lo = np.min([b.lo for _, b, _ in parts], axis=0)
    hi = np.max([b.hi for _, b, _ in parts], axis=0)
    zeta = job.height_anomaly
    # Tile frame: east-north-up at the centre of the contents (the tile transform), so that a wall's
    # bottom and top vertices differ in one coordinate only, which the meshopt codec rewards.
    matrix = crs.enu_to_ecef_matrix((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2, height_anomaly=zeta)
    matrix[:3, 3] = np.round(matrix[:3, 3], 3)
    centre, rot = matrix[:3, 3], matrix[:3, :3]
    contents: list[TileContent] = []
    for name, bounds, (mesh, table, colors) in parts:
        prims: list[Primitive] = []
        if len(mesh.indices):
            mesh = _feature_major(mesh)
            prims.append(
                Primitive(
                    positions=(mesh.positions - centre) @ rot,
                    normals=(mesh.normals.astype(np.float64) @ rot).astype(np.float32),
                    colors=colors[mesh.feature],
                    feature_ids=mesh.feature,
                    indices=mesh.indices,
                    table=0,
                    feature_count=table.count,
                )
            )
        instances = [_instances(g, colors, table.count, matrix, zeta) for g in groups] if name == "facilities" else []
        glb = write_glb(prims, [table], compress=job.compress, instances=instances)
        contents.append(TileContent(name, glb, hashlib.sha256(glb).hexdigest(), _region(bounds, zeta)))
    whole = _Bounds()
    whole.lo, whole.hi = lo, hi
    return TileResult(job.key, contents, matrix, _region(whole, zeta), counts)
