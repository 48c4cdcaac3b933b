"""Urban safety: bathtub flood on a synthetic DEM, gas-pipe separation, dangerous-house map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from sqlalchemy import Connection, Engine, text

from cim import crs
from cim.analysis.flood import run_flood
from cim.analysis.safety import GAS_SEPARATION_M, run_dangerous_buildings, run_gas_proximity
from cim.db.datasets import insert_dataset
from cim.errors import AnalysisError
from cim.settings import Settings
from tests import factories as f
from tests.analysis.local import Local

GK = 4547  # CGCS2000 / 3-degree Gauss-Kruger CM 114E
X0, Y0, CELL = 520_000.0, 3_385_000.0, 10.0  # top-left corner, metres


def _gk_box(col0: float, col1: float, row0: float, row1: float) -> shapely.Polygon:
    """A lon/lat polygon covering DEM columns [col0, col1) and rows [row0, row1)."""
    xs = np.array([X0 + col0 * CELL, X0 + col1 * CELL, X0 + col1 * CELL, X0 + col0 * CELL])
    ys = np.array([Y0 - row0 * CELL, Y0 - row0 * CELL, Y0 - row1 * CELL, Y0 - row1 * CELL])
    lon, lat = crs.transform_xy(xs, ys, GK, crs.CGCS2000)
    return shapely.Polygon(zip(lon, lat, strict=True))


def _dem(conn: Connection, settings: Settings) -> Path:
    """50 × 50 cells of 10 m: river (cols 0–4, z 0), low land (5–19, z 1), ridge (20–21, z 5),
    basin behind the ridge (22–34, z 0.5), high ground (35–49, z 10)."""
    z = np.full((50, 50), 10.0, dtype=np.float32)
    z[:, 0:5] = 0.0
    z[:, 5:20] = 1.0
    z[:, 20:22] = 5.0
    z[:, 22:35] = 0.5
    out = settings.data_path / "rasters" / "dem.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        out,
        "w",
        driver="GTiff",
        width=50,
        height=50,
        count=1,
        dtype="float32",
        crs=f"EPSG:{GK}",
        transform=from_origin(X0, Y0, CELL, CELL),
        nodata=-9999.0,
    ) as dst:
        dst.write(z, 1)
    insert_dataset(conn, name="dem", kind="raster", layer="dem", path=str(out), sha256="1" * 64)
    return out


def _flood_fixture(engine: Engine, settings: Settings) -> tuple[int, int, int]:
    with engine.begin() as conn:
        _dem(conn, settings)
        ds = f.dataset(conn)
        f.facility(conn, ds, "water_body", _gk_box(0.2, 4.8, 0, 50))
        wet = f.building(conn, ds, _gk_box(10.2, 11.8, 20.2, 21.8))
        dry = f.building(conn, ds, _gk_box(28.2, 29.8, 20.2, 21.8))  # in the basin behind the ridge
        school = f.facility(conn, ds, "school", shapely.Point(*_gk_box(12.5, 12.6, 30.5, 30.6).centroid.coords[0]))
    return wet, dry, school


def test_flood_level_fills_only_ground_connected_to_the_river(engine: Engine, settings: Settings) -> None:
    wet, _dry, school = _flood_fixture(engine, settings)
    report = run_flood(engine, level=2.0)
    # Flooded land: columns 5–19 of all 50 rows at depth 1 m → 15 × 50 × 100 m² = 75,000 m².
    assert report.flooded_area_km2 == pytest.approx(0.075, rel=0.01)
    assert report.volume_m3 == pytest.approx(75_000.0, rel=1e-6)
    assert report.depth["max"] == pytest.approx(1.0) and report.depth["min"] == pytest.approx(1.0)
    assert report.affected_building_ids == [wet]
    assert [fac["id"] for fac in report.affected_facilities] == [school]
    assert len(report.polygons) == 1 and report.polygons[0]["affected_building_ids"] == [wet]
    fc = report.feature_collection()
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 114.0 < lon < 114.5 and 30.0 < lat < 31.0  # lon/lat order


def test_flood_over_the_ridge_and_by_volume(engine: Engine, settings: Settings) -> None:
    wet, dry, _ = _flood_fixture(engine, settings)
    over = run_flood(engine, level=6.0)
    # 15 cols at 5 m + 2 ridge cols at 1 m + 13 basin cols at 5.5 m, 50 rows of 100 m² cells
    assert over.volume_m3 == pytest.approx(50 * 100 * (15 * 5 + 2 * 1 + 13 * 5.5), rel=1e-6)
    assert sorted(over.affected_building_ids) == sorted([wet, dry])
    by_volume = run_flood(engine, volume=75_000.0)
    assert by_volume.level == pytest.approx(2.0, abs=0.02)  # volume(L) = 75,000 × (L − 1) for 1 < L < 5
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM analysis_run WHERE kind = 'flood'")).scalar_one()
    assert n == 2


def test_flood_from_seed_point_and_errors(engine: Engine, settings: Settings) -> None:
    with pytest.raises(AnalysisError, match="no DEM"):
        run_flood(engine, level=1.0)
    _flood_fixture(engine, settings)
    with pytest.raises(AnalysisError, match="exactly one"):
        run_flood(engine, level=1.0, volume=5.0)
    seed = _gk_box(28, 29, 10, 11).centroid  # inside the basin
    basin = run_flood(engine, level=2.0, seed=(seed.x, seed.y))
    assert basin.flooded_area_km2 == pytest.approx(13 * 50 * 100 / 1e6, rel=0.01)
    assert basin.depth["max"] == pytest.approx(1.5)


def test_gas_pipe_separation_by_pressure_class(engine: Engine) -> None:
    here = Local(114.30, 30.58)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        f.facility(conn, ds, "pipe_gas", here.line((-500, 0), (500, 0)), pressure_class="medium_a")  # 1.5 m
        f.facility(conn, ds, "pipe_gas", here.line((-500, 1000), (500, 1000)), pressure_class="高压A")  # 30 m
        near = f.building(conn, ds, here.box(0, 6.0, 10, 10))  # footprint edge 1.0 m from the medium pipe
        far = f.building(conn, ds, here.box(100, 8.0, 10, 10))  # 3.0 m: allowed
        hp = f.building(conn, ds, here.box(0, 1025, 10, 10))  # 20 m from the high-pressure pipe
        manhole = f.facility(conn, ds, "manhole", here.point(-100, -1.0))
    report = run_gas_proximity(engine)
    ids = {(x["properties"]["kind"], x["properties"]["id"]) for x in report.features}
    assert ids == {("building", near), ("building", hp), ("manhole", manhole)}
    dist = {
        (x["properties"]["kind"], x["properties"]["id"]): x["properties"]["min_distance_m"] for x in report.features
    }
    assert dist["building", near] == pytest.approx(1.0, abs=0.05)
    assert dist["building", hp] == pytest.approx(20.0, abs=0.1)
    assert dist["manhole", manhole] == pytest.approx(1.0, abs=0.05)
    assert report.distances_m["medium_a"] == GAS_SEPARATION_M["medium_a"] == 1.5
    stricter = run_gas_proximity(engine, distances={"中压A": 5.0})
    assert {x["properties"]["id"] for x in stricter.features if x["properties"]["kind"] == "building"} == {
        near,
        far,
        hp,
    }


def test_dangerous_house_map_lists_c_and_d(engine: Engine) -> None:
    here = Local(114.30, 30.58)
    with engine.begin() as conn:
        ds = f.dataset(conn)
        c = f.building(conn, ds, here.box(0, 0, 10, 10), safety_class="C")
        d = f.building(conn, ds, here.box(50, 0, 10, 10), safety_class="D")
        f.building(conn, ds, here.box(100, 0, 10, 10), safety_class="B")
        old = f.building(conn, ds, here.box(150, 0, 10, 10), safety_class="D")
        conn.execute(text("UPDATE building SET valid_to = now() WHERE id = :i"), {"i": old})
    report = run_dangerous_buildings(engine)
    assert [x["properties"]["id"] for x in report.features] == [c, d]
    assert report.counts == {"C": 1, "D": 1}
    with pytest.raises(AnalysisError, match="unknown safety classes"):
        run_dangerous_buildings(engine, classes=("E",))
