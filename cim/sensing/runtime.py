"""What the HTTP service runs for sensing: the live feed, and with MQTT on, the broker and the subscriber.

``CIM_SENSING_MQTT=true`` (set by ``cim serve``) makes the app start the private broker when none runs
and run the subscriber. With several server workers only one holds the subscriber lock file and
subscribes (one persistent session); the others retry, so one takes over when that worker ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import threading
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine

from cim.db.sensing import NewObservation
from cim.sensing.broker import PLATFORM_USER, PrivateBroker
from cim.sensing.live import LiveHub
from cim.sensing.service import iso
from cim.sensing.subscriber import Subscriber
from cim.settings import Settings

log = logging.getLogger("cim.sensing")


class SensingSettings(BaseSettings):
    """Sensing options (env prefix ``CIM_SENSING_``)."""

    model_config = SettingsConfigDict(env_prefix="CIM_SENSING_", extra="ignore")

    mqtt: bool = False
    """Start the broker (when none runs) and the MQTT subscriber with the service."""
    public_url: str = "http://127.0.0.1:8000"
    """Base URL of the service, used in the ``@iot.selfLink`` of MQTT notifications."""
    notify: bool = True
    """Publish stored observations to ``v1.1/Datastreams(ID)/Observations`` and ``v1.1/Observations``."""


def subscriber_client_id(data_dir: Path) -> str:
    """The fixed MQTT client id of this deployment's subscriber (its persistent session's name)."""
    return "cim-platform-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def observation_json(oid: int, row: NewObservation, base: str) -> dict[str, Any]:
    """The SensorThings JSON of a stored observation, as MQTT receivers get it."""
    link = f"{base}/sta/v1.1/Observations({oid})"
    t = iso(row.phenomenon_time)
    return {
        "@iot.id": oid,
        "@iot.selfLink": link,
        "phenomenonTime": f"{t}/{iso(row.phenomenon_time_end)}" if row.phenomenon_time_end else t,
        "resultTime": iso(row.result_time),
        "result": row.result,
        "Datastream@iot.navigationLink": f"{link}/Datastream",
        "FeatureOfInterest@iot.navigationLink": f"{link}/FeatureOfInterest",
    }


def notification(oid: int, row: NewObservation, base: str) -> str:
    """The MQTT payload of a stored observation: :func:`observation_json`, beginning with ``{"@iot.id":``
    (the subscriber recognises the platform's own notifications by that prefix)."""
    return json.dumps(observation_json(oid, row, base), ensure_ascii=False, separators=(",", ":"))


class SensingRuntime:
    """The live hub, and (with MQTT) the subscriber and a notification publisher of one service process."""

    def __init__(self, engine: Engine, settings: Settings, database_url: str, options: SensingSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.options = options
        self.live = LiveHub(database_url)
        self.subscriber: Subscriber | None = None
        self._publisher: mqtt.Client | None = None
        self._endpoint: str | None = None
        self._lock_handle: IO[str] | None = None
        self._stop = threading.Event()
        self._leader_thread: threading.Thread | None = None

    def start(self) -> None:
        """Start MQTT (when enabled): the broker if none runs, the notification publisher, the subscriber."""
        if not self.options.mqtt:
            return
        broker = PrivateBroker(self.settings.data_path)
        state = broker.up()
        self._endpoint = f"mqtt://{state.host}:{state.port}"
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.username_pw_set(PLATFORM_USER, state.platform_password)
        publisher.connect_async(state.host, state.port)
        publisher.loop_start()
        self._publisher = publisher
        self._leader_thread = threading.Thread(target=self._lead, args=(state,), name="cim-mqtt-lead", daemon=True)
        self._leader_thread.start()

    def _lead(self, state: Any) -> None:
        lock_path = self.settings.data_path / "mosquitto" / "subscriber.lock"
        while not self._stop.is_set():
            handle = open(lock_path, "w")  # noqa: SIM115 — held for the subscriber's lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                self._stop.wait(2.0)
                continue
            self._lock_handle = handle
            sub = Subscriber(
                self.engine,
                state.host,
                state.port,
                PLATFORM_USER,
                state.platform_password,
                subscriber_client_id(self.settings.data_path),
                on_stored=self._stored_over_mqtt,
            )
            sub.start()
            self.subscriber = sub
            return

    def stop(self) -> None:
        """Stop the subscriber (its session keeps unacknowledged messages), the publisher and the live feed."""
        self._stop.set()
        if self.subscriber is not None:
            self.subscriber.stop()
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                self._publisher.disconnect()
            self._publisher.loop_stop()
        if self._lock_handle is not None:
            self._lock_handle.close()
        self.live.stop()

    def mqtt_endpoint(self) -> str | None:
        """``mqtt://host:port`` of the broker, when MQTT runs."""
        return self._endpoint

    def status(self) -> dict[str, Any]:
        """Subscriber state and counters (``/sensors/status``)."""
        sub = self.subscriber
        return {
            "mqtt": self.options.mqtt,
            "endpoint": self._endpoint,
            "subscriber": None if sub is None else {"connected": sub.connected, **sub.counters.to_dict()},
        }

    def _publish(self, items: list[tuple[int, NewObservation]]) -> None:
        if self._publisher is None or not self.options.notify:
            return
        sub = self.subscriber
        # In the worker that subscribes, notifications go out on the subscriber's connection ("no local"):
        # the broker then sends them to receivers only, not back to the platform's subscriber.
        publish = sub.notify if sub is not None and sub.connected else self._publish_qos0
        base = self.options.public_url.rstrip("/")
        for oid, row in items:
            payload = notification(oid, row, base)
            publish(f"v1.1/Datastreams({row.datastream_id})/Observations", payload)
            publish("v1.1/Observations", payload)

    def _publish_qos0(self, topic: str, payload: str) -> None:
        assert self._publisher is not None
        self._publisher.publish(topic, payload, qos=0)

    def _stored_over_mqtt(self, items: list[tuple[int, NewObservation]]) -> None:
        self._publish(items)

    def observations_created(self, items: list[tuple[int, NewObservation]]) -> None:
        """Observations stored through HTTP: notify MQTT receivers."""
        self._publish(items)
