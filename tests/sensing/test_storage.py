"""Observation storage: monthly partitions made on demand, BRIN index, retention per datastream, and the
service starting the broker itself when none runs."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cim.db.sensing import apply_retention
from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests.sensing.conftest import manhole_thing, wait_until

ROOT = "/sta/v1.1"


def test_observations_of_an_old_month_get_their_partition_and_retention_deletes_them(
    sta: TestClient, sensor_key: str, engine: Engine
) -> None:
    body = manhole_thing()
    body["Datastreams"][0]["properties"] = {"cim:retentionDays": 30}
    tid = sta.post(f"{ROOT}/Things", json=body, headers={"X-API-Key": sensor_key}).json()["@iot.id"]
    ds = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).replace(microsecond=0)
    new = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for t in (old, new):
        r = sta.post(
            f"{ROOT}/Datastreams({ds})/Observations",
            json={"phenomenonTime": t.isoformat(), "result": 1.0},
            headers={"X-API-Key": sensor_key},
        )
        assert r.status_code == 201, r.text
    with engine.connect() as conn:
        partition = f"sta_observation_{old.year:04d}_{old.month:02d}"
        assert conn.execute(text("SELECT to_regclass(:p)"), {"p": partition}).scalar() is not None
        index = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'sta_observation_phenomenon_time_brin'")
        ).scalar_one()
        assert "brin" in index.lower()
    with engine.begin() as conn:
        assert apply_retention(conn) == 1
    left = sta.get(f"{ROOT}/Datastreams({ds})/Observations").json()["value"]
    assert len(left) == 1 and left[0]["phenomenonTime"].startswith(new.strftime("%Y-%m-%dT%H"))
    bad = manhole_thing()
    bad["Datastreams"][0]["properties"] = {"cim:retentionDays": -1}
    assert sta.post(f"{ROOT}/Things", json=bad, headers={"X-API-Key": sensor_key}).status_code == 400


def test_the_service_starts_the_broker_when_none_runs(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from cim.api.app import create_app
    from cim.api.settings import ApiSettings, ViewerSettings

    monkeypatch.setenv("CIM_SENSING_MQTT", "true")
    broker = PrivateBroker(settings.data_path)
    assert not broker.status().running
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    try:
        with TestClient(app) as client:
            assert broker.status().running
            wait_until(lambda: client.get("/sensors/status").json()["subscriber"]["connected"], what="subscriber")
            root = client.get(ROOT).json()["serverSettings"]
            endpoints = [v for k, v in root.items() if k.endswith("observations-creation")]
            assert endpoints and endpoints[0]["endpoints"][0] == f"mqtt://127.0.0.1:{broker.status().port}"
    finally:
        broker.down()


@pytest.mark.parametrize("parameters", [None, {"gateway": "g1"}], ids=["lean COPY", "general COPY"])
def test_a_batch_with_stored_and_repeated_observations_stores_each_new_one_once(
    sta: TestClient, sensor_key: str, engine: Engine, parameters: dict[str, str] | None
) -> None:
    from cim.db.sensing import NewObservation, insert_observations

    tid = sta.post(f"{ROOT}/Things", json=manhole_thing(), headers={"X-API-Key": sensor_key}).json()["@iot.id"]
    ds = sta.get(f"{ROOT}/Things({tid})/Datastreams").json()["value"][0]["@iot.id"]
    t0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    r = sta.post(
        f"{ROOT}/Datastreams({ds})/Observations",
        json={"phenomenonTime": t0.isoformat(), "result": 1.0},
        headers={"X-API-Key": sensor_key},
    )
    foi = sta.get(f"{ROOT}/Observations({r.json()['@iot.id']})/FeatureOfInterest").json()["@iot.id"]

    def obs(minutes: int, value: float) -> NewObservation:
        t = t0 + dt.timedelta(minutes=minutes)
        return NewObservation(ds, foi, t, value, value, parameters=parameters)

    batch = [obs(1, 2.0), obs(0, 9.0), obs(1, 3.0), obs(2, 4.0)]  # new, stored before, repeated, new
    with engine.begin() as conn:
        ids = insert_observations(conn, batch)
    assert ids[0] is not None and ids[3] is not None and ids[1] is None and ids[2] is None
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT id, result_number FROM sta_observation WHERE datastream_id = :d ORDER BY phenomenon_time"),
            {"d": ds},
        ).all()
        latest = conn.execute(text("SELECT observation_id FROM sta_latest WHERE datastream_id = :d"), {"d": ds})
        assert latest.scalar_one() == ids[3]
    assert [(i, n) for i, n in stored[1:]] == [(ids[0], 2.0), (ids[3], 4.0)] and stored[0][1] == 1.0
    assert sta.get(f"{ROOT}/Datastreams({ds})").json()["phenomenonTime"] == "2026-12-01T08:00:00Z/2026-12-01T08:02:00Z"
