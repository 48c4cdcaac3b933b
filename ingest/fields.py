"""Default field mappings of vector ingest: which source attribute fills which database column.

Each target column lists the source field names it is taken from by default, tried in order and matched
case-insensitively (Chinese names as used by Chinese surveying and planning data, English names, and
OpenStreetMap tags). ``--map TARGET=SOURCE`` on the command line or a ``[mapping]`` table in the ingest
config file overrides an entry. Source fields that no target uses are kept in the row's ``attributes``
JSONB column under their original names.

The README's field mapping table is generated from :data:`DEFAULT_FIELDS` (see :func:`mapping_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cim.errors import IngestError


@dataclass(frozen=True)
class Target:
    """A database column that vector ingest fills from a source field.

    ``kind``: ``text`` | ``float`` | ``int`` | ``year`` | ``use`` | ``safety`` | ``ratio`` (a 0..1 share that
    may be given in percent) — how source values are converted.
    """

    column: str
    kind: str
    sources: tuple[str, ...]
    unit: str = ""


_NAME = Target("name", "text", ("名称", "建筑名称", "名字", "NAME", "MC", "JZMC", "BLDG_NAME"))
_CODE_DISTRICT = Target(
    "district_code", "text", ("行政区划代码", "区划代码", "所属区县代码", "DISTRICT_CODE", "XZQDM", "ADCODE")
)
_LIMITS = (
    Target("max_height", "float", ("建筑限高", "限高", "MAX_HEIGHT", "XG", "HEIGHT_LIMIT"), "m"),
    Target("max_far", "float", ("容积率", "容积率上限", "MAX_FAR", "FAR", "RJL")),
    Target("max_density", "ratio", ("建筑密度", "建筑密度上限", "MAX_DENSITY", "DENSITY", "JZMD")),
    Target("min_green_ratio", "ratio", ("绿地率", "绿地率下限", "MIN_GREEN_RATIO", "GREEN_RATIO", "LDL")),
    Target("setback_m", "float", ("建筑退线", "退线距离", "SETBACK", "SETBACK_M", "TXJL"), "m"),
)

DEFAULT_FIELDS: dict[str, tuple[Target, ...]] = {
    "buildings": (
        _NAME,
        Target("address", "text", ("地址", "门牌地址", "ADDRESS", "ADDR", "addr:full", "DZ")),
        Target("height", "float", ("高度", "建筑高度", "HEIGHT", "BLDG_HEIGHT", "GD", "JZGD", "height"), "m"),
        Target("storeys", "int", ("层数", "地上层数", "楼层数", "FLOORS", "FLOOR", "STOREYS", "CS", "building:levels")),
        Target("use", "use", ("用途", "建筑用途", "房屋用途", "USE", "BLDG_USE", "YT", "building")),
        Target("year_built", "year", ("建成年代", "建成年份", "竣工年份", "YEAR", "YEAR_BUILT", "JCND", "start_date")),
        Target("structure", "text", ("结构", "建筑结构", "结构类型", "STRUCT", "STRUCTURE", "JG")),
        Target(
            "safety_class",
            "safety",
            ("房屋安全等级", "房屋安全等", "安全等级", "危房等级", "SAFETY", "SAFETY_CLASS", "AQDJ"),
        ),
        Target("base_height", "float", ("基底高程", "地面高程", "BASE_HEIGHT", "GROUND_Z"), "m"),
        Target("source_id", "text", ("编号", "建筑编号", "BLDG_ID", "BUILDING_ID", "osm_id")),
        _CODE_DISTRICT,
    ),
    "facilities": (
        _NAME,
        Target("diameter_mm", "float", ("管径", "管径mm", "DIAMETER", "DIAMETER_MM", "DN", "GJ"), "mm"),
        Target("depth_m", "float", ("埋深", "覆土深度", "DEPTH", "DEPTH_M", "MS"), "m"),
        Target("invert_start_m", "float", ("起点管底高程", "起点高程", "INVERT_START", "US_INVERT", "QDGC"), "m"),
        Target("invert_end_m", "float", ("终点管底高程", "终点高程", "INVERT_END", "DS_INVERT", "ZDGC"), "m"),
        Target("material", "text", ("材质", "管材", "MATERIAL", "CZ")),
        Target("pressure_class", "text", ("压力等级", "压力", "PRESSURE", "PRESSURE_CLASS", "YLDJ")),
        Target("width_m", "float", ("路宽", "道路宽度", "宽度", "WIDTH", "WIDTH_M", "width"), "m"),
        Target("road_class", "text", ("道路等级", "等级", "ROAD_CLASS", "CLASS", "DLDJ", "highway")),
        Target("capacity", "float", ("容纳人数", "容量", "学位数", "床位数", "CAPACITY", "RNRS")),
        Target("area_m2", "float", ("面积", "占地面积", "AREA", "AREA_M2", "MJ"), "m²"),
        Target("source_id", "text", ("编号", "设施编号", "FAC_ID", "osm_id")),
        _CODE_DISTRICT,
    ),
    "parcels": (
        Target("code", "text", ("地块编码", "地块编号", "宗地号", "CODE", "PARCEL_ID", "DKBM")),
        _NAME,
        Target("land_use", "text", ("用地性质", "用地类型", "用地代码", "LAND_USE", "YDXZ")),
        *_LIMITS,
        _CODE_DISTRICT,
    ),
    "planning": (
        Target("code", "text", ("单元编码", "编码", "CODE", "ZONE_ID", "DYBM")),
        _NAME,
        Target("zone_type", "text", ("类型", "管控类型", "ZONE_TYPE", "TYPE", "LX")),
        *_LIMITS,
    ),
    "districts": (
        Target("code", "text", ("行政区划代码", "区划代码", "代码", "CODE", "ADCODE", "XZQDM")),
        _NAME,
        Target("level", "text", ("级别", "层级", "LEVEL")),
        Target("parent_code", "text", ("上级代码", "PARENT_CODE", "PARENT")),
        Target("population", "int", ("常住人口", "人口", "POPULATION", "POP", "RK")),
        Target("built_up_area_km2", "float", ("建成区面积", "BUILT_UP_KM2", "BUILT_UP_AREA_KM2"), "km²"),
    ),
}
"""Per layer (``--layer``): the columns filled from source fields and their default source names."""

USE_VALUES: dict[str, str] = {
    # Chinese (GB/T 50353 building use classes as written in surveys) and common English / OSM values
    "住宅": "residential",
    "居住": "residential",
    "住宅楼": "residential",
    "宿舍": "residential",
    "商业": "commercial",
    "商服": "commercial",
    "商场": "commercial",
    "酒店": "commercial",
    "宾馆": "commercial",
    "办公": "office",
    "写字楼": "office",
    "行政办公": "office",
    "工业": "industrial",
    "厂房": "industrial",
    "仓储": "industrial",
    "仓库": "industrial",
    "公共服务": "public",
    "公共": "public",
    "公共管理": "public",
    "文化": "public",
    "体育": "public",
    "教育": "education",
    "学校": "education",
    "科研": "education",
    "医疗": "medical",
    "医院": "medical",
    "卫生": "medical",
    "商住混合": "mixed",
    "商住": "mixed",
    "混合": "mixed",
    "其他": "other",
    "其它": "other",
    "house": "residential",
    "apartments": "residential",
    "detached": "residential",
    "dormitory": "residential",
    "retail": "commercial",
    "hotel": "commercial",
    "supermarket": "commercial",
    "industrial": "industrial",
    "warehouse": "industrial",
    "factory": "industrial",
    "school": "education",
    "university": "education",
    "college": "education",
    "kindergarten": "education",
    "hospital": "medical",
    "clinic": "medical",
    "civic": "public",
    "government": "public",
    "public": "public",
    "yes": "other",
}
"""Source building-use values (Chinese, English, OSM ``building=*``) → :data:`cim.vocabulary.BUILDING_USES` keys.

