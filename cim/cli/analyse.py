"""``cim analyse …``: CIM+ analyses (urban health check, flood, gas proximity, dangerous buildings, fire reach)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from cim.cli.common import JsonOption, emit_json, state, stderr
from cim.errors import AnalysisError

if TYPE_CHECKING:
    from cim.analysis.fire import Method

app = typer.Typer(help="CIM+ analyses: urban health check (城市体检) and urban safety.", no_args_is_help=True)

DistrictOption = Annotated[str | None, typer.Option("--district", help="Limit to one district code.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print the indicator table as CSV on stdout.")]
NewSinceOption = Annotated[
    int | None, typer.Option("--new-since", help="First year counted as new for 新建住宅 > 80 m.")
]
FireMethodOption = Annotated[str, typer.Option("--fire-method", help="Drive-time engine: auto | pgrouting | networkx.")]
LevelOption = Annotated[float | None, typer.Option("--level", help="Water level, metres (normal height).")]
VolumeOption = Annotated[float | None, typer.Option("--volume", help="Water volume, m³ (level found by bisection).")]
SeedOption = Annotated[
    str | None,
    typer.Option(
        "--seed",
        help="Seed LON,LAT (degrees), or active-alarms (the active waterlogging points), not the water bodies.",
    ),
]
DistanceOption = Annotated[
    list[str] | None,
    typer.Option("--distance", help="Override a separation: CLASS=METRES (e.g. medium_a=2.0); repeatable."),
]


def _list_features(report: Any, line: Callable[[dict[str, Any]], str], summary: str) -> None:
    """One line per feature of an overlay report on stdout, its summary on stderr."""
    for feat in report.features:
        typer.echo(line(feat["properties"]))
    stderr.print(f"run {report.run_id}: {summary}")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@app.command("health-check")
def health_check(
    ctx: typer.Context,
    district: DistrictOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    new_since: NewSinceOption = None,
    fire_method: FireMethodOption = "auto",
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=0, max=64, help="Fan the service-coverage stage out over N more database backends."
        ),
    ] = 0,
) -> None:
    """Compute every health-check indicator per district (and for the whole scope); store the run."""
    from concurrent.futures import ThreadPoolExecutor

    from cim.analysis.health_check import run_health_check

    if fire_method not in ("auto", "pgrouting", "networkx"):
        raise AnalysisError(f"--fire-method must be auto, pgrouting or networkx, not {fire_method!r}")
    st = state(ctx)
    method = cast("Method", fire_method)
    if workers:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health-check") as pool:
            report = run_health_check(
                st.engine(),
                district=district,
                new_since_year=new_since,
                fire_method=method,
                executor=pool,
                partitions=workers,
            )
    else:
        report = run_health_check(st.engine(), district=district, new_since_year=new_since, fire_method=method)
    if as_json:
        emit_json(report.to_dict())
        return
    rows = report.table()
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["code"])
        writer.writeheader()
        writer.writerows(rows)
        return
    for v in report.values:
        where = v.district_code or "ALL"
        mark = {True: "ok", False: "!!", None: "  "}[v.meets]
        reason = v.detail.get("not_computable")
        shown = f"not computable: {reason}" if reason else f"{_fmt(v.value)} {v.unit}"
        typer.echo(f"{mark} {where:<10} {v.zh}  {shown}")
    stderr.print(f"run {report.run_id}: {len(rows)} values in {report.timings_s.get('total', 0):.1f} s")


@app.command("indicators")
def indicators(as_json: JsonOption = False) -> None:
    """List every registered health-check indicator: code, names, unit, target and what it needs."""
    from cim.analysis.indicators import INDICATORS

    if as_json:
        emit_json([i.to_dict() for i in INDICATORS])
        return
    for ind in INDICATORS:
        target = "" if ind.target is None else f" target {ind.direction} {_fmt(ind.target)}"
        needs = f" (needs {', '.join(ind.needs)})" if ind.needs else ""
        typer.echo(f"{ind.code:<34} {ind.zh} [{ind.unit}]{target}{needs}")


@app.command("flood")
def flood(
    ctx: typer.Context,
    level: LevelOption = None,
    volume: VolumeOption = None,
    seed: SeedOption = None,
    as_json: JsonOption = False,
) -> None:
    """Connected bathtub inundation on the DEM from the water bodies (or a seed point)."""
    from cim.analysis.flood import parse_seed, run_flood

    st = state(ctx)
    report = run_flood(st.engine(), level=level, volume=volume, seed=parse_seed(seed))
    if as_json:
        data = report.to_dict()
        data["polygons"] = [{k: v for k, v in p.items() if k != "geometry"} for p in report.polygons]
        emit_json(data)
        return
    typer.echo(
        f"level {report.level:.2f} m: {report.flooded_area_km2:.4f} km² flooded, {report.volume_m3:,.0f} m³, "
        f"max depth {_fmt(report.depth['max'])} m, {len(report.affected_building_ids)} buildings and "
        f"{len(report.affected_facilities)} facilities affected (run {report.run_id})"
    )


@app.command("gas-proximity")
def gas_proximity(
    ctx: typer.Context,
    distance: DistanceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Buildings and manholes within the GB 50028 separation distance of gas pipes."""
    from cim.analysis.safety import run_gas_proximity

    overrides: dict[str, float] = {}
    for item in distance or []:
        key, _, value = item.partition("=")
        try:
            overrides[key.strip()] = float(value)
        except ValueError:
            raise AnalysisError(f"--distance must be CLASS=METRES, got {item!r}") from None
    st = state(ctx)
    report = run_gas_proximity(st.engine(), distances=overrides)
    if as_json:
        emit_json(report.to_dict())
        return
    _list_features(
        report,
        lambda p: f"{p['kind']:<8} {p['id']:>8}  {p['min_distance_m']:.2f} m (pipe {p['breaches'][0]['pipe_id']})",
        f"{report.buildings} buildings, {report.manholes} manholes too close",
    )


