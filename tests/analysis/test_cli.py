"""``cim analyse …`` end to end against a fixture database."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlalchemy import Engine

from cim.analysis.indicators import INDICATORS
from tests import factories as f
from tests.analysis.local import Local

HERE = Local(114.30, 30.58)


def _city(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", HERE.box(0, 0, 4000, 4000), 20_000, built_up_area_km2=4.0)
        f.facility(conn, ds, "road", HERE.line((-1500, 0), (1500, 0)), road_class="arterial")
        f.facility(conn, ds, "fire_station", HERE.point(0, 10))
        f.facility(conn, ds, "kindergarten", HERE.point(0, 100))
        f.facility(conn, ds, "pipe_gas", HERE.line((-100, 50), (100, 50)), pressure_class="low")
        f.building(conn, ds, HERE.box(0, 55.5, 10, 10), use="residential", district_code="A", safety_class="D")
        f.building(conn, ds, HERE.box(0, 1800, 10, 10), use="residential", district_code="A", year_built=1990)


def test_health_check_json_and_csv(engine: Engine, run_cim: Any) -> None:
    _city(engine)
    result = run_cim("analyse", "health-check", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["districts"] == ["A"] and data["run_id"] > 0
    values = {(v["code"], v["district_code"]): v["value"] for v in data["values"]}
    assert values["kindergarten_service_coverage", "A"] == 50.0  # 100 m away vs 1,700 m away
    assert values["fire_5min_coverage", "A"] == 50.0  # the building 1.8 km north of the road is beyond 150 m
    assert values["unsafe_housing_share", "A"] == 100.0
    assert values["old_residential_share", "A"] == 100.0
    assert len(data["values"]) == 2 * len(INDICATORS)
    result = run_cim("analyse", "health-check", "--csv", "--district", "A")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 2 * len(INDICATORS) and rows[0]["code"] == INDICATORS[0].code
    table = run_cim("analyse", "health-check")
    assert table.exit_code == 0 and "幼儿园服务半径覆盖率  50.00 %" in table.stdout
    fanned = run_cim("analyse", "health-check", "--json", "--workers", "2")
    assert fanned.exit_code == 0, fanned.stderr
    fanned_data = json.loads(fanned.stdout)
    assert fanned_data["parameters"]["coverage_partitions"] == 1  # one district: one partition
    assert {(v["code"], v["district_code"]): v["value"] for v in fanned_data["values"]} == values


def test_safety_commands_json(engine: Engine, run_cim: Any) -> None:
    _city(engine)
    gas = json.loads(run_cim("analyse", "gas-proximity", "--json").stdout)
    assert gas["buildings"] == 1  # 0.5 m from a low-pressure pipe (0.7 m required)
    listing = run_cim("analyse", "gas-proximity")
    assert listing.exit_code == 0 and "building" in listing.stdout
    assert "50.00 % of 2 buildings" in run_cim("analyse", "fire-coverage").stdout
    relaxed = json.loads(run_cim("analyse", "gas-proximity", "--json", "--distance", "low=0.3").stdout)
    assert relaxed["buildings"] == 0
    dangerous = json.loads(run_cim("analyse", "dangerous-buildings", "--json").stdout)
    assert dangerous["counts"] == {"C": 0, "D": 1}
    res = run_cim("analyse", "fire-coverage", "--json", "--method", "networkx")
    assert res.exit_code == 0, res.stderr
    fire = json.loads(res.stdout)
    assert fire["total"]["coverage_pct"] == 50.0 and fire["method"] == "networkx"
    assert fire["gaps"] and fire["gaps"][0]["area_km2"] > 0


def test_errors_are_one_line_with_nonzero_exit(engine: Engine, run_cim: Any) -> None:
    result = run_cim("analyse", "flood", "--level", "3")
    assert result.exit_code == 14 and "no DEM is loaded" in result.stderr
    result = run_cim("analyse", "health-check", "--district", "X")
    assert result.exit_code == 14 and result.stderr.count("\n") == 1
