"""The urban health check (城市体检): every indicator of :mod:`cim.analysis.indicators`, per district.

All measures are computed in PostGIS in one transaction (temporary tables for the scope's districts,
buildings and service facilities), stored as an ``analysis_run`` with one ``analysis_result`` per
indicator × district (geometry = the district, for choropleths; ``district_code`` NULL = the whole scope)
plus one row per parcel for density and floor-area-ratio limits.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from cim.analysis.fire import ACCESS_M, REACH_SECONDS, Method, compute_fire_reach
from cim.analysis.indicators import INDICATOR_BY_CODE, INDICATORS
from cim.analysis.runs import ResultRow, add_results, checked_code, finish_run, start_run
from cim.db import analysis_queries as q
from cim.errors import AnalysisError
from cim.settings import Settings

HIGH_DENSITY_PEOPLE_PER_KM2 = 15_000.0


@dataclass
class IndicatorValue:
    """One indicator's value for one district (``district_code`` None = the whole scope)."""

    code: str
    zh: str
    en: str
    unit: str
    district_code: str | None
    value: float | None
    target: float | None
    meets: bool | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class HealthCheckReport:
    """Result of :func:`run_health_check`: values per district and for the scope, parcel checks, timings."""

    run_id: int
    district: str | None
    districts: list[str]
    values: list[IndicatorValue]
    parcels: list[dict[str, Any]]
    parameters: dict[str, Any]
    timings_s: dict[str, float]
    finished_at: dt.datetime | None = None

    def value(self, code: str, district_code: str | None = None) -> float | None:
        """The value of an indicator for a district (``None`` = the whole scope)."""
        for v in self.values:
            if v.code == code and v.district_code == district_code:
                return v.value
        raise KeyError((code, district_code))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (parcel geometries left out; they are stored with the run)."""
        data = asdict(self)
        data["parcels"] = [{k: v for k, v in p.items() if k not in ("geometry", "ewkt")} for p in self.parcels]
        return data

    def table(self) -> list[dict[str, Any]]:
        """Flat rows (code, names, unit, district, value, target, meets) for CSV output."""
        return [{k: v for k, v in asdict(x).items() if k != "detail"} for x in self.values]


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def run_health_check(
    engine: Engine,
    settings: Settings | None = None,
    *,
    district: str | None = None,
    new_since_year: int | None = None,
    fire_method: Method = "auto",
    fire_access_m: float = ACCESS_M,
) -> HealthCheckReport:
    """Compute every health-check indicator per district and for the scope; store the run; return the report.

    ``district`` limits the scope to one district code. ``new_since_year`` is the first year that counts as
    "new" for 新建住宅高度超过80米 (default: the last three calendar years).
    """
    district = checked_code(district)
    since = new_since_year if new_since_year is not None else dt.date.today().year - 2
    if not 1000 <= since <= 9999:
        raise AnalysisError(f"the 'new since' year must be a four-digit year, got {since}")
    params: dict[str, Any] = {
        "district": district,
        "new_since_year": since,
        "fire_method": fire_method,
        "fire_access_m": fire_access_m,
        "fire_reach_s": REACH_SECONDS,
    }
    timings: dict[str, float] = {}

    def tick(name: str, started: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - started, 3)
        return now

    t = t0 = time.perf_counter()
    with engine.begin() as conn:
        if not q.create_district_scope(conn, district):
            raise AnalysisError(
                f"district {district!r} is not stored; list districts with GET /collections/districts/items"
                if district
                else "no districts are stored; ingest a districts layer (with population) first"
            )
        run_id = start_run(conn, "health-check", params)
        dists = q.district_rows(conn)
        geoms = q.district_geometries(conn)
        q.create_building_scope(conn)
        t = tick("scope", t)
        bstats = {
            r["district_code"] if not r["is_total"] else None: r for r in q.building_stats(conn, new_since_year=since)
        }
        t = tick("buildings", t)
        q.create_service_facilities(conn)
        cover = {r["district_code"] if not r["is_total"] else None: r for r in q.residential_coverage(conn)}
        t = tick("service_coverage", t)
        fstats = {r["district_code"]: r for r in q.facility_stats(conn)}
        t = tick("facilities", t)
        reach = compute_fire_reach(conn, method=fire_method)
        fire = {
            r["district_code"] if not r["is_total"] else None: r for r in q.fire_coverage_counts(conn, fire_access_m)
        }
        t = tick("fire_reach", t)
        parcels = q.parcel_limits(conn)
        t = tick("parcels", t)
        params["fire_method_used"] = reach.method

        scopes: list[tuple[str | None, dict[str, Any]]] = [(d["code"], d) for d in dists]
        total_district = {
            "population": sum(d["population"] for d in dists),
            "land_km2": sum(d["land_km2"] for d in dists),
            "built_up_km2": sum(d["built_up_km2"] for d in dists),
        }
        scopes.append((None, total_district))
        per_parcel = _parcel_checks(parcels)
        over_by_district: dict[str | None, int] = {}
        for p in per_parcel:
            if p["exceeds"]:
                over_by_district[p["district_code"]] = over_by_district.get(p["district_code"], 0) + 1
                over_by_district[None] = over_by_district.get(None, 0) + 1

        values: list[IndicatorValue] = []
        rows: list[ResultRow] = []
        for code, d in scopes:
            b = bstats.get(code, {})
            c = cover.get(code, {})
            fr = fire.get(code, {})
            if code is None:
                f = {
                    k: sum(float(x[k]) for x in fstats.values())
                    for k in ("road_km", "shelter_m2", "waterlogging_points")
                }
                high_density = sum(
                    x["built_up_km2"]
                    for x in dists
                    if x["built_up_km2"] and x["population"] / x["built_up_km2"] > HIGH_DENSITY_PEOPLE_PER_KM2
                )
            else:
                f = fstats.get(code, {"road_km": 0.0, "shelter_m2": 0.0, "waterlogging_points": 0})
                dens = _ratio(d["population"], d["built_up_km2"])
                high_density = d["built_up_km2"] if dens is not None and dens > HIGH_DENSITY_PEOPLE_PER_KM2 else 0.0
            land_m2 = d["land_km2"] * 1e6
            n_res = float(c.get("n_res", 0))
            computed: dict[str, tuple[float | None, dict[str, Any]]] = {
                "park_service_coverage": (_pct(c.get("park", 0), n_res), {"covered": c.get("park", 0), "of": n_res}),
                "greenway_service_coverage": (
                    _pct(c.get("greenway", 0), n_res),
                    {"covered": c.get("greenway", 0), "of": n_res},
                ),
                "road_network_density": (
                    _ratio(float(f["road_km"]), d["built_up_km2"]),
                    {"road_km": f["road_km"], "built_up_km2": d["built_up_km2"]},
                ),
                "building_density": (
                    _pct(float(b.get("footprint_m2", 0.0)), land_m2),
                    {"footprint_m2": b.get("footprint_m2", 0.0), "land_m2": land_m2},
                ),
                "floor_area_ratio": (
                    _ratio(float(b.get("gfa_m2", 0.0)), land_m2),
                    {"gfa_m2": b.get("gfa_m2", 0.0), "land_m2": land_m2},
                ),
                "parcels_over_limits": (float(over_by_district.get(code, 0)), {}),
                "shelter_area_per_capita": (
                    _ratio(float(f["shelter_m2"]), d["population"]),
                    {"shelter_m2": f["shelter_m2"], "population": d["population"]},
                ),
                "fire_5min_coverage": (
                    _pct(fr.get("covered", 0), float(fr.get("n", 0))),
                    {"covered": fr.get("covered", 0), "of": fr.get("n", 0), "method": reach.method},
                ),
                "community_service_5min_coverage": (_pct(c.get("cs300", 0), n_res), {"covered": c.get("cs300", 0)}),
                "community_service_10min_coverage": (_pct(c.get("cs500", 0), n_res), {"covered": c.get("cs500", 0)}),
                "community_service_15min_coverage": (
                    _pct(c.get("cs1000", 0), n_res),
                    {"covered": c.get("cs1000", 0)},
                ),
                "school_service_coverage": (_pct(c.get("school", 0), n_res), {"covered": c.get("school", 0)}),
                "kindergarten_service_coverage": (
                    _pct(c.get("kindergarten", 0), n_res),
                    {"covered": c.get("kindergarten", 0)},
                ),
                "new_residential_over_80m": (float(b.get("new_res_over_80", 0)), {"since_year": since}),
                "super_high_rise_count": (float(b.get("super_high_rise", 0)), {}),
                "old_residential_share": (
                    _pct(b.get("n_res_old", 0), float(b.get("n_res_with_year", 0))),
                    {"old": b.get("n_res_old", 0), "of": b.get("n_res_with_year", 0)},
                ),
                "unsafe_housing_share": (
                    _pct(b.get("n_res_unsafe", 0), float(b.get("n_res_with_class", 0))),
                    {"unsafe": b.get("n_res_unsafe", 0), "of": b.get("n_res_with_class", 0)},
                ),
                "waterlogging_point_density": (
                    _ratio(float(f["waterlogging_points"]), d["built_up_km2"]),
                    {"points": f["waterlogging_points"]},
                ),
                "population_density": (_ratio(d["population"], d["built_up_km2"]), {}),
                "high_density_area": (float(high_density), {"threshold_people_per_km2": HIGH_DENSITY_PEOPLE_PER_KM2}),
            }
            for ind in INDICATORS:
                val, detail = computed[ind.code]
                detail = {k: (float(v) if isinstance(v, int | float) else v) for k, v in detail.items()}
                values.append(
                    IndicatorValue(ind.code, ind.zh, ind.en, ind.unit, code, val, ind.target, ind.meets(val), detail)
                )
                rows.append(
                    ResultRow(ind.code, val, ind.unit, code, geoms.get(code) if code else None, {"detail": detail})
                )
        for p in per_parcel:
            attrs = {k: v for k, v in p.items() if k not in ("geometry", "ewkt")}
            rows.append(
                ResultRow("parcel_limits", p["building_density_pct"], "%", p["district_code"], p["ewkt"], attrs)
            )
        add_results(conn, run_id, rows)
        t = tick("store", t)
        timings["total"] = round(time.perf_counter() - t0, 3)
        summary = {
            "districts": [d["code"] for d in dists],
            "indicators": len(INDICATORS),
            "timings_s": timings,
            "fire_method": reach.method,
        }
        finished = finish_run(conn, run_id, summary)
    return HealthCheckReport(
        run_id, district, [d["code"] for d in dists], values, per_parcel, params, timings, finished
    )


def _parcel_checks(parcels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in parcels:
        area = float(p["area_m2"]) or 0.0
        density = 100.0 * float(p["footprint_m2"]) / area if area else None
        far = float(p["gfa_m2"]) / area if area else None
        over_density = p["max_density"] is not None and density is not None and density / 100.0 > p["max_density"]
        over_far = p["max_far"] is not None and far is not None and far > p["max_far"]
        out.append(
            {
                "parcel_id": int(p["parcel_id"]),
                "code": p["code"],
                "land_use": p["land_use"],
                "district_code": p["district_code"],
                "area_m2": area,
                "building_density_pct": density,
                "max_density_pct": 100.0 * p["max_density"] if p["max_density"] is not None else None,
                "floor_area_ratio": far,
                "max_far": p["max_far"],
                "over_density": bool(over_density),
                "over_far": bool(over_far),
                "exceeds": bool(over_density or over_far),
                "geometry": p["geometry"],
                "ewkt": p["ewkt"],
            }
        )
    return out


def indicator_definitions() -> list[dict[str, Any]]:
    """Every indicator's documented definition (code, zh, en, formula, unit, target, direction, source)."""
    return [i.to_dict() for i in INDICATORS]


__all__ = ["INDICATOR_BY_CODE", "HealthCheckReport", "IndicatorValue", "indicator_definitions", "run_health_check"]