@app.command("dangerous-buildings")
def dangerous_buildings(ctx: typer.Context, district: DistrictOption = None, as_json: JsonOption = False) -> None:
    """The dangerous-house map: buildings appraised C or D."""
    from cim.analysis.safety import run_dangerous_buildings

    st = state(ctx)
    report = run_dangerous_buildings(st.engine(), district=district)
    if as_json:
        emit_json(report.to_dict())
        return
    _list_features(report, lambda p: f"{p['safety_class']} {p['id']:>8}  {p['name'] or ''}", str(report.counts))


@app.command("fire-coverage")
def fire_coverage(
    ctx: typer.Context,
    district: DistrictOption = None,
    method: Annotated[str, typer.Option("--method", help="auto | pgrouting | networkx.")] = "auto",
    access: Annotated[float, typer.Option("--access", help="Building access distance from the road, m.")] = 150.0,
    as_json: JsonOption = False,
) -> None:
    """5-minute fire-rescue reach over the road network: coverage per district and the gap areas."""
    from cim.analysis.fire import run_fire_coverage

    if method not in ("auto", "pgrouting", "networkx"):
        raise AnalysisError(f"--method must be auto, pgrouting or networkx, not {method!r}")
    st = state(ctx)
    report = run_fire_coverage(st.engine(), district=district, method=cast("Method", method), access_m=access)
    if as_json:
        data = report.to_dict()
        data["gaps"] = [{k: v for k, v in g.items() if k != "geometry"} for g in report.gaps]
        emit_json(data)
        return
    for d in report.districts:
        typer.echo(f"{d['district_code']:<10} {_fmt(d['coverage_pct'])} % of {d['buildings']} buildings")
    stderr.print(f"run {report.run_id} ({report.method}): total {_fmt(report.total['coverage_pct'])} %")
