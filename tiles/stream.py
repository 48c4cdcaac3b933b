"""Streaming a large tileset build by partition: which grid cells, and the rows of each.

A build of more rows than fit comfortably in one process is cut into grid cells of :mod:`tiles.partition`
(the leaves of a coarse quadtree over the rows counted per cell in the database), each read with one bbox
query when its turn comes; :func:`tiles.build.build_tileset` tiles each into its cell of the coarse tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from tiles import classes, partition
from tiles.classes import TileClass
from tiles.options import TilingOptions
from tiles.source import Columns

COUNT_LEVEL = 12
"""Grid level at which a streamed build counts its rows (cells of 180°/2¹², about 5 km): each partition is
one grid cell, a union of these."""


@dataclass
class Stream:
    """A build streamed by partition: the coarse quadtree whose leaves are the partitions (grid cells read
    one at a time), the classes read per partition (they count their rows in SQL) and the rows of the
    others (small: read once, each row with its home point, its owner's when it has one)."""

    coarse: partition.Node
    counted: list[TileClass]
    whole: dict[str, tuple[Columns, NDArray[np.float64], NDArray[np.float64]]]
    total: int


def stream_plan(conn: Connection, content: list[TileClass], tiling: TilingOptions, zeta: float) -> Stream | None:
    """How to stream a build too large to hold whole, or None: hold it whole (a bbox build, no class that
    counts its rows, at most ``tiling.partition_rows`` counted rows, or an owner that cannot be looked up).

    The partitions are the leaves of a quadtree over the rows counted per cell at :data:`COUNT_LEVEL`, with
    capacity ``partition_rows`` (at least the leaf capacity): its inner nodes are heavier than a leaf tile,
    so the tile quadtree of the whole build splits them too, and each partition's own quadtree is the
    build's below that cell. The tree is the same as held whole; memory follows the partition size.
    """
    if tiling.bbox is not None:
        return None
    counts = {c.layer: c.cell_counts(conn, COUNT_LEVEL) for c in content}
    counted = [c for c in content if counts[c.layer] is not None]
    cells = [v for v in counts.values() if v is not None]
    counted_rows = sum(int(v[2].sum()) for v in cells)
    if counted_rows <= tiling.partition_rows:
        return None
    whole: dict[str, tuple[Columns, NDArray[np.float64], NDArray[np.float64]]] = {}
    for c in content:
        if counts[c.layer] is None:
            cols = c.read(conn, None)
            lon, lat, _ = (np.array(a, dtype=np.float64) for a in c.points(cols, zeta))
            whole[c.layer] = (cols, lon, lat)
    for c in content:
        owned = c.layer in whole and c.owner is not None and len(whole[c.layer][0]) > 0
        if owned and not _owner_homes(conn, c, counted, whole, zeta):
            return None
    for cols, lon, lat in whole.values():
        if len(cols):
            cells.append((*partition.cell_index(lon, lat, COUNT_LEVEL), np.ones(len(cols), np.int64)))
    x, y, n = (np.concatenate([c[i] for c in cells]) for i in range(3))
    keys, inverse = np.unique(np.stack([x, y]), axis=1, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=n).astype(np.float64)
    size = partition.cell_size(COUNT_LEVEL)
    lon, lat = -180.0 + (keys[0] + 0.5) * size, -90.0 + (keys[1] + 0.5) * size
    coarse = partition.quadtree(lon, lat, weight, max(float(tiling.partition_rows), tiling.leaf_capacity))
    if not coarse.children:
        return None
    return Stream(coarse, counted, whole, counted_rows + sum(len(v[0]) for v in whole.values()))


def _owner_homes(
    conn: Connection,
    c: TileClass,
    counted: list[TileClass],
    whole: dict[str, tuple[Columns, NDArray[np.float64], NDArray[np.float64]]],
    zeta: float,
) -> bool:
    """Move the home point of each of ``c``'s rows (held whole) to its owner's, so that they land in the
    owner's partition; False when the owner's rows cannot be looked up by id."""
    cols, lon, lat = whole[c.layer]
    owner = classes.get(str(c.owner))
    ref = np.asarray(cols[c.owner_column], np.int64)
    if owner.layer in whole:
        found = whole[owner.layer][0]
    elif owner in counted:
        rows = owner.read_ids(conn, np.unique(ref[ref >= 0]))
        if rows is None:
            return False
        found = rows
    else:
        return True  # the owner is not in this build: its rows are free, at their own points
    if not len(found):
        return True
    olon, olat, _ = (np.asarray(a, np.float64) for a in owner.points(found, zeta))
    ids = np.asarray(found["id"], np.int64)
    pos = np.clip(np.searchsorted(ids, ref), 0, len(ids) - 1)
    hit = ids[pos] == ref
    lon[hit], lat[hit] = olon[pos[hit]], olat[pos[hit]]
    return True


def partition_data(conn: Connection, stream: Stream, cell: partition.Node, zeta: float) -> dict[str, Columns]:
    """The rows whose (home) point lies in ``cell``, per layer in build order; empty layers left out."""
    data: dict[str, Columns] = {}
    for c in stream.counted:
        cols = c.read(conn, partition.cell_bounds(cell.z, cell.x, cell.y))
        lon, lat, _ = c.points(cols, zeta)
        data[c.layer] = cols.take(np.flatnonzero(partition.in_cell(lon, lat, cell.z, cell.x, cell.y)))
    for layer, (cols, lon, lat) in stream.whole.items():
        data[layer] = cols.take(np.flatnonzero(partition.in_cell(lon, lat, cell.z, cell.x, cell.y)))
    order = [c.layer for c in classes.registered()]
    return {k: data[k] for k in sorted(data, key=order.index) if len(data[k])}