Values already equal to a key pass through; anything else becomes ``other`` and the source value is kept in
``attributes["use_source"]``.
"""


def resolve_mapping(
    layer: str,
    source_fields: Sequence[str],
    overrides: Mapping[str, str] | None = None,
    renamed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map target columns to source field names for one layer.

    Defaults come from :data:`DEFAULT_FIELDS` (first candidate present, case-insensitive); ``overrides``
    (``TARGET → SOURCE``) win. ``renamed``: fields renamed for a collision (see
    :func:`colliding_field_renames`): ``source_fields`` holds their new names, and an override may name a
    field by either. Raises :class:`IngestError` for an unknown target or a missing source field.
    """
    targets = {t.column: t for t in DEFAULT_FIELDS[layer]}
    by_lower = {f.lower(): f for f in source_fields}
    mapping: dict[str, str] = {}
    for target in targets.values():
        for candidate in target.sources:
            found = by_lower.get(candidate.lower())
            if found is not None and found not in mapping.values():
                mapping[target.column] = found
                break
    for column, source in (overrides or {}).items():
        if column not in targets:
            raise IngestError(
                f"--map {column}={source}: {column!r} is not a column of layer {layer!r}; "
                f"use one of {', '.join(targets)}"
            )
        found = by_lower.get((renamed or {}).get(source, source).lower())
        if found is None:
            raise IngestError(
                f"--map {column}={source}: the source has no field {source!r}; its fields are "
                f"{', '.join(source_fields) or '(none)'}"
            )
        mapping = {k: v for k, v in mapping.items() if v != found}
        mapping[column] = found
    return mapping


