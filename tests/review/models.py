"""Generated IFC4 test models for the review (ifcopenshell.api), in model coordinates that *are* map
coordinates relative to a known Gauss–Krüger point, so every expected answer can be worked out by hand.

The model's IfcMapConversion puts model (0, 0, 0) at EPSG:4547 (E0, N0) and normal height H0, without
rotation or scale: model x/y metres = easting/northing − E0/N0. A block building has ``storeys`` storeys of
3 m: a 0.2 m floor slab at each storey's level, four 0.2 m walls from slab top to the next level, and a
0.2 m roof slab on top — so its height is ``storeys × 3 + 0.2`` m above the ground at model z = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.geometry
import ifcopenshell.api.georeference
import ifcopenshell.api.spatial
import numpy as np
import shapely

from cim.crs import transform_geometry
from sample_models.ifc_office import ModelBuilder

E0, N0, H0 = 530_000.0, 3_385_000.0, 20.0
STOREY_M, SLAB_M, WALL_M = 3.0, 0.2, 0.2
ZONE = "EPSG:4547"


def to_lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    """A model-coordinate geometry (metres from E0/N0) as EPSG:4490 lon/lat."""
    return transform_geometry(shapely.affinity.translate(geom, E0, N0), ZONE, 4490)


def rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle in model coordinates."""
    return shapely.box(x0, y0, x1, y1)


@dataclass
class Block:
    """A block building: plan rectangle (model metres) and storeys."""

    x0: float
    y0: float
    x1: float
    y1: float
    storeys: int
    name: str = "测试楼"


@dataclass
class TestModel:
    """The written file and the GlobalIds by element name (``slab 0`` … ``roof``, ``S wall 3``, ``green``…)."""

    path: Path
    ids: dict[str, str] = field(default_factory=dict)
    building: str = ""
    site: str = ""

    def names(self, *prefixes: str) -> set[str]:
        """GlobalIds of the elements whose names start with one of ``prefixes``."""
        return {g for n, g in self.ids.items() if n.startswith(prefixes)}


def _matrix(x: float, y: float, z: float, angle: float = 0.0) -> np.ndarray[Any, Any]:
    m = np.eye(4)
    a = np.radians(angle)
    m[0, 0], m[0, 1], m[1, 0], m[1, 1] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    m[:3, 3] = (x, y, z)
    return m


def write_model(
    path: Path,
    block: Block,
    *,
    green: tuple[float, float, float, float] | None = None,
    height_limit: float | None = None,
    georeferenced: bool = True,
    gfa_qto: bool = False,
) -> TestModel:
    """Write a block building (optionally a green area, a site height limit) to ``path``."""
    b = ModelBuilder("评审测试项目")
    f = b.f
    if georeferenced:
        ifcopenshell.api.georeference.add_georeferencing(f, ifc_class="IfcMapConversion", name=ZONE)
        conversion = f.by_type("IfcMapConversion")[0]
        conversion.Eastings, conversion.Northings, conversion.OrthogonalHeight = E0, N0, H0
        conversion.XAxisAbscissa, conversion.XAxisOrdinate, conversion.Scale = 1.0, 0.0, 1.0
    site = b.entity("IfcSite", "测试场地")
    building = b.entity("IfcBuilding", block.name)
    ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=b.project)
    ifcopenshell.api.aggregate.assign_object(f, products=[building], relating_object=site)
    if height_limit is not None:
        b.pset(site, "Pset_SiteCommon", {"BuildingHeightLimit": height_limit})
    style = b.style("墙", (0.8, 0.8, 0.8))
    made: dict[str, Any] = {}
    w, d = block.x1 - block.x0, block.y1 - block.y0
    outline = [(0.0, 0.0), (w, 0.0), (w, d), (0.0, d)]
    storey = None
    for level in range(block.storeys + 1):
        z = level * STOREY_M
        if level < block.storeys:
            storey = b.entity("IfcBuildingStorey", f"{level + 1}F", Elevation=z)
            ifcopenshell.api.aggregate.assign_object(f, products=[storey], relating_object=building)
        name = "roof" if level == block.storeys else f"slab {level}"
        slab = b.entity("IfcSlab", name, PredefinedType="ROOF" if level == block.storeys else "FLOOR")
        rep = ifcopenshell.api.geometry.add_slab_representation(f, context=b.body, depth=SLAB_M, polyline=outline)
        b.place(slab, rep, _matrix(block.x0, block.y0, z), style, "钢筋混凝土")
        made[name] = slab
        contained = [slab]
        if level < block.storeys:
            height = STOREY_M - SLAB_M
            walls = {  # start point, angle, length: each wall runs inside the outline
                "S": ((block.x0, block.y0), 0.0, w),
                "E": ((block.x1 - WALL_M, block.y0), 0.0, None),
                "N": ((block.x0, block.y1 - WALL_M), 0.0, w),
                "W": ((block.x0, block.y0), 0.0, None),
            }
            for side, ((sx, sy), _, length) in walls.items():
                wall = b.entity("IfcWall", f"{side} wall {level}", PredefinedType="STANDARD")
                if length is None:  # east / west walls: a profile WALL_M wide and d deep
                    profile = f.createIfcRectangleProfileDef("AREA", None, None, WALL_M, d)
                    rep = ifcopenshell.api.geometry.add_profile_representation(
                        f, context=b.body, profile=profile, depth=height
                    )
                    b.place(wall, rep, _matrix(sx + WALL_M / 2, sy + d / 2, z + SLAB_M), style, "砌块")
                else:
                    profile = f.createIfcRectangleProfileDef("AREA", None, None, w, WALL_M)
                    rep = ifcopenshell.api.geometry.add_profile_representation(
                        f, context=b.body, profile=profile, depth=height
                    )
                    b.place(wall, rep, _matrix(sx + w / 2, sy + WALL_M / 2, z + SLAB_M), style, "砌块")
                b.pset(wall, "Pset_WallCommon", {"IsExternal": True})
                made[wall.Name] = wall
                contained.append(wall)
        assert storey is not None
        ifcopenshell.api.spatial.assign_container(f, products=contained, relating_structure=storey)
    if gfa_qto:
        b.qto(building, "Qto_BuildingBaseQuantities", {"GrossFloorArea": w * d * block.storeys})
    if green is not None:
        gx0, gy0, gx1, gy1 = green
        lawn = b.entity("IfcGeographicElement", "green", ObjectType="GREEN", PredefinedType="USERDEFINED")
        rep = ifcopenshell.api.geometry.add_slab_representation(
            f,
            context=b.body,
            depth=0.1,
            polyline=[(0.0, 0.0), (gx1 - gx0, 0.0), (gx1 - gx0, gy1 - gy0), (0.0, gy1 - gy0)],
        )
        b.place(lawn, rep, _matrix(gx0, gy0, -0.1), b.style("草地", (0.3, 0.7, 0.3)), "草坪")
        ifcopenshell.api.spatial.assign_container(f, products=[lawn], relating_structure=site)
        made["green"] = lawn
    b.finish(f"review-test/{block.name}/{block.x0},{block.y0},{block.x1},{block.y1},{block.storeys}")
    f.write(str(path))
    return TestModel(
        path=path,
        ids={name: str(item.GlobalId) for name, item in made.items()},
        building=str(building.GlobalId),
        site=str(site.GlobalId),
    )
