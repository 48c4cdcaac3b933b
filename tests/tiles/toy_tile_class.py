"""A toy tile content class: fire stations drawn as tall red beacons (消防站标识), for the registry tests.

It is what a new tile class looks like: one :class:`~tiles.classes.TileClass` subclass (layer, metadata
class and its properties, source query, renderer, legend) registered with :func:`tiles.classes.register`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sqlalchemy import Connection

from tiles import geometry as geo
from tiles.classes import Bounds, LegendEntry, RenderContext, Rendered, css, ground
from tiles.classes.base import STRING, FacilityTileClass, scalar
from tiles.glb import PropertyTable
from tiles.source import BBox, Columns, bbox_sql, query

BEACON_RGB = (230, 40, 40)


class Beacons(FacilityTileClass):
    """Every live fire station as a red prism 30 m tall on the ground."""

    layer = "beacons"
    metadata_class = "beacon"
    title = "Fire station beacon"
    zh = "消防站标识"
    legend_property = None  # one entry: every beacon is red
    properties: ClassVar[dict[str, dict[str, Any]]] = {"facility_id": scalar("INT64", required=True), "name": STRING}

    def legend(self) -> list[LegendEntry]:
        return [LegendEntry("", self.zh, self.title, css(BEACON_RGB))]

    def read(self, conn: Connection, bbox: BBox | None) -> Columns:
        where, params = bbox_sql("f.geom", bbox)
        sql = (
            "SELECT f.id, coalesce(f.name, ''), ST_X(p.p), ST_Y(p.p) FROM facility f "
            "CROSS JOIN LATERAL (SELECT ST_PointOnSurface(f.geom) AS p) p "
            f"WHERE f.valid_to IS NULL AND f.kind = 'fire_station'{where} ORDER BY f.id"
        )
        return query(conn, sql, params, ["id", "name", "px", "py"], {"id": np.int64, "px": float, "py": float})

    def render(self, cols: Columns, ctx: RenderContext) -> Rendered:
        n = len(cols)
        foot = ground(ctx.dem_path, cols["px"], cols["py"])
        mesh = geo.prisms(
            cols["px"], cols["py"], foot, foot + 30.0, np.full(n, 3.0), sides=6, height_anomaly=ctx.height_anomaly
        )
        bounds = Bounds()
        bounds.add_ecef(mesh.positions, ctx.height_anomaly)
        table = PropertyTable(self.metadata_class, n, {"facility_id": cols["id"], "name": cols["name"]})
        return Rendered(mesh, table, np.tile(np.array([*BEACON_RGB, 255], np.uint8), (n, 1)), bounds)
