"""Observation storage: monthly partitions created on demand, bulk inserts, the latest-value table, retention.

Every observation is keyed by (datastream, phenomenon time): an insert of a row already stored is skipped,
which makes redelivered MQTT messages and retried Data Array posts idempotent. Times are UTC ``timestamptz``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

LIVE_CHANNEL = "cim_sensing"
"""The LISTEN/NOTIFY channel on which stored observations are announced (delivered at commit): JSON arrays
of ``{d: datastream id, o: observation id, t: phenomenon time (UTC, Z), r: result, n: numeric result}``,
the newest stored observation of each datastream of a batch, each payload under PostgreSQL's 8,000 bytes."""
_KNOWN_MONTHS: set[tuple[str, dt.date]] = set()  # (database URL, month) of partitions known to exist
_MONTHS_LOCK = threading.Lock()
PARTITION_LOCK_KEY = 0x5354_4F42  # pg_advisory_xact_lock key of partition creation ("STOB")


class NewObservation(NamedTuple):
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
    kind = type(value)
    if kind is float or kind is int:  # measurements (finite: NaN and infinities are refused before)
        return repr(value)
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _months(times: list[dt.datetime]) -> set[dt.date]:
    """The months (UTC) from the earliest to the latest of ``times`` (each month a partition)."""
    m, last = month_of(min(times)), month_of(max(times))
    out = {m}
    while m < last:
        m = _next_month(m)
        out.add(m)
    return out


_LEAN_COLUMNS = "i, oid, d, f, t, r, n"
_OPTIONAL_FIELDS = len(NewObservation._field_defaults)
_LEAN_TAIL = (None,) * _OPTIONAL_FIELDS
"""The optional fields of a :class:`NewObservation` (end, result time, quality, valid time, parameters), unset."""


def _lean_copy(rows: Sequence[NewObservation], oids: Sequence[int]) -> str | None:
    """COPY text of :data:`_LEAN_COLUMNS` when every row is a finite number at an instant with no optional
    field (the usual measurement), else None. Such values need no COPY escaping (digits, signs, ``.``,
    ``e``, ISO 8601 times), and the JSON result is the number's ``repr``, as :func:`_json` writes it."""
    out: list[str] = []
    add = out.append
    for i, (r, oid) in enumerate(zip(rows, oids, strict=True)):
        value, number = r.result, r.result_number
        kind = type(value)
        if (kind is not float and kind is not int) or type(number) is not float or r[-_OPTIONAL_FIELDS:] != _LEAN_TAIL:
            return None
        t = r.phenomenon_time.isoformat()
        add(f"{i}\t{oid}\t{r.datastream_id}\t{r.feature_of_interest_id}\t{t}\t{value!r}\t{number!r}\n")
    return "".join(out)


