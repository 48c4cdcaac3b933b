"""HTTP adapter of the SensorThings API 1.1 service at ``/sta/v1.1`` (and the live sensor feed, alarms).

Writes need an API key whose role may write sensor data (``sensor`` or ``admin``), presented as
``X-API-Key``, ``Authorization: Bearer …`` or — what standard SensorThings clients send — as the password of
HTTP Basic authentication (any user name). Errors use the SensorThings/FROST shape
``{"code": 400, "type": "error", "message": …}`` plus the platform's ``title`` and ``detail``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from cim.api.errors import error_headers, status_for
from cim.api.security import ANONYMOUS, KeyVerifier, Principal, audit, presented_key
from cim.db import alarms as alarms_db
from cim.db.sensing import NewObservation, sensing_counts, sensor_overview_geojson
from cim.errors import AuthError, CimError, PermissionDeniedError
from cim.sensing import service
from cim.sensing.alarms import check_rule
from cim.sensing.entities import BY_SET, CONFORMANCE, EntityType
from cim.sensing.errors import StaBadRequestError, StaConflictError
from cim.sensing.query import parse_options
from cim.settings import Settings

PREFIX = "/sta/v1.1"
WRITE_ROLES = frozenset({"sensor", "admin"})
DEFAULT_TOP = 100
MAX_TOP = 10_000


def sta_error(status: int, message: str, retry_after: int | None = None) -> JSONResponse:
    """An error in the SensorThings (FROST) shape, with the platform's fields too."""
    title = HTTPStatus(status).phrase
    body = {"code": status, "type": "error", "message": message, "title": title, "detail": message}
    headers = error_headers(status, retry_after)  # Retry-After on 429 and 503
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="SensorThings", ApiKey header="X-API-Key"'
    return JSONResponse(body, status_code=status, headers=headers)


_STA_STATUS: dict[type[Exception], int] = {StaConflictError: 409, StaBadRequestError: 400}


def _status_of(exc: CimError) -> int:
    """The SensorThings errors' own codes, else the platform's table (:func:`cim.api.errors.status_for`: 401,
    403, 404, 429, and 503 when the database is not reachable)."""
    for cls in type(exc).__mro__:
        if cls in _STA_STATUS:
            return _STA_STATUS[cls]
    return status_for(exc)


def key_of(request: Request) -> str | None:
    """The API key in ``X-API-Key``, ``Bearer`` or as the password of HTTP ``Basic`` authentication."""
    key = presented_key(request)
    if key is not None:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("malformed HTTP Basic credentials") from exc
    _user, _, password = decoded.partition(":")
    return password or None


def sensor_writer(request: Request) -> Principal:
    """The principal of a caller that may write sensor data; refusals are audited like every other write."""
    action = f"{request.method} {request.url.path}"
    try:
        key = key_of(request)
        if key is None:
            raise AuthError("writing sensor data needs an API key (X-API-Key, Bearer, or HTTP Basic password)")
        verifier: KeyVerifier = request.app.state.key_verifier
        principal = verifier.verify(key)
    except AuthError as exc:
        audit(request, ANONYMOUS, action, "denied", detail={"reason": str(exc)})
        raise
    if principal.role not in WRITE_ROLES:
        audit(request, principal, action, "denied", detail={"reason": f"role {principal.role}"})
        raise PermissionDeniedError(f"role {principal.role!r} may not write sensor data; allowed: sensor, admin")
    return principal


def reader(request: Request) -> Principal:
    """Reads are open unless the deployment requires a key (then any valid key, Basic included)."""
    key = key_of(request)
    principal = ANONYMOUS if key is None else request.app.state.key_verifier.verify(key)
    if request.app.state.api_settings.reads_require_key and principal.key_id is None:
        raise AuthError("this deployment requires an API key for reads")
    return principal


def service_root(request: Request) -> str:
    """The absolute URL of ``/sta/v1.1`` as the client addressed it."""
    return str(request.base_url).rstrip("/") + PREFIX


