"""A small IFC4X3 road bridge over the sample river, generated with ``ifcopenshell.api``.

Three spans (140 m in all, 16 m wide) cross the river north–south at :data:`sample_models.site.BRIDGE_SITE`:
a deck slab with two edge girders, two piers (pier caps, stems, footings) and two abutments, all simple
extrusions. An ``IfcMapConversion`` to EPSG:4547 turns the model's +X axis to grid north; the model origin
lies at the bridge's middle on the river bank level (normal height :data:`BANK_HEIGHT`).

Run ``python -m sample_models.ifc_bridge --out bridge.ifc``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.geometry
import ifcopenshell.api.spatial

from sample_models.ifc_office import ModelBuilder, _placement
from sample_models.site import BRIDGE_SITE

BANK_HEIGHT = 20.0
"""Normal height (m) of the river banks at the bridge: the model's z = 0."""
LENGTH = 140.0
WIDTH = 16.0
DECK_TOP = 8.0
DECK_THICKNESS = 1.2
PIER_X = (-23.5, 23.5)


def _box(b: ModelBuilder, x0: float, y0: float, x1: float, y1: float, depth: float) -> Any:
    outline = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return ifcopenshell.api.geometry.add_slab_representation(b.f, context=b.body, depth=depth, polyline=outline)


def build_bridge(*, name: str = "示例大桥") -> ifcopenshell.file:
    """The bridge model in memory (IFC4X3_ADD2, metres, georeferenced to EPSG:4547 at ``BRIDGE_SITE``)."""
    b = ModelBuilder(name, version="IFC4X3")
    b.georeference(BRIDGE_SITE[0], BRIDGE_SITE[1], BANK_HEIGHT, 90.0)
    f = b.f
    site = b.entity("IfcSite", "跨河桥位")
    bridge = b.entity("IfcBridge", name, PredefinedType="GIRDER")
    ifcopenshell.api.aggregate.assign_object(f, products=[site], relating_object=b.project)
    ifcopenshell.api.aggregate.assign_object(f, products=[bridge], relating_object=site)
    b.pset(
        bridge,
        "桥梁信息",
        {"桥梁名称": name, "结构形式": "预应力混凝土连续梁桥", "跨径布置": "46.5+47+46.5 m", "设计荷载": "城-A级"},
    )
    concrete = b.style("混凝土", (0.72, 0.72, 0.70))
    asphalt = b.style("沥青", (0.25, 0.25, 0.27))

    def part(part_name: str, predefined: str) -> Any:
        item = b.entity("IfcBridgePart", part_name, PredefinedType=predefined, UsageType="LONGITUDINAL")
        ifcopenshell.api.aggregate.assign_object(f, products=[item], relating_object=bridge)
        return item

    deck_part = part("上部结构", "SUPERSTRUCTURE")
    deck = b.entity("IfcSlab", "桥面板", PredefinedType="FLOOR")
    b.place(
        deck,
        _box(b, -LENGTH / 2, -WIDTH / 2, LENGTH / 2, WIDTH / 2, DECK_THICKNESS),
        _placement(0, 0, DECK_TOP - DECK_THICKNESS),
        asphalt,
        "C50 混凝土 + 沥青铺装",
    )
    b.pset(deck, "构件信息", {"构件名称": "桥面板", "材料": "C50 混凝土"})
    girders = []
    for side in (-1, 1):
        girder = b.entity("IfcBeam", "边主梁", PredefinedType="GIRDER_SEGMENT")
        y = side * (WIDTH / 2 - 1.5)
        b.place(
            girder,
            _box(b, -LENGTH / 2, y - 1.0, LENGTH / 2, y + 1.0, 1.8),
            _placement(0, 0, DECK_TOP - DECK_THICKNESS - 1.8),
            concrete,
            "C50 预应力混凝土",
        )
        girders.append(girder)
    ifcopenshell.api.spatial.assign_container(f, products=[deck, *girders], relating_structure=deck_part)

    for index, x in enumerate(PIER_X, start=1):
        pier_part = part(f"{index}号桥墩", "PIER")
        footing = b.entity("IfcFooting", f"{index}号墩承台", PredefinedType="PILE_CAP")
        b.place(footing, _box(b, x - 3.0, -6.0, x + 3.0, 6.0, 2.0), _placement(0, 0, -6.0), concrete, "C35 混凝土")
        stems = []
        for y in (-4.0, 4.0):
            stem = b.entity("IfcColumn", f"{index}号墩柱", PredefinedType="PIERSTEM")
            b.place(
                stem,
                _box(b, x - 0.9, y - 0.9, x + 0.9, y + 0.9, DECK_TOP - DECK_THICKNESS - 1.8 - 1.5 + 4.0),
                _placement(0, 0, -4.0),
                concrete,
                "C40 混凝土",
            )
            stems.append(stem)
        cap = b.entity("IfcBeam", f"{index}号墩盖梁", PredefinedType="PIERCAP")
        b.place(
            cap,
            _box(b, x - 1.2, -WIDTH / 2 + 0.5, x + 1.2, WIDTH / 2 - 0.5, 1.5),
            _placement(0, 0, DECK_TOP - DECK_THICKNESS - 1.8 - 1.5),
            concrete,
            "C40 混凝土",
        )
        ifcopenshell.api.spatial.assign_container(f, products=[footing, *stems, cap], relating_structure=pier_part)

    for index, sign in enumerate((-1, 1), start=1):
        abutment_part = part(f"{index}号桥台", "ABUTMENT")
        wall = b.entity("IfcWall", f"{index}号桥台台身", PredefinedType="RETAININGWALL")
        x = sign * (LENGTH / 2 - 1.5)
        b.place(
            wall,
            _box(b, x - 1.5, -WIDTH / 2, x + 1.5, WIDTH / 2, DECK_TOP - DECK_THICKNESS + 2.0),
            _placement(0, 0, -2.0),
            concrete,
            "C30 混凝土",
        )
        footing = b.entity("IfcFooting", f"{index}号桥台基础", PredefinedType="STRIP_FOOTING")
        b.place(
            footing,
            _box(b, x - 3.0, -WIDTH / 2 - 1.0, x + 3.0, WIDTH / 2 + 1.0, 1.5),
            _placement(0, 0, -3.5),
            concrete,
            "C30 混凝土",
        )
        ifcopenshell.api.spatial.assign_container(f, products=[wall, footing], relating_structure=abutment_part)
    return b.finish("bridge")


def generate_bridge(path: Path | str) -> Path:
    """Write the bridge model to ``path`` (an .ifc file) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    build_bridge().write(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m sample_models.ifc_bridge --out FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(generate_bridge(args.out))


if __name__ == "__main__":
    main()