STAGE = "sta_observation_stage"
"""The session's staging table: the rows of the last :func:`insert_observations` call (``oid`` = new id)."""
_STAGE_COLUMNS = "i, oid, d, f, t, te, rt, r, n, q, vs, ve, p"
_STAGE_DDL = f"""
    CREATE TEMP TABLE IF NOT EXISTS {STAGE} (
        i int, d bigint, f bigint, t timestamptz, te timestamptz, rt timestamptz, r jsonb, n double precision,
        q jsonb, vs timestamptz, ve timestamptz, p jsonb, oid bigint) ON COMMIT DELETE ROWS
"""
_INSERT = f"""
    WITH src AS (
        SELECT DISTINCT ON (d, t) * FROM {STAGE} ORDER BY d, t, i
    )
    INSERT INTO sta_observation (id, phenomenon_time, phenomenon_time_end, result_time, result, result_number,
        result_quality, valid_time_start, valid_time_end, parameters, datastream_id, feature_of_interest_id)
    SELECT oid, t, te, rt, r, n, q, vs, ve, p, d, f FROM src
    ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING
    RETURNING id
"""
_RESERVE_IDS = "SELECT array_agg(nextval('sta_observation_id_seq')) FROM generate_series(1, %s)"
_FORGET_DUPLICATES = f"UPDATE {STAGE} SET oid = NULL WHERE NOT (oid = ANY(%s))"
_AFTER_INSERT = f"""
    WITH newest AS (
        SELECT DISTINCT ON (d) d, oid, t, r, n FROM {STAGE} WHERE oid IS NOT NULL ORDER BY d, t DESC
    ), latest AS (
        INSERT INTO sta_latest AS l (datastream_id, observation_id, phenomenon_time, result, result_number,
            received_at)
        SELECT d, oid, t, r, n, now() FROM newest ORDER BY d
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
        FROM (SELECT d, min(t) AS t0, max(COALESCE(te, t)) AS t1, min(rt) AS r0, max(rt) AS r1
              FROM {STAGE} WHERE oid IS NOT NULL GROUP BY d) e
        WHERE ds.id = e.d
    ), built AS MATERIALIZED (  -- each item's JSON built once, by concatenation (half json_build_object's CPU)
        SELECT d, '{{"d":' || d || ',"o":' || oid || ',"t":"' || ts || '"' AS head,
               ',"n":' || COALESCE(n::text, 'null') || '}}' AS tail, COALESCE(r::text, 'null') AS r
        FROM (SELECT *, to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts FROM newest) x
    ), items AS MATERIALIZED (
        SELECT d, CASE WHEN length(r) > 3900 THEN head || tail ELSE head || ',"r":' || r || tail END AS item
        FROM built
    ), chunks AS (
        SELECT '[' || string_agg(item, ',' ORDER BY d) || ']' AS payload
        FROM (SELECT d, item, (sum(length(item) + 1) OVER (ORDER BY d)) / 3500 AS chunk FROM items) z
        GROUP BY chunk
    )
    SELECT count(pg_notify('{LIVE_CHANNEL}', payload)) FROM chunks
"""


def insert_observations(conn: Connection, rows: Sequence[NewObservation]) -> list[int | None]:
    """Store ``rows``; return each row's new id, or None when it was already stored.

    The batch's ids are reserved from the observation sequence first; the rows, with their ids, are copied
    (``COPY``: plain measurements as one text block, others row by row) into the session's staging table
    :data:`STAGE` and inserted from there in one statement (``ON CONFLICT DO NOTHING`` on datastream and
    phenomenon time, so redelivered and retried observations are stored once; the staged rows not inserted
    lose their id); then, once per datastream of the batch, the latest value moves forward,
    the datastream's phenomenon/result time extents widen and the newest value is announced on
    :data:`LIVE_CHANNEL` (delivered at commit). The staging table keeps the batch (with each new id) for
    :func:`cim.db.alarms.alarm_transitions` until the next call or the end of the transaction.

    The caller has locked the rows' datastreams and features of interest (:func:`lock_datastreams`,
    :func:`existing_features`), which stands for the foreign keys the partitioned table does not have.
    """
    if not rows:
        return []
    ensure_partitions(conn, _months([r.phenomenon_time for r in rows]))
    conn.exec_driver_sql(_STAGE_DDL)
    conn.exec_driver_sql(f"DELETE FROM {STAGE}")
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(_RESERVE_IDS, (len(rows),))  # ids known before the insert: no update of the stage after it
        oids: list[int] = cur.fetchone()[0]
        lean = _lean_copy(rows, oids)
        if lean is not None:  # measurements with an instant and nothing else: one text block
            with cur.copy(f"COPY {STAGE} ({_LEAN_COLUMNS}) FROM STDIN") as copy:
                copy.write(lean)
        else:
            with cur.copy(f"COPY {STAGE} ({_STAGE_COLUMNS}) FROM STDIN") as copy:
                write = copy.write_row
                for i, (r, oid) in enumerate(zip(rows, oids, strict=True)):
                    write(
                        (
                            i,
                            oid,
                            r.datastream_id,
                            r.feature_of_interest_id,
                            r.phenomenon_time,
                            r.phenomenon_time_end,
                            r.result_time,
                            _json(r.result),
                            r.result_number,
                            None if r.result_quality is None else _json(r.result_quality),
                            r.valid_time_start,
                            r.valid_time_end,
                            None if r.parameters is None else _json(r.parameters),
                        )
                    )
        cur.execute(_INSERT)
        inserted = [r[0] for r in cur.fetchall()]
        ids: list[int | None] = list(oids)
        if len(inserted) < len(oids):  # some were stored before (or twice in the batch): they get no new id
            cur.execute(_FORGET_DUPLICATES, (inserted,))
            kept = set(inserted)
            ids = [oid if oid in kept else None for oid in oids]
        if inserted:
            cur.execute(_AFTER_INSERT)
    return ids


