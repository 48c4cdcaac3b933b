"""A small georeferenced IFC4 office building in Wuhan, generated with ``ifcopenshell.api``.

The model's origin is the project base point at :data:`sample_models.site.OFFICE_SITE` on ground of normal
height :data:`OFFICE_GROUND_HEIGHT`; an ``IfcMapConversion`` to CGCS2000 / 3-degree Gauss–Krüger CM 114°E
(EPSG:4547) places it (with the building's grid turned 12° from grid north). Storeys, walls, slabs,
windows, columns, spaces with quantity sets and property sets with Chinese names and values.

Run ``python -m sample_models.ifc_office --out office.ifc`` (``--storeys``/``--bays`` make it larger;
``--large`` writes the ≥ 20 000-element variant used by ``benchmarks/ifc_ingest.py``).
"""

from __future__ import annotations

import argparse
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.context
import ifcopenshell.api.geometry
import ifcopenshell.api.georeference
import ifcopenshell.api.material
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.style
import ifcopenshell.api.unit
import ifcopenshell.guid
import numpy as np

from cim.crs import transform_xy
from sample_models.site import DISTRICT_CRS, OFFICE_GROUND_HEIGHT, OFFICE_SITE

GRID_ROTATION_DEG = 12.0
"""The building grid's +X axis, counter-clockwise from grid east (EPSG:4547 easting axis)."""
STOREY_HEIGHT = 3.6
BAY = 7.2
DEPTH_BAYS = 3


@dataclass(frozen=True)
class OfficeLayout:
    """Size of the generated office: bays along X (7.2 m each), 3 bays deep, storeys of 3.6 m."""

    storeys: int = 5
    bays: int = 5
    windows_per_bay: int = 2
    columns: bool = True


LARGE_LAYOUT = OfficeLayout(storeys=60, bays=24, windows_per_bay=3, columns=True)
"""About 22 000 elements: the benchmark model."""


def _placement(x: float, y: float, z: float, angle_deg: float = 0.0) -> np.ndarray[Any, np.dtype[np.float64]]:
    m = np.eye(4)
    a = math.radians(angle_deg)
    m[0, 0], m[0, 1], m[1, 0], m[1, 1] = math.cos(a), -math.sin(a), math.sin(a), math.cos(a)
    m[:3, 3] = (x, y, z)
    return m


