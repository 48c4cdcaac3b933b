"""``cim broker`` and ``cim sensors simulate`` from the command line, against a real broker and the platform."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests import factories as f
from tests.analysis.local import Local
from tests.sensing.conftest import wait_until


def test_broker_up_status_down_with_json(run_cim, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    up = run_cim("broker", "up", "--json")
    assert up.exit_code == 0, up.stderr
    report = json.loads(up.stdout)
    assert report["running"] and report["host"] == "127.0.0.1" and report["publisher_user"] == "cim-publisher"
    status = json.loads(run_cim("broker", "status", "--json").stdout)
    assert status["port"] == report["port"] and status["publisher_password"]
    again = json.loads(run_cim("broker", "up", "--json").stdout)
    assert again["pid"] == report["pid"]  # found running, not started twice
    assert json.loads(run_cim("broker", "down", "--json").stdout) == {"stopped": True}
    assert json.loads(run_cim("broker", "status", "--json").stdout)["running"] is False
    assert json.loads(run_cim("broker", "down", "--json").stdout) == {"stopped": False}


def test_simulated_sensors_on_city_features_reach_the_platform(  # type: ignore[no-untyped-def]
    run_cim, settings: Settings, engine: Engine, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    from cim.api.app import create_app
    from cim.api.settings import ApiSettings, ViewerSettings

    here = Local(114.30, 30.58)
    with engine.begin() as conn:
        ds = f.dataset(conn, layer="facilities")
        for i in range(3):
            f.facility(conn, ds, "manhole", here.point(i * 50, 0), name=f"MH-{i}")
            f.facility(conn, ds, "street_lamp", here.point(i * 50, 20))
        f.facility(conn, ds, "pipe_gas", here.line((-100, 10), (200, 10)), pressure_class="medium_a")
        f.facility(conn, ds, "bridge", here.box(0, 100, 30, 10))
        f.building(conn, ds, here.box(0, 200, 20, 20), safety_class="D")
    result = run_cim("sensors", "simulate", "--things", "8", "--rate", "200", "--duration", "1.5", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["things"] == 8 and report["published"] >= 250
    assert set(report["kinds"]) == {"water_level", "gas", "strain", "tilt", "lamp_power"}
    again = json.loads(
        run_cim("sensors", "simulate", "--things", "8", "--rate", "50", "--duration", "0.2", "--json").stdout
    )
    assert again["things"] == 8
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sta_thing")).scalar_one() == 8
    # published before the platform ran: the persistent session kept them for it
    monkeypatch.setenv("CIM_SENSING_MQTT", "true")
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app) as client:
        total = report["acknowledged"] + again["acknowledged"]
        assert total == report["published"] + again["published"]
        wait_until(
            lambda: client.get("/sta/v1.1/Observations?$count=true&$top=0").json()["@iot.count"] == total,
            timeout=60,
            what="every simulated observation",
        )
        assert len(client.get("/sensors/latest").json()["features"]) == 8
    PrivateBroker(settings.data_path).down()
