"""The registry of urban health-check (城市体检) indicators: each definition with its computation.

Each :class:`Indicator` carries its documented definition (Chinese and English names, formula, unit, target
or threshold and source: the MOHURD urban health-check indicator system, 住房和城乡建设部《城市体检指标体系》,
and the national standards it cites), what it needs from the stored layers, and the function that computes
its value for one :class:`Scope` (a district, or the whole scope) from the measures
:func:`cim.analysis.health_check.run_health_check` gathers once. An indicator whose measures are not among
those brings its own ``query`` (SQL under :mod:`cim.db`). Register a new one with :meth:`IndicatorRegistry.register`
(``docs/architecture.md``); the health check, its API and ``cim analyse indicators`` read :data:`INDICATORS`.

Distances and areas are metric, computed on the CGCS2000 ellipsoid (PostGIS ``geography``), so features in
any Gauss–Krüger zone are measured correctly. "Residential" means live buildings with ``use`` in
:data:`RESIDENTIAL_USES`; coverage indicators count residential buildings (a proxy for residential land when
land-use polygons are sparse) by the position of their footprint centroid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, overload

from sqlalchemy import Connection

from cim.errors import AnalysisError

RESIDENTIAL_USES = ("residential", "mixed")
"""Building uses counted as housing (住宅, 商住混合)."""

HIGH_DENSITY_PEOPLE_PER_KM2 = 15_000.0

Direction = Literal["higher", "lower", "info"]
Measure = tuple[float | None, dict[str, Any]]
"""An indicator's value and the figures it came from."""

NEEDS: dict[str, str] = {
    "districts": "needs districts (their land or built-up area): ingest a districts layer",
    "population": "needs districts with population: ingest a districts layer with a population field",
}
"""What an indicator may need beyond buildings and facilities, with the reason given when it is missing."""


@dataclass(frozen=True)
class Scope:
    """The measures of one scope: a district (``code``) or the whole scope (``code`` None).

    ``districts`` are the district rows the scope covers (population, land_km2, built_up_km2; empty when
    no district is stored); ``buildings``, ``coverage`` and ``fire`` the scope's rows of
    :func:`~cim.db.analysis_queries.building_stats`, :func:`~cim.db.analysis_queries.residential_coverage` and
    :func:`~cim.db.analysis_queries.fire_coverage_counts`; ``facilities`` road km, shelter m² and waterlogging
    points summed over its districts; ``queried`` the rows of indicators' own queries, by indicator code.
    """

    code: str | None
    districts: Sequence[Mapping[str, Any]]
    buildings: Mapping[str, Any]
    coverage: Mapping[str, Any]
    facilities: Mapping[str, float]
    fire: Mapping[str, Any]
    parcels_over_limits: int
    parameters: Mapping[str, Any]
    queried: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def population(self) -> float:
        """People living in the scope's districts."""
        return float(sum(d["population"] for d in self.districts))

    @property
    def land_km2(self) -> float:
        """Geodesic area of the scope's districts, km²."""
        return float(sum(d["land_km2"] for d in self.districts))

    @property
    def built_up_km2(self) -> float:
        """Built-up area of the scope's districts, km² (their land area where none is stored)."""
        return float(sum(d["built_up_km2"] for d in self.districts))

    def missing(self, needs: Sequence[str]) -> str | None:
        """Why an indicator with these needs cannot be computed for this scope, or ``None``."""
        for need in needs:
            if need in ("districts", "population") and not self.districts:
                return NEEDS[need]
        return None


Query = Callable[[Connection], Mapping[str | None, Mapping[str, Any]]]
"""An indicator's own measures: rows by district code (None = the whole scope), run inside the health check's
transaction after its temporary tables (``hc_district``, ``hc_bldg``, ``hc_fac``) exist."""