class ModelBuilder:
    """Small helpers over ``ifcopenshell.api`` shared by the sample generators (metres, one Body context)."""

    def __init__(self, name: str, version: str = "IFC4") -> None:
        self.f = ifcopenshell.api.project.create_file(version=version)  # type: ignore[arg-type]
        self.project = ifcopenshell.api.root.create_entity(self.f, ifc_class="IfcProject", name=name)
        ifcopenshell.api.unit.assign_unit(self.f, length={"is_metric": True, "raw": "METERS"})
        model = ifcopenshell.api.context.add_context(self.f, context_type="Model")
        self.body = ifcopenshell.api.context.add_context(
            self.f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW", parent=model
        )
        self.styles: dict[str, Any] = {}
        self.materials: dict[str, Any] = {}

    def finish(self, key: str) -> ifcopenshell.file:
        """Give every rooted entity a GlobalId derived from ``key`` and its position, and fix the header time.

        Regenerating a sample then writes the same bytes (a re-ingest is a no-op), and a changed layout keeps
        the IfcProject GlobalId (a re-ingest supersedes the previous version).
        """
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://cim.example/sample/{key}")
        for index, item in enumerate(sorted(self.f.by_type("IfcRoot"), key=lambda e: e.id())):
            label = "project" if item.is_a("IfcProject") else f"{item.is_a()}/{index}"
            item.GlobalId = ifcopenshell.guid.compress(uuid.uuid5(namespace, label).hex)
        self.f.header.file_name.time_stamp = "2024-06-01T00:00:00"
        return self.f

    def entity(self, ifc_class: str, name: str, **attributes: Any) -> Any:
        item = ifcopenshell.api.root.create_entity(self.f, ifc_class=ifc_class, name=name)
        for key, value in attributes.items():
            setattr(item, key, value)
        return item

    def style(self, name: str, rgb: tuple[float, float, float], transparency: float = 0.0) -> Any:
        if name not in self.styles:
            colour = self.f.createIfcColourRgb(None, *rgb)
            rendering = self.f.createIfcSurfaceStyleRendering(
                colour, transparency, None, None, None, None, None, None, "FLAT"
            )
            self.styles[name] = self.f.createIfcSurfaceStyle(name, "BOTH", [rendering])
        return self.styles[name]

    def material(self, name: str) -> Any:
        if name not in self.materials:
            self.materials[name] = ifcopenshell.api.material.add_material(self.f, name=name)
        return self.materials[name]

    def place(
        self,
        product: Any,
        representation: Any,
        matrix: np.ndarray[Any, np.dtype[np.float64]],
        style: Any,
        material: str,
    ) -> None:
        ifcopenshell.api.geometry.assign_representation(self.f, product=product, representation=representation)
        ifcopenshell.api.geometry.edit_object_placement(self.f, product=product, matrix=matrix, is_si=True)
        ifcopenshell.api.style.assign_representation_styles(self.f, shape_representation=representation, styles=[style])
        ifcopenshell.api.material.assign_material(self.f, products=[product], material=self.material(material))

    def pset(self, product: Any, name: str, properties: dict[str, Any]) -> None:
        pset = ifcopenshell.api.pset.add_pset(self.f, product=product, name=name)
        ifcopenshell.api.pset.edit_pset(self.f, pset=pset, properties=properties)

    def qto(self, product: Any, name: str, quantities: dict[str, Any]) -> None:
        qto = ifcopenshell.api.pset.add_qto(self.f, product=product, name=name)
        ifcopenshell.api.pset.edit_qto(self.f, qto=qto, properties=quantities)

    def georeference(self, lon: float, lat: float, height: float, rotation_deg: float) -> None:
        easting, northing = transform_xy([lon], [lat], 4490, DISTRICT_CRS)
        ifcopenshell.api.georeference.add_georeferencing(self.f, ifc_class="IfcMapConversion", name=DISTRICT_CRS)
        conversion = self.f.by_type("IfcMapConversion")[0]
        conversion.Eastings = float(easting[0])
        conversion.Northings = float(northing[0])
        conversion.OrthogonalHeight = float(height)
        conversion.XAxisAbscissa = math.cos(math.radians(rotation_deg))
        conversion.XAxisOrdinate = math.sin(math.radians(rotation_deg))
        conversion.Scale = 1.0
        crs = self.f.by_type("IfcProjectedCRS")[0]
        crs.Description = "CGCS2000 / 3-degree Gauss-Kruger CM 114E"
        crs.GeodeticDatum = "CGCS2000"
        crs.VerticalDatum = "1985 National Height Datum"


