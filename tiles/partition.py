"""The quadtree over EPSG:4490: a fixed global grid of square cells (level z: 180°/2^z, two cells at level 0,
as the geographic tiling scheme), so tile addresses stay stable when data is added elsewhere."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cim.zorder import z_order

MAX_LEVEL = 22
EARTH_DEG_M = 111_320.0


def cell_size(z: int) -> float:
    """Cell size in degrees at level ``z``."""
    return 180.0 / (1 << z)


def cell_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) degrees of cell ``z/x/y`` (y counted from the south)."""
    s = cell_size(z)
    return (-180.0 + x * s, -90.0 + y * s, -180.0 + (x + 1) * s, -90.0 + (y + 1) * s)


@dataclass
class Node:
    """A quadtree cell with the indices of the points (features) it holds."""

    z: int
    x: int
    y: int
    idx: NDArray[np.int64]
    children: list[Node] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.z}/{self.x}/{self.y}"

    def walk(self) -> list[Node]:
        """This node and every descendant, parents before children."""
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def _cells(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Column and row of each point's cell at level MAX_LEVEL; at level z they are these shifted right by
    MAX_LEVEL − z (so that a point's cells at all levels nest exactly)."""
    s = cell_size(MAX_LEVEL)
    cx = np.clip(np.floor((lon + 180.0) / s), 0, (2 << MAX_LEVEL) - 1).astype(np.int64)
    cy = np.clip(np.floor((lat + 90.0) / s), 0, (1 << MAX_LEVEL) - 1).astype(np.int64)
    return cx, cy


Cells = tuple[NDArray[np.int64], NDArray[np.int64]]
"""Column and row arrays of grid cells."""


def cell_index(lon: NDArray[np.float64], lat: NDArray[np.float64], z: int) -> Cells:
    """Column and row of each point's cell at level ``z`` (the cells :func:`quadtree` puts it in)."""
    cx, cy = _cells(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    return cx >> (MAX_LEVEL - z), cy >> (MAX_LEVEL - z)


def in_cell(lon: NDArray[np.float64], lat: NDArray[np.float64], z: int, x: int, y: int) -> NDArray[np.bool_]:
    """Which points lie in cell ``z/x/y`` (each point in exactly one cell per level)."""
    cx, cy = cell_index(lon, lat, z)
    return (cx == x) & (cy == y)


Keep = Callable[[NDArray[np.int64]], NDArray[np.int64]]
"""What an inner node keeps of its points once split (a subset of its ``idx``)."""


@dataclass
class _Sorted:
    """The points sorted once by Z-order: every node is a range ``[a, b)`` of ``order``."""

    order: NDArray[np.int64]
    code: NDArray[np.uint64]
    cx: NDArray[np.int64]
    cy: NDArray[np.int64]
    cum_weight: NDArray[np.float64]


def quadtree(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    weight: NDArray[np.float64],
    capacity: float,
    keep: Keep | None = None,
    root: Node | None = None,
) -> Node:
    """Partition points (degrees) into leaves of total ``weight`` ≤ ``capacity`` (or level MAX_LEVEL).

    The root is the smallest grid cell holding every point (a level-0 cell when the data straddle 0° E, in
    which case the root is a virtual node at level −1 whose children are the level-0 cells). ``keep``: an
    inner node's ``idx`` becomes ``keep(idx)`` once its children are made (the few points a parent tile
    draws), so that the tree holds each point about once, not once per level. A node's ``idx`` lists its
    points in Z-order (not by index).

    The points are sorted once by their Z-order code at MAX_LEVEL; a node's children are the runs of its
    range with equal codes one level down, found by comparing neighbours (no sort per node).

    ``root``: a node (level ≥ 0) to fill instead, whose cell holds every point: a partition of a streamed
    build, a node of the build's coarse tree.
    """
    cx, cy = _cells(lon, lat)
    code = z_order(cx, cy)
    order = np.argsort(code, kind="stable").astype(np.int64)
    w = np.asarray(weight, np.float64)[order]
    pts = _Sorted(order, code[order], cx[order], cy[order], np.r_[0.0, np.cumsum(w)])
    del code, w
    n = len(lon)
    if root is not None:
        root.idx = order
        _split(root, 0, n, pts, capacity, keep)
        return root
    root_z = -1
    if n:
        (x0, x1), (y0, y1) = (int(cx.min()), int(cx.max())), (int(cy.min()), int(cy.max()))
        for z in range(MAX_LEVEL + 1):
            shift = MAX_LEVEL - z
            if x0 >> shift != x1 >> shift or y0 >> shift != y1 >> shift:
                break
            root_z = z
    if root_z < 0:
        root = Node(-1, 0, 0, order)
        _split(root, 0, n, pts, capacity, keep, force=True)
        return root
    shift = MAX_LEVEL - root_z
    root = Node(root_z, int(pts.cx[0] >> shift), int(pts.cy[0] >> shift), order)
    _split(root, 0, n, pts, capacity, keep)
    return root


def _split(node: Node, a: int, b: int, pts: _Sorted, cap: float, keep: Keep | None, *, force: bool = False) -> None:
    # A lone feature heavier than the capacity (a BIM building) stays where it is: splitting it would only
    # stack copies of its parent LOD block down to MAX_LEVEL, with errors too small for a viewer to refine.
    if not force and (node.z >= MAX_LEVEL or pts.cum_weight[b] - pts.cum_weight[a] <= cap or b - a <= 1):
        return
    z = node.z + 1
    shift = MAX_LEVEL - z
    codes = pts.code[a:b] >> np.uint64(2 * shift)
    cuts = [a, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1 + a).tolist(), b]
    spans = list(itertools.pairwise(cuts))
    for s, e in spans:
        node.children.append(Node(z, int(pts.cx[s] >> shift), int(pts.cy[s] >> shift), pts.order[s:e]))
    if keep is not None:
        node.idx = keep(node.idx)
    for child, (s, e) in zip(node.children, spans, strict=True):
        _split(child, s, e, pts, cap, keep)