def _query(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise StaBadRequestError("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StaBadRequestError(f"the body is not valid JSON: {exc}") from exc


def _notify(request: Request, created: list[tuple[int, NewObservation]]) -> None:
    runtime = getattr(request.app.state, "sensing", None)
    if runtime is not None and created:
        runtime.observations_created(created)


def _database_refusal(exc: DBAPIError) -> JSONResponse | None:
    """The SensorThings error for values the database refused (bad ranges, references); None otherwise."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None) or ""
    if state.startswith("23"):
        return sta_error(400, "the request refers to entities that do not exist or breaks a constraint")
    if state.startswith("22") or state in ("XX000", "42883"):
        return sta_error(400, "the request's values could not be evaluated (check ids, times, geometries)")
    return None


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapper(request: Request, path: str = "") -> Response:
        try:
            result: Response = await fn(request, path)
            return result
        except CimError as exc:
            return sta_error(_status_of(exc), str(exc), getattr(exc, "retry_after", None))
        except DBAPIError as exc:
            refusal = _database_refusal(exc)
            if refusal is None:
                raise
            return refusal

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


sta_router = APIRouter(prefix=PREFIX, tags=["SensorThings API 1.1"])
T = TypeVar("T")


async def _write(request: Request, work: Callable[[Connection, Any], T], *, body: bool = True) -> tuple[Principal, T]:
    """Check that the caller may write sensor data, read the JSON body (when ``body``), then run
    ``work(conn, body)`` in one transaction in the thread pool; the caller's principal and the result."""
    principal = await run_in_threadpool(sensor_writer, request)
    data = await _body(request) if body else None
    engine: Engine = request.app.state.engine

    def run() -> T:
        with engine.begin() as conn:
            return work(conn, data)

    return principal, await run_in_threadpool(run)


def _one_entity(conn: Connection, path: str, refusal: str) -> tuple[EntityType, int]:
    """The type and id of the single entity ``path`` addresses; :class:`StaBadRequestError` with ``refusal``
    otherwise."""
    target = service.resolve(conn, service.parse_path(path))
    if not target.single or target.entity_id is None or target.prop is not None:
        raise StaBadRequestError(refusal)
    return target.entity, target.entity_id


@sta_router.get("", summary="SensorThings service root")
@_guarded
async def root(request: Request, path: str = "") -> Response:
    """The entity sets and the server settings (conformance classes, MQTT endpoint)."""
    await run_in_threadpool(reader, request)
    base = service_root(request)
    settings: dict[str, Any] = {"conformance": list(CONFORMANCE)}
    runtime = getattr(request.app.state, "sensing", None)
    endpoint = runtime.mqtt_endpoint() if runtime is not None else None
    if endpoint:
        settings[
            "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation"
        ] = {"endpoints": [endpoint]}
        settings["http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"] = {
            "endpoints": [endpoint]
        }
    return JSONResponse({"value": [{"name": s, "url": f"{base}/{s}"} for s in BY_SET], "serverSettings": settings})


@sta_router.post(
    "/CreateObservations", summary="Data Array extension: many observations in one request", status_code=201
)
@_guarded
async def create_observations(request: Request, path: str = "") -> Response:
    """Create observations from Data Array blocks; answers one selfLink (or ``"error"``) per row."""
    renderer = service.Renderer(service_root(request))
    principal, (links, created) = await _write(
        request, lambda conn, body: service.create_data_array(conn, body, renderer)
    )
    await run_in_threadpool(
        audit, request, principal, "sta.create-observations", "ok", detail={"created": len(created)}
    )
    _notify(request, created)
    return JSONResponse(links, status_code=201)


@sta_router.get("/{path:path}", summary="Read entities, collections, properties, $value and $ref")
@_guarded
async def read(request: Request, path: str = "") -> Response:
    """GET any resource path with $filter, $expand, $select, $orderby, $top, $skip and $count."""
    await run_in_threadpool(reader, request)
    query = _query(request)
    opts = parse_options(query, default_top=DEFAULT_TOP, max_top=MAX_TOP)
    renderer = service.Renderer(service_root(request))
    engine: Engine = request.app.state.engine
    url = service_root(request) + "/" + path.strip("/")

    def work() -> Any:
        with engine.connect() as conn:
            target = service.resolve(conn, service.parse_path(path))
            if target.single:
                return target, service.read_entity(conn, target, opts, renderer)
            return target, service.read_collection(conn, target, opts, renderer, request_url=url, query=query)

    target, result = await run_in_threadpool(work)
    if target.value:
        if isinstance(result, dict | list):
            return JSONResponse(result)
        return PlainTextResponse("" if result is None else str(result))
    return JSONResponse(result)


@sta_router.post("/{path:path}", summary="Create an entity (deep insert, links by @iot.id)", status_code=201)
@_guarded
async def create(request: Request, path: str = "") -> Response:
    """POST to an entity set or a navigation collection (the new entity is linked to the parent)."""
    renderer = service.Renderer(service_root(request))

    def work(conn: Connection, body: Any) -> tuple[dict[str, Any], list[tuple[int, NewObservation]]]:
        target = service.resolve(conn, service.parse_path(path))
        if target.single or target.prop is not None or target.ref:
            raise StaBadRequestError("POST goes to a collection, e.g. /Things or /Datastreams(1)/Observations")
        writer = service.Writer(conn)
        new_id = writer.create(target.entity, body, parent=target.parent, parent_is_post_target=True)
        entity_target = service.Target(target.entity, ["t.id = :id0"], {"id0": new_id}, single=True, entity_id=new_id)
        opts = parse_options({}, default_top=DEFAULT_TOP, max_top=MAX_TOP)
        return service.read_entity(conn, entity_target, opts, renderer), writer.created_observations

    principal, (created, observations) = await _write(request, work)
    await run_in_threadpool(audit, request, principal, "sta.create", "ok", target=created["@iot.selfLink"])
    _notify(request, observations)
    return JSONResponse(created, status_code=201, headers={"Location": created["@iot.selfLink"]})


async def _update(request: Request, path: str, *, replace: bool) -> Response:
    def work(conn: Connection, body: Any) -> None:
        entity, entity_id = _one_entity(conn, path, "PATCH and PUT address one entity, e.g. /Things(1)")
        service.Writer(conn).update(entity, entity_id, body, replace=replace)

    principal, _ = await _write(request, work)
    await run_in_threadpool(audit, request, principal, "sta.update", "ok", target=path)
    return Response(status_code=200)


@sta_router.patch("/{path:path}", summary="Update an entity (merge)")
@_guarded
async def patch(request: Request, path: str = "") -> Response:
    """Merge the body's properties and links into the entity."""
    return await _update(request, path, replace=False)


@sta_router.put("/{path:path}", summary="Replace an entity")
@_guarded
async def put(request: Request, path: str = "") -> Response:
    """Replace the entity's properties (every mandatory one must be given)."""
    return await _update(request, path, replace=True)


@sta_router.delete("/{path:path}", summary="Delete an entity")
@_guarded
async def delete(request: Request, path: str = "") -> Response:
    """Delete one entity; dependent entities follow the standard's integrity rules."""

    def work(conn: Connection, _body: None) -> None:
        entity, entity_id = _one_entity(conn, path, "DELETE addresses one entity, e.g. /Things(1)")
        service.Writer(conn).delete(entity, entity_id)

    principal, _ = await _write(request, work, body=False)
    await run_in_threadpool(audit, request, principal, "sta.delete", "ok", target=path)
    return Response(status_code=200)


def attach_sensing(app: FastAPI, settings: Settings) -> None:
    """Give the app its sensing runtime (started and stopped by the app's lifespan)."""
    from cim.sensing.runtime import SensingRuntime, SensingSettings

    url = app.state.engine.url.render_as_string(hide_password=False)
    app.state.sensing = SensingRuntime(app.state.engine, settings, url, SensingSettings())


# -- live sensor layer, alarms ------------------------------------------------------------------------

live_router = APIRouter(tags=["Sensing: live layer and alarms"])


async def _read(request: Request, query: Callable[[Connection], T]) -> T:
    """Check that the caller may read, then run ``query`` on a connection in the thread pool."""
    await run_in_threadpool(reader, request)
    engine: Engine = request.app.state.engine

    def work() -> T:
        with engine.connect() as conn:
            return query(conn)

    return await run_in_threadpool(work)


@live_router.get("/sensors/latest", summary="Every datastream's latest value at its thing (GeoJSON)")
async def sensors_latest(request: Request) -> Response:
    """A GeoJSON FeatureCollection (lon/lat, EPSG:4490) with latest value, thresholds and status per datastream."""
    return Response(await _read(request, sensor_overview_geojson), media_type="application/geo+json")


@live_router.get(
    "/sensors/live",
    summary="Server-sent events: every stored observation, as it is stored",
    include_in_schema=False,  # an endless stream: documented in docs/sensing.md, not in the OpenAPI document
)
async def sensors_live(request: Request) -> Response:
    """``text/event-stream`` of ``observation`` events ``{d: datastream, o: observation, t, r, n}``."""
    await run_in_threadpool(reader, request)
    hub = request.app.state.sensing.live
    q = hub.subscribe()

    async def events() -> Any:
        try:
            yield "retry: 2000\n\n"
            idle = 0
            while not hub.stopped:
                try:
                    items = await asyncio.wait_for(q.get(), timeout=1.0)
                except TimeoutError:
                    idle += 1
                    if await request.is_disconnected():
                        return
                    if idle % 15 == 0:
                        yield ": keep-alive\n\n"
                    continue
                yield f"event: observation\ndata: {json.dumps(items, ensure_ascii=False, default=str)}\n\n"
        finally:
            hub.unsubscribe(q)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@live_router.get("/sensors/status", summary="MQTT subscriber state and counters")
async def sensors_status(request: Request) -> Response:
    """Whether MQTT runs, the broker endpoint, and received/stored/duplicate/rejected counts."""
    engine: Engine = request.app.state.engine

    def work() -> dict[str, int]:
        with engine.connect() as conn:
            return sensing_counts(conn)

    return JSONResponse({**request.app.state.sensing.status(), "counts": await run_in_threadpool(work)})


def _alarm_json(a: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    out["raised_at"] = service.iso(a["raised_at"])
    out["cleared_at"] = service.iso(a["cleared_at"])
    out["active"] = a["cleared_at"] is None
    return out


@live_router.get("/alarms", summary="Alarm events, newest first")
async def list_alarm_events(
    request: Request,
    active: bool = False,
    datastream: int | None = None,
    limit: int = Query(100, ge=1, le=10_000),
    offset: int = Query(0, ge=0),
) -> Response:
    """Alarm events (``active=true``: only those not cleared) with their thing and a point geometry."""
    alarms = await _read(
        request,
        lambda conn: alarms_db.list_alarms(
            conn, active_only=active, datastream_id=datastream, limit=limit, offset=offset
        ),
    )
    return JSONResponse({"alarms": [_alarm_json(a) for a in alarms]})


@live_router.get("/alarms/rules", summary="Alarm rules")
async def list_alarm_rules(request: Request) -> Response:
    """Every threshold rule."""
    rules = await _read(request, alarms_db.list_rules)
    return JSONResponse({"rules": [{**r, "created_at": service.iso(r["created_at"])} for r in rules]})


@live_router.post("/alarms/rules", summary="Create an alarm rule", status_code=201)
async def create_alarm_rule(request: Request) -> Response:
    """A rule on one datastream or every datastream of an observed property (sensor or admin key)."""
    try:
        principal = await run_in_threadpool(sensor_writer, request)
        values = check_rule(await _body(request))
        engine: Engine = request.app.state.engine

        def work() -> int:
            with engine.begin() as conn:
                return alarms_db.insert_rule(conn, values)

        rule_id = await run_in_threadpool(work)
    except CimError as exc:
        return sta_error(_status_of(exc), str(exc), getattr(exc, "retry_after", None))
    except DBAPIError as exc:
        return sta_error(400, f"invalid rule: {str(getattr(exc, 'orig', exc)).splitlines()[0]}")
    await run_in_threadpool(audit, request, principal, "alarms.rule.create", "ok", target=f"rule:{rule_id}")
    return JSONResponse({"id": rule_id, **values}, status_code=201)


@live_router.get("/alarms/waterlogging", summary="Live waterlogging points marked by manhole alarms (GeoJSON)")
async def waterlogging_points(request: Request) -> Response:
    """Active waterlogging points, each with the flood analysis seeded there (``seed=lon,lat``)."""
    points = await _read(request, alarms_db.active_waterlogging_points)
    features = [
        {
            "type": "Feature",
            "id": p["facility_id"],
            "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
            "properties": {
                "alarm_id": p["alarm_id"],
                "manhole_id": p["manhole_id"],
                "water_level": p["value"],
                "raised_at": service.iso(p["raised_at"]),
                "flood_seed": f"{p['lon']:.7f},{p['lat']:.7f}",
                "flood_analysis": f"/analysis/safety/flood?seed={p['lon']:.7f},{p['lat']:.7f}&level=",
                "flood_from_active_points": "/alarms/waterlogging/flood?level=",
            },
        }
        for p in points
    ]
    return JSONResponse({"type": "FeatureCollection", "features": features})


@live_router.get(
    "/alarms/waterlogging/flood",
    summary="Bathtub flood seeded from every active waterlogging point (GeoJSON)",
)
async def flood_from_waterlogging_points(
    request: Request,
    level: float | None = Query(default=None, gt=-1000, lt=10_000, description="Water level, metres (1985 datum)."),
    volume: float | None = Query(default=None, gt=0, description="Water volume, m³ (the level is solved for)."),
) -> Response:
    """The flood analysis (``cim.analysis.flood``) with ``seed=active-alarms``: water rises from the DEM cells
    of the manholes whose water-level alarms are raised (not stored: ``cim sensors flood`` stores a run). 422 when
    no point is active or none lies on the DEM."""
    from cim.analysis.flood import SEED_ACTIVE_ALARMS, run_flood

    await run_in_threadpool(reader, request)
    engine: Engine = request.app.state.engine

    def work() -> dict[str, Any]:
        report = run_flood(engine, level=level, volume=volume, seed=SEED_ACTIVE_ALARMS, store=False)
        return {
            **report.feature_collection(),
            "seeds": report.seeds,
            "volume_m3": report.volume_m3,
            "area_km2": report.flooded_area_km2,
        }

    return JSONResponse(await run_in_threadpool(work))


def register_alarm_collection() -> None:
    """Publish alarm events as the OGC API – Features collection ``sensor_alarms`` (idempotent)."""
    from cim.db.features import COLLECTIONS, FeatureCollectionDef
    from cim.db.models import SensorAlarm

    COLLECTIONS.setdefault(
        "sensor_alarms",
        FeatureCollectionDef(
            id="sensor_alarms",
            title="Sensor alarms",
            description="Alarm events of the IoT sensing rules (points at the sensor's thing, EPSG:4490).",
            model=SensorAlarm,
            geometry="geom",
            properties=(
                "rule_id",
                "datastream_id",
                "kind",
                "severity",
                "value",
                "threshold",
                "message",
                "details",
                "raised_at",
                "cleared_at",
                "facility_id",
            ),
            queryables=("rule_id", "datastream_id", "kind", "severity"),
            geometry_type="point",
        ),
    )


register_alarm_collection()

router = APIRouter()
router.include_router(sta_router)
router.include_router(live_router)
