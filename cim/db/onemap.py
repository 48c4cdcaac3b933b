"""Queries of the province "one map": data stamp, overview per city, labels of a view, base-map shapes, history.

Geometries are stored in CGCS2000 (EPSG:4490, longitude/latitude degrees); the base map reads them in Web
Mercator (EPSG:3857, metres) through PostGIS' ``ST_Transform`` (CGCS2000 and WGS 84 agree to centimetres,
far below a base-map pixel). Only live rows (``valid_to IS NULL``) count, except in :func:`basemap_shapes`
with a moment ``at``, which selects the rows valid then.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from cim.crs import CGCS2000

Bbox = tuple[float, float, float, float]
"""(west, south, east, north)."""

_UNIT = """
    unit AS (
        SELECT code, name, level, parent_code, geom,
               CASE WHEN level IN ('city', 'prefecture') THEN code
                    WHEN parent_code IS NOT NULL AND parent_code <> '' THEN parent_code
                    WHEN code ~ '^[0-9]{2}(?!90)[0-9]{2}(?!00)[0-9]{2}$' THEN left(code, 4) || '00'
                    ELSE code END AS city_code
        FROM district
    )"""
"""Each district with the code of its prefecture-level city (mirrors :func:`cim.onemap.admin.city_code_of`)."""


def data_stamp(conn: Connection) -> str:
    """A short string that changes whenever datasets or districts are loaded, superseded or deleted."""
    row = conn.execute(
        text(
            "SELECT count(*), coalesce(max(id), 0), "
            "coalesce(extract(epoch FROM max(greatest(created_at, coalesce(superseded_at, created_at)))), 0), "
            "(SELECT count(*) FROM district), (SELECT coalesce(max(id), 0) FROM district), "
            "(SELECT coalesce(extract(epoch FROM max(built_at)), 0) FROM tileset) FROM dataset"
        )
    ).one()
    return "-".join(f"{float(v):.0f}" if i in (2, 5) else str(int(v)) for i, v in enumerate(row))


def data_extent(conn: Connection) -> Bbox | None:
    """Extent of what is stored: districts, live datasets' extents and tilesets (degrees), or None when empty."""
    row = conn.execute(
        text(
            """
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
                SELECT ST_Extent(g) AS e FROM (
                    SELECT geom AS g FROM district
                    UNION ALL SELECT extent FROM dataset WHERE status = 'loaded' AND extent IS NOT NULL
                    UNION ALL SELECT bounds FROM tileset WHERE bounds IS NOT NULL
                ) parts
            ) x WHERE e IS NOT NULL
            """
        )
    ).first()
    return None if row is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


@dataclass(frozen=True)
class OverviewRows:
    """Rows behind ``/overview``: one per city and one per district (geometry as GeoJSON text)."""

    cities: list[dict[str, Any]]
    districts: list[dict[str, Any]]


def overview_rows(conn: Connection, tolerance_deg: float) -> OverviewRows:
    """Cities (extent, a point inside, counts of live buildings, facilities and sensors) and districts.

    A row counts for a city by its ``district_code`` when that names a district, else by the district its
    centroid falls in. ``tolerance_deg``: simplification of the district outlines (degrees).
    """
    districts = [
        dict(r)
        for r in conn.execute(
            text(
                f"WITH {_UNIT} SELECT code, name, level, city_code, "
                "ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tol), 5) AS geometry FROM unit ORDER BY code"
            ),
            {"tol": tolerance_deg},
        ).mappings()
    ]
    counts: dict[str, dict[str, int]] = {}
    for what, table, geom, live in (
        ("buildings", "building", "footprint", "valid_to IS NULL"),
        ("facilities", "facility", "geom", "valid_to IS NULL"),
    ):
        for code, n in conn.execute(
            text(
                f"""
                WITH {_UNIT},
                by_code AS (
                    SELECT u.city_code, count(*) AS n FROM {table} t JOIN unit u ON u.code = t.district_code
                    WHERE t.{live} GROUP BY u.city_code
                ),
                by_place AS (
                    SELECT (SELECT u.city_code FROM unit u
                            WHERE u.geom && c.pt AND ST_Intersects(u.geom, c.pt) LIMIT 1) AS city_code, count(*) AS n
                    FROM (SELECT ST_PointOnSurface(t.{geom}) AS pt FROM {table} t
                          WHERE t.{live} AND (t.district_code IS NULL
                                OR NOT EXISTS (SELECT 1 FROM district d WHERE d.code = t.district_code))) c
                    GROUP BY 1
                )
                SELECT city_code, sum(n) FROM (SELECT * FROM by_code UNION ALL SELECT * FROM by_place) a
                WHERE city_code IS NOT NULL GROUP BY city_code
                """
            )
        ):
            counts.setdefault(str(code), {})[what] = int(n)
    for code, n in conn.execute(
        text(
            f"""
            WITH {_UNIT}
            SELECT (SELECT u.city_code FROM unit u WHERE u.geom && p.pt AND ST_Intersects(u.geom, p.pt) LIMIT 1),
                   count(*)
            FROM (SELECT DISTINCT ON (tl.thing_id) ST_PointOnSurface(loc.geom) AS pt
                  FROM sta_thing_location tl JOIN sta_location loc ON loc.id = tl.location_id
                  WHERE loc.geom IS NOT NULL) p
            GROUP BY 1
            """
        )
    ):
        if code is not None:
            counts.setdefault(str(code), {})["sensors"] = int(n)
    cities = []
    for r in conn.execute(
        text(
            f"""
            WITH {_UNIT}
            SELECT city_code,
                   (SELECT name FROM district d WHERE d.code = unit.city_code) AS name,
                   ST_XMin(ST_Extent(geom)) AS w, ST_YMin(ST_Extent(geom)) AS s,
                   ST_XMax(ST_Extent(geom)) AS e, ST_YMax(ST_Extent(geom)) AS n,
                   ST_X(ST_PointOnSurface(ST_Union(geom))) AS lon, ST_Y(ST_PointOnSurface(ST_Union(geom))) AS lat,
                   array_agg(code ORDER BY code) AS codes
            FROM unit GROUP BY city_code ORDER BY city_code
            """
        )
    ).mappings():
        city = dict(r)
        city["counts"] = {"buildings": 0, "facilities": 0, **counts.get(str(r["city_code"]), {})}
        cities.append(city)
    return OverviewRows(cities, districts)


