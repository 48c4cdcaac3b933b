"""``/analysis/…``: CIM+ indicators and overlays (urban health check, urban safety).

GET endpoints never write: health-check reads answer the latest stored run (404 naming the POST that
computes one when none is stored); safety overlays requested by GET are previews computed on the fly in
a transaction that is rolled back. ``POST …/runs`` endpoints compute and store a run (``analysis_run`` /
``analysis_result``), need an API key with the planner (or admin) role and are audited. Domain errors
map to HTTP statuses through the app's error table.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from cim.analysis.indicators import INDICATORS, indicator
from cim.analysis.runs import checked_code
from cim.api.security import Principal, audit, read_access, require_role
from cim.db import runs as q
from cim.errors import NotFoundError

router = APIRouter(prefix="/analysis", tags=["analysis"])

Reader = Annotated[Principal, Depends(read_access)]
Planner = Annotated[Principal, Depends(require_role("planner"))]
DistrictQuery = Annotated[str | None, Query(description="District code; all districts when omitted.")]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _stored_health_check(engine: Engine, run_id: int) -> dict[str, Any]:
    defs = {i.code: i for i in INDICATORS}
    with engine.connect() as conn:
        rows = q.run_results(conn, run_id)
        run = q.run_row(conn, run_id)
    values = []
    parcels = []
    for r in rows:
        if r["indicator"] == "parcel_limits":
            parcels.append(r["attributes"])
            continue
        ind = defs.get(r["indicator"])
        if ind is None:
            continue
        values.append(
            {
                "code": ind.code,
                "zh": ind.zh,
                "en": ind.en,
                "unit": ind.unit,
                "district_code": r["district_code"],
                "value": r["value"],
                "target": ind.target,
                "meets": ind.meets(r["value"]),
                "detail": (r["attributes"] or {}).get("detail", {}),
            }
        )
    return {"run": run, "values": values, "parcels": parcels}


def _latest_health_check(request: Request, district: str | None) -> int:
    """The id of the latest stored health-check run for ``district``; reads never compute and store one."""
    district = checked_code(district)
    with _engine(request).connect() as conn:
        run_id = q.latest_run_id(conn, "health-check", {"district": district})
    if run_id is None:
        scope = f"district {district}" if district else "the whole scope"
        raise NotFoundError(
            f"no health-check run is stored for {scope}; a planner computes one with "
            "POST /analysis/health-check/runs (or `cim analyse health-check`)"
        )
    return run_id


@router.get("/health-check/indicators", summary="Definitions of every health-check indicator")
def indicator_definitions(_: Reader) -> list[dict[str, Any]]:
    """Code, Chinese and English name, formula, unit, target, direction and source of each indicator."""
    return [i.to_dict() for i in INDICATORS]


@router.get("/health-check", summary="Health-check indicators of the latest stored run")
def health_check(request: Request, _: Reader, district: DistrictQuery = None) -> dict[str, Any]:
    """Indicator values per district and for the whole scope (``district_code`` null), with targets.

    404 when no run is stored yet: ``POST /analysis/health-check/runs`` (planner) computes and stores one.
    """
    return _stored_health_check(_engine(request), _latest_health_check(request, district))


@router.get("/health-check/runs", summary="Stored health-check runs, newest first")
def health_check_runs(
    request: Request, _: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """Stored runs (id, parameters, inputs, software version, times, summary) so later runs can be compared."""
    with _engine(request).connect() as conn:
        return q.runs(conn, "health-check", limit)


@router.get("/health-check/runs/{run_id}", summary="The indicators of one stored run")
def health_check_run(
    request: Request, _: Reader, run_id: Annotated[int, Path(ge=1, le=2**62, description="Run id.")]
) -> dict[str, Any]:
    """Indicator values of a stored run."""
    with _engine(request).connect() as conn:
        run = q.run_row(conn, run_id)
    if run is None or run["kind"] != "health-check":
        raise NotFoundError(f"health-check run {run_id} does not exist; list runs at /analysis/health-check/runs")
    return _stored_health_check(_engine(request), run_id)


class HealthCheckRequest(BaseModel):
    """Parameters of a new health-check run (unknown fields are refused, not ignored)."""

    model_config = ConfigDict(extra="forbid")

    district: str | None = Field(default=None, description="District code; all districts when omitted.")
    new_since_year: int | None = Field(
        default=None, ge=1000, le=9999, description="First year counted as new (新建住宅 > 80 m)."
    )


@router.post("/health-check/runs", status_code=201, summary="Compute and store a health-check run (planner)")
def create_health_check_run(request: Request, principal: Planner, body: HealthCheckRequest) -> dict[str, Any]:
    """Compute every indicator now and store the run; answers the stored values."""
    from cim.analysis.health_check import run_health_check

    report = run_health_check(_engine(request), district=body.district, new_since_year=body.new_since_year)
    audit(request, principal, "analysis.health-check", "ok", target=f"run:{report.run_id}")
    return _stored_health_check(_engine(request), report.run_id)


@router.get("/health-check/choropleth", summary="Districts with one indicator's value (GeoJSON)")
def choropleth(
    request: Request,
    _: Reader,
    indicator_code: Annotated[str, Query(alias="indicator", description="Indicator code, e.g. park_service_coverage")],
    run: Annotated[
        int | None, Query(ge=1, le=2**62, description="Run id; the latest health-check run when omitted.")
    ] = None,
) -> dict[str, Any]:
    """A FeatureCollection of district polygons (lon/lat) with ``value``, ``unit``, ``target``, ``meets``."""
    ind = indicator(indicator_code)
    run_id = run if run is not None else _latest_health_check(request, None)
    with _engine(request).connect() as conn:
        rows = q.run_results(conn, run_id, ind.code)
    features = [
        {
            "type": "Feature",
            "id": r["district_code"],
            "geometry": r["geometry"],
            "properties": {
                "district_code": r["district_code"],
                "indicator": ind.code,
                "name_zh": ind.zh,
                "name_en": ind.en,
                "value": r["value"],
                "unit": ind.unit,
                "target": ind.target,
                "meets": ind.meets(r["value"]),
            },
        }
        for r in rows
        if r["district_code"] is not None and r["geometry"] is not None
    ]
    return {"type": "FeatureCollection", "features": features, "run_id": run_id, "indicator": ind.to_dict()}


@router.get("/safety/dangerous-buildings", summary="Buildings appraised C or D (GeoJSON)")
def dangerous_buildings(request: Request, _: Reader, district: DistrictQuery = None) -> dict[str, Any]:
    """The dangerous-house map: footprints (lon/lat) with safety class, use, height, year."""
    from cim.analysis.safety import run_dangerous_buildings

    report = run_dangerous_buildings(_engine(request), district=district, store=False)
    return {**report.feature_collection(), "counts": report.counts}


@router.get("/safety/gas-proximity", summary="Buildings and manholes too close to gas pipes (GeoJSON)")
def gas_proximity(request: Request, _: Reader) -> dict[str, Any]:
    """Features within the GB 50028 separation of a gas pipe, each with its breaches (pipe, required, actual m)."""
    from cim.analysis.safety import run_gas_proximity

    report = run_gas_proximity(_engine(request), store=False)
    return {**report.feature_collection(), "distances_m": report.distances_m}


def _seed(seed: str | None) -> tuple[float, float] | str | None:
    from cim.analysis.flood import parse_seed

    return parse_seed(seed)


@router.get("/safety/flood", summary="Bathtub flood at a water level or volume (GeoJSON)")
def flood(
    request: Request,
    _: Reader,
    level: Annotated[
        float | None, Query(gt=-1000, lt=10_000, description="Water level, metres (normal height, 1985 datum).")
    ] = None,
    volume: Annotated[float | None, Query(gt=0, lt=1e15, description="Water volume, m³.")] = None,
    seed: Annotated[
        str | None, Query(description="Seed LON,LAT, or active-alarms (the active waterlogging points).")
    ] = None,
) -> dict[str, Any]:
    """Flooded polygons (lon/lat) with depth statistics, plus ``affected_building_ids``; not stored."""
    from cim.analysis.flood import run_flood

    report = run_flood(_engine(request), level=level, volume=volume, seed=_seed(seed), store=False)
    return {**report.feature_collection(), "volume_m3": report.volume_m3, "area_km2": report.flooded_area_km2}


@router.get("/safety/fire-coverage", summary="Areas beyond 5-minute fire-rescue reach (GeoJSON)")
def fire_coverage(request: Request, _: Reader, district: DistrictQuery = None) -> dict[str, Any]:
    """Per district, the area farther than the access distance from the road network reached in 5 minutes."""
    from cim.analysis.fire import run_fire_coverage

    report = run_fire_coverage(_engine(request), district=district, store=False)
    return report.feature_collection()


class SafetyRunRequest(BaseModel):
    """Parameters of a stored safety run; fields that do not apply to the analysis are ignored, unknown ones
    refused."""

    model_config = ConfigDict(extra="forbid")

    level: float | None = Field(default=None, description="flood: water level, m")
    volume: float | None = Field(default=None, description="flood: water volume, m³")
    seed: str | None = Field(default=None, description="flood: seed point LON,LAT, or active-alarms")
    district: str | None = Field(default=None, description="dangerous-buildings / fire-coverage: district code")
    distances_m: dict[str, float] | None = Field(default=None, description="gas-proximity: separation overrides")


@router.post("/safety/{analysis}/runs", status_code=201, summary="Compute and store a safety run (planner)")
def create_safety_run(request: Request, principal: Planner, analysis: str, body: SafetyRunRequest) -> dict[str, Any]:
    """Run ``flood``, ``gas-proximity``, ``dangerous-buildings`` or ``fire-coverage`` and store it."""
    from cim.analysis.fire import run_fire_coverage
    from cim.analysis.flood import run_flood
    from cim.analysis.safety import run_dangerous_buildings, run_gas_proximity

    engine = _engine(request)
    report: Any
    if analysis == "flood":
        report = run_flood(engine, level=body.level, volume=body.volume, seed=_seed(body.seed))
    elif analysis == "gas-proximity":
        report = run_gas_proximity(engine, distances=body.distances_m)
    elif analysis == "dangerous-buildings":
        report = run_dangerous_buildings(engine, district=body.district)
    elif analysis == "fire-coverage":
        report = run_fire_coverage(engine, district=body.district)
    else:
        raise NotFoundError(
            f"unknown safety analysis {analysis!r}; use flood, gas-proximity, dangerous-buildings or fire-coverage"
        )
    audit(request, principal, f"analysis.{analysis}", "ok", target=f"run:{report.run_id}")
    data: dict[str, Any] = report.to_dict()
    return data
