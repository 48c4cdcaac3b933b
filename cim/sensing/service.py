"""The SensorThings API 1.1 service, framework-neutral: resource paths, reads with query options, writes.

Functions take a SQLAlchemy connection and plain values and return JSON-ready dicts in the standard's
shape (``@iot.id``, ``@iot.selfLink``, ``…@iot.navigationLink``, ``@iot.count``, ``@iot.nextLink``); the
HTTP adapter (:mod:`cim.api.sensing`) only wraps them. Geometry is GeoJSON in lon/lat (EPSG:4490, which the
standard's WGS 84 matches to centimetres).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, text

from cim import crs
from cim.db.sensing import (
    NewObservation,
    existing_features,
    existing_observation_ids,
    insert_observations,
    lock_datastreams,
)
from cim.sensing import alarms
from cim.sensing.entities import BY_NAME, BY_SET, OBSERVATION_TYPES, EntityType, Nav, Prop
from cim.sensing.errors import StaBadRequestError, StaConflictError, StaNotFoundError
from cim.sensing.query import Compiler, Options, Params, parse_filter

GEOJSON_TYPES = ("application/geo+json", "application/vnd.geo+json")
CIM_BUILDING = "cim:building"
CIM_FACILITY = "cim:facility"
RETENTION = "cim:retentionDays"
"""Datastream property: keep observations this many days (``cim sensors retention`` deletes older ones)."""


# -- resource paths ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One path segment: an entity set or navigation name and an optional ``(id)``."""

    name: str
    id: int | None


@dataclass
class Target:
    """What a resource path addresses.

    ``entity`` rows are those of ``where`` (SQL on alias ``t``); ``single`` when the path names one entity;
    ``prop`` / ``value`` / ``ref`` for ``/name``, ``/name/$value`` and ``/$ref`` paths; ``parent`` is the
    (navigation, parent id) a POST to this collection links the new entity to.
    """

    entity: EntityType
    where: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    single: bool = False
    entity_id: int | None = None
    prop: str | None = None
    value: bool = False
    ref: bool = False
    parent: tuple[EntityType, Nav, int] | None = None


_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d+)\))?$")


def parse_path(path: str) -> list[Segment]:
    """Split ``Things(1)/Datastreams`` into segments; :class:`StaBadRequestError` on malformed ones."""
    out = []
    for raw in [p for p in path.strip("/").split("/") if p]:
        if raw in ("$value", "$ref"):
            out.append(Segment(raw, None))
            continue
        m = _SEGMENT.match(raw)
        if not m:
            raise StaBadRequestError(f"invalid path segment {raw!r}; ids are integers, e.g. Things(1)")
        out.append(Segment(m.group(1), int(m.group(2)) if m.group(2) else None))
    return out


def _exists(conn: Connection, entity: EntityType, entity_id: int) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {entity.table} WHERE id = :id"), {"id": entity_id}).first() is not None


def _membership(nav: Nav, parent_id_sql: str) -> str:
    """SQL condition on alias ``t`` (a target row) that it is reached from the parent through ``nav``."""
    if nav.remote_fk:
        return f"t.{nav.remote_fk} = {parent_id_sql}"
    if nav.link:
        table, mine, theirs = nav.link
        return f"t.id IN (SELECT {theirs} FROM {table} WHERE {mine} = {parent_id_sql})"
    raise AssertionError("to-one navigation has no membership condition")


def resolve(conn: Connection, segments: list[Segment]) -> Target:
    """Follow a resource path; :class:`StaNotFoundError` when an entity on the way does not exist."""
    if not segments:
        raise StaBadRequestError("empty resource path")
    first = segments[0]
    entity = BY_SET.get(first.name)
    if entity is None:
        raise StaNotFoundError(f"no entity set {first.name!r}; sets: {', '.join(BY_SET)}")
    target = Target(entity)
    current_id = first.id
    if current_id is not None:
        if not _exists(conn, entity, current_id):
            raise StaNotFoundError(f"{entity.name} {current_id} does not exist")
        target = Target(entity, ["t.id = :id0"], {"id0": current_id}, single=True, entity_id=current_id)
    for n, seg in enumerate(segments[1:], start=1):
        if seg.name in ("$value", "$ref"):
            if seg.name == "$value" and target.prop is None:
                raise StaBadRequestError("$value follows a property, e.g. Things(1)/name/$value")
            if seg.name == "$ref" and target.prop is not None:
                raise StaBadRequestError("$ref follows an entity or a collection")
            target.value = target.value or seg.name == "$value"
            target.ref = target.ref or seg.name == "$ref"
            continue
        if target.prop is not None:
            raise StaBadRequestError(f"{target.prop} has no sub-resources")
        if not target.single:
            raise StaBadRequestError(f"{seg.name} must follow a single entity, e.g. {entity.set_name}(1)/{seg.name}")
        nav = target.entity.nav(seg.name)
        if nav is None:
            if target.entity.prop(seg.name) is not None and seg.id is None:
                target.prop = seg.name
                continue
            raise StaNotFoundError(f"{target.entity.name} has no property or navigation {seg.name!r}")
        assert target.entity_id is not None
        parent_entity, parent_id = target.entity, target.entity_id
        child = BY_NAME[nav.target]
        if not nav.many:
            row = conn.execute(
                text(f"SELECT {nav.local_fk} FROM {parent_entity.table} WHERE id = :id"), {"id": parent_id}
            ).first()
            child_id = row[0] if row else None
            if child_id is None or (seg.id is not None and seg.id != child_id):
                raise StaNotFoundError(f"{parent_entity.name} {parent_id} has no {seg.name}")
            target = Target(child, ["t.id = :id0"], {"id0": child_id}, single=True, entity_id=child_id)
            continue
        key = f"id{n}"
        cond = _membership(nav, f":{key}")
        if seg.id is not None:
            found = conn.execute(
                text(f"SELECT 1 FROM {child.table} t WHERE t.id = :cid AND {cond}"), {"cid": seg.id, key: parent_id}
            ).first()
            if not found:
                raise StaNotFoundError(
                    f"{child.name} {seg.id} is not one of {parent_entity.name} {parent_id}'s {seg.name}"
                )
            target = Target(child, ["t.id = :id0"], {"id0": seg.id}, single=True, entity_id=seg.id)
        else:
            target = Target(child, [cond], {key: parent_id}, parent=(parent_entity, nav, parent_id))
    return target


