"""Built-in tile class ``facilities``: municipal facilities drawn as solids (pipes, points, areas).

Pipes are tubes below ground, manholes shafts, lamps and hydrants small prisms (repeated ones instanced with
``EXT_mesh_gpu_instancing``), other areas (shelters, bridges…) thin slabs on the ground. Line facilities that
are not pipes (roads, greenways…) belong to the ``roads`` class (:mod:`tiles.classes.lines`), water bodies and
green spaces to the ``areas`` class (:mod:`tiles.classes.areas`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim import crs
from cim.vocabulary import FACILITY_KINDS, PIPE_KINDS
from tiles import geometry as geo
from tiles.classes import base, register
from tiles.classes.areas import AREA_KINDS, is_area
from tiles.classes.base import Bounds, LegendEntry, RenderContext, Rendered, ground
from tiles.glb import Instances, PropertyTable
from tiles.source import BBox, Columns, read_facilities

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


def _facilities(f: Columns, ctx: RenderContext, bounds: Bounds, groups: list[_PointGroup]) -> geo.Mesh:
    """Facility meshes; repeated point facilities are appended to ``groups`` (to be drawn by instancing)
    instead of being merged into the mesh."""
    geoms = shapely.from_wkb(f["wkb"])
    kinds = np.asarray(f["kind"], dtype=object)
    types = shapely.get_type_id(geoms)
    meshes: list[geo.Mesh] = []
    zeta = ctx.height_anomaly
    # Pipes: tubes along each segment, axis at ground − depth (or the invert + radius), always below ground.
    is_pipe = np.isin(kinds, PIPE_KINDS) & np.isin(types, [1, 2, 5])
    pidx = np.nonzero(is_pipe)[0]
    if len(pidx):
        parts, part_f = shapely.get_parts(geoms[pidx], return_index=True)
        coords, cpart = shapely.get_coordinates(parts, return_index=True)
        fidx = pidx[part_f[cpart]]
        gnd = ground(ctx.dem_path, coords[:, 0], coords[:, 1])
        radius = np.where(np.isfinite(f["diameter_mm"][fidx]), f["diameter_mm"][fidx] / 2000.0, 0.15)
        radius = np.clip(radius, 0.02, 3.0)
        depth = f["depth_m"][fidx]
        # fraction along each part by vertex order, for invert interpolation
        start = np.r_[0, np.nonzero(cpart[1:] != cpart[:-1])[0] + 1]
        n_in = np.diff(np.r_[start, len(cpart)])
        pos_in = np.arange(len(cpart)) - np.repeat(start, n_in)
        frac = pos_in / np.maximum(np.repeat(n_in, n_in) - 1, 1)
        inv = f["invert_start"][fidx] * (1 - frac) + f["invert_end"][fidx] * frac
        axis = np.where(np.isfinite(depth), gnd - depth, np.where(np.isfinite(inv), inv + radius, gnd - 1.5))
        axis = np.minimum(axis, gnd - radius - 0.1)
        xyz = crs.geodetic_to_geocentric(coords[:, 0], coords[:, 1], axis, height_anomaly=zeta)
        seg = np.nonzero(cpart[:-1] == cpart[1:])[0]
        meshes.append(geo.tubes(xyz[seg], xyz[seg + 1], radius[seg], fidx[seg]))
    # Point facilities: prisms (manholes as shafts below ground, lamps and hydrants above).
    pt = np.nonzero(types == 0)[0]
    if len(pt):
        lon, lat = shapely.get_x(geoms[pt]), shapely.get_y(geoms[pt])
        gnd = ground(ctx.dem_path, lon, lat)
        style = np.array([POINT_STYLE.get(k, DEFAULT_POINT_STYLE) for k in kinds[pt]], dtype=np.float64)
        is_manhole = kinds[pt] == "manhole"
        depth = np.where(np.isfinite(f["depth_m"][pt]), f["depth_m"][pt], 2.0)
        bottom = np.where(is_manhole, gnd - np.maximum(depth, 0.5), gnd)
        top = np.where(is_manhole, gnd - 0.05, gnd + style[:, 1])
        radius = np.where(is_manhole, 0.5, style[:, 0])
        m = geo.prisms(lon, lat, bottom, top, radius, sides=POINT_SIDES, height_anomaly=zeta)
        bounds.add_ecef(m.positions, zeta)
        instanced = np.zeros(len(pt), dtype=bool)
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
    # Other areas (shelters, bridges…; water and green are the areas class's): thin slabs on the ground.
    poly = np.nonzero(np.isin(types, [3, 6]))[0]
    if len(poly):
        gnd = ground(ctx.dem_path, f["px"][poly], f["py"][poly])
        m = geo.extrude(geoms[poly], gnd + 0.05, gnd + 0.3, height_anomaly=zeta)
        m.feature = poly[m.feature]
        meshes.append(m)
    mesh = geo.concat(meshes)
    bounds.add_ecef(mesh.positions, zeta)
    return mesh


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


class Facilities(base.FacilityTileClass):
    """Municipal facilities other than non-pipe lines, coloured by kind; one ``facility`` property table."""

    layer = "facilities"
    metadata_class = "facility"
    title = "Municipal facility"
    zh = "市政设施"

    def legend(self) -> list[LegendEntry]:
        drawn_here = [k for k, v in FACILITY_KINDS.items() if v.geometry != "line" or k in PIPE_KINDS]
        return self.kind_legend(k for k in drawn_here if k not in AREA_KINDS)

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        cols = read_facilities(conn, bbox, lines=False)
        return cols.take(np.nonzero(~is_area(list(cols["kind"]), list(cols["wkb"])))[0])

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        bounds = Bounds()
        groups: list[_PointGroup] = []
        mesh = _facilities(cols, ctx, bounds, groups)
        n = len(cols)
        table = PropertyTable(
            self.metadata_class, n, {"facility_id": cols["id"], "kind": cols["kind"], "name": cols["name"]}
        )
        colors = self.kind_colors(cols["kind"])
        zeta = ctx.height_anomaly

        def instances(matrix: NDArray[np.float64]) -> list[Instances]:
            return [_instances(g, colors, n, matrix, zeta) for g in groups]

        return Rendered(mesh, table, colors, bounds, instances if groups else None)


register(Facilities())
