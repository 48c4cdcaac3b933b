"""The live feed: a stored observation reaches server-sent-event clients at once."""

from __future__ import annotations

import threading
import time

import httpx

from cim.api.security import new_api_key
from tests.sensing.conftest import LiveServer, manhole_thing


def test_stored_observation_reaches_server_sent_event_clients_within_a_second(live_server: LiveServer) -> None:
    key = new_api_key(live_server.app.state.engine, name="gw", role="sensor")[1]
    lines: list[tuple[float, str]] = []
    started = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", live_server.url + "/sensors/live", timeout=30) as r:
            started.set()
            for line in r.iter_lines():
                lines.append((time.monotonic(), line))

    threading.Thread(target=listen, daemon=True).start()
    assert started.wait(10)
    time.sleep(0.5)
    h = {"X-API-Key": key}
    thing = httpx.post(live_server.url + "/sta/v1.1/Things", json=manhole_thing(), headers=h).json()
    ds = httpx.get(live_server.url + f"/sta/v1.1/Things({thing['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"]
    t0 = time.monotonic()
    r = httpx.post(live_server.url + f"/sta/v1.1/Datastreams({ds})/Observations", json={"result": 1.5}, headers=h)
    assert r.status_code == 201
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(line.startswith("data:") for _t, line in lines):
        time.sleep(0.05)
    data = [(t, line) for t, line in lines if line.startswith("data:")]
    assert data, f"no event; got {lines}"
    assert data[0][0] - t0 < 1.0
    assert f'"d":{ds}' in data[0][1].replace(" ", "") and "1.5" in data[0][1]


def test_observation_published_over_mqtt_reaches_server_sent_event_clients_within_a_second(
    mqtt_env, live_server: LiveServer
) -> None:
    import json

    from tests.sensing.conftest import publish_acknowledged, publisher_client, wait_until

    app = live_server.app
    wait_until(lambda: app.state.sensing.subscriber is not None and app.state.sensing.subscriber.connected)
    key = new_api_key(app.state.engine, name="gw", role="sensor")[1]
    h = {"X-API-Key": key}
    thing = httpx.post(live_server.url + "/sta/v1.1/Things", json=manhole_thing(), headers=h).json()
    ds = httpx.get(live_server.url + f"/sta/v1.1/Things({thing['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"]
    lines: list[tuple[float, str]] = []

    def listen() -> None:
        with httpx.stream("GET", live_server.url + "/sensors/live", timeout=30) as r:
            for line in r.iter_lines():
                lines.append((time.monotonic(), line))

    threading.Thread(target=listen, daemon=True).start()
    wait_until(lambda: bool(lines), what="the event stream")
    pub = publisher_client(mqtt_env)
    t0 = time.monotonic()
    publish_acknowledged(pub, f"v1.1/Datastreams({ds})/Observations", json.dumps({"result": 2.5}))
    wait_until(lambda: any(line.startswith("data:") for _t, line in lines), timeout=10, what="an event")
    first = next(t for t, line in lines if line.startswith("data:"))
    pub.loop_stop()
    assert first - t0 < 1.0
