"""SQL of the CIM+ analyses (health check, fire reach, gas proximity, dangerous buildings, flood overlays).

Every query reads live rows only (``valid_to IS NULL``). Metric measures use PostGIS ``geography`` on the
CGCS2000 ellipsoid (EPSG:4490 geometries cast to geography), so they are right in every Gauss–Krüger zone.
Distance filters first use the GiST index on the EPSG:4490 geometry with a conservative radius in degrees
(:data:`DEG_PER_M_BOUND` × metres, valid up to 60° latitude), then test the exact geodesic distance.

Temporary tables live for the caller's transaction (``ON COMMIT DROP``); callers run a whole analysis
inside one ``engine.begin()`` block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from cim.crs import CGCS2000

DEG_PER_M_BOUND = 1.0 / 55_000.0
"""Degrees per metre that bound any geodesic distance ≤ 1 m below 60° latitude (1° of longitude ≥ 55.7 km)."""

RESIDENTIAL_SQL = "('residential','mixed')"


def _rows(conn: Connection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(text(sql), params)]


# --------------------------------------------------------------------------------------------- districts
def create_district_scope(conn: Connection, district: str | None, codes: Sequence[str] | None = None) -> int:
    """Temp table ``hc_district`` (code, name, population, land_km2, built_up_km2, geom) for the scope.

    The scope is every district, the one ``district`` code, or (a partition of a fanned-out run) the districts
    listed in ``codes``. ``land_km2`` is the geodesic area of the district polygon; ``built_up_km2`` is the
    stored built-up area, else the land area. Returns the number of districts.
    """
    conn.execute(text("DROP TABLE IF EXISTS hc_district"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE hc_district ON COMMIT DROP AS
            SELECT code, name, COALESCE(population, 0)::float8 AS population,
                   ST_Area(geom::geography) / 1e6 AS land_km2,
                   COALESCE(built_up_area_km2, ST_Area(geom::geography) / 1e6) AS built_up_km2,
                   geom
              FROM district
             WHERE (CAST(:district AS text) IS NULL OR code = CAST(:district AS text))
               AND (CAST(:codes AS text[]) IS NULL OR code = ANY(CAST(:codes AS text[])))
            """
        ),
        {"district": district, "codes": list(codes) if codes is not None else None},
    )
    conn.execute(text("CREATE INDEX ON hc_district USING gist (geom)"))
    conn.execute(text("ANALYZE hc_district"))
    return int(conn.execute(text("SELECT count(*) FROM hc_district")).scalar_one())


def district_rows(conn: Connection) -> list[dict[str, Any]]:
    """Rows of ``hc_district`` without geometry."""
    return _rows(conn, "SELECT code, name, population, land_km2, built_up_km2 FROM hc_district ORDER BY code")


# --------------------------------------------------------------------------------------------- buildings
def create_building_scope(conn: Connection, *, residential_only: bool = False) -> int:
    """Temp table ``hc_bldg`` of live buildings in the scope's districts (every live building when none is stored).

    A building belongs to its ``district_code`` when that district is in scope; a building without a
    district code belongs to the district containing its footprint centroid. With an empty ``hc_district``
    (no districts stored) the scope is every live building, with ``district_code`` NULL. Columns: ``c`` (centroid as
    geography), ``fp_m2`` (geodesic footprint area), ``gfa_m2`` (gross floor area, else footprint × storeys,
    else footprint × max(1, round(height / 3 m))), ``residential``. ``residential_only`` keeps housing only
    (what the coverage partitions of a fanned-out run need).
    """
    only = f"AND b.use IN {RESIDENTIAL_SQL}" if residential_only else ""
    conn.execute(text("DROP TABLE IF EXISTS hc_bldg"))
    conn.execute(
        text(
            f"""
            CREATE TEMP TABLE hc_bldg ON COMMIT DROP AS
            SELECT id, district_code, c, residential, height, year_built, safety_class, fp_m2,
                   COALESCE(gross_floor_area, fp_m2 * COALESCE(storeys, GREATEST(1, round(height / 3.0)))) AS gfa_m2
              FROM (
            SELECT b.id, COALESCE(d1.code, d2.code) AS district_code,
                   ST_Centroid(b.footprint)::geography AS c,
                   b.use IN {RESIDENTIAL_SQL} AS residential,
                   b.height, b.year_built, b.safety_class, b.gross_floor_area, b.storeys,
                   ST_Area(b.footprint::geography) AS fp_m2
              FROM building b
              LEFT JOIN hc_district d1 ON d1.code = b.district_code
              LEFT JOIN LATERAL (
                    SELECT d.code FROM hc_district d
                     WHERE b.district_code IS NULL AND ST_Intersects(d.geom, ST_Centroid(b.footprint))
                     LIMIT 1) d2 ON true
             WHERE b.valid_to IS NULL {only}
               AND (b.district_code IS NULL OR d1.code IS NOT NULL OR NOT EXISTS (SELECT 1 FROM hc_district))
            OFFSET 0) s
            """
        )
    )
    conn.execute(text("DELETE FROM hc_bldg WHERE district_code IS NULL AND EXISTS (SELECT 1 FROM hc_district)"))
    conn.execute(text("ANALYZE hc_bldg"))
    return int(conn.execute(text("SELECT count(*) FROM hc_bldg")).scalar_one())