def target_of(layer: str, column: str) -> Target:
    """The :class:`Target` of a layer's column."""
    for target in DEFAULT_FIELDS[layer]:
        if target.column == column:
            return target
    raise KeyError(column)


def parse_map_options(items: Sequence[str]) -> dict[str, str]:
    """``["height=BLDG_H", …]`` (as given to ``--map``) → ``{"height": "BLDG_H"}``."""
    result: dict[str, str] = {}
    for item in items:
        target, sep, source = item.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise IngestError(f"--map {item!r}: write TARGET=SOURCE, e.g. --map height=BLDG_H")
        result[target.strip()] = source.strip()
    return result


def mapping_table() -> str:
    """The default mapping as a Markdown table (for the README)."""
    lines = ["| layer | column | unit | default source fields (first found wins) |", "|---|---|---|---|"]
    for layer, targets in DEFAULT_FIELDS.items():
        for t in targets:
            lines.append(f"| {layer} | `{t.column}` | {t.unit} | {', '.join(t.sources)} |")
    return "\n".join(lines)


RESERVED_NAMES = ("OGC_FID", "wkb_geometry", "use_source")
"""Names a source field may not keep: GDAL's default feature-id and geometry columns, and the attribute keys
the ingest itself writes (``use_source``). The file's own feature-id and geometry column names (an
OpenStreetMap GeoJSON's ``id``, a GeoPackage's ``geom``) are added per source."""


def colliding_field_renames(fields: Sequence[str], reserved: Sequence[str | None] = ()) -> dict[str, str]:
    """New names for the source fields whose name is already taken: ``{original → new}``, renamed ones only.

    ``fields``: the source's attribute field names in order; ``reserved``: further names in use (the file's
    feature-id and geometry columns) besides :data:`RESERVED_NAMES`. Names are compared exactly (Arrow columns
    and JSON keys are case-sensitive). A colliding field keeps its values under ``NAME_1`` (or ``NAME_2``…,
    the first name free), the convention of GDAL and QGIS.

    >>> colliding_field_renames(["id", "building", "name"], ["id"])
    {'id': 'id_1'}
    """
    names = unique_field_names(fields, reserved)
    return {old: new for old, new in zip(fields, names, strict=True) if old != new}


def unique_field_names(fields: Sequence[str], reserved: Sequence[str | None] = ()) -> list[str]:
    """The field names, position by position, with collisions resolved as :func:`colliding_field_renames` does.

    >>> unique_field_names(["OGC_FID", "name", "name_1", "wkb_geometry"])
    ['OGC_FID_1', 'name', 'name_1', 'wkb_geometry_1']
    """
    taken = {n for n in (*RESERVED_NAMES, *reserved) if n}
    originals = set(fields)  # never rename onto another field's own name
    out: list[str] = []
    for name in fields:
        candidate = name
        if candidate in taken:
            i = 1
            while f"{name}_{i}" in taken or f"{name}_{i}" in originals:
                i += 1
            candidate = f"{name}_{i}"
        taken.add(candidate)
        out.append(candidate)
    return out
