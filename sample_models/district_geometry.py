"""Vectorised shape builders of the synthetic district: rectangles, offset lines, points along lines.

Coordinates are metres of a projected CGCS2000 Gauss–Krüger grid (x = easting, y = northing).
"""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def rectangles(cx: FloatArray, cy: FloatArray, width: FloatArray, depth: FloatArray, theta: FloatArray) -> np.ndarray:
    """Rotated rectangles (polygons) centred at ``cx, cy`` with sides ``width`` × ``depth`` metres, angle radians.

    Builds all n polygons at once from an (n, 5, 2) coordinate array: no per-feature Python.
    """
    hw, hd = np.asarray(width) / 2.0, np.asarray(depth) / 2.0
    local = np.stack(
        [np.stack([-hw, -hd], -1), np.stack([hw, -hd], -1), np.stack([hw, hd], -1), np.stack([-hw, hd], -1)], 1
    )
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x = local[..., 0] * c - local[..., 1] * s + np.asarray(cx)[:, None]
    y = local[..., 0] * s + local[..., 1] * c + np.asarray(cy)[:, None]
    ring = np.stack([x, y], -1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return np.asarray(shapely.polygons(ring))


def points_along(lines: np.ndarray, spacing: float, offset: float = 0.0) -> tuple[np.ndarray, NDArray[np.int64]]:
    """Points every ``spacing`` metres along each line (from spacing/2), shifted ``offset`` metres to the left.

    Returns (points, index of the line each point belongs to).
    """
    lengths = shapely.length(lines)
    counts = np.maximum((lengths // spacing).astype(np.int64), 1)
    owner = np.repeat(np.arange(len(lines)), counts)
    along = (np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + 0.5) * spacing
    along = np.minimum(along, lengths[owner])
    pts = shapely.line_interpolate_point(lines[owner], along)
    if offset:
        ahead = shapely.line_interpolate_point(lines[owner], np.minimum(along + 1.0, lengths[owner]))
        behind = shapely.line_interpolate_point(lines[owner], np.maximum(along - 1.0, 0.0))
        d = shapely.get_coordinates(ahead) - shapely.get_coordinates(behind)
        norm = np.hypot(d[:, 0], d[:, 1])
        norm[norm == 0] = 1.0
        left = np.column_stack([-d[:, 1], d[:, 0]]) / norm[:, None]
        xy = shapely.get_coordinates(pts) + left * offset
        pts = shapely.points(xy)
    return np.asarray(pts), owner


def offset_lines(lines: np.ndarray, offset: float) -> np.ndarray:
    """Straight two-point lines shifted ``offset`` metres to their left (pipes beside road centre lines)."""
    xy = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    d = xy[:, 1] - xy[:, 0]
    norm = np.hypot(d[:, 0], d[:, 1])[:, None]
    left = np.column_stack([-d[:, 1], d[:, 0]]) / np.where(norm == 0, 1.0, norm)
    return np.asarray(shapely.linestrings(xy + left[:, None, :] * offset))