def building_stats(conn: Connection, *, new_since_year: int) -> list[dict[str, Any]]:
    """Per district and for the whole scope (``district_code`` NULL): building counts and sums."""
    return _rows(
        conn,
        """
        SELECT district_code, GROUPING(district_code) AS is_total,
               count(*) AS n_buildings,
               COALESCE(sum(fp_m2), 0) AS footprint_m2,
               COALESCE(sum(gfa_m2), 0) AS gfa_m2,
               count(*) FILTER (WHERE height > 100) AS super_high_rise,
               count(*) FILTER (WHERE residential AND height > 80 AND year_built >= :since) AS new_res_over_80,
               count(*) FILTER (WHERE residential) AS n_res,
               count(*) FILTER (WHERE residential AND year_built IS NOT NULL) AS n_res_with_year,
               count(*) FILTER (WHERE residential AND year_built < 2000) AS n_res_old,
               count(*) FILTER (WHERE residential AND safety_class IS NOT NULL) AS n_res_with_class,
               count(*) FILTER (WHERE residential AND safety_class IN ('C','D')) AS n_res_unsafe
          FROM hc_bldg
         GROUP BY GROUPING SETS ((district_code), ())
        """,
        since=new_since_year,
    )


# --------------------------------------------------------------------------------------------- facilities
SERVICE_KINDS = ("park", "green_space", "greenway", "community_service", "clinic", "school", "kindergarten")


SERVICE_GROUPS: dict[str, tuple[str, ...]] = {
    "park": ("park", "green_space"),
    "greenway": ("greenway",),
    "cs": ("community_service", "clinic"),
    "school": ("school",),
    "kindergarten": ("kindergarten",),
}
"""Facility kinds each coverage test searches, by group; each group gets its own temp table ``hc_fac_<group>``."""


