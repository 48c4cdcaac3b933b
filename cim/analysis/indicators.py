"""The registry of urban health-check (城市体检) indicators computed by :mod:`cim.analysis.health_check`.

Each :class:`Indicator` carries its documented definition: Chinese and English names, formula, unit,
target or threshold and source (the MOHURD urban health-check indicator system, 住房和城乡建设部《城市体检
指标体系》, and the national standards it cites). Distances and areas are metric, computed on the CGCS2000
ellipsoid (PostGIS ``geography``), so features in any Gauss–Krüger zone are measured correctly.

"Residential" means live buildings with ``use`` in :data:`RESIDENTIAL_USES`; coverage indicators count
residential buildings (a proxy for residential land when land-use polygons are sparse) by the position of
their footprint centroid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

RESIDENTIAL_USES = ("residential", "mixed")
"""Building uses counted as housing (住宅, 商住混合)."""

Direction = Literal["higher", "lower", "info"]


@dataclass(frozen=True)
class Indicator:
    """One indicator of the health check and its documented definition.

    ``target`` is the threshold a good value reaches: at least it when ``direction == "higher"``, at most
    it when ``direction == "lower"``; ``None`` (or ``direction == "info"``) when the indicator is reported only.
    """

    code: str
    zh: str
    en: str
    formula: str
    unit: str
    target: float | None
    direction: Direction
    source: str

    def meets(self, value: float | None) -> bool | None:
        """Whether ``value`` reaches the target (``None`` when there is no target or no value)."""
        if value is None or self.target is None or self.direction == "info":
            return None
        return value >= self.target if self.direction == "higher" else value <= self.target

    def to_dict(self) -> dict[str, Any]:
        """The definition as a JSON-ready dict."""
        return asdict(self)


_MOHURD = "MOHURD 城市体检指标体系 (2023/2024)"

INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "park_service_coverage",
        "公园绿地服务半径覆盖率",
        "park green space service-radius coverage",
        "residential buildings whose centroid lies within 300 m of a park/green space of 2,000–5,000 m² or within "
        "500 m of one ≥ 5,000 m² ÷ residential buildings × 100",
        "%",
        90.0,
        "higher",
        f"{_MOHURD}; GB/T 51346-2019 城市绿地规划标准",
    ),
    Indicator(
        "greenway_service_coverage",
        "城市绿道服务半径覆盖率",
        "greenway service-radius coverage",
        "residential buildings within 1,000 m of a greenway ÷ residential buildings × 100",
        "%",
        70.0,
        "higher",
        _MOHURD,
    ),
    Indicator(
        "road_network_density",
        "城市道路网密度",
        "road network density",
        "length of road centre lines inside the district (km) ÷ built-up area (km²; district area when unknown)",
        "km/km²",
        8.0,
        "higher",
        f"{_MOHURD}; 国办发〔2016〕 target 8 km/km²",
    ),
    Indicator(
        "building_density",
        "建筑密度",
        "building coverage ratio",
        "Σ building footprint area ÷ district land area × 100 (per parcel: against parcel.max_density)",
        "%",
        None,
        "info",
        "GB 50180-2018 城市居住区规划设计标准; parcel planning limits",
    ),
    Indicator(
        "floor_area_ratio",
        "容积率",
        "floor area ratio",
        "Σ gross floor area (footprint × storeys when missing) ÷ district land area (per parcel: against "
        "parcel.max_far)",
        "",
        None,
        "info",
        "GB 50180-2018; parcel planning limits",
    ),
    Indicator(
        "parcels_over_limits",
        "超出规划指标的地块数",
        "parcels exceeding planning limits",
        "parcels whose building density > max_density or floor area ratio > max_far",
        "parcels",
        0.0,
        "lower",
        "regulatory plan (控制性详细规划) limits stored on parcels",
    ),
    Indicator(
        "shelter_area_per_capita",
        "人均避难场所面积",
        "emergency shelter area per capita",
        "Σ shelter area (area_m2, else geodesic polygon area) ÷ population",
        "m²/person",
        1.5,
        "higher",
        f"{_MOHURD}; GB 51143-2015 防灾避难场所设计规范",
    ),
    Indicator(
        "fire_5min_coverage",
        "消防救援5分钟可达覆盖率",
        "fire rescue 5-minute reach coverage",
        "buildings within the access distance of road network reached within 300 s driving from a fire station "
        "(speeds by road class) ÷ buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; 城市消防站建设标准 (建标152-2017)",
    ),
    Indicator(
        "community_service_5min_coverage",
        "社区便民服务设施覆盖率（5分钟生活圈）",
        "community service coverage, 5-minute life circle",
        "residential buildings within 300 m of a community service point or clinic ÷ residential buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; GB 50180-2018 (5-minute life circle 300 m)",
    ),
    Indicator(
        "community_service_10min_coverage",
        "社区便民服务设施覆盖率（10分钟生活圈）",
        "community service coverage, 10-minute life circle",
        "residential buildings within 500 m of a community service point or clinic ÷ residential buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; GB 50180-2018 (10-minute life circle 500 m)",
    ),
    Indicator(
        "community_service_15min_coverage",
        "社区便民服务设施覆盖率（15分钟生活圈）",
        "community service coverage, 15-minute life circle",
        "residential buildings within 1,000 m of a community service point or clinic ÷ residential buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; GB 50180-2018 (15-minute life circle 1,000 m)",
    ),
    Indicator(
        "school_service_coverage",
        "中小学服务半径覆盖率",
        "primary and secondary school service coverage",
        "residential buildings within 500 m of a school ÷ residential buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; GB 50180-2018 (primary school ≤ 500 m)",
    ),
    Indicator(
        "kindergarten_service_coverage",
        "幼儿园服务半径覆盖率",
        "kindergarten service coverage",
        "residential buildings within 300 m of a kindergarten ÷ residential buildings × 100",
        "%",
        100.0,
        "higher",
        f"{_MOHURD}; GB 50180-2018 (kindergarten ≤ 300 m)",
    ),
    Indicator(
        "new_residential_over_80m",
        "新建住宅高度超过80米数量",
        "new residential buildings taller than 80 m",
        "residential buildings with height > 80 m and year_built ≥ the 'new since' year (default: last 3 years)",
        "buildings",
        0.0,
        "lower",
        f"{_MOHURD}; 住建部 建科〔2021〕63号",
    ),
    Indicator(
        "super_high_rise_count",
        "超高层建筑数量",
        "super high-rise buildings (> 100 m)",
        "buildings with height > 100 m",
        "buildings",
        None,
        "info",
        f"{_MOHURD}; 建科〔2021〕63号 (strict control of > 250 m)",
    ),
    Indicator(
        "old_residential_share",
        "老旧小区占比",
        "share of old residential buildings",
        "residential buildings built before 2000 ÷ residential buildings with a known year × 100",
        "%",
        None,
        "lower",
        f"{_MOHURD}; 国办发〔2020〕23号 (old estates: built before 2000)",
    ),
    Indicator(
        "unsafe_housing_share",
        "存在安全隐患住宅占比",
        "share of residential buildings with safety hazards",
        "residential buildings appraised C or D ÷ residential buildings with a safety class × 100",
        "%",
        0.0,
        "lower",
        f"{_MOHURD}; JGJ 125-2016 危险房屋鉴定标准",
    ),
    Indicator(
        "waterlogging_point_density",
        "城市内涝积水点密度",
        "density of waterlogging points",
        "waterlogging points inside the district ÷ built-up area (km²; district area when unknown)",
        "points/km²",
        0.0,
        "lower",
        _MOHURD,
    ),
    Indicator(
        "population_density",
        "人口密度",
        "population density",
        "population ÷ built-up area (km²; district area when unknown)",
        "people/km²",
        None,
        "info",
        _MOHURD,
    ),
    Indicator(
        "high_density_area",
        "人口密度超过每平方公里1.5万人的城市建设用地面积",
        "built-up area with population density above 15,000 people/km²",
        "built-up area (km²) of districts whose population ÷ built-up area > 15,000",
        "km²",
        0.0,
        "lower",
        _MOHURD,
    ),
)
"""Every indicator of the health check, in report order."""

INDICATOR_BY_CODE: dict[str, Indicator] = {i.code: i for i in INDICATORS}


def indicator(code: str) -> Indicator:
    """The indicator with this code; raises :class:`~cim.errors.AnalysisError` for an unknown code."""
    from cim.errors import AnalysisError

    try:
        return INDICATOR_BY_CODE[code]
    except KeyError:
        raise AnalysisError(f"unknown indicator {code!r}; known: {', '.join(INDICATOR_BY_CODE)}") from None