_ENVELOPE = f"ST_MakeEnvelope(:w, :s, :e, :n, {CGCS2000})"
"""The view ``bbox`` of a label query as a CGCS2000 polygon (parameters ``w``, ``s``, ``e``, ``n``)."""

_NAMED_LIVE = "valid_to IS NULL AND name IS NOT NULL AND name <> ''"


def _label_query(conn: Connection, sql: str, bbox: Bbox, limit: int) -> list[dict[str, Any]]:
    """Rows of a label query whose parameters are the view (:data:`_ENVELOPE`) and ``:limit``."""
    params = {"w": bbox[0], "s": bbox[1], "e": bbox[2], "n": bbox[3], "limit": limit}
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def _point_labels(
    conn: Connection, bbox: Bbox, limit: int, table: str, columns: str, geom: str, where: str, order: str
) -> list[dict[str, Any]]:
    """``columns`` and a point inside ``geom`` (``lon``, ``lat``, degrees) of the rows of ``table`` meeting
    ``bbox`` that pass ``where``, in ``order``, at most ``limit``."""
    return _label_query(
        conn,
        f"""
        SELECT {columns}, ST_X(ST_PointOnSurface({geom})) AS lon, ST_Y(ST_PointOnSurface({geom})) AS lat
        FROM {table} WHERE {geom} && {_ENVELOPE} AND {where}
        ORDER BY {order} LIMIT :limit
        """,
        bbox,
        limit,
    )


def district_label_rows(conn: Connection, bbox: Bbox, limit: int) -> list[dict[str, Any]]:
    """Districts meeting ``bbox`` with a point inside each (degrees), largest first."""
    columns = "code, name, level, attributes ->> 'name_en' AS name_en"
    return _point_labels(conn, bbox, limit, "district", columns, "geom", "true", "ST_Area(geom) DESC")


def road_label_rows(conn: Connection, bbox: Bbox, limit: int) -> list[dict[str, Any]]:
    """Named live roads in ``bbox``: one point per name, the middle of its longest piece inside the view."""
    return _label_query(
        conn,
        f"""
        WITH env AS (SELECT {_ENVELOPE} AS g),
        pieces AS (
            SELECT f.name, f.road_class, f.attributes ->> 'name_en' AS name_en,
                   (ST_Dump(ST_Intersection(ST_Force2D(f.geom), env.g))).geom AS g
            FROM facility f, env
            WHERE f.kind = 'road' AND f.valid_to IS NULL AND f.name IS NOT NULL AND f.name <> ''
              AND f.geom && env.g
        )
        SELECT * FROM (
            SELECT DISTINCT ON (name) name, road_class, name_en, ST_Length(g) AS length,
                   ST_X(ST_LineInterpolatePoint(g, 0.5)) AS lon, ST_Y(ST_LineInterpolatePoint(g, 0.5)) AS lat
            FROM pieces WHERE GeometryType(g) = 'LINESTRING' ORDER BY name, ST_Length(g) DESC
        ) named ORDER BY length DESC LIMIT :limit
        """,
        bbox,
        limit,
    )


def place_label_rows(conn: Connection, bbox: Bbox, limit: int) -> list[dict[str, Any]]:
    """Named live facilities other than roads and pipes in ``bbox`` (parks, schools, stations…), largest first."""
    columns = "kind, name, attributes ->> 'name_en' AS name_en"
    where = f"{_NAMED_LIVE} AND kind <> 'road' AND kind NOT LIKE 'pipe%'"
    return _point_labels(conn, bbox, limit, "facility", columns, "geom", where, "ST_Area(geom) DESC, id")


