"""Raster ingest: a DEM GeoTIFF kept as a Cloud-Optimised GeoTIFF in the data directory and registered.

The COG keeps the source grid and CRS (GDAL reprojects on read: :func:`cim.dem.read_grid` warps to
EPSG:4490, :func:`cim.dem.sample_heights` transforms the query points); values are normal heights (1985
datum) in metres. A newer DEM supersedes the previous one; the same bytes again are a no-op.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import RasterioError
from sqlalchemy import Engine, func

from cim import crs as cimcrs
from cim.db.datasets import (
    file_sha256,
    insert_dataset,
    loaded_dataset_with_sha256,
    supersede_dataset,
    update_dataset,
)
from cim.dem import live_dem
from cim.errors import CimError, CrsError, IngestError
from cim.settings import Settings
from ingest.formats import IngestReport

KINDS = ("dem",)


@dataclass
class RasterIngestReport(IngestReport):
    """What one raster ingest did; ``skipped`` is True when the same bytes were already the live DEM."""

    source: str
    kind: str
    path: str | None = None
    width: int = 0
    height: int = 0
    bounds: tuple[float, float, float, float] | None = None
    """(west, south, east, north) in CGCS2000 degrees."""
    min_height: float | None = None
    max_height: float | None = None


def ingest_raster(
    engine: Engine, path: Path, settings: Settings, *, kind: str = "dem", crs: str | None = None
) -> RasterIngestReport:
    """Store a DEM (any GDAL raster, heights in metres) as a COG under ``settings.data_path / "rasters"``.

    ``crs`` overrides or supplies the raster's CRS (city-local pipelines are not supported for rasters:
    warp it to a CGCS2000 grid first). Raises :class:`IngestError` / :class:`CrsError` on bad input.
    """
    started = time.perf_counter()
    path = Path(path)
    if kind not in KINDS:
        raise IngestError(f"unknown raster kind {kind!r}; supported: {', '.join(KINDS)}")
    if not path.exists():
        raise IngestError(f"{path} does not exist")
    report = RasterIngestReport(source=str(path.resolve()), kind=kind)
    sha = file_sha256(path)
    with engine.begin() as conn:
        found = loaded_dataset_with_sha256(conn, sha, "raster", kind)
    if found is not None:
        report.dataset_id, report.skipped = found, True
        with engine.connect() as conn:
            dem = live_dem(conn)
        report.path = str(dem.path) if dem is not None and dem.dataset_id == found else None
        report.wall_time_s = round(time.perf_counter() - started, 3)
        return report
    try:
        with rasterio.open(path) as src:
            file_crs = src.crs
            if crs is not None:
                source = cimcrs.parse_crs(crs)
            elif file_crs is not None:
                source = cimcrs.parse_crs(file_crs.to_wkt())
            else:
                raise CrsError(f"{path.name} has no CRS and none was given: pass --crs (e.g. EPSG:4547)")
            if source.crs is None:
                raise CrsError("a city-local CRS pipeline cannot be attached to a raster; warp it to EPSG:4547 first")
            if src.count < 1:
                raise IngestError(f"{path.name} has no band")
            w, s, e, n = src.bounds
            report.width, report.height = src.width, src.height
    except RasterioError as exc:
        raise IngestError(f"cannot read {path.name} as a raster: {exc}") from exc
    xs = np.array([w, e, e, w, (w + e) / 2])
    ys = np.array([s, s, n, n, (s + n) / 2])
    lon, lat = cimcrs.to_cgcs2000(xs, ys, source)
    cimcrs.check_within_area_of_use(lon, lat, source)
    report.bounds = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    report.crs_in = source.key
    out_dir = settings.data_path / "rasters"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{kind}_{sha[:16]}.tif"
    _write_cog(path, target, source, override=crs is not None)
    try:
        with rasterio.open(target) as cog:
            band = cog.read(1, masked=True)
            if band.count():
                report.min_height, report.max_height = float(band.min()), float(band.max())
        with engine.begin() as conn:
            previous = live_dem(conn)
            dataset_id = insert_dataset(
                conn,
                name=path.stem,
                kind="raster",
                layer=kind,
                path=str(target),
                sha256=sha,
                size_bytes=path.stat().st_size,
                crs_in=report.crs_in,
                schema_name="COG",
                model_key=f"raster|{kind}",
                status="loaded",
                counts={"width": report.width, "height": report.height},
                summary={"source": str(path.resolve()), "min": report.min_height, "max": report.max_height},
            )
            update_dataset(conn, dataset_id, extent=func.ST_MakeEnvelope(*report.bounds, cimcrs.CGCS2000))
            if previous is not None:
                supersede_dataset(conn, previous.dataset_id)
                report.superseded_dataset_id = previous.dataset_id
    except CimError:
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:
        target.unlink(missing_ok=True)
        raise IngestError(f"{path.name}: could not register the DEM ({exc}); nothing was stored") from exc
    report.dataset_id = dataset_id
    report.path = str(target)
    report.wall_time_s = round(time.perf_counter() - started, 3)
    return report


def _write_cog(path: Path, target: Path, source: cimcrs.SourceCrs, *, override: bool) -> None:
    """Copy a raster to a COG (DEFLATE, float predictor, internal overviews), setting the CRS if overridden."""
    assert source.crs is not None
    options = {"driver": "COG", "COMPRESS": "DEFLATE", "PREDICTOR": "YES", "BLOCKSIZE": "256", "OVERVIEWS": "AUTO"}
    try:
        if not override:
            rasterio.shutil.copy(str(path), str(target), **options)
            return
        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "staged.tif"
            rasterio.shutil.copy(str(path), str(staged), driver="GTiff")
            with rasterio.open(staged, "r+") as dst:
                dst.crs = rasterio.crs.CRS.from_wkt(source.crs.to_wkt())
            rasterio.shutil.copy(str(staged), str(target), **options)
    except RasterioError as exc:
        target.unlink(missing_ok=True)
        raise IngestError(f"cannot write {target.name} as a Cloud-Optimised GeoTIFF: {exc}") from exc
    if not target.exists():  # pragma: no cover - GDAL reports errors above
        shutil.rmtree(target, ignore_errors=True)
        raise IngestError(f"GDAL wrote no {target.name}")
