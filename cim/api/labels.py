"""``/labels``: the names to draw for a view — districts, roads, places and, close up, buildings.

Which kinds come back depends on the camera height (:data:`KIND_MAX_HEIGHT_M`); each label has a point
(CGCS2000 longitude/latitude degrees, height in metres: the roof for buildings, 0 = on the ground otherwise),
its text in Chinese and English (the English name of a row's ``attributes.name_en``, of a known
administrative code, else the Chinese name), its kind and a priority (higher first) for the viewer's
decluttering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from cim.api.dependencies import Reader
from cim.api.errors import BadRequestError
from cim.api.factory import ViewerFactory
from cim.api.overview import conditional_json, etag_matches, strong_etag
from cim.db.onemap import (
    Bbox,
    building_label_rows,
    data_stamp,
    district_label_rows,
    place_label_rows,
    road_label_rows,
)
from cim.onemap.admin import division_name

KIND_MAX_HEIGHT_M = {"district": 200_000.0, "road": 8_000.0, "place": 4_000.0, "building": 1_500.0}
"""Highest camera (m) at which each kind of label is returned."""
ROAD_PRIORITY = {"trunk": 70, "motorway": 70, "primary": 65, "secondary": 60, "tertiary": 55}


def parse_bbox(value: str) -> Bbox:
    """``west,south,east,north`` in degrees → a tuple; :class:`BadRequestError` when malformed."""
    try:
        w, s, e, n = (float(v) for v in value.split(","))
    except ValueError:
        raise BadRequestError(f"bbox must be four numbers west,south,east,north in degrees, not {value!r}") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise BadRequestError(f"bbox {value!r} is not west < east within ±180 and south < north within ±90")
    return w, s, e, n


def _text(zh: str, en: str | None) -> dict[str, str]:
    return {"zh": zh, "en": en or zh}


def view_labels(conn: Any, bbox: Bbox, height: float, limit: int) -> list[dict[str, Any]]:
    """Labels for a view ``bbox`` (degrees) seen from ``height`` metres, highest priority first."""
    labels: list[dict[str, Any]] = []

    def add(kind: str, text: dict[str, str], priority: float, lon: float, lat: float, z: float = 0.0) -> None:
        labels.append(
            {
                "text": text,
                "kind": kind,
                "priority": round(priority, 1),
                "lon": round(lon, 7),
                "lat": round(lat, 7),
                "height": round(z, 1),
            }
        )

    if height <= KIND_MAX_HEIGHT_M["district"]:
        for r in district_label_rows(conn, bbox, limit):
            zh, en = division_name(str(r["code"]), r["name"])
            add("district", _text(zh, r["name_en"] or en), 100, r["lon"], r["lat"])
    if height <= KIND_MAX_HEIGHT_M["road"]:
        for r in road_label_rows(conn, bbox, limit):
            add(
                "road", _text(r["name"], r["name_en"]), ROAD_PRIORITY.get(r["road_class"] or "", 50), r["lon"], r["lat"]
            )
    if height <= KIND_MAX_HEIGHT_M["place"]:
        for r in place_label_rows(conn, bbox, limit):
            add("place", _text(r["name"], r["name_en"]), 40, r["lon"], r["lat"])
    if height <= KIND_MAX_HEIGHT_M["building"]:
        for r in building_label_rows(conn, bbox, limit):
            add(
                "building",
                _text(r["name"], r["name_en"]),
                20 + min(float(r["top"] or 0) / 10, 15),
                r["lon"],
                r["lat"],
                float(r["top"] or 0),
            )
    labels.sort(key=lambda label: -label["priority"])
    return labels[:limit]


@dataclass
class LabelParams:
    """Query parameters of ``/labels``."""

    bbox: Annotated[str, Query(max_length=200, description="View extent west,south,east,north (CGCS2000 degrees).")]
    height: Annotated[float, Query(ge=0, le=5e7, description="Camera height above the ellipsoid, metres.")]
    limit: Annotated[int, Query(ge=1, le=2000, description="Most labels returned.")] = 300


@dataclass
class LabelsFactory(ViewerFactory):
    """Map labels from the database."""

    def register_routes(self) -> None:
        """``GET /labels``."""

        @self.router.get("/labels", name=self.route_name("labels"), summary="Labels (names) to draw for a view")
        def get_labels(request: Request, params: Annotated[LabelParams, Depends()], conn: Reader) -> Response:
            bbox = parse_bbox(params.bbox)
            etag = strong_etag("labels", data_stamp(conn), bbox, params.height, params.limit)
            if etag_matches(request, etag):
                return conditional_json(request, {}, etag)
            body = {
                "bbox": list(bbox),
                "height": params.height,
                "labels": view_labels(conn, bbox, params.height, params.limit),
            }
            return conditional_json(request, body, etag)
