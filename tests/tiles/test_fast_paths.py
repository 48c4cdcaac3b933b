"""The tiler's hand-written fast paths give what the general paths give: footprint rings read straight from
WKB, the quadtree sorted once by Z-order, parents' top rows by partition, point columns read over several
connections and leaf rows read by their cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest
import shapely
from sqlalchemy import Engine

from tests.tiles.city import City, make_city
from tiles import geometry as geo
from tiles import partition, source
from tiles.build import _top


def _triangles(mesh: geo.Mesh) -> list[tuple[float, ...]]:
    """Every triangle (its feature and rounded corners), in a canonical order."""
    tri = mesh.indices.reshape(-1, 3)
    return sorted(
        (int(mesh.feature[t[0]]), *np.round(mesh.positions[t].ravel(), 6).tolist()) for t in tri
    )  # fmt: skip


MESSY = [
    shapely.box(114.0, 30.0, 114.001, 30.001),  # polygon
    shapely.MultiPolygon([shapely.box(114.002, 30.0, 114.003, 30.002)]),  # one-part multipolygon
    shapely.Polygon(  # a hole
        [(114.0, 30.01), (114.004, 30.01), (114.004, 30.014), (114.0, 30.014)],
        [[(114.001, 30.011), (114.001, 30.012), (114.002, 30.012), (114.002, 30.011)]],
    ),
    shapely.MultiPolygon([shapely.box(114.0, 30.02, 114.001, 30.021), shapely.box(114.005, 30.02, 114.006, 30.021)]),
    shapely.Polygon([(114.0, 30.03, 5), (114.001, 30.03, 5), (114.001, 30.031, 5), (114.0, 30.03, 5)]),  # Z
    shapely.Polygon([(114.0, 30.04), (114.002, 30.04), (114.001, 30.041), (114.002, 30.042), (114.0, 30.042)]),
    shapely.box(114.0, 30.05, 114.001, 30.051),  # written big-endian below
    shapely.Polygon(),  # empty
    shapely.LineString([(114.0, 30.06), (114.001, 30.06)]),  # not polygonal
]


def test_rings_from_wkb_match_shapely_for_messy_footprints() -> None:
    wkbs = [shapely.to_wkb(g) for g in MESSY]
    wkbs[6] = shapely.to_wkb(MESSY[6], byte_order=0)
    fast = geo.rings_from_wkb(wkbs)
    general = geo.rings_of(np.array(MESSY, dtype=object))
    assert sorted(fast.poly_feat.tolist()) == sorted(general.poly_feat.tolist()) == [0, 1, 2, 3, 3, 4, 5, 6]
    base = np.linspace(0.0, 8.0, len(MESSY))
    top = base + 10.0
    via_wkb = geo.extrude(fast, base, top)
    via_shapely = geo.extrude(np.array(MESSY, dtype=object), base, top)
    assert len(via_wkb.indices) > 0
    assert _triangles(via_wkb) == _triangles(via_shapely)


def test_rings_from_wkb_read_simple_footprints_without_shapely(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("simple footprints must not be parsed by shapely")

    monkeypatch.setattr(shapely, "from_wkb", refuse)
    rng = np.random.default_rng(3)
    boxes = [shapely.box(x, y, x + 1e-4, y + 2e-4) for x, y in rng.uniform((114, 30), (115, 31), (50, 2))]
    rings = geo.rings_from_wkb([shapely.to_wkb(b) for b in boxes])
    assert rings.poly_feat.tolist() == list(range(50))
    np.testing.assert_array_equal(rings.coords, np.concatenate([shapely.get_coordinates(b) for b in boxes]))


def test_quadtree_holds_each_point_once_inside_its_cell_within_capacity() -> None:
    rng = np.random.default_rng(7)
    lon = np.r_[rng.uniform(108.3, 116.1, 20_000), np.full(500, 114.3)]  # and a pile on one spot
    lat = np.r_[rng.uniform(29.0, 33.3, 20_000), np.full(500, 30.58)]
    weight = np.ones(len(lon))
    root = partition.quadtree(lon, lat, weight, 300.0)
    leaves = [n for n in root.walk() if not n.children]
    held = np.concatenate([n.idx for n in leaves])
    assert np.array_equal(np.sort(held), np.arange(len(lon)))
    for n in leaves:
        w, s, e, north = partition.cell_bounds(n.z, n.x, n.y)
        assert ((lon[n.idx] >= w) & (lon[n.idx] < e) & (lat[n.idx] >= s) & (lat[n.idx] < north)).all()
        assert weight[n.idx].sum() <= 300.0 or n.z == partition.MAX_LEVEL or len(n.idx) == 1
    for n in root.walk():
        for child in n.children:
            assert child.z == n.z + 1 and (child.x >> 1, child.y >> 1) == (n.x, n.y)


def test_top_takes_what_a_stable_sort_takes() -> None:
    rng = np.random.default_rng(11)
    for n in (0, 10, 250, 251, 5_000):
        values = rng.integers(0, 40, n).astype(np.float64)  # many ties
        expected = np.sort(np.argsort(-values, kind="stable")[:250])
        assert np.array_equal(np.flatnonzero(_top(values, 250)), expected)


@pytest.fixture
def city(engine: Engine, tmp_path: Path) -> City:
    return make_city(engine, tmp_path)


def test_point_columns_read_over_several_connections_equal_one_reader(
    engine: Engine, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.connect() as conn:
        one = source.read_building_points(conn)
        monkeypatch.setattr(source, "NUMERIC_SPLIT_FROM", 1)
        monkeypatch.setattr(source, "NUMERIC_PAGE_ROWS", 7)  # several windows per reader
        split = source.read_building_points(conn)
    assert len(one) == len(city.building_ids) > 14
    assert np.array_equal(one["id"], np.sort(np.asarray(city.building_ids)))
    for name in ("id", "cx", "cy", "importance"):
        np.testing.assert_array_equal(one[name], split[name])


def test_leaf_rows_read_by_cell_are_the_rows_read_by_id(engine: Engine, city: City, db_url: str) -> None:
    with engine.connect() as conn:
        points = source.read_building_points(conn)
    ids = points["id"]
    west, south = points["cx"].min() - 1e-3, points["cy"].min() - 1e-3
    east, north = points["cx"].max() + 1e-3, points["cy"].max() + 1e-3
    with psycopg.connect(db_url) as raw:
        by_id = source.fetch_buildings(raw, ids)
        by_cell = source.fetch_buildings_in_cell(raw, (west, south, east, north), ids)
        # A cell that misses some of the ids (their points on its edge, say): those are read by id.
        half = (west, south, float(np.median(points["cx"])), north)
        partly = source.fetch_buildings_in_cell(raw, half, ids[::2])
        # Buildings of the cell that are not asked for (drawn by a neighbour) are left out.
        fewer = source.fetch_buildings_in_cell(raw, (west, south, east, north), ids[:3])
    assert sorted(by_cell["id"].tolist()) == sorted(by_id["id"].tolist()) == sorted(ids.tolist())
    assert sorted(partly["id"].tolist()) == sorted(ids[::2].tolist())
    assert sorted(fewer["id"].tolist()) == sorted(ids[:3].tolist())
    row = {int(i): k for k, i in enumerate(by_id["id"])}
    for k, i in enumerate(by_cell["id"]):
        assert by_cell["wkb"][k] == by_id["wkb"][row[int(i)]]
        assert by_cell["use"][k] == by_id["use"][row[int(i)]]