def create_service_facilities(conn: Connection) -> int:
    """Temp table ``hc_fac`` (kind, g geography, area_m2) of live service facilities, and one per group.

    Each group of :data:`SERVICE_GROUPS` gets its own small temp table ``hc_fac_<group>`` with its own GiST
    index, so that a coverage probe walks only the facilities it can match (one shared index over every
    kind made each probe visit and reject the other kinds' entries: 2.6× slower, EXPLAIN ANALYZE at 200k).
    """
    conn.execute(text("DROP TABLE IF EXISTS hc_fac"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE hc_fac ON COMMIT DROP AS
            SELECT id, kind, geom::geography AS g,
                   COALESCE(area_m2, CASE WHEN GeometryType(geom) IN ('POLYGON','MULTIPOLYGON')
                                          THEN ST_Area(geom::geography) END, 0) AS area_m2
              FROM facility
             WHERE valid_to IS NULL AND kind = ANY(:kinds)
            """
        ),
        {"kinds": list(SERVICE_KINDS)},
    )
    conn.execute(text("CREATE INDEX ON hc_fac USING gist (g)"))
    conn.execute(text("ANALYZE hc_fac"))
    for group, kinds in SERVICE_GROUPS.items():
        conn.execute(text(f"DROP TABLE IF EXISTS hc_fac_{group}"))
        conn.execute(
            text(f"CREATE TEMP TABLE hc_fac_{group} ON COMMIT DROP AS SELECT * FROM hc_fac WHERE kind = ANY(:kinds)"),
            {"kinds": list(kinds)},
        )
        conn.execute(text(f"CREATE INDEX ON hc_fac_{group} USING gist (g)"))
        conn.execute(text(f"ANALYZE hc_fac_{group}"))
    return int(conn.execute(text("SELECT count(*) FROM hc_fac")).scalar_one())


def residential_coverage(conn: Connection) -> list[dict[str, Any]]:
    """Per district and total: residential buildings and how many each service radius covers.

    Radii (metres, geodesic, to the nearest point of the facility geometry): parks 300 m (2,000–5,000 m²) /
    500 m (≥ 5,000 m²); greenway 1,000 m; community service or clinic 300/500/1,000 m; school 500 m;
    kindergarten 300 m. One probe per building and group (``hc_fac_<group>``); a building within 300 m of a
    community service point is within 500 m and 1,000 m without probing again.
    """
    return _rows(
        conn,
        """
        SELECT district_code, GROUPING(district_code) AS is_total, count(*) AS n_res,
               count(*) FILTER (WHERE park) AS park, count(*) FILTER (WHERE greenway) AS greenway,
               count(*) FILTER (WHERE cs300) AS cs300, count(*) FILTER (WHERE cs500) AS cs500,
               count(*) FILTER (WHERE cs1000) AS cs1000, count(*) FILTER (WHERE school) AS school,
               count(*) FILTER (WHERE kindergarten) AS kindergarten
          FROM (
            SELECT s0.district_code, s0.park, s0.greenway, s0.school, s0.kindergarten, s0.cs300,
                   s0.cs300 OR EXISTS (SELECT 1 FROM hc_fac_cs f WHERE ST_DWithin(f.g, s0.c, 500)) AS cs500,
                   s0.cs300 OR EXISTS (SELECT 1 FROM hc_fac_cs f WHERE ST_DWithin(f.g, s0.c, 1000)) AS cs1000
              FROM (
                SELECT b.district_code, b.c,
                       EXISTS (SELECT 1 FROM hc_fac_park f WHERE f.area_m2 >= 2000 AND ST_DWithin(f.g, b.c, 500)
                                  AND (f.area_m2 >= 5000 OR ST_DWithin(f.g, b.c, 300))) AS park,
                       EXISTS (SELECT 1 FROM hc_fac_greenway f WHERE ST_DWithin(f.g, b.c, 1000)) AS greenway,
                       EXISTS (SELECT 1 FROM hc_fac_cs f WHERE ST_DWithin(f.g, b.c, 300)) AS cs300,
                       EXISTS (SELECT 1 FROM hc_fac_school f WHERE ST_DWithin(f.g, b.c, 500)) AS school,
                       EXISTS (SELECT 1 FROM hc_fac_kindergarten f WHERE ST_DWithin(f.g, b.c, 300)) AS kindergarten
                  FROM hc_bldg b WHERE b.residential OFFSET 0) s0) s
         GROUP BY GROUPING SETS ((district_code), ())
        """,
    )


def facility_stats(conn: Connection) -> list[dict[str, Any]]:
    """Per district: road length inside it (km, geodesic), shelter area (m²), waterlogging points.

    Roads are clipped to the district polygon; shelters and waterlogging points belong to the district
    that contains their point on surface.
    """
    return _rows(
        conn,
        """
        SELECT d.code AS district_code,
               COALESCE((SELECT sum(CASE WHEN ST_CoveredBy(r.geom, d.geom) THEN ST_Length(r.geom::geography)
                                         ELSE ST_Length(ST_Intersection(r.geom, d.geom)::geography) END)
                           FROM facility r
                          WHERE r.kind = 'road' AND r.valid_to IS NULL AND ST_Intersects(r.geom, d.geom)), 0)
                 / 1000.0 AS road_km,
               COALESCE((SELECT sum(COALESCE(s.area_m2, ST_Area(s.geom::geography)))
                           FROM facility s
                          WHERE s.kind = 'shelter' AND s.valid_to IS NULL
                            AND ST_Intersects(d.geom, ST_PointOnSurface(s.geom))), 0) AS shelter_m2,
               (SELECT count(*) FROM facility w
                 WHERE w.kind = 'waterlogging_point' AND w.valid_to IS NULL
                   AND ST_Intersects(d.geom, ST_PointOnSurface(w.geom))) AS waterlogging_points
          FROM hc_district d ORDER BY d.code
        """,
    )


def parcel_limits(conn: Connection) -> list[dict[str, Any]]:
    """Per parcel in scope: geodesic area, building footprint and floor area (buildings by centroid), limits.

    A parcel is in scope when its point on surface lies in a scope district; every parcel is when no district
    is stored (``district_code`` NULL then). A building counts in the parcel that holds its footprint's
    centroid (its bounding box overlaps the parcel's, so the GiST index finds it); its geodesic footprint
    area is computed once (``OFFSET 0`` keeps the planner from inlining it into both sums). The outline
    comes as EWKT only, the form the run's results store: a parsed GeoJSON copy of each parcel as well took
    the health check's peak memory at the 10M-building province (325,045 parcels) from 0.92 to 1.72 GiB.
    """
    return _rows(
        conn,
        """
        SELECT p.id AS parcel_id, p.code, p.land_use, d.code AS district_code,
               ST_Area(p.geom::geography) AS area_m2, p.max_density, p.max_far,
               COALESCE(s.fp_m2, 0) AS footprint_m2, COALESCE(s.gfa_m2, 0) AS gfa_m2, ST_AsEWKT(p.geom) AS ewkt
          FROM parcel p
          LEFT JOIN hc_district d ON ST_Intersects(d.geom, ST_PointOnSurface(p.geom))
          LEFT JOIN LATERAL (
                SELECT sum(fp) AS fp_m2,
                       sum(COALESCE(gfa, fp * COALESCE(storeys, GREATEST(1, round(height / 3.0))))) AS gfa_m2
                  FROM (SELECT ST_Area(b.footprint::geography) AS fp, b.gross_floor_area AS gfa, b.storeys, b.height
                          FROM building b
                         WHERE b.valid_to IS NULL AND b.footprint && p.geom
                           AND ST_Intersects(p.geom, ST_Centroid(b.footprint))
                        OFFSET 0) b) s ON true
         WHERE d.code IS NOT NULL OR NOT EXISTS (SELECT 1 FROM hc_district)
         ORDER BY p.id
        """,
    )


# --------------------------------------------------------------------------------------------- road graph
def create_road_graph(conn: Connection, speeds_kmh: dict[str, float], default_kmh: float) -> int:
    """Temp tables ``road_edge`` (id, source, target, cost s, length_m, geom) and ``road_node`` (id, geom).

    Live road centre lines are noded at every crossing by their union (``ST_UnaryUnion``: GEOS's OverlayNG
    nodes the linework and removes duplicates, keeping every input vertex and line end, as ``ST_Node`` does,
    but in 0.7 s instead of 58 s for the 57,000 roads of the 10M-building province, where ``ST_Node``'s
    iterated noder grew 145× for 10× the roads); each piece takes the fastest speed of
    the roads it lies on (by ``road_class``); cost = geodesic length ÷ speed, seconds. Returns edge count.
    """
    for name in ("road_speed", "road_piece", "road_edge", "road_node"):
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE road_speed ON COMMIT DROP AS
            SELECT * FROM unnest(CAST(:classes AS text[]), CAST(:speeds AS float8[])) AS t(road_class, kmh)
            """
        ),
        {"classes": list(speeds_kmh), "speeds": [float(v) for v in speeds_kmh.values()]},
    )
    conn.execute(
        text(
            """
            CREATE TEMP TABLE road_piece ON COMMIT DROP AS
            SELECT row_number() OVER () AS id, geom FROM (
              SELECT (ST_Dump(ST_UnaryUnion(ST_Collect(ST_Force2D(geom))))).geom AS geom
                FROM facility
               WHERE kind = 'road' AND valid_to IS NULL
                 AND GeometryType(geom) IN ('LINESTRING','MULTILINESTRING')) n
             WHERE NOT ST_IsEmpty(geom)
            """
        )
    )
    conn.execute(
        text(
            """
            CREATE TEMP TABLE road_edge ON COMMIT DROP AS
            SELECT p.id, p.geom, ST_Length(p.geom::geography) AS length_m,
                   COALESCE((SELECT max(s.kmh) FROM facility r JOIN road_speed s ON s.road_class = lower(r.road_class)
                              WHERE r.kind = 'road' AND r.valid_to IS NULL
                                AND ST_DWithin(r.geom, ST_LineInterpolatePoint(p.geom, 0.5), 1e-7)), :default_kmh)
                     AS kmh,
                   round(ST_X(ST_StartPoint(p.geom)) * 1e7)::bigint AS sx,
                   round(ST_Y(ST_StartPoint(p.geom)) * 1e7)::bigint AS sy,
                   round(ST_X(ST_EndPoint(p.geom)) * 1e7)::bigint AS ex,
                   round(ST_Y(ST_EndPoint(p.geom)) * 1e7)::bigint AS ey,
                   0::bigint AS source, 0::bigint AS target, 0::float8 AS cost
              FROM road_piece p
            """
        ),
        {"default_kmh": float(default_kmh)},
    )
    # Nearly coincident vertices (1e-14° apart, floating-point noise) can leave slivers that start and end at
    # the same node: a loop shorter than 1 m carries no route and no reach.
    conn.execute(text("DELETE FROM road_edge WHERE length_m <= 0 OR (sx = ex AND sy = ey AND length_m < 1)"))
    conn.execute(
        text(
            f"""
            CREATE TEMP TABLE road_node ON COMMIT DROP AS
            SELECT row_number() OVER () AS id, x, y, ST_SetSRID(ST_MakePoint(x / 1e7, y / 1e7), {CGCS2000}) AS geom
              FROM (SELECT sx AS x, sy AS y FROM road_edge UNION SELECT ex, ey FROM road_edge) k
            """
        )
    )
    conn.execute(text("CREATE INDEX ON road_node (x, y)"))
    conn.execute(text("CREATE INDEX ON road_node USING gist (geom)"))
    conn.execute(
        text(
            """
            UPDATE road_edge e SET source = a.id, target = b.id, cost = e.length_m / (e.kmh / 3.6)
              FROM road_node a, road_node b
             WHERE a.x = e.sx AND a.y = e.sy AND b.x = e.ex AND b.y = e.ey
            """
        )
    )
    conn.execute(text("ANALYZE road_edge"))
    conn.execute(text("ANALYZE road_node"))
    return int(conn.execute(text("SELECT count(*) FROM road_edge")).scalar_one())


def fire_station_nodes(conn: Connection) -> list[int]:
    """The road node nearest to each live fire station (by point on surface)."""
    rows = conn.execute(
        text(
            """
            SELECT DISTINCT (SELECT n.id FROM road_node n ORDER BY n.geom <-> ST_PointOnSurface(f.geom) LIMIT 1)
              FROM facility f WHERE f.kind = 'fire_station' AND f.valid_to IS NULL
            """
        )
    ).scalars()
    return [int(v) for v in rows if v is not None]


def road_edges(conn: Connection) -> list[tuple[int, int, float]]:
    """(source, target, cost seconds) of every road edge."""
    return [(int(a), int(b), float(c)) for a, b, c in conn.execute(text("SELECT source, target, cost FROM road_edge"))]


def pgrouting_available(conn: Connection) -> bool:
    """Whether the pgRouting extension is created in this database."""
    return bool(conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pgrouting'")).scalar_one())


def node_times_pgrouting(conn: Connection, start_nodes: Sequence[int], limit_s: float) -> None:
    """Temp table ``node_time`` (node, t seconds) by ``pgr_drivingDistance`` (undirected) from the start nodes."""
    conn.execute(text("DROP TABLE IF EXISTS node_time"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE node_time ON COMMIT DROP AS
            SELECT node, min(agg_cost) AS t
              FROM pgr_drivingDistance('SELECT id, source, target, cost FROM road_edge',
                                       CAST(:starts AS bigint[]), :limit, directed => false)
             GROUP BY node
            """
        ),
        {"starts": list(start_nodes), "limit": float(limit_s)},
    )
    conn.execute(text("CREATE INDEX ON node_time (node)"))


def store_node_times(conn: Connection, times: dict[int, float]) -> None:
    """Temp table ``node_time`` (node, t seconds) from times computed outside the database."""
    conn.execute(text("DROP TABLE IF EXISTS node_time"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE node_time ON COMMIT DROP AS
            SELECT * FROM unnest(CAST(:nodes AS bigint[]), CAST(:times AS float8[])) AS t(node, t)
            """
        ),
        {"nodes": list(times), "times": list(times.values())},
    )
    conn.execute(text("CREATE INDEX ON node_time (node)"))


def create_fire_reach(conn: Connection, limit_s: float) -> int:
    """Temp table ``fire_reach`` (id, g geography): the parts of road edges reached within ``limit_s`` seconds.

    An edge is reached from each end whose time is below the limit, up to the fraction the remaining time
    covers at the edge's speed (``ST_LineSubstring``).
    """
    conn.execute(text("DROP TABLE IF EXISTS fire_reach"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE fire_reach ON COMMIT DROP AS
            SELECT row_number() OVER () AS id, g FROM (
            SELECT ST_LineSubstring(e.geom, 0, LEAST(1.0, (:limit - t.t) / e.cost))::geography AS g
              FROM road_edge e JOIN node_time t ON t.node = e.source WHERE t.t < :limit AND e.cost > 0
            UNION ALL
            SELECT ST_LineSubstring(e.geom, GREATEST(0.0, 1.0 - (:limit - t.t) / e.cost), 1)::geography
              FROM road_edge e JOIN node_time t ON t.node = e.target WHERE t.t < :limit AND e.cost > 0) p
            """
        ),
        {"limit": float(limit_s)},
    )
    conn.execute(text("CREATE INDEX ON fire_reach USING gist (g)"))
    conn.execute(text("ANALYZE fire_reach"))
    return int(conn.execute(text("SELECT count(*) FROM fire_reach")).scalar_one())


REACH_CELL_DEG = 0.002
"""Side (degrees) of the grid cells that :func:`fire_coverage_counts` marks as near the reached network."""
M_PER_DEG_LAT_MIN = 110_574.0
"""The shortest degree of latitude (at the equator, WGS 84 / CGCS2000 ellipsoid), metres."""
M_PER_DEG_LON_EQUATOR = 111_320.0
"""A degree of longitude at the equator, metres; ``× cos φ`` is never longer than the ellipsoid's at φ."""
EARTH_POLAR_RADIUS_M = 6_356_752.0
"""The ellipsoid's polar radius, metres: the shortest radius, for the bulge of a great-circle edge."""


def fire_coverage_counts(conn: Connection, access_m: float) -> list[dict[str, Any]]:
    """Per district and total: buildings of ``hc_bldg`` within ``access_m`` metres of ``fire_reach``.

    A building can be within ``access_m`` of a reached piece only if its centroid lies in a grid cell
    (:data:`REACH_CELL_DEG`) that the piece's bounding box grown by ``access_m`` touches. So each piece is
    listed with those cells (``fire_reach_cell``), the buildings are hash-joined to them by their cell, and the
    geodesic test runs on those pairs only: no index probe per building (a correlated probe of ``fire_reach``'s
    GiST index cost 14–21 µs per building at 10M, the fire stage's largest cost). The growth in degrees comes
    from the shortest degree on the ellipsoid at the piece's latitudes, and the box is grown further by the most
    a great-circle edge of the piece's length can bulge poleward out of its planar box (``L² tan φ / 8R``,
    doubled, plus a metre), so no covered building is missed: the counts are those of a probe of every building
    (tested, also at 61° N, where a 9 km road bulges about 3 m).
    """
    conn.execute(text("DROP TABLE IF EXISTS fire_reach_cell"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE fire_reach_cell ON COMMIT DROP AS
            SELECT id AS piece, x, y
              FROM (SELECT id, ST_XMin(b) AS x0, ST_XMax(b) AS x1, ST_YMin(b) AS y0, ST_YMax(b) AS y1,
                           (:access + 1.0 + 2.0 * len ^ 2 / (8.0 * :r_polar)
                                * tan(radians(LEAST(89.0, GREATEST(abs(ST_YMin(b)), abs(ST_YMax(b)))))))
                               / :m_lat * 1.01 AS dy
                      FROM (SELECT id, g::geometry::box2d AS b, ST_Length(g) AS len FROM fire_reach) r) e,
                   LATERAL (SELECT dy * :m_lat / (:m_lon * cos(radians(LEAST(89.0, GREATEST(abs(y0), abs(y1)) + dy))))
                                   AS dx) w,
                   generate_series(floor((x0 - dx) / :cell)::int, floor((x1 + dx) / :cell)::int) x,
                   generate_series(floor((y0 - dy) / :cell)::int, floor((y1 + dy) / :cell)::int) y
            """
        ),
        {
            "access": float(access_m),
            "m_lat": M_PER_DEG_LAT_MIN,
            "m_lon": M_PER_DEG_LON_EQUATOR,
            "r_polar": EARTH_POLAR_RADIUS_M,
            "cell": REACH_CELL_DEG,
        },
    )
    conn.execute(text("ANALYZE fire_reach_cell"))
    return _rows(
        conn,
        """
        WITH covered AS (
            SELECT DISTINCT b.id
              FROM (SELECT id, c, floor(ST_X(p) / :cell)::int AS x, floor(ST_Y(p) / :cell)::int AS y
                      FROM (SELECT id, c, c::geometry AS p FROM hc_bldg OFFSET 0) b0) b
              JOIN fire_reach_cell k ON k.x = b.x AND k.y = b.y
              JOIN fire_reach r ON r.id = k.piece
             WHERE ST_DWithin(r.g, b.c, :access))
        SELECT b.district_code, GROUPING(b.district_code) AS is_total, count(*) AS n, count(c.id) AS covered
          FROM hc_bldg b LEFT JOIN covered c ON c.id = b.id
         GROUP BY GROUPING SETS ((b.district_code), ())
        """,
        access=float(access_m),
        cell=REACH_CELL_DEG,
    )


def fire_gaps(conn: Connection, access_m: float) -> list[dict[str, Any]]:
    """Per scope district: the area (GeoJSON, geodesic km²) farther than ``access_m`` from the reached network."""
    return _rows(
        conn,
        f"""
        WITH reach AS (
            SELECT ST_SetSRID(ST_Union(ST_Buffer(g, :access)::geometry), {CGCS2000}) AS geom FROM fire_reach
        ), gap AS (
            SELECT d.code, CASE WHEN r.geom IS NULL THEN d.geom
                                ELSE ST_CollectionExtract(ST_Difference(d.geom, r.geom), 3) END AS geom
              FROM hc_district d CROSS JOIN reach r
        )
        SELECT code AS district_code, ST_AsGeoJSON(geom, 7)::json AS geometry, ST_AsEWKT(geom) AS ewkt,
               ST_Area(geom::geography) / 1e6 AS area_km2
          FROM gap WHERE NOT ST_IsEmpty(geom)
        """,
        access=float(access_m),
    )


# --------------------------------------------------------------------------------------------- safety
def gas_proximity(conn: Connection, distances_m: dict[str, float], default_m: float) -> list[dict[str, Any]]:
    """Buildings and manholes closer (metres) to a live gas pipe than its pressure class allows.

    Distances are measured in the Gauss–Krüger zone of the building or manhole (:func:`gk_srid_sql`):
    PostGIS ``geography`` distance between nearly parallel edges metres apart can return 0, so the
    projected zone is the exact measure here. One row per (feature, pipe) pair in breach: kind
    ('building' | 'manhole'), feature id, pipe id, pressure class, required and actual distance, GeoJSON.
    """
    return _rows(
        conn,
        f"""
        WITH req AS (SELECT * FROM unnest(CAST(:classes AS text[]), CAST(:dists AS float8[])) AS t(pc, d)),
        pipe AS (
            SELECT p.id, p.pressure_class, p.geom, COALESCE(req.d, :default) AS required
              FROM facility p LEFT JOIN req ON req.pc = lower(p.pressure_class)
             WHERE p.kind = 'pipe_gas' AND p.valid_to IS NULL),
        pairs AS (
            SELECT 'building' AS feature_kind, b.id AS feature_id, b.name, pipe.id AS pipe_id,
                   pipe.pressure_class, pipe.required AS required_m,
                   ST_Distance(ST_Transform(pipe.geom, {gk_srid_sql("b.footprint")}),
                               ST_Transform(b.footprint, {gk_srid_sql("b.footprint")})) AS distance_m,
                   b.footprint AS geom
              FROM pipe JOIN building b
                ON b.valid_to IS NULL AND ST_DWithin(b.footprint, pipe.geom, pipe.required * :deg_per_m)
            UNION ALL
            SELECT 'manhole', m.id, m.name, pipe.id, pipe.pressure_class, pipe.required,
                   ST_Distance(ST_Transform(pipe.geom, {gk_srid_sql("m.geom")}),
                               ST_Transform(m.geom, {gk_srid_sql("m.geom")})),
                   m.geom
              FROM pipe JOIN facility m
                ON m.kind = 'manhole' AND m.valid_to IS NULL
               AND ST_DWithin(m.geom, pipe.geom, pipe.required * :deg_per_m))
        SELECT feature_kind, feature_id, name, pipe_id, pressure_class, required_m, distance_m,
               ST_AsGeoJSON(geom, 7)::json AS geometry
          FROM pairs WHERE distance_m <= required_m
         ORDER BY 1, 2, 4
        """,
        classes=list(distances_m),
        dists=[float(v) for v in distances_m.values()],
        default=float(default_m),
        deg_per_m=DEG_PER_M_BOUND,
    )


def gk_srid_sql(geom: str) -> str:
    """SQL expression: EPSG code (4534–4554) of the CGCS2000 3-degree Gauss–Krüger zone of ``geom``'s centroid.

    Same rule as :func:`cim.crs.gk_zone_epsg`: zone = floor((lon + 1.5) / 3), EPSG = 4534 + zone − 25.
    """
    return f"(4509 + floor((ST_X(ST_Centroid({geom})) + 1.5) / 3.0)::int)"


def dangerous_buildings(conn: Connection, district: str | None, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Live buildings whose safety class is in ``classes``, with footprint GeoJSON (lon/lat)."""
    return _rows(
        conn,
        """
        SELECT b.id, b.name, b.address, b.use, b.height, b.storeys, b.year_built, b.safety_class, b.district_code,
               ST_AsGeoJSON(b.footprint, 7)::json AS geometry
          FROM building b
         WHERE b.valid_to IS NULL AND b.safety_class = ANY(:classes)
           AND (CAST(:district AS text) IS NULL OR b.district_code = CAST(:district AS text))
         ORDER BY b.id
        """,
        classes=list(classes),
        district=district,
    )


def features_intersecting(conn: Connection, ewkt: str) -> dict[str, list[dict[str, Any]]]:
    """Live buildings and facilities intersecting a geometry given as EWKT (EPSG:4490)."""
    buildings = _rows(
        conn,
        """
        SELECT b.id, b.name, b.use, b.base_height FROM building b
         WHERE b.valid_to IS NULL AND ST_Intersects(b.footprint, ST_GeomFromEWKT(:g)) ORDER BY b.id
        """,
        g=ewkt,
    )
    facilities = _rows(
        conn,
        """
        SELECT f.id, f.kind, f.name FROM facility f
         WHERE f.valid_to IS NULL AND f.kind <> 'water_body' AND ST_Intersects(f.geom, ST_GeomFromEWKT(:g))
         ORDER BY f.id
        """,
        g=ewkt,
    )
    return {"buildings": buildings, "facilities": facilities}


def geodesic_area_km2(conn: Connection, ewkt: str) -> float:
    """Geodesic area (km²) of an EPSG:4490 geometry given as EWKT."""
    return float(conn.execute(text("SELECT ST_Area(ST_GeomFromEWKT(:g)::geography) / 1e6"), {"g": ewkt}).scalar_one())


def water_bodies_wkb(conn: Connection) -> list[bytes]:
    """WKB (EPSG:4490) of every live water body."""
    return [
        bytes(r[0])
        for r in conn.execute(
            text("SELECT ST_AsBinary(geom) FROM facility WHERE kind = 'water_body' AND valid_to IS NULL")
        )
    ]


# --------------------------------------------------------------------------------------------- scope
def district_geometries(conn: Connection) -> dict[str, str]:
    """EWKT of each district in ``hc_district`` by code."""
    return {str(c): str(g) for c, g in conn.execute(text("SELECT code, ST_AsEWKT(geom) FROM hc_district"))}
