"""An independent SensorThings client (FROST-Python-Client, frost_sta_client) works against the service unchanged."""

from __future__ import annotations

import frost_sta_client as fsc
import pytest
from geojson import Point

from tests.sensing.conftest import MEASUREMENT, LiveServer


@pytest.fixture
def frost(live_server: LiveServer, sensor_key_live: str) -> fsc.SensorThingsService:
    auth = fsc.service.auth_handler.AuthHandler(username="gateway", password=sensor_key_live)
    return fsc.SensorThingsService(f"{live_server.url}/sta/v1.1", auth_handler=auth)


@pytest.fixture
def sensor_key_live(live_server: LiveServer) -> str:
    from cim.api.security import new_api_key

    return new_api_key(live_server.app.state.engine, name="frost", role="sensor")[1]


def test_frost_client_creates_a_thing_with_datastream_and_reads_observations_back(
    frost: fsc.SensorThingsService,
) -> None:
    location = fsc.Location(
        name="gas monitor location",
        description="beside the gas pipe",
        encoding_type="application/geo+json",
        location=Point((114.31, 30.56)),
    )
    thing = fsc.Thing(name="gas monitor 7", description="methane detector", locations=[location])
    frost.create(thing)
    assert thing.id is not None
    sensor = fsc.Sensor(
        name="CH4 cell",
        description="catalytic bead",
        encoding_type="application/pdf",
        metadata="https://example.org/ch4.pdf",
    )
    prop = fsc.ObservedProperty(name="methane", definition="http://example.org/ch4", description="CH4 in air")
    ds = fsc.Datastream(
        name="methane %LEL",
        description="methane concentration",
        observation_type=MEASUREMENT,
        unit_of_measurement=fsc.UnitOfMeasurement(
            name="percent LEL", symbol="%LEL", definition="http://example.org/lel"
        ),
        thing=thing,
        sensor=sensor,
        observed_property=prop,
    )
    frost.create(ds)
    for i, value in enumerate((1.5, 2.5, 12.0)):
        frost.create(fsc.Observation(result=value, phenomenon_time=f"2026-12-01T09:0{i}:00Z", datastream=ds))

    found = frost.things().find(thing.id)
    assert found.name == "gas monitor 7"
    listed = frost.observations().query().filter("result gt 2").orderby("phenomenonTime", "ASC").list()
    assert [o.result for o in listed] == [2.5, 12.0]
    things = frost.things().query().expand("Locations,Datastreams").list()
    assert len(things.entities) == 1
    assert things.entities[0].locations.entities[0].name == "gas monitor location"
    obs = frost.datastreams().find(ds.id).get_observations().query().top(10).list()
    assert sorted(o.result for o in obs) == [1.5, 2.5, 12.0]
    frost.delete(found)
    assert frost.things().query().list().entities == []
