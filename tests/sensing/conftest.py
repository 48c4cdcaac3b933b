"""Fixtures of the sensing tests: the app, a sensor-role key, a small SensorThings model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.sensing import forget_known_partitions
from cim.sensing.broker import PUBLISHER_USER, PrivateBroker
from cim.settings import Settings

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
TRUTH = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"


@pytest.fixture
def sta(settings: Settings) -> Iterator[TestClient]:
    """A test client of the app (no MQTT) on this test's database."""
    forget_known_partitions()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.engine.dispose()


@pytest.fixture
def sensor_key(sta: TestClient) -> str:
    """An API key with the ``sensor`` role."""
    engine: Engine = sta.app.state.engine  # type: ignore[attr-defined]
    return new_api_key(engine, name="gateway", role="sensor")[1]


def measurement_datastream(name: str, prop: str, *, unit: str = "m") -> dict[str, Any]:
    """A Measurement Datastream (with its Sensor and ObservedProperty ``prop`` inline) for a deep insert."""
    return {
        "name": name,
        "description": name,
        "observationType": MEASUREMENT,
        "unitOfMeasurement": {"name": unit, "symbol": unit, "definition": unit},
        "Sensor": {"name": "gauge", "description": "gauge", "encodingType": "text/html", "metadata": "m"},
        "ObservedProperty": {"name": prop, "definition": f"urn:{prop}", "description": prop},
    }


def manhole_thing(name: str = "manhole 1", lon: float = 114.30, lat: float = 30.55) -> dict[str, Any]:
    """A Thing with its Location and one water-level Datastream (Sensor and ObservedProperty inline)."""
    return {
        "name": name,
        "description": "water-level gauge in a manhole",
        "properties": {"district": "A"},
        "Locations": [
            {
                "name": f"{name} location",
                "description": "manhole cover",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [lon, lat]},
            }
        ],
        "Datastreams": [
            {
                "name": f"{name} water level",
                "description": "water level above the manhole floor",
                "observationType": MEASUREMENT,
                "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "http://qudt.org/vocab/unit/M"},
                "Sensor": {
                    "name": "ultrasonic gauge",
                    "description": "ultrasonic level sensor",
                    "encodingType": "application/pdf",
                    "metadata": "https://example.org/gauge.pdf",
                },
                "ObservedProperty": {
                    "name": "water level",
                    "definition": "http://vocab.nerc.ac.uk/collection/P07/current/CFSN0721/",
                    "description": "height of the water surface",
                },
            }
        ],
    }


@dataclass
class LiveServer:
    """The app served over real HTTP on a free loopback port."""

    url: str
    app: Any


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """Serve the app with uvicorn in a thread (for clients that speak real HTTP: frost_sta_client, Chromium)."""
    import uvicorn

    from cim.db.cluster import free_port

    forget_known_partitions()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(timeout=30)
    app.state.engine.dispose()


@pytest.fixture
def broker(settings: Settings) -> Iterator[PrivateBroker]:
    """A real Mosquitto on a free loopback port, configured in this test's data directory."""
    b = PrivateBroker(settings.data_path)
    state = b.up()
    assert state.port
    yield b
    b.down()


@pytest.fixture
def mqtt_env(monkeypatch: pytest.MonkeyPatch, broker: PrivateBroker) -> PrivateBroker:
    """The app's sensing runtime starts the MQTT subscriber (as ``cim serve`` does)."""
    monkeypatch.setenv("CIM_SENSING_MQTT", "true")
    return broker


def publisher_client(broker: PrivateBroker, *, client_id: str = "test-publisher") -> mqtt.Client:
    """A connected paho client with the broker's publisher credentials."""
    state = broker.state()
    assert state is not None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.username_pw_set(PUBLISHER_USER, state.publisher_password)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect(state.host, state.port)
    client.loop_start()
    return client


def publish_acknowledged(client: mqtt.Client, topic: str, payload: str, *, timeout: float = 60.0) -> None:
    """Publish with QoS 1 until the broker acknowledges (PUBACK), retrying across disconnections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout=3)
        except (RuntimeError, ValueError):
            time.sleep(0.2)
            continue
        if info.is_published():
            return
    raise TimeoutError(f"no PUBACK for {topic} within {timeout} s")


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