def lock_datastreams(conn: Connection, datastream_ids: Sequence[int]) -> list[tuple[int, str, int, int | None]]:
    """Lock datastreams for a batch of observations (in id order, so concurrent batches never deadlock) and
    return (id, observation type, thing id, default feature of interest id) of those that exist.

    The lock (``FOR NO KEY UPDATE``) keeps a datastream from being deleted until the batch commits, as a
    foreign key would, and orders the batch's later updates of the datastream and its latest value.
    """
    raw: Any = conn.connection.driver_connection  # plain tuples: a batch locks up to 5,000 datastreams
    with raw.cursor() as cur:
        cur.execute(
            """
            SELECT d.id, d.observation_type, d.thing_id,
                   (SELECT f.id FROM sta_feature_of_interest f WHERE f.location_id =
                      (SELECT min(tl.location_id) FROM sta_thing_location tl WHERE tl.thing_id = d.thing_id))
            FROM sta_datastream d WHERE d.id = ANY(%(ids)s) ORDER BY d.id FOR NO KEY UPDATE OF d
            """,
            {"ids": sorted(datastream_ids)},
        )
        rows: list[tuple[int, str, int, int | None]] = cur.fetchall()
        return rows


def existing_features(conn: Connection, feature_ids: Sequence[int]) -> set[int]:
    """The features of interest among ``feature_ids`` that exist, locked (``FOR KEY SHARE``) until commit."""
    if not feature_ids:
        return set()
    raw: Any = conn.connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(
            "SELECT id FROM sta_feature_of_interest WHERE id = ANY(%(ids)s) ORDER BY id FOR KEY SHARE",
            {"ids": sorted(feature_ids)},
        )
        return {r[0] for r in cur.fetchall()}


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


_LATEST_KEYS = (
    "datastream_id",
    "observation_id",
    "phenomenon_time",
    "result",
    "result_number",
    "datastream",
    "unit",
    "thing_id",
    "thing",
    "observed_property_id",
    "observed_property",
)


def latest_values(conn: Connection, datastream_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Latest observation per datastream with its thing, observed property and unit, in datastream order
    (``phenomenon_time`` as PostgreSQL writes it in JSON). Plain rows: building one JSON document in SQL
    and parsing it again cost twice the CPU for 10,000 datastreams."""
    where = "WHERE l.datastream_id = ANY(%(ids)s)" if datastream_ids is not None else ""
    raw: Any = conn.connection.driver_connection  # plain tuples: no per-row result processing
    with raw.cursor() as cur:
        cur.execute(
            f"""
            SELECT l.datastream_id, l.observation_id, to_json(l.phenomenon_time) #>> '{{}}', l.result,
                   l.result_number, d.name, d.unit_of_measurement->>'symbol', d.thing_id, t.name, op.id, op.name
            FROM sta_latest l
            JOIN sta_datastream d ON d.id = l.datastream_id
            JOIN sta_thing t ON t.id = d.thing_id
            JOIN sta_observed_property op ON op.id = d.observed_property_id
            {where}
            ORDER BY l.datastream_id
            """,
            {"ids": list(datastream_ids)} if datastream_ids is not None else None,
        )
        rows = cur.fetchall()
    return [dict(zip(_LATEST_KEYS, row, strict=True)) for row in rows]


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
        SELECT DISTINCT ON (tl.thing_id) tl.thing_id,
               CASE WHEN ST_GeometryType(loc.geom) = 'ST_Point' THEN loc.geom ELSE ST_PointOnSurface(loc.geom) END
                   AS point
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
