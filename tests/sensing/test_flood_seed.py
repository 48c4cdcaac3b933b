"""CIM+: a manhole water level published over MQTT raises an alarm, the alarm marks an active waterlogging
point, and the flood analysis seeds from the active points (API and CLI)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
import rasterio
import shapely
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from sqlalchemy import Engine, text

from cim import crs
from cim.analysis.flood import SEED_ACTIVE_ALARMS, run_flood
from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.datasets import insert_dataset
from cim.errors import AnalysisError
from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests import factories as f
from tests.sensing.conftest import measurement_datastream, publish_acknowledged, publisher_client, wait_until

ROOT = "/sta/v1.1"
GK = 4547  # CGCS2000 / 3-degree Gauss-Krüger CM 114E
X0, Y0, CELL = 520_000.0, 3_385_000.0, 10.0


def _lonlat(col: float, row: float) -> tuple[float, float]:
    lon, lat = crs.transform_xy(np.array([X0 + col * CELL]), np.array([Y0 - row * CELL]), GK, crs.CGCS2000)
    return float(lon[0]), float(lat[0])


def _dem(engine: Engine, settings: Settings) -> None:
    """50 × 50 cells of 10 m: low land (cols 0–19, z 1), a ridge (20–21, z 5), a basin (22–34, z 0.5),
    high ground (35–49, z 10); no water bodies, so only a seed floods anything."""
    z = np.full((50, 50), 10.0, dtype=np.float32)
    z[:, 0:20] = 1.0
    z[:, 20:22] = 5.0
    z[:, 22:35] = 0.5
    out = settings.data_path / "rasters" / "dem.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": 50, "height": 50, "count": 1, "dtype": "float32", "nodata": -9999.0}
    with rasterio.open(out, "w", crs=f"EPSG:{GK}", transform=from_origin(X0, Y0, CELL, CELL), **profile) as dst:
        dst.write(z, 1)
    with engine.begin() as conn:
        insert_dataset(conn, name="dem", kind="raster", layer="dem", path=str(out), sha256="2" * 64)


@pytest.fixture
def platform(settings: Settings, mqtt_env: PrivateBroker) -> Iterator[TestClient]:
    """The app with its MQTT subscriber running (as under ``cim serve``)."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        sensing = app.state.sensing
        wait_until(lambda: sensing.subscriber is not None and sensing.subscriber.connected, what="subscriber")
        yield client


def test_high_water_level_published_over_mqtt_seeds_the_flood_analysis(  # type: ignore[no-untyped-def]
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine, settings: Settings, run_cim
) -> None:
    _dem(engine, settings)
    with engine.begin() as conn:
        manhole = f.facility(conn, f.dataset(conn, layer="facilities"), "manhole", shapely.Point(*_lonlat(28.5, 10.5)))
    key = new_api_key(engine, name="gateway", role="sensor")[1]
    thing = {
        "name": "MH-7 gauge",
        "description": "water level in manhole MH-7",
        "properties": {"cim:facility": manhole},
        "Datastreams": [measurement_datastream("MH-7 water level", "water level")],
    }
    r = platform.post(f"{ROOT}/Things", json=thing, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    ds = platform.get(f"{ROOT}/Things({r.json()['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"]
    rule = {"name": "manhole full", "kind": "over", "threshold": 0.8, "datastream_id": ds}
    assert platform.post("/alarms/rules", json=rule, headers={"X-API-Key": key}).status_code == 201

    no_seed = platform.get("/alarms/waterlogging/flood?level=2")
    assert no_seed.status_code == 422 and "no waterlogging point is active" in no_seed.text

    pub = publisher_client(mqtt_env)
    body = json.dumps({"phenomenonTime": "2026-12-01T08:00:00Z", "result": 1.3})
    publish_acknowledged(pub, f"v1.1/Datastreams({ds})/Observations", body)
    wait_until(lambda: platform.get("/alarms/waterlogging").json()["features"], what="an active waterlogging point")
    pub.loop_stop()

    flood = platform.get("/alarms/waterlogging/flood?level=2")
    assert flood.status_code == 200, flood.text
    doc = flood.json()
    # Water rises from the manhole's cell in the basin: its 13 × 50 cells of 100 m², 1.5 m deep; the low land
    # beyond the 5 m ridge stays dry.
    assert doc["area_km2"] == pytest.approx(13 * 50 * 100 / 1e6, rel=0.01)
    assert doc["depth"]["max"] == pytest.approx(1.5)
    assert doc["seeds"].startswith("1 active waterlogging points")

    stored = run_cim("sensors", "flood", "--level", "2", "--json")
    assert stored.exit_code == 0, stored.stderr
    report = json.loads(stored.stdout)
    assert report["flooded_area_km2"] == pytest.approx(doc["area_km2"])
    with engine.connect() as conn:
        params = conn.execute(
            text("SELECT parameters FROM analysis_run WHERE id = :i"), {"i": report["run_id"]}
        ).scalar_one()
    assert params["seed"] == SEED_ACTIVE_ALARMS and len(params["seed_points"]) == 1
    overlay = platform.get("/analysis/safety/flood", params={"level": 2, "seed": SEED_ACTIVE_ALARMS})
    assert overlay.status_code == 200, overlay.text
    assert overlay.json()["area_km2"] == pytest.approx(doc["area_km2"])
    analysed = run_cim("analyse", "flood", "--level", "2", "--seed", SEED_ACTIVE_ALARMS, "--json")
    assert analysed.exit_code == 0, analysed.stderr
    assert json.loads(analysed.stdout)["flooded_area_km2"] == pytest.approx(doc["area_km2"])

    publish_acknowledged(
        publisher_client(mqtt_env, client_id="second"),
        f"v1.1/Datastreams({ds})/Observations",
        json.dumps({"phenomenonTime": "2026-12-01T08:05:00Z", "result": 0.2}),
    )
    wait_until(lambda: not platform.get("/alarms/waterlogging").json()["features"], what="the alarm to clear")
    with pytest.raises(AnalysisError, match="no waterlogging point is active"):
        run_flood(engine, level=2.0, seed=SEED_ACTIVE_ALARMS, store=False)
