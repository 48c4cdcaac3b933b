"""The indicator registry: every indicator computes on the sample city, a toy one plugs in, no districts is no error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.analysis.health_check import run_health_check
from cim.analysis.indicators import INDICATORS, NEEDS, Indicator
from cim.api.app import create_app
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from sample_models.district import generate_district
from sample_models.load import load_district
from tests import factories as f
from tests.analysis.local import Local
from tests.plugins.toy_indicator import TALL_BUILDINGS

WUHAN = Local(114.30, 30.58)


@pytest.fixture
def toy_indicator() -> Iterator[Indicator]:
    """The toy indicator, registered for one test."""
    INDICATORS.register(TALL_BUILDINGS)
    yield TALL_BUILDINGS
    INDICATORS.unregister(TALL_BUILDINGS.code)


def test_every_registered_indicator_computes_on_the_sample_city(
    engine: Engine, settings: Settings, tmp_path: Path, toy_indicator: Indicator
) -> None:
    files = generate_district(tmp_path / "district", buildings=400)
    load_district(engine, settings, files)
    report = run_health_check(engine)
    assert len(report.districts) == 3
    for ind in INDICATORS:
        for code in (*report.districts, None):
            value = report.value(ind.code, code)
            assert value is not None, (ind.code, code)
    assert report.value("tall_building_share") > 0.0


def test_without_districts_the_health_check_computes_what_the_layers_allow(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.facility(conn, ds, "school", WUHAN.point(0, 0))
        f.building(conn, ds, WUHAN.box(100, 0, 10, 10), use="residential", height=30.0)  # 100 m from the school
        f.building(conn, ds, WUHAN.box(900, 0, 10, 10), use="residential", height=120.0)  # 900 m: not covered
        f.parcel(conn, ds, WUHAN.box(100, 0, 40, 40), max_density=0.01)  # the first house covers 6 % of it
    report = run_health_check(engine)
    assert report.districts == []
    assert {v.district_code for v in report.values} == {None}
    assert report.value("school_service_coverage") == pytest.approx(50.0)
    assert report.value("super_high_rise_count") == 1.0
    assert report.value("parcels_over_limits") == 1.0
    not_computable = {v.code: v.detail["not_computable"] for v in report.values if "not_computable" in v.detail}
    needing = {i.code: i.needs for i in INDICATORS if i.needs}
    assert set(not_computable) == set(needing)
    for code, needs in needing.items():
        assert not_computable[code] == NEEDS[needs[0]]
    assert "population" in not_computable["population_density"]


def test_a_registered_indicator_is_listed_run_and_served(
    toy_indicator: Indicator, engine: Engine, run_cim, settings: Settings
) -> None:
    listed = run_cim("analyse", "indicators", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)[-1]["code"] == "tall_building_share"
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", WUHAN.box(0, 0, 6000, 6000), 10_000)
        f.building(conn, ds, WUHAN.box(0, 0, 10, 10), use="office", height=30.0, district_code="A")
        f.building(conn, ds, WUHAN.box(50, 0, 10, 10), use="office", height=12.0, district_code="A")
    run = run_cim("analyse", "health-check", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)
    toy = [v for v in body["values"] if v["code"] == "tall_building_share"]
    assert [(v["district_code"], v["value"]) for v in toy] == [("A", 50.0), (None, 50.0)]

    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app) as client:
        defs = client.get("/analysis/health-check/indicators").json()
        assert defs[-1]["code"] == "tall_building_share" and defs[-1]["zh"] == "高层建筑占比"
        stored = client.get(f"/analysis/health-check/runs/{body['run_id']}").json()
        assert {v["value"] for v in stored["values"] if v["code"] == "tall_building_share"} == {50.0}
    app.state.engine.dispose()
