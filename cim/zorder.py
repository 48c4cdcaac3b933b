"""Morton (Z-order) codes of grid cells: points sorted by them are near each other in space, and the points
of any quadtree cell form one run. Used by the tiler's quadtree (:mod:`tiles.partition`) and by vector ingest,
which writes large batches of features in this order so that a tile's or a bbox query's rows share heap pages.

Hand-written: the bit interleaving is six NumPy operations, not worth a dependency."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

LEVEL = 22
"""Cells of :func:`lonlat_order`: 180° / 2^22 (≈ 5 m)."""


def _spread(v: NDArray[np.int64]) -> NDArray[np.uint64]:
    """The bits of ``v`` (< 2³²) spread to the even bit positions."""
    x = v.astype(np.uint64)
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F)):
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    for shift, mask in ((2, 0x3333333333333333), (1, 0x5555555555555555)):
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    return x


def z_order(cx: NDArray[np.int64], cy: NDArray[np.int64]) -> NDArray[np.uint64]:
    """Morton codes of cells (column ``cx``, row ``cy``, each < 2³²): a code shifted right by 2·k is the code
    of the cell k levels up.

    >>> z_order(np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])).tolist()
    [0, 2, 1, 3]
    """
    return (_spread(cx) << np.uint64(1)) | _spread(cy)


def lonlat_order(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.int64]:
    """The permutation that sorts points (degrees) by the Z-order of their level-:data:`LEVEL` cells (stable;
    a NaN coordinate counts as the grid's corner)."""
    s = 180.0 / (1 << LEVEL)
    cx = np.clip(np.nan_to_num(np.floor((lon + 180.0) / s)), 0, (2 << LEVEL) - 1).astype(np.int64)
    cy = np.clip(np.nan_to_num(np.floor((lat + 90.0) / s)), 0, (1 << LEVEL) - 1).astype(np.int64)
    return np.argsort(z_order(cx, cy), kind="stable").astype(np.int64)
