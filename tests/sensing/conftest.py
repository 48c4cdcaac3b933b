"""Fixtures of the sensing tests: the app, a sensor-role key, a small SensorThings model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.db.sensing import forget_known_partitions
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
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
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
