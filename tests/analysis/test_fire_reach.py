"""Fire reach at scale: the road graph's noding and the coverage count's cell filter give what the plain forms
give (``ST_Node``; a probe of every building), on messy road networks and at a high latitude."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, text

from cim.analysis.fire import ROAD_SPEEDS_KMH, compute_fire_reach
from cim.db import analysis_queries as q
from tests import factories as f
from tests.analysis.local import Local

NOISE = 3e-15
"""Degrees: the floating-point noise between vertices that OSM-derived roads share."""


def _messy_roads(conn: Connection, ds: int, frame: Local) -> None:
    """A grid with crossings, a collinear overlap, a road end-to-end with another, a loop, noisy shared vertices."""
    for i in range(5):
        f.facility(conn, ds, "road", frame.line((-2000, i * 500.0), (2000, i * 500.0)), road_class="arterial")
        x = i * 700.0 - 1400
        f.facility(conn, ds, "road", frame.line((x, -300), (x, 2300)), road_class="branch")
    f.facility(conn, ds, "road", frame.line((-500, 0), (800, 0)), road_class="secondary")  # overlaps the arterial
    f.facility(conn, ds, "road", frame.line((2000, 1000), (3500, 1000)), road_class="residential")  # end to end
    f.facility(conn, ds, "road", frame.line((2500, 1000), (2800, 1300), (2200, 1300), (2500, 1000)))  # a loop
    a, b = frame.pt(-1400, 500), frame.pt(-1900, 900)
    noisy = [(a[0] + NOISE, a[1] - NOISE), b]  # starts "at" the crossing, 1e-15° off
    conn.execute(
        text("INSERT INTO facility (kind, geom, dataset_id) VALUES ('road', ST_GeomFromText(:wkt, 4490), :ds)"),
        {"wkt": f"LINESTRING({noisy[0][0]!r} {noisy[0][1]!r}, {noisy[1][0]!r} {noisy[1][1]!r})", "ds": ds},
    )


def _node_pieces(conn: Connection) -> list[tuple[int, int, int, int, float]]:
    """Pieces as ST_Node cuts them: rounded end points (1e-7°) and length, sorted (direction-free)."""
    rows = conn.execute(
        text(
            """
            SELECT round(ST_X(ST_StartPoint(g)) * 1e7), round(ST_Y(ST_StartPoint(g)) * 1e7),
                   round(ST_X(ST_EndPoint(g)) * 1e7), round(ST_Y(ST_EndPoint(g)) * 1e7), ST_Length(g::geography)
              FROM (SELECT (ST_Dump(ST_Node(ST_Collect(ST_Force2D(geom))))).geom AS g
                      FROM facility WHERE kind = 'road' AND valid_to IS NULL) n
            """
        )
    ).all()
    return sorted(_key(*r) for r in rows if r[4] > 0 and not (r[0:2] == r[2:4] and r[4] < 1))


def _key(sx: float, sy: float, ex: float, ey: float, length: float) -> tuple[int, int, int, int, float]:
    a, b = (int(sx), int(sy)), (int(ex), int(ey))
    lo, hi = min(a, b), max(a, b)
    return (*lo, *hi, round(float(length), 3))


@pytest.mark.parametrize("lat", [30.58, 61.0])
def test_union_noding_gives_the_pieces_of_st_node(engine: Engine, lat: float) -> None:
    frame = Local(114.30, lat)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        _messy_roads(conn, ds, frame)
        edges = q.create_road_graph(conn, ROAD_SPEEDS_KMH, 25.0)
        ours = sorted(_key(*r) for r in conn.execute(text("SELECT sx, sy, ex, ey, length_m FROM road_edge")).all())
        assert edges == len(ours) > 40
        assert ours == _node_pieces(conn)
        loops = conn.execute(text("SELECT count(*) FROM road_edge WHERE source = target")).scalar_one()
        assert loops == 1  # the loop road; the noise slivers are gone
        conn.rollback()


@pytest.mark.parametrize("lat", [30.58, 61.0])
def test_cell_filtered_coverage_counts_equal_a_probe_of_every_building(engine: Engine, lat: float) -> None:
    """Buildings every 37 m across the network, many just inside or outside the access distance."""
    frame = Local(114.30, lat)
    rng = np.random.default_rng(7)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.district(conn, "A", frame.box(0, 1000, 9000, 6000), 1000)
        _messy_roads(conn, ds, frame)
        f.facility(conn, ds, "fire_station", frame.point(-1400, 10))
        footprints = [
            frame.box(x + dx, y + dy, 6, 6).wkt
            for x in np.arange(-2600.0, 3800.0, 37.0)
            for y in np.arange(-600.0, 2700.0, 37.0)
            for dx, dy in [rng.uniform(-3, 3, 2)]
        ]
        f.building(conn, ds, frame.box(0, 0, 6, 6), district_code="A")  # one through the model's defaults
        conn.execute(
            text(
                """
                INSERT INTO building (footprint, height, dataset_id, district_code)
                SELECT ST_Multi(ST_GeomFromText(w, 4490)), 12, :ds, 'A' FROM unnest(CAST(:wkts AS text[])) w
                """
            ),
            {"ds": ds, "wkts": footprints},
        )
        q.create_district_scope(conn, None)
        q.create_building_scope(conn)
        reach = compute_fire_reach(conn, limit_s=120.0)
        assert reach.reached_pieces > 10
        for access in (0.0, 20.0, 150.0, 400.0):
            counts = {r["district_code"]: (r["n"], r["covered"]) for r in q.fire_coverage_counts(conn, access)}
            every = conn.execute(
                text(
                    """
                    SELECT count(*), count(*) FILTER (WHERE EXISTS (
                               SELECT 1 FROM fire_reach r WHERE ST_DWithin(r.g, b.c, :access)))
                      FROM hc_bldg b
                    """
                ),
                {"access": access},
            ).one()
            assert counts[None] == counts["A"] == tuple(every)
            if access == 150.0:
                assert 0 < every[1] < every[0]
        conn.rollback()
