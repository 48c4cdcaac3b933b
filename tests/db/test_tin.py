"""One TIN record layout: what the IFC ingest writes, the tile builder reads back."""

from __future__ import annotations

import struct

import numpy as np
from sqlalchemy import Engine

from cim.db.tin import tin_ewkb, tin_triangles, triangle_records
from tests.sql import one


def test_a_tin_written_by_the_ingest_is_read_by_postgis_and_back_unchanged(engine: Engine) -> None:
    corners = np.random.default_rng(1).normal(size=(5, 3, 3)) * 1e6
    ewkb = tin_ewkb(triangle_records(corners))
    np.testing.assert_array_equal(tin_triangles(ewkb), corners)
    row = one(
        engine,
        "SELECT GeometryType(g), ST_SRID(g), ST_NumGeometries(g), ST_AsBinary(g) "
        "FROM (SELECT CAST(:w AS geometry) g) s",
        w=ewkb,
    )
    assert (row[0], row[1], row[2]) == ("TIN", 4479, 5)
    iso = bytes(row[3])
    np.testing.assert_array_equal(tin_triangles(iso), corners)


def test_an_empty_or_big_endian_tin_is_handled() -> None:
    assert tin_triangles(b"").shape == (0, 3, 3)
    big_endian = b"\x00" + struct.pack(">II", 1016, 0)
    try:
        tin_triangles(big_endian)
    except ValueError as exc:
        assert "little-endian" in str(exc)
    else:
        raise AssertionError("a big-endian TIN was accepted")
