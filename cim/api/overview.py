"""``/overview`` (cities and districts of everything stored) and ``/overview/history`` (dataset versions).

The viewer's start view fits ``bbox``; above :data:`OVERVIEW_ABOVE_M` it draws the district outlines and a
label per city with its counts instead of the 3D content. Answers carry an ETag built from the data stamp
(:func:`cim.db.onemap.data_stamp`), so a viewer revalidates cheaply; the city counts (a spatial join over
every building when rows carry no district code, seconds on a province) are computed once per stamp: the
answer is kept in the factory and in a disk cache under the data directory (``cache/overview``,
:class:`cim.onemap.cache.StampedCache`), so a restarted server's first call reads it instead of running
the join again, and concurrent first calls wait for one computation instead of each running it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from cim.api.dependencies import Reader
from cim.api.factory import ViewerFactory
from cim.db.onemap import data_extent, data_stamp, history_moments, overview_rows
from cim.onemap.admin import division_name
from cim.onemap.cache import StampedCache, app_cache

OVERVIEW_ABOVE_M = 60_000.0
"""Camera height (m above the ellipsoid) above which the viewer shows the overview instead of 3D content."""
CACHE_SECONDS = 60
DEFAULT_SIMPLIFY = 0.001
"""Default tolerance of the district outlines' simplification, degrees (the answer warmed at start-up)."""
OVERVIEW_CACHE_BYTES = 64 * 1024 * 1024
"""Bound of the disk cache of ``/overview`` answers (one per stamp and tolerance; a province's is ~100 kB)."""


def etag_matches(request: Request, etag: str) -> bool:
    """True when the request's If-None-Match names ``etag`` (weak or strong, or ``*``)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    return header.strip() == "*" or any(t.strip().removeprefix("W/") == etag for t in header.split(","))


def conditional_json(request: Request, body: dict[str, Any], etag: str) -> Response:
    """The JSON ``body`` with its ETag, or an empty 304 when the client already holds it."""
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    if etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    return Response(json_bytes(body), media_type="application/json", headers=headers)


def json_bytes(body: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of ``body`` (dates as their string)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def strong_etag(*parts: object) -> str:
    """A quoted strong ETag hashing ``parts``."""
    return '"' + hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:20] + '"'


def overview_document(rows: Any, bbox: tuple[float, float, float, float] | None) -> dict[str, Any]:
    """The ``/overview`` body from :func:`cim.db.onemap.overview_rows` and the data extent."""
    cities = []
    for c in rows.cities:
        zh, en = division_name(str(c["city_code"]), c["name"])
        cities.append(
            {
                "code": c["city_code"],
                "name": {"zh": zh, "en": en},
                "bbox": [round(float(c[k]), 6) for k in ("w", "s", "e", "n")],
                "center": [round(float(c["lon"]), 6), round(float(c["lat"]), 6)],
                "counts": c["counts"],
                "districts": list(c["codes"]),
            }
        )
    features = []
    for d in rows.districts:
        zh, en = division_name(str(d["code"]), d["name"])
        features.append(
            {
                "type": "Feature",
                "id": d["code"],
                "properties": {
                    "code": d["code"],
                    "name": zh,
                    "name_en": en,
                    "level": d["level"],
                    "city_code": d["city_code"],
                },
                "geometry": json.loads(d["geometry"]) if d["geometry"] else None,
            }
        )
    return {
        "bbox": [round(v, 6) for v in bbox] if bbox else None,
        "overview_above_m": OVERVIEW_ABOVE_M,
        "cities": cities,
        "districts": {"type": "FeatureCollection", "features": features},
    }


def overview_cache(state: Any) -> StampedCache:
    """The disk cache of ``/overview`` answers of the app whose state is ``state`` (under its data directory)."""
    return app_cache(state, "overview_cache", "overview", OVERVIEW_CACHE_BYTES)


@dataclass
class OverviewParams:
    """Query parameters of ``/overview``."""

    simplify: Annotated[
        float, Query(ge=0, le=0.1, description="Tolerance of the district outlines' simplification, degrees.")
    ] = DEFAULT_SIMPLIFY


@dataclass
class OverviewFactory(ViewerFactory):
    """The province overview and the history of dataset versions."""

    _cache: dict[tuple[str, float], bytes] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _computing: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def overview_bytes(self, state: Any, conn: Connection, stamp: str, simplify: float) -> bytes:
        """The ``/overview`` JSON of data stamp ``stamp``: from memory, else the disk cache, else computed.

        ``state``: the app's state (its data directory holds the disk cache). The route and the start-up
        warm-up (:mod:`cim.api.warmup`) both come here, so whoever is second waits and finds it cached.
        """
        key = (stamp, simplify)
        with self._lock:
            content = self._cache.get(key)
        if content is not None:
            return content
        disk = overview_cache(state)
        with self._computing:  # one computation at a time; who waited finds it cached
            with self._lock:
                content = self._cache.get(key)
            if content is None:
                content = disk.get(stamp, repr(simplify))
            if content is None:
                content = json_bytes(overview_document(overview_rows(conn, simplify), data_extent(conn)))
                disk.put(stamp, repr(simplify), content)
            with self._lock:
                if not any(k[0] == stamp for k in self._cache):
                    self._cache.clear()  # only the latest stamp is worth keeping
                self._cache[key] = content
        return content

    def register_routes(self) -> None:
        """``GET /overview``, ``GET /overview/history``."""

        @self.router.get(
            "/overview",
            name=self.route_name("overview"),
            summary="Cities and districts of everything stored, with extents and counts",
        )
        def get_overview(request: Request, params: Annotated[OverviewParams, Depends()], conn: Reader) -> Response:
            stamp = data_stamp(conn)
            etag = strong_etag("overview", stamp, params.simplify)
            if etag_matches(request, etag):
                return conditional_json(request, {}, etag)
            content = self.overview_bytes(request.app.state, conn, stamp, params.simplify)
            headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
            return Response(content, media_type="application/json", headers=headers)

        @self.router.get(
            "/overview/history",
            name=self.route_name("history"),
            summary="Moments at which datasets with history were loaded or superseded (for the time slider)",
        )
        def get_history(request: Request, conn: Reader) -> Response:
            stamp = data_stamp(conn)
            etag = strong_etag("history", stamp)
            versions = history_moments(conn)
            moments: dict[dt.datetime, list[dict[str, Any]]] = {}
            for v in versions:
                entry = {"id": v["id"], "name": v["name"], "layer": v["layer"], "version": v["version"]}
                moments.setdefault(v["created_at"], []).append({**entry, "event": "loaded"})
                if v["superseded_at"] is not None:
                    moments.setdefault(v["superseded_at"], []).append({**entry, "event": "superseded"})
            body = {
                "has_history": any(v["superseded_at"] is not None for v in versions),
                "moments": [{"at": at.isoformat(), "datasets": moments[at]} for at in sorted(moments)],
            }
            return conditional_json(request, body, etag)
