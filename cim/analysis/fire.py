"""Fire-rescue reach: the road network a fire engine reaches within 5 minutes of a fire station.

The road graph is built in PostGIS from live ``road`` facilities (noded at crossings, cost = geodesic
length ÷ speed by ``road_class``). Drive times come from pgRouting's ``pgr_drivingDistance`` when the
extension is present (the default, ``method="auto"``), else from NetworkX multi-source Dijkstra on the same
edges; both give identical node times. A building is covered when its footprint centroid lies within
``access_m`` metres (geodesic) of the reached part of the network (edges partly reached are cut with
``ST_LineSubstring``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
from sqlalchemy import Connection, Engine

from cim.analysis.report import JsonReport
from cim.analysis.runs import checked_code
from cim.db import analysis_queries as q
from cim.db.runs import ResultRow, add_results, finish_run, run_transaction, start_run
from cim.errors import AnalysisError

ROAD_SPEEDS_KMH: dict[str, float] = {
    "expressway": 60.0,
    "快速路": 60.0,
    "motorway": 60.0,
    "trunk": 50.0,
    "arterial": 45.0,
    "primary": 45.0,
    "主干路": 45.0,
    "secondary": 35.0,
    "sub_arterial": 35.0,
    "collector": 35.0,
    "次干路": 35.0,
    "tertiary": 30.0,
    "branch": 25.0,
    "local": 25.0,
    "residential": 20.0,
    "支路": 25.0,
    "service": 15.0,
}
"""Assumed fire-engine travel speeds (km/h) by ``road_class`` (lower-cased); urban emergency driving."""
DEFAULT_SPEED_KMH = 25.0
"""Speed of roads whose class is missing or unknown, km/h."""
REACH_SECONDS = 300.0
"""The 5-minute reach of 城市消防站建设标准 (建标152-2017): dispatch to arrival at the edge of the zone."""
ACCESS_M = 150.0
"""Largest distance (m) from the reached road to a building's centroid that still counts as covered."""

Method = Literal["auto", "pgrouting", "networkx"]


@dataclass
class FireReach:
    """What :func:`compute_fire_reach` built in the session (temp table ``fire_reach``)."""

    method: str
    edges: int
    stations: int
    reached_pieces: int
    seconds: float


def compute_fire_reach(
    conn: Connection, *, method: Method = "auto", limit_s: float = REACH_SECONDS, speeds: dict[str, float] | None = None
) -> FireReach:
    """Build the road graph and the temp table ``fire_reach`` of network parts reached within ``limit_s`` s."""
    started = time.perf_counter()
    edges = q.create_road_graph(conn, speeds or ROAD_SPEEDS_KMH, DEFAULT_SPEED_KMH)
    starts = q.fire_station_nodes(conn) if edges else []
    chosen = method
    if method == "auto":
        chosen = "pgrouting" if q.pgrouting_available(conn) else "networkx"
    if chosen == "pgrouting" and not q.pgrouting_available(conn):
        raise AnalysisError("pgRouting is not installed in this database; use method 'networkx'")
    if not starts:
        q.store_node_times(conn, {})
    elif chosen == "pgrouting":
        q.node_times_pgrouting(conn, starts, limit_s)
    else:
        graph: nx.Graph[int] = nx.Graph()
        for a, b, cost in q.road_edges(conn):
            if not graph.has_edge(a, b) or graph[a][b]["cost"] > cost:
                graph.add_edge(a, b, cost=cost)
        times = nx.multi_source_dijkstra_path_length(graph, set(starts), cutoff=limit_s, weight="cost")
        q.store_node_times(conn, {int(k): float(v) for k, v in times.items()})
    pieces = q.create_fire_reach(conn, limit_s)
    return FireReach(str(chosen), edges, len(starts), pieces, time.perf_counter() - started)


@dataclass
class FireCoverageReport(JsonReport):
    """Fire-rescue reach per district: covered buildings, coverage %, gap areas (GeoJSON, lon/lat)."""

    run_id: int | None
    method: str
    reach_seconds: float
    access_m: float
    districts: list[dict[str, Any]]
    total: dict[str, Any]
    gaps: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def feature_collection(self) -> dict[str, Any]:
        """Areas beyond the reach (per district) as a GeoJSON FeatureCollection (lon/lat) with coverage figures."""
        coverage = {d["district_code"]: d for d in self.districts}
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": g["geometry"],
                    "properties": {
                        "district_code": g["district_code"],
                        "area_km2": g["area_km2"],
                        **{k: v for k, v in coverage.get(g["district_code"], {}).items() if k != "district_code"},
                    },
                }
                for g in self.gaps
            ],
            "method": self.method,
            "reach_seconds": self.reach_seconds,
            "access_m": self.access_m,
            "total": self.total,
        }


def run_fire_coverage(
    engine: Engine,
    *,
    district: str | None = None,
    method: Method = "auto",
    access_m: float = ACCESS_M,
    limit_s: float = REACH_SECONDS,
    store: bool = True,
) -> FireCoverageReport:
    """Compute 5-minute fire reach, per-district building coverage and the gap areas; store them as a run."""
    started = time.perf_counter()
    district = checked_code(district)
    if not (access_m >= 0 and limit_s > 0):
        raise AnalysisError("the access distance must be ≥ 0 m and the reach time > 0 s")
    params = {"district": district, "method": method, "access_m": access_m, "limit_s": limit_s}
    with run_transaction(engine, store=store) as conn:
        if not q.create_district_scope(conn, district):
            raise AnalysisError(
                f"district {district!r} is not stored"
                if district
                else "no districts are stored; ingest districts first"
            )
        run_id = start_run(conn, "fire-coverage", params)
        q.create_building_scope(conn)
        reach = compute_fire_reach(conn, method=method, limit_s=limit_s)
        counts = q.fire_coverage_counts(conn, access_m)
        gaps = q.fire_gaps(conn, access_m)
        rows: list[ResultRow] = []
        districts: list[dict[str, Any]] = []
        total: dict[str, Any] = {"buildings": 0, "covered": 0, "coverage_pct": None}
        for c in counts:
            entry = {
                "district_code": c["district_code"],
                "buildings": int(c["n"]),
                "covered": int(c["covered"]),
                "coverage_pct": 100.0 * c["covered"] / c["n"] if c["n"] else None,
            }
            if c["is_total"]:
                total = entry
            else:
                districts.append(entry)
                rows.append(ResultRow("fire_5min_coverage", entry["coverage_pct"], "%", c["district_code"]))
        for g in gaps:
            rows.append(ResultRow("fire_gap", g["area_km2"], "km²", g["district_code"], g["ewkt"]))
        add_results(conn, run_id, rows)
        gap_out = [
            {"district_code": g["district_code"], "area_km2": g["area_km2"], "geometry": g["geometry"]} for g in gaps
        ]
        summary = {"total": total, "method": reach.method, "stations": reach.stations, "edges": reach.edges}
        finish_run(conn, run_id, summary)
    return FireCoverageReport(
        run_id if store else None,
        reach.method,
        limit_s,
        access_m,
        districts,
        total,
        gap_out,
        time.perf_counter() - started,
    )