def building_label_rows(conn: Connection, bbox: Bbox, limit: int) -> list[dict[str, Any]]:
    """Named live buildings in ``bbox`` with their roof height (normal height, m), tallest first."""
    columns = "id, name, use, attributes ->> 'name_en' AS name_en, base_height + height AS top"
    return _point_labels(conn, bbox, limit, "building", columns, "footprint", _NAMED_LIVE, "height DESC, id")


def _validity(alias: str, at: dt.datetime | None) -> str:
    if at is None:
        return f"{alias}.valid_to IS NULL"
    return f"{alias}.valid_from <= :at AND ({alias}.valid_to IS NULL OR {alias}.valid_to > :at)"


def basemap_shapes(
    conn: Connection,
    bounds: Bbox,
    pixel_m: float,
    layers: tuple[str, ...],
    at: dt.datetime | None = None,
) -> dict[str, list[tuple[bytes, str]]]:
    """WKB shapes in Web Mercator metres inside ``bounds`` (EPSG:3857), simplified to ``pixel_m``, per layer.

    Layers: ``parcels`` (class: land-use code), ``green`` and ``water`` (facility kind), ``roads`` (road
    class; centre lines buffered to half their width, at least a pixel), ``buildings`` (use). ``at``: the
    moment whose valid rows are drawn (buildings and facilities keep history); default the live rows.
    """
    # Web Mercator stretches ground metres by 1 / cos(latitude): road widths are scaled by it.
    latitude = math.atan(math.sinh((bounds[1] + bounds[3]) / 2 / 6_378_137.0))
    params: dict[str, Any] = {
        "w": bounds[0],
        "s": bounds[1],
        "e": bounds[2],
        "n": bounds[3],
        "px": pixel_m,
        "at": at,
        "scale": 1.0 / math.cos(latitude),
    }
    env = "ST_MakeEnvelope(:w - 2 * :px, :s - 2 * :px, :e + 2 * :px, :n + 2 * :px, 3857)"
    env_4490 = f"ST_Transform({env}, {CGCS2000})"
    clip = f"ST_ClipByBox2D(ST_Simplify(ST_Transform(ST_Force2D({{g}}), 3857), :px / 2, true), {env})"
    queries = {
        "parcels": f"SELECT {clip.format(g='p.geom')}, coalesce(p.land_use, '') FROM parcel p "
        f"WHERE p.geom && {env_4490}",
        "green": f"SELECT {clip.format(g='f.geom')}, f.kind FROM facility f WHERE f.geom && {env_4490} "
        f"AND f.kind IN ('park', 'green_space') AND {_validity('f', at)}",
        "water": f"SELECT {clip.format(g='f.geom')}, f.kind FROM facility f WHERE f.geom && {env_4490} "
        f"AND f.kind = 'water_body' AND {_validity('f', at)}",
        "roads": "SELECT ST_Buffer(ST_ClipByBox2D(ST_Simplify(ST_Transform(ST_Force2D(f.geom), 3857), :px / 2, true), "
        f"{env}), greatest(coalesce(f.width_m, CASE f.road_class WHEN 'primary' THEN 24 WHEN 'trunk' THEN 30 "
        "WHEN 'secondary' THEN 18 WHEN 'tertiary' THEN 12 ELSE 8 END) / 2.0 * :scale, :px * 0.7), 'endcap=flat'), "
        f"coalesce(f.road_class, '') FROM facility f WHERE f.geom && {env_4490} AND f.kind = 'road' "
        f"AND {_validity('f', at)}",
        "buildings": f"SELECT {clip.format(g='b.footprint')}, coalesce(b.use, '') FROM building b "
        f"WHERE b.footprint && {env_4490} AND {_validity('b', at)}",
    }
    shapes: dict[str, list[tuple[bytes, str]]] = {}
    for layer in layers:
        rows = conn.execute(
            text(
                f"SELECT ST_AsBinary(g), c FROM ({queries[layer]}) AS q(g, c) WHERE g IS NOT NULL AND NOT ST_IsEmpty(g)"
            ),
            params,
        )
        shapes[layer] = [(bytes(r[0]), str(r[1])) for r in rows]
    return shapes


def history_moments(conn: Connection) -> list[dict[str, Any]]:
    """Datasets of sources that have more than one version, oldest first: id, name, layer, version, times."""
    return [
        dict(r)
        for r in conn.execute(
            text(
                """
                SELECT d.id, d.name, d.layer, d.version, d.status, d.created_at, d.superseded_at
                FROM dataset d
                WHERE d.status IN ('loaded', 'superseded') AND (
                    d.superseded_at IS NOT NULL
                    OR EXISTS (SELECT 1 FROM dataset o WHERE o.superseded_at IS NOT NULL
                               AND (o.id = d.replaces_id OR (o.model_key IS NOT NULL AND o.model_key = d.model_key))))
                ORDER BY d.created_at, d.id
                """
            )
        ).mappings()
    ]
