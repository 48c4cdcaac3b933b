"""cim.dem: sampling heights at points and reading grids from a DEM whose heights are known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from cim import crs as cimcrs
from cim.dem import live_dem, read_grid, sample_heights

CENTRE = (114.30, 30.58)
CELL = 10.0


def height_at(x, y, x0: float, y0: float):
    """The fixture's height (m) at EPSG:4547 x/y: 20 m at the origin, rising 1 m/100 m east and 2 m/100 m north."""
    return 20.0 + 0.01 * (np.asarray(x) - x0) + 0.02 * (np.asarray(y) - y0)


def write_linear_dem(path: Path, *, size: int = 200, crs: str | None = "EPSG:4547") -> tuple[Path, float, float]:
    """Write the DEM; returns (path, x0, y0) of its north-west corner in EPSG:4547 metres."""
    cx, cy = cimcrs.transform_xy([CENTRE[0]], [CENTRE[1]], 4490, 4547)
    x0, y0 = float(cx[0]) - size * CELL / 2, float(cy[0]) + size * CELL / 2
    cols = x0 + (np.arange(size) + 0.5) * CELL
    rows = y0 - (np.arange(size) + 0.5) * CELL
    grid = height_at(cols[None, :], rows[:, None], x0, y0).astype(np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(x0, y0, CELL, CELL),
        nodata=-9999.0,
    ) as dst:
        dst.write(grid, 1)
    return path, x0, y0


def test_sample_heights_bilinear_matches_known_surface(tmp_path):
    path, x0, y0 = write_linear_dem(tmp_path / "dem.tif")
    rng = np.random.default_rng(1)
    cx, cy = cimcrs.transform_xy([CENTRE[0]], [CENTRE[1]], 4490, 4547)
    xs = cx[0] + rng.uniform(-800, 800, 50)
    ys = cy[0] + rng.uniform(-800, 800, 50)
    lon, lat = cimcrs.transform_xy(xs, ys, 4547, 4490)
    got = sample_heights(path, lon, lat)
    np.testing.assert_allclose(got, height_at(xs, ys, x0, y0), atol=1e-3)


def test_sample_heights_outside_is_nan_and_empty_input_is_empty(tmp_path):
    path, _, _ = write_linear_dem(tmp_path / "dem.tif", size=20)
    got = sample_heights(path, [CENTRE[0], 110.0], [CENTRE[1], 30.0])
    assert np.isfinite(got[0]) and np.isnan(got[1])
    assert sample_heights(path, [], []).shape == (0,)


def test_read_grid_is_north_first_in_cgcs2000(tmp_path):
    path, x0, y0 = write_linear_dem(tmp_path / "dem.tif")
    lon0, lat0 = CENTRE
    bounds = (lon0 - 0.005, lat0 - 0.005, lon0 + 0.005, lat0 + 0.005)
    grid = read_grid(path, bounds, 33, 29)
    assert grid.shape == (29, 33) and grid.dtype == np.float32
    lons = np.linspace(bounds[0], bounds[2], 33)
    lats = np.linspace(bounds[3], bounds[1], 29)  # north row first
    glon, glat = np.meshgrid(lons, lats)
    gx, gy = cimcrs.transform_xy(glon.ravel(), glat.ravel(), 4490, 4547)
    np.testing.assert_allclose(grid.ravel(), height_at(gx, gy, x0, y0), atol=0.05)


def test_live_dem_is_none_until_a_dem_is_registered(engine, settings, tmp_path):
    from ingest.raster import ingest_raster

    with engine.connect() as conn:
        assert live_dem(conn) is None
    path, _, _ = write_linear_dem(tmp_path / "dem.tif", size=20)
    report = ingest_raster(engine, path, settings)
    with engine.connect() as conn:
        dem = live_dem(conn)
    assert dem is not None and dem.dataset_id == report.dataset_id and dem.path.exists()
