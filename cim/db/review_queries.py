"""SQL that the BIM pre-review reads: the parcel and planning zones, the province boundary, the live
buildings and pipes around a site. Geometries come back as WKB in EPSG:4490 (lon/lat degrees).

Distance filters use the GiST index with a conservative radius in degrees (1 m ≤ 1/55,000° below 60°
latitude); the checks measure exact distances in the site's Gauss–Krüger zone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from cim.crs import CGCS2000

DEG_PER_M_BOUND = 1.0 / 55_000.0
LIMIT_COLUMNS = "max_height, max_far, max_density, min_green_ratio, setback_m"


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(text(sql), params)]


def parcel_by_ref(conn: Connection, ref: str) -> dict[str, Any] | None:
    """The parcel whose id (digits) or code is ``ref``: limits, ``geom`` WKB and geodesic ``area_m2``."""
    by_id = ref.strip().isdigit()
    rows = _rows(
        conn,
        f"""
        SELECT id, code, name, land_use, district_code, attributes, {LIMIT_COLUMNS},
               ST_AsBinary(geom) AS geom, ST_Area(geom::geography) AS area_m2
          FROM parcel
         WHERE {"id = CAST(:ref AS bigint)" if by_id else "code = :ref"}
         ORDER BY id LIMIT 1
        """,
        ref=ref.strip(),
    )
    return rows[0] if rows else None


def planning_zones_over(conn: Connection, geom_wkb: bytes) -> list[dict[str, Any]]:
    """Planning zones that overlap a geometry (EPSG:4490 WKB), with their limits."""
    return _rows(
        conn,
        f"""
        SELECT id, code, name, zone_type, {LIMIT_COLUMNS}
          FROM planning_zone
         WHERE ST_Intersects(geom, ST_GeomFromWKB(:g, {CGCS2000}))
           AND ST_Area(ST_Intersection(geom, ST_GeomFromWKB(:g, {CGCS2000}))) > 0
         ORDER BY id
        """,
        g=geom_wkb,
    )


def province_boundary(conn: Connection, code: str | None) -> bytes | None:
    """WKB of the province row (``code``, else the one district of level ``province``), if stored."""
    rows = _rows(
        conn,
        """
        SELECT ST_AsBinary(geom) AS geom FROM district
         WHERE (CAST(:code AS text) IS NOT NULL AND code = CAST(:code AS text))
            OR (CAST(:code AS text) IS NULL AND level = 'province')
         ORDER BY id LIMIT 1
        """,
        code=code,
    )
    return bytes(rows[0]["geom"]) if rows else None


def buildings_near(conn: Connection, geom_wkb: bytes, radius_m: float) -> list[dict[str, Any]]:
    """Live buildings within ``radius_m`` of a geometry (EPSG:4490 WKB), with footprints as WKB."""
    return _rows(
        conn,
        f"""
        SELECT b.id, b.name, b.use, b.height, b.base_height, b.storeys, b.ifc_global_id, b.dataset_id,
               b.safety_class, b.attributes, d.model_key, ST_AsBinary(b.footprint) AS footprint
          FROM building b
          JOIN dataset d ON d.id = b.dataset_id
         WHERE b.valid_to IS NULL AND NOT ST_IsEmpty(b.footprint)
           AND ST_DWithin(b.footprint, ST_GeomFromWKB(:g, {CGCS2000}), :deg)
         ORDER BY b.id
        """,
        g=geom_wkb,
        deg=radius_m * DEG_PER_M_BOUND,
    )


def pipes_near(conn: Connection, geom_wkb: bytes, radius_m: float) -> list[dict[str, Any]]:
    """Live linear facilities whose kind starts with ``pipe`` or is a utility trench, near a geometry."""
    return _rows(
        conn,
        f"""
        SELECT id, kind, name, diameter_mm, pressure_class, attributes, ST_AsBinary(geom) AS geom
          FROM facility
         WHERE valid_to IS NULL AND (kind LIKE 'pipe%' OR kind = 'utility_trench')
           AND ST_DWithin(geom, ST_GeomFromWKB(:g, {CGCS2000}), :deg)
         ORDER BY id
        """,
        g=geom_wkb,
        deg=radius_m * DEG_PER_M_BOUND,
    )
