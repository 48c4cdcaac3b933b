"""The TIN record layout of ``element.mesh``: PostGIS ``TIN Z`` as (E)WKB, encoded and decoded with NumPy.

A TIN is a header (byte order, type, [SRID,] triangle count) and fixed-size triangle records of 109 bytes:
byte order, type, one ring, four points (the first repeated to close it), little-endian float64 X/Y/Z in
geocentric CGCS2000 metres (EPSG:4479). The ingest writes them (:func:`tin_ewkb`); the tile builder reads
them back (:func:`tin_triangles`). One layout, defined here.
"""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from cim.crs import CGCS2000_GEOCENTRIC

_EWKB_Z = 0x80000000
_EWKB_SRID = 0x20000000
_WKB_TIN = 16
_WKB_TRIANGLE = 17

TRIANGLE_RECORD = np.dtype(
    [("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xyz", "<f8", (4, 3))], align=False
)
"""One WKB Triangle Z: little-endian, one closed ring of four points (109 bytes)."""


def triangle_records(corners: NDArray[np.float64]) -> NDArray[np.void]:
    """WKB Triangle Z records for triangles given as (T, 3, 3) corner coordinates."""
    records = np.empty(len(corners), dtype=TRIANGLE_RECORD)
    records["order"] = 1
    records["type"] = _WKB_TRIANGLE | _EWKB_Z
    records["rings"] = 1
    records["points"] = 4
    records["xyz"][:, :3] = corners
    records["xyz"][:, 3] = corners[:, 0]
    return records


def tin_ewkb(records: NDArray[np.void], srid: int = CGCS2000_GEOCENTRIC) -> bytes:
    """EWKB of a TIN Z (with SRID) made of the given triangle records."""
    header = struct.pack("<BIII", 1, _WKB_TIN | _EWKB_Z | _EWKB_SRID, srid, len(records))
    return header + records.tobytes()


def tin_triangles(wkb: bytes) -> NDArray[np.float64]:
    """Decode a TIN Z (ISO WKB or EWKB with SRID, little-endian) to triangle corners, shape (t, 3, 3)."""
    if len(wkb) < 9:
        return np.zeros((0, 3, 3))
    if wkb[0] != 1:
        raise ValueError("TIN WKB must be little-endian (NDR)")
    (kind,) = struct.unpack_from("<I", wkb, 1)
    header = 13 if kind & _EWKB_SRID else 9
    (count,) = struct.unpack_from("<I", wkb, header - 4)
    records = np.frombuffer(wkb, dtype=TRIANGLE_RECORD, count=int(count), offset=header)
    return np.ascontiguousarray(records["xyz"][:, :3])
