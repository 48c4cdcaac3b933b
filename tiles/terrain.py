"""Cesium quantized-mesh terrain from the ingested DEM: ``layer.json`` + ``{z}/{x}/{y}.terrain``.

Geographic tiling scheme (EPSG:4326 ≈ CGCS2000 degrees): two root tiles at level 0, TMS rows counted from
the south. Each tile samples a 65 × 65 grid from the DEM (north row first), triangulated adaptively by
Delatin; heights are ellipsoidal (normal height + ζ), areas outside the DEM at ζ (normal height 0).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import quantized_mesh_encoder
import rasterio
from pydelatin import Delatin

from cim import crs
from cim.dem import read_grid

GRID = 65
MAX_TERRAIN_LEVEL = 16


@dataclass
class TerrainSummary:
    """What was produced: tile count per level, the DEM bounds (degrees) and height range (normal, m)."""

    tiles: int
    max_level: int
    bounds: tuple[float, float, float, float]
    min_height: float
    max_height: float


def dem_bounds(path: Path) -> tuple[tuple[float, float, float, float], float]:
    """The DEM's (west, south, east, north) in CGCS2000 degrees and its pixel size in degrees."""
    with rasterio.open(path) as src:
        left, bottom, right, top = src.bounds
        xs = np.array([left, right, right, left, (left + right) / 2, (left + right) / 2])
        ys = np.array([bottom, bottom, top, top, bottom, top])
        src_crs = crs.parse_crs(src.crs.to_wkt()) if src.crs is not None else crs.parse_crs(crs.CGCS2000)
        lon, lat = crs.transform_xy(xs, ys, src_crs, crs.CGCS2000)
        width, height = src.width, src.height
    w, s, e, n = float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())
    pixel = min((e - w) / max(width, 1), (n - s) / max(height, 1))
    return (w, s, e, n), pixel


def _tile_range(bounds: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    size = 180.0 / (1 << z)
    w, s, e, n = bounds
    x0 = max(math.floor((w + 180.0) / size), 0)
    x1 = min(math.floor((e + 180.0) / size), (2 << z) - 1)
    y0 = max(math.floor((s + 90.0) / size), 0)
    y1 = min(math.floor((n + 90.0) / size), (1 << z) - 1)
    return x0, y0, x1, y1


def read_tile_grid(dem: Path, bounds: tuple[float, float, float, float], size: int = GRID) -> np.ndarray:
    """DEM normal heights (m) on a ``size × size`` lon/lat grid whose edge samples lie on ``bounds``
    (west, south, east, north degrees), north row first; NaN outside the DEM."""
    return read_grid(dem, bounds, size, size).astype(np.float64)


def encode_tile(
    dem: Path, z: int, x: int, y: int, height_anomaly: float, max_error: float = 0.5
) -> tuple[bytes, float, float]:
    """One quantized-mesh tile (bytes) and the min/max normal height of its DEM samples (NaN when none)."""
    size = 180.0 / (1 << z)
    w, s = -180.0 + x * size, -90.0 + y * size
    e, n = w + size, s + size
    grid = read_tile_grid(dem, (w, s, e, n))
    valid = np.isfinite(grid)
    hmin = float(grid[valid].min()) if valid.any() else math.nan
    hmax = float(grid[valid].max()) if valid.any() else math.nan
    h = np.where(valid, grid, 0.0) + height_anomaly
    tin = Delatin(h.astype(np.float32), width=GRID, height=GRID, max_error=max_error)
    v = np.asarray(tin.vertices, dtype=np.float64)
    # Delatin's y runs from the last (southern) row up to the first (northern) one.
    lon = w + v[:, 0] / (GRID - 1) * (e - w)
    lat = s + v[:, 1] / (GRID - 1) * (n - s)
    positions = np.column_stack([lon, lat, v[:, 2]])
    buf = io.BytesIO()
    quantized_mesh_encoder.encode(buf, positions, np.asarray(tin.triangles, dtype=np.uint32), bounds=(w, s, e, n))
    return buf.getvalue(), hmin, hmax


def build_terrain(
    dem: Path, put: Callable[[str, bytes], None], height_anomaly: float, *, prefix: str = "terrain/"
) -> TerrainSummary:
    """Write every terrain tile that covers the DEM (levels 0…max) and ``layer.json`` through ``put``."""
    bounds, pixel = dem_bounds(dem)
    max_level = int(np.clip(math.ceil(math.log2(180.0 / max(pixel * (GRID - 1), 1e-9))), 0, MAX_TERRAIN_LEVEL))
    available: list[list[dict[str, int]]] = []
    count = 0
    lo, hi = math.inf, -math.inf
    for z in range(max_level + 1):
        x0, y0, x1, y1 = (0, 0, 1, 0) if z == 0 else _tile_range(bounds, z)
        available.append([{"startX": x0, "startY": y0, "endX": x1, "endY": y1}])
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                data, hmin, hmax = encode_tile(dem, z, x, y, height_anomaly)
                put(f"{prefix}{z}/{x}/{y}.terrain", data)
                count += 1
                if not math.isnan(hmin):
                    lo, hi = min(lo, hmin), max(hi, hmax)
    layer: dict[str, Any] = {
        "tilejson": "2.1.0",
        "name": "terrain",
        "description": "CIM platform terrain from the ingested DEM (ellipsoidal heights)",
        "version": "1.0.0",
        "format": "quantized-mesh-1.0",
        "scheme": "tms",
        "tiles": ["{z}/{x}/{y}.terrain"],
        "projection": "EPSG:4326",
        "bounds": [-180.0, -90.0, 180.0, 90.0],
        "minzoom": 0,
        "maxzoom": max_level,
        "available": available,
    }
    put(f"{prefix}layer.json", json.dumps(layer, indent=1).encode("utf-8"))
    return TerrainSummary(count, max_level, bounds, lo if count else math.nan, hi if count else math.nan)
