"""cim.db.bulk: binary COPY from column arrays round-trips every supported type, NULLs and upserts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely
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
