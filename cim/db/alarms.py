"""Queries of alarm rules and alarm events (``sensor_alarm_rule``, ``sensor_alarm``) and their CIM+ effects.

An alarm is raised once per (rule, datastream) and stays active until its condition no longer holds;
geometries are the Thing's Location (EPSG:4490).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

from cim.db.sensing import STAGE

SENSING_DATASET = "sensing: waterlogging points marked by alarms"


def alarm_transitions(conn: Connection) -> list[dict[str, Any]]:
    """The alarm changes the batch just stored by :func:`cim.db.sensing.insert_observations` causes.

    Judges the newest new observation of each datastream of the staging table against every enabled rule
    of the datastream or its observed property, in one query: ``over``/``under`` compare the numeric result
    with the threshold, ``rate`` the change per minute since the previous stored value; a non-numeric result
    breaks no rule and new data ends a ``nodata`` alarm. Returns only the (rule, datastream) pairs whose state
    changes: ``raise`` true (with ``value`` and ``why``) for a rule newly broken, false (with ``active``, the
    alarm id) for an active alarm whose condition no longer holds.
    """
    rows = conn.execute(
        text(
            f"""
            WITH newest AS (
                SELECT DISTINCT ON (d) d, t, n FROM {STAGE} WHERE oid IS NOT NULL ORDER BY d, t DESC
            ), pairs AS (
                SELECT r.id, r.name, r.kind, r.threshold, r.minutes, r.severity, nw.d AS datastream_id, nw.t,
                       nw.n AS value, a.id AS active
                FROM newest nw JOIN sta_datastream ds ON ds.id = nw.d
                JOIN sensor_alarm_rule r ON r.enabled
                     AND (r.datastream_id = ds.id OR r.observed_property_id = ds.observed_property_id)
                LEFT JOIN sensor_alarm a ON a.rule_id = r.id AND a.datastream_id = nw.d AND a.cleared_at IS NULL
            ), judged AS (
                SELECT p.*, CASE WHEN p.kind = 'rate' AND prev.n IS NOT NULL THEN abs(p.value - prev.n)
                                 / greatest(extract(epoch FROM p.t - prev.t) / 60.0, 1e-9) END AS rate
                FROM pairs p LEFT JOIN LATERAL (
                    SELECT o.phenomenon_time AS t, o.result_number AS n FROM sta_observation o
                    WHERE p.kind = 'rate' AND p.value IS NOT NULL AND o.datastream_id = p.datastream_id
                      AND o.phenomenon_time < p.t AND o.result_number IS NOT NULL
                    ORDER BY o.phenomenon_time DESC LIMIT 1) prev ON true
            ), verdict AS (
                SELECT *, COALESCE(CASE kind WHEN 'over' THEN value > threshold WHEN 'under' THEN value < threshold
                                             WHEN 'rate' THEN rate > threshold END, false) AS raise
                FROM judged
            )
            SELECT * FROM verdict WHERE raise = (active IS NULL) ORDER BY datastream_id, id
            """
        )
    ).mappings()
    out = []
    for r in rows:
        row = dict(r)
        value, threshold = row["value"], row["threshold"]
        if row["raise"]:
            if row["kind"] == "over":
                row["why"] = f"{value:g} above {threshold:g}"
            elif row["kind"] == "under":
                row["why"] = f"{value:g} below {threshold:g}"
            else:
                row["why"] = f"changing {row['rate']:g}/min (limit {threshold:g}/min)"
        out.append(row)
    return out


def active_alarm(conn: Connection, rule_id: int, datastream_id: int) -> int | None:
    """The id of the active alarm of (rule, datastream), if one is active."""
    row = conn.execute(
        text("SELECT id FROM sensor_alarm WHERE rule_id = :r AND datastream_id = :d AND cleared_at IS NULL"),
        {"r": rule_id, "d": datastream_id},
    ).first()
    return int(row[0]) if row else None


def thing_context(conn: Connection, datastream_id: int) -> dict[str, Any]:
    """The datastream's thing, its CIM link (facility kind), observed property and a location point."""
    row = (
        conn.execute(
            text(
                """
            SELECT d.name AS datastream, t.id AS thing_id, t.name AS thing, t.facility_id, t.building_id,
                   f.kind AS facility_kind, op.name AS observed_property,
                   (SELECT ST_PointOnSurface(l.geom) FROM sta_thing_location tl JOIN sta_location l
                     ON l.id = tl.location_id WHERE tl.thing_id = t.id ORDER BY l.id LIMIT 1) AS point
            FROM sta_datastream d JOIN sta_thing t ON t.id = d.thing_id
            JOIN sta_observed_property op ON op.id = d.observed_property_id
            LEFT JOIN facility f ON f.id = t.facility_id
            WHERE d.id = :d
            """
            ),
            {"d": datastream_id},
        )
        .mappings()
        .first()
    )
    return dict(row) if row else {}


