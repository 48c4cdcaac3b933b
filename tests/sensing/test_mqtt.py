"""The MQTT extension through a real Mosquitto: create by publishing, receive by subscribing, faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from cim.sensing.broker import PrivateBroker
from cim.settings import Settings
from tests.sensing.conftest import manhole_thing, publish_acknowledged, publisher_client, wait_until

ROOT = "/sta/v1.1"


def _app(settings: Settings) -> TestClient:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    return TestClient(app, raise_server_exceptions=False)


def _wait_subscribed(client: TestClient) -> None:
    sensing = client.app.state.sensing  # type: ignore[attr-defined]
    wait_until(lambda: sensing.subscriber is not None and sensing.subscriber.connected, what="subscriber")


@pytest.fixture
def platform(settings: Settings, mqtt_env: PrivateBroker) -> Iterator[TestClient]:
    with _app(settings) as client:
        _wait_subscribed(client)
        yield client


def _datastream(client: TestClient, engine: Engine) -> int:
    key = new_api_key(engine, name="gw", role="sensor")[1]
    r = client.post(f"{ROOT}/Things", json=manhole_thing(), headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    return int(client.get(f"{ROOT}/Things({r.json()['@iot.id']})/Datastreams").json()["value"][0]["@iot.id"])


def _count(engine: Engine, ds: int) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT count(*), count(DISTINCT phenomenon_time) FROM sta_observation WHERE datastream_id = :d"),
            {"d": ds},
        ).one()
    return int(row[0]), int(row[1])


def test_published_observation_is_stored_and_announced_to_subscribers(
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine
) -> None:
    ds = _datastream(platform, engine)
    received: list[dict] = []
    state = mqtt_env.state()
    assert state is not None
    receiver = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="receiver", protocol=mqtt.MQTTv311)
    receiver.username_pw_set("cim-publisher", state.publisher_password)
    receiver.on_message = lambda _c, _u, m: received.append(json.loads(m.payload))
    receiver.connect(state.host, state.port)
    receiver.subscribe(f"v1.1/Datastreams({ds})/Observations", qos=1)
    receiver.loop_start()
    time.sleep(0.5)
    pub = publisher_client(mqtt_env)
    publish_acknowledged(
        pub,
        f"v1.1/Datastreams({ds})/Observations",
        json.dumps({"phenomenonTime": "2026-12-01T10:00:00Z", "result": 0.8}),
    )
    publish_acknowledged(
        pub,
        "v1.1/Observations",
        json.dumps({"phenomenonTime": "2026-12-01T10:01:00Z", "result": 0.9, "Datastream": {"@iot.id": ds}}),
    )
    wait_until(lambda: _count(engine, ds)[0] == 2, what="two stored observations")
    values = platform.get(f"{ROOT}/Datastreams({ds})/Observations?$orderby=phenomenonTime").json()["value"]
    assert [v["result"] for v in values] == [0.8, 0.9]
    wait_until(lambda: any("@iot.id" in m for m in received), what="a notification with @iot.id")
    note = next(m for m in received if "@iot.id" in m)
    assert note["@iot.selfLink"].endswith(f"/Observations({note['@iot.id']})") and note["result"] in (0.8, 0.9)
    wait_until(lambda: sum("@iot.id" in m for m in received) == 2, what="both notifications")
    time.sleep(0.5)
    counters = platform.app.state.sensing.subscriber.counters  # type: ignore[attr-defined]
    # the platform published its notifications with "no local": none came back to its own subscriber
    assert (counters.received, counters.stored, counters.ignored) == (2, 2, 0)
    pub.loop_stop()
    receiver.loop_stop()


def test_malformed_and_wrong_type_messages_are_rejected_counted_and_the_subscriber_goes_on(
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine
) -> None:
    ds = _datastream(platform, engine)
    pub = publisher_client(mqtt_env)
    topic = f"v1.1/Datastreams({ds})/Observations"
    publish_acknowledged(pub, topic, "{not json")
    publish_acknowledged(pub, topic, json.dumps({"phenomenonTime": "2026-12-01T10:00:00Z", "result": "high"}))
    publish_acknowledged(pub, "v1.1/Datastreams(99999)/Observations", json.dumps({"result": 1.0}))
    publish_acknowledged(pub, topic, json.dumps([1, 2]))
    publish_acknowledged(pub, topic, json.dumps({"phenomenonTime": "2026-12-01T10:05:00Z", "result": 1.25}))
    wait_until(lambda: _count(engine, ds)[0] == 1, what="the good observation")
    counters = platform.app.state.sensing.subscriber.counters  # type: ignore[attr-defined]
    wait_until(lambda: counters.rejected == 4, what="four rejections")
    status = platform.get("/sensors/status").json()
    assert status["subscriber"]["rejected"] == 4 and status["subscriber"]["connected"]
    pub.loop_stop()


def test_a_fault_of_the_code_on_one_message_rejects_that_message_only_and_the_subscriber_goes_on(
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cim.sensing import subscriber as sub

    decode, check = sub.decode_json, sub.check_result

    def faulty_decode(payload: bytes | bytearray) -> object:
        if b"decoder-bug" in payload:
            raise RuntimeError("a bug in the decoder")
        return decode(payload)

    def faulty_check(observation_type: str, result: object) -> object:
        if result == 666:
            raise RuntimeError("a bug in the writer")
        return check(observation_type, result)

    monkeypatch.setattr(sub, "decode_json", faulty_decode)
    monkeypatch.setattr(sub, "check_result", faulty_check)
    ds = _datastream(platform, engine)
    pub = publisher_client(mqtt_env)
    topic = f"v1.1/Datastreams({ds})/Observations"
    bodies = [{"phenomenonTime": f"2026-12-01T10:0{i}:00Z", "result": r} for i, r in enumerate([1.0, 666, 2.0])]
    bodies.insert(1, {"phenomenonTime": "2026-12-01T11:00:00Z", "result": 3.0, "note": "decoder-bug"})
    infos = [pub.publish(topic, json.dumps(b), qos=1) for b in bodies]  # together: one batch
    for info in infos:
        info.wait_for_publish(10)
    counters = platform.app.state.sensing.subscriber.counters  # type: ignore[attr-defined]
    wait_until(lambda: counters.rejected == 2, what="the two faulty messages rejected")
    wait_until(lambda: _count(engine, ds)[0] == 2, what="the two good observations")
    publish_acknowledged(pub, topic, json.dumps({"phenomenonTime": "2026-12-01T12:00:00Z", "result": 4.0}))
    wait_until(lambda: _count(engine, ds)[0] == 3, what="the next observation: the subscriber goes on")
    values = platform.get(f"{ROOT}/Datastreams({ds})/Observations?$orderby=phenomenonTime").json()["value"]
    assert [v["result"] for v in values] == [1.0, 2.0, 4.0]
    assert "internal error" in counters.last_rejection
    pub.loop_stop()


def _connack(state: object, user: str | None, password: str | None) -> object:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{user}", protocol=mqtt.MQTTv311)
    if user is not None:
        client.username_pw_set(user, password)
    codes: list[object] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: codes.append(reason)
    client.connect(state.host, state.port)  # type: ignore[attr-defined]
    client.loop_start()
    wait_until(lambda: bool(codes), what="CONNACK")
    client.loop_stop()
    return codes[0]


def test_publisher_without_credentials_is_refused_by_the_broker(mqtt_env: PrivateBroker) -> None:
    state = mqtt_env.state()
    assert state is not None
    assert _connack(state, None, None).is_failure  # type: ignore[attr-defined]
    assert _connack(state, "cim-publisher", "not the password").is_failure  # type: ignore[attr-defined]
    assert not _connack(state, "cim-publisher", state.publisher_password).is_failure  # type: ignore[attr-defined]


def _stream(pub: mqtt.Client, topic: str, n: int, acked: list[str]) -> None:
    for i in range(n):
        t = f"2026-12-01T11:{i // 60:02d}:{i % 60:02d}Z"
        publish_acknowledged(pub, topic, json.dumps({"phenomenonTime": t, "result": i / 10}))
        acked.append(t)
        time.sleep(0.01)


def _steady_stream(
    client: TestClient, broker: PrivateBroker, engine: Engine
) -> tuple[int, mqtt.Client, list[str], threading.Thread]:
    """A new datastream and a thread publishing 300 observations to it (QoS 1, acknowledged times in the
    list), returned once 60 were acknowledged: (datastream id, publisher, acknowledged, thread)."""
    ds = _datastream(client, engine)
    pub = publisher_client(broker)
    acked: list[str] = []
    topic = f"v1.1/Datastreams({ds})/Observations"
    worker = threading.Thread(target=_stream, args=(pub, topic, 300, acked))
    worker.start()
    wait_until(lambda: len(acked) > 60, what="stream running")
    return ds, pub, acked, worker


def _stored_times(engine: Engine, ds: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT phenomenon_time FROM sta_observation WHERE datastream_id = :d ORDER BY 1"), {"d": ds}
        ).scalars()
        return [r.strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows]


def test_broker_restart_during_a_steady_stream_loses_no_acknowledged_observation(
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine
) -> None:
    ds, pub, acked, worker = _steady_stream(platform, mqtt_env, engine)
    assert mqtt_env.down()
    time.sleep(0.5)
    mqtt_env.up()
    worker.join(timeout=120)
    wait_until(lambda: _count(engine, ds)[0] >= len(acked), timeout=60, what="every acknowledged observation")
    time.sleep(1.0)
    stored = _stored_times(engine, ds)
    assert len(acked) == 300
    assert stored == sorted(acked) and len(stored) == len(set(stored))
    pub.loop_stop()


def _database_outage(server_url: str, database: str, seconds: float) -> None:
    """Cut every connection to ``database`` and refuse new ones for ``seconds`` (what a restart does to clients).

    Only this test's database goes down, so tests running in parallel on the same server are unaffected.
    """
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
        time.sleep(seconds)
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')


def test_database_outage_during_a_steady_stream_loses_nothing_and_stores_nothing_twice(
    platform: TestClient, mqtt_env: PrivateBroker, engine: Engine, pg_server_url: str, db_url: str
) -> None:
    ds, pub, acked, worker = _steady_stream(platform, mqtt_env, engine)
    _database_outage(pg_server_url, db_url.rsplit("/", 1)[1].split("?")[0], 3.0)
    worker.join(timeout=120)
    wait_until(lambda: _count(engine, ds)[0] >= 300, timeout=90, what="every acknowledged observation")
    stored = _stored_times(engine, ds)
    assert stored == sorted(acked) and len(stored) == 300
    assert platform.app.state.sensing.subscriber.counters.db_retries >= 1  # type: ignore[attr-defined]
    pub.loop_stop()


def test_platform_restart_during_a_steady_stream_loses_nothing(
    settings: Settings, mqtt_env: PrivateBroker, engine: Engine
) -> None:
    first = _app(settings)
    first.__enter__()
    _wait_subscribed(first)
    ds, pub, acked, worker = _steady_stream(first, mqtt_env, engine)
    first.__exit__(None, None, None)  # the platform stops; the broker keeps its persistent session
    stopped_at = _count(engine, ds)[0]
    wait_until(lambda: len(acked) > stopped_at + 50, what="messages queued while the platform is down")
    with _app(settings) as second:
        worker.join(timeout=120)
        wait_until(lambda: _count(engine, ds)[0] >= 300, timeout=90, what="every acknowledged observation")
        stored = _stored_times(engine, ds)
        assert stored == sorted(acked) and len(stored) == 300
        assert second.get(f"{ROOT}/Datastreams({ds})/Observations?$count=true&$top=0").json()["@iot.count"] == 300
    pub.loop_stop()
