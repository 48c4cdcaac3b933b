"""Built-in line and outline classes: ``roads`` (road, greenway and every other non-pipe line facility as
ribbons of their width), and the outlines of ``parcels``, planning ``zones`` and district ``boundaries``;
all draped on the DEM (ribbon vertices at ground height + a small lift)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim.vocabulary import FACILITY_KINDS, PIPE_KINDS
from tiles import geometry as geo
from tiles.classes import base, register
from tiles.classes.base import Bounds, LegendEntry, RenderContext, Rendered, TileClass, css, ground
from tiles.glb import PropertyTable
from tiles.source import BBox, Columns, bbox_sql, query, read_facilities

ROAD_WIDTHS_M: dict[str, float] = {
    "motorway": 30.0,
    "expressway": 30.0,
    "快速路": 30.0,
    "trunk": 26.0,
    "primary": 24.0,
    "arterial": 24.0,
    "主干路": 24.0,
    "secondary": 18.0,
    "次干路": 18.0,
    "tertiary": 12.0,
    "branch": 12.0,
    "支路": 12.0,
    "local": 10.0,
    "residential": 8.0,
    "service": 5.0,
}
"""Ribbon width (m) of a road by ``road_class`` (lower-cased) when ``facility.width_m`` is missing."""
DEFAULT_LINE_WIDTHS_M: dict[str, float] = {"road": 8.0, "greenway": 3.0}
"""Width (m) by kind when neither ``width_m`` nor a known road class gives one (other kinds: 2 m)."""
OTHER_LINE_WIDTH_M = 2.0
ROAD_LIFT_M = 0.3
"""Height of road ribbons above the DEM (m)."""
OUTLINE_LIFT_M = 0.6
"""Height of outlines above the DEM (m): above the roads."""


def road_widths(kind: list[str], road_class: list[str], width_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ribbon widths (m): ``width_m`` when known, else by road class, else by kind."""
    fallback = np.array(
        [
            ROAD_WIDTHS_M.get(c.lower(), DEFAULT_LINE_WIDTHS_M.get(k, OTHER_LINE_WIDTH_M))
            for k, c in zip(kind, road_class, strict=True)
        ]
    )
    ok = np.isfinite(width_m) & (width_m > 0)
    return np.where(ok, width_m, fallback)


def _draped(geoms: Any, width: NDArray[np.float64], lift: float, ctx: RenderContext) -> tuple[geo.Mesh, Bounds]:
    def heights(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
        return ground(ctx.dem_path, lon, lat) + lift

    mesh = geo.ribbons(geoms, width / 2.0, heights, height_anomaly=ctx.height_anomaly)
    bounds = Bounds()
    bounds.add_ecef(mesh.positions, ctx.height_anomaly)
    return mesh, bounds


class Roads(base.FacilityTileClass):
    """Road centre lines, greenways and every other non-pipe line facility as ribbons of their width."""

    layer = "roads"
    metadata_class = "road"
    title = "Road or line facility"
    zh = "道路与线状设施"
    properties = base.FacilityTileClass.with_properties(
        road_class=base.STRING, width_m=base.scalar("FLOAT64", "ribbon width drawn (m)")
    )

    def legend(self) -> list[LegendEntry]:
        return self.kind_legend(k for k, v in FACILITY_KINDS.items() if v.geometry == "line" and k not in PIPE_KINDS)

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        return read_facilities(conn, bbox, lines=True)

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        width = road_widths(list(cols["kind"]), list(cols["road_class"]), cols["width_m"])
        mesh, bounds = _draped(shapely.from_wkb(cols["wkb"]), width, ROAD_LIFT_M, ctx)
        columns = {"facility_id": cols["id"], "kind": cols["kind"], "name": cols["name"]}
        columns |= {"road_class": cols["road_class"], "width_m": width}
        table = PropertyTable(self.metadata_class, len(cols), columns)
        return Rendered(mesh, table, self.kind_colors(cols["kind"]), bounds)


@dataclass(frozen=True)
class Outline:
    """One outline class: its layer, metadata class, titles, id property, table, columns (SQL expression →
    property name, text), ribbon width (m) and colour."""

    layer: str
    metadata_class: str
    title: str
    zh: str
    id_property: str
    table: str
    columns: dict[str, str]
    width_m: float
    rgb: tuple[int, int, int]


OUTLINES = (
    Outline(
        "parcels", "parcel", "Parcel", "地块", "parcel_id", "parcel",
        {"t.code": "code", "t.name": "name", "t.land_use": "land_use", "t.district_code": "district_code"},
        1.5, (240, 170, 40),
    ),
    Outline(
        "zones", "planning_zone", "Planning zone", "规划分区", "zone_id", "planning_zone",
        {"t.code": "code", "t.name": "name", "t.zone_type": "zone_type"}, 3.0, (170, 90, 200),
    ),
    Outline(
        "boundaries", "district", "District boundary", "行政区界", "district_id", "district",
        {"t.code": "code", "t.name": "name", "t.level": "level"}, 8.0, (220, 60, 60),
    ),
)  # fmt: skip
"""Land parcels (地块) as thin outlines, planning zones (规划分区), district (county) boundaries (行政区界) wide."""


class Outlines(TileClass):
    """The outlines of the polygons of one table (rows without history: every row is live) as ribbons of one
    width and colour, as one :class:`Outline` row says. Its properties: the INT64 id, then one base.STRING per
    column."""

    needs_dem = True

    def __init__(self, spec: Outline) -> None:
        self.spec = spec
        # Instance attributes in place of the TileClass class attributes: one class, one object per row.
        self.layer = spec.layer  # type: ignore[misc]
        self.metadata_class = spec.metadata_class  # type: ignore[misc]
        self.title = spec.title  # type: ignore[misc]
        self.zh = spec.zh  # type: ignore[misc]
        self.id_property = spec.id_property  # type: ignore[misc]
        properties = {spec.id_property: base.scalar("INT64", required=True)}
        self.properties = properties | {name: base.STRING for name in spec.columns.values()}  # type: ignore[misc]

    def legend(self) -> list[LegendEntry]:
        return [LegendEntry("", self.zh, self.title, css(self.spec.rgb))]

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        where, params = bbox_sql("t.geom", bbox)
        texts = "".join(f"coalesce({expr}, '')::text, " for expr in self.spec.columns)
        sql = (
            f"SELECT t.id, {texts}ST_AsBinary(ST_Boundary(t.geom)), ST_X(p.p), ST_Y(p.p) FROM {self.spec.table} t "
            "CROSS JOIN LATERAL (SELECT ST_PointOnSurface(t.geom) AS p) p "
            f"WHERE NOT ST_IsEmpty(t.geom){where} ORDER BY t.id"
        )
        names = ["id", *self.spec.columns.values(), "wkb", "px", "py"]
        return query(conn, sql, params, names, {"id": np.int64, "px": np.float64, "py": np.float64})

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        n = len(cols)
        mesh, bounds = _draped(shapely.from_wkb(cols["wkb"]), np.full(n, self.spec.width_m), OUTLINE_LIFT_M, ctx)
        columns = {self.id_property: cols["id"]} | {name: cols[name] for name in self.spec.columns.values()}
        colors = np.tile(np.array([*self.spec.rgb, 255], np.uint8), (n, 1))
        return Rendered(mesh, PropertyTable(self.metadata_class, n, columns), colors, bounds)


register(Roads())
for outline in OUTLINES:
    register(Outlines(outline))
