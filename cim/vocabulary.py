"""Controlled vocabularies shared by ingest, tiles, the API, analyses and the viewer."""

from __future__ import annotations

from typing import NamedTuple

RGB = tuple[int, int, int]
"""A colour, 0–255 per channel."""

DEFAULT_FACILITY_COLOR: RGB = (150, 150, 150)
DEFAULT_BUILDING_COLOR: RGB = (215, 215, 215)


class FacilityKind(NamedTuple):
    """A kind of municipal facility: its category, expected geometry, Chinese / English names and map colour."""

    category: str  # pipeline | point | transport | green | public_service | hazard | water
    geometry: str  # line | point | polygon
    zh: str
    en: str
    color: RGB = DEFAULT_FACILITY_COLOR


class Term(NamedTuple):
    """One value of a coded column: its Chinese and English labels and its colour on the map and in legends."""

    zh: str
    en: str
    color: RGB


FACILITY_KINDS: dict[str, FacilityKind] = {
    "pipe_water": FacilityKind("pipeline", "line", "给水管线", "water supply pipe", (40, 110, 230)),
    "pipe_drainage": FacilityKind("pipeline", "line", "排水管线", "drainage pipe", (130, 90, 50)),
    "pipe_gas": FacilityKind("pipeline", "line", "燃气管线", "gas pipe", (240, 210, 40)),
    "pipe_heat": FacilityKind("pipeline", "line", "热力管线", "district heating pipe", (230, 70, 50)),
    "pipe_power": FacilityKind("pipeline", "line", "电力管线", "power cable duct", (200, 40, 160)),
    "pipe_telecom": FacilityKind("pipeline", "line", "通信管线", "telecom duct", (40, 190, 90)),
    "manhole": FacilityKind("point", "point", "检查井", "manhole", (90, 90, 90)),
    "hydrant": FacilityKind("point", "point", "消火栓", "fire hydrant", (220, 30, 30)),
    "street_lamp": FacilityKind("point", "point", "路灯", "street lamp", (60, 60, 70)),
    "road": FacilityKind("transport", "line", "道路", "road centre line", (110, 110, 110)),
    "bridge": FacilityKind("transport", "polygon", "桥梁", "bridge"),
    "park": FacilityKind("green", "polygon", "公园", "park", (110, 190, 100)),
    "green_space": FacilityKind("green", "polygon", "绿地", "green space", (130, 200, 110)),
    "greenway": FacilityKind("green", "line", "绿道", "greenway", (70, 160, 80)),
    "shelter": FacilityKind("public_service", "polygon", "应急避难场所", "emergency shelter"),
    "fire_station": FacilityKind("public_service", "point", "消防站", "fire station"),
    "school": FacilityKind("public_service", "point", "中小学", "primary or secondary school"),
    "kindergarten": FacilityKind("public_service", "point", "幼儿园", "kindergarten"),
    "clinic": FacilityKind("public_service", "point", "社区卫生服务站", "community clinic"),
    "community_service": FacilityKind("public_service", "point", "社区便民服务设施", "community service point"),
    "waterlogging_point": FacilityKind("hazard", "point", "内涝积水点", "waterlogging point"),
    "water_body": FacilityKind("water", "polygon", "水体", "water body", (80, 150, 220)),
}
"""Every value the ``facility.kind`` column may hold."""

PIPE_KINDS = tuple(k for k, v in FACILITY_KINDS.items() if v.category == "pipeline")

BUILDING_USES: dict[str, Term] = {
    "residential": Term("住宅", "residential", (236, 226, 206)),
    "commercial": Term("商业", "commercial", (240, 180, 120)),
    "office": Term("办公", "office", (160, 190, 230)),
    "industrial": Term("工业", "industrial", (190, 170, 200)),
    "public": Term("公共服务", "public service", (170, 215, 170)),
    "education": Term("教育", "education", (250, 220, 120)),
    "medical": Term("医疗", "medical", (240, 150, 150)),
    "mixed": Term("商住混合", "mixed use", (220, 200, 170)),
    "other": Term("其他", "other", (210, 210, 210)),
}
"""Every value the ``building.use`` column may hold: labels and the colour of its LOD1 blocks."""

SAFETY_CLASSES: dict[str, tuple[str, str]] = {
    "A": ("A级：结构安全", "A: safe"),
    "B": ("B级：基本安全", "B: basically safe"),
    "C": ("C级：局部危险", "C: locally dangerous"),
    "D": ("D级：整幢危险", "D: dangerous as a whole"),
}
"""Housing safety classes of the MOHURD dangerous-building appraisal standard (JGJ 125)."""

CIM_LEVELS = {
    1: "CIM1 地表",
    2: "CIM2 白模",
    3: "CIM3 精细白模",
    4: "CIM4 室内",
    5: "CIM5 BIM",
    6: "CIM6 构件",
    7: "CIM7 零件",
}
"""CIM levels of detail (MOHURD CIM basic platform guideline)."""