def raise_alarm(
    conn: Connection,
    *,
    rule: dict[str, Any],
    datastream_id: int,
    value: float | None,
    message: str,
    details: dict[str, Any],
    facility_id: int | None,
) -> int:
    """Store a new active alarm at the thing's location; return its id."""
    return int(
        conn.execute(
            text(
                """
                INSERT INTO sensor_alarm (rule_id, datastream_id, kind, severity, value, threshold, message, geom,
                                          details, facility_id)
                SELECT :r, :d, :k, :s, :v, :th, :m,
                       (SELECT ST_PointOnSurface(l.geom) FROM sta_datastream ds
                         JOIN sta_thing_location tl ON tl.thing_id = ds.thing_id
                         JOIN sta_location l ON l.id = tl.location_id WHERE ds.id = :d ORDER BY l.id LIMIT 1),
                       CAST(:det AS jsonb), :f
                RETURNING id
                """
            ),
            {
                "r": rule["id"],
                "d": datastream_id,
                "k": rule["kind"],
                "s": rule["severity"],
                "v": value,
                "th": rule["threshold"] if rule["kind"] != "nodata" else rule["minutes"],
                "m": message,
                "det": json.dumps(details, ensure_ascii=False, default=str),
                "f": facility_id,
            },
        ).scalar_one()
    )


def clear_alarm(conn: Connection, alarm_id: int) -> None:
    """Clear an active alarm; a waterlogging point it marked stops being live."""
    facility = conn.execute(
        text("UPDATE sensor_alarm SET cleared_at = now() WHERE id = :a AND cleared_at IS NULL RETURNING facility_id"),
        {"a": alarm_id},
    ).scalar()
    if facility is not None:
        conn.execute(
            text("UPDATE facility SET valid_to = now() WHERE id = :f AND kind = 'waterlogging_point'"), {"f": facility}
        )


def mark_waterlogging_point(conn: Connection, manhole_id: int, alarm_name: str) -> int:
    """Insert a live waterlogging point (facility) at a manhole, in the sensing dataset; return its id.

    The health check's waterlogging density counts live ``waterlogging_point`` facilities, so an active
    manhole alarm counts there until it is cleared.
    """
    dataset = conn.execute(text("SELECT id FROM dataset WHERE name = :n AND kind = 'sensing'"), {"n": SENSING_DATASET})
    ds_id = dataset.scalar()
    if ds_id is None:
        ds_id = conn.execute(
            text(
                "INSERT INTO dataset (name, kind, layer, path, sha256) VALUES (:n, 'sensing', 'facilities', "
                "'mqtt', repeat('0', 64)) RETURNING id"
            ),
            {"n": SENSING_DATASET},
        ).scalar_one()
    return int(
        conn.execute(
            text(
                """
                INSERT INTO facility (kind, name, geom, district_code, source_id, attributes, dataset_id)
                SELECT 'waterlogging_point', :name, ST_PointOnSurface(geom), district_code,
                       'manhole:' || id, jsonb_build_object('active', true, 'manhole_id', id, 'source', 'sensor alarm'),
                       :ds
                FROM facility WHERE id = :m
                RETURNING id
                """
            ),
            {"name": f"积水点 (alarm: {alarm_name})", "m": manhole_id, "ds": ds_id},
        ).scalar_one()
    )


