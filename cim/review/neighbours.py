"""The stored city around the site: live buildings and pipes near the model, in the site's zone metres.

A stored building is *replaced* by the model (and so neither a conflict nor a neighbour) when it came from
an earlier version of the same IFC project, carries the GlobalId of one of the model's buildings, or was
named in the review's ``replaces`` list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely

from cim.db.review_queries import buildings_near, pipes_near
from cim.review import geometry
from cim.review.registry import ReviewContext


@dataclass(frozen=True)
class Neighbour:
    """A stored building: its row (without WKB), its footprint in zone metres, whether the model replaces it."""

    row: dict[str, Any]
    footprint: shapely.Geometry
    replaced: bool

    @property
    def id(self) -> int:
        """``building.id``."""
        return int(self.row["id"])

    @property
    def label(self) -> str:
        """Name, else ``building <id>``."""
        return str(self.row.get("name") or f"building {self.id}")

    @property
    def base(self) -> float:
        """Normal height of its base, metres."""
        return float(self.row.get("base_height") or 0.0)

    @property
    def top(self) -> float:
        """Normal height of its top, metres."""
        return self.base + float(self.row.get("height") or 0.0)


def _project_key(context: ReviewContext) -> str | None:
    projects = context.model.ifc.by_type("IfcProject")
    return str(projects[0].GlobalId) if projects else None


def neighbour_buildings(context: ReviewContext, radius_m: float) -> list[Neighbour]:
    """Live buildings within ``radius_m`` of the model's footprint (queried once at the largest radius)."""
    cached = context.cache.get("neighbours")
    if cached is not None and cached[0] >= radius_m:
        footprint = context.model.footprint()
        return [n for n in cached[1] if shapely.distance(footprint, n.footprint) <= radius_m]
    assert context.engine is not None and context.model.zone_epsg is not None
    with context.engine.connect() as conn:
        rows = buildings_near(conn, geometry.footprint_lonlat_wkb(context), radius_m)
    footprints = geometry.rows_in_zone(rows, "footprint", context.model.zone_epsg)
    key = _project_key(context)
    own = set(context.model.building_global_ids)
    found = []
    for row, footprint in zip(rows, footprints, strict=True):
        replaced = (
            int(row["id"]) in context.replaces
            or (key is not None and row.get("model_key") == key)
            or (row.get("ifc_global_id") is not None and row["ifc_global_id"] in own)
        )
        found.append(Neighbour({k: v for k, v in row.items() if k != "footprint"}, footprint, replaced))
    context.cache["neighbours"] = (radius_m, found)
    return found


def nearby_pipes(context: ReviewContext, radius_m: float) -> list[tuple[dict[str, Any], shapely.Geometry]]:
    """Live pipes within ``radius_m`` of the model's footprint, with their geometry in zone metres."""
    assert context.engine is not None and context.model.zone_epsg is not None
    with context.engine.connect() as conn:
        rows = pipes_near(conn, geometry.footprint_lonlat_wkb(context), radius_m)
    geoms = geometry.rows_in_zone(rows, "geom", context.model.zone_epsg)
    return [({k: v for k, v in r.items() if k != "geom"}, g) for r, g in zip(rows, geoms, strict=True)]
