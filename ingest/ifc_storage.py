"""Encoding IFC element meshes as PostGIS TINs and loading them with COPY.

Every element's ``mesh`` is an EWKB ``TIN Z`` in EPSG:4479 (geocentric CGCS2000 metres) whose triangles
are fixed-size records (109 bytes: byte order, type, 1 ring, 4 points incl. the closing one), built with
NumPy in one go for a whole batch of elements.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely
from numpy.typing import NDArray

from cim.crs import CGCS2000, CGCS2000_GEOCENTRIC

_EWKB_Z = 0x80000000
_EWKB_SRID = 0x20000000
_WKB_TIN = 16
_WKB_TRIANGLE = 17

TRIANGLE_RECORD = np.dtype(
    [("order", "u1"), ("type", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xyz", "<f8", (4, 3))], align=False
)
"""One WKB Triangle Z: little-endian, one closed ring of four points (109 bytes)."""

ELEMENT_COLUMNS = (
    "global_id",
    "ifc_class",
    "name",
    "type_name",
    "storey",
    "material",
    "color",
    "properties",
    "mesh",
    "triangle_count",
    "location",
    "extent",
    "min_height",
    "max_height",
    "building_id",
    "dataset_id",
)


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


@dataclass
class ElementRow:
    """What the database gets for one element besides its geometry columns."""

    global_id: str
    ifc_class: str
    name: str | None
    type_name: str | None
    storey: str | None
    material: str | None
    color_json: str | None
    properties_json: str
    building_id: int | None


def batch_geometry_columns(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    height: NDArray[np.float64],
    vertex_offsets: NDArray[np.int64],
) -> tuple[list[str], list[str], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per element: hex EWKB location (PointZ, bbox centre) and extent (bbox polygon), EPSG:4490.

    Returns (locations, extents, min_height, max_height, bboxes (n, 4) as west, south, east, north).
    """
    starts = vertex_offsets[:-1]
    west, east = np.minimum.reduceat(lon, starts), np.maximum.reduceat(lon, starts)
    south, north = np.minimum.reduceat(lat, starts), np.maximum.reduceat(lat, starts)
    low, high = np.minimum.reduceat(height, starts), np.maximum.reduceat(height, starts)
    points = shapely.points((west + east) / 2, (south + north) / 2, (low + high) / 2)
    boxes = shapely.box(west, south, east, north)
    points = shapely.set_srid(points, CGCS2000)
    boxes = shapely.set_srid(boxes, CGCS2000)
    locations = shapely.to_wkb(points, hex=True, output_dimension=3, include_srid=True)
    extents = shapely.to_wkb(boxes, hex=True, output_dimension=2, include_srid=True)
    bboxes = np.column_stack([west, south, east, north])
    return list(locations), list(extents), low, high, bboxes


def element_hull_polygons(
    lon: NDArray[np.float64], lat: NDArray[np.float64], vertex_offsets: NDArray[np.int64]
) -> NDArray[np.object_]:
    """2D convex hull of each element's vertices (lon/lat degrees), one shapely geometry per element."""
    counts = np.diff(vertex_offsets)
    index = np.repeat(np.arange(len(counts)), counts)
    multipoints = shapely.multipoints(np.column_stack([lon, lat]), indices=index)
    hulls: NDArray[np.object_] = shapely.convex_hull(multipoints)
    return hulls


class ElementCopy:
    """A COPY of element rows into the ``element`` table on the ingest's own transaction."""

    def __init__(self, cursor: psycopg.Cursor[Any], dataset_id: int) -> None:
        self._context = cursor.copy(f"COPY element ({', '.join(ELEMENT_COLUMNS)}) FROM STDIN")
        self._copy = self._context.__enter__()
        self.dataset_id = dataset_id
        self.rows = 0

    def write(
        self,
        rows: Sequence[ElementRow],
        meshes: Sequence[bytes],
        triangle_counts: Sequence[int],
        locations: Sequence[str],
        extents: Sequence[str],
        low: NDArray[np.float64],
        high: NDArray[np.float64],
    ) -> None:
        """Write one batch of elements (meshes as EWKB bytes, the rest as hex EWKB / plain values)."""
        for i, row in enumerate(rows):
            self._copy.write_row(
                (
                    row.global_id,
                    row.ifc_class,
                    row.name,
                    row.type_name,
                    row.storey,
                    row.material,
                    row.color_json,
                    row.properties_json,
                    meshes[i].hex(),
                    int(triangle_counts[i]),
                    locations[i],
                    extents[i],
                    float(low[i]),
                    float(high[i]),
                    row.building_id,
                    self.dataset_id,
                )
            )
        self.rows += len(rows)

    def close(self) -> None:
        """Finish the COPY (the server checks every row now)."""
        self._context.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        """End the COPY with a failure so the connection can roll back (never leaves it mid-COPY)."""
        # The original error is what matters; the server has dropped the COPY either way.
        with contextlib.suppress(psycopg.Error):
            self._context.__exit__(type(exc), exc, exc.__traceback__)
