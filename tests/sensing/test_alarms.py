"""Threshold alarms: over/under, rate of change, no data; events at /alarms and as an OGC API collection;
CIM+ effects (a manhole alarm marks a live waterlogging point, a gas alarm lists nearby buildings)."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cim.sensing.alarms import check_no_data
from tests import factories as f
from tests.analysis.local import Local
from tests.sensing.conftest import measurement_datastream

ROOT = "/sta/v1.1"


def _thing_on(sta: TestClient, key: str, link: dict, prop: str) -> int:
    body = {
        "name": f"sensor {link}",
        "description": "on a CIM feature",
        "properties": link,
        "Datastreams": [measurement_datastream(prop, prop, unit="u")],
    }
    if not link:
        body["Locations"] = [
            {
                "name": "here",
                "description": "here",
                "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [114.3, 30.58]},
            }
        ]
    r = sta.post(f"{ROOT}/Things", json=body, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return int(sta.get(f"{ROOT}/Things({r.json()['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"])


def _post(sta: TestClient, key: str, ds: int, t: str, value: float) -> None:
    r = sta.post(
        f"{ROOT}/Datastreams({ds})/Observations",
        json={"phenomenonTime": t, "result": value},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 201, r.text


def _sensed_facility(
    sta: TestClient, key: str, engine: Engine, kind: str, geometry: object, prop: str, **attrs: object
):
    """A facility of ``kind`` in a new facilities dataset, and a Thing on it with one ``prop`` Datastream:
    (dataset id, facility id, datastream id)."""
    with engine.begin() as conn:
        dataset = f.dataset(conn, layer="facilities")
        facility = f.facility(conn, dataset, kind, geometry, **attrs)
    return dataset, facility, _thing_on(sta, key, {"cim:facility": facility}, prop)


def _rule(sta: TestClient, key: str, **body: object) -> int:
    r = sta.post("/alarms/rules", json=body, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_manhole_water_level_over_threshold_marks_a_live_waterlogging_point_until_cleared(
    sta: TestClient, sensor_key: str, engine: Engine
) -> None:
    here = Local(114.30, 30.58)
    _, manhole, ds = _sensed_facility(sta, sensor_key, engine, "manhole", here.point(0, 0), "water level", name="MH-1")
    thing = sta.get(f"{ROOT}/Datastreams({ds})/Thing?$expand=Locations").json()
    assert thing["Locations"][0]["location"]["type"] == "Point"  # the manhole's own geometry (CGCS2000)
    _rule(sta, sensor_key, kind="over", threshold=0.5, datastream_id=ds, severity="critical", name="flooding")
    _post(sta, sensor_key, ds, "2026-12-01T10:00:00Z", 0.2)
    assert sta.get("/alarms?active=true").json()["alarms"] == []
    _post(sta, sensor_key, ds, "2026-12-01T10:01:00Z", 0.7)
    alarms = sta.get("/alarms?active=true").json()["alarms"]
    assert len(alarms) == 1 and alarms[0]["severity"] == "critical" and alarms[0]["value"] == 0.7
    point = alarms[0]["details"]["waterlogging_point"]
    with engine.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM facility WHERE kind = 'waterlogging_point' AND valid_to IS NULL AND id = :i"),
            {"i": point},
        ).scalar_one()
    assert live == 1
    points = sta.get("/alarms/waterlogging").json()["features"]
    assert [p["properties"]["manhole_id"] for p in points] == [manhole]
    assert points[0]["properties"]["flood_seed"].startswith("114.3")
    items = sta.get("/collections/sensor_alarms/items").json()
    assert items["features"][0]["properties"]["severity"] == "critical"
    latest = sta.get("/sensors/latest").json()["features"]
    assert latest[0]["properties"]["status"] == "alarm" and latest[0]["geometry"]["type"] == "Point"
    _post(sta, sensor_key, ds, "2026-12-01T10:02:00Z", 0.1)
    assert sta.get("/alarms?active=true").json()["alarms"] == []
    assert sta.get("/alarms").json()["alarms"][0]["cleared_at"] is not None
    assert sta.get("/alarms/waterlogging").json()["features"] == []
    with engine.connect() as conn:
        live = conn.execute(
            text("SELECT count(*) FROM facility WHERE kind = 'waterlogging_point' AND valid_to IS NULL")
        ).scalar_one()
    assert live == 0


def test_gas_alarm_lists_buildings_within_the_gas_safety_distance(
    sta: TestClient, sensor_key: str, engine: Engine
) -> None:
    here = Local(114.30, 30.58)
    pipe_line = here.line((-500, 0), (500, 0))
    ds_id, _, ds = _sensed_facility(
        sta, sensor_key, engine, "pipe_gas", pipe_line, "methane", pressure_class="medium_a"
    )
    with engine.begin() as conn:
        near = f.building(conn, ds_id, here.box(0, 1.0, 10, 10))
        f.building(conn, ds_id, here.box(100, 30.0, 10, 10))
    _rule(sta, sensor_key, kind="over", threshold=20, datastream_id=ds)
    _post(sta, sensor_key, ds, "2026-12-01T10:00:00Z", 35.0)
    alarm = sta.get("/alarms?active=true").json()["alarms"][0]
    listed = alarm["details"]["buildings_within_gas_safety_distance"]
    assert [b["building_id"] for b in listed] == [near] and listed[0]["required_m"] == 1.5


def test_under_rate_of_change_and_no_data_rules(sta: TestClient, sensor_key: str, engine: Engine) -> None:
    ds = _thing_on(sta, sensor_key, {}, "strain")
    _rule(sta, sensor_key, kind="under", threshold=10, datastream_id=ds, name="too low")
    _rule(sta, sensor_key, kind="rate", threshold=100, datastream_id=ds, name="jump")
    _rule(sta, sensor_key, kind="nodata", minutes=5, datastream_id=ds, name="silent")
    _post(sta, sensor_key, ds, "2026-12-01T10:00:00Z", 300.0)
    _post(sta, sensor_key, ds, "2026-12-01T10:01:00Z", 350.0)  # 50 per minute: fine
    assert sta.get("/alarms?active=true").json()["alarms"] == []
    _post(sta, sensor_key, ds, "2026-12-01T10:02:00Z", 600.0)  # 250 per minute
    assert [a["rule"] for a in sta.get("/alarms?active=true").json()["alarms"]] == ["jump"]
    _post(sta, sensor_key, ds, "2026-12-01T10:03:00Z", 5.0)
    assert {a["rule"] for a in sta.get("/alarms?active=true").json()["alarms"]} == {"jump", "too low"}
    with engine.begin() as conn:
        assert check_no_data(conn) == []
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        conn.execute(text("UPDATE sta_latest SET received_at = :t"), {"t": old})
        assert len(check_no_data(conn)) == 1
        assert check_no_data(conn) == []  # raised once
    assert "silent" in {a["rule"] for a in sta.get("/alarms?active=true").json()["alarms"]}


def test_bad_rules_are_refused(sta: TestClient, sensor_key: str) -> None:
    assert (
        sta.post("/alarms/rules", json={"kind": "over", "threshold": 1}, headers={"X-API-Key": sensor_key}).status_code
        == 400
    )
    assert (
        sta.post(
            "/alarms/rules", json={"kind": "sideways", "datastream_id": 1}, headers={"X-API-Key": sensor_key}
        ).status_code
        == 400
    )
    assert sta.post("/alarms/rules", json={"kind": "over", "threshold": 1, "datastream_id": 1}).status_code == 401
