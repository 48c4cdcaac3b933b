"""Controlled vocabularies shared by ingest, tiles, the API, analyses and the viewer."""

from __future__ import annotations

from typing import NamedTuple


class FacilityKind(NamedTuple):
    """A kind of municipal facility: its category, expected geometry and Chinese / English names."""

    category: str  # pipeline | point | transport | green | public_service | hazard | water
    geometry: str  # line | point | polygon
    zh: str
    en: str


FACILITY_KINDS: dict[str, FacilityKind] = {
    "pipe_water": FacilityKind("pipeline", "line", "给水管线", "water supply pipe"),
    "pipe_drainage": FacilityKind("pipeline", "line", "排水管线", "drainage pipe"),
    "pipe_gas": FacilityKind("pipeline", "line", "燃气管线", "gas pipe"),
    "pipe_heat": FacilityKind("pipeline", "line", "热力管线", "district heating pipe"),
    "pipe_power": FacilityKind("pipeline", "line", "电力管线", "power cable duct"),
    "pipe_telecom": FacilityKind("pipeline", "line", "通信管线", "telecom duct"),
    "manhole": FacilityKind("point", "point", "检查井", "manhole"),
    "hydrant": FacilityKind("point", "point", "消火栓", "fire hydrant"),
    "street_lamp": FacilityKind("point", "point", "路灯", "street lamp"),
    "road": FacilityKind("transport", "line", "道路", "road centre line"),
    "bridge": FacilityKind("transport", "polygon", "桥梁", "bridge"),
    "park": FacilityKind("green", "polygon", "公园", "park"),
    "green_space": FacilityKind("green", "polygon", "绿地", "green space"),
    "greenway": FacilityKind("green", "line", "绿道", "greenway"),
    "shelter": FacilityKind("public_service", "polygon", "应急避难场所", "emergency shelter"),
    "fire_station": FacilityKind("public_service", "point", "消防站", "fire station"),
    "school": FacilityKind("public_service", "point", "中小学", "primary or secondary school"),
    "kindergarten": FacilityKind("public_service", "point", "幼儿园", "kindergarten"),
    "clinic": FacilityKind("public_service", "point", "社区卫生服务站", "community clinic"),
    "community_service": FacilityKind("public_service", "point", "社区便民服务设施", "community service point"),
    "waterlogging_point": FacilityKind("hazard", "point", "内涝积水点", "waterlogging point"),
    "water_body": FacilityKind("water", "polygon", "水体", "water body"),
}
"""Every value the ``facility.kind`` column may hold."""

PIPE_KINDS = tuple(k for k, v in FACILITY_KINDS.items() if v.category == "pipeline")

BUILDING_USES: dict[str, tuple[str, str]] = {
    "residential": ("住宅", "residential"),
    "commercial": ("商业", "commercial"),
    "office": ("办公", "office"),
    "industrial": ("工业", "industrial"),
    "public": ("公共服务", "public service"),
    "education": ("教育", "education"),
    "medical": ("医疗", "medical"),
    "mixed": ("商住混合", "mixed use"),
    "other": ("其他", "other"),
}
"""Every value the ``building.use`` column may hold (Chinese, English labels)."""

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
