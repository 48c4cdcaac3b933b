"""The quadtree over EPSG:4490: a fixed global grid of square cells (level z: 180°/2^z, two cells at level 0,
as the geographic tiling scheme), so tile addresses stay stable when data is added elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

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


def _cells(lon: NDArray[np.float64], lat: NDArray[np.float64], z: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    s = cell_size(z)
    cx = np.clip(np.floor((lon + 180.0) / s), 0, (2 << z) - 1).astype(np.int64)
    cy = np.clip(np.floor((lat + 90.0) / s), 0, (1 << z) - 1).astype(np.int64)
    return cx, cy


Keep = Callable[[NDArray[np.int64]], NDArray[np.int64]]
"""What an inner node keeps of its points once split (a subset of its ``idx``, in order)."""


def quadtree(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    weight: NDArray[np.float64],
    capacity: float,
    keep: Keep | None = None,
) -> Node:
    """Partition points (degrees) into leaves of total ``weight`` ≤ ``capacity`` (or level MAX_LEVEL).

    The root is the smallest grid cell holding every point (a level-0 cell when the data straddle 0° E, in
    which case the root is a virtual node at level −1 whose children are the level-0 cells). ``keep``: an
    inner node's ``idx`` becomes ``keep(idx)`` once its children are made (the few points a parent tile
    draws), so that the tree holds each point about once, not once per level.
    """
    idx = np.arange(len(lon), dtype=np.int64)
    root_z = -1
    for z in range(MAX_LEVEL + 1):
        cx, cy = _cells(lon, lat, z)
        if len(lon) and cx.min() == cx.max() and cy.min() == cy.max():
            root_z = z
        else:
            break
    if root_z < 0:
        root = Node(-1, 0, 0, idx)
        _split(root, lon, lat, weight, capacity, keep, force=True)
        return root
    cx, cy = _cells(lon[:1], lat[:1], root_z)
    root = Node(root_z, int(cx[0]), int(cy[0]), idx)
    _split(root, lon, lat, weight, capacity, keep)
    return root


def _split(
    node: Node,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    w: NDArray[np.float64],
    cap: float,
    keep: Keep | None,
    *,
    force: bool = False,
) -> None:
    # A lone feature heavier than the capacity (a BIM building) stays where it is: splitting it would only
    # stack copies of its parent LOD block down to MAX_LEVEL, with errors too small for a viewer to refine.
    if not force and (node.z >= MAX_LEVEL or w[node.idx].sum() <= cap or len(node.idx) <= 1):
        return
    z = node.z + 1
    cx, cy = _cells(lon[node.idx], lat[node.idx], z)
    code = cx * (1 << 30) + cy
    order = np.argsort(code, kind="stable")
    codes, starts = np.unique(code[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    for c, s, e in zip(codes, starts, ends, strict=True):
        child = Node(z, int(c >> 30), int(c & ((1 << 30) - 1)), node.idx[order[s:e]])
        node.children.append(child)
    del cx, cy, code, order, codes, starts, ends  # not held while the children split
    if keep is not None:
        node.idx = keep(node.idx)
    for child in node.children:
        _split(child, lon, lat, w, cap, keep)
