"""Encoding IFC element meshes as PostGIS TINs and loading them with COPY.

Every element's ``mesh`` is an EWKB ``TIN Z`` in EPSG:4479 (geocentric CGCS2000 metres), encoded with
:mod:`cim.db.tin` in one go for a whole batch of elements.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import shapely
from numpy.typing import NDArray

from cim.crs import CGCS2000
from cim.db.models import ELEMENT_ATTRIBUTES

ELEMENT_COLUMNS = (
    *ELEMENT_ATTRIBUTES,
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
