"""Built-in tile classes ``buildings`` (LOD1 blocks) and ``elements`` (IFC element meshes of BIM buildings)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim import crs
from cim.db.tin import tin_triangles
from cim.vocabulary import BUILDING_USES, DEFAULT_BUILDING_COLOR, SAFETY_CLASSES
from tiles import geometry as geo
from tiles import partition
from tiles.classes import register
from tiles.classes.base import STRING, Bounds, LegendEntry, RenderContext, Rendered, TileClass, css, scalar
from tiles.glb import PropertyTable
from tiles.schema import (
    DEFAULT_ELEMENT_COLOR,
    ELEMENT_COLORS,
    USE_COLORS,
    enum_property,
    enum_type,
    rgba_table,
)
from tiles.source import (
    BBox,
    CellCounts,
    Columns,
    count_building_cells,
    fetch_buildings_in_snapshot,
    read_building_points,
    read_elements,
)

USE_RANK = {use: i for i, use in enumerate(BUILDING_USES)}

ELEMENT_TRIANGLES_PER_UNIT = 40.0
"""An IFC element weighs 1 + triangles / this in the partition (a LOD1 building weighs 1)."""


class Buildings(TileClass):
    """LOD1 blocks extruded from footprints, coloured by use; parents carry simplified blocks (oriented
    envelopes) of their largest buildings. Workers read the full rows themselves (by id, in the snapshot)."""

    layer = "buildings"
    metadata_class = "building"
    title = "Building"
    zh = "建筑"
    id_property = "building_id"
    legend_property = "use"
    in_parents = True
    enums: ClassVar[dict[str, dict[str, Any]]] = {
        "building_use": enum_type("Building use", list(BUILDING_USES)),
        "safety_class": enum_type("Housing safety class", list(SAFETY_CLASSES)),
    }
    properties: ClassVar[dict[str, dict[str, Any]]] = {
        "building_id": scalar("INT64", required=True),
        "name": STRING,
        "use": enum_property("building_use"),
        "height": scalar("FLOAT64", "metres above base"),
        "storeys": scalar("INT32", no_data=-1),
        "year_built": scalar("INT32", no_data=-1),
        "safety_class": enum_property("safety_class", "A–D, or none"),
        "cim_level": scalar("INT32", no_data=-1),
    }

    def legend(self) -> list[LegendEntry]:
        return [LegendEntry.of(k, v) for k, v in BUILDING_USES.items()]

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        return read_building_points(conn, bbox)

    def cell_counts(self, conn: Connection, level: int) -> CellCounts | None:
        return count_building_cells(conn, level)

    def read_ids(self, conn: Connection, ids: NDArray[np.int64]) -> Columns | None:
        return read_building_points(conn, ids=ids)

    def points(self, cols: Columns, height_anomaly: float) -> tuple[NDArray[np.float64], ...]:
        return cols["cx"], cols["cy"], np.ones(len(cols))

    def importance(self, cols: Columns) -> NDArray[np.float64]:
        return np.asarray(cols["importance"], np.float64)

    def ship(self, cols: Columns) -> Columns:
        """Only the ids: the worker reads the rows itself."""
        return Columns({"id": cols["id"]})

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        assert ctx.source is not None, "buildings are read by id in the build's snapshot"
        ids = np.sort(np.asarray(cols["id"], np.int64))
        # A leaf holds every building of its cell: read them by the cell (see fetch_buildings_in_cell).
        cell = None if ctx.simplified or ctx.key == "root" else partition.cell_bounds(*map(int, ctx.key.split("/")))
        b = by_use(fetch_buildings_in_snapshot(ctx.source, ids, cell))
        footprints: geo.Rings | NDArray[np.object_]
        if ctx.simplified:
            geoms = shapely.from_wkb(b["wkb"])
            env = shapely.oriented_envelope(geoms)
            ok = shapely.get_type_id(env) == 3
            footprints = np.where(ok, env, geoms)
            xmin, ymin, xmax, ymax = shapely.bounds(footprints).T
            lon, lat = np.r_[xmin, xmax], np.r_[ymin, ymax]
        else:
            footprints = geo.rings_from_wkb(b["wkb"])
            lon, lat = footprints.coords.T
        base = b["base"]
        top = base + np.maximum(b["height"], 0.1)
        bounds = Bounds()
        bounds.add(lon, lat, np.r_[base, top])
        mesh = geo.extrude(footprints, base, top, height_anomaly=ctx.height_anomaly)
        columns = {"building_id": b["id"]} | {k: b[k] for k in list(self.properties)[1:]}
        table = PropertyTable(self.metadata_class, len(b), columns)
        return Rendered(mesh, table, rgba_table(list(b["use"]), USE_COLORS, DEFAULT_BUILDING_COLOR), bounds)


def by_use(b: Columns) -> Columns:
    """The rows in vocabulary order of their use (stable), a use outside :data:`BUILDING_USES` (which ingest
    never writes) as ``other`` and a safety class outside A–D as none: the enum properties' values. In use
    order, the vertex colours and the use column change a few times per tile instead of at most buildings,
    which meshopt turns into about 15 bytes per building less. Rows already in that order (as
    :func:`tiles.source.fetch_buildings` returns them) are returned as they are."""
    other = USE_RANK["other"]
    rank = np.fromiter((USE_RANK.get(u, other if u else -1) for u in b["use"]), dtype=np.int64, count=len(b))
    if any(u and u not in USE_RANK for u in set(b["use"])):
        b.data["use"] = [u if not u or u in USE_RANK else "other" for u in b["use"]]
    if not set(b["safety_class"]) <= {"", *SAFETY_CLASSES}:
        b.data["safety_class"] = [s if s in SAFETY_CLASSES else "" for s in b["safety_class"]]
    if bool(np.all(rank[1:] >= rank[:-1])):
        return b
    return b.take(np.argsort(rank, kind="stable"))


class Elements(TileClass):
    """IFC element meshes (TIN in EPSG:4479), coloured by their IFC colour or class; they go with their
    building's partition point and are drawn instead of its LOD1 block."""

    layer = "elements"
    metadata_class = "element"
    title = "BIM element"
    zh = "BIM构件"
    id_property = "global_id"
    legend_property = "ifc_class"
    owner = "buildings"
    owner_column = "building_id"
    properties: ClassVar[dict[str, dict[str, Any]]] = {
        "global_id": STRING | {"required": True},
        "ifc_class": STRING,
        "name": STRING,
        "storey": STRING,
        "building_id": scalar("INT64", no_data=-1),
    }

    def legend(self) -> list[LegendEntry]:
        return [LegendEntry(k, k, k, css(v)) for k, v in ELEMENT_COLORS.items()]

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        return read_elements(conn, bbox)

    def points(self, cols: Columns, height_anomaly: float) -> tuple[NDArray[np.float64], ...]:
        """Lon/lat of each element's mean vertex and its weight (1 + triangles / ELEMENT_TRIANGLES_PER_UNIT)."""
        n = len(cols)
        first = np.zeros((n, 3))
        weight = np.ones(n)
        for i, w in enumerate(cols["wkb"]):
            t = tin_triangles(bytes(w))
            if len(t):
                first[i] = t.reshape(-1, 3).mean(axis=0)
                weight[i] = 1.0 + len(t) / ELEMENT_TRIANGLES_PER_UNIT
        if not n:
            return np.zeros(0), np.zeros(0), weight
        lon, lat, _ = crs.geocentric_to_geodetic(first, height_anomaly=height_anomaly)
        return np.asarray(lon), np.asarray(lat), weight

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        e = cols
        tris = [tin_triangles(bytes(w)) for w in e["wkb"]]
        counts = np.array([len(t) for t in tris], dtype=np.int64)
        allt = np.concatenate(tris) if tris else np.zeros((0, 3, 3))
        mesh = geo.triangle_soup(allt, np.repeat(np.arange(len(e)), counts))
        bounds = Bounds()
        bounds.add_ecef(mesh.positions, ctx.height_anomaly)
        colors = rgba_table(list(e["ifc_class"]), ELEMENT_COLORS, DEFAULT_ELEMENT_COLOR)
        for i, c in enumerate(e["color"]):
            if isinstance(c, list | tuple) and len(c) >= 3:
                rgba = [*c[:3], c[3] if len(c) > 3 else 1.0]
                colors[i] = np.clip(np.rint(np.asarray(rgba, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
        table = PropertyTable(self.metadata_class, len(e), {k: e[k] for k in self.properties})
        return Rendered(mesh, table, colors, bounds)


register(Buildings())
register(Elements())
