"""OGC API – Features: Part 1 core + GeoJSON + OpenAPI 3.0, Part 2 CRS by reference.

``/conformance``, ``/collections``, ``/collections/{id}``, ``/collections/{id}/items``
(bbox, bbox-crs, datetime, limit/offset with next/prev links, property filters, crs) and
``/collections/{id}/items/{fid}``. Output defaults to CRS84; ``crs=`` selects CGCS2000 (EPSG:4490), WGS 84
(EPSG:4326) or a CGCS2000 Gauss–Krüger CRS (EPSG:4513–4554), in that CRS's axis order, with ``Content-Crs``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from cim.api.dependencies import Collection, Reader
from cim.api.errors import BadRequestError
from cim.api.factory import BaseFactory
from cim.api.security import Principal, read_access
from cim.crs import CGCS2000, CRS84_URI, crs_uri, epsg_from_uri
from cim.db.cql import cql_filter
from cim.db.features import (
    COLLECTIONS,
    OUTPUT_EPSG,
    FeatureCollectionDef,
    axis_flipped,
    collection_extent,
    feature_by_id,
    feature_page,
    validate_filters,
)
from cim.errors import CrsError, NotFoundError
from cim.values import BBox

GEOJSON = "application/geo+json"
FEATURES_TAG = "OGC API – Features"
MAX_LIMIT = 10_000
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]
RESERVED = frozenset(
    {"bbox", "bbox-crs", "datetime", "limit", "offset", "crs", "f", "filter", "filter-lang", "filter-crs"}
)
SUPPORTED_CRS = [CRS84_URI, *(crs_uri(code) for code in OUTPUT_EPSG)]
STORAGE_CRS = crs_uri(CGCS2000)


@dataclass
class ItemsParams:
    """Query parameters of ``/collections/{collectionId}/items`` (property filters come on top)."""

    bbox: Annotated[
        str | None,
        Query(
            description="minx,miny,maxx,maxy in bbox-crs (CRS84 lon/lat by default; in the axis order of "
            "bbox-crs otherwise, e.g. lat,lon for EPSG:4490)."
        ),
    ] = None
    bbox_crs: Annotated[
        str | None, Query(alias="bbox-crs", description="CRS URI of bbox (one of the collection's crs list).")
    ] = None
    datetime: Annotated[
        str | None,
        Query(
            description="RFC 3339 instant or interval (a/b, ../b, a/..): rows valid at that time; default: "
            "current rows only."
        ),
    ] = None
    limit: Annotated[
        int, Query(ge=1, le=1_000_000, description="Page size (default 10; values above 10000 are reduced to 10000).")
    ] = 10
    offset: Annotated[int, Query(ge=0, le=100_000_000, description="Features to skip (paging).")] = 0
    filter: Annotated[
        str | None,
        Query(
            description="CQL2 filter on the queryables (e.g. use = 'residential' AND height > 30, or "
            "S_INTERSECTS(geometry, POLYGON((…))) with CRS84 coordinates)."
        ),
    ] = None
    filter_lang: Annotated[
        Literal["cql2-text", "cql2-json"], Query(alias="filter-lang", description="Language of filter.")
    ] = "cql2-text"
    filter_crs: Annotated[
        str | None, Query(alias="filter-crs", description="CRS of geometry literals in filter (CRS84 only).")
    ] = None
    crs: Annotated[
        str | None,
        Query(
            description="Output CRS URI: CRS84 (default), http://www.opengis.net/def/crs/EPSG/0/4490, …/4326, "
            "or a CGCS2000 Gauss–Krüger CRS …/4513–4554."
        ),
    ] = None


@dataclass
class CrsParam:
    """The ``crs`` query parameter of a single feature."""

    crs: Annotated[str | None, Query(description="Output CRS URI (see the items endpoint).")] = None


def output_epsg(value: str | None) -> int | None:
    """The EPSG code of a requested output CRS (``None`` = CRS84); :class:`CrsError` when not offered."""
    if value is None:
        return None
    epsg = epsg_from_uri(value)
    if epsg is not None and epsg not in OUTPUT_EPSG:
        raise CrsError(f"CRS {value} is not offered; use one of {CRS84_URI}, EPSG/0/4490, 4326, 4513–4554")
    return epsg


def parse_bbox(text: str, epsg: int | None) -> BBox:
    """The ``bbox`` parameter in x/y (lon/lat, easting/northing) order; ``epsg`` is its ``bbox-crs`` (None: CRS84)."""
    try:
        return BBox.parse(text, degrees=epsg is None, yx=axis_flipped(epsg))
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None


def _instant(text: str) -> dt.datetime | None:
    text = text.strip()
    if text in ("", ".."):
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise BadRequestError(f"datetime {text!r} is not an RFC 3339 date-time (e.g. 2024-05-01T00:00:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_datetime(text: str | None) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """The validity interval of the ``datetime`` parameter (open ends ``None``); ``None`` when absent."""
    if text is None:
        return None
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, end = _instant(start_text), _instant(end_text)
        if start is not None and end is not None and start > end:
            raise BadRequestError("datetime interval ends before it starts")
        return start, end
    instant = _instant(text)
    if instant is None:
        raise BadRequestError("datetime must be an instant or an interval")
    return instant, instant


def _link(href: str, rel: str, type_: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": type_}
    if title:
        link["title"] = title
    return link


@dataclass
class FeaturesFactory(BaseFactory):
    """OGC API – Features over :data:`cim.db.features.COLLECTIONS` (the landing page is :mod:`cim.api.landing`)."""

    tags: list[str] = field(default_factory=lambda: [FEATURES_TAG])

    def _collection_doc(
        self, request: Request, coll: FeatureCollectionDef, extent: dict[str, Any] | None, *, in_list: bool = False
    ) -> dict[str, Any]:
        base = self.url_for(request, "get_collection", collectionId=coll.id)
        doc: dict[str, Any] = {
            "id": coll.id,
            "title": coll.title,
            "description": coll.description,
            "itemType": coll.item_type,
            "crs": ["#/crs"] if in_list else SUPPORTED_CRS,  # "#/crs": the list's global crs (Part 2)
            "storageCrs": STORAGE_CRS,
            "links": [
                _link(base, "self", "application/json", "This collection"),
                _link(base + "/items", "items", GEOJSON, "Features of this collection"),
                _link(
                    base + "/queryables",
                    "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                    "application/schema+json",
                    "Queryables",
                ),
            ],
        }
        if extent:
            doc["extent"] = extent
        return doc

    def register_routes(self) -> None:
        """Conformance, collections, one collection, its queryables, items, one item."""
        router = self.router

        @router.get("/conformance", summary="Conformance classes", name=self.route_name("conformance"))
        def conformance(_: Annotated[Principal, Depends(read_access)]) -> dict[str, list[str]]:
            return {"conformsTo": CONFORMANCE}

        @router.get("/collections", summary="Feature collections", name=self.route_name("get_collections"))
        def get_collections(request: Request, _: Annotated[Principal, Depends(read_access)]) -> dict[str, Any]:
            return {
                "links": [_link(self.url_for(request, "get_collections"), "self", "application/json")],
                "crs": SUPPORTED_CRS,
                "collections": [self._collection_doc(request, c, None, in_list=True) for c in COLLECTIONS.values()],
            }

        @router.get("/collections/{collectionId}", summary="One collection", name=self.route_name("get_collection"))
        def get_collection(
            request: Request, _: Annotated[Principal, Depends(read_access)], coll: Collection, conn: Reader
        ) -> dict[str, Any]:
            return self._collection_doc(request, coll, collection_extent(conn, coll))

        @router.get(
            "/collections/{collectionId}/queryables",
            summary="Properties usable in filters (JSON Schema)",
            name=self.route_name("get_queryables"),
        )
        def get_queryables(
            request: Request, _: Annotated[Principal, Depends(read_access)], coll: Collection
        ) -> JSONResponse:
            properties: dict[str, Any] = {
                "geometry": {"format": "geometry-any", "x-ogc-role": "primary-geometry"},
                "id": {"type": "integer", "x-ogc-role": "id"},
            }
            for name in coll.queryables:
                python_type = coll.table.c[name].type.python_type
                kind = "integer" if python_type is int else "number" if python_type is float else "string"
                properties[name] = {"type": kind}
            doc = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": str(request.url),
                "type": "object",
                "title": coll.title,
                "properties": properties,
                "additionalProperties": False,
            }
            return JSONResponse(doc, media_type="application/schema+json")

        @router.get(
            "/collections/{collectionId}/items",
            summary="Features of a collection (GeoJSON)",
            name=self.route_name("get_items"),
            response_class=Response,
            responses={
                200: {
                    "content": {GEOJSON: {"schema": {"type": "object"}}},
                    "description": "A GeoJSON FeatureCollection.",
                }
            },
        )
        def get_items(
            request: Request,
            _: Annotated[Principal, Depends(read_access)],
            coll: Collection,
            params: Annotated[ItemsParams, Depends()],
        ) -> Response:
            epsg = output_epsg(params.crs)
            bbox_epsg = output_epsg(params.bbox_crs) if params.bbox_crs else None
            bbox = parse_bbox(params.bbox, bbox_epsg) if params.bbox is not None else None
            interval = parse_datetime(params.datetime)
            filters = {k: v for k, v in request.query_params.items() if k not in RESERVED}
            try:
                validate_filters(coll, filters)
            except ValueError as exc:
                raise BadRequestError(str(exc)) from exc
            limit = min(params.limit, MAX_LIMIT)
            extra = None
            if params.filter is not None:
                if params.filter_crs is not None and epsg_from_uri(params.filter_crs) not in (None, CGCS2000):
                    raise CrsError("filter-crs must be CRS84 (or EPSG:4490, the same lon/lat within centimetres)")
                try:
                    extra = cql_filter(coll, params.filter, params.filter_lang)
                except ValueError as exc:
                    raise BadRequestError(str(exc)) from exc
            with request.app.state.engine.connect() as conn:
                matched, features = feature_page(
                    conn,
                    coll,
                    limit=limit,
                    offset=params.offset,
                    epsg=epsg,
                    bbox=bbox,
                    bbox_epsg=bbox_epsg,
                    interval=interval,
                    filters=filters,
                    extra=extra,
                )
            url = request.url
            links = [
                _link(str(url), "self", GEOJSON, "This page"),
                _link(
                    self.url_for(request, "get_collection", collectionId=coll.id),
                    "collection",
                    "application/json",
                    "The collection",
                ),
            ]
            if params.offset + len(features) < matched:
                links.append(
                    _link(
                        str(url.include_query_params(offset=params.offset + limit, limit=limit)),
                        "next",
                        GEOJSON,
                        "Next page",
                    )
                )
            if params.offset > 0:
                links.append(
                    _link(
                        str(url.include_query_params(offset=max(params.offset - limit, 0), limit=limit)),
                        "prev",
                        GEOJSON,
                        "Previous page",
                    )
                )
            tail = {
                "numberMatched": matched,
                "numberReturned": len(features),
                "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "links": links,
            }
            body = '{"type":"FeatureCollection","features":[' + ",".join(features) + "]," + json.dumps(tail)[1:]
            return Response(body, media_type=GEOJSON, headers={"Content-Crs": f"<{crs_uri(epsg)}>"})

        @router.get(
            "/collections/{collectionId}/items/{featureId}",
            summary="One feature (GeoJSON)",
            name=self.route_name("get_item"),
            response_class=Response,
            responses={
                200: {"content": {GEOJSON: {"schema": {"type": "object"}}}, "description": "A GeoJSON Feature."},
                404: {"description": "No such feature."},
            },
        )
        def get_item(
            request: Request,
            _: Annotated[Principal, Depends(read_access)],
            coll: Collection,
            featureId: Annotated[str, Path(description="Feature id (integer).")],
            params: Annotated[CrsParam, Depends()],
        ) -> Response:
            epsg = output_epsg(params.crs)
            if not (featureId.isascii() and featureId.isdigit()) or len(featureId) > 18:  # "²".isdigit() is True
                raise NotFoundError(f"no feature {featureId!r} in {coll.id}")
            with request.app.state.engine.connect() as conn:
                text = feature_by_id(conn, coll, int(featureId), epsg=epsg)
            if text is None:
                raise NotFoundError(f"no feature {featureId} in {coll.id}")
            feature = json.loads(text)
            feature["links"] = [
                _link(str(request.url), "self", GEOJSON, "This feature"),
                _link(self.url_for(request, "get_collection", collectionId=coll.id), "collection", "application/json"),
            ]
            return JSONResponse(feature, media_type=GEOJSON, headers={"Content-Crs": f"<{crs_uri(epsg)}>"})