# -- rendering --------------------------------------------------------------------------------------


def iso(t: dt.datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC with ``Z``."""
    if t is None:
        return None
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _interval(start: dt.datetime | None, end: dt.datetime | None, *, instant_if_equal: bool) -> str | None:
    if start is None:
        return None
    if end is None or (instant_if_equal and end == start):
        return iso(start) if instant_if_equal else f"{iso(start)}/{iso(start)}"
    return f"{iso(start)}/{iso(end)}"


def _columns(entity: EntityType) -> list[str]:
    cols = ["t.id"]
    for p in entity.props:
        cols.append(f"t.{p.column}")
        if p.end_column:
            cols.append(f"t.{p.end_column}")
    for nav in entity.navs:
        if nav.local_fk:
            cols.append(f"t.{nav.local_fk}")
    return cols


def _render_value(prop: Prop, row: dict[str, Any], entity: EntityType) -> Any:
    if prop.kind == "interval":
        return _interval(row[prop.column], row[prop.end_column or ""], instant_if_equal=entity.name == "Observation")
    if prop.kind == "time":
        return iso(row[prop.column])
    return row[prop.column]


_OPTIONAL = {"properties", "phenomenonTime", "resultTime", "resultQuality", "validTime", "parameters"}
_ALWAYS = {("Observation", "resultTime"), ("Observation", "phenomenonTime")}


@dataclass
class Renderer:
    """Turns rows into SensorThings JSON; ``base`` is the service root URL (``…/sta/v1.1``)."""

    base: str

    def link(self, entity: EntityType, entity_id: int) -> str:
        """The self link of an entity."""
        return f"{self.base}/{entity.set_name}({entity_id})"

    def entity(self, entity: EntityType, row: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
        """One entity; with ``select`` only the named properties and navigation links."""
        wanted = set(select) if select else None
        out: dict[str, Any] = {}
        if wanted is None or "id" in wanted or "@iot.id" in wanted:
            out["@iot.id"] = row["id"]
        if wanted is None or "selfLink" in wanted or "@iot.selfLink" in wanted:
            out["@iot.selfLink"] = self.link(entity, row["id"])
        for prop in entity.props:
            if wanted is not None and prop.name not in wanted:
                continue
            value = _render_value(prop, row, entity)
            if value is None and prop.name in _OPTIONAL and (entity.name, prop.name) not in _ALWAYS and not wanted:
                continue
            out[prop.name] = value
        for nav in entity.navs:
            if wanted is None or nav.name in wanted:
                out[f"{nav.name}@iot.navigationLink"] = f"{self.link(entity, row['id'])}/{nav.name}"
        return out


# -- reading ----------------------------------------------------------------------------------------


def _order_sql(compiler: Compiler, opts: Options) -> str:
    terms = [compiler.order_term(o) for o in opts.orderby]
    terms.append("t.id ASC")
    return ", ".join(terms)


def _where(compiler: Compiler, base: list[str], opts: Options) -> str:
    conds = list(base)
    if opts.filter:
        conds.append(compiler.condition(parse_filter(opts.filter)))
    return " AND ".join(conds) if conds else "TRUE"


def read_collection(
    conn: Connection,
    target: Target,
    opts: Options,
    renderer: Renderer,
    *,
    request_url: str,
    query: dict[str, str],
) -> dict[str, Any]:
    """A collection response: ``value``, ``@iot.count`` with ``$count=true``, ``@iot.nextLink`` when more."""
    entity = target.entity
    params = Params(dict(target.params))
    compiler = Compiler(entity, "t", params)
    where = _where(compiler, target.where, opts)
    order = _order_sql(compiler, opts)
    top = opts.top or 0
    cols = "t.id" if target.ref else ", ".join(_columns(entity))
    sql = f"SELECT {cols} FROM {entity.table} t WHERE {where} ORDER BY {order} LIMIT {top + 1} OFFSET {opts.skip}"
    rows = [dict(r) for r in conn.execute(text(sql), params.values).mappings()]
    more = top > 0 and len(rows) > top
    rows = rows[:top]
    out: dict[str, Any] = {}
    if opts.count:
        total = conn.execute(text(f"SELECT count(*) FROM {entity.table} t WHERE {where}"), params.values).scalar_one()
        out["@iot.count"] = int(total)
    if more:
        nxt = dict(query)
        nxt["$skip"] = str(opts.skip + top)
        nxt["$top"] = str(top)
        out["@iot.nextLink"] = request_url + "?" + "&".join(f"{k}={quote(v, safe='$(),/:')}" for k, v in nxt.items())
    if target.ref:
        out["value"] = [{"@iot.selfLink": renderer.link(entity, r["id"])} for r in rows]
        return out
    out["value"] = render_rows(conn, entity, rows, opts, renderer)
    return out


def read_entity(conn: Connection, target: Target, opts: Options, renderer: Renderer) -> Any:
    """A single entity (or one property, ``$value`` or ``$ref`` of it)."""
    entity = target.entity
    row = (
        conn.execute(
            text(f"SELECT {', '.join(_columns(entity))} FROM {entity.table} t WHERE {' AND '.join(target.where)}"),
            target.params,
        )
        .mappings()
        .first()
    )
    if row is None:
        raise StaNotFoundError(f"{entity.name} not found")
    if target.ref:
        return {"@iot.selfLink": renderer.link(entity, row["id"])}
    if target.prop is not None:
        prop = entity.prop(target.prop)
        assert prop is not None
        value = row["id"] if prop.kind == "id" else _render_value(prop, dict(row), entity)
        return value if target.value else {target.prop: value}
    return render_rows(conn, entity, [dict(row)], opts, renderer)[0]


def render_rows(
    conn: Connection, entity: EntityType, rows: list[dict[str, Any]], opts: Options, renderer: Renderer
) -> list[dict[str, Any]]:
    """Render rows with ``$select`` and attach their ``$expand`` items (one query per expanded navigation)."""
    select = opts.select
    if select:
        for name in select:
            if entity.prop(name) is None and entity.nav(name) is None and name not in ("selfLink", "@iot.selfLink"):
                raise StaBadRequestError(f"$select: {entity.name} has no property {name!r}")
    out = [renderer.entity(entity, r, select) for r in rows]
    for nav_name, sub in opts.expand.items():
        nav = entity.nav(nav_name)
        if nav is None:
            raise StaBadRequestError(f"$expand: {entity.name} has no navigation property {nav_name!r}")
        _expand(conn, entity, nav, rows, out, sub, renderer)
    return out


def _expand(
    conn: Connection,
    entity: EntityType,
    nav: Nav,
    rows: list[dict[str, Any]],
    out: list[dict[str, Any]],
    opts: Options,
    renderer: Renderer,
) -> None:
    if not rows:
        return
    child = BY_NAME[nav.target]
    params = Params()
    compiler = Compiler(child, "t", params)
    filt = compiler.condition(parse_filter(opts.filter)) if opts.filter else "TRUE"
    order = _order_sql(compiler, opts)
    cols = ", ".join(_columns(child))
    if not nav.many:
        ids = sorted({r[nav.local_fk or ""] for r in rows if r.get(nav.local_fk or "") is not None})
        ph = params.add(ids)
        found = conn.execute(
            text(f"SELECT {cols} FROM {child.table} t WHERE t.id = ANY({ph}) AND {filt}"), params.values
        ).mappings()
        by_id = {r["id"]: dict(r) for r in found}
        for row, rendered in zip(rows, out, strict=True):
            hit = by_id.get(row.get(nav.local_fk or ""))
            rendered.pop(f"{nav.name}@iot.navigationLink", None)
            if hit is not None:
                rendered[nav.name] = render_rows(conn, child, [hit], opts, renderer)[0]
        return
    ids = [r["id"] for r in rows]
    ph = params.add(ids)
    if nav.remote_fk:
        source = f"{child.table} t"
        parent_col = f"t.{nav.remote_fk}"
        cond = f"t.{nav.remote_fk} = ANY({ph})"
    else:
        assert nav.link is not None
        table, mine, theirs = nav.link
        source = f"{table} l JOIN {child.table} t ON t.id = l.{theirs}"
        parent_col = f"l.{mine}"
        cond = f"l.{mine} = ANY({ph})"
    top = opts.top or 0
    sql = f"""
        SELECT * FROM (
            SELECT {cols}, {parent_col} AS _parent,
                   row_number() OVER (PARTITION BY {parent_col} ORDER BY {order}) AS _n,
                   count(*) OVER (PARTITION BY {parent_col}) AS _total
            FROM {source} WHERE {cond} AND {filt}
        ) s WHERE _n > {opts.skip} AND _n <= {opts.skip + top} ORDER BY _parent, _n
    """
    grouped: dict[int, list[dict[str, Any]]] = {}
    totals: dict[int, int] = {}
    for r in conn.execute(text(sql), params.values).mappings():
        d = dict(r)
        grouped.setdefault(d["_parent"], []).append(d)
        totals[d["_parent"]] = int(d["_total"])
    for row, rendered in zip(rows, out, strict=True):
        children = grouped.get(row["id"], [])
        rendered.pop(f"{nav.name}@iot.navigationLink", None)
        rendered[nav.name] = render_rows(conn, child, children, opts, renderer)
        total = totals.get(row["id"], 0)
        if opts.count:
            rendered[f"{nav.name}@iot.count"] = total
        if total > opts.skip + top:
            rendered[f"{nav.name}@iot.nextLink"] = (
                f"{renderer.link(entity, row['id'])}/{nav.name}?$top={top}&$skip={opts.skip + top}"
            )


# -- writing ----------------------------------------------------------------------------------------


def parse_time(value: Any, what: str) -> dt.datetime:
    """An ISO 8601 instant (``Z`` or offset; naive means UTC)."""
    if not isinstance(value, str):
        raise StaBadRequestError(f"{what} must be an ISO 8601 time string")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise StaBadRequestError(f"{what} {value!r} is not an ISO 8601 time") from exc
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_interval(value: Any, what: str) -> tuple[dt.datetime, dt.datetime | None]:
    """An instant or ``start/end`` interval."""
    if isinstance(value, str) and "/" in value:
        a, b = value.split("/", 1)
        start, end = parse_time(a, what), parse_time(b, what)
        if end < start:
            raise StaBadRequestError(f"{what}: the interval ends before it starts")
        return start, end
    return parse_time(value, what), None


_INF = float("inf")
_RESULT_CHECKS: dict[str, Any] = {
    "number": lambda r: isinstance(r, int | float) and not isinstance(r, bool),
    "integer": lambda r: isinstance(r, int) and not isinstance(r, bool),
    "boolean": lambda r: isinstance(r, bool),
    "string": lambda r: isinstance(r, str),
    "object": lambda r: isinstance(r, dict | list),
    "any": lambda r: True,
}


def check_result(observation_type: str, result: Any) -> float | None:
    """Refuse a result of the wrong JSON type for the datastream; return its numeric value (or None)."""
    kind = type(result)
    if kind is float or kind is int:  # the common case: a measurement
        expected = OBSERVATION_TYPES.get(observation_type, "any")
        if (expected in ("number", "any") or (expected == "integer" and kind is int)) and abs(result) < _INF:
            return float(result)
    expected = OBSERVATION_TYPES.get(observation_type, "any")
    is_number = isinstance(result, int | float) and not isinstance(result, bool)
    if not _RESULT_CHECKS[expected](result) or (is_number and not abs(result) < _INF):  # NaN, ±∞: no measurement
        raise StaBadRequestError(
            f"result {json.dumps(result)[:60]} is not a {expected} as the datastream's observationType "
            f"{observation_type.rsplit('/', 1)[-1]} requires"
        )
    return float(result) if is_number else None


def _scalar(prop: Prop, value: Any, what: str, *, nullable: bool) -> Any:
    """The SQL value of a time or text property (``what`` names it in errors; a time may be cleared with
    null when ``nullable``)."""
    if prop.kind == "time":
        return None if value is None and nullable else parse_time(value, what)
    if not isinstance(value, str):
        raise StaBadRequestError(f"{what} must be a string")
    return value


def _geometry_sql(geojson: Any, what: str) -> str:
    if not isinstance(geojson, dict) or "type" not in geojson:
        raise StaBadRequestError(f"{what} must be a GeoJSON geometry or feature")
    return json.dumps(geojson["geometry"] if geojson.get("type") == "Feature" else geojson)


@dataclass
class Writer:
    """Creates, updates and deletes entities inside one transaction (``conn``)."""

    conn: Connection
    created_observations: list[tuple[int, NewObservation]] = field(default_factory=list)

    def create(
        self,
        entity: EntityType,
        body: Any,
        parent: tuple[EntityType, Nav, int] | None = None,
        *,
        parent_is_post_target: bool = False,
    ) -> int:
        """Create ``entity`` from ``body`` (deep insert and ``@iot.id`` links included); return its id."""
        if not isinstance(body, dict):
            raise StaBadRequestError(f"the body of a {entity.name} must be a JSON object")
        if "@iot.id" in body:  # a reference to a stored entity (clients may send its other properties along)
            return self._link_existing(entity, body["@iot.id"])
        if entity.name == "Observation":
            return self._create_observation(body, parent)
        values: dict[str, Any] = {}
        for key in body:
            if key.startswith("@iot.") or key.endswith("@iot.navigationLink"):
                continue
            if entity.prop(key) is None and entity.nav(key) is None:
                raise StaBadRequestError(f"{entity.name} has no property {key!r}")
        for prop in entity.props:
            if prop.name in body:
                if not prop.writable:
                    continue
                values[prop.name] = body[prop.name]
            elif prop.required and not (entity.name == "HistoricalLocation" and prop.name == "time"):
                if entity.name == "Location" and prop.name in ("location", "encodingType") and self._cim_link(body):
                    continue
                raise StaBadRequestError(f"a {entity.name} needs {prop.name!r}")
        local: dict[str, int] = {}
        for nav in entity.navs:
            if nav.local_fk and nav.name in body:
                local[nav.local_fk] = self.create(BY_NAME[nav.target], body[nav.name])
        if parent is not None:
            p_entity, p_nav, p_id = parent
            reverse = _reverse_nav(p_entity, p_nav)
            if reverse is not None and reverse.local_fk:
                local[reverse.local_fk] = p_id
        for name in entity.required_navs:
            required = entity.nav(name)
            assert required is not None and required.local_fk
            if required.local_fk not in local:
                raise StaBadRequestError(f'a {entity.name} needs its {name} (inline or as {{"@iot.id": …}})')
        new_id = self._insert(entity, values, local)
        if parent is not None:
            p_entity, p_nav, p_id = parent
            if p_nav.link:
                self._link(p_nav, p_id, new_id)
        for nav in entity.navs:
            if nav.many and nav.name in body:
                items = body[nav.name]
                if not isinstance(items, list):
                    raise StaBadRequestError(f"{entity.name}.{nav.name} must be a JSON array")
                for item in items:
                    child_id = self.create(BY_NAME[nav.target], item, parent=(entity, nav, new_id))
                    if nav.link and isinstance(item, dict) and "@iot.id" in item:
                        self._link(nav, new_id, child_id)
                    elif nav.remote_fk and isinstance(item, dict) and "@iot.id" in item:
                        self.conn.execute(
                            text(f"UPDATE {BY_NAME[nav.target].table} SET {nav.remote_fk} = :p WHERE id = :c"),
                            {"p": new_id, "c": child_id},
                        )
        if entity.name == "Thing":
            self._thing_created(new_id, body)
            if body.get("Locations") or self._cim_link(body):
                self._historical_location(new_id)
        is_thing_location = entity.name == "Location" and parent is not None and parent[0].name == "Thing"
        if is_thing_location and parent_is_post_target and parent is not None:
            self._historical_location(parent[2])
        return new_id

    # -- helpers --

    @staticmethod
    def _cim_link(body: dict[str, Any]) -> bool:
        props = body.get("properties") or {}
        return isinstance(props, dict) and (CIM_BUILDING in props or CIM_FACILITY in props)

    def _link_existing(self, entity: EntityType, entity_id: Any) -> int:
        if not isinstance(entity_id, int) or isinstance(entity_id, bool):
            raise StaBadRequestError(f"@iot.id of a {entity.name} must be an integer")
        if not _exists(self.conn, entity, entity_id):
            raise StaBadRequestError(f"{entity.name} {entity_id} does not exist")
        return entity_id

    def _link(self, nav: Nav, mine: int, theirs: int) -> None:
        assert nav.link is not None
        table, mine_col, theirs_col = nav.link
        self.conn.execute(
            text(f"INSERT INTO {table} ({mine_col}, {theirs_col}) VALUES (:a, :b) ON CONFLICT DO NOTHING"),
            {"a": mine, "b": theirs},
        )

    def _historical_location(self, thing_id: int) -> None:
        hl = self.conn.execute(
            text("INSERT INTO sta_historical_location (thing_id, time) VALUES (:t, now()) RETURNING id"),
            {"t": thing_id},
        ).scalar_one()
        self.conn.execute(
            text(
                "INSERT INTO sta_historical_location_location (historical_location_id, location_id) "
                "SELECT :h, location_id FROM sta_thing_location WHERE thing_id = :t"
            ),
            {"h": hl, "t": thing_id},
        )

    def _insert(self, entity: EntityType, values: dict[str, Any], local: dict[str, int]) -> int:
        cols: list[str] = []
        exprs: list[str] = []
        params: dict[str, Any] = {}
        for name, value in values.items():
            prop = entity.prop(name)
            assert prop is not None
            key = f"v{len(params)}"
            cols.append(prop.column)
            if prop.kind in ("json", "geojson"):
                if prop.name == "properties" and value is not None and not isinstance(value, dict):
                    raise StaBadRequestError(f"{entity.name}.properties must be a JSON object")
                params[key] = json.dumps(value)
                exprs.append(f"CAST(:{key} AS jsonb)")
                if prop.kind == "geojson":
                    gkey = f"g{len(params)}"
                    params[gkey] = _geometry_sql(value, f"{entity.name}.{name}")
                    cols.append(prop.geom_column or "")
                    exprs.append(f"ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:{gkey})), {crs.CGCS2000})")
            else:
                params[key] = _scalar(prop, value, f"{entity.name}.{name}", nullable=False)
                exprs.append(f":{key}")
        retention = (values.get("properties") or {}).get(RETENTION) if entity.name == "Datastream" else None
        if retention is not None:
            if not isinstance(retention, int) or isinstance(retention, bool) or retention <= 0:
                raise StaBadRequestError(f"properties[{RETENTION!r}] must be a positive number of days")
            local = {**local, "retention_days": retention}
        for col, fk in local.items():
            cols.append(col)
            key = f"v{len(params)}"
            params[key] = fk
            exprs.append(f":{key}")
        if entity.name == "Datastream" and not isinstance(values.get("unitOfMeasurement", {}), dict):
            raise StaBadRequestError("Datastream.unitOfMeasurement must be an object (name, symbol, definition)")
        sql = (
            f"INSERT INTO {entity.table} ({', '.join(cols)}) VALUES ({', '.join(exprs)}) RETURNING id"
            if cols
            else f"INSERT INTO {entity.table} DEFAULT VALUES RETURNING id"
        )
        try:
            with self.conn.begin_nested():
                return int(self.conn.execute(text(sql), params).scalar_one())
        except Exception as exc:
            orig = getattr(exc, "orig", None)
            state = getattr(orig, "sqlstate", "") or ""
            if state.startswith("22") or state.startswith("XX") or "GeoJSON" in str(exc) or state == "23514":
                raise StaBadRequestError(f"invalid {entity.name}: {str(orig or exc).splitlines()[0]}") from exc
            raise

    def _thing_created(self, thing_id: int, body: dict[str, Any]) -> None:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            return
        building, facility = props.get(CIM_BUILDING), props.get(CIM_FACILITY)
        if building is None and facility is None:
            return
        if building is not None:
            sql = "SELECT name, ST_AsGeoJSON(footprint, 9) FROM building WHERE id = :i AND valid_to IS NULL"
            fid, col = building, "building_id"
        else:
            sql = "SELECT COALESCE(name, kind), ST_AsGeoJSON(geom, 9) FROM facility WHERE id = :i AND valid_to IS NULL"
            fid, col = facility, "facility_id"
        if not isinstance(fid, int) or isinstance(fid, bool):
            raise StaBadRequestError(f"properties[{CIM_BUILDING!r}/{CIM_FACILITY!r}] must be an integer id")
        row = self.conn.execute(text(sql), {"i": fid}).first()
        if row is None:
            raise StaBadRequestError(f"{col.removesuffix('_id')} {fid} does not exist (or was superseded)")
        self.conn.execute(text(f"UPDATE sta_thing SET {col} = :f WHERE id = :t"), {"f": fid, "t": thing_id})
        if "Locations" not in body:
            loc = self._insert(
                BY_NAME["Location"],
                {
                    "name": row[0] or f"{col.removesuffix('_id')} {fid}",
                    "description": f"geometry of CIM {col.removesuffix('_id')} {fid} (CGCS2000, EPSG:4490)",
                    "encodingType": "application/geo+json",
                    "location": json.loads(row[1]),
                },
                {},
            )
            nav = BY_NAME["Thing"].nav("Locations")
            assert nav is not None
            self._link(nav, thing_id, loc)

    def _create_observation(self, body: dict[str, Any], parent: tuple[EntityType, Nav, int] | None) -> int:
        datastream_id = None
        if parent is not None and parent[0].name == "Datastream":
            datastream_id = parent[2]
        ds = body.get("Datastream")
        if datastream_id is None and isinstance(ds, dict):
            if "@iot.id" not in ds:
                raise StaBadRequestError('an Observation links its Datastream by {"@iot.id": …}')
            datastream_id = self._link_existing(BY_NAME["Datastream"], ds["@iot.id"])
        if datastream_id is None:
            raise StaBadRequestError("an Observation needs its Datastream")
        foi_id = None
        if parent is not None and parent[0].name == "FeatureOfInterest":
            foi_id = parent[2]
        if "FeatureOfInterest" in body:
            foi_id = self.create(BY_NAME["FeatureOfInterest"], body["FeatureOfInterest"])
        obs = observation_from_json(self.conn, body, datastream_id, foi_id, DatastreamCache(self.conn))
        new_id = insert_observations(self.conn, [obs])[0]
        alarms.evaluate(self.conn, [new_id])
        if new_id is None:
            raise StaConflictError(
                f"Datastream {datastream_id} already has an observation at {iso(obs.phenomenon_time)}"
            )
        self.created_observations.append((new_id, obs))
        return new_id

    # -- update and delete --

    def update(self, entity: EntityType, entity_id: int, body: Any, *, replace: bool = False) -> None:
        """PATCH (merge) or PUT (replace) ``entity_id`` with ``body``."""
        if not isinstance(body, dict):
            raise StaBadRequestError("the body must be a JSON object")
        if "@iot.id" in body and body["@iot.id"] != entity_id:
            raise StaBadRequestError("@iot.id cannot be changed")
        sets: list[str] = []
        params: dict[str, Any] = {"id": entity_id}
        for key, value in body.items():
            if key.startswith("@iot."):
                continue
            prop, nav = entity.prop(key), entity.nav(key)
            if prop is None and nav is None:
                raise StaBadRequestError(f"{entity.name} has no property {key!r}")
            if prop is not None:
                if not prop.writable:
                    raise StaBadRequestError(f"{entity.name}.{key} is computed by the service")
                k = f"v{len(params)}"
                if entity.name == "Observation" and key == "result":
                    ds_type = self.conn.execute(
                        text(
                            "SELECT d.observation_type FROM sta_observation o JOIN sta_datastream d "
                            "ON d.id = o.datastream_id WHERE o.id = :id"
                        ),
                        {"id": entity_id},
                    ).scalar_one()
                    params[k + "n"] = check_result(ds_type, value)
                    sets.append(f"result_number = :{k}n")
                if prop.kind in ("json", "geojson", "result"):
                    params[k] = json.dumps(value)
                    sets.append(f"{prop.column} = CAST(:{k} AS jsonb)")
                    if prop.kind == "geojson":
                        params[k + "g"] = _geometry_sql(value, key)
                        sets.append(
                            f"{prop.geom_column} = ST_SetSRID(ST_Force2D(ST_GeomFromGeoJSON(:{k}g)), {crs.CGCS2000})"
                        )
                elif prop.kind == "interval":
                    start, end = parse_interval(value, key)
                    if entity.name == "Observation" and prop.name == "phenomenonTime":
                        raise StaBadRequestError("the phenomenonTime of a stored observation cannot be changed")
                    params[k], params[k + "e"] = start, end
                    sets += [f"{prop.column} = :{k}", f"{prop.end_column} = :{k}e"]
                else:
                    params[k] = _scalar(prop, value, f"{entity.name}.{key}", nullable=True)
                    sets.append(f"{prop.column} = :{k}")
            elif nav is not None and not nav.many:
                child = self.create(BY_NAME[nav.target], value)
                k = f"v{len(params)}"
                params[k] = child
                sets.append(f"{nav.local_fk} = :{k}")
            elif nav is not None and nav.link:
                if not isinstance(value, list):
                    raise StaBadRequestError(f"{entity.name}.{key} must be a JSON array")
                table, mine, _theirs = nav.link
                self.conn.execute(text(f"DELETE FROM {table} WHERE {mine} = :id"), {"id": entity_id})
                for item in value:
                    self._link(nav, entity_id, self.create(BY_NAME[nav.target], item))
                if entity.name == "Thing":
                    self._historical_location(entity_id)
        if replace:
            for prop in entity.props:
                if prop.required and prop.writable and prop.name not in body:
                    raise StaBadRequestError(f"PUT replaces the whole {entity.name}: {prop.name!r} is missing")
        if sets:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(text(f"UPDATE {entity.table} SET {', '.join(sets)} WHERE id = :id"), params)
            except Exception as exc:
                orig = getattr(exc, "orig", None)
                if (getattr(orig, "sqlstate", "") or "").startswith(("22", "XX")):
                    raise StaBadRequestError(f"invalid {entity.name}: {str(orig).splitlines()[0]}") from exc
                raise

    def delete(self, entity: EntityType, entity_id: int) -> None:
        """Delete an entity; the standard's integrity rules cascade (a Thing takes its Datastreams along)."""
        if entity.name == "Location":
            self.conn.execute(
                text(
                    "DELETE FROM sta_historical_location h WHERE h.id IN (SELECT historical_location_id FROM "
                    "sta_historical_location_location WHERE location_id = :id) AND NOT EXISTS (SELECT 1 FROM "
                    "sta_historical_location_location x WHERE x.historical_location_id = h.id "
                    "AND x.location_id <> :id)"
                ),
                {"id": entity_id},
            )
        if entity.name == "Observation":
            self.conn.execute(
                text("DELETE FROM sta_latest WHERE observation_id = :id"),
                {"id": entity_id},
            )
        self.conn.execute(text(f"DELETE FROM {entity.table} WHERE id = :id"), {"id": entity_id})


def _reverse_nav(parent: EntityType, nav: Nav) -> Nav | None:
    """The navigation of the child that points back at ``parent`` through ``nav``'s foreign key."""
    child = BY_NAME[nav.target]
    if nav.remote_fk:
        return next((n for n in child.navs if n.local_fk == nav.remote_fk), None)
    return None


# -- observations (shared by HTTP, Data Array and MQTT) ---------------------------------------------


@dataclass(slots=True)
class DatastreamInfo:
    """What checking an observation needs to know about its datastream."""

    observation_type: str
    thing_id: int
    default_foi: int | None


class DatastreamCache:
    """Per-batch facts of datastreams and features of interest, loaded and locked once per batch.

    Looking a datastream up locks it until the transaction ends (:func:`cim.db.sensing.lock_datastreams`),
    and features of interest are checked and locked the same way: the observations table has no foreign
    keys, so these locks give their guarantee (no observation of a deleted datastream) at one query a batch.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._info: dict[int, DatastreamInfo | None] = {}
        self._features: dict[int, bool] = {}

    def prefetch(self, datastream_ids: set[int], feature_ids: set[int] | None = None) -> None:
        """Load and lock many datastreams (unknown ids are remembered as missing), their derived features
        of interest and ``feature_ids``."""
        info = self._info
        wanted = [i for i in datastream_ids if i not in info]
        fois = set(feature_ids or ())
        if wanted:
            info.update(dict.fromkeys(wanted))
            for ds_id, obs_type, thing_id, foi in lock_datastreams(self.conn, wanted):
                info[ds_id] = DatastreamInfo(obs_type, thing_id, foi)
                if foi is not None:
                    fois.add(foi)
        check = [f for f in fois if f not in self._features]
        if check:
            found = existing_features(self.conn, check)
            for f in check:
                self._features[f] = f in found
        features = self._features
        for known in info.values():
            if known is not None and known.default_foi is not None and not features[known.default_foi]:
                known.default_foi = None  # deleted meanwhile: derived again on use

    def info(self, datastream_id: int) -> DatastreamInfo:
        """Facts of ``datastream_id``; :class:`StaBadRequestError` when it does not exist."""
        info = self._info.get(datastream_id, False)
        if info is False:
            self.prefetch({datastream_id})
            info = self._info[datastream_id]
        if info is None:
            raise StaBadRequestError(f"Datastream {datastream_id} does not exist")
        assert isinstance(info, DatastreamInfo)
        return info

    def feature(self, feature_id: int) -> int:
        """``feature_id`` when that feature of interest exists (locked); :class:`StaBadRequestError` if not."""
        if feature_id not in self._features:
            self.prefetch(set(), {feature_id})
        if not self._features[feature_id]:
            raise StaBadRequestError(f"FeatureOfInterest {feature_id} does not exist")
        return feature_id

    def default_foi(self, datastream_id: int) -> int:
        """The feature of interest generated from the datastream's Thing's Location (created on first use)."""
        info = self.info(datastream_id)
        if info.default_foi is not None:
            return info.default_foi
        loc = self.conn.execute(
            text(
                "SELECT l.id, l.name, l.description, l.encoding_type, l.location FROM sta_thing_location tl "
                "JOIN sta_location l ON l.id = tl.location_id WHERE tl.thing_id = :t ORDER BY l.id LIMIT 1"
            ),
            {"t": info.thing_id},
        ).first()
        if loc is None:
            raise StaBadRequestError(
                "the Observation has no FeatureOfInterest and its Datastream's Thing has no Location to derive one"
            )
        row = self.conn.execute(
            text(
                """
                INSERT INTO sta_feature_of_interest (name, description, encoding_type, feature, geom, location_id)
                SELECT name, description, encoding_type, location, geom, id FROM sta_location WHERE id = :l
                ON CONFLICT (location_id) DO UPDATE SET location_id = excluded.location_id
                RETURNING id
                """
            ),
            {"l": loc[0]},
        ).scalar_one()
        info.default_foi = int(row)
        self._features[info.default_foi] = True  # inserted or updated here: locked by this transaction
        return info.default_foi


_OBSERVATION_KEYS = frozenset(
    [
        "phenomenonTime",
        "resultTime",
        "result",
        "resultQuality",
        "validTime",
        "parameters",
        "Datastream",
        "FeatureOfInterest",
    ]
)


def _phenomenon_time(when: Any, now: dt.datetime | None) -> tuple[dt.datetime, dt.datetime | None]:
    """An observation's phenomenon time: an instant, an interval, or (absent) now."""
    if when is None:
        return now or dt.datetime.now(dt.UTC), None
    if isinstance(when, str) and "/" not in when:
        return parse_time(when, "phenomenonTime"), None
    return parse_interval(when, "phenomenonTime")


def observation_from_json(
    conn: Connection,
    body: dict[str, Any],
    datastream_id: int,
    foi_id: int | None,
    cache: DatastreamCache,
    *,
    now: dt.datetime | None = None,
) -> NewObservation:
    """Check one observation's JSON against its datastream and turn it into a row to insert (no query when
    ``cache`` has the datastream and the feature of interest)."""
    if not _OBSERVATION_KEYS.issuperset(body):
        for key in body:
            if key not in _OBSERVATION_KEYS and not key.startswith("@iot."):
                raise StaBadRequestError(f"Observation has no property {key!r}")
    if "result" not in body:
        raise StaBadRequestError("an Observation needs a result")
    info = cache.info(datastream_id)
    result = body["result"]
    number = check_result(info.observation_type, result)
    start, end = _phenomenon_time(body.get("phenomenonTime"), now)
    result_time = parse_time(body["resultTime"], "resultTime") if body.get("resultTime") is not None else None
    vs = ve = None
    if body.get("validTime") is not None:
        vs, ve = parse_interval(body["validTime"], "validTime")
    params = body.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise StaBadRequestError("Observation.parameters must be a JSON object")
    return NewObservation(
        datastream_id,
        cache.feature(foi_id) if foi_id is not None else cache.default_foi(datastream_id),
        start,
        result,
        number,
        end,
        result_time,
        body.get("resultQuality"),
        vs,
        ve,
        params,
    )


_LEAN = frozenset({"phenomenonTime", "result", "FeatureOfInterest/id", "id"})
"""Data Array components read by :func:`_lean_rows` (the usual ``["phenomenonTime", "result"]``)."""


def _lean_rows(
    components: list[str], data: list[Any], ds_id: int, info: DatastreamInfo, cache: DatastreamCache
) -> Iterator[NewObservation | None]:
    """The rows of one Data Array block whose components are among :data:`_LEAN`, checked as
    :func:`observation_from_json` checks them (None for a row it would refuse), without building a JSON
    object per row."""
    at = {c: k for k, c in enumerate(components)}
    k_time, k_result, k_foi = at.get("phenomenonTime"), at["result"], at.get("FeatureOfInterest/id")
    width = len(components)
    default: int | None = None
    for item in data:
        if not isinstance(item, list) or len(item) != width:
            yield None
            continue
        foi = None if k_foi is None else item[k_foi]
        if foi is not None and type(foi) is not int:
            yield None
            continue
        result = item[k_result]
        try:
            number = check_result(info.observation_type, result)
            start, end = _phenomenon_time(None if k_time is None else item[k_time], None)
            if foi is not None:
                feature = cache.feature(foi)
            else:
                feature = default = default if default is not None else cache.default_foi(ds_id)
        except StaBadRequestError:
            yield None
            continue
        yield NewObservation(ds_id, feature, start, result, number, end)


_Blocks = list[tuple[Any, list[Any], list[Any]]]


def _data_array_blocks(body: Any) -> tuple[_Blocks, StaBadRequestError | None, Any]:
    """(datastream id, components, dataArray) of each well-formed block up to the first malformed one; the
    error of that one and its datastream id when it has one (raised once the blocks before it were read)."""
    if not isinstance(body, list):
        raise StaBadRequestError("CreateObservations takes a JSON array of {Datastream, components, dataArray}")
    blocks: _Blocks = []
    for block in body:
        if not isinstance(block, dict) or not isinstance(block.get("Datastream"), dict):
            return blocks, StaBadRequestError('each Data Array item needs a Datastream {"@iot.id": …}'), None
        ds_id = block["Datastream"].get("@iot.id")
        if not isinstance(ds_id, int):
            return blocks, StaBadRequestError("Datastream @iot.id must be an integer"), None
        components = block.get("components")
        data = block.get("dataArray")
        if not isinstance(components, list) or "result" not in components or not isinstance(data, list):
            return blocks, StaBadRequestError("a Data Array item needs components (with result) and dataArray"), ds_id
        if not _COMPONENTS.issuperset(components):
            unknown = set(components) - _COMPONENTS
            return blocks, StaBadRequestError(f"unknown Data Array components: {sorted(unknown)}"), ds_id
        blocks.append((ds_id, components, data))
    return blocks, None, None


_COMPONENTS = frozenset(
    ["id", "phenomenonTime", "resultTime", "result", "resultQuality", "validTime", "parameters", "FeatureOfInterest/id"]
)


def create_data_array(
    conn: Connection, body: Any, renderer: Renderer
) -> tuple[list[str], list[tuple[int, NewObservation]]]:
    """The Data Array extension's ``CreateObservations``: selfLinks (or ``"error"``) per row, and new ids.

    Rows already stored (same datastream and phenomenon time) answer with the stored observation's link,
    so a retried post is harmless.
    """
    blocks, malformed, malformed_ds = _data_array_blocks(body)
    cache = DatastreamCache(conn)
    features: set[int] = set()
    for _ds, components, data in blocks:
        if "FeatureOfInterest/id" in components:
            k = components.index("FeatureOfInterest/id")
            features |= {x[k] for x in data if isinstance(x, list) and len(x) > k and type(x[k]) is int}
    cache.prefetch({ds_id for ds_id, _c, _d in blocks if type(ds_id) is int}, features)
    results: list[str] = []
    rows: list[NewObservation] = []
    slots: list[int] = []
    for ds_id, components, data in blocks:
        info = cache.info(ds_id)
        if _LEAN.issuperset(components) and len(set(components)) == len(components):
            for row in _lean_rows(components, data, ds_id, info, cache):
                if row is None:
                    results.append("error")
                    continue
                rows.append(row)
                slots.append(len(results))
                results.append("")
            continue
        for item in data:
            if not isinstance(item, list) or len(item) != len(components):
                results.append("error")
                continue
            values = dict(zip(components, item, strict=True))
            foi = values.pop("FeatureOfInterest/id", None)
            values.pop("id", None)
            if foi is not None and type(foi) is not int:
                results.append("error")
                continue
            try:
                rows.append(observation_from_json(conn, values, ds_id, foi, cache))
            except StaBadRequestError:
                results.append("error")
                continue
            slots.append(len(results))
            results.append("")
    if malformed is not None:
        if malformed_ds is not None:
            cache.info(malformed_ds)  # an unknown datastream is reported first, as it always was
        raise malformed
    new_ids = insert_observations(conn, rows)
    alarms.evaluate(conn, new_ids)
    missing = [i for i, v in enumerate(new_ids) if v is None]
    existing = existing_observation_ids(conn, [(rows[i].datastream_id, rows[i].phenomenon_time) for i in missing])
    for i, oid in zip(missing, existing, strict=True):
        new_ids[i] = oid
    entity = BY_NAME["Observation"]
    for slot, oid in zip(slots, new_ids, strict=True):
        results[slot] = renderer.link(entity, oid) if oid is not None else "error"
    fresh = set(range(len(rows))) - set(missing)
    created = [(oid, rows[i]) for i, oid in enumerate(new_ids) if oid is not None and i in fresh]
    return results, created
