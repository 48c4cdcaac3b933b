"""Observation storage: monthly partitions created on demand, bulk inserts, the latest-value table, retention.

Every observation is keyed by (datastream, phenomenon time): an insert of a row already stored is skipped,
which makes redelivered MQTT messages and retried Data Array posts idempotent. Times are UTC ``timestamptz``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

_KNOWN_MONTHS: set[tuple[str, dt.date]] = set()  # (database URL, month) of partitions known to exist
_MONTHS_LOCK = threading.Lock()
PARTITION_LOCK_KEY = 0x5354_4F42  # pg_advisory_xact_lock key of partition creation ("STOB")


@dataclass(frozen=True)
class NewObservation:
    """One observation to store (``result`` is the JSON value; ``result_number`` its numeric value or None)."""

    datastream_id: int
    feature_of_interest_id: int
    phenomenon_time: dt.datetime
    result: Any
    result_number: float | None
    phenomenon_time_end: dt.datetime | None = None
    result_time: dt.datetime | None = None
    result_quality: Any = None
    valid_time_start: dt.datetime | None = None
    valid_time_end: dt.datetime | None = None
    parameters: dict[str, Any] | None = None


def month_of(t: dt.datetime) -> dt.date:
    """The first day (UTC) of the month of ``t``."""
    u = t.astimezone(dt.UTC)
    return dt.date(u.year, u.month, 1)


def _next_month(m: dt.date) -> dt.date:
    return dt.date(m.year + (m.month == 12), m.month % 12 + 1, 1)


def ensure_partitions(conn: Connection, months: set[dt.date]) -> None:
    """Create the monthly partitions of ``sta_observation`` for ``months`` when missing."""
    db = conn.engine.url.render_as_string(hide_password=True)
    with _MONTHS_LOCK:
        missing = sorted(m for m in months if (db, m) not in _KNOWN_MONTHS)
    if not missing:
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITION_LOCK_KEY})
    for m in missing:
        name = f"sta_observation_{m.year:04d}_{m.month:02d}"
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF sta_observation "
                f"FOR VALUES FROM ('{m.isoformat()}') TO ('{_next_month(m).isoformat()}')"
            )
        )
    with _MONTHS_LOCK:
        _KNOWN_MONTHS.update((db, m) for m in missing)


def ensure_partitions_ahead(conn: Connection, months_ahead: int = 3, *, now: dt.datetime | None = None) -> None:
    """Create partitions for the current month and ``months_ahead`` following ones."""
    m = month_of(now or dt.datetime.now(dt.UTC))
    months = set()
    for _ in range(months_ahead + 1):
        months.add(m)
        m = _next_month(m)
    ensure_partitions(conn, months)


def forget_known_partitions() -> None:
    """Forget the partitions this process created (after a database was dropped, e.g. in tests)."""
    with _MONTHS_LOCK:
        _KNOWN_MONTHS.clear()


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def insert_observations(conn: Connection, rows: Sequence[NewObservation]) -> list[int | None]:
    """Store ``rows`` in one statement; return each row's new id, or None when it was already stored.

    Also widens the datastreams' phenomenon/result time extents and moves their latest values forward.
    """
    if not rows:
        return []
    ensure_partitions(conn, {month_of(r.phenomenon_time) for r in rows})
    payload = [
        {
            "i": i,
            "d": r.datastream_id,
            "f": r.feature_of_interest_id,
            "t": r.phenomenon_time.isoformat(),
            "te": r.phenomenon_time_end.isoformat() if r.phenomenon_time_end else None,
            "rt": r.result_time.isoformat() if r.result_time else None,
            "r": _json(r.result),
            "n": r.result_number,
            "q": _json(r.result_quality),
            "vs": r.valid_time_start.isoformat() if r.valid_time_start else None,
            "ve": r.valid_time_end.isoformat() if r.valid_time_end else None,
            "p": _json(r.parameters),
        }
        for i, r in enumerate(rows)
    ]
    result = conn.execute(
        text(
            """
            WITH src AS (
                SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
                    i int, d bigint, f bigint, t timestamptz, te timestamptz, rt timestamptz, r text,
                    n double precision, q text, vs timestamptz, ve timestamptz, p text)
            ), ins AS (
                INSERT INTO sta_observation (phenomenon_time, phenomenon_time_end, result_time, result,
                    result_number, result_quality, valid_time_start, valid_time_end, parameters, datastream_id,
                    feature_of_interest_id)
                SELECT DISTINCT ON (d, t) t, te, rt, r::jsonb, n, q::jsonb, vs, ve, p::jsonb, d, f
                FROM src ORDER BY d, t, i
                ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING
                RETURNING id, datastream_id, phenomenon_time, result, result_number, result_time,
                    phenomenon_time_end
            ), latest AS (
                INSERT INTO sta_latest AS l (datastream_id, observation_id, phenomenon_time, result, result_number,
                    received_at)
                SELECT DISTINCT ON (datastream_id) datastream_id, id, phenomenon_time, result, result_number, now()
                FROM ins ORDER BY datastream_id, phenomenon_time DESC
                ON CONFLICT (datastream_id) DO UPDATE SET observation_id = excluded.observation_id,
                    phenomenon_time = excluded.phenomenon_time, result = excluded.result,
                    result_number = excluded.result_number, received_at = excluded.received_at
                WHERE excluded.phenomenon_time >= l.phenomenon_time
            ), extents AS (
                UPDATE sta_datastream ds SET
                    phenomenon_time_start = LEAST(ds.phenomenon_time_start, e.t0),
                    phenomenon_time_end = GREATEST(ds.phenomenon_time_end, e.t1),
                    result_time_start = LEAST(ds.result_time_start, e.r0),
                    result_time_end = GREATEST(ds.result_time_end, e.r1)
                FROM (SELECT datastream_id, min(phenomenon_time) AS t0,
                             max(COALESCE(phenomenon_time_end, phenomenon_time)) AS t1,
                             min(result_time) AS r0, max(result_time) AS r1
                      FROM ins GROUP BY datastream_id) e
                WHERE ds.id = e.datastream_id
            )
            SELECT src.i, ins.id FROM src JOIN ins ON ins.datastream_id = src.d AND ins.phenomenon_time = src.t
            """
        ),
        {"rows": json.dumps(payload)},
    )
    ids: list[int | None] = [None] * len(rows)
    seen: set[int] = set()
    for i, new_id in sorted(result.all()):
        if new_id not in seen:  # two rows of one batch with the same key: the first one is stored
            ids[i] = int(new_id)
            seen.add(new_id)
    notify_latest(conn, rows, ids)
    return ids


LIVE_CHANNEL = "cim_sensing"
"""The LISTEN/NOTIFY channel on which stored observations are announced (delivered at commit)."""
_NOTIFY_BYTES = 7000  # PostgreSQL limits a notification payload to 8000 bytes


def notify_latest(conn: Connection, rows: Sequence[NewObservation], ids: Sequence[int | None]) -> None:
    """Announce the newest stored observation of each datastream of a batch on :data:`LIVE_CHANNEL`."""
    newest: dict[int, tuple[NewObservation, int]] = {}
    for row, oid in zip(rows, ids, strict=True):
        if oid is None:
            continue
        have = newest.get(row.datastream_id)
        if have is None or row.phenomenon_time >= have[0].phenomenon_time:
            newest[row.datastream_id] = (row, oid)
    payloads: list[str] = []
    chunk: list[str] = []
    size = 0
    for ds_id, (row, oid) in newest.items():
        item = json.dumps(
            {"d": ds_id, "o": oid, "t": row.phenomenon_time.isoformat(), "r": row.result, "n": row.result_number},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        if len(item) > _NOTIFY_BYTES:
            item = json.dumps({"d": ds_id, "o": oid, "t": row.phenomenon_time.isoformat(), "n": row.result_number})
        if size + len(item) + 2 > _NOTIFY_BYTES and chunk:
            payloads.append("[" + ",".join(chunk) + "]")
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        payloads.append("[" + ",".join(chunk) + "]")
    if payloads:  # one statement for the whole batch
        conn.execute(
            text("SELECT count(pg_notify(:c, p)) FROM unnest(CAST(:ps AS text[])) AS p"),
            {"c": LIVE_CHANNEL, "ps": payloads},
        )


def existing_observation_ids(conn: Connection, keys: Sequence[tuple[int, dt.datetime]]) -> list[int | None]:
    """The ids of stored observations for (datastream id, phenomenon time) keys, None where absent."""
    if not keys:
        return []
    rows = conn.execute(
        text(
            """
            SELECT k.i, o.id FROM jsonb_to_recordset(CAST(:k AS jsonb)) AS k(i int, d bigint, t timestamptz)
            JOIN sta_observation o ON o.datastream_id = k.d AND o.phenomenon_time = k.t
            """
        ),
        {"k": json.dumps([{"i": i, "d": d, "t": t.isoformat()} for i, (d, t) in enumerate(keys)])},
    ).all()
    out: list[int | None] = [None] * len(keys)
    for i, oid in rows:
        out[i] = int(oid)
    return out


def apply_retention(conn: Connection) -> int:
    """Delete observations older than their datastream's ``retention_days``; return how many were deleted."""
    result = conn.execute(
        text(
            """
            DELETE FROM sta_observation o USING sta_datastream d
            WHERE o.datastream_id = d.id AND d.retention_days IS NOT NULL
              AND o.phenomenon_time < now() - make_interval(days => d.retention_days)
            """
        )
    )
    conn.execute(
        text(
            """
            UPDATE sta_datastream d SET phenomenon_time_start = m.t0
            FROM (SELECT datastream_id, min(phenomenon_time) AS t0 FROM sta_observation GROUP BY datastream_id) m
            WHERE d.id = m.datastream_id AND d.retention_days IS NOT NULL
            """
        )
    )
    return int(result.rowcount or 0)


