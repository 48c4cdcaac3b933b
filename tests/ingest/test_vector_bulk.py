"""cim.db.bulk: binary COPY from column arrays round-trips every supported type, NULLs and upserts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely
from shapely.affinity import rotate
from sqlalchemy import text

from cim.db.bulk import CopyColumn, copy_columns, upsert_columns
from ingest.vector_geometry import ewkb


def test_copy_columns_round_trips_types_and_nulls(engine):
    geoms = np.array([shapely.box(114.3, 30.5, 114.31, 30.51), shapely.Point(114.3, 30.5), shapely.box(0, 0, 1, 1)])
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE t (id serial, g geometry(Geometry, 4490), i2 int2, i8 int8, f float8, "
                "b bool, s text, j jsonb, k text)"
            )
        )
        n = copy_columns(
            conn,
            "t",
            [
                CopyColumn("g", "geometry", ewkb(geoms, multi=True)),
                CopyColumn("i2", "int2", np.array([1, -2, 3]), null=np.array([False, False, True])),
                CopyColumn("i8", "int8", np.array([2**40, 0, -1])),
                CopyColumn("f", "float8", np.array([1.5, np.nan, -0.25])),
                CopyColumn("b", "bool", np.array([True, False, True])),
                CopyColumn("s", "text", pa.array(["汉字", None, ""])),
                CopyColumn("j", "jsonb", pa.array(['{"名": 1}', None, "[]"])),
                CopyColumn("k", "text", "same"),
            ],
        )
        rows = conn.execute(text("SELECT GeometryType(g), ST_SRID(g), i2, i8, f, b, s, j, k FROM t ORDER BY id")).all()
    assert n == 3
    assert rows[0] == ("MULTIPOLYGON", 4490, 1, 2**40, 1.5, True, "汉字", {"名": 1}, "same")
    assert rows[1] == ("POINT", 4490, -2, 0, None, False, None, None, "same")
    assert rows[2][2] is None and rows[2][4] == -0.25 and rows[2][6] == "" and rows[2][7] == []


def test_upsert_columns_updates_on_key(engine):
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE u (id serial, code text UNIQUE, v float8)"))
        upsert_columns(
            conn,
            "u",
            [CopyColumn("code", "text", pa.array(["a", "b"])), CopyColumn("v", "float8", np.array([1.0, 2.0]))],
            key="code",
        )
        upsert_columns(
            conn,
            "u",
            [CopyColumn("code", "text", pa.array(["b", "c"])), CopyColumn("v", "float8", np.array([20.0, 3.0]))],
            key="code",
        )
        rows = conn.execute(text("SELECT code, v FROM u ORDER BY code")).all()
    assert rows == [("a", 1.0), ("b", 20.0), ("c", 3.0)]


def test_simple_polygon_fast_path_writes_the_same_ewkb_as_shapely():
    from cim import crs as cimcrs
    from ingest import vector_geometry as vg

    x0, y0 = cimcrs.transform_xy([114.3], [30.58], 4490, 4547)
    xs = x0[0] + np.arange(50) * 40.0
    boxes = shapely.box(xs, y0[0], xs + 20, y0[0] + 12)
    geoms = np.array([rotate(g, float(i), origin="centroid") for i, g in enumerate(boxes)], dtype=object)
    simple = vg.simple_polygons(pa.array(list(shapely.to_wkb(geoms)), pa.binary()))
    assert simple is not None
    source = cimcrs.parse_crs("EPSG:4547")
    coords, used = vg.transform_coordinates(simple.coords, source)
    moved = simple.with_coords(coords)
    expected = geoms.copy()
    assert vg.to_cgcs2000(expected, source) == used
    assert moved.ewkb().equals(vg.ewkb(expected, multi=True))
    with_hole = shapely.Polygon(shapely.box(0, 0, 10, 10).exterior.coords, [shapely.box(2, 2, 3, 3).exterior.coords])
    for other in ([with_hole], [shapely.MultiPolygon([shapely.box(0, 0, 1, 1)])], [shapely.Point(1, 2)]):
        assert vg.simple_polygons(pa.array(list(shapely.to_wkb(np.array(other, dtype=object))), pa.binary())) is None


def test_convex_quads_skip_geos_only_when_certainly_valid():
    from ingest import vector_geometry as vg

    def simple(geoms):
        return vg.simple_polygons(pa.array(list(shapely.to_wkb(np.array(geoms, dtype=object))), pa.binary()))

    quads = [rotate(shapely.box(114.3 + i * 1e-3, 30.5, 114.3002 + i * 1e-3, 30.5001), 7.0 * i) for i in range(20)]
    ring = simple(quads).convex_quads()
    assert ring is not None
    assert np.array_equal(vg.ring_bounds(ring), shapely.bounds(np.array(quads, dtype=object)))
    assert np.array_equal(vg.ring_areas(ring), shapely.area(np.array(quads, dtype=object)))
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    spike = shapely.Polygon([(0, 0), (2, 0), (1, 0), (1, 1), (0, 0)])
    pentagon = shapely.Polygon([(0, 0), (2, 0), (2, 1), (1, 2), (0, 1), (0, 0)])
    for other in (bowtie, spike, pentagon):
        assert simple([*quads, other]).convex_quads() is None
