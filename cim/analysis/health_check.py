"""The urban health check (城市体检): every registered indicator of :mod:`cim.analysis.indicators`, per district.

All measures are computed in PostGIS in one transaction (temporary tables for the scope's districts,
buildings and service facilities), stored as an ``analysis_run`` with one ``analysis_result`` per
indicator × district (geometry = the district, for choropleths; ``district_code`` NULL = the whole scope)
plus one row per parcel for density and floor-area-ratio limits.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine

from cim.analysis import fanout
from cim.analysis.fire import ACCESS_M, REACH_SECONDS, Method, compute_fire_reach
from cim.analysis.indicators import INDICATORS, Scope
from cim.analysis.runs import checked_code
from cim.db import analysis_queries as q
from cim.db.runs import ResultRow, add_results, finish_run, start_run
from cim.errors import AnalysisError


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
        """JSON-ready dict (parcel outlines left out; they are stored with the run)."""
        data = asdict(self)
        data["parcels"] = [{k: v for k, v in p.items() if k != "ewkt"} for p in self.parcels]
        return data

    def table(self) -> list[dict[str, Any]]:
        """Flat rows (code, names, unit, district, value, target, meets) for CSV output."""
        return [{k: v for k, v in asdict(x).items() if k != "detail"} for x in self.values]


def run_health_check(
    engine: Engine,
    *,
    district: str | None = None,
    new_since_year: int | None = None,
    fire_method: Method = "auto",
    fire_access_m: float = ACCESS_M,
    executor: Executor | None = None,
    partitions: int = 2,
) -> HealthCheckReport:
    """Compute every registered indicator per district and for the scope; store the run; return the report.

    ``district`` limits the scope to one district code. ``new_since_year`` is the first year that counts as
    "new" for 新建住宅高度超过80米 (default: the last three calendar years). Without stored districts the scope
    is every live building: indicators that need districts or population are reported with a ``None`` value
    and ``detail.not_computable`` naming what is missing.

    With an ``executor`` (a thread pool: one database backend per thread, or a Dask cluster's
    ``Client.get_executor()``) the service-coverage stage is fanned out over ``partitions`` groups of
    districts (:mod:`cim.analysis.fanout`) while this backend computes the other stages; the values are the
    same as a single-backend run.
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
        if not q.create_district_scope(conn, district) and district:
            raise AnalysisError(
                f"district {district!r} is not stored; list districts with GET /collections/districts/items"
            )
        run_id = start_run(conn, "health-check", params)
        dists = q.district_rows(conn)
        geoms = q.district_geometries(conn)
        pending = None
        if executor is not None and dists:
            url = engine.url.render_as_string(hide_password=False)
            pending = fanout.submit_coverage(executor, url, fanout.partitions(dists, partitions))
            params["coverage_partitions"] = len(pending)
        q.create_building_scope(conn)
        t = tick("scope", t)
        bstats = _by_scope(q.building_stats(conn, new_since_year=since))
        t = tick("buildings", t)
        q.create_service_facilities(conn)
        if pending is None:
            cover = _by_scope(q.residential_coverage(conn))
        t = tick("service_coverage", t)
        fstats = {r["district_code"]: r for r in q.facility_stats(conn)}
        t = tick("facilities", t)
        reach = compute_fire_reach(conn, method=fire_method)
        fire = _by_scope(q.fire_coverage_counts(conn, fire_access_m))
        t = tick("fire_reach", t)
        parcels = q.parcel_limits(conn)
        t = tick("parcels", t)
        if pending is not None:
            cover = _by_scope(fanout.merge_coverage([f.result() for f in pending]))
            t = tick("service_coverage_wait", t)
        params["fire_method_used"] = reach.method
        queried = {ind.code: ind.query(conn) for ind in INDICATORS if ind.query is not None}
        t = tick("own_queries", t)

        per_parcel = _parcel_checks(parcels)
        over_by_district: dict[str | None, int] = {}
        for p in per_parcel:
            if p["exceeds"]:
                if p["district_code"] is not None:
                    over_by_district[p["district_code"]] = over_by_district.get(p["district_code"], 0) + 1
                over_by_district[None] = over_by_district.get(None, 0) + 1

        def scope(code: str | None, covers: list[dict[str, Any]]) -> Scope:
            facilities = {
                k: sum(float(fstats[d["code"]][k]) for d in covers if d["code"] in fstats)
                for k in ("road_km", "shelter_m2", "waterlogging_points")
            }
            return Scope(
                code=code,
                districts=covers,
                buildings=bstats.get(code, {}),
                coverage=cover.get(code, {}),
                facilities=facilities,
                fire=fire.get(code, {}),
                parcels_over_limits=over_by_district.get(code, 0),
                parameters=params,
                queried={k: rows.get(code, {}) for k, rows in queried.items()},
            )

        scopes = [scope(d["code"], [d]) for d in dists] + [scope(None, dists)]
        values: list[IndicatorValue] = []
        rows: list[ResultRow] = []
        for sc in scopes:
            for ind in INDICATORS:
                val, detail = ind.measure(sc)
                values.append(
                    IndicatorValue(ind.code, ind.zh, ind.en, ind.unit, sc.code, val, ind.target, ind.meets(val), detail)
                )
                ewkt = geoms.get(sc.code) if sc.code else None
                rows.append(ResultRow(ind.code, val, ind.unit, sc.code, ewkt, {"detail": detail}))
        for p in per_parcel:
            attrs = {k: v for k, v in p.items() if k != "ewkt"}
            rows.append(
                ResultRow("parcel_limits", p["building_density_pct"], "%", p["district_code"], p["ewkt"], attrs)
            )
        add_results(conn, run_id, rows)
        t = tick("store", t)
        timings["total"] = round(time.perf_counter() - t0, 3)
        summary = {
            "districts": [d["code"] for d in dists],
            "indicators": len(INDICATORS),
            "not_computable": sorted({v.code for v in values if "not_computable" in v.detail}),
            "timings_s": timings,
            "fire_method": reach.method,
        }
        finished = finish_run(conn, run_id, summary)
    return HealthCheckReport(
        run_id, district, [d["code"] for d in dists], values, per_parcel, params, timings, finished
    )


def _by_scope(rows: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    """Rows of a ``GROUPING SETS ((district_code), ())`` query by district code (None = the whole scope)."""
    out: dict[str | None, dict[str, Any]] = {}
    for r in rows:
        out[None if r["is_total"] else r["district_code"]] = r
    return out


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
                "ewkt": p["ewkt"],
            }
        )
    return out


__all__ = ["HealthCheckReport", "IndicatorValue", "run_health_check"]