@dataclass(frozen=True)
class Indicator:
    """One indicator of the health check: its documented definition and its computation.

    ``target`` is the threshold a good value reaches: at least it when ``direction == "higher"``, at most
    it when ``direction == "lower"``; ``None`` (or ``direction == "info"``) when the indicator is reported only.
    ``compute`` returns the value and its figures for one :class:`Scope`; ``needs`` names keys of :data:`NEEDS`.
    """

    code: str
    zh: str
    en: str
    formula: str
    unit: str
    target: float | None
    direction: Direction
    source: str
    compute: Callable[[Scope], Measure] = field(compare=False, repr=False)
    needs: tuple[str, ...] = ()
    query: Query | None = field(default=None, compare=False, repr=False)

    def meets(self, value: float | None) -> bool | None:
        """Whether ``value`` reaches the target (``None`` when there is no target or no value)."""
        if value is None or self.target is None or self.direction == "info":
            return None
        return value >= self.target if self.direction == "higher" else value <= self.target

    def measure(self, scope: Scope) -> Measure:
        """The value for ``scope``; ``None`` with ``detail.not_computable`` when the stored layers do not allow it."""
        reason = scope.missing(self.needs)
        if reason is not None:
            return None, {"not_computable": reason}
        value, detail = self.compute(scope)
        return value, {k: (float(v) if isinstance(v, int | float) else v) for k, v in detail.items()}

    def to_dict(self) -> dict[str, Any]:
        """The definition as a JSON-ready dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("compute", "query")}
        return {**out, "needs": list(self.needs)}


class IndicatorRegistry(Sequence[Indicator]):
    """The indicators of the health check in report order (titiler's ``Algorithms`` in spirit)."""

    def __init__(self, indicators: Sequence[Indicator] = ()) -> None:
        self._by_code: dict[str, Indicator] = {}
        for ind in indicators:
            self.register(ind)

    def register(self, indicator: Indicator) -> Indicator:
        """Add an indicator (at the end of the report); a second one with the same code is refused."""
        if indicator.code in self._by_code:
            raise AnalysisError(f"indicator {indicator.code!r} is registered already")
        unknown = set(indicator.needs) - set(NEEDS)
        if unknown:
            raise AnalysisError(f"indicator {indicator.code!r} needs unknown inputs {sorted(unknown)}")
        self._by_code[indicator.code] = indicator
        return indicator

    def unregister(self, code: str) -> None:
        """Remove an indicator (tests that register a toy one clean up with this)."""
        self._by_code.pop(code, None)

    def get(self, code: str) -> Indicator:
        """The indicator with this code; raises :class:`~cim.errors.AnalysisError` for an unknown code."""
        try:
            return self._by_code[code]
        except KeyError:
            raise AnalysisError(f"unknown indicator {code!r}; known: {', '.join(self._by_code)}") from None

    def __iter__(self) -> Iterator[Indicator]:
        return iter(list(self._by_code.values()))

    def __len__(self) -> int:
        return len(self._by_code)

    @overload
    def __getitem__(self, index: int) -> Indicator: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Indicator]: ...
    def __getitem__(self, index: int | slice) -> Indicator | Sequence[Indicator]:
        return list(self._by_code.values())[index]


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _covered(column: str, with_total: bool = False) -> Callable[[Scope], Measure]:
    """Share (%) of the scope's residential buildings that the service radius ``column`` covers."""

    def compute(s: Scope) -> Measure:
        covered, n_res = s.coverage.get(column, 0), float(s.coverage.get("n_res", 0))
        return _pct(covered, n_res), ({"covered": covered, "of": n_res} if with_total else {"covered": covered})

    return compute


def _share(part: str, whole: str, names: tuple[str, str]) -> Callable[[Scope], Measure]:
    """Share (%) of two building counts of the scope."""

    def compute(s: Scope) -> Measure:
        a, b = s.buildings.get(part, 0), s.buildings.get(whole, 0)
        return _pct(a, float(b)), {names[0]: a, names[1]: b}

    return compute