def latest_values(conn: Connection, datastream_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Latest observation per datastream with its thing, observed property and unit (one JSON document from SQL)."""
    where = "WHERE l.datastream_id = ANY(:ids)" if datastream_ids is not None else ""
    doc = conn.execute(
        text(
            f"""
            SELECT COALESCE(json_agg(json_build_object(
                       'datastream_id', l.datastream_id, 'observation_id', l.observation_id,
                       'phenomenon_time', l.phenomenon_time, 'result', l.result, 'result_number', l.result_number,
                       'datastream', d.name, 'unit', d.unit_of_measurement->>'symbol', 'thing_id', d.thing_id,
                       'thing', t.name, 'observed_property_id', op.id, 'observed_property', op.name)
                   ORDER BY l.datastream_id), '[]')::text
            FROM sta_latest l
            JOIN sta_datastream d ON d.id = l.datastream_id
            JOIN sta_thing t ON t.id = d.thing_id
            JOIN sta_observed_property op ON op.id = d.observed_property_id
            {where}
            """
        ),
        {"ids": list(datastream_ids)} if datastream_ids is not None else {},
    ).scalar_one()
    return list(json.loads(doc))


_OVERVIEW = """
    WITH thresholds AS (
        SELECT d.id AS datastream_id,
               min(r.threshold) FILTER (WHERE r.kind = 'over') AS over,
               max(r.threshold) FILTER (WHERE r.kind = 'under') AS under
        FROM sensor_alarm_rule r
        JOIN sta_datastream d ON (r.datastream_id = d.id OR r.observed_property_id = d.observed_property_id)
        WHERE r.enabled GROUP BY d.id
    ), alarms AS (
        SELECT datastream_id, count(*) AS n FROM sensor_alarm WHERE cleared_at IS NULL GROUP BY datastream_id
    ), places AS (
        SELECT DISTINCT ON (tl.thing_id) tl.thing_id, ST_PointOnSurface(loc.geom) AS point
        FROM sta_thing_location tl JOIN sta_location loc ON loc.id = tl.location_id
        ORDER BY tl.thing_id, loc.id
    ), rows AS (
        SELECT d.id AS datastream_id, d.name AS datastream, d.unit_of_measurement->>'symbol' AS unit,
               t.id AS thing_id, t.name AS thing, t.building_id, t.facility_id, op.name AS observed_property,
               l.result, l.result_number, l.phenomenon_time, l.received_at, th.over, th.under,
               COALESCE(a.n, 0) AS active_alarms, p.point
        FROM sta_datastream d
        JOIN sta_thing t ON t.id = d.thing_id
        JOIN sta_observed_property op ON op.id = d.observed_property_id
        LEFT JOIN sta_latest l ON l.datastream_id = d.id
        LEFT JOIN thresholds th ON th.datastream_id = d.id
        LEFT JOIN alarms a ON a.datastream_id = d.id
        LEFT JOIN places p ON p.thing_id = t.id
    )
"""
_STATUS = """
    CASE WHEN active_alarms > 0 THEN 'alarm'
         WHEN phenomenon_time IS NULL THEN 'nodata'
         WHEN result_number IS NULL THEN 'ok'
         WHEN over IS NOT NULL AND result_number > over - 0.1 * abs(over) THEN 'warning'
         WHEN under IS NOT NULL AND result_number < under + 0.1 * abs(under) THEN 'warning'
         ELSE 'ok' END
"""


def sensor_overview(conn: Connection) -> list[dict[str, Any]]:
    """Every datastream at its Thing's location (a point, lon/lat EPSG:4490) with its latest value, its
    thresholds (lowest ``over``, highest ``under`` rule), its count of active alarms and its status
    (``alarm``, ``warning`` within 10 % of a threshold, ``ok``, ``nodata``)."""
    rows = conn.execute(
        text(
            _OVERVIEW + f"SELECT rows.*, {_STATUS} AS status, ST_AsGeoJSON(point, 7)::json AS geometry FROM rows "
            "ORDER BY datastream_id"
        )
    ).mappings()
    return [{k: v for k, v in r.items() if k != "point"} for r in rows]


def sensor_overview_geojson(conn: Connection) -> str:
    """:func:`sensor_overview` as GeoJSON FeatureCollection text, built by PostgreSQL (fast for 10,000+)."""
    return str(
        conn.execute(
            text(
                _OVERVIEW
                + f"""
                SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(
                    json_build_object('type', 'Feature', 'id', datastream_id,
                        'geometry', ST_AsGeoJSON(point, 7)::json,
                        'properties', json_build_object(
                            'datastream_id', datastream_id, 'datastream', datastream, 'unit', unit,
                            'thing_id', thing_id, 'thing', thing, 'building_id', building_id,
                            'facility_id', facility_id, 'observed_property', observed_property, 'result', result,
                            'result_number', result_number,
                            'phenomenon_time', to_char(phenomenon_time AT TIME ZONE 'UTC',
                                                       'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'received_at', to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                            'over', over, 'under', under, 'active_alarms', active_alarms, 'status', {_STATUS}))
                    ORDER BY datastream_id), '[]'))::text
                FROM rows
                """
            )
        ).scalar_one()
    )


def sensing_counts(conn: Connection) -> dict[str, int]:
    """Counts for the dashboard: buildings, facilities, things, datastreams, observations (estimate), alarms."""
    row = (
        conn.execute(
            text(
                """
            SELECT (SELECT count(*) FROM building WHERE valid_to IS NULL) AS buildings,
                   (SELECT count(*) FROM facility WHERE valid_to IS NULL) AS facilities,
                   (SELECT count(*) FROM sta_thing) AS things,
                   (SELECT count(*) FROM sta_datastream) AS datastreams,
                   (SELECT count(*) FROM sta_latest) AS reporting_datastreams,
                   (SELECT count(*) FROM sensor_alarm WHERE cleared_at IS NULL) AS active_alarms
            """
            )
        )
        .mappings()
        .one()
    )
    return {k: int(v) for k, v in row.items()}
