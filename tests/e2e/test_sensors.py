"""The live sensor layer and the dashboard in headless Chromium: a published observation changes a sensor's
colour within 2 s, a click shows its time series and alarms, and the dashboard (可视化大屏) loads."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cim.api.security import new_api_key
from cim.db.engine import make_engine
from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests.e2e.conftest import Browser, launch_browser, open_viewer, start_server, stop_server
from tests.sensing.conftest import measurement_datastream, publish_acknowledged, publisher_client, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sensors-e2e")]
GREEN, RED = "#2ecc71", "#e74c3c"


@pytest.fixture(scope="module")
def sensing_server(module_settings: Settings) -> Iterator[dict[str, Any]]:
    import os

    module_settings.data_path.mkdir(parents=True, exist_ok=True)
    broker = PrivateBroker(module_settings.data_path)
    broker.up()
    os.environ["CIM_SENSING_MQTT"] = "true"
    try:
        live = start_server(module_settings)
    finally:
        os.environ.pop("CIM_SENSING_MQTT", None)
    engine = make_engine(str(module_settings.database_url))
    key = new_api_key(engine, name="e2e", role="sensor")[1]
    import httpx

    with httpx.Client(base_url=live.base_url, headers={"X-API-Key": key}) as http:
        thing = {
            "name": "manhole gauge",
            "description": "e2e",
            "Locations": [
                {
                    "name": "here",
                    "description": "here",
                    "encodingType": "application/geo+json",
                    "location": {"type": "Point", "coordinates": [114.30, 30.58]},
                }
            ],
            "Datastreams": [measurement_datastream("water level", "water level")],
        }
        r = http.post("/sta/v1.1/Things", json=thing)
        assert r.status_code == 201, r.text
        ds = http.get(f"/sta/v1.1/Things({r.json()['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"]
        assert (
            http.post("/alarms/rules", json={"kind": "over", "threshold": 0.5, "datastream_id": ds}).status_code == 201
        )
        r = http.post(
            f"/sta/v1.1/Datastreams({ds})/Observations", json={"phenomenonTime": "2026-12-01T08:00:00Z", "result": 0.1}
        )
        assert r.status_code == 201
    yield {"base_url": live.base_url, "datastream": ds, "broker": broker, "app": live.server.config.app, "key": key}
    stop_server(live)
    broker.down()
    engine.dispose()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    playwright, b = launch_browser(Path(tmp_path_factory.mktemp("chromium-sensors")))
    yield b
    b.page.goto("about:blank")  # ends the page's event stream, so the server can stop
    b.context.close()
    playwright.stop()


def test_a_published_observation_turns_the_sensor_red_within_two_seconds(
    sensing_server: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    page = browser.page
    ds = sensing_server["datastream"]
    open_viewer(browser, sensing_server["base_url"])
    page.evaluate("() => window.cimViewer.ready.then(() => true)")
    page.wait_for_function("() => window.cimViewer.sensors !== undefined")
    page.evaluate("() => window.cimViewer.sensors.loaded")
    assert page.evaluate(f"() => window.cimViewer.sensors.colourOf({ds})") == GREEN
    page.wait_for_function("() => window.cimViewer.sensors.connected", timeout=20_000)
    app = sensing_server["app"]
    wait_until(lambda: app.state.sensing.subscriber is not None and app.state.sensing.subscriber.connected)
    pub = publisher_client(sensing_server["broker"], client_id="e2e-publisher")
    started = time.monotonic()
    publish_acknowledged(
        pub,
        f"v1.1/Datastreams({ds})/Observations",
        json.dumps({"phenomenonTime": "2026-12-01T08:05:00Z", "result": 0.9}),
    )
    page.wait_for_function(f"() => window.cimViewer.sensors.colourOf({ds}) === '{RED}'", timeout=10_000, polling=50)
    latency = time.monotonic() - started
    pub.loop_stop()
    assert latency < 2.0, f"the sensor changed colour {latency:.2f} s after the publish"
    page.screenshot(path=str(artifacts / "sensors-alarm.png"))
    page.evaluate(f"() => window.cimViewer.sensors.show({ds})")
    page.wait_for_function("() => document.querySelectorAll('#sensor-alarms li').length >= 1", timeout=10_000)
    series = page.evaluate("() => window.cimViewer.sensors.chart().getOption().series[0].data.length")
    assert series == 2
    assert "over" in page.inner_text("#sensor-alarms") or "0.9" in page.inner_text("#sensor-alarms")
    assert browser.log.page_errors == []


def test_the_dashboard_loads_with_counts_charts_alarms_and_a_3d_view(
    sensing_server: dict[str, Any], browser: Browser, artifacts: Path
) -> None:
    import httpx

    page = browser.page
    ds = sensing_server["datastream"]
    r = httpx.post(  # an alarm on the board whether or not the viewer test ran first
        f"{sensing_server['base_url']}/sta/v1.1/Datastreams({ds})/Observations",
        json={"phenomenonTime": "2026-12-01T08:10:00Z", "result": 0.95},
        headers={"X-API-Key": sensing_server["key"]},
    )
    assert r.status_code == 201, r.text
    page.goto(f"{sensing_server['base_url']}/viewer/dashboard.html", wait_until="load")
    page.wait_for_function("() => window.cimDashboard !== undefined")
    result = page.evaluate("() => window.cimDashboard.loaded")
    assert result["sensors"] == 1
    assert page.inner_text("#count-things") == "1"
    assert page.inner_text("#count-alarms") == "1"
    assert "0.5" in page.inner_text("#alarm-list") or "above" in page.inner_text("#alarm-list")
    assert page.evaluate("() => window.cimDashboard.charts.status.getOption().series[0].data.length") == 4
    assert page.evaluate("() => window.cimDashboard.charts.health !== undefined")
    assert page.evaluate("() => document.querySelector('#cesium canvas') !== null")
    page.screenshot(path=str(artifacts / "dashboard.png"))
    assert page.evaluate("() => window.cimDashboard.errors") == []