def _count(column: str, **detail: Callable[[Scope], Any]) -> Callable[[Scope], Measure]:
    """A building count of the scope."""

    def compute(s: Scope) -> Measure:
        return float(s.buildings.get(column, 0)), {k: f(s) for k, f in detail.items()}

    return compute


def _road_density(s: Scope) -> Measure:
    road_km = s.facilities.get("road_km", 0.0)
    return _ratio(float(road_km), s.built_up_km2), {"road_km": road_km, "built_up_km2": s.built_up_km2}


def _building_density(s: Scope) -> Measure:
    footprint, land_m2 = s.buildings.get("footprint_m2", 0.0), s.land_km2 * 1e6
    return _pct(float(footprint), land_m2), {"footprint_m2": footprint, "land_m2": land_m2}


def _floor_area_ratio(s: Scope) -> Measure:
    gfa, land_m2 = s.buildings.get("gfa_m2", 0.0), s.land_km2 * 1e6
    return _ratio(float(gfa), land_m2), {"gfa_m2": gfa, "land_m2": land_m2}


def _parcels_over(s: Scope) -> Measure:
    return float(s.parcels_over_limits), {}


def _shelter_per_capita(s: Scope) -> Measure:
    shelter = s.facilities.get("shelter_m2", 0.0)
    return _ratio(float(shelter), s.population), {"shelter_m2": shelter, "population": s.population}


def _fire_coverage(s: Scope) -> Measure:
    covered, n = s.fire.get("covered", 0), s.fire.get("n", 0)
    return _pct(covered, float(n)), {"covered": covered, "of": n, "method": s.parameters.get("fire_method_used")}


def _waterlogging_density(s: Scope) -> Measure:
    points = s.facilities.get("waterlogging_points", 0)
    return _ratio(float(points), s.built_up_km2), {"points": points}


def _population_density(s: Scope) -> Measure:
    return _ratio(s.population, s.built_up_km2), {}


def _high_density_area(s: Scope) -> Measure:
    area = sum(
        d["built_up_km2"]
        for d in s.districts
        if d["built_up_km2"] and d["population"] / d["built_up_km2"] > HIGH_DENSITY_PEOPLE_PER_KM2
    )
    return float(area), {"threshold_people_per_km2": HIGH_DENSITY_PEOPLE_PER_KM2}


_MOHURD = "MOHURD 城市体检指标体系 (2023/2024)"

INDICATORS = IndicatorRegistry(
    (
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
            compute=_covered("park", with_total=True),
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
            compute=_covered("greenway", with_total=True),
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
            compute=_road_density,
            needs=("districts",),
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
            compute=_building_density,
            needs=("districts",),
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
            compute=_floor_area_ratio,
            needs=("districts",),
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
            compute=_parcels_over,
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
            compute=_shelter_per_capita,
            needs=("population",),
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
            compute=_fire_coverage,
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
            compute=_covered("cs300"),
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
            compute=_covered("cs500"),
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
            compute=_covered("cs1000"),
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
            compute=_covered("school"),
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
            compute=_covered("kindergarten"),
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
            compute=_count("new_res_over_80", since_year=lambda s: s.parameters["new_since_year"]),
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
            compute=_count("super_high_rise"),
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
            compute=_share("n_res_old", "n_res_with_year", ("old", "of")),
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
            compute=_share("n_res_unsafe", "n_res_with_class", ("unsafe", "of")),
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
            compute=_waterlogging_density,
            needs=("districts",),
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
            compute=_population_density,
            needs=("population",),
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
            compute=_high_density_area,
            needs=("population",),
        ),
    )
)
"""Every indicator of the health check, in report order; add one with ``INDICATORS.register(Indicator(...))``."""


def indicator(code: str) -> Indicator:
    """The indicator with this code; raises :class:`~cim.errors.AnalysisError` for an unknown code."""
    return INDICATORS.get(code)
