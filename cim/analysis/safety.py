"""Urban safety overlays: gas-pipeline proximity and the dangerous-house map (安全等级 C/D).

Separation distances default to GB 50028-2006《城镇燃气设计规范》: Table 6.3.3-1 (horizontal clearance of
buried gas pipes from building foundations / outer walls) for low to sub-high pressure, and §6.4.12
(high-pressure pipes to building outer walls, class-4 areas) for high pressure. They are planning screens,
not a substitute for the standard: pass ``distances`` to use the values of the governing edition.
Distances are geodesic (metres, CGCS2000 ellipsoid) between the pipe centre line and the building footprint
(or manhole point, the confined spaces where leaking gas collects).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from cim.analysis.report import FeaturesReport
from cim.analysis.runs import checked_code
from cim.db import analysis_queries as q
from cim.db.runs import ResultRow, add_results, finish_run, run_transaction, start_run
from cim.errors import AnalysisError

GAS_SEPARATION_M: dict[str, float] = {
    "low": 0.7,  # 低压 P < 0.01 MPa: to foundation 0.7 m
    "medium_b": 1.0,  # 中压B 0.01 ≤ P ≤ 0.2 MPa: 1.0 m
    "medium_a": 1.5,  # 中压A 0.2 < P ≤ 0.4 MPa: 1.5 m
    "sub_high_b": 4.5,  # 次高压B 0.4 < P ≤ 0.8 MPa: to outer wall 4.5 m
    "sub_high_a": 6.5,  # 次高压A 0.8 < P ≤ 1.6 MPa: to outer wall 6.5 m
    "high_b": 16.0,  # 高压B 1.6 < P ≤ 2.5 MPa: §6.4.12, class-4 area
    "high_a": 30.0,  # 高压A 2.5 < P ≤ 4.0 MPa: §6.4.12, class-4 area
}
"""Default separation (m) between a buried gas pipe and buildings by pressure class (GB 50028-2006)."""

PRESSURE_ALIASES: dict[str, str] = {
    "低压": "low",
    "中压b": "medium_b",
    "中压a": "medium_a",
    "次高压b": "sub_high_b",
    "次高压a": "sub_high_a",
    "高压b": "high_b",
    "高压a": "high_a",
    "中压": "medium_a",
    "次高压": "sub_high_a",
    "高压": "high_a",
    "medium": "medium_a",
    "sub_high": "sub_high_a",
    "high": "high_a",
    "mb": "medium_b",
    "ma": "medium_a",
}
"""Other spellings of pressure classes found in source data, mapped to the keys of :data:`GAS_SEPARATION_M`."""

UNKNOWN_PRESSURE_M = GAS_SEPARATION_M["medium_a"]
"""Separation used for pipes without a (known) pressure class: medium A, the common urban distribution class."""


def separation_table(distances: dict[str, float] | None = None) -> dict[str, float]:
    """Pressure class (lower case, every alias included) → separation in metres."""
    table = dict(GAS_SEPARATION_M)
    for key, value in (distances or {}).items():
        checked_code(key, "pressure class")
        if not value >= 0:
            raise AnalysisError(f"separation distance for {key!r} must be ≥ 0 m, got {value}")
        name = PRESSURE_ALIASES.get(key.lower(), key.lower())
        if name not in GAS_SEPARATION_M:  # an unknown key would be silently ignored by the query
            raise AnalysisError(
                f"unknown pressure class {key!r} in distances; use {', '.join(GAS_SEPARATION_M)} or 低压, 中压A…"
            )
        table[name] = float(value)
    for alias, key in PRESSURE_ALIASES.items():
        table.setdefault(alias, table[key])
    return table


def _feature(geometry: Any, properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


@dataclass
class GasProximityReport(FeaturesReport):
    """Buildings and manholes closer to a gas pipe than allowed; GeoJSON features in lon/lat (CRS84)."""

    run_id: int | None
    distances_m: dict[str, float]
    buildings: int
    manholes: int
    features: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def run_gas_proximity(
    engine: Engine,
    *,
    distances: dict[str, float] | None = None,
    store: bool = True,
) -> GasProximityReport:
    """Find buildings and manholes within the separation distance of a live gas pipe; store the run."""
    started = time.perf_counter()
    table = separation_table(distances)
    with run_transaction(engine, store=store) as conn:
        run_id = start_run(conn, "gas-proximity", {"distances_m": {k: table[k] for k in GAS_SEPARATION_M}})
        pairs = q.gas_proximity(conn, table, UNKNOWN_PRESSURE_M)
        features: list[dict[str, Any]] = []
        rows: list[ResultRow] = []
        seen: dict[tuple[str, int], dict[str, Any]] = {}
        for p in pairs:
            key = (str(p["feature_kind"]), int(p["feature_id"]))
            breach = {
                "pipe_id": int(p["pipe_id"]),
                "pressure_class": p["pressure_class"],
                "required_m": float(p["required_m"]),
                "distance_m": round(float(p["distance_m"]), 3),
            }
            if key in seen:
                seen[key]["properties"]["breaches"].append(breach)
                continue
            props = {"kind": key[0], "id": key[1], "name": p["name"], "breaches": [breach]}
            feat = _feature(p["geometry"], props)
            seen[key] = feat
            features.append(feat)
        for feat in features:
            props = feat["properties"]
            worst = min(props["breaches"], key=lambda b: b["distance_m"])
            props["min_distance_m"] = worst["distance_m"]
            rows.append(
                ResultRow(
                    f"gas_proximity_{props['kind']}",
                    worst["distance_m"],
                    "m",
                    attributes={"feature_id": props["id"], "breaches": props["breaches"]},
                )
            )
        add_results(conn, run_id, rows)
        n_b = sum(1 for x in features if x["properties"]["kind"] == "building")
        finish_run(conn, run_id, {"buildings": n_b, "manholes": len(features) - n_b})
    return GasProximityReport(
        run_id if store else None,
        {k: table[k] for k in GAS_SEPARATION_M},
        n_b,
        len(features) - n_b,
        features,
        time.perf_counter() - started,
    )


@dataclass
class DangerousBuildingsReport(FeaturesReport):
    """Buildings appraised C or D (JGJ 125), as GeoJSON features (lon/lat), with counts by class."""

    run_id: int | None
    classes: list[str]
    counts: dict[str, int]
    features: list[dict[str, Any]] = field(default_factory=list)


def run_dangerous_buildings(
    engine: Engine,
    *,
    district: str | None = None,
    classes: tuple[str, ...] = ("C", "D"),
    store: bool = True,
) -> DangerousBuildingsReport:
    """The dangerous-house map: live buildings whose safety class is C or D; stored as a run."""
    district = checked_code(district)
    bad = [c for c in classes if c not in ("A", "B", "C", "D")]
    if bad:
        raise AnalysisError(f"unknown safety classes {bad}; classes are A, B, C, D (JGJ 125)")
    with run_transaction(engine, store=store) as conn:
        run_id = start_run(conn, "dangerous-buildings", {"district": district, "classes": list(classes)})
        rows = q.dangerous_buildings(conn, district, classes)
        features = [_feature(r.pop("geometry"), r) for r in rows]
        counts = {c: sum(1 for r in rows if r["safety_class"] == c) for c in classes}
        add_results(
            conn,
            run_id,
            [
                ResultRow(
                    "dangerous_building",
                    None,
                    None,
                    r["district_code"],
                    attributes={"building_id": r["id"], "safety_class": r["safety_class"]},
                )
                for r in rows
            ],
        )
        finish_run(conn, run_id, {"counts": counts})
    return DangerousBuildingsReport(run_id if store else None, list(classes), counts, features)
