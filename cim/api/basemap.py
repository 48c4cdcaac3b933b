"""``/basemap``: the offline base map as XYZ PNG tiles drawn from the platform's own layers, and its TileJSON.

``/basemap/{z}/{x}/{y}.png`` (Web Mercator, 256 px) draws parcels by land use, green spaces, water, roads
and, from zoom 15, building footprints (:mod:`cim.onemap.basemap`); ``?at=`` draws the rows valid at that
moment (history), ``?layers=`` a subset. Tiles carry a strong ETag of the data stamp and the request, so a
revalidation costs one small query and answers 304. Rendered tiles are kept in a bounded disk cache under
the data directory (``cache/basemap``, :class:`cim.onemap.cache.StampedCache`) keyed by the data stamp,
the tile, the layers and the moment: a hit costs the stamp query and a file read instead of the shapes query
and the rasterisation (7–234 ms a tile on the 1,000,000-building province), and any data change (a new
stamp) leaves the old tiles unread and removes them. An empty tile is a transparent PNG, never a 404 (the
viewer's console stays clean where no data lies). ``/basemap`` is a TileJSON 3.0.0 document with the
legend of every class drawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from cim.api.dependencies import Reader
from cim.api.errors import BadRequestError
from cim.api.factory import ViewerFactory
from cim.api.overview import CACHE_SECONDS, etag_matches, strong_etag
from cim.db.onemap import basemap_shapes, data_extent, data_stamp
from cim.onemap.basemap import LAYERS, MAX_ZOOM, MIN_ZOOM, Tile, layers_at, legend, render_tile, tile_bounds
from cim.onemap.cache import StampedCache, app_cache

BASEMAP_CACHE_BYTES = 256 * 1024 * 1024
"""Bound of the disk cache of rendered base-map tiles (a zoom-15 tile of a dense city is 10–40 kB)."""


def tile_cache(state: Any) -> StampedCache:
    """The cache of rendered base-map tiles of the app whose state is ``state`` (under its data directory)."""
    return app_cache(state, "basemap_cache", "basemap", BASEMAP_CACHE_BYTES)


class CachedTile(NamedTuple):
    """A rendered base-map tile: the PNG, the number of shapes drawn and whether it came from the cache."""

    png: bytes
    shapes: int
    hit: bool


def cached_tile(
    cache: StampedCache,
    conn: Connection,
    stamp: str,
    tile: Tile,
    layers: tuple[str, ...],
    moment: dt.datetime | None = None,
) -> CachedTile:
    """Tile ``tile`` of data stamp ``stamp`` drawing ``layers`` (those valid at its zoom) at ``moment``.

    From ``cache`` when it holds it, else rendered from the shapes in the database and stored there. The
    tile route and the start-up warm-up (:mod:`cim.api.warmup`) both come here, so their keys agree.
    """
    key = f"{tile.z}/{tile.x}/{tile.y}|{','.join(layers)}|{moment.isoformat() if moment else ''}"
    cached = cache.get(stamp, key)
    if cached is not None and len(cached) > 8:
        # The entry is the shape count (8 bytes, big-endian) and the PNG.
        return CachedTile(cached[8:], int.from_bytes(cached[:8], "big"), hit=True)
    bounds = tile_bounds(tile)
    shapes = basemap_shapes(conn, bounds, (bounds[2] - bounds[0]) / 256, layers, moment) if layers else {}
    rendered = render_tile(tile, shapes)
    cache.put(stamp, key, rendered.shapes.to_bytes(8, "big") + rendered.png)
    return CachedTile(rendered.png, rendered.shapes, hit=False)


def parse_layers(value: str | None) -> tuple[str, ...]:
    """A comma-separated subset of :data:`LAYERS` (all when empty); :class:`BadRequestError` for unknown names."""
    if not value:
        return LAYERS
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise BadRequestError(f"unknown base-map layer(s) {', '.join(unknown)}; known: {', '.join(LAYERS)}")
    return names


def parse_moment(value: str | None) -> dt.datetime | None:
    """An ISO 8601 moment (UTC when no offset is given), or None."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadRequestError(f"at must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z, not {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@dataclass
class TileParams:
    """Query parameters of a base-map tile."""

    at: Annotated[
        str | None,
        Query(max_length=40, description="Draw the rows valid at this ISO 8601 moment (default: live rows)."),
    ] = None
    layers: Annotated[
        str | None, Query(max_length=200, description=f"Comma-separated subset of {', '.join(LAYERS)}.")
    ] = None


@dataclass
class BasemapFactory(ViewerFactory):
    """The offline base map."""

    def register_routes(self) -> None:
        """``GET /basemap``, ``GET /basemap/{z}/{x}/{y}.png``."""

        @self.router.get("/basemap", name=self.route_name("tilejson"), summary="TileJSON of the offline base map")
        def get_tilejson(request: Request, conn: Reader) -> dict[str, Any]:
            bbox = data_extent(conn)
            template = str(request.url_for(self.route_name("tile"), z="{z}", x="{x}", y="{y}"))
            return {
                "tilejson": "3.0.0",
                "name": "cim-basemap",
                "tiles": [template.replace("%7B", "{").replace("%7D", "}")],
                "minzoom": min(MIN_ZOOM.values()),
                "maxzoom": MAX_ZOOM,
                "bounds": list(bbox) if bbox else [-180, -85.0511, 180, 85.0511],
                "has_data": bbox is not None,
                "vector_layers": [{"id": layer, "minzoom": MIN_ZOOM[layer]} for layer in LAYERS],
                "legend": legend(),
            }

        @self.router.get(
            "/basemap/{z}/{x}/{y}.png",
            name=self.route_name("tile"),
            summary="One base-map tile (Web Mercator XYZ, 256 px PNG)",
            response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 304: {"description": "Not modified"}},
        )
        def get_tile(
            request: Request,
            z: Annotated[int, Path(ge=0, le=MAX_ZOOM, description="Zoom level.")],
            x: Annotated[int, Path(ge=0, description="Column from the west.")],
            y: Annotated[int, Path(ge=0, description="Row from the north.")],
            params: Annotated[TileParams, Depends()],
            conn: Reader,
        ) -> Response:
            if x >= 1 << z or y >= 1 << z:
                raise BadRequestError(f"tile {z}/{x}/{y} does not exist: x and y must be below {1 << z} at zoom {z}")
            layers = layers_at(z, parse_layers(params.layers))
            moment = parse_moment(params.at)
            stamp = data_stamp(conn)
            etag = strong_etag("basemap", stamp, z, x, y, moment, layers)
            headers = {"ETag": etag, "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
            if etag_matches(request, etag):
                return Response(status_code=304, headers=headers)
            tile = cached_tile(tile_cache(request.app.state), conn, stamp, Tile(x, y, z), layers, moment)
            headers["X-Shapes"] = str(tile.shapes)
            headers["X-Cache"] = "hit" if tile.hit else "miss"
            return Response(tile.png, media_type="image/png", headers=headers)
