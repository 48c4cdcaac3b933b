"""A sensor simulator for the sample city: Things on real CIM features, plausible observations over MQTT.

Kinds (on features of the loaded city, in this order of preference):

- ``water_level`` on manholes (m above the manhole floor; alarm over 0.5 m marks a waterlogging point),
- ``gas`` beside gas pipes (% of the lower explosive limit; alarm over 20 %LEL lists nearby buildings),
- ``strain`` on bridges (microstrain; alarm over 800 µε, or a change faster than 200 µε/min),
- ``tilt`` of C/D-class (dangerous) buildings (degrees; alarm over 0.6°),
- ``lamp_power`` of street lamps (W; alarm when nothing arrives for 10 minutes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, text

from cim.sensing.alarms import check_rule
from cim.sensing.broker import PUBLISHER_USER, BrokerState
from cim.sensing.entities import BY_NAME, OBSERVATION_TYPES

MEASUREMENT = next(k for k, v in OBSERVATION_TYPES.items() if v == "number")
PREFIX = "sim:"
BEGIN = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SensorKind:
    """One simulated sensor type: what it observes, its unit, its normal value and spread, its alarm rules."""

    key: str
    feature_sql: str
    link: str  # cim:facility | cim:building
    property_name: str
    definition: str
    unit: tuple[str, str]
    base: float
    spread: float
    rules: tuple[dict[str, Any], ...]


KINDS: tuple[SensorKind, ...] = (
    SensorKind(
        "water_level",
        "SELECT id, name FROM facility WHERE kind = 'manhole' AND valid_to IS NULL ORDER BY id",
        "cim:facility",
        "manhole water level",
        "http://vocab.nerc.ac.uk/collection/P01/current/ASLVZZ01/",
        ("metre", "m"),
        0.15,
        0.05,
        ({"kind": "over", "threshold": 0.5, "severity": "critical", "name": "manhole water level over 0.5 m"},),
    ),
    SensorKind(
        "gas",
        "SELECT id, name FROM facility WHERE kind = 'pipe_gas' AND valid_to IS NULL ORDER BY id",
        "cim:facility",
        "methane concentration",
        "http://vocab.nerc.ac.uk/collection/P01/current/MCHXZZ01/",
        ("percent of lower explosive limit", "%LEL"),
        2.0,
        1.0,
        ({"kind": "over", "threshold": 20.0, "severity": "critical", "name": "gas over 20 %LEL"},),
    ),
    SensorKind(
        "strain",
        "SELECT id, name FROM facility WHERE kind = 'bridge' AND valid_to IS NULL ORDER BY id",
        "cim:facility",
        "bridge strain",
        "http://qudt.org/vocab/quantitykind/Strain",
        ("microstrain", "µε"),
        300.0,
        40.0,
        (
            {"kind": "over", "threshold": 800.0, "severity": "warning", "name": "bridge strain over 800 µε"},
            {"kind": "rate", "threshold": 200.0, "severity": "warning", "name": "bridge strain jump"},
        ),
    ),
    SensorKind(
        "tilt",
        "SELECT id, name FROM building WHERE safety_class IN ('C', 'D') AND valid_to IS NULL ORDER BY id",
        "cim:building",
        "building tilt",
        "http://qudt.org/vocab/quantitykind/Angle",
        ("degree", "°"),
        0.2,
        0.05,
        ({"kind": "over", "threshold": 0.6, "severity": "critical", "name": "dangerous-house tilt over 0.6°"},),
    ),
    SensorKind(
        "lamp_power",
        "SELECT id, name FROM facility WHERE kind = 'street_lamp' AND valid_to IS NULL ORDER BY id",
        "cim:facility",
        "lamp power",
        "http://qudt.org/vocab/quantitykind/Power",
        ("watt", "W"),
        120.0,
        5.0,
        ({"kind": "nodata", "minutes": 10, "severity": "info", "name": "street lamp silent for 10 min"},),
    ),
)


@dataclass(frozen=True)
class SimulatedStream:
    """A provisioned datastream and what its values look like."""

    datastream_id: int
    kind: SensorKind


def provision(engine: Engine, things: int) -> list[SimulatedStream]:
    """Create (once) up to ``things`` simulated Things spread over the kinds, with rules; return their streams.

    Things already made by an earlier run (named ``sim: …``) are reused, so repeated runs add nothing.
    """
    from cim.sensing.service import Writer

    streams: list[SimulatedStream] = []
    with engine.begin() as conn:
        writer = Writer(conn)
        candidates = {k.key: list(conn.execute(text(k.feature_sql + f" LIMIT {things}")).all()) for k in KINDS}
        picked: list[tuple[SensorKind, Any, Any]] = []
        while len(picked) < things and any(candidates.values()):
            for kind in KINDS:  # round robin, so every kind the city has is represented
                if candidates[kind.key] and len(picked) < things:
                    fid, fname = candidates[kind.key].pop(0)
                    picked.append((kind, fid, fname))
        props: dict[str, int] = {}
        for kind, fid, fname in picked:
            if kind.key not in props:
                props[kind.key] = _observed_property(conn, writer, kind)
            name = f"{PREFIX} {kind.key} {fid}"
            existing = conn.execute(
                text("SELECT d.id FROM sta_datastream d JOIN sta_thing t ON t.id = d.thing_id WHERE t.name = :n"),
                {"n": name},
            ).scalar()
            if existing is not None:
                streams.append(SimulatedStream(int(existing), kind))
                continue
            thing_id = writer.create(
                BY_NAME["Thing"],
                {
                    "name": name,
                    "description": f"simulated {kind.property_name} sensor at {fname or fid}",
                    "properties": {kind.link: int(fid), "simulated": True},
                    "Datastreams": [
                        {
                            "name": f"{name} {kind.property_name}",
                            "description": kind.property_name,
                            "observationType": MEASUREMENT,
                            "unitOfMeasurement": {
                                "name": kind.unit[0],
                                "symbol": kind.unit[1],
                                "definition": kind.definition,
                            },
                            "Sensor": {
                                "name": f"{kind.key} sensor",
                                "description": f"simulated {kind.key} sensor",
                                "encodingType": "text/html",
                                "metadata": "https://example.org/sensors/" + kind.key,
                            },
                            "ObservedProperty": {"@iot.id": props[kind.key]},
                        }
                    ],
                },
            )
            ds = conn.execute(text("SELECT id FROM sta_datastream WHERE thing_id = :t"), {"t": thing_id})
            streams.append(SimulatedStream(int(ds.scalar_one()), kind))
    return streams


def _observed_property(conn: Any, writer: Any, kind: SensorKind) -> int:
    from cim.db.alarms import insert_rule

    prop_id = conn.execute(text("SELECT id FROM sta_observed_property WHERE name = :n"), {"n": kind.property_name})
    found = prop_id.scalar()
    if found is not None:
        return int(found)
    new_id = int(
        writer.create(
            BY_NAME["ObservedProperty"],
            {"name": kind.property_name, "definition": kind.definition, "description": kind.property_name},
        )
    )
    for rule in kind.rules:
        insert_rule(conn, check_rule({**rule, "observed_property_id": new_id}))
    return new_id


class Simulator:
    """Publishes observations for ``streams`` at ``rate`` messages per second (QoS 1) until stopped."""

    def __init__(self, state: BrokerState, streams: list[SimulatedStream], rate: float, *, seed: int = 16) -> None:
        if not streams:
            raise ValueError("nothing to simulate: no datastreams (is the sample city loaded?)")
        self.state = state
        self.streams = streams
        self.rate = rate
        self.random = random.Random(seed)
        self.values = {s.datastream_id: s.kind.base for s in streams}
        self.published = 0
        self.acknowledged = 0
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self._last: dict[int, dt.datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"cim-simulator-{seed}", protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(PUBLISHER_USER, state.publisher_password)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)

    def next_value(self, s: SimulatedStream) -> float:
        """A random walk around the kind's normal value, with rare excursions past the alarm threshold."""
        k = s.kind
        v = self.values[s.datastream_id]
        v += self.random.gauss(0, k.spread * 0.2) + (k.base - v) * 0.05
        if self.random.random() < 0.002:
            v = k.base + k.spread * 12  # an event: flooding, a leak, an overload
        self.values[s.datastream_id] = v
        return round(max(v, 0.0), 4)

    def start(self, duration_s: float | None = None, on_tick: Callable[[int], None] | None = None) -> None:
        """Connect and publish in a background thread."""
        self.client.connect(self.state.host, self.state.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, args=(duration_s, on_tick), daemon=True, name="cim-sim")
        self._thread.start()

    def wait(self) -> None:
        """Block until the simulation ends (duration reached or stopped)."""
        if self._thread is not None:
            self._thread.join()

    def stop(self, *, flush_s: float = 30.0) -> None:
        """Stop publishing, wait (up to ``flush_s``) until the broker acknowledged every message, disconnect."""
        self._stop.set()
        self.wait()
        deadline = time.monotonic() + flush_s
        for info in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=remaining)
        self.acknowledged = self.published - sum(1 for info in self._pending if not info.is_published())
        self.client.disconnect()
        self.client.loop_stop()

    def _run(self, duration_s: float | None, on_tick: Callable[[int], None] | None) -> None:
        started = time.monotonic()
        interval = 1.0 / self.rate
        i = 0
        while not self._stop.is_set():
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            s = self.streams[i % len(self.streams)]
            # Strictly increasing times per datastream (one observation per datastream and instant), also
            # when a starved loop catches up within one millisecond.
            t = max(dt.datetime.now(dt.UTC), self._last.get(s.datastream_id, BEGIN) + dt.timedelta(milliseconds=1))
            t = t.replace(microsecond=t.microsecond // 1000 * 1000)
            self._last[s.datastream_id] = t
            now = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            payload = json.dumps({"phenomenonTime": now, "result": self.next_value(s)})
            info = self.client.publish(f"v1.1/Datastreams({s.datastream_id})/Observations", payload, qos=1)
            self._pending.append(info)
            if len(self._pending) > 10_000:
                self._pending = [x for x in self._pending if not x.is_published()]
            self.published += 1
            i += 1
            if on_tick is not None and i % 100 == 0:
                on_tick(self.published)
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)


def start_demo_simulation(
    engine: Engine, data_dir: Any, *, things: int = 25, rate: float = 5.0, step: Callable[[str], None] | None = None
) -> Simulator:
    """``cim demo``: provision a few sensors on the sample city and publish in the background while serving."""
    from cim.sensing.broker import PLATFORM_USER, PrivateBroker
    from cim.sensing.runtime import subscriber_client_id
    from cim.sensing.subscriber import ensure_session

    streams = provision(engine, things)
    state = PrivateBroker(data_dir).up()
    ensure_session(state.host, state.port, PLATFORM_USER, state.platform_password, subscriber_client_id(data_dir))
    sim = Simulator(state, streams, rate)
    sim.start(None)
    if step is not None:
        step(f"sensors: {len(streams)} simulated on the sample city, {rate:g} observations/s over MQTT")
    return sim
