"""The SensorThings API over HTTP: entities, deep insert, links, query options, Data Array, errors."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from cim.api.app import create_app
from cim.api.settings import ApiSettings, ViewerSettings
from cim.settings import Settings
from tests.sensing.conftest import TRUTH, manhole_thing

ROOT = "/sta/v1.1"


def _auth(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _create_manhole(sta: TestClient, key: str, **kw: object) -> dict:
    r = sta.post(f"{ROOT}/Things", json=manhole_thing(**kw), headers=_auth(key))  # type: ignore[arg-type]
    assert r.status_code == 201, r.text
    return r.json()


def test_service_root_lists_every_entity_set_and_conformance(sta: TestClient) -> None:
    body = sta.get(ROOT).json()
    names = {v["name"] for v in body["value"]}
    assert names == {
        "Things",
        "Locations",
        "HistoricalLocations",
        "Datastreams",
        "Sensors",
        "ObservedProperties",
        "Observations",
        "FeaturesOfInterest",
    }
    assert all(v["url"].startswith("http://testserver/sta/v1.1/") for v in body["value"])
    assert any(c.endswith("create-update-delete") for c in body["serverSettings"]["conformance"])


def test_deep_insert_of_a_thing_creates_location_history_datastream_sensor_and_property(
    sta: TestClient, sensor_key: str
) -> None:
    thing = _create_manhole(sta, sensor_key)
    tid = thing["@iot.id"]
    assert thing["@iot.selfLink"] == f"http://testserver{ROOT}/Things({tid})"
    assert thing["Datastreams@iot.navigationLink"].endswith(f"/Things({tid})/Datastreams")
    ds = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"]
    assert len(ds) == 1 and ds[0]["unitOfMeasurement"]["symbol"] == "m"
    sensor = sta.get(f"{ROOT}/Datastreams({ds[0]['@iot.id']})/Sensor").json()
    assert sensor["name"] == "ultrasonic gauge" and sensor["metadata"] == "https://example.org/gauge.pdf"
    hist = sta.get(f"{ROOT}/Things({tid})/HistoricalLocations?$expand=Locations").json()["value"]
    assert len(hist) == 1 and hist[0]["Locations"][0]["location"]["coordinates"] == [114.30, 30.55]
    assert sta.get(f"{ROOT}/Things({tid})/name/$value").text == "manhole 1"
    assert sta.get(f"{ROOT}/Things({tid})/name").json() == {"name": "manhole 1"}


def test_observation_without_feature_of_interest_gets_one_from_the_things_location(
    sta: TestClient, sensor_key: str
) -> None:
    tid = _create_manhole(sta, sensor_key)["@iot.id"]
    ds_id = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    r = sta.post(
        f"{ROOT}/Datastreams({ds_id})/Observations",
        json={"phenomenonTime": "2026-12-01T08:00:00Z", "result": 0.42},
        headers=_auth(sensor_key),
    )
    assert r.status_code == 201, r.text
    obs = r.json()
    assert obs["result"] == 0.42 and obs["phenomenonTime"] == "2026-12-01T08:00:00Z" and obs["resultTime"] is None
    foi = sta.get(f"{ROOT}/Observations({obs['@iot.id']})/FeatureOfInterest").json()
    assert foi["feature"] == {"type": "Point", "coordinates": [114.30, 30.55]}
    ds = sta.get(f"{ROOT}/Datastreams({ds_id})").json()
    assert ds["phenomenonTime"] == "2026-12-01T08:00:00Z/2026-12-01T08:00:00Z"


def test_links_by_iot_id_and_post_to_a_navigation_collection(sta: TestClient, sensor_key: str) -> None:
    thing = _create_manhole(sta, sensor_key)
    ds = sta.get(f"{ROOT}/Things({thing['@iot.id']})/Datastreams?$expand=Sensor,ObservedProperty").json()["value"][0]
    body = {
        "name": "second stream",
        "description": "same sensor, linked",
        "observationType": TRUTH,
        "unitOfMeasurement": {"name": None, "symbol": None, "definition": None},
        "Sensor": {"@iot.id": ds["Sensor"]["@iot.id"]},
        "ObservedProperty": {"@iot.id": ds["ObservedProperty"]["@iot.id"]},
    }
    r = sta.post(f"{ROOT}/Things({thing['@iot.id']})/Datastreams", json=body, headers=_auth(sensor_key))
    assert r.status_code == 201, r.text
    assert sta.get(f"{ROOT}/Sensors({ds['Sensor']['@iot.id']})/Datastreams?$count=true").json()["@iot.count"] == 2
    r = sta.post(
        f"{ROOT}/Datastreams({r.json()['@iot.id']})/Observations",
        json={"phenomenonTime": "2026-12-01T08:00:00Z", "result": 3.5},
        headers=_auth(sensor_key),
    )
    assert r.status_code == 400 and r.json()["type"] == "error" and "boolean" in r.json()["message"]


def test_query_options_filter_orderby_select_top_skip_count_and_next_link(sta: TestClient, sensor_key: str) -> None:
    tid = _create_manhole(sta, sensor_key)["@iot.id"]
    _create_manhole(sta, sensor_key, name="manhole 2", lon=114.40, lat=30.60)
    ds_id = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    for i in range(5):
        r = sta.post(
            f"{ROOT}/Observations",
            json={"phenomenonTime": f"2026-12-01T0{i}:00:00Z", "result": i * 0.5, "Datastream": {"@iot.id": ds_id}},
            headers=_auth(sensor_key),
        )
        assert r.status_code == 201, r.text
    q = sta.get(f"{ROOT}/Observations?$filter=result gt 0.6&$orderby=phenomenonTime desc&$count=true&$top=2").json()
    assert q["@iot.count"] == 3 and [o["result"] for o in q["value"]] == [2.0, 1.5]
    assert "$skip=2" in q["@iot.nextLink"]
    nxt = sta.get(q["@iot.nextLink"].replace("http://testserver", "")).json()
    assert [o["result"] for o in nxt["value"]] == [1.0]
    sel = sta.get(f"{ROOT}/Things?$select=id,name&$orderby=name").json()["value"]
    assert sel == [{"@iot.id": tid, "name": "manhole 1"}, {"@iot.id": sel[1]["@iot.id"], "name": "manhole 2"}]
    f = "Datastream/Thing/name eq 'manhole 1' and year(phenomenonTime) eq 2026 and hour(phenomenonTime) ge 3"
    assert len(sta.get(f"{ROOT}/Observations", params={"$filter": f}).json()["value"]) == 2
    f = "substringof('hole 2', name) or startswith(name, 'nothing')"
    assert [t["name"] for t in sta.get(f"{ROOT}/Things", params={"$filter": f}).json()["value"]] == ["manhole 2"]
    f = "(result mul 2) add 1 eq 5 and not (result lt 0)"
    assert [o["result"] for o in sta.get(f"{ROOT}/Observations", params={"$filter": f}).json()["value"]] == [2.0]
    box = "POLYGON((114.35 30.5, 114.45 30.5, 114.45 30.7, 114.35 30.7, 114.35 30.5))"
    f = f"geo.intersects(location, geography'{box}')"
    assert [x["name"] for x in sta.get(f"{ROOT}/Locations", params={"$filter": f}).json()["value"]] == [
        "manhole 2 location"
    ]
    f = "geo.distance(Locations/location, geography'POINT(114.30 30.55)') lt 100"
    assert [x["name"] for x in sta.get(f"{ROOT}/Things", params={"$filter": f}).json()["value"]] == ["manhole 1"]
    f = (
        "phenomenonTime lt 2026-12-01T02:00:00Z and length(Datastream/name) gt 3"
        " and tolower(Datastream/name) eq 'manhole 1 water level'"
    )
    assert len(sta.get(f"{ROOT}/Observations", params={"$filter": f}).json()["value"]) == 2


def test_nested_expand_with_options(sta: TestClient, sensor_key: str) -> None:
    tid = _create_manhole(sta, sensor_key)["@iot.id"]
    ds_id = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    for i in range(3):
        sta.post(
            f"{ROOT}/Datastreams({ds_id})/Observations",
            json={"phenomenonTime": f"2026-12-01T0{i}:00:00Z", "result": float(i)},
            headers=_auth(sensor_key),
        )
    q = "$expand=Datastreams($select=name;$expand=Observations($top=2;$orderby=phenomenonTime desc;$count=true))"
    q += ",Locations"
    thing = sta.get(f"{ROOT}/Things({tid})?{q}").json()
    ds = thing["Datastreams"][0]
    assert set(ds) == {"name", "Observations", "Observations@iot.count", "Observations@iot.nextLink"}
    assert [o["result"] for o in ds["Observations"]] == [2.0, 1.0] and ds["Observations@iot.count"] == 3
    assert thing["Locations"][0]["name"] == "manhole 1 location"
    obs = sta.get(f"{ROOT}/Observations?$expand=Datastream/Thing&$top=1").json()["value"][0]
    assert obs["Datastream"]["Thing"]["name"] == "manhole 1"


def test_update_and_delete_cascade(sta: TestClient, sensor_key: str) -> None:
    tid = _create_manhole(sta, sensor_key)["@iot.id"]
    r = sta.patch(f"{ROOT}/Things({tid})", json={"description": "moved"}, headers=_auth(sensor_key))
    assert r.status_code == 200
    assert sta.get(f"{ROOT}/Things({tid})").json()["description"] == "moved"
    r = sta.put(f"{ROOT}/Things({tid})", json={"description": "no name"}, headers=_auth(sensor_key))
    assert r.status_code == 400
    ds_id = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    obs = sta.post(
        f"{ROOT}/Datastreams({ds_id})/Observations",
        json={"phenomenonTime": "2026-12-01T10:00:00Z", "result": 0.3},
        headers=_auth(sensor_key),
    ).json()["@iot.id"]
    assert sta.delete(f"{ROOT}/Things({tid})", headers=_auth(sensor_key)).status_code == 200
    assert sta.get(f"{ROOT}/Things({tid})").status_code == 404
    assert sta.get(f"{ROOT}/Datastreams({ds_id})").status_code == 404
    assert sta.get(f"{ROOT}/Observations({obs})").status_code == 404  # the delete trigger's cascade


def test_data_array_creates_many_observations_and_a_retry_is_harmless(sta: TestClient, sensor_key: str) -> None:
    tid = _create_manhole(sta, sensor_key)["@iot.id"]
    ds_id = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    body = [
        {
            "Datastream": {"@iot.id": ds_id},
            "components": ["phenomenonTime", "result"],
            "dataArray@iot.count": 4,
            "dataArray": [
                ["2026-12-01T10:00:00Z", 1.0],
                ["2026-12-01T10:01:00Z", 1.1],
                ["2026-12-01T10:02:00Z", "not a number"],
                ["2026-12-01T10:03:00Z", 1.3],
            ],
        }
    ]
    r = sta.post(f"{ROOT}/CreateObservations", json=body, headers=_auth(sensor_key))
    assert r.status_code == 201, r.text
    links = r.json()
    assert links[2] == "error" and all(x.startswith("http://testserver/sta/v1.1/Observations(") for x in links[:2])
    again = sta.post(f"{ROOT}/CreateObservations", json=body, headers=_auth(sensor_key)).json()
    assert again == links
    assert sta.get(f"{ROOT}/Datastreams({ds_id})/Observations?$count=true").json()["@iot.count"] == 3


def test_writes_need_a_sensor_key_and_accept_http_basic(sta: TestClient, sensor_key: str, settings) -> None:
    from cim.api.security import new_api_key

    r = sta.post(f"{ROOT}/Things", json={"name": "x", "description": "y"})
    assert r.status_code == 401 and r.json()["type"] == "error"
    planner = new_api_key(sta.app.state.engine, name="p", role="planner")[1]  # type: ignore[attr-defined]
    assert sta.post(f"{ROOT}/Things", json={"name": "x"}, headers=_auth(planner)).status_code == 403
    basic = base64.b64encode(f"gateway:{sensor_key}".encode()).decode()
    r = sta.post(f"{ROOT}/Things", json={"name": "x", "description": "y"}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 201
    r = sta.post(f"{ROOT}/Things", json={"name": "z"}, headers={"Authorization": f"Bearer {sensor_key}"})
    assert r.status_code == 201


def test_bad_input_gets_a_4xx_in_the_standard_shape_and_stores_nothing(sta: TestClient, sensor_key: str) -> None:
    r = sta.post(f"{ROOT}/Things", content=b"{not json", headers=_auth(sensor_key))
    assert r.status_code == 400 and r.json()["code"] == 400 and r.json()["type"] == "error"
    assert sta.get(f"{ROOT}/Datastreams(999)/Observations").status_code == 404
    r = sta.post(f"{ROOT}/Datastreams(999)/Observations", json={"result": 1}, headers=_auth(sensor_key))
    assert r.status_code == 404
    bad = manhole_thing()
    bad["Datastreams"][0]["Sensor"] = {"name": "no encoding"}
    assert sta.post(f"{ROOT}/Things", json=bad, headers=_auth(sensor_key)).status_code == 400
    assert sta.get(f"{ROOT}/Things?$count=true").json()["@iot.count"] == 0
    assert sta.get(f"{ROOT}/Things?$filter=name eq").status_code == 400
    assert sta.get(f"{ROOT}/Things?$filter=nosuch eq 1").status_code == 400
    assert sta.get(f"{ROOT}/Things?$top=abc").status_code == 400


def test_a_write_while_the_primary_database_is_down_gets_503_with_retry_after(
    settings: Settings, sta: TestClient, sensor_key: str
) -> None:
    """With a read replica and the primary unreachable (:class:`cim.errors.DatabaseError`), a write answers
    503 + ``Retry-After`` in the SensorThings error shape (it was a 500)."""
    from cim.localservice import free_port

    down = Settings(
        data_dir=settings.data_path,
        database_url=f"postgresql+psycopg://cim@127.0.0.1:{free_port()}/gone",  # nothing listens there
        read_replica_url=str(settings.database_url),
    )
    app = create_app(down, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(f"{ROOT}/Things", json=manhole_thing(), headers=_auth(sensor_key))
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"].isdigit()
        body = r.json()
        assert body["code"] == 503 and body["type"] == "error" and "not reachable" in body["message"]
    app.state.engine.dispose()
