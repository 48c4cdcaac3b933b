"""Raster ingest: DEMs kept as COGs, registered, superseded; building base heights sampled from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import shapely
from sqlalchemy import text

from cim import crs as cimcrs
from cim.errors import CrsError
from ingest.raster import ingest_raster
from ingest.vector import ingest_vector
from tests.ingest.sql import rows
from tests.ingest.test_vector import _gk_boxes, _write
from tests.test_dem import height_at, write_linear_dem


def test_dem_is_stored_as_cog_and_registered(engine, settings, tmp_path):
    path, _, _ = write_linear_dem(tmp_path / "dem.tif", size=64)
    report = ingest_raster(engine, path, settings)
    assert report.path and report.path.startswith(str(settings.data_path / "rasters"))
    with rasterio.open(report.path) as cog:
        assert cog.profile.get("tiled") and cog.overviews(1) is not None and cog.crs.to_epsg() == 4547
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT kind, layer, status, path FROM dataset WHERE id = :i"), {"i": report.dataset_id}
        ).one()
    assert tuple(row) == ("raster", "dem", "loaded", report.path)
    again = ingest_raster(engine, path, settings)
    assert again.skipped and again.dataset_id == report.dataset_id
    newer, _, _ = write_linear_dem(tmp_path / "dem2.tif", size=48)
    second = ingest_raster(engine, newer, settings)
    assert second.superseded_dataset_id == report.dataset_id


def test_dem_without_crs_needs_crs_option(engine, settings, tmp_path):
    path, _, _ = write_linear_dem(tmp_path / "nocrs.tif", size=16, crs=None)
    with pytest.raises(CrsError, match="--crs"):
        ingest_raster(engine, path, settings)
    assert ingest_raster(engine, path, settings, crs="EPSG:4547").dataset_id


def test_building_base_heights_match_the_dem_at_their_centroids(engine, settings, tmp_path):
    dem, x0, y0 = write_linear_dem(tmp_path / "dem.tif")
    ingest_raster(engine, dem, settings)
    boxes = _gk_boxes(5)
    path = _write(tmp_path / "b.gpkg", boxes, {"NAME": list("abcde")}, driver="GPKG")
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert report.base_heights_from_dem == 5
    found = rows(
        engine,
        "SELECT base_height, ST_X(ST_Centroid(footprint)), ST_Y(ST_Centroid(footprint)) FROM building ORDER BY id",
    )
    base = np.array([r[0] for r in found])
    cx, cy = cimcrs.transform_xy([r[1] for r in found], [r[2] for r in found], 4490, 4547)
    np.testing.assert_allclose(base, height_at(cx, cy, x0, y0), atol=0.01)
    expected = height_at(
        shapely.get_coordinates(shapely.centroid(boxes))[:, 0],
        shapely.get_coordinates(shapely.centroid(boxes))[:, 1],
        x0,
        y0,
    )
    np.testing.assert_allclose(base, expected, atol=0.01)


def test_cli_raster_json(run_cim, tmp_path):
    path, _, _ = write_linear_dem(tmp_path / "dem.tif", size=16)
    result = run_cim("ingest", "raster", str(path), "--kind", "dem", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["dataset_id"] and doc["width"] == 16 and doc["min_height"] < doc["max_height"]