def build_office(layout: OfficeLayout = OfficeLayout(), *, name: str = "示例办公楼") -> ifcopenshell.file:
    """The office model in memory (IFC4, metres, georeferenced to EPSG:4547 at ``OFFICE_SITE``)."""
    b = ModelBuilder(name)
    b.georeference(OFFICE_SITE[0], OFFICE_SITE[1], OFFICE_GROUND_HEIGHT, GRID_ROTATION_DEG)
    f = b.f
    site = b.entity("IfcSite", "示例地块")
    building = b.entity("IfcBuilding", name)
    building.BuildingAddress = f.createIfcPostalAddress(
        None, None, None, None, ["中北路 88 号"], None, "武汉市", "湖北省", "430071", "中国"
    )
    ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=b.project)
    ifcopenshell.api.aggregate.assign_object(f, products=[building], relating_object=site)
    length, depth = layout.bays * BAY, DEPTH_BAYS * BAY
    x0, y0 = -length / 2, -depth / 2
    b.pset(
        building,
        "建筑信息",
        {
            "建筑名称": name,
            "结构类型": "框架结构",
            "建筑用途": "办公",
            "地上层数": layout.storeys,
            "设计单位": "示例设计院",
        },
    )
    b.pset(building, "Pset_BuildingCommon", {"NumberOfStoreys": layout.storeys, "YearOfConstruction": "2024"})
    floor_area = length * depth
    b.qto(building, "Qto_BuildingBaseQuantities", {"GrossFloorArea": floor_area * layout.storeys})
    wall_style = b.style("外墙涂料", (0.86, 0.84, 0.78))
    slab_style = b.style("楼板", (0.6, 0.6, 0.62))
    glass_style = b.style("玻璃", (0.45, 0.65, 0.85), 0.5)
    column_style = b.style("柱", (0.7, 0.7, 0.7))
    space_style = b.style("房间", (0.9, 0.9, 0.6), 0.8)
    outline = [(x0, y0), (x0 + length, y0), (x0 + length, y0 + depth), (x0, y0 + depth)]
    storey: Any = None
    for level in range(layout.storeys + 1):
        z = level * STOREY_HEIGHT
        contained: list[Any] = []
        if level < layout.storeys:
            storey_name = f"{level + 1}F"
            storey = b.entity("IfcBuildingStorey", storey_name, Elevation=z)
            ifcopenshell.api.aggregate.assign_object(f, products=[storey], relating_object=building)
            ifcopenshell.api.geometry.edit_object_placement(f, product=storey, matrix=_placement(0, 0, z), is_si=True)
        slab = b.entity("IfcSlab", f"{storey_name} 楼板", PredefinedType="ROOF" if level == layout.storeys else "FLOOR")
        rep = ifcopenshell.api.geometry.add_slab_representation(f, context=b.body, depth=0.25, polyline=outline)
        b.place(slab, rep, _placement(0, 0, z - 0.25), slab_style, "钢筋混凝土 C30")
        b.pset(slab, "构件信息", {"材料": "钢筋混凝土", "厚度": 0.25})
        contained.append(slab)
        if level == layout.storeys:  # the roof slab belongs to the top storey
            ifcopenshell.api.spatial.assign_container(f, products=contained, relating_structure=storey)
            break
        b.qto(storey, "Qto_BuildingStoreyBaseQuantities", {"GrossFloorArea": floor_area, "GrossHeight": STOREY_HEIGHT})
        height = STOREY_HEIGHT - 0.25
        sides = [  # start x, start y, angle, bays along the side
            (x0, y0, 0.0, layout.bays),
            (x0 + length, y0, 90.0, DEPTH_BAYS),
            (x0 + length, y0 + depth, 180.0, layout.bays),
            (x0, y0 + depth, 270.0, DEPTH_BAYS),
        ]
        for sx, sy, angle, bays in sides:
            ux, uy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            for k in range(bays):
                bx, by = sx + ux * BAY * k, sy + uy * BAY * k
                wall = b.entity("IfcWall", f"{storey_name} 外墙", PredefinedType="STANDARD")
                rep = ifcopenshell.api.geometry.add_wall_representation(
                    f, context=b.body, length=BAY, height=height, thickness=0.3
                )
                b.place(wall, rep, _placement(bx, by, z, angle), wall_style, "加气混凝土砌块")
                b.pset(wall, "Pset_WallCommon", {"IsExternal": True, "LoadBearing": False})
                b.pset(wall, "构件信息", {"材料": "加气混凝土砌块", "防火等级": "一级", "厚度": 0.3})
                contained.append(wall)
                for w in range(layout.windows_per_bay):
                    along = BAY * (w + 0.5) / layout.windows_per_bay
                    window = b.entity("IfcWindow", f"{storey_name} 窗", PredefinedType="WINDOW")
                    window.OverallWidth, window.OverallHeight = 1.5, 1.8
                    rep = ifcopenshell.api.geometry.add_wall_representation(
                        f, context=b.body, length=1.5, height=1.8, thickness=0.08, offset=-0.04
                    )
                    wx, wy = bx + ux * (along - 0.75) - uy * 0.35, by + uy * (along - 0.75) + ux * 0.35
                    b.place(window, rep, _placement(wx, wy, z + 0.9, angle), glass_style, "中空玻璃")
                    b.pset(window, "Pset_WindowCommon", {"IsExternal": True, "ThermalTransmittance": 2.4})
                    contained.append(window)
        if layout.columns:
            for i in range(layout.bays + 1):
                for j in range(DEPTH_BAYS + 1):
                    column = b.entity("IfcColumn", f"{storey_name} 柱 {i}-{j}", PredefinedType="COLUMN")
                    profile = f.createIfcRectangleProfileDef("AREA", "柱 600x600", None, 0.6, 0.6)
                    rep = ifcopenshell.api.geometry.add_profile_representation(
                        f, context=b.body, profile=profile, depth=height
                    )
                    b.place(column, rep, _placement(x0 + i * BAY, y0 + j * BAY, z), column_style, "钢筋混凝土 C40")
                    contained.append(column)
        for j in range(layout.bays):
            partition = b.entity("IfcWall", f"{storey_name} 内墙", PredefinedType="PARTITIONING")
            rep = ifcopenshell.api.geometry.add_wall_representation(
                f, context=b.body, length=depth - 0.6, height=height, thickness=0.15
            )
            b.place(partition, rep, _placement(x0 + (j + 0.5) * BAY, y0 + 0.3, z, 90.0), wall_style, "轻钢龙骨石膏板")
            b.pset(partition, "Pset_WallCommon", {"IsExternal": False, "LoadBearing": False})
            contained.append(partition)
        ifcopenshell.api.spatial.assign_container(f, products=contained, relating_structure=storey)
        spaces = []
        room_width = length / 2
        for r in range(2):
            space = b.entity("IfcSpace", f"{storey_name} 办公室 {r + 1}", LongName="开放办公区")
            corner = (x0 + r * room_width, y0)
            rect = [
                corner,
                (corner[0] + room_width, corner[1]),
                (corner[0] + room_width, corner[1] + depth),
                (corner[0], corner[1] + depth),
            ]
            rep = ifcopenshell.api.geometry.add_slab_representation(f, context=b.body, depth=height, polyline=rect)
            b.place(space, rep, _placement(0, 0, z), space_style, "空气")
            area = room_width * depth
            b.qto(space, "Qto_SpaceBaseQuantities", {"NetFloorArea": area, "GrossFloorArea": area, "Height": height})
            b.pset(space, "房间信息", {"房间名称": "开放办公区", "使用人数": int(area // 10)})
            spaces.append(space)
        ifcopenshell.api.aggregate.assign_object(f, products=spaces, relating_object=storey)
    return b.finish("office")


def generate_office(path: Path | str, layout: OfficeLayout = OfficeLayout()) -> Path:
    """Write the office model to ``path`` (an .ifc file) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    build_office(layout).write(str(out))
    return out


def generate_large_office(path: Path | str) -> Path:
    """Write the ≥ 20 000-element office tower used by the benchmark."""
    return generate_office(path, LARGE_LAYOUT)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m sample_models.ifc_office --out FILE [--storeys N --bays N | --large]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--storeys", type=int, default=OfficeLayout.storeys)
    parser.add_argument("--bays", type=int, default=OfficeLayout.bays)
    parser.add_argument("--large", action="store_true", help="the ≥ 20 000-element benchmark variant")
    args = parser.parse_args(argv)
    layout = LARGE_LAYOUT if args.large else OfficeLayout(storeys=args.storeys, bays=args.bays)
    print(generate_office(args.out, layout))


if __name__ == "__main__":
    main()
