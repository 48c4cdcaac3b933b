"""The ingested digital elevation model: where it is and what height it gives at a point.

Raster ingest (``cim ingest raster --kind dem``) writes a Cloud-Optimised GeoTIFF into the data directory and
registers it as a ``dataset`` row with ``kind = 'raster'`` and ``layer = 'dem'``; heights are normal heights
(1985 datum) in metres. Building base heights, terrain tiles and flood analysis read it through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import ArrayLike, NDArray
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from sqlalchemy import Connection, select

from cim import crs
from cim.db.models import Dataset


@dataclass(frozen=True)
class Dem:
    """A registered DEM: dataset id and the path of its GeoTIFF."""

    dataset_id: int
    path: Path


def live_dem(conn: Connection) -> Dem | None:
    """The newest loaded DEM, or ``None`` when no DEM was ingested."""
    row = conn.execute(
        select(Dataset.id, Dataset.path)
        .where(Dataset.kind == "raster", Dataset.layer == "dem", Dataset.status == "loaded")
        .order_by(Dataset.id.desc())
        .limit(1)
    ).first()
    return Dem(int(row[0]), Path(row[1])) if row is not None else None


def sample_heights(path: Path, lon: ArrayLike, lat: ArrayLike) -> NDArray[np.float64]:
    """Bilinearly interpolated DEM heights (metres) at CGCS2000 lon/lat points (degrees); NaN outside or nodata.

    Vectorised: reads only the window that covers the points.
    """
    lons = np.atleast_1d(np.asarray(lon, dtype=np.float64))
    lats = np.atleast_1d(np.asarray(lat, dtype=np.float64))
    out = np.full(lons.shape, np.nan)
    if lons.size == 0:
        return out
    with rasterio.open(path) as src:
        source = crs.parse_crs(src.crs.to_wkt()) if src.crs is not None else crs.parse_crs(crs.CGCS2000)
        xs, ys = crs.transform_xy(lons, lats, crs.CGCS2000, source)
        inv = ~src.transform
        cols = inv.a * xs + inv.b * ys + inv.c
        rows = inv.d * xs + inv.e * ys + inv.f
        # Pixel centres are at +0.5: shift so that integer coordinates are centres.
        cols = np.asarray(cols) - 0.5
        rows = np.asarray(rows) - 0.5
        inside = (cols >= -0.5) & (rows >= -0.5) & (cols <= src.width - 0.5) & (rows <= src.height - 0.5)
        if not inside.any():
            return out
        c0 = int(max(np.floor(cols[inside].min()), 0))
        r0 = int(max(np.floor(rows[inside].min()), 0))
        c1 = int(min(np.floor(cols[inside].max()) + 2, src.width))
        r1 = int(min(np.floor(rows[inside].max()) + 2, src.height))
        window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        band = src.read(1, window=window, masked=True).astype(np.float64).filled(np.nan)
        cc = np.clip(cols[inside] - c0, 0, band.shape[1] - 1)
        rr = np.clip(rows[inside] - r0, 0, band.shape[0] - 1)
        ci = np.minimum(np.floor(cc).astype(int), band.shape[1] - 2) if band.shape[1] > 1 else np.zeros(cc.shape, int)
        ri = np.minimum(np.floor(rr).astype(int), band.shape[0] - 2) if band.shape[0] > 1 else np.zeros(rr.shape, int)
        fx = cc - ci if band.shape[1] > 1 else np.zeros(cc.shape)
        fy = rr - ri if band.shape[0] > 1 else np.zeros(rr.shape)
        ci1 = np.minimum(ci + 1, band.shape[1] - 1)
        ri1 = np.minimum(ri + 1, band.shape[0] - 1)
        top = band[ri, ci] * (1 - fx) + band[ri, ci1] * fx
        bottom = band[ri1, ci] * (1 - fx) + band[ri1, ci1] * fx
        out[inside] = top * (1 - fy) + bottom * fy
    return out


def read_grid(path: Path, bounds: tuple[float, float, float, float], width: int, height: int) -> NDArray[np.float32]:
    """DEM heights (metres) on a regular lon/lat grid over ``bounds`` = (west, south, east, north), degrees.

    Returns a ``height × width`` float32 array, north row first, edges on the bounds (as terrain tiles want);
    NaN where the DEM has no data. Resampled bilinearly by GDAL on the fly into EPSG:4490.
    """
    west, south, east, north = bounds
    # Sample pixel *corners* on the bounds: widen by half a cell so pixel centres land on the grid lines.
    dx = (east - west) / max(width - 1, 1)
    dy = (north - south) / max(height - 1, 1)
    grid_bounds = (west - dx / 2, south - dy / 2, east + dx / 2, north + dy / 2)
    # WarpedVRT refuses boundless window reads: warp straight onto the requested grid instead.
    out_transform = rasterio.transform.from_bounds(*grid_bounds, width, height)
    with (
        rasterio.open(path) as src,
        WarpedVRT(
            src,
            crs=f"EPSG:{crs.CGCS2000}",
            transform=out_transform,
            width=width,
            height=height,
            resampling=Resampling.bilinear,
            dtype="float32",
            nodata=np.nan,
            tolerance=0.01,  # near-exact transforms: the grids are small, accuracy matters more
        ) as vrt,
    ):
        data = vrt.read(1, masked=True)
    return np.asarray(data.astype(np.float32).filled(np.nan))
