"""``/analysis/…`` through the real app factory on this test's database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cim.analysis.health_check import run_health_check
from cim.analysis.indicators import INDICATORS
from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from tests import factories as f
from tests.analysis.local import Local
from tests.analysis.test_safety import _flood_fixture

HERE = Local(114.30, 30.58)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


def _city(engine: Engine) -> None:
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", HERE.box(0, 0, 2000, 2000), 10_000, built_up_area_km2=4.0)
        f.district(conn, "B", HERE.box(2000, 0, 2000, 2000), 90_000, built_up_area_km2=4.0)
        f.facility(conn, ds, "road", HERE.line((-900, 0), (2900, 0)), road_class="arterial")
        f.facility(conn, ds, "fire_station", HERE.point(0, 10))
        f.facility(conn, ds, "pipe_gas", HERE.line((-100, 50), (100, 50)), pressure_class="low")
        f.building(conn, ds, HERE.box(0, 55.5, 10, 10), use="residential", district_code="A", safety_class="C")
        f.building(conn, ds, HERE.box(2000, 500, 10, 10), use="residential", district_code="B")


def test_health_check_get_reads_the_run_a_planner_stored(client: TestClient, engine: Engine) -> None:
    _city(engine)
    none_yet = client.get("/analysis/health-check")
    assert none_yet.status_code == 404 and "POST /analysis/health-check/runs" in none_yet.json()["detail"]
    planner = new_api_key(engine, name="p", role="planner")[1]
    assert client.post("/analysis/health-check/runs", json={}, headers={"X-API-Key": planner}).status_code == 201
    first = client.get("/analysis/health-check")
    assert first.status_code == 200, first.text
    body = first.json()
    assert len(body["values"]) == 3 * len(INDICATORS)  # A, B and the whole scope
    density = {v["district_code"]: v["value"] for v in body["values"] if v["code"] == "population_density"}
    assert density == {"A": 2500.0, "B": 22500.0, None: 12500.0}
    again = client.get("/analysis/health-check").json()
    assert again["run"]["id"] == body["run"]["id"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM analysis_run")).scalar_one() == 1
    defs = client.get("/analysis/health-check/indicators").json()
    assert {d["code"] for d in defs} == {i.code for i in INDICATORS}


def test_choropleth_is_geojson_in_lon_lat(client: TestClient, engine: Engine) -> None:
    _city(engine)
    run_health_check(engine)
    fc = client.get("/analysis/health-check/choropleth", params={"indicator": "high_density_area"}).json()
    assert fc["type"] == "FeatureCollection"
    values = {x["properties"]["district_code"]: x["properties"]["value"] for x in fc["features"]}
    assert values == {"A": 0.0, "B": 4.0}
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 114.2 < lon < 114.4 and 30.5 < lat < 30.7
    bad = client.get("/analysis/health-check/choropleth", params={"indicator": "nope"})
    assert bad.status_code == 422 and set(bad.json()) >= {"code", "title", "detail"}


def test_post_runs_need_a_planner_key(client: TestClient, engine: Engine) -> None:
    _city(engine)
    assert client.post("/analysis/health-check/runs", json={}).status_code == 401
    viewer = new_api_key(engine, name="v", role="viewer")[1]
    planner = new_api_key(engine, name="p", role="planner")[1]
    assert client.post("/analysis/health-check/runs", json={}, headers={"X-API-Key": viewer}).status_code == 403
    made = client.post("/analysis/health-check/runs", json={"district": "B"}, headers={"X-API-Key": planner})
    assert made.status_code == 201, made.text
    assert made.json()["run"]["parameters"]["district"] == "B"
    runs = client.get("/analysis/health-check/runs").json()
    assert [r["id"] for r in runs] == [made.json()["run"]["id"]]
    gas = client.post("/analysis/safety/gas-proximity/runs", json={}, headers={"X-API-Key": planner})
    assert gas.status_code == 201 and gas.json()["buildings"] == 1 and gas.json()["run_id"]
    assert client.post("/analysis/safety/nope/runs", json={}, headers={"X-API-Key": planner}).status_code == 404


def test_safety_overlays(client: TestClient, engine: Engine) -> None:
    _city(engine)
    dangerous = client.get("/analysis/safety/dangerous-buildings").json()
    assert dangerous["type"] == "FeatureCollection" and dangerous["counts"] == {"C": 1, "D": 0}
    gas = client.get("/analysis/safety/gas-proximity").json()
    assert [x["properties"]["kind"] for x in gas["features"]] == ["building"]
    fire = client.get("/analysis/safety/fire-coverage").json()
    assert fire["type"] == "FeatureCollection" and fire["total"]["coverage_pct"] == 50.0
    assert {x["properties"]["district_code"] for x in fire["features"]} == {"A", "B"}
    with engine.connect() as conn:  # GET overlays are previews: nothing stored
        assert conn.execute(text("SELECT count(*) FROM analysis_run")).scalar_one() == 0


def test_flood_overlay(client: TestClient, engine: Engine, settings: Settings) -> None:
    assert client.get("/analysis/safety/flood", params={"level": 2}).status_code == 422  # no DEM yet
    wet, _, _ = _flood_fixture(engine, settings)
    fc = client.get("/analysis/safety/flood", params={"level": 2}).json()
    assert fc["affected_building_ids"] == [wet]
    assert fc["features"][0]["properties"]["depth_max"] == pytest.approx(1.0)
    assert fc["area_km2"] == pytest.approx(0.075, rel=0.01)