def stale_datastreams(conn: Connection) -> list[dict[str, Any]]:
    """(rule, datastream) pairs of ``nodata`` rules whose datastream has had nothing for ``minutes``."""
    rows = conn.execute(
        text(
            """
            SELECT r.id, r.name, r.kind, r.threshold, r.minutes, r.severity, d.id AS datastream_id,
                   l.received_at
            FROM sensor_alarm_rule r
            JOIN sta_datastream d ON (r.datastream_id = d.id OR r.observed_property_id = d.observed_property_id)
            LEFT JOIN sta_latest l ON l.datastream_id = d.id
            WHERE r.enabled AND r.kind = 'nodata'
              AND (l.received_at IS NULL OR l.received_at < now() - make_interval(secs => r.minutes * 60))
            """
        )
    ).mappings()
    return [dict(r) for r in rows]


def list_alarms(
    conn: Connection, *, active_only: bool, limit: int, offset: int = 0, datastream_id: int | None = None
) -> list[dict[str, Any]]:
    """Alarm events, newest first, with their datastream and thing and a GeoJSON point (lon/lat, EPSG:4490)."""
    conds = ["a.cleared_at IS NULL"] if active_only else []
    if datastream_id is not None:
        conds.append("a.datastream_id = :ds")
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    rows = conn.execute(
        text(
            f"""
            SELECT a.id, a.rule_id, r.name AS rule, a.datastream_id, d.name AS datastream, t.id AS thing_id,
                   t.name AS thing, a.kind, a.severity, a.value, a.threshold, a.message, a.details,
                   a.raised_at, a.cleared_at, a.facility_id, ST_AsGeoJSON(a.geom, 7)::json AS geometry
            FROM sensor_alarm a JOIN sensor_alarm_rule r ON r.id = a.rule_id
            JOIN sta_datastream d ON d.id = a.datastream_id JOIN sta_thing t ON t.id = d.thing_id
            {where}
            ORDER BY a.raised_at DESC, a.id DESC LIMIT :limit OFFSET :offset
            """
        ),
        {"limit": limit, "offset": offset, "ds": datastream_id},
    ).mappings()
    return [dict(r) for r in rows]


def insert_rule(conn: Connection, values: dict[str, Any]) -> int:
    """Store a rule (validated by the caller and the table's checks); return its id."""
    return int(
        conn.execute(
            text(
                """
                INSERT INTO sensor_alarm_rule (name, kind, threshold, minutes, severity, datastream_id,
                                               observed_property_id)
                VALUES (:name, :kind, :threshold, :minutes, :severity, :datastream_id, :observed_property_id)
                RETURNING id
                """
            ),
            values,
        ).scalar_one()
    )


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    """Every rule."""
    rows = conn.execute(text("SELECT * FROM sensor_alarm_rule ORDER BY id")).mappings()
    return [dict(r) for r in rows]


def active_waterlogging_points(conn: Connection) -> list[dict[str, Any]]:
    """Live waterlogging points marked by active alarms: alarm, manhole, lon/lat (EPSG:4490 degrees)."""
    rows = conn.execute(
        text(
            """
            SELECT a.id AS alarm_id, f.id AS facility_id, (f.attributes->>'manhole_id')::bigint AS manhole_id,
                   a.value, a.raised_at, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat
            FROM sensor_alarm a JOIN facility f ON f.id = a.facility_id
            WHERE a.cleared_at IS NULL AND f.kind = 'waterlogging_point' AND f.valid_to IS NULL
            ORDER BY a.raised_at
            """
        )
    ).mappings()
    return [dict(r) for r in rows]
