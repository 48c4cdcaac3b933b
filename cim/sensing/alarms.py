"""Threshold alarms on observations, and what they mean for the CIM+ analyses.

Rules (per datastream or per observed property): ``over`` / ``under`` a threshold, ``rate`` of change
above a threshold (result units per minute), ``nodata`` for N minutes. Each stored batch is checked (in one
query) in the transaction that stores it, so an alarm and its cause commit together.

CIM+ effects: a raised alarm on a Thing that stands for a **manhole** (``over`` rule: water level) marks
a live waterlogging point at that manhole, which the health check's waterlogging density counts and the
flood analysis can seed from; it stops being live when the alarm clears. A raised alarm on a Thing that
stands for a **gas pipe** lists the buildings within the gas-safety separation of that pipe (the safety
analysis' GB 50028 table) in the alarm's details.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from cim.db import alarms as q
from cim.sensing.errors import StaBadRequestError

KINDS = ("over", "under", "rate", "nodata")
SEVERITIES = ("info", "warning", "critical")


def check_rule(body: Any) -> dict[str, Any]:
    """Validate a rule's JSON (``name, kind, threshold | minutes, severity, datastream_id | observed_property_id``)."""
    if not isinstance(body, dict):
        raise StaBadRequestError("a rule is a JSON object")
    kind = body.get("kind")
    if kind not in KINDS:
        raise StaBadRequestError(f"kind must be one of {', '.join(KINDS)}")
    severity = body.get("severity", "warning")
    if severity not in SEVERITIES:
        raise StaBadRequestError(f"severity must be one of {', '.join(SEVERITIES)}")
    ds, op = body.get("datastream_id"), body.get("observed_property_id")
    if (ds is None) == (op is None):
        raise StaBadRequestError("a rule names exactly one of datastream_id and observed_property_id")
    threshold, minutes = body.get("threshold"), body.get("minutes")
    if kind == "nodata":
        if not isinstance(minutes, int | float) or minutes <= 0:
            raise StaBadRequestError("a nodata rule needs minutes > 0")
    elif not isinstance(threshold, int | float) or isinstance(threshold, bool):
        raise StaBadRequestError(f"an {kind} rule needs a numeric threshold")
    return {
        "name": str(body.get("name") or f"{kind} {threshold if kind != 'nodata' else minutes}"),
        "kind": kind,
        "threshold": float(threshold) if threshold is not None else None,
        "minutes": float(minutes) if minutes is not None else None,
        "severity": severity,
        "datastream_id": ds,
        "observed_property_id": op,
    }


def evaluate(conn: Connection, new_ids: Sequence[int | None]) -> list[int]:
    """Raise or clear alarms for the batch just stored (:func:`cim.db.sensing.insert_observations`, whose
    ids are ``new_ids``): the newest new observation per datastream is judged in SQL; return the ids of
    raised alarms. Nothing to judge when nothing new was stored."""
    if not any(i is not None for i in new_ids):
        return []
    raised: list[int] = []
    for change in q.alarm_transitions(conn):
        if change["raise"]:
            raised.append(_raise(conn, change, change["datastream_id"], change["value"], change["why"]))
        else:
            q.clear_alarm(conn, change["active"])
    return raised


def check_no_data(conn: Connection) -> list[int]:
    """Raise ``nodata`` alarms for datastreams silent longer than their rule allows; return raised ids."""
    raised = []
    for pair in q.stale_datastreams(conn):
        if q.active_alarm(conn, pair["id"], pair["datastream_id"]) is None:
            raised.append(_raise(conn, pair, pair["datastream_id"], None, f"no data for {pair['minutes']:g} min"))
    return raised


def _raise(conn: Connection, rule: dict[str, Any], datastream_id: int, value: float | None, why: str) -> int:
    ctx = q.thing_context(conn, datastream_id)
    details: dict[str, Any] = {"thing": ctx.get("thing"), "observed_property": ctx.get("observed_property")}
    facility_id = None
    kind = ctx.get("facility_kind")
    if kind == "manhole" and rule["kind"] == "over":
        facility_id = q.mark_waterlogging_point(conn, ctx["facility_id"], rule["name"])
        details["waterlogging_point"] = facility_id
    if kind == "pipe_gas" and rule["kind"] in ("over", "rate"):
        details["buildings_within_gas_safety_distance"] = buildings_near_gas_pipe(conn, ctx["facility_id"])
    message = f"{rule['name']}: {ctx.get('thing', 'thing')} / {ctx.get('datastream', datastream_id)} {why}"
    return q.raise_alarm(
        conn,
        rule=rule,
        datastream_id=datastream_id,
        value=value,
        message=message,
        details=details,
        facility_id=facility_id,
    )


def buildings_near_gas_pipe(conn: Connection, pipe_id: int) -> list[dict[str, Any]]:
    """Buildings within the GB 50028 separation of one gas pipe (the safety analysis' query and table)."""
    from cim.analysis.safety import UNKNOWN_PRESSURE_M, separation_table
    from cim.db.analysis_queries import gas_proximity

    pairs = gas_proximity(conn, separation_table(), UNKNOWN_PRESSURE_M)
    return [
        {
            "building_id": p["feature_id"],
            "name": p["name"],
            "distance_m": round(float(p["distance_m"]), 2),
            "required_m": float(p["required_m"]),
        }
        for p in pairs
        if p["pipe_id"] == pipe_id and p["feature_kind"] == "building"
    ]
