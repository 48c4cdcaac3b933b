"""The MQTT extension's create path: the platform's subscriber stores observations published to the broker.

The subscriber connects with MQTT 5, a fixed client id, ``clean_start=False`` and a session that never
expires, subscribes with QoS 1 and acknowledges a message only after the transaction that stored it has
committed (paho's manual acks). So a broker restart, a database outage or a platform restart loses no
message the broker acknowledged to its publisher: unacknowledged messages are redelivered, and
redelivered ones are recognised by (datastream, phenomenon time) and stored once.

Topics: ``v1.1/Datastreams(ID)/Observations`` (the standard's create topic) and ``v1.1/Observations``
(with ``"Datastream": {"@iot.id": ID}`` in the payload). Malformed messages, unknown datastreams and
results of the wrong type are rejected: counted, logged, acknowledged (so they are not redelivered
forever), never fatal. Messages that carry ``@iot.id`` are notifications of stored entities and ignored.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
import json.scanner
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from cim.db.sensing import NewObservation, insert_observations
from cim.sensing import alarms
from cim.sensing.errors import SensingError, StaBadRequestError
from cim.sensing.mqtt_client import FastClient
from cim.sensing.service import DatastreamCache, check_result, observation_from_json, parse_time

log = logging.getLogger("cim.sensing.mqtt")

TOPICS = ("v1.1/+/Observations", "v1.1/Observations")
_DATASTREAM_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d+)\)/Observations$")
BATCH_MAX = 5000
BATCH_WAIT_S = 0.02
_NOTIFICATION = b'{"@iot.id":'  # how the platform's own notifications begin (cim.sensing.runtime.notification)
_LEAN_KEYS = frozenset({"Datastream", "FeatureOfInterest", "phenomenonTime", "result"})
"""Keys of the usual observation message, checked in the decoder (anything else goes the general way)."""
_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # the C scanner
_WHITESPACE = " \t\n\r"


def decode_json(payload: bytes | bytearray) -> Any:
    """One JSON document, exactly as :func:`json.loads` reads it (same values, same errors), without its
    per-call overhead in the common case: UTF-8 that begins with its value (anything else: json.loads)."""
    try:
        text_ = payload.decode("utf-8")
        value, end = _scan(text_, 0)
    except (ValueError, StopIteration):  # UnicodeDecodeError is a ValueError, and so are JSON errors
        return json.loads(payload)  # another encoding, a BOM, leading whitespace, not JSON: json.loads says
    if end != len(text_) and text_[end:].strip(_WHITESPACE):
        return json.loads(payload)  # extra data: json.loads raises its error
    return value


@dataclass
class Counters:
    """What the subscriber has seen since it started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0
    db_retries: int = 0
    last_rejection: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters."""
        return dict(self.__dict__)


class Message(NamedTuple):
    """One received MQTT message, kept until its observation is stored (then acknowledged)."""

    mid: int
    qos: int
    topic: str
    payload: bytes | bytearray


class Decoded(NamedTuple):
    """A message the decoder read: its datastream id, its JSON object and, for a message of only the usual
    keys whose phenomenon time is an instant, that instant (so the writer checks no more than its result,
    datastream and feature of interest)."""

    message: Message
    datastream_id: int
    body: dict[str, Any]
    foi_id: int | None
    phenomenon_time: dt.datetime | None


class DecodedBatch(NamedTuple):
    """What the decoder hands the writer: the batch (acknowledged as a whole once stored), the decoded
    messages, the rejected ones with their reasons, and how many were ignored (notifications)."""

    messages: list[Message]
    decoded: list[Decoded]
    rejected: list[tuple[Message, str]]
    ignored: int


@dataclass
class Subscriber:
    """The platform's MQTT subscriber: a paho network thread and a writer thread that stores batches."""

    engine: Engine
    host: str
    port: int
    username: str
    password: str
    client_id: str
    on_stored: Callable[[list[tuple[int, NewObservation]]], None] | None = None
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self._inbox: collections.deque[Message] = collections.deque()  # appends and pops are thread-safe
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._client = FastClient(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        self._client.username_pw_set(self.username, self.password)
        self._client.max_inflight_messages_set(65535)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_fast_publish = self._on_fast_publish
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)
        # Decoding (JSON, pure Python) and storing (mostly waiting for PostgreSQL) overlap: the decoder
        # reads batch N + 1 while the writer stores batch N; one batch waits between them at most.
        self._decoded: queue.Queue[DecodedBatch] = queue.Queue(maxsize=1)
        self._decoder = threading.Thread(target=self._decode_loop, name="cim-mqtt-decoder", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="cim-mqtt-writer", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self, *, wait_s: float = 10.0) -> None:
        """Connect (persistent session) and start storing; waits until subscribed or ``wait_s`` passed."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0xFFFFFFFF
        props.ReceiveMaximum = 65535
        self._client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        self._client.loop_start()
        self._decoder.start()
        self._writer.start()
        self._connected.wait(wait_s)

    def stop(self) -> None:
        """Stop storing; unacknowledged messages stay queued in the broker's session for the next start."""
        self._stop.set()
        self._decoder.join(timeout=30)
        self._writer.join(timeout=30)
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def notify(self, topic: str, payload: str) -> None:
        """Publish a notification (QoS 0) on the subscriber's own connection. Its subscriptions have MQTT 5
        "no local", so the broker does not deliver these copies back to it (a receiver gets them, the
        platform does not read its own notifications again)."""
        self._client.publish(topic, payload, qos=0)

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._connected.is_set()

    # -- paho callbacks (network thread) -------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        options = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([(t, options) for t in TOPICS])
        self._connected.set()
        log.info("MQTT subscriber connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("MQTT subscriber disconnected (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_fast_publish(msg.mid, msg.qos, msg.topic, msg.payload)

    def _on_fast_publish(self, mid: int, qos: int, topic: str, payload: bytes | bytearray) -> None:
        self._inbox.append(Message(mid, qos, topic, payload))
        if not self._arrived.is_set():
            self._arrived.set()

    # -- writer thread -------------------------------------------------------------------------------

    def _next_batch(self) -> list[Message]:
        """Up to :data:`BATCH_MAX` messages: those waiting, or what arrives within :data:`BATCH_WAIT_S` of the
        first one (so a trickle is stored at once and a flood in large batches)."""
        inbox = self._inbox
        if not inbox:
            self._arrived.clear()
            if not inbox and not self._arrived.wait(0.2):
                return []
        deadline = time.monotonic() + BATCH_WAIT_S
        while len(inbox) < BATCH_MAX and time.monotonic() < deadline:
            time.sleep(0.002)
        pop = inbox.popleft
        return [pop() for _ in range(min(len(inbox), BATCH_MAX))]

    def _decode_loop(self) -> None:
        while not self._stop.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                item = self._decode(batch)
            except Exception:  # a fault of this code on some message: it must not stop the stream
                log.exception("decoding %d MQTT messages failed; decoding them one at a time", len(batch))
                item = self._decode_each(batch)
            while not self._stop.is_set():
                try:
                    self._decoded.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._decoded.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = item.messages
            self.counters.received += len(batch)
            self.counters.ignored += item.ignored
            for message, reason in item.rejected:
                self._reject(message, reason)
            delay = 0.2
            one_at_a_time = False
            while True:
                try:
                    created = self._store_each(item.decoded) if one_at_a_time else self._store(item.decoded)
                    break
                except DBAPIError as exc:
                    if self._stop.is_set():
                        return  # not acknowledged: the broker redelivers after the restart
                    self.counters.db_retries += 1
                    log.warning("storing %d MQTT observations failed (%s); retrying", len(batch), type(exc).__name__)
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                except Exception:  # a fault of this code on some message: store the others, reject that one
                    log.exception("storing %d MQTT observations failed; storing them one at a time", len(batch))
                    one_at_a_time = True  # _store_each lets database errors through only: retried above
            self._client.ack_many([m.mid for m in batch if m.qos == 1])  # only now: stored and committed
            if created and self.on_stored is not None:
                try:
                    self.on_stored(created)
                except Exception:  # a listener's failure must not stop storing
                    log.exception("observation listener failed")

    def _reject(self, message: Message, reason: str) -> None:
        self.counters.rejected += 1
        self.counters.last_rejection = f"{message.topic}: {reason}"
        log.warning("rejected MQTT message on %s: %s", message.topic, reason)

    def _decode_each(self, batch: list[Message]) -> DecodedBatch:
        """:meth:`_decode` message by message: one that makes it fail is rejected, the others go on."""
        decoded: list[Decoded] = []
        rejected: list[tuple[Message, str]] = []
        ignored = 0
        for m in batch:
            try:
                one = self._decode([m])
            except Exception as exc:
                log.exception("decoding the MQTT message on %s failed", m.topic)
                rejected.append((m, f"internal error reading the message ({type(exc).__name__}); see the log"))
                continue
            decoded += one.decoded
            rejected += one.rejected
            ignored += one.ignored
        return DecodedBatch(batch, decoded, rejected, ignored)

    def _store_each(self, decoded: list[Decoded]) -> list[tuple[int, NewObservation]]:
        """:meth:`_store` message by message (each in its own transaction): one that makes it fail for another
        reason than the database's availability is rejected, the others are stored. A database outage here
        propagates to the writer's retry: what was stored already counts as duplicates then, never twice."""
        created: list[tuple[int, NewObservation]] = []
        for d in decoded:
            try:
                created += self._store([d])
            except DBAPIError:
                raise
            except Exception as exc:
                log.exception("storing the MQTT observation on %s failed", d.message.topic)
                self._reject(d.message, f"internal error storing the observation ({type(exc).__name__}); see the log")
        return created

    @staticmethod
    def _decode(batch: list[Message]) -> DecodedBatch:
        """Read each message's JSON and datastream (no database: the writer checks against it)."""
        decoded: list[Decoded] = []
        rejected: list[tuple[Message, str]] = []
        ignored = 0
        for m in batch:
            if m.payload.startswith(_NOTIFICATION):  # another worker's notification: no need to parse it
                ignored += 1
                continue
            try:
                body = decode_json(m.payload)
            except (ValueError, UnicodeDecodeError) as exc:
                rejected.append((m, f"not JSON ({exc})"))
                continue
            if type(body) is not dict:
                rejected.append((m, "the payload must be a JSON object (one Observation)"))
                continue
            if "@iot.id" in body:
                ignored += 1
                continue
            ds_id: Any = None
            if m.topic != "v1.1/Observations":
                match = _DATASTREAM_TOPIC.match(m.topic)
                ds_id = int(match.group(1)) if match else None
            if ds_id is None:
                ds = body.get("Datastream")
                ds_id = ds.get("@iot.id") if isinstance(ds, dict) else None
                if m.topic != "v1.1/Observations" or not isinstance(ds_id, int) or isinstance(ds_id, bool):
                    rejected.append((m, "publish to v1.1/Datastreams(ID)/Observations or give Datastream @iot.id"))
                    continue
            foi = body.get("FeatureOfInterest")
            foi_id = foi.get("@iot.id") if isinstance(foi, dict) else None
            if foi is not None and type(foi_id) is not int:
                rejected.append((m, "over MQTT a FeatureOfInterest is given by its @iot.id"))
                continue
            when = None
            if "result" in body and _LEAN_KEYS.issuperset(body):
                raw = body.get("phenomenonTime")
                if type(raw) is str and "/" not in raw:
                    with contextlib.suppress(StaBadRequestError):
                        when = parse_time(raw, "phenomenonTime")
            decoded.append(Decoded(m, ds_id, body, foi_id, when))
        return DecodedBatch(batch, decoded, rejected, ignored)

    def _parse(self, decoded: list[Decoded], cache: DatastreamCache) -> list[tuple[Message, NewObservation]]:
        """Check the decoded messages against their datastreams (looked up and locked once for the batch)."""
        cache.prefetch({d.datastream_id for d in decoded}, {d.foi_id for d in decoded if d.foi_id is not None})
        rows = []
        info_of, foi_of, default_of = cache.info, cache.feature, cache.default_foi
        for d in decoded:
            try:
                if d.phenomenon_time is None:  # anything but the usual message: the general check
                    body = {k: v for k, v in d.body.items() if k not in ("Datastream", "FeatureOfInterest")}
                    rows.append((d.message, observation_from_json(cache.conn, body, d.datastream_id, d.foi_id, cache)))
                    continue
                result = d.body["result"]
                number = check_result(info_of(d.datastream_id).observation_type, result)
                foi = foi_of(d.foi_id) if d.foi_id is not None else default_of(d.datastream_id)
                rows.append((d.message, NewObservation(d.datastream_id, foi, d.phenomenon_time, result, number)))
            except SensingError as exc:
                self._reject(d.message, str(exc))
        return rows

    def _store(self, decoded: list[Decoded]) -> list[tuple[int, NewObservation]]:
        with self.engine.begin() as conn:
            cache = DatastreamCache(conn)
            rows = self._parse(decoded, cache)
            try:
                with conn.begin_nested():
                    kept = [r for _m, r in rows]
                    ids = insert_observations(conn, kept)
                    alarms.evaluate(conn, ids)
            except (IntegrityError, DataError):
                ids, kept = self._store_one_by_one(conn, rows)
        stored = [(i, r) for i, r in zip(ids, kept, strict=True) if i is not None]
        self.counters.stored += len(stored)
        self.counters.duplicates += sum(1 for i in ids if i is None)
        return stored

    def _store_one_by_one(
        self, conn: Any, rows: list[tuple[Message, NewObservation]]
    ) -> tuple[list[int | None], list[NewObservation]]:
        ids: list[int | None] = []
        kept: list[NewObservation] = []
        for m, row in rows:
            try:
                with conn.begin_nested():
                    one = insert_observations(conn, [row])
                    alarms.evaluate(conn, one)
                    ids.extend(one)
                    kept.append(row)
            except (IntegrityError, DataError) as exc:
                self._reject(m, f"refused by the database: {str(exc.orig).splitlines()[0]}")
        return ids, kept


def ensure_session(host: str, port: int, username: str, password: str, client_id: str, *, timeout: float = 10) -> None:
    """Create the subscriber's persistent session and subscriptions at the broker, then disconnect.

    From then on the broker queues observations for the platform even before it first runs. Messages the
    session already holds are never acknowledged here (manual acks), so they stay for the subscriber.
    """
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True)
    client.username_pw_set(username, password)

    def on_connect(c: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        if flags.session_present:
            done.set()
            return
        c.subscribe([(t, SubscribeOptions(qos=1, noLocal=True)) for t in TOPICS])

    client.on_connect = on_connect
    client.on_subscribe = lambda *_a: done.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0xFFFFFFFF
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    ok = done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    if not ok:
        raise SensingError(f"could not create the platform's MQTT session at {host}:{port}")
